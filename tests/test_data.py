"""Loaders return [0, 1] NCHW float tensors with int labels; torchvision-format files are
read from small files written here in the real on-disk formats."""

import pickle
import struct

import numpy as np
import pytest
import torch

from advbench import data
from advbench.errors import BadInput


def test_mnist5k_split_is_stratified_and_shuffled():
    train = data.load("mnist-5k", "train")
    test = data.load("mnist-5k", "test")
    assert (len(train), len(test)) == (4000, 1000)
    assert torch.bincount(test.labels).tolist() == [100] * 10
    x, y = test.get(torch.arange(50))
    assert x.shape == (50, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and float(x.max()) > 0.9
    assert len(set(y.tolist())) > 5, "first 50 test samples should mix classes (source is sorted)"
    # No image is in both splits.
    tr, _ = train.get(torch.arange(len(train)))
    te, _ = test.get(torch.arange(len(test)))
    tr_keys = {hash(t.numpy().tobytes()) for t in tr}
    assert sum(hash(t.numpy().tobytes()) in tr_keys for t in te) < 5  # mnist has few dupes


def test_digits_shapes_and_range():
    split = data.load("digits", "test")
    x, y = split.get(torch.arange(len(split)))
    assert x.shape == (360, 1, 8, 8)
    assert float(x.max()) == 1.0 and float(x.min()) == 0.0
    assert y.dtype == torch.int64


def _write_idx(path, arr: np.ndarray):
    dims = arr.shape
    header = struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(">" + "I" * len(dims), *dims)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def test_mnist_reads_idx_files_through_torchvision(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(7, 28, 28))
    labels = np.array([3, 1, 4, 1, 5, 9, 2])
    for prefix in ("train", "t10k"):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", imgs)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    split = data.load("mnist", "test", data_dir=tmp_path)
    x, y = split.get(torch.arange(7))
    assert y.tolist() == labels.tolist()
    assert torch.allclose(x[:, 0] * 255, torch.tensor(imgs, dtype=torch.float32))


def test_cifar10_reads_python_batches(tmp_path, write_cifar):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    for i in range(1, 6):
        write_cifar(base / f"data_batch_{i}", 4, seed=i)
    entry = write_cifar(base / "test_batch", 5, seed=9)
    split = data.load("cifar10", "test", data_dir=tmp_path)
    x, y = split.get(torch.arange(5))
    assert x.shape == (5, 3, 32, 32)
    assert y.tolist() == [int(v) for v in entry["labels"]]
    expected = torch.tensor(entry["data"].reshape(5, 3, 32, 32), dtype=torch.float32) / 255
    assert torch.allclose(x, expected)
    assert len(data.load("cifar10", "train", data_dir=tmp_path)) == 20


def test_cifar100_uses_fine_labels(tmp_path, write_cifar):
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    write_cifar(base / "train", 3, label_key="fine_labels")
    entry = write_cifar(base / "test", 3, seed=1, label_key="fine_labels")
    split = data.load("cifar100", "test", data_dir=tmp_path)
    assert split.labels.tolist() == [int(v) for v in entry["fine_labels"]]


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar_reader_refuses_code_in_pickles(tmp_path):
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    for f in ("train", "test"):
        with open(base / f, "wb") as fh:
            pickle.dump({"data": _Evil(), "fine_labels": [1]}, fh)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        data.load("cifar100", "test", data_dir=tmp_path)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10", "cifar100", "imagenet"])
def test_missing_data_names_directory_and_fix(tmp_path, name):
    with pytest.raises(BadInput) as exc:
        data.load(name, "test", data_dir=tmp_path)
    msg = str(exc.value)
    assert str(tmp_path) in msg and "expected" in msg
    assert "\n" not in msg
    if name != "imagenet":
        assert "--download" in msg


def test_imagenet_reads_imagefolder(tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        folder = tmp_path / "val" / cls
        folder.mkdir(parents=True)
        Image.fromarray(np.full((300, 260, 3), 200 if cls == "a" else 10, np.uint8)).save(
            folder / "x.png"
        )
    split = data.load("imagenet", "test", data_dir=tmp_path)
    x, y = split.get(torch.tensor([0, 1]))
    assert x.shape == (2, 3, 224, 224)
    assert y.tolist() == [0, 1]
    assert float(x[0].mean()) > 0.7 > 0.1 > float(x[1].mean())


def test_loads_are_cached_whatever_the_argument_spelling():
    a = data.load("digits", "test")
    b = data.load("digits", "test", data_dir=None, download=False)
    assert a is b


def test_missing_mnist_suggests_the_root_folder_for_download(tmp_path):
    with pytest.raises(BadInput) as exc:
        data.load("mnist", "test", data_dir=tmp_path)
    assert f"--data-dir {tmp_path} --download" in str(exc.value)


@pytest.mark.parametrize(
    ("name", "split", "digest", "first"),
    [
        ("digits", "train", "cd806e645ba85b94", [9, 2, 4, 4, 5, 5, 7, 7, 9, 8, 9, 2]),
        ("digits", "test", "dd9853958c3f0b70", [2, 9, 4, 9, 5, 0, 1, 7, 7, 9, 0, 1]),
        ("mnist-5k", "train", "7124ff9308e92feb", [4, 3, 1, 9, 9, 7, 8, 6, 0, 6, 5, 4]),
        ("mnist-5k", "test", "8da79076c0415568", [1, 0, 5, 4, 4, 0, 2, 3, 6, 6, 7, 9]),
    ],
)
def test_embedded_splits_are_pinned(name, split, digest, first):
    """Which image is in which split, in which order: every stored run's samples are chosen
    by position in the test split, so a changed split seed or order changes every number
    (and stored runs would silently describe other images)."""
    import hashlib

    s = data.load(name, split)
    x, y = s.get(torch.arange(len(s)))
    pixels = (x * 255).round().to(torch.uint8).numpy().tobytes()
    assert y[:12].tolist() == first
    assert hashlib.sha256(y.numpy().tobytes() + pixels).hexdigest()[:16] == digest
