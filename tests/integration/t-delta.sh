#!/usr/bin/env bash
# t-delta.sh: delta objects (docs/FORMAT.md §4.3) on a real server. A table
# of a few MB of text and jsonb is snapshotted, 1% of its rows are updated
# scattered (every 100th key), and the next snapshot (whose tables' previous
# versions are the ref's snapshot's, as every snapshot does), stores its new
# chunks as deltas:
# the cache grows by a small fraction of the first snapshot, restore gives
# the source back exactly (pg_dump compared), a missing base is named by
# `verify` and refused by `restore` (the database unchanged), a second change
# of the same rows is stored as deltas of deltas, a chain at the writer's
# depth limit restores, push + fetch carry the bases, and a
# snapshot taken right after an unpushed one puts in the store the packs of
# the first one that its delta bases and carried-over tables need.
# serial: asserts which incremental path a snapshot took, which a role another script creates would change (the output hash covers role names; tests/run runs it alone)
. "$(dirname "$0")/../lib.sh"

export DNADATA_SKIP=1 # no hook switches on checkout here

CACHE=.git/dnadata/cache

# bytes of the cache's packs
pack_bytes() {
	find "$CACHE/packs" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

# setup ROWS: a repository on a fresh database whose table t holds ROWS rows (~220 bytes each), with the fixed
# store key (lib.sh, FIXED_KEY): the chunk boundaries, and so what an update costs, are the same on every run.
setup() {
	need_pg
	DB=$(pg_newdb delta)
	new_repo
	use_fixed_key
	DNADATA_PASSPHRASE=pw expect_ok git dnadata init --database "dbname=$DB" --store "file://$T/store"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, doc jsonb, note text);
		INSERT INTO t SELECT i, jsonb_build_object('n', i, 'tag', md5(i::text), 'ok', i % 3 = 0),
			md5((i * 7)::text) || ' ' || md5((i * 13)::text) || ' ' || repeat(chr(97 + i % 26), i % 40)
		FROM generate_series(1, $1) i; ANALYZE"
}

# update GEN: 1% of the rows, scattered (every 100th key), a new value per generation
update() {
	psql_q "$DB" "UPDATE t SET doc = jsonb_set(doc, '{n}', to_jsonb(id * $1)),
		note = md5((id * $1)::text) || substr(note, 33) WHERE id % 100 = 0"
}

# snapshot_after PREV: the next snapshot (the ref names PREV: its tables are the previous versions); ID gets its id
snapshot_after() {
	expect_ok git dnadata snapshot
	ID=$OUT
}

test_scattered_updates_cost_a_small_fraction_and_restore_exactly() {
	setup 20000
	expect_ok git dnadata snapshot
	local id1=$OUT first after
	first=$(pack_bytes)
	update 3
	snapshot_after "$id1"
	after=$(pack_bytes)
	tap_note "first snapshot: $first bytes of packs; the second after 1% scattered updates added $((after - first))"
	[ $(((after - first) * 10)) -lt "$first" ] || fail "the second snapshot added $((after - first)) bytes (first: $first)"
	dump_sorted "$DB" >"$T/source.sql"
	psql_q "$DB" "UPDATE t SET note = 'overwritten'"
	expect_ok git dnadata restore --force
	dump_sorted "$DB" >"$T/restored.sql"
	cmp -s "$T/source.sql" "$T/restored.sql" || fail "the restored database differs: $(diff "$T/source.sql" "$T/restored.sql" | head -5)"
	expect_ok git dnadata verify --read-data
}

# Rows that grow shift everything after them: 7,500 rows each 33 bytes longer move the end of the table by
# ~250 KB, a few chunks. A full read (every key range changed) must still pair each new chunk with the
# previous chunk of the same rows (found again by the record's sampled keys: dd_stream_align_previous), or
# from midway on each chunk's delta is against the wrong rows and most of the table is stored again
# (measured: +71% of the first snapshot without the hints, +10-17% with them: the chunker is keyed, so
# boundaries and the chunks that straddle two old ones differ from store to store).
test_rows_that_grow_all_along_a_table_still_find_their_delta_bases() {
	setup 60000
	expect_ok git dnadata snapshot
	local first after
	first=$(pack_bytes)
	psql_q "$DB" "UPDATE t SET note = note || ' ' || md5(id::text) WHERE id % 8 = 0"
	expect_ok git dnadata -v snapshot
	# every key range changed, few rows of each: merged from markers, unchanged rows spliced from the previous stream
	assert_contains "$ERR" "public.t: 0 of "
	assert_contains "$ERR" "merged from markers, 0 read"
	after=$(pack_bytes)
	tap_note "first snapshot: $first bytes of packs; after 7,500 rows grew by 33 bytes: +$((after - first))"
	[ $(((after - first) * 3)) -lt "$first" ] || fail "the second snapshot added $((after - first)) bytes (first: $first)"
	# a third of the rows of every range grow: the table is read whole, its delta bases found again by the
	# previous record's sampled keys
	psql_q "$DB" "UPDATE t SET note = note || ' ' || md5(id::text) WHERE id % 3 = 0"
	expect_ok git dnadata -v snapshot
	grep -q "public.t read whole" <<<"$ERR" || fail "expected a whole read of t (every key range changed): $ERR"
	first=$after after=$(pack_bytes)
	tap_note "after 20,000 more rows grew by 33 bytes: +$((after - first))"
	[ $(((after - first) * 2)) -lt "$first" ] || fail "the third snapshot added $((after - first)) bytes (before: $first)"
	dump_sorted "$DB" >"$T/source.sql"
	psql_q "$DB" "DELETE FROM t"
	expect_ok git dnadata restore --force
	dump_sorted "$DB" >"$T/restored.sql"
	cmp -s "$T/source.sql" "$T/restored.sql" || fail "the restored database differs"
}

