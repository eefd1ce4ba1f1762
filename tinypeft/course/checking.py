"""Checks for the tutorials' exercises. Each takes your answer, tries it against an independent
reference (finite differences, NumPy, or tinypeft's own op), prints "passed", and returns True.

A wrong answer raises AssertionError saying what is off. A stub you have not filled in yet (it raises
NotImplementedError) only prints "not done yet" and returns False, so a tutorial runs top to bottom
before you have done its exercises.

    from tinypeft.course.checks_01 import check_value_exp
    check_value_exp(value_exp, Value)

tinypeft/course/checks_NN.py holds tutorial NN's checks; this module holds what they share.
"""
import functools

import numpy as np


def _exercise(fn):
    @functools.wraps(fn)
    def check(*args, **kwargs):
        try:
            fn(*args, **kwargs)
        except NotImplementedError:
            print(f"{fn.__name__}: not done yet - fill in the stub above, then run this cell again.")
            return False
        print(f"{fn.__name__}: passed")
        return True

    return check


def _predicted(prediction):
    """A predict-then-run exercise: `prediction = None` (the stub) is not done yet."""
    if prediction is None or prediction is Ellipsis:
        raise NotImplementedError
    return prediction


def _close(got, want, what, rtol=1e-6, atol=1e-8):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        i = np.unravel_index(np.argmax(np.abs(got - want)), got.shape) if got.ndim else ()
        raise AssertionError(f"{what}: got {got[i]:.8g} at {i}, expected {want[i]:.8g}")


def _central_difference(f, x, eps=1e-6):
    """d f(x) / dx for a scalar function of a float64 array, one coordinate at a time."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = old - eps
        down = f(x)
        x[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def _central_difference_in_place(f, a, eps=1e-6):
    """d f() / d a, for a float64 array `a` that f() reads: each element nudged in place, then restored."""
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        up = f()
        a[i] = old - eps
        down = f()
        a[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad
