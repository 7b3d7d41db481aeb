#!/usr/bin/env bash
# t-store-locks.sh: store-level locks (issue 20; store/store-lock.h) and gc's clock taken from the store, on a
# folder store and on S3 (Ceph RGW). The race they close: a writer lists index/ and reuses chunks only an
# unreachable snapshot older than the grace period holds, while `gc --store` removes them before the writer's
# manifest lands. Writers hold a shared lock (locks/<id>) from before that listing until their manifest is durable,
# gc an exclusive one; stale locks (30 min by the store's clock, or of a gone process of this host) are ignored
# and removed by gc. "Older than the grace period" is tested by moving gc's clock (DNADATA_TEST_GC_CLOCK_SHIFT),
# a lock's age by DNADATA_TEST_LOCK_CLOCK_SHIFT, another machine by DNADATA_TEST_LOCK_HOST (all test settings,
# honoured only with DNADATA_TEST=1); a machine whose clock is 3 days fast by faketime.
# needs: s3
. "$(dirname "$0")/../lib.sh"
# libfaketime is a preload: an ASan runtime linked into the program checks that it comes first
FAKE_ASAN="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

export DNADATA_SKIP=1 # no hook switches on checkout or reset here
export DNADATA_TEST=1
OLD=90000 # 25 h

# setup KIND: a repository on a fresh database (table t) and a folder (file) or S3 (s3) store
setup() {
	KIND=$1
	if [ "$1" = s3 ]; then
		s3_env
		BUCKET=$(s3_bucket locks)
		STORE="s3://$BUCKET/data"
	else
		STORE="file://$T/store"
	fi
	repo_with_db locks --store "$STORE"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, note text);
		INSERT INTO t SELECT i, md5(i::text) || repeat(chr(97 + i % 26), i % 40) FROM generate_series(1, 5000) i"
}

# stopped: start_stopped_at's process, never left stopped behind a failed test (it would hold its lock forever)
stopped() {
	trap '[ -z "${STOPPED_PID:-}" ] || kill -KILL "$STOPPED_PID" 2>/dev/null || true' EXIT
	start_stopped_at "$@"
}

# make_u: the table u, the same bytes every time (the old garbage a writer reuses)
make_u() {
	psql_q "$DB" "CREATE TABLE u (id int PRIMARY KEY, v text);
		INSERT INTO u SELECT i, md5((i * 31)::text) || md5((i * 37)::text) FROM generate_series(1, 30000) i"
}

u_hash() {
	psql_q "$DB" "SELECT count(*) || ' ' || md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM u"
}

# the store's files (names only), sorted
store_names() {
	if [ "$KIND" = s3 ]; then
		s3_ls "$BUCKET" data/ | grep -v '^data/locks/' || true
	else
		(cd "$T/store" && find snapshots index packs data -type f 2>/dev/null | LC_ALL=C sort)
	fi
}

lock_names() {
	if [ "$KIND" = s3 ]; then
		s3_ls "$BUCKET" data/locks/ || true
	else
		(cd "$T/store" && find locks -type f ! -name '.*' 2>/dev/null | LC_ALL=C sort)
	fi
}

# old_garbage: SX (holding table u) made unreachable, the working record moved on to SM (without u)
old_garbage() {
	expect_ok git dnadata snapshot
	make_u
	expect_ok git dnadata snapshot
	SX=$OUT
	git reset -q --hard HEAD~1
	psql_q "$DB" "DROP TABLE u; UPDATE t SET note = 'm' || id WHERE id % 50 = 0"
	expect_ok git dnadata snapshot
	git reflog expire --expire=now --all
	# u's chunks are only SX's: a gc 25 h ahead removes them
	expect_ok env DNADATA_TEST_GC_CLOCK_SHIFT=$OLD git dnadata gc --store --dry-run
	assert_contains "$OUT" "would remove 1 manifest"
	make_u # the same bytes again: the next snapshot reuses SX's chunks
	HU=$(u_hash)
}

