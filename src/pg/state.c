/*
 * pg/state.c: what each working database holds, in <statedir>/pg/.
 *
 * One directory per working database, <statedir>/pg/<key>/, where key is
 * 32 hex digits of BLAKE2b("host\0port\0database") (names may hold any
 * character; the key is a safe file name). Inside, small "key value"
 * text files, each written atomically:
 *   working         server, database, snapshot, profile, when, how,
 *                   fingerprint (change.c; absent = unknown), branch,
 *                   media, media_pending ("yes": a media folder switched
 *                   with it, the folder still to be made equal to media)
 *   stash-<hash>    name, snapshot, profile, stashed   (one per stash;
 *                   <hash>: 16 hex digits of BLAKE2b(name))
 *   pending-<pid>   name, pid, started: a new copy being built; once that
 *                   process is gone (kill -9 mid-restore) the copy is a
 *                   leftover for the next connecting command to drop.
 *                   started = the process's start time (util/proc.h), so
 *                   a pid reused by another process does not keep it
 *                   alive; a record without it is judged by the pid alone.
 *                   One at a time per process: a record naming a copy
 *                   not recorded as complete is never replaced (the
 *                   process starts nothing else). A pending copy that also
 *                   has a copy record (below) is complete: only the
 *                   pending record is removed, never the database.
 *   tmpl-<hash>     name, kind, snapshot, profile, branch, modified,
 *   spare-<hash>    fingerprint, created, used: a template, spare or (in
 *                   stash-<hash> above, with "stashed" for "created")
 *                   stash of the working database (state.h); a stash
 *                   written before these keys existed reads as modified
 *                   "unknown". <hash> as for stashes. A stash also has
 *                   media and media_folder: the media id of the folder
 *                   set aside with it, and that folder.
 *   switch          source, kind, stash, snapshot, profile, branch,
 *                   fingerprint, source_oid, media, media_stash,
 *                   media_folder: a switch
 *                   between the start of its rename and its records
 *                   (journal, state.h)
 *   job-spares      "<pid> <start time>" of the running spare job
 *                   (switch.c), and job-spares.lock, its flock
 *   lock            the database lock (dd_pg_state_lock)
 * Values escape '\\' and newline as "\\\\" and "\\n". A media id is a
 * snapshot id, or "-" for "" (the empty folder); absent = no media.
 *
 * The records are ours, the databases the user's: the user may drop a
 * stash at any time (the README says how). So the records are reconciled
 * with the server whenever it is asked (dd_pg_state_verify(), by status):
 * a stash record whose database is gone is removed (unlink, atomic). A
 * stash record is written just before the rename that makes its database
 * (so a kill right after the rename cannot lose it), removed at once if
 * the rename fails, and written again once the database exists (a status
 * run in between may have removed it). Its name carries the second it was
 * made and was checked to be free, so the record removed is not that of a
 * newer stash of the same name (unless the user dropped a stash in the
 * second it was made and a restore made another in that same second). A
 * record left by a kill between its write and the rename names no
 * database: the next status removes it. A pending record is removed the same way
 * only once its process is dead (a live one may be about to create its
 * copy). Nothing here drops a database.
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/proc.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *
dd_pg_now_iso(void)
{
	char buf[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return dd_strdup(buf);
}

static char *
key_of(const struct dd_pg_target *t)
{
	unsigned char h[16];
	char hex[33];
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)t->host, strlen(t->host) + 1);
	crypto_generichash_update(&st, (const unsigned char *)t->port, strlen(t->port) + 1);
	crypto_generichash_update(&st, (const unsigned char *)t->database, strlen(t->database));
	crypto_generichash_final(&st, h, sizeof(h));
	dd_hex_encode(hex, h, sizeof(h));
	return dd_strdup(hex);
}

char *
dd_pg_state_dir(const char *statedir, const struct dd_pg_target *t)
{
	char *key = key_of(t);
	char *dir = dd_asprintf("%s/pg/%s", statedir, key);
	free(key);
	return dir;
}

static void
put_value(struct dd_buf *b, const char *k, const char *v)
{
	if (!v)
		return;
	dd_buf_printf(b, "%s ", k);
	for (; *v; v++) {
		if (*v == '\\')
			dd_buf_puts(b, "\\\\");
		else if (*v == '\n')
			dd_buf_puts(b, "\\n");
		else
			dd_buf_putc(b, *v);
	}
	dd_buf_putc(b, '\n');
}

/* Read "key value" lines of `path`; *vals[i] gets the value of keys[i] (or NULL). Missing file: DD_NOTFOUND. */
/* The most keys a record is read with (the vals arrays of read_kv's callers). */
#define DD_PG_RECORD_KEYS_MAX 16

