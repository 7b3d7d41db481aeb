/*
 * util/proc.h: run a child program and wait for it (pg_dump, psql, hook
 * commands), the one place that spawns processes.
 *
 * The child is started with posix_spawn (safe from a threaded process):
 * argv[0] is a path, never looked up on PATH. Its environment is ours with
 * the caller's "NAME=value" entries put in (replacing ours) and "NAME"
 * entries taken out, so a password travels in the environment, never on a
 * command line; S3 secrets are taken out too unless it is the user's own
 * command (user_command). stdin is /dev/null or a given fd. stdout goes to a callback, an fd, or
 * /dev/null; stderr either goes straight to an fd (a hook's output, for the
 * user to see) or is read through a pipe and its last DD_PROC_ERR_KEEP
 * bytes kept for the error message. Whatever goes to an fd goes there
 * directly, not through us: a child that leaves a background process
 * holding it open is not waited for beyond its own exit.
 */
#ifndef DD_UTIL_PROC_H
#define DD_UTIL_PROC_H

#include <stddef.h>

#include "util/buf.h"

#define DD_PROC_ERR_KEEP (64 * 1024)

struct dd_proc {
	const char *const *argv;  /* argv[0]: the program's path */
	const char *const *env;   /* "NAME=value" to set, "NAME" to remove; NULL-terminated, or NULL */
	const char *dir;          /* the child's working directory, or NULL for ours */
	int in_fd;                /* stdin: this fd when > 0; 0: /dev/null */
	/* stdout: to out_cb when set, else to out_fd (-1: /dev/null) */
	int (*out_cb)(void *arg, const void *data, size_t len);  /* < 0 stops reading (the child gets EPIPE) */
	void *out_arg;
	int out_fd;
	int err_fd;               /* stderr: straight to this fd; -1: captured (the tail kept in the result) */
	/*
	 * tee (a hook's output): stdout and stderr share one pipe, copied to
	 * out_fd as they come and their tail kept in the result's `err` (out_cb
	 * and err_fd are then ignored). Reading stops once the child has exited
	 * and the pipe holds nothing more: a background process it left holding
	 * the pipe is not waited for (what it writes later is lost).
	 */
	int tee;
	/*
	 * A command of the user's (post_restore): it gets our whole environment, as any command the user runs
	 * does. Otherwise (pg_dump, psql, pg_restore) the S3 secrets (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)
	 * are taken out: a child is dumpable, so its environment is readable by the user's other processes.
	 */
	int user_command;
};

struct dd_proc_result {
	int exit_code;            /* 0..255, or -1 when it did not exit normally */
	int signal;               /* the signal that ended it, or 0 */
	struct dd_buf err;        /* the tail of its captured stderr (at most 2 * DD_PROC_ERR_KEEP bytes) */
};

/*
 * Run p and wait for it (waitpid retried on EINTR). Returns DD_OK when it
 * exited with status 0. Otherwise DD_ERROR with the reason recorded,
 * starting with `name` ("pg_dump (pre-data)"): "… : not found (PATH)",
 * "… was killed by signal N", "… exited with status N: <last stderr line>".
 * `r` (may be NULL) gets the details either way; release it.
 */
int dd_proc_run(const struct dd_proc *p, const char *name, struct dd_proc_result *r);
void dd_proc_result_release(struct dd_proc_result *r);

/* "exited with status N" / "was killed by signal N" for a result. */
void dd_proc_describe(const struct dd_proc_result *r, char *buf, size_t len);

/* The most telling line of a stderr text: its first "error: …" line, else its last line. Caller frees. */
char *dd_proc_err_line(const struct dd_buf *err);

/*
 * When process `pid` started (clock ticks since boot: field 22 of
 * /proc/<pid>/stat), or -1 when there is no such process or no /proc. Two
 * processes that had the same pid differ in it, so a record of (pid, start
 * time) names one process even after its pid is reused.
 */
long long dd_proc_start_time(long pid);
/*
 * Does process `pid`, started at `started` (dd_proc_start_time(); -1:
 * unknown, judged by the pid alone), still run? A zombie does not; a pid
 * now held by a process started at another time (reused) does not.
 */
int dd_proc_alive(long pid, long long started);

/*
 * Test stop points. Tests stop the program at a named point to kill it or
 * race it there: with DNADATA_FAILPOINT=<name>, dd_failpoint(name) stops the
 * process (SIGSTOP) when it gets there; dd_failpoint_is(name) only says
 * whether the variable names that point. Nothing else reads the variable.
 */
int dd_failpoint_is(const char *name);
void dd_failpoint(const char *name);

#endif
