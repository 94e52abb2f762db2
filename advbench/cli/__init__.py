"""The `advbench` command line: parse flags, call one function of `advbench.api`, print.

`app.py` holds the Typer app and its error handling, `options.py` the shared options,
`render.py` how results are printed; the commands live one concern per module (models,
attack, report, listings, workflows). Nothing here decides what to run or what a number
is: that is the API's, which never imports this package.
"""

from __future__ import annotations

import sys

from rich.markup import escape

from advbench.cli import attack, listings, models, report, workflows  # noqa: F401 (registers)
from advbench.cli.app import app, err
from advbench.malloc import hold_freed_memory

# `advbench -h` lists the commands in the order a user needs them, not the modules' order
ORDER = ("train", "import", "convert", "harden", "attack", "report", "measure", "models", "runs",
         "merge", "browse", "datasets", "archs", "demo", "reproduce")  # fmt: skip
app.registered_commands.sort(key=lambda c: ORDER.index(c.name or c.callback.__name__))


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


__all__ = ["app", "main", "normalise_argv"]
