"""How the model behaves under attack: unavailable or zero gradients (Pintor et al. 2022;
Carlini et al. 2019 §5.4), unstable predictions, outputs that are not logits (§4.3).
"""

from __future__ import annotations

from advbench.checks.base import (
    Run,
    Verdict,
    _cmd,
    _not_recorded,
    _pct,
    _verdict,
)


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
