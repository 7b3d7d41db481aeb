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

/* ---- streams written as pieces: a model of the new stream as segments ---- */

#define NOT_PREV UINT64_MAX

struct seg {
	uint64_t off;        /* in the previous stream; NOT_PREV: new bytes */
	uint64_t len;
	const uint8_t *data; /* new bytes */
};

struct model {
	struct seg *s;
	size_t n, cap;
	uint8_t **owned; /* new bytes' buffers */
	size_t nowned;
};

static uint64_t
model_size(const struct model *m)
{
	uint64_t t = 0;

	for (size_t i = 0; i < m->n; i++)
		t += m->s[i].len;
	return t;
}

static void
model_insert(struct model *m, size_t at, struct seg sg)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 16;
		m->s = realloc(m->s, m->cap * sizeof(*m->s));
	}
	memmove(m->s + at + 1, m->s + at, (m->n - at) * sizeof(*m->s));
	m->s[at] = sg;
	m->n++;
}

/* The index of the segment starting at new-stream position `pos` (splitting one if needed). */
static size_t
model_split(struct model *m, uint64_t pos)
{
	uint64_t at = 0;

	for (size_t i = 0; i < m->n; i++) {
		if (at == pos)
			return i;
		if (pos < at + m->s[i].len) {
			struct seg tail = m->s[i];
			uint64_t cut = pos - at;
			m->s[i].len = cut;
			tail.len -= cut;
			if (tail.off != NOT_PREV)
				tail.off += cut;
			else
				tail.data += cut;
			model_insert(m, i + 1, tail);
			return i + 1;
		}
		at += m->s[i].len;
	}
	return m->n;
}

static const uint8_t *
new_bytes(struct model *m, size_t n, uint64_t *rs)
{
	uint8_t *p = malloc(n ? n : 1);

	fill(p, n, rs);
	m->owned = realloc(m->owned, (m->nowned + 1) * sizeof(*m->owned));
	m->owned[m->nowned++] = p;
	return p;
}

/* Replace [pos, pos + del) of the new stream by `ins` new bytes (either may be 0). */
static void
model_edit(struct model *m, uint64_t pos, uint64_t del, size_t ins, uint64_t *rs)
{
	size_t a = model_split(m, pos), b = model_split(m, pos + del);

	if (b > a)
		memmove(m->s + a, m->s + b, (m->n - b) * sizeof(*m->s));
	m->n -= b - a;
	if (ins)
		model_insert(m, a, (struct seg){ NOT_PREV, ins, new_bytes(m, ins, rs) });
}

/* Move [from, from + len) of the new stream to position `to` of what remains. */
static void
model_move(struct model *m, uint64_t from, uint64_t len, uint64_t to)
{
	size_t a = model_split(m, from), b = model_split(m, from + len), k = b - a, at;
	struct seg *cut = malloc((k ? k : 1) * sizeof(*cut));

	if (k) {
		memcpy(cut, m->s + a, k * sizeof(*cut));
		memmove(m->s + a, m->s + b, (m->n - b) * sizeof(*m->s));
	}
	m->n -= k;
	at = model_split(m, to);
	for (size_t i = 0; i < k; i++)
		model_insert(m, at + i, cut[i]);
	free(cut);
}

static void
model_free(struct model *m)
{
	for (size_t i = 0; i < m->nowned; i++)
		free(m->owned[i]);
	free(m->owned);
	free(m->s);
}

/* The new stream's bytes and, per byte, its offset in the previous stream (NOT_PREV: new). */
static void
model_bytes(const struct model *m, const uint8_t *prev, uint8_t *out, uint64_t *origin)
{
	uint64_t at = 0;

	for (size_t i = 0; i < m->n; i++) {
		const struct seg *sg = &m->s[i];
		memcpy(out + at, sg->off == NOT_PREV ? sg->data : prev + sg->off, sg->len);
		for (uint64_t k = 0; k < sg->len; k++)
			origin[at + k] = sg->off == NOT_PREV ? NOT_PREV : sg->off + k;
		at += sg->len;
	}
}

