"""The evaluation checklist: is the evaluation behind a model's numbers to be trusted?

The automatable items of Carlini et al. 2019 ("On Evaluating Adversarial Robustness", §5
and its checklist) and the indicators of Pintor et al. 2022 ("Indicators of Attack
Failure"), evaluated on the stored runs of one model, mostly per instance. Each check is
one small function of plain data, returning a `Verdict`: pass, warn or fail (skip where
the store holds nothing it can read), the numbers behind it, and the command that would
settle a warning. `gather(db, model)` reads what the checks need; `run(db, model)` runs
them all.

Thresholds are fixed here, not tuned per model: a share of the instances, with the count
beside it so a reader can judge a small n.

One family per module: `comparisons` (attacks against each other), `optimisation`
(indicators of a failed search), `behaviour` (the model's gradients, stability and
outputs); `base` holds the verdict and the helpers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict

import sqlite_utils

from advbench.checks.base import (
    SOURCES,
    Run,
    Verdict,
)
from advbench.checks.behaviour import check_gradients, check_outputs, check_unstable
from advbench.checks.comparisons import (
    check_effort,
    check_iterative,
    check_monotone,
    check_optimality,
    check_unbounded,
    check_white_box,
)
from advbench.checks.optimisation import (
    INCOMPLETE_DROP,
    check_incomplete,
    check_silent,
    check_transfer,
    still_falling,
)
from advbench.errors import unknown
from advbench.store import is_robust, recency

CHECKS: dict[str, Callable[[str, list[Run]], Verdict]] = {
    "monotone": check_monotone,
    "unbounded": check_unbounded,
    "iterative": check_iterative,
    "white-box": check_white_box,
    "effort": check_effort,
    "silent": check_silent,
    "incomplete": check_incomplete,
    "gradients": check_gradients,
    "unstable": check_unstable,
    "outputs": check_outputs,
    "transfer": check_transfer,
    "optimality": check_optimality,
}


_SAMPLE_COLS = ("position", "idx", "target", "label", "clean_pred", "adv_pred", "init_failed",
                "trace", "best_norm", "loss_trace", "grad_zero", "grad_nonfinite", "grad_passes",
                "grad_unavailable", "noise_flips", "output_kind", "source_success",
                "min_norm")  # fmt: skip


def gather(db: sqlite_utils.Database, model: str) -> list[Run]:
    """The model's runs (the newest complete run per label, threat, targeting and ε; a
    partial one where none is complete), each with its instance rows. Runs of a suite row
    that has changed since (stale: they fill no table cell) are left out, and so are cascade
    runs: a row of a cascade holds what earlier rows broke, so it is no attack's own
    result (the white-box check would count a transfer break as a white-box one)."""
    names = [r["name"] for r in db.query("select name from models")]
    if model not in names:
        raise unknown("model", model, sorted(names) or ["(none stored)"])
    rows = list(
        db.query(
            "select r.*, coalesce(r.threat, 'white-box') as threat_ from runs r "
            "where r.model = ? and json_extract(r.config, '$.cascade_from') is null "
            "order by r.rowid",  # insertion order: ties keep it (store.recency sorts stably)
            [model],
        )
    )
    from advbench.suites import is_current

    recipes: dict = {}  # a suite run whose row has changed since is not the model's result
    keys = ("suite", "label", "scale", "attack", "config")
    rows = [r for r in rows if is_current(*(r[k] for k in keys), recipes)]
    rows.sort(key=lambda r: recency(r["status"], r["finished_at"], r["started_at"]))
    latest: dict[tuple, dict] = {}
    for r in rows:  # later rows win (store.recency): complete after partial, newer after older
        key = (r["label"] or r["attack"], r["threat_"], r["source_model"], r["targeted"],
               r["eps"], r["attack"])  # fmt: skip
        latest[key] = r
    out = []
    for r in latest.values():
        cols = ", ".join(f"s.{c}" for c in _SAMPLE_COLS)
        query = f"select {cols} from samples s where s.run_id = ? order by s.position"
        samples = [dict(s) for s in db.query(query, [r["id"]])]
        started = [s for s in samples if not s["init_failed"]]
        if not started:
            continue
        params = json.loads(r["config"] or "{}").get("params", {})
        out.append(Run(r["id"], r["attack"], r["label"] or r["attack"], r["norm"], r["kind"],
                       float(r["eps"]), r["targeted"], r["threat_"], params,
                       sum(is_robust(s) for s in started), len(started), rows=started))  # fmt: skip
    return out


def run(db: sqlite_utils.Database, model: str, runs: list[Run] | None = None) -> list[Verdict]:
    runs = gather(db, model) if runs is None else runs
    return [check(model, runs) for check in CHECKS.values()]


def as_dicts(verdicts: list[Verdict]) -> list[dict]:
    return [asdict(v) for v in verdicts]


__all__ = [
    "CHECKS", "SOURCES", "Run", "Verdict", "as_dicts", "gather", "run", "still_falling",
    "INCOMPLETE_DROP", "check_effort", "check_gradients", "check_incomplete", "check_iterative",
    "check_monotone", "check_outputs", "check_silent", "check_transfer", "check_unbounded",
    "check_unstable", "check_white_box",
]  # fmt: skip
