/* isa_instances.h: the one list of instruction sets. It compiles the kernel file named by TP_KERNEL_FILE once
 * for each, in tp_kernel_isa()'s order (generic, then avx2 and avx512 on x86), so matmul.c, gemv.c and rowops.c
 * build their tables from the same three blocks:
 *
 *     #define TP_KERNEL_FILE "gemv_kernel.h"
 *     #include "isa_instances.h"
 *
 * Each inclusion of the kernel file sees
 *   TP_ISA           the instruction set's name as a bare word: generic, avx2, avx512
 *   TP_VBYTES        bytes in one SIMD register (16, 32, 64; 0 for plain scalar C)
 *   TP_TARGET        the attribute that enables the instruction set in these functions only
 *   TP_CPU_SUPPORTS  whether the running CPU has it (a C expression)
 * and #undefs TP_ISA, TP_VBYTES and TP_TARGET. TP_ISA_X86 is defined when the x86 instances were compiled.
 */
#define TP_ISA generic
#if defined(__GNUC__)    /* GCC and Clang: vector extensions */
#define TP_VBYTES 16     /* SSE2 on x86-64, NEON on arm64: both baseline */
#else
#define TP_VBYTES 0      /* any other compiler: scalar C */
#endif
#define TP_TARGET
#define TP_CPU_SUPPORTS 1
#include TP_KERNEL_FILE
#undef TP_CPU_SUPPORTS

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define TP_ISA_X86 1

#define TP_ISA avx2
#define TP_VBYTES 32
#define TP_TARGET __attribute__((target("avx2,fma")))
#define TP_CPU_SUPPORTS (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
#include TP_KERNEL_FILE
#undef TP_CPU_SUPPORTS

#define TP_ISA avx512
#define TP_VBYTES 64
#define TP_TARGET __attribute__((target("avx512f,avx2,fma")))
#define TP_CPU_SUPPORTS (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && \
                         __builtin_cpu_supports("fma"))
#include TP_KERNEL_FILE
#undef TP_CPU_SUPPORTS
#endif

#undef TP_KERNEL_FILE
