"""`advbench report --missing`: the printed commands, run as printed, fill the cells they
name; cells whose data set is not on disk get one line each."""

import shlex

import pytest
from typer.testing import CliRunner

from advbench.cli import app
from advbench.report import papers
from advbench.report import tables as tab
from advbench.report.papers import layout, tables
from advbench.store import open_db


def _missing(runner, *args):
    res = runner.invoke(app, ["report", "--missing", *args])
    assert res.exit_code == 0, res.output
    lines = [x for x in res.stdout.splitlines() if x.strip()]
    return [x for x in lines if x.startswith("advbench ")], [x for x in lines if x.startswith("# ")]


def test_missing_on_an_empty_store_builds_every_mnist_model_and_names_absent_data(tmp_path):
    db = tmp_path / "none.db"
    cmds, absent = _missing(CliRunner(), "--db", str(db))
    assert not db.exists()  # a read-only command makes no database
    trains = [c for c in cmds if c.startswith("advbench train ")]
    archs = {shlex.split(c)[shlex.split(c).index("--arch") + 1] for c in trains}
    assert archs == {"keras-mnist", "ibm-cnn", "ibm-resnet", "resnet56", "tf-mnist",
                     "madry-mnist"}  # fmt: skip
    assert all("--dataset mnist-5k" in c for c in trains)
    # every harden names a parent made by an earlier command
    made = []
    for c in cmds:
        words = shlex.split(c)
        if words[1] in ("train", "harden"):
            if words[1] == "harden":
                assert words[words.index("--model") + 1] in made, c
            made.append(words[words.index("--name") + 1])
    # one line per cell of a data set that is not here (CIFAR-10/100, ImageNet)
    non_mnist = 0
    for spec in tables().values():
        rows, cols, _ = layout(spec)
        non_mnist += sum(spec.cell(r, c).data != "mnist" for r in rows for c in cols)
    assert len(absent) == non_mnist


def test_printed_commands_fill_the_cells_they_name(tmp_path, monkeypatch):
    """pesso:1 end to end at smoke scale on sklearn's digits standing in for MNIST (the
    commands are the same; the models are 8x8 and train in seconds)."""
    monkeypatch.setitem(papers.DATA, "mnist", ("digits",))
    db = tmp_path / "p.db"
    runner = CliRunner()
    cmds, absent = _missing(runner, "--table", "pesso:1", "--db", str(db))
    assert [shlex.split(c)[1] for c in cmds] == ["train", "harden", "harden", "attack",
                                                 "attack", "attack"]  # fmt: skip
    for c in cmds:
        res = runner.invoke(app, [*shlex.split(c)[1:], "--device", "cpu"]
                            if shlex.split(c)[1] in ("train", "harden", "attack")
                            else shlex.split(c)[1:])  # fmt: skip
        assert res.exit_code == 0, (c, res.output)
    spec = tables()["pesso:1"]
    results = tab.cells(open_db(db), spec)
    mnist = [r for r in results if r.row.startswith("MNIST")]
    assert len(mnist) == 18 and all(r.status == "complete" for r in mnist), [
        (r.row, r.column, r.why) for r in mnist if r.status != "complete"
    ]
    assert all(r.n and r.ci_low is not None for r in mnist)
    # nothing is left to run for those cells
    again, _ = _missing(runner, "--table", "pesso:1", "--db", str(db))
    assert again == []


def test_full_scale_needs_full_mnist_not_the_embedded_subset(tmp_path):
    cmds, absent = _missing(CliRunner(), "--table", "fidel:III", "--scale", "full", "--db",
                            str(tmp_path / "none.db"), "--data-dir", str(tmp_path))  # fmt: skip
    assert cmds == []
    assert len(absent) == 72 and all("data set mnist is not on disk" in a for a in absent)


def test_a_planned_suite_run_never_swallows_transfer_commands(tmp_path, runner):
    """zantedeschi Table 1's transfer cells (FGSM crafted on another architecture) are not
    made by the model's suite run, which --missing also plans for Tables 2-4: both stay."""
    res = runner.invoke(app, ["report", "--missing", "--table", "zantedeschi", "--db",
                              str(tmp_path / "none.db")])  # fmt: skip
    lines = res.stdout.splitlines()
    planned = [" ".join(line.split()[:8]) for line in lines]
    assert ("advbench attack --model zantedeschi-cnn-mnist-5k-smoke --suite zantedeschi "
            "--scale smoke") in planned  # fmt: skip
    for source in ("cnn-brelu", "resnet", "resnet-brelu"):
        assert any("--model zantedeschi-cnn-mnist-5k-smoke --attack fgsm --eps 0.1 "
                   f"--source-model zantedeschi-{source}-mnist-5k-smoke" in line
                   for line in lines), source  # fmt: skip


