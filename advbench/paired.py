"""Paired tests: two models (or two attacks) measured on the same instances.

Every cell advbench compares is measured on seeded test instances shared by both sides
(`engine.select_samples`), so a difference is judged on the pairs, not on two independent
intervals (whose overlap is roughly a test at p ≈ 0.006 that ignores the pairing).

- Accuracies (robust or not, per instance): exact McNemar, the two-sided binomial test on
  the discordant pairs f (robust on a only) and g (on b only), with Newcombe's hybrid score
  interval for the paired difference (Newcombe 1998, method 10: Wilson intervals of both
  proportions combined through the pairs' φ correlation). It is not an exact interval, but it
  never collapses to [0, 0] where f = g = 0, as a bootstrap does, and covers close to 95 %
  at n = 100–200 (tests/test_paired.py simulates it).
- Per-sample metrics (ρ, minimal norms, ‖J‖F, loss sensitivity, distances): the mean paired
  difference, a seeded percentile bootstrap 95 % interval (a t-interval below 10 pairs,
  where a bootstrap is too narrow) and a two-sided sign-flip permutation p on the same
  statistic (exact below 17 pairs). An instance the attack did not break has no minimal
  perturbation: it is censored at its attack's largest budget (the value it would have at
  least), or, for an attack without a finite budget, at the largest value either side
  reached; counted, never dropped. The paired mean then includes censored instances the
  cell's own mean (over broken instances, as the papers average) leaves out.
- Several instances per test image (targeted rows, one per target): the pairs are the
  images, each side's value the mean over the image's instances.
- Holm's step-down correction across one family (a paper's claims, a comparison's rows).

The effect is a − b in the unit of the cells (percentage points for accuracies).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from advbench.metrics import wilson_interval

Z = 1.959963984540054  # the normal 97.5 % point
BOOTSTRAP = 4000  # resamples of the mean difference's interval
PERMUTATIONS = 20000  # sign flips of the permutation p (Monte Carlo above EXACT pairs)
EXACT = 16  # at most this many pairs: every sign flip enumerated
SEED = 0  # the bootstrap's and the permutation's generator: the same rows, the same numbers
SMALL = 10  # fewer pairs: a t-interval instead of the percentile bootstrap


@dataclass(frozen=True)
class Paired:
    """One paired comparison a − b."""

    test: str  # "McNemar (exact)", "mean paired difference", ...
    n: int  # pairs (images where instances are grouped)
    effect: float  # a − b, in the cells' unit
    low: float  # its 95 % interval
    high: float
    p: float  # two-sided
    f: int | None = None  # accuracies: pairs robust on a only
    g: int | None = None  # pairs robust on b only
    censored: int = 0  # values censored at the largest observed one
    sd: float | None = None  # per-pair differences' standard deviation (metrics)
    note: str = ""

    def pairs(self) -> str:
        """'n = 200 pairs (f / g = 3 / 17)' as claim lines print it."""
        unit = ("seeds" if self.test.startswith("mean over") else
                "images" if "images" in self.test else "pairs")  # fmt: skip
        text = f"n = {self.n} {unit}"
        if self.f is not None:
            text += f" (a only / b only: {self.f} / {self.g})"
        if self.censored:
            text += f", {self.censored} censored"
        return text

    def need(self, power: float = 0.8, alpha: float = 0.05) -> int | None:
        """Pairs that would give `power` for a two-sided test at `alpha` were the measured
        effect the true one (Connor 1987 for McNemar, the normal approximation for a mean
        difference); None where the measured effect is zero."""
        zb = stats.norm.ppf(power)
        za = stats.norm.ppf(1 - alpha / 2)
        if self.f is not None:
            psi = (self.f + self.g) / self.n if self.n else 0.0
            delta = (self.f - self.g) / self.n if self.n else 0.0
            if delta == 0 or psi == 0:
                return None
            need = (za * math.sqrt(psi) + zb * math.sqrt(max(psi - delta**2, 0.0))) ** 2
            return math.ceil(need / delta**2)
        if not self.effect or not self.sd or not math.isfinite(self.effect / self.sd):
            return None
        ratio = self.sd / abs(self.effect)
        if "seeds" in self.test:  # a t-test over K seeds: its quantiles, not the normal's
            k = 2
            while k < 10_000 and k < ((stats.t.ppf(1 - alpha / 2, k - 1)
                                       + stats.t.ppf(power, k - 1)) * ratio) ** 2:  # fmt: skip
                k += 1
            return k
        return math.ceil(((za + zb) * ratio) ** 2)


def mcnemar(a: Sequence[bool], b: Sequence[bool], scale: float = 100.0) -> Paired:
    """Exact McNemar on paired robust/not outcomes, with Newcombe's interval (× `scale`)."""
    if len(a) != len(b):
        raise ValueError(f"unpaired: {len(a)} and {len(b)} outcomes")
    n = len(a)
    e = sum(1 for x, y in zip(a, b, strict=True) if x and y)
    f = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    g = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    h = n - e - f - g
    if n == 0:
        nan = float("nan")
        return Paired("McNemar (exact)", 0, nan, nan, nan, nan, 0, 0)
    p = 1.0 if f + g == 0 else float(stats.binomtest(f, f + g, 0.5).pvalue)
    low, high = newcombe_paired(e, f, g, h)
    return Paired("McNemar (exact)", n, (f - g) / n * scale, low * scale, high * scale,
                  min(p, 1.0), f, g)  # fmt: skip


