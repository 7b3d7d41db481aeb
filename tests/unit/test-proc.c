/* tests/unit/test-proc.c: the child-process runner (util/proc) with /bin/sh commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/proc.h"

static int
collect(void *arg, const void *data, size_t len)
{
	dd_buf_put(arg, data, len);
	return 0;
}

static int
sh(const char *script, const char *const *env, struct dd_buf *out, struct dd_proc_result *r)
{
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	struct dd_proc p = { .argv = argv, .env = env, .out_cb = collect, .out_arg = out, .out_fd = -1, .err_fd = -1 };

	return dd_proc_run(&p, "test command", r);
}

static void
stdout_goes_to_the_callback_and_status_zero_is_success(void **state)
{
	struct dd_buf out = DD_BUF_INIT;
	struct dd_proc_result r;

	assert_int_equal(sh("printf 'a\\nb'; printf 'noise' >&2", NULL, &out, &r), DD_OK);
	assert_string_equal(dd_buf_cstr(&out), "a\nb");
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.signal, 0);
	assert_string_equal(dd_buf_cstr(&r.err), "noise");
	dd_proc_result_release(&r);
	dd_buf_release(&out);
}

static void
exit_status_is_reported_with_the_stderr_line(void **state)
{
	struct dd_buf out = DD_BUF_INIT;
	struct dd_proc_result r;

	assert_int_equal(sh("echo starting >&2; echo 'sh: error: disk on fire' >&2; echo bye >&2; exit 3", NULL, &out,
			    &r), DD_ERROR);
	assert_int_equal(r.exit_code, 3);
	assert_string_equal(dd_error_last(), "test command exited with status 3: disk on fire");
	dd_proc_result_release(&r);
	assert_int_equal(sh("echo last words >&2; exit 4", NULL, &out, NULL), DD_ERROR);
	assert_string_equal(dd_error_last(), "test command exited with status 4: last words");
	dd_buf_release(&out);
	dd_error_clear();
}

static void
a_signal_is_named(void **state)
{
	struct dd_buf out = DD_BUF_INIT;
	struct dd_proc_result r;

	assert_int_equal(sh("kill -9 $$", NULL, &out, &r), DD_ERROR);
	assert_int_equal(r.signal, 9);
	assert_int_equal(r.exit_code, -1);
	assert_string_equal(dd_error_last(), "test command was killed by signal 9");
	dd_proc_result_release(&r);
	dd_buf_release(&out);
	dd_error_clear();
}

static void
a_missing_program_is_not_found(void **state)
{
	const char *argv[] = { "/nonexistent/prog", NULL };
	struct dd_proc p = { .argv = argv, .out_fd = -1, .err_fd = -1 };
	struct dd_proc_result r;

	assert_int_equal(dd_proc_run(&p, "prog", &r), DD_ERROR);
	assert_string_equal(dd_error_last(), "prog: cannot run /nonexistent/prog: not found");
	assert_int_equal(r.exit_code, -1);
	dd_proc_result_release(&r);
	dd_error_clear();
}

static void
environment_is_set_and_removed_never_on_the_command_line(void **state)
{
	struct dd_buf out = DD_BUF_INIT;
	const char *env[] = { "DD_TEST_SECRET=s3cret", "DD_TEST_GONE", NULL };

	setenv("DD_TEST_GONE", "still here", 1);
	setenv("DD_TEST_SECRET", "old", 1);
	assert_int_equal(sh("printf '%s|%s|' \"$DD_TEST_SECRET\" \"${DD_TEST_GONE-unset}\"; "
			    "tr '\\0' ' ' </proc/$$/cmdline",
			    env, &out, NULL),
			 DD_OK);
	assert_string_equal(dd_buf_cstr(&out), "s3cret|unset|/bin/sh -c printf '%s|%s|' \"$DD_TEST_SECRET\" "
					       "\"${DD_TEST_GONE-unset}\"; tr '\\0' ' ' </proc/$$/cmdline ");
	unsetenv("DD_TEST_GONE");
	unsetenv("DD_TEST_SECRET");
	dd_buf_release(&out);
}

/* Our own children never get the S3 secrets (they are dumpable: their environment is readable); a user's command does. */
static void
s3_secrets_reach_only_the_users_commands(void **state)
{
	const char *argv[] = { "/bin/sh", "-c", "printf '%s|%s|%s' \"${AWS_SECRET_ACCESS_KEY-unset}\" "
			       "\"${AWS_SESSION_TOKEN-unset}\" \"${AWS_ACCESS_KEY_ID-unset}\"", NULL };
	struct dd_buf out = DD_BUF_INIT;
	struct dd_proc p = { .argv = argv, .out_cb = collect, .out_arg = &out, .out_fd = -1, .err_fd = -1 };

	(void)state;
	setenv("AWS_SECRET_ACCESS_KEY", "s3-secret", 1);
	setenv("AWS_SESSION_TOKEN", "s3-token", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE", 1);
	assert_int_equal(dd_proc_run(&p, "pg_dump", NULL), DD_OK);
	assert_string_equal(dd_buf_cstr(&out), "unset|unset|AKIAEXAMPLE");
	dd_buf_clear(&out);
	p.user_command = 1;
	assert_int_equal(dd_proc_run(&p, "post_restore", NULL), DD_OK);
	assert_string_equal(dd_buf_cstr(&out), "s3-secret|s3-token|AKIAEXAMPLE");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_ACCESS_KEY_ID");
	dd_buf_release(&out);
}

static void
stderr_kept_is_bounded_to_its_tail(void **state)
{
	struct dd_buf out = DD_BUF_INIT;
	struct dd_proc_result r;

	/* 300 KiB of stderr, then the telling line */
	assert_int_equal(sh("head -c 307200 /dev/zero | tr '\\0' x >&2; echo >&2; echo the end >&2; exit 1", NULL, &out,
			    &r), DD_ERROR);
	assert_true(r.err.len <= 2 * DD_PROC_ERR_KEEP);
	assert_true(r.err.len >= strlen("the end\n"));
	assert_string_equal(dd_error_last(), "test command exited with status 1: the end");
	dd_proc_result_release(&r);
	/* and a message line stays short */
	assert_int_equal(sh("head -c 10000 /dev/zero | tr '\\0' y >&2; exit 1", NULL, &out, NULL), DD_ERROR);
	assert_true(strlen(dd_error_last()) < 400);
	assert_non_null(strstr(dd_error_last(), "yyy..."));
	dd_buf_release(&out);
	dd_error_clear();
}

static void
stdout_and_stderr_to_an_fd_and_a_working_directory(void **state)
{
	char tmpl[] = "/tmp/dd-proc.XXXXXX";
	int fd = mkstemp(tmpl);
	const char *argv[] = { "/bin/sh", "-c", "pwd; echo oops >&2; exit 2", NULL };
	struct dd_proc p = { .argv = argv, .dir = "/tmp", .out_fd = fd, .err_fd = fd };
	struct dd_proc_result r;
	char buf[64] = "";

	assert_true(fd >= 0);
	assert_int_equal(dd_proc_run(&p, "pwd", &r), DD_ERROR);
	assert_int_equal(r.exit_code, 2);
	assert_int_equal(r.err.len, 0); /* not captured: it went to the fd */
	assert_string_equal(dd_error_last(), "pwd exited with status 2");
	assert_true(pread(fd, buf, sizeof(buf) - 1, 0) > 0);
	assert_string_equal(buf, "/tmp\noops\n");
	dd_proc_result_release(&r);
	close(fd);
	unlink(tmpl);
	dd_error_clear();
}

static void
a_background_child_holding_the_fds_is_not_waited_for(void **state)
{
	char tmpl[] = "/tmp/dd-proc.XXXXXX";
	int fd = mkstemp(tmpl);
	const char *argv[] = { "/bin/sh", "-c", "sleep 5 & echo started", NULL };
	struct dd_proc p = { .argv = argv, .out_fd = fd, .err_fd = fd };
	struct timespec a, b;

	assert_true(fd >= 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(dd_proc_run(&p, "background", NULL), DD_OK);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec < 3); /* not the 5 s of the background sleep */
	close(fd);
	unlink(tmpl);
}

/* tee: stdout and stderr in their order to the fd and in the result's tail; a background child not waited for. */
static void
tee_copies_both_streams_keeps_the_tail_and_does_not_wait_for_a_background_child(void **state)
{
	char tmpl[] = "/tmp/dd-proc.XXXXXX";
	int fd = mkstemp(tmpl);
	const char *argv[] = { "/bin/sh", "-c", "echo one; echo two >&2; echo three; sleep 5 & exit 4", NULL };
	struct dd_proc p = { .argv = argv, .out_fd = fd, .err_fd = -1, .tee = 1 };
	struct dd_proc_result r;
	struct dd_buf file = DD_BUF_INIT;
	struct timespec a, b;

	assert_true(fd >= 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(dd_proc_run(&p, "tee", &r), DD_ERROR);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec < 3); /* not the 5 s of the background sleep */
	assert_int_equal(r.exit_code, 4);
	assert_string_equal(dd_buf_cstr(&r.err), "one\ntwo\nthree\n");
	assert_int_equal(dd_file_read(&file, tmpl), 0);
	assert_string_equal(dd_buf_cstr(&file), "one\ntwo\nthree\n");
	dd_buf_release(&file);
	dd_proc_result_release(&r);
	close(fd);
	unlink(tmpl);
}

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static struct rlimit saved_nofile;

/* Takes the first output, then makes the next poll() fail (EINVAL: more fds than RLIMIT_NOFILE allows). */
static int
break_poll(void *arg, const void *data, size_t len)
{
	struct rlimit one = { 1, saved_nofile.rlim_max };

	(void)arg, (void)data, (void)len;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &one), 0);
	return 0;
}

