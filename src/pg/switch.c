/*
 * pg/switch.c: switch the working database to a snapshot, the cheapest way
 * this machine allows, without ever losing a database someone may need.
 *
 * The copies (state.h): every snapshot restored here is kept as a template
 * <db>__dnadata_tmpl_<id prefix> (ALLOW_CONNECTIONS false); a background
 * job (dd_pg_spares_make, run by the hidden command `spare`) clones
 * templates ahead of time into spares <db>__dnadata_spare_<id prefix>[_n];
 * leaving a snapshot renames the working database to a stash, recorded
 * with the branch left and whether it was modified since its restore.
 *
 * A switch to snapshot S takes, in this order:
 *   1. the stash of S left on the branch we switch to (its local edits
 *      come back): a rename; never one a rebuild of S replaced (the user
 *      threw it away: recorded `replaced`);
 *   2. a spare of S, or a stash of S not modified since its restore: a
 *      rename;
 *   3. S's template: CREATE DATABASE <db>__dnadata_new_<pid> TEMPLATE it
 *      (pending while it is built), then the rename;
 *   4. else a restore from the cache/store into a new template (pending
 *      while built, recorded once complete), then 3.
 * --force skips 1-3 and rebuilds the template (the older one is dropped).
 *
 * The rename is one transaction (ALTER DATABASE ... RENAME is
 * transactional): working -> stash, source -> working, and for a spare
 * ALLOW_CONNECTIONS back on. Around it the records are kept so that a kill
 * -9 anywhere leaves the old or the new working database and records the
 * next command completes: the journal ("switch", state.h) is written
 * first, then the new stash's record, then the transaction; after it, the
 * working record, the source's record and the journal are updated in that
 * order. dd_pg_journal_recover() (run by every command that reaps, under
 * the database lock) tells from which databases exist whether the
 * transaction committed, and finishes or undoes the records. A COMMIT
 * whose reply is lost with the connection is treated like a kill there:
 * the journal and the new stash's record stay, nothing is dropped, the
 * switch fails and the next command's recovery decides. A copy being
 * built is pending (state.c): a kill leaves it for the next command to
 * drop.
 *
 * Clone strategy (PostgreSQL 15+): FILE_COPY copies the files after a
 * checkpoint; WAL_LOG copies block by block through the WAL. Measured
 * here (docs/DESIGN-NOTES.md, "Switching"): on a checkpointed server
 * FILE_COPY is faster at every size (18 MB to 1.1 GB); with dirty buffers
 * its checkpoint (a fixed cost: every dirty buffer of the server) makes
 * WAL_LOG faster for small databases (18 MB) but not at 117 MB. So
 * WAL_LOG below 32 MB, FILE_COPY from there; older servers have one.
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * Tests stop a switch at a named point to kill it there (tests/integration/
 * t-pg-switch-kill.sh, t-media-kill.sh) or to use the database meanwhile
 * (t-pg-switch.sh, "checked"): with DNADATA_FAILPOINT=<name> the process stops
 * itself (SIGSTOP) on reaching it (dd_failpoint, util/proc.h); "commit-lost"
 * instead cuts the connection once the rename committed, before its reply is
 * read.
 */

/* Below this size a clone uses STRATEGY WAL_LOG (no checkpoint), from it FILE_COPY (measured: DESIGN-NOTES). */
#define DD_PG_FILE_COPY_MIN_BYTES (32LL * 1024 * 1024)

const char *
dd_pg_switch_how_name(enum dd_pg_switch_how how)
{
	switch (how) {
	case DD_PG_SWITCH_STASH: return "renamed its stash back";
	case DD_PG_SWITCH_SPARE: return "renamed a spare in";
	case DD_PG_SWITCH_CLONE: return "cloned its template";
	default: return "restored it";
	}
}

void
dd_pg_switch_result_release(struct dd_pg_switch_result *r)
{
	free(r->database);
	free(r->stash);
	free(r->source);
	free(r->media);
	memset(r, 0, sizeof(*r));
}

/* ---- names ---- */

/* Database names of the server (one query; for "does it exist" without a round trip each). */
static PGresult *
list_databases(PGconn *m)
{
	return dd_pg_query(m, "SELECT datname FROM pg_catalog.pg_database", 0, NULL);
}

static int
db_row(const PGresult *dbs, const char *name)
{
	for (int i = 0; i < PQntuples(dbs); i++)
		if (!strcmp(PQgetvalue(dbs, i, 0), name))
			return i;
	return -1;
}

/* <work>__dnadata_<what>_<id prefix>[_n], free on the server and in the records. */
static int
pick_copy_name(PGconn *m, const char *statedir, const struct dd_pg_target *t, const char *what, const char *snapshot,
	       char **out)
{
	*out = NULL;
	for (int i = 0; i < 100; i++) {
		char *suffix = i ? dd_asprintf("__dnadata_%s_%.12s_%d", what, snapshot, i)
				 : dd_asprintf("__dnadata_%s_%.12s", what, snapshot);
		char *name = dd_pg_name_with_suffix(t->database, suffix);
		struct dd_pg_copy c;
		int e = 0, r;
		free(suffix);
		if (dd_pg_db_exists(m, name, &e) < 0) {
			free(name);
			return -1;
		}
		r = dd_pg_copy_get(&c, statedir, t, name);
		dd_pg_copy_release(&c);
		dd_error_clear();
		if (!e && r == DD_NOTFOUND) {
			*out = name;
			return 0;
		}
		free(name);
	}
	return dd_error("no free %s name for database %s", what, t->database);
}

