"""The CuPy path: the same ops on the GPU give the same numbers and gradients as on NumPy.

The default suite only checks the clear error without CUDA; `pytest -m gpu` runs the rest on a machine
with CUDA and cupy.
"""
import importlib.util

import numpy as np
import pytest

import tinypeft as tp
from tinypeft import backend


def _cuda_usable():
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def test_cuda_without_cupy_or_a_gpu_is_a_clear_error():
    if _cuda_usable():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="cupy|CuPy|CUDA"):
        tp.set_device("cuda")
    assert tp.get_device() == "cpu"


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="cpu' or 'cuda"):
        tp.set_device("tpu")


@pytest.fixture
def cuda():
    if not _cuda_usable():
        pytest.skip("needs CUDA and cupy")
    tp.set_device("cuda")
    yield
    tp.set_device("cpu")


@pytest.mark.gpu
def test_tensors_live_on_the_gpu(cuda):
    import cupy

    x = tp.randn(4, 5)
    assert isinstance(x.data, cupy.ndarray) and x.device == "cuda" and x.xp is cupy
    assert isinstance(x.numpy(), np.ndarray)


@pytest.mark.gpu
def test_forward_and_backward_match_numpy(cuda):
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal((3, 4, 5)), rng.standard_normal((5, 6))

    def run():
        a = tp.tensor(a_np, requires_grad=True)
        b = tp.tensor(b_np, requires_grad=True)
        y = tp.gelu(a @ b).tanh()
        loss = (y.exp() * y.sigmoid()).mean() + tp.amax(y, 1).sum()
        loss.backward()
        return loss.item(), a.grad.numpy(), b.grad.numpy()

    gpu = run()
    tp.set_device("cpu")
    cpu = run()
    for g, c in zip(gpu, cpu):
        np.testing.assert_allclose(g, c, rtol=1e-9, atol=1e-12)


@pytest.mark.gpu
def test_gradcheck_on_the_gpu(cuda):
    x = tp.tensor(np.random.default_rng(1).standard_normal((3, 4)), requires_grad=True)
    assert backend.xp_of(x.data).__name__ == "cupy"
    assert tp.testing.gradcheck(lambda t: (t * t).softmax(-1) if hasattr(t, "softmax") else t * t, [x])
