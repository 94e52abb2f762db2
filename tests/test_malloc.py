"""The console script keeps freed memory in the process: the kernel stops zeroing fresh pages
for every activation an attack step frees and reallocates (advbench/malloc.py)."""

import os
import subprocess
import sys

import pytest

_PROBE = """
import resource, sys, torch
if sys.argv[1] == "hold":
    from advbench.malloc import hold_freed_memory
    assert hold_freed_memory()
x, conv = torch.rand(64, 1, 28, 28), torch.nn.Conv2d(1, 32, 3)
for _ in range(5):
    conv(x).relu().sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    conv(x).relu().sum()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, **env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], env={**clean, **env},
                         capture_output=True, text=True, check=True)  # fmt: skip
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_held_memory_cuts_the_page_faults_of_repeated_steps():
    # measured 73,787 against 4,056 for these 50 steps (18x); a tenfold margin either way
    # would still show whether the setting took
    assert _faults("hold") * 5 < _faults("plain")


def test_a_users_malloc_settings_are_left_alone(monkeypatch):
    from advbench.malloc import hold_freed_memory

    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert hold_freed_memory() is False


def test_the_console_script_holds_freed_memory(monkeypatch):
    import advbench.cli as cli

    called = []
    monkeypatch.setattr(cli, "hold_freed_memory", lambda: called.append(True) or True)
    monkeypatch.setattr(sys, "argv", ["advbench", "models", "--db", os.devnull + "-nope/a.db"])
    with pytest.raises(SystemExit):
        cli.main()
    assert called == [True]
