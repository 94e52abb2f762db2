"""The papers' figures regenerated from stored runs, with the paper's own numbers overlaid.

A figure is declared beside its paper's tables (`FigureSpec` in `advbench.report.papers.*`):
panels of series, each series a list of points, each point a `Cell` evaluated exactly as a
table cell is (`tables.fill`: newest complete run, n, 95 % Wilson interval). So a plotted
accuracy is the number the table would print for the same run, and `--missing --figure`
plans the runs that fill a figure as it does for a table. Published values are read from
the paper's transcription (`published/PAPER.csv`), never typed here.

`curves(db, models)` draws any stored model: accuracy against ε for every stored attack
and norm, the whole curve a minimal-perturbation run's per-sample norms give, and the
per-sample worst case over attacks at each ε.

matplotlib is used through `matplotlib.figure.Figure` (no pyplot state): a figure is an
object the tests read back (`Axes.lines`, each line's gid says what it is).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from advbench import formats
from advbench.errors import BadInput, unknown
from advbench.metrics import EPS_TOL, wilson_interval, within
from advbench.report.papers import (
    Cell,
    FigureSpec,
    Panel,
    Series,
    figures,
    published,
    select_specs,
    suite_grid,
)
from advbench.report.table_views import provenance
from advbench.report.tables import Result, StoredRuns, data_for, fill

FIGURE_FORMATS = formats.FIGURES
DATA_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
              "imagenet": "ImageNet"}  # fmt: skip


@dataclass
class Point:
    x: float
    result: Result


@dataclass
class SeriesData:
    series: Series
    points: list[Point] = field(default_factory=list)
    paper: list[tuple[float, float, str]] = field(default_factory=list)  # x, value, source
    extra: dict[str, Any] = field(default_factory=dict)  # restarts / embedding payloads


@dataclass
class PanelData:
    panel: Panel
    series: list[SeriesData]
    note: str = ""  # why the panel has no measured data, and what fills it

    @property
    def empty(self) -> bool:
        return not any(
            p.result.measured is not None for s in self.series for p in s.points
        ) and not any(s.extra for s in self.series)


@dataclass
class FigureData:
    id: str
    title: str
    panels: list[PanelData]
    caption: list[str]
    ncols: int = 2


# ---- evaluation ---------------------------------------------------------------------------


def series_cells(spec: FigureSpec, panel: Panel, s: Series) -> list[tuple[float, Cell]]:
    if s.cells:
        return list(s.cells)
    label = s.grid or s.match.get("label") or s.match["labels"][0]
    return [
        (e, Cell(s.metric, s.role, panel.data, {**s.match, "eps": e}, requires=s.requires))
        for e in suite_grid(spec.suite, label, panel.data)
    ]


def _paper_points(spec: FigureSpec, s: Series) -> list[tuple[float, float, str]]:
    cells = {(p.table, p.row, p.column): p for p in published(spec.paper)}
    out = []
    for x, table, row, col in s.paper:
        p = cells[(table, row, col)]  # a missing key is a defect of the paper module
        if p.value not in ("", None):
            out.append((x, float(p.value), f"Table {table}: {row} / {col}"))
    return out


def figure_results(store: StoredRuns, spec: FigureSpec) -> list[Result]:
    """Every point of a figure as a table cell (what `--missing` plans from)."""
    return [p.result for panel in points(store, spec, draw_data=False) for s in panel.series
            for p in s.points]  # fmt: skip


def points(
    store: StoredRuns, spec: FigureSpec, *, data_dir=None, draw_data: bool = True
) -> list[PanelData]:
    out = []
    for panel in spec.panels:
        series = []
        for s in panel.series:
            sd = SeriesData(s, paper=_paper_points(spec, s))
            for x, cell in series_cells(spec, panel, s):
                res = Result(spec.id, s.label, f"{panel.title} x={x:g}", cell.metric, cell=cell)
                fill(store, spec, cell, res)
                sd.points.append(Point(x, res))
            if draw_data and panel.kind == "restarts":
                sd.extra = _restarts(store, sd)
            elif draw_data and panel.kind == "embedding":
                sd.extra = _embedding(store, spec, panel, s, data_dir)
            series.append(sd)
        pd_ = PanelData(panel, series)
        if pd_.empty:
            pd_.note = _needs(spec, panel, data_dir)
        out.append(pd_)
    return out


def _needs(spec: FigureSpec, panel: Panel, data_dir) -> str:
    """What a panel without measured data needs, and the command that fills it."""
    command = f"advbench report --missing --figure {spec.id}"
    if data_for(panel.data, data_dir) is None:
        name = DATA_NAMES[panel.data]
        return (
            f"needs {name}: not on disk here. Give --data-dir DIR holding it, then "
            f"`{command} --data-dir DIR` prints the commands that fill this panel."
        )
    return f"no stored runs yet: `{command}` prints the commands that fill it."


def _restarts(store: StoredRuns, sd: SeriesData) -> dict[str, Any]:
    """Accuracy after each restart of the series' run, from its per-sample trace (each
    sample's best L2 after every restart; None where none was found yet): an instance the
    model classifies right is robust after k restarts while its best L2 exceeds ε."""
    point = sd.points[0] if sd.points else None
    if point is None or not point.result.runs:
        return {}
    run_id = point.result.runs[0]
    eps = point.x
    rows = store.db.execute(
        "select s.clean_pred = s.label, s.trace from samples s where s.run_id = ? "
        "and not coalesce(s.init_failed, 0)",
        [run_id],
    ).fetchall()
    traces = [(bool(ok), json.loads(t) if t else None) for ok, t in rows]
    if not traces or any(t is None for _, t in traces):
        return {}
    k = min(len(t) for _, t in traces)
    acc = []
    for i in range(k):
        robust = sum(
            ok and (t[i] is None or t[i] > eps * (1 + EPS_TOL)) for ok, t in traces  # NaN: broken
        )  # fmt: skip
        acc.append((i + 1, robust, len(traces)))
    return {"restarts": acc, "run": run_id}


def _embedding(store: StoredRuns, spec: FigureSpec, panel: Panel, s: Series, data_dir) -> dict:
    """t-SNE of the penultimate-layer features of the role's model on test samples (the
    suite's seed), with their Davies–Bouldin index (madnet Fig. 2)."""
    models = store.role_models(spec, panel.data, s.role)
    if not models:
        return {}
    return embedding(store.db, models[0]["name"], n=EMBED_N, seed=0, data_dir=data_dir)


