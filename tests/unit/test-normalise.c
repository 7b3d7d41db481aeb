/*
 * tests/unit/test-normalise.c: the schema normaliser (pg/normalise.c): what
 * it drops (run noise), what it keeps (every statement, blank lines inside
 * an object), the session state it carries across a reordering, and that
 * its result is stable: two runs' dumps of one schema give the same bytes,
 * and normalising twice changes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pg/normalise.h"
#include "util/buf.h"
#include "util/err.h"

#define PREAMBLE(key, owner)                                                                                   \
	"--\n-- PostgreSQL database dump\n--\n\n\\restrict " key "\n\n"                                          \
	"-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)\n"                                       \
	"-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)\n\n"                                        \
	"SET statement_timeout = 0;\nSET lock_timeout = 0;\nSET idle_in_transaction_session_timeout = 0;\n"      \
	"SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n"                                 \
	"SELECT pg_catalog.set_config('search_path', '', false);\nSET check_function_bodies = false;\n"          \
	"SET xmloption = content;\nSET client_min_messages = warning;\nSET row_security = off;\n\n"

/* the normaliser's own preamble: constant, before any non-empty text */
#define LOAD                                                                                                   \
	"SET statement_timeout = 0;\nSET lock_timeout = 0;\nSET idle_in_transaction_session_timeout = 0;\n"      \
	"SET standard_conforming_strings = on;\nSELECT pg_catalog.set_config('search_path', '', false);\n"        \
	"SET check_function_bodies = false;\nSET xmloption = content;\nSET client_min_messages = warning;\n"     \
	"SET row_security = off;\n\n"

#define COMPLETE(key) "--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict " key "\n\n"

/* pre-data then post-data, as a snapshot's manifest holds them */
#define DUMP(key, owner)                                                                                       \
	PREAMBLE(key, owner)                                                                                     \
	"--\n-- Name: f(); Type: FUNCTION; Schema: public; Owner: " owner "\n--\n\n"                             \
	"CREATE FUNCTION public.f() RETURNS text\n    LANGUAGE plpgsql\n    AS $$\nBEGIN\n\n\n"                  \
	"SET statement_timeout = 0;\n  RETURN 'x';\nEND $$;\n\n\n"                                              \
	"SET default_tablespace = '';\n\nSET default_table_access_method = heap;\n\n"                            \
	"--\n-- Name: t; Type: TABLE; Schema: public; Owner: " owner "\n--\n\n"                                  \
	"CREATE TABLE public.t (\n    id integer NOT NULL,\n    x text\n);\n\n\n" COMPLETE(key)                   \
	PREAMBLE(key "2", owner)                                                                                 \
	"SET default_tablespace = '';\n\n"                                                                       \
	"--\n-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: " owner "\n--\n\n"                      \
	"ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n\n\n"                          \
	"SET default_tablespace = fast;\n\n"                                                                     \
	"--\n-- Name: t_x_idx; Type: INDEX; Schema: public; Owner: " owner "; Tablespace: fast\n--\n\n"         \
	"CREATE INDEX t_x_idx ON public.t USING btree (x);\n\n\n"                                               \
	"SET default_tablespace = '';\n\n"                                                                       \
	"--\n-- Name: t trg; Type: TRIGGER; Schema: public; Owner: " owner "\n--\n\n"                            \
	"CREATE TRIGGER trg BEFORE INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.f();\n\n\n"           \
	COMPLETE(key "2")

static const char dump_a[] = DUMP("AbCdEf", "-");
static const char dump_b[] = DUMP("ZyXwVu", "alice");

static const char expected[] =
	LOAD "--\n-- Name: f(); Type: FUNCTION; Schema: public\n--\n\n"
	"CREATE FUNCTION public.f() RETURNS text\n    LANGUAGE plpgsql\n    AS $$\nBEGIN\n\n\n"
	"SET statement_timeout = 0;\n  RETURN 'x';\nEND $$;\n\n"
	"--\n-- Name: t; Type: TABLE; Schema: public\n--\n\n"
	"CREATE TABLE public.t (\n    id integer NOT NULL\n  , x text\n);\n\n"
	"--\n-- Name: t t_pkey; Type: CONSTRAINT; Schema: public\n--\n\n"
	"ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n\n"
	"SET default_tablespace = fast;\n\n"
	"--\n-- Name: t_x_idx; Type: INDEX; Schema: public; Tablespace: fast\n--\n\n"
	"CREATE INDEX t_x_idx ON public.t USING btree (x);\n\n"
	"SET default_tablespace = '';\n\n"
	"--\n-- Name: t trg; Type: TRIGGER; Schema: public\n--\n\n"
	"CREATE TRIGGER trg BEFORE INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.f();\n";

