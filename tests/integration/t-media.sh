#!/usr/bin/env bash
# t-media.sh: a profile's media folder (issue 17) captured with its database
# and restored exactly, against real folders and a real PostgreSQL: 10,000
# small files and a few large binaries; unicode and space names, empty
# folders, symlinks (relative, absolute, dangling), mode bits and mtimes;
# restore over extra and modified files (they go to the stash and come back
# with the branch's database through the git hooks); a profile without
# media; a missing folder; an unreadable file; media_owner; and what
# status, stash list, verify and gc say.
. "$(dirname "$0")/../lib.sh"

# setup_media [DIR]: a repository on a fresh database whose profile "clean" has media = DIR (default var/uploads).
setup_media() {
	repo_with_db media
	MEDIA=${1:-var/uploads}
	printf 'media = %s\n' "$MEDIA" >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')"
	mkdir -p "$MEDIA"
}

# tree DIR: every entry with its type, mode, size, mtime (files) and link target, then the files' hashes.
tree() {
	(
		cd "$1"
		find . -mindepth 1 \( -type l -printf '%P %y %l\n' \) -o \( -type d -printf '%P %y %m\n' \) \
			-o \( -type f -printf '%P %y %m %s %T@\n' \) | LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
	)
}

# The tree of names, links, folders and modes the issue lists.
make_odd_tree() {
	local d=$1
	mkdir -p "$d/empty" "$d/deep/er/est" "$d/naïve café" "$d/private"
	printf 'plain\n' >"$d/plain.txt"
	printf 'spaces\n' >"$d/with space.txt"
	printf 'unicode\n' >"$d/naïve café/日本語 ファイル.txt"
	printf 'deep\n' >"$d/deep/er/est/file"
	printf '#!/bin/sh\n' >"$d/run.sh"
	chmod 0755 "$d/run.sh"
	printf 'secret\n' >"$d/private/key"
	chmod 0600 "$d/private/key"
	chmod 0700 "$d/private"
	chmod 0640 "$d/plain.txt"
	ln -s plain.txt "$d/relative-link"
	ln -s ../plain.txt "$d/deep/up-link"
	ln -s /etc/hostname "$d/absolute-link"
	ln -s does/not/exist "$d/dangling-link"
	touch -d '2020-02-02 02:02:02.123456789' "$d/plain.txt"
}

ref_info() { sed -n "s/^$1 //p" .dnadata/refs/clean; }

# The unchanged-database fast path with a media folder (issue 19): the folder's record says it still is what the
# ref's snapshot holds, so neither a table nor the folder is read (same id, no commit), and that id is what reading
# everything gives; a changed file makes a new snapshot.
test_an_unchanged_database_and_folder_keep_the_id_and_a_changed_file_does_not() {
	setup_media
	make_odd_tree "$MEDIA"
	psql_q "$DB" "VACUUM ANALYZE" # no autovacuum ANALYZE between the snapshots (counted as a change)
	expect_ok git dnadata snapshot
	local first=$OUT head
	head=$(git rev-parse HEAD)
	pg_wait_no_sessions "$DB"
	expect_ok git dnadata -v snapshot
	assert_eq "$first" "$OUT" "same id"
	assert_contains "$ERR" "nothing changed"
	assert_contains "$ERR" "unchanged since snapshot ${first:0:12}: no table read"
	assert_not_contains "$ERR" "incremental: media folder"
	assert_eq "$head" "$(git rev-parse HEAD)" "no commit"
	pg_wait_no_sessions "$DB"
	expect_ok git dnadata -v snapshot --full --no-commit
	assert_eq "$first" "$OUT" "--full reads the folder and gives the same id"
	printf 'changed\n' >"$MEDIA/deep/er/est/file"
	pg_wait_no_sessions "$DB"
	expect_ok git dnadata -v snapshot
	assert_ne "$first" "$OUT" "a changed file: a new snapshot"
	assert_contains "$ERR" "/$MEDIA changed since snapshot ${first:0:12}: it is read"
	assert_ne "$head" "$(git rev-parse HEAD)" "committed"
}

