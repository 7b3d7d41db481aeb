/*
 * git/hooks.c: install, uninstall and inspect git-dnadata's git hooks (see
 * hooks.h for what is installed where).
 *
 * Install first looks at every hook and refuses, changing nothing, if one
 * cannot be handled (a symbolic link, a file or folder we may not replace,
 * a .before-dnadata name already taken by something that is not the hook
 * we would keep there). Then, for each hook: the user's file is hard-linked
 * to <name>.before-dnadata (so it is kept byte for byte, mode included, and
 * the hook name never stops naming a complete file), and ours is written
 * atomically over the hook name, mode 0755. Ours already there is
 * rewritten only when it differs. A user's hook that already runs `git
 * dnadata hook <name>` (a hook manager's file, DD_HOOK_CALLS_US) is left
 * alone: chaining to it would run our part twice (pre-push: two checks and
 * uploads); one kept as .before-dnadata behind ours by an older version is
 * put back under its own name. Uninstall renames the user's file back
 * over ours (atomic), or removes ours when there is none.
 *
 * libgit2's git_repository_item_path(GIT_REPOSITORY_ITEM_HOOKS) ignores
 * core.hooksPath (it always names <common git dir>/hooks/), so the setting
 * is read here, as git reads it: `~` expanded, a relative path taken from
 * the work tree's root.
 */
#include "git/hooks.h"
#include "git/repo.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
dd_hooks_dir(char **out, const struct dd_repo *repo)
{
	git_config *cfg = NULL;
	git_buf path = { 0 };
	int err;

	*out = NULL;
	if (git_repository_config_snapshot(&cfg, repo->git) < 0)
		return dd_error_git("cannot read the git config");
	err = git_config_get_path(&path, cfg, "core.hooksPath");
	if (err == 0 && path.ptr && *path.ptr)
		*out = path.ptr[0] == '/' ? dd_strdup(path.ptr) : dd_path_join(repo->workdir, path.ptr);
	else if (err == 0 || err == GIT_ENOTFOUND)
		*out = dd_path_join(git_repository_commondir(repo->git), "hooks");
	else
		dd_error_git("cannot read core.hooksPath");
	git_buf_dispose(&path);
	git_config_free(cfg);
	if (*out) {
		size_t n = strlen(*out);
		while (n > 1 && (*out)[n - 1] == '/')
			(*out)[--n] = '\0';
	}
	return *out ? 0 : -1;
}

/* What the regular file at `path`, hook `h`, is: ours (current or not), one calling ours, or someone else's. */
static enum dd_hook_state
classify(const char *path, const struct dd_hook_script *h)
{
	struct dd_buf text = DD_BUF_INIT;
	enum dd_hook_state s = DD_HOOK_FOREIGN;
	char *nl, *call1, *call2;

	if (dd_file_read(&text, path) < 0) {
		dd_error_clear();
		return DD_HOOK_FOREIGN;
	}
	nl = memchr(text.ptr ? text.ptr : "", '\n', text.len);
	call1 = dd_asprintf("git dnadata hook %s", h->name);
	call2 = dd_asprintf("git-dnadata hook %s", h->name);
	if (nl && !strncmp(nl + 1, DD_HOOK_MARKER, strlen(DD_HOOK_MARKER)))
		s = text.len == strlen(h->text) && !memcmp(text.ptr, h->text, text.len) ? DD_HOOK_OURS
											: DD_HOOK_OUTDATED;
	else if (text.ptr && (strstr(text.ptr, call1) || strstr(text.ptr, call2)))
		s = DD_HOOK_CALLS_US;
	free(call1);
	free(call2);
	dd_buf_release(&text);
	return s;
}

/* lstat `path`: 1 exists (st filled), 0 missing, -1 error. */
static int
look(const char *path, struct stat *st)
{
	if (lstat(path, st) == 0)
		return 1;
	if (errno == ENOENT || errno == ENOTDIR)
		return 0;
	return dd_error_errno("cannot read %s", path);
}

