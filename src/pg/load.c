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
 *
 * A plain dump is a psql script, and psql runs its backslash commands,
 * `\! cmd` (a shell command) among them: a hostile dump would run
 * programs as the user. So psql is put in restricted mode first
 * (`\restrict <random key>`, psql 15.14 / 16.10 / 17.6 and later), where
 * every backslash command fails (and ON_ERROR_STOP ends the load), and the
 * script reaches it through a pipe fed by a thread that leaves out the
 * dump's own `\restrict KEY` guard (before any data) and the
 * `\unrestrict KEY` with that key, which would fail there. Custom,
 * directory and tar dumps hold SQL only (pg_restore runs no shell). Either
 * way the SQL runs with the user's database privileges, as with pg_restore
 * or psql by hand.
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
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
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

/* A compressed file (a plain dump piped through gzip, say) would reach psql as garbage: refuse it by name. */
static int
compressed_refusal(const char *path, const unsigned char *head, size_t n)
{
	static const struct {
		const char *magic;
		size_t len;
		const char *name, *tool;
	} kinds[] = {
		{ "\x1f\x8b", 2, "gzip", "gunzip" },
		{ "\x28\xb5\x2f\xfd", 4, "zstd", "unzstd" },
		{ "\x04\x22\x4d\x18", 4, "lz4", "unlz4" },
		{ "BZh", 3, "bzip2", "bunzip2" },
		{ "\xfd" "7zXZ\x00", 6, "xz", "unxz" },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (n >= kinds[i].len && !memcmp(head, kinds[i].magic, kinds[i].len)) {
			dd_error("dump %s is %s-compressed: not a pg_dump file as it is", path, kinds[i].name);
			dd_hint("decompress it first (%s), then give the result to --from-dump", kinds[i].tool);
			return -1;
		}
	return 0;
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
	if (compressed_refusal(path, head, (size_t)n) < 0)
		return -1;
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
	const char *s = dd_buf_cstr(err), *e = NULL, *at = NULL, *stmt;
	struct dd_buf b = DD_BUF_INIT;

	for (const char *line = s; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] ? 1 : 0)) {
		size_t n = strcspn(line, "\n");
		const char *hit = NULL;
		for (const char *k = line; k < line + n && !hit; k++)
			if (!strncmp(k, "ERROR:", 6) || !strncmp(k, "error:", 6) || !strncmp(k, "FATAL:", 6))
				hit = k;
		if (hit) {
			e = hit, at = line;
			break;
		}
	}
	if (!e)
		return dd_proc_err_line(err);
	/* psql's "psql:<stdin>:12: ERROR: ...": the script's line number */
	if (!strncmp(at, "psql:", 5) && e - at > 8 && e[-1] == ' ' && e[-2] == ':') {
		const char *d = e - 2;
		while (d > at && d[-1] >= '0' && d[-1] <= '9')
			d--;
		if (d < e - 2 && d > at && d[-1] == ':')
			dd_buf_printf(&b, "line %.*s: ", (int)(e - 2 - d), d);
	}
	put_line(&b, e);
	if ((stmt = strstr(e, "Command was: ")) || (stmt = strstr(e, "\nLINE "))) {
		if (*stmt == '\n')
			stmt++;
		dd_buf_puts(&b, "; ");
		put_line(&b, stmt);
	}
	return dd_buf_detach(&b, NULL);
}

/* ---- a plain dump fed to psql, its own \restrict guard left out ---- */

struct feeder {
	int in;            /* the dump */
	int out;           /* psql's stdin */
	const char *path;
	char key[128];     /* the dump's \restrict key, once seen */
	int data_seen;     /* a COPY has started: a \restrict line after it is data */
	int rc;
	struct dd_error_saved error;
};

static int
is_key(const char *s, size_t n)
{
	if (!n || n >= 128)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
			return 0;
	return 1;
}

/* Is line[0..n) (without its newline) the dump's guard line, to leave out? */
static int
guard_line(struct feeder *f, const char *line, size_t n)
{
	while (n && line[n - 1] == '\r')
		n--;
	if (!f->key[0] && !f->data_seen && n > 10 && !memcmp(line, "\\restrict ", 10) && is_key(line + 10, n - 10)) {
		memcpy(f->key, line + 10, n - 10);
		f->key[n - 10] = '\0';
		return 1;
	}
	return f->key[0] && n == 12 + strlen(f->key) && !memcmp(line, "\\unrestrict ", 12) &&
	       !memcmp(line + 12, f->key, n - 12);
}

