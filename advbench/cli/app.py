"""The Typer app, its two consoles and its error handling, shared by every command module."""

from __future__ import annotations

import errno
import functools
import signal
import sqlite3
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from advbench import __version__
from advbench.errors import BadInput, Fault

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


def fail(message: str, code: int = 2) -> None:
    # the message is text, not markup: `.[ray]` or a name like "[x]" would vanish as a tag
    err.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


KEPT = "what finished is stored; once that is mended the same command resumes"
# Faults of the environment, not of the input (exit 1): what happened, in the user's terms.
_OS_FAULTS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file size limit is reached",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "it is not there (moved or deleted while in use?)",
}


def environment_fault(exc: BaseException) -> str | None:
    """One true line for a fault of the machine (a full disk, a read-only or vanished
    folder, permissions) that reached the command, or None for anything else."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        if "disk is full" in text:
            return f"no space left for the database (SQLite: {text}); free space: {KEPT}"
        if "readonly database" in text or "read-only" in text:
            return f"the database cannot be written (SQLite: {text}); {KEPT}"
        return None
    if isinstance(exc, OSError) and exc.errno in _OS_FAULTS:
        where = exc.filename or "a file of the store"
        return f"{where}: {_OS_FAULTS[exc.errno]} ({exc.strerror}); {KEPT}"
    return None


def _terminated(signum, frame):  # SIGTERM ends the command as Ctrl-C does: batch by batch
    raise Terminated


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is (so open transactions roll back)."""


def handles_errors(fn):
    """BadInput: one line on stderr, exit code 2. A fault of the environment (full disk,
    read-only or vanished folder, permission): one line naming the path and the cause,
    exit code 1. Ctrl-C and SIGTERM: what is kept, exit 130 / 143. No traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _terminated)
        try:
            return fn(*args, **kwargs)
        except BadInput as exc:
            fail(str(exc))
        except Fault as exc:
            fail(str(exc), code=1)
        except Terminated:
            err.print("Terminated (SIGTERM): finished batches are stored; run the same command "
                      "to resume.", soft_wrap=True)  # fmt: skip
            raise typer.Exit(143) from None
        except KeyboardInterrupt:
            err.print("Interrupted: finished batches are stored; run the same command to resume.",
                      soft_wrap=True)  # fmt: skip
            raise typer.Exit(130) from None
        except (sqlite3.DatabaseError, OSError) as exc:
            line = environment_fault(exc)
            if line is not None:
                fail(line, code=1)
            if isinstance(exc, sqlite3.IntegrityError):  # our write broke a constraint
                fail(f"a write broke one of the store's constraints ({exc}); the failing "
                     "write was not stored. This is a defect of advbench: please report it "
                     "with the command", code=1)  # fmt: skip
            if isinstance(exc, sqlite3.DatabaseError):  # a damaged store found mid-command
                fail(f"the database cannot be read ({exc}); restore it from a copy or give "
                     "another --db")  # fmt: skip
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

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
