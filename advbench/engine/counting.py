"""Forward and backward passes per instance: the model wrapped so every pass is counted
(and observed for the checklist's diagnostics), and a batch's cost per instance.
"""

from __future__ import annotations

import torch

from advbench.diagnostics import Observer


class Counted(torch.nn.Module):
    """Wraps a model to count the input rows it forwards and back-propagates through, so
    every sample row can say what the attack cost (passes per instance, or queries), and
    to show each pass to the batch's `diagnostics.Observer`.

    A forward whose output has no gradient with respect to an input that asks for one (a
    step outside autograd: numpy, a hard argmax) is given a zero gradient instead, and
    counted as unavailable: the attack runs and fails, and the checklist says why, rather
    than the run crashing."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.input_shape = inner.input_shape
        self.classes = inner.classes
        self.rows_forward = 0
        self.rows_backward = 0
        self.observer: Observer | None = None
        self.rows: torch.Tensor | None = None  # see restrict
        if hasattr(inner, "bpda"):
            self.bpda = self._bpda

    def _observe(self, x, out):
        if not (torch.is_grad_enabled() and x.requires_grad):
            return out
        if not out.requires_grad:
            out = out + 0.0 * x.flatten(1).sum(1, keepdim=True).to(out.dtype)
            if self.observer is not None:
                self.observer.unavailable += 1
        observer, rows = self.observer, self.rows
        if observer is not None and observer.matches(x, rows):
            observer.forward(x, out, rows)
            x.register_hook(lambda g: observer.grad(g, rows))
        return out

    def restrict(self, rows: torch.Tensor | None) -> None:
        """The next passes hold only these rows of the batch, in order (an attack that
        stops each instance at its first success: `attacks.own.pgd_early_stop`); None: all
        of them. The diagnostics are credited to those rows."""
        self.rows = rows

    def _count(self, x):
        self.rows_forward += len(x)
        if x.requires_grad:
            x.register_hook(self._backward_hook(len(x)))

    def _backward_hook(self, rows):
        def hook(grad):
            self.rows_backward += rows

        return hook

    def forward(self, x):
        self._count(x)
        return self._observe(x, self.inner(x))

    def _bpda(self, x):
        self._count(x)
        return self._observe(x, self.inner.bpda(x))

    def reset(self) -> None:
        self.rows_forward = self.rows_backward = 0
        self.rows = None


def cost_of(counted: Counted, crafted, size: int):
    """Per-instance forward/backward passes of this batch: the batch's rows / its size, or
    the attack's own per-sample query count. A minimal attack's one search serves every ε,
    so each of its runs records the whole search's cost."""
    if crafted.queries is not None:
        fwd = crafted.queries.float().cpu()
    else:
        fwd = torch.full((size,), counted.rows_forward / size)
    bwd = torch.full((size,), counted.rows_backward / size)
    return fwd, bwd
