"""Checks for tutorials/18_evaluation.md's exercises (see checking.py for how checks behave)."""
import math

import numpy as np

from .checking import _exercise


def _pmf(n, p):
    """Binomial(n, p) probabilities of 0..n, from math.comb (exact up to float rounding)."""
    return np.array([math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)])


@_exercise
def check_clopper_pearson(clopper_pearson):
    """The defining tail equations at both ends, and coverage >= 95% for every p on a grid, computed exactly."""
    for n in (1, 10, 30):
        bounds = []
        for k in range(n + 1):
            got = clopper_pearson(k, n, 0.05)
            assert got is not None and len(got) == 2, "return the tuple (low, high)"
            low, high = float(got[0]), float(got[1])
            assert 0.0 <= low <= k / n <= high <= 1.0, f"k={k}, n={n}: ({low:.4f}, {high:.4f}) must contain k/n = {k / n:.4f}"
            if k == 0:
                assert low == 0.0, f"k=0, n={n}: the lower end is 0"
            else:  # P(X >= k | low) = 0.025
                tail = _pmf(n, low)[k:].sum()
                assert abs(tail - 0.025) < 1e-6, f"k={k}, n={n}: at low = {low:.6f}, P(X >= k) = {tail:.6f}, want 0.025"
            if k == n:
                assert high == 1.0, f"k=n={n}: the upper end is 1"
            else:  # P(X <= k | high) = 0.025
                tail = _pmf(n, high)[: k + 1].sum()
                assert abs(tail - 0.025) < 1e-6, f"k={k}, n={n}: at high = {high:.6f}, P(X <= k) = {tail:.6f}, want 0.025"
            bounds.append((low, high))
        for p in np.linspace(0.005, 0.995, 199):
            covered = sum(prob for prob, (low, high) in zip(_pmf(n, p), bounds) if low <= p <= high)
            assert covered >= 0.95 - 1e-9, f"n={n}: at p = {p:.3f} the interval covers only {covered:.4f}"


@_exercise
def check_paired_bootstrap(paired_bootstrap):
    """Width near 2 * 1.96 * the paired standard error, on two classifiers that mostly agree."""
    rng = np.random.default_rng(18)
    n = 400
    a = rng.random(n) < 0.8
    b = a.copy()
    flip = rng.choice(n, 40, replace=False)  # they disagree on 40 examples only
    b[flip] = ~b[flip]
    diff = a.astype(float) - b.astype(float)
    se = diff.std(ddof=1) / math.sqrt(n)  # the paired standard error
    got = paired_bootstrap(a.copy(), b.copy(), n_boot=2000, confidence=0.95, seed=0)
    assert got is not None and len(got) == 2, "return the tuple (low, high)"
    low, high = float(got[0]), float(got[1])
    observed = diff.mean()
    assert low <= observed <= high, f"({low:.4f}, {high:.4f}) does not contain the observed difference {observed:.4f}"
    want = 2 * 1.96 * se
    assert 0.8 * want <= high - low <= 1.25 * want, (
        f"width {high - low:.4f}, expected about {want:.4f} (2 x 1.96 x the paired SE); an interval much wider "
        "than that ignores the pairing: resample the examples, keeping each example's two results together")
    again = paired_bootstrap(a.copy(), b.copy(), n_boot=2000, confidence=0.95, seed=0)
    assert tuple(map(float, again)) == (low, high), "the same seed must give the same interval"
