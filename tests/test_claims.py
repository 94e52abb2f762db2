"""Claims decided on paired evidence (advbench.claims on advbench.paired): the two-part
verdict from hand-made per-sample evidence, the unpaired fallback for cells without
per-sample rows, and a degenerate cell (the attack broke nothing on either model)."""

import pytest

from advbench import claims, plans
from advbench.errors import BadInput
from advbench.metrics import mean_interval
from advbench.report.evidence import Evidence
from advbench.report.tables import Result


def cell(value, lo, hi, n=100, metric="rho_adv", published=None):
    return Result("t", "r", "c", metric, measured=value, ci_low=lo, ci_high=hi, n=n,
                  status="complete", published=published)  # fmt: skip


def test_unpaired_fallback_for_cells_without_per_sample_rows():
    a, b = cell(0.34, 0.32, 0.36), cell(0.21, 0.19, 0.23)
    assert claims.unpaired(a, b, ">")[0] == "held"
    assert claims.unpaired(a, b, "<")[0] == "contradicted"
    v, why = claims.unpaired(cell(0.30, 0.25, 0.35), cell(0.25, 0.20, 0.30), ">")
    assert v == "undecided" and "unpaired" in why


def binary(robust: list[int], broken: list[int]) -> Evidence:
    keys = [(i, None) for i in range(len(robust))]
    return Evidence(dict(zip(keys, robust, strict=True)), True,
                    dict(zip(keys, broken, strict=True)))  # fmt: skip


def test_a_cell_the_attack_broke_nowhere_is_degenerate():
    """Targeted HopSkipJump that broke nothing (fidel, 100 % vs 100 %) measured neither
    model; 0 % vs 0 % (every instance broken on both) is evidence, not degenerate."""
    nothing = binary([1] * 27, [0] * 27)
    test, degenerate = claims.decide(nothing, nothing)
    assert degenerate and test.f == test.g == 0
    everything = binary([0] * 100, [1] * 100)
    assert not claims.decide(everything, everything)[1]


def test_a_claim_line_has_both_parts(monkeypatch):
    """62 vs 50 robust on the same 100 instances, all 12 movers one way: held at p =
    2 × 0.5^12; the paper's gap of 30 points lies outside the interval: smaller than
    published. The line shows effect, interval, pairs, p, adjusted p and the seed."""
    a = cell(62.0, 52.2, 70.9, metric="accuracy", published=80.0)
    b = cell(50.0, 40.4, 59.6, metric="accuracy", published=50.0)
    a.model = b.model = "m"
    a.seed = b.seed = 0
    ea = binary([1] * 50 + [1] * 12 + [0] * 38, [0] * 50 + [0] * 12 + [1] * 38)
    eb = binary([1] * 50 + [0] * 12 + [0] * 38, [0] * 50 + [1] * 12 + [1] * 38)
    monkeypatch.setattr(claims.evidence, "of", lambda store, r: ea if r is a else eb)
    c = claims._judge_one(None, "p", {"claim": "x", "expect": ">"}, a, b)
    c.p_adjusted = min(1.0, 3 * c.test.p)  # as if one of three claims
    claims._finish(c)
    assert (c.direction, c.size) == ("held", "smaller than published")
    assert c.verdict == "held; smaller than published"
    assert c.test.p == pytest.approx(2 * 0.5**12)
    for part in ("+12.0 [", "a only / b only: 12 / 0", "p < 0.001", "Holm 0.001",
                 "paper +30.0", "seed 0"):  # fmt: skip
        assert part in c.detail, (part, c.detail)
    # the other way round the same evidence contradicts the paper
    c = claims._judge_one(None, "p", {"claim": "x", "expect": "<"}, a, b)
    c.p_adjusted = c.test.p
    claims._finish(c)
    assert c.direction == "contradicted"
    # a claim whose units differ from the paper's is sized "not comparable"
    c = claims._judge_one(None, "p", {"claim": "x", "expect": ">", "not_comparable": "u"}, a, b)
    assert c.size == "not comparable"
    empty = Result("t", "r", "c", "accuracy", status="empty", why="no cifar10 model of role x")
    c = claims._judge_one(None, "p", {"claim": "x", "expect": ">"}, empty, b)
    assert (c.direction, c.detail, c.verdict) == ("not run", "no cifar10 model of role x",
                                                  "not run")  # fmt: skip


