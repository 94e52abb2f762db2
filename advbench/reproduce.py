"""`advbench reproduce PAPER`: a paper end to end from its plan.

The steps are exactly what `report --missing` prints for the paper's tables and figures
(the same per-paper definitions and `benchmarks/plans/PAPER.json`): train its base models,
harden them, run its suite on each, take its measurements. What is stored is never a step,
so the same command resumes where an interruption stopped (a killed step itself resumes:
training from its last saved state, an attack from its last stored batch). Parts whose data
set is not on disk are skipped, one line per data set. Afterwards the paper's page is
written (`report --paper`).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from advbench.errors import BadInput, unknown
from advbench.plans import REFERENCE_SCALE  # the scale of the pages under results/PAPER/
from advbench.progress import fmt_time
from advbench.report.papers import DATA, PAPERS, figures, tables
from advbench.steps import Step

NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet": "ImageNet"}
HOW = {
    "mnist": "give --data-dir DIR holding MNIST/raw (torchvision's layout)",
    "cifar10": "give --data-dir DIR holding cifar-10-batches-py",
    "cifar100": "give --data-dir DIR holding cifar-100-python",
    "imagenet": "give --data-dir DIR holding an ImageFolder val/ tree",
}


@dataclass
class PlannedStep:
    """A step of a paper's plan with what the store says of its cost."""

    command: Step
    estimate_s: float | None = None  # negative: a lower bound (some rows never timed here)
    runs: int | None = None  # attack runs a suite step registers

    @property
    def kind(self) -> str:
        return self.command.kind

    @property
    def text(self) -> str:
        return self.command.text

    @property
    def argv(self) -> list[str]:
        return self.command.argv


@dataclass
class Plan:
    paper: str
    scale: str
    steps: list[PlannedStep] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)  # models of the paper already stored


def papers(name: str) -> list[str]:
    if name == "all":
        return list(PAPERS)
    if name not in PAPERS:
        raise unknown("paper", name, ["all", *PAPERS])
    return [name]


def specs_of(paper: str) -> list:
    return [s for s in tables().values() if s.paper == paper] + [
        s for s in figures().values() if s.paper == paper
    ]


def plan(db, paper: str, scale: str, *, data_dir=None, db_path=None) -> Plan:
    from advbench import plans
    from advbench.report.missing import todo as missing_todo
    from advbench.report.tables import StoredRuns

    specs = specs_of(paper)
    todo = missing_todo(db, specs, scale, data_dir=data_dir, db_path=db_path)
    out = Plan(paper, scale)
    for data, ids in sorted(todo.absent_data.items()):
        names = " or ".join(d for d in DATA[data] if scale != "full" or d != "mnist-5k")
        out.skipped.append(
            f"{paper}: {NAMES[data]} parts skipped ({', '.join(sorted(ids))}): data set "
            f"{names} is not on disk; {HOW[data]} (or add --download to `advbench train` "
            "when online)"
        )
    out.skipped += [f"{paper}: {line}" for line in todo.later(scale)]
    for where, note in plans.external(paper).items():
        data = where.split("/")[0]
        if data not in todo.absent_data:
            out.skipped.append(f"{paper}: {where}: {note}")
    timings = _timings(db) if db is not None else {}
    for step in todo.steps():
        out.steps.append(_estimate(PlannedStep(step), db, timings, scale))
    if db is not None:
        store = StoredRuns(db)
        names = {m["name"] for spec in specs for (data, key) in spec.roles
                 for m in store.role_models(spec, data, key)}  # fmt: skip
        out.stored = sorted(names)
    return out


def _timings(db) -> dict[tuple, list[float]]:
    """Stored wall times: per (suite, label, scale, dataset) of complete runs."""
    out: dict[tuple, list[float]] = {}
    for r in db.query(
        "select suite, label, scale, dataset, wall_s from runs where status = 'complete' "
        "and wall_s is not null and suite is not null"
    ):
        out.setdefault((r["suite"], r["label"], r["scale"], r["dataset"]), []).append(r["wall_s"])
    return out


