/*
 * store/backend-s3.c: a store in an S3 bucket, `s3://bucket/prefix`; see
 * backend.h for the contract and s3/client.h for the transport.
 *
 * A name maps to the key "<prefix>/<name>" (just "<name>" without a
 * prefix). Every put is create-only (If-None-Match: *; a file above the
 * part size goes up as a multipart upload after a HEAD, see
 * dd_s3_upload_file). A PUT that S3 answered 200 is durable, so sync() and
 * sync_later() have nothing to do. list() is one prefix listing: it gives
 * every name below the directory, which for "data" is the two levels the
 * file backend walks. There are no local files: local_path is NULL, and
 * exists() costs a request (no DD_BACKEND_CHEAP_EXISTS), so the store
 * keeps its own record of what the bucket holds (store/known.c).
 *
 * The record of a multipart upload in progress lives next to the file being
 * sent, as ".<file name>.s3-upload" (a hidden name, which the file backend's
 * list() skips), so a push cut off mid-file resumes where it stopped. A
 * record whose file is gone (a cache pack removed before its upload could
 * finish) will never be resumed: the first upload from a folder aborts the
 * uploads such records name under this store's keys and removes them.
 * Uploads no record names (another clone's, a lost record's) are left to
 * gc, which can list them (ListMultipartUploads) and abort the old ones.
 */
#include "s3/client.h"
#include "store/backend.h"
#include "store/chunker.h"
#include "store/manifest.h"
#include "store/pack.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * The most a whole GET of a name may bring into memory: the largest
 * plaintext a reader accepts for that kind of file, plus what compression
 * and encryption can add (zstd's bound is n + n/256 + a little; the
 * envelope is a few dozen bytes). A larger answer is refused from its
 * Content-Length, before a byte of it is read.
 */
#define BOUND(n) ((size_t)(n) + (size_t)(n) / 128 + (1u << 20))
#define MAX_SMALL (1u << 20) /* config, keys/... */

struct s3_backend {
	struct dd_backend base;
	struct dd_s3_client *c;
	char *prefix; /* "" or "some/prefix/" */
	pthread_mutex_t mu;
	char **swept; /* local folders whose stale upload records were looked at */
	size_t nswept;
};

static char *
key_of(struct s3_backend *sb, const char *name)
{
	return dd_asprintf("%s%s", sb->prefix, name);
}

static size_t
max_of(const char *name)
{
	if (!strncmp(name, "data/", 5))
		return BOUND(DD_CHUNK_MAX_LIMIT);
	if (!strncmp(name, "index/", 6))
		return BOUND(DD_INDEX_MAX);
	if (!strncmp(name, "snapshots/", 10))
		return BOUND(DD_MANIFEST_MAX);
	if (!strncmp(name, "packs/", 6))
		return (size_t)DD_PACK_MAX;
	return MAX_SMALL;
}

static int
s3b_get(struct dd_backend *be, const char *name, struct dd_buf *out)
{
	struct s3_backend *sb = (struct s3_backend *)be;
	char *key = key_of(sb, name);
	int r = dd_s3_get(sb->c, key, out, max_of(name));

	free(key);
	return r;
}

static int
s3b_get_range(struct dd_backend *be, const char *name, uint64_t off, size_t len, struct dd_buf *out)
{
	struct s3_backend *sb = (struct s3_backend *)be;
	char *key = key_of(sb, name);
	int r = dd_s3_get_range(sb->c, key, off, len, out);

	free(key);
	return r;
}

static int
s3b_get_to_fd(struct dd_backend *be, const char *name, int fd, uint64_t max, uint64_t *size)
{
	struct s3_backend *sb = (struct s3_backend *)be;
	char *key = key_of(sb, name);
	int r = dd_s3_get_fd(sb->c, key, fd, max, size);

	free(key);
	return r;
}

static int
s3b_put(struct dd_backend *be, const char *name, const void *data, size_t len)
{
	struct s3_backend *sb = (struct s3_backend *)be;
	char *key = key_of(sb, name);
	int r = dd_s3_put(sb->c, key, data, len, 1);

	free(key);
	return r;
}

/* ".<base>.s3-upload" beside `path`. */
static char *
record_path(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return dd_asprintf(".%s.s3-upload", path);
	return dd_asprintf("%.*s/.%s.s3-upload", (int)(slash - path), path, slash + 1);
}

