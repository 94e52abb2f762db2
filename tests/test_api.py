"""The Python API: a notebook evaluates its own nn.Module with one call and gets the CLI's
numbers for the same weights; the CLI is a thin layer over it."""

import ast
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import advbench.api as ab
from advbench import data as datasets
from advbench.cli import app
from advbench.errors import BadInput

NETS = Path(__file__).parent / "fixtures" / "usernets"
CLI = Path(__file__).parents[1] / "advbench" / "cli"


def _trained_small():
    """What a notebook does: define a module and fit it a little (plain torch)."""
    import usernets

    torch.manual_seed(0)
    net = usernets.small(hidden=32)
    x, y = datasets.load("digits", "train").get(torch.arange(500))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


def test_a_notebook_module_gets_the_clis_numbers_for_the_same_weights(tmp_path, runner,
                                                                     monkeypatch):  # fmt: skip
    monkeypatch.syspath_prepend(str(NETS))
    net = _trained_small()
    db = tmp_path / "a.db"
    ev = ab.evaluate(net, dataset="digits", name="nb", attack="pgd-linf", eps=[0.05, 0.1],
                     params={"steps": 5}, n=40, db=db)  # fmt: skip
    frame = ev.frame()
    assert list(frame["eps"]) == [0.05, 0.1] and list(frame["n"]) == [40, 40]
    assert frame["accuracy"].iloc[0] > frame["accuracy"].iloc[1] > 0  # a trained model
    assert (frame["ci_low"] <= frame["accuracy"]).all()
    # in percent too, under the names the tables and the datasette views use
    assert list(frame["accuracy_pct"]) == [100 * a for a in frame["accuracy"]]
    assert list(frame["ci_high_pct"]) == [100 * h for h in frame["ci_high"]]
    from advbench.store import open_db as _open

    view = {r["run_id"]: r for r in _open(db).query("select * from run_accuracy")}
    for row in frame.itertuples():
        assert round(row.ci_low_pct, 2) == view[row.run_id]["ci_low_pct"]
        assert round(row.accuracy_pct, 2) == view[row.run_id]["robust_accuracy_pct"]
    # the same weights through the CLI: imported with their factory, attacked by name
    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    res = runner.invoke(app, ["import", "--name", "cli", "--dataset", "digits", "--factory",
                              "usernets:small", "--weights", str(tmp_path / "w.safetensors"),
                              "--db", str(db)])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["attack", "--model", "cli", "--attack", "pgd-linf", "--eps",
                              "0.05,0.1", "--param", "steps=5", "--n", "40", "--db", str(db),
                              "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    cli = ab.runs(db, model="cli").merge(ab.runs(db, model="nb"), on="eps", suffixes=("_c", "_n"))
    from advbench.store import open_db

    counts = {r["run_id"]: r["robust"] for r in open_db(db).query("select * from run_accuracy")}
    assert len(cli) == 2
    for _, r in cli.iterrows():
        assert counts[r["id_c"]] == counts[r["id_n"]], r["eps"]  # same robust samples
    models = ab.models(db).set_index("name")
    assert models.loc["nb", "clean_accuracy"] == models.loc["cli", "clean_accuracy"]
    # the module's weights are checksummed: the same file bytes as the CLI's checkpoint
    assert models.loc["nb", "checksum"] == models.loc["cli", "checksum"]
    # a module stored from memory cannot be rebuilt by name: one line, exit 2
    res = runner.invoke(app, ["attack", "--model", "nb", "--attack", "fgsm", "--eps", "0.3",
                              "--n", "20", "--db", str(db)])  # fmt: skip
    assert res.exit_code == 2 and "advbench.api.evaluate(module" in res.stderr


def test_a_paper_table_as_a_frame_matches_the_report(tmp_path, runner):
    from advbench.store import open_db

    open_db(tmp_path / "a.db").close()
    frame = ab.table("jakubovitz:2", db=tmp_path / "a.db")
    res = runner.invoke(app, ["report", "--table", "jakubovitz:2", "--format", "csv",
                              "--db", str(tmp_path / "a.db")])  # fmt: skip
    assert res.exit_code == 0, res.output
    import io

    import pandas as pd

    cli = pd.read_csv(io.StringIO(res.stdout))
    assert len(frame) == 14 and (frame["status"] == "empty").all()  # nothing stored yet
    assert sorted(frame["published"].dropna()) == sorted(cli["published"].dropna())
    verdicts = {c.verdict for c in ab.claims("jakubovitz", db=tmp_path / "a.db")}
    assert verdicts == {"not run"}


def test_api_refuses_bad_input_with_the_clis_line(tmp_path):
    from advbench.errors import BadInput

    with pytest.raises(BadInput, match="exactly one of --attack NAME or --suite NAME"):
        ab.evaluate("std", db=tmp_path / "a.db")
    with pytest.raises(BadInput, match="needs dataset="):
        ab.evaluate(torch.nn.Linear(64, 10), attack="fgsm", eps=0.1, db=tmp_path / "a.db")
    with pytest.raises(BadInput, match="no trained model stored yet"):
        ab.evaluate(attack="fgsm", eps=0.1, db=tmp_path / "a.db")
    for kwargs, words in (
        ({"model": 42, "dataset": "digits"}, "not int"),
        ({"eps": ["abc"]}, "'abc' is not a number"),
        ({"eps": [None]}, "None is not a number"),
        ({"params": 42}, "params must be a dict"),
        ({"n": "4"}, "--n '4' must be a whole number"),
        ({"n": True}, "must be a whole number"),
        ({"seed": -1}, "--seed -1 must be in [0, 2^63)"),
        ({"attack": None, "suite": "pesso", "eps": [0.1]}, "--eps applies to --attack"),
    ):
        args = {"model": "std", "attack": "fgsm", "eps": 0.1, **kwargs}
        with pytest.raises(BadInput, match=re.escape(words)):
            ab.evaluate(db=tmp_path / "a.db", **args)
    assert not (tmp_path / "a.db").exists()


HELPERS = {"registry", "defense_settings", "check_scale", "measure_text", "check_output_dir",
           "store_path"}  # fmt: skip
LISTINGS = {"archs", "datasets"}  # print a registry: they call `api.registry` alone


def _api_calls(fn: ast.FunctionDef) -> set[str]:
    return {
        n.func.attr
        for n in ast.walk(fn)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        and isinstance(n.func.value, ast.Name) and n.func.value.id == "api"
    }  # fmt: skip


def test_cli_parses_and_prints_and_calls_one_api_function_per_command():
    trees = {path.name: ast.parse(path.read_text()) for path in sorted(CLI.glob("*.py"))}
    forbidden = ("advbench.engine", "advbench.suites", "advbench.train", "advbench.fit",
                 "advbench.defenses", "advbench.measurements", "advbench.attacks",
                 "advbench.models", "advbench.demo", "advbench.executors", "advbench.merge",
                 "advbench.browse", "advbench.data", "advbench.store", "advbench.catalogue",
                 "advbench.reproduce", "advbench.steps", "advbench.pages")  # fmt: skip
    funcs: dict[str, ast.FunctionDef] = {}
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(forbidden), (name, node.module, node.lineno)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith(forbidden) for a in node.names), node.lineno
        funcs.update({f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)})
    commands = {
        name: f for name, f in funcs.items()
        if any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
               and d.func.attr == "command" for d in f.decorator_list)
    }  # fmt: skip
    # every command the app has, and nothing else, is what this test reads
    assert sorted(c.callback.__name__ for c in app.registered_commands) == sorted(commands)
    for name, fn in commands.items():
        calls = _api_calls(fn)
        if name in LISTINGS:
            assert calls == {"registry"}, (name, calls)
        elif name == "report":
            # a typed request, then one mode: each mode a helper calling one api function
            assert calls == {"ReportRequest"}, calls
            modes = {n.id for n in ast.walk(trees["report.py"])
                     if isinstance(n, ast.Name) and n.id.startswith("_report_")}  # fmt: skip
            from advbench.api import FORMATS

            assert len(modes) == len(FORMATS) == 12, modes  # one helper per report mode
            for mode in modes:
                assert len(_api_calls(funcs[mode]) - HELPERS) == 1, (mode, _api_calls(funcs[mode]))
        else:
            assert len(calls - HELPERS) == 1, (name, calls)


