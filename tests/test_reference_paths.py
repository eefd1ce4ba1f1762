"""Every fast path against the plain reference that sits beside it: the tanh GELU's in-place threaded chain
against its one-line formula, and each tuned C GEMM kernel against csrc/gemm_reference.c's triple loop."""
import numpy as np
import pytest

import tinypeft as tp
from tinypeft.backend import cmatmul

needs_c = pytest.mark.skipif(not cmatmul.available(), reason="the C extension is not built")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (70_000,), (2, 300, 257)])  # the last two run on threads
def test_fast_tanh_gelu_matches_the_one_line_reference(shape, dtype):
    from tinypeft.ops.elementwise import gelu_tanh_backward_reference, gelu_tanh_reference

    rng = np.random.default_rng(0)
    x_np = (rng.standard_normal(shape) * 3).astype(dtype)
    g_np = rng.standard_normal(shape).astype(dtype)
    x = tp.tensor(x_np, requires_grad=True)
    y = tp.functional.gelu(x, approximate="tanh")
    y.backward(tp.tensor(g_np))
    # float32: the two orders of rounding differ by a few ulps of |x| (up to ~10), near-zero outputs included
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y.detach().numpy(), gelu_tanh_reference(x_np), **tol)
    np.testing.assert_allclose(x.grad.numpy(), gelu_tanh_backward_reference(x_np, g_np), **tol)
    assert y.dtype == dtype and x.grad.dtype == dtype


def test_the_tanh_gelu_reference_is_the_formula_and_its_derivative():
    from tinypeft.ops.elementwise import gelu_tanh_backward_reference, gelu_tanh_reference

    x = np.linspace(-6, 6, 101)
    want = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(gelu_tanh_reference(x), want, rtol=1e-14)
    h = 1e-6  # central differences of the reference check its derivative
    numeric = (gelu_tanh_reference(x + h) - gelu_tanh_reference(x - h)) / (2 * h)
    np.testing.assert_allclose(gelu_tanh_backward_reference(x, np.ones_like(x)), numeric, rtol=1e-6, atol=1e-8)


def _kernels():
    return cmatmul.kernels() if cmatmul.available() else []


@needs_c
def test_the_reference_gemm_is_the_definition():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 7)), rng.standard_normal((7, 3))
    want = [[sum(a[i, l] * b[l, j] for l in range(7)) for j in range(3)] for i in range(5)]
    np.testing.assert_allclose(cmatmul.matmul_reference(a, b), want, rtol=1e-13, atol=1e-13)
    assert cmatmul.matmul_reference(a[:, :0], b[:0]).tolist() == np.zeros((5, 3)).tolist()


@needs_c
@pytest.mark.parametrize("kernel", _kernels())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (6, 256, 16), (7, 300, 33), (193, 257, 50), (50, 513, 2049)])
def test_every_tuned_kernel_matches_the_reference_gemm(kernel, dtype, m, k, n):
    # sizes straddle the blocking (MR = 6, KC = 256, MC = 192, NC = 2048), so edge tiles and k blocks run
    rng = np.random.default_rng(m * 1000 + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((n, k)).astype(dtype).T  # a transposed view: strided reads
    want = cmatmul.matmul_reference(a, b)
    before = cmatmul.get_kernel()
    try:
        cmatmul.set_kernel(kernel)
        got = cmatmul.matmul(a, b)
    finally:
        cmatmul.set_kernel(before)
    # different summation orders: float32 agrees to a few ulps of sqrt(k)-sized sums
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(got, want, **tol)
