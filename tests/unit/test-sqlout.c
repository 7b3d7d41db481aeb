/*
 * tests/unit/test-sqlout.c: a snapshot as data.sql (pg/sqlout.c, docs/FORMAT.md
 * §9) from snapshots written straight into a file:// store: the exact text,
 * foreign-key order (quoted names, a self-reference, a cycle left in name
 * order), sequences and large objects, and each refusal of hostile streams
 * (a COPY line "\.", rows without a final line end, a table name or column
 * list that is not inert, malformed sequence and large-object lines); the
 * schema.sql layout (pre-data, marker, post-data: the split at the one
 * top-level marker) and the refusal of psql meta-commands outside quoted text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sodium.h>

#include "pg/pg.h"
#include "store-testlib.h"
#include "store-fx.h"
#include "store/internal.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

/* One stream: name, content, then attribute pairs (key, value), NULL-terminated. */
struct s {
	const char *name, *text;
	const char *attrs[8];
};

/* A snapshot of these streams, loaded back. */
static struct dd_snapshot *
snapshot_of(struct fx *f, const struct s *v, size_t n)
{
	struct dd_snapshot_writer *sw;
	struct dd_snapshot *snap = NULL;
	char id[DD_ID_HEX_SIZE];

	assert_int_equal(dd_snapshot_begin(&sw, f->st), 0);
	for (size_t i = 0; i < n; i++) {
		struct dd_stream_writer *w;
		assert_int_equal(dd_stream_begin(&w, sw, v[i].name), 0);
		assert_int_equal(dd_stream_write(w, v[i].text, strlen(v[i].text)), 0);
		for (size_t a = 0; v[i].attrs[a]; a += 2)
			dd_stream_set_attr(w, v[i].attrs[a], v[i].attrs[a + 1]);
		assert_int_equal(dd_stream_end(w), 0);
	}
	assert_true(dd_snapshot_commit(sw, id) >= 0);
	assert_int_equal(dd_snapshot_load(&snap, f->st, id), 0);
	return snap;
}

static int
put(void *arg, const void *data, size_t len)
{
	dd_buf_put(arg, data, len);
	return 0;
}

/* dd_pg_sql_data of these streams: its result, the text in *out. */
static int
data_sql(struct fx *f, const struct s *v, size_t n, struct dd_buf *out)
{
	struct dd_snapshot *snap = snapshot_of(f, v, n);
	int rc = dd_pg_sql_data(f->st, snap, put, out);

	dd_snapshot_free(snap);
	return rc;
}

#define FK(table, name, target)                                                                                        \
	"--\n-- Name: " table " " name "; Type: FK CONSTRAINT; Schema: public; Owner: -\n--\n\n"                       \
	"ALTER TABLE ONLY " table "\n    ADD CONSTRAINT " name " FOREIGN KEY (x) REFERENCES " target "(id);\n\n"

static void
data_sql_is_the_documented_text(void **state)
{
	const struct s v[] = {
		{ "schema/pre-data", "CREATE TABLE ...;\n", { "encoding", "LATIN1", NULL } },
		{ "data/public.users", "1\talice\n2\t\\N\n", { "table", "public.users", "columns", "id, name", "rows", "2", NULL } },
		{ "sequences", "public.users_id_seq\t2\tt\n", { "rows", "1", NULL } },
		{ "largeobjects", "16390\t0\t\\\\xdeadbeef\n", { "rows", "1", NULL } },
	};
	struct dd_buf out = DD_BUF_INIT;

	assert_int_equal(data_sql(*state, v, 4, &out), 0);
	assert_string_equal(dd_buf_cstr(&out),
			    "-- Rows of a git-dnadata snapshot: load with `psql -f data.sql` after schema.sql.\n"
			    "SET client_encoding = 'LATIN1';\n"
			    "SET standard_conforming_strings = on;\n"
			    "SET DateStyle = 'ISO, YMD';\n"
			    "SET IntervalStyle = postgres;\n"
			    "SET TimeZone = 'UTC';\n"
			    "SET extra_float_digits = 3;\n"
			    "BEGIN;\n"
			    "SET CONSTRAINTS ALL DEFERRED;\n"
			    "\n"
			    "ALTER TABLE public.users DISABLE TRIGGER USER;\n"
			    "\n"
			    "COPY public.users (id, name) FROM stdin;\n"
			    "1\talice\n"
			    "2\t\\N\n"
			    "\\.\n"
			    "\n"
			    "SELECT pg_catalog.setval('public.users_id_seq', 2, true);\n"
			    "\n"
			    "SELECT pg_catalog.lo_put(16390, 0, '\\xdeadbeef');\n"
			    "\n"
			    "SET CONSTRAINTS ALL IMMEDIATE;\n"
			    "ALTER TABLE public.users ENABLE TRIGGER USER;\n"
			    "COMMIT;\n");
	dd_buf_release(&out);
}

