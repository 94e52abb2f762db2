"""The tables' model measurements against hand computations on tiny models:
loss sensitivity, ‖J‖_F, nearest-training-image distance, Davies–Bouldin, and the ρ
reductions of the report (zantedeschi's, as ART's `empirical_robustness`)."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from advbench.measurements import davies_bouldin, jacobian_fro, loss_sensitivity, nearest_distance


def _linear(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    return model.eval(), model[1].weight.detach(), model[1].bias.detach()


def test_loss_sensitivity_is_each_samples_own_gradient_norm():
    model, w, b = _linear()
    x = torch.rand(5, 1, 2, 3)
    y = torch.tensor([0, 1, 2, 1, 0])
    got = loss_sensitivity(model, x, y)
    # ∇x CE(Wx + b, y) = Wᵀ (softmax(Wx + b) − e_y), per sample, by hand.
    flat = x.flatten(1)
    p = torch.softmax(flat @ w.T + b, dim=1)
    p[torch.arange(5), y] -= 1
    expected = (p @ w).norm(dim=1)
    assert torch.allclose(got, expected, atol=1e-6)
    # the same samples in another batch: the value does not depend on the batch (a
    # mean-reduced loss would divide each gradient by the batch size)
    assert torch.allclose(loss_sensitivity(model, x[:2], y[:2]), expected[:2], atol=1e-6)


def test_jacobian_norm_of_a_linear_model_is_the_weights_frobenius_norm():
    model, w, _ = _linear(1)
    got = jacobian_fro(model, torch.rand(4, 1, 2, 3))
    assert torch.allclose(got, torch.full((4,), float(w.norm())), atol=1e-6)


def test_jacobian_norm_of_a_nonlinear_model_matches_autograd():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).eval()
    x = torch.rand(3, 1, 2, 3)
    got = jacobian_fro(model, x)
    for i in range(3):
        j = torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0))[0], x[i])
        assert float(got[i]) == pytest.approx(float(j.norm()), rel=1e-5)


def test_nearest_distance_in_chunks_equals_brute_force():
    rng = np.random.default_rng(0)
    ref = torch.tensor(rng.random((37, 1, 2, 2)), dtype=torch.float32)
    pts = torch.tensor(rng.random((5, 1, 2, 2)), dtype=torch.float32)
    brute = np.array(
        [min(np.linalg.norm(p.numpy().ravel() - r.numpy().ravel()) for r in ref) for p in pts]
    )
    got = nearest_distance(pts, ref, chunk=4)  # 10 chunks, the last one short
    assert np.allclose(got.numpy(), brute, atol=1e-6)
    # a point that is a training image is at distance 0
    assert float(nearest_distance(ref[3:4], ref, chunk=8)[0]) == 0.0


def test_davies_bouldin_of_two_clusters_by_hand():
    # Cluster A: (0,0),(2,0): centroid (1,0), mean distance to it 1.
    # Cluster B: (10,0),(10,4): centroid (10,2), mean distance 2. Centroid distance √85.
    emb = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 4.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert davies_bouldin(emb, labels) == pytest.approx(3 / 85**0.5)


def test_loss_sensitivity_agrees_with_arts_helper_given_a_summed_loss():
    from art.estimators.classification import PyTorchClassifier
    from art.metrics import loss_sensitivity as art_loss_sensitivity

    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3)).eval()
    x = torch.rand(8, 1, 2, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    ours = float(loss_sensitivity(model, x, y).mean())
    onehot = np.eye(3)[y.numpy()]

    def art(reduction):
        clf = PyTorchClassifier(model, nn.CrossEntropyLoss(reduction=reduction), (1, 2, 3), 3,
                                clip_values=(0.0, 1.0))  # fmt: skip
        return float(art_loss_sensitivity(clf, x.numpy(), onehot))

    assert art("sum") == pytest.approx(ours, rel=1e-5)
    # ART's helper on a mean-reduced loss divides every gradient by the number of inputs
    assert art("mean") == pytest.approx(ours / len(x), rel=1e-5)


def test_measure_noise_loss_stores_each_test_points_gda_objective(runner, db_copy):
    """`advbench measure --metric noise-loss` stores, per test point, the cross-entropy under
    GDA's training noise (σ 0.3 on the MNIST family, 10 draws) from the measurement's seed:
    recomputed here from the same inputs and draw, and above the clean loss on average."""
    import json

    import torch.nn.functional as F

    from advbench import data as datasets
    from advbench.catalogue import load_model
    from advbench.cli import app
    from advbench.engine import select_samples
    from advbench.measurements import gda_setting, noise_loss
    from advbench.store import open_db

    res = runner.invoke(app, ["measure", "--model", "std", "--metric", "noise-loss", "--n", "12",
                              "--db", str(db_copy)])  # fmt: skip
    assert res.exit_code == 0, res.output
    db = open_db(db_copy)
    row = next(db["measurements"].rows_where("metric = 'noise-loss'"))
    model, _, mrow = load_model(db, "std")
    test = datasets.load(mrow["dataset"], "test")
    x, y = test.get(select_samples(test.labels, 12, row["seed"]))
    sigma, copies = gda_setting(datasets.family(mrow["dataset"]))
    assert (sigma, copies) == (0.3, 10)  # zantedeschi's MNIST setting
    assert gda_setting("cifar")[0] == 0.05
    want = noise_loss(model.eval(), x, y, sigma, copies, row["seed"] * 1_000_003 + 1)
    got = torch.tensor(json.loads(row["per_sample"]), dtype=torch.float64)
    assert row["n"] == 12 and torch.allclose(got, want, atol=1e-6)
    with torch.no_grad():
        clean = F.cross_entropy(model(x), y, reduction="none")
    assert float(got.mean()) > float(clean.mean())
