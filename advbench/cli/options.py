"""Options several commands share: one definition each (sqlite-utils' shared decorators)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from advbench.cli.app import DATA, OUTPUT, RUN

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
