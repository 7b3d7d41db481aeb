/*
 * store/store.c: opening and creating stores, key management, and the
 * object path shared by writers and readers (cache first, then backend);
 * see store.h, internal.h and docs/FORMAT.md §3.
 *
 * Invariants: an object is in the cache before it is in the backend (so
 * the backend copy can be a hard link of the cache copy); an object's
 * directory entry is durable (sync) before any manifest naming it is
 * written; nothing is ever overwritten in place.
 */
#include "store/internal.h"
#include "store/store-keys.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *
dd_store_default_url(const char *statedir)
{
	return dd_path_join(statedir, "store");
}

static char *
key_path(const char *statedir)
{
	return dd_path_join(statedir, "key");
}

/* Read and parse the config; 0, 1 when there is none (error set), -1. */
static int
read_config(struct dd_backend *be, struct dd_buf *text, struct dd_store_config *c, const char *url)
{
	int rc = be->ops->get(be, "config", text);

	if (rc == 1) {
		dd_error("no git-dnadata store at %s", url);
		dd_hint("check the store URL, or create the store with `git dnadata init --store %s`", url);
		return 1;
	}
	if (rc < 0)
		return dd_error_wrap("reading the store config");
	if (dd_store_config_parse(c, text->ptr, text->len) < 0)
		return dd_error_wrap("%s", url);
	return 0;
}

struct key_list {
	char **names;
	size_t n;
};

static int
collect_name(const char *name, void *arg)
{
	struct key_list *l = arg;

	l->names = dd_realloc(l->names, (l->n + 1) * sizeof(*l->names));
	l->names[l->n++] = dd_strdup(name);
	return 0;
}

static void
key_list_free(struct key_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
}

/*
 * Find the key files that `pass` opens and that belong to `key_id`.
 * Returns 0 with master filled (and *which = its names when wanted), 1 when
 * none opens (error set), -1 on error.
 */
