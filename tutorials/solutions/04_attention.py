"""Solutions to tutorials/04_attention.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/04_attention.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_04 import (  # noqa: E402
    check_attention_backward,
    check_layer_norm_backward,
    check_softmax_backward,
)


# ---- Exercise 1 ----
def softmax_backward(y, g):
    # dx_j = y_j (g_j - sum_i g_i y_i)
    return y * (g - (g * y).sum(axis=-1, keepdims=True))


# ---- Exercise 2 ----
def _safe_softmax(s):
    """Row softmax where a row of all -inf (a query that sees no key) gives zeros, not nan."""
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(s - m)
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total == 0, 1, total)


def attention_backward(q, k, v, mask, dO):
    scale = 1 / np.sqrt(q.shape[-1])
    P = _safe_softmax(np.where(mask, q @ k.swapaxes(-1, -2) * scale, -np.inf))  # [..., L, S]
    dv = P.swapaxes(-1, -2) @ dO  # [..., S, dv]
    dP = dO @ v.swapaxes(-1, -2)  # [..., L, S]
    dS = P * (dP - (dP * P).sum(-1, keepdims=True))  # masked: P = 0, so dS = 0
    return dS @ k * scale, dS.swapaxes(-1, -2) @ q * scale, dv


# ---- Exercise 3 ----
def layer_norm_backward(x, g, b, dy, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    r = 1 / np.sqrt(x.var(-1, keepdims=True) + eps)  # [..., 1]
    xhat = (x - mean) * r
    dxhat = dy * g
    dx = r * (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    lead = tuple(range(x.ndim - 1))  # g and b were broadcast over the leading dims: sum them out
    return dx, (dy * xhat).sum(axis=lead), dy.sum(axis=lead)


EXERCISES = {
    "check_softmax_backward": (softmax_backward,),
    "check_attention_backward": (attention_backward,),
    "check_layer_norm_backward": (layer_norm_backward,),
}


# ---- mistakes the checks must catch ----
def _softmax_backward_diagonal_only(y, g):  # keeps only dy_i/dx_i = y_i (1 - y_i)
    return g * y * (1 - y)


def _attention_backward_unscaled(q, k, v, mask, dO):  # forgets the 1/sqrt(d) in dq and dk
    dq, dk, dv = attention_backward(q, k, v, mask, dO)
    scale = 1 / np.sqrt(q.shape[-1])
    return dq / scale, dk / scale, dv


def _layer_norm_backward_constant_stats(x, g, b, dy, eps=1e-5):  # treats mean and var as constants
    r = 1 / np.sqrt(x.var(-1, keepdims=True) + eps)
    xhat = (x - x.mean(-1, keepdims=True)) * r
    lead = tuple(range(x.ndim - 1))
    return dy * g * r, (dy * xhat).sum(axis=lead), dy.sum(axis=lead)


MISTAKES = {
    "check_softmax_backward": (_softmax_backward_diagonal_only,),
    "check_attention_backward": (_attention_backward_unscaled,),
    "check_layer_norm_backward": (_layer_norm_backward_constant_stats,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
