"""Attack suites: JSON files under benchmarks/suites/, one per evaluation or paper.

A suite lists attacks with their ε per data-set family and parameters at `full` scale (the
paper's settings), plus explicit per-scale overrides: `smoke` for tests (about a minute),
`cpu` for a 2-core machine. Scaling is spelled out in the file, never computed, so a
reader sees exactly what each scale ran.

Suite keys: name, description, n (samples per scale), seed (default for --seed),
only_correct, attacks. Row keys: attack, label (the paper's name for the row), eps (per
family; "inf" allowed for minimal attacks), params (full scale), family (params per family),
scale (params per scale, applied last), n (the row's own samples per scale), targeted (all-
others | random), store_examples (keep the adversarial examples at the row's largest ε
beside the database, for a table that measures them), shortcuts (suite or row; default
true: a budget attack over several ε takes an instance broken at a smaller ε as broken at
the next instead of attacking it again; papers whose protocol attacks every ε afresh set
false), judge (a minimal attack's example at each ε: `minimal`, counted where its norm is
within ε, or `clip`, its perturbation clipped onto the ε-ball and judged, as foolbox 3's
`epsilons` do), why (free text: the measurement behind a row's parameters, for a reader
of the file; it changes no job), source (where a transfer row's
examples are crafted: `root`, `parent`, `base`, `model:NAME`, `arch:ARCH`, `proxy:ARCH` or
`given`; see jobs.SOURCES). A row without `source` is white-box. `--source-model` and
`--proxy` fill only the rows that ask for a model (`given`; `--source-model` also picks the
model of an `arch:` row, `--proxy` the architecture of a `proxy:` row); white-box rows stay
white-box. The older key `transfer: "undefended"` reads as `source: "root"`. Suite key
`cascade`: the row labels in the order `attack --cascade` runs them (cheap and strong first,
as AutoAttack orders its attacks); rows it does not name follow in suite order.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from advbench.data import family
from advbench.errors import BadInput, unknown
from advbench.jobs import AttackJob, make_job

SUITES_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "suites"
SCALES = ("smoke", "cpu", "full")


def available() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SUITES_DIR.glob("*.json"))}


def load_suite(name: str) -> dict[str, Any]:
    path = Path(name)
    if path.suffix == ".json" and (path.exists() or path.is_symlink()):
        if not path.is_file():
            raise BadInput(f"--suite {name} is not a file")
        return validate_suite(_read_json(path), name)
    suites = available()
    if name not in suites:
        raise unknown("suite", name, suites)
    return validate_suite(_read_json(suites[name]), name)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--suite {path} cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"--suite {path} is not valid JSON ({exc})") from None


def validate_suite(doc: Any, name: str) -> dict[str, Any]:
    """A suite's shape, checked before anything runs: one line naming what is wrong."""

    def bad(what: str) -> BadInput:
        return BadInput(f"--suite {name}: {what}")

    if not isinstance(doc, dict):
        raise bad(f"must be a JSON object with keys name, n, attacks; got a {type(doc).__name__}")
    missing = [k for k in ("name", "n", "attacks") if k not in doc]
    if missing:
        raise bad(f"lacks {', '.join(missing)} (a suite has name, n, attacks)")
    n = doc["n"]
    if (
        not isinstance(n, dict)
        or not n
        or not all(
            k in SCALES and isinstance(v, int) and not isinstance(v, bool) and v > 0
            for k, v in n.items()
        )
    ):
        raise bad(f"n must map scales ({', '.join(SCALES)}) to sample counts > 0; got {n!r}")
    unknown_keys = sorted(set(doc) - SUITE_KEYS)
    if unknown_keys:
        raise bad(f"unknown key {unknown_keys[0]!r}; valid: {', '.join(sorted(SUITE_KEYS))}")
    seed = doc.get("seed", 0)
    if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**63):
        raise bad(f"seed must be an integer in [0, 2^63); got {seed!r}")
    for key in ("only_correct", "shortcuts"):
        if not isinstance(doc.get(key, False), bool):
            raise bad(f"{key} must be true or false; got {doc[key]!r}")
    attacks = doc["attacks"]
    if not isinstance(attacks, list) or not attacks:
        raise bad("attacks must be a non-empty list of rows")
    for i, row in enumerate(attacks):
        if not isinstance(row, dict) or "attack" not in row or "eps" not in row:
            raise bad(f"attacks[{i}] must be an object with attack and eps")
        eps = row["eps"]
        if not isinstance(eps, dict) or not all(
            isinstance(v, list) and all(_is_eps(e) for e in v) for v in eps.values()
        ):
            raise bad(
                f"attacks[{i}].eps must map data-set families (mnist, cifar, imagenet) to "
                f"lists of budgets; got {eps!r}"
            )
        _check_row(row, f"attacks[{i}]", bad)
    order = doc.get("cascade", [])
    if not isinstance(order, list) or not all(isinstance(x, str) for x in order):
        raise bad(f"cascade must be a list of row labels; got {order!r}")
    for label in order:
        if label not in labels(doc) or order.count(label) > 1:
            why = "twice" if label in labels(doc) else "but no row has that label"
            raise bad(f"cascade names {label!r} {why}; labels: {', '.join(labels(doc))}")
    return doc


