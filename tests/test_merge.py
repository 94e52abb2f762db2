"""`advbench merge`: shards fold into one store idempotently, a run split over shards adds
up to the whole run, and a conflict or a bad shard changes nothing."""

import hashlib
import shutil

import torch

from advbench.catalogue import load_model
from advbench.cli import app
from advbench.engine import run_jobs
from advbench.env import record_environment
from advbench.jobs import make_job
from advbench.store import open_db
from advbench.train import train_model

COLS = "run_id, position, idx, label, clean_pred, adv_pred, success, l2, linf"


def _shard(db_copy, tmp_path, name, runs):
    """A copy of the trained store with `runs` [(model, eps)] of FGSM on 8 samples."""
    folder = tmp_path / name
    shutil.copytree(db_copy.parent, folder)
    db = open_db(folder / "a.db")
    env = record_environment(db, "cpu")
    for model_name, eps in runs:
        model, _, row = load_model(db, model_name)
        run_jobs(db, model, row, [make_job("fgsm", [eps])], n=8, seed=0, batch_size=4,
                 env_id=env)  # fmt: skip
    db.close()
    return folder / "a.db"


def _rows(path):
    db = open_db(path)
    return sorted(db.execute(f"select {COLS} from samples").fetchall())


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "-" not in p.suffix}  # fmt: skip


def test_shards_fold_into_one_store_once(db_copy, tmp_path, runner):
    a = _shard(db_copy, tmp_path, "a", [("std", 0.1)])
    b = _shard(db_copy, tmp_path, "b", [("std", 0.1), ("jac", 0.1)])  # std's run in both
    target = tmp_path / "t" / "main.db"
    target.parent.mkdir()
    before_a = _digest(a.parent)
    res = runner.invoke(app, ["merge", str(a), str(b), "--db", str(target)])
    assert res.exit_code == 0, res.output
    assert _digest(a.parent) == before_a  # a shard is only read
    merged = open_db(target)
    assert {r["name"] for r in merged["models"].rows} == {"std", "jac"}
    assert merged["runs"].count == 2
    assert _rows(target) == sorted(set(_rows(a)) | set(_rows(b)))
    model, _, _ = load_model(merged, "jac")  # its checkpoint came along, checksum verified
    assert isinstance(model, torch.nn.Module)
    assert "nothing new" in runner.invoke(app, ["merge", str(b), "--db", str(target)]).stdout
    assert merged["samples"].count == 16


def test_a_run_split_over_two_shards_adds_up_to_the_whole_run(db_copy, tmp_path, runner):
    whole = _shard(db_copy, tmp_path, "whole", [("std", 0.2)])
    halves = []
    for name, keep in (("first", "position < 4"), ("second", "position >= 4")):
        folder = tmp_path / name
        shutil.copytree(whole.parent, folder)
        db = open_db(folder / "a.db")
        db.execute(f"delete from samples where not ({keep})")
        db.execute("update runs set status = 'running'")
        db.conn.commit()
        halves.append(folder / "a.db")
    target = tmp_path / "t.db"
    res = runner.invoke(app, ["merge", *map(str, halves), "--db", str(target)])
    assert res.exit_code == 0, res.output
    assert "1 runs now complete" in res.stdout
    assert _rows(target) == _rows(whole)
    assert open_db(target)["runs"].get(open_db(whole)["runs"].rows.__next__()["id"])["status"] \
        == "complete"  # fmt: skip


def test_conflicts_and_bad_shards_change_nothing(db_copy, tmp_path, runner):
    a = _shard(db_copy, tmp_path, "a", [("std", 0.1)])
    other = tmp_path / "other" / "a.db"
    other.parent.mkdir()
    train_model(open_db(other), name="std", dataset="digits", arch="madry-mnist", epochs=0,
                batch_size=64, optimizer="adam", lr=1e-3, weight_decay=0.0, seed=1,
                device="cpu")  # fmt: skip
    (tmp_path / "junk.db").write_bytes(b"not a database at all")
    before = _digest(a.parent)
    for shard, words in ((other, "different checksums"), (a, "target database itself"),
                         (tmp_path / "junk.db", "cannot be opened"),
                         (tmp_path / "none.db", "is not a file")):  # fmt: skip
        res = runner.invoke(app, ["merge", str(shard), "--db", str(a)])
        assert res.exit_code == 2, res.output
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (words, res.stderr)
        assert _digest(a.parent) == before
