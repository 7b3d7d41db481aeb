/* tests/unit/test-util.c: buffers, errors, atomic files, the option parser, hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/opts.h"
#include "util/sha256.h"

#include <sodium.h>

static void
buf_printf_grows_and_stays_terminated(void **state)
{
	struct dd_buf b = DD_BUF_INIT;

	assert_string_equal(dd_buf_cstr(&b), "");
	for (int i = 0; i < 1000; i++)
		dd_buf_printf(&b, "%04d,", i);
	assert_int_equal(b.len, 5000);
	assert_int_equal(b.ptr[b.len], '\0');
	assert_memory_equal(b.ptr + 4995, "0999,", 5);
	dd_buf_truncate(&b, 3);
	assert_string_equal(b.ptr, "000");
	dd_buf_release(&b);
	assert_null(b.ptr);
}

static void
printable(const char *in, size_t len, const char *want)
{
	struct dd_buf b = DD_BUF_INIT;

	dd_buf_put_printable(&b, in, len);
	assert_string_equal(dd_buf_cstr(&b), want);
	dd_buf_release(&b);
}

static void
printable_escapes_terminal_controls_and_invalid_utf8(void **state)
{
	printable("plain text, é ü 日本 😀", strlen("plain text, é ü 日本 😀"), "plain text, é ü 日本 😀");
	printable("\x1b]0;title\x07", 10, "\\x1b]0;title\\x07");
	printable("a\tb\nc\rd\x7f", 8, "a\\tb\\nc\\rd\\x7f");
	printable("nul\0x", 5, "nul\\x00x");
	/* C1 controls: U+009B is CSI on many terminals */
	printable("\xc2\x9b" "31m", 5, "\\u009b31m");
	/* invalid UTF-8: a lone continuation, a truncated sequence, an overlong '/', a surrogate */
	printable("\x80", 1, "\\x80");
	printable("\xe6\x97", 2, "\\xe6\\x97");
	printable("\xc0\xaf", 2, "\\xc0\\xaf");
	printable("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");
	printable("\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80");
}

static void
error_save_restore_keeps_message_and_hint_across_cleanup(void **state)
{
	struct dd_error_saved saved;

	dd_error("first failure");
	dd_hint("run this");
	dd_error_save(&saved);
	dd_error("cleanup failed too");
	assert_int_equal(dd_error_restore(&saved), -1);
	assert_string_equal(dd_error_last(), "first failure");
	assert_string_equal(dd_error_hint(), "run this");
	assert_null(saved.msg);
	dd_error_clear();
}

static void
error_wrap_adds_context_and_stays_one_line(void **state)
{
	dd_error_clear();
	assert_null(dd_error_last());
	assert_int_equal(dd_error("bad\nthing %d", 7), -1);
	assert_int_equal(dd_error_wrap("restoring %s", "p1"), -1);
	assert_string_equal(dd_error_last(), "restoring p1: bad thing 7");
	dd_hint("run x");
	assert_string_equal(dd_error_hint(), "run x");
	dd_error("new");
	assert_null(dd_error_hint());
	dd_error_clear();
}

