"""Budget attacks over several ε: an instance broken at a smaller ε is taken as broken at
the next (its example lies in the larger ball) and only what is still robust is attacked.
Never weaker than the plain plan, fewer passes, a different run in the store."""

import json

import pytest

from advbench.catalogue import load_model
from advbench.engine import run_jobs
from advbench.env import record_environment
from advbench.jobs import make_job
from advbench.store import open_db

EPS = [0.05, 0.1, 0.2, 0.3]
# no random start: each instance's PGD path is the same in any batch, so the two plans
# differ only by what the shortcut carries
PGD = {"steps": 5, "random_start": False}


def _run(db, shortcuts, n=24):
    model, _, row = load_model(db, "std")
    return run_jobs(db, model, row, [make_job("pgd-linf", EPS, PGD, shortcuts=shortcuts)],
                    n=n, seed=1, batch_size=8, env_id=record_environment(db, "cpu"))  # fmt: skip


def _samples(db, run_id):
    return {
        r["position"]: r
        for r in db["samples"].rows_where("run_id = ?", [run_id], order_by="position")
    }


@pytest.fixture
def both(db_copy):
    db = open_db(db_copy)
    plain = _run(db, False)
    short = _run(db, True)
    return db, plain, short


def test_shortcuts_are_never_weaker_and_cost_fewer_passes(both):
    db, plain, short = both
    # every run differs: the smallest ε by early stop, the others also by the chain
    assert all(p.id != s.id for p, s in zip(plain, short, strict=True))
    assert json.loads(db["runs"].get(short[0].id)["config"])["params"]["early_stop"] is True
    assert "early_stop" not in json.loads(db["runs"].get(plain[0].id)["config"])["params"]
    carried_total = 0
    for k, (p, s) in enumerate(zip(plain, short, strict=True)):
        rp, rs = _samples(db, p.id), _samples(db, s.id)
        assert rp.keys() == rs.keys() and len(rs) == 24
        broken_plain = {i for i, r in rp.items() if r["success"]}
        broken_short = {i for i, r in rs.items() if r["success"]}
        assert broken_plain <= broken_short  # nothing the plain plan broke survives
        assert s.robust <= p.robust
        for i, r in rs.items():
            if r["carried_from"] is not None:
                carried_total += 1
                assert (r["fwd"], r["bwd"]) == (0.0, 0.0) and r["success"] == 1
                assert r["linf"] <= EPS[k] + 1e-6  # the carried example is inside this ball
            elif not r["success"]:  # attacked here, robust: the plain plan's whole path
                assert r["adv_pred"] == rp[i]["adv_pred"]
                assert r["linf"] == pytest.approx(rp[i]["linf"], abs=1e-6)
            # the noise check draws for the whole batch, carried or not
            assert r["noise_flips"] == rp[i]["noise_flips"]
        if k:  # monotone: what a smaller ε broke stays broken
            before = {i for i, r in _samples(db, short[k - 1].id).items() if r["success"]}
            assert before <= broken_short
    assert carried_total > 0
    passes = {
        name: db.execute(
            f"select sum(fwd + bwd) from samples where run_id in ({','.join('?' * 4)})",
            [r.id for r in runs],
        ).fetchone()[0]
        for name, runs in (("plain", plain), ("short", short))
    }
    assert passes["short"] < passes["plain"]
    config = json.loads(db["runs"].get(short[2].id)["config"])
    assert config["shortcut_from"] == short[1].id


def test_a_resumed_chain_ends_as_an_uninterrupted_one(both):
    db, _, short = both
    last = short[-1].id
    want = _samples(db, last)
    # an interruption after the first batch of the largest ε
    db.execute("delete from samples where run_id = ? and position >= 8", [last])
    db.execute("update runs set status = 'running' where id = ?", [last])
    again = _run(db, True)
    assert [r.id for r in again] == [r.id for r in short]
    got = _samples(db, last)
    assert got.keys() == want.keys()
    for i in want:
        for col in ("adv_pred", "success", "linf", "fwd", "bwd", "carried_from"):
            assert got[i][col] == want[i][col], (i, col)


def test_paper_suites_attack_every_budget_afresh():
    from advbench.suites import available, load_suite, suite_jobs

    for name in ("fidel", "zantedeschi", "madnet", "jakubovitz", "pesso"):
        jobs, _ = suite_jobs(load_suite(name), "mnist-5k", "smoke")
        assert not any(j.shortcuts for j in jobs), name
    assert "carlini-eval" in available()
    jobs, _ = suite_jobs(load_suite("carlini-eval"), "mnist-5k", "smoke")
    assert all(j.shortcuts for j in jobs)


def _stored_model(db_copy):
    db = open_db(db_copy)
    model, _, _ = load_model(db, "std")
    return model.eval()


