"""NsLoss and the MAD terms against hand computations on tiny models and toy embeddings."""

import pytest
import torch
from torch import nn

from advbench.data import DataSplit
from advbench.defenses import mad
from advbench.defenses import nsloss as ns
from advbench.defenses import training as T
from advbench.models.layers import Activation, ZooModel


def _tiny(seed=0, d=6, h=5, c=3):
    torch.manual_seed(seed)
    features = nn.Sequential(nn.Flatten(), nn.Linear(d, h), Activation("relu"))
    model = ZooModel(features, nn.Linear(h, c))
    model.classes, model.input_shape = c, (1, 1, d)
    return model


def _x(n=4, d=6, seed=1):
    return torch.rand(n, 1, 1, d, generator=torch.Generator().manual_seed(seed))


def _perturbations(x, eps, samples, seed):
    """The draws `nsloss` makes after torch.manual_seed(seed): Gaussian, scaled to ‖d‖₂ = eps."""
    torch.manual_seed(seed)
    out = []
    for _ in range(samples):
        d = torch.randn_like(x)
        out.append(eps * d / d.flatten(1).norm(dim=1).view(-1, 1, 1, 1))
    return out


def test_nsloss_on_a_linear_model_is_the_mean_logit_change_over_eps():
    model = nn.Linear(6, 3)
    lin = ZooModel(nn.Flatten(), model)  # no activations: only the logits are regularised
    x, eps, n = _x(), 0.5, 4
    torch.manual_seed(7)
    got = ns.nsloss(eps=eps, samples=n)(lin, x, lin(x), None)
    w = model.weight.detach()
    want = sum((d.flatten(1) @ w.T).abs().mean() for d in _perturbations(x, eps, n, 7)) / (n * eps)
    assert float(got.detach()) == pytest.approx(float(want), rel=1e-5)


def test_nsloss_equals_algorithm_1_written_out():
    """fidel Algorithm 1 literally: per-neuron sensitivity normalised by the mean absolute
    activation, then NsLoss = Σ_L LS[L]·MLA[L] over the ReLU layer and the logits."""
    model, x, eps, n = _tiny(), _x(), 0.3, 3
    with torch.no_grad():
        model.features[1].bias.fill_(2.0)  # every hidden neuron fires: MLA > 0 everywhere
    torch.manual_seed(11)
    got = ns.nsloss(eps=eps, samples=n)(model, x, model(x), None)

    out0, acts0 = model.forward_with_activations(x)
    layers0 = [*acts0, out0]
    diff = [torch.zeros_like(a[0]) for a in layers0]
    for d in _perturbations(x, eps, n, 11):
        out, acts = model.forward_with_activations(x + d)
        for k, (a, a0) in enumerate(zip([*acts, out], layers0, strict=True)):
            diff[k] += (a - a0).abs().sum(0)
    want = 0.0
    for k, a0 in enumerate(layers0):
        mla = a0.abs().mean(0)
        keep = mla > 0  # the written form is undefined where a neuron never fires
        ls = diff[k][keep] / (len(x) * n * eps * a0.shape[1] * mla[keep])
        want += float((ls * mla[keep]).sum())
        assert keep.all(), "pick a model whose neurons all fire so both forms are defined"
    assert float(got.detach()) == pytest.approx(want, rel=1e-5)


def test_nsloss_is_zero_for_a_constant_model_and_differentiable():
    model = _tiny()
    for p in model.parameters():
        nn.init.zeros_(p)
    x = _x()
    assert float(ns.nsloss(eps=1.0, samples=2)(model, x, model(x), None)) == 0.0
    model = _tiny()
    loss = ns.nsloss(eps=1.0, samples=2)(model, x, model(x), None)
    loss.backward()
    assert model.features[1].weight.grad.abs().sum() > 0


def test_reduce_variance_on_toy_embeddings():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [3.0, 4.0], [3.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 2, 2])
    # class 0: μ = (1, 0), distances 1, 1 -> 1; class 1: 0; class 2: μ = (3, 2), 2, 2 -> 2
    assert float(mad.reduce_variance(z, labels)) == pytest.approx((1 + 0 + 2) / 3)


