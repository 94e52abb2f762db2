"""Provenance: the environment a result was made in names the host CPU and the instruction
set torch's CPU kernels dispatch to, since identical library versions on two hosts train to
different last bits (zantedeschi's CNN: sha256 da4293fd… and 10177253… under one recorded
environment, 2026-12-07)."""

from pathlib import Path

import torch

from advbench.env import describe, record_environment
from advbench.store import open_db


def test_platform_names_the_cpu_model_and_torchs_kernel_isa():
    platform = describe("cpu")["platform"]
    assert torch.backends.cpu.get_cpu_capability() in platform
    info = Path("/proc/cpuinfo")
    if info.exists():
        model = next((line.partition(":")[2].strip() for line in info.read_text().splitlines()
                      if line.startswith("model name")), None)  # fmt: skip
        if model:
            assert model in platform


def test_another_cpu_is_another_environment(tmp_path, monkeypatch):
    import advbench.env as env

    db = open_db(tmp_path / "a.db")
    first = record_environment(db, "cpu")
    assert record_environment(db, "cpu") == first  # the same host: one row
    monkeypatch.setattr(env, "_cpu", lambda: "Other CPU, AVX512")
    second = record_environment(db, "cpu")
    assert second != first
    rows = {r["id"]: r["platform"] for r in db["environments"].rows}
    assert rows[second].endswith("(Other CPU, AVX512)") and len(rows) == 2


def _record_after(barrier, path, out):
    db = open_db(path)
    barrier.wait()
    out.put(record_environment(db, "cpu"))


def test_copies_started_together_store_one_environment(tmp_path):
    """CI, 2026-12-07: four `attack` copies on a store made on another host each found this
    host's environment absent and raced to insert it; three died on a UNIQUE constraint."""
    import multiprocessing

    path = tmp_path / "a.db"
    open_db(path)  # migrated once, before the copies start
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_record_after, args=(barrier, path, out)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * 4
    ids = {out.get(timeout=5) for _ in procs}
    assert len(ids) == 1
    assert open_db(path)["environments"].count == 1


def test_a_stored_environment_keeps_when_it_was_first_seen(tmp_path):
    db = open_db(tmp_path / "a.db")
    env_id = record_environment(db, "cpu")
    db.execute("update environments set first_seen = '2020-01-01' where id = ?", [env_id])
    db.conn.commit()
    assert record_environment(db, "cpu") == env_id
    assert db["environments"].get(env_id)["first_seen"] == "2020-01-01"


def test_a_broken_constraint_is_one_line_naming_a_defect_not_a_damaged_store(capsys):
    """The CI run's line read "the database cannot be read ...; restore it from a copy":
    wrong advice for a store that was intact. A constraint error is advbench's defect."""
    import sqlite3

    import typer

    from advbench.cli.app import handles_errors

    @handles_errors
    def command():
        raise sqlite3.IntegrityError("UNIQUE constraint failed: environments.id")

    try:
        command()
    except typer.Exit as exc:
        code = exc.exit_code
    err = capsys.readouterr().err
    assert code == 1
    assert "UNIQUE constraint failed: environments.id" in err and "defect of advbench" in err
    assert "restore it from a copy" not in err and "Traceback" not in err
