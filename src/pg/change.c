/*
 * pg/change.c: has the working database changed since we restored it (or
 * took a snapshot of it)? Cheap: no table is read.
 *
 * A fingerprint is recorded with the working database in <statedir>/pg:
 *   "v2 <oid> <ins> <upd> <del> <stats_reset> <postmaster_start> <seq>"
 * oid: the database's OID (dropped and created again = another database);
 * ins/upd/del: pg_stat_database.tup_inserted/updated/deleted, which count
 * every heap tuple written in the database, catalogs included (so DDL,
 * TRUNCATE's new relfilenode, COMMENT, GRANT, large objects all count);
 * stats_reset (microseconds, the later of the database's and
 * pg_stat_bgwriter's: a crash drops every statistic, leaving the start
 * time and the database's NULL, and moves only the latter) and the
 * postmaster's start time (seconds): after a reset, a restart or a crash
 * the counters start again from zero and we cannot tell. A "v1" record
 * (no shared reset time) reads as "cannot tell"; seq: md5 over every
 * sequence's last_value (nextval/setval write sequence pages in place and
 * count no tuple). Aborted writes count too: they give "changed", which is
 * the safe side.
 *
 * Invariant: never "unchanged" for a changed database. The hazard is lag:
 * since PostgreSQL 15 a backend flushes its counters to shared memory when
 * it goes idle, at most once a second; otherwise a timer forces it about
 * 10 s later (PGSTAT_IDLE_INTERVAL), and always at exit, before the
 * backend leaves the process array. So:
 *   - recording: in restore, inside the transaction that renames the new
 *     copy into place (the rename itself waits until every session of ours
 *     on it has exited, so their counters are flushed, and nobody else can
 *     connect before it commits); in snapshot, before the snapshot is
 *     exported (anything counted later makes it "changed", never the
 *     reverse);
 *   - comparing: first list the other sessions on the database, then read
 *     the counters. A session that ended before the listing has flushed;
 *     one still there is harmless only if idle for more than 15 s (its
 *     forced flush is done); any other (active, idle in transaction,
 *     idle for less) makes the answer "unknown" unless the counters
 *     already differ. We retry for up to `wait_ms` so our own sessions of a
 *     moment ago (or a psql that just quit) have time to go.
 * PostgreSQL 14 and older send counters over UDP to a collector that may
 * drop them: always "unknown" there.
 *
 * A seal (dd_pg_changes_sealed, dd_pg_seal_holds) lets a switch run the
 * check early, while it clones (the check's connections cost ~15 ms of a
 * switch at 110 MiB), and still trust an "unchanged" at the rename: taken
 * right after an "unchanged" (our own sessions gone), it holds the
 * database's activity counters: sessions (counted by every client backend
 * that connected, flushed at its exit at the latest; never by autovacuum),
 * tuples written, the statistics reset times (the database's and the
 * shared one, as in the fingerprint), committed and rolled back
 * transactions (nextval and setval commit one too), and how many other
 * client sessions were connected then. It holds later only if no session
 * that may hold unflushed counters is connected, the sessions, tuples and
 * reset times are equal, and either the transaction counts are equal too
 * or no other client session was connected when it was taken. In the
 * latter case every session that could have changed something connected
 * after the seal and was counted in `sessions` (or is still connected and
 * not idle long enough to have flushed: busy); the transaction counts are
 * then left out because autovacuum workers add to them (each visit of a
 * worker commits a transaction or two), which made a switch that happened
 * to overlap a visit record an unedited database as "unknown". With an
 * older session connected (idle for more than DD_PG_IDLE_FLUSHED at the check)
 * they still count: such a session's setval moves nothing else.
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "util/buf.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * The reset time is also the configuration's load time, and the tuple counters also count the writes to
 * pg_db_role_setting: track_counts turned off and on again in between (a reload, an ALTER DATABASE/ROLE ...
 * SET and RESET) makes the answer "unknown" or "changed", never "unchanged".
 */
