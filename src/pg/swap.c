/*
 * pg/swap.c: put a freshly built database in place of the working one,
 * and drop the copies that dead restores left behind.
 *
 * The swap is one transaction: ALTER DATABASE work RENAME TO stash; ALTER
 * DATABASE new RENAME TO work. ALTER DATABASE ... RENAME is transactional,
 * so it is all or nothing; the old working database is kept under a stash
 * name (<db>__dnadata_stash_<UTC time>[_n]) and recorded in <statedir>/pg
 * (before the rename, so that no kill loses the record; see state.c).
 * The transaction also reads the new database's change fingerprint
 * (change.c): the rename has waited for all our sessions on it to exit (so
 * their statistics are flushed) and nobody can connect before the commit,
 * so it describes exactly the restored state. Other sessions on the
 * working database block the swap: we refuse and list them, or with
 * `terminate` end them (pg_terminate_backend) and retry.
 *
 * A restore records its new copy as pending (state.c) before creating it.
 * dd_pg_reap_leftovers() drops the recorded copies of processes that are
 * gone; a live process's copy is never touched.
 *
 * dd_pg_restore() strings the steps together: reap, build (restore.c),
 * pick the stash name, swap, record.
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- sessions on the working database ---- */

static int
other_sessions(PGconn *m, const char *db, struct dd_buf *list, int *count)
{
	const char *params[] = { db };
	PGresult *res = dd_pg_query(m,
				    "SELECT pid, coalesce(nullif(application_name, ''), 'unnamed'),"
				    " coalesce(host(client_addr), 'local socket'), coalesce(usename, '?')"
				    " FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
				    " ORDER BY pid",
				    1, params);
	if (!res)
		return -1;
	*count = PQntuples(res);
	for (int i = 0; i < *count; i++) {
		if (i)
			dd_buf_puts(list, ", ");
		if (i == 5) {
			dd_buf_printf(list, "and %d more", *count - 5);
			break;
		}
		dd_buf_printf(list, "%s (%s, user %s, pid %s)", PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
			      PQgetvalue(res, i, 3), PQgetvalue(res, i, 0));
	}
	PQclear(res);
	return 0;
}

int
dd_pg_refuse_sessions(PGconn *m, const char *db)
{
	struct dd_buf list = DD_BUF_INIT;
	int n = 0;

	if (other_sessions(m, db, &list, &n) < 0)
		return -1;
	if (n == 0) {
		dd_buf_release(&list);
		return 0;
	}
	dd_error("database %s is in use by %d other session%s: %s", db, n, n == 1 ? "" : "s", list.ptr);
	dd_hint("close them, or run with --terminate (or set terminate_connections = true) to end them");
	dd_buf_release(&list);
	return -1;
}

static int
terminate_sessions(PGconn *m, const char *db)
{
	const char *params[] = { db };
	PGresult *res = dd_pg_query(m,
				    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
				    " WHERE datname = $1 AND pid <> pg_backend_pid()",
				    1, params);
	if (!res)
		return dd_error_wrap("ending the sessions on database %s", db);
	if (strcmp(PQgetvalue(res, 0, 0), "0"))
		dd_info("ended %s session(s) on database %s", PQgetvalue(res, 0, 0), db);
	PQclear(res);
	/* wait (up to 5 s) until they are gone */
	for (int i = 0; i < 50; i++) {
		struct dd_buf l = DD_BUF_INIT;
		int n = 0;
		if (other_sessions(m, db, &l, &n) < 0)
			return -1;
		dd_buf_release(&l);
		if (n == 0)
			return 0;
		usleep(100000);
	}
	return 0;
}

