/* peak.c: a tight FMA loop and a STREAM-like copy and triad, for bench/limits.py (see peak.h).
 *
 * The FMA loop keeps ACC independent accumulators so that the FMA units never wait on a previous result
 * (latency 4 cycles x 2 units = 8 in flight; 12 leaves room), the same shape as the GEMM micro-kernel's
 * 12 accumulators, so its rate is the ceiling that kernel can reach on one core. */
#include "peak.h"
#include "matmul.h"
#include "parallel.h"

#include <string.h>


#define ACC 12

#define FMA_LOOP(NAME, VBYTES, TARGET)                                                  \
    static TARGET double NAME(long iters)                                               \
    {                                                                                   \
        typedef float v __attribute__((vector_size(VBYTES)));                          \
        v acc[ACC], x = (v){0} + 0.999999f, y = (v){0} + 1e-7f;                         \
        for (int i = 0; i < ACC; i++) acc[i] = (v){0} + (float)i;                       \
        for (long it = 0; it < iters; it++)                                             \
            for (int i = 0; i < ACC; i++) acc[i] = acc[i] * x + y;                      \
        float sink = 0, lanes[VBYTES / 4]; /* every result is used: no FMA is dead */   \
        for (int i = 0; i < ACC; i++) {                                                 \
            memcpy(lanes, &acc[i], sizeof lanes);                                       \
            for (int l = 0; l < VBYTES / 4; l++) sink += lanes[l];                      \
        }                                                                               \
        return sink != sink ? 0 : 2.0 * ACC * (VBYTES / 4) * (double)iters;             \
    }

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
FMA_LOOP(fma_avx512, 64, __attribute__((target("avx512f,avx2,fma"))))
FMA_LOOP(fma_avx2, 32, __attribute__((target("avx2,fma"))))
#endif
#if defined(__GNUC__)
FMA_LOOP(fma_generic, 16, )
#endif

double tp_fma_peak(long iters)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if (tp_kernel_isa() == TP_ISA_AVX512) return fma_avx512(iters);
    if (tp_kernel_isa() == TP_ISA_AVX2) return fma_avx2(iters);
#endif
#if defined(__GNUC__)
    return fma_generic(iters);
#else
    return 0;
#endif
}

typedef struct {
    int op;
    float *a;
    const float *b, *c;
    size_t n, chunk;
    float s;
} stream_job;

static void stream_chunk(void *p, size_t k)
{
    stream_job *j = p;
    size_t i0 = k * j->chunk, i1 = i0 + j->chunk < j->n ? i0 + j->chunk : j->n;
    if (j->op == 0) {
        memcpy(j->a + i0, j->b + i0, (i1 - i0) * sizeof(float));
    } else {
        float *restrict a = j->a;
        const float *restrict b = j->b, *restrict c = j->c;
        for (size_t i = i0; i < i1; i++) a[i] = b[i] + j->s * c[i];
    }
}

double tp_stream_f32(int op, float *a, const float *b, const float *c, size_t n, float s, int nthreads)
{
    stream_job j = {op, a, b, c, n, 1u << 18, s};
    tp_parallel(stream_chunk, &j, (n + j.chunk - 1) / j.chunk, nthreads);
    return (op == 0 ? 2.0 : 3.0) * sizeof(float) * (double)n;
}
