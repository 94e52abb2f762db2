"""Run attacks: expand (attack x ε) into runs, skip finished ones, batch loop, one
transaction per batch.

A run's id is the hash of its canonical configuration (model checksum, attack, resolved
parameters, ε, samples, seed, batch size), so the same request twice is the same run.
Each batch's per-sample rows are written in one transaction, so an interruption loses at
most that batch, and each batch is seeded from (seed, batch), so a resumed run ends with
the per-sample results an uninterrupted one gives.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import sqlite_utils
import torch

from advbench import crafted as crafted_cache
from advbench import data as datasets
from advbench.attacks import ATTACKS, Crafted, norm_of, unpack
from advbench.config import canonical_json, config_hash
from advbench.diagnostics import Observer, stability
from advbench.errors import BadInput, unknown
from advbench.fit import batch_seed
from advbench.jobs import AttackJob
from advbench.metrics import perturbation_norms, wilson_interval
from advbench.store import SAMPLE_COUNTS, examples, now, transaction

# Minimal norms within this relative tolerance of ε count as within budget (float32 noise).
_EPS_TOL = 1e-5


def select_samples(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """The first n of a seeded permutation of the split: the same samples on every model."""
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    return perm[:n]


@dataclass
class Instances:
    """What one run attacks: a test-set index and (targeted) a target label per instance."""

    idx: torch.Tensor
    target: torch.Tensor | None
    n_samples: int

    def __len__(self) -> int:
        return len(self.idx)


def _select_correct(model, test, n: int, seed: int, device) -> torch.Tensor:
    """madnet's protocol: the first n of the seeded permutation the model classifies right."""
    perm = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))
    keep = []
    for i in range(0, len(perm), 500):
        chunk = perm[i : i + 500]
        x, y = test.get(chunk)
        keep.append(chunk[_predict(model, x.to(device)).cpu() == y])
        if sum(len(k) for k in keep) >= n:
            break
    chosen = torch.cat(keep)
    if len(chosen) < n:
        raise BadInput(
            f"--only-correct: the model classifies only {len(chosen)} test samples correctly, "
            f"fewer than --n {n}"
        )
    return chosen[:n]


def target_starts(model, test, inst: Instances, seed: int, device) -> torch.Tensor:
    """Per targeted instance, the test index of a start image the crafting model classifies
    as the target (HopSkipJump's targeted start, as its authors do), drawn with a seeded
    generator among all such images other than the instance itself; -1 where none exists."""
    preds = torch.cat(
        [
            _predict(model, test.get(torch.arange(i, min(i + 500, len(test))))[0].to(device)).cpu()
            for i in range(0, len(test), 500)
        ]
    )
    g = torch.Generator().manual_seed(batch_seed(seed, 11))
    out = torch.full((len(inst),), -1, dtype=torch.long)
    for i, (idx, t) in enumerate(zip(inst.idx.tolist(), inst.target.tolist(), strict=True)):
        pool = torch.nonzero(preds == t).flatten()
        pool = pool[pool != idx]
        if len(pool):
            out[i] = pool[torch.randint(len(pool), (1,), generator=g)]
    return out


def make_instances(model, test, job: AttackJob, n: int, seed: int, classes: int, device):
    idx = (
        _select_correct(model, test, n, seed, device)
        if job.only_correct
        else select_samples(test.labels, n, seed)
    )
    if job.targeted is None:
        return Instances(idx, None, n)
    y = test.labels[idx]
    if job.targeted == "all-others":  # fidel: each sample once per other label
        shifts = torch.arange(1, classes)
        return Instances(
            idx.repeat_interleave(classes - 1),
            ((y[:, None] + shifts[None, :]) % classes).flatten(),
            n,
        )
    g = torch.Generator().manual_seed(batch_seed(seed, 7))
    return Instances(idx, (y + torch.randint(1, classes, (n,), generator=g)) % classes, n)