int
dd_hooks_state(enum dd_hook_state *states, const struct dd_repo *repo)
{
	char *dir;
	int rc = 0;

	if (dd_hooks_dir(&dir, repo) < 0)
		return -1;
	for (size_t i = 0; dd_hook_scripts[i].name; i++) {
		char *path = dd_path_join(dir, dd_hook_scripts[i].name);
		struct stat st;
		int r = look(path, &st);
		if (r < 0)
			rc = -1;
		else if (r == 0)
			states[i] = DD_HOOK_MISSING;
		else if (S_ISLNK(st.st_mode) || !S_ISREG(st.st_mode))
			states[i] = DD_HOOK_FOREIGN;
		else
			states[i] = classify(path, &dd_hook_scripts[i]);
		free(path);
	}
	free(dir);
	return rc;
}

/* Why the file at `path` cannot be replaced by ours (error recorded), or 0 when it can. */
static int
check_replaceable(const struct dd_repo *repo, const char *path, const char *name)
{
	struct stat st;
	char target[4096];
	ssize_t n;
	int r = look(path, &st);

	if (r <= 0)
		return r;
	if (S_ISLNK(st.st_mode)) {
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		dd_error("the %s hook %s is a symbolic link (to %s): left as it is, nothing was installed",
			 name, dd_repo_display_path(repo, path), target);
		dd_hint("have it run `git dnadata hook %s \"$@\"` (README, \"Git hooks\")", name);
		return -1;
	}
	if (!S_ISREG(st.st_mode))
		return dd_error("the %s hook %s is not a regular file: left as it is, nothing was installed", name,
				dd_repo_display_path(repo, path));
	if (access(path, W_OK) < 0) {
		dd_error("the %s hook %s is not writable: left as it is, nothing was installed", name,
			 dd_repo_display_path(repo, path));
		dd_hint("make it writable, or have it run `git dnadata hook %s \"$@\"` (README, \"Git hooks\")", name);
		return -1;
	}
	return 0;
}

/* Can hook `h` in `dir` be installed? 0, or -1 with the one-line reason. */
static int
plan_install(const struct dd_repo *repo, const char *dir, const struct dd_hook_script *h)
{
	char *path = dd_path_join(dir, h->name);
	char *keep = dd_asprintf("%s%s", path, DD_HOOK_USER_SUFFIX);
	struct stat st;
	enum dd_hook_state s = DD_HOOK_MISSING;
	int rc = -1, r;

	r = look(path, &st);
	if (r < 0)
		goto out;
	if (r > 0 && S_ISREG(st.st_mode) && classify(path, h) == DD_HOOK_CALLS_US) {
		rc = 0; /* left as it is: it calls us itself */
		goto out;
	}
	if (check_replaceable(repo, path, h->name) < 0)
		goto out;
	if (r > 0)
		s = classify(path, h);
	if (s == DD_HOOK_FOREIGN && (r = look(keep, &st)) != 0) {
		if (r > 0)
			dd_error("cannot keep the %s hook %s: %s exists already; nothing was installed", h->name,
				 dd_repo_display_path(repo, path), dd_repo_display_path(repo, keep));
		if (r > 0)
			dd_hint("merge the two into one file, then run `git dnadata install-hooks` again");
		goto out;
	}
	rc = 0;
out:
	free(path);
	free(keep);
	return rc;
}

