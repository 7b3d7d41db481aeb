#!/usr/bin/env bash
# t-diff.sh: `git dnadata diff` on real git and PostgreSQL, from manifests
# only: a schema change between two snapshots is one changed line of the
# normalised schema diff; tables added and removed; row-count changes;
# large objects and the database's locale changed alone;
# media files added, removed and changed; arguments as revisions,
# <rev>:<profile>, ref file paths, snapshot ids and prefixes; the default
# (HEAD against the work tree); --stat; --exit-code; a manifest only the
# store holds; a snapshot nowhere gives one clear error.
. "$(dirname "$0")/../lib.sh"

json_get() {
	printf '%s' "$OUT" | python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps($1))"
}

setup_repo() {
	repo_with_db diff --store "file://$T/store"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text, n int);
		INSERT INTO t SELECT i, 'v' || i, i FROM generate_series(1, 10) i;
		CREATE TABLE old (id int PRIMARY KEY); INSERT INTO old SELECT generate_series(1, 5)"
	expect_ok git dnadata snapshot
	A=$OUT
}

# the lines of $OUT's schema part that a diff adds or removes (not its ---/+++ header)
schema_changes() { echo "$OUT" | sed -n '/^schema (normalised):$/,/^media:$/p' | grep -E '^[-+]' | grep -vE '^(---|\+\+\+) '; }

test_a_schema_change_is_one_changed_line() {
	setup_repo
	psql_q "$DB" "ALTER TABLE t ALTER COLUMN v TYPE varchar(40)"
	expect_ok git dnadata snapshot
	local b=$OUT
	expect_ok git dnadata diff HEAD~1 HEAD
	assert_contains "$OUT" "diff HEAD~1:.dnadata/refs/clean (${A:0:12}) -> HEAD:.dnadata/refs/clean (${b:0:12})"
	assert_eq "-  , v text
+  , v character varying(40)" "$(schema_changes)"
	assert_contains "$OUT" "--- a/schema.sql"
	assert_not_contains "$OUT" "tables:" "the rows are the same"
	expect_ok git dnadata diff HEAD~1 HEAD --stat
	assert_contains "$OUT" " schema    | 1 line added, 1 removed"
	assert_contains "$OUT" " 0 tables changed (0 added, 0 removed); 15 rows; "
	# an added column: exactly its own line (the normalised layout puts the comma first)
	psql_q "$DB" "ALTER TABLE t ADD COLUMN extra int"
	expect_ok git dnadata snapshot
	expect_ok git dnadata diff HEAD~1 HEAD
	assert_eq "+  , extra integer" "$(schema_changes)"
	expect_ok git dnadata diff HEAD~1 HEAD --stat
	assert_contains "$OUT" " schema    | 1 line added, 0 removed"
}

test_tables_added_removed_and_row_counts() {
	setup_repo
	psql_q "$DB" "INSERT INTO t SELECT i, 'v' || i, i FROM generate_series(11, 25) i; DROP TABLE old;
		CREATE TABLE u (id int PRIMARY KEY); INSERT INTO u VALUES (1), (2), (3);
		UPDATE t SET n = 0 WHERE id = 1"
	expect_ok git dnadata snapshot
	local b=$OUT
	expect_ok git dnadata diff "$A" "$b"
	assert_contains "$OUT" "diff snapshot ${A:0:12} -> snapshot ${b:0:12}"
	assert_contains "$OUT" "tables:
  D public.old: 5 rows, "
	assert_contains "$OUT" "  M public.t: 10 -> 25 rows (+15), "
	assert_contains "$OUT" "  A public.u: 3 rows, "
	assert_contains "$OUT" "+CREATE TABLE public.u ("
	expect_ok git dnadata diff "$A" "$b" --stat
	assert_contains "$OUT" " public.old | 5 rows, "
	assert_contains "$OUT" " public.t   | 10 -> 25 rows (+15), "
	assert_contains "$OUT" " 3 tables changed (1 added, 1 removed); 15 -> 28 rows (+13); "
	expect_ok git dnadata diff "$A" "$b" --json
	assert_eq '[["public.old", "removed", 5, 0], ["public.t", "modified", 10, 25], ["public.u", "added", 0, 3]]' \
		"$(json_get '[[t["name"], t["change"], t["old_rows"], t["new_rows"]] for t in d["tables"]]')"
	assert_eq "[\"$A\", \"$b\", true, 15, 28]" \
		"$(json_get '[d["a"]["snapshot"], d["b"]["snapshot"], d["differs"], d["totals"]["a_rows"], d["totals"]["b_rows"]]')"
	assert_contains "$(json_get 'd["schema"]["patch"]')" "+CREATE TABLE public.u ("
	# the same number of rows, other data: still a change
	psql_q "$DB" "UPDATE u SET id = 4 WHERE id = 3"
	expect_ok git dnadata snapshot
	expect_ok git dnadata diff HEAD~1 HEAD
	assert_contains "$OUT" "  M public.u: 3 rows, 6 B, rows changed"
	# and backwards: removed and added swap
	expect_ok git dnadata diff "$b" "$A"
	assert_contains "$OUT" "  A public.old: 5 rows, "
	assert_contains "$OUT" "  D public.u: 3 rows, "
	assert_contains "$OUT" "  M public.t: 25 -> 10 rows (-15), "
}