static char *
temp_dir(void)
{
	char tmpl[] = "/tmp/dd-unit.XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static void
atomic_write_replaces_and_noreplace_keeps(void **state)
{
	char *dir = temp_dir(), *path = dd_path_join(dir, "f");
	struct dd_buf b = DD_BUF_INIT;
	struct stat st;

	assert_int_equal(dd_file_write_atomic(path, "one", 3, 0600, 0), 0);
	assert_int_equal(dd_file_write_atomic(path, "two", 3, 0644, 0), 0);
	assert_int_equal(dd_file_read(&b, path), 0);
	assert_string_equal(b.ptr, "two");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	/* create-only: existing content wins, and 1 says so */
	assert_int_equal(dd_file_write_atomic(path, "three", 5, 0644, DD_WRITE_NOREPLACE), DD_EXISTS);
	dd_buf_clear(&b);
	assert_int_equal(dd_file_read(&b, path), 0);
	assert_string_equal(b.ptr, "two");
	/* no temporary file is left behind */
	assert_int_equal(dd_rm_rf(path), 0);
	assert_int_equal(rmdir(dir), 0);
	dd_buf_release(&b);
	free(path);
	free(dir);
}

static void
atomic_abort_leaves_nothing(void **state)
{
	char *dir = temp_dir(), *path = dd_path_join(dir, "g");
	struct dd_atomic_file af;

	assert_int_equal(dd_atomic_open(&af, path, 0600, 0), 0);
	assert_int_equal(dd_atomic_write(&af, "partial", 7), 0);
	dd_atomic_abort(&af);
	assert_false(dd_path_exists(path));
	assert_int_equal(rmdir(dir), 0); /* fails if a temp file remained */
	free(path);
	free(dir);
}

static void
mkdir_p_and_rm_rf(void **state)
{
	char *dir = temp_dir(), *deep = dd_path_join(dir, "a/b/c");

	assert_int_equal(dd_mkdir_p(deep, 0700), 0);
	assert_true(dd_is_dir(deep));
	assert_int_equal(dd_mkdir_p(deep, 0700), 0);
	assert_int_equal(dd_rm_rf(dir), 0);
	assert_false(dd_path_exists(dir));
	assert_int_equal(dd_rm_rf(dir), 0); /* missing is fine */
	free(deep);
	free(dir);
}

static void
read_missing_file_names_it(void **state)
{
	struct dd_buf b = DD_BUF_INIT;

	assert_int_equal(dd_file_read(&b, "/nonexistent/dd-file"), -1);
	assert_non_null(strstr(dd_error_last(), "/nonexistent/dd-file"));
	dd_buf_release(&b);
}

static void
path_helpers(void **state)
{
	char *p = dd_path_join("/a/", "/b");
	assert_string_equal(p, "/a/b");
	free(p);
	p = dd_path_dirname("/a/b/c");
	assert_string_equal(p, "/a/b");
	free(p);
	p = dd_path_dirname("c");
	assert_string_equal(p, ".");
	free(p);
}

static void
hex_round_trip_and_strictness(void **state)
{
	unsigned char in[4] = { 0x00, 0xab, 0x7f, 0xff }, out[4];
	char hex[9];

	dd_hex_encode(hex, in, 4);
	assert_string_equal(hex, "00ab7fff");
	assert_int_equal(dd_hex_decode(out, 4, hex), 0);
	assert_memory_equal(in, out, 4);
	assert_int_equal(dd_hex_decode(out, 4, "00AB7FFF"), -1); /* lowercase only */
	assert_int_equal(dd_hex_decode(out, 4, "00ab7ff"), -1);
	assert_int_equal(dd_hex_decode(out, 4, "00ab7fffa"), -1);
	assert_int_equal(dd_hex_decode(out, 4, "00ab7fgf"), -1);
}

static void
closest_suggests_near_names_only(void **state)
{
	const char *names[] = { "snapshot", "restore", "status", "init", NULL };

	assert_string_equal(dd_closest("snapshto", names), "snapshot");
	assert_string_equal(dd_closest("restor", names), "restore");
	assert_string_equal(dd_closest("snap", names), "snapshot");
	assert_null(dd_closest("frobnicate", names));
	assert_int_equal(dd_edit_distance("kitten", "sitting"), 3);
	assert_int_equal(dd_edit_distance("", "abc"), 3);
}

/* Names whose length alone rules them out are skipped; the answers are those the full comparison gives. */
static void
closest_skips_names_too_far_in_length(void **state)
{
	const char *names[] = { "a", "snapshot", "snapshots", "restore", "verylongnamewithsuffix", NULL };
	struct dd_buf word = DD_BUF_INIT;

	assert_string_equal(dd_closest("snapshot", names), "snapshot"); /* exact, before the longer one */
	assert_string_equal(dd_closest("snapshotz", names), "snapshot");
	assert_string_equal(dd_closest("snapshotss", names), "snapshots");
	assert_string_equal(dd_closest("verylongnamewithsufix", names), "verylongnamewithsuffix");
	assert_string_equal(dd_closest("b", names), "a");
	assert_string_equal(dd_closest("snaps", names), "snapshot"); /* a prefix, however far in length */
	/* a hostile key of 100,000 bytes: no name is near, and no quadratic comparison is made */
	for (int i = 0; i < 100000; i++)
		dd_buf_putc(&word, 'x');
	assert_null(dd_closest(word.ptr, names));
	dd_buf_release(&word);
}

static void
options_parse_long_short_and_positionals(void **state)
{
	int force = 0, jobs = 0;
	const char *msg = NULL, *at = NULL;
	const struct dd_option opts[] = {
		{ DD_OPT_BOOL, 'f', "force", &force, NULL, "" },
		{ DD_OPT_STRING, 'm', "message", &msg, "MSG", "" },
		{ DD_OPT_STRING, 0, "at", &at, "REV", "" },
		{ DD_OPT_INT, 'j', "jobs", &jobs, "N", "" },
		DD_OPT_END_MARK
	};
	const char *const usage[] = { "git dnadata x", NULL };
	char *argv[] = { "x", "p1", "-f", "--at=HEAD~1", "-mhello", "--jobs", "3", "--", "-notopt", NULL };

	int n = dd_parse_options(9, argv, opts, usage);
	assert_int_equal(n, 2);
	assert_string_equal(argv[0], "p1");
	assert_string_equal(argv[1], "-notopt");
	assert_int_equal(force, 1);
	assert_int_equal(jobs, 3);
	assert_string_equal(msg, "hello");
	assert_string_equal(at, "HEAD~1");

	char *argv2[] = { "x", "--no-force", NULL };
	assert_int_equal(dd_parse_options(2, argv2, opts, usage), 0);
	assert_int_equal(force, 0);
}

static void
options_unknown_suggests_closest(void **state)
{
	int force = 0;
	const struct dd_option opts[] = {
		{ DD_OPT_BOOL, 'f', "force", &force, NULL, "" },
		DD_OPT_END_MARK
	};
	const char *const usage[] = { "git dnadata x", NULL };
	char *argv[] = { "x", "--forc", NULL };
	char *argv2[] = { "x", "--jobs", NULL };
	const struct dd_option opts2[] = {
		{ DD_OPT_INT, 'j', "jobs", &force, "N", "" },
		DD_OPT_END_MARK
	};
	char *argv3[] = { "x", "--jobs=-1", NULL };

	assert_int_equal(dd_parse_options(2, argv, opts, usage), DD_USAGE_ERROR);
	assert_non_null(strstr(dd_error_last(), "did you mean '--force'"));
	assert_non_null(strstr(dd_error_hint(), "git dnadata x -h"));
	assert_int_equal(dd_parse_options(2, argv2, opts2, usage), DD_USAGE_ERROR);
	assert_non_null(strstr(dd_error_last(), "needs a value"));
	assert_int_equal(dd_parse_options(2, argv3, opts2, usage), DD_USAGE_ERROR);
	assert_non_null(strstr(dd_error_last(), "non-negative number"));
}

/* libcrypto's SHA-256: FIPS 180-2 vectors, and streaming in odd pieces equals libsodium's one pass. */
static void
sha256_matches_vectors_and_libsodium(void **state)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	uint8_t md[32], ref[32];
	char hex[65];
	size_t n = 1000003, pos = 0, step = 1;
	uint8_t *big = malloc(n);
	struct dd_sha256 *h;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		dd_sha256(md, v[i].in, strlen(v[i].in));
		dd_hex_encode(hex, md, 32);
		assert_string_equal(hex, v[i].hex);
	}
	for (size_t i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 131 + (i >> 9));
	h = dd_sha256_new();
	while (pos < n) {
		size_t k = step < n - pos ? step : n - pos;
		dd_sha256_update(h, big + pos, k);
		pos += k;
		step = step * 3 + 1;
	}
	dd_sha256_final(h, md);
	crypto_hash_sha256(ref, big, n);
	assert_memory_equal(md, ref, 32);
	dd_sha256(md, big, n);
	assert_memory_equal(md, ref, 32);
	dd_sha256_free(NULL);
	dd_sha256_free(dd_sha256_new()); /* dropped without a result */
	free(big);
}


