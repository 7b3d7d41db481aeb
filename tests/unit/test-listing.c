/*
 * tests/unit/test-listing.c: listings (store.h "listings", docs/FORMAT.md
 * §6.1) and private snapshots (store.h, §3.5) on a file:// store: path
 * order, a round trip of 100,000 entries in constant memory, records longer
 * than a piece of the stream, detached content streams, each refusal of
 * the writer and of the reader (hostile listings written as raw streams),
 * the one-record codec alone; push, fetch, verify and the cache's gc plan
 * following a listing's entries; private snapshots kept out of the store,
 * out of public packs and out of status's pending uploads, and ranked by
 * gc like a named snapshot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "store-testlib.h"
#include "store-fx.h"
#include "store/internal.h"
#include "util/endian.h"
#include "util/err.h"
#include "util/log.h"

#include "asan-no-quarantine.h" /* the memory test measures live memory */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long
maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void
path_order_puts_a_folder_before_its_siblings(void **state)
{
	(void)state;
	assert_true(dd_path_cmp("a", "a/b") < 0);
	assert_true(dd_path_cmp("a/b", "a.b") < 0);   /* '/' before '.' (strcmp says the opposite) */
	assert_true(dd_path_cmp("a/z", "a-b") < 0);
	assert_true(dd_path_cmp("a/b/c", "a/b0") < 0);
	assert_true(dd_path_cmp("a\x01", "a/") > 0);  /* '/' before every byte, even 0x01 */
	assert_true(dd_path_cmp("a/\xff", "a0") < 0); /* bytes compare unsigned */
	assert_true(dd_path_cmp("\xc3\xa9", "z") > 0);
	assert_int_equal(dd_path_cmp("x/y", "x/y"), 0);
	assert_true(dd_path_cmp("b", "a/c") > 0);
}

/* Entry i of the big listing: its name, written so that the names come in path order for increasing i. */
static void
big_name(char *out, size_t cap, uint64_t i)
{
	snprintf(out, cap, "d%03" PRIu64 "/f%05" PRIu64 ".jpg", i / 1000, i);
}

static void
big_entry(struct dd_stream_info *e, char *name, struct dd_kv *kv, char *mtime, const struct dd_stream_info *content,
	  uint64_t i)
{
	memset(e, 0, sizeof(*e));
	big_name(name, 64, i);
	snprintf(mtime, 32, "%" PRIu64 ".000000123", 1700000000 + i);
	kv[0] = (struct dd_kv){ "type", "file" };
	kv[1] = (struct dd_kv){ "mtime", mtime }; /* given out of order: the writer sorts */
	kv[2] = (struct dd_kv){ "mode", "644" };
	e->name = name;
	e->attrs = kv;
	e->nattrs = 3;
	if (i % 7 == 0) { /* one in seven shares one real content */
		e->size = content->size;
		memcpy(e->checksum, content->checksum, 32);
		e->chunks = content->chunks;
		e->nchunks = content->nchunks;
	}
}

static void
content_of(struct dd_snapshot_writer *sw, struct dd_stream_info *info, const char *text)
{
	struct dd_stream_writer *w;

	memset(info, 0, sizeof(*info));
	CHECK(dd_content_begin(&w, sw));
	CHECK(dd_stream_write(w, text, strlen(text)));
	CHECK(dd_content_end(w, info));
}

static void
read_all(struct dd_store *st, const struct dd_stream_info *si, struct dd_buf *out)
{
	struct dd_stream_reader *r;
	const void *d;
	size_t n;
	int rc;

	dd_buf_clear(out);
	CHECK(dd_stream_open(&r, st, si));
	while ((rc = dd_stream_next(r, &d, &n)) == 1)
		dd_buf_put(out, d, n);
	CHECK(rc);
	dd_stream_close(r);
}

static void
write_big(struct fx *f, uint64_t n, char id[DD_ID_HEX_SIZE])
{
	struct dd_snapshot_writer *sw;
	struct dd_listing_writer *lw;
	struct dd_stream_info content, e;
	struct dd_kv kv[3];
	char name[64], mtime[32];
	uint64_t count = 0;
	int rc;

	CHECK(dd_snapshot_begin(&sw, f->st));
	content_of(sw, &content, "the one photo many entries share\n");
	CHECK(dd_listing_begin(&lw, sw, "media", "media"));
	for (uint64_t i = 0; i < n; i++) {
		big_entry(&e, name, kv, mtime, &content, i);
		CHECK(dd_listing_add(lw, &e));
	}
	CHECK(dd_listing_end(lw, &count));
	assert_int_equal(count, n);
	rc = dd_snapshot_commit(sw, id);
	assert_true(rc == 0 || rc == DD_EXISTS);
	free(content.chunks);
}

static void
read_big(struct fx *f, uint64_t n, const char *id)
{
	struct dd_snapshot *s;
	struct dd_listing_reader *lr;
	const struct dd_stream_info *si, *e;
	char name[64];
	struct dd_buf text = DD_BUF_INIT;
	uint64_t i = 0;
	int rc;

	CHECK(dd_snapshot_load(&s, f->st, id));
	si = dd_snapshot_find(s, "media");
	assert_non_null(si);
	assert_string_equal(dd_stream_attr(si, "listing"), "media");
	if (n == 100000)
		print_message("a listing of 100,000 entries: %" PRIu64 " bytes in %zu chunks\n", si->size, si->nchunks);
	CHECK(dd_listing_open(&lr, f->st, si));
	while ((rc = dd_listing_next(lr, &e)) == 1) {
		big_name(name, sizeof(name), i);
		assert_string_equal(e->name, name);
		assert_string_equal(e->attrs[0].key, "mode"); /* sorted */
		assert_string_equal(dd_stream_attr(e, "type"), "file");
		if (i % 7 == 0) {
			assert_int_equal(e->nchunks, 1);
			if (i % 7000 == 0) {
				read_all(f->st, e, &text);
				assert_memory_equal(text.ptr, "the one photo many entries share\n", text.len);
			}
		} else {
			assert_int_equal(e->nchunks, 0);
			assert_int_equal(e->size, 0);
		}
		i++;
	}
	CHECK(rc);
	assert_int_equal(i, n);
	assert_int_equal(dd_listing_next(lr, &e), 0); /* stays at the end */
	dd_listing_close(lr);
	dd_snapshot_free(s);
	dd_buf_release(&text);
}

/*
 * Memory: a round of 20,000 entries warms the pool, chunk buffers and
 * packer up (a listing of 3 MB: several chunks, read 4 ahead). Rounds of
 * 100,000 and 300,000 entries then must not raise the peak by what a list
 * would cost: 300,000 decoded entries take ~100 MB (the struct, a name,
 * three attributes, six strings; leaking each entry measured 117 MB).
 * What the data path holds in flight varies with thread timing (measured
 * here: 5-10 MB over the warm-up, 8-13 MB after 1,000,000 entries), so the
 * bound is 24 MB. The same entries again dedupe to the same snapshot.
 */
static void
listing_of_100000_entries_round_trips_in_constant_memory(void **state)
{
	struct fx *f = *state;
	char id[DD_ID_HEX_SIZE], id2[DD_ID_HEX_SIZE];
	long before, mid, after;
	double t0, t1;

	write_big(f, 20000, id);
	read_big(f, 20000, id);
	before = maxrss_kib();
	t0 = now_s();
	write_big(f, 100000, id);
	t1 = now_s();
	read_big(f, 100000, id);
	print_message("100,000 entries: written in %.2f s, read in %.2f s\n", t1 - t0, now_s() - t1);
	mid = maxrss_kib();
	write_big(f, 300000, id2);
	read_big(f, 300000, id2);
	after = maxrss_kib();
	print_message("peak rss %ld KiB; over the warm-up: %ld KiB after 100,000 entries, %ld after 300,000\n", after,
		      mid - before, after - before);
	assert_true(after - before < 24 * 1024);
	write_big(f, 100000, id2);
	assert_string_equal(id, id2);
}

