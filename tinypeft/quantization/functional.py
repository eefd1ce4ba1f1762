"""Blockwise quantization as bitsandbytes defines it (bitsandbytes.functional's names), in plain NumPy.

4 bits (QLoRA, Dettmers et al. 2023). The weight is flattened row-major and cut into blocks of 64 values.
Each block keeps its absolute maximum (absmax) in float32 and each value the index of the nearest entry
of a 16-value code table, after dividing by absmax:

    q[i] = argmin_j |code[j] - W[i] / absmax[b(i)]|,      W~[i] = code[q[i]] * absmax[b(i)],   b(i) = i // 64

Two indices share one byte, the first in the high nibble. Double quantization ("compress_statistics")
shrinks the absmax values themselves: their mean (offset) is subtracted and the rest is quantized in blocks
of 256 with bitsandbytes' 8-bit dynamic code, so each block of 64 costs 8 + 32/256 bits instead of 32:

    absmax~[b] = code8[qa[b]] * absmax2[b // 256] + offset

8 bits (LLM.int8, Dettmers et al. 2022): each row of W is scaled by its absmax to [-127, 127] and rounded:
CB = round(127 W / SCB[row]),  W~ = CB * (SCB[row] / 127).

These functions are the reference: the C kernels (csrc/quant.c) must reproduce dequantize_4bit bit for bit.
"""
from dataclasses import dataclass
from statistics import NormalDist
from typing import Optional

import numpy as np

# bitsandbytes' NF4 table, as it ships it (create_normal_map() below derives it from normal quantiles)
_NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
        0.7229568362236023, 1.0]
# FP4 (E2M1 with bitsandbytes' exponent bias): sign bit 8, then 3 bits; normalised by the largest, 12
_FP4 = [0.0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0]

QUANT_TYPES = ("nf4", "fp4")


def get_4bit_type(typename):
    """The 16-entry code table of "nf4" or "fp4", float32 in [-1, 1], indexed by the 4-bit value."""
    if typename == "nf4":
        return np.array(_NF4, dtype=np.float32)
    if typename == "fp4":
        code = np.array(_FP4, dtype=np.float32)
        return code / np.abs(code).max()
    raise ValueError(f"4-bit quant type {typename!r} is not supported; use one of {list(QUANT_TYPES)}.")


def create_normal_map(offset=0.9677083, use_extra_value=True):
    """NF4 from the normal distribution: 8 positive and 7 negative quantiles plus an exact zero.

    The quantiles are taken at evenly spaced probabilities between 1 - offset... offset (offset keeps the
    outermost finite), each side separately so that 0 is representable; then scaled to [-1, 1]."""
    ppf = NormalDist().inv_cdf
    if not use_extra_value:
        raise NotImplementedError("tinypeft builds only the asymmetric NF4 (use_extra_value=True).")
    pos = [ppf(p) for p in np.linspace(offset, 0.5, 9)[:-1]]  # 8 values > 0
    neg = [-ppf(p) for p in np.linspace(offset, 0.5, 8)[:-1]]  # 7 values < 0
    values = np.sort(np.array(pos + [0.0] + neg))
    return (values / np.abs(values).max()).astype(np.float32)


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    """bitsandbytes' 8-bit dynamic code (Dettmers 2015): a decimal exponent, then a shrinking linear fraction.

    Used here for the second-level quantization of absmax values. 256 sorted float32 values in [-1, 1]."""
    data = []
    non_sign_bits = total_bits - (1 if signed else 0)
    if 2 ** (non_sign_bits - max_exponent_bits) - 1 > 0:
        raise NotImplementedError("tinypeft builds the dynamic map only with every non-sign bit an exponent bit.")
    for i in range(max_exponent_bits):
        n = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed
                else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1)
        bounds = np.linspace(0.1, 1, n, dtype=np.float32)
        means = (bounds[:-1] + bounds[1:]) / np.float32(2)
        scale = np.float32(10.0 ** (-(max_exponent_bits - 1) + i))
        data += (scale * means).tolist()
        if signed:
            data += (-scale * means).tolist()
    data += [0.0, 1.0]
    data += [0.0] * (2 ** total_bits - len(data))
    return np.array(sorted(data), dtype=np.float32)


@dataclass
class QuantState:
    """What dequantization needs besides the packed bytes (bitsandbytes.functional.QuantState's fields)."""

    absmax: np.ndarray            # float32 [blocks], or uint8 [blocks] when state2 is set (double quant)
    shape: tuple                  # the weight's shape, e.g. (out_features, in_features)
    code: np.ndarray              # float32 code table: 16 values (4 bit) or 256 (the dynamic map)
    blocksize: int = 64
    quant_type: Optional[str] = None  # "nf4" / "fp4", None for the 8-bit blockwise state
    dtype: str = "float32"
    offset: Optional[np.ndarray] = None  # float32 scalar, with state2
    state2: Optional["QuantState"] = None  # the absmax values' own state (double quant)

    @property
    def nested(self):
        return self.state2 is not None

    def nbytes(self):
        n = self.absmax.nbytes + (0 if self.offset is None else 4)
        return n + (self.state2.absmax.nbytes if self.nested else 0)


