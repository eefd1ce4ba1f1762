/* rowops_kernel.h: one row of each kernel of rowops.h, for one instruction set. rowops.c includes it once
 * per instruction set after defining TP_ISA, TP_VBYTES and TP_TARGET (as gemv.c does).
 *
 * exp: NumPy's exp is vectorized; a call to the C library's expf per element would be several times
 * slower, so vexp below is exp the usual way, for x <= 0 (every caller subtracts the row max first):
 *   x = n ln2 + r, |r| <= ln2/2  =>  exp(x) = 2^n exp(r), with exp(r) by its Taylor polynomial to r^7
 *   (relative error below 2e-7 on that interval) and 2^n built in the exponent bits. ln2 is split in a
 *   high part exact in float and a low part, so r keeps its accuracy. Below -87.3 the result would be
 *   subnormal; it is flushed to 0 (it is below 1e-38 of the row's largest term, which is 1).
 */
#define TP_RPASTE_(a, b) a##b
#define TP_RPASTE(a, b) TP_RPASTE_(a, b)
#define RSFX(name) TP_RPASTE(name, TP_RPASTE(_, TP_ISA))

#if TP_VBYTES > 0
#define RVL ((int)(TP_VBYTES / sizeof(float)))
typedef float RSFX(rvec) __attribute__((vector_size(TP_VBYTES)));
typedef int32_t RSFX(rivec) __attribute__((vector_size(TP_VBYTES)));
#else
#define RVL 1
typedef float RSFX(rvec);
typedef int32_t RSFX(rivec);
#endif
#define RV RSFX(rvec)
#define RI RSFX(rivec)

static TP_TARGET inline RV RSFX(rload)(const float *p)
{
    RV v;
    memcpy(&v, p, sizeof v);
    return v;
}

static TP_TARGET inline void RSFX(rstore)(float *p, RV v) { memcpy(p, &v, sizeof v); }

static TP_TARGET inline RV RSFX(vexp)(RV x)
{
    const RV magic = (RV){0} + 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    RV t = x * 1.44269504088896341f + magic;
    RV n = t - magic;
    RV r = x - n * 0.693359375f; /* ln2, high part: exact times any n here */
    r = r - n * -2.12194440e-4f; /* ln2, low part */
    RV p = (RV){0} + 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    RI bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000 + 127) << 23; /* the integer n sits in t's low mantissa bits */
    RV scale;
    memcpy(&scale, &bits, sizeof scale);
    RV e = p * scale;
    RI keep = (x >= -87.3f) | (x != x); /* all ones where x is in range, or NaN (which then stays NaN) */
    return (RV)((RI)e & keep);
}

static TP_TARGET inline float RSFX(hsum)(RV v)
{
    float lanes[RVL], s = 0;
    memcpy(lanes, &v, sizeof v);
    for (int i = 0; i < RVL; i++) s += lanes[i];
    return s;
}

static TP_TARGET inline RV RSFX(vmax)(RV a, RV b)
{
    RI gt = b > a;
    return (RV)(((RI)b & gt) | ((RI)a & ~gt));
}

