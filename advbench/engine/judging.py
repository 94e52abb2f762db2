"""A minimal-perturbation attack judged at every ε from one search (foolbox's
`MinimizationAttack` does the same): the example counts where its norm is within ε, by
the model's own prediction; fidel's tables instead clip the example onto the ε-ball.
"""

from __future__ import annotations

import math

import torch

from advbench.engine.rows import Batch, predict
from advbench.metrics import distance, within


@torch.no_grad()
def clip_to_ball(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """foolbox 3's `clip_perturbation`: the perturbation brought onto the ε-ball."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    size = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = torch.clamp(eps / size, max=1.0)
    return delta * factor.view(-1, *[1] * (delta.dim() - 1))


def judge_minimal(model, b: Batch, raw, eps_list, norm: str, craft_model=None, judge="minimal"):
    """From one minimal-perturbation result, the adversarial input at each ε (in `norm`).

    Every minimal attack returns the unperturbed input where it found nothing (the adapters
    enforce it: foolbox's C&W would return a black image), and success is checked with a
    model's own prediction, never the attack's flag: the crafting model's (white-box:
    the model itself; transfer: the source) says whether and at what norm the attack found
    an adversarial; the evaluated model's prediction of it is what gets recorded.
    """
    finite = torch.isfinite(raw.flatten(1)).all(1)  # a diverged search found nothing
    raw = torch.where(finite.view(-1, *[1] * (b.x.dim() - 1)), raw, b.x)
    raw_pred = predict(model, raw)
    if craft_model is None:
        found = b.hit(raw_pred)
        already = b.hit(b.clean_pred)  # adversarial before any attack: norm 0
    else:
        found = b.hit(predict(craft_model, raw))
        already = torch.zeros_like(found)
    norms = distance(raw - b.x, norm)
    min_norm = torch.where(
        already,
        torch.zeros_like(norms),
        torch.where(found, norms, torch.full_like(norms, float("inf"))),
    )
    unfound = torch.isinf(min_norm)  # no adversarial found on the crafting model
    out = {}
    for eps in eps_list:
        if judge == "clip" and math.isfinite(eps):  # foolbox 3's epsilons: fidel's tables
            # where the search found nothing, foolbox's C&W returns its all-zero start
            # (the adapters put x back there): that is what foolbox clips and classifies
            base = torch.where(unfound.view(-1, *[1] * (b.x.dim() - 1)), torch.zeros_like(raw), raw)
            adv = (b.x + clip_to_ball(base - b.x, eps, norm)).clamp(0, 1)
            out[eps] = (adv, predict(model, adv))
            continue
        ok = within(min_norm, eps) & ~already
        adv = torch.where(ok.view(-1, *[1] * (b.x.dim() - 1)), raw, b.x)
        adv_pred = torch.where(ok, raw_pred, b.clean_pred)
        out[eps] = (adv, adv_pred)
    return out, min_norm
