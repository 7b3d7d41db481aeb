#!/usr/bin/env bash
# t-media-switch.sh: a media folder's files are never lost by a switch
# (issue 17 review): no working database to keep them with, files written
# during the build, another worktree's stashes seen by gc, a put-back that
# fails, and the records that name what was set aside.
. "$(dirname "$0")/../lib.sh"
export DNADATA_SKIP=1

# A repository on a fresh database whose profile "clean" has media = var/uploads holding a.txt, snapshotted.
setup_media() {
	repo_with_db msw
	MEDIA=var/uploads
	printf 'media = %s\n' "$MEDIA" >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')"
	mkdir -p "$MEDIA"
	printf 'a\n' >"$MEDIA/a.txt"
	expect_ok git dnadata snapshot
}

# The number of private snapshots in the cache.
privs() { find .git/dnadata/cache/private -type f -not -path '*/packs/*' -not -path '*/index/*' 2>/dev/null | wc -l; }

test_without_a_working_database_files_no_snapshot_has_are_not_removed() {
	setup_media
	psql_q postgres "DROP DATABASE \"$DB\""
	printf 'mine\n' >"$MEDIA/mine.txt"
	run git dnadata restore
	[ -e "$MEDIA/mine.txt" ] || fail "mine.txt was removed and nothing names it: $ERR"
	[ "$RC" != 0 ] || fail "restore succeeded without keeping mine.txt anywhere: $ERR"
	assert_contains "$ERR" "no working database"
	assert_contains "$ERR" "hint:"
	mv "$MEDIA" "$T/kept"
	expect_ok git dnadata restore
	[ -e "$MEDIA/a.txt" ] || fail "a.txt not restored once the folder was moved away: $ERR"
	[ -e "$T/kept/mine.txt" ] || fail "mine.txt is gone from the folder moved away"
}

test_a_failed_put_back_is_put_back_by_the_next_restore_and_kept_from_gc() {
	type -P strace >/dev/null || fail "this test needs strace (to make renames fail)"
	setup_media
	git checkout -q -b B
	rm "$MEDIA/a.txt"
	printf 'b\n' >"$MEDIA/b.txt"
	mkdir "$MEDIA/many"
	for i in 1 2 3 4 5; do printf 'y %s\n' "$i" >"$MEDIA/many/$i.txt"; done
	expect_ok git dnadata snapshot
	git checkout -q main
	expect_ok git dnadata restore
	printf 'mine\n' >"$MEDIA/aa-mine.txt"
	git checkout -q B
	# every rename from the second on fails: the apply fails, and so does putting the folder back
	run strace -f -o /dev/null -e trace=renameat,renameat2,linkat -e "inject=renameat,renameat2,linkat:error=ENOSPC:when=2+" \
		git-dnadata restore
	[ "$RC" != 0 ] || fail "the restore did not fail under ENOSPC: $ERR"
	[ -e "$MEDIA/aa-mine.txt" ] && fail "aa-mine.txt still there: the put-back did not fail, nothing tested"
	assert_contains "$ERR" "next \`git dnadata restore\` puts back first"
	assert_not_contains "$ERR" "run \`git dnadata restore\` again"
	expect_ok git dnadata gc
	expect_ok git dnadata restore
	expect_ok git dnadata gc
	git checkout -q main
	expect_ok git dnadata restore
	[ -e "$MEDIA/aa-mine.txt" ] || fail "aa-mine.txt is lost: $(ls "$MEDIA" | xargs)"
	assert_eq "mine" "$(cat "$MEDIA/aa-mine.txt")"
}

test_gc_in_one_worktree_keeps_another_worktrees_set_aside() {
	setup_media
	local main=$PWD db2 name
	db2=$(pg_newdb msw2)
	git worktree add -q "$T/wt2" -b feature
	cd "$T/wt2"
	expect_ok git dnadata use clean --worktree-database "$db2"
	expect_ok git dnadata restore
	printf 'mine\n' >"$MEDIA/mine.txt"
	expect_ok git dnadata restore
	assert_no_file "$MEDIA/mine.txt"
	expect_ok git dnadata stash list
	name=$(printf '%s\n' "$OUT" | awk '/set aside/{print $1}' | head -1)
	[ -n "$name" ] || fail "no stash with media set aside: $OUT"
	cd "$main"
	expect_ok git dnadata gc
	assert_not_contains "$OUT" "dropped 1 media set-aside"
	cd "$T/wt2"
	expect_ok git dnadata stash media "$name" "$T/out"
	assert_eq "mine" "$(cat "$T/out/mine.txt")"
}

