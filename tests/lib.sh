# tests/lib.sh: the integration-test harness, sourced by tests/integration/t-*.sh.
#
# A script defines functions named test_<behaviour> and ends with run_tests.
# Each test runs in its own subshell with `set -e`, in a fresh temp dir $T
# (also the cwd) with its own HOME (git identity set), and is reported as a
# TAP line "ok N - name" / "not ok N - name" (tests/run counts them). Temp
# dirs are removed whatever happens; a failing test's output is shown, and
# what a test gave tap_note is shown under its result either way.
#
# The PostgreSQL cluster is started once per run by tests/run and described
# by PGHOST/PGPORT/PGUSER (superuser "postgres", trust on the socket) and
# DD_TEST_PW_USER/DD_TEST_PW_PASSWORD (a role that needs its password over
# TCP on 127.0.0.1:$PGPORT).
#
# The S3 server (Ceph's RADOS Gateway, tests/s3.sh) is started once per run
# by tests/run for the scripts that carry the line "# needs: s3", and
# described by DD_S3_ENDPOINT, DD_S3_REGION, DD_S3_ACCESS_KEY /
# DD_S3_SECRET_KEY (and a second user's DD_S3_ACCESS_KEY2 /
# DD_S3_SECRET_KEY2). Helpers: need_s3, s3_env, s3_bucket, s3_aws, s3_ls,
# s3_curl, s3_assert_no_credentials, s3_dead_endpoint, s3_proxy_start /
# s3_proxy_stop / s3_proxy_stat. Never print the keys.

set -u
DD_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$DD_TESTS_DIR/pg.sh"
. "$DD_TESTS_DIR/s3.sh"
DD_TMP=${DD_TMP:-${TMPDIR:-/tmp}}
export GIT_CONFIG_NOSYSTEM=1
# No background spare job after a switch (it would change the databases under a test's feet);
# the tests of the job unset it or run it in the foreground (git dnadata spare --count N).
export DNADATA_SPARES=0

# Polls for a state another process reaches (a lock waited on, a failpoint, a worker) stop after this many
# rounds of at least 50 ms: a hang guard of 10 minutes, never a guess at how long a busy machine takes (a
# loaded CI run or the sanitizer suite made 30-60 s bounds fail with nothing wrong).
DD_WAIT_POLLS=12000

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# new_repo [DIR]: a fresh git repository (default $T/repo); cd into it.
new_repo() {
	local dir=${1:-$T/repo}
	mkdir -p "$dir"
	git init -q -b main "$dir"
	cd "$dir"
}

# run CMD...: run and capture; sets RC, OUT, ERR (never fails by itself).
run() {
	set +e
	"$@" >"$T/.out" 2>"$T/.err" </dev/null
	RC=$?
	set -e
	OUT=$(cat "$T/.out")
	ERR=$(cat "$T/.err")
}

expect_ok() {
	run "$@"
	if [ "$RC" != 0 ]; then
		fail "expected success from: $* (exit $RC)"$'\n'"stderr: $ERR"
	fi
}

# expect_fail CODE CMD...: exits with CODE and prints exactly one "error:" line.
expect_fail() {
	local code=$1
	shift
	run "$@"
	[ "$RC" = "$code" ] || fail "expected exit $code from: $* (got $RC)"$'\n'"stdout: $OUT"$'\n'"stderr: $ERR"
	local n
	n=$(grep -c '^error: ' "$T/.err" || true)
	[ "$n" = 1 ] || fail "expected one 'error:' line from: $*, got:"$'\n'"$ERR"
}

assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-values differ}: expected [$1], got [$2]"
}

assert_ne() {
	[ "$1" != "$2" ] || fail "${3:-values equal}: both are [$1]"
}

assert_contains() {
	case "$1" in
	*"$2"*) ;;
	*) fail "${3:-missing text}: [$2] not found in:"$'\n'"$1" ;;
	esac
}

assert_not_contains() {
	case "$1" in
	*"$2"*) fail "${3:-unexpected text}: [$2] found in:"$'\n'"$1" ;;
	esac
}

assert_file() { [ -e "$1" ] || fail "expected file $1"; }
assert_no_file() { [ ! -e "$1" ] || fail "expected no file $1"; }

need_pg() {
	[ -n "${PGPORT:-}" ] || fail "this test needs the PostgreSQL cluster that tests/run starts"
}

