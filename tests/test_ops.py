"""Forward values of the composite ops against straightforward NumPy references, and their cost promises.

The references are written the slow, obvious way (loops, the textbook formula), independent of the ops.
"""
import math

import numpy as np
import pytest

import tinypeft as tp
import tinypeft.functional as F
from tinypeft import backend

rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def test_softmax_rows_sum_to_one_and_survive_huge_logits():
    x = tp.tensor(randn(3, 5) * 1000)  # exp(1000) overflows without the max shift
    p = F.softmax(x, dim=-1).numpy()
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(-1), 1.0)
    logp = F.log_softmax(x, dim=-1).numpy()
    assert np.isfinite(logp).all()  # log(softmax) would give -inf where p underflows
    np.testing.assert_allclose(np.exp(logp), p, atol=1e-12)


def test_softmax_along_any_dim_equals_the_formula():
    x = randn(2, 3, 4)
    e = np.exp(x)
    np.testing.assert_allclose(F.softmax(tp.tensor(x), dim=1).numpy(), e / e.sum(1, keepdims=True))
    np.testing.assert_allclose(tp.tensor(x).log_softmax(0).numpy(), x - np.log(e.sum(0, keepdims=True)))


def test_cross_entropy_is_minus_log_p_of_the_target():
    logits = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    target = np.array([2, 0])
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    per_row = -np.log(p[[0, 1], target])
    x = tp.tensor(logits)
    np.testing.assert_allclose(F.cross_entropy(x, target, reduction="none").numpy(), per_row)
    np.testing.assert_allclose(F.cross_entropy(x, target).item(), per_row.mean())
    np.testing.assert_allclose(F.cross_entropy(x, target, reduction="sum").item(), per_row.sum())
    np.testing.assert_allclose(per_row[1], math.log(3))  # uniform logits: log C


def test_cross_entropy_ignore_index_weight_and_label_smoothing():
    logits, target, w, ls = randn(4, 3), np.array([0, -100, 2, 2]), np.array([1.0, 2.0, 0.5]), 0.1
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    loss, total = 0.0, 0.0
    for i, t in enumerate(target):
        if t == -100:
            continue
        smooth = -(w * logp[i]).sum() / 3
        loss += (1 - ls) * -w[t] * logp[i, t] + ls * smooth
        total += w[t]
    out = F.cross_entropy(tp.tensor(logits), target, weight=tp.tensor(w), label_smoothing=ls)
    np.testing.assert_allclose(out.item(), loss / total)


def test_cross_entropy_with_every_target_ignored_is_nan_with_zero_gradient():
    x = tp.tensor(randn(2, 3), requires_grad=True)
    loss = F.cross_entropy(x, np.array([-100, -100]))
    assert np.isnan(loss.item())
    loss.backward()
    assert (x.grad.numpy() == 0).all()


def test_cross_entropy_takes_the_class_dim_second():
    x = randn(2, 4, 3)  # [N, C, d]
    t = rng.integers(0, 4, (2, 3))
    flat = F.cross_entropy(tp.tensor(x.transpose(0, 2, 1).reshape(-1, 4)), t.reshape(-1), reduction="none")
    np.testing.assert_allclose(F.cross_entropy(tp.tensor(x), t, reduction="none").numpy(), flat.numpy().reshape(2, 3))


def test_layer_norm_equals_the_formula():
    x, w, b = randn(2, 3, 8), randn(8), randn(8)
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    ref = (x - mu) / np.sqrt(var + 1e-5) * w + b
    np.testing.assert_allclose(F.layer_norm(tp.tensor(x), (8,), tp.tensor(w), tp.tensor(b)).numpy(), ref, atol=1e-12)


def test_rms_norm_equals_the_formula_and_keeps_float16():
    x, w = randn(2, 6), randn(6)
    ref = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * w
    np.testing.assert_allclose(F.rms_norm(tp.tensor(x), [6], tp.tensor(w), eps=1e-6).numpy(), ref, atol=1e-12)
    big = tp.tensor(np.full((1, 4), 300.0, dtype=np.float16))  # 300^2 overflows float16: the mean square is float32
    out = F.rms_norm(big, (4,))
    assert out.dtype == np.float16 and np.allclose(out.numpy().astype(np.float32), 1.0, atol=1e-2)


def _naive_attention(q, k, v, mask):
    """One query at a time: scores, softmax over the allowed keys, weighted sum of values."""
    out = np.zeros(q.shape[:-1] + (v.shape[-1],))
    for idx in np.ndindex(*q.shape[:-2]):
        for i in range(q.shape[-2]):
            s = np.array([q[idx][i] @ k[idx][j] / math.sqrt(q.shape[-1]) for j in range(k.shape[-2])])
            allowed = mask[i]
            if not allowed.any():
                continue  # a fully masked row gives zeros, as torch 2.x
            e = np.where(allowed, np.exp(s - s[allowed].max()), 0.0)
            out[idx][i] = (e / e.sum()) @ v[idx]
    return out


