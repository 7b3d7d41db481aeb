/*
 * store/listing.c: listings, a snapshot's streams of entries too many for
 * the manifest (a media folder); see store.h and docs/FORMAT.md §6.1.
 *
 * A listing is an ordinary stream of the snapshot (chunked, compressed,
 * encrypted; an unchanged run of entries dedupes like any data) whose
 * content is a header and then one record per entry, each encoded exactly
 * like a manifest's stream record (manifest.c). Neither side holds the
 * list: the writer encodes one record at a time into its stream writer,
 * the reader parses records out of the stream's pieces as they come.
 *
 * The reader treats the bytes as hostile, like the manifest parser: names
 * strictly increasing in path order, counts checked against the bytes the
 * listing has left (before allocating), chunk lengths adding up to each
 * entry's size, no trailing bytes, and the `entries` attribute equal to the
 * number of records. What it buffers is bounded by one record (at most a
 * name, DD_LISTING_MAX_ATTRS attributes and DD_LISTING_MAX_CHUNKS chunks,
 * and never more than the listing's own bytes) plus one piece of the stream;
 * a record's chunk list (36 bytes a chunk) is at most 36 / DD_CHUNK_MIN_LIMIT
 * of its entry's size plus 36 bytes, since every chunk but the last is at
 * least DD_CHUNK_MIN_LIMIT bytes (manifest.c).
 */
#include "store/internal.h"
#include "util/endian.h"
#include "util/err.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LISTING_MAGIC "DDLS"
#define LISTING_VERSION 1
#define LISTING_HEADER 8

struct dd_listing_writer {
	struct dd_store *st;
	int priv; /* a private snapshot's listing (dd_store_adopt_chunk) */
	struct dd_stream_writer *w;
	char *kind;
	char *prev; /* the last entry's name; NULL before the first */
	uint64_t n;
	int failed;
	struct dd_buf rec;
};

struct dd_listing_reader {
	struct dd_stream_reader *r;
	const struct dd_stream_info *si;
	uint64_t left;     /* bytes of the listing not yet taken from the stream */
	struct dd_buf buf; /* bytes at hand: buf.ptr[off, buf.len) */
	size_t off;
	struct dd_stream_info cur, prev; /* the entry handed out, and the one before */
	uint64_t count, expected;
	int started, done, failed;
};

static int
path_byte(unsigned char c)
{
	if (c == 0)
		return 0;
	return c == '/' ? 1 : c + 1;
}

int
dd_path_cmp(const char *a, const char *b)
{
	const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;

	while (*p && *p == *q)
		p++, q++;
	if (*p == *q)
		return 0;
	return path_byte(*p) < path_byte(*q) ? -1 : 1;
}

/* ---- writing ---- */

int
dd_listing_begin(struct dd_listing_writer **out, struct dd_snapshot_writer *sw, const char *name, const char *kind)
{
	struct dd_listing_writer *lw;
	uint8_t hdr[LISTING_HEADER];

	if (!kind || !*kind || strlen(kind) > DD_ATTR_VALUE_MAX)
		return dd_error("listing '%s': its kind is empty or too long", name);
	lw = dd_calloc(1, sizeof(*lw));
	if (dd_stream_begin(&lw->w, sw, name) < 0) {
		free(lw);
		return -1;
	}
	lw->st = dd_snapshot_writer_store(sw);
	lw->priv = dd_snapshot_writer_flags(sw) & DD_SNAPSHOT_PRIVATE;
	lw->kind = dd_strdup(kind);
	memcpy(hdr, LISTING_MAGIC, 4);
	dd_put_le32(hdr + 4, LISTING_VERSION);
	if (dd_stream_write(lw->w, hdr, sizeof(hdr)) < 0) {
		dd_listing_abort(lw);
		return -1;
	}
	*out = lw;
	return 0;
}

static int
kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dd_kv *)a)->key, ((const struct dd_kv *)b)->key);
}

/*
 * What the reader would refuse, refused here: name, order, counts, chunk
 * lengths against the size; and a checksum that does not match the chunks
 * (reading the entry would fail).
 */
