#!/usr/bin/env bash
# t-gc-store.sh: `git dnadata gc --store`, the store's own gc (issue 20), on a
# folder store and on S3 (Ceph RGW). One history is built per store: a
# snapshot whose commit was squashed away while the next one's deltas use its
# chunks as bases, one only an old commit names, one only a tag names,
# one only a remote-tracking branch names, and a garbage one (a table that
# was dropped, in a pack that also holds one chunk a live snapshot reuses).
# "Older than the grace period" is tested honestly by moving gc's clock
# (DNADATA_TEST_GC_CLOCK_SHIFT, a test-only setting): 23 h changes nothing,
# 25 h removes. Then: gc racing a push from a second clone (the push stopped
# between its index files and its manifest), and kill -9 in the middle of a
# repack. On S3, multipart uploads left unfinished are aborted once older than
# the grace period, younger ones (another machine's push, our own resumable
# upload) left alone.
# needs: s3
. "$(dirname "$0")/../lib.sh"

export DNADATA_SKIP=1 # no hook switches on checkout or reset here
export DNADATA_TEST=1 # DNADATA_TEST_GC_CLOCK_SHIFT is honoured only with it
CACHE=.git/dnadata/cache
OLD=90000    # 25 h
ALMOST=82800 # 23 h

# setup KIND: a repository on a fresh database (table t, 20000 rows) and a folder (file) or S3 (s3) store
setup() {
	if [ "$1" = s3 ]; then
		s3_env
		BUCKET=$(s3_bucket gcstore)
		STORE="s3://$BUCKET/data"
	else
		STORE="file://$T/store"
	fi
	# the fixed key (lib.sh): build_world's byte count after the 1% update does not depend on where the chunker cuts
	need_pg
	DB=$(pg_newdb gcstore)
	new_repo
	use_fixed_key
	expect_ok git dnadata init --database "dbname=$DB" --store "$STORE"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, note text);
		INSERT INTO t SELECT i, md5(i::text) || ' ' || md5((i * 7)::text) || repeat(chr(97 + i % 26), i % 40)
		FROM generate_series(1, 20000) i; ANALYZE"
}

table_hash() {
	psql_q "$DB" "SELECT count(*) || ' ' || md5(string_agg(id || ':' || note, ',' ORDER BY id)) FROM t"
}

# update GEN WHERE: a new value for the rows WHERE selects
update() {
	psql_q "$DB" "UPDATE t SET note = md5((id * $1)::text) || substr(note, 33) WHERE $2"
}

snap() {
	expect_ok git dnadata snapshot
	ID=$OUT
}

