/*
 * git/history.c: ref files read from commits (see history.h). Trees are
 * read through libgit2's object database: nothing is checked out.
 */
#include "git/history.h"
#include "git/ref.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"

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
	if (ref->snapshot[0] && !dd_ref_is_inline(ref))
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

/* The .dnadata/refs tree of `commit`, or NULL when it has none. */
static int
commit_refs_tree(git_tree **out, const struct dd_repo *repo, const git_commit *commit)
{
	git_tree *root = NULL;
	git_tree_entry *e = NULL;
	int rc = 0, err;

	*out = NULL;
	if (git_commit_tree(&root, commit) < 0)
		return dd_error_git("cannot read a commit's tree");
	err = git_tree_entry_bypath(&e, root, ".dnadata/refs");
	if (err == 0 && git_tree_entry_type(e) == GIT_OBJECT_TREE) {
		if (git_tree_lookup(out, repo->git, git_tree_entry_id(e)) < 0)
			rc = dd_error_git("cannot read .dnadata/refs");
	} else if (err < 0 && err != GIT_ENOTFOUND) {
		rc = dd_error_git(".dnadata/refs");
	}
	git_tree_entry_free(e);
	git_tree_free(root);
	return rc;
}

/* Ref files of `commit` added or changed against every one of its parents (a root commit: all of them). */
static int
commit_changed_ids(char ***ids, size_t *n, const struct dd_repo *repo, const git_commit *commit)
{
	git_tree *tree = NULL;
	unsigned int np = git_commit_parentcount(commit);
	char rev[GIT_OID_HEXSZ + 1];
	int rc = commit_refs_tree(&tree, repo, commit);

	git_oid_tostr(rev, sizeof(rev), git_commit_id(commit));
	for (unsigned int p = 0; rc == 0 && tree && p < (np ? np : 1); p++) {
		git_commit *parent = NULL;
		git_tree *ptree = NULL;
		if (np && (git_commit_parent(&parent, commit, p) < 0 ||
			   commit_refs_tree(&ptree, repo, parent) < 0)) {
			if (!parent)
				rc = dd_error_git("cannot read a parent commit");
			else
				rc = -1;
		}
		for (size_t i = 0; rc == 0 && i < git_tree_entrycount(tree); i++) {
			const git_tree_entry *e = git_tree_entry_byindex(tree, i);
			const git_tree_entry *old = ptree ? git_tree_entry_byname(ptree, git_tree_entry_name(e)) : NULL;
			if (git_tree_entry_type(e) != GIT_OBJECT_BLOB || git_tree_entry_name(e)[0] == '.')
				continue;
			if (old && !git_oid_cmp(git_tree_entry_id(old), git_tree_entry_id(e)))
				continue;
			rc = add_blob(ids, n, repo, e, rev);
		}
		git_tree_free(ptree);
		git_commit_free(parent);
	}
	git_tree_free(tree);
	return rc;
}

/* The commit `hex` names, peeling tags: 0, DD_NOTFOUND (not here, or not a commit: a tag of a tree), -1. */
static int
peel_commit(git_oid *out, const struct dd_repo *repo, const char *hex)
{
	git_object *obj = NULL, *c = NULL;
	git_oid oid;
	int rc = DD_NOTFOUND;

	if (git_oid_fromstr(&oid, hex) < 0 || git_oid_is_zero(&oid))
		return DD_NOTFOUND;
	if (git_object_lookup(&obj, repo->git, &oid, GIT_OBJECT_ANY) == 0 &&
	    git_object_peel(&c, obj, GIT_OBJECT_COMMIT) == 0) {
		git_oid_cpy(out, git_object_id(c));
		rc = 0;
	}
	git_object_free(c);
	git_object_free(obj);
	return rc;
}

