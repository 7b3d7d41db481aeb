/*
 * git/history.c: ref files read from commits (see history.h). Trees are
 * read through libgit2's object database: nothing is checked out.
 */
#include "git/history.h"
#include "git/ref.h"
#include "util/buf.h"
#include "util/err.h"

#include <string.h>

static int
wanted(const char *name, const char *const *profiles, size_t nprofiles)
{
	if (!profiles)
		return 1;
	for (size_t i = 0; i < nprofiles; i++)
		if (!strcmp(profiles[i], name))
			return 1;
	return 0;
}

/* One ref file blob of the tree at `rev`. */
static int
add_blob(char ***ids, size_t *n, const struct dd_repo *repo, const git_tree_entry *e, const char *rev)
{
	git_blob *blob = NULL;
	struct dd_ref *ref = NULL;
	char *disp = dd_asprintf("%s:.dnadata/refs/%s", rev, git_tree_entry_name(e));
	int rc = -1;

	if (git_blob_lookup(&blob, repo->git, git_tree_entry_id(e)) < 0) {
		dd_error_git(disp);
		goto out;
	}
	if (dd_ref_parse(&ref, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob), disp) < 0)
		goto out;
	if (ref->snapshot[0])
		dd_ref_ids_add(ids, n, ref->snapshot);
	rc = 0;
out:
	dd_ref_free(ref);
	git_blob_free(blob);
	free(disp);
	return rc;
}

/* The tree .dnadata/refs of the commit `rev` names: 0, DD_NOTFOUND (none there), -1. */
static int
refs_tree(git_tree **out, const struct dd_repo *repo, const char *rev)
{
	git_tree_entry *entry = NULL;
	int rc = dd_repo_entry_at(&entry, repo, rev, ".dnadata/refs", 0);

	*out = NULL;
	if (rc == 0 && git_tree_entry_type(entry) != GIT_OBJECT_TREE)
		rc = DD_NOTFOUND;
	if (rc == 0 && git_tree_lookup(out, repo->git, git_tree_entry_id(entry)) < 0)
		rc = dd_error_git(rev);
	git_tree_entry_free(entry);
	return rc;
}

int
dd_history_ids_at(char ***ids, size_t *n, const struct dd_repo *repo, const char *rev,
		  const char *const *profiles, size_t nprofiles)
{
	git_tree *tree = NULL;
	int rc = refs_tree(&tree, repo, rev);

	if (rc == DD_NOTFOUND)
		return 0;
	if (rc < 0)
		return -1;
	for (size_t i = 0; i < git_tree_entrycount(tree) && rc == 0; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		const char *name = git_tree_entry_name(e);

		if (git_tree_entry_type(e) != GIT_OBJECT_BLOB || name[0] == '.' || !wanted(name, profiles, nprofiles))
			continue;
		rc = add_blob(ids, n, repo, e, rev);
	}
	git_tree_free(tree);
	return rc;
}

int
dd_history_ids_all(char ***ids, size_t *n, const struct dd_repo *repo, const char *const *profiles,
		   size_t nprofiles)
{
	git_reference_iterator *it = NULL;
	const char *name;
	int rc = 0, err;

	if (git_reference_iterator_new(&it, repo->git) < 0)
		return dd_error_git("listing branches and tags");
	while (rc == 0 && (err = git_reference_next_name(&name, it)) == 0) {
		if (strncmp(name, "refs/heads/", 11) && strncmp(name, "refs/tags/", 10))
			continue;
		rc = dd_history_ids_at(ids, n, repo, name, profiles, nprofiles);
	}
	if (rc == 0 && err != GIT_ITEROVER)
		rc = dd_error_git("listing branches and tags");
	git_reference_iterator_free(it);
	return rc;
}
