/* quant.h: quantized frozen weights (4-bit NF4/FP4 blocks, 8-bit rows) for tinypeft.
 *
 * A weight W [n, k] (torch layout: n = out_features, k = in_features) is described by tp_qweight:
 *   kind TP_Q4:  data = packed 4-bit indices, two per byte, the first in the high nibble, over W
 *                flattened row-major; scale = float32 absmax per block of `blocksize` elements;
 *                code = the 16-entry table.      W[i] = code[q[i]] * scale[i / blocksize]
 *   kind TP_Q8:  data = int8 [n, k]; scale = float32 per row (SCB / 127 already applied by the caller).
 *                                                W[r, c] = (float)data[r, c] * scale[r]
 *   kind = a ggml type id (gguf_quant.h):  data = GGUF's own blocks, rows of k / block-size blocks,
 *                as in the .gguf file; scale and code are unused.
 * The dequantize is the same expression everywhere, so the fused kernels see exactly the values
 * tp_dequantize writes, and those equal the NumPy reference bit for bit.
 * As matmul.h, the cffi builder reads these declarations.
 */
#ifndef TINYPEFT_QUANT_H
#define TINYPEFT_QUANT_H

#include <stddef.h>
#include <stdint.h>

enum { TP_Q4 = 0, TP_Q8 = 1 };

typedef struct {
    int kind;
    const uint8_t *data;
    const float *scale;
    const float *code;
    size_t blocksize;
    size_t n, k;
} tp_qweight;

/* out[i] = code8[q[i]] * absmax2[i / blocksize2] + offset: double quantization's absmax, two roundings. */
void tp_dequantize_absmax(const uint8_t *q, const float *code8, const float *absmax2, size_t blocksize2,
                          float offset, size_t count, float *out);
/* W[r0:r1, c0:c1] into out (row stride ldo). */
void tp_dequantize(const tp_qweight *w, size_t r0, size_t r1, size_t c0, size_t c1, float *out, size_t ldo);
/* y[m, n] = x[m, k] @ W^T (x rows ldx apart, y rows ldy apart). Returns 0, or -1 when out of memory. */
int tp_qmatmul(const tp_qweight *w, size_t m, const float *x, size_t ldx, float *y, size_t ldy, int nthreads);
/* dx[m, k] = g[m, n] @ W. */
int tp_qmatmul_t(const tp_qweight *w, size_t m, const float *g, size_t ldg, float *dx, size_t lddx, int nthreads);
/* y[n] = W x[k], one row: the decoding step, dequantizing each value as it is read. */
void tp_qgemv(const tp_qweight *w, const float *x, float *y, int nthreads);
/* The same for `count` (at most 8) weights w[0..count) with the same k, read with one x: y holds their
 * outputs end to end (w[0]'s n values, then w[1]'s ...), made in one fan-out over the threads.
 * Returns 0, or -1 when count is over 8 or the k differ. */
int tp_qgemv_many(const tp_qweight *w, size_t count, const float *x, float *y, int nthreads);

#endif
