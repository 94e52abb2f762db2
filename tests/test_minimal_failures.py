"""A minimal attack that finds nothing must never count as a success (Faithful cells, 1).

The model below cannot be fooled by any attack that follows its gradient (it is exactly zero)
or samples noise (bright noise keeps its label), yet it misclassifies dark images: foolbox's
C&W used to return its all-zero initial image where it found nothing, and the engine judged
that black image (or, with madnet's L∞ clip, "x darkened by 0.3") as an adversarial.
"""

import math

import pytest
import torch
from test_attack_contract import CW
from test_attack_contract import FAST as CONTRACT_FAST
from torch import nn

from advbench.attacks import ATTACKS
from advbench.catalogue import model_row
from advbench.engine import run_jobs
from advbench.env import record_environment
from advbench.jobs import make_job
from advbench.store import open_db

MINIMAL = [e.name for e in ATTACKS if e.meta["kind"] == "minimal"]
FAST = {name: CONTRACT_FAST.get(name, {}) for name in MINIMAL}  # the contract's fast settings
CLASS = 3


class DarkStep(nn.Module):
    """Class 3 for any input whose brightest pixel exceeds 0.8 (every digits image), class 4
    otherwise (the black image, or a digit darkened by 0.3). Its input gradient is zero."""

    input_shape = (1, 8, 8)
    classes = 10

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))  # attack back-ends read a parameter's device

    def forward(self, x):
        bright = x.flatten(1).amax(1) > 0.8
        cls = torch.where(bright, CLASS, CLASS + 1)
        return 10.0 * nn.functional.one_hot(cls, 10).float() + 0.0 * x.flatten(1).sum(1, True)


def _judged(db, name, params):
    norm = ATTACKS.get(name).meta["norm"]
    eps = {"l2": [0.5, 3.0, math.inf], "linf": [0.1, 0.5, math.inf], "l0": [0.1, 0.5, math.inf]}
    job = make_job(name, eps[norm.split("|")[0]], params, only_correct=True)
    row = model_row(db, "std")
    return run_jobs(
        db, DarkStep(), row, [job], n=8, seed=3, batch_size=8, env_id=record_environment(db, "cpu")
    )


@pytest.mark.parametrize("name", MINIMAL)
def test_an_unfoolable_model_stays_at_100_percent_at_every_eps(db_copy, name):
    db = open_db(db_copy)
    res = _judged(db, name, FAST[name])
    for s in res:
        for r in db["samples"].rows_where("run_id = ?", [s.id]):
            assert r["success"] == 0 and r["min_norm"] is None, (name, r)
    if name == "hsj":  # bright noise keeps the label: no start, flagged, not counted robust
        assert [(s.n, s.init_failed) for s in res] == [(0, 8)] * 3
        return
    assert [s.accuracy for s in res] == [1.0, 1.0, 1.0], (name, [s.eps for s in res])


def test_cw_runs_made_before_the_fix_are_not_reused(db_copy):
    """The fix changes C&W's numbers, so its runs carry a revision in their identity."""
    import json

    db = open_db(db_copy)
    (s, *_) = _judged(db, "cw-l2", CW)
    assert json.loads(db["runs"].get(s.id)["config"])["revision"] == 1
    (d, *_) = _judged(db, "deepfool-l2", FAST["deepfool-l2"])
    assert "revision" not in json.loads(db["runs"].get(d.id)["config"])


def test_madnet_linf_clip_does_not_darken_unbroken_samples(db_copy):
    """madnet clips C&W's result to an L∞ ball of 0.3; a sample C&W did not break must stay x,
    not become the clipped black image (max pixel 1 - 0.3 = 0.7: class 4 here)."""
    db = open_db(db_copy)
    res = _judged(db, "cw-l2", {**CW, "linf_clip": 0.3})
    assert [s.accuracy for s in res] == [1.0, 1.0, 1.0]
    for s in res:
        assert all(r["linf"] == 0 for r in db["samples"].rows_where("run_id = ?", [s.id]))