static const char stats_sql[] =
	"SELECT d.oid, s.tup_inserted + r.i, s.tup_updated + r.u, s.tup_deleted + r.d,"
	" coalesce(floor(extract(epoch FROM greatest(s.stats_reset, (SELECT stats_reset FROM pg_stat_bgwriter),"
	"  pg_conf_load_time())) * 1000000)::int8, 0),"
	" floor(extract(epoch FROM pg_postmaster_start_time()))::int8"
	" FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid"
	" CROSS JOIN (SELECT coalesce(sum(n_tup_ins), 0) AS i, coalesce(sum(n_tup_upd), 0) AS u,"
	"  coalesce(sum(n_tup_del), 0) AS d FROM pg_catalog.pg_stat_all_tables"
	"  WHERE relid = 'pg_catalog.pg_db_role_setting'::pg_catalog.regclass) r WHERE d.datname = $1";

struct fp {
	char oid[24], ins[24], upd[24], del[24], reset[24], start[24], seq[40];
};

static int
read_stats(PGconn *m, const char *db, struct fp *f, int *found)
{
	const char *params[] = { db };
	PGresult *res = dd_pg_query(m, stats_sql, 1, params);

	if (!res)
		return -1;
	*found = PQntuples(res) > 0;
	if (*found) {
		snprintf(f->oid, sizeof(f->oid), "%s", PQgetvalue(res, 0, 0));
		snprintf(f->ins, sizeof(f->ins), "%s", PQgetvalue(res, 0, 1));
		snprintf(f->upd, sizeof(f->upd), "%s", PQgetvalue(res, 0, 2));
		snprintf(f->del, sizeof(f->del), "%s", PQgetvalue(res, 0, 3));
		snprintf(f->reset, sizeof(f->reset), "%s", PQgetvalue(res, 0, 4));
		snprintf(f->start, sizeof(f->start), "%s", PQgetvalue(res, 0, 5));
	}
	PQclear(res);
	return 0;
}

/*
 * md5 of every sequence's value, on a session connected to the database; *untrusted: NULL, or why the
 * fingerprint cannot be trusted: some sequences are not readable, or a function of the database turns
 * track_counts off (DD_PG_FUNCS_SET_COUNTS_SQL: its callers write uncounted, and only a session here can
 * see it).
 */
