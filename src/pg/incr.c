/*
 * pg/incr.c: the local record of incremental snapshots (pg/incr.h), and
 * what the snapshot reads from the server to fill and compare it.
 *
 * A table is carried over from the profile's previous snapshot only when
 * all of these hold (else it is read, with a -v line saying why):
 *   - same server (system identifier, postmaster start: a restart zeroes
 *     the counters), same database oid, same statistics reset time (the
 *     later of the database's and pg_stat_bgwriter's: a crash drops every
 *     statistic and moves only the latter), and the server is not a standby (its counters do not count
 *     replayed changes; key ranges still work there, dump.c) and is
 *     PostgreSQL 15 or newer (older ones send the counters over UDP to a
 *     collector that may drop them); track_counts on, and named by no
 *     ALTER DATABASE/ROLE ... SET that applies to the database, no GRANT
 *     SET ON PARAMETER and no function's SET clause (DD_PG_COUNTS_OFF_SQL;
 *     a superuser's own SET in a session cannot be seen);
 *   - the same "output" hash: server version, every enum's labels in
 *     order, extension versions, collation versions (what changes a
 *     table's COPY text or its key order without touching the table),
 *     and the role and tablespace names and this database's subscriptions
 *     (shared catalogs the schema's text names: changed from another
 *     database, they touch none of this one's counters), lc_monetary
 *     (money's text; the settings conn.c pins need not be), and whether
 *     the server is a standby (a promoted standby keeps its system
 *     identifier, start and reset times, and its counters never counted
 *     what it replayed before);
 *   - no session on the database that may hold unflushed counters
 *     (change.c's rule: the sessions are listed first, then the counters
 *     read, all before the snapshot is exported; a session whose state a
 *     role without pg_read_all_stats cannot see counts as one);
 *   - the table's oid, relfilenode (TRUNCATE, VACUUM FULL, CLUSTER,
 *     rewriting ALTERs), n_tup_ins/upd/del (every row written, committed
 *     or aborted, HOT or not) and its shape (columns' names, types,
 *     typmods, collations, dropped columns, the key's columns, opclasses,
 *     collations and options, whether it is a partition, its parents) are
 *     equal, and so is the hash of the COPY query that wrote its stream
 *     (dump.c sets it: a masking rule that now applies to it changes it);
 *   - no column's text depends on other objects: a reg* type (a regclass
 *     prints a name that a rename changes) or a composite type (its text
 *     follows its attributes), at any depth of domains, arrays, ranges
 *     and multiranges, makes the table always read;
 *   - no sql: masking rule applies to it (dump.c: its values may depend on
 *     functions or other tables).
 * Counters taken before the export can only be behind what the snapshot
 * holds, so a change the counters miss at recording makes the next
 * comparison "changed": the safe side.
 */
#include "pg/incr.h"
#include "pg/internal.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/sha256.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "dnadata-incr 1"
#define MAX_NAME 4096
#define MAX_PROFILE 255

void
dd_pg_incr_release(struct dd_pg_incr *r)
{
	for (size_t i = 0; i < r->ntables; i++) {
		for (size_t j = 0; j < r->tables[i].nsamples; j++)
			free(r->tables[i].samples[j].key);
		free(r->tables[i].samples);
		free(r->tables[i].stream);
	}
	free(r->tables);
	free(r->profile);
	memset(r, 0, sizeof(*r));
}

/* A decimal number without sign or leading zero (or "0"), at most 20 digits, fitting in 64 bits. */
static int
parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int
lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Split `line` (len bytes, no newline) at single spaces into at most `max` words. -1 on an empty word. */
static int
split_words(const char *line, size_t len, const char **w, size_t *wl, size_t max, size_t *n)
{
	size_t i = 0;

	*n = 0;
	while (i <= len) {
		size_t j = i;
		while (j < len && line[j] != ' ')
			j++;
		if (j == i || *n == max)
			return -1;
		w[*n] = line + i;
		wl[(*n)++] = j - i;
		i = j + 1;
	}
	return 0;
}

