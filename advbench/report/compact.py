"""The summary a person reads at a glance: `advbench report` with no flags (issue 29).

One table for up to `MOST` models that fits 80 columns: a row per attack row and ε, grouped
by norm, a column per model (A, B, ... named in the caption), each cell the robust accuracy
with its 95 % Wilson bounds ("93.5 [89–96]": the interval is asymmetric and stays so), n
once in the caption where every run shares it, the per-sample worst case over the attacks
of each norm and ε as the last rows of its group (`report.worst_case`: the instances every
one of them attacked), and with two models or more one line per pair from the paired
comparison (`report.compare`). Wider layouts: `--verbose`, `--format markdown|csv`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import sqlite_utils

from advbench.errors import BadInput
from advbench.metrics import wilson_interval

MOST = 4  # models in one compact table
NORMS = ("linf", "l2", "l1", "l0")


@dataclass
class Compact:
    models: list[tuple[str, str]]  # (letter, "name (defense)")
    rows: list[tuple[str, str, str, list[str]]]  # (norm, attack, ε, cells)
    caption: str
    comparisons: list[str] = field(default_factory=list)


def cell(robust: int, n: int, partial: bool = False, usual: int | None = None) -> str:
    """'93.5 [89–96]', with ' n=…' where n is not the caption's `usual` one."""
    if not n:
        return "no start"
    lo, hi = wilson_interval(robust, n)
    text = f"{100 * robust / n:.1f} [{100 * lo:.0f}–{100 * hi:.0f}]"
    if n != usual:
        text += f" n={n}"
    return text + ("*" if partial else "")


def compact(db: sqlite_utils.Database, models: list[str] | None = None) -> Compact | None:
    """The compact summary, or None where the runs hold more than `MOST` models."""
    from advbench.report import run_results, worst_case

    runs = run_results(db, models)
    if runs.empty:
        raise BadInput("no attack runs stored yet; run `advbench attack` first")
    names = list(dict.fromkeys(runs["model"]))
    if len(names) > MOST:
        return None
    letters = [chr(ord("A") + i) for i in range(len(names))]
    info = {r["name"]: r for r in db.query("select name, defense, clean_accuracy, clean_n, seed "
                                          "from models")}  # fmt: skip
    usual = int(runs["n"].mode().iloc[0])  # the n most runs share: said once
    rows: list[tuple[str, str, str, list[str]]] = []
    clean = []
    for name in names:
        m = info[name]
        n = int(m["clean_n"] or 0)
        clean.append(cell(round((m["clean_accuracy"] or 0) * n), n) if n else "—")
    rows.append(("", "clean", "", clean))
    fewer: set[str] = set()
    runs = runs.assign(norm_order=[NORMS.index(x) if x in NORMS else len(NORMS)
                                   for x in runs["norm"]])  # fmt: skip
    for _, group in runs.sort_values(["norm_order", "attack", "eps"]).groupby(
            "norm_order", sort=True):  # fmt: skip
        label_norm = group["norm"].iloc[0] or "—"
        for (attack, eps), part in group.groupby(["attack", "eps"], sort=False):
            by = {r.model: r for r in part.itertuples(index=False)}
            cells = [cell(int(by[m].robust), int(by[m].n), by[m].status != "complete", usual)
                     if m in by else "—" for m in names]  # fmt: skip
            rows.append((label_norm, attack, _eps(eps), cells))
        for eps, part in group[group["targeted"].isna()].groupby("eps", sort=True):
            cells, any_worst = [], False
            for m in names:
                mine = part[part["model"] == m]
                # over the attacks that ran on every instance: one run on a prefix (HSJ)
                # would shrink n to its own (as pesso's best attack, `tables.fill`)
                full = mine[mine["planned_n"] == mine["planned_n"].max()] if len(mine) else mine
                fewer.update(mine[mine["planned_n"] < mine["planned_n"].max()]["attack"])
                ids = list(full["id"])
                if len(ids) < 2:
                    cells.append("—")
                    continue
                robust, n = worst_case(db, ids)
                cells.append(cell(robust, n, usual=usual))
                any_worst = True
            if any_worst:
                rows.append((label_norm, "worst case", _eps(eps), cells))
    seeds = sorted({int(s) for s in runs["seed"].dropna()})
    scales = sorted({str(s) for s in runs["scale"].fillna("custom")})
    caption = (f"Robust accuracy % [95 % Wilson interval], n = {usual} test samples per "
               "cell unless it says otherwise"
               + f"; sample seed {', '.join(map(str, seeds))}; scale {', '.join(scales)}; "
               f"{len(runs)} runs; * partial run. Worst case: per sample over that norm and "
               "ε's untargeted attacks that ran on every instance, on the instances all of "
               "them attacked" + (f" (run on fewer, left out: {', '.join(sorted(fewer))})"
                                  if fewer else "") + ".")  # fmt: skip
    legend = [(letter, f"{name} ({info[name]['defense'] or 'no defense'})")
              for letter, name in zip(letters, names, strict=True)]  # fmt: skip
    return Compact(legend, rows, caption, comparisons(db, names, letters))


def _eps(eps) -> str:
    return "∞" if eps is None or (isinstance(eps, float) and math.isinf(eps)) else f"{eps:g}"


def comparisons(db: sqlite_utils.Database, names: list[str],
                letters: list[str] | None = None) -> list[str]:  # fmt: skip
    """One line per model pair: how many of their shared rows differ at Holm p < 0.05, in
    whose favour, and the largest difference with its interval (models shown by letter)."""
    from advbench.report.compare import compare

    short = dict(zip(names, letters or names, strict=True))
    lines = []
    for a, b in combinations(names, 2):
        try:
            found = compare(db, a, b)
        except BadInput as exc:
            lines.append(f"{short[a]} vs {short[b]}: {exc}")
            continue
        decided = [r for r in found.rows if r.p_adjusted is not None and r.p_adjusted < 0.05]
        higher_a = sum(r.test.effect > 0 for r in decided)
        top = max(found.rows, key=lambda r: abs(r.test.effect))
        t = top.test
        sa, sb = short[a], short[b]
        lines.append(
            f"{sa} − {sb}: {len(decided)} of {len(found.rows)} rows differ on the same "
            f"instances (exact McNemar, Holm p < 0.05): {sa} higher in {higher_a}, {sb} in "
            f"{len(decided) - higher_a}; largest {top.attack} ε {_eps(top.eps)}: "
            f"{t.effect:+.1f} [{t.low:+.1f}, {t.high:+.1f}] points "
            f"(`advbench report --compare {a} {b}`)"
        )
    return lines


def print_compact(console, view: Compact) -> None:
    """The compact summary in a terminal (rich): one table, the legend, the comparisons."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="Robust accuracy of the stored models", title_justify="left",
              caption=view.caption, caption_justify="left")  # fmt: skip
    t.add_column("norm", no_wrap=True)
    t.add_column("attack", overflow="fold")
    t.add_column("ε", justify="right", no_wrap=True)
    for letter, _ in view.models:
        t.add_column(letter, justify="right", no_wrap=True)
    last = None
    for norm, attack, eps, cells in view.rows:
        t.add_row("" if norm == last else norm, escape(attack), eps, *cells)
        last = norm
    console.print(t, highlight=False)
    for letter, name in view.models:
        console.print(f"  {letter} = {name}", highlight=False, markup=False)
    for line in view.comparisons:
        console.print(line, highlight=False, markup=False)
