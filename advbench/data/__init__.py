"""Dataset registry: name -> loader(split, ...) -> a DataSplit of [0, 1] NCHW images.

Every loader returns float32 images in [0, 1] with shape (N, C, H, W) and int64 labels;
normalisation, where an architecture wants it, happens inside the model.
"""

from __future__ import annotations

import functools
from pathlib import Path

from advbench.data.base import DATASETS, DatasetSpec, DataSplit, register


def spec(name: str) -> DatasetSpec:
    return DATASETS.get(name).factory


def family(dataset: str) -> str:
    """The papers' data-set family (mnist, cifar, imagenet): which ε grid a suite uses and
    which paper setting a defense defaults to."""
    if dataset.startswith("cifar"):
        return "cifar"
    if dataset == "imagenet":
        return "imagenet"
    return "mnist"


def load(
    name: str,
    split: str,
    *,
    data_dir: Path | None = None,
    download: bool = False,
    seed: int = 0,
) -> DataSplit:
    """Load `split` ('train' or 'test') of the named data set.

    Cached per process (keyed on the normalised arguments): attacking several models, or
    running several suites, parses the data once. Callers must not modify the tensors.
    """
    return _load(name, split, Path(data_dir) if data_dir is not None else None, download, seed)


@functools.lru_cache(maxsize=8)
def _load(name: str, split: str, data_dir: Path | None, download: bool, seed: int) -> DataSplit:
    return spec(name).loader(split, data_dir=data_dir, download=download, seed=seed)


from advbench.data import embedded as _embedded  # noqa: E402,F401  (registers)
from advbench.data import external as _external  # noqa: E402,F401  (registers)

__all__ = ["DATASETS", "DataSplit", "DatasetSpec", "family", "load", "register", "spec"]
