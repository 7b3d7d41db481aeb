/*
 * pg/state.c: what each working database holds, in <statedir>/pg/.
 *
 * One directory per working database, <statedir>/pg/<key>/, where key is
 * 32 hex digits of BLAKE2b("host\0port\0database") (names may hold any
 * character; the key is a safe file name). Inside, small "key value"
 * text files, each written atomically:
 *   working         server, database, snapshot, profile, when, how,
 *                   fingerprint (change.c; absent = unknown)
 *   stash-<hash>    name, snapshot, profile, stashed   (one per stash)
 *   pending-<pid>   name, pid: a new copy being built; a later restore
 *                   drops it if that process is gone (kill -9 mid-restore)
 * Values escape '\\' and newline as "\\\\" and "\\n".
 */
#include "pg/internal.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Read "key value" lines of `path`; *vals[i] gets the value of keys[i] (or NULL). Missing file: 1. */
static int
read_kv(const char *path, const char *const *keys, char **vals)
{
	struct dd_buf text = DD_BUF_INIT;

	for (size_t i = 0; keys[i]; i++)
		vals[i] = NULL;
	if (!dd_path_exists(path))
		return 1;
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
	char *dir = dd_pg_state_dir(statedir, t), *now = dd_pg_now_iso();
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

int
dd_pg_state_pending_add(const char *statedir, const struct dd_pg_target *t, const char *name)
{
	char *dir = dd_pg_state_dir(statedir, t);
	char *file = dd_asprintf("pending-%ld", (long)getpid());
	char *pid = dd_asprintf("%ld", (long)getpid());
	struct dd_buf b = DD_BUF_INIT;
	int rc;

	put_value(&b, "name", name);
	put_value(&b, "pid", pid);
	rc = write_file(dir, file, &b);
	dd_buf_release(&b);
	free(pid);
	free(file);
	free(dir);
	return rc;
}

void
dd_pg_state_pending_remove(const char *statedir, const struct dd_pg_target *t, long pid)
{
	char *dir = dd_pg_state_dir(statedir, t);
	char *file = dd_asprintf("%s/pending-%ld", dir, pid);

	unlink(file);
	free(file);
	free(dir);
}

int
dd_pg_state_pending_stale(const char *statedir, const struct dd_pg_target *t, char ***names, long **pids,
			  size_t *n)
{
	char *dir = dd_pg_state_dir(statedir, t);
	DIR *d = opendir(dir);
	struct dirent *de;

	*names = NULL, *pids = NULL, *n = 0;
	if (!d) {
		free(dir);
		return 0;
	}
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "pending-", 8))
			continue;
		long pid = strtol(de->d_name + 8, NULL, 10);
		if (pid <= 0 || pid == (long)getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
			continue; /* still running */
		static const char *const keys[] = { "name", NULL };
		char *vals[1];
		char *path = dd_path_join(dir, de->d_name);
		if (read_kv(path, keys, vals) == 0 && vals[0]) {
			*names = dd_realloc(*names, (*n + 1) * sizeof(char *));
			*pids = dd_realloc(*pids, (*n + 1) * sizeof(long));
			(*names)[*n] = vals[0];
			(*pids)[*n] = pid;
			(*n)++;
		} else {
			unlink(path);
		}
		free(path);
	}
	closedir(d);
	free(dir);
	return 0;
}

static int
cmp_stash(const void *a, const void *b)
{
	const struct dd_pg_stash *x = a, *y = b;
	int c = strcmp(x->stashed, y->stashed);
	return c ? c : strcmp(x->name, y->name);
}

int
dd_pg_state_read(struct dd_pg_state *out, const char *statedir, const char *conninfo)
{
	struct dd_pg_target t;
	static const char *const wkeys[] = { "server", "database", "snapshot", "profile", "when", "how",
					     "fingerprint", NULL };
	static const char *const skeys[] = { "name", "snapshot", "profile", "stashed", NULL };
	char *vals[7];
	char *dir = NULL, *path = NULL;
	int rc = -1;
	DIR *d = NULL;
	struct dirent *de;

	memset(out, 0, sizeof(*out));
	if (dd_pg_target_resolve(&t, conninfo) < 0)
		return -1;
	dir = dd_pg_state_dir(statedir, &t);
	path = dd_path_join(dir, "working");
	int r = read_kv(path, wkeys, vals);
	if (r < 0)
		goto out;
	out->server = vals[0] ? vals[0] : dd_asprintf("%s:%s", t.host, t.port);
	out->database = vals[1] ? vals[1] : dd_strdup(t.database);
	out->snapshot = vals[2];
	out->profile = vals[3];
	out->when = vals[4];
	out->how = vals[5];
	out->fingerprint = vals[6];
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "stash-", 6))
			continue;
		char *sp = dd_path_join(dir, de->d_name);
		char *sv[4];
		if (read_kv(sp, skeys, sv) == 0 && sv[0]) {
			out->stashes = dd_realloc(out->stashes, (out->nstashes + 1) * sizeof(*out->stashes));
			struct dd_pg_stash *s = &out->stashes[out->nstashes++];
			s->name = sv[0];
			s->snapshot = sv[1] ? sv[1] : dd_strdup("");
			s->profile = sv[2] ? sv[2] : dd_strdup("");
			s->stashed = sv[3] ? sv[3] : dd_strdup("");
		}
		free(sp);
	}
	if (out->nstashes > 1)
		qsort(out->stashes, out->nstashes, sizeof(*out->stashes), cmp_stash);
	rc = 0;
out:
	if (d)
		closedir(d);
	free(path);
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
	for (size_t i = 0; i < s->nstashes; i++) {
		free(s->stashes[i].name);
		free(s->stashes[i].snapshot);
		free(s->stashes[i].profile);
		free(s->stashes[i].stashed);
	}
	free(s->stashes);
	memset(s, 0, sizeof(*s));
}
