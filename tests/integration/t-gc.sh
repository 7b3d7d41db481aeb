#!/usr/bin/env bash
# t-gc.sh: `git dnadata gc` enforces cache_budget and stash_keep, locally.
#
# Clone A takes three snapshots (branches x, y, z) into a file:// store; a
# second clone B fetches them, so B's cache holds copies of what the store
# holds (loose objects: the candidates). What B last used is set with
# `touch -d` on its cache/used/ records, so the order is the test's choice,
# not the clock's. Templates, spares and stashes are made the way the switch
# records them (a database plus its record in .git/dnadata/pg/<key>/).
. "$(dirname "$0")/../lib.sh"

# The checkouts here only make branches: the post-checkout hook would switch the database on each, and the
# switch keeps every restored snapshot as a template, which the cache budget counts.
export DNADATA_SKIP=1

CACHE=.git/dnadata/cache

# cache_bytes: what the cache's own files take (a hard link shared with the store costs nothing)
cache_bytes() {
	find "$CACHE" -type f -links 1 -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

cache_files() {
	(cd "$CACHE" && find packs data -type f 2>/dev/null | sort)
}


# snap BRANCH SEED: on a new branch from main, fill t with SEED's rows and snapshot it; SNAP gets the id
snap() {
	git checkout -q -b "$1" main
	psql_q "$DB" "TRUNCATE t; INSERT INTO t SELECT i, md5((i * $2)::text) || md5(i::text || '$2') FROM generate_series(1, 30000) i; ANALYZE"
	expect_ok git dnadata snapshot
	SNAP=$OUT
	git checkout -q main
}

# A with x, y, z in the store; B (cwd) a clone that fetched all three.
setup_clones() {
	DNADATA_PASSPHRASE=pw repo_with_db gc --store "file://$T/store"
	ORIGIN=$PWD
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text)"
	snap x 3; X=$SNAP
	snap y 5; Y=$SNAP
	snap z 7; Z=$SNAP
	git clone -q "$ORIGIN" "$T/b"
	cd "$T/b"
	DNADATA_PASSPHRASE=pw expect_ok git dnadata init
	for b in x y z; do
		git checkout -q "$b"
		expect_ok git dnadata fetch
	done
	git checkout -q main
	TZ=UTC touch -d '2026-01-01 00:00' "$CACHE/used/$X"
	TZ=UTC touch -d '2026-01-02 00:00' "$CACHE/used/$Y"
	TZ=UTC touch -d '2026-01-03 00:00' "$CACHE/used/$Z"
}

set_local() {
	printf '[database]\n%s\n' "$*" >.git/dnadata/config.ini
}

# the rows of t as one hash, to compare a restore with what was snapshotted
table_hash() {
	psql_q "$DB" "SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM t"
}

test_gc_removes_the_least_recently_used_snapshot_first() {
	setup_clones
	local before
	before=$(cache_bytes)
	[ "$before" -gt 1000000 ] || fail "the fetches left only $before bytes in the cache"
	set_local "cache_budget = $((before - 1))"
	expect_ok git dnadata gc
	assert_contains "$OUT" "of snapshot ${X:0:12} (last used 2026-01-01"
	assert_not_contains "$OUT" "${Y:0:12}"
	assert_not_contains "$OUT" "${Z:0:12}"
	assert_contains "$OUT" "gc: freed "
	[ "$(cache_bytes)" -le $((before - 1)) ] || fail "the cache still takes $(cache_bytes) bytes, budget $((before - 1))"
	# a budget that holds: nothing to do
	expect_ok git dnadata gc
	assert_contains "$OUT" "gc: nothing to remove"
}

