"""`advbench report --missing`: the commands that fill a table's empty cells.

Derived from the same per-paper definitions as the tables: a cell's role says which model
to train or harden (and from which parent), its run match which suite or attack to run,
its metric which measurement to take. Models are named PAPER-ROLE-DATASET; a model already
stored for a role is used as it is. Cells whose data set is not on disk get one line each
instead of a command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from advbench import plans, suites
from advbench.report.papers import AT_POINTS, AT_RUN, DATA, Cell, FigureSpec, TableSpec
from advbench.report.tables import StoredRuns, cells, data_for
from advbench.steps import Step


@dataclass
class Todo:
    builds: list[Step] = field(default_factory=list)
    # one `attack --attack` command per (model, attack, targeting, source, suite it stands
    # for): its ε gathered into one --eps list
    attacks: dict[tuple, tuple[list[str], list[float]]] = field(default_factory=dict)
    suite_runs: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # the rows (labels) of each suite run the empty cells need; None: every row
    suite_rows: dict[tuple[str, str], set[str] | None] = field(default_factory=dict)
    measures: list[Step] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    absent_data: dict[str, set[str]] = field(default_factory=dict)  # data -> spec ids
    not_planned: dict[str, set[str]] = field(default_factory=dict)  # spec id -> roles
    names: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (paper, data, role)

    def later(self, scale: str) -> list[str]:
        """One line per table or figure whose empty cells need models the plan makes only at
        larger scales than `scale` (pesso's λ sweep is not made at smoke)."""
        return [
            f"{ident}: models {', '.join(sorted(roles))} are made only at larger scales than "
            f"{scale} (benchmarks/plans/{ident.split(':')[0]}.json)"
            for ident, roles in sorted(self.not_planned.items())
        ]

    def commands(self) -> list[str]:
        """The steps' command lines."""
        return [step.text for step in self.steps()]

    def steps(self) -> list[Step]:
        """The steps that fill the empty cells: builds, suite runs, single attacks, measures."""
        suites = [_cmd("attack", *args, *self._only(key)) for key, args in self.suite_runs.items()]
        attacks = []
        for (name, attack, targeted, source, suite), (args, eps) in self.attacks.items():
            if (name, suite) in self.suite_runs and _suite_covers(
                suite, attack, targeted, source, eps, self.suite_rows.get((name, suite))
            ):
                continue  # the model's planned suite run makes these runs
            budgets = ",".join(f"{e:g}" for e in sorted(set(eps)))
            attacks.append(_cmd("attack", *args[:4], "--eps", budgets, *args[4:]))
        unique = {s.text: s for s in [*self.builds, *suites, *attacks, *self.measures]}
        return list(unique.values())

    def _only(self, key: tuple[str, str]) -> list[str]:
        """`--only LABEL` per row the cells need, when they need fewer than all (pesso's λ
        sweep needs only PGD of each model: not its adaptive attack's hours)."""

        rows = self.suite_rows.get(key)
        every = suites.labels(suites.load_suite(key[1]))
        if rows is None or set(every) <= rows:
            return []
        # a label two rows share (madnet's MNIST and CIFAR "CW (c = 0.1)") is named once
        return [arg for label in dict.fromkeys(every) if label in rows
                for arg in ("--only", label)]  # fmt: skip


def _suite_covers(suite: str, attack: str, targeted, source, eps: list[float],
                  rows: set[str] | None = None) -> bool:  # fmt: skip
    """Whether a suite's white-box rows (those in `rows`, when given) run `attack` at every
    one of these budgets (a transfer or targeted command is never covered: its source or
    targets are its own)."""

    if source or targeted:
        return False
    grid = {
        float(e)
        for row in suites.load_suite(suite)["attacks"]
        if row["attack"] == attack and "source" not in row and "transfer" not in row
        and not row.get("targeted")
        and (rows is None or (row.get("label") or row["attack"]) in rows)
        for values in row["eps"].values()
        for e in values
    }  # fmt: skip
    return all(any(abs(e - g) <= 1e-9 for g in grid) for e in eps)


def _cmd(*words) -> Step:
    """A step from command-line words (plan files give recipes as flags)."""
    return Step.parse([str(w) for w in words if w is not None])


def todo(
    db: sqlite_utils.Database | None,
    specs: list[TableSpec | FigureSpec],
    scale: str,
    *,
    data_dir: Path | None = None,
    db_path: Path | None = None,
) -> Todo:

    p = Todo()
    common: list[str] = []
    if data_dir is not None:
        common += ["--data-dir", str(data_dir)]
    if db_path is not None:
        common += ["--db", str(db_path)]
    if db is None:  # nothing stored yet: an empty store in memory, same code path
        from advbench.store import migrate

        db = sqlite_utils.Database(memory=True)
        migrate(db)
    store = StoredRuns(db)
    on_disk: dict[str, str | None] = {}

    def dataset(data: str) -> str | None:
        if data not in on_disk:
            on_disk[data] = data_for(data, data_dir, scale)
        return on_disk[data]

    def model_name(spec: TableSpec, data: str, key: str) -> str:
        """The stored model of a role, or the commands that make it (parents first)."""
        ident = (spec.paper, data, key)
        if ident in p.names:
            return p.names[ident]
        # a model the plan made at another scale is never this scale's (a user's own model
        # that fills the role is, as is the plan's own at this scale)
        stored = [m for m in store.role_models(spec, data, key)
                  if not plans.other_scale(m["name"], spec.paper, key, m["dataset"], scale)]
        if stored:
            p.names[ident] = stored[0]["name"]
            return p.names[ident]
        role = spec.roles[(data, key)]
        name = plans.model_name(spec.paper, key, dataset(data), scale)
        epochs = plans.epochs(spec.paper, scale)
        args = plans.recipe(spec.paper, role, data, scale)
        if role.parent is None:
            p.builds.append(_cmd("train", "--dataset", dataset(data), *args, "--name", name,
                                 *(["--epochs", epochs["train"]] if epochs["train"] else []),
                                 *common))  # fmt: skip
        else:
            from advbench.defenses import kind

            parent = model_name(spec, data, role.parent)
            trains = kind(role.defense) != "inference-time" and epochs["harden"]
            p.builds.append(_cmd("harden", "--model", parent, *args, "--name", name,
                                 *(["--epochs", epochs["harden"]] if trains else []),
                                 *common))  # fmt: skip
        p.names[ident] = name
        return name

    for spec in specs:
        suite_n = int(suites.load_suite(spec.suite)["n"][scale])
        if isinstance(spec, FigureSpec):
            from advbench.report.figures import figure_results

            results = figure_results(store, spec)
        else:
            results = cells(db, spec, store)
        for res in results:
            if res.status != "empty":
                continue
            cell = res.cell
            if dataset(cell.data) is None:
                p.absent_data.setdefault(cell.data, set()).add(spec.id)
                names = [d for d in DATA[cell.data] if scale != "full" or d != "mnist-5k"]
                p.absent.append(
                    f"{spec.id} | {res.row} | {res.column}: data set {' or '.join(names)} is "
                    "not on disk (give --data-dir, or download it with `advbench train "
                    "--download`)"
                )
                continue
            if not all(
                plans.made_at(spec.paper, key, scale) for key in (cell.role, *cell.requires)
            ):
                p.not_planned.setdefault(spec.id, set()).add(cell.role)
                continue  # the plan makes this role only at larger scales
            name = model_name(spec, cell.data, cell.role)
            for req in cell.requires:
                model_name(spec, cell.data, req)
            # a stored run that only lacks a measurement gets just the measure command
            _fill_commands(p, spec, cell, name, scale, suite_n, common, model_name, bool(res.runs))
    return p


def _fill_commands(p: Todo, spec, cell: Cell, name, scale, suite_n, common, model_name, ran):
    if cell.metric in ("clean", "setting"):
        return  # stored with the model
    if cell.metric in AT_POINTS:
        p.measures.append(_cmd("measure", "--model", name, "--metric", cell.metric,
                               "--n", suite_n, *common))  # fmt: skip
        return
    match = cell.match
    if ran:
        pass  # the run is stored; what is missing is measured from it below
    elif "suite" in match:
        # One suite run per model: rows that need a proxy get it on the same command.
        key = (name, match["suite"])
        args = p.suite_runs.get(key) or ["--model", name, "--suite", match["suite"],
                                         "--scale", scale, *common]  # fmt: skip
        if "--proxy" in cell.args and "--proxy" not in args:
            args += list(cell.args)
            proxy_epochs = plans.epochs(spec.paper, scale)["proxy"]
            if proxy_epochs:
                args += ["--proxy-epochs", str(proxy_epochs)]
        p.suite_runs[key] = args
        want = match.get("labels") or ([match["label"]] if "label" in match else None)
        if want is None or (key in p.suite_rows and p.suite_rows[key] is None):
            p.suite_rows[key] = None
        else:
            p.suite_rows.setdefault(key, set()).update(want)
    else:
        source = []
        if "source_role" in match:
            source = ["--source-model", model_name(spec, cell.data, match["source_role"])]
        targeted = ["--targeted", match["targeted"]] if match.get("targeted") else []
        key = (name, match["attack"], match.get("targeted"), tuple(source), spec.suite)
        plain = [] if suites.allows_shortcuts(spec.suite) else ["--no-shortcuts"]
        args = ["--model", name, "--attack", match["attack"], *targeted, *source,
                "--n", str(suite_n), *plain, *common]  # fmt: skip
        p.attacks.setdefault(key, (args, []))[1].append(match["eps"])
    if cell.metric in AT_RUN:
        p.measures.append(_cmd("measure", "--model", name, "--metric", cell.metric,
                               "--run", match["label"], *common))  # fmt: skip
