"""Provenance: the library versions, device and git commit every stored result ran with."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import sqlite_utils

from advbench import __version__
from advbench.config import config_hash
from advbench.store import now

_PACKAGES = {
    "torch": "torch",
    "torchvision": "torchvision",
    "foolbox": "foolbox",
    "art": "adversarial-robustness-toolbox",
    "numpy": "numpy",
}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def describe(device: str) -> dict[str, str | None]:
    env = {
        "advbench": __version__,
        "python": platform.python_version(),
        **{key: _version(dist) for key, dist in _PACKAGES.items()},
        "device": device,
        "git_commit": _git_commit(),
        "platform": f"{sys.platform}-{platform.machine()}",
    }
    if device.startswith("cuda"):
        import torch

        env["device"] = f"{device} ({torch.cuda.get_device_name(0)})"
    return env


def record_environment(db: sqlite_utils.Database, device: str) -> str:
    """Store this environment once (keyed by its content hash) and return its id."""
    env = describe(device)
    env_id = config_hash(env)
    if not db["environments"].count_where("id = ?", [env_id]):
        db["environments"].insert({"id": env_id, **env, "first_seen": now()})
    return env_id
