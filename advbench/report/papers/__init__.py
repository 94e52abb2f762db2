"""The five papers' tables as data: which stored runs fill each cell, and how.

A paper module declares its models as `Role`s (a declarative match on stored model fields:
architecture, data-set family, defense and its configuration) and each table as a
`TableSpec` whose `cell(row, column)` returns a `Cell`: the metric and a declarative match
on stored run fields (suite, label, attack, ε, targeted, threat, source role). Row and
column labels come from the paper's transcription (`advbench/report/published/PAPER.csv`),
so a table has exactly the paper's rows and columns; published numbers are only ever read
from that file and shown beside the measured ones, never used to compute them.

When several runs match a cell, the newest complete one wins (`--verbose` lists the rest).
"""

from __future__ import annotations

import csv
import functools
import importlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from advbench.plans import PAPERS  # the papers, by name

PUBLISHED_DIR = Path(__file__).resolve().parent.parent / "published"
PAPER_FILES = {
    "fidel": "000_c1bb6d1026aca1ee.txt",
    "zantedeschi": "001_95a42494d295d8b8.txt",
    "madnet": "002_a9990acf34be45c9.txt",
    "jakubovitz": "003_6ff5c8a9f6d93647.txt",
    "pesso": "004_37b05f55427c11e4.txt",
}
# A table's data set, and the stored data sets that stand for it (mnist-5k: the embedded
# 5,000-image subset of MNIST, reduced scale). `--missing` proposes the first one on disk.
DATA = {
    "mnist": ("mnist-5k", "mnist"),
    "cifar10": ("cifar10",),
    "cifar100": ("cifar100",),
    "imagenet": ("imagenet",),
}
# The metric of a cell: what its number is and how it is shown.
PERCENT = ("accuracy", "clean", "best")
# measured at clean test points (advbench.measurements.AT_POINTS)
AT_POINTS = ("loss-sensitivity", "jacobian", "ns-sensitivity", "embedding-jacobian",
             "noise-loss")
AT_RUN = ("train-distance", "jacobian-adv")  # measured at a run's kept examples
METRICS = (
    *PERCENT,
    "rho_adv",  # DeepFool ρ̂_adv (jakubovitz): mean d_i/‖x_i‖₂ over correct, found
    "rho",  # empirical robustness (zantedeschi's code): mean ‖δ‖/‖x‖, the attack's norm
    # measurements, named as `advbench measure` names them (advbench.measurements.METRICS)
    "train-distance",
    "loss-sensitivity",
    "jacobian",  # mean ‖J(x)‖_F at clean test points
    "ns-sensitivity",  # NsLoss's term at clean test points (fidel)
    "embedding-jacobian",  # ‖∂e(x)/∂x‖_F of the embedding at clean test points (madnet)
    "noise-loss",  # cross-entropy under GDA's training noise at clean test points
    "jacobian-adv",  # mean ‖J(x)‖_F at the points of a stored run
    "setting",  # a training setting of the model (fidel Table I)
)


@dataclass(frozen=True)
class Role:
    """A model a paper's tables refer to, matched on stored fields.

    `defense` is the stored defense (None: undefended, trained by `advbench train`);
    `config` predicates compare keys of the model's stored configuration (None: absent);
    `params` predicates compare dotted keys of its defense configuration. `parent` names
    the role it is hardened from; how it is made is the paper's plan
    (`advbench.plans.recipe`: by default, from these fields)."""

    key: str
    arch: str
    defense: str | None = None
    aliases: tuple[str, ...] = ()
    parent: str | None = None
    activation: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    # defense-parameter predicates that must not all hold: a role with a same-budget
    # control (`with_control`) never takes the control's model (its weight 0) as its own
    unless: dict[str, Any] = field(default_factory=dict)
    # a role replicated over training seeds (`with_seeds`) takes only its seed's model, so
    # replicates never stand in for each other; None: the role's one model, whatever seed
    seed: int | None = None

    def matches(self, row: dict[str, Any], data: str) -> bool:
        if row["arch"] != self.arch or row["dataset"] not in DATA[data]:
            return False
        if self.seed is not None and (row.get("seed") or 0) != self.seed:
            return False
        if (row["defense"] or None) not in ({self.defense, *self.aliases}):
            return False
        if self.activation is not None and row["activation"] != self.activation:
            return False
        config = json.loads(row["config"] or "{}")
        if self.defense is None and config.get("kind") != "train":
            return False
        for key, want in self.config.items():
            if config.get(key) != want:
                return False
        flat = _flatten(json.loads(row["defense_config"] or "{}"))
        if self.unless and all(_same(flat.get(k), v) for k, v in self.unless.items()):
            return False
        return all(_same(flat.get(k), v) for k, v in self.params.items())


