#!/usr/bin/env bash
# t-crash.sh: kill -9 at seeded random moments (tests/crash.sh) of snapshot,
# incremental snapshot, restore, a branch switch by the git hooks (to a
# stash, a template, a spare), a restore with a media folder, and push and
# fetch with a folder store (S3: t-crash-s3.sh). After each kill: the refs
# name complete snapshots (`verify`), the working database is the old or the
# new one (row hashes), no edit is lost (in the working database or a stash;
# media files likewise), and a rerun completes with the expected state.
#
#   DD_CRASH_SEED=N DD_CRASH_ROUNDS=100 tests/run tests/integration/t-crash.sh
#
# reproduces a run (the seed is printed under each result) or runs longer.
# serial: waits until no client session is left on the whole server after each kill (tests/run runs it alone)
. "$(dirname "$0")/../lib.sh"
. "$DD_TESTS_DIR/crash.sh"

export DNADATA_SKIP=1 # hooks only where a test wants them (the switches)

# The ref is committed as it is in the work tree.
assert_ref_committed() {
	git diff --quiet HEAD -- .dnadata/refs ||
		fail "round $CRASH_ROUND, killed $CRASH_WHAT: the ref file is not committed: $(git diff HEAD -- .dnadata/refs | tail -n 4)"
}

# snapshot_rounds OPTION...: each round edits the database, kills `snapshot OPTION...`, checks, reruns it.
snapshot_rounds() {
	local r h old
	while crash_next_round; do
		r=$CRASH_ROUND
		crash_edit "$DB" "snapshot-$r"
		h=$(db_hash "$DB")
		old=$(ref_id)
		crash_kill git-dnadata snapshot "$@" -m "round $r"
		assert_eq "$h" "$(db_hash "$DB")" "round $r: the snapshot changed the database"
		assert_verify
		assert_rerun git-dnadata snapshot "$@" -m "rerun $r"
		assert_eq "$(printf '%s\n' "$OUT" | tail -n 1)" "$(ref_id)" "round $r: the rerun's id is not the ref's"
		assert_ne "$old" "$(ref_id)" "round $r: the ref did not move"
		assert_ref_committed
		[ "${1:-}" = --full ] && continue
		# incremental: what it reused is, byte for byte, what reading everything gives
		run git-dnadata snapshot --full --no-commit
		[ "$RC" = 0 ] || fail "round $r: snapshot --full failed: $ERR"
		assert_eq "$(ref_id)" "$(printf '%s\n' "$OUT" | tail -n 1)" "round $r: the incremental snapshot differs from a full one"
	done
}

# The last ref, restored into a fresh database, is the database.
assert_last_snapshot_restores() {
	local fresh
	assert_verify --all
	fresh=$(pg_newdb crcopy)
	DNADATA_DATABASE="dbname=$fresh" expect_ok git-dnadata restore
	assert_eq "$(db_hash "$DB")" "$(db_hash "$fresh")" "the last snapshot restored differs from the database"
}

test_snapshot() {
	crash_begin snapshot
	repo_with_db crsnap
	crash_data "$DB" 2000
	crash_time git-dnadata snapshot --full
	snapshot_rounds --full
	assert_last_snapshot_restores
}

test_incremental_snapshot() {
	crash_begin incremental_snapshot
	repo_with_db crincr
	crash_data "$DB" 20000
	expect_ok git-dnadata snapshot
	crash_edit "$DB" first
	crash_time git-dnadata snapshot -v
	assert_contains "$ERR" "public.t: " "the snapshot did not read t by key ranges"
	assert_contains "$ERR" "key ranges unchanged," "the snapshot did not read t by key ranges"
	snapshot_rounds
	assert_last_snapshot_restores
}

# restore --force over an edited database: from the cache into a new template, the edited one stashed.
test_restore() {
	crash_begin restore
	CRASH_FAILPOINTS=(template-built template-recorded cloned before-rename renamed recorded)
	CRASH_FAILPOINT_SHARE=25
	repo_with_db crrest
	crash_data "$DB" 2000
	expect_ok git-dnadata snapshot
	local r x old
	x=$(db_hash "$DB")
	crash_time git-dnadata restore --force
	while crash_next_round; do
		r=$CRASH_ROUND
		crash_edit "$DB" "restore-$r"
		old=$(db_hash "$DB")
		crash_kill git-dnadata restore --force
		assert_old_or_new "$(db_hash "$DB")" "$old" "$x"
		assert_edit_kept "restore-$r"
		assert_verify
		assert_rerun git-dnadata restore --force
		assert_eq "$x" "$(db_hash "$DB")" "round $r: the rerun did not restore the snapshot ($ERR)"
		assert_consistent
	done
	assert_edit_kept $(seq -f 'restore-%g' "$CRASH_ROUND")
}

