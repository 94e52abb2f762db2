"""A paper's evidence as a compact store: what its tables and claims were computed from.

`evidence(db, path, models)` writes a SQLite file with the same schema holding only these
models' rows, their runs, per-sample outcomes and measurements, and the environments they
ran in; no weights, no adversarial example tensors (the `examples` rows stay, without their
files: they say which instances were kept), no crafted-examples cache and no per-step loss
traces. `advbench report --claims PAPER --db FILE` (and `--table`, `--compare`) read it as
they read the store it came from, so anyone can recheck a verdict without recomputing.
"""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from advbench.errors import BadInput
from advbench.files import temporary_beside


def evidence(db: sqlite_utils.Database, path: Path, models: list[str]) -> Path:
    """Write the evidence store of `models` to `path` (replaced if it exists); its size
    is the file's."""
    path = Path(path)
    if not models:
        raise BadInput("no stored model fills this paper's tables: nothing to export")
    tmp = temporary_beside(path)  # its own: another export of the same page may run at once
    try:
        return _evidence(db, path, tmp, models)
    finally:
        tmp.unlink(missing_ok=True)  # a failed export (a full disk) leaves nothing beside


def _evidence(db: sqlite_utils.Database, path: Path, tmp: Path, models: list[str]) -> Path:
    db.execute("vacuum into ?", [str(tmp)])  # a consistent copy, even while another reads
    out = sqlite_utils.Database(tmp)
    try:
        keep = ", ".join("?" * len(models))
        out.execute(f"delete from runs where model not in ({keep})", models)
        out.execute("delete from samples where run_id not in (select id from runs)")
        out.execute("update samples set loss_trace = null")
        out.execute("delete from examples where run_id not in (select id from runs)")
        out.execute("delete from crafted")
        out.execute(f"delete from measurements where model not in ({keep})", models)
        # a kept model's parents stay (lineage, a transfer row's source by name)
        names = set(models)
        while True:
            marks = ", ".join("?" * len(names))
            parents = {r[0] for r in out.execute(
                f"select parent from models where name in ({marks}) and parent is not null",
                list(names))} - names  # fmt: skip
            sources = {r[0] for r in out.execute(
                "select distinct source_model from runs where source_model is not null")}
            more = (parents | sources) - names
            if not more:
                break
            names |= more
        marks = ", ".join("?" * len(names))
        out.execute(f"delete from models where name not in ({marks})", list(names))
        out.execute("delete from environments where id not in (select env_id from runs "
                    "union select env_id from models union select env_id from measurements)")
        out.conn.commit()
        out.execute("vacuum")
        # the journal mode `open_db` sets: reading the file later leaves its bytes as they are
        out.execute("pragma journal_mode = wal")
    finally:
        out.close()
    tmp.replace(path)
    return path
