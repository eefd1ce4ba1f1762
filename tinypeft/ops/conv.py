"""conv1d, conv2d and conv3d (torch.nn.functional's, cross-correlation as torch computes it), each one Function.

All three are one N-D code (n spatial axes) done by im2col: the input windows that each output position sees are
laid out as the columns of a matrix, and the convolution becomes one GEMM per group:

    y[b, o, p] = sum_{c, k} W[o, c, k] * x_pad[b, c, s*p + d*k] + bias[o]          (p, k, s, d: n-tuples, per axis)
    cols[b, (c, k), p] = x_pad[b, c, s*p + d*k]    ->    y[b, g] = W[g] @ cols[b, g]

The backward follows from the same sum:
    dW[o, c, k]            = sum_{b, p} g[b, o, p] * x_pad[b, c, s*p + d*k]   ->  dW[g] = sum_b g[b, g] @ cols[b, g]^T
    dx_pad[b, c, s*p + d*k] += sum_o g[b, o, p] * W[o, c, k]                   ->  col2im(W[g]^T @ g[b, g])
    dbias[o]               = sum_{b, p} g[b, o, p]
col2im scatter-adds each kernel tap's slice back into the padded input (taps overlap when s < k*d), then
the padding is cropped off. The three ops differ only in n, so they are registered (and proven) one by one.
"""
import itertools
import math

from .. import backend
from ..autograd import Function


def _pair(v, n, what):
    t = tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
    if len(t) != n or not all(isinstance(i, int) for i in t):
        raise ValueError(f"conv{n}d: {what} must be an int or a tuple of {n} ints, got {v!r}.")
    return t


def _same_padding(kernel, dilation, stride):
    """padding='same': total d*(k-1) per axis, the odd one extra on the right/bottom (torch's choice)."""
    if any(s != 1 for s in stride):
        raise ValueError("padding='same' is not supported for strided convolutions (torch refuses it too).")
    return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation))


def _windows(shape, kernel, stride, dilation):
    """Output size per axis: floor((padded - d*(k-1) - 1) / s) + 1."""
    out = tuple((n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(shape, kernel, stride, dilation))
    if any(o <= 0 for o in out):
        raise ValueError(f"conv: the (padded) input {shape} is smaller than the dilated kernel {kernel}.")
    return out


def _taps(kernel, stride, dilation, out):
    """Each kernel tap k (an n-tuple) with the strided slices of the padded input that it meets over all outputs."""
    for tap in itertools.product(*(range(k) for k in kernel)):
        yield tap, tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, s, d, o in zip(tap, stride, dilation, out))


def _im2col(xpad, kernel, stride, dilation, out):
    """[B, C, *padded] -> [B, C, *kernel, *out]: tap k of every window, one strided slice per tap."""
    xp = backend.xp_of(xpad)
    cols = xp.empty(xpad.shape[:2] + tuple(kernel) + tuple(out), dtype=xpad.dtype)
    for tap, window in _taps(kernel, stride, dilation, out):
        cols[(slice(None), slice(None)) + tap] = xpad[(slice(None), slice(None)) + window]
    return cols


def _col2im(dcols, padded, kernel, stride, dilation):
    """The adjoint of _im2col: [B, C, *kernel, *out] scatter-added into [B, C, *padded]."""
    xp = backend.xp_of(dcols)
    out = dcols.shape[2 + len(kernel):]
    dx = xp.zeros(dcols.shape[:2] + tuple(padded), dtype=dcols.dtype)
    for tap, window in _taps(kernel, stride, dilation, out):
        dx[(slice(None), slice(None)) + window] += dcols[(slice(None), slice(None)) + tap]
    return dx


