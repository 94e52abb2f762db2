"""`advbench report`: one request (advbench.api.ReportRequest, where the rules of which
options go together live), one mode, one API function, printed."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from advbench import api
from advbench.cli.app import MODEL, OUTPUT, app, err, handles_errors
from advbench.cli.options import DataDirOpt, DbOpt
from advbench.cli.render import (
    claims_markdown,
    print_checks,
    print_claims,
    print_comparison,
    print_figure,
    print_listing,
    print_missing,
    print_output,
    print_summary,
    print_table,
)


@app.command()
@handles_errors
def report(
    table: Annotated[
        str | None,
        typer.Option(
            "--table",
            help="A paper's table (fidel:III, madnet:1, ...; see --list), a paper name for all "
            "its tables, or `all`; given alone, the summary pivot (rows model/defense, "
            "columns attack x ε).",
            rich_help_panel=OUTPUT,
        ),
    ] = "summary",
    figure: Annotated[
        str | None,
        typer.Option(
            "--figure",
            help="A paper's figure (zantedeschi:fig3, fidel:fig1a, madnet:tsne, ...; see "
            "--list), a paper name for all its figures, `all`, or `curves` (accuracy against ε "
            "of every stored attack of the --model models). Written as PNG and SVG (--format "
            "png|svg for one) to --output (default: figures/ beside the database).",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    paper: Annotated[
        str | None,
        typer.Option(
            "--paper",
            help=f"One paper's page ({', '.join(api.PAPERS)}): its tables, "
            "figures, the checklist of its models, the commands, environment and wall time. "
            "--format markdown (README.md and figures/) or html, into --output DIR.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    claims: Annotated[
        str | None,
        typer.Option(
            "--claims",
            help="Decide a paper's claims (benchmarks/plans/PAPER.json, or all) on the "
            "paired per-sample evidence of the stored runs: direction (held / contradicted / "
            "undecided, Holm-adjusted) and size against the published effect, with the "
            "numbers. --format markdown for a table; csv or json for one record per claim "
            "with the paired test's unrounded numbers.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    controls: Annotated[
        str | None,
        typer.Option(
            "--controls",
            help="Each fine-tuned defense of a paper's plan (or all) against its same-budget "
            "control (the same fine-tuning with its term off) on the quantity it penalises "
            "or targets: paired per sample, the mean over training seeds with a t-interval "
            "where the plan trains them, Holm per paper. --format markdown|csv|json.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    budgets: Annotated[
        str | None,
        typer.Option(
            "--budgets",
            help="Each trained defense of a paper's plan (or all): the optimiser steps its "
            "stored model took (epochs × ⌈training images / batch⌉) and its training wall "
            "time, against the steps of the plan's full-scale reading. --format "
            "markdown|csv|json.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    compare: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--compare",
            metavar="A B",
            help="Compare two stored models on every attack row and ε both were attacked "
            "at, on the instances both runs hold: A − B with its paired 95 % interval, exact "
            "McNemar p and Holm-adjusted p. --format markdown|csv|json.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    checks: Annotated[
        str | None,
        typer.Option(
            "--checks",
            help="Run the evaluation checklist (Carlini et al. 2019, Pintor et al. 2022) on "
            "the stored runs of this model: pass / warn / fail per check, the numbers behind "
            "it and the command that settles a warning. --format json|csv|markdown.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    list_: Annotated[
        bool,
        typer.Option(
            "--list",
            help="List every table and figure id, what it shows and how many of its cells "
            "(points) stored runs fill.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    missing: Annotated[
        bool,
        typer.Option(
            "--missing",
            help="Print the advbench commands that fill the empty cells of --table (default "
            "all), and one line per cell whose data set is not on disk.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    scale: Annotated[
        str | None,
        typer.Option(
            help="Scale of the commands --missing prints: smoke, cpu or full \\[default: smoke].",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(help="Only these models (summary pivot); repeatable.", rich_help_panel=MODEL),
    ] = None,
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            help="table (rich), markdown, csv, latex or json. A paper table's csv and json are "
            "tidy (one row per cell); the summary's csv has one row per run. html (with "
            "--output DIR): one self-contained page of the tables (--table), figures "
            "(--figure), the checklist of every attacked model and their provenance.",
            rich_help_panel=OUTPUT,
        ),
    ] = "table",
    output: Annotated[
        Path | None,
        typer.Option(
            help="Write to this directory instead of the terminal (made if its parent "
            "exists): one file per table, summary.md / summary.csv for the summary. A file, "
            "above all a database, is refused.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help="List the runs behind each cell, and the other runs that match it.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
) -> None:
    """Print robustness tables regenerated from the stored per-sample results."""
    request = api.ReportRequest(
        table=table, figure=figure, paper=paper, claims=claims, controls=controls,
        budgets=budgets, compare=compare,
        checks=checks, list=list_,
        missing=missing, scale=scale, models=tuple(model or ()), format=format_,
        output=output, verbose=verbose, data_dir=data_dir, db=db,
    ).checked()  # fmt: skip
    # one mode per call, each a helper below that calls one advbench.api function and prints
    MODES[request.mode](request)


def _show(done, printer) -> None:
    """A mode's output (api.Output): its view through `printer`, else its text or the
    files it wrote."""
    if done.view is not None:
        printer(done.view)
    print_output(done)


def _finite(value):
    """NaN and ±inf as None (JSON has neither), inside lists too."""
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(request, records: list[dict]) -> bool:
    """--format csv or json: the verdicts as flat records on stdout; False for the others."""
    records = [{k: _finite(v) for k, v in rec.items()} for rec in records]
    if request.format == "json":
        sys.stdout.write(json.dumps(records, indent=1, ensure_ascii=False, allow_nan=False)
                         + "\n")
    elif request.format == "csv":
        import pandas as pd

        # object columns: an integer column with a blank is not written as floats (200.0)
        frame = pd.DataFrame(records, dtype=object)
        for col in frame.columns:  # a list (seed effects) as one ;-separated cell
            if frame[col].map(lambda v: isinstance(v, list)).any():
                frame[col] = frame[col].map(lambda v: ";".join(
                    "" if x is None else repr(x) for x in v) if isinstance(v, list) else v)
        sys.stdout.write(frame.to_csv(index=False))
    else:
        return False
    return True


def _report_claims(request) -> None:
    """`report --claims PAPER`: each claim's verdict with its numbers."""
    from advbench.claims import records

    found = api.claims(request.claims, db=request.db)
    if _records(request, records(found)):
        return
    if request.format == "markdown":
        sys.stdout.write(claims_markdown(found))
    else:
        print_claims(found)


