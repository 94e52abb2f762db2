"""The store's views answer the common questions with the numbers the report computes, every
column is described for datasette, and datasette serves them (its test client)."""

import asyncio
import json

import pytest

from advbench.browse import COLUMNS, VIEWS
from advbench.catalogue import load_model
from advbench.cli import app
from advbench.engine import run_jobs
from advbench.env import record_environment
from advbench.jobs import make_job
from advbench.metrics import wilson_interval
from advbench.store import open_db


@pytest.fixture
def attacked(db_copy):
    """std attacked by FGSM and PGD at two budgets, jac by FGSM: 12 samples each."""
    db = open_db(db_copy)
    env = record_environment(db, "cpu")
    for name, jobs in (
        ("std", [make_job("fgsm", [0.05, 0.1]), make_job("pgd-linf", [0.05, 0.1],
                                                           {"steps": 5})]),
        ("jac", [make_job("fgsm", [0.1])]),
    ):  # fmt: skip
        model, _, row = load_model(db, name)
        run_jobs(db, model, row, jobs, n=12, seed=0, batch_size=12, env_id=env)
    return db_copy


def test_every_column_of_every_table_and_view_is_described(attacked):
    db = open_db(attacked)
    names = db.table_names() + db.view_names()
    assert set(VIEWS) <= set(db.view_names())
    for name in names:
        if name.startswith("sqlite_"):
            continue
        assert name in COLUMNS, f"{name}: no description in advbench/browse.py"
        cols = [c[1] for c in db.execute(f"pragma table_info({name})").fetchall()]
        assert sorted(cols) == sorted(COLUMNS[name]), name


def test_views_give_the_reports_numbers(attacked):
    db = open_db(attacked)
    runs = {r["id"]: r for r in db["runs"].rows}
    views = list(db.query("select * from run_accuracy"))
    assert len(views) == len(runs) == 5
    for v in views:
        samples = list(db["samples"].rows_where("run_id = ?", [v["run_id"]]))
        robust = sum(s["clean_pred"] == s["label"] == s["adv_pred"] for s in samples)
        lo, hi = wilson_interval(robust, len(samples))
        assert (v["n"], v["robust"]) == (len(samples), robust)
        assert v["robust_accuracy_pct"] == round(100 * robust / len(samples), 2)
        assert (v["ci_low_pct"], v["ci_high_pct"]) == (round(100 * lo, 2), round(100 * hi, 2))
    # the per-sample worst case over std's FGSM and PGD at 0.1, by hand
    at = [r["id"] for r in runs.values() if r["model"] == "std" and r["eps"] == 0.1]
    robust_by = {}
    for s in db.query(f"select * from samples where run_id in ({','.join('?' * len(at))})", at):
        ok = s["clean_pred"] == s["label"] == s["adv_pred"]
        robust_by[s["idx"]] = robust_by.get(s["idx"], True) and ok
    worst = next(db.query("select * from worst_case_accuracy where model = 'std' and eps = 0.1"))
    assert (worst["n"], worst["robust"]) == (12, sum(robust_by.values()))
    assert worst["fewest_attacks_per_sample"] == 2
    pgd = next(v for v in views if v["model"] == "std" and v["attack"] == "pgd-linf"
               and v["eps"] == 0.1)  # fmt: skip
    assert worst["robust"] <= pgd["robust"]  # the worst case is never above one attack
    lineage = {r["model"]: r for r in db.query("select * from model_lineage")}
    assert lineage["jac"]["lineage"] == "std → jac (jacobian)" and lineage["jac"]["depth"] == 1
    assert lineage["std"]["root"] == "std"


def test_the_view_and_the_report_count_the_worst_case_over_the_same_instances(attacked):
    """An attack run on fewer instances (as HopSkipJump on a prefix): the view counts an
    instance only where every run of its group attacked it, as `report.worst_case` does."""
    from advbench.report import worst_case

    db = open_db(attacked)
    model, _, row = load_model(db, "std")
    run_jobs(db, model, row, [make_job("bim", [0.1], {"steps": 3})], n=5, seed=0,
             batch_size=12, env_id=record_environment(db, "cpu"))  # fmt: skip
    at = [r["id"] for r in db["runs"].rows if r["model"] == "std" and r["eps"] == 0.1]
    assert len(at) == 3
    robust, n = worst_case(db, at)
    view = next(db.query("select * from worst_case_accuracy where model = 'std' and eps = 0.1"))
    assert (view["n"], view["robust"]) == (n, robust) == (5, robust)
    assert view["fewest_attacks_per_sample"] == 3


def test_datasette_serves_the_views_with_their_descriptions(attacked, runner, tmp_path):
    from datasette.app import Datasette

    meta = tmp_path / "meta.json"
    res = runner.invoke(app, ["browse", "--db", str(attacked), "--write-metadata", str(meta)])
    assert res.exit_code == 0, res.output
    doc = json.loads(meta.read_text())
    assert set(doc["databases"]) == {"a"}  # keyed by the database file's stem
    ds = Datasette([str(attacked)], metadata=doc)

    async def get(path):
        return await ds.client.get(path)

    rows = asyncio.run(get("/a/run_accuracy.json?_shape=array")).json()
    assert len(rows) == 5 and {"robust_accuracy_pct", "ci_low_pct"} <= set(rows[0])
    page = asyncio.run(get("/a/worst_case_accuracy")).text
    assert "Robust accuracy under the per-sample worst case" in page
    curves = asyncio.run(get("/a/accuracy_curves.json?_shape=array&model=std")).json()
    assert [c["eps"] for c in curves if c["attack_row"] == "fgsm"] == [0.05, 0.1]


def test_browse_refuses_a_missing_store_and_a_folder_for_metadata(tmp_path, runner, attacked):
    res = runner.invoke(app, ["browse", "--db", str(tmp_path / "none.db")])
    assert res.exit_code == 2 and "no database there yet" in res.stderr
    assert not (tmp_path / "none.db").exists()
    checkpoint_json = attacked.parent / "models" / "std.json"
    for target, words in ((tmp_path, "must be a .json file"),
                          (tmp_path / "none" / "m.json", "does not exist"),
                          (checkpoint_json, "part of the store")):  # fmt: skip
        before = (attacked.parent / "models" / "std.json").read_bytes()
        res = runner.invoke(app, ["browse", "--db", str(attacked), "--write-metadata",
                                  str(target)])  # fmt: skip
        assert res.exit_code == 2 and words in res.stderr, res.output
        assert (attacked.parent / "models" / "std.json").read_bytes() == before
    res = runner.invoke(app, ["browse", "--db", str(attacked), "--port", "99999"])
    assert res.exit_code == 2 and "--port 99999 must be in [1, 65535]" in res.stderr


def test_the_readmes_browse_command_serves_the_views_from_an_unactivated_venv(attacked):
    """`.venv/bin/advbench browse` as the README writes it, with the venv's bin not on
    PATH: datasette runs from advbench's own interpreter and serves a view over HTTP."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(sys.executable).parent / "advbench"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"  # no datasette on PATH, as in an unactivated venv
    server = subprocess.Popen([str(script), "browse", "--db", str(attacked), "--port",
                               str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/a/run_accuracy.json?_shape=array"
        for _ in range(120):
            try:
                with urllib.request.urlopen(url, timeout=2) as res:
                    rows = json.loads(res.read())
                break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()[-2000:]
                time.sleep(0.5)
        else:
            raise AssertionError("datasette did not answer in 60 s")
        assert len(rows) == 5 and {"robust_accuracy_pct", "ci_low_pct"} <= set(rows[0])
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)
