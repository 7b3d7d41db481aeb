/*
 * pg/load.c: scratch databases, and loading a pg_dump file into one
 * (snapshot --from-dump; promote-schema's check that data still loads).
 *
 * A scratch database <db>__dnadata_load_<pid> lives on the working
 * database's server and is recorded as pending in <statedir>/pg (state.h)
 * before it is created, so a kill -9 leaves a copy the next command's
 * reaper drops (its process is gone); SIGINT/SIGTERM only set the
 * interrupt flag (conn.c) from dd_pg_scratch_create() to
 * dd_pg_scratch_drop(), so the caller always reaches the drop. The working
 * database is never touched.
 *
 * The format of a dump is read from the file, not its name: "PGDMP" at the
 * start is the custom format, a directory with toc.dat the directory
 * format, "ustar" at offset 257 a tar archive (pg_dump -Ft), anything else
 * plain SQL. The first three go through pg_restore, plain SQL through psql
 * with ON_ERROR_STOP, both from the directory of the pg_dump that fits the
 * server (pgdump.c), single transaction, no owners or privileges (they
 * name roles this server may not have: --no-owner, as our own restores).
 * A load error is the tool's own message, which names the failing
 * statement.
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "util/buf.h"
#include "util/conninfo.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *
dd_pg_dump_format_name(enum dd_pg_dump_format fmt)
{
	switch (fmt) {
	case DD_PG_DUMP_CUSTOM: return "custom";
	case DD_PG_DUMP_DIRECTORY: return "directory";
	case DD_PG_DUMP_TAR: return "tar";
	default: return "plain";
	}
}

int
dd_pg_dump_format(const char *path, enum dd_pg_dump_format *fmt)
{
	unsigned char head[512];
	struct stat sb;
	ssize_t n = 0, r;
	int fd;

	if (stat(path, &sb) < 0)
		return dd_error_errno("cannot read dump %s", path);
	if (S_ISDIR(sb.st_mode)) {
		char *toc = dd_path_join(path, "toc.dat");
		int ok = dd_path_exists(toc);
		free(toc);
		if (!ok)
			return dd_error("%s is a directory without toc.dat: not a pg_dump directory-format dump", path);
		*fmt = DD_PG_DUMP_DIRECTORY;
		return 0;
	}
	if (!S_ISREG(sb.st_mode))
		return dd_error("dump %s is not a regular file or a directory", path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return dd_error_errno("cannot read dump %s", path);
	while (n < (ssize_t)sizeof(head) && (r = read(fd, head + n, sizeof(head) - (size_t)n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return dd_error_errno("cannot read dump %s", path);
		}
		n += r;
	}
	close(fd);
	if (n >= 5 && !memcmp(head, "PGDMP", 5))
		*fmt = DD_PG_DUMP_CUSTOM;
	else if (n >= 262 && !memcmp(head + 257, "ustar", 5))
		*fmt = DD_PG_DUMP_TAR;
	else
		*fmt = DD_PG_DUMP_PLAIN;
	return 0;
}

int
dd_pg_scratch_create(const char *statedir, const char *conninfo, char **name)
{
	struct dd_pg_target t;
	char suffix[64], *q = NULL, *sql = NULL;
	PGconn *m = NULL;
	int rc = -1, exists = 0, recorded = 0;

	*name = NULL;
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	if (dd_pg_interrupt_install() < 0)
		goto out;
	snprintf(suffix, sizeof(suffix), "__dnadata_load_%ld", (long)getpid());
	*name = dd_pg_name_with_suffix(t.database, suffix);
	if (dd_pg_connect_maint(&m, conninfo, t.database) < 0 || dd_pg_db_exists(m, *name, &exists) < 0)
		goto out;
	if (exists) {
		/* our pid's: left by an earlier process with our pid, whose record is gone */
		dd_error("database %s exists already", *name);
		dd_hint("drop it (`DROP DATABASE \"%s\"`) if nothing uses it", *name);
		goto out;
	}
	/* recorded first: a kill -9 from here on leaves a pending copy the next command drops */
	if (dd_pg_state_pending_add(statedir, &t, *name) < 0)
		goto out;
	recorded = 1;
	q = dd_pg_quote_ident(*name);
	sql = dd_asprintf("CREATE DATABASE %s TEMPLATE template0", q);
	if (dd_pg_exec(m, sql) < 0) {
		dd_error_wrap("creating scratch database %s", *name);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0 && recorded)
		dd_pg_state_pending_remove(statedir, &t, (long)getpid());
	if (rc < 0) {
		free(*name);
		*name = NULL;
		dd_pg_interrupt_remove();
	}
	if (m)
		PQfinish(m);
	free(sql);
	free(q);
	dd_pg_target_release(&t);
	return rc;
}

int
dd_pg_scratch_drop(const char *statedir, const char *conninfo, const char *name)
{
	struct dd_pg_target t;
	struct dd_error_saved why;
	PGconn *m = NULL;
	int rc = -1;

	/* the caller's error (a failed load) is the one to report; ours only if there is none */
	dd_error_save(&why);
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		goto done;
	if (dd_pg_connect_maint(&m, conninfo, t.database) == 0 && dd_pg_drop_db(m, name) == 0) {
		dd_pg_state_pending_remove(statedir, &t, (long)getpid());
		rc = 0;
	} else {
		dd_warn("could not drop scratch database %s (%s); the next git dnadata command on this database drops "
			"it", name, dd_error_last() ? dd_error_last() : "");
	}
	if (m)
		PQfinish(m);
	dd_pg_target_release(&t);
done:
	dd_pg_interrupt_remove();
	dd_error_clear();
	if (why.msg)
		dd_error_restore(&why);
	else
		dd_error_saved_free(&why);
	return rc;
}

