/*
 * cmd/progress.c: see progress.h. The progress line is util/log.h's (only
 * on a terminal, redrawn in place); logs and pipes get the summary alone.
 */
#include "cmd/progress.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
dd_progress_start(struct dd_progress *pr)
{
	pr->start = now();
}

void
dd_progress_transfer(const struct dd_transfer_progress *p, void *arg)
{
	struct dd_progress *pr = arg;
	char done[32], total[32], rate[32], eta[32] = "";
	double t = now() - pr->start, bps = t > 0.2 ? (double)p->done_bytes / t : 0;

	if (!dd_progress_enabled())
		return;
	dd_format_bytes(done, sizeof(done), (double)p->done_bytes);
	dd_format_bytes(total, sizeof(total), (double)p->total_bytes);
	dd_format_bytes(rate, sizeof(rate), bps);
	if (bps > 0 && p->total_bytes > p->done_bytes) {
		uint64_t s = (uint64_t)((double)(p->total_bytes - p->done_bytes) / bps);
		snprintf(eta, sizeof(eta), ", ETA %" PRIu64 ":%02" PRIu64, s / 60, s % 60);
	}
	dd_progress("%s: %" PRIu64 "/%" PRIu64 " files, %s of %s, %s/s%s", p->what, p->done_files, p->total_files,
		    done, total, rate, eta);
}

static const char *
plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

void
dd_progress_summary(const struct dd_progress *pr, const char *cmd, const char *verb,
		    const struct dd_transfer_stats *st, size_t nsnap)
{
	char moved[32], skipped[32];

	dd_progress_done();
	if (st->unavailable)
		dd_warn("%s: %" PRIu64 " snapshot%s in neither the local cache nor the store, skipped (see above)", cmd,
			st->unavailable, plural(st->unavailable));
	dd_format_bytes(moved, sizeof(moved), (double)st->bytes);
	dd_format_bytes(skipped, sizeof(skipped), (double)st->skipped_bytes);
	if (!st->files)
		dd_info("%s: nothing to transfer (%zu snapshot%s; %" PRIu64 " file%s already there; %" PRIu64
			" request%s)", cmd, nsnap, plural(nsnap), st->skipped_files, plural(st->skipped_files),
			st->requests, plural(st->requests));
	else
		dd_info("%s: %s %" PRIu64 " file%s (%s) in %.1f s; %" PRIu64 " already there (%s); %zu snapshot%s, %" PRIu64
			" request%s", cmd, verb, st->files, plural(st->files), moved, now() - pr->start, st->skipped_files,
			skipped, nsnap, plural(nsnap), st->requests, plural(st->requests));
}
