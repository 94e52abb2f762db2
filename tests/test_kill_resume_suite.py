"""A whole suite killed with SIGKILL at several points and resumed stores exactly what an
uninterrupted run stores, row for row (issue 13): `carlini-eval` at smoke scale, which
mixes foolbox, ART (HopSkipJump, APGD: numpy's generator) and our own attacks."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

ARGS = ["attack", "--model", "std", "--suite", "carlini-eval", "--scale", "smoke",
        "--batch-size", "8", "--device", "cpu"]  # fmt: skip
ROWS = """select r.id, s.position, s.idx, s.target, s.clean_pred, s.adv_pred, s.success, s.l0,
          s.l2, s.linf, s.min_norm, s.fwd, s.bwd, s.trace, s.start_idx, s.init_failed
          from samples s join runs r on r.id = s.run_id order by r.id, s.position"""


def _run(db, kill_after: int | None = None, sig=signal.SIGKILL, stderr=None) -> int:
    """Run the suite; with `kill_after`, send `sig` once the store holds that many rows
    (the process's stderr text appended to `stderr`, a list, when given)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "advbench", *ARGS, "--db", str(db)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    if kill_after is None:
        assert p.wait(timeout=600) == 0, p.stderr.read().decode()[-2000:]
        return -1
    while p.poll() is None:
        time.sleep(0.05)
        try:
            with sqlite3.connect(db, timeout=1) as con:
                if con.execute("select count(*) from samples").fetchone()[0] >= kill_after:
                    p.send_signal(sig)
                    break
        except sqlite3.OperationalError:
            continue
    code = p.wait(timeout=60)
    if stderr is not None:
        stderr.append(p.stderr.read().decode())
    return code


def test_a_suite_killed_three_times_resumes_to_the_uninterrupted_rows(trained_db, tmp_path):
    for name in ("straight", "killed"):
        shutil.copytree(trained_db.parent, tmp_path / name)
    _run(tmp_path / "straight" / "a.db")
    with sqlite3.connect(tmp_path / "straight" / "a.db") as con:
        want = con.execute(ROWS).fetchall()
    killed = tmp_path / "killed" / "a.db"
    codes = [
        _run(killed, kill_after=k) for k in (len(want) // 5, len(want) // 2, 3 * len(want) // 4)
    ]
    assert -signal.SIGKILL in codes  # at least one kill landed mid-run
    _run(killed)
    with sqlite3.connect(killed) as con:
        got = con.execute(ROWS).fetchall()
        assert {r[0] for r in con.execute("select status from runs")} == {"complete"}
    assert len(got) == len(want)
    assert got == want


def test_a_suite_sent_sigterm_says_so_in_one_line_and_resumes_to_the_same_rows(
    trained_db, tmp_path
):
    """SIGTERM (a scheduler's stop) ends the suite as Ctrl-C does: the open batch rolls
    back, one line says what is kept, exit 143; the same command finishes the rows."""
    for name in ("straight", "termed"):
        shutil.copytree(trained_db.parent, tmp_path / name)
    _run(tmp_path / "straight" / "a.db")
    with sqlite3.connect(tmp_path / "straight" / "a.db") as con:
        want = con.execute(ROWS).fetchall()
    termed, said = tmp_path / "termed" / "a.db", []
    code = _run(termed, kill_after=len(want) // 3, sig=signal.SIGTERM, stderr=said)
    assert code == 143, said
    assert "Traceback" not in said[0]
    assert said[0].strip().splitlines()[-1].startswith("Terminated (SIGTERM): finished batches")
    with sqlite3.connect(termed) as con:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    _run(termed)
    with sqlite3.connect(termed) as con:
        assert con.execute(ROWS).fetchall() == want