/* CREATE DATABASE `name` TEMPLATE `tmpl` with the strategy for its size; closed to connections if asked. */
static int
clone_db(PGconn *m, const char *name, const char *tmpl, long long size, int closed)
{
	char *qn = dd_pg_quote_ident(name), *qt = dd_pg_quote_ident(tmpl);
	const char *strategy = dd_pg_server_major(m) < 15 ? ""
			       : size >= 0 && size < DD_PG_FILE_COPY_MIN_BYTES ? " STRATEGY WAL_LOG"
									 : " STRATEGY FILE_COPY";
	char *sql = dd_asprintf("CREATE DATABASE %s TEMPLATE %s%s%s", qn, qt, strategy,
				closed ? " ALLOW_CONNECTIONS false" : "");
	int rc = -1;

	/* the template's last sessions (a build's) may take a moment to go; CREATE waits 5 s for them itself */
	for (int i = 0; i < 3 && rc < 0; i++) {
		PGresult *res = PQexec(m, sql);
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			rc = 0;
		} else {
			int busy = !strcmp(dd_pg_sqlstate(res), "55006");
			dd_pg_error(m, res);
			if (!busy || dd_pg_interrupted())
				i = 3;
		}
		PQclear(res);
	}
	if (rc < 0)
		dd_error_wrap("cloning %s", tmpl);
	free(sql);
	free(qt);
	free(qn);
	return rc;
}

/* The size of database `name` in bytes, -1 if it cannot be read (then FILE_COPY is used). */
static long long
size_of(PGconn *m, const char *name)
{
	const char *params[] = { name };
	PGresult *res = dd_pg_query(m, "SELECT pg_catalog.pg_database_size($1)", 1, params);
	long long size = res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
									       : -1;

	PQclear(res);
	dd_error_clear();
	return size;
}

/* ---- the journal ---- */