int
dd_history_ids_pushed(char ***ids, size_t *n, const struct dd_repo *repo, const char *tip, const char *remote_sha,
		      const char *remote)
{
	git_revwalk *walk = NULL;
	git_oid oid, hide;
	git_commit *c = NULL;
	int rc = -1, err;

	if (peel_commit(&oid, repo, tip) != 0)
		return 0; /* a tag of a tree or blob: no commits, no ref files */
	if (git_revwalk_new(&walk, repo->git) < 0 || git_revwalk_push(walk, &oid) < 0) {
		dd_error_git("cannot walk the pushed commits");
		goto out;
	}
	/* what the remote has: its tip when we know that commit, else every remote-tracking branch of it */
	if (remote_sha && peel_commit(&hide, repo, remote_sha) == 0) {
		if (git_revwalk_hide(walk, &hide) < 0) {
			dd_error_git("cannot walk the pushed commits");
			goto out;
		}
	} else if (remote && *remote) {
		char *glob = dd_asprintf("refs/remotes/%s/*", remote);
		err = git_revwalk_hide_glob(walk, glob);
		free(glob);
		if (err < 0 && err != GIT_ENOTFOUND) {
			dd_error_git("cannot walk the pushed commits");
			goto out;
		}
	}
	while ((err = git_revwalk_next(&oid, walk)) == 0) {
		if (git_commit_lookup(&c, repo->git, &oid) < 0) {
			dd_error_git("cannot read a pushed commit");
			goto out;
		}
		if (commit_changed_ids(ids, n, repo, c) < 0)
			goto out;
		git_commit_free(c);
		c = NULL;
	}
	if (err != GIT_ITEROVER) {
		dd_error_git("cannot walk the pushed commits");
		goto out;
	}
	rc = 0;
out:
	git_commit_free(c);
	git_revwalk_free(walk);
	return rc;
}

/* The blob at `relpath` in commit c: 0 (*oid set), DD_NOTFOUND (no file there), -1. */
static int
path_blob(git_oid *oid, const git_commit *c, const char *relpath)
{
	git_tree *root = NULL;
	git_tree_entry *e = NULL;
	int rc = DD_NOTFOUND, err;

	if (git_commit_tree(&root, c) < 0)
		return dd_error_git("cannot read a commit's tree");
	err = git_tree_entry_bypath(&e, root, relpath);
	if (err == 0 && git_tree_entry_type(e) == GIT_OBJECT_BLOB) {
		git_oid_cpy(oid, git_tree_entry_id(e));
		rc = 0;
	} else if (err < 0 && err != GIT_ENOTFOUND) {
		rc = dd_error_git(relpath);
	}
	git_tree_entry_free(e);
	git_tree_free(root);
	return rc;
}

/* Does c's `relpath` differ from every parent's? 1 yes (*have: c has the file, *oid its blob), 0 no, -1. */
static int
changed_in(const git_commit *c, const char *relpath, git_oid *oid, int *have)
{
	unsigned int np = git_commit_parentcount(c);
	int r = path_blob(oid, c, relpath);

	if (r < 0)
		return -1;
	*have = r == 0;
	if (np == 0)
		return *have;
	for (unsigned int i = 0; i < np; i++) {
		git_commit *parent = NULL;
		git_oid poid;
		int pr;
		if (git_commit_parent(&parent, c, i) < 0)
			return dd_error_git("cannot read a parent commit");
		pr = path_blob(&poid, parent, relpath);
		git_commit_free(parent);
		if (pr < 0)
			return -1;
		if ((pr == DD_NOTFOUND && !*have) || (pr == 0 && *have && !git_oid_cmp(&poid, oid)))
			return 0; /* the same as this parent's: not a change of the file */
	}
	return 1;
}

/* Report one changed commit to fn: its blob (or NULL: removed). */
static int
report_change(const struct dd_repo *repo, const git_commit *c, const git_oid *oid, int have,
	      int (*fn)(const struct dd_history_change *c, void *arg), void *arg)
{
	struct dd_history_change ch = { (git_commit *)c, NULL, 0 };
	git_blob *blob = NULL;
	int r;

	if (have) {
		if (git_blob_lookup(&blob, repo->git, oid) < 0)
			return dd_error_git("cannot read a ref file in history");
		ch.blob = git_blob_rawcontent(blob);
		ch.len = (size_t)git_blob_rawsize(blob);
	}
	r = fn(&ch, arg);
	git_blob_free(blob);
	return r;
}