static void
wipe_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

/* The line of `text` starting at `at`, without its newline, at most 240 bytes ("..." when cut). */
static void
put_line(struct dd_buf *b, const char *at)
{
	size_t n = strcspn(at, "\n");

	while (n && at[n - 1] == '\r')
		n--;
	if (n > 240)
		dd_buf_printf(b, "%.240s...", at);
	else
		dd_buf_put(b, at, n);
}

/*
 * The failure in one line from the tool's stderr: its first error line
 * (pg_restore "error: ...", psql "...: ERROR:  ..."), then the failing
 * statement (pg_restore's "Command was: ...", psql's "LINE n: ...").
 */
static char *
load_failure(const struct dd_buf *err)
{
	const char *s = dd_buf_cstr(err), *e = NULL, *stmt;
	struct dd_buf b = DD_BUF_INIT;

	for (const char *line = s; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] ? 1 : 0)) {
		size_t n = strcspn(line, "\n");
		const char *hit = NULL;
		for (const char *k = line; k < line + n && !hit; k++)
			if (!strncmp(k, "ERROR:", 6) || !strncmp(k, "error:", 6) || !strncmp(k, "FATAL:", 6))
				hit = k;
		if (hit) {
			e = hit;
			break;
		}
	}
	if (!e)
		return dd_proc_err_line(err);
	put_line(&b, e);
	if ((stmt = strstr(e, "Command was: ")) || (stmt = strstr(e, "\nLINE "))) {
		if (*stmt == '\n')
			stmt++;
		dd_buf_puts(&b, "; ");
		put_line(&b, stmt);
	}
	return dd_buf_detach(&b, NULL);
}

/* <dir of the pg_dump that fits the server>/<tool>. Caller frees. */
static char *
find_tool(const char *conninfo, const char *dbname, const char *tool)
{
	struct dd_pgdump d;
	PGconn *c = NULL;
	char *path = NULL, *slash;
	int major;

	if (dd_pg_connect(&c, conninfo, dbname) < 0)
		return NULL;
	major = dd_pg_server_major(c);
	PQfinish(c);
	if (dd_pgdump_find(&d, major) < 0)
		return NULL;
	if ((slash = strrchr(d.path, '/')))
		*slash = '\0';
	path = dd_path_join(d.path, tool);
	dd_pgdump_release(&d);
	if (access(path, X_OK) < 0) {
		dd_error("%s not found beside pg_dump (%s)", tool, path);
		dd_hint("install the PostgreSQL client tools, or set DNADATA_PG_BINDIR");
		free(path);
		return NULL;
	}
	return path;
}

int
dd_pg_scratch_load(const char *conninfo, const char *name, const char *path)
{
	enum dd_pg_dump_format fmt;
	char *target = NULL, *child = NULL, *password = NULL, *pwenv = NULL, *tool = NULL;
	const char *env[2] = { NULL, NULL };
	struct dd_proc_result r;
	int rc = -1;

	memset(&r, 0, sizeof(r));
	if (dd_pg_dump_format(path, &fmt) < 0)
		return -1;
	if (!(tool = find_tool(conninfo, name, fmt == DD_PG_DUMP_PLAIN ? "psql" : "pg_restore")))
		goto out;
	/* the child connects like we do, its password in its environment, never on its command line */
	if (!(target = dd_conninfo_with_dbname(conninfo, name)))
		goto out;
	if (!(child = dd_conninfo_url(target, NULL, NULL, NULL, NULL, &password)))
		goto out;
	free(child);
	if (!(child = dd_conninfo_strip_secrets(target)))
		goto out;
	if (password)
		env[0] = pwenv = dd_asprintf("PGPASSWORD=%s", password);
	dd_info("loading %s (pg_dump %s format) into scratch database %s", path, dd_pg_dump_format_name(fmt), name);
	{
		const char *psql[] = { tool, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", child,
				       "-f", path, NULL };
		const char *pgr[] = { tool, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
				      "-d", child, path, NULL };
		struct dd_proc proc = { .argv = fmt == DD_PG_DUMP_PLAIN ? psql : pgr, .env = env, .out_fd = -1,
					.err_fd = -1 };
		if (dd_proc_run(&proc, fmt == DD_PG_DUMP_PLAIN ? "psql" : "pg_restore", &r) < 0) {
			char how[64], *why = r.exit_code > 0 ? load_failure(&r.err) : NULL;
			dd_proc_describe(&r, how, sizeof(how));
			if (why && *why)
				dd_error("loading %s: %s %s: %s", path, fmt == DD_PG_DUMP_PLAIN ? "psql" : "pg_restore", how,
					 why);
			else
				dd_error_wrap("loading %s", path);
			dd_hint("the dump does not load into an empty database; nothing was changed");
			free(why);
			goto out;
		}
	}
	/* tests stop here to kill or interrupt us (t-from-dump.sh); nothing else reads this variable */
	if (getenv("DNADATA_FAILPOINT") && !strcmp(getenv("DNADATA_FAILPOINT"), "scratch-loaded"))
		raise(SIGSTOP);
	if (dd_pg_interrupted()) {
		dd_error("interrupted");
		goto out;
	}
	rc = 0;
out:
	dd_proc_result_release(&r);
	wipe_free(password);
	wipe_free(pwenv);
	wipe_free(target);
	free(child);
	free(tool);
	return rc;
}