EMBED_N = 500


def embedding(db, name: str, *, n: int, seed: int, data_dir=None) -> dict[str, Any]:
    import torch
    from sklearn.manifold import TSNE

    from advbench import data as datasets
    from advbench.catalogue import load_model
    from advbench.engine import select_samples
    from advbench.measurements import davies_bouldin

    model, _, row = load_model(db, name, "cpu")
    model = model.eval()
    if not hasattr(model, "embed"):
        return {}
    test = datasets.load(row["dataset"], "test", data_dir=data_dir)
    idx = select_samples(test.labels, min(n, len(test)), seed)
    x, y = test.get(idx)
    with torch.no_grad():
        emb = torch.cat([model.embed(x[i : i + 100]).flatten(1) for i in range(0, len(x), 100)])
    perplexity = max(2.0, min(30.0, (len(x) - 1) / 3))
    xy = TSNE(2, init="pca", random_state=seed, perplexity=perplexity).fit_transform(emb.numpy())
    return {
        "xy": xy.tolist(),
        "labels": y.tolist(),
        "dbi": davies_bouldin(emb, y),
        "n": len(x),
        "model": name,
        "checksum": row["checksum"],
    }


def build(
    db: sqlite_utils.Database, spec: FigureSpec, store: StoredRuns | None = None, data_dir=None
) -> FigureData:
    store = store or StoredRuns(db)
    panels = points(store, spec, data_dir=data_dir)
    results = [p.result for pd_ in panels for s in pd_.series for p in s.points]
    lines = [f"{spec.id}: {spec.title}."]
    lines.append(
        "Points: measured accuracy with its 95 % Wilson interval (bars); ★ the paper's "
        "number where its text or tables give one."
    )
    lines += provenance(results, db)
    ns = sorted({r.n for r in results if r.n is not None})
    if ns:
        lines.append(f"n per point: {ns[0]}" + (f" to {ns[-1]}" if len(ns) > 1 else ""))
    for pd_ in panels:
        if pd_.panel.note:
            lines.append(f"{pd_.panel.title}: {pd_.panel.note}")
    if spec.note:
        lines.append(spec.note)
    return FigureData(spec.id, spec.title, panels, lines, spec.ncols)


def select(figure: str) -> list[FigureSpec]:
    """`all`, one id, or a paper name (all its figures)."""
    return select_specs("figure", figure, figures(), ("curves",))


def listing(db: sqlite_utils.Database | None) -> list[tuple[str, str, int, int]]:
    """(id, title, filled points, points) of every figure."""
    from advbench.store import migrate

    if db is None:
        db = sqlite_utils.Database(memory=True)
        migrate(db)
    store = StoredRuns(db)
    out = []
    for spec in figures().values():
        results = figure_results(store, spec)
        filled = sum(r.status != "empty" for r in results)
        out.append((spec.id, spec.title, filled, len(results)))
    return out


# ---- curves of any stored model -----------------------------------------------------------


