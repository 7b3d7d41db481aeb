/*
 * store/store-open.c: opening a store and setting one up (create or
 * adopt); see store.h and docs/FORMAT.md §3.
 *
 * The store's config (format, key id, chunk sizes; authenticated by a MAC
 * under the key) is read from the store once and kept in the local cache
 * (<statedir>/cache/config, with cache/config-url naming the store it came
 * from, FORMAT.md §3.5). Later opens use that copy when it names the same
 * URL and opens with the key, so a command costs no round trip for it. It
 * is read from the store again when the copy is missing, names another
 * URL, does not open with the key, or when an object of the store fails to
 * open (dd_store_config_refresh(): the store may have been replaced).
 */
#include "store/internal.h"
#include "store/store-lock.h"
#include "store/store-keys.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *
dd_store_default_url(const char *statedir)
{
	return dd_path_join(statedir, "store");
}

char *
dd_store_key_path(const char *statedir)
{
	return dd_path_join(statedir, "key");
}

int
dd_store_backend_open(struct dd_backend **out, const struct dd_store_opts *o, const char *url, int create)
{
	struct dd_backend_opts bo = {
		.url = url, .endpoint = o->endpoint, .region = o->region, .path_style = o->path_style,
		.transfers = o->transfers, .part_size = o->part_size, .retries = o->retries, .create = create,
	};

	return dd_backend_open(out, &bo);
}

int
dd_store_has_files(struct dd_backend *be)
{
	static const char *const dirs[] = { "keys", "snapshots" };
	struct dd_backend_entry *e;
	size_t n;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
		if (be->ops->list(be, dirs[i], &e, &n) < 0)
			return -1;
		dd_backend_entries_free(e, n);
		if (n)
			return 1;
	}
	return 0;
}

int
dd_store_read_config(struct dd_backend *be, struct dd_buf *text, struct dd_store_config *c, const char *url)
{
	int r = be->ops->get(be, "config", text);

	if (r == DD_NOTFOUND) {
		if (dd_store_has_files(be) == 1) {
			dd_error("the store %s has lost its config object (its other files are there)", url);
			dd_hint("run `git dnadata push` where this store was used before: it puts the config back from "
				"that clone's cache");
		} else {
			dd_error("no git-dnadata store at %s", url);
			dd_hint("check the store URL ([store] url in .dnadata/profiles.ini or .git/dnadata/config.ini)");
		}
		return DD_NOTFOUND;
	}
	if (r < 0)
		return dd_error_wrap("reading the store config");
	if (dd_store_config_parse(c, text->ptr, text->len) < 0)
		return dd_error_wrap("%s", url);
	return 0;
}

/* ---- the config cache ---- */

/* The cache's copy, when it was confirmed for this URL: 0, DD_NOTFOUND (none usable), -1. */
static int
cached_config(struct dd_store *st, struct dd_store_config *cfg)
{
	struct dd_buf url = DD_BUF_INIT;
	int r;

	r = st->cache->ops->get(st->cache, "config-url", &url);
	if (r == 0 && (url.len != strlen(st->url) + 1 || memcmp(url.ptr, st->url, url.len - 1)))
		r = DD_NOTFOUND;
	if (r == 0)
		r = st->cache->ops->get(st->cache, "config", &st->config);
	if (r == 0 && (dd_store_config_parse(cfg, st->config.ptr, st->config.len) < 0 ||
		       dd_store_config_check(cfg, st->config.ptr, st->keys, st->url) < 0)) {
		dd_debug("the cached store config does not open with this key (%s): reading the store's", dd_error_last());
		r = DD_NOTFOUND;
	}
	if (r == DD_NOTFOUND)
		dd_error_clear();
	dd_buf_release(&url);
	return r;
}

void
dd_store_cache_config(struct dd_backend *cache, const char *url, const struct dd_buf *text)
{
	char *cpath = cache->ops->local_path(cache, "config");
	char *upath = cache->ops->local_path(cache, "config-url");
	char *line = dd_asprintf("%s\n", url);

	if (dd_file_write_atomic(cpath, text->ptr, text->len, 0444, 0) < 0 ||
	    dd_file_write_atomic(upath, line, strlen(line), 0644, 0) < 0) {
		dd_debug("cannot keep the store config in the cache: %s", dd_error_last());
		dd_error_clear();
	}
	free(line);
	free(upath);
	free(cpath);
}

static void
cache_config(struct dd_store *st, const struct dd_buf *text)
{
	dd_store_cache_config(st->cache, st->url, text);
}

