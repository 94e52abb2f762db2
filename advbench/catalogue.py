"""The model catalogue: what is stored under a name, and how to load it.

Every layer above the domain needs it (training stores models, the engine and the
measurements load them, importing registers them), so it lives apart from training:
loading a model never imports the training code. Weights are verified against the
database's sha256 on load.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from advbench import defenses
from advbench.errors import BadInput, unknown
from advbench.store import db_dir, now


@dataclass(frozen=True)
class StoredModel:
    row: dict[str, Any]
    created: bool  # False: an identical model was already stored and nothing was trained

    @property
    def name(self) -> str:
        return self.row["name"]

    @property
    def clean_interval(self) -> tuple[float, float]:
        return clean_interval(self.row)


def clean_interval(row: dict[str, Any]) -> tuple[float, float]:
    """The 95 % Wilson interval of a stored model's clean accuracy."""
    from advbench.metrics import wilson_interval

    return wilson_interval(round(row["clean_accuracy"] * row["clean_n"]), row["clean_n"])


def model_row(db: sqlite_utils.Database, name: str) -> dict[str, Any]:
    rows = list(db["models"].rows_where("name = ?", [name]))
    if not rows:
        stored = [r["name"] for r in db["models"].rows]
        raise unknown("model", name, stored or ["(none stored yet: run advbench train)"])
    return rows[0]


def load_model(db: sqlite_utils.Database, name: str, device: str = "cpu"):
    """Load a stored model; its weights must match the checksum recorded in the database."""
    from advbench.models.checkpoint import load_checkpoint, load_wrapper_doc

    row = model_row(db, name)
    if json.loads(row["config"]).get("kind") == "wrap":  # an inference-time defense
        doc = load_wrapper_doc(db_dir(db) / row["path"], row["checksum"])
        base, spec, parent = load_model(db, doc["parent"], device)
        if parent["checksum"] != doc["parent_sha256"]:
            raise BadInput(
                f"model {name!r} wraps {doc['parent']!r} with sha256 "
                f"{doc['parent_sha256'][:12]}…, which is now {parent['checksum'][:12]}… "
                f"(retrained?); re-run advbench harden --force for {name!r}"
            )
        wrapped = defenses.wrapper_for(doc["defense"], doc["params"])(base)
        return wrapped.to(device).eval(), spec, row
    expected = json.loads(row["spec"]) if row.get("spec") else None
    model, spec, _ = load_checkpoint(db_dir(db) / row["path"], row["checksum"], expected)
    return model.to(device), spec, row


# A model name is a file stem under models/: letters, digits and . _ + - only, starting
# with a letter or digit, at most 100 characters, no "..": never a path.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")


def validate_name(db, name: str) -> None:
    """Refuse a model name that is not a plain file stem, or that differs from a stored
    model's name only by case or dots (the two would share files on some file systems)."""
    if not NAME_RE.fullmatch(name or "") or ".." in name:
        raise BadInput(
            f"--name {name!r} is not a valid model name: use 1-100 letters, digits and . _ + - "
            "(starting with a letter or digit, no '..', no '/')"
        )
    if db is None:  # the pattern alone, before a database is opened
        return
    key = name.lower().replace(".", "")
    for (other,) in db.execute("select name from models"):
        if other != name and other.lower().replace(".", "") == key:
            raise BadInput(
                f"--name {name!r} differs from the stored model {other!r} only by case or "
                "dots; choose another name"
            )


def existing(db, name: str, cfg_hash: str, force: bool) -> dict[str, Any] | None:
    rows = list(db["models"].rows_where("name = ?", [name]))
    if not rows or force:
        return None
    if rows[0]["config_hash"] == cfg_hash:
        return rows[0]
    raise BadInput(
        f"model {name!r} is already stored with a different configuration; "
        "choose another --name or pass --force to replace it"
    )


def commit_model(db, name: str, cfg_hash: str, force: bool, write, make_row):
    """Store a model so that who wins a name is decided when it is written (issue 31): its
    files are written under a private name (`write(stem)` returns the checksum), then one
    write transaction checks the name again (free, or stored with this configuration, or
    `force`), moves the files into place and records `make_row(checksum)`. Two processes
    that made different models under one name: the first to commit is stored, the other is
    refused with `existing`'s one line and leaves no file; with the same configuration both
    get the one stored model. Returns (row, created)."""
    import os
    import uuid

    from advbench.models.checkpoint import beside
    from advbench.store import transaction

    folder = db_dir(db) / "models"
    incoming = folder / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    stem = incoming / f"{name}-{uuid.uuid4().hex[:12]}"
    try:
        checksum = write(stem)
        with transaction(db):
            stored = existing(db, name, cfg_hash, force)
            if stored:
                return stored, False
            row = make_row(checksum)
            for suffix in (".safetensors", ".json"):
                if beside(stem, suffix).exists():
                    os.replace(beside(stem, suffix), beside(folder / name, suffix))
                else:  # a wrapper (JSON only) replacing a trained model's weights
                    beside(folder / name, suffix).unlink(missing_ok=True)
            db["models"].upsert(row, pk="name")
        return row, True
    finally:
        for suffix in (".safetensors", ".json", ".safetensors.tmp", ".json.tmp"):
            beside(stem, suffix).unlink(missing_ok=True)


def model_record(
    name, checksum, spec, config, cfg_hash, parent, defense, defense_config, accuracy,
    seed, history, env_id, t0,
) -> dict[str, Any]:  # fmt: skip
    """A `models` row: what the model is, how it was made, and its clean accuracy."""
    acc, n = accuracy
    return {
        "name": name,
        "checksum": checksum,
        "arch": spec.arch,
        "dataset": spec.dataset,
        "activation": spec.activation,
        "spec": json.dumps(spec.to_dict()),
        "config": json.dumps(config),
        "config_hash": cfg_hash,
        "parent": parent,
        "defense": defense,
        "defense_config": json.dumps(defense_config) if defense else None,
        "clean_accuracy": acc,
        "clean_n": n,
        "seed": seed,
        "path": f"models/{name}",
        "history": json.dumps(history),
        "env_id": env_id,
        "created_at": now(),
        "wall_s": time.monotonic() - t0,
    }
