#!/usr/bin/env bash
# bench/pg-bench.sh: git dnadata snapshot and restore against their peers
# (pg_dump -Fc, restic, pg_restore -j2), same run, same throwaway cluster.
# Run by hand; not part of the test suite. Targets: issue 4 and DESIGN.md §8.
#
#   SCALE=50 REPEAT=1 SMALL_SCALE=5 bench/pg-bench.sh     (needs a built git-dnadata)
#
# SCALE        pgbench scale of the big database (default 50: ~1.7 GB on disk)
# SMALL_SCALE  scale of the small database used only to show that peak memory is
#              flat in size (default 5; 0 skips it)
# REPEAT       runs of each measured command; the median is reported (default 1)
# KEEP=1       keep the work directory (cluster stopped) for inspection
# DD_BIN       the git-dnadata binary to measure (default: ./git-dnadata of this
#              tree); DD_BIN_NOTE says what it was built from, for the record
#
# Data: `pgbench -i -s SCALE` plus bench/pg/dataset.sql at the same scale
# (customers, documents, events, attachments: random words, jsonb, bytea,
# timestamps, 10 secondary indexes incl. a GIN, 3 foreign keys), about the
# same size on disk. Steps, each measured with /usr/bin/time (wall seconds,
# peak RSS of the largest process of the command, client user+sys CPU):
#   1. cold snapshot (fresh repo, store and cache) | pg_dump -Fc to a file |
#      pg_dump -Fc | restic backup --stdin | pg_dump -Fc -Z0 | restic backup
#      --stdin (fresh restic repositories), interleaved when REPEAT > 1
#   2. 1% of the rows of every table updated, scattered (every 100th key):
#      second snapshot (time, bytes added to store and cache) vs restic's
#      second backup of a new pg_dump -Fc -Z0 (time, bytes added)
#   3. another 1% updated in ten contiguous key ranges of 0.1% per table
#      (what an application touching recent or related rows does): third
#      snapshot vs restic's third backup, the same way
#   4. restore of the first snapshot from the local cache into the existing
#      database (--force --terminate; replaced, the old one renamed aside) vs
#      createdb + pg_restore -j2 of the step-1 dump (same content), both
#      timed from nothing to a complete database; row counts and a content
#      hash of every table compared afterwards
#   5. (SMALL_SCALE) the same cold snapshot and restore on the small
#      database: peak RSS at two sizes
# bench/pg-bench.sh --summary bench/results/pg-...  reprints a run's summary.
# Writes raw results to bench/results/pg-<date>-s<scale>/ and prints a
# Markdown summary (also saved there as summary.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

# med NAME [FIELD]: median of a results field (2 secs, 3 rss_kib, 4 user, 5 sys,
# 6 other load %, 7 server CPU s)
# Runs disturbed by other load (> 10% of the CPUs) are left out when at least
# one undisturbed run exists: a disturbed peer would flatter our ratios.
med() {
	awk -v n="$1" -v f="${2:-2}" '$1 == n {if ($6 <= 10) c[++nc] = $f; a[++na] = $f}
		END {if (nc) for (i = 1; i <= nc; i++) print c[i]; else for (i = 1; i <= na; i++) print a[i]}' "$res/results.tsv" |
		sort -g | awk '{v[NR] = $1} END {if (!NR) {print "nan"; exit} printf "%.2f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
disturbed() { awk -v n="$1" '$1 == n {a++; if ($6 > 10) d++} END {if (a && a == d) print " (disturbed)"}' "$res/results.tsv"; }
rss() { awk -v k="$(med "$1" 3)" 'BEGIN {printf "%.1f", k / 1024}'; } # MiB
cpu() { awk -v u="$(med "$1" 4)" -v s="$(med "$1" 5)" 'BEGIN {printf "%.1f", u + s}'; }
bytes() { du -sbc "$@" 2>/dev/null | tail -n 1 | cut -f1; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "inf"; else printf "%.2f", a / b}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r + 0 <= t + 0) ? "pass" : "**FAIL**"}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f%%", 100 * a / b}'; }
val() { echo "$1 $2" >>"$res/values.tsv"; eval "v_$1=\$2"; }

