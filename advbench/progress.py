"""Progress of long work, three ways: rich bars on a terminal, one plain line per finished
task when stderr is a pipe or a log file (so `advbench attack ... 2> log` stays readable),
and nothing with `--quiet`.

Commands that run other commands in one process (`reproduce`, `demo`) open an outer bar
(steps done / total, with an ETA); while it is open, each nested command's bars are added
beneath it and removed when that command finishes, so the screen shows the overall bar with
the current step's bar under it.

Every display takes the subset of rich's `Progress` interface the training loop and the
engine use: `add_task`, `update`, `advance`, `remove_task`, and use as a context manager.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

MODES = ("auto", "quiet")
_state = {"mode": "auto"}
_outer: list = []  # the display of the running outer command, if any


def set_mode(mode: str) -> None:
    _state["mode"] = mode


def _rich(console):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[metrics]}"),
        console=console,
        transient=False,
    )


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0.0
    fields: dict = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    printed: bool = False
    mark: float = 0.0  # completed at the last line printed


class Plain:
    """One line per task when it finishes (or when the display closes, without an error,
    with it unfinished), and one each time its description moves on (the next run of a
    suite, the next epoch):
    its description, count, time and last metrics. `echo=None` prints nothing (--quiet)."""

    def __init__(self, echo=None):
        self.echo = echo
        self.tasks: dict[int, _Task] = {}
        self._next = 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:  # an error says its own one line
            for task_id in list(self.tasks):
                self._line(task_id)

    def add_task(self, description, total=None, completed=0, **fields) -> int:
        self._next += 1
        self.tasks[self._next] = _Task(description, total, float(completed), fields)
        return self._next

    def update(self, task_id, *, description=None, total=None, completed=None, advance=None,
               **fields) -> None:  # fmt: skip
        t = self.tasks.get(task_id)
        if t is None:
            return
        if description is not None and description != t.description:
            if t.completed > t.mark:  # one line per run of a suite, per epoch of a training
                self._line(task_id, final=False)
            t.description = description
        if total is not None:
            t.total = total
        if completed is not None:
            t.completed = float(completed)
        if advance:
            t.completed += advance
        t.fields.update(fields)
        if t.total is not None and t.completed >= t.total:
            self._line(task_id)

    def advance(self, task_id, advance=1) -> None:
        self.update(task_id, advance=advance)

    def remove_task(self, task_id) -> None:
        self.tasks.pop(task_id, None)

    def _line(self, task_id, final: bool = True) -> None:
        t = self.tasks.get(task_id)
        if t is None or t.printed or self.echo is None:
            return
        t.printed = final
        total = f"/{t.total:g}" if t.total is not None else ""
        metrics = t.fields.get("metrics") or ""
        now = time.monotonic()
        self.echo(f"{t.description}: {t.completed:g}{total} in {now - t.started:.1f} s "
                  f"{metrics}".rstrip())  # fmt: skip
        t.mark, t.started = t.completed, now


class _Nested:
    """The outer display, lent to a nested command: the bars it adds go when it is done."""

    def __init__(self, display):
        self.display = display
        self.added: list[int] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for task_id in self.added:
            self.display.remove_task(task_id)

    def add_task(self, *args, **kwargs) -> int:
        task_id = self.display.add_task(*args, **kwargs)
        self.added.append(task_id)
        return task_id

    def __getattr__(self, name):
        return getattr(self.display, name)


def display(console):
    """A context manager for one command's bars, fitting the mode and the terminal."""
    if _outer:
        return _Nested(_outer[-1])
    if _state["mode"] == "quiet":
        return Plain(None)
    if not console.is_terminal:
        return Plain(lambda text: console.print(text, highlight=False, markup=False))
    return _rich(console)


@contextmanager
def outer(console, description: str, total: int):
    """An overall bar for `total` steps; yields a function that marks one step done."""
    with display(console) as bars:
        task = bars.add_task(description, total=total, metrics="")
        _outer.append(bars)
        try:
            yield lambda: bars.advance(task)
        finally:
            _outer.pop()


def fmt_time(seconds: float | None) -> str:
    """A duration as people read it (s, min, h); negative: a lower bound, shown with +."""
    if seconds is None:
        return "?"
    plus = "+" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s{plus}"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min{plus}"
    return f"{seconds / 3600:.1f} h{plus}"


__all__ = ["MODES", "Plain", "display", "outer", "set_mode"]
