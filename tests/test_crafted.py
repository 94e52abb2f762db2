"""The crafted cache: a transfer row's examples are crafted once per source and reused for
every target, and a target served from the cache stores exactly the rows it would have
stored crafting them itself."""

import shutil

import pytest

from advbench import crafted
from advbench.catalogue import load_model
from advbench.engine import loop as engine  # where the batch loop makes its Observer
from advbench.engine import run_jobs
from advbench.env import record_environment
from advbench.jobs import make_job
from advbench.store import open_db

# each kind of crafting: a minimal attack (one search for every ε), a budget attack with
# a random start (seeded per batch), and a targeted decision-based attack with start
# images (ART, numpy's generator)
JOBS = [
    ("cw-l2", [0.5, 2.0], {"steps": 10, "binary_search_steps": 1, "initial_const": 1.0}, None),
    ("pgd-l2", [1.0], {"steps": 5, "abs_stepsize": 0.3, "random_start": True}, None),
    ("hsj", [2.0], {"max_iter": 1, "max_eval": 20, "init_eval": 5, "init_size": 10}, "random"),
]
COMPARED = ("idx", "position", "target", "clean_pred", "adv_pred", "success", "l0", "l2",
            "linf", "min_norm", "fwd", "bwd", "trace", "init_failed", "start_idx",
            "best_norm", "loss_trace", "grad_zero", "grad_nonfinite", "grad_passes",
            "grad_unavailable", "source_success")  # fmt: skip


def _jobs():
    return [make_job(a, eps, p, targeted=t, source="std") for a, eps, p, t in JOBS]


def _run(db, target, force=False):
    model, _, row = load_model(db, target)
    return run_jobs(
        db,
        model,
        row,
        _jobs(),
        n=6,
        seed=3,
        batch_size=4,
        env_id=record_environment(db, "cpu"),
        load_model=lambda m: load_model(db, m)[::2],
        force=force,
    )


def _rows(db, runs):
    out = {}
    for r in runs:
        label = (r.attack, r.eps)
        out[label] = [
            {k: s[k] for k in COMPARED}
            for s in db["samples"].rows_where("run_id = ?", [r.id], order_by="position")
        ]
    return out


@pytest.fixture
def count_crafting(monkeypatch):
    """How many batches were crafted (an Observer watches every crafting, none a hit)."""
    made = []

    class Counting(engine.Observer):
        def __init__(self, *a, **kw):
            made.append(1)
            super().__init__(*a, **kw)

    monkeypatch.setattr(engine, "Observer", Counting)
    return made


def test_second_target_reuses_the_first_targets_examples(db_copy, tmp_path, count_crafting):
    fresh = tmp_path / "fresh"
    shutil.copytree(db_copy.parent, fresh)
    db = open_db(db_copy)
    _run(db, "jac")
    crafted_batches = len(count_crafting)
    # 6 instances in batches of 4: 2 batches per crafting; cw once, pgd and hsj once per ε
    assert crafted_batches == 2 * 3
    assert db["crafted"].count == crafted_batches
    shared = _run(db, "std")
    assert len(count_crafting) == crafted_batches  # nothing crafted for the second target

    # the same target crafting for itself, in a store without the cache entries
    alone_db = open_db(fresh / "a.db")
    alone = _run(alone_db, "std")
    assert len(count_crafting) == 2 * crafted_batches
    got, want = _rows(db, shared), _rows(alone_db, alone)
    assert got.keys() == want.keys() and len(got) == 4  # cw at two ε, pgd, hsj
    assert got == want
    # and the target's own judgement differs from the source's: the rows are the target's
    jac_rows = _rows(db, _run(db, "jac"))
    assert [r["clean_pred"] for r in jac_rows["pgd-l2", 1.0]] != [
        r["clean_pred"] for r in got["pgd-l2", 1.0]
    ] or [r["adv_pred"] for r in jac_rows["cw-l2", 2.0]] != [
        r["adv_pred"] for r in got["cw-l2", 2.0]
    ]


def test_a_changed_cache_file_is_crafted_again(db_copy, count_crafting):
    db = open_db(db_copy)
    first = _rows(db, _run(db, "jac"))
    path = db_copy.parent / next(iter(db["crafted"].rows))["path"]
    path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)
    made = len(count_crafting)
    for rid in [r["id"] for r in db["runs"].rows]:  # run the same target again from scratch
        db.execute("delete from samples where run_id = ?", [rid])
        db.execute("delete from runs where id = ?", [rid])
    again = _rows(db, _run(db, "jac"))
    assert len(count_crafting) == made + 1  # only the changed entry
    assert again == first


def test_the_key_moves_with_everything_the_examples_depend_on():
    base = dict(source="a", gradient=None, attack="pgd-l2", params={"steps": 5}, eps=1.0,
                seed=1, idx=[1, 2], target=None, start_idx=None)  # fmt: skip
    k = crafted.key(**base)
    assert crafted.key(**base) == k
    for change in (
        {"source": "b"},
        {"gradient": "bpda"},
        {"params": {"steps": 6}},
        {"eps": 2.0},
        {"seed": 2},
        {"idx": [2, 1]},
        {"target": [3, 4]},
        {"start_idx": [0, 0]},
    ):
        assert crafted.key(**{**base, **change}) != k, change


def test_force_crafts_again_instead_of_reading_the_cache(db_copy, count_crafting):
    db = open_db(db_copy)
    first = _rows(db, _run(db, "jac"))
    made = len(count_crafting)
    again = _rows(db, _run(db, "jac", force=True))
    assert len(count_crafting) == 2 * made  # every batch crafted again
    assert again == first  # and to the same numbers
