/*
 * pg/conn.c: libpq connections with clear, secret-free errors, and the
 * interrupt machinery every long PostgreSQL operation shares.
 *
 * Errors name host, port, user and database (resolved the way libpq does:
 * connection string, then PG* variables, then built-in defaults) and never
 * quote the connection string itself, since it may carry a password.
 *
 * Every session is set up so COPY text is exact and independent of the
 * user's environment: TimeZone UTC, DateStyle ISO, IntervalStyle postgres,
 * extra_float_digits 3, bytea_output hex, client_encoding = the database's.
 *
 * Interrupts: SIGINT/SIGTERM only set a flag and post a semaphore (both
 * async-signal-safe); a watcher thread sleeping on that semaphore wakes and
 * sends a cancel request for every registered connection, so threads
 * blocked inside libpq get an error back and unwind through their normal
 * cleanup. The flag stays set until the last dd_pg_interrupt_remove(),
 * which posts the semaphore too: the watcher never polls, so ending it
 * costs no wait (a 50 ms polling tick cost every switch 25 ms on average).
 * A cancelled operation then reports "interrupted".
 *
 * Queries that evaluate masking rules or a subset condition (issue 21)
 * report errors through dd_pg_guarded_error: a server message, its DETAIL
 * and CONTEXT may quote the row it failed on, unmasked, so only the
 * SQLSTATEs that never quote a row keep their message. Their sessions'
 * notices (a function's RAISE NOTICE can quote a value too) are dropped
 * (dd_pg_hide_notices).
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "util/buf.h"
#include "util/conninfo.h"
#include "util/err.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET_DIR "/var/run/postgresql"

static const char session_setup[] =
	"SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';"
	"SET extra_float_digits = 3; SET bytea_output = 'hex';"
	"SET statement_timeout = 0; SET lock_timeout = 0;"
	"SET idle_in_transaction_session_timeout = 0";

static char *
opt_value(PQconninfoOption *opts, const char *key)
{
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, key) && o->val && *o->val)
			return o->val;
	return NULL;
}

/* getpwuid_r: a switch resolves targets in two threads at once (its change check runs beside the clone) */
static char *
os_user(void)
{
	struct passwd pwbuf, *pw = NULL;
	char buf[4096];

	if (getpwuid_r(geteuid(), &pwbuf, buf, sizeof(buf), &pw) != 0)
		pw = NULL;
	return dd_strdup(pw && pw->pw_name ? pw->pw_name : "unknown");
}

int
dd_pg_target_resolve(struct dd_pg_target *t, const char *conninfo)
{
	PQconninfoOption *parsed = NULL, *defs = NULL;
	char *err = NULL, *v;

	memset(t, 0, sizeof(*t));
	parsed = PQconninfoParse(conninfo ? conninfo : "", &err);
	if (!parsed) {
		/* libpq's message may quote part of the string, and so a password */
		PQfreemem(err);
		dd_error("the database connection string is malformed");
		dd_hint("check [database] url in .dnadata/profiles.ini, .git/dnadata/config.ini or DNADATA_DATABASE");
		return -1;
	}
	defs = PQconndefaults();
	v = opt_value(parsed, "host");
	if (!v)
		v = opt_value(parsed, "hostaddr");
	if (!v)
		v = opt_value(defs, "host");
	if (!v)
		v = opt_value(defs, "hostaddr");
	t->host = dd_strdup(v ? v : DEFAULT_SOCKET_DIR);
	v = opt_value(parsed, "port");
	if (!v)
		v = opt_value(defs, "port");
	t->port = dd_strdup(v ? v : "5432");
	v = opt_value(parsed, "user");
	if (!v)
		v = opt_value(defs, "user");
	t->user = v ? dd_strdup(v) : os_user();
	v = opt_value(parsed, "dbname");
	if (!v)
		v = opt_value(defs, "dbname");
	t->database = dd_strdup(v ? v : t->user);
	PQconninfoFree(parsed);
	PQconninfoFree(defs);
	return 0;
}

void
dd_pg_target_release(struct dd_pg_target *t)
{
	free(t->host);
	free(t->port);
	free(t->user);
	free(t->database);
	memset(t, 0, sizeof(*t));
}

