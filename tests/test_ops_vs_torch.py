"""Every op, forward and backward, against PyTorch as the reference (`pytest -m parity`).

One helper runs the same function on tinypeft and torch from the same arrays, backpropagates the same random
cotangent through both, and compares the outputs and every input's gradient.
"""
import numpy as np
import pytest

import tinypeft as tp
import tinypeft.functional as F
from tinypeft.ops.dropout import keep_mask

try:  # the default suite collects this module (and deselects it) on machines without torch
    import torch
    import torch.nn.functional as TF
except ImportError:
    torch = TF = None

pytestmark = pytest.mark.parity


@pytest.fixture(autouse=True)
def _torch_is_required():
    """A parity run without the reference fails; it never passes by skipping."""
    if torch is None:
        pytest.fail("the parity tests need torch: pip install -e '.[parity]'")


rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape)


def compare(tp_fn, torch_fn, arrays, grad=None, dtype=np.float64, atol=1e-10, rtol=1e-7):
    """Run both on `arrays` (float arrays require grad unless `grad` says otherwise); compare value and grads."""
    grad = [a.dtype.kind == "f" for a in arrays] if grad is None else grad
    arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
    ours = [tp.tensor(a, requires_grad=r) for a, r in zip(arrays, grad)]
    theirs = [torch.tensor(a, requires_grad=r) for a, r in zip(arrays, grad)]
    out, ref = tp_fn(*ours), torch_fn(*theirs)
    assert out.shape == tuple(ref.shape), (out.shape, ref.shape)
    assert out.dtype == np.dtype(str(ref.dtype).replace("torch.", ""))
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=atol, rtol=rtol)
    cot = rng.standard_normal(ref.shape).astype(dtype)
    out.backward(cot)
    ref.backward(torch.tensor(cot))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if b.requires_grad:
            assert a.grad is not None, f"input {i} got no gradient"
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=atol, rtol=rtol, err_msg=f"input {i}")


# -- the core ops: a handful ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, ours, theirs, shapes",
    [
        ("add", lambda a, b: a + b, lambda a, b: a + b, [(2, 1, 3), (4, 3)]),
        ("mul", lambda a, b: a * b, lambda a, b: a * b, [(2, 3), (3,)]),
        ("div", lambda a, b: a / (b * b + 1), lambda a, b: a / (b * b + 1), [(2, 3), (2, 1)]),
        ("matmul", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
        ("matmul_vec", lambda a, b: a @ b, lambda a, b: a @ b, [(4,), (2, 4, 3)]),
        ("sum", lambda a: a.sum((0, 2), keepdim=True), lambda a: a.sum((0, 2), keepdim=True), [(2, 3, 4)]),
        ("mean", lambda a: a.mean(-1), lambda a: a.mean(-1), [(2, 3)]),
        ("amax", lambda a: tp.amax(a, 1), lambda a: torch.amax(a, 1), [(3, 5)]),
        ("exp_tanh", lambda a: a.exp().tanh(), lambda a: a.exp().tanh(), [(3, 4)]),
        ("sigmoid", tp.sigmoid, lambda a: torch.sigmoid(a), [(3, 4)]),
        ("sin_cos", lambda a: a.sin() * a.cos(), lambda a: a.sin() * a.cos(), [(3, 4)]),
        ("relu", F.relu, lambda a: TF.relu(a), [(3, 4)]),
        ("gelu", F.gelu, lambda a: TF.gelu(a), [(3, 4)]),
        ("gelu_tanh", lambda a: F.gelu(a, approximate="tanh"), lambda a: TF.gelu(a, approximate="tanh"), [(3, 4)]),
        ("silu", F.silu, lambda a: TF.silu(a), [(3, 4)]),
        ("transpose", lambda a: a.transpose(0, 2).reshape(4, -1), lambda a: a.transpose(0, 2).reshape(4, -1), [(2, 3, 4)]),
        ("getitem", lambda a: a[:, 1:, None], lambda a: a[:, 1:, None], [(2, 3)]),
        ("cat", lambda a, b: tp.cat([a, b], dim=1), lambda a, b: torch.cat([a, b], dim=1), [(2, 3), (2, 1)]),
        ("masked_fill", lambda a: a.masked_fill(np.array([True, False, True]), 0.0),
         lambda a: a.masked_fill(torch.tensor([True, False, True]), 0.0), [(2, 3)]),
    ],
)
def test_core_op(name, ours, theirs, shapes):
    compare(ours, theirs, [randn(*s) for s in shapes])