static int
read_kv(const char *path, const char *const *keys, char **vals)
{
	struct dd_buf text = DD_BUF_INIT;

	for (size_t i = 0; keys[i]; i++)
		vals[i] = NULL;
	if (!dd_path_exists(path))
		return DD_NOTFOUND;
	if (dd_file_read(&text, path) < 0)
		return -1;
	char *save = NULL;
	for (char *line = strtok_r(text.ptr ? text.ptr : (char *)"", "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp = '\0';
		for (size_t i = 0; keys[i]; i++) {
			if (strcmp(keys[i], line) || vals[i])
				continue;
			struct dd_buf v = DD_BUF_INIT;
			for (const char *p = sp + 1; *p; p++) {
				if (*p == '\\' && p[1] == 'n')
					dd_buf_putc(&v, '\n'), p++;
				else if (*p == '\\' && p[1] == '\\')
					dd_buf_putc(&v, '\\'), p++;
				else
					dd_buf_putc(&v, *p);
			}
			vals[i] = dd_buf_detach(&v, NULL);
		}
	}
	dd_buf_release(&text);
	return 0;
}

/* A media id: absent when NULL, "-" for "" (the empty folder). */
static void
put_media(struct dd_buf *b, const char *k, const char *v)
{
	if (v)
		put_value(b, k, *v ? v : "-");
}

/* The media id read back (moved): "-" is "" again. */
static char *
media_of(char *v)
{
	if (v && !strcmp(v, "-")) {
		free(v);
		return dd_strdup("");
	}
	return v;
}

static int
write_file(const char *dir, const char *name, const struct dd_buf *b)
{
	char *path = dd_path_join(dir, name);
	int rc;

	if (dd_mkdir_p(dir, 0700) < 0) {
		free(path);
		return -1;
	}
	rc = dd_file_write_atomic(path, b->ptr ? b->ptr : "", b->len, 0600, 0);
	free(path);
	return rc < 0 ? -1 : 0;
}

static char *
name_hash(const char *name)
{
	unsigned char h[8];
	char hex[17];

	crypto_generichash(h, sizeof(h), (const unsigned char *)name, strlen(name), NULL, 0);
	dd_hex_encode(hex, h, sizeof(h));
	return dd_strdup(hex);
}

int
dd_pg_state_set_target(const char *statedir, const struct dd_pg_target *t, const char *snapshot,
		       const char *profile, const char *how, const char *fingerprint)
{
	return dd_pg_state_set_working(statedir, t, snapshot, profile, how, fingerprint, NULL);
}

int
dd_pg_state_set_working(const char *statedir, const struct dd_pg_target *t, const char *snapshot,
			const char *profile, const char *how, const char *fingerprint, const char *branch)
{
	return dd_pg_state_set_switched(statedir, t, snapshot, profile, how, fingerprint, branch, NULL, 0);
}

/* The working record; `when` NULL = now. */
static int
write_working(const char *statedir, const struct dd_pg_target *t, const char *snapshot, const char *profile,
	      const char *how, const char *fingerprint, const char *branch, const char *media, int media_pending,
	      const char *when)
{
	char *dir = dd_pg_state_dir(statedir, t), *now = when ? dd_strdup(when) : dd_pg_now_iso();
	char *server = dd_asprintf("%s:%s", t->host, t->port);
	struct dd_buf b = DD_BUF_INIT;
	int rc;

	put_value(&b, "server", server);
	put_value(&b, "database", t->database);
	put_value(&b, "snapshot", snapshot);
	put_value(&b, "profile", profile);
	put_value(&b, "when", now);
	put_value(&b, "how", how);
	put_value(&b, "fingerprint", fingerprint);
	put_value(&b, "branch", branch);
	put_media(&b, "media", media);
	if (media && media_pending)
		put_value(&b, "media_pending", "yes");
	rc = write_file(dir, "working", &b);
	if (rc < 0)
		dd_error_wrap("recording what database %s holds", t->database);
	dd_buf_release(&b);
	free(server);
	free(now);
	free(dir);
	return rc;
}

int
dd_pg_state_set_switched(const char *statedir, const struct dd_pg_target *t, const char *snapshot,
			 const char *profile, const char *how, const char *fingerprint, const char *branch,
			 const char *media, int media_pending)
{
	return write_working(statedir, t, snapshot, profile, how, fingerprint, branch, media, media_pending, NULL);
}

int
dd_pg_state_set_media_target(const char *statedir, const struct dd_pg_target *t, const char *media, int pending)
{
	struct dd_pg_state s;
	char *dir = dd_pg_state_dir(statedir, t), *path = dd_path_join(dir, "working");
	int missing = !dd_path_exists(path), rc = -1;

	free(path);
	free(dir);
	/* no record yet: one that names only the media (nothing else is known) */
	if (dd_pg_state_read_target(&s, statedir, t) == 0 || missing) {
		dd_error_clear();
		rc = write_working(statedir, t, s.snapshot, s.profile, s.how, s.fingerprint, s.branch, media, pending,
				   s.when);
	}
	dd_pg_state_release(&s);
	return rc;
}

int
dd_pg_state_set_media(const char *statedir, const char *conninfo, const char *media, int pending)
{
	struct dd_pg_target t;
	int rc;

	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	rc = dd_pg_state_set_media_target(statedir, &t, media, pending);
	dd_pg_target_release(&t);
	return rc;
}

int
dd_pg_state_set(const char *statedir, const char *conninfo, const char *snapshot, const char *profile,
		const char *how, const char *fingerprint)
{
	struct dd_pg_target t;
	int rc;

	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	rc = dd_pg_state_set_target(statedir, &t, snapshot, profile, how, fingerprint);
	dd_pg_target_release(&t);
	return rc;
}

int
dd_pg_state_add_stash(const char *statedir, const struct dd_pg_target *t, const char *stash,
		      const char *snapshot, const char *profile)
{
	char *dir = dd_pg_state_dir(statedir, t), *now = dd_pg_now_iso(), *h = name_hash(stash);
	char *file = dd_asprintf("stash-%s", h);
	struct dd_buf b = DD_BUF_INIT;
	int rc;

	put_value(&b, "name", stash);
	put_value(&b, "snapshot", snapshot ? snapshot : "");
	put_value(&b, "profile", profile ? profile : "");
	put_value(&b, "stashed", now);
	rc = write_file(dir, file, &b);
	dd_buf_release(&b);
	free(file);
	free(h);
	free(now);
	free(dir);
	return rc;
}

/*
 * The database our pending record (pending-<pid>) names that is not
 * complete: not `name`, not known to be recorded as a copy (a template built, then
 * cloned from, is). Replacing that record would leave it a database of
 * ours nobody records, nobody drops. NULL: none. Caller frees.
 */
static char *
pending_partial(const char *statedir, const struct dd_pg_target *t, const char *dir, const char *file,
		const char *name)
{
	static const char *const keys[] = { "name", NULL };
	char *path = dd_path_join(dir, file), *v[1], *partial = NULL;
	struct dd_pg_copy c;

	if (read_kv(path, keys, v) == 0 && v[0] && strcmp(v[0], name) && strcmp(v[0], t->database)) {
		memset(&c, 0, sizeof(c));
		if (dd_pg_copy_get(&c, statedir, t, v[0]) != 0) /* not known to be complete */
			partial = v[0], v[0] = NULL;
		dd_pg_copy_release(&c);
	}
	dd_error_clear();
	free(v[0]);
	free(path);
	return partial;
}

int
dd_pg_state_pending_add(const char *statedir, const struct dd_pg_target *t, const char *name)
{
	char *dir = dd_pg_state_dir(statedir, t);
	char *file = dd_asprintf("pending-%ld", (long)getpid());
	char *pid = dd_asprintf("%ld", (long)getpid());
	long long started = dd_proc_start_time((long)getpid());
	char num[32], *partial = pending_partial(statedir, t, dir, file, name);
	struct dd_buf b = DD_BUF_INIT;
	int rc;

	if (partial) {
		/* one pending record per process: refuse rather than lose track of that one */
		dd_error("database %s is still pending (it could not be recorded as complete); not starting %s",
			 partial, name);
		dd_hint("the next restore or `git dnadata use` drops it");
		free(partial);
		free(pid);
		free(file);
		free(dir);
		return -1;
	}
	put_value(&b, "name", name);
	put_value(&b, "pid", pid);
	snprintf(num, sizeof(num), "%lld", started);
	if (started >= 0)
		put_value(&b, "started", num);
	rc = write_file(dir, file, &b);
	dd_buf_release(&b);
	free(pid);
	free(file);
	free(dir);
	return rc;
}

/* Remove <dir>/<file>: 0, DD_NOTFOUND, or -1 (error set). */
static int
remove_record(const char *dir, const char *file)
{
	char *path = dd_path_join(dir, file);
	int rc = 0;

	if (unlink(path) < 0)
		rc = errno == ENOENT ? DD_NOTFOUND : dd_error_errno("cannot remove %s", path);
	free(path);
	return rc;
}

int
dd_pg_state_remove_stash(const char *statedir, const struct dd_pg_target *t, const char *stash)
{
	char *dir = dd_pg_state_dir(statedir, t), *h = name_hash(stash);
	char *file = dd_asprintf("stash-%s", h);
	int rc = remove_record(dir, file);

	free(file);
	free(h);
	free(dir);
	return rc;
}

int
dd_pg_state_pending_remove(const char *statedir, const struct dd_pg_target *t, long pid)
{
	char *dir = dd_pg_state_dir(statedir, t);
	char *file = dd_asprintf("pending-%ld", pid);
	int rc = remove_record(dir, file);

	free(file);
	free(dir);
	return rc;
}

/* Does the process that wrote a pending record (pid, start time or NULL) still run? */
static int
process_alive(long pid, const char *started)
{
	return dd_proc_alive(pid, started ? strtoll(started, NULL, 10) : -1);
}

static int
cmp_pending(const void *a, const void *b)
{
	const struct dd_pg_pending *x = a, *y = b;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

/*
 * Walk the records "<prefix><suffix>" in `dir` (which may not exist): for each
 * one that reads and has its first key, add(suffix, vals, arg) takes the values
 * of `keys` (at most 8); an unreadable record is skipped. A suffix is a hash or
 * a pid: any other name is no record (the temporary file of an atomic write
 * killed midway, "<record>.tmp-XXXXXX", whole or cut short). Such a file
 * older than STALE_TMP_SECONDS is removed: a write takes milliseconds, so
 * its writer is long gone (a younger one may be a write under way).
 */
#define STALE_TMP_SECONDS 3600

/* Remove `name` in the folder of `d` if it is a regular file older than STALE_TMP_SECONDS (best effort). */
static void
remove_stale_tmp(DIR *d, const char *name)
{
	struct stat sb;

	if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) &&
	    time(NULL) - sb.st_mtime > STALE_TMP_SECONDS && unlinkat(dirfd(d), name, 0) == 0)
		dd_debug("removed %s, a record write that was cut short", name);
}

