/* gguf_quant.c: decoding GGUF's blocks, one block at a time, for quant.c's fused matmuls.
 *
 * Each decode_* writes one whole block (32 or 256 floats) from its bytes, as llama.cpp's
 * dequantize_row_* does and in the order tinypeft/gguf/quants.py (the reference) does it:
 *
 *   Q8_0  w = q * d                  Q4_0  w = d * (q - 8)          Q4_1  w = d * q + m
 *   Q5_0  w = d * (q - 16)           Q5_1  w = d * q + m
 *   Q4_K, Q5_K  w = (d * sc) * q - (dmin * mn)      Q6_K  w = (d * sc) * (q - 32)
 *
 * Bit-exactness: a multiply followed by an add must round twice, as NumPy does. The build allows
 * contraction into FMA (-ffp-contract=fast) for the GEMM, so it is switched off for this whole file;
 * the AVX2 dot product asks for its FMAs explicitly, with intrinsics.
 */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "gguf_quant.h"
#include "matmul.h"

#include <string.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define TP_GGUF_X86 1
#include <immintrin.h>
#endif

#define QK 32
#define QK_K 256

/* IEEE half -> float, exactly (every half is a float). */
static inline float f16(const uint8_t *p)
{
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in float */
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31)
        bits = sign | 0x7F800000u | (mant << 13); /* inf / nan */
    else
        bits = sign | ((exp + 112) << 23) | (mant << 13); /* rebias 15 -> 127 */
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline void decode_q8_0(const uint8_t *b, float *out)
{
    float d = f16(b);
    const int8_t *q = (const int8_t *)(b + 2);
    for (int j = 0; j < QK; j++) out[j] = (float)q[j] * d;
}

/* Legacy 4-bit: byte j holds weight j (low nibble) and weight j + 16 (high nibble). */
static inline void decode_q4_0(const uint8_t *b, float *out)
{
    float d = f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < QK / 2; j++) {
        out[j] = d * (float)((qs[j] & 0x0F) - 8);
        out[j + QK / 2] = d * (float)((qs[j] >> 4) - 8);
    }
}

static inline void decode_q4_1(const uint8_t *b, float *out)
{
    float d = f16(b), m = f16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < QK / 2; j++) {
        float lo = d * (float)(qs[j] & 0x0F), hi = d * (float)(qs[j] >> 4);
        out[j] = lo + m;
        out[j + QK / 2] = hi + m;
    }
}

/* 5-bit: the fifth bit of weight j is bit j of the little-endian uint32 qh. */
static inline int fifth(const uint8_t *qh, int j) { return ((qh[j >> 3] >> (j & 7)) & 1) << 4; }

static inline void decode_q5_0(const uint8_t *b, float *out)
{
    float d = f16(b);
    const uint8_t *qh = b + 2, *qs = b + 6;
    for (int j = 0; j < QK / 2; j++) {
        out[j] = d * (float)(((qs[j] & 0x0F) | fifth(qh, j)) - 16);
        out[j + QK / 2] = d * (float)(((qs[j] >> 4) | fifth(qh, j + QK / 2)) - 16);
    }
}

static inline void decode_q5_1(const uint8_t *b, float *out)
{
    float d = f16(b), m = f16(b + 2);
    const uint8_t *qh = b + 4, *qs = b + 8;
    for (int j = 0; j < QK / 2; j++) {
        float lo = d * (float)((qs[j] & 0x0F) | fifth(qh, j));
        float hi = d * (float)((qs[j] >> 4) | fifth(qh, j + QK / 2));
        out[j] = lo + m;
        out[j + QK / 2] = hi + m;
    }
}

