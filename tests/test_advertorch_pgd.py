"""fidel's PGD-L2 is advertorch's (`pgd-l2 start=data`): its random start and step order,
checked against a transcription of advertorch 0.2's `rand_init_delta` and
`perturb_iterative` (ord=2) written out here from its source, not from ours."""

import pytest
import torch
from torch.nn import functional as F

from advbench import data
from advbench.attacks import ATTACKS, unpack
from advbench.catalogue import load_model
from advbench.store import open_db


def _clamp_by_pnorm(d, r):
    norm = d.flatten(1).norm(dim=1)
    factor = torch.minimum(r / norm, torch.ones_like(norm))
    return d * factor.view(-1, *[1] * (d.dim() - 1))


def advertorch_l2pgd(model, x, y, eps, nb_iter, eps_iter):
    """advertorch.attacks.L2PGDAttack(rand_init=True, clip 0..1), untargeted, final iterate."""
    delta = torch.zeros_like(x)
    delta.uniform_(0.0, 1.0)
    delta = _clamp_by_pnorm(delta - x, eps)
    delta = (x + delta).clamp(0.0, 1.0) - x
    for _ in range(nb_iter):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(x + delta), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, delta)
        gnorm = grad.flatten(1).norm(dim=1).clamp_min(1e-6)
        delta = delta.detach() + eps_iter * grad / gnorm.view(-1, 1, 1, 1)
        delta = (x + delta).clamp(0.0, 1.0) - x
        delta = _clamp_by_pnorm(delta, eps)
    return (x + delta).clamp(0.0, 1.0)


@pytest.mark.parametrize("eps", [0.5, 20.0])
def test_start_data_is_advertorchs_l2_pgd(db_copy, eps):
    model, _, _ = load_model(open_db(db_copy), "std")
    model.eval()
    x, y = data.load("digits", "test").get(torch.arange(32))
    entry = ATTACKS.get("pgd-l2")
    out = {}
    for start in ("data", "ball"):
        attack = entry.factory(entry.resolve({"steps": 5, "abs_stepsize": 0.1, "start": start}))
        torch.manual_seed(7)
        out[start] = unpack(attack(model, x, y, eps)).adv
    torch.manual_seed(7)
    want = advertorch_l2pgd(model, x, y, eps, nb_iter=5, eps_iter=0.1)
    assert torch.allclose(out["data"], want, atol=1e-5)
    assert (out["data"] - x).flatten(1).norm(dim=1).max() <= eps * (1 + 1e-5)
    # foolbox's start is another point: the parameter is not ignored
    assert not torch.allclose(out["ball"], want, atol=1e-3)


@pytest.mark.parametrize("eps", [0.5, 20.0])
def test_advertorchs_start_is_a_uniform_image_pulled_onto_the_ball(eps):
    """Beyond ‖u − x‖ (about 4.6 on 8×8 digits) the start is the noise image u itself;
    inside it, the point of the segment x → u at distance ε."""
    import eagerpy as ep

    from advbench.attacks.foolbox_attacks import AdvertorchL2PGD

    x, _ = data.load("digits", "test").get(torch.arange(8))
    torch.manual_seed(3)
    got = AdvertorchL2PGD(steps=1).get_random_start(ep.astensor(x), eps).raw
    torch.manual_seed(3)
    u = torch.rand(x.shape)
    dist = (u - x).flatten(1).norm(dim=1)
    if eps > 10:
        assert (dist < eps).all() and torch.allclose(got, u, atol=1e-6)
    else:
        want = x + (u - x) * (eps / dist).view(-1, 1, 1, 1)
        assert torch.allclose(got, want, atol=1e-6)
        assert torch.allclose((got - x).flatten(1).norm(dim=1), torch.full((8,), eps), atol=1e-5)


def test_start_data_is_refused_where_it_does_not_apply():
    from advbench.errors import BadInput

    with pytest.raises(BadInput, match="'sphere'"):
        ATTACKS.get("pgd-l2").resolve({"start": "sphere"})
    with pytest.raises(BadInput, match="start"):
        ATTACKS.get("pgd-linf").resolve({"start": "data"})
