/* gemv.c: C[m, n] = A[m, k] @ B[k, n] for m <= GEMV_MAX_M (decoding steps, tiny batches), float32.
 *
 * The kernels are in gemv_kernel.h, compiled for each instruction set as the GEMM's are, and the one
 * used is the GEMM's current choice (tp_kernel_name), so cmatmul.set_kernel tests both on each.
 * Threads split the columns of C (the rows of W): each reads its own share of the weights, once.
 * tp_matmul_reference_f32 is the plain definition this is tested against.
 */
#include "gemv.h"
#include "matmul.h"
#include "parallel.h"

#include <string.h>


typedef void (*gemv_fn)(int m, size_t k, const float *x, ptrdiff_t ldx, const float *w, ptrdiff_t ldw,
                        size_t j0, size_t j1, float *y, ptrdiff_t ldy);
typedef struct {
    gemv_fn dot, axpy;
} gemv_kernel_t;

#define TP_KERNEL_FILE "gemv_kernel.h"
#include "isa_instances.h"

static const gemv_kernel_t *gemv_kernel(void)
{
#if defined(TP_ISA_X86)
    static const gemv_kernel_t *const by_isa[] = {&gemv_kernel_generic, &gemv_kernel_avx2, &gemv_kernel_avx512};
    return by_isa[tp_kernel_isa()];
#else
    return &gemv_kernel_generic;
#endif
}

/* A thread is worth waking for at least this many weights (a quarter megabyte of float32). */
#define GEMV_MIN_PER_THREAD (1u << 16)
#define CHUNK_WEIGHTS (1u << 16)
/* The axpy layout reads each row of B in pieces as wide as a chunk: narrower ones defeat the prefetcher. */
#define AXPY_CHUNK 256

typedef struct {
    gemv_fn fn;
    int m;
    size_t n, k, chunk; /* chunk: columns of C per task, a multiple of 16 */
    const float *x, *w;
    ptrdiff_t ldx, ldw;
    float *y;
    ptrdiff_t ldy;
} gemv_job;

static void gemv_chunk(void *p, size_t c)
{
    gemv_job *j = p;
    size_t j0 = c * j->chunk, j1 = j0 + j->chunk < j->n ? j0 + j->chunk : j->n;
    j->fn(j->m, j->k, j->x, j->ldx, j->w, j->ldw, j0, j1, j->y, j->ldy);
}

int tp_gemv_f32(size_t m, size_t n, size_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                const float *b, ptrdiff_t rsb, ptrdiff_t csb, float *c, ptrdiff_t ldc, int nthreads)
{
    if (m > GEMV_MAX_M || csa != 1) return -2;
    if (m == 0 || n == 0) return 0;
    const gemv_kernel_t *kern = gemv_kernel();
    gemv_job job = {0, (int)m, n, k, n, a, b, rsa, 0, c, ldc};
    if (rsb == 1) { /* B = W^T: W [n, k] with rows csb apart */
        job.fn = kern->dot;
        job.ldw = csb;
    } else if (csb == 1 || n == 1) { /* B [k, n] with rows rsb apart */
        job.fn = kern->axpy;
        job.ldw = rsb;
    } else {
        return -2;
    }
    if (k == 0) {
        for (size_t i = 0; i < m; i++) memset(c + i * ldc, 0, n * sizeof(float));
        return 0;
    }
    /* Chunks of about CHUNK_WEIGHTS weights, whole 16-column groups (no two threads write into one
     * cache line of C); several per thread, so a thread that starts late takes fewer. */
    size_t cols = job.fn == kern->axpy ? AXPY_CHUNK : (CHUNK_WEIGHTS / k + 15) / 16 * 16;
    job.chunk = cols < n ? cols : n;
    size_t nchunks = (n + job.chunk - 1) / job.chunk;
    double weights = (double)n * (double)k;
    if (nthreads < 1) nthreads = 1;
    if (weights < (double)GEMV_MIN_PER_THREAD * nthreads) nthreads = (int)(weights / GEMV_MIN_PER_THREAD);
    tp_parallel(gemv_chunk, &job, nchunks, nthreads < 1 ? 1 : nthreads);
    return 0;
}