def test_mean_interval_by_hand():
    # values 1, 2, 3: mean 2, s = 1, half-width 1.96 / √3
    lo, hi = mean_interval([1.0, 2.0, 3.0])
    assert (lo, hi) == pytest.approx((2 - 1.96 / 3**0.5, 2 + 1.96 / 3**0.5))


def test_every_plan_claim_names_cells_of_the_transcription():
    from advbench.report.papers import PAPERS, published, tables

    for paper in PAPERS:
        cells = {(p.table, p.row, p.column) for p in published(paper) if p.kind == "cell"}
        ours = {(s.number, r, c) for s in tables().values() if s.paper == paper and s.rows
                for r in s.rows for c in s.columns}  # fmt: skip
        for c in plans.load(paper).get("claims", []):
            assert tuple(c["a"]) in cells and tuple(c["b"]) in cells, (paper, c["claim"])
            if "control" in c:  # a control cell is one of our controls tables'
                assert tuple(c["control"]) in ours, (paper, c["claim"])
    with pytest.raises(BadInput, match=r"claims\[0\] needs"):
        plans.validate({"claims": [{"claim": "x", "a": ["1", "r"], "b": [], "expect": ">"}]}, "t")


def test_jakubovitz_table_3_reads_the_models_its_numbers_came_from():
    """The paper's Table 3 Input Gradient (23.43) and Cross-Lipschitz (29.03) ρ_adv are
    Table 2's "regular" training rows; its Jacobian row (34.24) the post-processing one."""
    from advbench.report.papers import published, tables

    spec = tables()["jakubovitz:3"]
    table2 = {p.row: p.value for p in published("jakubovitz")
              if p.table == "2" and p.column == "ρ_adv"}  # fmt: skip
    table3 = {p.row: p.value for p in published("jakubovitz")
              if p.table == "3" and p.column == "ρ_adv"}  # fmt: skip
    for row, role in (("Input Gradient regularization", "ig-regular"),
                      ("Cross-Lipschitz regularization", "cl-regular"),
                      ("Jacobian regularization", "jac")):  # fmt: skip
        assert spec.cell(row, "ρ_adv").role == role
        twin = next(r for r in table2 if r.startswith(row) and
                    ("regular" if role.endswith("regular") else "post") in r.split(",")[-1])
        assert table3[row] == table2[twin]
    assert "regular" in spec.note


def test_zantedeschi_table_1_has_one_claim_per_architecture_and_like_with_like():
    found = plans.load("zantedeschi")["claims"]
    own = [c for c in found if c["a"][0] == "1"]
    assert sorted(c["a"][1] for c in own) == sorted(c["a"][2] for c in own)  # diagonals
    assert {c["a"][1] for c in own} == {"CNN + RELU", "CNN + BRELU", "ResNet + RELU",
                                        "ResNet + BRELU"}  # fmt: skip
    assert all(c["b"][2] == c["a"][2] and c["b"][1] != c["a"][1] for c in own)
    rho = next(c for c in found if c["a"][2] == "Robustness" and c["b"][1] == "CNN"
               and c["expect"] == ">")  # fmt: skip
    dist = next(c for c in found if c["a"][2] == "Training set distance")
    assert dist["a"][1] == rho["a"][1] == "GDA + RELU"


