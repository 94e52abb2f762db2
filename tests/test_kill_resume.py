"""kill -9 and resume: a run of each attack that draws random numbers, and a training, are
killed with SIGKILL in a subprocess part-way, then resumed; what they store equals an
uninterrupted run's (every sample column; the weights' checksum, bit for bit).

The kill is the child sending itself SIGKILL at a chosen point, so the test is exact about
where it dies: inside the attack of the second batch, or inside its database transaction
after the first ε's rows were written (a minimal attack writes every ε of a batch in one
transaction). The engine seeds every batch from (seed, batch), so a resumed run draws what
an uninterrupted one drew.
"""

import json
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from advbench.catalogue import load_model
from advbench.engine import run_jobs
from advbench.env import record_environment
from advbench.jobs import make_job
from advbench.store import open_db
from advbench.train import train_model

CW = {"steps": 10, "binary_search_steps": 2, "stepsize": 0.05, "initial_const": 1.0}
STOCHASTIC = {  # attack → (parameters, ε): each draws random numbers
    "pgd-linf": ({"steps": 3}, [0.1, 0.3]),
    "apgd": ({"steps": 3}, [0.1, 0.3]),
    "jsma": ({}, [0.05, 0.2]),  # untargeted: a random target per sample
    "hsj": ({"max_iter": 2, "max_eval": 30, "init_eval": 5, "init_size": 10}, [1.0, 3.0]),
    "noise": ({}, [0.1, 0.3]),
    "rfgsm": ({}, [0.1, 0.3]),
    "cw-l2-restarts": ({**CW, "restarts": 2, "radius": 0.5}, [1.0, 2.0]),
    "cw-l2-eot": ({**CW, "samples": 2}, [1.0, 2.0]),
}
N, BATCH = 8, 4  # two batches per run
COLUMNS = "run_id, position, idx, label, target, clean_pred, adv_pred, success, l0, l2, linf, "
COLUMNS += "x_l2, eps, min_norm, fwd, bwd, trace, start_idx, init_failed"

CHILD = """
import os, signal, sys, torch
torch.set_num_threads(int(os.environ["ADVBENCH_TEST_THREADS"]))
from advbench.attacks import ATTACKS
from advbench.engine import run_jobs
from advbench.jobs import make_job
from advbench.env import record_environment
from advbench.store import open_db
from advbench.catalogue import load_model

path, attack, params, eps, where, n, batch = sys.argv[1:8]
calls = {"attack": 0, "insert": 0}
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
real_factory = ATTACKS.get(attack).factory

if where == "attack":  # inside the second batch's attack
    def wrapped(params):
        run = real_factory(params)
        def attack_(*a, **k):
            calls["attack"] += 1
            if calls["attack"] == 2:
                die()
            return run(*a, **k)
        return attack_
    object.__setattr__(ATTACKS.get(attack), "factory", wrapped)

db = open_db(path)
if where == "transaction":  # after the first rows of the second batch, before commit
    table = type(db["samples"])
    real_insert = table.insert_all
    def insert_all(self, *a, **k):
        calls["insert"] += self.name == "samples"
        out = real_insert(self, *a, **k)
        if calls["insert"] == 3:  # batch 1 wrote two ε; this is batch 2's first
            die()
        return out
    table.insert_all = insert_all

import json
model, _, row = load_model(db, "std")
job = make_job(attack, json.loads(eps), json.loads(params))
run_jobs(db, model, row, [job], n=int(n), seed=3, batch_size=int(batch),
         env_id=record_environment(db, "cpu"))
print("finished without being killed")
"""


def _rows(db):
    return list(db.execute(f"select {COLUMNS} from samples order by run_id, position"))


def _run(path, attack):
    params, eps = STOCHASTIC[attack]
    db = open_db(path)
    model, _, row = load_model(db, "std")
    job = make_job(attack, eps, params)
    out = run_jobs(db, model, row, [job], n=N, seed=3, batch_size=BATCH,
                   env_id=record_environment(db, "cpu"))  # fmt: skip
    return db, out