# pg_newdb [PREFIX]: create an empty database with a unique name; echo it.
# Unique by construction, not by chance: the creating process's pid (callers
# run this in $(...), so a counter would not survive, and $RANDOM collided
# once in a suite run) and the microsecond clock, which moves between two
# calls of one process.
pg_newdb() {
	local us=${EPOCHREALTIME/./}
	local name="${1:-t}_${BASHPID}_${us: -9}"
	name=$(echo "$name" | tr 'A-Z-' 'a-z_')
	"$DD_PG_BINDIR/createdb" "$name" >/dev/null || fail "createdb $name failed"
	echo "$name"
}

# repo_with_db PREFIX [INIT-OPTION...]: a fresh database $DB (empty) and a
# fresh repository (cwd) initialised on it, with any further init options.
# FIXED_KEY: a store key for tests whose byte counts depend on chunk boundaries. The chunker's gear table comes from
# the store key (FORMAT.md §5), so with a random key a boundary that an update moves now and then makes a new chunk
# straddle two previous ones, and the part outside its delta base is stored whole: in ~1 run of 8 a 1% scattered
# update then cost ten times its usual bytes (a real cost, measured in docs/DESIGN-NOTES.md; in a test it made a
# threshold a matter of luck). With this key the boundaries, and so the bytes, are the same on every run.
FIXED_KEY=5f3a9c1e7b2d4f60819a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70

# use_fixed_key: the repository's key file holds FIXED_KEY (before `git dnadata init`).
use_fixed_key() {
	mkdir -p -m 700 .git/dnadata
	printf 'dnadata-key 1\nkey %s\n' "$FIXED_KEY" >.git/dnadata/key
	chmod 600 .git/dnadata/key
}

repo_with_db() {
	local prefix=$1
	shift
	need_pg
	DB=$(pg_newdb "$prefix")
	new_repo
	expect_ok git dnadata init --database "dbname=$DB" "$@"
}

