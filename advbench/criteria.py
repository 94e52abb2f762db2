"""What counts as a successful attack on one instance (foolbox's criteria), written once.

Untargeted (foolbox's `Misclassification`): the prediction is not the label. Targeted
(`TargetedMisclassification`): the prediction is the target. advbench judges success by a
model's own prediction, never by an attack's flag (engine/rows.py); `margin` is the same
criterion as a number, below 0 exactly where the output is adversarial, for the
checklist's traces (diagnostics.py). The per-sample size of a perturbation and whether it
is within ε are `metrics.distance` and `metrics.within`.
"""

from __future__ import annotations

import math


def adversarial(pred, y, target=None):
    """Per instance: misclassified (untargeted, `target` None) or classified as the target."""
    return pred != y if target is None else pred == target


def margin(out, y, target=None):
    """Per instance: the logit margin that is < 0 where `out` is adversarial."""
    out = out.detach().float()
    cls = y if target is None else target
    own = out.gather(1, cls.view(-1, 1)).squeeze(1)
    other = out.scatter(1, cls.view(-1, 1), -math.inf).amax(1)
    return own - other if target is None else other - own


__all__ = ["adversarial", "margin"]
