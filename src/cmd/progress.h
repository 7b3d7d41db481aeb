/*
 * cmd/progress.h: transfer progress on a terminal (util/log.h's progress
 * line), and the one-line summary at the end of a push or fetch.
 */
#ifndef DD_CMD_PROGRESS_H
#define DD_CMD_PROGRESS_H

#include <stddef.h>

#include "store/store.h"

struct dd_progress {
	double start; /* monotonic seconds */
};

void dd_progress_start(struct dd_progress *pr);
/* A dd_store_progress_fn: "uploading: 12/64 files, 190 MiB of 1.0 GiB, 45 MiB/s, ETA 0:18" (arg: the dd_progress). */
void dd_progress_transfer(const struct dd_transfer_progress *p, void *arg);
/*
 * The one-line summary: "push: sent 12 files (190.2 MiB) in 4.1 s; 3 already
 * there (1.2 MiB); 2 snapshots, 14 requests". `verb` is "sent"/"received".
 */
void dd_progress_summary(const struct dd_progress *pr, const char *cmd, const char *verb,
			 const struct dd_transfer_stats *st, size_t nsnap);

#endif