/* Fill st->config and *cfg: from the cache when it can be trusted, else from the store. */
static int
load_config(struct dd_store *st, struct dd_store_config *cfg)
{
	int r;

	if (st->flags & DD_STORE_OFFLINE) {
		r = st->cache->ops->get(st->cache, "config", &st->config);
		if (r == DD_NOTFOUND) {
			dd_error("the store config is not in the local cache yet (offline)");
			dd_hint("run the command once with the store reachable");
		}
		if (r != 0 || dd_store_config_parse(cfg, st->config.ptr, st->config.len) < 0)
			return -1;
		return dd_store_config_check(cfg, st->config.ptr, st->keys, st->url);
	}
	r = cached_config(st, cfg);
	if (r != DD_NOTFOUND)
		return r;
	atomic_fetch_add(&st->requests, 1);
	if (dd_store_read_config(st->be, &st->config, cfg, st->url) != 0 ||
	    dd_store_config_check(cfg, st->config.ptr, st->keys, st->url) < 0)
		return -1;
	st->config_from_store = 1;
	cache_config(st, &st->config);
	return 0;
}

/* Under st->cfgmu. */
static int
learn_locked(struct dd_store *st, const struct dd_buf *text)
{
	struct dd_store_config cfg;

	if (text->len == st->config.len && !memcmp(text->ptr, st->config.ptr, text->len))
		return 0;
	if (dd_store_config_parse(&cfg, text->ptr, text->len) < 0 ||
	    dd_store_config_check(&cfg, text->ptr, st->keys, st->url) < 0)
		return dd_error_wrap("the store's config changed");
	cache_config(st, text);
	dd_buf_clear(&st->config);
	dd_buf_put(&st->config, text->ptr, text->len);
	dd_warn("the store config of %s changed; this clone's cache has learnt it", st->url);
	return 0;
}

int
dd_store_config_learn(struct dd_store *st, const struct dd_buf *text)
{
	int rc;

	pthread_mutex_lock(&st->cfgmu);
	rc = learn_locked(st, text);
	pthread_mutex_unlock(&st->cfgmu);
	return rc;
}

/*
 * At most once per run: during a fetch every transfer thread may see an
 * object fail at once, and one GET of the config answers them all. Later
 * callers get the first answer (its error, if the config no longer opens).
 */
int
dd_store_config_refresh(struct dd_store *st)
{
	struct dd_buf text = DD_BUF_INIT;
	int rc = 0;

	if (!st->be)
		return 0;
	pthread_mutex_lock(&st->cfgmu);
	if (st->config_refreshed) {
		if (st->config_refresh_err)
			rc = dd_error("%s", st->config_refresh_err);
		goto out;
	}
	st->config_refreshed = 1;
	atomic_fetch_add(&st->requests, 1);
	if (st->be->ops->get(st->be, "config", &text) == 0)
		rc = learn_locked(st, &text);
	else
		dd_error_clear(); /* unreachable or gone: the object's own error stands */
	if (rc < 0)
		st->config_refresh_err = dd_strdup(dd_error_last());
out:
	pthread_mutex_unlock(&st->cfgmu);
	dd_buf_release(&text);
	return rc;
}

/* ---- opening ---- */

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

static int
load_key(struct dd_store *st, const char *statedir)
{
	char *kpath = dd_store_key_path(statedir);
	uint8_t master[DD_KEY_LEN];
	int r = dd_key_read_file(master, kpath);

	if (r == DD_NOTFOUND) {
		dd_error("no store key on this machine (%s)", kpath);
		dd_hint("run `git dnadata key import --passphrase` (or `git dnadata key import FILE`)");
	}
	if (r == 0)
		st->keys = dd_keys_new(master);
	sodium_memzero(master, sizeof(master));
	free(kpath);
	return r == 0 ? 0 : -1;
}

/* The backend and, unless its exists() is cheap, the record of what it holds. */
static int
open_backend(struct dd_store *st, const struct dd_store_opts *o, const char *cdir)
{
	char *kpath;
	int rc;

	if (dd_store_backend_open(&st->be, o, st->url, 0) < 0)
		return -1;
	if (dd_pool_new(&st->xfer, o->transfers > 0 ? o->transfers : 8, 4 * (o->transfers > 0 ? o->transfers : 8)) < 0)
		return -1;
	if (st->be->ops->caps & DD_BACKEND_CHEAP_EXISTS)
		return 0;
	kpath = dd_known_path(cdir, st->url);
	rc = dd_known_open(&st->known, kpath, st->url);
	free(kpath);
	return rc;
}

