# tests/crash.sh: the seeded kill -9 driver of t-crash.sh and t-crash-s3.sh
# (sourced after tests/lib.sh).
#
# A round runs one operation in a session (and process group) of its own,
# sleeps a delay drawn from the seed (0 to the operation's duration as last
# measured, in microseconds), or waits until a process of the group stopped
# itself at a named point (DNADATA_FAILPOINT, src/pg/switch.c), then sends
# SIGKILL to the whole group: git-dnadata and its children (pg_dump, git,
# the hook scripts of a `git checkout`). Then it waits until the group is
# gone and the server ended the dead client's sessions (on the server's
# word), and the caller checks the state: the refs name complete snapshots
# (`verify`), the working database is the old or the new one (row hashes),
# no edit is lost; then it reruns the operation (measuring it: the next
# round's delay is drawn from that duration) and checks the expected state.
#
#   DD_CRASH_SEED    the seed (default: a random one; every test prints it)
#   DD_CRASH_ROUNDS  kills per test (default 10): rounds go on until that many
#                    landed (a round whose operation finished first is no kill)
#
# Each test draws from its own stream, the seed mixed with the test's name,
# so one test is reproduced alone with DD_TEST_FILTER. The delays are
# reproduced, not the machine's speed: a kill lands where the delay falls in
# that run of the operation.

DD_CRASH_SEED=${DD_CRASH_SEED:-$(($(od -An -N4 -tu4 /dev/urandom) % 1000000000))}
DD_CRASH_ROUNDS=${DD_CRASH_ROUNDS:-10}
export DD_CRASH_SEED DD_CRASH_ROUNDS

# crash_begin KIND: start a test's random stream and its counters.
crash_begin() {
	CRASH_KIND=$1
	RANDOM=$(((DD_CRASH_SEED ^ $(printf '%s' "$1" | cksum | cut -d' ' -f1)) & 0x7fffffff))
	CRASH_KILLED=0 CRASH_AT_POINT=0 CRASH_FINISHED=0 CRASH_DURATION_US=100000
	CRASH_FAILPOINTS=() CRASH_FAILPOINT_SHARE=0 CRASH_ROUND=0 CRASH_WHAT=
	trap crash_end EXIT
}

# crash_end: the figures under the test's result (shown passed or failed).
crash_end() {
	tap_note "crash $CRASH_KIND: seed $DD_CRASH_SEED, $CRASH_ROUND rounds: $((CRASH_KILLED + CRASH_AT_POINT)) killed" \
		"($CRASH_KILLED at random moments, $CRASH_AT_POINT at named points), $CRASH_FINISHED finished before the kill;" \
		"reproduce with DD_CRASH_SEED=$DD_CRASH_SEED DD_CRASH_ROUNDS=$DD_CRASH_ROUNDS DD_TEST_FILTER=test_$CRASH_KIND"
}

# crash_next_round: start the next round (CRASH_ROUND), until DD_CRASH_ROUNDS kills landed (a round whose
# operation finished before its kill still checks everything, and counts as no kill); at most twice that
# many rounds, or the test fails.
crash_next_round() {
	[ $((CRASH_KILLED + CRASH_AT_POINT)) -lt "$DD_CRASH_ROUNDS" ] || return 1
	[ "$CRASH_ROUND" -lt $((2 * DD_CRASH_ROUNDS)) ] ||
		fail "only $((CRASH_KILLED + CRASH_AT_POINT)) of $CRASH_ROUND rounds were killed before the operation finished"
	CRASH_ROUND=$((CRASH_ROUND + 1))
}

# crash_rand N: CRASH_R, a number in [0, N) from the test's stream (30 bits). Never in $(...): bash
# seeds RANDOM afresh in a subshell.
crash_rand() {
	CRASH_R=$((((RANDOM << 15) | RANDOM) % $1))
}

# crash_time CMD...: expect_ok CMD, measuring it: CRASH_DURATION_US (at least 1 ms).
crash_time() {
	local start=${EPOCHREALTIME/./}
	expect_ok "$@"
	CRASH_DURATION_US=$((${EPOCHREALTIME/./} - start))
	[ "$CRASH_DURATION_US" -ge 1000 ] || CRASH_DURATION_US=1000
}

# group_alive PGID: some process of group PGID still runs (a zombie does not count).
group_alive() {
	ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
}

# group_stopped PGID: some process of group PGID stopped itself (SIGSTOP at a named point).
group_stopped() {
	ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 ~ /^T/ { f = 1 } END { exit !f }'
}

