/*
 * git/commit.c: commit exactly a few paths, leaving the rest of the user's
 * work alone (see commit.h).
 *
 * How: the new tree is HEAD's tree with only those paths replaced
 * (git_tree_create_updated), so whatever else the user staged is not
 * swept into our commit; the same paths' index entries are refreshed from
 * the work tree, so `git status` is clean for them afterwards.
 *
 * Order, so that a failure changes nothing: everything that can refuse
 * (conflicts, a merge or rebase in progress, a missing identity) is checked
 * before anything is written; blobs and trees written to the object
 * database are unreachable and harmless if we stop; the index is changed in
 * memory and written only after the commit and HEAD update succeeded; if
 * writing it fails, HEAD is moved back (compare-and-swap) to where it was.
 * Our commits do not run git's commit hooks and are not signed.
 */
#include "git/commit.h"
#include "git/repo.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"

#include <errno.h>
#include <git2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* A path we are willing to commit: relative, normalised, outside .git. */
static int
check_path(const char *p)
{
	const char *s = p;

	if (!*p || *p == '/')
		goto bad;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && !memcmp(s, "..", 2)) ||
		    (len == 4 && !strncasecmp(s, ".git", 4)))
			goto bad;
		s += len + (e ? 1 : 0);
		if (e && !*s)
			goto bad;
	}
	return 0;
bad:
	return dd_error("BUG: refusing to commit path '%s' (not a clean relative path)", p);
}

int
dd_commit_check_conflicts(struct dd_repo *repo, const char *const *paths, size_t npaths)
{
	git_index *index = NULL;
	int rc = -1;

	if (git_repository_index(&index, repo->git) < 0 || git_index_read(index, 1) < 0) {
		dd_error_git("cannot read the git index");
		goto out;
	}
	for (size_t i = 0; i < npaths; i++) {
		const git_index_entry *a, *o, *t;
		int err = git_index_conflict_get(&a, &o, &t, index, paths[i]);
		if (err == GIT_ENOTFOUND)
			continue;
		if (err < 0) {
			dd_error_git(paths[i]);
			goto out;
		}
		dd_error("%s has unresolved merge conflicts; git dnadata will not commit over them", paths[i]);
		dd_hint("resolve the conflict, then 'git add %s' and 'git commit' (or 'git merge --abort')", paths[i]);
		goto out;
	}
	rc = 0;
out:
	git_index_free(index);
	return rc;
}

static int
check_state(struct dd_repo *repo)
{
	const char *what = NULL, *abort_cmd = NULL;

	switch (git_repository_state(repo->git)) {
	case GIT_REPOSITORY_STATE_MERGE:
		what = "a merge", abort_cmd = "git merge --abort";
		break;
	case GIT_REPOSITORY_STATE_REVERT:
	case GIT_REPOSITORY_STATE_REVERT_SEQUENCE:
		what = "a revert", abort_cmd = "git revert --abort";
		break;
	case GIT_REPOSITORY_STATE_CHERRYPICK:
	case GIT_REPOSITORY_STATE_CHERRYPICK_SEQUENCE:
		what = "a cherry-pick", abort_cmd = "git cherry-pick --abort";
		break;
	case GIT_REPOSITORY_STATE_REBASE:
	case GIT_REPOSITORY_STATE_REBASE_INTERACTIVE:
	case GIT_REPOSITORY_STATE_REBASE_MERGE:
		what = "a rebase", abort_cmd = "git rebase --abort";
		break;
	case GIT_REPOSITORY_STATE_APPLY_MAILBOX:
	case GIT_REPOSITORY_STATE_APPLY_MAILBOX_OR_REBASE:
		what = "'git am'", abort_cmd = "git am --abort";
		break;
	default:
		return 0;
	}
	dd_error("%s is in progress; git dnadata will not add a commit in the middle of it", what);
	dd_hint("finish it (or '%s') and run the command again, or pass --no-commit", abort_cmd);
	return -1;
}

