"""The backend's fast paths, tested directly at sizes that take them (issue 10): the threaded batched
matmul (one C call per matrix, the batch shared among threads) and the chunked parallel elementwise path;
backend_info() says what runs; TINYPEFT_MATMUL is validated."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinypeft import backend
from tinypeft.backend import cmatmul

ROOT = Path(__file__).parent.parent
needs_c = pytest.mark.skipif(not cmatmul.available(), reason="C extension not built")


@pytest.fixture
def four_threads(monkeypatch):
    """Force the threaded paths whatever this machine's core count (they split work, not results)."""
    monkeypatch.setattr(cmatmul, "get_num_threads", lambda: 4)
    submitted = []
    real_fan_out = backend.run_on_threads

    def counting(fn, jobs):
        submitted.extend(jobs[1:])  # the first job runs on the caller, the rest on the pool
        return real_fan_out(fn, jobs)

    monkeypatch.setattr(backend, "run_on_threads", counting)
    previous = backend.backend_info()["matmul"]
    if cmatmul.available():
        backend.set_matmul_backend("c")
    yield submitted
    backend.set_matmul_backend(previous)


@needs_c
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("a_shape, b_shape", [
    ((8, 64, 64), (8, 64, 32)),          # 131,072 multiply-adds a matrix: above the batched threshold
    ((2, 3, 48, 40), (2, 3, 40, 48)),    # two batch dims
    ((2, 1, 40, 64), (1, 3, 64, 40)),    # broadcast batch dims
])
def test_threaded_batched_matmul_equals_numpy(four_threads, dtype, rtol, a_shape, b_shape):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape).astype(dtype), rng.standard_normal(b_shape).astype(dtype)
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    assert m * k * n >= backend._BATCHED_C_MIN_WORK and m * k * n < backend._C_MIN_WORK_PER_THREAD * 4
    calls = []
    real = cmatmul.matmul

    def counting(x, y, out=None):
        calls.append(x.shape)
        return real(x, y, out=out)

    cmatmul_matmul = cmatmul.matmul
    cmatmul.matmul = counting
    try:
        got = backend.matmul(a, b)
    finally:
        cmatmul.matmul = cmatmul_matmul
    batch = int(np.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2])))
    assert len(calls) == batch and four_threads  # one C call per matrix, shares handed to the pool
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=rtol, atol=rtol * k)
    assert got.dtype == dtype


@needs_c
def test_small_batched_products_and_one_row_stay_in_numpy(four_threads, monkeypatch):
    monkeypatch.setattr(cmatmul, "matmul", lambda *a, **k: pytest.fail("the C kernel was called"))
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 8, 8)), rng.standard_normal((4, 8, 8))
    np.testing.assert_allclose(backend.matmul(a, b), np.matmul(a, b), rtol=1e-12)
    row, w = rng.standard_normal((1, 1, 16)), rng.standard_normal((16, 7))
    np.testing.assert_allclose(backend.matmul(row, w), row @ w, rtol=1e-12)


def test_parallel_elementwise_chunks_big_arrays_and_matches_one_call(four_threads):
    x = np.random.default_rng(2).standard_normal((300, 700))  # 210,000 elements: above the 65,536 cut
    out = np.empty_like(x)

    def fn(src, dst):
        np.tanh(src, out=dst)
        dst *= 2.0

    backend.parallel_elementwise(fn, x, out)
    np.testing.assert_array_equal(out, 2.0 * np.tanh(x))
    assert len(four_threads) == 3  # 4 chunks: 3 to the pool, 1 on the caller
    sizes = [args[0].size for args in four_threads]
    assert all(abs(s - x.size / 4) <= 1 for s in sizes)


@pytest.mark.parametrize("make", [lambda x: x[:, ::2], lambda x: x[:50]])
def test_parallel_elementwise_takes_one_call_for_strided_or_small_arrays(four_threads, make):
    x = make(np.random.default_rng(3).standard_normal((300, 700)))
    seen = []
    backend.parallel_elementwise(lambda a: seen.append(a.shape), x)
    assert seen == [x.shape] and not four_threads


def test_backend_info_says_what_each_product_runs_on():
    info = backend.backend_info()
    paths = info["matmul_paths"]
    if info["matmul"] == "c":
        assert paths[f"float32, 2 to {cmatmul.GEMV_MAX_ROWS} rows (batched decoding)"] == "c gemv"
        assert paths["one row (a decoding step)"] == "numpy einsum"
        assert any(v == "numpy matmul" and "batched, under" in k for k, v in paths.items())
    else:
        assert paths == {"every product": "numpy matmul"}


@pytest.mark.parametrize("value, expect", [("C", "c"), (" numpy ", "numpy"), ("mkl", "error"), ("", "error")])
def test_the_matmul_variable_is_validated(value, expect):
    env = dict(os.environ, TINYPEFT_MATMUL=value)
    proc = subprocess.run([sys.executable, "-c", "import tinypeft as tp; print(tp.backend_info()['matmul'])"],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    if expect == "error":
        assert proc.returncode != 0 and "TINYPEFT_MATMUL" in proc.stderr and "'c' or 'numpy'" in proc.stderr
    else:
        want = expect if cmatmul.available() else "numpy"
        assert proc.returncode == 0 and proc.stdout.strip() == want, proc.stderr
