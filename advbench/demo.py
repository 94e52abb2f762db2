"""The main job: standard model -> jacobian-hardened copy -> carlini-eval on both -> report.

Each step is stored under a fixed name and config, so a second invocation (after Ctrl-C,
say) skips what is done and resumes what is not.
"""

from __future__ import annotations

from advbench.env import record_environment, resolve_device
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
    from advbench import report as rep
    from advbench.engine import run_jobs
    from advbench.suites import load_suite, suite_jobs
    from advbench.train import harden_model, load_model, train_model

    check_scale(scale)
    dev = resolve_device(device)
    db = open_db(db_path)
    out.print(f"[bold]1/4[/] train {ARCH} on {DATASET} as {STANDARD}")
    with progress_factory() as p:
        train_model(db, name=STANDARD, dataset=DATASET, arch=ARCH, device=dev, progress=p, **TRAIN)
    step_done()
    out.print(f"[bold]2/4[/] harden {STANDARD} with jacobian as {HARDENED}")
    with progress_factory() as p:
        harden_model(db, parent=STANDARD, name=HARDENED, device=dev, progress=p, **HARDEN)
    step_done()
    suite = load_suite("carlini-eval")
    env_id = record_environment(db, dev)
    for name in (STANDARD, HARDENED):
        model, _, row = load_model(db, name, dev)
        jobs, n = suite_jobs(suite, row["dataset"], scale)
        out.print(f"[bold]3/4[/] carlini-eval ({scale}, n={n}) on {name}")
        with progress_factory() as p:
            run_jobs(
                db,
                model,
                row,
                jobs,
                n=n,
                seed=0,
                batch_size=100,
                env_id=env_id,
                device=dev,
                scale=scale,
                progress=p,
            )
        step_done()
    out.print("[bold]4/4[/] report")
    rep.print_summary(out, db, [STANDARD, HARDENED])
