"""AttackBench's optimality of minimal attacks, from stored per-instance minimal norms."""

import math

import pytest

from advbench.catalogue import load_model
from advbench.engine import run_jobs
from advbench.env import record_environment
from advbench.jobs import make_job
from advbench.report.optimality import distances, optimality, optimality_table
from advbench.store import open_db

INF = math.inf
# by hand: best d* = [0, 1, 2, inf]; M = 2; c = 3/4, so an attack breaking nothing has
# area c*M = 1.5; the best curve's area is (0 + 1 + 2 + 2) / 4 = 1.25
BEST = [0.0, 1.0, 2.0, INF]


@pytest.mark.parametrize(
    ("d", "want"),
    [
        ([0.0, 1.0, 2.0, INF], 1.0),  # the best itself
        ([0.0, 1.0, 3.0, INF], 1.0),  # beyond M counts as M
        ([0.0, 1.5, 2.0, INF], 0.5),  # area 1.375: half-way
        ([0.0, INF, INF, INF], 0.0),  # breaks nothing: area 1.5
        ([0.0, 2.0, INF, INF], 0.0),  # its only find is at M: no better than nothing
    ],
)
def test_optimality_by_hand(d, want):
    assert optimality(d, BEST) == pytest.approx(want)


def test_optimality_is_undefined_when_nothing_was_broken():
    assert math.isnan(optimality([INF, INF], [INF, INF]))


def test_the_report_compares_minimal_attacks_on_their_common_instances(db_copy):
    db = open_db(db_copy)
    model, _, row = load_model(db, "std")
    jobs = [make_job("cw-l2", [1.0, 2.0], {"steps": 20, "binary_search_steps": 3},
                     label="CW"),
            make_job("deepfool-l2", [1.0], {"steps": 20}, label="DF")]  # fmt: skip
    runs = run_jobs(db, model, row, jobs, n=16, seed=0, batch_size=16,
                    env_id=record_environment(db, "cpu"))  # fmt: skip
    table = optimality_table(db, ["std"])
    mine = table[(table["model"] == "std") & (table["norm"] == "l2")]
    assert set(mine["attack"]) == {"CW", "DF"}  # the fixture's store holds no other runs
    assert (mine["n"] == 16).all()
    by = {r.attack: r for r in mine.itertuples()}
    # independently: the per-instance best of the two stored runs, and each one's distance
    d = {s.label: distances(db, s.id) for s in runs if s.eps == 1.0}
    order = sorted(d["CW"])
    best = [min(d["CW"][i], d["DF"][i]) for i in order]
    for label in ("CW", "DF"):
        assert by[label].optimality == pytest.approx(optimality([d[label][i] for i in order], best))
        assert 0.0 <= by[label].optimality <= 1.0
    # the per-instance best is one of the two on every instance: one of them scores 1 only
    # where it is the best everywhere
    top = max(b for b in best if math.isfinite(b))
    for label in ("CW", "DF"):
        everywhere = all(min(d[label][i], top) <= min(b, top)
                         for i, b in zip(order, best, strict=True))  # fmt: skip
        assert (by[label].optimality == pytest.approx(1.0)) == everywhere


def test_an_attack_on_fewer_instances_is_compared_where_it_overlaps(db_copy):
    """HopSkipJump's smaller sample: each attack keeps its own n, and an instance's best is
    over the attacks that attacked it."""
    db = open_db(db_copy)
    model, _, row = load_model(db, "std")
    env = record_environment(db, "cpu")
    big = run_jobs(db, model, row, [make_job("deepfool-l2", [1.0], {"steps": 20}, label="DF")],
                   n=16, seed=0, batch_size=16, env_id=env)  # fmt: skip
    small = run_jobs(db, model, row, [make_job("fmn-l2", [1.0], {"steps": 10}, label="FMN")],
                     n=6, seed=0, batch_size=16, env_id=env)  # fmt: skip
    table = optimality_table(db, ["std"]).set_index("attack")
    assert (table.loc["DF", "n"], table.loc["FMN", "n"]) == (16, 6)
    df, fmn = distances(db, big[0].id), distances(db, small[0].id)
    assert set(fmn) < set(df)  # the same seed: a prefix of the same instances
    best = {i: min(v, fmn.get(i, INF)) for i, v in df.items()}
    for label, d in (("DF", df), ("FMN", fmn)):
        order = sorted(d)
        want = optimality([d[i] for i in order], [best[i] for i in order])
        assert table.loc[label, "optimality"] == pytest.approx(want, nan_ok=True)