/* The position of "COPY <table> " in text (fails when missing). */
static size_t
at(const struct dd_buf *text, const char *table)
{
	char *needle = dd_asprintf("\nCOPY %s ", table);
	const char *p = strstr(dd_buf_cstr(text), needle);

	if (!p)
		fail_msg("no COPY block of %s", table);
	free(needle);
	return (size_t)(p - text->ptr);
}

static void
referenced_tables_come_first_and_cycles_go_in_name_order(void **state)
{
	const struct s v[] = {
		{ "data/\"Odd S\".\"B b\"", "1\n", { "table", "\"Odd S\".\"B b\"", "columns", "x", NULL } },
		{ "data/public.a", "1\n", { "table", "public.a", "columns", "x", NULL } },
		{ "data/public.c1", "1\n", { "table", "public.c1", "columns", "x", NULL } },
		{ "data/public.c2", "1\n", { "table", "public.c2", "columns", "x", NULL } },
		{ "data/public.m", "1\n", { "table", "public.m", "columns", "x", NULL } },
		{ "data/public.z", "1\n", { "table", "public.z", "columns", "x", NULL } },
		/* a needs m needs z; z needs the quoted table; m also references itself; c1 and c2 form a cycle */
		{ "schema/post-data",
		  FK("public.a", "a_m", "public.m") FK("public.m", "m_z", "public.z") FK("public.m", "m_m", "public.m")
			  FK("public.z", "z_b", "\"Odd S\".\"B b\"") FK("public.c2", "c2_c1", "public.c1")
				  FK("public.c1", "c1_c2", "public.c2") FK("public.a", "a_gone", "public.not_dumped"),
		  { NULL } },
	};
	struct dd_buf out = DD_BUF_INIT;

	assert_int_equal(data_sql(*state, v, 7, &out), 0);
	assert_true(at(&out, "\"Odd S\".\"B b\"") < at(&out, "public.z"));
	assert_true(at(&out, "public.z") < at(&out, "public.m"));
	assert_true(at(&out, "public.m") < at(&out, "public.a"));
	assert_true(at(&out, "public.c1") < at(&out, "public.c2"));
	dd_buf_release(&out);
}

/* Each hostile snapshot is refused (-1, with a reason) and nothing is written past what came before. */
static void
refuse(struct fx *f, const struct s *v, size_t n, const char *why)
{
	struct dd_buf out = DD_BUF_INIT;

	dd_error_clear();
	assert_int_equal(data_sql(f, v, n, &out), -1);
	if (!strstr(dd_error_last(), why))
		fail_msg("error [%s] does not say [%s]", dd_error_last(), why);
	dd_buf_release(&out);
}

