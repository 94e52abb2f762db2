"""The `advbench` command line: parse flags, call the Python API, print with rich. No logic."""

from __future__ import annotations

import functools
import json
import sqlite3
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from advbench import __version__, api
from advbench.errors import BadInput
from advbench.malloc import hold_freed_memory

app = typer.Typer(
    help="Benchmark the adversarial robustness of image classifiers: "
    "train, harden, attack, report.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
out = Console()
err = Console(stderr=True)

DATA, MODEL, ATTACK, OUTPUT, RUN = "Data", "Model", "Attack", "Output", "Run"

# Shared options (one definition each, reused by every command).
DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="SQLite run store \\[default: $ADVBENCH_DB or results/advbench.db].",
        rich_help_panel=OUTPUT,
    ),
]
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        help="cpu, cuda, cuda:N, or auto (a GPU when there is one).",
        rich_help_panel=RUN,
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.", rich_help_panel=RUN)]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force", help="Re-run even when an identical result is stored.", rich_help_panel=RUN
    ),
]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Batch size.", rich_help_panel=RUN)]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder holding downloaded data sets \\[default: ./data].",
        rich_help_panel=DATA,
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="No progress bars (results are still printed). Without a terminal, progress is "
        "one plain line per finished task.",
        rich_help_panel=OUTPUT,
    ),
]
ExecutorOpt = Annotated[
    str,
    typer.Option(
        help="local, or ray: each (model, suite row) a Ray task; results are written here "
        "as they complete (needs the ray extra).",
        rich_help_panel=RUN,
    ),
]
AddressOpt = Annotated[
    str | None,
    typer.Option(
        help="With --executor ray: the cluster to join \\[default: start one on this machine].",
        rich_help_panel=RUN,
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", help="key=value, repeatable; see --list for each one's parameters."),
]


def _fail(message: str) -> None:
    # the message is text, not markup: `.[ray]` or a name like "[x]" would vanish as a tag
    err.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def handles_errors(fn):
    """Turn BadInput into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BadInput as exc:
            _fail(str(exc))
        except sqlite3.DatabaseError as exc:  # a damaged store found mid-command
            _fail(f"the database cannot be read ({exc}); restore it from a copy or give "
                  "another --db")  # fmt: skip
        except KeyboardInterrupt:
            err.print("Interrupted: finished batches are stored; run the same command to resume.")
            raise typer.Exit(130) from None

    return wrapper


def _say(text: str) -> None:
    """A line about what a command chose (stderr: stdout stays the results)."""
    err.print(text, highlight=False, soft_wrap=True)


def _set_quiet(quiet: bool) -> None:
    from advbench.progress import set_mode

    set_mode("quiet" if quiet else "auto")


def _progress():
    """Bars on a terminal, one line per finished task in a pipe, nothing with --quiet."""
    from advbench.progress import display

    return display(err)


def _version(value: bool) -> None:
    if value:
        out.print(f"advbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Benchmark the adversarial robustness of image classifiers."""


def _open(db_path: Path | None, create: bool = True):
    from advbench.store import open_db

    return open_db(db_path, create=create)


def _print_model(row: dict, created: bool) -> None:
    from advbench.metrics import wilson_interval

    lo, hi = wilson_interval(round(row["clean_accuracy"] * row["clean_n"]), row["clean_n"])
    verb = "stored" if created else "already stored (no work done; --force to retrain)"
    out.print(
        f"Model [bold]{row['name']}[/] {verb}: {row['arch']} on {row['dataset']}, "
        f"clean accuracy {row['clean_accuracy'] * 100:.2f} % "
        f"(95 % CI {lo * 100:.1f}–{hi * 100:.1f}, n={row['clean_n']} test samples, "
        f"seed {row['seed']}), sha256 {row['checksum'][:12]}"
    )


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
    _set_quiet(quiet)
    stored = api.train(
        name=name, dataset=dataset, arch=arch, epochs=epochs, batch_size=batch_size,
        optimizer=optimizer, lr=lr, weight_decay=weight_decay, seed=seed, device=device,
        activation=activation, activation_param=activation_param, data_dir=data_dir,
        download=download, force=force, db=db, progress=_progress,
    )  # fmt: skip
    _print_model(stored.row, stored.created)


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
    _print_model(stored.row, stored.created)


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


def _list_registry(registry, title: str, columns: list[str]) -> None:
    table = Table(title=title)
    for c in ["name", *columns, "parameters (defaults)", "description"]:
        table.add_column(c, no_wrap=c == "name")  # names are copied into commands whole
    for e in registry:
        params = ", ".join(f"{p.name}={p.default}" for p in e.params) or "—"
        table.add_row(e.name, *[str(e.meta.get(c, "")) for c in columns], params, e.help)
    out.print(table)


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
    _set_quiet(quiet)
    if list_:
        _list_registry(api.registry("defenses"), "Defenses", ["kind", "paper"])
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
        data_dir=data_dir, force=force, db=db, progress=_progress, say=_say,
    )  # fmt: skip
    _print_model(stored.row, stored.created)
    config = json.loads(stored.row["config"])
    how = {"wrap": "wrapped (inference-time, nothing trained)"}.get(config.get("kind"), "")
    if config.get("from_scratch"):
        how = "trained from scratch"
    out.print(
        f"  parent {stored.row['parent']}, defense {defense} "
        f"{json.loads(stored.row['defense_config'])} {how}"
    )
    for rec in config.get("lambda_search", []):
        tried = ", ".join(f"{t['lambda']:.4g}{'' if t['ok'] else ' ✗'}" for t in rec["trials"])
        failed = "" if all(t["ok"] for t in rec["trials"]) else " (✗: CE reached"
        failed += f" ln C = {rec['threshold_ce']:.3f})" if failed else ""
        out.print(
            f"  {rec['component']}.{rec['param']}=auto: R0 {rec['r0']:.4g} over "
            f"{rec['r0_batches']} batches, λ0 {rec['lambda0']:.4g}, one-epoch trials "
            f"{tried}{failed} → {rec['chosen']:.4g}"
        )