def test_a_suite_run_is_planned_with_only_the_rows_its_empty_cells_need(tmp_path, runner):
    """pesso's λ sweep (Fig. 3: clean and PGD accuracy against λ) needs only the PGD row of
    each sweep model, not its adaptive attack; Table 1's models need every row."""
    res = runner.invoke(app, ["reproduce", "pesso", "--scale", "cpu", "--dry-run", "--db",
                              str(tmp_path / "none.db")])  # fmt: skip
    assert res.exit_code == 0, res.output
    steps = [s for s in " ".join(res.stdout.split()).split(" to run ") if "--suite" in s]
    only = {}
    for step in steps:
        words = shlex.split(step.split(" (≈")[0])
        model = words[words.index("--model") + 1]
        only[model] = [words[i + 1] for i, w in enumerate(words) if w == "--only"]
    assert only["pesso-ours-lambda0.05-mnist-5k"] == ["PGD"]
    assert only["pesso-ours-lambda0.2-mnist-5k"] == ["PGD"]
    assert only["pesso-ours-mnist-5k"] == []  # every row: Table 1's best attack
    assert only["pesso-madry-mnist-5k"] == []


def test_only_runs_the_suites_own_jobs_for_those_rows_and_refuses_unknown_labels():
    from advbench.errors import BadInput
    from advbench.suites import load_suite, suite_jobs

    suite = load_suite("pesso")
    every, n = suite_jobs(suite, "mnist-5k", "cpu")
    some, n_some = suite_jobs(suite, "mnist-5k", "cpu", only=["PGD", "HSJA"])
    assert some == [j for j in every if j.label in ("PGD", "HSJA")] and n_some == n
    with pytest.raises(BadInput, match="suite 'pesso' has no row labelled 'pgd'; valid "
                                       "choices: FGSM, PGD, Adaptive, HSJA"):  # fmt: skip
        suite_jobs(suite, "mnist-5k", "cpu", only=["pgd"])


def test_a_plan_never_takes_another_scales_model_for_its_own(tmp_path, runner):
    """Issue 29, item 4: plan models carry their scale in their name (the reference scale,
    cpu, keeps PAPER-ROLE-DATASET). With a smoke plan's CNN stored, a cpu plan trains its
    own; with the cpu one stored, a smoke plan trains its own; a model of the user's that
    fills the role is taken at any scale."""
    import json

    from advbench.store import open_db

    def planned(scale: str, stored: str | None) -> list[str]:
        db_path = tmp_path / f"{scale}-{stored}.db"
        db = open_db(db_path)
        if stored:
            db["models"].insert({"name": stored, "arch": "ibm-cnn", "dataset": "mnist-5k",
                                 "activation": "relu", "defense": None, "seed": 0,
                                 "checksum": "0" * 64, "config": json.dumps({"kind": "train"}),
                                 "created_at": "2026-12-07T00:00:00"})  # fmt: skip
        db.close()
        res = runner.invoke(app, ["reproduce", "zantedeschi", "--scale", scale, "--dry-run",
                                  "--db", str(db_path)])  # fmt: skip
        assert res.exit_code == 0, res.output
        text = " ".join(res.stdout.split())
        return [part.split()[0] for part in text.split(" --name ")[1:]]  # every model made

    assert "zantedeschi-cnn-mnist-5k" in planned("cpu", "zantedeschi-cnn-mnist-5k-smoke")
    assert "zantedeschi-cnn-mnist-5k-smoke" in planned("smoke", "zantedeschi-cnn-mnist-5k")
    assert "zantedeschi-cnn-mnist-5k" not in planned("cpu", "zantedeschi-cnn-mnist-5k")
    mine = planned("cpu", "my-cnn")  # the user's ReLU CNN fills the role: not trained again
    assert not any(name.startswith("zantedeschi-cnn-mnist-5k") for name in mine), mine
