"""Where the work units of an evaluation run: here, or as Ray tasks (`--executor ray`).

A work unit is one (model, suite row) pair: its runs over every ε. On Ray each unit is a
task with a CPU (or GPU) request; at most `max_in_flight` are submitted at a time. A task
attacks into a private shard store (a temporary SQLite file holding copies of the model
rows and of the model's stored runs, so a half-done run resumes there too) and returns the
shard's path; the driver alone writes the main store, folding each shard in with
`advbench.merge` as its task completes, in one short transaction. Rows are keyed by the
same run and sample identities as local runs, so a retried task or a re-submitted grid
writes nothing twice, and a killed driver loses only the units in flight: the same command
skips what is stored.

Workers read the models' checkpoints and the data sets from the same paths as the driver
(one machine, or a cluster with a shared disk); for machines without one, run advbench on
each and fold their stores with `advbench merge`. Ray starts with usage statistics off and
no dashboard: nothing leaves the machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from advbench.errors import BadInput

EXECUTORS = ("local", "ray")


def check(executor: str) -> None:
    from advbench.errors import unknown

    if executor not in EXECUTORS:
        raise unknown("executor", executor, EXECUTORS)


def start_ray(address: str | None = None):
    """Ray, started (or joined at `address`) with usage statistics off and no dashboard."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        import ray
    except ImportError:
        raise BadInput("--executor ray needs Ray: pip install -e '.[ray]'") from None
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}  # fmt: skip
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise BadInput(f"--address {address}: cannot start or join Ray ({exc})") from None
    return ray


def _unit(main_db: str, model: str, job: dict, kwargs: dict) -> str:
    """A Ray task: attack `model` with one suite row into a shard beside a temporary folder;
    returns the shard's path (the driver merges it, then removes its folder)."""
    import sqlite3

    from advbench.catalogue import load_model
    from advbench.engine import run_jobs
    from advbench.env import record_environment
    from advbench.jobs import AttackJob
    from advbench.malloc import hold_freed_memory
    from advbench.store import open_db

    hold_freed_memory()  # a worker advbench started, as the console script's process
    folder = Path(tempfile.mkdtemp(prefix="advbench-shard-"))
    os.symlink(Path(main_db).parent / "models", folder / "models")  # the checkpoints
    shard = open_db(folder / "shard.db")
    from urllib.request import pathname2url

    src = sqlite3.connect(f"file:{pathname2url(main_db)}?mode=ro", uri=True)
    try:
        for table, where, args in (
            ("environments", "1", []),
            ("models", "1", []),
            ("runs", "model = ?", [model]),
            ("samples", "run_id in (select id from runs where model = ?)", [model]),
        ):
            cur = src.execute(f"select * from {table} where {where}", args)
            cols = [d[0] for d in cur.description]
            shard[table].insert_all([dict(zip(cols, r, strict=True)) for r in cur],
                                    ignore=True)  # fmt: skip
    finally:
        src.close()
    net, _, row = load_model(shard, model, kwargs["device"])
    env_id = record_environment(shard, kwargs["device"])
    run_jobs(shard, net, row, [AttackJob(**job)], env_id=env_id,
             load_model=lambda m: load_model(shard, m, kwargs["device"])[::2],
             **kwargs)  # fmt: skip
    shard.close()
    return str(folder / "shard.db")


def run_ray(database, units: list[tuple[dict, Any]], kwargs: dict, *, address=None,
            max_in_flight: int | None = None, progress=None) -> None:  # fmt: skip
    """Run each (model row, job) unit as a Ray task and merge each shard as it completes."""
    from dataclasses import asdict

    from advbench.merge import merge
    from advbench.store import db_file

    ray = start_ray(address)
    main_db = str(Path(db_file(database)).resolve())
    gpu = 1 if str(kwargs.get("device", "cpu")).startswith("cuda") else 0
    remote = ray.remote(num_cpus=1, num_gpus=gpu, max_retries=2)(_unit)
    limit = max_in_flight or max(1, int(ray.cluster_resources().get("CPU", 1)))
    task = progress.add_task("ray units", total=len(units), metrics="") if progress else None
    pending, waiting = list(units), []
    try:
        while pending or waiting:
            while pending and len(waiting) < limit:
                row, job = pending.pop(0)
                waiting.append(remote.remote(main_db, row["name"], asdict(job), kwargs))
            done, waiting = ray.wait(waiting, num_returns=1)
            shard = Path(ray.get(done[0]))
            try:
                merge(database, [shard])
            finally:
                shutil.rmtree(shard.parent, ignore_errors=True)
            if task is not None:
                progress.advance(task)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(getattr(exc, "cause", None), BadInput) else None
        if cause is not None:
            raise cause from None
        raise


__all__ = ["EXECUTORS", "check", "run_ray", "start_ray"]
