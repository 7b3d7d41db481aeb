/*
 * media/index.c: the local index of a media folder (docs/FORMAT.md §6.2),
 * <statedir>/media/<key>/index, key = BLAKE2b-128 of the folder's absolute
 * path in hex.
 *
 * Per entry, in path order: the listing entry (so an unchanged file's
 * chunks are reused without reading it) and, for a file, its size, inode,
 * mtime and ctime with nanoseconds when it matched the entry. The header
 * carries the snapshot the folder matched and a stamp from the file
 * system's clock (the ctime of the record's temporary file). A capture
 * takes it when it begins and waits for that clock to tick once before
 * reading anything, so a file whose ctime is after the stamp may have
 * changed after it was read and is not trusted (read again next time, as
 * git does with "racily clean" entries); one at or before it was read as
 * it is. A restore takes it when it has written everything.
 *
 * Written through a temporary file, fsynced and renamed; a capture leaves
 * it as `pending` until its snapshot is committed. Read as hostile input:
 * the whole file's BLAKE2b is checked in a first pass, then every field is
 * bounded and the entries must be in strict path order; a damaged record is
 * ignored with a debug line (everything is then read again), never trusted.
 */
#include "media/internal.h"
#include "store/store.h"
#include "util/endian.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IDX_MAGIC "DDMI"
#define IDX_VERSION 2
#define IDX_REGION 8     /* flags, stamp, id, root, store, nonce, h2 */
#define IDX_REGION_LEN 176 /* the patched fields, before h2 */
#define IDX_HEAD (IDX_REGION + IDX_REGION_LEN + 32) /* entries start here */
#define IDX_MAX_ATTRS 16
#define IDX_MAX_VALUE 4096
#define IDX_MAX_CHUNKS (1u << 24)

char *
media_state_dir(const struct dd_media_opts *o)
{
	uint8_t h[16];
	char hex[33], *base, *dir;

	crypto_generichash(h, sizeof(h), (const uint8_t *)o->root, strlen(o->root), NULL, 0);
	dd_hex_encode(hex, h, sizeof(h));
	base = dd_path_join(o->statedir, "media");
	dir = dd_path_join(base, hex);
	free(base);
	return dir;
}

void
idx_stat_from(struct idx_stat *s, const struct stat *st)
{
	s->size = (uint64_t)st->st_size;
	s->ino = (uint64_t)st->st_ino;
	s->mtime_s = (int64_t)st->st_mtim.tv_sec;
	s->mtime_ns = (uint32_t)st->st_mtim.tv_nsec;
	s->ctime_s = (int64_t)st->st_ctim.tv_sec;
	s->ctime_ns = (uint32_t)st->st_ctim.tv_nsec;
}

int
idx_stat_equal(const struct idx_stat *a, const struct idx_stat *b)
{
	return a->size == b->size && a->ino == b->ino && a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns &&
	       a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}

int
idx_trusted(const struct idx_header *h, const struct idx_stat *s)
{
	return s->ctime_s < h->stamp_s || (s->ctime_s == h->stamp_s && s->ctime_ns <= h->stamp_ns);
}

void
idx_stat_untrust(struct idx_stat *s)
{
	s->ctime_s = INT64_MAX;
	s->ctime_ns = 0;
}

void
idx_origin_of(struct idx_origin *o, const struct stat *root, const char *store)
{
	memset(o, 0, sizeof(*o));
	if (root) {
		o->root_dev = (uint64_t)root->st_dev;
		o->root_ino = (uint64_t)root->st_ino;
	}
	if (store)
		snprintf(o->store, sizeof(o->store), "%s", store);
}

int
idx_same_origin(const struct idx_header *h, const struct stat *root, const char *store)
{
	struct idx_origin o;

	idx_origin_of(&o, root, store);
	if (h->origin.root_dev != o.root_dev || h->origin.root_ino != o.root_ino) {
		dd_debug("media index ignored: it records another folder at this path");
		return 0;
	}
	if (store && strcmp(h->origin.store, o.store)) {
		dd_debug("media index ignored: it was written for another store (or another key)");
		return 0;
	}
	return 1;
}

/* ---- reading ---- */
struct idx_reader {
	FILE *f;
	char *path;
	struct idx_header h;
	uint64_t left;   /* bytes of entries and trailer not yet read */
	uint64_t count;
	char *prev;
	struct idx_entry e;
	int done;
};

