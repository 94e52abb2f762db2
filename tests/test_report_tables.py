"""Paper tables from known data: a store of hand-made models, runs and sample rows whose
cells (values, n, interval bounds, which run wins) are worked out by hand here.

Models (MNIST, embedded subset): fidel's standard keras-mnist and its jacobian-hardened
child; a jacobian model hardened with jakubovitz's recipe (must not stand in for fidel's
JacobReg); pesso's madry-mnist and its pgd-at child.
  fidel CW-L2 ε1 on standard: an older complete run (10/10 robust), the newest complete
      run (3 robust of 10) and a newer partial run (0 of 4): the newest complete wins → 30.0.
  fidel CW-L2 (targeted) ε1 on standard: 9 instances, 2 robust, 1 failed start → 2 of 8.
  pesso on pgd-at at ε 0.3: FGSM robust {0..7}, PGD robust {0..5, 8}, HSJA robust {0..9}
      of 10 → best attack: robust in all = {0..5} → 6 of 10.
  zantedeschi-style ρ: ‖δ‖ = 1, 2 on ‖x‖ = 4, 5 where the prediction changed, one
      unchanged (0.9/3: not counted) → (0.25 + 0.4) / 2 = 0.325 over 2.
"""

import json
import math
from pathlib import Path

import pytest
from scipy.stats import binomtest
from typer.testing import CliRunner

from advbench import suites
from advbench.cli import app
from advbench.report import table_views as views
from advbench.report import tables as tab
from advbench.report.papers import layout, tables
from advbench.store import open_db

CELLS = ("measured", "published", "n", "ci_low", "ci_high")


