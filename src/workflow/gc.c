/*
 * workflow/gc.c: the budgets of issue 16, enforced locally (see gc.h).
 *
 * Steps: collect (the snapshots local branches, tags and working databases
 * name; the cache's plan from store/cache-gc.c, made offline; each working
 * database's copies with their sizes, one connection per server), decide
 * (stash_keep per working database; then cache files, then templates and
 * spares, in least-recently-used order until the total is under the
 * budget), then act unless it is a dry run. Deciding first means a dry run
 * reports exactly what a real run would do on the same state.
 *
 * Safety: the cache only loses what the store is known to hold (cache-gc.c);
 * databases go through dd_pg_copy_drop() under the working database's lock,
 * which drops only our own copies and refuses a stash with local edits
 * (checked again at drop time, so an edit made after the decision is kept).
 * A stash with edits is never chosen: it is reported with the command that
 * drops it. Two gc runs take turns (flock on <statedir>/locks/gc.lock).
 */
#include "workflow/gc.h"
#include "workflow/workflow.h"
#include "config/config.h"
#include "git/history.h"
#include "git/ref.h"
#include "git/repo.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One working database and its copies. */
struct workdb {
	const char *conninfo;
	struct dd_pg_copy *copies;
	size_t ncopies;
	int listed; /* its server answered */
};

struct gc {
	struct dd_repo *repo;
	const struct dd_config *cfg;
	int flags;
	struct dd_gc_result *res;
	char **named;
	size_t nnamed;
	struct dd_store *st;
	struct dd_cache_plan plan;
	struct workdb *dbs;
	size_t ndbs;
};

static int64_t
iso_seconds(const char *iso)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!iso || sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
			   &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

static int
is_named(const struct gc *g, const char *id)
{
	for (size_t i = 0; id && *id && i < g->nnamed; i++)
		if (!strcmp(g->named[i], id))
			return 1;
	return 0;
}

static struct dd_gc_action *
add_action(struct gc *g, enum dd_gc_what what)
{
	struct dd_gc_result *r = g->res;
	struct dd_gc_action *a;

	r->actions = dd_realloc(r->actions, (r->nactions + 1) * sizeof(*r->actions));
	a = &r->actions[r->nactions++];
	memset(a, 0, sizeof(*a));
	a->what = what;
	return a;
}

/* ---- collect ---- */

/* The distinct working databases of the profiles (one conninfo each). */
static void
collect_dbs(struct gc *g)
{
	const struct dd_config *cfg = g->cfg;

	g->dbs = dd_calloc(cfg->nprofiles + 1, sizeof(*g->dbs));
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		const char *ci = dd_config_database(cfg, &cfg->profiles[i]);
		size_t k;
		for (k = 0; k < g->ndbs && strcmp(g->dbs[k].conninfo, ci); k++)
			;
		if (k == g->ndbs)
			g->dbs[g->ndbs++].conninfo = ci;
	}
}

/* Snapshots that are not garbage: the work tree's ref files, every branch's and tag's, each working database's. */
static int
collect_named(struct gc *g)
{
	char *refs = dd_path_join(g->repo->dnadata, "refs");
	int rc = -1;

	if (dd_ref_snapshot_ids(&g->named, &g->nnamed, refs, NULL, 0) < 0 ||
	    dd_history_ids_all(&g->named, &g->nnamed, g->repo, NULL, 0) < 0)
		goto out;
	for (size_t i = 0; i < g->ndbs; i++) {
		struct dd_pg_state s;
		if (dd_pg_state_read(&s, g->repo->statedir, g->dbs[i].conninfo) < 0) {
			dd_error_clear(); /* a conninfo that does not parse: nothing recorded for it */
			continue;
		}
		if (s.snapshot) {
			g->named = dd_realloc(g->named, (g->nnamed + 1) * sizeof(*g->named));
			g->named[g->nnamed++] = dd_strdup(s.snapshot);
		}
		dd_pg_state_release(&s);
	}
	rc = 0;
out:
	free(refs);
	return rc;
}