static void
lock_record_parse_is_strict(void **state)
{
	static const char *const bad[] = {
		"1234 5 6\n",             /* no command */
		"1234 5 6 cmd",           /* no final newline */
		"1234 5 6 cmd\nmore\n",   /* more after it */
		"0 5 6 cmd\n",            /* pid 0 */
		"-1 5 6 cmd\n",
		"99999999999 5 6 cmd\n",  /* beyond a pid */
		"1234  5 6 cmd\n",        /* two spaces */
		"1234 5 99999999999999999999 cmd\n",
		"1234 5 6 a\tb\n",        /* a control character */
		"1234 5 6 a\x1b[2Jb\n",
		"x 5 6 cmd\n",
	};
	struct dd_lock_record r;
	struct dd_buf b = DD_BUF_INIT;

	(void)state;
	assert_int_equal(dd_lock_record_parse(&r, "", 0), DD_NOTFOUND);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(dd_lock_record_parse(&r, bad[i], strlen(bad[i])), -1);
		assert_int_equal(r.pid, 0);
		assert_string_equal(r.command, "");
	}
	assert_int_equal(dd_lock_record_parse(&r, "1234 5 1764489600 git dnadata snapshot\n", 39), 0);
	assert_int_equal(r.pid, 1234);
	assert_int_equal(r.started, 5);
	assert_int_equal(r.since, 1764489600);
	assert_string_equal(r.command, "git dnadata snapshot");
	dd_lock_record_format(&b, &r);
	assert_string_equal(dd_buf_cstr(&b), "1234 5 1764489600 git dnadata snapshot\n");
	dd_buf_release(&b);
}

