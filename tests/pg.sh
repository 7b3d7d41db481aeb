# tests/pg.sh: start and stop a throwaway PostgreSQL cluster (sourced by
# tests/run, tests/lib.sh and scripts/demo.sh).
#
# pg_cluster_start DIR   initdb into DIR/data, listen on a unix socket in
#                        DIR/sock and on 127.0.0.1:<free port>; exports
#                        PGHOST PGPORT PGUSER=postgres PGDATABASE=postgres,
#                        DD_PG_BINDIR, DD_TEST_PW_USER/DD_TEST_PW_PASSWORD
#                        (a role that must log in with a password over TCP).
# pg_cluster_stop DIR    immediate shutdown (data is throwaway).
#
# PostgreSQL refuses to run as root: when we are root, the server runs as
# the unprivileged user "nobody" and DIR is made traversable for it.

pg_bindir() {
	if [ -n "${DD_PG_BINDIR:-}" ]; then echo "$DD_PG_BINDIR"; return; fi
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] || d=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
	echo "$d"
}

pg_as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u nobody -- "$@"
	else
		"$@"
	fi
}

pg_free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$(( 20000 + RANDOM % 20000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

pg_cluster_start() {
	local dir=$1 bin port
	bin=$(pg_bindir)
	if [ ! -x "$bin/initdb" ]; then
		echo "error: PostgreSQL server binaries not found (install the Debian package postgresql)" >&2
		return 1
	fi
	mkdir -p "$dir/data" "$dir/sock" "$dir/log"
	if [ "$(id -u)" = 0 ]; then
		chmod 755 "$dir"
		chown nobody "$dir/data" "$dir/sock" "$dir/log"
		# every parent must be traversable by nobody
		local p=$dir
		while [ "$p" != / ]; do chmod o+x "$p" 2>/dev/null; p=$(dirname "$p"); done
	fi
	pg_as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
		-E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
		echo "error: initdb failed, see $dir/initdb.log" >&2; return 1; }
	cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 60
shared_buffers = 128MB
max_wal_size = 2GB
log_min_messages = warning
CONF
	for _ in 1 2 3 4 5; do
		port=$(pg_free_port) || return 1
		if pg_as_owner "$bin/pg_ctl" -D "$dir/data" -o "-p $port" -l "$dir/log/server.log" -w -t 30 start >/dev/null 2>&1; then
			export PGHOST="$dir/sock" PGPORT=$port PGUSER=postgres PGDATABASE=postgres DD_PG_BINDIR=$bin
			export DD_TEST_PW_USER=dd_pw DD_TEST_PW_PASSWORD="pw-$RANDOM$RANDOM"
			"$bin/psql" -XAtq -c "CREATE ROLE $DD_TEST_PW_USER LOGIN SUPERUSER PASSWORD '$DD_TEST_PW_PASSWORD'" || return 1
			return 0
		fi
	done
	echo "error: could not start PostgreSQL, see $dir/log/server.log" >&2
	return 1
}

pg_cluster_stop() {
	local dir=$1
	[ -f "$dir/data/postmaster.pid" ] || return 0
	pg_as_owner "$(pg_bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
}

# dump_sorted ARGS...: pg_dump --no-owner without its volatile lines (the
# random psql \restrict key), rows of each COPY block sorted: a snapshot
# stores rows in primary-key order, so a restored heap is in that order
# while the source's heap may not be (an UPDATE moves a row); the row order
# of a heap is not data.
dump_sorted() {
	"$DD_PG_BINDIR/pg_dump" --no-owner "$@" | grep -v -E '^\\(un)?restrict ' |
		LC_ALL=C awk '
			inside && $0 == "\\." { close("sort"); inside = 0 }
			inside { print | "sort"; next }
			{ print; fflush() }
			/^COPY .* FROM stdin;$/ { inside = 1 }'
}
