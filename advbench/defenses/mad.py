"""madnet's MAD training terms: Siamese pairs, reduce-variance and the embedding Jacobian.

madnet Appendix B: each row gets a partner (`MadPairs`, a transform), and three
regularisers read the pairing and the embeddings: the Siamese cosine term, the
reduce-variance loss (eq. 4) and the embedding's input-Jacobian norm. Written here: no
library ships them; each is a few lines of torch on the composed batch
(defenses/training.py).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch.nn import functional as F

from advbench.defenses.training import Batch, Regulariser


class MadPairs:
    """madnet Appendix B, lines 4–16: every row gets a Siamese partner drawn from the
    training set, of the same class with probability Q (similarity label 1) or else of a
    uniformly chosen other class (label 0). Appends the partners as rows [B, 2B).

    It needs the training split to draw from: `compose(...).bind(data)` hands it over
    before training starts. Draws use torch's generator, which the training loop seeds per
    batch, so a resumed run draws the same partners.
    """

    def __init__(self, q: float):
        self.q = q
        self.order: torch.Tensor | None = None  # training indices sorted by class
        self.start: torch.Tensor | None = None  # first position of each class in `order`
        self.count: torch.Tensor | None = None
        self.data = None

    def bind(self, data, classes: int) -> None:
        self.data = data
        labels = data.labels
        self.order = torch.argsort(labels, stable=True)
        self.count = torch.bincount(labels, minlength=classes)
        self.start = torch.cumsum(self.count, 0) - self.count

    def __call__(self, model, b: Batch) -> Batch:
        if self.data is None:
            raise RuntimeError("mad needs the training split: call the loss's bind(data)")
        y = b.labels.cpu()
        n, classes = len(y), len(self.count)
        same = torch.rand(n) < self.q
        other = (y + torch.randint(1, classes, (n,))) % classes  # uniform over classes != y
        cls = torch.where(same, y, other)
        empty = self.count[cls] == 0
        cls = torch.where(empty, y, cls)  # a class absent from the split: fall back to y
        pick = self.start[cls] + (torch.rand(n) * self.count[cls]).long()
        x2, y2 = self.data.get(self.order[pick])
        dev = b.x.device
        return replace(
            b,
            x=torch.cat([b.x, x2.to(dev)]),
            target=torch.cat([b.target, y2.to(dev)]),
            weight=torch.cat([b.weight, b.weight]),  # a partner weighs as its row
            labels=torch.cat([b.labels, y2.to(dev)]),
            pairs=(cls == y).float().to(dev),
        )


def _halves(b: Batch) -> tuple[torch.Tensor, torch.Tensor, int]:
    n = len(b.pairs)
    return b.z[:n], b.z[n : 2 * n], n


def mad_siamese(model, x, logits, b: Batch) -> torch.Tensor:
    """(δ_{y1,y2} − cos(z1, z2))², averaged over pairs, halved (see `mad_rvl`)."""
    z1, z2, _ = _halves(b)
    cos = F.cosine_similarity(z1, z2, dim=1, eps=1e-8)
    return 0.5 * (b.pairs - cos).pow(2).mean()


def reduce_variance(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """madnet eq. 4: σ_c = mean_i ‖z_i − μ_c‖₂ per class in the batch, averaged over them."""
    sigmas = []
    for c in labels.unique():
        zc = z[labels == c]
        sigmas.append((zc - zc.mean(0, keepdim=True)).norm(dim=1).mean())
    return torch.stack(sigmas).mean()


def mad_rvl(model, x, logits, b: Batch) -> torch.Tensor:
    """½ (RVL(x1) + RVL(x2)). Our cross-entropy is the mean over both halves, i.e. half the
    paper's CE(x1) + CE(x2); halving every MAD term keeps the paper's balance (L_MAD / 2)."""
    z1, z2, n = _halves(b)
    return 0.5 * (reduce_variance(z1, b.labels[:n]) + reduce_variance(z2, b.labels[n : 2 * n]))


def mad_jacobian(projections: int, exact: bool = False) -> Regulariser:
    """½ (‖∂z/∂x1‖ + ‖∂z/∂x2‖): the Frobenius norm of the embedding's input Jacobian, per
    sample, averaged over each half; estimated with random projections by default (the
    embedding has hundreds of dimensions: the exact norm costs a backward pass per
    dimension), exactly with `exact`."""
    from advbench.defenses.jacobian import jacobian_sq_norms

    def reg(model, x, logits, b: Batch) -> torch.Tensor:
        n = len(b.pairs)
        sq = jacobian_sq_norms(model, x, b.z, projections, exact)[: 2 * n]
        return 0.5 * sq.clamp_min(1e-12).sqrt().view(2, n).mean(1).sum()

    return reg