char *
dd_pg_target_describe(const struct dd_pg_target *t)
{
	return dd_asprintf("host %s port %s user %s database %s", t->host, t->port, t->user, t->database);
}

static void
hint_for_connect(const char *msg)
{
	if (strstr(msg, "password authentication failed") || strstr(msg, "no password supplied"))
		dd_hint("check the password (in the URL, PGPASSWORD or ~/.pgpass) and the user name");
	else if (strstr(msg, "does not exist") && strstr(msg, "database"))
		dd_hint("create the database, or fix its name where it is set: DNADATA_DATABASE, the profile's database "
			"or [database] url in .dnadata/profiles.ini or .git/dnadata/config.ini, or PGDATABASE");
	else if (strstr(msg, "Connection refused") || strstr(msg, "No such file or directory") ||
		 strstr(msg, "could not translate host name") || strstr(msg, "timeout expired"))
		dd_hint("is the server running? check host and port in [database] url, DNADATA_DATABASE or PGHOST/PGPORT");
	else if (strstr(msg, "no pg_hba.conf entry"))
		dd_hint("allow this user and host in the server's pg_hba.conf");
}

static void
notice_to_debug(void *arg, const char *message)
{
	size_t len = strlen(message);

	(void)arg;
	while (len && message[len - 1] == '\n')
		len--;
	dd_debug("server: %.*s", (int)len, message);
}

static atomic_flag notice_said = ATOMIC_FLAG_INIT;

static void
notice_dropped(void *arg, const char *message)
{
	(void)arg;
	(void)message;
	if (!atomic_flag_test_and_set(&notice_said))
		dd_debug("server: a notice was left out (masking rules or a subset: it may quote an unmasked value)");
}

void
dd_pg_hide_notices(PGconn *c)
{
	PQsetNoticeProcessor(c, notice_dropped, NULL);
}

int
dd_pg_connect(PGconn **out, const char *conninfo, const char *dbname)
{
	const char *keys[8], *vals[8];
	int n = 0, rc = -1;
	PGconn *c = NULL;
	PGresult *r = NULL;
	struct dd_pg_target t;
	char *enc = NULL;

	*out = NULL;
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	if (!getenv("PGCONNECT_TIMEOUT"))
		keys[n] = "connect_timeout", vals[n++] = "10";
	keys[n] = "dbname", vals[n++] = conninfo ? conninfo : "";
	if (dbname)
		keys[n] = "dbname", vals[n++] = dbname;
	keys[n] = "fallback_application_name", vals[n++] = "git-dnadata";
	keys[n] = NULL, vals[n] = NULL;
	c = PQconnectdbParams(keys, vals, 1);
	if (!c) {
		dd_error("cannot connect to PostgreSQL: out of memory");
		goto out;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		struct dd_buf m = DD_BUF_INIT;
		const char *msg = PQerrorMessage(c);
		dd_buf_puts(&m, msg);
		/* libpq prefixes: "connection to server at ... failed: FATAL:  ..." */
		const char *p = strstr(m.ptr ? m.ptr : "", "failed: ");
		const char *reason = p ? p + 8 : dd_buf_cstr(&m);
		while (*reason == ' ')
			reason++;
		dd_error("cannot connect to PostgreSQL (host %s port %s user %s database %s): %s",
			 t.host, t.port, t.user, dbname ? dbname : t.database, reason);
		hint_for_connect(dd_buf_cstr(&m));
		dd_buf_release(&m);
		goto out;
	}
	PQsetNoticeProcessor(c, notice_to_debug, NULL);
	r = PQexec(c, session_setup);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		dd_pg_error(c, r);
		goto out;
	}
	PQclear(r);
	r = NULL;
	const char *senc = PQparameterStatus(c, "server_encoding");
	if (senc && PQsetClientEncoding(c, senc) != 0) {
		dd_error("cannot set client_encoding to %s: %s", senc, PQerrorMessage(c));
		goto out;
	}
	*out = c, c = NULL, rc = 0;
out:
	free(enc);
	PQclear(r);
	if (c)
		PQfinish(c);
	dd_pg_target_release(&t);
	return rc;
}

