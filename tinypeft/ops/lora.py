"""LoRA and DoRA on a linear layer, each one fused Function with a hand-derived backward.

    LoRA   y = x W^T + b + s * (d(x) A^T) B^T                      W [out, in], A [r, in], B [out, r]
    DoRA   y = x W^T + b + (g - 1) * d(x) W^T + g * s * (d(x) A^T) B^T,   g = m / ||W + s B A||_row

d(x) is inverted dropout (a fixed keep-mask scaled by 1/(1-p)); s = lora_alpha / r. The product B A is never
formed in training: x A^T is [.., r], tiny, and only r-wide GEMMs are added to the frozen layer's one.
With fan_in_fan_out (GPT-2's Conv1D) W is stored [in, out] and x W replaces x W^T.
DoRA's row norm is passed in as a constant, as in the paper (section 4.3): gradients do not flow through it.
include_base=False leaves out x W^T + b: the term a second active adapter adds on top of the first one's output.
"""
from .. import backend
from ..autograd import Function


def _rows(a):
    return a.reshape(-1, a.shape[-1])  # [..., n] -> [rows, n]


def _base(x, W, fan_in_fan_out):
    return backend.matmul(x, W if fan_in_fan_out else W.T)  # [..., in] -> [..., out]


class LoraLinear(Function):
    name = "lora_linear"

    @staticmethod
    def forward(ctx, x, W, b, A, B, *, scaling=1.0, keep=None, dropout_scale=1.0, fan_in_fan_out=False,
                include_base=True):
        xd = x if keep is None else x * keep * x.dtype.type(dropout_scale)  # d(x)
        h = backend.matmul(xd, A.T)  # [..., in] -> [..., r]
        y = backend.matmul(h, B.T) * x.dtype.type(scaling)  # [..., r] -> [..., out]
        if include_base:
            y += _base(x, W, fan_in_fan_out)
        if b is not None:
            y += b
        ctx.save_for_backward(x, W, A, B, xd, h)
        ctx.scaling, ctx.keep, ctx.dropout_scale, ctx.fifo = scaling, keep, dropout_scale, fan_in_fan_out
        ctx.include_base = include_base
        return y

    @staticmethod
    def backward(ctx, g):
        # dB = s g^T h;  dh = s g B;  dA = dh^T d(x);  dx = g W + d'(dh A);  dW = g^T x (only if W trains).
        # Without the base term, g W and g^T x drop out.
        x, W, A, B, xd, h = ctx.saved_tensors
        need_x, need_w, need_b, need_a, need_bb = ctx.needs_input_grad
        s = g.dtype.type(ctx.scaling)
        g2 = _rows(g)  # [rows, out]
        dB = backend.matmul(g2.T, _rows(h)) * s if need_bb else None  # [out, r]
        dh = backend.matmul(g, B) * s if (need_a or need_x) else None  # [..., r]
        dA = backend.matmul(_rows(dh).T, _rows(xd)) if need_a else None  # [r, in]
        dx = None
        if need_x:
            dx = backend.matmul(dh, A)
            if ctx.keep is not None:
                dx = dx * ctx.keep * g.dtype.type(ctx.dropout_scale)
            if ctx.include_base:
                dx += backend.matmul(g, W.T if ctx.fifo else W)  # the frozen layer's share
        dW = None
        if need_w and ctx.include_base:
            dW = backend.matmul(g2.T, _rows(x))  # [out, in]
            dW = dW.T if ctx.fifo else dW
        db = g2.sum(axis=0) if need_b else None
        return dx, dW, db, dA, dB


