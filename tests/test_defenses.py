"""Training-time defenses: each term against a hand computation, composition, and each
defense hardening a stored model end to end (parent and configuration recorded)."""

import json

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from advbench import defenses
from advbench.catalogue import load_model
from advbench.cli import app
from advbench.defenses import training as T
from advbench.errors import BadInput
from advbench.store import open_db
from advbench.train import harden_model


class Linear(nn.Module):
    def __init__(self, d=6, c=4):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(d, c)
        self.classes, self.input_shape = c, (1, 1, d)

    def forward(self, x):
        return self.lin(x.flatten(1))


def _batch(n=5, d=6, c=4):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 1, d, generator=g), torch.randint(0, c, (n,), generator=g)


def test_input_gradient_equals_hand_computation_on_a_linear_model():
    model, (x, y) = Linear(), _batch()
    x = x.requires_grad_(True)
    logits = model(x)
    got = T.input_gradient(model, x, logits, y)
    w = model.lin.weight.detach()
    p = F.softmax(logits.detach(), 1)
    grads = (p - F.one_hot(y, 4)) @ w  # ∇x CE_i = Wᵀ (p_i − e_y)
    assert float(got) == pytest.approx(float(grads.pow(2).sum(1).mean()), rel=1e-5)


def test_cross_lipschitz_equals_hand_computation_on_a_linear_model():
    model, (x, y) = Linear(), _batch()
    x = x.requires_grad_(True)
    got = T.cross_lipschitz(model, x, model(x), y)
    w = model.lin.weight.detach()
    pairs = sum(float((w[k] - w[j]).pow(2).sum()) for k in range(4) for j in range(4))
    assert float(got) == pytest.approx(pairs / 16, rel=1e-5)


def test_label_smoothing_targets():
    model, (x, y) = Linear(), _batch()
    b = T.label_smoothing(true_weight=0.9)(model, T.Batch(x, y, torch.ones(5), y, 5))
    assert torch.allclose(b.target.sum(1), torch.ones(5))
    assert torch.allclose(b.target[torch.arange(5), y], torch.full((5,), 0.9))
    assert float(b.target.min()) == pytest.approx(0.1 / 3)


def test_gda_adds_clipped_noisy_copies():
    model, (x, y) = Linear(), _batch()
    b = T.gda(copies=3, sigma=0.3)(model, T.Batch(x, y, torch.ones(5), y, 5))
    assert b.x.shape[0] == 20 and torch.equal(b.x[:5], x) and torch.equal(b.labels[15:], y)
    assert b.x.min() >= 0 and b.x.max() <= 1 and not torch.equal(b.x[5:10], x)


def test_fgsm_at_rows_and_weights():
    model, (x, y) = Linear(), _batch()
    b = T.fgsm_at(eps=0.1, ratio=0.3)(model, T.Batch(x, y, torch.ones(5), y, 5))
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(xg), y), xg)
    assert torch.allclose(b.x[5:], (x + 0.1 * g.sign()).clamp(0, 1))
    assert torch.allclose(b.weight, torch.tensor([0.7] * 5 + [0.3] * 5))
    only = T.fgsm_at(eps=0.1, ratio=1.0)(model, T.Batch(x, y, torch.ones(5), y, 5))
    assert only.x.shape[0] == 5 and only.clean == 0


def test_weighted_cross_entropy_of_a_composition():
    model, (x, y) = Linear(), _batch()
    loss = defenses.loss_for("fgsm-at", {"eps": 0.1, "ratio": 0.3})
    terms = loss(model, x, y)
    b = T.fgsm_at(eps=0.1, ratio=0.3)(model, T.Batch(x, y, torch.ones(5), y, 5))
    rows = F.cross_entropy(model(b.x), b.labels, reduction="none")
    assert float(terms["ce"]) == pytest.approx(float(0.7 * rows[:5].mean() + 0.3 * rows[5:].mean()))
    assert terms["_logits"].shape == (5, 4)


def test_vat_is_zero_without_a_perturbation_and_positive_with_one():
    model, (x, y) = Linear(), _batch()
    x = x.requires_grad_(True)
    logits = model(x)
    zero = T.vat(eps=0.0, xi=1e-6, iterations=1)(model, x, logits, y)
    assert float(zero) == pytest.approx(0, abs=1e-6)
    assert float(T.vat(eps=2.0, xi=1e-6, iterations=1)(model, x, logits, y)) > 0


