"""advbench as a library: what each command does, for notebooks and scripts.

The command line parses flags, calls one function here and prints what it returns; every
piece of orchestration (which models, which suite rows, proxies, transfer sources) lives
here or below. Each function takes `db` as a path, an open store or None (the default
store, `$ADVBENCH_DB` or results/advbench.db) and records its work there as the commands
do. Inputs are images in [0, 1]; models return logits.

    import advbench.api as ab

    ab.train(name="std", dataset="digits", arch="madry-mnist", epochs=4)
    ab.harden("std", defense="jacobian", params={"lambda": 0.05})
    ev = ab.evaluate(["std", "std+jacobian"], suite="carlini-eval", scale="smoke")
    ev.frame()                       # one row per run: accuracy, n, 95 % interval, ...
    ab.evaluate(my_module, dataset="digits", attack="pgd-linf", eps=[0.1, 0.3]).frame()
    ab.models(); ab.runs()           # pandas DataFrames of what is stored

Bad input raises `advbench.errors.BadInput` with the one line the CLI prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advbench.errors import BadInput

NO_MODEL = "no trained model stored yet; run `advbench train` (or `advbench demo`) first"


def _db(db, create: bool = True):
    """An open store from a path, an open store, or None (the default)."""
    import sqlite_utils

    from advbench.store import open_db

    if isinstance(db, sqlite_utils.Database):
        return db
    return open_db(Path(db) if db is not None else None, create=create)


def _store_path(db) -> Path | None:
    """The file of a store given as a path, an open store or None (the default: None)."""
    import sqlite_utils

    if isinstance(db, sqlite_utils.Database):
        return Path(db.execute("pragma database_list").fetchone()[2])
    return Path(db) if db is not None else None


def _store_if_any(db):
    """The store if its file exists (or it is open), else None: for reading what is there."""
    from advbench.store import default_db_path

    exists = (_store_path(db) or default_db_path()).exists()
    return _db(db, create=False) if exists else None


def _no_bar(title: str, total: int):
    """A stand-in for the CLI's outer bar: marks nothing."""
    return nullcontext(lambda: None)


def _bars(progress):
    """A progress display from a factory (the CLI's) or nothing."""
    return progress() if progress is not None else nullcontext(None)


def _params(params) -> dict[str, Any]:
    from advbench.registry import parse_param_pairs

    if params is None:
        return {}
    if isinstance(params, dict):
        return dict(params)
    if isinstance(params, str):  # one "key=value"
        params = [params]
    if not isinstance(params, (list, tuple)) or not all(isinstance(p, str) for p in params):
        raise BadInput(f"params must be a dict or a list of 'key=value' strings, not {params!r}")
    return parse_param_pairs(list(params))


