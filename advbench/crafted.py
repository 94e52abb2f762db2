"""Examples crafted on a source model, kept so that every target of the same transfer or
black-box row reuses them instead of crafting them again.

A transfer row's examples depend only on the model they are crafted on, never on the
model they are judged against: its source's checksum and gradient, the attack and its
resolved parameters, ε (none for a minimal attack: one search serves every ε), the
batch's test indices, targets and start images, and the batch's seed. fidel's transfer
rows and zantedeschi's black-box rows craft the same examples on one undefended model for
every defended model of the paper (7 or 8 targets), so without this the same search ran
once per target (zantedeschi's JSMA: 522 s per target at cpu scale).

An entry holds what the batch's sample rows take from the crafting: the examples, the
per-instance passes and queries (the cost of crafting them, recorded on every run that
uses them, as if it had crafted them), the restart traces and failed starts, and the
checklist's crafting diagnostics (`advbench.diagnostics`, observed on the source). One
safetensors file per (key) under `crafted/` beside the database, its SHA-256 in the
`crafted` table: a changed or missing file is a miss (crafted again), never a silent
change of a stored number. The cache changes no stored number: a hit gives the tensors
the same crafting would (same seed, same source); `tests/test_crafted.py` compares them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import sqlite_utils
import torch
from safetensors import SafetensorError
from safetensors.torch import load as from_bytes
from safetensors.torch import save as to_bytes

from advbench.attacks import Crafted
from advbench.config import config_hash
from advbench.files import write_atomic
from advbench.store import db_dir, now

DIR = "crafted"


def key(**parts: Any) -> str:
    """The entry's key: a hash of everything the crafting depends on (tensors as lists)."""
    plain = {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in parts.items()}
    return config_hash(plain, length=32)


def load(db: sqlite_utils.Database, k: str):
    """(crafted, (fwd, bwd), diagnostics rows) stored under `k`, or None: no entry, or its
    file is missing or changed (then the caller crafts again and overwrites it)."""
    rows = list(db["crafted"].rows_where("key = ?", [k]))
    if not rows:
        return None
    try:  # read once: the bytes checked are the bytes loaded
        data = (db_dir(db) / rows[0]["path"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != rows[0]["sha256"]:
            return None
        t = from_bytes(data)
    except (SafetensorError, OSError):
        return None
    meta = json.loads(rows[0]["meta"])
    crafted = Crafted(
        t["adv"],
        trace=meta["trace"],
        queries=t.get("queries"),
        init_failed=t["init_failed"].bool() if "init_failed" in t else None,
    )
    return crafted, (t["fwd"], t["bwd"]), meta["diag"]


def save(
    db: sqlite_utils.Database,
    k: str,
    crafted: Crafted,
    cost: tuple[torch.Tensor, torch.Tensor],
    diag: list[dict[str, Any]],
    about: dict[str, Any],
) -> dict[str, Any]:
    """Write the entry's file; return the row to upsert in the batch's transaction."""
    rel = Path(DIR) / f"{k}.safetensors"
    path = db_dir(db) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        "adv": crafted.adv.detach().to("cpu", torch.float32).contiguous(),
        "fwd": cost[0].detach().to("cpu", torch.float32).contiguous(),
        "bwd": cost[1].detach().to("cpu", torch.float32).contiguous(),
    }
    if crafted.queries is not None:
        tensors["queries"] = torch.as_tensor(crafted.queries).detach().cpu().contiguous()
    if crafted.init_failed is not None:
        tensors["init_failed"] = (
            torch.as_tensor(crafted.init_failed).detach().cpu().to(torch.uint8).contiguous()
        )
    data = to_bytes({name: t.clone() for name, t in tensors.items()})  # none may share memory
    write_atomic(path, data)  # a copy crafting the same examples at once renames its own
    return {
        "key": k,
        "path": str(rel),
        "sha256": hashlib.sha256(data).hexdigest(),
        "count": len(crafted.adv),
        "meta": json.dumps({"trace": crafted.trace, "diag": diag}),
        "created_at": now(),
        **about,
    }