/* Entries whose records are longer than any chunk (2 MiB), so each straddles several pieces of the stream. */
static void
records_longer_than_a_piece_round_trip(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot_writer *sw;
	struct dd_stream_writer *w;
	struct dd_buf raw = DD_BUF_INIT;
	struct dd_snapshot *s;
	struct dd_listing_reader *lr;
	const struct dd_stream_info *e;
	struct dd_stream_info in;
	char id[DD_ID_HEX_SIZE], name[DD_NAME_MAX + 1];
	size_t nch = 70000; /* 70,000 * 36 bytes: 2.5 MB per record */
	int rc, k = 0;

	memset(&in, 0, sizeof(in));
	in.chunks = calloc(nch, sizeof(*in.chunks));
	for (size_t i = 0; i < nch; i++) {
		in.chunks[i].len = DD_CHUNK_MIN_LIMIT + (uint32_t)(i % 100);
		in.chunks[i].id[0] = (uint8_t)i, in.chunks[i].id[1] = (uint8_t)(i >> 8);
		in.size += in.chunks[i].len;
	}
	in.nchunks = nch;
	in.name = name;
	dd_stream_checksum(in.checksum, f->st->keys, &in);
	/* written as the writer would, by hand: the made-up chunks are in no pack, which dd_listing_add refuses */
	dd_buf_put(&raw, "DDLS\1\0\0\0", 8);
	for (int i = 0; i < 5; i++) {
		memset(name, 'a' + i, DD_NAME_MAX); /* the longest name there may be */
		name[DD_NAME_MAX] = 0;
		CHECK(dd_stream_record_encode(&raw, &in));
	}
	CHECK(dd_snapshot_begin(&sw, f->st));
	CHECK(dd_stream_begin(&w, sw, "big"));
	CHECK(dd_stream_write(w, raw.ptr, raw.len));
	dd_stream_set_attr(w, "listing", "media");
	dd_stream_set_attr(w, "entries", "5");
	CHECK(dd_stream_end(w));
	dd_buf_release(&raw);
	assert_int_equal(dd_snapshot_commit(sw, id), 0);
	CHECK(dd_snapshot_load(&s, f->st, id));
	CHECK(dd_listing_open(&lr, f->st, dd_snapshot_find(s, "big")));
	while ((rc = dd_listing_next(lr, &e)) == 1) {
		assert_int_equal(strlen(e->name), DD_NAME_MAX);
		assert_int_equal(e->name[0], 'a' + k);
		assert_int_equal(e->nchunks, nch);
		assert_memory_equal(e->chunks, in.chunks, nch * sizeof(*in.chunks));
		k++;
	}
	CHECK(rc);
	assert_int_equal(k, 5);
	dd_listing_close(lr);
	dd_snapshot_free(s);
	free(in.chunks);
}

/* Several detached contents open at once, written interleaved, each read back through its entry. */
static void
content_streams_open_together_read_back_through_their_entries(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot_writer *sw;
	struct dd_stream_writer *w[3];
	struct dd_stream_info info[3];
	struct dd_listing_writer *lw;
	struct dd_snapshot *s;
	struct dd_listing_reader *lr;
	const struct dd_stream_info *e;
	struct dd_buf got = DD_BUF_INIT, want[3] = { DD_BUF_INIT, DD_BUF_INIT, DD_BUF_INIT };
	struct gen g = { 7, 3u << 20, NULL, 0 };
	uint8_t *piece = malloc(65536);
	char id[DD_ID_HEX_SIZE], name[3][8];

	CHECK(dd_snapshot_begin(&sw, f->st));
	for (int k = 0; k < 3; k++)
		CHECK(dd_content_begin(&w[k], sw));
	for (uint64_t off = 0; off < g.size; off += 65536) {
		for (int k = 0; k < 3; k++) {
			struct gen gk = g;
			gk.seed = g.seed + (uint64_t)k;
			gen_fill(&gk, piece, off, 65536);
			CHECK(dd_stream_write(w[k], piece, 65536 - (size_t)k)); /* sizes differ */
			dd_buf_put(&want[k], piece, 65536 - (size_t)k);
		}
	}
	CHECK(dd_listing_begin(&lw, sw, "media", "media"));
	for (int k = 0; k < 3; k++) {
		memset(&info[k], 0, sizeof(info[k]));
		snprintf(name[k], sizeof(name[k]), "f%d", k);
		info[k].name = name[k];
		CHECK(dd_content_end(w[k], &info[k]));
		assert_true(info[k].nchunks > 1);
		CHECK(dd_listing_add(lw, &info[k]));
		free(info[k].chunks);
	}
	CHECK(dd_listing_end(lw, NULL));
	assert_int_equal(dd_snapshot_commit(sw, id), 0);
	CHECK(dd_snapshot_load(&s, f->st, id));
	assert_int_equal(dd_snapshot_count(s), 1); /* contents are no streams of the manifest */
	CHECK(dd_listing_open(&lr, f->st, dd_snapshot_find(s, "media")));
	for (int k = 0; k < 3; k++) {
		assert_int_equal(dd_listing_next(lr, &e), 1);
		read_all(f->st, e, &got);
		assert_int_equal(got.len, want[k].len);
		assert_memory_equal(got.ptr, want[k].ptr, got.len);
	}
	assert_int_equal(dd_listing_next(lr, &e), 0);
	dd_listing_close(lr);
	dd_snapshot_free(s);
	for (int k = 0; k < 3; k++)
		dd_buf_release(&want[k]);
	dd_buf_release(&got);
	free(piece);
}

static void
add_expect(struct dd_store *st, struct dd_listing_writer *lw, const char *name, struct dd_kv *kv, size_t nkv,
	   uint64_t size, struct dd_chunk_ref *ch, size_t nch, const char *msg)
{
	struct dd_stream_info e = { .name = (char *)name, .attrs = kv, .nattrs = nkv, .size = size, .chunks = ch,
				    .nchunks = nch };
	int rc;

	dd_stream_checksum(e.checksum, st->keys, &e);
	if (msg && !strcmp(msg, "checksum does not match"))
		e.checksum[5] ^= 1;
	rc = dd_listing_add(lw, &e);
	if (!msg) {
		CHECK(rc);
		return;
	}
	assert_int_equal(rc, -1);
	if (!strstr(dd_error_last(), msg))
		fail_msg("expected '%s', got '%s'", msg, dd_error_last());
}

static void
writer_refuses_bad_entries(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot_writer *sw;
	struct dd_listing_writer *lw;
	struct dd_kv dup[2] = { { "mode", "644" }, { "mode", "600" } };
	struct dd_chunk_ref ch[2] = { { { 1 }, 10 }, { { 2 }, 0 } };
	struct dd_chunk_ref tiny[2] = { { { 1 }, 10 }, { { 2 }, 100 } };
	struct dd_stream_writer *w;
	struct dd_stream_info real;
	char *longname = calloc(1, DD_NAME_MAX + 2);
	uint64_t n;
	char id[DD_ID_HEX_SIZE];

	memset(longname, 'x', DD_NAME_MAX + 1);
	memset(&real, 0, sizeof(real));
	CHECK(dd_snapshot_begin(&sw, f->st));
	CHECK(dd_listing_begin(&lw, sw, "media", "media"));
	add_expect(f->st, lw, "", NULL, 0, 0, NULL, 0, "empty or longer");
	add_expect(f->st, lw, longname, NULL, 0, 0, NULL, 0, "empty or longer");
	add_expect(f->st, lw, "a.b", NULL, 0, 0, NULL, 0, NULL);
	add_expect(f->st, lw, "a/b", NULL, 0, 0, NULL, 0, "path order"); /* before a.b in path order */
	add_expect(f->st, lw, "a.b", NULL, 0, 0, NULL, 0, "path order"); /* repeated */
	add_expect(f->st, lw, "c", dup, 2, 0, NULL, 0, "given twice");
	add_expect(f->st, lw, "c", NULL, 0, 11, ch, 1, "do not add up");
	add_expect(f->st, lw, "c", NULL, 0, 10, ch, 2, "bad chunk length");
	add_expect(f->st, lw, "c", NULL, 0, 110, tiny, 2, "bad chunk length 10"); /* short, and not the last */
	add_expect(f->st, lw, "c", NULL, 0, 10, ch, 1, "checksum does not match");
	/* a chunk no pack holds (an entry whose content went): named by nothing, refused */
	add_expect(f->st, lw, "c", NULL, 0, 10, ch, 1, "is in no pack");
	CHECK(dd_content_begin(&w, sw));
	CHECK(dd_stream_write(w, "0123456789", 10));
	CHECK(dd_content_end(w, &real));
	add_expect(f->st, lw, "c", NULL, 0, 10, real.chunks, 1, NULL); /* the refusals left the listing usable */
	free(real.chunks);
	CHECK(dd_listing_end(lw, &n));
	assert_int_equal(n, 2);
	CHECK(dd_snapshot_commit(sw, id));
	free(longname);
}

