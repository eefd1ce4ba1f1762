/* gguf_quant.h: GGUF's own weight blocks (llama.cpp's ggml-quants formats), kept as shipped.
 *
 * A kept weight W [n, k] is n rows of k / QK blocks each, the bytes exactly as in the .gguf file
 * (tinypeft/gguf/quants.py draws every layout). Its tp_qweight (quant.h) has kind = the ggml type id
 * below, data = the first row's first block, scale = code = NULL. quant.c's panel GEMM, its column
 * slabs for the backward and its GEMV call these functions to decode a row; they never hold more
 * than a panel of float32 values.
 *
 * The decode is the NumPy reference's arithmetic in the same order (float16 -> float32 exactly, then
 * one float32 multiply, or a multiply and an add, each rounded), so it is bit-exact against
 * tinypeft.gguf.quants.dequantize. As matmul.h, the cffi builder reads the declarations.
 */
#ifndef TINYPEFT_GGUF_QUANT_H
#define TINYPEFT_GGUF_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* ggml type ids (ggml.h); they do not collide with quant.h's TP_Q4 = 0 and TP_Q8 = 1. */
enum { TP_GGUF_Q4_0 = 2, TP_GGUF_Q4_1 = 3, TP_GGUF_Q5_0 = 6, TP_GGUF_Q5_1 = 7, TP_GGUF_Q8_0 = 8,
       TP_GGUF_Q4_K = 12, TP_GGUF_Q5_K = 13, TP_GGUF_Q6_K = 14 };

/* 1 when `kind` is one of the GGUF block types above. */
int tp_gguf_supported(int kind);
/* Weights per block (32 or 256) and bytes per block; 0 for an unknown kind. */
size_t tp_gguf_block_size(int kind);
size_t tp_gguf_type_size(int kind);
/* Bytes of one row of k weights (k a multiple of the block size). */
size_t tp_gguf_row_bytes(int kind, size_t k);
/* Columns [c0, c1) of one row (its bytes at `row`) into out[0 : c1 - c0]. */
void tp_gguf_dequantize_row(int kind, const uint8_t *row, size_t c0, size_t c1, float *out);
/* y[r] = sum_c W[r, c] x[c] for rows r0 <= r < r1 of W (its blocks at `data`, k weights a row): the
 * decoding step's dot products. */
void tp_gguf_dot_rows(int kind, const uint8_t *data, size_t r0, size_t r1, const float *x, size_t k, float *y);

#endif