def _pair_batch(z1, z2, pairs, labels):
    z = torch.cat([z1, z2])
    b = T.Batch(z, labels, torch.ones(len(z)), labels, len(z1), pairs=pairs)
    b.z = z
    return b


def test_siamese_term_on_toy_embeddings():
    z1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    z2 = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # cos = 1, 0
    y = torch.zeros(4, dtype=torch.long)
    agree = _pair_batch(z1, z2, torch.tensor([1.0, 0.0]), y)
    assert float(mad.mad_siamese(None, None, None, agree)) == pytest.approx(0.0, abs=1e-6)
    swapped = _pair_batch(z1, z2, torch.tensor([0.0, 1.0]), y)
    assert float(mad.mad_siamese(None, None, None, swapped)) == pytest.approx(0.5 * 1.0)


def test_mad_rvl_averages_the_two_halves():
    z1 = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    z2 = torch.tensor([[0.0, 0.0], [0.0, 4.0]])
    labels = torch.tensor([0, 0, 1, 1])
    b = _pair_batch(z1, z2, torch.ones(2), labels)
    assert float(mad.mad_rvl(None, None, None, b)) == pytest.approx(0.5 * (1.0 + 2.0))


def test_embedding_jacobian_norm_of_a_linear_embedding():
    torch.manual_seed(0)
    a = nn.Linear(6, 4)
    model = ZooModel(nn.Sequential(nn.Flatten(), a), nn.Linear(4, 2))
    x = _x(n=2).requires_grad_(True)
    z = model.embed(x)
    b = T.Batch(x, torch.zeros(2, dtype=torch.long), torch.ones(2), None, 1, pairs=torch.ones(1))
    b.z = z
    got = mad.mad_jacobian(projections=400)(model, x, None, b)
    exact = float(a.weight.detach().norm())  # J = A for every input: ½(‖A‖ + ‖A‖)
    assert float(got.detach()) == pytest.approx(exact, rel=0.1)
    one = mad.mad_jacobian(projections=1, exact=True)(model, x, None, b)
    assert float(one.detach()) == pytest.approx(exact, rel=1e-5)  # exact: no estimate


def _split(n_per=50, classes=4):
    y = torch.arange(classes).repeat_interleave(n_per)
    x = y.float().view(-1, 1, 1, 1).expand(-1, 1, 1, 3).clone()  # the class is in the pixels
    return DataSplit.from_tensors(x, y)


@pytest.mark.parametrize("q, same", [(1.0, 1.0), (0.0, 0.0)])
def test_mad_pairs_draw_partners_of_the_requested_class(q, same):
    data = _split()
    pairs = mad.MadPairs(q)
    pairs.bind(data, 4)
    y = torch.tensor([0, 1, 2, 3] * 25)
    x, _ = data.get(torch.tensor([0, 50, 100, 150] * 25))
    torch.manual_seed(0)
    b = pairs(None, T.Batch(x, y, torch.ones(100), y, 100))
    assert b.x.shape[0] == 200 and b.clean == 100
    partner_class = b.x[100:, 0, 0, 0].long()  # read back from the drawn images
    assert torch.equal(partner_class, b.labels[100:])  # labels are the partners' own
    assert float((partner_class == y).float().mean()) == same
    assert torch.equal(b.pairs, (partner_class == y).float())


