/*
 * workflow/post-restore.c: the record of the last post_restore run of each
 * profile (workflow.h, "the last post_restore run"), so that `status` can
 * say that a hook's restore left a command failed.
 *
 * <statedir>/post-restore/<profile>, written atomically (util/fs.h) by
 * every completed restore of the profile (success or failure, also with no
 * command configured, and with --no-hooks: "skipped"), replacing the last
 * one, so that it describes the snapshot restored last. Lines "key value",
 * in this order:
 *
 *   dnadata-post-restore 1
 *   snapshot <64 hex>          the snapshot restored before the commands ran
 *   when <unix seconds>        when the run ended
 *   total <n>                  commands configured (profile's, then [hooks]')
 *   failed <k>                 0: all succeeded; else the 1-based failed one
 *   exit <status>              its exit status; -1: killed or not started
 *   command <text>             the failed command ('\' and newline escaped
 *                              as \\ and \n); only when failed > 0
 *   skipped 1                  the commands were not run (restore
 *                              --no-hooks); only then, with failed 0 (a
 *                              record without it reads as before)
 *
 * The file is read as hostile: at most 64 KiB, every key known and once,
 * numbers in range, the snapshot id hex, anything else refused with
 * "path:line: what".
 */
#include "workflow/internal.h"
#include "workflow/workflow.h"
#include "config/config.h"
#include "git/repo.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RECORD_MAGIC "dnadata-post-restore 1"
#define RECORD_MAX (64 * 1024)

static char *
record_path(struct dd_repo *repo, const char *profile)
{
	char *dir, *path;

	if (dd_profile_name_check(profile) < 0)
		return NULL;
	dir = dd_path_join(repo->statedir, "post-restore");
	path = dd_path_join(dir, profile);
	free(dir);
	return path;
}

static void
put_escaped(struct dd_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			dd_buf_puts(b, "\\\\");
		else if (*s == '\n')
			dd_buf_puts(b, "\\n");
		else
			dd_buf_putc(b, *s);
	}
}

void
dd_workflow_post_restore_format(struct dd_buf *b, const struct dd_post_restore_last *r)
{
	dd_buf_printf(b, "%s\nsnapshot %s\nwhen %lld\ntotal %d\nfailed %d\nexit %d\n", RECORD_MAGIC,
		      r->snapshot ? r->snapshot : "", r->when, r->total, r->failed, r->failed ? r->exit_status : 0);
	if (r->failed && r->command) {
		dd_buf_puts(b, "command ");
		put_escaped(b, r->command);
		dd_buf_putc(b, '\n');
	}
	if (r->skipped && !r->failed)
		dd_buf_puts(b, "skipped 1\n");
}

int
dd_workflow_post_restore_record(struct dd_repo *repo, const char *profile, const struct dd_post_restore_last *r)
{
	char *path = record_path(repo, profile), *dir = NULL;
	struct dd_buf b = DD_BUF_INIT;
	int rc = -1;

	if (!path)
		return -1;
	dir = dd_path_dirname(path);
	if (dd_mkdir_p(dir, 0700) < 0)
		goto out;
	dd_workflow_post_restore_format(&b, r);
	rc = dd_file_write_atomic(path, b.ptr, b.len, 0600, 0);
out:
	if (rc < 0)
		dd_error_wrap("recording the post_restore run of profile %s", profile);
	dd_buf_release(&b);
	free(dir);
	free(path);
	return rc;
}

/* ---- reading (hostile input) ---- */