/* Q4_K / Q5_K's 12 scale bytes -> 6-bit scale and min of sub-block s (llama.cpp's get_scale_min_k4). */
static inline void scale_min_k4(const uint8_t *s, int j, int *sc, int *mn)
{
    if (j < 4) {
        *sc = s[j] & 0x3F;
        *mn = s[j + 4] & 0x3F;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q4_K: 8 sub-blocks of 32; 32-byte chunk c gives sub-block 2c (low nibbles) and 2c + 1 (high).
 * Q5_K adds bit s of qh[l] as the fifth bit of weight l of sub-block s. */
static inline void decode_qk_k(const uint8_t *b, float *out, int five)
{
    float d = f16(b), dmin = f16(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *qs = five ? b + 48 : b + 16;
    for (int s = 0; s < 8; s++) {
        int sc, mn;
        scale_min_k4(scales, s, &sc, &mn);
        float ds = d * (float)sc, ms = dmin * (float)mn;
        const uint8_t *chunk = qs + 32 * (s >> 1);
        int shift = (s & 1) * 4;
        for (int l = 0; l < 32; l++) {
            int q = (chunk[l] >> shift) & 0x0F;
            if (five) q |= ((qh[l] >> s) & 1) << 4;
            float p = ds * (float)q;
            out[32 * s + l] = p - ms;
        }
    }
}

/* Q6_K: two halves of 128; in half h, weight 32 * t + l takes its low 4 bits from ql (row t % 2,
 * low nibble for t < 2, high for t >= 2) and its top 2 bits from bits 2t, 2t + 1 of qh[l];
 * 16 weights share an int8 scale. */
static inline void decode_q6_k(const uint8_t *b, float *out)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16(b + 208);
    for (int h = 0; h < 2; h++) {
        const uint8_t *qlh = ql + 64 * h, *qhh = qh + 32 * h;
        for (int t = 0; t < 4; t++) {
            const uint8_t *src = qlh + 32 * (t & 1);
            int shift = (t >> 1) * 4;
            for (int l = 0; l < 32; l++) {
                int q = (((src[l] >> shift) & 0x0F) | (((qhh[l] >> (2 * t)) & 3) << 4)) - 32;
                float ds = d * (float)sc[8 * h + 2 * t + (l >> 4)];
                out[128 * h + 32 * t + l] = ds * (float)q;
            }
        }
    }
}

static inline void decode_block(int kind, const uint8_t *b, float *out)
{
    switch (kind) {
    case TP_GGUF_Q8_0: decode_q8_0(b, out); break;
    case TP_GGUF_Q4_0: decode_q4_0(b, out); break;
    case TP_GGUF_Q4_1: decode_q4_1(b, out); break;
    case TP_GGUF_Q5_0: decode_q5_0(b, out); break;
    case TP_GGUF_Q5_1: decode_q5_1(b, out); break;
    case TP_GGUF_Q4_K: decode_qk_k(b, out, 0); break;
    case TP_GGUF_Q5_K: decode_qk_k(b, out, 1); break;
    case TP_GGUF_Q6_K: decode_q6_k(b, out); break;
    default: break;
    }
}

size_t tp_gguf_block_size(int kind)
{
    switch (kind) {
    case TP_GGUF_Q4_0: case TP_GGUF_Q4_1: case TP_GGUF_Q5_0: case TP_GGUF_Q5_1: case TP_GGUF_Q8_0: return QK;
    case TP_GGUF_Q4_K: case TP_GGUF_Q5_K: case TP_GGUF_Q6_K: return QK_K;
    default: return 0;
    }
}

size_t tp_gguf_type_size(int kind)
{
    switch (kind) {
    case TP_GGUF_Q4_0: return 18;
    case TP_GGUF_Q4_1: return 20;
    case TP_GGUF_Q5_0: return 22;
    case TP_GGUF_Q5_1: return 24;
    case TP_GGUF_Q8_0: return 34;
    case TP_GGUF_Q4_K: return 144;
    case TP_GGUF_Q5_K: return 176;
    case TP_GGUF_Q6_K: return 210;
    default: return 0;
    }
}

int tp_gguf_supported(int kind) { return tp_gguf_block_size(kind) != 0; }

size_t tp_gguf_row_bytes(int kind, size_t k) { return k / tp_gguf_block_size(kind) * tp_gguf_type_size(kind); }

void tp_gguf_dequantize_row(int kind, const uint8_t *row, size_t c0, size_t c1, float *out)
{
    size_t bs = tp_gguf_block_size(kind), ts = tp_gguf_type_size(kind);
    float tmp[QK_K];
    for (size_t blk = c0 / bs; blk * bs < c1; blk++) {
        size_t b0 = blk * bs, b1 = b0 + bs;
        if (b0 >= c0 && b1 <= c1) {
            decode_block(kind, row + blk * ts, out + (b0 - c0)); /* a whole block: straight into out */
        } else { /* a block cut by the slab's edge: decode it aside, copy the part inside */
            decode_block(kind, row + blk * ts, tmp);
            size_t lo = b0 > c0 ? b0 : c0, hi = b1 < c1 ? b1 : c1;
            memcpy(out + (lo - c0), tmp + (lo - b0), (hi - lo) * sizeof(float));
        }
    }
}

/* -- the decoding step's dot products: y[r] = sum_c W[r, c] x[c] for a range of rows -------------------
 *
 * The legacy formats are never decoded to floats: per block, sum_j w_j x_j is
 *   Q8_0  d * sum q x        Q4_0  d * (sum q x - 8 sum x)        Q4_1  d * sum q x + m * sum x
 * so a block costs a few integer-to-float conversions and multiply-adds. Other formats (and other
 * CPUs) decode a block to floats, then multiply. Only the order of the additions differs from
 * dequantize-then-dot; each row's sum is made the same way whatever thread makes it. */
static void rows_generic(int kind, const uint8_t *data, size_t stride, size_t r0, size_t r1, const float *x,
                         size_t k, float *y)
{
    size_t bs = tp_gguf_block_size(kind), ts = tp_gguf_type_size(kind);
    float w[QK_K];
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = data + r * stride;
        float acc[8] = {0};
        for (size_t b0 = 0; b0 < k; b0 += bs, row += ts) {
            decode_block(kind, row, w);
            for (size_t j = 0; j < bs; j += 8)
                for (int t = 0; t < 8; t++) acc[t] += w[j + t] * x[b0 + j + t];
        }
        float s = 0.0f;
        for (int t = 0; t < 8; t++) s += acc[t];
        y[r] = s;
    }
}

#if defined(TP_GGUF_X86)
#define TP_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TP_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

/* A block's two float16 scales (d and, for Q4_1, m at +2) -> floats [d, m, 0, 0], with F16C (exact). */
static TP_AVX2 inline __m128 scales_f16c(const uint8_t *b)
{
    int32_t v;
    memcpy(&v, b, 4);
    return _mm_cvtph_ps(_mm_cvtsi32_si128(v));
}

/* 32 four-bit values (byte j: value j low, value j + 16 high) times x[0:32]: sum_j q_j x_j in 8 lanes,
 * and the block's x summed in 8 lanes (for the offsets: Q4_0's -8, Q4_1's + m). */
static TP_AVX2 inline __m256 dot_nibbles(const uint8_t *qs, const float *x, __m256 *xsum)
{
    __m128i bytes = _mm_loadu_si128((const __m128i *)qs);
    __m128i mask = _mm_set1_epi8(0x0F);
    __m128i lo = _mm_and_si128(bytes, mask), hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8), x2 = _mm256_loadu_ps(x + 16),
           x3 = _mm256_loadu_ps(x + 24);
    __m256 acc = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), x0);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))), x1, acc);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), x2, acc);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))), x3, acc);
    *xsum = _mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3));
    return acc;
}

