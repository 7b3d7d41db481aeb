/*
 * git/repo.c: find and open the user's repository with libgit2.
 *
 * Discovery starts at the given directory (or honours GIT_DIR,
 * GIT_WORK_TREE and GIT_CEILING_DIRECTORIES like git does when none is
 * given: hooks run with GIT_DIR set; GIT_WORK_TREE is applied by hand
 * because libgit2 1.5 does not implement it). The local state directory lives in
 * the *common* git dir, so every linked worktree of a clone shares one
 * cache, key and config.ini, while each worktree has its own checked-out
 * .dnadata/. Bare repositories have no work tree and are refused.
 */
#include "git/repo.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
dd_error_git(const char *what)
{
	const git_error *e = git_error_last();

	return dd_error("%s: %s", what, e && e->message ? e->message : "unknown libgit2 error");
}

/* A copy of `path` without trailing slashes (but "/" stays "/"). */
static char *
strip_slash(const char *path)
{
	size_t len = strlen(path);

	while (len > 1 && path[len - 1] == '/')
		len--;
	return dd_strndup(path, len);
}

int
dd_repo_open(struct dd_repo **out, const char *start)
{
	git_repository *git = NULL;
	struct dd_repo *repo;
	char *common = NULL, cwd[PATH_MAX];
	int err;

	*out = NULL;
	if (start) {
		err = git_repository_open_ext(&git, start, 0, NULL);
	} else if (getenv("GIT_WORK_TREE") && *getenv("GIT_WORK_TREE")) {
		/* libgit2 1.5's FROM_ENV refuses GIT_WORK_TREE ("unimplemented"): apply it ourselves. */
		const char *gd = getenv("GIT_DIR");
		err = git_repository_open_ext(&git, gd && *gd ? gd : ".", gd && *gd ? GIT_REPOSITORY_OPEN_NO_SEARCH : 0,
					      NULL);
		if (err == 0 && git_repository_set_workdir(git, getenv("GIT_WORK_TREE"), 0) < 0) {
			git_repository_free(git);
			return dd_error_git("cannot use GIT_WORK_TREE");
		}
	} else {
		err = git_repository_open_ext(&git, NULL, GIT_REPOSITORY_OPEN_FROM_ENV, NULL);
	}
	if (err == GIT_ENOTFOUND) {
		if (!start)
			start = getcwd(cwd, sizeof(cwd)) ? cwd : ".";
		dd_error("not a git repository (or any of the parent directories): %s", start);
		dd_hint("run git dnadata inside your project's git repository (or 'git init' one first)");
		return -1;
	}
	if (err < 0)
		return dd_error_git("cannot open the git repository");
	if (git_repository_is_bare(git)) {
		git_repository_free(git);
		dd_error("this is a bare git repository; git dnadata needs a work tree");
		dd_hint("run it in a clone with a checkout");
		return -1;
	}
	repo = dd_calloc(1, sizeof(*repo));
	repo->git = git;
	repo->workdir = strip_slash(git_repository_workdir(git));
	repo->dnadata = dd_path_join(repo->workdir, ".dnadata");
	common = strip_slash(git_repository_commondir(git));
	repo->statedir = dd_path_join(common, "dnadata");
	free(common);
	repo->gitdir = strip_slash(git_repository_path(git));
	repo->linked = git_repository_is_worktree(git) == 1;
	*out = repo;
	return 0;
}

void
dd_repo_free(struct dd_repo *repo)
{
	if (!repo)
		return;
	git_repository_free(repo->git);
	free(repo->workdir);
	free(repo->dnadata);
	free(repo->statedir);
	free(repo->gitdir);
	free(repo);
}

char *
dd_repo_path(const struct dd_repo *repo, const char *rel)
{
	return dd_path_join(repo->workdir, rel);
}

const char *
dd_repo_display_path(const struct dd_repo *repo, const char *path)
{
	size_t len = strlen(repo->workdir);

	if (!strncmp(path, repo->workdir, len) && path[len] == '/' && path[len + 1])
		return path + len + 1;
	return path;
}