# the new snapshot is complete: verify reads every object, and it restores u
check_complete() {
	expect_ok git dnadata verify --all --read-data
	psql_q "$DB" "DROP TABLE u"
	expect_ok git dnadata restore --force
	assert_eq "$HU" "$(u_hash)" "table u of the snapshot that reused old garbage"
}

writer_then_gc() {
	setup "$1"
	old_garbage
	# the writer has listed the index files and decided to reuse u's chunks; its manifest is not written yet
	stopped index-listed git-dnadata snapshot
	[ -n "$(lock_names)" ] || fail "the stopped writer holds no lock"
	local before
	before=$(store_names)
	# a dry run takes no lock and says a writer holds one
	expect_ok env DNADATA_TEST_GC_CLOCK_SHIFT=$OLD git dnadata gc --store --dry-run
	assert_contains "$ERR" "a real run would refuse now"
	assert_contains "$ERR" "pid $STOPPED_PID, git dnadata snapshot"
	expect_fail 1 env DNADATA_TEST_GC_CLOCK_SHIFT=$OLD git dnadata gc --store
	assert_contains "$ERR" "error: gc --store: the store's gc: the store $STORE is locked by host $(hostname)"
	assert_contains "$ERR" "pid $STOPPED_PID, git dnadata snapshot"
	assert_contains "$ERR" "hint: run \`git dnadata gc --store\` again once it has ended"
	assert_eq "$before" "$(store_names)" "the refusing gc changed the store"
	finish_stopped
	[ -z "$(lock_names)" ] || fail "the writer left its lock: $(lock_names)"
	check_complete
	# with the writer done, gc removes SX's manifest and keeps what the new snapshot reuses
	expect_ok env DNADATA_TEST_GC_CLOCK_SHIFT=$OLD git dnadata gc --store
	assert_contains "$OUT" "removed 1 manifest"
	[ -z "$(lock_names)" ] || fail "gc left its lock: $(lock_names)"
	check_complete
}

test_folder_gc_refuses_while_a_writer_reuses_old_garbage() { writer_then_gc file; }
test_s3_gc_refuses_while_a_writer_reuses_old_garbage() { writer_then_gc s3; }

# poll_for FILE TEXT: until FILE holds TEXT (the waiting writer's one line), a hang guard of DD_WAIT_POLLS rounds
poll_for() {
	for _ in $(seq "$DD_WAIT_POLLS"); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "never saw '$2' in $1: $(cat "$1")"
}

gc_then_writer() {
	setup "$1"
	old_garbage
	local head
	head=$(git rev-parse HEAD)
	# gc on another machine (clone B: it cannot see this clone's cache) has taken its lock and listed the index
	# files, SX's among them
	clone_joined
	cd "$T/b"
	stopped store-gc-listed env DNADATA_TEST_GC_CLOCK_SHIFT=$OLD git-dnadata gc --store
	cd - >/dev/null
	# a writer waits for it, then fails with a hint, nothing written
	expect_fail 1 env DNADATA_TEST_LOCK_WAIT=2 git dnadata snapshot
	assert_contains "$ERR" "is locked by \`gc --store\` (host $(hostname), pid $STOPPED_PID, git dnadata gc"
	assert_contains "$ERR" "hint: run this again once that gc has ended"
	assert_eq "$head" "$(git rev-parse HEAD)" "the refused snapshot committed"
	# another one waits (saying so once) and goes on when gc ends
	git-dnadata snapshot >"$T/w.out" 2>"$T/w.err" </dev/null &
	local w=$!
	poll_for "$T/w.err" "waiting up to 60 s"
	finish_stopped
	assert_contains "$(cat "$T/stopped.out")" "removed 1 manifest"
	wait "$w" || fail "the waiting snapshot failed: $(cat "$T/w.err")"
	assert_eq 1 "$(grep -c 'is locked by' "$T/w.err")" "the wait was said once"
	[ -z "$(lock_names)" ] || fail "a lock was left: $(lock_names)"
	check_complete
}