static int
parse_int(const char *v, long long lo, long long hi, long long *out)
{
	char *end;
	long long n;

	if (!*v || (*v != '-' && (*v < '0' || *v > '9')))
		return -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || *end || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

static int
is_snapshot_id(const char *v)
{
	size_t n = 0;

	for (; v[n]; n++)
		if (!((v[n] >= '0' && v[n] <= '9') || (v[n] >= 'a' && v[n] <= 'f')))
			return 0;
	return n == 64;
}

/* Undo put_escaped(); -1 on a stray '\'. */
static int
unescape(const char *v, char **out)
{
	struct dd_buf b = DD_BUF_INIT;

	for (; *v; v++) {
		if (*v != '\\') {
			dd_buf_putc(&b, *v);
			continue;
		}
		v++;
		if (*v == '\\')
			dd_buf_putc(&b, '\\');
		else if (*v == 'n')
			dd_buf_putc(&b, '\n');
		else {
			dd_buf_release(&b);
			return -1;
		}
	}
	*out = dd_buf_detach(&b, NULL);
	return 0;
}

enum { F_SNAPSHOT, F_WHEN, F_TOTAL, F_FAILED, F_EXIT, F_COMMAND, F_SKIPPED, F_COUNT };
static const char *const fields[F_COUNT] = { "snapshot", "when", "total", "failed", "exit", "command", "skipped" };

/* One "key value" line into *out; `seen` marks the keys met. -1: the line is wrong (static reason in *why). */
static int
parse_line(char *line, struct dd_post_restore_last *out, int *seen, const char **why)
{
	char *sp = strchr(line, ' ');
	long long n;
	int f;

	*why = "expected \"key value\"";
	if (!sp)
		return -1;
	*sp = '\0';
	for (f = 0; f < F_COUNT && strcmp(line, fields[f]); f++)
		;
	*why = f == F_COUNT ? "unknown key" : "repeated key";
	if (f == F_COUNT || seen[f])
		return -1;
	seen[f] = 1;
	const char *v = sp + 1;
	*why = "bad value";
	switch (f) {
	case F_SNAPSHOT:
		if (!is_snapshot_id(v))
			return -1;
		out->snapshot = dd_strdup(v);
		return 0;
	case F_WHEN:
		if (parse_int(v, 0, LLONG_MAX, &n) < 0)
			return -1;
		out->when = n;
		return 0;
	case F_TOTAL:
	case F_FAILED:
		if (parse_int(v, 0, INT_MAX, &n) < 0)
			return -1;
		*(f == F_TOTAL ? &out->total : &out->failed) = (int)n;
		return 0;
	case F_EXIT:
		if (parse_int(v, -1, 255, &n) < 0)
			return -1;
		out->exit_status = (int)n;
		return 0;
	case F_SKIPPED:
		if (strcmp(v, "1"))
			return -1;
		out->skipped = 1;
		return 0;
	default:
		return unescape(v, &out->command);
	}
}

static int
parse_record(const char *path, char *text, size_t len, struct dd_post_restore_last *out)
{
	int seen[F_COUNT] = { 0 };

	memset(out, 0, sizeof(*out));
	const char *why = NULL;
	size_t lineno = 1;
	char *line = text, *nl;

	if (memchr(text, '\0', len))
		return dd_error("%s: not a post_restore record (NUL byte)", path);
	if (strncmp(text, RECORD_MAGIC "\n", sizeof(RECORD_MAGIC)))
		return dd_error("%s:1: not a post_restore record", path);
	line += sizeof(RECORD_MAGIC);
	while (*line) {
		lineno++;
		if (!(nl = strchr(line, '\n')))
			return dd_error("%s:%zu: truncated line", path, lineno);
		*nl = '\0';
		if (parse_line(line, out, seen, &why) < 0)
			return dd_error("%s:%zu: %s", path, lineno, why);
		line = nl + 1;
	}
	for (int f = 0; f < F_COMMAND; f++)
		if (!seen[f])
			return dd_error("%s: no %s line", path, fields[f]);
	if (out->failed > out->total || (out->failed && !out->command) || (!out->failed && out->command))
		return dd_error("%s: failed, total and command disagree", path);
	if (out->skipped && out->failed)
		return dd_error("%s: skipped, yet a command failed", path);
	return 0;
}

int
dd_workflow_post_restore_last(struct dd_repo *repo, const char *profile, struct dd_post_restore_last *out)
{
	char *path = record_path(repo, profile);
	struct dd_buf text = DD_BUF_INIT;
	struct stat sb;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!path)
		return -1;
	if (lstat(path, &sb) < 0) {
		rc = errno == ENOENT ? DD_NOTFOUND : dd_error_errno("cannot read %s", path);
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > RECORD_MAX) {
		dd_error("%s: not a post_restore record (not a regular file of at most 64 KiB)", path);
		goto out;
	}
	if (dd_file_read(&text, path) < 0)
		goto out;
	if (text.len > RECORD_MAX) {
		dd_error("%s: not a post_restore record (larger than 64 KiB)", path);
		goto out;
	}
	rc = parse_record(path, text.ptr ? text.ptr : (char *)"", text.len, out);
out:
	if (rc == -1)
		dd_workflow_post_restore_last_release(out);
	dd_buf_release(&text);
	free(path);
	return rc;
}

int
dd_workflow_post_restore_parse(const char *text, size_t len, const char *display, struct dd_post_restore_last *out)
{
	char *copy = dd_malloc(len + 1);
	int rc;

	memcpy(copy, text, len);
	copy[len] = '\0';
	rc = len > RECORD_MAX ? dd_error("%s: not a post_restore record (larger than 64 KiB)", display)
			      : parse_record(display, copy, len, out);
	if (rc < 0)
		dd_workflow_post_restore_last_release(out);
	free(copy);
	return rc;
}

void
dd_workflow_post_restore_last_release(struct dd_post_restore_last *r)
{
	if (!r)
		return;
	free(r->snapshot);
	free(r->command);
	memset(r, 0, sizeof(*r));
}