static int
unwrap_store_key(uint8_t master[DD_KEY_LEN], struct dd_backend *be, const char *pass,
		 const uint8_t key_id[DD_KEY_LEN], struct key_list *which)
{
	struct key_list l = { 0 };
	struct dd_buf data = DD_BUF_INIT;
	struct dd_keyfile kf;
	uint8_t cand[DD_KEY_LEN];
	int rc = -1, found = 0, foreign = 0;

	if (be->ops->list(be, "keys", collect_name, &l) < 0)
		goto out;
	if (l.n == 0) {
		dd_error("the store %s has no passphrase-protected key file", be->display);
		dd_hint("copy the key from a machine that has it: `git dnadata key export FILE` there, `git dnadata key import FILE` here");
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		int r = be->ops->get(be, l.names[i], &data);
		if (r != 0) {
			if (r < 0)
				goto out;
			continue;
		}
		if (dd_keyfile_parse(&kf, data.ptr, data.len) < 0) {
			dd_warn("skipping key file %s: %s", l.names[i], dd_error_last());
			continue;
		}
		r = dd_keyfile_unwrap(cand, &kf, pass);
		if (r < 0)
			goto out;
		if (r == 1)
			continue;
		struct dd_keys *k = dd_keys_new(cand);
		int match = sodium_memcmp(k->key_id, key_id, DD_KEY_LEN) == 0;
		dd_keys_free(k);
		if (!match) {
			foreign = 1;
			continue;
		}
		memcpy(master, cand, DD_KEY_LEN);
		found = 1;
		if (which)
			collect_name(l.names[i], which);
		else
			break;
	}
	if (!found) {
		if (foreign)
			dd_error("the passphrase opens a key file of %s, but its key is not the store's key", be->display);
		else
			dd_error("wrong passphrase: it opens none of the %zu key file(s) of the store %s", l.n, be->display);
		rc = 1;
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(cand, sizeof(cand));
	dd_buf_release(&data);
	key_list_free(&l);
	return rc;
}

static int
add_key_file(struct dd_backend *be, const uint8_t master[DD_KEY_LEN], const char *pass)
{
	struct dd_buf kf = DD_BUF_INIT;
	uint8_t h[16];
	char hex[33], name[64];
	int rc = -1;

	if (dd_keyfile_wrap(&kf, master, pass) < 0)
		goto out;
	crypto_generichash(h, sizeof(h), (const uint8_t *)kf.ptr, kf.len, NULL, 0);
	dd_hex_encode(hex, h, sizeof(h));
	snprintf(name, sizeof(name), "keys/%s", hex);
	if (be->ops->put(be, name, kf.ptr, kf.len) < 0)
		goto out;
	rc = be->ops->sync(be);
out:
	dd_buf_release(&kf);
	return rc;
}

static int
save_local_key(const char *statedir, const uint8_t master[DD_KEY_LEN])
{
	char *path = key_path(statedir);
	uint8_t old[DD_KEY_LEN];
	int rc, r;

	r = dd_key_read_file(old, path);
	if (r == 0 && sodium_memcmp(old, master, DD_KEY_LEN) == 0) {
		rc = 0;
		goto out;
	}
	if (r == 0) {
		struct dd_keys *k = dd_keys_new(old);
		char id[17], *bak;
		dd_key_id_short(id, k->key_id);
		dd_keys_free(k);
		bak = dd_asprintf("%s.%s.bak", path, id);
		rc = dd_key_write_file(bak, old, 0);
		if (rc == 0)
			dd_info("the previous key (id %s) was kept in %s", id, bak);
		free(bak);
		if (rc < 0)
			goto out;
	} else if (r < 0) {
		/* unreadable or loose permissions: do not silently replace it */
		rc = -1;
		goto out;
	}
	rc = dd_key_write_file(path, master, 0);
out:
	sodium_memzero(old, sizeof(old));
	free(path);
	return rc;
}

/*
 * dd_store_setup(), but returns 2 (error and hint set) when the store exists,
 * the local key is not its key and no passphrase was given: the one failure
 * a passphrase can fix.
 */
static int
store_setup(const char *url, const char *statedir, const char *passphrase, int *created)
{
	char *defurl = url ? NULL : dd_store_default_url(statedir), *kpath = key_path(statedir);
	struct dd_backend *be = NULL;
	struct dd_buf text = DD_BUF_INIT;
	struct dd_store_config cfg;
	struct dd_keys *k = NULL;
	uint8_t master[DD_KEY_LEN];
	char id[17];
	int rc = -1, r, have_local;

	if (!url)
		url = defurl;
	*created = 0;
	if (dd_backend_open(&be, url, 0) < 0)
		goto out;
	have_local = dd_key_read_file(master, kpath);
	if (have_local < 0)
		goto out;
	r = read_config(be, &text, &cfg, url);
	if (r < 0)
		goto out;
	if (r == 0) {
		/* adopt an existing store */
		dd_error_clear();
		if (have_local == 0) {
			k = dd_keys_new(master);
			if (sodium_memcmp(k->key_id, cfg.key_id, DD_KEY_LEN) == 0) {
				rc = dd_store_config_check(&cfg, text.ptr, k, url);
				goto out;
			}
			dd_keys_free(k), k = NULL;
		}
		if (!passphrase) {
			dd_key_id_short(id, cfg.key_id);
			dd_error("this store (%s) belongs to another key (id %s)", url, id);
			dd_hint("import it with `git dnadata key import --passphrase` (or set DNADATA_PASSPHRASE), or `git dnadata key import FILE`");
			rc = 2;
			goto out;
		}
		if (unwrap_store_key(master, be, passphrase, cfg.key_id, NULL) != 0)
			goto out;
		k = dd_keys_new(master);
		if (dd_store_config_check(&cfg, text.ptr, k, url) < 0 || save_local_key(statedir, master) < 0)
			goto out;
		dd_key_id_short(id, k->key_id);
		dd_info("joined the store %s (key id %s)", url, id);
		rc = 0;
		goto out;
	}
	/* create a new store */
	dd_error_clear();
	dd_backend_free(be), be = NULL;
	if (dd_backend_open(&be, url, 1) < 0)
		goto out;
	if (have_local == 1) {
		randombytes_buf(master, sizeof(master));
		if (dd_key_write_file(kpath, master, DD_WRITE_NOREPLACE) < 0)
			goto out;
	}
	k = dd_keys_new(master);
	memset(&cfg, 0, sizeof(cfg));
	cfg.min = DD_CHUNK_MIN_DEFAULT, cfg.avg = DD_CHUNK_AVG_DEFAULT, cfg.max = DD_CHUNK_MAX_DEFAULT;
	if (passphrase && add_key_file(be, master, passphrase) < 0)
		goto out;
	dd_store_config_format(&text, &cfg, k);
	r = be->ops->put(be, "config", text.ptr, text.len);
	if (r == 1) {
		dd_error("another git-dnadata created a store at %s at the same time; run the command again", url);
		goto out;
	}
	if (r < 0 || be->ops->sync(be) < 0)
		goto out;
	dd_key_id_short(id, k->key_id);
	dd_info("created the store %s (key id %s)", url, id);
	if (!passphrase)
		dd_info("the store key is only in %s: protect a copy in the store with `git dnadata key passwd`, or copy it with `git dnadata key export FILE`", kpath);
	*created = 1;
	rc = 0;
out:
	sodium_memzero(master, sizeof(master));
	dd_keys_free(k);
	dd_buf_release(&text);
	dd_backend_free(be);
	free(defurl);
	free(kpath);
	return rc;
}

int
dd_store_setup(const char *url, const char *statedir, const char *passphrase, int *created)
{
	int rc = store_setup(url, statedir, passphrase, created);

	return rc == 2 ? -1 : rc;
}

static int
cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	const char *env = getenv("DNADATA_JOBS");

	if (env && atoi(env) > 0)
		n = atoi(env);
	if (n < 1)
		n = 1;
	if (n > 64)
		n = 64;
	return (int)n;
}

