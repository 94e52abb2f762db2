"""Two stored models compared on paired evidence: `advbench report --compare A B`.

For every attack row and ε both models were attacked at (the summary's runs: the newest
complete run of each cell, `report.run_results`; a transfer row's source is part of its
label, so only rows crafted the same way meet), the instances both runs hold are paired:
A − B in percentage points with Newcombe's interval and exact McNemar (per test image on
targeted rows, `advbench.paired`), p Holm-adjusted over the rows. Accuracies in the table are
on those shared instances, so they can differ from a cell measured on more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
import sqlite_utils

from advbench import paired
from advbench.errors import BadInput
from advbench.paired import Paired
from advbench.store import outcomes

FORMATS = ("table", "markdown", "csv", "json")


@dataclass
class Row:
    attack: str
    norm: str | None
    eps: float
    acc_a: float  # % robust on the shared instances
    acc_b: float
    test: Paired
    run_a: str
    run_b: str
    seed: int | None
    p_adjusted: float | None = None


@dataclass
class Comparison:
    a: str
    b: str
    rows: list[Row]
    unshared: list[str] = field(default_factory=list)  # rows both ran, on no common instance

    def caption(self) -> str:
        n = sorted({r.test.n for r in self.rows})
        seeds = sorted({r.seed for r in self.rows if r.seed is not None})
        ns = f"n = {n[0]}" if len(n) == 1 else f"n = {n[0]}–{n[-1]}"
        return (f"A = {self.a}, B = {self.b}: robust accuracy on the instances both were attacked "
                f"on ({ns} pairs per row, seed {', '.join(map(str, seeds)) or '—'}); 95 % "
                f"interval of the paired difference (Newcombe), exact McNemar p (targeted rows: "
                f"per test image, bootstrap interval and sign-flip p), Holm-adjusted over the "
                f"{len(self.rows)} rows")  # fmt: skip

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "attack": r.attack, "norm": r.norm, "eps": r.eps, "pairs": r.test.n,
            "a_only": r.test.f, "b_only": r.test.g,
            f"{self.a}_pct": round(r.acc_a, 2), f"{self.b}_pct": round(r.acc_b, 2),
            "diff_pp": round(r.test.effect, 3), "ci_low_pp": round(r.test.low, 3),
            "ci_high_pp": round(r.test.high, 3), "p": r.test.p, "p_holm": r.p_adjusted,
            "test": r.test.test, "run_a": r.run_a, "run_b": r.run_b, "seed": r.seed,
        } for r in self.rows])  # fmt: skip


def compare(db: sqlite_utils.Database, a: str, b: str) -> Comparison:
    """Every row both models were attacked at, paired; BadInput for an unknown model, the
    same model twice, or two models without one shared attacked instance."""
    from advbench.report import run_results

    names = [r[0] for r in db.execute("select name from models order by name")]
    for name in (a, b):
        if name not in names:
            raise BadInput(f"unknown model {name!r}; stored models: "
                           f"{', '.join(names) or 'none (train one first)'}")  # fmt: skip
    if a == b:
        raise BadInput(f"--compare needs two different models; got {a!r} twice")
    runs = run_results(db, [a, b])
    if runs.empty:
        raise BadInput(f"{a} and {b} have no stored attack runs to compare")
    by_cell = {(r.model, r.attack, _eps(r.eps)): r for r in runs.itertuples(index=False)}
    rows, unshared = [], []
    for (model, attack, eps), ra in sorted(by_cell.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        rb = by_cell.get((b, attack, eps))
        if model != a or rb is None:
            continue
        ea, eb = outcomes.robust(db, [ra.id]), outcomes.robust(db, [rb.id])
        shared = [k for k in ea if k in eb]
        if not shared:
            unshared.append(f"{attack} ε {eps:g}")
            continue
        test = paired.pair({k: v[0] for k, v in ea.items()}, {k: v[0] for k, v in eb.items()},
                           binary=True)  # fmt: skip
        acc_a, acc_b = _accuracy(ea, shared), _accuracy(eb, shared)
        seed = int(ra.seed) if ra.seed == rb.seed and ra.seed is not None else None
        rows.append(Row(attack, ra.norm, eps, acc_a, acc_b, test, ra.id, rb.id, seed))
    if not rows:
        why = f" ({len(unshared)} rows both ran, on different instances)" if unshared else ""
        raise BadInput(f"{a} and {b} share no attacked instance{why}: attack both with the "
                       "same --n and --seed")  # fmt: skip
    for row, p in zip(rows, paired.holm([r.test.p for r in rows]), strict=True):
        row.p_adjusted = p
    return Comparison(a, b, rows, unshared)


def _accuracy(found: dict, keys: list) -> float:
    """% robust on `keys`; on targeted rows the mean over test images of each image's share
    (as the paired test weighs them), so A − B equals the effect shown."""
    if any(k[1] is not None for k in keys):
        images: dict = {}
        for k in keys:
            images.setdefault(k[0], []).append(found[k][0])
        return 100 * sum(sum(v) / len(v) for v in images.values()) / len(images)
    return 100 * sum(found[k][0] for k in keys) / len(keys)


def _eps(value) -> float:
    return float("inf") if value is None or (isinstance(value, float) and math.isnan(value)) \
        else float(value)  # fmt: skip


def cells(c: Comparison) -> list[list[str]]:
    """The rows as the terminal and markdown show them."""
    out = []
    for r in c.rows:
        t = r.test
        eps = "∞" if math.isinf(r.eps) else f"{r.eps:g}"
        out.append([r.attack, eps, f"{r.acc_a:.1f}", f"{r.acc_b:.1f}",
                    f"{t.effect:+.1f} [{t.low:+.1f}, {t.high:+.1f}]",
                    f"{t.n}" + (f" ({t.f}/{t.g})" if t.f is not None else ""),
                    paired.fmt_p(t.p), paired.fmt_p(r.p_adjusted)])  # fmt: skip
    return out


HEADER = ("attack", "ε", "A %", "B %", "A − B [95 %]", "pairs (A/B only)", "p", "Holm p")


def markdown(c: Comparison) -> str:
    head = list(HEADER)
    lines = [c.caption() + ".", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]  # fmt: skip
    lines += ["| " + " | ".join(x.replace("|", "\\|") for x in row) + " |" for row in cells(c)]
    if c.unshared:
        lines += ["", "Rows both ran on no common instance: " + "; ".join(c.unshared) + "."]
    return "\n".join(lines) + "\n"