static int
connect_maint(PGconn **out, const char *conninfo, const char *workdb)
{
	const char *maint = strcmp(workdb, "postgres") ? "postgres" : "template1";

	if (dd_pg_connect(out, conninfo, maint) == 0)
		return 0;
	if (strcmp(maint, "postgres") || !strstr(dd_error_last(), "does not exist"))
		return -1;
	return dd_pg_connect(out, conninfo, "template1");
}

/*
 * A maintenance connection made ahead (dd_pg_preconnect): one per process,
 * made by a thread of its own, handed over once to the first
 * dd_pg_connect_maint() for the same conninfo and working database.
 */
static struct {
	pthread_mutex_t mu;
	pthread_t thread;
	int started, finished, joined;
	char *conninfo, *workdb;
	PGconn *conn;
} ahead = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void *
ahead_run(void *arg)
{
	PGconn *c = NULL;

	(void)arg;
	if (connect_maint(&c, ahead.conninfo, ahead.workdb) < 0)
		dd_error_clear(); /* the one who needs it connects again, and reports why it cannot */
	pthread_mutex_lock(&ahead.mu);
	ahead.conn = c;
	ahead.finished = 1;
	pthread_mutex_unlock(&ahead.mu);
	return NULL;
}

void
dd_pg_preconnect(const char *conninfo)
{
	struct dd_pg_target t;

	if (ahead.started || dd_pg_target_resolve(&t, conninfo) < 0) {
		dd_error_clear();
		return;
	}
	ahead.conninfo = dd_strdup(conninfo ? conninfo : "");
	ahead.workdb = dd_strdup(t.database);
	dd_pg_target_release(&t);
	ahead.started = pthread_create(&ahead.thread, NULL, ahead_run, NULL) == 0;
}

/* The connection made ahead for (conninfo, workdb), waited for; NULL if none (or it failed). Any thread. */
static PGconn *
take_ahead(const char *conninfo, const char *workdb)
{
	PGconn *c;
	int mine;

	pthread_mutex_lock(&ahead.mu);
	mine = ahead.started && !ahead.joined && !strcmp(ahead.conninfo, conninfo ? conninfo : "") &&
	       !strcmp(ahead.workdb, workdb);
	if (mine)
		ahead.joined = 1; /* claimed: nobody else joins it */
	pthread_mutex_unlock(&ahead.mu);
	if (!mine)
		return NULL;
	pthread_join(ahead.thread, NULL);
	c = ahead.conn;
	ahead.conn = NULL;
	free(ahead.conninfo); /* claimed: no one reads them any more */
	free(ahead.workdb);
	ahead.conninfo = ahead.workdb = NULL;
	if (c && PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		c = NULL;
	}
	return c;
}

void
dd_pg_preconnect_end(void)
{
	int finished;

	pthread_mutex_lock(&ahead.mu);
	finished = ahead.started && !ahead.joined && ahead.finished;
	if (finished)
		ahead.joined = 1;
	pthread_mutex_unlock(&ahead.mu);
	if (!finished)
		return; /* none, taken, or still connecting (a server that does not answer): the exit ends it */
	pthread_join(ahead.thread, NULL);
	if (ahead.conn)
		PQfinish(ahead.conn);
	ahead.conn = NULL;
	free(ahead.conninfo);
	free(ahead.workdb);
	ahead.conninfo = ahead.workdb = NULL;
}

int
dd_pg_connect_maint(PGconn **out, const char *conninfo, const char *workdb)
{
	if ((*out = take_ahead(conninfo, workdb)))
		return 0;
	return connect_maint(out, conninfo, workdb);
}

char *
dd_pg_conninfo_nopassword(const char *conninfo)
{
	return dd_conninfo_strip_secrets(conninfo);
}

char *
dd_pg_database_url(const char *conninfo, char **password)
{
	struct dd_pg_target t;
	char *url;

	if (password)
		*password = NULL;
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return NULL;
	url = dd_conninfo_url(conninfo, t.host, t.port, t.user, t.database, password);
	dd_pg_target_release(&t);
	return url;
}

