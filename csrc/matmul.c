/* matmul.c: public entry points of the C matmul: kernel choice at run time, and threads.
 *
 * The blocked algorithm itself is in gemm_kernel.h, compiled here once per element type and
 * instruction set (gemm_instance.h builds each table entry); gemm_reference.c holds the plain
 * triple loop it is tested against.
 *
 * Why run-time dispatch instead of -march=native: a wheel or an install on a shared cluster is
 * built on one machine and run on others. The whole file is compiled for the baseline (-O3, which
 * on x86-64 means SSE2), and only the AVX2 and AVX-512 copies of the kernel are compiled with
 * __attribute__((target(...))), so they are merely present in the binary; the CPU is asked once
 * (__builtin_cpu_supports) which one it can run. No -ffast-math anywhere: it lets the compiler
 * reorder sums and changes results.
 */
#include "matmul.h"

#include <stdlib.h>
#include <string.h>

#include "parallel.h"

typedef struct {
    int mr, nr, mc, kc, nc;
} tp_blocking_t;

/* Packing buffers are aligned to 64 bytes, a cache line and an AVX-512 register. */
static void *tp_alloc(size_t bytes)
{
    size_t size = (bytes + 63) / 64 * 64; /* aligned_alloc wants a multiple of the alignment */
#if defined(_WIN32)
    return _aligned_malloc(size, 64);
#else
    void *p = NULL;
    return posix_memalign(&p, 64, size) == 0 ? p : NULL;
#endif
}

static void tp_free(void *p)
{
#if defined(_WIN32)
    _aligned_free(p);
#else
    free(p);
#endif
}

typedef int (*gemm_fn)(size_t m, size_t n, size_t k, const void *a, ptrdiff_t rsa, ptrdiff_t csa,
                       const void *b, ptrdiff_t rsb, ptrdiff_t csb, void *c, ptrdiff_t ldc);

typedef struct {
    const char *name;
    int vector_bytes;
    gemm_fn f32, f64;
    const tp_blocking_t *blocking_f32, *blocking_f64;
    int (*cpu_supports)(void);
} kernel_t;

/* ---- the kernel table: one entry per instruction set (isa_instances.h's list), each built once ---- */

#define TP_KERNEL_FILE "gemm_instance.h"
#include "isa_instances.h"

static const kernel_t *const kernels[] = {
    &kernel_generic, /* narrowest first: the widest supported one wins */
#if defined(TP_ISA_X86)
    &kernel_avx2,
    &kernel_avx512,
#endif
};
enum { n_kernels = sizeof kernels / sizeof kernels[0] };

/* ---- choosing a kernel ---------------------------------------------------------------------- */

static int cpu_supports(int i)
{
#if defined(TP_ISA_X86)
    __builtin_cpu_init(); /* needed before __builtin_cpu_supports when called before constructors */
#endif
    return kernels[i]->cpu_supports();
}

/* -1 until the first call; then the index of the widest kernel this CPU runs. Choosing twice from
 * two threads at once is harmless: both pick the same one. */
static int selected = -1;

static const kernel_t *kernel(void)
{
    if (selected < 0) {
        int best = 0;
        for (int i = 0; i < n_kernels; i++)
            if (cpu_supports(i)) best = i;
        selected = best;
    }
    return kernels[selected];
}

/* The names are the Python API's (cmatmul.set_kernel("avx2")): a look-up, not a dispatch. */
static int find_kernel(const char *name)
{
    for (int i = 0; i < n_kernels; i++)
        if (strcmp(kernels[i]->name, name) == 0) return i;
    return -1;
}

const char *tp_kernel_name(void) { return kernel()->name; }

int tp_kernel_isa(void)
{
    const char *name = kernel()->name;
    if (strcmp(name, "avx512") == 0) return TP_ISA_AVX512;
    if (strcmp(name, "avx2") == 0) return TP_ISA_AVX2;
    return TP_ISA_GENERIC;
}

int tp_kernel_supported(const char *name)
{
    int i = find_kernel(name);
    return i >= 0 && cpu_supports(i);
}

int tp_select_kernel(const char *name)
{
    int i = find_kernel(name);
    if (i < 0 || !cpu_supports(i)) return -1;
    selected = i;
    return 0;
}

int tp_vector_bytes(void) { return kernel()->vector_bytes; }

void tp_blocking(int itemsize, int out[5])
{
    const tp_blocking_t *b = itemsize == 4 ? kernel()->blocking_f32 : kernel()->blocking_f64;
    out[0] = b->mr;
    out[1] = b->nr;
    out[2] = b->mc;
    out[3] = b->kc;
    out[4] = b->nc;
}

