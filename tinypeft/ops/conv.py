"""conv1d and conv2d (torch.nn.functional's, cross-correlation as torch computes it), each one Function.

Both are done by im2col: the input windows that each output position sees are laid out as the columns
of a matrix, and the convolution becomes one GEMM per group:

    y[b, o, p] = sum_{c, k} W[o, c, k] * x_pad[b, c, s*p + d*k] + bias[o]              (1-D; 2-D per axis)
    cols[b, (c, k), p] = x_pad[b, c, s*p + d*k]    ->    y[b, g] = W[g] @ cols[b, g]

The backward follows from the same sum:
    dW[o, c, k]            = sum_{b, p} g[b, o, p] * x_pad[b, c, s*p + d*k]   ->  dW[g] = sum_b g[b, g] @ cols[b, g]^T
    dx_pad[b, c, s*p + d*k] += sum_o g[b, o, p] * W[o, c, k]                   ->  col2im(W[g]^T @ g[b, g])
    dbias[o]               = sum_{b, p} g[b, o, p]
col2im scatter-adds each kernel tap's slice back into the padded input (taps overlap when s < k*d), then
the padding is cropped off. conv1d runs on the 2-D code with a kernel of height 1.
"""
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


def _im2col(xpad, kernel, stride, dilation, out_hw):
    """[B, C, Hp, Wp] -> [B, C, kh, kw, Ho, Wo]: tap (i, j) of every window, one strided slice per tap."""
    xp = backend.xp_of(xpad)
    B, C = xpad.shape[:2]
    (kh, kw), (sh, sw), (dh, dw), (Ho, Wo) = kernel, stride, dilation, out_hw
    cols = xp.empty((B, C, kh, kw, Ho, Wo), dtype=xpad.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xpad[:, :, i * dh: i * dh + sh * (Ho - 1) + 1: sh, j * dw: j * dw + sw * (Wo - 1) + 1: sw]
    return cols


def _col2im(dcols, padded_hw, kernel, stride, dilation):
    """The adjoint of _im2col: [B, C, kh, kw, Ho, Wo] scatter-added into [B, C, Hp, Wp]."""
    xp = backend.xp_of(dcols)
    B, C, kh, kw, Ho, Wo = dcols.shape
    (sh, sw), (dh, dw) = stride, dilation
    dx = xp.zeros((B, C) + tuple(padded_hw), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i * dh: i * dh + sh * (Ho - 1) + 1: sh, j * dw: j * dw + sw * (Wo - 1) + 1: sw] += dcols[:, :, i, j]
    return dx


class Conv2d(Function):
    name = "conv2d"

    @staticmethod
    def forward(ctx, x, weight, bias=None, *, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
        # x [B, C, H, W], weight [O, C/groups, kh, kw], bias [O] -> [B, O, Ho, Wo]
        xp = backend.xp_of(x)
        B, C, H, W = x.shape
        O, Cg, kh, kw = weight.shape
        G = groups
        if C != Cg * G or O % G:
            raise ValueError(f"conv: input has {C} channels, weight {tuple(weight.shape)} with groups={G} expects "
                             f"{Cg * G} (and out_channels divisible by groups).")
        (pt, pb), (pl, pr) = padding
        xpad = xp.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))) if (pt or pb or pl or pr) else x
        Ho, Wo = _windows(xpad.shape[2:], (kh, kw), stride, dilation)
        cols = _im2col(xpad, (kh, kw), stride, dilation, (Ho, Wo))  # [B, C, kh, kw, Ho, Wo]
        cols = cols.reshape(B, G, Cg * kh * kw, Ho * Wo)  # channels of one group are contiguous
        wg = weight.reshape(G, O // G, Cg * kh * kw)  # [G, O/G, Cg*kh*kw]
        y = backend.matmul(wg[None], cols)  # [1, G, O/G, K] @ [B, G, K, P] -> [B, G, O/G, P]
        y = y.reshape(B, O, Ho, Wo)
        if bias is not None:
            y += bias[:, None, None]
        need_x, need_w, _ = ctx.needs_input_grad
        ctx.save_for_backward(cols if need_w else None, weight if need_x else None)
        ctx.geom = (x.shape, xpad.shape[2:], (kh, kw), stride, dilation, padding, G)
        return y

    @staticmethod
    def backward(ctx, g):
        # dW[g] = sum_b g[b, g] @ cols[b, g]^T;  dx = crop(col2im(W[g]^T @ g[b, g]));  db = sum_{b, p} g
        cols, weight = ctx.saved_tensors
        x_shape, padded_hw, kernel, stride, dilation, padding, G = ctx.geom
        B, C, H, W = x_shape
        O = g.shape[1]
        P = g.shape[2] * g.shape[3]
        gg = g.reshape(B, G, O // G, P)  # [B, G, O/G, P]
        need_x, need_w, need_b = ctx.needs_input_grad
        dw = None
        if need_w:
            dw = backend.matmul(gg, cols.swapaxes(-1, -2)).sum(axis=0)  # [B, G, O/G, K] -> [G, O/G, K]
            dw = dw.reshape(O, C // G, *kernel)
        dx = None
        if need_x:
            wg = weight.reshape(G, O // G, -1)  # [G, O/G, K]
            dcols = backend.matmul(wg.swapaxes(-1, -2)[None], gg)  # [1, G, K, O/G] @ [B, G, O/G, P] -> [B, G, K, P]
            dcols = dcols.reshape(B, C, kernel[0], kernel[1], g.shape[2], g.shape[3])
            dpad = _col2im(dcols, padded_hw, kernel, stride, dilation)
            (pt, _), (pl, _) = padding
            dx = dpad[:, :, pt: pt + H, pl: pl + W]
        db = g.sum(axis=(0, 2, 3)) if need_b else None
        return dx, dw, db


class Conv1d(Function):
    """conv1d as conv2d over a height-1 image: the same im2col, GEMM and col2im, proven on its own."""

    name = "conv1d"

    @staticmethod
    def forward(ctx, x, weight, bias=None, *, stride=1, padding=(0, 0), dilation=1, groups=1):
        # x [B, C, L], weight [O, C/groups, k], bias [O] -> [B, O, Lo]
        y = Conv2d.forward(ctx, x[:, :, None, :], weight[:, :, None, :], bias, stride=(1, stride),
                           padding=((0, 0), padding), dilation=(1, dilation), groups=groups)
        return y[:, :, 0, :]

    @staticmethod
    def backward(ctx, g):
        dx, dw, db = Conv2d.backward(ctx, g[:, :, None, :])
        return (None if dx is None else dx[:, :, 0, :]), (None if dw is None else dw[:, :, 0, :]), db


def _resolve_padding(padding, kernel, stride, dilation, n):
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            return _same_padding(kernel, dilation, stride)
        raise ValueError(f"conv{n}d: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}.")
    return tuple((p, p) for p in _pair(padding, n, "padding"))


def _check(input, weight, n):
    if input.ndim not in (n + 1, n + 2):
        raise ValueError(f"conv{n}d expects a {n + 1}-D (unbatched) or {n + 2}-D (batched) input, "
                         f"got shape {tuple(input.shape)}.")
    if weight.ndim != n + 2:
        raise ValueError(f"conv{n}d expects a {n + 2}-D weight [out, in/groups, *kernel], got {tuple(weight.shape)}.")


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv1d: input [B, C, L] (or [C, L]), weight [O, C/groups, k], bias [O] or None."""
    _check(input, weight, 1)
    (s,), (d,) = _pair(stride, 1, "stride"), _pair(dilation, 1, "dilation")
    (pad,) = _resolve_padding(padding, tuple(weight.shape[2:]), (s,), (d,), 1)
    if input.ndim == 2:
        return conv1d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    return Conv1d.apply(input, weight, bias, stride=s, padding=pad, dilation=d, groups=groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d: input [B, C, H, W] (or [C, H, W]), weight [O, C/groups, kh, kw], bias [O]."""
    _check(input, weight, 2)
    s, d = _pair(stride, 2, "stride"), _pair(dilation, 2, "dilation")
    pad = _resolve_padding(padding, tuple(weight.shape[2:]), s, d, 2)
    if input.ndim == 3:
        return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    return Conv2d.apply(input, weight, bias, stride=s, padding=pad, dilation=d, groups=groups)