# ---- summary --------------------------------------------------------------
summarize() {
	local s1 s2 s3 pd rf rz rz2 rz3 rs pr
	s1=$(med snapshot1) s2=$(med snapshot2) s3=$(med snapshot3) pd=$(med pg_dump_fc)
	rf=$(med restic_fc1) rz=$(med restic_z01) rz2=$(med restic_z02) rz3=$(med restic_z03)
	rs=$(med restore) pr=$(med pg_restore_j2)
	local d m
	d=
	for m in snapshot1 pg_dump_fc restic_fc1 restic_z01 snapshot2 restic_z02 snapshot3 restic_z03 restore pg_restore_j2; do
		[ -z "$(disturbed "$m")" ] || d="$d $m"
	done
	echo "$(sed -n 's/^host: //p' "$res/env.txt"); $(sed -n 's/^postgresql: //p' "$res/env.txt")."
	echo "$(sed -n 's/^git-dnadata: //p' "$res/env.txt"). Cluster: $(sed -n 's/^settings: //p' "$res/env.txt"); drop_caches: $dropcache."
	echo "Database: pgbench scale $scale + bench/pg/dataset.sql at scale $scale, $(mib "$v_db_bytes") MiB (pg_database_size)."
	echo "Each time: median of $repeat run(s), leaving out runs during which other processes used > 10% of the CPUs when an"
	echo "undisturbed run exists (a command marked \"(disturbed)\" below had none)."
	echo
	echo "| measure | git-dnadata | peer (same run) | ratio | target | |"
	echo "|---|---:|---|---:|---:|---|"
	echo "| cold snapshot, time | $s1 s | pg_dump -Fc: $pd s | $(ratio "$s1" "$pd") | ≤ 1.0 | $(verdict "$(ratio "$s1" "$pd")" 1.0) |"
	echo "| cold snapshot, time | $s1 s | pg_dump -Fc \\| restic backup --stdin: $rf s | $(ratio "$s1" "$rf") | ≤ 0.5 (issue) | $(verdict "$(ratio "$s1" "$rf")" 0.5) |"
	echo "| cold snapshot, time | $s1 s | pg_dump -Fc -Z0 \\| restic backup --stdin: $rz s | $(ratio "$s1" "$rz") | ≤ 0.7 (design) | $(verdict "$(ratio "$s1" "$rz")" 0.7) |"
	echo "| cold snapshot, bytes stored | $(mib "$v_store1") MiB | -Fc dump $(mib "$v_dump_fc") MiB; restic repo: -Fc $(mib "$v_restic_fc1") MiB, -Z0 $(mib "$v_restic_z01") MiB | $(ratio "$v_store1" "$v_dump_fc") | — | |"
	local k what sk rk
	for k in 2 3; do
		if [ $k = 2 ]; then what="1% of rows scattered (every 100th key)"; sk=$s2 rk=$rz2; else
			what="another 1% in 10 contiguous ranges per table"; sk=$s3 rk=$rz3; fi
		eval "local sa=\$v_store_add$k ca=\$v_cache_add$k ra=\$v_restic_add$k"
		echo "| snapshot $k after $what: bytes added to the store | $(mib "$sa") MiB ($(pct "$sa" "$v_store1") of the first; cache +$(mib "$ca") MiB) | first snapshot $(mib "$v_store1") MiB | $(ratio "$sa" "$v_store1") | ≤ 0.05 (issue) | $(verdict "$(ratio "$sa" "$v_store1")" 0.05) |"
		echo "| same | | | | ≤ 0.02 (design) | $(verdict "$(ratio "$sa" "$v_store1")" 0.02) |"
		echo "| same, vs restic's next backup of pg_dump -Fc -Z0 | $(mib "$sa") MiB | restic added $(mib "$ra") MiB ($(pct "$ra" "$v_restic_z01") of its first) | $(ratio "$sa" "$ra") | ≤ 1.0 (design) | $(verdict "$(ratio "$sa" "$ra")" 1.0) |"
		echo "| snapshot $k, time | $sk s | first snapshot $s1 s (restic's backup: $rk s) | $(ratio "$sk" "$s1") | ≤ 0.3 | $(verdict "$(ratio "$sk" "$s1")" 0.3) |"
	done
	echo "| restore from the local cache, time | $rs s | createdb + pg_restore -j2 of the -Fc dump: $pr s | $(ratio "$rs" "$pr") | ≤ 0.8 | $(verdict "$(ratio "$rs" "$pr")" 0.8) |"
	local worst
	worst=$(printf '%s\n' "$(rss snapshot1)" "$(rss restore)" "$(rss snapshot2)" "$(rss snapshot3)" \
		$([ "$small" -gt 0 ] && printf '%s\n' "$(rss small_snapshot)" "$(rss small_restore)") | sort -g | tail -n 1)
	echo "| peak RSS, snapshot / restore | $(rss snapshot1) / $(rss restore) MiB | pg_dump -Fc $(rss pg_dump_fc) MiB; restic pipelines $(rss restic_fc1) / $(rss restic_z01) MiB; pg_restore -j2 $(rss pg_restore_j2) MiB | — | < 100 MiB | $(verdict "$worst" 99.999) |"
	echo
	echo "Peak RSS (MiB) by database size, to show it is flat:"
	echo
	echo "| database | snapshot | restore |"
	echo "|---|---:|---:|"
	[ "$small" -gt 0 ] && echo "| scale $small, $(mib "$v_small_db_bytes") MiB | $(rss small_snapshot) | $(rss small_restore) |"
	echo "| scale $scale, $(mib "$v_db_bytes") MiB | $(rss snapshot1) | $(rss restore) |"
	echo
	echo "CPU seconds, client (user + sys) / PostgreSQL server, and other load on the machine (% of all CPUs used by"
	echo "unrelated processes during the measurement; > 10% means the figure is disturbed):"
	echo
	echo "| command | wall s | client CPU s | server CPU s | other load |"
	echo "|---|---:|---:|---:|---:|"
	local m
	for m in snapshot1 pg_dump_fc restic_fc1 restic_z01 snapshot2 restic_z02 snapshot3 restic_z03 restore pg_restore_j2 \
		$([ "$small" -gt 0 ] && echo small_snapshot small_restore); do
		echo "| $m$(disturbed "$m") | $(med "$m") | $(cpu "$m") | $(med "$m" 7) | $(awk -v n="$m" '$1 == n {printf "%s%s%%", sep, $6; sep = ", "}' "$res/results.tsv") |"
	done
	echo
	echo "Restored databases compared (rows and a hash of every row, per table): $check."
	[ -z "$d" ] || echo "**Disturbed by other load in every run:$d** (rerun on a quiet machine)."
}

