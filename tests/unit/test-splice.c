/*
 * tests/unit/test-splice.c: incremental snapshots on the store side
 * (store.h "incremental snapshots", src/store/splice.c): a stream of the
 * previous snapshot reused as it is (same snapshot id as writing it again;
 * refused when its pack went), a reader opened at any offset, and streams
 * written as pieces (ranges of the previous stream by reference + new
 * bytes) that are chunk for chunk the full write of the same bytes,
 * checked by property tests over random edits with a seeded generator.
 * The fixture's store gets small chunk sizes so a few MiB make hundreds
 * of chunks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <inttypes.h>
#include <sodium.h>

#include "store-testlib.h"
#include "store-fx.h"
#include "store/internal.h"
#include "util/err.h"
#include "util/log.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* xorshift64*: the tests' own seeded generator (reproducible from the seed printed on failure) */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static uint64_t
rnd_below(uint64_t *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

/* Bytes that chunk like real data: runs of words and of random bytes. */
static void
fill(uint8_t *p, size_t n, uint64_t *s)
{
	size_t i = 0;

	while (i < n) {
		uint64_t r = rnd(s);
		size_t run = 16 + (size_t)(r % 200);
		for (size_t k = 0; k < run && i < n; k++, i++)
			p[i] = (r >> 40) & 1 ? (uint8_t)("abcdefgh ,\n"[(r >> (k % 48)) % 11]) : (uint8_t)rnd(s);
	}
}

/* Small chunks: 1 KiB / 4 KiB / 16 KiB (the gear table's key does not matter here). */
static int
fx_small_setup(void **state)
{
	static const uint8_t key[32] = { 19 };
	struct fx *f;

	if (fx_setup(state) < 0)
		return -1;
	f = *state;
	return dd_chunker_params_init(f->st->chunker, 1 * KIB, 4 * KIB, 16 * KIB, key);
}

static void
write_stream(struct dd_snapshot_writer *sw, const char *name, const uint8_t *p, size_t n)
{
	struct dd_stream_writer *w;

	CHECK(dd_stream_begin(&w, sw, name));
	dd_stream_set_attr(w, "zeta", "1");
	dd_stream_set_attr(w, "alpha", "2");
	CHECK(dd_stream_write(w, p, n));
	CHECK(dd_stream_end(w));
}

static void
commit(struct dd_snapshot_writer *sw, char id[DD_ID_HEX_SIZE])
{
	int rc = dd_snapshot_commit(sw, id);

	if (rc < 0)
		fail_msg("commit: %s", dd_error_last());
}

/* Read stream `si` from byte `off` on and compare with want[off..). */
static void
check_read_at(struct dd_store *st, const struct dd_stream_info *si, uint64_t off, const uint8_t *want)
{
	struct dd_stream_reader *r;
	const void *data;
	size_t len;
	uint64_t at = off;
	int rc;

	CHECK(dd_stream_open_at(&r, st, si, off));
	while ((rc = dd_stream_next(r, &data, &len)) == 1) {
		assert_true(at + len <= si->size);
		assert_memory_equal(data, want + at, len);
		at += len;
	}
	if (rc < 0)
		fail_msg("reading from %" PRIu64 ": %s", off, dd_error_last());
	assert_int_equal(at, si->size);
	dd_stream_close(r);
}

/* A snapshot of streams "a" (n bytes of p) and "b" (m bytes of q). */
static void
two_streams(struct dd_store *st, int flags, const uint8_t *p, size_t n, const uint8_t *q, size_t m,
	    char id[DD_ID_HEX_SIZE])
{
	struct dd_snapshot_writer *sw;

	CHECK(dd_snapshot_begin_flags(&sw, st, flags));
	write_stream(sw, "a", p, n);
	write_stream(sw, "b", q, m);
	commit(sw, id);
}

/*
 * Reusing an unchanged stream gives the snapshot id that writing it again
 * gives (the attributes sorted like a written stream's), for a public and
 * a private writer; a name twice is refused either way round.
 */
static void
reuse_of_an_unchanged_stream_gives_the_same_id(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot_writer *sw;
	struct dd_stream_writer *w;
	struct dd_snapshot *s;
	uint64_t seed = 1901;
	size_t n = 3 * MIB, m = 200 * KIB;
	uint8_t *p = malloc(n), *q = malloc(m);
	char first[DD_ID_HEX_SIZE], again[DD_ID_HEX_SIZE];
	const int flags[] = { 0, DD_SNAPSHOT_PRIVATE };

	fill(p, n, &seed);
	fill(q, m, &seed);
	two_streams(f->st, 0, p, n, q, m, first);
	CHECK(dd_snapshot_load(&s, f->st, first));
	assert_true(dd_snapshot_find(s, "a")->nchunks > 100);
	for (size_t i = 0; i < 2; i++) {
		CHECK(dd_snapshot_begin_flags(&sw, f->st, flags[i]));
		write_stream(sw, "b", q, m);
		CHECK(dd_snapshot_reuse_stream(sw, dd_snapshot_find(s, "a")));
		assert_int_equal(dd_snapshot_reuse_stream(sw, dd_snapshot_find(s, "a")), -1); /* twice */
		assert_non_null(strstr(dd_error_last(), "written twice"));
		assert_int_equal(dd_stream_begin(&w, sw, "a"), -1);
		assert_int_equal(dd_snapshot_reuse_stream(sw, dd_snapshot_find(s, "b")), -1); /* written already */
		assert_true(dd_snapshot_commit(sw, again) >= 0);
		assert_string_equal(again, first);
	}
	/* the private snapshot of the same id reads back */
	dd_snapshot_free(s);
	CHECK(dd_snapshot_load(&s, f->st, again));
	check_read_at(f->st, dd_snapshot_find(s, "a"), 0, p);
	dd_snapshot_free(s);
	free(p), free(q);
}

/*
 * A stream of a private snapshot whose pack and index file went from the
 * cache: no pack holds its chunks, so reusing it is refused (DD_NOTFOUND,
 * read the data instead), for a public and a private writer.
 */
static void
reuse_of_a_stream_whose_pack_went_is_refused(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot_writer *sw;
	struct dd_snapshot *s;
	struct dd_stream_info kept;
	uint64_t seed = 1902;
	size_t n = 1 * MIB, m = 10 * KIB;
	uint8_t *p = malloc(n), *q = malloc(m);
	char id[DD_ID_HEX_SIZE], *dir;

	fill(p, n, &seed);
	fill(q, m, &seed);
	two_streams(f->st, DD_SNAPSHOT_PRIVATE, p, n, q, m, id);
	CHECK(dd_snapshot_load(&s, f->st, id));
	dd_stream_info_copy(&kept, dd_snapshot_find(s, "a"));
	dd_snapshot_free(s);
	dd_store_free(f->st);
	dir = dd_path_join(f->sd, "cache/private/packs");
	assert_int_equal(dd_rm_rf(dir), 0);
	free(dir);
	dir = dd_path_join(f->sd, "cache/private/index");
	assert_int_equal(dd_rm_rf(dir), 0);
	free(dir);
	CHECK(dd_store_open(&f->st, f->url, f->sd, 0));
	for (int priv = 0; priv < 2; priv++) {
		CHECK(dd_snapshot_begin_flags(&sw, f->st, priv ? DD_SNAPSHOT_PRIVATE : 0));
		assert_int_equal(dd_snapshot_reuse_stream(sw, &kept), DD_NOTFOUND);
		assert_non_null(strstr(dd_error_last(), "is in no pack"));
		dd_snapshot_abort(sw);
	}
	dd_stream_info_clear(&kept);
	free(p), free(q);
}

/*
 * dd_stream_open_at() at every chunk boundary, inside chunks, at 0, at the
 * end (nothing to read) and past it (refused); an empty stream too.
 */
static void
open_at_reads_from_any_offset(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot *s;
	struct dd_stream_reader *r;
	const struct dd_stream_info *si;
	const void *data;
	size_t len, n = 600 * KIB;
	uint64_t seed = 1903, start = 0;
	uint8_t *p = malloc(n);
	char id[DD_ID_HEX_SIZE];

	fill(p, n, &seed);
	two_streams(f->st, 0, p, n, p, 0, id);
	CHECK(dd_snapshot_load(&s, f->st, id));
	si = dd_snapshot_find(s, "a");
	assert_true(si->nchunks > 20);
	for (size_t k = 0; k < si->nchunks; k++) {
		check_read_at(f->st, si, start, p);
		check_read_at(f->st, si, start + 1, p);
		check_read_at(f->st, si, start + rnd_below(&seed, si->chunks[k].len), p);
		check_read_at(f->st, si, start + si->chunks[k].len - 1, p);
		start += si->chunks[k].len;
	}
	CHECK(dd_stream_open_at(&r, f->st, si, n));
	assert_int_equal(dd_stream_next(r, &data, &len), 0);
	dd_stream_close(r);
	assert_int_equal(dd_stream_open_at(&r, f->st, si, n + 1), -1);
	si = dd_snapshot_find(s, "b");
	CHECK(dd_stream_open_at(&r, f->st, si, 0));
	assert_int_equal(dd_stream_next(r, &data, &len), 0);
	dd_stream_close(r);
	assert_int_equal(dd_stream_open_at(&r, f->st, si, 1), -1);
	dd_snapshot_free(s);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(reuse_of_an_unchanged_stream_gives_the_same_id, fx_small_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(reuse_of_a_stream_whose_pack_went_is_refused, fx_small_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(open_at_reads_from_any_offset, fx_small_setup, fx_teardown),
	};
	if (sodium_init() < 0)
		return 1;
	dd_log_set_verbosity(DD_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
