/* quant.c: dequantize, and matmuls that dequantize a panel at a time inside the blocked GEMM.
 *
 *   forward   y  = x W^T:  W's rows are cut into panels of PANEL rows; each panel is dequantized into
 *                          a thread's own buffer [PANEL, k] and multiplied by tp_matmul_f32, writing
 *                          y[:, panel]. Threads take whole panels.
 *   backward  dx = g W:    W's columns are cut into slabs of PANEL columns; a slab [n, PANEL] is
 *                          dequantized and dx[:, slab] = g @ slab. Threads take whole slabs.
 *   decoding  y  = W x:    one row of x; each weight is dequantized as it is read, rows split among threads.
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

#include <stdlib.h>

#if !defined(_WIN32)
#define TP_Q_PTHREADS 1
#include <pthread.h>
#endif

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

/* -- threads: a job is a range of panels ----------------------------------------------------------- */
typedef struct {
    const tp_qweight *w;
    size_t m, p0, p1;        /* panels [p0, p1) */
    size_t panel;            /* rows (forward) or columns (backward) per panel */
    const float *in;
    size_t ldin;
    float *out;
    size_t ldout;
    int transposed;          /* 0: y = x W^T (row panels), 1: dx = g W (column slabs) */
    int status;
} qjob;

static void *run_qjob(void *arg)
{
    qjob *j = arg;
    const tp_qweight *w = j->w;
    size_t n = w->n, k = w->k;
    size_t panel = j->panel;
    float *buf = malloc(sizeof(float) * panel * (j->transposed ? n : k));
    if (!buf) {
        j->status = -1;
        return NULL;
    }
    for (size_t p = j->p0; p < j->p1; p++) {
        size_t s0 = p * panel;
        if (!j->transposed) {
            size_t s1 = s0 + panel < n ? s0 + panel : n, rows = s1 - s0;
            tp_dequantize(w, s0, s1, 0, k, buf, k); /* buf [rows, k] */
            /* y[:, s0:s1] = x [m, k] @ buf^T [k, rows] */
            if (tp_matmul_f32(j->m, rows, k, j->in, (ptrdiff_t)j->ldin, 1, buf, 1, (ptrdiff_t)k,
                              j->out + s0, (ptrdiff_t)j->ldout, 1))
                j->status = -1;
        } else {
            size_t s1 = s0 + panel < k ? s0 + panel : k, cols = s1 - s0;
            tp_dequantize(w, 0, n, s0, s1, buf, cols); /* buf [n, cols] */
            /* dx[:, s0:s1] = g [m, n] @ buf [n, cols] */
            if (tp_matmul_f32(j->m, cols, n, j->in, (ptrdiff_t)j->ldin, 1, buf, (ptrdiff_t)cols, 1,
                              j->out + s0, (ptrdiff_t)j->ldout, 1))
                j->status = -1;
        }
    }
    free(buf);
    return NULL;
}

/* Cut `dim` (rows or columns of W) into panels of at most PANEL, as many as a multiple of the thread
 * count so that every thread gets the same work, each a multiple of 8 wide (the GEMM's tile). */
static int fan_out(qjob *whole, size_t dim, int nthreads)
{
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    size_t rounds = (dim + (size_t)PANEL * nthreads - 1) / ((size_t)PANEL * nthreads);
    size_t panel = (dim + rounds * nthreads - 1) / (rounds * nthreads);
    panel = (panel + 7) / 8 * 8;
    size_t npanels = (dim + panel - 1) / panel;
    whole->panel = panel;
    if ((size_t)nthreads > npanels) nthreads = (int)npanels;
    qjob jobs[64];
    size_t step = (npanels + nthreads - 1) / nthreads;
    int njobs = 0;
    for (size_t p = 0; p < npanels; p += step) {
        jobs[njobs] = *whole;
        jobs[njobs].p0 = p;
        jobs[njobs].p1 = p + step < npanels ? p + step : npanels;
        jobs[njobs].status = 0;
        njobs++;
    }
#if defined(TP_Q_PTHREADS)
    pthread_t tids[64];
    char started[64] = {0};
    for (int t = 1; t < njobs; t++) started[t] = pthread_create(&tids[t], NULL, run_qjob, &jobs[t]) == 0;
    run_qjob(&jobs[0]);
    for (int t = 1; t < njobs; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            run_qjob(&jobs[t]);
    }
#else
    for (int t = 0; t < njobs; t++) run_qjob(&jobs[t]);
#endif
    int status = 0;
    for (int t = 0; t < njobs; t++)
        if (jobs[t].status) status = jobs[t].status;
    return status;
}

