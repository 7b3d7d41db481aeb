/*
 * tests/unit/test-delta.c: delta objects (docs/FORMAT.md §4.3): sealing
 * and opening against a base (a wrong base is refused), deltas made from
 * a plan of where the chunk's bytes came from, pack headers and
 * index files carrying bases (hostile entries refused), the writer storing
 * scattered changes as deltas against the previous version of a stream
 * and reading them back, a missing base named, the writer's depth limit
 * (a full object every DD_DELTA_DEPTH_WRITE + 1 generations) and the
 * reader's (a chain at DD_DELTA_DEPTH_MAX opens, one longer is refused),
 * and a failed base that does not stop the read of another, full copy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sodium.h>
#include <unistd.h>

#include "store-testlib.h"
#include "store/internal.h"
#include "store-fx.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/log.h"

#define SIZE (3u << 20)

/* Text-like bytes (compressible): rows of words and numbers. */
static void
fill_text(uint8_t *p, size_t len, uint64_t seed)
{
	static const char *const w[] = { "customer", "order", "invoice", "paid", "pending", "berlin", "{\"id\":",
					 "\"name\":", "true", "null", "delivery", "status", "2024-01-" };
	uint64_t s = seed;
	size_t i = 0;

	while (i < len) {
		s = mix64(s + i);
		const char *x = w[s % (sizeof(w) / sizeof(*w))];
		int n = snprintf((char *)p + i, len - i, "%s %llu\t", x, (unsigned long long)(s >> 40));
		i += n > 0 ? (size_t)n : 1;
		if (i < len && s % 5 == 0)
			p[i++] = '\n';
	}
}

/* Every `every` bytes, overwrite 8 bytes (a scattered update of the same size). */
static void
scatter(uint8_t *p, size_t len, size_t every, uint64_t seed)
{
	for (size_t at = every / 2; at + 8 <= len; at += every)
		for (int k = 0; k < 8; k++)
			p[at + k] = (uint8_t)('A' + (mix64(seed + at + k) % 26));
}

static void
object_delta_round_trip_and_wrong_base_refused(void **state)
{
	struct fx *f = *state;
	struct dd_keys *k = f->st->keys;
	size_t len = 300000;
	uint8_t *base = malloc(len), *cur = malloc(len), bid[32], id[32], other[32];
	struct dd_buf obj = DD_BUF_INIT, full = DD_BUF_INIT, out = DD_BUF_INIT, scratch = DD_BUF_INIT;
	struct dd_delta_ref d;

	fill_text(base, len, 1);
	memcpy(cur, base, len);
	scatter(cur, len, 10000, 7);
	dd_id_compute(bid, k, base, len);
	dd_id_compute(id, k, cur, len);
	memset(other, 0x5a, 32);
	CHECK(dd_object_seal_delta(&obj, k, id, bid, base, len, cur, len, NULL));
	CHECK(dd_object_seal(&full, k, DD_OBJ_DATA, id, cur, len, NULL));
	assert_true(obj.len * 10 < full.len); /* a few changed bytes cost a few bytes */
	assert_int_equal(dd_object_peek_type(obj.ptr, obj.len), DD_OBJ_DELTA);
	CHECK(dd_object_open_delta(&out, k, id, bid, base, len, obj.ptr, obj.len, len, NULL));
	assert_int_equal(out.len, len);
	assert_memory_equal(out.ptr, cur, len);
	/* the object names its base (authenticated with it) */
	CHECK(dd_object_delta_base(k, DD_OBJ_DELTA, id, obj.ptr, obj.len, &scratch, &d));
	assert_memory_equal(d.base, bid, 32);
	assert_int_equal(d.base_len, len);
	/* another base id (even with the right bytes), or another length: refused */
	assert_int_equal(dd_object_open_delta(&out, k, id, other, base, len, obj.ptr, obj.len, len, NULL), -1);
	assert_non_null(strstr(dd_error_last(), "another base"));
	assert_int_equal(dd_object_open_delta(&out, k, id, bid, base, len - 1, obj.ptr, obj.len, len, NULL), -1);
	/* a modified object does not authenticate */
	obj.ptr[obj.len - 20] ^= 1;
	assert_int_equal(dd_object_delta_base(k, DD_OBJ_DELTA, id, obj.ptr, obj.len, &scratch, &d), -1);
	obj.ptr[obj.len - 20] ^= 1;
	/* the right id with other bytes: the result is not the chunk */
	base[len / 2] ^= 1;
	assert_int_equal(dd_object_open_delta(&out, k, id, bid, base, len, obj.ptr, obj.len, len, NULL), -1);
	assert_non_null(strstr(dd_error_last(), "damaged"));
	/* a delta is no plain data object */
	assert_int_equal(dd_object_open(&out, k, DD_OBJ_DATA, id, obj.ptr, obj.len, len, NULL), -1);
	/* bounded like any object */
	base[len / 2] ^= 1;
	assert_int_equal(dd_object_open_delta(&out, k, id, bid, base, len, obj.ptr, obj.len, len - 1, NULL), -1);
	dd_buf_release(&obj), dd_buf_release(&full), dd_buf_release(&out), dd_buf_release(&scratch);
	free(base), free(cur);
	dd_error_clear();
}

