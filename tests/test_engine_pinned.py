"""The whole attack engine, pinned on a model that needs no training loop: a softmax
regression on digits fitted by scikit-learn (lbfgs; committed, so every host attacks the
same weights) and wrapped as a torch module. Budget, minimal, targeted, transfer and
correct-only runs go through `run_jobs`, and every stored sample column (not timings) is pinned in
`tests/test_engine_pinned/*.csv` (regenerate with `--force-regen`, with a CHANGELOG line).

The contract test pins each attack on the trained CNN; this one is fast enough to run under
mutation testing, so it guards the engine's batching, seeding, judging and bookkeeping.
"""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from advbench import data, diagnostics
from advbench.engine import run_jobs
from advbench.env import record_environment
from advbench.jobs import make_job
from advbench.store import open_db

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from make_fixtures import SOFTMAX, SOFTMAX_C, fit_softmax  # noqa: E402

NORM_TOL = {"rtol": 1e-4, "atol": 1e-6}  # as the contract pins (tests/test_attack_contract)


class Softmax(torch.nn.Module):
    input_shape, classes = (1, 8, 8), 10

    def __init__(self, weight, bias):
        super().__init__()
        self.lin = torch.nn.Linear(64, 10)
        with torch.no_grad():
            self.lin.weight.copy_(torch.as_tensor(weight))
            self.lin.bias.copy_(torch.as_tensor(bias))

    def forward(self, x):
        return self.lin(x.flatten(1))


def _load(name: str) -> Softmax:
    """A committed softmax regression (`tests/fixtures/softmax_digits.safetensors`, fitted by
    `tests/fixtures/make_fixtures.py`). If refitted here, lbfgs through another CPU's
    OpenBLAS would end elsewhere and move the pins (16 failed on an AVX2 host)."""
    from safetensors.torch import load_file

    tensors = load_file(str(SOFTMAX))
    return Softmax(tensors[f"{name}.weight"], tensors[f"{name}.bias"]).eval()


@pytest.fixture(scope="module")
def models():
    return {"lr": _load("lr"), "lr-src": _load("lr-src")}


def test_committed_softmax_is_the_fit_it_says():
    """The committed weights are what make_fixtures.fit_softmax gives on this host, up to
    the optimiser's tolerance: the same predictions on digits' test split."""
    test = data.load("digits", "test")
    x, _ = test.get(torch.arange(len(test)))
    for name, c in SOFTMAX_C.items():
        refit = Softmax(**fit_softmax(c)).eval()
        with torch.no_grad():
            same = (refit(x).argmax(1) == _load(name)(x).argmax(1)).float().mean().item()
        assert same >= 0.99, (name, same)


def _row(name, checksum):
    return {"name": name, "checksum": checksum, "dataset": "digits", "defense": None,
            "parent": None, "config": json.dumps({"kind": "train"}), "arch": "softmax"}  # fmt: skip


