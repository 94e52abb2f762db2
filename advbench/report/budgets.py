"""Each trained defense's budget at the stored scale against the full-scale reading (issue
33, item 3): the optimiser steps its stored model took (epochs × ⌈training images / batch⌉,
from the model's own stored configuration, and the wall time its training took, across the
sessions of an interrupted training: `training_time`), beside the
steps the paper's plan takes at full scale on the full training set (the plan's full-scale
epochs and arguments, else the defense's paper setting: `train.fit_settings`, the rule
`harden` itself applies). A defense trained for a small share of its full reading's steps
is judged on that budget; the plan's `why` says how the budget was chosen.

One row per planned role that trains a defense (hardened from its parent, inference-time
wrappers left out), at seed 0, same-budget controls included (the same steps with the term
off: their wall time says what the term costs); seed replicates take their seed-0 role's
budget by construction and are left out. The full-scale reading is what `reproduce --scale
full` would train, which is the paper's recipe where the defense has one (jakubovitz: Adam,
batch 500) and advbench's defaults (10 epochs, batch 64) where the paper gives none.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import sqlite_utils

from advbench import plans
from advbench.report.papers import DATA, tables
from advbench.report.stored import StoredRuns

# training images of each data set as the plans' training reads it (mnist-5k: the 4,000 of
# its stratified train split; the full sets: torchvision's train splits)
TRAIN_IMAGES = {"mnist-5k": 4_000, "mnist": 60_000, "fashion-mnist": 60_000,
                "cifar10": 50_000, "cifar100": 50_000}  # fmt: skip


@dataclass(frozen=True)
class Budget:
    paper: str
    role: str
    defense: str
    dataset: str
    epochs: int
    batch: int
    images: int | None
    wall_s: float | None
    full_dataset: str
    full_epochs: int
    full_batch: int
    full_images: int | None

    @property
    def steps(self) -> int | None:
        return None if self.images is None else self.epochs * math.ceil(self.images / self.batch)

    @property
    def full_steps(self) -> int | None:
        if self.full_images is None:
            return None
        return self.full_epochs * math.ceil(self.full_images / self.full_batch)

    @property
    def share(self) -> float | None:
        if not self.steps or not self.full_steps:
            return None
        return self.steps / self.full_steps


def _options(argv: list[str]) -> dict[str, str | bool]:
    """`--key value` pairs and bare flags of a planned command's arguments (last wins;
    `--param` is left out: it sets the defense's weights, not its budget)."""
    out: dict[str, str | bool] = {}
    i = 0
    while i < len(argv):
        key = argv[i]
        if key.startswith("--") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            if key != "--param":
                out[key] = argv[i + 1]
            i += 2
        else:
            out[key] = True
            i += 1
    return out


def _full_reading(paper: str, roles: dict, data: str, key: str) -> dict:
    """The fit settings the plan's full-scale command for a role would train with."""
    from advbench.train import TRAIN_DEFAULTS

    role = roles[(data, key)]
    opts = _options(plans.recipe(paper, role, data, "full"))
    # the plan's epochs come after the recipe's arguments on the command line, so they win
    epochs = plans.epochs(paper, "full")["train" if role.parent is None else "harden"]
    if epochs is None and "--epochs" in opts:
        epochs = int(opts["--epochs"])
    batch = int(opts["--batch-size"]) if "--batch-size" in opts else None
    if role.parent is None:  # `advbench train`: its own defaults where the plan sets none
        given = {"epochs": epochs, "batch_size": batch, "optimizer": opts.get("--optimizer"),
                 "lr": float(opts["--lr"]) if "--lr" in opts else None,
                 "weight_decay": float(opts["--weight-decay"]) if "--weight-decay" in opts
                 else None}  # fmt: skip
        return {k: TRAIN_DEFAULTS[k] if v is None else v for k, v in given.items()}
    from advbench import data as datasets
    from advbench.train import fit_settings

    defense = str(opts.get("--defense", role.defense))
    recipe = opts.get("--recipe")
    return fit_settings(defense, from_scratch=bool(opts.get("--from-scratch")),
                        family=datasets.family(DATA[data][-1]),
                        recipe=recipe if isinstance(recipe, str) else None,
                        parent_config=_full_reading(paper, roles, data, role.parent),
                        epochs=epochs, batch_size=batch)  # fmt: skip


