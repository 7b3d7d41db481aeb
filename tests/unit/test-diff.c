/*
 * tests/unit/test-diff.c: dd_diff_compute (workflow/diff.h) on snapshots
 * written straight into a file:// store, each differing from the other in
 * one part alone: the large objects, the database's locale attributes, a
 * stream this version does not know (the safety net: other ids, nothing
 * compared differs), and schema bytes the normaliser drops (noise, not
 * "another part").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <git2.h>
#include <sodium.h>
#include <string.h>

#include "store-testlib.h"
#include "store-fx.h"
#include "store/internal.h"
#include "store/keys.h"
#include "util/err.h"
#include "workflow/diff.h"

/* What a snapshot holds; NULL fields take the defaults below. */
struct snap {
	const char *pre_data;
	const char *lc_collate;
	const char *largeobjects;
	const char *future; /* a stream named "zz-future": none when NULL */
};

static void
put_stream(struct dd_snapshot_writer *sw, const char *name, const char *text, const char *const *attrs)
{
	struct dd_stream_writer *w;

	CHECK(dd_stream_begin(&w, sw, name));
	CHECK(dd_stream_write(w, text, strlen(text)));
	for (size_t i = 0; attrs && attrs[i]; i += 2)
		dd_stream_set_attr(w, attrs[i], attrs[i + 1]);
	CHECK(dd_stream_end(w));
}

static void
write_snap(struct fx *f, const struct snap *s, char id[DD_ID_HEX_SIZE])
{
	const char *pre[] = { "encoding", "UTF8", "lc_collate", s->lc_collate ? s->lc_collate : "C.UTF-8",
			      "lc_ctype", "C.UTF-8", "locale_provider", "c", NULL };
	const char *table[] = { "table", "public.t", "columns", "id", "rows", "2", NULL };
	const char *rows[] = { "rows", "1", NULL };
	struct dd_snapshot_writer *sw;
	int rc;

	CHECK(dd_snapshot_begin(&sw, f->st));
	put_stream(sw, "schema/pre-data", s->pre_data ? s->pre_data : "CREATE TABLE public.t (\n    id integer\n);\n",
		   pre);
	put_stream(sw, "schema/post-data", "", NULL);
	put_stream(sw, "data/public.t", "1\n2\n", table);
	put_stream(sw, "sequences", "", NULL);
	put_stream(sw, "largeobjects", s->largeobjects ? s->largeobjects : "16384\t0\t\\\\x68656c6c6f\n", rows);
	if (s->future)
		put_stream(sw, "zz-future", s->future, NULL);
	rc = dd_snapshot_commit(sw, id);
	assert_true(rc == 0 || rc == DD_EXISTS);
}

static void
compute(struct fx *f, struct dd_diff *d, const struct snap *a, const struct snap *b)
{
	memset(d, 0, sizeof(*d));
	write_snap(f, a, d->a.id);
	write_snap(f, b, d->b.id);
	assert_string_not_equal(d->a.id, d->b.id);
	CHECK(dd_diff_compute(d, f->st));
	assert_int_equal(d->same, 0);
	assert_int_equal(d->ntables, 0);
	assert_int_equal(d->nmedia, 0);
	assert_int_equal(d->sequences_changed, 0);
}

static void
test_largeobjects_alone(void **state)
{
	struct snap a = { 0 }, b = { .largeobjects = "16384\t0\t\\\\x48454c4c4f\n" };
	struct dd_diff d;

	compute(*state, &d, &a, &b);
	assert_int_equal(d.largeobjects_changed, 1);
	assert_int_equal(d.nlocale, 0);
	assert_int_equal(d.other_changed, 0);
	assert_int_equal(d.schema.len, 0);
	dd_diff_release(&d);
}

static void
test_locale_alone(void **state)
{
	struct snap a = { 0 }, b = { .lc_collate = "C" };
	struct dd_diff d;

	compute(*state, &d, &a, &b);
	assert_int_equal(d.nlocale, 1);
	assert_string_equal(d.locale[0].key, "lc_collate");
	assert_string_equal(d.locale[0].old_value, "C.UTF-8");
	assert_string_equal(d.locale[0].new_value, "C");
	assert_int_equal(d.largeobjects_changed, 0);
	assert_int_equal(d.other_changed, 0);
	dd_diff_release(&d);
}

/* A stream a newer version would write: other ids, nothing compared differs. */
static void
test_an_unknown_stream_is_other_changed(void **state)
{
	struct snap a = { .future = "one" }, b = { .future = "two" };
	struct dd_diff d;

	compute(*state, &d, &a, &b);
	assert_int_equal(d.other_changed, 1);
	assert_int_equal(d.largeobjects_changed, 0);
	assert_int_equal(d.nlocale, 0);
	assert_int_equal(d.schema.len, 0);
	dd_diff_release(&d);
}

/* Schema bytes the normaliser drops (a session SET) explain the other id: not "parts not compared". */
static void
test_schema_noise_is_not_other_changed(void **state)
{
	struct snap a = { 0 }, b = { .pre_data = "SET statement_timeout = 0;\nCREATE TABLE public.t (\n    id integer\n);\n" };
	struct dd_diff d;

	compute(*state, &d, &a, &b);
	assert_int_equal(d.schema.len, 0);
	assert_int_equal(d.noise, 1);
	assert_int_equal(d.other_changed, 0);
	dd_diff_release(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_largeobjects_alone, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_locale_alone, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_an_unknown_stream_is_other_changed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_schema_noise_is_not_other_changed, fx_setup, fx_teardown),
	};

	int rc;

	if (sodium_init() < 0)
		return 1;
	git_libgit2_init(); /* the schema part's unified diff */
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	git_libgit2_shutdown();
	return rc;
}
