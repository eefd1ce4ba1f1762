"""The few-row float32 product (csrc/gemv.c) against the plain triple loop (csrc/gemm_reference.c) and
NumPy: both weight layouts, every SIMD kernel, 1 and 2 threads, vector tails, views; and the thread pool
it runs on (csrc/parallel.c): concurrent callers and a forked child get the same results."""
import math
import multiprocessing
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinypeft import backend
from tinypeft.backend import cmatmul

pytestmark = pytest.mark.skipif(not cmatmul.available(), reason="C extension not built")


@pytest.fixture(params=cmatmul.kernels() if cmatmul.available() else [], autouse=True)
def kernel(request):
    before, threads = cmatmul.get_kernel(), cmatmul.get_num_threads()
    cmatmul.set_kernel(request.param)
    yield request.param
    cmatmul.set_kernel(before)
    cmatmul.set_num_threads(threads)


def weights(rng, k, n, layout):
    """b [k, n] as a model holds it: 'linear' is W.T of W [n, k] (row stride 1), 'conv1d' is [k, n]."""
    if layout == "linear":
        return rng.standard_normal((n, k)).astype(np.float32).T
    if layout == "conv1d":
        return rng.standard_normal((k, n)).astype(np.float32)
    if layout == "linear_sliced":  # rows of W further apart than k: a slice of a wider weight
        return rng.standard_normal((n, k + 5)).astype(np.float32)[:, 2:k + 2].T
    return rng.standard_normal((k, n + 7)).astype(np.float32)[:, 3:n + 3]  # conv1d_sliced


def check(a, b):
    assert cmatmul.gemv_applies(a, b)
    c = cmatmul.gemv(a, b)
    ref = cmatmul.matmul_reference(a, b)
    assert c.shape == ref.shape and c.dtype == np.float32
    # a length-k dot product in float32: error ~ sqrt(k) eps |a| |b| (the kernels sum in another order)
    scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)) + 1e-30
    tol = 1e-6 * math.sqrt(a.shape[1]) + 1e-6
    assert np.max(np.abs(c - ref) / scale, initial=0) <= tol
    assert np.max(np.abs(c - a.astype(np.float64) @ b.astype(np.float64)) / scale, initial=0) <= tol
    return c


LAYOUTS = ["linear", "conv1d", "linear_sliced", "conv1d_sliced"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(m=st.integers(1, cmatmul.GEMV_MAX_ROWS), k=st.integers(1, 70), n=st.integers(1, 600),
       layout=st.sampled_from(LAYOUTS), seed=st.integers(0, 2**31 - 1))
def test_gemv_matches_the_reference_on_odd_shapes(m, k, n, layout, seed):
    rng = np.random.default_rng(seed)
    check(rng.standard_normal((m, k)).astype(np.float32), weights(rng, k, n, layout))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_gemv_threads_split_the_columns_and_agree(m, layout):
    # big enough for several chunks on each of 2 threads; k not a multiple of any vector width
    rng = np.random.default_rng(m)
    a, b = rng.standard_normal((m, 577)).astype(np.float32), weights(rng, 577, 1000, layout)
    cmatmul.set_num_threads(1)
    one = check(a, b)
    cmatmul.set_num_threads(2)
    two = check(a, b)
    cmatmul.set_num_threads(5)  # more threads than this machine's cores: still one answer
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, cmatmul.gemv(a, b))


def test_gemv_out_zero_k_and_fallbacks():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 30)).astype(np.float32), weights(rng, 30, 20, "linear")
    out = np.full((2, 20), np.nan, np.float32)
    assert cmatmul.gemv(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(cmatmul.gemv(np.ones((3, 0), np.float32), np.ones((0, 5), np.float32)),
                                  np.zeros((3, 5), np.float32))
    # where it does not apply (5 rows, float64, b with neither stride 1) the GEMM answers
    b_strided = rng.standard_normal((60, 40)).astype(np.float32)[::2, ::2]
    for x, w in [(rng.standard_normal((5, 30)).astype(np.float32), b),
                 (a.astype(np.float64), b.astype(np.float64)), (a, b_strided)]:
        assert not cmatmul.gemv_applies(x, w)
        np.testing.assert_allclose(cmatmul.gemv(x, w), x @ w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows", [2, 4])
def test_backend_matmul_takes_gemv_for_few_float32_rows(monkeypatch, rows):
    calls = []
    real = cmatmul.gemv
    monkeypatch.setattr(cmatmul, "gemv", lambda a, b: calls.append(a.shape) or real(a, b))
    previous = backend.backend_info()["matmul"]
    backend.set_matmul_backend("c")
    try:
        rng = np.random.default_rng(1)
        x, w = rng.standard_normal((rows, 1, 64)).astype(np.float32), rng.standard_normal((48, 64)).astype(np.float32)
        y = backend.matmul(x, w.T)  # [rows, 1, 64] @ [64, 48]: leading dims folded into rows
        assert y.shape == (rows, 1, 48) and calls == [(rows, 64)]
        np.testing.assert_allclose(y, x @ w.T, rtol=1e-5, atol=1e-5)
        backend.matmul(rng.standard_normal((5, 64)).astype(np.float32), w.T)  # 5 rows: the GEMM
        backend.matmul(rng.standard_normal((1, 64)).astype(np.float32), w.T)  # 1 row: einsum
        assert len(calls) == 1
    finally:
        backend.set_matmul_backend(previous)


def test_concurrent_callers_share_the_pool_safely():
    # run_on_threads calls the C kernels from several Python threads at once: one gets the pool, the
    # others run their chunks on their own thread; every answer is the same
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((1, 700)).astype(np.float32), weights(rng, 700, 3000, "linear")
    cmatmul.set_num_threads(2)
    want = cmatmul.gemv(a, b)
    got, errors = [], []

    def work():
        try:
            for _ in range(20):
                got.append(cmatmul.gemv(a, b))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == 80
    for g in got:
        np.testing.assert_array_equal(g, want)


def _child(conn):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 700)).astype(np.float32)
    b = rng.standard_normal((3000, 700)).astype(np.float32).T
    conn.send(cmatmul.gemv(a, b))


def test_a_forked_child_starts_its_own_pool():
    # the parent's pool threads do not exist in a fork()ed child: it must start its own, not wait on them
    cmatmul.set_num_threads(2)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 700)).astype(np.float32)
    b = rng.standard_normal((3000, 700)).astype(np.float32).T
    want = cmatmul.gemv(a, b)  # the parent's pool is up
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_child, args=(child,))
    p.start()
    assert parent.poll(60), "the forked child did not answer"
    np.testing.assert_array_equal(parent.recv(), want)
    p.join(10)