SUITE_KEYS = {"name", "description", "n", "seed", "only_correct", "shortcuts", "attacks",
              "cascade"}  # fmt: skip
ROW_KEYS = {"attack", "label", "eps", "params", "family", "scale", "n", "targeted",
            "store_examples", "source", "transfer", "shortcuts", "judge", "why"}  # fmt: skip


def _check_row(row: dict[str, Any], where: str, bad) -> None:
    """A row's keys and types, and its parameters resolved at every family and scale it
    lists (so a bad value fails when the suite loads, not an hour into a run)."""
    from advbench.attacks import ATTACKS
    from advbench.jobs import JUDGES, TARGETED

    extra = sorted(set(row) - ROW_KEYS)
    if extra:
        raise bad(f"{where} has an unknown key {extra[0]!r}; valid: {', '.join(sorted(ROW_KEYS))}")
    for key in ("attack", "label", "source", "transfer", "why"):
        if key in row and not isinstance(row[key], str):
            raise bad(f"{where}.{key} must be a string; got {row[key]!r}")
    for key in ("store_examples", "shortcuts"):
        if key in row and not isinstance(row[key], bool):
            raise bad(f"{where}.{key} must be true or false; got {row[key]!r}")
    if row.get("judge", "minimal") not in JUDGES:
        raise bad(f"{where}.judge {row['judge']!r} is not one of: {', '.join(JUDGES)}")
    if row.get("targeted") is not None and row["targeted"] not in TARGETED:
        raise bad(f"{where}.targeted {row['targeted']!r} is not one of: {', '.join(TARGETED)}")
    params = row.get("params", {})
    if not isinstance(params, dict):
        raise bad(f"{where}.params must be an object of parameter values; got {params!r}")
    for key in ("family", "scale"):
        inner = row.get(key, {})
        if not isinstance(inner, dict) or not all(isinstance(v, dict) for v in inner.values()):
            raise bad(f"{where}.{key} must map names to objects of parameter values; "
                      f"got {inner!r}")  # fmt: skip
    bad_scales = sorted(set(row.get("scale", {})) - set(SCALES))
    if bad_scales:
        raise bad(f"{where}.scale has {bad_scales[0]!r}; scales: {', '.join(SCALES)}")
    if "n" in row and (
        not isinstance(row["n"], dict)
        or not all(
            k in SCALES and isinstance(v, int) and not isinstance(v, bool) and v > 0
            for k, v in row["n"].items()
        )  # fmt: skip
    ):
        raise bad(
            f"{where}.n must map scales ({', '.join(SCALES)}) to counts > 0; got {row['n']!r}"
        )
    try:
        entry = ATTACKS.get(row["attack"])
        for fam in row["eps"]:
            for sc in SCALES:
                entry.resolve(row_params(row, fam, sc))
    except BadInput as exc:
        raise bad(f"{where} ({row.get('label') or row['attack']}): {exc}") from None


def row_params(row: dict[str, Any], fam: str, scale: str) -> dict[str, Any]:
    """A row's parameters on a data-set family at a scale: full-scale params, then the
    family's, then the scale's (applied last)."""
    return {**row.get("params", {}), **row.get("family", {}).get(fam, {}),
            **row.get("scale", {}).get(scale, {})}  # fmt: skip


def _is_eps(e: Any) -> bool:
    return e == "inf" or (isinstance(e, (int, float)) and not isinstance(e, bool))


def suite_jobs_scale_check(suite: dict[str, Any], scale: str) -> None:
    if scale not in SCALES:
        raise unknown("scale", scale, SCALES)
    if scale not in suite["n"]:
        raise BadInput(
            f"suite {suite['name']!r} has no {scale} scale; it has {', '.join(suite['n'])}"
        )


def labels(suite: dict[str, Any]) -> list[str]:
    """The suite's row labels (a row without one is named by its attack)."""
    return [item.get("label") or item["attack"] for item in suite["attacks"]]


