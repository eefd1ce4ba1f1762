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

# The headers of the functions Python calls; cffi's cdef takes their declarations as they are, once the
# preprocessor lines (include guards, #include, #define) are dropped.
HEADERS = ["matmul.h", "quant.h", "decode_step.h", "gemv.h", "rowops.h", "peak.h", "gguf_quant.h"]


def _declarations(header):
    with open(os.path.join(CSRC, header)) as f:
        return "".join(line for line in f if not line.lstrip().startswith("#"))


CDEF = "".join(_declarations(h) for h in HEADERS) + """
const char *tp_build_flags(void);
const char *tp_compiler(void);
"""  # these two are defined in the glue below, from the build's own flags and compiler

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
{"".join(f'#include "{h}"{chr(10)}' for h in HEADERS)}static const char *tp_build_flags(void) {{ return "{' '.join(CFLAGS)}"; }}
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
