"""Intervals and the summary pivot."""

import pytest

from advbench.metrics import perturbation_norms, wilson_interval


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(81, 100)
    assert lo == pytest.approx(0.7222, abs=1e-3) and hi == pytest.approx(0.8749, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 10)[1] > 0.2
    for n in range(1, 1001):  # 0 of 100 once gave a low end of 7e-16, above the 0 it holds
        assert wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0
        for k in (1, n // 3, n - 1):
            lo, hi = wilson_interval(k, n)
            assert lo <= k / n <= hi
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(10, 10)[0] < 0.8


def test_perturbation_norms():
    import torch

    d = torch.zeros(2, 1, 2, 2)
    d[0, 0, 0, 0], d[0, 0, 1, 1] = 3.0, -4.0
    l0, l2, linf = perturbation_norms(d)
    assert l0.tolist() == [2, 0] and l2.tolist() == [5, 0] and linf.tolist() == [4, 0]
