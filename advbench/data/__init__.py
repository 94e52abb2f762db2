"""Dataset registry: name -> loader(split, ...) -> a DataSplit of [0, 1] NCHW images.

Every loader returns float32 images in [0, 1] with shape (N, C, H, W) and int64 labels;
normalisation, where an architecture wants it, happens inside the model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from advbench.registry import Registry

if TYPE_CHECKING:
    import torch


class DataSplit:
    """One split of a data set. Images are fetched by index so large sets stay on disk."""

    def __init__(self, labels: torch.Tensor, fetch: Callable[[torch.Tensor], torch.Tensor]):
        self.labels = labels
        self._fetch = fetch

    @classmethod
    def from_tensors(cls, x: torch.Tensor, y: torch.Tensor) -> DataSplit:
        return cls(y, lambda idx: x[idx])

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._fetch(idx), self.labels[idx]

    def relabelled(self, labels: torch.Tensor) -> DataSplit:
        """The same images with other labels (a proxy learning a model's predictions)."""
        return DataSplit(labels, self._fetch)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    shape: tuple[int, int, int]
    classes: int
    loader: Callable[..., DataSplit]
    # Per-channel statistics for the in-model normalisation layer (None: feed [0, 1] as is).
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    needs_dir: bool = False
    layout: str = ""
    description: str = ""


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register(spec: DatasetSpec) -> None:
    DATASETS.register(spec.name, spec, help=spec.description)


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
