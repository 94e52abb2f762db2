"""Commands that make models: train, import, convert, harden, and measure one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from advbench import api
from advbench.cli.app import (
    DATA,
    MODEL,
    OUTPUT,
    RUN,
    app,
    handles_errors,
    out,
    progress,
    say,
    set_quiet,
)
from advbench.cli.options import (
    BatchOpt,
    DataDirOpt,
    DbOpt,
    DeviceOpt,
    ForceOpt,
    ParamOpt,
    QuietOpt,
    SeedOpt,
)
from advbench.cli.render import (
    list_registry,
    print_hardened,
    print_measured,
    print_model,
)
from advbench.errors import BadInput


@app.command()
@handles_errors
def train(
    dataset: Annotated[
        str, typer.Option(help="Data set name (see `advbench datasets`).", rich_help_panel=DATA)
    ] = "mnist-5k",
    arch: Annotated[
        str, typer.Option(help="Architecture (see `advbench archs`).", rich_help_panel=MODEL)
    ] = "madry-mnist",
    activation: Annotated[
        str | None,
        typer.Option(
            help="relu, brelu or leaky-relu \\[default: the architecture's; relu except "
            "resnet56, leaky-relu 0.1 as madnet].",
            rich_help_panel=MODEL,
        ),
    ] = None,
    activation_param: Annotated[
        float | None,
        typer.Option(
            help="brelu threshold t (default 1) or leaky-relu slope (default 0.1).",
            rich_help_panel=MODEL,
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs.", rich_help_panel=RUN)] = 10,
    batch_size: BatchOpt = 64,
    optimizer: Annotated[
        str, typer.Option(help="adam, sgd (momentum 0.9) or rmsprop.", rich_help_panel=RUN)
    ] = "adam",
    lr: Annotated[float, typer.Option(help="Learning rate.", rich_help_panel=RUN)] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="Weight decay.", rich_help_panel=RUN)] = 0.0,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    name: Annotated[
        str | None,
        typer.Option(
            help="Name to store the model under \\[default: ARCH-DATASET].", rich_help_panel=OUTPUT
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    download: Annotated[
        bool,
        typer.Option(
            help="Download the data set if missing (needs network).", rich_help_panel=DATA
        ),
    ] = False,
    db: DbOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a model from scratch and store it (safetensors + JSON, recorded in the database)."""
    set_quiet(quiet)
    stored = api.train(
        name=name, dataset=dataset, arch=arch, epochs=epochs, batch_size=batch_size,
        optimizer=optimizer, lr=lr, weight_decay=weight_decay, seed=seed, device=device,
        activation=activation, activation_param=activation_param, data_dir=data_dir,
        download=download, force=force, db=db, progress=progress,
    )  # fmt: skip
    print_model(stored)


@app.command("import")
@handles_errors
def import_(
    name: Annotated[
        str, typer.Option(help="Name to store the model under.", rich_help_panel=MODEL)
    ],
    dataset: Annotated[
        str, typer.Option(help="Data set it classifies (advbench datasets).", rich_help_panel=DATA)
    ],
    weights: Annotated[
        Path | None,
        typer.Option(
            help="Its weights as .safetensors (a .pt/.pth file: advbench convert first); "
            "not with --robustbench.",
            rich_help_panel=MODEL,
        ),
    ] = None,
    factory: Annotated[
        str | None,
        typer.Option(
            help="MODULE:FUNCTION returning the torch.nn.Module (logits out, [0, 1] inputs "
            "after --mean/--std), called with --kwargs.",
            rich_help_panel=MODEL,
        ),
    ] = None,
    torchvision_: Annotated[
        str | None,
        typer.Option(
            "--torchvision",
            help="A torchvision architecture instead (e.g. resnet18), built with "
            "num_classes of the data set and --kwargs.",
            rich_help_panel=MODEL,
        ),
    ] = None,
    timm_: Annotated[
        str | None,
        typer.Option(
            "--timm",
            help="A timm architecture instead (needs timm), built with the data set's "
            "num_classes and in_chans and --kwargs.",
            rich_help_panel=MODEL,
        ),
    ] = None,
    robustbench_: Annotated[
        str | None,
        typer.Option(
            "--robustbench",
            help="A RobustBench model zoo name instead (needs the robustbench extra), e.g. "
            "Wong2020Fast: built and loaded by RobustBench from --model-dir; nothing is "
            "downloaded.",
            rich_help_panel=MODEL,
        ),
    ] = None,
    threat_model: Annotated[
        str,
        typer.Option(
            help="RobustBench threat model of --robustbench: Linf, L2 or corruptions.",
            rich_help_panel=MODEL,
        ),
    ] = "Linf",
    model_dir: Annotated[
        Path,
        typer.Option(
            help="RobustBench's model directory, holding DATASET/THREAT/NAME.pt.",
            rich_help_panel=MODEL,
        ),
    ] = Path("models"),
    kwargs: Annotated[
        str | None,
        typer.Option(help="JSON object of arguments for the factory, torchvision or timm model."),
    ] = None,
    in_channels: Annotated[
        int | None,
        typer.Option(
            help="Channels the module expects, when a one-channel data set's images must be "
            "repeated to them \\[default: 3 for --torchvision, else the data set's].",
        ),
    ] = None,
    mean: Annotated[
        str | None, typer.Option(help="Per-channel mean the module was trained with, e.g. 0.1307.")
    ] = None,
    std: Annotated[str | None, typer.Option(help="Per-channel std, e.g. 0.3081.")] = None,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    force: ForceOpt = False,
) -> None:
    """Bring your own model: build it with your factory (or torchvision, timm), load its
    safetensors weights, fold its normalisation in, and store it like a trained model; or
    load a RobustBench model from its model directory with RobustBench's own loader."""
    stored = api.import_model(name=name, dataset=dataset, weights=weights, db=db,
                              factory=factory, torchvision_name=torchvision_, timm_name=timm_,
                              robustbench_name=robustbench_, threat_model=threat_model,
                              model_dir=model_dir, kwargs=kwargs,
                              in_channels=in_channels, mean=mean, std=std,
                              data_dir=data_dir, force=force)  # fmt: skip
    print_model(stored)