/* The SHA-256 a name states its bytes have: a pack's "packs/<2 hex>/<64 hex>", else NULL. */
static const char *
named_sha256(const char *name)
{
	if (strncmp(name, "packs/", 6) || strlen(name) != 73 || name[8] != '/' || strspn(name + 6, "0123456789abcdef") != 2 ||
	    strspn(name + 9, "0123456789abcdef") != 64)
		return NULL;
	return name + 9;
}

/* Has the folder of `localpath` been swept this run? Marks it so. */
static int
swept_before(struct s3_backend *sb, const char *dir)
{
	int found = 0;

	pthread_mutex_lock(&sb->mu);
	for (size_t i = 0; i < sb->nswept && !found; i++)
		found = !strcmp(sb->swept[i], dir);
	if (!found) {
		sb->swept = dd_realloc(sb->swept, (sb->nswept + 1) * sizeof(*sb->swept));
		sb->swept[sb->nswept++] = dd_strdup(dir);
	}
	pthread_mutex_unlock(&sb->mu);
	return found;
}

/*
 * Abort the uploads named by records in the folder of `localpath` whose file
 * is gone, when they are this store's key for that file (the name's folder
 * plus the file's name). Best effort: what fails stays for the next run.
 */
static void
sweep_stale_records(struct s3_backend *sb, const char *name, const char *localpath)
{
	const char *ls = strrchr(localpath, '/'), *ns = strrchr(name, '/');
	char *dir = ls ? dd_strndup(localpath, (size_t)(ls - localpath)) : dd_strdup(".");
	struct dirent *e;
	DIR *d;

	if (swept_before(sb, dir) || !(d = opendir(dir))) {
		free(dir);
		return;
	}
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		struct stat st;
		char *file, *record, *key;
		if (n <= 11 || e->d_name[0] != '.' || strcmp(e->d_name + n - 10, ".s3-upload"))
			continue;
		file = dd_asprintf("%s/%.*s", dir, (int)(n - 11), e->d_name + 1);
		record = dd_asprintf("%s/%s", dir, e->d_name);
		key = dd_asprintf("%s%.*s%.*s", sb->prefix, ns ? (int)(ns - name + 1) : 0, name, (int)(n - 11),
				  e->d_name + 1);
		if (lstat(file, &st) < 0 && errno == ENOENT && dd_s3_record_abort(sb->c, record, key) < 0) {
			dd_debug("cannot abort the stale upload of %s: %s", key, dd_error_last());
			dd_error_clear();
		}
		free(key);
		free(record);
		free(file);
	}
	closedir(d);
	free(dir);
}

static int
s3b_put_file(struct dd_backend *be, const char *name, const char *localpath)
{
	struct s3_backend *sb = (struct s3_backend *)be;
	char *key = key_of(sb, name), *record = record_path(localpath);
	int r;

	sweep_stale_records(sb, name, localpath);
	r = dd_s3_upload_file(sb->c, key, localpath, record, named_sha256(name));

	free(record);
	free(key);
	return r;
}

static int
s3b_exists(struct dd_backend *be, const char *name)
{
	struct s3_backend *sb = (struct s3_backend *)be;
	char *key = key_of(sb, name);
	int r = dd_s3_head(sb->c, key, NULL);

	free(key);
	return r == 0 ? 1 : r == DD_NOTFOUND ? 0 : r;
}

struct listing {
	struct dd_backend_entry *v;
	size_t n, cap;
	const char *prefix; /* what every key listed must start with */
	size_t strip;       /* length of the store's prefix */
};

static int
add_object(const struct dd_s3_object *o, void *arg)
{
	struct listing *l = arg;

	if (strncmp(o->key, l->prefix, strlen(l->prefix)) || strlen(o->key) <= strlen(l->prefix))
		return 0; /* not under the directory asked for: a server's mistake, not a name of ours */
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->v = dd_realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n].name = dd_strdup(o->key + l->strip);
	l->v[l->n].size = o->size;
	l->v[l->n].mtime = o->mtime;
	l->v[l->n].changed = o->mtime < 0 ? INT64_MAX : o->mtime; /* no LastModified: young, for the store's gc */
	l->n++;
	return 0;
}