static int
check_entry(const struct dd_listing_writer *lw, const struct dd_stream_info *e)
{
	size_t nl = strlen(e->name);
	uint64_t total = 0;
	uint8_t sum[32];

	if (nl == 0 || nl > DD_NAME_MAX)
		return dd_error("entry name '%.40s' is empty or longer than %d bytes", e->name, DD_NAME_MAX);
	if (lw->prev && dd_path_cmp(lw->prev, e->name) >= 0)
		return dd_error("entry '%s' does not come after '%s' in path order", e->name, lw->prev);
	if (e->nattrs > DD_LISTING_MAX_ATTRS || e->nchunks > DD_LISTING_MAX_CHUNKS)
		return dd_error("entry '%s' has too many attributes or chunks", e->name);
	for (size_t i = 0; i < e->nchunks; i++) {
		if (e->chunks[i].len == 0 || e->chunks[i].len > DD_CHUNK_MAX_LIMIT ||
		    (i + 1 < e->nchunks && e->chunks[i].len < DD_CHUNK_MIN_LIMIT))
			return dd_error("entry '%s': bad chunk length %u", e->name, e->chunks[i].len);
		total += e->chunks[i].len;
	}
	if (total != e->size)
		return dd_error("entry '%s': its chunks do not add up to its size", e->name);
	dd_stream_checksum(sum, lw->st->keys, e);
	if (e->nchunks && sodium_memcmp(sum, e->checksum, 32) != 0)
		return dd_error("entry '%s': its checksum does not match its chunks", e->name);
	return 0;
}

/*
 * Every chunk an entry names must be where this snapshot can keep it: one
 * reused from an earlier listing (a stash applied, then captured again) is
 * copied out of a private pack where needed, and one no pack holds any
 * more (a dropped stash's, taken by gc) is refused, never named.
 */
int
dd_listing_reuse(struct dd_listing_writer *lw, const struct dd_stream_info *entry)
{
	for (size_t i = 0; i < entry->nchunks; i++) {
		int r = dd_store_adopt_chunk(lw->st, &entry->chunks[i], lw->priv);
		if (r != 0) {
			dd_error_wrap("listing entry '%s'", entry->name);
			return r == DD_NOTFOUND ? DD_NOTFOUND : -1;
		}
	}
	return 0;
}

int
dd_listing_add(struct dd_listing_writer *lw, const struct dd_stream_info *entry)
{
	struct dd_stream_info e = *entry; /* borrowed, with its attributes sorted in a copy of the array */
	int rc = -1;

	if (lw->failed)
		return dd_error("listing: an earlier entry failed");
	if (check_entry(lw, entry) < 0)
		return dd_error_wrap("listing");
	if (dd_listing_reuse(lw, entry) != 0)
		return -1;
	if (!e.nchunks) /* no content (a folder, a link, an empty file): the checksum of nothing */
		dd_stream_checksum(e.checksum, lw->st->keys, &e);
	e.attrs = NULL;
	if (e.nattrs) {
		e.attrs = dd_calloc(e.nattrs, sizeof(*e.attrs));
		memcpy(e.attrs, entry->attrs, e.nattrs * sizeof(*e.attrs));
		qsort(e.attrs, e.nattrs, sizeof(*e.attrs), kv_cmp);
	}
	dd_buf_clear(&lw->rec);
	if (dd_stream_record_encode(&lw->rec, &e) < 0) {
		dd_error_wrap("listing entry '%s'", e.name);
		goto out;
	}
	if (dd_stream_write(lw->w, lw->rec.ptr, lw->rec.len) < 0) {
		lw->failed = 1; /* part of a record may be in the stream */
		goto out;
	}
	free(lw->prev);
	lw->prev = dd_strdup(e.name);
	lw->n++;
	rc = 0;
out:
	free(e.attrs);
	return rc;
}

static void
listing_writer_free(struct dd_listing_writer *lw)
{
	free(lw->kind);
	free(lw->prev);
	dd_buf_release(&lw->rec);
	free(lw);
}

int
dd_listing_end(struct dd_listing_writer *lw, uint64_t *entries)
{
	char n[24];
	int rc;

	if (lw->failed) {
		dd_error("listing: an entry failed");
		dd_listing_abort(lw);
		return -1;
	}
	snprintf(n, sizeof(n), "%" PRIu64, lw->n);
	dd_stream_set_attr(lw->w, "listing", lw->kind);
	dd_stream_set_attr(lw->w, "entries", n);
	rc = dd_stream_end(lw->w);
	if (rc == 0 && entries)
		*entries = lw->n;
	listing_writer_free(lw);
	return rc;
}

void
dd_listing_abort(struct dd_listing_writer *lw)
{
	if (!lw)
		return;
	dd_stream_abort(lw->w);
	listing_writer_free(lw);
}

/* ---- reading ---- */