def test_composition_parameters_are_namespaced():
    got = defenses.resolve("jacobian+fgsm-at", {"jacobian.lambda": "0.2", "eps": "0.1"})
    assert got["jacobian"]["lambda"] == 0.2 and got["fgsm-at"]["eps"] == 0.1
    both = defenses.resolve("input-gradient+jacobian", {"lambda": "3"})
    assert both["input-gradient"]["lambda"] == both["jacobian"]["lambda"] == 3.0
    with pytest.raises(BadInput, match="gda"):
        defenses.resolve("jacobian+fgsm-at", {"gda.sigma": "1"})
    with pytest.raises(BadInput, match="magic"):
        defenses.resolve("jacobian+magic", {})
    terms = defenses.loss_for("jacobian+fgsm-at", got)(Linear(), *_batch())
    assert set(terms) == {"ce", "jacobian", "_logits"}


FAST = {
    "pgd-at": {"steps": "2", "step_size": "0.1"},
    "gda": {"copies": "2"},
    "gda+brelu": {"copies": "2"},
    "mad+pgd-at": {"steps": "2", "step_size": "0.1"},
}
HARDEN = [
    *[n for n in defenses.DEFENSES.names()],
    "combined",
    "jacobian+fgsm-at",
    "input-gradient+fgsm-at",
    "cross-lipschitz+fgsm-at",
    "gda+brelu",
    "mad+pgd-at",
]


@pytest.mark.parametrize("defense", HARDEN)
def test_each_defense_hardens_a_stored_model(db_copy, defense):
    db = open_db(db_copy)
    raw = FAST.get(defense, {})
    stored = harden_model(
        db, parent="std", defense=defense, name="h", params=raw, epochs=1, batch_size=128,
        optimizer=None, lr=None, weight_decay=0.0, seed=0, device="cpu",
    )  # fmt: skip
    row = stored.row
    assert row["parent"] == "std" and row["defense"] == defense
    assert json.loads(row["defense_config"]) == defenses.resolve(defense, raw)
    history = json.loads(row["history"])
    if defenses.kind(defense) == "inference-time":  # a wrapper: nothing trained
        assert history == [] and json.loads(row["config"])["kind"] == "wrap"
    else:  # one epoch, each loss term its own column
        assert len(history) == 1 and "ce" in history[0]
        parts = defenses.loss_for(defense, defenses.resolve(defense, raw)).parts
        assert {p.name for p in parts if p.regulariser} <= set(history[0])
    assert row["clean_accuracy"] > 0.5
    model, spec, _ = load_model(db, "h")  # stored and loadable
    if "brelu" in defense:
        assert spec.activation == "brelu" and json.loads(row["spec"])["activation"] == "brelu"


def test_harden_list_names_every_defense(runner):
    out = runner.invoke(app, ["harden", "--list"]).output
    for name in defenses.DEFENSES.names():
        assert name in out


def test_paper_settings_follow_the_data_set_family():
    assert defenses.resolve("gda", {}, "mnist")["sigma"] == 0.3
    assert defenses.resolve("gda", {}, "cifar")["sigma"] == 0.05
    assert defenses.resolve("gda", {"sigma": "0.2"}, "cifar")["sigma"] == 0.2  # the user wins
    assert defenses.resolve("jacobian", {}, "cifar")["lambda"] == 0.1
    combined = defenses.resolve("combined", {}, "cifar")  # fidel Table I: 10 and 0.01
    assert combined["nsloss"]["lambda"] == 10.0 and combined["jacobian"]["lambda"] == 0.01
    assert defenses.resolve("combined", {"jacobian.lambda": "0.3"}, "cifar")["jacobian"][
        "lambda"
    ] == pytest.approx(0.3)
    assert defenses.defaults_for("nsloss", family="cifar")["epochs"] == 100
    assert defenses.defaults_for("nsloss", family="mnist")["epochs"] == 20
    assert defenses.defaults_for("mad", from_scratch=True)["optimizer"] == "sgd"


