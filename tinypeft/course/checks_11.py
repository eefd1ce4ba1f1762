"""Checks for tutorials/11_gpu_with_cupy.md's exercises (see checking.py for how checks behave).

They run on NumPy arrays everywhere, and on CuPy arrays too where CUDA and CuPy are usable.
"""
import importlib.util

import numpy as np

from .checking import _array, _central_difference, _close, _exercise


def _cupy_or_none():
    if importlib.util.find_spec("cupy") is None:
        return None
    try:
        import cupy

        return cupy if cupy.cuda.runtime.getDeviceCount() > 0 else None
    except Exception:
        return None


@_exercise
def check_logsumexp(logsumexp):
    """logsumexp(x, axis) against NumPy's logaddexp.reduce in float64; no overflow at 1000; CuPy in, CuPy out."""
    from tinypeft import backend

    rng = np.random.default_rng(11)
    cases = [
        (rng.standard_normal((4, 5)), -1),
        (rng.standard_normal((4, 5)), 0),
        (rng.standard_normal((2, 3, 4)) * 3, 1),
        (np.array([[1000.0, 1000.0, 999.0], [-1000.0, -1001.0, -1000.0]]), -1),  # exp overflows / underflows
    ]
    for x, axis in cases:
        want = np.logaddexp.reduce(x, axis=axis)
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            got = logsumexp(x.copy(), axis=axis)
        assert got is not None, "logsumexp returned None; return the array"
        got = _array(got, f"logsumexp(axis={axis})")
        assert np.isfinite(got).all(), f"x of shape {x.shape} up to {x.max():g}: got {got} (subtract the max before exp)"
        _close(got, want, f"logsumexp(x of shape {x.shape}, axis={axis})", rtol=1e-10, atol=1e-10)
    cupy = _cupy_or_none()
    if cupy is not None:
        x, axis = cases[0]
        got = logsumexp(cupy.asarray(x), axis=axis)
        assert backend.xp_of(got) is cupy, "a CuPy array in must give a CuPy array out (use xp = backend.xp_of(x))"
        _close(cupy.asnumpy(got), np.logaddexp.reduce(x, axis=axis), "logsumexp on the GPU", rtol=1e-10, atol=1e-10)


def _np_silu(x):
    return x / (1 + np.exp(-x))


@_exercise
def check_silu_function(SiLU):
    """SiLU.apply(x): values against x * sigmoid(x), dtype kept, no overflow warning, gradient by central differences."""
    import tinypeft as tp

    rng = np.random.default_rng(12)
    x_np = np.concatenate([rng.standard_normal(12) * 4, [-60.0, 60.0, -800.0, 800.0]])
    with np.errstate(over="ignore"):
        want = _np_silu(x_np)  # e^800 = inf gives -800 / inf = -0: the right limit
        want_grad = _central_difference(lambda t: float(_np_silu(t).sum()), x_np)
    devices = ["cpu"] + (["cuda"] if _cupy_or_none() is not None else [])
    try:
        for device in devices:
            tp.set_device(device)
            x = tp.tensor(x_np, requires_grad=True)  # float64
            with np.errstate(over="raise", invalid="raise"):
                y = SiLU.apply(x)
            assert y is not None, "forward returned None"
            _close(y.detach().numpy(), want, f"silu(x) on {device} (x from -800 to 800)", rtol=1e-12, atol=1e-12)
            y32 = SiLU.apply(tp.tensor(x_np.astype(np.float32), requires_grad=True))
            assert y32.dtype == np.float32, f"float32 in gave {y32.dtype} out on {device}: keep the input's dtype"
            small = tp.tensor(x_np[:12].reshape(3, 4), requires_grad=True)
            tp.testing.gradcheck(lambda t: SiLU.apply(t), [small])  # AssertionError if the backward is off
            with np.errstate(over="raise", invalid="raise"):
                (SiLU.apply(x) * 1.0).sum().backward()
            _close(x.grad.numpy(), want_grad, f"d silu / dx on {device}, against central differences", rtol=1e-5, atol=1e-6)
    finally:
        tp.set_device("cpu")