/* pg_database.oid of database `name` (*oid NULL: no such database). Caller frees. */
static int
db_oid(PGconn *m, const char *name, char **oid)
{
	const char *params[] = { name };
	PGresult *res = dd_pg_query(m, "SELECT oid FROM pg_catalog.pg_database WHERE datname = $1", 1, params);

	*oid = NULL;
	if (!res)
		return -1;
	if (PQntuples(res) == 1)
		*oid = dd_strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int
dd_pg_journal_recover(PGconn *m, const char *statedir, const struct dd_pg_target *t)
{
	struct dd_pg_journal j;
	char *work_oid = NULL;
	int r = dd_pg_journal_read(&j, statedir, t), src = 0, work = 0, stash = 0, committed, rc = -1;

	if (r == DD_NOTFOUND) {
		dd_error_clear();
		return 0;
	}
	if (r < 0) {
		/* unreadable: nothing to finish with it */
		dd_warn("%s: removed", dd_error_last());
		dd_error_clear();
		dd_pg_journal_remove(statedir, t);
		return 0;
	}
	if (dd_pg_db_exists(m, j.source, &src) < 0 || dd_pg_db_exists(m, t->database, &work) < 0 ||
	    (j.stash && dd_pg_db_exists(m, j.stash, &stash) < 0) || db_oid(m, t->database, &work_oid) < 0)
		goto out;
	/*
	 * The rename keeps the source's OID: it committed iff the working name
	 * has it. (The source's name gone is not enough: a stash dropped by the
	 * user, a copy dropped by a reaper.) A journal without the OID (older)
	 * is judged by the names.
	 */
	committed = j.source_oid ? work_oid && !strcmp(work_oid, j.source_oid) : !src && work;
	if (committed) {
		/* the rename committed: the working database holds the snapshot */
		struct dd_pg_copy c;
		memset(&c, 0, sizeof(c)); /* released below even when not read (no stash) */
		if (j.stash && stash && dd_pg_copy_get(&c, statedir, t, j.stash) == DD_NOTFOUND) {
			/* its record was written, but a status run may have removed it before the rename: again */
			struct dd_pg_state old;
			dd_pg_state_read_target(&old, statedir, t); /* still what the stash held */
			struct dd_pg_copy sc = { .name = j.stash, .kind = DD_PG_COPY_STASH,
						 .snapshot = old.snapshot ? old.snapshot : (char *)"",
						 .profile = old.profile ? old.profile : (char *)"",
						 .branch = old.branch ? old.branch : (char *)"",
						 .modified = DD_PG_MOD_UNKNOWN, .fingerprint = old.fingerprint,
						 .media = j.media_stash, .media_folder = j.media_folder,
						 .media_private = j.media_private };
			if (dd_pg_copy_record(statedir, t, &sc) < 0)
				dd_warn("%s", dd_error_last());
			dd_pg_state_release(&old);
		}
		dd_pg_copy_release(&c);
		dd_error_clear();
		/* the folder may be partly switched: the next restore finishes it (media_pending) */
		if (dd_pg_state_set_switched(statedir, t, j.snapshot, j.profile, "restored", j.fingerprint, j.branch,
					     j.media, j.media != NULL) < 0)
			goto out;
		if (strcmp(j.kind, "stash") == 0 || strcmp(j.kind, "spare") == 0)
			dd_pg_copy_forget(statedir, t, j.source);
		dd_info("finished recording the interrupted switch of database %s to snapshot %.12s", t->database,
			j.snapshot);
	} else {
		/* it did not: the stash's record names nothing; nor does a stash's or spare's whose database is gone */
		if (j.stash && !stash)
			dd_pg_copy_forget(statedir, t, j.stash);
		if (!src && (strcmp(j.kind, "stash") == 0 || strcmp(j.kind, "spare") == 0))
			dd_pg_copy_forget(statedir, t, j.source);
		/* the folder may be partly switched: the next restore puts it back as it was (media_pending) */
		if (j.media_stash && dd_pg_state_set_media_target(statedir, t, j.media_stash, 1) < 0)
			goto out;
	}
	dd_error_clear();
	if (dd_pg_journal_remove(statedir, t) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		dd_error_wrap("finishing an interrupted switch of database %s", t->database);
	dd_pg_journal_release(&j);
	free(work_oid);
	return rc;
}

/* ---- the switch ---- */

struct sw {
	const struct dd_pg_switch_opts *o;
	struct dd_pg_target t;
	PGconn *m;
	PGresult *dbs;
	struct dd_pg_copy *copies;
	size_t ncopies;
	struct dd_pg_state prev;
	char *building;            /* the database pending under our pid, to drop on failure */
	char *media;               /* the media id the folder switches to (o->media), NULL: left alone */
	int media_applied;         /* o->media->apply succeeded: undo on failure */
	int installed;             /* the interrupt handlers are ours to remove */
};

/* The copy of `kind` holding the snapshot, that exists, and that `ok` accepts; the most recently used. */
static const struct dd_pg_copy *
find_copy(struct sw *s, enum dd_pg_copy_kind kind, int (*ok)(struct sw *s, const struct dd_pg_copy *c))
{
	const struct dd_pg_copy *best = NULL;

	for (size_t i = 0; i < s->ncopies; i++) {
		const struct dd_pg_copy *c = &s->copies[i];
		if (c->kind != kind || strcmp(c->snapshot, s->o->snapshot) || db_row(s->dbs, c->name) < 0)
			continue;
		if (ok && !ok(s, c))
			continue;
		best = c; /* sorted least recently used first */
	}
	return best;
}

/*
 * Can the stash's media come back with it? Media set aside from another
 * folder (another profile's) cannot: renaming that stash in would forget
 * the only record of those files, so it stays a stash.
 */
static int
media_comes_back(struct sw *s, const struct dd_pg_copy *c)
{
	const struct dd_pg_switch_media *m = s->o->media;

	if (!dd_pg_copy_media_set_aside(c) || !c->media_folder)
		return 1;
	return m && m->folder && !strcmp(c->media_folder, m->folder);
}

static int
stash_of_branch(struct sw *s, const struct dd_pg_copy *c)
{
	return s->o->branch && *s->o->branch && !strcmp(c->branch, s->o->branch) && !c->replaced &&
	       media_comes_back(s, c);
}

static int
stash_unmodified(struct sw *s, const struct dd_pg_copy *c)
{
	enum dd_pg_change ch;
	char *why = NULL;
	int ok;

	/* its media files set aside come back only with it, on its own branch */
	if (c->modified != DD_PG_MOD_NO || !c->fingerprint || dd_pg_copy_media_set_aside(c))
		return 0;
	if (dd_pg_changes_of(&ch, s->o->conninfo, c->name, c->fingerprint, 200, &why) < 0) {
		dd_error_clear();
		return 0;
	}
	ok = ch == DD_PG_UNCHANGED;
	free(why);
	return ok;
}

/*
 * Was the working database modified since its restore (or snapshot)? With
 * DD_PG_MOD_NO, *seal: what must still hold before the rename (change.c).
 * Runs in its own thread (check_start): it reads only what no other step
 * of the switch writes.
 */
static enum dd_pg_modified
working_modified(struct sw *s, char **seal)
{
	enum dd_pg_change ch;
	char *why = NULL;

	*seal = NULL;
	if (!s->prev.snapshot || !s->prev.fingerprint)
		return DD_PG_MOD_UNKNOWN;
	if (dd_pg_changes_sealed(&ch, s->o->conninfo, s->prev.fingerprint, 200, &why, seal) < 0) {
		dd_debug("cannot tell whether %s changed: %s", s->t.database, dd_error_last());
		dd_error_clear();
		return DD_PG_MOD_UNKNOWN;
	}
	free(why);
	return ch == DD_PG_UNCHANGED ? DD_PG_MOD_NO : ch == DD_PG_CHANGED ? DD_PG_MOD_YES : DD_PG_MOD_UNKNOWN;
}

/*
 * The working database's change check runs while the source is prepared
 * (a clone: the longest step), on connections of its own; its "unmodified"
 * is trusted only if its seal still holds just before the rename.
 */
struct check {
	struct sw *s;
	enum dd_pg_modified modified;
	char *seal;
	pthread_t thread;
	int started;
};

static void *
check_run(void *arg)
{
	struct check *c = arg;

	c->modified = working_modified(c->s, &c->seal);
	return NULL;
}

static void
check_start(struct check *c, struct sw *s)
{
	c->s = s;
	c->modified = DD_PG_MOD_UNKNOWN;
	c->seal = NULL;
	c->started = pthread_create(&c->thread, NULL, check_run, c) == 0;
	if (!c->started)
		check_run(c); /* no thread: in line */
}

/* A switch that fails before the rename: the answer is not needed (the error recorded stays). */
static void
check_abandon(struct check *c)
{
	if (c->started)
		pthread_join(c->thread, NULL);
	c->started = 0;
	free(c->seal);
	c->seal = NULL;
}

/* The check's answer: DD_PG_MOD_NO only if nobody used the database since it ran. */
static enum dd_pg_modified
check_finish(struct check *c)
{
	enum dd_pg_modified m;
	int holds;

	if (c->started)
		pthread_join(c->thread, NULL);
	c->started = 0;
	dd_failpoint("checked");
	m = c->modified;
	if (m == DD_PG_MOD_NO && (holds = dd_pg_seal_holds(c->s->m, c->seal)) != 1) {
		dd_debug("database %s may have been used since its change check%s%s", c->s->t.database,
			 holds < 0 ? ": " : "", holds < 0 ? dd_error_last() : "");
		dd_error_clear();
		m = DD_PG_MOD_UNKNOWN;
	}
	free(c->seal);
	c->seal = NULL;
	return m;
}

/* Other sessions on `db`: end them (terminate) or refuse, naming them. */
static int
clear_sessions(struct sw *s, const char *db)
{
	return s->o->terminate ? dd_pg_terminate_sessions(s->m, db) : dd_pg_refuse_sessions(s->m, db);
}

/*
 * The rename transaction: work -> stash (if any), source -> work (opened
 * to connections for a spare). *fp: the fingerprint read inside it, with
 * `seq` (NULL: none read); it goes into the journal `j` before the commit,
 * so a kill right after the commit still records it.
 */
static int
rename_in(struct sw *s, const char *source, const char *stash, int open_it, const char *seq, char **fp,
	  struct dd_pg_journal *j, int *unknown)
{
	const char *work = s->t.database;
	char *qw = dd_pg_quote_ident(work), *qsrc = dd_pg_quote_ident(source);
	char *qs = stash ? dd_pg_quote_ident(stash) : NULL;
	struct dd_buf sql = DD_BUF_INIT;
	int rc = -1;

	*fp = NULL;
	*unknown = 0;
	dd_buf_puts(&sql, "BEGIN;");
	if (stash)
		dd_buf_printf(&sql, " ALTER DATABASE %s RENAME TO %s;", qw, qs);
	if (open_it)
		dd_buf_printf(&sql, " ALTER DATABASE %s WITH ALLOW_CONNECTIONS true;", qsrc);
	dd_buf_printf(&sql, " ALTER DATABASE %s RENAME TO %s; SAVEPOINT dd_fp", qsrc, qw);
	for (int attempt = 0; attempt < 10; attempt++) {
		if ((stash && clear_sessions(s, work) < 0) || clear_sessions(s, source) < 0)
			break;
		PGresult *res = PQexec(s->m, sql.ptr);
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_COMMAND_OK) {
			PQclear(res);
			if (seq && dd_pg_fingerprint_swap(s->m, work, seq, fp) < 0) {
				dd_debug("no change fingerprint: %s", dd_error_last());
				dd_error_clear();
				dd_pg_exec(s->m, "ROLLBACK TO SAVEPOINT dd_fp");
			}
			if (*fp) {
				j->fingerprint = *fp;
				if (dd_pg_journal_write(s->o->statedir, &s->t, j) < 0)
					dd_error_clear(); /* then a kill after the commit records no fingerprint */
			}
			int sent = PQstatus(s->m) == CONNECTION_OK; /* else COMMIT never reaches the server */
			res = PQexec(s->m, "COMMIT");
			if (dd_failpoint_is("commit-lost") && PQresultStatus(res) == PGRES_COMMAND_OK) {
				/* tests: the server committed, its reply is lost with the connection */
				PQclear(res);
				shutdown(PQsocket(s->m), SHUT_RDWR);
				res = PQexec(s->m, "SELECT 1");
			}
			st = PQresultStatus(res);
			if (st != PGRES_COMMAND_OK && sent && PQstatus(s->m) != CONNECTION_OK) {
				/*
				 * No answer to COMMIT: the server may have committed (the
				 * connection cut once it had). The journal stays; the next
				 * command's recovery tells from the databases which it was.
				 */
				dd_pg_error(s->m, res);
				PQclear(res);
				free(*fp); /* the journal on disk holds it */
				*fp = NULL;
				*unknown = 1;
				dd_error_wrap("the connection was lost while committing the switch of database %s: "
					      "whether it happened is not known", work);
				dd_hint("the next restore, `git dnadata use` or `stash drop` finishes or undoes its records");
				break;
			}
		}
		if (st == PGRES_COMMAND_OK) {
			PQclear(res);
			rc = 0;
			break;
		}
		free(*fp);
		*fp = NULL;
		int in_use = !strcmp(dd_pg_sqlstate(res), "55006");
		dd_pg_error(s->m, res);
		PQclear(res);
		dd_pg_exec(s->m, "ROLLBACK");
		if (!in_use || dd_pg_interrupted())
			break;
		/* someone connected between our check and the rename */
		usleep(200000);
	}
	if (rc < 0 && !*unknown)
		dd_error_wrap("switching database %s", work);
	dd_buf_release(&sql);
	free(qw);
	free(qsrc);
	free(qs);
	return rc;
}

/* An interrupt seen between two steps: 1 with the error "interrupted" recorded. */
static int
stop_if_interrupted(void)
{
	if (!dd_pg_interrupted())
		return 0;
	dd_error("interrupted");
	return 1;
}

/* Pending under our pid: `name` (replacing what was). */
static int
start_building(struct sw *s, const char *name)
{
	if (dd_pg_state_pending_add(s->o->statedir, &s->t, name) < 0)
		return -1;
	free(s->building);
	s->building = dd_strdup(name);
	return 0;
}

/* Done building: the copy is recorded or in place; no longer ours to drop. */
static void
done_building(struct sw *s)
{
	free(s->building);
	s->building = NULL;
}

/* On failure: drop what we were building (keeping the error). */
static void
drop_building(struct sw *s)
{
	struct dd_error_saved saved;

	if (!s->building)
		return;
	dd_error_save(&saved);
	/* the server ended our session (a restart): a new one still drops the copy, as the next command would */
	if (s->m && PQstatus(s->m) == CONNECTION_BAD)
		PQreset(s->m);
	if (s->m && dd_pg_drop_db(s->m, s->building) == 0)
		dd_pg_state_pending_remove(s->o->statedir, &s->t, (long)getpid());
	else
		dd_warn("could not drop the partial copy %s (%s); the next command drops it", s->building,
			dd_error_last());
	dd_error_restore(&saved);
	done_building(s);
}

/* Restore the snapshot from the cache/store into a new template, recorded once complete. *tmpl: its name. */
static int
build_template(struct sw *s, char **tmpl, char **seq_fp, long long *size)
{
	const struct dd_pg_switch_opts *o = s->o;
	struct dd_store *st = NULL;
	struct dd_snapshot *snap = NULL;
	struct dd_pg_restore_opts ro = { .conninfo = o->conninfo, .statedir = o->statedir, .profile = o->profile,
					 .jobs = o->jobs, .terminate = o->terminate };
	int jobs = o->jobs > 0 ? o->jobs : (int)sysconf(_SC_NPROCESSORS_ONLN);
	char *q = NULL, *sql = NULL;
	int rc = -1;

	*tmpl = NULL;
	*seq_fp = NULL;
	if (!o->load && !o->sql_schema)
		return dd_error("snapshot %.12s is not on this database server, and no store to restore it from",
				o->snapshot);
	if (!o->sql_schema && o->load(o->load_arg, &st, &snap) < 0)
		return -1;
	if (snap && !dd_snapshot_find(snap, "schema/pre-data")) {
		dd_error("snapshot %.12s holds no PostgreSQL schema", o->snapshot);
		goto out;
	}
	if (pick_copy_name(s->m, o->statedir, &s->t, "tmpl", o->snapshot, tmpl) < 0 || start_building(s, *tmpl) < 0)
		goto out;
	/* an inline profile's files (issue 18), else the snapshot's streams */
	if (o->sql_schema ? dd_pg_build_sql(s->m, o->conninfo, *tmpl, o->sql_schema, o->sql_data, seq_fp) < 0
			  : dd_pg_build(s->m, st, snap, &ro, *tmpl, jobs < 1 ? 1 : jobs, seq_fp) < 0) {
		dd_error_wrap("restoring snapshot %.12s", o->snapshot);
		goto out;
	}
	if (stop_if_interrupted())
		goto out;
	dd_failpoint("template-built");
	q = dd_pg_quote_ident(*tmpl);
	sql = dd_asprintf("ALTER DATABASE %s WITH ALLOW_CONNECTIONS false", q);
	if (dd_pg_exec(s->m, sql) < 0)
		goto out;
	*size = size_of(s->m, *tmpl);
	struct dd_pg_copy c = { .name = *tmpl, .kind = DD_PG_COPY_TEMPLATE, .snapshot = (char *)o->snapshot,
				.profile = (char *)o->profile, .modified = DD_PG_MOD_NO, .fingerprint = *seq_fp };
	if (dd_pg_copy_record(o->statedir, &s->t, &c) < 0)
		goto out;
	dd_failpoint("template-recorded");
	done_building(s); /* recorded: the pending record that still names it is harmless (state.c) */
	rc = 0;
out:
	if (rc < 0) {
		drop_building(s);
		free(*tmpl);
		*tmpl = NULL;
		free(*seq_fp);
		*seq_fp = NULL;
	}
	free(sql);
	free(q);
	dd_snapshot_free(snap);
	dd_store_free(st);
	return rc;
}

/* --force: drop the templates of the snapshot other than `keep` (ours, and just rebuilt). */
static void
drop_old_templates(struct sw *s, const char *keep)
{
	for (size_t i = 0; i < s->ncopies; i++) {
		const struct dd_pg_copy *c = &s->copies[i];
		if (c->kind != DD_PG_COPY_TEMPLATE || strcmp(c->snapshot, s->o->snapshot) || !strcmp(c->name, keep))
			continue;
		if (dd_pg_copy_drop(s->o->statedir, s->o->conninfo, c->name, 0) < 0) {
			dd_warn("could not drop the older template %s: %s", c->name, dd_error_last());
			dd_error_clear();
		}
	}
}

/*
 * Which copy the switch starts from, cheapest first (res->how; NULL for a
 * restore). *open_it: a spare, closed to connections until renamed in.
 */
static const struct dd_pg_copy *
choose_source(struct sw *s, struct dd_pg_switch_result *res, int *open_it)
{
	const struct dd_pg_switch_opts *o = s->o;
	const struct dd_pg_copy *src = NULL;

	*open_it = 0;
	if (!o->force && !o->clean && (src = find_copy(s, DD_PG_COPY_STASH, stash_of_branch))) {
		res->how = DD_PG_SWITCH_STASH;
	} else if (!o->force && (src = find_copy(s, DD_PG_COPY_SPARE, NULL))) {
		res->how = DD_PG_SWITCH_SPARE;
		*open_it = 1;
	} else if (!o->force && (src = find_copy(s, DD_PG_COPY_STASH, stash_unmodified))) {
		res->how = DD_PG_SWITCH_SPARE;
	} else if (!o->force && (src = find_copy(s, DD_PG_COPY_TEMPLATE, NULL))) {
		res->how = DD_PG_SWITCH_CLONE;
	} else {
		res->how = DD_PG_SWITCH_RESTORE;
	}
	return src;
}

/*
 * The database to rename in (*source): the stash or spare itself; else a
 * clone of the template (built first from the snapshot for a restore),
 * pending under our pid while it is made. *seq / *fp: the parts of the
 * change fingerprint it carries.
 */
static int
prepare_source(struct sw *s, const struct dd_pg_switch_result *res, const struct dd_pg_copy *src, char **source,
	       char **seq, char **fp)
{
	const struct dd_pg_switch_opts *o = s->o;
	char *tmpl = NULL, *newdb = NULL, suffix[64];
	long long size = -1;
	int rc = -1;

	if (res->how == DD_PG_SWITCH_STASH || res->how == DD_PG_SWITCH_SPARE) {
		*source = dd_strdup(src->name);
		/* a spare holds the template's sequences; a stash renamed back keeps its own fingerprint */
		if (src->kind == DD_PG_COPY_SPARE)
			*seq = src->fingerprint ? dd_strdup(src->fingerprint) : NULL;
		else
			*fp = src->fingerprint ? dd_strdup(src->fingerprint) : NULL;
		return 0;
	}
	dd_pg_spares_cancel(o->statedir, o->conninfo); /* it would compete for the disk */
	if (res->how == DD_PG_SWITCH_RESTORE) {
		double b0 = dd_pg_seconds();
		if (build_template(s, &tmpl, seq, &size) < 0)
			goto out;
		dd_debug("built template %s in %.0f ms", tmpl, (dd_pg_seconds() - b0) * 1000);
		if (o->force)
			drop_old_templates(s, tmpl);
	} else {
		tmpl = dd_strdup(src->name);
		*seq = src->fingerprint ? dd_strdup(src->fingerprint) : NULL;
		size = size_of(s->m, tmpl);
	}
	snprintf(suffix, sizeof(suffix), "__dnadata_new_%ld", (long)getpid());
	newdb = dd_pg_name_with_suffix(s->t.database, suffix);
	double c0 = dd_pg_seconds();
	if (start_building(s, newdb) < 0 || dd_pg_drop_db(s->m, newdb) < 0 || clone_db(s->m, newdb, tmpl, size, 0) < 0)
		goto out;
	dd_debug("cloned %s (%lld bytes) in %.0f ms", tmpl, size, (dd_pg_seconds() - c0) * 1000);
	dd_failpoint("cloned");
	if (dd_pg_copy_touch(o->statedir, o->conninfo, tmpl) < 0)
		dd_error_clear();
	*source = newdb, newdb = NULL;
	rc = 0;
out:
	free(tmpl);
	free(newdb);
	return rc;
}

/* What the journal calls the source: "stash", "spare", "clone" or "restore". */
static const char *
journal_kind(const struct dd_pg_switch_result *res, const struct dd_pg_copy *src)
{
	switch (res->how) {
	case DD_PG_SWITCH_STASH: return "stash";
	case DD_PG_SWITCH_SPARE: return src->kind == DD_PG_COPY_SPARE ? "spare" : "stash";
	case DD_PG_SWITCH_CLONE: return "clone";
	default: return "restore";
	}
}

/*
 * The rename committed: the new stash's record again (a status run meanwhile
 * removes a record without a database), the working record, the source's
 * record or pending entry, then the journal. -1 when the working record
 * cannot be written: the journal stays and the next command writes it.
 */
static int
record_switch(struct sw *s, const struct dd_pg_switch_result *res, const struct dd_pg_copy *src,
	      const struct dd_pg_copy *sc, const char *fp)
{
	const struct dd_pg_switch_opts *o = s->o;

	dd_failpoint("renamed");
	done_building(s); /* the clone is the working database now */
	if (sc->name && dd_pg_copy_record(o->statedir, &s->t, sc) < 0)
		dd_warn("the previous database is kept as %s, but status may not list it (%s)", sc->name,
			dd_error_last());
	if (dd_pg_state_set_switched(o->statedir, &s->t, o->snapshot, o->profile, "restored", fp, o->branch, s->media,
				     0) < 0)
		return -1;
	dd_failpoint("recorded");
	if (res->how == DD_PG_SWITCH_STASH || res->how == DD_PG_SWITCH_SPARE)
		dd_pg_copy_forget(o->statedir, &s->t, src->name);
	else
		dd_pg_state_pending_remove(o->statedir, &s->t, (long)getpid());
	dd_error_clear();
	dd_pg_journal_remove(o->statedir, &s->t);
	return 0;
}

/* The media target (o->media), checked before anything is built or changed: the chosen stash's, else the ref's. */
static int
choose_media(struct sw *s, const struct dd_pg_switch_result *res, const struct dd_pg_copy *src)
{
	const struct dd_pg_switch_media *m = s->o->media;

	/* a stash's media goes back only into the folder it was taken of (profiles may have different folders) */
	int own = res->how == DD_PG_SWITCH_STASH && src->media &&
		  (!src->media_folder || (m && m->folder && !strcmp(src->media_folder, m->folder)));

	return m ? m->choose(m->arg, own ? src->media : NULL, &s->media) : 0;
}

/* The folder made equal to the target, just before the rename: 0, or -1 (the callback put it back). */
static int
apply_media(struct sw *s)
{
	if (!s->media)
		return 0;
	if (s->o->media->apply(s->o->media->arg, s->media) < 0)
		return -1;
	s->media_applied = 1;
	dd_failpoint("media-applied");
	return 0;
}

/*
 * Set the folder aside when the switch changes it, as late as possible
 * (files written during a build are in it). Files set aside (a private
 * snapshot) are named by the stash the working database becomes: without
 * a working database nothing would name them, so the switch refuses
 * rather than remove them.
 */
static int
set_media_aside(const struct sw *s, int exists)
{
	const struct dd_pg_switch_media *m = s->o->media;

	if (!s->media || m->set_aside(m->arg) < 0)
		return s->media ? -1 : 0;
	if (exists || !m->stash_private || !strcmp(m->stash, s->media))
		return 0;
	dd_error("media folder %s holds files no snapshot has, and there is no working database %s to keep them "
		 "with", m->folder, s->t.database);
	dd_hint("move the folder %s elsewhere (or restore the database its files go with first), then restore again",
		m->folder);
	return -1;
}

/* The switch did not happen: its journal goes (keeping the error). */
static void
remove_journal(struct sw *s)
{
	struct dd_error_saved saved;

	dd_error_save(&saved);
	dd_pg_journal_remove(s->o->statedir, &s->t);
	dd_error_restore(&saved);
}

/*
 * Connect (interrupts handled), finish what dead processes left, and read
 * the databases, the working record and the copies. *exists: the working
 * database exists (other sessions on it refused early unless terminate).
 */
static int
open_switch(struct sw *s, int *exists)
{
	const struct dd_pg_switch_opts *o = s->o;

	if (dd_pg_interrupt_install() < 0)
		return -1;
	s->installed = 1;
	if (dd_pg_connect_maint(&s->m, o->conninfo, s->t.database) < 0)
		return -1;
	dd_pg_cancel_register(s->m);
	dd_pg_reap_with(s->m, o->statedir, &s->t);
	if (!(s->dbs = list_databases(s->m)))
		return -1;
	*exists = db_row(s->dbs, s->t.database) >= 0;
	/* refuse early, before any work: the same check runs again just before the rename */
	if (*exists && !o->terminate && dd_pg_refuse_sessions(s->m, s->t.database) < 0)
		return -1;
	if (dd_pg_state_read_target(&s->prev, o->statedir, &s->t) < 0)
		dd_error_clear();
	return dd_pg_copies_list_target(&s->copies, &s->ncopies, o->statedir, &s->t);
}

int
dd_pg_switch(const struct dd_pg_switch_opts *o, struct dd_pg_switch_result *res)
{
	struct sw s = { .o = o };
	struct check chk = { 0 };
	const struct dd_pg_copy *src = NULL;
	struct dd_pg_journal j = { 0 };
	char *stash = NULL, *seq = NULL, *fp = NULL, *source = NULL, *source_oid = NULL;
	const char *kind;
	enum dd_pg_modified modified = DD_PG_MOD_UNKNOWN;
	int rc = DD_ERROR, exists = 0, open_it = 0;
	double t0 = dd_pg_seconds();

	memset(res, 0, sizeof(*res));
	if (dd_pg_target_resolve(&s.t, o->conninfo) < 0)
		return DD_ERROR;
	if (open_switch(&s, &exists) < 0)
		goto out;
	if (exists)
		check_start(&chk, &s);
	src = choose_source(&s, res, &open_it);
	if (choose_media(&s, res, src) < 0)
		goto out;
	if (prepare_source(&s, res, src, &source, &seq, &fp) < 0 || stop_if_interrupted())
		goto out;

	/* the working database becomes a stash: what it holds, the branch left, whether it was modified */
	if (exists) {
		modified = check_finish(&chk);
		if (dd_pg_pick_stash_name(s.m, s.t.database, &stash) < 0)
			goto out;
	}
	if (set_media_aside(&s, exists) < 0)
		goto out;
	kind = journal_kind(res, src);
	if (db_oid(s.m, source, &source_oid) < 0)
		goto out;
	if (!source_oid) {
		dd_error("database %s is gone (dropped by someone else?)", source);
		goto out;
	}
	j = (struct dd_pg_journal){ .source = source, .kind = (char *)kind, .stash = stash,
				    .snapshot = (char *)o->snapshot, .profile = (char *)o->profile,
				    .branch = (char *)o->branch, .fingerprint = fp, .source_oid = source_oid,
				    .media = s.media ? s.media : NULL,
				    .media_stash = s.media && o->media->stash ? (char *)o->media->stash : NULL,
				    .media_folder = s.media ? (char *)o->media->folder : NULL,
				    .media_private = s.media && o->media->stash_private };
	if (dd_pg_journal_write(o->statedir, &s.t, &j) < 0)
		goto out;
	struct dd_pg_copy sc = { .name = stash, .kind = DD_PG_COPY_STASH,
				 .snapshot = s.prev.snapshot ? s.prev.snapshot : (char *)"",
				 .profile = s.prev.profile ? s.prev.profile : (char *)"",
				 .branch = (char *)(o->branch_left ? o->branch_left : s.prev.branch ? s.prev.branch : ""),
				 .modified = modified, .fingerprint = s.prev.fingerprint, .replaced = o->clean,
				 .media = j.media_stash, .media_folder = j.media_folder, .media_private = j.media_private };
	/* the stash's record before the rename: a kill right after it must not lose it */
	if (stash && dd_pg_copy_record(o->statedir, &s.t, &sc) < 0) {
		dd_error_wrap("recording the stash for database %s", s.t.database);
		dd_hint("make %s writable, then restore again", o->statedir);
		goto undo_journal;
	}
	char *newfp = NULL;
	int unknown = 0;
	dd_failpoint("before-rename");
	if (apply_media(&s) < 0)
		goto forget_stash;
	if (rename_in(&s, source, stash, open_it, seq, &newfp, &j, &unknown) < 0) {
		if (unknown) {
			/* the copy may be the working database now: nothing dropped, the journal and records stay */
			done_building(&s);
			goto out;
		}
		if (s.media_applied)
			o->media->undo(o->media->arg);
		goto forget_stash;
	}
	if (newfp) {
		free(fp);
		fp = newfp;
	}
	if (record_switch(&s, res, src, &sc, fp) < 0)
		goto out; /* the journal stays: the next command writes the record */
	res->database = dd_strdup(s.t.database);
	res->stash = stash, stash = NULL;
	res->source = src ? dd_strdup(src->name) : NULL;
	res->seconds = dd_pg_seconds() - t0;
	res->media = s.media, s.media = NULL;
	rc = DD_OK;
	goto out;
forget_stash:
	if (stash)
		dd_pg_copy_forget(o->statedir, &s.t, stash);
undo_journal:
	remove_journal(&s);
out:
	check_abandon(&chk);
	if (rc != DD_OK)
		drop_building(&s);
	if (s.m) {
		dd_pg_cancel_unregister(s.m);
		PQfinish(s.m);
	}
	if (s.installed)
		dd_pg_interrupt_remove();
	PQclear(s.dbs);
	dd_pg_copies_free(s.copies, s.ncopies);
	dd_pg_state_release(&s.prev);
	dd_pg_target_release(&s.t);
	free(s.building);
	free(s.media);
	free(stash);
	free(seq);
	free(fp);
	free(source);
	free(source_oid);
	return rc;
}

/* ---- warm spares ---- */

/* The job's record: "job-spares" (pid, start time) in the records directory, guarded by "job-spares.lock". */
static char *
job_path(const char *statedir, const struct dd_pg_target *t, const char *name)
{
	char *dir = dd_pg_state_dir(statedir, t), *p = dd_path_join(dir, name);

	free(dir);
	return p;
}

/* The pid of the running job (0 if none). */
static long
running_job(const char *statedir, const struct dd_pg_target *t)
{
	char *path = job_path(statedir, t, "job-spares");
	struct dd_buf b = DD_BUF_INIT;
	long pid = 0;
	long long started = -1;

	if (dd_path_exists(path) && dd_file_read(&b, path) == 0 && b.ptr &&
	    sscanf(b.ptr, "%ld %lld", &pid, &started) == 2 && pid > 0 && pid != (long)getpid() &&
	    (kill((pid_t)pid, 0) == 0 || errno == EPERM) && dd_proc_start_time(pid) == started) {
		/* that process, still running */
	} else {
		pid = 0;
	}
	dd_error_clear();
	dd_buf_release(&b);
	free(path);
	return pid;
}

void
dd_pg_spares_cancel(const char *statedir, const char *conninfo)
{
	struct dd_pg_target t;
	long pid;

	if (dd_pg_target_resolve(&t, conninfo) < 0) {
		dd_error_clear();
		return;
	}
	if ((pid = running_job(statedir, &t)) > 0) {
		dd_debug("stopping the spare job (pid %ld)", pid);
		kill((pid_t)pid, SIGTERM);
	}
	dd_pg_target_release(&t);
}

/* Is `snapshot` among the first `limit` of `wanted`? */
static int
is_wanted(const char *snapshot, const char *const *wanted, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(wanted[i], snapshot))
			return 1;
	return 0;
}

