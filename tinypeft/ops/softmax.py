"""softmax and log_softmax along one dim, each one Function with a closed-form backward.

Both subtract the row max first: exp never overflows, and the result is unchanged because
softmax(x - c) = softmax(x). The backward needs only the output, so that is all we keep.
"""
from .. import backend
from ..autograd import Function
from ..backend import fused


def _shifted(x, dim):
    """x - max(x) along dim, as a new array; a row of all -inf is shifted by 0 (it stays -inf, not nan)."""
    xp = backend.xp_of(x)
    m = x.max(axis=dim, keepdims=True)
    m[~xp.isfinite(m)] = 0
    return x - m


def _keep_output(ctx, y, dim):
    """What both backwards need: the output y and the dim."""
    ctx.dim = dim
    ctx.save_for_backward(y)
    return y


def softmax_reference(x, dim):
    xp = backend.xp_of(x)
    y = _shifted(x, dim)
    xp.exp(y, out=y)
    y /= y.sum(axis=dim, keepdims=True)
    return y


class Softmax(Function):
    name = "softmax"

    @staticmethod
    def forward(ctx, x, *, dim):
        if dim in (-1, x.ndim - 1) and x.ndim and fused.applies(x):
            y = fused.softmax(x)  # the lines below, one pass per row in C (tests/test_fused.py)
        else:
            y = softmax_reference(x, dim)
        return _keep_output(ctx, y, dim)

    @staticmethod
    def backward(ctx, g):
        # dy_i/dx_j = y_i (delta_ij - y_j)  =>  dx = y * (g - sum(g * y))
        (y,) = ctx.saved_tensors
        gy = g * y
        gy -= y * gy.sum(axis=ctx.dim, keepdims=True)
        return gy


class LogSoftmax(Function):
    name = "log_softmax"

    @staticmethod
    def forward(ctx, x, *, dim):
        xp = backend.xp_of(x)
        y = _shifted(x, dim)
        lse = xp.log(xp.exp(y).sum(axis=dim, keepdims=True))  # log sum exp of the shifted row
        y -= lse
        return _keep_output(ctx, y, dim)

    @staticmethod
    def backward(ctx, g):
        # y_i = x_i - logsumexp(x)  =>  dx = g - softmax(x) * sum(g)
        (y,) = ctx.saved_tensors
        xp = backend.xp_of(y)
        dx = xp.exp(y)
        dx *= -g.sum(axis=ctx.dim, keepdims=True)
        dx += g
        return dx


def _cast(x, dtype):
    if dtype is None:
        return x
    from .shape import cast

    return cast(x, dtype)


def softmax(input, dim, dtype=None):
    """torch.nn.functional.softmax; `dtype` casts the input first (e.g. float32 for a float16 input)."""
    return Softmax.apply(_cast(input, dtype), dim=dim)


def log_softmax(input, dim, dtype=None):
    return LogSoftmax.apply(_cast(input, dtype), dim=dim)
