"""The run store: migrations recorded, WAL mode, refusal of foreign files."""

import sqlite3

import pytest

from advbench.errors import BadInput
from advbench.store import migrate, open_db
from advbench.store.migrations import MIGRATIONS


def test_new_database_records_migrations_and_uses_wal(tmp_path):
    db = open_db(tmp_path / "a.db")
    assert [r["name"] for r in db["_migrations"].rows] == [m[0] for m in MIGRATIONS]
    assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert {"environments", "models", "runs", "samples"} <= set(db.table_names())
    assert migrate(db) == []  # idempotent


def test_refuses_files_that_are_not_advbench_databases(tmp_path):
    text = tmp_path / "notes.db"
    text.write_text("hello")
    with pytest.raises(BadInput, match="cannot be opened as an SQLite"):
        open_db(text)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("create table t (x)")
    con.commit()
    con.close()
    with pytest.raises(BadInput, match="not an advbench"):
        open_db(other)
    with pytest.raises(BadInput, match="no database"):
        open_db(tmp_path / "missing.db", create=False)
    with pytest.raises(BadInput, match="does not exist"):
        open_db(tmp_path / "nowhere" / "a.db")


def test_refuses_a_newer_schema(tmp_path):
    db = open_db(tmp_path / "a.db")
    db["_migrations"].insert({"name": "9999_future", "applied_at": "x"})
    with pytest.raises(BadInput, match="upgrade advbench"):
        open_db(tmp_path / "a.db")


def test_migration_0003_rekeys_samples_and_backfills(tmp_path):
    """A store written before targeted runs keeps its rows, keyed by instance position."""
    import sqlite_utils

    db = sqlite_utils.Database(tmp_path / "old.db")
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for name, fn in MIGRATIONS[:2]:
        fn(db)
        db["_migrations"].insert({"name": name, "applied_at": "x"})
    db["runs"].insert({"id": "r1", "eps": 0.3, "n": 2})
    db["samples"].insert_all(
        [{"run_id": "r1", "idx": 40, "position": 0}, {"run_id": "r1", "idx": 7, "position": 1}]
    )
    assert migrate(db)[0] == "0003_instances_and_threat_models"
    assert db["samples"].pks == ["run_id", "position"]
    assert [(r["idx"], r["eps"]) for r in db["samples"].rows] == [(40, 0.3), (7, 0.3)]
    run = db["runs"].get("r1")
    assert (run["threat"], run["n_samples"], run["only_correct"]) == ("white-box", 2, 0)


def test_migration_0004_keeps_every_row_and_labels_gradient_and_threat(tmp_path):
    """tests/fixtures/store_0003.db was written by advbench at commit d9bd403 (schema 0003): a
    digits model, a feature-squeezing wrapper attacked with FGSM, and a jacobian child
    attacked with FGSM and carlini-eval (smoke, n 8) under `--source-model std`."""
    import shutil
    from pathlib import Path

    path = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "store_0003.db", path)
    before = sqlite3.connect(path)
    counts = [
        before.execute(f"select count(*) from {t}").fetchone()[0] for t in ("runs", "samples")
    ]
    before.close()
    assert counts == [36, 308]
    db = open_db(path)
    assert [r["name"] for r in db["_migrations"].rows][-1] == MIGRATIONS[-1][0]
    assert [db[t].count for t in ("runs", "samples")] == counts
    fs = list(db["runs"].rows_where("model = 'fs'"))
    assert len(fs) == 2 and {r["gradient"] for r in fs} == {"masked"}
    jac = list(db["runs"].rows_where("model = 'jac'"))
    assert {(r["threat"], r["source_model"], r["gradient"]) for r in jac} == {
        ("transfer", "std", None)
    }
    assert {"source_rule", "gradient"} <= set(db["runs"].columns_dict)
    assert {"start_idx", "init_failed"} <= set(db["samples"].columns_dict)


def test_refusals_name_the_value_and_the_way_out(tmp_path, monkeypatch):
    """The exact one-line messages: a directory, a foreign database (its first five tables,
    sorted), a newer schema (its unknown migrations)."""
    with pytest.raises(BadInput) as why:
        open_db(tmp_path)
    assert str(why.value) == (
        f"--db {tmp_path} is a directory; give a file path such as {tmp_path / 'advbench.db'}"
    )
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    for t in "fedcba":
        con.execute(f"create table {t} (x)")
    con.commit()
    con.close()
    with pytest.raises(BadInput) as why:
        open_db(other)
    assert str(why.value).endswith("(tables: a, b, c, d, e); choose another path")
    db = open_db(tmp_path / "a.db")
    db["_migrations"].insert_all(
        [{"name": "9999_b", "applied_at": "x"}, {"name": "9998_a", "applied_at": "x"}]
    )
    with pytest.raises(BadInput) as why:
        open_db(tmp_path / "a.db")
    assert str(why.value) == (
        "database has migrations this advbench does not know (9998_a, 9999_b); upgrade advbench"
    )
    monkeypatch.setenv("ADVBENCH_DB", str(tmp_path / "env.db"))
    assert open_db()  # the environment names the default database
    assert (tmp_path / "env.db").exists()


def test_migrations_are_keyed_by_name_and_stamped_in_utc(tmp_path):
    from advbench.store import now

    db = open_db(tmp_path / "a.db")
    assert db["_migrations"].pks == ["name"]
    assert all(r["applied_at"].endswith("+00:00") for r in db["_migrations"].rows)
    assert now().endswith("+00:00")


def test_the_robust_rule_is_the_same_in_sql_and_python(tmp_path):
    """ROBUST (the SQL every count uses) and is_robust (the checklist's, per row) agree on
    every combination of clean prediction, adversarial prediction and failed start."""
    import itertools

    from advbench.store import ROBUST, is_robust

    db = open_db(tmp_path / "r.db")
    cases = list(itertools.product((3, 7), (3, 5), (None, 0, 1)))
    for i, (clean, adv, failed) in enumerate(cases):
        row = {"run_id": "r", "position": i, "label": 3, "clean_pred": clean, "adv_pred": adv,
               "init_failed": failed}  # fmt: skip
        sql = db.execute(f"select {ROBUST} from (select ? as label, ? as clean_pred, "
                         "? as adv_pred, ? as init_failed) s",
                         [3, clean, adv, failed]).fetchone()[0]  # fmt: skip
        assert bool(sql) == is_robust(row), row
    assert sum(is_robust({"label": 3, "clean_pred": c, "adv_pred": a, "init_failed": f})
               for c, a, f in cases) == 2  # right before and after, no failed start  # fmt: skip
