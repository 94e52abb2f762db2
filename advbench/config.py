"""Canonical JSON and content hashes: a run's identity is the hash of its configuration."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any


def _normalise(value: Any) -> Any:
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        # repr round-trips; 0.1 and 0.10000000000000001 hash alike.
        return float(repr(value))
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace: equal configurations give equal strings."""
    return json.dumps(_normalise(value), sort_keys=True, separators=(",", ":"))


def config_hash(value: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def sha256_file(path: Path) -> str:
    """A file's SHA-256, read in 1 MiB chunks (checkpoints, imported weights, examples)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