def _print_summaries(summaries, model_row, seed, scale) -> None:
    """One row per attack row (label, threat model, n), its ε values stacked in one cell."""
    table = Table(
        title=f"{model_row['name']} (defense: {model_row['defense'] or 'none'}, "
        f"sha256 {model_row['checksum'][:12]}) — seed {seed}, scale {scale}"
        + "".join(sorted({f", {s.gradient} gradient" for s in summaries if s.gradient})),
        caption="robust accuracy % of n instances, [95 % Wilson interval]",
    )
    threats = any(s.threat != "white-box" or s.targeted for s in summaries)
    for c in ["attack", "threat", "n", "ε: robust accuracy %", "time s", "status"]:
        if c == "threat" and not threats:
            continue
        table.add_column(
            c,
            justify="right" if c in ("n", "time s") else "left",
            no_wrap=c in ("ε: robust accuracy %", "status"),
        )
    groups: dict[tuple, list] = {}
    for s in summaries:
        groups.setdefault((s.label or s.attack, s.threat, s.targeted, s.n), []).append(s)
    for (label, threat, targeted, n), runs in groups.items():
        cells = []
        for r in runs:
            lo, hi = r.interval
            if not r.n:
                cells.append(f"{r.eps:g}: no start ({r.init_failed} failed)")
                continue
            cells.append(f"{r.eps:g}: {r.accuracy * 100:.1f} [{lo * 100:.1f}–{hi * 100:.1f}]")
        statuses = {"stored (no work)" if r.reused else r.status for r in runs}
        table.add_row(
            escape(label),  # a label is text, not rich markup
            *([threat + (f"\ntargeted {targeted}" if targeted else "")] if threats else []),
            str(n),
            "\n".join(cells),
            f"{max(r.wall_s for r in runs):.1f}",
            ", ".join(sorted(statuses)),
        )
    out.print(table)
    seen = set()
    for s in summaries:
        if s.init_failed and (s.label or s.attack) not in seen:
            seen.add(s.label or s.attack)
            out.print(
                f"  note: {escape(s.label or s.attack)}: {s.init_failed} instance(s) had no "
                "starting adversarial (the attack could not start); left out of n, not counted "
                "robust"
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
    _set_quiet(quiet)
    if list_:
        _list_registry(api.registry("attacks"), "Attacks", ["norm", "kind", "backend", "targeted"])
        return

    def show(result) -> None:
        _print_summaries(result.summaries, result.row, result.seed, result.scale)
        for note in result.notes:
            out.print(f"  note: {note}")

    api.evaluate(
        model, attack=attack_, suite=suite, eps=eps, params=param, only=only,
        scale=scale, n=n, seed=seed, batch_size=batch_size, device=device,
        data_dir=data_dir, targeted=targeted, source_model=source_model, proxy=proxy,
        proxy_epochs=proxy_epochs, only_correct=only_correct, gradient=gradient,
        force=force, shortcuts=shortcuts, cascade=cascade, executor=executor,
        address=address, db=db,
        progress=_progress, say=_say, on_model=show,
    )  # fmt: skip


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
            help="One paper's page (fidel, zantedeschi, madnet, jakubovitz, pesso): its tables, "
            "figures, the checklist of its models, the commands, environment and wall time. "
            "--format markdown (README.md and figures/) or html, into --output DIR.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    claims: Annotated[
        str | None,
        typer.Option(
            "--claims",
            help="Test a paper's claims (benchmarks/plans/PAPER.json, or all) on the stored "
            "runs: held / not held / not testable at this scale, with the numbers. "
            "--format markdown for a table.",
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
    from advbench.report import tables as tab

    _report_options_apply(table, figure, paper, claims, checks, missing, scale, model, verbose,
                          format_, output)  # fmt: skip
    # one mode per call, each a helper below that calls one advbench.api function and prints
    if claims is not None:
        return _report_claims(claims, format_, db)
    if paper is not None:
        return _report_page(paper, format_, output, data_dir, db)
    if checks is not None:
        return _report_checks(checks, format_, output, db)
    if format_ == "html":
        return _report_html(table, figure, output, data_dir, db)
    if figure is not None and not missing:
        return _report_figures(figure, model, format_, output, data_dir, db)
    if format_ not in tab.FORMATS:
        raise BadInput(f"unknown format {format_!r}; valid choices: {', '.join(tab.FORMATS)}")
    if list_:
        return _report_list(db)
    if missing:
        return _report_missing(table, figure, scale or "smoke", data_dir, db)
    if table not in ("summary", None):
        return _report_tables(table, format_, output, verbose, db)
    return _report_summary(model, format_, output, db)


def _report_claims(claims, format_, db) -> None:
    """`report --claims PAPER`: each claim's verdict with its numbers."""
    from advbench import claims as clm

    found = api.claims(claims, db=db)
    if format_ == "markdown":
        sys.stdout.write(clm.markdown(found))
        return
    t = Table(title="Claims tested on the stored runs", show_lines=True)
    for col in ("paper", "claim", "verdict", "measured a; b", "why"):
        t.add_column(col, overflow="fold")
    for c in found:
        t.add_row(c.paper, c.claim, c.verdict, f"{clm.show(c.a)};\n{clm.show(c.b)}",
                  c.detail)  # fmt: skip
    out.print(t)


def _report_page(paper, format_, output, data_dir, db) -> None:
    """`report --paper PAPER --output DIR`: the paper's page."""
    path = api.page(paper, format=format_, output=output, data_dir=data_dir, db=db)
    err.print(f"wrote {path}", highlight=False)


def _report_list(db) -> None:
    """`report --list`: every table and figure id with how much of it is filled."""
    tables, figures = api.listing(db=db)
    _print_listing(tables, figures)


def _report_missing(table, figure, scale, data_dir, db) -> None:
    """`report --missing`: the commands that fill the empty cells."""
    todo = api.missing(table=table, figure=figure, scale=scale, data_dir=data_dir, db=db)
    for cmd in todo.commands():
        sys.stdout.write(cmd + "\n")
    for line in [*todo.absent, *todo.later(scale)]:
        sys.stdout.write(f"# {line}\n")
    later = f"; {len(todo.not_planned)} need --scale cpu or full" if todo.not_planned else ""
    err.print(
        f"{len(todo.commands())} commands at scale {scale} (training epochs from the "
        f"papers' plans, benchmarks/plans/); {len(todo.absent)} cells need a data set "
        f"that is not on disk{later}.",
        highlight=False,
    )


def _report_tables(table, format_, output, verbose, db) -> None:
    """`report --table ID`: a paper's tables, printed or written one file each."""
    import pandas as pd

    from advbench.report import tables as tab

    tab.select(table)  # an unknown id is refused before anything is read or made
    if output is not None:
        api.check_output_dir(output, db)
    database = _open(db, create=False)
    evaluated = api.tables(table, db=database)
    if output is None and format_ in ("csv", "json") and len(evaluated) > 1:
        # one tidy document for several tables: a CSV with one header, a JSON list
        if format_ == "csv":
            frames = [tab.to_frame(results) for _, results in evaluated]
            sys.stdout.write(pd.concat(frames).to_csv(index=False))
        else:
            docs = [tab.as_json(spec, results, database) for spec, results in evaluated]
            sys.stdout.write(json.dumps(docs, ensure_ascii=False, indent=1) + "\n")
        return
    for spec, results in evaluated:
        if output is not None:
            ext = {"table": "md", "markdown": "md", "latex": "tex"}.get(format_, format_)
            fmt = "markdown" if format_ == "table" else format_
            path = output / f"{spec.id.replace(':', '_')}.{ext}"
            path.write_text(tab.render(spec, results, fmt, database))
            err.print(f"wrote {path}", highlight=False)
        elif format_ == "table":
            tab.print_rich(out, spec, results, database, verbose)
        else:
            sys.stdout.write(tab.render(spec, results, format_, database))


def _report_summary(model, format_, output, db) -> None:
    """`report` alone: the summary pivot of the stored runs."""
    from advbench import report as rep

    if format_ not in rep.FORMATS:
        raise BadInput(
            f"--format {format_} is for paper tables; the summary takes {', '.join(rep.FORMATS)}"
        )
    database = _open(db, create=False)
    if output is not None:
        api.check_output_dir(output, db)  # before any work: a file (a database) is never written
    df = api.summary(model, db=db)  # validates --model before anything is written
    caption = rep.provenance_line(database, model)
    if format_ == "table" and output is None:
        rep.print_summary(out, database, model)
        return
    if format_ == "csv":
        cols = ["model", "defense", "arch", "dataset", "attack", "norm", "eps", "n", "robust",
                "accuracy", "ci_low", "ci_high", "seed", "scale", "status", "id"]  # fmt: skip
        text = rep.run_results(database, model)[cols].to_csv(index=False)
    else:
        text = rep.render(df, "markdown", caption) + rep.optimality_markdown(database, model)
    if output is not None:
        path = output / f"summary.{'csv' if format_ == 'csv' else 'md'}"
        path.write_text(text)
        err.print(f"wrote {path}", highlight=False)
    else:
        sys.stdout.write(text)


def _report_options_apply(table, figure, paper, claims, checks, missing, scale, model, verbose,
                          format_, output) -> None:  # fmt: skip
    """Refuse an option the chosen report mode would silently ignore."""
    modes = [("--claims", claims is not None), ("--paper", paper is not None),
             ("--checks", checks is not None), ("--missing", missing),
             ("--figure", figure is not None),
             ("--table", table not in (None, "summary"))]  # fmt: skip
    mode = next((name for name, chosen in modes if chosen), "the summary")
    if scale is not None and not missing:
        raise BadInput(f"--scale {scale} sets the scale of the commands --missing prints; "
                       f"it does not apply to {mode}")  # fmt: skip
    if model and mode not in ("the summary", "--figure"):
        raise BadInput(f"--model picks models for the summary and --figure curves; it does "
                       f"not apply to {mode} (--checks MODEL takes one model)")  # fmt: skip
    if verbose and (mode != "--table" or format_ != "table"):
        raise BadInput("--verbose lists the runs behind each cell of a paper table in the "
                       f"terminal (--table ID, --format table); it does not apply to {mode}"
                       + ("" if mode != "--table" else f" with --format {format_}"))  # fmt: skip
    if output is not None and mode in ("--claims", "--missing"):
        raise BadInput(f"--output does not apply to {mode}: it prints to the terminal "
                       "(redirect it to a file)")  # fmt: skip


def _print_listing(rows, figure_rows=()) -> None:
    for title, items in (
        ("Paper tables (cells filled by stored runs / cells)", rows),
        ("Paper figures (points filled by stored runs / points)", figure_rows),
    ):
        if not items:
            continue
        t = Table(title=title)
        for c in ("id", "shows", "filled"):
            t.add_column(c, no_wrap=c == "id")
        for tid, what, filled, total in items:
            t.add_row(tid, what, f"{filled}/{total}")
        out.print(t)
    out.print("`advbench report --missing --table ID` (or --figure ID) prints the commands "
              "that fill a table (a figure).")  # fmt: skip


def _report_html(table, figure, output, data_dir, db) -> None:
    """`report --format html --output DIR`: one self-contained page (DIR/report.html)."""
    with err.status("drawing the report") as status:
        path, tables, figures = api.html_report(
            table=table, figure=figure, output=output, data_dir=data_dir, db=db,
            progress=lambda ident: status.update(f"drawn {ident}"),
        )  # fmt: skip
    err.print(f"wrote {path} ({tables} tables, {figures} figures)", highlight=False)


CHECK_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def _report_checks(model, format_, output, db) -> None:
    """`report --checks MODEL`: the checklist's verdicts, with their numbers."""
    import pandas as pd

    from advbench import checks as chk

    formats = ("table", "markdown", "csv", "json")
    if format_ not in formats:
        raise BadInput(f"--format {format_} is not a checklist format; valid choices: "
                       f"{', '.join(formats)}")  # fmt: skip
    verdicts, read = api.checks(model, db=db)
    counts = {s: sum(v.status == s for v in verdicts) for s in ("pass", "warn", "fail", "skip")}
    tally = ", ".join(f"{v} {k}" for k, v in counts.items())
    head = f"Evaluation checklist for {model}: {tally} (from {read} stored runs)"
    frame = pd.DataFrame(chk.as_dicts(verdicts))
    if format_ == "table" and output is None:
        t = Table(title=head, title_justify="left", show_lines=True)
        for c in ("check", "verdict", "numbers", "to settle"):
            t.add_column(c, overflow="fold", no_wrap=c in ("check", "verdict"))
        for v in verdicts:
            t.add_row(v.check, f"[{CHECK_STYLE[v.status]}]{v.status}[/]", v.numbers, v.settle)
        out.print(t)
        return
    if format_ == "json":
        text = json.dumps({"model": model, "summary": head, "checks": chk.as_dicts(verdicts)},
                          ensure_ascii=False, indent=1) + "\n"  # fmt: skip
    elif format_ == "csv":
        text = frame.to_csv(index=False)
    else:
        from advbench.report import render

        text = render(frame, "markdown", head)
    if output is None:
        sys.stdout.write(text)
        return
    api.check_output_dir(output, db)
    ext = {"table": "md", "markdown": "md"}.get(format_, format_)
    path = output / f"checks_{model}.{ext}"
    path.write_text(text)
    err.print(f"wrote {path}", highlight=False)


def _report_figures(figure, models, format_, output, data_dir, db) -> None:
    """`report --figure`: draw, write PNG/SVG, print each figure's caption."""
    from advbench.report import figures as figs
    from advbench.store import default_db_path

    formats = figs.FIGURE_FORMATS if format_ == "table" else (format_,)
    if format_ != "table" and format_ not in figs.FIGURE_FORMATS:
        raise BadInput(f"--format {format_} is not a figure format; valid choices: "
                       f"{', '.join(figs.FIGURE_FORMATS)}")  # fmt: skip
    target = output if output is not None else (db or default_db_path()).parent / "figures"
    # ids, models and the curves' models are checked here, before a folder is made
    drawn = api.figures(figure, models=models, data_dir=data_dir, db=db)
    if output is None and target.exists() and not target.is_dir():
        raise BadInput(f"{target} (the default figure folder) is a file; give --output DIR")
    if output is not None:
        api.check_output_dir(target, db)
    else:
        target.mkdir(exist_ok=True)
    for fd in drawn:
        paths = figs.write(figs.draw(fd), target, fd.id.replace(":", "_"), formats)
        for line in fd.caption:
            out.print(line, highlight=False, markup=False)
        for pd_ in fd.panels:
            if pd_.note:
                out.print(f"  {pd_.panel.title}: {pd_.note}", highlight=False, markup=False)
        err.print("wrote " + ", ".join(str(p) for p in paths), highlight=False)


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
            help="loss-sensitivity, jacobian, jacobian-adv, train-distance or davies-bouldin.",
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
    _set_quiet(quiet)
    rows = api.measure(model, metric=metric, run=run, n=n, seed=seed, device=device,
                       data_dir=data_dir, force=force, db=db)  # fmt: skip
    for name, row in zip(model, rows, strict=True):
        out.print(f"{name}: {metric} = {row['value']:.6g} ({api.measure_text(row)}; "
                  f"n={row['n']})", highlight=False)  # fmt: skip


FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        help="table (fits the terminal; tab-separated lines in a pipe), csv or json.",
        rich_help_panel=OUTPUT,
    ),
]
WideOpt = Annotated[
    bool,
    typer.Option("--wide", help="Every column, however wide the terminal.", rich_help_panel=OUTPUT),
]