int
dd_store_open(struct dd_store **out, const char *url, const char *statedir, int flags)
{
	struct dd_store *st = dd_calloc(1, sizeof(*st));
	char *kpath = key_path(statedir), *cdir = dd_path_join(statedir, "cache");
	struct dd_buf text = DD_BUF_INIT;
	struct dd_store_config cfg;
	uint8_t master[DD_KEY_LEN];
	int rc = -1, r, n;

	st->flags = flags;
	pthread_mutex_init(&st->bufmu, NULL);
	st->url = url ? dd_strdup(url) : dd_store_default_url(statedir);
	r = dd_key_read_file(master, kpath);
	if (r == 1) {
		dd_error("no store key on this machine (%s)", kpath);
		dd_hint("run `git dnadata key import --passphrase` (or `git dnadata key import FILE`)");
	}
	if (r != 0)
		goto out;
	st->keys = dd_keys_new(master);
	sodium_memzero(master, sizeof(master));
	if (dd_backend_file_open(&st->cache, cdir, 1) < 0)
		goto out;
	if (!(flags & DD_STORE_OFFLINE)) {
		if (dd_backend_open(&st->be, st->url, 0) < 0 || read_config(st->be, &text, &cfg, st->url) != 0)
			goto out;
	} else {
		r = st->cache->ops->get(st->cache, "config", &text);
		if (r == 1) {
			dd_error("the store config is not in the local cache yet (offline)");
			dd_hint("run the command once with the store reachable");
		}
		if (r != 0 || dd_store_config_parse(&cfg, text.ptr, text.len) < 0)
			goto out;
	}
	if (dd_store_config_check(&cfg, text.ptr, st->keys, st->url) < 0)
		goto out;
	if (!(flags & DD_STORE_OFFLINE) && st->cache->ops->exists(st->cache, "config") == 0)
		st->cache->ops->put(st->cache, "config", text.ptr, text.len); /* best effort */
	st->chunker = dd_malloc(sizeof(*st->chunker));
	if (dd_chunker_params_init(st->chunker, cfg.min, cfg.avg, cfg.max, st->keys->chunker) < 0) {
		dd_error_wrap("store config of %s", st->url);
		goto out;
	}
	n = cpu_count();
	if (dd_pool_new(&st->pool, n, 2 * n + 2) < 0)
		goto out;
	st->maxfree = (size_t)(2 * n + 4);
	st->freebufs = dd_calloc(st->maxfree, sizeof(*st->freebufs));
	st->link_ok = 1;
	st->cache_label = "the local cache";
	*out = st, st = NULL, rc = 0;
out:
	dd_store_free(st);
	dd_buf_release(&text);
	free(kpath);
	free(cdir);
	return rc;
}

