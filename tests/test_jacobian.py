"""The Jacobian regulariser against hand computations, and its effect on real data."""

import pytest
import torch
from torch import nn

from advbench.catalogue import load_model
from advbench.data import load
from advbench.defenses.jacobian import jacobian_regulariser, jacobian_sq_norms


def _tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.Tanh(), nn.Linear(7, 4))


def _full_jacobian_sq(model, x):
    out = []
    for xi in x:
        j = torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0))[0], xi)
        out.append(float(j.pow(2).sum()))
    return torch.tensor(out)


def test_exact_norm_matches_autograd_jacobian():
    model = _tiny()
    x = torch.randn(5, 1, 3, 4, requires_grad=True)
    sq = jacobian_sq_norms(model, x, model(x), exact=True)
    assert torch.allclose(sq.detach(), _full_jacobian_sq(model, x.detach()), rtol=1e-5)


def test_exact_norm_matches_finite_differences():
    model = _tiny().double()
    x = torch.randn(2, 1, 3, 4, dtype=torch.float64, requires_grad=True)
    sq = jacobian_sq_norms(model, x, model(x), exact=True).detach()
    h = 1e-6
    base = x.detach()
    fd = torch.zeros(2, dtype=torch.float64)
    for d in range(12):
        e = torch.zeros_like(base).flatten(1)
        e[:, d] = h
        e = e.view_as(base)
        diff = (model(base + e) - model(base - e)) / (2 * h)
        fd += diff.pow(2).sum(1)
    assert torch.allclose(sq, fd, rtol=1e-6)


def test_random_projection_estimate_is_unbiased():
    model = _tiny()
    x = torch.randn(3, 1, 3, 4, requires_grad=True)
    exact = jacobian_sq_norms(model, x, model(x), exact=True).detach()
    torch.manual_seed(1)
    draws = torch.stack(
        [jacobian_sq_norms(model, x, model(x), projections=1).detach() for _ in range(3000)]
    )
    assert torch.allclose(draws.mean(0), exact, rtol=0.05)
    assert draws.std(0).min() > 0  # it really is random


def test_forms_scale_as_documented():
    model = _tiny()
    x = torch.randn(4, 1, 3, 4, requires_grad=True)
    sq = _full_jacobian_sq(model, x.detach())
    hoff = jacobian_regulariser(model, x, model(x), exact=True)
    jak = jacobian_regulariser(model, x, model(x), form="jakubovitz")
    assert float(hoff) == pytest.approx(0.5 * float(sq.mean()), rel=1e-5)
    assert float(jak) == pytest.approx(float(sq.sum().sqrt()) / 4, rel=1e-5)


def test_hardening_lowers_the_jacobian_norm_on_real_data(trained_db):
    from advbench.store import open_db

    db = open_db(trained_db)
    x, _ = load("digits", "test").get(torch.arange(100))
    norms = {}
    for name in ("std", "jac"):
        model, _, _ = load_model(db, name)
        xi = x.clone().requires_grad_(True)
        norms[name] = float(jacobian_sq_norms(model, xi, model(xi), exact=True).mean())
    assert norms["jac"] < 0.8 * norms["std"], norms
    row = db["models"].get("jac")
    assert row["parent"] == "std" and row["defense"] == "jacobian"
    assert '"lambda": 0.5' in row["defense_config"]
