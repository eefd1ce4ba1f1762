"""Where the numbers live: one array-module switch (NumPy or CuPy) and the matmul dispatch.

Every op asks `xp_of(array)` for its array module instead of importing numpy directly, so one code
path serves the CPU and the GPU. CuPy is imported only when `set_device("cuda")` asks for it.
"""
import os
import warnings

import numpy as np

from . import cmatmul

_device = "cpu"
_cupy = None
# "c" uses the blocked C kernel when it was built; "numpy" uses NumPy's BLAS. Env var overrides.
_matmul_backend = os.environ.get("TINYPEFT_MATMUL", "c" if cmatmul.available() else "numpy")

if not cmatmul.available():
    # The one warning of an install without a compiler: pip hides build output, so say it here, once.
    warnings.warn(
        "tinypeft: the C matmul extension is not built, so tinypeft runs on NumPy alone "
        f"({cmatmul.build_info().get('error', 'unknown reason')}). Reinstall with a C compiler "
        "(e.g. `apt-get install gcc` then `pip install -e .`) to get it.",
        RuntimeWarning,
        stacklevel=2,
    )
    _matmul_backend = "numpy"


def _import_cupy():
    global _cupy
    if _cupy is None:
        try:
            import cupy
        except ImportError as e:
            raise RuntimeError(
                "set_device('cuda') needs CuPy: install the build matching your CUDA, "
                "e.g. `pip install cupy-cuda12x`."
            ) from e
        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # cupy raises CUDARuntimeError without a driver
            raise RuntimeError(f"set_device('cuda'): CuPy is installed but no CUDA device is usable ({e}).") from e
        if n == 0:
            raise RuntimeError("set_device('cuda'): CuPy found no CUDA device on this machine.")
        _cupy = cupy
    return _cupy


def set_device(device):
    """Choose where new tensors live: "cpu" (NumPy) or "cuda" (CuPy)."""
    global _device
    device = str(device)
    if device.startswith("cuda"):
        _import_cupy()
        _device = "cuda"
    elif device == "cpu":
        _device = "cpu"
    else:
        raise ValueError(f"Unknown device {device!r}: use 'cpu' or 'cuda'.")


def get_device():
    return _device


def default_xp():
    """The array module new tensors are created with."""
    return _cupy if _device == "cuda" else np


def xp_of(array):
    """numpy or cupy, whichever owns `array`."""
    if isinstance(array, np.ndarray) or _cupy is None:
        return np
    return _cupy.get_array_module(array)


def to_device(array, device):
    """Copy an array to "cpu" (NumPy) or "cuda" (CuPy)."""
    if device == "cpu":
        return array.get() if _cupy is not None and not isinstance(array, np.ndarray) else array
    if str(device).startswith("cuda"):
        return _import_cupy().asarray(array)
    raise ValueError(f"Unknown device {device!r}: use 'cpu' or 'cuda'.")


def set_matmul_backend(name):
    """Pick the CPU matmul: "c" (tinypeft's blocked kernel) or "numpy" (BLAS)."""
    global _matmul_backend
    if name not in ("c", "numpy"):
        raise ValueError(f"Unknown matmul backend {name!r}: use 'c' or 'numpy'.")
    if name == "c" and not cmatmul.available():
        raise RuntimeError(f"The C matmul extension is not available: {cmatmul.build_info().get('error')}")
    _matmul_backend = name


def backend_info():
    """Which matmul backend is active, and how the extension was built."""
    return {
        "device": _device,
        "matmul": _matmul_backend if _device == "cpu" else "cupy",
        "c_extension": cmatmul.build_info(),
        "numpy": np.__version__,
    }


def matmul(a, b):
    """a @ b with NumPy's broadcasting rules, on the C kernel where it applies."""
    if (
        _matmul_backend != "c"
        or not isinstance(a, np.ndarray)
        or not isinstance(b, np.ndarray)
        or a.dtype != b.dtype
        or a.dtype not in (np.float32, np.float64)
        or a.ndim < 2
        or b.ndim < 2
    ):
        return np.matmul(a, b)
    if b.ndim == 2:
        # [..., m, k] @ [k, n]: fold the batch into rows, one big GEMM.
        lead = a.shape[:-1]
        a2 = a.reshape(-1, a.shape[-1])
        return cmatmul.matmul(a2, b).reshape(*lead, b.shape[-1])
    # Batched (attention heads): many small GEMMs. Below ~4M multiply-adds each, starting threads and
    # packing on every call costs more than it saves, and NumPy's batched loop is faster.
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    if m * k * n < (1 << 22):
        return np.matmul(a, b)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a_b = np.broadcast_to(a, batch + a.shape[-2:])
    b_b = np.broadcast_to(b, batch + b.shape[-2:])
    out = np.empty(batch + (a.shape[-2], b.shape[-1]), dtype=a.dtype)
    for idx in np.ndindex(*batch):
        cmatmul.matmul(a_b[idx], b_b[idx], out=out[idx])
    return out
