"""Four copies of a command on one store at once (issue 13): all exit 0, one stored result,
no lost or duplicated row, the same rows as one process alone."""

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
