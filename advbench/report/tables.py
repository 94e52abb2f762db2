"""The papers' tables regenerated from stored runs, beside the published numbers.

`evaluate(db, spec)` fills every cell of a `TableSpec` from the runs and measurements its
declarative match selects; `render` prints it as a terminal table, markdown, LaTeX, or tidy
CSV / JSON (one row per cell); `missing_commands` lists the `advbench` commands that fill
its empty cells.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import sqlite_utils

from advbench import suites
from advbench.errors import BadInput, unknown
from advbench.metrics import mean_interval, wilson_interval
from advbench.report import nulls_as_none, rho_adv_values, worst_case
from advbench.report.papers import (
    AT_POINTS,
    DATA,
    PERCENT,
    Cell,
    Published,
    TableSpec,
    _same,
    layout,
    references,
    select_specs,
    tables,
)
from advbench.store import CHANGED, SAMPLE_COUNTS

FORMATS = ("table", "markdown", "csv", "latex", "json")

_RUNS = f"""
select r.id, r.model, r.attack, r.label, r.suite, r.eps, r.targeted, r.config,
       coalesce(r.threat, 'white-box') as threat, r.source_model, r.seed, r.scale, r.status,
       r.finished_at, r.started_at, r.n as planned, r.n_samples, r.only_correct,
       {SAMPLE_COUNTS}
from runs r left join samples s on s.run_id = r.id
group by r.id
"""


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


class Store:
    """What the tables read, loaded once per report."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self.models = [dict(r) for r in db.query("select * from models order by created_at")]
        runs = pd.read_sql_query(_RUNS, db.conn)
        nulls_as_none(runs, ("targeted", "label", "suite", "source_model", "scale"))
        self.runs = runs
        self._roles: dict[tuple[str, str, str], list[dict]] = {}
        self._recipes: dict[tuple, dict | None] = {}
        self.measurements = (
            [dict(r) for r in db.query("select * from measurements order by created_at")]
            if "measurements" in db.table_names()
            else []
        )

    def role_models(self, spec: TableSpec, data: str, key: str) -> list[dict]:
        """Stored models matching a role, newest first (matched once per report)."""
        ident = (spec.paper, data, key)
        if ident not in self._roles:
            role = spec.roles[(data, key)]
            self._roles[ident] = [m for m in reversed(self.models) if role.matches(m, data)]
        return self._roles[ident]

    def measurement(self, model: dict, metric: str, run_id: str | None = None) -> dict | None:
        """The newest measurement of this model (its current weights), at `run_id`'s kept
        examples or, without one, at clean test points, by the metric's current definition."""
        from advbench.measures import REVISION

        found = [
            m
            for m in self.measurements
            if (m["model"], m["metric"], m["run_id"]) == (model["name"], metric, run_id)
            and m["model_checksum"] == model["checksum"]
            and json.loads(m["config"] or "{}").get("revision") == REVISION.get(metric)
        ]
        return found[-1] if found else None

    def current(self, run) -> bool:
        """Whether a suite run was made with its suite row's parameters as they are now at
        its scale: a row whose recipe changed (a faithful-cells fix) leaves its older runs
        stale, so they fill no cell and `reproduce` runs the row again."""
        return suites.is_current(run.suite, run.label, run.scale, run.attack, run.config,
                                 self._recipes)  # fmt: skip

    def matching_runs(
        self, spec: TableSpec, cell: Cell, model: str, label=None, stale: bool = False
    ) -> pd.DataFrame:
        """The runs that fill `cell` for `model`, best first; `stale`: only those that
        would, but for a suite recipe changed since they ran."""
        runs = self.runs[self.runs["model"] == model]
        match = dict(cell.match)
        match.pop("labels", None)
        if label is not None:
            match["label"] = label
        for key, want in match.items():
            if key == "eps":
                runs = runs[_mask(runs, [_same_eps(e, want) for e in runs["eps"]])]
            elif key == "source_role":
                names = {m["name"] for m in self.role_models(spec, cell.data, want)}
                runs = runs[runs["source_model"].isin(names)]
            elif key == "params":  # the attack's stored parameters
                runs = runs[_mask(runs, [_params_match(c, want) for c in runs["config"]])]
            elif key == "targeted":
                runs = runs[_mask(runs, [t == want for t in runs["targeted"]])]
            else:
                runs = runs[runs[key] == want]
        runs = runs[(runs["n"] > 0) | (runs["init_failed"] > 0)]
        if not suites.allows_shortcuts(spec.suite):
            # the paper attacks every ε afresh (FGSM is not monotone in ε): a run that took
            # what a smaller ε broke (the ε-chain shortcut) is not its protocol's number
            runs = runs[_mask(runs, ['"shortcut_from"' not in (c or "") for c in runs["config"]])]
        fresh = _mask(runs, [self.current(r) for r in runs.itertuples()])
        runs = runs[~fresh] if stale else runs[fresh]
        # The newest complete run wins; a partial one only where none is complete.
        done = runs["status"] == "complete"
        return pd.concat(
            [
                runs[done].sort_values("finished_at", ascending=False),
                runs[~done].sort_values("started_at", ascending=False),
            ]
        )


