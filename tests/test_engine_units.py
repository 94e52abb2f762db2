"""The engine's choices that decide which numbers a run stores, by hand and without a
trained model: per-batch seeds, which test samples a run attacks, and targets."""

import pytest
import torch

from advbench.engine import Instances, make_instances, select_samples
from advbench.errors import BadInput
from advbench.fit import batch_seed
from advbench.jobs import make_job


def test_batch_seeds_by_hand():
    # s ← s·1,000,003 + part + 1 (mod 2⁶³ − 1), part by part
    assert batch_seed(0, 1) == 2
    assert batch_seed(3, 11) == 3 * 1_000_003 + 12
    assert batch_seed(5, 2, 3) == (5 * 1_000_003 + 3) * 1_000_003 + 4 == 5_000_033_000_058
    seeds = {batch_seed(s, b) for s in range(4) for b in range(50)}
    assert len(seeds) == 200  # every (seed, batch) its own stream


def test_every_model_is_attacked_on_the_same_seeded_samples():
    labels = torch.zeros(360, dtype=torch.long)
    # pinned: a change of the sample selection moves every stored number
    assert select_samples(labels, 6, 0).tolist() == [44, 173, 113, 138, 235, 214]
    assert select_samples(labels, 6, 3).tolist() == [346, 20, 41, 126, 220, 270]
    # a larger n extends the same samples
    assert select_samples(labels, 40, 0)[:6].tolist() == select_samples(labels, 6, 0).tolist()


class _Split:
    def __init__(self, labels):
        self.labels = torch.tensor(labels)

    def __len__(self):
        return len(self.labels)


def test_targets_by_hand():
    test = _Split([2, 9, 4, 4, 0, 7])
    job = make_job("pgd-linf", [0.1], targeted="all-others")
    inst = make_instances(None, test, job, 2, 0, 10, "cpu")
    idx = select_samples(test.labels, 2, 0).tolist()
    assert inst.idx.tolist() == [idx[0]] * 9 + [idx[1]] * 9
    for i, first in enumerate(idx):
        y = int(test.labels[first])
        assert inst.target[9 * i : 9 * i + 9].tolist() == [(y + k) % 10 for k in range(1, 10)]
    assert inst.n_samples == 2 and len(inst) == 18

    job = make_job("pgd-linf", [0.1], targeted="random")
    a = make_instances(None, test, job, 6, 1, 10, "cpu")
    b = make_instances(None, test, job, 6, 1, 10, "cpu")
    assert torch.equal(a.target, b.target)  # seeded
    assert (a.target != test.labels[a.idx]).all()  # never the true label
    assert len(set(a.target.tolist())) > 1

    plain = make_instances(None, test, make_job("fgsm", [0.1]), 3, 0, 10, "cpu")
    assert isinstance(plain, Instances) and plain.target is None


def test_sources_resolve_to_the_rows_by_hand(tmp_path):
    """Where a transfer row crafts its examples (jobs.SOURCES), on a store of hand-made
    model rows: std ← jac (hardened) ← fs (a wrapper); res, res2 two undefended ResNets."""
    import json

    import pytest

    from advbench.engine import NoSource, resolve_source
    from advbench.errors import BadInput
    from advbench.store import open_db

    db = open_db(tmp_path / "s.db")

    def row(name, parent=None, defense=None, kind="train", arch="madry-mnist", dataset="digits"):
        return {"name": name, "parent": parent, "defense": defense, "arch": arch,
                "dataset": dataset, "config": json.dumps({"kind": kind}),
                "checksum": name * 4}  # fmt: skip

    db["models"].insert_all(
        [
            row("std"),
            row("jac", "std", "jacobian", "harden"),
            row("fs", "jac", "feature-squeezing", "wrap"),
            row("res", arch="ibm-resnet"),
            row("res-h", "res", "gda", "harden", arch="ibm-resnet"),
            row("cnn-m", arch="ibm-cnn", dataset="mnist-5k"),
        ]
    )
    get = db["models"].get

    def name(model, source):
        return resolve_source(db, get(model), source)["name"]

    assert name("fs", "root") == name("jac", "root") == name("std", "root") == "std"
    assert name("fs", "undefended") == "std"  # suites written before 0.1's rows
    assert name("fs", "parent") == "jac" and name("jac", "parent") == "std"
    assert name("fs", "base") == "jac"  # the model a wrapper wraps
    assert name("jac", "base") == "jac"  # not a wrapper: itself
    assert name("jac", "model:res") == "res" and name("jac", "res") == "res"
    assert name("jac", "arch:ibm-resnet") == "res"  # undefended, same data set only
    with pytest.raises(NoSource, match="no parent"):
        resolve_source(db, get("std"), "parent")
    with pytest.raises(NoSource, match="--source-model or --proxy"):
        resolve_source(db, get("jac"), "given")
    with pytest.raises(NoSource, match="no undefended ibm-cnn model on digits"):
        resolve_source(db, get("jac"), "arch:ibm-cnn")
    with pytest.raises(BadInput, match="proxy"):
        resolve_source(db, get("jac"), "proxy:resnet32")
    with pytest.raises(BadInput, match="unknown model"):
        resolve_source(db, get("jac"), "model:nope")
    db["models"].insert(row("res2", arch="ibm-resnet"))
    with pytest.raises(BadInput, match="2 undefended ibm-resnet models on digits"):
        resolve_source(db, get("jac"), "arch:ibm-resnet")