def curves(db: sqlite_utils.Database, models: list[str]) -> FigureData:
    """Accuracy against ε for every stored attack (label, threat) and norm of each model:
    the stored per-ε runs as points with their intervals, the whole curve one white-box
    minimal-perturbation run gives (its per-sample minimal norms: robust at ε while the
    norm exceeds it), and the per-sample worst case over the untargeted attacks stored at
    each ε."""
    from advbench.report import run_results

    stored = {r["name"]: r["checksum"] for r in db.query("select name, checksum from models")}
    bad = [m for m in models if m not in stored]
    if bad:
        raise unknown("model", bad[0], sorted(stored) or ["(none stored)"])
    runs = run_results(db, models)
    panels: list[PanelData] = []
    results: list[Result] = []
    for model in models:
        mine = runs[runs["model"] == model] if not runs.empty else runs
        if mine.empty:
            raise BadInput(f"model {model} has no attack runs stored; run `advbench attack`")
        for norm in sorted(mine["norm"].dropna().unique()):
            part = mine[(mine["norm"] == norm) & mine["eps"].map(math.isfinite)]
            xlabel = f"ε ({_norm_name(norm)} budget, inputs in [0, 1])"
            panel = Panel(f"{model}: {norm}", "", (), xlabel=xlabel)
            pd_ = PanelData(panel, [])
            for label, rows in part.groupby("attack", sort=True):
                rows = rows.sort_values("eps")
                sd = SeriesData(Series(str(label)))
                for r in rows.itertuples(index=False):
                    res = _run_result(model, str(label), r)
                    res.checksum = stored[model]
                    results.append(res)
                    sd.points.append(Point(float(r.eps), res))
                sd.extra = _minimal_curve(db, mine, str(label), norm)
                pd_.series.append(sd)
            worst = _worst_by_eps(db, part)
            if worst:
                pd_.series.append(SeriesData(Series(f"worst case ({norm})"), points=worst))
            panels.append(pd_)
    lines = [f"curves: accuracy against ε for {', '.join(models)}."]
    lines.append(
        "Points: stored runs with their 95 % Wilson interval; thin steps: the whole curve of a "
        "white-box minimal-perturbation run from its per-sample norms; worst case: robust "
        "only if robust under every untargeted attack stored at that ε (over the instances "
        "all of them attacked)."
    )
    lines += provenance(results, db)
    return FigureData("curves", f"accuracy against ε ({', '.join(models)})", panels, lines, 2)


def _norm_name(norm: str) -> str:
    return {"linf": "L∞", "l2": "L2", "l0": "L0 share of features", "l1": "L1"}.get(norm, norm)


def _run_result(model: str, label: str, r) -> Result:
    n, robust = int(r.n), int(r.robust)
    res = Result("curves", label, f"ε={r.eps:g}", "accuracy", n=n, model=model,
                 runs=[r.id], seed=int(r.seed), scale=r.scale, status=r.status)  # fmt: skip
    if n:
        lo, hi = wilson_interval(robust, n)
        res.measured, res.ci_low, res.ci_high = robust / n * 100, lo * 100, hi * 100
    return res


def _minimal_curve(db, runs, label: str, norm: str) -> dict[str, Any]:
    """The curve of the label's largest-ε white-box minimal run: (ε, robust, n) at every
    distinct per-sample norm up to that run's ε."""
    mine = runs[(runs["attack"] == label) & (runs["norm"] == norm)]
    mine = mine[mine["threat"] == "white-box"]
    if mine.empty:
        return {}
    top = mine.sort_values("eps").iloc[-1]
    cascade = db.execute(
        "select json_extract(config, '$.cascade_from') is not null from runs where id = ?",
        [top.id],
    ).fetchone()
    if cascade and cascade[0]:  # its carried instances have no search of their own
        return {}
    rows = db.execute(
        "select s.clean_pred = s.label, s.min_norm from samples s where s.run_id = ? "
        "and not coalesce(s.init_failed, 0)",
        [top.id],
    ).fetchall()
    if not rows or all(m is None for _, m in rows):
        return {}  # not a minimal-perturbation run
    n = len(rows)
    found = sorted(m for ok, m in rows if ok and m is not None)
    limit = float(top.eps) if math.isfinite(top.eps) else (found[-1] if found else 0.0)
    correct = sum(1 for ok, _ in rows if ok)
    xs = sorted({0.0, *[m for m in found if within(m, limit)], limit})
    curve = []
    for x in xs:
        broken = sum(1 for m in found if within(m, x))
        curve.append((x, correct - broken, n))
    return {"minimal": curve, "run": top.id}


def _worst_by_eps(db, part) -> list[Point]:
    out = []
    untargeted = part[[t is None for t in part["targeted"]]]
    for eps, rows in untargeted.groupby("eps", sort=True):
        if len(rows) < 2:
            continue
        from advbench.report import worst_case

        robust, n = worst_case(db, list(rows["id"]))
        res = Result("curves", "worst case", f"ε={eps:g}", "accuracy", n=n,
                     runs=list(rows["id"]), status="complete")  # fmt: skip
        if n:
            lo, hi = wilson_interval(robust, n)
            res.measured, res.ci_low, res.ci_high = robust / n * 100, lo * 100, hi * 100
        out.append(Point(float(eps), res))
    return out


__all__ = ["FIGURE_FORMATS", "build", "curves", "points", "select"]