# ---- switches: `git checkout` with the hooks installed ----

# main holds snapshot X, B snapshot Y; on main, restored (B's database stashed). HASH[branch]: what the
# working database holds when that branch is checked out; SNAP[branch]: its snapshot's rows.
switch_setup() {
	unset DNADATA_SKIP
	repo_with_db crsw
	crash_data "$DB" 2000
	expect_ok git-dnadata snapshot -m X
	git checkout -q -b B
	psql_q "$DB" "UPDATE t SET v = 'b' || v WHERE id <= 500"
	expect_ok git-dnadata snapshot -m Y
	declare -gA HASH SNAP
	HASH[B]=$(db_hash "$DB")
	git checkout -q main
	HASH[main]=$(db_hash "$DB")
	assert_ne "${HASH[main]}" "${HASH[B]}" "the hook did not switch to main's snapshot"
	SNAP[main]=${HASH[main]} SNAP[B]=${HASH[B]}
	CUR=main
	CRASH_FAILPOINTS=(template-built template-recorded cloned before-rename renamed recorded)
	CRASH_FAILPOINT_SHARE=25
	GIT_LOCKS=0
}

# drop_stashes_of BRANCH: drop the stashes left on BRANCH (so a switch there clones or takes a spare).
drop_stashes_of() {
	local f name
	for f in "$(records_dir)"/stash-*; do
		# a record's name ends in its hash: stash-<hash>.tmp-XXXXXX, a write a kill cut short, is none
		[[ ${f##*/} =~ ^stash-[0-9a-f]+$ ]] || continue
		grep -qx "branch $1" "$f" || continue
		name=$(sed -n 's/^name //p' "$f")
		expect_ok git dnadata stash drop "$name"
	done
	HASH[$1]=${SNAP[$1]}
}

# switch_round HOW: edit the working database, kill `git checkout` of the other branch, check, rerun.
switch_round() {
	local other=main old
	[ "$CUR" = main ] && other=B
	case $1 in
	template) drop_stashes_of "$other" ;;
	spare)
		drop_stashes_of "$other"
		expect_ok git dnadata spare --count 2
		[ -n "$(databases_like "${DB}__dnadata_spare_$(git show "$other:.dnadata/refs/clean" | sed -n 's/^snapshot //p' | cut -c1-12)")" ] ||
			fail "round $CRASH_ROUND: no spare of $other's snapshot was made: $ERR"
		;;
	esac
	crash_edit "$DB" "switch-$CRASH_ROUND"
	old=$(db_hash "$DB")
	crash_kill git checkout -q "$other"
	# git's own locks, left when the kill hit git itself (not git-dnadata, which does not commit in a switch
	# and runs only in the post-checkout hook, after git has let go of both): index.lock while git wrote the
	# work tree, so a tracked file (the ref file) may be cut short, as git leaves it; HEAD.lock while git moved
	# HEAD. Remove them and put the work tree back to HEAD, as a user would after a killed checkout (our hook
	# writes no tracked file)
	local lock left=
	for lock in .git/index.lock .git/HEAD.lock; do
		[ -e "$lock" ] && rm "$lock" && left=1
	done
	if [ -n "$left" ]; then
		git checkout -q HEAD -- .
		GIT_LOCKS=$((GIT_LOCKS + 1))
	fi
	assert_old_or_new "$(db_hash "$DB")" "$old" "${HASH[$other]}"
	assert_edit_kept "switch-$CRASH_ROUND"
	assert_verify
	assert_rerun git checkout -q "$other"
	assert_eq "$other" "$(git rev-parse --abbrev-ref HEAD)"
	assert_eq "${HASH[$other]}" "$(db_hash "$DB")" "round $CRASH_ROUND: the rerun did not switch to $other ($ERR)"
	assert_consistent
	assert_edit_kept "switch-$CRASH_ROUND"
	HASH[$CUR]=$old
	CUR=$other
}

switch_rounds() {
	local r
	switch_setup
	crash_time git checkout -q B # (main's database, unedited, stashed)
	CUR=B
	# B's snapshot was taken here, never restored: a template of it for the switches to clone
	[ "$1" = stash ] || expect_ok git-dnadata restore --force
	while crash_next_round; do
		r=$CRASH_ROUND
		switch_round "$1"
	done
	[ "$GIT_LOCKS" = 0 ] || tap_note "$GIT_LOCKS kills of git checkout left git's .git/index.lock or HEAD.lock (removed)"
}

test_switch_to_a_stash() {
	crash_begin switch_to_a_stash
	switch_rounds stash
	# and back once more: the last round's edits come back with their branch
	local other=main
	[ "$CUR" = main ] && other=B
	expect_ok git checkout -q "$other"
	assert_eq "${HASH[$other]}" "$(db_hash "$DB")" "the last edits did not come back"
}

test_switch_to_a_template() {
	crash_begin switch_to_a_template
	switch_rounds template
}

test_switch_to_a_spare() {
	crash_begin switch_to_a_spare
	switch_rounds spare
}

# ---- media ----

# media_manifest: "path md5" per file and "path/" per folder of $MEDIA, sorted.
media_manifest() {
	(
		cd "$MEDIA"
		find . -mindepth 1 -type d -printf '%P/\n'
		find . -mindepth 1 ! -type d -print0 | xargs -0 -r md5sum | awk '{ sub(/^\.\//, "", $2); print $2, $1 }'
	) | LC_ALL=C sort
}

# assert_files_old_or_new OLD NEW: every file of the folder (but apply's temporary ones) is whole, old or new.
assert_files_old_or_new() {
	local bad
	bad=$(media_manifest | grep -v '/$' | grep -v '\.git-dnadata-tmp-' |
		LC_ALL=C comm -23 - <(printf '%s\n%s\n' "$1" "$2" | LC_ALL=C sort -u) || true)
	[ -z "$bad" ] || fail "round $CRASH_ROUND, killed $CRASH_WHAT: files neither old nor new: $bad"
}

# main: snapshot X with 20 files; B: snapshot Y with some removed, one changed and 100 more. Each round
# edits the database and the folder, checks out the other branch (hooks skipped) and kills `use clean`: the
# restore a branch switch makes (as the hooks do: the folder and the database left go to a stash with their
# edits, the branch's stash comes back; a plain `restore` would rebuild an edited database from its snapshot).
test_media_restore() {
	crash_begin media_restore
	CRASH_FAILPOINTS=(template-built cloned media-applied before-rename renamed recorded)
	CRASH_FAILPOINT_SHARE=25
	repo_with_db crmedia
	MEDIA=var/uploads
	printf 'media = %s\n' "$MEDIA" >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	crash_data "$DB" 1000
	mkdir -p "$MEDIA/keep"
	local i r other old oldman
	for i in $(seq 1 20); do printf 'x %s\n' "$i" >"$MEDIA/keep/$i.txt"; done
	printf 'shared x\n' >"$MEDIA/shared.txt"
	expect_ok git-dnadata snapshot -m X
	git checkout -q -b B
	rm "$MEDIA"/keep/1*.txt
	printf 'shared y\n' >"$MEDIA/shared.txt"
	mkdir "$MEDIA/many"
	for i in $(seq -w 1 100); do printf 'y %s\n' "$i" >"$MEDIA/many/$i.txt"; done
	psql_q "$DB" "UPDATE t SET v = 'b' || v WHERE id <= 100"
	expect_ok git-dnadata snapshot -m Y
	declare -A HASH MAN
	HASH[B]=$(db_hash "$DB") MAN[B]=$(media_manifest)
	git checkout -q main
	crash_time git-dnadata use clean
	HASH[main]=$(db_hash "$DB") MAN[main]=$(media_manifest)
	CUR=main
	while crash_next_round; do
		r=$CRASH_ROUND
		other=main
		[ "$CUR" = main ] && other=B
		crash_edit "$DB" "media-$r"
		printf 'mine %s\n' "$r" >"$MEDIA/mine-$r.txt"
		printf 'edit %s\n' "$r" >"$MEDIA/shared.txt"
		old=$(db_hash "$DB") oldman=$(media_manifest)
		git checkout -q "$other"
		crash_kill git-dnadata use clean
		assert_old_or_new "$(db_hash "$DB")" "$old" "${HASH[$other]}"
		assert_edit_kept "media-$r"
		assert_files_old_or_new "$oldman" "${MAN[$other]}"
		assert_verify
		assert_rerun git-dnadata use clean
		assert_eq "${HASH[$other]}" "$(db_hash "$DB")" "round $r: the rerun did not restore $other's database ($ERR)"
		assert_eq "${MAN[$other]}" "$(media_manifest)" "round $r: the rerun did not give $other's folder (with its edits) ($ERR)"
		assert_consistent
		HASH[$CUR]=$old MAN[$CUR]=$oldman
		CUR=$other
	done
	other=main
	[ "$CUR" = main ] && other=B
	git checkout -q "$other"
	expect_ok git-dnadata use clean
	assert_eq "${HASH[$other]}" "$(db_hash "$DB")" "the last edits did not come back"
	assert_eq "${MAN[$other]}" "$(media_manifest)" "the last media edits did not come back"
}

# ---- push and fetch, a folder store ----

test_push_to_a_folder_store() {
	crash_begin push_to_a_folder_store
	crash_push "file://$T/store"
}

test_fetch_from_a_folder_store() {
	crash_begin fetch_from_a_folder_store
	crash_fetch "file://$T/store"
}

run_tests
