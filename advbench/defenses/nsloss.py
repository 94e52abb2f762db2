"""fidel's neural-sensitivity loss (NsLoss, Algorithm 1 and §III-B), a regulariser.

Written here: no library ships it and the authors' code is not public; the reading of
the algorithm is in `nsloss`'s docstring.
"""

from __future__ import annotations

import torch

from advbench.defenses.training import Regulariser, unit_l2


def nsloss(*, eps: float, samples: int) -> Regulariser:
    """fidel Algorithm 1 and §III-B: the neural sensitivity of every activation output and
    the logits to `samples` random perturbations on the L2 sphere of radius NsEps.

    Per layer L, Algorithm 1 gives each neuron j the sensitivity
    LS_j = Σ_i Σ_x |A_j(x_i) − A_j(x)| / (B · N · NsEps · |L| · MLA_j), with MLA_j the
    batch mean of |A_j(x)|, and NsLoss = Σ_L LS[L] · MLA[L]. The MLA weighting and the
    division by MLA cancel neuron by neuron, so NsLoss = Σ_L mean_{x,i,j} |ΔA| / NsEps: that
    form is computed here (equal in value and gradient, and defined where MLA_j = 0, where
    the written form divides by zero).

    The passes run with the network in eval mode so that the difference measures the input
    perturbation alone, not dropout's noise. Perturbed inputs are not clipped to [0, 1]:
    the paper fixes ‖x − x_j‖₂ = NsEps exactly.
    """

    def reg(model, x, logits, target) -> torch.Tensor:
        was = model.training
        model.eval()
        try:
            out0, acts0 = model.forward_with_activations(x)
            layers0 = [*acts0, out0]
            total = x.new_zeros(())
            for _ in range(samples):
                d = eps * unit_l2(torch.randn_like(x))
                out, acts = model.forward_with_activations(x + d)
                for a, a0 in zip([*acts, out], layers0, strict=True):
                    total = total + (a - a0).abs().mean()
        finally:
            model.train(was)
        return total / (samples * eps)

    return reg