def test_a_fixed_reference_scores_each_attack_alone_and_a_lone_attack(db_copy):
    """With the optimality-reference rows stored, each minimal attack is scored against
    min(reference, itself) per instance: a second, better attack leaves the first one's
    score as it was, and a norm with a single minimal attack gets a figure (issue 30).
    The checklist's optimality item reads the same numbers and flags one under 0.9."""
    from advbench.checks import gather
    from advbench.checks.comparisons import check_optimality

    db = open_db(db_copy)
    model, _, row = load_model(db, "std")
    env = record_environment(db, "cpu")

    def run(attack, params, label):
        job = make_job(attack, [1.0], params, label=label)
        return run_jobs(db, model, row, [job], n=16, seed=0, batch_size=16, env_id=env)[0]

    weak = run("fmn-l2", {"steps": 3, "start": "input"}, "FMN-weak")
    table = optimality_table(db, ["std"])
    assert table.empty  # one minimal attack and no reference: nothing to score against
    ref = run("reference-min", {"norm": "l2", "steps": 40}, "Reference-L2")
    alone = optimality_table(db, ["std"]).set_index("attack")
    assert list(alone.index) == ["FMN-weak"] and alone.loc["FMN-weak", "against"] == "Reference-L2"
    d, r = distances(db, weak.id), distances(db, ref.id)
    order = sorted(d)
    want = optimality([d[i] for i in order], [min(d[i], r[i]) for i in order])
    assert alone.loc["FMN-weak", "optimality"] == pytest.approx(want)
    run("deepfool-l2", {"steps": 20}, "DF")  # another attack does not move FMN-weak's score
    both = optimality_table(db, ["std"]).set_index("attack")
    assert both.loc["FMN-weak", "optimality"] == pytest.approx(want)
    assert set(both.index) == {"FMN-weak", "DF"}
    assert dict(both["name"]) == {"FMN-weak": "fmn-l2", "DF": "deepfool-l2"}  # the advice's
    verdict = check_optimality("std", gather(db, "std"))
    line = f"FMN-weak {want:.3f}"
    assert line in verdict.numbers
    assert verdict.status == ("warn" if want < 0.9 else "pass")
    if want < 0.9:
        assert verdict.settle.startswith("advbench attack --model std --attack fmn-l2")


def test_the_reports_warning_advises_what_can_move_each_attack():
    """A low figure's warning names what settles it: DeepFool stops at its first
    adversarial (more steps leave its distance as it is), so FMN of its norm; C&W reruns
    with more steps. Figures at or above 0.9, and those without a fixed reference, warn
    of nothing but the missing reference."""
    import pandas as pd

    from advbench.report.optimality import render_rows, warnings

    rows = [
        ("m", "l2", "DF", 0.88, "Reference-L2", "deepfool-l2"),
        ("m", "linf", "DF-Linf", 0.80, "Reference-Linf", "deepfool-linf"),
        ("m", "l2", "CW", 0.85, "Reference-L2", "cw-l2"),
        ("m", "l2", "FMN", 0.95, "Reference-L2", "fmn-l2"),
    ]
    df = pd.DataFrame([{"model": m, "norm": n, "attack": a, "n": 10, "optimality": o,
                        "broken": 1.0, "median": 1.0, "against": r, "name": name}
                       for m, n, a, o, r, name in rows])  # fmt: skip
    lines = warnings(df)
    assert len(lines) == 3
    df_l2, df_linf, cw = lines
    assert "DF on m" in df_l2 and "more steps do not move it: run FMN-L2" in df_l2
    assert "run FMN-LINF" in df_linf
    assert "CW on m" in cw and "rerun it with more steps" in cw and "FMN" not in cw
    assert "name" not in render_rows(df).columns
    loose = df.assign(against="best of listed")
    assert warnings(loose) == ["m: no fixed reference for l2, linf (scored against the best of "
                               "the listed attacks); store one with `advbench attack --model m "
                               "--suite optimality-reference`"]
