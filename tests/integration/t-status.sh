#!/usr/bin/env bash
# t-status.sh: what `git dnadata status` says about the working database's
# stashes and leftover copies, against the real server: a stash the user
# dropped is not listed (and its record is removed), stashes are marked
# unverified while the server cannot be reached (and status still exits 0),
# and a copy left by a restore killed with -9 is shown, with its pid and
# whether that process lives, until a later command drops it.
. "$(dirname "$0")/../lib.sh"

# The working database is reached through a socket directory of our own
# ($T/sock) holding a link to the cluster's socket: removing the link takes
# "the server" down without changing the host and port the records of
# .git/dnadata/pg/ are kept under.
setup_repo() {
	need_pg
	DB=$(pg_newdb stat)
	mkdir -p "$T/sock"
	server_up
	new_repo
	expect_ok git dnadata init --database "host=$T/sock dbname=$DB"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')"
}

server_up() { ln -sf "$PGHOST/.s.PGSQL.$PGPORT" "$T/sock/.s.PGSQL.$PGPORT"; }
server_down() { rm -f "$T/sock/.s.PGSQL.$PGPORT"; }


stash_records() {
	find .git/dnadata/pg -name 'stash-*' | grep -c . || true
}

json_get() {
	printf '%s' "$OUT" | python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps($1))"
}

# A snapshot and two restores: two stashes.
make_two_stashes() {
	expect_ok git dnadata snapshot
	expect_ok git dnadata restore --force
	expect_ok git dnadata restore --force
	STASHES=$(databases_like "${DB}__dnadata_stash_")
	assert_eq 2 "$(echo "$STASHES" | grep -c .)" "two restores make two stashes"
	assert_eq 2 "$(stash_records)"
}

test_status_does_not_list_a_stash_that_was_dropped() {
	setup_repo
	make_two_stashes
	local gone kept
	gone=$(echo "$STASHES" | head -n 1)
	kept=$(echo "$STASHES" | tail -n 1)
	"$DD_PG_BINDIR/dropdb" "$gone"
	expect_ok git dnadata status
	assert_not_contains "$OUT" "$gone (held"
	assert_contains "$OUT" "Stashed DBs:    $kept (held "
	assert_not_contains "$OUT" "unverified"
	assert_eq 1 "$(stash_records)" "the record of the dropped stash is removed"
	expect_ok git dnadata status --json
	assert_eq "[[\"$kept\", true]]" "$(json_get '[[s["name"], s["verified"]] for s in d["working_database"]["stashes"]]')"
	assert_eq "null" "$(json_get 'd["working_database"]["verify_error"]')"
}

test_status_marks_stashes_unverified_while_the_server_is_down() {
	setup_repo
	make_two_stashes
	server_down
	expect_ok git dnadata status
	local s
	for s in $STASHES; do
		assert_contains "$OUT" "$s (held "
	done
	assert_contains "$OUT" "; unverified)"
	assert_contains "$OUT" "unknown whether it changed since restore (checking whether database $DB changed: cannot connect to PostgreSQL"
	assert_contains "$OUT" "unverified: could not ask the server which still exist (as above)"
	expect_ok git dnadata status --json
	assert_eq "[false, false]" "$(json_get '[s["verified"] for s in d["working_database"]["stashes"]]')"
	assert_contains "$(json_get 'd["working_database"]["verify_error"]')" "cannot connect to PostgreSQL"
	assert_eq 2 "$(stash_records)" "nothing is forgotten while the server cannot be asked"
	server_up
	expect_ok git dnadata status
	assert_not_contains "$OUT" "unverified"
	for s in $STASHES; do
		assert_contains "$OUT" "$s (held "
	done
}

# The restore is held inside its load, after its new copy exists: the
# snapshot grants a role SELECT, and another session holds DROP ROLE of it
# uncommitted, so the GRANT waits for that role's lock.
start_blocked_restore() {
	ROLE=dd_blocker_$$_$RANDOM
	psql_q postgres "CREATE ROLE $ROLE"
	psql_q "$DB" "GRANT SELECT ON t TO $ROLE"
	expect_ok git dnadata snapshot
	psql_q "$DB" "REVOKE SELECT ON t FROM $ROLE"
	mkfifo "$T/holder.in"
	"$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d postgres <"$T/holder.in" >"$T/holder.out" 2>&1 &
	HOLDER=$!
	exec 7>"$T/holder.in"
	echo "BEGIN; DROP ROLE $ROLE; SELECT 'locked';" >&7
	wait_for "[ \"\$(cat '$T/holder.out')\" = locked ]" "the DROP ROLE session"
	# git-dnadata itself, not the git wrapper (which cannot pass on a SIGKILL)
	git-dnadata restore --force >"$T/restore.out" 2>"$T/restore.err" &
	RESTORE=$!
	# a restore builds the snapshot's template first (tmpl_), pending until complete
	wait_for "[ -n \"\$(psql_q postgres \"SELECT 1 FROM pg_stat_activity WHERE datname LIKE '${DB}__dnadata_tmpl_%' AND wait_event_type = 'Lock'\")\" ]" \
		"the restore to wait for the role's lock"
	LEFT=$(databases_like "${DB}__dnadata_tmpl_")
	assert_eq "${DB}__dnadata_tmpl_$(sed -n "s/^snapshot //p" .dnadata/refs/clean | cut -c1-12)" "$LEFT"
}

