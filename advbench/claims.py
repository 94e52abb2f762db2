"""A paper's claims, decided on paired evidence from the stored runs.

Each claim is data in `benchmarks/plans/PAPER.json` (`claims`): a sentence, two table cells
a and b and the direction the paper reports (a > b or a < b), with an optional caveat
(`note`) and, where the measured unit is not the paper's, why (`not_comparable`). Both
cells are measured on the same seeded instances, so the claim is judged on the pairs
(`advbench.paired`): exact McNemar for accuracies, the mean paired difference with a
bootstrap interval and a sign-flip p for per-sample metrics, per image on targeted rows,
on the instances both cells hold. p is Holm-adjusted across the paper's claims.

The verdict has two parts:
- **direction**: held (adjusted p < 0.05, the paper's way), contradicted (the other way),
  undecided (with the pairs that would give 80 % power at the measured effect); "degenerate"
  where the attack broke no instance on either model (it measured neither), "not run"
  where a cell has no data;
- **size**: the measured effect's 95 % interval against the published effect (a − b in the
  paper's table): consistent with published, smaller than published (the interval lies on
  zero's side of it), larger, or not comparable (units differ; the claim says why).
Cells without per-sample rows (clean accuracy) fall back to their two intervals, and say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlite_utils

from advbench import paired, plans
from advbench.paired import Paired
from advbench.report import evidence
from advbench.report import table_views as views
from advbench.report import tables as tab
from advbench.report.papers import CONTROL_TAG, defense_row, seed_row
from advbench.report.papers import tables as all_tables

DIRECTIONS = ("held", "contradicted", "undecided", "degenerate", "not run")


@dataclass
class Claim:
    paper: str
    claim: str
    a: tab.Result | None
    b: tab.Result | None
    expect: str
    direction: str
    size: str
    detail: str  # how it was decided: the test, pairs, p, power
    test: Paired | None = None
    p_adjusted: float | None = None
    published: float | None = None  # the paper's a − b
    note: str = ""  # the plan's caveat
    control: tab.Result | None = None  # the same-budget control a is judged against
    baseline: Paired | None = None  # with a control: the paper's own comparison, a − b
    seeds: list[Paired] | None = None  # with seed replicates: each seed's paired test

    @property
    def verdict(self) -> str:
        """Both parts in one phrase ('held; smaller than published')."""
        if self.direction in ("not run", "degenerate") or not self.size:
            return self.direction
        return f"{self.direction}; {self.size}"

    def effect(self) -> str:
        """'+5.0 [-1.2, +11.3]' (a − b and its paired 95 % interval)."""
        t = self.test
        if t is None or math.isnan(t.effect) or self.direction == "degenerate":
            return "—"
        return f"{_num(t.effect)} [{_num(t.low)}, {_num(t.high)}]"


def _num(x: float) -> str:
    if x == 0:
        return "0"
    return f"{x:+.1f}" if abs(x) >= 1 else f"{x:+.3g}"


def decide(a: evidence.Evidence, b: evidence.Evidence) -> tuple[Paired, bool]:
    """The paired test of a − b and whether it is degenerate (an accuracy the attack broke
    on no shared instance of either model)."""
    test = paired.pair(a.values, b.values, binary=a.binary and b.binary,
                       ceiling_a=a.ceiling, ceiling_b=b.ceiling)  # fmt: skip
    shared = [k for k in a.values if k in b.values]
    degenerate = (
        a.binary
        and b.binary
        and bool(shared)
        and not any(a.broken.get(k) or b.broken.get(k) for k in shared)
    )
    return test, degenerate


def unpaired(a: tab.Result, b: tab.Result, expect: str) -> tuple[str, str]:
    """Direction from two intervals where a cell has no per-sample rows."""
    if a.ci_low is None or b.ci_low is None:
        return "undecided", "no per-sample rows and no interval for one of the cells"
    hi, lo = (a, b) if expect == ">" else (b, a)
    if hi.ci_low > lo.ci_high:
        return "held", "unpaired: the two 95 % intervals are apart, the paper's way"
    if hi.ci_high < lo.ci_low:
        return "contradicted", "unpaired: the two 95 % intervals are apart, the other way"
    return "undecided", "unpaired: the two 95 % intervals overlap (no per-sample rows to pair)"


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
        control = cell(c["control"]) if c.get("control") else None
        out.append(_judge_one(store, paper, c, a, b, control, _replicas(c, cell)))
    adjusted = paired.holm([x.test.p if x.test and x.direction != "degenerate" else None
                            for x in out])  # fmt: skip
    for claim, p in zip(out, adjusted, strict=True):
        claim.p_adjusted = p
        _finish(claim)
    return out


def _replicas(c: dict, cell) -> list[tuple]:
    """(defense, control) cells of the control's seed replicates, seed 1 on: the rows
    "X (seed N)" and "X: control (...) (seed N)" of the control's table."""
    if not c.get("control"):
        return []
    table, row, column = c["control"]
    defense = defense_row(row)
    out, seed = [], 1
    while True:
        x = cell([table, seed_row(defense, seed), column])
        y = cell([table, seed_row(row, seed), column])
        if x is None or y is None:
            return out
        out.append((x, y))
        seed += 1


