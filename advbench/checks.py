"""The evaluation checklist: is the evaluation behind a model's numbers to be trusted?

The automatable items of Carlini et al. 2019 ("On Evaluating Adversarial Robustness", §5
and its checklist) and the indicators of Pintor et al. 2022 ("Indicators of Attack
Failure"), evaluated on the stored runs of one model, mostly per instance. Each check is
one small function of plain data, returning a `Verdict`: pass, warn or fail (skip where
the store holds nothing it can read), the numbers behind it, and the command that would
settle a warning. `gather(db, model)` reads what the checks need; `run(db, model)` runs
them all.

Thresholds are fixed here, not tuned per model: a share of the instances, with the count
beside it so a reader can judge a small n.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlite_utils

from advbench.errors import unknown
from advbench.metrics import wilson_interval

EPS_TOL = 1e-5  # as the engine judges a budget
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


# ---- the checks: one small function each, on plain data -------------------------------


def check_monotone(model: str, runs: list[Run]) -> Verdict:
    """Accuracy does not rise with ε, per white-box attack: a rise beyond both intervals
    fails, any rise of more than one instance warns. A minimal attack's budgets are one
    search judged at every ε (the shortcut), monotone by construction: not evidence."""
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
                lo_b = wilson_interval(b.robust, b.n)[0]
                hi_a = wilson_interval(a.robust, a.n)[1]
                rises.append((label, a, b, lo_b > hi_a))
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
    text = "; ".join(f"{lab}: {a.acc:.1%} at ε={a.eps:g} → {b.acc:.1%} at ε={b.eps:g}"
                     for lab, a, b, _ in rises)  # fmt: skip
    status = "fail" if any(sig for *_, sig in rises) else "warn"
    lab, a, b, _ = worst
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
            pairs.append((k, f"{one.label}/{it.label} ε={it.eps:g}: {k}", it.eps))
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
    """More steps or restarts do not lower accuracy beyond the interval of the weaker run
    (pairs of runs that differ only in effort, and each restart of a restarted run)."""
    drops, pairs = [], 0
    for weak in runs:
        for strong in runs:
            if strong is weak or not _more_effort(weak, strong):
                continue
            pairs += 1
            lo = wilson_interval(weak.robust, weak.n)[0]
            if strong.acc < lo:
                drops.append(f"{weak.label} → {strong.label} ε={weak.eps:g}: "
                             f"{weak.acc:.1%} → {strong.acc:.1%}")  # fmt: skip
    for r in runs:
        curve = _restart_curve(r)
        if curve:
            pairs += 1
            lo = wilson_interval(curve[0], r.n)[0]
            if curve[-1] / r.n < lo:
                drops.append(f"{r.label} ε={r.eps:g}: first restart {curve[0] / r.n:.1%} → "
                             f"{len(curve)} restarts {curve[-1] / r.n:.1%}")  # fmt: skip
    strongest = max((r for r in runs if r.white_box and "steps" in r.params),
                    key=lambda r: r.params["steps"], default=None)  # fmt: skip
    settle = (_cmd("attack", "--model", model, "--attack", strongest.attack, "--eps",
                   f"{strongest.eps:g}", *_more(strongest.params))
              if strongest else "")  # fmt: skip
    if not pairs:
        return Verdict("effort", "warn", "no run repeated with more steps or restarts", settle,
                       SOURCES["effort"])  # fmt: skip
    if drops:
        return Verdict("effort", "fail", "more effort lowered accuracy beyond the interval "
                       "(the weaker attack had not converged): " + "; ".join(drops[:4]), settle,
                       SOURCES["effort"])  # fmt: skip
    return Verdict("effort", "pass", f"more effort stayed within the interval ({pairs} compared)",
                   source=SOURCES["effort"])  # fmt: skip


def check_silent(model: str, runs: list[Run]) -> Verdict:
    """Instances reported robust at ε whose attack had an adversarial iterate within ε
    (on the model itself, white-box): the returned point was not the best one."""
    silent, total, where = 0, 0, []
    for r in (r for r in runs if r.white_box and r.rows):
        rec = [s for s in r.rows if s["grad_passes"]]
        robust = [s for s in rec if _robust(s)]
        hits = [s for s in robust if s["best_norm"] is not None
                and s["best_norm"] <= r.eps * (1 + EPS_TOL)]  # fmt: skip
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
        failed = [s for s in r.rows if s["loss_trace"] and _robust(s)]
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


def check_gradients(model: str, runs: list[Run]) -> Verdict:
    """Input gradients the attacks saw: unavailable (a step outside autograd), zero at
    every pass, or not finite."""
    rows = [s for r in runs if r.white_box for s in r.rows if s["grad_passes"]]
    if not rows:
        return _not_recorded("gradients")
    n = len(rows)
    unavailable = sum(1 for s in rows if s["grad_unavailable"])
    zero = sum(1 for s in rows if s["grad_zero"] == s["grad_passes"])
    nonfinite = sum(1 for s in rows if s["grad_nonfinite"])
    text = (f"unavailable {_pct(unavailable, n)}, zero at every pass {_pct(zero, n)}, "
            f"NaN/inf {_pct(nonfinite, n)} of attacked instances")  # fmt: skip
    settle = (f"attack through a differentiable approximation: {_cmd('attack', '--model', model, '--attack', 'bpda-pgd', '--eps', '0.3')}, "  # noqa: E501
              f"or a decision-based attack (hsj)")  # fmt: skip
    share = max(unavailable, zero, nonfinite) / n
    return _verdict("gradients", share, max(unavailable, zero, nonfinite), text, settle,
                    warn=0.05, fail=0.25)  # fmt: skip


def check_unstable(model: str, runs: list[Run]) -> Verdict:
    """The evaluated model's clean prediction changes when asked again, or under uniform
    noise a quarter of an 8-bit level wide (`diagnostics.NOISE_RADIUS`)."""
    seen: dict[tuple, int] = {}
    for r in runs:
        for s in r.rows:
            if s["noise_flips"] is not None:
                seen[(s["idx"],)] = max(seen.get((s["idx"],), 0), s["noise_flips"])
    if not seen:
        return _not_recorded("unstable")
    k = sum(1 for v in seen.values() if v)
    text = (
        f"test points whose prediction changed under tiny noise or a repeat: {_pct(k, len(seen))}"
    )
    settle = (
        "a randomised model: attack with expectation over transformation ("
        + _cmd("attack", "--model", model, "--attack", "cw-l2-eot", "--eps", "1")
        + ")"
    )
    return _verdict("unstable", k / len(seen), k, text, settle, warn=0.02, fail=0.10)


def check_outputs(model: str, runs: list[Run]) -> Verdict:
    """The model's outputs are logits: probabilities saturate and one-hot scores have no
    gradient, so gradient attacks fail for reasons unrelated to robustness."""
    kinds: dict[str, int] = {}
    for r in runs:
        for s in r.rows:
            if s["output_kind"]:
                kinds[s["output_kind"]] = kinds.get(s["output_kind"], 0) + 1
    if not kinds:
        return _not_recorded("outputs")
    n = sum(kinds.values())
    bad = n - kinds.get("logits", 0)
    text = ", ".join(f"{k} {_pct(v, n)}" for k, v in sorted(kinds.items()))
    return _verdict("outputs", bad / n, bad, "outputs: " + text,
                    "attack the logits before the softmax (or the one-hot step)", warn=0.0,
                    fail=0.5)  # fmt: skip


def check_transfer(model: str, runs: list[Run]) -> Verdict:
    """Examples that fooled the surrogate they were crafted on but not this model: where
    most do not transfer, transfer rows say little about robustness."""
    fooled, kept = 0, 0
    for r in (r for r in runs if not r.white_box):
        for s in r.rows:
            if s["source_success"] and s["clean_pred"] == s["label"]:
                fooled += 1
                kept += _robust(s)
    if not fooled:
        return Verdict("transfer", "skip", "no transfer or proxy run with examples that fooled "
                       "their source", "", SOURCES["transfer"])  # fmt: skip
    text = f"examples that fooled the surrogate but not this model: {_pct(kept, fooled)}"
    return _verdict("transfer", kept / fooled, kept, text,
                    "judge robustness by white-box or adaptive attacks, not transfer rows",
                    warn=0.5, fail=1.01)  # fmt: skip


CHECKS: dict[str, Callable[[str, list[Run]], Verdict]] = {
    "monotone": check_monotone,
    "unbounded": check_unbounded,
    "iterative": check_iterative,
    "white-box": check_white_box,
    "effort": check_effort,
    "silent": check_silent,
    "incomplete": check_incomplete,
    "gradients": check_gradients,
    "unstable": check_unstable,
    "outputs": check_outputs,
    "transfer": check_transfer,
}


# ---- helpers ----------------------------------------------------------------------------


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


def _robust(s: dict) -> bool:
    return s["clean_pred"] == s["label"] and s["adv_pred"] == s["label"] \
        and not s.get("init_failed")  # fmt: skip


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

    peer_robust = [{key(s): _robust(s) for s in p.rows} for p in peers]
    k = n = 0
    for s in other.rows:
        if s.get("init_failed") or s["clean_pred"] != s["label"]:
            continue
        if not all(key(s) in pr for pr in peer_robust):
            continue
        n += 1
        k += (not _robust(s)) and all(pr[key(s)] for pr in peer_robust)
    return k, n


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


# ---- reading the store -------------------------------------------------------------------

_SAMPLE_COLS = ("position", "idx", "target", "label", "clean_pred", "adv_pred", "init_failed",
                "trace", "best_norm", "loss_trace", "grad_zero", "grad_nonfinite", "grad_passes",
                "grad_unavailable", "noise_flips", "output_kind", "source_success")  # fmt: skip


def gather(db: sqlite_utils.Database, model: str) -> list[Run]:
    """The model's runs (the newest complete run per label, threat, targeting and ε; a
    partial one where none is complete), each with its instance rows. Runs of a suite row
    that has changed since (stale: they fill no table cell) are left out, and so are cascade
    runs: a row of a cascade holds what earlier rows broke, so it is no attack's own
    result (the white-box check would count a transfer break as a white-box one)."""
    names = [r["name"] for r in db.query("select name from models")]
    if model not in names:
        raise unknown("model", model, sorted(names) or ["(none stored)"])
    rows = list(
        db.query(
            "select r.*, coalesce(r.threat, 'white-box') as threat_ from runs r "
            "where r.model = ? and json_extract(r.config, '$.cascade_from') is null "
            "order by r.status = 'complete', "
            "coalesce(r.finished_at, r.started_at)",
            [model],
        )
    )
    from advbench.suites import is_current

    recipes: dict = {}  # a suite run whose row has changed since is not the model's result
    keys = ("suite", "label", "scale", "attack", "config")
    rows = [r for r in rows if is_current(*(r[k] for k in keys), recipes)]
    latest: dict[tuple, dict] = {}
    for r in rows:  # later rows win: complete after partial, newer after older
        key = (r["label"] or r["attack"], r["threat_"], r["source_model"], r["targeted"],
               r["eps"], r["attack"])  # fmt: skip
        latest[key] = r
    out = []
    for r in latest.values():
        cols = ", ".join(f"s.{c}" for c in _SAMPLE_COLS)
        query = f"select {cols} from samples s where s.run_id = ? order by s.position"
        samples = [dict(s) for s in db.query(query, [r["id"]])]
        started = [s for s in samples if not s["init_failed"]]
        if not started:
            continue
        params = json.loads(r["config"] or "{}").get("params", {})
        out.append(Run(r["id"], r["attack"], r["label"] or r["attack"], r["norm"], r["kind"],
                       float(r["eps"]), r["targeted"], r["threat_"], params,
                       sum(_robust(s) for s in started), len(started), rows=started))  # fmt: skip
    return out


def run(db: sqlite_utils.Database, model: str, runs: list[Run] | None = None) -> list[Verdict]:
    runs = gather(db, model) if runs is None else runs
    return [check(model, runs) for check in CHECKS.values()]


def as_dicts(verdicts: list[Verdict]) -> list[dict]:
    return [asdict(v) for v in verdicts]