static char *
normalise(const char *text, size_t len)
{
	struct dd_buf out = DD_BUF_INIT;

	assert_int_equal(dd_schema_normalise(text, len, &out), 0);
	return dd_buf_detach(&out, NULL);
}

static void
drops_run_noise_and_keeps_every_statement(void **state)
{
	char *n = normalise(dump_a, strlen(dump_a));

	(void)state;
	assert_string_equal(n, expected);
	free(n);
}

static void
dumps_of_two_runs_and_owners_are_byte_identical(void **state)
{
	char *a = normalise(dump_a, strlen(dump_a)), *b = normalise(dump_b, strlen(dump_b));

	(void)state;
	assert_string_equal(a, b);
	free(a);
	free(b);
}

static void
normalising_twice_changes_nothing(void **state)
{
	char *once = normalise(dump_a, strlen(dump_a));
	char *twice = normalise(once, strlen(once));

	(void)state;
	assert_string_equal(once, twice);
	free(once);
	free(twice);
}

static void
an_added_column_changes_only_its_own_lines(void **state)
{
	static const char before[] = PREAMBLE("k1", "-") "--\n-- Name: t; Type: TABLE; Schema: public; Owner: -\n--\n\n"
				     "CREATE TABLE public.t (\n    id integer NOT NULL\n);\n\n\n" COMPLETE("k1");
	static const char after[] = PREAMBLE("k2", "-") "--\n-- Name: t; Type: TABLE; Schema: public; Owner: -\n--\n\n"
				    "CREATE TABLE public.t (\n    id integer NOT NULL,\n    y text\n);\n\n\n" COMPLETE("k2");
	char *a = normalise(before, strlen(before)), *b = normalise(after, strlen(after));

	(void)state;
	assert_string_equal(a, LOAD "--\n-- Name: t; Type: TABLE; Schema: public\n--\n\n"
				    "CREATE TABLE public.t (\n    id integer NOT NULL\n);\n");
	assert_string_equal(b, LOAD "--\n-- Name: t; Type: TABLE; Schema: public\n--\n\n"
				    "CREATE TABLE public.t (\n    id integer NOT NULL\n  , y text\n);\n");
	free(a);
	free(b);
}

static void
entries_with_the_same_header_are_sorted_by_text(void **state)
{
	/* pg_dump leaves these in OID order: the same objects made in another order swap them */
	static const char one[] = "--\n-- Name: x; Type: T; Schema: s; Owner: -\n--\n\nB;\n\n\n"
				  "--\n-- Name: x; Type: T; Schema: s; Owner: -\n--\n\nA;\n\n\n"
				  "--\n-- Name: w; Type: T; Schema: s; Owner: -\n--\n\nC;\n";
	static const char two[] = "--\n-- Name: x; Type: T; Schema: s; Owner: -\n--\n\nA;\n\n\n"
				  "--\n-- Name: x; Type: T; Schema: s; Owner: -\n--\n\nB;\n\n\n"
				  "--\n-- Name: w; Type: T; Schema: s; Owner: -\n--\n\nC;\n";
	char *a = normalise(one, strlen(one)), *b = normalise(two, strlen(two));

	(void)state;
	assert_string_equal(a, b);
	/* other entries keep pg_dump's order (it follows dependencies) */
	assert_true(strstr(a, "A;") < strstr(a, "B;"));
	assert_true(strstr(a, "B;") < strstr(a, "C;"));
	free(a);
	free(b);
}

static void
unknown_preamble_lines_are_kept(void **state)
{
	static const char text[] = "--\n-- PostgreSQL database dump\n--\n\nSET lock_timeout = 0;\n"
				   "CREATE EXTENSION odd;\n\n--\n-- Name: t; Type: TABLE; Schema: public; Owner: -\n--\n\n"
				   "CREATE TABLE public.t ();\n";
	char *n = normalise(text, strlen(text));

	(void)state;
	assert_string_equal(n, LOAD "CREATE EXTENSION odd;\n\n--\n-- Name: t; Type: TABLE; Schema: public\n--\n\n"
			       "CREATE TABLE public.t ();\n");
	free(n);
}