/* Copy f->in to f->out line by line without the guard lines; psql going away (EPIPE) ends it. */
static void *
feed(void *arg)
{
	struct feeder *f = arg;
	struct dd_buf line = DD_BUF_INIT;
	char buf[65536];
	ssize_t n;

	f->rc = 0;
	while ((n = read(f->in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			f->rc = dd_error_errno("cannot read dump %s", f->path);
			break;
		}
		for (ssize_t i = 0; i < n && f->rc == 0;) {
			const char *nl = memchr(buf + i, '\n', (size_t)(n - i));
			size_t len = nl ? (size_t)(nl - (buf + i)) + 1 : (size_t)(n - i);
			dd_buf_put(&line, buf + i, len);
			i += (ssize_t)len;
			if (!nl)
				break;
			if (line.ptr[0] == 'C' && line.len > 5 && !memcmp(line.ptr, "COPY ", 5))
				f->data_seen = 1; /* from here a line may be data */
			if (!(line.ptr[0] == '\\' && guard_line(f, line.ptr, line.len - 1)) &&
			    dd_write_all(f->out, line.ptr, line.len) < 0)
				f->rc = -1; /* psql stopped reading: its own error says why */
			dd_buf_clear(&line);
		}
		if (f->rc)
			break;
	}
	if (f->rc == 0 && line.len && dd_write_all(f->out, line.ptr, line.len) < 0)
		f->rc = -1;
	dd_error_save(&f->error);
	close(f->out);
	dd_buf_release(&line);
	return NULL;
}

/* Run psql in restricted mode on plain dump `path`, fed through a pipe (above). */
static int
run_psql(const char *tool, const char *child, const char *const *env, const char *path, struct dd_proc_result *r)
{
	struct feeder f = { .path = path, .in = -1 };
	unsigned char raw[24];
	char restrict_cmd[sizeof("\\restrict dnadata") + 2 * sizeof(raw)];
	int pipefd[2] = { -1, -1 }, rc;
	pthread_t t;

	randombytes_buf(raw, sizeof(raw));
	memcpy(restrict_cmd, "\\restrict dnadata", sizeof("\\restrict dnadata") - 1);
	sodium_bin2hex(restrict_cmd + sizeof("\\restrict dnadata") - 1, 2 * sizeof(raw) + 1, raw, sizeof(raw));
	if ((f.in = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return dd_error_errno("cannot read dump %s", path);
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		close(f.in);
		return dd_error_errno("cannot create a pipe");
	}
	f.out = pipefd[1];
	if (pthread_create(&t, NULL, feed, &f) != 0) {
		close(f.in);
		close(pipefd[0]);
		close(pipefd[1]);
		return dd_error("cannot start a thread");
	}
	{
		const char *argv[] = { tool, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", child,
				       "-c", restrict_cmd, "-f", "-", NULL };
		struct dd_proc proc = { .argv = argv, .env = env, .in_fd = pipefd[0], .out_fd = -1, .err_fd = -1 };
		rc = dd_proc_run(&proc, "psql", r);
	}
	close(pipefd[0]); /* a feeder still writing gets EPIPE and stops */
	pthread_join(t, NULL);
	close(f.in);
	if (rc == 0 && f.rc < 0)
		rc = dd_error_restore(&f.error);
	else
		dd_error_saved_free(&f.error);
	return rc;
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
		const char *pgr[] = { tool, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
				      "-d", child, path, NULL };
		struct dd_proc proc = { .argv = pgr, .env = env, .out_fd = -1, .err_fd = -1 };
		int ran = fmt == DD_PG_DUMP_PLAIN ? run_psql(tool, child, env, path, &r)
						  : dd_proc_run(&proc, "pg_restore", &r);
		if (ran < 0) {
			char how[64], *why = r.exit_code > 0 ? load_failure(&r.err) : NULL;
			dd_proc_describe(&r, how, sizeof(how));
			if (why && *why)
				dd_error("loading %s: %s %s: %s", path,
					 fmt == DD_PG_DUMP_PLAIN ? "psql" : "pg_restore", how, why);
			else
				dd_error_wrap("loading %s", path);
			dd_hint("the dump does not load into an empty database; nothing was changed");
			free(why);
			goto out;
		}
	}
	/* tests stop here to kill or interrupt us (t-from-dump.sh); nothing else reads this variable */
	dd_failpoint("scratch-loaded");
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