static int
read_seq(PGconn *c, struct fp *f, const char **untrusted)
{
	PGresult *res = dd_pg_query(c,
				    "SELECT count(*) FILTER (WHERE NOT has_sequence_privilege(c.oid, 'SELECT')),"
				    " md5(coalesce(string_agg(c.oid::text || ':' || CASE WHEN"
				    " has_sequence_privilege(c.oid, 'SELECT') THEN"
				    " coalesce(pg_catalog.pg_sequence_last_value(c.oid)::text, '-') END, ','"
				    " ORDER BY c.oid), '')), " DD_PG_FUNCS_SET_COUNTS_SQL
				    " FROM pg_catalog.pg_class c WHERE c.relkind = 'S' AND c.relpersistence <> 't'",
				    0, NULL);

	if (!res)
		return -1;
	*untrusted = NULL;
	if (!strcmp(PQgetvalue(res, 0, 2), "t"))
		*untrusted = DD_PG_COUNTS_OFF_WHY;
	else if (strcmp(PQgetvalue(res, 0, 0), "0"))
		*untrusted = "some sequences are not readable by this user";
	snprintf(f->seq, sizeof(f->seq), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

static char *
fp_format(const struct fp *f)
{
	return dd_asprintf("v2 %s %s %s %s %s %s %s", f->oid, f->ins, f->upd, f->del, f->reset, f->start, f->seq);
}

static int
fp_parse(struct fp *f, const char *s)
{
	char v[8];

	memset(f, 0, sizeof(*f));
	return s && sscanf(s, "%7s %23s %23s %23s %23s %23s %23s %39s", v, f->oid, f->ins, f->upd, f->del, f->reset,
			   f->start, f->seq) == 8 && !strcmp(v, "v2")
		       ? 0
		       : -1;
}

#define DB_OID_OF_PARAM "coalesce((SELECT oid FROM pg_catalog.pg_database WHERE datname = $1), 0)"
#define RESET_OR_RELOAD "its statistics were reset, or the server's configuration reloaded, since"

/* 1: the counters of database `db` (NULL: settings for every database only) can be compared; 0: not here
   (*why_not says why when asked); -1. */
static int
stats_usable_why(PGconn *m, const char *db, char **why_not)
{
	const char *params[] = { db ? db : "" };

	if (PQserverVersion(m) < 150000) {
		if (why_not)
			*why_not = dd_asprintf("PostgreSQL %d's statistics may lose updates", dd_pg_server_major(m));
		return 0;
	}
	if (dd_pg_exec(m, "SET stats_fetch_consistency = none") < 0)
		return -1;
	PGresult *res = dd_pg_query(m, "SELECT " DD_PG_COUNTS_OFF_SQL(DB_OID_OF_PARAM), 1, params);
	if (!res)
		return -1;
	int off = PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t");
	PQclear(res);
	if (off && why_not)
		*why_not = dd_strdup(DD_PG_COUNTS_OFF_WHY);
	return off ? 0 : 1;
}

static int
stats_usable(PGconn *m, const char *db)
{
	return stats_usable_why(m, db, NULL);
}

int
dd_pg_fingerprint_swap(PGconn *m, const char *db, const char *seq, char **out)
{
	struct fp f;
	int found = 0, u;

	*out = NULL;
	if (!seq || (u = stats_usable(m, db)) == 0)
		return 0;
	if (u < 0 || read_stats(m, db, &f, &found) < 0)
		return -1;
	if (found) {
		snprintf(f.seq, sizeof(f.seq), "%s", seq);
		*out = fp_format(&f);
	}
	return 0;
}

int
dd_pg_fingerprint_seq(PGconn *c, char **seq)
{
	struct fp f;
	const char *untrusted = NULL;

	*seq = NULL;
	if (read_seq(c, &f, &untrusted) < 0)
		return -1;
	if (!untrusted)
		*seq = dd_strdup(f.seq);
	return 0;
}

int
dd_pg_fingerprint_here(PGconn *c, char **out)
{
	struct fp f;
	const char *untrusted = NULL;
	int found = 0, u;

	*out = NULL;
	if ((u = stats_usable(c, PQdb(c))) <= 0)
		return u;
	if (read_stats(c, PQdb(c), &f, &found) < 0 || read_seq(c, &f, &untrusted) < 0)
		return -1;
	if (found && !untrusted)
		*out = fp_format(&f);
	return 0;
}

/* Sessions on `db` other than autovacuum that may hold counters not yet flushed. */
static int
unflushed_sessions(PGconn *m, const char *db, int *n)
{
	const char *params[] = { db };
	PGresult *res = dd_pg_query(m,
				    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
				    " AND " DD_PG_UNFLUSHED_SESSION_SQL,
				    1, params);

	if (!res)
		return -1;
	*n = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* Wait (up to 2 s) until backend `pid` has gone, so a later check does not count it as a session. */
static void
wait_gone(PGconn *m, int pid)
{
	char num[24];
	const char *params[] = { num };

	snprintf(num, sizeof(num), "%d", pid);
	for (int i = 0; i < 100; i++) {
		PGresult *res = dd_pg_query(m, "SELECT 1 FROM pg_stat_activity WHERE pid = $1::int", 1, params);
		int gone = !res || PQntuples(res) == 0;
		PQclear(res);
		if (gone)
			return;
		usleep(20000);
	}
}

static double
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

const char *
dd_pg_change_name(enum dd_pg_change change)
{
	switch (change) {
	case DD_PG_UNCHANGED: return "unchanged";
	case DD_PG_CHANGED: return "changed";
	case DD_PG_MISSING: return "missing";
	default: return "unknown";
	}
}

/*
 * Compare the statistics counters of `db` with those recorded in
 * `fingerprint` (parsed into *rec), waiting until `until` for other
 * sessions to flush theirs. *out: DD_PG_MISSING, DD_PG_CHANGED,
 * DD_PG_UNKNOWN (*why says why), or DD_PG_UNCHANGED: the counters agree
 * and no session may hold unflushed ones, so the sequences decide.
 */
static int
compare_counters(PGconn *m, const char *db, const char *fingerprint, double until, struct fp *rec,
		 enum dd_pg_change *out, char **why)
{
	struct fp now;
	int found = 0, busy = 0;

	*out = DD_PG_UNKNOWN;
	for (;;) {
		if (unflushed_sessions(m, db, &busy) < 0 || read_stats(m, db, &now, &found) < 0)
			return -1;
		if (!found) {
			*out = DD_PG_MISSING;
			return 0;
		}
		if (fp_parse(rec, fingerprint) < 0) {
			*why = dd_strdup("no fingerprint was recorded");
			return 0;
		}
		if (strcmp(rec->oid, now.oid)) {
			*why = dd_strdup("it was dropped and created again");
			*out = DD_PG_CHANGED;
			return 0;
		}
		if (strcmp(rec->start, now.start) || strcmp(rec->reset, now.reset)) {
			*why = dd_strdup(strcmp(rec->start, now.start) ? "the server restarted since" : RESET_OR_RELOAD);
			return 0;
		}
		if (strcmp(rec->ins, now.ins) || strcmp(rec->upd, now.upd) || strcmp(rec->del, now.del)) {
			*out = DD_PG_CHANGED;
			return 0;
		}
		if (busy == 0 || mono_ms() >= until)
			break;
		usleep(100000);
	}
	if (busy)
		*why = dd_asprintf("%d other session%s connected to it; %s changes may not be counted yet", busy,
				   busy == 1 ? " is" : "s are", busy == 1 ? "its" : "their");
	else
		*out = DD_PG_UNCHANGED;
	return 0;
}

/*
 * The seal of database `oid`: its counters that any client session moves,
 * then (after "|") the transaction counts, and how many other client
 * sessions are connected; and how many of them may hold counters not yet
 * flushed.
 */
static const char seal_sql[] =
	"SELECT concat_ws(' ', 's2', $1::oid, pg_stat_get_db_sessions($1::oid),"
	" pg_stat_get_db_tuples_inserted($1::oid), pg_stat_get_db_tuples_updated($1::oid),"
	" pg_stat_get_db_tuples_deleted($1::oid),"
	" coalesce(floor(extract(epoch FROM pg_stat_get_db_stat_reset_time($1::oid)) * 1000000)::int8, 0),"
	" coalesce(floor(extract(epoch FROM (SELECT stats_reset FROM pg_stat_bgwriter)) * 1000000)::int8, 0),"
	" '|', pg_stat_get_db_xact_commit($1::oid), pg_stat_get_db_xact_rollback($1::oid),"
	" (SELECT count(*) FROM pg_stat_activity WHERE datid = $1::oid AND pid <> pg_backend_pid()"
	"  AND " DD_PG_CLIENT_SESSION_SQL ")),"
	" (SELECT count(*) FROM pg_stat_activity WHERE datid = $1::oid AND " DD_PG_UNFLUSHED_SESSION_SQL ")";

static int
read_seal(PGconn *m, const char *oid, char **seal, int *busy)
{
	const char *params[] = { oid };
	PGresult *res = dd_pg_query(m, seal_sql, 1, params);

	*seal = NULL;
	if (!res)
		return -1;
	*seal = dd_strdup(PQgetvalue(res, 0, 0));
	*busy = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

/*
 * Does seal `now` (read later) agree with `then`? The part before "|"
 * must be equal; the transaction counts too, unless no other client
 * session was connected when `then` was taken (see the top of this file).
 */
static int
seal_agrees(const char *then, const char *now)
{
	const char *bar = strchr(then, '|'), *nbar = strchr(now, '|');
	unsigned long long c0, r0, c1, r1;
	long others = -1, n1;

	if (!bar || !nbar || bar - then != nbar - now || memcmp(then, now, (size_t)(bar - then)))
		return 0;
	if (sscanf(bar, "| %llu %llu %ld", &c0, &r0, &others) != 3 ||
	    sscanf(nbar, "| %llu %llu %ld", &c1, &r1, &n1) != 3)
		return 0;
	return others == 0 || (c0 == c1 && r0 == r1);
}

int
dd_pg_seal_holds(PGconn *m, const char *seal)
{
	char oid[24], *now = NULL;
	int busy = 0, u, holds;

	if (!seal || sscanf(seal, "s2 %23s", oid) != 1)
		return 0;
	if ((u = stats_usable(m, NULL)) <= 0)
		return u;
	if (read_seal(m, oid, &now, &busy) < 0)
		return dd_error_wrap("checking that nobody used the database since its change check");
	holds = busy == 0 && seal_agrees(seal, now);
	free(now);
	return holds;
}

static int changes(enum dd_pg_change *out, const char *conninfo, const char *dbname, const char *fingerprint,
		   int wait_ms, char **why, char **seal);

int
dd_pg_changes(enum dd_pg_change *out, const char *conninfo, const char *fingerprint, int wait_ms, char **why)
{
	return changes(out, conninfo, NULL, fingerprint, wait_ms, why, NULL);
}

int
dd_pg_changes_of(enum dd_pg_change *out, const char *conninfo, const char *dbname, const char *fingerprint,
		 int wait_ms, char **why)
{
	return changes(out, conninfo, dbname, fingerprint, wait_ms, why, NULL);
}

int
dd_pg_changes_sealed(enum dd_pg_change *out, const char *conninfo, const char *fingerprint, int wait_ms, char **why,
		     char **seal)
{
	return changes(out, conninfo, NULL, fingerprint, wait_ms, why, seal);
}

/* dd_pg_changes_of(); with `seal`, an "unchanged" comes with one (else it is "unknown"). */
static int
changes(enum dd_pg_change *out, const char *conninfo, const char *dbname, const char *fingerprint, int wait_ms,
	char **why, char **seal)
{
	struct dd_pg_target t;
	const char *db;
	struct fp rec, now;
	PGconn *m = NULL, *c = NULL;
	const char *untrusted = NULL;
	int rc = -1, u, pid, r;

	*out = DD_PG_UNKNOWN;
	*why = NULL;
	if (seal)
		*seal = NULL;
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	db = dbname ? dbname : t.database;
	if (dd_pg_connect_maint(&m, conninfo, db) < 0)
		goto out;
	if ((u = stats_usable_why(m, db, why)) < 0)
		goto out;
	if (u == 0) {
		rc = 0;
		goto out;
	}
	if (compare_counters(m, db, fingerprint, mono_ms() + wait_ms, &rec, out, why) < 0)
		goto out;
	if (*out != DD_PG_UNCHANGED) {
		rc = 0;
		goto out;
	}
	*out = DD_PG_UNKNOWN;
	if (dd_pg_connect(&c, conninfo, dbname) < 0)
		goto out;
	pid = PQbackendPID(c);
	r = read_seq(c, &now, &untrusted);
	PQfinish(c);
	c = NULL;
	wait_gone(m, pid);
	if (r < 0)
		goto out;
	if (untrusted)
		*why = dd_strdup(untrusted);
	else
		*out = strcmp(rec.seq, now.seq) ? DD_PG_CHANGED : DD_PG_UNCHANGED;
	if (seal && *out == DD_PG_UNCHANGED) {
		int busy = 0;
		/* after our own session left (wait_gone): its counters are in */
		if (read_seal(m, rec.oid, seal, &busy) < 0)
			goto out;
		if (busy) {
			*out = DD_PG_UNKNOWN;
			*why = dd_strdup("another session connected to it while it was checked");
			free(*seal);
			*seal = NULL;
		}
	}
	rc = 0;
out:
	if (rc < 0)
		dd_error_wrap("checking whether database %s changed", db);
	if (c)
		PQfinish(c);
	if (m)
		PQfinish(m);
	dd_pg_target_release(&t);
	return rc;
}