test_snapshots_no_branch_names_go_first() {
	setup_clones
	# x is the most recently used, but no branch names it any more
	TZ=UTC touch -d '2026-02-01 00:00' "$CACHE/used/$X"
	git branch -q -D x
	set_local "cache_budget = $(($(cache_bytes) - 1))"
	expect_ok git dnadata gc
	assert_contains "$OUT" "of snapshot ${X:0:12} (last used 2026-02-01 00:00 UTC, no branch names it)"
	assert_not_contains "$OUT" "${Y:0:12}"
}

test_the_budget_is_honoured_down_to_zero_and_restores_still_work() {
	setup_clones
	set_local "cache_budget = 0"
	expect_ok git dnadata gc
	assert_eq "" "$(cache_files)" "budget 0: every pack and object the store holds is gone"
	# index files and manifests stay: they say where the store has everything
	[ -n "$(ls "$CACHE/index")" ] || fail "gc removed the index files"
	assert_file "$CACHE/snapshots/$X"
	# what was removed is read from the store again
	git checkout -q y
	expect_ok git dnadata restore --force
	assert_eq 30000 "$(psql_q "$DB" "SELECT count(*) FROM t")"
}

test_dry_run_removes_nothing_and_tells_the_truth() {
	setup_clones
	git branch -q -D y
	set_local "cache_budget = 1M"
	local files_before dry
	files_before=$(cache_files)
	expect_ok git dnadata gc --dry-run -v
	dry=$OUT
	assert_contains "$dry" "would remove "
	assert_contains "$dry" "gc: would free "
	assert_eq "$files_before" "$(cache_files)" "--dry-run removed files"
	expect_ok git dnadata gc -v
	# the same lines, with the verb of a real run
	assert_eq "$(printf '%s\n' "$dry" | sed 's/^would remove /removed /; s/^gc: would free /gc: freed /')" "$OUT"
	# and the files it named are exactly the ones gone
	local named gone
	named=$(printf '%s\n' "$dry" | sed -n 's/^    //p' | sort)
	gone=$(comm -23 <(printf '%s\n' "$files_before") <(cache_files))
	[ -n "$gone" ] || fail "gc removed nothing"
	assert_eq "$named" "$gone" "the files --dry-run listed are not the ones gc removed"
}

test_a_snapshot_waiting_for_push_is_never_removed() {
	setup_clones
	git checkout -q -b mine
	psql_q "$DB" "UPDATE t SET v = 'mine' WHERE id <= 10000"
	expect_ok git dnadata snapshot --dump-only
	local mine=$OUT packs
	packs=$(cd "$CACHE" && find packs -type f | sort)
	[ -n "$packs" ] || fail "the dump-only snapshot wrote no pack"
	expect_ok git dnadata status
	assert_contains "$OUT" "Not pushed:     ${mine:0:12} (in the local cache only: \`git dnadata push\` uploads it)"
	set_local "cache_budget = 0"
	expect_ok git dnadata gc
	assert_eq "$packs" "$(cd "$CACHE" && find packs -type f | sort)" "gc removed a pack the store does not hold"
	assert_contains "$OUT" "not pushed yet"
	# the push needs exactly those packs: it works, and the store then has the whole snapshot
	expect_ok git dnadata push
	expect_ok git dnadata verify --read-data
	expect_ok git dnadata status
	assert_not_contains "$OUT" "Not pushed:"
	expect_ok git dnadata restore --force
	assert_eq 10000 "$(psql_q "$DB" "SELECT count(*) FROM t WHERE v = 'mine'")"
}

test_a_local_store_sharing_the_cache_files_has_nothing_to_remove() {
	repo_with_db gclocal
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 30000) i; ANALYZE"
	expect_ok git dnadata snapshot
	set_local "cache_budget = 0"
	local files
	files=$(cache_files)
	expect_ok git dnadata gc
	assert_contains "$OUT" "gc: nothing to remove"
	assert_eq "$files" "$(cache_files)"
}

