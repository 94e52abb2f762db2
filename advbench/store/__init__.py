"""The run store: one SQLite database (sqlite-utils), WAL mode, named migrations."""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import errno
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from urllib.request import pathname2url

import sqlite_utils

from advbench.errors import BadInput, Fault
from advbench.store.migrations import MIGRATIONS

DEFAULT_DB = Path("results") / "advbench.db"

# A run's n, robust count and failed starts from its sample rows `s`: an instance the
# attack could not start on (init_failed) is neither robust nor broken, so it is left out.
# Robust = classified right before and after the attack (AutoAttack's robust accuracy): a
# clean error is never robust, even where the attack's output happens to land on the label.
ROBUST = "s.clean_pred = s.label and s.adv_pred = s.label and not coalesce(s.init_failed, 0)"
# The attack changed the prediction: ART's empirical-robustness set, and the adversarial
# examples of zantedeschi's ρ and training-set distance and of jakubovitz's x_pert.
CHANGED = "s.adv_pred != s.clean_pred and not coalesce(s.init_failed, 0)"
SAMPLE_COUNTS = f"""count(s.run_id) - coalesce(sum(s.init_failed), 0) as n,
       coalesce(sum({ROBUST}), 0) as robust,
       coalesce(sum(s.init_failed), 0) as init_failed"""
# Every run with its counts: what the report's summary and its tables read.
RUNS = f"""
select r.id, r.model, r.attack, r.label, r.norm, r.suite, r.eps, r.targeted, r.config,
       coalesce(r.threat, 'white-box') as threat, r.source_model, r.source_rule, r.gradient,
       r.seed, r.scale, r.status, r.started_at, r.finished_at, r.n as planned, r.n_samples,
       r.only_correct, {SAMPLE_COUNTS}
from runs r left join samples s on s.run_id = r.id
group by r.id
order by r.rowid
"""


def is_robust(sample: dict) -> bool:
    """ROBUST for one sample row read into Python (the checklist's per-instance checks)."""
    return (sample["clean_pred"] == sample["label"] and sample["adv_pred"] == sample["label"]
            and not sample.get("init_failed"))  # fmt: skip


def recency(status, finished_at, started_at) -> tuple:
    """Which of several runs of one cell is shown: sorted by this, the last wins. The
    newest complete run; a partial one (running, or interrupted) only where none is
    complete, the newest started. Runs read in insertion order (`RUNS`, the checklist's
    query) and sorted stably break a tie of the same second the same way everywhere."""
    done = status == "complete"
    when = finished_at if done else started_at
    return done, when if isinstance(when, str) else ""


