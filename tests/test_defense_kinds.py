"""Inference-time wrappers (attacked end to end), the architecture defense and --from-scratch,
fidel's λ=auto protocol, and GDA's effect on loss sensitivity."""

import json
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from advbench import data
from advbench.catalogue import load_model
from advbench.cli import app
from advbench.defenses.inference import PNML, FeatureSqueezing, median_filter, squeeze_bits
from advbench.errors import BadInput
from advbench.store import open_db
from advbench.train import harden_model

KW = dict(batch_size=64, optimizer=None, lr=None, seed=0, device="cpu")


def _harden(db, defense, name, params=None, epochs=1, **kw):
    return harden_model(
        db, parent=kw.pop("parent", "std"), defense=defense, name=name, params=params or {},
        epochs=epochs, **{**KW, **kw},
    )  # fmt: skip


def _test_batch(n=200):
    return data.load("digits", "test").get(torch.arange(n))


# --- pNML ---------------------------------------------------------------------------------


class Linear(nn.Module):
    def __init__(self, d=5, c=3):
        super().__init__()
        torch.manual_seed(3)
        self.lin = nn.Linear(d, c)
        self.classes, self.input_shape = c, (1, 1, d)

    def forward(self, x):
        return self.lin(x.flatten(1))


def test_pnml_follows_equations_9_to_12_on_a_linear_model():
    base, lam = Linear(), 0.05
    x = torch.rand(4, 1, 1, 5, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    got = F.softmax(PNML(base, lam)(x), 1)
    w, b = base.lin.weight.detach(), base.lin.bias.detach()
    want = torch.zeros(4, 3)
    for i in range(4):
        xi = x[i].flatten()
        for y in range(3):
            p = F.softmax(w @ xi + b, 0)
            grad = w.T @ (p - F.one_hot(torch.tensor(y), 3).float())  # ∇x CE(x, y)
            refined = (xi - lam * grad.sign()).clamp(0, 1)  # eq. 9
            want[i, y] = F.softmax(w @ refined + b, 0)[y]  # eq. 11
        want[i] /= want[i].sum()  # eq. 12
    assert torch.allclose(got, want, atol=1e-6)


def test_pnml_refinement_step_is_independent_of_its_iteration_count():
    """pesso Fig. 4 ("Table 4"): 4 × 0.01 inside λ 0.03 — written out by hand."""
    base, lam = Linear(), 0.03
    x = torch.rand(3, 1, 1, 5, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1
    got = F.softmax(PNML(base, lam, iterations=4, step=0.01)(x), 1)
    w, b = base.lin.weight.detach(), base.lin.bias.detach()
    want = torch.zeros(3, 3)
    for i in range(3):
        xi = x[i].flatten()
        for y in range(3):
            cur = xi.clone()
            for _ in range(4):
                p = F.softmax(w @ cur + b, 0)
                grad = w.T @ (p - F.one_hot(torch.tensor(y), 3).float())
                cur = (xi + (cur - 0.01 * grad.sign() - xi).clamp(-lam, lam)).clamp(0, 1)
            want[i, y] = F.softmax(w @ cur + b, 0)[y]
        want[i] /= want[i].sum()
    assert torch.allclose(got, want, atol=1e-6)
    short = F.softmax(PNML(base, lam, iterations=2, step=0.01)(x), 1)  # 0.02 of the 0.03
    assert not torch.allclose(F.softmax(PNML(base, lam, iterations=2)(x), 1), short, atol=1e-4)


def test_pnml_with_lambda_zero_is_the_base_model(trained_db):
    base, _, _ = load_model(open_db(trained_db), "std")
    x, _ = _test_batch()
    with torch.no_grad():
        ref = F.softmax(base(x), 1)
    got = F.softmax(PNML(base, 0.0)(x), 1)
    assert torch.allclose(got, ref, atol=1e-5)
    assert torch.equal(got.argmax(1), ref.argmax(1))


def test_pnml_top_k_keeps_k_hypotheses(trained_db):
    base, _, _ = load_model(open_db(trained_db), "std")
    x, _ = _test_batch(20)
    q = F.softmax(PNML(base, 0.1, top_k=3)(x), 1)
    assert torch.allclose(q.sum(1), torch.ones(20), atol=1e-5)
    assert int((q > 1e-6).sum(1).max()) <= 3


def test_an_attack_on_a_stored_pnml_model_attacks_the_wrapper(db_copy, runner):
    db = open_db(db_copy)
    stored = _harden(db, "pnml", "std+pnml", {"lambda": "0.3"})
    row = stored.row
    assert row["parent"] == "std" and json.loads(row["config"])["kind"] == "wrap"
    assert row["checksum"] != db["models"].get("std")["checksum"]
    wrapped, _, _ = load_model(db, "std+pnml")
    assert isinstance(wrapped, PNML)
    args = ["attack", "--db", str(db_copy), "--model", "std+pnml", "--attack", "fgsm"]
    res = runner.invoke(app, [*args, "--eps", "0.1", "--n", "120", "--seed", "0"])
    assert res.exit_code == 0, res.output
    run = next(db["runs"].rows_where("model = ?", ["std+pnml"]))
    assert run["model_checksum"] == row["checksum"]
    samples = list(db["samples"].rows_where("run_id = ?", [run["id"]], order_by="position"))
    test = data.load("digits", "test")
    x, _ = test.get(torch.tensor([s["idx"] for s in samples]))
    base, _, _ = load_model(db, "std")
    with torch.no_grad():
        base_pred = base(x).argmax(1)
    wrapped_pred = wrapped(x).argmax(1)
    stored_clean = torch.tensor([s["clean_pred"] for s in samples])
    assert torch.equal(stored_clean, wrapped_pred)  # the wrapper's predictions were judged
    assert not torch.equal(wrapped_pred, base_pred)  # λ = 0.3 changes some: not the base


def test_a_wrapper_refuses_a_changed_parent_or_description(db_copy):
    db = open_db(db_copy)
    _harden(db, "feature-squeezing", "fs")
    path = db_copy.parent / "models" / "fs.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "params": {"bits": 8, "median": 0}}))
    with pytest.raises(BadInput, match="changed"):
        load_model(db, "fs")
    path.write_text(json.dumps(doc, indent=2, sort_keys=True))
    load_model(db, "fs")  # the original bytes load again
    harden_model(
        db, parent="std", defense="jacobian", name="jp", params={}, epochs=1, **KW
    )  # fmt: skip
    _harden(db, "pnml", "jp+pnml", parent="jp")
    _harden(db, "jacobian", "jp", {"lambda": "0.2"}, force=True)  # parent retrained
    with pytest.raises(BadInput, match="re-run"):
        load_model(db, "jp+pnml")


# --- feature squeezing --------------------------------------------------------------------


def test_squeezing_functions():
    x = torch.tensor([[[[0.1, 0.49, 0.51, 0.9]]]])
    assert squeeze_bits(x, 1).flatten().tolist() == [0.0, 0.0, 1.0, 1.0]
    assert torch.allclose(squeeze_bits(x, 2) * 3, torch.tensor([[[[0.0, 1.0, 2.0, 3.0]]]]))
    img = torch.zeros(1, 1, 5, 5)
    img[0, 0, 2, 2] = 1.0  # one bright pixel: a 3x3 median removes it
    assert float(median_filter(img, 3).abs().sum()) == 0.0
    assert median_filter(torch.ones(2, 3, 4, 4), 2).shape == (2, 3, 4, 4)


def test_white_box_attacks_see_feature_squeezing_straight_through_unless_masked(db_copy):
    """zantedeschi attacked ART's squeezer, whose backward pass is the identity: FGSM moves
    the input and hurts. The true (masked) gradient of rounding is zero: FGSM does not move,
    and only BPDA gets through. Each run records the gradient it followed."""
    from advbench.engine import run_jobs
    from advbench.env import record_environment
    from advbench.jobs import make_job

    db = open_db(db_copy)
    _harden(db, "feature-squeezing", "fs")
    model, _, row = load_model(db, "fs")
    assert isinstance(model, FeatureSqueezing)
    x, _ = _test_batch(8)
    env = record_environment(db, "cpu")
    clean = model(x).argmax(1)
    grads = {}
    for mode in ("straight-through", "masked"):
        model.gradient = mode
        assert torch.equal(model(x).argmax(1), clean)  # the prediction is the same
        xg = x.clone().requires_grad_(True)
        F.cross_entropy(model(xg), torch.zeros(8, dtype=torch.long)).backward()
        grads[mode] = float(xg.grad.abs().sum())
    assert grads["masked"] == 0.0 < grads["straight-through"]

    def run(attack, gradient):
        (s,) = run_jobs(
            db, model, row, [make_job(attack, [0.3], {})], n=150, batch_size=75, seed=0,
            env_id=env, gradient=gradient,
        )  # fmt: skip
        linf = max(r["linf"] for r in db["samples"].rows_where("run_id = ?", [s.id]))
        return s, db["runs"].get(s.id)["gradient"], linf

    through, g1, moved = run("fgsm", None)
    masked, g2, still = run("fgsm", "masked")
    assert (g1, g2) == ("straight-through", "masked") and through.id != masked.id
    assert moved == pytest.approx(0.3) and still == 0.0
    assert through.accuracy < masked.accuracy - 0.2, (through.accuracy, masked.accuracy)
    pgd, _, _ = run("pgd-linf", "masked")
    bpda, _, _ = run("bpda-pgd", "masked")
    assert bpda.accuracy < pgd.accuracy - 0.2
    with pytest.raises(BadInput, match="valid choices: masked, straight-through"):
        run("fgsm", "bpda")
    std, _, std_row = load_model(db, "std")
    with pytest.raises(BadInput, match="no non-differentiable step"):
        run_jobs(db, std, std_row, [make_job("fgsm", [0.3])], n=8, batch_size=8, seed=0,
                 env_id=env, gradient="masked")  # fmt: skip


# --- architecture, from scratch -----------------------------------------------------------


def test_brelu_fine_tunes_the_parent_weights_or_trains_from_scratch(db_copy):
    db = open_db(db_copy)
    parent, _, _ = load_model(db, "std")
    tuned = _harden(db, "brelu", "b0", {"t": "0.5"}, epochs=0)
    scratch = _harden(db, "brelu", "b1", {"t": "0.5"}, epochs=0, from_scratch=True)
    m0, spec0, _ = load_model(db, "b0")
    m1, _, _ = load_model(db, "b1")
    assert spec0.activation == "brelu" and spec0.activation_param == 0.5
    ref = parent.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in m0.state_dict().items())
    assert not all(torch.equal(v, ref[k]) for k, v in m1.state_dict().items())
    assert json.loads(scratch.row["config"])["from_scratch"] is True
    assert "from_scratch" not in json.loads(tuned.row["config"])
    x, _ = _test_batch(50)
    with torch.no_grad():
        assert not torch.allclose(m0(x), parent(x))  # same weights, bounded activations


def test_from_scratch_defaults_to_the_parents_recipe(db_copy):
    db = open_db(db_copy)
    stored = harden_model(
        db, parent="std", defense="jacobian", name="reg", params={}, epochs=None,
        batch_size=64, optimizer=None, lr=None, seed=0, device="cpu", from_scratch=True,
    )  # fmt: skip
    cfg, parent_cfg = (json.loads(r["config"]) for r in (stored.row, db["models"].get("std")))
    assert (cfg["epochs"], cfg["lr"], cfg["optimizer"]) == (
        parent_cfg["epochs"],
        parent_cfg["lr"],
        parent_cfg["optimizer"],
    )
    assert len(json.loads(stored.row["history"])) == parent_cfg["epochs"]


# --- λ = auto -----------------------------------------------------------------------------


def test_lambda_auto_follows_fidels_protocol_and_is_recorded(db_copy, runner):
    args = ["harden", "--db", str(db_copy), "--model", "std", "--defense", "jacobian"]
    res = runner.invoke(app, [*args, "--param", "lambda=auto", "--epochs", "1", "--name", "ja"])
    assert res.exit_code == 0, res.output
    assert "λ0" in res.output
    db = open_db(db_copy)
    row = db["models"].get("ja")
    (rec,) = json.loads(row["config"])["lambda_search"]
    assert rec["lambda0"] == pytest.approx(math.log2(10) / rec["r0"])
    lo, hi = rec["span"]
    assert lo == pytest.approx(rec["lambda0"] / math.sqrt(10))
    assert len(rec["trials"]) >= 2
    assert all(lo * 0.999 <= t["lambda"] <= hi * 1.001 for t in rec["trials"])
    kept = [t["lambda"] for t in rec["trials"] if t["ok"]]
    assert rec["chosen"] == (max(kept) if kept else min(t["lambda"] for t in rec["trials"]))
    assert json.loads(row["defense_config"])["lambda"] == rec["chosen"]
    assert json.loads(row["config"])["params"]["lambda"] == "auto"
    again = runner.invoke(app, [*args, "--param", "lambda=auto", "--epochs", "1", "--name", "ja"])
    assert "already stored" in again.output  # the request is the identity: no new search


def test_lambda_auto_backs_off_when_the_cross_entropy_reaches_a_random_guess(db_copy):
    """With a huge learning rate every trial collapses; the protocol then keeps the
    smallest λ tried and says so."""
    db = open_db(db_copy)
    stored = harden_model(
        db, parent="std", defense="input-gradient", name="ig", params={"lambda": "auto"},
        epochs=1, batch_size=64, optimizer="sgd", lr=50.0, seed=0, device="cpu",
    )  # fmt: skip
    (rec,) = json.loads(stored.row["config"])["lambda_search"]
    assert not rec["within_threshold"]
    assert rec["chosen"] == pytest.approx(rec["lambda0"] / math.sqrt(10))
    assert [t["lambda"] for t in rec["trials"]] == pytest.approx(
        [rec["lambda0"], rec["lambda0"] / math.sqrt(10)]
    )


def test_an_interrupted_lambda_search_keeps_its_finished_trials(db_copy, tmp_path, monkeypatch):
    from advbench import fit as fit_module
    from advbench.defenses import auto
    from advbench.fit import FitConfig, Resume

    db = open_db(db_copy)
    model, _, _ = load_model(db, "std")
    train = data.load("digits", "train")
    resume = Resume(tmp_path, "m-abc")
    cfg = FitConfig(1, 64, "adam", 1e-4, 0.0, 0, "cpu")
    params = {"lambda": "auto", "projections": 1, "exact": False, "form": "hoffman"}
    kw = dict(component="jacobian", params=params, weight="lambda", classes=10)
    kw.update(fit_cfg=cfg, resume=resume)
    first, rec = auto.search_weight(model, train, **kw)
    assert resume.notes().exists() and len(json.loads(resume.notes().read_text())) == len(
        rec["trials"]
    )

    def no_training(*a, **k):
        raise AssertionError("a finished trial was trained again")

    monkeypatch.setattr(fit_module, "fit", no_training)
    again, rec2 = auto.search_weight(model, train, **kw)
    assert again == first and rec2["trials"] == rec["trials"]
    resume.clear()
    assert not resume.notes().exists()
