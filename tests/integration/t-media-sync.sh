#!/usr/bin/env bash
# t-media-sync.sh: the order in which a media restore makes files durable
# (src/media/apply.c), read from the system calls it makes (strace -f -y):
# every file it writes is fdatasync'd before it gets its name (renamed from
# a temporary name over a file that was there, or linked in as an anonymous
# O_TMPFILE file where nothing was), and a batch's files are all synced
# before the first of them gets its name. A power cut cannot be simulated
# here; the calls and their order are what the guarantee rests on.
. "$(dirname "$0")/../lib.sh"

export DNADATA_SKIP=1

# A folder of 3 subfolders of 4 files and 2 files at its root, captured; then 2 files changed (rewritten
# through a temporary name and a rename) and a subfolder and a root file removed (written anew, linked in).
setup_changed_folder() {
	type -P strace >/dev/null || fail "this test needs strace"
	repo_with_db msync
	MEDIA=var/uploads
	printf 'media = %s\n' "$MEDIA" >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"
	local d f
	for d in d1 d2 d3; do
		mkdir -p "$MEDIA/$d"
		for f in 1 2 3 4; do printf '%s/%s\n' "$d" "$f" >"$MEDIA/$d/f$f"; done
	done
	printf 'r1\n' >"$MEDIA/r1"
	printf 'r2\n' >"$MEDIA/r2"
	expect_ok git dnadata snapshot
	printf 'changed\n' >"$MEDIA/d1/f1"
	printf 'changed\n' >"$MEDIA/d2/f2"
	rm -r "$MEDIA/d3" "$MEDIA/r1"
}

# check_sync_order LOG: prints "synced-before-first-name renamed linked unsynced" from strace -f -y output:
# fdatasync'd files (their descriptor's path: a temporary name, or an anonymous file's "#<inode>", shown
# "…/#<inode>>(deleted)"),
# then each renameat (its source: folder + temporary name) or linkat (its descriptor's path) checked against them.
check_sync_order() {
	awk '
	function fdpath(s) { sub(/^[0-9]+</, "", s); sub(/>$/, "", s); return s }
	{ gsub(/>\(deleted\)/, " (deleted)>") }
	/<\.\.\. fdatasync resumed>.*= 0$/ || (/fdatasync\(.*\) += 0$/ && !/unfinished/) { done++ }
	/fdatasync\([0-9]+</ { s = $0; sub(/.*fdatasync\(/, "", s); sub(/>(\)| <unfinished).*/, ">", s); synced[fdpath(s)] = 1 }
	/ renameat2?\([0-9]+<.*"\.git-dnadata-tmp-/ {
		if (!named++) first = done
		s = $0; sub(/.*renameat2?\(/, "", s); dir = s; sub(/>, ".*/, ">", dir); name = s
		sub(/^[^"]*"/, "", name); sub(/".*/, "", name)
		if (!((fdpath(dir) "/" name) in synced)) bad++
		renamed++
	}
	/ linkat\(/ && /, "\.git-dnadata-tmp-[0-9a-f]*", AT_/ { next } # the probe for O_TMPFILE support
	/ linkat\([0-9]+<.*, "", / {
		if (!named++) first = done
		s = $0; sub(/.*linkat\(/, "", s); sub(/>, "", .*/, ">", s)
		if (!(fdpath(s) in synced)) bad++
		linked++
	}
	/ linkat\(AT_FDCWD, "\/proc\/self\/fd\// { if (!named++) first = done; linked++ } # no path to check
	END { printf "%d %d %d %d\n", first, renamed, linked, bad }' "$1"
}

test_every_written_file_is_synced_before_it_gets_its_name() {
	setup_changed_folder
	run strace -f -qq -y -o "$T/strace.log" -e trace=fdatasync,renameat,renameat2,linkat git-dnadata restore
	assert_eq 0 "$RC" "restore failed: $ERR"
	assert_eq "d1/1 d2/2 d3/1 d3/4 r1" "$(cat "$MEDIA/d1/f1" "$MEDIA/d2/f2" "$MEDIA/d3/f1" "$MEDIA/d3/f4" "$MEDIA/r1" | xargs)"
	local first renamed linked bad
	read -r first renamed linked bad < <(check_sync_order "$T/strace.log")
	# 2 files rewritten over what was there, 5 written where nothing was (4 in d3, r1)
	assert_eq "2 5" "$renamed $linked" "renamed / linked in: $(grep -E 'renameat|linkat' "$T/strace.log" | head -20)"
	assert_eq 0 "$bad" "a file got its name before it was synced: $(cat "$T/strace.log")"
	# the batch (all 7 files here) is synced before the first of them gets its name
	assert_eq 7 "$first" "files synced before the first rename or link: $(cat "$T/strace.log")"
	assert_eq "" "$(find "$MEDIA" -name '.git-dnadata-tmp-*')" "a temporary file was left"
}

run_tests