static int
scan_records(const char *dir, const char *prefix, const char *const *keys,
	     void (*add)(const char *suffix, char **vals, void *arg), void *arg)
{
	size_t plen = strlen(prefix);
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return errno == ENOENT ? 0 : dd_error_errno("cannot read %s", dir);
	while ((de = readdir(d))) {
		char *path, *vals[DD_PG_RECORD_KEYS_MAX];

		if (strncmp(de->d_name, prefix, plen) || !de->d_name[plen] ||
		    de->d_name[plen + strspn(de->d_name + plen, "0123456789abcdef")]) {
			if (!strncmp(de->d_name, prefix, plen) && strstr(de->d_name + plen, ".tmp-"))
				remove_stale_tmp(d, de->d_name);
			continue;
		}
		path = dd_path_join(dir, de->d_name);
		if (read_kv(path, keys, vals) == 0 && vals[0]) {
			add(de->d_name + plen, vals, arg);
		} else {
			for (size_t i = 0; keys[i]; i++)
				free(vals[i]);
		}
		dd_error_clear(); /* an unreadable record is skipped */
		free(path);
	}
	closedir(d);
	return 0;
}

struct pending_list {
	struct dd_pg_pending *v;
	size_t n;
};

/* A pending record: "pending-<pid>" with name and started. */
static void
add_pending(const char *suffix, char **vals, void *arg)
{
	struct pending_list *l = arg;
	char *end = NULL;
	long pid = strtol(suffix, &end, 10);

	if (pid > 0 && !*end) {
		l->v = dd_realloc(l->v, (l->n + 1) * sizeof(*l->v));
		l->v[l->n++] = (struct dd_pg_pending){ vals[0], pid, process_alive(pid, vals[1]), 0 };
	} else {
		free(vals[0]);
	}
	free(vals[1]);
}

/* The pending records in `dir` (which may not exist). */
static int
read_pending(const char *dir, struct dd_pg_pending **out, size_t *n)
{
	static const char *const keys[] = { "name", "started", NULL };
	struct pending_list l = { NULL, 0 };
	int rc = scan_records(dir, "pending-", keys, add_pending, &l);

	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_pending);
	*out = l.v, *n = l.n;
	return rc;
}

int
dd_pg_state_pending_list(struct dd_pg_pending **out, size_t *n, const char *statedir,
			 const struct dd_pg_target *t)
{
	char *dir = dd_pg_state_dir(statedir, t);
	int rc = read_pending(dir, out, n);

	free(dir);
	return rc;
}

void
dd_pg_pending_free(struct dd_pg_pending *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].name);
	free(p);
}

static int
cmp_stash(const void *a, const void *b)
{
	const struct dd_pg_stash *x = a, *y = b;
	int c = strcmp(x->stashed, y->stashed);
	return c ? c : strcmp(x->name, y->name);
}

struct stash_list {
	struct dd_pg_stash *v;
	size_t n;
};

/* A stash record: "stash-*" with name, snapshot, profile and stashed (missing ones empty). */
static void
add_stash(const char *suffix, char **v, void *arg)
{
	struct stash_list *l = arg;

	(void)suffix;
	l->v = dd_realloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = (struct dd_pg_stash){ v[0], v[1] ? v[1] : dd_strdup(""), v[2] ? v[2] : dd_strdup(""),
					     v[3] ? v[3] : dd_strdup("") };
}

