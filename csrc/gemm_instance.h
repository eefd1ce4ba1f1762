/* gemm_instance.h: one entry of matmul.c's kernel table, built once per instruction set.
 *
 * Before including, matmul.c defines:
 *   TP_ISA           the instruction set's name as a bare word: generic, avx2, avx512
 *   TP_VBYTES        bytes in one SIMD register (16, 32, 64; 0 for plain scalar C)
 *   TP_TARGET        the attribute that enables the instruction set in these functions only
 *   TP_CPU_SUPPORTS  an expression, true when this CPU can run them
 * This file compiles gemm_kernel.h for float and for double, then defines kernel_<TP_ISA>, the table
 * entry that names both, their blocking, the vector width and the CPU test, and forgets the settings.
 */
#define TP_PASTE_(a, b, c) a##b##c
#define TP_PASTE(a, b, c) TP_PASTE_(a, b, c) /* expands TP_ISA before pasting */
#define TP_STR_(x) #x
#define TP_STR(x) TP_STR_(x)

#define TP_T float
#define TP_SFX(name) TP_PASTE(name, _f32_, TP_ISA)
#include "gemm_kernel.h"
#undef TP_T
#undef TP_SFX

#define TP_T double
#define TP_SFX(name) TP_PASTE(name, _f64_, TP_ISA)
#include "gemm_kernel.h"
#undef TP_T
#undef TP_SFX

static int TP_PASTE(cpu_supports, _, TP_ISA)(void) { return TP_CPU_SUPPORTS; }

static const kernel_t TP_PASTE(kernel, _, TP_ISA) = {
    TP_STR(TP_ISA), TP_VBYTES,
    TP_PASTE(gemm, _f32_, TP_ISA), TP_PASTE(gemm, _f64_, TP_ISA),
    &TP_PASTE(blocking, _f32_, TP_ISA), &TP_PASTE(blocking, _f64_, TP_ISA),
    TP_PASTE(cpu_supports, _, TP_ISA),
};

#undef TP_ISA
#undef TP_VBYTES
#undef TP_TARGET
#undef TP_CPU_SUPPORTS