/* One random edit: replace, insert, delete or move, at a random place, a previous chunk boundary, the start or the end. */
static void
random_edit(struct model *m, const struct dd_stream_info *prev, uint64_t *rs)
{
	uint64_t size = model_size(m), pos, del, ins;
	uint64_t where = rnd_below(rs, 8), kind = rnd_below(rs, 4), big = rnd_below(rs, 4) == 0 ? 64 * KIB : 6 * KIB;

	if (where == 0)
		pos = 0;
	else if (where == 1)
		pos = size;
	else if (where <= 4 && prev->nchunks) { /* a previous chunk boundary (exact before the first edit) */
		size_t k = (size_t)rnd_below(rs, prev->nchunks);
		pos = 0;
		for (size_t i = 0; i < k; i++)
			pos += prev->chunks[i].len;
		if (pos > size)
			pos = size;
	} else {
		pos = rnd_below(rs, size + 1);
	}
	del = rnd_below(rs, big);
	if (del > size - pos)
		del = size - pos;
	ins = rnd_below(rs, big);
	if (kind == 0) /* replace */
		model_edit(m, pos, del, (size_t)(del ? del : ins), rs);
	else if (kind == 1) /* insert */
		model_edit(m, pos, 0, (size_t)ins, rs);
	else if (kind == 2) /* delete */
		model_edit(m, pos, del, 0, rs);
	else /* move */
		model_move(m, pos, del, rnd_below(rs, size - del + 1));
}

struct expect {
	const uint64_t *origin;
	const struct dd_stream_info *plain; /* the full write's chunks */
	size_t k;                           /* the full write's chunk being filled */
	uint64_t kstart;
	int small_calls;                    /* previous ranges in calls of at most 3 KiB */
};

/*
 * After writing `pos` bytes: when the chunk being filled (by the full
 * write's boundaries) is not empty and all its bytes so far are previous
 * bytes in a row, prev_at must be the previous offset of its first byte;
 * when it is empty and the last byte written was a previous one, the
 * offset after it. Otherwise it is an estimate (the delta writer's base),
 * never UINT64_MAX.
 */
static void
check_prev_at(struct dd_stream_writer *w, struct expect *e, uint64_t pos)
{
	uint64_t want;

	if (pos == e->plain->size)
		return; /* the end of the stream ends the last chunk, the chunker may not have cut there */
	while (e->k < e->plain->nchunks && e->kstart + e->plain->chunks[e->k].len <= pos)
		e->kstart += e->plain->chunks[e->k++].len;
	if (e->kstart == pos) { /* empty, after a cut: where the previous bytes would go on, if they came last */
		if (pos && e->origin[pos - 1] != NOT_PREV)
			assert_int_equal(dd_stream_prev_at(w), e->origin[pos - 1] + 1);
		assert_int_not_equal(dd_stream_prev_at(w), UINT64_MAX);
		return;
	}
	want = e->origin[e->kstart];
	for (uint64_t i = e->kstart; i < pos && want != NOT_PREV; i++)
		if (e->origin[i] != want + (i - e->kstart))
			want = NOT_PREV;
	if (want != NOT_PREV)
		assert_int_equal(dd_stream_prev_at(w), want);
	assert_int_not_equal(dd_stream_prev_at(w), UINT64_MAX);
}

/* Write the model's segments: previous ranges in random sub-ranges (empty ones too), new bytes in random pieces. */
static int
write_pieces(struct dd_stream_writer *w, const struct model *m, struct expect *e, uint64_t *rs, size_t *calls)
{
	uint64_t pos = 0;
	int r, spliced = 0;

	for (size_t i = 0; i < m->n; i++) {
		const struct seg *sg = &m->s[i];
		uint64_t done = 0;
		do {
			uint64_t n = sg->len - done;
			if (e && e->small_calls && n > 3 * KIB)
				n = 1 + rnd_below(rs, 3 * KIB); /* every chunk cut by a call: all read */
			else if (rnd_below(rs, 3) == 0)
				n = rnd_below(rs, n + 1); /* split, sometimes into an empty call */
			if (sg->off == NOT_PREV)
				r = dd_stream_write(w, sg->data + done, (size_t)n);
			else
				r = dd_stream_write_previous(w, sg->off + done, n);
			if (r != 0)
				return r;
			(*calls)++;
			done += n;
			pos += n;
			spliced |= sg->off != NOT_PREV;
			if (e && spliced) /* exact from the first previous range on (a plain write's is a guess) */
				check_prev_at(w, e, pos);
		} while (done < sg->len);
	}
	return 0;
}

