/* quant.c: dequantize, and matmuls that dequantize a panel at a time inside the blocked GEMM.
 *
 *   forward   y  = x W^T:  W's rows are cut into panels of PANEL rows; each panel is dequantized into
 *                          a buffer [PANEL, k] and multiplied by tp_matmul_f32, writing y[:, panel].
 *                          The panels are chunks of parallel.h's lasting thread pool.
 *   backward  dx = g W:    W's columns are cut into slabs of PANEL columns; a slab [n, PANEL] is
 *                          dequantized and dx[:, slab] = g @ slab; the slabs are the pool's chunks.
 *   decoding  y  = W x:    one row of x; each weight is dequantized as it is read; chunks of rows are
 *                          shared by parallel.h's lasting thread pool.
 * No call ever holds a float32 copy of the whole weight: at most one panel per thread.
 *
 * Bit-exactness with NumPy: each dequantized value is one float multiply (code * scale), and the
 * double-quantized absmax is a multiply then an add, each rounded, as NumPy rounds them. The build uses
 * -ffp-contract=fast, which could fuse that multiply-add into one FMA (one rounding), so contraction is
 * switched off for this file's functions.
 */
#include "quant.h"
#include "gguf_quant.h"
#include "matmul.h"
#include "parallel.h"

#include <stdlib.h>


#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#define TP_NO_CONTRACT
#elif defined(__GNUC__)
#define TP_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define TP_NO_CONTRACT
#endif

#define PANEL 256

TP_NO_CONTRACT
void tp_dequantize_absmax(const uint8_t *q, const float *code8, const float *absmax2, size_t blocksize2,
                          float offset, size_t count, float *out)
{
    for (size_t i = 0; i < count; i++) {
        float v = code8[q[i]] * absmax2[i / blocksize2];
        out[i] = v + offset;
    }
}

/* byte b of a 4-bit weight -> its two values' codes, the high nibble's first: one look-up per byte. */
typedef struct {
    float v[256][2];
} pair_table;

static void make_pairs(const float *code, pair_table *t)
{
    for (int b = 0; b < 256; b++) {
        t->v[b][0] = code[b >> 4];
        t->v[b][1] = code[b & 0x0F];
    }
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define TP_Q_X86 1
#include <immintrin.h>

/* 16 values from 8 bytes with AVX2: each nibble looks its code up in two 8-entry register tables
 * (permutevar8x32 takes the low 3 bits; a blend picks the upper table for indices 8-15), then the
 * high/low values are interleaved back into memory order and multiplied by the block's scale: the
 * same one multiply per value as the scalar loop, so the same bits. n16: how many groups of 16. */
__attribute__((target("avx2"))) static void deq_4bit_avx2(const uint8_t *bytes, size_t n16, const float *code,
                                                         float s, float *out)
{
    __m256 lo8 = _mm256_loadu_ps(code), hi8 = _mm256_loadu_ps(code + 8), scale = _mm256_set1_ps(s);
    __m256i fifteen = _mm256_set1_epi32(15), seven = _mm256_set1_epi32(7);
    for (size_t g = 0; g < n16; g++, bytes += 8, out += 16) {
        __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)bytes));
        __m256i qh = _mm256_srli_epi32(b, 4), ql = _mm256_and_si256(b, fifteen);
        __m256 vh = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo8, qh), _mm256_permutevar8x32_ps(hi8, qh),
                                     _mm256_castsi256_ps(_mm256_cmpgt_epi32(qh, seven)));
        __m256 vl = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo8, ql), _mm256_permutevar8x32_ps(hi8, ql),
                                     _mm256_castsi256_ps(_mm256_cmpgt_epi32(ql, seven)));
        __m256 a = _mm256_unpacklo_ps(vh, vl), c = _mm256_unpackhi_ps(vh, vl); /* h0 l0 h1 l1 | h4 l4 h5 l5 */
        _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_permute2f128_ps(a, c, 0x20), scale));
        _mm256_storeu_ps(out + 8, _mm256_mul_ps(_mm256_permute2f128_ps(a, c, 0x31), scale));
    }
}