test_ten_thousand_small_files_and_large_binaries_come_back_exactly() {
	setup_media
	local i d
	for d in $(seq -w 0 99); do
		mkdir "$MEDIA/d$d"
		for i in $(seq -w 0 99); do printf 'file %s/%s\n' "$d" "$i" >"$MEDIA/d$d/f$i.txt"; done
	done
	for i in 1 2 3; do dd if=/dev/urandom of="$MEDIA/big$i.bin" bs=1M count=3 status=none; done
	tree "$MEDIA" >"$T/before"
	expect_ok git dnadata snapshot
	local snap=$OUT
	assert_contains "$ERR" "media: 10003 files"
	assert_eq 10003 "$(ref_info media_files)"
	assert_eq $((10000 * 11 + 3 * 3 * 1048576)) "$(ref_info media_bytes)"
	# damage it: modified, removed, added files; a binary replaced
	printf 'changed\n' >"$MEDIA/d00/f00.txt"
	rm "$MEDIA/d01/f01.txt" "$MEDIA/big2.bin"
	mkdir "$MEDIA/extra" && printf 'new\n' >"$MEDIA/extra/new.txt"
	dd if=/dev/urandom of="$MEDIA/big3.bin" bs=1M count=1 status=none
	local inode
	inode=$(stat -c %i "$MEDIA/d50/f50.txt")
	expect_ok git dnadata restore
	assert_contains "$ERR" "media folder $MEDIA changed since its restore"
	tree "$MEDIA" >"$T/after"
	cmp -s "$T/before" "$T/after" || fail "the folder differs from the snapshot: $(diff "$T/before" "$T/after" | head)"
	assert_eq "$inode" "$(stat -c %i "$MEDIA/d50/f50.txt")" "an unchanged file was rewritten"
	# what the restore replaced is in the stash, not lost
	expect_ok git dnadata stash list
	assert_contains "$OUT" "entries set aside"
	assert_eq "$snap" "$(git dnadata snapshot 2>/dev/null || true)" "the restored folder is the snapshot again"
}

