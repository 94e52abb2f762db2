"""Each bad input: exit code 2, one line naming the bad value, nothing changed on disk."""

import sqlite3
from pathlib import Path

import pytest

from advbench.cli import app, normalise_argv


def _rows(db_path):
    con = sqlite3.connect(db_path)
    try:
        return {
            t: con.execute(f"select count(*) from {t}").fetchone()[0]
            for t in ("models", "runs", "samples", "environments")
        }
    finally:
        con.close()


CASES = [
    (["train", "--dataset", "imagenet2"], ["imagenet2", "mnist-5k"]),
    (["train", "--dataset", "digits", "--arch", "lenet9"], ["lenet9", "madry-mnist"]),
    (["train", "--dataset", "digits", "--optimizer", "lbfgs"], ["lbfgs", "adam"]),
    (["harden", "--model", "std", "--defense", "magic"], ["magic", "jacobian"]),
    (
        ["harden", "--model", "std", "--defense", "jacobian", "--param", "lambdaa=1"],
        ["lambdaa", "lambda"],
    ),
    (
        ["harden", "--model", "std", "--defense", "jacobian", "--param", "lambda=big"],
        ["lambda", "big"],
    ),
    (
        ["harden", "--model", "std", "--defense", "gda", "--param", "sigma=auto"],
        ["sigma=auto", "jacobian.lambda"],
    ),
    (
        ["harden", "--model", "std", "--defense", "pnml+jacobian"],
        ["pnml", "inference-time"],
    ),
    (
        ["harden", "--model", "std", "--defense", "pnml", "--from-scratch"],
        ["--from-scratch", "pnml"],
    ),
    (
        ["harden", "--model", "std", "--defense", "brelu", "--param", "t=high"],
        ["t", "high"],
    ),
    (["harden", "--model", "ghost", "--defense", "jacobian"], ["ghost", "std"]),
    (["harden", "--model", "std", "--defense", "jacobian+magic"], ["magic", "gda"]),
    (
        ["harden", "--model", "std", "--defense", "jacobian+gda", "--param", "vat.eps=1"],
        ["vat", "jacobian, gda"],
    ),
    (
        ["attack", "--model", "std", "--attack", "pgd-linfinity", "--eps", "0.1"],
        ["pgd-linfinity", "pgd-linf"],
    ),
    (["attack", "--model", "std", "--suite", "carlini-evil"], ["carlini-evil", "carlini-eval"]),
    (["attack", "--model", "std", "--suite", "pesso", "--only", "pgd"], ["'pgd'", "PGD, Adaptive"]),
    (["attack", "--model", "std", "--attack", "fgsm", "--only", "PGD"], ["--only", "--suite"]),
    (["attack", "--model", "std", "--attack", "fgsm", "--eps", "-0.1"], ["-0.1"]),
    (["attack", "--model", "std", "--attack", "fgsm", "--eps", "0.1,abc"], ["abc"]),
    (["attack", "--model", "ghost", "--attack", "fgsm", "--eps", "0.1"], ["ghost", "std"]),
    (
        [
            "attack",
            "--model",
            "std",
            "--attack",
            "pgd-linf",
            "--eps",
            "0.1",
            "--param",
            "steps=many",
        ],
        ["steps", "many"],
    ),
    (
        ["attack", "--model", "std", "--attack", "fgsm", "--eps", "0.1", "--targeted", "each"],
        ["each", "all-others", "random"],
    ),
    (
        [
            "attack",
            "--model",
            "std",
            "--attack",
            "deepfool-l2",
            "--eps",
            "1",
            "--targeted",
            "random",
        ],
        ["deepfool-l2", "cw-l2"],
    ),
    (["attack", "--model", "std", "--attack", "pgd-l2", "--eps", "inf"], ["inf", "pgd-l2"]),
    (
        ["attack", "--model", "jac", "--attack", "fgsm", "--eps", "0.1", "--source-model", "ghost"],
        ["ghost", "std"],
    ),
    (
        ["attack", "--model", "jac", "--attack", "fgsm", "--eps", "0.1", "--proxy", "lenet9"],
        ["lenet9", "madry-mnist"],
    ),
    (
        ["attack", "--model", "std", "--suite", "fidel", "--targeted", "random"],
        ["--targeted", "suite"],
    ),
    (["train", "--dataset", "digits", "--lr", "1e300"], ["1e+300", "(0, 1e6]"]),
    (["train", "--dataset", "digits", "--weight-decay", "5000"], ["5000.0", "[0, 1e3]"]),
    (
        ["train", "--dataset", "digits", "--activation", "brelu", "--activation-param", "-1"],
        ["-1", "(0, 1000]"],
    ),  # fmt: skip
    (["train", "--dataset", "digits", "--activation-param", "0.5"], ["relu has no parameter"]),
    (
        ["measure", "--model", "std", "--model", "ghost", "--metric", "jacobian", "--n", "8"],
        ["ghost", "std"],
    ),  # fmt: skip (the first model is not measured either)
    (["measure", "--model", "std", "--metric", "jacobian", "--seed", "-1"], ["--seed -1"]),
    (["report", "--format", "pdf"], ["pdf", "markdown"]),
    (["report", "--table", "fidel:IX"], ["fidel:IX", "summary"]),
    # the message is text: rich markup once took "[x]" for a tag and printed "model ''"
    (["attack", "--model", "[x]", "--attack", "fgsm", "--eps", "0.1"], ["'[x]'", "std"]),
]