/* Author and committer like git: GIT_{AUTHOR,COMMITTER}_{NAME,EMAIL}, else user.name/user.email. */
static int
signatures(struct dd_repo *repo, git_signature **author, git_signature **committer)
{
	git_config *cfg = NULL, *snap = NULL;
	const char *cname = NULL, *cemail = NULL;
	const char *names[2], *emails[2];
	git_signature *sigs[2] = { NULL, NULL };
	int rc = -1;

	*author = *committer = NULL;
	if (git_repository_config(&cfg, repo->git) < 0 || git_config_snapshot(&snap, cfg) < 0) {
		dd_error_git("cannot read git config");
		goto out;
	}
	if (git_config_get_string(&cname, snap, "user.name") < 0)
		cname = NULL;
	if (git_config_get_string(&cemail, snap, "user.email") < 0)
		cemail = NULL;
	git_error_clear();
	names[0] = getenv("GIT_AUTHOR_NAME");
	emails[0] = getenv("GIT_AUTHOR_EMAIL");
	names[1] = getenv("GIT_COMMITTER_NAME");
	emails[1] = getenv("GIT_COMMITTER_EMAIL");
	for (int i = 0; i < 2; i++) {
		const char *n = names[i] && *names[i] ? names[i] : cname;
		const char *e = emails[i] && *emails[i] ? emails[i] : cemail;
		if (!n || !*n || !e || !*e) {
			dd_error("%s identity unknown: git's user.name and user.email are not set",
				 i == 0 ? "Author" : "Committer");
			dd_hint("run git config --global user.email \"you@example.com\" and "
				"git config --global user.name \"Your Name\" (or pass --no-commit)");
			goto out;
		}
		if (git_signature_now(&sigs[i], n, e) < 0) {
			dd_error_git("invalid git identity (user.name/user.email)");
			goto out;
		}
	}
	*author = sigs[0], *committer = sigs[1];
	sigs[0] = sigs[1] = NULL;
	rc = 0;
out:
	git_signature_free(sigs[0]);
	git_signature_free(sigs[1]);
	git_config_free(snap);
	git_config_free(cfg);
	return rc;
}

int
dd_commit_precheck(struct dd_repo *repo, const char *const *paths, size_t npaths)
{
	git_signature *a = NULL, *c = NULL;

	for (size_t i = 0; i < npaths; i++)
		if (check_path(paths[i]) < 0)
			return -1;
	if (dd_commit_check_conflicts(repo, paths, npaths) < 0 || check_state(repo) < 0)
		return -1;
	if (signatures(repo, &a, &c) < 0)
		return -1;
	git_signature_free(a);
	git_signature_free(c);
	return 0;
}

static void
lock_hint(int err)
{
	if (err == GIT_ELOCKED)
		dd_hint("another git process seems to be running; if none is, remove the stale .lock file and retry");
}

/* Put HEAD's branch (or detached HEAD) back to `old` (NULL: it was unborn). */
static void
rollback_head(struct dd_repo *repo, const git_oid *old, const git_oid *ours)
{
	git_reference *head = NULL, *resolved = NULL, *tmp = NULL;
	const char *name = "HEAD";

	if (git_reference_lookup(&head, repo->git, "HEAD") < 0)
		goto out;
	if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC)
		name = git_reference_symbolic_target(head);
	if (old) {
		git_reference_create_matching(&tmp, repo->git, name, old, 1, ours,
					      "dnadata: undo commit (index could not be written)");
	} else if (git_reference_lookup(&resolved, repo->git, name) == 0 &&
		   git_reference_type(resolved) == GIT_REFERENCE_DIRECT &&
		   git_oid_equal(git_reference_target(resolved), ours)) {
		git_reference_delete(resolved);
	}
out:
	git_reference_free(tmp);
	git_reference_free(resolved);
	git_reference_free(head);
}

