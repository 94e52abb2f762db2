"""The four commands end to end through the CLI, as a user runs them."""

import sqlite3

from advbench.cli import app, normalise_argv
from advbench.suites import load_suite, suite_jobs


def _invoke(runner, *args):
    result = runner.invoke(app, normalise_argv([str(a) for a in args]))
    assert result.exit_code == 0, result.output
    return result


def _count(db, table):
    con = sqlite3.connect(db)
    try:
        return con.execute(f"select count(*) from {table}").fetchone()[0]
    finally:
        con.close()


def test_train_harden_attack_report(runner, tmp_path):
    db = tmp_path / "r.db"
    train = [
        "train",
        "--dataset",
        "digits",
        "--arch",
        "tf-mnist",
        "--epochs",
        2,
        "--name",
        "base",
        "--db",
        db,
        "--device",
        "cpu",
    ]
    out = _invoke(runner, *train)
    assert "clean accuracy" in out.output and "n=360" in out.output
    assert (tmp_path / "models" / "base.safetensors").exists()
    again = _invoke(runner, *train)
    assert "already stored" in again.output
    _invoke(
        runner,
        "harden",
        "--model",
        "base",
        "--defense",
        "jacobian",
        "--epochs",
        1,
        "--param",
        "lambda=0.1",
        "--db",
        db,
        "--device",
        "cpu",
    )
    attack = [
        "attack",
        "--model",
        "base",
        "--model",
        "base+jacobian",
        "--attack",
        "pgd-l2",
        "--eps",
        "0.5,1",
        "--n",
        30,
        "--param",
        "steps=5",
        "--db",
        db,
    ]
    _invoke(runner, *attack)
    samples = _count(db, "samples")
    assert samples == 2 * 2 * 30
    rerun = _invoke(runner, *attack)
    assert "stored (no work)" in rerun.output
    assert _count(db, "samples") == samples

    md = _invoke(runner, "report", "--table", "--format", "markdown", "--db", db).output
    assert "| base+jacobian | jacobian |" in md and "(n=30)" in md and "PGD" not in md
    assert "pgd-l2 ε=0.5" in md and "seed 0" in md
    _invoke(
        runner, "attack", "--model", "base", "--attack", "fgsm", "--eps", 0.2, "--n", 10, "--db", db
    )
    md = _invoke(runner, "report", "--format", "markdown", "--db", db).output
    base_row = next(line for line in md.splitlines() if line.startswith("| base |"))
    hard_row = next(line for line in md.splitlines() if line.startswith("| base+jacobian |"))
    assert "(n=10)" in base_row and "not run" in hard_row  # missing cells are marked

    _invoke(runner, "report", "--format", "csv", "--output", tmp_path / "out", "--db", db)
    lines = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    assert lines[0].startswith("model,defense") and len(lines) == 1 + 5

    listing = _invoke(runner, "models", "--db", db).output
    assert "base+jacobian" in listing and "jacobian" in listing
    assert "pgd-l2" in _invoke(runner, "runs", "--db", db).output


def test_suite_at_smoke_scale(runner, trained_db, tmp_path):
    import shutil

    shutil.copytree(trained_db.parent, tmp_path / "s")
    db = tmp_path / "s" / "a.db"
    out = _invoke(
        runner,
        "attack",
        "--model",
        "std",
        "--suite",
        "carlini-eval",
        "--scale",
        "smoke",
        "--n",
        20,
        "--db",
        db,
    ).output
    for label in ("FGSM", "PGD-Linf", "PGD-L2", "CW-L2", "APGD-DLR"):
        assert label in out
    ran, _ = suite_jobs(load_suite("carlini-eval"), "digits", "smoke")
    con = sqlite3.connect(db)
    runs = con.execute("select count(*), count(distinct label) from runs").fetchone()
    per_run = dict(
        con.execute(
            "select r.label, count(*) from samples s join runs r on s.run_id = r.id group by r.id"
        ).fetchall()
    )
    assert runs == (sum(len(j.eps) for j in ran), len(ran))
    assert per_run["HopSkipJump-L2"] == 4  # the row's own count, under --n 20
    assert per_run["FGSM"] == 20
    own = con.execute("select threat, source_model from runs where label = 'Transfer-PGD-Linf'")
    assert set(own.fetchall()) == {("transfer", "std")}  # std is undefended: from itself


def test_listings(runner):
    for cmd, word in (("attack", "cw-l2"), ("harden", "jacobian")):
        assert word in _invoke(runner, cmd, "--list").output
    assert "mnist-5k" in _invoke(runner, "datasets").output
    assert "wrn-28-10" in _invoke(runner, "archs").output