void
dd_store_free(struct dd_store *st)
{
	if (!st)
		return;
	dd_pool_free(st->pool);
	dd_backend_free(st->be);
	dd_backend_free(st->cache);
	dd_keys_free(st->keys);
	for (size_t i = 0; i < st->nfree; i++)
		free(st->freebufs[i]);
	free(st->freebufs);
	pthread_mutex_destroy(&st->bufmu);
	free(st->chunker);
	free(st->url);
	free(st);
}

/* ---- objects ---- */

static const char *
type_dir(int type)
{
	return type == DD_OBJ_MANIFEST ? "snapshots" : "data";
}

int
dd_store_put_object(struct dd_store *st, int type, const uint8_t id[32], const void *plain, size_t len,
		    ZSTD_CCtx *zc, struct dd_buf *scratch, int *existed)
{
	char name[DD_OBJECT_NAME_SIZE], *cpath = NULL;
	struct dd_buf own = DD_BUF_INIT, *obj = scratch ? scratch : &own;
	int rc = -1, r, in_cache;

	*existed = 0;
	dd_object_name(name, sizeof(name), type_dir(type), id);
	/*
	 * An object already there may be another process's write that is not
	 * durable yet: sync_later() puts it in the same sync() batch as a fresh
	 * write, so no manifest becomes durable before the objects it names.
	 */
	in_cache = st->cache->ops->exists(st->cache, name);
	if (in_cache < 0)
		goto out;
	if (in_cache)
		st->cache->ops->sync_later(st->cache, name);
	if (in_cache && st->be) {
		r = st->be->ops->exists(st->be, name);
		if (r < 0)
			goto out;
		if (r == 1) {
			st->be->ops->sync_later(st->be, name);
			*existed = 1;
			rc = 0;
			goto out;
		}
	}
	if (!in_cache) {
		if (dd_object_seal(obj, st->keys, type, id, plain, len, zc) < 0)
			goto out;
		r = st->cache->ops->put(st->cache, name, obj->ptr, obj->len);
		if (r < 0) {
			dd_error_wrap("writing %s to the cache", name);
			goto out;
		}
	}
	if (!st->be) {
		*existed = in_cache;
		rc = 0;
		goto out;
	}
	cpath = dd_backend_file_path(st->cache, name);
	r = st->be->ops->put_file(st->be, name, cpath);
	if (r < 0) {
		dd_error_wrap("storing %s in %s", name, st->url);
		goto out;
	}
	*existed = r == 1;
	rc = 0;
out:
	free(cpath);
	dd_buf_release(&own);
	return rc;
}

uint8_t *
dd_store_chunkbuf_get(struct dd_store *st)
{
	uint8_t *b = NULL;

	pthread_mutex_lock(&st->bufmu);
	if (st->nfree)
		b = st->freebufs[--st->nfree];
	pthread_mutex_unlock(&st->bufmu);
	return b ? b : dd_malloc(st->chunker->max);
}

void
dd_store_chunkbuf_put(struct dd_store *st, uint8_t *buf)
{
	if (!buf)
		return;
	pthread_mutex_lock(&st->bufmu);
	if (st->nfree < st->maxfree) {
		st->freebufs[st->nfree++] = buf;
		buf = NULL;
	}
	pthread_mutex_unlock(&st->bufmu);
	free(buf);
}