test_folder_writer_waits_for_gc_then_fails_or_goes_on() { gc_then_writer file; }
test_s3_writer_waits_for_gc_then_fails_or_goes_on() { gc_then_writer s3; }

stale_locks() {
	setup "$1"
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET note = 'x' || id WHERE id % 10 = 0"
	# another machine's writer killed after its listing: its lock stays, fresh for 30 min of the store's clock
	stopped index-listed env DNADATA_TEST_LOCK_HOST=elsewhere git-dnadata snapshot
	local pid=$STOPPED_PID
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	assert_eq 1 "$(lock_names | wc -l)" "the killed writer's lock"
	expect_fail 1 git dnadata gc --store
	assert_contains "$ERR" "locked by host elsewhere, pid $pid, git dnadata snapshot"
	expect_fail 1 env DNADATA_TEST_LOCK_CLOCK_SHIFT=1500 git dnadata gc --store # 25 min and a few seconds
	# 31 min later by the store's clock it is stale: removed with one line, and gc runs
	expect_ok env DNADATA_TEST_LOCK_CLOCK_SHIFT=1860 git dnadata gc --store
	assert_eq 1 "$(grep -c 'stale lock' <<<"$ERR")" "one line for the stale lock: $ERR"
	assert_contains "$ERR" "warning: gc: removing a stale lock of the store (host elsewhere, pid $pid, git dnadata snapshot"
	[[ $ERR =~ not\ refreshed\ for\ 3[1-9]\ min ]] || fail "the stale lock's age: $ERR"
	[ -z "$(lock_names)" ] || fail "the stale lock is still there: $(lock_names)"
	# a writer of this host killed -9: its process is gone, so its lock is stale at once
	stopped index-listed git-dnadata snapshot
	pid=$STOPPED_PID
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	assert_eq 1 "$(lock_names | wc -l)" "the killed writer's lock"
	expect_ok git dnadata snapshot # a writer is not held up by a stale lock
	expect_ok git dnadata gc --store
	assert_contains "$ERR" "(host $(hostname), pid $pid, git dnadata snapshot"
	assert_contains "$ERR" "that process is gone"
	[ -z "$(lock_names)" ] || fail "the dead writer's lock is still there: $(lock_names)"
	expect_ok git dnadata verify --all --read-data
}

test_folder_stale_locks_are_removed_by_gc_and_fresh_ones_block_it() { stale_locks file; }
test_s3_stale_locks_are_removed_by_gc_and_fresh_ones_block_it() { stale_locks s3; }

# A killed writer of another container with the same host name but its own pid namespace (here
# DNADATA_TEST_LOCK_PIDNS): its pid says nothing here, so its lock is not "a gone process" but fresh for 30 min of the
# store's clock; gc refuses, and removes it once stale.
test_a_lock_of_another_pid_namespace_is_not_judged_by_its_pid() {
	setup file
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET note = 'n' || id WHERE id % 10 = 0"
	stopped index-listed env DNADATA_TEST_LOCK_PIDNS=4242 git-dnadata snapshot
	local pid=$STOPPED_PID
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	assert_eq 1 "$(lock_names | wc -l)" "the killed writer's lock"
	expect_fail 1 git dnadata gc --store
	assert_contains "$ERR" "locked by host $(hostname), pid $pid, git dnadata snapshot"
	assert_eq 1 "$(lock_names | wc -l)" "a refusing gc removed the lock"
	expect_ok env DNADATA_TEST_LOCK_CLOCK_SHIFT=1860 git dnadata gc --store
	assert_contains "$ERR" "(host $(hostname), pid $pid, git dnadata snapshot"
	assert_contains "$ERR" "not refreshed for"
	[ -z "$(lock_names)" ] || fail "the stale lock is still there: $(lock_names)"
}

