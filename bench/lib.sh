# bench/lib.sh: what the benchmarks share (sourced by pg-bench.sh and
# switch-bench.sh): result files and their medians, a throwaway cluster,
# waiting for a quiet machine, timed runs, the realistic data set.
# The caller sets: top (the source tree), work (a scratch folder), res (the
# results folder), dropcache (yes/no: drop the page cache before each
# measurement) before calling measure.

# med NAME [FIELD]: median of a results field (2 secs, 3 rss_kib, 4 user, 5 sys,
# 6 other load %, 7 server CPU s)
# Runs disturbed by other load (> 10% of the CPUs) are left out when at least
# one undisturbed run exists: a disturbed peer would flatter our ratios.
med() {
	awk -v n="$1" -v f="${2:-2}" '$1 == n {if ($6 <= 10) c[++nc] = $f; a[++na] = $f}
		END {if (nc) for (i = 1; i <= nc; i++) print c[i]; else for (i = 1; i <= na; i++) print a[i]}' "$res/results.tsv" |
		sort -g | awk '{v[NR] = $1} END {if (!NR) {print "nan"; exit} printf (ENVIRON["MED_FMT"] ? ENVIRON["MED_FMT"] : "%.2f") "\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
disturbed() { awk -v n="$1" '$1 == n {a++; if ($6 > 10) d++} END {if (a && a == d) print " (disturbed)"}' "$res/results.tsv"; }
rss() { awk -v k="$(med "$1" 3)" 'BEGIN {printf "%.1f", k / 1024}'; } # MiB
cpu() { awk -v u="$(med "$1" 4)" -v s="$(med "$1" 5)" 'BEGIN {printf "%.1f", u + s}'; }
bytes() { { du -sbc "$@" 2>/dev/null || true; } | tail -n 1 | cut -f1; } # missing paths count 0 (a store has no data/)
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "inf"; else printf "%.2f", a / b}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r + 0 <= t + 0) ? "pass" : "**FAIL**"}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f%%", 100 * a / b}'; }
val() { echo "$1 $2" >>"$res/values.tsv"; eval "v_$1=\$2"; }

