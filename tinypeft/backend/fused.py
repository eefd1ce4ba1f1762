"""Fused, threaded float32 row kernels (csrc/rowops.c) behind the ops in tinypeft/ops.

    softmax(x, safe, out)             softmax over the last axis; safe: all-masked rows give zeros
    layer_norm(x, weight, bias, eps)  -> y, xhat, rstd [rows, 1]
    rms_norm(x, weight, eps)          -> y, xhat, rstd [rows, 1]
    cross_entropy(x, target, ignore_index)                           -> lse [N], loss [N]
    cross_entropy_backward(x, target, ignore_index, lse, coef, tcoef)  -> dz [N, C]
    silu(x)                           -> y = x sigmoid(x), s = sigmoid(x), elementwise, any shape
    gelu(x)                           -> y = x Phi(x), Phi(x) = (1 + erf(x / sqrt(2))) / 2, elementwise, any shape

Each op calls these only where `applies(...)` holds (NumPy float32 arrays, C-contiguous, the C matmul
backend on) and keeps its NumPy code, the reference, for everything else; tests/test_fused.py compares
the two, and the gradcheck suite runs each op on both (backend.set_matmul_backend("numpy") turns these off).
"""
import numpy as np

from . import _matmul_backend_is_c, cmatmul


def applies(*arrays):
    """True when the fused kernels take these arrays (None entries are optional operands and pass)."""
    return cmatmul.available() and _matmul_backend_is_c() and all(
        a is None or (type(a) is np.ndarray and a.dtype == np.float32 and a.flags.c_contiguous) for a in arrays
    )


def _f(a):
    return cmatmul.ffi.NULL if a is None else cmatmul.ffi.cast("float *", a.ctypes.data)


def _rows(x):
    cols = x.shape[-1] if x.ndim else 1
    return (x.size // cols if cols else 0), cols


def softmax(x, safe=False, out=None):
    """out may be x itself (each row is read before it is overwritten) or a C-contiguous float32 array like x."""
    y = np.empty_like(x) if out is None else out
    rows, cols = _rows(x)
    cmatmul.lib.tp_softmax_f32(_f(x), _f(y), rows, cols, int(safe), cmatmul.get_num_threads())
    return y


def layer_norm(x, weight, bias, eps):
    y, xhat = np.empty_like(x), np.empty_like(x)
    rows, cols = _rows(x)
    rstd = np.empty(x.shape[:-1] + (1,), np.float32)
    cmatmul.lib.tp_layer_norm_f32(_f(x), _f(weight), _f(bias), _f(y), _f(xhat), _f(rstd), rows, cols,
                                  float(eps), cmatmul.get_num_threads())
    return y, xhat, rstd


def rms_norm(x, weight, eps):
    y, xhat = np.empty_like(x), np.empty_like(x)
    rows, cols = _rows(x)
    rstd = np.empty(x.shape[:-1] + (1,), np.float32)
    cmatmul.lib.tp_rms_norm_f32(_f(x), _f(weight), _f(y), _f(xhat), _f(rstd), rows, cols, float(eps),
                                cmatmul.get_num_threads())
    return y, xhat, rstd


def _targets(target):
    return np.ascontiguousarray(target, dtype=np.int64)


def cross_entropy(x, target, ignore_index):
    """x [N, C] logits, target [N] -> (lse [N], loss [N]): loss = lse - x[n, t], 0 where t == ignore_index."""
    t = _targets(target)
    lse, loss = np.empty(x.shape[0], np.float32), np.empty(x.shape[0], np.float32)
    cmatmul.lib.tp_cross_entropy_f32(_f(x), cmatmul.ffi.cast("int64_t *", t.ctypes.data), int(ignore_index),
                                     _f(lse), _f(loss), x.shape[0], x.shape[1], cmatmul.get_num_threads())
    return lse, loss


def cross_entropy_backward(x, target, ignore_index, lse, coef, tcoef):
    """dz [N, C] = softmax(x) * coef[:, None], then dz[n, t] -= tcoef[n] where t != ignore_index."""
    t = _targets(target)
    lse, coef, tcoef = (np.ascontiguousarray(a, dtype=np.float32) for a in (lse, coef, tcoef))
    dz = np.empty_like(x)
    cmatmul.lib.tp_cross_entropy_backward_f32(_f(x), cmatmul.ffi.cast("int64_t *", t.ctypes.data),
                                              int(ignore_index), _f(lse), _f(coef), _f(tcoef), _f(dz),
                                              x.shape[0], x.shape[1], cmatmul.get_num_threads())
    return dz


def silu(x):
    y, s = np.empty_like(x), np.empty_like(x)
    cmatmul.lib.tp_silu_f32(_f(x), _f(s), _f(y), x.size, cmatmul.get_num_threads())
    return y, s


def gelu(x):
    y, cdf = np.empty_like(x), np.empty_like(x)
    cmatmul.lib.tp_gelu_f32(_f(x), _f(cdf), _f(y), x.size, cmatmul.get_num_threads())
    return y, cdf
