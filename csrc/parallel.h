/* parallel.h: the C side's one thread fan-out, a pool of lasting threads sharing chunks of work.
 *
 * tp_parallel(fn, ctx, nchunks, nthreads) calls fn(ctx, c) once for every chunk c = 0 .. nchunks-1 and
 * returns when all are done. The calling thread and up to nthreads-1 pool threads take chunks from a
 * shared counter, so a thread that the OS runs late (a busy machine) just takes fewer: the result never
 * depends on who ran what, because every chunk writes its own part of the output.
 * Pool threads are started on first use and sleep on a condition variable between calls: starting a
 * thread per call costs tens of microseconds, as long as a whole one-row product (a decoding step).
 * One call uses the pool at a time; a call that finds it busy (another Python thread inside a C kernel)
 * runs all its chunks on its own thread.
 */
#ifndef TINYPEFT_PARALLEL_H
#define TINYPEFT_PARALLEL_H

#include <stddef.h>

typedef void (*tp_chunk_fn)(void *ctx, size_t chunk);

void tp_parallel(tp_chunk_fn fn, void *ctx, size_t nchunks, int nthreads);

#endif
