"""The report's functions: tables, summary, claims, checklist, figures, pages, plans."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from advbench import formats
from advbench.api._common import (
    PAPERS,
    _read,
    _store_if_any,
    check_scale,
)
from advbench.errors import BadInput
from advbench.files import write_atomic


def tables(table: str, *, db=None) -> list:
    """A paper's tables (an id such as "fidel:III", a paper name, or "all") evaluated on
    the stored runs: (TableSpec, its cells) per table, for rendering
    (advbench.report.table_views.render)."""
    from advbench.report import tables as tab

    specs = tab.select(table)
    database = _read(db)
    store = tab.StoredRuns(database)
    return [(spec, tab.cells(database, spec, store)) for spec in specs]


def table(table: str, *, db=None):
    """A paper's table (e.g. "jakubovitz:2", a paper name for all its tables, or "all")
    from the stored runs: one row per cell with its measured and published values, n, 95 %
    interval, status, the model and runs behind it, and why it is empty where it is."""
    import pandas as pd

    from advbench.report import table_views as views

    return pd.concat([views.to_frame(results) for _, results in tables(table, db=db)],
                     ignore_index=True)  # fmt: skip


def claims(paper: str, *, db=None) -> list:
    """A paper's claims (its plan's) decided on the paired per-sample evidence of the
    stored cells: direction (held / contradicted / undecided / degenerate / not run) and
    size against the published effect (advbench.claims)."""
    from advbench import claims as cl
    from advbench import reproduce

    database = _read(db)
    return [c for name in reproduce.papers(paper) for c in cl.judge(database, name)]


def controls(paper: str, *, db=None) -> list:
    """Each fine-tuned defense of a paper's plan (or all) against its same-budget control on
    what it penalises or targets, paired, over seeds where the plan trains them, Holm per
    paper (advbench.claims.controls)."""
    from advbench import claims as cl
    from advbench import reproduce

    database = _read(db)
    return [x for name in reproduce.papers(paper) for x in cl.controls(database, name)]


def budgets(paper: str, *, db=None) -> list:
    """Each trained defense of a paper's plan (or all): the optimiser steps its stored
    model took against the steps of the plan's full-scale reading, with its training wall
    time (advbench.report.budgets.Budget)."""
    from advbench import reproduce
    from advbench.report.budgets import budgets as found

    database = _read(db)
    return [b for name in reproduce.papers(paper) for b in found(database, name)]


def compare(a: str, b: str, *, db=None):
    """Model `a` against model `b` on every attack row and ε both were attacked at, on the
    instances both runs hold: a − b with its paired 95 % interval, exact McNemar p and
    Holm-adjusted p (advbench.report.compare.Comparison; `.frame()` for a DataFrame)."""
    from advbench.report.compare import compare as paired_compare

    return paired_compare(_read(db), a, b)


def _names(models: str | Sequence[str] | None) -> list[str] | None:
    """One model name or several as a list; None (every model) for none."""
    if isinstance(models, str):
        return [models]
    return list(models) if models else None


def summary(models: str | Sequence[str] | None = None, *, db=None):
    """`report` (the summary): one row per model, a column per attack × ε with its robust
    accuracy, 95 % Wilson interval and n (advbench.report.summary_table)."""
    from advbench import report as rep

    return rep.summary_table(_read(db), _names(models))


def optimality(models: str | Sequence[str] | None = None, *, db=None):
    """Each white-box minimal attack's AttackBench optimality per model and norm, against
    the per-instance best of that model's minimal attacks (advbench.report.optimality);
    `name` is each row's attack in the registry."""
    from advbench.report.optimality import optimality_table

    return optimality_table(_read(db), _names(models))


def checks(model: str, *, db=None) -> tuple[list, int]:
    """`report --checks MODEL`: the evaluation checklist's verdicts on the model's stored
    runs (advbench.checks.Verdict), and how many runs they read."""
    from advbench import checks as chk

    database = _read(db)
    runs = chk.gather(database, model)  # an unknown model is refused here
    return chk.run(database, model, runs), len(runs)


def figures(figure: str, *, models: Sequence[str] | None = None, data_dir=None, db=None):
    """`report --figure`: the figures' data (advbench.report.figures.FigureData), one at a
    time as each is built; `figure` is an id (zantedeschi:fig3), a paper, `all`, or
    `curves` with `models` (accuracy against ε). Draw one with report.drawing.draw."""
    from advbench.report import figures as figs

    if figure == "curves":
        if not models:
            raise BadInput("--figure curves needs --model M (repeatable): the models to draw")
        database = _read(db)
        return iter([figs.curves(database, list(models))])  # an unknown model is refused
    specs = figs.select(figure)  # an unknown id is refused before anything is read
    database = _read(db)
    from advbench.report.tables import StoredRuns

    store = StoredRuns(database)
    return (figs.build(database, spec, store, data_dir) for spec in specs)


