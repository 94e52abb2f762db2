"""The papers' tables regenerated from stored runs, beside the published numbers.

The cell layer: `cells(db, spec)` fills every cell of a `TableSpec` from the runs and
measurements its declarative match selects (`stored.StoredRuns`, the query layer);
`table_views` renders it (terminal, markdown, LaTeX, tidy CSV / JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from advbench import formats
from advbench.metrics import mean_interval, wilson_interval
from advbench.report import rho_adv_values, worst_case
from advbench.report.papers import (
    AT_POINTS,
    Cell,
    Published,
    TableSpec,
    layout,
    select_specs,
    tables,
)
from advbench.report.stored import StoredRuns, data_for

FORMATS = formats.TABLES


@dataclass
class Result:
    """One evaluated cell: measured and published values, n and, for accuracies, the 95 %
    Wilson interval (bounds in the value's unit)."""

    table: str
    row: str
    column: str
    metric: str
    measured: Any = None  # number, or text for a setting
    published: float | str | None = None
    published_shown: str = "—"  # as the paper prints it (3.90, 2.0,0.01, N/A); — if blank
    n: int | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    status: str = "empty"  # complete, partial, empty
    model: str | None = None
    checksum: str | None = None
    runs: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # other matching runs (not used)
    seed: int | None = None
    scale: str | None = None
    sample_set: str | None = None  # n_samples/seed/only_correct/targeted of the runs used
    why: str = ""  # why it is empty
    cell: Cell | None = None  # its definition (what fills it)


def _set_of(run) -> str:
    parts = [f"n_samples={int(run.n_samples)}", f"seed={int(run.seed)}"]
    if run.only_correct:
        parts.append("correct only")
    parts.append(f"targeted {run.targeted}" if run.targeted else "untargeted")
    return ", ".join(parts)


def cells(
    db: sqlite_utils.Database, spec: TableSpec, store: StoredRuns | None = None
) -> list[Result]:
    store = store or StoredRuns(db)
    rows, cols, pub = layout(spec)
    out = []
    for row in rows:
        for col in cols:
            p = pub.get((row, col))
            cell = spec.cell(row, col)
            res = Result(spec.id, row, col, cell.metric, published=_num(p),
                         published_shown=_shown(p), cell=cell)  # fmt: skip
            fill(store, spec, cell, res)
            out.append(res)
    return out


def _shown(p: Published | None) -> str:
    """The published value as printed: the transcription's number, else the paper's token
    (N/A), — where the cell is blank or a dash."""
    if p is None:
        return "—"
    return p.value or (p.text.strip() if p.text.strip() not in ("", "-") else "—")


def _num(p: Published | None) -> float | str | None:
    if p is None or p.value == "":
        return None
    try:
        return float(p.value)
    except ValueError:
        return p.value


def fill(store: StoredRuns, spec: TableSpec, cell: Cell, res: Result) -> None:
    models = store.role_models(spec, cell.data, cell.role)
    if not models:
        res.why = f"no {cell.data} model of role {cell.role}"
        return
    model = models[0]
    res.model, res.checksum = model["name"], model["checksum"]
    if cell.metric == "clean":
        n = int(model["clean_n"] or 0)
        acc = model["clean_accuracy"]
        if acc is None or not n:
            res.why = "no clean accuracy stored"
            return
        lo, hi = wilson_interval(round(acc * n), n)
        res.measured, res.n, res.ci_low, res.ci_high = acc * 100, n, lo * 100, hi * 100
        res.status = "complete"
        res.seed = model["seed"]
        return
    if cell.metric == "setting":
        res.measured = _setting(model, cell.key)
        res.status = "complete"
        return
    if cell.metric in AT_POINTS:
        m = store.measurement(model, cell.metric)
        if m is None:
            res.why = f"no {cell.metric} measurement"
            return
        res.measured, res.n, res.seed, res.status = m["value"], m["n"], m["seed"], "complete"
        _mean_ci(res, json.loads(m["per_sample"] or "[]"))
        return
    labels = cell.match.get("labels") or [cell.match.get("label")]
    chosen, found = [], []
    for label in labels:
        runs = store.matching_runs(
            spec, cell, model["name"], label if "labels" in cell.match else None
        )
        if runs.empty:
            continue
        chosen.append(runs.iloc[0])
        found.append(label)
        res.others += list(runs["id"].iloc[1:])
    if not chosen:
        res.why = "no matching run"
        if any(not store.matching_runs(spec, cell, model["name"], lab, stale=True).empty
               for lab in (labels if "labels" in cell.match else [None])):  # fmt: skip
            res.why = "its stored runs used an earlier version of the suite row's parameters"
        return
    res.runs = [r.id for r in chosen]
    res.status = "complete" if all(r.status == "complete" for r in chosen) else "partial"
    first = chosen[0]
    res.seed, res.scale, res.sample_set = int(first.seed), first.scale, _set_of(first)
    db = store.db
    if cell.metric == "accuracy":
        robust, n = int(first.robust), int(first.n)
    elif cell.metric == "best":
        # The worst case over the attacks that ran on every instance (the most planned);
        # an attack run on fewer (HSJA on a prefix at cpu scale) would shrink n to its own,
        # so its worst case with the others is given beside, on its instances.
        most = max(int(r.planned) for r in chosen)
        full = [(r, lab) for r, lab in zip(chosen, found, strict=True) if int(r.planned) == most]
        res.runs = [r.id for r, _ in full]
        robust, n = worst_case(db, res.runs)
        lacking = [x for x in labels if x not in found]
        res.sample_set = (f"worst case over {', '.join(lab for _, lab in full)}: the "
                          "instances all of them attacked")  # fmt: skip
        fewer = [lab for r, lab in zip(chosen, found, strict=True) if int(r.planned) < most]
        if fewer:
            sub_robust, sub_n = worst_case(db, [r.id for r in chosen])
            res.sample_set += (f"; with {', '.join(fewer)} too, on the {sub_n} instances it "
                               f"attacked: {sub_robust}/{sub_n} robust")  # fmt: skip
        if lacking:  # a worst case over fewer attacks than the paper's is not the cell yet
            res.status = "partial"
            res.why = f"no {', '.join(lacking)} run"
    elif cell.metric in ("rho_adv", "rho"):
        values = (rho_adv_values if cell.metric == "rho_adv" else rho_changed_values)(db, first.id)
        res.measured = sum(values) / len(values) if values else float("nan")
        res.n = len(values)
        _mean_ci(res, values)
        return
    else:  # measurements taken at a run's kept examples
        m = store.measurement(model, cell.metric, first.id)
        if m is None:
            res.status, res.why = "empty", f"no {cell.metric} measurement at run {first.id}"
            return
        res.measured, res.n = m["value"], m["n"]
        _mean_ci(res, json.loads(m["per_sample"] or "[]"))
        return
    res.n = n
    if n:
        lo, hi = wilson_interval(robust, n)
        res.measured, res.ci_low, res.ci_high = robust / n * 100, lo * 100, hi * 100
    else:
        res.why = "no instance could be started"


def rho_changed(db: sqlite_utils.Database, run_id: str) -> tuple[float, int]:
    """zantedeschi's empirical robustness ρ (001:171, eq. 2) as the authors computed it
    (their `src/metrics.py`, `empirical_robustness`, in ART's history at 298682aa5): mean
    ‖x_adv − x‖_p / ‖x‖_p in the attack's own norm p (`ord=crafter.ord`: L∞ for FGSM, so
    about the flipping ε on MNIST, where ‖x‖∞ = 1), over the inputs whose prediction the
    attack changed (others have no minimal perturbation). Eq. 2 writes ‖x‖₂ and leaves
    Δx's norm open; the published values are the code's. NaN and 0 where there is none;
    rows stored before ‖x‖∞ was recorded (x_linf NULL) are left out of an L∞ ρ."""
    values = rho_changed_values(db, run_id)
    return (sum(values) / len(values) if values else float("nan"), len(values))


def rho_changed_values(db: sqlite_utils.Database, run_id: str) -> list[float]:
    """‖δ‖ / ‖x‖ in the run's norm (L2 for an attack without one: the authors' code took
    ART's default ord, 2, where an attack has no `ord`) over the changed predictions: the
    uncensored values of `store.outcomes.rho_changed`."""
    from advbench.store import outcomes

    return [v for v in outcomes.rho_changed(db, run_id).values() if v is not None]


def _mean_ci(res: Result, values) -> None:
    """A mean's 95 % interval (normal approximation), where there are two values or more."""
    if len(values) >= 2:
        res.ci_low, res.ci_high = mean_interval(values)


def _setting(model: dict, key: str | None) -> str:
    """A training setting as the paper prints it ("2.0,0.01" for two weights); N/A where
    the model's defense has no such setting."""
    if key is None:
        return "N/A"
    config = json.loads(model["config"] or "{}")
    params = json.loads(model["defense_config"] or "{}")
    values = []
    for k in key.split(","):
        v: Any = config if k == "epochs" else params
        for part in k.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        values.append("N/A" if v is None else str(v))
    return ",".join(values)


def select(table: str) -> list[TableSpec]:
    """`all`, one id, or a paper name (all its tables)."""
    return select_specs("table", table, tables(), ("summary",))


def listing(db: sqlite_utils.Database | None) -> list[tuple[str, str, int, int]]:
    """(id, title, filled cells, cells) of every table."""
    store = StoredRuns(db) if db is not None else None
    out = []
    for spec in tables().values():
        if store is None:
            rows, cols, _ = layout(spec)
            out.append((spec.id, spec.title, 0, len(rows) * len(cols)))
            continue
        results = cells(db, spec, store)
        out.append((spec.id, spec.title, sum(r.status != "empty" for r in results), len(results)))
    return out


__all__ = ["FORMATS", "Result", "StoredRuns", "cells", "data_for", "listing", "select"]
