"""Models in the store: train, harden, import, register a module, measure, list."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from advbench.api._common import (
    NO_MODEL,
    _bars,
    _db,
    _existing_store,
    _params,
    _read,
    _whole,
)
from advbench.errors import BadInput


def train(
    *,
    dataset: str,
    arch: str,
    name: str | None = None,
    epochs: int = 10,
    batch_size: int = 64,  # the command's default: a step runs here as its command line
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
    from advbench.catalogue import validate_name
    from advbench.env import resolve_device
    from advbench.models import ARCHS, default_activation
    from advbench.train import train_model, validate_numbers, validate_train_args

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
    from advbench.catalogue import validate_name
    from advbench.defenses import resolve
    from advbench.env import resolve_device
    from advbench.train import harden_model, validate_numbers

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


def register_module(db, module, *, dataset: str, name: str | None = None):
    """Store an in-memory module's weights (checksummed) as a model of `dataset`, so its
    runs are recorded like any other's; returns (the module ready to attack, its row).
    Its spec cannot rebuild the module (no factory): commands that load it by name are
    refused with a line saying to evaluate it through this API."""

    import torch
    from torch import nn

    from advbench import data as datasets
    from advbench.catalogue import existing, validate_name
    from advbench.config import config_hash
    from advbench.models import ModelSpec
    from advbench.models.layers import ZooModel

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
    stored = existing(database, name, cfg_hash, force=False)
    if stored:
        return net, stored
    from advbench.importing import store

    row = store(database, net, spec, config, cfg_hash, name, test)
    return net, row


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
    from advbench.catalogue import load_model
    from advbench.env import record_environment, resolve_device
    from advbench.measurements import METRICS, check
    from advbench.measurements import measure as take

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
    """`advbench import`: see advbench.importing.import_model. `weights` is a
    safetensors file, or None with `robustbench_name` (its checkpoint is read from
    `model_dir`, laid out as RobustBench lays it out)."""
    from advbench.importing import import_model as run

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
    from advbench.catalogue import load_model

    return load_model(_read(db), name, device)[0]


def model_rows(db=None) -> list[dict[str, Any]]:
    """The stored models, oldest first, each with its clean accuracy's 95 % Wilson interval
    (ci_low, ci_high)."""
    from advbench.catalogue import clean_interval

    rows = []
    roles = _paper_roles()
    for r in _read(db)["models"].rows_where(order_by="created_at"):
        lo, hi = clean_interval(r)
        role = ", ".join(f"{paper}:{key}" for paper, data, key, role in roles
                         if role.matches(r, data))  # fmt: skip
        rows.append({**r, "ci_low": lo, "ci_high": hi, "role": role or None})
    return rows


def _paper_roles() -> list[tuple]:
    """Every (paper, data, role key, Role) of the papers' tables and figures, once each: a
    stored model's role says which cells it fills (a control "KEY-control", a seed
    replicate "KEY-sN")."""
    from advbench.report.papers import figures, tables

    seen: dict[tuple, object] = {}
    for spec in [*tables().values(), *figures().values()]:
        for (data, key), role in spec.roles.items():
            seen.setdefault((spec.paper, data, key), role)
    return [(*k, v) for k, v in seen.items()]


def models(db=None):
    """The stored models as a DataFrame (`model_rows`)."""
    import pandas as pd

    return pd.DataFrame(model_rows(db))


def run_rows(db=None, model: str | None = None) -> list[dict[str, Any]]:
    """The stored runs in the order they started (every column of `runs`; `attack` is the
    suite row's label where it has one, `scale` 'custom' for a single attack)."""
    database = _read(db)
    if model is not None:
        from advbench.catalogue import model_row

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


def measure_text(row: dict[str, Any]) -> str:
    """How a measurement was taken, in words."""
    if row["run_id"]:
        return f"at the examples of run {row['run_id']}"
    return f"at {row['n']} test points, seed {row['seed']}"
