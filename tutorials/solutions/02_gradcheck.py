"""Solutions to tutorials/02_gradcheck.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/02_gradcheck.py
"""
import os
import sys

import numpy as np
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.autograd import Function  # noqa: E402
from tinypeft.course.checks_02 import (  # noqa: E402
    check_broadcastable_shapes,
    check_predict_ones_cotangent,
    check_softplus,
)


# ---- Exercise 1 ----
# J^T 1 for each op, by hand: exp: e^x (A returns twice that: caught); softmax and centring have outputs whose
# sum does not depend on x, so J^T 1 = 0; B returns y * (1 - 1) = 0 and C returns 1 - 1 = 0 (both pass,
# both wrong), D returns 1 (caught).
ones_prediction = {"B", "C"}


# ---- Exercise 2 ----
def _sigmoid(x):
    e = np.exp(-np.abs(x))  # e^(-|x|) <= 1: never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class Softplus(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.logaddexp(x.dtype.type(0), x)  # log(e^0 + e^x), computed without overflow

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * _sigmoid(x)  # d log(1 + e^x) / dx = e^x / (1 + e^x)


# ---- Exercise 3 ----
def broadcastable_shapes():
    """Draw b, then make a from it: replace some dims by 1, prepend some dims; swap the pair half the time."""

    @st.composite
    def pair(draw):
        b = tuple(draw(st.lists(st.integers(1, 4), max_size=3)))
        a = tuple(1 if draw(st.booleans()) else n for n in b)
        a = tuple(draw(st.lists(st.integers(1, 3), max_size=3 - len(a)))) + a
        b = tuple(1 if n > 1 and draw(st.integers(0, 3)) == 0 else n for n in b)
        return (b, a) if draw(st.booleans()) else (a, b)

    return pair()


EXERCISES = {
    "check_predict_ones_cotangent": (ones_prediction,),
    "check_softplus": (Softplus,),
    "check_broadcastable_shapes": (broadcastable_shapes,),
}


# ---- mistakes the checks must catch ----
_only_the_softmax = {"B"}  # the op the text showed; misses C, whose sum of outputs is also constant


class _NaiveSoftplus(Function):  # log1p(exp(x)) is inf at x = 800, and the backward is nan there
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log1p(np.exp(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * np.exp(x) / (1 + np.exp(x))


def _same_shapes():  # always broadcastable, and never tests broadcasting
    return st.lists(st.integers(1, 4), max_size=3).map(lambda s: (tuple(s), tuple(s)))


MISTAKES = {
    "check_predict_ones_cotangent": (_only_the_softmax,),
    "check_softplus": (_NaiveSoftplus,),
    "check_broadcastable_shapes": (_same_shapes,),
}


class _StubSoftplus(Function):
    @staticmethod
    def forward(ctx, x):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError


STUBS = {"check_softplus": (_StubSoftplus,), "check_predict_ones_cotangent": (None,)}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