static int
install_one(const struct dd_repo *repo, const char *dir, const struct dd_hook_script *h)
{
	char *path = dd_path_join(dir, h->name);
	char *keep = dd_asprintf("%s%s", path, DD_HOOK_USER_SUFFIX);
	const char *shown = dd_repo_display_path(repo, path);
	struct stat st;
	enum dd_hook_state s = DD_HOOK_MISSING;
	int rc = -1;

	if (look(path, &st) > 0)
		s = classify(path, h);
	if (s == DD_HOOK_CALLS_US) {
		dd_info("%s: left as it is: it runs `git dnadata hook %s` itself", shown, h->name);
		rc = 0;
		goto out;
	}
	if ((s == DD_HOOK_OURS || s == DD_HOOK_OUTDATED) && look(keep, &st) > 0 && S_ISREG(st.st_mode) &&
	    classify(keep, h) == DD_HOOK_CALLS_US) {
		/* kept behind ours by an older version: it calls us itself, so ours only ran our part twice */
		if (rename(keep, path) < 0) {
			dd_error_errno("cannot put your %s hook back from %s", h->name,
				       dd_repo_display_path(repo, keep));
			goto out;
		}
		dd_info("%s: your hook is back (it runs `git dnadata hook %s` itself); ours is removed", shown,
			h->name);
		rc = 0;
		goto out;
	}
	if (s == DD_HOOK_OURS) {
		dd_info("%s: already installed", shown);
		rc = 0;
		goto out;
	}
	if (s == DD_HOOK_FOREIGN) {
		/* a hard link keeps the user's file whole, mode included, and never overwrites */
		if (link(path, keep) < 0) {
			dd_error_errno("cannot keep the %s hook as %s", h->name, dd_repo_display_path(repo, keep));
			goto out;
		}
	}
	if (dd_file_write_atomic(path, h->text, strlen(h->text), 0755, 0) < 0) {
		if (s == DD_HOOK_FOREIGN)
			unlink(keep); /* the user's hook is still at its own name */
		dd_error_wrap("installing the %s hook", h->name);
		goto out;
	}
	if (s == DD_HOOK_FOREIGN)
		dd_info("%s: installed; your hook is kept as %s and runs first", shown,
			dd_repo_display_path(repo, keep));
	else if (s == DD_HOOK_OUTDATED)
		dd_info("%s: updated", shown);
	else
		dd_info("%s: installed", shown);
	rc = 0;
out:
	free(path);
	free(keep);
	return rc;
}

int
dd_hooks_install(const struct dd_repo *repo)
{
	char *dir = NULL;
	int rc = -1;

	if (dd_hooks_dir(&dir, repo) < 0)
		return -1;
	if (dd_mkdir_p(dir, 0777) < 0)
		goto out;
	if (access(dir, W_OK) < 0) {
		dd_error_errno("cannot write to the hooks folder %s; nothing was installed", dd_repo_display_path(repo, dir));
		goto out;
	}
	for (size_t i = 0; dd_hook_scripts[i].name; i++)
		if (plan_install(repo, dir, &dd_hook_scripts[i]) < 0)
			goto out;
	for (size_t i = 0; dd_hook_scripts[i].name; i++)
		if (install_one(repo, dir, &dd_hook_scripts[i]) < 0)
			goto out;
	rc = 0;
out:
	free(dir);
	return rc;
}

static int
uninstall_one(const struct dd_repo *repo, const char *dir, const struct dd_hook_script *h)
{
	char *path = dd_path_join(dir, h->name);
	char *keep = dd_asprintf("%s%s", path, DD_HOOK_USER_SUFFIX);
	const char *shown = dd_repo_display_path(repo, path);
	struct stat st, kst;
	int rc = -1, here, kept;
	enum dd_hook_state s;

	if ((here = look(path, &st)) < 0 || (kept = look(keep, &kst)) < 0)
		goto out;
	s = here && S_ISREG(st.st_mode) ? classify(path, h) : here ? DD_HOOK_FOREIGN : DD_HOOK_MISSING;
	if (here && s != DD_HOOK_OURS && s != DD_HOOK_OUTDATED) {
		dd_info("%s: not ours, left as it is", shown);
		rc = 0;
		goto out;
	}
	if (kept) {
		if (rename(keep, path) < 0) {
			dd_error_errno("cannot put your %s hook back from %s", h->name, dd_repo_display_path(repo, keep));
			goto out;
		}
		dd_info("%s: removed ours; your hook is back", shown);
	} else if (here) {
		if (unlink(path) < 0) {
			dd_error_errno("cannot remove %s", shown);
			goto out;
		}
		dd_info("%s: removed", shown);
	}
	rc = 0;
out:
	free(path);
	free(keep);
	return rc;
}