def _nearest(code, scaled):
    """Index of the nearest code value for each element (code need not be sorted)."""
    order = np.argsort(code, kind="stable")
    s = code[order]
    mid = (s[1:] + s[:-1]) / np.float32(2)  # decision boundaries between neighbours
    return order[np.searchsorted(mid, scaled)].astype(np.uint8)


def _block_absmax(flat, blocksize):
    n = flat.size
    pad = (-n) % blocksize
    blocks = np.pad(np.abs(flat), (0, pad)).reshape(-1, blocksize)
    return blocks.max(axis=1).astype(np.float32)  # [ceil(n / blocksize)]


def _scale(flat, absmax, blocksize):
    # values / absmax, by the reciprocal as bitsandbytes does; an all-zero block maps to 0
    nblocks = -(-flat.size // blocksize)
    absmax = absmax[:nblocks]
    inv = np.divide(np.float32(1), absmax, out=np.zeros_like(absmax), where=absmax != 0)
    return flat * np.repeat(inv, blocksize)[: flat.size]


def quantize_blockwise(A, code=None, blocksize=4096):
    """8-bit blockwise quantization with a 256-value code (the dynamic map by default) -> (uint8, QuantState)."""
    code = create_dynamic_map(signed=True) if code is None else np.asarray(code, np.float32)
    flat = np.ascontiguousarray(A, dtype=np.float32).reshape(-1)
    absmax = _block_absmax(flat, blocksize)
    q = _nearest(code, _scale(flat, absmax, blocksize))
    return q, QuantState(absmax=absmax, shape=tuple(np.shape(A)), code=code, blocksize=blocksize)


def dequantize_blockwise(A, quant_state):
    """float32 values of an 8-bit blockwise array: code[q] * absmax[i // blocksize]."""
    s = quant_state
    absmax = np.repeat(s.absmax, s.blocksize)[: A.size]
    return (s.code[A.reshape(-1)] * absmax).reshape(s.shape)


def quantize_4bit(A, blocksize=64, compress_statistics=False, quant_type="fp4"):
    """4-bit blockwise quantization -> (packed uint8 [(n + 1) // 2, 1], QuantState), as bitsandbytes lays it out."""
    code = get_4bit_type(quant_type)
    A = np.asarray(A)
    if A.dtype.kind != "f":
        raise TypeError(f"quantize_4bit takes a floating-point array, got {A.dtype}.")
    flat = np.ascontiguousarray(A, dtype=np.float32).reshape(-1)
    absmax = _block_absmax(flat, blocksize)
    packed = np.empty((flat.size + 1) // 2, dtype=np.uint8)
    step = blocksize * (1 << 14)  # whole blocks at a time: the temporaries stay small for a big weight
    for start in range(0, flat.size, step):
        chunk = flat[start:start + step]
        q = _nearest(code, _scale(chunk, absmax[start // blocksize:], blocksize))
        if q.size % 2:
            q = np.append(q, np.uint8(0))
        packed[start // 2:start // 2 + q.size // 2] = (q[0::2] << 4) | q[1::2]  # first value in the high nibble
    packed = packed.reshape(-1, 1)
    state = QuantState(absmax=absmax, shape=tuple(A.shape), code=code, blocksize=blocksize, quant_type=quant_type)
    if compress_statistics:
        offset = absmax.mean(dtype=np.float32)
        qa, state2 = quantize_blockwise(absmax - offset, blocksize=256)
        state.absmax, state.offset, state.state2 = qa, np.float32(offset), state2
    return packed, state


def dequantize_absmax(quant_state):
    """The float32 absmax per block: stored, or decoded from the double quantization (+ offset, a second rounding)."""
    s = quant_state
    if not s.nested:
        return s.absmax
    return dequantize_blockwise(s.absmax, s.state2) + s.offset


def dequantize_4bit(A, quant_state):
    """The plain reference: float32 W~ of quant_state.shape, W~[i] = code[q[i]] * absmax[i // blocksize]."""
    s = quant_state
    n = int(np.prod(s.shape))
    packed = A.reshape(-1)
    q = np.empty(packed.size * 2, dtype=np.uint8)
    q[0::2], q[1::2] = packed >> 4, packed & 0x0F
    absmax = np.repeat(dequantize_absmax(s), s.blocksize)[:n]
    return (s.code[q[:n]] * absmax).reshape(s.shape)


# -- 8 bit: LLM.int8's row-wise absmax ------------------------------------------------------------------
_INV127 = np.float32(1 / 127)


def int8_vectorwise_quant(A):
    """Row-wise absmax int8: (CB int8 [rows, cols], SCB float32 [rows]) with CB = round(127 A / SCB)."""
    A = np.ascontiguousarray(A, dtype=np.float32)
    SCB = np.abs(A).max(axis=1).astype(np.float32)
    inv = np.divide(np.float32(127), SCB, out=np.zeros_like(SCB), where=SCB != 0)
    CB = np.clip(np.rint(A * inv[:, None]), -127, 127).astype(np.int8)
    return CB, SCB


def int8_vectorwise_dequant(CB, SCB):
    """W~ = CB * (SCB / 127), per row, float32 (the reference for the C kernel)."""
    return CB.astype(np.float32) * (SCB * _INV127)[:, None]
