"""Indicators of an attack that failed to optimise (Pintor et al. 2022): silent success,
incomplete optimisation, transfer failure.
"""

from __future__ import annotations

import json

from advbench.checks.base import (
    SOURCES,
    Run,
    Verdict,
    _cmd,
    _more,
    _not_recorded,
    _pct,
    _verdict,
)
from advbench.metrics import within
from advbench.store import is_robust


def check_silent(model: str, runs: list[Run]) -> Verdict:
    """Instances reported robust at ε whose attack had an adversarial iterate within ε
    (on the model itself, white-box): the returned point was not the best one."""
    silent, total, where = 0, 0, []
    for r in (r for r in runs if r.white_box and r.rows):
        rec = [s for s in r.rows if s["grad_passes"]]
        robust = [s for s in rec if is_robust(s)]
        hits = [s for s in robust if s["best_norm"] is not None
                and within(s["best_norm"], r.eps)]  # fmt: skip
        total += len(robust)
        if hits:
            silent += len(hits)
            where.append(f"{r.label} ε={r.eps:g}: {len(hits)}")
    if not total:
        return _not_recorded("silent")
    text = f"robust instances with an adversarial iterate in budget: {_pct(silent, total)}"
    if where:
        text += f" ({'; '.join(where[:4])})"
    return _verdict("silent", silent / total, silent, text,
                    "read those instances as broken; make the attack return its best iterate "
                    "and re-run with --force", warn=0.01, fail=0.05)  # fmt: skip


INCOMPLETE_DROP = 0.05  # the best margin fell by more than this share of its start


def still_falling(trace: list[float | None]) -> bool:
    """The best margin so far still fell over the last quarter of the recorded passes by
    more than INCOMPLETE_DROP of its starting magnitude."""
    t = [v for v in trace if v is not None]
    if len(t) < 4:
        return False
    q = max(1, len(t) // 4)
    return t[-1 - q] - t[-1] > INCOMPLETE_DROP * max(abs(t[0]), 1e-6)


def check_incomplete(model: str, runs: list[Run]) -> Verdict:
    """Instances the attack failed on whose best margin was still falling at the end:
    more steps would probably have broken some."""
    falling, total, where, worst = 0, 0, [], None
    for r in (r for r in runs if r.white_box and r.rows):
        failed = [s for s in r.rows if s["loss_trace"] and is_robust(s)]
        k = sum(still_falling(json.loads(s["loss_trace"])) for s in failed)
        total += len(failed)
        if k:
            falling += k
            where.append(f"{r.label} ε={r.eps:g}: {k}/{len(failed)}")
            if worst is None or k > worst[1]:
                worst = (r, k)
    if not total:
        return _not_recorded("incomplete")
    text = f"failed instances whose loss was still falling at the end: {_pct(falling, total)}"
    if where:
        text += f" ({'; '.join(where[:4])})"
    settle = ""
    if worst is not None:
        r = worst[0]
        settle = _cmd("attack", "--model", model, "--attack", r.attack, "--eps", f"{r.eps:g}",
                      *_more(r.params), "--force")  # fmt: skip
        if r.kind == "minimal":
            settle += "  (one minimal search serves every ε: its trace is shared)"
    return _verdict("incomplete", falling / total, falling, text, settle)


def check_transfer(model: str, runs: list[Run]) -> Verdict:
    """Examples that fooled the surrogate they were crafted on but not this model: where
    most do not transfer, transfer rows say little about robustness."""
    fooled, kept = 0, 0
    for r in (r for r in runs if not r.white_box):
        for s in r.rows:
            if s["source_success"] and s["clean_pred"] == s["label"]:
                fooled += 1
                kept += is_robust(s)
    if not fooled:
        return Verdict("transfer", "skip", "no transfer or proxy run with examples that fooled "
                       "their source", "", SOURCES["transfer"])  # fmt: skip
    text = f"examples that fooled the surrogate but not this model: {_pct(kept, fooled)}"
    return _verdict("transfer", kept / fooled, kept, text,
                    "judge robustness by white-box or adaptive attacks, not transfer rows",
                    warn=0.5, fail=1.01)  # fmt: skip
