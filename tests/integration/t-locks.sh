#!/usr/bin/env bash
# t-locks.sh: commands working on one database take turns. Two profiles may
# share a working database; a restore must not swap it (or rewrite its
# records) while a snapshot of the other profile is reading it. Two
# snapshots of one profile take turns, the waiting one naming the holder;
# a lock whose holder died (kill -9) is taken over with one line; the
# checkout hooks never wait for a lock, and pre-push takes none.
. "$(dirname "$0")/../lib.sh"

test_restore_waits_for_a_snapshot_of_another_profile_on_the_same_database() {
	repo_with_db locks
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"
	expect_ok git dnadata new-profile other
	expect_ok git dnadata snapshot clean
	local oid
	oid=$(psql_q postgres "SELECT oid FROM pg_database WHERE datname = '$DB'")
	psql_q "$DB" "INSERT INTO t VALUES (2)"
	hold_lock "$DB" t
	DNADATA_LOCK_WAIT_TIMEOUT=0 git dnadata snapshot other >"$T/snap.out" 2>"$T/snap.err" &
	local snap=$!
	wait_until "the snapshot waits for table t" snapshot_waits_for_table
	git dnadata restore clean --force >"$T/restore.out" 2>"$T/restore.err" &
	local restore=$!
	wait_until "the restore says it waits" grep -q "waiting for another git dnadata run on database $DB" "$T/restore.err"
	# while the snapshot reads it, the database is neither swapped nor renamed
	assert_eq "$oid" "$(psql_q postgres "SELECT oid FROM pg_database WHERE datname = '$DB'")"
	release_lock
	local rc=0
	wait "$snap" || rc=$?
	[ "$rc" = 0 ] || fail "the snapshot failed: $(cat "$T/snap.err")"
	wait "$restore" || rc=$?
	[ "$rc" = 0 ] || fail "the restore failed: $(cat "$T/restore.err")"
	# the snapshot saw rows 1 and 2; the restore then brought clean's row 1 back
	assert_eq 1 "$(psql_q "$DB" "SELECT count(*) FROM t")"
	run git dnadata status
	assert_contains "$OUT" "holds snapshot $(sed -n 's/^snapshot //p' .dnadata/refs/clean | cut -c1-12) (profile clean"
}

# start_paused_snapshot [ARG...]: hold table `pause` (lib.sh's hold_lock) and start `git-dnadata snapshot ARG...`
# (itself: the pid that holds the locks, not the git wrapper's) in the background; return once it waits for the
# table, i.e. holds the profile's and the database's locks. SNAP is its pid.
start_paused_snapshot() {
	psql_q "$DB" "CREATE TABLE IF NOT EXISTS pause (id int PRIMARY KEY)"
	hold_lock "$DB" pause
	DNADATA_LOCK_WAIT_TIMEOUT=0 git-dnadata snapshot "$@" >"$T/snap.out" 2>"$T/snap.err" </dev/null &
	SNAP=$!
	wait_until "the snapshot waits for table pause" snapshot_waits_for_table
}

# the lock file of profile $1
profile_lock() { echo "$T/repo/.git/dnadata/locks/$1"; }

test_two_snapshots_of_one_profile_take_turns_and_the_waiting_one_names_the_holder() {
	repo_with_db turns
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1); CREATE TABLE u (id int PRIMARY KEY)"
	expect_ok git dnadata snapshot
	local first=$OUT commits
	commits=$(git rev-list --count HEAD)
	start_paused_snapshot
	# a change the paused snapshot may or may not see; the second one sees it
	psql_q "$DB" "INSERT INTO u VALUES (1)"
	git dnadata snapshot >"$T/second.out" 2>"$T/second.err" </dev/null &
	local second=$!
	wait_until "the second snapshot says whom it waits for" grep -q \
		"waiting for another git dnadata run on profile clean to finish (held by pid $SNAP, git dnadata snapshot, since " \
		"$T/second.err"
	assert_contains "$(cat .dnadata/refs/clean)" "snapshot $first" "nothing moved while both run"
	release_lock
	local rc=0
	wait "$SNAP" || rc=$?
	[ "$rc" = 0 ] || fail "the first snapshot failed: $(cat "$T/snap.err")"
	wait "$second" || rc=$?
	[ "$rc" = 0 ] || fail "the second snapshot failed: $(cat "$T/second.err")"
	local a b
	a=$(cat "$T/snap.out") b=$(cat "$T/second.out")
	# the second ran after the first: its id is the ref's; the first's is in the history just below, or the same
	assert_contains "$(git show HEAD:.dnadata/refs/clean)" "snapshot $b"
	if [ "$a" = "$b" ]; then
		assert_eq $((commits + 1)) "$(git rev-list --count HEAD)" "one commit"
		assert_contains "$(cat "$T/second.err")" "nothing changed"
	else
		assert_eq $((commits + 2)) "$(git rev-list --count HEAD)" "a commit each, in turn"
		assert_contains "$(git show HEAD~1:.dnadata/refs/clean)" "snapshot $a"
	fi
	assert_eq "" "$(git status --porcelain)"
	expect_ok git dnadata restore --force
	assert_eq 1 "$(psql_q "$DB" "SELECT count(*) FROM u")" "the ref's snapshot is the latest data"
}

