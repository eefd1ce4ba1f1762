/* gemv_kernel.h: y[m, cols] = x[m, k] @ B[k, cols] for a few rows m (1 to GEMV_MAX_M), float32, one
 * instruction set. gemv.c includes it once per instruction set, after defining TP_ISA, TP_VBYTES and
 * TP_TARGET as matmul.c does for gemm_kernel.h.
 *
 * With one row (a decoding step) a product does 2 flops per weight it reads, so the time is the time to
 * stream the weights from memory once; the GEMM's packing would read and write them twice more. Both of
 * the layouts models store are read in place, in memory order:
 *   dot:  B = W^T, W [n, k] row-major (nn.Linear):   y[i, j] = sum_l x[i, l] W[j, l], one dot per row of W,
 *         four rows of W at a time, each x row times each of them in vector accumulators.
 *   axpy: B [k, n] row-major (GPT-2's Conv1D):       y[i, :] = sum_l x[i, l] B[l, :], a block of CB
 *         columns of y kept in a small buffer (it stays in L1) while the rows of B stream through it.
 * Every x row shares each weight load, which is why m > 1 costs little more than m = 1.
 */
#define TP_GPASTE_(a, b) a##b
#define TP_GPASTE(a, b) TP_GPASTE_(a, b)
#define GSFX(name) TP_GPASTE(name, TP_GPASTE(_, TP_ISA))

#if TP_VBYTES > 0
typedef float GSFX(gvec) __attribute__((vector_size(TP_VBYTES)));
#define GVL ((int)(TP_VBYTES / sizeof(float)))
#else
typedef float GSFX(gvec);
#define GVL 1
#endif
#define GVEC GSFX(gvec)

static TP_TARGET inline GVEC GSFX(gload)(const float *p)
{
    GVEC v;
    memcpy(&v, p, sizeof v); /* unaligned load */
    return v;
}

static TP_TARGET inline float GSFX(ghsum)(GVEC v)
{
    float lanes[GVL], s = 0;
    memcpy(lanes, &v, sizeof v);
    for (int i = 0; i < GVL; i++) s += lanes[i];
    return s;
}

/* dot layout, M rows of x fixed at compile time (inlined for each M) so the accumulators are registers. */
static TP_TARGET inline __attribute__((always_inline)) void GSFX(dot_rows)(
    const int M, size_t k, const float *x, ptrdiff_t ldx, const float *w, ptrdiff_t ldw, size_t j0,
    size_t j1, float *y, ptrdiff_t ldy)
{
    size_t kv = k / GVL * GVL;
    size_t j = j0;
    for (; j + 4 <= j1; j += 4) {
        const float *w0 = w + j * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        GVEC acc[GEMV_MAX_M][4];
        for (int i = 0; i < M; i++)
            for (int r = 0; r < 4; r++) acc[i][r] = (GVEC){0};
        for (size_t l = 0; l < kv; l += GVL) {
            GVEC b0 = GSFX(gload)(w0 + l), b1 = GSFX(gload)(w1 + l), b2 = GSFX(gload)(w2 + l),
                 b3 = GSFX(gload)(w3 + l);
            for (int i = 0; i < M; i++) {
                GVEC a = GSFX(gload)(x + i * ldx + l);
                acc[i][0] += a * b0;
                acc[i][1] += a * b1;
                acc[i][2] += a * b2;
                acc[i][3] += a * b3;
            }
        }
        for (int i = 0; i < M; i++) {
            const float *xi = x + i * ldx;
            float s[4];
            for (int r = 0; r < 4; r++) s[r] = GSFX(ghsum)(acc[i][r]);
            for (size_t l = kv; l < k; l++) {
                s[0] += xi[l] * w0[l];
                s[1] += xi[l] * w1[l];
                s[2] += xi[l] * w2[l];
                s[3] += xi[l] * w3[l];
            }
            for (int r = 0; r < 4; r++) y[i * ldy + j + r] = s[r];
        }
    }
    for (; j < j1; j++) { /* the last rows of W, one at a time */
        const float *wj = w + j * ldw;
        for (int i = 0; i < M; i++) {
            const float *xi = x + i * ldx;
            GVEC acc = (GVEC){0};
            for (size_t l = 0; l < kv; l += GVL) acc += GSFX(gload)(xi + l) * GSFX(gload)(wj + l);
            float s = GSFX(ghsum)(acc);
            for (size_t l = kv; l < k; l++) s += xi[l] * wj[l];
            y[i * ldy + j] = s;
        }
    }
}

static TP_TARGET void GSFX(gemv_dot)(int m, size_t k, const float *x, ptrdiff_t ldx, const float *w,
                                     ptrdiff_t ldw, size_t j0, size_t j1, float *y, ptrdiff_t ldy)
{
    switch (m) {
    case 1: GSFX(dot_rows)(1, k, x, ldx, w, ldw, j0, j1, y, ldy); break;
    case 2: GSFX(dot_rows)(2, k, x, ldx, w, ldw, j0, j1, y, ldy); break;
    case 3: GSFX(dot_rows)(3, k, x, ldx, w, ldw, j0, j1, y, ldy); break;
    default: GSFX(dot_rows)(4, k, x, ldx, w, ldw, j0, j1, y, ldy); break;
    }
}

/* axpy layout: columns j0 .. j1 of y, in blocks of CB columns accumulated in `acc` [m, CB]. */
#define CB 512
static TP_TARGET void GSFX(gemv_axpy)(int m, size_t k, const float *x, ptrdiff_t ldx, const float *b,
                                      ptrdiff_t ldb, size_t j0, size_t j1, float *y, ptrdiff_t ldy)
{
    float acc[GEMV_MAX_M][CB] __attribute__((aligned(64)));
    for (size_t jb = j0; jb < j1; jb += CB) {
        int nb = j1 - jb < CB ? (int)(j1 - jb) : CB;
        int nv = nb / GVL * GVL;
        for (int i = 0; i < m; i++) memset(acc[i], 0, nb * sizeof(float));
        for (size_t l = 0; l < k; l++) {
            const float *row = b + l * ldb + jb;
            for (int i = 0; i < m; i++) {
                float xv = x[i * ldx + l];
                float *ai = acc[i];
                int c = 0;
                for (; c < nv; c += GVL) {
                    GVEC t;
                    memcpy(&t, ai + c, sizeof t);
                    t += xv * GSFX(gload)(row + c);
                    memcpy(ai + c, &t, sizeof t);
                }
                for (; c < nb; c++) ai[c] += xv * row[c];
            }
        }
        for (int i = 0; i < m; i++) memcpy(y + i * ldy + jb, acc[i], nb * sizeof(float));
    }
}
#undef CB

static const gemv_kernel_t GSFX(gemv_kernel) = {GSFX(gemv_dot), GSFX(gemv_axpy)};

#undef GVL
#undef GVEC
#undef GSFX
#undef TP_GPASTE
#undef TP_GPASTE_
#undef TP_ISA
#undef TP_VBYTES
#undef TP_TARGET
