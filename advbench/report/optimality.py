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

Against a fixed reference (issue 30; suite `optimality-reference`, attack `reference-min`: a
high-budget search from an implementation the suites do not call, stored as its own rows):
where one is stored for the model and norm, each attack is scored over the instances both
attacked against d* = min(reference, the attack's own d), so improving one attack never
lowers another's score, an attack that beats the reference on an instance is not penalised
there, and a norm with a single minimal attack gets a real figure. Without one, the best
over the listed attacks is the reference, as AttackBench does, and a norm needs two.
"""

from __future__ import annotations

import math

import pandas as pd
import sqlite_utils

from advbench.metrics import OPTIMALITY_WARN, REFERENCE_ATTACK, instance_distance, optimality

_RUNS = """
select r.model, r.norm, coalesce(r.label, r.attack) as attack, r.attack as name, r.group_id,
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
        out[idx] = instance_distance(clean, label, min_norm, failed)
    return out




def optimality_table(db: sqlite_utils.Database, models: list[str] | None = None) -> pd.DataFrame:
    """One row per (model, norm, minimal attack): scored against the stored fixed reference
    where there is one (`against` names it), else against the per-instance best over every
    minimal attack of that model and norm that attacked the instance (HopSkipJump's smaller
    sample is compared where it overlaps; `against` is "best of listed"; a norm needs two
    attacks). With the share of the correctly classified it broke, and its median distance
    over those (inf where it broke under half)."""
    cols = ["model", "norm", "attack", "n", "optimality", "broken", "median", "against", "name"]
    if "runs" not in db.table_names():
        return pd.DataFrame(columns=cols)
    latest: dict[tuple[str, str, str], str] = {}
    names: dict[tuple[str, str, str], str] = {}  # -> the registry's attack (the advice)
    refs: dict[tuple[str, str], tuple[str, str]] = {}
    for r in db.query(_RUNS):
        if models and r["model"] not in models:
            continue
        if r["name"] == REFERENCE_ATTACK:
            refs[(r["model"], r["norm"])] = (r["attack"], r["run_id"])  # the newest
        else:
            latest[(r["model"], r["norm"], r["attack"])] = r["run_id"]  # the newest per label
            names[(r["model"], r["norm"], r["attack"])] = r["name"]
    groups: dict[tuple[str, str], dict[str, str]] = {}
    for (model, norm, attack), run_id in latest.items():
        groups.setdefault((model, norm), {})[attack] = run_id
    rows = []
    for (model, norm), attacks in groups.items():
        ref = refs.get((model, norm))
        if ref is None and len(attacks) < 2:
            continue
        dist = {a: distances(db, run_id) for a, run_id in attacks.items()}
        if ref is not None:
            fixed = distances(db, ref[1])
            best_of = {a: {i: min(v, fixed[i]) for i, v in d.items() if i in fixed}
                       for a, d in dist.items()}  # fmt: skip
        else:
            pooled: dict[int, float] = {}
            for d in dist.values():
                for i, v in d.items():
                    pooled[i] = min(v, pooled.get(i, math.inf))
            best_of = {a: {i: pooled[i] for i in d} for a, d in dist.items()}
        for attack in sorted(dist):
            best = best_of[attack]
            own = sorted(best)
            d = [dist[attack][i] for i in own]
            correct = [i for i in own if best[i] > 0]
            found = sorted(dist[attack][i] for i in correct)
            broken = sum(math.isfinite(v) for v in found)
            rows.append({
                "model": model, "norm": norm, "attack": attack, "n": len(own),
                "optimality": optimality(d, [best[i] for i in own]),
                "broken": broken / len(correct) if correct else math.nan,
                "median": found[(len(found) - 1) // 2] if found else math.nan,
                "against": ref[0] if ref is not None else "best of listed",
                "name": names[(model, norm, attack)],
            })  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _advice(row) -> str:
    """How to settle a low figure: a search that stops at its first adversarial (DeepFool)
    is not moved by more steps (measured, issue 30), so a minimal search of its norm that
    keeps shrinking (FMN) tells how far it stopped short; any other reruns with more steps."""
    from advbench.attacks import ATTACKS

    if row.name in ATTACKS and ATTACKS.get(row.name).meta.get("first_crossing"):
        return (f"it stops at its first adversarial, so more steps do not move it: run "
                f"FMN-{row.norm.upper()} beside it")
    return "rerun it with more steps or another start"


def warnings(df: pd.DataFrame) -> list[str]:
    """One line per model whose optimality was not measured against a fixed reference, and
    per attack under OPTIMALITY_WARN against one, each with the command that settles it."""
    out = []
    for model in dict.fromkeys(df["model"]):
        rows = df[df["model"] == model]
        loose = sorted(set(rows[rows["against"] == "best of listed"]["norm"]))
        if loose:
            out.append(f"{model}: no fixed reference for {', '.join(loose)} (scored against "
                       "the best of the listed attacks); store one with `advbench attack "
                       f"--model {model} --suite optimality-reference`")  # fmt: skip
        for r in rows.itertuples():
            if r.against != "best of listed" and r.optimality < OPTIMALITY_WARN:
                out.append(f"warning: {r.attack} on {model} has optimality {r.optimality:.3f} "
                           f"against {r.against} (< {OPTIMALITY_WARN}): its accuracy "
                           f"overstates robustness where it stops short; {_advice(r)} "
                           f"(`advbench report --checks {model}` gives the command)")  # fmt: skip
    return out


def render_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The table as text cells for printing (the registry name stays in the frame)."""
    out = df.drop(columns=["name"])
    out["optimality"] = [f"{v:.3f}" if math.isfinite(v) else "n/a" for v in df["optimality"]]
    out["broken"] = [f"{v * 100:.1f} %" if math.isfinite(v) else "n/a" for v in df["broken"]]
    out["median"] = [f"{v:.3g}" if math.isfinite(v) else "∞" for v in df["median"]]
    return out


CAPTION = (
    "Optimality of each minimal attack (AttackBench): 1 − (A − A*) / (c·M − A*), with A the "
    "area under its accuracy–ε curve up to M, the largest per-instance best distance, A* the "
    "per-instance best (against: the stored fixed reference, a high-budget search from "
    "another implementation, or the attack itself where it did better; 'best of listed': "
    "the best over the attacks listed for that model and norm that attacked the instance), "
    "c·M the area of an attack that breaks nothing; over the n instances the "
    "attack attacked. broken: "
    "share of the correctly classified it found an adversarial for; median: its median "
    "distance over those (∞: under half)."
)