def _estimate(step: PlannedStep, db, timings, scale: str) -> PlannedStep:
    """Runs a suite step registers, and its time from stored runs of the same rows (a row
    never run here has no estimate: the step's is then a lower bound, shown with +)."""
    args = step.command.args
    if step.kind != "attack" or "suite" not in args or db is None:
        return step
    from advbench import suites

    model, suite = args["model"][0], args["suite"]
    row = db["models"].get(model) if db["models"].count_where("name = ?", [model]) else None
    dataset = row["dataset"] if row else _planned_dataset(model)
    if dataset is None:
        return step
    try:
        only = args.get("only") or None
        jobs, _ = suites.suite_jobs(suites.load_suite(suite), dataset, scale, only=only)
    except BadInput:
        return step
    from advbench.attacks import ATTACKS

    step.runs = sum(len(j.eps) for j in jobs)
    total, known = 0.0, True
    for job in jobs:
        times = timings.get((suite, job.label, scale, dataset))
        if times:  # a minimal attack searches once for all its ε (each run records it all)
            minimal = ATTACKS.get(job.attack).meta["kind"] == "minimal"
            total += statistics.median(times) * (1 if minimal else len(job.eps))
        else:
            known = False
    step.estimate_s = total if total else None
    if step.estimate_s is not None and not known:
        step.estimate_s = -step.estimate_s  # a lower bound
    return step


def _planned_dataset(model: str) -> str | None:
    """A planned model is named PAPER-ROLE-DATASET."""
    from advbench import data as datasets

    for name in sorted(datasets.DATASETS.names(), key=len, reverse=True):
        if model.endswith(f"-{name}"):
            return name
    return None


def announce(plan_: Plan, i: int) -> str:
    """The line that opens step i (from 1) of the plan, with the time its known steps need."""
    known = [abs(s.estimate_s) for s in plan_.steps if s.estimate_s]
    left = sum(abs(s.estimate_s) for s in plan_.steps[i - 1 :] if s.estimate_s)
    eta = f", about {fmt_time(left)} of known steps left" if known else ""
    return f"[{plan_.paper} {i}/{len(plan_.steps)}{eta}] {plan_.steps[i - 1].text}"


def wall_time(db: sqlite_utils.Database, models: list[str], *, afresh: bool = False) -> float:
    """Seconds the stored models and their current runs took (training plus attacks).
    `afresh` (a paper that attacks every ε afresh): runs that took a smaller ε's breaks
    (`shortcut_from`, made before that rule) are not part of what reproducing it takes."""
    split = time_split(db, models, afresh=afresh)
    return split["training"] + sum(split["attacks"].values())


def _extra(model: str) -> bool:
    """A same-budget control or a seed replicate of a plan (issue 33), by its role's name."""
    return re.search(r"-control(-s\d+)?-|-s\d+-", model) is not None


def time_split(db: sqlite_utils.Database, models: list[str], *, afresh: bool = False) -> dict:
    """Where a reproduction's time goes: seconds of training, of attacks per suite row, and
    the part of both spent on controls and seed replicates."""
    out = {"training": 0.0, "attacks": {}, "controls and seeds": 0.0}
    if not models:
        return out
    from advbench.report.budgets import training_time  # across a resumed training's sessions

    marks = ",".join("?" * len(models))
    for row in db.query(f"select name, wall_s, history from models where name in ({marks})",
                        models):  # fmt: skip
        wall = float(training_time(row) or 0)
        out["training"] += wall
        out["controls and seeds"] += wall if _extra(row["name"]) else 0.0
    # a minimal attack's one search is judged at every ε of its group, and each of those
    # runs records the whole search's time: count it once
    from advbench.suites import is_current

    rows = db.execute(
        "select group_id, kind, wall_s, model, label, suite, label, scale, attack, config "
        f"from runs where model in ({marks})",
        models,
    ).fetchall()
    # runs of a suite row changed since (stale: on no page) are not the paper's time
    recipes: dict = {}
    groups: dict[tuple, list[float]] = {}
    for group, kind, wall, model, label, *run in rows:
        if afresh and '"shortcut_from"' in (run[-1] or ""):
            continue
        if is_current(*run, recipes):
            groups.setdefault((group, kind, model, label), []).append(float(wall or 0))
    for (_, kind, model, label), t in groups.items():
        took = max(t) if kind == "minimal" else sum(t)
        out["attacks"][label] = out["attacks"].get(label, 0.0) + took
        out["controls and seeds"] += took if _extra(model) else 0.0
    return out


def default_output(db_path: Path | None, paper: str, scale: str = REFERENCE_SCALE) -> Path:
    """Where a paper's page goes beside the store: PAPER/ at the reference scale, SCALE/PAPER/
    at any other, so a quick smoke run never overwrites a committed cpu page."""
    from advbench.store import default_db_path

    folder = (db_path or default_db_path()).parent
    return folder / paper if scale == REFERENCE_SCALE else folder / scale / paper


__all__ = ["Plan", "PlannedStep", "announce", "plan", "papers", "wall_time"]
