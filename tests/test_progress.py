"""Progress: bars on a terminal, one line per run in a pipe, nothing with --quiet, and an
outer bar whose nested commands' bars come and go beneath it."""

import io

from rich.console import Console

from advbench import progress
from advbench.cli import app


def test_plain_prints_one_line_per_run_and_per_finished_task():
    lines = []
    with progress.Plain(lines.append) as p:
        task = p.add_task("attack", total=4, metrics="")
        p.update(task, description="pgd ε=0.1")
        p.advance(task)
        p.advance(task)
        p.update(task, description="pgd ε=0.2")  # the first run is done: its line
        p.advance(task)
        p.update(task, description="pgd ε=0.2", metrics="acc 0.5")  # same run: no line
        p.advance(task)  # total reached: the last run's line
        assert [line.split(" in ")[0] for line in lines] == ["pgd ε=0.1: 2/4", "pgd ε=0.2: 4/4"]
        other = p.add_task("train", total=10, metrics="")
        p.update(other, completed=3)
    assert lines[-1].startswith("train: 3/10 in ")  # closed unfinished: its state, once
    assert lines[1].endswith("acc 0.5")
    assert len(lines) == 3


def test_plain_says_nothing_on_an_error_or_when_quiet():
    lines = []
    try:
        with progress.Plain(lines.append) as p:
            p.add_task("train", total=10, metrics="")
            raise ValueError
    except ValueError:
        pass
    assert lines == []  # the error's own line is the only one
    quiet = progress.Plain(None)
    with quiet as p:
        p.advance(p.add_task("x", total=1, metrics=""))  # prints nowhere, no error


def test_nested_bars_go_when_their_command_ends():
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with progress.outer(console, "reproduce: steps", 2) as step_done:
        with progress.display(console) as bars:
            bars.advance(bars.add_task("train", total=3, metrics=""))
            outer_bars = bars.display
            assert len(outer_bars.tasks) == 2  # the overall bar with the step's beneath it
        assert [t.description for t in outer_bars.tasks] == ["reproduce: steps"]
        step_done()
        step_done()
        assert outer_bars.tasks[0].completed == 2
    assert progress.display(console) is not None and not progress._outer  # closed


def test_attack_in_a_pipe_prints_a_line_per_run_and_quiet_prints_none(db_copy, runner):
    args = ["attack", "--model", "std", "--attack", "fgsm", "--n", "8", "--db", str(db_copy)]
    res = runner.invoke(app, [*args, "--eps", "0.05,0.1"])
    assert res.exit_code == 0, res.output
    runs = [line for line in res.stderr.splitlines() if line.startswith("fgsm ε=")]
    assert [line.split(":")[0] for line in runs] == ["fgsm ε=0.05", "fgsm ε=0.1"]
    assert "━" not in res.stderr  # no bar drawn where there is no terminal
    res = runner.invoke(app, [*args, "--eps", "0.15", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "fgsm ε=0.15" not in res.stderr and "0.15: " in res.stdout  # the table still prints
