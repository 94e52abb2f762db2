"""Run attacks: expand (attack x ε) into runs, skip finished ones, batch loop, one
transaction per batch.

A run's id is the hash of its canonical configuration (model checksum, attack, resolved
parameters, ε, samples, seed, batch size), so the same request twice is the same run.
Each batch's per-sample rows are written in one transaction, so an interruption loses at
most that batch, and each batch is seeded from (seed, batch), so a resumed run ends with
the per-sample results an uninterrupted one gives.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils
import torch

from advbench import data as datasets
from advbench.attacks import ATTACKS, norm_of
from advbench.config import config_hash
from advbench.errors import BadInput
from advbench.fit import batch_seed
from advbench.metrics import perturbation_norms, wilson_interval
from advbench.store import now

# Minimal norms within this relative tolerance of ε count as within budget (float32 noise).
_EPS_TOL = 1e-5


@dataclass
class AttackJob:
    attack: str
    eps: list[float]
    params: dict[str, Any] = field(default_factory=dict)  # resolved (defaults filled in)
    label: str | None = None
    suite: str | None = None


def make_job(
    attack: str,
    eps: Sequence[float],
    overrides: dict[str, Any] | None = None,
    label: str | None = None,
    suite: str | None = None,
) -> AttackJob:
    entry = ATTACKS.get(attack)
    if not eps:
        raise BadInput(f"{attack}: no ε given (use --eps, e.g. --eps 0.1,0.3)")
    for e in eps:
        if not e >= 0:  # also rejects NaN
            raise BadInput(f"--eps {e} is invalid: ε must be a number >= 0")
    return AttackJob(
        attack, sorted(set(float(e) for e in eps)), entry.resolve(overrides), label, suite
    )


def select_samples(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """The first n of a seeded permutation of the split: the same samples on every model."""
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    return perm[:n]


@dataclass
class RunSummary:
    id: str
    attack: str
    label: str | None
    eps: float
    n: int
    robust: int
    status: str
    wall_s: float
    reused: bool

    @property
    def accuracy(self) -> float:
        return self.robust / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.robust, self.n)


def _run_rows(
    model_row, job: AttackJob, n: int, seed: int, batch_size: int, scale: str | None
) -> list[dict[str, Any]]:
    kind = ATTACKS.get(job.attack).meta["kind"]
    base = {
        "model": model_row["name"],
        "model_checksum": model_row["checksum"],
        "attack": job.attack,
        "params": job.params,
        "dataset": model_row["dataset"],
        "split": "test",
        "n": n,
        "seed": seed,
        "batch_size": batch_size,
        "targeted": None,
    }
    group = config_hash(base)
    rows = []
    for eps in job.eps:
        cfg = {**base, "eps": eps}
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
                "config": json.dumps(cfg, sort_keys=True),
                "group_id": group if kind == "minimal" else config_hash(cfg),
                "dataset": model_row["dataset"],
                "split": "test",
                "n": n,
                "seed": seed,
                "scale": scale,
                "suite": job.suite,
            }
        )
    return rows


def _sample_rows(run_id, positions, idx, y, clean_pred, x, adv, adv_pred, min_norm=None):
    l0, l2, linf = perturbation_norms((adv - x).cpu())
    x_l2 = x.flatten(1).norm(dim=1).cpu()
    rows = []
    for i in range(len(idx)):
        rows.append(
            {
                "run_id": run_id,
                "idx": int(idx[i]),
                "position": int(positions[i]),
                "label": int(y[i]),
                "target": None,
                "clean_pred": int(clean_pred[i]),
                "adv_pred": int(adv_pred[i]),
                "success": int(adv_pred[i] != y[i]),
                "l0": float(l0[i]),
                "l2": float(l2[i]),
                "linf": float(linf[i]),
                "x_l2": float(x_l2[i]),
                "min_norm": None
                if min_norm is None or not torch.isfinite(min_norm[i])
                else float(min_norm[i]),
            }
        )
    return rows


@torch.no_grad()
def _predict(model, x):
    return model(x).argmax(1)


def _judge_minimal(model, x, y, clean_pred, raw, eps_list, norm: str):
    """From one minimal-perturbation result, the adversarial input at each ε (in `norm`).

    foolbox returns the unperturbed input where it found nothing, so success is checked
    with the model's own prediction, not foolbox's flag.
    """
    raw_pred = _predict(model, raw)
    found = raw_pred != y
    delta = (raw - x).flatten(1)
    norms = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(dim=1)
    min_norm = torch.where(
        clean_pred != y,
        torch.zeros_like(norms),
        torch.where(found, norms, torch.full_like(norms, float("inf"))),
    )
    out = {}
    for eps in eps_list:
        ok = (min_norm <= eps * (1 + _EPS_TOL)) & (clean_pred == y)
        adv = torch.where(ok.view(-1, *[1] * (x.dim() - 1)), raw, x)
        adv_pred = torch.where(ok, raw_pred, clean_pred)
        out[eps] = (adv, adv_pred)
    return out, min_norm


@contextlib.contextmanager
def frozen(model):
    """Weights need no gradients during an attack. foolbox (through eagerpy) calls
    `.backward()`, which otherwise computes every weight's gradient as well: about a third
    of PGD's time on the Madry net (benchmarks/attack_speed.py)."""
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def _done_positions(db, run_id: str) -> set[int]:
    return {r[0] for r in db.execute("select position from samples where run_id = ?", [run_id])}