/*
 * A delta made from its pieces (object.h, delta plans: where the chunk's
 * bytes came from, no match search) opens to the chunk; a plan that does
 * not describe the chunk (a piece misplaced by a byte, pieces that do not
 * tile it) still gives a delta that opens to the chunk (the match search's).
 */
static void
a_delta_plan_opens_to_the_chunk_and_a_wrong_one_is_not_kept(void **state)
{
	struct fx *f = *state;
	struct dd_keys *k = f->st->keys;
	size_t len = 300000, clen = len + 10, at = 100000;
	uint8_t *base = malloc(len), *cur = malloc(clen), bid[32], id[32];
	struct dd_buf obj = DD_BUF_INIT, searched = DD_BUF_INIT, out = DD_BUF_INIT;
	ZSTD_DCtx *zd = ZSTD_createDCtx();
	uint64_t off = 5000000; /* the base's offset in the previous stream */

	fill_text(base, len, 3);
	/* a row of 50 bytes at `at` replaced by one of 60 that differs in its middle */
	memcpy(cur, base, at + 20);
	memcpy(cur + at + 20, "0123456789ABCDEFGHIJ", 20);
	memcpy(cur + at + 40, base + at + 30, len - at - 30);
	dd_id_compute(bid, k, base, len);
	dd_id_compute(id, k, cur, clen);
	struct dd_delta_piece good[3] = {
		{ .prev = off, .at = 0, .len = (uint32_t)at },
		{ .prev = DD_PIECE_NEW, .at = (uint32_t)at, .len = 60, .old = off + at, .old_end = off + at + 50 },
		{ .prev = off + at + 50, .at = (uint32_t)at + 60, .len = (uint32_t)(len - at - 50) },
	};
	struct dd_delta_plan plan = { good, 3, off, zd };
	CHECK(dd_object_seal_delta_plan(&obj, k, id, bid, base, len, cur, clen, NULL, 1, &plan));
	CHECK(dd_object_seal_delta(&searched, k, id, bid, base, len, cur, clen, NULL));
	CHECK(dd_object_open_delta(&out, k, id, bid, base, len, obj.ptr, obj.len, clen, NULL));
	assert_int_equal(out.len, clen);
	assert_memory_equal(out.ptr, cur, clen);
	assert_true(obj.len <= searched.len + 64); /* the changed bytes and little more */
	/* a piece one byte off: its bytes are not the base's there, so no plan; the delta still opens */
	good[2].prev++;
	CHECK(dd_object_seal_delta_plan(&obj, k, id, bid, base, len, cur, clen, NULL, 1, &plan));
	CHECK(dd_object_open_delta(&out, k, id, bid, base, len, obj.ptr, obj.len, clen, NULL));
	assert_memory_equal(out.ptr, cur, clen);
	/* pieces that do not tile the chunk */
	good[2].prev--;
	good[2].at++;
	CHECK(dd_object_seal_delta_plan(&obj, k, id, bid, base, len, cur, clen, NULL, 1, &plan));
	CHECK(dd_object_open_delta(&out, k, id, bid, base, len, obj.ptr, obj.len, clen, NULL));
	assert_memory_equal(out.ptr, cur, clen);
	dd_buf_release(&obj), dd_buf_release(&searched), dd_buf_release(&out);
	ZSTD_freeDCtx(zd);
	free(base), free(cur);
}

