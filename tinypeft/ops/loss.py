"""cross_entropy (log_softmax + nll in one Function) and mse_loss, with torch's arguments and reductions.

For one row with logits z, p = softmax(z) and a per-class coefficient a_c (what multiplies -log p_c), the
loss is -sum_c a_c log p_c and its gradient is d/dz_j = p_j * sum_c a_c - a_j. For a class index t,
label smoothing ls and class weights w: a_c = (1 - ls) w_t [c = t] + ls w_c / C, which is torch's mix of
the nll term and the uniform "smooth" term.
"""
import numpy as np

from .. import backend
from ..autograd import Function
from ..backend import fused
from ..tensor import as_array
from .softmax import _shifted


def _target_index(t, cdim):
    """An index tuple that picks x[n, t[n, ...], ...] out of x [N, C, ...]: one entry per target, no repeats."""
    where = backend.open_grid(t.shape, backend.xp_of(t))
    where.insert(cdim, t)
    return tuple(where)


class CrossEntropy(Function):
    """input [N, C, d1, ...] (or [C]) logits, target [N, d1, ...] (or []) class indices; weight [C] is an option."""

    name = "cross_entropy"

    @staticmethod
    def forward(ctx, x, *, target, weight, ignore_index, reduction, label_smoothing):
        if x.ndim == 2 and label_smoothing == 0 and reduction in ("mean", "sum", "none") and fused.applies(x):
            return _fused_forward(ctx, x, target, weight, ignore_index, reduction)
        xp = backend.xp_of(x)
        cdim = 0 if x.ndim == 1 else 1
        C = x.shape[cdim]
        wshape = [1] * x.ndim
        wshape[cdim] = C  # weight broadcast along the class dim

        # log p = shifted - lse, never materialised in full: only the target's entry and the row sum are needed
        shifted = _shifted(x, cdim)  # [N, C, ...]
        valid = target != ignore_index  # [N, ...]
        t = xp.where(valid, target, 0)
        at = _target_index(t, cdim)
        shifted_t = shifted[at]  # [N, ...], read before exp overwrites the buffer
        if label_smoothing > 0:
            if weight is None:
                shifted_sum = shifted.sum(axis=cdim)  # sum_c of the shifted logits, for -sum_c log p_c
            else:
                shifted_sum = (shifted * weight.reshape(wshape)).sum(axis=cdim)
        p = xp.exp(shifted, out=shifted)  # one [N, C] buffer for shifted logits, then probabilities
        sumexp = p.sum(axis=cdim, keepdims=True)
        p /= sumexp
        lse = xp.log(sumexp)  # [N, 1, ...]

        logp_t = shifted_t - lse.squeeze(cdim)  # [N, ...]
        w_t = valid.astype(x.dtype) if weight is None else weight[t] * valid  # weight of each target, 0 if ignored
        loss = -w_t * logp_t
        if label_smoothing > 0:
            total_w = C if weight is None else weight.sum()
            smooth = -(shifted_sum - total_w * lse.squeeze(cdim))  # -sum_c w_c log p_c
            loss = (1 - label_smoothing) * loss + (label_smoothing / C) * smooth * valid

        if reduction == "mean":
            # torch divides by the total weight of the non-ignored targets (nan when all are ignored)
            denom = w_t.sum()
            with np.errstate(invalid="ignore", divide="ignore"):
                out = loss.sum() / denom
        elif reduction == "sum":
            denom, out = None, loss.sum()
        elif reduction == "none":
            denom, out = None, loss
        else:
            raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")
        ctx.save_for_backward(p, t, valid, w_t, weight, denom)  # t, not the index tuple: one int64 a target
        ctx.fused = False
        ctx.cdim, ctx.wshape, ctx.reduction, ctx.ls = cdim, wshape, reduction, label_smoothing
        return xp.asarray(out, dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        if ctx.fused:
            return _fused_backward(ctx, g)
        # dz = scale * (p * sum_c a_c - a), a = (1 - ls) w_t onehot(t) + ls w / C; scale is g (/ total weight)
        p, t, valid, w_t, weight, denom = ctx.saved_tensors
        xp = backend.xp_of(p)
        cdim, ls = ctx.cdim, ctx.ls
        at = _target_index(t, cdim)
        C = p.shape[cdim]
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = g / denom if ctx.reduction == "mean" else g
        # ignored targets get no gradient (and all ignored gives zeros, not nan, as in torch)
        scale = xp.where(valid, scale, xp.zeros((), dtype=p.dtype))
        sum_a = (1 - ls) * w_t
        if ls > 0:
            sum_a = sum_a + ls / C * (C if weight is None else weight.sum())
        dz = p * xp.expand_dims(scale * sum_a, cdim)
        dz[at] -= scale * (1 - ls) * w_t  # the one-hot part of a
        if ls > 0:
            wb = 1.0 if weight is None else weight.reshape(ctx.wshape)
            dz -= xp.expand_dims(scale * (ls / C), cdim) * wb
        return dz.astype(p.dtype, copy=False)


def _fused_forward(ctx, x, target, weight, ignore_index, reduction):
    """CrossEntropy.forward for x [N, C] float32 without label smoothing, in C (backend/fused.py): per row one
    pass for the max and one for sum exp, keeping lse [N] instead of the probabilities [N, C]; the backward
    rebuilds p = exp(x - lse) from the logits straight into the gradient. No [N, C] array is made here, and
    the backward keeps as many bytes as the NumPy path's: the logits for p, lse for w_t (rebuilt from t)."""
    valid = target != ignore_index  # [N]
    t = np.where(valid, target, 0)  # [N] int64, as the NumPy path keeps
    lse, nll = fused.cross_entropy(x, target, ignore_index)  # [N]: lse and -log p_t (0 where ignored)
    w_t = _target_weights(t, valid, weight, x.dtype)
    loss = w_t * nll
    denom = None
    if reduction == "mean":
        denom = w_t.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            out = loss.sum() / denom
    else:
        out = loss.sum() if reduction == "sum" else loss
    ctx.save_for_backward(x, t, valid, lse, weight, denom)
    ctx.fused, ctx.reduction = True, reduction
    return np.asarray(out, dtype=x.dtype)


def _target_weights(t, valid, weight, dtype):
    """w_t: each target's class weight (1 without weights), 0 where the target is ignored."""
    return valid.astype(dtype) if weight is None else weight[t] * valid


def _fused_backward(ctx, g):
    # without label smoothing a = w_t onehot(t), so dz = scale w_t (p - onehot(t)), p = exp(x - lse)
    x, t, valid, lse, weight, denom = ctx.saved_tensors
    w_t = _target_weights(t, valid, weight, x.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):  # every target ignored: 0 / 0, masked out below
        scale = g / denom if ctx.reduction == "mean" else g
        coef = np.where(valid, scale * w_t, np.float32(0)).astype(np.float32)  # [N]
    coef = np.broadcast_to(coef, lse.shape)
    # ignored rows have t = 0 and coef = 0: no ignore index is needed (-1 matches no class)
    return fused.cross_entropy_backward(x, t, -1, lse, coef, coef)


class MSELoss(Function):
    name = "mse_loss"

    @staticmethod
    def forward(ctx, input, target, *, reduction):
        diff = input - target
        ctx.reduction, ctx.n = reduction, diff.size
        ctx.save_for_backward(diff)
        sq = diff * diff
        if reduction == "mean":
            return sq.mean()
        if reduction == "sum":
            return sq.sum()
        if reduction == "none":
            return sq
        raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")

    @staticmethod
    def backward(ctx, g):
        # d (x - y)^2 = 2 (x - y) dx - 2 (x - y) dy; the mean divides by the element count
        (diff,) = ctx.saved_tensors
        d = diff * (2 * g / ctx.n if ctx.reduction == "mean" else 2 * g)
        return (d if ctx.needs_input_grad[0] else None), (-d if ctx.needs_input_grad[1] else None)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """torch.nn.functional.cross_entropy for class-index targets (int64); the class dim is 1 ([N, C, ...])."""
    target, w = as_array(target), as_array(weight)
    if target.dtype.kind not in "iu":
        raise TypeError("cross_entropy: tinypeft supports class-index targets (integer dtype) only.")
    if w is not None and w.dtype != input.dtype:
        w = w.astype(input.dtype)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0, got {label_smoothing}.")
    # only ignore_index is special: any other target outside [0, C) is an error (NumPy would wrap -1 to C-1)
    n_classes = input.shape[1] if input.ndim >= 2 else input.shape[0]
    used = target[target != ignore_index]
    if used.size and (used.min() < 0 or used.max() >= n_classes):
        bad = used.min() if used.min() < 0 else used.max()
        raise IndexError(f"cross_entropy: target {int(bad)} is out of bounds for {n_classes} classes "
                         f"(only ignore_index={ignore_index} may lie outside [0, {n_classes})).")
    return CrossEntropy.apply(
        input, target=target, weight=w, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing
    )


def mse_loss(input, target, reduction="mean"):
    return MSELoss.apply(input, target, reduction=reduction)