def _judge_one(store, paper: str, c: dict, a, b, control=None, replicas=()) -> Claim:
    """The claim judged against its control where the plan names one and it is stored
    (the paper's own comparison, a − b, kept beside it), else against b; with seed
    replicates of the defense and its control, on the per-seed paired effects."""
    claim = _judge_pair(store, paper, c, a, b)
    if control is None and c.get("control"):
        claim.note = "; ".join(x for x in (claim.note, f"its control {c['control']} is no "
                               "cell of its table: judged against the paper's comparison")
                               if x)  # fmt: skip
        return claim
    if control is None:
        return claim
    if control.status == "empty":
        claim.note = "; ".join(x for x in (claim.note, f"its same-budget control is not "
                               f"stored ({control.why}): judged against the paper's "
                               "comparison") if x)  # fmt: skip
        return claim
    judged = _judge_pair(store, paper, c, a, control)
    judged.b, judged.control, judged.baseline = b, control, claim.test
    judged.published = claim.published
    usable = judged.test is not None and judged.test.n and not math.isnan(judged.test.effect)
    if usable and judged.direction not in ("degenerate", "not run"):
        per = [judged.test]
        for x, y in replicas:
            one = _judge_pair(store, paper, c, x, y)
            t = one.test
            if t is not None and t.n and not math.isnan(t.effect) \
                    and one.direction != "degenerate":  # fmt: skip
                per.append(t)
        if len(per) > 1:
            judged.seeds = per
            judged.test = paired.over_seeds([t.effect for t in per], per[0].test, per)
        # the size is the paper's comparison's (a − b against the published a − b): like
        # with like, where the control's verdict gives the direction
        judged.size = _size(judged, claim.test, c) if claim.test is not None else claim.size
    return judged


def _judge_pair(store, paper: str, c: dict, a, b) -> Claim:
    claim = Claim(paper, c["claim"], a, b, c["expect"], "not run", "", "", note=c.get("note", ""))
    if a is None or b is None or a.status == "empty" or b.status == "empty":
        empty = a if (a is None or a.status == "empty") else b
        claim.detail = empty.why if empty is not None else "cell not in the table"
        return claim
    if isinstance(a.published, float) and isinstance(b.published, float):
        claim.published = a.published - b.published
    ea, eb = evidence.of(store, a), evidence.of(store, b)
    if ea is None or eb is None or ea.binary != eb.binary:
        claim.direction, claim.detail = unpaired(a, b, c["expect"])
        claim.size = _size(claim, None, c)
        return claim
    test, degenerate = decide(ea, eb)
    claim.test = test
    if test.n == 0:
        claim.direction = "undecided"
        claim.detail = "the two cells share no instance (different samples or seeds)"
        return claim
    if degenerate:
        claim.direction = "degenerate"
        claim.detail = (f"the attack broke nothing on either model ({test.n} shared "
                        "instances): it measured neither")  # fmt: skip
        return claim
    claim.direction = "undecided"  # until the family's adjusted p is known (`_finish`)
    claim.size = _size(claim, test, c)
    return claim