static int
nibble(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* Hex (lowercase, even, 1..max bytes, no NUL) to a string. */
static char *
unhex(const char *h, size_t hl, size_t max)
{
	size_t n = hl / 2;
	char *out;

	if (hl % 2 || n == 0 || n > max || !lower_hex(h, hl))
		return NULL;
	out = dd_malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		out[i] = (char)(nibble(h[2 * i]) << 4 | nibble(h[2 * i + 1]));
	out[n] = '\0';
	if (memchr(out, '\0', n)) {
		free(out);
		return NULL;
	}
	return out;
}

static int
parse_table(struct dd_pg_incr_table *t, const char **w, const size_t *wl)
{
	uint64_t *nums[] = { &t->oid, &t->ins, &t->upd, &t->del, &t->relfilenode };

	for (size_t i = 0; i < 5; i++)
		if (parse_u64(w[i + 1], wl[i + 1], nums[i]) < 0)
			return -1;
	if (wl[6] != 32 || !lower_hex(w[6], 32))
		return -1;
	memcpy(t->shape, w[6], 32);
	t->shape[32] = '\0';
	if (parse_u64(w[7], wl[7], &t->rows) < 0 || parse_u64(w[8], wl[8], &t->size) < 0)
		return -1;
	return (t->stream = unhex(w[9], wl[9], MAX_NAME)) ? 0 : -1;
}

void
dd_pg_incr_add_sample(struct dd_pg_incr_table *t, uint64_t off, uint64_t ord, const char *key, size_t keylen)
{
	if ((t->nsamples & (t->nsamples - 1)) == 0)
		t->samples = dd_realloc(t->samples, (t->nsamples ? 2 * t->nsamples : 1) * sizeof(*t->samples));
	t->samples[t->nsamples].off = off;
	t->samples[t->nsamples].ord = ord;
	t->samples[t->nsamples++].key = dd_strndup(key, keylen);
}

/* A sample line of table t: after the previous sample, inside the stream. */
static int
parse_sample(struct dd_pg_incr_table *t, const char **w, const size_t *wl)
{
	uint64_t off, ord;
	char *key;

	if (parse_u64(w[1], wl[1], &off) < 0 || parse_u64(w[2], wl[2], &ord) < 0)
		return -1;
	if (off == 0 || off >= t->size || ord == 0 || ord >= t->rows)
		return -1;
	if (t->nsamples && (off <= t->samples[t->nsamples - 1].off || ord <= t->samples[t->nsamples - 1].ord))
		return -1;
	/* a key of several columns joins their fields with tabs (a field never holds one): older versions of
	   this parser refuse such a record whole, and so read every table */
	if (!(key = unhex(w[3], wl[3], DD_PG_INCR_MAX_KEY)) || strchr(key, '\n')) {
		free(key);
		return -1;
	}
	dd_pg_incr_add_sample(t, off, ord, key, strlen(key));
	free(key);
	return 0;
}

/* One header line `key value...` at its expected place (`which` counts lines). */
static int
parse_header(struct dd_pg_incr *r, int which, const char **w, const size_t *wl, size_t n)
{
	static const char *const keys[] = { "profile", "server", "output", "options", "pgdump", "xmin" };
	static const size_t counts[] = { 2, 5, 2, 2, 2, 2 };
	uint64_t *server[] = { &r->sysid, &r->start, &r->dboid, &r->reset };

	if (n != counts[which] || wl[0] != strlen(keys[which]) || memcmp(w[0], keys[which], wl[0]))
		return -1;
	switch (which) {
	case 0:
		if (wl[1] > MAX_PROFILE || memchr(w[1], '\0', wl[1]))
			return -1;
		r->profile = dd_strndup(w[1], wl[1]);
		return 0;
	case 1:
		for (size_t i = 0; i < 4; i++)
			if (parse_u64(w[i + 1], wl[i + 1], server[i]) < 0)
				return -1;
		return 0;
	case 2:
		if (wl[1] != 32 || !lower_hex(w[1], 32))
			return -1;
		memcpy(r->output, w[1], 32);
		return 0;
	case 3:
		if (wl[1] != 64 || !lower_hex(w[1], 64))
			return -1;
		memcpy(r->options, w[1], 64);
		return 0;
	case 4:
		return parse_u64(w[1], wl[1], &r->pgdump);
	default:
		return parse_u64(w[1], wl[1], &r->xmin);
	}
}

int
dd_pg_incr_parse(struct dd_pg_incr *out, const char *text, size_t len)
{
	struct dd_pg_incr r;
	size_t at = 0, lineno = 0;

	memset(&r, 0, sizeof(r));
	while (at < len) {
		const char *line = text + at, *nl = memchr(line, '\n', len - at);
		const char *w[10];
		size_t wl[10], n, ll;
		if (!nl)
			goto bad;
		ll = (size_t)(nl - line);
		at += ll + 1;
		lineno++;
		if (lineno == 1) {
			if (ll != strlen(MAGIC) || memcmp(line, MAGIC, ll))
				goto bad;
			continue;
		}
		if (split_words(line, ll, w, wl, 10, &n) < 0)
			goto bad;
		if (lineno <= 7) {
			if (parse_header(&r, (int)lineno - 2, w, wl, n) < 0)
				goto bad;
			continue;
		}
		if (n == 2 && wl[0] == 5 && !memcmp(w[0], "query", 5)) { /* right after its table line, once */
			struct dd_pg_incr_table *t = r.ntables ? &r.tables[r.ntables - 1] : NULL;
			if (!t || t->query[0] || t->nsamples || wl[1] != 64 || !lower_hex(w[1], 64))
				goto bad;
			memcpy(t->query, w[1], 64);
			continue;
		}
		if (n == 4 && wl[0] == 6 && !memcmp(w[0], "sample", 6)) {
			if (!r.ntables || parse_sample(&r.tables[r.ntables - 1], w, wl) < 0)
				goto bad;
			continue;
		}
		if (n != 10 || wl[0] != 5 || memcmp(w[0], "table", 5) || r.ntables >= len / 16)
			goto bad;
		r.tables = dd_realloc(r.tables, (r.ntables + 1) * sizeof(*r.tables));
		memset(&r.tables[r.ntables], 0, sizeof(*r.tables));
		if (parse_table(&r.tables[r.ntables], w, wl) < 0)
			goto bad;
		r.ntables++;
		if (r.ntables > 1 && strcmp(r.tables[r.ntables - 2].stream, r.tables[r.ntables - 1].stream) >= 0)
			goto bad;
	}
	if (lineno < 7)
		goto bad;
	*out = r;
	return 0;
bad:
	dd_pg_incr_release(&r);
	return dd_error("malformed incremental record (line %zu)", lineno);
}

static int
cmp_table(const void *a, const void *b)
{
	return strcmp(((const struct dd_pg_incr_table *)a)->stream, ((const struct dd_pg_incr_table *)b)->stream);
}

void
dd_pg_incr_format(struct dd_pg_incr *r, struct dd_buf *out)
{
	if (r->ntables)
		qsort(r->tables, r->ntables, sizeof(*r->tables), cmp_table);
	dd_buf_printf(out, MAGIC "\nprofile %s\nserver %llu %llu %llu %llu\noutput %s\noptions %s\npgdump %llu\n"
		      "xmin %llu\n", r->profile ? r->profile : "-", (unsigned long long)r->sysid,
		      (unsigned long long)r->start, (unsigned long long)r->dboid, (unsigned long long)r->reset, r->output,
		      r->options, (unsigned long long)r->pgdump, (unsigned long long)r->xmin);
	for (size_t i = 0; i < r->ntables; i++) {
		const struct dd_pg_incr_table *t = &r->tables[i];
		size_t n = strlen(t->stream);
		char *hex = dd_malloc(2 * n + 1);
		dd_hex_encode(hex, (const unsigned char *)t->stream, n);
		dd_buf_printf(out, "table %llu %llu %llu %llu %llu %s %llu %llu %s\n", (unsigned long long)t->oid,
			      (unsigned long long)t->ins, (unsigned long long)t->upd, (unsigned long long)t->del,
			      (unsigned long long)t->relfilenode, t->shape, (unsigned long long)t->rows,
			      (unsigned long long)t->size, hex);
		free(hex);
		if (t->query[0])
			dd_buf_printf(out, "query %s\n", t->query);
		for (size_t j = 0; j < t->nsamples; j++) {
			const struct dd_pg_incr_sample *sm = &t->samples[j];
			size_t kl = strlen(sm->key);
			hex = dd_malloc(2 * kl + 1);
			dd_hex_encode(hex, (const unsigned char *)sm->key, kl);
			dd_buf_printf(out, "sample %llu %llu %s\n", (unsigned long long)sm->off,
				      (unsigned long long)sm->ord, hex);
			free(hex);
		}
	}
}

const struct dd_pg_incr_table *
dd_pg_incr_find(const struct dd_pg_incr *r, const char *name)
{
	struct dd_pg_incr_table key = { .stream = (char *)name };

	if (!r->ntables)
		return NULL;
	return bsearch(&key, r->tables, r->ntables, sizeof(*r->tables), cmp_table);
}

static char *
record_dir(const char *statedir)
{
	return dd_asprintf("%s/pg/incr", statedir);
}

int
dd_pg_incr_read(struct dd_pg_incr *out, const char *statedir, const char *id)
{
	char *dir = record_dir(statedir), *path = dd_asprintf("%s/%s", dir, id);
	struct dd_buf text = DD_BUF_INIT;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!dd_is_hex(id, strlen(id)) || strlen(id) != 64) {
		rc = dd_error("BUG: snapshot id %s", id);
	} else if (!dd_path_exists(path)) {
		rc = DD_NOTFOUND;
	} else if (dd_file_read(&text, path) < 0) {
		rc = -1;
	} else if ((rc = dd_pg_incr_parse(out, text.ptr ? text.ptr : "", text.len)) < 0) {
		dd_error_wrap("%s", path);
	}
	dd_buf_release(&text);
	free(path);
	free(dir);
	return rc;
}