def _whole(name: str, value, low: int | None = None, high: int | None = None):
    """A whole-number argument of the API (the CLI's are parsed by typer)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{name} {value!r} must be a whole number")
    if low is not None and value < low:
        raise BadInput(f"{name} {value} must be >= {low}")
    if high is not None and value > high:
        raise BadInput(f"{name} {value} must be <= {high:,}")
    return value


def _eps(eps) -> list[float]:
    if eps is None:
        return []
    if isinstance(eps, str):
        values = []
        for part in eps.split(","):
            try:
                values.append(float(part.strip()))
            except ValueError:
                raise BadInput(f"--eps {part.strip()!r} is not a number; give a "
                               "comma-separated list such as 0.1,0.3") from None  # fmt: skip
        return values
    if isinstance(eps, bool):
        raise BadInput(f"--eps {eps!r} is not a number")
    if isinstance(eps, (int, float)):
        return [float(eps)]
    try:
        items = list(eps)
    except TypeError:
        raise BadInput(f"eps must be a number, a list of numbers or '0.1,0.3', not "
                       f"{type(eps).__name__}") from None  # fmt: skip
    for e in items:
        if isinstance(e, bool) or not isinstance(e, (int, float)):
            raise BadInput(f"--eps {e!r} is not a number; give numbers such as [0.1, 0.3]")
    return [float(e) for e in items]


def train(
    *,
    dataset: str,
    arch: str,
    name: str | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    optimizer: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: str = "auto",
    activation: str | None = None,
    activation_param: float | None = None,
    data_dir=None,
    download: bool = False,
    force: bool = False,
    db=None,
    progress: Callable | None = None,
):
    """Train `arch` on `dataset` and store it; returns the stored model (`.row`, `.created`)."""
    from advbench.env import resolve_device
    from advbench.models import ARCHS, default_activation
    from advbench.train import train_model, validate_name, validate_numbers, validate_train_args

    if activation is None:
        ARCHS.get(arch)  # an unknown architecture is named before anything else
        activation, default_param = default_activation(arch)
        activation_param = default_param if activation_param is None else activation_param
    if activation_param is not None:
        import math

        if activation == "relu":
            raise BadInput(f"--activation-param {activation_param}: relu has no parameter "
                           "(brelu's bound t, leaky-relu's slope)")  # fmt: skip
        if not (math.isfinite(activation_param) and 0 < activation_param <= 1000):
            raise BadInput(f"--activation-param {activation_param} must be a number in "
                           f"(0, 1000] for {activation}")  # fmt: skip
    validate_train_args(dataset, arch, optimizer, activation, epochs, batch_size, lr)
    name = f"{arch}-{dataset}" if name is None else name
    validate_name(None, name)
    validate_numbers(weight_decay=weight_decay, seed=seed)
    device = resolve_device(device)
    database = _db(db)
    with _bars(progress) as bars:
        return train_model(
            database, name=name, dataset=dataset, arch=arch, epochs=epochs,
            batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
            seed=seed, device=device, activation=activation,
            activation_param=activation_param, data_dir=data_dir, download=download,
            force=force, progress=bars,
        )  # fmt: skip


def latest_undefended(db) -> str:
    """The most recently trained undefended model (what `harden` takes by default)."""
    row = next(iter(_db(db).query(
        "select name from models where defense is null and json_extract(config, '$.kind') "
        "= 'train' order by created_at desc limit 1")), None)  # fmt: skip
    if row is None:
        raise BadInput(NO_MODEL)
    return row["name"]


def harden(
    model: str | None = None,
    *,
    defense: str,
    name: str | None = None,
    params: dict | Sequence[str] | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    optimizer: str | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
    seed: int = 0,
    device: str = "auto",
    from_scratch: bool = False,
    recipe: str | None = None,
    data_dir=None,
    force: bool = False,
    db=None,
    progress: Callable | None = None,
    say: Callable[[str], None] | None = None,
):
    """Harden a stored model (default: the most recently trained undefended one, named
    through `say`) with a defense and store the result with its parent."""
    from advbench.defenses import resolve
    from advbench.env import resolve_device
    from advbench.train import harden_model, validate_name, validate_numbers

    raw = _params(params)
    resolve(defense, raw, recipe=recipe)  # validated before anything is opened
    if name is not None:
        validate_name(None, name)
    validate_numbers(lr=lr, weight_decay=weight_decay, seed=seed)
    device = resolve_device(device)
    database = _db(db) if model is not None else _existing_store(db)
    if model is None:  # the usage line `advbench harden --defense jacobian`
        model = latest_undefended(database)
        if say is not None:
            say(f"harden: no --model given; hardening {model}, the most recently trained "
                "undefended model")  # fmt: skip
    with _bars(progress) as bars:
        return harden_model(
            database, parent=model, defense=defense,
            name=f"{model}+{defense}" if name is None else name, params=raw, epochs=epochs,
            batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
            seed=seed, device=device, from_scratch=from_scratch, recipe=recipe,
            data_dir=data_dir, force=force, progress=bars,
        )  # fmt: skip


def _existing_store(db):
    """A store that must already exist (no model to work on otherwise)."""
    import sqlite_utils

    from advbench.store import default_db_path

    if isinstance(db, sqlite_utils.Database):
        return db
    path = Path(db) if db is not None else default_db_path()
    if not path.exists():
        raise BadInput(NO_MODEL)
    return _db(path, create=False)


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
        with its 95 % Wilson interval, status, seconds, run id."""
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
                    "ci_low": lo, "ci_high": hi, "init_failed": s.init_failed,
                    "status": s.status, "wall_s": s.wall_s, "seed": r.seed, "scale": r.scale,
                    "run_id": s.id,
                })  # fmt: skip
        return pd.DataFrame(rows)


