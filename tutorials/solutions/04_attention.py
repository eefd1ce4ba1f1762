"""Solutions to tutorials/04_attention.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/04_attention.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_04 import (  # noqa: E402
    check_attention_backward,
    check_gelu_backward,
    check_rms_norm_backward,
)


# ---- Exercise 1 ----
def gelu_backward(x, dy):
    # gelu = 0.5 x (1 + t), t = tanh(u), u = c (x + 0.044715 x^3), c = sqrt(2/pi); product and chain rule:
    # d gelu/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2)
    c = np.sqrt(2 / np.pi)
    t = np.tanh(c * (x + 0.044715 * x**3))
    return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t**2) * c * (1 + 3 * 0.044715 * x**2))


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
def rms_norm_backward(x, w, dy, eps=1e-6):
    # y = w * x * r, r = (mean(x^2) + eps)^(-1/2), dr/dx_j = -r^3 x_j / n; with dxh = dy * w:
    # dx_j = r dxh_j - r^3 x_j mean(dxh * x)
    r = 1 / np.sqrt((x * x).mean(-1, keepdims=True) + eps)  # [..., 1]
    dxh = dy * w
    dx = r * dxh - r**3 * x * (dxh * x).mean(-1, keepdims=True)
    return dx, (dy * x * r).sum(axis=tuple(range(x.ndim - 1)))


EXERCISES = {
    "check_gelu_backward": (gelu_backward,),
    "check_attention_backward": (attention_backward,),
    "check_rms_norm_backward": (rms_norm_backward,),
}


# ---- mistakes the checks must catch ----
def _gelu_backward_without_product_rule(x, dy):  # differentiates only the (1 + tanh) factor's value
    t = np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))
    return dy * 0.5 * (1 + t)


def _attention_backward_unscaled(q, k, v, mask, dO):  # forgets the 1/sqrt(d) in dq and dk
    dq, dk, dv = attention_backward(q, k, v, mask, dO)
    scale = 1 / np.sqrt(q.shape[-1])
    return dq / scale, dk / scale, dv


def _rms_norm_backward_constant_rms(x, w, dy, eps=1e-6):  # treats the root mean square as a constant
    r = 1 / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    return dy * w * r, (dy * x * r).sum(axis=tuple(range(x.ndim - 1)))


MISTAKES = {
    "check_gelu_backward": (_gelu_backward_without_product_rule,),
    "check_attention_backward": (_attention_backward_unscaled,),
    "check_rms_norm_backward": (_rms_norm_backward_constant_rms,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