struct aged {
	char name[65];
	struct timespec mtime;
};

static int
cmp_aged(const void *a, const void *b)
{
	const struct aged *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec > y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec > y->mtime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Remove the records of `profile` beyond the newest DD_PG_INCR_KEEP (best effort; unreadable ones go too). */
static void
prune(const char *dir, const char *profile)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct aged *list = NULL;
	size_t n = 0, kept = 0;

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat stt;
		char *path;
		if (strlen(e->d_name) != 64 || !dd_is_hex(e->d_name, 64))
			continue;
		path = dd_asprintf("%s/%s", dir, e->d_name);
		if (stat(path, &stt) == 0) {
			list = dd_realloc(list, (n + 1) * sizeof(*list));
			snprintf(list[n].name, sizeof(list[n].name), "%s", e->d_name);
			list[n++].mtime = stt.st_mtim;
		}
		free(path);
	}
	closedir(d);
	qsort(list, n, sizeof(*list), cmp_aged);
	for (size_t i = 0; i < n; i++) {
		struct dd_pg_incr r;
		char *path = dd_asprintf("%s/%s", dir, list[i].name);
		struct dd_buf text = DD_BUF_INIT;
		int mine = 0, ok = dd_file_read(&text, path) == 0 &&
				  dd_pg_incr_parse(&r, text.ptr ? text.ptr : "", text.len) == 0;
		if (ok) {
			mine = !strcmp(r.profile, profile);
			dd_pg_incr_release(&r);
		}
		dd_error_clear();
		if ((!ok || (mine && ++kept > DD_PG_INCR_KEEP)) && unlink(path) < 0 && errno != ENOENT)
			dd_debug("cannot remove %s: %s", path, strerror(errno));
		dd_buf_release(&text);
		free(path);
	}
	free(list);
}