CONTROL = "-control"  # a control role's key: its defense's role key + this
CONTROL_MARK = ": control (λ = 0)"  # a controls table's control row: its defense's row + this
CONTROL_TAG = ": control ("  # every control mark starts so (`TableSpec.control_mark`)


def defense_row(row: str) -> str:
    """The defense's row of a controls table's control row (itself for any other row)."""
    return row.split(CONTROL_TAG)[0]


def with_control(role: Role, *weights: str) -> tuple[Role, Role]:
    """A fine-tuned defense's role and its same-budget control: the same parent, recipe,
    seed, data order, optimiser and steps with the defense's term off (each of `weights`,
    default `lambda`, set to 0: a regulariser's weight, GDA's noisy copies, PGD-AT's ε), so
    a claim "X raises Y" is judged against what the same fine-tuning does without X's term
    (continued training alone moves ρ, ‖J‖F, the logit scale and accuracy). The role
    itself no longer takes a model whose weights are all 0."""
    off = {w: 0.0 for w in weights or ("lambda",)}
    control = Role(role.key + CONTROL, role.arch, role.defense, parent=role.parent,
                   activation=role.activation, config=dict(role.config),
                   params={**role.params, **off})  # fmt: skip
    return replace(role, unless=off), control


def seed_key(key: str, seed: int) -> str:
    """A seed replicate's role key ("jac" at seed 2: "jac-s2"; seed 0 is the role itself)."""
    return key if not seed else f"{key}-s{seed}"


def seed_row(row: str, seed: int) -> str:
    """A seed replicate's row in a table of ours ("Jacobian regularization (seed 2)")."""
    return row if not seed else f"{row} (seed {seed})"


def with_seeds(role: Role, seeds: int) -> list[Role]:
    """A role trained at `seeds` training seeds (0, 1, ...): seed 0 is the role itself, the
    others `KEY-sN`, each from the same parent with `--seed N` (its data order and
    initialisation of what is trained), so a claim can be judged per seed."""
    return [replace(role, key=seed_key(role.key, s), seed=s) for s in range(seeds)]


def controlled(role: Role, seeds: int, *weights: str) -> list[Role]:
    """A fine-tuned defense's role and its same-budget control (`with_control`), each at
    training seeds 0 .. seeds − 1 (`with_seeds`): the roles a controls table pairs."""
    defense, control = with_control(role, *weights)
    return [
        replace(defense, seed=0),
        replace(control, seed=0),
        *with_seeds(defense, seeds)[1:],
        *with_seeds(control, seeds)[1:],
    ]


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


@dataclass(frozen=True)
class Cell:
    """What fills one cell: a metric of the model in `role` (on data set `data`), from
    the runs that `match` (keys: suite, label, attack, eps, targeted, threat, source_role,
    params: the attack's stored parameters that tell the row apart; labels for `best`; `key`
    for a `setting`)."""

    metric: str
    role: str
    data: str
    match: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    requires: tuple[str, ...] = ()  # other roles the run needs stored (a transfer source)
    args: tuple[str, ...] = ()  # extra `advbench attack` arguments that fill it (--proxy)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:  # a typo in a paper module fails at import
            raise ValueError(f"cell metric {self.metric!r} is not one of {METRICS}")