# A writer lists the index files under its lock: chunks the previous snapshot's listing lets it keep (unchanged
# media files, adopted without a put) whose index file and packs a gc removed before the lock (here removed by hand,
# as another clone's gc would) are sent again from the cache, not trusted from the clone's record, so the new
# snapshot is whole. (The database stream's first put lists too, so this passes without the listing at the lock's
# taking, which covers a writer whose adoptions come before any put.)
test_a_writer_relists_the_index_files_under_its_lock_before_adopting_chunks() {
	setup file
	printf 'media = var/uploads\n' >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	mkdir -p var/uploads
	local i
	for i in 1 2 3 4; do head -c 200000 /dev/urandom >"var/uploads/f$i"; done
	expect_ok git dnadata snapshot
	[ -n "$(cd "$T/store" && find packs -type f)" ] || fail "no pack in the store"
	(cd "$T/store" && find index packs -type f -delete)
	head -c 1000 /dev/urandom >var/uploads/zzz # a new file: the others are adopted from the listing
	expect_ok git dnadata snapshot
	expect_ok git dnadata verify --all --read-data
}

# The store goes out of reach between a writer's put of its lock and its listing of locks/ (failpoint
# store-lock-put; the fault proxy stopped): the writer goes on in its cache like one that found the store
# unreachable at the start, rather than failing on the listing.
test_a_store_out_of_reach_while_the_lock_is_taken_leaves_the_writer_in_its_cache() {
	setup s3
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET note = 'r' || id WHERE id % 10 = 0"
	grep -q '^\[store\]$' .git/dnadata/config.ini || printf '[store]\n' >>.git/dnadata/config.ini
	sed -i '/^\[store\]$/a retries = 0' .git/dnadata/config.ini
	s3_proxy_start 0 1
	s3_env
	stopped store-lock-put git-dnadata snapshot
	s3_proxy_stop_quiet
	finish_stopped
	assert_contains "$(cat "$T/stopped.err")" "could not remove the lock file"
	s3_env
	expect_ok git dnadata push
	expect_ok git dnadata verify --all --read-data
}

# A lock file that cannot be fetched (here too big for the folder store to read: a sparse 600 MiB file) is an
# unreadable lock judged by its listed age: fresh, it blocks writers and gc, named as what it is; 31 min later by
# the store's clock gc removes it with one line, rather than every writer and gc failing until it is removed by hand.
test_a_lock_file_that_cannot_be_fetched_is_judged_by_its_age() {
	setup file
	expect_ok git dnadata snapshot
	local name
	name=locks/$(printf 'ab%.0s' $(seq 32))
	mkdir -p "$T/store/locks"
	truncate -s 600M "$T/store/$name"
	psql_q "$DB" "UPDATE t SET note = 'y' || id WHERE id % 10 = 0"
	expect_fail 1 env DNADATA_TEST_LOCK_WAIT=1 git dnadata snapshot
	assert_contains "$ERR" "is locked by an unreadable lock file $name: waiting up to 1 s"
	assert_contains "$ERR" "error: the store $STORE is locked by an unreadable lock file $name"
	assert_contains "$ERR" "hint: run this again once that lock is gone"
	expect_fail 1 git dnadata gc --store
	assert_contains "$ERR" "the store $STORE is locked by an unreadable lock file $name: gc removed nothing"
	expect_ok env DNADATA_TEST_LOCK_CLOCK_SHIFT=1860 git dnadata gc --store
	assert_contains "$ERR" \
		"warning: gc: removing a stale lock of the store (an unreadable lock file $name): not refreshed for"
	[ ! -e "$T/store/$name" ] || fail "the stale unreadable lock is still there"
	expect_ok git dnadata snapshot
	expect_ok git dnadata verify --all --read-data
}