int
dd_pg_incr_keep(const char *statedir, const char *id, const char *text, size_t len)
{
	char *dir = record_dir(statedir), *path = dd_asprintf("%s/%s", dir, id);
	struct dd_pg_incr r;
	int rc = -1;

	if (dd_pg_incr_parse(&r, text, len) < 0) {
		dd_error_wrap("BUG: the incremental record of snapshot %.12s", id);
		goto out;
	}
	if (dd_mkdir_p(dir, 0700) < 0 || dd_file_write_atomic(path, text, len, 0600, 0) < 0)
		goto out_rec;
	prune(dir, r.profile);
	rc = 0;
out_rec:
	dd_pg_incr_release(&r);
out:
	free(path);
	free(dir);
	return rc;
}

void
dd_pg_incr_options(const char *const *exclude_tables, const char *const *exclude_data, const char *rules_hash,
		   char out[65])
{
	struct dd_sha256 *h = dd_sha256_new();
	uint8_t d[DD_SHA256_BYTES];

	for (int list = 0; list < 2; list++) {
		const char *const *p = list ? exclude_data : exclude_tables;
		for (; p && *p; p++)
			dd_sha256_update(h, *p, strlen(*p) + 1);
		dd_sha256_update(h, "\n", 1);
	}
	/* masking rules (issue 21): none leaves the hash of earlier versions, so their records stay usable */
	if (rules_hash && *rules_hash) {
		dd_sha256_update(h, "mask ", 5);
		dd_sha256_update(h, rules_hash, strlen(rules_hash) + 1);
	}
	dd_sha256_final(h, d); /* frees h */
	dd_hex_encode(out, d, sizeof(d));
}

