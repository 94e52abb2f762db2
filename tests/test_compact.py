"""`advbench report` with no flags: one compact table that fits 80 columns, cells with
their Wilson bounds worked out here from the sample rows, the per-sample worst case per
norm and ε, and the paired comparison line per model pair."""

import io

from rich.console import Console

from advbench.catalogue import load_model
from advbench.cli import app
from advbench.engine import run_jobs
from advbench.env import record_environment
from advbench.jobs import make_job
from advbench.metrics import wilson_interval
from advbench.report import worst_case
from advbench.report.compact import compact, print_compact
from advbench.store import open_db


def test_one_table_in_80_columns_with_worst_case_and_comparison(db_copy, runner):
    db = open_db(db_copy)
    env = record_environment(db, "cpu")
    for name in ("std", "jac"):
        model, _, row = load_model(db, name)
        jobs = [make_job("fgsm", [0.1, 0.3]), make_job("pgd-linf", [0.1], {"steps": 5})]
        run_jobs(db, model, row, jobs, n=24, seed=0, batch_size=24, env_id=env)
    view = compact(db)
    assert [letter for letter, _ in view.models] == ["A", "B"]
    names = [name.split(" ")[0] for _, name in view.models]
    rows = {(attack, eps): cells for _, attack, eps, cells in view.rows}
    # each cell by hand from its run: robust / n and the Wilson bounds, rounded
    for r in db.query("select id, model, attack, eps from runs"):
        robust = db.execute("select sum(clean_pred = label and adv_pred = label), count(*) "
                            "from samples where run_id = ?", [r["id"]]).fetchone()  # fmt: skip
        lo, hi = wilson_interval(robust[0], robust[1])
        want = f"{100 * robust[0] / robust[1]:.1f} [{100 * lo:.0f}–{100 * hi:.0f}]"
        label = {"fgsm": "FGSM", "pgd-linf": "PGD-Linf"}.get(r["attack"], r["attack"])
        got = next(cells for (attack, eps), cells in rows.items()
                   if attack.lower() == label.lower() and eps == f"{r['eps']:g}")  # fmt: skip
        assert got[names.index(r["model"])] == want
    # the worst case at ε 0.1 over FGSM and PGD: report.worst_case of those two runs
    for i, name in enumerate(names):
        ids = [r["id"] for r in db.query("select id from runs where model = ? and eps = 0.1",
                                         [name])]  # fmt: skip
        robust, n = worst_case(db, ids)
        lo, hi = wilson_interval(robust, n)
        want = f"{100 * robust / n:.1f} [{100 * lo:.0f}–{100 * hi:.0f}]"
        assert rows[("worst case", "0.1")][i] == want
    assert ("worst case", "0.3") not in rows  # one attack there: no worst case to take
    assert "n = 24 test samples per cell" in view.caption
    assert len(view.comparisons) == 1 and view.comparisons[0].startswith("A − B: ")
    assert "--compare std jac" in view.comparisons[0] or "--compare jac std" in view.comparisons[0]
    # rendered at 80 columns: nothing wider, every cell on one line
    buffer = io.StringIO()
    print_compact(Console(file=buffer, width=80), view)
    text = buffer.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    for cells in rows.values():
        for c in cells:
            assert c in text
    # the command prints it; --verbose keeps the wide per-attack tables
    res = runner.invoke(app, ["report", "--db", str(db_copy)])
    assert res.exit_code == 0 and "worst case" in res.stdout and "A = " in res.stdout
    wide = runner.invoke(app, ["report", "--verbose", "--db", str(db_copy)])
    assert wide.exit_code == 0 and "A = " not in wide.stdout and "clean" in wide.stdout
    # an attack run on fewer instances (as HopSkipJump) is left out of the worst case,
    # which keeps its n, and the caption names it
    model, _, row = load_model(db, "std")
    run_jobs(db, model, row, [make_job("bim", [0.1], {"steps": 3})], n=5, seed=0,
             batch_size=24, env_id=env)  # fmt: skip
    again = compact(db)
    worst = {(a, e): c for _, a, e, c in again.rows}[("worst case", "0.1")]
    assert worst == rows[("worst case", "0.1")] and "left out: bim" in again.caption