pack_bytes() {
	find "$CACHE/packs" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

# the store's files with their sizes (a folder store)
store_files() {
	(cd "$T/store" && find snapshots index packs data -type f -printf '%p %s\n' 2>/dev/null | LC_ALL=C sort)
}

store_bytes() {
	store_files | awk '{ s += $2 } END { print s + 0 }'
}

# make_u: the table u, the same bytes every time (the garbage of the tests)
make_u() {
	psql_q "$DB" "CREATE TABLE u (id int PRIMARY KEY, v text);
		INSERT INTO u SELECT i, md5((i * 31)::text) || md5((i * 37)::text) FROM generate_series(1, 30000) i"
}

gc_store() {
	expect_ok env DNADATA_TEST_GC_CLOCK_SHIFT="$1" git dnadata gc --store "${@:2}"
}

# build_world: the history described at the top; H* are the table's hashes, C* commits, S* snapshot ids
build_world() {
	snap; S0=$ID; C0=$(git rev-parse HEAD)
	local first
	first=$(pack_bytes)
	update 3 "id % 100 = 0"
	snap; SG=$ID; HG=$(table_hash)
	# the 1% update was stored as deltas against S0's chunks: a small fraction of the first snapshot
	tap_note "first snapshot: $first bytes of packs; the 1% update added $(($(pack_bytes) - first))"
	[ $((($(pack_bytes) - first) * 10)) -lt "$first" ] || fail "no deltas: SG added $(($(pack_bytes) - first)) bytes"
	# S0's commit squashed away: only SG's deltas need its chunks (as bases)
	git reset -q --soft HEAD~2
	git commit -qm "S0 and SG squashed"
	CG=$(git rev-parse HEAD)
	update 5 "id % 100 = 0"
	snap; SL=$ID; CL=$(git rev-parse HEAD); HL=$(table_hash)
	update 7 "id % 100 = 0"
	snap; ST=$ID; HT=$(table_hash)
	git tag v1
	git reset -q --hard HEAD~1
	update 9 "id % 100 = 0"
	snap; SR=$ID; HR=$(table_hash)
	git update-ref refs/remotes/origin/feat HEAD
	git reset -q --hard HEAD~1
	# garbage: a table dropped afterwards, and a change of t's first rows that the last snapshot keeps
	make_u
	psql_q "$DB" "UPDATE t SET note = 'first rows ' || id WHERE id < 100"
	snap; SX=$ID; CX=$(git rev-parse HEAD)
	git reset -q --hard HEAD~1
	psql_q "$DB" "DROP TABLE u"
	update 11 "id % 100 = 0 AND id > 5000"
	snap; SM=$ID; CM=$(git rev-parse HEAD); HM=$(table_hash)
	# the commits left by the resets are forgotten (the reflog names them until it expires)
	git reflog expire --expire=now --all
}

# the dry run's report, as the real run words it
as_done() {
	sed 's/^would remove /removed /; s/^would repack /repacked /; s/would free /freed /' <<<"$1"
}

world_gc() {
	setup "$1"
	build_world
	if [ "$1" = s3 ]; then
		# B learns every index file (and its known-objects record names them), none of the objects
		clone_joined
		cd "$T/b"
		expect_ok git dnadata verify --all
		cd - >/dev/null
	fi
	# nothing is older than the grace period yet: everything stays, the garbage is counted as young
	gc_store 0
	assert_contains "$OUT" "removed 0 manifests"
	assert_contains "$OUT" "repacked 0 packs"
	assert_not_contains "$OUT" "kept 0 unneeded files"
	if [ "$1" = file ]; then
		gc_store "$ALMOST"
		assert_contains "$OUT" "removed 0 manifests"
		assert_contains "$ERR" "DNADATA_TEST_GC_CLOCK_SHIFT"
	fi
	# 25 h later: a dry run says what goes, the run does exactly that
	gc_store "$OLD" --dry-run
	local dry=$OUT before
	assert_contains "$dry" "would remove 2 manifests"
	[[ $dry =~ would\ repack\ [1-9] ]] || fail "no pack to repack: $dry"
	if [ "$1" = s3 ]; then
		# a reader elsewhere has listed the index files, and reads only after gc repacked what it needs
		cd "$T/b"
		stop_at fetch-listed "$T/fetch" git-dnadata fetch
		cd - >/dev/null
	else
		before=$(store_bytes)
	fi
	gc_store "$OLD"
	tap_note "$OUT"
	if [ "$1" = s3 ]; then
		kill -CONT "$PID"
		wait "$PID" || fail "B's fetch across the repack failed: $(cat "$T/fetch.err")"
	fi
	assert_eq "$(as_done "$dry")" "$OUT"
	if [ "$1" = file ]; then
		local freed
		freed=$(sed -n 's/^gc --store: freed .* (\([0-9]*\) bytes).*/\1/p' <<<"$OUT")
		assert_eq "$((before - $(store_bytes)))" "$freed" "the bytes the store lost"
		assert_no_file "$T/store/snapshots/$SX"
		assert_no_file "$T/store/snapshots/$S0"
	else
		assert_not_contains "$(s3_ls "$BUCKET" data/snapshots/)" "$SX"
	fi
	expect_ok git dnadata verify --all --read-data
	expect_fail 1 git dnadata restore --force --at "$CX"
	assert_contains "$ERR" "${SX:0:12}"
	# a second run finds nothing more
	gc_store "$OLD"
	assert_contains "$OUT" "gc --store: freed 0 B"
}

test_folder_store_keeps_every_reachable_snapshot_and_removes_the_rest() {
	world_gc file
	# (verify --all --read-data read every live snapshot back) the tag's restores exactly; the squashed-away one is gone
	expect_ok git dnadata restore --force --at v1
	assert_eq "$HT" "$(table_hash)" "restore of v1"
	expect_fail 1 git dnadata restore --force --at "$C0"
	assert_contains "$ERR" "${S0:0:12}"
}

# B knew the old index files: its reads find the repacked object, its writes do not reuse what went
test_s3_store_keeps_every_reachable_snapshot_and_removes_the_rest() {
	world_gc s3
	cd "$T/b"
	expect_ok git dnadata restore --force
	assert_eq "$HM" "$(table_hash)" "B's fetched copy of the last snapshot (its first rows were repacked)"
	# the dropped table again, the same bytes: its chunks are those of the removed snapshot
	make_u
	expect_ok git dnadata snapshot
	expect_ok git dnadata verify --read-data
}

# drop_store_locks: set the lock files of the folder store aside, so a gc runs as if it did not see them: what the
# tests below prove is the layer under the locks (the grace period, gc's second listing), which must hold on its
# own; t-store-locks.sh tests the locks. put_store_locks_back before the holder goes on: a holder that finds its
# lock gone stops (the lock was lost), which is not what these tests are about.
drop_store_locks() {
	[ -n "$(find "$T/store/locks" -type f ! -name '.*')" ] || fail "no lock to drop"
	mkdir -p "$T/locks-aside"
	find "$T/store/locks" -type f ! -name '.*' -exec mv {} "$T/locks-aside/" \;
}

put_store_locks_back() {
	mv "$T/locks-aside/"* "$T/store/locks/"
}

# stop_at FAILPOINT OUT CMD...: run CMD in the background until it stops at FAILPOINT; PID its pid.
stop_at() {
	local fp=$1 out=$2
	shift 2
	DNADATA_FAILPOINT=$fp "$@" >"$out.out" 2>"$out.err" &
	PID=$!
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(cut -d' ' -f3 "/proc/$PID/stat" 2>/dev/null)" = T ] && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.05
	done
	fail "never stopped at $fp: $(cat "$out.err")"
}

gc_races_push() {
	setup "$1"
	snap
	local origin=$PWD
	clone_joined
	cd "$T/b"
	# every row changed: B's packs hold only objects of its own (a dump-only snapshot does not ask the store)
	psql_q "$DB" "UPDATE t SET note = md5(random()::text)"
	expect_ok git dnadata snapshot --dump-only
	local id=$OUT
	# its files were written 3 days ago: a folder store hard-links them, keeping that mtime
	[ "$1" = s3 ] || find "$CACHE/packs" "$CACHE/index" -type f -exec touch -d '3 days ago' {} +
	stop_at push-before-manifests "$T/push" git-dnadata push
	cd "$origin"
	expect_fail 1 env DNADATA_TEST_GC_CLOCK_SHIFT=0 git dnadata gc --store
	assert_contains "$ERR" "git dnadata push"
	drop_store_locks
	# B's packs and index file are in the store, unreferenced: only the grace period protects them
	gc_store 0 --dry-run --grace 0s
	assert_contains "$OUT" "would remove 1 index file"
	[[ $OUT =~ would\ (remove|repack)\ [1-9][0-9]*\ pack ]] || fail "with no grace B's pack would stay: $OUT"
	gc_store 0
	assert_contains "$OUT" "removed 0 packs"
	assert_contains "$OUT" "repacked 0 packs"
	assert_contains "$OUT" "removed 0 index files"
	put_store_locks_back
	kill -CONT "$PID"
	wait "$PID" || fail "the push failed: $(cat "$T/push.err")"
	cd "$T/b"
	expect_ok git dnadata verify --read-data
	cd "$origin"
	git fetch -q "$T/b" main:refs/remotes/b/main
	# the pushed snapshot is named by a remote-tracking branch now: a later gc keeps it
	gc_store "$OLD"
	cd "$T/b"
	expect_ok git dnadata verify --read-data
	assert_eq "$id" "$(sed -n 's/^snapshot //p' .dnadata/refs/clean)"
}

# (on S3 the first gc of test_s3_store_keeps_every_... keeps young files by their LastModified)
test_folder_store_gc_racing_a_push_leaves_the_pushed_snapshot_complete() {
	gc_races_push file
}

test_kill_9_during_a_repack_leaves_the_store_verifiable() {
	setup file
	snap
	make_u
	psql_q "$DB" "UPDATE t SET note = 'first rows ' || id WHERE id < 100"
	snap
	git reset -q --hard HEAD~1
	psql_q "$DB" "DROP TABLE u"
	update 11 "id % 100 = 0 AND id > 5000"
	snap
	git reflog expire --expire=now --all
	local point
	for point in store-gc-written store-gc-deleting; do
		stop_at "$point" "$T/gc" env DNADATA_TEST_GC_CLOCK_SHIFT=$OLD git-dnadata gc --store
		kill -KILL "$PID"
		wait "$PID" 2>/dev/null || true
		expect_ok git dnadata verify --all --read-data
	done
	gc_store "$OLD"
	expect_ok git dnadata verify --all --read-data
	gc_store "$OLD"
	assert_contains "$OUT" "gc --store: freed 0 B"
}

# Two gc runs at once, on two clones: gc1 has listed the index files when gc2 replaces the one naming both packs
# of a snapshot (one pack repacked, the other carried into gc2's new index file). gc1 must not take the carried
# pack for unnamed: it stops, removing nothing.
test_two_gc_runs_at_once_never_remove_a_live_pack() {
	setup file
	# a: ~18 MiB that does not compress (a full pack of its own and some), b: ~3 MiB, after it in the dump
	psql_q "$DB" "CREATE TABLE a (id int PRIMARY KEY, v bytea); CREATE TABLE b (id int PRIMARY KEY, v bytea);
		INSERT INTO a SELECT i, decode(md5(random()::text) || md5(random()::text) ||
			md5(random()::text) || md5(random()::text), 'hex') FROM generate_series(1, 250000) i;
		INSERT INTO b SELECT i, decode(md5(random()::text) || md5(random()::text), 'hex')
			FROM generate_series(1, 90000) i"
	printf '[database]\njobs = 1\n' >>.git/dnadata/config.ini # a, then b: b's chunks fill the second pack
	snap
	[ "$(find "$T/store/index" -type f | wc -l)" -ge 1 ] || fail "no index file"
	psql_q "$DB" "DROP TABLE b"
	snap
	# the first snapshot is garbage: its commit squashed away
	git reset -q --soft HEAD~2
	git commit -qm "squashed"
	git reflog expire --expire=now --all
	clone_joined
	cd "$T/b"
	stop_at store-gc-listed "$T/gc1" env DNADATA_TEST_GC_CLOCK_SHIFT=$OLD git-dnadata gc --store
	cd - >/dev/null
	drop_store_locks # gc1's: gc2 would refuse at once
	gc_store "$OLD"
	tap_note "gc2: $OUT"
	[[ $OUT =~ (removed|repacked)\ [1-9][0-9]*\ pack ]] || fail "gc2 replaced no pack: $OUT"

	put_store_locks_back
	kill -CONT "$PID"
	if wait "$PID"; then
		fail "gc1 went on after another gc replaced an index file it listed: $(cat "$T/gc1.out")"
	fi
	assert_contains "$(cat "$T/gc1.err")" "another gc may be running"
	expect_ok git dnadata verify --all --read-data
}

# A commit left by `git reset --hard` is named only by the reflog: `git reset --hard HEAD@{1}` brings it back, so
# its snapshot stays.
test_a_snapshot_only_a_reflog_names_stays() {
	setup file
	snap
	update 3 "id % 100 = 0"
	snap; local s2=$ID c2 h2
	c2=$(git rev-parse HEAD); h2=$(table_hash)
	git reset -q --hard HEAD~1
	update 5 "id % 100 = 0"
	snap
	gc_store "$OLD"
	assert_file "$T/store/snapshots/$s2"
	git reset -q --hard "$c2"
	expect_ok git dnadata restore --force
	assert_eq "$h2" "$(table_hash)" "the snapshot the reflog named, restored"
	expect_ok git dnadata verify --all --read-data
}

# A linked worktree's ref file written by `snapshot --no-commit` names a snapshot no commit does: it stays, whichever
# worktree gc runs in.
test_a_linked_worktrees_uncommitted_ref_file_stays() {
	setup file
	snap
	git worktree add -q "$T/w" -b side
	cd "$T/w"
	update 3 "id % 100 = 0"
	DNADATA_DATABASE="dbname=$DB" expect_ok git dnadata snapshot --no-commit
	local sw=$OUT hw
	hw=$(table_hash)
	cd - >/dev/null
	update 5 "id % 100 = 0"
	snap
	gc_store "$OLD"
	assert_file "$T/store/snapshots/$sw"
	cd "$T/w"
	gc_store "$OLD"
	assert_file "$T/store/snapshots/$sw"
	assert_file "$T/store/snapshots/$ID"
	DNADATA_DATABASE="dbname=$DB" expect_ok git dnadata restore --force
	assert_eq "$hw" "$(table_hash)" "the worktree's uncommitted snapshot, restored"
}

# A snapshot this clone's records name only under a media key (here the working record's media folder, set by
# hand to the state a switch leaves when the folder still holds an older snapshot's files) stays.
test_a_snapshot_only_a_media_record_names_stays() {
	setup file
	printf 'media = var/uploads\n' >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	mkdir -p var/uploads
	printf 'a\n' >var/uploads/a.txt
	snap; local s1=$ID work
	update 3 "id % 100 = 0"
	printf 'b\n' >var/uploads/b.txt
	snap
	git reset -q --soft HEAD~2
	git commit -qm "squashed"
	git reflog expire --expire=now --all
	work=$(find .git/dnadata/pg -name working | head -1)
	[ -n "$work" ] && grep -q "^media $ID" "$work" || fail "no working record naming the media: $(cat "$work")"
	sed -i "s/^media $ID/media $s1/" "$work"
	gc_store "$OLD"
	assert_file "$T/store/snapshots/$s1"
	expect_ok git dnadata verify --all --read-data
}

# An old index file all of whose packs are gone from the store (lost, or removed by hand) names nothing a reader can
# fetch: it goes.
test_an_index_file_whose_packs_are_all_gone_is_removed() {
	setup file
	snap
	local before after i2 p
	before=$(store_files | awk '{ print $1 }')
	make_u
	snap
	after=$(store_files | awk '{ print $1 }')
	i2=$(comm -13 <(echo "$before") <(echo "$after") | grep '^index/')
	[ "$(echo "$i2" | wc -l)" = 1 ] || fail "not one new index file: $i2"
	for p in $(comm -13 <(echo "$before") <(echo "$after") | grep '^packs/'); do rm "$T/store/$p"; done
	git reset -q --hard HEAD~1
	git reflog expire --expire=now --all
	psql_q "$DB" "DROP TABLE u"
	update 3 "id % 100 = 0"
	snap
	gc_store "$OLD"
	assert_no_file "$T/store/$i2"
	expect_ok git dnadata verify --read-data
}

# A shallow clone lacks commits whose ref files may name live snapshots: gc refuses, saying what to do.
test_a_shallow_clone_is_refused_with_a_hint() {
	setup file
	snap
	update 3 "id % 100 = 0"
	snap
	install -m 600 .git/dnadata/key "$T/key"
	git clone -q --depth 1 "file://$PWD" "$T/shallow"
	cd "$T/shallow"
	expect_ok git dnadata key import "$T/key"
	expect_ok git dnadata init
	expect_fail 1 git dnadata gc --store --dry-run
	assert_contains "$ERR" "this clone is shallow"
	assert_contains "$ERR" "git fetch --unshallow"
}

# A push in progress (stopped before its manifests) whose delta objects have their bases only in a snapshot that
# became garbage: the young index file's delta objects are live, so are their bases.
test_a_push_in_progress_keeps_the_delta_bases_it_needs() {
	setup file
	snap
	local origin=$PWD
	clone_joined
	cd "$T/b"
	expect_ok git dnadata fetch # the first snapshot's chunks in B's cache: its snapshot deltas on them
	update 3 "id % 100 = 0"
	expect_ok git dnadata snapshot --dump-only
	local before
	before=$(store_files | awk '{ print $1 }')
	stop_at push-before-manifests "$T/push" git-dnadata push
	cd "$origin"
	# B's files are young for a gc 25 h ahead: their times moved 2 days on (a folder store goes by the later of
	# mtime and ctime), so the clock shift makes only the first snapshot old
	comm -13 <(echo "$before") <(store_files | awk '{ print $1 }') | grep -E '^(index|packs)/' >"$T/pushed"
	[ -s "$T/pushed" ] || fail "B's push wrote nothing before its manifests"
	(cd "$T/store" && xargs touch -d '2 days' <"$T/pushed")
	# the first snapshot becomes garbage: its table replaced (no delta of A's needs its chunks), its commit squashed
	psql_q "$DB" "DROP TABLE t"
	make_u
	snap
	git reset -q --soft HEAD~2
	git commit -qm "squashed"
	git reflog expire --expire=now --all
	drop_store_locks # the push's: gc would refuse at once
	gc_store "$OLD"
	tap_note "$OUT"
	put_store_locks_back
	kill -CONT "$PID"
	wait "$PID" || fail "the push failed: $(cat "$T/push.err")"
	git fetch -q "$T/b" main:refs/remotes/b/main
	expect_ok git dnadata verify --all --read-data
}

# A ref file staged in the git index, then replaced in the work tree by another `snapshot --no-commit`: `git checkout
# -- .dnadata/refs` brings the staged one back, so its snapshot stays.
test_a_snapshot_only_a_staged_ref_file_names_stays() {
	setup file
	snap
	update 3 "id % 100 = 0"
	expect_ok git dnadata snapshot --no-commit
	local staged=$OUT hs
	hs=$(table_hash)
	git add .dnadata/refs
	update 5 "id % 100 = 0"
	expect_ok git dnadata snapshot --no-commit
	gc_store "$OLD"
	assert_file "$T/store/snapshots/$staged"
	git checkout -- .dnadata/refs
	expect_ok git dnadata restore --force
	assert_eq "$hs" "$(table_hash)" "the staged snapshot, restored"
}

test_grace_and_usage_errors() {
	repo_with_db gcstore --store "file://$T/store"
	expect_fail 2 git dnadata gc --grace 1h
	assert_contains "$ERR" "--grace goes with --store"
	expect_fail 2 git dnadata gc --store --grace soon
	assert_contains "$ERR" "--grace takes a duration"
	expect_fail 2 git dnadata gc --store --grace 59m
	assert_contains "$ERR" "--grace under 1h is only for --dry-run"
	expect_fail 2 git dnadata gc --store --grace 0
	expect_ok git dnadata gc --store --grace 0 --dry-run
	expect_ok git dnadata gc --store --grace 1h --dry-run
	expect_fail 1 env DNADATA_TEST_GC_CLOCK_SHIFT=tomorrow git dnadata gc --store --dry-run
	assert_contains "$ERR" "DNADATA_TEST_GC_CLOCK_SHIFT must be a number"
	expect_fail 1 env -u DNADATA_TEST DNADATA_TEST_GC_CLOCK_SHIFT=$OLD git dnadata gc --store --dry-run
	assert_contains "$ERR" "honoured only with DNADATA_TEST=1"
}


# mpu_start KEY: start a multipart upload of KEY in $BUCKET with one part sent (billed storage); echo its id.
mpu_start() {
	local id
	id=$(s3_aws s3api create-multipart-upload --bucket "$BUCKET" --key "$1" --query UploadId --output text) ||
		fail "could not start an upload of $1"
	head -c 100000 /dev/urandom >"$T/part"
	s3_aws s3api upload-part --bucket "$BUCKET" --key "$1" --upload-id "$id" --part-number 1 \
		--body "$T/part" >/dev/null || fail "could not send a part of $1"
	echo "$id"
}

# mpu_keys: the keys of the uploads in progress in $BUCKET, sorted, one a line
mpu_keys() {
	s3_aws s3api list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].[Key]' --output text |
		grep -v '^None$' | LC_ALL=C sort || true
}