def register_module(db, module, *, dataset: str, name: str | None = None):
    """Store an in-memory module's weights (checksummed) as a model of `dataset`, so its
    runs are recorded like any other's; returns (the module ready to attack, its row).
    Its spec cannot rebuild the module (no factory): commands that load it by name are
    refused with a line saying to evaluate it through this API."""

    import torch
    from torch import nn

    from advbench import data as datasets
    from advbench.models import ModelSpec
    from advbench.models.layers import ZooModel
    from advbench.train import _existing, config_hash, validate_name

    if not isinstance(module, nn.Module):
        raise BadInput(f"model must be a stored model's name or a torch.nn.Module, not "
                       f"{type(module).__name__}")  # fmt: skip
    if not isinstance(dataset, str):
        raise BadInput(f"dataset must be a name, not {type(dataset).__name__}")
    ds = datasets.spec(dataset)
    net = ZooModel(module, nn.Identity()).eval()
    net.input_shape, net.classes = tuple(ds.shape), ds.classes
    import hashlib

    digest = hashlib.sha256()
    for key, value in sorted(net.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    weights = digest.hexdigest()
    cls = f"{type(module).__module__}.{type(module).__qualname__}"
    name = name or f"module-{weights[:12]}"
    validate_name(None, name)
    test = datasets.load(dataset, "test")
    try:
        with torch.no_grad():
            out = net(test.get(torch.arange(min(4, len(test))))[0])
    except Exception as exc:  # noqa: BLE001 - the user's forward on this data set's images
        raise BadInput(f"the module fails on {dataset}'s images: {type(exc).__name__}: "
                       f"{str(exc).strip()[:200]}") from None  # fmt: skip
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] != ds.classes:
        raise BadInput(f"the module must return logits of shape (batch, {ds.classes}) on "
                       f"{dataset}")  # fmt: skip
    database = _db(db)
    validate_name(database, name)
    source = {"kind": "module", "class": cls}
    spec = ModelSpec("import", dataset, tuple(ds.shape), ds.classes, source=source)
    config = {"kind": "import", "source": source, "weights_sha256": weights}
    cfg_hash = config_hash(config)
    existing = _existing(database, name, cfg_hash, force=False)
    if existing:
        return net, existing
    from advbench.models.imported import store

    row = store(database, net, spec, config, cfg_hash, name, test)
    return net, row


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
    from advbench.attacks import ATTACKS
    from advbench.engine import NoSource, make_job, no_gradient_choice, resolve_source, run_jobs
    from advbench.env import record_environment, resolve_device
    from advbench.executors import check as check_executor
    from advbench.models import ARCHS
    from advbench.suites import (
        cascade_order,
        check_labels,
        load_suite,
        suite_jobs,
        suite_jobs_scale_check,
    )
    from advbench.train import MAX_EPOCHS, load_model, model_row, train_proxy

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
    dev = resolve_device(device)  # before the store is opened
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
    rows = [model_row(database, m) for m in names]
    if source_model:
        model_row(database, source_model)
    if gradient is not None:  # checked for every model before any of them is attacked
        from advbench.defenses import gradient_choices

        crafting = [model_row(database, source_model)] if source_model else rows
        plain = [r["name"] for r in crafting if gradient not in gradient_choices(r["defense"])]
        if plain:
            raise no_gradient_choice(gradient, plain)
    if proxy:
        ARCHS.get(proxy)
    result = Evaluation()
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
    _check_counts(planned, data_dir)  # before anything is written or a proxy trained
    # Every checkpoint this request reads (the attacked models and the stored transfer
    # sources their rows resolve to) is verified (checksum, spec, loadable) before the
    # environment row is written, so a tampered or damaged model leaves the store as it
    # was. Each is dropped after its check: a large store is never all in memory at once.
    verify = {row["name"] for row, _, _ in planned} - set(live)
    for row, jobs, _ in planned:
        for j in jobs:
            if j.source is None or j.source.startswith("proxy:"):
                continue  # a proxy is trained below
            with suppress(NoSource):  # such a row is skipped, and says why
                verify.add(resolve_source(database, row, j.source)["name"])
    for name in sorted(verify - set(live)):
        load_model(database, name, dev)
    env_id = record_environment(database, dev)
    for row, jobs, _ in planned:
        for j in jobs:
            if j.source is not None and j.source.startswith("proxy:"):
                with _bars(progress) as bars:
                    j.source = "model:" + train_proxy(
                        database, target=row["name"], arch=j.source.partition(":")[2],
                        epochs=proxy_epochs, batch_size=64, seed=seed, device=dev,
                        data_dir=data_dir, progress=bars,
                    ).name  # fmt: skip
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