def test_no_cli_module_passes_500_lines():
    for path in CLI.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, path.name


def test_summary_checks_figures_and_optimality_are_api_calls(db_copy, runner):
    """The report's summary, checklist, curves and optimality from the API equal what the
    CLI prints from the same store."""
    import json

    db = str(db_copy)
    for args in (["--attack", "fgsm", "--eps", "0.1,0.2"],
                 ["--attack", "deepfool-l2", "--eps", "1", "--param", "steps=10"],
                 ["--attack", "fmn-l2", "--eps", "1", "--param", "steps=10"]):  # fmt: skip
        res = runner.invoke(app, ["attack", "--model", "std", *args, "--n", "12", "--db", db])
        assert res.exit_code == 0, res.output
    frame = ab.summary("std", db=db)
    res = runner.invoke(app, ["report", "--model", "std", "--format", "markdown", "--db", db])
    assert res.exit_code == 0, res.output
    row = next(line for line in res.stdout.splitlines() if line.startswith("| std |"))
    assert row == "| " + " | ".join(str(v) for v in frame.iloc[0]) + " |"
    assert "fgsm ε=0.2" in frame.columns
    # optimality: the two L2 minimal attacks, in the API frame and the markdown section
    opt = ab.optimality("std", db=db)
    assert sorted(opt["attack"]) == ["deepfool-l2", "fmn-l2"] and (opt["n"] == 12).all()
    assert "## Minimal attacks: optimality" in res.stdout
    assert f"{opt['optimality'].max():.3f}" in res.stdout
    verdicts, read = ab.checks("std", db=db)
    res = runner.invoke(app, ["report", "--checks", "std", "--format", "json", "--db", db])
    doc = json.loads(res.stdout)
    assert [(c["check"], c["status"]) for c in doc["checks"]] == [
        (v.check, v.status) for v in verdicts
    ]
    assert f"from {read} stored runs" in doc["summary"] and read == 4
    (curve,) = list(ab.figures("curves", models=["std"], db=db))
    assert curve.panels and any(p.series for p in curve.panels)
    from advbench.errors import BadInput

    with pytest.raises(BadInput, match="--figure curves needs --model"):
        ab.figures("curves", db=db)


