#!/usr/bin/env bash
# t-media-kill.sh: a switch of a media folder with its database killed with
# -9 (the folder applied, the database not yet renamed; in the middle of
# the folder's files) leaves every file old or new and records from which
# the next restore finishes: the folder and the database end up together,
# and the files set aside come back with the branch's stash. A crafted
# media listing with `../` or a path through a symlink is refused before
# anything is written, inside or outside the folder, and the database is
# left as it was.
#
# Determinism: DNADATA_FAILPOINT=<point> makes git-dnadata stop itself
# (SIGSTOP) there (src/pg/switch.c); we wait for the stopped state and kill
# it. Inside the folder's apply, strace's fault injection kills it (or fails
# the call) at the Nth renameat, the call that puts one written file in
# place (only the apply uses renameat; the records use rename): between two
# files, exactly. No sleeps stand in for ordering.
. "$(dirname "$0")/../lib.sh"

export DNADATA_SKIP=1

# main: snapshot X with a.txt and shared.txt; branch B: snapshot Y with b.txt and shared.txt changed and
# 200 more files (so an apply has files to stop between); back on main, restored to X.
setup_branches() {
	repo_with_db mkill
	MEDIA=var/uploads
	printf 'media = %s\n' "$MEDIA" >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'x')"
	mkdir -p "$MEDIA"
	printf 'a\n' >"$MEDIA/a.txt"
	printf 'shared x\n' >"$MEDIA/shared.txt"
	expect_ok git dnadata snapshot
	X=$OUT
	git checkout -q -b B
	rm "$MEDIA/a.txt"
	printf 'b\n' >"$MEDIA/b.txt"
	printf 'shared y\n' >"$MEDIA/shared.txt"
	mkdir "$MEDIA/many"
	for i in $(seq -w 1 200); do printf 'y %s\n' "$i" >"$MEDIA/many/$i.txt"; done
	psql_q "$DB" "UPDATE t SET v = 'y'"
	expect_ok git dnadata snapshot
	Y=$OUT
	git checkout -q main
	expect_ok git dnadata restore
	assert_eq "a.txt shared.txt" "$(ls "$MEDIA" | xargs)"
}

kill_at() {
	local point=$1 pid
	shift
	DNADATA_FAILPOINT=$point git-dnadata "$@" >"$T/killed.out" 2>"$T/killed.err" &
	pid=$!
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = T ] && break
		kill -0 "$pid" 2>/dev/null || fail "git-dnadata $* ended before $point: $(cat "$T/killed.err")"
		sleep 0.05
	done
	[ "$(cut -d' ' -f3 "/proc/$pid/stat")" = T ] || fail "git-dnadata $* never reached $point"
	kill -KILL "$pid"
	wait "$pid" || true
}

# kill_at_file N: `git-dnadata restore` killed (SIGKILL) as it is about to rename its Nth file into the folder.
kill_at_file() {
	run strace -f -o /dev/null -e trace=renameat,renameat2,linkat -e "inject=renameat,renameat2,linkat:signal=SIGKILL:when=$1" \
		git-dnadata restore
	[ "$RC" = 137 ] || fail "git-dnadata restore was not killed at its file $1 (exit $RC): $ERR"
}

value() { psql_q "$DB" "SELECT v FROM t"; }