int
dd_pg_database_exists(const char *conninfo)
{
	PGconn *c = NULL;

	if (dd_pg_connect(&c, conninfo, NULL) == 0) {
		PQfinish(c);
		return 1;
	}
	const char *e = dd_error_last() ? dd_error_last() : "";
	const char *d = strstr(e, "FATAL:  database \"");
	if (d && strstr(d, "\" does not exist")) {
		dd_error_clear();
		return 0;
	}
	return -1;
}

const char *
dd_pg_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}

int
dd_pg_error(PGconn *c, const PGresult *res)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;

	if (dd_pg_interrupted() && (!strcmp(dd_pg_sqlstate(res), "57014") || !msg))
		return dd_error("interrupted");
	if (!msg)
		msg = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(c);
	if (!msg || !*msg)
		msg = "unknown error";
	if (c && PQstatus(c) == CONNECTION_BAD && !detail) {
		/* libpq's own lines ("server closed the connection unexpectedly\n\tThis probably means ..."): the first */
		dd_error("the server ended the session: %.*s", (int)strcspn(msg, "\n"), msg);
		dd_hint("PostgreSQL restarted, crashed or was stopped meanwhile: run the command again once it is up");
		return -1;
	}
	if (detail)
		dd_error("%s (%s)", msg, detail);
	else
		dd_error("%s", msg);
	if (!strcmp(dd_pg_sqlstate(res), "53100")) /* disk_full */
		dd_hint("the database server's disk is full (where the database or its tablespace lives): free some "
			"space there and run the command again; nothing was changed");
	return -1;
}

/*
 * The SQLSTATEs whose messages never quote a row: lock not available,
 * query canceled, serialization failure, deadlock, connection exceptions
 * (class 08), insufficient resources (53), shutdown and crash (57P01-03).
 */
static int
quotes_no_row(const char *state)
{
	static const char *const safe[] = { "55P03", "57014", "40001", "40P01", "57P01", "57P02", "57P03" };

	if (!strncmp(state, "08", 2) || !strncmp(state, "53", 2))
		return 1;
	for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++)
		if (!strcmp(state, safe[i]))
			return 1;
	return 0;
}

int
dd_pg_guarded_error(PGconn *c, const PGresult *res, const char *what, const char *hint)
{
	const char *state = dd_pg_sqlstate(res);

	/* no SQLSTATE: libpq's own error (the connection lost), which quotes nothing of the server's */
	if (!*state || quotes_no_row(state))
		return dd_pg_error(c, res);
	dd_error("%s (SQLSTATE %s; the server's message is left out: it may quote an unmasked value)", what, state);
	if (hint)
		dd_hint("%s", hint);
	return -1;
}

int
dd_pg_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType s = PQresultStatus(r);
	int rc = 0;

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
		rc = dd_pg_error(c, r);
	PQclear(r);
	return rc;
}

PGresult *
dd_pg_query(PGconn *c, const char *sql, int nparams, const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType s = PQresultStatus(r);

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		dd_pg_error(c, r);
		PQclear(r);
		return NULL;
	}
	return r;
}

char *
dd_pg_quote_ident(const char *s)
{
	struct dd_buf b = DD_BUF_INIT;

	dd_buf_putc(&b, '"');
	for (; *s; s++) {
		if (*s == '"')
			dd_buf_putc(&b, '"');
		dd_buf_putc(&b, *s);
	}
	dd_buf_putc(&b, '"');
	return dd_buf_detach(&b, NULL);
}

char *
dd_pg_quote_literal(const char *s)
{
	struct dd_buf b = DD_BUF_INIT;
	int backslash = strchr(s, '\\') != NULL;

	if (backslash)
		dd_buf_putc(&b, 'E');
	dd_buf_putc(&b, '\'');
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			dd_buf_putc(&b, *s);
		dd_buf_putc(&b, *s);
	}
	dd_buf_putc(&b, '\'');
	return dd_buf_detach(&b, NULL);
}

int
dd_pg_server_major(PGconn *c)
{
	return PQserverVersion(c) / 10000;
}

/* ---- interrupts ---- */

#define MAX_CANCEL 512

static volatile sig_atomic_t interrupted;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	PGconn *conn;
	PGcancel *cancel;
} reg[MAX_CANCEL];
static int installed;
static int watcher_stop;
static pthread_t watcher;
static struct sigaction old_int, old_term;
/* posted by a signal and by dd_pg_interrupt_remove(); never destroyed (a late handler may still post it) */
static sem_t wake;
static pthread_once_t wake_once = PTHREAD_ONCE_INIT;
static int wake_ok;

