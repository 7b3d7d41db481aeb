/*
 * store/store-keys.c: managing a store's key (store-keys.h): the local
 * key file, passphrase-wrapped key files in the store's keys/ folder,
 * export, import and passwd. No function here prints, logs or returns key
 * material; buffers that held a key are wiped.
 */
#include "store/internal.h"
#include "store/store-keys.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void
names_add(char ***names, size_t *n, const char *name)
{
	*names = dd_realloc(*names, (*n + 1) * sizeof(**names));
	(*names)[(*n)++] = dd_strdup(name);
}

/* Does the wrapped key `data` open with `pass` and belong to key_id? 0 yes (master filled), DD_NOTFOUND no, -1. */
static int
try_key_file(uint8_t master[DD_KEY_LEN], const char *name, const struct dd_buf *data, const char *pass,
	     const uint8_t key_id[DD_KEY_LEN], int *foreign)
{
	struct dd_keyfile kf;
	struct dd_keys *k;
	int r, match;

	if (dd_keyfile_parse(&kf, data->ptr, data->len) < 0) {
		dd_warn("skipping key file %s: %s", name, dd_error_last());
		return DD_NOTFOUND;
	}
	r = dd_keyfile_unwrap(master, &kf, pass);
	if (r != 0)
		return r;
	k = dd_keys_new(master);
	match = sodium_memcmp(k->key_id, key_id, DD_KEY_LEN) == 0;
	dd_keys_free(k);
	if (!match) {
		sodium_memzero(master, DD_KEY_LEN);
		*foreign = 1;
		return DD_NOTFOUND;
	}
	return 0;
}

