/* erf.c: the C library's erf over an array. NumPy has no erf, and exact GELU,
 * x * (1 + erf(x / sqrt(2))) / 2, needs one, and a Python loop over math.erf is slow. */
#include <math.h>

#include "matmul.h"

void erf_f32(const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = erff(x[i]);
}

void erf_f64(const double *x, double *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = erf(x[i]);
}