def test_reproduce_listing_and_browse_are_api_calls(tmp_path):
    """A notebook holding an open store plans a paper with `reproduce`: the plan's command
    lines name that store's file (they run as commands), and a dry run writes nothing."""
    from advbench.store import open_db

    db = tmp_path / "r.db"
    store = open_db(db)
    seen = []
    done = ab.reproduce("zantedeschi", scale="smoke", dry_run=True, db=store, on_plan=seen.append)
    assert [r.paper for r in done] == ["zantedeschi"] and seen == [done[0].plan]
    assert done[0].page is None and done[0].steps_run == 0
    steps = done[0].plan.steps
    assert steps and all(s.argv[s.argv.index("--db") + 1] == str(db) for s in steps)
    assert store.execute("select count(*) from runs").fetchone()[0] == 0
    assert not (tmp_path / "zantedeschi").exists()  # no page for a dry run
    tables, figures = ab.listing(db=store)
    assert ("zantedeschi:2" in {t[0] for t in tables}) and all(t[2] == 0 for t in tables)
    assert figures and all(f[2] == 0 for f in figures)
    meta = ab.browse(db=db, write_metadata=tmp_path / "meta.json")
    assert meta == tmp_path / "meta.json" and '"run_accuracy"' in meta.read_text()
    with pytest.raises(BadInput, match="--port 0 must be in"):
        ab.browse(db=db, port=0)