# Every file of the folder is main's (with its local edit) or B's, whole: never a mix inside a file, no temp name left
# behind in a way that could be taken for data.
assert_old_or_new() {
	local f
	for f in "$MEDIA"/shared.txt "$MEDIA"/many/*.txt; do
		[ -e "$f" ] || continue
		case $(cat "$f") in
		"shared mine" | "shared y" | "y "[0-9][0-9][0-9]) ;;
		*) fail "$f holds neither the old nor the new content: $(cat "$f")" ;;
		esac
	done
}

# Main's work: a new file, an edited one, an edited row. Then the switch to C (Y) is killed at POINT,
# the next restore (or RECOVERY..., e.g. restore --force) completes, and the way back to main brings the
# work back.
switch_killed_at() {
	local point=$1
	shift
	[ $# -gt 0 ] || set -- restore
	setup_branches
	printf 'mine\n' >"$MEDIA/mine.txt"
	printf 'shared mine\n' >"$MEDIA/shared.txt"
	psql_q "$DB" "UPDATE t SET v = 'main edit'"
	git checkout -q -b C B
	case $point in
	file:*)
		kill_at_file "${point#file:}"
		local n
		n=$(find "$MEDIA/many" -name '*.txt' 2>/dev/null | wc -l)
		[ "$n" -gt 0 ] && [ "$n" -lt 200 ] || fail "the kill was not between two files of the folder ($n of 200 written)"
		;;
	*) kill_at "$point" restore ;;
	esac
	assert_old_or_new
	expect_ok git dnadata "$@"
	RECOVERY=$ERR
	assert_eq "y" "$(value)"
	assert_eq "b.txt many shared.txt" "$(ls "$MEDIA" | xargs)"
	assert_eq "shared y" "$(cat "$MEDIA/shared.txt")"
	assert_eq 200 "$(ls "$MEDIA/many" | wc -l)"
	assert_consistent
	git checkout -q main
	expect_ok git dnadata restore
	assert_eq "main edit" "$(value)"
	assert_eq "a.txt mine.txt shared.txt" "$(ls "$MEDIA" | xargs)"
	assert_eq "shared mine" "$(cat "$MEDIA/shared.txt")"
	assert_eq "mine" "$(cat "$MEDIA/mine.txt")"
}

test_kill_after_the_folder_is_applied_before_the_database_is_renamed() {
	switch_killed_at media-applied
	# the folder went back to main's (set aside) before the switch ran again
	assert_contains "$RECOVERY" "finished the interrupted switch of media folder $MEDIA"
	assert_eq "" "$(ls -a "$MEDIA" | grep -v '^\.\.\?$' | grep '^\.' || true)" "a temporary file was left"
}

test_kill_after_the_folder_is_applied_then_restore_force() {
	switch_killed_at media-applied restore --force
	assert_contains "$RECOVERY" "finished the interrupted switch of media folder $MEDIA"
}

# A snapshot taken after such a kill finishes the folder first: it captures main's folder (the switch did not
# happen), and the files the killed switch had set aside are where they were.
test_kill_after_the_folder_is_applied_then_snapshot() {
	setup_branches
	printf 'mine\n' >"$MEDIA/mine.txt"
	printf 'shared mine\n' >"$MEDIA/shared.txt"
	git checkout -q -b C B
	kill_at media-applied restore
	assert_eq "shared y" "$(cat "$MEDIA/shared.txt")"
	expect_ok git dnadata snapshot
	assert_contains "$ERR" "finished the interrupted switch of media folder $MEDIA"
	assert_eq "a.txt mine.txt shared.txt" "$(ls "$MEDIA" | xargs)"
	assert_eq "shared mine" "$(cat "$MEDIA/shared.txt")"
	assert_eq 3 "$(sed -n 's/^media_files //p' .dnadata/refs/clean)"
}

test_kill_just_before_the_folder_changes() {
	switch_killed_at before-rename
}

test_kill_between_two_files_of_the_folder() {
	switch_killed_at file:100
	assert_contains "$RECOVERY" "finished the interrupted switch of media folder $MEDIA"
}

# The folder cannot be written (the 100th file's rename fails: ENOSPC): the files already written are put
# back, the database is not switched, and one line says so.
test_a_failed_apply_puts_the_folder_back_and_leaves_the_database() {
	setup_branches
	printf 'mine\n' >"$MEDIA/mine.txt"
	printf 'shared mine\n' >"$MEDIA/shared.txt"
	psql_q "$DB" "UPDATE t SET v = 'main edit'"
	git checkout -q -b C B
	local before
	before=$(cd "$MEDIA" && find . -printf '%P %y %s\n' | sort && cat shared.txt)
	expect_fail 1 strace -f -o /dev/null -e trace=renameat,renameat2,linkat -e inject=renameat,renameat2,linkat:error=ENOSPC:when=100 \
		git-dnadata restore
	assert_contains "$ERR" "the folder and the database were left as they were"
	assert_eq "$before" "$(cd "$MEDIA" && find . -printf '%P %y %s\n' | sort && cat shared.txt)"
	assert_eq "main edit" "$(value)"
	assert_consistent
	expect_ok git dnadata restore
	assert_eq "y" "$(value)"
	assert_eq "shared y" "$(cat "$MEDIA/shared.txt")"
}

test_kill_just_after_the_rename_commits() {
	switch_killed_at renamed
	assert_contains "$RECOVERY" "finished recording the interrupted switch"
	assert_contains "$RECOVERY" "finished the interrupted switch of media folder $MEDIA"
}

# craft ENTRY...: a snapshot holding only a media listing with these entries (tests/tools/media-craft.c).
craft() { "$DD_BUILDDIR/media-craft" "$PWD/.git/dnadata" "" "$@"; }

# point the ref at snapshot ID (the file as dd_ref writes it, informational lines dropped)
point_ref_at() { printf 'dnadata-ref 1\nsnapshot %s\n' "$1" >.dnadata/refs/clean; }

hostile_refused() {
	setup_branches
	mkdir -p "$T/outside"
	local before
	before=$(cd "$MEDIA" && find . -printf '%P %y %s %T@\n' | sort)
	local id
	id=$(craft "$@") || fail "media-craft could not write the listing"
	point_ref_at "$id"
	expect_fail 1 git dnadata restore
	assert_eq "" "$(ls -A "$T/outside")" "something was written outside the folder"
	assert_no_file "$T/evil"
	assert_no_file "var/evil"
	assert_eq "$before" "$(cd "$MEDIA" && find . -printf '%P %y %s %T@\n' | sort)" "the folder changed"
	assert_eq "x" "$(value)" "the database changed"
	assert_eq "" "$(databases_like "${DB}__dnadata_tmpl_${id:0:12}")" "a template was built before the check"
}

test_a_listing_with_dotdot_is_refused_before_anything_is_written() {
	hostile_refused "dir:a" "file:a/../../evil:pwned"
	assert_contains "$ERR" ".."
}

test_a_listing_through_a_symlink_is_refused_before_anything_is_written() {
	hostile_refused "link:esc:$T/outside" "file:esc/evil:pwned"
	assert_contains "$ERR" "esc"
}

test_an_absolute_listing_path_is_refused() {
	hostile_refused "file:$T/outside/evil:pwned"
}

run_tests