/* The stash records in `dir` (which may not exist), oldest first. */
static int
read_stashes(const char *dir, struct dd_pg_stash **out, size_t *n)
{
	static const char *const keys[] = { "name", "snapshot", "profile", "stashed", NULL };
	struct stash_list l = { NULL, 0 };
	int rc = scan_records(dir, "stash-", keys, add_stash, &l);

	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_stash);
	*out = l.v, *n = l.n;
	return rc;
}

int
dd_pg_state_read(struct dd_pg_state *out, const char *statedir, const char *conninfo)
{
	struct dd_pg_target t;
	int rc;

	memset(out, 0, sizeof(*out));
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	rc = dd_pg_state_read_target(out, statedir, &t);
	dd_pg_target_release(&t);
	return rc;
}

int
dd_pg_state_read_target(struct dd_pg_state *out, const char *statedir, const struct dd_pg_target *t)
{
	static const char *const keys[] = { "server", "database", "snapshot", "profile", "when", "how",
					    "fingerprint", "branch", "media", "media_pending", NULL };
	char *vals[DD_PG_RECORD_KEYS_MAX];
	char *dir = NULL, *path = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	dir = dd_pg_state_dir(statedir, t);
	path = dd_path_join(dir, "working");
	if (read_kv(path, keys, vals) < 0)
		goto out;
	out->server = vals[0] ? vals[0] : dd_asprintf("%s:%s", t->host, t->port);
	out->database = vals[1] ? vals[1] : dd_strdup(t->database);
	out->snapshot = vals[2];
	out->profile = vals[3];
	out->when = vals[4];
	out->how = vals[5];
	out->fingerprint = vals[6];
	out->branch = vals[7];
	out->media = media_of(vals[8]);
	out->media_pending = out->media && vals[9] && !strcmp(vals[9], "yes");
	free(vals[9]);
	{
		char *journal = dd_path_join(dir, "switch");
		out->interrupted = dd_path_exists(journal);
		free(journal);
	}
	if (read_stashes(dir, &out->stashes, &out->nstashes) < 0 ||
	    read_pending(dir, &out->pending, &out->npending) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		dd_pg_state_release(out);
	free(path);
	free(dir);
	return rc;
}

static int
listed(const PGresult *databases, const char *name)
{
	for (int i = 0; i < PQntuples(databases); i++)
		if (!strcmp(PQgetvalue(databases, i, 0), name))
			return 1;
	return 0;
}

/* Remove from `s` and from `dir` the stashes whose database is not in `databases`. */
static void
forget_dropped_stashes(struct dd_pg_state *s, const char *dir, const PGresult *databases)
{
	size_t kept = 0;

	for (size_t i = 0; i < s->nstashes; i++) {
		struct dd_pg_stash *st = &s->stashes[i];
		if (listed(databases, st->name)) {
			s->stashes[kept++] = *st;
			continue;
		}
		char *h = name_hash(st->name), *file = dd_asprintf("stash-%s", h);
		if (remove_record(dir, file) < 0) {
			dd_warn("%s", dd_error_last());
			dd_error_clear();
		}
		free(file);
		free(h);
		free(st->name);
		free(st->snapshot);
		free(st->profile);
		free(st->stashed);
	}
	s->nstashes = kept;
}

/* Set each pending copy's `exists`; forget the records of dead processes whose copy is gone. */
static void
check_pending(struct dd_pg_state *s, const char *dir, const PGresult *databases)
{
	size_t kept = 0;

	for (size_t i = 0; i < s->npending; i++) {
		struct dd_pg_pending *p = &s->pending[i];
		p->exists = listed(databases, p->name);
		if (p->exists || p->alive) {
			s->pending[kept++] = *p;
			continue;
		}
		char *file = dd_asprintf("pending-%ld", p->pid);
		if (remove_record(dir, file) < 0) {
			dd_warn("%s", dd_error_last());
			dd_error_clear();
		}
		free(file);
		free(p->name);
	}
	s->npending = kept;
}

int
dd_pg_state_verify(struct dd_pg_state *s, const char *statedir, const char *conninfo)
{
	struct dd_pg_target t;
	PGconn *m = NULL;
	PGresult *res = NULL;
	char *dir = NULL;
	int rc = -1;

	if (s->nstashes == 0 && s->npending == 0) {
		s->verified = 1;
		return 0;
	}
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	if (dd_pg_connect_maint(&m, conninfo, t.database) < 0)
		goto out;
	if (!(res = dd_pg_query(m, "SELECT datname FROM pg_catalog.pg_database", 0, NULL)))
		goto out;
	dir = dd_pg_state_dir(statedir, &t);
	forget_dropped_stashes(s, dir, res);
	check_pending(s, dir, res);
	s->verified = 1;
	rc = 0;
out:
	if (rc < 0)
		dd_error_wrap("checking which stashes of database %s exist", t.database);
	PQclear(res);
	if (m)
		PQfinish(m);
	free(dir);
	dd_pg_target_release(&t);
	return rc;
}

void
dd_pg_state_release(struct dd_pg_state *s)
{
	free(s->server);
	free(s->database);
	free(s->snapshot);
	free(s->profile);
	free(s->when);
	free(s->how);
	free(s->fingerprint);
	free(s->branch);
	free(s->media);
	for (size_t i = 0; i < s->nstashes; i++) {
		free(s->stashes[i].name);
		free(s->stashes[i].snapshot);
		free(s->stashes[i].profile);
		free(s->stashes[i].stashed);
	}
	free(s->stashes);
	dd_pg_pending_free(s->pending, s->npending);
	memset(s, 0, sizeof(*s));
}

int
dd_pg_state_lock(const char *statedir, const char *conninfo, int *fd)
{
	struct dd_pg_target t;
	char *dir, *path, *busy;
	int rc;

	*fd = -1;
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	dir = dd_pg_state_dir(statedir, &t);
	path = dd_path_join(dir, "lock");
	busy = dd_asprintf("waiting for another git dnadata run on database %s to finish", t.database);
	rc = dd_lock_file(path, busy, fd);
	free(busy);
	free(path);
	free(dir);
	dd_pg_target_release(&t);
	return rc;
}

/* ---- templates, spares and stashes ("copies") ---- */

static const char *const copy_prefix[] = { "tmpl-", "spare-", "stash-" };

const char *
dd_pg_copy_kind_name(enum dd_pg_copy_kind kind)
{
	switch (kind) {
	case DD_PG_COPY_TEMPLATE: return "template";
	case DD_PG_COPY_SPARE: return "spare";
	default: return "stash";
	}
}

const char *
dd_pg_modified_name(enum dd_pg_modified m)
{
	switch (m) {
	case DD_PG_MOD_NO: return "no";
	case DD_PG_MOD_YES: return "yes";
	default: return "unknown";
	}
}

int
dd_pg_copy_media_set_aside(const struct dd_pg_copy *c)
{
	return c->kind == DD_PG_COPY_STASH && c->media && *c->media && c->media_private;
}

int
dd_pg_copy_disposable(const struct dd_pg_copy *c)
{
	return c->kind != DD_PG_COPY_STASH || (c->modified == DD_PG_MOD_NO && !dd_pg_copy_media_set_aside(c));
}

void
dd_pg_copy_release(struct dd_pg_copy *c)
{
	free(c->name);
	free(c->snapshot);
	free(c->profile);
	free(c->branch);
	free(c->fingerprint);
	free(c->created);
	free(c->used);
	free(c->media);
	free(c->media_folder);
	memset(c, 0, sizeof(*c));
}

void
dd_pg_copies_free(struct dd_pg_copy *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dd_pg_copy_release(&v[i]);
	free(v);
}

/* The record file name of copy `name` of `kind`. Caller frees. */
static char *
copy_file(enum dd_pg_copy_kind kind, const char *name)
{
	char *h = name_hash(name), *file = dd_asprintf("%s%s", copy_prefix[kind], h);

	free(h);
	return file;
}

int
dd_pg_copy_record(const char *statedir, const struct dd_pg_target *t, const struct dd_pg_copy *c)
{
	char *dir = dd_pg_state_dir(statedir, t), *now = dd_pg_now_iso(), *file = copy_file(c->kind, c->name);
	struct dd_buf b = DD_BUF_INIT;
	int rc;

	put_value(&b, "name", c->name);
	put_value(&b, "kind", dd_pg_copy_kind_name(c->kind));
	put_value(&b, "snapshot", c->snapshot ? c->snapshot : "");
	put_value(&b, "profile", c->profile ? c->profile : "");
	put_value(&b, "branch", c->branch ? c->branch : "");
	put_value(&b, "modified", dd_pg_modified_name(c->modified));
	put_value(&b, "fingerprint", c->fingerprint);
	/* a stash's "stashed" is what older versions read */
	put_value(&b, c->kind == DD_PG_COPY_STASH ? "stashed" : "created", c->created ? c->created : now);
	put_value(&b, "used", c->used ? c->used : c->created ? c->created : now);
	if (c->replaced)
		put_value(&b, "replaced", "yes");
	if (c->kind == DD_PG_COPY_STASH) {
		put_media(&b, "media", c->media);
		put_value(&b, "media_folder", c->media_folder);
		if (c->media && c->media_private)
			put_value(&b, "media_private", "yes");
	}
	rc = write_file(dir, file, &b);
	if (rc < 0)
		dd_error_wrap("recording %s %s", dd_pg_copy_kind_name(c->kind), c->name);
	dd_buf_release(&b);
	free(file);
	free(now);
	free(dir);
	return rc;
}

struct copy_list {
	struct dd_pg_copy *v;
	size_t n;
	enum dd_pg_copy_kind kind;
};

static enum dd_pg_modified
modified_of(const char *s)
{
	if (s && !strcmp(s, "no"))
		return DD_PG_MOD_NO;
	if (s && !strcmp(s, "yes"))
		return DD_PG_MOD_YES;
	return DD_PG_MOD_UNKNOWN; /* also a stash recorded before this was */
}

static const char *const copy_keys[] = { "name", "snapshot", "profile", "branch", "modified", "fingerprint",
					 "created", "used", "replaced", "media", "media_folder", "media_private", NULL };
static const char *const stash_copy_keys[] = { "name", "snapshot", "profile", "branch", "modified", "fingerprint",
					       "stashed", "used", "replaced", "media", "media_folder", "media_private",
					       NULL };

_Static_assert(sizeof(copy_keys) / sizeof(copy_keys[0]) <= DD_PG_RECORD_KEYS_MAX, "record keys");
_Static_assert(sizeof(stash_copy_keys) / sizeof(stash_copy_keys[0]) <= DD_PG_RECORD_KEYS_MAX, "record keys");

/* vals in the order of copy_keys: moved into a copy of `kind` */
static void
copy_from_vals(struct dd_pg_copy *c, enum dd_pg_copy_kind kind, char **v)
{
	c->name = v[0];
	c->kind = kind;
	c->snapshot = v[1] ? v[1] : dd_strdup("");
	c->profile = v[2] ? v[2] : dd_strdup("");
	c->branch = v[3] ? v[3] : dd_strdup("");
	c->modified = kind == DD_PG_COPY_STASH ? modified_of(v[4]) : DD_PG_MOD_NO;
	free(v[4]);
	c->fingerprint = v[5];
	c->created = v[6] ? v[6] : dd_strdup("");
	c->used = v[7] ? v[7] : dd_strdup(c->created);
	c->replaced = kind == DD_PG_COPY_STASH && v[8] && !strcmp(v[8], "yes");
	free(v[8]);
	c->media = kind == DD_PG_COPY_STASH ? media_of(v[9]) : NULL;
	c->media_folder = kind == DD_PG_COPY_STASH ? v[10] : NULL;
	c->media_private = kind == DD_PG_COPY_STASH && v[11] && !strcmp(v[11], "yes");
	free(v[11]);
	if (kind != DD_PG_COPY_STASH) {
		free(v[9]);
		free(v[10]);
	}
	c->size = -1;
}

static void
add_copy(const char *suffix, char **v, void *arg)
{
	struct copy_list *l = arg;

	(void)suffix;
	l->v = dd_realloc(l->v, (l->n + 1) * sizeof(*l->v));
	copy_from_vals(&l->v[l->n++], l->kind, v);
}

static int
cmp_copy(const void *a, const void *b)
{
	const struct dd_pg_copy *x = a, *y = b;
	int c = (int)x->kind - (int)y->kind;

	if (!c)
		c = strcmp(x->used, y->used);
	return c ? c : strcmp(x->name, y->name);
}

static int
read_copies(const char *dir, struct dd_pg_copy **out, size_t *n)
{
	struct copy_list l = { NULL, 0, DD_PG_COPY_TEMPLATE };
	int rc = 0;

	for (int k = DD_PG_COPY_TEMPLATE; k <= DD_PG_COPY_STASH && rc == 0; k++) {
		l.kind = (enum dd_pg_copy_kind)k;
		rc = scan_records(dir, copy_prefix[k], k == DD_PG_COPY_STASH ? stash_copy_keys : copy_keys, add_copy,
				  &l);
	}
	if (rc < 0) {
		dd_pg_copies_free(l.v, l.n);
		*out = NULL, *n = 0;
		return -1;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_copy);
	*out = l.v, *n = l.n;
	return 0;
}

int
dd_pg_copies_list_target(struct dd_pg_copy **out, size_t *n, const char *statedir, const struct dd_pg_target *t)
{
	char *dir = dd_pg_state_dir(statedir, t);
	int rc = read_copies(dir, out, n);

	free(dir);
	return rc;
}

int
dd_pg_copy_get(struct dd_pg_copy *out, const char *statedir, const struct dd_pg_target *t, const char *name)
{
	char *dir = dd_pg_state_dir(statedir, t);
	int rc = DD_NOTFOUND;

	memset(out, 0, sizeof(*out));
	for (int k = DD_PG_COPY_TEMPLATE; k <= DD_PG_COPY_STASH && rc == DD_NOTFOUND; k++) {
		char *file = copy_file((enum dd_pg_copy_kind)k, name), *path = dd_path_join(dir, file);
		char *v[DD_PG_RECORD_KEYS_MAX];
		rc = read_kv(path, k == DD_PG_COPY_STASH ? stash_copy_keys : copy_keys, v);
		if (rc == 0 && v[0] && !strcmp(v[0], name)) {
			copy_from_vals(out, (enum dd_pg_copy_kind)k, v);
		} else {
			for (int i = 0; i < 8; i++)
				free(v[i]);
			if (rc == 0)
				rc = DD_NOTFOUND;
		}
		free(path);
		free(file);
	}
	free(dir);
	return rc;
}

int
dd_pg_copy_forget(const char *statedir, const struct dd_pg_target *t, const char *name)
{
	char *dir = dd_pg_state_dir(statedir, t);
	int rc = DD_NOTFOUND;

	for (int k = DD_PG_COPY_TEMPLATE; k <= DD_PG_COPY_STASH; k++) {
		char *file = copy_file((enum dd_pg_copy_kind)k, name);
		int r = remove_record(dir, file);
		free(file);
		if (r < 0) {
			rc = -1;
			break;
		}
		if (r == 0)
			rc = 0;
	}
	free(dir);
	return rc;
}

/* Forget the copies whose database is not in `databases`; fill the others' sizes (column 1). */
static void
verify_copies(struct dd_pg_copy *v, size_t *n, const char *statedir, const struct dd_pg_target *t,
	      const PGresult *databases)
{
	size_t kept = 0;

	for (size_t i = 0; i < *n; i++) {
		int row = -1;
		for (int r = 0; r < PQntuples(databases); r++)
			if (!strcmp(PQgetvalue(databases, r, 0), v[i].name))
				row = r;
		if (row >= 0) {
			v[i].size = PQgetisnull(databases, row, 1) ? -1 : strtoll(PQgetvalue(databases, row, 1), NULL, 10);
			v[kept++] = v[i];
			continue;
		}
		if (dd_pg_copy_forget(statedir, t, v[i].name) < 0) {
			dd_warn("%s", dd_error_last());
			dd_error_clear();
		}
		dd_pg_copy_release(&v[i]);
	}
	*n = kept;
}

int
dd_pg_copies_list(struct dd_pg_copy **out, size_t *n, const char *statedir, const char *conninfo, int flags)
{
	struct dd_pg_target t;
	PGconn *m = NULL;
	PGresult *res = NULL;
	int rc = -1;

	*out = NULL, *n = 0;
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	if (dd_pg_copies_list_target(out, n, statedir, &t) < 0)
		goto out;
	if (!(flags & DD_PG_LIST_VERIFY) || *n == 0) {
		rc = 0;
		goto out;
	}
	if (dd_pg_connect_maint(&m, conninfo, t.database) < 0)
		goto out;
	/* pg_database_size needs CONNECT on it, or pg_read_all_stats: NULL (unknown) otherwise */
	if (!(res = dd_pg_query(m,
				"SELECT datname, CASE WHEN has_database_privilege(oid, 'CONNECT') OR"
				" pg_has_role('pg_read_all_stats', 'MEMBER') THEN pg_database_size(oid) END"
				" FROM pg_catalog.pg_database",
				0, NULL)))
		goto out;
	verify_copies(*out, n, statedir, &t, res);
	rc = 0;
out:
	if (rc < 0) {
		dd_error_wrap("listing the copies of database %s", t.database);
		dd_pg_copies_free(*out, *n);
		*out = NULL, *n = 0;
	}
	PQclear(res);
	if (m)
		PQfinish(m);
	dd_pg_target_release(&t);
	return rc;
}

int
dd_pg_copy_touch(const char *statedir, const char *conninfo, const char *name)
{
	struct dd_pg_target t;
	struct dd_pg_copy c;
	int rc;

	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	rc = dd_pg_copy_get(&c, statedir, &t, name);
	if (rc == 0) {
		free(c.used);
		c.used = dd_pg_now_iso();
		rc = dd_pg_copy_record(statedir, &t, &c);
	}
	dd_pg_copy_release(&c);
	dd_pg_target_release(&t);
	return rc;
}

/* Is stash `c` (recorded unmodified) still unmodified now? 1 yes, 0 no or cannot tell, -1 error. */
static int
still_unmodified(const char *conninfo, const struct dd_pg_copy *c)
{
	enum dd_pg_change ch;
	char *why = NULL;

	if (!c->fingerprint)
		return 0;
	if (dd_pg_changes_of(&ch, conninfo, c->name, c->fingerprint, 1000, &why) < 0)
		return -1;
	free(why);
	return ch == DD_PG_UNCHANGED || ch == DD_PG_MISSING;
}

int
dd_pg_copy_drop(const char *statedir, const char *conninfo, const char *name, int flags)
{
	struct dd_pg_target t;
	struct dd_pg_copy c;
	PGconn *m = NULL;
	int rc = -1, r, lock = -1;

	memset(&c, 0, sizeof(c));
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	if (flags & DD_PG_DROP_UNLOCKED) {
		/* connected before the lock is taken: the lock is held no longer than the records need */
		if (dd_pg_connect_maint(&m, conninfo, t.database) < 0)
			goto out;
		if ((r = dd_pg_state_trylock(statedir, conninfo, &lock)) != 0) {
			rc = r;
			goto out;
		}
	}
	/*
	 * A switch cut short first (its journal tells from the databases what
	 * happened: dropping its source before would mislead it), and the
	 * copies of dead processes; then the records are as the databases are.
	 */
	if (dd_pg_reap_leftovers(statedir, conninfo) < 0)
		goto out;
	r = strcmp(name, t.database) ? dd_pg_copy_get(&c, statedir, &t, name) : DD_NOTFOUND;
	if (r == DD_NOTFOUND) {
		dd_error("%s is not a template, spare or stash of database %s", name, t.database);
		dd_hint("`git dnadata stash list` and `git dnadata status` list them");
		rc = DD_NOTFOUND;
		goto out;
	}
	if (r < 0)
		goto out;
	if (c.kind == DD_PG_COPY_STASH && !(flags & DD_PG_DROP_FORCE) && dd_pg_copy_media_set_aside(&c)) {
		dd_error("stash %s holds media files set aside with it", name);
		dd_hint("`git dnadata stash list` shows them; drop it anyway with `git dnadata stash drop %s`", name);
		rc = DD_EXISTS;
		goto out;
	}
	if (c.kind == DD_PG_COPY_STASH && !(flags & DD_PG_DROP_FORCE)) {
		int ok = c.modified == DD_PG_MOD_NO ? still_unmodified(conninfo, &c) : 0;
		if (ok < 0)
			goto out;
		if (!ok) {
			dd_error("stash %s holds local edits (or may: %s)", name,
				 c.modified == DD_PG_MOD_YES ? "modified before it was stashed"
							      : "whether it was modified is not known");
			dd_hint("look at it with psql -d %s; drop it anyway with `git dnadata stash drop --force %s`",
				name, name);
			rc = DD_EXISTS;
			goto out;
		}
	}
	if (!m && dd_pg_connect_maint(&m, conninfo, t.database) < 0)
		goto out;
	/* pending first, then forget the record: a kill from here on leaves a pending copy the next command drops */
	if (dd_pg_state_pending_add(statedir, &t, name) < 0)
		goto out;
	if (dd_pg_copy_forget(statedir, &t, name) < 0)
		goto out;
	/*
	 * Unlocked mode: the lock goes now, before the DROP. Why no switch can
	 * touch the database from here on: a switch reads the copies it may
	 * use (stash, spare, template: find_copy() in switch.c) from the
	 * records, under this lock, after we released it; the record is gone,
	 * so `name` is no candidate, and its ALTER DATABASE ... RENAME never
	 * names it. The pending record is ours and we are alive, so its reaping
	 * (dd_pg_reap_leftovers) leaves it alone too. A switch that took the
	 * lock before us still held it at our trylock (we stopped: DD_EBUSY),
	 * and a switch holds it from its listing to its rename's commit, so
	 * none can be between the two with `name` in hand. The names it picks
	 * for new copies skip databases that exist, so none is `name` while it
	 * is being dropped. And the server itself refuses to DROP a database
	 * with a connection, or a rename to happen in the middle of a DROP
	 * (both take the database's exclusive lock): at worst the DROP fails
	 * and the pending copy waits for the next command.
	 */
	if (lock >= 0) {
		dd_unlock_file(lock);
		lock = -1;
		dd_failpoint("gc-dropping"); /* tests: a kill -9 here leaves a pending copy (t-gc-auto.sh) */
	}
	if (dd_pg_drop_db(m, name) < 0) {
		struct dd_error_saved saved;
		dd_error_wrap("dropping %s %s", dd_pg_copy_kind_name(c.kind), name);
		dd_error_save(&saved);
		/*
		 * still there: its record back, as it was (unlocked: only if the lock is free now; else it
		 * stays pending under our pid, and the next command drops it once we are gone)
		 */
		if (!(flags & DD_PG_DROP_UNLOCKED) || dd_pg_state_trylock(statedir, conninfo, &lock) == 0) {
			if (dd_pg_copy_record(statedir, &t, &c) == 0)
				dd_pg_state_pending_remove(statedir, &t, (long)getpid());
		}
		dd_error_restore(&saved);
		goto out;
	}
	dd_pg_state_pending_remove(statedir, &t, (long)getpid());
	rc = 0;
out:
	dd_unlock_file(lock);
	if (m)
		PQfinish(m);
	dd_pg_copy_release(&c);
	dd_pg_target_release(&t);
	return rc;
}

/* ---- the switch journal ---- */

int
dd_pg_journal_write(const char *statedir, const struct dd_pg_target *t, const struct dd_pg_journal *j)
{
	char *dir = dd_pg_state_dir(statedir, t);
	struct dd_buf b = DD_BUF_INIT;
	int rc;

	put_value(&b, "source", j->source);
	put_value(&b, "kind", j->kind);
	put_value(&b, "stash", j->stash);
	put_value(&b, "snapshot", j->snapshot);
	put_value(&b, "profile", j->profile);
	put_value(&b, "branch", j->branch);
	put_value(&b, "fingerprint", j->fingerprint);
	put_value(&b, "source_oid", j->source_oid);
	put_media(&b, "media", j->media);
	put_media(&b, "media_stash", j->media_stash);
	put_value(&b, "media_folder", j->media_folder);
	if (j->media_stash && j->media_private)
		put_value(&b, "media_private", "yes");
	rc = write_file(dir, "switch", &b);
	if (rc < 0)
		dd_error_wrap("recording the switch of database %s", t->database);
	dd_buf_release(&b);
	free(dir);
	return rc;
}

int
dd_pg_journal_read(struct dd_pg_journal *j, const char *statedir, const struct dd_pg_target *t)
{
	static const char *const keys[] = { "source", "kind", "stash", "snapshot", "profile", "branch",
					    "fingerprint", "source_oid", "media", "media_stash", "media_folder",
					    "media_private", NULL };
	char *dir = dd_pg_state_dir(statedir, t), *path = dd_path_join(dir, "switch"), *v[DD_PG_RECORD_KEYS_MAX];
	int rc = read_kv(path, keys, v);

	memset(j, 0, sizeof(*j));
	if (rc == 0 && (!v[0] || !v[1] || !v[3])) {
		for (size_t i = 0; keys[i]; i++)
			free(v[i]);
		rc = dd_error("%s is incomplete", path);
	} else if (rc == 0) {
		*j = (struct dd_pg_journal){ v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], media_of(v[8]),
					     media_of(v[9]), v[10], v[11] && !strcmp(v[11], "yes") };
		free(v[11]);
	}
	free(path);
	free(dir);
	return rc;
}

