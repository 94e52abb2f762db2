"""The evaluation checklist, one check at a time: each on one hand-made input that passes
and one that fails (or warns), the numbers in its verdict worked out by hand. Then end to
end on digits: carlini-eval (smoke) on gradient-masked models must fail, naming the checks
that fired, and a normally and an adversarially trained model must pass every check."""

import json

import pytest

from advbench import checks
from advbench.checks import Run
from advbench.cli import app
from advbench.store import is_robust


def sample(i, robust=True, clean_ok=True, target=None, **kw):
    row = {"position": i, "idx": i, "target": target, "label": 3,
           "clean_pred": 3 if clean_ok else 7, "adv_pred": 3 if robust and clean_ok else 5,
           "init_failed": None, "trace": None, "best_norm": None, "loss_trace": None,
           "grad_zero": 0, "grad_nonfinite": 0, "grad_passes": 10, "grad_unavailable": 0,
           "noise_flips": 0, "output_kind": "logits", "source_success": None}  # fmt: skip
    row.update(kw)
    return row


def run(rid, attack, eps, robust_idx, n=20, norm="linf", kind="budget", threat="white-box",
        params=None, label=None, rows=None, targeted=None):  # fmt: skip
    rows = rows or [sample(i, robust=i in robust_idx) for i in range(n)]
    robust = sum(is_robust(s) for s in rows)
    return Run(rid, attack, label or attack, norm, kind, eps, targeted, threat, params or {},
               robust, len(rows), rows=rows)  # fmt: skip


def test_monotone():
    ok = [run("a", "pgd-linf", 0.1, range(10)), run("b", "pgd-linf", 0.2, range(6))]
    v = checks.check_monotone("m", ok)
    assert v.status == "pass" and "1 attacks non-increasing" in v.numbers
    # 6 → 15 of 20 robust: intervals [0.15, 0.52] and [0.53, 0.89] do not overlap
    bad = [run("a", "pgd-linf", 0.1, range(6)), run("b", "pgd-linf", 0.2, range(15))]
    v = checks.check_monotone("m", bad)
    assert v.status == "fail" and "30.0% at ε=0.1 → 75.0% at ε=0.2" in v.numbers
    assert "--eps 0.2" in v.settle and "--force" in v.settle
    # a rise of 2 instances within the intervals warns
    assert checks.check_monotone("m", [bad[0], run("b", "pgd-linf", 0.2, range(8))]).status \
        == "warn"  # fmt: skip
    # a minimal attack's curve is one search judged at every ε: not evidence either way
    minimal = [run("c", "cw-l2", e, range(6 + k), kind="minimal", norm="l2")
               for k, e in enumerate((0.5, 1.0))]  # fmt: skip
    v = checks.check_monotone("m", minimal)
    assert v.status == "skip" and "monotone by construction" in v.numbers


def test_unbounded():
    v = checks.check_unbounded("m", [run("u", "pgd-linf", 1.0, [])])
    assert v.status == "pass" and "0/20 (0.0%)" in v.numbers
    v = checks.check_unbounded("m", [run("u", "pgd-linf", 1.0, range(3))])
    assert v.status == "fail" and "3/20 (15.0%)" in v.numbers
    v = checks.check_unbounded("m", [run("u", "pgd-linf", 0.3, [])])  # bounded: not one
    assert v.status == "warn" and "--eps 1" in v.settle
    # madnet's C&W is judged at L2 ε = ∞ but searches (or is clipped) inside an L∞ ball of
    # 0.3: the 87 % it leaves is that ball's, not an unbounded attack's failure
    for attack, bound in (("cw-l2-box", "linf"), ("cw-l2", "linf_clip")):
        boxed = run("c", attack, float("inf"), range(17), norm="l2", kind="minimal",
                    params={bound: 0.3})  # fmt: skip
        assert checks.check_unbounded("m", [boxed]).status == "warn"
        free = run("c", attack, float("inf"), range(17), norm="l2", kind="minimal",
                   params={bound: None} if bound == "linf_clip" else {})  # fmt: skip
        assert checks.check_unbounded("m", [free]).status == "fail"