/* A decimal count as the writer writes it: digits, no leading zero, no overflow. */
static int
parse_count(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s || (s[0] == '0' && s[1]))
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

int
dd_listing_open(struct dd_listing_reader **out, struct dd_store *st, const struct dd_stream_info *si)
{
	struct dd_listing_reader *lr;
	uint64_t expected;

	if (!dd_stream_attr(si, "listing"))
		return dd_error("stream '%s' is not a listing", si->name);
	if (parse_count(dd_stream_attr(si, "entries"), &expected) < 0)
		return dd_error("listing '%s' is damaged (bad entries attribute)", si->name);
	lr = dd_calloc(1, sizeof(*lr));
	lr->si = si;
	lr->left = si->size;
	lr->expected = expected;
	if (dd_stream_open(&lr->r, st, si) < 0) {
		free(lr);
		return -1;
	}
	*out = lr;
	return 0;
}

/* Take the stream's next piece into the buffer (the bytes already parsed dropped first). */
static int
fill(struct dd_listing_reader *lr)
{
	const void *data;
	size_t len, keep = lr->buf.len - lr->off;
	int rc;

	if (lr->off) {
		memmove(lr->buf.ptr, lr->buf.ptr + lr->off, keep);
		dd_buf_truncate(&lr->buf, keep);
		lr->off = 0;
	}
	rc = dd_stream_next(lr->r, &data, &len);
	if (rc < 0)
		return -1;
	if (rc == 0 || len > lr->left)
		return dd_error("listing '%s' is damaged (its size does not match its content)", lr->si->name);
	lr->left -= len;
	dd_buf_put(&lr->buf, data, len);
	return 0;
}

/* Have at least n bytes at hand, or fail: the listing ends before them. */
static int
want(struct dd_listing_reader *lr, size_t n)
{
	while (lr->buf.len - lr->off < n) {
		if (lr->left == 0)
			return dd_error("listing '%s' is damaged (truncated)", lr->si->name);
		if (fill(lr) < 0)
			return -1;
	}
	return 0;
}

static int
read_header(struct dd_listing_reader *lr)
{
	const uint8_t *h;

	if (want(lr, LISTING_HEADER) < 0)
		return -1;
	h = (const uint8_t *)lr->buf.ptr + lr->off;
	if (memcmp(h, LISTING_MAGIC, 4))
		return dd_error("listing '%s' is damaged (bad magic)", lr->si->name);
	if (dd_get_le32(h + 4) != LISTING_VERSION)
		return dd_error("listing '%s' has format version %u, which this git-dnadata does not read (upgrade it)",
				lr->si->name, dd_get_le32(h + 4));
	lr->off += LISTING_HEADER;
	lr->started = 1;
	return 0;
}

/* Every byte was parsed: the stream's own end (size and checksum) and the count. */
static int
finish(struct dd_listing_reader *lr)
{
	const void *data;
	size_t len;
	int rc = dd_stream_next(lr->r, &data, &len);

	if (rc < 0)
		return -1;
	if (rc > 0)
		return dd_error("listing '%s' is damaged (its size does not match its content)", lr->si->name);
	if (lr->count != lr->expected)
		return dd_error("listing '%s' is damaged (%" PRIu64 " entries, its attribute says %" PRIu64 ")",
				lr->si->name, lr->count, lr->expected);
	lr->done = 1;
	return 0;
}

/* Parse the next record into lr->cur: 1, 0 at the end, -1. */
static int
next_record(struct dd_listing_reader *lr)
{
	for (;;) {
		size_t used, at = lr->buf.len - lr->off;
		int rc;

		if (at == 0 && lr->left == 0)
			return finish(lr) < 0 ? -1 : 0;
		rc = dd_stream_record_parse(&lr->cur, &used, (const uint8_t *)lr->buf.ptr + lr->off, at, lr->left);
		if (rc < 0)
			return dd_error_wrap("listing '%s', entry %" PRIu64, lr->si->name, lr->count + 1);
		if (rc == 0) {
			lr->off += used;
			return 1;
		}
		if (want(lr, used) < 0)
			return -1;
	}
}

