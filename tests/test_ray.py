"""A grid on a local Ray instance with 2 workers stores exactly the rows the local executor
stores, and running it again writes nothing twice."""

import shutil

import pytest

from advbench.cli import app
from advbench.store import open_db

ray = pytest.importorskip("ray")

COLS = ("run_id, position, idx, label, target, clean_pred, adv_pred, success, l0, l2, linf, "
        "min_norm, eps, start_idx, init_failed")  # fmt: skip
GRID = ["attack", "--model", "std", "--model", "jac", "--suite", "pesso", "--scale", "smoke",
        "--only", "FGSM", "--only", "PGD", "--n", "6", "-q"]  # fmt: skip


def _rows(path):
    db = open_db(path)
    runs = sorted((r["id"], r["status"], r["n"]) for r in db["runs"].rows)
    return runs, sorted(db.execute(f"select {COLS} from samples").fetchall())


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)  # fmt: skip
    yield
    ray.shutdown()


def test_a_ray_grid_stores_the_local_executors_rows(db_copy, tmp_path, runner, local_ray):
    shutil.copytree(db_copy.parent, tmp_path / "local")
    local = tmp_path / "local" / "a.db"
    res = runner.invoke(app, [*GRID, "--db", str(local)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*GRID, "--db", str(db_copy), "--executor", "ray"])
    assert res.exit_code == 0, res.output
    assert "FGSM" in res.stdout and "PGD" in res.stdout  # the summaries print as locally
    runs, samples = _rows(db_copy)
    assert (runs, samples) == _rows(local)
    assert len(runs) == 2 * (1 + 4) and all(status == "complete" for _, status, _ in runs)
    again = runner.invoke(app, [*GRID, "--db", str(db_copy), "--executor", "ray"])
    assert again.exit_code == 0, again.output
    assert _rows(db_copy) == (runs, samples)  # a re-submitted grid writes nothing twice


def test_an_unknown_executor_is_one_line(db_copy, runner):
    res = runner.invoke(app, [*GRID, "--db", str(db_copy), "--executor", "dask"])
    assert res.exit_code == 2
    assert res.stderr.strip() == "Error: unknown executor 'dask'; valid choices: local, ray"