static void
an_access_method_other_than_heap_is_kept_with_its_table(void **state)
{
	static const char text[] = "SET default_table_access_method = columnar;\n\n"
				   "--\n-- Name: c; Type: TABLE; Schema: public; Owner: -\n--\n\nCREATE TABLE public.c ();\n\n\n"
				   "SET default_table_access_method = heap;\n\n"
				   "--\n-- Name: h; Type: TABLE; Schema: public; Owner: -\n--\n\nCREATE TABLE public.h ();\n";
	char *n = normalise(text, strlen(text));

	(void)state;
	assert_string_equal(n, LOAD "SET default_table_access_method = columnar;\n\n"
			       "--\n-- Name: c; Type: TABLE; Schema: public\n--\n\nCREATE TABLE public.c ();\n\n"
			       "SET default_table_access_method = heap;\n\n"
			       "--\n-- Name: h; Type: TABLE; Schema: public\n--\n\nCREATE TABLE public.h ();\n");
	free(n);
}

static void
empty_and_noise_only_input_give_empty_text(void **state)
{
	static const char noise[] = PREAMBLE("k", "-") COMPLETE("k");
	char *n;

	(void)state;
	n = normalise("", 0);
	assert_string_equal(n, "");
	free(n);
	n = normalise(noise, strlen(noise));
	assert_string_equal(n, "");
	free(n);
}

static void
a_nul_byte_is_refused(void **state)
{
	static const char text[] = "--\n-- Name: t; Type: TABLE; Schema: public; Owner: -\n--\n\nCREATE\0TABLE;\n";
	struct dd_buf out = DD_BUF_INIT;

	(void)state;
	assert_int_equal(dd_schema_normalise(text, sizeof(text) - 1, &out), -1);
	char *want = dd_asprintf("NUL byte at offset %zu", strlen(text));
	assert_non_null(strstr(dd_error_last(), want));
	free(want);
	dd_error_clear();
	dd_buf_release(&out);
}

static void
a_header_without_its_closing_line_or_newline_survives(void **state)
{
	static const char text[] = "--\n-- Name: t; Type: TABLE; Schema: public; Owner: x; Owner: y";
	char *n = normalise(text, strlen(text)), *again;

	(void)state;
	assert_string_equal(n, LOAD "--\n-- Name: t; Type: TABLE; Schema: public\n--\n");
	again = normalise(n, strlen(n));
	assert_string_equal(again, n);
	free(n);
	free(again);
}

static void
text_that_ends_without_a_newline_is_stable(void **state)
{
	/* found by the fuzzer: a last entry's trailing SET sorted into the middle; a banner cut at the end */
	static const char *const texts[] = {
		"--\n-- Name: x; Type: T; Schema: s; Owner: -\n--\n\nB;\n\n"
		"--\n-- Name: x; Type: T; Schema: s; Owner: -\n--\n\nA;\n\nSET default_tablespace = t;",
		"--\n-- Name: x; Type: T; Schema: s; Owner: -\n--\n\nA;\n\n--\n-- PostgreSQL database dump complete\n--",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char *once = normalise(texts[i], strlen(texts[i]));
		char *twice = normalise(once, strlen(once));
		assert_string_equal(once, twice);
		assert_null(strstr(once, "SET default_tablespace"));
		assert_null(strstr(once, "dump complete"));
		free(once);
		free(twice);
	}
}

#define HEAD(name, type) "--\n-- Name: " name "; Type: " type "; Schema: public; Owner: -\n--\n\n"
#define NHEAD(name, type) "--\n-- Name: " name "; Type: " type "; Schema: public\n--\n\n"

