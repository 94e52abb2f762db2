"""Models a user brings (`advbench import`), and `advbench convert` for their weight files.

An imported model is built by the user's own factory (`--factory pkg.module:function`,
called with `--kwargs`), by torchvision (`--torchvision resnet18`) or by timm (`--timm
resnet18`, with the data set's channels as in_chans), and its weights come
from a safetensors file, loaded strictly (every tensor named and shaped as the module
expects). A RobustBench model (`--robustbench NAME`) is built by RobustBench's own zoo and
loader from a model directory laid out as RobustBench lays it out
(DIR/DATASET/THREAT/NAME.pt); nothing is downloaded, and its .pt file is read only as
`convert` reads one (weights_only=True). advbench then stores it like a trained model:
its own safetensors checkpoint and JSON spec (the factory, torchvision, timm or RobustBench
name with its arguments, input-channel adaptation, normalisation), checksummed, with its
clean accuracy. Normalisation (`--mean`, `--std`) is folded into the stored model, so
every attack works on [0, 1] inputs; the module must return logits.

Loading such a model calls the factory it was imported with: the spec naming it is
covered by the database's record (a changed spec file is refused before anything is
built), so nothing runs that the user did not name at import. Weight files that are not
safetensors are refused; `advbench convert` turns a PyTorch `.pt`/`.pth` checkpoint into one
with `torch.load(weights_only=True)`, which refuses a pickle that would run code.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from pathlib import Path
from typing import Any

from advbench.errors import BadInput

FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
# keys PyTorch training scripts commonly wrap a state dict in
WRAPPERS = ("state_dict", "model_state_dict", "model", "net")


def check_factory(text: str) -> str:
    if not FACTORY.match(text):
        raise BadInput(f"--factory {text!r} must be MODULE:FUNCTION, e.g. mypkg.nets:build")
    return text


def _factory(text: str):
    module, _, fn = check_factory(text).partition(":")
    try:
        mod = importlib.import_module(module)
    except (Exception, SystemExit) as exc:  # the user's module: any failure is one line
        raise BadInput(f"--factory {text}: module {module!r} cannot be imported "
                       f"({type(exc).__name__}: {_first(exc)})") from None  # fmt: skip
    if not callable(getattr(mod, fn, None)):
        raise BadInput(f"--factory {text}: {module} has no function {fn!r}")
    return getattr(mod, fn)


def _repeat(channels: int):
    from torch import nn

    class Repeat(nn.Module):
        """A grey image given to a network made for `channels` channels (torchvision's
        three): the one channel repeated."""

        def forward(self, x):
            return x.expand(-1, channels, -1, -1) if x.shape[1] == 1 else x

    return Repeat()


def build_source(source: dict[str, Any]):
    """The user's module from an imported model's spec."""
    from torch import nn

    kwargs = dict(source.get("kwargs") or {})
    if source["kind"] == "factory":
        make = _factory(source["factory"])
        try:
            net = make(**kwargs)
        except (Exception, SystemExit) as exc:  # the user's code, called with their kwargs
            raise BadInput(f"--factory {source['factory']} with --kwargs "
                           f"{json.dumps(kwargs)} raised {type(exc).__name__}: "
                           f"{_first(exc)}") from None  # fmt: skip
    elif source["kind"] == "torchvision":
        import torchvision

        if source["name"] not in torchvision.models.list_models():
            from advbench.errors import unknown

            raise unknown("torchvision model", source["name"],
                          torchvision.models.list_models(module=torchvision.models))  # fmt: skip
        try:
            net = torchvision.models.get_model(source["name"], weights=None, **kwargs)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise BadInput(f"--torchvision {source['name']}: {_first(exc)}") from None
    elif source["kind"] == "timm":
        try:
            import timm
        except ImportError:
            raise BadInput("--timm needs timm: pip install timm") from None
        try:
            net = timm.create_model(source["name"], pretrained=False, **kwargs)
        except (RuntimeError, ValueError, TypeError) as exc:  # unknown model names, bad kwargs
            raise BadInput(f"--timm {source['name']}: {exc}") from None
    elif source["kind"] == "robustbench":
        net = _robustbench_zoo(source)["model"]()
    elif source["kind"] == "module":
        raise BadInput(f"this model was stored from an in-memory {source.get('class')}; "
                       "evaluate it with advbench.api.evaluate(module, ...)")  # fmt: skip
    else:
        raise BadInput(f"unknown model source {source['kind']!r}; valid: factory, "
                       "torchvision, timm, robustbench")  # fmt: skip
    if not isinstance(net, nn.Module):
        raise BadInput(f"--factory {source.get('factory')} returned {type(net).__name__}, "
                       "not a torch.nn.Module")  # fmt: skip
    if source.get("in_channels"):
        net = nn.Sequential(_repeat(int(source["in_channels"])), net)
    return net


# RobustBench's data sets and threat models, by advbench's data-set names
RB_DATASETS = ("cifar10", "cifar100", "imagenet")
RB_THREATS = ("Linf", "L2", "corruptions")


def _robustbench():
    """RobustBench's package, imported as its 1.1.1 wheel allows. Two shims, because that
    wheel does not import as released: it imports AutoAttack as `autoattack`, while the
    AutoAttack wheel it depends on (pyautoattack, Croce & Hein's own package) installs the
    same modules as `pyautoattack`; and it imports pkg_resources, which setuptools dropped
    in 81 (the `robustbench` extra pins setuptools below it)."""
    import sys
    import warnings

    try:
        import pyautoattack

        sys.modules.setdefault("autoattack", pyautoattack)
        with warnings.catch_warnings():  # its model zoo's deprecation noise is not ours
            warnings.simplefilter("ignore")
            import robustbench.utils
            from robustbench.model_zoo import model_dicts
    except ImportError as exc:
        raise BadInput(f"--robustbench needs RobustBench: pip install -e '.[robustbench]' "
                       f"({exc})") from None  # fmt: skip
    return robustbench.utils, model_dicts


def _robustbench_zoo(source: dict[str, Any]) -> dict:
    """The zoo entry of a RobustBench model: {'model': constructor, 'gdrive_id': ...}."""
    from advbench.errors import unknown

    _, zoo = _robustbench()
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    if source["dataset"] not in RB_DATASETS:
        raise BadInput(f"--robustbench models classify {', '.join(RB_DATASETS)}, not "
                       f"--dataset {source['dataset']}")  # fmt: skip
    if source["threat_model"] not in RB_THREATS:
        raise unknown("--threat-model", source["threat_model"], RB_THREATS)
    models = zoo[BenchmarkDataset(source["dataset"])].get(ThreatModel(source["threat_model"]), {})
    if source["name"] not in models:
        raise unknown(f"RobustBench {source['dataset']}/{source['threat_model']} model",
                      source["name"], sorted(models))  # fmt: skip
    return models[source["name"]]


def _robustbench_load(name: str, dataset: str, threat: str, model_dir: Path):
    """(state dict, sha256 of its files, source) of a RobustBench model whose checkpoint is
    on disk, loaded by RobustBench's own `load_model` (its key fixes, ensembles, wrappers).
    Every file is first read with weights_only=True, as `convert` reads one, and the loader
    runs with torch forced to weights-only loading, so no pickle can run code."""
    import hashlib
    import os

    from advbench.config import sha256_file

    source = {"kind": "robustbench", "name": name, "dataset": dataset, "threat_model": threat}
    entry = _robustbench_zoo(source)
    rb_utils, _ = _robustbench()
    timm_name = f"{name.lower().replace('-', '_')}_{dataset}_{threat.lower()}"
    import timm

    if timm.is_model(timm_name) or entry.get("gdrive_id") is None:
        raise BadInput(f"RobustBench's {name} is served from a hub (timm or torchvision), "
                       "not from a model directory; build it with --timm or --torchvision "
                       "and its weights converted to safetensors")  # fmt: skip
    folder = Path(model_dir) / dataset / threat
    ids = entry["gdrive_id"]
    files = ([folder / f"{name}.pt"] if not isinstance(ids, list)
             else [folder / f"{name}_m{i}.pt" for i in range(len(ids))])  # fmt: skip
    absent = [f for f in files if not f.is_file()]
    if absent:
        raise BadInput(f"--robustbench {name}: {absent[0]} is not on disk (advbench downloads "
                       "nothing; fetch it once online with robustbench.utils.load_model("
                       f"{name!r}, model_dir={str(model_dir)!r}, dataset={dataset!r}, "
                       f"threat_model={threat!r}))")  # fmt: skip
    for f in files:
        _safe_load(f)
    before = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        net = rb_utils.load_model(name, model_dir=str(model_dir), dataset=dataset,
                                  threat_model=threat)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - RobustBench's loader on the user's files
        raise BadInput(f"--robustbench {name}: RobustBench's loader failed on {files[0]} "
                       f"({type(exc).__name__}: {_first(exc)})") from None  # fmt: skip
    finally:
        if before is None:
            del os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"]
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = before
    digest = hashlib.sha256("".join(sha256_file(f) for f in files).encode()).hexdigest()
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return state, (digest if len(files) > 1 else sha256_file(files[0])), source


def _first(exc: BaseException, limit: int = 300) -> str:
    """An exception's first line, cut to `limit` characters (a state-dict mismatch lists
    thousands)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    return text if len(text) <= limit else text[:limit] + " …"


