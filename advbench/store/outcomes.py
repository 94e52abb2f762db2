"""Per-instance outcomes of stored runs, keyed for pairing (`advbench.paired`).

An instance's key is (test-set index, target): target None on untargeted rows, so two runs
on the same seeded test samples pair instance by instance, and a targeted row's instances
group by image. Instances an attack could not start on are left out (neither robust nor
broken), as in every count.
"""

from __future__ import annotations

import json

import sqlite_utils

from advbench.store import CHANGED, ROBUST

Key = tuple[int, int | None]
BROKEN = "s.clean_pred = s.label and s.adv_pred != s.label and not coalesce(s.init_failed, 0)"


def robust(db: sqlite_utils.Database, run_ids: list[str]) -> dict[Key, tuple[int, int]]:
    """(robust, broken) per instance, over one run or the worst case over several: robust
    only where robust in every run, broken where any run broke it (a clean error is
    neither), over the instances present and started in all of them (the report's worst
    case, `report.worst_case`)."""
    if not run_ids:
        return {}
    marks = ", ".join("?" * len(run_ids))
    rows = db.execute(
        f"select s.idx, s.target, count(*), sum({ROBUST}), max({BROKEN}) from samples s "
        f"where s.run_id in ({marks}) and not coalesce(s.init_failed, 0) "
        "group by s.idx, coalesce(s.target, -1)",
        list(run_ids),
    ).fetchall()
    return {
        (int(i), None if t is None else int(t)): (int(r == len(run_ids)), int(b or 0))
        for i, t, count, r, b in rows
        if count == len(run_ids)
    }


def rho_adv(db: sqlite_utils.Database, run_id: str) -> dict[Key, float | None]:
    """dᵢ / ‖xᵢ‖₂ of a minimal run per instance the model classified right; None (censored)
    where the attack found no perturbation (`report.rho_adv_values` averages the others)."""
    rows = db.execute(
        "select s.idx, s.target, case when s.min_norm is not null then s.min_norm / s.x_l2 end "
        "from samples s where s.run_id = ? and s.clean_pred = s.label and s.x_l2 > 0 "
        "and not coalesce(s.init_failed, 0)",
        [run_id],
    )
    return {(int(i), _t(t)): v for i, t, v in rows}


def rho_changed(db: sqlite_utils.Database, run_id: str) -> dict[Key, float | None]:
    """‖δ‖ / ‖x‖ in the run's norm per instance whose prediction the attack changed
    (`report.tables.rho_changed_values`); None (censored) on the others it attacked."""
    ratio, x = _ratio(db, run_id)
    rows = db.execute(
        f"select s.idx, s.target, case when {CHANGED} then {ratio} end from samples s "
        f"where s.run_id = ? and not coalesce(s.init_failed, 0) and {x} > 0",
        [run_id],
    )
    return {(int(i), _t(t)): v for i, t, v in rows}


def ceilings(db: sqlite_utils.Database, run_id: str, kind: str) -> dict[Key, float]:
    """Per instance, the largest budget the run searched, in the unit of `kind`'s values
    (rho: ε / ‖x‖ in the run's norm; rho_adv: ε / ‖x‖₂): what an instance it did not break
    is censored at. Empty for a run without a finite budget (DeepFool unbounded)."""
    eps = db.execute("select eps from runs where id = ?", [run_id]).fetchone()
    if not eps or eps[0] is None or eps[0] != eps[0] or eps[0] == float("inf"):
        return {}
    x = _ratio(db, run_id)[1] if kind == "rho" else "s.x_l2"
    rows = db.execute(f"select s.idx, s.target, ? / {x} from samples s where s.run_id = ? "
                      f"and {x} > 0", [eps[0], run_id])  # fmt: skip
    return {(int(i), _t(t)): v for i, t, v in rows}


def _ratio(db: sqlite_utils.Database, run_id: str) -> tuple[str, str]:
    """(‖δ‖ / ‖x‖, ‖x‖) in the run's norm, as SQL (L2 for an attack without one)."""
    norm = db.execute("select norm from runs where id = ?", [run_id]).fetchone()
    if norm and norm[0] == "linf":
        return "s.linf / s.x_linf", "s.x_linf"
    return "s.l2 / s.x_l2", "s.x_l2"


def measured(db: sqlite_utils.Database, measurement: dict) -> dict | None:
    """A measurement's per-sample values keyed by instance, or None where they cannot be.

    At clean test points the values follow the seeded permutation's order (its first n,
    `engine.select_samples`), so position i of one seed is the same image on every model:
    the key is ("test point", seed, i). At a run's examples they follow the run's
    changed positions in order, when the run kept an example for every instance."""
    values = json.loads(measurement.get("per_sample") or "[]")
    if measurement.get("run_id") is None:  # the i-th test point of the seed's permutation
        seed = measurement.get("seed")
        return {("test point", seed, i): float(v) for i, v in enumerate(values)}
    run_id = measurement["run_id"]
    kept = db.execute(
        "select coalesce(sum(count), 0) from examples where run_id = ?", [run_id]
    ).fetchone()[0]
    total = db.execute("select count(*) from samples where run_id = ?", [run_id]).fetchone()[0]
    if not kept or kept != total:
        return None
    rows = db.execute(
        f"select s.idx, s.target from samples s where s.run_id = ? and {CHANGED} "
        "order by s.position",
        [run_id],
    ).fetchall()
    if len(rows) != len(values):
        return None
    return {(int(i), _t(t)): float(v) for (i, t), v in zip(rows, values, strict=True)}


def _t(target) -> int | None:
    return None if target is None else int(target)
