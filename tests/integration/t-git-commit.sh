#!/usr/bin/env bash
# t-git-commit.sh: the automatic commit's promises on real git: a held git
# lock is reported by name before anything is dumped; a commit that fails
# after the ref file was written, or whose index cannot be written (that
# happens before HEAD moves), puts everything back (HEAD, index, the ref
# file and work tree as they were); a ref file that is a symbolic link, or lies under
# one, is refused and never committed as a link; a commit killed while it
# held .git/index.lock leaves a lock the next command knows as its own and removes.
. "$(dirname "$0")/../lib.sh"

setup() {
	repo_with_db gitc
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)"
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET v = 1"
}

# Everything a failed snapshot must leave as it was: HEAD, index, work tree, the ref, the dumped objects.
repo_state() {
	git rev-parse HEAD
	git ls-files -s
	git status --porcelain --untracked-files=all
	cat .dnadata/refs/clean
	find .git/dnadata -type f | sort
}

# New loose objects cannot be written (as on a full disk): what exists is
# packed, and each .git/objects/XX is a file where git needs a directory.
objects_unwritable() {
	git repack -adq
	git prune-packed
	local i d
	for i in $(seq 0 255); do
		d=.git/objects/$(printf %02x "$i")
		if [ -d "$d" ]; then rmdir "$d"; fi
		: >"$d"
	done
}

objects_writable() {
	rm -f .git/objects/[0-9a-f][0-9a-f]
}

test_held_index_lock_is_named_before_anything_is_dumped() {
	setup
	touch .git/index.lock
	local before
	before=$(repo_state)
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "error: the git index is locked by another git process (.git/index.lock exists)"
	assert_contains "$ERR" "hint: if no git process is running, the lock is stale: remove it with rm '$(pwd -P)/.git/index.lock'"
	assert_not_contains "$ERR" "of database" "nothing was dumped"
	assert_eq "$before" "$(repo_state)"
	rm .git/index.lock
	expect_ok git dnadata snapshot
	assert_eq "" "$(git status --porcelain)"
}

test_held_branch_lock_is_named_before_anything_is_dumped() {
	setup
	touch .git/refs/heads/main.lock
	local before
	before=$(repo_state)
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "error: refs/heads/main is locked by another git process (.git/refs/heads/main.lock exists)"
	assert_contains "$ERR" "rm '$(pwd -P)/.git/refs/heads/main.lock'"
	assert_not_contains "$ERR" "of database" "nothing was dumped"
	assert_eq "$before" "$(repo_state)"
	rm .git/refs/heads/main.lock
	expect_ok git dnadata snapshot
	assert_eq "" "$(git status --porcelain)"
}

# The hint's command, run where the user ran git dnadata (a subdirectory,
# in a repository whose path has a quote and a space), removes the lock.
test_stale_lock_hint_works_from_a_subdirectory() {
	need_pg
	DB=$(pg_newdb gitc)
	new_repo "$T/it's a repo"
	expect_ok git dnadata init --database "dbname=$DB"
	mkdir sub
	touch .git/index.lock
	cd sub
	expect_fail 1 git dnadata new-profile p2
	local cmd
	cmd=$(printf '%s\n' "$ERR" | sed -n 's/^hint: .* remove it with \(.*\) and run the command again$/\1/p')
	assert_contains "$cmd" "rm "
	eval "$cmd"
	assert_no_file ../.git/index.lock
	expect_ok git dnadata new-profile p2
	assert_eq "" "$(git status --porcelain)"
}

test_commit_failing_after_the_ref_was_written_puts_the_ref_back() {
	setup
	local ref head
	ref=$(cat .dnadata/refs/clean)
	head=$(git rev-parse HEAD)
	objects_unwritable
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "of database" "the dump ran; the commit failed"
	assert_contains "$ERR" "error: committing .dnadata/refs/clean: "
	assert_eq "$ref" "$(cat .dnadata/refs/clean)" "the ref file is put back"
	assert_eq "$head" "$(git rev-parse HEAD)"
	assert_eq "" "$(git status --porcelain)"
	assert_no_file .git/index.lock
	objects_writable
	expect_ok git dnadata snapshot
	assert_contains "$(cat .dnadata/refs/clean)" "snapshot $OUT"
	assert_eq "" "$(git status --porcelain)"
}

