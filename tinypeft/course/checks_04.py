"""Checks for tutorials/04_attention.md's exercises (see checking.py for how checks behave)."""
import numpy as np

from ..testing import central_difference
from .checking import _central_difference, _close, _exercise


def _np_softmax(x):
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(x - m)
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total == 0, 1, total)


def _np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


@_exercise
def check_gelu_backward(gelu_backward):
    """gelu_backward(x, dy) -> dL/dx for GPT-2's tanh GELU, against central differences and tinypeft's gelu."""
    import tinypeft as tp

    rng = np.random.default_rng(7)
    for shape in [(7,), (3, 4)]:
        x = rng.standard_normal(shape) * 3  # far into both tails too, where GELU bends
        dy = rng.standard_normal(shape)
        got = gelu_backward(x.copy(), dy.copy())
        assert got is not None, "gelu_backward returned None; return dx"
        want = _central_difference(lambda x: float((_np_gelu_tanh(x) * dy).sum()), x)
        _close(got, want, f"GELU backward, shape {shape}, vs central differences", rtol=1e-6, atol=1e-8)
        t = tp.tensor(x, requires_grad=True)
        (tp.functional.gelu(t, approximate="tanh") * tp.tensor(dy)).sum().backward()
        _close(got, t.grad.numpy(), f"GELU backward, shape {shape}, vs tinypeft", rtol=1e-9, atol=1e-12)


def _np_attention(q, k, v, mask):
    s = np.where(mask, q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1]), -np.inf)
    return _np_softmax(s) @ v


@_exercise
def check_attention_backward(attention_backward):
    """attention_backward(q, k, v, mask, dO) -> (dq, dk, dv), against central differences and tinypeft."""
    import tinypeft as tp
    import tinypeft.functional as F

    rng = np.random.default_rng(8)
    L, S, d, dv = 4, 5, 3, 2
    masks = {
        "no mask": np.ones((L, S), dtype=bool),
        "random mask": rng.random((L, S)) > 0.4,
        "query 2 sees no key": np.tril(np.ones((L, S), dtype=bool), 1) & (np.arange(L)[:, None] != 2),
    }
    masks["random mask"][:, 0] = True
    for what, mask in masks.items():
        q, k, v = rng.standard_normal((2, L, d)), rng.standard_normal((2, S, d)), rng.standard_normal((2, S, dv))
        dO = rng.standard_normal((2, L, dv))
        with np.errstate(all="ignore"):
            got = attention_backward(q, k, v, mask, dO)
        assert got is not None and len(got) == 3, "attention_backward must return (dq, dk, dv)"
        names = ("dq", "dk", "dv")
        for name, g in zip(names, got):
            assert np.all(np.isfinite(g)), f"{what}: {name} has nan or inf (a fully masked row must give P = 0)"
        for name, a, g in zip(names, (q, k, v), got):
            want = central_difference(lambda: float((_np_attention(q, k, v, mask) * dO).sum()), a)
            _close(g, want, f"{what}: {name} vs central differences", rtol=1e-6, atol=1e-8)
        tq, tk, tv = (tp.tensor(a, requires_grad=True) for a in (q, k, v))
        (F.scaled_dot_product_attention(tq, tk, tv, attn_mask=tp.tensor(mask)) * tp.tensor(dO)).sum().backward()
        for name, t, g in zip(names, (tq, tk, tv), got):
            _close(g, t.grad.numpy(), f"{what}: {name} vs tinypeft", rtol=1e-9, atol=1e-12)


def _np_rms_norm(x, w, eps):
    return w * x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)


@_exercise
def check_rms_norm_backward(rms_norm_backward):
    """rms_norm_backward(x, w, dy, eps) -> (dx, dw), against central differences and tinypeft's rms_norm."""
    import tinypeft as tp

    rng = np.random.default_rng(9)
    for shape in [(4, 6), (2, 3, 5)]:
        n = shape[-1]
        x, w, dy = rng.standard_normal(shape), 1 + 0.3 * rng.standard_normal(n), rng.standard_normal(shape)
        got = rms_norm_backward(x.copy(), w.copy(), dy.copy(), eps=1e-6)
        assert got is not None and len(got) == 2, "rms_norm_backward must return (dx, dw)"
        for name, a, d in zip(("dx", "dw"), (x, w), got):
            want = central_difference(lambda: float((_np_rms_norm(x, w, 1e-6) * dy).sum()), a)
            _close(d, want, f"RMSNorm {name}, x of shape {shape}, vs central differences", rtol=1e-6, atol=1e-8)
        tx, tw = tp.tensor(x, requires_grad=True), tp.tensor(w, requires_grad=True)
        (tp.functional.rms_norm(tx, (n,), tw, eps=1e-6) * tp.tensor(dy)).sum().backward()
        for name, t, d in zip(("dx", "dw"), (tx, tw), got):
            _close(d, t.grad.numpy(), f"RMSNorm {name}, x of shape {shape}, vs tinypeft", rtol=1e-9, atol=1e-12)
