"""A paper's claims, tested on stored runs.

Each claim is data in `benchmarks/plans/PAPER.json` (`claims`): a sentence and two table
cells a and b with the direction the paper reports (a > b or a < b). Both are evaluated as
the table evaluates them (value, n, 95 % interval); the verdict:
- held: the measured difference has the paper's sign and the intervals do not overlap;
- not held: the intervals do not overlap, the other way;
- not testable at this scale: they overlap. The n that would separate a difference of the
  measured size is estimated by scaling the intervals' half-widths as 1/√n.
A cell without data (its data set absent, its runs not made) is "not run".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlite_utils

from advbench import plans
from advbench.report import table_views as views
from advbench.report import tables as tab
from advbench.report.papers import tables as all_tables


@dataclass
class Claim:
    paper: str
    claim: str
    a: tab.Result | None
    b: tab.Result | None
    expect: str
    verdict: str
    detail: str


def verdict(a: tab.Result, b: tab.Result, expect: str) -> tuple[str, str]:
    """(verdict, why) for a claim that a `expect` b ('>' or '<')."""
    if a.measured is None or b.measured is None or a.status == "empty" or b.status == "empty":
        why = a.why if a.status == "empty" else b.why
        return "not run", why
    diff = a.measured - b.measured
    if a.ci_low is None or b.ci_low is None:
        return "not testable at this scale", "no interval for one of the cells"
    if expect == "<":
        apart_right = a.ci_high < b.ci_low
        apart_wrong = a.ci_low > b.ci_high
    else:
        apart_right = a.ci_low > b.ci_high
        apart_wrong = a.ci_high < b.ci_low
    if apart_right:
        return "held", "intervals apart, the paper's way"
    if apart_wrong:
        return "not held", "intervals apart, the other way"
    half = (a.ci_high - a.ci_low) / 2 + (b.ci_high - b.ci_low) / 2
    if diff == 0 or not a.n or not b.n:
        return "not testable at this scale", "no difference measured"
    need = math.ceil(max(a.n, b.n) * (half / abs(diff)) ** 2)
    if need > 100 * max(a.n, b.n):
        return "not testable at this scale", (
            f"intervals overlap; the measured difference ({diff:+.3g}) is far inside them"
        )
    return "not testable at this scale", (
        f"intervals overlap; about n = {need:,} per cell would separate a difference of "
        f"{abs(diff):.3g}"
    )


def judge(db: sqlite_utils.Database, paper: str) -> list[Claim]:
    store = tab.StoredRuns(db)
    specs = {s.number: s for s in all_tables().values() if s.paper == paper}
    cells: dict[str, dict] = {}  # table -> (row, column) -> Result, each table evaluated once

    def cell(ref: list[str]) -> tab.Result | None:
        table, row, column = ref
        if table not in cells:
            cells[table] = {(r.row, r.column): r for r in tab.cells(db, specs[table], store)}
        return cells[table].get((row, column))

    out = []
    for c in plans.load(paper).get("claims", []):
        a, b = cell(c["a"]), cell(c["b"])
        v, why = verdict(a, b, c["expect"])
        out.append(Claim(paper, c["claim"], a, b, c["expect"], v, why))
    return out


def show(r: tab.Result) -> str:
    return f"{r.row} / {r.column}: {views.cell_text(r)}"


def markdown(claims: list[Claim]) -> str:
    lines = ["| paper | claim | verdict | measured (a; b) | why |", "|---|---|---|---|---|"]
    for c in claims:
        measured = f"{show(c.a)}; {show(c.b)}"
        cells = [c.paper, c.claim, f"**{c.verdict}**", measured, c.detail]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines) + "\n"
