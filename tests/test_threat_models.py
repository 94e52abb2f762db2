"""Targeted runs, transfer and proxy threat models, --only-correct, restart traces, BPDA."""

import json

import pytest
import torch

from advbench.attacks import ATTACKS
from advbench.catalogue import load_model
from advbench.engine import run_jobs
from advbench.env import record_environment
from advbench.errors import BadInput
from advbench.jobs import make_job
from advbench.store import open_db
from advbench.train import train_proxy

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


def test_transfer_from_the_root_on_the_root_itself_is_a_real_cell(db_copy):
    """fidel's Standard column of Tables V/VI and zantedeschi's undefended-CNN row: source
    and target may be the same model; the run is stored as a transfer, never skipped."""
    db = open_db(db_copy)
    (own,) = _run(db, "std", [make_job("fgsm", [0.3], source="root")])
    (white,) = _run(db, "std", [make_job("fgsm", [0.3])])
    run = db["runs"].get(own.id)
    assert (run["threat"], run["source_model"]) == ("transfer", "std") and own.id != white.id
    assert own.robust == white.robust  # FGSM is deterministic: crafted on itself = white-box
    (res,) = _run(db, "jac", [make_job("fgsm", [0.3], source="undefended")])
    assert db["runs"].get(res.id)["source_model"] == "std"
    (res,) = _run(db, "jac", [make_job("fgsm", [0.3], source="parent")])
    assert db["runs"].get(res.id)["source_model"] == "std"
    (res,) = _run(db, "jac", [make_job("fgsm", [0.3], source="arch:madry-mnist")])
    assert db["runs"].get(res.id)["source_model"] == "std"  # the one undefended madry net
    notes: list[str] = []
    assert _run(db, "jac", [make_job("fgsm", [0.3], source="arch:ibm-resnet")], notes=notes) == []
    assert _run(db, "jac", [make_job("fgsm", [0.3], source="given")], notes=notes) == []
    assert "`advbench train --arch ibm-resnet --dataset digits`" in notes[0]
    assert "--source-model" in notes[1]


def test_proxy_learns_the_targets_labels_and_is_recorded(db_copy):
    db = open_db(db_copy)
    stored = train_proxy(
        db, target="jac", arch="tf-mnist", epochs=2, batch_size=64, seed=0, device="cpu"
    )
    assert stored.row["parent"] == "jac" and stored.row["defense"] is None
    config = json.loads(stored.row["config"])
    assert (config["kind"], config["targets"]) == ("proxy", "softmax")
    # madnet 002:203: distillation of the teacher's output distribution, not its labels
    from advbench import data
    from advbench.train import teacher_targets

    teacher, _, _ = load_model(db, "jac")
    train = data.load("digits", "train")
    soft = teacher_targets(teacher, train)
    x, _ = train.get(torch.arange(5))
    with torch.no_grad():
        assert torch.allclose(soft[:5], torch.softmax(teacher(x), 1))
    assert soft.shape == (len(train), 10) and float(soft.max(1).values.min()) < 0.99
    # CE against soft targets is bounded below by their entropy (Gibbs): it was learned on them
    entropy = float(-(soft * soft.clamp_min(1e-12).log()).sum(1).mean())
    assert json.loads(stored.row["history"])[-1]["ce"] >= entropy - 1e-3
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


