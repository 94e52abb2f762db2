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
beside the database, for a table that measures them), source (where a transfer row's
examples are crafted: `root`, `parent`, `base`, `model:NAME`, `arch:ARCH`, `proxy:ARCH` or
`given`; see engine.SOURCES). A row without `source` is white-box. `--source-model` and
`--proxy` fill only the rows that ask for a model (`given`; `--source-model` also picks the
model of an `arch:` row, `--proxy` the architecture of a `proxy:` row); white-box rows stay
white-box. The older key `transfer: "undefended"` reads as `source: "root"`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from advbench.data import family
from advbench.engine import AttackJob, make_job
from advbench.errors import BadInput, unknown

SUITES_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "suites"
SCALES = ("smoke", "cpu", "full")


def available() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SUITES_DIR.glob("*.json"))}


def load_suite(name: str) -> dict[str, Any]:
    path = Path(name)
    if path.suffix == ".json" and path.exists():
        return json.loads(path.read_text())
    suites = available()
    if name not in suites:
        raise unknown("suite", name, suites)
    return json.loads(suites[name].read_text())


def suite_jobs(suite: dict[str, Any], dataset: str, scale: str) -> tuple[list[AttackJob], int]:
    """The suite's attacks for `dataset` at `scale`, and its sample count at that scale."""
    if scale not in SCALES:
        raise unknown("scale", scale, SCALES)
    fam = family(dataset)
    jobs = []
    for item in suite["attacks"]:
        eps = item["eps"].get(fam)
        if eps is None:
            continue
        params = {
            **item.get("params", {}),
            **item.get("family", {}).get(fam, {}),
            **item.get("scale", {}).get(scale, {}),
        }
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
            )
        )
    if not jobs:
        raise BadInput(f"suite {suite['name']!r} has no attacks for data set {dataset!r}")
    return jobs, int(suite["n"][scale])
