/*
 * pg/pgdump.c: choose a pg_dump and run it for one schema section.
 *
 * pg_dump is used for the schema only, never for rows. It must be at least
 * as new as the server (an older one refuses, or worse, misses objects).
 * Candidates: $DNADATA_PG_BINDIR/pg_dump when that variable is set (and
 * then nothing else), otherwise every pg_dump on PATH and under
 * /usr/lib/postgresql/<major>/bin; the newest one that fits wins, so the
 * choice (and the "Dumped by" header line) is stable from run to run.
 *
 * We run `pg_dump --section=pre-data|post-data` rather than --schema-only:
 * --schema-only also drops large-object definitions and materialized-view
 * refreshes, which the sections keep. Sections never contain table rows or
 * sequence values. The password reaches the child through PGPASSWORD in its
 * environment (util/proc), never its command line. psql's "\restrict KEY" guard lines
 * (pg_dump >= 15.14, random key) are removed: we do not feed psql, and the
 * key would make every dump differ. pg_dump 18 and newer get
 * --no-statistics: optimizer statistics hold sampled column values (most
 * common values, histogram bounds), which would bypass masking and subsets.
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/proc.h"

#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* util/proc's stdout callback: append to a dd_buf. */
static int
collect(void *arg, const void *data, size_t len)
{
	dd_buf_put(arg, data, len);
	return 0;
}

/* "pg_dump (PostgreSQL) 15.20 (Debian ...)" -> 150020; 16beta1 -> 160000. */
static int
parse_version(const char *text)
{
	const char *p = strstr(text, "(PostgreSQL) ");
	long major, minor = 0;
	char *end;

	if (!p)
		return -1;
	p += 13;
	major = strtol(p, &end, 10);
	if (end == p || major <= 0)
		return -1;
	if (*end == '.') {
		const char *q = end + 1;
		minor = strtol(q, &end, 10);
		if (end == q)
			minor = 0;
	}
	if (major < 10) /* 9.6.x: treat as 90600 + x */
		return (int)(major * 10000 + minor * 100);
	return (int)(major * 10000 + minor);
}

static int
probe(const char *path, int *version)
{
	const char *argv[] = { path, "--version", NULL };
	struct dd_buf out = DD_BUF_INIT;
	struct dd_proc proc = { .argv = argv, .out_cb = collect, .out_arg = &out, .out_fd = -1, .err_fd = -1 };
	int rc = -1;

	if (access(path, X_OK) != 0)
		return -1;
	if (dd_proc_run(&proc, path, NULL) < 0) {
		dd_error_clear();
		goto out;
	}
	*version = parse_version(dd_buf_cstr(&out));
	rc = *version > 0 ? 0 : -1;
out:
	dd_buf_release(&out);
	return rc;
}

/* 150020 -> 15; 90624 -> 9 (9.6 counts as 9: older than any server we support) */
static int
major_of(int version)
{
	return version / 10000;
}

/* Make `c` the pg_dump at `path` (version `v`) if it has none yet or an older one. */
static void
keep_newer(struct dd_pgdump *c, const char *path, int v)
{
	if (c->path && v <= c->version)
		return;
	free(c->path);
	c->path = dd_strdup(path);
	c->version = v;
	c->major = major_of(v);
}

/*
 * Debian's /usr/bin/pg_dump (and psql, pg_restore...) is a link to
 * pg_wrapper, a Perl script that runs /usr/lib/postgresql/<major>/bin/<tool>
 * for the cluster it guesses: ~50-200 ms a run, and it adds nothing those
 * real files do not have.
 */
static int
is_pg_wrapper(const char *real)
{
	const char *base = strrchr(real, '/');
	return !strcmp(base ? base + 1 : real, "pg_wrapper");
}

/*
 * Probe the program at `path` once per real file: PATH often names one
 * twice (/bin and /usr/bin on a merged /usr). `seen` (may be NULL) holds
 * the real paths probed so far, as "\nPATH\nPATH\n". A pg_wrapper is left
 * for later (*wrapper set, when not NULL): consider_all probes it only when
 * no real program was found.
 */
static void
consider(struct dd_pgdump *best, struct dd_pgdump *newest_any, const char *path, int server_major,
	 struct dd_buf *seen, char **wrapper)
{
	int v;
	char real[PATH_MAX];