int
dd_store_get_object(struct dd_store *st, int type, const uint8_t id[32], size_t max_plain, struct dd_buf *plain,
		    ZSTD_DCtx *zd)
{
	char name[DD_OBJECT_NAME_SIZE];
	struct dd_buf obj = DD_BUF_INIT;
	int rc = -1, r;

	dd_object_name(name, sizeof(name), type_dir(type), id);
	r = st->cache->ops->get(st->cache, name, &obj);
	if (r < 0)
		goto out;
	if (r == 0) {
		if (dd_object_open(plain, st->keys, type, id, obj.ptr, obj.len, max_plain, zd) == 0) {
			rc = 0;
			goto out;
		}
		if (!st->be) {
			dd_error_wrap("object %s in %s", name, st->cache_label);
			goto out;
		}
		dd_warn("the cached copy of %s is %s; fetching it again from the store", name, dd_error_last());
		st->cache->ops->del(st->cache, name);
	} else if (!st->be) {
		dd_error("object %s is missing from %s", name, st->cache_label);
		rc = 1;
		goto out;
	}
	r = st->be->ops->get(st->be, name, &obj);
	if (r == 1) {
		dd_error("object %s is missing from the store %s", name, st->url);
		rc = 1;
		goto out;
	}
	if (r < 0)
		goto out;
	if (dd_object_open(plain, st->keys, type, id, obj.ptr, obj.len, max_plain, zd) < 0) {
		dd_error_wrap("object %s in the store %s", name, st->url);
		goto out;
	}
	st->cache->ops->put(st->cache, name, obj.ptr, obj.len); /* best effort: a full disk only slows the next read */
	dd_error_clear();
	rc = 0;
out:
	dd_buf_release(&obj);
	return rc;
}

int
dd_store_sync(struct dd_store *st)
{
	if (st->cache->ops->sync(st->cache) < 0)
		return -1;
	if (st->be && st->be->ops->sync(st->be) < 0)
		return -1;
	return 0;
}

int
dd_store_has_snapshot(struct dd_store *st, const char *id_hex)
{
	uint8_t id[32];
	char name[DD_OBJECT_NAME_SIZE];
	int r;

	if (dd_hex_decode(id, 32, id_hex) < 0)
		return dd_error("'%s' is not a snapshot id", id_hex);
	dd_object_name(name, sizeof(name), "snapshots", id);
	r = st->cache->ops->exists(st->cache, name);
	if (r != 0 || !st->be)
		return r;
	return st->be->ops->exists(st->be, name);
}

int
dd_store_push(struct dd_store *st, const char *id_hex)
{
	struct dd_snapshot *s = NULL;
	char name[DD_OBJECT_NAME_SIZE], *cpath;
	uint8_t id[32];
	int rc = -1, r;

	if (!st->be)
		return dd_error("cannot push while offline");
	r = dd_snapshot_load(&s, st, id_hex);
	if (r != 0)
		goto out;
	dd_hex_decode(id, 32, id_hex); /* cannot fail: dd_snapshot_load() checked it */
	for (size_t i = 0; i < s->m->nstreams; i++) {
		const struct dd_stream_info *si = &s->m->streams[i];
		for (size_t j = 0; j < si->nchunks; j++) {
			dd_object_name(name, sizeof(name), "data", si->chunks[j].id);
			r = st->be->ops->exists(st->be, name);
			if (r < 0)
				goto out;
			if (r == 1) {
				st->be->ops->sync_later(st->be, name); /* perhaps not durable yet */
				continue;
			}
			if (st->cache->ops->exists(st->cache, name) != 1) {
				dd_error("object %s of snapshot %s is in neither the cache nor the store", name, id_hex);
				goto out;
			}
			cpath = dd_backend_file_path(st->cache, name);
			r = st->be->ops->put_file(st->be, name, cpath);
			free(cpath);
			if (r < 0)
				goto out;
		}
	}
	if (st->be->ops->sync(st->be) < 0)
		goto out;
	dd_object_name(name, sizeof(name), type_dir(DD_OBJ_MANIFEST), id);
	cpath = dd_backend_file_path(st->cache, name);
	r = st->be->ops->put_file(st->be, name, cpath);
	free(cpath);
	if (r < 0 || st->be->ops->sync(st->be) < 0)
		goto out;
	rc = 0;
out:
	dd_snapshot_free(s);
	return rc;
}