static void
write_plain(struct dd_stream_writer *w, const uint8_t *p, uint64_t n, uint64_t *rs)
{
	uint64_t done = 0;

	while (done < n) {
		uint64_t k = 1 + rnd_below(rs, 100 * KIB);
		if (k > n - done)
			k = n - done;
		CHECK(dd_stream_write(w, p + done, (size_t)k));
		done += k;
	}
}

static void
assert_same_stream(const struct dd_stream_info *a, const struct dd_stream_info *b)
{
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->nchunks, b->nchunks);
	for (size_t i = 0; i < a->nchunks; i++) {
		assert_int_equal(a->chunks[i].len, b->chunks[i].len);
		assert_memory_equal(a->chunks[i].id, b->chunks[i].id, 32);
	}
	assert_memory_equal(a->checksum, b->checksum, 32);
}

struct totals {
	uint64_t prev_bytes, ref, read, fetched, calls, rounds_small, small_calls_read;
};

/*
 * One round: a random previous stream, random edits, the new stream
 * written plainly and as pieces (a content writer, compared chunk for
 * chunk, and a stream of a snapshot, compared by snapshot id).
 */
static void
one_round(struct fx *f, int flags, uint64_t seed, int round, struct totals *t)
{
	uint64_t rs = seed, psize, nsize, prevbytes = 0;
	struct dd_snapshot_writer *sw;
	struct dd_stream_writer *w;
	struct dd_snapshot *ps, *ns;
	const struct dd_stream_info *prev, *plain;
	struct dd_stream_info pieces;
	struct dd_splice_stats st;
	struct model m = { 0 };
	struct expect e;
	uint8_t *pb, *nb;
	uint64_t *origin;
	size_t nedits = 0, calls = 0;
	char pid[DD_ID_HEX_SIZE], id1[DD_ID_HEX_SIZE], id2[DD_ID_HEX_SIZE];

	psize = round == 2 ? 0 : 1 * MIB + rnd_below(&rs, 3 * MIB);
	pb = malloc(psize + 1);
	fill(pb, psize, &rs);
	CHECK(dd_snapshot_begin_flags(&sw, f->st, flags));
	write_stream(sw, "t", pb, psize);
	commit(sw, pid);
	CHECK(dd_snapshot_load(&ps, f->st, pid));
	prev = dd_snapshot_find(ps, "t");
	if (psize)
		model_insert(&m, 0, (struct seg){ 0, psize, NULL });
	if (round == 1) { /* the whole stream replaced */
		model_edit(&m, 0, psize, (size_t)psize, &rs), nedits = 1;
	} else if (round == 2) { /* nothing before */
		model_edit(&m, 0, 0, 300 * KIB, &rs), nedits = 1;
	} else if (round == 3) { /* everything deleted */
		model_edit(&m, 0, psize, 0, &rs), nedits = 1;
	} else if (round > 4) { /* round 0: nothing changed; 4: one range in many calls */
		nedits = 1 + (size_t)rnd_below(&rs, 6);
		for (size_t i = 0; i < nedits; i++)
			random_edit(&m, prev, &rs);
	}
	nsize = model_size(&m);
	nb = malloc(nsize + 1);
	origin = malloc((nsize + 1) * sizeof(*origin));
	model_bytes(&m, pb, nb, origin);
	for (size_t i = 0; i < m.n; i++)
		prevbytes += m.s[i].off == NOT_PREV ? 0 : m.s[i].len;

	/* the full write */
	CHECK(dd_snapshot_begin_flags(&sw, f->st, flags));
	CHECK(dd_stream_begin(&w, sw, "t"));
	dd_stream_set_attr(w, "alpha", "2");
	dd_stream_set_attr(w, "zeta", "1");
	write_plain(w, nb, nsize, &rs);
	CHECK(dd_stream_end(w));
	commit(sw, id1);
	CHECK(dd_snapshot_load(&ns, f->st, id1));
	plain = dd_snapshot_find(ns, "t");

	/* as pieces, detached: chunk for chunk, prev_at after every call */
	CHECK(dd_snapshot_begin_flags(&sw, f->st, flags));
	CHECK(dd_content_begin(&w, sw));
	dd_stream_set_previous(w, prev);
	e = (struct expect){ origin, plain, 0, 0, round % 10 == 9 };
	CHECK(write_pieces(w, &m, &e, &rs, &calls));
	dd_stream_write_stats(w, &st);
	memset(&pieces, 0, sizeof(pieces));
	CHECK(dd_content_end(w, &pieces));
	dd_snapshot_abort(sw);
	assert_same_stream(&pieces, plain);
	free(pieces.chunks);
	assert_int_equal(st.ref_bytes + st.read_bytes, prevbytes);
	/* few bytes read when the edits are few: each call and each edit may cost a few chunks around it */
	if (e.small_calls) {
		t->small_calls_read += st.read_bytes; /* everything read (a reader fetching ahead) */
	} else {
		if (round > 3) {
			uint64_t bound = (uint64_t)(2 * nedits + calls + 1) * 4 * 16 * KIB;
			if (st.read_bytes > bound)
				fail_msg("seed %" PRIu64 ": %" PRIu64 " bytes read, bound %" PRIu64, seed, st.read_bytes,
					 bound);
			t->rounds_small++;
		}
		t->prev_bytes += prevbytes, t->ref += st.ref_bytes, t->read += st.read_bytes;
		t->fetched += st.fetched_bytes, t->calls += calls;
	}

	/* as pieces, in a snapshot: the same snapshot id */
	CHECK(dd_snapshot_begin_flags(&sw, f->st, flags));
	CHECK(dd_stream_begin(&w, sw, "t"));
	dd_stream_set_attr(w, "zeta", "1");
	dd_stream_set_attr(w, "alpha", "2");
	dd_stream_set_previous(w, prev);
	CHECK(write_pieces(w, &m, NULL, &rs, &calls));
	CHECK(dd_stream_end(w));
	commit(sw, id2);
	assert_string_equal(id1, id2);
	if (round % 8 == 5)
		check_read_at(f->st, plain, 0, nb);

	dd_snapshot_free(ps), dd_snapshot_free(ns);
	model_free(&m);
	free(pb), free(nb), free(origin);
}

