"""`advbench import`: store a model a user brings like a trained one.

Building the module (a factory, torchvision, timm, RobustBench) and reading its weights
is the domain's (advbench/models/imported.py); this module checks the whole request,
then records the model in the catalogue with its checkpoint, checksum and clean accuracy.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from advbench import data as datasets
from advbench.catalogue import StoredModel, commit_model, existing, model_record, validate_name
from advbench.config import config_hash, sha256_file
from advbench.env import record_environment
from advbench.errors import BadInput
from advbench.fit import clean_accuracy
from advbench.models import ModelSpec, build_model
from advbench.models.checkpoint import save_checkpoint
from advbench.models.imported import (
    _first,
    _floats,
    _robustbench_load,
    check_factory,
    read_safetensors,
)


def import_model(
    open_store,
    *,
    name: str,
    dataset: str,
    weights: Path | None = None,
    factory: str | None = None,
    torchvision_name: str | None = None,
    timm_name: str | None = None,
    robustbench_name: str | None = None,
    threat_model: str = "Linf",
    model_dir: Path | str = "models",
    kwargs: str | dict | None = None,
    in_channels: int | None = None,
    mean: str | None = None,
    std: str | None = None,
    data_dir=None,
    force: bool = False,
):
    """Store a user's model under `name`; returns catalogue.StoredModel. Everything is checked
    (the module built, its weights loaded, one forward pass on the data set) before
    `open_store()` opens the store: a refused import leaves no file behind."""

    import torch

    builders = (factory, torchvision_name, timm_name, robustbench_name)
    if sum(x is not None for x in builders) != 1:
        raise BadInput("give one of --factory MODULE:FUNCTION, --torchvision NAME, --timm NAME "
                       "or --robustbench NAME")  # fmt: skip
    if (weights is None) != (robustbench_name is not None):
        raise BadInput(
            "--robustbench reads its checkpoint from --model-dir: give no --weights"
            if weights is not None
            else "give --weights FILE.safetensors (the module's state dict)"
        )
    validate_name(None, name)
    ds = datasets.spec(dataset)
    if isinstance(kwargs, dict):
        extra = dict(kwargs)
    else:
        try:
            extra = json.loads(kwargs) if kwargs else {}
        except (ValueError, TypeError) as exc:
            raise BadInput(f"--kwargs {kwargs!r} is not JSON ({exc})") from None
    if not isinstance(extra, dict):
        raise BadInput(f"--kwargs {kwargs!r} must be a JSON object, e.g. '{{\"hidden\": 32}}'")
    if robustbench_name is not None:
        if extra:
            raise BadInput("--kwargs is not used with --robustbench: the zoo builds the model")
        # loaded first: its data-set, threat-model and name checks come before the data's
        state, weights_sha, source = _robustbench_load(robustbench_name, dataset, threat_model,
                                                       Path(model_dir))  # fmt: skip
    elif factory is not None:
        source = {"kind": "factory", "factory": check_factory(factory), "kwargs": extra}
    elif timm_name is not None:
        made = {"num_classes": ds.classes, "in_chans": ds.shape[0]}
        source = {"kind": "timm", "name": timm_name, "kwargs": {**made, **extra}}
    else:
        source = {"kind": "torchvision", "name": torchvision_name,
                  "kwargs": {"num_classes": ds.classes, **extra}}  # fmt: skip
        in_channels = 3 if in_channels is None else in_channels  # torchvision's input
    channels = ds.shape[0]
    if in_channels is not None:
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) \
                or not 1 <= in_channels <= 64:  # fmt: skip
            raise BadInput(f"--in-channels {in_channels!r} must be a whole number in [1, 64]")
        if in_channels != channels:
            if channels != 1:
                raise BadInput(f"--in-channels {in_channels}: only a one-channel data set "
                               f"repeats to more; {dataset} has {channels}")  # fmt: skip
            source["in_channels"] = in_channels
    if robustbench_name is None:
        state = read_safetensors(Path(weights))
        weights_sha = sha256_file(Path(weights))
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise BadInput(f"--weights {weights}: tensor {bad[0]!r} holds NaN or inf")
    spec = ModelSpec("import", dataset, tuple(ds.shape), ds.classes,
                     mean=_floats(mean, channels, "--mean"), std=_floats(std, channels, "--std"),
                     source=source)  # fmt: skip
    if spec.std is not None and any(v <= 1e-6 for v in spec.std):
        raise BadInput(f"--std {std!r} must be > 1e-6")
    if (spec.mean is None) != (spec.std is None):
        raise BadInput("give --mean and --std together (or neither)")
    model = build_model(spec)
    target = model.features[-1] if source.get("in_channels") else model.features
    try:
        target.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise BadInput(f"--weights {weights} do not fit the module: {_first(exc)}") from None
    model.eval()
    test = datasets.load(dataset, "test", data_dir=data_dir)
    x, _ = test.get(torch.arange(min(4, len(test))))
    try:
        with torch.no_grad():
            out = model(x)
    except (Exception, SystemExit) as exc:  # the user's forward on this data set's images
        raise BadInput(f"the imported module fails on {dataset}'s {tuple(x.shape[1:])} "
                       f"images: {type(exc).__name__}: {_first(exc)}") from None  # fmt: skip
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] != ds.classes:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise BadInput(f"the imported module returns {shape} on {dataset}; it must return "
                       f"logits of shape (batch, {ds.classes})")  # fmt: skip
    config = {"kind": "import", "source": source, "weights_sha256": weights_sha,
              "mean": spec.mean, "std": spec.std}  # fmt: skip
    cfg_hash = config_hash(config)
    db = open_store()
    validate_name(db, name)
    stored = existing(db, name, cfg_hash, force)
    if stored:
        return StoredModel(stored, created=False)
    return StoredModel(store(db, model, spec, config, cfg_hash, name, test, force), created=True)


def store(db, model, spec, config: dict, cfg_hash: str, name: str, test, force=False) -> dict:
    """Record a module brought from outside (imported, or in memory through the API) like a
    trained model: its checkpoint, checksum and clean accuracy on `test`; returns its row."""
    env_id = record_environment(db, "cpu")
    t0 = time.monotonic()
    accuracy = clean_accuracy(model, test)
    meta = {"name": name, "config": config, "parent": None, "defense": None,
            "defense_config": None}  # fmt: skip
    row, _ = commit_model(
        db, name, cfg_hash, force, lambda stem: save_checkpoint(model, spec, stem, meta),
        lambda checksum: model_record(name, checksum, spec, config, cfg_hash, None, None, None,
                                      accuracy, 0, [], env_id, t0),
    )  # fmt: skip
    return row
