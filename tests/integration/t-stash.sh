#!/usr/bin/env bash
# t-stash.sh: `git dnadata stash list` / `stash drop NAME` on the stashes a
# restore (or a switch) sets aside, and the status lines about them: sizes,
# edited yes/no/unknown, an unreachable server said and not fatal, unknown
# names refused in one line.
. "$(dirname "$0")/../lib.sh"

# The working database through a socket directory of our own, so removing
# the link takes "the server" down (as in t-status.sh).
setup_repo() {
	need_pg
	DB=$(pg_newdb stash)
	mkdir -p "$T/sock"
	server_up
	new_repo
	expect_ok git dnadata init --database "host=$T/sock dbname=$DB"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')"
	expect_ok git dnadata snapshot
	SNAP=$OUT
}

server_up() { ln -sf "$PGHOST/.s.PGSQL.$PGPORT" "$T/sock/.s.PGSQL.$PGPORT"; }
server_down() { rm -f "$T/sock/.s.PGSQL.$PGPORT"; }


working_dir() {
	dirname "$(find .git/dnadata/pg -name working | head -n 1)"
}

# record_copy KIND NAME SNAPSHOT MODIFIED [BRANCH]: the record the switch writes for an existing database
record_copy() {
	local kind=$1 name=$2 h prefix created=created
	h=$(python3 -c 'import hashlib, sys; print(hashlib.blake2b(sys.argv[1].encode(), digest_size=8).hexdigest())' "$name")
	case $kind in
	template) prefix=tmpl ;;
	stash) prefix=stash created=stashed ;;
	esac
	printf 'name %s\nkind %s\nsnapshot %s\nprofile clean\nbranch %s\nmodified %s\n%s 2026-01-01T00:00:00Z\n' \
		"$name" "$kind" "$3" "${5:-}" "$4" "$created" >"$(working_dir)/$prefix-$h"
}

test_list_without_stashes() {
	setup_repo
	expect_ok git dnadata stash list
	assert_eq "no stashes" "$OUT"
}

