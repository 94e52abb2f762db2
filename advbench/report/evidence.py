"""The per-instance evidence behind a table cell, for paired comparisons.

A cell's number is a count or a mean over instances; `of(store, result)` returns those
instances' values keyed by (test index, target) (`store.outcomes`), read from exactly the
runs and measurement that filled the cell. Cells without per-sample rows (clean accuracy,
a setting, the Davies–Bouldin index) have none: such a cell is compared by its interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from advbench.report.stored import StoredRuns
from advbench.store import outcomes


@dataclass
class Evidence:
    values: dict  # key -> robust 1/0 (accuracies) or the metric's value, None = censored
    binary: bool  # an accuracy (McNemar) rather than a per-sample metric
    broken: dict = field(default_factory=dict)  # accuracies: key -> 1 where the attack broke it
    what: str = ""  # which runs or measurement it was read from
    ceiling: dict = field(default_factory=dict)  # censored key -> its largest budget's value


def of(store: StoredRuns, res) -> Evidence | None:
    """The evidence of an evaluated cell (`report.tables.Result`), or None."""
    if res is None or res.status == "empty" or res.model is None:
        return None
    db = store.db
    if res.metric in ("accuracy", "best") and res.runs:
        runs = res.runs if res.metric == "best" else res.runs[:1]
        found = outcomes.robust(db, list(runs))
        return Evidence({k: r for k, (r, _) in found.items()}, True,
                        {k: b for k, (_, b) in found.items()},
                        f"runs {', '.join(runs)}")  # fmt: skip
    if res.metric in ("rho_adv", "rho") and res.runs:
        run = res.runs[0]
        read = outcomes.rho_adv if res.metric == "rho_adv" else outcomes.rho_changed
        return Evidence(read(db, run), False, what=f"run {run}",
                        ceiling=outcomes.ceilings(db, run, res.metric))  # fmt: skip
    model = next((m for m in store.models
                  if (m["name"], m["checksum"]) == (res.model, res.checksum)), None)  # fmt: skip
    if model is None or res.metric in ("clean", "setting", "davies-bouldin"):
        return None
    m = store.measurement(model, res.metric, res.runs[0] if res.runs else None)
    if m is None:
        return None
    values = outcomes.measured(db, m)
    return None if values is None else Evidence(values, False, what=f"measurement {m['id']}")