static int have_avx2(void)
{
    static int yes = -1; /* asked once; two threads asking at once get the same answer */
    if (yes < 0) {
        __builtin_cpu_init();
        yes = __builtin_cpu_supports("avx2");
    }
    return yes;
}
#endif

/* One row's columns [c0, c1) of W into out (pairs: W's code table as make_pairs lays it out). */
static void deq_row(const tp_qweight *w, const pair_table *pairs, size_t r, size_t c0, size_t c1, float *out)
{
    if (tp_gguf_supported(w->kind)) { /* GGUF's blocks: rows of whole blocks, decoded by gguf_quant.c */
        tp_gguf_dequantize_row(w->kind, w->data + r * tp_gguf_row_bytes(w->kind, w->k), c0, c1, out);
        return;
    }
    if (w->kind == TP_Q8) {
        const int8_t *row = (const int8_t *)w->data + r * w->k;
        float s = w->scale[r];
        for (size_t c = c0; c < c1; c++) out[c - c0] = (float)row[c] * s;
        return;
    }
    size_t i = r * w->k + c0, end = r * w->k + c1;
    size_t bs = w->blocksize;
    while (i < end) {
        /* within one block the scale is fixed */
        size_t block_end = (i / bs + 1) * bs;
        if (block_end > end) block_end = end;
        float s = w->scale[i / bs];
        if (i & 1) { /* an odd start: the low nibble of a byte alone */
            *out++ = pairs->v[w->data[i >> 1]][1] * s;
            i++;
        }
#if defined(TP_Q_X86)
        if (have_avx2() && block_end - i >= 16) { /* i is even here: whole bytes, 16 values a step */
            size_t n16 = (block_end - i) / 16;
            deq_4bit_avx2(w->data + (i >> 1), n16, w->code, s, out);
            i += 16 * n16;
            out += 16 * n16;
        }
#endif
        for (; i + 1 < block_end; i += 2, out += 2) { /* whole bytes: two values each */
            const float *p = pairs->v[w->data[i >> 1]];
            out[0] = p[0] * s;
            out[1] = p[1] * s;
        }
        if (i < block_end) { /* an odd end: the high nibble alone */
            *out++ = pairs->v[w->data[i >> 1]][0] * s;
            i++;
        }
    }
}

void tp_dequantize(const tp_qweight *w, size_t r0, size_t r1, size_t c0, size_t c1, float *out, size_t ldo)
{
    pair_table pairs;
    if (w->kind == TP_Q4) make_pairs(w->code, &pairs);
    for (size_t r = r0; r < r1; r++) deq_row(w, &pairs, r, c0, c1, out + (r - r0) * ldo);
}

/* -- threads: a chunk of the lasting pool's work is one panel ------------------------------------------ */
typedef struct {
    const tp_qweight *w;
    size_t m;
    size_t panel;            /* rows (forward) or columns (backward) per panel */
    const float *in;
    size_t ldin;
    float *out;
    size_t ldout;
    int transposed;          /* 0: y = x W^T (row panels), 1: dx = g W (column slabs) */
    int status;              /* any failure; which one does not matter */
} qjob;

static void run_panel(void *arg, size_t p)
{
    qjob *j = arg;
    const tp_qweight *w = j->w;
    size_t n = w->n, k = w->k, s0 = p * j->panel;
    float *buf = malloc(sizeof(float) * j->panel * (j->transposed ? n : k));
    if (!buf) {
        j->status = -1;
        return;
    }
    if (!j->transposed) {
        size_t s1 = s0 + j->panel < n ? s0 + j->panel : n, rows = s1 - s0;
        tp_dequantize(w, s0, s1, 0, k, buf, k); /* buf [rows, k] */
        /* y[:, s0:s1] = x [m, k] @ buf^T [k, rows] */
        if (tp_matmul_f32(j->m, rows, k, j->in, (ptrdiff_t)j->ldin, 1, buf, 1, (ptrdiff_t)k, j->out + s0,
                          (ptrdiff_t)j->ldout, 1))
            j->status = -1;
    } else {
        size_t s1 = s0 + j->panel < k ? s0 + j->panel : k, cols = s1 - s0;
        tp_dequantize(w, 0, n, s0, s1, buf, cols); /* buf [n, cols] */
        /* dx[:, s0:s1] = g [m, n] @ buf [n, cols] */
        if (tp_matmul_f32(j->m, cols, n, j->in, (ptrdiff_t)j->ldin, 1, buf, (ptrdiff_t)cols, 1, j->out + s0,
                          (ptrdiff_t)j->ldout, 1))
            j->status = -1;
    }
    free(buf);
}