def default_db_path() -> Path:
    return Path(os.environ.get("ADVBENCH_DB") or DEFAULT_DB)


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def _full(folder: Path, margin: int = 1 << 20) -> bool:
    """Whether the disk under `folder` has less than `margin` bytes left."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < margin


def _read_only(path: Path) -> sqlite3.Connection:
    # percent-encoded: a path holding ? or # is that file, not a URI with a query
    return sqlite3.connect(f"file:{pathname2url(str(path.resolve()))}?mode=ro", uri=True)


def copy_store(source: Path, target: Path) -> None:
    """A consistent copy of the store `source` at `target` (SQLite's online backup: the
    write-ahead log of a store still open elsewhere comes with it). `source` is not written."""
    src, dst = _read_only(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _pending(path: Path) -> bool:
    """Whether the store at `path` lacks a migration this advbench knows."""
    con = _read_only(path)
    try:
        done = {r[0] for r in con.execute("select name from _migrations")}
    except sqlite3.OperationalError:  # no _migrations table: an empty file, made new
        return True
    finally:
        con.close()
    return any(name not in done for name, _ in MIGRATIONS)


def _reading_copy(path: Path) -> Path:
    """A migrated copy of a store older than this advbench, for a command that only reads:
    reading never rewrites a store (committed evidence included); a writing command migrates
    it in place. The copy lives in a temporary folder removed when the process ends."""
    folder = Path(tempfile.mkdtemp(prefix="advbench-read-"))
    atexit.register(shutil.rmtree, folder, True)
    copy = folder / path.name
    copy_store(path, copy)
    return copy


def _check_existing(path: Path) -> None:
    """Refuse a file that is not SQLite, or an SQLite file that advbench did not make, or a
    store advbench cannot write beside (WAL mode writes -wal and -shm files even to read)."""
    for where in (path, path.parent):
        if not _writable(where):
            raise Fault(
                f"--db {path}: {'the file' if where == path else f'its folder {where}'} is "
                "read-only, and advbench writes to its store and beside it even to read it "
                "(SQLite WAL mode); copy the store to a writable folder"
            )
    try:
        con = _read_only(path)
        try:
            tables = {
                r[0] for r in con.execute("select name from sqlite_master where type='table'")
            }
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        if _full(path.parent):  # SQLite cannot make its -shm/-wal files: not a bad store
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (SQLite: {exc})",
                          str(path)) from None  # fmt: skip
        raise BadInput(f"--db {path} cannot be opened as an SQLite database ({exc})") from None
    if tables and "_migrations" not in tables:
        raise BadInput(
            f"--db {path} is an SQLite database but not an advbench one "
            f"(tables: {', '.join(sorted(tables)[:5])}); choose another path"
        )


def open_db(path: Path | None = None, *, create: bool = True,
            readonly: bool = False) -> sqlite_utils.Database:  # fmt: skip
    """Open (and migrate) the database. Validates before writing anything.

    With create=False a missing file is an error: read-only commands never make one. With
    readonly=True (the report commands) a store older than this advbench is read from a
    migrated copy (`_reading_copy`) and the store itself is left as it was.
    """
    path = Path(path) if path is not None else default_db_path()
    if path.is_dir():
        raise BadInput(
            f"--db {path} is a directory; give a file path such as {path / 'advbench.db'}"
        )
    if path.exists() and path.stat().st_size == 0 and not create:
        raise BadInput(f"--db {path} is an empty file, not a database yet; run `advbench "
                       "train` first")  # fmt: skip
    read = path
    if path.exists():
        _check_existing(path)
        if readonly and path.stat().st_size and _pending(path):
            path = _reading_copy(path)
    elif not create:
        raise BadInput(f"--db {path}: no database there yet; run `advbench train` first")
    elif not path.parent.exists():
        if path.parent.resolve() == DEFAULT_DB.parent.resolve():
            path.parent.mkdir(parents=True)
        else:
            raise BadInput(f"--db {path}: directory {path.parent} does not exist")
    try:
        db = sqlite_utils.Database(path)
        db.execute("pragma busy_timeout = 60000")  # concurrent commands wait, up to a minute
        db.enable_wal()
        migrate(db)
    except sqlite3.OperationalError as exc:
        if _full(path.parent):
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (SQLite: {exc})",
                          str(path)) from None  # fmt: skip
        raise BadInput(f"--db {read} cannot be opened ({exc})") from None
    if path != read:
        db.advbench_file = str(read.resolve())  # checkpoints and files: beside the store read
    return db


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database):
    """One SQLite transaction (a savepoint when nested): everything inside lands together or
    not at all, under an exception or a kill -9 alike. `with db.conn:` is not one:
    sqlite-utils 4 runs the connection in autocommit and commits each `insert_all` and
    `upsert` on its own, so a batch killed between two inserts kept the first."""
    if db.conn.in_transaction:  # nested: a savepoint
        with db.atomic():
            yield db
        return
    # BEGIN IMMEDIATE takes the write lock up front, so a concurrent writer waits for it
    # (busy_timeout) instead of failing with "database is locked" when a deferred
    # transaction that has read tries to start writing.
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    else:
        db.conn.execute("COMMIT")


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations in order; return the names applied."""
    if "_migrations" not in db.table_names():
        db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    done = {r["name"] for r in db["_migrations"].rows}
    known = {name for name, _ in MIGRATIONS}
    if done - known:
        raise BadInput(
            "database has migrations this advbench does not know "
            f"({', '.join(sorted(done - known))}); upgrade advbench"
        )
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with transaction(db):
            fn(db)
            db["_migrations"].insert({"name": name, "applied_at": now()})
        applied.append(name)
    return applied


def db_file(db: sqlite_utils.Database) -> str:
    """The store's file ("" in memory): the store read, where a reading copy of an older
    one is open (`open_db(readonly=True)`), not the temporary copy."""
    return getattr(db, "advbench_file", None) or db.execute("pragma database_list").fetchone()[2]


def db_dir(db: sqlite_utils.Database) -> Path:
    """Folder the database lives in: checkpoints go beside it in models/."""
    file = db_file(db)
    return Path(file).parent if file else Path(".")