def _size(claim: Claim, test: Paired | None, c: dict) -> str:
    if c.get("not_comparable"):
        return "not comparable"
    if test is None or claim.published is None:
        return "no published effect" if claim.published is None else "not sized (unpaired)"
    return paired.size(test.low, test.high, claim.published)


def _finish(claim: Claim) -> None:
    """Direction from the adjusted p, and the line saying how it was decided."""
    t = claim.test
    if t is None or claim.direction in ("degenerate", "not run") or t.n == 0:
        return
    claim.direction = paired.direction(t.effect, claim.p_adjusted, claim.expect)
    other = "its same-budget control" if claim.control is not None else "b"
    parts = [f"{t.test}: a − {other} = {claim.effect()}", t.pairs(),
             f"p {paired.fmt_p(t.p)}, Holm {paired.fmt_p(claim.p_adjusted)}"]  # fmt: skip
    if claim.published is not None:
        parts.append(f"paper {_num(claim.published)}")
    if claim.direction == "undecided":
        need = t.need()
        unit = "seeds" if claim.seeds else "pairs"
        parts.append(f"about {need:,} {unit} would give 80 % power at this effect" if need
                     else "no difference measured")  # fmt: skip
    seeds = sorted({r.seed for r in (claim.a, claim.b) if r is not None and r.seed is not None})
    if seeds:
        parts.append("seed " + ", ".join(str(s) for s in seeds))
    if t.note:
        parts.append(t.note)
    if claim.seeds:
        way = sum((t.effect > 0) == (claim.expect == ">") and t.effect != 0 for t in claim.seeds)
        parts[1] = (f"{way} of {len(claim.seeds)} seeds the paper's way; per seed: " +
                    ", ".join(f"{_num(t.effect)} (p {paired.fmt_p(t.p)})" for t in claim.seeds)
                    + f"; seed 0: {claim.seeds[0].pairs()}")  # fmt: skip
    base = claim.baseline
    if base is not None and not math.isnan(base.effect):
        parts.append(
            f"the paper's comparison (a − b, b = {claim.b.row}): {_num(base.effect)} "
            f"[{_num(base.low)}, {_num(base.high)}], p {paired.fmt_p(base.p)}"
        )
    claim.detail = "; ".join(parts)


def show(r: tab.Result) -> str:
    return f"{r.row} / {r.column}: {views.cell_text(r)}"


def counts(claims: list[Claim]) -> tuple[dict[str, int], dict[str, int]]:
    """How many claims each direction has, and each size among those sized."""
    direction: dict[str, int] = {}
    size: dict[str, int] = {}
    for c in claims:
        direction[c.direction] = direction.get(c.direction, 0) + 1
        if c.size and c.direction not in ("not run", "degenerate"):
            size[c.size] = size.get(c.size, 0) + 1
    return direction, size


def tally(claims: list[Claim]) -> str:
    """'direction: 3 held, 5 undecided; size: 5 consistent with published, ...'."""
    direction, size = counts(claims)
    text = "direction: " + ", ".join(f"{v} {k}" for k, v in direction.items())
    return text + ("; size: " + ", ".join(f"{v} {k}" for k, v in size.items()) if size else "")


def markdown(claims: list[Claim]) -> str:
    lines = ["| paper | claim | direction | size | a − b [95 %] (paper) | measured (a; b) | how |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in claims:
        measured = f"{show(c.a)}; {show(c.b)}" if c.a and c.b else "—"
        if c.control is not None:
            measured += f"; control {show(c.control)}"
        published = f" ({_num(c.published)})" if c.published is not None else ""
        how = c.detail + (f". Note: {c.note}" if c.note else "")
        cells = [c.paper, c.claim, f"**{c.direction}**", c.size or "—",
                 c.effect() + published, measured, how]  # fmt: skip
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines) + "\n"


