"""The exceptions the CLI turns into one line: BadInput (exit code 2) and Fault (exit 1)."""

from __future__ import annotations

from collections.abc import Iterable


class BadInput(Exception):
    """A user-supplied value is invalid. The message is shown as-is on one line."""


class Fault(Exception):
    """A fault of the environment, not of the input: a read-only store, a checkpoint gone
    from under its record. The message is shown as-is on one line; exit code 1."""


def unknown(kind: str, value: str, choices: Iterable[str]) -> BadInput:
    """The standard 'unknown NAME' error: names the bad value and lists the valid ones."""
    return BadInput(f"unknown {kind} {value!r}; valid choices: {', '.join(sorted(choices))}")