def _params_match(config: str | None, want: dict[str, Any]) -> bool:
    params = json.loads(config or "{}").get("params", {})
    return all(_same(params.get(k), v) for k, v in want.items())


def _mask(df: pd.DataFrame, values: list[bool]) -> pd.Series:
    """A boolean row mask (a plain empty list would select no columns instead)."""
    return pd.Series(values, index=df.index, dtype=bool)


def _same_eps(a: float, b: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return math.isinf(a) and math.isinf(b)
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _set_of(run) -> str:
    parts = [f"n_samples={int(run.n_samples)}", f"seed={int(run.seed)}"]
    if run.only_correct:
        parts.append("correct only")
    parts.append(f"targeted {run.targeted}" if run.targeted else "untargeted")
    return ", ".join(parts)


def evaluate(
    db: sqlite_utils.Database, spec: TableSpec, store: Store | None = None
) -> list[Result]:
    store = store or Store(db)
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


def fill(store: Store, spec: TableSpec, cell: Cell, res: Result) -> None:
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
        robust, n = worst_case(db, res.runs)
        lacking = [x for x in labels if x not in found]
        res.sample_set = f"worst case over {', '.join(found)}: instances all of them attacked"
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
    norm = db.execute("select norm from runs where id = ?", [run_id]).fetchone()
    # ‖δ‖ / ‖x‖ in the run's norm; L2 for an attack without one (L0: the authors' code
    # took ART's default ord, 2, where an attack has no `ord`)
    ratio = "s.linf / s.x_linf" if norm and norm[0] == "linf" else "s.l2 / s.x_l2"
    query = f"select {ratio} from samples s where s.run_id = ? and {CHANGED}"
    return [r[0] for r in db.execute(query, [run_id]) if r[0] is not None]


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


# ---- presentation -----------------------------------------------------------------------


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


def select(table: str) -> list[TableSpec]:
    """`all`, one id, or a paper name (all its tables)."""
    return select_specs("table", table, tables(), ("summary",))


def listing(db: sqlite_utils.Database | None) -> list[tuple[str, str, int, int]]:
    """(id, title, filled cells, cells) of every table."""
    store = Store(db) if db is not None else None
    out = []
    for spec in tables().values():
        if store is None:
            rows, cols, _ = layout(spec)
            out.append((spec.id, spec.title, 0, len(rows) * len(cols)))
            continue
        results = evaluate(db, spec, store)
        out.append((spec.id, spec.title, sum(r.status != "empty" for r in results), len(results)))
    return out


def data_for(data: str, data_dir=None, scale: str | None = None) -> str | None:
    """The first stored-data-set name for a table's data that is on disk, else None. At
    full scale the embedded MNIST subset does not do (its 1,000 test images are fewer than
    fidel's 1,024 samples, and madnet needs 1,000 the model classifies right)."""
    from advbench import data as datasets

    for name in DATA[data]:
        if scale == "full" and name == "mnist-5k":
            continue
        spec = datasets.spec(name)
        if not spec.needs_dir:
            return name
        try:
            datasets.load(name, "test", data_dir=data_dir)
        except BadInput:
            continue
        return name
    return None


__all__ = ["FORMATS", "Result", "Store", "evaluate", "render", "select", "listing", "cell_text"]
