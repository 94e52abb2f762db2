"""carlini-eval's C&W (`cw-l2-warm`): started from an adversarial point, its binary search
must not take the start itself as "found" (issue 30: on demo-jacobian, whose logits are
small, DeepFool's start lowered the constant by itself and optimality fell to 0.83)."""

import torch

from advbench.attacks.cw import cw_l2_search


class Halfspace(torch.nn.Module):
    """Two classes split by x₀ = 0.6 with logits scaled by `scale`: from x = 0.5 everywhere
    the smallest L2 adversarial is 0.1 away, along the first coordinate."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        gap = x.flatten(1)[:, 0] - 0.6
        return self.scale * torch.stack([-gap, gap], 1)


def _search(scale: float, warm: bool):
    x = torch.full((1, 8), 0.5)
    y = torch.tensor([0])
    start = x.clone()
    start[0, 0], start[0, 1] = 0.7, 0.8  # adversarial, 0.36 away; the way back
    # to x crosses the boundary away from the closest point (0.1)
    _, l2 = cw_l2_search(Halfspace(scale), x, y, steps=200, binary_search_steps=5,
                         stepsize=0.05, confidence=0.0, initial_const=1.0, start=start,
                         warm_start=warm)  # fmt: skip
    return float(l2[0])


def test_an_adversarial_start_does_not_lower_the_constant_by_itself():
    # small logits: the margin's pull at c = 1 cannot hold the iterate against the
    # distance's; only the constant the binary search raises finds the closest point
    assert _search(0.01, warm=True) < 0.105
    # the same search taking its start as found lowers c from 1 at every step: it never
    # gets nearer than where its way back to x crosses the boundary (measured 0.25)
    assert _search(0.01, warm=False) > 0.15


def test_with_large_logits_both_find_the_closest_point():
    assert _search(10.0, warm=True) < 0.105