if [ "${1:-}" = --summary ]; then # reprint the summary of an earlier run from its raw results
	res=$2
	while read -r k v; do eval "v_$k=\$v"; done <"$res/values.tsv"
	scale=$v_scale small=$v_small repeat=$v_repeat check=$v_check dropcache=$v_dropcache
	summarize
	exit 0
fi
scale=${SCALE:-${1:-50}}
small=${SMALL_SCALE:-5}
repeat=${REPEAT:-1}
ddbin=${DD_BIN:-$top/git-dnadata}
[ -x "$ddbin" ] || { echo "error: $ddbin not found: build git-dnadata first (make -j2) or set DD_BIN" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
command -v restic >/dev/null || { echo "error: restic is missing (apt-get install restic)" >&2; exit 1; }
. "$top/tests/pg.sh"
bin=$(pg_bindir)
export PATH="$bin:$PATH" # pg_dump, pg_restore, psql, pgbench of the server's major

work=$(mktemp -d "${TMPDIR:-/tmp}/dd-pgbench.XXXXXX")
# a private copy: a rebuild of the shared tree during the run changes nothing
mkdir -p "$work/bin"
cp "$ddbin" "$work/bin/git-dnadata"
export PATH="$work/bin:$PATH"
res="$top/bench/results/pg-$(date +%Y%m%d-%H%M%S)-s$scale"
mkdir -p "$res"
cleanup() {
	pg_cluster_stop "$work/pg" || true
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "# $*" >&2; echo "$*" >>"$res/log.txt"; }
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
q() { command psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"; }

# ---- cluster --------------------------------------------------------------
pg_cluster_start "$work/pg"
export PGHOST PGPORT PGUSER
# on top of tests/pg.sh (fsync, synchronous_commit and full_page_writes off,
# shared_buffers 128MB, max_wal_size 2GB): the same for every tool measured
psql -d postgres -c "ALTER SYSTEM SET maintenance_work_mem = '256MB'" \
	-c "ALTER SYSTEM SET checkpoint_timeout = '30min'" \
	-c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
export RESTIC_PASSWORD=bench XDG_CACHE_HOME=$work/xdg-cache

dropcache=no
if (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then dropcache=yes; fi
{
	echo "date: $(date -u +%FT%TZ)"
	echo "host: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
	if [ -n "${DD_BIN:-}" ]; then
		echo "git-dnadata: $(git dnadata --version 2>&1 | head -n 1), binary $DD_BIN${DD_BIN_NOTE:+ ($DD_BIN_NOTE)}"
	else
		echo "git-dnadata: $(git dnadata --version 2>&1 | head -n 1), commit $(git -C "$top" rev-parse --short HEAD)$(git -C "$top" diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes in src/')"
	fi
	echo "postgresql: $(q -d postgres -c 'SHOW server_version' | cut -d' ' -f1); $(pg_dump --version); $(restic version | cut -d' ' -f1-2)"
	echo "settings: fsync=off synchronous_commit=off full_page_writes=off shared_buffers=128MB max_wal_size=2GB maintenance_work_mem=256MB checkpoint_timeout=30min autovacuum=off"
	echo "drop_caches before each measurement: $dropcache"
	echo "work dir: $work"
	df -h "$work" | tail -n 1 | awk '{print "disk: " $1 " " $2 " total, " $4 " free, mounted on " $6}'
	echo "scale: $scale, small scale: $small, repeat: $repeat"
} >"$res/env.txt"
cat "$res/env.txt" >&2
val scale "$scale"
val small "$small"
val repeat "$repeat"
val dropcache "$dropcache"

# ---- measuring ------------------------------------------------------------
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
		printf "%s %s %s %s %.0f %.1f", $1, $2, $3, $4, 100 * other / ($1 * n), c / hz}')" >>"$res/results.tsv"
	log "$name: $(tail -n 1 "$res/results.tsv" | awk '{printf "%.2f s, peak RSS %.1f MiB, CPU: client %.1f s user + %.1f s sys, server %.1f s; other load %d%%", $2, $3 / 1024, $4, $5, $7, $6}')"
}
# ---- data -----------------------------------------------------------------
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
	git dnadata init -q --store "file://$1.store" --database "dbname=$2" >/dev/null
}
store_bytes() { bytes "$1.store/data" "$1.store/snapshots"; }
cache_bytes() { bytes "$1/.git/dnadata/cache"; }

