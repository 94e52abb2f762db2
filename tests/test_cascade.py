"""`attack --cascade`: a suite's untargeted rows in order, each attacking only what every
earlier row left robust in its norm (AutoAttack's worst-case evaluation). Its worst case
per ε must equal the per-sample worst case of the same attacks run one by one, at fewer
passes, and each of its runs is a run of its own."""

import json
import shutil

import pytest

from advbench import api
from advbench.catalogue import load_model
from advbench.cli import app
from advbench.engine import run_jobs
from advbench.env import record_environment
from advbench.jobs import make_job
from advbench.store import open_db

LINF, L2 = [0.05, 0.1, 0.2], [0.25, 0.5, 1.0]
# abort_early off: foolbox's early abort watches the whole batch's loss, so an instance's
# C&W search would depend on which others share its batch; every other attack here treats
# each instance on its own (PGD's random starts are drawn for the whole batch either way)
ROWS = [
    ("fgsm", LINF, {}),
    ("pgd-linf", LINF, {"steps": 5}),
    ("deepfool-linf", LINF, {"steps": 20}),
    ("pgd-l2", L2, {"steps": 5}),
    ("cw-l2", L2, {"steps": 20, "binary_search_steps": 2, "abort_early": False}),
    ("deepfool-l2", L2, {"steps": 20}),
]
NORM = {"fgsm": "linf", "pgd-linf": "linf", "deepfool-linf": "linf"}


def _jobs():
    return [make_job(a, eps, p, label=a, suite="t") for a, eps, p in ROWS]


def _run(db, cascade):
    model, _, row = load_model(db, "std")
    return run_jobs(db, model, row, _jobs(), n=24, seed=3, batch_size=8, cascade=cascade,
                    env_id=record_environment(db, "cpu"))  # fmt: skip


def _broken(db, run_ids, norm, eps):
    """Per-sample worst case over the runs: test indexes some run broke within ε."""
    marks = ",".join("?" * len(run_ids))
    return {
        idx
        for (idx,) in db.execute(
            f"select idx from samples where run_id in ({marks}) and success = 1 and {norm} <= ?",
            [*run_ids, eps * (1 + 1e-5)],
        )
    }


@pytest.fixture(scope="module")
def both(trained_db, tmp_path_factory):
    """Both plans once for the module (about a minute on 2 cores); the tests only read, and
    a second cascade must store nothing new."""
    dst = tmp_path_factory.mktemp("cascade") / "store"
    shutil.copytree(trained_db.parent, dst)
    db = open_db(dst / "a.db")
    return db, _run(db, False), _run(db, True)


def test_the_cascade_worst_case_equals_the_per_sample_worst_case_at_fewer_passes(both):
    db, plain, cascade = both
    assert not {s.id for s in plain} & {s.id for s in cascade}  # runs of their own
    runs = {s.id: db["runs"].get(s.id) for s in [*plain, *cascade]}
    for s in cascade:
        assert runs[s.id]["label"].endswith(" (cascade)")
    for norm, eps_list in (("linf", LINF), ("l2", L2)):
        mine = [s for s in plain if runs[s.id]["norm"] == norm]
        ours = [s for s in cascade if runs[s.id]["norm"] == norm]
        for eps in eps_list:
            worst = _broken(db, [s.id for s in mine], norm, eps)
            assert _broken(db, [s.id for s in ours], norm, eps) == worst
            # the last row at this ε holds the whole worst case: its accuracy is exact
            last = [s for s in ours if s.eps == eps][-1]
            assert last.n - last.robust == len(worst)
            assert last.robust <= min(s.robust for s in mine if s.eps == eps)
    carried = list(db.query(
        f"select s.*, r.norm from samples s join runs r on r.id = s.run_id "
        f"where s.run_id in ({','.join('?' * len(cascade))}) and s.carried_from is not null",
        [s.id for s in cascade],
    ))  # fmt: skip
    assert carried  # the point of it
    ids = {s.id for s in cascade}
    for r in carried:
        assert (r["fwd"], r["bwd"], r["success"]) == (0.0, 0.0, 1)
        assert r["carried_from"] in ids and r["carried_from"] != r["run_id"]
        assert r[r["norm"]] <= r["eps"] * (1 + 1e-5)  # the example is inside this ball
        assert r["min_norm"] is None  # another attack's search is not this one's

    def passes(summaries):
        marks = ",".join("?" * len(summaries))
        # a minimal attack's search is recorded on each of its ε runs: count it once
        return db.execute(
            f"select sum(p) from (select max(f) as p from (select r.group_id as g, s.position, "
            f"sum(s.fwd + s.bwd) as f from samples s join runs r on r.id = s.run_id "
            f"where r.id in ({marks}) group by r.id, s.position) group by g, position)",
            [s.id for s in summaries],
        ).fetchone()[0]

    assert passes(cascade) < passes(plain)


