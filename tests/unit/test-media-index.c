/*
 * tests/unit/test-media-index.c: the media folder's local index reader
 * (media/index.c) on records the real writer made with entries it would
 * never be given: the reader stops at such an entry ("read again"), and
 * hands out the valid ones before it. Findings of fuzz/fuzz-media-index.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "media/internal.h"
#include "store-testlib.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

struct attr_set {
	const char *what;
	struct dd_kv kv[5];
	size_t n;
	uint32_t chunk; /* content length, 0 none */
};

/* A record of "a.txt" (a valid file), then "b" with the attributes given: how many entries the reader hands out. */
static int
entries_read(const struct attr_set *s)
{
	char *dir = make_tmpdir(), *index = dd_path_join(dir, "index");
	struct dd_kv good[3] = { { "mode", "644" }, { "mtime", "1700000000.000000001" }, { "type", "file" } };
	struct dd_chunk_ref ch = { .len = 3 }, ch2 = { .len = s->chunk };
	struct dd_stream_info a = { .name = "a.txt", .attrs = good, .nattrs = 3, .size = 3, .chunks = &ch, .nchunks = 1 };
	struct dd_stream_info b = { .name = "b", .attrs = (struct dd_kv *)s->kv, .nattrs = s->n, .size = s->chunk,
				    .chunks = &ch2, .nchunks = s->chunk ? 1 : 0 };
	struct idx_stat st = { .size = 3, .ino = 7 };
	struct idx_writer *w;
	struct idx_reader *r;
	const struct idx_entry *e;
	int n = 0;

	if (idx_writer_new(&w, dir) < 0 || idx_writer_add(w, &a, &st) < 0 || idx_writer_add(w, &b, &st) < 0 ||
	    idx_writer_finish(w, "index", 0, "") < 0)
		fail_msg("%s: %s", s->what, dd_error_last());
	assert_int_equal(idx_open(&r, index), 0);
	while (idx_next(r, &e) == 1) {
		assert_string_equal(e->info.name, n ? "b" : "a.txt");
		n++;
	}
	idx_close(r);
	dd_rm_rf(dir);
	free(index);
	free(dir);
	return n;
}

/* Everything a restore's check would refuse in a listing entry stops the reader there. */
static void
an_entry_a_listing_could_not_hold_is_not_handed_out(void **state)
{
	static const struct attr_set bad[] = {
		{ "no mtime", { { "mode", "644" }, { "type", "file" } }, 2, 0 },
		{ "no mode", { { "mtime", "1.000000000" }, { "type", "file" } }, 2, 0 },
		{ "bad mtime", { { "mode", "644" }, { "mtime", "1.5" }, { "type", "file" } }, 3, 0 },
		{ "setuid file", { { "mode", "4755" }, { "mtime", "1.000000000" }, { "type", "file" } }, 3, 0 },
		{ "no type", { { "mode", "644" }, { "mtime", "1.000000000" } }, 2, 0 },
		{ "unknown type", { { "mode", "644" }, { "mtime", "1.000000000" }, { "type", "fifo" } }, 3, 0 },
		{ "file with a target",
		  { { "mode", "644" }, { "mtime", "1.000000000" }, { "target", "x" }, { "type", "file" } }, 4, 0 },
		{ "symlink without one", { { "mode", "777" }, { "mtime", "1.000000000" }, { "type", "symlink" } }, 3, 0 },
		{ "folder with content", { { "mode", "755" }, { "mtime", "1.000000000" }, { "type", "dir" } }, 3, 5 },
		{ "unknown attribute",
		  { { "mode", "644" }, { "mtime", "1.000000000" }, { "owner", "0" }, { "type", "file" } }, 4, 0 },
	};
	static const struct attr_set ok[] = {
		{ "file", { { "mode", "600" }, { "mtime", "-1.250000000" }, { "type", "file" } }, 3, 9 },
		{ "symlink", { { "mode", "777" }, { "mtime", "1.000000000" }, { "target", "a.txt" }, { "type", "symlink" } },
		  4, 0 },
		{ "setgid folder", { { "mode", "2755" }, { "mtime", "1.000000000" }, { "type", "dir" } }, 3, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (entries_read(&bad[i]) != 1)
			fail_msg("%s: handed out", bad[i].what);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (entries_read(&ok[i]) != 2)
			fail_msg("%s: not handed out", ok[i].what);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_entry_a_listing_could_not_hold_is_not_handed_out),
	};
	if (sodium_init() < 0)
		return 1;
	dd_log_set_verbosity(getenv("TEST_VERBOSE") ? DD_VERBOSE : DD_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