/*
 * Each working database's copies, with sizes (one connection per working
 * database that has any recorded; none otherwise): a server that cannot be
 * asked leaves its copies alone.
 */
static void
collect_copies(struct gc *g)
{
	for (size_t i = 0; i < g->ndbs; i++) {
		struct workdb *d = &g->dbs[i];
		if (dd_pg_copies_list(&d->copies, &d->ncopies, g->repo->statedir, d->conninfo, DD_PG_LIST_VERIFY) < 0) {
			if (!g->res->db_unknown)
				g->res->db_why = dd_strdup(dd_error_last() ? dd_error_last() : "cannot connect");
			g->res->db_unknown = 1;
			dd_error_clear();
			d->copies = NULL, d->ncopies = 0;
			continue;
		}
		d->listed = 1;
		for (size_t k = 0; k < d->ncopies; k++)
			if (d->copies[k].kind != DD_PG_COPY_STASH && d->copies[k].size > 0)
				g->res->db_bytes += (uint64_t)d->copies[k].size;
	}
}

/* ---- decide ---- */

static void
copy_action(struct gc *g, const struct workdb *d, const struct dd_pg_copy *c, enum dd_gc_what what)
{
	struct dd_gc_action *a = add_action(g, what);

	snprintf(a->snapshot, sizeof(a->snapshot), "%s", c->snapshot ? c->snapshot : "");
	a->name = dd_strdup(c->name);
	a->conninfo = (char *)d->conninfo;
	a->bytes = c->size > 0 ? (uint64_t)c->size : 0;
	a->last_used = iso_seconds(c->used);
	a->named = is_named(g, c->snapshot);
}

/*
 * A stash recorded as unedited is asked again now (its change fingerprint,
 * as dd_pg_copy_drop() will): one edited since, or that cannot be told, is
 * kept like any stash with edits, so a dry run says what the run will do.
 */
static void
recheck_unedited(struct workdb *d)
{
	for (size_t k = 0; k < d->ncopies; k++) {
		struct dd_pg_copy *c = &d->copies[k];
		enum dd_pg_change ch = DD_PG_UNKNOWN;
		char *why = NULL;
		if (c->kind != DD_PG_COPY_STASH || c->modified != DD_PG_MOD_NO)
			continue;
		if (!c->fingerprint || dd_pg_changes_of(&ch, d->conninfo, c->name, c->fingerprint, 1000, &why) < 0)
			dd_error_clear();
		free(why);
		if (ch != DD_PG_UNCHANGED && ch != DD_PG_MISSING)
			c->modified = ch == DD_PG_CHANGED ? DD_PG_MOD_YES : DD_PG_MOD_UNKNOWN;
	}
}

/* Unedited stashes beyond stash_keep (newest kept), per working database; stashes with edits reported. */
static void
decide_stashes(struct gc *g)
{
	for (size_t i = 0; i < g->ndbs; i++) {
		struct workdb *d = &g->dbs[i];
		size_t unedited = 0, seen = 0;
		if (d->listed)
			recheck_unedited(d);
		for (size_t k = 0; d->listed && k < d->ncopies; k++)
			if (d->copies[k].kind == DD_PG_COPY_STASH && dd_pg_copy_disposable(&d->copies[k]))
				unedited++;
		/* stashes come least recently used first: the first (unedited - keep) go */
		for (size_t k = 0; d->listed && k < d->ncopies; k++) {
			const struct dd_pg_copy *c = &d->copies[k];
			if (c->kind != DD_PG_COPY_STASH)
				continue;
			if (!dd_pg_copy_disposable(c))
				copy_action(g, d, c, DD_GC_KEPT_STASH);
			else if (seen++ + (size_t)g->cfg->stash_keep < unedited)
				copy_action(g, d, c, DD_GC_STASH);
		}
	}
}