test_names_links_empty_folders_modes_and_mtimes_come_back_exactly() {
	setup_media
	make_odd_tree "$MEDIA"
	tree "$MEDIA" >"$T/before"
	expect_ok git dnadata snapshot
	assert_eq 6 "$(ref_info media_files)"
	rm -rf "${MEDIA:?}"/*
	printf 'other\n' >"$MEDIA/other"
	expect_ok git dnadata restore
	tree "$MEDIA" >"$T/after"
	cmp -s "$T/before" "$T/after" || fail "the folder differs from the snapshot: $(diff "$T/before" "$T/after")"
	assert_eq "/etc/hostname" "$(readlink "$MEDIA/absolute-link")" "a link was followed"
	[ -L "$MEDIA/dangling-link" ] || fail "the dangling link is gone"
	assert_eq "2020-02-02 02:02:02.123456789" "$(stat -c %y "$MEDIA/plain.txt" | cut -c1-29)"
}

test_a_switch_sets_extra_and_modified_files_aside_and_the_way_back_brings_them_back() {
	setup_media
	printf 'a\n' >"$MEDIA/a.txt"
	printf 'shared\n' >"$MEDIA/shared.txt"
	expect_ok git dnadata snapshot
	git checkout -q -b B
	printf 'b\n' >"$MEDIA/b.txt"
	rm "$MEDIA/a.txt"
	psql_q "$DB" "UPDATE t SET v = 'bee'"
	expect_ok git dnadata snapshot
	local b=$OUT
	git checkout -q main 2>"$T/hook.err"
	assert_eq "a.txt shared.txt" "$(ls "$MEDIA" | xargs)" "the hook did not switch the folder: $(cat "$T/hook.err")"
	assert_eq one "$(psql_q "$DB" "SELECT v FROM t")"
	# local work on main: files added and changed, a row edited
	printf 'mine\n' >"$MEDIA/mine.txt"
	printf 'shared, edited\n' >"$MEDIA/shared.txt"
	psql_q "$DB" "UPDATE t SET v = 'main edit'"
	git checkout -q B 2>"$T/hook.err"
	assert_eq "b.txt shared.txt" "$(ls "$MEDIA" | xargs)" "$(cat "$T/hook.err")"
	assert_eq "shared" "$(cat "$MEDIA/shared.txt")"
	expect_ok git dnadata stash list
	local line
	line=$(printf '%s\n' "$OUT" | grep ' main ')
	assert_contains "$line" "entries set aside"
	git checkout -q main 2>"$T/hook.err"
	assert_eq "a.txt mine.txt shared.txt" "$(ls "$MEDIA" | xargs)" "$(cat "$T/hook.err")"
	assert_eq "shared, edited" "$(cat "$MEDIA/shared.txt")"
	assert_eq "mine" "$(cat "$MEDIA/mine.txt")"
	assert_eq "main edit" "$(psql_q "$DB" "SELECT v FROM t")"
	# B's folder, unchanged since its restore, was set aside as "unchanged"
	expect_ok git dnadata stash list
	assert_contains "$(printf '%s\n' "$OUT" | grep ' B ')" "unchanged"
	assert_eq "$b" "$(ref_info_at B)"
}

ref_info_at() { git show "$1:.dnadata/refs/clean" | sed -n 2p | sed 's/^snapshot //'; }

# Two profiles on one database with different folders: files set aside from one folder never land in the
# other, and the stash holding them is not renamed back (which would forget them): it stays listed.
test_profiles_with_different_folders_never_mix_their_files() {
	setup_media var/a
	printf 'x\n' >var/a/x
	expect_ok git dnadata snapshot
	expect_ok git dnadata new-profile other --media var/b
	mkdir -p var/b && printf 'y\n' >var/b/y
	psql_q "$DB" "INSERT INTO t VALUES (2, 'two')"
	expect_ok git dnadata snapshot other
	printf 'local\n' >var/a/local
	expect_ok git dnadata use clean
	assert_eq "x" "$(ls var/a | xargs)"
	expect_ok git dnadata use other
	assert_eq "y" "$(ls var/b | xargs)"
	assert_eq "x" "$(ls var/a | xargs)"
	assert_eq 2 "$(psql_q "$DB" "SELECT count(*) FROM t")"
	expect_ok git dnadata stash list
	local stash
	stash=$(printf '%s\n' "$OUT" | awk '/entries set aside/ { print $1 }')
	[ -n "$stash" ] || fail "the stash holding var/a's files is gone: $OUT"
	expect_ok git dnadata stash media "$stash" "$T/out"
	assert_eq "local x" "$(ls "$T/out" | xargs)"
}

test_a_profile_without_media_leaves_every_folder_alone() {
	repo_with_db nomedia
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY)"
	mkdir -p var/uploads && printf 'x\n' >var/uploads/x
	expect_ok git dnadata snapshot
	assert_eq "" "$(ref_info media_files)"
	assert_not_contains "$ERR" "media:"
	printf 'y\n' >var/uploads/y
	psql_q "$DB" "INSERT INTO t VALUES (1)"
	expect_ok git dnadata restore
	assert_eq "x y" "$(ls var/uploads | xargs)"
	expect_ok git dnadata status --json
	assert_contains "$OUT" '"media_state":null'
}

test_a_missing_folder_is_captured_empty_with_a_warning() {
	setup_media var/missing
	rmdir var/missing
	expect_ok git dnadata snapshot
	assert_contains "$ERR" "warning:"
	assert_contains "$ERR" "var/missing"
	assert_eq 0 "$(ref_info media_files)"
	# restoring that snapshot empties the folder; what was there is set aside
	mkdir -p var/missing && printf 'later\n' >var/missing/later.txt
	expect_ok git dnadata restore
	assert_eq "" "$(ls -A var/missing 2>/dev/null)"
	expect_ok git dnadata stash list
	assert_contains "$OUT" "entries set aside"
}

test_an_unreadable_file_fails_the_snapshot_in_one_line_and_commits_nothing() {
	setup_media
	printf 'ok\n' >"$MEDIA/ok.txt"
	expect_ok git dnadata snapshot
	local ref head
	ref=$(cat .dnadata/refs/clean)
	head=$(git rev-parse HEAD)
	printf 'locked\n' >"$MEDIA/locked.txt"
	chmod 000 "$MEDIA/locked.txt"
	psql_q "$DB" "INSERT INTO t VALUES (2, 'two')"
	expect_fail 1 no_dac git dnadata snapshot
	assert_contains "$ERR" "locked.txt"
	assert_eq "$ref" "$(cat .dnadata/refs/clean)" "the ref changed"
	assert_eq "$head" "$(git rev-parse HEAD)" "something was committed"
	chmod 644 "$MEDIA/locked.txt"
	expect_ok git dnadata snapshot
	assert_eq 2 "$(ref_info media_files)"
}

test_media_owner_is_checked_for_syntax_and_resolved_at_restore() {
	setup_media
	printf 'media_owner = no user\n' >>.dnadata/profiles.ini
	expect_fail 1 git dnadata status
	assert_contains "$ERR" "'media_owner' must be user[:group]"
	sed -i 's/^media_owner = .*/media_owner = -x:root/' .dnadata/profiles.ini
	expect_fail 1 git dnadata status
	assert_contains "$ERR" "'media_owner' must be user[:group]"
	# a user this machine does not know (the config is shared): it loads; the restore warns and goes on
	sed -i 's/^media_owner = .*/media_owner = no-such-user-here:no-such-group-here/' .dnadata/profiles.ini
	expect_ok git dnadata status
	printf 'f\n' >"$MEDIA/f"
	expect_ok git dnadata snapshot
	rm "$MEDIA/f"
	expect_ok git dnadata restore
	assert_contains "$ERR" "media_owner: no user 'no-such-user-here' on this machine"
	assert_eq "f" "$(cat "$MEDIA/f")"
	sed -i 's/^media_owner = .*/media_owner = 4242:4343/' .dnadata/profiles.ini
	expect_ok git dnadata status
	sed -i "s/^media_owner = .*/media_owner = $(id -un):$(id -gn)/" .dnadata/profiles.ini
	expect_ok git dnadata status
	rm "$MEDIA/f"
	expect_ok git dnadata restore
	assert_eq "$(id -un):$(id -gn)" "$(stat -c %U:%G "$MEDIA/f")"
}

