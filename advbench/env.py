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
from advbench.errors import BadInput
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


def _cpu() -> str:
    """The host CPU's model and the instruction set torch's CPU kernels dispatch to (e.g.
    "AMD EPYC, AVX2"): two machines with the same library versions train to different last
    bits when these differ, so a result's provenance names them."""
    name = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.partition(":")[2].strip() or name
                break
    except OSError:
        pass
    try:
        import torch

        return f"{name}, {torch.backends.cpu.get_cpu_capability()}"
    except (ImportError, AttributeError):
        return name


DEVICES = ("auto", "cpu", "cuda", "cuda:N")


def resolve_device(name: str) -> str:
    """auto, cpu, cuda or cuda:N; a CUDA device this machine does not have is refused."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    kind, sep, index = name.partition(":")
    if kind != "cuda" or (sep and not index.isdigit()):
        raise BadInput(f"--device {name!r} is not a device; valid choices: {', '.join(DEVICES)}")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise BadInput(f"--device {name}: this machine has no CUDA device; use cpu or auto")
    if sep and int(index) >= count:
        raise BadInput(
            f"--device {name}: this machine has {count} CUDA device(s) (cuda:0-{count - 1})"
        )
    return name


def describe(device: str) -> dict[str, str | None]:
    env = {
        "advbench": __version__,
        "python": platform.python_version(),
        **{key: _version(dist) for key, dist in _PACKAGES.items()},
        "device": device,
        "git_commit": _git_commit(),
        # the CPU is part of the platform's text (no schema change): its kernels decide the
        # last bits of what a run trains and computes
        "platform": f"{sys.platform}-{platform.machine()} ({_cpu()})",
    }
    if device.startswith("cuda"):
        import torch

        env["device"] = f"{device} ({torch.cuda.get_device_name(0)})"
    return env


def record_environment(db: sqlite_utils.Database, device: str) -> str:
    """Store this environment once (keyed by its content hash) and return its id.

    One atomic INSERT OR IGNORE, not a check then an insert: copies of a command started
    together on one store each find the row absent and race to insert it (CI, 2026-12-07).
    """
    env = describe(device)
    env_id = config_hash(env)
    db["environments"].insert({"id": env_id, **env, "first_seen": now()}, pk="id", ignore=True)
    return env_id