def measure(
    models: str | Sequence[str],
    *,
    metric: str,
    run: str | None = None,
    n: int = 1000,
    seed: int = 0,
    device: str = "auto",
    data_dir=None,
    force: bool = False,
    db=None,
) -> list[dict[str, Any]]:
    """Take a measurement (loss sensitivity, ‖J‖F, training-set distance, Davies–Bouldin)
    of stored models; returns the stored `measurements` rows."""
    from advbench.env import record_environment, resolve_device
    from advbench.measures import METRICS, check
    from advbench.measures import measure as take
    from advbench.train import load_model

    if metric not in METRICS:
        raise BadInput(f"unknown metric {metric!r}; valid choices: {', '.join(METRICS)}")
    from advbench.train import validate_numbers

    validate_numbers(seed=seed)
    device = resolve_device(device)
    database = _db(db, create=False)
    names = [models] if isinstance(models, str) else list(models)
    n = _whole("--n", n, 1)
    for name in names:  # every request and checkpoint is checked before anything is stored
        check(database, name, metric, n, run)
        load_model(database, name, device)
    env_id = record_environment(database, device)
    return [take(database, name, metric, n=n, seed=seed, run=run, device=device,
                 data_dir=data_dir, env_id=env_id, force=force) for name in names]  # fmt: skip


def import_model(*, name: str, dataset: str, weights=None, db=None, **kwargs):
    """`advbench import`: see advbench.models.imported.import_model. `weights` is a
    safetensors file, or None with `robustbench_name` (its checkpoint is read from
    `model_dir`, laid out as RobustBench lays it out)."""
    from advbench.models.imported import import_model as run

    if weights is not None and not isinstance(weights, (str, Path)):
        raise BadInput(f"weights must be a path, not {type(weights).__name__}")
    return run(lambda: _db(db), name=name, dataset=dataset,
               weights=None if weights is None else Path(weights), **kwargs)  # fmt: skip


def convert(source, target) -> int:
    """`advbench convert`: a PyTorch checkpoint to safetensors (weights_only=True)."""
    from advbench.models.imported import convert as run

    for what, value in (("source", source), ("target", target)):
        if not isinstance(value, (str, Path)):
            raise BadInput(f"{what} must be a path, not {type(value).__name__}")
    return run(Path(source), Path(target))


def merge(shards, *, db=None):
    """Fold shard stores into `db` idempotently (advbench.merge); returns what each added."""
    from advbench.merge import merge as run

    return run(_db(db), [Path(p) for p in shards])


def load(name: str, *, db=None, device: str = "cpu"):
    """A stored model's module (checksum verified), ready for inference on [0, 1] inputs."""
    from advbench.train import load_model

    return load_model(_db(db, create=False), name, device)[0]