int
dd_hooks_uninstall(const struct dd_repo *repo)
{
	char *dir = NULL;
	int rc = 0;

	if (dd_hooks_dir(&dir, repo) < 0)
		return -1;
	for (size_t i = 0; dd_hook_scripts[i].name; i++)
		if (uninstall_one(repo, dir, &dd_hook_scripts[i]) < 0)
			rc = -1;
	free(dir);
	return rc;
}

/* The first line of the small file `path` without its newline, or NULL. */
static char *
first_line(const char *path)
{
	struct dd_buf text = DD_BUF_INIT;
	char *line = NULL;

	if (dd_file_read(&text, path) == 0 && text.ptr && text.len < 4096) {
		size_t n = strcspn(text.ptr, "\r\n");
		line = dd_strndup(text.ptr, n);
	}
	dd_error_clear();
	dd_buf_release(&text);
	return line;
}

/* `p` as an absolute path: itself, or relative to `base`. Caller frees. */
static char *
absolute(const char *base, const char *p)
{
	return p[0] == '/' ? dd_strdup(p) : dd_path_join(base, p);
}

/* Does the rebase todo file `path` still hold a command (a line other than blank, a comment, "noop")? */
static int
todo_has_commands(const char *path)
{
	struct dd_buf text = DD_BUF_INIT;
	int found = 1; /* unreadable: assume commits are left */

	if (dd_file_read(&text, path) == 0) {
		const char *s = text.ptr ? text.ptr : "", *end = s + text.len;
		found = 0;
		while (s < end && !found) {
			const char *nl = memchr(s, '\n', (size_t)(end - s));
			size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
			size_t k = strspn(s, " \t");
			if (k < n && s[k] != '#' && s[k] != '\r' && !(n - k >= 4 && !strncmp(s + k, "noop", 4)))
				found = 1;
			s += n + 1;
		}
	}
	dd_error_clear();
	dd_buf_release(&text);
	return found;
}

/* Is HEAD's newest reflog entry a rebase's ("rebase (start): checkout ...")? */
static int
reflog_says_rebase(const struct dd_repo *repo)
{
	git_reflog *log = NULL;
	const git_reflog_entry *e;
	const char *msg;
	int r = 0;

	if (git_reflog_read(&log, repo->git, "HEAD") < 0)
		return 0;
	if ((e = git_reflog_entry_byindex(log, 0)) && (msg = git_reflog_entry_message(e)))
		r = !strncmp(msg, "rebase", 6);
	git_reflog_free(log);
	return r;
}

int
dd_hooks_rebase_seen(const struct dd_repo *repo)
{
	char *merge = dd_path_join(repo->gitdir, "rebase-merge");
	char *apply = dd_path_join(repo->gitdir, "rebase-apply");
	const char *action = getenv("GIT_REFLOG_ACTION");
	int seen = dd_is_dir(merge) || dd_is_dir(apply) || (action && strstr(action, "rebase"));

	free(merge);
	free(apply);
	return seen;
}

int
dd_hooks_rebase_checkout(const struct dd_repo *repo)
{
	char *merge = dd_path_join(repo->gitdir, "rebase-merge");
	char *file = NULL, *line = NULL;
	git_oid head, orig;
	int rc = 0, have_orig = 0, is_merge = dd_is_dir(merge);

	if (!dd_hooks_rebase_seen(repo) && !reflog_says_rebase(repo))
		goto out;
	rc = 1;
	if (is_merge) {
		file = dd_path_join(merge, "git-rebase-todo");
		if (!todo_has_commands(file)) {
			rc = 0; /* nothing to replay: HEAD is the result */
			goto out;
		}
		free(file);
		file = dd_path_join(merge, "orig-head");
		line = first_line(file);
		have_orig = line && git_oid_fromstr(&orig, line) == 0;
	} else {
		/* the apply backend records ORIG_HEAD before it checks out `onto` */
		have_orig = git_reference_name_to_id(&orig, repo->git, "ORIG_HEAD") == 0;
	}
	/* the branch's tip already in HEAD's history: a fast-forward, this checkout is the result */
	if (have_orig && git_reference_name_to_id(&head, repo->git, "HEAD") == 0 &&
	    (git_oid_equal(&head, &orig) || git_graph_descendant_of(repo->git, &head, &orig) == 1))
		rc = 0;
out:
	git_error_clear();
	dd_error_clear();
	free(merge);
	free(file);
	free(line);
	return rc;
}