# A dry run on a read-only folder store (a read-only bind mount in a mount namespace of its own): the store cannot
# tell its clock (no probe file can be made), so gc goes by this machine's, saying so in one line, and reports.
test_a_dry_run_on_a_read_only_folder_store_goes_by_the_local_clock() {
	setup file
	expect_ok git dnadata snapshot
	expect_ok unshare -m sh -c 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"' \
		sh "$T/store" git dnadata gc --store --dry-run
	assert_contains "$ERR" "warning: the store $STORE cannot tell its clock ("
	assert_contains "$ERR" "Read-only file system): going by this machine's clock"
	assert_eq 1 "$(grep -c 'cannot tell its clock' <<<"$ERR")" "said once: $ERR"
	assert_contains "$OUT" "would remove 0 manifests"
}

# A crash between making a folder's clock probe (locks/.probe-XXXXXX) and removing it leaves the file: gc removes
# those older than 1 h, and keeps a younger one (a live one exists for microseconds; a dry run removes nothing).
test_gc_removes_clock_probes_a_crash_left() {
	setup file
	expect_ok git dnadata snapshot
	touch -d '2 hours ago' "$T/store/locks/.probe-AbC123"
	touch "$T/store/locks/.probe-XyZ789"
	expect_ok git dnadata gc --store --dry-run
	[ -e "$T/store/locks/.probe-AbC123" ] || fail "a dry run removed a probe file"
	expect_ok git dnadata gc --store
	[ ! -e "$T/store/locks/.probe-AbC123" ] || fail "the 2 h old probe file is still there"
	[ -e "$T/store/locks/.probe-XyZ789" ] || fail "gc removed a young probe file"
}

# A machine whose clock is 3 days fast runs gc: the grace period goes by the store's clock, so nothing young goes.
test_gc_on_a_machine_whose_clock_is_3_days_fast_removes_nothing_young() {
	command -v faketime >/dev/null || fail "faketime is not installed (scripts/dev.sh test installs it)"
	setup file
	expect_ok git dnadata snapshot
	make_u
	expect_ok git dnadata snapshot
	git reset -q --hard HEAD~1
	psql_q "$DB" "DROP TABLE u; UPDATE t SET note = 'm' || id WHERE id % 50 = 0"
	expect_ok git dnadata snapshot
	git reflog expire --expire=now --all
	local before
	before=$(store_names)
	faketime -f +3d date +%s >"$T/fake" || fail "faketime does not run"
	[ "$(($(cat "$T/fake") - $(date +%s)))" -gt 250000 ] || fail "faketime did not move the clock"
	# NO_FAKE_STAT: file times stay the kernel's, as on a real machine (libfaketime would shift them too);
	# FAKE_ASAN: a sanitizer build (--enable-sanitizers) refuses a preload ahead of its runtime unless told
	expect_ok env NO_FAKE_STAT=1 "$FAKE_ASAN" faketime -f +3d git dnadata gc --store
	assert_contains "$OUT" "removed 0 manifests"
	assert_contains "$ERR" "warning: gc: this machine's clock is"
	assert_contains "$ERR" "ahead of the store's: gc goes by the store's clock"
	assert_eq "$before" "$(store_names)" "gc on a fast clock changed the store"
	# the same garbage 25 h later by the store's clock goes
	expect_ok env DNADATA_TEST_GC_CLOCK_SHIFT=$OLD git dnadata gc --store
	assert_contains "$OUT" "removed 1 manifest"
	expect_ok git dnadata verify --all --read-data
}