static void
rounds(struct fx *f, int flags, uint64_t seed0, int n)
{
	struct totals t = { 0 };

	for (int r = 0; r < n; r++)
		one_round(f, flags, seed0 + (uint64_t)r * 7919, r, &t);
	fprintf(stderr, "splice: %d rounds: %" PRIu64 " previous bytes written, %" PRIu64 " by reference, %" PRIu64
		" read (%" PRIu64 " fetched) in %" PRIu64 " calls\n",
		n, t.prev_bytes, t.ref, t.read, t.fetched, t.calls);
	if (n > 9)
		assert_true(t.small_calls_read > 0);
	assert_true(t.rounds_small > 0);
	assert_true(t.read * 10 < t.prev_bytes); /* mostly by reference */
}

/* Property: whatever the edits and however the pieces are cut into calls, the pieces write is the full write. */
static void
pieces_chunk_exactly_like_a_full_write(void **state)
{
	rounds(*state, 0, 0x19190001, 40);
}

/* The same for a private snapshot writer. */
static void
pieces_of_a_private_writer_chunk_exactly_like_a_full_write(void **state)
{
	rounds(*state, DD_SNAPSHOT_PRIVATE, 0x19190002, 12);
}

/*
 * Refusals: a range outside the previous stream, no previous stream set,
 * and a previous chunk gone (its private pack removed): DD_NOTFOUND on the
 * path by reference and on the path that reads.
 */