/* ---- threads -------------------------------------------------------------------------------- */

/* Each slab of C (a range of columns, or of rows when C is tall and thin) runs the whole serial
 * algorithm with private packing buffers, so threads never wait for each other; the price is that every
 * slab packs all of the other operand, O(k * n) or O(m * k) next to the O(m * n * k / slabs) it
 * multiplies. There are a few slabs per thread, taken from a shared counter (csrc/parallel.c), so a
 * thread the OS runs late on a busy machine takes fewer instead of holding up the call. */
typedef struct {
    gemm_fn fn;
    size_t m, n, k;
    const char *a, *b;
    char *c;
    ptrdiff_t rsa, csa, rsb, csb, ldc;
    size_t itemsize, step;
    int by_cols;
    int status;
} job_t;

static void run_slab(void *arg, size_t t)
{
    job_t *j = arg;
    size_t dim = j->by_cols ? j->n : j->m, start = t * j->step;
    size_t len = dim - start < j->step ? dim - start : j->step;
    ptrdiff_t isz = (ptrdiff_t)j->itemsize;
    int status;
    if (j->by_cols)
        status = j->fn(j->m, len, j->k, j->a, j->rsa, j->csa, j->b + (ptrdiff_t)start * j->csb * isz, j->rsb,
                       j->csb, j->c + start * isz, j->ldc);
    else
        status = j->fn(len, j->n, j->k, j->a + (ptrdiff_t)start * j->rsa * isz, j->rsa, j->csa, j->b, j->rsb,
                       j->csb, j->c + (ptrdiff_t)start * j->ldc * isz, j->ldc);
    if (status) j->status = status; /* any failure is reported; which one does not matter */
}

/* Below this many multiply-adds per thread, waking a thread and allocating its buffers costs more
 * than the thread saves (bench/matmul.py shows where the line falls). */
#define MIN_WORK_PER_THREAD (1u << 22)
/* Slabs per thread when the product is big enough that each slab still has MIN_WORK_PER_THREAD. */
#define SLABS_PER_THREAD 3

static int gemm(gemm_fn fn, size_t itemsize, size_t m, size_t n, size_t k, const void *a,
                ptrdiff_t rsa, ptrdiff_t csa, const void *b, ptrdiff_t rsb, ptrdiff_t csb, void *c,
                ptrdiff_t ldc, int nthreads)
{
    if (m == 0 || n == 0) return 0;
    if (k == 0) { /* an empty sum: C = 0 */
        for (size_t i = 0; i < m; i++) memset((char *)c + i * ldc * itemsize, 0, n * itemsize);
        return 0;
    }

    double work = (double)m * (double)n * (double)k;
    if (nthreads < 1) nthreads = 1;
    if (work < (double)MIN_WORK_PER_THREAD * nthreads) {
        nthreads = (int)(work / MIN_WORK_PER_THREAD);
        if (nthreads < 1) nthreads = 1;
    }
    int by_cols = n >= m;
    size_t dim = by_cols ? n : m;
    job_t job = {fn, m, n, k, a, b, c, rsa, csa, rsb, csb, ldc, itemsize, dim, by_cols, 0};
    if (nthreads == 1) {
        run_slab(&job, 0);
        return job.status;
    }
    /* Slabs are whole multiples of 32 columns or 6 rows (of every kernel's NR, MR), so only the last slab
     * has edge tiles; at least 96 wide, so that repacking the other operand stays cheap. The unit is
     * small so that the slabs come out nearly equal and the threads finish together. */
    size_t slabs = (size_t)nthreads, unit = by_cols ? 32 : 6;
    if (work >= (double)MIN_WORK_PER_THREAD * nthreads * SLABS_PER_THREAD) slabs *= SLABS_PER_THREAD;
    size_t units = (dim + unit - 1) / unit, step = (units + slabs - 1) / slabs * unit;
    if (step < 96) step = 96;
    job.step = step;
    tp_parallel(run_slab, &job, (dim + step - 1) / step, nthreads);
    return job.status;
}

int tp_matmul_f32(size_t m, size_t n, size_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                  const float *b, ptrdiff_t rsb, ptrdiff_t csb, float *c, ptrdiff_t ldc,
                  int nthreads)
{
    return gemm(kernel()->f32, sizeof(float), m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, nthreads);
}

int tp_matmul_f64(size_t m, size_t n, size_t k, const double *a, ptrdiff_t rsa, ptrdiff_t csa,
                  const double *b, ptrdiff_t rsb, ptrdiff_t csb, double *c, ptrdiff_t ldc,
                  int nthreads)
{
    return gemm(kernel()->f64, sizeof(double), m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, nthreads);
}
