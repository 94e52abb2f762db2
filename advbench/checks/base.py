"""What every check shares: the thresholds, the sources, a verdict, a run as the checks
see it, and the helpers that compare runs.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from typing import Any

from advbench import paired
from advbench.store import is_robust

WARN_SHARE, FAIL_SHARE = 0.05, 0.20  # default: share of instances that warns, that fails


ONE_STEP = {"fgsm"}


ITERATIVE = {"pgd-linf", "bim", "apgd", "bpda-pgd"}


OTHERS = {"hsj": "decision-based", "noise": "random noise"}  # besides transfer / proxy


EFFORT = ("steps", "restarts", "binary_search_steps", "max_iter", "max_eval", "samples")


SOURCES = {
    "monotone": "Carlini et al. 2019 §5.7: accuracy must not rise with ε",
    "unbounded": "Carlini et al. 2019 §5.2 / Pintor et al. 2022 unconstrained attack failure",
    "iterative": "Carlini et al. 2019 §5.5: iterative attacks beat one-step ones",
    "white-box": "Carlini et al. 2019 §5.5: white-box beats transfer, decision-based, noise",
    "effort": "Carlini et al. 2019 §5.6: more steps or restarts must not lower accuracy",
    "silent": "Pintor et al. 2022 silent success",
    "incomplete": "Pintor et al. 2022 incomplete optimisation",
    "gradients": "Pintor et al. 2022 unavailable gradients; Carlini et al. 2019 §5.4",
    "unstable": "Pintor et al. 2022 unstable predictions",
    "outputs": "Carlini et al. 2019 §4.3: attack logits, not probabilities or hard labels",
    "transfer": "Pintor et al. 2022 transfer failure",
    "optimality": "Cinà et al. 2024 (AttackBench) optimality against a fixed reference",
}


@dataclass
class Verdict:
    check: str
    status: str  # pass, warn, fail, skip
    numbers: str
    settle: str = ""  # the command (or step) that would settle a warning
    source: str = ""


@dataclass
class Run:
    """A stored run of the model, with its per-instance rows (dicts) when loaded."""

    id: str
    attack: str
    label: str
    norm: str
    kind: str
    eps: float
    targeted: str | None
    threat: str
    params: dict[str, Any]
    robust: int
    n: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    trace: list[Any] | None = None

    @property
    def acc(self) -> float:
        return self.robust / self.n if self.n else math.nan

    @property
    def white_box(self) -> bool:
        return self.threat == "white-box"


def _verdict(check: str, share: float, count: int, what: str, settle: str = "",
             warn: float = WARN_SHARE, fail: float = FAIL_SHARE) -> Verdict:  # fmt: skip
    status = "fail" if share > fail else "warn" if count and share > warn else "pass"
    if status == "pass" and count:
        what += " (within tolerance)"
    return Verdict(check, status, what, settle if status != "pass" else "", SOURCES[check])


def _cmd(*args) -> str:
    return "advbench " + " ".join(shlex.quote(str(a)) for a in args)


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.1%})" if n else "0/0"


def _worst(parts: list[tuple[int, str, float]], k: int = 4) -> str:
    """The k largest counts' texts (of all the comparisons made)."""
    shown = [p[1] for p in sorted(parts, key=lambda p: -p[0])[:k]]
    return "; ".join(shown) + (f"; {len(parts) - k} more" if len(parts) > k else "")


def _not_recorded(check: str) -> Verdict:
    return Verdict(
        check,
        "skip",
        "not recorded: runs stored before migration 0006, or attacks without gradient passes "
        "(HopSkipJump, noise)",
        "re-run the white-box attacks with --force to record it",
        SOURCES[check],
    )


def _by_label(runs: list[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for r in runs:
        if not r.targeted:
            out.setdefault(f"{r.label}", []).append(r)
    return out


# parameters that bound a minimal attack in another norm than the one it is judged in
# (madnet's C&W: L2 judged at ε = ∞, searched or clipped inside an L∞ ball)
OTHER_NORM_BOUNDS = ("linf", "linf_clip")


def _unbounded(r: Run) -> bool:
    if any(r.params.get(k) is not None and r.params[k] < 1 for k in OTHER_NORM_BOUNDS):
        return False
    return not math.isfinite(r.eps) or (r.norm in ("linf", "l0") and r.eps >= 1)


def _plain(r: Run) -> bool:
    return r.white_box and not r.targeted


def _same_budget(a: Run, b: Run) -> bool:
    return a.norm == b.norm and math.isclose(a.eps, b.eps, rel_tol=1e-6) and a.id != b.id


def _broken_only_by(other: Run, peers: list[Run]) -> tuple[int, int]:
    """(instances `other` broke that every peer left robust, instances in all of them)."""

    def key(s):
        return (s["idx"], s["target"] if s["target"] is not None else -1)

    peer_robust = [{key(s): is_robust(s) for s in p.rows} for p in peers]
    k = n = 0
    for s in other.rows:
        if s.get("init_failed") or s["clean_pred"] != s["label"]:
            continue
        if not all(key(s) in pr for pr in peer_robust):
            continue
        n += 1
        k += (not is_robust(s)) and all(pr[key(s)] for pr in peer_robust)
    return k, n


ALPHA = 0.05  # a paired difference decides a comparison check at this two-sided p


def _paired(a: Run, b: Run) -> paired.Paired:
    """Run a against run b on the instances both started (exact McNemar; per image on
    targeted rows): f instances robust under a only, g under b only."""

    def robust(run: Run) -> dict:
        return {(s["idx"], s["target"]): int(is_robust(s)) for s in run.rows}

    return paired.pair(robust(a), robust(b), binary=True)


def _moved(t: paired.Paired, a: str, b: str) -> str:
    """'3 instances robust under A only, 17 under B only (McNemar p 0.003)'."""
    return (f"{t.f} instances robust under {a} only, {t.g} under {b} only of {t.n} "
            f"(McNemar p {paired.fmt_p(t.p)})")  # fmt: skip


def _more_effort(weak: Run, strong: Run) -> bool:
    if (weak.attack, weak.norm, weak.targeted, weak.threat) != (
        strong.attack,
        strong.norm,
        strong.targeted,
        strong.threat,
    ) or not _same_budget(weak, strong):
        return False
    keys = set(weak.params) | set(strong.params)
    differ = {k for k in keys if weak.params.get(k) != strong.params.get(k)}
    if not differ or not differ <= set(EFFORT):
        return False
    return all((strong.params.get(k) or 1) >= (weak.params.get(k) or 1) for k in differ)


def _restart_curve(r: Run) -> list[int] | None:
    """Robust instances after each restart of a first-success restarted run (its trace:
    per instance, fooled yet after each restart)."""
    if not r.rows or r.params.get("keep", "first-success") != "first-success":
        return None
    traces = [json.loads(s["trace"]) if s.get("trace") else None for s in r.rows]
    if not traces or any(t is None or not t or not isinstance(t[0], int) for t in traces):
        return None
    k = min(len(t) for t in traces)
    if k < 2:
        return None
    return [sum(1 for s, t in zip(r.rows, traces, strict=True)
                if s["clean_pred"] == s["label"] and not t[i]) for i in range(k)]  # fmt: skip


def _more(params: dict) -> list[str]:
    """--param arguments doubling the run's effort (steps, else iterations)."""
    for key in ("steps", "max_iter"):
        if params.get(key):
            return ["--param", f"{key}={int(params[key]) * 2}"]
    return ["--param", "steps=100"]
