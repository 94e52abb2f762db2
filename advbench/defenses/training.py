"""Training-time defenses as two composable parts, so `a+b` means one thing everywhere:

- a *transform* turns the clean batch into the batch that is trained on (`gda` adds noisy
  copies, `fgsm-at`/`pgd-at` add or substitute adversarial examples, `label-smoothing`
  softens the targets); each row carries a weight, and the cross-entropy is the weighted
  mean over rows;
- a *regulariser* adds a penalty computed on that batch (`jacobian`, `input-gradient`,
  `cross-lipschitz`, `vat`; fidel's `nsloss` (nsloss.py) and madnet's Siamese,
  reduce-variance and embedding-Jacobian terms (mad.py), which also read the batch's
  pairing and embeddings).

`compose(parts)` applies the transforms in the order given, one forward pass, the
cross-entropy, then every regulariser: a loss function for `fit` returning each term
separately (so per-epoch curves show each), and the logits of the clean rows for accuracy.

Written here rather than taken from ART: ART's trainers own their training loop (ours is
resumable and seeded per batch), and its Gaussian augmentation and label smoothing draw
from numpy's global generator, which the per-batch seeding does not cover, so a resumed run
would not reproduce an uninterrupted one. Each piece is a few lines of torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class Batch:
    x: torch.Tensor
    target: torch.Tensor  # int labels (N,) or probabilities (N, C)
    weight: torch.Tensor  # (N,) row weights of the cross-entropy
    labels: torch.Tensor  # int labels (N,), for attacks and accuracy
    clean: int  # the first `clean` rows are the unmodified batch
    # madnet: rows [0, B) are the batch, rows [B, 2B) their Siamese partners, `pairs` (B,)
    # is 1 where a partner has the same class; transforms after it keep that row order.
    pairs: torch.Tensor | None = None
    z: torch.Tensor | None = None  # embeddings of all rows, set by `compose` when asked


Transform = Callable[[nn.Module, Batch], Batch]
Regulariser = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


# --- transforms ---------------------------------------------------------------------------


def gda(*, copies: int, sigma: float) -> Transform:
    """zantedeschi: `copies` noisy copies x + N(0, σ²) of every row, clipped to [0, 1]."""

    def transform(model, b: Batch) -> Batch:
        out = b
        for _ in range(copies):
            out = _grow(out, (b.x + sigma * torch.randn_like(b.x)).clamp(0, 1))
        return out

    return transform


def _grow(b: Batch, x: torch.Tensor) -> Batch:
    """Append `x`, a new version of the batch's first len(x) rows (same targets, weights)."""
    n = len(x)
    return replace(
        b,
        x=torch.cat([b.x, x]),
        target=torch.cat([b.target, b.target[:n]]),
        weight=torch.cat([b.weight, b.weight[:n]]),
        labels=torch.cat([b.labels, b.labels[:n]]),
    )


def label_smoothing(*, true_weight: float) -> Transform:
    """zantedeschi (ART's convention): the true label gets `true_weight`, the rest is spread
    evenly over the other labels."""

    def transform(model, b: Batch) -> Batch:
        classes = model.classes
        hard = b.target if b.target.dim() == 1 else b.target.argmax(1)
        soft = torch.full(
            (len(hard), classes), (1 - true_weight) / (classes - 1), device=b.x.device
        )
        soft.scatter_(1, hard[:, None], true_weight)
        return replace(b, target=soft)

    return transform


def _ce_grad_sign(model, x, y):
    x = x.clone().requires_grad_(True)
    was = model.training
    model.eval()  # craft on the deterministic network (no dropout), as attacks see it
    try:
        (g,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
    finally:
        model.train(was)
    return g.sign()


def _adversarial(b: Batch, adv: torch.Tensor, ratio: float) -> Batch:
    """Weight the adversarial rows `ratio` and the rest 1 − ratio; ratio 1 drops the rest."""
    if ratio >= 1.0:
        return replace(b, x=adv, clean=0)
    out = _grow(b, adv)
    n = len(b.x)
    out.weight = torch.cat([out.weight[:n] * (1 - ratio), out.weight[n:] * ratio])
    return out


def fgsm_at(*, eps: float, ratio: float) -> Transform:
    """Goodfellow et al.: J = (1 − α)·J(x) + α·J(x + ε·sign ∇x J), α = `ratio`."""

    def transform(model, b: Batch) -> Batch:
        adv = (b.x + eps * _ce_grad_sign(model, b.x, b.labels)).clamp(0, 1).detach()
        return _adversarial(b, adv, ratio)

    return transform


def pgd_at(*, eps: float, steps: int, step_size: float, ratio: float) -> Transform:
    """Madry et al.: train on L∞ PGD examples (random start) crafted on the current model."""

    def transform(model, b: Batch) -> Batch:
        x = b.x
        if eps == 0:  # the 0-ball holds x alone: a control (issue 33) trains on x itself
            return _adversarial(b, x.detach(), ratio)
        adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        for _ in range(steps):
            adv = adv + step_size * _ce_grad_sign(model, adv, b.labels)
            adv = (x + (adv - x).clamp(-eps, eps)).clamp(0, 1).detach()
        return _adversarial(b, adv, ratio)

    return transform


def unit_l2(d: torch.Tensor) -> torch.Tensor:
    """Each row of `d` scaled to L2 norm 1."""
    return d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (d.dim() - 1))