def model_rows(db=None) -> list[dict[str, Any]]:
    """The stored models, oldest first, each with its clean accuracy's 95 % Wilson interval
    (ci_low, ci_high)."""
    from advbench.metrics import wilson_interval

    rows = []
    for r in _db(db, create=False)["models"].rows_where(order_by="created_at"):
        lo, hi = wilson_interval(round(r["clean_accuracy"] * r["clean_n"]), r["clean_n"])
        rows.append({**r, "ci_low": lo, "ci_high": hi})
    return rows


def models(db=None):
    """The stored models as a DataFrame (`model_rows`)."""
    import pandas as pd

    return pd.DataFrame(model_rows(db))


def run_rows(db=None, model: str | None = None) -> list[dict[str, Any]]:
    """The stored runs in the order they started (every column of `runs`; `attack` is the
    suite row's label where it has one, `scale` 'custom' for a single attack)."""
    database = _db(db, create=False)
    if model is not None:
        from advbench.train import model_row

        model_row(database, model)  # an unknown model is named, with the stored ones
    where, args = ("model = ?", [model]) if model is not None else (None, [])
    return [
        {**r, "attack": r["label"] or r["attack"], "scale": r["scale"] or "custom"}
        for r in database["runs"].rows_where(where, args, order_by="started_at")
    ]


def runs(db=None, model: str | None = None):
    """The stored runs as a DataFrame (`run_rows`)."""
    import pandas as pd

    return pd.DataFrame(run_rows(db, model))


def tables(table: str, *, db=None) -> list:
    """A paper's tables (an id such as "fidel:III", a paper name, or "all") evaluated on
    the stored runs: (TableSpec, its cells) per table, for rendering
    (advbench.report.tables.render)."""
    from advbench.report import tables as tab

    specs = tab.select(table)
    database = _db(db, create=False)
    store = tab.Store(database)
    return [(spec, tab.evaluate(database, spec, store)) for spec in specs]


def table(table: str, *, db=None):
    """A paper's table (e.g. "jakubovitz:2", a paper name for all its tables, or "all")
    from the stored runs: one row per cell with its measured and published values, n, 95 %
    interval, status, the model and runs behind it, and why it is empty where it is."""
    import pandas as pd

    from advbench.report import tables as tab

    return pd.concat([tab.to_frame(results) for _, results in tables(table, db=db)],
                     ignore_index=True)  # fmt: skip


def claims(paper: str, *, db=None) -> list:
    """A paper's claims (its plan's) judged on the stored cells: held / not held / not
    testable at this scale / not run (advbench.claims)."""
    from advbench import claims as cl
    from advbench import reproduce

    database = _db(db, create=False)
    return [c for name in reproduce.papers(paper) for c in cl.evaluate(database, name)]


def _names(models: str | Sequence[str] | None) -> list[str] | None:
    """One model name or several as a list; None (every model) for none."""
    if isinstance(models, str):
        return [models]
    return list(models) if models else None


def summary(models: str | Sequence[str] | None = None, *, db=None):
    """`report` (the summary): one row per model, a column per attack × ε with its robust
    accuracy, 95 % Wilson interval and n (advbench.report.summary_table)."""
    from advbench import report as rep

    return rep.summary_table(_db(db, create=False), _names(models))


def optimality(models: str | Sequence[str] | None = None, *, db=None):
    """Each white-box minimal attack's AttackBench optimality per model and norm, against
    the per-instance best of that model's minimal attacks (advbench.report.optimality)."""
    from advbench.report.optimality import optimality_table

    return optimality_table(_db(db, create=False), _names(models))


def checks(model: str, *, db=None) -> tuple[list, int]:
    """`report --checks MODEL`: the evaluation checklist's verdicts on the model's stored
    runs (advbench.checks.Verdict), and how many runs they read."""
    from advbench import checks as chk

    database = _db(db, create=False)
    runs = chk.gather(database, model)  # an unknown model is refused here
    return chk.run(database, model, runs), len(runs)


