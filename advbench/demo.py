"""The main job: standard model -> jacobian-hardened copy -> carlini-eval on both -> report.

Its steps are data (advbench.steps) that `api.demo` runs. Each is stored under a fixed name
and config, so a second invocation (after Ctrl-C, say) skips what is done and resumes what
is not.
"""

from __future__ import annotations

from advbench.errors import unknown
from advbench.steps import Step

DATASET = "mnist-5k"
ARCH = "madry-mnist"
STANDARD = "demo-standard"
HARDENED = "demo-jacobian"
TRAIN = {
    "epochs": 5,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "seed": 0,
}
HARDEN = {
    "defense": "jacobian",
    "params": {"lambda": 0.05, "projections": 1},
    "epochs": 8,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 1e-4,
    "weight_decay": 0.0,
    "seed": 0,
}


def check_demo_scale(scale: str) -> None:
    from advbench.suites import SCALES

    if scale not in ("smoke", "cpu"):
        raise unknown("scale", scale, [s for s in SCALES if s != "full"])


def steps(scale: str, *, device: str = "auto") -> list[tuple[str, str, Step]]:
    """The demo's steps before its report: (number, what it does, the step)."""
    from advbench.suites import load_suite

    check_demo_scale(scale)
    n = load_suite("carlini-eval")["n"][scale]
    train = Step("train", {"dataset": DATASET, "arch": ARCH, "name": STANDARD, **TRAIN,
                           "device": device})  # fmt: skip
    harden = Step("harden", {"model": STANDARD, "name": HARDENED, **HARDEN, "device": device})
    return [
        ("1/4", f"train {ARCH} on {DATASET} as {STANDARD}", train),
        ("2/4", f"harden {STANDARD} with jacobian as {HARDENED}", harden),
        *[
            ("3/4", f"carlini-eval ({scale}, n={n}) on {name}",
             Step("attack", {"model": [name], "suite": "carlini-eval", "scale": scale,
                             "seed": 0, "batch_size": 100, "device": device}))
            for name in (STANDARD, HARDENED)
        ],
    ]  # fmt: skip