@pytest.mark.parametrize(
    ("name", "eps", "extra"),
    [("pgd-linf", 0.1, {}), ("pgd-l2", 1.0, {}), ("pgd-l2", 1.0, {"start": "data"})],
)
def test_early_stop_follows_foolbox_step_for_step(db_copy, name, eps, extra):
    """Our early-stopping loop against foolbox's PGD with the same seed, random starts and
    two restarts: every instance foolbox broke is broken, an instance neither broke ends at
    foolbox's final iterate, and the passes drop."""
    import torch

    from advbench import data
    from advbench.attacks import ATTACKS, unpack
    from advbench.engine import Counted

    model = _stored_model(db_copy)
    x, y = data.load("digits", "test").get(torch.arange(48))
    entry, out = ATTACKS.get(name), {}
    for early in (False, True):
        counted = Counted(model)
        params = {"steps": 10, "restarts": 2, "early_stop": early, **extra}
        attack = entry.factory(entry.resolve(params))
        torch.manual_seed(3)
        adv = unpack(attack(counted, x, y, eps)).adv
        with torch.no_grad():
            fooled = model(adv).argmax(1) != y
        out[early] = adv, fooled, counted.rows_forward + counted.rows_backward
    (a0, f0, p0), (a1, f1, p1) = out[False], out[True]
    assert 0 < int(f0.sum()) < len(x)  # the budget leaves both outcomes to compare
    assert not (f0 & ~f1).any()  # never weaker
    both = ~f0 & ~f1
    assert both.any()
    assert torch.allclose(a0[both], a1[both], atol=1e-5)  # the same path where both failed
    norm = float("inf") if name == "pgd-linf" else 2
    dist = (a1 - x).flatten(1).norm(p=norm, dim=1)
    assert (dist <= eps * (1 + 1e-5)).all()
    assert p1 < 0.9 * p0


def test_early_stop_credits_diagnostics_to_the_rows_it_attacks(db_copy):
    """A robust instance is attacked for every step of every restart; a broken one stops,
    and its recorded gradient passes say so."""
    db = open_db(db_copy)
    model, _, row = load_model(db, "std")
    job = make_job("pgd-linf", [0.1], {"steps": 6, "restarts": 2})
    (run,) = run_jobs(db, model, row, [job], n=24, seed=1, batch_size=24,
                      env_id=record_environment(db, "cpu"))  # fmt: skip
    rows = _samples(db, run.id).values()
    robust = [r for r in rows if not r["success"]]
    broken = [r for r in rows if r["success"]]
    assert robust and broken
    assert {r["grad_passes"] for r in robust} == {12}  # 6 steps x 2 restarts
    assert all(r["grad_passes"] < 12 for r in broken)
    assert all(json.loads(r["loss_trace"])[-1] < 0 for r in broken)


def test_early_stop_with_max_loss_restarts_is_refused():
    from advbench.attacks import ATTACKS
    from advbench.errors import BadInput

    bad = {"early_stop": True, "keep": "max-loss", "restarts": 2}
    with pytest.raises(BadInput, match="early_stop keeps each instance's first success"):
        make_job("pgd-linf", [0.1], bad)  # before any run is registered
    entry = ATTACKS.get("pgd-linf")
    with pytest.raises(BadInput, match="early_stop keeps each instance's first success"):
        entry.factory(entry.resolve(bad))


@pytest.mark.parametrize("attack", ["pgd-l2", "noise"])
def test_a_chain_with_random_starts_draws_each_instance_as_the_plain_plan(db_copy, attack):
    """With random starts, the ε-chain hands the attack the whole batch with the carried
    instances marked done, so every other instance gets the random start (or noise) it
    gets in the plain plan: nothing the plain plan broke survives, at any ε."""
    db = open_db(db_copy)
    model, _, row = load_model(db, "std")
    eps = [0.5, 1.0, 1.5, 2.0] if attack == "pgd-l2" else [0.1, 0.2, 0.3, 0.5]
    params = {"steps": 5, "restarts": 2} if attack == "pgd-l2" else {}
    env = record_environment(db, "cpu")
    out = {}
    for shortcuts in (False, True):
        job = make_job(attack, eps, params, shortcuts=shortcuts)
        out[shortcuts] = run_jobs(db, model, row, [job], n=32, seed=3, batch_size=16,
                                  env_id=env)  # fmt: skip
    carried = 0
    for p, s in zip(out[False], out[True], strict=True):
        rp, rs = _samples(db, p.id), _samples(db, s.id)
        assert {i for i, r in rp.items() if r["success"]} <= {
            i for i, r in rs.items() if r["success"]
        }, p.eps
        carried += sum(r["carried_from"] is not None for r in rs.values())
        for i, r in rs.items():
            if r["carried_from"] is not None:
                continue
            if attack == "noise":  # the same noise
                assert r["linf"] == pytest.approx(rp[i]["linf"], abs=1e-6)
                assert r["adv_pred"] == rp[i]["adv_pred"]
            elif not r["success"]:  # robust under both: the plain plan's whole path
                assert r["l2"] == pytest.approx(rp[i]["l2"], abs=1e-5), (p.eps, i)
    assert carried > 0


@pytest.mark.parametrize("name", ["deepfool-l2", "deepfool-linf"])
def test_early_stop_deepfool_is_foolboxs_with_fewer_passes(db_copy, name):
    """DeepFool's own loop against foolbox's on the same batch: every example equal (a row
    leaves when adversarial, where foolbox freezes it), and the passes drop."""
    import torch

    from advbench import data
    from advbench.attacks import ATTACKS, unpack
    from advbench.engine import Counted

    model = _stored_model(db_copy)
    x, y = data.load("digits", "test").get(torch.arange(64))
    entry, out = ATTACKS.get(name), {}
    for early in (False, True):
        counted = Counted(model)
        attack = entry.factory(entry.resolve({"early_stop": early, "steps": 50}))
        adv = unpack(attack(counted, x, y)).adv
        out[early] = adv, counted.rows_forward, counted.rows_backward
    (a0, f0, b0), (a1, f1, b1) = out[False], out[True]
    with torch.no_grad():
        fooled = model(a0).argmax(1) != y
    assert fooled.float().mean() > 0.5 and not torch.equal(a0, x)  # DeepFool did work
    assert torch.allclose(a0, a1, atol=1e-5)
    assert f1 < 0.5 * f0 and b1 < b0