# --- regularisers -------------------------------------------------------------------------


def input_gradient(model, x, logits, target) -> torch.Tensor:
    """Ross & Doshi-Velez: mean over rows of ‖∇x CE(x_i)‖²₂ (each row's own loss)."""
    ce = F.cross_entropy(logits, target, reduction="sum")
    (g,) = torch.autograd.grad(ce, x, create_graph=True)
    return g.pow(2).flatten(1).sum(1).mean()


def cross_lipschitz(model, x, logits, target) -> torch.Tensor:
    """Hein & Andriushchenko: mean over rows of (1/C²) Σ_k Σ_j ‖∇z_k − ∇z_j‖²₂, computed as
    (2/C²)·(C·Σ_k ‖∇z_k‖² − ‖Σ_k ∇z_k‖²) from one backward pass per class."""
    c = logits.shape[1]
    grads = [
        torch.autograd.grad(logits[:, k].sum(), x, create_graph=True)[0].flatten(1)
        for k in range(c)
    ]
    sq = sum(g.pow(2).sum(1) for g in grads)
    total = sum(grads).pow(2).sum(1)
    return (2.0 / c**2 * (c * sq - total)).mean()


def vat(*, eps: float, xi: float, iterations: int) -> Regulariser:
    """Miyato et al.: KL(p(x) ‖ p(x + r)) with r the L2 direction of largest KL change found
    by `iterations` power iterations of size ξ, scaled to ε."""

    def reg(model, x, logits, target) -> torch.Tensor:
        p = F.softmax(logits.detach(), 1)
        d = torch.randn_like(x)
        for _ in range(iterations):
            d = xi * unit_l2(d)
            d.requires_grad_(True)
            kl = F.kl_div(F.log_softmax(model(x.detach() + d), 1), p, reduction="batchmean")
            (d,) = torch.autograd.grad(kl, d)
        r = eps * unit_l2(d)
        return F.kl_div(F.log_softmax(model(x + r.detach()), 1), p, reduction="batchmean")

    return reg


# --- composition --------------------------------------------------------------------------


@dataclass
class Part:
    name: str
    transform: Transform | None = None
    regulariser: Regulariser | None = None
    weight: float = 1.0  # λ of the regulariser
    # The regulariser takes the whole Batch (pairs, embeddings) instead of the targets; the
    # forward pass then goes through the model's embedding so `b.z` is the same pass.
    needs_batch: bool = False
    adversarial: bool = False  # a transform that adds adversarial rows (fgsm-at, pgd-at)
    clean_under_at: bool = False  # a regulariser jakubovitz applies to clean inputs only


class ComposedLoss:
    """One loss function for `fit` from transforms and regularisers (see module docstring)."""

    def __init__(self, parts: list[Part]):
        self.parts = parts
        self.needs_z = any(p.needs_batch for p in parts)
        # jakubovitz (003:266): combined with adversarial training, a gradient regulariser is
        # applied to the original inputs only ("the optimal results are obtained by applying
        # the Jacobian regularization on the original input samples ... not on perturbed
        # input samples"), so it sees one extra forward pass of the clean batch.
        adversarial = any(p.adversarial for p in parts)
        self.on_clean = {p.name for p in parts if p.clean_under_at and adversarial}
        # a regulariser weighted 0 (a same-budget control, issue 33) adds nothing to the loss
        # or its gradient: it is not computed, so a control costs plain fine-tuning's time;
        # the data order is its own generator's (`fit`), so skipping it changes no batch
        self.active = [p for p in parts if p.regulariser is None or p.weight != 0]
        self.needs_grad = any(p.regulariser and p.name not in self.on_clean for p in self.active)

    def bind(self, data, classes: int) -> None:
        """Give transforms that draw from the training split (madnet's partners) the split."""
        for p in self.parts:
            if hasattr(p.transform, "bind"):
                p.transform.bind(data, classes)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor):
        b = Batch(x, y, torch.ones(len(y), device=x.device), y, len(y))
        for p in self.parts:
            if p.transform is not None:
                b = p.transform(model, b)
        xin = b.x.detach().clone().requires_grad_(self.needs_grad)
        if self.needs_z:
            b.z = model.embed(xin)
            logits = model.head(b.z)
        else:
            logits = model(xin)
        rows = F.cross_entropy(logits, b.target, reduction="none")
        terms = {"ce": (rows * b.weight).sum() / b.weight.sum()}
        if self.on_clean:
            xc = x.detach().clone().requires_grad_(True)
            clean_logits = model(xc)
        for p in self.active:
            if p.regulariser is None:
                continue
            if p.name in self.on_clean:  # the clean rows' own targets (soft if smoothed)
                target = b.target[: len(y)]
                terms[p.name] = p.weight * p.regulariser(model, xc, clean_logits, target)
            else:
                arg = b if p.needs_batch else b.target
                terms[p.name] = p.weight * p.regulariser(model, xin, logits, arg)
        clean = logits[: b.clean] if b.clean else logits[: len(y)]
        terms["_logits"] = clean
        return terms


def compose(parts: list[Part]) -> ComposedLoss:
    return ComposedLoss(parts)