int
dd_pg_db_exists(PGconn *m, const char *name, int *exists)
{
	const char *params[] = { name };
	PGresult *res = dd_pg_query(m, "SELECT 1 FROM pg_database WHERE datname = $1", 1, params);

	if (!res)
		return -1;
	*exists = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

int
dd_pg_drop_db(PGconn *m, const char *name)
{
	char *q = dd_pg_quote_ident(name);
	char *sql = PQserverVersion(m) >= 130000 ? dd_asprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", q)
						 : dd_asprintf("DROP DATABASE IF EXISTS %s", q);
	int rc = -1;

	/* our own sessions may take a moment to go away */
	for (int i = 0; i < 20 && rc < 0; i++) {
		rc = dd_pg_exec(m, sql);
		if (rc < 0)
			usleep(250000);
	}
	free(sql);
	free(q);
	return rc;
}

static char *
stamp_suffix(const char *what)
{
	char buf[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y%m%d%H%M%S", &tm);
	return dd_asprintf("__dnadata_%s_%s", what, buf);
}

/* A stash name for `work` that no database has yet (*out NULL if none of 100 is free). */
static int
pick_stash_name(PGconn *m, const char *work, char **out)
{
	char *suffix = stamp_suffix("stash");

	*out = NULL;
	for (int i = 0; i < 100; i++) {
		char *s = i ? dd_asprintf("%s_%d", suffix, i) : dd_strdup(suffix);
		char *name = dd_pg_name_with_suffix(work, s);
		int e = 0;
		free(s);
		if (dd_pg_db_exists(m, name, &e) < 0) {
			free(name);
			free(suffix);
			return -1;
		}
		if (!e) {
			*out = name;
			break;
		}
		free(name);
	}
	free(suffix);
	if (!*out)
		return dd_error("no free stash name for database %s", work);
	return 0;
}

/*
 * Swap `newdb` into `work` in one transaction; the old one becomes `stash`
 * (if it existed). *fp: the change fingerprint read inside that transaction
 * (NULL if it could not be).
 */
static int
rename_in(PGconn *m, const char *work, const char *newdb, const char *stash, int terminate, const char *seq, char **fp)
{
	char *qw = dd_pg_quote_ident(work), *qn = dd_pg_quote_ident(newdb), *qs = stash ? dd_pg_quote_ident(stash) : NULL;
	char *sql = stash ? dd_asprintf("BEGIN; ALTER DATABASE %s RENAME TO %s; ALTER DATABASE %s RENAME TO %s;"
					" SAVEPOINT dd_fp", qw, qs, qn, qw)
			  : dd_asprintf("BEGIN; ALTER DATABASE %s RENAME TO %s; SAVEPOINT dd_fp", qn, qw);
	int rc = -1;

	for (int attempt = 0; attempt < 10; attempt++) {
		if (stash) {
			if (terminate) {
				if (terminate_sessions(m, work) < 0)
					break;
			} else if (dd_pg_refuse_sessions(m, work) < 0) {
				break;
			}
		}
		PGresult *res = PQexec(m, sql);
		ExecStatusType s = PQresultStatus(res);
		if (s == PGRES_COMMAND_OK) {
			PQclear(res);
			if (dd_pg_fingerprint_swap(m, work, seq, fp) < 0) {
				dd_debug("no change fingerprint: %s", dd_error_last());
				dd_error_clear();
				dd_pg_exec(m, "ROLLBACK TO SAVEPOINT dd_fp");
			}
			res = PQexec(m, "COMMIT");
			s = PQresultStatus(res);
		}
		if (s == PGRES_COMMAND_OK) {
			PQclear(res);
			rc = 0;
			break;
		}
		free(*fp);
		*fp = NULL;
		int in_use = !strcmp(dd_pg_sqlstate(res), "55006");
		dd_pg_error(m, res);
		PQclear(res);
		dd_pg_exec(m, "ROLLBACK");
		if (!in_use)
			break;
		/* someone connected between our check and the rename */
		usleep(200000);
	}
	free(sql);
	free(qw);
	free(qn);
	free(qs);
	return rc;
}

/* The rename failed: remove the record written for its stash (keeping the error). */
static void
forget_stash(const char *statedir, const struct dd_pg_target *t, const char *stash)
{
	struct dd_error_saved saved;

	dd_error_save(&saved);
	if (dd_pg_state_remove_stash(statedir, t, stash) < 0)
		dd_warn("%s (the next status removes it)", dd_error_last());
	dd_error_restore(&saved);
}

int
dd_pg_swap_in(PGconn *m, const struct dd_pg_restore_opts *o, const struct dd_pg_target *t, const char *newdb, int exists,
	const char *snapshot_id, const char *seq_fp, struct dd_pg_restore_result *res)
{
	struct dd_pg_state prev;
	char *stash = NULL, *fp = NULL;
	int rc = DD_ERROR;

	memset(&prev, 0, sizeof(prev));
	if (exists && pick_stash_name(m, t->database, &stash) < 0)
		goto out;
	dd_pg_state_read(&prev, o->statedir, o->conninfo);
	dd_error_clear();
	/* the stash's record first: a kill right after the rename must not lose it */
	if (stash && dd_pg_state_add_stash(o->statedir, t, stash, prev.snapshot, prev.profile) < 0) {
		dd_error_wrap("recording the stash for database %s", t->database);
		dd_hint("make %s writable, then restore again", o->statedir);
		goto out;
	}
	if (rename_in(m, t->database, newdb, stash, o->terminate, seq_fp, &fp) < 0) {
		dd_error_wrap("switching database %s", t->database);
		if (stash)
			forget_stash(o->statedir, t, stash);
		goto out;
	}
	/* and again now that it exists: a status run meanwhile removes a record without a database */
	if (stash && dd_pg_state_add_stash(o->statedir, t, stash, prev.snapshot, prev.profile) < 0)
		dd_warn("the previous database is kept as %s, but status may not list it (%s); "
			"drop it with dropdb %s once it is not needed", stash, dd_error_last(), stash);
	if (dd_pg_state_set_target(o->statedir, t, snapshot_id, o->profile, "restored", fp) < 0)
		dd_warn("%s", dd_error_last());
	res->database = dd_strdup(t->database);
	res->stash = stash, stash = NULL;
	rc = DD_OK;
out:
	dd_pg_state_release(&prev);
	free(stash);
	free(fp);
	return rc;
}

/* Copies recorded by processes that are gone (`pending`, from dd_pg_state_pending_list) still to drop? */
static int
any_dead(const struct dd_pg_pending *pending, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!pending[i].alive)
			return 1;
	return 0;
}

/* Drop the copies of the dead processes in `pending`, on an open maintenance connection. */
static void
drop_dead(PGconn *m, const char *statedir, const struct dd_pg_target *t, const struct dd_pg_pending *pending,
	  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct dd_pg_copy c;
		if (pending[i].alive)
			continue;
		/* a copy recorded as complete (killed between its record and the end of pending) is kept */
		if (dd_pg_copy_get(&c, statedir, t, pending[i].name) == 0 || !strcmp(pending[i].name, t->database)) {
			dd_pg_copy_release(&c);
			dd_pg_state_pending_remove(statedir, t, pending[i].pid);
			continue;
		}
		dd_pg_copy_release(&c);
		if (dd_pg_drop_db(m, pending[i].name) == 0) {
			dd_info("dropped %s, left behind by an interrupted restore", pending[i].name);
			dd_pg_state_pending_remove(statedir, t, pending[i].pid);
		} else {
			dd_warn("could not drop %s, left behind by an interrupted restore (%s); the next command tries "
				"again", pending[i].name, dd_error_last());
		}
	}
	dd_error_clear();
}

