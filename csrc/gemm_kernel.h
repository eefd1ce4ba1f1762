/* gemm_kernel.h: the packed, cache-blocked GEMM for one element type and one instruction set.
 *
 * gemm_instance.h includes this file once per (type, instruction set). Before including, define:
 *   TP_T          element type: float or double
 *   TP_SFX(name)  pastes a suffix onto every name here (name##_f32_avx2) so instances don't collide
 *   TP_VBYTES     bytes in one SIMD register: 16, 32 or 64; 0 for plain scalar C
 *   TP_TARGET     attribute that lets the compiler use the instruction set in these functions only,
 *                 e.g. __attribute__((target("avx2,fma"))); empty for the baseline
 *
 * The algorithm (Goto & van de Geijn 2008, as in BLIS and OpenBLAS):
 *
 *   for jc in n, step NC:              B block  [KC x NC] stays in L3
 *     for pc in k, step KC:            pack B[pc:+KC, jc:+NC] into NR-wide panels
 *       for ic in m, step MC:          pack A[ic:+MC, pc:+KC] into MR-tall panels; stays in L2
 *         for jr in NC, step NR:       one B panel [KC x NR] stays in L1
 *           for ir in MC, step MR:     micro-kernel: C[MR x NR] += A panel @ B panel, in registers
 *
 * Why pack: the micro-kernel then reads both operands with unit stride, in exactly the order it
 * uses them, whatever the strides of the caller's arrays (a transposed view costs only a different
 * gather while packing, O(mk + kn) work against the O(mnk) of the product). Panels are contiguous,
 * so they don't evict each other from cache, and they are zero-padded to whole MR x NR tiles, so
 * the inner loop has no edge cases.
 *
 * Why these sizes: the MR x NR tile of C lives in registers: 6 rows x 2 vectors = 12 accumulators,
 * plus 2 vectors of B and 1 broadcast of A, fits in the 16 registers of SSE/AVX2. 12 independent
 * FMAs per step also cover the FMA latency (4 cycles x 2 units = 8 in flight). KC = 256 keeps a
 * B panel (256 x 16 floats = 16 KB with AVX2, 32 KB with AVX-512) and an A panel (6 KB) inside a
 * 32-48 KB L1. MC = 192 makes the A block 192 x 256 floats = 192 KB, a fraction of a 1-2 MB L2.
 * NC = 2048 makes the B block 2 MB, for L2/L3. bench/matmul.py is how they were chosen and checked.
 */

#define MR 6
#define NV 2 /* vectors per row of the tile */
#if TP_VBYTES > 0
typedef TP_T TP_SFX(vec) __attribute__((vector_size(TP_VBYTES)));
#define VL ((int)(TP_VBYTES / sizeof(TP_T))) /* lanes per vector */
#else
typedef TP_T TP_SFX(vec); /* no vector extension: a "vector" of one lane, same code */
#define VL 1
#endif
#define VEC TP_SFX(vec)
#define NR (NV * VL)
#define KC 256
#define MC (32 * MR)
#define NC 2048

static const tp_blocking_t TP_SFX(blocking) = {MR, NR, MC, KC, NC};

/* The packing both operands share: n indices of a matrix cut into panels of w, each panel stored k-major,
 * dst[l*w + i] = src[(p0 + i) * s_panel + l * s_k] for the panel that starts at p0; indices past n are zeros,
 * so the micro-kernel never meets an edge. Inlined with w = MR or NR, a constant. */
static inline TP_TARGET void TP_SFX(pack)(int n, int kc, int w, const TP_T *src, ptrdiff_t s_panel, ptrdiff_t s_k,
                                          TP_T *dst)
{
    for (int p0 = 0; p0 < n; p0 += w) {
        int pw = n - p0 < w ? n - p0 : w;
        const TP_T *panel = src + p0 * s_panel;
        for (int l = 0; l < kc; l++) {
            const TP_T *line = panel + l * s_k;
            if (s_panel == 1 && pw == w) {
                memcpy(dst, line, w * sizeof(TP_T));
            } else {
                for (int i = 0; i < pw; i++) dst[i] = line[i * s_panel];
                for (int i = pw; i < w; i++) dst[i] = 0;
            }
            dst += w;
        }
    }
}

/* A[0:mc, 0:kc] -> panels of MR rows, each stored k-major: dst[l*MR + i] = A[i0 + i, l].
 * Rows past mc are zeros. */
