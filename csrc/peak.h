/* peak.h: the machine's limits, measured by bench/limits.py (not used by the library itself).
 *   tp_fma_peak(iters)   iters rounds of independent vector FMAs on the selected instruction set, on the
 *                        calling thread; returns the flops done (2 per lane per FMA), to divide by the time
 *   tp_stream_f32(op, a, b, c, n, s, nthreads)   op 0: copy a = b; op 1: triad a = b + s * c; over n
 *                        floats, shared among threads; returns the bytes moved as STREAM counts them
 * As matmul.h, the cffi builder reads these declarations. */
#ifndef TINYPEFT_PEAK_H
#define TINYPEFT_PEAK_H

#include <stddef.h>

double tp_fma_peak(long iters);
double tp_stream_f32(int op, float *a, const float *b, const float *c, size_t n, float s, int nthreads);

#endif
