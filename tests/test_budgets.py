"""`report --budgets`: each trained defense's optimiser steps against the plan's full-scale
reading (issue 33, item 3), from a committed evidence store, read without writing it."""

import hashlib
import json
import math
import shutil
import sqlite3
from pathlib import Path

import pytest

from advbench.cli import app
from advbench.report.budgets import Budget, _full_reading, _options, budgets, markdown
from advbench.report.papers import tables
from advbench.store import open_db

RESULTS = Path(__file__).resolve().parent.parent / "results"


def test_steps_by_hand():
    b = Budget("p", "r", "d", "mnist-5k", 3, 64, 4_000, 60.0, "mnist", 10, 500, 60_000)
    assert (b.steps, b.full_steps) == (3 * 63, 10 * 120)  # ⌈4000/64⌉ = 63, 60000/500 = 120
    assert b.share == pytest.approx(189 / 1200)
    unknown = Budget("p", "r", "d", "x", 3, 64, None, None, "y", 10, 64, None)
    assert unknown.steps is None and unknown.share is None
    assert "size unknown" in markdown([unknown])


def test_options_keep_the_budget_and_leave_the_weights_out():
    argv = ["--defense", "jacobian", "--param", "lambda=0", "--from-scratch", "--batch-size",
            "64", "--recipe", "jakubovitz", "--batch-size", "32"]  # fmt: skip
    assert _options(argv) == {"--defense": "jacobian", "--from-scratch": True,
                              "--batch-size": "32", "--recipe": "jakubovitz"}  # fmt: skip


def test_jakubovitz_full_reading_is_the_papers_batch_of_500_for_10_epochs():
    """The paper gives Adam and mini-batches of 500 (003:189); advbench reads 10 epochs: the
    plan's `why` says its full reading takes 1,200 steps on 60,000 images."""
    roles = next(s.roles for s in tables().values() if s.paper == "jakubovitz")
    full = _full_reading("jakubovitz", roles, "mnist", "jac")
    assert (full["epochs"], full["batch_size"], full["optimizer"]) == (10, 500, "adam")
    b = Budget("jakubovitz", "jac", "jacobian", "mnist-5k", 3, 64, 4_000, None, "mnist",
               full["epochs"], full["batch_size"], 60_000)  # fmt: skip
    assert b.full_steps == 1_200
    plan = json.loads((RESULTS.parent / "benchmarks/plans/jakubovitz.json").read_text())
    assert "1,200 steps" in plan["models"]["jac*"]["why"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_budgets_of_a_committed_store_match_its_models_and_leave_it_as_it_was(runner, tmp_path):
    """Every row's stored steps are its model's own epochs × ⌈4,000 / batch⌉, read here
    from the models table; one row per seed-0 trained role (no seed replicate, no wrapper);
    the command reads the file without changing a byte."""
    src = RESULTS / "pesso" / "evidence.db"
    db_path = tmp_path / "evidence.db"
    shutil.copy(src, db_path)
    before = _digest(db_path)
    found = budgets(open_db(db_path, create=False), "pesso")
    con = sqlite3.connect(db_path)
    stored = {name: json.loads(cfg) for name, cfg in
              con.execute("select name, config from models where seed = 0")}  # fmt: skip
    con.close()
    assert found and all(b.paper == "pesso" for b in found)
    assert len({b.role for b in found}) == len(found)
    assert not any("-s1" in b.role or "-s2" in b.role for b in found)
    for b in found:
        (cfg,) = [c for n, c in stored.items() if n == f"pesso-{b.role}-mnist-5k"]
        assert (b.epochs, b.batch) == (cfg["epochs"], cfg["batch_size"])
        assert b.steps == cfg["epochs"] * math.ceil(4_000 / cfg["batch_size"])
    res = runner.invoke(app, ["report", "--budgets", "pesso", "--db", str(db_path)])
    assert res.exit_code == 0, res.output
    for b in found:
        assert f"| pesso | {b.role} | {b.defense} | " in res.output
        assert f"= {b.steps:,} (mnist-5k)" in res.output
    assert _digest(db_path) == before
    bad = runner.invoke(app, ["report", "--budgets", "nope", "--db", str(db_path)])
    assert bad.exit_code == 2 and "unknown paper 'nope'" in bad.output


@pytest.mark.parametrize("paper", ["fidel", "zantedeschi", "madnet", "jakubovitz", "pesso"])
def test_full_reading_resolves_as_harden_did_for_every_stored_role(paper):
    """The full reading's optimiser, learning rate and weight decay do not depend on the
    scale, so for every role of the plan stored in a committed evidence store (train roles,
    fine-tunings, "regular training" from scratch that takes its parent's recipe) they equal
    what `train`/`harden` resolved and stored for the model: the reading follows the
    commands' own rule."""
    from advbench.report.stored import StoredRuns

    db = open_db(RESULTS / paper / "evidence.db", create=False)
    store, checked = StoredRuns(db), 0
    for spec in tables().values():
        if spec.paper != paper:
            continue
        for data, key in spec.roles:
            found = store.role_models(spec, data, key)
            cfg = json.loads(found[0]["config"] or "{}") if found else {}
            if "lr" not in cfg:
                continue  # not stored here (CIFAR), or a wrapper that trains nothing
            full = _full_reading(paper, spec.roles, data, key)
            want = (cfg["optimizer"], cfg["lr"], cfg.get("weight_decay", 0.0))
            assert (full["optimizer"], full["lr"], full["weight_decay"]) == want, key
            checked += 1
        break  # every table of a paper shares its roles
    assert checked >= 3


def test_train_defaults_are_the_train_commands_own():
    """The full reading of a trained (root) role takes `advbench train`'s defaults: the
    constant the report reads equals the API function's signature (the CLI calls it)."""
    import inspect

    from advbench.api.models import train
    from advbench.train import TRAIN_DEFAULTS

    params = inspect.signature(train).parameters
    assert {k: params[k].default for k in TRAIN_DEFAULTS} == TRAIN_DEFAULTS