class _Threshold(torch.nn.Module):
    """Class 1 where the first input feature exceeds 0.5, else class 0."""

    classes = 2

    def forward(self, x):
        v = x.flatten(1)[:, :1]
        return torch.cat([0.5 - v, v - 0.5], 1)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_clip_judging_is_foolboxs_epsilons(norm):
    """judge=clip (fidel, foolbox 3): the found example's perturbation clipped onto the
    ε-ball, judged by the model; judge=minimal: the example counts only within ε."""
    from advbench.engine import Batch, judge_minimal

    x = torch.zeros(1, 4)
    raw = torch.tensor([[0.8, 0.0, 0.0, 0.0]])  # found at norm 0.8 (L2 and L∞ alike)
    model = _Threshold()
    b = Batch([0], torch.tensor([0]), x, torch.tensor([0]), None, torch.tensor([0]))
    eps = [0.3, 0.6, 1.0]
    minimal, min_norm = judge_minimal(model, b, raw, eps, norm)
    clip, _ = judge_minimal(model, b, raw, eps, norm, judge="clip")
    assert float(min_norm[0]) == pytest.approx(0.8)
    assert [int(minimal[e][1][0]) for e in eps] == [0, 0, 1]  # only once 0.8 <= ε
    assert [int(clip[e][1][0]) for e in eps] == [0, 1, 1]  # 0.6 along δ already flips it
    assert float(clip[0.6][0][0, 0]) == pytest.approx(0.6)  # the clipped example itself
    assert torch.equal(clip[1.0][0], raw)  # inside the ball: the example as found


def test_clip_judging_only_for_l2_and_linf_minimal_attacks():
    with pytest.raises(BadInput, match="judge clip is for L2 and L∞ minimal attacks; pgd-l2"):
        make_job("pgd-l2", [1.0], judge="clip")
    with pytest.raises(BadInput, match="jsma"):
        make_job("jsma", [0.1], judge="clip")
    assert make_job("cw-l2", [1.0], judge="clip").judge == "clip"


class _DarkIsOne(torch.nn.Module):
    """Class 1 where the first input feature is below 0.2 (a black image), else class 0."""

    classes = 2

    def forward(self, x):
        v = x.flatten(1)[:, :1]
        return torch.cat([v - 0.2, 0.2 - v], 1)


def test_clip_judges_a_failed_search_as_foolboxs_black_start():
    """foolbox's C&W returns its all-zero start where it found nothing, and its `epsilons`
    clip that toward black: at a large enough ε the clipped image can be misclassified.
    The adapters hand the engine x there; clip judging must use foolbox's zeros."""
    from advbench.engine import Batch, judge_minimal

    x = torch.tensor([[0.4, 0.0, 0.0, 0.0]])
    model = _DarkIsOne()
    b = Batch([0], torch.tensor([0]), x, torch.tensor([0]), None, torch.tensor([0]))
    eps = [0.1, 0.3]
    minimal, min_norm = judge_minimal(model, b, x.clone(), eps, "l2")  # nothing found
    clip, _ = judge_minimal(model, b, x.clone(), eps, "l2", judge="clip")
    assert torch.isinf(min_norm[0])
    assert [int(minimal[e][1][0]) for e in eps] == [0, 0]
    assert [int(clip[e][1][0]) for e in eps] == [0, 1]  # 0.4 - 0.3 = 0.1 < 0.2
    assert float(clip[0.3][0][0, 0]) == pytest.approx(0.1)