int
dd_store_open_opts(struct dd_store **out, const struct dd_store_opts *o)
{
	struct dd_store *st = dd_calloc(1, sizeof(*st));
	char *cdir = dd_path_join(o->statedir, "cache");
	struct dd_store_config cfg;
	int rc = -1, n;

	st->flags = o->flags;
	pthread_mutex_init(&st->bufmu, NULL);
	pthread_mutex_init(&st->idxmu, NULL);
	pthread_mutex_init(&st->cfgmu, NULL);
	pthread_mutex_init(&st->lockmu, NULL);
	pthread_cond_init(&st->lockcv, NULL);
	st->idx = dd_malloc(sizeof(*st->idx));
	dd_midx_init(st->idx);
	dd_packer_new(&st->packer, st->idx, 0);
	st->pidx = dd_malloc(sizeof(*st->pidx));
	dd_midx_init(st->pidx);
	dd_packer_new(&st->ppacker, st->pidx, 1);
	st->opidx = dd_malloc(sizeof(*st->opidx));
	dd_midx_init(st->opidx);
	st->url = o->url ? dd_strdup(o->url) : dd_store_default_url(o->statedir);
	st->cache_label = "the local cache";
	if (load_key(st, o->statedir) < 0 || dd_backend_file_open(&st->cache, cdir, 1) < 0)
		goto out;
	/* offline too: a malformed URL is a mistake to fix, not a store to do without (the cache alone) */
	if (o->url && dd_backend_url_check(o->url) < 0)
		goto out;
	if (!(o->flags & DD_STORE_OFFLINE) && open_backend(st, o, cdir) < 0)
		goto out;
	if (load_config(st, &cfg) < 0)
		goto out;
	st->zlevel = cfg.zlevel;
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
	*out = st, st = NULL, rc = 0;
out:
	dd_store_free(st);
	free(cdir);
	return rc;
}

int
dd_store_open(struct dd_store **out, const char *url, const char *statedir, int flags)
{
	struct dd_store_opts o = { .url = url, .statedir = statedir, .flags = flags, .path_style = -1, .retries = -1 };

	return dd_store_open_opts(out, &o);
}

void
dd_store_free(struct dd_store *st)
{
	if (!st)
		return;
	dd_pool_free(st->pool);
	dd_packer_abandon(st); /* the packers' finisher threads end; uploads are waited for */
	dd_pool_free(st->xfer); /* after the pool: a finishing pack may still queue an upload */
	dd_store_unlock_all(st); /* every exit path: errors too */
	dd_packer_free(st->packer);
	dd_midx_clear(st->idx);
	free(st->idx);
	dd_packer_free(st->ppacker);
	if (st->pidx)
		dd_midx_clear(st->pidx);
	free(st->pidx);
	if (st->opidx)
		dd_midx_clear(st->opidx);
	free(st->opidx);
	pthread_mutex_destroy(&st->idxmu);
	pthread_mutex_destroy(&st->cfgmu);
	pthread_mutex_destroy(&st->lockmu);
	pthread_cond_destroy(&st->lockcv);
	free(st->config_refresh_err);
	dd_known_free(st->known);
	dd_backend_free(st->be);
	dd_backend_free(st->cache);
	dd_keys_free(st->keys);
	for (size_t i = 0; i < st->nfree; i++)
		free(st->freebufs[i]);
	free(st->freebufs);
	pthread_mutex_destroy(&st->bufmu);
	free(st->chunker);
	dd_buf_release(&st->config);
	if (st->gone_why) {
		dd_error_saved_free(st->gone_why);
		free(st->gone_why);
	}
	free(st->url);
	free(st);
}

int
dd_store_probe(const struct dd_store_opts *o, enum dd_store_probe_fail *why)
{
	char *kpath = dd_store_key_path(o->statedir);
	char *url = o->url ? dd_strdup(o->url) : dd_store_default_url(o->statedir);
	uint8_t master[DD_KEY_LEN];
	struct dd_keys *keys = NULL;
	struct dd_backend *be = NULL;
	struct dd_buf text = DD_BUF_INIT;
	struct dd_store_config cfg;
	int r, rc = -1;

	r = dd_key_read_file(master, kpath);
	if (r == DD_NOTFOUND)
		dd_error("no store key on this machine (%s)", kpath);
	if (r != 0) {
		*why = r == DD_NOTFOUND ? DD_PROBE_NO_KEY : DD_PROBE_BAD_KEY;
		goto out;
	}
	keys = dd_keys_new(master);
	*why = DD_PROBE_UNREACHABLE;
	if (dd_store_backend_open(&be, o, url, 0) < 0)
		goto out;
	r = dd_store_read_config(be, &text, &cfg, url);
	if (r != 0) {
		*why = r == DD_NOTFOUND ? DD_PROBE_NO_STORE : DD_PROBE_UNREACHABLE;
		if (r > 0)
			r = -1;
		goto out;
	}
	*why = sodium_memcmp(cfg.key_id, keys->key_id, DD_KEY_LEN) ? DD_PROBE_WRONG_KEY : DD_PROBE_DAMAGED;
	if (dd_store_config_check(&cfg, text.ptr, keys, url) < 0)
		goto out;
	*why = DD_PROBE_OK;
	rc = 0;
out:
	sodium_memzero(master, sizeof(master));
	dd_buf_release(&text);
	dd_backend_free(be);
	if (keys)
		dd_keys_free(keys);
	free(url);
	free(kpath);
	return rc;
}