@app.command()
@handles_errors
def models(db: DbOpt = None, format_: FormatOpt = "table", wide: WideOpt = False) -> None:
    """List stored models with their parent, defense, checksum and clean accuracy."""
    from advbench.listing import Column, check_format, render

    check_format(format_)
    rows = api.model_rows(db)

    def acc(r):
        return (f"{r['clean_accuracy'] * 100:.1f} [{r['ci_low'] * 100:.1f}, "
                f"{r['ci_high'] * 100:.1f}] n={r['clean_n']}")  # fmt: skip

    columns = [
        Column("name", "name", lambda r: r["name"]),
        Column("arch", "arch", lambda r: r["arch"], drop=3),
        Column("dataset", "dataset", lambda r: r["dataset"]),
        Column("defense", "defense", lambda r: r["defense"] or "—"),
        Column("parent", "parent", lambda r: r["parent"] or "—", drop=2),
        Column("clean_accuracy", "clean acc %", acc),
        Column("ci_low", "ci_low", lambda r: f"{r['ci_low']:.4f}", drop=9),
        Column("ci_high", "ci_high", lambda r: f"{r['ci_high']:.4f}", drop=9),
        Column("clean_n", "clean_n", lambda r: str(r["clean_n"]), drop=9),
        Column("checksum", "sha256", lambda r: r["checksum"][:10], drop=4),
        Column("created_at", "created", lambda r: str(r["created_at"])[:19], drop=5),
    ]
    if format_ == "table" and out.is_terminal:  # the interval is in the accuracy's cell
        columns = [c for c in columns if c.drop != 9]
    render(out, "Stored models (clean accuracy %, 95 % Wilson CI, n test samples)", columns,
           rows, fmt=format_, wide=wide)  # fmt: skip