/* ---- key management (store-keys.h) ---- */

int
dd_store_key_export(const char *statedir, const char *path)
{
	char *kpath = key_path(statedir);
	uint8_t master[DD_KEY_LEN];
	int rc = -1, r;

	r = dd_key_read_file(master, kpath);
	if (r == 1)
		dd_error("no store key on this machine (%s)", kpath);
	if (r != 0)
		goto out;
	rc = dd_key_write_file(path, master, DD_WRITE_NOREPLACE);
out:
	sodium_memzero(master, sizeof(master));
	free(kpath);
	return rc;
}

/* Open the backend for key commands and read its config. */
static int
open_for_keys(struct dd_backend **be, struct dd_buf *text, struct dd_store_config *cfg, const char *url,
	      const char *statedir, char **urlout)
{
	*urlout = url ? dd_strdup(url) : dd_store_default_url(statedir);
	if (dd_backend_open(be, *urlout, 0) < 0)
		return -1;
	return read_config(*be, text, cfg, *urlout) == 0 ? 0 : -1;
}

static int
import_master(const uint8_t master[DD_KEY_LEN], const struct dd_store_config *cfg, const char *text,
	      const char *url, const char *statedir)
{
	struct dd_keys *k = dd_keys_new(master);
	char id[17];
	int rc = -1;

	if (sodium_memcmp(k->key_id, cfg->key_id, DD_KEY_LEN) != 0) {
		char have[17];
		dd_key_id_short(id, cfg->key_id);
		dd_key_id_short(have, k->key_id);
		dd_error("this key (id %s) does not belong to the store %s (id %s)", have, url, id);
		goto out;
	}
	if (dd_store_config_check(cfg, text, k, url) < 0 || save_local_key(statedir, master) < 0)
		goto out;
	dd_key_id_short(id, k->key_id);
	dd_info("imported the key of %s (id %s)", url, id);
	rc = 0;
out:
	dd_keys_free(k);
	return rc;
}

int
dd_store_key_import_file(const char *url, const char *statedir, const char *path)
{
	struct dd_backend *be = NULL;
	struct dd_buf text = DD_BUF_INIT;
	struct dd_store_config cfg;
	uint8_t master[DD_KEY_LEN];
	char *u = NULL;
	int rc = -1, r;

	r = dd_key_read_file(master, path);
	if (r == 1)
		dd_error_errno("cannot read %s", path);
	if (r != 0)
		goto out;
	if (open_for_keys(&be, &text, &cfg, url, statedir, &u) < 0)
		goto out;
	rc = import_master(master, &cfg, text.ptr, u, statedir);
out:
	sodium_memzero(master, sizeof(master));
	dd_buf_release(&text);
	dd_backend_free(be);
	free(u);
	return rc;
}

int
dd_store_key_import_passphrase(const char *url, const char *statedir, const char *passphrase)
{
	struct dd_backend *be = NULL;
	struct dd_buf text = DD_BUF_INIT;
	struct dd_store_config cfg;
	uint8_t master[DD_KEY_LEN];
	char *u = NULL;
	int rc = -1;

	if (open_for_keys(&be, &text, &cfg, url, statedir, &u) < 0)
		goto out;
	if (unwrap_store_key(master, be, passphrase, cfg.key_id, NULL) != 0)
		goto out;
	rc = import_master(master, &cfg, text.ptr, u, statedir);
out:
	sodium_memzero(master, sizeof(master));
	dd_buf_release(&text);
	dd_backend_free(be);
	free(u);
	return rc;
}

int
dd_store_key_count(const char *url, const char *statedir)
{
	struct dd_backend *be = NULL;
	struct dd_buf text = DD_BUF_INIT;
	struct dd_store_config cfg;
	struct key_list l = { 0 };
	char *u = NULL;
	int rc = -1;

	if (open_for_keys(&be, &text, &cfg, url, statedir, &u) < 0)
		goto out;
	if (be->ops->list(be, "keys", collect_name, &l) < 0)
		goto out;
	rc = (int)l.n;
out:
	key_list_free(&l);
	dd_buf_release(&text);
	dd_backend_free(be);
	free(u);
	return rc;
}