# stop_at FAILPOINT OUT CMD...: run CMD in the background until it stops at FAILPOINT; PID its pid.
stop_at() {
	local fp=$1 out=$2
	shift 2
	DNADATA_FAILPOINT=$fp "$@" >"$out.out" 2>"$out.err" &
	PID=$!
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(cut -d' ' -f3 "/proc/$PID/stat" 2>/dev/null)" = T ] && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.05
	done
	fail "never stopped at $fp: $(cat "$out.err")"
}

test_a_capture_waits_for_a_switch_of_the_same_folder() {
	setup_media
	local db2
	db2=$(pg_newdb msw2)
	psql_q "$db2" "CREATE TABLE u (id int)"
	printf '\n[profile "other"]\ndatabase = dbname=%s\nmedia = %s/\n' "$db2" "$MEDIA" >>.dnadata/profiles.ini
	git commit -qm other .dnadata/profiles.ini
	stop_at template-built "$T/r" git-dnadata restore --force
	# the same folder (spelt with a trailing /) through another database: the capture waits for the switch
	run timeout 10 git-dnadata snapshot other --no-commit
	kill -CONT "$PID"
	wait "$PID" || fail "restore failed: $(cat "$T/r.err")"
	assert_eq 124 "$RC" "the capture did not wait for the switch of its folder: $ERR"
	assert_contains "$ERR" "waiting for another git dnadata run on media folder"
	expect_ok git dnadata snapshot other --no-commit
}

test_a_file_written_during_the_build_is_set_aside() {
	setup_media
	stop_at template-built "$T/r" git-dnadata restore --force
	printf 'late\n' >"$MEDIA/late.txt"
	kill -CONT "$PID"
	wait "$PID" || fail "restore failed: $(cat "$T/r.err")"
	assert_no_file "$MEDIA/late.txt"
	expect_ok git dnadata stash list
	local name
	name=$(printf '%s\n' "$OUT" | awk '/set aside/{print $1}' | head -1)
	[ -n "$name" ] || fail "late.txt was removed and no stash holds it: $OUT"
	local before
	before=$(ls .git/dnadata | xargs; ls .git/dnadata/media | xargs)
	expect_ok git dnadata stash media "$name" "$T/out"
	assert_eq "late" "$(cat "$T/out/late.txt")"
	# writing a stash's media out leaves no index (nor anything else) in the state folder
	assert_eq "$before" "$(ls .git/dnadata | xargs; ls .git/dnadata/media | xargs)"
}

test_a_stash_is_not_marked_set_aside_when_the_folder_was_left_alone() {
	setup_media
	# a snapshot without a media listing: taken while the profile had no folder
	sed -i '/^media = /d' .dnadata/profiles.ini
	git commit -qm "no media" .dnadata/profiles.ini
	expect_ok git dnadata snapshot
	printf 'media = %s\n' "$MEDIA" >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	printf 'mine\n' >"$MEDIA/mine.txt"
	expect_ok git dnadata restore --force
	assert_file "$MEDIA/mine.txt"
	expect_ok git dnadata stash list
	assert_not_contains "$OUT" "set aside"
}

test_a_pending_apply_that_cannot_succeed_gives_way_to_restore_force() {
	setup_media
	expect_ok git dnadata restore
	local rec
	rec=$(ls .git/dnadata/pg/*/working)
	# a pending media id no cache holds (swept, or never fetched)
	sed -i '/^media /d; /^media_pending /d' "$rec"
	printf 'media %s\nmedia_pending yes\n' "$(printf '0%.0s' $(seq 64))" >>"$rec"
	expect_fail 1 git dnadata restore
	assert_contains "$ERR" "hint: \`git dnadata restore --force\`"
	expect_ok git dnadata restore --force
	assert_contains "$ERR" "going on with the folder as it is (--force)"
	expect_ok git dnadata restore
	assert_eq "a" "$(cat "$MEDIA/a.txt")"
}

test_status_says_a_killed_switch_is_to_be_finished() {
	setup_media
	printf 'mine\n' >"$MEDIA/mine.txt"
	stop_at media-applied "$T/r" git-dnadata restore --force
	kill -9 "$PID"
	wait "$PID" 2>/dev/null || true
	expect_ok git dnadata status
	assert_contains "$OUT" "a switch was cut short; \`git dnadata restore\` finishes it"
	expect_ok git dnadata restore
	assert_contains "$ERR" "finished the interrupted switch of media folder"
}

run_tests
