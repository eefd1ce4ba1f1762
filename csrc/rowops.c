/* rowops.c: the row kernels of rowops.h: choosing the instruction set, and sharing rows among threads.
 * The per-row arithmetic is in rowops_kernel.h; the references are the NumPy functions in tinypeft/ops. */
#include "rowops.h"
#include "matmul.h"
#include "parallel.h"

#include <stdlib.h>
#include <string.h>

#include <math.h>

typedef struct {
    void (*softmax_row)(const float *x, float *y, size_t n, int safe);
    void (*norm_row)(const float *x, const float *w, const float *b, float *y, float *xhat, float *rstd,
                     size_t n, float eps, int centered);
    float (*row_shift)(const float *x, size_t n);
    float (*row_sumexp)(const float *x, float shift, float *y, size_t n);
    void (*scaled_exp_row)(const float *x, float lse, float coef, float *dz, size_t n);
    void (*silu_span)(const float *x, float *s, float *y, size_t n);
    void (*gelu_span)(const float *x, float *cdf, float *y, size_t n);
    void (*attend_head)(const float *q, ptrdiff_t qs, const float *k, ptrdiff_t ks, const float *v, ptrdiff_t vs,
                        const uint8_t *mb, const float *mf, ptrdiff_t mrow, ptrdiff_t mcol, float *p, float *o,
                        ptrdiff_t os, size_t L, size_t S, size_t E, size_t Ev, float scale, float *kt);
} rowops_kernel_t;

#define TP_KERNEL_FILE "rowops_kernel.h"
#include "isa_instances.h"

static const rowops_kernel_t *rk(void)
{
#if defined(TP_ISA_X86)
    static const rowops_kernel_t *const by_isa[] = {&rowops_kernel_generic, &rowops_kernel_avx2,
                                                    &rowops_kernel_avx512};
    return by_isa[tp_kernel_isa()];
#else
    return &rowops_kernel_generic;
#endif
}

/* A thread is worth waking for this many elements; chunks of rows hold at least a quarter of that. */
#define MIN_PER_THREAD (1u << 16)

typedef struct {
    const rowops_kernel_t *k;
    int op;
    size_t rows, cols, per_chunk;
    const float *x, *w, *b, *lse, *coef, *tcoef;
    float *y, *xhat, *rstd, *lse_out, *loss;
    const int64_t *target;
    int64_t ignore;
    float eps;
    int safe;
} rows_job;

enum { SOFTMAX, LAYER_NORM, RMS_NORM, CE_FORWARD, CE_BACKWARD };

static void rows_chunk(void *p, size_t c)
{
    rows_job *j = p;
    size_t r0 = c * j->per_chunk, r1 = r0 + j->per_chunk < j->rows ? r0 + j->per_chunk : j->rows;
    size_t n = j->cols;
    for (size_t r = r0; r < r1; r++) {
        const float *x = j->x + r * n;
        switch (j->op) {
        case SOFTMAX: j->k->softmax_row(x, j->y + r * n, n, j->safe); break;
        case LAYER_NORM:
        case RMS_NORM:
            j->k->norm_row(x, j->w, j->b, j->y + r * n, j->xhat ? j->xhat + r * n : NULL, j->rstd + r, n, j->eps,
                           j->op == LAYER_NORM);
            break;
        case CE_FORWARD: {
            /* log sum exp(x) = shift + log(sum exp(x - shift)), the shift as the reference takes it */
            float shift = j->k->row_shift(x, n);
            float lse = shift + logf(j->k->row_sumexp(x, shift, NULL, n));
            int64_t t = j->target[r];
            j->lse_out[r] = lse;
            j->loss[r] = t == j->ignore ? 0.0f : lse - x[t];
            break;
        }
        case CE_BACKWARD: {
            float *dz = j->y + r * n;
            j->k->scaled_exp_row(x, j->lse[r], j->coef[r], dz, n);
            int64_t t = j->target[r];
            if (t != j->ignore) dz[t] -= j->tcoef[r];
            break;
        }
        }
    }
}

static void run_rows(rows_job *j, int nthreads)
{
    if (j->rows == 0) return;
    j->k = rk();
    double total = (double)j->rows * (double)j->cols;
    if (nthreads < 1) nthreads = 1;
    if (total < (double)MIN_PER_THREAD * nthreads) nthreads = (int)(total / MIN_PER_THREAD);
    if (nthreads < 1) nthreads = 1;
    size_t per = (MIN_PER_THREAD / 4 + j->cols - 1) / (j->cols ? j->cols : 1);
    if (per < 1) per = 1;
    j->per_chunk = per;
    tp_parallel(rows_chunk, j, (j->rows + per - 1) / per, nthreads);
}

void tp_softmax_f32(const float *x, float *y, size_t rows, size_t cols, int safe, int nthreads)
{
    rows_job j = {0};
    j.op = SOFTMAX, j.rows = rows, j.cols = cols, j.x = x, j.y = y, j.safe = safe;
    run_rows(&j, nthreads);
}

void tp_layer_norm_f32(const float *x, const float *w, const float *b, float *y, float *xhat, float *rstd,
                       size_t rows, size_t cols, float eps, int nthreads)
{
    rows_job j = {0};
    j.op = LAYER_NORM, j.rows = rows, j.cols = cols, j.x = x, j.w = w, j.b = b, j.y = y, j.xhat = xhat;
    j.rstd = rstd, j.eps = eps;
    run_rows(&j, nthreads);
}