/* The copy of `kind` holding `snapshot` that exists (most recently used), or NULL. */
static const struct dd_pg_copy *
copy_of(const struct dd_pg_copy *v, size_t n, enum dd_pg_copy_kind kind, const char *snapshot, const PGresult *dbs)
{
	const struct dd_pg_copy *best = NULL;

	for (size_t i = 0; i < n; i++)
		if (v[i].kind == kind && !strcmp(v[i].snapshot, snapshot) && db_row(dbs, v[i].name) >= 0)
			best = &v[i];
	return best;
}

/* Make a spare of template `tmpl`: pending, cloned closed to connections, recorded. */
static int
make_spare(PGconn *m, const char *statedir, const struct dd_pg_target *t, const struct dd_pg_copy *tmpl,
	   const PGresult *dbs)
{
	char *name = NULL;
	int rc = -1;

	if (pick_copy_name(m, statedir, t, "spare", tmpl->snapshot, &name) < 0)
		return -1;
	if (dd_pg_state_pending_add(statedir, t, name) < 0)
		goto out;
	dd_info("cloning %s into spare %s", tmpl->name, name);
	dd_failpoint("spare-pending");
	if (dd_pg_interrupted() || clone_db(m, name, tmpl->name, size_of(m, tmpl->name), 1) < 0 ||
	    dd_pg_interrupted()) {
		if (dd_pg_interrupted())
			dd_error("interrupted");
		struct dd_error_saved saved;
		dd_error_save(&saved);
		if (dd_pg_drop_db(m, name) == 0)
			dd_pg_state_pending_remove(statedir, t, (long)getpid());
		dd_error_restore(&saved);
		goto out;
	}
	struct dd_pg_copy c = { .name = name, .kind = DD_PG_COPY_SPARE, .snapshot = tmpl->snapshot,
				.profile = tmpl->profile, .modified = DD_PG_MOD_NO, .fingerprint = tmpl->fingerprint };
	dd_failpoint("spare-cloned");
	if (dd_pg_copy_record(statedir, t, &c) < 0)
		goto out; /* still pending: the next command drops it */
	dd_failpoint("spare-recorded");
	dd_pg_state_pending_remove(statedir, t, (long)getpid());
	rc = 0;
out:
	free(name);
	return rc;
}

