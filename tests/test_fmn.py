"""advbench's own Fast Minimum-Norm attack (advbench/attacks/fmn.py, issue 30).

Its norms are compared with values derived independently: the exact minimal distance of a
linear classifier (by hand), foolbox's L∞ FMN (the same algorithm from x, a separate
implementation) and AutoAttack's FAB (Croce & Hein's own package, another minimal attack)
on the digits model. The convention of foolbox's that made advbench write its own (its L2
projection does nothing) is pinned too, so the docstring's reason stays checked.
"""

import math

import eagerpy as ep
import foolbox as fb
import pytest
import torch

from advbench.attacks import ATTACKS, unpack
from advbench.attacks.fmn import REACH, _project, fmn_search
from advbench.catalogue import load_model
from advbench.data import load
from advbench.engine.instances import select_samples
from advbench.store import open_db


def test_foolbox_l2_fmn_projection_is_a_no_op():
    """foolbox 3.3.4's L2FMNAttack.project scales by min(1, ‖x‖/‖x‖): a point 10 away from
    x0 stays 10 away under ε = 1. If foolbox fixes it, this fails and the docstring's
    reason for advbench's own FMN needs another look."""
    x0 = torch.zeros(2, 1, 4, 4)
    x = x0 + 2.5  # ‖x − x0‖₂ = 10
    out = fb.attacks.L2FMNAttack().project(ep.astensor(x), ep.astensor(x0),
                                           ep.astensor(torch.ones(2))).raw  # fmt: skip
    assert torch.equal(out, x)
    ours = _project(x - x0, torch.ones(2), "l2")
    assert ours.flatten(1).norm(dim=1).tolist() == pytest.approx([1.0, 1.0])
    assert _project(x - x0, torch.full((2,), 0.3), "linf").abs().max() == pytest.approx(0.3)


class Linear(torch.nn.Module):
    def __init__(self, w, b):
        super().__init__()
        self.w, self.b = w, b

    def forward(self, x):
        return x.flatten(1) @ self.w.T + self.b


def _linear_case(seed=0, n=40, d=64, k=5):
    """A linear classifier and inputs in the middle of the box, labelled by the model, so
    the smallest adversarial is the nearest of the k − 1 hyperplanes and lies inside [0, 1]:
    in Lp its distance is min_j (z_y − z_j) / ‖w_y − w_j‖_q (q the dual norm)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(k, d, generator=g) * 0.3
    b = torch.randn(k, generator=g) * 0.1
    x = 0.5 + 0.1 * (torch.rand(n, 1, 8, 8, generator=g) - 0.5)
    model = Linear(w, b)
    with torch.no_grad():
        z = model(x)
    y = z.argmax(1)
    gap = z.gather(1, y[:, None]) - z  # (n, k)
    diff = w[y][:, None, :] - w[None, :, :]  # (n, k, d): w_y − w_j
    exact = {}
    for norm, q in (("l2", 2), ("linf", 1)):
        dist = gap / diff.norm(p=q, dim=-1).clamp_min(1e-12)
        dist[torch.arange(n), y] = math.inf
        exact[norm] = dist.amin(1)
    return model, x, y, exact


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_fmn_finds_a_linear_models_exact_minimal_distance(norm):
    model, x, y, exact = _linear_case()
    adv, found = fmn_search(model, x, y, norm=norm, steps=100, max_stepsize=1.0, gamma=0.05,
                            reach=REACH[norm])  # fmt: skip
    with torch.no_grad():
        assert (model(adv).argmax(1) != y).all()
    p = 2 if norm == "l2" else math.inf
    real = (adv - x).flatten(1).norm(p=p, dim=1)
    assert torch.allclose(real, found, rtol=1e-5)
    assert (real >= exact[norm] * (1 - 1e-4)).all()  # nothing beats the exact minimum
    assert (real <= exact[norm] * 1.01).float().mean() >= 0.95


@pytest.fixture(scope="module")
def digits(trained_db):
    db = open_db(trained_db)
    model, _, _ = load_model(db, "std")
    test = load("digits", "test")
    idx = select_samples(test.labels, 48, 0)
    x, y = test._fetch(idx).float(), test.labels[idx]
    with torch.no_grad():
        keep = model(x).argmax(1) == y
    return model.eval(), x[keep], y[keep]


def test_fmn_linf_from_the_input_matches_foolboxs_implementation(digits):
    """The same algorithm from x (foolbox's L∞ projection is right): the same norms."""
    model, x, y = digits
    ours, _ = fmn_search(model, x, y, norm="linf", steps=30, max_stepsize=1.0, gamma=0.05)
    theirs = fb.attacks.LInfFMNAttack(steps=30)(fb.PyTorchModel(model, bounds=(0, 1)), x, y,
                                                epsilons=None)[0]  # fmt: skip
    a = (ours - x).flatten(1).abs().amax(1)
    b = (theirs - x).flatten(1).abs().amax(1)
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-5)


