/*
 * store/store-setup.c: what `init` does to a store: create a new one, or
 * adopt an existing one with the local key or a passphrase-wrapped key
 * file; see store-keys.h and docs/FORMAT.md §3.
 *
 * Passphrases come from the caller's callback (cmd/ asks the environment
 * or the terminal); the store asks only when it needs one: to unlock a key
 * file of a store this machine has no key for, or to protect a new store's
 * key (which may be declined). Nothing here reads a terminal.
 *
 * A folder that holds a store's files but no config is a store that lost
 * its config: it is refused, never overwritten by a new store (whose new
 * key could not read the old snapshots).
 *
 * Once the store is created or adopted, the local cache keeps its config
 * as a first open would (store-open.c), so the clone's first snapshot does
 * not need the store to be reachable: a store out of reach then only means
 * "push later".
 */
#include "store/internal.h"
#include "store/store-keys.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct setup {
	const struct dd_store_opts *o;
	const char *url;
	char *kpath;
	struct dd_backend *be;
	struct dd_buf text; /* the store config */
	struct dd_store_config cfg;
	uint8_t master[DD_KEY_LEN];
	int have_local; /* 0: master holds the local key; DD_NOTFOUND: none */
	int zlevel;     /* a new store's compression (o->compression, else the default) */
};

/* Ask the caller's callback: 0 with pass filled, DD_NOTFOUND (none to be had), -1. */
static int
ask(const struct dd_store_opts *o, struct dd_buf *pass, enum dd_passphrase_purpose purpose)
{
	if (!o->passphrase)
		return DD_NOTFOUND;
	return o->passphrase(pass, purpose, o->passphrase_arg);
}

/* Adopt the store whose config is in s->text. */
static int
adopt(struct setup *s)
{
	struct dd_buf pass = DD_BUF_INIT;
	struct dd_keys *k = NULL;
	char id[17];
	int rc = -1, r;

	if (s->have_local == 0) {
		k = dd_keys_new(s->master);
		if (sodium_memcmp(k->key_id, s->cfg.key_id, DD_KEY_LEN) == 0) {
			rc = dd_store_config_check(&s->cfg, s->text.ptr, k, s->url);
			goto out;
		}
		dd_keys_free(k), k = NULL;
	}
	r = ask(s->o, &pass, DD_PASSPHRASE_UNLOCK);
	if (r == DD_NOTFOUND) {
		dd_key_id_short(id, s->cfg.key_id);
		dd_error("this store (%s) belongs to another key (id %s)", s->url, id);
		dd_hint("import it with `git dnadata key import --passphrase` (or set DNADATA_PASSPHRASE), or `git dnadata key import FILE`");
	}
	if (r != 0)
		goto out;
	if (dd_store_unwrap_key(s->master, s->be, pass.ptr, s->cfg.key_id, NULL, NULL) != 0)
		goto out;
	k = dd_keys_new(s->master);
	if (dd_store_config_check(&s->cfg, s->text.ptr, k, s->url) < 0 || dd_store_save_local_key(s->o->statedir, s->master) < 0)
		goto out;
	dd_key_id_short(id, k->key_id);
	dd_info("joined the store %s (key id %s)", s->url, id);
	rc = 0;
out:
	dd_buf_release_secret(&pass);
	dd_keys_free(k);
	return rc;
}

