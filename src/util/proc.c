/*
 * util/proc.c: run a child program (see proc.h).
 *
 * One loop polls the child's stdout pipe (when a callback takes it) and its
 * stderr pipe (when it is captured) until both close, then reaps the child. Nothing here uses
 * fork(): posix_spawn is safe in a process whose other threads hold locks.
 */
#include "util/proc.h"
#include "util/buf.h"
#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Does environment entry `e` name the variable of `spec` ("NAME=value" or "NAME")? */
static int
same_name(const char *e, const char *spec)
{
	size_t n = strcspn(spec, "=");

	return !strncmp(e, spec, n) && e[n] == '=';
}

/*
 * S3 secrets our own children (pg_dump, psql, pg_restore) never need: exec'd, a child is dumpable again, so
 * any process of the user could read them from its /proc/PID/environ, which main() closes for this one.
 */
static const char *const s3_secrets[] = { "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN" };

static int
s3_secret(const char *e)
{
	for (size_t i = 0; i < sizeof(s3_secrets) / sizeof(*s3_secrets); i++)
		if (same_name(e, s3_secrets[i]))
			return 1;
	return 0;
}

/* environ with the caller's changes (and without S3 secrets unless keep_secrets); the strings are borrowed. */
static char **
child_env(const char *const *changes, int keep_secrets)
{
	size_t n = 0, k = 0, nc = 0;
	char **env;

	while (environ[n])
		n++;
	while (changes && changes[nc])
		nc++;
	env = dd_calloc(n + nc + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		int drop = !keep_secrets && s3_secret(environ[i]);
		for (size_t j = 0; j < nc && !drop; j++)
			drop = same_name(environ[i], changes[j]);
		if (!drop)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < nc; j++)
		if (strchr(changes[j], '='))
			env[k++] = (char *)changes[j];
	env[k] = NULL;
	return env;
}

/* Write all of it to fd, as far as it goes: the user's terminal going away does not stop the child. */
static void
write_quiet(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
	}
}

static void
keep_tail(struct dd_buf *err, const char *data, size_t len)
{
	dd_buf_put(err, data, len);
	if (err->len > 2 * DD_PROC_ERR_KEEP) {
		size_t cut = err->len - DD_PROC_ERR_KEEP;
		memmove(err->ptr, err->ptr + cut, DD_PROC_ERR_KEEP);
		dd_buf_truncate(err, DD_PROC_ERR_KEEP);
	}
}