def _report_controls(request) -> None:
    """`report --controls PAPER`: each defense against its control, on its objective."""
    from advbench.claims import controls_markdown, controls_records

    found = api.controls(request.controls, db=request.db)
    if not _records(request, controls_records(found)):
        sys.stdout.write(controls_markdown(found))


def _report_budgets(request) -> None:
    """`report --budgets PAPER`: each trained defense's steps against the full reading."""
    from advbench.report.budgets import markdown, records

    found = api.budgets(request.budgets, db=request.db)
    if not _records(request, records(found)):
        sys.stdout.write(markdown(found))


def _report_compare(request) -> None:
    """`report --compare A B`: the paired difference of two models, row by row."""
    _show(api.report_compare(request), print_comparison)


def _report_page(request) -> None:
    """`report --paper PAPER --output DIR`: the paper's page."""
    path = api.page(request.paper, format=request.format, output=request.output,
                    data_dir=request.data_dir, db=request.db)  # fmt: skip
    err.print(f"wrote {path}", highlight=False)


def _report_list(request) -> None:
    """`report --list`: every table and figure id with how much of it is filled."""
    print_listing(*api.listing(db=request.db))


def _report_missing(request) -> None:
    """`report --missing`: the commands that fill the empty cells."""
    scale = request.scale or "smoke"
    todo = api.missing(table=request.table, figure=request.figure, scale=scale,
                       data_dir=request.data_dir, db=request.db)  # fmt: skip
    print_missing(todo, scale)


def _report_html(request) -> None:
    """`report --format html --output DIR`: one self-contained page (DIR/report.html)."""
    with err.status("drawing the report") as status:
        path, tables, figures = api.html_report(
            table=request.table, figure=request.figure, output=request.output,
            data_dir=request.data_dir, db=request.db,
            progress=lambda ident: status.update(f"drawn {ident}"),
        )  # fmt: skip
    err.print(f"wrote {path} ({tables} tables, {figures} figures)", highlight=False)


def _report_tables(request) -> None:
    """`report --table ID`: a paper's tables, printed or written one file each."""
    done = api.report_tables(request)
    for view in done.view or ():
        print_table(view, request.verbose)
    print_output(done)


def _report_summary(request) -> None:
    """`report` alone: the summary pivot of the stored runs."""
    _show(api.report_summary(request), print_summary)


def _report_checks(request) -> None:
    """`report --checks MODEL`: the checklist's verdicts, with their numbers."""
    _show(api.report_checks(request), print_checks)


def _report_figures(request) -> None:
    """`report --figure`: draw, write PNG/SVG, print each figure's caption."""
    for fd, paths in api.report_figures(request):
        print_figure(fd)
        err.print("wrote " + ", ".join(str(p) for p in paths), highlight=False)


MODES = {
    "claims": _report_claims, "controls": _report_controls, "budgets": _report_budgets,
    "compare": _report_compare,
    "paper": _report_page, "checks": _report_checks,
    "html": _report_html, "figures": _report_figures, "list": _report_list,
    "missing": _report_missing, "tables": _report_tables, "summary": _report_summary,
}  # fmt: skip
