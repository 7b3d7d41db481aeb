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

run_tests