static void
index_with_delta_entries_round_trips_and_hostile_entries_are_refused(void **state)
{
	struct dd_pack_entry e[2] = { 0 }, bad;
	struct dd_index_pack ip = { .e = e, .n = 2 }, *got = NULL;
	struct dd_buf plain = DD_BUF_INIT;
	size_t np;

	(void)state;
	memset(ip.name, 1, 32);
	e[0] = (struct dd_pack_entry){ .type = DD_OBJ_DATA, .off = 0, .len = 100 };
	memset(e[0].id, 2, 32);
	e[1] = (struct dd_pack_entry){ .type = DD_OBJ_DELTA, .off = 100, .len = 50 };
	memset(e[1].id, 3, 32);
	memset(e[1].d.base, 2, 32);
	e[1].d.base_len = 1000;
	e[1].d.depth = 3;
	dd_index_encode(&plain, &ip, 1);
	assert_int_equal((uint8_t)plain.ptr[4], DD_INDEX_VERSION_DELTA);
	assert_int_equal(plain.len, 9 + 36 + DD_PACK_ENTRY + DD_PACK_ENTRY_DELTA);
	CHECK(dd_index_decode(&got, &np, (const uint8_t *)plain.ptr, plain.len));
	assert_int_equal(np, 1);
	assert_int_equal(got[0].e[1].type, DD_OBJ_DELTA);
	assert_memory_equal(got[0].e[1].d.base, e[1].d.base, 32);
	assert_int_equal(got[0].e[1].d.base_len, 1000);
	assert_int_equal(got[0].e[1].d.depth, 3);
	dd_index_packs_free(got, np);
	/* a version 1 index cannot hold a delta */
	plain.ptr[4] = DD_INDEX_VERSION;
	assert_int_equal(dd_index_decode(&got, &np, (const uint8_t *)plain.ptr, plain.len), -1);
	plain.ptr[4] = DD_INDEX_VERSION_DELTA;
	/* truncated inside the delta entry */
	assert_int_equal(dd_index_decode(&got, &np, (const uint8_t *)plain.ptr, plain.len - 1), -1);
	/* impossible bases: depth 0, deeper than any reader follows, itself, length 0 */
	for (int t = 0; t < 4; t++) {
		bad = e[1];
		if (t == 0)
			bad.d.depth = 0;
		else if (t == 1)
			bad.d.depth = DD_DELTA_DEPTH_MAX + 1;
		else if (t == 2)
			memcpy(bad.d.base, bad.id, 32);
		else
			bad.d.base_len = 0;
		struct dd_pack_entry two[2] = { e[0], bad };
		struct dd_index_pack bp = { .e = two, .n = 2 };
		memcpy(bp.name, ip.name, 32);
		dd_buf_clear(&plain);
		dd_index_encode(&plain, &bp, 1);
		assert_int_equal(dd_index_decode(&got, &np, (const uint8_t *)plain.ptr, plain.len), -1);
		assert_non_null(strstr(dd_error_last(), "damaged"));
	}
	/* without a delta, version 1 as before (readers of today read it) */
	ip.n = 1;
	dd_buf_clear(&plain);
	dd_index_encode(&plain, &ip, 1);
	assert_int_equal((uint8_t)plain.ptr[4], DD_INDEX_VERSION);
	dd_buf_release(&plain);
	dd_error_clear();
}

