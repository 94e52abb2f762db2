"""The report's render layer for the papers' tables: cell text, captions and
provenance, and the table as a terminal table, markdown, LaTeX or tidy CSV / JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

import pandas as pd
import sqlite_utils

from advbench.errors import unknown
from advbench.report.papers import (
    PERCENT,
    TableSpec,
    references,
)
from advbench.report.tables import FORMATS, Result


def _fmt(value: Any, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, str):
        return value
    if metric in PERCENT:
        return f"{value:.1f}"
    return f"{value:.4g}"


def cell_text(r: Result) -> str:
    """measured [low, high] n=N · paper P: the interval by its bounds (Wilson's is not
    symmetric), or why the cell is empty."""
    paper = f"paper {r.published_shown}"
    if r.status == "empty":
        return f"not run: {r.why} · {paper}"
    text = _fmt(r.measured, r.metric)
    if r.ci_low is not None:
        text += f" [{_fmt(r.ci_low, r.metric)}, {_fmt(r.ci_high, r.metric)}]"
    if r.n is not None:
        text += f" n={r.n}"
    if r.status == "partial":
        text += f" partial ({r.why})" if r.why else " partial"
    return f"{text} · {paper}"


def caption(spec: TableSpec, results: list[Result], db: sqlite_utils.Database) -> list[str]:
    """How the numbers were obtained: scale, sample sets, seeds and models' checksums."""
    filled = [r for r in results if r.status != "empty"]
    lines = [
        f"{spec.id}: {spec.title}. Measured [95 % interval: Wilson for an accuracy, normal "
        f"approximation for a mean] n · paper; "
        f"{len(filled)} of {len(results)} cells filled.",
        *provenance(results, db),
    ]
    by_col: dict[str, set[str]] = {}
    for r in filled:
        if r.sample_set:
            by_col.setdefault(r.column, set()).add(r.sample_set)
    mixed: dict[tuple[str, ...], list[str]] = {}
    for c, sets in by_col.items():
        if len(sets) > 1:
            mixed.setdefault(tuple(sorted(sets)), []).append(c)
    for sets, cols in mixed.items():
        which = "Every column" if len(cols) == len(by_col) else "Columns " + ", ".join(cols)
        lines.append(f"{which} mixes sample sets: {'; '.join(sets)}")
    refs = references(spec)
    if refs:
        lines.append(
            "Published only (other methods, not reproduced): "
            + "; ".join(f"{p.row} / {p.column}: {p.text or '—'}" for p in refs)
        )
    if spec.note:
        lines.append(spec.note)
    return lines


def provenance(results: list[Result], db: sqlite_utils.Database) -> list[str]:
    """Scale, data sets, sample sets, seeds and models (with checksums) behind results."""
    filled = [r for r in results if r.status != "empty"]
    lines = []
    scales = sorted({r.scale for r in filled if r.scale})
    if scales:
        reduced = [s for s in scales if s != "full"]
        lines.append(
            f"Scale: {', '.join(scales)}"
            + (" (reduced: fewer samples and iterations than the paper)" if reduced else "")
        )
    models = {}
    for r in filled:
        if r.model:
            models[r.model] = r.checksum
    datasets = sorted({m["dataset"] for m in db.query("select name, dataset from models")
                       if m["name"] in models})  # fmt: skip
    if datasets:
        note = " (the embedded 5,000-image MNIST subset)" if "mnist-5k" in datasets else ""
        lines.append(f"Data: {', '.join(datasets)}{note}")
    sets = sorted({r.sample_set for r in filled if r.sample_set})
    if sets:
        lines.append(f"Sample sets: {'; '.join(sets)}")
    seeds = sorted({r.seed for r in filled if r.seed is not None})
    if seeds:
        lines.append(f"Seeds: {', '.join(map(str, seeds))}")
    if models:
        lines.append("Models: " + ", ".join(f"{k} ({(v or '')[:12]})" for k, v in models.items()))
    return lines


def to_frame(results: list[Result]) -> pd.DataFrame:
    """Tidy: one row per cell."""
    cols = ["table", "row", "column", "metric", "measured", "published", "n", "ci_low",
            "ci_high", "status", "model", "checksum", "seed", "scale", "sample_set", "runs",
            "why"]  # fmt: skip
    rows = []
    for r in results:
        d = asdict(r)
        d["runs"] = " ".join(r.runs)
        rows.append({c: d[c] for c in cols})
    return pd.DataFrame(rows, columns=cols)


def pivot(results: list[Result]) -> pd.DataFrame:
    rows = list(dict.fromkeys(r.row for r in results))
    cols = list(dict.fromkeys(r.column for r in results))
    cells = {(r.row, r.column): cell_text(r) for r in results}
    return pd.DataFrame(
        [[row, *[cells[(row, c)] for c in cols]] for row in rows], columns=["", *cols]
    )


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#",
          "$": r"\$", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
          "^": r"\textasciicircum{}"}  # fmt: skip


def _latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def as_json(spec: TableSpec, results: list[Result], db) -> dict:
    return {
        "table": spec.id,
        "title": spec.title,
        "caption": caption(spec, results, db),
        "cells": json.loads(to_frame(results).to_json(orient="records")),
    }


def render(spec: TableSpec, results: list[Result], fmt: str, db) -> str:
    if fmt == "csv":
        return to_frame(results).to_csv(index=False)
    if fmt == "json":
        return json.dumps(as_json(spec, results, db), ensure_ascii=False, indent=1) + "\n"
    df = pivot(results)
    lines = caption(spec, results, db)
    if fmt == "markdown":
        head = "| " + " | ".join(df.columns) + " |"
        sep = "|" + "|".join("---" for _ in df.columns) + "|"
        body = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
        return "\n".join([f"### {spec.id}", "", head, sep, *body, "", *lines]) + "\n"
    if fmt == "latex":
        spec_cols = "l" * len(df.columns)
        out = [r"\begin{table}", r"\centering", rf"\begin{{tabular}}{{{spec_cols}}}", r"\hline"]
        out.append(" & ".join(_latex_escape(str(c)) for c in df.columns) + r" \\ \hline")
        for row in df.itertuples(index=False):
            out.append(" & ".join(_latex_escape(str(v)) for v in row) + r" \\")
        out += [r"\hline", r"\end{tabular}",
                rf"\caption{{{_latex_escape(' '.join(lines))}}}", r"\end{table}"]  # fmt: skip
        return "\n".join(out) + "\n"
    raise unknown("format", fmt, FORMATS)


def print_rich(console, view, verbose: bool = False) -> None:
    """A table's view (api.TableView: its spec, cells and caption lines) in the terminal;
    `verbose` lists the runs behind each cell."""
    from rich.table import Table

    spec, results = view.spec, view.results
    df = pivot(results)
    t = Table(title=f"{spec.id}: {spec.title}", title_justify="left", show_lines=True)
    for c in df.columns:
        t.add_column(str(c), overflow="fold")
    for row in df.itertuples(index=False):
        t.add_row(*[str(v) for v in row])
    console.print(t)
    for line in view.caption:
        console.print(line, highlight=False, markup=False)
    if verbose:
        for r in results:
            if r.runs or r.others:
                console.print(
                    f"  {r.row} / {r.column}: used {' '.join(r.runs) or '—'}"
                    + (f"; also matching: {' '.join(r.others)}" if r.others else ""),
                    highlight=False, markup=False,
                )  # fmt: skip
