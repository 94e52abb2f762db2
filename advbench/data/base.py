"""What every data-set module shares: a split of images, a data set's spec, the registry.

The loaders (embedded.py, external.py) register their data sets here; `advbench.data`
imports them, so importing the package registers every data set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
