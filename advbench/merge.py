"""`advbench merge SHARD.db...`: fold stores made elsewhere (workers with no shared disk, a
laptop and a GPU box) into one, idempotently.

Rows are keyed by the identities every store shares: a run by the hash of its
configuration, a sample by (run, position), a model by its name and checksum, a
measurement by its hash. A row already present is left as it is, so merging the same shard
twice adds nothing, and two shards holding different batches of one run add up to the whole
run (its status becomes complete when every instance is stored). A model stored under the
same name with a different checksum is a conflict: nothing is merged and the one line names
it. Checkpoints and kept examples are copied beside the target with their SHA-256 checked.
Each shard is read from a migrated copy: the shard itself is never written.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from advbench.errors import BadInput

# parents first: a run's model and environment exist before the run
TABLES = ["environments", "models", "runs", "samples", "measurements", "examples"]


@dataclass
class Merged:
    shard: Path
    added: dict[str, int] = field(default_factory=dict)
    completed: int = 0  # runs a shard's rows made complete


def _columns(db, schema: str, table: str) -> list[str]:
    return [r[1] for r in db.execute(f"pragma {schema}.table_info({table})").fetchall()]


def _migrated_copy(shard: Path, folder: Path) -> Path:
    from advbench.store import copy_store, open_db

    if not shard.is_file():
        raise BadInput(f"shard {shard} is not a file")
    copy = folder / "shard.db"
    try:
        copy_store(shard, copy)  # a shard still open elsewhere: its log comes too
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"shard {shard} cannot be opened as an SQLite database ({exc})") from None
    try:
        open_db(copy, create=False).close()
    except BadInput as exc:
        raise BadInput(f"shard {shard}: {str(exc).replace(str(copy), str(shard))}") from None
    return copy


def _files(shard_dir: Path, target_dir: Path, rows, checked) -> list[tuple[Path, Path]]:
    """(source, destination) of the files new rows point to, each checked against its
    recorded SHA-256 before anything is written."""
    from advbench.config import sha256_file

    pairs = []
    for rel, sha, suffixes in rows:
        for suffix in suffixes:
            src = shard_dir / f"{rel}{suffix}"
            if not src.exists():
                raise BadInput(f"shard file {src} is missing")
            pairs.append((src, target_dir / f"{rel}{suffix}"))
        if checked is not None:
            main = shard_dir / f"{rel}{checked(rel)}"
            if sha256_file(main) != sha:
                raise BadInput(f"shard file {main} does not match its recorded SHA-256")
    return pairs


def merge(db, shards: list[Path]) -> list[Merged]:
    """Merge each shard into the open store `db` (in order); returns what each added."""
    from advbench.store import db_dir, db_file, transaction

    target = Path(db_file(db)).resolve()
    out = []
    for shard in shards:
        if Path(shard).resolve() == target:
            raise BadInput(f"shard {shard} is the target database itself")
    for shard in shards:
        with tempfile.TemporaryDirectory() as tmp:
            copy = _migrated_copy(Path(shard), Path(tmp))
            out.append(_merge_one(db, Path(shard), copy, db_dir(db), transaction))
    return out


def _merge_one(db, shard: Path, copy: Path, target_dir: Path, transaction) -> Merged:
    result = Merged(shard)
    shard_dir = shard.resolve().parent
    db.execute("attach database ? as s", [str(copy)])
    try:
        conflicts = db.execute(
            "select s.models.name from s.models join main.models on main.models.name = "
            "s.models.name where main.models.checksum != s.models.checksum"
        ).fetchall()
        if conflicts:
            names = ", ".join(r[0] for r in conflicts[:5])
            raise BadInput(f"shard {shard}: model {names} is stored in both with different "
                           "checksums; rename it in one store before merging")  # fmt: skip
        new_models = db.execute(
            "select path, checksum, json_extract(config, '$.kind') from s.models where name "
            "not in (select name from main.models)"
        ).fetchall()
        files = []
        for path, sha, kind in new_models:
            if kind == "wrap":  # an inference-time defense: its JSON is its checksum
                files += _files(shard_dir, target_dir, [(path, sha, [".json"])],
                                lambda _: ".json")  # fmt: skip
            else:
                files += _files(shard_dir, target_dir,
                                [(path, sha, [".safetensors", ".json"])],
                                lambda _: ".safetensors")  # fmt: skip
        new_examples = db.execute(
            "select path, sha256 from s.examples where (run_id, batch) not in "
            "(select run_id, batch from main.examples)"
        ).fetchall()
        files += _files(shard_dir, target_dir, [(p, sha, [""]) for p, sha in new_examples],
                        lambda _: "")  # fmt: skip
        for src, dst in files:  # beside the target first: a row never points at nothing
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
        with transaction(db):
            for table in TABLES:
                cols = [c for c in _columns(db, "main", table) if c in _columns(db, "s", table)]
                names = ", ".join(f'"{c}"' for c in cols)
                before = db.execute(f"select count(*) from main.{table}").fetchone()[0]
                db.execute(f"insert or ignore into main.{table} ({names}) "
                           f"select {names} from s.{table}")  # fmt: skip
                result.added[table] = db.execute(
                    f"select count(*) from main.{table}").fetchone()[0] - before  # fmt: skip
            # a run stored in parts (its batches in several shards) is complete when whole
            result.completed = db.execute(
                "update main.runs set status = 'complete', finished_at = coalesce(finished_at, "
                "(select finished_at from s.runs where s.runs.id = main.runs.id)) "
                "where status != 'complete' and n = (select count(*) from main.samples "
                "where run_id = main.runs.id)"
            ).rowcount
    except sqlite3.DatabaseError as exc:
        if "disk is full" in str(exc):  # the store merged into is out of space: a fault,
            raise  # not a bad shard (one line, exit 1, from the command's error handling)
        raise BadInput(f"shard {shard} cannot be merged ({exc})") from None
    finally:
        db.execute("detach database s")
    return result


__all__ = ["Merged", "merge"]