def test_mad_pairs_same_class_share_is_about_q():
    data = _split()
    pairs = mad.MadPairs(0.3)
    pairs.bind(data, 4)
    y = torch.randint(0, 4, (4000,), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    b = pairs(None, T.Batch(torch.zeros(4000, 1, 1, 3), y, torch.ones(4000), y, 4000))
    assert float(b.pairs.mean()) == pytest.approx(0.3, abs=0.03)


def test_ns_sensitivity_per_sample_is_nsloss_on_that_sample_alone():
    """The `ns-sensitivity` measurement of one test point equals the NsLoss regulariser
    (fidel Alg. 1, `defenses.nsloss`) on a batch of that point alone, drawn from the same
    seed: the measurement is the defense's own term, per sample."""
    from advbench.measurements import ns_sensitivity

    model, x = _tiny(seed=3).eval(), _x(n=3, seed=4)
    for i in range(3):
        got = ns_sensitivity(model, x[i : i + 1], 0.7, 4, seed=20 + i)
        torch.manual_seed(20 + i)
        want = ns.nsloss(eps=0.7, samples=4)(model, x[i : i + 1], None, None)
        assert float(got[0]) == pytest.approx(float(want.detach()), rel=1e-6)
    # the same seed gives the same draws: the value does not depend on the other samples
    both = ns_sensitivity(model, x[:2], 0.7, 4, seed=5)
    assert both.shape == (2,) and float(both.min()) > 0


def test_embedding_jacobian_measurement_matches_autograd():
    from advbench.measurements import jacobian_fro

    model, x = _tiny(seed=5).eval(), _x(n=3, seed=6)
    got = jacobian_fro(model, x, embedding=True)
    for i in range(3):
        j = torch.autograd.functional.jacobian(lambda v: model.embed(v.unsqueeze(0))[0], x[i])
        assert float(got[i]) == pytest.approx(float(j.norm()), rel=1e-5)


def test_a_zero_weight_regulariser_is_not_computed_and_changes_nothing():
    """A same-budget control (weight 0) costs plain fine-tuning: its regulariser is never
    called, and the loss and its gradient are plain cross-entropy's."""
    calls = []

    def reg(model, x, logits, target):
        calls.append(1)
        return logits.pow(2).sum()

    model, x, y = _tiny(seed=7), _x(n=4, seed=8), torch.tensor([0, 1, 2, 1])
    off = T.compose([T.Part("r", regulariser=reg, weight=0.0)])
    plain = T.compose([])
    a, b = off(model, x, y), plain(model, x, y)
    assert not calls and set(a) == set(b) and torch.equal(a["ce"], b["ce"])
    T.compose([T.Part("r", regulariser=reg, weight=0.5)])(model, x, y)
    assert calls == [1]


def test_pgd_training_at_eps_zero_trains_on_the_inputs_themselves():
    model, x, y = _tiny(seed=9), _x(n=4, seed=10), torch.tensor([0, 1, 2, 1])
    batch = T.Batch(x, y, torch.ones(4), y, 4)
    out = T.pgd_at(eps=0.0, steps=5, step_size=0.1, ratio=1.0)(model, batch)
    assert torch.equal(out.x, x) and torch.equal(out.target, y)


def test_noise_loss_is_gdas_training_loss_on_its_noisy_copies():
    """The `noise-loss` measurement of one test point equals the mean cross-entropy of the
    noisy copies the `gda` transform adds to a batch of that point alone, drawn from the
    same seed: the measurement is GDA's own objective (less its clean row), per sample."""
    import torch.nn.functional as F

    from advbench.measurements import noise_loss

    model, x, y = _tiny(seed=11).eval(), _x(n=3, seed=12), torch.tensor([2, 0, 1])
    for i in range(3):
        got = noise_loss(model, x[i : i + 1], y[i : i + 1], 0.3, 4, seed=30 + i)
        torch.manual_seed(30 + i)
        b = T.gda(copies=4, sigma=0.3)(model, T.Batch(x[i : i + 1], y[i : i + 1],
                                                      torch.ones(1), y[i : i + 1], 1))  # fmt: skip
        assert len(b.x) == 5 and torch.equal(b.x[0], x[i])  # the row, then its 4 copies
        with torch.no_grad():
            want = F.cross_entropy(model(b.x[1:]), b.target[1:])
        assert float(got[0]) == pytest.approx(float(want), rel=1e-6)
    # noise raises the loss of a confident model: the measurement is not the clean loss
    with torch.no_grad():
        clean = F.cross_entropy(model(x), y, reduction="none").double()
    assert not torch.allclose(noise_loss(model, x, y, 0.3, 4, seed=1), clean)


def test_measure_help_names_every_metric(runner):
    from advbench.cli import app
    from advbench.measurements import METRICS

    out = runner.invoke(app, ["measure", "--help"], terminal_width=200).output
    import re

    words = set(re.findall(r"[a-z][a-z-]*[a-z]", " ".join(out.split())))
    assert set(METRICS) <= words, set(METRICS) - words