test_a_lock_left_by_a_killed_snapshot_is_taken_over_with_one_line() {
	repo_with_db stale
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"
	expect_ok git dnadata snapshot
	local first=$OUT head
	head=$(git rev-parse HEAD)
	start_paused_snapshot
	kill -9 "$SNAP"
	wait "$SNAP" || true
	release_lock
	assert_contains "$(cat "$(profile_lock clean)")" "$SNAP " "the dead holder's record is left"
	assert_eq "$head" "$(git rev-parse HEAD)"
	psql_q "$DB" "INSERT INTO t VALUES (2)"
	expect_ok git dnadata snapshot
	# one line for both locks it held (the profile's and the database's)
	assert_eq 1 "$(printf '%s\n' "$ERR" | grep -c '^warning: ')" "one warning line: $ERR"
	assert_contains "$ERR" "warning: taking over lock $(profile_lock clean) left by pid $SNAP, git dnadata snapshot, since "
	assert_contains "$ERR" ", which is no longer running"
	assert_ne "$first" "$OUT"
	assert_contains "$(git show HEAD:.dnadata/refs/clean)" "snapshot $OUT"
	# released: the next run has nothing to say
	assert_eq "" "$(cat "$(profile_lock clean)")" "a released lock keeps no record"
	expect_ok git dnadata snapshot
	assert_not_contains "$ERR" "taking over"
}

test_a_lock_record_of_a_gone_or_reused_pid_is_taken_over() {
	repo_with_db reused
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"
	expect_ok git dnadata snapshot
	local lock gone
	lock=$(profile_lock clean)
	# a pid that is gone
	sh -c 'exit 0' &
	gone=$!
	wait "$gone"
	printf '%s 12345 1764489600 git dnadata snapshot\n' "$gone" >"$lock"
	psql_q "$DB" "INSERT INTO t VALUES (2)"
	expect_ok git dnadata snapshot
	assert_contains "$ERR" "warning: taking over lock $lock left by pid $gone, git dnadata snapshot, since "
	# a pid in use by another process (this shell) that started at another time: reused
	printf '%s 1 1764489600 git dnadata restore\n' "$BASHPID" >"$lock"
	psql_q "$DB" "INSERT INTO t VALUES (3)"
	expect_ok git dnadata snapshot
	assert_contains "$ERR" "warning: taking over lock $lock left by pid $BASHPID, git dnadata restore, since "
	# a live process with its own start time, whose record is there but which holds no lock: the flock decides
	local me=$BASHPID started
	started=$(awk '{ sub(/.*\) /, ""); print $20 }' "/proc/$me/stat")
	printf '%s %s 1764489600 git dnadata restore\n' "$me" "$started" >"$lock"
	psql_q "$DB" "INSERT INTO t VALUES (4)"
	expect_ok git dnadata snapshot
	assert_not_contains "$ERR" "taking over"
	# garbage is no holder at all
	printf '\033[2Jnot a record' >"$lock"
	psql_q "$DB" "INSERT INTO t VALUES (5)"
	expect_ok git dnadata snapshot
	assert_not_contains "$ERR" "warning"
	assert_eq 5 "$(psql_q "$DB" "SELECT count(*) FROM t")"
}

# main holds snapshot X, branch b snapshot Y; on b, the database holds Y.
hook_branches() {
	repo_with_db hooklock --store "file://$T/store" "$@"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'x')"
	expect_ok git dnadata snapshot
	X=$OUT
	git checkout -q -b b
	psql_q "$DB" "UPDATE t SET v = 'y'"
	expect_ok git dnadata snapshot
	Y=$OUT
}

