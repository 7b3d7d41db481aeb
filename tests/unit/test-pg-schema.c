/*
 * tests/unit/test-pg-schema.c: the pure helpers of src/pg/: splitting a
 * pg_dump script into entries (the restore runs them in parallel phases),
 * exclude patterns, database names that fit 63 bytes, pg_dump versions and
 * arguments, the quoted names a snapshot carries into SQL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pg/internal.h"

static const char post_data[] =
	"--\n"
	"-- PostgreSQL database dump\n"
	"--\n"
	"\n"
	"SET statement_timeout = 0;\n"
	"SELECT pg_catalog.set_config('search_path', '', false);\n"
	"\n"
	"SET default_tablespace = '';\n"
	"\n"
	"--\n"
	"-- Name: b b_pkey; Type: CONSTRAINT; Schema: public; Owner: -\n"
	"--\n"
	"\n"
	"ALTER TABLE ONLY public.b\n"
	"    ADD CONSTRAINT b_pkey PRIMARY KEY (id);\n"
	"\n"
	"\n"
	"SET default_tablespace = fast;\n"
	"\n"
	"--\n"
	"-- Name: b_x_idx; Type: INDEX; Schema: public; Owner: -; Tablespace: fast\n"
	"--\n"
	"\n"
	"CREATE INDEX b_x_idx ON public.b USING btree (x);\n"
	"\n"
	"\n"
	"--\n"
	"-- Name: p1_pkey; Type: INDEX ATTACH; Schema: public; Owner: -\n"
	"--\n"
	"\n"
	"ALTER INDEX public.p_pkey ATTACH PARTITION public.p1_pkey;\n"
	"\n"
	"\n"
	"--\n"
	"-- Name: b b_a_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -\n"
	"--\n"
	"\n"
	"ALTER TABLE ONLY public.b\n"
	"    ADD CONSTRAINT b_a_fkey FOREIGN KEY (a) REFERENCES public.a(id);\n"
	"\n"
	"\n"
	"--\n"
	"-- PostgreSQL database dump complete\n"
	"--\n"
	"\n";

static void
split_finds_every_entry_and_its_type(void **state)
{
	struct dd_schema_entry *e;
	size_t n;

	(void)state;
	assert_int_equal(dd_schema_split(&e, &n, post_data, strlen(post_data)), 0);
	assert_int_equal(n, 5);
	assert_string_equal(e[0].type, "");
	assert_string_equal(e[1].type, "CONSTRAINT");
	assert_string_equal(e[2].type, "INDEX");
	assert_string_equal(e[3].type, "INDEX ATTACH");
	assert_string_equal(e[4].type, "FK CONSTRAINT");
	assert_non_null(strstr(e[0].sql, "set_config('search_path'"));
	assert_non_null(strstr(e[1].sql, "ADD CONSTRAINT b_pkey PRIMARY KEY"));
	assert_non_null(strstr(e[4].sql, "FOREIGN KEY"));
	dd_schema_entries_free(e, n);
}

static void
split_moves_session_sets_to_the_entry_that_needs_them(void **state)
{
	struct dd_schema_entry *e;
	size_t n;

	(void)state;
	dd_schema_split(&e, &n, post_data, strlen(post_data));
	/* the tablespace of the index goes with the index, not the constraint before it */
	assert_null(strstr(e[1].sql, "fast"));
	assert_non_null(strstr(e[2].sql, "SET default_tablespace = fast;"));
	assert_true(strstr(e[2].sql, "SET default_tablespace") < strstr(e[2].sql, "CREATE INDEX"));
	/* the preamble's own SET went to the first entry */
	assert_null(strstr(e[0].sql, "default_tablespace"));
	assert_non_null(strstr(e[1].sql, "SET default_tablespace = '';"));
	dd_schema_entries_free(e, n);
}

static void
split_keeps_every_byte_once(void **state)
{
	struct dd_schema_entry *e;
	size_t n, total = 0;

	(void)state;
	dd_schema_split(&e, &n, post_data, strlen(post_data));
	for (size_t i = 0; i < n; i++)
		total += strlen(e[i].sql);
	assert_int_equal(total, strlen(post_data));
	dd_schema_entries_free(e, n);
}

static void
split_of_a_script_without_entries_is_all_preamble(void **state)
{
	struct dd_schema_entry *e;
	size_t n;
	const char *text = "SET x = 1;\n";

	(void)state;
	dd_schema_split(&e, &n, text, strlen(text));
	assert_int_equal(n, 1);
	assert_string_equal(e[0].sql, text);
	dd_schema_entries_free(e, n);
	dd_schema_split(&e, &n, "", 0);
	assert_int_equal(n, 1);
	assert_string_equal(e[0].sql, "");
	dd_schema_entries_free(e, n);
}

static void
split_takes_the_type_before_the_last_schema_field(void **state)
{
	/* an object name containing "; Type: " must not fool the parser */
	const char *text = "--\n-- Name: odd; Type: X; Type: TRIGGER; Schema: s; Owner: -\n--\n\nCREATE TRIGGER ...;\n";
	struct dd_schema_entry *e;
	size_t n;

	(void)state;
	dd_schema_split(&e, &n, text, strlen(text));
	assert_int_equal(n, 2);
	assert_string_equal(e[1].type, "TRIGGER");
	dd_schema_entries_free(e, n);
}

