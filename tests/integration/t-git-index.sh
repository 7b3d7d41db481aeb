#!/usr/bin/env bash
# t-git-index.sh: what an automatic commit does to the user's git index, on
# real git. An entry git can only trust after looking at the file ("racily
# clean": the file changed in the same second the index was written) stays
# one git looks at, so a change of the same size is not lost. The new index
# is complete in index.lock before HEAD moves: a Ctrl-C at the moment HEAD
# moves still ends with the index written; the last rename failing moves
# HEAD back, and if even that fails the error says so and its hint fixes it.
#
# Failures and signals are injected with strace at exact system calls
# (strace -P matches a rename by its first path: the file being renamed).
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

# in_calls CALLS SPEC PATH... -- CMD...: run CMD under strace, injecting SPEC
# (strace's inject= tail: error=EIO:when=2, signal=SIGINT:when=1) into the
# system calls CALLS (rename,renameat) on PATH... (counted together, in the
# order they happen; a call on a descriptor counts for the path it was opened as).
in_calls() {
	local calls=$1 spec=$2 paths=()
	shift 2
	while [ "$1" != -- ]; do
		paths+=(-P "$1")
		shift
	done
	shift
	type -P strace >/dev/null || fail "this test needs strace"
	strace -f -qq -o "$T/strace.log" "${paths[@]}" -e trace="$calls" -e inject="$calls:$spec" "$@"
}

# in_renames SPEC PATH... -- CMD...: in_calls on the renames of PATH...
in_renames() { in_calls rename,renameat,renameat2 "$@"; }

snapshot_setup() {
	repo_with_db gidx
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)"
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET v = 1"
	G=$(pwd -P)/.git
}

test_index_that_cannot_be_put_in_place_moves_head_back() {
	snapshot_setup
	local head ref
	head=$(git rev-parse HEAD)
	ref=$(cat .dnadata/refs/clean)
	# the one rename left after HEAD moved: index.lock onto the index
	run in_renames error=EIO:when=1 "$G/index.lock" -- git dnadata snapshot
	assert_eq 1 "$RC" "exit code; stderr: $ERR"
	assert_contains "$ERR" "error: committing .dnadata/refs/clean: commit undone: cannot write the git index .git/index: Input/output error"
	assert_eq "$head" "$(git rev-parse HEAD)" "HEAD moved back"
	assert_eq "$ref" "$(cat .dnadata/refs/clean)" "the ref file is put back"
	assert_eq "" "$(git status --porcelain)"
	assert_no_file .git/index.lock
}

test_head_that_cannot_be_moved_back_is_reported_with_a_working_hint() {
	snapshot_setup
	local head
	head=$(git rev-parse HEAD)
	# renames of main.lock and index.lock: HEAD moves (1st), then the index (2nd) and moving HEAD back (3rd) fail
	run in_renames error=EIO:when=2+ "$G/index.lock" "$G/refs/heads/main.lock" -- git dnadata snapshot
	assert_eq 1 "$RC" "exit code; stderr: $ERR"
	assert_eq 1 "$(grep -c '^error: ' <<<"$ERR")" "one error line: $ERR"
	local new
	new=$(git rev-parse HEAD)
	assert_ne "$head" "$new" "HEAD kept the commit"
	assert_contains "$ERR" "error: committing .dnadata/refs/clean: refs/heads/main moved to $new but the git index could not be written (cannot write the git index .git/index: Input/output error), and cannot move refs/heads/main back: "
	assert_eq "$(git show HEAD:.dnadata/refs/clean)" "$(cat .dnadata/refs/clean)" "the ref file is as committed"
	assert_no_file .git/index.lock
	local cmd
	cmd=$(sed -n "s/^hint: .* run \(.*\) in the work tree's top directory to make the index match it$/\1/p" <<<"$ERR")
	assert_eq "git reset -q -- '.dnadata/refs/clean'" "$cmd"
	eval "$cmd"
	assert_eq "" "$(git status --porcelain)" "the hint makes the index match"
	expect_ok git dnadata snapshot
	assert_eq "$new" "$(git rev-parse HEAD)" "the snapshot is committed: nothing to commit again"
}

# Ctrl-C exactly when HEAD moves: the commit completes (index written, no
# lock left), then the signal ends the command.
test_sigint_as_head_moves_still_writes_the_index() {
	repo_with_db gidx
	G=$(pwd -P)/.git
	local head
	head=$(git rev-parse HEAD)
	run in_renames signal=SIGINT:when=1 "$G/refs/heads/main.lock" -- git dnadata new-profile p2
	assert_eq 130 "$RC" "ended by SIGINT; stderr: $ERR"
	assert_eq "$head" "$(git rev-parse HEAD~1)" "one commit"
	assert_contains "$(git show HEAD:.dnadata/profiles.ini)" '[profile "p2"]'
	assert_no_file .git/index.lock
	assert_eq "" "$(git status --porcelain)"
}