int
dd_pg_journal_remove(const char *statedir, const struct dd_pg_target *t)
{
	char *dir = dd_pg_state_dir(statedir, t);
	int rc = remove_record(dir, "switch");

	free(dir);
	return rc;
}

void
dd_pg_journal_release(struct dd_pg_journal *j)
{
	free(j->source);
	free(j->kind);
	free(j->stash);
	free(j->snapshot);
	free(j->profile);
	free(j->branch);
	free(j->fingerprint);
	free(j->source_oid);
	free(j->media);
	free(j->media_stash);
	free(j->media_folder);
	memset(j, 0, sizeof(*j));
}

int
dd_pg_state_trylock(const char *statedir, const char *conninfo, int *fd)
{
	struct dd_pg_target t;
	char *dir, *path;
	int rc;

	*fd = -1;
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	dir = dd_pg_state_dir(statedir, &t);
	path = dd_path_join(dir, "lock");
	rc = dd_lock_file_try(path, fd);
	if (rc == DD_EBUSY) {
		char *who = dd_lock_file_holder(path);
		dd_error("another git dnadata command is working on database %s%s%s%s", t.database, who ? " (" : "",
			 who ? who : "", who ? ")" : "");
		free(who);
	}
	free(path);
	free(dir);
	dd_pg_target_release(&t);
	return rc;
}

