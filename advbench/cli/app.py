"""The Typer app, its two consoles and its error handling, shared by every command module."""

from __future__ import annotations

import functools
import sqlite3
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from advbench import __version__
from advbench.errors import BadInput

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


def fail(message: str) -> None:
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
            fail(str(exc))
        except sqlite3.DatabaseError as exc:  # a damaged store found mid-command
            fail(f"the database cannot be read ({exc}); restore it from a copy or give "
                  "another --db")  # fmt: skip
        except KeyboardInterrupt:
            err.print("Interrupted: finished batches are stored; run the same command to resume.")
            raise typer.Exit(130) from None

    return wrapper


def say(text: str) -> None:
    """A line about what a command chose (stderr: stdout stays the results)."""
    err.print(text, highlight=False, soft_wrap=True)


def set_quiet(quiet: bool) -> None:
    from advbench.progress import set_mode

    set_mode("quiet" if quiet else "auto")


def progress():
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
