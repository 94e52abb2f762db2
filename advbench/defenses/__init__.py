"""Defense registry. A training-time defense is a factory: params -> loss function
(model, x, y) -> dict of named loss terms (the cross-entropy included), summed for the step.

Each entry's metadata gives its kind and the fine-tuning defaults of the paper it follows.
"""

from __future__ import annotations

from typing import Any

from advbench.registry import Param, Registry

DEFENSES: Registry[Any] = Registry("defense")


def _jacobian(params: dict[str, Any]):
    from advbench.defenses.jacobian import jacobian_loss

    return jacobian_loss(**params)


DEFENSES.register(
    "jacobian",
    _jacobian,
    params=(
        Param("lambda", float, 0.01, "weight of the regulariser"),
        Param("projections", int, 1, "random projections per step (Hoffman et al.)"),
        Param("exact", bool, False, "exact Jacobian (one backward pass per class)"),
        Param(
            "form",
            str,
            "hoffman",
            "hoffman: λ·½·mean‖J‖²_F; jakubovitz: λ·‖J_batch‖_F / B (eq. 4, always exact)",
            choices=("hoffman", "jakubovitz"),
        ),
    ),
    kind="training-time",
    paper="fidel, jakubovitz",
    help="Jacobian regulariser on the input-logit Jacobian (post-training fine-tuning)",
    # fidel §IV-B: Adam, lr 1e-4, continued from the pretrained model.
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 20},
)