@pytest.mark.parametrize("args,mentions", CASES, ids=[" ".join(c[0][:4]) for c in CASES])
def test_bad_input_exits_2_with_one_line_and_no_change(snapshot, runner, db_copy, args, mentions):
    before, rows = snapshot(db_copy.parent), _rows(db_copy)
    result = runner.invoke(app, normalise_argv([*args, "--db", str(db_copy)]))
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    for word in mentions:
        assert word in lines[0]
    assert snapshot(db_copy.parent) == before
    assert _rows(db_copy) == rows


def test_an_empty_file_is_no_store_and_a_damaged_one_is_one_line(runner, tmp_path, db_copy):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    for args in (["models"], ["runs"], ["report", "--list"],
                 ["attack", "--model", "s", "--attack", "fgsm", "--eps", "0.1"]):  # fmt: skip
        res = runner.invoke(app, [*args, "--db", str(empty)])
        assert res.exit_code == 2, (args, res.output)
        assert len(res.stderr.strip().splitlines()) == 1
        assert empty.read_bytes() == b""  # not turned into a store
    data = bytearray(db_copy.read_bytes())  # damage the pages after the header
    data[4096:8192] = b"\xff" * 4096
    db_copy.write_bytes(bytes(data))
    for p in db_copy.parent.glob("a.db-*"):
        p.unlink()
    res = runner.invoke(app, ["report", "--db", str(db_copy)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_report_output_inside_the_store_is_refused(snapshot, runner, db_copy):
    before = snapshot(db_copy.parent)
    res = runner.invoke(app, ["report", "--table", "fidel:III", "--format", "csv", "--output",
                              str(db_copy.parent / "models"), "--db", str(db_copy)])  # fmt: skip
    assert res.exit_code == 2 and "inside the store" in res.stderr, res.output
    assert snapshot(db_copy.parent) == before


def test_db_that_is_not_sqlite(runner, tmp_path):
    bad = tmp_path / "thesis.db"
    bad.write_bytes(b"not a database at all" * 10)
    before = bad.read_bytes()
    result = runner.invoke(app, ["models", "--db", str(bad)])
    assert result.exit_code == 2
    assert str(bad) in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert bad.read_bytes() == before


@pytest.mark.parametrize("where", ["file", "folder"])
def test_a_read_only_store_is_one_line(snapshot, runner, db_copy, monkeypatch, where):
    """Tests run as root, for whom chmod does not bite, so the permission is what the store's
    os.access check answers. (As a plain user on a chmod 444 store, SQLite failed with
    "attempt to write a readonly database"; the cause is now named before SQLite runs.)"""
    from advbench import store

    locked = db_copy if where == "file" else db_copy.parent
    monkeypatch.setattr(store, "_writable", lambda p: Path(p) != locked)
    before = snapshot(db_copy.parent)
    for args in (["runs"], ["attack", "--model", "std", "--attack", "fgsm", "--eps", "0.1"]):
        res = runner.invoke(app, [*args, "--db", str(db_copy)])
        assert res.exit_code == 1, res.output  # a fault of the machine, not bad input
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "read-only" in lines[0] and str(db_copy) in lines[0]
        assert (where == "folder") == (f"its folder {db_copy.parent}" in lines[0])
    assert snapshot(db_copy.parent) == before


def test_db_that_is_another_programs_sqlite(runner, tmp_path):
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("create table notes (t text)")
    con.commit()
    con.close()
    before = other.read_bytes()
    result = runner.invoke(app, ["train", "--dataset", "digits", "--db", str(other)])
    assert result.exit_code == 2 and "not an advbench" in result.stderr
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_read_commands_do_not_create_a_database(runner, tmp_path):
    result = runner.invoke(app, ["runs", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--dataset", "digits", "--epochs", "abc"], ["'--epochs'", "integer"]),
        (["attack", "--bogus"], ["--bogus", "advbench attack -h"]),
        (["measure", "--metric", "jacobian"], ["Missing option '--model'"]),
        (["nosuch"], ["No such command 'nosuch'"]),
    ],
)
def test_usage_errors_of_the_console_script_are_one_line(tmp_path, args, words):
    """Errors the argument parser finds (main(), as installed) say one line too."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "advbench", *args, "--db", str(tmp_path / "a.db")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert not (tmp_path / "a.db").exists()


def test_a_checkpoint_gone_from_under_its_record_is_a_fault(snapshot, runner, db_copy):
    """Issue 31: the models folder lost a file the store records: one line naming the
    checkpoint and what to do, exit code 1 (the environment's fault, not the input's)."""
    (db_copy.parent / "models" / "std.safetensors").unlink()
    before = snapshot(db_copy.parent)
    res = runner.invoke(app, ["attack", "--model", "std", "--attack", "fgsm", "--eps", "0.1",
                              "--n", "10", "--db", str(db_copy)])  # fmt: skip
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "checkpoint" in lines[0] and "std" in lines[0], lines
    assert "is missing" in lines[0] and "Traceback" not in res.output
    assert snapshot(db_copy.parent) == before