class DoraLinear(Function):
    name = "dora_linear"

    @staticmethod
    def forward(ctx, x, W, b, A, B, m, weight_norm, *, scaling=1.0, keep=None, dropout_scale=1.0,
                fan_in_fan_out=False, include_base=True):
        xd = x if keep is None else x * keep * x.dtype.type(dropout_scale)
        mag = m / weight_norm  # [out]: DoRA's per-row rescale g
        h = backend.matmul(xd, A.T)  # [..., r]
        lora = backend.matmul(h, B.T) * x.dtype.type(scaling)  # [..., out]
        base_d = _base(xd, W, fan_in_fan_out)  # d(x) W^T
        y = (mag - 1) * base_d + mag * lora
        if include_base:  # + x W^T: without dropout the same product, so it is not computed twice
            y += base_d if keep is None else _base(x, W, fan_in_fan_out)
        if b is not None:
            y += b
        ctx.save_for_backward(x, W, A, B, xd, h, mag, weight_norm, base_d, lora)
        ctx.scaling, ctx.keep, ctx.dropout_scale, ctx.fifo = scaling, keep, dropout_scale, fan_in_fan_out
        ctx.include_base = include_base
        return y

    @staticmethod
    def backward(ctx, g):
        # with u = d(x) W^T + s h B^T:  dm = sum_rows(g * u) / norm;  the LoRA path sees g * mag;
        # dx = g W + d'((mag - 1) g W + s (g mag) B A)
        x, W, A, B, xd, h, mag, norm, base_d, lora = ctx.saved_tensors
        need_x, need_w, need_b, need_a, need_bb, need_m = ctx.needs_input_grad[:6]
        s = g.dtype.type(ctx.scaling)
        gm = g * mag  # gradient reaching the LoRA branch
        dm = _rows(g * (base_d + lora)).sum(axis=0) / norm if need_m else None
        dB = backend.matmul(_rows(gm).T, _rows(h)) * s if need_bb else None
        dh = backend.matmul(gm, B) * s if (need_a or need_x) else None
        dA = backend.matmul(_rows(dh).T, _rows(xd)) if need_a else None
        dx = None
        if need_x:
            Wt = W.T if ctx.fifo else W  # maps [..., out] back to [..., in]
            dx = backend.matmul(g * (mag - 1), Wt) + backend.matmul(dh, A)
            if ctx.keep is not None:
                dx = dx * ctx.keep * g.dtype.type(ctx.dropout_scale)
            if ctx.include_base:
                dx += backend.matmul(g, Wt)
        dW = None
        if need_w:
            # y depends on W through (mag - 1) d(x) W^T, and x W^T when the base term is in
            dW = backend.matmul(_rows(g * (mag - 1)).T, _rows(xd))
            if ctx.include_base:
                dW += backend.matmul(_rows(g).T, _rows(x))
            dW = dW.T if ctx.fifo else dW
        db = _rows(g).sum(axis=0) if need_b else None
        return dx, dW, db, dA, dB, dm, None


def _dropout_args(x, p, training):
    if not training or p == 0.0:
        return {}
    from .dropout import keep_mask

    return {"keep": keep_mask(x.shape, p, x.data), "dropout_scale": 1.0 / (1.0 - p)}


def lora_linear(x, weight, bias, lora_A, lora_B, scaling, dropout_p=0.0, training=False, fan_in_fan_out=False,
                include_base=True):
    """y = x W^T + b + scaling * dropout(x) A^T B^T in one op (W^T -> W when fan_in_fan_out)."""
    return LoraLinear.apply(x, weight, bias, lora_A, lora_B, scaling=scaling, fan_in_fan_out=fan_in_fan_out,
                            include_base=include_base, **_dropout_args(x, dropout_p, training))


def dora_linear(x, weight, bias, lora_A, lora_B, magnitude, weight_norm, scaling, dropout_p=0.0, training=False,
                fan_in_fan_out=False, include_base=True):
    """DoRA's output with `weight_norm` = ||W + s B A|| per output row, a constant (no gradient)."""
    return DoraLinear.apply(x, weight, bias, lora_A, lora_B, magnitude, weight_norm, scaling=scaling,
                            fan_in_fan_out=fan_in_fan_out, include_base=include_base,
                            **_dropout_args(x, dropout_p, training))
