"""Robustness tables derived from stored per-sample outcomes; nothing derived is stored.

Robust accuracy of a run = share of its samples whose adversarial prediction is the true
label (a sample misclassified before the attack counts as not robust); instances the attack
could not start on (HopSkipJump without a starting adversarial) are left out of n. Every
cell carries its n and a 95 % Wilson interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import sqlite_utils

from advbench import formats
from advbench.errors import BadInput
from advbench.metrics import wilson_interval
from advbench.store import ROBUST, RUNS, recency

FORMATS = formats.SUMMARY
MISSING = "not run"

_RUNS_SQL = f"""
select c.id, c.model, coalesce(m.defense, 'none') as defense, m.arch, m.dataset,
       coalesce(c.label, c.attack) as attack, c.norm, c.eps, c.seed, c.scale, c.status,
       c.finished_at, c.planned as planned_n, c.threat, c.source_model, c.source_rule,
       c.targeted, c.gradient, c.n, c.robust, c.init_failed, c.started_at
from ({RUNS}) c join models m on m.name = c.model
"""


def run_results(db: sqlite_utils.Database, models: list[str] | None = None) -> pd.DataFrame:
    """One row per stored run with its robust accuracy, n and interval (long form)."""
    df = pd.read_sql_query(_RUNS_SQL, db.conn)
    if models:
        df = df[df["model"].isin(models)]
    if df.empty:
        return df
    df = df.copy()
    # every untargeted run was labelled "(targeted nan)" once a targeted run shared the store
    nulls_as_none(df, ("targeted", "source_model", "source_rule", "gradient", "scale"))
    df["attack"] = [_threat_label(r) for r in df.itertuples(index=False)]
    df["accuracy"] = [
        r / n if n else float("nan") for r, n in zip(df["robust"], df["n"], strict=True)
    ]
    ci = [wilson_interval(int(r), int(n)) for r, n in zip(df["robust"], df["n"], strict=False)]
    df["ci_low"] = [c[0] for c in ci]
    df["ci_high"] = [c[1] for c in ci]
    # Where a cell was run more than once (another n, seed or scale), show the newest
    # complete run (store.recency). The threat model (white-box / transfer source /
    # targeting / gradient) is part of the cell's key through its label, so a transfer run
    # never stands in for a white-box one. A run with no sample rows yet is dropped; one
    # whose every instance failed to start is kept (n = 0: its cell says so) so an older
    # run of the cell never stands in for it.
    df = df[(df["n"] > 0) | (df["init_failed"] > 0)]
    keys = [recency(*r) for r in zip(df["status"], df["finished_at"], df["started_at"],
                                      strict=True)]  # fmt: skip
    df = df.iloc[sorted(range(len(df)), key=keys.__getitem__)]
    return df.drop_duplicates(["model", "attack", "eps"], keep="last")


def nulls_as_none(df: pd.DataFrame, cols) -> None:
    """SQL NULL back to None in text columns, in place: pandas >= 3 reads them as NaN (a str
    dtype), which is truthy and unequal to None."""
    for col in cols:
        df[col] = pd.Series([None if pd.isna(v) else v for v in df[col]], df.index, object)


def rho_adv(db: sqlite_utils.Database, run_id: str) -> tuple[float, int]:
    """Empirical robustness ρ̂_adv = (1/N) Σ dᵢ / ‖xᵢ‖₂ (DeepFool; jakubovitz 003:197) of a
    minimal-perturbation run, and N.

    N counts the instances the model classified right whose minimal perturbation the attack
    found: a failure has no dᵢ (counting it as 0 or ∞ would invent one), and a clean error
    needs none (dᵢ = 0 is no measurement of the boundary). This is the set ART's
    `empirical_robustness` averages over (inputs whose prediction the attack changed).
    NaN and N = 0 where there is none."""
    values = rho_adv_values(db, run_id)
    return (sum(values) / len(values) if values else float("nan"), len(values))


def rho_adv_values(db: sqlite_utils.Database, run_id: str) -> list[float]:
    """The dᵢ / ‖xᵢ‖₂ that ρ̂_adv averages (see `rho_adv`): the found ones of
    `store.outcomes.rho_adv` (the paired claims read the same rows, censored ones too)."""
    from advbench.store import outcomes

    return [v for v in outcomes.rho_adv(db, run_id).values() if v is not None]


def worst_case(db: sqlite_utils.Database, run_ids: list[str]) -> tuple[int, int]:
    """Per-sample worst case over runs of one model (attacks at one ε, or one attack's
    restarts): an instance (test index and target) is robust only if it is robust in every
    run; counted over the instances present and started in all of them (runs with the same
    n, seed and targeting attack the same ones). Returns (robust, n)."""
    if not run_ids:
        return (0, 0)
    marks = ", ".join("?" * len(run_ids))
    rows = db.execute(
        f"select count(*), sum({ROBUST}) from samples s where s.run_id in ({marks}) "
        "and not coalesce(s.init_failed, 0) group by s.idx, coalesce(s.target, -1)",
        list(run_ids),
    ).fetchall()
    full = [robust for count, robust in rows if count == len(run_ids)]
    return (sum(1 for robust in full if robust == len(run_ids)), len(full))


def _threat_label(r) -> str:
    """The row label with what it was run under where that is not plain white-box."""
    label = r.attack
    if r.targeted and "targeted" not in label:
        label += f" (targeted {r.targeted})"
    if r.threat != "white-box" and "Transfer" not in label and "Black-box" not in label:
        label += f" [{r.threat}]"
    if r.threat != "white-box":
        rule = r.source_rule or ""
        shared = rule in ("root", "undefended", "parent", "base") or rule.startswith("proxy:")
        label += f" ← {rule if shared else r.source_model}"
    if r.gradient == "masked":
        label += " [masked gradient]"
    return label


def _cell(acc: float, lo: float, hi: float, n: int, status: str, failed: int = 0) -> str:
    if not n:
        return f"no start ({failed} failed)"
    # The Wilson interval is asymmetric: show its bounds, not a ± half-width.
    text = f"{acc * 100:.1f} [{lo * 100:.1f}, {hi * 100:.1f}] (n={n})"
    return text if status == "complete" else text + " partial"


def summary_table(db: sqlite_utils.Database, models: list[str] | None = None) -> pd.DataFrame:
    """Rows model/defense, columns clean + attack x ε; cells 'acc [low, high] (n=..)' (the 95 %
    Wilson interval) or 'not run'."""
    runs = run_results(db, models)
    mrows = pd.read_sql_query(
        "select name as model, coalesce(defense, 'none') as defense, clean_accuracy, clean_n "
        "from models order by created_at",
        db.conn,
    )
    if models:
        unknown = sorted(set(models) - set(mrows["model"]))
        if unknown:
            raise BadInput(
                f"unknown model(s) {', '.join(unknown)}; stored: "
                f"{', '.join(mrows['model']) or '(none)'}"
            )
        mrows = mrows[mrows["model"].isin(models)]
    if not runs.empty:
        mrows = mrows[mrows["model"].isin(runs["model"])]
    if mrows.empty:
        raise BadInput("no attack runs stored yet; run `advbench attack` first")
    table = pd.DataFrame({"model": mrows["model"], "defense": mrows["defense"]})
    table["clean"] = [
        _cell(a, *wilson_interval(round(a * n), n), n, "complete")
        for a, n in zip(mrows["clean_accuracy"], mrows["clean_n"], strict=False)
    ]
    cols = runs[["attack", "eps"]].drop_duplicates().sort_values(["attack", "eps"])
    for attack, eps in cols.itertuples(index=False):
        key = f"{attack} ε={eps:g}"
        cells = []
        for model in table["model"]:
            hit = runs[(runs["model"] == model) & (runs["attack"] == attack) & (runs["eps"] == eps)]
            if hit.empty:
                cells.append(MISSING)
            else:
                r = hit.iloc[0]
                cells.append(
                    _cell(r.accuracy, r.ci_low, r.ci_high, int(r.n), r.status, r.init_failed)
                )
        table[key] = cells
    return table.reset_index(drop=True)


def provenance_line(db: sqlite_utils.Database, models: list[str] | None = None) -> str:
    runs = run_results(db, models)
    if runs.empty:
        return ""
    seeds = ", ".join(str(s) for s in sorted(runs["seed"].unique()))
    scales = ", ".join(sorted(str(s) for s in runs["scale"].fillna("custom").unique()))
    return (
        f"Robust accuracy in % of n test samples [95 % Wilson interval]; "
        f"sample seed {seeds}; scale {scales}; {len(runs)} runs."
    )


def render(df: pd.DataFrame, fmt: str, caption: str = "") -> str:
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "markdown":
        header = "| " + " | ".join(df.columns) + " |"
        sep = "|" + "|".join("---" for _ in df.columns) + "|"
        body = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
        return "\n".join([header, sep, *body, "", caption]).rstrip() + "\n"
    raise ValueError(fmt)


def by_attack(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Split the summary pivot into one narrow table per attack (columns: its ε values)."""
    keys = ["model", "defense"]
    groups: dict[str, list[str]] = {}
    for col in df.columns[3:]:
        attack, _, eps = col.rpartition(" ")
        groups.setdefault(attack, []).append(col)
    parts = [("clean", df[[*keys, "clean"]])]
    for attack, cols in groups.items():
        part = df[[*keys, *cols]].rename(columns={c: c.rpartition(" ")[2] for c in cols})
        parts.append((attack, part))
    return parts