# On S3 the store's clock is the server's Date. 3 days fast, S3 refuses the first signed request
# (RequestTimeTooSkewed) and the client signs by S3's clock from then on, saying so once, as AWS's SDKs do: gc runs
# and removes nothing young; 10 minutes fast (within S3's 15 minutes) gc runs by S3's clock and says how far off
# this one is.
test_s3_gc_goes_by_the_servers_date() {
	command -v faketime >/dev/null || fail "faketime is not installed (scripts/dev.sh test installs it)"
	setup s3
	old_garbage
	local before skew
	before=$(store_names)
	expect_ok env NO_FAKE_STAT=1 "$FAKE_ASAN" faketime -f +3d git dnadata gc --store
	assert_eq 1 "$(grep -c "requests are signed by S3's clock" <<<"$ERR")" "one warning: $ERR"
	skew=$(sed -n "s/^warning: this machine's clock is \([0-9]*\) s ahead of S3's at .*: requests are signed by S3's clock; set the system time$/\1/p" <<<"$ERR")
	[ -n "$skew" ] && [ "$skew" -ge 259190 ] && [ "$skew" -le 259210 ] || fail "the skew said is not 3 days: $ERR"
	assert_not_contains "$ERR" "error:"
	assert_contains "$OUT" "removed 0 manifests"
	assert_eq "$before" "$(store_names)" "gc on a 3 days fast clock changed the store"
	expect_ok env NO_FAKE_STAT=1 "$FAKE_ASAN" faketime -f -3d git dnadata gc --store --dry-run
	assert_contains "$ERR" "s behind S3's at "
	assert_eq "$before" "$(store_names)" "a dry run changed the store"
	expect_ok env NO_FAKE_STAT=1 "$FAKE_ASAN" faketime -f +10m git dnadata gc --store
	assert_contains "$ERR" "warning: gc: this machine's clock is"
	assert_contains "$ERR" "ahead of the store's"
	local skew
	skew=$(sed -n "s/.*this machine's clock is \([0-9]*\) s ahead.*/\1/p" <<<"$ERR")
	[ "$skew" -ge 590 ] && [ "$skew" -le 610 ] || fail "the skew said is not 600 s: $ERR"
	assert_contains "$OUT" "removed 0 manifests"
	# the garbage goes 25 h later by S3's clock, and the new snapshot that reused it stays whole
	expect_ok git dnadata snapshot
	expect_ok env DNADATA_TEST_GC_CLOCK_SHIFT=$OLD git dnadata gc --store
	assert_contains "$OUT" "removed 1 manifest"
	check_complete
}

# one_lock: exactly one lock file, its name in ONE (one listing: a refresh puts the new file before it removes the
# old one, so a listing between the two shows both)
one_lock() {
	ONE=$(lock_names)
	[ -n "$ONE" ] && [ "$(wc -l <<<"$ONE")" = 1 ]
}

lock_changed() {
	local now
	now=$(lock_names)
	[ -n "$now" ] && ! grep -qxF "$1" <<<"$now"
}

# A writer held up for longer than a refresh period (here 1 s: DNADATA_TEST_LOCK_REFRESH) rewrites its lock under a
# new name and removes the old one, and removes its lock when it ends.
test_a_held_lock_is_refreshed_and_removed_at_the_end() {
	setup file
	expect_ok git dnadata snapshot
	psql_q "$DB" "CREATE TABLE pause (id int PRIMARY KEY); UPDATE t SET note = 'p' || id WHERE id % 10 = 0"
	hold_lock "$DB" pause
	DNADATA_TEST_LOCK_REFRESH=1 DNADATA_LOCK_WAIT_TIMEOUT=0 git-dnadata snapshot >"$T/snap.out" 2>"$T/snap.err" \
		</dev/null &
	local snap=$! first
	wait_until "the snapshot waits for table pause" snapshot_waits_for_table
	wait_until "the waiting snapshot's one lock, between two refreshes" one_lock
	first=$ONE
	wait_until "its lock is written again under a new name, the old one removed" lock_changed "$first"
	release_lock
	wait "$snap" || fail "the snapshot failed: $(cat "$T/snap.err")"
	[ -z "$(lock_names)" ] || fail "the snapshot left its lock: $(lock_names)"
	expect_ok git dnadata verify --all --read-data
}