static char *
file_text(const char *path)
{
	struct dd_buf b = DD_BUF_INIT;

	assert_int_equal(dd_file_read(&b, path), 0);
	return dd_buf_detach(&b, NULL);
}

/* A lock file names its holder while held and is emptied on release; a record a dead holder left is taken over. */
static void
lock_file_records_its_holder_and_takes_over_a_dead_ones(void **state)
{
	char dir[] = "/tmp/dd-test-lock-XXXXXX", *path, *text, *who;
	struct dd_lock_record r;
	int fd = -1, fd2 = -1;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = dd_path_join(dir, "locks/p");
	dd_lock_set_command("git dnadata test\x1b");
	assert_int_equal(dd_lock_file(path, NULL, &fd), 0);
	text = file_text(path);
	assert_int_equal(dd_lock_record_parse(&r, text, strlen(text)), 0);
	assert_int_equal(r.pid, (long)getpid());
	assert_string_equal(r.command, "git dnadata test?");
	free(text);
	who = dd_lock_file_holder(path);
	assert_non_null(who);
	assert_non_null(strstr(who, "git dnadata test?"));
	free(who);
	/* a second descriptor is another holder: busy, and the error names the first */
	assert_int_equal(dd_lock_file_try(path, &fd2), DD_EBUSY);
	assert_int_equal(fd2, -1);
	assert_non_null(strstr(dd_error_last(), "git dnadata test?"));
	dd_error_clear();
	dd_lock_never_wait();
	assert_int_equal(dd_lock_file(path, "waiting", &fd2), DD_EBUSY);
	dd_error_clear();
	dd_unlock_file(fd);
	text = file_text(path);
	assert_string_equal(text, "");
	free(text);
	assert_null(dd_lock_file_holder(path));
	/* a record left by a process that is gone (pid 1 started at another time: reused) is taken over */
	assert_int_equal(dd_file_write_atomic(path, "1 1 1764489600 git dnadata snapshot\n", 36, 0600, 0), 0);
	assert_null(dd_lock_file_holder(path));
	assert_int_equal(dd_lock_file_try(path, &fd), 0);
	text = file_text(path);
	assert_int_equal(dd_lock_record_parse(&r, text, strlen(text)), 0);
	assert_int_equal(r.pid, (long)getpid());
	free(text);
	dd_unlock_file(fd);
	assert_int_equal(dd_rm_rf(dir), 0);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_printf_grows_and_stays_terminated),
		cmocka_unit_test(sha256_matches_vectors_and_libsodium),
		cmocka_unit_test(error_wrap_adds_context_and_stays_one_line),
		cmocka_unit_test(atomic_write_replaces_and_noreplace_keeps),
		cmocka_unit_test(atomic_abort_leaves_nothing),
		cmocka_unit_test(mkdir_p_and_rm_rf),
		cmocka_unit_test(read_missing_file_names_it),
		cmocka_unit_test(path_helpers),
		cmocka_unit_test(hex_round_trip_and_strictness),
		cmocka_unit_test(closest_suggests_near_names_only),
		cmocka_unit_test(closest_skips_names_too_far_in_length),
		cmocka_unit_test(options_parse_long_short_and_positionals),
		cmocka_unit_test(options_unknown_suggests_closest),
		cmocka_unit_test(printable_escapes_terminal_controls_and_invalid_utf8),
		cmocka_unit_test(error_save_restore_keeps_message_and_hint_across_cleanup),
		cmocka_unit_test(lock_record_parse_is_strict),
		cmocka_unit_test(lock_file_records_its_holder_and_takes_over_a_dead_ones),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