/* Write `data` as stream "t" of a new snapshot (previous version `prev`, NULL: none); its id into idhex. */
static void
write_version(struct dd_store *st, const uint8_t *data, size_t len, const struct dd_stream_info *prev,
	      char idhex[DD_ID_HEX_SIZE])
{
	struct dd_snapshot_writer *sw;
	struct dd_stream_writer *w;

	CHECK(dd_snapshot_begin(&sw, st));
	CHECK(dd_stream_begin(&w, sw, "t"));
	if (prev)
		dd_stream_set_previous(w, prev);
	for (size_t at = 0; at < len; at += 100000)
		CHECK(dd_stream_write(w, data + at, len - at < 100000 ? len - at : 100000));
	CHECK(dd_stream_end(w));
	CHECK(dd_snapshot_commit(sw, idhex));
}

/* Read stream "t" of snapshot idhex: 0 and equal to `want`, or -1 (error kept). */
static int
read_version(struct dd_store *st, const char *idhex, const uint8_t *want, size_t len)
{
	struct dd_snapshot *s = NULL;
	struct dd_stream_reader *r;
	const void *d;
	size_t n, at = 0;
	int rc;

	CHECK(dd_snapshot_load(&s, st, idhex));
	if (dd_stream_open(&r, st, dd_snapshot_find(s, "t")) < 0) {
		dd_snapshot_free(s);
		return -1;
	}
	while ((rc = dd_stream_next(r, &d, &n)) == 1) {
		assert_true(at + n <= len);
		assert_memory_equal(d, want + at, n);
		at += n;
	}
	dd_stream_close(r);
	dd_snapshot_free(s);
	if (rc < 0)
		return -1;
	assert_int_equal(at, len);
	return 0;
}

/* Of stream "t" in snapshot idhex: chunks stored as deltas, the deepest chain, bytes of objects not in `old`. */
static void
count_deltas(struct dd_store *st, const char *idhex, size_t *ndelta, int *maxdepth, uint64_t *bytes)
{
	struct dd_snapshot *s = NULL;
	const struct dd_stream_info *si;

	CHECK(dd_snapshot_load(&s, st, idhex));
	si = dd_snapshot_find(s, "t");
	*ndelta = 0, *maxdepth = 0, *bytes = 0;
	for (size_t i = 0; i < si->nchunks; i++) {
		struct dd_midx_hit hit;
		assert_true(dd_midx_find(st->idx, si->chunks[i].id, 0, &hit));
		*bytes += hit.len;
		if (hit.type == DD_OBJ_DELTA) {
			(*ndelta)++;
			if (hit.d.depth > *maxdepth)
				*maxdepth = hit.d.depth;
		}
	}
	dd_snapshot_free(s);
}

static const struct dd_stream_info *
stream_of(struct dd_store *st, const char *idhex, struct dd_snapshot **keep)
{
	CHECK(dd_snapshot_load(keep, st, idhex));
	return dd_snapshot_find(*keep, "t");
}

static void
scattered_changes_are_stored_as_deltas_and_read_back(void **state)
{
	struct fx *f = *state;
	uint8_t *v1 = malloc(SIZE), *v2 = malloc(SIZE);
	char id1[DD_ID_HEX_SIZE], id2[DD_ID_HEX_SIZE], id3[DD_ID_HEX_SIZE];
	struct dd_snapshot *s1 = NULL;
	size_t nd;
	int depth;
	uint64_t b1, b2, b3;

	fill_text(v1, SIZE, 42);
	memcpy(v2, v1, SIZE);
	scatter(v2, SIZE, 30000, 9); /* every chunk touched */
	write_version(f->st, v1, SIZE, NULL, id1);
	count_deltas(f->st, id1, &nd, &depth, &b1);
	assert_int_equal(nd, 0);
	write_version(f->st, v2, SIZE, stream_of(f->st, id1, &s1), id2);
	count_deltas(f->st, id2, &nd, &depth, &b2);
	assert_true(nd > 0);
	assert_int_equal(depth, 1);
	assert_true(b2 * 5 < b1); /* the same snapshot without a previous version costs about b1 */
	CHECK(read_version(f->st, id2, v2, SIZE));
	/* the same bytes without a previous version: full objects (dedup finds the deltas: none new) */
	write_version(f->st, v2, SIZE, NULL, id3);
	count_deltas(f->st, id3, &nd, &depth, &b3);
	assert_int_equal(b3, b2);
	dd_snapshot_free(s1);
	free(v1), free(v2);
}

