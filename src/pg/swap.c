/*
 * pg/swap.c: what the switch (switch.c) needs around its rename: the other
 * sessions on a database (refused, naming them, or ended on request), the
 * stash names (<db>__dnadata_stash_<UTC time>[_n]), DROP DATABASE, and the
 * reaping of what dead processes left behind.
 *
 * The rename transaction itself (switch.c) renames the working database
 * to a stash and the new one into place (ALTER DATABASE ... RENAME is
 * transactional: all or nothing) and reads the new database's change
 * fingerprint (change.c) inside it: the rename has waited for all our
 * sessions on it to exit (so their statistics are flushed) and nobody can
 * connect before the commit, so it describes exactly the state switched to.
 *
 * A copy being built is recorded as pending (state.c) before it is
 * created. dd_pg_reap_leftovers() finishes the records of a switch a kill
 * cut short, then drops the recorded copies of processes that are gone; a
 * live process's copy is never touched.
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

/*
 * An autovacuum worker is nobody's session: ALTER DATABASE ... RENAME (and
 * DROP) end it themselves. Counting it refused a restore right after a
 * large load or edit ("in use by 1 other session: unnamed (local socket,
 * user ?, ...)"); a role without pg_read_all_stats sees it without a
 * backend type (DD_PG_CLIENT_SESSION_SQL).
 */
#define AUTOVACUUM_IS_NO_SESSION " AND " DD_PG_CLIENT_SESSION_SQL

static int
other_sessions(PGconn *m, const char *db, struct dd_buf *list, int *count)
{
	const char *params[] = { db };
	PGresult *res = dd_pg_query(m,
				    "SELECT pid, coalesce(nullif(application_name, ''), 'unnamed'),"
				    " coalesce(host(client_addr), 'local socket'), coalesce(usename, '?')"
				    " FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
				    AUTOVACUUM_IS_NO_SESSION " ORDER BY pid",
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

int
dd_pg_terminate_sessions(PGconn *m, const char *db)
{
	const char *params[] = { db };
	PGresult *res = dd_pg_query(m,
				    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
				    " WHERE datname = $1 AND pid <> pg_backend_pid()" AUTOVACUUM_IS_NO_SESSION,
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

int
dd_pg_pick_stash_name(PGconn *m, const char *work, char **out)
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

void
dd_pg_reap_with(PGconn *m, const char *statedir, const struct dd_pg_target *t)
{
	struct dd_pg_pending *pending = NULL;
	size_t n = 0;

	if (dd_pg_journal_recover(m, statedir, t) < 0) {
		dd_warn("%s", dd_error_last());
		dd_error_clear();
	}
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
	/* connect only when there is something to drop, or a switch to finish */
	struct dd_pg_journal j;
	int journal = dd_pg_journal_read(&j, statedir, &t) != DD_NOTFOUND;
	dd_pg_journal_release(&j);
	dd_error_clear();
	if (dd_pg_state_pending_list(&pending, &n, statedir, &t) < 0) {
		dd_error_clear(); /* unreadable records are skipped, as before */
		n = 0;
	}
	if (journal || any_dead(pending, n)) {
		if (dd_pg_connect_maint(&m, conninfo, t.database) < 0) {
			rc = dd_error_wrap("dropping copies left by interrupted restores");
		} else {
			if (journal && dd_pg_journal_recover(m, statedir, &t) < 0) {
				dd_warn("%s", dd_error_last());
				dd_error_clear();
			}
			drop_dead(m, statedir, &t, pending, n);
		}
	}
	if (m)
		PQfinish(m);
	dd_pg_pending_free(pending, n);
	dd_pg_target_release(&t);
	return rc;
}