static int
s3b_list(struct dd_backend *be, const char *dir, struct dd_backend_entry **out, size_t *n)
{
	struct s3_backend *sb = (struct s3_backend *)be;
	char *prefix = dd_asprintf("%s%s/", sb->prefix, dir);
	struct listing l = { .prefix = prefix, .strip = strlen(sb->prefix) };
	int r = dd_s3_list(sb->c, prefix, add_object, &l);

	free(prefix);
	if (r != 0) {
		dd_backend_entries_free(l.v, l.n);
		return r;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

static int
s3b_del(struct dd_backend *be, const char *name)
{
	struct s3_backend *sb = (struct s3_backend *)be;
	char *key = key_of(sb, name);
	int r = dd_s3_delete(sb->c, key);

	free(key);
	return r;
}

static int
s3b_del_many(struct dd_backend *be, const char *const *names, size_t n)
{
	struct s3_backend *sb = (struct s3_backend *)be;
	char **keys = dd_calloc(n ? n : 1, sizeof(*keys));
	int r;

	for (size_t i = 0; i < n; i++)
		keys[i] = key_of(sb, names[i]);
	r = dd_s3_delete_many(sb->c, (const char *const *)keys, n);
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	return r;
}

struct uploads {
	struct dd_backend_upload *v;
	size_t n;
	size_t strip; /* length of the store's prefix */
};

/* p[0..n) lowercase hex, as dd_object_name writes (FORMAT.md §3.1). */
static int
lower_hex(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

/* `name` is "<dir>/<n hex>" exactly. */
static int
flat_name(const char *name, const char *dir, size_t n)
{
	size_t dl = strlen(dir);

	return !strncmp(name, dir, dl) && name[dl] == '/' && strlen(name) == dl + 1 + n && lower_hex(name + dl + 1, n);
}

/* `name` is "<dir>/<2 hex>/<64 hex>" exactly, the two the first two of the 64. */
static int
fanned_name(const char *name, const char *dir)
{
	size_t dl = strlen(dir);
	const char *h = name + dl + 4;

	return !strncmp(name, dir, dl) && strlen(name) == dl + 4 + 64 && name[dl] == '/' && name[dl + 3] == '/' &&
	       lower_hex(h, 64) && name[dl + 1] == h[0] && name[dl + 2] == h[1];
}

/*
 * Is `name` (store-relative) exactly one the store writes (FORMAT.md §3.1)?
 * Another program's uploads in the bucket are not gc's, nor those of a store
 * nested under this one (s3://b/x/ and s3://b/x/data/: "data/packs/..." is
 * the inner store's, never a name of the outer).
 */
static int
store_name(const char *name)
{
	return fanned_name(name, "packs") || fanned_name(name, "data") || flat_name(name, "index", 64) ||
	       flat_name(name, "snapshots", 64) || flat_name(name, "keys", 32) || !strcmp(name, "config");
}

static int
add_upload(const struct dd_s3_upload *u, void *arg)
{
	struct uploads *l = arg;
	struct dd_backend_upload *e;

	if (!store_name(u->key + l->strip))
		return 0;
	l->v = dd_realloc(l->v, (l->n + 1) * sizeof(*l->v));
	e = &l->v[l->n++];
	e->name = dd_strdup(u->key + l->strip);
	e->key = dd_strdup(u->key);
	e->key[dd_s3_xml_printable(e->key, strlen(e->key))] = '\0';
	e->id = dd_strdup(u->upload_id);
	e->initiated = u->initiated;
	return 0;
}

static int
s3b_uploads(struct dd_backend *be, struct dd_backend_upload **out, size_t *n)
{
	struct s3_backend *sb = (struct s3_backend *)be;
	struct uploads l = { .strip = strlen(sb->prefix) };
	int r = dd_s3_mpu_list(sb->c, sb->prefix, add_upload, &l);

	if (r != 0) {
		dd_backend_uploads_free(l.v, l.n);
		return r;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

static int
s3b_upload_abort(struct dd_backend *be, const struct dd_backend_upload *u)
{
	struct s3_backend *sb = (struct s3_backend *)be;
	char *key = key_of(sb, u->name);
	int r = dd_s3_mpu_abort(sb->c, key, u->id);

	free(key);
	return r;
}

static int
s3b_sync(struct dd_backend *be)
{
	(void)be; /* a PUT answered 200 is durable */
	return 0;
}

static void
s3b_sync_later(struct dd_backend *be, const char *name)
{
	(void)be, (void)name;
}

static int
s3b_now(struct dd_backend *be, int64_t *now)
{
	struct s3_backend *sb = (struct s3_backend *)be;
	int r = dd_s3_client_server_now(sb->c, now);

	if (r != DD_NOTFOUND)
		return r;
	/* no answer yet: one HEAD (of the store's config; any status carries a Date) */
	r = s3b_exists(be, "config");
	if (r == DD_EUNREACHABLE)
		return r;
	dd_error_clear();
	return dd_s3_client_server_now(sb->c, now);
}

static void
s3b_free(struct dd_backend *be)
{
	struct s3_backend *sb = (struct s3_backend *)be;

	dd_s3_client_free(sb->c);
	for (size_t i = 0; i < sb->nswept; i++)
		free(sb->swept[i]);
	free(sb->swept);
	pthread_mutex_destroy(&sb->mu);
	free(sb->prefix);
	free(sb->base.display);
	free(sb);
}

static const struct dd_backend_ops s3_ops = {
	.caps = 0,
	.get = s3b_get,
	.get_range = s3b_get_range,
	.get_to_fd = s3b_get_to_fd,
	.put = s3b_put,
	.put_file = s3b_put_file,
	.exists = s3b_exists,
	.list = s3b_list,
	.del = s3b_del,
	.del_many = s3b_del_many,
	.sync = s3b_sync,
	.sync_later = s3b_sync_later,
	.local_path = NULL,
	.now = s3b_now,
	.uploads = s3b_uploads,
	.upload_abort = s3b_upload_abort,
	.free = s3b_free,
};

/* "bucket[/prefix[/]]" into the bucket and "prefix/" (or ""); no empty, "." or ".." segment. */
static int
split_url(const char *rest, const char *url, char **bucket, char **prefix)
{
	size_t nb = strcspn(rest, "/");
	const char *p = rest[nb] ? rest + nb + 1 : "";
	size_t np = strlen(p);

	(void)url;
	if (strchr(rest, '@')) { /* "s3://KEY:SECRET@bucket": checked first, and the URL is not shown */
		dd_error("the store URL must not carry credentials: write it as s3://bucket/prefix");
		dd_hint("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use ~/.aws/credentials");
		return -1;
	}

	while (np && p[np - 1] == '/')
		np--;
	for (size_t i = 0; i < np;) {
		size_t seg = strcspn(p + i, "/");
		if (seg > np - i)
			seg = np - i;
		if (seg == 0 || (seg == 1 && p[i] == '.') || (seg == 2 && !strncmp(p + i, "..", 2))) {
			dd_error("store URL '%s' has an empty, '.' or '..' part in its prefix", url);
			dd_hint("write it as s3://bucket/prefix");
			return -1;
		}
		i += seg + 1;
	}
	*bucket = dd_strndup(rest, nb);
	*prefix = np ? dd_asprintf("%.*s/", (int)np, p) : dd_strdup("");
	return 0;
}

int
dd_backend_s3_url_check(const char *rest, const char *url)
{
	char *bucket = NULL, *prefix = NULL;
	int rc = -1;

	if (split_url(rest, url, &bucket, &prefix) < 0)
		return -1;
	if (!dd_s3_bucket_name_ok(bucket)) {
		dd_error("'%s' is not a valid S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')", bucket);
		dd_hint("write the store URL as s3://bucket/prefix");
	} else {
		rc = 0;
	}
	free(bucket);
	free(prefix);
	return rc;
}

int
dd_backend_s3_open(struct dd_backend **out, const char *rest, const struct dd_backend_opts *o)
{
	struct dd_s3_client_opts co = {
		.endpoint = o->endpoint, .region = o->region, .path_style = o->path_style,
		.transfers = o->transfers, .part_size = o->part_size, .retries = o->retries,
	};
	char *bucket = NULL, *prefix = NULL;
	struct s3_backend *sb;
	int rc = -1;

	if (split_url(rest, o->url, &bucket, &prefix) < 0)
		goto out;
	co.bucket = bucket;
	sb = dd_calloc(1, sizeof(*sb));
	if (dd_s3_client_new(&sb->c, &co) != 0) {
		free(sb);
		goto out;
	}
	pthread_mutex_init(&sb->mu, NULL);
	sb->base.ops = &s3_ops;
	sb->base.display = dd_strdup(o->url);
	sb->prefix = prefix, prefix = NULL;
	*out = &sb->base;
	rc = 0;
out:
	free(bucket);
	free(prefix);
	return rc;
}