def test_suite_rows_keep_their_own_threat_model(runner, db_copy, tmp_path):
    """--source-model fills only the rows that ask for a model; a transfer row and a
    white-box row of the same attack are two cells of the report."""
    import csv
    import io

    from advbench.cli import app

    suite = {
        "name": "mixed",
        "n": {"smoke": 8, "cpu": 8, "full": 8},
        "attacks": [
            {"attack": "fgsm", "label": "FGSM", "eps": {"mnist": [0.3]}},
            {"attack": "fgsm", "label": "FGSM", "eps": {"mnist": [0.3]}, "source": "parent"},
            {"attack": "fgsm", "label": "FGSM named", "eps": {"mnist": [0.3]}, "source": "given"},
        ],
    }
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(suite))
    args = ["attack", "--model", "jac", "--suite", str(path), "--db", str(db_copy)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "FGSM named: skipped" in res.output
    db = open_db(db_copy)
    runs = {(r["label"], r["threat"], r["source_model"]) for r in db["runs"].rows}
    assert runs == {("FGSM", "white-box", None), ("FGSM", "transfer", "std")}
    res = runner.invoke(app, [*args, "--source-model", "jac"])
    assert res.exit_code == 0, res.output
    runs = {(r["label"], r["threat"], r["source_model"]) for r in db["runs"].rows}
    assert ("FGSM named", "transfer", "jac") in runs and ("FGSM", "transfer", "jac") not in runs
    out = runner.invoke(app, ["report", "--format", "csv", "--db", str(db_copy)]).output
    cells = {(r["attack"], r["eps"]) for r in csv.DictReader(io.StringIO(out))}
    # a declared shared source keys the cell (every model's parent); a named one shows it
    assert cells == {
        ("FGSM", "0.3"),
        ("FGSM [transfer] ← parent", "0.3"),
        ("FGSM named [transfer] ← jac", "0.3"),
    }
    from advbench.api.evaluate import _fill_sources

    job = make_job("fgsm", [0.3])
    _fill_sources([job], False, "root", None)  # a model that happens to be named "root"
    assert (job.source, job.declared) == ("model:root", "model:root")


def test_max_loss_keeps_the_restart_whose_final_iterate_has_the_highest_loss(db_copy):
    """pnml_adv's iterated_fgsm: per sample, argmax over restarts of the crafting model's
    loss at the final iterate (no per-iteration best)."""
    from torch.nn import functional as F

    db = open_db(db_copy)
    model, _, _ = load_model(db, "std")
    from advbench import data

    x, y = data.load("digits", "test").get(torch.arange(24))
    params = {**ATTACKS.get("pgd-linf").defaults(), "steps": 3, "abs_stepsize": 0.02}
    one = ATTACKS.get("pgd-linf").factory({**params, "restarts": 1})
    many = ATTACKS.get("pgd-linf").factory({**params, "restarts": 4, "keep": "max-loss"})
    torch.manual_seed(11)
    kept = many(model, x, y, 0.1)
    torch.manual_seed(11)
    tries = torch.stack([one(model, x, y, 0.1) for _ in range(4)])
    with torch.no_grad():
        losses = torch.stack([F.cross_entropy(model(t), y, reduction="none") for t in tries])
    expected = tries[losses.argmax(0), torch.arange(len(x))]
    assert torch.equal(kept.adv, expected)
    assert len(set(losses.argmax(0).tolist())) > 1  # the choice differs between samples
    assert kept.trace[0][-1] == pytest.approx(float(losses[:, 0].max()), rel=1e-5)
    # runs stored before `keep` existed keep their identity: the default is not hashed
    plain, best = make_job("pgd-linf", [0.1]), make_job("pgd-linf", [0.1], {"keep": "max-loss"})
    (a,) = _run(db, "std", [plain], n=4)
    (b,) = _run(db, "std", [best], n=4)
    params = [json.loads(db["runs"].get(r.id)["config"])["params"] for r in (a, b)]
    assert "keep" not in params[0] and params[1]["keep"] == "max-loss"


def test_pesso_pgd_and_fgsm_are_crafted_on_the_base_and_judged_on_pnml(db_copy):
    from advbench.suites import load_suite, suite_jobs
    from advbench.train import harden_model

    db = open_db(db_copy)
    harden_model(
        db, parent="std", defense="pnml", name="std+pnml", params={}, epochs=None,
        batch_size=64, optimizer=None, lr=None, weight_decay=None, seed=0, device="cpu",
    )  # fmt: skip
    jobs, _ = suite_jobs(load_suite("pesso"), "digits", "smoke")
    jobs = [j for j in jobs if j.label in ("FGSM", "PGD", "Adaptive")]
    assert {j.label: j.params.get("keep") for j in jobs} == {
        "FGSM": None,
        "PGD": "max-loss",
        "Adaptive": "max-loss",
    }
    for j in jobs:
        j.eps = j.eps[-1:]
    by = {}
    for name in ("std+pnml", "std"):
        for s in _run(db, name, jobs, n=8):
            run = db["runs"].get(s.id)
            by[name, s.label] = (run["threat"], run["source_model"])
    assert by["std+pnml", "PGD"] == by["std+pnml", "FGSM"] == ("transfer", "std")
    assert by["std+pnml", "Adaptive"] == ("white-box", None)
    assert by["std", "PGD"] == ("transfer", "std")  # the base itself: crafted on itself


def test_targeted_hsj_starts_from_an_image_of_the_target_class(db_copy):
    from advbench import data

    db = open_db(db_copy)
    hsj = {"max_iter": 2, "max_eval": 50, "init_eval": 10, "init_size": 5}
    (res,) = _run(db, "std", [make_job("hsj", [float("inf")], hsj, targeted="random")], n=10)
    rows = _samples(db, res.id)
    model, _, _ = load_model(db, "std")
    test = data.load("digits", "test")
    starts = [r for r in rows if r["start_idx"] is not None]
    assert len(starts) == len(rows) == 10
    x, _ = test.get(torch.tensor([r["start_idx"] for r in starts]))
    with torch.no_grad():
        pred = model(x).argmax(1).tolist()
    assert pred == [r["target"] for r in starts]  # every start point is its target class
    assert all(r["start_idx"] != r["idx"] for r in starts)
    assert all(r["init_failed"] == 0 for r in rows)
    assert all(r["success"] for r in rows)  # started in the target class: reached, at some L2
    # runs made before targeted starts existed are not reused for this request
    assert json.loads(db["runs"].get(res.id)["config"])["start"] == "target-image"


def test_untargeted_hsj_is_reproducible(db_copy):
    """ART draws HopSkipJump's noise start from an unseeded RandomState; ours is drawn from
    the per-batch seed, so the same run forced again gives the same rows (it did not)."""
    db = open_db(db_copy)
    hsj = {"max_iter": 2, "max_eval": 50, "init_eval": 10, "init_size": 20}
    job = make_job("hsj", [1.0, float("inf")], hsj)
    cols = ("idx", "adv_pred", "success", "l2", "linf", "min_norm", "fwd", "init_failed")

    def rows(res):
        return [tuple(r[c] for c in cols) for s in res for r in _samples(db, s.id)]

    first = rows(_run(db, "std", [job], n=10))
    again = rows(_run(db, "std", [job], n=10, force=True))
    assert first == again
    assert any(r[2] for r in first)  # the start was found and the search broke samples
    assert all(r[6] > 1 for r in first)  # queries counted per sample


def test_a_failed_initialisation_is_flagged_and_not_counted_robust(db_copy):
    """A model that predicts one class everywhere: HSJ finds no start, untargeted."""
    from torch import nn

    class Constant(nn.Module):
        input_shape, classes = (1, 8, 8), 10

        def __init__(self):
            super().__init__()
            self.unused = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return nn.functional.one_hot(torch.full((len(x),), 3), 10).float() + 0 * x.sum()

    db = open_db(db_copy)
    hsj = {"max_iter": 2, "max_eval": 50, "init_eval": 10, "init_size": 5}
    job = make_job("hsj", [2.0], hsj, only_correct=True)
    from advbench.catalogue import model_row

    env = record_environment(db, "cpu")
    (res,) = run_jobs(db, Constant(), model_row(db, "std"), [job], n=6, seed=2, batch_size=6,
                      env_id=env)  # fmt: skip
    rows = _samples(db, res.id)
    assert [r["init_failed"] for r in rows] == [1] * 6
    assert (res.n, res.robust, res.init_failed) == (0, 0, 6)
    from advbench.report import summary_table

    table = summary_table(db, ["std"])
    assert table["hsj ε=2"].tolist() == ["no start (6 failed)"]  # shown, not dropped


def test_hsj_noise_start_judges_unstarted_samples_as_they_are(db_copy):
    """fidel's protocol (ART's HopSkipJump): a targeted sample whose noise draws never land
    in the target class is returned unchanged and counted as it is, not left out of n."""
    db = open_db(db_copy)
    params = {"max_iter": 1, "max_eval": 10, "init_eval": 5, "init_size": 1}
    (noise,) = _run(db, "std", [make_job("hsj", [float("inf")], {**params, "start": "noise"},
                                         targeted="random")])  # fmt: skip
    rows = _samples(db, noise.id)
    assert noise.init_failed == 0 and noise.n == len(rows) == 12
    unchanged = [r for r in rows if r["l2"] == 0]
    assert unchanged, "one noise draw per sample should miss some targets"
    for r in unchanged:
        assert r["adv_pred"] == r["clean_pred"] and not r["init_failed"]
    run = json.loads(db["runs"].get(noise.id)["config"])
    assert run["start"] == "noise" and run["params"]["start"] == "noise"
    # the default keeps its identity (a parameter added later is left out at its default)
    (image,) = _run(db, "std", [make_job("hsj", [float("inf")], params, targeted="random")])
    assert "start" not in json.loads(db["runs"].get(image.id)["config"])["params"]
    assert image.id != noise.id