static TP_TARGET float RSFX(row_max)(const float *x, size_t n)
{
    size_t nv = n / RVL * RVL, i = 0;
    float m = -INFINITY;
    if (nv) {
        RV mv = RSFX(rload)(x);
        for (i = RVL; i < nv; i += RVL) mv = RSFX(vmax)(mv, RSFX(rload)(x + i));
        float lanes[RVL];
        memcpy(lanes, &mv, sizeof mv);
        for (int l = 0; l < RVL; l++) m = lanes[l] > m ? lanes[l] : m;
    }
    for (i = nv; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* sum of exp(x - shift) over the row; y, if not NULL, gets each term */
static TP_TARGET float RSFX(row_sumexp)(const float *x, float shift, float *y, size_t n)
{
    size_t nv = n / RVL * RVL, i;
    RV acc = (RV){0};
    for (i = 0; i < nv; i += RVL) {
        RV e = RSFX(vexp)(RSFX(rload)(x + i) - shift);
        if (y) RSFX(rstore)(y + i, e);
        acc += e;
    }
    float s = RSFX(hsum)(acc);
    for (; i < n; i++) {
        RV e = RSFX(vexp)((RV){0} + (x[i] - shift)); /* the same exp for the tail */
        float e0;
        memcpy(&e0, &e, sizeof e0);
        if (y) y[i] = e0;
        s += e0;
    }
    return s;
}

/* the row's shift as ops/softmax.py's _shifted takes it: its max, or 0 when that is not finite */
static TP_TARGET float RSFX(row_shift)(const float *x, size_t n)
{
    float m = RSFX(row_max)(x, n);
    return isfinite(m) ? m : 0.0f;
}

static TP_TARGET void RSFX(softmax_row)(const float *x, float *y, size_t n, int safe)
{
    float m = RSFX(row_max)(x, n), shift = isfinite(m) ? m : 0.0f, s;
    if (m == INFINITY) { /* exp overflows: the C library's expf, to give the reference's inf / inf = nan */
        s = 0;
        for (size_t i = 0; i < n; i++) s += y[i] = expf(x[i]);
    } else {
        s = RSFX(row_sumexp)(x, shift, y, n);
    }
    if (safe && s == 0) {
        memset(y, 0, n * sizeof(float));
        return;
    }
    RV sv = (RV){0} + s;
    size_t nv = n / RVL * RVL, i;
    for (i = 0; i < nv; i += RVL) RSFX(rstore)(y + i, RSFX(rload)(y + i) / sv);
    for (; i < n; i++) y[i] /= s;
}

static TP_TARGET void RSFX(norm_row)(const float *x, const float *w, const float *b, float *y, float *xhat,
                                     float *rstd, size_t n, float eps, int centered)
{
    size_t nv = n / RVL * RVL, i;
    float mean = 0;
    if (centered) {
        RV acc = (RV){0};
        for (i = 0; i < nv; i += RVL) acc += RSFX(rload)(x + i);
        double s = RSFX(hsum)(acc);
        for (; i < nv + (n - nv); i++) s += x[i];
        mean = (float)(s / n);
    }
    RV mv = (RV){0} + mean, acc = (RV){0};
    for (i = 0; i < nv; i += RVL) {
        RV d = RSFX(rload)(x + i) - mv;
        acc += d * d;
    }
    double ss = RSFX(hsum)(acc);
    for (; i < n; i++) ss += (double)(x[i] - mean) * (x[i] - mean);
    float r = (float)(1.0 / sqrt(ss / n + eps));
    *rstd = r;
    RV rv = (RV){0} + r;
    for (i = 0; i < nv; i += RVL) {
        RV h = (RSFX(rload)(x + i) - mv) * rv;
        if (xhat) RSFX(rstore)(xhat + i, h);
        if (w) h *= RSFX(rload)(w + i);
        if (b) h += RSFX(rload)(b + i);
        RSFX(rstore)(y + i, h);
    }
    for (; i < n; i++) {
        float h = (x[i] - mean) * r;
        if (xhat) xhat[i] = h;
        if (w) h *= w[i];
        if (b) h += b[i];
        y[i] = h;
    }
}

/* dz = exp(x - lse) * coef over one row */
static TP_TARGET void RSFX(scaled_exp_row)(const float *x, float lse, float coef, float *dz, size_t n)
{
    size_t nv = n / RVL * RVL, i;
    RV cv = (RV){0} + coef;
    for (i = 0; i < nv; i += RVL) RSFX(rstore)(dz + i, RSFX(vexp)(RSFX(rload)(x + i) - lse) * cv);
    for (; i < n; i++) {
        RV e = RSFX(vexp)((RV){0} + (x[i] - lse));
        float e0;
        memcpy(&e0, &e, sizeof e0);
        dz[i] = e0 * coef;
    }
}

/* s = sigmoid(x), y = x s over n elements. As ops/elementwise.py's _sigmoid, exp only of -|x| (never
 * overflows): e = exp(-|x|), s = 1 / (1 + e) for x >= 0 and e / (1 + e) below. */
static TP_TARGET void RSFX(silu_span)(const float *x, float *s, float *y, size_t n)
{
    size_t nv = n / RVL * RVL, i;
    const RI absmask = (RI){0} + 0x7fffffff;
    for (i = 0; i < nv; i += RVL) {
        RV xv = RSFX(rload)(x + i);
        RV e = RSFX(vexp)(-(RV)((RI)xv & absmask));
        RV pos = 1.0f / (1.0f + e), neg = e / (1.0f + e);
        RI ge = xv >= 0;
        RV sv = (RV)(((RI)pos & ge) | ((RI)neg & ~ge));
        RSFX(rstore)(s + i, sv);
        RSFX(rstore)(y + i, xv * sv);
    }
    for (; i < n; i++) {
        RV e = RSFX(vexp)((RV){0} - fabsf(x[i]));
        float e0;
        memcpy(&e0, &e, sizeof e0);
        s[i] = x[i] >= 0 ? 1.0f / (1.0f + e0) : e0 / (1.0f + e0);
        y[i] = x[i] * s[i];
    }
}

/* erf(x), branch-free so a whole vector takes both pieces and picks (the cdf 0.5 (1 + erf) within 2 float32
 * ulps of 1 of the C library's and of float64's, tests/test_fused.py). Coefficients fitted here by least squares, rounded to float:
 *   |x| < 1:       erf(x) = x + x P(x^2),        P of degree 6 (P(0) = 2/sqrt(pi) - 1)
 *   1 <= |x| <= 4: erf(x) = 1 - exp(-x^2 + R(|x|)), R of degree 8: erfc is exp(-x^2) times a slow
 *                  function, whose log R fits a polynomial; above 4, erfc < 2e-8 and erf is 1 in float.
 * NaN stays NaN through the first piece. */
static const float RSFX(erf_inner)[] = {7.933485903777182e-05f, -8.034844067879021e-04f, 5.191218107938767e-03f,
                                       -2.685539983212948e-02f, 1.128362566232681e-01f, -3.761262893676758e-01f,
                                       1.283792257308960e-01f};
static const float RSFX(erf_outer)[] = {1.614061602595029e-06f, -4.559062290354632e-05f, 5.927695310674608e-04f,
                                       -4.740222357213497e-03f, 2.636471763253212e-02f, -1.099782437086105e-01f,
                                       3.680629134178161e-01f, -1.130166649818420e+00f, 3.032129607163370e-04f};

/* c[0] x^(n-1) + ... + c[n-1], by Horner's rule */
static TP_TARGET inline RV RSFX(vpoly)(RV x, const float *c, int n)
{
    RV p = (RV){0} + c[0];
    for (int i = 1; i < n; i++) p = p * x + c[i];
    return p;
}

static TP_TARGET inline RV RSFX(verf)(RV x)
{
    const RI absmask = (RI){0} + 0x7fffffff;
    RV t = (RV)((RI)x & absmask);
    RV inner = x + x * RSFX(vpoly)(x * x, RSFX(erf_inner), 7);
    RI big = t > 4.0f;
    t = (RV)(((RI)t & ~big) | ((RI)((RV){0} + 4.0f) & big));
    RV outer = 1.0f - RSFX(vexp)(RSFX(vpoly)(t, RSFX(erf_outer), 9) - t * t);
    outer = (RV)((RI)outer | ((RI)x & ~absmask)); /* erf is odd: x's sign on |erf| */
    RI small = ((RV)((RI)x & absmask) < 1.0f) | (x != x);
    return (RV)(((RI)inner & small) | ((RI)outer & ~small));
}

/* exact GELU, as ops/elementwise.py's reference: cdf = 0.5 (1 + erf(x / sqrt(2))), y = x cdf; cdf may be
 * NULL (inference keeps no cdf), y may be x */
static TP_TARGET void RSFX(gelu_span)(const float *x, float *cdf, float *y, size_t n)
{
    size_t nv = n / RVL * RVL, i;
    for (i = 0; i < nv; i += RVL) {
        RV xv = RSFX(rload)(x + i);
        RV c = (1.0f + RSFX(verf)(xv * 0.70710677f)) * 0.5f;
        if (cdf) RSFX(rstore)(cdf + i, c);
        RSFX(rstore)(y + i, xv * c);
    }
    for (; i < n; i++) {
        RV e = RSFX(verf)((RV){0} + x[i] * 0.70710677f);
        float e0;
        memcpy(&e0, &e, sizeof e0);
        float c = (1.0f + e0) * 0.5f;
        if (cdf) cdf[i] = c;
        y[i] = x[i] * c;
    }
}

/* softmax_row(x, y, n, safe = 1) for x of n values padded to np, whole vectors: the padding is set to -inf
 * (exp gives 0) so that no element takes the scalar tail; y gets the n values. */
static TP_TARGET void RSFX(padded_softmax_row)(float *x, float *y, size_t n, size_t np)
{
    for (size_t j = n; j < np; j++) x[j] = -INFINITY;
    float m = RSFX(row_max)(x, np);
    if (m == INFINITY) {
        RSFX(softmax_row)(x, y, n, 1);
        return;
    }
    float s = RSFX(row_sumexp)(x, isfinite(m) ? m : 0.0f, x, np);
    if (s == 0) {
        memset(y, 0, n * sizeof(float));
        return;
    }
    RV sv = (RV){0} + s;
    size_t nv = n / RVL * RVL, i;
    for (i = 0; i < nv; i += RVL) RSFX(rstore)(y + i, RSFX(rload)(x + i) / sv);
    for (; i < n; i++) y[i] = x[i] / s;
}

/* Attention for one (batch, head): p = softmax(q k^T * scale + mask), o = p v, the mask a bool (keep where
 * nonzero, else -inf) or float (added) array read through its strides, either or both NULL.
 * q [L, E], k [S, E], v [S, Ev] and o [L, Ev] are rows at the given row strides with contiguous columns;
 * p [L, S] is contiguous. kt, scratch of (E + 4) * Sp floats (Sp: S rounded up to whole vectors), takes
 * k transposed, so that a query's S scores are vector multiply-adds along the keys, then 4 rows of
 * scores: 4 query rows go together, 4 independent sums that hide the multiply-add's latency. Each row's
 * softmax is softmax_row's, as the fused softmax of the unfused path. */
static TP_TARGET void RSFX(attend_head)(const float *q, ptrdiff_t qs, const float *k, ptrdiff_t ks, const float *v,
                                        ptrdiff_t vs, const uint8_t *mb, const float *mf, ptrdiff_t mrow,
                                        ptrdiff_t mcol, float *p, float *o, ptrdiff_t os, size_t L, size_t S,
                                        size_t E, size_t Ev, float scale, float *kt)
{
    size_t Sp = (S + RVL - 1) / RVL * RVL, evv = Ev / RVL * RVL;
    for (size_t e = 0; e < E; e++) {
        for (size_t j = 0; j < S; j++) kt[e * Sp + j] = k[j * ks + e];
        for (size_t j = S; j < Sp; j++) kt[e * Sp + j] = 0.0f;
    }
    float *rows = kt + E * Sp;
    for (size_t l0 = 0; l0 < L; l0 += 4) {
        size_t nl = L - l0 < 4 ? L - l0 : 4;
        const float *q0 = q + l0 * qs, *q1 = q0 + (nl > 1) * qs, *q2 = q0 + (nl > 2) * 2 * qs;
        const float *q3 = q0 + (nl > 3) * 3 * qs; /* past the last row: row l0 again, its sums unused */
        for (size_t j = 0; j < Sp; j += RVL) {
            RV a0 = (RV){0}, a1 = a0, a2 = a0, a3 = a0;
            for (size_t e = 0; e < E; e++) {
                RV kv = RSFX(rload)(kt + e * Sp + j);
                a0 += q0[e] * kv, a1 += q1[e] * kv, a2 += q2[e] * kv, a3 += q3[e] * kv;
            }
            RSFX(rstore)(rows + j, a0 * scale), RSFX(rstore)(rows + Sp + j, a1 * scale);
            RSFX(rstore)(rows + 2 * Sp + j, a2 * scale), RSFX(rstore)(rows + 3 * Sp + j, a3 * scale);
        }
        for (size_t r = 0; r < nl; r++) {
            float *row = rows + r * Sp;
            size_t l = l0 + r;
            for (size_t j = 0; j < S; j++) {
                if (mb && !mb[l * mrow + j * mcol]) row[j] = -INFINITY;
                if (mf) row[j] += mf[l * mrow + j * mcol];
            }
            RSFX(padded_softmax_row)(row, p + l * S, S, Sp);
        }
        const float *p0 = p + l0 * S, *p1 = p0 + (nl > 1) * S, *p2 = p0 + (nl > 2) * 2 * S, *p3 = p0 + (nl > 3) * 3 * S;
        float *o0 = o + l0 * os;
        for (size_t i = 0; i < evv; i += RVL) {
            RV a0 = (RV){0}, a1 = a0, a2 = a0, a3 = a0;
            for (size_t j = 0; j < S; j++) {
                RV vv = RSFX(rload)(v + j * vs + i);
                a0 += p0[j] * vv, a1 += p1[j] * vv, a2 += p2[j] * vv, a3 += p3[j] * vv;
            }
            RV acc[4] = {a0, a1, a2, a3};
            for (size_t r = 0; r < nl; r++) RSFX(rstore)(o0 + r * os + i, acc[r]);
        }
        for (size_t r = 0; r < nl; r++) {
            for (size_t i = evv; i < Ev; i++) {
                float acc = 0;
                for (size_t j = 0; j < S; j++) acc += p0[r * S + j] * v[j * vs + i];
                o0[r * os + i] = acc;
            }
        }
    }
}

static const rowops_kernel_t RSFX(rowops_kernel) = {
    RSFX(softmax_row), RSFX(norm_row), RSFX(row_shift), RSFX(row_sumexp), RSFX(scaled_exp_row), RSFX(silu_span),
    RSFX(gelu_span), RSFX(attend_head),
};

#undef RVL
#undef RV
#undef RI
#undef RSFX
#undef TP_RPASTE
#undef TP_RPASTE_
#undef TP_ISA
#undef TP_VBYTES
#undef TP_TARGET
