"""Where a transfer row crafts its examples (jobs.SOURCES: root, parent, base, arch:ARCH,
model:NAME), and which gradient an attack follows through a defense's non-differentiable step.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

from advbench.errors import BadInput, unknown


def _stored(db, name: str) -> dict[str, Any]:
    """A stored model's row; an unknown name is a BadInput listing the stored ones."""
    from advbench.catalogue import model_row

    return model_row(db, name)


def _root(db, row) -> dict[str, Any]:
    """The undefended model a hardened one descends from."""
    seen = set()
    while row["defense"] and row["parent"] and row["name"] not in seen:
        seen.add(row["name"])
        row = db["models"].get(row["parent"])
    return row


class NoSource(Exception):
    """A job's source names no model here; the job is skipped with this reason as a note."""


def _undefended_of_arch(db, arch: str, dataset: str) -> dict[str, Any]:
    rows = [
        r
        for r in db["models"].rows_where(
            "arch = ? and dataset = ? and defense is null", [arch, dataset], order_by="name"
        )
        if json.loads(r["config"] or "{}").get("kind") == "train"
    ]
    if not rows:
        raise NoSource(
            f"no undefended {arch} model on {dataset} is stored to craft on (source "
            f"arch:{arch}): `advbench train --arch {arch} --dataset {dataset}`, or name "
            "another with --source-model"
        )
    if len(rows) > 1:  # an architecture variant (brelu) trained from scratch is not "the" one
        from advbench.models import default_activation

        plain = default_activation(arch)[0]
        rows = [r for r in rows if r["activation"] == plain] or rows
    if len(rows) > 1:
        found = ", ".join(r["name"] for r in rows)
        raise BadInput(
            f"source arch:{arch}: {len(rows)} undefended {arch} models on {dataset} "
            f"({found}); name one with --source-model"
        )
    return rows[0]


def resolve_source(db, model_row: dict[str, Any], source: str) -> dict[str, Any]:
    """The stored row a job's `source` names (SOURCES); NoSource where there is none."""
    kind, _, arg = source.partition(":")
    if source in ("root", "undefended"):  # "undefended": suites written before 0.1's rows
        return _root(db, model_row)
    if source == "parent":
        if not model_row["parent"]:
            raise NoSource(f"{model_row['name']} has no parent model to craft on")
        return _stored(db, model_row["parent"])
    if source == "base":
        wrapped = json.loads(model_row["config"] or "{}").get("kind") == "wrap"
        return _stored(db, model_row["parent"]) if wrapped else model_row
    if source == "given":
        raise NoSource("its examples are crafted on a model you name (--source-model or --proxy)")
    if kind == "arch" and arg:
        return _undefended_of_arch(db, arg, model_row["dataset"])
    if kind == "proxy":
        raise BadInput(f"source {source}: a proxy is trained by `advbench attack` (--proxy)")
    return _stored(db, arg if kind == "model" and arg else source)


def no_gradient_choice(gradient: str, names: Sequence[str]) -> BadInput:
    return BadInput(
        f"--gradient {gradient}: {', '.join(names)} has no non-differentiable step to choose "
        "a gradient for (only inference-time defenses such as feature-squeezing have)"
    )


def set_gradient(model, requested: str | None) -> str | None:
    """Choose the gradient white-box attacks see through a model whose forward has a
    non-differentiable step (`model.gradients` lists the choices, the first the default);
    None for every other model, where autograd's gradient is the only one."""
    modes = getattr(model, "gradients", None)
    if not modes:
        return None
    mode = requested or modes[0]
    if mode not in modes:
        raise unknown("--gradient", mode, modes)
    model.gradient = mode
    return mode


@contextlib.contextmanager
def frozen(*models):
    """Weights need no gradients during an attack. foolbox (through eagerpy) calls
    `.backward()`, which otherwise computes every weight's gradient as well: about a third
    of PGD's time on the Madry net (benchmarks/attack_speed.py)."""
    params = [p for m in models for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)
