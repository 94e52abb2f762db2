"""Adversarial examples kept beside the database for the runs whose tables need them.

One safetensors file per (run, batch) under `examples/RUN_ID/` next to the database; the
`examples` table records its path and SHA-256, written in the batch's transaction, so an
interrupted run keeps every finished batch's examples and a changed file is refused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import sqlite_utils
import torch
from safetensors.torch import load_file, save_file

from advbench.errors import BadInput
from advbench.store import db_dir


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_batch(
    db: sqlite_utils.Database, run_id: str, batch: int, positions: list[int], adv: torch.Tensor
) -> dict:
    """Write one batch's examples to disk; return the row to insert in the batch's
    transaction (the file is rewritten, not appended, if a killed batch is run again)."""
    rel = Path("examples") / run_id / f"{batch:05d}.safetensors"
    path = db_dir(db) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        "adv": adv.detach().to("cpu", torch.float32).contiguous(),
        "position": torch.tensor(positions, dtype=torch.int64),
    }
    save_file(tensors, str(path))
    return {"run_id": run_id, "batch": batch, "path": str(rel), "sha256": _sha256(path),
            "count": len(positions)}  # fmt: skip


def load(db: sqlite_utils.Database, run_id: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(positions, examples) of a run, in position order; refuses a file whose checksum
    differs from the recorded one."""
    rows = list(db["examples"].rows_where("run_id = ?", [run_id], order_by="batch"))
    if not rows:
        raise BadInput(f"run {run_id} has no stored adversarial examples")
    pos, adv = [], []
    for r in rows:
        path = db_dir(db) / r["path"]
        if not path.exists():
            raise BadInput(f"run {run_id}: examples file {path} is missing")
        if _sha256(path) != r["sha256"]:
            raise BadInput(f"run {run_id}: examples file {path} changed since it was stored")
        t = load_file(str(path))
        pos.append(t["position"])
        adv.append(t["adv"])
    positions = torch.cat(pos)
    order = positions.argsort()
    return positions[order], torch.cat(adv)[order]