/* Start the walk at `rev` (NULL: HEAD): 0, DD_NOTFOUND (unborn HEAD: no commits), -1. */
static int
walk_from(git_revwalk **walk, const struct dd_repo *repo, const char *rev)
{
	git_object *obj = NULL, *c = NULL;
	int rc = -1;

	*walk = NULL;
	if (!rev && git_repository_head_unborn(repo->git) == 1)
		return DD_NOTFOUND;
	if (git_revparse_single(&obj, repo->git, rev ? rev : "HEAD") < 0) {
		dd_error_git(rev ? rev : "HEAD");
		return dd_error_wrap("cannot resolve revision");
	}
	if (git_object_peel(&c, obj, GIT_OBJECT_COMMIT) < 0) {
		dd_error("'%s' does not name a commit", rev ? rev : "HEAD");
		goto out;
	}
	/* topological: commits made within one second (a script, a test) still come after their children */
	if (git_revwalk_new(walk, repo->git) < 0 ||
	    git_revwalk_sorting(*walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME) < 0 ||
	    git_revwalk_push(*walk, git_object_id(c)) < 0) {
		dd_error_git("cannot walk the history");
		goto out;
	}
	rc = 0;
out:
	if (rc < 0) {
		git_revwalk_free(*walk);
		*walk = NULL;
	}
	git_object_free(c);
	git_object_free(obj);
	return rc;
}

int
dd_history_file_log(const struct dd_repo *repo, const char *rev, const char *relpath,
		    int (*fn)(const struct dd_history_change *c, void *arg), void *arg)
{
	git_revwalk *walk = NULL;
	git_commit *c = NULL;
	git_oid oid, blob;
	int rc = walk_from(&walk, repo, rev), err = 0, have;

	if (rc != 0)
		return rc == DD_NOTFOUND ? 0 : -1;
	while (rc == 0 && (err = git_revwalk_next(&oid, walk)) == 0) {
		if (git_commit_lookup(&c, repo->git, &oid) < 0) {
			rc = dd_error_git("cannot read a commit");
			break;
		}
		rc = changed_in(c, relpath, &blob, &have);
		if (rc == 1)
			rc = report_change(repo, c, &blob, have, fn, arg);
		git_commit_free(c);
		c = NULL;
	}
	if (rc == 0 && err != GIT_ITEROVER)
		rc = dd_error_git("cannot walk the history");
	git_revwalk_free(walk);
	return rc;
}

/* One .dnadata/refs tree read and parsed once: its ref files' names and snapshot ids (or errors). */
struct named_tree {
	git_oid oid;
	char **profiles, **values; /* value: 64 hex, or the parse error */
	int *ok;                   /* 1 parsed, 2 parsed and inline, 0 not parsed */
	size_t n;
};

static void
named_tree_read(struct named_tree *t, const struct dd_repo *repo, git_tree *tree, const char *rev)
{
	for (size_t i = 0; i < git_tree_entrycount(tree); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		const char *name = git_tree_entry_name(e);
		char *disp;
		git_blob *blob = NULL;
		struct dd_ref *ref = NULL;
		int ok;
		if (git_tree_entry_type(e) != GIT_OBJECT_BLOB || name[0] == '.')
			continue;
		disp = dd_asprintf("%s:.dnadata/refs/%s", rev, name);
		if (git_blob_lookup(&blob, repo->git, git_tree_entry_id(e)) < 0)
			ok = dd_error_git(disp) == 0;
		else
			ok = dd_ref_parse(&ref, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob), disp) == 0;
		t->profiles = dd_realloc(t->profiles, (t->n + 1) * sizeof(char *));
		t->values = dd_realloc(t->values, (t->n + 1) * sizeof(char *));
		t->ok = dd_realloc(t->ok, (t->n + 1) * sizeof(int));
		t->profiles[t->n] = dd_strdup(name);
		t->values[t->n] = dd_strdup(ok ? ref->snapshot : dd_error_last() ? dd_error_last() : "unreadable");
		t->ok[t->n++] = ok && dd_ref_is_inline(ref) ? 2 : ok;
		dd_error_clear();
		dd_ref_free(ref);
		git_blob_free(blob);
		free(disp);
	}
}

static void
named_trees_free(struct named_tree *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < t[i].n; k++) {
			free(t[i].profiles[k]);
			free(t[i].values[k]);
		}
		free(t[i].profiles);
		free(t[i].values);
		free(t[i].ok);
	}
	free(t);
}