def test_iterative_beats_one_step():
    fgsm = run("f", "fgsm", 0.1, range(10))  # breaks 10-19
    pgd = run("p", "pgd-linf", 0.1, range(5), params={"steps": 10})  # breaks 5-19
    assert checks.check_iterative("m", [fgsm, pgd]).status == "pass"
    weak = run("p", "pgd-linf", 0.1, [*range(5), 12, 13], params={"steps": 10})
    v = checks.check_iterative("m", [fgsm, weak])  # FGSM broke 12 and 13, PGD did not
    assert v.status == "fail" and "2/20 (10.0%)" in v.numbers
    assert "steps=20" in v.settle


def test_white_box_beats_others():
    pgd = run("p", "pgd-linf", 0.1, range(5))
    noise = run("n", "noise", 0.1, range(18))
    assert checks.check_white_box("m", [pgd, noise]).status == "pass"
    masked = run("p", "pgd-linf", 0.1, range(20))  # white-box breaks nothing
    transfer = run("t", "pgd-linf", 0.1, range(15), threat="transfer", label="Transfer")
    v = checks.check_white_box("m", [masked, transfer])
    assert v.status == "fail" and "5/20 (25.0%)" in v.numbers


def test_effort():
    base = run("a", "pgd-linf", 0.1, range(12), params={"steps": 10, "restarts": 1})
    same = run("b", "pgd-linf", 0.1, range(11), params={"steps": 20, "restarts": 1})
    v = checks.check_effort("m", [base, same])
    assert v.status == "pass" and "1 compared" in v.numbers
    lower = run("b", "pgd-linf", 0.1, range(3), params={"steps": 20, "restarts": 1})
    v = checks.check_effort("m", [base, lower])  # 60 % → 15 %, below the 38.7 % lower bound
    assert v.status == "fail" and "60.0% → 15.0%" in v.numbers
    other = run("c", "pgd-linf", 0.1, range(3), params={"steps": 20, "rel_stepsize": 0.1})
    assert checks.check_effort("m", [base, other]).status == "warn"  # not effort alone
    # a restarted run's trace: robust after restart 1 = 15, after 3 = 4 → fails
    rows = [sample(i, robust=i < 4, trace=json.dumps([int(i >= 15), int(i >= 8), int(i >= 4)]))
            for i in range(20)]  # fmt: skip
    restarted = run("r", "pgd-linf", 0.1, [], rows=rows, params={"restarts": 3})
    v = checks.check_effort("m", [restarted])
    assert v.status == "fail" and "first restart 75.0% → 3 restarts 20.0%" in v.numbers


def test_effort_and_monotone_decide_on_the_paired_instances():
    """The demo's Jacobian model: restarts broke 2 of 200 instances the first restart left
    (1.0 % → 0.0 %): exact McNemar p = 2 × 0.5² = 0.5, not evidence of non-convergence.
    50 → 43 of 100 with all 7 movers one way: the intervals overlap ([40.4, 59.6] and
    [33.7, 52.8]) but p = 2 × 0.5⁷ = 0.0156 on the same instances: it fails."""
    rows = [sample(i, robust=False, trace=json.dumps([int(i >= 2), 1])) for i in range(200)]
    restarted = run("r", "pgd-linf", 0.3, [], rows=rows, params={"restarts": 2})
    v = checks.check_effort("m", [restarted])
    assert v.status == "pass"
    assert "2 instances broken by a later restart only (McNemar p 0.50)" in v.numbers
    base = run("a", "pgd-linf", 0.1, range(50), n=100, params={"steps": 10})
    lower = run("b", "pgd-linf", 0.1, range(43), n=100, params={"steps": 20})
    v = checks.check_effort("m", [base, lower])
    assert v.status == "fail"
    assert "7 instances robust under the weaker only, 0 under the stronger only of 100 " \
        "(McNemar p 0.016)" in v.numbers  # fmt: skip
    # the same counts as a rise in ε fail the monotone check on the same instances
    v = checks.check_monotone("m", [run("a", "pgd-linf", 0.1, range(43), n=100),
                                    run("b", "pgd-linf", 0.2, range(50), n=100)])  # fmt: skip
    assert v.status == "fail" and "(McNemar p 0.016)" in v.numbers