# ---- small database: peak memory at a second size -------------------------
if [ "$small" -gt 0 ]; then
	gen_db small "$small"
	val small_db_bytes "$(q -d postgres -c "SELECT pg_database_size('small')")"
	for i in $(seq "$repeat"); do
		new_repo "$work/repo-small" small
		measure small_snapshot "git dnadata snapshot -v --no-commit"
		measure small_restore "git dnadata restore -v --force --terminate"
		drop_stashes small
	done
	cd "$work"
	dropdb small
	rm -rf "$work/repo-small" "$work/repo-small.store"
fi

# ---- big database ---------------------------------------------------------
gen_db bench "$scale"
val db_bytes "$(q -d postgres -c "SELECT pg_database_size('bench')")"
describe_db bench >"$res/dataset.md"
cat "$res/dataset.md" >&2

repo=$work/repo
r_fc=$work/restic-fc
r_z0=$work/restic-z0
for i in $(seq "$repeat"); do
	new_repo "$repo" bench
	measure snapshot1 "git dnadata snapshot -v --no-commit"
	cd "$work"
	rm -f "$work/bench.dump"
	measure pg_dump_fc "pg_dump -Fc -f '$work/bench.dump' bench"
	rm -rf "$r_fc" "$work/xdg-cache"
	restic init -q -r "$r_fc" >/dev/null
	measure restic_fc1 "pg_dump -Fc bench | restic backup -q -r '$r_fc' --stdin --stdin-filename bench.dump"
	rm -rf "$r_z0" "$work/xdg-cache"
	restic init -q -r "$r_z0" >/dev/null
	measure restic_z01 "pg_dump -Fc -Z0 bench | restic backup -q -r '$r_z0' --stdin --stdin-filename bench.dump"