def wilson(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low * 100, ci.high * 100


def _model(name, arch, defense=None, config=None, params=None, created="0", acc=0.9):
    return {"name": name, "checksum": name[0] * 64, "arch": arch, "dataset": "mnist-5k",
            "defense": defense, "config": json.dumps(config or {"kind": "train"}),
            "defense_config": json.dumps(params) if params else None, "clean_accuracy": acc,
            "clean_n": 1000, "seed": 0, "created_at": created}  # fmt: skip


def _run(db, rid, model, label, eps, triples, *, suite, status="complete", finished="2", **kw):
    db["runs"].insert({"id": rid, "model": model, "attack": kw.pop("attack", "x"),
                       "label": label, "eps": eps,
                       "suite": suite, "n": len(triples), "n_samples": len(triples), "seed": 0,
                       "scale": "smoke", "status": status, "finished_at": finished,
                       "started_at": finished, "threat": "white-box",
                       "config": json.dumps({"params": {"confidence": 0.0}}), **kw})  # fmt: skip
    rows = []
    for i, t in enumerate(triples):
        y, clean, adv = t[:3]
        row = {
            "run_id": rid,
            "idx": i,
            "position": i,
            "label": y,
            "clean_pred": clean,
            "adv_pred": adv,
            "success": int(adv != y),
            "l2": 0.0,
            "x_l2": 1.0,
            "eps": eps,
        }
        if len(t) > 3:
            row.update(t[3])
        rows.append(row)
    db["samples"].insert_all(rows, pk=("run_id", "position"))


@pytest.fixture
def known(tmp_path):
    db = open_db(tmp_path / "t.db")
    db["models"].insert_all([
        _model("std", "keras-mnist", created="1"),
        _model("jac", "keras-mnist", "jacobian", {"kind": "harden"}, {"lambda": 0.01}, "2", 0.95),
        _model("kjac", "keras-mnist", "jacobian", {"kind": "harden", "recipe": "jakubovitz"},
               {"lambda": 0.1}, "3"),
        _model("comb", "keras-mnist", "nsloss+jacobian", {"kind": "harden", "epochs": 20},
               {"nsloss": {"lambda": 2.0, "eps": 1.0, "samples": 5}, "jacobian": {"lambda": 0.01}},
               "4"),
        _model("madry", "madry-mnist", created="5"),
        _model("pgdat", "madry-mnist", "pgd-at", {"kind": "harden"}, {"eps": 0.3}, "6"),
    ])  # fmt: skip
    ok, broken = (3, 3, 3), (3, 3, 4)
    _run(db, "old", "std", "CW-L2", 1.0, [ok] * 10, suite="fidel", finished="1")
    _run(db, "new", "std", "CW-L2", 1.0, [ok] * 3 + [broken] * 7, suite="fidel", finished="2")
    _run(db, "part", "std", "CW-L2", 1.0, [broken] * 4, suite="fidel", status="running",
         finished=None, started_at="3")  # fmt: skip
    _run(db, "tgt", "std", "CW-L2 (targeted)", 1.0,
         [ok] * 2 + [(3, 3, 5)] * 6 + [(3, 3, 3, {"init_failed": 1})], suite="fidel",
         targeted="all-others")  # fmt: skip
    robust = {"FGSM": range(8), "PGD": [0, 1, 2, 3, 4, 5, 8], "HSJA": range(10)}
    for label, keep in robust.items():
        _run(db, f"p-{label}", "pgdat", label, 0.3,
             [ok if i in keep else broken for i in range(10)], suite="pesso")  # fmt: skip
    return db


def _cell(db, table, row, col):
    results = tab.cells(db, tables()[table])
    return next(r for r in results if (r.row, r.column) == (row, col))


def test_newest_complete_run_fills_the_cell_with_wilson_bounds(known):
    r = _cell(known, "fidel:III", "Untargeted CW-L2", "Standard ε1")
    assert (r.measured, r.n, r.published, r.status) == (30.0, 10, 3.0, "complete")
    assert (r.ci_low, r.ci_high) == pytest.approx(wilson(3, 10), rel=1e-4)
    assert r.runs == ["new"] and set(r.others) == {"old", "part"}
    assert views.cell_text(r).startswith(f"30.0 [{r.ci_low:.1f}, {r.ci_high:.1f}] n=10")


def test_targeted_cell_leaves_failed_starts_out_of_n(known):
    r = _cell(known, "fidel:III", "Targeted CW-L2", "Standard ε1")
    assert (r.measured, r.n) == (25.0, 8)
    assert "targeted all-others" in r.sample_set


def test_a_run_with_other_attack_parameters_does_not_fill_the_cell(known):
    # a CW-L2-HC row needs C&W's confidence 5: a run labelled so with confidence 0 is not it
    _run(known, "hc0", "std", "CW-L2-HC", 1.0, [(3, 3, 3)] * 5, suite="fidel")
    r = _cell(known, "fidel:III", "Untargeted CW-L2-HC", "Standard ε1")
    assert r.status == "empty"
    _run(known, "hc5", "std", "CW-L2-HC", 1.0, [(3, 3, 3)] * 5, suite="fidel",
         config=json.dumps({"params": {"confidence": 5.0}}))  # fmt: skip
    r = _cell(known, "fidel:III", "Untargeted CW-L2-HC", "Standard ε1")
    assert (r.runs, r.measured) == (["hc5"], 100.0)


def test_a_model_hardened_with_another_papers_recipe_is_not_fidels(known):
    r = _cell(known, "fidel:III", "Untargeted CW-L2", "JacobReg ε1")
    assert r.model == "jac" and r.status == "empty" and "no matching run" in r.why
    r = _cell(known, "fidel:III", "Untargeted CW-L2", "NsLoss ε1")
    assert r.model is None and "no mnist model of role nsloss" in r.why


def test_settings_and_clean_accuracy(known):
    assert _cell(known, "fidel:I", "MNIST Combined", "λ").measured == "2.0,0.01"  # as printed
    assert _cell(known, "fidel:I", "MNIST Combined", "epochs").measured == "20"
    assert _cell(known, "fidel:I", "MNIST JacobReg", "NsEps").measured == "N/A"
    r = _cell(known, "fidel:I", "MNIST JacobReg", "ACC")
    assert (r.measured, r.n) == (pytest.approx(95.0), 1000)
    assert (r.ci_low, r.ci_high) == pytest.approx(wilson(950, 1000), rel=1e-4)


def test_best_attack_is_the_per_sample_worst_case(known):
    r = _cell(known, "pesso:1", "MNIST ε = 0.3 Madry et al.", "Best attack")
    assert (r.measured, r.n) == (60.0, 10)
    assert sorted(r.runs) == ["p-FGSM", "p-HSJA", "p-PGD"]
    pgd = _cell(known, "pesso:1", "MNIST ε = 0.3 Madry et al.", "PGD")
    assert (pgd.measured, pgd.published) == (70.0, 91.2)


def test_untargeted_cells_are_found_beside_targeted_runs(known):
    # pandas >= 3 reads a text column with NULLs back as NaN; an untargeted match (None)
    # must still find its run when targeted runs share the store (they do: "tgt").
    known["models"].insert(_model("cnn", "ibm-cnn", created="7"))
    known.execute("update models set activation = 'relu' where name = 'cnn'")
    _run(known, "z-fgsm", "cnn", None, 0.1, [(3, 3, 3)] * 3 + [(3, 3, 4)], suite=None,
         attack="fgsm")  # fmt: skip
    r = _cell(known, "zantedeschi:1", "CNN + RELU", "CNN + RELU")
    assert (r.runs, r.measured, r.n) == (["z-fgsm"], 75.0, 4)


def test_best_attack_over_fewer_attacks_than_the_paper_is_partial(known):
    known.execute("delete from samples where run_id = 'p-HSJA'")
    known.execute("delete from runs where id = 'p-HSJA'")
    r = _cell(known, "pesso:1", "MNIST ε = 0.3 Madry et al.", "Best attack")
    assert (r.status, r.why, r.measured) == ("partial", "no Adaptive, HSJA run", 60.0)
    assert "partial (no Adaptive, HSJA run)" in views.cell_text(r)


def test_zantedeschi_rho_counts_changed_predictions_in_the_attacks_norm(known):
    """The authors' ρ: ‖δ‖/‖x‖ in the attack's norm (L∞ for minimal FGSM), over the
    instances whose prediction changed; the L2 columns must not matter."""
    _run(known, "fmin", "std", "FGSM (minimal)", 1.0,
         [(3, 3, 4, {"linf": 0.2, "x_linf": 1.0, "l2": 1.0, "x_l2": 4.0}),
          (3, 3, 5, {"linf": 0.3, "x_linf": 0.5, "l2": 2.0, "x_l2": 5.0}),
          (3, 3, 3, {"linf": 0.9, "x_linf": 1.0, "l2": 0.9, "x_l2": 3.0})],
         suite="zantedeschi")  # fmt: skip
    known.execute("update runs set norm = 'linf' where id = 'fmin'")
    value, n = tab.rho_changed(known, "fmin")
    assert (value, n) == (pytest.approx((0.2 + 0.6) / 2), 2)
    known.execute("update runs set norm = 'l2' where id = 'fmin'")  # an L2 attack's ρ
    assert tab.rho_changed(known, "fmin") == (pytest.approx((0.25 + 0.4) / 2), 2)


def test_caption_says_scale_data_seed_checksums_and_mixed_sample_sets(known):
    spec = tables()["fidel:III"]
    lines = views.caption(spec, tab.cells(known, spec), known)
    text = "\n".join(lines)
    assert "Scale: smoke (reduced" in text and "mnist-5k" in text and "Seeds: 0" in text
    assert "std (ssssssssssss)" in text
    assert "mixes sample sets" in text  # the ε1 column holds untargeted and targeted runs


@pytest.mark.parametrize("fmt", tab.FORMATS)
def test_every_table_renders_in_every_format(known, fmt, tmp_path):
    runner = CliRunner()
    db = known.execute("pragma database_list").fetchone()[2]
    res = runner.invoke(app, ["report", "--table", "all", "--format", fmt, "--db", db],
                        env={"COLUMNS": "200"})  # fmt: skip
    assert res.exit_code == 0, res.output
    if fmt == "json":  # one document: a list of tables, each with its tidy cells
        docs = json.loads(res.stdout)
        assert [d["table"] for d in docs] == list(tables())
        assert all(set(CELLS) <= set(d["cells"][0]) for d in docs)
    elif fmt == "csv":  # one tidy CSV with one header
        import io

        import pandas as pd

        df = pd.read_csv(io.StringIO(res.stdout))
        assert list(dict.fromkeys(df["table"])) == list(tables())
        cells = sum(len(layout(s)[0]) * len(layout(s)[1]) for s in tables().values())
        assert len(df) == cells
    else:
        for tid in tables():
            assert tid in res.output


def test_tidy_csv_has_one_row_per_cell(known):
    spec = tables()["fidel:III"]
    df = views.to_frame(tab.cells(known, spec))
    rows, cols, _ = layout(spec)
    assert len(df) == len(rows) * len(cols)
    assert {"table", "row", "column", "measured", "published", "n", "ci_low", "ci_high"} <= set(
        df.columns
    )
    cell = df[(df["row"] == "Untargeted CW-L2") & (df["column"] == "Standard ε1")].iloc[0]
    assert (cell["measured"], cell["published"], cell["n"]) == (30.0, 3.0, 10)


def test_output_directory_gets_one_file_per_table_and_refuses_a_database(known, tmp_path):
    runner = CliRunner()
    db = known.execute("pragma database_list").fetchone()[2]
    out = tmp_path / "tables"
    res = runner.invoke(app, ["report", "--table", "pesso", "--format", "csv", "--output",
                              str(out), "--db", db])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "pesso_1.csv", "pesso_4.csv", "pesso_controls.csv"]  # fmt: skip
    before = (tmp_path / "t.db").read_bytes()
    res = runner.invoke(app, ["report", "--table", "pesso", "--output", db, "--db", db])
    assert res.exit_code == 2 and "is a database, not a directory" in res.output
    assert (tmp_path / "t.db").read_bytes() == before