# crash_wait_sessions: wait until the server ended every client session but the test's own: those of a
# killed client end once their backend notices (at its next read or write; a statement runs to its end).
crash_wait_sessions() {
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(psql_q postgres "SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")" = 0 ] && return 0
		sleep 0.02
	done
	fail "the killed operation's sessions were still connected after $DD_WAIT_POLLS polls"
}

# crash_kill CMD...: one round's operation, killed. The stream chooses a named point (a share
# CRASH_FAILPOINT_SHARE in 100 of rounds, among CRASH_FAILPOINTS) or a delay; the whole group gets SIGKILL.
# CRASH_WHAT says where it was killed, or that it finished first (then it must have succeeded).
crash_kill() {
	local delay fp='' pid rc
	crash_rand "$CRASH_DURATION_US"
	delay=$CRASH_R
	crash_rand 100
	if [ "${#CRASH_FAILPOINTS[@]}" -gt 0 ] && [ "$CRASH_R" -lt "$CRASH_FAILPOINT_SHARE" ]; then
		crash_rand "${#CRASH_FAILPOINTS[@]}"
		fp=${CRASH_FAILPOINTS[$CRASH_R]}
	fi
	# setsid: a session and process group of its own whose id is the pid (a background child of a shell
	# without job control is no group leader, so setsid(1) calls setsid() and execs, without forking)
	if [ -n "$fp" ]; then
		DNADATA_FAILPOINT=$fp setsid "$@" >"$T/crash.out" 2>"$T/crash.err" </dev/null &
	else
		setsid "$@" >"$T/crash.out" 2>"$T/crash.err" </dev/null &
	fi
	pid=$!
	if [ -n "$fp" ]; then
		CRASH_WHAT="at $fp"
		for _ in $(seq "$DD_WAIT_POLLS"); do
			group_stopped "$pid" && break
			case $(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) in '' | Z) break ;; esac
			sleep 0.01
		done
	else
		CRASH_WHAT="after $delay us (of $CRASH_DURATION_US)"
		sleep "$(printf '%d.%06d' $((delay / 1000000)) $((delay % 1000000)))"
	fi
	# the group, or (killed before setsid() ran) the process alone, which has no children yet
	kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" && rc=0 || rc=$?
	for _ in $(seq "$DD_WAIT_POLLS"); do
		group_alive "$pid" || break
		sleep 0.01
	done
	group_alive "$pid" && fail "processes of the killed group $pid are still running"
	if [ "$rc" = 137 ]; then
		if [ -n "$fp" ]; then CRASH_AT_POINT=$((CRASH_AT_POINT + 1)); else CRASH_KILLED=$((CRASH_KILLED + 1)); fi
	elif [ "$rc" = 0 ]; then
		CRASH_FINISHED=$((CRASH_FINISHED + 1))
		CRASH_WHAT="$CRASH_WHAT: finished first"
	else
		fail "$* failed by itself (exit $rc) before its kill $CRASH_WHAT: $(cat "$T/crash.err")"
	fi
	crash_wait_sessions
	echo "round $CRASH_ROUND: $* killed $CRASH_WHAT"
}

# ---- states ----

# crash_data DB ROWS: the test data: t (ROWS rows) and edits (the user's edits, one marker row each).
crash_data() {
	psql_q "$1" "CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT g, md5(g::text) || repeat('x', 40) FROM generate_series(1, $2) g;
		CREATE TABLE edits (id serial PRIMARY KEY, v text)"
	psql_q "$1" "VACUUM ANALYZE"
}

# db_hash DB: a hash of every row of t and edits ("" if DB cannot be read).
db_hash() {
	psql_q "$1" "SELECT md5((SELECT coalesce(string_agg(md5(t::text), '' ORDER BY id), '') FROM t) || '/' ||
		(SELECT coalesce(string_agg(md5(e::text), '' ORDER BY id), '') FROM edits e))" 2>/dev/null || true
}

# crash_edit DB MARKER: a user's edit: a marker row, and 20 rows of t changed (one key range).
crash_edit() {
	local k=$((RANDOM % 1000))
	psql_q "$1" "INSERT INTO edits (v) VALUES ('$2'); UPDATE t SET v = md5(v) WHERE id BETWEEN $k AND $((k + 19))"
}

