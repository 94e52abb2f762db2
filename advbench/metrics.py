"""Accuracy with its confidence interval, and perturbation norms."""

from __future__ import annotations

import math


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion; sensible at 0 %, 100 % and small n."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # the interval holds p; rounding put its low end at 7e-16 for 0 of 100 (a figure's
    # error bar then had a negative length), so it is closed onto p where it strays
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


# A feature counts as changed (L0) when it moved by more than this.
CHANGED = 1e-7


def perturbation_norms(delta):
    """Per-sample L0 (a count of features changed), L2 and L∞ norms of a batch of
    perturbations (torch tensor): what a sample row stores."""
    flat = delta.flatten(1)
    return (
        (flat.abs() > CHANGED).sum(1).float(),
        flat.norm(p=2, dim=1),
        flat.abs().amax(1) if flat.shape[1] else flat.sum(1),
    )


def mean_interval(values, z: float = 1.96) -> tuple[float, float]:
    """95 % interval of a mean (normal approximation: mean ± z·s/√n, s the sample standard
    deviation), for ρ and ‖J‖ cells; needs two values or more."""
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = z * math.sqrt(var / n)
    return mean - half, mean + half


def distance(delta, norm: str):
    """Per-sample size of a batch of perturbations in a budget's norm: L2, L∞, or L0 as the
    share of features changed (an L0 ε is a share; the sample row stores the count)."""
    flat = delta.detach().flatten(1).float()
    if norm == "l2":
        return flat.norm(dim=1)
    if norm == "l0":
        return (flat.abs() > CHANGED).float().mean(1)
    return flat.abs().amax(1)


# A perturbation within this relative tolerance of ε counts as within the budget: float32
# noise on a norm that lands on ε. One rule for the engine, the checklist and the figures.
EPS_TOL = 1e-5


def within(size, eps):
    """Whether a perturbation of `size` (a number or a tensor) is within budget `eps`."""
    return size <= eps * (1 + EPS_TOL)


# The registry's fixed-reference attack (suite optimality-reference), and the optimality
# against it under which a minimal attack is flagged (report and checklist; issue 30).
REFERENCE_ATTACK = "reference-min"
OPTIMALITY_WARN = 0.9


def instance_distance(clean_pred, label, min_norm, failed) -> float:
    """One instance's distance for optimality: 0 where the clean input is already
    misclassified, inf where the attack found nothing (or could not start), else its norm."""
    if clean_pred != label:
        return 0.0
    if min_norm is None or failed:
        return math.inf
    return float(min_norm)


def optimality(d: list[float], best: list[float]) -> float:
    """AttackBench's optimality of distances `d` against the per-instance best `best`
    (same instances, same order); NaN where no attack found anything to compare."""
    finite = [b for b in best if math.isfinite(b)]
    if not finite or len(d) != len(best):
        return math.nan
    top = max(finite)
    n = len(best)
    area = sum(min(v, top) for v in d) / n
    best_area = sum(min(v, top) for v in best) / n
    worst = sum(1 for b in best if b > 0) / n * top
    if worst - best_area <= 0:
        return math.nan
    return 1.0 - (area - best_area) / (worst - best_area)
