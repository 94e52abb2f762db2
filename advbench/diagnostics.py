"""What an attack leaves behind besides its result, per instance, for the evaluation
checklist (`advbench.checks`: Carlini et al. 2019 "On Evaluating Adversarial Robustness",
Pintor et al. 2022 "Indicators of Attack Failure").

Recorded while the attack runs, on the crafting model (the model itself for white-box
runs), at every forward pass that carries a gradient and holds exactly the batch's
instances in order, or the rows of them it names (our PGD with early stop passes only the
instances still open): PGD, FGSM, C&W and DeepFool steps; HopSkipJump's queries and attacks
that split the batch otherwise are not recorded, and say so by `grad_passes` = 0:
- `best_norm`: the smallest distance (in the run's norm) from the clean input of an iterate
  the crafting model classified adversarially. An instance reported robust at ε with
  best_norm ≤ ε is a *silent success*: the attack had an adversarial point in its budget
  and returned another.
- `loss_trace`: the best margin so far (logit of the true class minus the largest other;
  for a targeted attack, the largest other minus the target's; < 0 is adversarial), at up
  to `TRACE_POINTS` evenly spaced passes, the last one included. Still falling at the end:
  *incomplete optimisation*.
- `grad_zero`, `grad_nonfinite`, `grad_passes`: backward passes whose input gradient for
  this instance was all zero, or held a NaN/inf, out of those recorded; `grad_unavailable`:
  forward passes whose output had no gradient with respect to the input at all (a step
  outside autograd). The attack then runs on a zero gradient instead of failing.
And after the attack, on the evaluated model:
- `noise_flips`: of one repeated clean prediction and `NOISE_DRAWS` predictions under
  uniform noise of L∞ radius `NOISE_RADIUS` (a quarter of an 8-bit level), how many differ
  from the clean prediction: *unstable predictions* (a randomised or brittle model).
- `output_kind`: logits, probabilities (rows in [0, 1] summing to 1) or one-hot scores:
  attacks' losses assume logits.
- `source_success` (transfer and proxy runs): whether the example fooled the model it was
  crafted on; fooling the surrogate but not the target is a *transfer failure*.
Nothing here draws from the global random stream before the attack's result is judged, so
stored outcomes are the same with or without it.
"""

from __future__ import annotations

import json
import math

import torch

from advbench.criteria import margin
from advbench.metrics import distance

TRACE_POINTS = 16
NOISE_RADIUS = 1 / 1020  # a quarter of one 8-bit level
NOISE_DRAWS = 4
_KEEP = 512  # passes kept in memory before thinning to every other one


class Observer:
    """Collects one batch's diagnostics from the passes `engine.Counted` shows it."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, target, norm: str):
        self.x, self.y, self.target, self.norm = x.detach(), y, target, norm
        n = len(x)
        self.best_norm = torch.full((n,), math.inf)
        self.best = torch.full((n,), math.inf)  # best margin so far
        self.trace: list[torch.Tensor] = []
        self.trace_at: list[int] = []
        self.passes = 0
        self.stride = 1
        self.grad_zero = torch.zeros(n, dtype=torch.long)
        self.grad_nonfinite = torch.zeros(n, dtype=torch.long)
        self.grad_passes = torch.zeros(n, dtype=torch.long)
        self.unavailable = 0

    def matches(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> bool:
        """Whether `x` holds the batch's instances in order (`rows` of them, when an attack
        that stops each instance at its first success passes only the open ones)."""
        if rows is None:
            return x.shape == self.x.shape
        return len(x) == len(rows) and x.shape[1:] == self.x.shape[1:]

    def forward(self, x: torch.Tensor, out: torch.Tensor, rows: torch.Tensor | None = None):
        with torch.no_grad():
            if rows is None:  # the whole batch, in order (every attack but early-stop PGD)
                every, y, target, x0 = slice(None), self.y, self.target, self.x
            else:
                every = rows.cpu()
                y, x0 = self.y[rows.to(self.y.device)], self.x[rows.to(self.x.device)]
                target = None if self.target is None else self.target[rows.to(self.target.device)]
            m = margin(out, y, target).cpu()
            self.best[every] = torch.minimum(self.best[every], m)
            d = distance(x - x0, self.norm).cpu()
            hit = m < 0
            was = self.best_norm[every]
            self.best_norm[every] = torch.where(hit & (d < was), d, was)
        if self.passes % self.stride == 0:
            self.trace.append(self.best.clone())
            self.trace_at.append(self.passes)
            if len(self.trace) > _KEEP:  # thin: every other kept pass, and record half as often
                self.trace, self.trace_at = self.trace[::2], self.trace_at[::2]
                self.stride *= 2
        self.last = self.best.clone()
        self.passes += 1

    def grad(self, g: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        every = slice(None) if rows is None else rows.cpu()
        flat = g.detach().flatten(1).cpu()
        nonfinite = ~torch.isfinite(flat).all(1)
        self.grad_nonfinite[every] += nonfinite.long()
        self.grad_zero[every] += ((flat == 0).all(1) & ~nonfinite).long()
        self.grad_passes[every] += 1

    def rows(self) -> list[dict]:
        """Per instance: the columns above (None where nothing was recorded)."""
        n = len(self.x)
        trace = None
        if self.passes:
            points, at = list(self.trace), list(self.trace_at)
            if at[-1] != self.passes - 1:
                points.append(self.last)
            keep = sorted({round(i * (len(points) - 1) / (TRACE_POINTS - 1))
                           for i in range(TRACE_POINTS)})  # fmt: skip
            trace = torch.stack([points[i] for i in keep], 1)
        out = []
        for i in range(n):
            out.append({
                "best_norm": None if not math.isfinite(self.best_norm[i]) else
                float(self.best_norm[i]),
                "loss_trace": None if trace is None else json.dumps(
                    [float(f"{v:.5g}") if math.isfinite(v) else None
                     for v in trace[i].tolist()]),
                "grad_zero": int(self.grad_zero[i]),
                "grad_nonfinite": int(self.grad_nonfinite[i]),
                "grad_passes": int(self.grad_passes[i]),
                "grad_unavailable": self.unavailable,
            })  # fmt: skip
        return out


def output_kind(out: torch.Tensor) -> list[str]:
    """Per row: one-hot, probabilities or logits."""
    out = out.detach().float()
    unit = (out >= 0).all(1) & (out <= 1).all(1) & ((out.sum(1) - 1).abs() < 1e-4)
    onehot = unit & ((out == 0) | (out == 1)).all(1)
    return ["one-hot" if h else "probabilities" if u else "logits"
            for h, u in zip(onehot.tolist(), unit.tolist(), strict=True)]  # fmt: skip


@torch.no_grad()
def stability(model, x: torch.Tensor, clean_pred: torch.Tensor, seed: int) -> tuple[list, list]:
    """(noise_flips, output_kind) per instance. The noise comes from its own generator, so
    the global random stream (a randomised model's, an attack's) is left as it was."""
    gen = torch.Generator().manual_seed(seed)
    out = model(x)
    flips = (out.argmax(1) != clean_pred).long()
    for _ in range(NOISE_DRAWS):
        noise = (torch.rand(x.shape, generator=gen) * 2 - 1).to(x.device, x.dtype)
        flips += (model((x + NOISE_RADIUS * noise).clamp(0, 1)).argmax(1) != clean_pred).long()
    return flips.cpu().tolist(), output_kind(out)


COLUMNS = ("best_norm", "loss_trace", "grad_zero", "grad_nonfinite", "grad_passes",
           "grad_unavailable", "noise_flips", "output_kind", "source_success")  # fmt: skip