/* h2 = BLAKE2b-256(region bytes flags..id ‖ H1): binds the patched header to the entries. */
static void
region_hash(uint8_t out[32], const uint8_t region[IDX_REGION_LEN], const uint8_t h1[32])
{
	crypto_generichash_state s;

	crypto_generichash_init(&s, NULL, 0, 32);
	crypto_generichash_update(&s, region, IDX_REGION_LEN);
	crypto_generichash_update(&s, h1, 32);
	crypto_generichash_final(&s, out, 32);
}

/* A 64-hex field that may be all zero (none). */
static int
get_hex_field(char out[65], const uint8_t *p)
{
	memcpy(out, p, 64);
	out[64] = 0;
	if (out[0] == 0) {
		for (int i = 0; i < 64; i++)
			if (p[i])
				return -1;
		return 0;
	}
	return dd_is_hex(out, 64) ? 0 : -1;
}

/* The region: flags 4, stamp 8+4, id 64, root dev 8, root inode 8, store 64, nonce 16. */
static int
parse_region(struct idx_header *h, const uint8_t *r)
{
	memset(h, 0, sizeof(*h));
	h->flags = dd_get_le32(r);
	h->stamp_s = (int64_t)dd_get_le64(r + 4);
	h->stamp_ns = dd_get_le32(r + 12);
	if (get_hex_field(h->id, r + 16) < 0)
		return dd_error("bad snapshot id");
	h->origin.root_dev = dd_get_le64(r + 80);
	h->origin.root_ino = dd_get_le64(r + 88);
	if (get_hex_field(h->origin.store, r + 96) < 0)
		return dd_error("bad store identity");
	memcpy(h->nonce, r + 160, sizeof(h->nonce));
	return 0;
}

/* First pass: the header's fields and both hashes. 0, or -1 with the reason for the debug line. */
static int
verify_file(FILE *f, uint64_t size, struct idx_header *h)
{
	uint8_t head[IDX_HEAD], h1[32], trailer[32], h2[32], buf[65536];
	crypto_generichash_state s;
	uint64_t left;

	if (size < IDX_HEAD + 1 + 8 + 32 || fread(head, 1, IDX_HEAD, f) != IDX_HEAD)
		return dd_error("too short");
	if (memcmp(head, IDX_MAGIC, 4) || dd_get_le32(head + 4) != IDX_VERSION)
		return dd_error("not a version %d record", IDX_VERSION);
	crypto_generichash_init(&s, NULL, 0, 32);
	crypto_generichash_update(&s, head, IDX_REGION);
	for (left = size - IDX_HEAD - 32; left;) {
		size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		if (fread(buf, 1, n, f) != n)
			return dd_error("short read");
		crypto_generichash_update(&s, buf, n);
		left -= n;
	}
	if (fread(trailer, 1, 32, f) != 32)
		return dd_error("short read");
	crypto_generichash_final(&s, h1, 32);
	if (sodium_memcmp(h1, trailer, 32))
		return dd_error("checksum mismatch");
	region_hash(h2, head + IDX_REGION, h1);
	if (sodium_memcmp(h2, head + IDX_REGION + IDX_REGION_LEN, 32))
		return dd_error("header checksum mismatch");
	if (parse_region(h, head + IDX_REGION) < 0)
		return -1;
	if (h->stamp_ns >= 1000000000u)
		return dd_error("bad stamp");
	return 0;
}

int
idx_open(struct idx_reader **out, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	FILE *f;

	*out = NULL;
	if (fd < 0) {
		if (errno != ENOENT)
			dd_debug("media index %s ignored: %s", path, strerror(errno));
		return DD_NOTFOUND;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(f = fdopen(fd, "rb"))) {
		dd_debug("media index %s ignored: not a readable file", path);
		close(fd);
		return DD_NOTFOUND;
	}
	return idx_open_stream(out, f, (uint64_t)st.st_size, path);
}

int
idx_open_stream(struct idx_reader **out, FILE *f, uint64_t size, const char *path)
{
	struct idx_reader *r = dd_calloc(1, sizeof(*r));

	*out = NULL;
	r->f = f;
	r->path = dd_strdup(path);
	if (verify_file(f, size, &r->h) < 0 || fseeko(f, IDX_HEAD, SEEK_SET) < 0) {
		dd_debug("media index %s ignored (every file is read again): %s", path, dd_error_last());
		dd_error_clear();
		idx_close(r);
		return DD_NOTFOUND;
	}
	r->left = size - IDX_HEAD;
	*out = r;
	return 0;
}