test_kill_9_during_gc_leaves_a_readable_cache() {
	setup_clones
	local want_y
	git checkout -q y
	expect_ok git dnadata restore --force
	want_y=$(table_hash)
	git checkout -q main
	set_local "cache_budget = 0"
	local before
	before=$(cache_files | wc -l)
	# git-dnadata itself, not the git wrapper (which cannot pass on a SIGKILL)
	local rc=0
	DNADATA_TEST_GC_DIE_AFTER=3 git-dnadata gc >"$T/out" 2>"$T/err" || rc=$?
	assert_eq 137 "$rc" "gc was not killed"
	assert_eq $((before - 3)) "$(cache_files | wc -l)" "the kill did not land after three removals"
	# every command still reads the cache: a dry run plans, restores read what is left or the store
	expect_ok git dnadata gc --dry-run
	git checkout -q y
	psql_q "$DB" "TRUNCATE t"
	expect_ok git dnadata restore --force
	assert_eq "$want_y" "$(table_hash)"
	expect_ok git dnadata gc
	assert_eq "" "$(cache_files)"
}

test_two_gc_runs_take_turns() {
	setup_clones
	set_local "cache_budget = 0"
	local files lock=.git/dnadata/locks/gc.lock
	files=$(cache_files)
	mkdir -p .git/dnadata/locks
	# another gc: a process holding the lock until its standard input closes
	coproc HOLDER { flock "$lock" cat; }
	local start=$SECONDS
	while flock -n "$lock" true; do
		[ $((SECONDS - start)) -lt 10 ] || fail "the holder never took the lock"
	done
	git-dnadata gc >"$T/out" 2>"$T/err" &
	local pid=$!
	start=$SECONDS
	until grep -q "another gc is running; waiting for it" "$T/err"; do
		[ $((SECONDS - start)) -lt 10 ] || fail "gc did not say it waits: $(cat "$T/err")"
	done
	assert_eq "$files" "$(cache_files)" "gc removed files while another held the lock"
	local holder=$HOLDER_PID
	eval "exec ${HOLDER[1]}>&-"
	wait "$holder" || true
	wait "$pid" || fail "gc failed once the lock was free: $(cat "$T/err")"
	assert_eq "" "$(cache_files)"
}

# ---- templates, spares, stashes ----

# make_copy KIND NAME SNAPSHOT MODIFIED USED [FINGERPRINT]: the database (an empty one, unless it
# exists) and its record, as the switch writes them
make_copy() {
	local kind=$1 name=$2 snap=$3 modified=$4 used=$5 fp=${6:-} dir h prefix created=created
	[ -n "$(databases_like "$name")" ] || "$DD_PG_BINDIR/createdb" "$name" >/dev/null || fail "createdb $name"
	dir=$(working_dir)
	[ -d "$dir" ] || fail "no working database record"
	h=$(python3 -c 'import hashlib, sys; print(hashlib.blake2b(sys.argv[1].encode(), digest_size=8).hexdigest())' "$name")
	case $kind in
	template) prefix=tmpl ;;
	spare) prefix=spare ;;
	stash) prefix=stash created=stashed ;;
	esac
	printf 'name %s\nkind %s\nsnapshot %s\nprofile clean\nbranch %s\nmodified %s\n%s %s\nused %s\n' \
		"$name" "$kind" "$snap" "${BRANCH:-}" "$modified" "$created" "$used" "$used" >"$dir/$prefix-$h"
	[ -z "$fp" ] || printf 'fingerprint %s\n' "$fp" >>"$dir/$prefix-$h"
}

working_dir() {
	dirname "$(find .git/dnadata/pg -name working | head -n 1)"
}

# make_unedited_stash NAME USED: the working database, snapshotted (its change fingerprint recorded),
# renamed aside with that fingerprint as a stash, the way a switch leaves it; then a new working database
make_unedited_stash() {
	psql_q "$DB" "INSERT INTO t VALUES ((SELECT max(id) + 1 FROM t), '$1')"
	expect_ok git dnadata snapshot
	local fp
	fp=$(sed -n 's/^fingerprint //p' "$(working_dir)/working")
	[ -n "$fp" ] || fail "the snapshot recorded no fingerprint"
	psql_q postgres "ALTER DATABASE $DB RENAME TO $1"
	BRANCH=b make_copy stash "$1" "$OUT" no "$2" "$fp"
	"$DD_PG_BINDIR/createdb" "$DB" >/dev/null
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')"
}

