"""Matmuls with a quantized weight: the C kernels (csrc/quant.c) and, beside them, the plain reference.

    reference_matmul(x, w)    x @ dequantize(W)^T    the definition: dequantize the whole weight, then matmul
    matmul(x, w)              the same, in C: one panel of W dequantized at a time inside the GEMM,
                              or a one-row GEMV when x has a single row (decoding)
    matmul_t(g, w)            g @ dequantize(W)       the backward's dx, in C, a column slab at a time
    GemvGroup(ws)(x)          x [1, k] @ [W_0; W_1; ...]^T: one row through several weights that read it (a
                              layer's q, k, v), in one C call; the reference is matmul of each, concatenated
    dequantize(w)             the whole float32 W (tests, merging): C, bit-exact with the NumPy functions
    dequantizes_to(w, values) whether W~ is bit for bit `values` (a float32 copy of W still in step with W)

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
    qw = cmatmul.ffi.new("tp_qweight *")
    return qw, _fill(qw, w)


def _fill(qw, w):
    """Describe w in the tp_qweight qw; returns the arrays it points to (the caller keeps them alive)."""
    ffi = cmatmul.ffi
    if w.quant_kind == "gguf":  # the file's blocks: kind is the ggml type id, no table, no separate scales
        data = np.ascontiguousarray(w.data)
        qw.kind, qw.blocksize = w.ggml_type, 0
        qw.data, qw.scale, qw.code = _ptr(data, "uint8_t *"), ffi.NULL, ffi.NULL
        qw.n, qw.k = w.quant_shape
        return (data,)
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
    return (data, scale, code)


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


def dequantizes_to(w, values, rows=2048):
    """True when W~ (the C dequantization) is bit for bit `values` [n, k] float32; a few rows at a time, so no
    second float32 copy of a large weight is made."""
    n, k = w.quant_shape
    if not _use_c() or values.shape != (n, k) or values.dtype != np.float32:
        return False
    values = np.ascontiguousarray(values)
    qw, keep = _struct(w)
    buf = np.empty((min(rows, n), k), dtype=np.float32)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        cmatmul.lib.tp_dequantize(qw, r0, r1, 0, k, _ptr(buf, "float *"), k)
        if not np.array_equal(buf[:r1 - r0].view(np.uint32), values[r0:r1].view(np.uint32)):
            return False
    return True


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


class GemvGroup:
    """x [1, k] -> [1, n_0 + n_1 + ...]: the one-row products with weights W_0, W_1, ... that share the input
    (a decoder layer's q, k, v projections; its gate and up), their outputs end to end.

    One C call makes them all, in one fan-out over the threads, and the C descriptions of the weights are made
    once, here: a decoding step calls this a few times per layer. It holds the weights' arrays, so it lasts as
    long as the weights do not change (a generate() call). The definition is reference_matmul of each weight,
    concatenated; tests compare."""

    def __init__(self, weights):
        if not _use_c():
            raise RuntimeError("GemvGroup needs the C extension (tinypeft.backend.cmatmul.available()).")
        if not 1 <= len(weights) <= 8 or len({w.quant_shape[1] for w in weights}) != 1:
            raise ValueError(f"GemvGroup takes 1 to 8 weights with the same in_features, got shapes "
                             f"{[w.quant_shape for w in weights]}.")
        self.structs = cmatmul.ffi.new("tp_qweight[]", len(weights))
        self._keep = [_fill(self.structs[i], w) for i, w in enumerate(weights)]
        self.count, self.k = len(weights), weights[0].quant_shape[1]
        self.sizes = [w.quant_shape[0] for w in weights]
        ends = np.cumsum(self.sizes).tolist()
        self.bounds = list(zip([0] + ends[:-1], ends))  # each weight's columns of the output

    def __call__(self, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape != (1, self.k):
            raise ValueError(f"GemvGroup: x must be [1, {self.k}], got {list(x.shape)}.")
        out = np.empty((1, self.bounds[-1][1]), dtype=np.float32)
        cmatmul.lib.tp_qgemv_many(self.structs, self.count, _ptr(x, "float *"), _ptr(out, "float *"),
                                  cmatmul.get_num_threads())
        return out
