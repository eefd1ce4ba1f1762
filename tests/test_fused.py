"""The fused C row kernels (csrc/rowops.c via backend/fused.py) against the NumPy reference of each op.

Each op is run twice on the same float32 data: once with the C kernels on (the fused path) and once with
TINYPEFT's NumPy path (backend.set_matmul_backend("numpy"), which turns the fused kernels off), and in
float64 (the path tests/test_gradcheck.py proves by finite differences). Forward values and input
gradients must agree to float32 accuracy, on every SIMD kernel, on 1 and 2 threads, with rows whose length
is no multiple of a vector, -inf entries (masks), all-masked rows and ignored targets."""
import numpy as np
import pytest

import tinypeft as tp
import tinypeft.functional as F
from tinypeft import backend
from tinypeft.backend import cmatmul, fused

pytestmark = pytest.mark.skipif(not cmatmul.available(), reason="C extension not built")


@pytest.fixture(params=[(k, t) for k in (cmatmul.kernels() if cmatmul.available() else []) for t in (1, 2)],
                autouse=True, ids=lambda p: f"{p[0]}-{p[1]}threads")
def kernel_and_threads(request):
    before, threads, matmul = cmatmul.get_kernel(), cmatmul.get_num_threads(), backend.backend_info()["matmul"]
    cmatmul.set_kernel(request.param[0])
    cmatmul.set_num_threads(request.param[1])
    backend.set_matmul_backend("c")
    yield
    cmatmul.set_kernel(before)
    cmatmul.set_num_threads(threads)
    backend.set_matmul_backend(matmul)


def run(fn, arrays, dtype, fused_on, cot_seed=0):
    """fn(*tensors) -> (output, grads of sum(output * c)) with the fused kernels on or off."""
    backend.set_matmul_backend("c" if fused_on else "numpy")
    try:
        ts = [tp.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
        out = fn(*ts)
        c = np.random.default_rng(cot_seed).standard_normal(out.shape).astype(dtype)
        (out * tp.tensor(c)).sum().backward()
        return np.asarray(out.data, np.float64), [np.asarray(t.grad.data, np.float64) for t in ts]
    finally:
        backend.set_matmul_backend("c")


def assert_close(fn, arrays, atol):
    got, gg = run(fn, arrays, np.float32, True)
    ref, rg = run(fn, arrays, np.float32, False)
    exact, eg = run(fn, arrays, np.float64, False)
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=atol)
    np.testing.assert_allclose(got, exact, rtol=2e-5, atol=atol)
    for a, b, e in zip(gg, rg, eg):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=atol)
        np.testing.assert_allclose(a, e, rtol=2e-4, atol=atol)


SHAPES = [(3, 1), (5, 17), (2, 3, 64), (4, 100), (70, 129), (300, 1000)]  # the last splits among threads


