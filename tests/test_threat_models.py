"""Targeted runs, transfer and proxy threat models, --only-correct, restart traces, BPDA."""

import json

import pytest
import torch

from advbench.attacks import ATTACKS
from advbench.engine import make_job, run_jobs
from advbench.env import record_environment
from advbench.errors import BadInput
from advbench.store import open_db
from advbench.train import load_model, train_proxy

CW = {"steps": 20, "binary_search_steps": 2, "stepsize": 0.05, "initial_const": 1.0}


def _run(db, name, jobs, n=12, **kw):
    model, _, row = load_model(db, name)
    env = record_environment(db, "cpu")
    return run_jobs(
        db,
        model,
        row,
        jobs,
        n=n,
        seed=5,
        batch_size=8,
        env_id=env,
        load_model=lambda m: load_model(db, m)[::2],
        **kw,
    )


def _samples(db, run_id):
    return list(db["samples"].rows_where("run_id = ?", [run_id], order_by="position"))


def test_all_others_gives_one_instance_per_other_label(db_copy):
    db = open_db(db_copy)
    (res,) = _run(db, "std", [make_job("pgd-linf", [0.3], {"steps": 5}, targeted="all-others")])
    rows = _samples(db, res.id)
    assert res.n == len(rows) == 12 * 9 and res.targeted == "all-others"
    by_sample: dict[int, list[int]] = {}
    for r in rows:
        by_sample.setdefault(r["idx"], []).append(r["target"])
    assert len(by_sample) == 12
    for r in rows:
        assert sorted(by_sample[r["idx"]]) == sorted(set(range(10)) - {r["label"]})
        assert r["success"] == int(r["adv_pred"] == r["target"])  # success = target reached
    assert sum(r["success"] for r in rows) > 0
    run = db["runs"].get(res.id)
    assert (run["n"], run["n_samples"]) == (108, 12)


def test_targeted_minimal_attack_is_judged_against_the_target(db_copy):
    db = open_db(db_copy)
    res = _run(db, "std", [make_job("cw-l2", [1.0, 3.0], CW, targeted="random")])
    rows = _samples(db, res[-1].id)
    assert all(r["target"] != r["label"] for r in rows)
    for r in rows:
        if r["success"]:
            assert r["adv_pred"] == r["target"] and r["l2"] <= 3.0 + 1e-4


def test_untargetable_attack_is_refused():
    with pytest.raises(BadInput, match="deepfool-l2 has no targeted variant"):
        make_job("deepfool-l2", [1.0], targeted="all-others")
    with pytest.raises(BadInput, match="all-others, random"):
        make_job("fgsm", [0.1], targeted="every")


def test_transfer_crafts_on_the_source_and_evaluates_on_the_target(db_copy):
    db = open_db(db_copy)
    job = make_job("fgsm", [0.3], source="std")
    (res,) = _run(db, "jac", [job])
    run = db["runs"].get(res.id)
    assert (run["threat"], run["source_model"]) == ("transfer", "std")
    # The stored examples are exactly FGSM on std (deterministic), judged by jac.
    std, _, _ = load_model(db, "std")
    jac, _, _ = load_model(db, "jac")
    from advbench import data

    rows = _samples(db, res.id)
    x, y = data.load("digits", "test").get(torch.tensor([r["idx"] for r in rows]))
    x.requires_grad_(True)
    torch.nn.functional.cross_entropy(std(x), y).backward()
    adv = (x + 0.3 * x.grad.sign()).clamp(0, 1).detach()
    assert [r["adv_pred"] for r in rows] == jac(adv).argmax(1).tolist()
    white = _run(db, "jac", [make_job("fgsm", [0.3])])[0]
    assert white.id != res.id


def test_transfer_from_undefended_root_skips_the_root_itself(db_copy):
    db = open_db(db_copy)
    notes: list[str] = []
    assert _run(db, "std", [make_job("fgsm", [0.3], source="undefended")], notes=notes) == []
    assert "skipped" in notes[0]
    (res,) = _run(db, "jac", [make_job("fgsm", [0.3], source="undefended")])
    assert db["runs"].get(res.id)["source_model"] == "std"


def test_proxy_learns_the_targets_labels_and_is_recorded(db_copy):
    db = open_db(db_copy)
    stored = train_proxy(
        db, target="jac", arch="tf-mnist", epochs=2, batch_size=64, seed=0, device="cpu"
    )
    assert stored.row["parent"] == "jac" and stored.row["defense"] is None
    assert json.loads(stored.row["config"])["kind"] == "proxy"
    (res,) = _run(db, "jac", [make_job("fgsm", [0.3], source=stored.name)])
    assert db["runs"].get(res.id)["threat"] == "proxy"


def test_only_correct_attacks_correctly_classified_samples(db_copy):
    db = open_db(db_copy)
    (res,) = _run(db, "std", [make_job("fgsm", [0.0], only_correct=True)], n=60)
    rows = _samples(db, res.id)
    assert len(rows) == 60 and all(r["clean_pred"] == r["label"] for r in rows)
    assert res.accuracy == 1.0  # ε = 0 changes nothing


def test_restarts_trace_is_monotone_and_ends_at_the_result(db_copy):
    db = open_db(db_copy)
    res = _run(db, "std", [make_job("cw-l2-restarts", [1.0], {**CW, "restarts": 3, "radius": 0.5})])
    for r in _samples(db, res[0].id):
        trace = json.loads(r["trace"])
        assert len(trace) == 3
        found = [t for t in trace if t is not None]
        assert found == sorted(found, reverse=True)  # best L2 never grows
        if r["clean_pred"] == r["label"] and r["min_norm"] is not None:
            assert r["min_norm"] == pytest.approx(trace[-1], rel=1e-4)
    (pgd,) = _run(db, "std", [make_job("pgd-linf", [0.1], {"steps": 3, "restarts": 3})])
    for r in _samples(db, pgd.id):
        trace = json.loads(r["trace"])
        assert trace == sorted(trace) and trace[-1] == r["success"]


class _Quantised(torch.nn.Module):
    """An inference-time defense with a zero-gradient step (rounding) and its BPDA."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.input_shape, self.classes = inner, inner.input_shape, inner.classes

    def forward(self, x):
        return self.inner(torch.round(x * 4) / 4)

    def bpda(self, x):
        return self.inner(x + (torch.round(x * 4) / 4 - x).detach())  # identity backward


def test_bpda_pgd_sees_through_a_gradient_masking_wrapper():
    torch.manual_seed(0)
    inner = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    inner.input_shape, inner.classes = (1, 4, 4), 3
    model = _Quantised(inner)
    x = torch.rand(64, 1, 4, 4)
    y = model(x).argmax(1)
    bpda = ATTACKS.get("bpda-pgd").factory({**ATTACKS.get("bpda-pgd").defaults(), "steps": 10})
    adv = bpda(model, x, y, 0.3)
    broken = (model(adv).argmax(1) != y).float().mean()

    class _NoBpda(_Quantised):
        bpda = property(lambda self: self.forward)

    masked = bpda(_NoBpda(inner), x, y, 0.3)
    blind = (model(masked).argmax(1) != y).float().mean()
    assert broken > 0.5 and broken > blind + 0.3, (broken, blind)


def test_unknown_source_model_is_a_bad_input(db_copy):
    db = open_db(db_copy)
    with pytest.raises(BadInput, match="ghost"):
        _run(db, "jac", [make_job("fgsm", [0.3], source="ghost")])