static void
patterns_match_schema_and_table(void **state)
{
	(void)state;
	assert_true(dd_pg_pattern_match("audit.*", "audit", "trail"));
	assert_false(dd_pg_pattern_match("audit.*", "public", "audit"));
	assert_true(dd_pg_pattern_match("public.requests_*", "public", "requests_log"));
	assert_false(dd_pg_pattern_match("public.requests_*", "public", "requests"));
	assert_true(dd_pg_pattern_match("log", "any", "log"));
	assert_true(dd_pg_pattern_match("log?", "s", "log1"));
	assert_false(dd_pg_pattern_match("log", "s", "logs"));
	assert_true(dd_pg_pattern_match("*.*", "s", "t"));
	assert_false(dd_pg_pattern_match("Audit.*", "audit", "t"));
}

static void
names_fit_63_bytes_without_cutting_a_character(void **state)
{
	char *s;
	char base[80];

	(void)state;
	s = dd_pg_name_with_suffix("app", "__dnadata_new_123");
	assert_string_equal(s, "app__dnadata_new_123");
	free(s);
	memset(base, 'a', 70);
	base[70] = '\0';
	s = dd_pg_name_with_suffix(base, "__dnadata_new_123");
	assert_int_equal(strlen(s), 63);
	assert_non_null(strstr(s, "__dnadata_new_123"));
	free(s);
	/* 'é' is two bytes; a cut must not split it */
	strcpy(base, "");
	for (int i = 0; i < 30; i++)
		strcat(base, "\xc3\xa9");
	s = dd_pg_name_with_suffix(base, "__dnadata_stash_20240101000000");
	assert_true(strlen(s) <= 63);
	size_t cut = strlen(s) - strlen("__dnadata_stash_20240101000000");
	assert_int_equal(cut % 2, 0);
	free(s);
}

/* Restore puts a snapshot's table and column names into SQL: only quoted names may pass. */
static void
only_quoted_names_pass_as_table_and_columns(void **state)
{
	(void)state;
	assert_true(dd_pg_is_qualified_name("public.t"));
	assert_true(dd_pg_is_qualified_name("\"My Schema\".\"a \"\"b\"\".c\""));
	assert_true(dd_pg_is_qualified_name("s1._t$2"));
	assert_false(dd_pg_is_qualified_name(NULL));
	assert_false(dd_pg_is_qualified_name(""));
	assert_false(dd_pg_is_qualified_name("t"));
	assert_false(dd_pg_is_qualified_name("public.t; DROP TABLE x"));
	assert_false(dd_pg_is_qualified_name("public.t--"));
	assert_false(dd_pg_is_qualified_name("public.\"t\"; DROP TABLE x; --\""));
	assert_false(dd_pg_is_qualified_name("public.\"unterminated"));
	assert_false(dd_pg_is_qualified_name("public.\"\""));
	assert_false(dd_pg_is_qualified_name("a.b.c"));
	assert_false(dd_pg_is_qualified_name("1a.b"));

	assert_true(dd_pg_is_column_list(""));
	assert_true(dd_pg_is_column_list("id"));
	assert_true(dd_pg_is_column_list("id, \"Name\", \"a, b\", x_1"));
	assert_false(dd_pg_is_column_list(NULL));
	assert_false(dd_pg_is_column_list("id,name"));
	assert_false(dd_pg_is_column_list("id, "));
	assert_false(dd_pg_is_column_list("id) FROM STDIN; DROP TABLE x; --"));
	assert_false(dd_pg_is_column_list("(SELECT 1)"));
}

static int
has_arg(char **argv, const char *arg)
{
	for (size_t i = 0; argv[i]; i++)
		if (!strcmp(argv[i], arg))
			return 1;
	return 0;
}

/* Statistics (pg_dump 18+) hold sampled column values: never in a snapshot, masked or not. */
static void
pg_dump_18_and_newer_is_told_to_leave_statistics_out(void **state)
{
	struct dd_pgdump d = { .path = "/usr/bin/pg_dump", .major = 18, .version = 180000 };
	const char *exclude[] = { "public.t" };
	char **argv;

	(void)state;
	argv = dd_pgdump_argv(&d, "dbname=x", "00000003-1", "pre-data", exclude, 1, "3000ms");
	assert_string_equal(argv[0], "/usr/bin/pg_dump");
	assert_true(has_arg(argv, "--no-statistics"));
	assert_true(has_arg(argv, "--section=pre-data"));
	assert_true(has_arg(argv, "--exclude-table=public.t"));
	assert_true(has_arg(argv, "--dbname=dbname=x"));
	dd_pgdump_argv_free(argv);
	d.version = 190002, d.major = 19;
	argv = dd_pgdump_argv(&d, "dbname=x", "00000003-1", "post-data", NULL, 0, NULL);
	assert_true(has_arg(argv, "--no-statistics"));
	dd_pgdump_argv_free(argv);
	/* older ones know no such option (and write no statistics) */
	d.version = 170005, d.major = 17;
	argv = dd_pgdump_argv(&d, "dbname=x", "00000003-1", "post-data", NULL, 0, NULL);
	assert_false(has_arg(argv, "--no-statistics"));
	assert_true(has_arg(argv, "--snapshot=00000003-1"));
	dd_pgdump_argv_free(argv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(split_finds_every_entry_and_its_type),
		cmocka_unit_test(split_moves_session_sets_to_the_entry_that_needs_them),
		cmocka_unit_test(split_keeps_every_byte_once),
		cmocka_unit_test(split_of_a_script_without_entries_is_all_preamble),
		cmocka_unit_test(split_takes_the_type_before_the_last_schema_field),
		cmocka_unit_test(patterns_match_schema_and_table),
		cmocka_unit_test(names_fit_63_bytes_without_cutting_a_character),
		cmocka_unit_test(only_quoted_names_pass_as_table_and_columns),
		cmocka_unit_test(pg_dump_18_and_newer_is_told_to_leave_statistics_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