/* Cut `dim` (rows or columns of W) into panels of at most PANEL, a multiple of the thread count when
 * there are several (so that the pool can balance them), each a multiple of 8 wide (the GEMM's tile). */
static int fan_out(qjob *job, size_t dim, int nthreads)
{
    if (nthreads < 1) nthreads = 1;
    size_t rounds = (dim + (size_t)PANEL * nthreads - 1) / ((size_t)PANEL * nthreads);
    size_t panel = (dim + rounds * nthreads - 1) / (rounds * nthreads);
    panel = (panel + 7) / 8 * 8;
    job->panel = panel;
    job->status = 0;
    tp_parallel(run_panel, job, (dim + panel - 1) / panel, nthreads);
    return job->status;
}

int tp_qmatmul(const tp_qweight *w, size_t m, const float *x, size_t ldx, float *y, size_t ldy, int nthreads)
{
    qjob job = {w, m, 0, x, ldx, y, ldy, 0, 0};
    return fan_out(&job, w->n, nthreads);
}

int tp_qmatmul_t(const tp_qweight *w, size_t m, const float *g, size_t ldg, float *dx, size_t lddx, int nthreads)
{
    qjob job = {w, m, 0, g, ldg, dx, lddx, 1, 0};
    return fan_out(&job, w->k, nthreads);
}

/* -- one-row GEMV: chunks of rows shared by the lasting thread pool (parallel.h) ------------------------
 * Several weights that read the same x (a layer's q, k and v; its gate and up) are one job: their rows are
 * cut into chunks together, so the threads wake once for all of them and y holds their outputs end to end. */
#define GEMV_MAX_WEIGHTS 8

typedef struct {
    const tp_qweight *w; /* count weights */
    size_t count;
    const float *x;
    float *y;
    size_t rows[GEMV_MAX_WEIGHTS];   /* rows per chunk, per weight */
    size_t first[GEMV_MAX_WEIGHTS + 1]; /* the first chunk of each weight; first[count] = all chunks */
    size_t y_at[GEMV_MAX_WEIGHTS];   /* where each weight's outputs start in y */
} gemv_job;

#if defined(TP_Q_X86)
#define Q4_AVX512_MAX_K 8192
#define Q4_PREFETCH_ROWS 16

/* AVX-512, 4-bit rows of whole blocks: byte i holds value 2i (high nibble) and 2i + 1 (low), so 16 bytes
 * are 16 even and 16 odd values; each nibble looks its code up in a 16-entry register table (permutexvar
 * reads an index's low 4 bits) and multiplies x's even or odd entries (xe, xo: x deinterleaved once per
 * call). A block's sum of code * x is then scaled by its absmax: sum_j code_j s x_j = s sum_j code_j x_j. */