@pytest.mark.parametrize("shape", SHAPES)
def test_layer_norm_and_rms_norm(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 3 + 1
    w, b = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
    assert_close(lambda x, w, b: F.layer_norm(x, (shape[-1],), w, b, eps=1e-5), [x, w, b], atol=2e-5)
    assert_close(lambda x, w: F.layer_norm(x, (shape[-1],), w, None, eps=1e-5), [x, w], atol=2e-5)
    assert_close(lambda x: F.layer_norm(x, (shape[-1],), eps=1e-5), [x], atol=2e-5)
    assert_close(lambda x, w: F.rms_norm(x, (shape[-1],), w, eps=1e-6), [x, w], atol=2e-5)
    assert_close(lambda x: F.rms_norm(x, (shape[-1],), eps=1e-6), [x], atol=2e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax(shape):
    x = np.random.default_rng(1).standard_normal(shape) * 5
    assert_close(lambda x: F.softmax(x, dim=-1), [x], atol=1e-6)


def test_softmax_edge_rows_match_the_reference():
    x = np.random.default_rng(2).standard_normal((6, 37)).astype(np.float32) * 30
    x[0, :5] = -np.inf  # a masked row part
    x[1] = -np.inf  # every entry masked: nan in softmax (0 / 0), zeros in the attention's safe softmax
    x[2, 3] = np.inf  # exp overflows: the reference's inf / inf
    x[3, 7] = np.nan
    x[4] = -200.0  # every exp below the float32 range before the shift
    from tinypeft.ops.softmax import softmax_reference

    with np.errstate(invalid="ignore"):
        ref = softmax_reference(x, -1)
    np.testing.assert_allclose(fused.softmax(x), ref, rtol=2e-6, atol=1e-7)
    safe = fused.softmax(x.copy(), safe=True)
    np.testing.assert_array_equal(safe[1], np.zeros(37, np.float32))
    y = x.copy()
    assert fused.softmax(y, out=y) is y  # in place
    np.testing.assert_allclose(y, ref, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("masked", ["none", "bool", "float"])
def test_attention_softmax_with_masks(masked):
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((2, 3, 5, 8)) for _ in range(3))
    mask = None
    if masked == "bool":
        mask = np.tril(np.ones((5, 5), bool))
        mask[2] = False  # a row that attends to nothing: zeros, as torch
    elif masked == "float":
        mask = np.where(np.tril(np.ones((5, 5), bool)), 0.0, -np.inf).astype(np.float32)
    fn = (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert_close(fn, [q, k, v], atol=2e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_over_a_large_vocabulary(reduction, weighted):
    rng = np.random.default_rng(4)
    N, C = 9, 50257
    x = rng.standard_normal((N, C)) * 4
    target = rng.integers(0, C, N)
    target[[1, 5]] = -100  # ignored
    weight = rng.uniform(0.5, 2.0, C) if weighted else None

    def fn(x):
        w = None if weight is None else tp.tensor(weight.astype(x.dtype))
        return F.cross_entropy(x, tp.tensor(target), weight=w, reduction=reduction)

    assert_close(fn, [x], atol=2e-6)


def test_cross_entropy_all_ignored_and_odd_widths():
    rng = np.random.default_rng(5)
    for C in (1, 3, 17, 100):
        x = rng.standard_normal((4, C))
        target = rng.integers(0, C, 4)
        assert_close(lambda x: F.cross_entropy(x, tp.tensor(target)), [x], atol=2e-6)
    target = np.full(4, -100)
    got, (g,) = run(lambda x: F.cross_entropy(x, tp.tensor(target)), [rng.standard_normal((4, 7))], np.float32, True)
    assert np.isnan(got) and np.all(g == 0)  # as torch: nan loss, no gradient


def test_cross_entropy_keeps_no_probabilities():
    # the fused forward saves the logits it was given and a row vector, never an [N, C] array of its own
    x = tp.tensor(np.random.default_rng(6).standard_normal((8, 1000)).astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(x, tp.tensor(np.arange(8)))
    saved = [a for a in loss.grad_fn.saved_tensors if isinstance(a, np.ndarray) and a.size >= x.data.size]
    assert len(saved) == 1 and saved[0] is x.data


@pytest.mark.parametrize("shape", [(), (7,), (3, 17), (4, 300, 129)])  # the last is shared among threads
def test_silu(shape):
    x = np.random.default_rng(7).standard_normal(shape) * 6
    if x.ndim:
        x.flat[0] = 95.0  # exp(-|x|) far below 1, on both sides
        x.flat[-1] = -95.0
    assert_close(F.silu, [x], atol=1e-6)


@pytest.mark.parametrize("shape", [(), (7,), (3, 17), (4, 300, 129)])  # the last is shared among threads
def test_exact_gelu(shape):
    x = np.random.default_rng(8).standard_normal(shape) * 4
    if x.ndim:
        x.flat[0] = 30.0  # erf is 1 in float: y = x
        x.flat[-1] = -30.0  # the cdf underflows to 0: y = -0
    assert_close(F.gelu, [x], atol=1e-6)


def test_exact_gelu_erf_polynomial_against_the_c_library():
    # the normal cdf from the vector erf polynomial against the reference's, built on libm's erf, and
    # against float64: within 2 float32 ulps of 1, over a dense grid through both pieces of the polynomial
    import math

    x = np.concatenate([np.linspace(-9, 9, 1_000_001), [0.0, -0.0, 1e-30, -1e-30]]).astype(np.float32)
    y, cdf = fused.gelu(x)
    u = x * np.float32(1 / math.sqrt(2))
    ref = (1 + cmatmul.erf(u)) * np.float32(0.5)
    exact = 0.5 * (1 + np.vectorize(math.erf)(u[::37].astype(np.float64)))
    assert np.abs(cdf - ref).max() <= 2 * 2.0**-24
    assert np.abs(cdf[::37] - exact).max() <= 2 * 2.0**-24
    np.testing.assert_array_equal(y, x * cdf)
    special = np.array([np.nan, np.inf, -np.inf, 4.0, -4.0, 100.0], np.float32)
    y, cdf = fused.gelu(special)
    np.testing.assert_array_equal(cdf[[0, 1, 2, 5]], [np.nan, 1, 0, 1])
    assert abs(cdf[3] - (1 + math.erf(4 / math.sqrt(2))) / 2) <= 2.0**-24
    assert 0 < cdf[4] < 1e-4 and y[5] == 100.0 and np.isnan(y[0])


ATTENTION_CASES = {  # name: (B, H, Hk, L, S, E, Ev, mask)
    "heads-as-views": (2, 4, 4, 7, 19, 8, 8, "bool-key-padding"),
    "gqa": (2, 4, 2, 5, 33, 16, 16, "causal"),
    "one-kv-head": (1, 3, 1, 6, 6, 4, 4, None),
    "float-bias-with-grad": (2, 3, 3, 4, 9, 8, 5, "float-grad"),
    "long-rows": (1, 2, 2, 40, 130, 64, 64, "bool-key-padding"),
}


@pytest.mark.parametrize("case", list(ATTENTION_CASES))
def test_fused_attention_against_the_unfused_path(case, monkeypatch):
    # q, k, v as the models make them (views of [B, T, H * hd] projections), masks of every kind, one
    # query row with every key masked (zeros, as torch): forward and gradients against the NumPy path
    B, H, Hk, L, S, E, Ev, kind = ATTENTION_CASES[case]
    rng = np.random.default_rng(9)
    mask, arrays = None, [rng.standard_normal((B, L, H * E)), rng.standard_normal((B, S, Hk * E)),
                          rng.standard_normal((B, S, Hk * Ev))]
    if kind == "bool-key-padding":
        mask = np.ones((B, 1, L, S), bool)
        mask[0, :, :, S - 3:] = False
        mask[-1, :, 1] = False  # a query row that attends to nothing
    elif kind == "causal":
        mask = np.tril(np.ones((L, S), bool), k=S - L)
    elif kind == "float-grad":
        arrays.append(rng.standard_normal((1, H, L, S)))
    calls = []
    real = fused.attention
    monkeypatch.setattr(fused, "attention", lambda *a: calls.append(1) or real(*a))

    def fn(q, k, v, bias=None):
        heads = lambda x, h, d: x.view(B, x.shape[1], h, d).transpose(1, 2)  # noqa: E731
        m = bias if bias is not None else (None if mask is None else tp.tensor(mask))
        return F.scaled_dot_product_attention(heads(q, H, E), heads(k, Hk, E), heads(v, Hk, Ev), attn_mask=m,
                                              enable_gqa=Hk not in (1, H))

    assert_close(fn, arrays, atol=2e-5)
    assert calls  # the fused kernel took the float32 runs with the C kernels on


def test_inference_variants_in_place_without_saved_arrays():
    # what models/fast_encoder.py calls: the output written over the input, no cdf / xhat kept; over
    # enough rows for several chunks and threads, against the variants that keep them
    rng = np.random.default_rng(10)
    x = (rng.standard_normal((300, 1000)) * 3).astype(np.float32)
    w, b = rng.standard_normal(1000).astype(np.float32), rng.standard_normal(1000).astype(np.float32)
    y_keep, cdf = fused.gelu(x)
    z = x.copy()
    y, none = fused.gelu(z, out=z, keep_cdf=False)
    assert y is z and none is None and cdf.shape == x.shape
    np.testing.assert_array_equal(y, y_keep)
    n_keep, xhat, rstd = fused.layer_norm(x, w, b, 1e-12)
    z = x.copy()
    n, none, rstd2 = fused.layer_norm(z, w, b, 1e-12, out=z, keep_xhat=False)
    assert n is z and none is None and xhat.shape == x.shape
    np.testing.assert_array_equal(n, n_keep)
    np.testing.assert_array_equal(rstd2, rstd)
