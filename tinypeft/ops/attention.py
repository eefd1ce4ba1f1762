"""scaled_dot_product_attention as one Function: the [L, S] score matrix is made, used and kept once.

    S = Q K^T * scale + mask      P = softmax(S)      O = P V
backward, with dO the incoming gradient:
    dV = P^T dO    dP = dO V^T    dS = P * (dP - rowsum(dP * P))    dQ = dS K * scale    dK = dS^T Q * scale
A row with every key masked out gives P = 0 (so O = 0 and no gradient), as torch 2.x does, not nan.
Grouped-query attention (enable_gqa) views Q's heads as [Hk, group] instead of copying K and V.
"""
import math

import numpy as np

from .. import backend
from ..autograd import Function
from ..backend import fused
from .dropout import keep_mask


def _group(a, hk):
    """[..., H, X, Y] -> [..., hk, H // hk, X, Y]: query head h reads key head h // (H // hk), as repeat_interleave."""
    if a is None or a.ndim < 3:
        return a  # no head dim: broadcasts as is
    h = a.shape[-3]
    return a.reshape(a.shape[:-3] + ((hk, h // hk) if h != 1 else (1, 1)) + a.shape[-2:])


def _safe_softmax(s):
    """softmax over the last dim, in place; a row of all -inf becomes 0 instead of nan."""
    if fused.applies(s):
        return fused.softmax(s, safe=True, out=s)  # the lines below, one pass per row in C
    xp = backend.xp_of(s)
    m = s.max(axis=-1, keepdims=True)
    m[~xp.isfinite(m)] = 0
    s -= m
    xp.exp(s, out=s)
    total = s.sum(axis=-1, keepdims=True)
    total[total == 0] = 1
    s /= total
    return s


def _mT(a):
    return a.swapaxes(-1, -2)


class ScaledDotProductAttention(Function):
    """q [..., L, E], k [..., S, E], v [..., S, Ev]; attn_mask None, bool (True = may attend) or float (added
    to the scores), broadcastable to [..., L, S]."""

    name = "scaled_dot_product_attention"

    @staticmethod
    def forward(ctx, q, k, v, attn_mask=None, *, dropout_p, scale, groups):
        ctx.scale, ctx.dropout_p, ctx.groups = scale, dropout_p, groups
        if dropout_p == 0 and fused.attention_applies(q, k, v, attn_mask, gqa=groups):
            out, p = fused.attention(q, k, v, attn_mask, scale)  # the lines below in C, per (batch, head)
            ctx.save_for_backward(q, k, v, p, None)
            return out
        xp = backend.xp_of(q)
        hq = q.shape[-3] if q.ndim >= 3 else 1
        qg, kg, vg, mask = q, k, v, attn_mask
        if groups:  # [..., Hq, L, E] -> [..., Hk, G, L, E]; k, v -> [..., Hk, 1, S, E]
            hk = k.shape[-3]
            qg, kg, vg = _group(q, hk), k[..., None, :, :], v[..., None, :, :]
            mask = _group(attn_mask, hk)
        s = backend.matmul(qg, _mT(kg))  # [..., L, S]
        s *= s.dtype.type(scale)
        if mask is not None:
            if mask.dtype == bool:
                s = xp.where(mask, s, s.dtype.type(-np.inf))
            else:
                s = s + mask.astype(s.dtype, copy=False)
        p = _safe_softmax(s)  # [..., L, S]
        keep = None
        if dropout_p > 0:
            keep = keep_mask(p.shape, dropout_p, p)
            pd = p * keep
            pd *= pd.dtype.type(1.0 / (1.0 - dropout_p))
        else:
            pd = p
        out = backend.matmul(pd, vg)  # [..., L, Ev]
        if groups:  # back to the query heads: [..., Hk, G, L, X] -> [..., Hq, L, X]
            out, p = (a.reshape(a.shape[:-4] + (hq,) + a.shape[-2:]) for a in (out, p))
            keep = None if keep is None else keep.reshape(p.shape)
        ctx.save_for_backward(q, k, v, p, keep)
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v, p, keep = ctx.saved_tensors
        need_q, need_k, need_v, need_mask = ctx.needs_input_grad  # a bool mask never needs one
        hq = q.shape[-3] if q.ndim >= 3 else 1
        if ctx.groups:  # as the forward: query heads [..., Hk, G, L, X], keys and values [..., Hk, 1, S, X]
            hk = k.shape[-3]
            q, g, p, keep = (_group(a, hk) for a in (q, g, p, keep))
            k, v = k[..., None, :, :], v[..., None, :, :]
        drop = 1.0 / (1.0 - ctx.dropout_p)
        pd = p if keep is None else p * keep * p.dtype.type(drop)
        dq = dk = dv = dmask = None
        if need_v:
            dv = backend.matmul(_mT(pd), g)  # [..., S, Ev]
        if need_q or need_k or need_mask:
            dp = backend.matmul(g, _mT(v))  # [..., L, S]
            if keep is not None:
                dp *= keep
                dp *= dp.dtype.type(drop)
            ds = dp
            ds -= (dp * p).sum(axis=-1, keepdims=True)
            ds *= p  # dS = P * (dP - rowsum(dP * P)); masked entries have P = 0
            if need_mask:
                dmask = ds
            if need_q:
                dq = backend.matmul(ds, k)
                dq *= dq.dtype.type(ctx.scale)
            if need_k:
                dk = backend.matmul(_mT(ds), q)
                dk *= dk.dtype.type(ctx.scale)
        if ctx.groups:  # undo the grouping: K and V were shared by the G query heads of their group
            if dq is not None:
                dq = dq.reshape(dq.shape[:-4] + (hq,) + dq.shape[-2:])
            if dmask is not None:
                dmask = dmask.reshape(dmask.shape[:-4] + (hq,) + dmask.shape[-2:])
            dk = None if dk is None else dk.sum(axis=-3)
            dv = None if dv is None else dv.sum(axis=-3)
        return dq, dk, dv, dmask


def scaled_dot_product_attention(
    query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False
):
    """torch.nn.functional.scaled_dot_product_attention (the math path).

    attn_mask: bool (True = may attend) or float (added to the scores; may require grad), broadcastable to
    [..., L, S]. is_causal: the top-left aligned lower triangle, query i sees keys 0..i (torch's convention).
    Like torch, dropout_p is applied whenever it is > 0: pass 0.0 in evaluation.
    """
    L, S = query.shape[-2], key.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    if is_causal:
        if attn_mask is not None:
            raise ValueError("scaled_dot_product_attention: pass either attn_mask or is_causal=True, not both.")
        attn_mask = query.xp.tril(query.xp.ones((L, S), dtype=bool))
    groups = False
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk or value.shape[-3] != hk:
            raise ValueError(f"enable_gqa: query heads ({hq}) must be a multiple of key/value heads ({hk}, {value.shape[-3]}).")
        groups = True
    return ScaledDotProductAttention.apply(
        query, key, value, attn_mask, dropout_p=dropout_p, scale=scale, groups=groups
    )
