/* tests/unit/test-ref.c: the ref file parser and writer (docs/FORMAT.md §1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "git/ref.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct dd_ref *
parse_ok(const char *text)
{
	struct dd_ref *ref = NULL;

	dd_error_clear();
	if (dd_ref_parse(&ref, text, strlen(text), "refs/p") != 0)
		fail_msg("expected to parse, got: %s", dd_error_last());
	assert_non_null(ref);
	return ref;
}

/* Parse must fail with exactly "refs/p:<line>: ..." containing `what`. */
static void
parse_bad_n(const char *text, size_t len, int line, const char *what)
{
	struct dd_ref *ref = (struct dd_ref *)1;
	char prefix[64];

	dd_error_clear();
	assert_int_equal(dd_ref_parse(&ref, text, len, "refs/p"), -1);
	assert_null(ref);
	assert_non_null(dd_error_last());
	snprintf(prefix, sizeof(prefix), "refs/p:%d: ", line);
	if (strncmp(dd_error_last(), prefix, strlen(prefix)) || !strstr(dd_error_last(), what))
		fail_msg("expected '%s...%s', got '%s'", prefix, what, dd_error_last());
	assert_null(strchr(dd_error_last(), '\n'));
}

static void
parse_bad(const char *text, int line, const char *what)
{
	parse_bad_n(text, strlen(text), line, what);
}

static void
valid_ref_with_info_lines_parses(void **state)
{
	struct dd_ref *ref = parse_ok("dnadata-ref 1\nsnapshot " ID "\ncreated 2026-11-24T19:05:47Z\nrows 120345\n"
				      "note caf\xc3\xa9 au lait\n");

	assert_string_equal(ref->snapshot, ID);
	assert_int_equal(ref->ninfo, 3);
	assert_string_equal(dd_ref_get_info(ref, "created"), "2026-11-24T19:05:47Z");
	assert_string_equal(dd_ref_get_info(ref, "rows"), "120345");
	assert_string_equal(dd_ref_get_info(ref, "note"), "caf\xc3\xa9 au lait");
	assert_null(dd_ref_get_info(ref, "bytes"));
	dd_ref_free(ref);
}

static void
minimal_ref_and_missing_final_newline_parse(void **state)
{
	dd_ref_free(parse_ok("dnadata-ref 1\nsnapshot " ID "\n"));
	dd_ref_free(parse_ok("dnadata-ref 1\nsnapshot " ID));
	dd_ref_free(parse_ok("dnadata-ref 1\nsnapshot " ID "\nrows 5"));
}

static void
crlf_line_ends_parse_like_lf(void **state)
{
	struct dd_ref *ref = parse_ok("dnadata-ref 1\r\nsnapshot " ID "\r\nrows 5\r\n");

	assert_string_equal(ref->snapshot, ID);
	assert_string_equal(dd_ref_get_info(ref, "rows"), "5");
	dd_ref_free(ref);
	/* a lone CR inside a line is not a line end */
	parse_bad("dnadata-ref 1\nsnapshot " ID "\nrows 5\r6\n", 3, "carriage return");
}

static void
unknown_version_is_named(void **state)
{
	parse_bad("dnadata-ref 2\nsnapshot " ID "\n", 1, "unknown ref format version 2");
	assert_non_null(dd_error_hint());
	parse_bad("dnadata-ref 99999999999999999999\nsnapshot " ID "\n", 1, "malformed version");
	parse_bad("dnadata-ref 01\nsnapshot " ID "\n", 1, "malformed version");
	parse_bad("dnadata-ref 1.0\nsnapshot " ID "\n", 1, "malformed version");
	parse_bad("dnadata-ref  1\nsnapshot " ID "\n", 1, "malformed version");
}

static void
not_a_ref_file_is_reported_on_line_1(void **state)
{
	parse_bad("version https://git-lfs.github.com/spec/v1\n", 1, "not a dnadata ref file");
	parse_bad("dnadata-ref\n", 1, "not a dnadata ref file");
	parse_bad("", 1, "empty file");
	parse_bad("\n", 1, "not a dnadata ref file");
}

