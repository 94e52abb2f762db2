"""Train, harden and wrap models, and train proxies: what `train` and `harden` do.

Loading a stored model is the catalogue's (advbench/catalogue.py)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

from advbench import data as datasets
from advbench import defenses
from advbench.catalogue import (
    StoredModel,
    commit_model,
    existing,
    load_model,
    model_record,
    model_row,
    validate_name,
)
from advbench.config import config_hash
from advbench.errors import BadInput, unknown
from advbench.models import ARCHS, ModelSpec
from advbench.models.layers import ACTIVATIONS
from advbench.store import db_dir

# The papers train for at most 400 epochs (madnet's CIFAR-10 schedule); 1e8 is a typo.
MAX_EPOCHS = 10_000


def validate_train_args(
    dataset: str,
    arch: str,
    optimizer: str,
    activation: str,
    epochs: int,
    batch_size: int,
    lr: float,
) -> None:
    from advbench.fit import OPTIMIZERS

    datasets.spec(dataset)
    ARCHS.get(arch)
    if optimizer not in OPTIMIZERS:
        raise unknown("optimizer", optimizer, OPTIMIZERS)
    if activation not in ACTIVATIONS:
        raise unknown("activation", activation, ACTIVATIONS)
    if not 0 <= epochs <= MAX_EPOCHS:
        raise BadInput(f"--epochs {epochs} must be in [0, {MAX_EPOCHS:,}]")
    if batch_size <= 0:
        raise BadInput(f"--batch-size {batch_size} must be > 0")
    validate_numbers(lr=lr)


def validate_numbers(*, lr: float | None = None, weight_decay: float | None = None,
                     seed: int | None = None) -> None:  # fmt: skip
    # bounded well below float32's range: 1e300 overflowed inside the optimiser
    if lr is not None and not (math.isfinite(lr) and 0 < lr <= 1e6):
        raise BadInput(f"--lr {lr} must be a number in (0, 1e6]")
    if weight_decay is not None and not (math.isfinite(weight_decay) and 0 <= weight_decay <= 1e3):
        raise BadInput(f"--weight-decay {weight_decay} must be a number in [0, 1e3]")
    if seed is not None and not 0 <= seed < 2**63:
        raise BadInput(f"--seed {seed} must be in [0, 2^63)")


def _fit_and_store(
    db,
    *,
    name,
    config,
    spec: ModelSpec,
    model,
    loss_fn,
    fit_cfg,
    data_dir,
    download,
    force,
    progress,
    parent=None,
    defense=None,
    defense_config=None,
    relabel=None,
    record=None,
    prepare=None,
) -> StoredModel:
    from advbench.env import record_environment
    from advbench.fit import Resume, clean_accuracy, fit
    from advbench.models.checkpoint import save_checkpoint

    cfg_hash = config_hash(config)
    stored = existing(db, name, cfg_hash, force)
    if stored:
        return StoredModel(stored, created=False)
    train = datasets.load(spec.dataset, "train", data_dir=data_dir, download=download)
    test = datasets.load(spec.dataset, "test", data_dir=data_dir, download=download)
    if relabel is not None:  # a proxy learns another model's labels, not the data set's
        train = train.relabelled(relabel(train))
    folder = db_dir(db) / "models"
    resume = Resume(folder / ".partial", f"{name}-{cfg_hash}")
    if force:
        resume.clear()
    if prepare is not None:  # e.g. choosing λ=auto: work that a stored model skips
        loss_fn, defense_config, record = prepare(train, resume)
    if hasattr(loss_fn, "bind"):  # madnet's partners are drawn from the training split
        loss_fn.bind(train, spec.classes)
    env_id = record_environment(db, fit_cfg.device)
    t0 = time.monotonic()
    history = fit(model, train, fit_cfg, loss_fn=loss_fn, resume=resume, progress=progress)
    acc, n = clean_accuracy(model, test)
    config = {**config, **(record or {})}  # what is stored: the request and how it was met
    meta = {"name": name, "config": config, "parent": parent, "defense": defense,
            "defense_config": defense_config}  # fmt: skip
    row, created = commit_model(
        db, name, cfg_hash, force,
        lambda stem: save_checkpoint(model.cpu(), spec, stem, meta),
        lambda checksum: model_record(name, checksum, spec, config, cfg_hash, parent, defense,
                                      defense_config, (acc, n), fit_cfg.seed, history,
                                      env_id, t0),
    )  # fmt: skip
    resume.clear()
    return StoredModel(row, created=created)


def train_model(
    db,
    *,
    name: str,
    dataset: str,
    arch: str,
    epochs: int,
    batch_size: int,
    optimizer: str,
    lr: float,
    weight_decay: float,
    seed: int,
    device: str,
    activation: str = "relu",
    activation_param: float | None = None,
    data_dir=None,
    download: bool = False,
    force: bool = False,
    progress=None,
) -> StoredModel:
    """Train `arch` on `dataset` from scratch and store it as `name`."""
    import torch

    validate_name(db, name)
    validate_numbers(lr=lr, weight_decay=weight_decay, seed=seed)

    from advbench.fit import FitConfig
    from advbench.models import build_model

    validate_train_args(dataset, arch, optimizer, activation, epochs, batch_size, lr)
    ds = datasets.spec(dataset)
    spec = ModelSpec(
        arch, dataset, ds.shape, ds.classes, activation, activation_param, ds.mean, ds.std
    )
    fit_cfg = FitConfig(epochs, batch_size, optimizer, lr, weight_decay, seed, device)
    config = {"kind": "train", "spec": spec.to_dict(), **fit_cfg.identity()}
    torch.manual_seed(seed)
    model = build_model(spec)
    return _fit_and_store(
        db,
        name=name,
        config=config,
        spec=spec,
        model=model,
        loss_fn=_ce(),
        fit_cfg=fit_cfg,
        data_dir=data_dir,
        download=download,
        force=force,
        progress=progress,
    )


def _ce():
    from advbench.fit import cross_entropy_terms

    return cross_entropy_terms


def harden_model(
    db,
    *,
    parent: str,
    defense: str,
    name: str,
    params: dict[str, Any],
    epochs: int | None,
    batch_size: int | None,
    optimizer: str | None,
    lr: float | None,
    weight_decay: float | None = None,
    seed: int,
    device: str,
    from_scratch: bool = False,
    recipe: str | None = None,
    data_dir=None,
    download: bool = False,
    force: bool = False,
    progress=None,
) -> StoredModel:
    """Harden stored model `parent` with `defense` and store the result as `name`.

    Training-time and architecture defenses fine-tune the parent's weights (the papers'
    post-processing), or with `from_scratch` train the parent's architecture (changed by
    any architecture component) from a fresh initialisation. Inference-time defenses wrap
    the parent without training (see `wrap_model`).
    """
    validate_name(db, name)
    validate_numbers(lr=lr, weight_decay=weight_decay, seed=seed)
    import torch

    from advbench.fit import FitConfig
    from advbench.models import build_model

    parent_row = model_row(db, parent)
    fam = datasets.family(parent_row["dataset"])
    resolved = defenses.resolve(defense, params, fam, recipe)
    if defenses.kind(defense) == "inference-time":
        if from_scratch:
            raise BadInput(f"--from-scratch: {defense} is inference-time and trains nothing")
        return wrap_model(
            db, parent=parent, defense=defense, name=name, resolved=resolved, device=device,
            data_dir=data_dir, download=download, force=force,
        )  # fmt: skip
    fit = fit_settings(defense, from_scratch=from_scratch, family=fam, recipe=recipe,
                       parent_config=json.loads(parent_row["config"] or "{}"), epochs=epochs,
                       batch_size=batch_size, optimizer=optimizer, lr=lr,
                       weight_decay=weight_decay)  # fmt: skip
    epochs, batch_size, optimizer, lr, weight_decay = (
        fit[k] for k in ("epochs", "batch_size", "optimizer", "lr", "weight_decay")
    )
    parent_spec = ModelSpec.from_dict(json.loads(parent_row["spec"]))
    spec = defenses.spec_for(defense, resolved, parent_spec)
    validate_train_args(spec.dataset, spec.arch, optimizer, spec.activation, epochs, batch_size, lr)
    if from_scratch:
        torch.manual_seed(seed)
        model = build_model(spec)
    else:
        model, _, _ = load_model(db, parent, device)
        if spec != parent_spec:  # architecture change: same weights, new activations
            changed = build_model(spec)
            changed.load_state_dict(model.state_dict())
            model = changed
    fit_cfg = FitConfig(epochs, batch_size, optimizer, lr, weight_decay, seed, device)
    config = {
        "kind": "harden",
        "parent": parent,
        "parent_checksum": parent_row["checksum"],
        "defense": defense,
        "params": defenses.identity(defense, resolved),
        **fit_cfg.identity(),
    }
    # Keys only where they differ from plain fine-tuning, so earlier models keep their hash.
    if from_scratch:
        config["from_scratch"] = True
    if recipe is not None:
        config["recipe"] = recipe
    if defenses.loss_for(defense, resolved).on_clean:
        config["regularised"] = "clean inputs"  # jakubovitz 003:266 (0.1: was every row)
    if spec != parent_spec:
        config["spec"] = spec.to_dict()

    def prepare(train, resume):
        """λ=auto: chosen on the parent before training; the search is stored with it."""
        from advbench.defenses.auto import choose_weights

        chosen, records = choose_weights(
            model, train, defense, resolved, classes=spec.classes, fit_cfg=fit_cfg,
            progress=progress, resume=resume,
        )  # fmt: skip
        return defenses.loss_for(defense, chosen), chosen, {"lambda_search": records}

    auto = bool(defenses.auto_weights(defense, resolved))
    return _fit_and_store(
        db,
        name=name,
        config=config,
        spec=spec,
        model=model,
        loss_fn=None if auto else defenses.loss_for(defense, resolved),
        fit_cfg=fit_cfg,
        data_dir=data_dir,
        download=download,
        force=force,
        progress=progress,
        parent=parent,
        defense=defense,
        defense_config=resolved,
        prepare=prepare if auto else None,
    )


_RECIPE = ("epochs", "optimizer", "lr", "weight_decay")
# `advbench train`'s own settings where none is given (api.models.train's defaults)
TRAIN_DEFAULTS = {"epochs": 10, "batch_size": 64, "optimizer": "adam", "lr": 1e-3,
                  "weight_decay": 0.0}  # fmt: skip


def fit_settings(
    defense: str,
    *,
    from_scratch: bool,
    family: str,
    recipe: str | None,
    parent_config: dict[str, Any],
    epochs: int | None = None,
    batch_size: int | None = None,
    optimizer: str | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
) -> dict[str, Any]:
    """A hardening's epochs, batch size, optimiser, learning rate and weight decay: each as
    given, else the defense's paper setting for the data-set family (`defaults_for`), else,
    for "regular training" from scratch where the paper gives no recipe, the parent's own
    (its batch size excepted), else advbench's defaults (10 epochs, batch 64, Adam 1e-4).
    `harden` and the budgets report's full-scale reading (report.budgets) share this rule."""
    d = defenses.defaults_for(defense, from_scratch, family, recipe)
    if from_scratch and not {"epochs", "lr"} & set(d):  # "regular training": the parent's
        d = {**{k: v for k, v in parent_config.items() if k in _RECIPE}, **d}
    return {
        "epochs": d.get("epochs", 10) if epochs is None else epochs,
        "batch_size": d.get("batch_size", 64) if batch_size is None else batch_size,
        "optimizer": optimizer or d.get("optimizer", "adam"),
        "lr": lr if lr is not None else d.get("lr", 1e-4),
        "weight_decay": weight_decay if weight_decay is not None else d.get("weight_decay", 0.0),
    }


