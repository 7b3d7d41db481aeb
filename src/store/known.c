/*
 * store/known.c: the known-objects record, a local list of the objects a
 * remote store is known to hold, so writing a snapshot does not ask the
 * store about every chunk (docs/FORMAT.md §3.5).
 *
 * Invariant: a name is believed only once it is in the file, and it goes
 * into the file only after the backend's sync() succeeded after the put
 * (or the exists() answer) that confirmed it. So a crash, a failed upload
 * or a lost record can only cost round trips, never make deduplication
 * trust an object the store does not durably hold. The file is appended to
 * in whole lines (one write per batch, O_APPEND), so concurrent commands
 * do not tear each other's lines; a torn last line is ignored, and anything
 * else unexpected (another store's record, a bad line) makes the record
 * count as empty and be rewritten. Each store URL has a file of its own
 * (dd_known_path), so commands of one clone using two stores at once never
 * append one store's objects to the other's record. Deleting objects from a store (by hand,
 * later gc) must forget the record: `verify` does when it finds one missing.
 *
 * In memory: an open-addressing hash set of (type, id) keys; ids are keyed
 * hashes, so their first bytes are already uniform.
 */
#include "store/internal.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_LEN 33 /* type byte (1 data, 2 manifest, 3 index) + id */
#define MAGIC "dnadata-known-objects 1\n"

struct dd_known {
	pthread_mutex_t mu;
	char *path, *header;
	uint8_t (*slots)[KEY_LEN]; /* slot[0] == 0: empty */
	size_t cap, n;
	struct dd_buf pending; /* lines added since the last take */
	int reset;             /* the file is not ours (or damaged): rewrite it whole */
};

/* "data/ab/<64 hex>", "snapshots/<64 hex>" or "index/<64 hex>" -> key; -1 if it is none of them. */
static int
name_key(uint8_t key[KEY_LEN], const char *name, size_t len)
{
	char hex[65];

	if (len == 72 && !memcmp(name, "data/", 5) && name[7] == '/' && !memcmp(name + 5, name + 8, 2)) {
		key[0] = DD_OBJ_DATA;
		memcpy(hex, name + 8, 64);
	} else if (len == 74 && !memcmp(name, "snapshots/", 10)) {
		key[0] = DD_OBJ_MANIFEST;
		memcpy(hex, name + 10, 64);
	} else if (len == 70 && !memcmp(name, "index/", 6)) {
		key[0] = DD_OBJ_INDEX;
		memcpy(hex, name + 6, 64);
	} else {
		return -1;
	}
	hex[64] = '\0';
	return dd_hex_decode(key + 1, 32, hex);
}

static size_t
slot_of(const struct dd_known *k, const uint8_t key[KEY_LEN])
{
	uint64_t h;

	memcpy(&h, key + 1, sizeof(h));
	return (size_t)(h ^ key[0]) & (k->cap - 1);
}

static int
set_has(const struct dd_known *k, const uint8_t key[KEY_LEN])
{
	if (!k->cap)
		return 0;
	for (size_t i = slot_of(k, key);; i = (i + 1) & (k->cap - 1)) {
		if (!k->slots[i][0])
			return 0;
		if (!memcmp(k->slots[i], key, KEY_LEN))
			return 1;
	}
}

static void set_add(struct dd_known *k, const uint8_t key[KEY_LEN]);

static void
set_grow(struct dd_known *k)
{
	uint8_t (*old)[KEY_LEN] = k->slots;
	size_t oldcap = k->cap;

	k->cap = oldcap ? 2 * oldcap : 1024;
	k->slots = dd_calloc(k->cap, KEY_LEN);
	k->n = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i][0])
			set_add(k, old[i]);
	free(old);
}

static void
set_add(struct dd_known *k, const uint8_t key[KEY_LEN])
{
	size_t i;

	if (2 * (k->n + 1) > k->cap)
		set_grow(k);
	for (i = slot_of(k, key); k->slots[i][0]; i = (i + 1) & (k->cap - 1))
		if (!memcmp(k->slots[i], key, KEY_LEN))
			return;
	memcpy(k->slots[i], key, KEY_LEN);
	k->n++;
}

/* Add every whole, valid line of `text`; -1 at the first bad one. */
static int
add_lines(struct dd_known *k, const char *p, const char *end)
{
	uint8_t key[KEY_LEN];

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return 0; /* a torn last line: never confirmed */
		if (name_key(key, p, (size_t)(nl - p)) < 0)
			return -1;
		set_add(k, key);
		p = nl + 1;
	}
	return 0;
}