/* ---- hostile listings: raw bytes written as a stream with listing attributes ---- */

static void
put_u32(struct dd_buf *b, uint32_t v)
{
	uint8_t p[4];
	dd_put_le32(p, v);
	dd_buf_put(b, p, 4);
}

static void
put_u64(struct dd_buf *b, uint64_t v)
{
	put_u32(b, (uint32_t)v);
	put_u32(b, (uint32_t)(v >> 32));
}

static void
header(struct dd_buf *b)
{
	dd_buf_put(b, "DDLS", 4);
	put_u32(b, 1);
}

/* A record by hand: name, no attributes, size, checksum, chunks of length `len` each. */
static void
raw_record(struct dd_buf *b, const char *name, size_t nl, uint64_t size, uint64_t nch, uint32_t len)
{
	uint8_t sum[32] = { 0 };

	put_u32(b, (uint32_t)nl);
	dd_buf_put(b, name, nl);
	put_u32(b, 0);
	put_u64(b, size);
	dd_buf_put(b, sum, 32);
	put_u64(b, nch);
	for (uint64_t i = 0; i < nch && i < 4; i++) {
		dd_buf_put(b, sum, 32);
		put_u32(b, len);
	}
}

/* Store `raw` as listing "l" with entries=`entries`, read it all; expect the error to contain `msg`. */
static void
expect_refused(struct fx *f, const struct dd_buf *raw, const char *entries, const char *msg)
{
	struct dd_snapshot_writer *sw;
	struct dd_stream_writer *w;
	struct dd_snapshot *s;
	struct dd_listing_reader *lr = NULL;
	const struct dd_stream_info *e;
	char id[DD_ID_HEX_SIZE];
	int rc;

	CHECK(dd_snapshot_begin(&sw, f->st));
	CHECK(dd_stream_begin(&w, sw, "l"));
	CHECK(dd_stream_write(w, raw->ptr, raw->len));
	dd_stream_set_attr(w, "listing", "media");
	if (entries)
		dd_stream_set_attr(w, "entries", entries);
	CHECK(dd_stream_end(w));
	rc = dd_snapshot_commit(sw, id);
	assert_true(rc == 0 || rc == DD_EXISTS);
	CHECK(dd_snapshot_load(&s, f->st, id));
	rc = dd_listing_open(&lr, f->st, dd_snapshot_find(s, "l"));
	if (rc == 0)
		while ((rc = dd_listing_next(lr, &e)) == 1)
			;
	assert_int_equal(rc, -1);
	if (!strstr(dd_error_last(), msg))
		fail_msg("expected '%s', got '%s'", msg, dd_error_last());
	if (lr)
		assert_int_equal(dd_listing_next(lr, &e), -1); /* stays failed */
	dd_listing_close(lr);
	dd_snapshot_free(s);
}

static void
reader_refuses_hostile_listings(void **state)
{
	struct fx *f = *state;
	struct dd_buf b = DD_BUF_INIT;

	/* order: reversed, then repeated, then a folder's entry after a sibling that sorts after it */
	dd_buf_clear(&b), header(&b), raw_record(&b, "b", 1, 0, 0, 0), raw_record(&b, "a", 1, 0, 0, 0);
	expect_refused(f, &b, "2", "out of order or repeated");
	dd_buf_clear(&b), header(&b), raw_record(&b, "a", 1, 0, 0, 0), raw_record(&b, "a", 1, 0, 0, 0);
	expect_refused(f, &b, "2", "out of order or repeated");
	dd_buf_clear(&b), header(&b), raw_record(&b, "a.b", 3, 0, 0, 0), raw_record(&b, "a/b", 3, 0, 0, 0);
	expect_refused(f, &b, "2", "out of order or repeated");
	/* the entries attribute: fewer records, more records, not a canonical number, missing */
	dd_buf_clear(&b), header(&b), raw_record(&b, "a", 1, 0, 0, 0);
	expect_refused(f, &b, "2", "1 entries, its attribute says 2");
	expect_refused(f, &b, "0", "more entries than its attribute says");
	expect_refused(f, &b, "01", "bad entries attribute");
	expect_refused(f, &b, NULL, "bad entries attribute");
	/* header */
	dd_buf_clear(&b), dd_buf_put(&b, "DDLX", 4), put_u32(&b, 1);
	expect_refused(f, &b, "0", "bad magic");
	dd_buf_clear(&b), dd_buf_put(&b, "DDLS", 4), put_u32(&b, 2);
	expect_refused(f, &b, "0", "upgrade");
	dd_buf_clear(&b), dd_buf_put(&b, "DDL", 3);
	expect_refused(f, &b, "0", "truncated");
	/* trailing bytes: a record cut short, and a stray byte */
	dd_buf_clear(&b), header(&b), raw_record(&b, "a", 1, 0, 0, 0), dd_buf_truncate(&b, b.len - 3);
	expect_refused(f, &b, "1", "truncated");
	dd_buf_clear(&b), header(&b), raw_record(&b, "a", 1, 0, 0, 0), dd_buf_put(&b, "x", 1);
	expect_refused(f, &b, "1", "truncated");
	/* names: empty, too long, with a NUL */
	dd_buf_clear(&b), header(&b), raw_record(&b, "", 0, 0, 0, 0);
	expect_refused(f, &b, "1", "bad stream name length 0");
	{
		char *big = calloc(1, DD_NAME_MAX + 1);
		memset(big, 'n', DD_NAME_MAX + 1);
		dd_buf_clear(&b), header(&b), raw_record(&b, big, DD_NAME_MAX + 1, 0, 0, 0);
		expect_refused(f, &b, "1", "bad stream name length 4097");
		free(big);
	}
	dd_buf_clear(&b), header(&b), raw_record(&b, "a\0b", 3, 0, 0, 0);
	expect_refused(f, &b, "1", "NUL byte");
	/* chunks: more than any file needs (refused before allocating), more than the bytes left, not adding up */
	dd_buf_clear(&b), header(&b), raw_record(&b, "a", 1, 0, (uint64_t)DD_LISTING_MAX_CHUNKS + 1, 1);
	expect_refused(f, &b, "1", "bad chunk count 16777217");
	dd_buf_clear(&b), header(&b), raw_record(&b, "a", 1, 10, 10, 1); /* 4 of 10 written */
	expect_refused(f, &b, "1", "bad chunk count 10");
	dd_buf_clear(&b), header(&b), raw_record(&b, "a", 1, 129, 2, 64);
	expect_refused(f, &b, "1", "do not add up");
	dd_buf_clear(&b), header(&b), raw_record(&b, "a", 1, 0, 1, 0);
	expect_refused(f, &b, "1", "bad chunk length 0");
	/*
	 * chunks shorter than any store's chunker cuts (DD_CHUNK_MIN_LIMIT), but
	 * the last: 4 Mi one-byte chunks (a 151 MB record) are refused from the
	 * count before anything is allocated, and a short chunk that is not the last
	 */
	dd_buf_clear(&b), header(&b), raw_record(&b, "a", 1, 1u << 22, 1u << 22, 1);
	expect_refused(f, &b, "1", "bad chunk count 4194304");
	dd_buf_clear(&b), header(&b), raw_record(&b, "a", 1, 2 * DD_CHUNK_MIN_LIMIT - 1, 3, DD_CHUNK_MIN_LIMIT);
	expect_refused(f, &b, "1", "bad chunk count 3");
	{
		uint8_t id[32] = { 0 };
		dd_buf_clear(&b), header(&b), put_u32(&b, 1), dd_buf_put(&b, "a", 1), put_u32(&b, 0), put_u64(&b, 110);
		dd_buf_put(&b, id, 32), put_u64(&b, 2);
		dd_buf_put(&b, id, 32), put_u32(&b, 10), dd_buf_put(&b, id, 32), put_u32(&b, 100);
		expect_refused(f, &b, "1", "bad chunk length 10");
	}
	/* attributes: a count beyond the bytes, and unsorted keys */
	dd_buf_clear(&b), header(&b), put_u32(&b, 1), dd_buf_put(&b, "a", 1), put_u32(&b, 1000);
	expect_refused(f, &b, "1", "bad attribute count");
	dd_buf_clear(&b), header(&b), put_u32(&b, 1), dd_buf_put(&b, "a", 1), put_u32(&b, 2);
	put_u32(&b, 1), dd_buf_put(&b, "z", 1), put_u32(&b, 0), put_u32(&b, 1), dd_buf_put(&b, "b", 1), put_u32(&b, 0);
	put_u64(&b, 0), dd_buf_put(&b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 32), put_u64(&b, 0);
	expect_refused(f, &b, "1", "not sorted or repeated");
	/* not a listing at all */
	{
		struct dd_stream_info plain = { .name = "t" };
		struct dd_listing_reader *lr;
		assert_int_equal(dd_listing_open(&lr, f->st, &plain), -1);
		assert_non_null(strstr(dd_error_last(), "not a listing"));
	}
	dd_buf_release(&b);
}