def test_silent_success():
    rows = [sample(i, robust=i < 10, best_norm=0.05 if i >= 10 else None) for i in range(20)]
    assert checks.check_silent("m", [run("p", "pgd-linf", 0.1, [], rows=rows)]).status == "pass"
    rows[0]["best_norm"] = 0.1  # robust, yet an iterate at distance 0.1 fooled the model
    rows[1]["best_norm"] = 0.2  # outside ε 0.1: not silent
    v = checks.check_silent("m", [run("p", "pgd-linf", 0.1, [], rows=rows)])
    assert v.status == "fail" and "1/10 (10.0%)" in v.numbers
    old = [sample(i, grad_passes=None, best_norm=None) for i in range(5)]
    assert checks.check_silent("m", [run("p", "pgd-linf", 0.1, [], rows=old)]).status == "skip"


def test_incomplete_optimisation():
    assert checks.still_falling([5, 3, 2, 1.9, 1.88, 1.87, 1.86, 1.86]) is False
    assert checks.still_falling([5, 4, 3, 2.5, 2, 1.5, 1, 0.5]) is True
    flat = json.dumps([5, 3, 2, 2, 2, 2, 2, 2])
    rows = [sample(i, loss_trace=flat) for i in range(10)]
    assert checks.check_incomplete("m", [run("p", "pgd-linf", 0.1, [], rows=rows)]).status \
        == "pass"  # fmt: skip
    for s in rows[:3]:
        s["loss_trace"] = json.dumps([5, 4, 3, 2.5, 2, 1.5, 1, 0.5])
    v = checks.check_incomplete("m", [run("p", "pgd-linf", 0.1, [], rows=rows,
                                          params={"steps": 7})])  # fmt: skip
    assert v.status == "fail" and "3/10 (30.0%)" in v.numbers and "steps=14" in v.settle


def test_gradients():
    rows = [sample(i, grad_zero=1 if i == 0 else 0) for i in range(40)]
    assert checks.check_gradients("m", [run("p", "pgd-linf", 0.1, [], rows=rows)]).status \
        == "pass"  # fmt: skip
    masked = [sample(i, grad_zero=10) for i in range(40)]
    v = checks.check_gradients("m", [run("p", "pgd-linf", 0.1, [], rows=masked)])
    assert v.status == "fail" and "zero at every pass 40/40 (100.0%)" in v.numbers
    gone = [sample(i, grad_unavailable=3) for i in range(4)]
    v = checks.check_gradients("m", [run("p", "pgd-linf", 0.1, [], rows=gone)])
    assert v.status == "fail" and "unavailable 4/4" in v.numbers


def test_unstable_predictions():
    rows = [sample(i) for i in range(50)]
    assert checks.check_unstable("m", [run("p", "pgd-linf", 0.1, [], rows=rows)]).status \
        == "pass"  # fmt: skip
    for s in rows[:6]:
        s["noise_flips"] = 2
    v = checks.check_unstable("m", [run("p", "pgd-linf", 0.1, [], rows=rows)])
    assert v.status == "fail" and "6/50 (12.0%)" in v.numbers


def test_outputs():
    assert checks.check_outputs("m", [run("p", "fgsm", 0.1, [])]).status == "pass"
    rows = [sample(i, output_kind="one-hot") for i in range(20)]
    v = checks.check_outputs("m", [run("p", "fgsm", 0.1, [], rows=rows)])
    assert v.status == "fail" and "one-hot 20/20" in v.numbers


def test_transfer_failure():
    rows = [sample(i, robust=i < 5, source_success=1) for i in range(20)]
    v = checks.check_transfer("m", [run("t", "fgsm", 0.1, [], rows=rows, threat="transfer")])
    assert v.status == "pass" and "5/20 (25.0%)" in v.numbers
    rows = [sample(i, robust=i < 15, source_success=1) for i in range(20)]
    v = checks.check_transfer("m", [run("t", "fgsm", 0.1, [], rows=rows, threat="transfer")])
    assert v.status == "warn" and "15/20 (75.0%)" in v.numbers