def _rich(frame: pd.DataFrame, title: str, keys: tuple[str, ...], caption: str | None = None):
    """A pandas frame as a rich table whose `keys` columns never wrap. Text is escaped: a
    label such as "PGD [x]" would otherwise be read as rich markup and vanish."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(title), title_justify="left", caption=caption,
              caption_justify="left")  # fmt: skip
    for c in frame.columns:
        t.add_column(escape(str(c)), no_wrap=c in keys)
    for row in frame.itertuples(index=False):
        t.add_row(*[escape(str(v)) for v in row])
    return t


@dataclass
class SummaryView:
    """What the terminal's summary shows: the pivot, how it was obtained, optimality."""

    frame: pd.DataFrame
    provenance: str
    optimality: pd.DataFrame


def summary_view(db: sqlite_utils.Database, models: list[str] | None = None) -> SummaryView:
    from advbench.report.optimality import optimality_table

    return SummaryView(summary_table(db, models), provenance_line(db, models),
                       optimality_table(db, models))  # fmt: skip


def print_summary(console, view: SummaryView) -> None:
    """Rich rendering for terminals: clean accuracy, then one table per attack, then the
    minimal attacks' optimality where a model has two of one norm."""
    from advbench.report.optimality import CAPTION, render_rows, warnings

    for title, part in by_attack(view.frame):
        console.print(_rich(part, f"{title}: accuracy % [95 % CI] (n)", ("model", "defense")))
    console.print(view.provenance)
    if not view.optimality.empty:
        console.print(_rich(render_rows(view.optimality), "minimal attacks: optimality "
                            "(AttackBench)", ("model", "attack"), CAPTION))  # fmt: skip
        for line in warnings(view.optimality):
            console.print(line, markup=False, highlight=False)


def optimality_markdown(db: sqlite_utils.Database, models: list[str] | None = None) -> str:
    """The optimality table as a markdown section, or '' where no model has two minimal
    attacks of one norm."""
    from advbench.report.optimality import CAPTION, optimality_table, render_rows, warnings

    opt = optimality_table(db, models)
    if opt.empty:
        return ""
    notes = "".join(f"\n- {line}" for line in warnings(opt))
    return ("\n## Minimal attacks: optimality\n\n" + render(render_rows(opt), "markdown", CAPTION)
            + ("\n" + notes if notes else ""))
