import hashlib
import os
import shutil
import sqlite3
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


def _digest(path: Path) -> str:
    """A database's content (its SQL dump, read-only), any other file's bytes.

    A store's bytes are not its content: in WAL mode the main file changes whenever the
    last connection closes and checkpoints, which a connection left to the garbage
    collector by an earlier command may do in the middle of a later, refused one."""
    if path.read_bytes()[:16] == b"SQLite format 3\x00":
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            body = "\n".join(con.iterdump()).encode()
        finally:
            con.close()
    else:
        body = path.read_bytes()
    return hashlib.sha256(body).hexdigest()


@pytest.fixture
def snapshot():
    """`snapshot(folder)`: every file under `folder` with its digest (WAL side files are
    part of their database), to show a refused command left the store as it was."""

    def take(folder: Path) -> dict[str, str]:
        return {
            str(p.relative_to(folder)): _digest(p)
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
