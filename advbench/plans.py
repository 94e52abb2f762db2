"""Reproduction plans: how each paper's models are made, per scale, as data.

`benchmarks/plans/PAPER.json` holds what a paper's reproduction needs beyond what its
tables and figures already declare (the model roles in `advbench/report/papers/PAPER.py`
and the suite in `benchmarks/suites/PAPER.json`): training epochs per scale, the harden
arguments of roles whose recipe is not their definition (an alias, `--from-scratch`), the
per-scale extras (fewer PGD-training steps below full scale), and base weights the paper
took from elsewhere. `report --missing` and `reproduce` read the same plan.

A role without an entry is made from its definition: a root role by `advbench train --arch
ARCH` (and its activation), a child by `advbench harden --model PARENT --defense DEFENSE`
with its parameters as `--param`, `--recipe` and `--from-scratch` as its configuration
predicates say. So the command that makes a model is the one its cell then matches.

Keys: paper, suite, description, epochs (per scale: train, harden, proxy; null: the
command's default, the paper's setting), models (role key, or a pattern such as
`ours-lambda*`: harden or train arguments, scale: {data: {scale: extra arguments}}, only:
the scales the role is made at, why), external ("data/role": where the paper's own
weights come from).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from advbench.errors import BadInput, unknown

# The five papers, in the order their pages and listings show them (a plan file each).
PAPERS = ("fidel", "zantedeschi", "madnet", "jakubovitz", "pesso")
PLANS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "plans"
_KEYS = {"paper", "suite", "description", "epochs", "models", "external", "claims"}
# a claim: its sentence, cells a and b, the paper's direction; a caveat shown with its
# verdict (note), where the measured unit is not the paper's, why (not_comparable), and the
# cell of a's same-budget control it is judged against (control, [table, row, column])
_CLAIM_KEYS = {"claim", "a", "b", "expect", "note", "not_comparable", "control"}
_MODEL_KEYS = {"harden", "train", "scale", "only", "why"}
SCALES = ("smoke", "cpu", "full")
# The scale of the reference pages committed under results/PAPER/: its models are named
# PAPER-ROLE-DATASET, every other scale's PAPER-ROLE-DATASET-SCALE (`model_name`)
REFERENCE_SCALE = "cpu"


def model_name(paper: str, key: str, dataset: str, scale: str) -> str:
    """The name a plan gives the model of a role: its scale in the name, so a plan at one
    scale never takes another scale's model for its own (a cpu table filled by a 1-epoch
    smoke model would be a wrong number)."""
    base = f"{paper}-{key}-{dataset}"
    return base if scale == REFERENCE_SCALE else f"{base}-{scale}"


def other_scale(name: str, paper: str, key: str, dataset: str, scale: str) -> bool:
    """Whether `name` is what the plan names this role at a scale other than `scale`."""
    return any(name == model_name(paper, key, dataset, s) for s in SCALES if s != scale)


def available() -> list[str]:
    return sorted(p.stem for p in PLANS_DIR.glob("*.json"))


def load(paper: str) -> dict[str, Any]:
    path = PLANS_DIR / f"{paper}.json"
    if not path.is_file():
        raise unknown("paper", paper, available())
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BadInput(f"plan {path} is not valid JSON ({exc})") from None
    return validate(doc, str(path))


def validate(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise BadInput(f"plan {where}: a JSON object expected")
    extra = set(doc) - _KEYS
    if extra:
        raise BadInput(f"plan {where}: unknown key(s) {', '.join(sorted(extra))}; valid: "
                       f"{', '.join(sorted(_KEYS))}")  # fmt: skip
    for scale in SCALES:
        epochs = doc.get("epochs", {}).get(scale, {})
        for kind in ("train", "harden", "proxy"):
            value = epochs.get(kind)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise BadInput(f"plan {where}: epochs.{scale}.{kind} must be an integer ≥ 1 "
                               f"or null, not {value!r}")  # fmt: skip
    for key, model in doc.get("models", {}).items():
        bad = set(model) - _MODEL_KEYS
        if bad:
            valid = ", ".join(sorted(_MODEL_KEYS))
            raise BadInput(f"plan {where}: models.{key} has unknown key(s) "
                           f"{', '.join(sorted(bad))}; valid: {valid}")  # fmt: skip
        bad_scales = set(model.get("only", SCALES)) - set(SCALES)
        if bad_scales:
            names = ", ".join(sorted(bad_scales))
            raise BadInput(f"plan {where}: models.{key}.only names unknown scale(s) {names}; "
                           f"valid: {', '.join(SCALES)}")  # fmt: skip
        for kind in ("harden", "train"):
            args = model.get(kind, [])
            if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
                raise BadInput(f"plan {where}: models.{key}.{kind} must be a list of strings")
    for i, claim in enumerate(doc.get("claims", [])):
        cells = isinstance(claim, dict) and all(
            isinstance(claim.get(k), list) and len(claim[k]) == 3 for k in ("a", "b")
        )
        keys = set(claim) if isinstance(claim, dict) else set()
        ok = cells and {"claim", "a", "b", "expect"} <= keys <= _CLAIM_KEYS
        if ok and "control" in claim:
            ok = isinstance(claim["control"], list) and len(claim["control"]) == 3
        if not ok or claim["expect"] not in ("<", ">"):
            raise BadInput(f"plan {where}: claims[{i}] needs claim, a and b ([table, row, "
                           "column]) and expect ('>' or '<'); note, not_comparable (why the "
                           "published effect's unit differs) and control ([table, row, column] "
                           "of a's same-budget control) are optional")  # fmt: skip
    return doc


def epochs(paper: str, scale: str) -> dict[str, int | None]:
    return {k: load(paper)["epochs"].get(scale, {}).get(k) for k in ("train", "harden", "proxy")}


def entry(paper: str, key: str) -> dict[str, Any]:
    """The plan's entry for a role: its own key, else the first pattern that matches it;
    a seed replicate ("KEY-sN") or a same-budget control ("KEY-control") without its own
    entry is made as KEY is (its scale's arguments), plus what sets it apart."""
    import re
    from fnmatch import fnmatchcase

    models = load(paper).get("models", {})
    if key in models:
        return models[key]
    found = next((v for k, v in models.items() if fnmatchcase(key, k)), None)
    if found is not None:
        return found
    base = re.sub(r"(-control)?(-s\d+)?$", "", key)
    return entry(paper, base) if base != key else {}


def made_at(paper: str, key: str, scale: str) -> bool:
    """Whether the plan makes the role's model at this scale (`only`; default: every)."""
    return scale in entry(paper, key).get("only", SCALES)


def recipe(paper: str, role, data: str, scale: str) -> list[str]:
    """The train or harden arguments that make a model of `role` (without --model, --name,
    --epochs and the common options)."""
    entry_ = entry(paper, role.key)
    extra = entry_.get("scale", {}).get(data, {}).get(scale, [])
    if getattr(role, "seed", None):  # a seed replicate (report.papers.with_seeds)
        extra = [*extra, "--seed", str(role.seed)]
    if role.parent is None:
        args = entry_.get("train")
        if args is None:
            args = ["--arch", role.arch]
            if role.activation not in (None, "relu"):
                args += ["--activation", role.activation]
        return [*args, *extra]
    params = []
    for key, value in role.params.items():
        params += ["--param", f"{key}={value:.6g}" if isinstance(value, float) else
                   f"{key}={value}"]  # fmt: skip
    args = entry_.get("harden")
    if args is None:
        args = ["--defense", role.defense]
        if role.config.get("recipe"):
            args += ["--recipe", role.config["recipe"]]
        if role.config.get("from_scratch"):
            args.append("--from-scratch")
    # what the role fixes comes last and wins over the plan's scale arguments: a control's
    # 0 over the weight its defense is given at this scale
    return _last_param_wins([*args, *extra, *params])


def _last_param_wins(argv: list[str]) -> list[str]:
    """`argv` with each `--param KEY=...` kept at its last occurrence only."""
    last = {argv[i + 1].partition("=")[0]: i for i, a in enumerate(argv[:-1]) if a == "--param"}
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--param" and i + 1 < len(argv) and last[argv[i + 1].partition("=")[0]] != i:
            skip = True
            continue
        out.append(a)
    return out


def external(paper: str) -> dict[str, str]:
    return load(paper).get("external", {})