/* Remove every pack file (cache and store) that holds object `id`. */
/*
 * The file backends keep recently read files open (a pack deleted by
 * someone else stays readable to a process that has it open): a test that
 * deletes packs behind an open store tells it, as gc does.
 */
static void
forget_pack(struct fx *f, const char *name)
{
	if (f->st->cache->ops->forget)
		f->st->cache->ops->forget(f->st->cache, name);
	if (f->st->be && f->st->be->ops->forget)
		f->st->be->ops->forget(f->st->be, name);
}

static void
remove_packs_of(struct fx *f, const uint8_t id[32])
{
	struct dd_midx_hit hits[DD_MIDX_MAX_PLACES];
	size_t n = dd_midx_find_all(f->st->idx, id, 0, hits, DD_MIDX_MAX_PLACES);
	char name[DD_OBJECT_NAME_SIZE];

	assert_true(n > 0);
	for (size_t i = 0; i < n; i++) {
		dd_object_name(name, sizeof(name), "packs", dd_midx_pack_get(f->st->idx, hits[i].pack).name);
		char *a = dd_asprintf("%s/cache/%s", f->sd, name), *b = dd_asprintf("%s/store/%s", f->tmp, name);
		unlink(a), unlink(b);
		free(a), free(b);
		forget_pack(f, name);
	}
}

/*
 * v1 (filled) and v2 (v1 with scattered changes) written as two versions of
 * a stream: *s2 the second's snapshot (id2), *d the base of one of its
 * chunks stored as a delta; returns that chunk's index in its stream.
 */
static size_t
two_versions_with_a_delta(struct fx *f, uint8_t *v1, uint8_t *v2, char id2[DD_ID_HEX_SIZE], struct dd_snapshot **s2,
			  struct dd_delta_ref *d)
{
	char id1[DD_ID_HEX_SIZE];
	struct dd_snapshot *s1 = NULL;
	const struct dd_stream_info *si;
	size_t i;

	fill_text(v1, SIZE, 5);
	memcpy(v2, v1, SIZE);
	scatter(v2, SIZE, 30000, 3);
	write_version(f->st, v1, SIZE, NULL, id1);
	si = stream_of(f->st, id1, &s1);
	write_version(f->st, v2, SIZE, si, id2);
	dd_snapshot_free(s1);
	si = stream_of(f->st, id2, s2);
	for (i = 0; i < si->nchunks && !dd_store_delta_of(f->st, si->chunks[i].id, d); i++)
		;
	assert_true(i < si->nchunks);
	return i;
}

static void
a_missing_base_is_named_and_the_read_refused(void **state)
{
	struct fx *f = *state;
	uint8_t *v1 = malloc(SIZE), *v2 = malloc(SIZE);
	char id2[DD_ID_HEX_SIZE];
	struct dd_snapshot *s1 = NULL;
	struct dd_delta_ref d;

	two_versions_with_a_delta(f, v1, v2, id2, &s1, &d);
	remove_packs_of(f, d.base);
	dd_snapshot_free(s1);
	/* read by a store opened after the removal: one open before keeps the files it read open (their bytes) */
	dd_store_free(f->st);
	CHECK(dd_store_open(&f->st, f->url, f->sd, 0));
	assert_int_equal(read_version(f->st, id2, v2, SIZE), -1);
	assert_non_null(strstr(dd_error_last(), "its delta base"));
	assert_non_null(strstr(dd_error_last(), "missing"));
	free(v1), free(v2);
	dd_error_clear();
}

/* The cache's advise calls, recorded (then passed on). */
static const struct dd_backend_ops *real_cache_ops;
static struct {
	char name[DD_OBJECT_NAME_SIZE];
	uint64_t off;
	size_t len;
} advised[4];
static size_t nadvised;