void tp_rms_norm_f32(const float *x, const float *w, float *y, float *xhat, float *rstd, size_t rows,
                     size_t cols, float eps, int nthreads)
{
    rows_job j = {0};
    j.op = RMS_NORM, j.rows = rows, j.cols = cols, j.x = x, j.w = w, j.y = y, j.xhat = xhat, j.rstd = rstd;
    j.eps = eps;
    run_rows(&j, nthreads);
}

void tp_cross_entropy_f32(const float *x, const int64_t *target, int64_t ignore_index, float *lse, float *loss,
                          size_t rows, size_t cols, int nthreads)
{
    rows_job j = {0};
    j.op = CE_FORWARD, j.rows = rows, j.cols = cols, j.x = x, j.target = target, j.ignore = ignore_index;
    j.lse_out = lse, j.loss = loss;
    run_rows(&j, nthreads);
}

void tp_cross_entropy_backward_f32(const float *x, const int64_t *target, int64_t ignore_index, const float *lse,
                                   const float *coef, const float *tcoef, float *dz, size_t rows, size_t cols,
                                   int nthreads)
{
    rows_job j = {0};
    j.op = CE_BACKWARD, j.rows = rows, j.cols = cols, j.x = x, j.target = target, j.ignore = ignore_index;
    j.lse = lse, j.coef = coef, j.tcoef = tcoef, j.y = dz;
    run_rows(&j, nthreads);
}

/* SiLU and GELU are elementwise: the flat array is cut into spans of SPAN elements, shared among the
 * threads; each writes its activation y and the factor its backward reads (sigmoid, the normal cdf). */
#define SPAN 16384
typedef void (*span_fn)(const float *x, float *s, float *y, size_t n);
typedef struct {
    span_fn span;
    const float *x;
    float *s, *y;
    size_t n;
} span_job;

static void span_chunk(void *p, size_t c)
{
    span_job *j = p;
    size_t i0 = c * SPAN, len = j->n - i0 < SPAN ? j->n - i0 : SPAN;
    j->span(j->x + i0, j->s ? j->s + i0 : NULL, j->y + i0, len);
}

static void run_spans(span_fn span, const float *x, float *s, float *y, size_t n, int nthreads)
{
    span_job j = {span, x, s, y, n};
    if (nthreads < 1 || n < (size_t)MIN_PER_THREAD * nthreads) nthreads = (int)(n / MIN_PER_THREAD);
    tp_parallel(span_chunk, &j, (n + SPAN - 1) / SPAN, nthreads < 1 ? 1 : nthreads);
}

void tp_silu_f32(const float *x, float *s, float *y, size_t n, int nthreads)
{
    run_spans(rk()->silu_span, x, s, y, n, nthreads);
}

void tp_gelu_f32(const float *x, float *cdf, float *y, size_t n, int nthreads)
{
    run_spans(rk()->gelu_span, x, cdf, y, n, nthreads);
}

/* Attention: the (batch, head) pairs are shared among the threads, a few pairs a chunk; each chunk
 * allocates its own scratch for attend_head. */
typedef struct {
    const rowops_kernel_t *k;
    const tp_attention_args *a;
    size_t per_chunk;
    int failed;
} attn_job;

static void attn_chunk(void *p, size_t c)
{
    attn_job *j = p;
    const tp_attention_args *a = j->a;
    size_t pairs = a->B * a->H, c0 = c * j->per_chunk, c1 = c0 + j->per_chunk < pairs ? c0 + j->per_chunk : pairs;
    size_t Sp = (a->S + 15) / 16 * 16; /* whole vectors of the widest kernel */
    float *kt = malloc((a->E + 4) * Sp * sizeof(float));
    if (!kt) {
        __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (size_t bh = c0; bh < c1; bh++) {
        size_t b = bh / a->H, h = bh % a->H, hk = h / (a->H / a->Hk); /* query head h reads key head hk */
        const ptrdiff_t *qs = a->q_strides, *ks = a->k_strides, *vs = a->v_strides, *os = a->o_strides;
        const ptrdiff_t *ms = a->mask_strides;
        ptrdiff_t moff = b * ms[0] + h * ms[1];
        j->k->attend_head(a->q + b * qs[0] + h * qs[1], qs[2], a->k + b * ks[0] + hk * ks[1], ks[2],
                          a->v + b * vs[0] + hk * vs[1], vs[2], a->mask_bool ? a->mask_bool + moff : NULL,
                          a->mask_add ? a->mask_add + moff : NULL, ms[2], ms[3], a->p + bh * a->L * a->S,
                          a->o + b * os[0] + h * os[1], os[2], a->L, a->S, a->E, a->Ev, a->scale, kt);
    }
    free(kt);
}

int tp_attention_f32(const tp_attention_args *a, int nthreads)
{
    attn_job j = {rk(), a, 1, 0};
    size_t pairs = a->B * a->H;
    if (pairs == 0 || a->L == 0) return 0;
    double work = (double)pairs * a->L * a->S * (a->E + a->Ev);
    if (nthreads < 1 || work < (double)MIN_PER_THREAD * 4 * nthreads) nthreads = (int)(work / (MIN_PER_THREAD * 4));
    if (nthreads < 1) nthreads = 1;
    j.per_chunk = (pairs + 4 * nthreads - 1) / (4 * nthreads); /* a few chunks a thread: late threads take fewer */
    tp_parallel(attn_chunk, &j, (pairs + j.per_chunk - 1) / j.per_chunk, nthreads);
    return j.failed ? -1 : 0;
}