test_index_that_cannot_be_written_never_moves_head() {
	setup
	local ref head reflog
	ref=$(cat .dnadata/refs/clean)
	head=$(git rev-parse HEAD)
	reflog=$(git reflog main | wc -l)
	# white box: the new index is written to .git/index.dnadata(.lock) first;
	# a directory there makes that write fail, before HEAD moves
	mkdir .git/index.dnadata.lock
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "error: committing .dnadata/refs/clean: cannot write the git index"
	assert_not_contains "$ERR" "commit undone"
	assert_eq "$reflog" "$(git reflog main | wc -l)" "HEAD never moved (no commit and undo in the reflog)"
	assert_eq "$head" "$(git rev-parse HEAD)"
	assert_eq "$ref" "$(cat .dnadata/refs/clean)" "the ref file is put back"
	assert_eq "" "$(git status --porcelain)"
	assert_no_file .git/index.lock
	rmdir .git/index.dnadata.lock
	expect_ok git dnadata snapshot
	assert_eq "" "$(git status --porcelain)"
}

# snapshot_killed_renaming FILE: `git dnadata snapshot` killed (SIGKILL, by strace) as it renames .git/FILE (strace
# -P matches a rename by its first path): index.dnadata, the new index put into index.lock (HEAD not moved
# yet); index.lock, the lock put in place as the index (HEAD moved).
snapshot_killed_renaming() {
	type -P strace >/dev/null || fail "this test needs strace"
	run strace -f -o /dev/null -P "$(pwd -P)/.git/$1" -e trace=rename,renameat,renameat2 \
		-e inject=rename,renameat,renameat2:signal=SIGKILL:when=1 git-dnadata snapshot
	[ "$RC" = 137 ] || fail "the snapshot was not killed renaming $1 (exit $RC): $ERR"
	assert_file .git/index.lock
}

# A commit killed while it holds .git/index.lock leaves the lock behind; it is git-dnadata's own (one file
# with .git/index.lock.dnadata), so the next command removes it, says so, and commits; git's own lock files
# are still waited for and named (test_held_index_lock_is_named_before_anything_is_dumped).
test_an_index_lock_left_by_a_killed_commit_is_removed_by_the_next_one() {
	setup
	local head
	head=$(git rev-parse HEAD)
	snapshot_killed_renaming index.dnadata
	assert_eq "$head" "$(git rev-parse HEAD)" "HEAD moved before the new index was in the lock"
	expect_ok git dnadata snapshot
	assert_contains "$ERR" "warning: removed .git/index.lock, left by a git dnadata process killed while it committed"
	assert_contains "$(cat .dnadata/refs/clean)" "snapshot $OUT"
	assert_eq "" "$(git status --porcelain)"
	assert_eq "" "$(ls .git | grep -F .dnadata || true)" "a file of the lock is left"
}

test_an_index_lock_left_after_head_moved_is_removed_and_the_index_made_to_match() {
	setup
	local head
	head=$(git rev-parse HEAD)
	snapshot_killed_renaming index.lock
	assert_ne "$head" "$(git rev-parse HEAD)" "HEAD did not move before the index was put in place"
	expect_ok git dnadata snapshot # nothing changed: no new commit, and the index is brought up to HEAD
	assert_contains "$ERR" "warning: removed .git/index.lock, left by a git dnadata process killed while it committed"
	assert_contains "$ERR" "nothing changed"
	assert_eq "" "$(git status --porcelain)"
	assert_eq "" "$(ls .git | grep -F .dnadata || true)" "a file of the lock is left"
}

test_symlinked_ref_file_is_refused_and_not_committed() {
	setup
	mkdir "$T/elsewhere"
	mv .dnadata/refs/clean "$T/elsewhere/ref"
	ln -s "$T/elsewhere/ref" .dnadata/refs/clean
	local head
	head=$(git rev-parse HEAD)
	psql_q "$DB" "UPDATE t SET v = 0" # the data of the ref's snapshot: "nothing changed" before the fix
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "error: cannot commit .dnadata/refs/clean: .dnadata/refs/clean is a symbolic link"
	assert_not_contains "$ERR" "of database" "refused before the dump"
	# without a commit, reading the ref refuses it
	expect_fail 1 git dnadata snapshot --no-commit
	assert_contains "$ERR" "error: .dnadata/refs/clean is not a regular file but a symbolic link"
	assert_eq "$head" "$(git rev-parse HEAD)" "no commit"
	assert_eq "100644" "$(git ls-tree HEAD .dnadata/refs/clean | cut -c1-6)"
	assert_eq "$T/elsewhere/ref" "$(readlink .dnadata/refs/clean)" "the link is left alone"
}

test_ref_under_a_symlinked_directory_is_never_committed() {
	setup
	mv .dnadata/refs "$T/refs"
	ln -s "$T/refs" .dnadata/refs
	local head
	head=$(git rev-parse HEAD)
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "cannot commit .dnadata/refs/clean: .dnadata/refs is a symbolic link"
	assert_not_contains "$ERR" "of database" "refused before the dump"
	assert_eq "$head" "$(git rev-parse HEAD)" "no commit"
	assert_eq "" "$(git ls-tree -r HEAD .dnadata | grep ^120000 || true)" "no link in any commit"
}

run_tests