static void
rec_advise(struct dd_backend *be, const char *name, uint64_t off, size_t len)
{
	if (nadvised < 4) {
		snprintf(advised[nadvised].name, sizeof(advised[nadvised].name), "%s", name);
		advised[nadvised].off = off, advised[nadvised].len = len;
	}
	nadvised++;
	real_cache_ops->advise(be, name, off, len);
}

/* The read-ahead hint of a chunk stored as a delta covers its base too (the read opens the base first). */
static void
a_hint_for_a_delta_covers_its_base(void **state)
{
	struct fx *f = *state;
	uint8_t *v1 = malloc(SIZE), *v2 = malloc(SIZE);
	char id2[DD_ID_HEX_SIZE], pname[DD_OBJECT_NAME_SIZE];
	struct dd_snapshot *s1 = NULL;
	const struct dd_stream_info *si;
	struct dd_backend_ops rec;
	struct dd_midx_hit hit;
	struct dd_delta_ref d;
	size_t i;

	i = two_versions_with_a_delta(f, v1, v2, id2, &s1, &d);
	si = dd_snapshot_find(s1, "t");
	assert_non_null(f->st->cache->ops->advise);
	real_cache_ops = f->st->cache->ops;
	rec = *real_cache_ops;
	rec.advise = rec_advise;
	f->st->cache->ops = &rec;
	nadvised = 0;
	dd_store_advise_object(f->st, si->chunks[i].id);
	f->st->cache->ops = real_cache_ops;
	assert_int_equal(nadvised, 2);
	assert_true(dd_midx_find(f->st->idx, si->chunks[i].id, 0, &hit));
	assert_int_equal(hit.type, DD_OBJ_DELTA);
	dd_object_name(pname, sizeof(pname), "packs", dd_midx_pack_get(f->st->idx, hit.pack).name);
	assert_string_equal(advised[0].name, pname);
	assert_int_equal(advised[0].off, hit.off);
	assert_int_equal(advised[0].len, hit.len);
	assert_true(dd_midx_find(f->st->idx, d.base, 0, &hit));
	assert_int_equal(hit.type, DD_OBJ_DATA);
	dd_object_name(pname, sizeof(pname), "packs", dd_midx_pack_get(f->st->idx, hit.pack).name);
	assert_string_equal(advised[1].name, pname);
	assert_int_equal(advised[1].off, hit.off);
	assert_int_equal(advised[1].len, hit.len);
	/* a full object: one hint */
	f->st->cache->ops = &rec;
	nadvised = 0;
	dd_store_advise_object(f->st, d.base);
	f->st->cache->ops = real_cache_ops;
	assert_int_equal(nadvised, 1);
	dd_snapshot_free(s1);
	free(v1), free(v2);
}

static void
the_writer_stores_a_full_object_beyond_its_depth_limit(void **state)
{
	struct fx *f = *state;
	uint8_t *v = malloc(SIZE);
	char ids[DD_DELTA_DEPTH_WRITE + 3][DD_ID_HEX_SIZE];
	int gens = DD_DELTA_DEPTH_WRITE + 3, depth, seen_limit = 0;
	size_t nd;
	uint64_t b;

	fill_text(v, SIZE, 77);
	write_version(f->st, v, SIZE, NULL, ids[0]);
	for (int g = 1; g < gens; g++) {
		struct dd_snapshot *prev = NULL;
		scatter(v, SIZE, 30000, (uint64_t)g * 1000);
		write_version(f->st, v, SIZE, stream_of(f->st, ids[g - 1], &prev), ids[g]);
		dd_snapshot_free(prev);
		count_deltas(f->st, ids[g], &nd, &depth, &b);
		assert_true(depth <= DD_DELTA_DEPTH_WRITE);
		if (g <= DD_DELTA_DEPTH_WRITE)
			assert_int_equal(depth, g); /* each generation a delta of the one before */
		seen_limit |= g == DD_DELTA_DEPTH_WRITE + 1 && depth < DD_DELTA_DEPTH_WRITE;
	}
	assert_true(seen_limit); /* generation N + 1 starts over with full objects */
	CHECK(read_version(f->st, ids[gens - 1], v, SIZE));
	free(v);
}