def test_embedding_and_gather():
    ids = rng.integers(0, 5, (2, 3))
    compare(lambda w: F.embedding(ids, w), lambda w: TF.embedding(torch.tensor(ids), w), [randn(5, 4)])
    idx = rng.integers(0, 4, (3, 2))
    compare(lambda x: tp.gather(x, 1, idx), lambda x: torch.gather(x, 1, torch.tensor(idx)), [randn(3, 4)])


# -- softmax, log_softmax --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_and_log_softmax(dim, dtype):
    tol = dict(atol=1e-10, rtol=1e-7) if dtype == np.float64 else dict(atol=1e-5, rtol=1e-4)
    x = randn(3, 4, 5) * 5
    compare(lambda t: F.softmax(t, dim), lambda t: TF.softmax(t, dim), [x], dtype=dtype, **tol)
    compare(lambda t: F.log_softmax(t, dim), lambda t: TF.log_softmax(t, dim), [x], dtype=dtype, **tol)
    compare(lambda t: t.softmax(dim), lambda t: t.softmax(dim), [x], dtype=dtype, **tol)


# -- layer_norm, rms_norm --------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", [(6,), (3, 6)])
@pytest.mark.parametrize("affine", ["none", "weight", "both", "bias"])
def test_layer_norm(norm, affine):
    x, w, b = randn(2, 3, 6), randn(*norm), randn(*norm)
    wb = {"none": (None, None), "weight": (w, None), "both": (w, b), "bias": (None, b)}[affine]
    arrays = [x] + [a for a in wb if a is not None]

    def run(fn):
        def call(t, *ps):
            it = iter(ps)
            return fn(t, norm, *[next(it) if a is not None else None for a in wb], eps=1e-5)
        return call

    compare(run(F.layer_norm), run(TF.layer_norm), arrays)


@pytest.mark.parametrize("eps", [None, 1e-6])
@pytest.mark.parametrize("with_weight", [True, False])
def test_rms_norm(eps, with_weight):
    x, w = randn(2, 3, 8), randn(8)
    if with_weight:
        compare(lambda t, u: F.rms_norm(t, (8,), u, eps), lambda t, u: TF.rms_norm(t, (8,), u, eps), [x, w])
    else:
        compare(lambda t: F.rms_norm(t, [3, 8], eps=eps), lambda t: TF.rms_norm(t, [3, 8], eps=eps), [x])
    compare(lambda t, u: F.rms_norm(t, (8,), u, eps), lambda t, u: TF.rms_norm(t, (8,), u, eps), [x, w],
            dtype=np.float32, atol=1e-5, rtol=1e-4)


# -- dropout: torch's RNG differs, so torch's formula is fed our mask ----------------------------------------
def test_dropout_is_torch_formula_with_our_mask():
    x = randn(4, 5)
    tp.manual_seed(3)
    keep = torch.tensor(keep_mask(x.shape, 0.3, x))

    def ours(t):
        tp.manual_seed(3)
        return F.dropout(t, 0.3)

    compare(ours, lambda t: t * keep / 0.7, [x])
    compare(lambda t: F.dropout(t, 0.3, training=False), lambda t: TF.dropout(t, 0.3, training=False), [x])


# -- cross_entropy, mse_loss ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2, 2), (4,)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy(shape, reduction, label_smoothing, weighted):
    C = shape[1] if len(shape) > 1 else shape[0]
    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    target = rng.integers(0, C, tshape)
    if len(shape) > 1:
        target.reshape(-1)[:2] = -100  # some ignored targets
    w = rng.uniform(0.5, 2.0, C) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=label_smoothing)
    compare(lambda x: F.cross_entropy(x, target, weight=None if w is None else tp.tensor(w), **kw),
            lambda x: TF.cross_entropy(x, torch.tensor(target), weight=None if w is None else torch.tensor(w), **kw),
            [randn(*shape) * 3])