def check_labels(suite: dict[str, Any], only: list[str] | None) -> None:
    for label in only or []:
        if label not in labels(suite):
            raise BadInput(f"suite {suite['name']!r} has no row labelled {label!r}; valid "
                           f"choices: {', '.join(labels(suite))}")  # fmt: skip


def suite_jobs(
    suite: dict[str, Any], dataset: str, scale: str, *, only: list[str] | None = None
) -> tuple[list[AttackJob], int]:
    """The suite's attacks for `dataset` at `scale` (only the rows labelled in `only`, when
    given), and its sample count at that scale."""
    suite_jobs_scale_check(suite, scale)
    check_labels(suite, only)
    fam = family(dataset)
    jobs = []
    for item in suite["attacks"]:
        eps = item["eps"].get(fam)
        if eps is None or (only and (item.get("label") or item["attack"]) not in only):
            continue
        params = row_params(item, fam, scale)
        jobs.append(
            make_job(
                item["attack"],
                [float(e) for e in eps],
                params,
                item.get("label"),
                suite["name"],
                targeted=item.get("targeted"),
                source=item.get("source", item.get("transfer")),
                only_correct=bool(suite.get("only_correct", False)),
                n=item["n"][scale] if "n" in item else None,
                store_examples=bool(item.get("store_examples", False)),
                shortcuts=bool(item.get("shortcuts", suite.get("shortcuts", True))),
                judge=item.get("judge", "minimal"),
            )
        )
    if not jobs:
        raise BadInput(f"suite {suite['name']!r} has no attacks for data set {dataset!r}")
    return jobs, int(suite["n"][scale])


def cascade_order(suite: dict[str, Any], jobs: list[AttackJob]) -> list[AttackJob]:
    """`jobs` in the suite's cascade order: the rows its `cascade` key names, in that order,
    then the others in suite order."""
    order = {label: k for k, label in enumerate(suite.get("cascade", []))}
    last = len(order)
    return sorted(jobs, key=lambda j: order.get(j.label or j.attack, last))


@functools.cache
def allows_shortcuts(suite: str) -> bool:
    """The suite's `shortcuts` flag. False for the five papers' suites: each attacks every
    ε afresh, so the cells of its tables and figures take only runs made that way."""
    try:
        return bool(load_suite(suite).get("shortcuts", True))
    except Exception:  # noqa: BLE001 - a spec whose suite is not on disk: no constraint
        return True


def is_current(suite, label, scale, attack, config: str | None, cache: dict | None = None):
    """Whether a run was made with its suite row's attack and parameters as they are now at
    its scale (True for a run outside any suite). `cache` keeps the rows' recipes across
    calls of one report. A run that took what a smaller ε broke (`shortcut_from`, the
    ε-chain) is not current in a suite that now attacks every ε afresh: it is not that
    protocol's number, on a page, in the checklist or in a paper's time."""
    if not (suite and label and scale):
        return True
    cfg = json.loads(config or "{}")
    if "shortcut_from" in cfg and not allows_shortcuts(suite):  # cached per suite
        return False
    key = (suite, label, scale, attack, cfg.get("dataset"))
    cache = {} if cache is None else cache
    if key not in cache:
        cache[key] = recipe(*key)
    want = cache[key]
    mine = (_recipe_params(cfg.get("params")), cfg.get("judge", "minimal"))
    return want is None or mine == want


def recipe(suite: str, label: str, scale: str, attack: str, dataset: str | None):
    """The identifying parameters and judging that the suite's row `label` gives `attack`
    at `scale` on `dataset` today (the job `suite_jobs` makes of it); None where that
    cannot be said (no such suite, row or data set)."""
    from advbench.attacks import ATTACKS

    if dataset is None:
        return None
    try:
        jobs, _ = suite_jobs(load_suite(suite), dataset, scale, only=[label])
    except Exception:  # noqa: BLE001 - a run from an unknown or changed suite stays usable
        return None
    if len(jobs) != 1:
        return None
    if jobs[0].attack != attack:  # the row now runs another attack (madnet's bounded C&W)
        return {"attack": jobs[0].attack}, None
    return _recipe_params(ATTACKS.get(attack).identity(jobs[0].params)), jobs[0].judge


def _recipe_params(params: dict | None) -> dict:
    """A run's parameters as its suite row's recipe sees them: early stop is the plan's
    choice (shortcuts), not the row's, so runs with and without it both count."""
    return {k: v for k, v in (params or {}).items() if k != "early_stop"}
