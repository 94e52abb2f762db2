"""`evaluate`: attack models with one attack or a suite and record every instance."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from advbench.api._common import (
    NO_MODEL,
    _bars,
    _db,
    _eps,
    _existing_store,
    _params,
    _whole,
)
from advbench.api.models import register_module
from advbench.errors import BadInput


@dataclass
class ModelResult:
    """One model's runs of an evaluation."""

    row: dict[str, Any]  # the `models` row
    summaries: list  # engine.RunSummary per run
    notes: list[str]  # rows skipped and why
    seed: int
    scale: str  # the suite's scale, or "custom" for a single attack


@dataclass
class Evaluation:
    results: list[ModelResult] = field(default_factory=list)

    def frame(self):
        """One row per run: model, attack row, threat, ε, n, robust count, robust accuracy
        with its 95 % Wilson interval as fractions (`accuracy`, `ci_low`, `ci_high`) and in
        percent as every table shows them (`accuracy_pct`, `ci_low_pct`, `ci_high_pct`, the
        datasette views' names), status, seconds, run id."""
        import pandas as pd

        rows = []
        for r in self.results:
            for s in r.summaries:
                lo, hi = s.interval
                rows.append({
                    "model": r.row["name"], "defense": r.row["defense"],
                    "model_checksum": r.row["checksum"], "attack": s.attack,
                    "label": s.label or s.attack, "threat": s.threat, "targeted": s.targeted,
                    "eps": s.eps, "n": s.n, "robust": s.robust, "accuracy": s.accuracy,
                    "ci_low": lo, "ci_high": hi, "accuracy_pct": 100 * s.accuracy,
                    "ci_low_pct": 100 * lo, "ci_high_pct": 100 * hi,
                    "init_failed": s.init_failed,
                    "status": s.status, "wall_s": s.wall_s, "seed": r.seed, "scale": r.scale,
                    "run_id": s.id,
                })  # fmt: skip
        return pd.DataFrame(rows)