static void
write_previous_refuses_what_it_cannot_do(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot_writer *sw;
	struct dd_stream_writer *w;
	struct dd_snapshot *s;
	struct dd_stream_info kept;
	uint64_t seed = 1904;
	size_t n = 512 * KIB;
	uint8_t *p = malloc(n);
	char id[DD_ID_HEX_SIZE], *dir;

	fill(p, n, &seed);
	two_streams(f->st, DD_SNAPSHOT_PRIVATE, p, n, p, 0, id);
	CHECK(dd_snapshot_load(&s, f->st, id));
	dd_stream_info_copy(&kept, dd_snapshot_find(s, "a"));
	dd_snapshot_free(s);
	CHECK(dd_snapshot_begin(&sw, f->st));
	CHECK(dd_stream_begin(&w, sw, "x"));
	assert_int_equal(dd_stream_write_previous(w, 0, 1), -1); /* no previous stream */
	dd_stream_set_previous(w, &kept);
	assert_int_equal(dd_stream_write_previous(w, n, 1), -1);
	assert_int_equal(dd_stream_write_previous(w, 1, n), -1);
	assert_int_equal(dd_stream_write_previous(w, UINT64_MAX, 2), -1);
	CHECK(dd_stream_write_previous(w, n, 0));
	CHECK(dd_stream_write_previous(w, 0, kept.chunks[0].len + 10));
	dd_stream_abort(w);
	dd_snapshot_abort(sw);
	/* the private pack goes */
	dd_store_free(f->st);
	dir = dd_path_join(f->sd, "cache/private/packs");
	assert_int_equal(dd_rm_rf(dir), 0);
	free(dir);
	dir = dd_path_join(f->sd, "cache/private/index");
	assert_int_equal(dd_rm_rf(dir), 0);
	free(dir);
	CHECK(dd_store_open(&f->st, f->url, f->sd, 0));
	for (int path = 0; path < 2; path++) {
		CHECK(dd_snapshot_begin(&sw, f->st));
		CHECK(dd_stream_begin(&w, sw, "x"));
		dd_stream_set_previous(w, &kept);
		if (path)
			CHECK(dd_stream_write(w, "new", 3)); /* not at a cut: the chunk must be read */
		assert_int_equal(dd_stream_write_previous(w, 0, n), DD_NOTFOUND);
		dd_stream_abort(w);
		dd_snapshot_abort(sw);
	}
	dd_stream_info_clear(&kept);
	free(p);
}

/*
 * prev_at, deterministically: new bytes equal to the previous stream's
 * first 5 then the rest of its first chunk as a range (read: not at a
 * cut) end exactly at a cut; prev_at is then the offset after that chunk.
 * A chunk taken by reference next leaves it after that one; new bytes do
 * not move it (an estimate from then on, for the delta writer).
 */
static void
prev_at_follows_the_previous_bytes(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot_writer *sw;
	struct dd_stream_writer *w;
	struct dd_snapshot *s;
	const struct dd_stream_info *si;
	struct dd_splice_stats st;
	uint64_t seed = 1905, c0, c1;
	size_t n = 256 * KIB;
	uint8_t *p = malloc(n);
	char id[DD_ID_HEX_SIZE];

	fill(p, n, &seed);
	two_streams(f->st, 0, p, n, p, 0, id);
	CHECK(dd_snapshot_load(&s, f->st, id));
	si = dd_snapshot_find(s, "a");
	c0 = si->chunks[0].len, c1 = si->chunks[1].len;
	CHECK(dd_snapshot_begin(&sw, f->st));
	CHECK(dd_stream_begin(&w, sw, "x"));
	dd_stream_set_previous(w, si);
	CHECK(dd_stream_write(w, p, 5));
	CHECK(dd_stream_write_previous(w, 5, c0 - 5));
	assert_true(dd_stream_at_cut(w));
	assert_int_equal(dd_stream_prev_at(w), c0);
	CHECK(dd_stream_write_previous(w, c0, c1));
	assert_int_equal(dd_stream_prev_at(w), c0 + c1);
	CHECK(dd_stream_write(w, "x", 1));
	assert_int_equal(dd_stream_prev_at(w), c0 + c1);
	dd_stream_write_stats(w, &st);
	assert_int_equal(st.read_bytes, c0 - 5);
	assert_int_equal(st.ref_bytes, c1);
	assert_int_equal(st.ref_chunks, 1);
	assert_int_equal(st.fetched_chunks, 1);
	dd_stream_abort(w);
	dd_snapshot_abort(sw);
	dd_snapshot_free(s);
	free(p);
}