static void
hostile_streams_are_refused(void **state)
{
	const struct s end_marker[] = {
		{ "data/public.t", "1\n\\.\nDROP TABLE t;\n", { "table", "public.t", "columns", "x", NULL } } };
	const struct s end_marker_cr[] = {
		{ "data/public.t", "1\n\\.\r\nDROP TABLE t;\n", { "table", "public.t", "columns", "x", NULL } } };
	const struct s end_marker_last[] = { { "data/public.t", "1\n\\.", { "table", "public.t", "columns", "x", NULL } } };
	const struct s no_newline[] = { { "data/public.t", "1\n2", { "table", "public.t", "columns", "x", NULL } } };
	const struct s bad_table[] = {
		{ "data/public.t; DROP TABLE t", "1\n", { "table", "public.t; DROP TABLE t", "columns", "x", NULL } } };
	const struct s other_table[] = { { "data/public.t", "1\n", { "table", "public.u", "columns", "x", NULL } } };
	const struct s bad_columns[] = {
		{ "data/public.t", "1\n", { "table", "public.t", "columns", "x) FROM stdin; DROP TABLE t; --", NULL } } };
	const struct s bad_seq[] = { { "sequences", "public.s\t1); DROP TABLE t; --\tt\n", { NULL } } };
	const struct s bad_lo[] = { { "largeobjects", "1\t0\t\\\\x41'); DROP TABLE t; --\n", { NULL } } };

	refuse(*state, end_marker, 1, "holds a line");
	refuse(*state, end_marker_cr, 1, "holds a line");
	refuse(*state, end_marker_last, 1, "line end");
	refuse(*state, no_newline, 1, "line end");
	refuse(*state, bad_table, 1, "is not a table's rows");
	refuse(*state, other_table, 1, "is not a table's rows");
	refuse(*state, bad_columns, 1, "is not a table's rows");
	refuse(*state, bad_seq, 1, "sequences");
	refuse(*state, bad_lo, 1, "large-object");
}

static void
a_backslash_dot_inside_a_row_is_data(void **state)
{
	const struct s v[] = { { "data/public.t", "\\\\.\n\\.x\na\\.\n", { "table", "public.t", "columns", "x", NULL } } };
	struct dd_buf out = DD_BUF_INIT;

	assert_int_equal(data_sql(*state, v, 1, &out), 0);
	assert_non_null(strstr(dd_buf_cstr(&out), "FROM stdin;\n\\\\.\n\\.x\na\\.\n\\.\n"));
	dd_buf_release(&out);
}

#define M DD_PG_POST_DATA_MARKER "\n"

static int
split(const char *t, size_t *a, size_t *b)
{
	dd_error_clear();
	return dd_pg_sql_schema_split(t, strlen(t), 0, a, b, "schema.sql");
}

/* schema.sql splits at its one top-level marker; copies inside quoted text or comments are not markers. */
static void
the_marker_splits_only_at_the_top_level(void **state)
{
	size_t a, b;
	const char *t;

	(void)state;
	t = "CREATE TABLE t (x int);\n" M "ALTER TABLE t ADD PRIMARY KEY (x);\n";
	assert_int_equal(split(t, &a, &b), 0);
	assert_int_equal(a, strlen("CREATE TABLE t (x int);\n"));
	assert_string_equal(t + b, "ALTER TABLE t ADD PRIMARY KEY (x);\n");
	/* inside quotes, E-quotes (an escaped quote does not end it), double quotes, dollar quotes, block comments */
	static const char *const hidden[] = {
		"COMMENT ON TABLE t IS 'a\n" M "b';\n" M,
		"COMMENT ON TABLE t IS E'a\\'\n" M "b';\n" M,
		"CREATE TABLE \"a\n" M "\" (x int);\n" M,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$\n" M "SELECT 1$$;\n" M,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $q$ $$\n" M "SELECT 1$q$;\n" M,
		"/* a /* nested\n" M "*/ still a comment\n" M "*/\n" M,
	};
	for (size_t i = 0; i < sizeof(hidden) / sizeof(*hidden); i++) {
		assert_int_equal(split(hidden[i], &a, &b), 0);
		assert_int_equal(b, strlen(hidden[i]));
	}
	/* none, two, or one not on a line of its own: refused */
	assert_int_equal(split("CREATE TABLE t (x int);\n", &a, &b), -1);
	assert_non_null(strstr(dd_error_last(), "holds no line"));
	assert_int_equal(split(M "SELECT 1;\n" M, &a, &b), -1);
	assert_non_null(strstr(dd_error_last(), "more than one"));
	assert_int_equal(split("SELECT 1; " M, &a, &b), -1);
	/* a COPY line is SQL in a schema: its "rows" are not skipped */
	assert_int_equal(split("COPY t FROM stdin;\n" M "\\.\n", &a, &b), -1);
	assert_non_null(strstr(dd_error_last(), "line 3: a psql meta-command"));
}

