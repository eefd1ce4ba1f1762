/* rowops.c: the row kernels of rowops.h: choosing the instruction set, and sharing rows among threads.
 * The per-row arithmetic is in rowops_kernel.h; the references are the NumPy functions in tinypeft/ops. */
#include "rowops.h"
#include "matmul.h"
#include "parallel.h"

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
            j->k->norm_row(x, j->w, j->b, j->y + r * n, j->xhat + r * n, j->rstd + r, n, j->eps, j->op == LAYER_NORM);
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
    j->span(j->x + i0, j->s + i0, j->y + i0, len);
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