done
cp "$repo/.dnadata/refs/clean" "$work/ref1"
val store1 "$(store_bytes "$repo")"
val cache1 "$(cache_bytes "$repo")"
val dump_fc "$(bytes "$work/bench.dump")"
val restic_fc1 "$(bytes "$r_fc")"
val restic_z01 "$(bytes "$r_z0")"
rm -rf "$r_fc"

# incremental: UPDATE, then snapshot and restic backup; for REPEAT > 1 the
# store, cache and restic repository go back (hard-link copies: both tools
# only ever add files) to their state before the step
incremental() { # STEP WHERE
	local k=$1 i
	update_rows bench "$2"
	rm -rf "$work/before"
	mkdir -p "$work/before"
	cp -al "$repo.store" "$work/before/store"
	cp -al "$repo/.git/dnadata" "$work/before/state"
	cp "$repo/.dnadata/refs/clean" "$work/before/ref"
	cp -al "$r_z0" "$work/before/restic"
	local s0 c0 r0
	s0=$(store_bytes "$repo") c0=$(cache_bytes "$repo") r0=$(bytes "$r_z0")
	for i in $(seq "$repeat"); do
		if [ "$i" -gt 1 ]; then
			rm -rf "$repo.store" "$repo/.git/dnadata" "$r_z0"
			cp -al "$work/before/store" "$repo.store"
			cp -al "$work/before/state" "$repo/.git/dnadata"
			cp "$work/before/ref" "$repo/.dnadata/refs/clean"
			cp -al "$work/before/restic" "$r_z0"
		fi
		cd "$repo"
		measure "snapshot$k" "git dnadata snapshot -v --no-commit"
		cd "$work"
		measure "restic_z0$k" "pg_dump -Fc -Z0 bench | restic backup -q -r '$r_z0' --stdin --stdin-filename bench.dump"
	done
	val "store_add$k" $(($(store_bytes "$repo") - s0))
	val "cache_add$k" $(($(cache_bytes "$repo") - c0))
	val "restic_add$k" $(($(bytes "$r_z0") - r0))
	rm -rf "$work/before"
}
log "step 2: 1% of rows updated, scattered (every 100th key)"
incremental 2 "@key % 100 = 0"
log "step 3: 1% of rows updated in ten contiguous key ranges per table"
incremental 3 "@key % (@max / 10) BETWEEN @max / 20 AND @max / 20 + @max / 1000 - 1"
rm -rf "$r_z0"

# restore: the first snapshot (same content as bench.dump)
for i in $(seq "$repeat"); do
	cd "$repo"
	cp "$work/ref1" .dnadata/refs/clean
	measure restore "git dnadata restore -v --force --terminate"
	drop_stashes bench
	cd "$work"
	dropdb --if-exists restored
	measure pg_restore_j2 "createdb restored && pg_restore -j2 -d restored '$work/bench.dump'"
done
table_hashes bench >"$res/hash-restore.txt"
table_hashes restored >"$res/hash-pg_restore.txt"
if cmp -s "$res/hash-restore.txt" "$res/hash-pg_restore.txt"; then check=same; else
	check=DIFFERENT
	diff "$res/hash-restore.txt" "$res/hash-pg_restore.txt" >&2 || true
fi
log "restored databases (ours vs pg_restore): rows and content hash of every table $check"
val check "$check"

summarize >"$res/summary.md"
cat "$res/summary.md"
echo
echo "raw results: $res" >&2