const struct idx_header *
idx_header(const struct idx_reader *r)
{
	return &r->h;
}

static int
get(struct idx_reader *r, void *p, size_t n)
{
	if (r->left < n || fread(p, 1, n, r->f) != n)
		return -1;
	r->left -= n;
	return 0;
}

static int
get32(struct idx_reader *r, uint32_t *v)
{
	uint8_t b[4];

	if (get(r, b, 4) < 0)
		return -1;
	*v = dd_get_le32(b);
	return 0;
}

static int
get64(struct idx_reader *r, uint64_t *v)
{
	uint8_t b[8];

	if (get(r, b, 8) < 0)
		return -1;
	*v = dd_get_le64(b);
	return 0;
}

static int
get_str(struct idx_reader *r, char **out, size_t min, size_t max)
{
	uint32_t n;

	if (get32(r, &n) < 0 || n < min || n > max || n > r->left)
		return -1;
	*out = dd_malloc((size_t)n + 1);
	if (get(r, *out, n) < 0)
		return -1;
	(*out)[n] = 0;
	return strlen(*out) == n ? 0 : -1;
}

static int
read_stat(struct idx_reader *r, struct idx_stat *s)
{
	uint64_t a, b;
	uint32_t an, bn;

	if (get64(r, &s->size) < 0 || get64(r, &s->ino) < 0 || get64(r, &a) < 0 || get32(r, &an) < 0 ||
	    get64(r, &b) < 0 || get32(r, &bn) < 0 || an >= 1000000000u || bn >= 1000000000u)
		return -1;
	s->mtime_s = (int64_t)a, s->mtime_ns = an, s->ctime_s = (int64_t)b, s->ctime_ns = bn;
	return 0;
}

/*
 * An entry a listing could hold (media_checker_add's rules on the entry
 * itself: known type, type/mode/mtime/target attributes as they must be,
 * no content but a file's). A capture copies a reused entry into its
 * listing as it is, and a restore refuses the whole snapshot for one such
 * entry. Checked on the last component, so that the directory stack of a
 * whole listing is not needed (the path is checked by the caller).
 */
static int
check_listed(const struct dd_stream_info *si)
{
	struct media_checker c = { 0 };
	struct dd_stream_info last = *si;
	const char *slash = strrchr(si->name, '/');
	int rc;

	last.name = (char *)(slash ? slash + 1 : si->name);
	rc = media_checker_add(&c, &last);
	media_checker_release(&c);
	return rc;
}

/* One entry after its 'E' tag; -1 on anything the writer would not produce. */
static int
read_entry(struct idx_reader *r, struct idx_entry *e)
{
	struct dd_stream_info *si = &e->info;
	uint32_t nattrs;
	uint64_t nchunks, sum = 0;

	if (get_str(r, &si->name, 1, DD_NAME_MAX) < 0 || get32(r, &nattrs) < 0 || nattrs > IDX_MAX_ATTRS)
		return -1;
	si->attrs = dd_calloc(nattrs ? nattrs : 1, sizeof(*si->attrs));
	for (uint32_t i = 0; i < nattrs; i++) {
		si->nattrs = i + 1;
		if (get_str(r, &si->attrs[i].key, 1, DD_ATTR_KEY_MAX) < 0 ||
		    get_str(r, &si->attrs[i].value, 0, IDX_MAX_VALUE) < 0)
			return -1;
		if (i && strcmp(si->attrs[i - 1].key, si->attrs[i].key) >= 0)
			return -1;
	}
	if (get64(r, &si->size) < 0 || get(r, si->checksum, 32) < 0 || get64(r, &nchunks) < 0 ||
	    nchunks > IDX_MAX_CHUNKS || nchunks * 36 > r->left)
		return -1;
	si->chunks = dd_calloc(nchunks ? nchunks : 1, sizeof(*si->chunks));
	si->nchunks = (size_t)nchunks;
	for (uint64_t i = 0; i < nchunks; i++) {
		if (get(r, si->chunks[i].id, 32) < 0 || get32(r, &si->chunks[i].len) < 0)
			return -1;
		if (si->chunks[i].len == 0 || si->chunks[i].len > (64u << 20))
			return -1;
		sum += si->chunks[i].len;
	}
	if (sum != si->size || read_stat(r, &e->st) < 0)
		return -1;
	if (media_check_path(si->name) < 0 || (r->prev && dd_path_cmp(r->prev, si->name) >= 0) ||
	    check_listed(si) < 0) {
		dd_error_clear();
		return -1;
	}
	return 0;
}

