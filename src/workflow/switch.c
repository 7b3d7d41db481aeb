/*
 * workflow/switch.c: the git side of switching (pg/switch.c is the
 * database side): which branch the working database is left on, which
 * snapshots are likely needed next, and the detached background job that
 * prepares warm spares of them.
 *
 * Branches come from HEAD's reflog: `git checkout` and `git switch` write
 * "checkout: moving from X to Y". The branch left is X of the newest such
 * entry when Y is the branch HEAD is on now; otherwise (a restore run
 * later, a detached HEAD) the branch the working database was restored
 * for, as recorded. The likely next snapshots: the one just left, then the
 * ones the profile's ref names on the local branches checked out most
 * recently (newest first), without the one the working database holds.
 *
 * The job (`git dnadata spare`, hidden) runs detached: its own session
 * (setsid), nice 19 and I/O priority "idle" (ioprio_set), output appended
 * to <statedir>/spare.log. Its priority only reaches our process: the
 * copying is done by the PostgreSQL server, which clones at its own
 * priority (the clone is one CREATE DATABASE; the job only waits on it).
 */
#include "workflow/workflow.h"
#include "workflow/gc.h"
#include "config/config.h"
#include "git/ref.h"
#include "git/repo.h"
#include "pg/pg.h"
#include "pg/state.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* How many reflog entries are read looking for recent branches. */
#define REFLOG_SCAN 200
/* At most this many spares are wanted (the most [database] spares allows). */
#define MAX_WANTED 16

char *
dd_workflow_current_branch(struct dd_repo *repo)
{
	git_reference *head = NULL;
	char *name = NULL;

	if (git_repository_head(&head, repo->git) == 0 && git_reference_is_branch(head))
		name = dd_strdup(git_reference_shorthand(head));
	git_reference_free(head);
	return name;
}

/* "checkout: moving from X to Y": X and Y (caller frees), or -1 for another kind of entry. */
static int
parse_checkout(const char *msg, char **from, char **to)
{
	static const char prefix[] = "checkout: moving from ";
	const char *p, *sep;

	if (!msg || strncmp(msg, prefix, sizeof(prefix) - 1))
		return -1;
	p = msg + sizeof(prefix) - 1;
	if (!(sep = strstr(p, " to ")))
		return -1;
	*from = dd_strndup(p, (size_t)(sep - p));
	*to = dd_strdup(sep + 4);
	(*to)[strcspn(*to, "\n")] = '\0';
	return 0;
}

char *
dd_workflow_branch_left(struct dd_repo *repo, const char *current)
{
	git_reflog *log = NULL;
	char *left = NULL;

	if (!current || git_reflog_read(&log, repo->git, "HEAD") < 0)
		return NULL;
	for (size_t i = 0; i < git_reflog_entrycount(log) && i < REFLOG_SCAN; i++) {
		char *from = NULL, *to = NULL;
		if (parse_checkout(git_reflog_entry_message(git_reflog_entry_byindex(log, i)), &from, &to) < 0)
			continue;
		if (!strcmp(to, current) && strcmp(from, current))
			left = from, from = NULL;
		free(from);
		free(to);
		break; /* only the newest checkout counts */
	}
	git_reflog_free(log);
	return left;
}

/* Local branches checked out most recently (newest first, each once, without `current`), at most `max`. */
static size_t
recent_branches(struct dd_repo *repo, const char *current, char **out, size_t max)
{
	git_reflog *log = NULL;
	size_t n = 0;

	if (git_reflog_read(&log, repo->git, "HEAD") < 0) {
		dd_error_clear();
		return 0;
	}
	for (size_t i = 0; i < git_reflog_entrycount(log) && i < REFLOG_SCAN && n < max; i++) {
		char *names[2] = { NULL, NULL };
		if (parse_checkout(git_reflog_entry_message(git_reflog_entry_byindex(log, i)), &names[1], &names[0]) < 0)
			continue;
		for (int k = 0; k < 2; k++) {
			git_reference *br = NULL;
			int seen = current && !strcmp(names[k], current);
			for (size_t j = 0; j < n && !seen; j++)
				seen = !strcmp(out[j], names[k]);
			if (!seen && n < max && git_branch_lookup(&br, repo->git, names[k], GIT_BRANCH_LOCAL) == 0)
				out[n++] = names[k], names[k] = NULL;
			git_reference_free(br);
			free(names[k]);
		}
	}
	git_reflog_free(log);
	dd_error_clear();
	return n;
}

/* The snapshot p's ref names on branch `branch`, or NULL. */
static char *
snapshot_on(struct dd_repo *repo, const struct dd_profile *p, const char *branch)
{
	char *rel = dd_ref_path(p->name), *rev = dd_asprintf("refs/heads/%s", branch), *id = NULL;
	struct dd_buf text = DD_BUF_INIT;
	struct dd_ref *ref = NULL;

	if (dd_repo_read_at(&text, repo, rev, rel) == 0 &&
	    dd_ref_parse(&ref, text.ptr ? text.ptr : "", text.len, rel) == 0)
		id = dd_strdup(ref->snapshot);
	dd_error_clear();
	dd_ref_free(ref);
	dd_buf_release(&text);
	free(rev);
	free(rel);
	return id;
}

static int
add_unique(char **v, size_t *n, size_t max, char *id, const char *except)
{
	if (!id)
		return 0;
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(v[i], id)) {
			free(id);
			return 0;
		}
	if (*n >= max || (except && !strcmp(id, except))) {
		free(id);
		return 0;
	}
	v[(*n)++] = id;
	return 1;
}

