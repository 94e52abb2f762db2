"""Paired tests on hand-made per-sample data with answers worked out by hand, and p-values
recomputed independently (the binomial sum written out, scipy's permutation test)."""

import math

import numpy as np
import pytest
from scipy import stats

from advbench import paired
from advbench.metrics import wilson_interval


def outcomes(e, f, g, h):
    """Paired robust/not outcomes with e both robust, f a only, g b only, h neither."""
    a = [1] * e + [1] * f + [0] * g + [0] * h
    b = [1] * e + [0] * f + [1] * g + [0] * h
    return a, b


def test_mcnemar_decides_where_the_unpaired_intervals_overlap():
    # 62 / 100 against 50 / 100: the two Wilson intervals overlap ...
    a, b = outcomes(50, 12, 0, 38)
    la, ha = wilson_interval(62, 100)
    lb, hb = wilson_interval(50, 100)
    assert la < hb
    # ... but the 12 instances that moved all moved one way: exact p = 2 × 0.5^12
    t = paired.mcnemar(a, b)
    assert t.p == pytest.approx(2 * 0.5**12) and t.p < 0.001
    assert (t.f, t.g, t.n, t.effect) == (12, 0, 100, pytest.approx(12.0))
    assert 0 < t.low < 12 < t.high


def test_mcnemar_p_is_the_binomial_sum_written_out():
    a, b = outcomes(120, 11, 3, 66)
    t = paired.mcnemar(a, b)
    m, k = 14, 3
    tail = sum(math.comb(m, i) for i in range(0, k + 1)) / 2**m
    assert t.p == pytest.approx(min(1.0, 2 * tail))


def test_no_discordant_pair_keeps_an_interval():
    """f = g = 0: a bootstrap collapses to [0, 0]; the score interval keeps a width that
    shrinks with n, and the test says nothing moved (p = 1)."""
    t = paired.mcnemar(*outcomes(100, 0, 0, 100))
    assert t.effect == 0 and t.p == 1.0
    assert t.low < -0.5 and t.high > 0.5  # percentage points, n = 200 (±0.97 by the formula)
    wide = paired.mcnemar(*outcomes(10, 0, 0, 10))
    assert wide.high - wide.low > t.high - t.low
    assert t.need() is None  # no effect measured: no n gives power


def test_newcombe_interval_covers_about_95_percent():
    """Simulated paired outcomes with a known difference (p1 = 0.80, p2 = 0.74, positively
    correlated, n = 150): the interval covers the truth close to 95 % of the time."""
    rng = np.random.default_rng(1)
    cells = np.array([0.70, 0.10, 0.04, 0.16])  # e, f, g, h probabilities
    truth = cells[1] - cells[2]
    hits, reps = 0, 600
    for _ in range(reps):
        e, f, g, h = rng.multinomial(150, cells)
        low, high = paired.newcombe_paired(e, f, g, h)
        hits += low <= truth <= high
    assert 0.92 <= hits / reps <= 0.985


def test_censored_metric_pairs_by_hand():
    """Instance 2 was never broken on a: it takes the largest value either side reached
    (0.4). Differences 0.1, 0.1, 0.2: mean 0.1333; the 8 sign flips reach |mean| ≥ 0.1333
    only with all signs equal, so p = 2/8."""
    a = {(1, None): 0.2, (2, None): None, (3, None): 0.4}
    b = {(1, None): 0.1, (2, None): 0.3, (3, None): 0.2, (4, None): 0.9}  # 4 unpaired
    t = paired.pair(a, b, binary=False)
    assert t.n == 3 and t.censored == 1
    assert t.effect == pytest.approx(0.4 / 3)
    assert t.p == pytest.approx(0.25)


