"""Four copies of a command on one store at once (issue 13): all exit 0, one stored result,
no lost or duplicated row, the same rows as one process alone."""

import json
import os
import re
import shutil
import subprocess
import sys

from advbench.store import open_db

ATTACK = ["attack", "--model", "std", "--attack", "pgd-linf", "--eps", "0.1", "--n", "60",
          "--batch-size", "10", "--param", "steps=5", "--device", "cpu"]  # fmt: skip
OUTCOME = "select position, idx, clean_pred, adv_pred, round(l2, 5) from samples order by position"


def _start(args, db):
    return subprocess.Popen(
        [sys.executable, "-m", "advbench", *args, "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


def test_four_copies_of_one_attack_share_the_run(trained_db, db_copy, tmp_path):
    procs = [_start(ATTACK, db_copy) for _ in range(4)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for rc, _out, err in results:
        assert rc == 0, err
        assert "Traceback" not in err
    db = open_db(db_copy)
    assert db["runs"].count == 1
    (run,) = db["runs"].rows
    assert run["status"] == "complete"
    rows = db.execute(OUTCOME).fetchall()
    assert [r[0] for r in rows] == list(range(60))  # none lost, none twice
    cells = {re.search(r"0\.1: [\d.]+ \[[\d.]+–[\d.]+\]", out).group(0) for _, out, _ in results}
    assert len(cells) == 1  # every copy reports the same stored result
    # the same rows as one process alone on a fresh copy of the store
    alone = tmp_path / "alone"
    shutil.copytree(trained_db.parent, alone)
    p = _start(ATTACK, alone / "a.db")
    assert p.wait(timeout=300) == 0, p.communicate()[1]
    assert open_db(alone / "a.db").execute(OUTCOME).fetchall() == rows


def test_four_different_commands_at_once(db_copy):
    cmds = [
        ["attack", "--model", "std", "--attack", "fgsm", "--eps", "0.1,0.2", "--n", "40",
         "--device", "cpu"],
        ["attack", "--model", "jac", "--attack", "fgsm", "--eps", "0.1", "--n", "40",
         "--device", "cpu"],
        ["attack", "--model", "std", "--attack", "pgd-linf", "--eps", "0.05", "--n", "40",
         "--param", "steps=3", "--device", "cpu"],
        ["measure", "--model", "std", "--metric", "jacobian", "--n", "40", "--device", "cpu"],
    ]  # fmt: skip
    procs = [_start(c, db_copy) for c in cmds]
    for p in procs:
        rc = p.wait(timeout=300)
        _, err = p.communicate()
        assert rc == 0, err
    db = open_db(db_copy)
    counts = db.execute("select count(*), count(distinct run_id || ':' || position) from samples")
    total, distinct = counts.fetchone()
    assert total == distinct == 4 * 40
    assert db["measurements"].count == 1


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
                  and ".partial" not in p.parts)  # fmt: skip


def _race(db, commands):
    """Run the commands at once, each in its own process; (exit code, stdout, stderr) each."""
    procs = [_start(c, db) for c in commands]
    return [(p.wait(timeout=300), *p.communicate()) for p in procs]


def test_two_trainings_of_one_name_with_different_seeds_one_is_stored_the_other_refused(
    db_copy,
):
    """Issue 31: both used to exit 0 and print "stored"; only one survived. The name is now
    decided when the model is written: exactly one is stored, the other is refused in the
    existing one line (exit 2), and no file of the refused one is left behind."""
    train = ["train", "--dataset", "digits", "--arch", "madry-mnist", "--epochs", "1",
             "--name", "twin", "--device", "cpu"]  # fmt: skip
    results = _race(db_copy, [[*train, "--seed", "0"], [*train, "--seed", "5"]])
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 2], results
    (_, _, refused), = [r for r in results if r[0] == 2]
    assert "model 'twin' is already stored with a different configuration" in refused
    assert "Traceback" not in refused  # the progress line, then the one-line refusal
    assert refused.strip().splitlines()[-1].startswith("Error: model 'twin' is already")
    db = open_db(db_copy)
    (row,) = db["models"].rows_where("name = 'twin'")
    (winner,) = [out for rc, out, _ in results if rc == 0]
    assert row["checksum"][:12] in " ".join(winner.split())  # the stored one is the one told
    folder = db_copy.parent / "models"
    assert [f for f in _files(folder) if "twin" in f] == ["twin.json", "twin.safetensors"]
    assert not any((folder / ".incoming").iterdir())


def test_two_identical_hardenings_at_once_both_get_the_one_stored_model(db_copy):
    harden = ["harden", "--model", "std", "--defense", "jacobian", "--param", "lambda=0.3",
              "--epochs", "1", "--name", "hj", "--device", "cpu"]  # fmt: skip
    results = _race(db_copy, [harden, harden])
    assert [rc for rc, _, _ in results] == [0, 0], results
    db = open_db(db_copy)
    (row,) = db["models"].rows_where("name = 'hj'")
    assert all(row["checksum"][:12] in " ".join(out.split()) for _, out, _ in results)
    assert not any((db_copy.parent / "models" / ".incoming").iterdir())


def test_two_hardenings_of_one_name_with_different_weights_one_is_refused(db_copy):
    harden = ["harden", "--model", "std", "--defense", "jacobian", "--epochs", "1", "--name",
              "hj", "--device", "cpu"]  # fmt: skip
    results = _race(db_copy, [[*harden, "--param", "lambda=0.01"],
                              [*harden, "--param", "lambda=0.5"]])  # fmt: skip
    assert sorted(rc for rc, _, _ in results) == [0, 2], results
    db = open_db(db_copy)
    (row,) = db["models"].rows_where("name = 'hj'")
    (_, won, _), = [r for r in results if r[0] == 0]
    lam = json.loads(row["defense_config"])["lambda"]
    (sent,) = [c for c, r in zip(("0.01", "0.5"), results, strict=True) if r[0] == 0]
    assert lam == float(sent) and row["checksum"][:12] in " ".join(won.split())