# mpu_initiated KEY: when the (one) upload of KEY started, as gc prints it
mpu_initiated() {
	local t
	t=$(s3_aws s3api list-multipart-uploads --bucket "$BUCKET" --prefix "$1" --query 'Uploads[0].Initiated' \
		--output text)
	date -u -d "$t" +%Y-%m-%dT%H:%M:%SZ
}

# An upload whose client died and whose record is gone keeps its parts in the bucket for ever: gc --store
# aborts those started before the grace cutoff and leaves younger ones (a push in progress elsewhere) alone.
# The clock is moved one second short of the grace period, and each run is held at a failpoint after it read
# its clock while the young uploads start: they are younger than its cutoff whatever the machine's speed.
test_s3_gc_aborts_only_the_unfinished_uploads_older_than_the_grace_period() {
	setup s3
	snap
	local zeros old young nested
	zeros=$(printf '0%.0s' $(seq 62))
	old=data/packs/ab/ab$zeros young=data/packs/cd/cd$zeros
	nested=data/inner/packs/ab/ab$zeros # a store nested under this one (s3://bucket/data/inner): its, not ours
	mpu_start "$old" >/dev/null
	mpu_start "$old" >/dev/null # a second upload of the same key: the pages end between the two
	mpu_start elsewhere/packs/ab/theirs >/dev/null # not under the store's prefix: not gc's
	mpu_start data/nothing-of-ours >/dev/null # under the prefix, not a name the store writes
	mpu_start data/packs/ab/old >/dev/null    # not the exact shape of a pack's name
	mpu_start "$nested" >/dev/null
	local old_at young_id at
	old_at=$(s3_aws s3api list-multipart-uploads --bucket "$BUCKET" --query 'Uploads[].Initiated' --output text |
		tr '\t' '\n' | while read -r at; do date -u -d "$at" +%s; done | sort -n | tail -n 1)
	# the old ones started at least a second before the earliest time gc's clock can read: it is the server's
	# Date (whole seconds, so up to 1 s behind) plus the time since, and the cutoff is 1 s before it
	while [ "$(date +%s)" -le $((old_at + 2)) ]; do sleep 0.1; done
	local shift=$((86400 - 1))

	# a dry run names the old ones only, and counts them; one upload a page, so it walks four pages
	export DNADATA_TEST_S3_MAX_UPLOADS=1
	stop_at store-gc-listed "$T/gc" env DNADATA_TEST_GC_CLOCK_SHIFT=$shift git-dnadata gc --store --dry-run
	young_id=$(mpu_start "$young")
	kill -CONT "$PID"
	wait "$PID" || fail "the dry run failed: $(cat "$T/gc.err")"
	OUT=$(cat "$T/gc.out")
	tap_note "$OUT"
	assert_eq 2 "$(grep -c "^would abort upload $old (initiated " <<<"$OUT")" "$OUT"
	for at in $(s3_aws s3api list-multipart-uploads --bucket "$BUCKET" --prefix "$old" \
		--query 'Uploads[].Initiated' --output text); do
		assert_contains "$OUT" "would abort upload $old (initiated $(date -u -d "$at" +%Y-%m-%dT%H:%M:%SZ))"
	done
	assert_not_contains "$OUT" "$young"
	assert_not_contains "$OUT" "theirs"
	assert_not_contains "$OUT" "nothing-of-ours"
	assert_not_contains "$OUT" "ab/old"
	assert_not_contains "$OUT" "inner"
	assert_contains "$OUT" "would abort 2 unfinished multipart uploads, kept 1 younger than the grace period (24h)"
	assert_eq "$(printf '%s\n' data/nothing-of-ours data/packs/ab/old "$old" "$old" "$young" "$nested" \
		elsewhere/packs/ab/theirs | LC_ALL=C sort)" "$(mpu_keys)" "a dry run aborts nothing"
	# one upload a page is what the server sent: both old ones were found across pages
	assert_eq True "$(s3_aws s3api list-multipart-uploads --bucket "$BUCKET" --max-uploads 1 --no-paginate \
		--query IsTruncated --output text)" "the server pages by max-uploads"
	# the dry run's young upload is done with; the real run gets its own
	s3_aws s3api abort-multipart-upload --bucket "$BUCKET" --key "$young" --upload-id "$young_id"

	# the real run, while an upload of our own is in progress (its record kept): both young, left alone
	head -c $((12 << 20)) /dev/urandom >"$T/big"
	local sum
	sum=$(sha256sum "$T/big" | cut -c1-64)
	stop_at store-gc-listed "$T/gc" env DNADATA_TEST_GC_CLOCK_SHIFT=$shift git-dnadata gc --store
	mpu_start "$young" >/dev/null
	DD_TOOL_PART_SIZE=$((5 << 20)) DD_TOOL_TRANSFERS=1 start_stopped_at s3-part-2-recorded \
		"$DD_BUILDDIR/backend-tool" "s3://$BUCKET/data" put-file "packs/${sum:0:2}/$sum" "$T/big"
	kill -CONT "$PID"
	wait "$PID" || fail "gc failed: $(cat "$T/gc.err")"
	OUT=$(cat "$T/gc.out")
	tap_note "$OUT"
	assert_not_contains "$OUT" "would abort"
	assert_contains "$OUT" "aborted 2 unfinished multipart uploads, kept 2 younger than the grace period (24h)"
	assert_eq "$(printf '%s\n' data/nothing-of-ours data/packs/ab/old "data/packs/${sum:0:2}/$sum" "$young" "$nested" \
		elsewhere/packs/ab/theirs | LC_ALL=C sort)" "$(mpu_keys)" "only the old uploads are aborted"
	# our own upload resumes where it stopped and completes
	finish_stopped
	assert_eq created "$(cat "$T/stopped.out")"
	assert_no_file "$T/.big.s3-upload"
	s3_aws s3 cp "s3://$BUCKET/data/packs/${sum:0:2}/$sum" "$T/back" >/dev/null
	cmp "$T/big" "$T/back"
	s3_aws s3 rm "s3://$BUCKET/data/packs/${sum:0:2}/$sum" >/dev/null
	unset DNADATA_TEST_S3_MAX_UPLOADS
	expect_ok git dnadata verify --all --read-data
	# the young upload stays until it is old
	gc_store 0 --dry-run
	assert_contains "$OUT" "would abort 0 unfinished multipart uploads, kept 1 younger"
}

# A server whose upload listing never ends (markers kept moving) is walked for at most 1,000 pages a run (here 2:
# DNADATA_TEST_S3_MAX_UPLOAD_PAGES, one upload a page): what those pages gave is aborted, one warning line says
# the rest is left, and the next run gets it.
test_s3_gc_walks_a_bounded_number_of_upload_pages() {
	setup s3
	snap
	local zeros k
	zeros=$(printf '0%.0s' $(seq 62))
	for k in 11 22 33; do
		mpu_start "data/packs/$k/$k$zeros" >/dev/null
	done
	expect_ok env DNADATA_TEST_S3_MAX_UPLOADS=1 DNADATA_TEST_S3_MAX_UPLOAD_PAGES=2 \
		DNADATA_TEST_GC_CLOCK_SHIFT=$((86400 + 60)) git dnadata gc --store
	assert_contains "$ERR" "goes on past 2 pages: the rest is left for the next run"
	assert_contains "$OUT" "aborted 2 unfinished multipart uploads"
	assert_eq "data/packs/33/33$zeros" "$(mpu_keys)" "the third upload waits for the next run"
	expect_ok env DNADATA_TEST_S3_MAX_UPLOADS=1 DNADATA_TEST_GC_CLOCK_SHIFT=$((86400 + 60)) git dnadata gc --store
	assert_not_contains "$ERR" "goes on past"
	assert_contains "$OUT" "aborted 1 unfinished multipart upload"
	[ -z "$(mpu_keys)" ] || fail "uploads left: $(mpu_keys)"
}

run_tests
