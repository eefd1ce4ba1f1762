"""Reductions: sum, mean, max over axes (torch's `dim` / `keepdim`)."""
from collections import namedtuple

from .. import backend
from ..autograd import Function
from ..tensor import Tensor


def _axes(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(sorted(d % ndim for d in dims)) if ndim else ()


def _expand_back(g, shape, axes):
    """Reinsert reduced axes as size 1 so g broadcasts against the input."""
    for ax in axes:
        g = backend.xp_of(g).expand_dims(g, ax)
    return g


class Sum(Function):
    name = "sum"

    @staticmethod
    def forward(ctx, x, *, dim=None, keepdim=False):
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, _axes(dim, x.ndim), keepdim
        return x.sum(axis=ctx.axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        # d(sum x)/dx_i = 1: the gradient is copied to every summed element
        if not ctx.keepdim:
            g = _expand_back(g, ctx.shape, ctx.axes)
        return backend.xp_of(g).broadcast_to(g, ctx.shape)


class Mean(Function):
    name = "mean"

    @staticmethod
    def forward(ctx, x, *, dim=None, keepdim=False):
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, _axes(dim, x.ndim), keepdim
        ctx.count = 1
        for ax in ctx.axes:
            ctx.count *= x.shape[ax]
        return x.mean(axis=ctx.axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        # d(mean x)/dx_i = 1/n
        if not ctx.keepdim:
            g = _expand_back(g, ctx.shape, ctx.axes)
        return backend.xp_of(g).broadcast_to(g / ctx.count, ctx.shape)


class Max(Function):
    name = "max"

    @staticmethod
    def forward(ctx, x, *, dim=None, keepdim=False):
        axes = _axes(dim, x.ndim)
        out = x.max(axis=axes, keepdims=True)
        # Ties share the gradient equally (like torch.amax), so the subgradient is symmetric.
        mask = (x == out).astype(x.dtype)
        ctx.save_for_backward(mask / mask.sum(axis=axes, keepdims=True))
        ctx.axes, ctx.keepdim = axes, keepdim
        return out if keepdim else out.squeeze(axis=axes) if axes else out

    @staticmethod
    def backward(ctx, g):
        # d(max x)/dx_i = 1 where x_i is the max (split among ties), else 0
        (weights,) = ctx.saved_tensors
        if not ctx.keepdim:
            g = _expand_back(g, weights.shape, ctx.axes)
        return g * weights


def sum(x, dim=None, keepdim=False):
    return Sum.apply(x, dim=dim, keepdim=keepdim)


def mean(x, dim=None, keepdim=False):
    return Mean.apply(x, dim=dim, keepdim=keepdim)


def amax(x, dim=None, keepdim=False):
    return Max.apply(x, dim=dim, keepdim=keepdim)


_MaxResult = namedtuple("max", ["values", "indices"])


def max(x, dim=None, keepdim=False):
    """torch semantics: x.max() is a scalar; x.max(dim) is (values, indices), the indices without gradient."""
    if dim is None:
        return amax(x)
    indices = x.data.argmax(axis=dim)
    if keepdim:
        indices = x.xp.expand_dims(indices, dim)
    return _MaxResult(amax(x, dim, keepdim), Tensor._wrap(indices))