def test_the_committed_claims_table_regenerates_from_the_committed_evidence(runner):
    """results/README.md's claims of a regenerated paper are what its committed evidence
    store gives today, row for row (and reading the store leaves its bytes as they are)."""
    from pathlib import Path

    from advbench.cli import app

    results = Path(__file__).resolve().parent.parent / "results"
    readme = (results / "README.md").read_text()
    checked = 0
    for evidence in sorted(results.glob("*/evidence.db")):
        before = evidence.read_bytes()
        res = runner.invoke(app, ["report", "--claims", evidence.parent.name, "--db",
                                  str(evidence), "--format", "markdown"])  # fmt: skip
        assert res.exit_code == 0, res.output
        rows = res.stdout.strip().splitlines()[2:]
        assert rows and all(row in readme for row in rows), evidence
        # and the defense-evidence table (issue 33): each defense against its control, from
        # the page's evidence, or from the evidence its controls were measured in where
        # they were measured before the page was regenerated
        extra = evidence.parent / "controls-evidence.db"
        res = runner.invoke(app, ["report", "--controls", evidence.parent.name, "--db",
                                  str(extra if extra.exists() else evidence), "--format",
                                  "markdown"])  # fmt: skip
        assert res.exit_code == 0, res.output
        rows = res.stdout.strip().splitlines()[2:]
        assert all(row in readme for row in rows), evidence
        assert evidence.read_bytes() == before
        checked += 1
    assert checked >= 2  # zantedeschi and jakubovitz


def test_claims_as_json_and_csv_carry_numbers_a_reader_can_recheck(runner):
    """`report --claims --format json|csv`: one record per claim with the paired test's
    unrounded numbers. Each exact-McNemar claim's p is recomputed here from its discordant
    pairs (scipy's binomial test, not advbench's code) and its effect from the pair counts."""
    import csv
    import io
    import json
    from pathlib import Path

    from scipy.stats import binomtest

    from advbench.cli import app

    evidence = Path(__file__).resolve().parent.parent / "results" / "madnet" / "evidence.db"
    res = runner.invoke(app, ["report", "--claims", "madnet", "--db", str(evidence),
                              "--format", "json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    found = json.loads(res.stdout)
    shown = runner.invoke(app, ["report", "--claims", "madnet", "--db", str(evidence),
                                "--format", "markdown"])  # fmt: skip
    table = shown.stdout.strip().splitlines()[2:]
    assert len(found) == len(table) >= 3
    checked = 0
    for rec, row in zip(found, table, strict=True):
        assert rec["paper"] == "madnet" and f"**{rec['direction']}**" in row
        if rec["test"] != "McNemar (exact)" or not rec["pairs"]:
            continue
        f, g = rec["a_only"], rec["b_only"]
        if f + g:
            assert rec["p"] == pytest.approx(binomtest(f, f + g, 0.5).pvalue, rel=1e-9)
        assert rec["effect"] == pytest.approx(100 * (f - g) / rec["pairs"], rel=1e-9)
        checked += 1
    assert checked >= 1
    res = runner.invoke(app, ["report", "--claims", "madnet", "--db", str(evidence),
                              "--format", "csv"])  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["claim"] for r in rows] == [r["claim"] for r in found]
    assert [float(r["p"]) if r["p"] else None for r in rows] == [r["p"] for r in found]
    # counts stay integers where another claim has none (no "100.0 pairs")
    assert [r["pairs"] for r in rows] == ["" if r["pairs"] is None else str(r["pairs"])
                                          for r in found]  # fmt: skip


@pytest.mark.parametrize("mode", ["--controls", "--budgets"])
def test_controls_and_budgets_as_json_hold_the_tables_rows(runner, mode):
    """One record per markdown row, with the numbers the row shows."""
    import json
    from pathlib import Path

    from advbench.cli import app

    evidence = Path(__file__).resolve().parent.parent / "results" / "madnet" / "evidence.db"
    out = {fmt: runner.invoke(app, ["report", mode, "madnet", "--db", str(evidence),
                                    "--format", fmt]) for fmt in ("json", "markdown")}  # fmt: skip
    assert all(r.exit_code == 0 for r in out.values()), [r.output for r in out.values()]
    found = json.loads(out["json"].stdout)
    rows = out["markdown"].stdout.strip().splitlines()[2:]
    assert len(found) == len(rows) >= 2
    for rec, row in zip(found, rows, strict=True):
        if mode == "--budgets":
            if rec["steps"] is None or rec["full_steps"] is None:
                continue
            assert f"= {rec['steps']:,} " in row
            assert rec["share"] == rec["steps"] / rec["full_steps"]
        elif rec["pairs"]:
            assert rec["verdict"] in row and f"n = {rec['pairs']} " in row
