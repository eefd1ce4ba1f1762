"""The optional C matmul (csrc/), compiled with cffi at install time.

    matmul(a, b)            C = a @ b for 2-D float32 or float64 arrays, any non-negative strides
    matmul_reference(a, b)  the same by the plain triple loop (csrc/gemm_reference.c), to test against
    gemv(a, b)              the same for float32 a of at most GEMV_MAX_ROWS rows (csrc/gemv.c), weights read once
    erf(x)                  the C library's erf, elementwise

The extension is optional: when it was not built, or fails to load, importing this module still
works, `available()` is False and `build_info()["error"]` says why; callers fall back to NumPy.
"""
import os
import sys
import warnings

import numpy as np

try:
    from ._cmatmul import ffi, lib
except Exception as e:  # ImportError when not built; OSError/ImportError when built for another system
    ffi = lib = None
    _import_error = f"{type(e).__name__}: {e}"
    # setup.py leaves the compiler's complaint here when the build failed at install time.
    _build_log = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_cmatmul_build_error.txt")
    if os.path.exists(_build_log):
        with open(_build_log) as f:
            _import_error += f" (not compiled at install time: {f.read().strip()})"
else:
    _import_error = None

_FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _default_threads():
    env = os.environ.get("TINYPEFT_NUM_THREADS")
    if env:
        try:
            n = int(env)
            if n >= 1:
                return n
        except ValueError:
            pass
        warnings.warn(f"TINYPEFT_NUM_THREADS={env!r} is not a positive integer; ignoring it.", RuntimeWarning)
    return os.cpu_count() or 1


_num_threads = _default_threads()


def available():
    """True when the compiled extension loaded."""
    return lib is not None


def _require():
    if lib is None:
        raise RuntimeError(f"The C matmul extension is not available: {_import_error}")


def set_num_threads(n):
    """Threads for each matmul call (the C code starts and joins them per call)."""
    global _num_threads
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads needs n >= 1, got {n}")
    _num_threads = n


def get_num_threads():
    return _num_threads


def kernels():
    """The SIMD kernels this CPU can run, narrowest first, e.g. ['generic', 'avx2', 'avx512']."""
    _require()
    return [name for name in ("generic", "avx2", "avx512") if lib.tp_kernel_supported(name.encode())]


def set_kernel(name):
    """Force one kernel (tests run each of them); by default the widest the CPU supports is used."""
    _require()
    if lib.tp_select_kernel(name.encode()) != 0:
        raise ValueError(f"Kernel {name!r} is not available on this CPU; choose from {kernels()}")


def get_kernel():
    _require()
    return ffi.string(lib.tp_kernel_name()).decode()


def build_info():
    """How the extension was built and what it runs with; {"available": False, "error": ...} if absent."""
    if lib is None:
        return {"available": False, "error": _import_error}
    info = {
        "available": True,
        "module": sys.modules[__name__.rpartition(".")[0] + "._cmatmul"].__file__,
        "compiler": ffi.string(lib.tp_compiler()).decode(),
        "cflags": ffi.string(lib.tp_build_flags()).decode(),
        "kernel": get_kernel(),
        "kernels": kernels(),
        "vector_bits": 8 * lib.tp_vector_bytes(),
        "threads": _num_threads,
    }
    block = ffi.new("int[5]")
    for name, itemsize in (("float32", 4), ("float64", 8)):
        lib.tp_blocking(itemsize, block)
        info[f"blocking_{name}"] = dict(zip(("MR", "NR", "MC", "KC", "NC"), block))
    return info


def _strides_ok(x):
    # The C code takes strides in elements, non-negative, on aligned data; anything else is copied.
    return x.flags.aligned and all(s >= 0 and s % x.itemsize == 0 for s in x.strides)


def _pointer(x):
    ctype = "float *" if x.dtype == np.float32 else "double *"
    return ffi.cast(ctype, x.ctypes.data)