def _floats(text: str | None, channels: int, flag: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    if not isinstance(text, str):  # the API: a number or a sequence of them
        text = ",".join(map(str, text)) if isinstance(text, (list, tuple)) else str(text)
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise BadInput(f"{flag} {text!r} must be comma-separated numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise BadInput(f"{flag} {text!r} must be finite numbers")
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise BadInput(f"{flag} {text!r} has {len(values)} values; the data set has "
                       f"{channels} channels")  # fmt: skip
    return values


def read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise BadInput(f"--weights {path} is not a file")
    if path.suffix != ".safetensors":
        raise BadInput(f"--weights {path} is not a .safetensors file; convert it first: "
                       f"advbench convert {path} {path.with_suffix('.safetensors')}")  # fmt: skip
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise BadInput(f"--weights {path} cannot be read as safetensors ({exc})") from None


def _safe_load(src: Path):
    """A PyTorch checkpoint's content, read with torch.load(weights_only=True): a pickle that
    would run code (or build objects that can) is refused without running it."""
    import re
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # torch's own advice (weights_only=False) is not ours
            warnings.simplefilter("ignore")
            return torch.load(str(src), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure of the safe loader is a refusal
        first = re.sub(r"\x1b\[[0-9;]*m", "", _first(exc, 160))
        raise BadInput(f"{src} was refused by torch.load(weights_only=True): it holds more "
                       f"than tensors (code, or objects that run code) or is damaged "
                       f"({type(exc).__name__}: {first})") from None  # fmt: skip


def convert(src: Path, dst: Path) -> int:
    """A PyTorch checkpoint (.pt/.pth) to safetensors, loaded with weights_only=True (a
    pickle that would run code is refused without running it); returns the tensor count."""
    import torch

    if not src.is_file():
        raise BadInput(f"{src or repr(str(src))} is not a file")
    if dst.suffix != ".safetensors" or dst.name == ".safetensors":
        raise BadInput(f"{dst} must be a file name ending in .safetensors")
    if not dst.parent.is_dir():
        raise BadInput(f"{dst}: folder {dst.parent} does not exist")
    if dst.exists():
        raise BadInput(f"{dst} exists; choose another path (convert never overwrites)")
    if src.resolve() == dst.resolve():
        raise BadInput(f"{dst} is the input file")
    obj = _safe_load(src)
    for key in WRAPPERS:  # {'state_dict': {...}, 'epoch': 3, ...}
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise BadInput(f"{src} holds {type(obj).__name__}, not a state dict of tensors")
    tensors = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise BadInput(f"{src}: key {key!r} is a {type(key).__name__}, not a tensor name")
        if not isinstance(value, torch.Tensor) or value.layout != torch.strided:
            kind = type(value).__name__ if not isinstance(value, torch.Tensor) else "sparse"
            raise BadInput(f"{src}: entry {key!r} is a {kind}, not a dense tensor")
        name = key.removeprefix("module.")  # DataParallel's prefix: the module's own names
        if name in tensors:
            raise BadInput(f"{src}: {key!r} and another entry are both {name!r} once "
                           "DataParallel's 'module.' prefix is dropped")  # fmt: skip
        tensors[name] = value.detach().contiguous().clone()
    from safetensors.torch import save_file

    save_file(tensors, str(dst))
    return len(tensors)


__all__ = ["build_source", "check_factory", "convert", "read_safetensors"]
