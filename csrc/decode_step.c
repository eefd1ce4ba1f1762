/* decode_step.c: one token through a Llama decoder layer whose linear layers are quantized, in one call.
 *
 * It is the body of the loop in tinypeft/models/fast_decode.py's LlamaDecoder (the reference, which
 * tests/test_fast_decode.py compares it with), for one row and no padding, without a trip through
 * Python between the ops:
 *
 *   h = rms_norm(x) w_in;   q, k, v = h Wq^T, h Wk^T, h Wv^T           (one tp_qgemv_many)
 *   q, k = rope(q), rope(k);   K[:, L] = k;   V[:, L] = v              (the cache, in place)
 *   o = softmax(q K[:, :L+1]^T * scale) V[:, :L+1]                     (G query heads per key/value head)
 *   x += o Wo^T;   h = rms_norm(x) w_post;   g, u = h Wg^T, h Wu^T;   x += (silu(g) u) Wd^T
 *
 * The products are quant.c's threaded GEMVs; the rest (O(width) and O(cache) work) runs on the
 * calling thread. Sums run in 8 partial sums, as the other plain C loops here, so the compiler can
 * keep them in vector registers; the order of additions is not the reference's, the values agree
 * to float32 rounding.
 */
#include "decode_step.h"

#include <math.h>
#include <stdlib.h>

static float dot(const float *a, const float *b, size_t n)
{
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int t = 0; t < 8; t++) acc[t] += a[i + t] * b[i + t];
    float s = 0.0f;
    for (; i < n; i++) s += a[i] * b[i];
    for (int t = 0; t < 8; t++) s += acc[t];
    return s;
}

/* out = x / sqrt(mean(x^2) + eps) * w */
static void rms_norm(const float *x, const float *w, float eps, size_t n, float *out)
{
    float r = 1.0f / sqrtf(dot(x, x, n) / (float)n + eps);
    for (size_t i = 0; i < n; i++) out[i] = x[i] * r * w[i];
}

/* x [heads, hd] rotated in place: halves layout (transformers' rotate_half), x cos + rotate_half(x) sin */
static void rope(float *x, size_t heads, size_t hd, const float *cos, const float *sin)
{
    size_t half = hd / 2;
    for (size_t h = 0; h < heads; h++, x += hd)
        for (size_t i = 0; i < half; i++) {
            float a = x[i], b = x[i + half];
            x[i] = a * cos[i] - b * sin[i];
            x[i + half] = b * cos[i + half] + a * sin[i + half];
        }
}

/* o [H, hd] = softmax(q K^T scale) V per query head, keys/values [Hkv, max_length, hd] of which the first
 * n positions are filled; p: n floats of scratch. */
static void attend(const tp_llama_layer *l, const float *q, size_t n, float *p, float *o)
{
    size_t hd = l->head_dim, G = l->heads / l->kv_heads;
    for (size_t h = 0; h < l->heads; h++) {
        const float *K = l->keys + (h / G) * l->max_length * hd, *V = l->values + (h / G) * l->max_length * hd;
        const float *qh = q + h * hd;
        float m = -INFINITY, sum = 0.0f;
        for (size_t j = 0; j < n; j++) {
            p[j] = dot(qh, K + j * hd, hd) * l->scale;
            if (p[j] > m) m = p[j];
        }
        for (size_t j = 0; j < n; j++) sum += p[j] = expf(p[j] - m);
        float *oh = o + h * hd;
        for (size_t i = 0; i < hd; i++) oh[i] = 0.0f;
        for (size_t j = 0; j < n; j++) {
            float pj = p[j] / sum;
            for (size_t i = 0; i < hd; i++) oh[i] += pj * V[j * hd + i];
        }
    }
}

int tp_llama_decode_layer(const tp_llama_layer *l, float *x, size_t length, const float *cos, const float *sin,
                          int nthreads)
{
    size_t D = l->hidden, hd = l->head_dim, nq = l->heads * hd, nkv = l->kv_heads * hd, I = l->intermediate;
    if (length >= l->max_length || l->heads % l->kv_heads) return -1;
    size_t need = D + nq + 2 * nkv + nq + D + 2 * I + (length + 1);
    float *buf = malloc(need * sizeof(float));
    if (!buf) return -1;
    float *h = buf, *qkv = h + D, *o = qkv + nq + 2 * nkv, *y = o + nq, *gu = y + D, *p = gu + 2 * I;

    rms_norm(x, l->input_norm, l->eps, D, h);
    tp_qgemv_many(l->qkv, 3, h, qkv, nthreads); /* q [H, hd], k [Hkv, hd], v [Hkv, hd], end to end */
    float *q = qkv, *k = qkv + nq, *v = k + nkv;
    rope(q, l->heads, hd, cos, sin);
    rope(k, l->kv_heads, hd, cos, sin);
    for (size_t j = 0; j < l->kv_heads; j++)
        for (size_t i = 0; i < hd; i++) {
            l->keys[(j * l->max_length + length) * hd + i] = k[j * hd + i];
            l->values[(j * l->max_length + length) * hd + i] = v[j * hd + i];
        }
    attend(l, q, length + 1, p, o);
    tp_qgemv_many(l->o, 1, o, y, nthreads);
    for (size_t i = 0; i < D; i++) x[i] += y[i];

    rms_norm(x, l->post_norm, l->eps, D, h);
    tp_qgemv_many(l->gate_up, 2, h, gu, nthreads); /* gate [I], up [I] */
    for (size_t i = 0; i < I; i++) gu[i] = gu[i] / (1.0f + expf(-gu[i])) * gu[I + i]; /* silu(g) * u */
    tp_qgemv_many(l->down, 1, gu, y, nthreads);
    for (size_t i = 0; i < D; i++) x[i] += y[i];
    free(buf);
    return 0;
}
