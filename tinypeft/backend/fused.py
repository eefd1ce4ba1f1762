"""Fused, threaded float32 row kernels (csrc/rowops.c) behind the ops in tinypeft/ops.

    softmax(x, safe, out)             softmax over the last axis; safe: all-masked rows give zeros
    layer_norm(x, weight, bias, eps)  -> y, xhat, rstd [rows, 1]
    rms_norm(x, weight, eps)          -> y, xhat, rstd [rows, 1]
    cross_entropy(x, target, ignore_index)                           -> lse [N], loss [N]
    cross_entropy_backward(x, target, ignore_index, lse, coef, tcoef)  -> dz [N, C]
    silu(x)                           -> y = x sigmoid(x), s = sigmoid(x), elementwise, any shape
    gelu(x)                           -> y = x Phi(x), Phi(x) = (1 + erf(x / sqrt(2))) / 2, elementwise, any shape
    attention(q, k, v, mask, scale)   -> o [B, H, L, Ev], p [B, H, L, S]: the safe softmax(q k^T * scale + mask)
                                         and p v, per (batch, head), reading q, k, v and the mask in place

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


def attention_applies(q, k, v, mask, gqa=False):
    """attention() takes q [B, H, L, E], k [B, Hk, S, E], v [B, Hk, S, Ev] as float32 views with contiguous
    last dims (Hk = H, or 1, or with gqa any divisor of H), and a mask (bool or float) that broadcasts to
    [B, H, L, S], or None."""
    if not (cmatmul.available() and _matmul_backend_is_c()):
        return False
    if not all(type(a) is np.ndarray and a.dtype == np.float32 and a.ndim == 4 and _c_readable(a) for a in (q, k, v)):
        return False
    (B, H, L, E), (Bk, Hk, S, Ek) = q.shape, k.shape
    if Bk != B or Ek != E or v.shape[:3] != (B, Hk, S) or Hk == 0 or H % Hk or not (gqa or Hk in (1, H)):
        return False
    if mask is None:
        return True
    return (type(mask) is np.ndarray and mask.dtype in (np.bool_, np.float32) and mask.ndim <= 4
            and all(m in (1, n) for m, n in zip(mask.shape[::-1], (S, L, H, B)))
            and all(st >= 0 and st % mask.itemsize == 0 for st in mask.strides))


def _c_readable(a):
    """contiguous last dim, non-negative strides in whole elements"""
    return (a.strides[-1] == a.itemsize or a.shape[-1] <= 1) and all(s >= 0 and s % a.itemsize == 0 for s in a.strides)


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


def layer_norm(x, weight, bias, eps, out=None, keep_xhat=True):
    """out may be x itself; without keep_xhat (inference) xhat is None."""
    y = np.empty_like(x) if out is None else out
    xhat = np.empty_like(x) if keep_xhat else None
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


def gelu(x, out=None, keep_cdf=True):
    """out may be x itself; without keep_cdf (inference) cdf is None."""
    y = np.empty_like(x) if out is None else out
    cdf = np.empty_like(x) if keep_cdf else None
    cmatmul.lib.tp_gelu_f32(_f(x), _f(cdf), _f(y), x.size, cmatmul.get_num_threads())
    return y, cdf


def attention(q, k, v, mask, scale):
    """Where attention_applies(q, k, v, mask). o is a [B, H, L, Ev] view of a [B, L, H, Ev] array: merging the
    heads afterwards (transpose(1, 2).reshape) is then free."""
    (B, H, L, E), (Hk, S, Ev) = q.shape, v.shape[1:]
    o = np.empty((B, L, H, Ev), np.float32).transpose(0, 2, 1, 3)
    p = np.empty((B, H, L, S), np.float32)
    a = cmatmul.ffi.new("tp_attention_args *")
    a.B, a.H, a.Hk, a.L, a.S, a.E, a.Ev, a.scale = B, H, Hk, L, S, E, Ev, float(scale)
    for name, x in (("q", q), ("k", k), ("v", v), ("o", o)):
        setattr(a, name, _f(x))
        getattr(a, name + "_strides")[0:3] = [st // 4 for st in x.strides[:3]]
    if mask is not None:
        m = np.broadcast_to(mask, (B, H, L, S))  # broadcast dims get stride 0: nothing is copied
        if m.dtype == np.bool_:
            a.mask_bool = cmatmul.ffi.cast("uint8_t *", m.ctypes.data)
        else:
            a.mask_add = _f(m)
        a.mask_strides[0:4] = [st // m.itemsize for st in m.strides]
    a.p, a.o = _f(p), _f(o)
    if cmatmul.lib.tp_attention_f32(a, cmatmul.get_num_threads()) != 0:
        raise MemoryError(f"attention {q.shape} x {k.shape}: could not allocate scratch")
    return o, p