char *
dd_known_path(const char *cachedir, const char *url)
{
	uint8_t h[8];
	char hex[2 * sizeof(h) + 1], *name, *path;

	crypto_generichash(h, sizeof(h), (const uint8_t *)url, strlen(url), NULL, 0);
	dd_hex_encode(hex, h, sizeof(h));
	name = dd_asprintf("known-objects-%s", hex);
	path = dd_path_join(cachedir, name);
	free(name);
	return path;
}

int
dd_known_open(struct dd_known **out, const char *path, const char *url)
{
	struct dd_known *k = dd_calloc(1, sizeof(*k));
	struct dd_buf text = DD_BUF_INIT;
	size_t hl;
	int r;

	pthread_mutex_init(&k->mu, NULL);
	k->path = dd_strdup(path);
	k->header = dd_asprintf(MAGIC "store %s\n", url);
	hl = strlen(k->header);
	r = dd_file_read(&text, path);
	if (r < 0 && dd_path_exists(path))
		dd_debug("ignoring the known-objects record %s: %s", path, dd_error_last());
	if (r == 0 && (text.len < hl || memcmp(text.ptr, k->header, hl) ||
		       add_lines(k, text.ptr + hl, text.ptr + text.len) < 0)) {
		dd_debug("the known-objects record %s is another store's or damaged: starting it again", path);
		free(k->slots), k->slots = NULL, k->cap = k->n = 0;
		k->reset = 1;
	}
	dd_error_clear();
	dd_buf_release(&text);
	*out = k;
	return 0;
}

void
dd_known_free(struct dd_known *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->mu);
	dd_buf_release(&k->pending);
	free(k->slots);
	free(k->header);
	free(k->path);
	free(k);
}

int
dd_known_has(struct dd_known *k, const char *name)
{
	uint8_t key[KEY_LEN];
	int r;

	if (name_key(key, name, strlen(name)) < 0)
		return 0;
	pthread_mutex_lock(&k->mu);
	r = set_has(k, key);
	pthread_mutex_unlock(&k->mu);
	return r;
}

void
dd_known_add(struct dd_known *k, const char *name)
{
	uint8_t key[KEY_LEN];

	if (name_key(key, name, strlen(name)) < 0)
		return;
	pthread_mutex_lock(&k->mu);
	dd_buf_printf(&k->pending, "%s\n", name);
	pthread_mutex_unlock(&k->mu);
}

void
dd_known_take(struct dd_known *k, struct dd_buf *batch)
{
	pthread_mutex_lock(&k->mu);
	dd_buf_release(batch);
	*batch = k->pending;
	memset(&k->pending, 0, sizeof(k->pending));
	pthread_mutex_unlock(&k->mu);
}

/* Write the record anew: the header and `batch` (replacing the file when `replace`). */
static int
write_new(struct dd_known *k, const struct dd_buf *batch, int replace)
{
	struct dd_buf text = DD_BUF_INIT;
	int r;

	dd_buf_puts(&text, k->header);
	dd_buf_put(&text, batch->ptr, batch->len);
	r = dd_file_write_atomic(k->path, text.ptr, text.len, 0600, replace ? 0 : DD_WRITE_NOREPLACE);
	dd_buf_release(&text);
	return r;
}

static int
append(struct dd_known *k, const struct dd_buf *batch)
{
	int fd, r;

	if (k->reset) {
		r = write_new(k, batch, 1);
		k->reset = r < 0;
		return r;
	}
	fd = open(k->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		r = write_new(k, batch, 0);
		if (r != DD_EXISTS) /* another command made it meanwhile: append to theirs */
			return r;
		fd = open(k->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return dd_error_errno("cannot open %s", k->path);
	r = dd_write_all(fd, batch->ptr, batch->len) < 0 ? dd_error_errno("cannot write %s", k->path) : 0;
	close(fd);
	return r;
}

int
dd_known_commit(struct dd_known *k, const struct dd_buf *batch)
{
	int rc = 0;

	if (!batch->len)
		return 0;
	pthread_mutex_lock(&k->mu);
	if (append(k, batch) < 0) {
		/* only an optimisation: the next command asks the store again */
		dd_debug("cannot update the known-objects record: %s", dd_error_last());
		dd_error_clear();
		rc = -1;
	}
	add_lines(k, batch->ptr, batch->ptr + batch->len); /* believed in memory either way: durably confirmed */
	pthread_mutex_unlock(&k->mu);
	return rc;
}

int
dd_known_forget(struct dd_known *k)
{
	int rc = 0;

	pthread_mutex_lock(&k->mu);
	free(k->slots), k->slots = NULL, k->cap = k->n = 0;
	dd_buf_release(&k->pending);
	if (unlink(k->path) < 0 && errno != ENOENT)
		rc = dd_error_errno("cannot remove %s", k->path);
	pthread_mutex_unlock(&k->mu);
	return rc;
}