/* The one-record codec alone: every cut of a record asks for more, never for less than it needs. */
static void
record_cut_anywhere_asks_for_the_rest(void **state)
{
	struct dd_kv kv[2] = { { "mode", "644" }, { "type", "file" } };
	struct dd_chunk_ref ch[3] = { { { 1 }, 64 }, { { 2 }, 65 }, { { 3 }, 7 } };
	struct dd_stream_info in = { .name = "dir/photo.jpg", .attrs = kv, .nattrs = 2, .size = 136, .chunks = ch,
				     .nchunks = 3 }, out;
	struct dd_buf b = DD_BUF_INIT, again = DD_BUF_INIT;
	size_t used;

	(void)state;
	CHECK(dd_stream_record_encode(&b, &in));
	for (size_t k = 0; k < b.len; k++) {
		size_t at = k;
		int rc;
		/* feed more bytes only as far as the parser asks: it must get there */
		while ((rc = dd_stream_record_parse(&out, &used, b.ptr, at, b.len - at)) == DD_RECORD_MORE) {
			assert_true(used > at && used <= b.len);
			at = used;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(used, b.len);
		dd_stream_info_clear(&out);
		/* with nothing to come, the same cut is damage */
		if (k)
			assert_int_equal(dd_stream_record_parse(&out, &used, b.ptr, k, 0), -1);
	}
	assert_int_equal(dd_stream_record_parse(&out, &used, b.ptr, b.len, 0), 0);
	CHECK(dd_stream_record_encode(&again, &out));
	assert_int_equal(again.len, b.len);
	assert_memory_equal(again.ptr, b.ptr, b.len);
	dd_stream_info_clear(&out);
	dd_buf_release(&b);
	dd_buf_release(&again);
}

/* ---- push, fetch, verify and the cache's gc follow a listing's entries ---- */

#define MIB (1u << 20)

static void
content_gen(struct dd_snapshot_writer *sw, uint64_t seed, uint64_t size, struct dd_stream_info *info)
{
	struct gen g = { seed, size, NULL, 0 };
	struct dd_stream_writer *w;
	uint8_t *piece = malloc(MIB);

	CHECK(dd_content_begin(&w, sw));
	for (uint64_t off = 0; off < size; off += MIB) {
		size_t n = size - off < MIB ? (size_t)(size - off) : MIB;
		gen_fill(&g, piece, off, n);
		CHECK(dd_stream_write(w, piece, n));
	}
	CHECK(dd_content_end(w, info));
	free(piece);
}

/* 0 when the stream reads back as gen(seed), else -1 (error set, or a mismatch). */
static int
check_gen(struct dd_store *st, const struct dd_stream_info *si, uint64_t seed)
{
	struct gen g = { seed, si->size, NULL, 0 };
	struct dd_stream_reader *r;
	uint8_t *want = malloc(DD_CHUNK_MAX_LIMIT);
	uint64_t off = 0;
	const void *d;
	size_t n;
	int rc;

	CHECK(dd_stream_open(&r, st, si));
	while ((rc = dd_stream_next(r, &d, &n)) == 1) {
		gen_fill(&g, want, off, n);
		if (memcmp(want, d, n)) {
			rc = dd_error("stream '%s' differs at %" PRIu64, si->name, off);
			break;
		}
		off += n;
	}
	dd_stream_close(r);
	free(want);
	return rc;
}

/* The media listing of the transfer tests: a folder, a 40 MiB file and a small one. */
static const struct {
	const char *name;
	uint64_t seed, size;
} media[] = { { "a", 0, 0 }, { "a/big.bin", 11, 40 * MIB }, { "a/small.txt", 12, 300000 } };

/*
 * Written in the cache alone (offline), an index file after every pack:
 * the big file's first pack and its index file hold nothing but its
 * chunks, so only following the listing finds them.
 */
static void
write_media_offline(struct fx *f, char id[DD_ID_HEX_SIZE])
{
	struct dd_store *off;
	struct dd_snapshot_writer *sw;
	struct dd_listing_writer *lw;
	struct dd_stream_writer *w;
	struct dd_stream_info info[3];
	struct dd_kv kv = { "type", "file" };

	CHECK(dd_store_open(&off, f->url, f->sd, DD_STORE_OFFLINE));
	dd_packer_set_index_every(off, 1);
	CHECK(dd_snapshot_begin(&sw, off));
	for (size_t i = 0; i < 3; i++) {
		memset(&info[i], 0, sizeof(info[i]));
		if (media[i].size)
			content_gen(sw, media[i].seed, media[i].size, &info[i]);
		info[i].name = (char *)media[i].name;
		info[i].attrs = &kv;
		info[i].nattrs = 1;
	}
	CHECK(dd_listing_begin(&lw, sw, "media", "media"));
	for (size_t i = 0; i < 3; i++) {
		CHECK(dd_listing_add(lw, &info[i]));
		free(info[i].chunks);
	}
	CHECK(dd_listing_end(lw, NULL));
	CHECK(dd_stream_begin(&w, sw, "t"));
	CHECK(dd_stream_write(w, "a table\n", 8));
	CHECK(dd_stream_end(w));
	assert_int_equal(dd_snapshot_commit(sw, id), 0);
	dd_store_free(off);
}

/* Another clone of the store (its own state folder and cache, the same key). */
static struct dd_store *
second_clone(struct fx *f, char **sd2, int flags)
{
	struct dd_store *st;
	int created;

	if (!*sd2) {
		struct dd_buf key = DD_BUF_INIT;
		char *kp = dd_path_join(f->sd, "key"), *kp2;
		*sd2 = dd_path_join(f->tmp, "state2");
		kp2 = dd_path_join(*sd2, "key");
		CHECK(dd_mkdir_p(*sd2, 0700));
		CHECK(dd_file_read(&key, kp));
		CHECK(dd_file_write_atomic(kp2, key.ptr, key.len, 0600, 0));
		CHECK(dd_store_setup(f->url, *sd2, NULL, &created));
		dd_buf_release(&key);
		free(kp), free(kp2);
	}
	CHECK(dd_store_open(&st, f->url, *sd2, flags));
	return st;
}

/* Every entry of the media listing of `id` reads back as written. */
static int
check_media(struct dd_store *st, const char *id)
{
	struct dd_snapshot *s;
	struct dd_listing_reader *lr;
	const struct dd_stream_info *e;
	int rc = 0, i = 0, n;

	CHECK(dd_snapshot_load(&s, st, id));
	CHECK(dd_listing_open(&lr, st, dd_snapshot_find(s, "media")));
	while (rc == 0 && (n = dd_listing_next(lr, &e)) == 1) {
		assert_string_equal(e->name, media[i].name);
		if (media[i].size)
			rc = check_gen(st, e, media[i].seed);
		i++;
	}
	if (rc == 0 && n < 0)
		rc = -1;
	dd_listing_close(lr);
	dd_snapshot_free(s);
	return rc;
}

/* Run verify with stderr in a file; returns its result, the warnings in *out. */
static int
verify_capturing(struct dd_store *st, const char *id, int read_data, struct dd_buf *out)
{
	const char *ids[] = { id };
	char path[] = "/tmp/dd-listing-stderr-XXXXXX";
	int fd = mkstemp(path), saved = dup(2), rc;

	dd_log_set_verbosity(DD_NORMAL);
	dup2(fd, 2);
	rc = dd_store_verify(st, ids, 1, read_data);
	fflush(stderr);
	dup2(saved, 2);
	close(saved), close(fd);
	dd_log_set_verbosity(DD_QUIET);
	dd_buf_clear(out);
	CHECK(dd_file_read(out, path));
	dd_buf_putc(out, 0);
	unlink(path);
	return rc;
}

static void
push_fetch_verify_and_gc_follow_a_listings_entries(void **state)
{
	struct fx *f = *state;
	struct dd_store *st2;
	struct dd_cache_plan plan;
	struct dd_snapshot *s;
	struct dd_listing_reader *lr;
	const struct dd_stream_info *e;
	struct dd_midx_hit hit;
	struct dd_buf warn = DD_BUF_INIT;
	char id[DD_ID_HEX_SIZE], name[DD_OBJECT_NAME_SIZE], *sd2 = NULL, *path;
	const char *ids[1] = { id };
	size_t marked = 0;

	write_media_offline(f, id);
	/* push: the store gets the big file's chunks, which only the listing names */
	CHECK(dd_store_push(f->st, ids, 1, NULL));
	/* fetch into a second clone, then read every entry there offline: all of it came over */
	st2 = second_clone(f, &sd2, 0);
	CHECK(dd_store_fetch(st2, ids, 1, NULL));
	/* its cache's gc plan ranks every fetched file by this snapshot, the entries' too */
	CHECK(dd_store_cache_plan(&plan, st2, NULL, 0));
	for (size_t i = 0; i < plan.nitems; i++) {
		assert_string_equal(plan.items[i].snapshot, id);
		marked += !strncmp(plan.items[i].name, "data/", 5);
	}
	assert_true(marked > 20); /* 40 MiB of chunks of at most 2 MiB: loose copies, all needed */
	dd_cache_plan_release(&plan);
	dd_store_free(st2);
	st2 = second_clone(f, &sd2, DD_STORE_OFFLINE);
	CHECK(check_media(st2, id));
	dd_store_free(st2);
	/* verify reads the entries back from the store */
	if (verify_capturing(f->st, id, 1, &warn) != 0)
		fail_msg("verify: %s / %s", dd_error_last(), warn.ptr);
	/* the big file's first pack goes: verify names the entry whose chunks it held */
	CHECK(dd_snapshot_load(&s, f->st, id));
	CHECK(dd_listing_open(&lr, f->st, dd_snapshot_find(s, "media")));
	assert_int_equal(dd_listing_next(lr, &e), 1);
	assert_int_equal(dd_listing_next(lr, &e), 1);
	assert_string_equal(e->name, "a/big.bin");
	CHECK(dd_store_index_load(f->st));
	assert_int_equal(dd_midx_find(f->st->idx, e->chunks[0].id, 0, &hit), 1);
	dd_object_name(name, sizeof(name), "packs", dd_midx_pack_get(f->st->idx, hit.pack).name);
	dd_listing_close(lr);
	path = dd_asprintf("%s/%s", f->url + 7, name);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(verify_capturing(f->st, id, 0, &warn), -1);
	if (!strstr(warn.ptr, "stream 'media/a/big.bin'"))
		fail_msg("verify did not name the entry: %s", warn.ptr);
	/* and the listing's own pack: the listing is named as unreadable */
	assert_int_equal(dd_midx_find(f->st->idx, dd_snapshot_find(s, "media")->chunks[0].id, 0, &hit), 1);
	dd_object_name(name, sizeof(name), "packs", dd_midx_pack_get(f->st->idx, hit.pack).name);
	free(path);
	path = dd_asprintf("%s/%s", f->url + 7, name);
	assert_int_equal(unlink(path), 0);
	/* verified by a store opened after the removal (a verify run): one open before reads its open packs */
	dd_snapshot_free(s);
	dd_store_free(f->st);
	CHECK(dd_store_open(&f->st, f->url, f->sd, 0));
	assert_int_equal(verify_capturing(f->st, id, 0, &warn), -1);
	if (!strstr(warn.ptr, "listing 'media' cannot be read"))
		fail_msg("verify did not name the listing: %s", warn.ptr);
	dd_buf_release(&warn);
	free(path), free(sd2);
}

/* ---- private snapshots ---- */

/* Files under root/dir (recursively), for "nothing new reached the store". */
static size_t
count_files(const char *root, const char *dir)
{
	char *cmd = dd_asprintf("find '%s/%s' -type f 2>/dev/null | wc -l", root, dir);
	FILE *p = popen(cmd, "r");
	size_t n = 0;

	assert_non_null(p);
	assert_int_equal(fscanf(p, "%zu", &n), 1);
	pclose(p);
	free(cmd);
	return n;
}

static void
commit_gen_snapshot(struct dd_store *st, int flags, uint64_t seed, uint64_t size, char id[DD_ID_HEX_SIZE])
{
	struct dd_snapshot_writer *sw;
	struct dd_listing_writer *lw;
	struct dd_stream_info info;
	int rc;

	memset(&info, 0, sizeof(info));
	CHECK(dd_snapshot_begin_flags(&sw, st, flags));
	content_gen(sw, seed, size, &info);
	info.name = "f.bin";
	CHECK(dd_listing_begin(&lw, sw, "media", "media"));
	CHECK(dd_listing_add(lw, &info));
	CHECK(dd_listing_end(lw, NULL));
	free(info.chunks);
	rc = dd_snapshot_commit(sw, id);
	if (rc < 0)
		fail_msg("commit: %s", dd_error_last());
}

/* The content of snapshot `id`'s only entry. */
static int
check_entry_gen(struct dd_store *st, const char *id, uint64_t seed)
{
	struct dd_snapshot *s;
	struct dd_listing_reader *lr;
	const struct dd_stream_info *e;
	int rc;

	rc = dd_snapshot_load(&s, st, id);
	if (rc != 0)
		return rc;
	CHECK(dd_listing_open(&lr, st, dd_snapshot_find(s, "media")));
	assert_int_equal(dd_listing_next(lr, &e), 1);
	rc = check_gen(st, e, seed);
	dd_listing_close(lr);
	dd_snapshot_free(s);
	return rc;
}

static void
private_snapshot_stays_in_the_cache_even_online(void **state)
{
	struct fx *f = *state;
	const char *root = f->url + 7;
	char pub[DD_ID_HEX_SIZE], priv[DD_ID_HEX_SIZE], *cache = dd_path_join(f->sd, "cache");
	const char *ids[1] = { priv };
	struct dd_cache_usage u;
	char **list;
	size_t n, before;
	struct dd_snapshot *s;

	commit_gen_snapshot(f->st, 0, 1, 3 * MIB, pub);
	before = count_files(root, ".");
	commit_gen_snapshot(f->st, DD_SNAPSHOT_PRIVATE, 2, 3 * MIB, priv);
	assert_int_equal(count_files(root, "."), before); /* not a byte of it in the store */
	assert_int_equal(count_files(cache, "private"), 3); /* its manifest, one pack, one index file */
	assert_int_equal(count_files(cache, "private/packs"), 1);
	CHECK(check_entry_gen(f->st, priv, 2));
	assert_int_equal(dd_store_has_snapshot(f->st, priv), 1);
	CHECK(dd_store_private_list(f->st, &list, &n));
	assert_int_equal(n, 1);
	assert_string_equal(list[0], priv);
	dd_store_snapshot_ids_free(list, n);
	/* status: not a pending upload (the public one was pushed as it was written) */
	CHECK(dd_store_cache_usage(&u, f->sd, f->url));
	assert_int_equal(u.npending, 0);
	dd_cache_usage_release(&u);
	/* push skips it */
	CHECK(dd_store_push(f->st, ids, 1, NULL));
	assert_int_equal(count_files(root, "."), before);
	/* another run finds it through the cache's private index files */
	dd_store_free(f->st);
	CHECK(dd_store_open(&f->st, f->url, f->sd, 0));
	CHECK(check_entry_gen(f->st, priv, 2));
	/* dropped: gone from the list and from reach */
	CHECK(dd_store_private_drop(f->st, priv));
	assert_int_equal(dd_store_private_drop(f->st, priv), DD_NOTFOUND);
	CHECK(dd_store_private_list(f->st, &list, &n));
	assert_int_equal(n, 0);
	dd_store_snapshot_ids_free(list, n);
	assert_int_equal(dd_snapshot_load(&s, f->st, priv), DD_NOTFOUND);
	free(cache);
}

/* A public snapshot of content a private one holds stores its own copy: the store gets every object. */
static void
public_writer_never_reuses_a_private_pack(void **state)
{
	struct fx *f = *state;
	char priv[DD_ID_HEX_SIZE], pub[DD_ID_HEX_SIZE];
	const char *ids[1] = { pub };

	commit_gen_snapshot(f->st, DD_SNAPSHOT_PRIVATE, 3, 3 * MIB, priv);
	commit_gen_snapshot(f->st, 0, 3, 3 * MIB, pub);
	assert_string_equal(priv, pub); /* the same content: the same id, one private, one public */
	dd_log_set_verbosity(DD_QUIET);
	CHECK(dd_store_verify(f->st, ids, 1, 1)); /* read from the store itself */
	CHECK(dd_store_push(f->st, ids, 1, NULL));
}

struct writer_arg {
	struct dd_store *st;
	int flags;
	uint64_t seed;
	char id[DD_ID_HEX_SIZE];
};

static void *
writer_thread(void *p)
{
	struct writer_arg *a = p;

	commit_gen_snapshot(a->st, a->flags, a->seed, 24 * MIB, a->id);
	return NULL;
}

static int
find_in(struct dd_midx *m, const uint8_t id[32])
{
	struct dd_midx_hit hit;

	return dd_midx_find(m, id, 0, &hit);
}

/* A private and a public writer at once on one store: no private object lands in a public pack. */
static void
private_and_public_writers_at_once_never_share_a_pack(void **state)
{
	struct fx *f = *state;
	struct writer_arg a[2] = { { f->st, 0, 4, "" }, { f->st, DD_SNAPSHOT_PRIVATE, 5, "" } };
	pthread_t t[2];
	struct dd_snapshot *s;
	struct dd_listing_reader *lr;
	const struct dd_stream_info *e;
	const char *ids[1] = { a[0].id };

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer_thread, &a[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	dd_store_free(f->st); /* a new run: maps built from the files alone */
	CHECK(dd_store_open(&f->st, f->url, f->sd, 0));
	CHECK(dd_store_index_load(f->st));
	CHECK(dd_store_private_index_load(f->st));
	CHECK(dd_snapshot_load(&s, f->st, a[1].id));
	CHECK(dd_listing_open(&lr, f->st, dd_snapshot_find(s, "media")));
	assert_int_equal(dd_listing_next(lr, &e), 1);
	assert_true(e->nchunks > 10);
	for (size_t c = 0; c < e->nchunks; c++) {
		assert_false(find_in(f->st->idx, e->chunks[c].id));
		assert_true(find_in(f->st->opidx, e->chunks[c].id));
	}
	dd_listing_close(lr);
	dd_snapshot_free(s);
	CHECK(check_entry_gen(f->st, a[1].id, 5));
	dd_log_set_verbosity(DD_QUIET);
	CHECK(dd_store_verify(f->st, ids, 1, 1));
}

/* What a private snapshot needs of the store's data ranks with what branches name: last. */
static void
gc_plan_keeps_what_a_private_snapshot_needs_like_a_named_one(void **state)
{
	struct fx *f = *state;
	struct dd_store *st2;
	struct dd_cache_plan plan;
	char pub[DD_ID_HEX_SIZE], priv[DD_ID_HEX_SIZE], other[DD_ID_HEX_SIZE], *sd2 = NULL;
	const char *ids[2] = { pub, other };
	size_t named = 0, unnamed = 0;

	commit_gen_snapshot(f->st, 0, 6, 3 * MIB, pub);
	commit_gen_snapshot(f->st, 0, 7, 3 * MIB, other);
	st2 = second_clone(f, &sd2, 0);
	CHECK(dd_store_fetch(st2, ids, 2, NULL)); /* loose copies in its cache: gc's candidates */
	/* a stash of the first one's content, in the second clone: it reuses the fetched objects */
	commit_gen_snapshot(st2, DD_SNAPSHOT_PRIVATE, 6, 3 * MIB, priv);
	assert_int_equal(count_files(sd2, "cache/private/packs"), 0);
	CHECK(dd_store_cache_plan(&plan, st2, NULL, 0));
	for (size_t i = 0; i < plan.nitems; i++) {
		if (plan.items[i].named) {
			named++;
			assert_string_equal(plan.items[i].snapshot, priv);
		} else {
			unnamed++;
			assert_string_equal(plan.items[i].snapshot, other);
			assert_int_equal(named, 0); /* the others go first */
		}
	}
	assert_true(named > 0 && unnamed > 0);
	dd_cache_plan_release(&plan);
	dd_store_free(st2);
	free(sd2);
}

/* Once dropped (and past the grace period), a private snapshot's own packs and index file are gc's to take. */
static void
dropped_private_snapshot_files_go_with_gc_after_the_grace(void **state)
{
	struct fx *f = *state;
	struct dd_cache_plan plan;
	char a[DD_ID_HEX_SIZE], b[DD_ID_HEX_SIZE], c[DD_ID_HEX_SIZE], *cache = dd_path_join(f->sd, "cache");
	char *cmd = dd_asprintf("touch -d '2 hours ago' '%s'/private/index/*", cache);
	char *orphan = dd_asprintf("%s/private/packs/%064d", cache, 7);
	char *fresh = dd_asprintf("%s/private/packs/%064d", cache, 8);
	char *cmd2 = dd_asprintf("touch -d '2 hours ago' '%s'", orphan);
	size_t priv = 0, index_at = 0;

	commit_gen_snapshot(f->st, DD_SNAPSHOT_PRIVATE, 8, 2 * MIB, a);
	commit_gen_snapshot(f->st, DD_SNAPSHOT_PRIVATE, 9, 2 * MIB, b);
	assert_int_equal(system(cmd), 0); /* both index files past the grace period */
	commit_gen_snapshot(f->st, DD_SNAPSHOT_PRIVATE, 10, 2 * MIB, c);
	assert_int_equal(count_files(cache, "private/packs"), 3);
	/* needed, or too fresh: nothing private may go */
	CHECK(dd_store_cache_plan(&plan, f->st, NULL, 0));
	for (size_t i = 0; i < plan.nitems; i++)
		assert_true(strncmp(plan.items[i].name, "private/", 8));
	dd_cache_plan_release(&plan);
	CHECK(dd_store_private_drop(f->st, a));
	CHECK(dd_store_private_drop(f->st, c)); /* dropped, but its files are younger than the grace period */
	/* a pack no index file names (a private writer killed before its flush), old, and one still fresh */
	CHECK(dd_file_write_atomic(orphan, "x", 1, 0444, 0));
	assert_int_equal(system(cmd2), 0);
	CHECK(dd_file_write_atomic(fresh, "y", 1, 0444, 0));
	CHECK(dd_store_cache_plan(&plan, f->st, NULL, 0));
	for (size_t i = 0; i < plan.nitems; i++) {
		if (strncmp(plan.items[i].name, "private/", 8))
			continue;
		priv++;
		/* packs first: an index file naming a removed pack is harmless, a pack none names would stay */
		if (!strncmp(plan.items[i].name, "private/index/", 14))
			index_at = priv;
		else
			assert_int_equal(index_at, 0);
		assert_int_equal(plan.items[i].named, 0);
		assert_true(plan.items[i].bytes > 0);
		CHECK(dd_store_cache_remove(f->st, &plan.items[i]));
	}
	assert_int_equal(priv, 3); /* a's pack, the orphan, then a's index file */
	assert_int_equal(index_at, 3);
	dd_cache_plan_release(&plan);
	assert_false(dd_path_exists(orphan));
	assert_true(dd_path_exists(fresh));
	assert_int_equal(count_files(cache, "private/packs"), 3); /* b's, c's and the fresh one */
	assert_int_equal(count_files(cache, "private/index"), 2);
	/* b is whole, in this run and the next */
	CHECK(check_entry_gen(f->st, b, 9));
	dd_store_free(f->st);
	CHECK(dd_store_open(&f->st, f->url, f->sd, 0));
	CHECK(check_entry_gen(f->st, b, 9));
	free(cache), free(cmd), free(cmd2), free(orphan), free(fresh);
}

/*
 * A stash applied and captured again: the public snapshot's listing reuses
 * an entry of the private one. Its chunks are copied into a public pack, so
 * the store gets them (a second clone fetches and reads it offline). The
 * public snapshot here has the private one's content, hence its id: written
 * offline, it is still pushed.
 */
static void
public_listing_reusing_a_private_entry_makes_its_chunks_public(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot_writer *sw;
	struct dd_listing_writer *lw;
	struct dd_snapshot *s;
	struct dd_listing_reader *lr;
	const struct dd_stream_info *e;
	struct dd_store *st2, *off;
	char priv[DD_ID_HEX_SIZE], pub[DD_ID_HEX_SIZE], *sd2 = NULL;
	const char *ids[1] = { pub };

	commit_gen_snapshot(f->st, DD_SNAPSHOT_PRIVATE, 11, 3 * MIB, priv);
	CHECK(dd_snapshot_load(&s, f->st, priv));
	CHECK(dd_listing_open(&lr, f->st, dd_snapshot_find(s, "media")));
	assert_int_equal(dd_listing_next(lr, &e), 1);
	CHECK(dd_store_open(&off, f->url, f->sd, DD_STORE_OFFLINE));
	CHECK(dd_snapshot_begin(&sw, off));
	CHECK(dd_listing_begin(&lw, sw, "media", "media"));
	CHECK(dd_listing_add(lw, e)); /* the private entry as it is: no content written */
	CHECK(dd_listing_end(lw, NULL));
	assert_int_equal(dd_snapshot_commit(sw, pub), 0);
	assert_string_equal(pub, priv);
	dd_store_free(off);
	dd_listing_close(lr);
	dd_snapshot_free(s);
	dd_store_free(f->st); /* a new run (a handle learns the cache's index files once) */
	CHECK(dd_store_open(&f->st, f->url, f->sd, 0));
	CHECK(dd_store_push(f->st, ids, 1, NULL));
	dd_log_set_verbosity(DD_QUIET);
	CHECK(dd_store_verify(f->st, ids, 1, 1));
	st2 = second_clone(f, &sd2, 0);
	CHECK(dd_store_fetch(st2, ids, 1, NULL));
	dd_store_free(st2);
	st2 = second_clone(f, &sd2, DD_STORE_OFFLINE);
	CHECK(check_entry_gen(st2, pub, 11));
	dd_store_free(st2);
	free(sd2);
}

/*
 * A stash of a folder restored from an earlier stash: its listing reuses
 * the older stash's entry. The chunks are copied into the new stash's own
 * pack, so it does not depend on the older stash's packs, which gc may take
 * once the older stash is dropped (even while the new one is still being
 * written, before its manifest says what it needs).
 */
static void
private_listing_reusing_an_older_stash_entry_keeps_its_own_copy(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot_writer *sw;
	struct dd_listing_writer *lw;
	struct dd_snapshot *s;
	struct dd_listing_reader *lr;
	const struct dd_stream_info *e;
	struct dd_stream_info dir = { .name = "z" };
	char older[DD_ID_HEX_SIZE], newer[DD_ID_HEX_SIZE], *cache = dd_path_join(f->sd, "cache");
	char *rm = dd_asprintf("rm -f '%s'/private/packs/*", cache);

	commit_gen_snapshot(f->st, DD_SNAPSHOT_PRIVATE, 12, 3 * MIB, older);
	dd_store_free(f->st); /* another run: the older stash's packs are an earlier run's */
	CHECK(dd_store_open(&f->st, f->url, f->sd, 0));
	CHECK(dd_snapshot_load(&s, f->st, older));
	CHECK(dd_listing_open(&lr, f->st, dd_snapshot_find(s, "media")));
	assert_int_equal(dd_listing_next(lr, &e), 1);
	CHECK(dd_snapshot_begin_flags(&sw, f->st, DD_SNAPSHOT_PRIVATE));
	CHECK(dd_listing_begin(&lw, sw, "media", "media"));
	CHECK(dd_listing_add(lw, e)); /* reused as it is: no content written */
	/* the older stash's packs go now, as a gc racing with this writer could take them */
	assert_int_equal(system(rm), 0);
	CHECK(dd_listing_add(lw, &dir));
	CHECK(dd_listing_end(lw, NULL));
	CHECK(dd_snapshot_commit(sw, newer));
	dd_listing_close(lr);
	dd_snapshot_free(s);
	assert_string_not_equal(older, newer);
	assert_int_equal(count_files(cache, "private/packs"), 1); /* the newer one's own */
	dd_store_free(f->st);
	CHECK(dd_store_open(&f->st, f->url, f->sd, DD_STORE_OFFLINE));
	CHECK(check_entry_gen(f->st, newer, 12));
	free(cache), free(rm);
}

/*
 * The race a stash of a restored stash runs: the older stash is dropped and
 * a gc takes its packs (index files past the grace period) before the new
 * writer has copied the chunks of the entry it reuses. The entry is refused
 * (DD_NOTFOUND: read the file again), never named with chunks gone; a
 * public writer refuses it the same way, and a made-up chunk too.
 */
static void
listing_refuses_a_reused_entry_whose_chunks_gc_took(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot_writer *sw;
	struct dd_listing_writer *lw;
	struct dd_snapshot *s;
	struct dd_listing_reader *lr;
	const struct dd_stream_info *e;
	struct dd_stream_info dir = { .name = "z" }, kept;
	struct dd_store *st2, *st3;
	struct dd_cache_plan plan;
	uint64_t requests;
	char older[DD_ID_HEX_SIZE], newer[DD_ID_HEX_SIZE], *cache = dd_path_join(f->sd, "cache");
	char *cmd = dd_asprintf("touch -d '2 hours ago' '%s'/private/index/* '%s'/private/packs/*", cache, cache);
	size_t removed = 0;

	commit_gen_snapshot(f->st, DD_SNAPSHOT_PRIVATE, 13, 3 * MIB, older);
	dd_store_free(f->st); /* another run: the older stash's packs are an earlier run's */
	CHECK(dd_store_open(&f->st, f->url, f->sd, 0));
	CHECK(dd_snapshot_load(&s, f->st, older));
	CHECK(dd_listing_open(&lr, f->st, dd_snapshot_find(s, "media")));
	assert_int_equal(dd_listing_next(lr, &e), 1); /* what a media index remembers of the folder */
	memset(&kept, 0, sizeof(kept));
	kept.name = "f.bin", kept.size = e->size, kept.nchunks = e->nchunks;
	memcpy(kept.checksum, e->checksum, 32);
	kept.chunks = malloc(e->nchunks * sizeof(*e->chunks));
	memcpy(kept.chunks, e->chunks, e->nchunks * sizeof(*e->chunks));
	dd_listing_close(lr);
	dd_snapshot_free(s);
	/* a writer that learnt the private index files before the gc (the map says: this pack) */
	CHECK(dd_store_open(&st3, f->url, f->sd, 0));
	CHECK(dd_store_index_load(st3));
	CHECK(dd_store_private_index_load(st3));
	/* the stash is dropped and a gc takes its files */
	CHECK(dd_store_private_drop(f->st, older));
	assert_int_equal(system(cmd), 0);
	CHECK(dd_store_cache_plan(&plan, f->st, NULL, 0));
	for (size_t i = 0; i < plan.nitems; i++)
		if (!strncmp(plan.items[i].name, "private/", 8)) {
			CHECK(dd_store_cache_remove(f->st, &plan.items[i]));
			removed++;
		}
	dd_cache_plan_release(&plan);
	assert_true(removed >= 2);
	/* the copy finds the pack gone: refused, and the store is never asked for a private chunk */
	CHECK(dd_snapshot_begin_flags(&sw, st3, DD_SNAPSHOT_PRIVATE));
	CHECK(dd_listing_begin(&lw, sw, "media", "media"));
	requests = atomic_load(&st3->requests);
	assert_int_equal(dd_listing_reuse(lw, &kept), DD_NOTFOUND);
	assert_int_equal(atomic_load(&st3->requests), requests);
	dd_listing_abort(lw);
	dd_snapshot_abort(sw);
	dd_store_free(st3);
	/* the new stash's writer, in a run that never saw the older stash's index file */
	CHECK(dd_store_open(&st2, f->url, f->sd, 0));
	CHECK(dd_snapshot_begin_flags(&sw, st2, DD_SNAPSHOT_PRIVATE));
	CHECK(dd_listing_begin(&lw, sw, "media", "media"));
	assert_int_equal(dd_listing_reuse(lw, &kept), DD_NOTFOUND);
	assert_non_null(strstr(dd_error_last(), "is in no pack"));
	dd_error_clear();
	assert_int_equal(dd_listing_add(lw, &kept), -1);
	CHECK(dd_listing_add(lw, &dir)); /* the listing is still usable: the file is read again instead */
	CHECK(dd_listing_end(lw, NULL));
	CHECK(dd_snapshot_commit(sw, newer));
	/* a public writer the same */
	CHECK(dd_snapshot_begin(&sw, st2));
	CHECK(dd_listing_begin(&lw, sw, "media", "media"));
	assert_int_equal(dd_listing_reuse(lw, &kept), DD_NOTFOUND);
	assert_int_equal(dd_listing_add(lw, &kept), -1);
	dd_listing_abort(lw);
	dd_snapshot_abort(sw);
	dd_store_free(st2);
	free(kept.chunks);
	free(cache), free(cmd);
}

/*
 * A private writer that runs for more than an hour (a big folder on a slow
 * disk): its first packs and midway index file are older than gc's grace
 * period while no manifest needs them yet. A gc meanwhile must not take
 * them: each private pack the writer finishes renews them.
 */
static void
long_private_writer_keeps_its_files_from_gc(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot_writer *sw;
	struct dd_listing_writer *lw;
	struct dd_stream_info a, b;
	struct dd_store *st2;
	struct dd_cache_plan plan;
	char id[DD_ID_HEX_SIZE], *cache = dd_path_join(f->sd, "cache");
	char *cmd = dd_asprintf("touch -d '2 hours ago' '%s'/private/index/* '%s'/private/packs/*", cache, cache);

	memset(&a, 0, sizeof(a)), memset(&b, 0, sizeof(b));
	CHECK(dd_store_open(&st2, f->url, f->sd, 0));
	dd_packer_set_index_every(st2, 1); /* an index file per pack, as every 64 packs of a big stash */
	CHECK(dd_snapshot_begin_flags(&sw, st2, DD_SNAPSHOT_PRIVATE));
	content_gen(sw, 14, 40 * MIB, &a); /* a pack and its index file written midway */
	dd_packer_wait_finished(st2);      /* by the packer's finisher thread, which may still be at it */
	assert_true(count_files(cache, "private/index") >= 1);
	assert_int_equal(system(cmd), 0); /* ... an hour and more ago */
	content_gen(sw, 15, 40 * MIB, &b); /* the writer goes on: another pack */
	dd_packer_wait_finished(st2);      /* finished (and the older files renewed) on the finisher thread */
	/* a gc in another process meanwhile */
	CHECK(dd_store_cache_plan(&plan, f->st, NULL, 0));
	for (size_t i = 0; i < plan.nitems; i++)
		if (!strncmp(plan.items[i].name, "private/", 8))
			fail_msg("gc would take %s, which the private writer still needs", plan.items[i].name);
	dd_cache_plan_release(&plan);
	a.name = "a.bin", b.name = "b.bin";
	CHECK(dd_listing_begin(&lw, sw, "media", "media"));
	CHECK(dd_listing_add(lw, &a));
	CHECK(dd_listing_add(lw, &b));
	CHECK(dd_listing_end(lw, NULL));
	CHECK(dd_snapshot_commit(sw, id));
	free(a.chunks), free(b.chunks);
	dd_store_free(st2);
	free(cache), free(cmd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(path_order_puts_a_folder_before_its_siblings),
		cmocka_unit_test(record_cut_anywhere_asks_for_the_rest),
		cmocka_unit_test_setup_teardown(listing_of_100000_entries_round_trips_in_constant_memory, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(records_longer_than_a_piece_round_trip, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(content_streams_open_together_read_back_through_their_entries, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(writer_refuses_bad_entries, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(reader_refuses_hostile_listings, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(push_fetch_verify_and_gc_follow_a_listings_entries, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(private_snapshot_stays_in_the_cache_even_online, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(public_writer_never_reuses_a_private_pack, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(private_and_public_writers_at_once_never_share_a_pack, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(gc_plan_keeps_what_a_private_snapshot_needs_like_a_named_one, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(dropped_private_snapshot_files_go_with_gc_after_the_grace, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(public_listing_reusing_a_private_entry_makes_its_chunks_public, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(private_listing_reusing_an_older_stash_entry_keeps_its_own_copy, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(listing_refuses_a_reused_entry_whose_chunks_gc_took, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(long_private_writer_keeps_its_files_from_gc, fx_setup, fx_teardown),
	};
	if (sodium_init() < 0)
		return 1;
	dd_log_set_verbosity(DD_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