	if (!realpath(path, real))
		return;
	if (wrapper && is_pg_wrapper(real)) {
		if (!*wrapper)
			*wrapper = dd_strdup(real);
		return;
	}
	if (seen) {
		char *key = dd_asprintf("\n%s\n", real);
		int dup = seen->len && memmem(seen->ptr, seen->len, key, strlen(key));
		if (!dup)
			dd_buf_puts(seen, key + (seen->len ? 1 : 0));
		free(key);
		if (dup)
			return;
	}
	if (probe(real, &v) < 0)
		return;
	keep_newer(newest_any, real, v);
	if (major_of(v) >= server_major)
		keep_newer(best, real, v);
}

/*
 * Every candidate of `tool` on PATH and under /usr/lib/postgresql/<major>/bin
 * (PATH first: of two of the same version, PATH's wins); Debian's pg_wrapper
 * only when neither has a real one.
 */
static void
consider_all(struct dd_pgdump *best, struct dd_pgdump *any, const char *tool, int server_major)
{
	const char *path = getenv("PATH");
	char *pattern = dd_asprintf("/usr/lib/postgresql/*/bin/%s", tool), *wrapper = NULL;
	struct dd_buf seen = DD_BUF_INIT;
	glob_t g;

	if (path) {
		char *copy = dd_strdup(path), *save = NULL;
		for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
			if (!*dir)
				continue;
			char *p = dd_path_join(dir, tool);
			consider(best, any, p, server_major, &seen, &wrapper);
			free(p);
		}
		free(copy);
	}
	if (glob(pattern, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			consider(best, any, g.gl_pathv[i], server_major, &seen, NULL);
		globfree(&g);
	}
	if (wrapper && !best->path)
		consider(best, any, wrapper, server_major, &seen, NULL);
	free(wrapper);
	dd_buf_release(&seen);
	free(pattern);
}

/* Only DNADATA_PG_BINDIR/<tool> when that variable is set. */
static int
find_in_bindir(struct dd_pgdump *out, const char *tool, const char *bindir, int server_major)
{
	struct dd_pgdump best = { 0 }, any = { 0 };
	char *p = dd_path_join(bindir, tool);

	consider(&best, &any, p, server_major, NULL, NULL);
	free(p);
	if (best.path) {
		*out = best;
		free(any.path);
		return 0;
	}
	if (any.path)
		dd_error("%s %d in DNADATA_PG_BINDIR (%s) is older than the server (PostgreSQL %d)", tool, any.major,
			 bindir, server_major);
	else
		dd_error("no usable %s in DNADATA_PG_BINDIR (%s)", tool, bindir);
	dd_hint("point DNADATA_PG_BINDIR at the bin directory of PostgreSQL %d or newer (postgresql-client-%d), or unset "
		"it", server_major, server_major);
	free(any.path);
	return -1;
}

int
dd_pg_tool_find_any(struct dd_pgdump *out, const char *tool, int server_major)
{
	struct dd_pgdump best = { 0 }, any = { 0 };
	const char *bindir = getenv("DNADATA_PG_BINDIR");

	memset(out, 0, sizeof(*out));
	if (bindir && *bindir)
		return find_in_bindir(out, tool, bindir, server_major);
	consider_all(&best, &any, tool, server_major);
	if (best.path) {
		*out = best;
		free(any.path);
		dd_debug("using %s (version %d)", out->path, out->version);
		return 0;
	}
	if (any.path)
		dd_error("the newest %s found (%d, %s) is older than the server (PostgreSQL %d)", tool, any.major,
			 any.path, server_major);
	else
		dd_error("no %s found on PATH or in /usr/lib/postgresql/*/bin", tool);
	dd_hint("install postgresql-client-%d (or set DNADATA_PG_BINDIR to its bin directory)", server_major);
	free(any.path);
	return -1;
}

int
dd_pgdump_find(struct dd_pgdump *out, int server_major)
{
	return dd_pg_tool_find_any(out, "pg_dump", server_major);
}

int
dd_pg_tool_find(const char *tool, int server_major, char **path, int *version)
{
	struct dd_pgdump d;

	*path = NULL;
	*version = 0;
	if (dd_pg_tool_find_any(&d, tool, server_major) < 0)
		return -1;
	*path = d.path;
	*version = d.version;
	return 0;
}