@app.command()
@handles_errors
def runs(
    model: Annotated[str | None, typer.Option(help="Only runs of this model.")] = None,
    db: DbOpt = None,
    format_: FormatOpt = "table",
    wide: WideOpt = False,
) -> None:
    """List stored attack runs with their status, sample counts and timings."""
    from advbench.listing import Column, check_format, render

    check_format(format_)
    rows = api.run_rows(db, model)
    columns = [
        Column("id", "id", lambda r: r["id"][:10], drop=3),
        Column("model", "model", lambda r: r["model"]),
        Column("attack", "attack", lambda r: r["attack"]),
        Column("eps", "ε", lambda r: f"{r['eps']:g}"),
        Column("n", "n", lambda r: str(r["n"])),
        Column("seed", "seed", lambda r: str(r["seed"]), drop=4),
        Column("scale", "scale", lambda r: r["scale"], drop=2),
        Column("status", "status", lambda r: r["status"]),
        Column("wall_s", "time s", lambda r: f"{r['wall_s'] or 0:.1f}", drop=1),
    ]
    render(out, "Stored runs", columns, rows, fmt=format_, wide=wide)


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
        from advbench.store import default_db_path

        store = db if db is not None else default_db_path()
        out.print(f"wrote {done}; run: datasette {store} --metadata {done}", highlight=False)
    elif done not in (0, -2, 130):  # Ctrl-C is how a server is stopped
        raise typer.Exit(done)