static TP_TARGET void TP_SFX(pack_a)(int mc, int kc, const TP_T *a, ptrdiff_t rsa, ptrdiff_t csa,
                                     TP_T *dst)
{
    TP_SFX(pack)(mc, kc, MR, a, rsa, csa, dst);
}

/* B[0:kc, 0:nc] -> panels of NR columns, each stored row by row: dst[l*NR + j] = B[l, j0 + j].
 * Columns past nc are zeros. */
static TP_TARGET void TP_SFX(pack_b)(int kc, int nc, const TP_T *b, ptrdiff_t rsb, ptrdiff_t csb,
                                     TP_T *dst)
{
    TP_SFX(pack)(nc, kc, NR, b, csb, rsb, dst);
}

/* C[0:mr, 0:nr] (+)= A panel [MR x kc] @ B panel [kc x NR]; overwrite on the first k block. */
static TP_TARGET void TP_SFX(kernel)(int kc, const TP_T *restrict a, const TP_T *restrict b,
                                     TP_T *restrict c, ptrdiff_t ldc, int mr, int nr, int accumulate)
{
    VEC acc[MR][NV];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NV; j++) acc[i][j] = (VEC){0};

    /* kc rank-1 updates. `scalar * vector` broadcasts the scalar; with FMA available the compiler
     * contracts `acc += a * b` into one fused multiply-add (-ffp-contract=fast, not -ffast-math:
     * nothing is reassociated, the sum over k runs in order). */
    for (int l = 0; l < kc; l++) {
        VEC bv[NV];
        memcpy(bv, b, sizeof bv);
        for (int i = 0; i < MR; i++) {
            TP_T ai = a[i];
            for (int j = 0; j < NV; j++) acc[i][j] += ai * bv[j];
        }
        a += MR;
        b += NR;
    }

    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            for (int j = 0; j < NV; j++) {
                TP_T *cp = c + i * ldc + j * VL;
                VEC t = acc[i][j];
                if (accumulate) {
                    VEC old;
                    memcpy(&old, cp, sizeof old);
                    t += old;
                }
                memcpy(cp, &t, sizeof t);
            }
        }
    } else { /* edge tile: only part of it is inside C */
        TP_T tile[MR * NR];
        memcpy(tile, acc, sizeof tile);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++)
                c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
    }
}

/* C[m, n] = A[m, k] @ B[k, n] on one thread, with its own packing buffers. k > 0. */
static TP_TARGET int TP_SFX(gemm)(size_t m, size_t n, size_t k, const void *A_, ptrdiff_t rsa,
                                  ptrdiff_t csa, const void *B_, ptrdiff_t rsb, ptrdiff_t csb,
                                  void *C_, ptrdiff_t ldc)
{
    const TP_T *A = A_, *B = B_;
    TP_T *C = C_;
    size_t kc_max = k < KC ? k : KC;
    size_t mc_max = (m < MC ? m : MC) + MR;  /* + MR: room for the zero-padded last panel */
    size_t nc_max = (n < NC ? n : NC) + NR;
    TP_T *abuf = tp_alloc(mc_max * kc_max * sizeof(TP_T));
    TP_T *bbuf = tp_alloc(nc_max * kc_max * sizeof(TP_T));
    if (!abuf || !bbuf) {
        tp_free(abuf);
        tp_free(bbuf);
        return -1;
    }

    for (size_t jc = 0; jc < n; jc += NC) {
        int nc = n - jc < NC ? (int)(n - jc) : NC;
        for (size_t pc = 0; pc < k; pc += KC) {
            int kc = k - pc < KC ? (int)(k - pc) : KC;
            TP_SFX(pack_b)(kc, nc, B + (ptrdiff_t)pc * rsb + (ptrdiff_t)jc * csb, rsb, csb, bbuf);
            for (size_t ic = 0; ic < m; ic += MC) {
                int mc = m - ic < MC ? (int)(m - ic) : MC;
                TP_SFX(pack_a)(mc, kc, A + (ptrdiff_t)ic * rsa + (ptrdiff_t)pc * csa, rsa, csa, abuf);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        TP_SFX(kernel)(kc, abuf + ir * kc, bbuf + jr * kc,
                                       C + (ptrdiff_t)(ic + ir) * ldc + jc + jr, ldc, mr, nr, pc > 0);
                    }
                }
            }
        }
    }
    tp_free(abuf);
    tp_free(bbuf);
    return 0;
}

#undef MR
#undef NV
#undef VL
#undef VEC
#undef NR
#undef KC
#undef MC
#undef NC