def _operands(a, b):
    """a, b checked as 2-D arrays of one float dtype, [m, k] @ [k, n]; copied only if the C code can't read them."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype not in _FLOAT_TYPES or b.dtype not in _FLOAT_TYPES:
        raise TypeError(f"matmul takes float32 or float64 arrays, got {a.dtype} and {b.dtype}")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul needs both operands of one dtype, got {a.dtype} @ {b.dtype}; cast one first")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul takes 2-D arrays, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul shape mismatch: {a.shape} @ {b.shape} (inner dimensions {a.shape[1]} != {b.shape[0]})")
    return (a if _strides_ok(a) else np.ascontiguousarray(a)), (b if _strides_ok(b) else np.ascontiguousarray(b))


def _strided_args(a, b, c):
    """(m, n, k, a, its row and column strides, b, its strides, c, its row stride): the C signature."""
    isz = a.itemsize
    return (
        a.shape[0], b.shape[1], a.shape[1],
        _pointer(a), a.strides[0] // isz, a.strides[1] // isz,
        _pointer(b), b.strides[0] // isz, b.strides[1] // isz,
        _pointer(c), c.strides[0] // isz,
    )  # fmt: skip


def matmul(a, b, out=None):
    """C = a @ b for 2-D arrays of the same float dtype, [m, k] @ [k, n] -> [m, n].

    Transposed and sliced views are read in place. `out`, if given, must be [m, n] of the same dtype.
    """
    _require()
    a, b = _operands(a, b)
    m, n = a.shape[0], b.shape[1]
    target = out
    if out is not None:
        if not isinstance(out, np.ndarray) or out.shape != (m, n) or out.dtype != a.dtype:
            got = (out.shape, out.dtype) if isinstance(out, np.ndarray) else type(out)
            raise ValueError(f"matmul out must be a {(m, n)} {a.dtype} array, got {got}")
        # The C code writes rows with unit column stride, and must not overwrite an input it still reads.
        direct = (
            out.flags.writeable
            and out.strides[1] == out.itemsize
            and _strides_ok(out)
            and not np.may_share_memory(out, a)
            and not np.may_share_memory(out, b)
        )
        if not direct:
            target = None
    if target is None:
        target = np.empty((m, n), dtype=a.dtype)

    fn = lib.tp_matmul_f32 if a.dtype == np.float32 else lib.tp_matmul_f64
    if fn(*_strided_args(a, b, target), _num_threads) != 0:
        raise MemoryError(f"matmul {a.shape} @ {b.shape}: could not allocate packing buffers")
    if out is not None and target is not out:
        out[...] = target
        return out
    return target


def matmul_reference(a, b):
    """The same product by csrc/gemm_reference.c's plain triple loop: slow, one thread, obviously right."""
    _require()
    a, b = _operands(a, b)
    c = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    fn = lib.tp_matmul_reference_f32 if a.dtype == np.float32 else lib.tp_matmul_reference_f64
    fn(*_strided_args(a, b, c))
    return c


GEMV_MAX_ROWS = 4  # csrc/gemv.h, GEMV_MAX_M


def gemv_applies(a, b):
    """True when gemv(a, b) takes the few-row kernel: float32, a [m <= GEMV_MAX_ROWS, k] with contiguous
    rows, b [k, n] with contiguous rows or columns (a Linear weight's .T, or a Conv1D weight)."""
    return (
        lib is not None
        and a.dtype == np.float32
        and b.dtype == np.float32
        and a.ndim == 2
        and b.ndim == 2
        and a.shape[0] <= GEMV_MAX_ROWS
        and a.shape[1] == b.shape[0]
        and (a.strides[1] == 4 or a.shape[1] <= 1)
        and (b.strides[0] == 4 or b.strides[1] == 4)
        and _strides_ok(a)
        and _strides_ok(b)
    )


def gemv(a, b, out=None):
    """C = a @ b for float32 a [m, k] with m <= GEMV_MAX_ROWS: the weights b [k, n] are streamed once,
    their columns shared among the threads. Where gemv_applies(a, b) is False, this is matmul(a, b)."""
    _require()
    a, b = np.asarray(a), np.asarray(b)
    if not gemv_applies(a, b):
        return matmul(a, b, out=out)
    m, n = a.shape[0], b.shape[1]
    if out is None or out.shape != (m, n) or out.dtype != np.float32 or out.strides[1] != 4 \
            or not out.flags.writeable or np.may_share_memory(out, a) or np.may_share_memory(out, b):
        if out is not None:
            return matmul(a, b, out=out)  # its checks and messages
        out = np.empty((m, n), np.float32)
    if lib.tp_gemv_f32(*_strided_args(a, b, out), _num_threads) != 0:
        return matmul(a, b, out=out)
    return out


def erf(x, out=None):
    """erf(x) elementwise with the C library's erf; float32 stays float32, other input becomes float64.

    `out`, if given, must be a C-contiguous array of x's shape and (float) dtype; the result is written there."""
    _require()
    x = np.asarray(x)
    if x.dtype not in _FLOAT_TYPES:
        if x.dtype.kind == "c":
            raise TypeError("erf of complex numbers is not supported")
        x = x.astype(np.float64)
    x = np.ascontiguousarray(x)
    if out is not None and (out.shape != x.shape or out.dtype != x.dtype or not out.flags.c_contiguous):
        raise ValueError(f"erf out must be a C-contiguous {x.shape} {x.dtype} array")
    y = np.empty_like(x) if out is None else out
    fn = lib.erf_f32 if x.dtype == np.float32 else lib.erf_f64
    ctype = "float *" if x.dtype == np.float32 else "double *"
    fn(ffi.cast(ctype, x.ctypes.data), ffi.cast(ctype, y.ctypes.data), x.size)
    return y
