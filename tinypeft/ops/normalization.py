"""layer_norm and rms_norm over the last len(normalized_shape) dims, each one Function.

Both normalise x to xhat, then scale by weight (and shift by bias). With r = 1/sqrt(var + eps) and
dxhat = g * weight, the chain rule through the row statistics gives, averaged over the normalised dims:
    layer_norm: dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    rms_norm:   dx = r * (dxhat - xhat * mean(dxhat * xhat))      (no mean was subtracted)
and for both dweight = sum(g * xhat), dbias = sum(g) over the leading dims.
Over the last dim of a float32 array the forward runs in C (backend/fused.py), which returns the same
out, xhat and r; the NumPy forward below is the reference for it and the path for everything else.
"""
import numpy as np

from .. import backend
from ..autograd import Function
from ..backend import fused


def _norm_axes(x, normalized_shape):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.shape[x.ndim - len(shape) :] != shape:
        raise ValueError(f"normalized_shape {shape} does not match the last dims of an input of shape {x.shape}.")
    return tuple(range(x.ndim - len(shape), x.ndim))


def _input_grad(g, xhat, r, weight, axes, centered):
    """dx = r * (dxhat - [mean(dxhat) if centered] - xhat * mean(dxhat * xhat)) with dxhat = g * weight."""
    dxhat = g if weight is None else g * weight
    dx = xhat * -(dxhat * xhat).mean(axis=axes, keepdims=True)
    dx += dxhat
    if centered:  # layer_norm subtracted the mean in the forward
        dx -= dxhat.mean(axis=axes, keepdims=True)
    dx *= r.astype(dx.dtype, copy=False)  # r is float32 for a float16 input: the statistics are taken in float32
    return dx


def _weight_bias_grads(g, xhat, axes, need_weight, need_bias):
    """dweight = sum(g * xhat) and dbias = sum(g) over the leading dims; None where none is needed."""
    lead = tuple(range(g.ndim - len(axes)))
    dweight = (g * xhat).sum(axis=lead) if need_weight else None
    dbias = g.sum(axis=lead) if need_bias else None
    return dweight, dbias


class LayerNorm(Function):
    """(x - mean) / sqrt(var + eps) * weight + bias; weight and bias may each be None. The statistics are
    taken in float32 at least, as rms_norm's; the output keeps the input's dtype."""

    name = "layer_norm"

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, *, axes, eps):
        ctx.axes = axes
        if axes == (x.ndim - 1,) and fused.applies(x, weight, bias):  # the same, in one pass per row in C
            out, xhat, r = fused.layer_norm(x, weight, bias, eps)
            ctx.save_for_backward(xhat, r, weight)
            return out
        xp = backend.xp_of(x)
        xf = x.astype(np.promote_types(x.dtype, np.float32), copy=False)  # float16's x^2 overflows past 256
        xhat = xf - xf.mean(axis=axes, keepdims=True)  # [..., *normalized_shape]
        var = (xhat * xhat).mean(axis=axes, keepdims=True)  # biased variance, as torch
        r = 1.0 / xp.sqrt(var + eps)  # [..., 1, ...]
        xhat *= r
        xhat = xhat.astype(x.dtype, copy=False)
        if weight is not None:  # a new array: xhat itself is kept for the backward
            out = xhat * weight
            if bias is not None:
                out += bias
        else:
            out = xhat if bias is None else xhat + bias
        ctx.save_for_backward(xhat, r, weight)
        return out

    @staticmethod
    def backward(ctx, g):
        xhat, r, weight = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad
        dx = _input_grad(g, xhat, r, weight, ctx.axes, centered=True) if need_x else None
        return (dx, *_weight_bias_grads(g, xhat, ctx.axes, need_weight, need_bias))


class RMSNorm(Function):
    """x / sqrt(mean(x^2) + eps) * weight. The mean square is taken in float32 at least (as Llama and T5
    do), so a float16 input does not overflow x^2; the output keeps the input's dtype."""

    name = "rms_norm"

    @staticmethod
    def forward(ctx, x, weight=None, *, axes, eps):
        ctx.axes = axes
        if axes == (x.ndim - 1,) and fused.applies(x, weight):
            out, xhat, r = fused.rms_norm(x, weight, eps)
            ctx.save_for_backward(xhat, r, weight)
            return out
        xp = backend.xp_of(x)
        acc = np.promote_types(x.dtype, np.float32)
        xf = x.astype(acc, copy=False)
        r = 1.0 / xp.sqrt((xf * xf).mean(axis=axes, keepdims=True) + eps)  # [..., 1, ...] in acc
        xhat = (xf * r).astype(x.dtype, copy=False)
        out = xhat if weight is None else xhat * weight
        ctx.save_for_backward(xhat, r, weight)
        return out

    @staticmethod
    def backward(ctx, g):
        xhat, r, weight = ctx.saved_tensors
        need_x, need_weight = ctx.needs_input_grad
        dx = _input_grad(g, xhat, r, weight, ctx.axes, centered=False) if need_x else None
        dweight, _ = _weight_bias_grads(g, xhat, ctx.axes, need_weight, False)
        return dx, dweight


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    return LayerNorm.apply(input, weight, bias, axes=_norm_axes(input, normalized_shape), eps=eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """torch.nn.functional.rms_norm: eps=None means the machine epsilon of the input's dtype."""
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    return RMSNorm.apply(input, weight, axes=_norm_axes(input, normalized_shape), eps=eps)
