"""cffi builder for tinypeft.backend._cmatmul, the optional C matmul.

setup.py hands `ffibuilder` to cffi (`cffi_modules=`), which writes the C glue and compiles it with
csrc/*.c during `pip install`. To rebuild in place while hacking on the C:

    python tinypeft/backend/_build_cmatmul.py
"""
import os
import sys

from cffi import FFI

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CSRC = os.path.join(ROOT, "csrc")

# Copied from csrc/matmul.h: cffi's parser takes declarations only, no #ifndef guards.
CDEF = """
int tp_matmul_f32(size_t m, size_t n, size_t k,
                  const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                  const float *b, ptrdiff_t rsb, ptrdiff_t csb,
                  float *c, ptrdiff_t ldc, int nthreads);
int tp_matmul_f64(size_t m, size_t n, size_t k,
                  const double *a, ptrdiff_t rsa, ptrdiff_t csa,
                  const double *b, ptrdiff_t rsb, ptrdiff_t csb,
                  double *c, ptrdiff_t ldc, int nthreads);
void tp_matmul_reference_f32(size_t m, size_t n, size_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                             const float *b, ptrdiff_t rsb, ptrdiff_t csb, float *c, ptrdiff_t ldc);
void tp_matmul_reference_f64(size_t m, size_t n, size_t k, const double *a, ptrdiff_t rsa, ptrdiff_t csa,
                             const double *b, ptrdiff_t rsb, ptrdiff_t csb, double *c, ptrdiff_t ldc);
const char *tp_kernel_name(void);
int tp_kernel_supported(const char *name);
int tp_select_kernel(const char *name);
int tp_vector_bytes(void);
void tp_blocking(int itemsize, int out[5]);
void erf_f32(const float *x, float *y, size_t n);
void erf_f64(const double *x, double *y, size_t n);
const char *tp_build_flags(void);
const char *tp_compiler(void);
"""
# csrc/quant.h, the quantized-weight kernels (same caveat: declarations only)
CDEF += """
typedef struct { int kind; const uint8_t *data; const float *scale; const float *code;
                 size_t blocksize; size_t n, k; } tp_qweight;
void tp_dequantize_absmax(const uint8_t *q, const float *code8, const float *absmax2, size_t blocksize2,
                          float offset, size_t count, float *out);
void tp_dequantize(const tp_qweight *w, size_t r0, size_t r1, size_t c0, size_t c1, float *out, size_t ldo);
int tp_qmatmul(const tp_qweight *w, size_t m, const float *x, size_t ldx, float *y, size_t ldy, int nthreads);
int tp_qmatmul_t(const tp_qweight *w, size_t m, const float *g, size_t ldg, float *dx, size_t lddx, int nthreads);
void tp_qgemv(const tp_qweight *w, const float *x, float *y, int nthreads);
int tp_qgemv_many(const tp_qweight *w, size_t count, const float *x, float *y, int nthreads);
"""
# csrc/decode_step.h, a quantized Llama decoder layer for one token (declarations only)
CDEF += """
typedef struct { const tp_qweight *qkv; const tp_qweight *o; const tp_qweight *gate_up; const tp_qweight *down;
                 const float *input_norm, *post_norm; float eps, scale; float *keys, *values;
                 size_t hidden, heads, kv_heads, head_dim, intermediate, max_length; } tp_llama_layer;
int tp_llama_decode_layer(const tp_llama_layer *layer, float *x, size_t length, const float *cos, const float *sin,
                          int nthreads);
"""
# csrc/gemv.h, the few-row float32 product (declarations only)
CDEF += """
int tp_gemv_f32(size_t m, size_t n, size_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                const float *b, ptrdiff_t rsb, ptrdiff_t csb, float *c, ptrdiff_t ldc, int nthreads);
"""
# csrc/rowops.h, the fused row kernels (declarations only)
CDEF += """
void tp_softmax_f32(const float *x, float *y, size_t rows, size_t cols, int safe, int nthreads);
void tp_layer_norm_f32(const float *x, const float *w, const float *b, float *y, float *xhat, float *rstd,
                       size_t rows, size_t cols, float eps, int nthreads);
void tp_rms_norm_f32(const float *x, const float *w, float *y, float *xhat, float *rstd, size_t rows,
                     size_t cols, float eps, int nthreads);
void tp_cross_entropy_f32(const float *x, const int64_t *target, int64_t ignore_index, float *lse, float *loss,
                          size_t rows, size_t cols, int nthreads);
void tp_cross_entropy_backward_f32(const float *x, const int64_t *target, int64_t ignore_index, const float *lse,
                                   const float *coef, const float *tcoef, float *dz, size_t rows, size_t cols,
                                   int nthreads);
void tp_silu_f32(const float *x, float *s, float *y, size_t n, int nthreads);
void tp_gelu_f32(const float *x, float *cdf, float *y, size_t n, int nthreads);
typedef struct {
    size_t B, H, Hk, L, S, E, Ev;
    const float *q, *k, *v;
    ptrdiff_t q_strides[3], k_strides[3], v_strides[3], o_strides[3], mask_strides[4];
    const uint8_t *mask_bool;
    const float *mask_add;
    float scale;
    float *p, *o;
} tp_attention_args;
int tp_attention_f32(const tp_attention_args *a, int nthreads);
"""
# csrc/peak.h, what bench/limits.py measures (declarations only)
CDEF += """
double tp_fma_peak(long iters);
double tp_stream_f32(int op, float *a, const float *b, const float *c, size_t n, float s, int nthreads);
"""
# csrc/gguf_quant.h, GGUF's own blocks decoded a row at a time (kind = the ggml type id)
CDEF += """
int tp_gguf_supported(int kind);
size_t tp_gguf_block_size(int kind);
size_t tp_gguf_type_size(int kind);
size_t tp_gguf_row_bytes(int kind, size_t k);
void tp_gguf_dequantize_row(int kind, const uint8_t *row, size_t c0, size_t c1, float *out);
void tp_gguf_dot_rows(int kind, const uint8_t *data, size_t r0, size_t r1, const float *x, size_t k, float *y);
"""

