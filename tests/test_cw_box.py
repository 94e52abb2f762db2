"""madnet's two readings of "C&W with a maximal L∞ perturbation", on a linear model where
the answer is worked out by hand.

Logits (0, a·(x − ½) − b) with a = (1, 0.2), b = 0.11, at x = (½, ½), L∞ radius 0.1:
- the smallest L2 adversarial is δ* = b·a/‖a‖² = (0.1058, 0.0212): its L∞ is above 0.1,
  and clipped onto the ball it gives a·δ = 0.1042 < b, not adversarial (`cw-l2 linf_clip`);
- inside the ball a·δ reaches 0.1·(1 + 0.2) = 0.12 > b, so an adversarial exists there,
  and the smallest one is δ = (0.1, (b − 0.1)/0.2) = (0.1, 0.05) (`cw-l2-box`).
"""

import math

import pytest
import torch
from torch import nn

from advbench.attacks import ATTACKS

A = torch.tensor([1.0, 0.2])
B = 0.11
R = 0.1


class Linear2(nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))  # back-ends read a parameter's device

    def forward(self, x):
        gap = (x.flatten(1) - 0.5) @ A - B
        return torch.stack([torch.zeros_like(gap), gap], 1)


CW = {"steps": 1000, "binary_search_steps": 1, "stepsize": 0.01, "confidence": 0.0,
      "initial_const": 1.0, "abort_early": False}  # fmt: skip


def _attack(name, **params):
    entry = ATTACKS.get(name)
    return entry.factory({**entry.defaults(), **CW, **params})


def test_the_bounded_search_finds_the_adversarial_inside_the_ball():
    x, y = torch.full((1, 1, 1, 2), 0.5), torch.tensor([0])
    model = Linear2()
    boxed = _attack("cw-l2-box", linf=R)(model, x, y)
    delta = (boxed - x).flatten()
    assert model(boxed).argmax(1).item() == 1
    assert delta.abs().max().item() <= R + 1e-6
    # no adversarial in the ball is shorter than (0.1, 0.05); the search comes within 3 % of
    # it (the tanh change of variables flattens at the box's faces, where it lies)
    smallest = math.hypot(0.1, 0.05)
    assert smallest - 1e-4 <= delta.norm().item() <= 1.03 * smallest

    unbounded = _attack("cw-l2", linf_clip=None)(model, x, y)
    star = (B / A.dot(A)) * A
    assert (unbounded - x).flatten().tolist() == pytest.approx(star.tolist(), abs=2e-3)
    clipped = _attack("cw-l2", linf_clip=R)(model, x, y)
    assert model(clipped).argmax(1).item() == 0  # the other reading: clipping undoes it


def test_a_ball_covering_the_unit_box_is_plain_cw():
    from advbench.attacks.cw import cw_l2_search

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    params = {**CW, "steps": 50, "binary_search_steps": 2}
    plain, l2 = cw_l2_search(net, x, y, **params)
    boxed, l2_box = cw_l2_search(net, x, y, box=(torch.zeros_like(x), torch.ones_like(x)),
                                 **params)  # fmt: skip
    assert torch.equal(plain, boxed)
    assert [v if math.isfinite(v) else None for v in l2.tolist()] == \
        [v if math.isfinite(v) else None for v in l2_box.tolist()]  # fmt: skip