@app.command()
@handles_errors
def convert(
    source: Annotated[Path, typer.Argument(help="A PyTorch checkpoint (.pt, .pth).")],
    target: Annotated[Path, typer.Argument(help="The .safetensors file to write.")],
) -> None:
    """Turn a PyTorch checkpoint into safetensors for `advbench import`. It is read with
    torch.load(weights_only=True): a file holding anything but tensors (code, objects that
    run code) is refused without running it. A {'state_dict': ...} wrapper and
    DataParallel's 'module.' prefix are unwrapped."""
    count = api.convert(source, target)
    out.print(f"wrote {target}: {count} tensors", highlight=False)


@app.command()
@handles_errors
def harden(
    model: Annotated[
        str | None,
        typer.Option(
            help="Stored model to harden \\[default: the most recently trained undefended one].",
            rich_help_panel=MODEL,
        ),
    ] = None,
    defense: Annotated[
        str | None,
        typer.Option(
            help="Defense name, or a composition a+b (see --list; `combined` = nsloss+jacobian).",
            rich_help_panel=MODEL,
        ),
    ] = None,
    param: ParamOpt = None,
    from_scratch: Annotated[
        bool,
        typer.Option(
            "--from-scratch",
            help="Train the model's architecture (with any architecture change) from a fresh "
            "initialisation instead of fine-tuning its weights; defaults to the paper's "
            "from-scratch recipe, else the model's own training recipe.",
            rich_help_panel=RUN,
        ),
    ] = False,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Fine-tuning epochs \\[default: the defense's paper setting].", rich_help_panel=RUN
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help="Batch size \\[default: the recipe's, else 64].",
            rich_help_panel=RUN,
        ),
    ] = None,
    recipe: Annotated[
        str | None,
        typer.Option(
            help="Another paper's settings for the defense (λ, optimizer, batch, epochs), "
            "e.g. jakubovitz for jacobian; --list shows each defense's recipes.",
            rich_help_panel=MODEL,
        ),
    ] = None,
    optimizer: Annotated[
        str | None,
        typer.Option(help="adam, sgd or rmsprop \\[default: the defense's].", rich_help_panel=RUN),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            help="Learning rate \\[default: the defense's, 1e-4 for jacobian].", rich_help_panel=RUN
        ),
    ] = None,
    weight_decay: Annotated[
        float | None,
        typer.Option(help="Weight decay \\[default: the defense's, else 0].", rich_help_panel=RUN),
    ] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    name: Annotated[
        str | None,
        typer.Option(
            help="Name for the hardened model \\[default: MODEL+DEFENSE].", rich_help_panel=OUTPUT
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    force: ForceOpt = False,
    list_: Annotated[bool, typer.Option("--list", help="List defenses and exit.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Harden a stored model with a defense and store the result with its parent.

    Training-time defenses fine-tune the model (or train it anew with --from-scratch).

    `brelu` changes its activations; `feature-squeezing` and `pnml` wrap it at inference.

    Attacks on a wrapped model attack the wrapper end to end.

    `--param lambda=auto` chooses a regulariser's weight by fidel's protocol (§III-C).
    """
    set_quiet(quiet)
    if list_:
        list_registry(api.registry("defenses"), "Defenses", ["kind", "paper"])
        out.print("Aliases: combined = nsloss+jacobian. Compose training-time ones with '+'.")
        out.print(
            "Defaults above are the papers' MNIST settings; on other data sets, and the "
            "other papers' recipes (--recipe):"
        )
        for e in api.registry("defenses"):
            if api.defense_settings(e.name):
                out.print(f"  {e.name}: {api.defense_settings(e.name)}")
        return
    if defense is None:
        raise BadInput("harden needs --defense NAME (see --list)")
    stored = api.harden(
        model, defense=defense, name=name, params=param, epochs=epochs,
        batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
        seed=seed, device=device, from_scratch=from_scratch, recipe=recipe,
        data_dir=data_dir, force=force, db=db, progress=progress, say=say,
    )  # fmt: skip
    print_hardened(stored, defense)


@app.command()
@handles_errors
def measure(
    model: Annotated[
        list[str],
        typer.Option(help="Stored model(s) to measure; repeatable.", rich_help_panel=MODEL),
    ],
    metric: Annotated[
        str,
        typer.Option(
            help="loss-sensitivity, jacobian, jacobian-adv, train-distance, ns-sensitivity, "
            "embedding-jacobian, noise-loss or davies-bouldin.",
            rich_help_panel=RUN,
        ),
    ],
    run: Annotated[
        str | None,
        typer.Option(
            help="jacobian-adv / train-distance: the run (id or label, e.g. "
            '"FGSM (minimal)") whose stored examples to measure \\[default: the '
            "model's newest run with stored examples].",
            rich_help_panel=RUN,
        ),
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Clean test points.", rich_help_panel=RUN)] = 1000,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Measure a stored model (loss sensitivity, ‖J‖_F, training-set distance, Davies–Bouldin)
    and store the per-sample values for the report."""
    set_quiet(quiet)
    rows = api.measure(model, metric=metric, run=run, n=n, seed=seed, device=device,
                       data_dir=data_dir, force=force, db=db)  # fmt: skip
    print_measured(model, metric, rows)
