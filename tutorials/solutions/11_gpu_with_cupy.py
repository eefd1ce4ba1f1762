"""Solutions to tutorials/11_gpu_with_cupy.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/11_gpu_with_cupy.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft import backend  # noqa: E402
from tinypeft.autograd import Function  # noqa: E402
from tinypeft.course.checks_11 import check_logsumexp, check_softplus_function  # noqa: E402


# ---- Exercise 1 ----
def logsumexp(x, axis=-1):
    xp = backend.xp_of(x)
    m = x.max(axis=axis, keepdims=True)  # log sum e^x = m + log sum e^(x - m): no term above e^0
    return (m + xp.log(xp.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


# ---- Exercise 2 ----
class Softplus(Function):
    name = None  # not registered: tinypeft's op registry is for its own ops

    @staticmethod
    def forward(ctx, x):
        xp = backend.xp_of(x)
        ctx.save_for_backward(x)
        return xp.logaddexp(x.dtype.type(0), x)  # log(1 + e^x) without overflow, in x's dtype

    @staticmethod
    def backward(ctx, g):
        # d log(1 + e^x) / dx = e^x / (1 + e^x) = 1 / (1 + e^-x)
        (x,) = ctx.saved_tensors
        xp = backend.xp_of(x)
        with np.errstate(over="ignore"):  # e^-x = inf for very negative x gives 1/inf = 0, as it should
            return g / (1 + xp.exp(-x))


EXERCISES = {
    "check_logsumexp": (logsumexp,),
    "check_softplus_function": (Softplus,),
}


class _StubSoftplus(Function):  # what the tutorial's stub is
    name = None

    @staticmethod
    def forward(ctx, x):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError


STUBS = {"check_softplus_function": (_StubSoftplus,)}


# ---- mistakes the checks must catch ----
def _naive_logsumexp(x, axis=-1):  # exp(1000) = inf
    xp = backend.xp_of(x)
    return xp.log(xp.exp(x).sum(axis=axis))


class _SoftplusWrongBackward(Softplus):  # the derivative of softplus is not softplus
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * backend.xp_of(x).logaddexp(0, x)


MISTAKES = {
    "check_logsumexp": (_naive_logsumexp,),
    "check_softplus_function": (_SoftplusWrongBackward,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
