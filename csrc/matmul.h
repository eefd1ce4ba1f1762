/* matmul.h: the C side of tinypeft's optional extension.
 *
 * C[m, n] = A[m, k] @ B[k, n] on float32 and float64. A and B are read through
 * element strides (row stride, column stride), so a transposed or sliced NumPy
 * view is passed as it is; C is written with unit column stride and row stride ldc.
 * The cffi builder (tinypeft/backend/_build_cmatmul.py) gives this header to cffi's cdef without its
 * preprocessor lines, which cffi cannot parse: declarations here stay plain C (no macros in them).
 */
#ifndef TINYPEFT_MATMUL_H
#define TINYPEFT_MATMUL_H

#include <stddef.h>

/* Returns 0, or -1 when a packing buffer could not be allocated.
 * nthreads < 1 means one thread. */
int tp_matmul_f32(size_t m, size_t n, size_t k,
                  const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                  const float *b, ptrdiff_t rsb, ptrdiff_t csb,
                  float *c, ptrdiff_t ldc, int nthreads);
int tp_matmul_f64(size_t m, size_t n, size_t k,
                  const double *a, ptrdiff_t rsa, ptrdiff_t csa,
                  const double *b, ptrdiff_t rsb, ptrdiff_t csb,
                  double *c, ptrdiff_t ldc, int nthreads);

/* The plain triple loop (gemm_reference.c), same arguments, one thread: what the tuned kernels are
 * tested against. */
void tp_matmul_reference_f32(size_t m, size_t n, size_t k,
                             const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                             const float *b, ptrdiff_t rsb, ptrdiff_t csb,
                             float *c, ptrdiff_t ldc);
void tp_matmul_reference_f64(size_t m, size_t n, size_t k,
                             const double *a, ptrdiff_t rsa, ptrdiff_t csa,
                             const double *b, ptrdiff_t rsb, ptrdiff_t csb,
                             double *c, ptrdiff_t ldc);

/* Kernels are compiled for several instruction sets and picked at run time.
 * Names: "generic" (always), "avx2" (AVX2+FMA), "avx512" (AVX-512F). */
const char *tp_kernel_name(void);
/* The selected instruction set as an index, for the other kernels' tables: one name lookup, here. */
enum { TP_ISA_GENERIC = 0, TP_ISA_AVX2 = 1, TP_ISA_AVX512 = 2 };
int tp_kernel_isa(void);
int tp_kernel_supported(const char *name);
int tp_select_kernel(const char *name); /* 0 on success, -1 if unknown or unsupported here */
int tp_vector_bytes(void);              /* of the selected kernel; 0 for plain scalar C */
/* Blocking of the selected kernel for elements of `itemsize` bytes: MR, NR, MC, KC, NC. */
void tp_blocking(int itemsize, int out[5]);

/* y[i] = erf(x[i]) with the C library's erf: exact GELU needs it and NumPy has none. */
void erf_f32(const float *x, float *y, size_t n);
void erf_f64(const double *x, double *y, size_t n);

#endif