int
dd_commit_paths(struct dd_repo *repo, const char *const *paths, size_t npaths,
		const char *what, char commit_out[41])
{
	git_signature *author = NULL, *committer = NULL;
	git_index *index = NULL;
	git_commit *head = NULL;
	git_tree *base = NULL, *tree = NULL;
	git_tree_update *updates = NULL;
	git_oid tree_id, commit_id, head_id;
	size_t nupdates = 0;
	char *message = NULL;
	int rc = -1, unborn, index_dirty = 0, err;

	if (commit_out)
		commit_out[0] = '\0';
	if (dd_commit_precheck(repo, paths, npaths) < 0)
		return -1;
	if (signatures(repo, &author, &committer) < 0)
		return -1;
	unborn = git_repository_head_unborn(repo->git);
	if (unborn < 0) {
		dd_error_git("cannot read HEAD");
		goto out;
	}
	if (!unborn) {
		if (git_reference_name_to_id(&head_id, repo->git, "HEAD") < 0 ||
		    git_commit_lookup(&head, repo->git, &head_id) < 0 || git_commit_tree(&base, head) < 0) {
			dd_error_git("cannot read the HEAD commit");
			goto out;
		}
	}
	if (git_repository_index(&index, repo->git) < 0 || git_index_read(index, 1) < 0) {
		dd_error_git("cannot read the git index");
		goto out;
	}
	updates = dd_calloc(npaths ? npaths : 1, sizeof(*updates));
	for (size_t i = 0; i < npaths; i++) {
		char *abs = dd_repo_path(repo, paths[i]);
		struct stat st;
		int exists = lstat(abs, &st) == 0;
		int saved = errno;

		free(abs);
		index_dirty = 1;
		if (!exists && saved != ENOENT && saved != ENOTDIR) {
			errno = saved;
			dd_error_errno("cannot read %s", paths[i]);
			goto out;
		}
		if (exists) {
			const git_index_entry *e;
			if (S_ISDIR(st.st_mode)) {
				dd_error("cannot commit %s: it is a directory", paths[i]);
				goto out;
			}
			if (git_index_add_bypath(index, paths[i]) < 0 ||
			    !(e = git_index_get_bypath(index, paths[i], 0))) {
				dd_error_git(paths[i]);
				dd_error_wrap("cannot add to the index");
				goto out;
			}
			updates[nupdates].action = GIT_TREE_UPDATE_UPSERT;
			git_oid_cpy(&updates[nupdates].id, &e->id);
			updates[nupdates].filemode = (git_filemode_t)e->mode;
			updates[nupdates].path = paths[i];
			nupdates++;
		} else {
			git_tree_entry *te = NULL;
			if (git_index_remove_bypath(index, paths[i]) < 0) {
				dd_error_git(paths[i]);
				goto out;
			}
			if (base && git_tree_entry_bypath(&te, base, paths[i]) == 0) {
				git_tree_entry_free(te);
				updates[nupdates].action = GIT_TREE_UPDATE_REMOVE;
				updates[nupdates].path = paths[i];
				nupdates++;
			}
			git_error_clear();
		}
	}
	if (git_tree_create_updated(&tree_id, repo->git, base, nupdates, updates) < 0) {
		dd_error_git("cannot build the commit's tree");
		goto out;
	}
	if (git_tree_lookup(&tree, repo->git, &tree_id) < 0) {
		dd_error_git("cannot read the new tree");
		goto out;
	}
	if (base ? git_oid_equal(&tree_id, git_tree_id(base)) : git_tree_entrycount(tree) == 0) {
		/* Nothing to commit; still make the index agree with the files. */
		if (git_index_write(index) < 0) {
			dd_error_git("cannot write the git index");
			goto out;
		}
		index_dirty = 0;
		rc = 1;
		goto out;
	}
	message = dd_asprintf("dnadata: %s\n", what);
	if ((err = git_commit_create(&commit_id, repo->git, "HEAD", author, committer, NULL, message, tree,
				     head ? 1 : 0, (const git_commit **)&head)) < 0) {
		dd_error_git("cannot create the commit");
		lock_hint(err);
		goto out;
	}
	if ((err = git_index_write(index)) < 0) {
		dd_error_git("cannot write the git index");
		rollback_head(repo, head ? &head_id : NULL, &commit_id);
		dd_error_wrap("commit undone");
		lock_hint(err);
		goto out;
	}
	index_dirty = 0;
	if (commit_out)
		git_oid_tostr(commit_out, 41, &commit_id);
	rc = 0;
out:
	if (index_dirty && index)
		git_index_read(index, 1); /* forget our in-memory changes */
	free(message);
	free(updates);
	git_tree_free(tree);
	git_tree_free(base);
	git_commit_free(head);
	git_index_free(index);
	git_signature_free(author);
	git_signature_free(committer);
	return rc;
}
