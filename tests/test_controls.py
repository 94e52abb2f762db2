"""Same-budget controls (issue 33, item 1): a fine-tuned defense's control is its own
fine-tuning with the weight at 0, found by its own role and never taken for the defense's;
a claim that names a control is decided against it, the paper's comparison kept beside."""

import json

import pytest

from advbench import claims, plans
from advbench.report.evidence import Evidence
from advbench.report.papers import CONTROL_MARK, Role, tables, with_control
from advbench.report.tables import Result


def model(defense_config: dict) -> dict:
    return {"arch": "tf-mnist", "dataset": "mnist-5k", "defense": "jacobian", "activation": "relu",
            "config": json.dumps({"kind": "harden", "recipe": "jakubovitz"}),
            "defense_config": json.dumps(defense_config)}  # fmt: skip


def test_a_control_is_found_by_its_own_role_only():
    role = Role("jac", "tf-mnist", "jacobian", parent="none", config={"recipe": "jakubovitz"})
    jac, control = with_control(role)
    defended, off = model({"lambda": 0.1, "exact": True}), model({"lambda": 0.0, "exact": True})
    assert role.matches(off, "mnist")  # without a control, a λ = 0 model would fill the cell
    assert jac.matches(defended, "mnist") and not jac.matches(off, "mnist")
    assert control.matches(off, "mnist") and not control.matches(defended, "mnist")
    assert control.key == "jac-control" and control.parent == "none"
    # what reproduce runs to make it: the defense's own recipe with the weight off
    spec = tables()["jakubovitz:controls"]
    role = spec.roles[("mnist", "jac-control")]
    args = plans.recipe("jakubovitz", role, "mnist", "cpu")
    assert args[:2] == ["--defense", "jacobian"] and "lambda=0" in args
    assert args[args.index("--recipe") + 1] == "jakubovitz" and "--from-scratch" not in args


def test_the_controls_table_pairs_each_defense_with_its_control():
    spec = tables()["jakubovitz:controls"]
    for row in spec.rows:
        name = row.removesuffix(CONTROL_MARK)
        cell = spec.cell(row, "ρ_adv")
        assert cell.role.endswith("-control") == row.endswith(CONTROL_MARK)
        assert cell.role.removesuffix("-control") == spec.cell(name, "ρ_adv").role


def binary(robust):
    keys = [(i, None) for i in range(len(robust))]
    return Evidence(dict(zip(keys, robust, strict=True)), True,
                    {k: 1 - r for k, r in zip(keys, robust, strict=True)})  # fmt: skip


def cell(row, published=None):
    r = Result("t", row, "c", "accuracy", measured=0.0, status="complete", published=published,
               n=100, model="m", seed=0)  # fmt: skip
    return r


def test_a_claim_with_a_control_is_decided_against_it(monkeypatch):
    """a beats the parent b by 20 of 100 instances (p < 0.001) but its control by 2 (p =
    0.5): continued training, not the defense's term, made the difference."""
    a, b, ctl = cell("defense", 60.0), cell("parent", 40.0), cell("control")
    evidence = {id(a): binary([1] * 60 + [0] * 40), id(b): binary([1] * 40 + [0] * 60),
                id(ctl): binary([1] * 58 + [0] * 42)}  # fmt: skip
    monkeypatch.setattr(claims.evidence, "of", lambda store, r: evidence[id(r)])
    c = claims._judge_one(None, "p", {"claim": "x", "expect": ">"}, a, b, ctl)
    assert c.control is ctl and c.b is b
    assert (c.test.f, c.test.g) == (2, 0) and (c.baseline.f, c.baseline.g) == (20, 0)
    c.p_adjusted = c.test.p
    claims._finish(c)
    assert c.direction == "undecided"
    assert "a − its same-budget control = +2.0" in c.detail
    assert "the paper's comparison (a − b, b = parent): +20.0" in c.detail
    # the size is the paper's comparison's, like with like: a − b = +20 against its +20
    assert c.size == "consistent with published"
    # a control not stored: judged against b, and the line says so
    empty = Result("t", "control", "c", "accuracy", status="empty", why="no model of role x")
    c = claims._judge_one(None, "p", {"claim": "x", "expect": ">"}, a, b, empty)
    assert c.control is None and c.test.f == 20 and "control is not stored" in c.note


def test_a_plan_control_must_name_a_cell():
    with pytest.raises(Exception, match="control"):
        plans.validate({"claims": [{"claim": "x", "a": ["1", "r", "c"], "b": ["1", "s", "c"],
                                    "expect": ">", "control": ["controls"]}]}, "t")  # fmt: skip