@dataclass(frozen=True)
class TableSpec:
    id: str  # "fidel:III"
    title: str
    suite: str
    roles: dict[tuple[str, str], Role]  # (data, key) -> Role
    cell: Callable[[str, str], Cell | None]
    note: str = ""  # how the paper's layout was read (headers reconstructed, choices)
    kind: str = "table"
    # a table of ours (controls, evidence) has its layout here; a paper's comes from its
    # transcription (`layout`), with the published values
    rows: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    # a controls table's control row is its defense's row + this (what is off, in words)
    control_mark: str = CONTROL_MARK
    # a controls table's defense (row) -> the columns it penalises or targets: the
    # defense-evidence verdicts (`claims.controls`) are on these; the rest are outcomes
    objective: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def paper(self) -> str:
        return self.id.split(":")[0]

    @property
    def number(self) -> str:
        return self.id.split(":")[1]


def controls_table(
    id: str,
    title: str,
    roles: dict[tuple[str, str], Role],
    controlled: dict[str, str],
    columns: dict[str, Callable[[str], Cell]],
    *,
    seeds: dict[str, int] | None = None,
    mark: str = CONTROL_MARK,
    note: str = "",
    shared: dict[str, str] | None = None,
    objective: dict[str, tuple[str, ...]] | None = None,
) -> TableSpec:
    """A table of ours (issue 33): each fine-tuned defense (row name -> role key, made with
    `with_control`) beside its same-budget control, and, for the rows in `seeds`, their
    seed replicates (`with_seeds`) in the same pairs. `columns` gives each column's cell for
    a role key: the quantity the defense penalises or targets and the paper's outcomes.
    `shared` names, per row, another defense whose control is this one's too (where every
    defense with its term off is the same fine-tuning, one control model serves them).
    `objective` names, per row, the columns it penalises or targets (default: all)."""
    shared = shared or {}
    if not mark.startswith(CONTROL_TAG):
        raise ValueError(f"a control mark starts with {CONTROL_TAG!r}: {mark!r}")
    seeds = seeds or {}
    rows = [r for name in controlled for r in (name, name + mark)]
    rows += [seed_row(r, s) for name, k in seeds.items() for s in range(1, k)
             for r in (name, name + mark)]  # fmt: skip

    def cell(row: str, col: str) -> Cell:
        seed = 0
        if row.endswith(")") and " (seed " in row:
            row, _, tail = row.rpartition(" (seed ")
            seed = int(tail[:-1])
        name = defense_row(row)
        key = controlled[name] if row == name else shared.get(name, controlled[name]) + CONTROL
        return columns[col](seed_key(key, seed))

    return TableSpec(id, title, id.split(":")[0], roles, cell, rows=tuple(rows),
                     columns=tuple(columns), control_mark=mark,
                     objective={n: tuple((objective or {}).get(n, columns)) for n in controlled},
                     note=note or "Not a table of the paper: the evidence that each defense "
                     "acts on what it penalises, against the same fine-tuning without its "
                     "term (parent, recipe, seed, data order, optimiser, steps).")  # fmt: skip


@dataclass(frozen=True)
class Published:
    table: str
    row: str
    column: str
    value: str  # as a number where the paper prints one, else ""
    text: str  # the token as it stands in the paper's text
    line: int
    kind: str  # cell, or reference (another method's published figure, not reproduced)


@functools.cache
def published(paper: str) -> tuple[Published, ...]:
    """The paper's transcribed cells (read once per process)."""
    with open(PUBLISHED_DIR / f"{paper}.csv", newline="") as f:
        return tuple(
            Published(
                r["table"],
                r["row"],
                r["column"],
                r["published"],
                r["text"],
                int(r["line"]),
                r["kind"],
            )  # fmt: skip
            for r in csv.DictReader(f)
        )


def layout(spec: TableSpec) -> tuple[list[str], list[str], dict[tuple[str, str], Published]]:
    """Rows, columns (in the paper's order) and published cells of a table; reference
    cells (other methods' published figures) are not part of the layout."""
    if spec.rows:  # a table of ours: no published values
        return list(spec.rows), list(spec.columns), {}
    rows: list[str] = []
    cols: list[str] = []
    cells = {}
    for p in published(spec.paper):
        if p.table != spec.number or p.kind != "cell":
            continue
        if p.row not in rows:
            rows.append(p.row)
        if p.column not in cols:
            cols.append(p.column)
        cells[(p.row, p.column)] = p
    return rows, cols, cells


