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
_matmul_backend = os.environ.get("TINYPEFT_MATMUL", "c" if cmatmul.available() else "numpy").strip().lower()
if _matmul_backend not in ("c", "numpy"):  # a typo must not leave a name that no dispatch ever matches
    raise ValueError(f"TINYPEFT_MATMUL={os.environ['TINYPEFT_MATMUL']!r} is not a matmul backend: "
                     "set it to 'c' or 'numpy', or unset it.")

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


def open_grid(shape, xp=np):
    """xp.indices(shape, sparse=True), which CuPy lacks: one arange per axis, shaped to broadcast against the rest."""
    return [xp.arange(n).reshape([n if axis == k else 1 for axis in range(len(shape))]) for k, n in enumerate(shape)]


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


def _matmul_backend_is_c():
    """The C kernels are on: the fused row kernels (backend/fused.py) follow the matmul's switch."""
    return _matmul_backend == "c" and _device == "cpu"


def backend_info():
    """Which matmul backend is active, what each kind of product runs on (see matmul below), and how the
    extension was built."""
    if _device != "cpu":
        paths = {"every product": "cupy"}
    elif _matmul_backend != "c":
        paths = {"every product": "numpy matmul"}
    else:
        paths = {
            "2-D, and batches folded into rows ([..., m, k] @ [k, n])": "c",
            f"float32, 2 to {cmatmul.GEMV_MAX_ROWS} rows (batched decoding)": "c gemv",
            "one row (a decoding step)": "numpy einsum",
            f"batched, under {_BATCHED_C_MIN_WORK} multiply-adds per matrix": "numpy matmul",
            f"batched, larger: one C call per matrix, shared among {cmatmul.get_num_threads()} threads": "c",
            "1-D operands, integer or mixed dtypes, non-NumPy arrays": "numpy matmul",
        }
    return {
        "device": _device,
        "matmul": _matmul_backend if _device == "cpu" else "cupy",
        "matmul_paths": paths,
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
        if 2 <= a2.shape[0] <= cmatmul.GEMV_MAX_ROWS and cmatmul.gemv_applies(a2, b):
            # A few rows (batched decoding): the GEMM would pack all of b for a few dots per column, and
            # einsum reads b once per row; the few-row kernel streams b once for all rows, on the threads.
            return cmatmul.gemv(a2, b).reshape(*lead, b.shape[-1])
        if a2.shape[0] == 1:
            # One row (a decoding step): einsum's single dot stream per column measured faster than the
            # few-row kernel on a quiet machine (bench/ has the comparison), so it stays here.
            return np.einsum("ik,kj->ij", a2, b).reshape(*lead, b.shape[-1])
        return cmatmul.matmul(a2, b).reshape(*lead, b.shape[-1])
    # Batched (attention heads): many small GEMMs. Tiny ones (a decoding step, short sentences) stay in
    # NumPy, whose per-call cost is lowest. Above ~64K multiply-adds OpenBLAS starts its threads on every
    # matrix, which on a busy machine costs far more than one single-threaded C call each.
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    if m * k * n < _BATCHED_C_MIN_WORK:
        return np.matmul(a, b)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a_b = np.broadcast_to(a, batch + a.shape[-2:])
    b_b = np.broadcast_to(b, batch + b.shape[-2:])
    out = np.empty(batch + (m, n), dtype=a.dtype)
    idx = list(np.ndindex(*batch))

    def run(chunk):
        for i in chunk:
            cmatmul.matmul(a_b[i], b_b[i], out=out[i])

    threads = cmatmul.get_num_threads()
    if threads == 1 or len(idx) == 1 or m * k * n >= _C_MIN_WORK_PER_THREAD * threads:
        run(idx)  # few or big matrices: the C kernel splits each one across its own threads
    else:  # many matrices, each too small for the kernel's threads: each thread takes a share of the batch
        run_on_threads(run, [(idx[t::threads],) for t in range(threads)])
    return out


# The C kernel runs one thread per this many multiply-adds (csrc/matmul.c, MIN_WORK_PER_THREAD).
_C_MIN_WORK_PER_THREAD = 1 << 22
_BATCHED_C_MIN_WORK = 1 << 16
_executor = None


def run_on_threads(fn, jobs):
    """fn(*job) for every job at once: the first on the calling thread, the others on a lasting pool.

    The one thread fan-out in tinypeft. It pays only where fn lets go of the GIL (a cffi call into the C
    kernel, NumPy's ufuncs on big arrays), which is what every caller hands it."""
    global _executor
    if len(jobs) == 1:
        fn(*jobs[0])
        return
    if _executor is None or _executor._max_workers != len(jobs) - 1:  # no thread start per call
        from concurrent.futures import ThreadPoolExecutor

        _executor = ThreadPoolExecutor(max_workers=len(jobs) - 1, thread_name_prefix="tinypeft-matmul")
    futures = [_executor.submit(fn, *job) for job in jobs[1:]]
    fn(*jobs[0])
    for f in futures:
        f.result()


def parallel_elementwise(fn, *arrays):
    """fn(*chunks) on matching slices of same-sized C-contiguous arrays, shared among the matmul threads.

    NumPy's ufuncs let go of the GIL, so a chain of in-place ufuncs over a big activation runs on all
    threads. Small, strided or non-NumPy arrays get one call on the whole arrays instead."""
    threads = cmatmul.get_num_threads() if cmatmul.available() else 1
    n = arrays[0].size
    if threads == 1 or n < (1 << 16) or not all(
        isinstance(a, np.ndarray) and a.flags.c_contiguous and a.size == n for a in arrays
    ):
        fn(*arrays)
        return
    flats = [a.reshape(-1) for a in arrays]
    bounds = np.linspace(0, n, threads + 1).astype(int)
    run_on_threads(fn, [[f[lo:hi] for f in flats] for lo, hi in zip(bounds[:-1], bounds[1:])])
