"""The batch loop: plan each job's runs, then for each pending run attack batch by batch
and write each batch's rows in one transaction (an interruption loses at most one batch).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import sqlite_utils
import torch

from advbench import crafted as crafted_cache
from advbench import data as datasets
from advbench.attacks import ATTACKS, norm_of, unpack
from advbench.diagnostics import Observer
from advbench.engine.counting import Counted, cost_of
from advbench.engine.identity import (
    carried,
    done_positions,
    early_stopped,
    register,
    run_rows,
    start_of,
)
from advbench.engine.instances import Instances, make_instances, target_starts
from advbench.engine.judging import judge_minimal
from advbench.engine.rows import (
    Batch,
    add_diagnostics,
    outputs_not_logits,
    predict,
    rows_of,
    sample_rows,
)
from advbench.engine.sources import (
    NoSource,
    frozen,
    no_gradient_choice,
    resolve_source,
    set_gradient,
)
from advbench.engine.summary import RunSummary, summarise
from advbench.errors import BadInput
from advbench.fit import batch_seed
from advbench.jobs import AttackJob
from advbench.store import examples, now, transaction


@dataclass
class _Crafting:
    """One batch's crafting: the attack run on the crafting model, seeded from the batch,
    or, for a transfer row, the same examples from the crafted cache where an earlier
    target of that row made them (`advbench.crafted`)."""

    db: Any
    attack: Any
    counted: Counted
    b: Batch
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
        cost = cost_of(counted, crafted, len(b.positions))
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
    if load_model is None:
        from advbench.catalogue import load_model as load_stored

        def load_model(name):
            model_, _, row_ = load_stored(db, name, device)
            return model_, row_

    loop = _Loop(db, model, test, device, seed, batch_size, force)
    planner = _Planner(loop, model_row, n, scale, load_model, notes, gradient, cascade)
    plans = [p for p in (planner.plan(job) for job in jobs) if p is not None]
    pending = []
    for plan in plans:
        todo = register(db, plan.rows, env_id, force)
        if todo:  # rows[0]: the job's smallest ε, stored already or not
            pending.append((plan, todo))
    total = sum(loop.batches(p.inst) * (1 if p.minimal else len(t)) for p, t in pending)
    if progress and total:
        loop.progress, loop.task = progress, progress.add_task("attack", total=total, metrics="")
    with frozen(model, *[p.source for p, _ in pending if p.source is not None]):
        for plan, todo in pending:
            loop.run(plan, todo)
    all_ids = [r["id"] for p in plans for r in p.rows]
    return summarise(db, all_ids, reused=set(all_ids) - {r["id"] for _, t in pending for r in t})


@dataclass
class _Plan:
    """One job made ready: its instances, runs, crafting model and crafting identity."""

    job: AttackJob
    inst: Instances
    rows: list[dict[str, Any]]
    source: Any  # the transfer row's crafting model, or None (white-box)
    starts: torch.Tensor | None  # test index of each instance's start image (targeted)
    craft_id: dict[str, Any] | None  # what a transfer row's examples depend on

    @property
    def minimal(self) -> bool:
        return ATTACKS.get(self.job.attack).meta["kind"] == "minimal"


@dataclass
class _Planner:
    """Turns each job into a `_Plan`, or None where it is skipped (with a note)."""

    loop: _Loop
    model_row: dict[str, Any]
    n: int
    scale: str | None
    load_model: Any
    notes: list[str] | None
    gradient: str | None
    cascade: bool
    instances: dict[Any, Instances] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)  # a cascade's runs per norm

    def plan(self, job: AttackJob) -> _Plan | None:
        loop, model_row = self.loop, self.model_row
        count = job.n or self.n
        if count > len(loop.test):
            raise BadInput(
                f"--n {count} exceeds the {len(loop.test)} test samples of {model_row['dataset']}"
            )
        key = (count, job.targeted, job.only_correct)
        if key not in self.instances:
            self.instances[key] = make_instances(loop.model, loop.test, job, count, loop.seed,
                                                 int(loop.model.classes), loop.device)  # fmt: skip
        inst = self.instances[key]
        found = self._source(job)
        if found is None:
            return None
        source, source_row, threat = found
        craft = source if source is not None else loop.model
        needs_logits = ATTACKS.get(job.attack).meta.get("needs_logits")
        if (needs_logits and needs_logits(job.params)
                and outputs_not_logits(craft, loop.test, loop.device)):  # fmt: skip
            self._note(job, "the model's outputs are probabilities or one-hot scores and this "
                       "attack's loss needs logits (ART refuses them; the checklist's outputs "
                       "check reports it)")  # fmt: skip
            return None
        uses = ATTACKS.get(job.attack).meta.get("uses_gradient", True)
        # a transfer row crafted on a plain model has autograd's gradient only: --gradient
        # is for the rows that craft on the defended model itself
        if (self.gradient is not None and uses and source is None
                and not getattr(craft, "gradients", None)):  # fmt: skip
            raise no_gradient_choice(self.gradient, [model_row["name"]])
        mode = set_gradient(craft, self.gradient) if uses else None
        if source is None:
            job = early_stopped(job)
        earlier = None
        if self.cascade and job.targeted is None and not job.store_examples:
            job = replace(job, label=f"{job.label or job.attack} (cascade)")
            earlier = self.chains.setdefault(norm_of(job.attack, job.params), [])
        rows = run_rows(model_row, job, inst, loop.seed, loop.batch_size, self.scale,
                        source_row, threat, mode,
                        None if earlier is None else list(earlier))  # fmt: skip
        if earlier is not None:
            earlier += [r["id"] for r in rows]
        starts = None
        if job.targeted and start_of(job) == "target-image":
            starts = target_starts(craft, loop.test, inst, loop.seed, loop.device)
        craft_id = None
        if source_row is not None:  # what the examples depend on, besides the batch
            meta = ATTACKS.get(job.attack).meta
            craft_id = {
                "source": source_row["checksum"],
                "gradient": mode,
                "attack": job.attack,
                "params": ATTACKS.get(job.attack).identity(job.params),
                "revision": meta.get("revision"),
                "start": start_of(job) if job.targeted else None,
                "targeted": job.targeted,
                "dataset": model_row["dataset"],
            }
        return _Plan(job, inst, rows, source, starts, craft_id)

    def _note(self, job: AttackJob, why: str) -> None:
        if self.notes is not None:
            self.notes.append(f"{job.label or job.attack}: skipped, {why}")

    def _source(self, job: AttackJob):
        """(crafting model or None, its row or None, threat model), or None: skipped."""
        if job.source is None:
            return None, None, "white-box"
        model_row = self.model_row
        try:
            source_row = resolve_source(self.loop.db, model_row, job.source)
        except NoSource as why:
            self._note(job, str(why))
            return None
        if source_row["dataset"] != model_row["dataset"]:
            raise BadInput(
                f"--source-model {source_row['name']} is a {source_row['dataset']} model; "
                f"{model_row['name']} is {model_row['dataset']}"
            )
        source, _ = self.load_model(source_row["name"])
        source = source.to(self.loop.device).eval()
        kind = json.loads(source_row["config"] or "{}").get("kind")
        return source, source_row, "proxy" if kind == "proxy" else "transfer"


@dataclass
class _Loop:
    """The batch loop over one model's pending runs."""

    db: Any
    model: Any
    test: Any
    device: str
    seed: int
    batch_size: int
    force: bool
    progress: Any = None
    task: Any = None

    def batches(self, inst: Instances) -> int:
        return (len(inst) + self.batch_size - 1) // self.batch_size

    def run(self, plan: _Plan, todo: list[dict[str, Any]]) -> None:
        """Attack a job's pending runs batch by batch (a minimal attack's runs at once: one
        search judged at every ε), then mark the runs whose every instance is stored."""
        db, job = self.db, plan.job
        attack = ATTACKS.get(job.attack).factory(job.params)
        counted = Counted(plan.source if plan.source is not None else self.model)
        done = {r["id"]: done_positions(db, r["id"]) for r in todo}
        m = len(plan.inst)
        for unit in [todo] if plan.minimal else [[r] for r in todo]:
            for bi in range(self.batches(plan.inst)):
                pos = list(range(bi * self.batch_size, min((bi + 1) * self.batch_size, m)))
                for r in unit:  # a concurrent copy of this command may have done it
                    if not set(pos) <= done[r["id"]]:
                        done[r["id"]] = done_positions(db, r["id"])
                need = [r for r in unit if not set(pos) <= done[r["id"]]]
                if self.task is not None:
                    eps_text = ",".join(f"{r['eps']:g}" for r in unit)
                    self.progress.update(
                        self.task, description=f"{job.label or job.attack} ε={eps_text}"
                    )
                if need:
                    # rows[0]: the job's smallest ε, stored already or not
                    self._batch(plan, attack, counted, bi, pos, need, plan.rows[0], done)
                if self.task is not None:
                    self.progress.advance(self.task)
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

    def _batch(self, plan, attack, counted, bi, pos, need, first, done) -> None:
        """One batch of the runs in `need`: craft, judge, and store its rows in one
        transaction (the batch's rows and progress land together or not at all)."""
        db, job = self.db, plan.job
        t0 = time.monotonic()
        idx = plan.inst.idx[pos]
        x, y = self.test.get(idx)
        x, y = x.to(self.device), y.to(self.device)
        target = None if plan.inst.target is None else plan.inst.target[pos].to(self.device)
        b = Batch(pos, idx, x, y, target, predict(self.model, x))
        extra = {}
        if plan.starts is not None:
            b.start_idx = plan.starts[pos]
            # no image of the target class: NaN (the attack draws a noise start)
            found = self.test.get(b.start_idx.clamp(min=0))[0].to(self.device)
            ok = (b.start_idx >= 0).to(self.device).view(-1, *[1] * (x.dim() - 1))
            extra["start"] = torch.where(ok, found, torch.full_like(x, float("nan")))
        work = _Crafting(db, attack, counted, b, extra, batch_seed(self.seed, bi), need[0],
                         plan.craft_id, bi, self.force)  # fmt: skip
        if plan.minimal:
            rows, advs, entry = self._minimal(plan, work, need, first)
        else:
            rows, advs, entry = self._budget(plan, work, attack, need[0])
        kept = []
        if job.store_examples:
            top = max(job.eps)
            kept = [examples.write_batch(db, r["id"], bi, pos, advs[r["id"]])
                    for r in need if r["eps"] == top]  # fmt: skip
        dt = time.monotonic() - t0
        with transaction(db):
            if kept:
                db["examples"].upsert_all(kept, pk=("run_id", "batch"))
            if entry is not None:
                db["crafted"].upsert(entry, pk="key")
            for r in need:
                # ignore: a concurrent copy stored this batch first (same seed)
                db["samples"].insert_all(rows[r["id"]], pk=("run_id", "position"), ignore=True)
                db.execute("update runs set wall_s = wall_s + ? where id = ?", [dt, r["id"]])
                done[r["id"]].update(pos)

    def _minimal(self, plan: _Plan, work: _Crafting, need, first):
        """One search on the batch, judged at every ε of the runs in `need`. A cascade:
        what earlier attacks broke at an ε is carried there; the search runs on the
        instances still robust at some ε, i.e. not carried at the job's smallest ε
        (whichever of its runs remain)."""
        b, pos = work.b, work.b.positions
        carried_at = {r["id"]: carried(self.db, r, b) for r in need}
        everywhere = set(carried(self.db, first, b))
        left = [i for i, p in enumerate(pos) if p not in everywhere]
        rows: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in need}
        advs: dict[str, torch.Tensor] = {}
        entry = None
        if left:
            sub = b if len(left) == len(pos) else b.subset(left)
            part = {k: v[left] for k, v in work.extra.items()}
            crafted, cost, diag, entry = replace(work, b=sub, extra=part).craft()
            eps = [r["eps"] for r in need]
            judged, min_norm = judge_minimal(
                self.model,
                sub,
                crafted.adv,
                eps,
                need[0]["norm"],
                craft_model=plan.source,
                judge=plan.job.judge,
            )
            for r in need:
                adv, adv_pred = judged[r["eps"]]
                advs[r["id"]] = adv
                rows[r["id"]] = sample_rows(r["id"], r["eps"], sub, adv, adv_pred, crafted, cost,
                                            min_norm)  # fmt: skip
            add_diagnostics(rows, advs, b, diag, self.model, plan.source, work.seed,
                            None if sub is b else left)  # fmt: skip
        for r in need:
            here = carried_at[r["id"]]
            rows[r["id"]] = [row for row in rows[r["id"]] if row["position"] not in here] + list(
                here.values()
            )
        return rows, advs, entry

    def _budget(self, plan: _Plan, work: _Crafting, attack, r):
        """One budget attack's batch at its ε, on what a smaller ε (or a cascade's earlier
        rows) left unbroken; the instances taken as broken are the carried rows."""
        b, pos = work.b, work.b.positions
        taken = carried(self.db, r, b)
        left = [i for i, p in enumerate(pos) if p not in taken]
        rows: dict[str, list[dict[str, Any]]] = {r["id"]: []}
        advs: dict[str, torch.Tensor] = {}
        entry = None
        whole = getattr(attack, "takes_done", False) and len(left) < len(pos)
        if left and whole:
            # the whole batch, carried instances marked done: the attack draws its
            # randomness for every instance as the plain plan does and spends no pass on
            # those; their rows are the carried
            decided = torch.tensor([p in taken for p in pos], device=b.x.device)
            crafted, cost, diag, entry = replace(work, extra={**work.extra, "done": decided}).craft(
                r["eps"]
            )
            sub, share = b.subset(left), len(pos) / len(left)
            crafted = rows_of(crafted, left)
            cost = tuple(c[left] * share for c in cost)  # per attacked one
            diag = [diag[i] for i in left]
        elif left:  # attack only what the smaller ε left unbroken
            sub = b if len(left) == len(pos) else b.subset(left)
            part = {k: v[left] for k, v in work.extra.items()}
            crafted, cost, diag, entry = replace(work, b=sub, extra=part).craft(r["eps"])
        if left:
            advs[r["id"]] = crafted.adv
            adv_pred = predict(self.model, crafted.adv)
            rows[r["id"]] = sample_rows(r["id"], r["eps"], sub, crafted.adv, adv_pred, crafted,
                                        cost)  # fmt: skip
            add_diagnostics(rows, advs, b, diag, self.model, plan.source, work.seed, left)
        rows[r["id"]] += list(taken.values())
        return rows, advs, entry