def layout_rows(paper: str, table: str) -> list[str]:
    """A transcribed table's row labels, in the paper's order."""
    return list(dict.fromkeys(p.row for p in published(paper) if p.table == table))


def references(spec: TableSpec) -> list[Published]:
    return [p for p in published(spec.paper) if p.table == spec.number and p.kind == "reference"]


def tables() -> dict[str, TableSpec]:
    out: dict[str, TableSpec] = {}
    for paper in PAPERS:
        module = importlib.import_module(f"advbench.report.papers.{paper}")
        for spec in module.TABLES:
            out[spec.id] = spec
    return out


# ---- figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One line of a figure panel: a metric of the model in `role` along x.

    By default x is ε and the points are the suite row's ε grid for the panel's data set
    (`match` names the row; each point is the `Cell` match + that ε), so the figure shows
    exactly the budgets the suite ran (`grid` names the row where `match` does not: a
    match on the attack alone, which `advbench attack --attack` runs fill too). `cells`
    gives the points explicitly instead (x, Cell): a parameter along x (JSMA's θ, pNML's
    λ). `paper` lists the paper's own numbers for this line, as (x, table, row, column) of
    its transcription: published values are only ever read from there."""

    label: str
    role: str = ""
    match: dict[str, Any] = field(default_factory=dict)
    metric: str = "accuracy"
    requires: tuple[str, ...] = ()
    cells: tuple[tuple[float, Cell], ...] = ()
    paper: tuple[tuple[float, str, str, str], ...] = ()
    grid: str = ""


@dataclass(frozen=True)
class Panel:
    """One axes of a figure, on one data set. `kind`: curve (accuracy against x), restarts
    (accuracy after each restart of one run, read from its per-sample trace) or embedding
    (a t-SNE picture of the role's penultimate-layer features). `note` says where a panel
    goes beyond the paper (an MNIST panel of a CIFAR-only figure)."""

    title: str
    data: str
    series: tuple[Series, ...]
    xlabel: str = "ε (L∞ budget, inputs in [0, 1])"
    ylabel: str = "accuracy (%)"
    xscale: str = "linear"
    vline: float | None = None  # a dashed line (the ε of the paper's table)
    kind: str = "curve"
    note: str = ""


@dataclass(frozen=True)
class FigureSpec:
    id: str  # "zantedeschi:fig3"
    title: str
    suite: str
    roles: dict[tuple[str, str], Role]
    panels: tuple[Panel, ...]
    note: str = ""
    ncols: int = 2

    @property
    def paper(self) -> str:
        return self.id.split(":")[0]


def figures() -> dict[str, FigureSpec]:
    out: dict[str, FigureSpec] = {}
    for paper in PAPERS:
        module = importlib.import_module(f"advbench.report.papers.{paper}")
        for spec in getattr(module, "FIGURES", ()):
            out[spec.id] = spec
    return out


def select_specs(kind: str, name: str, specs: dict, extra: tuple[str, ...] = ()) -> list:
    """`all`, one id, or a paper name (all its tables or figures); else a BadInput naming
    the choices (`extra` first: summary, curves)."""
    from advbench.errors import unknown

    if name == "all":
        return list(specs.values())
    if name in specs:
        return [specs[name]]
    by_paper = [s for s in specs.values() if s.paper == name]
    if by_paper:
        return by_paper
    papers_ = dict.fromkeys(s.paper for s in specs.values())
    raise unknown(kind, name, [*extra, "all", *specs, *papers_])


# A paper's data name -> the suite's ε family key (a suite row's eps is per family).
FAMILY = {"mnist": "mnist", "cifar10": "cifar", "cifar100": "cifar", "imagenet": "imagenet"}


def suite_grid(suite: str, label: str, data: str) -> list[float]:
    """The ε a suite runs a row at for a data set (finite ones: an axis has no ∞)."""
    from advbench import suites

    grid: list[float] = []
    for row in suites.load_suite(suite)["attacks"]:
        if row.get("label") == label:
            grid += [float(e) for e in row["eps"].get(FAMILY[data], [])]
    return sorted({e for e in grid if math.isfinite(e)})