/* ---- every database's records (gc, stash drop: media set aside anywhere) ---- */

/* fn(dir, arg) for each <statedir>/pg/<key>/ folder; stops at the first nonzero. */
static int
each_state_dir(const char *statedir, int (*fn)(const char *dir, void *arg), void *arg)
{
	char *pg = dd_path_join(statedir, "pg");
	DIR *d = opendir(pg);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		rc = errno == ENOENT ? 0 : dd_error_errno("cannot read %s", pg);
		free(pg);
		return rc;
	}
	while (rc == 0 && (de = readdir(d))) {
		char *dir;
		if (de->d_name[0] == '.')
			continue;
		dir = dd_path_join(pg, de->d_name);
		if (dd_is_dir(dir))
			rc = fn(dir, arg);
		free(dir);
	}
	closedir(d);
	free(pg);
	return rc;
}

struct named_arg {
	void (*add)(void *arg, const char *id);
	void *arg;
	int media;  /* the media ids the records name, else the snapshot ids */
};

/* The ids of record `name` in `dir` under keys[] (an unreadable one names nothing). */
static void
named_in(const char *dir, const char *name, const char *const *keys, const struct named_arg *a)
{
	char *path = dd_path_join(dir, name), *v[DD_PG_RECORD_KEYS_MAX];

	if (read_kv(path, keys, v) == 0) {
		for (size_t i = 0; keys[i]; i++) {
			if (v[i] && strcmp(v[i], "-"))
				a->add(a->arg, v[i]);
			free(v[i]);
		}
	}
	dd_error_clear();
	free(path);
}

