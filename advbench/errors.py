"""The one exception type the CLI turns into a one-line error and exit code 2."""

from __future__ import annotations

from collections.abc import Iterable


class BadInput(Exception):
    """A user-supplied value is invalid. The message is shown as-is on one line."""


def unknown(kind: str, value: str, choices: Iterable[str]) -> BadInput:
    """The standard 'unknown NAME' error: names the bad value and lists the valid ones."""
    return BadInput(f"unknown {kind} {value!r}; valid choices: {', '.join(sorted(choices))}")
