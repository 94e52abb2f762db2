"""Fast Minimum-Norm attack (Pintor et al. 2021, "Fast Minimum-norm Adversarial Attacks
through Adaptive Norm Constraints", Algorithm 1), L2 and L∞, written here.

Why not foolbox's `L2FMNAttack` / `LInfFMNAttack` (foolbox 3.3.4, which advbench called
before): its L2 projection is a no-op. `L2FMNAttack.project` scales x − x0 by
min(1, ‖x‖ / ‖x‖) = 1, taking the norm of the iterate instead of the perturbation and never
comparing it with ε, so the adaptive norm constraint, the heart of the method, never acts:
the search is a normalised gradient descent whose iterates move by the step size (α₀ = 1 at
the start), and the smallest adversarial iterate it meets is what it returns. On MNIST its
norms sat at a median 1.37× the best any attack found and were quantised (none in
(1, 1.5] on 197 broken images; issue 30). `tests/test_fmn.py` pins that convention of
foolbox's so the reason stays checked. adv-lib (the FMN authors' implementation) is
correct but imports visdom at package import, which does not build on current setuptools,
so it is not a dependency; `benchmarks/cross_check.py` compares with it where it can be
imported.

The algorithm, per instance, with δ₀ = 0 (or a given adversarial start pulled to the
boundary by bisection), for k = 1..K with α and γ cosine-annealed from α₀ to α₀/100 and
from γ₀ to 0.001:
- the margin m = z_y − max_{j≠y} z_j (targeted: max_{j≠t} z_j − z_t) and its gradient g;
- ε ← min(ε(1 − γ), ‖δ*‖) if x + δ is adversarial; ε(1 + γ) if one was found before;
  otherwise ‖δ‖ + |m| / ‖g‖_dual (the first-order distance to the boundary);
- δ ← δ − α g / ‖g‖₂, projected onto the ε-ball of the norm and clipped to [0, 1] − x;
the smallest adversarial iterate met is returned (x itself where none was met).
"""

from __future__ import annotations

import math

import torch

from advbench.attacks.cw import logit_gap
from advbench.attacks.own import _clip_l2, deepfool_start

DUAL = {"l2": 2.0, "linf": 1.0}
# How far a row with no adversarial yet may go: ε = ‖δ‖ + REACH·|m| / ‖g‖_dual (the paper:
# 1). Measured on the demo's standard MNIST model (197 instances, 50 steps, from x): in L2
# the paper's first-order estimate approaches the boundary from one side and 45 % of the
# instances were never crossed (at 100 steps too); with 2 all but 1 were, optimality 0.960
# against the best of five searches. No bound at all until the first adversarial (foolbox's
# effective behaviour) also crossed them all (0.966) but cannot shrink ε below about 8 %
# of its first crossing within 100 steps (a linear model's exact distances were missed). In
# L∞ the paper's estimate crosses them all (0.967, equal to foolbox's L∞ FMN).
REACH = {"l2": 2.0, "linf": 1.0}
NORM = {"l2": 2.0, "linf": math.inf}


def _project(delta: torch.Tensor, eps: torch.Tensor, norm: str) -> torch.Tensor:
    shape = (-1,) + (1,) * (delta.dim() - 1)
    if norm == "linf":
        e = eps.view(shape)
        return torch.maximum(torch.minimum(delta, e), -e)
    return _clip_l2(delta, eps)


def _boundary_start(model, x, start, y, target, norm: str, steps: int):
    """The point of the segment x → start (an adversarial) nearest x that is still
    adversarial, by bisection on the segment's fraction (L∞: on the box's half-width)."""
    low = torch.zeros(len(x), device=x.device, dtype=x.dtype)
    high = torch.ones_like(low)
    shape = (-1,) + (1,) * (x.dim() - 1)

    def point(t):
        if norm == "linf":
            width = (start - x).flatten(1).abs().amax(1) * t
            return x + _project(start - x, width, "linf")
        return x + t.view(shape) * (start - x)

    for _ in range(steps):
        mid = (low + high) / 2
        with torch.no_grad():
            adv = logit_gap(model(point(mid)), y, target) < 0
        low, high = torch.where(adv, low, mid), torch.where(adv, mid, high)
    return point(high) - x


def fmn_search(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str,
    steps: int,
    max_stepsize: float,
    gamma: float,
    min_stepsize: float | None = None,
    min_gamma: float = 0.001,
    target: torch.Tensor | None = None,
    start: torch.Tensor | None = None,
    binary_search_steps: int = 10,
    reach: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the smallest adversarial met per instance, x where none; its norm, inf where none).
    `start`: one adversarial per row (rows that are not are started from x)."""
    untargeted = target is None
    p, dual = NORM[norm], DUAL[norm]
    alpha_end = max_stepsize / 100 if min_stepsize is None else min_stepsize
    shape = (-1,) + (1,) * (x.dim() - 1)
    x = x.detach()
    delta = torch.zeros_like(x)
    if start is not None:
        with torch.no_grad():
            ok = logit_gap(model(start), y, target) < 0
        if ok.any():
            aim = None if target is None else target[ok]
            delta[ok] = _boundary_start(model, x[ok], start[ok], y[ok], aim, norm,
                                        binary_search_steps)  # fmt: skip
    eps = torch.full((len(x),), math.inf, device=x.device, dtype=x.dtype)
    worst = torch.maximum(x, 1 - x).flatten(1).norm(p=p, dim=1)
    best_norm = torch.full_like(eps, math.inf)
    best = x.clone()
    found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for k in range(steps):
        cosine = (1 + math.cos(math.pi * k / steps)) / 2
        alpha = alpha_end + (max_stepsize - alpha_end) * cosine
        g_k = min_gamma + (gamma - min_gamma) * cosine
        xa = (x + delta).requires_grad_(True)
        logits = model(xa)
        margin = logit_gap(logits, y, target)
        (grad,) = torch.autograd.grad(margin.sum(), xa)
        with torch.no_grad():
            pred = logits.argmax(1)
            adv = pred != y if untargeted else pred == target
            size = delta.flatten(1).norm(p=p, dim=1)
            better = adv & (size < best_norm)
            best_norm = torch.where(better, size, best_norm)
            best[better] = xa[better].detach()
            found |= adv
            to_boundary = margin.abs() / grad.flatten(1).norm(p=dual, dim=1).clamp_min(1e-12)
            eps = torch.where(
                adv,
                torch.minimum(eps * (1 - g_k), best_norm),
                torch.where(found, eps * (1 + g_k),
                            size + reach * to_boundary),
            )
            eps = torch.minimum(eps, worst)
            step = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(shape)
            delta = _project(delta - alpha * step, eps, norm)
            delta = (x + delta).clamp(0.0, 1.0) - x
    return best, best_norm


def fmn(*, norm: str, steps: int, max_stepsize: float, gamma: float, start: str = "deepfool"):
    """The registry's minimal-attack contract over `fmn_search`."""

    def run(model, x, y, target=None):
        begin = None
        if start == "deepfool" and target is None:
            begin = deepfool_start(model, x, y, norm)
        adv, _ = fmn_search(model, x, y, norm=norm, steps=steps, max_stepsize=max_stepsize,
                            gamma=gamma, target=target, start=begin,
                            reach=REACH[norm])  # fmt: skip
        return adv

    return run


def fmn_l2(**params):
    return fmn(norm="l2", **params)


def fmn_linf(**params):
    return fmn(norm="linf", **params)
