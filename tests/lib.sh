# tests/lib.sh: the integration-test harness, sourced by tests/integration/t-*.sh.
#
# A script defines functions named test_<behaviour> and ends with run_tests.
# Each test runs in its own subshell with `set -e`, in a fresh temp dir $T
# (also the cwd) with its own HOME (git identity set), and is reported as a
# TAP line "ok N - name" / "not ok N - name" (tests/run counts them). Temp
# dirs are removed whatever happens; a failing test's output is shown.
#
# The PostgreSQL cluster is started once per run by tests/run and described
# by PGHOST/PGPORT/PGUSER (superuser "postgres", trust on the socket) and
# DD_TEST_PW_USER/DD_TEST_PW_PASSWORD (a role that needs its password over
# TCP on 127.0.0.1:$PGPORT).

set -u
DD_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$DD_TESTS_DIR/pg.sh"
DD_TMP=${DD_TMP:-${TMPDIR:-/tmp}}
export GIT_CONFIG_NOSYSTEM=1

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

DD_DB_SEQ=0
# pg_newdb [PREFIX]: create an empty database with a unique name; echo it.
pg_newdb() {
	DD_DB_SEQ=$((DD_DB_SEQ + 1))
	local name="${1:-t}_$$_${RANDOM}_$DD_DB_SEQ"
	name=$(echo "$name" | tr 'A-Z-' 'a-z_')
	"$DD_PG_BINDIR/createdb" "$name" >/dev/null || fail "createdb $name failed"
	echo "$name"
}

# repo_with_db PREFIX [INIT-OPTION...]: a fresh database $DB (empty) and a
# fresh repository (cwd) initialised on it, with any further init options.
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
		chmod -R u+rwX "$T" 2>/dev/null || true
		rm -rf "$T" "$log"
	done
}