/* A backslash outside quoted text is a psql meta-command: refused, with its line; inside quotes or COPY rows: data. */
static void
psql_meta_commands_are_refused(void **state)
{
	size_t a, b;
	static const char *const bad[] = {
		"\\! touch /tmp/x\n",
		"SELECT 1;\n\\! touch /tmp/x\n",
		"SELECT 1; \\! touch /tmp/x\n",
		"SELECT 'a' \\g /tmp/x\n",
		"/* \\! in a block comment */\n",
		"COPY t FROM stdin;\n1\n\\.\n\\! touch /tmp/x\n",
	};
	static const char *const good[] = {
		"COMMENT ON TABLE t IS E'a\\\\\n\\\\! touch\nb';\n",
		"COMMENT ON TABLE t IS 'a\n\\! touch\nb';\n",
		"SELECT $$\n\\! touch\n$$;\n",
		"-- \\! in a line comment\n",
		"COPY t FROM stdin;\n\\\\! touch\n\\N\n\\.\nSELECT 1;\n",
		"SELECT E'\\'';\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		dd_error_clear();
		assert_int_equal(dd_pg_sql_check_meta(bad[i], strlen(bad[i]), 0, "data.sql"), -1);
		assert_non_null(strstr(dd_error_last(), "a psql meta-command"));
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		assert_int_equal(dd_pg_sql_check_meta(good[i], strlen(good[i]), 1, "data.sql"), 0);
	assert_int_equal(split("\\! touch /tmp/x\n" M, &a, &b), -1);
	assert_non_null(strstr(dd_error_last(), "schema.sql, line 1: a psql meta-command"));
	assert_int_equal(dd_pg_sql_check_meta("SELECT 1;\0\n", 11, 0, "data.sql"), -1);
	/* with standard_conforming_strings off psql's literal is 'a\' b' and \! runs: refused for psql */
	const char *scs = "SET standard_conforming_strings = off;\nSELECT 'a\\' b' \\! touch x '\n";
	assert_int_equal(dd_pg_sql_check_meta(scs, strlen(scs), 0, "data.sql"), 0);
	assert_int_equal(dd_pg_sql_check_meta(scs, strlen(scs), 1, "data.sql"), -1);
	assert_non_null(strstr(dd_error_last(), "standard_conforming_strings"));
	/* an even run is the same literal either way */
	const char *even = "SELECT 'a\\\\';\n";
	assert_int_equal(dd_pg_sql_check_meta(even, strlen(even), 1, "data.sql"), 0);
}

/* pre-data and post-data normalised apart, the preamble once, the marker between. */
static void
join_keeps_one_preamble(void **state)
{
	struct dd_buf out = DD_BUF_INIT;
	const char *pre = "SET check_function_bodies = false;\n--\n-- Name: t; Type: TABLE; Schema: public; Owner: -\n--\n\n"
			  "CREATE TABLE public.t (\n    x integer\n);\n";
	const char *post = "SET check_function_bodies = false;\n--\n-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; "
			   "Owner: -\n--\n\nALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (x);\n";
	size_t a, b;

	(void)state;
	assert_int_equal(dd_pg_sql_schema_join(pre, strlen(pre), post, strlen(post), &out), 0);
	const char *t = dd_buf_cstr(&out), *first = strstr(t, "SET check_function_bodies");
	assert_non_null(first);
	assert_null(strstr(first + 1, "SET check_function_bodies"));
	assert_int_equal(split(t, &a, &b), 0);
	assert_non_null(strstr(t, "CREATE TABLE public.t"));
	assert_true(strstr(t, "CREATE TABLE public.t") < t + a);
	assert_true(strstr(t, "ADD CONSTRAINT t_pkey") > t + b);
	dd_buf_release(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(data_sql_is_the_documented_text, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(referenced_tables_come_first_and_cycles_go_in_name_order, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(hostile_streams_are_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(a_backslash_dot_inside_a_row_is_data, fx_setup, fx_teardown),
		cmocka_unit_test(the_marker_splits_only_at_the_top_level),
		cmocka_unit_test(psql_meta_commands_are_refused),
		cmocka_unit_test(join_keeps_one_preamble),
	};
	if (sodium_init() < 0)
		return 1;
	dd_log_set_verbosity(DD_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
