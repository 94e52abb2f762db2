"""`advbench attack`: attack stored models with one attack or a suite."""

from __future__ import annotations

from typing import Annotated

import typer

from advbench import api
from advbench.cli.app import (
    ATTACK,
    DATA,
    MODEL,
    RUN,
    app,
    handles_errors,
    progress,
    say,
    set_quiet,
)
from advbench.cli.options import (
    AddressOpt,
    BatchOpt,
    DataDirOpt,
    DbOpt,
    DeviceOpt,
    ExecutorOpt,
    ForceOpt,
    ParamOpt,
    QuietOpt,
)
from advbench.cli.render import (
    list_registry,
    print_model_result,
)


@app.command()
@handles_errors
def attack(
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="Stored model(s) to attack; repeatable \\[default: every stored model].",
            rich_help_panel=MODEL,
        ),
    ] = None,
    attack_: Annotated[
        str | None,
        typer.Option("--attack", help="Attack name (see --list).", rich_help_panel=ATTACK),
    ] = None,
    suite: Annotated[
        str | None,
        typer.Option(help="Suite name or JSON path, e.g. carlini-eval.", rich_help_panel=ATTACK),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="With --suite: run only the rows with this label; repeatable (e.g. --only "
            "PGD). Their runs are the same as the whole suite's.",
            rich_help_panel=ATTACK,
        ),
    ] = None,
    eps: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated budgets in [0, 1] pixel units, e.g. 0.1,0.3.",
            rich_help_panel=ATTACK,
        ),
    ] = None,
    param: ParamOpt = None,
    scale: Annotated[
        str,
        typer.Option(
            help="Suite scale: smoke, cpu or full (the papers' settings).", rich_help_panel=ATTACK
        ),
    ] = "cpu",
    n: Annotated[
        int | None,
        typer.Option(
            "--n",
            help="Test samples \\[default: 500, or the suite's n at this scale].",
            rich_help_panel=DATA,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Sample-choice seed \\[default: the suite's (fidel: 42), else 0].",
            rich_help_panel=RUN,
        ),
    ] = None,
    batch_size: BatchOpt = 100,
    device: DeviceOpt = "auto",
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    targeted: Annotated[
        str | None,
        typer.Option(
            help="all-others (one instance per other label) or random (one random other "
            "label); untargeted when omitted.",
            rich_help_panel=ATTACK,
        ),
    ] = None,
    source_model: Annotated[
        str | None,
        typer.Option(
            help="Transfer: craft on this stored model, evaluate on --model. In a suite it "
            "fills only rows that ask for a model (source given or arch:ARCH).",
            rich_help_panel=ATTACK,
        ),
    ] = None,
    proxy: Annotated[
        str | None,
        typer.Option(
            help="Black-box: train a proxy of this architecture on the model's predicted "
            "labels (stored as MODEL.proxy-ARCH), craft on it, evaluate on --model. In a "
            "suite it fills only rows whose source is given or proxy:ARCH.",
            rich_help_panel=ATTACK,
        ),
    ] = None,
    proxy_epochs: Annotated[
        int | None,
        typer.Option(
            help="Training epochs of the --proxy model \\[default: 5].", rich_help_panel=ATTACK
        ),
    ] = None,
    only_correct: Annotated[
        bool,
        typer.Option(
            help="Attack only test samples the model classifies correctly (madnet).",
            rich_help_panel=DATA,
        ),
    ] = False,
    gradient: Annotated[
        str | None,
        typer.Option(
            help="Gradient through a defense's non-differentiable step (feature-squeezing): "
            "straight-through (default, as ART and zantedeschi) or masked (the true, zero "
            "gradient; shows gradient masking). Recorded on the run.",
            rich_help_panel=ATTACK,
        ),
    ] = None,
    force: ForceOpt = False,
    shortcuts: Annotated[
        bool,
        typer.Option(
            "--shortcuts/--no-shortcuts",
            help="A budget attack over several ε takes an instance broken at a smaller ε "
            "as broken at the next, attacking only what is still robust, and white-box PGD "
            "stops each instance at its first adversarial iterate and restarts only the "
            "robust ones (never weaker; a suite may turn it off for a paper's protocol). "
            "--no-shortcuts attacks every ε afresh with every step; the two are different "
            "runs in the store.",
            rich_help_panel=ATTACK,
        ),
    ] = True,
    cascade: Annotated[
        bool,
        typer.Option(
            "--cascade",
            help="Worst-case evaluation the AutoAttack way: the suite's untargeted rows run "
            "in its cascade order, each attacking only the instances every earlier row left "
            "robust in its norm; runs are labelled 'LABEL (cascade)' and a row's accuracy is "
            "the worst case over it and the rows before it.",
            rich_help_panel=ATTACK,
        ),
    ] = False,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    list_: Annotated[bool, typer.Option("--list", help="List attacks and exit.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Attack stored models and record per-sample outcomes for every ε."""
    set_quiet(quiet)
    if list_:
        list_registry(api.registry("attacks"), "Attacks", ["norm", "kind", "backend", "targeted"])
        return

    api.evaluate(
        model, attack=attack_, suite=suite, eps=eps, params=param, only=only,
        scale=scale, n=n, seed=seed, batch_size=batch_size, device=device,
        data_dir=data_dir, targeted=targeted, source_model=source_model, proxy=proxy,
        proxy_epochs=proxy_epochs, only_correct=only_correct, gradient=gradient,
        force=force, shortcuts=shortcuts, cascade=cascade, executor=executor,
        address=address, db=db,
        progress=progress, say=say, on_model=print_model_result,
    )  # fmt: skip