/* The parsed .dnadata/refs tree of `refname`'s tip, from *trees or read now; NULL when it has none. */
static int
named_at(struct named_tree **out, struct named_tree **trees, size_t *ntrees, const struct dd_repo *repo,
	 const char *refname)
{
	git_tree *tree = NULL;
	int rc = refs_tree(&tree, repo, refname);

	*out = NULL;
	if (rc == DD_NOTFOUND)
		return 0;
	if (rc < 0)
		return -1;
	for (size_t i = 0; i < *ntrees && !*out; i++)
		if (!git_oid_cmp(&(*trees)[i].oid, git_tree_id(tree)))
			*out = &(*trees)[i];
	if (!*out) {
		*trees = dd_realloc(*trees, (*ntrees + 1) * sizeof(**trees));
		*out = &(*trees)[(*ntrees)++];
		memset(*out, 0, sizeof(**out));
		git_oid_cpy(&(*out)->oid, git_tree_id(tree));
		named_tree_read(*out, repo, tree, refname);
	}
	git_tree_free(tree);
	return 0;
}

int
dd_history_each_named(const struct dd_repo *repo, int (*fn)(const struct dd_history_named *nm, void *arg), void *arg)
{
	git_reference_iterator *it = NULL;
	struct named_tree *trees = NULL, *t;
	size_t ntrees = 0;
	const char *name;
	int rc = 0, err;

	if (git_reference_iterator_new(&it, repo->git) < 0)
		return dd_error_git("listing branches and tags");
	while (rc == 0 && (err = git_reference_next_name(&name, it)) == 0) {
		if (strncmp(name, "refs/heads/", 11) && strncmp(name, "refs/tags/", 10))
			continue;
		rc = named_at(&t, &trees, &ntrees, repo, name);
		for (size_t i = 0; rc == 0 && t && i < t->n; i++) {
			struct dd_history_named nm = { name, t->profiles[i], t->ok[i] ? t->values[i] : NULL,
						       t->ok[i] ? NULL : t->values[i], t->ok[i] == 2 };
			rc = fn(&nm, arg);
		}
	}
	if (rc == 0 && err != GIT_ITEROVER)
		rc = dd_error_git("listing branches and tags");
	git_reference_iterator_free(it);
	named_trees_free(trees, ntrees);
	return rc;
}

/* ---- every commit (the store's gc) ---- */

/* Tree ids already read, sorted: each distinct .dnadata/refs tree is parsed once. */
struct oidset {
	git_oid *v;
	size_t n, cap;
};

/* 1 when `oid` was not in the set (added now), 0 when it was. */
static int
oidset_add(struct oidset *s, const git_oid *oid)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = git_oid_cmp(&s->v[mid], oid);
		if (c == 0)
			return 0;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = dd_realloc(s->v, s->cap * sizeof(*s->v));
	}
	memmove(&s->v[lo + 1], &s->v[lo], (s->n - lo) * sizeof(*s->v));
	git_oid_cpy(&s->v[lo], oid);
	s->n++;
	return 1;
}

/* A ref file that does not parse: keep any snapshot it still names (`snapshot <64 hex>` at a line's start). */
static void
salvage_ids(char ***ids, size_t *n, const char *p, size_t len)
{
	for (size_t i = 0; i + 9 + 64 <= len; i++) {
		if ((i > 0 && p[i - 1] != '\n') || memcmp(p + i, "snapshot ", 9))
			continue;
		char id[65];
		size_t k;
		for (k = 0; k < 64 && strchr("0123456789abcdef", p[i + 9 + k]) && p[i + 9 + k]; k++)
			id[k] = p[i + 9 + k];
		if (k < 64)
			continue;
		id[64] = '\0';
		dd_ref_ids_add(ids, n, id);
	}
}

/* The id ref file `name` (its bytes `blob`) names; one that does not parse still gives any `snapshot` line. */
static void
add_blob_ids(char ***ids, size_t *n, git_blob *blob, const char *name)
{
	struct dd_ref *ref = NULL;
	const char *p = git_blob_rawcontent(blob);
	size_t len = (size_t)git_blob_rawsize(blob);

	if (dd_ref_parse(&ref, p, len, name) == 0) {
		if (ref->snapshot[0] && !dd_ref_is_inline(ref))
			dd_ref_ids_add(ids, n, ref->snapshot);
	} else {
		dd_error_clear();
		salvage_ids(ids, n, p, len);
	}
	dd_ref_free(ref);
}

