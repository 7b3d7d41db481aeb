#!/usr/bin/env bash
# t-git-index.sh: what an automatic commit does to the user's git index, on
# real git. An entry git can only trust after looking at the file ("racily
# clean": the file changed in the same second the index was written) stays
# one git looks at, so a change of the same size is not lost.
. "$(dirname "$0")/../lib.sh"

# a = aaaa committed, then bbbb (same size) with the same mtime as the
# index entry and the index file itself: git must read the file to see it.
racily_changed_file() {
	echo aaaa >a
	touch -d '2020-01-01 00:00:00' a
	git add a
	git commit -q -m a
	echo bbbb >a
	touch -d '2020-01-01 00:00:00' a .git/index
	# status without writing the index (a normal status would mark the entry itself)
	assert_eq " M a" "$(git --no-optional-locks status --porcelain -- a)" "set-up: git sees the change"
}

test_new_profile_keeps_a_racily_clean_change_visible() {
	repo_with_db gidx
	racily_changed_file
	expect_ok git dnadata new-profile p2
	assert_eq " M a" "$(git status --porcelain -- a)"
	git commit -qam 'b'
	assert_eq "bbbb" "$(git show HEAD:a)" "git commit -a commits the change"
}

test_snapshot_keeps_a_racily_clean_change_visible() {
	repo_with_db gidx
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY)"
	racily_changed_file
	expect_ok git dnadata snapshot
	assert_eq " M a" "$(git status --porcelain -- a)"
}

run_tests
