"""`advbench report --compare A B` and `advbench.api.compare`: two stored models paired on
the instances both were attacked on, each row's p recomputed here from the sample rows
(the binomial sum written out) and Holm's adjustment by hand."""

import io
import json
import math

import pandas as pd
import pytest

from advbench import api
from advbench.catalogue import load_model
from advbench.cli import app
from advbench.engine import run_jobs
from advbench.env import record_environment
from advbench.jobs import make_job
from advbench.store import open_db


def attack(db, name, seed=0, n=40, eps=(0.1, 0.3)):
    model, _, row = load_model(db, name)
    jobs = [make_job("fgsm", list(eps), {}, label="FGSM")]
    return run_jobs(db, model, row, jobs, n=n, seed=seed, batch_size=64,
                    env_id=record_environment(db, "cpu"))  # fmt: skip


def mcnemar_by_hand(db, run_a, run_b):
    """(f, g, p) from the sample rows: robust on a only, on b only, exact two-sided p."""
    robust = "s.clean_pred = s.label and s.adv_pred = s.label"
    rows = db.execute(
        f"select ({robust.replace('s.', 'x.')}), ({robust.replace('s.', 'y.')}) "
        "from samples x join samples y on x.idx = y.idx where x.run_id = ? and y.run_id = ?",
        [run_a, run_b],
    ).fetchall()
    f = sum(1 for a, b in rows if a and not b)
    g = sum(1 for a, b in rows if b and not a)
    m, k = f + g, min(f, g)
    p = 1.0 if m == 0 else min(1.0, 2 * sum(math.comb(m, i) for i in range(k + 1)) / 2**m)
    return f, g, p, len(rows)


@pytest.fixture
def attacked(db_copy):
    db = open_db(db_copy)
    attack(db, "std")
    attack(db, "jac")
    return db_copy


def test_compare_pairs_rows_and_matches_the_sample_rows(attacked):
    db = open_db(attacked)
    found = api.compare("jac", "std", db=db)
    assert [(r.attack, r.eps) for r in found.rows] == [("FGSM", 0.1), ("FGSM", 0.3)]
    ps = []
    for r in found.rows:
        f, g, p, n = mcnemar_by_hand(db, r.run_a, r.run_b)
        assert (r.test.f, r.test.g, r.test.n) == (f, g, n) and n == 40
        assert r.test.p == pytest.approx(p)
        assert r.test.effect == pytest.approx(100 * (f - g) / n)
        assert r.acc_a - r.acc_b == pytest.approx(r.test.effect)
        assert r.test.low <= r.test.effect <= r.test.high
        ps.append(p)
    # Holm over two rows by hand: the smaller p doubled, the larger kept (but not below it)
    lo, hi = sorted(ps)
    want = {lo: min(1.0, 2 * lo), hi: max(min(1.0, 2 * lo), hi)}
    assert [r.p_adjusted for r in found.rows] == [pytest.approx(want[p]) for p in ps]


def test_every_format_from_the_command_line(runner, attacked, tmp_path):
    db = open_db(attacked)
    found = api.compare("jac", "std", db=db)
    base = ["report", "--compare", "jac", "std", "--db", str(attacked)]
    table = runner.invoke(app, [*base])
    assert table.exit_code == 0, table.output
    assert "A = jac, B = std" in " ".join(table.stdout.split())
    md = runner.invoke(app, [*base, "--format", "markdown"])
    assert md.exit_code == 0 and "| FGSM | 0.1 |" in md.stdout
    csv = pd.read_csv(io.StringIO(runner.invoke(app, [*base, "--format", "csv"]).stdout))
    assert list(csv["diff_pp"]) == pytest.approx([r.test.effect for r in found.rows], abs=1e-3)
    assert list(csv["p"]) == pytest.approx([r.test.p for r in found.rows])
    doc = json.loads(runner.invoke(app, [*base, "--format", "json"]).stdout)
    assert (doc["a"], doc["b"], len(doc["rows"])) == ("jac", "std", 2)
    assert doc["rows"][0]["pairs"] == 40
    out = tmp_path / "cmp"
    out.mkdir()
    written = runner.invoke(app, [*base, "--format", "csv", "--output", str(out)])
    assert written.exit_code == 0 and (out / "compare_jac_std.csv").read_text() == \
        found.frame().to_csv(index=False)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["jac", "ghost"], ["'ghost'", "std"]),
        (["jac", "jac"], ["twice"]),
        (["jac", "std", "--format", "latex"], ["latex", "markdown"]),
    ],
)
def test_bad_comparisons_are_one_line(runner, attacked, snapshot, args, mentions):
    before = snapshot(attacked.parent)
    res = runner.invoke(app, ["report", "--compare", *args, "--db", str(attacked)])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and all(m in lines[0] for m in mentions), res.stderr
    assert snapshot(attacked.parent) == before


def test_models_without_a_shared_instance_are_refused(runner, db_copy):
    db = open_db(db_copy)
    a = attack(db, "std", seed=0, n=4, eps=(0.1,))
    b = attack(db, "jac", seed=3, n=4, eps=(0.1,))
    ia = {r[0] for r in db.execute("select idx from samples where run_id = ?", [a[0].id])}
    ib = {r[0] for r in db.execute("select idx from samples where run_id = ?", [b[0].id])}
    assert not ia & ib  # the two seeds drew different test images
    res = runner.invoke(app, ["report", "--compare", "std", "jac", "--db", str(db_copy)])
    assert res.exit_code == 2
    assert "share no attacked instance" in res.stderr and "--seed" in res.stderr