static int
add_tree_ids(char ***ids, size_t *n, const struct dd_repo *repo, git_tree *tree)
{
	for (size_t i = 0; i < git_tree_entrycount(tree); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		git_blob *blob = NULL;

		if (git_tree_entry_type(e) != GIT_OBJECT_BLOB || git_tree_entry_name(e)[0] == '.')
			continue;
		if (git_blob_lookup(&blob, repo->git, git_tree_entry_id(e)) < 0)
			return dd_error_git("a ref file of .dnadata/refs");
		add_blob_ids(ids, n, blob, git_tree_entry_name(e));
		git_blob_free(blob);
	}
	return 0;
}

/*
 * Every commit the reflog of `ref` in `r` names (old and new ids): a commit
 * left by a reset or a rebase is one `git reset --hard HEAD@{1}` brings
 * back, so its snapshots stay. One that cannot be read (pruned) adds
 * nothing: it cannot be checked out either.
 */
static void
push_reflog(git_revwalk *walk, git_repository *r, const char *ref)
{
	git_reflog *log = NULL;

	if (git_reflog_read(&log, r, ref) < 0) {
		git_error_clear();
		return;
	}
	for (size_t i = 0, n = git_reflog_entrycount(log); i < n; i++) {
		const git_reflog_entry *e = git_reflog_entry_byindex(log, i);
		const git_oid *ids[2] = { git_reflog_entry_id_old(e), git_reflog_entry_id_new(e) };
		for (int k = 0; k < 2; k++)
			if (ids[k] && !git_oid_is_zero(ids[k]) && git_revwalk_push(walk, ids[k]) < 0)
				git_error_clear();
	}
	git_reflog_free(log);
}

/* The reflogs of HEAD and of every ref (refs/stash's is the stash list). */
static void
push_reflogs(git_revwalk *walk, git_repository *r)
{
	git_strarray names = { 0 };

	push_reflog(walk, r, "HEAD");
	if (git_reference_list(&names, r) < 0) {
		git_error_clear();
		return;
	}
	for (size_t i = 0; i < names.count; i++)
		push_reflog(walk, r, names.strings[i]);
	git_strarray_dispose(&names);
}

/*
 * The HEAD of every linked worktree (a detached one names commits no ref
 * does) and its reflog; one that cannot be read adds nothing.
 */
static void
push_worktree_heads(git_revwalk *walk, const struct dd_repo *repo)
{
	git_strarray names = { 0 };

	if (git_worktree_list(&names, repo->git) < 0) {
		git_error_clear();
		return;
	}
	for (size_t i = 0; i < names.count; i++) {
		git_worktree *wt = NULL;
		git_repository *wr = NULL;
		git_oid oid;
		if (git_worktree_lookup(&wt, repo->git, names.strings[i]) == 0 &&
		    git_repository_open_from_worktree(&wr, wt) == 0) {
			if (git_reference_name_to_id(&oid, wr, "HEAD") == 0)
				(void)git_revwalk_push(walk, &oid);
			git_error_clear();
			push_reflog(walk, wr, "HEAD");
		}
		git_error_clear();
		git_repository_free(wr);
		git_worktree_free(wt);
	}
	git_strarray_dispose(&names);
}