def newcombe_paired(e: int, f: int, g: int, h: int) -> tuple[float, float]:
    """95 % interval of p1 − p2 = (f − g)/n for paired proportions (Newcombe 1998, method
    10), with the continuity-corrected φ of that paper."""
    n = e + f + g + h
    p1, p2 = (e + f) / n, (e + g) / n
    l1, u1 = wilson_interval(e + f, n)
    l2, u2 = wilson_interval(e + g, n)
    denom = (e + f) * (g + h) * (e + g) * (f + h)
    if denom == 0:
        phi = 0.0
    else:
        num = e * h - f * g
        num = max(num - n / 2, 0.0) if num > 0 else num
        phi = num / math.sqrt(denom)
    d = p1 - p2
    d1 = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0))
    d2 = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0))
    return max(d - d1, -1.0), min(d + d2, 1.0)


def mean_difference(a: Sequence[float], b: Sequence[float], *, test: str = "") -> Paired:
    """Mean of the paired differences a − b, its bootstrap interval and sign-flip p."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    name = test or "mean paired difference"
    if n == 0:
        nan = float("nan")
        return Paired(name, 0, nan, nan, nan, nan)
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    rng = np.random.default_rng(SEED)
    if n >= SMALL:
        means = d[rng.integers(0, n, size=(BOOTSTRAP, n))].mean(axis=1)
        low, high = (float(x) for x in np.quantile(means, [0.025, 0.975]))
    elif n > 1:  # a bootstrap of a few pairs is too narrow: the t-interval
        half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
    else:
        low = high = mean
    return Paired(name, n, mean, low, high, sign_flip_p(d, rng), sd=sd)


def sign_flip_p(d: np.ndarray, rng: np.random.Generator | None = None) -> float:
    """Two-sided p of the mean difference under H0 (each pair's sign exchangeable)."""
    n = len(d)
    observed = abs(d.mean()) - 1e-12 * max(1.0, abs(d).max(initial=0.0))
    if not np.any(d):
        return 1.0
    if n <= EXACT:
        signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        return float(np.mean(np.abs((signs * d).mean(axis=1)) >= observed))
    rng = rng or np.random.default_rng(SEED)
    hits = 0
    for start in range(0, PERMUTATIONS, 2000):  # in chunks: memory stays small at any n
        signs = rng.choice((-1.0, 1.0), size=(min(2000, PERMUTATIONS - start), n))
        hits += int(np.sum(np.abs((signs * d).mean(axis=1)) >= observed))
    return (hits + 1) / (PERMUTATIONS + 1)


Key = Hashable


def pair(
    a: Mapping[Key, float | None], b: Mapping[Key, float | None], *, binary: bool,
    ceiling_a: Mapping[Key, float] | None = None, ceiling_b: Mapping[Key, float] | None = None,
) -> Paired:  # fmt: skip
    """Pair two cells' per-instance values on the instances both hold and test a − b.

    Keys are (image, target) for targeted rows (target not None), else anything hashable.
    A value None is censored: the attack did not break the instance within its largest
    budget, so its minimal value is at least that budget's (`ceiling_*`, in the metric's
    unit); it takes that value, or, for an attack without a finite budget, the largest
    value observed on either side. Accuracies (`binary`, values 1/0) go to McNemar unless
    there are several instances per image."""
    keys = [k for k in a if k in b]
    if binary:
        if _grouped(keys):
            return _by_image(keys, a, b, binary=True)
        return mcnemar([bool(a[k]) for k in keys], [bool(b[k]) for k in keys])
    seen = [v for k in keys for v in (a[k], b[k]) if v is not None]
    top = max(seen) if seen else 0.0
    censored = sum((a[k] is None) + (b[k] is None) for k in keys)

    def filled(values, ceiling):
        ceiling = ceiling or {}
        return {k: (ceiling.get(k, top) if values[k] is None else values[k]) for k in keys}

    fa, fb = filled(a, ceiling_a), filled(b, ceiling_b)
    if _grouped(keys):
        out = _by_image(keys, fa, fb, binary=False)
    else:
        out = mean_difference([fa[k] for k in keys], [fb[k] for k in keys])
    return _with(out, censored=censored)


def _grouped(keys) -> bool:
    """Several instances of one image (targeted rows: keys (image, target), target set)."""
    return any(isinstance(k, tuple) and len(k) == 2 and k[1] is not None for k in keys)


def _by_image(keys, a, b, *, binary: bool) -> Paired:
    images: dict = defaultdict(list)
    for k in keys:
        images[k[0]].append(k)
    ma = [float(np.mean([a[k] for k in ks])) for ks in images.values()]
    mb = [float(np.mean([b[k] for k in ks])) for ks in images.values()]
    scale = 100.0 if binary else 1.0
    out = mean_difference([x * scale for x in ma], [x * scale for x in mb],
                          test="mean paired difference over images")  # fmt: skip
    return _with(out, note=f"{len(keys)} instances grouped by test image")


def _with(p: Paired, **changes) -> Paired:
    from dataclasses import replace

    return replace(p, **changes)


def over_seeds(
    effects: Sequence[float], unit_test: str = "paired", seeds: Sequence[Paired] | None = None
) -> Paired:
    """Per-seed effects (each a paired a − b of one training seed) summarised over seeds:
    their mean with a t-interval and a one-sample t-test p over the K seeds, so training
    randomness, not only the test instances', is in the interval.

    Seeds whose effects agree exactly leave the t-test no spread to measure. Given the seeds'
    own paired tests (`seeds`, in the order of `effects`) and a nonzero effect of one sign on
    every seed, the direction is then the intersection of those tests: its p is the largest
    of theirs (an intersection-union test, of level α as each is) and its interval the hull of
    theirs. Without them, or at a zero effect, there is no p (undecided). Seen on madnet's
    FGSM claim, 2026-12-07: three seeds at +35.4 (35 of 99 pairs each), each p < 0.001, read
    "undecided"."""
    e = np.asarray(effects, dtype=float)
    k = len(e)
    mean = float(e.mean()) if k else float("nan")
    if k < 2:
        return Paired(f"mean over {k} seed", k, mean, mean, mean, float("nan"))
    sd = float(e.std(ddof=1))
    if sd <= 1e-9 * max(1.0, float(np.abs(e).max())):  # equal up to rounding: no spread
        sd = 0.0
    name = f"mean over {k} seeds of the {unit_test} effect (t-interval)"
    if sd > 0:
        half = float(stats.t.ppf(0.975, k - 1)) * sd / math.sqrt(k)
        p = float(stats.ttest_1samp(e, 0.0).pvalue)
        return Paired(name, k, mean, mean - half, mean + half, p, sd=sd)
    one_sign = bool(np.all(e > 0) or np.all(e < 0))
    if seeds is not None and len(seeds) == k and one_sign:
        ps = [t.p for t in seeds]
        if not any(math.isnan(x) for x in ps):
            return Paired(f"mean over {k} seeds of the {unit_test} effect (the seeds agree "
                          "exactly: the largest of their p, the hull of their intervals)", k,
                          mean, min(t.low for t in seeds), max(t.high for t in seeds),
                          max(ps), sd=0.0)  # fmt: skip
    return Paired(name, k, mean, mean, mean, float("nan"), sd=sd)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None and NaN stay None, not counted)."""
    index = [i for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    order = sorted(index, key=lambda i: pvalues[i])
    m = len(order)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def direction(effect: float, p: float | None, expect: str, alpha: float = 0.05) -> str:
    """held (p < alpha, the paper's way), contradicted (the other way) or undecided."""
    if p is None or math.isnan(p) or p >= alpha or not effect:
        return "undecided"
    right = effect > 0 if expect == ">" else effect < 0
    return "held" if right else "contradicted"


def size(low: float, high: float, published: float | None) -> str:
    """The measured interval against the published effect: consistent (inside), smaller
    than published (the interval lies on the zero side of it), opposite to published (all
    of it across zero) or larger."""
    if published is None or math.isnan(low) or math.isnan(high):
        return "no published effect"
    if low <= published <= high:
        return "consistent with published"
    if (published > 0 and high < 0) or (published < 0 and low > 0):
        return "opposite to published"
    if published > 0:
        return "smaller than published" if high < published else "larger than published"
    if published < 0:
        return "smaller than published" if low > published else "larger than published"
    return "larger than published"  # published 0, excluded


def fmt_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "—"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"