# assert_old_or_new HASH OLD NEW: the working database is the old or the new one.
assert_old_or_new() {
	[ "$1" = "$2" ] || [ "$1" = "$3" ] ||
		fail "round $CRASH_ROUND, killed $CRASH_WHAT: the working database is neither the old nor the new one (hash '$1')"
}

# assert_edit_kept MARKER...: each edit is in the working database or in one of its stashes (newest first).
assert_edit_kept() {
	local db found='' m
	for db in "$DB" $(databases_like "${DB}__dnadata_stash_" | sort -r); do
		found+=$'\n'$(psql_q "$db" "SELECT v FROM edits" 2>/dev/null || true)
		for m in "$@"; do
			grep -qxF -- "$m" <<<"$found" || continue 2
		done
		return 0
	done
	for m in "$@"; do
		grep -qxF -- "$m" <<<"$found" ||
			fail "round $CRASH_ROUND, killed $CRASH_WHAT: the edit $m is neither in the working database nor in a stash"
	done
}

# ref_id [PROFILE]: the snapshot id the ref file names (in the work tree).
ref_id() { sed -n 's/^snapshot //p' ".dnadata/refs/${1:-clean}"; }

# assert_verify [OPTION...]: `git dnadata verify` passes.
assert_verify() {
	run git-dnadata verify "$@"
	[ "$RC" = 0 ] || fail "round $CRASH_ROUND, killed $CRASH_WHAT: verify $* failed: $ERR"
}

# assert_rerun CMD...: the rerun succeeds (measured).
assert_rerun() {
	local start=${EPOCHREALTIME/./}
	run "$@"
	[ "$RC" = 0 ] || fail "round $CRASH_ROUND, killed $CRASH_WHAT: the rerun $* failed (exit $RC): $ERR"
	CRASH_DURATION_US=$((${EPOCHREALTIME/./} - start))
	[ "$CRASH_DURATION_US" -ge 1000 ] || CRASH_DURATION_US=1000
}

# ---- push and fetch (a folder store or S3) ----

# crash_push URL: snapshots taken with --dump-only, then `push` killed: the ref's snapshot is complete
# in the cache, every snapshot the store lists is complete, the rerun pushes it and the store has it whole.
crash_push() {
	local url=$1 r h
	repo_with_db crpush --store "$url"
	crash_data "$DB" 2000
	crash_time git-dnadata snapshot -m first
	while crash_next_round; do
		r=$CRASH_ROUND
		crash_edit "$DB" "push-$r"
		expect_ok git-dnadata snapshot --dump-only -m "round $r"
		h=$(db_hash "$DB")
		crash_kill git-dnadata push
		assert_eq "$h" "$(db_hash "$DB")" "push changed the database"
		assert_verify --offline
		assert_verify --all
		assert_rerun git-dnadata push
		assert_verify
	done
	assert_verify --all --read-data
}

# crash_fetch URL: a clone B of A fetches each new snapshot of A, killed: B's refs name complete snapshots in
# the store, its database is untouched; the rerun fetches what is missing and B's cache then holds every byte.
crash_fetch() {
	local url=$1 r h bdb
	repo_with_db crfetch --store "$url"
	crash_data "$DB" 2000
	expect_ok git-dnadata snapshot -m first
	install -m 600 .git/dnadata/key "$T/b.key"
	git clone -q "$T/repo" "$T/b"
	cd "$T/b"
	bdb=$(pg_newdb crfetchb)
	crash_data "$bdb" 10
	expect_ok git dnadata key import "$T/b.key"
	DNADATA_DATABASE="dbname=$bdb" expect_ok git dnadata init
	printf '[profile "clean"]\ndatabase = dbname=%s\n' "$bdb" >>.git/dnadata/config.ini
	crash_time git-dnadata fetch
	h=$(db_hash "$bdb")
	while crash_next_round; do
		r=$CRASH_ROUND
		cd "$T/repo"
		crash_edit "$DB" "fetch-$r"
		expect_ok git-dnadata snapshot -m "round $r"
		cd "$T/b"
		DNADATA_SKIP=1 git pull -q --ff-only
		crash_kill git-dnadata fetch
		assert_eq "$h" "$(db_hash "$bdb")" "fetch changed the database"
		assert_verify
		assert_rerun git-dnadata fetch
		assert_verify --offline --read-data
	done
	expect_ok git dnadata restore
	assert_eq "$(db_hash "$DB")" "$(db_hash "$bdb")" "clone b's database differs from a's"
}
