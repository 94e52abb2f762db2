"""Every registered attack honours the contract, on a real (digits) model."""

import pytest

from advbench.attacks import ATTACKS, norm_of
from advbench.engine import make_job, run_jobs
from advbench.env import record_environment
from advbench.store import open_db
from advbench.train import load_model

CW = {"steps": 20, "binary_search_steps": 2, "stepsize": 0.05, "initial_const": 1.0}
FAST = {
    "pgd-linf": {"steps": 5},
    "pgd-l2": {"steps": 5},
    "bim": {"steps": 5},
    "cw-l2": CW,
    "cw-l2-restarts": {**CW, "restarts": 2, "radius": 0.5},
    "cw-l2-eot": {**CW, "samples": 2},
    "bpda-pgd": {"steps": 5},
    "apgd": {"steps": 5},
    "deepfool-l2": {"steps": 20},
    "deepfool-linf": {"steps": 20},
    "fgsm-min": {"eps_step": 0.05},
    "hsj": {"max_iter": 3, "max_eval": 100, "init_eval": 10, "init_size": 20},
}
EPS = {"linf": [0.05, 0.2, 0.5], "l2": [0.3, 1.0, 3.0], "l0": [0.02, 0.1, 0.5]}
DEFAULTS_ARE_FAST = {"fgsm", "rfgsm", "noise", "jsma"}
NO_GRADIENTS = {"hsj"}  # decision-based: labels only, no backward pass


def test_every_attack_has_a_contract_setting():
    assert set(FAST) | DEFAULTS_ARE_FAST == set(ATTACKS.names())


@pytest.mark.parametrize("name", ATTACKS.names())
def test_attack_contract(db_copy, name):
    db = open_db(db_copy)
    model, _, row = load_model(db, "std")
    entry = ATTACKS.get(name)
    norm = norm_of(name, FAST.get(name))
    job = make_job(name, EPS[norm], FAST.get(name))
    res = run_jobs(
        db, model, row, [job], n=16, seed=1, batch_size=8, env_id=record_environment(db, "cpu")
    )
    assert [s.n for s in res] == [16, 16, 16]
    accs = [s.accuracy for s in res]
    assert accs[-1] <= accs[0] + 1e-9
    assert accs[-1] < 0.9, f"{name} barely hurts a standard model at a large ε: {accs}"
    features = model.input_shape[0] * model.input_shape[1] * model.input_shape[2]
    for s in res:
        for r in db["samples"].rows_where("run_id = ?", [s.id]):
            size = {"l2": r["l2"], "linf": r["linf"], "l0": r["l0"] / features}[norm]
            assert r["eps"] == s.eps
            # noise, and rfgsm at ε <= α (its random step alone), never query the model
            free = name == "noise" or (name == "rfgsm" and s.eps <= 0.05)
            assert (r["fwd"] >= 1) != free, (name, r["fwd"])
            assert (r["bwd"] == 0) == (free or name in NO_GRADIENTS), (name, r["bwd"])
            assert size <= s.eps * (1 + 1e-4) + 1e-6, (name, s.eps, size)
            assert r["x_l2"] > 0
            if entry.meta["kind"] == "minimal" and r["success"] and r["clean_pred"] == r["label"]:
                assert r["min_norm"] == pytest.approx(size, rel=1e-4, abs=1e-6)
    if entry.meta["kind"] == "minimal":
        assert len({db["runs"].get(s.id)["group_id"] for s in res}) == 1
