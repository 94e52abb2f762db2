"""A run's result as the commands show it: robust accuracy of n instances with its 95 %
Wilson interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from advbench.metrics import wilson_interval
from advbench.store import SAMPLE_COUNTS


@dataclass
class RunSummary:
    id: str
    attack: str
    label: str | None
    eps: float
    n: int
    robust: int
    status: str
    wall_s: float
    reused: bool
    targeted: str | None = None
    threat: str = "white-box"
    init_failed: int = 0  # instances the attack could not start on (not in n)
    gradient: str | None = None  # through a non-differentiable defense (feature-squeezing)

    @property
    def accuracy(self) -> float:
        return self.robust / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.robust, self.n)


def summarise(db, run_ids: Sequence[str], reused: set[str] | None = None) -> list[RunSummary]:
    out = []
    for rid in run_ids:
        run = db["runs"].get(rid)
        n, robust, failed = db.execute(
            f"select {SAMPLE_COUNTS} from samples s where s.run_id = ?", [rid]
        ).fetchone()
        out.append(
            RunSummary(
                rid,
                run["attack"],
                run["label"],
                run["eps"],
                n,
                robust,
                run["status"],
                run["wall_s"] or 0.0,
                rid in (reused or set()),
                run["targeted"],
                run["threat"] or "white-box",
                failed,
                run["gradient"],
            )
        )
    return out