/*
 * Drop the spares of snapshots not wanted. The database lock is taken only
 * to turn a spare's record into our pending record (so no switch picks it,
 * and a kill leaves a copy the next command drops), if it is free at that
 * moment; the DROP itself (a checkpoint, maybe seconds) runs without it,
 * so a hook's switch never finds the lock held for that.
 */
static void
drop_unwanted_spares(PGconn *m, const char *conninfo, const char *statedir, const struct dd_pg_target *t,
		     const struct dd_pg_copy *v, size_t n, const char *const *wanted, size_t nwanted)
{
	for (size_t i = 0; i < n && !dd_pg_interrupted(); i++) {
		struct dd_pg_copy c;
		int lock = -1, r;

		if (v[i].kind != DD_PG_COPY_SPARE || is_wanted(v[i].snapshot, wanted, nwanted))
			continue;
		if (dd_pg_state_trylock(statedir, conninfo, &lock) != 0)
			break; /* a switch is on: next time */
		r = dd_pg_copy_get(&c, statedir, t, v[i].name); /* still recorded (not renamed in meanwhile)? */
		dd_pg_copy_release(&c);
		if (r == 0 && dd_pg_state_pending_add(statedir, t, v[i].name) == 0 &&
		    dd_pg_copy_forget(statedir, t, v[i].name) >= 0)
			r = 1;
		dd_unlock_file(lock);
		if (r != 1) {
			dd_error_clear();
			continue;
		}
		dd_failpoint("spare-dropping");
		if (dd_pg_drop_db(m, v[i].name) == 0) {
			dd_pg_state_pending_remove(statedir, t, (long)getpid());
			dd_info("dropped spare %s (snapshot %.12s is no longer among the likely next)", v[i].name,
				v[i].snapshot);
		} else {
			/* its pending record stays (one per process: stop here), for the next command */
			dd_warn("could not drop spare %s (%s); the next command drops it", v[i].name, dd_error_last());
			dd_error_clear();
			break;
		}
		dd_error_clear();
	}
}