/* ---- from the server ---- */

/* A type whose text depends on other objects: reg* (names), composite (attributes). */
#define VOLATILE_TEXT(x)                                                                                       \
	"(" x ".typtype = 'c' OR (" x ".typnamespace = 'pg_catalog'::regnamespace AND " x ".typname LIKE 'reg%%'))"

/*
 * Every type whose text depends on other objects, through domains (of domains), arrays, ranges and
 * multiranges of it: computed once per query (a per-table walk cost ~0.1 ms a table).
 */
#define VOLATILE_TYPES_CTE                                                                                     \
	"WITH RECURSIVE edges(child, parent) AS ("                                                           \
	" SELECT oid, typbasetype FROM pg_type WHERE typbasetype <> 0"                                       \
	" UNION ALL SELECT oid, typelem FROM pg_type WHERE typcategory = 'A' AND typelem <> 0"               \
	" UNION ALL SELECT rngtypid, rngsubtype FROM pg_range"                                               \
	" UNION ALL SELECT rngmultitypid, rngtypid FROM pg_range),"                                          \
	" volatile_types(oid) AS (SELECT t.oid FROM pg_type t WHERE " VOLATILE_TEXT("t")                    \
	"  UNION SELECT e.child FROM edges e JOIN volatile_types v ON v.oid = e.parent) "

static const char tables_sql[] =
	VOLATILE_TYPES_CTE
	"SELECT format('data/%I.%I', n.nspname, c.relname), c.oid, s.n_tup_ins, s.n_tup_upd, s.n_tup_del,"
	" c.relfilenode, md5(concat_ws('|',"
	"  (SELECT string_agg(concat_ws(':', a.attnum, length(a.attname), a.attname, a.atttypid, a.atttypmod,"
	"    a.attcollation, a.attisdropped, a.attgenerated), ',' ORDER BY a.attnum)"
	"   FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0),"
	"  (SELECT concat_ws(':', i.indexrelid, i.indkey, i.indclass, i.indcollation, i.indoption)"
	"   FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),"
	/* its parents (ATTACH PARTITION, INHERIT): a masking rule of a parent applies to it (issue 21) */
	"  c.relispartition, (SELECT string_agg(h.inhparent::text, ',' ORDER BY h.inhseqno, h.inhparent)"
	"   FROM pg_inherits h WHERE h.inhrelid = c.oid)))"
	" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	" JOIN pg_stat_all_tables s ON s.relid = c.oid"
	" WHERE c.relkind = 'r' AND c.relpersistence <> 't'"
	"  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
	"  AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0"
	"   AND NOT a.attisdropped AND a.atttypid IN (SELECT oid FROM volatile_types))";

