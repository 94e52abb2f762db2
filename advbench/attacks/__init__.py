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


def _lazy(module: str, name: str):
    """A factory that imports its back-end (foolbox, ART) only when the attack is built."""

    def factory(params: dict[str, Any]):
        import importlib

        return getattr(importlib.import_module(f"advbench.attacks.{module}"), name)(**params)

    return factory


def _fb(name: str):
    return _lazy("foolbox_attacks", name)


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


ATTACKS.register(
    "bim",
    _fb("bim"),
    params=(
        Param("steps", int, 10),
        Param("rel_stepsize", float, None, "step size / ε; default 1 / steps"),
    ),
    norm="linf",
    kind="budget",
    backend="foolbox",
    help="basic iterative method (no random start)",
)
ATTACKS.register(
    "rfgsm",
    _fb("rfgsm"),
    params=(Param("alpha", float, 0.05, "size of the random step"),),
    norm="linf",
    kind="budget",
    backend="own",
    help="random step then FGSM (Tramèr et al.)",
)
_DF = (
    Param("steps", int, 100),
    Param("candidates", int, 10, "classes considered"),
    Param("overshoot", float, 0.02),
)
ATTACKS.register(
    "deepfool-l2",
    _fb("deepfool_l2"),
    params=_DF,
    norm="l2",
    kind="minimal",
    backend="foolbox",
    help="DeepFool L2 (minimal); ρ_adv = min_norm / x_l2 per sample",
)
ATTACKS.register(
    "deepfool-linf",
    _fb("deepfool_linf"),
    params=_DF,
    norm="linf",
    kind="minimal",
    backend="foolbox",
    help="DeepFool L∞ (minimal)",
)


def _art(name: str):
    return _lazy("art_attacks", name)


ATTACKS.register(
    "fgsm-min",
    _art("fgsm_min"),
    params=(
        Param("eps_step", float, 0.01, "ε increment"),
        Param("eps_max", float, 1.0, "largest ε tried"),
    ),
    norm="linf",
    kind="minimal",
    backend="art",
    help="FGSM with ε grown until the label flips (zantedeschi's minimal FGSM)",
)


def norm_of(name: str, params: dict[str, Any]) -> str:
    """The threat model's norm; FGSM's depends on its `norm` parameter."""
    return params.get("norm") or ATTACKS.get(name).meta["norm"]
