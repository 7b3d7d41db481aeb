#!/usr/bin/env bash
# t-bad-input.sh: bad input and a hostile environment, everywhere (issue 20).
# Each case: exit 1 with ONE error line (and at most one hint), nothing
# changed (the commits and ref files, the store, the databases and their
# data, the media folder), and the same command succeeds once the cause is
# gone. Cases other scripts already cover are listed in docs/RELIABILITY.md
# (section "Bad input everywhere"); these are the rest: malformed profiles.ini, ref files,
# conninfo and store URLs and unknown profiles across snapshot, restore and
# push; unreadable media files on restore; a full disk under the state
# folder (snapshot), the media folder and a tablespace (restore); the
# PostgreSQL server restarted in the middle of a snapshot and of a restore.
#
# A full disk is a real one: a small tmpfs, which needs root (mount); as
# another user these tests fail saying so, never pass quietly.
# serial: restarts the shared PostgreSQL server (tests/run runs it alone)
. "$(dirname "$0")/../lib.sh"

export DNADATA_SKIP=1 # no hook switches behind the tests' backs

# setup: main's snapshot X of table t and media folder $MEDIA (default: media, in the work tree), then edits to
# both that a snapshot would take and a restore would set aside.
setup() {
	MEDIA=${MEDIA:-media}
	repo_with_db bad --store "file://$T/store"
	printf 'media = %s\n' "$MEDIA" >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	mkdir -p "$MEDIA/d"
	printf 'one\n' >"$MEDIA/a"
	printf 'two\n' >"$MEDIA/d/b"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')"
	expect_ok git dnadata snapshot
	X=$OUT
	psql_q "$DB" "INSERT INTO t VALUES (2, 'two')"
	printf 'three\n' >"$MEDIA/c"
}

data() { psql_q "$DB" "SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM t"; }

# Everything a failed command must leave as it was: commits, ref files, the store, the databases (which, the
# working one's identity and data) and the media folder (entries, modes, sizes, mtimes, contents).
world() {
	git rev-parse HEAD
	git status --porcelain --untracked-files=no
	sha1sum .dnadata/refs/clean 2>&1 || true
	(cd "$T/store" && find . -type f | LC_ALL=C sort)
	# templates are the tool's cache (recorded, within the cache budget): a restore that fails after building one
	# keeps it for the next; nothing_changed checks every database of ours has its record. One session for all.
	psql_q "$DB" "SELECT (SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database
			WHERE starts_with(datname, '$DB') AND datname NOT LIKE '%\_\_dnadata\_tmpl\_%'),
		(SELECT oid FROM pg_database WHERE datname = '$DB'),
		(SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM t)"
	if [ -d "$MEDIA" ]; then
		(cd "$MEDIA" && find . -mindepth 1 -printf '%P %y %m %s %T@\n' | LC_ALL=C sort &&
			find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha1sum)
	fi
	pg_wait_no_sessions "$DB"
}

# refused CMD...: CMD fails (exit 1) with one error line and at most one hint (other lines are progress it
# printed before failing) and changes nothing of world(); BEFORE is world() from before.
refused() {
	expect_fail 1 "$@"
	nothing_changed "$*"
}

# nothing_changed WHAT: RC is 1, ERR holds one error line and at most one hint, world() is BEFORE.
nothing_changed() {
	assert_eq 1 "$RC" "$1: exit status ($ERR)"
	assert_eq 1 "$(printf '%s\n' "$ERR" | grep -c '^error: ' || true)" "$1: one error line: $ERR"
	[ "$(printf '%s\n' "$ERR" | grep -c '^hint: ' || true)" -le 1 ] || fail "$1: more than one hint: $ERR"
	assert_eq "$BEFORE" "$(world)" "$1 changed something"
	assert_consistent
}

# The snapshot a rerun takes holds the edits; the restore brings X back.
reruns_work() {
	expect_ok git dnadata snapshot
	local id=$OUT
	assert_ne "$X" "$id"
	assert_contains "$(git show HEAD:.dnadata/refs/clean)" "snapshot $id"
	git checkout -q HEAD~1 -- .dnadata/refs/clean
	expect_ok git dnadata restore
	assert_eq "1:one" "$(data)"
	[ ! -e "$MEDIA/c" ] || fail "the restore left $MEDIA/c"
}