def _copy(db_copy, tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(db_copy.parent, dst)
    return dst / db_copy.name


def _kill_at(path, attack, where):
    params, eps = STOCHASTIC[attack]
    args = [sys.executable, "-c", textwrap.dedent(CHILD), str(path), attack,
            json.dumps(params), json.dumps(eps), where, str(N), str(BATCH)]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("attack", sorted(STOCHASTIC))
def test_a_killed_attack_resumes_to_the_uninterrupted_rows(db_copy, tmp_path, attack):
    ref_db, _ = _run(_copy(db_copy, tmp_path, "ref"), attack)
    reference = _rows(ref_db)
    assert len(reference) == 2 * N

    minimal = attack.startswith(("cw", "hsj", "jsma"))
    where = "transaction" if minimal else "attack"
    path = _copy(db_copy, tmp_path, "killed")
    child = _kill_at(path, attack, where)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    db = open_db(path)
    # exactly the first batch survived: for each ε of a minimal attack (one transaction),
    # for the first ε of a budget attack (killed inside its second batch)
    assert db["samples"].count == (2 if minimal else 1) * BATCH
    assert {r["status"] for r in db["runs"].rows} == {"running"}
    _, resumed = _run(path, attack)
    assert [s.status for s in resumed] == ["complete", "complete"]
    assert not any(s.reused for s in resumed)
    assert _rows(db) == reference


@pytest.mark.parametrize("where", ["step", "save"])
def test_a_killed_training_resumes_to_the_same_weights(tmp_path, where):
    """Killed inside an optimiser step (the batches since the last save are redone), or
    right after a state save wrote its weights (0.1.0 wrote the counters to a second file
    after them: a kill between the two resumed new weights with old counters)."""
    args = dict(dataset="digits", arch="madry-mnist", epochs=2, batch_size=128,
                optimizer="adam", lr=1e-3, weight_decay=0.0, seed=4, device="cpu")  # fmt: skip
    (tmp_path / "ref").mkdir(), (tmp_path / "killed").mkdir()
    ref = train_model(open_db(tmp_path / "ref" / "a.db"), name="t", **args).row

    child = textwrap.dedent(
        """
        import json, os, signal, sys, torch
        torch.set_num_threads(int(os.environ["ADVBENCH_TEST_THREADS"]))
        import advbench.fit as fit
        from advbench.store import open_db
        from advbench.train import train_model

        die = lambda: os.kill(os.getpid(), signal.SIGKILL)
        clock = [0.0]
        def monotonic():  # a fake clock: 11 s a call, so state is saved every few batches
            clock[0] += 11.0
            return clock[0]
        fit.time.monotonic = monotonic
        count = [0]
        if sys.argv[2] == "step":
            real_step = torch.optim.Adam.step
            def step(self, *a, **k):  # killed inside the 17th batch (the second epoch)
                count[0] += 1
                if count[0] == 17:
                    die()
                return real_step(self, *a, **k)
            torch.optim.Adam.step = step
        else:
            real_save = fit.save_tensors
            def save(*a, **k):  # killed right after the 5th state save wrote its weights
                real_save(*a, **k)
                count[0] += 1
                if count[0] == 5:
                    die()
            fit.save_tensors = save
        train_model(open_db(sys.argv[1]), name="t", **json.loads(sys.argv[3]))
        """
    )
    path = tmp_path / "killed" / "a.db"
    proc = subprocess.run([sys.executable, "-c", child, str(path), where, json.dumps(args)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    folder = tmp_path / "killed" / "models" / ".partial"
    partial = list(folder.glob("*.partial.safetensors"))
    assert len(partial) == 1  # state was saved before the kill, and no model row exists
    db = open_db(path)
    assert db["models"].count == 0
    resumed = train_model(db, name="t", **args).row
    assert resumed["checksum"] == ref["checksum"]

    def losses(row):  # every term and accuracy per epoch (not the timings)
        return [{k: v for k, v in e.items() if k not in ("samples_per_s", "seconds")} for e in
                json.loads(row["history"])]  # fmt: skip

    assert losses(resumed) == losses(ref)
    # the training time counts the killed session too: its epoch ran on the child's fake
    # clock (11 s a call, so well over 100 s), where the resumed process took seconds
    from advbench.report.budgets import training_time

    epochs = json.loads(resumed["history"])
    assert epochs[0]["seconds"] > 100 > resumed["wall_s"]
    assert training_time(resumed) == pytest.approx(sum(e["seconds"] for e in epochs))
    assert training_time(ref) == ref["wall_s"]  # uninterrupted: the process's time stands
    assert not list(folder.glob("*"))  # cleared when done