test_test_lock_settings_need_dnadata_test() {
	setup file
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET note = 'y' || id WHERE id % 10 = 0"
	# without DNADATA_TEST=1 the lock settings are ignored: this host's name, no clock shift
	stopped index-listed env -u DNADATA_TEST DNADATA_TEST_LOCK_HOST=elsewhere git-dnadata snapshot
	expect_fail 1 env -u DNADATA_TEST DNADATA_TEST_LOCK_CLOCK_SHIFT=999999 git dnadata gc --store
	assert_contains "$ERR" "locked by host $(hostname), pid $STOPPED_PID"
	finish_stopped
}

# remove_locks: every lock file removed by hand (another machine's gc that judged them stale)
remove_locks() {
	local l
	[ -n "$(lock_names)" ] || fail "no lock to remove"
	for l in $(lock_names); do
		if [ "$KIND" = s3 ]; then
			s3_aws s3 rm "s3://$BUCKET/$l" >/dev/null || fail "could not remove $l"
		else
			rm "$T/store/$l"
		fi
	done
}

# end_stopped: let the stopped process go on; EXIT_CODE its exit status
end_stopped() {
	kill -CONT "$STOPPED_PID"
	EXIT_CODE=0
	wait "$STOPPED_PID" || EXIT_CODE=$?
	STOPPED_PID=
}

# interrupt SIGNAL WHAT: the stopped process, holding its lock, gets SIGNAL: it removes its lock and ends with
# "error: interrupted" and status 128+SIGNAL
interrupt() {
	assert_eq 1 "$(lock_names | wc -l)" "the lock of the stopped $2"
	kill -"$1" "$STOPPED_PID"
	end_stopped
	assert_eq $((128 + $(kill -l "$1"))) "$EXIT_CODE" "the exit status of the interrupted $2: $(cat "$T/stopped.err")"
	assert_contains "$(cat "$T/stopped.err")" "error: interrupted"
	assert_eq 1 "$(grep -c '^error: ' "$T/stopped.err")" "one error line: $(cat "$T/stopped.err")"
	[ -z "$(lock_names)" ] || fail "the interrupted $2 left its lock: $(lock_names)"
}

# A gc --store and a push stopped by Ctrl-C (or SIGTERM) while they hold their lock remove it: another machine's
# writer (gc) goes on at once rather than waiting for it to go stale in 30 min. (A background job of a script
# starts with SIGINT ignored: the handler the lock installs makes it count.)
interrupted() {
	setup "$1"
	local sig=$2
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET note = 'i' || id WHERE id % 10 = 0"
	stopped store-gc-listed git-dnadata gc --store
	interrupt "$sig" gc
	# another machine's writer does not wait (its bound: 1 s, so a wait would fail it)
	expect_ok env DNADATA_TEST_LOCK_HOST=elsewhere DNADATA_TEST_LOCK_WAIT=1 git dnadata snapshot
	assert_not_contains "$ERR" "is locked by"
	psql_q "$DB" "UPDATE t SET note = 'j' || id WHERE id % 10 = 0"
	expect_ok git dnadata snapshot --dump-only
	stopped push-before-manifests git-dnadata push
	interrupt "$sig" push
	# another machine's gc is not refused
	expect_ok env DNADATA_TEST_LOCK_HOST=elsewhere git dnadata gc --store
	expect_ok git dnadata push # the interrupted push, again
	expect_ok git dnadata verify --all --read-data
	[ -z "$(lock_names)" ] || fail "a lock was left: $(lock_names)"
}

test_folder_interrupted_gc_and_push_remove_their_lock() { interrupted file INT; }
test_s3_interrupted_gc_and_push_remove_their_lock() { interrupted s3 INT; }
test_folder_terminated_gc_and_push_remove_their_lock() { interrupted file TERM; }
test_s3_terminated_gc_and_push_remove_their_lock() { interrupted s3 TERM; }