static int
cmp_copy_order(const void *a, const void *b)
{
	const struct dd_gc_action *x = a, *y = b;

	if (x->named != y->named)
		return x->named - y->named;
	if (x->last_used != y->last_used)
		return x->last_used < y->last_used ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Cache files first (they are in the store), then templates and spares, until under the budget. */
static void
decide_budget(struct gc *g)
{
	struct dd_gc_result *r = g->res;
	uint64_t total = r->cache_bytes + r->db_bytes, budget = r->budget;
	struct dd_gc_action *copies = NULL;
	size_t ncopies = 0;

	for (size_t i = 0; i < g->plan.nitems && total > budget; i++) {
		const struct dd_cache_item *it = &g->plan.items[i];
		struct dd_gc_action *a = r->nactions ? &r->actions[r->nactions - 1] : NULL;
		if (!a || a->what != DD_GC_CACHE || strcmp(a->snapshot, it->snapshot) || a->named != it->named ||
		    a->last_used != it->last_used) {
			a = add_action(g, DD_GC_CACHE);
			memcpy(a->snapshot, it->snapshot, sizeof(a->snapshot));
			a->named = it->named;
			a->last_used = it->last_used;
		}
		a->paths = dd_realloc(a->paths, (a->files + 1) * sizeof(*a->paths));
		a->paths[a->files++] = dd_strdup(it->name);
		a->bytes += it->bytes;
		total -= it->bytes < total ? it->bytes : total;
	}
	for (size_t i = 0; i < g->ndbs; i++) {
		const struct workdb *d = &g->dbs[i];
		for (size_t k = 0; d->listed && k < d->ncopies; k++) {
			const struct dd_pg_copy *c = &d->copies[k];
			if (c->kind == DD_PG_COPY_STASH)
				continue;
			copies = dd_realloc(copies, (ncopies + 1) * sizeof(*copies));
			memset(&copies[ncopies], 0, sizeof(*copies));
			copies[ncopies].what = c->kind == DD_PG_COPY_TEMPLATE ? DD_GC_TEMPLATE : DD_GC_SPARE;
			snprintf(copies[ncopies].snapshot, sizeof(copies[ncopies].snapshot), "%s", c->snapshot);
			copies[ncopies].name = c->name; /* borrowed while sorting */
			copies[ncopies].conninfo = (char *)d->conninfo;
			copies[ncopies].bytes = c->size > 0 ? (uint64_t)c->size : 0;
			copies[ncopies].last_used = iso_seconds(c->used);
			copies[ncopies].named = is_named(g, c->snapshot);
			ncopies++;
		}
	}
	if (ncopies)
		qsort(copies, ncopies, sizeof(*copies), cmp_copy_order);
	for (size_t i = 0; i < ncopies && total > budget; i++) {
		struct dd_gc_action *a = add_action(g, copies[i].what);
		*a = copies[i];
		a->name = dd_strdup(copies[i].name);
		total -= a->bytes < total ? a->bytes : total;
	}
	free(copies);
}

/*
 * Private media snapshots no record names (a switch that failed or was
 * killed before recording its stash) go first, so the cache's plan already
 * counts their objects as unneeded. Skipped while a restore holds a lock.
 */
static void
sweep_media(struct gc *g)
{
	int r = dd_workflow_media_sweep(g->repo, g->cfg, g->st, g->flags & DD_GC_DRY_RUN, &g->res->media_dropped);

	if (r < 0 && r != DD_EBUSY && !(g->flags & DD_GC_QUIET))
		dd_warn("gc: private media snapshots left alone: %s", dd_error_last());
	dd_error_clear();
}

/* ---- act ---- */

static void
failed(struct gc *g, struct dd_gc_action *a)
{
	a->error = dd_strdup(dd_error_last() ? dd_error_last() : "failed");
	if (!(g->flags & DD_GC_QUIET))
		dd_warn("gc: %s", a->error);
	dd_error_clear();
	g->res->failed++;
}

/* Plan item `i`, one of action a's files (the first failure is the action's error). */
static void
remove_cache_one(struct gc *g, struct dd_gc_action *a, size_t i)
{
	if (dd_store_cache_remove(g->st, &g->plan.items[i]) == 0)
		return;
	if (!a->error)
		failed(g, a);
	else
		dd_error_clear();
}

static void
drop_copy(struct gc *g, struct dd_gc_action *a)
{
	int lock = -1, r;

	if (g->flags & DD_GC_BACKGROUND) {
		/* the lock only around the record's change, taken without waiting (pg/state.h) */
		r = dd_pg_copy_drop(g->repo->statedir, a->conninfo, a->name, DD_PG_DROP_UNLOCKED);
		if (r == DD_EBUSY) { /* a switch is running: stop, quietly; the next job goes on */
			dd_error_clear();
			g->res->busy = 1;
			return;
		}
	} else {
		if (dd_pg_state_lock(g->repo->statedir, a->conninfo, &lock) < 0) {
			failed(g, a);
			return;
		}
		r = dd_pg_copy_drop(g->repo->statedir, a->conninfo, a->name, 0);
		dd_unlock_file(lock);
	}
	if (r == DD_EXISTS) {
		/* edited since it was listed: kept, as any stash with edits */
		a->what = DD_GC_KEPT_STASH;
		dd_error_clear();
		return;
	}
	if (r == DD_NOTFOUND) { /* dropped by someone else meanwhile: nothing left to do */
		dd_error_clear();
		a->done = 1;
		return;
	}
	if (r < 0) {
		failed(g, a);
		return;
	}
	a->done = 1;
}

/*
 * Tests only: DNADATA_TEST_GC_DIE_AFTER=N makes the process kill itself
 * with SIGKILL after N removals (cache files and databases), so a test can
 * check what a kill -9 at that exact point leaves.
 */
static void
test_die_point(long *removed)
{
	static long limit = -2;

	if (limit == -2) {
		const char *e = getenv("DNADATA_TEST_GC_DIE_AFTER");
		limit = e && *e ? atol(e) : -1;
	}
	if (limit >= 0 && ++*removed > limit)
		raise(SIGKILL);
}

static void
act(struct gc *g)
{
	size_t next = 0;
	long removed = 0;

	for (size_t i = 0; i < g->res->nactions; i++) {
		struct dd_gc_action *a = &g->res->actions[i];
		if (a->what == DD_GC_CACHE) {
			for (size_t n = 0; n < a->files && next < g->plan.nitems; n++) {
				test_die_point(&removed);
				remove_cache_one(g, a, next++);
			}
			if (!a->error)
				a->done = 1;
		} else if (a->what != DD_GC_KEPT_STASH && !g->res->busy) {
			test_die_point(&removed);
			drop_copy(g, a);
		}
	}
}

static void
count_freed(struct dd_gc_result *r, int dry)
{
	for (size_t i = 0; i < r->nactions; i++)
		if (r->actions[i].what != DD_GC_KEPT_STASH && (dry || r->actions[i].done))
			r->freed += r->actions[i].bytes;
}

int
dd_workflow_gc(struct dd_repo *repo, const struct dd_config *cfg, int flags, struct dd_gc_result *res)
{
	struct gc g;
	/* beside the per-profile snapshot locks; a profile name has no '.', so no profile's lock is this */
	char *lockdir = dd_path_join(repo->statedir, "locks"), *lockpath = dd_path_join(lockdir, "gc.lock");
	int rc = -1, lock = -1, opened;

	memset(res, 0, sizeof(*res));
	memset(&g, 0, sizeof(g));
	g.repo = repo, g.cfg = cfg, g.flags = flags, g.res = res;
	res->budget = cfg->cache_budget > 0 ? (uint64_t)cfg->cache_budget : 0;
	res->stash_keep = cfg->stash_keep;
	if (dd_mkdir_p(lockdir, 0700) < 0)
		goto out;
	if (flags & DD_GC_BACKGROUND) {
		int r = dd_lock_file_try(lockpath, &lock);
		if (r == DD_EBUSY) { /* another gc is at it */
			dd_error_clear();
			res->busy = 1;
			rc = 0;
			goto out;
		}
		if (r < 0)
			goto out;
	} else if (dd_lock_file(lockpath, (flags & DD_GC_QUIET) ? NULL : "another gc is running; waiting for it",
				&lock) < 0) {
		goto out;
	}
	collect_dbs(&g);
	if (collect_named(&g) < 0)
		goto out;
	/* without the store's key (a clone not set up yet) the cache cannot be planned: databases still can */
	opened = dd_workflow_open_store(&g.st, cfg, repo, DD_STORE_OFFLINE) == 0;
	if (opened)
		sweep_media(&g);
	if (!opened || dd_store_cache_plan(&g.plan, g.st, (const char *const *)g.named, g.nnamed) < 0) {
		res->cache_why = dd_strdup(dd_error_last() ? dd_error_last() : "cannot open the store");
		if (!(flags & DD_GC_QUIET))
			dd_warn("gc: the local cache left alone: %s", res->cache_why);
		dd_error_clear();
		dd_cache_plan_release(&g.plan);
	}
	res->cache_bytes = g.plan.bytes;
	res->pending_bytes = g.plan.pending_bytes;
	collect_copies(&g);
	if (res->db_unknown && !(flags & DD_GC_QUIET))
		dd_warn("gc: templates, spares and stashes left alone: %s", res->db_why);
	decide_stashes(&g);
	decide_budget(&g);
	if (!(flags & DD_GC_DRY_RUN))
		act(&g);
	count_freed(res, flags & DD_GC_DRY_RUN);
	rc = 0;
out:
	if (rc < 0)
		dd_error_wrap("gc");
	dd_unlock_file(lock);
	free(lockpath);
	free(lockdir);
	for (size_t i = 0; i < g.ndbs; i++)
		dd_pg_copies_free(g.dbs[i].copies, g.dbs[i].ncopies);
	free(g.dbs);
	dd_ref_ids_free(g.named, g.nnamed);
	dd_cache_plan_release(&g.plan);
	dd_store_free(g.st);
	return rc;
}

void
dd_gc_result_release(struct dd_gc_result *res)
{
	for (size_t i = 0; i < res->nactions; i++) {
		for (size_t k = 0; k < res->actions[i].files; k++)
			free(res->actions[i].paths[k]);
		free(res->actions[i].paths);
		free(res->actions[i].name);
		free(res->actions[i].error);
	}
	free(res->actions);
	free(res->db_why);
	free(res->cache_why);
	memset(res, 0, sizeof(*res));
}

/* ---- the background job's gc ---- */

/* Unedited stashes (as recorded) beyond stash_keep, or (sizes: `bytes` not NULL) templates and spares. */
static int
copies_due(const struct dd_config *cfg, const struct dd_pg_copy *v, size_t n, uint64_t *bytes, int *any)
{
	size_t unedited = 0;

	for (size_t k = 0; k < n; k++) {
		if (v[k].kind == DD_PG_COPY_STASH) {
			unedited += dd_pg_copy_disposable(&v[k]) ? 1 : 0;
			continue;
		}
		*any = 1;
		if (bytes && v[k].size > 0)
			*bytes += (uint64_t)v[k].size;
	}
	return unedited > (size_t)(cfg->stash_keep > 0 ? cfg->stash_keep : 0);
}

/*
 * Is any working database over stash_keep (or, `total` not NULL, what do
 * its templates and spares weigh)? With `total`, the sizes are asked of a
 * server only when copies are recorded on it (a connection); a server that
 * cannot be asked is skipped, as gc would leave its copies alone too.
 * *any: some template or spare is recorded.
 */
static int
dbs_due(struct dd_repo *repo, const struct dd_config *cfg, uint64_t *total, int *any)
{
	struct gc g;
	int due = 0;

	memset(&g, 0, sizeof(g));
	g.cfg = cfg;
	collect_dbs(&g);
	for (size_t i = 0; i < g.ndbs && !due; i++) {
		struct dd_pg_copy *v = NULL;
		size_t n = 0;
		int r = dd_pg_copies_list(&v, &n, repo->statedir, g.dbs[i].conninfo, 0);
		if (r == 0 && total && n) {
			dd_pg_copies_free(v, n);
			v = NULL, n = 0;
			r = dd_pg_copies_list(&v, &n, repo->statedir, g.dbs[i].conninfo, DD_PG_LIST_VERIFY);
		}
		if (r < 0) {
			dd_error_clear();
			continue;
		}
		due = copies_due(cfg, v, n, total, any);
		dd_pg_copies_free(v, n);
	}
	free(g.dbs);
	return due;
}

int
dd_workflow_gc_maybe_due(struct dd_repo *repo, const struct dd_config *cfg)
{
	int any = 0, due = dbs_due(repo, cfg, NULL, &any);

	/* a template or spare recorded: its size (which needs a connection) may pass the budget */
	return due || any;
}

/* Over a budget? One query per working database with copies recorded, and the cache's size (a directory walk). */
static int
gc_due(struct dd_repo *repo, const struct dd_config *cfg)
{
	struct dd_cache_usage u;
	uint64_t total = 0, budget = cfg->cache_budget > 0 ? (uint64_t)cfg->cache_budget : 0;
	int any = 0, due = dbs_due(repo, cfg, &total, &any);

	if (!due && dd_store_cache_usage(&u, repo->statedir, cfg->store_url) == 0) {
		total += u.bytes;
		/*
		 * Snapshots waiting for a push are never removed: with some, and no template or spare, the
		 * cache alone may be over the budget with nothing gc can do (it would run after every switch).
		 */
		if (u.npending && !any)
			total = 0;
		dd_cache_usage_release(&u);
	}
	dd_error_clear();
	if (!due && total > budget) {
		/* over the budget: due unless the last run left this much already (what it could not remove) */
		char *path = dd_path_join(repo->statedir, "gc-floor");
		struct dd_buf b = DD_BUF_INIT;
		unsigned long long floor = 0;
		if (!(dd_path_exists(path) && dd_file_read(&b, path) == 0 && b.ptr && sscanf(b.ptr, "%llu", &floor) == 1))
			floor = 0;
		dd_error_clear();
		dd_buf_release(&b);
		free(path);
		due = total > (uint64_t)floor;
	}
	return due;
}

/*
 * What a background run left over the budget (index files, manifests,
 * snapshots waiting for a push, copies it could not drop): the next job
 * runs gc only once the total grows past it. Best effort.
 */
static void
write_floor(struct dd_repo *repo, const struct dd_gc_result *res)
{
	char *path = dd_path_join(repo->statedir, "gc-floor"), line[32];
	uint64_t left = res->cache_bytes + res->db_bytes;

	for (size_t i = 0; i < res->nactions; i++) {
		const struct dd_gc_action *a = &res->actions[i];
		/* stashes are not in the budget */
		if (a->done && a->what != DD_GC_STASH && a->what != DD_GC_KEPT_STASH)
			left -= a->bytes < left ? a->bytes : left;
	}
	if (res->busy || left <= res->budget) {
		unlink(path);
	} else {
		snprintf(line, sizeof(line), "%llu\n", (unsigned long long)left);
		if (dd_file_write_atomic(path, line, strlen(line), 0600, 0) < 0)
			dd_error_clear();
	}
	free(path);
}

int
dd_workflow_gc_auto(struct dd_repo *repo, const struct dd_config *cfg)
{
	struct dd_gc_result res;
	size_t dropped = 0, files = 0;

	if (!gc_due(repo, cfg))
		return 0;
	if (dd_workflow_gc(repo, cfg, DD_GC_QUIET | DD_GC_BACKGROUND, &res) < 0)
		return -1;
	write_floor(repo, &res);
	for (size_t i = 0; i < res.nactions; i++) {
		const struct dd_gc_action *a = &res.actions[i];
		if (!a->done)
			continue;
		if (a->what == DD_GC_CACHE)
			files += a->files;
		else
			dropped++;
	}
	dd_info("gc: freed %llu MiB (%zu cache files, %zu databases)%s%s", (unsigned long long)(res.freed >> 20),
		files, dropped, res.busy ? "; stopped: a lock was held, the next job goes on" : "",
		res.failed ? "; some removals failed" : "");
	for (size_t i = 0; i < res.nactions; i++)
		if (res.actions[i].error)
			dd_info("gc: %s", res.actions[i].error);
	dd_gc_result_release(&res);
	return 1;
}