int
idx_next(struct idx_reader *r, const struct idx_entry **out)
{
	uint8_t tag;
	uint64_t count;

	dd_stream_info_clear(&r->e.info);
	if (r->done)
		return 0;
	if (get(r, &tag, 1) < 0)
		goto damaged;
	if (tag == 'Z') {
		r->done = 1;
		if (get64(r, &count) < 0 || count != r->count || r->left != 32)
			goto damaged;
		return 0;
	}
	if (tag != 'E' || read_entry(r, &r->e) < 0)
		goto damaged;
	free(r->prev);
	r->prev = dd_strdup(r->e.info.name);
	r->count++;
	*out = &r->e;
	return 1;
damaged:
	r->done = 1;
	dd_stream_info_clear(&r->e.info);
	dd_debug("media index %s: malformed after %llu entries; the rest is read again", r->path,
		 (unsigned long long)r->count);
	return 0;
}

void
idx_close(struct idx_reader *r)
{
	if (!r)
		return;
	if (r->f)
		fclose(r->f);
	dd_stream_info_clear(&r->e.info);
	free(r->prev);
	free(r->path);
	free(r);
}

const struct idx_entry *
idx_find(struct idx_cursor *c, const char *path)
{
	if (!c->r)
		return NULL;
	for (;;) {
		if (!c->cur && !c->done) {
			if (idx_next(c->r, &c->cur) != 1) {
				c->cur = NULL;
				c->done = 1;
			}
		}
		if (!c->cur)
			return NULL;
		int d = dd_path_cmp(c->cur->info.name, path);
		if (d == 0)
			return c->cur;
		if (d > 0)
			return NULL;
		c->cur = NULL; /* behind: read on */
	}
}

/* ---- writing ---- */
struct idx_writer {
	char *dir, *tmp;
	int fd;
	struct dd_buf buf;
	crypto_generichash_state h;
	uint64_t count;
	struct idx_header hd; /* the region written at the end */
};

static void
put32(struct dd_buf *b, uint32_t v)
{
	uint8_t x[4];

	dd_put_le32(x, v);
	dd_buf_put(b, x, 4);
}

static void
put64(struct dd_buf *b, uint64_t v)
{
	uint8_t x[8];

	dd_put_le64(x, v);
	dd_buf_put(b, x, 8);
}

static void
put_str(struct dd_buf *b, const char *s)
{
	put32(b, (uint32_t)strlen(s));
	dd_buf_puts(b, s);
}

/* Hash and write what is buffered (all of it, or once it is large). */
static int
flush(struct idx_writer *w, int all)
{
	if (!w->buf.len || (!all && w->buf.len < (1u << 20)))
		return 0;
	crypto_generichash_update(&w->h, (const uint8_t *)w->buf.ptr, w->buf.len);
	if (dd_write_all(w->fd, w->buf.ptr, w->buf.len) < 0)
		return dd_error_errno("writing %s", w->tmp);
	dd_buf_clear(&w->buf);
	return 0;
}

/*
 * Temporary records of killed runs go: a live run holds an flock on its
 * own (idx_writer_new), so an unlocked one an hour old is a killed run's.
 */
static void
remove_stale(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	time_t now = time(NULL);

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		int fd;
		if (strncmp(de->d_name, ".index-", 7) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISREG(st.st_mode) || st.st_mtime >= now - 3600)
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) /* locked: a live run's (it may have slept for an hour) */
			unlinkat(dirfd(d), de->d_name, 0);
		close(fd);
	}
	closedir(d);
}

/*
 * Wait until the file system's clock (the ctime `fd` gets when touched)
 * has moved past `stamp`: at most one tick of that clock (a few ms). What
 * is read after this was modified at or before `stamp`, or shows a later
 * ctime.
 */
static void
wait_tick(int fd, const struct timespec *stamp)
{
	struct timespec pause = { 0, 200000 };
	struct stat st;

	for (int i = 0; i < 1000; i++) {
		if (futimens(fd, NULL) < 0 || fstat(fd, &st) < 0)
			return;
		if (st.st_ctim.tv_sec > stamp->tv_sec ||
		    (st.st_ctim.tv_sec == stamp->tv_sec && st.st_ctim.tv_nsec > stamp->tv_nsec))
			return;
		nanosleep(&pause, NULL);
	}
}

