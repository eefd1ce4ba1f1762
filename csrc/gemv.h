/* gemv.h: the few-row float32 product of gemv.c. Same arguments as tp_matmul_f32 (matmul.h).
 * Returns 0; -2 when it does not apply: more than GEMV_MAX_M rows, A's columns not contiguous, or B
 * neither row- nor column-contiguous (the caller then takes the GEMM). The cffi builder reads this
 * header (tinypeft/backend/_build_cmatmul.py). */
#ifndef TINYPEFT_GEMV_H
#define TINYPEFT_GEMV_H

#include <stddef.h>

#define GEMV_MAX_M 4

int tp_gemv_f32(size_t m, size_t n, size_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                const float *b, ptrdiff_t rsb, ptrdiff_t csb, float *c, ptrdiff_t ldc, int nthreads);

#endif