test_malformed_profiles_ini_is_refused_by_every_command() {
	setup
	local bad
	for bad in 'garbage without an equals sign' '[profile "x"' 'media = other' $'\xff\xfe\x01 = 1'; do
		git checkout -q -- .dnadata/profiles.ini
		printf '%s\n' "$bad" >>.dnadata/profiles.ini
		BEFORE=$(world)
		for cmd in snapshot restore "restore --force" push status; do
			# shellcheck disable=SC2086
			refused git dnadata $cmd
			assert_contains "$ERR" "error: .dnadata/profiles.ini:"
		done
	done
	git checkout -q -- .dnadata/profiles.ini
	reruns_work
}

test_malformed_ref_files_are_refused_by_every_command() {
	setup
	local n=0 bad
	mkdir -p "$T/bad"
	printf 'not a ref\n' >"$T/bad/$((n += 1))"
	printf 'dnadata-ref 1\nsnapshot abc\n' >"$T/bad/$((n += 1))"
	printf 'dnadata-ref 1\nsnapshot %s\n' "${X^^}" >"$T/bad/$((n += 1))"
	printf 'dnadata-ref 99\nsnapshot %s\n' "$X" >"$T/bad/$((n += 1))"
	printf '<<<<<<< HEAD\nsnapshot %s\n=======\nsnapshot %s\n>>>>>>> b\n' "$X" "$X" >"$T/bad/$((n += 1))"
	printf 'dnadata-ref 1\nsnapshot %s' "${X:0:40}" >"$T/bad/$((n += 1))"
	head -c 4096 /dev/urandom >"$T/bad/$((n += 1))"
	head -c $((8 << 20)) /dev/zero | tr '\0' a >"$T/bad/$((n += 1))"
	for bad in "$T"/bad/*; do
		cp "$bad" .dnadata/refs/clean
		BEFORE=$(world)
		for cmd in restore "restore --force" push snapshot; do
			# shellcheck disable=SC2086
			refused git dnadata $cmd
			assert_contains "$ERR" ".dnadata/refs/clean"
		done
	done
	git checkout -q -- .dnadata/refs/clean
	reruns_work
}

test_malformed_conninfo_is_refused_without_echoing_a_password() {
	setup
	BEFORE=$(world)
	local bad
	for bad in "dbname=$DB host" "host='unterminated dbname=$DB" "dbname=$DB no_such_option=1" \
		"postgresql://u:SECRETPW@[::1/$DB" "postgresql://u:SECRETPW@host:notaport/$DB" "postgresql://%zz/$DB"; do
		for cmd in snapshot restore "restore --force"; do
			# shellcheck disable=SC2086
			DNADATA_DATABASE=$bad refused git dnadata $cmd
			assert_not_contains "$ERR" SECRETPW
		done
	done
	reruns_work
}

test_malformed_store_urls_are_refused_by_every_command() {
	setup
	BEFORE=$(world)
	local bad
	for bad in "ftp://host/x" "file://" "file://relative/path" "s3://" "s3:///prefix" "s3://UPPER_case!/x" \
		"s3://AKIAEXAMPLE:SECRETKEY@bucket/x"; do
		for cmd in snapshot restore push fetch; do
			# shellcheck disable=SC2086
			DNADATA_STORE=$bad refused git dnadata $cmd
			assert_contains "$ERR" "store"
			assert_not_contains "$ERR" SECRETKEY
		done
	done
	reruns_work
}

test_unknown_profiles_are_refused_by_every_command() {
	setup
	BEFORE=$(world)
	for cmd in "snapshot nope" "restore nope" "push nope" "use nope" "diff --profile nope"; do
		# shellcheck disable=SC2086
		refused git dnadata $cmd
		assert_contains "$ERR" "no profile 'nope'"
	done
	DNADATA_PROFILE=nope refused git dnadata snapshot
	DNADATA_PROFILE=nope refused git dnadata restore
	reruns_work
}

test_unreadable_media_files_fail_the_restore_and_change_nothing() {
	setup
	chmod 000 media/c
	BEFORE=$(world)
	refused no_dac git dnadata restore
	assert_contains "$ERR" "cannot read media file 'c': Permission denied"
	chmod 644 media/c
	chmod 000 media/d
	BEFORE=$(world)
	refused no_dac git dnadata restore
	assert_contains "$ERR" "Permission denied"
	tap_note "$ERR"
	chmod 755 media/d
	reruns_work
}

# small_fs DIR SIZE: mount a tmpfs of SIZE on DIR (root only: fails, saying so, otherwise); unmounted when the
# test ends.
small_fs() {
	[ "$(id -u)" = 0 ] || fail "a full disk needs a small file system: run as root (mount -t tmpfs)"
	mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" || fail "cannot mount a tmpfs on $1 (needs CAP_SYS_ADMIN)"
	SMALL_FS+=("$1")
	trap 'cleanup_small_fs' EXIT
}

cleanup_small_fs() {
	local d
	[ -z "${TABLESPACE:-}" ] || {
		for d in $(databases_like "$DB"); do psql_q postgres "DROP DATABASE IF EXISTS \"$d\"" || true; done
		psql_q postgres "DROP TABLESPACE IF EXISTS $TABLESPACE" || true
	}
	for d in "${SMALL_FS[@]}"; do umount -l "$d" 2>/dev/null || true; done
}

# fill DIR LEFT: take all but LEFT bytes of DIR's file system with DIR/filler.
fill() {
	local avail
	avail=$(df --output=avail -B1 "$1" | tail -n 1)
	[ "$avail" -gt "$2" ] || fail "only $avail bytes free on $1"
	fallocate -l $((avail - $2)) "$1/filler"
}

test_full_disk_under_the_state_folder_fails_the_snapshot_and_a_rerun_works() {
	setup
	psql_q "$DB" "CREATE EXTENSION IF NOT EXISTS pgcrypto;
		CREATE TABLE noise (id int PRIMARY KEY, b bytea);
		INSERT INTO noise SELECT i, gen_random_bytes(1000) FROM generate_series(1, 4000) i"
	# the whole state folder (cache, records, locks, key) on a small file system with 1 MiB left
	cp -a .git/dnadata "$T/state"
	small_fs .git/dnadata 64m
	cp -a "$T/state/." .git/dnadata/
	fill .git/dnadata $((1 << 20))
	BEFORE=$(world)
	refused git dnadata snapshot
	assert_contains "$ERR" "disk full"
	tap_note "$ERR"
	rm .git/dnadata/filler
	reruns_work
}

test_full_disk_in_the_media_folder_fails_the_restore_and_a_rerun_works() {
	# the folder on a small file system; what fills it lies beside the folder (a restore removes extra files)
	mkdir "$T/fs"
	small_fs "$T/fs" 16m
	MEDIA=$T/fs/media
	setup
	# X's folder holds 4 MiB more than the folder does now
	head -c $((4 << 20)) /dev/urandom >"$MEDIA/big"
	expect_ok git dnadata snapshot
	X=$OUT
	rm "$MEDIA/big"
	psql_q "$DB" "INSERT INTO t VALUES (3, 'three')"
	printf 'four\n' >"$MEDIA/e"
	fill "$T/fs" $((1 << 20))
	BEFORE=$(world)
	refused git dnadata restore
	assert_contains "$ERR" "No space left on device"
	tap_note "$ERR"
	rm "$T/fs/filler"
	expect_ok git dnadata restore
	[ "$(stat -c %s "$MEDIA/big")" = $((4 << 20)) ] || fail "media/big is not X's"
	assert_eq "1:one,2:two" "$(data)"
}

test_full_disk_under_a_tablespace_fails_the_restore_and_a_rerun_works() {
	setup
	local ts=$T/ts
	mkdir -p "$ts"
	chmod o+x "$T"
	small_fs "$ts" 8m
	mkdir "$ts/pg" && chown nobody "$ts/pg"
	TABLESPACE=dd_small_${DB}
	psql_q postgres "CREATE TABLESPACE $TABLESPACE LOCATION '$ts/pg'"
	psql_q "$DB" "CREATE EXTENSION IF NOT EXISTS pgcrypto;
		CREATE TABLE noise (id int PRIMARY KEY, b bytea) TABLESPACE $TABLESPACE;
		ALTER TABLE noise ALTER COLUMN b SET STORAGE EXTERNAL;
		INSERT INTO noise SELECT i, gen_random_bytes(1000) FROM generate_series(1, 5000) i"
	expect_ok git dnadata snapshot
	X=$OUT
	psql_q "$DB" "INSERT INTO t VALUES (3, 'three')"
	# the working copy fits, a second copy (the restore's) does not
	BEFORE=$(world)
	refused git dnadata restore
	assert_contains "$ERR" "No space left on device"
	assert_contains "$ERR" "hint: the database server's disk is full"
	tap_note "$ERR"
	mount -o remount,size=64m "$ts"
	BEFORE=
	expect_ok git dnadata restore
	assert_eq "1:one,2:two" "$(data)"
	assert_eq 5000 "$(psql_q "$DB" "SELECT count(*) FROM noise")"
}

# The cluster tests/run started, restarted (fast: sessions are ended, as a crash or an admin's restart does).
pg_restart() {
	(cd / && pg_as_owner "$DD_PG_BINDIR/pg_ctl" -D "$DD_TMP/pg/data" -o "-p $PGPORT" -l "$DD_TMP/pg/log/server.log" \
		-m fast -w -t 60 restart >/dev/null) || fail "the PostgreSQL restart failed"
}

test_server_restarted_in_the_middle_of_a_snapshot() {
	setup
	BEFORE=$(world)
	hold_lock "$DB" t
	DNADATA_LOCK_WAIT_TIMEOUT=0 git-dnadata snapshot >"$T/snap.out" 2>"$T/snap.err" </dev/null &
	local snap=$! i
	for i in $(seq "$DD_WAIT_POLLS"); do
		snapshot_waits_for_table && break
		kill -0 "$snap" 2>/dev/null || fail "the snapshot ended before it waited: $(cat "$T/snap.err")"
		sleep 0.05
	done
	snapshot_waits_for_table || fail "the snapshot never waited for table t"
	pg_restart
	release_lock 2>/dev/null || true # its session ended with the server
	RC=0
	wait "$snap" || RC=$?
	OUT=$(cat "$T/snap.out") ERR=$(cat "$T/snap.err")
	nothing_changed "a snapshot across a restart"
	tap_note "$ERR"
	reruns_work
}

# restore stopped at POINT (DNADATA_FAILPOINT: it stops itself), the server restarted, then it goes on.
restore_across_a_restart_at() {
	setup
	BEFORE=$(world)
	DNADATA_FAILPOINT=$1 git-dnadata restore >"$T/r.out" 2>"$T/r.err" </dev/null &
	local pid=$! i
	for i in $(seq "$DD_WAIT_POLLS"); do
		[ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = T ] && break
		kill -0 "$pid" 2>/dev/null || fail "the restore ended before $1: $(cat "$T/r.err")"
		sleep 0.05
	done
	[ "$(cut -d' ' -f3 "/proc/$pid/stat")" = T ] || fail "the restore never reached $1"
	pg_restart
	kill -CONT "$pid"
	RC=0
	wait "$pid" || RC=$?
	OUT=$(cat "$T/r.out") ERR=$(cat "$T/r.err")
	nothing_changed "a restore across a restart at $1"
	tap_note "$ERR"
	expect_ok git dnadata restore
	assert_eq "1:one" "$(data)"
	[ ! -e "$MEDIA/c" ] || fail "the restore left $MEDIA/c"
	assert_consistent
}

test_server_restarted_while_a_restore_builds_its_template() { restore_across_a_restart_at template-built; }
test_server_restarted_after_a_restore_cloned_the_template() { restore_across_a_restart_at cloned; }

run_tests