int
dd_history_ids_reachable(char ***ids, size_t *n, const struct dd_repo *repo, size_t *ncommits)
{
	git_revwalk *walk = NULL;
	struct oidset seen = { 0 };
	git_oid oid;
	size_t count = 0;
	int rc = -1, err;

	if (git_repository_is_shallow(repo->git) == 1) {
		dd_error("this clone is shallow: the snapshots its missing commits name cannot be read");
		dd_hint("run `git fetch --unshallow` first");
		return -1;
	}
	if (git_revwalk_new(&walk, repo->git) < 0 || git_revwalk_push_glob(walk, "*") < 0) {
		dd_error_git("walking the history of every ref");
		goto out;
	}
	err = git_revwalk_push_head(walk);
	if (err < 0 && err != GIT_EUNBORNBRANCH && err != GIT_ENOTFOUND) {
		dd_error_git("walking the history of HEAD");
		goto out;
	}
	git_error_clear();
	push_reflogs(walk, repo->git);
	push_worktree_heads(walk, repo);
	while ((err = git_revwalk_next(&oid, walk)) == 0) {
		git_commit *c = NULL;
		git_tree *tree = NULL;
		int r;
		count++;
		if (git_commit_lookup(&c, repo->git, &oid) < 0) {
			dd_error_git("reading a commit");
			goto out;
		}
		r = commit_refs_tree(&tree, repo, c);
		git_commit_free(c);
		if (r < 0)
			goto out;
		if (tree && oidset_add(&seen, git_tree_id(tree)))
			r = add_tree_ids(ids, n, repo, tree);
		git_tree_free(tree);
		if (r < 0)
			goto out;
	}
	if (err != GIT_ITEROVER) {
		dd_error_git("walking the history");
		goto out;
	}
	if (ncommits)
		*ncommits = count;
	rc = 0;
out:
	free(seen.v);
	git_revwalk_free(walk);
	return rc;
}

/* The ids the ref files staged in the git index of `r` name (a staged version the work tree has since replaced). */
static int
add_index_ids(char ***ids, size_t *n, git_repository *r)
{
	git_index *idx = NULL;

	if (git_repository_index(&idx, r) < 0)
		return dd_error_git("reading the git index");
	for (size_t i = 0; i < git_index_entrycount(idx); i++) {
		const git_index_entry *e = git_index_get_byindex(idx, i);
		git_blob *blob = NULL;
		if (strncmp(e->path, ".dnadata/refs/", 14) || strchr(e->path + 14, '/') || e->path[14] == '.')
			continue;
		if (git_blob_lookup(&blob, r, &e->id) < 0) {
			git_index_free(idx);
			return dd_error_git("a ref file staged in the git index");
		}
		add_blob_ids(ids, n, blob, e->path + 14);
		git_blob_free(blob);
	}
	git_index_free(idx);
	return 0;
}

/* The ids the ref files of the work tree at `workdir` name (none without .dnadata/refs). */
static int
add_workdir_refs(char ***ids, size_t *n, const char *workdir)
{
	char *dir = dd_path_join(workdir, ".dnadata/refs");
	char **v = NULL;
	size_t nv = 0;
	int rc = dd_ref_snapshot_ids(&v, &nv, dir, NULL, 0);

	if (rc < 0)
		dd_error_wrap("reading the ref files of the work tree %s", workdir);
	for (size_t i = 0; i < nv; i++)
		dd_ref_ids_add(ids, n, v[i]);
	dd_ref_ids_free(v, nv);
	free(dir);
	return rc;
}

int
dd_history_worktree_ref_ids(char ***ids, size_t *n, const struct dd_repo *repo)
{
	git_repository *mr = NULL;
	git_strarray names = { 0 };
	int rc = -1;

	if (git_repository_open(&mr, git_repository_commondir(repo->git)) < 0) {
		dd_error_git("opening the main repository");
		goto out;
	}
	if (git_repository_workdir(mr) &&
	    (add_workdir_refs(ids, n, git_repository_workdir(mr)) < 0 || add_index_ids(ids, n, mr) < 0))
		goto out;
	if (git_worktree_list(&names, repo->git) < 0) {
		dd_error_git("listing the linked worktrees");
		goto out;
	}
	for (size_t i = 0; i < names.count; i++) {
		git_worktree *wt = NULL;
		git_repository *wr = NULL;
		int r = 0;
		/* one whose folder is gone (prunable) has no ref files to read */
		if (git_worktree_lookup(&wt, repo->git, names.strings[i]) == 0 && git_worktree_validate(wt) == 0) {
			r = add_workdir_refs(ids, n, git_worktree_path(wt));
			if (r == 0 && git_repository_open_from_worktree(&wr, wt) == 0)
				r = add_index_ids(ids, n, wr);
		}
		git_error_clear();
		git_repository_free(wr);
		git_worktree_free(wt);
		if (r < 0)
			goto out;
	}
	rc = 0;
out:
	git_strarray_dispose(&names);
	git_repository_free(mr);
	return rc;
}