def training_time(model: dict) -> float | None:
    """Seconds a stored model's training took: its process's time (`wall_s`), or the sum of
    its epochs' optimiser-loop times where larger. A training interrupted and resumed stores
    only its last session's process time; each epoch's loop time is kept across sessions
    (`fit`'s history, `seconds`; models trained before it have none, so `wall_s` stands)."""
    wall = model.get("wall_s")
    epochs = json.loads(model.get("history") or "[]")
    if epochs and all("seconds" in e for e in epochs):
        loop = sum(float(e["seconds"]) for e in epochs)
        return loop if wall is None else max(float(wall), loop)
    return wall


def budgets(db: sqlite_utils.Database, paper: str) -> list[Budget]:
    """One row per stored seed-0 model of a role of the paper's plan that trains a defense."""
    from advbench.defenses import kind

    store = StoredRuns(db)
    out: list[Budget] = []
    seen: set[tuple[str, str]] = set()
    for spec in tables().values():
        if spec.paper != paper:
            continue
        for (data, key), role in spec.roles.items():
            if (data, key) in seen or role.parent is None or not role.defense:
                continue
            seen.add((data, key))
            if (role.seed or 0) != 0 or kind(role.defense) == "inference-time":
                continue
            found = store.role_models(spec, data, key)
            if not found:
                continue
            model = found[0]
            cfg = json.loads(model["config"] or "{}")
            if "epochs" not in cfg or "batch_size" not in cfg:
                continue  # a wrapper or an imported model: nothing trained here
            full_data = next((d for d in DATA[data] if d != "mnist-5k"), DATA[data][-1])
            full = _full_reading(paper, spec.roles, data, key)
            out.append(Budget(
                paper, key, role.defense, model["dataset"], int(cfg["epochs"]),
                int(cfg["batch_size"]), TRAIN_IMAGES.get(model["dataset"]), training_time(model),
                full_data, int(full["epochs"]), int(full["batch_size"]),
                TRAIN_IMAGES.get(full_data),
            ))  # fmt: skip
    return out


def records(found: list[Budget]) -> list[dict]:
    """One flat record per trained defense (`report --budgets --format csv|json`)."""
    from dataclasses import asdict

    return [{**asdict(b), "steps": b.steps, "full_steps": b.full_steps, "share": b.share}
            for b in found]  # fmt: skip


def markdown(found: list[Budget]) -> str:
    """The budgets as one markdown table."""
    lines = ["| paper | role | defense | stored: epochs × ⌈images / batch⌉ = steps | "
             "training wall time | full-scale reading: epochs × ⌈images / batch⌉ = steps | "
             "share of the full reading's steps |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip

    def steps(epochs, images, batch, total, dataset):
        if total is None:
            return f"{epochs} × ⌈? / {batch}⌉ ({dataset}: size unknown)"
        return f"{epochs} × ⌈{images:,} / {batch}⌉ = {total:,} ({dataset})"

    for b in found:
        wall = "—" if b.wall_s is None else f"{b.wall_s / 60:.1f} min"
        share = "—" if b.share is None else f"{b.share:.1%}"
        lines.append(" | ".join([
            f"| {b.paper}", b.role, b.defense,
            steps(b.epochs, b.images, b.batch, b.steps, b.dataset), wall,
            steps(b.full_epochs, b.full_images, b.full_batch, b.full_steps, b.full_dataset),
            f"{share} |",
        ]))  # fmt: skip
    return "\n".join(lines) + "\n"