__attribute__((target("avx512f"))) static void rows_4bit_avx512(const tp_qweight *w, const float *x, float *y,
                                                               size_t r0, size_t r1)
{
    size_t k = w->k, bs = w->blocksize, half = k / 2;
    float xe[Q4_AVX512_MAX_K / 2], xo[Q4_AVX512_MAX_K / 2];
    for (size_t i = 0; i < half; i++) {
        xe[i] = x[2 * i];
        xo[i] = x[2 * i + 1];
    }
    __m512 table = _mm512_loadu_ps(w->code);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *q = w->data + r * half;
        const float *scale = w->scale + r * (k / bs);
        for (size_t off = 0; off < half; off += 64) /* a few rows ahead: see gguf_quant.c's rows_avx512 */
            _mm_prefetch((const char *)((uintptr_t)q + Q4_PREFETCH_ROWS * half + off), _MM_HINT_T0);
        __m512 acc = _mm512_setzero_ps();
        for (size_t b = 0, j = 0; b < k / bs; b++) {
            __m512 part = _mm512_setzero_ps();
            for (size_t end = j + bs / 2; j < end; j += 16) {
                __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + j)));
                part = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), table), _mm512_loadu_ps(xe + j),
                                       part);
                part = _mm512_fmadd_ps(_mm512_permutexvar_ps(v, table), _mm512_loadu_ps(xo + j), part);
            }
            acc = _mm512_fmadd_ps(_mm512_set1_ps(scale[b]), part, acc);
        }
        y[r] = _mm512_reduce_add_ps(acc);
    }
}
#endif

static void gemv_rows(const tp_qweight *w, const float *x, float *y, size_t r0, size_t r1)
{
    if (tp_gguf_supported(w->kind)) { /* each block multiplied as it is read, never decoded to a row */
        tp_gguf_dot_rows(w->kind, w->data, r0, r1, x, w->k, y);
        return;
    }
#if defined(TP_Q_X86)
    if (w->kind == TP_Q4 && tp_kernel_isa() == TP_ISA_AVX512 && w->blocksize % 32 == 0 && w->k % w->blocksize == 0 &&
        w->k <= Q4_AVX512_MAX_K) { /* rows of whole blocks, 32 values a step */
        rows_4bit_avx512(w, x, y, r0, r1);
        return;
    }
#endif
    float row[256];
    pair_table pairs;
    if (w->kind == TP_Q4) make_pairs(w->code, &pairs);
    for (size_t r = r0; r < r1; r++) {
        float acc[8] = {0}; /* 8 running sums: the compiler keeps them in one vector */
        for (size_t c0 = 0; c0 < w->k; c0 += 256) {
            size_t c1 = c0 + 256 < w->k ? c0 + 256 : w->k, c = c0;
            deq_row(w, &pairs, r, c0, c1, row); /* 256 values at a time, on the stack */
            for (; c + 8 <= c1; c += 8)
                for (int t = 0; t < 8; t++) acc[t] += x[c + t] * row[c + t - c0];
            for (; c < c1; c++) acc[0] += x[c] * row[c - c0];
        }
        float sum = 0.0f;
        for (int t = 0; t < 8; t++) sum += acc[t];
        y[r] = sum;
    }
}

static void gemv_chunk(void *arg, size_t chunk)
{
    const gemv_job *j = arg;
    size_t i = 0;
    while (chunk >= j->first[i + 1]) i++;
    const tp_qweight *w = j->w + i;
    size_t r0 = (chunk - j->first[i]) * j->rows[i], r1 = r0 + j->rows[i] < w->n ? r0 + j->rows[i] : w->n;
    gemv_rows(w, j->x, j->y + j->y_at[i], r0, r1);
}

/* Each row's sum is made by one thread, whichever: the result does not depend on the thread count. */
int tp_qgemv_many(const tp_qweight *w, size_t count, const float *x, float *y, int nthreads)
{
    if (count > GEMV_MAX_WEIGHTS) return -1;
    gemv_job job = {w, count, x, y, {0}, {0}, {0}};
    for (size_t i = 0; i < count; i++) {
        if (i && w[i].k != w[0].k) return -1;
        job.rows[i] = (32 * 1024 + w[i].k - 1) / w[i].k; /* about 32K weights a chunk */
        job.first[i + 1] = job.first[i] + (w[i].n + job.rows[i] - 1) / job.rows[i];
        if (i + 1 < count) job.y_at[i + 1] = job.y_at[i] + w[i].n;
    }
    if (job.first[count]) tp_parallel(gemv_chunk, &job, job.first[count], nthreads);
    return 0;
}

void tp_qgemv(const tp_qweight *w, const float *x, float *y, int nthreads) { tp_qgemv_many(w, 1, x, y, nthreads); }
