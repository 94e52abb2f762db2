"""Checks that compare attacks with each other (Carlini et al. 2019 §5): accuracy falls
with ε, unbounded attacks succeed, iterative beats one-step, white-box beats transfer
and decision-based, more effort does not lower accuracy.
"""

from __future__ import annotations

import math

from advbench.checks.base import (
    ALPHA,
    ITERATIVE,
    ONE_STEP,
    OTHERS,
    SOURCES,
    Run,
    Verdict,
    _broken_only_by,
    _by_label,
    _cmd,
    _more,
    _more_effort,
    _moved,
    _paired,
    _pct,
    _plain,
    _restart_curve,
    _same_budget,
    _unbounded,
    _verdict,
    _worst,
)
from advbench.metrics import OPTIMALITY_WARN, REFERENCE_ATTACK, instance_distance, optimality
from advbench.paired import fmt_p


def check_monotone(model: str, runs: list[Run]) -> Verdict:
    """Accuracy does not rise with ε, per white-box attack, judged on the instances both
    budgets attacked: a rise with a paired (exact McNemar) p < 0.05 fails, any other rise of
    more than one instance warns. A minimal attack's budgets are one search judged at every
    ε (the shortcut), monotone by construction: not evidence."""
    rises, judged, shortcut = [], 0, set()
    for label, series in _by_label([r for r in runs if r.white_box]).items():
        series = sorted((r for r in series if math.isfinite(r.eps)), key=lambda r: r.eps)
        if len(series) < 2:
            continue
        if series[0].kind == "minimal":
            shortcut.add(label)
            continue
        judged += 1
        for a, b in zip(series, series[1:], strict=False):
            if b.robust / b.n > a.robust / a.n and (b.robust - a.robust) > 1:
                t = _paired(b, a)  # f: robust at the larger ε only
                rises.append((label, a, b, t, t.p < ALPHA and t.f > t.g))
    note = f"; minimal (one search, monotone by construction): {', '.join(sorted(shortcut))}" \
        if shortcut else ""  # fmt: skip
    if not judged:
        return Verdict("monotone", "skip", "no budget attack stored at two ε or more" + note,
                       _cmd("attack", "--model", model, "--attack", "pgd-linf", "--eps",
                            "0.05,0.1,0.2,0.3"), SOURCES["monotone"])  # fmt: skip
    if not rises:
        return Verdict("monotone", "pass", f"{judged} attacks non-increasing in ε" + note,
                       source=SOURCES["monotone"])  # fmt: skip
    worst = rises[0]
    text = "; ".join(f"{lab}: {a.acc:.1%} at ε={a.eps:g} → {b.acc:.1%} at ε={b.eps:g}, "
                     f"{t.f} instances robust at the larger ε only, {t.g} at the smaller only "
                     f"(McNemar p {fmt_p(t.p)})" for lab, a, b, t, _ in rises)  # fmt: skip
    status = "fail" if any(sig for *_, sig in rises) else "warn"
    lab, a, b, _, _ = worst
    settle = _cmd("attack", "--model", model, "--attack", b.attack, "--eps", f"{b.eps:g}",
                  *_more(b.params), "--force")  # fmt: skip
    return Verdict("monotone", status, "accuracy rises: " + text + note, settle,
                   SOURCES["monotone"])  # fmt: skip


def check_unbounded(model: str, runs: list[Run]) -> Verdict:
    """An unbounded attack (ε = ∞, or L∞ / L0 ε ≥ 1 on [0, 1] inputs) reaches ~0 %."""
    unb = [r for r in runs if r.white_box and not r.targeted and _unbounded(r)]
    settle = _cmd(
        "attack", "--model", model, "--attack", "pgd-linf", "--eps", "1", "--param", "steps=100"
    )
    if not unb:
        return Verdict("unbounded", "warn", "no unbounded attack stored", settle,
                       SOURCES["unbounded"])  # fmt: skip
    best = min(unb, key=lambda r: r.acc)
    text = f"{best.label} ε={best.eps:g}: accuracy {_pct(best.robust, best.n)}"
    return _verdict("unbounded", best.acc, best.robust, text, settle, warn=0.01, fail=0.05)