def test_jakubovitz_recipe_is_reachable_by_name(db_copy, runner):
    """003:189-191: λ 0.1 / 0.5, Adam batch 500 (MNIST), RMSProp batch 128 (CIFAR-10); the
    default jacobian stays fidel's (λ 0.01, Hoffman projections, Adam 1e-4, 20 epochs)."""
    fidel = defenses.resolve("jacobian", {}, "mnist")
    assert (fidel["lambda"], fidel["form"]) == (0.01, "hoffman")
    assert defenses.defaults_for("jacobian", family="mnist")["epochs"] == 20
    mnist = defenses.resolve("jacobian", {}, "mnist", "jakubovitz")
    assert (mnist["lambda"], mnist["form"], mnist["exact"]) == (0.1, "jakubovitz", True)
    assert defenses.resolve("jacobian", {}, "cifar", "jakubovitz")["lambda"] == 0.5
    train = defenses.defaults_for("jacobian", family="mnist", recipe="jakubovitz")
    assert (train["optimizer"], train["batch_size"]) == ("adam", 500)
    train = defenses.defaults_for("jacobian", family="cifar", recipe="jakubovitz")
    assert (train["optimizer"], train["batch_size"]) == ("rmsprop", 128)
    both = defenses.resolve("jacobian+fgsm-at", {}, "mnist", "jakubovitz")
    assert both["jacobian"]["lambda"] == 0.1 and both["fgsm-at"]["eps"] == 0.3
    # a recipe without params keeps the family's: CIFAR adversarial training at ε 0.05
    assert defenses.resolve("fgsm-at", {}, "cifar", "jakubovitz")["eps"] == 0.05
    scratch = defenses.defaults_for("jacobian", True, "cifar", "jakubovitz")
    assert scratch == {"optimizer": "rmsprop", "batch_size": 128}  # regular training
    with pytest.raises(BadInput, match="vat has no recipes"):
        defenses.resolve("vat", {}, "mnist", "jakubovitz")
    db = open_db(db_copy)
    stored = harden_model(
        db, parent="std", defense="jacobian", name="jk", params={}, epochs=0, batch_size=None,
        optimizer=None, lr=None, seed=0, device="cpu", recipe="jakubovitz",
    )  # fmt: skip
    config = json.loads(stored.row["config"])
    assert (config["recipe"], config["batch_size"], config["params"]["lambda"]) == (
        "jakubovitz",
        500,
        0.1,
    )
    listing = runner.invoke(app, ["harden", "--list"]).output
    assert "--recipe jakubovitz" in listing
    bad = runner.invoke(app, ["harden", "--model", "std", "--defense", "gda", "--recipe", "x"])
    assert bad.exit_code == 2 and "--recipe 'x'" in bad.output


def test_regularisers_see_only_the_clean_inputs_when_combined_with_adversarial_training():
    """003:266: combined with adversarial training, the Jacobian is regularised at the
    original inputs, not at the adversarial rows the batch also holds."""
    from advbench.defenses.jacobian import jacobian_regulariser

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3))
    model.classes = 3
    x, y = torch.rand(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    params = defenses.resolve("jacobian+fgsm-at", {"jacobian.exact": "true"})
    terms = defenses.loss_for("jacobian+fgsm-at", params)(model, x, y)
    xc = x.clone().requires_grad_(True)
    clean = jacobian_regulariser(model, xc, model(xc), exact=True)
    assert terms["jacobian"].item() == pytest.approx(0.01 * clean.item(), rel=1e-5)
    assert defenses.loss_for("vat+fgsm-at", defenses.resolve("vat+fgsm-at", {})).on_clean == set()
    adv = T.fgsm_at(eps=0.3, ratio=0.5)(model, T.Batch(x, y, torch.ones(6), y, 6)).x
    xa = adv.clone().requires_grad_(True)
    both = jacobian_regulariser(model, xa, model(xa), exact=True)
    assert both.item() != pytest.approx(clean.item(), rel=1e-3)  # the old reading differs


def test_madnet_from_scratch_schedule_and_resnet56_activation_follow_appendix_c():
    from advbench.models import default_activation

    mnist = defenses.defaults_for("mad", from_scratch=True, family="mnist")
    cifar = defenses.defaults_for("mad", from_scratch=True, family="cifar")
    assert (mnist["epochs"], mnist["batch_size"], mnist["optimizer"]) == (80, 128, "sgd")
    assert (cifar["epochs"], cifar["batch_size"], cifar["weight_decay"]) == (400, 128, 0.002)
    assert default_activation("resnet56") == ("leaky-relu", 0.1)
    assert default_activation("madry-mnist") == ("relu", None)