def test_optimality_settles_each_attack_the_way_that_can_move_it():
    """Reference distances 1 (5 instances) and 2 (5), all correctly classified, so M = 2,
    the best area (5 + 10) / 10 = 1.5 and an attack that breaks nothing has area 2. An
    attack equal to the reference: 1 - (1.5 - 1.5) / (2 - 1.5) = 1. One at 2 everywhere
    (best per instance: the reference): 1 - (2 - 1.5) / (2 - 1.5) = 0, a warning. C&W's
    settles with twice its steps; DeepFool's, whose steps never bind, with FMN."""
    def rows(d):
        return [sample(i, robust=False, min_norm=d(i)) for i in range(10)]

    def minimal(rid, attack, d):
        return run(rid, attack, 1.0, [], n=10, norm="l2", kind="minimal",
                   params={"steps": 100}, rows=rows(d))  # fmt: skip

    def halves(i):
        return 1.0 if i < 5 else 2.0

    ref = minimal("r", "reference-min", halves)
    v = checks.check_optimality("m", [ref, minimal("c", "cw-l2", halves)])
    assert v.status == "pass" and "cw-l2 1.000 (n=10" in v.numbers
    v = checks.check_optimality("m", [ref, minimal("c", "cw-l2", lambda i: 2.0)])
    assert v.status == "warn" and "cw-l2 0.000 (n=10" in v.numbers
    assert "--attack cw-l2" in v.settle and "steps=200" in v.settle
    v = checks.check_optimality("m", [ref, minimal("d", "deepfool-l2", lambda i: 2.0)])
    assert v.status == "warn" and "deepfool-l2 0.000 (n=10" in v.numbers
    assert "stops at its first adversarial" in v.numbers
    assert "--attack fmn-l2" in v.settle and "steps=" not in v.settle


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, trained_db):
    """carlini-eval (smoke) on the digits model, an adversarially trained child, and three
    gradient-masked ones."""
    import shutil

    from typer.testing import CliRunner

    folder = tmp_path_factory.mktemp("checks")
    shutil.copytree(trained_db.parent, folder / "store")
    db = ["--db", str(folder / "store" / "a.db")]
    runner = CliRunner()
    for args in (
        ["--defense", "pgd-at", "--epochs", "2", "--param", "steps=5", "--name", "at"],
        ["--defense", "feature-squeezing", "--name", "fs"],
        ["--defense", "hard-label", "--name", "hard"],
        ["--defense", "numpy-quantize", "--name", "npq"],
    ):
        res = runner.invoke(app, ["harden", "--model", "std", *args, *db])
        assert res.exit_code == 0, res.output
    for model, extra in (("std", []), ("at", []), ("fs", ["--gradient", "masked"]),
                         ("hard", []), ("npq", [])):  # fmt: skip
        res = runner.invoke(app, ["attack", "--model", model, "--suite", "carlini-eval",
                                  "--scale", "smoke", *extra, *db])  # fmt: skip
        assert res.exit_code == 0, res.output
    for model in ("std", "at"):  # the optimality item's fixed reference
        res = runner.invoke(app, ["attack", "--model", model, "--suite", "optimality-reference",
                                  "--scale", "smoke", *db])  # fmt: skip
        assert res.exit_code == 0, res.output
    verdicts = {}
    for model in ("std", "at", "fs", "hard", "npq"):
        res = runner.invoke(app, ["report", "--checks", model, "--format", "json", *db])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.output)
        verdicts[model] = {c["check"]: c for c in doc["checks"]}
    return verdicts


@pytest.mark.parametrize("model", ["std", "at"])
def test_trained_models_pass_every_check(evaluated, model):
    for name, v in evaluated[model].items():
        if name == "optimality":
            # smoke-scale C&W (50 steps, 3 binary searches) stops short of the fixed
            # reference (0.75 on std): the item warns, naming it, with a command to rerun
            assert v["status"] in ("pass", "warn") and "against Reference-L2" in v["numbers"]
            assert v["status"] == "pass" or (
                "CW-L2" in v["numbers"] and v["settle"].startswith("advbench attack --model")
            )
            continue
        assert v["status"] == "pass", (model, name, v["numbers"])
        assert any(ch.isdigit() for ch in v["numbers"])  # the numbers behind it


@pytest.mark.parametrize(
    "model, fired",
    [
        ("fs", {"gradients", "white-box", "unbounded"}),  # true gradient of rounding: zero
        ("hard", {"gradients", "outputs", "white-box", "unbounded"}),
        ("npq", {"gradients", "white-box", "unbounded"}),  # no input gradient at all
    ],
)
def test_masked_models_fail_naming_the_check(evaluated, model, fired):
    failed = {name for name, v in evaluated[model].items() if v["status"] == "fail"}
    assert fired <= failed, evaluated[model]
    for name in fired:
        assert evaluated[model][name]["settle"], name  # and what would settle it
