"""The main job: standard model -> jacobian-hardened copy -> carlini-eval on both -> report.

Each step is stored under a fixed name and config, so a second invocation (after Ctrl-C,
say) skips what is done and resumes what is not.
"""

from __future__ import annotations

from advbench.env import resolve_device
from advbench.errors import unknown
from advbench.store import open_db

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


def check_scale(scale: str) -> None:
    from advbench.suites import SCALES

    if scale not in ("smoke", "cpu"):
        raise unknown("scale", scale, [s for s in SCALES if s != "full"])


def run_demo(db_path, device: str, scale: str, *, out, progress_factory,
             step_done=lambda: None) -> None:  # fmt: skip
    """The demo through the public API (`advbench.api`), as a script of a user's would."""
    from advbench import api
    from advbench import report as rep
    from advbench.suites import load_suite

    check_scale(scale)
    dev = resolve_device(device)
    db = open_db(db_path)
    out.print(f"[bold]1/4[/] train {ARCH} on {DATASET} as {STANDARD}")
    api.train(dataset=DATASET, arch=ARCH, name=STANDARD, device=dev, db=db,
              progress=progress_factory, **TRAIN)  # fmt: skip
    step_done()
    out.print(f"[bold]2/4[/] harden {STANDARD} with jacobian as {HARDENED}")
    api.harden(STANDARD, name=HARDENED, device=dev, db=db, progress=progress_factory, **HARDEN)
    step_done()
    n = load_suite("carlini-eval")["n"][scale]
    for name in (STANDARD, HARDENED):
        out.print(f"[bold]3/4[/] carlini-eval ({scale}, n={n}) on {name}")
        api.evaluate(name, suite="carlini-eval", scale=scale, seed=0, batch_size=100,
                     device=dev, db=db, progress=progress_factory)  # fmt: skip
        step_done()
    out.print("[bold]4/4[/] report")
    rep.print_summary(out, db, [STANDARD, HARDENED])