/* Add `obj` (object id, a delta of `base` claiming depth 1 when base is not NULL) to the packer. */
static void
add_obj(struct dd_store *st, const uint8_t id[32], const uint8_t *base, uint32_t blen, const struct dd_buf *obj)
{
	struct dd_delta_ref d = { .base_len = blen, .depth = 1 };
	int existed;

	if (base)
		memcpy(d.base, base, 32);
	CHECK(dd_packer_add_delta(st, id, base ? DD_OBJ_DELTA : DD_OBJ_DATA, base ? &d : NULL, obj, &existed, 0));
	assert_false(existed);
}

static void
the_reader_follows_a_chain_up_to_its_limit_and_no_further(void **state)
{
	struct fx *f = *state;
	size_t len = 100000, n = DD_DELTA_DEPTH_MAX + 2;
	uint8_t(*ids)[32] = calloc(n, 32), *p = malloc(len), *prev = malloc(len);
	struct dd_buf obj = DD_BUF_INIT, out = DD_BUF_INIT;

	CHECK(dd_store_index_load(f->st));
	dd_packer_begin(f->st, 0);
	fill_text(p, len, 3);
	for (size_t i = 0; i < n; i++) {
		if (i)
			scatter(p, len, 5000, i);
		dd_id_compute(ids[i], f->st->keys, p, len);
		if (i == 0)
			CHECK(dd_object_seal(&obj, f->st->keys, DD_OBJ_DATA, ids[0], p, len, NULL));
		else
			CHECK(dd_object_seal_delta(&obj, f->st->keys, ids[i], ids[i - 1], prev, len, p, len, NULL));
		/* every entry claims depth 1: the reader counts for itself */
		add_obj(f->st, ids[i], i ? ids[i - 1] : NULL, (uint32_t)len, &obj);
		memcpy(prev, p, len);
	}
	CHECK(dd_packer_flush(f->st));
	/* object DD_DELTA_DEPTH_MAX is DD_DELTA_DEPTH_MAX deltas away from the full object 0 */
	CHECK(dd_store_get_object(f->st, DD_OBJ_DATA, ids[DD_DELTA_DEPTH_MAX], len, &out, NULL));
	assert_int_equal(dd_store_get_object(f->st, DD_OBJ_DATA, ids[DD_DELTA_DEPTH_MAX + 1], len, &out, NULL), -1);
	assert_non_null(strstr(dd_error_last(), "chain of more than"));
	dd_buf_release(&obj), dd_buf_release(&out);
	free(ids), free(p), free(prev);
	dd_error_clear();
}

/* Remove pack `pack` of the map from the cache only. */
static void
remove_cached_pack(struct fx *f, uint32_t pack)
{
	char name[DD_OBJECT_NAME_SIZE], *a;

	dd_object_name(name, sizeof(name), "packs", dd_midx_pack_get(f->st->idx, pack).name);
	a = dd_asprintf("%s/cache/%s", f->sd, name);
	assert_int_equal(unlink(a), 0);
	free(a);
	forget_pack(f, name);
}

/*
 * Chunk X is a delta against B in one pack and a full object in another,
 * and B is gone: the read opens the full copy from the cache's packs, from
 * the store's, and after a loose copy in the cache failed on the same base.
 */