def _number(x) -> float | None:
    """A plain float for csv/json (numpy's too), None where there is none; the writer
    (`cli/report.py`) blanks NaN and ±inf, which JSON has not."""
    return None if x is None else float(x)


def _cell(prefix: str, r: tab.Result | None) -> dict:
    """A cell's identity and measured value, flat, for csv/json."""
    if r is None:
        return {f"{prefix}_{k}": None for k in ("row", "column", "measured", "n", "model")}
    measured = r.measured if isinstance(r.measured, str) else _number(r.measured)
    return {f"{prefix}_row": r.row, f"{prefix}_column": r.column,
            f"{prefix}_measured": measured, f"{prefix}_n": r.n,
            f"{prefix}_model": r.model}  # fmt: skip


def _test(t: Paired | None) -> dict:
    """A paired test's numbers, flat: unrounded, so a reader can recompute the verdict."""
    if t is None:
        return {k: None for k in ("test", "pairs", "effect", "low", "high", "p",
                                  "a_only", "b_only")}  # fmt: skip
    return {"test": t.test, "pairs": t.n, "effect": _number(t.effect), "low": _number(t.low),
            "high": _number(t.high), "p": _number(t.p), "a_only": t.f, "b_only": t.g}  # fmt: skip


def records(claims: list[Claim]) -> list[dict]:
    """One flat record per claim (`report --claims --format csv|json`): the verdict, the
    paired test's unrounded numbers, the cells compared and the paper's effect."""
    out = []
    for c in claims:
        rec = {"paper": c.paper, "claim": c.claim, "expect": c.expect,
               "direction": c.direction, "size": c.size or None, **_test(c.test),
               "p_adjusted": _number(c.p_adjusted), "published": _number(c.published),
               "seed_effects": [_number(t.effect) for t in c.seeds] if c.seeds else None,
               **_cell("a", c.a), **_cell("b", c.b), **_cell("control", c.control),
               "baseline_effect": _number(c.baseline.effect) if c.baseline else None,
               "baseline_p": _number(c.baseline.p) if c.baseline else None,
               "how": c.detail, "note": c.note or None}  # fmt: skip
        out.append(rec)
    return out


@dataclass
class Acting:
    """One defense against its same-budget control on one quantity (a controls table's
    row pair and column): does the defense move what it penalises, beyond what the same
    fine-tuning without its term does?"""

    table: str
    defense: str
    quantity: str
    a: tab.Result
    control: tab.Result
    test: Paired | None
    p_adjusted: float | None = None
    why: str = ""
    # the test a verdict rests on: the one pair, or the mean over seeds where the defense
    # has seed replicates (each seed's own pair is shown beside it, not Holm-counted)
    primary: bool = True

    @property
    def verdict(self) -> str:
        t = self.test
        if t is None or t.n == 0 or math.isnan(t.effect):
            return "not run" if self.why else "undecided"
        p = self.p_adjusted if self.primary else t.p
        way = "lower than its control" if t.effect < 0 else "higher than its control"
        if p is None or math.isnan(p) or p >= 0.05 or not t.effect:
            way = "no difference shown"
        return way if self.primary else f"this seed: {way}"


