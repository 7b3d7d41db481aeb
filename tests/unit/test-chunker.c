/*
 * tests/unit/test-chunker.c: FastCDC boundaries: stable under insertions
 * and deletions, independent of write sizes, keyed, within bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sodium.h>

#include "store-testlib.h"
#include "store/chunker.h"

#define DATA_LEN (48u << 20)

static uint8_t *data;
static struct dd_chunker_params params;
static const uint8_t key1[32] = { 1 }, key2[32] = { 2 };

/* Cut offsets (chunk ends) of buf, fed in pieces of `piece` bytes (0 = varying). */
static size_t
cuts(const struct dd_chunker_params *p, const uint8_t *buf, size_t len, size_t piece, size_t **out)
{
	struct dd_chunker c;
	size_t n = 0, cap = 16, off = 0, step = 1;
	size_t *v = malloc(cap * sizeof(*v));

	dd_chunker_init(&c, p);
	while (off < len) {
		size_t want = piece ? piece : (step = step * 7 % 100003 + 1);
		if (want > len - off)
			want = len - off;
		size_t done = 0;
		while (done < want) {
			int cut;
			done += dd_chunker_scan(&c, buf + off + done, want - done, &cut);
			if (cut) {
				if (n == cap)
					v = realloc(v, (cap *= 2) * sizeof(*v));
				v[n++] = off + done;
			}
		}
		off += want;
	}
	if (!n || v[n - 1] != len) {
		if (n == cap)
			v = realloc(v, (cap *= 2) * sizeof(*v));
		v[n++] = len; /* the end of the stream ends the last chunk */
	}
	*out = v;
	return n;
}

/* Hash each chunk; count chunks of b that do not occur in a. */
static size_t
new_chunks(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, size_t *nb_out)
{
	size_t *ca, *cb, na = cuts(&params, a, alen, 1 << 20, &ca), nb = cuts(&params, b, blen, 1 << 20, &cb);
	uint8_t (*ha)[16] = malloc(na * 16);
	size_t fresh = 0;

	for (size_t i = 0, s = 0; i < na; s = ca[i++])
		crypto_generichash(ha[i], 16, a + s, ca[i] - s, NULL, 0);
	for (size_t i = 0, s = 0; i < nb; s = cb[i++]) {
		uint8_t h[16];
		int found = 0;
		crypto_generichash(h, 16, b + s, cb[i] - s, NULL, 0);
		for (size_t j = 0; j < na && !found; j++)
			found = !memcmp(h, ha[j], 16);
		fresh += !found;
	}
	*nb_out = nb;
	free(ha), free(ca), free(cb);
	return fresh;
}

static void
cut_points_do_not_depend_on_write_sizes(void **state)
{
	size_t *a, *b, *c;
	size_t na = cuts(&params, data, DATA_LEN, DATA_LEN, &a);
	size_t nb = cuts(&params, data, DATA_LEN, 4096, &b);
	size_t nc = cuts(&params, data, DATA_LEN, 0, &c);

	assert_int_equal(na, nb);
	assert_int_equal(na, nc);
	assert_memory_equal(a, b, na * sizeof(*a));
	assert_memory_equal(a, c, na * sizeof(*a));
	free(a), free(b), free(c);
}

static void
chunk_sizes_stay_within_bounds_and_near_average(void **state)
{
	size_t *v, n = cuts(&params, data, DATA_LEN, 1 << 16, &v);

	for (size_t i = 0, s = 0; i < n; s = v[i++]) {
		size_t len = v[i] - s;
		assert_true(len <= params.max);
		if (i + 1 < n)
			assert_true(len >= params.min);
	}
	double avg = (double)DATA_LEN / (double)n;
	fprintf(stderr, "# %zu chunks, average %.0f KiB\n", n, avg / 1024);
	assert_true(avg > params.avg * 0.6 && avg < params.avg * 1.6);
	free(v);
}

static void
insertion_changes_only_the_chunks_around_it(void **state)
{
	const size_t at = 17u << 20, ins = 1000;
	uint8_t *b = malloc(DATA_LEN + ins);
	size_t nb, fresh;

	memcpy(b, data, at);
	memset(b + at, 'x', ins);
	memcpy(b + at + ins, data + at, DATA_LEN - at);
	fresh = new_chunks(data, DATA_LEN, b, DATA_LEN + ins, &nb);
	fprintf(stderr, "# insertion: %zu of %zu chunks new\n", fresh, nb);
	assert_true(fresh >= 1 && fresh <= 2);
	/* and near the start */
	memcpy(b, "hello", 5);
	memcpy(b + 5, data, DATA_LEN);
	fresh = new_chunks(data, DATA_LEN, b, DATA_LEN + 5, &nb);
	assert_true(fresh >= 1 && fresh <= 2);
	free(b);
}

static void
deletion_changes_only_the_chunks_around_it(void **state)
{
	const size_t at = 23u << 20, del = 5000;
	uint8_t *b = malloc(DATA_LEN);
	size_t nb, fresh;

	memcpy(b, data, at);
	memcpy(b + at, data + at + del, DATA_LEN - at - del);
	fresh = new_chunks(data, DATA_LEN, b, DATA_LEN - del, &nb);
	fprintf(stderr, "# deletion: %zu of %zu chunks new\n", fresh, nb);
	assert_true(fresh >= 1 && fresh <= 2);
	free(b);
}

static void
gear_table_depends_on_the_key(void **state)
{
	struct dd_chunker_params other;
	size_t *a, *b;

	assert_int_equal(dd_chunker_params_init(&other, params.min, params.avg, params.max, key2), 0);
	assert_memory_not_equal(other.gear, params.gear, sizeof(params.gear));
	size_t na = cuts(&params, data, 8u << 20, 1 << 20, &a);
	size_t nb = cuts(&other, data, 8u << 20, 1 << 20, &b);
	assert_true(na != nb || memcmp(a, b, na * sizeof(*a)) != 0);
	free(a), free(b);
}

static void
invalid_sizes_are_refused(void **state)
{
	struct dd_chunker_params p;

	assert_int_equal(dd_chunker_params_init(&p, 1024, 3000, 8192, key1), -1); /* avg not a power of two */
	assert_int_equal(dd_chunker_params_init(&p, 4096, 2048, 8192, key1), -1); /* min > avg */
	assert_int_equal(dd_chunker_params_init(&p, 16, 64, 128, key1), -1);      /* min too small */
	assert_int_equal(dd_chunker_params_init(&p, 1 << 20, 1 << 22, 1u << 30, key1), -1); /* max too big */
	assert_int_equal(dd_chunker_params_init(&p, 256, 1024, 4096, key1), 0);
}

static int
setup(void **state)
{
	struct gen g = { 42, DATA_LEN, NULL, 0 };

	data = malloc(DATA_LEN);
	gen_fill(&g, data, 0, DATA_LEN);
	return dd_chunker_params_init(&params, DD_CHUNK_MIN_DEFAULT, DD_CHUNK_AVG_DEFAULT, DD_CHUNK_MAX_DEFAULT,
				      key1);
}

static int
teardown(void **state)
{
	free(data);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cut_points_do_not_depend_on_write_sizes),
		cmocka_unit_test(chunk_sizes_stay_within_bounds_and_near_average),
		cmocka_unit_test(insertion_changes_only_the_chunks_around_it),
		cmocka_unit_test(deletion_changes_only_the_chunks_around_it),
		cmocka_unit_test(gear_table_depends_on_the_key),
		cmocka_unit_test(invalid_sizes_are_refused),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
