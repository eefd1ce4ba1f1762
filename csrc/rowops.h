/* rowops.h: fused, threaded float32 kernels over the rows of a C-contiguous [rows, cols] array.
 *
 * Each is the plain NumPy definition in tinypeft/ops (kept there as the reference, and the path for every
 * other dtype or layout) done in one or two passes over a row while it sits in cache, with the rows
 * shared among the threads (csrc/parallel.c). As matmul.h, the cffi builder reads these declarations.
 *
 *   softmax:        y = exp(x - max) / sum(exp(x - max)); safe != 0: a row whose sum is 0 (every entry
 *                   -inf, an attention row with every key masked) gives zeros instead of 0/0 = nan
 *   layer_norm:     xhat = (x - mean) / sqrt(var + eps), y = xhat * w + b (w, b may be NULL); rstd[row]
 *                   (xhat may be NULL: inference keeps none; y may be x, each row is read before it is written)
 *   rms_norm:       xhat = x / sqrt(mean(x^2) + eps),    y = xhat * w       (w may be NULL);    rstd[row]
 *   cross_entropy:  lse[row] = logsumexp(x[row]); loss[row] = lse - x[row, t] (0 where t == ignore)
 *   cross_entropy_backward:  dz = exp(x - lse) * coef[row], then dz[row, t] -= tcoef[row] (t != ignore)
 *   silu (elementwise over n values, any shape):  s = sigmoid(x), y = x * s
 *   gelu (elementwise, exact):  cdf = (1 + erf(x / sqrt(2))) / 2, y = x * cdf, erf by a vector polynomial
 *                   (cdf may be NULL, y may be x)
 *   attention (over (batch, head) pairs, not rows):  p = softmax(q k^T * scale + mask) with the safe
 *                   softmax's zeros for a row with every key masked, o = p v; tp_attention_args below
 */
#ifndef TINYPEFT_ROWOPS_H
#define TINYPEFT_ROWOPS_H

#include <stddef.h>
#include <stdint.h>

void tp_softmax_f32(const float *x, float *y, size_t rows, size_t cols, int safe, int nthreads);
void tp_layer_norm_f32(const float *x, const float *w, const float *b, float *y, float *xhat, float *rstd,
                       size_t rows, size_t cols, float eps, int nthreads);
void tp_rms_norm_f32(const float *x, const float *w, float *y, float *xhat, float *rstd, size_t rows,
                     size_t cols, float eps, int nthreads);
void tp_cross_entropy_f32(const float *x, const int64_t *target, int64_t ignore_index, float *lse, float *loss,
                          size_t rows, size_t cols, int nthreads);
void tp_cross_entropy_backward_f32(const float *x, const int64_t *target, int64_t ignore_index, const float *lse,
                                   const float *coef, const float *tcoef, float *dz, size_t rows, size_t cols,
                                   int nthreads);
void tp_silu_f32(const float *x, float *s, float *y, size_t n, int nthreads);
void tp_gelu_f32(const float *x, float *cdf, float *y, size_t n, int nthreads);

/* q [B, H, L, E], k [B, Hk, S, E], v [B, Hk, S, Ev] and o [B, H, L, Ev] at element strides (batch, head,
 * row), columns contiguous; query head h reads key head h / (H / Hk) (grouped-query attention). The mask,
 * NULL or bool (uint8) or additive float, at strides (batch, head, row, column), 0 where it broadcasts.
 * p [B, H, L, S] contiguous receives the probabilities. Returns 0, or -1 if scratch could not be allocated. */
typedef struct {
    size_t B, H, Hk, L, S, E, Ev;
    const float *q, *k, *v;
    ptrdiff_t q_strides[3], k_strides[3], v_strides[3], o_strides[3], mask_strides[4];
    const uint8_t *mask_bool;
    const float *mask_add;
    float scale;
    float *p, *o;
} tp_attention_args;
int tp_attention_f32(const tp_attention_args *a, int nthreads);

#endif