def check_output_dir(output, db=None) -> None:
    """--output for paper tables is a directory: refuse a file (a database above all)."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        what = "a database" if output.suffix == ".db" or output == db else "a file"
        raise BadInput(f"--output {output} is {what}, not a directory; give a directory for "
                       "the table files")  # fmt: skip
    from advbench.store import default_db_path

    store = (Path(db) if db is not None else default_db_path()).resolve().parent
    if any(output.resolve().is_relative_to(store / d) for d in ("models", "examples")):
        raise BadInput(f"--output {output} is inside the store's checkpoints or examples; "
                       "give another directory")  # fmt: skip
    if not output.exists():
        if not output.parent.exists():
            raise BadInput(f"--output {output}: directory {output.parent} does not exist")
        output.mkdir()


def page(paper: str, *, format: str = "markdown", output, data_dir=None, db=None) -> Path:
    """`report --paper`: one paper's page (its tables, figures, the checklist of its models,
    the commands, environment and wall time) written into the folder `output`; returns
    the page's path."""
    from advbench import reproduce
    from advbench.pages import paper_page

    names = reproduce.papers(paper) if paper != "all" else []
    if len(names) != 1:
        raise BadInput(f"--paper takes one paper: {', '.join(PAPERS)}")
    if format not in formats.PAGE:
        raise BadInput(f"--format {format} is not a page format; valid choices: "
                       f"{', '.join(formats.PAGE)}")  # fmt: skip
    if output is None:
        raise BadInput("--paper writes a page with its figures: give --output DIR")
    database = _read(db)
    check_output_dir(output, db)
    return paper_page(database, names[0], format, Path(output), data_dir=data_dir)


def listing(*, db=None) -> tuple[list, list]:
    """`report --list`: (tables, figures), each a list of (id, what it shows, cells or
    points filled by stored runs, all of them)."""
    from advbench.report import figures as figs
    from advbench.report import tables as tab

    database = _store_if_any(db, readonly=True)
    return tab.listing(database), figs.listing(database)


def html_report(
    *, table: str | None = None, figure: str | None = None, output, data_dir=None, db=None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Path, int, int]:  # fmt: skip
    """`report --format html --output DIR`: one self-contained page, DIR/report.html, of the
    tables (`table`: an id, a paper or all), figures and the checklist of every attacked
    model; returns (its path, tables, figures). `progress(id)` hears of each one drawn."""
    from advbench.report import figures as figs
    from advbench.report import html
    from advbench.report import tables as tab

    if output is None:
        raise BadInput("--format html writes a page with its figures: give --output DIR")
    tables = tab.select("all" if table in (None, "summary") else table)
    figures = figs.select(figure or "all") if figure != "curves" else []
    database = _read(db)
    check_output_dir(output, db)
    preamble, lead = [], ""
    if table in (None, "summary") and figure is None:
        # the page about the store in hand: its models first; a paper's tables and
        # figures only where the store holds a run of that paper's suite
        ran = {r[0] for r in database.execute("select distinct suite from runs "
                                              "where suite is not null")}  # fmt: skip
        kept = {spec.paper for spec in tables if spec.suite in ran}
        left = [p for p in PAPERS if p not in kept]
        tables = [spec for spec in tables if spec.paper in kept]
        figures = [spec for spec in figures if spec.paper in kept]
        if left:
            preamble.append(f"Papers whose suite this store has not run: {', '.join(left)} "
                            "(`advbench report --missing --table PAPER` prints the commands "
                            "that fill their tables; `--table all` puts them all on the page).")
        attacked = [r[0] for r in database.execute(
            "select distinct r.model from runs r join models m on m.name = r.model "
            "order by m.created_at")]  # fmt: skip
        if attacked:
            lead = html.models_section(database, attacked)
    text = html.page(database, tables, figures, data_dir=data_dir, preamble=preamble,
                     lead=lead, progress=progress or (lambda ident: None))  # fmt: skip
    path = Path(output) / "report.html"
    write_atomic(path, text)
    return path, len(tables), len(figures)


def missing(*, table: str | None = None, figure: str | None = None, scale: str = "smoke",
            data_dir=None, db=None):  # fmt: skip
    """`report --missing`: what is to do (advbench.report.missing.Todo) whose `commands()` fill
    the empty cells of `table` (default all) or the points of `figure`, and whose `absent`
    lists the cells whose data set is not on disk."""
    from advbench.report import tables as tab
    from advbench.report.missing import todo

    check_scale(scale)
    if figure is not None:
        from advbench.report import figures as figs

        if figure == "curves":
            raise BadInput("--missing plans the papers' figures; `curves` draws what is "
                           "stored (give a figure id, a paper name or all)")  # fmt: skip
        specs = figs.select(figure)
    else:
        specs = tab.select("all" if table in (None, "summary") else table)
    return todo(_store_if_any(db, readonly=True), specs, scale, data_dir=data_dir, db_path=db)