def wrap_model(
    db,
    *,
    parent: str,
    defense: str,
    name: str,
    resolved: dict[str, Any],
    device: str,
    data_dir=None,
    download: bool = False,
    force: bool = False,
) -> StoredModel:
    """Store an inference-time defense over `parent`: a JSON description (no weights of its
    own) whose sha256 is the model's checksum, and the wrapped model's clean accuracy."""
    from advbench.env import record_environment
    from advbench.fit import clean_accuracy
    from advbench.models.checkpoint import save_wrapper

    parent_row = model_row(db, parent)
    config = {
        "kind": "wrap",
        "parent": parent,
        "parent_checksum": parent_row["checksum"],
        "defense": defense,
        "params": defenses.identity(defense, resolved),
    }
    cfg_hash = config_hash(config)
    stored = existing(db, name, cfg_hash, force)
    if stored:
        return StoredModel(stored, created=False)
    t0 = time.monotonic()
    base, spec, _ = load_model(db, parent, device)
    wrapped = defenses.wrapper_for(defense, resolved)(base).eval()
    test = datasets.load(spec.dataset, "test", data_dir=data_dir, download=download)
    acc, n = clean_accuracy(wrapped, test)
    doc = {"name": name, "wrapper": True, "defense": defense,
           "params": defenses.identity(defense, resolved), "parent": parent,
           "parent_sha256": parent_row["checksum"], "spec": spec.to_dict(), "config": config}
    env_id = record_environment(db, device)
    row, created = commit_model(
        db, name, cfg_hash, force, lambda stem: save_wrapper(stem, doc),
        lambda checksum: model_record(name, checksum, spec, config, cfg_hash, parent, defense,
                                      resolved, (acc, n), parent_row["seed"], [], env_id, t0),
    )  # fmt: skip
    return StoredModel(row, created=created)


