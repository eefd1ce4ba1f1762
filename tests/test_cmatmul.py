"""The C matmul against np.matmul: odd shapes, both dtypes, strided views, every SIMD kernel."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinypeft.backend import cmatmul

pytestmark = pytest.mark.skipif(
    not cmatmul.available(), reason=f"C extension not built: {cmatmul.build_info().get('error')}"
)

DTYPES = [np.float32, np.float64]


@pytest.fixture(params=cmatmul.kernels() if cmatmul.available() else [], autouse=True)
def kernel(request):
    """Run every test on each kernel this CPU supports (generic, avx2, avx512), then restore."""
    before, threads = cmatmul.get_kernel(), cmatmul.get_num_threads()
    cmatmul.set_kernel(request.param)
    yield request.param
    cmatmul.set_kernel(before)
    cmatmul.set_num_threads(threads)


def assert_matches_numpy(a, b, c=None):
    """c (default: our a @ b) against a float64 np.matmul.

    Error of a length-k dot product grows like sqrt(k) * eps * sum|a_i b_i|, so the tolerance is
    relative to |a| @ |b|: float64 to ~1e-12, float32 to ~1e-5 scaled by sqrt(k).
    """
    if c is None:
        c = cmatmul.matmul(a, b)
    assert c.dtype == a.dtype and c.shape == (a.shape[0], b.shape[1])
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    expected = np.matmul(a64, b64)
    scale = np.matmul(np.abs(a64), np.abs(b64)) + np.finfo(np.float64).tiny
    k = max(a.shape[1], 1)
    rtol = 1e-12 if a.dtype == np.float64 else 1e-5 * math.sqrt(k) / 4
    err = np.max(np.abs(c - expected) / scale, initial=0.0)
    assert err <= rtol, f"{a.shape} @ {b.shape} {a.dtype}: relative error {err:.3g} > {rtol:.3g}"
    # and the same result NumPy itself gives, to its own accuracy
    np.testing.assert_allclose(c, np.matmul(a, b), rtol=0, atol=4 * rtol * float(scale.max(initial=0.0)))


def random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# The kernel fixture is set once per test on purpose; every example runs on that kernel.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    m=st.integers(1, 80),
    k=st.integers(1, 80),
    n=st.integers(1, 80),
    dtype=st.sampled_from(DTYPES),
    layout=st.sampled_from(["plain", "a.T", "b.T", "both.T", "sliced"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_matches_numpy_on_odd_shapes(m, k, n, dtype, layout, seed):
    rng = np.random.default_rng(seed)
    if layout == "sliced":  # every other column of a wider array: column stride 2
        a = random(rng, (m, 2 * k), dtype)[:, ::2]
        b = random(rng, (k, 2 * n), dtype)[:, ::2]
    else:
        # a.T / b.T: the operand is the transpose view of a C-contiguous array (row stride 1)
        a = random(rng, (k, m), dtype).T if layout in ("a.T", "both.T") else random(rng, (m, k), dtype)
        b = random(rng, (n, k), dtype).T if layout in ("b.T", "both.T") else random(rng, (k, n), dtype)
    assert_matches_numpy(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "m,k,n",
    [(1, 1, 1), (1, 7, 1), (7, 1, 7), (7, 7, 7), (33, 33, 33), (1, 513, 1), (513, 1, 513),
     (33, 513, 7), (513, 257, 129), (129, 600, 300)],
)
def test_explicit_shapes(m, k, n, dtype):
    rng = np.random.default_rng(m * 10007 + k * 101 + n)
    a, b = random(rng, (m, k), dtype), random(rng, (k, n), dtype)
    assert_matches_numpy(a, b)
    assert_matches_numpy(np.asfortranarray(a), np.asfortranarray(b))


@pytest.mark.parametrize("dtype", DTYPES)
def test_views_are_read_in_place(dtype):
    rng = np.random.default_rng(0)
    w = random(rng, (300, 200), dtype)
    x = random(rng, (50, 300), dtype)
    assert_matches_numpy(x, w[:, 3:150:3])  # column stride 3, offset start
    assert_matches_numpy(w.T[::2], x.T[:, 1:])  # transposed and sliced at once
    assert_matches_numpy(x[::-1], w)  # negative stride: copied, still right
    assert_matches_numpy(x, np.broadcast_to(w[:1], (300, 200)))  # row stride 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_give_identical_results(dtype):
    rng = np.random.default_rng(1)
    for m, k, n in [(513, 257, 129), (64, 700, 600), (700, 300, 40)]:  # split columns, columns, rows
        a, b = random(rng, (m, k), dtype), random(rng, (k, n), dtype)
        cmatmul.set_num_threads(1)
        one = cmatmul.matmul(a, b)
        cmatmul.set_num_threads(2)
        two = cmatmul.matmul(a, b)
        np.testing.assert_array_equal(one, two)  # same sums in the same order
        assert_matches_numpy(a, b, two)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_argument(dtype):
    rng = np.random.default_rng(2)
    a, b = random(rng, (40, 30), dtype), random(rng, (30, 20), dtype)
    out = np.full((40, 20), np.nan, dtype=dtype)
    assert cmatmul.matmul(a, b, out=out) is out
    assert_matches_numpy(a, b, out)
    wide = np.zeros((40, 45), dtype=dtype)  # out as a strided view: computed aside, then copied in
    cmatmul.matmul(a, b, out=wide[:, ::2][:, :20])
    assert_matches_numpy(a, b, wide[:, ::2][:, :20])
    assert np.all(wide[:, 1::2] == 0)
    square = random(rng, (30, 30), dtype)
    before = square.copy()
    cmatmul.matmul(square, square, out=square)  # out aliases the inputs
    assert_matches_numpy(before, before, square)


def test_empty_and_zero_k():
    for dtype in DTYPES:
        assert cmatmul.matmul(np.ones((0, 3), dtype), np.ones((3, 4), dtype)).shape == (0, 4)
        c = cmatmul.matmul(np.ones((5, 0), dtype), np.ones((0, 4), dtype))
        np.testing.assert_array_equal(c, np.zeros((5, 4), dtype))


def test_errors_name_the_problem():
    a32, a64 = np.ones((2, 3), np.float32), np.ones((3, 2), np.float64)
    with pytest.raises(TypeError, match="float32 @ float64"):
        cmatmul.matmul(a32, a64)
    with pytest.raises(TypeError, match="int64"):
        cmatmul.matmul(np.ones((2, 3), np.int64), np.ones((3, 2), np.int64))
    with pytest.raises(ValueError, match=r"\(2, 3\) @ \(2, 3\)"):
        cmatmul.matmul(a32, a32)
    with pytest.raises(ValueError, match="2-D"):
        cmatmul.matmul(np.ones(3, np.float32), a32)
    with pytest.raises(ValueError):
        cmatmul.set_num_threads(0)


def test_unaligned_strides_are_copied():
    # a float64 view into a byte buffer at an odd offset: strides not multiples of the itemsize
    raw = np.zeros(8 * 12 + 1, np.uint8)[1:].view(np.float64).reshape(3, 4)
    raw[...] = np.arange(12).reshape(3, 4)
    assert_matches_numpy(raw, raw.T)
    # float64 elements 12 bytes apart: non-overlapping, but the stride is 1.5 elements
    buf = np.zeros(3 * 48, np.uint8)
    odd = np.lib.stride_tricks.as_strided(buf.view(np.float64), (3, 4), (48, 12))
    odd[...] = np.arange(12).reshape(3, 4)
    assert_matches_numpy(odd, odd.T)


def test_num_threads_setting():
    cmatmul.set_num_threads(3)
    assert cmatmul.get_num_threads() == 3
    assert cmatmul.build_info()["threads"] == 3


def test_build_info(kernel):
    info = cmatmul.build_info()
    assert info["available"] and info["kernel"] == kernel
    assert "-ffast-math" not in info["cflags"]
    assert info["blocking_float32"]["MR"] > 0 and info["vector_bits"] in (0, 128, 256, 512)


@pytest.mark.parametrize("dtype", DTYPES)
def test_erf_matches_math_erf(dtype):
    x = np.concatenate([np.linspace(-6, 6, 1001), [0.0, -0.0, 1e-30, 30.0, -30.0]]).astype(dtype)
    y = cmatmul.erf(x)
    assert y.dtype == dtype and y.shape == x.shape
    expected = np.array([math.erf(float(v)) for v in x])
    tol = 1e-15 if dtype == np.float64 else 2e-7
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
    assert np.isnan(cmatmul.erf(np.array([np.nan], dtype))[0])
    assert cmatmul.erf(x.reshape(-1, 2)[:, 0]).shape == (503,)  # strided input, contiguous output