size_t
dd_workflow_spares_wanted(struct dd_repo *repo, const struct dd_profile *p, const char *left, const char *current,
			  char **out, size_t max)
{
	char *branch = dd_workflow_current_branch(repo);
	char *branches[16];
	size_t n = 0, nb;

	if (left)
		add_unique(out, &n, max, dd_strdup(left), current);
	nb = recent_branches(repo, branch, branches, 16);
	for (size_t i = 0; i < nb; i++) {
		add_unique(out, &n, max, snapshot_on(repo, p, branches[i]), current);
		free(branches[i]);
	}
	free(branch);
	return n;
}

/* IOPRIO_CLASS_IDLE for this process (ioprio_set has no libc wrapper). Best effort. */
static void
io_idle(void)
{
#ifdef SYS_ioprio_set
	enum { IOPRIO_WHO_PROCESS = 1, IOPRIO_CLASS_IDLE = 3, IOPRIO_CLASS_SHIFT = 13 };
	syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT);
#endif
}

/* Would the job have work (from the records alone)? A wanted snapshot with a template and no spare, or a spare not wanted. */
static int
spares_to_do(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, const char *left)
{
	const char *conninfo = dd_config_database(cfg, p);
	struct dd_pg_state state;
	struct dd_pg_copy *v = NULL;
	char *wanted[MAX_WANTED];
	size_t n = 0, nv = 0;
	int limit = dd_config_spares(cfg), todo = 0;

	if (limit > MAX_WANTED)
		limit = MAX_WANTED;
	if (dd_pg_state_read(&state, repo->statedir, conninfo) < 0 ||
	    dd_pg_copies_list(&v, &nv, repo->statedir, conninfo, 0) < 0) {
		dd_error_clear();
		dd_pg_state_release(&state);
		return 0;
	}
	n = dd_workflow_spares_wanted(repo, p, left, state.snapshot, wanted, (size_t)limit);
	for (size_t i = 0; i < n && !todo; i++) {
		int tmpl = 0, spare = 0;
		for (size_t k = 0; k < nv; k++) {
			if (strcmp(v[k].snapshot, wanted[i]))
				continue;
			tmpl |= v[k].kind == DD_PG_COPY_TEMPLATE;
			spare |= v[k].kind == DD_PG_COPY_SPARE;
		}
		todo = tmpl && !spare;
	}
	for (size_t k = 0; k < nv && !todo; k++) {
		int w = 0;
		for (size_t i = 0; i < n; i++)
			w |= !strcmp(v[k].snapshot, wanted[i]);
		todo = v[k].kind == DD_PG_COPY_SPARE && !w;
	}
	for (size_t i = 0; i < n; i++)
		free(wanted[i]);
	dd_pg_copies_free(v, nv);
	dd_pg_state_release(&state);
	return todo;
}

int
dd_workflow_spawn_spares(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p,
			 const char *left)
{
	char *log = NULL, exe[4096];
	ssize_t len;
	pid_t pid;

	int spares = dd_config_spares(cfg);
	const char *env = getenv("DNADATA_SPARES");

	/* DNADATA_SPARES=0 (the test suite): no job at all, as before the job enforced the budgets */
	if (spares == 0 && env && *env)
		return 0;
	/* work for it: spares to make or drop, or budgets that may be exceeded (the job measures: gc.h) */
	if (!(spares > 0 && spares_to_do(repo, cfg, p, left)) && !dd_workflow_gc_maybe_due(repo, cfg))
		return 0;
	if ((len = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) < 0)
		return dd_error_errno("cannot find our own executable");
	exe[len] = '\0';
	log = dd_path_join(repo->statedir, "spare.log");
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		free(log);
		return dd_error_errno("cannot start the spare job");
	}
	if (pid == 0) {
		/* the child forks again so the job is nobody's child (no zombie, no wait) */
		if (fork() != 0)
			_exit(0);
		setsid();
		if (nice(19) < 0) {
			/* already as low as allowed: fine */
		}
		io_idle();
		struct stat lst;
		/* appended to, and started afresh once it passes 1 MiB */
		int trunc = stat(log, &lst) == 0 && lst.st_size > (1 << 20) ? O_TRUNC : 0;
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int out = open(log, O_WRONLY | O_CREAT | O_APPEND | trunc | O_CLOEXEC, 0600);
		if (in >= 0)
			dup2(in, STDIN_FILENO);
		if (out >= 0) {
			dup2(out, STDOUT_FILENO);
			dup2(out, STDERR_FILENO);
		}
		if (chdir(repo->workdir) < 0)
			_exit(1);
		const char *argv[] = { exe, "spare", "--left", left && *left ? left : "", p->name, NULL };
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	free(log);
	return 0;
}

int
dd_workflow_spares(struct dd_repo *repo, const struct dd_config *cfg, const struct dd_profile *p, const char *left,
		   int limit)
{
	const char *conninfo = dd_config_database(cfg, p);
	struct dd_pg_state state;
	char *wanted[MAX_WANTED];
	size_t n;
	int rc;

	if (limit < 0)
		limit = dd_config_spares(cfg);
	if (limit > MAX_WANTED)
		limit = MAX_WANTED;
	memset(&state, 0, sizeof(state));
	if (dd_pg_state_read(&state, repo->statedir, conninfo) < 0)
		dd_error_clear();
	n = dd_workflow_spares_wanted(repo, p, left && *left ? left : NULL, state.snapshot, wanted, (size_t)limit);
	dd_pg_state_release(&state);
	for (size_t i = 0; i < n; i++)
		dd_debug("wanted: %.12s", wanted[i]);
	rc = dd_pg_spares_make(conninfo, repo->statedir, (const char *const *)wanted, n, limit);
	for (size_t i = 0; i < n; i++)
		free(wanted[i]);
	return rc;
}
