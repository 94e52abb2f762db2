"""A frozen database written by advbench 0.1.0 (commit d9bd403, schema 0003; committed as
`tests/fixtures/store_0003.db`): it opens, migrates and reports with its numbers unchanged,
and the identity of each of its 36 runs is pinned, so a change to the identity hash, or to
the configuration a request resolves to, is seen.

Runs are reused by id: a request whose identity moved silently re-runs everything a user
stored (or worse, a changed hash collides). Identities moved on purpose for `cw-l2` and
`hsj` (revision 1) and for attacks on feature-squeezing (the gradient joined the identity);
every other old run is still found by today's request. Pins:
`tests/test_frozen_store/*.yml` (regenerate with `--force-regen`, with a CHANGELOG line).
"""

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from advbench.config import config_hash
from advbench.engine import Instances, run_rows
from advbench.jobs import make_job
from advbench.report import run_results, summary_table
from advbench.store import db_dir, open_db
from advbench.store.migrations import MIGRATIONS

FROZEN = Path(__file__).parent / "fixtures" / "store_0003.db"


@pytest.fixture
def old(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(FROZEN, path)
    return open_db(path)  # migrates


def test_every_run_id_is_the_hash_of_its_stored_configuration(old, data_regression):
    runs = list(old["runs"].rows_where(order_by="id"))
    assert len(runs) == 36
    for r in runs:
        assert config_hash(json.loads(r["config"])) == r["id"]
    data_regression.check({r["id"]: json.loads(r["config"]) for r in runs}, basename="run_ids")


def _todays_id(db, run) -> str:
    """The id today's code gives the request that made `run` (same model, attack,
    parameters, ε, samples, seed, batch, targeting, threat and source)."""
    cfg = json.loads(run["config"])
    model = db["models"].get(run["model"])
    params = {k: v for k, v in cfg["params"].items() if v is not None}  # None: the default
    job = make_job(cfg["attack"], [cfg["eps"]], params, targeted=cfg["targeted"])
    source = None
    if "source_checksum" in cfg:
        source = {"name": run["source_model"], "checksum": cfg["source_checksum"]}
    gradient = "masked" if model["defense"] == "feature-squeezing" else None
    inst = Instances(idx=[0] * cfg["n"], target=None, n_samples=cfg["n"])
    rows = run_rows(
        model, job, inst, cfg["seed"], cfg["batch_size"], None, source,
        cfg.get("threat", "white-box"), gradient,
    )  # fmt: skip
    return rows[0]["id"]


def test_todays_requests_find_the_old_runs_except_where_numbers_changed(old):
    moved = {}
    for run in old["runs"].rows_where(order_by="id"):
        if _todays_id(old, run) != run["id"]:
            moved.setdefault((run["model"], run["attack"]), []).append(run["eps"])
    # cw-l2 and hsj: revision 1 (faithful cells); fs: the gradient is part of the identity
    assert {k: sorted(v) for k, v in moved.items()} == {
        ("fs", "fgsm"): [0.1, 0.3],
        ("jac", "cw-l2"): [0.5, 1.0, 1.5, 2.0],
        ("jac", "hsj"): [0.5, 1.0, 1.5, 2.0],
    }


def test_the_old_store_reports_its_numbers(old, data_regression):
    """Robust counts per run as 0.1.0 stored them, and the summary cells built from them."""
    runs = run_results(old).sort_values(["model", "attack", "eps"])
    counts = {
        f"{r.model} | {r.attack} | {r.eps:g}": [int(r.robust), int(r.n)] for r in runs.itertuples()
    }
    table = summary_table(old).set_index("model")
    cells = {m: {c: str(v) for c, v in row.items()} for m, row in table.iterrows()}
    data_regression.check({"counts": counts, "cells": cells}, basename="report")


def _schema(db) -> list[tuple]:
    """Every table, index and view with its columns (name, type, not-null, default, pk) and,
    for a view, its SQL with whitespace folded."""
    out = []
    for kind, name, sql in db.execute(
        "select type, name, sql from sqlite_master where name not like 'sqlite_%' "
        "order by type, name"
    ):
        cols = [tuple(c[1:]) for c in db.execute(f"pragma table_info('{name}')")]
        out.append((kind, name, cols, " ".join((sql or "").split()) if kind == "view" else ""))
    return out


def test_the_migrated_old_store_has_the_fresh_stores_schema(old, tmp_path):
    """Every migration, frozen with its own SQL, brings a 0.1.0 store to the schema a new
    store gets: same tables, columns, indexes and views (migrations 0004-0011 ran on it)."""
    fresh = open_db(tmp_path / "fresh.db")
    assert _schema(old) == _schema(fresh)
    applied = [r[0] for r in old.execute("select name from _migrations order by name")]
    assert applied == [r[0] for r in fresh.execute("select name from _migrations order by name")]
    assert {"run_accuracy", "worst_case_accuracy", "model_lineage"} <= set(old.view_names())
    assert "crafted" in old.table_names()


def test_reading_an_old_store_never_rewrites_it(tmp_path):
    """The report commands only read: an old store (committed evidence, a colleague's file)
    is read from a migrated copy and stays byte for byte as it was, while the same summary
    as the migrated store's is printed. A writing command still migrates it in place."""
    path = tmp_path / "old.db"
    shutil.copy(FROZEN, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    cmd = [sys.executable, "-m", "advbench", "report", "--db", str(path), "--format", "csv"]
    read = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert read.returncode == 0, read.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    migrated = tmp_path / "migrated.db"
    shutil.copy(FROZEN, migrated)
    open_db(migrated).close()
    again = subprocess.run([*cmd[:-4], "--db", str(migrated), "--format", "csv"],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 0 and again.stdout == read.stdout
    assert len(read.stdout.splitlines()) > 30  # one row per stored run, not an empty table
    copy = open_db(path, create=False, readonly=True)
    old = sorted(r[0] for r in copy.execute("select name from _migrations"))
    assert old == sorted(name for name, _ in MIGRATIONS)  # the copy read is migrated
    assert db_dir(copy) == tmp_path  # its checkpoints are looked for beside the store read
    con = sqlite3.connect(path)
    assert len(con.execute("select name from _migrations").fetchall()) == 3  # the file: 0003
    con.close()