static const char ident_sql[] =
	"SELECT d.oid, floor(extract(epoch FROM pg_postmaster_start_time()) * 1000000)::int8,"
	/* a crash drops every statistic but leaves the start time and the database's NULL stats_reset: the shared
	   statistics' reset time moves then */
	" coalesce(floor(extract(epoch FROM greatest(s.stats_reset, (SELECT stats_reset FROM pg_stat_bgwriter)))"
	"  * 1000000)::int8, 0), pg_is_in_recovery(),"
	" md5(concat_ws('|', version(),"
	"  (SELECT string_agg(concat_ws(':', enumtypid, length(enumlabel), enumlabel), ','"
	"    ORDER BY enumtypid, enumsortorder) FROM pg_enum),"
	"  (SELECT string_agg(concat_ws(':', length(extname), extname, extversion), ',' ORDER BY extname)"
	"    FROM pg_extension),"
	"  (SELECT string_agg(concat_ws(':', oid, collversion), ',' ORDER BY oid) FROM pg_collation),"
	"  d.datcollversion, pg_database_collation_actual_version(d.oid),"
	/* what the schema names from shared catalogs, which another database's statements change unseen here:
	   roles (GRANT, policies, user mappings) and tablespaces (subscriptions are left out of the schema:
	   pg_dump runs with --no-subscriptions; and reading pg_subscription is refused to non-superusers even
	   in a branch that never runs, which failed every snapshot of such a user) */
	"  (SELECT string_agg(concat_ws(':', oid, length(rolname), rolname), ',' ORDER BY oid) FROM pg_roles),"
	"  (SELECT string_agg(concat_ws(':', oid, length(spcname), spcname), ',' ORDER BY oid) FROM pg_tablespace),"
	/* money's text (COPY, and defaults in pg_dump's schema): not pinned by the session (conn.c), as a full
	   snapshot's text must not change; ALTER DATABASE/ROLE ... SET writes a shared catalog */
	"  current_setting('lc_monetary'),"
	/* a standby's counters miss what it replays, and a promoted one keeps its start and reset times */
	"  pg_is_in_recovery(),"
	/* settings that may have turned track_counts off and on again in between: the server's reloaded, or an
	   ALTER DATABASE/ROLE ... SET (DD_PG_COUNTS_OFF_SQL sees only what holds now) */
	"  pg_conf_load_time(), " DD_PG_ROLE_SETTINGS_WRITES_SQL ")),"
	" (SELECT count(*) FROM pg_stat_activity WHERE datid = d.oid AND " DD_PG_UNFLUSHED_SESSION_SQL "), "
	DD_PG_COUNTS_OFF_SQL("d.oid")
	"  OR " DD_PG_FUNCS_SET_COUNTS_SQL
	" FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid WHERE d.datname = current_database()";

static int
u64_of(PGresult *res, int row, int col, uint64_t *out)
{
	const char *v = PQgetvalue(res, row, col);

	if (PQgetisnull(res, row, col) || parse_u64(v, strlen(v), out) < 0)
		return dd_error("unexpected value %s from the server", v);
	return 0;
}

/* The system identifier, when this user may read pg_control_system() (else 0: the start time still tells). */
static uint64_t
system_identifier(PGconn *c)
{
	PGresult *res = PQexec(c, "SELECT system_identifier FROM pg_control_system()");
	uint64_t v = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || u64_of(res, 0, 0, &v) < 0)
		v = 0;
	dd_error_clear();
	PQclear(res);
	return v;
}

static int
read_tables(PGconn *c, struct dd_pg_incr *r)
{
	PGresult *res = dd_pg_query(c, tables_sql, 0, NULL);
	size_t n;

	if (!res)
		return -1;
	n = (size_t)PQntuples(res);
	r->tables = dd_calloc(n + 1, sizeof(*r->tables));
	for (size_t i = 0; i < n; i++) {
		struct dd_pg_incr_table *t = &r->tables[r->ntables];
		int row = (int)i;
		if (u64_of(res, row, 1, &t->oid) < 0 || u64_of(res, row, 2, &t->ins) < 0 ||
		    u64_of(res, row, 3, &t->upd) < 0 || u64_of(res, row, 4, &t->del) < 0 ||
		    u64_of(res, row, 5, &t->relfilenode) < 0) {
			PQclear(res);
			return -1;
		}
		snprintf(t->shape, sizeof(t->shape), "%s", PQgetvalue(res, row, 6));
		t->stream = dd_strdup(PQgetvalue(res, row, 0));
		r->ntables++;
	}
	PQclear(res);
	qsort(r->tables, r->ntables, sizeof(*r->tables), cmp_table);
	return 0;
}