def proxy_name(target: str, arch: str) -> str:
    return f"{target}.proxy-{arch}"


def teacher_targets(teacher, split, device: str = "cpu"):
    """The teacher's output distribution (softmax, T = 1) on every row of `split`: the
    targets a distilled student learns."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(split), 1000):
            x, _ = split.get(torch.arange(i, min(i + 1000, len(split))))
            out.append(torch.softmax(teacher(x.to(device)), 1).cpu())
    return torch.cat(out)


def train_proxy(
    db,
    *,
    target: str,
    arch: str,
    epochs: int,
    batch_size: int,
    seed: int,
    device: str,
    optimizer: str = "adam",
    lr: float = 1e-3,
    data_dir=None,
    download: bool = False,
    progress=None,
) -> StoredModel:
    """madnet §5.4's black-box attacker, stored as `<target>.proxy-<arch>`: `arch` trained by
    teacher-student distillation of the target (002:203, after Papernot et al. 2017 and
    Carlini et al. 2019): the training split's targets are the target model's output
    distribution (softmax at temperature 1), not its argmax labels."""
    import torch

    from advbench.fit import FitConfig
    from advbench.models import build_model

    target_row = model_row(db, target)
    validate_train_args(target_row["dataset"], arch, optimizer, "relu", epochs, batch_size, lr)
    target_model, _, _ = load_model(db, target, device)
    ds = datasets.spec(target_row["dataset"])
    spec = ModelSpec(arch, ds.name, ds.shape, ds.classes, "relu", None, ds.mean, ds.std)
    fit_cfg = FitConfig(epochs, batch_size, optimizer, lr, 0.0, seed, device)
    config = {
        "kind": "proxy",
        "target": target,
        "target_checksum": target_row["checksum"],
        "spec": spec.to_dict(),
        "targets": "softmax",  # distillation; proxies before 0.1 learned argmax labels
        **fit_cfg.identity(),
    }

    name = proxy_name(target, arch)
    old = list(db["models"].rows_where("name = ?", [name]))
    # A proxy stored before distillation (argmax labels) is retrained in place: its runs
    # keep the checksum they were crafted with.
    outdated = bool(old) and "targets" not in json.loads(old[0]["config"] or "{}")
    torch.manual_seed(seed)
    return _fit_and_store(
        db,
        name=name,
        config=config,
        spec=spec,
        model=build_model(spec),
        loss_fn=_ce(),
        fit_cfg=fit_cfg,
        data_dir=data_dir,
        download=download,
        force=outdated,
        progress=progress,
        parent=target,
        relabel=lambda split: teacher_targets(target_model, split, device),
    )
