"""Dequantization of GGML's block formats to float32, in NumPy, following llama.cpp's ggml-quants.c.

A quantized row of n weights is n / block_size blocks of type_size bytes; each block carries one or two
float16 scales and the small integers q. Legacy formats (32 weights a block):

    Q8_0  [d f16][q int8 x32]                      w = d * q
    Q4_0  [d f16][q 4-bit x32]                     w = d * (q - 8)
    Q4_1  [d f16][m f16][q 4-bit x32]              w = d * q + m
    Q5_0  [d f16][qh u32][q low 4 bits x32]        w = d * (q - 16),  q = low | (bit j of qh) << 4
    Q5_1  [d f16][m f16][qh u32][q low 4 bits x32] w = d * q + m

The 4-bit formats pack weight j in the low nibble of byte j and weight j + 16 in its high nibble.
K-quants (256 weights a "super-block"): sub-blocks with their own 6-bit (Q4_K, Q5_K) or 8-bit (Q6_K)
scales, themselves scaled by the super-block's float16 d (and dmin for the minimums):

    Q4_K  [d][dmin][scales 12 B][q 4-bit x256]            w = (d * sc) * q - (dmin * m), 8 sub-blocks of 32
    Q5_K  [d][dmin][scales 12 B][qh 32 B][q 4-bit x256]   as Q4_K with a fifth bit from qh
    Q6_K  [ql 128 B][qh 64 B][scales int8 x16][d]          w = (d * sc) * (q - 32), 16 sub-blocks of 16

Every product is done in float32 in the order llama.cpp does it, so the result is bit-exact against
gguf.quants.dequantize (tests/test_gguf_quants.py checks each format).
"""
import numpy as np

QK = 32     # weights per block, legacy formats
QK_K = 256  # weights per super-block, K-quants

# ggml_type id -> (name, weights per block, bytes per block); ids from ggml.h
GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", QK, 18), 3: ("Q4_1", QK, 20), 6: ("Q5_0", QK, 22),
    7: ("Q5_1", QK, 24), 8: ("Q8_0", QK, 34), 12: ("Q4_K", QK_K, 144), 13: ("Q5_K", QK_K, 176),
    14: ("Q6_K", QK_K, 210), 30: ("BF16", 1, 2),
}
SUPPORTED = sorted(name for name, _, _ in GGML_TYPES.values())


def _f16(blocks, start):
    """The float16 at byte `start` of each block, as float32 [n_blocks, 1]."""
    return blocks[:, start:start + 2].copy().view(np.float16).astype(np.float32)


def _nibbles(qs):
    """[n, 16 * k] packed bytes -> [n, 32 * k] values: per 16 bytes, the low nibbles then the high ones."""
    n = qs.shape[0]
    qs = qs.reshape(n, -1, 1, 16)
    return np.concatenate([qs & 0x0F, qs >> 4], axis=2).reshape(n, -1)


def _high_bits(qh):
    """[n, 4] bytes of a little-endian uint32 -> [n, 32] bits, bit j first."""
    return np.unpackbits(qh, axis=1, bitorder="little")


def dequantize_f32(blocks):
    return blocks.view(np.float32)


def dequantize_f16(blocks):
    return blocks.view(np.float16).astype(np.float32)


def dequantize_bf16(blocks):
    # bfloat16 is the top half of a float32: shift it back up
    return (blocks.view(np.uint16).astype(np.uint32) << 16).view(np.float32)


def dequantize_q8_0(blocks):
    d = _f16(blocks, 0)
    return blocks[:, 2:].view(np.int8).astype(np.float32) * d


def dequantize_q4_0(blocks):
    d = _f16(blocks, 0)
    q = _nibbles(blocks[:, 2:]).astype(np.int8) - np.int8(8)
    return d * q.astype(np.float32)


def dequantize_q4_1(blocks):
    d, m = _f16(blocks, 0), _f16(blocks, 2)
    return d * _nibbles(blocks[:, 4:]).astype(np.float32) + m


def dequantize_q5_0(blocks):
    d = _f16(blocks, 0)
    q = (_nibbles(blocks[:, 6:]) | (_high_bits(blocks[:, 2:6]) << 4)).astype(np.int8) - np.int8(16)
    return d * q.astype(np.float32)


def dequantize_q5_1(blocks):
    d, m = _f16(blocks, 0), _f16(blocks, 2)
    q = _nibbles(blocks[:, 8:]) | (_high_bits(blocks[:, 4:8]) << 4)
    return d * q.astype(np.float32) + m


def k_scales_mins(scales):
    """The 12 scale bytes of Q4_K / Q5_K -> 8 six-bit scales and 8 six-bit mins (get_scale_min_k4).

    Bytes 0-3 hold scales 0-3 in their low 6 bits, bytes 4-7 mins 0-3; bytes 8-11 hold the low 4 bits
    of scale / min 4-7, whose top 2 bits sit in the spare top bits of bytes 0-3 / 4-7.
    """
    a, b, c = scales[:, 0:4], scales[:, 4:8], scales[:, 8:12]  # [n, 4] each
    sc = np.concatenate([a & 0x3F, (c & 0x0F) | ((a >> 6) << 4)], axis=1)  # [n, 8]
    mn = np.concatenate([b & 0x3F, (c >> 4) | ((b >> 6) << 4)], axis=1)
    return sc, mn