def check_iterative(model: str, runs: list[Run]) -> Verdict:
    """Per instance: an iterative attack breaks whatever a one-step attack breaks at the
    same ε (white-box, untargeted, the same instances)."""
    missed, total, pairs = 0, 0, []
    for one in (r for r in runs if r.attack in ONE_STEP and _plain(r)):
        for it in (r for r in runs if r.attack in ITERATIVE and _plain(r) and _same_budget(r, one)):
            k, n = _broken_only_by(one, [it])
            missed, total = missed + k, total + n
            t = _paired(it, one)  # g: robust under the iterative attack only
            pairs.append((k, f"{one.label}/{it.label} ε={it.eps:g}: {k}, the iterative "
                          f"alone {t.g} (McNemar p {fmt_p(t.p)})", it.eps))  # fmt: skip
    if not pairs:
        return Verdict("iterative", "skip", "no one-step and iterative attack at one ε",
                       _cmd("attack", "--model", model, "--attack", "fgsm", "--eps", "0.1")
                       + " (and pgd-linf at the same ε)", SOURCES["iterative"])  # fmt: skip
    text = (f"instances a one-step attack broke and the iterative one did not: "
            f"{_pct(missed, total)} ({_worst(pairs)})")  # fmt: skip
    it = next(r for r in runs if r.attack in ITERATIVE and _plain(r))
    settle = _cmd("attack", "--model", model, "--attack", it.attack, "--eps", f"{it.eps:g}",
                  *_more(it.params), "--force")  # fmt: skip
    return _verdict("iterative", missed / total if total else 0.0, missed, text, settle,
                    warn=0.02, fail=0.05)  # fmt: skip


def check_white_box(model: str, runs: list[Run]) -> Verdict:
    """Per instance: white-box gradient attacks break whatever transfer, decision-based or
    random-noise attacks break at the same ε and norm."""
    missed, total, parts = 0, 0, []
    white = [r for r in runs if _plain(r) and r.attack not in OTHERS]
    for other in runs:
        if other.targeted or other.kind == "minimal" and not math.isfinite(other.eps):
            continue
        if other.white_box and other.attack not in OTHERS:
            continue
        peers = [w for w in white if _same_budget(w, other)]
        if not peers:
            continue
        k, n = _broken_only_by(other, peers)
        missed, total = missed + k, total + n
        parts.append((k, f"{other.label} ε={other.eps:g}: {k}", other.eps))
    if not parts:
        return Verdict("white-box", "skip", "no transfer, decision-based or noise run beside a "
                       "white-box one at the same ε", "", SOURCES["white-box"])  # fmt: skip
    text = (f"instances another attack broke and no white-box attack did: {_pct(missed, total)}"
            f" ({_worst(parts)})")  # fmt: skip
    worst = max(parts, key=lambda p: p[0])[2]
    settle = (_cmd("attack", "--model", model, "--attack", "bpda-pgd", "--eps", f"{worst:g}")
              + " (an adaptive attack through the non-differentiable step; with none, "
              "apgd --param loss=dlr)")  # fmt: skip
    return _verdict("white-box", missed / total if total else 0.0, missed, text, settle,
                    warn=0.02, fail=0.05)  # fmt: skip


def check_effort(model: str, runs: list[Run]) -> Verdict:
    """More steps or restarts do not lower accuracy, judged on the same instances: pairs of
    runs that differ only in effort, and a restarted run's first restart against all of
    them. A drop with an exact McNemar p < 0.05 fails (the weaker attack had not
    converged); a smaller one passes with how many instances moved and its p."""
    drops, moved, pairs = [], [], 0
    for weak in runs:
        for strong in runs:
            if strong is weak or not _more_effort(weak, strong):
                continue
            pairs += 1
            t = _paired(weak, strong)  # f: robust under the weaker only
            line = (f"{weak.label} → {strong.label} ε={weak.eps:g}: {weak.acc:.1%} → "
                    f"{strong.acc:.1%}, {_moved(t, 'the weaker', 'the stronger')}")  # fmt: skip
            if t.p < ALPHA and t.f > t.g:
                drops.append(line)
            elif t.f:
                moved.append(line)
    for r in runs:
        curve = _restart_curve(r)
        if curve:
            pairs += 1
            # a restart only ever breaks more: every moved instance was robust after the
            # first restart and broken after all, so g = 0 and p = 2 × 0.5^f
            f = curve[0] - curve[-1]
            p = min(1.0, 2 * 0.5**f) if f else 1.0
            line = (f"{r.label} ε={r.eps:g}: first restart {curve[0] / r.n:.1%} → "
                    f"{len(curve)} restarts {curve[-1] / r.n:.1%}, {f} instances broken by "
                    f"a later restart only (McNemar p {fmt_p(p)})")  # fmt: skip
            if p < ALPHA:
                drops.append(line)
            elif f:
                moved.append(line)
    strongest = max((r for r in runs if r.white_box and "steps" in r.params),
                    key=lambda r: r.params["steps"], default=None)  # fmt: skip
    settle = (_cmd("attack", "--model", model, "--attack", strongest.attack, "--eps",
                   f"{strongest.eps:g}", *_more(strongest.params))
              if strongest else "")  # fmt: skip
    if not pairs:
        return Verdict("effort", "warn", "no run repeated with more steps or restarts", settle,
                       SOURCES["effort"])  # fmt: skip
    if drops:
        return Verdict("effort", "fail", "more effort lowered accuracy on the same instances "
                       "(the weaker attack had not converged): " + "; ".join(drops[:4]), settle,
                       SOURCES["effort"])  # fmt: skip
    extra = f"; not significant: {'; '.join(moved[:3])}" if moved else ""
    return Verdict("effort", "pass", f"more effort lowered no accuracy significantly ({pairs} "
                   f"compared on their shared instances){extra}",
                   source=SOURCES["effort"])  # fmt: skip


