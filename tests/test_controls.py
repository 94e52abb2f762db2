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


def _params(argv):
    return {argv[i + 1].partition("=")[0]: argv[i + 1].partition("=")[2]
            for i, a in enumerate(argv) if a == "--param"}  # fmt: skip


@pytest.mark.parametrize("paper", ["fidel", "zantedeschi", "madnet", "jakubovitz", "pesso"])
@pytest.mark.parametrize("scale", ["smoke", "cpu"])
def test_every_papers_control_is_its_defenses_recipe_with_the_term_off(paper, scale):
    """Each paper's controls table pairs every defense row with a control whose command is
    the defense's own (defense, recipe, batch, scale arguments, seed) with only the
    weights that switch its term off set to 0; seed replicates differ by --seed alone."""
    from advbench.report.papers import defense_row

    spec = tables()[f"{paper}:controls"]
    assert spec.objective and all(set(c) <= set(spec.columns) for c in spec.objective.values())
    col = spec.columns[-1]
    for row in spec.rows:
        if row == defense_row(row):
            continue
        ctl_role = spec.roles[("mnist", spec.cell(row, col).role)]
        base = row.replace(spec.control_mark, "")
        def_role = spec.roles[("mnist", spec.cell(base, col).role)]
        ctl = plans.recipe(paper, ctl_role, "mnist", scale)
        dfn = plans.recipe(paper, def_role, "mnist", scale)
        off = {k: v for k, v in _params(ctl).items() if _params(dfn).get(k) != v}
        assert off and all(float(v) == 0 for v in off.values()), (row, ctl, dfn)
        strip = lambda a: [w for w in a if "=" not in w and w != "--param"]  # noqa: E731
        if paper == "fidel" and "NsLoss" not in row:  # one control serves the three
            assert ctl_role.key.startswith("nsloss-control")
        else:
            assert strip(ctl) == strip(dfn), (row, ctl, dfn)
        assert ("--seed" in ctl) == (" (seed " in row)
    # the role of a control never takes the defense's model, nor the reverse
    for (data, key), role in spec.roles.items():
        if key.endswith("-control") and data == "mnist":
            assert role.params and all(v == 0 for v in role.params.values())


def test_a_plan_entry_serves_its_controls_and_replicates_and_the_role_wins():
    """pesso's madry entry (PGD steps per scale) makes madry-control and madry-s2 too; the
    control's ε = 0 comes last and replaces nothing but ε; jakubovitz's scaled weight
    (λ 0.0358 at batch 64) gives way to a control's λ = 0 (a repeated --param is refused)."""
    assert plans.entry("pesso", "madry-control-s2") == plans.entry("pesso", "madry")
    assert plans.entry("pesso", "standard-control") == {}
    spec = tables()["pesso:controls"]
    args = plans.recipe("pesso", spec.roles[("mnist", "madry-control-s2")], "mnist", "cpu")
    assert _params(args) == {"eps": "0", "steps": "10", "step_size": "0.0375"}
    assert args[args.index("--seed") + 1] == "2"
    jak = tables()["jakubovitz:controls"]
    jac = plans.recipe("jakubovitz", jak.roles[("mnist", "jac")], "mnist", "cpu")
    ctl = plans.recipe("jakubovitz", jak.roles[("mnist", "jac-control")], "mnist", "cpu")
    assert _params(jac) == {"lambda": "0.0358"} and _params(ctl) == {"lambda": "0"}
    assert ctl.count("--param") == 1 and jac[jac.index("--batch-size") + 1] == "64"
    argv = ["--param", "a=1", "--x", "--param", "b=2", "--param", "a=0"]
    assert plans._last_param_wins(argv) == ["--x", "--param", "b=2", "--param", "a=0"]


def test_seeds_that_agree_exactly_are_judged_on_their_own_tests():
    """Three seeds at +35.4 each (madnet's FGSM claim, 2026-12-07), each seed's McNemar p
    below 0.001: the t-test has no spread to measure, so the verdict takes the largest of the
    seeds' p (each must reject, the same way) and the hull of their intervals."""
    from advbench import paired

    seeds = [paired.Paired("McNemar (exact)", 99, 35.35, 25.1, 44.9, 2e-9, 37, 2),
             paired.Paired("McNemar (exact)", 99, 35.35, 26.0, 45.5, 4e-10, 36, 1),
             paired.Paired("McNemar (exact)", 99, 35.35, 24.8, 44.0, 3e-9, 38, 3)]  # fmt: skip
    t = paired.over_seeds([s.effect for s in seeds], "McNemar (exact)", seeds)
    assert (t.effect, t.p, t.low, t.high) == (35.35, 3e-9, 24.8, 45.5)
    assert paired.direction(t.effect, t.p, ">") == "held" and "agree exactly" in t.test
    # a seed that does not reject on its own carries its p into the verdict
    weak = [*seeds[:2], paired.Paired("McNemar (exact)", 99, 35.35, -1.0, 60.0, 0.2)]
    assert paired.over_seeds([35.35] * 3, "McNemar (exact)", weak).p == 0.2
    # no effect on any seed: still no test
    zero = [paired.Paired("McNemar (exact)", 99, 0.0, -2.0, 2.0, 1.0)] * 3
    nan = paired.over_seeds([0.0] * 3, "McNemar (exact)", zero).p
    assert nan != nan