static void
a_failed_base_does_not_stop_the_read_of_another_copy(void **state)
{
	struct fx *f = *state;
	size_t len = 100000;
	uint8_t *b = malloc(len), *x = malloc(len), bid[32], xid[32];
	struct dd_buf obj = DD_BUF_INIT, delta = DD_BUF_INIT, out = DD_BUF_INIT;
	struct dd_midx_hit full, hits[DD_MIDX_MAX_PLACES];
	struct dd_midx_pack mp;
	char name[DD_OBJECT_NAME_SIZE];

	fill_text(b, len, 11);
	memcpy(x, b, len);
	scatter(x, len, 5000, 12);
	dd_id_compute(bid, f->st->keys, b, len);
	dd_id_compute(xid, f->st->keys, x, len);
	CHECK(dd_store_index_load(f->st));
	dd_packer_begin(f->st, 0);
	CHECK(dd_object_seal(&obj, f->st->keys, DD_OBJ_DATA, bid, b, len, NULL));
	add_obj(f->st, bid, NULL, 0, &obj);
	CHECK(dd_packer_flush(f->st));
	CHECK(dd_object_seal(&obj, f->st->keys, DD_OBJ_DATA, xid, x, len, NULL));
	add_obj(f->st, xid, NULL, 0, &obj);
	CHECK(dd_packer_flush(f->st));
	assert_true(dd_midx_find(f->st->idx, xid, 0, &full));
	/* X's delta in a pack of its own, listed first (as an index file read first would) */
	mp = dd_midx_pack_get(f->st->idx, full.pack);
	mp.state = DD_MIDX_FAILED;
	dd_midx_pack_set(f->st->idx, full.pack, &mp);
	CHECK(dd_object_seal_delta(&delta, f->st->keys, xid, bid, b, len, x, len, NULL));
	add_obj(f->st, xid, bid, (uint32_t)len, &delta);
	CHECK(dd_packer_flush(f->st));
	mp.state = DD_MIDX_READY;
	dd_midx_pack_set(f->st->idx, full.pack, &mp);
	assert_int_equal(dd_midx_add(f->st->idx, xid, DD_OBJ_DATA, full.pack, full.off, full.len, NULL), 0);
	assert_int_equal(dd_midx_find_all(f->st->idx, xid, 0, hits, DD_MIDX_MAX_PLACES), 2);
	assert_int_equal(hits[0].type, DD_OBJ_DELTA);
	remove_packs_of(f, bid);
	/* the cache's packs */
	CHECK(dd_store_get_object(f->st, DD_OBJ_DATA, xid, len, &out, NULL));
	assert_int_equal(out.len, len);
	assert_memory_equal(out.ptr, x, len);
	/* the store's packs */
	remove_cached_pack(f, hits[0].pack);
	remove_cached_pack(f, hits[1].pack);
	dd_buf_clear(&out);
	CHECK(dd_store_get_object(f->st, DD_OBJ_DATA, xid, len, &out, NULL));
	assert_memory_equal(out.ptr, x, len);
	/* a loose copy in the cache that is the delta */
	dd_object_name(name, sizeof(name), "data", xid);
	f->st->cache->ops->del(f->st->cache, name);
	CHECK(f->st->cache->ops->put(f->st->cache, name, delta.ptr, delta.len));
	dd_buf_clear(&out);
	CHECK(dd_store_get_object(f->st, DD_OBJ_DATA, xid, len, &out, NULL));
	assert_memory_equal(out.ptr, x, len);
	/* with no full copy left, the base is named */
	remove_packs_of(f, xid);
	f->st->cache->ops->del(f->st->cache, name);
	CHECK(f->st->cache->ops->put(f->st->cache, name, delta.ptr, delta.len));
	assert_int_equal(dd_store_get_object(f->st, DD_OBJ_DATA, xid, len, &out, NULL), -1);
	assert_non_null(strstr(dd_error_last(), "its delta base"));
	dd_buf_release(&obj), dd_buf_release(&delta), dd_buf_release(&out);
	free(b), free(x);
	dd_error_clear();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(object_delta_round_trip_and_wrong_base_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_delta_plan_opens_to_the_chunk_and_a_wrong_one_is_not_kept, fx_setup,
						fx_teardown),
		cmocka_unit_test(index_with_delta_entries_round_trips_and_hostile_entries_are_refused),
		cmocka_unit_test_setup_teardown(scattered_changes_are_stored_as_deltas_and_read_back, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(a_missing_base_is_named_and_the_read_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_hint_for_a_delta_covers_its_base, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(the_writer_stores_a_full_object_beyond_its_depth_limit, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(the_reader_follows_a_chain_up_to_its_limit_and_no_further, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(a_failed_base_does_not_stop_the_read_of_another_copy, fx_setup,
						fx_teardown),
	};
	if (sodium_init() < 0)
		return 1;
	dd_log_set_verbosity(DD_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
