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
    from advbench.report.papers import PAPERS, published

    for paper in PAPERS:
        cells = {(p.table, p.row, p.column) for p in published(paper) if p.kind == "cell"}
        for c in plans.load(paper).get("claims", []):
            assert tuple(c["a"]) in cells and tuple(c["b"]) in cells, (paper, c["claim"])
    with pytest.raises(BadInput, match=r"claims\[0\] needs"):
        plans.validate({"claims": [{"claim": "x", "a": ["1", "r"], "b": [], "expect": ">"}]}, "t")
