"""Checkpoints: weights as safetensors, metadata as JSON, sha256 of the weights file.

No pickle anywhere: loading a checkpoint cannot execute code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from advbench.config import sha256_file
from advbench.errors import BadInput, Fault
from advbench.models import ModelSpec, build_model


def beside(stem: Path, suffix: str) -> Path:
    """`<stem><suffix>`; not Path.with_suffix, which would turn model `a.b` into `a.json`
    and overwrite model `a`'s files."""
    return stem.with_name(stem.name + suffix)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """`path` holds `data` or what it held before: never a partial file, and no partial
    `.tmp` beside it when the write fails (a full disk)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:  # name the file the write was for (a bare write has no name)
        tmp.unlink(missing_ok=True)
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_tensors(path: Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None):
    from safetensors.torch import save

    flat = {k: v.detach().contiguous().cpu() for k, v in sorted(tensors.items())}
    _atomic_write_bytes(path, save(flat, metadata=metadata))


def save_checkpoint(model, spec: ModelSpec, stem: Path, meta: dict[str, Any]) -> str:
    """Write `<stem>.safetensors` and `<stem>.json`; return the weights' sha256."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights = beside(stem, ".safetensors")
    save_tensors(weights, model.state_dict())
    checksum = sha256_file(weights)
    doc = {"spec": spec.to_dict(), "sha256": checksum, **meta}
    _atomic_write_bytes(beside(stem, ".json"), json.dumps(doc, indent=2).encode())
    return checksum


def load_checkpoint(
    stem: Path, expected_sha256: str | None = None, expected_spec: dict[str, Any] | None = None
):
    """Rebuild the module from the JSON spec and load the verified weights.

    The weights must have the sha256 the database recorded, the JSON must record that same
    sha256, and the JSON's spec (the architecture, activation and its parameter,
    normalisation, classes: everything the weights alone do not define) must equal the spec
    the database recorded: a changed side file is refused, never silently used. A damaged
    file is one line, not a traceback."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, meta_path = beside(stem, ".safetensors"), beside(stem, ".json")
    if not weights.exists() or not meta_path.exists():
        raise Fault(f"checkpoint {stem} is missing (.safetensors and .json expected): it was "
                    "moved or deleted after it was recorded; restore the models folder beside "
                    "the store, or train the model again with --force")  # fmt: skip
    try:
        meta = json.loads(meta_path.read_text())
        spec_doc = meta["spec"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise BadInput(f"checkpoint metadata {meta_path} is not valid ({exc!r})") from None
    checksum = sha256_file(weights)
    if expected_sha256 is not None and checksum != expected_sha256:
        raise BadInput(
            f"checkpoint {weights} has sha256 {checksum[:12]}…, the database expects "
            f"{expected_sha256[:12]}…; the file was changed after it was recorded"
        )
    if expected_sha256 is not None and meta.get("sha256") != expected_sha256:
        raise BadInput(
            f"checkpoint metadata {meta_path} disagrees with the database on sha256; "
            "the file was changed after it was recorded"
        )
    if expected_spec is not None and spec_doc != expected_spec:
        changed = sorted(
            k for k in set(spec_doc) | set(expected_spec)
            if spec_doc.get(k) != expected_spec.get(k)
        )  # fmt: skip
        raise BadInput(
            f"checkpoint metadata {meta_path} disagrees with the database on "
            f"{', '.join(changed)}; the file was changed after it was recorded"
        )
    try:
        spec = ModelSpec.from_dict(spec_doc)
        model = build_model(spec)
        model.load_state_dict(load_file(str(weights)))
    except (SafetensorError, RuntimeError, TypeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise BadInput(f"checkpoint {weights} cannot be loaded: {first}") from None
    model.eval()
    return model, spec, meta


def save_wrapper(stem: Path, doc: dict[str, Any]) -> str:
    """An inference-time defense has no weights of its own: `<stem>.json` names the wrapper,
    its parameters and the parent checkpoint (with its sha256). Returns the JSON's sha256,
    which is the wrapper's checksum (it changes when the parent or a parameter does)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    beside(stem, ".safetensors").unlink(missing_ok=True)  # a replaced model's weights
    path = beside(stem, ".json")
    _atomic_write_bytes(path, json.dumps(doc, indent=2, sort_keys=True).encode())
    return sha256_file(path)


def load_wrapper_doc(stem: Path, expected_sha256: str) -> dict[str, Any]:
    path = beside(stem, ".json")
    if not path.exists():
        raise Fault(f"wrapper description {path} is missing: it was moved or deleted after it "
                    "was recorded; restore the models folder beside the store")
    checksum = sha256_file(path)
    if checksum != expected_sha256:
        raise BadInput(
            f"wrapper description {path} has sha256 {checksum[:12]}…, the database expects "
            f"{expected_sha256[:12]}…; the file was changed after it was recorded"
        )
    return json.loads(path.read_text())