# hold_lock DB TABLE [APPLICATION]: a psql session (a coproc named
# APPLICATION, default "locker") holds ACCESS EXCLUSIVE on TABLE of DB in an
# open transaction until release_lock; LOCKER_BACKEND is its server pid. For
# blocking a command at a known point without sleeping.
hold_lock() {
	coproc LOCKER { "$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "dbname=$1 application_name=${3:-locker}" 2>&1; }
	echo "BEGIN; LOCK TABLE $2 IN ACCESS EXCLUSIVE MODE; SELECT pg_backend_pid();" >&"${LOCKER[1]}"
	read -r LOCKER_BACKEND <&"${LOCKER[0]}"
	[[ $LOCKER_BACKEND =~ ^[0-9]+$ ]] || fail "the ${3:-locker} session did not get its lock: $LOCKER_BACKEND"
}

release_lock() {
	echo "ROLLBACK;" >&"${LOCKER[1]}"
	local pid=$LOCKER_PID
	eval "exec ${LOCKER[1]}>&-"
	wait "$pid" || true
}

# psql_q DB SQL: run SQL, print unaligned tuples only.
psql_q() {
	"$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# databases_like PREFIX: the databases whose name starts with PREFIX, sorted.
databases_like() { psql_q postgres "SELECT datname FROM pg_database WHERE datname LIKE '$1%' ORDER BY 1"; }
# records_dir: the folder of the working database's records (.git/dnadata/pg/<key>/).
records_dir() { dirname "$(ls .git/dnadata/pg/*/working)"; }
# assert_consistent: every copy record names a database that exists, every database of ours ($DB's
# templates, spares, stashes) has a record, no switch journal is left, nothing is pending. (A record's name
# ends in its hash: <record>.tmp-XXXXXX, the temporary file of a write a kill cut short, is none.)
assert_consistent() {
	local dir recorded ours
	dir=$(records_dir)
	recorded=$(cd "$dir" && ls | grep -E '^(tmpl|spare|stash)-[0-9a-f]+$' | xargs -r cat | sed -n 's/^name //p' | LC_ALL=C sort)
	ours=$(databases_like "${DB}__dnadata_" | LC_ALL=C sort)
	assert_eq "$ours" "$recorded" "the records and our databases agree"
	assert_no_file "$dir/switch"
	assert_eq "" "$(cd "$dir" && ls | grep -E "^pending-[0-9]+$" || true)" "nothing pending"
}

# pg_wait_no_sessions DB: wait (at most 30 s) until no session is connected
# to DB. A psql that just quit leaves its server process for a moment; a
# switch that finds it cannot tell an unedited database from an edited one
# (change.c) and records "unknown", the safe side. Tests that expect
# "unedited" wait for that moment to pass, on what the server says.
pg_wait_no_sessions() {
	local i
	for i in $(seq "$DD_WAIT_POLLS"); do
		[ "$(psql_q postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = '$1' AND pid <> pg_backend_pid()")" = 0 ] && return 0
		sleep 0.05
	done
	fail "sessions still connected to $1 after $DD_WAIT_POLLS polls"
}

# wait_until DESCRIPTION COMMAND...: poll (the hang guard's DD_WAIT_POLLS) until COMMAND succeeds.
wait_until() {
	local what=$1
	shift
	for _ in $(seq "$DD_WAIT_POLLS"); do
		"$@" && return 0
		sleep 0.05
	done
	fail "timed out waiting until $what"
}

# snapshot_waits_for_table: a git-dnadata session on $DB waits for a table lock it has not been granted.
snapshot_waits_for_table() {
	[ "$(psql_q "$DB" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE NOT l.granted AND a.datname = '$DB' AND a.application_name = 'git-dnadata'")" -gt 0 ]
}

# clone_joined: a second clone ("another machine") of the repository in $PWD, in $T/b, given the key and
# initialised on the same store; the caller stays where it was.
clone_joined() {
	local origin=$PWD
	install -m 600 .git/dnadata/key "$T/key"
	git clone -q "$origin" "$T/b"
	cd "$T/b"
	expect_ok git dnadata key import "$T/key"
	expect_ok git dnadata init
	cd "$origin"
}

# strace: tests/bin/strace, which runs what it traces without leak checks (LeakSanitizer cannot work under
# ptrace); a script, not a function, so `strace ... &` gives strace's own pid.
PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bin:$PATH"

# start_stopped_at POINT CMD...: start CMD in the background with
# DNADATA_FAILPOINT=POINT and wait until it has stopped itself there
# (SIGSTOP, util/proc.c). STOPPED_PID: its pid; its output goes to
# $T/stopped.out and $T/stopped.err. Fails if it ends before POINT.
start_stopped_at() {
	local point=$1
	shift
	DNADATA_FAILPOINT=$point "$@" >"$T/stopped.out" 2>"$T/stopped.err" </dev/null &
	STOPPED_PID=$!
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(cut -d' ' -f3 "/proc/$STOPPED_PID/stat" 2>/dev/null)" = T ] && return 0
		kill -0 "$STOPPED_PID" 2>/dev/null || fail "$* ended before $point: $(cat "$T/stopped.err")"
		sleep 0.05
	done
	fail "$* never reached $point"
}

# finish_stopped: let the process start_stopped_at stopped go on and wait for it; fails if it fails.
finish_stopped() {
	kill -CONT "$STOPPED_PID"
	wait "$STOPPED_PID" || fail "it failed: $(cat "$T/stopped.err")"
}

need_s3() {
	[ -n "${DD_S3_ENDPOINT:-}" ] || fail "this test needs the S3 server that tests/run starts (the script must carry the line '# needs: s3')"
}

# s3_env: the environment the code under test reads its S3 settings from
# (AWS's variables), pointing at the test server (or at the fault proxy once
# s3_proxy_start has run); nothing inherited from the caller's AWS setup.
s3_env() {
	need_s3
	unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_S3 AWS_DEFAULT_REGION
	export AWS_ACCESS_KEY_ID=$DD_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$DD_S3_SECRET_KEY
	export AWS_ENDPOINT_URL=${DD_S3_PROXY_ENDPOINT:-$DD_S3_ENDPOINT} AWS_REGION=$DD_S3_REGION
}

# s3_aws ARG...: Debian's awscli (never a pyenv shim on PATH) as the first
# test user, straight to the server (not through the proxy; S3_AWS_ENDPOINT
# overrides), ignoring any ~/.aws files a test writes.
s3_aws() {
	need_s3
	AWS_ACCESS_KEY_ID=$DD_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$DD_S3_SECRET_KEY \
		AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER= \
		env -u AWS_SESSION_TOKEN -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_ENDPOINT_URL \
		-u AWS_ENDPOINT_URL_S3 -u AWS_DEFAULT_REGION -u AWS_REGION /usr/bin/aws --endpoint-url "${S3_AWS_ENDPOINT:-$DD_S3_ENDPOINT}" --region "$DD_S3_REGION" \
		--no-cli-pager "$@"
}

# s3_bucket PREFIX: create an empty bucket with a name unique to this test
# (PREFIX-...); echo the name. Buckets are not removed: the server is
# throwaway. A signed curl request rather than awscli, which takes a second
# to start.
s3_bucket() {
	local name
	name=$(printf '%s-%s-%s-%s' "${1:-b}" "$BASHPID" "$RANDOM" "$(date +%N)" | tr 'A-Z_' 'a-z-' | cut -c1-63)
	S3_CURL_ENDPOINT= s3_curl PUT "/$name"
	[ "$S3_STATUS" = 200 ] || fail "could not create bucket $name (HTTP $S3_STATUS $S3_CODE, curl exit $S3_RC)"
	echo "$name"
}

# s3_ls BUCKET [PREFIX]: every key (under PREFIX), one a line, sorted.
s3_ls() {
	local out
	out=$(s3_aws s3api list-objects-v2 --bucket "$1" ${2:+--prefix "$2"} \
		--query 'Contents[].[Key]' --output text) || fail "could not list bucket $1"
	[ "$out" = None ] || [ -z "$out" ] || printf '%s\n' "$out" | LC_ALL=C sort
}

# s3_assert_no_credentials TEXT...: neither test user's access key nor
# secret appears in TEXT (output, logs, error lines). Never prints them.
s3_assert_no_credentials() {
	local text="$*" k
	for k in "$DD_S3_SECRET_KEY" "$DD_S3_SECRET_KEY2" "$DD_S3_ACCESS_KEY" "$DD_S3_ACCESS_KEY2"; do
		case $text in
		*"$k"*) fail "an S3 credential appears in the output (not shown here)" ;;
		esac
	done
}

# flip_byte FILE OFFSET: change the byte at OFFSET of FILE to another value (its lowest bit flipped),
# so a "damaged" copy always differs (writing a fixed byte is a no-op once in 256 tries).
# Without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so a mode 000 file is unreadable even to root (the
# test suite runs as root); an unprivileged user needs nothing.
no_dac() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --bounding-set=-dac_override,-dac_read_search "$@"
	else
		"$@"
	fi
}

flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	[ -n "$b" ] || fail "flip_byte: $1 has no byte at offset $2"
	# shellcheck disable=SC2059
	printf "\\$(printf '%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# no_credentials_in TEXT [VAR=VALUE...]: neither the test users' keys nor a
# key given as VAR=VALUE appear in TEXT (and none is printed if one does).
no_credentials_in() {
	local text=$1 kv
	shift
	s3_assert_no_credentials "$text"
	for kv in "$@"; do
		case $kv in
		AWS_SECRET_ACCESS_KEY=* | AWS_ACCESS_KEY_ID=*)
			case $text in *"${kv#*=}"*) fail "the key given as ${kv%%=*} appears in the output (not shown here)" ;; esac
			;;
		esac
	done
}

# s3_dead_endpoint: the URL of a loopback port where nothing listens, for
# "server down" tests.
s3_dead_endpoint() {
	echo "http://127.0.0.1:$(pg_free_port)"
}

# s3_curl METHOD PATH [--body FILE] [CURL-ARG...]: one request signed by
# curl's --aws-sigv4 as S3_KEY / S3_SECRET (default: the first test user) to
# S3_CURL_ENDPOINT (default: the server), with the payload hash of the body
# (S3_SHA overrides it). The keys reach curl on stdin, not
# on its command line. Sets S3_RC (curl's exit), S3_STATUS (HTTP status),
# S3_BODY (the response body; also in $T/.s3body), S3_CODE (the S3 error
# <Code>, if any); never fails by itself.
s3_curl() {
	local method=$1 path=$2 body= hash
	shift 2
	if [ "${1:-}" = --body ]; then body=$2; shift 2; fi
	# curl 7.88 signs x-amz-content-sha256 but does not compute it (DESIGN §6).
	hash=${S3_SHA:-$(sha256sum "${body:-/dev/null}" | cut -d" " -f1)}
	set +e
	S3_STATUS=$(printf 'user = "%s:%s"\n' "${S3_KEY:-$DD_S3_ACCESS_KEY}" "${S3_SECRET:-$DD_S3_SECRET_KEY}" |
		curl -K - -s -o "$T/.s3body" -w '%{http_code}' -m 30 -X "$method" \
			--aws-sigv4 "aws:amz:$DD_S3_REGION:s3" -H "x-amz-content-sha256: $hash" \
			${body:+--data-binary "@$body"} "$@" "${S3_CURL_ENDPOINT:-$DD_S3_ENDPOINT}$path")
	S3_RC=$?
	set -e
	S3_BODY=$(cat "$T/.s3body" 2>/dev/null || true)
	S3_CODE=$(printf '%s' "$S3_BODY" | sed -n 's:.*<Code>\([^<]*\)</Code>.*:\1:p')
}