/* 32 int8 values times x[0:32], in 8 lanes. */
static TP_AVX2 inline __m256 dot_int8(const int8_t *q, const float *x)
{
    __m256 acc = _mm256_setzero_ps();
    for (int j = 0; j < QK; j += 8) {
        __m128i v = _mm_loadl_epi64((const __m128i *)(q + j));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), _mm256_loadu_ps(x + j), acc);
    }
    return acc;
}

static TP_AVX2 float dot_avx2(int kind, const uint8_t *row, const float *x, size_t k)
{
    size_t bs = tp_gguf_block_size(kind), ts = tp_gguf_type_size(kind);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), xs;
    if (kind == TP_GGUF_Q4_1) {
        for (size_t b0 = 0; b0 < k; b0 += QK, row += ts) {
            __m256 qx = dot_nibbles(row + 4, x + b0, &xs);
            __m128 dm = scales_f16c(row);
            acc0 = _mm256_fmadd_ps(_mm256_broadcastss_ps(dm), qx, acc0);
            acc1 = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dm)), xs, acc1);
        }
    } else if (kind == TP_GGUF_Q4_0) {
        __m256 eight = _mm256_set1_ps(8.0f);
        for (size_t b0 = 0; b0 < k; b0 += QK, row += ts) {
            __m256 qx = dot_nibbles(row + 2, x + b0, &xs);
            acc0 = _mm256_fmadd_ps(_mm256_broadcastss_ps(scales_f16c(row)), _mm256_fnmadd_ps(eight, xs, qx), acc0);
        }
    } else if (kind == TP_GGUF_Q8_0) {
        for (size_t b0 = 0; b0 < k; b0 += QK, row += ts)
            acc0 = _mm256_fmadd_ps(_mm256_broadcastss_ps(scales_f16c(row)), dot_int8((const int8_t *)(row + 2), x + b0),
                                   acc0);
    } else {
        float w[QK_K] __attribute__((aligned(32)));
        for (size_t b0 = 0; b0 < k; b0 += bs, row += ts) {
            decode_block(kind, row, w);
            for (size_t j = 0; j < bs; j += 16) {
                acc0 = _mm256_fmadd_ps(_mm256_load_ps(w + j), _mm256_loadu_ps(x + b0 + j), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_load_ps(w + j + 8), _mm256_loadu_ps(x + b0 + j + 8), acc1);
            }
        }
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(acc0, acc1));
    float s = 0.0f;
    for (int t = 0; t < 8; t++) s += lanes[t];
    return s;
}