def evaluate(
    model=None,
    *,
    attack: str | None = None,
    suite: str | None = None,
    eps=None,
    params: dict | Sequence[str] | None = None,
    only: Sequence[str] | None = None,
    scale: str = "cpu",
    n: int | None = None,
    seed: int | None = None,
    batch_size: int = 100,
    device: str = "auto",
    data_dir=None,
    targeted: str | None = None,
    source_model: str | None = None,
    proxy: str | None = None,
    proxy_epochs: int | None = None,
    only_correct: bool = False,
    gradient: str | None = None,
    force: bool = False,
    shortcuts: bool = True,
    cascade: bool = False,
    dataset: str | None = None,
    name: str | None = None,
    executor: str = "local",
    address: str | None = None,
    max_in_flight: int | None = None,
    db=None,
    progress: Callable | None = None,
    say: Callable[[str], None] | None = None,
    on_model: Callable[[ModelResult], None] | None = None,
) -> Evaluation:
    """Attack models with one attack (`attack`, `eps`, `params`) or a suite (`suite`,
    `scale`, `only` its rows) and record per-sample outcomes for every ε.

    `model`: a stored model's name, a list of them, None (every stored model except
    proxies; `say` names them), or an in-memory `torch.nn.Module` (inputs in [0, 1],
    logits out) with `dataset` (and optionally `name`): its weights are stored and
    checksummed and its runs recorded like any model's. What is stored is not run again
    (`force` re-runs). `on_model` is called with each model's result as it completes.
    `shortcuts=False` attacks every ε of a budget attack afresh (the plain plan; by default
    an instance broken at a smaller ε is taken as broken at the next, a different run).
    `cascade=True` runs a suite's untargeted rows as a cascade, in the order its "cascade"
    key gives (else its row order): each row attacks only the instances every earlier row
    left robust in its norm, and its runs, labelled "LABEL (cascade)", hold the worst case
    over it and the rows before it (`engine.run_jobs`). `executor="ray"` runs each
    (model, suite row) as a Ray task (advbench.executors), joining the cluster at `address`
    or starting one here."""
    from advbench.catalogue import load_model
    from advbench.engine import run_jobs
    from advbench.env import record_environment, resolve_device

    only, n, batch_size, seed, proxy_epochs, suite_doc, job = _checked(
        model, attack, suite, eps, params, only, scale, n, seed, batch_size, targeted,
        source_model, proxy, proxy_epochs, only_correct, gradient, cascade, executor, address,
    )  # fmt: skip
    dev = resolve_device(device)  # before the store is opened
    database, names, live = _models(model, db, dataset, name, say)
    rows = _rows(database, names, source_model, gradient, proxy)
    planned = _plan(rows, suite_doc, job, scale, only, cascade, n, only_correct, source_model,
                    proxy, shortcuts)  # fmt: skip
    _check_counts(planned, data_dir)  # before anything is written or a proxy trained
    _verify_checkpoints(database, planned, live, dev)
    env_id = record_environment(database, dev)
    _train_proxies(database, planned, proxy_epochs, seed, dev, data_dir, progress)
    common = dict(seed=seed, batch_size=batch_size, device=dev, data_dir=data_dir,
                  scale=scale if suite_doc else None, gradient=gradient)  # fmt: skip
    if executor == "ray":  # the units run as tasks; below, every run is then stored
        from advbench.executors import run_ray

        units = [(row, job, count) for row, jobs, count in planned for job in jobs]
        with _bars(progress) as bars:
            for count in sorted({u[2] for u in units}):
                run_ray(database, [(r, j) for r, j, c in units if c == count],
                        {**common, "n": count, "force": force}, address=address,
                        max_in_flight=max_in_flight, progress=bars)  # fmt: skip
        force = False  # what the tasks stored is what is summarised
    result = Evaluation()
    for row, jobs, count in planned:
        net = live.get(row["name"])
        if net is None:
            net, _, _ = load_model(database, row["name"], dev)
        notes: list[str] = []
        with _bars(progress) as bars:
            summaries = run_jobs(
                database, net, row, jobs, n=count, env_id=env_id, force=force,
                progress=bars, load_model=lambda m: load_model(database, m, dev)[::2],
                notes=notes, cascade=cascade, **common,
            )  # fmt: skip
        done = ModelResult(row, summaries, notes, seed, scale if suite_doc else "custom")
        result.results.append(done)
        if on_model is not None:
            on_model(done)
    return result


