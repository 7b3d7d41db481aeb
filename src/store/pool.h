/*
 * store/pool.h: a fixed set of worker threads with a bounded queue.
 *
 * dd_pool_submit() blocks while `max_inflight` jobs are queued or running,
 * which bounds the memory the writers and readers of a store can hold
 * whatever the input size. Each worker owns reusable zstd contexts handed
 * to its jobs. Workers never submit jobs themselves (no deadlock).
 */
#ifndef DD_STORE_POOL_H
#define DD_STORE_POOL_H

#include <pthread.h>
#include <zstd.h>

#include "util/buf.h"

struct dd_worker {
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
	struct dd_buf scratch; /* reused between jobs (sealed objects) */
};

struct dd_job {
	void (*run)(struct dd_job *job, struct dd_worker *w);
	struct dd_job *next;
	int done;             /* set by the pool under its lock */
	pthread_cond_t *wake; /* the waiter's, signalled when done (under the lock); NULL: none waits */
};

struct dd_pool;

int dd_pool_new(struct dd_pool **out, int nthreads, int max_inflight);
void dd_pool_free(struct dd_pool *p);
void dd_pool_submit(struct dd_pool *p, struct dd_job *job);
/* Has the job finished? (takes the lock; never blocks long) */
int dd_pool_is_done(struct dd_pool *p, struct dd_job *job);
/* Block until job->done. */
void dd_pool_wait(struct dd_pool *p, struct dd_job *job);
/* Block until job->done or `ms` milliseconds passed: 1 done, 0 not yet. */
int dd_pool_wait_for(struct dd_pool *p, struct dd_job *job, int ms);
int dd_pool_threads(const struct dd_pool *p);

#endif