static TP_AVX2 void rows_avx2(int kind, const uint8_t *data, size_t stride, size_t r0, size_t r1, const float *x,
                              size_t k, float *y)
{
    for (size_t r = r0; r < r1; r++) y[r] = dot_avx2(kind, data + r * stride, x, k);
}

/* AVX-512, the legacy formats: 16 lanes hold a block's low nibbles (values 0-15) and another 16 its high
 * ones (values 16-31), so a block is two conversions and two multiply-adds; two rows at a time share the
 * loads of x and keep two independent chains of multiply-adds in flight. */
static TP_AVX512 inline __m512 q4_times_x(const uint8_t *qs, __m512 x0, __m512 x1)
{
    /* a nibble's float is a look-up in the register table 0..15 (permutexvar reads an index's low 4 bits) */
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qs));
    __m512 lo = _mm512_permutexvar_ps(bytes, iota), hi = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), iota);
    return _mm512_fmadd_ps(hi, x1, _mm512_mul_ps(lo, x0));
}

static TP_AVX512 inline __m512 q8_times_x(const uint8_t *qs, __m512 x0, __m512 x1)
{
    __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)qs)));
    __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(qs + 16))));
    return _mm512_fmadd_ps(hi, x1, _mm512_mul_ps(lo, x0));
}