def test_seed_replicates_are_roles_of_their_own():
    from advbench.report.papers import with_seeds

    base = Role("jac", "tf-mnist", "jacobian", parent="none", config={"recipe": "jakubovitz"})
    roles = with_seeds(base, 3)
    assert [r.key for r in roles] == ["jac", "jac-s1", "jac-s2"]
    at = {s: {**model({"lambda": 0.1}), "seed": s} for s in range(3)}
    for r in roles:  # each takes its own seed's model only: replicates never replace seed 0
        assert [s for s, m in at.items() if r.matches(m, "mnist")] == [r.seed]
    args = plans.recipe("jakubovitz", roles[2], "mnist", "cpu")
    assert args[args.index("--seed") + 1] == "2"
    assert "--seed" not in plans.recipe("jakubovitz", roles[0], "mnist", "cpu")


def test_over_seeds_by_hand():
    """Per-seed effects 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.303: interval 2 ± 2.484;
    t = 2 / (1/√3) = 3.464 on 2 degrees of freedom: p = 0.0742."""
    from advbench import paired

    t = paired.over_seeds([1.0, 2.0, 3.0])
    assert (t.n, t.effect) == (3, pytest.approx(2.0))
    half = 2.4841
    assert t.low == pytest.approx(2 - half, abs=1e-3)
    assert t.high == pytest.approx(2 + half, abs=1e-3)
    assert t.p == pytest.approx(0.0742, abs=1e-3)


def test_a_claim_over_seed_replicates(monkeypatch):
    """Seed 0: defense − control +2 of 100; seeds 1 and 2: +4 and +6: mean +4 over 3 seeds,
    all 3 the paper's way; the line gives each seed's effect."""
    a, b, ctl = cell("defense", 60.0), cell("parent", 40.0), cell("control")
    reps = [(cell("defense s1"), cell("control s1")), (cell("defense s2"), cell("control s2"))]
    ev = {id(a): binary([1] * 60 + [0] * 40), id(b): binary([1] * 40 + [0] * 60),
          id(ctl): binary([1] * 58 + [0] * 42),
          id(reps[0][0]): binary([1] * 62 + [0] * 38), id(reps[0][1]): binary([1] * 58 + [0] * 42),
          id(reps[1][0]): binary([1] * 64 + [0] * 36), id(reps[1][1]): binary([1] * 58 + [0] * 42)}
    monkeypatch.setattr(claims.evidence, "of", lambda store, r: ev[id(r)])
    c = claims._judge_one(None, "p", {"claim": "x", "expect": ">"}, a, b, ctl, reps)
    assert [round(t.effect) for t in c.seeds] == [2, 4, 6]
    assert c.test.n == 3 and c.test.effect == pytest.approx(4.0)
    c.p_adjusted = c.test.p
    claims._finish(c)
    assert "3 of 3 seeds the paper's way; per seed: +2.0" in c.detail


def test_a_control_not_in_its_table_is_said_and_seed_zero_without_pairs_is_no_crash(monkeypatch):
    a, b = cell("defense", 60.0), cell("parent", 40.0)
    ev = {id(a): binary([1] * 60 + [0] * 40), id(b): binary([1] * 40 + [0] * 60)}
    monkeypatch.setattr(claims.evidence, "of", lambda store, r: ev[id(r)])
    c = claims._judge_one(None, "p", {"claim": "x", "expect": ">", "control": ["t", "r", "c"]},
                          a, b, None)  # fmt: skip
    assert "no cell of its table" in c.note and c.test.f == 20
    # a control sharing no instance with a (n = 0) and replicates: no average over seeds
    ctl = cell("control")
    reps = [(cell("d1"), cell("c1")), (cell("d2"), cell("c2"))]
    ev[id(ctl)] = Evidence({(999, None): 1}, True, {(999, None): 0})
    for x, y in reps:
        ev[id(x)], ev[id(y)] = binary([1] * 60 + [0] * 40), binary([1] * 58 + [0] * 42)
    c = claims._judge_one(None, "p", {"claim": "x", "expect": ">"}, a, b, ctl, reps)
    assert c.seeds is None and c.test.n == 0
    claims._finish(c)  # no crash: says the cells share no instance
    assert "share no instance" in c.detail


def test_identical_effects_on_every_seed_have_no_p():
    from advbench import paired

    t = paired.over_seeds([2.0, 2.0, 2.0])
    assert t.effect == 2.0 and t.p != t.p and t.need() is None  # NaN: undecided