# expect_hook_skipped CMD...: CMD succeeds at once and its hook printed one line saying what to run later;
# the database still holds Y.
expect_hook_skipped() {
	expect_ok "$@"
	assert_eq 1 "$(printf '%s\n' "$ERR" | grep -c '^git-dnadata: ')" "one line from the hook: $ERR"
	assert_contains "$ERR" "the database was not switched"
	assert_contains "$ERR" "run \`git dnadata restore\` to switch the database to snapshot ${X:0:12}"
	assert_eq y "$(psql_q "$DB" "SELECT v FROM t")"
}

test_checkout_merge_and_rewrite_hooks_skip_while_a_snapshot_holds_the_lock() {
	hook_branches
	start_paused_snapshot --no-commit
	expect_hook_skipped git checkout -q main
	assert_contains "$ERR" "another git dnadata command is working on database $DB (pid $SNAP, git dnadata snapshot, since "
	# post-merge and post-rewrite on main (the ref names X, the database holds Y)
	git checkout -q -b c
	git commit -q --allow-empty -m "c"
	git checkout -q main 2>/dev/null
	expect_hook_skipped git merge -q --no-edit c
	expect_hook_skipped git commit -q --amend --allow-empty -m "amended"
	release_lock
	wait "$SNAP" || fail "the snapshot failed: $(cat "$T/snap.err")"
	git checkout -q -- .dnadata
	# what the hook said to run works once the snapshot is done
	expect_ok git dnadata restore
	assert_eq x "$(psql_q "$DB" "SELECT v FROM t")"
}

test_checkout_hook_does_not_wait_for_a_held_media_folder_lock() {
	repo_with_db hookmedia --store "file://$T/store"
	printf 'media = media\n' >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	mkdir media
	printf 'x\n' >media/f
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'x')"
	expect_ok git dnadata snapshot
	git checkout -q -b b
	printf 'y\n' >media/f
	psql_q "$DB" "UPDATE t SET v = 'y'"
	expect_ok git dnadata snapshot
	local lock
	lock=$(ls .git/dnadata/locks/media-*.lock)
	[ -n "$lock" ] || fail "no media folder lock"
	coproc HOLDER { flock "$lock" sh -c 'echo held; read x'; }
	local line
	read -r line <&"${HOLDER[0]}"
	assert_eq held "$line"
	# without a bound a blocked hook would hang the test; it must return at once
	run timeout 120 git checkout -q main
	[ "$RC" != 124 ] || fail "the checkout hook waited for the media folder's lock"
	assert_eq 0 "$RC" "$ERR"
	assert_eq 1 "$(printf '%s\n' "$ERR" | grep -c '^git-dnadata: ')" "one line from the hook: $ERR"
	assert_contains "$ERR" "another git dnadata command is working on media folder $T/repo/media"
	assert_eq y "$(psql_q "$DB" "SELECT v FROM t")"
	assert_eq y "$(cat media/f)"
	echo done >&"${HOLDER[1]}"
	wait "$HOLDER_PID" || true
	expect_ok git dnadata restore
	assert_eq x "$(psql_q "$DB" "SELECT v FROM t")"
	assert_eq x "$(cat media/f)"
}

# pre-push takes none of these locks: it reads only snapshots that are complete (objects, then index, then
# manifest, then the ref), so a snapshot running meanwhile cannot make it wait or read half of one.
test_pre_push_is_not_held_up_by_a_running_snapshot() {
	repo_with_db prepush --store "file://$T/store"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"
	git init -q --bare "$T/remote.git"
	git remote add origin "$T/remote.git"
	expect_ok git dnadata snapshot --dump-only
	local id=$OUT
	assert_no_file "$T/store/snapshots/$id"
	psql_q "$DB" "INSERT INTO t VALUES (2)"
	start_paused_snapshot
	run timeout 120 git push -q origin main
	[ "$RC" != 124 ] || fail "pre-push waited for the running snapshot"
	assert_eq 0 "$RC" "$ERR"
	assert_file "$T/store/snapshots/$id"
	release_lock
	wait "$SNAP" || fail "the snapshot failed: $(cat "$T/snap.err")"
}

run_tests
