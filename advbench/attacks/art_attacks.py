"""Adapters over the Adversarial Robustness Toolbox (ART).

`fgsm-min` uses ART's minimal FGSM because zantedeschi et al. (ART's authors) measured their
"minimal FGSM" with it: ε grows by `eps_step` until the label flips, up to `eps_max`.
"""

from __future__ import annotations

import numpy as np
import torch


def art_classifier(model):
    """Wrap a zoo model for ART; inputs are cast to float32 (ART passes float64 arrays)."""
    from art.estimators.classification import PyTorchClassifier

    class _Float32(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x.float())

    return PyTorchClassifier(
        model=_Float32(model).eval(),
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(model.input_shape),
        nb_classes=model.classes,
        clip_values=(0.0, 1.0),
        device_type="gpu" if next(model.parameters()).is_cuda else "cpu",
    )


def fgsm_min(*, eps_step: float, eps_max: float):
    from art.attacks.evasion import FastGradientMethod

    def run(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        attack = FastGradientMethod(
            art_classifier(model),
            norm=np.inf,
            eps=eps_max,
            eps_step=eps_step,
            minimal=True,
            batch_size=len(x),
        )
        adv = attack.generate(x.cpu().numpy().astype(np.float32), y.cpu().numpy())
        return torch.from_numpy(adv.astype(np.float32)).to(x.device)

    return run