test_a_missing_base_is_named_by_verify_and_refused_by_restore() {
	setup 20000
	expect_ok git dnadata snapshot
	local id1=$OUT packs1
	packs1=$(cd "$CACHE" && find packs -type f | sort)
	update 5
	# a new schema too, so the first snapshot's packs hold nothing of the second's but the bases
	psql_q "$DB" "COMMENT ON TABLE t IS 'second'; CREATE INDEX t_note ON t (note)"
	snapshot_after "$id1"
	psql_q "$DB" "UPDATE t SET note = 'local edit' WHERE id = 1"
	dump_sorted "$DB" >"$T/before.sql"
	# the first snapshot's packs hold the bases: gone from the store and the cache
	for p in $packs1; do rm -f "$CACHE/$p" "$T/store/$p"; done
	expect_fail 1 git dnadata verify
	assert_contains "$ERR" "(the delta base of object "
	tap_note "verify: $(grep -m1 'delta base of' <<<"$ERR")"
	expect_fail 1 git dnadata restore --force
	assert_contains "$ERR" "its delta base "
	assert_contains "$ERR" "is missing"
	tap_note "restore: $(grep -m1 'error:' <<<"$ERR")"
	dump_sorted "$DB" >"$T/after.sql"
	cmp -s "$T/before.sql" "$T/after.sql" || fail "a refused restore changed the database"
}

# Objects lie in a pack in random order (FORMAT.md §4.1): the byte flipped is the middle one of a delta base's
# object, found by listing-tool from the cache's index files, never a guessed offset (which sometimes hit the
# schema object, shared by both snapshots, and failed restore on it instead).
test_a_damaged_base_is_named_by_verify_and_refused_by_restore() {
	setup 20000
	expect_ok git dnadata snapshot
	local bases pack off len _
	update 5
	snapshot_after "$OUT"
	"$DD_BUILDDIR/listing-tool" "file://$T/store" "$PWD/.git/dnadata" bases "$ID" >"$T/bases" ||
		fail "listing-tool bases failed"
	bases=$(wc -l <"$T/bases")
	[ "$bases" -gt 0 ] || fail "the second snapshot has no delta base"
	read -r pack off len _ <"$T/bases"
	tap_note "$bases delta bases; the first one damaged: $len bytes at $off of its pack"
	dump_sorted "$DB" >"$T/before.sql"
	rm -f "$CACHE/$pack"
	flip_byte "$T/store/$pack" $((off + len / 2))
	expect_fail 1 git dnadata verify --read-data
	assert_contains "$ERR" "(the delta base of object "
	expect_fail 1 git dnadata restore --force
	assert_contains "$ERR" "its delta base "
	dump_sorted "$DB" >"$T/after.sql"
	cmp -s "$T/before.sql" "$T/after.sql" || fail "a refused restore changed the database"
}

# The same rows changed again: each new chunk is a delta of the previous snapshot's chunk, itself a delta (depth 2,
# FORMAT.md §4.3), so the third snapshot costs about what the second did. Measured (20,000 rows, 1.3 MB of packs):
# +10-12 KB each; 2 runs in 11 +45/+65 KB for the third, where a new cut in changed bytes made a chunk straddle two
# previous ones (the part outside its base is compressed fresh). Full objects would add ~1.3 MB.
test_a_second_change_of_the_same_rows_is_stored_as_deltas_of_deltas() {
	setup 20000
	expect_ok git dnadata snapshot
	local first second third
	first=$(pack_bytes)
	update 3
	snapshot_after x
	second=$(pack_bytes)
	update 4
	snapshot_after x
	third=$(pack_bytes)
	tap_note "first snapshot: $first bytes of packs; 1% updated: +$((second - first)); the same rows again: +$((third - second))"
	[ $(((third - second) * 10)) -lt "$first" ] || fail "the third snapshot added $((third - second)) bytes (first: $first)"
	"$DD_BUILDDIR/listing-tool" "file://$T/store" "$PWD/.git/dnadata" bases "$ID" >"$T/bases" ||
		fail "listing-tool bases failed"
	# a chain of depth 2: bases that are deltas of depth 1 (the second snapshot's), and their full bases
	[ "$(awk '$4 == 1' "$T/bases" | wc -l)" -gt 0 ] || fail "no delta of a delta: $(cut -d' ' -f4 "$T/bases" | sort | uniq -c)"
	[ "$(awk '$4 > 1' "$T/bases" | wc -l)" -eq 0 ] || fail "a chain deeper than 2: $(cut -d' ' -f4 "$T/bases" | sort | uniq -c)"
	dump_sorted "$DB" >"$T/source.sql"
	psql_q "$DB" "UPDATE t SET note = 'overwritten'"
	expect_ok git dnadata restore --force
	dump_sorted "$DB" >"$T/restored.sql"
	cmp -s "$T/source.sql" "$T/restored.sql" || fail "the restored database differs"
	expect_ok git dnadata verify --read-data
}