int
dd_pg_spares_make(const char *conninfo, const char *statedir, const char *const *wanted, size_t nwanted, int limit)
{
	struct dd_pg_target t;
	struct dd_pg_copy *v = NULL;
	PGconn *m = NULL;
	PGresult *dbs = NULL;
	size_t n = 0;
	char *lockpath = NULL, *jobpath = NULL, line[64];
	int rc = DD_ERROR, made = 0, joblock = -1, installed = 0;
	long old;

	if (limit < 0)
		limit = 0;
	if ((size_t)limit < nwanted)
		nwanted = (size_t)limit;
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return DD_ERROR;
	/* one job at a time: the newest, which knows best what is wanted */
	if ((old = running_job(statedir, &t)) > 0)
		kill((pid_t)old, SIGTERM);
	lockpath = job_path(statedir, &t, "job-spares.lock");
	if (dd_lock_file(lockpath, NULL, &joblock) < 0)
		goto out;
	jobpath = job_path(statedir, &t, "job-spares");
	snprintf(line, sizeof(line), "%ld %lld\n", (long)getpid(), dd_proc_start_time((long)getpid()));
	if (dd_file_write_atomic(jobpath, line, strlen(line), 0600, 0) < 0)
		goto out;
	if (dd_pg_interrupt_install() < 0)
		goto out;
	installed = 1;
	if (dd_pg_connect_maint(&m, conninfo, t.database) < 0)
		goto out;
	dd_pg_cancel_register(m);
	if (!(dbs = list_databases(m)) || dd_pg_copies_list_target(&v, &n, statedir, &t) < 0)
		goto out;
	for (size_t i = 0; i < nwanted && !dd_pg_interrupted(); i++) {
		const struct dd_pg_copy *tmpl = copy_of(v, n, DD_PG_COPY_TEMPLATE, wanted[i], dbs);
		if (!tmpl || copy_of(v, n, DD_PG_COPY_SPARE, wanted[i], dbs))
			continue;
		if (make_spare(m, statedir, &t, tmpl, dbs) < 0) {
			if (dd_pg_interrupted())
				break;
			dd_warn("%s", dd_error_last());
			dd_error_clear();
			continue;
		}
		made++;
	}
	if (!dd_pg_interrupted())
		drop_unwanted_spares(m, conninfo, statedir, &t, v, n, wanted, nwanted);
	if (dd_pg_interrupted()) {
		dd_error("interrupted");
		goto out;
	}
	rc = made;
out:
	if (jobpath) {
		struct dd_error_saved saved;
		dd_error_save(&saved); /* running_job() clears it */
		if (running_job(statedir, &t) == 0)
			unlink(jobpath);
		dd_error_restore(&saved);
	}
	if (m) {
		dd_pg_cancel_unregister(m);
		PQfinish(m);
	}
	if (installed)
		dd_pg_interrupt_remove();
	dd_unlock_file(joblock);
	PQclear(dbs);
	dd_pg_copies_free(v, n);
	free(jobpath);
	free(lockpath);
	dd_pg_target_release(&t);
	return rc;
}
