"""Solutions to tutorials/18_evaluation.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/18_evaluation.py
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_18 import check_clopper_pearson, check_paired_bootstrap  # noqa: E402


# ---- Exercise 1 ----
def _tail_at_least(k, n, p):
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


def _bisect(f, target, increasing, lo=0.0, hi=1.0, steps=100):
    """The p in [lo, hi] with f(p) = target, for f monotone in p."""
    for _ in range(steps):
        mid = (lo + hi) / 2
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson(k, n, alpha=0.05):
    low = 0.0 if k == 0 else _bisect(lambda p: _tail_at_least(k, n, p), alpha / 2, increasing=True)
    high = 1.0 if k == n else _bisect(lambda p: 1 - _tail_at_least(k + 1, n, p), alpha / 2, increasing=False)
    return low, high


# ---- Exercise 2 ----
def paired_bootstrap(correct_a, correct_b, n_boot=2000, confidence=0.95, seed=0):
    rng = np.random.default_rng(seed)
    diff = np.asarray(correct_a, dtype=float) - np.asarray(correct_b, dtype=float)  # one number per example
    idx = rng.integers(0, len(diff), size=(n_boot, len(diff)))  # the same examples for both: pairs stay together
    means = diff[idx].mean(1)
    return tuple(np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2]))


EXERCISES = {
    "check_clopper_pearson": (clopper_pearson,),
    "check_paired_bootstrap": (paired_bootstrap,),
}


# ---- mistakes the checks must catch ----
def _wald(k, n, alpha=0.05):  # the normal approximation with p-hat plugged in
    p = k / n
    half = 1.959963984540054 * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)


def _unpaired_bootstrap(correct_a, correct_b, n_boot=2000, confidence=0.95, seed=0):  # resamples each array on its own
    rng = np.random.default_rng(seed)
    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    means = a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1) - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(1)
    return tuple(np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2]))


MISTAKES = {
    "check_clopper_pearson": (_wald,),
    "check_paired_bootstrap": (_unpaired_bootstrap,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