int
idx_writer_new(struct idx_writer **out, const char *dir)
{
	struct idx_writer *w;
	struct stat st;
	uint8_t zero[IDX_HEAD - IDX_REGION] = { 0 };

	if (dd_mkdir_p(dir, 0700) < 0)
		return -1;
	remove_stale(dir);
	w = dd_calloc(1, sizeof(*w));
	w->dir = dd_strdup(dir);
	w->tmp = dd_path_join(dir, ".index-XXXXXX");
	w->fd = mkostemp(w->tmp, O_CLOEXEC);
	if (w->fd < 0 || flock(w->fd, LOCK_EX | LOCK_NB) < 0 || fstat(w->fd, &st) < 0) {
		dd_error_errno("cannot create a media index in %s", dir);
		idx_writer_abort(w);
		return -1;
	}
	w->hd.stamp_s = (int64_t)st.st_ctim.tv_sec;
	w->hd.stamp_ns = (uint32_t)st.st_ctim.tv_nsec;
	randombytes_buf(w->hd.nonce, sizeof(w->hd.nonce));
	wait_tick(w->fd, &st.st_ctim);
	crypto_generichash_init(&w->h, NULL, 0, 32);
	dd_buf_put(&w->buf, IDX_MAGIC, 4);
	put32(&w->buf, IDX_VERSION);
	crypto_generichash_update(&w->h, (const uint8_t *)w->buf.ptr, w->buf.len);
	/* the region (flags, stamp, id, h2) is written at the end, outside H1 */
	if (dd_write_all(w->fd, w->buf.ptr, w->buf.len) < 0 || dd_write_all(w->fd, zero, sizeof(zero)) < 0) {
		dd_error_errno("writing %s", w->tmp);
		idx_writer_abort(w);
		return -1;
	}
	dd_buf_clear(&w->buf);
	*out = w;
	return 0;
}

void
idx_writer_restamp(struct idx_writer *w)
{
	struct stat st;

	/* touching the file sets its ctime to the file system's clock now */
	if (futimens(w->fd, NULL) == 0 && fstat(w->fd, &st) == 0) {
		w->hd.stamp_s = (int64_t)st.st_ctim.tv_sec;
		w->hd.stamp_ns = (uint32_t)st.st_ctim.tv_nsec;
	}
}

void
idx_writer_wait_past(struct idx_writer *w, const struct timespec *t)
{
	wait_tick(w->fd, t);
}

void
idx_writer_set_origin(struct idx_writer *w, const struct idx_origin *o)
{
	w->hd.origin = *o;
}

void
idx_writer_nonce(const struct idx_writer *w, uint8_t nonce[16])
{
	memcpy(nonce, w->hd.nonce, 16);
}

static int
kv_cmp(const void *x, const void *y)
{
	return strcmp((*(const struct dd_kv *const *)x)->key, (*(const struct dd_kv *const *)y)->key);
}

int
idx_writer_add(struct idx_writer *w, const struct dd_stream_info *e, const struct idx_stat *st)
{
	struct dd_buf *b = &w->buf;

	dd_buf_putc(b, 'E');
	put_str(b, e->name);
	const struct dd_kv *kv[IDX_MAX_ATTRS];

	if (e->nattrs > IDX_MAX_ATTRS)
		return dd_error("media entry '%s' has too many attributes", e->name);
	for (size_t i = 0; i < e->nattrs; i++)
		kv[i] = &e->attrs[i];
	qsort(kv, e->nattrs, sizeof(*kv), kv_cmp); /* one encoding: keys sorted */
	put32(b, (uint32_t)e->nattrs);
	for (size_t i = 0; i < e->nattrs; i++) {
		put_str(b, kv[i]->key);
		put_str(b, kv[i]->value);
	}
	put64(b, e->size);
	dd_buf_put(b, e->checksum, 32);
	put64(b, e->nchunks);
	for (size_t i = 0; i < e->nchunks; i++) {
		dd_buf_put(b, e->chunks[i].id, 32);
		put32(b, e->chunks[i].len);
	}
	put64(b, st->size);
	put64(b, st->ino);
	put64(b, (uint64_t)st->mtime_s);
	put32(b, st->mtime_ns);
	put64(b, (uint64_t)st->ctime_s);
	put32(b, st->ctime_ns);
	w->count++;
	return flush(w, 0);
}