if sys.platform == "win32":
    CFLAGS = ["/O2"]
    LIBRARIES = []
    LDFLAGS = []
else:
    # -O3 only; the SIMD kernels get AVX2/AVX-512 through target attributes and are picked at run
    # time (see csrc/matmul.c), so the build runs anywhere. No -ffast-math: it changes results.
    # -ffp-contract=fast lets a*b+c become one FMA; it is GCC's default only outside -std=c99 mode,
    # so we say it instead of relying on the default.
    CFLAGS = ["-O3", "-std=gnu99", "-ffp-contract=fast", "-pthread"]
    LIBRARIES = ["m"]
    LDFLAGS = ["-pthread"]


def _source_path(name):
    # setuptools wants paths relative to setup.py (the working directory during a build).
    path = os.path.join(CSRC, name)
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "tinypeft.backend._cmatmul",
    f"""
#include "matmul.h"
#include "quant.h"
#include "gemv.h"
#include "rowops.h"
#include "peak.h"
#include "gguf_quant.h"
#include "decode_step.h"
static const char *tp_build_flags(void) {{ return "{' '.join(CFLAGS)}"; }}
static const char *tp_compiler(void) {{
#if defined(__VERSION__)
    return __VERSION__;
#else
    return "unknown";
#endif
}}
""",
    sources=[_source_path("matmul.c"), _source_path("gemm_reference.c"), _source_path("erf.c"), _source_path("quant.c"),
             _source_path("gemv.c"), _source_path("parallel.c"),
             _source_path("rowops.c"), _source_path("peak.c"), _source_path("gguf_quant.c"),
             _source_path("decode_step.c")],
    depends=[_source_path(h) for h in ("matmul.h", "gemm_kernel.h", "gemm_instance.h", "isa_instances.h", "quant.h",
                                       "gemv.h", "gemv_kernel.h", "parallel.h", "rowops.h", "rowops_kernel.h",
                                       "peak.h", "gguf_quant.h", "decode_step.h")],
    include_dirs=[_source_path("")],
    extra_compile_args=CFLAGS,
    extra_link_args=LDFLAGS,
    libraries=LIBRARIES,
)

if __name__ == "__main__":
    os.chdir(ROOT)
    # cffi writes the module under its dotted name, i.e. into tinypeft/backend/.
    ffibuilder.compile(tmpdir=".", verbose=True)
