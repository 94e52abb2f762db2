"""Commands of several steps or services: demo, reproduce, merge, browse."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from advbench import api
from advbench.cli.app import (
    app,
    err,
    handles_errors,
    out,
    progress,
    say,
    set_quiet,
)
from advbench.cli.options import (
    AddressOpt,
    DataDirOpt,
    DbOpt,
    DeviceOpt,
    ExecutorOpt,
    QuietOpt,
)
from advbench.cli.render import (
    print_plan,
    print_step,
)


@app.command()
@handles_errors
def demo(
    db: DbOpt = None,
    device: DeviceOpt = "auto",
    scale: Annotated[str, typer.Option(help="carlini-eval scale: smoke or cpu.")] = "cpu",
    quiet: QuietOpt = False,
) -> None:
    """The main job: train on mnist-5k, harden with jacobian, run carlini-eval on both,
    print the report. Interrupt it and run it again: it continues from what is stored."""
    set_quiet(quiet)
    from advbench.progress import outer

    api.demo(db=db, device=device, scale=scale, out=out, progress=progress,
             steps_bar=lambda title, total: outer(err, title, total))  # fmt: skip


@app.command()
@handles_errors
def reproduce(
    paper: Annotated[str, typer.Argument(help=f"{', '.join(api.PAPERS)} or all.")],
    scale: Annotated[
        str,
        typer.Option(help="smoke (minutes), cpu (the reference scale) or full (the papers')."),
    ] = "smoke",
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the plan: the models already stored, each step still to run with its "
            "attack runs and an estimate from stored timings, and what is skipped.",
        ),
    ] = False,
    page: Annotated[
        str,
        typer.Option(help="Format of the paper's page written at the end: markdown or html."),
    ] = "markdown",
    output: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the paper's page \\[default: PAPER/ beside the database at the "
            "cpu scale of the committed pages, SCALE/PAPER/ at another, so a smoke run never "
            "overwrites a reference page]."
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Reproduce a paper end to end: train its base models, harden them, run its suite,
    take its measurements, then write its page (tables, figures, checklist). What is stored
    is skipped, so the same command resumes; data sets not on disk are skipped with a line.
    The recipe is `benchmarks/plans/PAPER.json` with the paper's suite and report modules."""
    set_quiet(quiet)
    from advbench.progress import fmt_time, outer

    def show(plan_) -> None:
        for line in plan_.skipped:
            out.print(f"skip {line}", highlight=False, markup=False)
        if dry_run:
            print_plan(plan_)

    api.reproduce(
        paper, scale=scale, dry_run=dry_run, page=page, output=output, data_dir=data_dir,
        db=db, executor=executor, address=address, on_plan=show,
        echo=lambda t: out.print(t, style="bold cyan", markup=False, highlight=False),
        steps_bar=lambda title, total: outer(err, title, total),
        on_done=lambda r: out.print(
            f"{r.paper}: {r.steps_run} steps in {fmt_time(r.seconds)}; page {r.page}"
            + (f"; evidence {r.evidence} ({r.evidence.stat().st_size / 1e6:.1f} MB)"
               if r.evidence else ""), highlight=False),
        on_step=print_step, progress=progress, say=say,
    )  # fmt: skip


@app.command()
@handles_errors
def merge(
    shards: Annotated[list[Path], typer.Argument(help="Stores to fold into --db.")],
    db: DbOpt = None,
) -> None:
    """Fold stores made elsewhere (workers without a shared disk, another machine) into
    --db. Idempotent: what is there is kept, so merging twice adds nothing; batches of one
    run from several shards add up to the whole run. Shards are only read."""
    for merged in api.merge(shards, db=db):
        added = ", ".join(f"{v} {k}" for k, v in merged.added.items() if v) or "nothing new"
        done = f"; {merged.completed} runs now complete" if merged.completed else ""
        out.print(f"{merged.shard}: {added}{done}", highlight=False, soft_wrap=True)


@app.command()
@handles_errors
def browse(
    db: DbOpt = None,
    port: Annotated[int, typer.Option(help="Port datasette serves on.")] = 8001,
    write_metadata: Annotated[
        Path | None,
        typer.Option(
            help="Only write datasette's metadata (descriptions and units of every table, "
            "view and column) to this JSON file, for `datasette DB --metadata FILE`.",
        ),
    ] = None,
) -> None:
    """Browse the store in datasette, with the views (run_accuracy, accuracy_curves,
    sample_worst_case, worst_case_accuracy, model_lineage) and every column described.
    Needs the browse extra: pip install -e '.\\[browse]'."""
    done = api.browse(db=db, port=port, write_metadata=write_metadata)
    if write_metadata is not None:
        store = api.store_path(db)
        out.print(f"wrote {done}; run: datasette {store} --metadata {done}", highlight=False)
    elif done not in (0, -2, 130):  # Ctrl-C is how a server is stopped
        raise typer.Exit(done)