/* Create a new store at s->url (nothing there yet). */
static int
create(struct setup *s)
{
	struct dd_buf pass = DD_BUF_INIT;
	struct dd_keys *k = NULL;
	char id[17], comp[16];
	int rc = -1, r, haspass;

	r = dd_store_has_files(s->be);
	if (r == 1) {
		dd_error("the store %s has lost its config object (its other files are there); not creating a new store over it", s->url);
		dd_hint("run `git dnadata push` where this store was used before: it puts the config back from that clone's cache");
	}
	if (r != 0)
		goto out;
	if ((r = ask(s->o, &pass, DD_PASSPHRASE_NEW)) < 0)
		goto out;
	haspass = r == 0;
	dd_backend_free(s->be), s->be = NULL;
	if (dd_store_backend_open(&s->be, s->o, s->url, 1) < 0)
		goto out;
	if (s->have_local == DD_NOTFOUND) {
		randombytes_buf(s->master, sizeof(s->master));
		if (dd_key_write_file(s->kpath, s->master, DD_WRITE_NOREPLACE) < 0)
			goto out;
	}
	k = dd_keys_new(s->master);
	memset(&s->cfg, 0, sizeof(s->cfg));
	s->cfg.min = DD_CHUNK_MIN_DEFAULT, s->cfg.avg = DD_CHUNK_AVG_DEFAULT, s->cfg.max = DD_CHUNK_MAX_DEFAULT;
	s->cfg.zlevel = s->zlevel;
	if (haspass && dd_store_add_key_file(s->be, s->master, pass.ptr) < 0)
		goto out;
	dd_store_config_format(&s->text, &s->cfg, k);
	r = s->be->ops->put(s->be, "config", s->text.ptr, s->text.len);
	if (r == DD_EXISTS) {
		dd_error("another git-dnadata created a store at %s at the same time; run the command again", s->url);
		goto out;
	}
	if (r < 0 || s->be->ops->sync(s->be) < 0)
		goto out;
	dd_key_id_short(id, k->key_id);
	dd_compression_format(comp, s->zlevel);
	dd_info("created the store %s (key id %s, compression %s)", s->url, id, comp);
	if (!haspass)
		dd_info("the store key is only in %s: protect a copy in the store with `git dnadata key passwd`, or copy it with `git dnadata key export FILE`", s->kpath);
	rc = 0;
out:
	dd_buf_release_secret(&pass);
	dd_keys_free(k);
	return rc;
}

/* --compression given for a store that exists: it keeps what it was created with. */
static void
keep_compression(const struct setup *s)
{
	char have[16];

	dd_compression_format(have, s->cfg.zlevel);
	dd_warn("the store %s exists and keeps its compression (%s): --compression applies only to a new store",
		s->url, have);
}

/* The cache learns the config of the store just created or adopted (best effort). */
static void
learn_config(struct setup *s)
{
	char *cdir = dd_path_join(s->o->statedir, "cache");
	struct dd_backend *cache = NULL;

	if (dd_backend_file_open(&cache, cdir, 1) == 0)
		dd_store_cache_config(cache, s->url, &s->text);
	else
		dd_debug("cannot keep the store config in the cache: %s", dd_error_last());
	dd_error_clear();
	dd_backend_free(cache);
	free(cdir);
}

int
dd_store_init(const struct dd_store_opts *o, int *created)
{
	struct setup s = { .o = o, .text = DD_BUF_INIT };
	char *defurl = o->url ? NULL : dd_store_default_url(o->statedir);
	int rc = -1, r;

	*created = 0;
	s.zlevel = DD_ZLEVEL_DEFAULT;
	if (o->compression && dd_compression_parse(&s.zlevel, o->compression, "--compression") < 0)
		goto out;
	s.url = o->url ? o->url : defurl;
	s.kpath = dd_store_key_path(o->statedir);
	if (dd_store_backend_open(&s.be, o, s.url, 0) < 0)
		goto out;
	s.have_local = dd_key_read_file(s.master, s.kpath);
	if (s.have_local < 0)
		goto out;
	r = dd_store_read_config(s.be, &s.text, &s.cfg, s.url);
	if (r < 0)
		goto out;
	dd_error_clear();
	if (r == 0) {
		rc = adopt(&s);
		if (rc == 0 && o->compression && s.cfg.zlevel != s.zlevel)
			keep_compression(&s);
	} else {
		rc = create(&s);
		*created = rc == 0;
	}
	if (rc == 0)
		learn_config(&s);
out:
	sodium_memzero(s.master, sizeof(s.master));
	dd_buf_release(&s.text);
	dd_backend_free(s.be);
	free(s.kpath);
	free(defurl);
	return rc;
}

static int
fixed_passphrase(struct dd_buf *out, enum dd_passphrase_purpose purpose, void *arg)
{
	(void)purpose;
	dd_buf_clear(out);
	dd_buf_puts(out, arg);
	return 0;
}

int
dd_store_setup(const char *url, const char *statedir, const char *passphrase, int *created)
{
	struct dd_store_opts o = { .url = url, .statedir = statedir, .path_style = -1, .retries = -1 };

	if (passphrase) {
		o.passphrase = fixed_passphrase;
		o.passphrase_arg = (void *)passphrase;
	}
	return dd_store_init(&o, created);
}