/*
 * dd_stream_previous_view gives every byte of the previous stream from
 * any offset up to its chunk's end, and refuses offsets past it. Reading
 * a chunk's bytes, then appending them (the markers merge: rows read, then
 * their ranges appended), fetches each chunk once: the splice keeps the
 * last two.
 */
static void
previous_view_reads_what_write_previous_appends(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot_writer *sw;
	struct dd_stream_writer *w;
	struct dd_snapshot *s;
	const struct dd_stream_info *si;
	struct dd_splice_stats st;
	uint64_t seed = 1907, off = 0, step = 1;
	size_t n = 1024 * KIB, len;
	uint8_t *p = malloc(n);
	const char *v;
	char id[DD_ID_HEX_SIZE];

	fill(p, n, &seed);
	two_streams(f->st, 0, p, n, p, 0, id);
	CHECK(dd_snapshot_load(&s, f->st, id));
	si = dd_snapshot_find(s, "a");
	assert_true(si->nchunks > 2);
	CHECK(dd_snapshot_begin(&sw, f->st));
	CHECK(dd_stream_begin(&w, sw, "x"));
	assert_int_equal(dd_stream_previous_view(w, 0, &v, &len), -1); /* no previous stream */
	dd_stream_set_previous(w, si);
	assert_int_equal(dd_stream_previous_view(w, n, &v, &len), -1);
	CHECK(dd_stream_write(w, "new", 3)); /* never at a cut: every previous byte is read */
	while (off < n) { /* odd pieces, each appended after its view, the view one piece ahead */
		uint64_t next;
		CHECK(dd_stream_previous_view(w, off, &v, &len));
		assert_true(len > 0 && off + len <= n);
		assert_memory_equal(v, p + off, len);
		next = off + (len < step ? len : step);
		if (next < n)
			CHECK(dd_stream_previous_view(w, next, &v, &len));
		CHECK(dd_stream_write_previous(w, off, next - off));
		off = next;
		step = step * 7 % 100003 + 1;
	}
	dd_stream_write_stats(w, &st);
	assert_int_equal(st.fetched_chunks, si->nchunks);
	dd_stream_abort(w);
	dd_snapshot_abort(sw);
	dd_snapshot_free(s);
	free(p);
}

/*
 * A reader from offset 0 reads every chunk and checks the stream checksum,
 * even when the list starts with an empty chunk (a damaged or forged
 * manifest): it is never skipped as lying before the offset.
 */
static void
open_at_zero_checks_the_checksum(void **state)
{
	struct fx *f = *state;
	struct dd_snapshot *s;
	struct dd_stream_reader *r;
	struct dd_stream_info forged;
	const void *data;
	size_t len, n = 100 * KIB;
	uint64_t seed = 1906;
	uint8_t *p = malloc(n);
	char id[DD_ID_HEX_SIZE];
	int rc;

	fill(p, n, &seed);
	two_streams(f->st, 0, p, n, p, 0, id);
	CHECK(dd_snapshot_load(&s, f->st, id));
	dd_stream_info_copy(&forged, dd_snapshot_find(s, "a"));
	forged.chunks = realloc(forged.chunks, (forged.nchunks + 1) * sizeof(*forged.chunks));
	memmove(forged.chunks + 1, forged.chunks, forged.nchunks * sizeof(*forged.chunks));
	memcpy(forged.chunks[0].id, forged.chunks[1].id, 32);
	forged.chunks[0].len = 0;
	forged.nchunks++;
	CHECK(dd_stream_open_at(&r, f->st, &forged, 0));
	while ((rc = dd_stream_next(r, &data, &len)) == 1)
		;
	assert_int_equal(rc, -1);
	dd_stream_close(r);
	dd_stream_info_clear(&forged);
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
		cmocka_unit_test_setup_teardown(open_at_zero_checks_the_checksum, fx_small_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(pieces_chunk_exactly_like_a_full_write, fx_small_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(pieces_of_a_private_writer_chunk_exactly_like_a_full_write, fx_small_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(write_previous_refuses_what_it_cannot_do, fx_small_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(prev_at_follows_the_previous_bytes, fx_small_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(previous_view_reads_what_write_previous_appends, fx_small_setup,
						fx_teardown),
	};
	if (sodium_init() < 0)
		return 1;
	dd_log_set_verbosity(DD_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
