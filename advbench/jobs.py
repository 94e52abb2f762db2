"""An attack job: what to run (attack, ε, parameters, targeting, source), checked whole.

A job is data: suites build one per row, `attack --attack` builds one from its flags, and
the engine runs it. It lives apart from the engine so that reading a suite or a report
never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from advbench.attacks import ATTACKS, check_early_stop, norm_of
from advbench.errors import BadInput, unknown

TARGETED = ("all-others", "random")
# Where a transfer job crafts its examples. A plain stored model name works too.
SOURCES = {
    "root": "the model's undefended ancestor (itself when it is undefended)",
    "parent": "the model it was hardened or wrapped from",
    "base": "the model an inference-time defense wraps (the model itself otherwise: pesso)",
    "model:NAME": "the stored model NAME",
    "arch:ARCH": "the one stored undefended model of architecture ARCH on the same data set",
    "proxy:ARCH": "a proxy of architecture ARCH trained on the model's outputs (--proxy)",
    "given": "the model named by --source-model (or the --proxy); skipped without one",
}


@dataclass
class AttackJob:
    attack: str
    eps: list[float]
    params: dict[str, Any] = field(default_factory=dict)  # resolved (defaults filled in)
    label: str | None = None
    suite: str | None = None
    targeted: str | None = None  # None (untargeted), all-others or random
    source: str | None = None  # where to craft (transfer); see SOURCES
    declared: str | None = None  # the source the suite row declared (kept for the report)
    only_correct: bool = False
    n: int | None = None  # samples, when the job wants its own count (fidel's targeted runs)
    # Keep the adversarial examples (at the largest ε) beside the database, for tables that
    # measure them (training-set distance, ‖J‖_F at DeepFool points). Not part of a run's
    # identity: it changes what is kept, not what is measured.
    store_examples: bool = False
    # Budget attacks over several ε: take a sample broken at a smaller ε as broken at the
    # next (its example lies in the larger ball) instead of attacking it again. Suites of
    # papers whose protocol attacks every ε afresh turn it off ("shortcuts": false).
    shortcuts: bool = True
    # How a minimal attack's example is judged at each ε: "minimal" (it counts where its
    # norm is within ε; else the input is kept) or "clip" (foolbox 3's `epsilons`: the
    # example's perturbation clipped onto the ε-ball, judged by the model: fidel's tables).
    judge: str = "minimal"


JUDGES = ("minimal", "clip")


def make_job(
    attack: str,
    eps: Sequence[float],
    overrides: dict[str, Any] | None = None,
    label: str | None = None,
    suite: str | None = None,
    *,
    targeted: str | None = None,
    source: str | None = None,
    only_correct: bool = False,
    n: int | None = None,
    store_examples: bool = False,
    shortcuts: bool = True,
    judge: str = "minimal",
) -> AttackJob:
    entry = ATTACKS.get(attack)
    if not eps:
        raise BadInput(f"{attack}: no ε given (use --eps, e.g. --eps 0.1,0.3)")
    for e in eps:
        if not e >= 0:  # also rejects NaN
            raise BadInput(f"--eps {e} is invalid: ε must be a number >= 0")
        if math.isfinite(e) and e > 1 and norm_of(attack, overrides) == "linf":
            raise BadInput(
                f"--eps {e:g} is invalid for {attack}: an L∞ budget in [0, 1] pixel units "
                "must be <= 1 (1 already allows any image)"
            )
        if math.isinf(e) and entry.meta["kind"] != "minimal":
            raise BadInput(
                f"--eps inf is only meaningful for minimal-perturbation attacks; {attack} "
                "is fixed-budget (for an unbounded L∞ budget on [0, 1] inputs use 1)"
            )
    if targeted is not None:
        if targeted not in TARGETED:
            raise unknown("--targeted mode", targeted, TARGETED)
        if not entry.meta.get("targeted"):
            able = [e.name for e in ATTACKS if e.meta.get("targeted")]
            raise BadInput(f"{attack} has no targeted variant; targeted attacks: {', '.join(able)}")
    if n is not None and n <= 0:
        raise BadInput(f"--n {n} must be > 0")
    if judge not in JUDGES:
        raise unknown("judge", judge, JUDGES)
    if judge == "clip" and (entry.meta["kind"] != "minimal" or norm_of(attack, overrides) == "l0"):
        raise BadInput(f"judge clip is for L2 and L∞ minimal attacks; {attack} is not one")
    params = entry.resolve(overrides)
    check_early_stop(params)  # before any run is registered
    return AttackJob(
        attack,
        sorted(set(float(e) for e in eps)),
        params,
        label,
        suite,
        targeted,
        source,
        source,
        only_correct,
        n,
        store_examples,
        shortcuts,
        judge,
    )
