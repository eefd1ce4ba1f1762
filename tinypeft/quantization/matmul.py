"""Matmuls with a quantized weight: the C kernels (csrc/quant.c) and, beside them, the plain reference.

    reference_matmul(x, w)    x @ dequantize(W)^T    the definition: dequantize the whole weight, then matmul
    matmul(x, w)              the same, in C: one panel of W dequantized at a time inside the GEMM,
                              or a one-row GEMV when x has a single row (decoding)
    matmul_t(g, w)            g @ dequantize(W)       the backward's dx, in C, a column slab at a time
    dequantize(w)             the whole float32 W (tests, merging): C, bit-exact with the NumPy functions

`w` is a Params4bit or Int8Params (tinypeft.quantization.modules). Without the C extension every function
falls back to the reference, which does materialise the float32 weight (one layer at a time).
"""
import numpy as np

from ..backend import cmatmul
from . import functional as QF

_Q4, _Q8 = 0, 1


def _use_c():
    return cmatmul.available() and hasattr(cmatmul.lib, "tp_qmatmul")


def _ptr(a, ctype):
    return cmatmul.ffi.cast(ctype, a.ctypes.data)


def _absmax_c(state):
    """The float32 absmax per block; double quantization decoded in C (the same two roundings as NumPy)."""
    if not state.nested:
        return np.ascontiguousarray(state.absmax, dtype=np.float32)
    s2 = state.state2
    out = np.empty(state.absmax.size, dtype=np.float32)
    cmatmul.lib.tp_dequantize_absmax(_ptr(state.absmax, "uint8_t *"), _ptr(s2.code, "float *"),
                                     _ptr(s2.absmax, "float *"), s2.blocksize, float(state.offset),
                                     out.size, _ptr(out, "float *"))
    return out


def _struct(w):
    """A tp_qweight describing w; the arrays it points to are returned too, to keep them alive."""
    ffi = cmatmul.ffi
    qw = ffi.new("tp_qweight *")
    if w.quant_kind == "gguf":  # the file's blocks: kind is the ggml type id, no table, no separate scales
        data = np.ascontiguousarray(w.data)
        qw.kind, qw.blocksize = w.ggml_type, 0
        qw.data, qw.scale, qw.code = _ptr(data, "uint8_t *"), ffi.NULL, ffi.NULL
        qw.n, qw.k = w.quant_shape
        return qw, (data,)
    if w.quant_kind == "4bit":
        st = w.quant_state
        scale, code, data = _absmax_c(st), np.ascontiguousarray(st.code, np.float32), w.data
        qw.kind, qw.blocksize = _Q4, st.blocksize
    else:
        scale, code, data = (w.SCB * QF._INV127).astype(np.float32), np.zeros(1, np.float32), w.data
        qw.kind, qw.blocksize = _Q8, 1
    data = np.ascontiguousarray(data)
    qw.data, qw.scale, qw.code = _ptr(data, "uint8_t *"), _ptr(scale, "float *"), _ptr(code, "float *")
    qw.n, qw.k = w.quant_shape
    return qw, (data, scale, code)


def reference_dequantize(w):
    """float32 W [n, k] by the NumPy functions (the definition)."""
    if w.quant_kind == "gguf":
        from ..gguf.quants import dequantize as gguf_dequantize

        return gguf_dequantize(w.data, w.ggml_type, w.quant_shape)
    if w.quant_kind == "4bit":
        return QF.dequantize_4bit(w.data, w.quant_state)
    return QF.int8_vectorwise_dequant(w.data, w.SCB)


def dequantize(w):
    if not _use_c():
        return reference_dequantize(w)
    qw, keep = _struct(w)
    n, k = w.quant_shape
    out = np.empty((n, k), dtype=np.float32)
    cmatmul.lib.tp_dequantize(qw, 0, n, 0, k, _ptr(out, "float *"), k)
    return out


def reference_matmul(x, w):
    """x [m, k] @ W~^T -> [m, n], with W~ dequantized in full first."""
    return x @ reference_dequantize(w).T


def reference_matmul_t(g, w):
    """g [m, n] @ W~ -> [m, k]."""
    return g @ reference_dequantize(w)


def _rows(a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    return a.reshape(-1, a.shape[-1])


def _c_product(kernel, a, w, a_cols, out_cols, what, gemv=None):
    """a [..., a_cols] through `kernel` (tp_qmatmul or tp_qmatmul_t) -> [..., out_cols] (float32); a single row
    goes through `gemv` when one is given."""
    a2 = _rows(a)
    out = np.empty((a2.shape[0], out_cols), dtype=np.float32)
    qw, keep = _struct(w)
    threads = cmatmul.get_num_threads()
    if gemv is not None and a2.shape[0] == 1:  # decoding
        gemv(qw, _ptr(a2, "float *"), _ptr(out, "float *"), threads)
    elif kernel(qw, a2.shape[0], _ptr(a2, "float *"), a_cols, _ptr(out, "float *"), out_cols, threads):
        raise MemoryError(f"quantized matmul {a2.shape} @ {what}: could not allocate a panel buffer")
    return out.reshape(a.shape[:-1] + (out_cols,))


def matmul(x, w):
    """x [..., k] @ W~^T -> [..., n] (float32)."""
    if not _use_c():
        return reference_matmul(x.astype(np.float32, copy=False), w)
    n, k = w.quant_shape
    return _c_product(cmatmul.lib.tp_qmatmul, x, w, k, n, f"{w.quant_shape}^T", gemv=cmatmul.lib.tp_qgemv)


def matmul_t(g, w):
    """g [..., n] @ W~ -> [..., k] (float32): the input gradient of y = x W~^T."""
    if not _use_c():
        return reference_matmul_t(g.astype(np.float32, copy=False), w)
    n, k = w.quant_shape
    return _c_product(cmatmul.lib.tp_qmatmul_t, g, w, n, k, str(w.quant_shape))