def run_jobs(
    db: sqlite_utils.Database,
    model,
    model_row: dict[str, Any],
    jobs: Sequence[AttackJob],
    *,
    n: int,
    seed: int,
    batch_size: int,
    env_id: str,
    device: str = "cpu",
    force: bool = False,
    scale: str | None = None,
    data_dir=None,
    progress=None,
) -> list[RunSummary]:
    """Execute every pending run of `jobs` against `model`; return a summary per run."""
    if n <= 0:
        raise BadInput(f"--n {n} must be > 0")
    if batch_size <= 0:
        raise BadInput(f"--batch-size {batch_size} must be > 0")
    test = datasets.load(model_row["dataset"], "test", data_dir=data_dir)
    if n > len(test):
        raise BadInput(f"--n {n} exceeds the {len(test)} test samples of {model_row['dataset']}")
    idx_all = select_samples(test.labels, n, seed)
    model = model.to(device).eval()
    n_batches = (n + batch_size - 1) // batch_size
    plans = [(job, _run_rows(model_row, job, n, seed, batch_size, scale)) for job in jobs]

    # Register runs; with --force drop their stored samples first.
    pending: list[tuple[AttackJob, list[dict[str, Any]]]] = []
    for job, rows in plans:
        todo = []
        for row in rows:
            stored = list(db["runs"].rows_where("id = ?", [row["id"]]))
            if stored and stored[0]["status"] == "complete" and not force:
                continue
            with db.conn:
                if force:
                    db.execute("delete from samples where run_id = ?", [row["id"]])
                if not stored or force:
                    db["runs"].upsert(
                        {
                            **row,
                            "status": "running",
                            "started_at": now(),
                            "wall_s": 0.0,
                            "env_id": env_id,
                        },
                        pk="id",
                    )
            todo.append(row)
        if todo:
            pending.append((job, todo))

    total = sum(
        n_batches * (1 if ATTACKS.get(j.attack).meta["kind"] == "minimal" else len(r))
        for j, r in pending
    )
    task = progress.add_task("attack", total=total, metrics="") if progress and total else None
    with frozen(model):
        for job, todo in pending:
            minimal = ATTACKS.get(job.attack).meta["kind"] == "minimal"
            attack = ATTACKS.get(job.attack).factory(job.params)
            done = {r["id"]: _done_positions(db, r["id"]) for r in todo}
            units = [todo] if minimal else [[r] for r in todo]
            for unit in units:
                for b in range(n_batches):
                    pos = list(range(b * batch_size, min((b + 1) * batch_size, n)))
                    need = [r for r in unit if not set(pos) <= done[r["id"]]]
                    if task is not None:
                        eps_text = ",".join(f"{r['eps']:g}" for r in unit)
                        progress.update(task, description=f"{job.label or job.attack} ε={eps_text}")
                    if not need:
                        if task is not None:
                            progress.advance(task)
                        continue
                    t0 = time.monotonic()
                    idx = idx_all[pos]
                    x, y = test.get(idx)
                    x, y = x.to(device), y.to(device)
                    clean_pred = _predict(model, x)
                    torch.manual_seed(batch_seed(seed, b))
                    rows: dict[str, list[dict[str, Any]]] = {}
                    if minimal:
                        raw = attack(model, x, y)
                        judged, min_norm = _judge_minimal(
                            model, x, y, clean_pred, raw, [r["eps"] for r in need], need[0]["norm"]
                        )
                        for r in need:
                            adv, adv_pred = judged[r["eps"]]
                            rows[r["id"]] = _sample_rows(
                                r["id"], pos, idx, y, clean_pred, x, adv, adv_pred, min_norm
                            )
                    else:
                        r = need[0]
                        adv = attack(model, x, y, r["eps"])
                        rows[r["id"]] = _sample_rows(
                            r["id"], pos, idx, y, clean_pred, x, adv, _predict(model, adv)
                        )
                    dt = time.monotonic() - t0
                    with db.conn:  # the batch's rows and run progress land together or not at all
                        for r in need:
                            db["samples"].insert_all(rows[r["id"]], pk=("run_id", "idx"))
                            db.execute(
                                "update runs set wall_s = wall_s + ? where id = ?", [dt, r["id"]]
                            )
                            done[r["id"]].update(pos)
                    if task is not None:
                        progress.advance(task)
            with db.conn:
                for r in todo:
                    if len(done[r["id"]]) == n:
                        wall = db["runs"].get(r["id"])["wall_s"] or 0.0
                        db["runs"].update(
                            r["id"],
                            {
                                "status": "complete",
                                "finished_at": now(),
                                "samples_per_s": n / wall if wall else None,
                            },
                        )
    return summarise(
        db,
        [r["id"] for _, rows in plans for r in rows],
        reused={r["id"] for _, rows in plans for r in rows}
        - {r["id"] for _, todo in pending for r in todo},
    )


def summarise(db, run_ids: Sequence[str], reused: set[str] | None = None) -> list[RunSummary]:
    out = []
    for rid in run_ids:
        run = db["runs"].get(rid)
        n, robust = db.execute(
            "select count(*), coalesce(sum(adv_pred = label), 0) from samples where run_id = ?",
            [rid],
        ).fetchone()
        out.append(
            RunSummary(
                rid,
                run["attack"],
                run["label"],
                run["eps"],
                n,
                robust,
                run["status"],
                run["wall_s"] or 0.0,
                rid in (reused or set()),
            )
        )
    return out
