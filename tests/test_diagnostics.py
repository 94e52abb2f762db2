"""What attacks record for the checklist (`advbench.diagnostics`), against values worked
out independently: on softmax regressions (tests/test_engine_pinned) the margin at the
clean input and an FGSM transfer example are a few lines of torch written here; a hard-label
model has no input gradient; a randomised model's prediction moves under tiny noise and a
deterministic one's does not, without touching the global random stream."""

import json
import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from advbench import data
from advbench.criteria import margin
from advbench.diagnostics import NOISE_DRAWS, stability
from advbench.engine import run_jobs, select_samples
from advbench.env import record_environment
from advbench.jobs import make_job
from advbench.store import open_db

sys.path.insert(0, str(Path(__file__).parent))
from test_engine_pinned import _load, _row  # noqa: E402


@pytest.fixture(scope="module")
def models():
    return {"lr": _load("lr"), "lr-src": _load("lr-src")}


def _run(tmp_path, models, job, model="lr"):
    db = open_db(tmp_path / "d.db")
    stored = {"lr": _row("lr", "a" * 64), "lr-src": _row("lr-src", "b" * 64)}
    db["models"].insert_all(stored.values())
    (res,) = run_jobs(
        db, models[model], stored["lr"], [job], n=20, seed=7, batch_size=8,
        env_id=record_environment(db, "cpu"), load_model=lambda m: (models[m], stored[m]),
    )  # fmt: skip
    rows = list(db["samples"].rows_where("run_id = ?", [res.id], order_by="position"))
    return rows


def _inputs():
    test = data.load("digits", "test")
    return test.get(select_samples(test.labels, 20, 7))


def test_trace_starts_at_the_clean_margin_and_never_rises(tmp_path, models):
    # every step of every instance (early stop, which ends broken ones sooner, is the
    # shortcuts' and is tested in test_shortcuts)
    rows = _run(tmp_path, models, make_job("pgd-linf", [0.1], {"steps": 6}, shortcuts=False))
    x, y = _inputs()
    with torch.no_grad():
        logits = models["lr"](x)
    own = logits.gather(1, y.view(-1, 1)).squeeze(1)
    other = logits.scatter(1, y.view(-1, 1), float("-inf")).amax(1)
    by_hand = own - other  # > 0: right; the margin at the clean input
    bound = float(models["lr"].lin.weight.detach().abs().sum(1).max())
    for row, m0 in zip(rows, by_hand.tolist(), strict=True):
        trace = json.loads(row["loss_trace"])
        # the best-so-far trace never rises
        assert all(b <= a + 1e-6 for a, b in zip(trace, trace[1:], strict=False))
        assert row["grad_passes"] == 6 and row["grad_zero"] == 0
        # an adversarial iterate exists exactly when the best margin went below zero
        assert (row["best_norm"] is not None) == (min(trace) < 0)
        if row["best_norm"] is not None:
            assert row["best_norm"] <= 0.1 * (1 + 1e-5)
        # the first pass is within ε of x in L∞: the margin moved by at most 2ε·max‖w_j‖₁
        assert abs(trace[0] - m0) <= 2 * 0.1 * bound + 1e-5
    # FGSM's one gradient pass is at the clean input: its trace is the clean margin itself
    (tmp_path / "f").mkdir()
    rows = _run(tmp_path / "f", models, make_job("fgsm", [0.1]))
    for row, m0 in zip(rows, by_hand.tolist(), strict=True):
        assert json.loads(row["loss_trace"]) == [pytest.approx(m0, rel=1e-4, abs=1e-5)]
        assert row["output_kind"] == "logits" and row["noise_flips"] == 0


def test_transfer_rows_say_whether_the_source_was_fooled(tmp_path, models):
    rows = _run(tmp_path, models, make_job("fgsm", [0.1], source="model:lr-src"))
    x, y = _inputs()
    # FGSM by hand on the source: x + ε·sign(∇x CE), clipped to [0, 1]
    xg = x.clone().requires_grad_(True)
    F.cross_entropy(models["lr-src"](xg), y, reduction="sum").backward()
    adv = (x + 0.1 * xg.grad.sign()).clamp(0, 1)
    with torch.no_grad():
        fooled_src = (models["lr-src"](adv).argmax(1) != y).int().tolist()
        pred = models["lr"](adv).argmax(1).tolist()
    assert [r["source_success"] for r in rows] == fooled_src
    assert [r["adv_pred"] for r in rows] == pred
    assert 0 < sum(fooled_src) < 20  # the comparison means something


class HardLabel(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.input_shape, self.classes = inner, inner.input_shape, inner.classes

    def forward(self, x):
        out = self.inner(x)
        return F.one_hot(out.argmax(1), 10).float()


def test_hard_labels_run_with_unavailable_gradients(tmp_path, models):
    hard = {"lr": HardLabel(models["lr"]), "lr-src": models["lr-src"]}
    rows = _run(tmp_path, hard, make_job("pgd-linf", [0.1], {"steps": 3}))
    assert all(r["grad_unavailable"] == 3 for r in rows)  # one per forward of its batch
    assert all(r["grad_zero"] == r["grad_passes"] == 3 for r in rows)
    assert {r["output_kind"] for r in rows} == {"one-hot"}
    # a zero gradient moves nothing: every prediction stays the clean one
    assert all(r["adv_pred"] == r["clean_pred"] for r in rows)


class Noisy(torch.nn.Module):
    """Random logits on top of a weak signal: a randomised "defense"."""

    def forward(self, x):
        return torch.randn(len(x), 10) * 5 + x.flatten(1)[:, :10]


def test_stability_counts_flips_and_leaves_the_random_stream(models):
    x, y = _inputs()
    with torch.no_grad():
        pred = models["lr"](x).argmax(1)
    state = torch.get_rng_state()
    flips, kinds = stability(models["lr"], x, pred, seed=3)
    assert torch.equal(state, torch.get_rng_state())  # a deterministic model draws nothing
    assert flips == [0] * 20 and kinds == ["logits"] * 20
    noisy = Noisy()
    flips, _ = stability(noisy, x, noisy(x).argmax(1), seed=3)
    assert sum(f > 0 for f in flips) > 10 and max(flips) <= NOISE_DRAWS + 1


def test_margin_sign_for_targeted_attacks():
    out = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    y = torch.tensor([0, 0])
    assert margin(out, y, None).tolist() == [1.0, -3.0]  # right by 1; wrong by 3
    target = torch.tensor([1, 1])
    assert margin(out, y, target).tolist() == [1.0, -2.0]  # not the target yet; reached


def test_the_criterion_and_its_margin_agree():
    """`criteria.adversarial` (what the engine records as success) and `criteria.margin`
    (the checklist's trace) say the same thing of every instance, targeted or not."""
    from advbench.criteria import adversarial

    g = torch.Generator().manual_seed(0)
    out = torch.randn(200, 10, generator=g)
    y = torch.randint(0, 10, (200,), generator=g)
    target = (y + torch.randint(1, 10, (200,), generator=g)) % 10
    pred = out.argmax(1)
    for t in (None, target):
        assert torch.equal(adversarial(pred, y, t), margin(out, y, t) < 0)
    assert adversarial(pred, y).any() and not adversarial(pred, y).all()
