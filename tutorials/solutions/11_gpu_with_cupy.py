"""Solutions to tutorials/11_gpu_with_cupy.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/11_gpu_with_cupy.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft import backend  # noqa: E402
from tinypeft.autograd import Function  # noqa: E402
from tinypeft.course.checks_11 import check_logsumexp, check_silu_function  # noqa: E402


# ---- Exercise 1 ----
def logsumexp(x, axis=-1):
    xp = backend.xp_of(x)
    m = x.max(axis=axis, keepdims=True)  # log sum e^x = m + log sum e^(x - m): no term above e^0
    return (m + xp.log(xp.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


# ---- Exercise 2 ----
class SiLU(Function):
    name = None  # not registered: tinypeft's op registry is for its own ops

    @staticmethod
    def forward(ctx, x):
        xp = backend.xp_of(x)
        s = 0.5 * (1 + xp.tanh(0.5 * x))  # sigmoid(x) without exp overflow: 1/(1+e^-x) = (1 + tanh(x/2)) / 2
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        # d (x s) / dx = s + x s' and s' = s (1 - s):  s (1 + x (1 - s))
        x, s = ctx.saved_tensors
        return g * s * (1 + x * (1 - s))


EXERCISES = {
    "check_logsumexp": (logsumexp,),
    "check_silu_function": (SiLU,),
}


class _StubSiLU(Function):  # what the tutorial's stub is
    name = None

    @staticmethod
    def forward(ctx, x):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError


STUBS = {"check_silu_function": (_StubSiLU,)}


# ---- mistakes the checks must catch ----
def _naive_logsumexp(x, axis=-1):  # exp(1000) = inf
    xp = backend.xp_of(x)
    return xp.log(xp.exp(x).sum(axis=axis))


class _SiLUWithoutProductRule(SiLU):  # d (x sigmoid(x)) / dx is not sigmoid(x)
    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        return g * s


MISTAKES = {
    "check_logsumexp": (_naive_logsumexp,),
    "check_silu_function": (_SiLUWithoutProductRule,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
