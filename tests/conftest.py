import gc
import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from advbench.store import open_db
from advbench.train import harden_model, train_model

# Under pytest-xdist (`-n 2`, the README's command) each worker takes one core; a plain
# run takes both.
# Weights trained with different thread counts differ in their last bits, so the children
# that tests spawn to kill and resume take the same count (ADVBENCH_TEST_THREADS).
THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2
torch.set_num_threads(THREADS)
os.environ["ADVBENCH_TEST_THREADS"] = str(THREADS)


def write_cifar_batch(path, n, seed=0, label_key="labels"):
    """A CIFAR python batch of `n` random images, as the CIFAR tarballs hold them
    (CIFAR-100's labels are under "fine_labels")."""
    import pickle

    import numpy as np

    rng = np.random.default_rng(seed)
    entry = {"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
             label_key: [int(v) for v in rng.integers(0, 10, size=n)]}  # fmt: skip
    with open(path, "wb") as fh:
        pickle.dump(entry, fh, protocol=2)
    return entry


@pytest.fixture
def write_cifar():
    return write_cifar_batch


@pytest.fixture
def cifar_dir(tmp_path):
    """A --data-dir holding a tiny CIFAR-10 (5 batches of 8 images, a test batch of 12)."""
    data = tmp_path / "data"
    base = data / "cifar-10-batches-py"
    base.mkdir(parents=True)
    for i in range(1, 6):
        write_cifar_batch(base / f"data_batch_{i}", 8, seed=i)
    write_cifar_batch(base / "test_batch", 12, seed=9)
    return data


@pytest.fixture(scope="session")
def trained_db(tmp_path_factory):
    """A database holding a digits model and a jacobian-hardened child (read-only use)."""
    folder = tmp_path_factory.mktemp("store")
    db = open_db(folder / "a.db")
    train_model(
        db,
        name="std",
        dataset="digits",
        arch="madry-mnist",
        epochs=4,
        batch_size=64,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        seed=0,
        device="cpu",
    )
    harden_model(
        db,
        parent="std",
        defense="jacobian",
        name="jac",
        params={"lambda": 0.5, "exact": True},
        epochs=3,
        batch_size=64,
        optimizer="adam",
        lr=1e-4,
        weight_decay=0.0,
        seed=0,
        device="cpu",
    )
    db.close()
    return folder / "a.db"


@pytest.fixture
def db_copy(trained_db, tmp_path):
    """A private copy of the trained store (with its checkpoints) a test may modify."""
    dst = tmp_path / "store"
    shutil.copytree(trained_db.parent, dst)
    return dst / "a.db"


@pytest.fixture
def snapshot():
    """`snapshot(folder)`: the sha256 of every file under `folder`, to show a refused
    command left the store byte for byte as it was (issue 13).

    It first collects garbage: a store connection that an earlier in-process command or the
    test itself left in a reference cycle checkpoints the WAL into the main file when it is
    collected, which would otherwise rewrite a.db's bytes in the middle of a later, refused
    command (it failed two import tests on CI). A separate process exits, closing its
    connections, so a user never meets this. The WAL side files are not compared: a reader
    opening the store touches -shm."""

    def take(folder: Path) -> dict[str, str]:
        gc.collect()
        return {
            str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm", "-journal"))
        }

    return take


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(autouse=True)
def _progress_mode_per_test():
    """`-q` sets the process's progress mode (as the CLI should); a test that invokes a
    command with it must not leave later tests in the same worker without bars."""
    from advbench import progress

    yield
    progress.set_mode("auto")
