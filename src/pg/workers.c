/*
 * pg/workers.c: what the snapshot's COPY pool (dump.c) and the restore's
 * task runners (restore.c) share: a team of threads that stops at the first
 * failure, waited for with a progress line; and the clock and byte counts
 * those progress lines show.
 *
 * Invariants: the first failure's error and hint are the ones reported
 * (later ones, often consequences such as "stopped", are dropped); every
 * started thread is joined before dd_pg_workers_run() returns, so the
 * caller may free what the workers used.
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double
dd_pg_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
dd_pg_workers_init(struct dd_pg_workers *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
}

void
dd_pg_workers_release(struct dd_pg_workers *w)
{
	dd_error_saved_free(&w->error);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}

void
dd_pg_workers_fail(struct dd_pg_workers *w)
{
	pthread_mutex_lock(&w->lock);
	if (!w->failed) {
		w->failed = 1;
		if (!dd_error_last())
			dd_error("unknown error");
		dd_error_save(&w->error);
	}
	pthread_mutex_unlock(&w->lock);
}

int
dd_pg_workers_stopped(struct dd_pg_workers *w)
{
	pthread_mutex_lock(&w->lock);
	int f = w->failed;
	pthread_mutex_unlock(&w->lock);
	return f || dd_pg_interrupted();
}

struct team {
	struct dd_pg_workers *w;
	void (*fn)(void *);
	void *arg;
};

static void *
team_main(void *p)
{
	struct team *t = p;

	t->fn(t->arg);
	pthread_mutex_lock(&t->w->lock);
	t->w->exited++;
	pthread_cond_signal(&t->w->cond);
	pthread_mutex_unlock(&t->w->lock);
	return NULL;
}

int
dd_pg_workers_run(struct dd_pg_workers *w, size_t n, void (*fn)(void *), void *arg,
		  void (*progress)(void *arg, double elapsed), void *parg)
{
	struct team t = { w, fn, arg };
	pthread_t *th = dd_calloc(n + 1, sizeof(*th));
	size_t started = 0;
	double start = dd_pg_seconds();

	for (; started < n; started++)
		if (pthread_create(&th[started], NULL, team_main, &t) != 0) {
			dd_error("cannot start a thread");
			dd_pg_workers_fail(w);
			break;
		}
	for (;;) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 200 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000L)
			until.tv_sec++, until.tv_nsec -= 1000000000L;
		pthread_mutex_lock(&w->lock);
		if (w->exited < started)
			pthread_cond_timedwait(&w->cond, &w->lock, &until);
		int finished = w->exited == started;
		pthread_mutex_unlock(&w->lock);
		if (finished)
			break;
		if (progress)
			progress(parg, dd_pg_seconds() - start);
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
	dd_progress_done();
	if (dd_pg_interrupted())
		return dd_error("interrupted");
	if (w->failed)
		return dd_error_restore(&w->error);
	return 0;
}
