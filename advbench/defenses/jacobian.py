"""Jacobian regularisation of the input-logit Jacobian J(x) = ∂z/∂x.

Written here rather than taken from a library: neither foolbox nor ART ships it, and the
two papers use two forms that we want side by side.

- `hoffman` (Hoffman, Roberts & Yaida 2019; fidel's JacobReg): R = ½ · mean_i ‖J(x_i)‖²_F,
  estimated with `projections` random unit vectors v in logit space, since
  E_v[C · ‖vᵀJ‖²] = ‖J‖²_F. With exact=True, one backward pass per class gives it exactly.
- `jakubovitz` (eq. 4): R = ‖J_batch‖_F, the Frobenius norm over the whole batch, not
  squared. The paper sums the cross-entropy over the batch; we average it, so R is divided
  by the batch size to keep the paper's balance between the two terms.
"""

from __future__ import annotations

import torch
from torch import nn


def jacobian_sq_norms(
    model: nn.Module,
    x: torch.Tensor,
    logits: torch.Tensor,
    projections: int = 1,
    exact: bool = False,
) -> torch.Tensor:
    """Per-sample ‖J(x_i)‖²_F, exact or a random-projection estimate, differentiable.

    `logits` must be model(x) computed with x.requires_grad.
    """
    b, c = logits.shape
    sq = torch.zeros(b, device=x.device)
    if exact:
        for k in range(c):
            (g,) = torch.autograd.grad(logits[:, k].sum(), x, create_graph=True)
            sq = sq + g.pow(2).flatten(1).sum(1)
        return sq
    for _ in range(projections):
        v = torch.randn(b, c, device=x.device)
        v = v / v.norm(dim=1, keepdim=True)
        (g,) = torch.autograd.grad((logits * v).sum(), x, create_graph=True)
        sq = sq + c * g.pow(2).flatten(1).sum(1) / projections
    return sq


def jacobian_regulariser(model, x, logits, *, projections=1, exact=False, form="hoffman"):
    if form == "jakubovitz":
        sq = jacobian_sq_norms(model, x, logits, exact=True)
        return sq.sum().clamp_min(1e-12).sqrt() / x.shape[0]
    return 0.5 * jacobian_sq_norms(model, x, logits, projections, exact).mean()
