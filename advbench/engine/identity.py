"""A run's identity and what it may take from others: one run per (model, job, ε) keyed by
the hash of its full configuration, registered once; a budget attack's shortcut chain and
a cascade's earlier runs, whose broken instances a run takes as broken (`carried`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from advbench.attacks import ATTACKS, norm_of
from advbench.config import canonical_json, config_hash
from advbench.engine.instances import Instances
from advbench.engine.rows import Batch
from advbench.jobs import AttackJob
from advbench.metrics import within
from advbench.store import now, transaction


def early_stopped(job: AttackJob) -> AttackJob:
    """With shortcuts on, a white-box budget attack that can stop each instance at its
    first adversarial iterate (PGD, keep=first-success) does: an accuracy run's question is
    answered there, and the example is never weaker. A transfer row is not: its examples
    must fool the target, not just the source, so they keep every step. The parameter is
    part of the run's identity, so the two plans are different runs."""
    entry = ATTACKS.get(job.attack)
    can = any(p.name == "early_stop" for p in entry.params)
    if (not job.shortcuts or not can or job.store_examples
            or job.params.get("keep", "first-success") != "first-success"):  # fmt: skip
        return job
    return replace(job, params={**job.params, "early_stop": True})


def run_rows(
    model_row,
    job: AttackJob,
    instances: Instances,
    seed: int,
    batch_size: int,
    scale: str | None,
    source_row=None,
    threat: str = "white-box",
    gradient: str | None = None,
    cascade_from: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The job's runs, one per ε. `cascade_from` (a cascade): the ids of the earlier runs of
    the cascade in this norm, whose broken instances this job takes as broken."""
    kind = ATTACKS.get(job.attack).meta["kind"]
    base = {
        "model": model_row["name"],
        "model_checksum": model_row["checksum"],
        "attack": job.attack,
        "params": ATTACKS.get(job.attack).identity(job.params),
        "dataset": model_row["dataset"],
        "split": "test",
        "n": instances.n_samples,
        "seed": seed,
        "batch_size": batch_size,
        "targeted": job.targeted,
    }
    # Older identities stay valid: keys are added only when they differ from the default.
    if job.only_correct:
        base["only_correct"] = True
    if source_row is not None:
        base.update(threat=threat, source_checksum=source_row["checksum"])
    if gradient is not None:  # only models with a choice of gradient (feature-squeezing)
        base["gradient"] = gradient
    meta = ATTACKS.get(job.attack).meta
    if meta.get("revision"):  # the attack's numbers changed: runs before it are not reused
        base["revision"] = meta["revision"]
    if job.targeted and meta.get("start"):
        base["start"] = job.params.get("start", meta["start"])
    if job.judge != "minimal":
        base["judge"] = job.judge
    if cascade_from is not None:  # present even when empty: a cascade's runs are its own
        base["cascade_from"] = list(cascade_from)
    group = config_hash(base)
    rows = []
    chain = job.shortcuts and kind == "budget" and source_row is None and not job.store_examples
    previous = None
    for eps in job.eps:  # ascending (make_job sorts them)
        cfg = {**base, "eps": eps}
        if cascade_from is not None and kind == "budget" and previous is not None:
            cfg["cascade_from"] = [*cascade_from, *(r["id"] for r in rows)]  # its own smaller ε
        elif chain and previous is not None:  # takes what the run at the next smaller ε broke
            cfg["shortcut_from"] = previous
        rows.append(
            {
                "id": config_hash(cfg),
                "model": model_row["name"],
                "model_checksum": model_row["checksum"],
                "defense": model_row["defense"],
                "attack": job.attack,
                "label": job.label,
                "norm": norm_of(job.attack, job.params),
                "kind": kind,
                "eps": eps,
                "config": canonical_json(cfg),
                "group_id": group if kind == "minimal" else config_hash(cfg),
                "dataset": model_row["dataset"],
                "split": "test",
                "n": len(instances),
                "n_samples": instances.n_samples,
                "seed": seed,
                "scale": scale,
                "suite": job.suite,
                "targeted": job.targeted,
                "threat": threat,
                "source_model": None if source_row is None else source_row["name"],
                "source_checksum": None if source_row is None else source_row["checksum"],
                "source_rule": None if source_row is None else (job.declared or job.source),
                "only_correct": int(job.only_correct),
                "gradient": gradient,
            }
        )
        previous = rows[-1]["id"]
    return rows


def start_of(job: AttackJob) -> str | None:
    """Where a targeted attack starts: its `start` parameter, else its registered start."""
    return job.params.get("start", ATTACKS.get(job.attack).meta.get("start"))


def register(db, rows, env_id: str, force: bool) -> list[dict[str, Any]]:
    """Record runs that still need work (with --force, drop their samples first)."""
    todo = []
    for row in rows:
        stored = list(db["runs"].rows_where("id = ?", [row["id"]]))
        if stored and stored[0]["status"] == "complete" and not force:
            continue
        with transaction(db):
            if force:
                db.execute("delete from samples where run_id = ?", [row["id"]])
            if not stored or force:
                fresh = {**row, "status": "running", "started_at": now(), "wall_s": 0.0,
                         "env_id": env_id}  # fmt: skip
                if force:
                    db["runs"].upsert(fresh, pk="id")
                else:  # a concurrent copy of the command may have registered it just now
                    db["runs"].insert(fresh, pk="id", ignore=True)
        todo.append(row)
    return todo


def done_positions(db, run_id: str) -> set[int]:
    return {r[0] for r in db.execute("select position from samples where run_id = ?", [run_id])}


def carried(db, run: dict[str, Any], b: Batch) -> dict[int, dict[str, Any]]:
    """The batch's instances that an earlier run broke within this run's ε (by the stored
    distance in the run's norm), as this run's rows: the same example, outcome and
    diagnostics, no passes spent, `carried_from` naming the run that crafted the example.

    The earlier runs are the run at the next smaller ε of a shortcut chain (the same
    instances, matched by position), or a cascade's earlier runs in this norm (untargeted
    rows, matched by test index: a row with its own smaller n attacks a prefix of the
    same seeded selection), the first that broke an instance in cascade order."""
    cfg = json.loads(run["config"])
    cascade = cfg.get("cascade_from")
    sources = cascade if cascade is not None else [cfg.get("shortcut_from")]
    sources = [s for s in sources if s is not None]
    if not sources:
        return {}
    key = "idx" if cascade is not None else "position"
    where = {int(i): p for i, p in zip(b.idx.tolist(), b.positions, strict=True)}
    values = list(where) if cascade is not None else b.positions
    found = db.execute(
        f"select * from samples where run_id in ({','.join('?' * len(sources))}) "
        f"and {key} in ({','.join('?' * len(values))})",
        [*sources, *values],
    )
    cols = [d[0] for d in found.description]
    order = {rid: k for k, rid in enumerate(sources)}
    rows = sorted((dict(zip(cols, v, strict=True)) for v in found.fetchall()),
                  key=lambda r: order[r["run_id"]])  # fmt: skip
    out = {}
    for row in rows:
        pos = where[row["idx"]] if cascade is not None else row["position"]
        if pos in out:
            continue
        # the run's norm; L0 is stored as a count of features, ε as their share
        dist = row["l0"] / b.x[0].numel() if run["norm"] == "l0" else row[run["norm"]]
        if row["success"] and not row["init_failed"] and within(dist, run["eps"]):
            origin = row["carried_from"] or row["run_id"]
            out[pos] = {**row, "run_id": run["id"], "position": pos, "eps": run["eps"],
                        "fwd": 0.0, "bwd": 0.0, "carried_from": origin}  # fmt: skip
            if cascade is not None:  # another attack's search and trace are not this run's
                out[pos].update(min_norm=None, trace=None)
    return out