setup_db() {
	repo_with_db gcdb
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')"
	expect_ok git dnadata snapshot
	SNAP=$OUT
}

test_stash_keep_drops_the_oldest_unedited_stashes_and_never_one_with_edits() {
	setup_db
	make_unedited_stash "${DB}__dnadata_stash_1" 2026-01-01T00:00:00Z
	BRANCH=b make_copy stash "${DB}__dnadata_stash_2" "$SNAP" yes 2026-01-02T00:00:00Z
	make_unedited_stash "${DB}__dnadata_stash_3" 2026-01-03T00:00:00Z
	BRANCH=d make_copy stash "${DB}__dnadata_stash_4" "$SNAP" unknown 2026-01-04T00:00:00Z
	make_unedited_stash "${DB}__dnadata_stash_5" 2026-01-05T00:00:00Z
	set_local "stash_keep = 1"
	local all
	all=$(databases_like "${DB}__dnadata_stash_")
	expect_ok git dnadata gc --dry-run
	assert_contains "$OUT" "would drop stash ${DB}__dnadata_stash_1 ("
	assert_contains "$OUT" "would drop stash ${DB}__dnadata_stash_3 ("
	assert_not_contains "$OUT" "drop stash ${DB}__dnadata_stash_5 "
	assert_contains "$OUT" "kept stash ${DB}__dnadata_stash_2: it holds local edits (or may); drop it with \`git dnadata stash drop ${DB}__dnadata_stash_2\`"
	assert_contains "$OUT" "kept stash ${DB}__dnadata_stash_4: "
	assert_contains "$OUT" "2 stashes with local edits kept"
	assert_eq "$all" "$(databases_like "${DB}__dnadata_stash_")" "--dry-run dropped a database"
	expect_ok git dnadata gc
	assert_contains "$OUT" "dropped stash ${DB}__dnadata_stash_1 ("
	assert_contains "$OUT" "dropped stash ${DB}__dnadata_stash_3 ("
	assert_eq "$(printf '%s\n' "${DB}__dnadata_stash_2" "${DB}__dnadata_stash_4" "${DB}__dnadata_stash_5")" \
		"$(databases_like "${DB}__dnadata_stash_")"
	assert_eq 1 "$(psql_q "$DB" "SELECT count(*) FROM t")" "the working database was touched"
	# edited stashes survive any number of runs
	expect_ok git dnadata gc
	assert_contains "$OUT" "kept stash ${DB}__dnadata_stash_2"
	assert_eq 3 "$(databases_like "${DB}__dnadata_stash_" | wc -l)"
}

test_a_stash_edited_after_it_was_stashed_is_kept_and_the_dry_run_says_so() {
	setup_db
	make_unedited_stash "${DB}__dnadata_stash_1" 2026-01-01T00:00:00Z
	make_unedited_stash "${DB}__dnadata_stash_2" 2026-01-02T00:00:00Z
	set_local "stash_keep = 0"
	# someone works in the older stash after it was set aside
	psql_q "${DB}__dnadata_stash_1" "INSERT INTO t VALUES (1000, 'edited in the stash')"
	expect_ok git dnadata gc --dry-run
	assert_contains "$OUT" "would drop stash ${DB}__dnadata_stash_2 ("
	assert_contains "$OUT" "kept stash ${DB}__dnadata_stash_1: it holds local edits"
	expect_ok git dnadata gc
	assert_contains "$OUT" "dropped stash ${DB}__dnadata_stash_2 ("
	assert_contains "$OUT" "kept stash ${DB}__dnadata_stash_1: it holds local edits"
	assert_eq "${DB}__dnadata_stash_1" "$(databases_like "${DB}__dnadata_stash_")"
	assert_eq 1 "$(psql_q "${DB}__dnadata_stash_1" "SELECT count(*) FROM t WHERE id = 1000")"
}