def controls(db: sqlite_utils.Database, paper: str) -> list[Acting]:
    """Every defense of the paper's controls tables (rows "X" and "X: control (...)")
    against its control, column by column, paired; p Holm-adjusted over the table."""
    store = tab.StoredRuns(db)
    out: list[Acting] = []
    for spec in all_tables().values():
        if spec.paper != paper or not spec.rows:
            continue
        cells = {(r.row, r.column): r for r in tab.cells(db, spec, store)}
        for row in spec.rows:
            if CONTROL_TAG in row or " (seed " in row:
                continue
            for col in spec.objective.get(row, spec.columns):
                a, ctl = cells[(row, col)], cells.get((row + spec.control_mark, col))
                if ctl is None or a.metric == "clean":  # clean accuracy: no per-sample rows
                    continue
                first = _acting(store, spec.id, row, col, a, ctl)
                out.append(first)
                per = [first]
                seed = 1
                while (seed_row(row, seed), col) in cells:
                    x = cells[(seed_row(row, seed), col)]
                    y = cells.get((seed_row(row + spec.control_mark, seed), col))
                    seed += 1
                    if y is not None:
                        per.append(_acting(store, spec.id, seed_row(row, seed - 1), col, x, y))
                done = [x.test for x in per if x.test is not None and x.test.n]
                if len(per) > 1:
                    out += per[1:]
                    if len(done) > 1:
                        for x in per:
                            x.primary = False
                        mean = paired.over_seeds([t.effect for t in done], done[0].test, done)
                        way = sum(
                            1 for t in done if t.effect and (t.effect < 0) == (mean.effect < 0)
                        )
                        out.append(Acting(spec.id, f"{row} (mean over {len(done)} seeds, "
                                          f"{way} of {len(done)} the mean's way)", col, a, ctl,
                                          mean))  # fmt: skip
        adjusted = paired.holm([x.test.p if x.test and x.table == spec.id and x.primary
                                else None for x in out])  # fmt: skip
        for x, p in zip(out, adjusted, strict=True):
            if x.table == spec.id:
                x.p_adjusted = p
    return out


def _acting(store, table: str, row: str, col: str, a, ctl) -> Acting:
    empty = next((r for r in (a, ctl) if r.status == "empty"), None)
    if empty is not None:
        return Acting(table, row, col, a, ctl, None, why=empty.why or "not run")
    ea, ec = evidence.of(store, a), evidence.of(store, ctl)
    if ea is None or ec is None or ea.binary != ec.binary:
        return Acting(table, row, col, a, ctl, None, why="no per-sample rows to pair")
    test, _ = decide(ea, ec)
    return Acting(table, row, col, a, ctl, test)


def controls_records(found: list[Acting]) -> list[dict]:
    """One flat record per defense, quantity and seed (`report --controls --format
    csv|json`), with the paired test's unrounded numbers; `primary`: the row the verdict and
    Holm p are for (a seed's own row is not), and a mean-over-seeds row holds no cells."""
    out = []
    for x in found:
        mean = "(mean over" in x.defense  # its cells are seed 0's: the seeds are the rows above
        out.append({"paper": x.table.split(":")[0], "table": x.table, "defense": x.defense,
                    "quantity": x.quantity, "primary": x.primary, "verdict": x.verdict,
                    **_test(x.test), "p_adjusted": _number(x.p_adjusted),
                    **_cell("defense", None if mean else x.a),
                    **_cell("control", None if mean else x.control),
                    "why": x.why or None})  # fmt: skip
    return out


def controls_markdown(found: list[Acting]) -> str:
    lines = ["| paper | defense | quantity | defense; control | defense − control [95 %] | "
             "pairs | p | Holm p | verdict |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for x in found:
        t = x.test
        shown = "; ".join(views.cell_text(r).replace(" · paper —", "") for r in (x.a, x.control))
        if "(mean over" in x.defense:
            shown = "each seed's pair in the rows above"
        paper = x.table.split(":")[0]
        if t is None or t.n == 0:
            cells = [paper, x.defense, x.quantity, shown, "—", "—", "—", "—", x.why or x.verdict]
        else:
            cells = [paper, x.defense, x.quantity, shown,
                     f"{_num(t.effect)} [{_num(t.low)}, {_num(t.high)}]", t.pairs(),
                     paired.fmt_p(t.p), paired.fmt_p(x.p_adjusted), f"**{x.verdict}**"]  # fmt: skip
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
