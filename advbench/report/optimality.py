"""Each minimal attack's optimality (AttackBench: Cinà et al. 2024, "AttackBench: Evaluating
Gradient-based Attacks for Adversarial Examples"), from the per-instance minimal norms the
store already holds.

For one model (its current weights) and one norm, take every white-box untargeted minimal
attack run on it (C&W, DeepFool, FMN, HopSkipJump: one search per instance, judged at every
ε). Per instance, an attack's distance d is 0 where the clean input is already
misclassified, the norm of the adversarial it found, or ∞ where it found none. The best
distance d* is the smallest over the attacks that attacked the instance (HopSkipJump's
smaller sample overlaps the others' where the seed is the same). Each attack is scored over
the instances it attacked: with M the largest finite d* there, its robust-accuracy curve
acc(ε) = share of instances with d > ε has the area

    A = ∫₀^M acc(ε) dε = mean(min(d, M))       (exact for the step curve)

and its optimality is 1 − (A − A*) / (c·M − A*), where A* is the best curve's area and c·M
that of an attack that breaks nothing (c: the share of instances with d* > 0). 1: the attack
is the per-instance best everywhere; 0: it does no better than not attacking, up to M.

AttackBench integrates with the trapezoid rule over the distinct distances; the exact area
of the step curve is used here (the two differ by at most one step's width per distance).
"""

from __future__ import annotations

import math

import pandas as pd
import sqlite_utils

_RUNS = """
select r.model, r.norm, coalesce(r.label, r.attack) as attack, r.group_id,
       max(r.finished_at) as finished_at, min(r.id) as run_id
from runs r join models m on m.name = r.model and m.checksum = r.model_checksum
where r.kind = 'minimal' and coalesce(r.threat, 'white-box') = 'white-box'
  and r.targeted is null and r.status = 'complete' and r.norm in ('l2', 'linf')
  and json_extract(r.config, '$.cascade_from') is null  -- a cascade searched only some
group by r.group_id
order by finished_at
"""


def distances(db: sqlite_utils.Database, run_id: str) -> dict[int, float]:
    """Per test index: 0 (clean error), the found adversarial's norm, or inf (none found)."""
    out = {}
    for idx, clean, label, min_norm, failed in db.execute(
        "select idx, clean_pred, label, min_norm, coalesce(init_failed, 0) from samples "
        "where run_id = ?",
        [run_id],
    ):
        if clean != label:
            out[idx] = 0.0
        elif min_norm is None or failed:
            out[idx] = math.inf
        else:
            out[idx] = float(min_norm)
    return out


def optimality(d: list[float], best: list[float]) -> float:
    """AttackBench's optimality of distances `d` against the per-instance best `best`
    (same instances, same order); NaN where no attack found anything to compare."""
    finite = [b for b in best if math.isfinite(b)]
    if not finite or len(d) != len(best):
        return math.nan
    top = max(finite)
    n = len(best)
    area = sum(min(v, top) for v in d) / n
    best_area = sum(min(v, top) for v in best) / n
    worst = sum(1 for b in best if b > 0) / n * top
    if worst - best_area <= 0:
        return math.nan
    return 1.0 - (area - best_area) / (worst - best_area)


def optimality_table(db: sqlite_utils.Database, models: list[str] | None = None) -> pd.DataFrame:
    """One row per (model, norm, minimal attack) where a model's current weights have two
    or more minimal attacks of that norm. Each attack is scored over the instances it
    attacked (its n), against the per-instance best over every one of those attacks that
    attacked that instance (HopSkipJump's smaller sample is compared where it overlaps);
    with the share of the correctly classified it broke, and its median distance over
    those (inf where it broke under half)."""
    cols = ["model", "norm", "attack", "n", "optimality", "broken", "median"]
    if "runs" not in db.table_names():
        return pd.DataFrame(columns=cols)
    latest: dict[tuple[str, str, str], str] = {}
    for r in db.query(_RUNS):
        if models and r["model"] not in models:
            continue
        latest[(r["model"], r["norm"], r["attack"])] = r["run_id"]  # the newest per label
    groups: dict[tuple[str, str], dict[str, str]] = {}
    for (model, norm, attack), run_id in latest.items():
        groups.setdefault((model, norm), {})[attack] = run_id
    rows = []
    for (model, norm), attacks in groups.items():
        if len(attacks) < 2:
            continue
        dist = {a: distances(db, run_id) for a, run_id in attacks.items()}
        best: dict[int, float] = {}
        for d in dist.values():
            for i, v in d.items():
                best[i] = min(v, best.get(i, math.inf))
        for attack in sorted(dist):
            own = sorted(dist[attack])
            d = [dist[attack][i] for i in own]
            correct = [i for i in own if best[i] > 0]
            found = sorted(dist[attack][i] for i in correct)
            broken = sum(math.isfinite(v) for v in found)
            rows.append({
                "model": model, "norm": norm, "attack": attack, "n": len(own),
                "optimality": optimality(d, [best[i] for i in own]),
                "broken": broken / len(correct) if correct else math.nan,
                "median": found[(len(found) - 1) // 2] if found else math.nan,
            })  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def render_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The table as text cells for printing."""
    out = df.copy()
    out["optimality"] = [f"{v:.3f}" if math.isfinite(v) else "n/a" for v in df["optimality"]]
    out["broken"] = [f"{v * 100:.1f} %" if math.isfinite(v) else "n/a" for v in df["broken"]]
    out["median"] = [f"{v:.3g}" if math.isfinite(v) else "∞" for v in df["median"]]
    return out


CAPTION = (
    "Optimality of each minimal attack (AttackBench): 1 − (A − A*) / (c·M − A*), with A the "
    "area under its accuracy–ε curve up to M, the largest per-instance best distance, A* the "
    "per-instance best over the attacks listed for that model and norm that attacked the "
    "instance, c·M the area of an attack that breaks nothing; over the n instances the "
    "attack attacked. broken: "
    "share of the correctly classified it found an adversarial for; median: its median "
    "distance over those (∞: under half)."
)
