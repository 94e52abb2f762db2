"""Claims tested on stored cells: held when the difference has the paper's sign and the two
95 % intervals do not overlap, not held when they do not overlap the other way, otherwise
not testable at this scale, with the n that would separate the measured difference
(half-widths shrink as 1/√n: worked out by hand below)."""

import pytest

from advbench import claims, plans
from advbench.errors import BadInput
from advbench.metrics import mean_interval
from advbench.report.tables import Result


def cell(value, lo, hi, n=100):
    return Result("t", "r", "c", "rho_adv", measured=value, ci_low=lo, ci_high=hi, n=n,
                  status="complete")  # fmt: skip


def test_held_not_held_and_not_testable():
    a, b = cell(0.34, 0.32, 0.36), cell(0.21, 0.19, 0.23)
    assert claims.verdict(a, b, ">")[0] == "held"
    assert claims.verdict(a, b, "<")[0] == "not held"
    assert claims.verdict(b, a, "<")[0] == "held"
    # overlapping: half-widths 0.05 + 0.05 against a difference of 0.05 at n = 100:
    # (0.1 / 0.05)² × 100 = 400 per cell
    v, why = claims.verdict(cell(0.30, 0.25, 0.35), cell(0.25, 0.20, 0.30), ">")
    assert v == "not testable at this scale" and "n = 400 per cell" in why
    # a difference far inside the intervals is said to be so, not given an absurd n
    v, why = claims.verdict(cell(0.30, 0.2, 0.4), cell(0.2999, 0.2, 0.4), ">")
    assert "far inside" in why
    empty = Result("t", "r", "c", "accuracy", status="empty", why="no cifar10 model of role x")
    assert claims.verdict(empty, b, ">") == ("not run", "no cifar10 model of role x")


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
