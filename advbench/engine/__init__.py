"""Run attacks: expand (attack x ε) into runs, skip finished ones, batch loop, one
transaction per batch.

A run's id is the hash of its canonical configuration (model checksum, attack, resolved
parameters, ε, samples, seed, batch size), so the same request twice is the same run.
Each batch's per-sample rows are written in one transaction, so an interruption loses at
most that batch, and each batch is seeded from (seed, batch), so a resumed run ends with
the per-sample results an uninterrupted one gives.

The engine's parts, one concept each: `instances` (which test samples), `identity` (a run's
id, registration, shortcut chains and cascades), `counting` (passes per instance), `rows`
(a batch and its sample rows), `judging` (a minimal attack at every ε), `sources` (where a
transfer row crafts, which gradient), `loop` (the batch loop, `run_jobs`), `summary`.
"""

from advbench.engine.counting import Counted
from advbench.engine.identity import early_stopped, run_rows
from advbench.engine.instances import Instances, make_instances, select_samples, target_starts
from advbench.engine.judging import judge_minimal
from advbench.engine.loop import run_jobs
from advbench.engine.rows import Batch
from advbench.engine.sources import (
    NoSource,
    frozen,
    no_gradient_choice,
    resolve_source,
    set_gradient,
)
from advbench.engine.summary import RunSummary, summarise

__all__ = [
    "Batch", "Counted", "Instances", "NoSource", "RunSummary", "early_stopped",
    "frozen", "judge_minimal", "make_instances", "no_gradient_choice", "resolve_source",
    "run_jobs", "run_rows", "select_samples", "set_gradient", "summarise", "target_starts",
]  # fmt: skip