def _checked(model, attack, suite, eps, params, only, scale, n, seed, batch_size, targeted,
             source_model, proxy, proxy_epochs, only_correct, gradient, cascade, executor,
             address):  # fmt: skip
    """The request checked whole before any store is opened: (only, n, batch size, seed,
    proxy epochs, the suite's document or None, the single attack's job or None)."""
    from advbench.attacks import ATTACKS
    from advbench.executors import check as check_executor
    from advbench.jobs import make_job
    from advbench.suites import check_labels, load_suite, suite_jobs_scale_check
    from advbench.train import MAX_EPOCHS

    check_executor(executor)
    if cascade and suite is None:
        raise BadInput("--cascade runs a suite's rows in order; give --suite")
    if cascade and executor == "ray":
        raise BadInput("--cascade runs each row after the ones before it; use --executor local")
    if address is not None and executor != "ray":
        raise BadInput("--address joins a Ray cluster; it applies only with --executor ray")
    if proxy_epochs is not None and not proxy:
        raise BadInput("--proxy-epochs applies only with --proxy ARCH (the proxy it trains)")
    proxy_epochs = (
        5 if proxy_epochs is None else _whole("--proxy-epochs", proxy_epochs, 1, MAX_EPOCHS)
    )
    if executor == "ray" and not isinstance(model, (str, list, tuple, type(None))):
        raise BadInput("--executor ray evaluates stored models; store the module first")
    if (attack is None) == (suite is None):
        raise BadInput("give exactly one of --attack NAME or --suite NAME")
    for flag, value in (("--attack", attack), ("--suite", suite)):
        if value is not None and not isinstance(value, str):
            raise BadInput(f"{flag} must be a name, not {type(value).__name__}")
    if isinstance(only, str):
        only = [only]
    n = _whole("--n", n, 1)
    batch_size = _whole("--batch-size", batch_size, 1)
    seed = _whole("--seed", seed)
    if seed is not None:
        from advbench.train import validate_numbers

        validate_numbers(seed=seed)
    if suite is not None and eps not in (None, [], ""):
        raise BadInput("--eps applies to --attack; a suite sets the budgets of each row")
    if suite is not None and params not in (None, [], {}):
        raise BadInput("--param applies to --attack; a suite sets the parameters of each row")
    if source_model and proxy:
        raise BadInput("give at most one of --source-model NAME and --proxy ARCH")
    if suite and targeted:
        raise BadInput("--targeted applies to --attack; a suite sets targeting per row")
    eps_list = _eps(eps)
    if gradient is not None:
        from advbench.defenses import GRADIENTS
        from advbench.errors import unknown

        if gradient not in GRADIENTS:
            raise unknown("--gradient", gradient, GRADIENTS)
    overrides = _params(params)
    suite_doc = load_suite(suite) if suite is not None else None
    if only and suite_doc is None:
        raise BadInput("--only picks rows of a suite; give --suite SUITE")
    if suite_doc is not None:
        suite_jobs_scale_check(suite_doc, scale)  # before a database is opened
        check_labels(suite_doc, only)
    if seed is None:
        seed = int(suite_doc.get("seed", 0)) if suite_doc else 0
    job = None
    if attack is not None:
        ATTACKS.get(attack)
        job = make_job(attack, eps_list, overrides, targeted=targeted, only_correct=only_correct)
    return only, n, batch_size, seed, proxy_epochs, suite_doc, job


def _models(model, db, dataset, name, say):
    """(the store, the names of the models to attack, in-memory modules by name): a
    module is registered first; no model at all means every stored one but proxies."""
    live: dict[str, Any] = {}  # an in-memory module, by the name it is stored under
    if model is not None and not isinstance(model, (str, list, tuple)):
        import torch

        if not isinstance(model, torch.nn.Module):
            raise BadInput(f"model must be a stored model's name, a list of names or a "
                           f"torch.nn.Module, not {type(model).__name__}")  # fmt: skip
        if dataset is None:
            raise BadInput("an in-memory module needs dataset= (the data set it classifies)")
        database = _db(db)
        net, row = register_module(database, model, dataset=dataset, name=name)
        live[row["name"]] = net
        names = [row["name"]]
    else:
        names = [model] if isinstance(model, str) else list(model or [])
        if not all(isinstance(m, str) for m in names):
            raise BadInput(f"model names must be strings: {names!r}")
        database = _existing_store(db)
    if not names:  # the usage line `advbench attack --suite carlini-eval`: every model
        names = [r["name"] for r in database.query(
            "select name from models where coalesce(json_extract(config, '$.kind'), '') "
            "!= 'proxy' order by created_at")]  # fmt: skip
        if not names:
            raise BadInput(NO_MODEL)
        if say is not None:
            say(f"attack: no --model given; evaluating every stored model ({len(names)}): "
                f"{', '.join(names)} (what is stored is skipped)")  # fmt: skip
    return database, names, live


def _rows(database, names, source_model, gradient, proxy) -> list[dict[str, Any]]:
    """The models' rows; the source, the gradient choice and the proxy's architecture
    are checked for every model before any of them is attacked."""
    from advbench.catalogue import model_row
    from advbench.engine import no_gradient_choice
    from advbench.models import ARCHS

    rows = [model_row(database, m) for m in names]
    if source_model:
        model_row(database, source_model)
    if gradient is not None:
        from advbench.defenses import gradient_choices

        crafting = [model_row(database, source_model)] if source_model else rows
        plain = [r["name"] for r in crafting if gradient not in gradient_choices(r["defense"])]
        if plain:
            raise no_gradient_choice(gradient, plain)
    if proxy:
        ARCHS.get(proxy)
    return rows