test_list_shows_each_stash_with_branch_edited_age_and_size() {
	setup_repo
	# a restore over an edited database keeps it as a stash, recorded as edited
	psql_q "$DB" "INSERT INTO t VALUES (2, 'mine')"
	expect_ok git dnadata restore --force
	local old
	old=$(databases_like "${DB}__dnadata_stash_")
	[ -n "$old" ] || fail "the restore made no stash"
	"$DD_PG_BINDIR/createdb" "${DB}__dnadata_stash_feature" >/dev/null
	record_copy stash "${DB}__dnadata_stash_feature" "$SNAP" yes feature/login
	expect_ok git dnadata stash list
	assert_contains "$OUT" "NAME"
	assert_contains "$OUT" "EDITED"
	local line
	line=$(printf '%s\n' "$OUT" | grep "^${DB}__dnadata_stash_feature ")
	assert_contains "$line" " feature/login "
	assert_contains "$line" " clean "
	assert_contains "$line" " ${SNAP:0:12} "
	assert_contains "$line" " yes "
	assert_contains "$line" " MiB"
	line=$(printf '%s\n' "$OUT" | grep "^$old ")
	assert_contains "$line" " yes "
	# status gives their sizes too
	expect_ok git dnadata status
	assert_contains "$OUT" "Stashed DBs:    "
	assert_contains "$(printf '%s\n' "$OUT" | grep "${DB}__dnadata_stash_feature (held")" " MiB"
	assert_contains "$OUT" "Cache budget:   "
}

# A kill -9 while a record was written atomically leaves its temporary file (<record>.tmp-XXXXXX, whole or
# cut short) beside it: no record, so a stash is listed once, and dropping it leaves no record of it.
test_a_temporary_record_file_left_by_a_kill_is_no_record() {
	setup_repo
	psql_q "$DB" "INSERT INTO t VALUES (2, 'mine')"
	expect_ok git dnadata restore --force
	local stash rec
	stash=$(databases_like "${DB}__dnadata_stash_")
	rec=$(grep -l "^name $stash\$" "$(working_dir)"/stash-*)
	cp "$rec" "$rec.tmp-AbC123"
	head -c 20 "$rec" >"$rec.tmp-XyZ789"
	expect_ok git dnadata stash list
	assert_eq 1 "$(printf '%s\n' "$OUT" | grep -c "^$stash ")" "the stash is listed once"
	expect_ok git dnadata stash drop "$stash"
	expect_ok git dnadata stash list
	assert_eq "no stashes" "$OUT"
}

test_list_with_the_server_down_says_so_and_succeeds() {
	setup_repo
	"$DD_PG_BINDIR/createdb" "${DB}__dnadata_stash_x" >/dev/null
	record_copy stash "${DB}__dnadata_stash_x" "$SNAP" no
	server_down
	expect_ok git dnadata stash list
	assert_contains "$OUT" "${DB}__dnadata_stash_x"
	assert_contains "$OUT" "could not be asked: sizes unknown"
	expect_ok git dnadata status
	assert_contains "$OUT" "Cache budget:   "
	server_up
}

test_drop_removes_a_stash_even_with_edits_and_says_what_was_dropped() {
	setup_repo
	"$DD_PG_BINDIR/createdb" "${DB}__dnadata_stash_feature" >/dev/null
	record_copy stash "${DB}__dnadata_stash_feature" "$SNAP" yes feature/login
	expect_ok git dnadata stash drop "${DB}__dnadata_stash_feature"
	assert_eq "dropped stash ${DB}__dnadata_stash_feature (branch feature/login, profile clean, snapshot ${SNAP:0:12}, its local edits are gone)" "$OUT"
	assert_eq "" "$(databases_like "${DB}__dnadata_stash_")"
	expect_ok git dnadata stash list
	assert_eq "no stashes" "$OUT"
	assert_eq 1 "$(psql_q "$DB" "SELECT count(*) FROM t")" "the working database was touched"
}

test_drop_refuses_unknown_names_templates_and_the_working_database() {
	setup_repo
	"$DD_PG_BINDIR/createdb" "${DB}__dnadata_tmpl_a" >/dev/null
	record_copy template "${DB}__dnadata_tmpl_a" "$SNAP" no
	expect_fail 1 git dnadata stash drop nope
	assert_contains "$ERR" "error: no stash named 'nope'"
	assert_contains "$ERR" "hint: \`git dnadata stash list\` shows the stashes"
	expect_fail 1 git dnadata stash drop "${DB}__dnadata_tmpl_a"
	assert_contains "$ERR" "error: no stash named '${DB}__dnadata_tmpl_a'"
	expect_fail 1 git dnadata stash drop "$DB"
	assert_eq "${DB}__dnadata_tmpl_a" "$(databases_like "${DB}__dnadata_tmpl_")"
	assert_eq 1 "$(psql_q "$DB" "SELECT count(*) FROM t")"
	expect_fail 2 git dnadata stash
	expect_fail 2 git dnadata stash pop x
}

test_gc_with_the_server_down_leaves_the_databases_alone_and_says_so() {
	setup_repo
	"$DD_PG_BINDIR/createdb" "${DB}__dnadata_tmpl_a" >/dev/null
	record_copy template "${DB}__dnadata_tmpl_a" "$SNAP" no
	printf '[database]\ncache_budget = 0\nstash_keep = 0\n' >.git/dnadata/config.ini
	server_down
	expect_ok git dnadata gc
	assert_contains "$ERR" "warning: gc: templates, spares and stashes left alone: "
	assert_contains "$OUT" "templates and spares 0 B (some unknown: server not reachable)"
	server_up
	assert_eq "${DB}__dnadata_tmpl_a" "$(databases_like "${DB}__dnadata_tmpl_")"
	expect_ok git dnadata gc
	assert_contains "$OUT" "dropped template ${DB}__dnadata_tmpl_a"
	assert_eq "" "$(databases_like "${DB}__dnadata_tmpl_")"
}

run_tests