# s3_proxy_start RATE SEED [KINDS [DELAY]]: the fault proxy
# (tests/s3-fault-proxy.py) in front of the server for this test; exports
# DD_S3_PROXY_ENDPOINT (and AWS_ENDPOINT_URL, which s3_env also points at
# it). KINDS is a comma-separated list (default: every kind); DELAY is the
# delay fault's length in seconds (default 0.2). Stopped by s3_proxy_stop,
# or when the test ends (an EXIT trap of the test's shell): call it
# directly, never inside $(...).
s3_proxy_start() {
	need_s3
	local rate=$1 seed=$2 kinds=${3:-} delay=${4:-0.2} d=$T/.s3proxy
	mkdir -p "$d"
	rm -f "$d/port" "$d/stats"
	/usr/bin/python3 "$DD_TESTS_DIR/s3-fault-proxy.py" --upstream "${DD_S3_ENDPOINT#http://}" \
		--port-file "$d/port" --stats "$d/stats" --log "$d/log" --rate "$rate" --seed "$seed" \
		${kinds:+--kinds "$kinds"} --delay "$delay" >>"$d/out" 2>&1 </dev/null &
	DD_S3_PROXY_PID=$!
	trap s3_proxy_stop_quiet EXIT
	local i
	for i in $(seq 1 500); do
		[ -s "$d/port" ] && break
		kill -0 "$DD_S3_PROXY_PID" 2>/dev/null || fail "the fault proxy did not start: $(cat "$d/out")"
		sleep 0.01
	done
	[ -s "$d/port" ] || fail "the fault proxy did not start within 5 s: $(cat "$d/out")"
	export DD_S3_PROXY_ENDPOINT="http://127.0.0.1:$(cat "$d/port")"
	export DD_S3_PROXY_STATS=$d/stats
	[ -z "${AWS_ENDPOINT_URL:-}" ] || export AWS_ENDPOINT_URL=$DD_S3_PROXY_ENDPOINT
}

s3_proxy_stop_quiet() {
	[ -n "${DD_S3_PROXY_PID:-}" ] || return 0
	kill -TERM "$DD_S3_PROXY_PID" 2>/dev/null || true
	wait "$DD_S3_PROXY_PID" 2>/dev/null || true
	DD_S3_PROXY_PID=
	unset DD_S3_PROXY_ENDPOINT
	[ -z "${AWS_ENDPOINT_URL:-}" ] || export AWS_ENDPOINT_URL=$DD_S3_ENDPOINT
}

# s3_proxy_stop: stop the proxy; print its counters on one line
# ("fault proxy: requests 12 passed 9 slowdown 3 ...").
s3_proxy_stop() {
	s3_proxy_stop_quiet
	[ -s "${DD_S3_PROXY_STATS:-}" ] || fail "the fault proxy wrote no counters"
	echo "fault proxy: $(tr '\n' ' ' <"$DD_S3_PROXY_STATS")"
}

# s3_proxy_stat NAME: one counter of the last proxy (after s3_proxy_stop).
s3_proxy_stat() {
	awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$DD_S3_PROXY_STATS"
}

# tap_note TEXT...: a line shown as a TAP comment ("# TEXT") under the
# test's result, passed or failed (figures worth reading in every run).
tap_note() {
	printf '# %s\n' "$*" >>"$T.notes"
}

run_tests() {
	local script=${BASH_SOURCE[1]} n=0 fn rc log
	local names
	names=$(grep -oE '^test_[A-Za-z0-9_]+ *\(\)' "$script" | sed 's/ *()//')
	if [ -n "${DD_TEST_FILTER:-}" ]; then
		names=$(for fn in $names; do [[ $fn != *$DD_TEST_FILTER* ]] || echo "$fn"; done)
	fi
	if [ -z "$names" ]; then
		printf '1..1\nnot ok 1 - no test ran in %s\n' "$script"
		return
	fi
	# The TAP plan: tests/run fails the script if fewer results follow.
	echo "1..$(echo $names | wc -w)"
	for fn in $names; do
		n=$((n + 1))
		T=$(mktemp -d "$DD_TMP/dd-test.XXXXXX")
		mkdir -p "$T/home"
		printf '[user]\n\tname = Test User\n\temail = test@example.invalid\n[init]\n\tdefaultBranch = main\n' >"$T/home/.gitconfig"
		log="$T.log"
		(
			export HOME="$T/home" T
			cd "$T"
			set -e
			"$fn"
		) >"$log" 2>&1 </dev/null
		rc=$?
		if [ "$rc" = 0 ]; then
			echo "ok $n - ${fn#test_}"
		else
			echo "not ok $n - ${fn#test_}"
			sed 's/^/#   /' "$log" | tail -n 40
		fi
		[ ! -s "$T.notes" ] || cat "$T.notes"
		chmod -R u+rwX "$T" 2>/dev/null || true
		rm -rf "$T" "$log" "$T.notes"
	done
}
