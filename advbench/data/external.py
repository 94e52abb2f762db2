"""Data sets read from a --data-dir in their published on-disk formats.

MNIST and Fashion-MNIST go through torchvision's loaders (IDX files). CIFAR-10/100 are
downloaded through torchvision but read here: torchvision reads the batches with a plain
`pickle.load`, which can execute code, so we unpickle them with an allow-list of the numpy
types the real files contain. ImageNet is an ImageFolder tree read image by image.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from advbench.data.base import DatasetSpec, DataSplit, register
from advbench.errors import BadInput

DEFAULT_DATA_DIR = Path("data")

_CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR_STD = (0.2470, 0.2435, 0.2616)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _missing(name: str, root: Path, searched: Path, layout: str) -> BadInput:
    """One line: where we looked, what we expected, and how to get it."""
    fix = (
        "ImageNet cannot be downloaded automatically: unpack it there as an ImageFolder tree"
        if name == "imagenet"
        else f"to fetch it run: advbench train --dataset {name} --data-dir {root} --download"
    )
    return BadInput(f"{name}: no data found in {searched} (expected {layout}); {fix}")


def _root(data_dir: Path | None) -> Path:
    return Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR


def _idx_loader(name: str, tv_name: str, folder: str):
    files = ", ".join(
        f"{p}-{k}-idx{d}-ubyte"
        for p in ("train", "t10k")
        for k, d in (("images", 3), ("labels", 1))
    )

    def load(split: str, *, data_dir: Path | None, download: bool, seed: int) -> DataSplit:
        root = _root(data_dir)
        prefix = "train" if split == "train" else "t10k"
        raw = [root / folder / "raw" / f"{prefix}-{k}-idx{d}-ubyte"
               for k, d in (("images", 3), ("labels", 1))]  # fmt: skip
        legacy = root / folder / "processed" / ("training.pt" if split == "train" else "test.pt")
        if not download and not all(f.exists() for f in raw) and not legacy.exists():
            # torchvision's own check (its IDX files, or its older processed/*.pt), made
            # before torch is imported: `report --list` asks which data sets are on disk
            raise _missing(name, root, root / folder / "raw", files)
        import torch
        import torchvision.datasets as tvd

        cls = getattr(tvd, tv_name)
        try:
            ds = cls(str(root), train=(split == "train"), download=download)
        except RuntimeError as exc:
            if "not found" in str(exc).lower():
                raise _missing(name, root, root / folder / "raw", files) from None
            raise
        except OSError as exc:  # download failed (offline)
            raise BadInput(f"{name}: download into {root} failed: {exc}") from None
        x = ds.data.to(torch.float32).unsqueeze(1) / 255.0
        return DataSplit.from_tensors(x, ds.targets.to(torch.int64))

    return load


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and numpy arrays, and refuses every other global."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def read_cifar_batch(path: Path) -> tuple:
    """One CIFAR python batch -> (uint8 array N x 3 x 32 x 32, list of labels)."""
    import numpy as np

    with open(path, "rb") as fh:
        entry = _ArrayOnlyUnpickler(fh, encoding="latin1").load()
    entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
    labels = entry.get("labels", entry.get("fine_labels"))
    data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, list(labels)


def _cifar_loader(name: str, folder: str, tv_name: str, train_files, test_files):
    layout = f"{folder}/ with " + ", ".join([*train_files, *test_files])

    def load(split: str, *, data_dir: Path | None, download: bool, seed: int) -> DataSplit:
        root = _root(data_dir)
        base = root / folder
        files = train_files if split == "train" else test_files
        if download and not all((base / f).exists() for f in files):
            import torchvision.datasets as tvd

            try:
                getattr(tvd, tv_name)(str(root), train=(split == "train"), download=True)
            except OSError as exc:
                raise BadInput(f"{name}: download into {root} failed: {exc}") from None
        if not all((base / f).exists() for f in files):
            raise _missing(name, root, base, layout)
        import numpy as np
        import torch

        parts = [read_cifar_batch(base / f) for f in files]
        x = torch.from_numpy(np.concatenate([p[0] for p in parts])).to(torch.float32) / 255.0
        y = torch.tensor([label for p in parts for label in p[1]], dtype=torch.int64)
        return DataSplit.from_tensors(x, y)

    return load


def _imagenet(split: str, *, data_dir: Path | None, download: bool, seed: int) -> DataSplit:
    root = _root(data_dir) / ("train" if split == "train" else "val")
    if not root.is_dir() or not any(p.is_dir() for p in root.iterdir()):
        raise _missing("imagenet", _root(data_dir), root, "one sub-folder of images per class")
    import torch
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    ds = ImageFolder(
        str(root), transform=T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])
    )
    labels = torch.tensor(ds.targets, dtype=torch.int64)

    def fetch(idx: torch.Tensor) -> torch.Tensor:
        return torch.stack([ds[int(i)][0] for i in idx.reshape(-1)])

    return DataSplit(labels, fetch)


_MNIST_LAYOUT = "IDX files train-images-idx3-ubyte etc. under MNIST/raw/"
register(
    DatasetSpec(
        "mnist",
        (1, 28, 28),
        10,
        _idx_loader("mnist", "MNIST", "MNIST"),
        needs_dir=True,
        layout=_MNIST_LAYOUT,
        description="MNIST 60k/10k via torchvision (IDX files).",
    )
)
register(
    DatasetSpec(
        "fashion-mnist",
        (1, 28, 28),
        10,
        _idx_loader("fashion-mnist", "FashionMNIST", "FashionMNIST"),
        needs_dir=True,
        layout="IDX files under FashionMNIST/raw/",
        description="Fashion-MNIST 60k/10k via torchvision (IDX files).",
    )
)
register(
    DatasetSpec(
        "cifar10",
        (3, 32, 32),
        10,
        _cifar_loader(
            "cifar10",
            "cifar-10-batches-py",
            "CIFAR10",
            [f"data_batch_{i}" for i in range(1, 6)],
            ["test_batch"],
        ),
        mean=_CIFAR_MEAN,
        std=_CIFAR_STD,
        needs_dir=True,
        layout="cifar-10-batches-py/",
        description="CIFAR-10 50k/10k (python batches).",
    )
)
register(
    DatasetSpec(
        "cifar100",
        (3, 32, 32),
        100,
        _cifar_loader("cifar100", "cifar-100-python", "CIFAR100", ["train"], ["test"]),
        mean=_CIFAR_MEAN,
        std=_CIFAR_STD,
        needs_dir=True,
        layout="cifar-100-python/",
        description="CIFAR-100 50k/10k (python batches).",
    )
)
register(
    DatasetSpec(
        "imagenet",
        (3, 224, 224),
        1000,
        _imagenet,
        mean=_IMAGENET_MEAN,
        std=_IMAGENET_STD,
        needs_dir=True,
        layout="train/ and val/ ImageFolder trees",
        description="ImageNet from an ImageFolder directory (train/, val/).",
    )
)
