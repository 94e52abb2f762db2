"""Faults caused from outside (issue 31): a full disk under a store, in a separate process.
Each is judged on the exit code, one line without a traceback, the store's integrity, the
files left behind and a resume once space is back.

The full disk is a tmpfs of a chosen size, mounted by the test: that needs root (CI's
container and this project's machines run as root); elsewhere the tests skip and say why.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from advbench.store import open_db

TRAIN = ["train", "--dataset", "digits", "--arch", "madry-mnist", "--epochs", "1", "--name",
         "full", "--device", "cpu", "--seed", "0"]  # fmt: skip


def _run(args, db, timeout=300):
    return subprocess.run([sys.executable, "-m", "advbench", *args, "--db", str(db)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip


class Disk:
    def __init__(self, path: Path):
        self.path = path

    def resize(self, size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def used(self) -> int:
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a tmpfs whose size the test sets (`resize(bytes)`), unmounted after."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk is caused with a tmpfs mount, which needs root")
    where = tmp_path / "disk"
    where.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64M", "tmpfs", str(where)],
                         capture_output=True, text=True)  # fmt: skip
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")

    try:
        yield Disk(where)
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_full_disk_during_training_is_one_line_and_the_same_command_resumes(small_disk):
    disk = small_disk
    db = disk.path / "a.db"
    open_db(db).close()  # an empty store, its migrations applied
    disk.resize(disk.used() + 256 * 1024)  # room for the store, not the weights
    res = _run(TRAIN, db)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "no space left on the device" in last
    assert "same command resumes" in last and str(disk.path) in last
    store = open_db(db)
    assert store.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert store["models"].count == 0
    left = [p.name for p in disk.path.rglob("*") if p.is_file()]
    assert not [n for n in left if n.endswith(".tmp") or n.startswith("full")], left
    store.close()
    disk.resize(64 * 1024 * 1024)  # space is back: the same command stores the model
    res = _run(TRAIN, db)
    assert res.returncode == 0, res.stderr
    assert open_db(db)["models"].count == 1


ATTACK = ["attack", "--model", "full", "--attack", "pgd-linf", "--eps", "0.05,0.1,0.2",
          "--n", "300", "--batch-size", "20", "--param", "steps=3", "--device", "cpu"]  # fmt: skip
ROWS = "select position, idx, clean_pred, adv_pred, round(l2, 5), eps from samples order by 1, 6"


def test_a_full_disk_during_an_attack_is_a_fault_not_a_damaged_store(small_disk, tmp_path):
    """SQLite's "database or disk is full" used to read "the database cannot be read ...
    restore it from a copy": the store is intact, and with space back the same command
    resumes to the rows of an uninterrupted run."""
    disk = small_disk
    db = disk.path / "a.db"
    assert _run(TRAIN, db).returncode == 0
    alone = tmp_path / "alone"  # the same store, attacked without a fault
    shutil.copytree(disk.path, alone)
    disk.resize(disk.used() + 48 * 1024)  # a few batches' rows, not 300 samples' worth
    res = _run(ATTACK, db)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert "no space left for the database" in last and "restore" not in last, last
    store = open_db(db)
    assert store.execute("pragma integrity_check").fetchone()[0] == "ok"
    kept = store["samples"].count
    store.close()
    disk.resize(64 * 1024 * 1024)
    res = _run(ATTACK, db)
    assert res.returncode == 0, res.stderr
    assert _run(ATTACK, alone / "a.db").returncode == 0
    resumed = open_db(db).execute(ROWS).fetchall()
    assert resumed == open_db(alone / "a.db").execute(ROWS).fetchall()
    assert len(resumed) > kept


def test_two_writers_of_one_page_leave_one_whole_page_and_no_temporary(tmp_path):
    """Pages, figures, exports and crafted files are written whole or not at all
    (`files.write_atomic`): while two processes rewrite one file with different contents,
    a reader only ever sees one of the two, whole; a failed write leaves no temporary and
    names the file it was for."""
    import errno

    from advbench.files import write_atomic

    page = tmp_path / "README.md"
    a, b = "a" * 2_000_000, "b" * 3_000_000
    code = ("import sys; from advbench.files import write_atomic\n"
            "for _ in range(30): write_atomic(sys.argv[1], sys.argv[2] * int(sys.argv[3]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(page), ch, str(k)])
             for ch, k in (("a", 2_000_000), ("b", 3_000_000))]  # fmt: skip
    seen = set()
    while any(p.poll() is None for p in procs):
        if page.exists():
            text = page.read_text()
            assert text in (a, b), len(text)
            seen.add(text[0])
    assert all(p.wait() == 0 for p in procs)
    assert page.read_text() in (a, b) and seen
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]
    with pytest.raises(OSError) as exc:
        write_atomic(tmp_path / "no" / "such" / "page.md", "x")
    assert exc.value.errno == errno.ENOENT and exc.value.filename.endswith("page.md")


def _one_line_fault(res, needle="no space left"):
    assert res.returncode == 1, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and needle in last, last
    return last


def _no_temporaries(folder: Path) -> None:
    left = [p.name for p in folder.rglob("*") if p.is_file() and p.name.endswith(".tmp")]
    assert not left, left


def test_a_full_disk_during_hardening_a_report_and_a_merge(small_disk, tmp_path):
    """Issue 31's other writers on a full disk: each exits 1 with one line, leaves the store
    intact and no temporary, and does its work once space is back."""
    disk = small_disk
    db = disk.path / "a.db"
    assert _run(TRAIN, db).returncode == 0
    harden = ["harden", "--model", "full", "--defense", "jacobian", "--param", "lambda=0.1",
              "--epochs", "1", "--name", "hj", "--device", "cpu"]  # fmt: skip
    disk.resize(disk.used() + 64 * 1024)
    _one_line_fault(_run(harden, db))
    _no_temporaries(disk.path)
    assert not [p for p in (disk.path / "models").iterdir() if p.name.startswith("hj")]
    disk.resize(64 * 1024 * 1024)
    assert _run(harden, db).returncode == 0
    attack = ["attack", "--model", "full", "--attack", "fgsm", "--eps", "0.1", "--n", "40",
              "--device", "cpu"]  # fmt: skip
    assert _run(attack, db).returncode == 0
    # a report written to a folder on the full disk
    out = disk.path / "page"
    disk.resize(disk.used() + 16 * 1024)
    _one_line_fault(_run(["report", "--format", "html", "--output", str(out)], db))
    _no_temporaries(disk.path)
    disk.resize(64 * 1024 * 1024)
    assert _run(["report", "--format", "html", "--output", str(out)], db).returncode == 0
    assert (out / "report.html").stat().st_size > 16 * 1024
    # a merge into a store on the full disk: a shard made elsewhere
    shard = tmp_path / "shard"
    shutil.copytree(disk.path, shard, ignore=shutil.ignore_patterns("page"))
    more = ["attack", "--model", "full", "--attack", "pgd-linf", "--eps", "0.05,0.1", "--n",
            "200", "--param", "steps=3", "--device", "cpu"]  # fmt: skip
    assert _run(more, shard / "a.db").returncode == 0
    disk.resize(disk.used() + 32 * 1024)
    _one_line_fault(_run(["merge", str(shard / "a.db")], db))
    store = open_db(db)
    assert store.execute("pragma integrity_check").fetchone()[0] == "ok"
    store.close()
    disk.resize(64 * 1024 * 1024)
    assert _run(["merge", str(shard / "a.db")], db).returncode == 0
    rows = "select run_id, position, adv_pred from samples order by 1, 2"
    assert open_db(db).execute(rows).fetchall() == open_db(shard / "a.db").execute(rows).fetchall()
