import gc
import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

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


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def trained_db(tmp_path_factory):
    """A database holding a digits model and a jacobian-hardened child (read-only use).

    Committed (`tests/fixtures/trained_store`, made by `tests/fixtures/make_fixtures.py`), not
    trained here: weights trained on another CPU type differ in their last bits, which the
    pinned attack outcomes see (58 pins failed on an AVX2 host; the script says more)."""
    folder = tmp_path_factory.mktemp("store")
    shutil.copytree(FIXTURES / "trained_store", folder, dirs_exist_ok=True)
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


# Per-sample pins (tests/test_attack_contract, tests/test_engine_pinned) on fixed weights still
# run the attacks through the host's kernels. Measured with the kernels an AVX2 host takes
# (ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell on an AVX-512
# host, 2026-12-07): every outcome and all but 1-2 rows of 3 of the 43 contract pins stayed
# within NORM_TOL; those rows (L2 attacks at ε 3, the box-constrained C&W) moved their norms by
# up to 2e-3 relative and l0 by one feature, a long optimisation amplifying a last-bit
# difference. So a pin absorbs at most STRAY_ROWS such rows, and only within STRAY_TOL, with a
# warning naming them; a changed step size or default moves every row and still fails.
STRAY_ROWS = 2
STRAY_TOL = {"rtol": 1e-2, "atol": 1e-4}
STRAY_L0 = 2  # features


def absorb_strays(obtained, expected, tolerances):
    """`obtained` with at most STRAY_ROWS rows that differ from `expected` beyond
    `tolerances` (columns -> rtol/atol), but within STRAY_TOL (l0: STRAY_L0) and with every
    other column equal, replaced by the expected rows; unchanged when anything else differs
    (so the regression check shows the whole difference). Returns (frame, absorbed rows)."""
    import numpy as np

    if list(obtained.columns) != list(expected.columns) or len(obtained) != len(expected):
        return obtained, []
    near = [c for c in tolerances if c in obtained.columns] + (["l0"] if "l0" in obtained else [])
    exact = [c for c in obtained.columns if c not in near]
    o, e = obtained.reset_index(drop=True), expected.reset_index(drop=True).astype(float)
    if not np.array_equal(o[exact].to_numpy(), e[exact].to_numpy()):
        return obtained, []
    strict, loose = np.ones(len(o), bool), np.ones(len(o), bool)
    for c in near:
        a, b = o[c].to_numpy(float), e[c].to_numpy(float)
        if c == "l0":
            strict &= a == b
            loose &= np.abs(a - b) <= STRAY_L0
        else:
            strict &= np.isclose(a, b, **tolerances[c])
            loose &= np.isclose(a, b, **STRAY_TOL)
    strays = np.flatnonzero(~strict)
    if len(strays) > STRAY_ROWS or not loose.all():
        return obtained, []
    out = obtained.copy()
    out.iloc[strays] = expected.iloc[strays].to_numpy()
    return out, strays.tolist()


@pytest.fixture
def pin_rows(dataframe_regression, request):
    """`pin_rows(frame, basename, tolerances)`: dataframe_regression's check, exact but for
    `tolerances`, after absorbing host-kernel strays (`absorb_strays`; never under
    --force-regen, which writes what this host computed)."""
    import warnings

    import pandas as pd

    def check(frame, basename, tolerances):
        path = Path(dataframe_regression.original_datadir) / f"{basename}.csv"
        if path.exists() and not request.config.getoption("force_regen"):
            frame, strays = absorb_strays(frame, pd.read_csv(path, index_col=0), tolerances)
            if strays:
                note = f"{basename}: rows {strays} within the stray tolerance only"
                warnings.warn(note, stacklevel=2)
        dataframe_regression.check(
            frame, basename=basename, default_tolerance={"atol": 0, "rtol": 0},
            tolerances=tolerances,
        )  # fmt: skip

    return check