int
dd_store_unwrap_key(uint8_t master[DD_KEY_LEN], struct dd_backend *be, const char *pass,
		    const uint8_t key_id[DD_KEY_LEN], char ***which, size_t *nwhich)
{
	struct dd_backend_entry *e = NULL;
	struct dd_buf data = DD_BUF_INIT;
	uint8_t cand[DD_KEY_LEN];
	size_t n = 0;
	int rc = -1, found = 0, foreign = 0;

	if (be->ops->list(be, "keys", &e, &n) < 0)
		goto out;
	if (n == 0) {
		dd_error("the store %s has no passphrase-protected key file", be->display);
		dd_hint("copy the key from a machine that has it: `git dnadata key export FILE` there, `git dnadata key import FILE` here");
		rc = DD_NOTFOUND;
		goto out;
	}
	for (size_t i = 0; i < n && !(found && !which); i++) {
		int r = be->ops->get(be, e[i].name, &data);
		if (r == DD_NOTFOUND)
			continue;
		if (r == 0)
			r = try_key_file(cand, e[i].name, &data, pass, key_id, &foreign);
		if (r < 0)
			goto out;
		if (r != 0)
			continue;
		memcpy(master, cand, DD_KEY_LEN);
		found = 1;
		if (which)
			names_add(which, nwhich, e[i].name);
	}
	if (!found) {
		if (foreign)
			dd_error("the passphrase opens a key file of %s, but its key is not the store's key", be->display);
		else
			dd_error("wrong passphrase: it opens none of the %zu key file(s) of the store %s", n, be->display);
		rc = DD_NOTFOUND;
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(cand, sizeof(cand));
	dd_buf_release(&data);
	dd_backend_entries_free(e, n);
	return rc;
}

int
dd_store_add_key_file(struct dd_backend *be, const uint8_t master[DD_KEY_LEN], const char *pass)
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

int
dd_store_save_local_key(const char *statedir, const uint8_t master[DD_KEY_LEN])
{
	char *path = dd_store_key_path(statedir);
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

/* ---- key management (store-keys.h) ---- */

int
dd_store_key_check(const char *statedir)
{
	char *kpath = dd_store_key_path(statedir);
	uint8_t master[DD_KEY_LEN];
	int r = dd_key_read_file(master, kpath);

	sodium_memzero(master, sizeof(master));
	free(kpath);
	return r;
}

int
dd_store_key_export(const char *statedir, const char *path)
{
	char *kpath = dd_store_key_path(statedir);
	uint8_t master[DD_KEY_LEN];
	int rc = -1, r;

	r = dd_key_read_file(master, kpath);
	if (r == DD_NOTFOUND)
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
open_for_keys(struct dd_backend **be, struct dd_buf *text, struct dd_store_config *cfg, const struct dd_store_opts *o,
	      char **urlout)
{
	*urlout = o->url ? dd_strdup(o->url) : dd_store_default_url(o->statedir);
	if (dd_store_backend_open(be, o, *urlout, 0) < 0)
		return -1;
	return dd_store_read_config(*be, text, cfg, *urlout) == 0 ? 0 : -1;
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
	if (dd_store_config_check(cfg, text, k, url) < 0 || dd_store_save_local_key(statedir, master) < 0)
		goto out;
	dd_key_id_short(id, k->key_id);
	dd_info("imported the key of %s (id %s)", url, id);
	rc = 0;
out:
	dd_keys_free(k);
	return rc;
}

/* Import the master key read from the file `path`, or else unwrapped with `passphrase`. */
static int
import_key(const struct dd_store_opts *o, const char *path, const char *passphrase)
{
	struct dd_backend *be = NULL;
	struct dd_buf text = DD_BUF_INIT;
	struct dd_store_config cfg;
	uint8_t master[DD_KEY_LEN];
	char *u = NULL;
	int rc = -1, r;

	if (path) {
		r = dd_key_read_file(master, path);
		if (r == DD_NOTFOUND)
			dd_error_errno("cannot read %s", path);
		if (r != 0)
			goto out;
	}
	if (open_for_keys(&be, &text, &cfg, o, &u) < 0)
		goto out;
	if (!path && dd_store_unwrap_key(master, be, passphrase, cfg.key_id, NULL, NULL) != 0)
		goto out;
	rc = import_master(master, &cfg, text.ptr, u, o->statedir);
out:
	sodium_memzero(master, sizeof(master));
	dd_buf_release(&text);
	dd_backend_free(be);
	free(u);
	return rc;
}

int
dd_store_key_import_file(const struct dd_store_opts *o, const char *path)
{
	return import_key(o, path, NULL);
}

int
dd_store_key_import_passphrase(const struct dd_store_opts *o, const char *passphrase)
{
	return import_key(o, NULL, passphrase);
}

int
dd_store_key_count(const struct dd_store_opts *o)
{
	struct dd_backend *be = NULL;
	struct dd_buf text = DD_BUF_INIT;
	struct dd_store_config cfg;
	struct dd_backend_entry *e = NULL;
	size_t n = 0;
	char *u = NULL;
	int rc = -1;

	if (open_for_keys(&be, &text, &cfg, o, &u) < 0)
		goto out;
	if (be->ops->list(be, "keys", &e, &n) < 0)
		goto out;
	rc = (int)n;
out:
	dd_backend_entries_free(e, n);
	dd_buf_release(&text);
	dd_backend_free(be);
	free(u);
	return rc;
}

int
dd_store_key_passwd(const struct dd_store_opts *o, const char *old_pass, const char *new_pass)
{
	struct dd_backend *be = NULL;
	struct dd_buf text = DD_BUF_INIT;
	struct dd_store_config cfg;
	struct dd_keys *k = NULL;
	char **old = NULL;
	size_t nold = 0;
	uint8_t master[DD_KEY_LEN], unwrapped[DD_KEY_LEN];
	char *u = NULL, *kpath = dd_store_key_path(o->statedir);
	int rc = -1, r;

	r = dd_key_read_file(master, kpath);
	if (r == DD_NOTFOUND) {
		dd_error("no store key on this machine (%s)", kpath);
		dd_hint("run `git dnadata key import --passphrase` first");
	}
	if (r != 0)
		goto out;
	if (open_for_keys(&be, &text, &cfg, o, &u) < 0)
		goto out;
	k = dd_keys_new(master);
	if (dd_store_config_check(&cfg, text.ptr, k, u) < 0)
		goto out;
	if (old_pass) {
		r = dd_store_unwrap_key(unwrapped, be, old_pass, cfg.key_id, &old, &nold);
		if (r != 0) {
			rc = r;
			goto out;
		}
	}
	if (dd_store_add_key_file(be, master, new_pass) < 0)
		goto out;
	for (size_t i = 0; i < nold; i++)
		if (be->ops->del(be, old[i]) < 0)
			goto out;
	if (be->ops->sync(be) < 0)
		goto out;
	dd_info("the store key is now protected by the new passphrase%s",
		nold ? " (the old passphrase no longer opens it)" : "");
	rc = 0;
out:
	sodium_memzero(master, sizeof(master));
	sodium_memzero(unwrapped, sizeof(unwrapped));
	names_free(old, nold);
	dd_keys_free(k);
	dd_buf_release(&text);
	dd_backend_free(be);
	free(u);
	free(kpath);
	return rc;
}


void
dd_store_mask_key(const struct dd_store *st, unsigned char out[DD_MASK_KEY_LEN])
{
	crypto_kdf_derive_from_key(out, DD_MASK_KEY_LEN, 1, "ddmask01", st->keys->master);
}