def test_cross_entropy_custom_ignore_index_all_ignored_and_float32():
    x, t = randn(4, 3), np.array([1, 7, 7, 0])
    compare(lambda a: F.cross_entropy(a, t, ignore_index=7), lambda a: TF.cross_entropy(a, torch.tensor(t), ignore_index=7), [x])
    x32, t32 = randn(6, 10), rng.integers(0, 10, 6)
    compare(lambda a: F.cross_entropy(a, t32), lambda a: TF.cross_entropy(a, torch.tensor(t32)), [x32],
            dtype=np.float32, atol=1e-6, rtol=1e-5)
    ours = tp.tensor(x, requires_grad=True)
    loss = F.cross_entropy(ours, np.full(4, -100))
    ref = TF.cross_entropy(torch.tensor(x, requires_grad=True), torch.full((4,), -100))
    assert np.isnan(loss.item()) and torch.isnan(ref)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction):
    compare(lambda a, b: F.mse_loss(a, b, reduction=reduction), lambda a, b: TF.mse_loss(a, b, reduction=reduction),
            [randn(3, 4), randn(3, 4)])


# -- linear -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("x_shape", [(4,), (3, 4), (2, 3, 4)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("frozen_weight", [False, True])
def test_linear(x_shape, bias, frozen_weight):
    arrays = [randn(*x_shape), randn(5, 4)] + ([randn(5)] if bias else [])
    grad = [True, not frozen_weight] + ([True] if bias else [])
    compare(F.linear, TF.linear, arrays, grad=grad)
    compare(F.linear, TF.linear, arrays, grad=grad, dtype=np.float32, atol=1e-5, rtol=1e-5)


# -- scaled_dot_product_attention ---------------------------------------------------------------------------------
SDPA_CASES = {
    "plain": dict(q=(2, 3, 4, 8), k=(2, 3, 6, 8), v=(2, 3, 6, 5)),
    "no_heads": dict(q=(4, 8), k=(6, 8), v=(6, 5)),
    "broadcast_batch": dict(q=(2, 3, 4, 8), k=(1, 3, 6, 8), v=(1, 3, 6, 5)),
    "causal": dict(q=(2, 3, 5, 8), k=(2, 3, 5, 8), v=(2, 3, 5, 8), is_causal=True),
    "causal_L_lt_S": dict(q=(1, 2, 3, 4), k=(1, 2, 6, 4), v=(1, 2, 6, 4), is_causal=True),
    "causal_L_gt_S": dict(q=(1, 2, 6, 4), k=(1, 2, 3, 4), v=(1, 2, 3, 4), is_causal=True),
    "bool_mask": dict(q=(2, 3, 4, 8), k=(2, 3, 6, 8), v=(2, 3, 6, 5), mask=("bool", (2, 1, 4, 6))),
    "bool_mask_full_rows": dict(q=(2, 3, 4, 8), k=(2, 3, 6, 8), v=(2, 3, 6, 5), mask=("bool_dead", (4, 6))),
    "float_mask": dict(q=(2, 3, 4, 8), k=(2, 3, 6, 8), v=(2, 3, 6, 5), mask=("float", (3, 4, 6))),
    "float_mask_grad": dict(q=(2, 3, 4, 8), k=(2, 3, 6, 8), v=(2, 3, 6, 5), mask=("float_grad", (2, 1, 4, 6))),
    "inf_mask": dict(q=(2, 3, 4, 8), k=(2, 3, 6, 8), v=(2, 3, 6, 5), mask=("inf", (4, 6))),
    "scale": dict(q=(2, 3, 4, 8), k=(2, 3, 6, 8), v=(2, 3, 6, 5), scale=0.7),
    "gqa": dict(q=(2, 6, 4, 8), k=(2, 2, 6, 8), v=(2, 2, 6, 5), enable_gqa=True),
    "gqa_causal": dict(q=(2, 4, 5, 8), k=(2, 1, 5, 8), v=(2, 1, 5, 8), enable_gqa=True, is_causal=True),
    "gqa_head_mask": dict(q=(1, 4, 3, 8), k=(1, 2, 5, 8), v=(1, 2, 5, 4), enable_gqa=True, mask=("float_grad", (4, 3, 5))),
    "gqa_bool_mask": dict(q=(1, 4, 3, 8), k=(1, 2, 5, 8), v=(1, 2, 5, 4), enable_gqa=True, mask=("bool", (1, 1, 3, 5))),
}


