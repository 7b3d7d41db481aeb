/*
 * workflow/gc.h: enforce this machine's budgets (issue 16): cache_budget
 * over the local object cache, template databases and warm spares, and
 * stash_keep over stashes without local edits. Local only: no store
 * request. Called by `git dnadata gc` and, quietly, by the background job
 * that follows a switch.
 */
#ifndef DD_WORKFLOW_GC_H
#define DD_WORKFLOW_GC_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct dd_repo;
struct dd_config;

enum {
	DD_GC_DRY_RUN = 1 << 0, /* decide and report, remove nothing */
	DD_GC_QUIET = 1 << 1,   /* no warnings (a background job); the result still says everything */
	/*
	 * The background job after a switch: never holds the working database's
	 * lock during a DROP, and never waits for it (nor for another gc): each
	 * copy's record is turned into a pending one under the lock taken without
	 * waiting, then the lock is released and the copy dropped
	 * (DD_PG_DROP_UNLOCKED). When the lock is held (a switch is running) it
	 * stops there, quietly: res->busy; the next job goes on.
	 */
	DD_GC_BACKGROUND = 1 << 2,
};

enum dd_gc_what {
	DD_GC_CACHE = 1,      /* files of the local cache, grouped by the snapshot that last needed them */
	DD_GC_TEMPLATE = 2,   /* a template database */
	DD_GC_SPARE = 3,      /* a warm spare */
	DD_GC_STASH = 4,      /* an unedited stash beyond stash_keep */
	DD_GC_KEPT_STASH = 5, /* a stash with local edits (or maybe): never dropped by gc; `name` says which */
};

struct dd_gc_action {
	enum dd_gc_what what;
	char snapshot[65];  /* the snapshot concerned ("" none or unknown) */
	char *name;         /* databases: the database; cache: NULL */
	char *conninfo;     /* databases: the working database it belongs to (borrowed from the config) */
	size_t files;       /* cache: how many files */
	char **paths;       /* cache: those files, relative to the cache (packs/ab/<hex>, data/ab/<hex>) */
	uint64_t bytes;     /* space it frees (databases: 0 when the size is unknown) */
	int64_t last_used;  /* seconds since the epoch; INT64_MIN: never (cache files no cached snapshot needs) */
	int named;          /* its snapshot is named by a local branch, tag or working database */
	int done;           /* removed (never on a dry run) */
	char *error;        /* why removing it failed (NULL: it did not) */
};

struct dd_gc_result {
	uint64_t budget;         /* cache_budget */
	int stash_keep;
	uint64_t cache_bytes;    /* before: the cache's own files */
	uint64_t pending_bytes;  /* of which waiting for a push (never removed) */
	char *cache_why;         /* the cache could not be planned (no store key ...): left alone; NULL: it was */
	uint64_t db_bytes;       /* before: templates and spares whose size is known */
	int db_unknown;          /* some working database's server could not be asked: its copies were left alone */
	char *db_why;            /* the first such reason */
	uint64_t freed;          /* done (or, on a dry run, would be) */
	size_t failed;           /* actions whose removal failed */
	int busy;                /* DD_GC_BACKGROUND: stopped early, a lock was held (the rest left for next time) */
	size_t media_dropped;    /* private media snapshots no stash names, dropped (dry run: would be) */
	struct dd_gc_action *actions; /* in the order they were (or would be) done */
	size_t nactions;
};

/*
 * Bring cache + templates + spares under cfg->cache_budget (cache files
 * the store holds first, least recently used first, snapshots no local
 * branch names before the rest; then templates and spares the same way)
 * and drop unedited stashes beyond cfg->stash_keep (oldest first). Never
 * removes a file the store is not known to hold, the working database, or
 * a stash with local edits (reported as DD_GC_KEPT_STASH). One failed
 * removal does not stop the rest: it is recorded in its action and
 * counted. 0 (check res->failed), or -1 when nothing could be decided.
 */
int dd_workflow_gc(struct dd_repo *repo, const struct dd_config *cfg, int flags, struct dd_gc_result *res);
/*
 * The background job's gc (after its spares): when the budgets are exceeded
 * (cheaply told: the recorded copies' sizes in one query per working
 * database, the cache's size, the unedited stashes' count),
 * dd_workflow_gc(DD_GC_QUIET | DD_GC_BACKGROUND), with one line in the
 * job's log saying what it dropped; nothing else otherwise. 1 it ran, 0 no
 * need, -1 (error set) it could not decide.
 */
int dd_workflow_gc_auto(struct dd_repo *repo, const struct dd_config *cfg);
/* From the records alone (no connection): may the budgets be exceeded (a reason for the job to start)? */
int dd_workflow_gc_maybe_due(struct dd_repo *repo, const struct dd_config *cfg);
void dd_gc_result_release(struct dd_gc_result *res);

/* ---- the store's gc (gc-store.c, issue 20) ---- */
struct dd_store_gc_summary {
	char *url;            /* the store, for the report (no credentials: a URL never holds any) */
	size_t commits;       /* commits whose ref files were read */
	size_t named;         /* snapshots git and the local records name */
	struct dd_store_gc_result res;
	struct dd_store_gc_uploads uploads; /* unfinished multipart uploads aborted (would be), kept */
};
/*
 * gc of the store itself: every snapshot named by a ref file at any commit
 * reachable from any ref (branches, tags, remote-tracking branches ...) or
 * by a local record is live; dd_store_gc() removes the rest that is older
 * than opts->grace by the store's clock (opts->clock_shift is set here:
 * DNADATA_TEST_GC_CLOCK_SHIFT in tests) and, still under its exclusive lock,
 * aborts the multipart uploads left unfinished before the same cutoff. Waits for
 * another gc --store of this clone; refuses while another machine's gc or a
 * writer holds a store lock (store/store-lock.h). 0, -1.
 */
int dd_workflow_store_gc(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_store_gc_opts *opts,
			 struct dd_store_gc_summary *out);
void dd_store_gc_summary_release(struct dd_store_gc_summary *s);

#endif