def figures(figure: str, *, models: Sequence[str] | None = None, data_dir=None, db=None):
    """`report --figure`: the figures' data (advbench.report.figures.FigureData), one at a
    time as each is built; `figure` is an id (zantedeschi:fig3), a paper, `all`, or
    `curves` with `models` (accuracy against ε). Draw one with figures.draw."""
    from advbench.report import figures as figs

    if figure == "curves":
        if not models:
            raise BadInput("--figure curves needs --model M (repeatable): the models to draw")
        database = _db(db, create=False)
        return iter([figs.curves(database, list(models))])  # an unknown model is refused
    specs = figs.select(figure)  # an unknown id is refused before anything is read
    database = _db(db, create=False)
    from advbench.report.tables import Store

    store = Store(database)
    return (figs.build(database, spec, store, data_dir) for spec in specs)


def check_output_dir(output, db=None) -> None:
    """--output for paper tables is a directory: refuse a file (a database above all)."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        what = "a database" if output.suffix == ".db" or output == db else "a file"
        raise BadInput(f"--output {output} is {what}, not a directory; give a directory for "
                       "the table files")  # fmt: skip
    from advbench.store import default_db_path

    store = (Path(db) if db is not None else default_db_path()).resolve().parent
    if any(output.resolve().is_relative_to(store / d) for d in ("models", "examples")):
        raise BadInput(f"--output {output} is inside the store's checkpoints or examples; "
                       "give another directory")  # fmt: skip
    if not output.exists():
        if not output.parent.exists():
            raise BadInput(f"--output {output}: directory {output.parent} does not exist")
        output.mkdir()


def page(paper: str, *, format: str = "markdown", output, data_dir=None, db=None) -> Path:
    """`report --paper`: one paper's page (its tables, figures, the checklist of its models,
    the commands, environment and wall time) written into the folder `output`; returns
    the page's path."""
    from advbench import reproduce
    from advbench.report.html import paper_page

    names = reproduce.papers(paper) if paper != "all" else []
    if len(names) != 1:
        raise BadInput("--paper takes one paper: fidel, zantedeschi, madnet, jakubovitz, pesso")
    if format not in ("markdown", "html"):
        raise BadInput(f"--format {format} is not a page format; valid choices: markdown, html")
    if output is None:
        raise BadInput("--paper writes a page with its figures: give --output DIR")
    database = _db(db, create=False)
    check_output_dir(output, db)
    return paper_page(database, names[0], format, Path(output), data_dir=data_dir)


def listing(*, db=None) -> tuple[list, list]:
    """`report --list`: (tables, figures), each a list of (id, what it shows, cells or
    points filled by stored runs, all of them)."""
    from advbench.report import figures as figs
    from advbench.report import tables as tab

    database = _store_if_any(db)
    return tab.listing(database), figs.listing(database)


def html_report(
    *, table: str | None = None, figure: str | None = None, output, data_dir=None, db=None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Path, int, int]:  # fmt: skip
    """`report --format html --output DIR`: one self-contained page, DIR/report.html, of the
    tables (`table`: an id, a paper or all), figures and the checklist of every attacked
    model; returns (its path, tables, figures). `progress(id)` hears of each one drawn."""
    from advbench.report import figures as figs
    from advbench.report import html
    from advbench.report import tables as tab

    if output is None:
        raise BadInput("--format html writes a page with its figures: give --output DIR")
    tables = tab.select("all" if table in (None, "summary") else table)
    figures = figs.select(figure or "all") if figure != "curves" else []
    database = _db(db, create=False)
    check_output_dir(output, db)
    text = html.page(database, tables, figures, data_dir=data_dir,
                     progress=progress or (lambda ident: None))  # fmt: skip
    path = Path(output) / "report.html"
    path.write_text(text)
    return path, len(tables), len(figures)


