/* parallel.c: the lasting thread pool behind tp_parallel (see parallel.h).
 *
 * A call publishes (fn, ctx, nchunks), opens the job and broadcasts. A worker that wakes while the job
 * is open joins it (joined += 1) and takes chunks from `next` until none is left; one that wakes after
 * the caller has closed the job goes back to sleep without touching it. The caller takes chunks too,
 * then closes the job and waits only for the workers that joined, so a worker the OS has not run yet
 * costs nothing. After fork() only the forking thread exists in the child: a fork handler forgets the
 * workers, and the child starts its own on its first call.
 */
#include "parallel.h"

#if defined(_WIN32)
void tp_parallel(tp_chunk_fn fn, void *ctx, size_t nchunks, int nthreads)
{
    (void)nthreads;
    for (size_t c = 0; c < nchunks; c++) fn(ctx, c);
}
#else
#include <pthread.h>
#include <stdint.h>

#define MAX_WORKERS 63

static pthread_mutex_t busy = PTHREAD_MUTEX_INITIALIZER; /* one caller at a time */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* guards the job fields below */
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER, done = PTHREAD_COND_INITIALIZER;
static int nworkers;
static unsigned long generation; /* bumped per job: a worker joins each job at most once */
static int open_for;             /* workers 1 .. open_for may still join the current job; 0: closed */
static int joined;               /* workers inside the current job */
static tp_chunk_fn job_fn;
static void *job_ctx;
static size_t job_chunks;
static size_t next; /* the next unclaimed chunk, taken with an atomic add */
static int atfork_registered;
static unsigned long started_at[MAX_WORKERS + 1]; /* the generation before each worker's first job */

static void take_chunks(tp_chunk_fn fn, void *ctx, size_t nchunks)
{
    for (;;) {
        size_t c = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
        if (c >= nchunks) return;
        fn(ctx, c);
    }
}

static void *worker(void *p)
{
    pthread_mutex_lock(&lock);
    int id = (int)(intptr_t)p;
    unsigned long seen = started_at[id]; /* so it can join the job that started it */
    for (;;) {
        while (generation == seen || id > open_for) {
            seen = generation;
            pthread_cond_wait(&wake, &lock);
        }
        seen = generation;
        joined++;
        tp_chunk_fn fn = job_fn;
        void *ctx = job_ctx;
        size_t nchunks = job_chunks;
        pthread_mutex_unlock(&lock);
        take_chunks(fn, ctx, nchunks);
        pthread_mutex_lock(&lock);
        if (--joined == 0 && open_for == 0) pthread_cond_signal(&done);
    }
    return NULL;
}

static void forget_workers(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    busy = m;
    lock = m;
    wake = c;
    done = c;
    nworkers = 0;
    open_for = 0;
    joined = 0;
}

void tp_parallel(tp_chunk_fn fn, void *ctx, size_t nchunks, int nthreads)
{
    if (nthreads > MAX_WORKERS + 1) nthreads = MAX_WORKERS + 1;
    if ((size_t)nthreads > nchunks) nthreads = (int)nchunks;
    if (nthreads <= 1 || pthread_mutex_trylock(&busy) != 0) { /* one thread, or the pool is in use */
        for (size_t c = 0; c < nchunks; c++) fn(ctx, c);
        return;
    }
    pthread_mutex_lock(&lock);
    if (!atfork_registered) atfork_registered = pthread_atfork(NULL, NULL, forget_workers) == 0;
    while (nworkers < nthreads - 1) { /* start missing workers; if one fails, fewer threads share */
        int id = nworkers + 1;
        started_at[id] = generation;
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int ok = pthread_create(&tid, &attr, worker, (void *)(intptr_t)id) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) break;
        nworkers = id;
    }
    job_fn = fn;
    job_ctx = ctx;
    job_chunks = nchunks;
    next = 0;
    open_for = nworkers < nthreads - 1 ? nworkers : nthreads - 1;
    generation++;
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);

    take_chunks(fn, ctx, nchunks);

    pthread_mutex_lock(&lock);
    open_for = 0; /* every chunk is claimed: late workers stay asleep */
    while (joined > 0) pthread_cond_wait(&done, &lock);
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&busy);
}
#endif