static int
start(const struct dd_proc *p, pid_t *pid, int *outp, int *errp)
{
	int opipe[2] = { -1, -1 }, epipe[2] = { -1, -1 }, e, rc = DD_ERROR;
	posix_spawn_file_actions_t fa;
	char **env = child_env(p->env, p->user_command);

	if (((p->out_cb || p->tee) && pipe2(opipe, O_CLOEXEC) < 0) ||
	    (!p->tee && p->err_fd < 0 && pipe2(epipe, O_CLOEXEC) < 0)) {
		dd_error_errno("cannot create a pipe");
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	if (p->in_fd > 0)
		posix_spawn_file_actions_adddup2(&fa, p->in_fd, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (p->out_cb || p->tee)
		posix_spawn_file_actions_adddup2(&fa, opipe[1], 1);
	else if (p->out_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, p->out_fd, 1);
	else
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (p->tee)
		posix_spawn_file_actions_adddup2(&fa, opipe[1], 2);
	else
		posix_spawn_file_actions_adddup2(&fa, p->err_fd < 0 ? epipe[1] : p->err_fd, 2);
	if (p->dir)
		posix_spawn_file_actions_addchdir_np(&fa, p->dir);
	e = posix_spawn(pid, p->argv[0], &fa, NULL, (char *const *)p->argv, env);
	posix_spawn_file_actions_destroy(&fa);
	if (e) {
		errno = e;
		if (e == ENOENT)
			dd_error("cannot run %s: not found", p->argv[0]);
		else if (p->dir && access(p->dir, X_OK) < 0)
			dd_error_errno("cannot run %s in %s", p->argv[0], p->dir);
		else
			dd_error_errno("cannot run %s", p->argv[0]);
		goto out;
	}
	*outp = opipe[0], opipe[0] = -1;
	*errp = epipe[0], epipe[0] = -1;
	rc = DD_OK;
out:
	for (int i = 0; i < 2; i++) {
		if (opipe[i] >= 0)
			close(opipe[i]);
		if (epipe[i] >= 0)
			close(epipe[i]);
	}
	free(env);
	return rc;
}

/*
 * Read both pipes until they close; a failing callback stops stdout (its
 * error is kept). When poll itself fails the child is killed and both pipes
 * closed: a child left writing to a pipe nobody reads would never exit.
 */
static int
pump(const struct dd_proc *p, pid_t pid, int outfd, int errfd, struct dd_buf *err)
{
	char buf[65536];
	int fds[2] = { outfd, errfd }, rc = DD_OK;

	while (fds[0] >= 0 || fds[1] >= 0) {
		struct pollfd pf[2];
		int which[2], np = 0;
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0) {
				pf[np].fd = fds[i], pf[np].events = POLLIN, pf[np].revents = 0;
				which[np++] = i;
			}
		if (poll(pf, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = dd_error_errno("waiting for a child's output");
			kill(pid, SIGKILL);
			for (int i = 0; i < 2; i++)
				if (fds[i] >= 0)
					close(fds[i]);
			break;
		}
		for (int k = 0; k < np; k++) {
			int i = which[k];
			if (!pf[k].revents)
				continue;
			ssize_t n = read(fds[i], buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n > 0 && i == 1) {
				keep_tail(err, buf, (size_t)n);
				continue;
			}
			if (n > 0 && rc == DD_OK && p->out_cb(p->out_arg, buf, (size_t)n) == 0)
				continue;
			if (n > 0)
				rc = DD_ERROR; /* the callback failed: stop reading stdout */
			close(fds[i]);
			fds[i] = -1;
		}
	}
	return rc;
}

/*
 * The tee mode: copy the shared pipe to p->out_fd and keep its tail until
 * it closes, or until the child has exited and the pipe holds nothing more
 * (a background process of the child may keep it open: not waited for).
 * The pipe is checked every 100 ms for the child's exit, only while the
 * child runs. *reaped: the child was reaped, its status in *status.
 */
static int
pump_tee(const struct dd_proc *p, pid_t pid, int fd, struct dd_buf *err, int *status, int *reaped)
{
	char buf[65536];
	int rc = DD_OK;

	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN, .revents = 0 };
		int r;
		if (!*reaped && waitpid(pid, status, WNOHANG) == pid)
			*reaped = 1;
		r = poll(&pf, 1, *reaped ? 0 : 100);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = dd_error_errno("waiting for a child's output");
			if (!*reaped)
				kill(pid, SIGKILL);
			break;
		}
		if (r == 0) {
			if (*reaped)
				break; /* exited, and nothing more to read now */
			continue;
		}
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		keep_tail(err, buf, (size_t)n);
		if (p->out_fd >= 0)
			write_quiet(p->out_fd, buf, (size_t)n);
	}
	close(fd);
	return rc;
}

void
dd_proc_describe(const struct dd_proc_result *r, char *buf, size_t len)
{
	if (r->signal)
		snprintf(buf, len, "was killed by signal %d", r->signal);
	else
		snprintf(buf, len, "exited with status %d", r->exit_code);
}

/* At most this many bytes of a child's line go into a message. */
#define LINE_MAX_SHOWN 300

static char *
shown(const char *s, size_t len)
{
	if (len <= LINE_MAX_SHOWN)
		return dd_strndup(s, len);
	return dd_asprintf("%.*s...", LINE_MAX_SHOWN, s);
}