@app.command()
@handles_errors
def datasets() -> None:
    """List the data sets advbench can load."""
    t = Table(title="Data sets")
    for c in ["name", "shape", "classes", "files expected in --data-dir", "description"]:
        t.add_column(c)
    for e in api.registry("datasets"):
        s = e.factory
        t.add_row(
            s.name,
            "x".join(map(str, s.shape)),
            str(s.classes),
            s.layout if s.needs_dir else "— (embedded)",
            s.description,
        )
    out.print(t)


@app.command()
@handles_errors
def archs() -> None:
    """List the architectures of the model zoo."""
    _list_registry(api.registry("archs"), "Architectures", ["paper"])


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
    _set_quiet(quiet)
    from advbench.progress import outer

    api.demo(db=db, device=device, scale=scale, out=out, progress=_progress,
             steps_bar=lambda title, total: outer(err, title, total))  # fmt: skip


@app.command()
@handles_errors
def reproduce(
    paper: Annotated[
        str, typer.Argument(help="fidel, zantedeschi, madnet, jakubovitz, pesso or all.")
    ],
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
        typer.Option(help="Folder of the paper's page \\[default: PAPER/ beside the database]."),
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
    _set_quiet(quiet)
    from advbench.progress import outer
    from advbench.reproduce import fmt_time

    def show(plan_) -> None:
        for line in plan_.skipped:
            out.print(f"skip {line}", highlight=False, markup=False)
        if dry_run:
            _print_plan(plan_)

    api.reproduce(
        paper, scale=scale, dry_run=dry_run, page=page, output=output, data_dir=data_dir,
        db=db, executor=executor, address=address, on_plan=show,
        echo=lambda t: out.print(t, style="bold cyan", markup=False, highlight=False),
        steps_bar=lambda title, total: outer(err, title, total),
        on_done=lambda r: out.print(
            f"{r.paper}: {r.steps_run} steps in {fmt_time(r.seconds)}; page {r.page}",
            highlight=False),
    )  # fmt: skip


def _print_plan(plan_) -> None:
    from advbench.reproduce import fmt_time

    out.print(f"[bold]{plan_.paper}[/] at scale {plan_.scale}: {len(plan_.stored)} models "
              f"stored, {len(plan_.steps)} steps to run")  # fmt: skip
    for name in plan_.stored:
        out.print(f"  stored  {name}", highlight=False, markup=False)
    total = 0.0
    for step in plan_.steps:
        runs = f"{step.runs} runs, " if step.runs is not None else ""
        total += abs(step.estimate_s or 0)
        out.print(f"  to run  {step.text}  ({runs}≈ {fmt_time(step.estimate_s)})",
                  highlight=False, markup=False)  # fmt: skip
    out.print(f"  estimate of the timed steps: {fmt_time(total)}; ? has no stored timing yet",
              highlight=False)  # fmt: skip


def normalise_argv(argv: list[str]) -> list[str]:
    """A bare `--table` means `--table summary` (click has no optional-value options)."""
    out_args = list(argv)
    for i, token in enumerate(out_args):
        if token == "--table" and (i + 1 == len(out_args) or out_args[i + 1].startswith("-")):
            out_args.insert(i + 1, "summary")
            break
    return out_args


def main() -> None:
    """The console script. A usage error (a text where a number goes, an unknown option, a
    missing required one) is one line on stderr and exit code 2, like every other refusal,
    instead of a boxed usage text; `advbench CMD -h` still shows the whole help."""
    hold_freed_memory()  # this process is ours: see advbench/malloc.py
    try:
        code = app(args=normalise_argv(sys.argv[1:]), prog_name="advbench",
                   standalone_mode=False)  # fmt: skip
    except Exception as exc:  # typer's own click: matched by name, not by a private import
        kinds = {c.__name__ for c in type(exc).__mro__}
        if "NoArgsIsHelpError" in kinds:  # no arguments at all: the help
            app(args=["--help"], prog_name="advbench")
        if "UsageError" not in kinds:
            raise
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "advbench"
        err.print(f"[bold red]Error:[/] {escape(exc.format_message())} (see {command} -h)",
                  highlight=False, soft_wrap=True)  # fmt: skip
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
