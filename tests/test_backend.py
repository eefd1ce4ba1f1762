"""The backend switch: which matmul runs, and what backend_info() reports."""
import numpy as np
import pytest

import tinypeft as tp
from tinypeft import backend
from tinypeft.backend import cmatmul


def test_backend_info_names_the_active_matmul_and_the_build():
    info = tp.backend_info()
    assert info["device"] == "cpu"
    assert info["matmul"] in ("c", "numpy")
    assert isinstance(info["c_extension"], dict)
    if not cmatmul.available():
        assert info["matmul"] == "numpy" and info["c_extension"]["error"]


@pytest.mark.skipif(not cmatmul.available(), reason="C extension not built")
def test_tensor_matmul_uses_the_c_kernel_when_active(monkeypatch):
    calls = []
    real = cmatmul.matmul
    monkeypatch.setattr(cmatmul, "matmul", lambda a, b, out=None: calls.append(a.shape) or real(a, b, out=out))
    tp.set_matmul_backend("c")
    x = tp.randn(4, 8, 16, requires_grad=True)
    w = tp.randn(16, 5, requires_grad=True)
    (x @ w).sum().backward()
    assert calls, "Tensor.matmul did not reach the C kernel"
    assert (32, 16) in calls  # forward: the batch folded into one [32, 16] @ [16, 5] GEMM
    np.testing.assert_allclose((x @ w).detach().numpy(), x.detach().numpy() @ w.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_numpy_backend_can_be_chosen_and_gives_the_same_numbers():
    a, b = np.random.default_rng(0).standard_normal((2, 37, 19)), np.random.default_rng(1).standard_normal((19, 23))
    before = tp.backend_info()["matmul"]
    try:
        tp.set_matmul_backend("numpy")
        ref = backend.matmul(a, b)
        if cmatmul.available():
            tp.set_matmul_backend("c")
            np.testing.assert_allclose(backend.matmul(a, b), ref, rtol=1e-12)
    finally:
        tp.set_matmul_backend(before)
    with pytest.raises(ValueError, match="'c' or 'numpy'"):
        tp.set_matmul_backend("mkl")


def test_without_the_extension_tinypeft_runs_on_numpy_with_one_clear_warning():
    # a fresh interpreter where the compiled module cannot be imported (as after an install without gcc)
    import subprocess
    import sys

    code = (
        "import sys, warnings; sys.modules['tinypeft.backend._cmatmul'] = None\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import tinypeft as tp\n"
        "msgs = [str(x.message) for x in w if 'C matmul' in str(x.message)]\n"
        "assert len(msgs) == 1 and 'NumPy alone' in msgs[0], msgs\n"
        "assert tp.backend_info()['matmul'] == 'numpy'\n"
        "x = tp.randn(3, 4, requires_grad=True); (x @ x.T).sum().backward(); assert x.grad.shape == (3, 4)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