test_default_is_head_against_the_work_tree_and_exit_code() {
	setup_repo
	expect_ok git dnadata diff
	assert_contains "$OUT" "diff HEAD:.dnadata/refs/clean (${A:0:12}) -> .dnadata/refs/clean (${A:0:12})"
	assert_contains "$OUT" "no change"
	expect_ok git dnadata diff --exit-code
	psql_q "$DB" "DELETE FROM t WHERE id > 5"
	expect_ok git dnadata snapshot --no-commit
	local b=$OUT
	expect_ok git dnadata diff
	assert_contains "$OUT" "-> .dnadata/refs/clean (${b:0:12})"
	assert_contains "$OUT" "  M public.t: 10 -> 5 rows (-5), "
	assert_not_contains "$OUT" "schema (normalised)" "the same schema: no schema part"
	assert_not_contains "$OUT" "sequences"
	run git dnadata diff --exit-code
	assert_eq 1 "$RC" "--exit-code: 1 when the snapshots differ"
	assert_eq "" "$ERR" "and no error line"
	assert_contains "$OUT" "public.t: 10 -> 5 rows"
	# one argument: it against the work tree
	expect_ok git dnadata diff main --stat
	assert_contains "$OUT" " public.t  | 10 -> 5 rows (-5), "
}

test_arguments_revisions_profiles_paths_and_prefixes() {
	setup_repo
	git tag first
	expect_ok git dnadata new-profile other
	git checkout -q -b feature
	psql_q "$DB" "INSERT INTO t VALUES (11, 'x', 11)"
	expect_ok git dnadata snapshot
	local b=$OUT
	git checkout -q main
	expect_ok git dnadata diff main:clean feature:clean --stat
	assert_contains "$OUT" "diff main:.dnadata/refs/clean (${A:0:12}) -> feature:.dnadata/refs/clean (${b:0:12})"
	assert_contains "$OUT" "10 -> 11 rows (+1)"
	expect_ok git dnadata diff first feature --stat
	assert_contains "$OUT" "10 -> 11 rows (+1)"
	expect_ok git dnadata diff "${A:0:10}" "${b:0:8}" --stat
	assert_contains "$OUT" "diff snapshot ${A:0:12} -> snapshot ${b:0:12}"
	git show feature:.dnadata/refs/clean >"$T/ref-b"
	expect_ok git dnadata diff .dnadata/refs/clean "$T/ref-b" --stat
	assert_contains "$OUT" "10 -> 11 rows (+1)"
	# a profile with no snapshot anywhere: everything of the other side is added
	expect_ok git dnadata diff main:other main:clean --stat
	assert_contains "$OUT" "diff main:.dnadata/refs/other (no snapshot) -> "
	assert_contains "$OUT" " 2 tables changed (2 added, 0 removed); 0 -> 15 rows (+15); "
	expect_ok git dnadata diff -p other
	assert_contains "$OUT" "no change"
	# what is not understood: one error line with what to type
	expect_fail 1 git dnadata diff nosuchthing
	assert_contains "$ERR" "error: 'nosuchthing' is neither a revision, a ref file nor a snapshot id"
	assert_contains "$ERR" "hint: give a branch, tag or commit"
	expect_fail 1 git dnadata diff nosuchrev:clean
	expect_fail 2 git dnadata diff a b c
}

test_media_added_removed_and_changed() {
	repo_with_db diffm
	printf 'media = var/uploads\n' >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY)"
	mkdir -p var/uploads/photos var/uploads/gone
	echo one >var/uploads/a.txt
	echo same >var/uploads/keep.txt
	echo old >var/uploads/gone/old.txt
	echo mode >var/uploads/m.sh
	touch -d '2020-01-01 00:00' var/uploads/touched.txt
	expect_ok git dnadata snapshot
	echo "one and more" >var/uploads/a.txt
	rm -r var/uploads/gone
	echo new >var/uploads/photos/new.jpg
	chmod 755 var/uploads/m.sh
	touch -d '2021-01-01 00:00' var/uploads/touched.txt
	expect_ok git dnadata snapshot
	expect_ok git dnadata diff HEAD~1 HEAD
	assert_contains "$OUT" "media:
  M a.txt: content, 4 B -> 13 B
  D gone/
  D gone/old.txt (4 B)
  M m.sh: mode
  A photos/new.jpg (4 B)
  M touched.txt: mtime"
	assert_not_contains "$OUT" "keep.txt"
	assert_not_contains "$OUT" "  M photos/" "a folder's mtime moving with its contents is no change"
	assert_not_contains "$OUT" "tables:"
	expect_ok git dnadata diff HEAD~1 HEAD --stat
	assert_contains "$OUT" " media     | 1 added, 2 removed, 3 changed"
}