def _mask(kind, shape):
    if kind.startswith("bool"):
        m = rng.random(shape) > 0.4
        if kind == "bool_dead":
            m[1] = False  # a query that may see no key: torch 2.x gives zeros, and so do we
        return m
    m = randn(*shape)
    if kind == "inf":
        m[rng.random(shape) > 0.6] = -np.inf
        m[2] = -np.inf
    return m


@pytest.mark.parametrize("case", sorted(SDPA_CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sdpa(case, dtype):
    c = dict(SDPA_CASES[case])
    arrays = [randn(*c.pop("q")), randn(*c.pop("k")), randn(*c.pop("v"))]
    grad = [True, True, True]
    mask = c.pop("mask", None)
    if mask is not None:
        m = _mask(*mask)
        if mask[0] == "float_grad":
            arrays.append(m)
            grad.append(True)
            mask = None
        else:
            c["attn_mask"] = m
    tol = dict(atol=1e-10, rtol=1e-7) if dtype == np.float64 else dict(atol=2e-5, rtol=1e-4)

    def run(fn, as_tensor):
        def call(q, k, v, *m):
            kw = dict(c)
            if m:
                kw["attn_mask"] = m[0]
            elif "attn_mask" in kw:
                am = kw["attn_mask"]
                kw["attn_mask"] = as_tensor(am.astype(dtype) if am.dtype.kind == "f" else am)
            return fn(q, k, v, **kw)
        return call

    compare(run(F.scaled_dot_product_attention, tp.tensor), run(TF.scaled_dot_product_attention, torch.tensor),
            arrays, grad=grad, dtype=dtype, **tol)


def test_sdpa_dropout_is_torch_math_with_our_mask():
    q, k, v, p = randn(2, 3, 4, 8), randn(2, 3, 6, 8), randn(2, 3, 6, 5), 0.25
    tp.manual_seed(5)
    keep = torch.tensor(keep_mask((2, 3, 4, 6), p, q))

    def ours(q, k, v):
        tp.manual_seed(5)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)

    def reference(q, k, v):
        s = q @ k.transpose(-1, -2) / np.sqrt(8) + torch.full((4, 6), float("-inf")).triu(1)
        return (torch.softmax(s, -1) * keep / (1 - p)) @ v

    compare(ours, reference, [q, k, v])


@pytest.mark.parametrize("kernel, dilation, padding, stride", [(2, 1, 0, 1), ((2, 3), (1, 2), (1, 0), (2, 1)), (3, 1, 1, 2)])
def test_unfold_and_fold(kernel, dilation, padding, stride):
    x = randn(2, 3, 7, 6)
    compare(lambda t: F.unfold(t, kernel, dilation, padding, stride),
            lambda t: TF.unfold(t, kernel, dilation, padding, stride), [x])
    L = TF.unfold(torch.from_numpy(x), kernel, dilation, padding, stride).shape[-1]
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    cols = randn(2, 3 * k[0] * k[1], L)
    compare(lambda t: F.fold(t, (7, 6), kernel, dilation, padding, stride),
            lambda t: TF.fold(t, (7, 6), kernel, dilation, padding, stride), [cols])


def test_cayley_is_peft_solve():
    S = randn(3, 4, 4) * 0.3
    S = S - S.swapaxes(1, 2)

    def theirs(t):
        eye = torch.eye(4, dtype=t.dtype).expand(3, 4, 4)
        return torch.linalg.solve(eye + t, eye - t, left=False)

    compare(F.cayley, theirs, [S])


def test_sparse_ifft2_real_is_peft_fourierft():
    pos = np.random.default_rng(3).permutation(6 * 7)[:9]
    rows, cols = pos // 7, pos % 7

    def theirs(c):
        dense = torch.zeros(6, 7, dtype=c.dtype)
        dense[rows, cols] = c
        return torch.fft.ifft2(dense).real

    compare(lambda c: F.sparse_ifft2_real(c, rows, cols, (6, 7)), theirs, [randn(9)])
