/* decode_step.h: one token through a quantized Llama decoder layer in one call (decode_step.c).
 *
 * A layer: its projections as tp_qweight descriptions (quant.h; qkv: q, k, v end to end, gate_up: gate,
 * up), its two RMSNorm weights, and this layer's key and value cache, [kv_heads, max_length, head_dim]
 * each, of which `length` positions are filled before the call. The cffi builder reads this header
 * (tinypeft/backend/_build_cmatmul.py).
 */
#ifndef TINYPEFT_DECODE_STEP_H
#define TINYPEFT_DECODE_STEP_H

#include <stddef.h>

#include "quant.h"

typedef struct {
    const tp_qweight *qkv;     /* 3: q_proj, k_proj, v_proj */
    const tp_qweight *o;       /* 1: o_proj */
    const tp_qweight *gate_up; /* 2: gate_proj, up_proj */
    const tp_qweight *down;    /* 1: down_proj */
    const float *input_norm, *post_norm;
    float eps, scale;
    float *keys, *values;
    size_t hidden, heads, kv_heads, head_dim, intermediate, max_length;
} tp_llama_layer;

/* x [hidden] += the layer's attention and MLP for the token at position `length` (its rotary cos and sin
 * [head_dim], already scaled); its key and value are written at `length`. Returns 0, or -1 when the cache
 * is full, the heads do not group, or memory runs out. */
int tp_llama_decode_layer(const tp_llama_layer *layer, float *x, size_t length, const float *cos, const float *sin,
                          int nthreads);

#endif