/* The patched part of the header (parse_region's fields), then h2. */
static void
make_region(uint8_t region[IDX_REGION_LEN + 32], const struct idx_header *h, const uint8_t h1[32])
{
	memset(region, 0, IDX_REGION_LEN + 32);
	dd_put_le32(region, h->flags);
	dd_put_le64(region + 4, (uint64_t)h->stamp_s);
	dd_put_le32(region + 12, h->stamp_ns);
	memcpy(region + 16, h->id, strlen(h->id) > 64 ? 64 : strlen(h->id));
	dd_put_le64(region + 80, h->origin.root_dev);
	dd_put_le64(region + 88, h->origin.root_ino);
	memcpy(region + 96, h->origin.store, strlen(h->origin.store) > 64 ? 64 : strlen(h->origin.store));
	memcpy(region + 160, h->nonce, 16);
	region_hash(region + IDX_REGION_LEN, region, h1);
}

int
idx_writer_finish(struct idx_writer *w, const char *name, uint32_t flags, const char *id)
{
	uint8_t h1[32], region[IDX_REGION_LEN + 32];
	char *final = NULL;
	int rc = -1;

	dd_buf_putc(&w->buf, 'Z');
	put64(&w->buf, w->count);
	if (flush(w, 1) < 0)
		goto out;
	crypto_generichash_final(&w->h, h1, 32);
	w->hd.flags = flags;
	snprintf(w->hd.id, sizeof(w->hd.id), "%s", id);
	make_region(region, &w->hd, h1);
	if (dd_write_all(w->fd, h1, 32) < 0 || pwrite(w->fd, region, sizeof(region), IDX_REGION) != sizeof(region) ||
	    fsync(w->fd) < 0) {
		dd_error_errno("writing %s", w->tmp);
		goto out;
	}
	final = dd_path_join(w->dir, name);
	if (rename(w->tmp, final) < 0) {
		dd_error_errno("cannot rename %s", w->tmp);
		goto out;
	}
	free(w->tmp);
	w->tmp = NULL;
	rc = dd_fsync_dir(w->dir);
out:
	free(final);
	idx_writer_abort(w);
	return rc;
}

void
idx_writer_abort(struct idx_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp)
		unlink(w->tmp);
	free(w->tmp);
	free(w->dir);
	dd_buf_release(&w->buf);
	free(w);
}

int
idx_commit_pending(const char *dir, uint32_t flags, const char *id, const uint8_t nonce[16])
{
	char *pending = dd_path_join(dir, "pending"), *index = dd_path_join(dir, "index");
	uint8_t head[IDX_HEAD], h1[32], region[IDX_REGION_LEN + 32];
	struct idx_header h;
	struct stat st;
	int rc = -1, fd = open(pending, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		rc = errno == ENOENT ? DD_NOTFOUND : dd_error_errno("cannot open %s", pending);
		goto out;
	}
	if (fstat(fd, &st) < 0 || st.st_size < IDX_HEAD + 32 || pread(fd, head, IDX_HEAD, 0) != IDX_HEAD ||
	    pread(fd, h1, 32, st.st_size - 32) != 32) {
		dd_error("%s is damaged", pending);
		goto out;
	}
	if (memcmp(head, IDX_MAGIC, 4) || dd_get_le32(head + 4) != IDX_VERSION || parse_region(&h, head + IDX_REGION) < 0) {
		dd_error("%s is damaged", pending);
		goto out;
	}
	if (sodium_memcmp(h.nonce, nonce, 16)) { /* another run's capture (killed, or racing this one) */
		dd_debug("media: %s is another capture's: not committed", pending);
		rc = DD_NOTFOUND;
		goto out;
	}
	h.flags = flags;
	snprintf(h.id, sizeof(h.id), "%s", id);
	make_region(region, &h, h1);
	if (pwrite(fd, region, sizeof(region), IDX_REGION) != sizeof(region) || fsync(fd) < 0) {
		dd_error_errno("writing %s", pending);
		goto out;
	}
	if (rename(pending, index) < 0) {
		dd_error_errno("cannot rename %s", pending);
		goto out;
	}
	rc = dd_fsync_dir(dir);
out:
	if (fd >= 0)
		close(fd);
	free(pending);
	free(index);
	return rc;
}