int
dd_hooks_repo_open_light(struct dd_repo **out)
{
	char cwd[4096], *dotgit = NULL, *gitdir = NULL, *common = NULL, *line = NULL, *cfile = NULL;
	const char *e;
	struct stat st;
	struct dd_repo *repo;
	int rc = DD_NOTFOUND;

	*out = NULL;
	if (((e = getenv("GIT_DIR")) && *e) || ((e = getenv("GIT_WORK_TREE")) && *e) || !getcwd(cwd, sizeof(cwd)))
		return DD_NOTFOUND;
	dotgit = dd_path_join(cwd, ".git");
	if (lstat(dotgit, &st) < 0)
		goto out;
	if (S_ISDIR(st.st_mode)) {
		gitdir = dd_strdup(dotgit);
	} else if (S_ISREG(st.st_mode)) {
		line = first_line(dotgit);
		if (!line || strncmp(line, "gitdir: ", 8))
			goto out;
		gitdir = absolute(cwd, line + 8);
	} else {
		goto out;
	}
	cfile = dd_path_join(gitdir, "commondir");
	free(line);
	line = dd_path_exists(cfile) ? first_line(cfile) : NULL;
	common = line ? absolute(gitdir, line) : dd_strdup(gitdir);
	if (!dd_is_dir(gitdir) || !dd_is_dir(common))
		goto out;
	repo = dd_calloc(1, sizeof(*repo));
	repo->workdir = dd_strdup(cwd);
	repo->dnadata = dd_path_join(cwd, ".dnadata");
	repo->statedir = dd_path_join(common, "dnadata");
	repo->gitdir = gitdir;
	repo->linked = line != NULL;
	gitdir = NULL;
	*out = repo;
	rc = 0;
out:
	free(dotgit);
	free(gitdir);
	free(common);
	free(line);
	free(cfile);
	return rc;
}

const char *
dd_hook_state_name(enum dd_hook_state s)
{
	switch (s) {
	case DD_HOOK_MISSING: return "missing";
	case DD_HOOK_OURS: return "installed";
	case DD_HOOK_OUTDATED: return "outdated";
	case DD_HOOK_CALLS_US: return "calls git dnadata";
	case DD_HOOK_FOREIGN: return "not ours";
	}
	return "?";
}

int
dd_hooks_report(struct dd_hooks_report *out, const struct dd_repo *repo)
{
	enum dd_hook_state states[DD_HOOKS_MAX];
	char *def;

	memset(out, 0, sizeof(*out));
	if (dd_hooks_state(states, repo) < 0 || dd_hooks_dir(&out->dir, repo) < 0) {
		dd_hooks_report_release(out);
		return -1;
	}
	def = dd_path_join(git_repository_commondir(repo->git), "hooks");
	{
		size_t n = strlen(def);
		while (n > 1 && def[n - 1] == '/')
			def[--n] = '\0';
	}
	out->custom_dir = strcmp(def, out->dir) != 0;
	free(def);
	for (size_t i = 0; dd_hook_scripts[i].name && i < DD_HOOKS_MAX; i++, out->n++) {
		char *path = dd_path_join(out->dir, dd_hook_scripts[i].name);
		char *kept = dd_asprintf("%s%s", path, DD_HOOK_USER_SUFFIX);
		out->hook[i].state = states[i];
		out->hook[i].chained = states[i] == DD_HOOK_OURS || states[i] == DD_HOOK_OUTDATED ? dd_path_exists(kept)
											       : 0;
		out->hook[i].executable = states[i] != DD_HOOK_MISSING && access(path, X_OK) == 0;
		free(kept);
		free(path);
	}
	return 0;
}

void
dd_hooks_report_release(struct dd_hooks_report *r)
{
	free(r->dir);
	r->dir = NULL;
}