release_holder() {
	echo "ROLLBACK;" >&7
	exec 7>&-
	wait "$HOLDER"
}

# wait_for CONDITION WHAT: poll a state (not a time), up to lib.sh's hang guard.
wait_for() {
	for _ in $(seq "$DD_WAIT_POLLS"); do
		eval "$1" && return 0
		sleep 0.05
	done
	fail "timed out waiting for $2"
}

test_status_shows_a_copy_left_by_a_killed_restore_until_it_is_dropped() {
	setup_repo
	start_blocked_restore
	expect_ok git dnadata status
	assert_contains "$OUT" "Leftover DBs:   $LEFT (being built by process $RESTORE, still running)"
	kill -KILL "$RESTORE"
	wait "$RESTORE" || true
	release_holder
	expect_ok git dnadata status
	assert_contains "$OUT" "Leftover DBs:   $LEFT (left by process $RESTORE, no longer running; the next restore, snapshot or use drops it)"
	expect_ok git dnadata status --json
	assert_eq "[[\"$LEFT\", $RESTORE, false, true, true]]" \
		"$(json_get '[[p["name"], p["pid"], p["process_alive"], p["verified"], p["exists"]] for p in d["working_database"]["leftovers"]]')"
	server_down
	expect_ok git dnadata status
	assert_contains "$OUT" "Leftover DBs:   $LEFT (left by process $RESTORE, no longer running; the next restore, snapshot or use drops it; unverified)"
	expect_ok git dnadata status --json
	assert_eq "[false, null]" "$(json_get '[[p["verified"], p["exists"]] for p in d["working_database"]["leftovers"]][0]')"
	server_up
	expect_ok git dnadata restore --force
	assert_contains "$ERR" "dropped $LEFT"
	expect_ok git dnadata status
	assert_not_contains "$OUT" "Leftover DBs:"
	assert_eq "" "$(databases_like "${DB}__dnadata_new_")"
}

# Every field the README's schema lists, at its place and of its type.
test_status_json_has_every_field_of_the_schema() {
	setup_repo
	expect_ok git dnadata snapshot --dump-only
	expect_ok git dnadata restore --force
	expect_ok git dnadata status --json
	printf '%s' "$OUT" | python3 -c '
import json, sys
d = json.load(sys.stdin)
def has(obj, keys, where):
    for k in keys.split():
        assert k in obj, "%s: no field %s" % (where, k)
has(d, "status_version workdir active_profile active_profile_source active_profile_defined store database "
       "settings_changed hooks hooks_detail working_database local profiles", "top")
has(d["store"], "url source", "store")
has(d["hooks_detail"], "dir core_hooks_path hooks", "hooks_detail")
for h in d["hooks_detail"]["hooks"]:
    has(h, "name state chained executable", "hooks_detail.hooks")
has(d["working_database"], "name server snapshot profile since how changes changes_detail stashes leftovers "
       "verify_error", "working_database")
has(d["local"], "cache_bytes copies_bytes cache_budget stash_keep copies copies_error templates spares stashes "
       "stashes_unedited budget_used_bytes over_budget pending_uploads", "local")
for k in ("templates", "spares", "stashes"):
    has(d["local"][k], "count bytes", "local." + k)
for p in d["profiles"]:
    has(p, "name active ref snapshot ref_error ref_changed media database media_state post_restore "
           "post_restore_error", "profiles")
assert d["status_version"] == 1
assert isinstance(d["local"]["over_budget"], bool)
assert isinstance(d["local"]["templates"]["count"], int)
'
	# one restore: its template, and the database it replaced as a stash; the snapshot not pushed
	assert_eq "[1, 0, 1]" "$(json_get '[d["local"][k]["count"] for k in ("templates", "spares", "stashes")]')"
	assert_eq "true" "$(json_get 'd["local"]["templates"]["bytes"] > 0')"
	assert_eq "[\"$(sed -n 's/^snapshot //p' .dnadata/refs/clean)\"]" "$(json_get 'd["local"]["pending_uploads"]')"
	assert_eq "[\"post-checkout\", \"post-merge\", \"post-rewrite\", \"pre-push\"]" \
		"$(json_get '[h["name"] for h in d["hooks_detail"]["hooks"] if h["state"] == "installed" and h["executable"]]')"
	assert_eq "[true, true, false, 0]" \
		"$(json_get '[d["profiles"][0]["post_restore"][k] for k in ("ok", "current", "skipped", "commands")]')" \
		"no post_restore command: the restore is recorded with none"
	expect_ok git dnadata status
	assert_contains "$OUT" "Local copies:   1 template ("
	assert_contains "$OUT" ", 0 spares, 1 stash ("
	assert_contains "$OUT" "(stash_keep 5)"
	assert_contains "$OUT" "Not pushed:     $(sed -n 's/^snapshot //p' .dnadata/refs/clean | cut -c1-12)"
}

