"""Provenance: the environment a result was made in names the host CPU and the instruction
set torch's CPU kernels dispatch to, since identical library versions on two hosts train to
different last bits (zantedeschi's CNN: sha256 da4293fd… and 10177253… under one recorded
environment, 2026-12-07)."""

from pathlib import Path

import torch

from advbench.env import describe, record_environment
from advbench.store import open_db


def test_platform_names_the_cpu_model_and_torchs_kernel_isa():
    platform = describe("cpu")["platform"]
    assert torch.backends.cpu.get_cpu_capability() in platform
    info = Path("/proc/cpuinfo")
    if info.exists():
        model = next((line.partition(":")[2].strip() for line in info.read_text().splitlines()
                      if line.startswith("model name")), None)  # fmt: skip
        if model:
            assert model in platform


def test_another_cpu_is_another_environment(tmp_path, monkeypatch):
    import advbench.env as env

    db = open_db(tmp_path / "a.db")
    first = record_environment(db, "cpu")
    assert record_environment(db, "cpu") == first  # the same host: one row
    monkeypatch.setattr(env, "_cpu", lambda: "Other CPU, AVX512")
    second = record_environment(db, "cpu")
    assert second != first
    rows = {r["id"]: r["platform"] for r in db["environments"].rows}
    assert rows[second].endswith("(Other CPU, AVX512)") and len(rows) == 2