def test_censored_at_the_largest_budget_where_the_attack_had_one():
    """The same data, the attack's largest budget known for instance 2 (ρ 1.0 there):
    differences 0.1, 0.7, 0.2, mean 1/3; a t-interval at 3 pairs (too few to bootstrap)."""
    a = {(1, None): 0.2, (2, None): None, (3, None): 0.4}
    b = {(1, None): 0.1, (2, None): 0.3, (3, None): 0.2}
    t = paired.pair(a, b, binary=False, ceiling_a={(2, None): 1.0})
    assert t.effect == pytest.approx(1 / 3) and t.censored == 1
    d = [0.1, 0.7, 0.2]
    half = stats.t.ppf(0.975, 2) * np.std(d, ddof=1) / math.sqrt(3)
    assert (t.low, t.high) == (pytest.approx(1 / 3 - half), pytest.approx(1 / 3 + half))


def test_sign_flip_p_agrees_with_scipy_permutation_test():
    rng = np.random.default_rng(3)
    a = rng.normal(0.30, 0.05, 60)
    b = a - rng.normal(0.012, 0.04, 60)
    t = paired.mean_difference(a, b)
    ref = stats.permutation_test((a - b,), np.mean, permutation_type="samples",
                                 n_resamples=20000, random_state=0).pvalue  # fmt: skip
    assert t.p == pytest.approx(ref, abs=0.01)
    # the bootstrap interval against the t-interval of the same differences
    d = a - b
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert t.low == pytest.approx(d.mean() - half, abs=0.003)
    assert t.high == pytest.approx(d.mean() + half, abs=0.003)


def test_targeted_rows_pair_images_not_instances():
    """Two images with 2 targets each: a robust on 2/2 and 1/2, b on 0/2 and 1/2; per image
    differences 100 and 0 points, mean 50, over 2 images (not 4 instances)."""
    a = {(0, 1): 1, (0, 2): 1, (5, 1): 1, (5, 3): 0}
    b = {(0, 1): 0, (0, 2): 0, (5, 1): 0, (5, 3): 1}
    t = paired.pair(a, b, binary=True)
    assert t.n == 2 and "images" in t.test
    assert t.effect == pytest.approx(50.0)
    assert t.p == pytest.approx(1.0)  # every sign flip of (100, 0) has |mean| 50


def test_holm_on_a_known_set():
    # sorted 0.005, 0.01, 0.03, 0.04: × 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 → monotone 0.06
    assert paired.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert paired.holm([0.5, None, 0.6]) == [pytest.approx(1.0), None, pytest.approx(1.0)]


def test_direction_and_size():
    assert paired.direction(5.0, 0.01, ">") == "held"
    assert paired.direction(5.0, 0.01, "<") == "contradicted"
    assert paired.direction(5.0, 0.2, ">") == "undecided"
    # the interval excludes the published effect, on zero's side: smaller than published
    assert paired.size(1.0, 3.0, 10.0) == "smaller than published"
    assert paired.size(-3.7, 3.7, 33.0) == "smaller than published"  # fidel NsLoss at ε5
    assert paired.size(1.0, 3.0, 2.0) == "consistent with published"
    assert paired.size(1.0, 3.0, 0.5) == "larger than published"
    assert paired.size(0.2, 0.3, -0.06) == "opposite to published"
    assert paired.size(-0.3, -0.2, -0.06) == "larger than published"


def test_power_statement_by_hand():
    # Connor (1987): f = 11, g = 3 of 200: ψ = 0.07, δ = 0.04
    t = paired.mcnemar(*outcomes(120, 11, 3, 66))
    za, zb = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    need = (za * math.sqrt(0.07) + zb * math.sqrt(0.07 - 0.04**2)) ** 2 / 0.04**2
    assert t.need() == math.ceil(need)


def test_seeds_needed_use_the_t_distribution_of_k_seeds():
    """Effects +1.5, +2.0, +1.0 over 3 seeds: mean 1.5, sd 0.5. For 80 % power at 0.05 a
    t-test over K seeds needs K ≥ ((t.975,K−1 + t.80,K−1) · sd / mean)²: K = 3 gives
    ((4.303 + 1.061) / 3)² = 3.20 > 3, K = 4 gives ((3.182 + 0.978) / 3)² = 1.92 ≤ 4 (t
    table values); the normal approximation would say 1 seed."""
    t = paired.over_seeds([1.5, 2.0, 1.0])
    assert t.need() == 4
