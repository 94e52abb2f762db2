"""Adversarial examples kept beside the database (a suite row's `store_examples`), and the
measurements taken at them or at clean test points, checked against computations done
here from the model and the data directly."""

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from advbench import data as datasets
from advbench.catalogue import load_model
from advbench.cli import app
from advbench.engine import select_samples
from advbench.errors import BadInput
from advbench.store import examples, open_db

SUITE = {
    "name": "keep",
    "description": "minimal FGSM keeping its examples",
    "n": {"smoke": 12, "cpu": 12, "full": 12},
    "attacks": [
        {"attack": "fgsm-min", "label": "FGSM (minimal)", "eps": {"mnist": [0.1, 0.5]},
         "params": {"eps_step": 0.1, "eps_max": 0.5}, "store_examples": True},
        {"attack": "fgsm", "label": "FGSM", "eps": {"mnist": [0.1]}},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def kept_store(trained_db, tmp_path_factory):
    """The trained store after one run of the suite above (made once for the module)."""
    from typer.testing import CliRunner

    folder = tmp_path_factory.mktemp("kept")
    shutil.copytree(trained_db.parent, folder / "store")
    db = folder / "store" / "a.db"
    suite = folder / "keep.json"
    suite.write_text(json.dumps(SUITE))
    res = CliRunner().invoke(app, ["attack", "--model", "std", "--suite", str(suite), "--scale",
                                   "smoke", "--batch-size", "5", "--device", "cpu", "--db",
                                   str(db)])  # fmt: skip
    assert res.exit_code == 0, res.output
    return db


@pytest.fixture
def kept(kept_store, tmp_path):
    """A private copy a test may change."""
    shutil.copytree(kept_store.parent, tmp_path / "store")
    return tmp_path / "store" / "a.db"


def _measure(runner, db, metric, *args):
    """`advbench measure` of model std on CPU."""
    argv = ["measure", "--model", "std", "--metric", metric, *args, "--device", "cpu"]
    return runner.invoke(app, [*argv, "--db", str(db)])


def _run_id(db, label, eps):
    return db.execute("select id from runs where label = ? and eps = ?", [label, eps]).fetchone()[0]


def test_examples_are_kept_per_batch_at_the_largest_eps_only(kept):
    db = open_db(kept)
    top = _run_id(db, "FGSM (minimal)", 0.5)
    rows = list(db["examples"].rows_where("run_id = ?", [top], order_by="batch"))
    assert [r["count"] for r in rows] == [5, 5, 2]  # batches of 5 over 12 samples
    assert db["examples"].count_where("run_id = ?", [_run_id(db, "FGSM (minimal)", 0.1)]) == 0
    assert db["examples"].count_where("run_id = ?", [_run_id(db, "FGSM", 0.1)]) == 0
    positions, adv = examples.load(db, top)
    assert positions.tolist() == list(range(12))
    # the kept examples are the judged ones: their distance from x is the stored L2
    model, _, row = load_model(db, "std")
    test = datasets.load("digits", "test")
    idx = [r["idx"] for r in db.query("select idx from samples where run_id = ? order by "
                                      "position", [top])]  # fmt: skip
    x, _ = test.get(torch.tensor(idx))
    l2 = [r["l2"] for r in db.query("select l2 from samples where run_id = ? order by position",
                                    [top])]  # fmt: skip
    assert np.allclose((adv - x).flatten(1).norm(dim=1).numpy(), l2, atol=1e-5)


def test_a_changed_examples_file_is_refused(kept):
    db = open_db(kept)
    top = _run_id(db, "FGSM (minimal)", 0.5)
    path = kept.parent / db["examples"].get((top, 0))["path"]
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(BadInput, match="changed since it was stored"):
        examples.load(db, top)


def test_train_distance_is_the_nearest_training_image_of_changed_examples(kept, runner):
    res = _measure(runner, kept, "train-distance", "--run", "FGSM (minimal)")
    assert res.exit_code == 0, res.output
    db = open_db(kept)
    top = _run_id(db, "FGSM (minimal)", 0.5)
    m = db.execute("select value, n, per_sample from measurements where metric = "
                   "'train-distance'").fetchone()  # fmt: skip
    positions, adv = examples.load(db, top)
    changed = {
        r["position"]: r["idx"]
        for r in db.query(
            "select position, idx from samples where run_id = ? and adv_pred != clean_pred", [top]
        )
    }
    train = datasets.load("digits", "train")
    ref, _ = train.get(torch.arange(len(train)))
    ref = ref.flatten(1).numpy().astype(np.float64)
    test = datasets.load("digits", "test")
    # the authors' definition: squared distance to the nearest training image over ‖x‖₂
    want = [
        ((ref - adv[p].flatten().numpy()) ** 2).sum(1).min()
        / np.linalg.norm(test.get(torch.tensor([i]))[0].numpy().astype(np.float64))
        for p, i in changed.items()
    ]
    assert m[1] == len(changed) > 0
    assert m[0] == pytest.approx(float(np.mean(want)), rel=1e-6)


def test_loss_sensitivity_command_stores_the_hand_computed_mean(trained_db, db_copy, runner):
    res = _measure(runner, db_copy, "loss-sensitivity", "--n", "20", "--seed", "3")
    assert res.exit_code == 0, res.output
    db = open_db(db_copy)
    value, n = db.execute("select value, n from measurements").fetchone()
    model, _, _ = load_model(db, "std")
    test = datasets.load("digits", "test")
    norms = []
    for i in select_samples(test.labels, 20, 3):  # one sample at a time: no reduction at all
        x, y = test.get(i.view(1))
        x.requires_grad_(True)
        F.cross_entropy(model(x), y).backward()
        norms.append(float(x.grad.norm()))
    assert n == 20 and value == pytest.approx(np.mean(norms), rel=1e-5)
    # stored again: no new row; an unknown metric: exit 2 with the choices
    _measure(runner, db_copy, "loss-sensitivity", "--n", "20", "--seed", "3")
    assert db["measurements"].count == 1
    res = _measure(runner, db_copy, "lipschitz")
    assert res.exit_code == 2 and "loss-sensitivity" in res.output