static void
every_malformed_line_is_an_error(void **state)
{
	parse_bad("dnadata-ref 1\n", 2, "missing 'snapshot <id>' line");
	parse_bad("dnadata-ref 1\nsnapshot\n", 2, "malformed line");
	parse_bad("dnadata-ref 1\nsnapshot " ID "0\n", 2, "malformed snapshot id");
	parse_bad("dnadata-ref 1\nsnapshot 0123\n", 2, "malformed snapshot id");
	parse_bad("dnadata-ref 1\nsnapshot 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n", 2,
		  "malformed snapshot id");
	parse_bad("dnadata-ref 1\nsnapshot  " ID "\n", 2, "malformed snapshot id");
	parse_bad("dnadata-ref 1\nrows 5\nsnapshot " ID "\n", 2, "expected 'snapshot <id>' on line 2");
	parse_bad("dnadata-ref 1\n\nsnapshot " ID "\n", 2, "empty line");
	parse_bad("dnadata-ref 1\nsnapshot " ID "\n\n", 3, "empty line");
	parse_bad("dnadata-ref 1\nsnapshot " ID "\nrows\n", 3, "malformed line");
	parse_bad("dnadata-ref 1\nsnapshot " ID "\nrows \n", 3, "malformed line");
	parse_bad("dnadata-ref 1\nsnapshot " ID "\n rows 5\n", 3, "malformed line");
	parse_bad("dnadata-ref 1\nsnapshot " ID "\nrows  5\n", 3, "extra space");
	parse_bad("dnadata-ref 1\nsnapshot " ID "\nrows 5 \n", 3, "extra space");
	parse_bad("dnadata-ref 1\nsnapshot " ID "\nRows 5\n", 3, "malformed key");
	parse_bad("dnadata-ref 1\nsnapshot " ID "\nro:ws 5\n", 3, "malformed key");
	parse_bad("dnadata-ref 1\nsnapshot " ID "\nrows 5\tx\n", 3, "control character");
	parse_bad("dnadata-ref 1\nsnapshot " ID "\nrows \xff\n", 3, "invalid UTF-8");
	parse_bad("dnadata-ref 1\nsnapshot " ID "\nrows \xc0\xaf\n", 3, "invalid UTF-8");
	parse_bad("<<<<<<< HEAD\nsnapshot " ID "\n", 1, "merge conflict marker");
	parse_bad("dnadata-ref 1\nsnapshot " ID "\n=======\n", 3, "merge conflict marker");
}

static void
duplicate_lines_are_errors_naming_the_first(void **state)
{
	parse_bad("dnadata-ref 1\nsnapshot " ID "\nsnapshot " ID "\n", 3, "duplicate snapshot line (the first is on line 2)");
	parse_bad("dnadata-ref 1\nsnapshot " ID "\nrows 1\nbytes 2\nrows 1\n", 5, "duplicate key 'rows' (the first is on line 3)");
}

static void
nul_bytes_are_errors(void **state)
{
	static const char text[] = "dnadata-ref 1\nsnapshot " ID "\nrows 1\0" "2\n";

	parse_bad_n(text, sizeof(text) - 1, 3, "NUL byte");
	parse_bad_n("dnadata-ref 1\0\n", 15, 1, "NUL byte");
}

static void
very_long_lines_and_files_are_refused(void **state)
{
	struct dd_buf b = DD_BUF_INIT;
	struct dd_ref *ref = NULL;

	dd_buf_puts(&b, "dnadata-ref 1\nsnapshot " ID "\nnote ");
	for (int i = 0; i < 2000; i++)
		dd_buf_putc(&b, 'x');
	dd_buf_putc(&b, '\n');
	parse_bad(b.ptr, 3, "line too long");
	dd_buf_clear(&b);
	dd_buf_puts(&b, "dnadata-ref 1\nsnapshot " ID "\n");
	for (int i = 0; i < 5000; i++)
		dd_buf_printf(&b, "k%d 1234567890\n", i);
	dd_error_clear();
	assert_int_equal(dd_ref_parse(&ref, b.ptr, b.len, "refs/p"), -1);
	assert_non_null(strstr(dd_error_last(), "too large"));
	dd_buf_release(&b);
}

static void
format_sorts_info_and_round_trips(void **state)
{
	struct dd_ref *ref = dd_ref_new(ID), *back = NULL;
	struct dd_buf b = DD_BUF_INIT;

	assert_non_null(ref);
	dd_ref_set_info(ref, "rows", "10");
	dd_ref_set_info(ref, "created", "2026-01-01T00:00:00Z");
	dd_ref_set_info(ref, "rows", "11");
	dd_ref_set_info(ref, "note", "two\nlines\x01 and \xff bad utf-8   ");
	dd_ref_format(&b, ref);
	assert_string_equal(b.ptr, "dnadata-ref 1\nsnapshot " ID "\ncreated 2026-01-01T00:00:00Z\n"
				   "note two lines  and ? bad utf-8\nrows 11\n");
	assert_int_equal(dd_ref_parse(&back, b.ptr, b.len, "x"), 0);
	assert_string_equal(back->snapshot, ID);
	assert_string_equal(dd_ref_get_info(back, "rows"), "11");
	dd_ref_free(back);
	dd_ref_free(ref);
	dd_buf_release(&b);
}

