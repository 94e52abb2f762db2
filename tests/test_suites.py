"""Suites: every file parses for every family and scale, and every paper suite runs at
scale smoke on mnist-5k through the CLI (the issue's acceptance check)."""

import pytest
from conftest import built_once

from advbench.catalogue import load_model
from advbench.cli import app
from advbench.engine import run_jobs
from advbench.env import record_environment
from advbench.store import open_db
from advbench.suites import SCALES, available, load_suite, suite_jobs
from advbench.train import harden_model, train_model

PAPERS = ["fidel", "zantedeschi", "madnet", "jakubovitz", "pesso"]


def test_every_paper_has_a_suite():
    assert set(PAPERS) | {"carlini-eval"} <= set(available())


@pytest.mark.parametrize("name", sorted(available()))
def test_suite_rows_are_valid_labelled_and_scaled_down(name):
    suite = load_suite(name)
    for dataset in ("mnist-5k", "cifar10"):
        jobs = {s: suite_jobs(suite, dataset, s)[0] for s in SCALES}
        assert all(j.label for j in jobs["full"]), "every row carries the paper's label"
        for small in ("smoke", "cpu"):
            assert len(jobs[small]) == len(jobs["full"])
            for a, b in zip(jobs[small], jobs["full"], strict=True):
                assert (a.attack, a.label, a.eps) == (b.attack, b.label, b.eps)
                for key in ("steps", "max_iter", "restarts", "samples"):
                    if key in b.params:
                        assert a.params[key] <= b.params[key], (a.label, key)
        n = {s: suite_jobs(suite, dataset, s)[1] for s in SCALES}
        assert n["smoke"] <= n["cpu"] <= n["full"]


def test_cw_row_labels_map_to_the_papers_parameters():
    fidel = {j.label: j for j in suite_jobs(load_suite("fidel"), "mnist-5k", "full")[0]}
    assert fidel["CW-L2-HC"].params["confidence"] == 5.0
    assert fidel["CW-L2"].params["initial_const"] == 10.0  # MNIST
    assert fidel["CW-L2 (targeted)"].targeted == "all-others"
    assert fidel["CW-L2 (targeted)"].n == 113
    cifar = {j.label: j for j in suite_jobs(load_suite("fidel"), "cifar10", "full")[0]}
    assert cifar["CW-L2"].params["initial_const"] == 0.001
    # fidel Tables V/VI (000:243-268): every row of Table II's attacks, transferred
    transfer = {(j.label, j.targeted) for j in fidel.values() if j.source == "root"}
    assert transfer == {
        *((f"Transfer {a}", None) for a in ("CW-L2", "CW-L2-HC", "CW-L2-Strong", "PGD-L2")),
        *(
            (f"Transfer {a} (targeted)", "all-others")
            for a in ("CW-L2", "CW-L2-HC", "CW-L2-Strong", "PGD-L2", "HopSkipJump")
        ),
    }
    zan = {j.label: j for j in suite_jobs(load_suite("zantedeschi"), "mnist-5k", "full")[0]}
    assert zan["FGSM (minimal)"].params["eps_step"] == 0.05  # the authors' Table 2 notebook
    cw = zan["C&W"].params  # Carlini's l2_attack.py defaults, confidence 2.3 (001:155)
    assert (cw["steps"], cw["binary_search_steps"], cw["initial_const"]) == (10000, 9, 1e-3)
    assert (cw["stepsize"], cw["confidence"], cw["abort_early"]) == (0.01, 2.3, True)
    assert zan["Black-box C&W"].source == "arch:ibm-resnet"
    pesso = {j.label: j for j in suite_jobs(load_suite("pesso"), "mnist-5k", "full")[0]}
    assert (pesso["PGD"].source, pesso["PGD"].params["keep"]) == ("base", "max-loss")
    assert (pesso["PGD"].params["steps"], pesso["PGD"].params["restarts"]) == (50, 20)
    assert pesso["FGSM"].source == "base" and pesso["Adaptive"].source is None
    madnet = suite_jobs(load_suite("madnet"), "mnist-5k", "full")[0]
    assert all(j.only_correct for j in madnet)
    # the search bounded to the paper's L∞ ball (002:142), 1000 steps, one binary step
    boxed = {j.label: j.params for j in madnet if j.attack == "cw-l2-box" and j.source is None}
    assert set(boxed) == {"CW (c = 0.1)", "CW (c = 1)", "CW (c = 10)"}
    assert {(p["linf"], p["steps"], p["binary_search_steps"], p["initial_const"])
            for p in boxed.values()} == {(0.3, 1000, 1, c) for c in (0.1, 1.0, 10.0)}  # fmt: skip
    cpu = suite_jobs(load_suite("madnet"), "mnist-5k", "cpu")[0]
    assert {(j.params["steps"], j.n) for j in cpu if j.attack == "cw-l2-box"} == {(1000, 30)}


def _train_mnist_store(folder):
    db = open_db(folder / "m.db")
    common = dict(batch_size=128, weight_decay=0.0, seed=0, device="cpu")
    train_model(
        db, name="base", dataset="mnist-5k", arch="madry-mnist", epochs=2,
        optimizer="adam", lr=1e-3, **common,
    )  # fmt: skip
    harden_model(
        db, parent="base", defense="jacobian", name="hard", params={"lambda": 0.05},
        epochs=1, optimizer="adam", lr=1e-4, **common,
    )  # fmt: skip
    train_model(  # zantedeschi's black-box rows craft on an undefended ResNet
        db, name="resnet", dataset="mnist-5k", arch="ibm-resnet", epochs=1,
        optimizer="adam", lr=1e-3, **common,
    )  # fmt: skip
    db.close()


@pytest.fixture(scope="session")
def mnist_db(tmp_path_factory):
    """Trained once per test run (`conftest.built_once`); each worker attacks its own copy."""
    return built_once(tmp_path_factory, "mnist", _train_mnist_store) / "m.db"


@pytest.mark.parametrize("name", ["carlini-eval", *PAPERS])
def test_suite_runs_at_smoke_scale_on_mnist_5k(runner, mnist_db, name):
    args = ["attack", "--model", "hard", "--suite", name, "--scale", "smoke", "--device", "cpu"]
    result = runner.invoke(app, [*args, "--db", str(mnist_db)])
    assert result.exit_code == 0, result.output
    # Every row of the suite is now stored and complete: running it again does no work.
    suite = load_suite(name)
    jobs, n = suite_jobs(suite, "mnist-5k", "smoke")
    given = [j.label for j in jobs if j.source == "given"]  # wait for --proxy/--source-model
    for label in given:
        assert f"{label}: skipped" in " ".join(result.output.split())
    jobs = [j for j in jobs if j.source != "given"]
    db = open_db(mnist_db)
    model, _, row = load_model(db, "hard")
    again = run_jobs(
        db, model, row, jobs, n=n, seed=suite.get("seed", 0), batch_size=100,
        env_id=record_environment(db, "cpu"), scale="smoke",
        load_model=lambda m: load_model(db, m)[::2],
    )  # fmt: skip
    assert again and all(s.reused and s.status == "complete" for s in again)
    expected = sum(len(j.eps) * (j.n or n) * (9 if j.targeted == "all-others" else 1) for j in jobs)
    assert sum(s.n + s.init_failed for s in again) == expected  # failed starts are not in n
