/* gemm_reference.c: C = A @ B as the definition reads, C[i, j] = sum_l A[i, l] B[l, j].
 *
 * The plain triple loop (as llm.c keeps matmul_forward_naive beside its tuned matmul): no blocking,
 * no packing, no threads, one thread walking the same strided arguments as tp_matmul_*. It is slow
 * on purpose and exists to be obviously right: tests/test_reference_paths.py checks every tuned
 * kernel in matmul.c against it. */
#include "matmul.h"

#define TP_REFERENCE_GEMM(T, name)                                                                \
    void name(size_t m, size_t n, size_t k, const T *a, ptrdiff_t rsa, ptrdiff_t csa, const T *b, \
              ptrdiff_t rsb, ptrdiff_t csb, T *c, ptrdiff_t ldc)                                  \
    {                                                                                             \
        for (size_t i = 0; i < m; i++)                                                            \
            for (size_t j = 0; j < n; j++) {                                                      \
                T sum = 0;                                                                        \
                for (size_t l = 0; l < k; l++) sum += a[i * rsa + l * csa] * b[l * rsb + j * csb]; \
                c[i * ldc + j] = sum;                                                             \
            }                                                                                     \
    }

TP_REFERENCE_GEMM(float, tp_matmul_reference_f32)
TP_REFERENCE_GEMM(double, tp_matmul_reference_f64)