char *
dd_proc_err_line(const struct dd_buf *err)
{
	const char *s = dd_buf_cstr(err);
	const char *e = strstr(s, "error: ");
	size_t end = strlen(s), start;

	if (e) {
		const char *nl = strchr(e, '\n');
		return shown(e + 7, nl ? (size_t)(nl - e - 7) : strlen(e + 7));
	}
	while (end > 0 && (s[end - 1] == '\n' || s[end - 1] == ' ' || s[end - 1] == '\r'))
		end--;
	start = end;
	while (start > 0 && s[start - 1] != '\n')
		start--;
	return shown(s + start, end - start);
}

int
dd_proc_run(const struct dd_proc *p, const char *name, struct dd_proc_result *r)
{
	struct dd_proc_result local;
	int outfd = -1, errfd = -1, status = 0, reaped = 0, rc;
	pid_t pid;

	if (!r)
		r = &local;
	memset(r, 0, sizeof(*r));
	r->exit_code = -1;
	if (start(p, &pid, &outfd, &errfd) < 0) {
		if (r == &local)
			dd_proc_result_release(r);
		return dd_error_wrap("%s", name);
	}
	if (p->tee)
		rc = pump_tee(p, pid, outfd, &r->err, &status, &reaped);
	else
		rc = pump(p, pid, outfd, errfd, &r->err);
	while (!reaped && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status))
		r->exit_code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		r->signal = WTERMSIG(status);
	if (rc < 0) {
		dd_error_wrap("%s", name);
	} else if (r->exit_code != 0) {
		char how[64], *why = dd_proc_err_line(&r->err);
		dd_proc_describe(r, how, sizeof(how));
		if (r->exit_code == 127 && !*why)
			dd_error("%s %s (command not found?)", name, how);
		else
			dd_error("%s %s%s%s", name, how, *why ? ": " : "", why);
		free(why);
		rc = DD_ERROR;
	}
	if (r == &local)
		dd_proc_result_release(r);
	return rc;
}

void
dd_proc_result_release(struct dd_proc_result *r)
{
	dd_buf_release(&r->err);
}

long long
dd_proc_start_time(long pid)
{
	char path[64], buf[1024];
	const char *p;
	long long start = -1;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) state ...": comm may hold spaces and parentheses, so count from the last ')' */
	if (!(p = strrchr(buf, ')')))
		return -1;
	/* p is at the space before field 3; each step moves to the next field */
	for (int field = 3; field <= 22 && p; field++)
		if ((p = strchr(p, ' ')))
			p++;
	if (!p || sscanf(p, "%lld", &start) != 1)
		return -1;
	return start;
}

/* Is process `pid` a zombie (dead, not yet waited for)? */
static int
zombie(long pid)
{
	char path[64], buf[512];
	const char *p;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (!(f = fopen(path, "r")))
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) state ...": comm may hold spaces and parentheses */
	return (p = strrchr(buf, ')')) && p[1] == ' ' && p[2] == 'Z';
}

int
dd_proc_alive(long pid, long long started)
{
	long long now;

	if (pid <= 0)
		return 0;
	if (pid == (long)getpid())
		return 1;
	if (kill((pid_t)pid, 0) < 0 && errno != EPERM)
		return 0;
	/* killed, but its parent has not waited for it yet (a detached job's is init, which may be slow to) */
	if (zombie(pid))
		return 0;
	if (started < 0 || (now = dd_proc_start_time(pid)) < 0)
		return 1; /* the pid is in use: assume it is still the writer */
	return now == started;
}

int
dd_failpoint_is(const char *name)
{
	const char *fp = getenv("DNADATA_FAILPOINT");

	return fp && !strcmp(fp, name);
}

void
dd_failpoint(const char *name)
{
	if (dd_failpoint_is(name))
		raise(SIGSTOP);
}