class Counted(torch.nn.Module):
    """Wraps a model to count the input rows it forwards and back-propagates through, so
    every sample row can say what the attack cost (passes per instance, or queries), and
    to show each pass to the batch's `diagnostics.Observer`.

    A forward whose output has no gradient with respect to an input that asks for one (a
    step outside autograd: numpy, a hard argmax) is given a zero gradient instead, and
    counted as unavailable: the attack runs and fails, and the checklist says why, rather
    than the run crashing."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.input_shape = inner.input_shape
        self.classes = inner.classes
        self.rows_forward = 0
        self.rows_backward = 0
        self.observer: Observer | None = None
        self.rows: torch.Tensor | None = None  # see restrict
        if hasattr(inner, "bpda"):
            self.bpda = self._bpda

    def _observe(self, x, out):
        if not (torch.is_grad_enabled() and x.requires_grad):
            return out
        if not out.requires_grad:
            out = out + 0.0 * x.flatten(1).sum(1, keepdim=True).to(out.dtype)
            if self.observer is not None:
                self.observer.unavailable += 1
        observer, rows = self.observer, self.rows
        if observer is not None and observer.matches(x, rows):
            observer.forward(x, out, rows)
            x.register_hook(lambda g: observer.grad(g, rows))
        return out

    def restrict(self, rows: torch.Tensor | None) -> None:
        """The next passes hold only these rows of the batch, in order (an attack that
        stops each instance at its first success: `attacks.own.pgd_early_stop`); None: all
        of them. The diagnostics are credited to those rows."""
        self.rows = rows

    def _count(self, x):
        self.rows_forward += len(x)
        if x.requires_grad:
            x.register_hook(self._backward_hook(len(x)))

    def _backward_hook(self, rows):
        def hook(grad):
            self.rows_backward += rows

        return hook

    def forward(self, x):
        self._count(x)
        return self._observe(x, self.inner(x))

    def _bpda(self, x):
        self._count(x)
        return self._observe(x, self.inner.bpda(x))

    def reset(self) -> None:
        self.rows_forward = self.rows_backward = 0
        self.rows = None


@dataclass
class RunSummary:
    id: str
    attack: str
    label: str | None
    eps: float
    n: int
    robust: int
    status: str
    wall_s: float
    reused: bool
    targeted: str | None = None
    threat: str = "white-box"
    init_failed: int = 0  # instances the attack could not start on (not in n)
    gradient: str | None = None  # through a non-differentiable defense (feature-squeezing)

    @property
    def accuracy(self) -> float:
        return self.robust / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.robust, self.n)


def early_stopped(job: AttackJob) -> AttackJob:
    """With shortcuts on, a white-box budget attack that can stop each instance at its
    first adversarial iterate (PGD, keep=first-success) does: an accuracy run's question is
    answered there, and the example is never weaker. A transfer row is not: its examples
    must fool the target, not just the source, so they keep every step. The parameter is
    part of the run's identity, so the two plans are different runs."""
    entry = ATTACKS.get(job.attack)
    can = any(p.name == "early_stop" for p in entry.params)
    if (not job.shortcuts or not can or job.store_examples
            or job.params.get("keep", "first-success") != "first-success"):  # fmt: skip
        return job
    return replace(job, params={**job.params, "early_stop": True})