static void
wake_init(void)
{
	wake_ok = sem_init(&wake, 0, 0) == 0;
}

static void
on_signal(int sig)
{
	int saved = errno;

	(void)sig;
	interrupted = 1;
	sem_post(&wake);
	errno = saved;
}

/* Sleep until posted; with `ms` > 0, at most that long. */
static void
wait_wake(long ms)
{
	struct timespec ts;

	if (ms <= 0) {
		while (sem_wait(&wake) < 0 && errno == EINTR)
			;
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (sem_timedwait(&wake, &ts) < 0 && errno == EINTR)
		;
}

static void *
watch(void *arg)
{
	int sent = 0;

	(void)arg;
	for (;;) {
		/* after one sweep, sweep again every half second (connections registered since) */
		wait_wake(sent ? 500 : 0);
		pthread_mutex_lock(&reg_lock);
		int stop = watcher_stop;
		if (interrupted && !stop) {
			if (!sent)
				dd_warn("interrupted: cancelling, cleaning up");
			sent = 1;
			for (int i = 0; i < MAX_CANCEL; i++)
				if (reg[i].cancel) {
					char errbuf[256];
					PQcancel(reg[i].cancel, errbuf, sizeof(errbuf));
				}
		}
		pthread_mutex_unlock(&reg_lock);
		if (stop)
			return NULL;
	}
}

int
dd_pg_interrupt_install(void)
{
	struct sigaction sa;

	pthread_once(&wake_once, wake_init);
	if (!wake_ok)
		return dd_error_errno("cannot create a semaphore");
	pthread_mutex_lock(&reg_lock);
	if (installed++) {
		pthread_mutex_unlock(&reg_lock);
		return 0;
	}
	interrupted = 0;
	watcher_stop = 0;
	while (sem_trywait(&wake) == 0)
		; /* posts left from before: not for this watcher */
	pthread_mutex_unlock(&reg_lock);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	if (pthread_create(&watcher, NULL, watch, NULL) != 0) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGTERM, &old_term, NULL);
		pthread_mutex_lock(&reg_lock);
		installed = 0;
		pthread_mutex_unlock(&reg_lock);
		return dd_error("cannot start a thread");
	}
	return 0;
}

void
dd_pg_interrupt_remove(void)
{
	pthread_mutex_lock(&reg_lock);
	if (installed == 0 || --installed > 0) {
		pthread_mutex_unlock(&reg_lock);
		return;
	}
	watcher_stop = 1;
	pthread_mutex_unlock(&reg_lock);
	sem_post(&wake);
	pthread_join(watcher, NULL);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
}

int
dd_pg_interrupted(void)
{
	return interrupted != 0;
}

void
dd_pg_cancel_register(PGconn *c)
{
	PGcancel *cancel = PQgetCancel(c);

	if (!cancel)
		return;
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < MAX_CANCEL; i++)
		if (!reg[i].conn) {
			reg[i].conn = c;
			reg[i].cancel = cancel;
			cancel = NULL;
			break;
		}
	pthread_mutex_unlock(&reg_lock);
	if (cancel)
		PQfreeCancel(cancel);
}

void
dd_pg_cancel_unregister(PGconn *c)
{
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < MAX_CANCEL; i++)
		if (reg[i].conn == c) {
			PQfreeCancel(reg[i].cancel);
			reg[i].conn = NULL;
			reg[i].cancel = NULL;
		}
	pthread_mutex_unlock(&reg_lock);
}

int
dd_pg_server_version(const char *conninfo, int *version, char **text)
{
	struct dd_pg_target t;
	PGconn *c = NULL;
	int rc;

	*version = 0;
	*text = NULL;
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	rc = dd_pg_connect_maint(&c, conninfo, t.database ? t.database : "");
	dd_pg_target_release(&t);
	if (rc < 0)
		return -1;
	const char *v = PQparameterStatus(c, "server_version");
	*version = PQserverVersion(c);
	*text = dd_strdup(v ? v : "?");
	PQfinish(c);
	return 0;
}