test_status_shows_where_the_hooks_are_and_which_chain_to_yours() {
	setup_repo
	mkdir .husky
	printf '#!/bin/sh\necho mine\n' >.husky/post-checkout
	chmod +x .husky/post-checkout
	git config core.hooksPath .husky
	expect_ok git dnadata install-hooks
	expect_ok git dnadata status
	assert_contains "$OUT" "Git hooks:      installed"
	assert_contains "$OUT" "in $T/repo/.husky (core.hooksPath); running your own first: post-checkout"$'\n'
	expect_ok git dnadata status --json
	assert_eq "[\"$T/repo/.husky\", true]" "$(json_get '[d["hooks_detail"]["dir"], d["hooks_detail"]["core_hooks_path"]]')"
	assert_eq "[[\"post-checkout\", true], [\"post-merge\", false]]" \
		"$(json_get '[[h["name"], h["chained"]] for h in d["hooks_detail"]["hooks"][:2]]')"
	chmod -x .husky/pre-push
	expect_ok git dnadata status
	assert_contains "$OUT" "; not executable (git skips them): pre-push"
}

# A hook's restore cannot fail the checkout: status is where a failed post_restore shows.
test_status_shows_a_failed_post_restore_and_then_its_success() {
	setup_repo
	expect_ok git dnadata snapshot
	printf '\n[hooks]\npost_restore = true\npost_restore = echo migrating; exit 3\n' >>.dnadata/profiles.ini
	expect_fail 1 git dnadata restore --force
	local id
	id=$(sed -n 's/^snapshot //p' .dnadata/refs/clean)
	expect_ok git dnadata status
	assert_contains "$OUT" "post_restore: FAILED: command 2 of 2 (echo migrating; exit 3) exited with 3"
	assert_contains "$OUT" "the data of ${id:0:12} is restored: fix it and run the rest by hand (or \`git dnadata restore --force\`)"
	expect_ok git dnadata status --json
	assert_eq "[false, 2, 2, 3, \"echo migrating; exit 3\", \"$id\"]" \
		"$(json_get '[d["profiles"][0]["post_restore"][k] for k in ("ok", "commands", "failed_command", "exit_status", "command", "snapshot")]')"
	# the data stayed restored
	assert_eq "one" "$(psql_q "$DB" "SELECT v FROM t WHERE id = 1")"
	sed -i 's/^post_restore = echo migrating; exit 3$/post_restore = echo migrated/' .dnadata/profiles.ini
	expect_ok git dnadata restore --force
	expect_ok git dnadata status
	assert_contains "$OUT" "post_restore: ok (2 commands, "
	assert_not_contains "$OUT" "FAILED"
	expect_ok git dnadata status --json
	assert_eq "[true, null, null, null]" \
		"$(json_get '[d["profiles"][0]["post_restore"][k] for k in ("ok", "failed_command", "exit_status", "command")]')"
}

# The record describes the snapshot its restore left: once the working database holds another (here a snapshot
# taken from it), a failure on the old one is stale, not shown, and JSON says so.
test_status_does_not_show_a_stale_post_restore_record() {
	setup_repo
	expect_ok git dnadata snapshot
	printf '\n[hooks]\npost_restore = exit 3\n' >>.dnadata/profiles.ini
	expect_fail 1 git dnadata restore --force
	expect_ok git dnadata status
	assert_contains "$OUT" "post_restore: FAILED: command 1 of 1 (exit 3)"
	expect_ok git dnadata status --json
	assert_eq "[false, true]" "$(json_get '[d["profiles"][0]["post_restore"][k] for k in ("ok", "current")]')"
	psql_q "$DB" "INSERT INTO t VALUES (9, 'nine')"
	expect_ok git dnadata snapshot
	expect_ok git dnadata status
	assert_not_contains "$OUT" "post_restore:" "the database holds a newer snapshot: the old run is not reported"
	expect_ok git dnadata status --json
	assert_eq "[false, false]" "$(json_get '[d["profiles"][0]["post_restore"][k] for k in ("ok", "current")]')"
}

run_tests