int
dd_store_key_passwd(const char *url, const char *statedir, const char *old_pass, const char *new_pass)
{
	struct dd_backend *be = NULL;
	struct dd_buf text = DD_BUF_INIT;
	struct dd_store_config cfg;
	struct dd_keys *k = NULL;
	struct key_list old = { 0 };
	uint8_t master[DD_KEY_LEN], unwrapped[DD_KEY_LEN];
	char *u = NULL, *kpath = key_path(statedir);
	int rc = -1, r;

	r = dd_key_read_file(master, kpath);
	if (r == 1) {
		dd_error("no store key on this machine (%s)", kpath);
		dd_hint("run `git dnadata key import --passphrase` first");
	}
	if (r != 0)
		goto out;
	if (open_for_keys(&be, &text, &cfg, url, statedir, &u) < 0)
		goto out;
	k = dd_keys_new(master);
	if (dd_store_config_check(&cfg, text.ptr, k, u) < 0)
		goto out;
	if (old_pass) {
		r = unwrap_store_key(unwrapped, be, old_pass, cfg.key_id, &old);
		if (r != 0) {
			rc = r;
			goto out;
		}
	}
	if (add_key_file(be, master, new_pass) < 0)
		goto out;
	for (size_t i = 0; i < old.n; i++)
		if (be->ops->del(be, old.names[i]) < 0)
			goto out;
	if (be->ops->sync(be) < 0)
		goto out;
	dd_info("the store key is now protected by the new passphrase%s",
		old.n ? " (the old passphrase no longer opens it)" : "");
	rc = 0;
out:
	sodium_memzero(master, sizeof(master));
	sodium_memzero(unwrapped, sizeof(unwrapped));
	key_list_free(&old);
	dd_keys_free(k);
	dd_buf_release(&text);
	dd_backend_free(be);
	free(u);
	free(kpath);
	return rc;
}

int
dd_store_init(const char *url, const char *statedir, int *created)
{
	char *defurl = url ? NULL : dd_store_default_url(statedir);
	struct dd_backend *be = NULL;
	struct dd_buf pass = DD_BUF_INIT;
	int rc = -1, exists, r;

	if (dd_backend_open(&be, url ? url : defurl, 0) < 0)
		goto out;
	exists = be->ops->exists(be, "config");
	if (exists < 0)
		goto out;
	if (exists) {
		r = store_setup(url, statedir, NULL, created);
		if (r != 2) { /* adopted with the local key, or failed for a reason a passphrase cannot fix */
			rc = r;
			goto out;
		}
		r = dd_passphrase_get(&pass, NULL, "Passphrase of the store key: ", 0);
		if (r == 1) /* no passphrase to be had: keep the "belongs to another key" error and its hint */
			goto out;
		if (r < 0)
			goto out;
		rc = dd_store_setup(url, statedir, pass.ptr, created);
	} else {
		r = dd_passphrase_get(&pass, NULL, "Passphrase to protect the new store key (Enter for none): ", 1);
		if (r < 0)
			goto out;
		rc = dd_store_setup(url, statedir, r == 0 ? pass.ptr : NULL, created);
	}
out:
	dd_buf_release_secret(&pass);
	dd_backend_free(be);
	free(defurl);
	return rc;
}

static int
collect_snapshot(const char *name, void *arg)
{
	struct key_list *l = arg;
	const char *base = strrchr(name, '/');

	if (base && dd_is_hex(base + 1, 64))
		collect_name(base + 1, l);
	return 0;
}

int
dd_store_list_snapshots(struct dd_store *st, char ***ids, size_t *n)
{
	struct key_list l = { 0 };
	struct dd_backend *src = st->be ? st->be : st->cache;

	if (src->ops->list(src, "snapshots", collect_snapshot, &l) < 0) {
		key_list_free(&l);
		return -1;
	}
	*ids = l.names;
	*n = l.n;
	return 0;
}