def missing(*, table: str | None = None, figure: str | None = None, scale: str = "smoke",
            data_dir=None, db=None):  # fmt: skip
    """`report --missing`: the plan (advbench.report.missing.Plan) whose `commands()` fill
    the empty cells of `table` (default all) or the points of `figure`, and whose `absent`
    lists the cells whose data set is not on disk."""
    from advbench.report import tables as tab
    from advbench.report.missing import plan

    check_scale(scale)
    if figure is not None:
        from advbench.report import figures as figs

        if figure == "curves":
            raise BadInput("--missing plans the papers' figures; `curves` draws what is "
                           "stored (give a figure id, a paper name or all)")  # fmt: skip
        specs = figs.select(figure)
    else:
        specs = tab.select("all" if table in (None, "summary") else table)
    return plan(_store_if_any(db), specs, scale, data_dir=data_dir, db_path=db)


@dataclass
class Reproduced:
    """What `reproduce` did for one paper: its plan (steps, what was skipped and stored),
    the steps run, their seconds and the page written (None for a dry run)."""

    paper: str
    plan: Any  # advbench.reproduce.Plan
    steps_run: int = 0
    seconds: float = 0.0
    page: Path | None = None


def reproduce(paper: str, *, scale: str = "smoke", dry_run: bool = False,
              page: str = "markdown", output=None, data_dir=None, db=None,
              executor: str = "local", address: str | None = None,
              on_plan: Callable[[Any], None] | None = None,
              echo: Callable[[str], None] | None = None,
              steps_bar=None,
              on_done: Callable[[Reproduced], None] | None = None) -> list[Reproduced]:  # fmt: skip
    """`advbench reproduce`: run a paper's plan (benchmarks/plans/PAPER.json) end to end and
    write its page; `paper` may be `all`. What is stored is skipped, so a second call
    resumes. `on_plan(plan)` sees each paper's plan before it runs (its skipped parts,
    stored models and steps); `echo` gets each step's command line; `steps_bar(title,
    total)` is a context manager giving a callable to mark a step done (the CLI's outer
    bar); `on_done(result)` hears of each paper as its page is written. With `dry_run`
    nothing is run or written."""
    from advbench import reproduce as rep
    from advbench.executors import check as check_executor
    from advbench.report.html import paper_page

    check_scale(scale)
    check_executor(executor)
    if page not in ("markdown", "html"):
        raise BadInput(f"unknown --page {page!r}; valid choices: markdown, html")
    names = rep.papers(paper)  # an unknown paper is refused before anything is written
    if output is not None:
        output = Path(output)
        if len(names) > 1:
            raise BadInput("--output names one paper's folder; with `all` each page goes to "
                           "PAPER/ beside the database")  # fmt: skip
        if any(p.exists() and not p.is_dir() for p in (output, *output.parents)):
            raise BadInput(f"--output {output}: a part of the path is a file, not a directory")
    db_path = _store_path(db)  # the steps are command lines: they name the store's file
    for name in names:  # before any work: a page folder that is a file is refused
        target = output or rep.default_output(db_path, name)
        if target.exists() and not target.is_dir():
            raise BadInput(f"{target} (the page's folder) is a file; give --output DIR")
    database = _store_if_any(db) if dry_run else _db(db)
    bar = steps_bar or _no_bar
    done: list[Reproduced] = []
    for name in names:
        plan_ = rep.plan(database, name, scale, data_dir=data_dir, db_path=db_path)
        if on_plan is not None:
            on_plan(plan_)
        result = Reproduced(name, plan_)
        done.append(result)
        if dry_run:
            continue
        for step in plan_.steps:  # attack steps fan out on Ray too
            if step.kind == "attack" and executor != "local":
                step.argv += ["--executor", executor, *(["--address", address] if address else [])]
        # The plan's steps are advbench command lines by design (the page prints them and a
        # user can run any one alone), so they run through the command-line app, in this
        # process, each reading and writing the same store.
        from advbench.cli import app

        with bar(f"{name} ({scale}): steps", len(plan_.steps)) as step_done:
            result.steps_run, result.seconds = rep.execute(
                app, plan_, echo or (lambda text: None), after=step_done
            )
        target = output or rep.default_output(db_path, name)
        target.mkdir(parents=True, exist_ok=True)
        result.page = paper_page(_db(db), name, page, target, data_dir=data_dir, scale=scale,
                                 skipped=plan_.skipped)  # fmt: skip
        if on_done is not None:
            on_done(result)
    return done