int
dd_listing_next(struct dd_listing_reader *lr, const struct dd_stream_info **entry)
{
	int rc;

	if (lr->failed)
		return dd_error("listing '%s' failed earlier", lr->si->name);
	if (lr->done)
		return 0;
	dd_stream_info_clear(&lr->prev);
	lr->prev = lr->cur;
	memset(&lr->cur, 0, sizeof(lr->cur));
	if (!lr->started && read_header(lr) < 0)
		goto fail;
	rc = next_record(lr);
	if (rc < 0)
		goto fail;
	if (rc == 0)
		return 0;
	if (++lr->count > lr->expected) {
		dd_error("listing '%s' is damaged (more entries than its attribute says)", lr->si->name);
		goto fail;
	}
	if (lr->prev.name && dd_path_cmp(lr->prev.name, lr->cur.name) >= 0) {
		dd_error("listing '%s' is damaged (entry '%s' out of order or repeated)", lr->si->name, lr->cur.name);
		goto fail;
	}
	*entry = &lr->cur;
	return 1;
fail:
	lr->failed = 1;
	return -1;
}

void
dd_listing_close(struct dd_listing_reader *lr)
{
	if (!lr)
		return;
	dd_stream_close(lr->r);
	dd_buf_release(&lr->buf);
	dd_stream_info_clear(&lr->cur);
	dd_stream_info_clear(&lr->prev);
	free(lr);
}

/* ---- every chunk a snapshot needs ---- */

/*
 * fn on chunk `ref`, then on its delta bases (FORMAT.md §4.3), each as
 * "base of <stream>", as far as the index files name them and at most
 * DD_DELTA_DEPTH_MAX deep (a reader opens no longer chain).
 */
static int
emit_chunk(struct dd_store *st, const struct dd_chunk_ref *ref, const char *stream,
	   int (*fn)(const struct dd_chunk_ref *ref, const char *stream, void *arg), void *arg)
{
	struct dd_delta_ref d;
	struct dd_chunk_ref base;
	struct dd_buf label = DD_BUF_INIT;
	const uint8_t *id = ref->id;
	int rc = fn(ref, stream, arg);

	for (int depth = 0; rc == 0 && depth < DD_DELTA_DEPTH_MAX && dd_store_delta_of(st, id, &d); depth++) {
		if (!label.len)
			dd_buf_printf(&label, "base of %s", stream);
		memcpy(base.id, d.base, 32);
		base.len = d.base_len;
		rc = fn(&base, label.ptr, arg);
		id = base.id; /* d is overwritten by the next lookup */
	}
	dd_buf_release(&label);
	return rc;
}

int
dd_listing_each_chunk(struct dd_store *st, const struct dd_stream_info *si,
		      int (*fn)(const struct dd_chunk_ref *ref, const char *stream, void *arg), void *arg)
{
	struct dd_listing_reader *lr;
	const struct dd_stream_info *e;
	struct dd_buf label = DD_BUF_INIT;
	int rc, stop = 0;

	if (dd_listing_open(&lr, st, si) < 0)
		return -1;
	while (!stop && (rc = dd_listing_next(lr, &e)) == 1) {
		if (!e->nchunks)
			continue;
		dd_buf_clear(&label);
		dd_buf_printf(&label, "%s/%s", si->name, e->name);
		for (size_t c = 0; c < e->nchunks && !stop; c++)
			stop = emit_chunk(st, &e->chunks[c], label.ptr, fn, arg);
	}
	if (stop)
		rc = stop;
	dd_listing_close(lr);
	dd_buf_release(&label);
	return rc;
}

int
dd_snapshot_each_chunk_flags(struct dd_store *st, const struct dd_snapshot *s, int flags,
			     int (*fn)(const struct dd_chunk_ref *ref, const char *stream, void *arg), void *arg)
{
	if (dd_store_index_load(st) < 0) /* where delta objects name their bases */
		return -1;
	for (size_t i = 0; i < s->m->nstreams; i++) {
		const struct dd_stream_info *si = &s->m->streams[i];
		int rc = 0;
		for (size_t c = 0; (flags & DD_EACH_STREAMS) && c < si->nchunks && rc == 0; c++)
			rc = emit_chunk(st, &si->chunks[c], si->name, fn, arg);
		if (rc == 0 && (flags & DD_EACH_ENTRIES) && dd_stream_attr(si, "listing")) {
			rc = dd_listing_each_chunk(st, si, fn, arg);
			if (rc < 0)
				dd_error_wrap("snapshot %.12s", s->id);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

int
dd_snapshot_each_chunk(struct dd_store *st, const struct dd_snapshot *s,
		       int (*fn)(const struct dd_chunk_ref *ref, const char *stream, void *arg), void *arg)
{
	return dd_snapshot_each_chunk_flags(st, s, DD_EACH_STREAMS | DD_EACH_ENTRIES, fn, arg);
}