static void
element_lists_get_leading_commas(void **state)
{
	static const char in[] =
		HEAD("c", "TYPE") "CREATE TYPE public.c AS (\n\ta integer,\n\tb text\n);\n\n\n"
		HEAD("e", "TYPE") "CREATE TYPE public.e AS ENUM (\n    'x',\n    'y,z',\n    'it''s'\n);\n\n\n"
		HEAD("f", "FOREIGN TABLE") "CREATE FOREIGN TABLE public.f (\n    a integer,\n    b text\n)\nSERVER s;\n\n\n"
		HEAD("p", "TABLE") "CREATE TABLE public.p (\n    a integer,\n    \"b,\"\"c\" text DEFAULT 'x,''y'::text,\n"
		"    CONSTRAINT p_a_check CHECK ((a > 0))\n)\nPARTITION BY RANGE (a);\n\n"
		"ALTER TABLE public.p OWNER TO alice;\n\n\n"
		HEAD("u", "TABLE") "CREATE UNLOGGED TABLE public.u (\n    a integer,\n    b integer\n);\n";
	static const char want[] =
		LOAD NHEAD("c", "TYPE") "CREATE TYPE public.c AS (\n    a integer\n  , b text\n);\n\n"
		NHEAD("e", "TYPE") "CREATE TYPE public.e AS ENUM (\n    'x'\n  , 'y,z'\n  , 'it''s'\n);\n\n"
		NHEAD("f", "FOREIGN TABLE") "CREATE FOREIGN TABLE public.f (\n    a integer\n  , b text\n)\nSERVER s;\n\n"
		NHEAD("p", "TABLE") "CREATE TABLE public.p (\n    a integer\n  , \"b,\"\"c\" text DEFAULT 'x,''y'::text\n"
		"  , CONSTRAINT p_a_check CHECK ((a > 0))\n)\nPARTITION BY RANGE (a);\n\n"
		"ALTER TABLE public.p OWNER TO alice;\n\n"
		NHEAD("u", "TABLE") "CREATE UNLOGGED TABLE public.u (\n    a integer\n  , b integer\n);\n";
	char *n = normalise(in, strlen(in)), *again;

	(void)state;
	assert_string_equal(n, want);
	again = normalise(n, strlen(n));
	assert_string_equal(again, n);
	free(n);
	free(again);
}

/* Split text into its lines (in place); the count. */
static size_t
split_lines(char *text, char **lines, size_t max)
{
	size_t n = 0;

	for (char *p = text; *p && n < max; n++) {
		lines[n] = p;
		p = strchr(p, '\n');
		if (!p)
			return n + 1;
		*p++ = '\0';
	}
	return n;
}

/* A minimal line diff's size (as git diff --numstat counts it): lines removed from a, added in b. */
static void
line_diff(const char *a, const char *b, int *removed, int *added)
{
	enum { MAX = 64 };
	char *ca = dd_strdup(a), *cb = dd_strdup(b), *la[MAX], *lb[MAX];
	size_t na = split_lines(ca, la, MAX), nb = split_lines(cb, lb, MAX);
	static int lcs[MAX + 1][MAX + 1];

	assert_true(na < MAX && nb < MAX);
	for (size_t i = na + 1; i-- > 0;)
		for (size_t j = nb + 1; j-- > 0;)
			lcs[i][j] = i == na || j == nb ? 0
				    : !strcmp(la[i], lb[j]) ? lcs[i + 1][j + 1] + 1
				    : lcs[i + 1][j] > lcs[i][j + 1] ? lcs[i + 1][j] : lcs[i][j + 1];
	*removed = (int)na - lcs[0][0];
	*added = (int)nb - lcs[0][0];
	free(ca);
	free(cb);
}

static void
one_element_is_one_line_wherever_it_is_but_first(void **state)
{
#define TABLE(cols) HEAD("t", "TABLE") "CREATE TABLE public.t (\n" cols "\n);\n\n\nALTER TABLE public.t OWNER TO x;\n"
	static const char base[] = TABLE("    a integer,\n    b text,\n    c date");
	static const struct {
		const char *text;
		int removed, added;
	} cases[] = {
		{ TABLE("    a integer,\n    b text,\n    c date,\n    d integer"), 0, 1 }, /* added last */
		{ TABLE("    a integer,\n    x integer,\n    b text,\n    c date"), 0, 1 }, /* added in the middle */
		{ TABLE("    a integer,\n    c date"), 1, 0 },                            /* dropped from the middle */
		{ TABLE("    a integer,\n    b text"), 1, 0 },                            /* dropped last */
		{ TABLE("    a integer,\n    b integer,\n    c date"), 1, 1 },            /* changed */
		/* a new first element: its line, and the old first line gains its comma */
		{ TABLE("    x integer,\n    a integer,\n    b text,\n    c date"), 1, 2 },
		{ TABLE("    b text,\n    c date"), 2, 1 }, /* the first dropped: the second becomes first */
	};
	char *a = normalise(base, strlen(base));

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *b = normalise(cases[i].text, strlen(cases[i].text));
		int removed, added;
		line_diff(a, b, &removed, &added);
		assert_int_equal(removed, cases[i].removed);
		assert_int_equal(added, cases[i].added);
		free(b);
	}
	free(a);
#undef TABLE
}