def dequantize_q4_k(blocks):
    n = blocks.shape[0]
    d, dmin = _f16(blocks, 0), _f16(blocks, 2)
    sc, mn = k_scales_mins(blocks[:, 4:16])
    d_sub = (d * sc.astype(np.float32))[:, :, None]       # [n, 8, 1]
    m_sub = (dmin * mn.astype(np.float32))[:, :, None]
    # 4 chunks of 32 bytes; chunk j gives sub-block 2j from the low nibbles and 2j + 1 from the high
    qs = blocks[:, 16:].reshape(n, 4, 1, 32)
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=2).reshape(n, 8, 32).astype(np.float32)
    return (d_sub * q - m_sub).reshape(n, QK_K)


def dequantize_q5_k(blocks):
    n = blocks.shape[0]
    d, dmin = _f16(blocks, 0), _f16(blocks, 2)
    sc, mn = k_scales_mins(blocks[:, 4:16])
    d_sub = (d * sc.astype(np.float32))[:, :, None]
    m_sub = (dmin * mn.astype(np.float32))[:, :, None]
    qh = blocks[:, 16:48]                                  # [n, 32]: bit s of byte l is the 5th bit of sub-block s
    qs = blocks[:, 48:].reshape(n, 4, 1, 32)
    low = np.concatenate([qs & 0x0F, qs >> 4], axis=2).reshape(n, 8, 32)
    high = (qh[:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & 1  # [n, 8, 32]
    q = (low | (high << 4)).astype(np.float32)
    return (d_sub * q - m_sub).reshape(n, QK_K)


def dequantize_q6_k(blocks):
    n = blocks.shape[0]
    ql = blocks[:, :128].reshape(n, 2, 2, 1, 32)           # [n, half, 32-byte row, -, l]
    qh = blocks[:, 128:192].reshape(n, 2, 1, 32)           # [n, half, -, l]
    sc = blocks[:, 192:208].view(np.int8).astype(np.float32)  # [n, 16]
    d = _f16(blocks, 208)
    # within a half of 128 weights: quarter k takes its low 4 bits from row k % 2 of ql (low nibble for
    # k < 2, high for k >= 2) and its top 2 bits from bits 2k, 2k + 1 of qh
    low = np.concatenate([ql & 0x0F, ql >> 4], axis=3).reshape(n, 2, 4, 32)
    low = low[:, :, [0, 2, 1, 3]]                          # order the quarters k = 0, 1, 2, 3
    high = (qh >> (2 * np.arange(4, dtype=np.uint8))[None, None, :, None]) & 3  # [n, 2, 4, 32]
    q = (low | (high << 4)).astype(np.int8) - np.int8(32)
    d_sub = (d * sc).reshape(n, 2, 4, 2, 1)               # 16 weights share a scale
    return (d_sub * q.reshape(n, 2, 4, 2, 16).astype(np.float32)).reshape(n, QK_K)


DEQUANTIZE = {
    "F32": dequantize_f32, "F16": dequantize_f16, "BF16": dequantize_bf16, "Q8_0": dequantize_q8_0,
    "Q4_0": dequantize_q4_0, "Q4_1": dequantize_q4_1, "Q5_0": dequantize_q5_0, "Q5_1": dequantize_q5_1,
    "Q4_K": dequantize_q4_k, "Q5_K": dequantize_q5_k, "Q6_K": dequantize_q6_k,
}


def type_name(ggml_type):
    """ggml type id (or a gguf.GGMLQuantizationType) -> its name, e.g. 3 -> "Q4_1"."""
    ggml_type = int(ggml_type)
    if ggml_type in GGML_TYPES:
        return GGML_TYPES[ggml_type][0]
    try:  # a type llama.cpp knows but tinypeft cannot unpack: name it
        from gguf import GGMLQuantizationType

        return GGMLQuantizationType(ggml_type).name
    except (ImportError, ValueError):
        return f"unknown ggml type {ggml_type}"


def dequantize(data, ggml_type, shape=None, rows_per_chunk=4096):
    """Raw tensor bytes (uint8 [rows, bytes per row], or the typed array of F32/F16/BF16) -> float32.

    shape: the logical shape, row-major (GGUF lists it innermost first: pass it reversed). Rows are
    unpacked a chunk at a time so the temporaries stay small.
    """
    name = type_name(ggml_type)
    if name not in DEQUANTIZE:
        raise NotImplementedError(
            f"tinypeft cannot dequantize GGML type {name}; supported: {', '.join(SUPPORTED)}. "
            "Re-quantize the model to one of these (llama.cpp's llama-quantize), or convert it to safetensors."
        )
    _, block, size = GGML_TYPES[int(ggml_type)]
    raw = np.ascontiguousarray(data).view(np.uint8)
    n_bytes = raw.size
    if n_bytes % size:
        raise ValueError(f"{name} data of {n_bytes} bytes is not a whole number of {size}-byte blocks")
    n_weights = n_bytes // size * block
    if shape is not None and int(np.prod(shape)) != n_weights:
        raise ValueError(f"{name} data holds {n_weights} weights but the shape {tuple(shape)} needs {int(np.prod(shape))}")
    blocks = raw.reshape(-1, size)
    fn = DEQUANTIZE[name]
    out = np.empty((blocks.shape[0], block), dtype=np.float32)
    step = max(1, rows_per_chunk * 64 // block)  # blocks per chunk
    for i in range(0, blocks.shape[0], step):
        out[i:i + step] = fn(blocks[i:i + step]).reshape(-1, block)
    return out.reshape(shape if shape is not None else (n_weights,))