/* The reap, on an open maintenance connection: the records are read once. */
static void
reap_with(PGconn *m, const char *statedir, const struct dd_pg_target *t)
{
	struct dd_pg_pending *pending = NULL;
	size_t n = 0;

	if (dd_pg_state_pending_list(&pending, &n, statedir, t) == 0)
		drop_dead(m, statedir, t, pending, n);
	dd_pg_pending_free(pending, n);
	dd_error_clear();
}

int
dd_pg_reap_leftovers(const char *statedir, const char *conninfo)
{
	struct dd_pg_target t;
	struct dd_pg_pending *pending = NULL;
	PGconn *m = NULL;
	size_t n = 0;
	int rc = 0;

	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return DD_ERROR;
	/* connect only when there is something to drop */
	if (dd_pg_state_pending_list(&pending, &n, statedir, &t) < 0) {
		dd_error_clear(); /* unreadable records are skipped, as before */
	} else if (any_dead(pending, n)) {
		if (dd_pg_connect_maint(&m, conninfo, t.database) < 0)
			rc = dd_error_wrap("dropping copies left by interrupted restores");
		else
			drop_dead(m, statedir, &t, pending, n);
	}
	if (m)
		PQfinish(m);
	dd_pg_pending_free(pending, n);
	dd_pg_target_release(&t);
	return rc;
}