int tp_qmatmul(const tp_qweight *w, size_t m, const float *x, size_t ldx, float *y, size_t ldy, int nthreads)
{
    qjob whole = {w, m, 0, 0, 0, x, ldx, y, ldy, 0, 0};
    return fan_out(&whole, w->n, nthreads);
}

int tp_qmatmul_t(const tp_qweight *w, size_t m, const float *g, size_t ldg, float *dx, size_t lddx, int nthreads)
{
    qjob whole = {w, m, 0, 0, 0, g, ldg, dx, lddx, 1, 0};
    return fan_out(&whole, w->k, nthreads);
}

/* -- one-row GEMV ---------------------------------------------------------------------------------- */
typedef struct {
    const tp_qweight *w;
    const float *x;
    float *y;
    size_t r0, r1;
} gemv_job;

static void *run_gemv(void *arg)
{
    gemv_job *j = arg;
    const tp_qweight *w = j->w;
    float row[256];
    pair_table pairs;
    if (w->kind == TP_Q4) make_pairs(w->code, &pairs);
    if (tp_gguf_supported(w->kind)) { /* a block decoded, then multiplied, as it is read */
        size_t stride = tp_gguf_row_bytes(w->kind, w->k);
        for (size_t r = j->r0; r < j->r1; r++) j->y[r] = tp_gguf_dot_row(w->kind, w->data + r * stride, j->x, w->k);
        return NULL;
    }
    for (size_t r = j->r0; r < j->r1; r++) {
        float acc[8] = {0}; /* 8 running sums: the compiler keeps them in one vector */
        for (size_t c0 = 0; c0 < w->k; c0 += 256) {
            size_t c1 = c0 + 256 < w->k ? c0 + 256 : w->k, c = c0;
            deq_row(w, &pairs, r, c0, c1, row); /* 256 values at a time, on the stack */
            for (; c + 8 <= c1; c += 8)
                for (int t = 0; t < 8; t++) acc[t] += j->x[c + t] * row[c + t - c0];
            for (; c < c1; c++) acc[0] += j->x[c] * row[c - c0];
        }
        float sum = 0.0f;
        for (int t = 0; t < 8; t++) sum += acc[t];
        j->y[r] = sum;
    }
    return NULL;
}

void tp_qgemv(const tp_qweight *w, const float *x, float *y, int nthreads)
{
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    if ((size_t)nthreads > w->n) nthreads = (int)(w->n ? w->n : 1);
    gemv_job jobs[64];
    size_t step = (w->n + nthreads - 1) / nthreads;
    int njobs = 0;
    for (size_t r = 0; r < w->n; r += step, njobs++) {
        jobs[njobs] = (gemv_job){w, x, y, r, r + step < w->n ? r + step : w->n};
    }
#if defined(TP_Q_PTHREADS)
    pthread_t tids[64];
    char started[64] = {0};
    for (int t = 1; t < njobs; t++) started[t] = pthread_create(&tids[t], NULL, run_gemv, &jobs[t]) == 0;
    if (njobs) run_gemv(&jobs[0]);
    for (int t = 1; t < njobs; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            run_gemv(&jobs[t]);
    }
#else
    for (int t = 0; t < njobs; t++) run_gemv(&jobs[t]);
#endif
}