JOBS = {
    "fgsm": lambda: make_job("fgsm", [0.05, 0.1], label="FGSM"),
    "pgd": lambda: make_job("pgd-linf", [0.05, 0.1], {"steps": 4}, label="PGD"),
    "pgd-restarts": lambda: make_job("pgd-l2", [0.5], {"steps": 3, "restarts": 2}),
    "pgd-max-loss": lambda: make_job(
        "pgd-linf", [0.1], {"steps": 3, "restarts": 2, "keep": "max-loss"}
    ),  # fmt: skip
    "noise": lambda: make_job("noise", [0.1, 0.3]),
    "cw": lambda: make_job(
        "cw-l2",
        [0.5, 1.0, float("inf")],
        {"steps": 20, "binary_search_steps": 2, "stepsize": 0.05, "initial_const": 1.0},
    ),  # fmt: skip
    "deepfool-linf": lambda: make_job("deepfool-linf", [0.05, 0.1], {"steps": 20}),
    "pgd-targeted": lambda: make_job("pgd-linf", [0.1, 0.2], {"steps": 4}, targeted="random"),
    # restarts ranked by the target's loss (lower is better for a targeted attack)
    "pgd-targeted-max-loss": lambda: make_job(
        "pgd-linf", [0.05], {"steps": 2, "restarts": 3, "keep": "max-loss"}, targeted="random"
    ),
    "cw-all-others": lambda: make_job(
        "cw-l2",
        [1.0],
        {"steps": 10, "binary_search_steps": 1, "initial_const": 1.0},
        targeted="all-others",
        n=3,
    ),  # fmt: skip
    "fgsm-transfer": lambda: make_job("fgsm", [0.1], source="model:lr-src"),
    "cw-transfer": lambda: make_job(
        "cw-l2",
        [1.0],
        {"steps": 20, "binary_search_steps": 2, "initial_const": 1.0},
        source="model:lr-src",
    ),  # fmt: skip
    # 120 of the seeded permutation hold misclassified samples, which it must skip
    "only-correct": lambda: make_job("fgsm", [0.1], only_correct=True, n=120),
    "jsma": lambda: make_job("jsma", [0.05, 0.2]),  # L0: share of features changed
    "hsj-targeted": lambda: make_job(
        "hsj",
        [1.0, 2.0],
        {"max_iter": 2, "max_eval": 30, "init_eval": 5, "init_size": 10},
        targeted="random",
    ),  # fmt: skip
    "hsj": lambda: make_job(
        "hsj",
        [0.05, 0.2],
        {"norm": "linf", "max_iter": 2, "max_eval": 30, "init_eval": 5, "init_size": 3},
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", sorted(JOBS))
def test_engine_rows_are_pinned(tmp_path, models, name, pin_rows, data_regression):
    db = open_db(tmp_path / "e.db")
    stored = {"lr": _row("lr", "a" * 64), "lr-src": _row("lr-src", "b" * 64)}
    db["models"].insert_all(stored.values())
    job = JOBS[name]()
    job.shortcuts = False  # the plain plan's numbers; shortcuts: tests/test_shortcuts.py
    res = run_jobs(
        db, models["lr"], stored["lr"], [job], n=20, seed=7, batch_size=8,
        env_id=record_environment(db, "cpu"), load_model=lambda m: (models[m], stored[m]),
    )  # fmt: skip
    # the checklist's diagnostics are pinned on their own (test_diagnostics.py)
    skip = ("run_id", "trace", *diagnostics.COLUMNS)
    cols = [c for c in db["samples"].columns_dict if c not in skip]
    rows = [
        {"run": i, **dict(r)}
        for i, s in enumerate(res)
        for r in db["samples"].rows_where("run_id = ?", [s.id], order_by="position")
    ]
    numbers = pd.DataFrame([{c: r[c] for c in ["run", *cols]} for r in rows])
    numbers = numbers.apply(pd.to_numeric).astype(float).fillna(-1)  # None pinned as -1
    pin_rows(numbers, name, {c: NORM_TOL for c in ("l2", "linf", "x_l2", "min_norm")})
    summary = [
        {"eps": s.eps, "n": s.n, "robust": s.robust, "failed": s.init_failed,
         "threat": s.threat, "targeted": s.targeted, "status": s.status, "label": s.label,
         "attack": s.attack, "reused": s.reused, "gradient": s.gradient}
        for s in res
    ]  # fmt: skip
    # traces (per-restart losses or norms) to 5 significant digits, as loose as NORM_TOL
    traces = [
        [float(f"{v:.5g}") if isinstance(v, float) else v for v in json.loads(r["trace"])]
        for r in rows
        if r["trace"] is not None
    ]
    data_regression.check(
        {"runs": summary, "traces": traces[:8]},
        basename=f"{name}.runs",
    )
    # the same request again does no work and says so
    again = run_jobs(
        db, models["lr"], stored["lr"], [job], n=20, seed=7, batch_size=8,
        env_id=record_environment(db, "cpu"), load_model=lambda m: (models[m], stored[m]),
    )  # fmt: skip
    assert [(s.id, s.robust, s.reused) for s in again] == [(s.id, s.robust, True) for s in res]
    # the stored rows agree with the summary the command prints
    for s in res:
        n = db.execute("select count(*) from samples where run_id = ?", [s.id]).fetchone()[0]
        assert n == s.n + s.init_failed
