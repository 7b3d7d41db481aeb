/*
 * store/pool.c: worker threads and a bounded FIFO queue; see pool.h.
 *
 * One mutex guards the queue and every job's `done` flag; `space` wakes
 * submitters, `work` wakes workers; a job's first waiter waits on a
 * condition of its own (job->wake), signalled when its job is done, so a
 * finished job wakes only its waiter (one shared broadcast woke every
 * thread waiting on any job: with a media restore's 4 workers each waiting
 * on its chunk, 3 of the 4 went back to sleep at every chunk). A second
 * waiter of the same job uses the shared `finished`, broadcast only while
 * someone waits on it.
 */
#include "store/pool.h"
#include "util/buf.h"
#include "util/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct dd_pool {
	pthread_mutex_t mu;
	pthread_cond_t work, space;
	pthread_cond_t finished; /* broadcast for waiters that found a job's own condition taken */
	int shared_waiters;      /* how many wait on `finished` */
	struct dd_job *head, *tail;
	int inflight, max_inflight, stop, nthreads;
	pthread_t *threads;
};

static void *
worker_main(void *arg)
{
	struct dd_pool *p = arg;
	struct dd_worker w = { ZSTD_createCCtx(), ZSTD_createDCtx(), DD_BUF_INIT };

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->work, &p->mu);
		if (!p->head)
			break;
		struct dd_job *j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		j->run(j, &w);
		pthread_mutex_lock(&p->mu);
		j->done = 1;
		p->inflight--;
		pthread_cond_signal(&p->space);
		if (j->wake)
			pthread_cond_signal(j->wake);
		if (p->shared_waiters)
			pthread_cond_broadcast(&p->finished);
	}
	pthread_mutex_unlock(&p->mu);
	ZSTD_freeCCtx(w.zc);
	ZSTD_freeDCtx(w.zd);
	dd_buf_release(&w.scratch);
	return NULL;
}

int
dd_pool_new(struct dd_pool **out, int nthreads, int max_inflight)
{
	struct dd_pool *p = dd_calloc(1, sizeof(*p));

	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->space, NULL);
	pthread_cond_init(&p->finished, NULL);
	p->max_inflight = max_inflight < 1 ? 1 : max_inflight;
	p->threads = dd_calloc((size_t)nthreads, sizeof(*p->threads));
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
			dd_pool_free(p);
			return dd_error("cannot start worker threads");
		}
		p->nthreads++;
	}
	*out = p;
	return 0;
}

void
dd_pool_free(struct dd_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->space);
	pthread_cond_destroy(&p->finished);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void
dd_pool_submit(struct dd_pool *p, struct dd_job *job)
{
	job->next = NULL;
	job->done = 0;
	job->wake = NULL;
	pthread_mutex_lock(&p->mu);
	while (p->inflight >= p->max_inflight)
		pthread_cond_wait(&p->space, &p->mu);
	p->inflight++;
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
}

/*
 * Under p->mu: wait until `job` is done, or until `until` (NULL: no limit)
 * passes. The first waiter of a job waits on a condition of its own; any
 * other (two threads waiting on one job) on the pool's shared one, so no
 * waiter is ever left unsignalled.
 */
static void
wait_locked(struct dd_pool *p, struct dd_job *job, const struct timespec *until)
{
	pthread_cond_t own, *c = &p->finished;
	int r = 0;

	if (job->done)
		return;
	if (!job->wake) {
		pthread_cond_init(&own, NULL);
		job->wake = c = &own;
	} else {
		p->shared_waiters++;
	}
	while (!job->done && r == 0)
		r = until ? pthread_cond_timedwait(c, &p->mu, until) : pthread_cond_wait(c, &p->mu);
	if (c == &own) {
		job->wake = NULL;
		pthread_cond_destroy(&own);
	} else {
		p->shared_waiters--;
	}
}

void
dd_pool_wait(struct dd_pool *p, struct dd_job *job)
{
	pthread_mutex_lock(&p->mu);
	wait_locked(p, job, NULL);
	pthread_mutex_unlock(&p->mu);
}

int
dd_pool_wait_for(struct dd_pool *p, struct dd_job *job, int ms)
{
	struct timespec until;
	int done;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&p->mu);
	wait_locked(p, job, &until);
	done = job->done;
	pthread_mutex_unlock(&p->mu);
	return done;
}

int
dd_pool_is_done(struct dd_pool *p, struct dd_job *job)
{
	int done;

	pthread_mutex_lock(&p->mu);
	done = job->done;
	pthread_mutex_unlock(&p->mu);
	return done;
}

int
dd_pool_threads(const struct dd_pool *p)
{
	return p->nthreads;
}