test_templates_and_spares_go_after_cache_files_unnamed_first() {
	setup_db
	local other=ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff
	make_copy template "${DB}__dnadata_tmpl_named" "$SNAP" no 2026-01-01T00:00:00Z
	make_copy spare "${DB}__dnadata_spare_unnamed" "$other" no 2026-01-05T00:00:00Z
	make_copy template "${DB}__dnadata_tmpl_unnamed" "$other" no 2026-01-03T00:00:00Z
	BRANCH=a make_copy stash "${DB}__dnadata_stash_edited" "$SNAP" yes 2026-01-01T00:00:00Z
	expect_ok git dnadata status
	assert_contains "$OUT" "Templates:      ${DB}__dnadata_tmpl_"
	assert_contains "$OUT" "Spares:         ${DB}__dnadata_spare_unnamed (snapshot ffffffffffff, "
	assert_contains "$OUT" "Cache budget:   "
	# one template's worth of budget (and a MiB for the cache's own small files): the unnamed ones go, least recently used first; the named one stays
	local size
	size=$(psql_q postgres "SELECT pg_database_size('${DB}__dnadata_tmpl_named')")
	set_local "cache_budget = $((size + 1048576))"
	expect_ok git dnadata gc
	local lines
	lines=$(printf '%s\n' "$OUT" | grep '^dropped ')
	assert_eq "$(printf '%s\n' "dropped template ${DB}__dnadata_tmpl_unnamed" "dropped spare ${DB}__dnadata_spare_unnamed")" \
		"$(printf '%s\n' "$lines" | sed 's/ (.*//')"
	assert_eq "${DB}__dnadata_tmpl_named" "$(databases_like "${DB}__dnadata_tmpl_")"
	assert_eq "" "$(databases_like "${DB}__dnadata_spare_")"
	# budget 0: the named template goes too; the edited stash and the working database never
	set_local "cache_budget = 0"
	expect_ok git dnadata gc
	assert_contains "$OUT" "dropped template ${DB}__dnadata_tmpl_named"
	assert_eq "" "$(databases_like "${DB}__dnadata_tmpl_")"
	assert_eq "${DB}__dnadata_stash_edited" "$(databases_like "${DB}__dnadata_stash_")"
	assert_eq 1 "$(psql_q "$DB" "SELECT count(*) FROM t")"
}

test_kill_9_while_dropping_leaves_consistent_records() {
	setup_db
	make_copy template "${DB}__dnadata_tmpl_a" "$SNAP" no 2026-01-01T00:00:00Z
	make_copy template "${DB}__dnadata_tmpl_b" "$SNAP" no 2026-01-02T00:00:00Z
	set_local "cache_budget = 0"
	local rc=0
	DNADATA_TEST_GC_DIE_AFTER=1 git-dnadata gc >"$T/out" 2>"$T/err" || rc=$?
	assert_eq 137 "$rc" "gc was not killed"
	assert_eq "${DB}__dnadata_tmpl_b" "$(databases_like "${DB}__dnadata_tmpl_")"
	expect_ok git dnadata status --json
	assert_eq "[\"${DB}__dnadata_tmpl_b\"]" \
		"$(printf '%s' "$OUT" | python3 -c 'import json, sys; print(json.dumps([c["name"] for c in json.load(sys.stdin)["local"]["copies"]]))')"
	expect_ok git dnadata gc
	assert_contains "$OUT" "dropped template ${DB}__dnadata_tmpl_b"
	assert_eq "" "$(databases_like "${DB}__dnadata_tmpl_")"
}

run_tests