static int
jobs_of(const struct dd_pg_restore_opts *o)
{
	int jobs = o->jobs > 0 ? o->jobs : (int)sysconf(_SC_NPROCESSORS_ONLN);

	return jobs < 1 ? 1 : jobs;
}

int
dd_pg_restore(struct dd_store *st, const struct dd_snapshot *snap, const struct dd_pg_restore_opts *o,
	      struct dd_pg_restore_result *res)
{
	struct dd_pg_target t;
	PGconn *m = NULL;
	char *newdb = NULL, *seq_fp = NULL, suffix[64];
	int rc = DD_ERROR, installed = 0, exists = 0, building = 0;

	memset(res, 0, sizeof(*res));
	if (dd_pg_target_resolve(&t, o->conninfo) < 0)
		return DD_ERROR;
	if (!dd_snapshot_find(snap, "schema/pre-data")) {
		dd_error("snapshot %.12s holds no PostgreSQL schema", dd_snapshot_id(snap));
		goto out;
	}
	if (dd_pg_interrupt_install() < 0)
		goto out;
	installed = 1;
	if (dd_pg_connect_maint(&m, o->conninfo, t.database) < 0)
		goto out;
	reap_with(m, o->statedir, &t);
	if (dd_pg_db_exists(m, t.database, &exists) < 0)
		goto out;
	if (exists && !o->terminate && dd_pg_refuse_sessions(m, t.database) < 0)
		goto out;

	snprintf(suffix, sizeof(suffix), "__dnadata_new_%ld", (long)getpid());
	newdb = dd_pg_name_with_suffix(t.database, suffix);
	if (dd_pg_state_pending_add(o->statedir, &t, newdb) < 0)
		goto out;
	building = 1;
	if (dd_pg_drop_db(m, newdb) < 0) /* a copy of an earlier process with our pid */
		goto out;
	if (dd_pg_build(m, st, snap, o, newdb, jobs_of(o), &seq_fp) < 0) {
		dd_error_wrap("restoring snapshot %.12s", dd_snapshot_id(snap));
		goto out;
	}
	if (dd_pg_interrupted()) {
		dd_error("interrupted");
		goto out;
	}
	if (dd_pg_swap_in(m, o, &t, newdb, exists, dd_snapshot_id(snap), seq_fp, res) < 0)
		goto out;
	building = 0; /* the new copy is the working database now */
	dd_pg_state_pending_remove(o->statedir, &t, (long)getpid());
	rc = DD_OK;
out:
	if (building) {
		struct dd_error_saved saved;
		dd_error_save(&saved); /* keep the error that made us stop */
		if (dd_pg_drop_db(m, newdb) == 0)
			dd_pg_state_pending_remove(o->statedir, &t, (long)getpid());
		else
			dd_warn("could not drop the partial copy %s (%s); the next command drops it", newdb,
				dd_error_last());
		dd_error_restore(&saved);
	}
	if (m)
		PQfinish(m);
	if (installed)
		dd_pg_interrupt_remove();
	dd_pg_target_release(&t);
	free(newdb);
	free(seq_fp);
	return rc;
}

void
dd_pg_restore_result_release(struct dd_pg_restore_result *r)
{
	free(r->database);
	free(r->stash);
	memset(r, 0, sizeof(*r));
}