static void
a_poll_failure_kills_the_child_and_closes_its_pipes(void **state)
{
	/* the child blocks writing to stderr unless someone reads it (or kills it) */
	const char *argv[] = { "/bin/sh", "-c", "echo started; head -c 1000000 /dev/zero >&2; sleep 30", NULL };
	struct dd_proc p = { .argv = argv, .out_cb = break_poll, .out_fd = -1, .err_fd = -1 };
	struct dd_proc_result r;
	int before = open_fds();

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
	alarm(20); /* without the kill, waitpid() waits for a child that never exits */
	assert_int_equal(dd_proc_run(&p, "stuck", &r), DD_ERROR);
	alarm(0);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
	assert_non_null(strstr(dd_error_last(), "stuck: waiting for a child's output"));
	assert_int_equal(r.signal, 9);
	assert_int_equal(open_fds(), before);
	dd_proc_result_release(&r);
	dd_error_clear();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stdout_goes_to_the_callback_and_status_zero_is_success),
		cmocka_unit_test(exit_status_is_reported_with_the_stderr_line),
		cmocka_unit_test(a_signal_is_named),
		cmocka_unit_test(a_missing_program_is_not_found),
		cmocka_unit_test(environment_is_set_and_removed_never_on_the_command_line),
		cmocka_unit_test(s3_secrets_reach_only_the_users_commands),
		cmocka_unit_test(stderr_kept_is_bounded_to_its_tail),
		cmocka_unit_test(stdout_and_stderr_to_an_fd_and_a_working_directory),
		cmocka_unit_test(a_background_child_holding_the_fds_is_not_waited_for),
		cmocka_unit_test(a_poll_failure_kills_the_child_and_closes_its_pipes),
		cmocka_unit_test(tee_copies_both_streams_keeps_the_tail_and_does_not_wait_for_a_background_child),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
