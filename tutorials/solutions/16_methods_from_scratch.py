"""Solutions to tutorials/16_methods_from_scratch.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/16_methods_from_scratch.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_16 import (  # noqa: E402
    check_dora_exact_grad_B,
    check_prefix_attention_backward,
    check_prefix_projection_backward,
)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def prefix_attention(q, k, v, k_prefix, v_prefix):
    """The tutorial's forward (section 3), which the check differentiates numerically."""
    T, N = q.shape[0], k_prefix.shape[0]
    keys, values = np.concatenate([k_prefix, k]), np.concatenate([v_prefix, v])
    mask = np.zeros((T, N + T))
    mask[:, N:] = (1 - np.tri(T)) * -1e10
    return softmax(q @ keys.T / np.sqrt(q.shape[1]) + mask) @ values


# ---- Exercise 1 ----
def prefix_attention_backward(q, k, v, k_prefix, v_prefix, g):
    T, N, d = q.shape[0], k_prefix.shape[0], q.shape[1]
    keys, values = np.concatenate([k_prefix, k]), np.concatenate([v_prefix, v])
    mask = np.zeros((T, N + T))
    mask[:, N:] = (1 - np.tri(T)) * -1e10
    P = softmax(q @ keys.T / np.sqrt(d) + mask)  # [T, N + T]
    dvalues = P.T @ g  # out = P values
    dP = g @ values.T
    dS = P * (dP - (dP * P).sum(-1, keepdims=True))  # softmax's backward (tutorial 04)
    dkeys = dS.T @ q / np.sqrt(d)  # S = q keys^T / sqrt(d)
    return dkeys[:N], dvalues[:N]  # the prefix is the first N rows


# ---- Exercise 2 ----
def dora_exact_grad_B(x, W, A, B, m, s, g):
    V = W + s * B @ A  # [out, in]
    norm = np.linalg.norm(V, axis=1, keepdims=True)  # [out, 1]
    vhat = V / norm
    G = g.T @ x  # dL/dW'
    dV = (m[:, None] / norm) * (G - (G * vhat).sum(1, keepdims=True) * vhat)  # the projection
    return s * dV @ A.T  # V = W + s B A


# ---- Exercise 3 ----
def prefix_projection_backward(E, W1, b1, W2, b2, G):
    u = E @ W1.T + b1  # [N, h]
    a = np.tanh(u)
    dW2, db2 = G.T @ a, G.sum(0)  # P = a W2^T + b2
    du = (G @ W2) * (1 - a * a)  # d tanh(u) / du = 1 - tanh(u)^2
    return du @ W1, du.T @ E, du.sum(0), dW2, db2


EXERCISES = {
    "check_prefix_attention_backward": (prefix_attention_backward, prefix_attention),
    "check_dora_exact_grad_B": (dora_exact_grad_B,),
    "check_prefix_projection_backward": (prefix_projection_backward,),
}


# ---- mistakes the checks must catch ----
def _prefix_scale_forgotten(q, k, v, k_prefix, v_prefix, g):  # dk without the 1/sqrt(d) of the scores
    dk, dv = prefix_attention_backward(q, k, v, k_prefix, v_prefix, g)
    return dk * np.sqrt(q.shape[1]), dv


def _dora_detached(x, W, A, B, m, s, g):  # PEFT's gradient, not the exact one the exercise asks for
    V = W + s * B @ A
    return s * ((g.T @ x) * (m / np.linalg.norm(V, axis=1))[:, None]) @ A.T


def _tanh_derivative_wrong(E, W1, b1, W2, b2, G):  # uses 1 - u^2 instead of 1 - tanh(u)^2
    u = E @ W1.T + b1
    a = np.tanh(u)
    du = (G @ W2) * (1 - u * u)
    return du @ W1, du.T @ E, du.sum(0), G.T @ a, G.sum(0)


MISTAKES = {
    "check_prefix_attention_backward": (_prefix_scale_forgotten, prefix_attention),
    "check_dora_exact_grad_B": (_dora_detached,),
    "check_prefix_projection_backward": (_tanh_derivative_wrong,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