int
dd_pg_incr_take(PGconn *c, const char *profile, int in_xact, struct dd_pg_incr *out, int *busy, char **why)
{
	PGresult *res;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	*busy = 0;
	*why = NULL;
	if (PQserverVersion(c) < 150000) {
		*why = dd_asprintf("PostgreSQL %d's statistics may lose updates", dd_pg_server_major(c));
		return 0;
	}
	if (!in_xact && (dd_pg_exec(c, "SET stats_fetch_consistency = none") < 0))
		return -1;
	/* a failed statement would end the transaction: the caller copies it from the first reading */
	if (!in_xact)
		out->sysid = system_identifier(c);
	/* the sessions are counted in the same statement, before the tables' counters are read */
	if (!(res = dd_pg_query(c, ident_sql, 0, NULL)))
		return -1;
	if (PQntuples(res) != 1) {
		*why = dd_strdup("the database has no statistics entry");
		PQclear(res);
		return 0;
	}
	if (u64_of(res, 0, 0, &out->dboid) < 0 || u64_of(res, 0, 1, &out->start) < 0 ||
	    u64_of(res, 0, 2, &out->reset) < 0)
		goto out;
	/* a standby's counters miss what it replays: its record serves key ranges (xids) only */
	out->standby = !strcmp(PQgetvalue(res, 0, 3), "t");
	snprintf(out->output, sizeof(out->output), "%s", PQgetvalue(res, 0, 4));
	*busy = atoi(PQgetvalue(res, 0, 5));
	if (!strcmp(PQgetvalue(res, 0, 6), "t")) {
		*why = dd_strdup(DD_PG_COUNTS_OFF_WHY);
		rc = 0;
		goto out;
	}
	if (read_tables(c, out) < 0)
		goto out;
	out->profile = dd_strdup(profile);
	rc = 1;
out:
	PQclear(res);
	if (rc <= 0) {
		char *keep = *why;
		*why = NULL;
		dd_pg_incr_release(out);
		*why = keep;
	}
	return rc;
}

int
dd_pg_incr_comparable(const struct dd_pg_incr *prev, const struct dd_pg_incr *now, char **why)
{
	*why = NULL;
	if (now->standby)
		*why = dd_strdup("the server is a standby: its statistics do not count the changes it replays");
	else if (prev->sysid != now->sysid || prev->start != now->start)
		*why = dd_strdup(prev->sysid != now->sysid ? "another server" : "the server restarted since");
	else if (prev->dboid != now->dboid)
		*why = dd_strdup("another database (dropped and created again, or restored)");
	else if (prev->reset != now->reset)
		*why = dd_strdup("the statistics were reset since");
	else if (strcmp(prev->output, now->output))
		*why = dd_strdup("the text of values may differ, the server was promoted, or settings changed (server "
				 "version, enum labels, extensions, collations, roles, tablespaces, lc_monetary, standby or "
				 "not, a configuration reload, an ALTER DATABASE/ROLE ... SET)");
	else if (strcmp(prev->options, now->options))
		*why = dd_strdup("exclude_tables, exclude_data or the masking rules changed");
	else if (prev->pgdump != now->pgdump)
		*why = dd_strdup("another pg_dump version");
	return *why == NULL;
}

int
dd_pg_incr_table_same(const struct dd_pg_incr_table *a, const struct dd_pg_incr_table *b)
{
	return a->oid == b->oid && a->ins == b->ins && a->upd == b->upd && a->del == b->del &&
	       a->relfilenode == b->relfilenode && !strcmp(a->shape, b->shape);
}

int
dd_pg_incr_same_output(const char *conninfo, const struct dd_pg_incr *rec, const char *options, char **why)
{
	struct dd_pg_incr now;
	struct dd_pgdump pgdump = { 0 };
	PGconn *c = NULL;
	int busy = 0, r, rc = -1;

	*why = NULL;
	memset(&now, 0, sizeof(now));
	if (dd_pg_connect(&c, conninfo, NULL) < 0)
		return -1;
	if ((r = dd_pg_incr_take(c, rec->profile, 0, &now, &busy, why)) < 0)
		goto out;
	rc = 0;
	if (r == 0)
		goto out;
	if (dd_pgdump_find(&pgdump, dd_pg_server_major(c)) < 0)
		goto out_err;
	memcpy(now.options, options, sizeof(now.options));
	now.pgdump = (uint64_t)pgdump.version;
	rc = dd_pg_incr_comparable(rec, &now, why);
	goto out;
out_err:
	rc = -1;
out:
	dd_pgdump_release(&pgdump);
	dd_pg_incr_release(&now);
	PQfinish(c);
	return rc;
}
