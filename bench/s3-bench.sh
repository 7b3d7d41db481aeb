#!/usr/bin/env bash
# bench/s3-bench.sh: git dnadata push / fetch to an S3 server against
# `aws s3 cp --recursive` and `rclone copy` of the same bytes, same server,
# same run; requests per GB and local-store snapshot time before and after
# packs. Run by hand; not part of the test suite. Targets: issue 15.
#
#   SCALE=130 REPEAT=3 bench/s3-bench.sh      (needs a built git-dnadata)
#
# SCALE        pgbench scale of the database (default 130: a ~1 GB stored
#              snapshot; the stored snapshot is ~8 MB per unit of scale)
# REPEAT       runs of each measured command; the median is reported (default 1)
# KEEP=1       keep the work directory (servers stopped) for inspection
# DD_BIN       the git-dnadata binary to measure (default: ./git-dnadata of this tree)
# DD_PREPACKS_BIN  a git-dnadata built at 71fc407, the last commit before
#              packs, for step 4 (default /tmp/dd-prepacks/git-dnadata; build it
#              with `git worktree add /tmp/dd-prepacks 71fc407` and the usual
#              autoreconf/configure/make); step 4 is skipped when it is missing
# DD_COMPARE_BIN  optional: another git-dnadata whose fetch is measured once
#              more on the same store (diagnostic, e.g. a build of the
#              commit before a fetch change); DD_COMPARE_NOTE names it
# MEMSTORE_BYTES  capacity of the RGW memstore (default 12 GiB: objects in RAM)
#
# Data: `pgbench -i -s SCALE` plus bench/pg/dataset.sql at the same scale, as
# bench/pg-bench.sh. One throwaway PostgreSQL cluster (tests/pg.sh) and one
# throwaway Ceph RADOS Gateway (tests/s3.sh, memstore: objects in RAM) on
# loopback serve every tool. Each measured command runs under /usr/bin/time
# (wall seconds, peak RSS of its largest process, client CPU), after the
# page cache is dropped (when allowed) and the CPUs are quiet; the CPU used
# meanwhile by unrelated processes is recorded as "other load" (the servers'
# CPU is counted apart), as in pg-bench.sh.
#   0. `git dnadata snapshot --dump-only` into the local cache of a repository
#      whose store is s3://bench/dd (timed, for the record, not a target).
#      The cache's packs/, index/ and snapshots/ are the bytes every tool moves.
#   1. upload: `git dnadata push` | `aws s3 cp --recursive` of those folders to
#      s3://bench/aws-up/ | `rclone copy` to s3://bench/rclone-up/ (Debian's
#      awscli 2 and rclone, default settings). Between repeats every copy is
#      deleted (and RGW's garbage collected), ours with the clone's
#      known-objects record, so each push sends everything again.
#   2. download: `git dnadata fetch` in a fresh clone joined with the
#      passphrase (empty cache) | `aws s3 cp --recursive` | `rclone copy` of
#      the store's packs/, index/ and snapshots/ to a local folder.
#   3. requests per GB: after packs, the request counts push and fetch print;
#      before packs, the per-object layout's count (one PUT per object plus
#      the manifest), from the object count of step 4's pre-packs store.
#   4. local store: cold `git dnadata snapshot` into a file:// store, this
#      binary vs DD_PREPACKS_BIN, interleaved; then one run of each under
#      `strace -c -f -e trace=fsync,fdatasync` (not timed) for fsync counts.
# bench/s3-bench.sh --summary bench/results/s3-...  reprints a run's summary.
# Writes raw results to bench/results/s3-<date>-s<scale>/ and prints a
# Markdown summary (also saved there as summary.md). Keys are never printed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