void
dd_pgdump_release(struct dd_pgdump *d)
{
	free(d->path);
	memset(d, 0, sizeof(*d));
}

/* Drop "\restrict KEY" near the top and "\unrestrict KEY" at the end. */
static void
strip_restrict(struct dd_buf *b, size_t start)
{
	char *text = b->ptr + start;
	size_t len = b->len - start;
	char *p = text;

	for (int line = 0; line < 12 && p < text + len; line++) {
		char *nl = memchr(p, '\n', (size_t)(text + len - p));
		size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(text + len - p);
		if (l > 10 && !strncmp(p, "\\restrict ", 10)) {
			memmove(p, p + l, (size_t)(text + len - (p + l)));
			len -= l;
			break;
		}
		p += l;
	}
	/* last non-empty line */
	size_t end = len;
	while (end > 0 && text[end - 1] == '\n')
		end--;
	size_t s = end;
	while (s > 0 && text[s - 1] != '\n')
		s--;
	if (end - s > 12 && !strncmp(text + s, "\\unrestrict ", 12)) {
		memmove(text + s, text + end, len - end);
		len -= end - s;
		/* and the newline that ended it */
		if (s < len && text[s] == '\n') {
			memmove(text + s, text + s + 1, len - s - 1);
			len--;
		}
	}
	dd_buf_truncate(b, start + len);
}

/* pg_dump 18 and newer can write optimizer statistics (most common values, histograms: raw column values). */
#define PGDUMP_STATISTICS 180000

char **
dd_pgdump_argv(const struct dd_pgdump *d, const char *conninfo, const char *snapshot_id, const char *section,
	       const char *const *exclude, size_t nexclude, const char *lock_wait_timeout)
{
	char **argv = dd_calloc(nexclude + 12, sizeof(char *));
	size_t n = 0;

	argv[n++] = dd_strdup(d->path);
	argv[n++] = dd_asprintf("--section=%s", section);
	argv[n++] = dd_strdup("--no-owner");
	argv[n++] = dd_strdup("-b"); /* --blobs (15) / --large-objects (16+) */
	argv[n++] = dd_strdup("--no-subscriptions");
	/* statistics would carry sampled values of every column, masked or not, into the schema streams */
	if (d->version >= PGDUMP_STATISTICS)
		argv[n++] = dd_strdup("--no-statistics");
	argv[n++] = dd_asprintf("--snapshot=%s", snapshot_id);
	if (lock_wait_timeout)
		argv[n++] = dd_asprintf("--lock-wait-timeout=%s", lock_wait_timeout);
	for (size_t i = 0; i < nexclude; i++)
		argv[n++] = dd_asprintf("--exclude-table=%s", exclude[i]);
	argv[n++] = dd_asprintf("--dbname=%s", conninfo);
	argv[n] = NULL;
	return argv;
}

void
dd_pgdump_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

int
dd_pgdump_section(const struct dd_pgdump *d, const char *conninfo, const char *password,
		  const char *snapshot_id, const char *section, const char *const *exclude,
		  size_t nexclude, const char *lock_wait_timeout, struct dd_buf *out)
{
	char **argv = dd_pgdump_argv(d, conninfo, snapshot_id, section, exclude, nexclude, lock_wait_timeout);
	char *pw = password ? dd_asprintf("PGPASSWORD=%s", password) : NULL;
	const char *env[] = { pw ? pw : "PGPASSWORD", NULL };
	struct dd_proc proc = { .env = env, .out_cb = collect, .out_arg = out, .out_fd = -1, .err_fd = -1 };
	char *name = dd_asprintf("pg_dump (%s)", section);
	size_t start = out->len;
	int rc = -1;

	proc.argv = (const char *const *)argv;
	if (dd_proc_run(&proc, name, NULL) < 0) {
		dd_buf_truncate(out, start);
		goto out;
	}
	strip_restrict(out, start);
	rc = 0;
out:
	dd_pgdump_argv_free(argv);
	if (pw) {
		explicit_bzero(pw, strlen(pw));
		free(pw);
	}
	free(name);
	return rc;
}