def _fab(model, x, y, norm: str):
    from pyautoattack.fab_pt import FABAttack_PT

    fab = FABAttack_PT(model, norm="L2" if norm == "l2" else "Linf", n_restarts=3, n_iter=100,
                       eps=1e3, seed=0, device="cpu")  # fmt: skip
    return fab.perturb(x, y)


def _ratios(model, x, y, ours, theirs, norm: str):
    """Per instance both break (at least 90 % of them): our norm / the other's."""
    p = 2 if norm == "l2" else math.inf
    with torch.no_grad():
        both = (model(ours).argmax(1) != y) & (model(theirs).argmax(1) != y)
    assert both.float().mean() >= 0.9
    a = (ours - x).flatten(1).norm(p=p, dim=1)
    return (a / (theirs - x).flatten(1).norm(p=p, dim=1))[both]


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_fmn_is_no_further_than_autoattacks_fab(digits, norm):
    """Per instance both break, the registry's FMN (DeepFool start, 50 steps, carlini-eval's
    cpu budget) is within 5 % of FAB at 100 iterations and 3 restarts on ≥ 95 % of them."""
    model, x, y = digits
    torch.manual_seed(0)
    attack = ATTACKS.get(f"fmn-{norm}")
    ours = attack.factory(attack.resolve({"steps": 50}))(model, x, y)
    ratio = _ratios(model, x, y, ours, _fab(model, x, y, norm), norm)
    assert (ratio <= 1.05).float().mean() >= 0.95


@pytest.fixture(scope="module")
def fab_l2(digits):
    """FAB-L2's examples on the digits instances, computed once for the suite rows' tests."""
    return _fab(*digits, "l2")


def _suite_row(label: str):
    from advbench.suites import load_suite, suite_jobs

    jobs, _ = suite_jobs(load_suite("carlini-eval"), "digits", "cpu")
    (job,) = [j for j in jobs if j.label == label]
    return ATTACKS.get(job.attack).factory(job.params)


def test_carlini_evals_cw_against_autoattacks_fab(digits, fab_l2):
    """carlini-eval's C&W row at its cpu budget (read from the suite, so a change of its
    attack or parameters is judged here) against FAB-L2 (3 restarts), per instance both
    break: within 5 % on ≥ 95 % of them. Measured 2026-12-07: advbench's C&W from DeepFool's
    adversarial with warm binary-search steps (cw-l2-warm, 125 x 5 at Adam step 0.1) 100 %,
    median ratio 0.998, 95th percentile 1.009; at 3 searches median 1.007, which this test
    fails. foolbox's C&W from the input at the same budget: 76 %, 0.997, 1.85 (its far local
    optima: FAB's restarts reach classes that local search does not); even the paper's
    full budget (1,000 x 9 from the input) is within 5 % on only 74 %."""
    model, x, y = digits
    ours = unpack(_suite_row("CW-L2")(model, x, y)).adv
    ratio = _ratios(model, x, y, ours, fab_l2, "l2")
    assert (ratio <= 1.05).float().mean() >= 0.95
    assert ratio.median() <= 1.005
    assert ratio.quantile(0.95) <= 1.05


def test_carlini_evals_superdeepfool_against_autoattacks_fab(digits, fab_l2):
    """carlini-eval's SuperDeepFool row at its cpu budget (5 rounds) against FAB-L2, held to
    the C&W row's bounds. Measured 2026-12-07: 100 % within 5 %, median ratio 0.994, 95th
    percentile 1.003. DeepFool's row, which it generalises, would fail: 76 %, 1.011, 1.168
    (its first-order direction; issue 30)."""
    model, x, y = digits
    ours = unpack(_suite_row("SuperDeepFool-L2")(model, x, y)).adv
    ratio = _ratios(model, x, y, ours, fab_l2, "l2")
    assert (ratio <= 1.05).float().mean() >= 0.95
    assert ratio.median() <= 1.005
    assert ratio.quantile(0.95) <= 1.05