test_restore_force_restores_the_folder_too_and_keeps_what_it_replaces() {
	setup_media
	printf 'a\n' >"$MEDIA/a"
	expect_ok git dnadata snapshot
	expect_ok git dnadata restore --force
	assert_eq "a" "$(cat "$MEDIA/a")"
	expect_ok git dnadata stash list
	assert_contains "$OUT" "unchanged"
	printf 'b\n' >"$MEDIA/b"
	expect_ok git dnadata restore --force
	assert_eq "a" "$(ls "$MEDIA" | xargs)"
	expect_ok git dnadata stash list
	assert_contains "$OUT" "2 entries set aside"
}

# A restore keeps two batches of files open at once (~512 descriptors): a low soft limit on open files
# (here 200, as some shells and services set) is raised to the hard one, so it never fails the restore.
test_a_low_soft_limit_on_open_files_does_not_fail_a_restore() {
	setup_media
	local i
	for i in $(seq 700); do printf '%s\n' "$i" >"$MEDIA/f$i"; done
	expect_ok git dnadata snapshot
	rm -rf "${MEDIA:?}"/*
	run bash -c 'ulimit -Sn 200 && git dnadata restore --force'
	[ "$RC" = 0 ] || fail "restore under ulimit -Sn 200 failed: $ERR"
	assert_eq 700 "$(ls "$MEDIA" | wc -l)"
	assert_eq 700 "$(cat "$MEDIA/f700")"
}

# The media travels with the snapshot through the store: a fresh clone (its own database) restores the folder
# exactly; what a switch set aside in the first clone (a private snapshot) never reaches the store.
test_a_fresh_clone_restores_the_folder_from_the_store_and_set_asides_stay_local() {
	DNADATA_PASSPHRASE=pw repo_with_db mclone --store "file://$T/store"
	MEDIA=var/uploads
	printf 'media = %s\n' "$MEDIA" >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"
	make_odd_tree "$MEDIA"
	dd if=/dev/urandom of="$MEDIA/big.bin" bs=1M count=2 status=none
	tree "$MEDIA" >"$T/before"
	expect_ok git dnadata snapshot
	printf 'local\n' >"$MEDIA/local.txt"
	expect_ok git dnadata restore
	local priv
	priv=$(find .git/dnadata/cache/private -type f -not -path '*/packs/*' -not -path '*/index/*' -printf '%f\n')
	[ -n "$priv" ] || fail "nothing was set aside"
	expect_ok git dnadata push
	assert_no_file "$T/store/snapshots/$priv"
	local origin=$PWD
	git clone -q "$origin" "$T/clone"
	cd "$T/clone"
	DNADATA_DATABASE="dbname=$(pg_newdb mclone2)"
	export DNADATA_DATABASE
	DNADATA_PASSPHRASE=pw expect_ok git dnadata init
	expect_ok git dnadata restore
	tree "$MEDIA" >"$T/after"
	cmp -s "$T/before" "$T/after" || fail "the clone's folder differs: $(diff "$T/before" "$T/after" | head)"
	expect_ok git dnadata verify --read-data
}

test_status_says_whether_the_folder_changed_since_its_restore() {
	setup_media
	printf 'a\n' >"$MEDIA/a"
	expect_ok git dnadata snapshot
	local snap=$OUT
	expect_ok git dnadata status
	assert_contains "$OUT" "media $MEDIA: unchanged since ${snap:0:12}"
	expect_ok git dnadata status --json
	assert_contains "$OUT" "\"changes\":\"unchanged\",\"snapshot\":\"$snap\",\"pending\":false"
	printf 'b\n' >>"$MEDIA/a"
	expect_ok git dnadata status
	assert_contains "$OUT" "media $MEDIA: changed since ${snap:0:12}"
	expect_ok git dnadata status --json
	assert_contains "$OUT" "\"changes\":\"changed\""
	# `use` keeps a changed folder with its database; `restore` puts both back
	expect_ok git dnadata use clean
	assert_eq "$(printf 'a\nb')" "$(cat "$MEDIA/a")"
	expect_ok git dnadata restore
	assert_eq "a" "$(cat "$MEDIA/a")"
	expect_ok git dnadata status
	assert_contains "$OUT" "unchanged since ${snap:0:12}"
}

test_verify_covers_the_media_files() {
	setup_media
	printf 'small\n' >"$MEDIA/small"
	expect_ok git dnadata snapshot
	expect_ok git dnadata verify --read-data
	# a big file's own pack, removed from the store: verify names it
	local packs_before
	packs_before=$(find .git/dnadata/store -path '*packs*' -type f | sort)
	dd if=/dev/urandom of="$MEDIA/big.bin" bs=1M count=20 status=none
	expect_ok git dnadata snapshot
	local newpack
	newpack=$(comm -13 <(printf '%s\n' "$packs_before") <(find .git/dnadata/store -path '*packs*' -type f | sort) | head -n 1)
	[ -n "$newpack" ] || fail "the media file's snapshot wrote no pack"
	rm -f "$newpack"
	expect_fail 1 git dnadata verify
	assert_contains "$ERR" "media"
}

# `restore` on the same branch sets the edited folder aside with a stash no checkout brings back:
# `stash media` writes those files out, into a new or empty folder only.
test_stash_media_writes_out_what_a_restore_set_aside() {
	setup_media
	printf 'a\n' >"$MEDIA/a"
	expect_ok git dnadata snapshot
	mkdir "$MEDIA/new"
	printf 'mine\n' >"$MEDIA/new/mine"
	printf 'a, edited\n' >"$MEDIA/a"
	expect_ok git dnadata restore
	assert_eq "a" "$(cat "$MEDIA/a")"
	local stash
	stash=$(git dnadata stash list | awk '/entries set aside/ { print $1 }')
	[ -n "$stash" ] || fail "no stash lists the set-aside media"
	mkdir "$T/full" && printf 'x\n' >"$T/full/x"
	expect_fail 1 git dnadata stash media "$stash" "$T/full"
	assert_contains "$ERR" "is not empty"
	assert_eq "x" "$(ls "$T/full")"
	expect_ok git dnadata stash media "$stash" "$T/out"
	assert_contains "$OUT" "2 files"
	assert_eq "a, edited" "$(cat "$T/out/a")"
	assert_eq "mine" "$(cat "$T/out/new/mine")"
	expect_fail 1 git dnadata stash media nope "$T/out2"
	assert_contains "$ERR" "no stash named 'nope'"
}

# The private snapshots (media set aside) of the local cache: their manifests (FORMAT.md §3.5 "private/").
private_count() {
	find .git/dnadata/cache/private -type f -not -path '*/packs/*' -not -path '*/index/*' 2>/dev/null | wc -l
}

test_stash_drop_and_gc_release_the_media_set_aside() {
	setup_media
	printf 'a\n' >"$MEDIA/a"
	expect_ok git dnadata snapshot
	printf 'mine\n' >"$MEDIA/mine"
	expect_ok git dnadata restore
	assert_eq 1 "$(private_count)" "no private snapshot holds the set-aside file"
	local stash
	stash=$(git dnadata stash list | awk '/entries set aside/ { print $1 }')
	[ -n "$stash" ] || fail "no stash lists the set-aside media"
	# gc never drops it: it counts as edited
	expect_ok git dnadata gc
	assert_contains "$(git dnadata stash list)" "$stash"
	expect_ok git dnadata stash drop "$stash"
	assert_contains "$OUT" "the media files set aside with it are gone too"
	assert_eq 0 "$(private_count)"
	# a private snapshot no record names (a switch killed before recording it) is gc's
	printf 'again\n' >"$MEDIA/again"
	expect_ok git dnadata restore
	local rec
	rec=$(grep -l '^media ' .git/dnadata/pg/*/stash-* | head -n 1)
	rm "$rec"
	expect_ok git dnadata gc --dry-run
	assert_contains "$OUT" "would drop 1 media set-aside no stash names"
	expect_ok git dnadata gc
	assert_eq 0 "$(private_count)"
}

run_tests