# The large objects are a stream of their own (FORMAT.md §7): lo_put alone changes the snapshot id
# and nothing else, and diff must not call that "no change".
test_large_objects_changed_alone_differ() {
	setup_repo
	local oid
	oid=$(psql_q "$DB" "SELECT lo_from_bytea(0, 'hello large object')")
	expect_ok git dnadata snapshot
	local a=$OUT
	psql_q "$DB" "SELECT lo_put($oid, 0, 'HELLO')" >/dev/null
	expect_ok git dnadata snapshot
	local b=$OUT
	assert_ne "$a" "$b" "lo_put changes the snapshot"
	expect_ok git dnadata diff HEAD~1 HEAD
	assert_contains "$OUT" "large objects: changed, "
	assert_not_contains "$OUT" "no change"
	assert_not_contains "$OUT" "tables:"
	assert_not_contains "$OUT" "schema (normalised)"
	run git dnadata diff HEAD~1 HEAD --exit-code
	assert_eq 1 "$RC" "--exit-code: 1 when only the large objects differ"
	assert_eq "" "$ERR"
	expect_ok git dnadata diff HEAD~1 HEAD --stat
	assert_contains "$OUT" " large objects | changed, "
	expect_ok git dnadata diff HEAD~1 HEAD --json
	assert_eq true "$(json_get 'd["differs"]')"
	assert_eq true "$(json_get 'd["largeobjects_changed"]')"
	assert_eq false "$(json_get 'd["locale_changed"]')"
	assert_eq false "$(json_get 'd["other_changed"]')"
}

# The same rows in a database of another collation: only schema/pre-data's locale attributes differ.
test_locale_changed_alone_differs() {
	setup_repo
	local db2
	db2=$(pg_newdb diffc)
	psql_q postgres "DROP DATABASE $db2"
	psql_q postgres "CREATE DATABASE $db2 TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
	psql_q "$db2" "CREATE TABLE t (id int PRIMARY KEY, v text, n int);
		INSERT INTO t SELECT i, 'v' || i, i FROM generate_series(1, 10) i;
		CREATE TABLE old (id int PRIMARY KEY); INSERT INTO old SELECT generate_series(1, 5)"
	assert_ne "$(psql_q "$DB" "SELECT datcollate FROM pg_database WHERE datname = current_database()")" C
	DNADATA_DATABASE="dbname=$db2" expect_ok git dnadata snapshot
	local b=$OUT
	assert_ne "$A" "$b"
	expect_ok git dnadata diff HEAD~1 HEAD
	assert_contains "$OUT" "locale: lc_collate "
	assert_contains "$OUT" " -> C, lc_ctype "
	assert_not_contains "$OUT" "no change"
	assert_not_contains "$OUT" "tables:"
	run git dnadata diff HEAD~1 HEAD --exit-code
	assert_eq 1 "$RC"
	expect_ok git dnadata diff HEAD~1 HEAD --json
	assert_eq true "$(json_get 'd["locale_changed"]')"
	assert_eq '["lc_collate", "lc_ctype"]' "$(json_get '[x["attribute"] for x in d["locale"]]')"
	assert_eq '"C"' "$(json_get 'd["locale"][0]["new"]')"
}

test_a_manifest_only_the_store_holds_is_fetched() {
	setup_repo
	psql_q "$DB" "INSERT INTO t VALUES (11, 'x', 11)"
	expect_ok git dnadata snapshot
	local b=$OUT
	rm .git/dnadata/cache/snapshots/"$A"
	expect_ok git dnadata diff HEAD~1 HEAD --stat
	assert_contains "$OUT" "10 -> 11 rows (+1)"
}

test_a_missing_snapshot_is_one_clear_error() {
	setup_repo
	local ghost=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
	printf 'dnadata-ref 1\nsnapshot %s\n' "$ghost" >.dnadata/refs/clean
	expect_fail 1 git dnadata diff
	assert_contains "$ERR" "error: snapshot ${ghost:0:12} (.dnadata/refs/clean) is in neither the local cache nor the store"
	assert_contains "$ERR" "hint: run \`git dnadata push\` on the machine that took it"
	git checkout -q .dnadata/refs/clean
	psql_q "$DB" "INSERT INTO t VALUES (11, 'x', 11)"
	expect_ok git dnadata snapshot
	rm .git/dnadata/cache/snapshots/"$A" "$T/store/snapshots/$A"
	expect_fail 1 git dnadata diff "$A" HEAD
	assert_contains "$ERR" "error: snapshot ${A:0:12} (snapshot ${A:0:12}) is in neither the local cache nor the store"
}

# A listing that fails is named as such, not reported as "no such snapshot"
test_a_failing_listing_is_its_own_error() {
	setup_repo
	chmod 000 .git/dnadata/cache/snapshots
	run no_dac git dnadata diff abcdef12
	chmod 755 .git/dnadata/cache/snapshots
	assert_eq 1 "$RC"
	assert_contains "$ERR" "error: looking for snapshots whose id starts with abcdef12: listing the snapshots of the local cache"
	assert_not_contains "$ERR" "is neither a revision"
}

run_tests