static void
new_rejects_malformed_ids(void **state)
{
	assert_null(dd_ref_new("abc"));
	assert_non_null(strstr(dd_error_last(), "invalid snapshot id"));
	assert_null(dd_ref_new("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
	assert_true(dd_ref_key_valid("tables", 6));
	assert_false(dd_ref_key_valid("snapshot", 8));
	assert_false(dd_ref_key_valid("", 0));
}

static void
read_and_write_files(void **state)
{
	char dir[] = "/tmp/dd-test-ref.XXXXXX";
	struct dd_ref *ref = dd_ref_new(ID), *back = NULL;
	char *path;

	assert_non_null(mkdtemp(dir));
	path = dd_path_join(dir, "refs/clean");
	assert_int_equal(dd_ref_read(&back, path), DD_NOTFOUND); /* missing, not an error */
	assert_null(back);
	dd_ref_set_info(ref, "tables", "3");
	assert_int_equal(dd_ref_write(path, ref), 0);
	assert_int_equal(dd_ref_read(&back, path), 0);
	assert_string_equal(back->snapshot, ID);
	assert_string_equal(dd_ref_get_info(back, "tables"), "3");
	dd_ref_free(back);
	assert_int_equal(dd_file_write_atomic(path, "dnadata-ref 7\n", 14, 0644, 0), 0);
	assert_int_equal(dd_ref_read_named(&back, path, ".dnadata/refs/clean"), -1);
	assert_non_null(strstr(dd_error_last(), ".dnadata/refs/clean:1: unknown ref format version 7"));
	dd_ref_free(ref);
	dd_rm_rf(dir);
	free(path);
}

static void
symlinked_ref_file_is_refused(void **state)
{
	char dir[] = "/tmp/dd-test-ref.XXXXXX";
	struct dd_ref *ref = dd_ref_new(ID), *back = NULL;
	char *target, *link;

	(void)state;
	assert_non_null(mkdtemp(dir));
	target = dd_path_join(dir, "elsewhere");
	link = dd_path_join(dir, "clean");
	assert_int_equal(dd_ref_write(target, ref), 0);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(dd_ref_read_named(&back, link, ".dnadata/refs/clean"), -1);
	assert_null(back);
	assert_non_null(strstr(dd_error_last(), ".dnadata/refs/clean is not a regular file but a symbolic link"));
	free(target);
	target = dd_ref_path("clean");
	assert_string_equal(target, ".dnadata/refs/clean");
	dd_ref_free(ref);
	dd_rm_rf(dir);
	free(target);
	free(link);
}

/* Only "inline yes" marks an inline profile's ref (issue 18): push, fetch and verify skip those. */
static void
inline_refs_are_told_by_their_inline_line(void **state)
{
	static const char id[] = "3f2a9c1e4b5d6a7f8e9d0c1b2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f";
	const char *texts[] = { "inline yes\n", "inline no\n", "inline Yes\n", "" };
	const int want[] = { 1, 0, 0, 0 };
	(void)state;

	for (size_t i = 0; i < 4; i++) {
		struct dd_ref *ref = NULL;
		char *text = dd_asprintf("dnadata-ref 1\nsnapshot %s\n%s", id, texts[i]);
		assert_int_equal(dd_ref_parse(&ref, text, strlen(text), "refs/p"), 0);
		assert_int_equal(dd_ref_is_inline(ref), want[i]);
		dd_ref_free(ref);
		free(text);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_ref_with_info_lines_parses),
		cmocka_unit_test(inline_refs_are_told_by_their_inline_line),
		cmocka_unit_test(minimal_ref_and_missing_final_newline_parse),
		cmocka_unit_test(crlf_line_ends_parse_like_lf),
		cmocka_unit_test(unknown_version_is_named),
		cmocka_unit_test(not_a_ref_file_is_reported_on_line_1),
		cmocka_unit_test(every_malformed_line_is_an_error),
		cmocka_unit_test(duplicate_lines_are_errors_naming_the_first),
		cmocka_unit_test(nul_bytes_are_errors),
		cmocka_unit_test(very_long_lines_and_files_are_refused),
		cmocka_unit_test(format_sorts_info_and_round_trips),
		cmocka_unit_test(new_rejects_malformed_ids),
		cmocka_unit_test(read_and_write_files),
		cmocka_unit_test(symlinked_ref_file_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