class _ConvNd(Function):
    """The N-D convolution; Conv1d / Conv2d / Conv3d below register it once per n."""

    @staticmethod
    def forward(ctx, x, weight, bias=None, *, stride, padding, dilation, groups=1):
        # x [B, C, *S], weight [O, C/groups, *k], bias [O] -> [B, O, *S'];  padding: one (before, after) per axis
        xp = backend.xp_of(x)
        B, C = x.shape[:2]
        O, Cg = weight.shape[:2]
        kernel, G = tuple(weight.shape[2:]), groups
        if C != Cg * G or O % G:
            raise ValueError(f"conv: input has {C} channels, weight {tuple(weight.shape)} with groups={G} expects "
                             f"{Cg * G} (and out_channels divisible by groups).")
        xpad = xp.pad(x, ((0, 0), (0, 0)) + tuple(padding)) if any(any(p) for p in padding) else x
        out = _windows(xpad.shape[2:], kernel, stride, dilation)
        cols = _im2col(xpad, kernel, stride, dilation, out)  # [B, C, *k, *S']
        cols = cols.reshape(B, G, -1, math.prod(out))  # channels of one group are contiguous: [B, G, Cg*K, P]
        wg = weight.reshape(G, O // G, -1)  # [G, O/G, Cg*K]
        y = backend.matmul(wg[None], cols)  # [1, G, O/G, Cg*K] @ [B, G, Cg*K, P] -> [B, G, O/G, P]
        y = y.reshape((B, O) + out)
        if bias is not None:
            y += bias.reshape((O,) + (1,) * len(out))
        need_x, need_w, _ = ctx.needs_input_grad
        ctx.save_for_backward(cols if need_w else None, weight if need_x else None)
        ctx.geom = (x.shape, xpad.shape[2:], kernel, stride, dilation, padding, G)
        return y

    @staticmethod
    def backward(ctx, g):
        # dW[g] = sum_b g[b, g] @ cols[b, g]^T;  dx = crop(col2im(W[g]^T @ g[b, g]));  db = sum_{b, p} g
        cols, weight = ctx.saved_tensors
        x_shape, padded, kernel, stride, dilation, padding, G = ctx.geom
        B, C = x_shape[:2]
        O, out = g.shape[1], g.shape[2:]
        gg = g.reshape(B, G, O // G, math.prod(out))  # [B, G, O/G, P]
        need_x, need_w, need_b = ctx.needs_input_grad
        dw = None
        if need_w:
            dw = backend.matmul(gg, cols.swapaxes(-1, -2)).sum(axis=0)  # [B, G, O/G, K] -> [G, O/G, K]
            dw = dw.reshape((O, C // G) + kernel)
        dx = None
        if need_x:
            wg = weight.reshape(G, O // G, -1)  # [G, O/G, K]
            dcols = backend.matmul(wg.swapaxes(-1, -2)[None], gg)  # [1, G, K, O/G] @ [B, G, O/G, P] -> [B, G, K, P]
            dpad = _col2im(dcols.reshape((B, C) + kernel + out), padded, kernel, stride, dilation)
            dx = dpad[(slice(None), slice(None)) + tuple(slice(p, p + n) for (p, _), n in zip(padding, x_shape[2:]))]
        db = g.sum(axis=(0,) + tuple(range(2, g.ndim))) if need_b else None
        return dx, dw, db


class Conv1d(_ConvNd):
    name = "conv1d"


class Conv2d(_ConvNd):
    name = "conv2d"


class Conv3d(_ConvNd):
    name = "conv3d"


_OPS = {1: Conv1d, 2: Conv2d, 3: Conv3d}


def _resolve_padding(padding, kernel, stride, dilation, n):
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            return _same_padding(kernel, dilation, stride)
        raise ValueError(f"conv{n}d: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}.")
    return tuple((p, p) for p in _pair(padding, n, "padding"))


def _conv(n, input, weight, bias, stride, padding, dilation, groups):
    """torch.nn.functional.conv{n}d: input [B, C, *S] (or unbatched [C, *S]), weight [O, C/groups, *k], bias [O]."""
    if input.ndim not in (n + 1, n + 2):
        raise ValueError(f"conv{n}d expects a {n + 1}-D (unbatched) or {n + 2}-D (batched) input, "
                         f"got shape {tuple(input.shape)}.")
    if weight.ndim != n + 2:
        raise ValueError(f"conv{n}d expects a {n + 2}-D weight [out, in/groups, *kernel], got {tuple(weight.shape)}.")
    if input.ndim == n + 1:
        return _conv(n, input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    s, d = _pair(stride, n, "stride"), _pair(dilation, n, "dilation")
    pad = _resolve_padding(padding, tuple(weight.shape[2:]), s, d, n)
    return _OPS[n].apply(input, weight, bias, stride=s, padding=pad, dilation=d, groups=groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv1d: input [B, C, L] (or [C, L]), weight [O, C/groups, k], bias [O] or None."""
    return _conv(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d: input [B, C, H, W] (or [C, H, W]), weight [O, C/groups, kh, kw], bias [O]."""
    return _conv(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv3d: input [B, C, D, H, W] (or [C, D, H, W]), weight [O, C/groups, kd, kh, kw]."""
    return _conv(3, input, weight, bias, stride, padding, dilation, groups)