# A snapshot interrupted while PostgreSQL works (pg/conn.c's handler on top of the lock's): the cancel and the
# normal error path, which removes the lock.
test_interrupted_snapshot_cancels_and_removes_its_lock() {
	setup file
	expect_ok git dnadata snapshot
	local head
	head=$(git rev-parse HEAD)
	psql_q "$DB" "CREATE TABLE pause (id int PRIMARY KEY); UPDATE t SET note = 'p' || id WHERE id % 10 = 0"
	hold_lock "$DB" pause
	DNADATA_LOCK_WAIT_TIMEOUT=0 git-dnadata snapshot >"$T/snap.out" 2>"$T/snap.err" </dev/null &
	local snap=$! rc=0
	wait_until "the snapshot waits for table pause" snapshot_waits_for_table
	assert_eq 1 "$(lock_names | wc -l)" "the waiting snapshot's lock"
	kill -INT "$snap"
	wait "$snap" || rc=$?
	release_lock
	assert_eq 1 "$rc" "the interrupted snapshot's exit status: $(cat "$T/snap.err")"
	assert_contains "$(cat "$T/snap.err")" "interrupted"
	[ -z "$(lock_names)" ] || fail "the interrupted snapshot left its lock: $(lock_names)"
	assert_eq "$head" "$(git rev-parse HEAD)" "the interrupted snapshot committed"
	expect_ok git dnadata verify --all --read-data
}

# A holder whose lock another machine removed as stale (its refreshes failed for 30 min) does not go on as if it
# held it: a writer fails before its manifest, gc before its removals, one line and a hint each.
lost_lock() {
	setup "$1"
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET note = 'l' || id WHERE id % 10 = 0"
	local head before
	head=$(git rev-parse HEAD)
	before=$(store_names)
	stopped index-listed env DNADATA_TEST_LOCK_REFRESH=1 git-dnadata snapshot
	remove_locks
	end_stopped
	assert_eq 1 "$EXIT_CODE" "the exit status of the writer that lost its lock: $(cat "$T/stopped.err")"
	assert_contains "$(cat "$T/stopped.err")" "the store lock was lost: another process removed this one's lock"
	assert_contains "$(cat "$T/stopped.err")" "hint: its refreshes failed for 30 min (was the store unreachable?); run the command again"
	assert_eq 1 "$(grep -c '^error: ' "$T/stopped.err")" "one error line: $(cat "$T/stopped.err")"
	assert_eq "$head" "$(git rev-parse HEAD)" "the writer that lost its lock committed"
	assert_eq "$(grep '^snapshots/' <<<"$before")" "$(store_names | grep '^snapshots/')" "a manifest was written"
	[ -z "$(lock_names)" ] || fail "a lock was left: $(lock_names)"
	expect_ok git dnadata verify --all --read-data
	# gc, its lock removed once it has written its new files: it removes nothing
	expect_ok git dnadata snapshot
	git reset -q --hard HEAD~1
	psql_q "$DB" "UPDATE t SET note = 'g' || id WHERE id % 10 = 0"
	expect_ok git dnadata snapshot # the working record moves on: the snapshot before is garbage
	git reflog expire --expire=now --all
	before=$(store_names)
	stopped store-gc-written env DNADATA_TEST_GC_CLOCK_SHIFT=$OLD git-dnadata gc --store
	remove_locks
	end_stopped
	assert_eq 1 "$EXIT_CODE" "the exit status of the gc that lost its lock: $(cat "$T/stopped.err")"
	assert_contains "$(cat "$T/stopped.err")" "gc removed nothing: the store lock was lost"
	comm -23 <(echo "$before") <(store_names) >"$T/gone"
	[ ! -s "$T/gone" ] || fail "the gc that lost its lock removed $(cat "$T/gone")"
	[ -z "$(lock_names)" ] || fail "a lock was left: $(lock_names)"
	expect_ok git dnadata verify --all --read-data
	expect_ok env DNADATA_TEST_GC_CLOCK_SHIFT=$OLD git dnadata gc --store # run again: it works
	assert_contains "$OUT" "removed 1 manifest"
}

test_folder_a_holder_that_lost_its_lock_stops() { lost_lock file; }
test_s3_a_holder_that_lost_its_lock_stops() { lost_lock s3; }

run_tests
