"""Building blocks shared by the zoo: selectable activations that can record their outputs,
in-model normalisation, and the ZooModel base class with logits / embedding / activations."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = ("relu", "brelu", "leaky-relu")


class Activation(nn.Module):
    """ReLU, bounded ReLU min(max(0, x), t) (zantedeschi), or leaky ReLU (madnet).

    When `record` is a list, every call appends its output: defenses such as NsLoss need
    every activation output, and a module reused in several places is recorded each time.
    """

    def __init__(self, kind: str = "relu", param: float | None = None) -> None:
        super().__init__()
        if kind not in ACTIVATIONS:
            raise ValueError(kind)
        self.kind = kind
        self.param = param if param is not None else {"brelu": 1.0, "leaky-relu": 0.1}.get(kind)
        self.record: list[torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "relu":
            out = torch.relu(x)
        elif self.kind == "brelu":
            out = torch.clamp(x, 0.0, float(self.param))
        else:
            out = nn.functional.leaky_relu(x, float(self.param))
        if self.record is not None:
            self.record.append(out)
        return out

    def extra_repr(self) -> str:
        return f"{self.kind}, {self.param}" if self.param is not None else self.kind


class Normalize(nn.Module):
    """Per-channel standardisation inside the model, so attacks work in [0, 1] pixel units."""

    def __init__(self, mean, std) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ZooModel(nn.Module):
    """`norm` -> `features` (input to embedding) -> `head` (embedding to logits)."""

    def __init__(self, features: nn.Module, head: nn.Module, norm: nn.Module | None = None):
        super().__init__()
        self.norm = norm if norm is not None else nn.Identity()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.norm(x)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer's output, flattened to (N, D)."""
        return self.features(self.norm(x))

    def forward_with_activations(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and every Activation output of this forward pass, in call order."""
        acts = [m for m in self.modules() if isinstance(m, Activation)]
        record: list[torch.Tensor] = []
        for m in acts:
            m.record = record
        try:
            logits = self(x)
        finally:
            for m in acts:
                m.record = None
        return logits, record


def flat_size(module: nn.Module, shape: tuple[int, int, int]) -> int:
    """Number of features `module` produces for one input of `shape` (C, H, W)."""
    with torch.no_grad():
        was_training = module.training
        module.eval()
        out = module(torch.zeros(1, *shape))
        module.train(was_training)
    return int(out.flatten(1).shape[1])