log() { echo "# $*" >&2; echo "$*" >>"$res/log.txt"; }
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
q() { command psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"; }

# bench_setup NAME RESULTS: the checks and folders every benchmark starts
# with: the binary ($ddbin) copied into a scratch folder $work (a rebuild of
# the shared tree during the run changes nothing), the server's binaries on
# PATH, the results folder $res (bench/results/RESULTS), and a cleanup that
# stops the cluster and removes $work (unless KEEP) on any exit.
bench_setup() {
	[ -x "$ddbin" ] || { echo "error: $ddbin not found: build git-dnadata first (make -j2) or set DD_BIN" >&2; exit 1; }
	[ -x /usr/bin/time ] || { echo "error: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
	. "$top/tests/pg.sh"
	export PATH="$(pg_bindir):$PATH" # pg_dump, pg_restore, psql, pgbench of the server's major
	work=$(mktemp -d "${TMPDIR:-/tmp}/dd-$1.XXXXXX")
	mkdir -p "$work/bin"
	cp "$ddbin" "$work/bin/git-dnadata"
	export PATH="$work/bin:$PATH"
	res="$top/bench/results/$2"
	mkdir -p "$res"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}
bench_cleanup() {
	pg_cluster_stop "$work/pg" || true
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}

# bench_cluster_start DIR: a throwaway cluster (tests/pg.sh: fsync,
# synchronous_commit and full_page_writes off, shared_buffers 128MB,
# max_wal_size 2GB), plus settings that are the same for every tool measured
bench_cluster_start() {
	pg_cluster_start "$1"
	export PGHOST PGPORT PGUSER
	psql -d postgres -c "ALTER SYSTEM SET maintenance_work_mem = '256MB'" \
		-c "ALTER SYSTEM SET checkpoint_timeout = '30min'" \
		-c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
}
bench_settings="fsync=off synchronous_commit=off full_page_writes=off shared_buffers=128MB max_wal_size=2GB maintenance_work_mem=256MB checkpoint_timeout=30min autovacuum=off"
# bench_env_header: the lines every results folder's env.txt starts with
bench_env_header() {
	echo "date: $(date -u +%FT%TZ)"
	echo "host: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
	if [ -n "${DD_BIN:-}" ]; then
		echo "git-dnadata: $(git dnadata --version 2>&1 | head -n 1), binary $DD_BIN${DD_BIN_NOTE:+ ($DD_BIN_NOTE)}"
	else
		echo "git-dnadata: $(git dnadata --version 2>&1 | head -n 1), commit $(git -C "$top" rev-parse --short HEAD)$(git -C "$top" diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes in src/')"
	fi
}

# The machine may be shared: before each measurement wait (up to QUIET_WAIT
# seconds, default 900) until the CPUs are idle, and account for the CPU
# time used during it by processes that are neither the command nor our
# cluster ("other load", % of all CPUs), so a disturbed figure is visible.
hz=$(getconf CLK_TCK)
cpu_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; } # ticks, all CPUs
cluster_cpu() { # ticks used by our cluster: live processes + reaped children of the postmaster
	local pm
	pm=$(head -n 1 "$work/pg/data/postmaster.pid")
	{ cat "/proc/$pm/stat"; for c in $(pgrep -P "$pm"); do cat "/proc/$c/stat" 2>/dev/null || true; done; } |
		awk '{sub(/^[0-9]+ \(.*\) /, ""); t += $12 + $13; if (NR == 1) t += $14 + $15} END {print t + 0}'
}
wait_quiet() {
	local t0=$SECONDS a b c d u v busy
	while :; do
		a=$(cpu_busy) c=$(cluster_cpu) u=$(cut -d' ' -f1 /proc/uptime)
		sleep 3
		b=$(cpu_busy) d=$(cluster_cpu) v=$(cut -d' ' -f1 /proc/uptime)
		busy=$(awk -v x=$((b - a - d + c)) -v t="$u" -v w="$v" -v n="$(nproc)" -v hz="$hz" 'BEGIN {printf "%d", 100 * x / ((w - t) * n * hz)}')
		[ "$busy" -ge 10 ] || break
		if [ $((SECONDS - t0)) -ge "${QUIET_WAIT:-900}" ]; then
			log "machine still busy (${busy}% of the CPUs used by other processes) after ${QUIET_WAIT:-900} s: measuring anyway"
			break
		fi
		sleep 7
	done
	[ $((SECONDS - t0)) -lt 15 ] || log "waited $((SECONDS - t0)) s for other processes to leave the CPUs"
}
# measure NAME CMD: runs CMD (a bash string) in the current directory under
# /usr/bin/time; appends "NAME secs rss_kib user sys other_load_% server_cpu_s"
# to results.tsv. %M is the peak RSS of the largest single process (for a
# pipeline: its largest member); server-side memory is not counted, for any
# tool. user/sys are the client's CPU seconds (children included).
measure() {
	local name=$1 cmd=$2 n b0 c0 b1 c1
	n=$(grep -c "^$name " "$res/results.tsv" 2>/dev/null || true)
	sync
	[ "$dropcache" = no ] || echo 3 >/proc/sys/vm/drop_caches
	wait_quiet
	local pm k0 k
	pm=$(head -n 1 "$work/pg/data/postmaster.pid")
	k0=$(pgrep -c -P "$pm" || true)
	b0=$(cpu_busy) c0=$(cluster_cpu)
	if ! /usr/bin/time -f '%e %M %U %S' -o "$work/time.out" bash -o pipefail -c "$cmd" \
		>"$res/$name.$((n + 1)).out" 2>"$res/$name.$((n + 1)).err"; then
		cat "$res/$name.$((n + 1)).err" >&2
		echo "error: '$name' failed: $cmd" >&2
		exit 1
	fi
	# the server processes of the command's sessions may still be exiting (a
	# zombie's CPU time only reaches the postmaster when it is reaped)
	for k in $(seq 100); do
		[ "$(pgrep -c -P "$pm" || true)" -gt "$k0" ] || break
		sleep 0.05
	done
	b1=$(cpu_busy) c1=$(cluster_cpu)
	echo "$name $(tail -n 1 "$work/time.out" | awk -v b=$((b1 - b0)) -v c=$((c1 - c0)) -v n="$(nproc)" -v hz="$hz" '{
		other = (b - c) / hz - $3 - $4; if (other < 0) other = 0
		printf "%s %s %s %s %.0f %.1f", $1, $2, $3, $4, 100 * other / (($1 > 0.01 ? $1 : 0.01) * n), c / hz}')" >>"$res/results.tsv"
	log "$name: $(tail -n 1 "$res/results.tsv" | awk '{printf "%.2f s, peak RSS %.1f MiB, CPU: client %.1f s user + %.1f s sys, server %.1f s; other load %d%%", $2, $3 / 1024, $4, $5, $7, $6}')"
}
gen_db() { # DB SCALE: pgbench tables and the realistic ones, in parallel
	local db=$1 s=$2 t0=$SECONDS
	createdb "$db"
	pgbench -q -i -s "$s" "$db" >"$work/pgbench-$db.log" 2>&1 &
	local pid=$!
	psql -d "$db" -v scale="$s" -f "$top/bench/pg/dataset.sql"
	wait "$pid" || { cat "$work/pgbench-$db.log" >&2; exit 1; }
	psql -d "$db" -c "VACUUM ANALYZE" -c "CHECKPOINT"
	log "generated $db (scale $s) in $((SECONDS - t0)) s: $(mib "$(q -d "$db" -c "SELECT pg_database_size('$db')")") MiB"
}
describe_db() { # DB: per-table rows and sizes (Markdown)
	echo "| table | rows | heap+toast | indexes | COPY text |"
	echo "|---|---:|---:|---:|---:|"
	local t
	for t in $(q -d "$1" -c "SELECT relname FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC"); do
		q -d "$1" -F ' ' -c "SELECT count(*), pg_table_size('$t'), pg_indexes_size('$t') FROM $t" | {
			read -r n tb ib
			echo "| $t | $n | $(mib "$tb") MiB | $(mib "$ib") MiB | $(mib "$(q -d "$1" -c "COPY $t TO STDOUT" | wc -c)") MiB |"
		}
	done
	echo "| **total** (pg_database_size) | | $(mib "$(q -d "$1" -c "SELECT pg_database_size('$1')")") MiB | | |"
}
update_rows() { # DB WHERE: update 1% of every table's rows; in WHERE, @key is the key column, @max its maximum
	local db=$1 w=$2 a c
	a=${w//@key/aid} c=${w//@key/id}
	psql -d "$db" <<SQL
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE ${a//@max/(SELECT max(aid) FROM pgbench_accounts)};
UPDATE customers SET profile = jsonb_set(profile, '{seats}', to_jsonb((profile->>'seats')::int + 1)) WHERE ${c//@max/(SELECT max(id) FROM customers)};
UPDATE documents SET score = score + 1, updated_at = now(), meta = jsonb_set(meta, '{version}', to_jsonb((meta->>'version')::int + 1)) WHERE ${c//@max/(SELECT max(id) FROM documents)};
UPDATE events SET payload = payload || '{"seen": true}' WHERE ${c//@max/(SELECT max(id) FROM events)};
UPDATE attachments SET name = name || '.v2' WHERE ${c//@max/(SELECT max(id) FROM attachments)};
VACUUM ANALYZE;
CHECKPOINT;
SQL
}
table_copies() { # DB: "table rows sha256" per table, each the sha256 of its rows as COPY text in key order
	local t k
	for t in $(q -d "$1" -c "SELECT relname FROM pg_stat_user_tables ORDER BY 1"); do
		# ordered by the primary key, else by every column: the same rows give the same bytes
		k=$(q -d "$1" -c "SELECT coalesce((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey, a.attnum))
			FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
			WHERE i.indrelid = '$t'::regclass AND i.indisprimary), '1')")
		[ "$k" != 1 ] || k=$(q -d "$1" -c "SELECT string_agg(n::text, ', ') FROM generate_series(1, (SELECT count(*) FROM pg_attribute WHERE attrelid = '$t'::regclass AND attnum > 0 AND NOT attisdropped)) n")
		echo "$t $(q -d "$1" -c "SELECT count(*) FROM $t") $(q -d "$1" -c "COPY (SELECT * FROM $t ORDER BY $k) TO STDOUT" | sha256sum | cut -c1-64)"
	done
}
table_hashes() { # DB: "table rows hash" per table, for comparing two restores
	local t
	for t in $(q -d "$1" -c "SELECT relname FROM pg_stat_user_tables ORDER BY 1"); do
		echo "$t $(q -d "$1" -F ' ' -c "SELECT count(*), coalesce(sum(hashtext(x::text)::bigint), 0) FROM $t x")"
	done
}
drop_stashes() { # DB: drop the copies restore renamed aside
	local d
	for d in $(q -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE '$1\\_\\_dnadata\\_%'"); do
		dropdb "$d"
	done
}
new_repo() { # DIR DB: a git repository set up for git dnadata, cwd inside it
	rm -rf "$1" "$1.store"
	git init -q -b main "$1"
	cd "$1"
	git config user.name bench && git config user.email bench@example.invalid
	git dnadata init -q --store "file://$1.store" ${COMPRESSION:+--compression "$COMPRESSION"} --database "dbname=$2" >/dev/null
}
store_bytes() { bytes "$1.store/packs" "$1.store/index" "$1.store/data" "$1.store/snapshots"; }
cache_bytes() { bytes "$1/.git/dnadata/cache"; }

