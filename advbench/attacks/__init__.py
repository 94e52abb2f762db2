"""Attack registry and the one contract every attack follows.

A *budget* attack (FGSM, PGD) is called once per ε: run(model, x, y, eps) -> adversarial x.
A *minimal* attack (C&W) is called once per batch: run(model, x, y) -> the smallest
adversarial it found (or x itself where it found none); the engine then judges success at
every ε from the per-sample minimal norm, so one run gives the whole accuracy-vs-ε curve.
"""

from __future__ import annotations

from typing import Any

from advbench.registry import Param, Registry

ATTACKS: Registry[Any] = Registry("attack")
_REL = "step size / ε; default 2.5 / steps (Madry et al.), so the steps can cross the ball"


def _fb(name: str):
    def factory(params: dict[str, Any]):
        from advbench.attacks import foolbox_attacks

        return getattr(foolbox_attacks, name)(**params)

    return factory


ATTACKS.register(
    "fgsm",
    _fb("fgsm"),
    params=(Param("norm", str, "linf", "linf (FGSM) or l2 (FGM)", choices=("linf", "l2")),),
    norm="linf",
    kind="budget",
    backend="foolbox",
    help="fast gradient sign method",
)
ATTACKS.register(
    "pgd-linf",
    _fb("pgd_linf"),
    params=(
        Param("steps", int, 40),
        Param("rel_stepsize", float, None, _REL),
        Param("random_start", bool, True),
    ),
    norm="linf",
    kind="budget",
    backend="foolbox",
    help="projected gradient descent, L∞",
)
ATTACKS.register(
    "pgd-l2",
    _fb("pgd_l2"),
    params=(
        Param("steps", int, 40),
        Param("rel_stepsize", float, None, _REL),
        Param("random_start", bool, True),
    ),
    norm="l2",
    kind="budget",
    backend="foolbox",
    help="projected gradient descent, L2",
)
ATTACKS.register(
    "cw-l2",
    _fb("cw_l2"),
    params=(
        Param("steps", int, 1000),
        Param("binary_search_steps", int, 9),
        Param("stepsize", float, 0.01),
        Param("confidence", float, 0.0),
        Param("initial_const", float, 1e-3),
        Param("abort_early", bool, True),
    ),
    norm="l2",
    kind="minimal",
    backend="foolbox",
    help="Carlini-Wagner L2 (minimal perturbation)",
)


def norm_of(name: str, params: dict[str, Any]) -> str:
    """The threat model's norm; FGSM's depends on its `norm` parameter."""
    return params.get("norm") or ATTACKS.get(name).meta["norm"]
