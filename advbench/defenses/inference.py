"""Inference-time defenses: modules that wrap a stored model and are what attacks see.

Each wrapper's `forward` is the defended prediction itself, so any attack run on the
wrapper attacks the defense end to end, with whatever gradients that forward has. Where a
step is not differentiable, `bpda(x)` gives the same outputs with that step replaced by the
identity on the backward pass (Athalye et al.'s BPDA), which the `bpda-pgd` attack uses.

Written here rather than taken from ART: ART's FeatureSqueezing is a numpy preprocessor
applied outside the model, so foolbox attacks and our own would not see it, and ART has no
pNML. Both are a few lines of torch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from advbench.defenses.gradients import GRADIENTS


class Wrapper(nn.Module):
    """Common part: the wrapped model, and the attributes attacks read from a model."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base
        self.classes = getattr(base, "classes", None)
        self.input_shape = getattr(base, "input_shape", None)


def squeeze_bits(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Xu et al.'s colour-depth reduction to `bits` bits per channel, on [0, 1] inputs."""
    levels = 2**bits - 1
    return torch.round(x.clamp(0, 1) * levels) / levels


def median_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """Per-channel median over a size × size window (reflect padding), as Xu et al.'s
    median smoothing."""
    lo, hi = (size - 1) // 2, size // 2
    padded = F.pad(x, (lo, hi, lo, hi), mode="reflect")
    patches = padded.unfold(2, size, 1).unfold(3, size, 1)
    return patches.reshape(*patches.shape[:4], -1).median(dim=-1).values


class FeatureSqueezing(Wrapper):
    """zantedeschi's baseline (Xu et al.): predict on the squeezed input.

    The prediction is the same under either gradient; what white-box attacks see differs:
    - `straight-through` (default): the squeeze's backward pass is the identity, as in ART's
      FeatureSqueezing (`estimate_gradient` returns the gradient unchanged), which is what
      zantedeschi attacked: their Tables 2–3 put feature squeezing *below* the plain CNN.
    - `masked`: the true gradient of rounding, zero almost everywhere, so gradient attacks
      see nothing and the model looks robust: kept to show the masking (the checklist).
    `bpda` is always the straight-through forward (for bpda-pgd).
    """

    gradients = GRADIENTS

    def __init__(self, base: nn.Module, bits: int, median: int = 0):
        super().__init__(base)
        self.bits, self.median = bits, median
        self.gradient = GRADIENTS[0]

    def squeeze(self, x: torch.Tensor) -> torch.Tensor:
        out = squeeze_bits(x, self.bits)
        return median_filter(out, self.median) if self.median > 1 else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gradient == "masked":
            return self.base(self.squeeze(x))
        return self.bpda(x)

    def bpda(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x + (self.squeeze(x) - x).detach())


class PNML(Wrapper):
    """pesso's adversarial pNML (eqs. 9–12). For each hypothesis label y_i the input is
    refined by a targeted FGSM step toward y_i, x_i = x − λ·sign ∇x CE(w, x, y_i) (eq. 9,
    clipped to [0, 1]); p_i = p_w(y_i | x_i) (eq. 11); q(y_i) = p_i / Σ_j p_j (eq. 12).
    Returns log q as logits (softmax of them is q).

    All hypotheses are batched, as in the paper's §5 (one forward and one backward pass on
    B·H rows for the refinement, one forward on the refined rows). `iterations` > 1 makes
    the refinement that many steps inside the λ ball, each of size `step` (default λ /
    iterations); the step is independent of the count, as in the authors' PgdRefine, so
    pesso's Fig. 4 / "Table 4" settings (1 × 0.03, 2 × 0.015, 4 × 0.01 with λ 0.03: the
    last is projected back onto the ball) can be expressed. `top_k` > 0 keeps only the k
    labels most probable under the base model as hypotheses (appendix); the others get
    q = 0 (a logit of −1e4, finite for attacks).

    The refinement's sign(·) has a zero derivative, so the gradient of this forward with
    respect to x is the gradient through the base model at the refined points with the
    refinement treated as the identity: white-box attacks on the wrapper are the paper's
    adaptive (BPDA) attack. `bpda` is the same function, for the bpda-pgd attack.
    """

    def __init__(
        self, base: nn.Module, lam: float, iterations: int = 1, top_k: int = 0, step: float = 0.0
    ):
        super().__init__(base)
        self.lam, self.iterations, self.top_k, self.step = lam, iterations, top_k, step

    def _refine(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The refined rows minus x, computed without a graph (a constant offset)."""
        step = self.step or self.lam / self.iterations
        with torch.enable_grad():
            cur = x.detach()
            for _ in range(self.iterations):
                cur = cur.clone().requires_grad_(True)
                loss = F.cross_entropy(self.base(cur), labels, reduction="sum")
                (g,) = torch.autograd.grad(loss, cur)
                cur = cur.detach() - step * g.sign()
                cur = (x.detach() + (cur - x.detach()).clamp(-self.lam, self.lam)).clamp(0, 1)
        return (cur - x.detach()).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        classes = self.classes
        if self.top_k and self.top_k < classes:
            with torch.no_grad():
                hyp = self.base(x).topk(self.top_k, dim=1).indices  # (n, k)
        else:
            hyp = torch.arange(classes, device=x.device).expand(n, classes)
        k = hyp.shape[1]
        rows = x.repeat_interleave(k, dim=0)
        labels = hyp.reshape(-1)
        refined = rows + self._refine(rows, labels) if self.lam > 0 else rows
        logp = F.log_softmax(self.base(refined), dim=1)
        logp_i = logp.gather(1, labels[:, None]).view(n, k)  # log p_i of eq. 11
        logq = logp_i - torch.logsumexp(logp_i, dim=1, keepdim=True)  # eq. 12
        if k == classes:
            return logq  # hypotheses are the labels 0..C-1 in order
        out = torch.full((n, classes), -1e4, device=x.device, dtype=logq.dtype)
        return out.scatter(1, hyp, logq)

    def bpda(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)


class HardLabel(Wrapper):
    """A broken "defense" kept to test evaluations (Carlini et al. 2019, §4.3; Pintor et al.
    2022's unavailable gradients): the wrapped model's prediction as one-hot scores. The
    prediction is unchanged; its gradient is zero everywhere, so gradient attacks fail and
    the model looks robust. `advbench report --checks` must say so."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.base(x)
        return F.one_hot(logits.argmax(1), logits.shape[1]).to(logits.dtype)


class NumpyQuantize(Wrapper):
    """A broken "defense" kept to test evaluations: the input quantized to `levels` levels
    in numpy, outside autograd (a non-differentiable input step, like a JPEG encoder), then
    the wrapped model. The output has no gradient with respect to the input at all."""

    def __init__(self, base: nn.Module, levels: int):
        super().__init__(base)
        self.levels = levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = (x.detach().cpu().numpy().clip(0, 1) * self.levels).round() / self.levels
        return self.base(torch.from_numpy(q).to(x.device, x.dtype))