def _plan(rows, suite_doc, job, scale, only, cascade, n, only_correct, source_model, proxy,
          shortcuts) -> list[tuple[dict[str, Any], list, int]]:  # fmt: skip
    """Per model: its row, its jobs (the suite's rows at this scale, or the one attack)
    and its sample count."""
    from advbench.suites import cascade_order, suite_jobs

    planned = []
    for row in rows:
        if suite_doc:
            jobs, suite_n = suite_jobs(suite_doc, row["dataset"], scale, only=only)
            if cascade:
                jobs = cascade_order(suite_doc, jobs)
            for j in jobs:
                j.only_correct = j.only_correct or only_correct
                if n is not None and j.n is not None:
                    j.n = min(j.n, n)  # n caps rows that have their own, smaller count
        else:
            jobs, suite_n = [job], 500
        _fill_sources(jobs, suite_doc is not None, source_model, proxy)
        if not shortcuts:
            for j in jobs:
                j.shortcuts = False
        planned.append((row, jobs, n if n is not None else suite_n))
    return planned


def _verify_checkpoints(database, planned, live, dev) -> None:
    """Every checkpoint this request reads (the attacked models and the stored transfer
    sources their rows resolve to) is verified (checksum, spec, loadable) before the
    environment row is written, so a tampered or damaged model leaves the store as it
    was. Each is dropped after its check: a large store is never all in memory at once."""
    from advbench.catalogue import load_model
    from advbench.engine import NoSource, resolve_source

    verify = {row["name"] for row, _, _ in planned} - set(live)
    for row, jobs, _ in planned:
        for j in jobs:
            if j.source is None or j.source.startswith("proxy:"):
                continue  # a proxy is trained below
            with suppress(NoSource):  # such a row is skipped, and says why
                verify.add(resolve_source(database, row, j.source)["name"])
    for name in sorted(verify - set(live)):
        load_model(database, name, dev)


def _train_proxies(database, planned, proxy_epochs, seed, dev, data_dir, progress) -> None:
    """A black-box row's proxy (`proxy:ARCH`) trained on the model's labels, then named
    as the row's source."""
    from advbench.train import train_proxy

    for row, jobs, _ in planned:
        for j in jobs:
            if j.source is not None and j.source.startswith("proxy:"):
                with _bars(progress) as bars:
                    j.source = "model:" + train_proxy(
                        database, target=row["name"], arch=j.source.partition(":")[2],
                        epochs=proxy_epochs, batch_size=64, seed=seed, device=dev,
                        data_dir=data_dir, progress=bars,
                    ).name  # fmt: skip


def _check_counts(planned, data_dir) -> None:
    """Refuse a sample count beyond a model's test split before anything runs."""
    from advbench import data as datasets

    sizes: dict[str, int] = {}
    for row, jobs, count in planned:
        ds = row["dataset"]
        for j in jobs:
            want = j.n or count
            if ds not in sizes:
                sizes[ds] = len(datasets.load(ds, "test", data_dir=data_dir))
            if want > sizes[ds]:
                raise BadInput(f"--n {want} exceeds the {sizes[ds]} test samples of {ds}")


def _fill_sources(jobs, from_suite: bool, source_model: str | None, proxy: str | None) -> None:
    """Point transfer and proxy rows at the model or proxy the caller named: a single
    attack takes it as its source; a suite fills only the rows that ask for one."""
    given = f"model:{source_model}" if source_model else (f"proxy:{proxy}" if proxy else None)
    if given is None:
        return
    for j in jobs:
        src = j.source or ""
        if not from_suite or src == "given":
            j.source = j.declared = given
        elif src.startswith("arch:") and source_model:
            j.source = given  # the row still declares arch:ARCH
        elif src.startswith("proxy:") and proxy:
            j.source = j.declared = given