@pytest.mark.parametrize("kind", ["none", "causal", "bool"])
def test_sdpa_equals_a_naive_loop(kind):
    q, k, v = randn(2, 3, 4, 5), randn(2, 3, 6, 5), randn(2, 3, 6, 2)
    mask = np.ones((4, 6), dtype=bool)
    if kind == "causal":
        mask = np.tril(mask)  # top-left aligned: query i sees keys 0..i
    elif kind == "bool":
        mask = rng.random((4, 6)) > 0.5
        mask[1] = False
    kw = {"is_causal": True} if kind == "causal" else {"attn_mask": tp.tensor(mask)} if kind == "bool" else {}
    out = F.scaled_dot_product_attention(tp.tensor(q), tp.tensor(k), tp.tensor(v), **kw)
    np.testing.assert_allclose(out.numpy(), _naive_attention(q, k, v, mask), atol=1e-12)


def test_sdpa_gqa_equals_repeated_heads_and_additive_mask_equals_bool():
    q, k, v = randn(1, 4, 3, 2), randn(1, 2, 3, 2), randn(1, 2, 3, 2)
    rep = lambda a: tp.tensor(np.repeat(a, 2, axis=1))  # torch's repeat_interleave on the head dim
    gqa = F.scaled_dot_product_attention(tp.tensor(q), tp.tensor(k), tp.tensor(v), enable_gqa=True)
    full = F.scaled_dot_product_attention(tp.tensor(q), rep(k), rep(v))
    np.testing.assert_allclose(gqa.numpy(), full.numpy(), atol=1e-12)
    keep = np.tril(np.ones((3, 3), dtype=bool))
    additive = tp.tensor(np.where(keep, 0.0, -np.inf))
    a = F.scaled_dot_product_attention(tp.tensor(q), rep(k), rep(v), attn_mask=additive)
    np.testing.assert_allclose(a.numpy(), F.scaled_dot_product_attention(tp.tensor(q), rep(k), rep(v), is_causal=True).numpy())


def test_dropout_scales_survivors_and_is_reproducible():
    x = tp.ones(200, 100)
    tp.manual_seed(1)
    y = F.dropout(x, 0.25).numpy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    tp.manual_seed(1)
    assert (F.dropout(x, 0.25).numpy() == y).all()
    assert F.dropout(x, 0.25, training=False) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()


def test_linear_matches_torch_layout_and_mse_loss():
    x, w, b = randn(2, 3, 4), randn(5, 4), randn(5)
    np.testing.assert_allclose(F.linear(tp.tensor(x), tp.tensor(w), tp.tensor(b)).numpy(), x @ w.T + b)
    np.testing.assert_allclose(F.mse_loss(tp.tensor(x), tp.tensor(x + 2)).item(), 4.0)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: F.softmax(x, -1),
        lambda x: F.log_softmax(x, -1),
        lambda x: F.layer_norm(x, (4,)),
        lambda x: F.rms_norm(x, (4,), tp.ones(4)),
        lambda x: F.dropout(x, 0.5),
        lambda x: F.linear(x, tp.ones(3, 4), tp.ones(3)),
        lambda x: F.cross_entropy(x, np.array([1, 0, 3])),
        lambda x: F.mse_loss(x, tp.zeros(3, 4)),
        lambda x: F.scaled_dot_product_attention(x, x, x, is_causal=True),
        lambda x: F.scaled_dot_product_attention(x, x, x, attn_mask=tp.zeros(3, 3), dropout_p=0.5),
    ],
)
def test_float32_in_float32_out_for_value_and_gradient(fn):
    x = tp.tensor(randn(3, 4, dtype=np.float32), requires_grad=True)
    y = fn(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def _count_matmuls(monkeypatch):
    calls = []
    real = backend.matmul

    def counting(a, b):
        calls.append((a.shape, b.shape))
        return real(a, b)

    monkeypatch.setattr(backend, "matmul", counting)
    return calls


def test_linear_with_a_frozen_weight_does_one_matmul_in_backward(monkeypatch):
    # The base weight of a LoRA layer is frozen: its backward must not compute dW = g^T x at all.
    calls = _count_matmuls(monkeypatch)
    x = tp.tensor(randn(2, 3, 4), requires_grad=True)
    w, b = tp.tensor(randn(5, 4)), tp.tensor(randn(5))
    y = F.linear(x, w, b)
    assert len(calls) == 1
    calls.clear()
    y.sum().backward()
    assert len(calls) == 1 and x.grad is not None and w.grad is None
    assert calls[0] == ((6, 5), (5, 4))  # g [rows, out] @ W [out, in]: dx only


def test_linear_weight_gradient_is_one_gemm_over_folded_rows(monkeypatch):
    calls = _count_matmuls(monkeypatch)
    x = tp.tensor(randn(2, 3, 4))  # input needs no gradient (the first layer)
    w = tp.tensor(randn(5, 4), requires_grad=True)
    F.linear(x, w).sum().backward()
    assert calls[1:] == [((5, 6), (6, 4))]  # g^T [out, rows] @ x [rows, in]


def test_sdpa_backward_skips_work_for_frozen_inputs(monkeypatch):
    calls = _count_matmuls(monkeypatch)
    q = tp.tensor(randn(2, 3, 4), requires_grad=True)
    k, v = tp.tensor(randn(2, 5, 4)), tp.tensor(randn(2, 5, 4))
    F.scaled_dot_product_attention(q, k, v).sum().backward()
    assert len(calls) == 2 + 2  # forward QK^T, PV; backward dP = dO V^T and dQ = dS K only
