"""The usage lines the tool is introduced with work as written (issue 15, item 0):
`advbench harden --defense jacobian` hardens the most recently trained undefended model,
`advbench attack --suite ...` / `--attack ...` without --model evaluates every stored
model, each naming in one line what it chose; on an empty store both say to train first."""

from advbench.cli import app
from advbench.store import open_db


def test_empty_store_says_train_first(runner, tmp_path):
    db = str(tmp_path / "none.db")
    for args in (["harden", "--defense", "jacobian"], ["attack", "--suite", "carlini-eval"]):
        res = runner.invoke(app, [*args, "--db", db])
        assert res.exit_code == 2, res.output
        assert "no trained model stored yet; run `advbench train`" in res.output
    assert not (tmp_path / "none.db").exists()


def test_harden_without_model_takes_the_latest_undefended_one(runner, db_copy):
    res = runner.invoke(app, ["harden", "--defense", "jacobian", "--epochs", "1", "--db",
                              str(db_copy)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "hardening std, the most recently trained undefended model" in res.stderr
    row = open_db(db_copy)["models"].get("std+jacobian")
    assert row["parent"] == "std" and row["defense"] == "jacobian"


def test_attack_without_model_evaluates_every_stored_model(runner, db_copy):
    res = runner.invoke(app, ["attack", "--attack", "fgsm", "--eps", "0.1", "--n", "4",
                              "--db", str(db_copy)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "evaluating every stored model (2): std, jac" in res.stderr
    store = open_db(db_copy)
    attacked = {r["model"] for r in store.query("select model from runs where attack = 'fgsm'")}
    assert attacked == {"std", "jac"}
    again = runner.invoke(app, ["attack", "--attack", "fgsm", "--eps", "0.1", "--n", "4",
                                "--db", str(db_copy)])  # fmt: skip
    assert again.exit_code == 0
    assert store.execute("select count(*) from runs where attack = 'fgsm'").fetchone()[0] == 2
