"""layer_norm and rms_norm over the last len(normalized_shape) dims, each one Function.

Both normalise x to xhat, then scale by weight (and shift by bias). With r = 1/sqrt(var + eps) and
dxhat = g * weight, the chain rule through the row statistics gives, averaged over the normalised dims:
    layer_norm: dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    rms_norm:   dx = r * (dxhat - xhat * mean(dxhat * xhat))      (no mean was subtracted)
and for both dweight = sum(g * xhat), dbias = sum(g) over the leading dims.
"""
import numpy as np

from .. import backend
from ..autograd import Function


def _norm_axes(x, normalized_shape):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.shape[x.ndim - len(shape) :] != shape:
        raise ValueError(f"normalized_shape {shape} does not match the last dims of an input of shape {x.shape}.")
    return tuple(range(x.ndim - len(shape), x.ndim))


def _affine(ctx, g, xhat, params):
    """Gradients of weight and bias (in the order they were passed), summed over the leading dims."""
    lead = tuple(range(g.ndim - params[0].ndim)) if params else ()
    grads = []
    for p, need, kind in zip(params, ctx.needs_input_grad[1:], ctx.kinds):
        if not need:
            grads.append(None)
        elif kind == "weight":
            grads.append((g * xhat).sum(axis=lead).astype(p.dtype, copy=False))
        else:
            grads.append(g.sum(axis=lead).astype(p.dtype, copy=False))
    return grads


class LayerNorm(Function):
    """(x - mean) / sqrt(var + eps) * weight + bias; weight and bias are optional positional inputs. The
    statistics are taken in float32 at least, as rms_norm's; the output keeps the input's dtype."""

    name = "layer_norm"

    @staticmethod
    def forward(ctx, x, *params, axes, eps, kinds):
        xp = backend.xp_of(x)
        xf = x.astype(np.promote_types(x.dtype, np.float32), copy=False)  # float16's x^2 overflows past 256
        xhat = xf - xf.mean(axis=axes, keepdims=True)  # [..., *normalized_shape]
        var = (xhat * xhat).mean(axis=axes, keepdims=True)  # biased variance, as torch
        r = 1.0 / xp.sqrt(var + eps)  # [..., 1, ...]
        xhat *= r
        xhat = xhat.astype(x.dtype, copy=False)
        out = xhat
        for p, kind in zip(params, kinds):
            if out is xhat:  # the first affine op makes the output; xhat itself is kept for backward
                out = xhat * p if kind == "weight" else xhat + p
            else:
                out += p
        ctx.axes, ctx.kinds = axes, kinds
        ctx.save_for_backward(xhat, r, *params)
        return out

    @staticmethod
    def backward(ctx, g):
        xhat, r, *params = ctx.saved_tensors
        dx = None
        if ctx.needs_input_grad[0]:
            dxhat = g * params[0] if "weight" in ctx.kinds else g.copy()
            dx = dxhat - dxhat.mean(axis=ctx.axes, keepdims=True)
            dx -= xhat * (dxhat * xhat).mean(axis=ctx.axes, keepdims=True)
            dx *= r.astype(dx.dtype, copy=False)
        return (dx, *_affine(ctx, g, xhat, params))


class RMSNorm(Function):
    """x / sqrt(mean(x^2) + eps) * weight. The mean square is taken in float32 at least (as Llama and T5
    do), so a float16 input does not overflow x^2; the output keeps the input's dtype."""

    name = "rms_norm"

    @staticmethod
    def forward(ctx, x, *params, axes, eps, kinds):
        xp = backend.xp_of(x)
        acc = np.promote_types(x.dtype, np.float32)
        xf = x.astype(acc, copy=False)
        r = 1.0 / xp.sqrt((xf * xf).mean(axis=axes, keepdims=True) + eps)  # [..., 1, ...] in acc
        xhat = (xf * r).astype(x.dtype, copy=False)
        out = xhat * params[0] if params else xhat
        ctx.axes, ctx.kinds = axes, kinds
        ctx.save_for_backward(xhat, r, *params)
        return out

    @staticmethod
    def backward(ctx, g):
        xhat, r, *params = ctx.saved_tensors
        dx = None
        if ctx.needs_input_grad[0]:
            dxhat = g * params[0] if params else g
            dx = xhat * -(dxhat * xhat).mean(axis=ctx.axes, keepdims=True)
            dx += dxhat
            dx *= r.astype(dx.dtype, copy=False)
        return (dx, *_affine(ctx, g, xhat, params))


def _params(weight, bias=None):
    named = [(p, k) for p, k in ((weight, "weight"), (bias, "bias")) if p is not None]
    return [p for p, _ in named], tuple(k for _, k in named)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    params, kinds = _params(weight, bias)
    return LayerNorm.apply(input, *params, axes=_norm_axes(input, normalized_shape), eps=eps, kinds=kinds)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """torch.nn.functional.rms_norm: eps=None means the machine epsilon of the input's dtype."""
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    params, kinds = _params(weight)
    return RMSNorm.apply(input, *params, axes=_norm_axes(input, normalized_shape), eps=eps, kinds=kinds)