def _distances(run: Run) -> dict[int, float]:
    """Per test index: 0 (clean error), the minimal norm found, or inf (none found)."""
    return {s["idx"]: instance_distance(s["clean_pred"], s["label"], s.get("min_norm"),
                                        s["init_failed"]) for s in run.rows}  # fmt: skip


def check_optimality(model: str, runs: list[Run]) -> Verdict:
    """Each white-box untargeted gradient-based minimal attack's optimality (AttackBench)
    against the stored fixed reference of its norm (suite optimality-reference), on the
    instances both attacked, the best per instance being the reference or the attack
    itself where it did better (report.optimality): under 0.9 warns, with the command that
    reruns it at twice the steps, or, for a search that stops at its first adversarial
    (DeepFool: more steps do not move it), runs FMN of that norm. Without a reference it
    says which command stores one."""
    from advbench.attacks import ATTACKS

    minimal: dict[tuple[str, str], Run] = {}
    refs: dict[str, Run] = {}
    for r in runs:
        if r.kind != "minimal" or not r.white_box or r.targeted:
            continue
        if ATTACKS.get(r.attack).meta.get("uses_gradient") is False:
            continue  # decision-based (HopSkipJump): not expected near a gradient search
        if r.attack == REFERENCE_ATTACK:
            refs[r.norm] = r
        else:
            minimal[(r.norm, r.label)] = r  # one run per search (every ε holds the same rows)
    if not minimal:
        return Verdict("optimality", "skip", "no white-box minimal attack stored",
                       source=SOURCES["optimality"])  # fmt: skip
    store = _cmd("attack", "--model", model, "--suite", "optimality-reference")
    if not any(norm in refs for norm, _ in minimal):
        return Verdict("optimality", "skip", "no fixed reference stored for "
                       f"{', '.join(sorted({n for n, _ in minimal}))}", store,
                       SOURCES["optimality"])  # fmt: skip
    low, scored = [], []
    settle = ""
    for (norm, label), r in sorted(minimal.items()):
        if norm not in refs:
            continue
        ref, own = _distances(refs[norm]), _distances(r)
        shared = sorted(i for i in own if i in ref)
        value = optimality([own[i] for i in shared], [min(own[i], ref[i]) for i in shared])
        if math.isnan(value):
            continue
        line = f"{label} {value:.3f} (n={len(shared)}, against {refs[norm].label})"
        scored.append(line)
        if value < OPTIMALITY_WARN:
            if ATTACKS.get(r.attack).meta.get("first_crossing"):  # DeepFool: steps never bind
                line += f" (it stops at its first adversarial: FMN-{norm.upper()} settles it)"
                again = ["--attack", f"fmn-{norm}"]
            else:
                again = ["--attack", r.attack, *_more(r.params)]
            low.append(line)
            settle = settle or _cmd("attack", "--model", model, *again, "--eps", f"{r.eps:g}")
    if low:
        return Verdict("optimality", "warn", f"under {OPTIMALITY_WARN} against the fixed "
                       "reference (its accuracy overstates robustness where it stops short): "
                       + "; ".join(low), settle, SOURCES["optimality"])  # fmt: skip
    if not scored:
        return Verdict("optimality", "skip", "no instance shared with the reference", store,
                       SOURCES["optimality"])  # fmt: skip
    return Verdict("optimality", "pass", "; ".join(scored), source=SOURCES["optimality"])
