"""Work in several steps: reproduce a paper, the demo, one plan step, browsing the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advbench import formats
from advbench.api._common import (
    _db,
    _no_bar,
    _store_if_any,
    _store_path,
    check_scale,
)
from advbench.api.evaluate import evaluate
from advbench.api.models import harden, measure, train
from advbench.errors import BadInput


@dataclass
class Reproduced:
    """What `reproduce` did for one paper: its plan (steps, what was skipped and stored),
    the steps run, their seconds, the page written (None for a dry run) and the evidence
    store beside it (`store.export.evidence`: what its tables and claims were computed
    from, without weights or example tensors)."""

    paper: str
    plan: Any  # advbench.reproduce.Plan
    steps_run: int = 0
    seconds: float = 0.0
    page: Path | None = None
    evidence: Path | None = None


def reproduce(paper: str, *, scale: str = "smoke", dry_run: bool = False,
              page: str = "markdown", output=None, data_dir=None, db=None,
              executor: str = "local", address: str | None = None,
              on_plan: Callable[[Any], None] | None = None,
              echo: Callable[[str], None] | None = None,
              steps_bar=None,
              on_done: Callable[[Reproduced], None] | None = None,
              on_step: Callable[[Any, Any], None] | None = None,
              progress: Callable | None = None,
              say: Callable[[str], None] | None = None) -> list[Reproduced]:  # fmt: skip
    """`advbench reproduce`: run a paper's plan (benchmarks/plans/PAPER.json) end to end and
    write its page; `paper` may be `all`. What is stored is skipped, so a second call
    resumes. `on_plan(plan)` sees each paper's plan before it runs (its skipped parts,
    stored models and steps); `echo` gets each step's command line; `steps_bar(title,
    total)` is a context manager giving a callable to mark a step done (the CLI's outer
    bar); `on_done(result)` hears of each paper as its page is written. Each step runs
    through `run_step` in this process; `on_step(step, outcome)` hears what it returned
    (an attack step: each model's result as it completes; `progress` and `say` are passed
    to it). With `dry_run` nothing is run or written."""
    import time

    from advbench import reproduce as rep
    from advbench.executors import check as check_executor
    from advbench.pages import paper_models, paper_page
    from advbench.store import export

    check_scale(scale)
    check_executor(executor)
    if page not in formats.PAGE:
        raise BadInput(f"unknown --page {page!r}; valid choices: {', '.join(formats.PAGE)}")
    names = rep.papers(paper)  # an unknown paper is refused before anything is written
    if output is not None:
        output = Path(output)
        if len(names) > 1:
            raise BadInput("--output names one paper's folder; with `all` each page goes to "
                           "PAPER/ beside the database (SCALE/PAPER/ at scales other than "
                           "cpu)")  # fmt: skip
        if any(p.exists() and not p.is_dir() for p in (output, *output.parents)):
            raise BadInput(f"--output {output}: a part of the path is a file, not a directory")
    db_path = _store_path(db)  # the steps are command lines: they name the store's file
    for name in names:  # before any work: a page folder that is a file is refused
        target = output or rep.default_output(db_path, name, scale)
        if any(p.exists() and not p.is_dir() for p in (target, *target.parents)):
            raise BadInput(f"{target} (the page's folder) is a file or inside one; give "
                           "--output DIR")  # fmt: skip
    database = _store_if_any(db) if dry_run else _db(db)
    bar = steps_bar or _no_bar
    done: list[Reproduced] = []
    for name in names:
        plan_ = rep.plan(database, name, scale, data_dir=data_dir, db_path=db_path)
        if on_plan is not None:
            on_plan(plan_)
        result = Reproduced(name, plan_)
        done.append(result)
        if dry_run:
            continue
        if executor != "local":  # attack steps fan out on Ray too
            for step in plan_.steps:
                if step.kind == "attack":
                    step.command = step.command.with_args(executor=executor, address=address)
        t0 = time.monotonic()
        with bar(f"{name} ({scale}): steps", len(plan_.steps)) as step_done:
            for i, step in enumerate(plan_.steps, 1):
                (echo or (lambda text: None))(rep.announce(plan_, i))
                command = step.command
                if command.kind == "attack" and on_step is not None:
                    # as its command prints it: each model's runs as that model completes
                    run_step(command, db=database, progress=progress, say=say,
                             on_model=lambda result, c=command: on_step(c, result))  # fmt: skip
                else:
                    outcome = run_step(command, db=database, progress=progress, say=say)
                    if on_step is not None:
                        on_step(command, outcome)
                result.steps_run += 1
                step_done()
        result.seconds = time.monotonic() - t0
        target = output or rep.default_output(db_path, name, scale)
        target.mkdir(parents=True, exist_ok=True)
        result.page = paper_page(_db(db), name, page, target, data_dir=data_dir, scale=scale,
                                 skipped=plan_.skipped)  # fmt: skip
        models = paper_models(database, name)
        if models:
            result.evidence = export.evidence(database, target / "evidence.db", models)
        if on_done is not None:
            on_done(result)
    return done


def demo(
    *, db=None, device: str = "auto", scale: str = "cpu", out=None, progress=None, steps_bar=None
) -> None:
    """`advbench demo`, the main job: train on mnist-5k, harden with jacobian, run
    carlini-eval on both and print the report to `out` (a rich Console; default stdout).
    Stored steps are skipped, so an interrupted demo continues where it stopped."""
    from advbench import demo as plan
    from advbench.env import resolve_device

    plan.check_demo_scale(scale)
    if out is None:
        from rich.console import Console

        out = Console()
    device = resolve_device(device)
    database = _db(db)
    steps = plan.steps(scale, device=device)
    bar = steps_bar or _no_bar
    with bar("demo: steps", len(steps)) as step_done:
        for number, title, step in steps:
            out.print(f"[bold]{number}[/] {title}")
            run_step(step, db=database, progress=progress)
            step_done()
    out.print("[bold]4/4[/] report")
    from advbench import checks as chk
    from advbench.report.compact import compact, print_compact

    models = [plan.STANDARD, plan.HARDENED]
    print_compact(out, compact(database, models))
    for model in models:  # one checklist line per model
        verdicts = chk.run(database, model, chk.gather(database, model))
        tally = ", ".join(f"{sum(v.status == s for v in verdicts)} {s}"
                          for s in ("pass", "warn", "fail", "skip"))  # fmt: skip
        flagged = [v.check for v in verdicts if v.status in ("warn", "fail")]
        out.print(f"checklist {model}: {tally}" + (f" ({', '.join(flagged)})" if flagged else "")
                  + f"; `advbench report --checks {model}`", highlight=False, markup=False)


def run_step(step, *, db=None, progress: Callable | None = None,
             say: Callable[[str], None] | None = None, on_model=None):  # fmt: skip
    """Do what a plan step (advbench.steps.Step) asks, as its command line would: `train`,
    `harden`, `measure` or `attack` (`evaluate`, which calls `on_model` with each model's
    result as it completes), into the store the step names (`db` overrides it). Returns
    what that function returns."""
    args = dict(step.args)
    if db is not None:
        args["db"] = db
    if step.kind == "train":
        return train(**args, progress=progress)
    if step.kind == "harden":
        return harden(args.pop("model", None), **args, progress=progress, say=say)
    if step.kind == "attack":
        return evaluate(args.pop("model", None), **args, progress=progress, say=say,
                        on_model=on_model)  # fmt: skip
    return measure(args.pop("models"), **args)


def browse(*, db=None, port: int = 8001, write_metadata=None) -> Path | int:
    """`advbench browse`: serve the store in datasette with its views and every column
    described (returns datasette's exit code), or with `write_metadata` only write that
    metadata JSON (returns its path). Needs the browse extra for serving."""
    import importlib.util
    import json
    import subprocess
    import sys
    import tempfile

    from advbench.browse import metadata
    from advbench.store import default_db_path

    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise BadInput(f"--port {port} must be in [1, 65535]")
    path = Path(db) if db is not None else default_db_path()
    _db(path, create=False).close()  # an advbench store, migrated (views included)
    doc = json.dumps(metadata(path.stem), indent=1, ensure_ascii=False)
    if write_metadata is not None:
        target = Path(write_metadata)
        if target.suffix != ".json":
            raise BadInput(f"--write-metadata {target} must be a .json file")
        if target.exists() and not target.is_file():
            raise BadInput(f"--write-metadata {target} is not a regular file")
        if not target.parent.is_dir():
            raise BadInput(f"--write-metadata {target}: folder {target.parent} does not exist")
        store = path.resolve().parent
        inside = [store / "models", store / "examples"]
        if (target.exists() and target.samefile(path)) or any(
            target.resolve().is_relative_to(d) for d in inside
        ):
            raise BadInput(f"--write-metadata {target} is part of the store; write it elsewhere")
        target.write_text(doc + "\n")
        return target
    # datasette from this interpreter's own environment: an unactivated venv
    # (`.venv/bin/advbench browse`) has no `datasette` on PATH, yet holds it
    if importlib.util.find_spec("datasette") is None:
        raise BadInput("datasette is not installed in this environment; run: pip install -e "
                       "'.[browse]'")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        meta = Path(folder) / "metadata.json"
        meta.write_text(doc)
        served = subprocess.run([sys.executable, "-m", "datasette", str(path), "--metadata",
                                 str(meta), "--port", str(port)])  # fmt: skip
    return served.returncode