# The branch moved by another writer between our read of HEAD and our
# compare-and-swap: the commit is built again on the new HEAD. The point is
# exact: strace stops git-dnadata (SIGSTOP) right after its last read of
# refs/heads/main before it locks the branch (counted in a dry run of the same
# command on a copy of the repository), and the other writer moves the branch
# while it is stopped.
test_branch_moved_by_another_writer_during_the_commit_is_committed_on() {
	new_repo
	echo a >a && git add a && git commit -q -m a
	expect_ok git dnadata init
	type -P strace >/dev/null || fail "this test needs strace"
	local main=$PWD/.git/refs/heads/main reads
	cp -a "$PWD" "$T/dry"
	(cd "$T/dry" && strace -f -qq -o "$T/dry.log" \
		-e trace=openat git-dnadata new-profile p2 >/dev/null 2>&1) || fail "the dry run failed"
	# opens of the branch file before the one that creates its lock
	reads=$(sed -n '/refs\/heads\/main.lock/q; /refs\/heads\/main"/p' "$T/dry.log" | wc -l)
	[ "$reads" -gt 0 ] || fail "the dry run never read the branch"
	strace -f -qq -o "$T/run.log" -P "$main" \
		-e trace=openat -e inject=openat:signal=SIGSTOP:when="$reads" git-dnadata new-profile p2 \
		>"$T/out" 2>"$T/err" </dev/null &
	local tracer=$! pid=
	# strace logs the group stop our SIGSTOP causes (a plain syscall stop,
	# also state 't', is not it)
	for _ in $(seq "$DD_WAIT_POLLS"); do
		grep -q -- "--- stopped by SIGSTOP ---" "$T/run.log" 2>/dev/null && pid=$(pgrep -x -P "$tracer" git-dnadata) && break
		sleep 0.05
	done
	if [ -z "$pid" ]; then
		kill -9 "$tracer" 2>/dev/null
		fail "git-dnadata never stopped at its read of the branch: $(cat "$T/run.log")"
	fi
	assert_no_file .git/refs/heads/main.lock
	local theirs
	theirs=$(git commit-tree -p HEAD -m "theirs" "HEAD^{tree}")
	git update-ref refs/heads/main "$theirs"
	kill -CONT "$pid"
	wait "$tracer" || fail "new-profile failed: $(cat "$T/err")"
	assert_eq "$theirs" "$(git rev-parse HEAD~1)" "our commit is on top of the other writer's"
	assert_contains "$(git log -1 --format=%s)" "add profile p2"
	assert_contains "$(git show HEAD:.dnadata/profiles.ini)" '[profile "p2"]'
	assert_eq "" "$(git status --porcelain)"
	assert_eq "" "$(git diff --cached HEAD --stat)"
}


# kill -9 while libgit2 holds the branch's lock file, at the two moments it
# can be left: before the new id is written into it (empty) and before it is
# renamed onto the branch (the new id). The next commit removes it, saying so,
# and commits; HEAD never moved.
killed_as_head_moves() {
	snapshot_setup
	local head
	head=$(git rev-parse HEAD)
	run in_calls "$1" "error=EIO:signal=SIGKILL:when=1" "$G/refs/heads/main.lock" -- git dnadata snapshot
	assert_eq 137 "$RC" "killed; stderr: $ERR"
	assert_file .git/refs/heads/main.lock
	assert_eq "$2" "$(wc -c <.git/refs/heads/main.lock)" "what the lock file holds"
	assert_eq "$head" "$(git rev-parse HEAD)" "HEAD did not move"
	HEAD_BEFORE=$head
}

assert_next_commit_removes_the_lock() {
	expect_ok git dnadata snapshot
	assert_contains "$ERR" "warning: removed .git/refs/heads/main.lock, left by a git dnadata process killed while it moved refs/heads/main"
	assert_no_file .git/refs/heads/main.lock
	assert_eq "$HEAD_BEFORE" "$(git rev-parse HEAD~1)" "one commit on the old HEAD"
	assert_eq "$(git show HEAD:.dnadata/refs/clean)" "$(cat .dnadata/refs/clean)" "the ref file is committed"
	assert_eq "" "$(git status --porcelain)"
	expect_ok git dnadata verify
}

test_branch_lock_left_empty_by_a_kill_is_removed_by_the_next_commit() {
	killed_as_head_moves write,writev,pwrite64 0
	assert_next_commit_removes_the_lock
}

test_branch_lock_left_full_by_a_kill_is_removed_by_the_next_commit() {
	killed_as_head_moves rename,renameat,renameat2 41
	assert_next_commit_removes_the_lock
}

# The same kill, then the lock file holds another commit's id (not what the
# killed process wrote): someone else's, reported and left alone.
test_branch_lock_with_another_id_is_reported_not_removed() {
	killed_as_head_moves rename,renameat,renameat2 41
	git rev-parse HEAD >.git/refs/heads/main.lock
	run git dnadata snapshot
	assert_eq 1 "$RC" "exit code; stderr: $ERR"
	assert_contains "$ERR" "error: refs/heads/main is locked by another git process (.git/refs/heads/main.lock exists)"
	assert_file .git/refs/heads/main.lock
	assert_eq "$HEAD_BEFORE" "$(git rev-parse HEAD)" "HEAD did not move"
}

# The same kill, then the lock file is made again 10 s after the note (the id the killed process wrote, empty):
# a later git command's (git can hold a ref lock empty or with the branch's id for seconds), left alone.
test_branch_lock_made_well_after_the_note_is_reported_not_removed() {
	killed_as_head_moves rename,renameat,renameat2 41
	assert_file .git/dnadata-ref-move
	: >.git/refs/heads/main.lock
	touch -d "@$(($(stat -c %Y .git/dnadata-ref-move) + 10))" .git/refs/heads/main.lock
	run git dnadata snapshot
	assert_eq 1 "$RC" "exit code; stderr: $ERR"
	assert_contains "$ERR" "error: refs/heads/main is locked by another git process (.git/refs/heads/main.lock exists)"
	assert_file .git/refs/heads/main.lock
	assert_eq "$HEAD_BEFORE" "$(git rev-parse HEAD)" "HEAD did not move"
}

run_tests