/* acc += (one block's sum_j w_j x_j, in 16 lanes) for the block at b; xs = x0 + x1. */
static TP_AVX512 inline __m512 block_avx512(int kind, const uint8_t *b, __m512 x0, __m512 x1, __m512 xs,
                                           __m512 acc)
{
    __m128 dm = scales_f16c(b);
    __m512 d = _mm512_broadcastss_ps(dm);
    if (kind == TP_GGUF_Q4_1) /* d * sum q x + m * sum x */
        return _mm512_fmadd_ps(_mm512_broadcastss_ps(_mm_movehdup_ps(dm)), xs,
                               _mm512_fmadd_ps(d, q4_times_x(b + 4, x0, x1), acc));
    if (kind == TP_GGUF_Q4_0) /* d * (sum q x - 8 sum x) */
        return _mm512_fmadd_ps(d, _mm512_fnmadd_ps(_mm512_set1_ps(8.0f), xs, q4_times_x(b + 2, x0, x1)), acc);
    return _mm512_fmadd_ps(d, q8_times_x(b + 2, x0, x1), acc); /* Q8_0: d * sum q x */
}

#define PREFETCH_ROWS 8
static TP_AVX512 void rows_avx512(int kind, const uint8_t *data, size_t stride, size_t r0, size_t r1,
                                  const float *x, size_t k, float *y)
{
    size_t ts = tp_gguf_type_size(kind), r = r0;
    for (; r + 2 <= r1; r += 2) {
        const uint8_t *a = data + r * stride, *b = a + stride;
        /* the rows a few pairs ahead, asked for now: the decoding step streams W once from memory, and
         * the prefetchers alone leave the core waiting on it */
        for (size_t off = 0; off < 2 * stride; off += 64) /* a hint: an address past W never faults */
            _mm_prefetch((const char *)((uintptr_t)a + PREFETCH_ROWS * stride + off), _MM_HINT_T0);
        __m512 acc_a = _mm512_setzero_ps(), acc_b = _mm512_setzero_ps();
        for (size_t b0 = 0; b0 < k; b0 += QK, a += ts, b += ts) {
            __m512 x0 = _mm512_loadu_ps(x + b0), x1 = _mm512_loadu_ps(x + b0 + 16), xs = _mm512_add_ps(x0, x1);
            acc_a = block_avx512(kind, a, x0, x1, xs, acc_a);
            acc_b = block_avx512(kind, b, x0, x1, xs, acc_b);
        }
        y[r] = _mm512_reduce_add_ps(acc_a);
        y[r + 1] = _mm512_reduce_add_ps(acc_b);
    }
    for (; r < r1; r++) { /* the odd row: the same arithmetic, alone */
        const uint8_t *a = data + r * stride;
        __m512 acc = _mm512_setzero_ps();
        for (size_t b0 = 0; b0 < k; b0 += QK, a += ts) {
            __m512 x0 = _mm512_loadu_ps(x + b0), x1 = _mm512_loadu_ps(x + b0 + 16);
            acc = block_avx512(kind, a, x0, x1, _mm512_add_ps(x0, x1), acc);
        }
        y[r] = _mm512_reduce_add_ps(acc);
    }
}
#endif

void tp_gguf_dot_rows(int kind, const uint8_t *data, size_t r0, size_t r1, const float *x, size_t k, float *y)
{
    size_t stride = tp_gguf_row_bytes(kind, k);
#if defined(TP_GGUF_X86)
    int isa = tp_kernel_isa(); /* the GEMM's choice (cmatmul.set_kernel narrows it for tests) */
    int legacy = kind == TP_GGUF_Q4_0 || kind == TP_GGUF_Q4_1 || kind == TP_GGUF_Q8_0;
    if (isa == TP_ISA_AVX512 && legacy && __builtin_cpu_supports("f16c")) {
        rows_avx512(kind, data, stride, r0, r1, x, k, y);
        return;
    }
    if (isa >= TP_ISA_AVX2 && __builtin_cpu_supports("f16c")) {
        rows_avx2(kind, data, stride, r0, r1, x, k, y);
        return;
    }
#endif
    rows_generic(kind, data, stride, r0, r1, x, k, y);
}