# med NAME [FIELD]: median of a results field (2 secs, 3 rss_kib, 4 user, 5 sys,
# 6 other load %, 7 server CPU s); runs with other load > 10% are left out
# when an undisturbed run exists (as pg-bench.sh).
med() {
	awk -v n="$1" -v f="${2:-2}" '$1 == n {if ($6 <= 10) c[++nc] = $f; a[++na] = $f}
		END {if (nc) for (i = 1; i <= nc; i++) print c[i]; else for (i = 1; i <= na; i++) print a[i]}' "$res/results.tsv" |
		sort -g | awk '{v[NR] = $1} END {if (!NR) {print "nan"; exit} printf "%.2f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
disturbed() { awk -v n="$1" '$1 == n {a++; if ($6 > 10) d++} END {if (a && a == d) print " (disturbed)"}' "$res/results.tsv"; }
rss() { awk -v k="$(med "$1" 3)" 'BEGIN {printf "%.1f", k / 1024}'; } # MiB
cpu() { awk -v u="$(med "$1" 4)" -v s="$(med "$1" 5)" 'BEGIN {printf "%.1f", u + s}'; }
bytes() { du -sbc "$@" 2>/dev/null | tail -n 1 | cut -f1; }
files() { find "$@" -type f 2>/dev/null | wc -l; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
mbs() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.1f", b / 1e6 / s}'; } # MB/s, 10^6 bytes
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "inf"; else printf "%.2f", a / b}'; }
atleast() { awk -v r="$1" -v t="$2" 'BEGIN {print (r + 0 >= t + 0) ? "met" : "**not met**"}'; }
below() { awk -v r="$1" -v t="$2" 'BEGIN {print (r + 0 < t + 0) ? "met" : "**not met**"}'; }
val() { echo "$1 $2" >>"$res/values.tsv"; eval "v_$1=\$2"; }
log() { echo "# $*" >&2; echo "$*" >>"$res/log.txt"; }

# ---- summary --------------------------------------------------------------
summarize() {
	local gb m t
	gb=$(awk -v b="$v_up_bytes" 'BEGIN {print b / 1e9}')
	echo "$(sed -n 's/^host: //p' "$res/env.txt"); $(sed -n 's/^tools: //p' "$res/env.txt")."
	echo "$(sed -n 's/^git-dnadata: //p' "$res/env.txt"). Server: $(sed -n 's/^server: //p' "$res/env.txt"); drop_caches: $v_dropcache."
	echo "Database: pgbench scale $v_scale + bench/pg/dataset.sql at scale $v_scale, $(mib "$v_db_bytes") MiB (pg_database_size)."
	echo "Bytes moved by every tool: the snapshot's packs/, index/ and snapshots/ as the cache holds them,"
	echo "$v_up_bytes bytes ($(mib "$v_up_bytes") MiB) in $v_up_files files ($v_packs packs, $v_indexes index files, $v_manifests manifest)."
	echo "Each time: median of $v_repeat run(s), leaving out runs during which other processes used > 10% of the CPUs when an"
	echo "undisturbed run exists (a command marked \"(disturbed)\" below had none). MB/s = 10^6 bytes per second."
	echo
	echo "| measure | git-dnadata | peer (same run) | ours / peer | target | |"
	echo "|---|---:|---|---:|---:|---|"
	local dir ours peer name pname ot pt r
	for dir in up down; do
		if [ $dir = up ]; then ours=push; else ours=fetch; fi
		ot=$(med "$ours")
		for peer in aws rclone; do
			pname="aws s3 cp --recursive"
			[ $peer = aws ] || pname="rclone copy"
			[ $peer = aws ] || [ "$v_rclone" = yes ] || continue
			pt=$(med "${peer}_$dir")
			r=$(ratio "$pt" "$ot")
			echo "| $( [ $dir = up ] && echo upload || echo download), throughput | $ours: $(mbs "$v_up_bytes" "$ot") MB/s ($ot s) | $pname: $(mbs "$v_up_bytes" "$pt") MB/s ($pt s) | $r | ≥ 1.0 | $(atleast "$r" 1.0) |"
		done
	done
	if grep -q '^fetch_t32 ' "$res/results.tsv"; then
		echo "| download, diagnostic: fetch with \`transfers = 32\` (default 8) | $(mbs "$v_up_bytes" "$(med fetch_t32)") MB/s ($(med fetch_t32) s) | | | | |"
	fi
	if grep -q '^fetch_compare ' "$res/results.tsv"; then
		echo "| download, diagnostic: fetch of $v_compare_note | $(mbs "$v_up_bytes" "$(med fetch_compare)") MB/s ($(med fetch_compare) s), $v_fetch_compare_requests requests, peak RSS $(rss fetch_compare) MiB | | | | |"
	fi
	for m in push fetch; do
		echo "| peak RSS, $m | $(rss "$m") MiB | aws $(rss "aws_$([ $m = push ] && echo up || echo down)") MiB$([ "$v_rclone" = yes ] && echo ", rclone $(rss "rclone_$([ $m = push ] && echo up || echo down)") MiB") | — | < 100 MiB | $(below "$(rss "$m")" 100) |"
	done
	echo
	echo "Requests per GB stored (10^9 bytes):"
	echo
	echo "| | requests | per GB | |"
	echo "|---|---:|---:|---|"
	echo "| push, with packs (its summary's count) | $v_push_requests | $(awk -v r="$v_push_requests" -v g="$gb" 'BEGIN {printf "%.0f", r / g}') | measured |"
	echo "| fetch, with packs (its summary's count) | $v_fetch_requests | $(awk -v r="$v_fetch_requests" -v g="$gb" 'BEGIN {printf "%.0f", r / g}') | measured |"
	if [ -n "${v_fetch_compare_requests:-}" ]; then
		echo "| fetch of $v_compare_note | $v_fetch_compare_requests | $(awk -v r="$v_fetch_compare_requests" -v g="$gb" 'BEGIN {printf "%.0f", r / g}') | measured |"
	fi
	if [ -n "${v_pre_objects:-}" ]; then
		local pgb
		pgb=$(awk -v b="$v_pre_store" 'BEGIN {print b / 1e9}')
		echo "| before packs: one create-only PUT per object + the manifest | $((v_pre_objects + 1)) | $(awk -v r="$((v_pre_objects + 1))" -v g="$pgb" 'BEGIN {printf "%.0f", r / g}') | computed from the $v_pre_objects objects of the pre-packs store ($(mib "$v_pre_store") MiB) |"
		echo "| before packs: fetch, one GET per object + the manifest | $((v_pre_objects + 1)) | $(awk -v r="$((v_pre_objects + 1))" -v g="$pgb" 'BEGIN {printf "%.0f", r / g}') | the same count |"
		echo
		echo "Local store (file://, same disk), cold snapshot of the same database, this binary vs 71fc407 (before packs):"
		echo
		echo "| | with packs | before packs (71fc407) | ratio | target | |"
		echo "|---|---:|---:|---:|---:|---|"
		r=$(ratio "$(med local_packs)" "$(med local_prepacks)")
		echo "| time | $(med local_packs) s | $(med local_prepacks) s | $r | ≤ 1.0 | $(awk -v r="$r" 'BEGIN {print (r + 0 <= 1.0) ? "met" : "**not met**"}') |"
		r=$(ratio "$v_fsync_packs" "$v_fsync_prepacks")
		echo "| fsync + fdatasync calls (strace -c -f, one run) | $v_fsync_packs | $v_fsync_prepacks | $r | fewer | $(below "$r" 1.0) |"
		echo "| files in the store | $v_packs_store_files | $v_pre_store_files | | | |"
		echo "| bytes stored | $(mib "$v_packs_store") MiB | $(mib "$v_pre_store") MiB | | | |"
		echo "| peak RSS | $(rss local_packs) MiB | $(rss local_prepacks) MiB | | | |"
	fi
	echo
	echo "Every command: wall seconds, CPU seconds of the client (user + sys) and of the servers (PostgreSQL + Ceph"
	echo "mon/osd/radosgw), and other load (% of all CPUs used by unrelated processes; > 10% means disturbed):"
	echo
	echo "| command | wall s | client CPU s | server CPU s | peak RSS MiB | other load |"
	echo "|---|---:|---:|---:|---:|---:|"
	for m in dump_only push aws_up rclone_up fetch fetch_t32 fetch_compare aws_down rclone_down local_packs local_prepacks; do
		grep -q "^$m " "$res/results.tsv" || continue
		echo "| $m$(disturbed "$m") | $(med "$m") | $(cpu "$m") | $(med "$m" 7) | $(rss "$m") | $(awk -v n="$m" '$1 == n {printf "%s%s%%", sep, $6; sep = ", "}' "$res/results.tsv") |"
	done
	echo
	echo "Downloads compared with the cache's files: $v_check."
	local d=
	for m in push aws_up rclone_up fetch aws_down rclone_down local_packs local_prepacks; do
		[ -z "$(disturbed "$m")" ] || d="$d $m"
	done
	[ -z "$d" ] || echo "**Disturbed by other load in every run:$d** (rerun on a quiet machine)."
	[ ! -s "$res/notes.txt" ] || { echo; cat "$res/notes.txt"; }
}

if [ "${1:-}" = --summary ]; then
	res=$2
	while read -r k v; do eval "v_$k=\$v"; done <"$res/values.tsv"
	summarize
	exit 0
fi
scale=${SCALE:-${1:-130}}
repeat=${REPEAT:-1}
ddbin=${DD_BIN:-$top/git-dnadata}
prebin=${DD_PREPACKS_BIN:-/tmp/dd-prepacks/git-dnadata}
[ -x "$ddbin" ] || { echo "error: $ddbin not found: build git-dnadata first (make -j2) or set DD_BIN" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
[ -x /usr/bin/aws ] || { echo "error: /usr/bin/aws is missing (apt-get install awscli)" >&2; exit 1; }
. "$top/tests/pg.sh"
. "$top/tests/s3.sh"
bin=$(pg_bindir)
export PATH="$bin:$PATH"

work=$(mktemp -d "${TMPDIR:-/tmp}/dd-s3bench.XXXXXX")
mkdir -p "$work/bin"
cp "$ddbin" "$work/bin/git-dnadata" # a rebuild of the tree during the run changes nothing
export PATH="$work/bin:$PATH"
res="$top/bench/results/s3-$(date +%Y%m%d-%H%M%S)-s$scale"
mkdir -p "$res"
cleanup() {
	s3_server_stop "$work/s3" || true
	pg_cluster_stop "$work/pg" || true
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
q() { command psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"; }

# ---- servers --------------------------------------------------------------
pg_cluster_start "$work/pg"
export PGHOST PGPORT PGUSER
psql -d postgres -c "ALTER SYSTEM SET maintenance_work_mem = '256MB'" \
	-c "ALTER SYSTEM SET checkpoint_timeout = '30min'" \
	-c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
DD_S3_MEMSTORE_BYTES=${MEMSTORE_BYTES:-$((12 << 30))} s3_server_start "$work/s3"
# our tool and rclone read the environment; awscli gets its endpoint and
# region on the command line (awscli 2.9 ignores AWS_ENDPOINT_URL)
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_S3 AWS_DEFAULT_REGION
export AWS_ACCESS_KEY_ID=$DD_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$DD_S3_SECRET_KEY
export AWS_ENDPOINT_URL=$DD_S3_ENDPOINT AWS_REGION=$DD_S3_REGION
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER=
export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_RGW_TYPE=s3 RCLONE_CONFIG_RGW_PROVIDER=Ceph \
	RCLONE_CONFIG_RGW_ENDPOINT=$DD_S3_ENDPOINT RCLONE_CONFIG_RGW_REGION=$DD_S3_REGION \
	RCLONE_CONFIG_RGW_ACCESS_KEY_ID=$DD_S3_ACCESS_KEY RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY=$DD_S3_SECRET_KEY
AWS="/usr/bin/aws --endpoint-url $DD_S3_ENDPOINT --region $DD_S3_REGION --no-cli-pager"
rclone=no
! command -v rclone >/dev/null || rclone=yes
# rclone's AWS SDK refuses an AWS_CA_BUNDLE it cannot load into its own transport
RCLONE="env -u AWS_CA_BUNDLE rclone"
export DNADATA_PASSPHRASE="s3 bench passphrase" XDG_CACHE_HOME=$work/xdg-cache HOME=$work/home
mkdir -p "$HOME"
git config --global user.name bench
git config --global user.email bench@example.invalid
git config --global init.defaultBranch main

dropcache=no
if (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then dropcache=yes; fi
{
	echo "date: $(date -u +%FT%TZ)"
	echo "host: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
	if [ -n "${DD_BIN:-}" ]; then
		echo "git-dnadata: $(git dnadata --version 2>&1 | head -n 1), binary $DD_BIN"
	else
		echo "git-dnadata: $(git dnadata --version 2>&1 | head -n 1), commit $(git -C "$top" rev-parse --short HEAD)$(git -C "$top" diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes in src/')"
	fi
	echo "tools: $(/usr/bin/aws --version 2>&1 | cut -d' ' -f1-2); $([ $rclone = yes ] && rclone version 2>/dev/null | head -n 1 || echo 'rclone: not installed'); PostgreSQL $(q -d postgres -c 'SHOW server_version' | cut -d' ' -f1)"
	echo "server: Ceph RADOS Gateway $(radosgw --version 2>/dev/null | awk '{print $3}') on loopback (tests/s3.sh), memstore (objects in RAM), capacity $(( ${MEMSTORE_BYTES:-$((12 << 30))} >> 30 )) GiB"
	echo "drop_caches before each measurement: $dropcache"
	echo "work dir: $work"
	df -h "$work" | tail -n 1 | awk '{print "disk: " $1 " " $2 " total, " $4 " free, mounted on " $6}'
	echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "scale: $scale, repeat: $repeat, prepacks binary: $([ -x "$prebin" ] && echo "$prebin ($(git -C "$(dirname "$prebin")" rev-parse --short HEAD 2>/dev/null || echo '?'))" || echo none)"
} >"$res/env.txt"
cat "$res/env.txt" >&2
val scale "$scale"
val repeat "$repeat"
val dropcache "$dropcache"
val rclone "$rclone"
: >"$res/notes.txt"

# ---- measuring (as pg-bench.sh, with Ceph's daemons counted as servers) ---
hz=$(getconf CLK_TCK)
cpu_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
server_cpu() { # ticks used by PostgreSQL (postmaster + children, reaped ones too) and Ceph's daemons
	local pm f
	pm=$(head -n 1 "$work/pg/data/postmaster.pid")
	{
		cat "/proc/$pm/stat"
		for c in $(pgrep -P "$pm"); do cat "/proc/$c/stat" 2>/dev/null || true; done
		for f in "$work"/s3/run/*.pid; do cat "/proc/$(cat "$f")/stat" 2>/dev/null || true; done
	} | awk '{sub(/^[0-9]+ \(.*\) /, ""); t += $12 + $13; if (NR == 1) t += $14 + $15} END {print t + 0}'
}
wait_quiet() {
	local t0=$SECONDS a b c d u v busy
	while :; do
		a=$(cpu_busy) c=$(server_cpu) u=$(cut -d' ' -f1 /proc/uptime)
		sleep 3
		b=$(cpu_busy) d=$(server_cpu) v=$(cut -d' ' -f1 /proc/uptime)
		busy=$(awk -v x=$((b - a - d + c)) -v t="$u" -v w="$v" -v n="$(nproc)" -v hz="$hz" 'BEGIN {printf "%d", 100 * x / ((w - t) * n * hz)}')
		[ "$busy" -ge 10 ] || break
		if [ $((SECONDS - t0)) -ge "${QUIET_WAIT:-300}" ]; then
			log "machine still busy (${busy}% of the CPUs used by other processes) after ${QUIET_WAIT:-300} s: measuring anyway"
			break
		fi
		sleep 7
	done
	[ $((SECONDS - t0)) -lt 15 ] || log "waited $((SECONDS - t0)) s for other processes to leave the CPUs"
}
# measure NAME CMD: as pg-bench.sh; "NAME secs rss_kib user sys other_% server_cpu_s" to results.tsv
measure() {
	local name=$1 cmd=$2 n b0 c0 b1 c1
	n=$(grep -c "^$name " "$res/results.tsv" 2>/dev/null || true)
	sync
	[ "$dropcache" = no ] || echo 3 >/proc/sys/vm/drop_caches
	wait_quiet
	b0=$(cpu_busy) c0=$(server_cpu)
	if ! /usr/bin/time -f '%e %M %U %S' -o "$work/time.out" bash -o pipefail -c "$cmd" \
		>"$res/$name.$((n + 1)).out" 2>"$res/$name.$((n + 1)).err" </dev/null; then
		cat "$res/$name.$((n + 1)).err" >&2
		echo "error: '$name' failed: $cmd" >&2
		exit 1
	fi
	sleep 0.2 # let the backends of the command's sessions exit and be reaped
	b1=$(cpu_busy) c1=$(server_cpu)
	echo "$name $(tail -n 1 "$work/time.out" | awk -v b=$((b1 - b0)) -v c=$((c1 - c0)) -v n="$(nproc)" -v hz="$hz" '{
		other = (b - c) / hz - $3 - $4; if (other < 0) other = 0
		printf "%s %s %s %s %.0f %.1f", $1, $2, $3, $4, 100 * other / ($1 * n), c / hz}')" >>"$res/results.tsv"
	log "$name: $(tail -n 1 "$res/results.tsv" | awk '{printf "%.2f s, peak RSS %.1f MiB, CPU: client %.1f s user + %.1f s sys, servers %.1f s; other load %d%%", $2, $3 / 1024, $4, $5, $7, $6}')"
}
s3_rm() { # PREFIX: delete every object under s3://bench/PREFIX and let RGW free their RAM (not timed)
	$AWS s3 rm --recursive --only-show-errors "s3://bench/$1" >/dev/null
	s3_ceph "$work/s3" radosgw-admin gc process --include-all >/dev/null 2>&1 || true
}
# the request count of a push or fetch summary line ("..., N requests")
requests_of() { sed -n 's/.* \([0-9][0-9]*\) requests\{0,1\})\{0,1\}$/\1/p' "$1" | tail -n 1; }

# ---- data -----------------------------------------------------------------
t0=$SECONDS
createdb bench
pgbench -q -i -s "$scale" bench >"$work/pgbench.log" 2>&1 &
pid=$!
psql -d bench -v scale="$scale" -f "$top/bench/pg/dataset.sql"
wait "$pid" || { cat "$work/pgbench.log" >&2; exit 1; }
psql -d bench -c "VACUUM ANALYZE" -c "CHECKPOINT"
val db_bytes "$(q -d postgres -c "SELECT pg_database_size('bench')")"
log "generated the database (scale $scale) in $((SECONDS - t0)) s: $(mib "$v_db_bytes") MiB"

$AWS s3 mb s3://bench >/dev/null
origin=$work/origin
git init -q "$origin"
cd "$origin"
git dnadata init -q --store s3://bench/dd --database dbname=bench >/dev/null
cache=$origin/.git/dnadata/cache

# ---- 0. the snapshot, into the local cache only ---------------------------
measure dump_only "git dnadata snapshot --dump-only"
up=$work/up
mkdir -p "$up"
for d in packs index snapshots; do [ ! -d "$cache/$d" ] || cp -al "$cache/$d" "$up/$d"; done
val up_bytes "$(bytes "$up")"
val up_files "$(files "$up")"
val packs "$(files "$up/packs")"
val indexes "$(files "$up/index")"
val manifests "$(files "$up/snapshots")"
[ "$(files "$cache/data")" = 0 ] || echo "Note: the cache also held $(files "$cache/data") loose objects after the snapshot (not moved)." >>"$res/notes.txt"
log "snapshot: $v_up_bytes bytes in $v_up_files files ($v_packs packs, $v_indexes index files, $v_manifests manifests)"

# ---- 1. upload ------------------------------------------------------------
for i in $(seq "$repeat"); do
	if [ "$i" -gt 1 ]; then
		for d in packs index snapshots; do s3_rm "dd/$d/"; done
		rm -f "$cache"/known-objects-*
	fi
	cd "$origin"
	measure push "git dnadata push"
	val push_requests "$(requests_of "$res/push.$i.err")"
	cd "$work"
	measure aws_up "$AWS s3 cp --recursive --only-show-errors '$up' s3://bench/aws-up/"
	[ "$(($($AWS s3 ls --recursive s3://bench/aws-up/ | wc -l)))" = "$v_up_files" ] || { echo "error: aws s3 cp uploaded a different number of files" >&2; exit 1; }
	s3_rm aws-up/
	if [ $rclone = yes ]; then
		measure rclone_up "$RCLONE copy '$up' rgw:bench/rclone-up"
		[ "$(($($AWS s3 ls --recursive s3://bench/rclone-up/ | wc -l)))" = "$v_up_files" ] || { echo "error: rclone uploaded a different number of files" >&2; exit 1; }
		s3_rm rclone-up/
	fi
done
# the store now holds exactly the cache's files (+ config and the key file)
$AWS s3 ls --recursive s3://bench/dd/ | awk '{print $4}' | sed 's|^dd/||' | grep -v '^config$\|^keys/' | LC_ALL=C sort >"$work/store.list"
(cd "$up" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$work/up.list"
cmp -s "$work/store.list" "$work/up.list" || { echo "error: the store's files differ from the cache's after push" >&2; diff "$work/up.list" "$work/store.list" | head >&2; exit 1; }

# ---- 2. download ----------------------------------------------------------
check=same
same_files() { # DIR NAME: DIR holds exactly the files of $up, byte for byte (empty folders aside)
	local f bad=
	(cd "$1" && find . -type f | LC_ALL=C sort) >"$work/down.list"
	(cd "$up" && find . -type f | LC_ALL=C sort) >"$work/up.list"
	if ! cmp -s "$work/up.list" "$work/down.list"; then
		bad="other file names"
	else
		while read -r f; do cmp -s "$up/$f" "$1/$f" || { bad="$f differs"; break; }; done <"$work/up.list"
	fi
	if [ -n "$bad" ]; then
		check="DIFFERENT ($2)"
		log "$2: the downloaded files differ from the cache's ($bad)"
	fi
}
for i in $(seq "$repeat"); do
	rm -rf "$work/clone"
	git clone -q "$origin" "$work/clone"
	cd "$work/clone"
	DNADATA_DATABASE=dbname=bench git dnadata init -q >/dev/null
	measure fetch "git dnadata fetch"
	val fetch_requests "$(requests_of "$res/fetch.$i.err")"
	val fetch_cache_bytes "$(bytes "$work/clone/.git/dnadata/cache")"
	val fetch_cache_files "$(files "$work/clone/.git/dnadata/cache")"
	cd "$work"
	rm -rf "$work/clone" "$work/down"
	measure aws_down "$AWS s3 cp --recursive --only-show-errors s3://bench/dd/ '$work/down' --exclude config --exclude 'keys/*'"
	same_files "$work/down" "aws s3 cp"
	rm -rf "$work/down"
	if [ $rclone = yes ]; then
		measure rclone_down "$RCLONE copy rgw:bench/dd '$work/down' --exclude /config --exclude '/keys/**'"
		same_files "$work/down" "rclone copy"
		rm -rf "$work/down"
	fi
done
# diagnostic, once: the same fetch with 32 parallel transfers instead of the
# default 8 (a fetch bound by per-request latency gets faster)
rm -rf "$work/clone"
git clone -q "$origin" "$work/clone"
cd "$work/clone"
DNADATA_DATABASE=dbname=bench git dnadata init -q >/dev/null
printf '[store]\ntransfers = 32\n' >>.git/dnadata/config.ini
measure fetch_t32 "git dnadata fetch"
cd "$work"
rm -rf "$work/clone"
if [ -n "${DD_COMPARE_BIN:-}" ]; then
	mkdir -p "$work/bin-cmp"
	cp "$DD_COMPARE_BIN" "$work/bin-cmp/git-dnadata"
	git clone -q "$origin" "$work/clone"
	cd "$work/clone"
	DNADATA_DATABASE=dbname=bench PATH="$work/bin-cmp:$PATH" git dnadata init -q >/dev/null
	measure fetch_compare "PATH='$work/bin-cmp':\$PATH git dnadata fetch"
	val fetch_compare_requests "$(requests_of "$res/fetch_compare.1.err")"
	val compare_note "${DD_COMPARE_NOTE:-$DD_COMPARE_BIN}"
	cd "$work"
	rm -rf "$work/clone"
fi
val check "$check"
echo "fetch: the clone's cache held $v_fetch_cache_files files, $(mib "$v_fetch_cache_bytes") MiB afterwards (what the pushed store holds: $v_up_files files, $(mib "$v_up_bytes") MiB)." >>"$res/notes.txt"

# ---- 4. local store, before and after packs --------------------------------
local_repo() { # DIR BINDIR: a repository with a file:// store, set up by BINDIR's git-dnadata
	rm -rf "$1" "$1.store"
	git init -q "$1"
	cd "$1"
	PATH="$2:$PATH" git dnadata init -q --store "file://$1.store" --database dbname=bench >/dev/null
}
fsyncs() { awk '$NF == "fsync" || $NF == "fdatasync" {n += $4} END {print n + 0}' "$1"; }
if [ -x "$prebin" ]; then
	mkdir -p "$work/bin-pre"
	cp "$prebin" "$work/bin-pre/git-dnadata"
	for i in $(seq "$repeat"); do
		local_repo "$work/lp" "$work/bin"
		measure local_packs "git dnadata snapshot --no-commit"
		local_repo "$work/lq" "$work/bin-pre"
		measure local_prepacks "PATH='$work/bin-pre':\$PATH git dnadata snapshot --no-commit"
	done
	val packs_store "$(bytes "$work/lp.store")"
	val packs_store_files "$(files "$work/lp.store")"
	val pre_store "$(bytes "$work/lq.store/data" "$work/lq.store/snapshots")"
	val pre_store_files "$(files "$work/lq.store")"
	val pre_objects "$(files "$work/lq.store/data")"
	local_repo "$work/lp" "$work/bin"
	strace -c -f -e trace=fsync,fdatasync -o "$res/strace-packs.txt" git dnadata snapshot --no-commit >/dev/null 2>&1
	val fsync_packs "$(fsyncs "$res/strace-packs.txt")"
	local_repo "$work/lq" "$work/bin-pre"
	PATH="$work/bin-pre:$PATH" strace -c -f -e trace=fsync,fdatasync -o "$res/strace-prepacks.txt" git dnadata snapshot --no-commit >/dev/null 2>&1
	val fsync_prepacks "$(fsyncs "$res/strace-prepacks.txt")"
	cd "$work"
	rm -rf "$work/lp" "$work/lp.store" "$work/lq" "$work/lq.store"
else
	log "no pre-packs binary at $prebin: step 4 skipped"
fi
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$res/env.txt"

summarize >"$res/summary.md"
cat "$res/summary.md"
echo
echo "raw results: $res" >&2