char *
dd_repo_shell_quote(const char *s)
{
	struct dd_buf b = DD_BUF_INIT;

	dd_buf_putc(&b, '\'');
	for (; *s; s++)
		if (*s == '\'')
			dd_buf_puts(&b, "'\\''");
		else
			dd_buf_putc(&b, *s);
	dd_buf_putc(&b, '\'');
	return dd_buf_detach(&b, NULL);
}

int
dd_repo_head(const struct dd_repo *repo, char out[41])
{
	git_oid oid;
	int err;

	out[0] = '\0';
	err = git_reference_name_to_id(&oid, repo->git, "HEAD");
	if (err == GIT_ENOTFOUND || err == GIT_EUNBORNBRANCH)
		return DD_NOTFOUND;
	if (err < 0)
		return dd_error_git("cannot resolve HEAD");
	git_oid_tostr(out, 41, &oid);
	return 0;
}

int
dd_repo_entry_at(git_tree_entry **out, const struct dd_repo *repo, const char *rev, const char *relpath,
		 int commits_only)
{
	git_object *obj = NULL;
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	int rc = -1, err;

	*out = NULL;
	err = git_revparse_single(&obj, repo->git, rev);
	if (err == GIT_ENOTFOUND && !strcmp(rev, "HEAD") && git_repository_head_unborn(repo->git) == 1)
		return DD_NOTFOUND; /* no commits yet: nothing exists at HEAD */
	if (err < 0) {
		dd_error_git(rev);
		return dd_error_wrap("cannot resolve revision");
	}
	if (git_object_peel((git_object **)&commit, obj, GIT_OBJECT_COMMIT) < 0) {
		if (commits_only)
			dd_error("'%s' does not name a commit", rev);
		else
			rc = DD_NOTFOUND; /* a tag of a tree or a blob: nothing at any path */
		goto out;
	}
	if (git_commit_tree(&tree, commit) < 0) {
		dd_error_git("cannot read the commit's tree");
		goto out;
	}
	err = git_tree_entry_bypath(out, tree, relpath);
	if (err == GIT_ENOTFOUND)
		rc = DD_NOTFOUND;
	else if (err < 0)
		dd_error_git(relpath);
	else
		rc = 0;
out:
	git_tree_free(tree);
	git_commit_free(commit);
	git_object_free(obj);
	return rc;
}

int
dd_repo_read_at(struct dd_buf *out, const struct dd_repo *repo, const char *rev, const char *relpath)
{
	git_tree_entry *entry = NULL;
	git_blob *blob = NULL;
	int rc = dd_repo_entry_at(&entry, repo, rev, relpath, 1);

	if (rc != 0)
		return rc;
	rc = -1;
	if (git_tree_entry_type(entry) != GIT_OBJECT_BLOB) {
		dd_error("%s at %s is not a file", relpath, rev);
		goto out;
	}
	if (git_blob_lookup(&blob, repo->git, git_tree_entry_id(entry)) < 0) {
		dd_error_git(relpath);
		goto out;
	}
	dd_buf_put(out, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
	rc = 0;
out:
	git_blob_free(blob);
	git_tree_entry_free(entry);
	return rc;
}

int
dd_repo_changed(const struct dd_repo *repo, const char *relpath)
{
	unsigned int flags = 0;
	int err = git_status_file(&flags, repo->git, relpath);

	if (err == GIT_ENOTFOUND)
		return 0; /* neither in HEAD, the index nor the work tree */
	if (err < 0)
		return dd_error_git(relpath);
	return (flags & ~(unsigned)GIT_STATUS_IGNORED) != GIT_STATUS_CURRENT;
}

int
dd_repo_lock_profile(const struct dd_repo *repo, const char *name, int *fd)
{
	char *rel = dd_asprintf("locks/%s", name), *path = dd_path_join(repo->statedir, rel);
	char *busy = dd_asprintf("waiting for another git dnadata run on profile %s to finish", name);
	int rc = dd_lock_file(path, busy, fd);

	free(busy);
	free(path);
	free(rel);
	return rc;
}

void
dd_repo_unlock(int fd)
{
	dd_unlock_file(fd);
}