@pytest.mark.parametrize("table", ["summary", "fidel:III"])
def test_output_never_writes_over_a_file(known, tmp_path, table):
    runner = CliRunner()
    db = known.execute("pragma database_list").fetchone()[2]
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    for target, what in ((db, "a database"), (other, "a file")):
        before = Path(target).read_bytes()
        res = runner.invoke(app, ["report", "--table", table, "--format", "csv", "--output",
                                  str(target), "--db", db])  # fmt: skip
        assert res.exit_code == 2 and f"is {what}, not a directory" in res.output
        assert len(res.stderr.strip().splitlines()) == 1
        assert Path(target).read_bytes() == before


def test_unknown_table_names_the_choices(known):
    db = known.execute("pragma database_list").fetchone()[2]
    res = CliRunner().invoke(app, ["report", "--table", "fidel:II", "--db", db])
    assert res.exit_code == 2
    assert "fidel:II" in res.output and "fidel:III" in res.output


def test_list_counts_filled_cells(known):
    db = known.execute("pragma database_list").fetchone()[2]
    counts = {tid: (f, n) for tid, _, f, n in tab.listing(known)}
    # fidel:III: CW-L2 and its targeted row on the standard model's ε1 column
    assert counts["fidel:III"] == (2, 72)
    # Standard: Natural (clean accuracy); Madry et al.: Natural, FGSM, PGD, HSJA, Best attack
    assert counts["pesso:1"][0] == 6
    res = CliRunner().invoke(app, ["report", "--list", "--db", db], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "2/72" in res.output


def _zantedeschi_cnn(known):
    """Store zantedeschi's CNN; return its FGSM (minimal) row's parameters as runs record
    them."""
    from advbench.attacks import ATTACKS

    known["models"].insert(_model("cnn", "ibm-cnn", created="7"))
    known.execute("update models set activation = 'relu' where name = 'cnn'")
    row = next(r for r in suites.load_suite("zantedeschi")["attacks"]
               if r["label"] == "FGSM (minimal)")  # fmt: skip
    entry = ATTACKS.get("fgsm-min")
    return entry.identity(entry.resolve(row["params"]))


def test_a_run_of_an_older_suite_recipe_fills_no_cell(known):
    """A suite row whose parameters changed (zantedeschi's minimal FGSM step 0.1 -> 0.05)
    leaves its runs stale: the cell is empty and says why, so reproduce runs it again."""
    now = _zantedeschi_cnn(known)
    for rid, params, finished in (("zm-old", {**now, "eps_step": 0.1}, "3"), ("zm-new", now, "2")):
        _run(known, rid, "cnn", "FGSM (minimal)", 1.0, [(3, 3, 4, {"linf": 0.2, "x_linf": 1.0})],
             suite="zantedeschi", attack="fgsm-min", norm="linf", scale="cpu",
             finished=finished,
             config=json.dumps({"params": params, "dataset": "mnist-5k"}))  # fmt: skip
    r = _cell(known, "zantedeschi:2", "CNN", "Robustness")
    assert r.runs == ["zm-new"] and r.others == []  # the newer but stale run is not used
    known.execute("delete from samples where run_id = 'zm-new'")
    known.execute("delete from runs where id = 'zm-new'")
    r = _cell(known, "zantedeschi:2", "CNN", "Robustness")
    assert r.runs == [] and "earlier version of the suite row" in r.why


def test_a_suite_rows_recipe_is_the_one_for_the_runs_data_set():
    """madnet has a MNIST and a CIFAR row under one label with different parameters: a
    CIFAR run must be compared with the CIFAR row, not the first of that label."""
    mnist = suites.recipe("madnet", "CW (c = 0.1)", "cpu", "cw-l2-box", "mnist-5k")
    cifar = suites.recipe("madnet", "CW (c = 0.1)", "cpu", "cw-l2-box", "cifar10")
    assert mnist and cifar
    assert mnist[0]["linf"] == 0.3 and cifar[0]["linf"] == 0.03


def test_a_run_of_an_attack_the_suite_row_no_longer_uses_fills_no_cell(known):
    """madnet's C&W rows moved from `cw-l2 linf_clip` (the result clipped) to `cw-l2-box`
    (the search bounded): a stored cw-l2 run under the row's label is stale, however its
    parameters read, and the cell is filled by the new attack's run only."""
    from advbench.attacks import ATTACKS

    known["models"].insert(_model("ce", "resnet56", created="7"))
    jobs, _ = suites.suite_jobs(suites.load_suite("madnet"), "mnist-5k", "cpu",
                                only=["CW (c = 1)"])  # fmt: skip
    now = ATTACKS.get("cw-l2-box").identity(jobs[0].params)
    old = {k: v for k, v in now.items() if k != "linf"} | {"linf_clip": 0.3}
    for rid, attack, params, finished in (("clip", "cw-l2", old, "3"),
                                          ("box", "cw-l2-box", now, "2")):  # fmt: skip
        _run(known, rid, "ce", "CW (c = 1)", math.inf, [(3, 3, 4)] * 4, suite="madnet",
             attack=attack, norm="l2", scale="cpu", finished=finished, kind="minimal",
             group_id=rid, wall_s={"clip": 75.0, "box": 140.0}[rid],
             config=json.dumps({"params": params, "dataset": "mnist-5k"}))  # fmt: skip
    r = _cell(known, "madnet:1", "C&W (c = 1)", "CE")
    assert r.runs == ["box"] and r.others == []  # the newer clip run is stale
    # nor is it in the model's checklist or the page's wall time
    from advbench import checks
    from advbench.reproduce import wall_time

    assert [run.id for run in checks.gather(known, "ce")] == ["box"]
    assert wall_time(known, ["ce"]) == 140.0  # its training time is not stored here
    known.execute("delete from samples where run_id = 'box'")
    known.execute("delete from runs where id = 'box'")
    r = _cell(known, "madnet:1", "C&W (c = 1)", "CE")
    assert r.runs == [] and "earlier version of the suite row" in r.why


def test_a_paper_that_attacks_every_eps_afresh_takes_no_chained_run(known):
    """zantedeschi's suite turns shortcuts off (FGSM is not monotone in ε): a run that took
    what a smaller ε broke fills none of its cells, and the commands `report --missing`
    plans for its single-attack cells (fig3's FGSM curves) run every ε afresh."""
    assert not suites.allows_shortcuts("zantedeschi") and suites.allows_shortcuts("carlini-eval")
    now = _zantedeschi_cnn(known)
    for rid, extra in (("plain", {}), ("chained", {"shortcut_from": "plain"})):
        _run(known, rid, "cnn", "FGSM (minimal)", 1.0, [(3, 3, 4, {"linf": 0.2, "x_linf": 1.0})],
             suite="zantedeschi", attack="fgsm-min", norm="linf", scale="cpu",
             finished={"plain": "2", "chained": "3"}[rid],
             config=json.dumps({"params": now, "dataset": "mnist-5k", **extra}))  # fmt: skip
    r = _cell(known, "zantedeschi:2", "CNN", "Robustness")
    assert r.runs == ["plain"] and r.others == []  # the newer chained run is not used
    # nor in the model's checklist (there the newest run of a row and ε wins) or the time
    from advbench import checks
    from advbench.reproduce import wall_time

    known.execute("update runs set wall_s = 7 where id = 'plain'")
    known.execute("update runs set wall_s = 5 where id = 'chained'")
    assert [run.id for run in checks.gather(known, "cnn")] == ["plain"]
    assert wall_time(known, ["cnn"]) == 7.0
    # a chained single-attack run (made before the rule, no suite) is no part of the time
    # reproducing the paper takes, which attacks every ε afresh
    known.execute("update runs set suite = null, label = null where id = 'chained'")
    assert wall_time(known, ["cnn"]) == 12.0
    assert wall_time(known, ["cnn"], afresh=True) == 7.0
    assert suites.is_current(
        "carlini-eval", "FGSM", "cpu", "fgsm", json.dumps({"shortcut_from": "x"})
    )  # a suite with shortcuts
    db = known.execute("pragma database_list").fetchone()[2]
    res = CliRunner().invoke(app, ["report", "--missing", "--figure", "zantedeschi:fig3",
                                   "--db", db])  # fmt: skip
    fgsm = [line for line in res.stdout.splitlines() if "--attack fgsm" in line]
    assert fgsm and all("--no-shortcuts" in line for line in fgsm), res.stdout
