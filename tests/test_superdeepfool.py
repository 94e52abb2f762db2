"""SuperDeepFool (`superdeepfool-l2`, carlini-eval's near-minimal DeepFool): on a curved
boundary whose closest points are known, it lands on them where DeepFool's first-order
steps stop short of them; and it is never further from x than DeepFool."""

import torch

from advbench.attacks import ATTACKS, unpack

A = 1.0  # the parabola's curvature: the boundary is x₁ = 0.3 + A (x₀ − 0.5)²


class Parabola(torch.nn.Module):
    """Two classes; class 1 above the parabola. One parameter so foolbox's wrapper (which
    DeepFool's row goes through) can find the device."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        gap = x[:, 1] - 0.3 - A * (x[:, 0] - 0.5) ** 2
        return torch.stack([torch.zeros_like(gap), 10 * gap], 1) + 0 * self.anchor


X = torch.tensor([[0.3, 0.1], [0.2, 0.05], [0.45, 0.0], [0.7, 0.2]])
Y = torch.zeros(4, dtype=torch.long)


def _closest() -> torch.Tensor:
    """Each point's distance to the parabola, by dense sampling (step 1e-5 along x₀)."""
    t = torch.linspace(-1, 2, 300_001, dtype=torch.float64)
    curve = torch.stack([t, 0.3 + A * (t - 0.5) ** 2], 1)
    return torch.stack([(curve - p.double()).norm(dim=1).min() for p in X]).float()


def _norms(name: str, **params) -> torch.Tensor:
    entry = ATTACKS.get(name)
    adv = unpack(entry.factory(entry.resolve(params))(Parabola(), X, Y)).adv
    model = Parabola()
    assert (model(adv).argmax(1) != Y).all(), f"{name}: an instance not adversarial"
    return (adv - X).norm(dim=1)


def test_it_reaches_the_closest_point_where_deepfool_stops_short():
    true = _closest()
    sdf = _norms("superdeepfool-l2") / true
    df = _norms("deepfool-l2") / true
    # measured: SuperDeepFool 1.0002-1.0008, DeepFool 1.007-1.022 of the true distance
    assert (sdf <= 1.002).all(), sdf
    assert (sdf >= 0.999).all(), sdf  # adversarial, so never nearer than the boundary
    assert (df > 1.005).all(), df
    assert (sdf <= df).all()


def test_one_round_is_at_least_as_near_as_deepfool():
    # its first DeepFool point is DeepFool's own result (same steps, overshoot), and the
    # smallest adversarial met is kept: rounds can only bring it nearer
    one = _norms("superdeepfool-l2", steps=1, search_steps=0)
    df = _norms("deepfool-l2")
    assert (one <= df * (1 + 1e-5)).all(), (one, df)