/*
 * The ids the records of `dir` name: copies (stashes, templates, spares),
 * working record, journal; their snapshots, or (a->media) their media
 * folders' snapshots, the journal's stash of a folder included.
 */
static int
named_dir(const char *dir, void *arg)
{
	static const char *const snapshot_keys[] = { "snapshot", NULL };
	static const char *const working_keys[] = { "media", NULL };
	static const char *const journal_keys[] = { "media", "media_stash", NULL };
	const struct named_arg *a = arg;
	struct dd_pg_copy *c = NULL;
	size_t n = 0;

	if (read_copies(dir, &c, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *id = a->media ? c[i].media : c[i].snapshot;
		if (id && *id)
			a->add(a->arg, id);
	}
	dd_pg_copies_free(c, n);
	named_in(dir, "working", a->media ? working_keys : snapshot_keys, a);
	named_in(dir, "switch", a->media ? journal_keys : snapshot_keys, a);
	return 0;
}

int
dd_pg_state_media_named(const char *statedir, void (*add)(void *arg, const char *id), void *arg)
{
	struct named_arg a = { add, arg, 1 };

	return each_state_dir(statedir, named_dir, &a);
}

int
dd_pg_state_snapshots_named(const char *statedir, void (*add)(void *arg, const char *id), void *arg)
{
	struct named_arg a = { add, arg, 0 };

	return each_state_dir(statedir, named_dir, &a);
}

struct lock_set {
	int *fds;
	size_t n;
};

static int
lock_dir(const char *dir, void *arg)
{
	struct lock_set *l = arg;
	char *path = dd_path_join(dir, "lock");
	int fd = -1, rc = dd_lock_file_try(path, &fd);

	if (rc == DD_EBUSY)
		dd_error("another git dnadata command is working on a database (%s is held)", path);
	if (rc == 0) {
		l->fds = dd_realloc(l->fds, (l->n + 1) * sizeof(*l->fds));
		l->fds[l->n++] = fd;
	}
	free(path);
	return rc;
}

int
dd_pg_state_trylock_all(const char *statedir, int **fds, size_t *n)
{
	struct lock_set l = { NULL, 0 };
	int rc = each_state_dir(statedir, lock_dir, &l);

	if (rc != 0) {
		dd_pg_state_unlock_all(l.fds, l.n);
		l.fds = NULL, l.n = 0;
	}
	*fds = l.fds, *n = l.n;
	return rc;
}

void
dd_pg_state_unlock_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dd_unlock_file(fds[i]);
	free(fds);
}
