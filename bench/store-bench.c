/*
 * bench/store-bench.c: drive the store without git or PostgreSQL, for
 * bench/store-vs-restic.sh.
 *
 *   store-bench generate BYTES          realistic test data on stdout: 64 KiB
 *                                       blocks, half words/JSON-ish text, half random
 *   store-bench init STATEDIR URL       create the store (not timed by the script)
 *   store-bench store STATEDIR URL      one snapshot of stdin (one stream);
 *                                       prints the snapshot id and MB/s on stderr
 *   store-bench restore STATEDIR URL ID write the stream back to stdout
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store-keys.h"
#include "util/err.h"
#include "util/fs.h"

static double
now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53ull, x ^= x >> 33;
	return x;
}

static int
generate(unsigned long long total)
{
	static const char *const words[] = { "customer", "order", "invoice", "2024-01-17 10:22:31+00", "paid",
		"pending", "street", "amount", "{\"id\":", "\"name\":", "true", "null", "delivery", "status",
		"berlin", "lisbon", "42.50", "EUR" };
	uint8_t blk[65536];
	uint64_t s = 12345;

	for (unsigned long long off = 0; off < total; off += sizeof(blk)) {
		size_t i = 0;
		while (i < sizeof(blk) / 2) {
			s = mix64(s + 1);
			const char *w = words[s % (sizeof(words) / sizeof(*words))];
			for (size_t k = 0; w[k] && i < sizeof(blk) / 2; k++)
				blk[i++] = (uint8_t)w[k];
			if (i < sizeof(blk) / 2)
				blk[i++] = (s >> 20) % 7 ? ' ' : '\n';
		}
		for (; i < sizeof(blk); i += 8) {
			s = mix64(s + 1);
			memcpy(blk + i, &s, 8);
		}
		size_t n = total - off < sizeof(blk) ? (size_t)(total - off) : sizeof(blk);
		if (fwrite(blk, 1, n, stdout) != n)
			return 1;
	}
	return 0;
}

static int
fail(void)
{
	fprintf(stderr, "error: %s\n", dd_error_last());
	return 1;
}

int
main(int argc, char **argv)
{
	struct dd_store *st;
	int created;

	if (sodium_init() < 0)
		return 1;
	if (argc == 3 && !strcmp(argv[1], "generate"))
		return generate(strtoull(argv[2], NULL, 10));
	if (argc == 4 && !strcmp(argv[1], "init"))
		return dd_store_setup(argv[3], argv[2], NULL, &created) < 0 ? fail() : 0;
	if (argc == 4 && !strcmp(argv[1], "store")) {
		struct dd_snapshot_writer *sw;
		struct dd_stream_writer *w;
		static uint8_t buf[1 << 20];
		unsigned long long total = 0;
		char id[DD_ID_HEX_SIZE];
		ssize_t n;
		double t0 = now();

		if (dd_store_open(&st, argv[3], argv[2], 0) < 0)
			return fail();
		dd_snapshot_begin(&sw, st);
		if (dd_stream_begin(&w, sw, "stdin") < 0)
			return fail();
		while ((n = read(0, buf, sizeof(buf))) > 0) {
			if (dd_stream_write(w, buf, (size_t)n) < 0)
				return fail();
			total += (unsigned long long)n;
		}
		if (dd_stream_end(w) < 0 || dd_snapshot_commit(sw, id) < 0)
			return fail();
		double dt = now() - t0;
		printf("%s\n", id);
		fprintf(stderr, "stored %llu bytes in %.2f s: %.1f MB/s\n", total, dt, total / dt / 1e6);
		dd_store_free(st);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "restore")) {
		struct dd_snapshot *s;
		struct dd_stream_reader *r;
		const void *d;
		size_t l;
		int n;

		if (dd_store_open(&st, argv[3], argv[2], 0) < 0 || dd_snapshot_load(&s, st, argv[4]) != 0 ||
		    dd_stream_open(&r, st, dd_snapshot_find(s, "stdin")) < 0)
			return fail();
		while ((n = dd_stream_next(r, &d, &l)) == 1)
			if (fwrite(d, 1, l, stdout) != l)
				return 1;
		if (n < 0)
			return fail();
		dd_stream_close(r);
		dd_snapshot_free(s);
		dd_store_free(st);
		return 0;
	}
	fprintf(stderr, "usage: store-bench generate BYTES | store STATEDIR URL | restore STATEDIR URL ID\n");
	return 2;
}