def test_a_cascade_row_names_the_runs_before_it(both):
    db, _, cascade = both
    config = {s.id: json.loads(db["runs"].get(s.id)["config"]) for s in cascade}
    first = cascade[0]  # FGSM at the smallest ε: nothing before it
    assert config[first.id]["cascade_from"] == []
    linf = [s.id for s in cascade if db["runs"].get(s.id)["norm"] == "linf"]
    l2 = [s for s in cascade if db["runs"].get(s.id)["norm"] == "l2"]
    pgd_l2 = l2[0]  # the first L2 row sees no L∞ run
    assert config[pgd_l2.id]["cascade_from"] == []
    cw = [s for s in l2 if s.attack == "cw-l2"]
    assert config[cw[0].id]["cascade_from"] == [s.id for s in l2 if s.attack == "pgd-l2"]
    df = [s.id for s in cascade if s.attack == "deepfool-linf"]
    assert config[df[0]]["cascade_from"] == [i for i in linf if i not in df]


def test_a_second_cascade_reuses_every_run(both):
    db, _, cascade = both
    before = db["samples"].count
    again = _run(db, True)
    assert [s.id for s in again] == [s.id for s in cascade]
    assert all(s.reused for s in again) and db["samples"].count == before


def test_the_checklist_and_curves_leave_cascade_runs_out(both):
    """A cascade row holds what earlier rows broke: read as its own attack's result, the
    white-box check would credit a transfer break to a white-box attack."""
    import pandas as pd

    from advbench.checks import gather
    from advbench.report.figures import _minimal_curve

    db, plain, cascade = both
    runs = gather(db, "std")
    assert {r.id for r in runs} == {s.id for s in plain}
    frame = pd.DataFrame(db.query("select id, coalesce(label, attack) as attack, norm, eps, "
                                  "coalesce(threat, 'white-box') as threat from runs"))  # fmt: skip
    assert _minimal_curve(db, frame, "cw-l2", "l2")  # the plain run's curve
    assert _minimal_curve(db, frame, "cw-l2 (cascade)", "l2") == {}


def test_optimality_leaves_cascade_runs_out(both):
    from advbench.report.optimality import optimality_table

    db, plain, _ = both
    table = optimality_table(db)
    assert not table.empty
    assert not any(a.endswith("(cascade)") for a in table["attack"])
    assert set(table["attack"]) == {"cw-l2", "deepfool-l2"}  # L∞: DeepFool alone


def test_the_suite_orders_its_cascade(db_copy, tmp_path, runner):
    suite = {
        "name": "order",
        "n": {"smoke": 8, "cpu": 8, "full": 8},
        "cascade": ["PGD", "FGSM"],
        "attacks": [
            {"attack": "fgsm", "label": "FGSM", "eps": {"mnist": [0.1]}},
            {"attack": "noise", "label": "N [s]", "eps": {"mnist": [0.1]}},
            {"attack": "pgd-linf", "label": "PGD", "eps": {"mnist": [0.1]},
             "params": {"steps": 3}},
        ],
    }  # fmt: skip
    path = tmp_path / "order.json"
    path.write_text(json.dumps(suite))
    out = api.evaluate("std", suite=str(path), scale="smoke", cascade=True, db=db_copy)
    (result,) = out.results
    labels = [s.label for s in result.summaries]
    assert labels == ["PGD (cascade)", "FGSM (cascade)", "N [s] (cascade)"]
    db = open_db(db_copy)
    ids = [s.id for s in result.summaries]
    assert json.loads(db["runs"].get(ids[1])["config"])["cascade_from"] == [ids[0]]
    assert json.loads(db["runs"].get(ids[2])["config"])["cascade_from"] == ids[:2]
    # the terminal shows labels as written: "[s]" is text, not rich markup (a short label:
    # an 80-column table would wrap a long one)
    for args in (["attack", "--model", "std", "--suite", str(path), "--scale", "smoke",
                  "--cascade"], ["report"]):  # fmt: skip
        res = runner.invoke(app, [*args, "--db", str(db_copy)], env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
        assert "N [s] (cascade)" in res.output and "PGD (cascade)" in res.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--attack", "fgsm", "--eps", "0.1", "--cascade"], "--cascade runs a suite's rows"),
        (["--suite", "carlini-eval", "--cascade", "--executor", "ray"], "use --executor local"),
        (["--suite", "@bad", "--cascade"], "cascade names 'Nope' but no row has that label"),
    ],
)
def test_bad_cascade_requests_are_refused(runner, db_copy, tmp_path, args, needle):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "name": "bad",
                "n": {"smoke": 4},
                "cascade": ["Nope"],
                "attacks": [{"attack": "fgsm", "eps": {"mnist": [0.1]}}],
            }
        )
    )
    args = [str(bad) if a == "@bad" else a for a in args]
    res = runner.invoke(app, ["attack", "--model", "std", *args, "--db", str(db_copy)])
    assert res.exit_code == 2, res.output
    assert needle in res.output
    assert "Traceback" not in res.output