def _run_rows(
    model_row,
    job: AttackJob,
    instances: Instances,
    seed: int,
    batch_size: int,
    scale: str | None,
    source_row=None,
    threat: str = "white-box",
    gradient: str | None = None,
    cascade_from: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The job's runs, one per ε. `cascade_from` (a cascade): the ids of the earlier runs of
    the cascade in this norm, whose broken instances this job takes as broken."""
    kind = ATTACKS.get(job.attack).meta["kind"]
    base = {
        "model": model_row["name"],
        "model_checksum": model_row["checksum"],
        "attack": job.attack,
        "params": ATTACKS.get(job.attack).identity(job.params),
        "dataset": model_row["dataset"],
        "split": "test",
        "n": instances.n_samples,
        "seed": seed,
        "batch_size": batch_size,
        "targeted": job.targeted,
    }
    # Older identities stay valid: keys are added only when they differ from the default.
    if job.only_correct:
        base["only_correct"] = True
    if source_row is not None:
        base.update(threat=threat, source_checksum=source_row["checksum"])
    if gradient is not None:  # only models with a choice of gradient (feature-squeezing)
        base["gradient"] = gradient
    meta = ATTACKS.get(job.attack).meta
    if meta.get("revision"):  # the attack's numbers changed: runs before it are not reused
        base["revision"] = meta["revision"]
    if job.targeted and meta.get("start"):
        base["start"] = job.params.get("start", meta["start"])
    if job.judge != "minimal":
        base["judge"] = job.judge
    if cascade_from is not None:  # present even when empty: a cascade's runs are its own
        base["cascade_from"] = list(cascade_from)
    group = config_hash(base)
    rows = []
    chain = job.shortcuts and kind == "budget" and source_row is None and not job.store_examples
    previous = None
    for eps in job.eps:  # ascending (make_job sorts them)
        cfg = {**base, "eps": eps}
        if cascade_from is not None and kind == "budget" and previous is not None:
            cfg["cascade_from"] = [*cascade_from, *(r["id"] for r in rows)]  # its own smaller ε
        elif chain and previous is not None:  # takes what the run at the next smaller ε broke
            cfg["shortcut_from"] = previous
        rows.append(
            {
                "id": config_hash(cfg),
                "model": model_row["name"],
                "model_checksum": model_row["checksum"],
                "defense": model_row["defense"],
                "attack": job.attack,
                "label": job.label,
                "norm": norm_of(job.attack, job.params),
                "kind": kind,
                "eps": eps,
                "config": canonical_json(cfg),
                "group_id": group if kind == "minimal" else config_hash(cfg),
                "dataset": model_row["dataset"],
                "split": "test",
                "n": len(instances),
                "n_samples": instances.n_samples,
                "seed": seed,
                "scale": scale,
                "suite": job.suite,
                "targeted": job.targeted,
                "threat": threat,
                "source_model": None if source_row is None else source_row["name"],
                "source_checksum": None if source_row is None else source_row["checksum"],
                "source_rule": None if source_row is None else (job.declared or job.source),
                "only_correct": int(job.only_correct),
                "gradient": gradient,
            }
        )
        previous = rows[-1]["id"]
    return rows


def _carried(db, run: dict[str, Any], b: _Batch) -> dict[int, dict[str, Any]]:
    """The batch's instances that an earlier run broke within this run's ε (by the stored
    distance in the run's norm), as this run's rows: the same example, outcome and
    diagnostics, no passes spent, `carried_from` naming the run that crafted the example.

    The earlier runs are the run at the next smaller ε of a shortcut chain (the same
    instances, matched by position), or a cascade's earlier runs in this norm (untargeted
    rows, matched by test index: a row with its own smaller n attacks a prefix of the
    same seeded selection), the first that broke an instance in cascade order."""
    cfg = json.loads(run["config"])
    cascade = cfg.get("cascade_from")
    sources = cascade if cascade is not None else [cfg.get("shortcut_from")]
    sources = [s for s in sources if s is not None]
    if not sources:
        return {}
    key = "idx" if cascade is not None else "position"
    where = {int(i): p for i, p in zip(b.idx.tolist(), b.positions, strict=True)}
    values = list(where) if cascade is not None else b.positions
    found = db.execute(
        f"select * from samples where run_id in ({','.join('?' * len(sources))}) "
        f"and {key} in ({','.join('?' * len(values))})",
        [*sources, *values],
    )
    cols = [d[0] for d in found.description]
    order = {rid: k for k, rid in enumerate(sources)}
    rows = sorted((dict(zip(cols, v, strict=True)) for v in found.fetchall()),
                  key=lambda r: order[r["run_id"]])  # fmt: skip
    out = {}
    for row in rows:
        pos = where[row["idx"]] if cascade is not None else row["position"]
        if pos in out:
            continue
        # the run's norm; L0 is stored as a count of features, ε as their share
        dist = row["l0"] / b.x[0].numel() if run["norm"] == "l0" else row[run["norm"]]
        if row["success"] and not row["init_failed"] and dist <= run["eps"] * (1 + _EPS_TOL):
            origin = row["carried_from"] or row["run_id"]
            out[pos] = {**row, "run_id": run["id"], "position": pos, "eps": run["eps"],
                        "fwd": 0.0, "bwd": 0.0, "carried_from": origin}  # fmt: skip
            if cascade is not None:  # another attack's search and trace are not this run's
                out[pos].update(min_norm=None, trace=None)
    return out


@dataclass
class _Batch:
    """One batch of instances and what the evaluated model says about them."""

    positions: list[int]
    idx: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor | None
    clean_pred: torch.Tensor
    start_idx: torch.Tensor | None = None  # test index of each instance's start image

    def hit(self, pred: torch.Tensor) -> torch.Tensor:
        """Attack success: misclassified (untargeted) or classified as the target."""
        return pred != self.y if self.target is None else pred == self.target

    def subset(self, keep: list[int]) -> _Batch:
        """The instances at indexes `keep` of this batch."""
        k = torch.tensor(keep, dtype=torch.long)
        pick = lambda t: None if t is None else t[k.to(t.device)]  # noqa: E731
        return _Batch([self.positions[i] for i in keep], self.idx[k], pick(self.x),
                      pick(self.y), pick(self.target), pick(self.clean_pred),
                      pick(self.start_idx))  # fmt: skip


def _sample_rows(run_id, eps, b: _Batch, adv, adv_pred, crafted, cost, min_norm=None):
    failed = crafted.init_failed
    l0, l2, linf = perturbation_norms((adv - b.x).cpu())
    x_l2 = b.x.flatten(1).norm(dim=1).cpu()
    x_linf = b.x.flatten(1).abs().amax(dim=1).cpu()
    success = b.hit(adv_pred).cpu()
    fwd, bwd = cost
    rows = []
    for i in range(len(b.idx)):
        rows.append(
            {
                "run_id": run_id,
                "idx": int(b.idx[i]),
                "position": int(b.positions[i]),
                "label": int(b.y[i]),
                "target": None if b.target is None else int(b.target[i]),
                "clean_pred": int(b.clean_pred[i]),
                "adv_pred": int(adv_pred[i]),
                "success": int(success[i]),
                "l0": float(l0[i]),
                "l2": float(l2[i]),
                "linf": float(linf[i]),
                "x_l2": float(x_l2[i]),
                "x_linf": float(x_linf[i]),
                "eps": eps,
                "min_norm": None
                if min_norm is None or not torch.isfinite(min_norm[i])
                else float(min_norm[i]),
                "fwd": float(fwd[i]),
                "bwd": float(bwd[i]),
                "trace": None if crafted.trace is None else json.dumps(crafted.trace[i]),
                "start_idx": None
                if b.start_idx is None or b.start_idx[i] < 0
                else int(b.start_idx[i]),
                "init_failed": None if failed is None else int(failed[i]),
                "carried_from": None,
            }
        )
    return rows


def _outputs_not_logits(model, test, device) -> bool:
    """Whether the model's outputs on a few test inputs are probabilities or one-hot."""
    from advbench.diagnostics import output_kind

    x, _ = test.get(torch.arange(min(8, len(test))))
    with torch.no_grad():
        return any(k != "logits" for k in output_kind(model(x.to(device))))


def _rows_of(crafted, keep: list[int]):
    """The rows `keep` of a batch's crafting result (an attack that took the whole batch
    with some instances marked done)."""
    return Crafted(
        crafted.adv[keep],
        trace=None if crafted.trace is None else [crafted.trace[i] for i in keep],
        queries=None if crafted.queries is None else crafted.queries[keep],
        init_failed=None if crafted.init_failed is None else crafted.init_failed[keep],
    )


def _add_diagnostics(rows, advs, b: _Batch, diag, model, source, seed: int, keep=None):
    """The batch's `diagnostics` columns (`diag`: the crafting's, per instance) on each of
    its runs' rows, which hold the instances `keep` of `b` (all by default: a shortcut
    chain attacks only some). Called after every run's result is judged: its predictions
    draw nothing the stored outcomes depend on. The noise check runs on the whole batch, so
    each instance gets the noise it gets in the plain plan."""
    flips, kinds = stability(model, b.x, b.clean_pred, seed)
    if keep is not None:
        b = b.subset(keep)
        flips, kinds = [flips[i] for i in keep], [kinds[i] for i in keep]
    for run_id, run_rows in rows.items():
        fooled = None
        if source is not None:  # did the example fool the model it was crafted on?
            fooled = b.hit(_predict(source, advs[run_id])).cpu().tolist()
        for i, row in enumerate(run_rows):
            row.update(diag[i])
            row.update(noise_flips=flips[i], output_kind=kinds[i],
                       source_success=None if fooled is None else int(fooled[i]))  # fmt: skip


@torch.no_grad()
def _predict(model, x):
    return model(x).argmax(1)


def _norms(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1)
    if norm == "l2":
        return flat.norm(dim=1)
    if norm == "l0":  # share of input features changed
        return (flat.abs() > 1e-7).float().mean(1)
    return flat.abs().amax(dim=1)


def _clip(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """foolbox 3's `clip_perturbation`: the perturbation brought onto the ε-ball."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    size = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = torch.clamp(eps / size, max=1.0)
    return delta * factor.view(-1, *[1] * (delta.dim() - 1))


def _judge_minimal(model, b: _Batch, raw, eps_list, norm: str, craft_model=None, judge="minimal"):
    """From one minimal-perturbation result, the adversarial input at each ε (in `norm`).

    Every minimal attack returns the unperturbed input where it found nothing (the adapters
    enforce it: foolbox's C&W would return a black image), and success is checked with a
    model's own prediction, never the attack's flag: the crafting model's (white-box:
    the model itself; transfer: the source) says whether and at what norm the attack found
    an adversarial; the evaluated model's prediction of it is what gets recorded.
    """
    finite = torch.isfinite(raw.flatten(1)).all(1)  # a diverged search found nothing
    raw = torch.where(finite.view(-1, *[1] * (b.x.dim() - 1)), raw, b.x)
    raw_pred = _predict(model, raw)
    if craft_model is None:
        found = b.hit(raw_pred)
        already = b.hit(b.clean_pred)  # adversarial before any attack: norm 0
    else:
        found = b.hit(_predict(craft_model, raw))
        already = torch.zeros_like(found)
    norms = _norms(raw - b.x, norm)
    min_norm = torch.where(
        already,
        torch.zeros_like(norms),
        torch.where(found, norms, torch.full_like(norms, float("inf"))),
    )
    unfound = torch.isinf(min_norm)  # no adversarial found on the crafting model
    out = {}
    for eps in eps_list:
        if judge == "clip" and math.isfinite(eps):  # foolbox 3's epsilons: fidel's tables
            # where the search found nothing, foolbox's C&W returns its all-zero start
            # (the adapters put x back there): that is what foolbox clips and classifies
            base = torch.where(unfound.view(-1, *[1] * (b.x.dim() - 1)), torch.zeros_like(raw), raw)
            adv = (b.x + _clip(base - b.x, eps, norm)).clamp(0, 1)
            out[eps] = (adv, _predict(model, adv))
            continue
        ok = (min_norm <= eps * (1 + _EPS_TOL)) & ~already
        adv = torch.where(ok.view(-1, *[1] * (b.x.dim() - 1)), raw, b.x)
        adv_pred = torch.where(ok, raw_pred, b.clean_pred)
        out[eps] = (adv, adv_pred)
    return out, min_norm


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


def _done_positions(db, run_id: str) -> set[int]:
    return {r[0] for r in db.execute("select position from samples where run_id = ?", [run_id])}


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


def _start_of(job: AttackJob) -> str | None:
    """Where a targeted attack starts: its `start` parameter, else its registered start."""
    return job.params.get("start", ATTACKS.get(job.attack).meta.get("start"))


def _register(db, rows, env_id: str, force: bool) -> list[dict[str, Any]]:
    """Record runs that still need work (with --force, drop their samples first)."""
    todo = []
    for row in rows:
        stored = list(db["runs"].rows_where("id = ?", [row["id"]]))
        if stored and stored[0]["status"] == "complete" and not force:
            continue
        with transaction(db):
            if force:
                db.execute("delete from samples where run_id = ?", [row["id"]])
            if not stored or force:
                fresh = {**row, "status": "running", "started_at": now(), "wall_s": 0.0,
                         "env_id": env_id}  # fmt: skip
                if force:
                    db["runs"].upsert(fresh, pk="id")
                else:  # a concurrent copy of the command may have registered it just now
                    db["runs"].insert(fresh, pk="id", ignore=True)
        todo.append(row)
    return todo


def _cost(counted: Counted, crafted, size: int):
    """Per-instance forward/backward passes of this batch: the batch's rows / its size, or
    the attack's own per-sample query count. A minimal attack's one search serves every ε,
    so each of its runs records the whole search's cost."""
    if crafted.queries is not None:
        fwd = crafted.queries.float().cpu()
    else:
        fwd = torch.full((size,), counted.rows_forward / size)
    bwd = torch.full((size,), counted.rows_backward / size)
    return fwd, bwd


@dataclass
class _Crafting:
    """One batch's crafting: the attack run on the crafting model, seeded from the batch,
    or, for a transfer row, the same examples from the crafted cache where an earlier
    target of that row made them (`advbench.crafted`)."""

    db: Any
    attack: Any
    counted: Counted
    b: _Batch
    extra: dict
    seed: int
    first: dict[str, Any]  # the first run the batch is for (its norm; credited as maker)
    craft_id: dict[str, Any] | None  # a transfer row's crafting identity (None: white-box)
    batch: int
    force: bool = False  # --force: craft again (and replace the cached entry)

    def craft(self, eps=None):
        """(crafted, (fwd, bwd), diagnostics rows, cache row to store or None)."""
        b, k = self.b, None
        # with some instances marked done (a cascade's carried ones) the examples are not
        # the row's for every instance: never cached for another target to reuse
        if self.craft_id is not None and "done" not in self.extra:
            k = crafted_cache.key(**self.craft_id, eps=eps, seed=self.seed, idx=b.idx,
                                  target=b.target, start_idx=b.start_idx)  # fmt: skip
            hit = None if self.force else crafted_cache.load(self.db, k)
            if hit is not None:
                crafted, cost, diag = hit
                crafted.adv = crafted.adv.to(b.x.device)  # stored on the CPU
                return crafted, cost, diag, None
        torch.manual_seed(self.seed)
        np.random.seed(self.seed % 2**32)  # ART draws from numpy
        counted = self.counted
        counted.reset()
        counted.observer = Observer(b.x, b.y, b.target, self.first["norm"])
        args = () if eps is None else (eps,)
        crafted = unpack(self.attack(counted, b.x, b.y, *args, target=b.target, **self.extra))
        cost = _cost(counted, crafted, len(b.positions))
        diag = counted.observer.rows()
        counted.observer = None
        entry = None
        if k is not None:
            about = {"source_checksum": self.craft_id["source"], "attack": self.craft_id["attack"],
                     "eps": eps, "batch": self.batch, "first_run": self.first["id"]}  # fmt: skip
            entry = crafted_cache.save(self.db, k, crafted, cost, diag, about)
        return crafted, cost, diag, entry


def run_jobs(
    db: sqlite_utils.Database,
    model,
    model_row: dict[str, Any],
    jobs: Sequence[AttackJob],
    *,
    n: int,
    seed: int,
    batch_size: int,
    env_id: str,
    device: str = "cpu",
    force: bool = False,
    scale: str | None = None,
    data_dir=None,
    progress=None,
    load_model=None,
    notes: list[str] | None = None,
    gradient: str | None = None,
    cascade: bool = False,
) -> list[RunSummary]:
    """Execute every pending run of `jobs` against `model`; return a summary per run.

    `cascade` (AutoAttack's worst-case evaluation): the untargeted jobs run in the given
    order and each attacks only the instances every earlier one left robust in its norm
    within the ε (an instance broken at a smaller ε is broken in every larger ball); the
    others are recorded as broken by the example that broke them. Each job's runs are
    labelled "LABEL (cascade)" and are runs of their own, so a row's accuracy in it is the
    worst case over that row and the rows before it.

    `load_model(name) -> (model, row)` loads source models for transfer jobs (default: from
    `db`); `notes` collects jobs that were skipped and why. `gradient` chooses the gradient
    through a crafting model with a non-differentiable step (feature-squeezing:
    straight-through by default, or masked); it is recorded on each such run.
    """
    if n <= 0:
        raise BadInput(f"--n {n} must be > 0")
    if batch_size <= 0:
        raise BadInput(f"--batch-size {batch_size} must be > 0")
    test = datasets.load(model_row["dataset"], "test", data_dir=data_dir)
    model = model.to(device).eval()
    classes = int(model.classes)
    if load_model is None:
        from advbench.catalogue import load_model as load_stored

        def load_model(name):
            model_, _, row_ = load_stored(db, name, device)
            return model_, row_

    plans = []  # (job, instances, rows, source model or None)
    cache: dict[Any, Instances] = {}
    chains: dict[str, list[str]] = {}  # a cascade's runs so far, per norm
    for job in jobs:
        count = job.n or n
        if count > len(test):
            raise BadInput(
                f"--n {count} exceeds the {len(test)} test samples of {model_row['dataset']}"
            )
        key = (count, job.targeted, job.only_correct)
        if key not in cache:
            cache[key] = make_instances(model, test, job, count, seed, classes, device)
        source, source_row, threat = None, None, "white-box"
        if job.source is not None:
            try:
                source_row = resolve_source(db, model_row, job.source)
            except NoSource as why:
                if notes is not None:
                    notes.append(f"{job.label or job.attack}: skipped, {why}")
                continue
            if source_row["dataset"] != model_row["dataset"]:
                raise BadInput(
                    f"--source-model {source_row['name']} is a {source_row['dataset']} model; "
                    f"{model_row['name']} is {model_row['dataset']}"
                )
            source, _ = load_model(source_row["name"])
            source = source.to(device).eval()
            kind = json.loads(source_row["config"] or "{}").get("kind")
            threat = "proxy" if kind == "proxy" else "transfer"
        craft = source if source is not None else model
        needs_logits = ATTACKS.get(job.attack).meta.get("needs_logits")
        if needs_logits and needs_logits(job.params) and _outputs_not_logits(craft, test, device):
            if notes is not None:
                notes.append(
                    f"{job.label or job.attack}: skipped, the model's outputs are probabilities "
                    "or one-hot scores and this attack's loss needs logits (ART refuses them; the "
                    "checklist's outputs check reports it)"
                )
            continue
        uses = ATTACKS.get(job.attack).meta.get("uses_gradient", True)
        # a transfer row crafted on a plain model has autograd's gradient only: --gradient
        # is for the rows that craft on the defended model itself
        if (
            gradient is not None
            and uses
            and source is None
            and not getattr(craft, "gradients", None)
        ):
            raise no_gradient_choice(gradient, [model_row["name"]])
        mode = set_gradient(craft, gradient) if uses else None
        if source is None:
            job = early_stopped(job)
        earlier = None
        if cascade and job.targeted is None and not job.store_examples:
            job = replace(job, label=f"{job.label or job.attack} (cascade)")
            earlier = chains.setdefault(norm_of(job.attack, job.params), [])
        rows = _run_rows(
            model_row, job, cache[key], seed, batch_size, scale, source_row, threat, mode,
            None if earlier is None else list(earlier),
        )  # fmt: skip
        if earlier is not None:
            earlier += [r["id"] for r in rows]
        starts = None
        if job.targeted and _start_of(job) == "target-image":
            starts = target_starts(craft, test, cache[key], seed, device)
        craft_id = None
        if source_row is not None:  # what the examples depend on, besides the batch
            meta = ATTACKS.get(job.attack).meta
            craft_id = {
                "source": source_row["checksum"],
                "gradient": mode,
                "attack": job.attack,
                "params": ATTACKS.get(job.attack).identity(job.params),
                "revision": meta.get("revision"),
                "start": _start_of(job) if job.targeted else None,
                "targeted": job.targeted,
                "dataset": model_row["dataset"],
            }
        plans.append((job, cache[key], rows, source, starts, craft_id))

    pending = []
    for job, inst, rows, source, starts, craft_id in plans:
        todo = _register(db, rows, env_id, force)
        if todo:  # rows[0]: the job's smallest ε, stored already or not
            pending.append((job, inst, todo, source, starts, craft_id, rows[0]))

    def batches_of(inst):
        return (len(inst) + batch_size - 1) // batch_size

    total = sum(
        batches_of(inst) * (1 if ATTACKS.get(j.attack).meta["kind"] == "minimal" else len(r))
        for j, inst, r, *_ in pending
    )
    task = progress.add_task("attack", total=total, metrics="") if progress and total else None
    sources = [p[3] for p in pending if p[3] is not None]
    with frozen(model, *sources):
        for job, inst, todo, source, starts, craft_id, first in pending:
            minimal = ATTACKS.get(job.attack).meta["kind"] == "minimal"
            attack = ATTACKS.get(job.attack).factory(job.params)
            counted = Counted(source if source is not None else model)
            done = {r["id"]: _done_positions(db, r["id"]) for r in todo}
            units = [todo] if minimal else [[r] for r in todo]
            m = len(inst)
            for unit in units:
                for bi in range(batches_of(inst)):
                    pos = list(range(bi * batch_size, min((bi + 1) * batch_size, m)))
                    for r in unit:  # a concurrent copy of this command may have done it
                        if not set(pos) <= done[r["id"]]:
                            done[r["id"]] = _done_positions(db, r["id"])
                    need = [r for r in unit if not set(pos) <= done[r["id"]]]
                    if task is not None:
                        eps_text = ",".join(f"{r['eps']:g}" for r in unit)
                        progress.update(task, description=f"{job.label or job.attack} ε={eps_text}")
                    if not need:
                        if task is not None:
                            progress.advance(task)
                        continue
                    t0 = time.monotonic()
                    idx = inst.idx[pos]
                    x, y = test.get(idx)
                    x, y = x.to(device), y.to(device)
                    target = None if inst.target is None else inst.target[pos].to(device)
                    b = _Batch(pos, idx, x, y, target, _predict(model, x))
                    extra = {}
                    if starts is not None:
                        b.start_idx = starts[pos]
                        # no image of the target class: NaN (the attack draws a noise start)
                        found = test.get(b.start_idx.clamp(min=0))[0].to(device)
                        ok = (b.start_idx >= 0).to(device).view(-1, *[1] * (x.dim() - 1))
                        extra["start"] = torch.where(ok, found, torch.full_like(x, float("nan")))
                    work = _Crafting(db, attack, counted, b, extra, batch_seed(seed, bi),
                                     need[0], craft_id, bi, force)  # fmt: skip
                    rows: dict[str, list[dict[str, Any]]] = {}
                    advs: dict[str, torch.Tensor] = {}
                    if minimal:
                        # a cascade: what earlier attacks broke at an ε is carried there; the
                        # search runs on the instances still robust at some ε, i.e. not
                        # carried at the job's smallest ε (whichever of its runs remain)
                        carried_at = {r["id"]: _carried(db, r, b) for r in need}
                        everywhere = set(_carried(db, first, b))
                        left = [i for i, p in enumerate(pos) if p not in everywhere]
                        entry = None
                        rows = {r["id"]: [] for r in need}
                        if left:
                            sub = b if len(left) == len(pos) else b.subset(left)
                            part = {k: v[left] for k, v in extra.items()}
                            crafted, cost, diag, entry = replace(work, b=sub, extra=part).craft()
                            judged, min_norm = _judge_minimal(
                                model,
                                sub,
                                crafted.adv,
                                [r["eps"] for r in need],
                                need[0]["norm"],
                                craft_model=source,
                                judge=job.judge,
                            )
                            for r in need:
                                adv, adv_pred = judged[r["eps"]]
                                advs[r["id"]] = adv
                                rows[r["id"]] = _sample_rows(
                                    r["id"], r["eps"], sub, adv, adv_pred, crafted, cost, min_norm
                                )
                            _add_diagnostics(rows, advs, b, diag, model, source,
                                             batch_seed(seed, bi),
                                             None if sub is b else left)  # fmt: skip
                        for r in need:
                            here = carried_at[r["id"]]
                            rows[r["id"]] = [
                                row for row in rows[r["id"]] if row["position"] not in here
                            ] + list(here.values())
                    else:
                        r = need[0]
                        carried = _carried(db, r, b)
                        left = [i for i, p in enumerate(pos) if p not in carried]
                        rows[r["id"]], entry = [], None
                        whole = getattr(attack, "takes_done", False) and len(left) < len(pos)
                        if left and whole:
                            # the whole batch, carried instances marked done: the attack
                            # draws its randomness for every instance as the plain plan
                            # does and spends no pass on those; their rows are the carried
                            decided = torch.tensor([p in carried for p in pos], device=x.device)
                            crafted, cost, diag, entry = replace(
                                work, extra={**extra, "done": decided}
                            ).craft(r["eps"])
                            sub, share = b.subset(left), len(pos) / len(left)
                            crafted = _rows_of(crafted, left)
                            cost = tuple(c[left] * share for c in cost)  # per attacked one
                            diag = [diag[i] for i in left]
                        elif left:  # attack only what the smaller ε left unbroken
                            sub = b if len(left) == len(pos) else b.subset(left)
                            part = {k: v[left] for k, v in extra.items()}
                            crafted, cost, diag, entry = replace(work, b=sub, extra=part).craft(
                                r["eps"]
                            )
                        if left:
                            advs[r["id"]] = crafted.adv
                            rows[r["id"]] = _sample_rows(
                                r["id"],
                                r["eps"],
                                sub,
                                crafted.adv,
                                _predict(model, crafted.adv),
                                crafted,
                                cost,
                            )
                            _add_diagnostics(rows, advs, b, diag, model, source,
                                             batch_seed(seed, bi), left)  # fmt: skip
                        rows[r["id"]] += list(carried.values())
                    kept = []
                    if job.store_examples:
                        top = max(job.eps)
                        kept = [
                            examples.write_batch(db, r["id"], bi, pos, advs[r["id"]])
                            for r in need
                            if r["eps"] == top
                        ]
                    dt = time.monotonic() - t0
                    with transaction(db):  # the batch's rows and progress land together or not
                        if kept:
                            db["examples"].upsert_all(kept, pk=("run_id", "batch"))
                        if entry is not None:
                            db["crafted"].upsert(entry, pk="key")
                        for r in need:
                            # ignore: a concurrent copy stored this batch first (same seed)
                            db["samples"].insert_all(
                                rows[r["id"]], pk=("run_id", "position"), ignore=True
                            )
                            db.execute(
                                "update runs set wall_s = wall_s + ? where id = ?", [dt, r["id"]]
                            )
                            done[r["id"]].update(pos)
                    if task is not None:
                        progress.advance(task)
            with transaction(db):
                for r in todo:
                    if len(done[r["id"]]) == m:
                        wall = db["runs"].get(r["id"])["wall_s"] or 0.0
                        db["runs"].update(
                            r["id"],
                            {
                                "status": "complete",
                                "finished_at": now(),
                                "samples_per_s": m / wall if wall else None,
                            },
                        )
    all_ids = [r["id"] for p in plans for r in p[2]]
    return summarise(db, all_ids, reused=set(all_ids) - {r["id"] for p in pending for r in p[2]})


def summarise(db, run_ids: Sequence[str], reused: set[str] | None = None) -> list[RunSummary]:
    out = []
    for rid in run_ids:
        run = db["runs"].get(rid)
        n, robust, failed = db.execute(
            f"select {SAMPLE_COUNTS} from samples s where s.run_id = ?", [rid]
        ).fetchone()
        out.append(
            RunSummary(
                rid,
                run["attack"],
                run["label"],
                run["eps"],
                n,
                robust,
                run["status"],
                run["wall_s"] or 0.0,
                rid in (reused or set()),
                run["targeted"],
                run["threat"] or "white-box",
                failed,
                run["gradient"],
            )
        )
    return out
