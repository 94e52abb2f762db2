"""Every registered attack honours the contract, on a real (digits) model."""

import pytest

from advbench.attacks import ATTACKS
from advbench.engine import make_job, run_jobs
from advbench.env import record_environment
from advbench.store import open_db
from advbench.train import load_model

FAST = {
    "pgd-linf": {"steps": 5},
    "pgd-l2": {"steps": 5},
    "bim": {"steps": 5},
    "cw-l2": {"steps": 20, "binary_search_steps": 2, "stepsize": 0.05, "initial_const": 1.0},
    "deepfool-l2": {"steps": 20},
    "deepfool-linf": {"steps": 20},
    "fgsm-min": {"eps_step": 0.05},
}
EPS = {"linf": [0.05, 0.2, 0.5], "l2": [0.3, 1.0, 3.0]}


def test_every_attack_has_a_contract_setting():
    assert set(FAST) | {"fgsm", "rfgsm"} == set(ATTACKS.names())


@pytest.mark.parametrize("name", ATTACKS.names())
def test_attack_contract(db_copy, name):
    db = open_db(db_copy)
    model, _, row = load_model(db, "std")
    entry = ATTACKS.get(name)
    norm = entry.meta["norm"]
    job = make_job(name, EPS[norm], FAST.get(name))
    res = run_jobs(
        db, model, row, [job], n=16, seed=1, batch_size=8, env_id=record_environment(db, "cpu")
    )
    assert [s.n for s in res] == [16, 16, 16]
    accs = [s.accuracy for s in res]
    assert accs[-1] <= accs[0] + 1e-9
    assert accs[-1] < 0.9, f"{name} barely hurts a standard model at a large ε: {accs}"
    for s in res:
        for r in db["samples"].rows_where("run_id = ?", [s.id]):
            size = r["l2"] if norm == "l2" else r["linf"]
            assert size <= s.eps * (1 + 1e-4) + 1e-6, (name, s.eps, size)
            assert r["x_l2"] > 0
            if entry.meta["kind"] == "minimal" and r["success"] and r["clean_pred"] == r["label"]:
                assert r["min_norm"] == pytest.approx(size, rel=1e-4, abs=1e-6)
    if entry.meta["kind"] == "minimal":
        assert len({db["runs"].get(s.id)["group_id"] for s in res}) == 1