test_a_chain_at_the_writers_depth_limit_restores_exactly() {
	setup 8000
	expect_ok git dnadata snapshot
	local prev=$OUT
	# DD_DELTA_DEPTH_WRITE (8) generations of deltas, and one more that starts over with full objects
	for gen in 2 3 4 5 6 7 8 9 10; do
		update "$gen"
		snapshot_after "$prev"
		prev=$ID
	done
	dump_sorted "$DB" >"$T/source.sql"
	psql_q "$DB" "DELETE FROM t WHERE id < 100"
	expect_ok git dnadata restore --force
	dump_sorted "$DB" >"$T/restored.sql"
	cmp -s "$T/source.sql" "$T/restored.sql" || fail "the restored database differs"
	expect_ok git dnadata verify --read-data
}

# restore_in_second_clone: a clone of this repository that never fetched from
# this one's cache restores the ref's snapshot from the store alone, equal to
# $T/source.sql; its cache then holds what restore read (back in this clone after)
restore_in_second_clone() {
	local origin=$PWD
	git clone -q "$origin" "$T/b"
	cd "$T/b"
	DNADATA_PASSPHRASE=pw expect_ok git dnadata init
	psql_q "$DB" "UPDATE t SET note = 'overwritten'"
	expect_ok git dnadata restore --force
	dump_sorted "$DB" >"$T/restored.sql"
	cmp -s "$T/source.sql" "$T/restored.sql" || fail "the second clone restored something else"
	expect_ok git dnadata verify --read-data
	cd "$origin"
}

# new_schema: a comment and an index, so the schema chunks of the next snapshot are all new
new_schema() {
	psql_q "$DB" "COMMENT ON TABLE t IS 'second'; CREATE INDEX t_note ON t (note)"
}

# Neither snapshot is pushed before `push`, and the schema changes: only the
# delta bases tie the second snapshot (the ref's, the one push sends) to the
# first one's packs, so a clone that never fetched from this one restores it
# from the store only if push follows the bases; another fetches it and
# restores offline.
test_push_and_fetch_carry_the_bases() {
	setup 20000
	expect_ok git dnadata snapshot --dump-only
	update 7
	new_schema
	expect_ok git dnadata snapshot --dump-only
	dump_sorted "$DB" >"$T/source.sql"
	expect_ok git dnadata push
	restore_in_second_clone
	git clone -q "$PWD" "$T/c"
	cd "$T/c"
	DNADATA_PASSPHRASE=pw expect_ok git dnadata init
	expect_ok git dnadata fetch
	# offline from now on: what restore needs is in this clone's cache, bases included
	mv "$T/store" "$T/store.away"
	psql_q "$DB" "UPDATE t SET note = 'overwritten'"
	expect_ok git dnadata restore --force
	dump_sorted "$DB" >"$T/restored.sql"
	cmp -s "$T/source.sql" "$T/restored.sql" || fail "the restored database differs"
}

# after_unpushed CHANGE: a snapshot taken online right after an unpushed
# one (CHANGE: "update" 1% of the rows, or "keep" table t as it is), with a
# new schema; then push, and a second clone restores it from the store
after_unpushed() {
	if [ "$1" = update ]; then
		update 9
	fi
	new_schema
	expect_ok git dnadata snapshot
	dump_sorted "$DB" >"$T/source.sql"
	expect_ok git dnadata push
	tap_note "push: $(tail -n 1 <<<"$ERR$OUT")"
	restore_in_second_clone
}

test_a_snapshot_after_a_dump_only_one_puts_its_delta_bases_in_the_store() {
	setup 20000
	expect_ok git dnadata snapshot --dump-only
	after_unpushed update
}

test_a_snapshot_after_a_dump_only_one_puts_the_carried_over_table_in_the_store() {
	setup 20000
	expect_ok git dnadata snapshot --dump-only
	after_unpushed keep
}

run_tests