def demo(
    *, db=None, device: str = "auto", scale: str = "cpu", out=None, progress=None, steps_bar=None
) -> None:
    """`advbench demo`, the main job: train on mnist-5k, harden with jacobian, run
    carlini-eval on both and print the report to `out` (a rich Console; default stdout).
    Stored steps are skipped, so an interrupted demo continues where it stopped."""
    from advbench.demo import check_scale as check_demo_scale
    from advbench.demo import run_demo

    check_demo_scale(scale)
    if out is None:
        from rich.console import Console

        out = Console()
    bar = steps_bar or _no_bar
    with bar("demo: steps", 4) as step_done:
        run_demo(db, device, scale, out=out, progress_factory=progress, step_done=step_done)


def browse(*, db=None, port: int = 8001, write_metadata=None) -> Path | int:
    """`advbench browse`: serve the store in datasette with its views and every column
    described (returns datasette's exit code), or with `write_metadata` only write that
    metadata JSON (returns its path). Needs the browse extra for serving."""
    import json
    import shutil
    import subprocess
    import tempfile

    from advbench.browse import metadata
    from advbench.store import default_db_path

    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise BadInput(f"--port {port} must be in [1, 65535]")
    path = Path(db) if db is not None else default_db_path()
    _db(path, create=False).close()  # an advbench store, migrated (views included)
    doc = json.dumps(metadata(path.stem), indent=1, ensure_ascii=False)
    if write_metadata is not None:
        target = Path(write_metadata)
        if target.suffix != ".json":
            raise BadInput(f"--write-metadata {target} must be a .json file")
        if target.exists() and not target.is_file():
            raise BadInput(f"--write-metadata {target} is not a regular file")
        if not target.parent.is_dir():
            raise BadInput(f"--write-metadata {target}: folder {target.parent} does not exist")
        store = path.resolve().parent
        inside = [store / "models", store / "examples"]
        if (target.exists() and target.samefile(path)) or any(
            target.resolve().is_relative_to(d) for d in inside
        ):
            raise BadInput(f"--write-metadata {target} is part of the store; write it elsewhere")
        target.write_text(doc + "\n")
        return target
    exe = shutil.which("datasette")
    if exe is None:
        raise BadInput("datasette is not installed; run: pip install -e '.[browse]'")
    with tempfile.TemporaryDirectory() as folder:
        meta = Path(folder) / "metadata.json"
        meta.write_text(doc)
        served = subprocess.run([exe, str(path), "--metadata", str(meta), "--port", str(port)])
    return served.returncode


def registry(kind: str):
    """The registry behind `attack --list`, `harden --list`, `archs` and `datasets`."""
    if kind == "datasets":
        from advbench.data import DATASETS

        return DATASETS
    if kind == "attacks":
        from advbench.attacks import ATTACKS

        return ATTACKS
    if kind == "defenses":
        from advbench.defenses import DEFENSES

        return DEFENSES
    from advbench.models import ARCHS

    return ARCHS


def defense_settings(name: str):
    """A defense's settings per data-set family and the papers' recipes."""
    from advbench.defenses import family_settings

    return family_settings(name)


def check_scale(scale: str) -> None:
    from advbench.suites import SCALES

    if scale not in SCALES:
        raise BadInput(f"unknown scale {scale!r}; valid choices: {', '.join(SCALES)}")


def measure_text(row: dict[str, Any]) -> str:
    """How a measurement was taken, in words."""
    if row["run_id"]:
        return f"at the examples of run {row['run_id']}"
    return f"at {row['n']} test points, seed {row['seed']}"


__all__ = [
    "Evaluation", "ModelResult", "check_scale", "claims", "convert", "defense_settings",
    "evaluate", "harden", "import_model", "load", "measure", "merge", "model_rows",
    "models", "register_module", "registry", "run_rows", "runs", "table", "train",
    "Reproduced", "browse", "demo", "html_report", "listing", "reproduce",
]  # fmt: skip