static void
doubtful_lists_are_left_as_pg_dump_wrote_them(void **state)
{
	static const char *const bodies[] = {
		/* a literal holding a newline (a multi-line default) */
		"CREATE TABLE public.t (\n    a integer,\n    d text DEFAULT 'a\nb'::text,\n    e integer\n);\n",
		/* an odd quote count: a name holding ' */
		"CREATE TABLE public.t (\n    a integer,\n    \"q'\" integer\n);\n",
		/* a comment, here holding the comma */
		"CREATE TABLE public.t (\n    a integer -- x,\n    b integer\n);\n",
		"CREATE TABLE public.t (\n    a integer /* x */,\n    b integer\n);\n",
		/* a middle line without its comma, a last line with one */
		"CREATE TABLE public.t (\n    a integer\n    b integer\n);\n",
		"CREATE TABLE public.t (\n    a integer,\n    b integer,\n);\n",
		/* a line without the indent, or with more */
		"CREATE TABLE public.t (\n    a integer,\n  b integer\n);\n",
		"CREATE TABLE public.t (\n    a integer,\n        b integer\n);\n",
		/* no closing line */
		"CREATE TABLE public.t (\n    a integer,\n    b integer\n",
		/* a name holding " (" and a quote in the opening line */
		"CREATE TABLE public.\"x (\n    a integer,\n    b\" (\n    c integer\n);\n",
		/* a composite type with spaces where pg_dump writes a tab mixed with one */
		"CREATE TYPE public.c AS (\n\ta integer,\n    b text\n);\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char *in = dd_asprintf(HEAD("t", "TABLE") "%s", bodies[i]);
		char *want = dd_asprintf(LOAD NHEAD("t", "TABLE") "%s%s", bodies[i],
					 bodies[i][strlen(bodies[i]) - 1] == '\n' ? "" : "\n");
		char *n = normalise(in, strlen(in));
		assert_string_equal(n, want);
		free(in);
		free(want);
		free(n);
	}
}

static void
only_a_table_or_types_first_statement_is_rewritten(void **state)
{
	/* a function body holding a CREATE TABLE is the function's text */
	static const char text[] = HEAD("f()", "FUNCTION")
		"CREATE FUNCTION public.f() RETURNS void\n    LANGUAGE sql\n    AS $$\nCREATE TABLE public.x (\n"
		"    a integer,\n    b integer\n);\n$$;\n\n\n" HEAD("t", "TABLE")
		"ALTER TABLE public.t OWNER TO x;\nCREATE TABLE public.t (\n    a integer,\n    b integer\n);\n";
	char *n = normalise(text, strlen(text));

	(void)state;
	assert_non_null(strstr(n, "    AS $$\nCREATE TABLE public.x (\n    a integer,\n    b integer\n);\n$$;\n"));
	assert_non_null(strstr(n, "CREATE TABLE public.t (\n    a integer,\n    b integer\n);\n"));
	free(n);
}

static void
the_load_preamble_comes_once_and_only_with_text(void **state)
{
	static const char text[] = HEAD("t", "TABLE") "CREATE TABLE public.t ();\n";
	char *once = normalise(text, strlen(text)), *twice = normalise(once, strlen(once));

	(void)state;
	assert_string_equal(once, LOAD NHEAD("t", "TABLE") "CREATE TABLE public.t ();\n");
	assert_string_equal(twice, once);
	free(once);
	free(twice);
	/* the preamble alone is an empty schema's text: nothing to set */
	once = normalise(LOAD, strlen(LOAD));
	assert_string_equal(once, "");
	free(once);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(drops_run_noise_and_keeps_every_statement),
		cmocka_unit_test(dumps_of_two_runs_and_owners_are_byte_identical),
		cmocka_unit_test(normalising_twice_changes_nothing),
		cmocka_unit_test(an_added_column_changes_only_its_own_lines),
		cmocka_unit_test(entries_with_the_same_header_are_sorted_by_text),
		cmocka_unit_test(unknown_preamble_lines_are_kept),
		cmocka_unit_test(an_access_method_other_than_heap_is_kept_with_its_table),
		cmocka_unit_test(empty_and_noise_only_input_give_empty_text),
		cmocka_unit_test(a_nul_byte_is_refused),
		cmocka_unit_test(a_header_without_its_closing_line_or_newline_survives),
		cmocka_unit_test(text_that_ends_without_a_newline_is_stable),
		cmocka_unit_test(element_lists_get_leading_commas),
		cmocka_unit_test(one_element_is_one_line_wherever_it_is_but_first),
		cmocka_unit_test(doubtful_lists_are_left_as_pg_dump_wrote_them),
		cmocka_unit_test(only_a_table_or_types_first_statement_is_rewritten),
		cmocka_unit_test(the_load_preamble_comes_once_and_only_with_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
