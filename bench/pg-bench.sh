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
#   4. one small table changed (one row of pgbench_tellers): snapshot time
#      against the first snapshot's (issue 19: <= 0.1x)
#   5. nothing changed: `git dnadata snapshot -v` (committing) after the ref
#      was committed: time (< 1 s), and the check that the id stayed the
#      same and no commit was made
#   6. the last (incremental) snapshot restored into a new database and
#      compared with its source row by row: the sha256 of each table's rows
#      as COPY text in key order, and the row counts
#   7. restore of the first snapshot from the local cache into the existing
#      database (--force --terminate; replaced, the old one renamed aside) vs
#      createdb + pg_restore -j2 of the step-1 dump (same content), and vs
#      pg_restore -j<cores> when the machine has more than 2 cores, all
#      timed from nothing to a complete database; row counts and a content
#      hash of every table compared afterwards
#   8. (SMALL_SCALE) the same cold snapshot and restore on the small
#      database: peak RSS at two sizes
# Every measure reports the CPU seconds of the client and of the server.
# COMPRESSION=zstd:N|none  the store's compression (git dnadata init
#              --compression; default: the program's)
# bench/pg-bench.sh --summary bench/results/pg-...  reprints a run's summary.
# Writes raw results to bench/results/pg-<date>-s<scale>/ and prints a
# Markdown summary (also saved there as summary.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

. "$top/bench/lib.sh"

# ---- summary --------------------------------------------------------------
summarize() {
	local s1 s2 s3 pd rf rz rz2 rz3 rs pr prn s4 s5
	s1=$(med snapshot1) s2=$(med snapshot2) s3=$(med snapshot3) pd=$(med pg_dump_fc)
	rf=$(med restic_fc1) rz=$(med restic_z01) rz2=$(med restic_z02) rz3=$(med restic_z03)
	rs=$(med restore) pr=$(med pg_restore_j2) prn=$(med "pg_restore_j$ncores")
	s4=$(med snapshot_small_change) s5=$(med snapshot_unchanged)
	local d m all
	d=
	all="snapshot1 pg_dump_fc restic_fc1 restic_z01 snapshot2 restic_z02 snapshot3 restic_z03 snapshot_small_change
		snapshot_unchanged restore_incremental restore pg_restore_j2 $([ "$ncores" = 2 ] || echo "pg_restore_j$ncores")"
	for m in $all; do
		[ -z "$(disturbed "$m")" ] || d="$d $m"
	done
	echo "$(sed -n 's/^host: //p' "$res/env.txt"); $(sed -n 's/^postgresql: //p' "$res/env.txt")."
	echo "$(sed -n 's/^git-dnadata: //p' "$res/env.txt"). Cluster: $(sed -n 's/^settings: //p' "$res/env.txt"); drop_caches: $dropcache."
	echo "Database: pgbench scale $scale + bench/pg/dataset.sql at scale $scale, $(mib "$v_db_bytes") MiB (pg_database_size)."
	echo "Store: $(sed -n 's/^store: //p' "$res/env.txt")."
	echo "Each time: median of $repeat run(s), leaving out runs during which other processes used > 10% of the CPUs when an"
	echo "undisturbed run exists (a command marked \"(disturbed)\" below had none). CPU: client (user + sys) / server seconds."
	echo
	echo "| measure | git-dnadata | CPU client / server | peer (same run) | ratio | target | |"
	echo "|---|---:|---:|---|---:|---:|---|"
	echo "| cold snapshot, time | $s1 s | $(cs snapshot1) | pg_dump -Fc: $pd s ($(cs pg_dump_fc)) | $(ratio "$s1" "$pd") | ≤ 1.0 | $(verdict "$(ratio "$s1" "$pd")" 1.0) |"
	echo "| cold snapshot, time | $s1 s | | pg_dump -Fc \\| restic backup --stdin: $rf s ($(cs restic_fc1)) | $(ratio "$s1" "$rf") | ≤ 0.5 (issue) | $(verdict "$(ratio "$s1" "$rf")" 0.5) |"
	echo "| cold snapshot, time | $s1 s | | pg_dump -Fc -Z0 \\| restic backup --stdin: $rz s ($(cs restic_z01)) | $(ratio "$s1" "$rz") | ≤ 0.7 (design) | $(verdict "$(ratio "$s1" "$rz")" 0.7) |"
	echo "| cold snapshot, bytes stored | $(mib "$v_store1") MiB | | -Fc dump $(mib "$v_dump_fc") MiB; restic repo: -Fc $(mib "$v_restic_fc1") MiB, -Z0 $(mib "$v_restic_z01") MiB | $(ratio "$v_store1" "$v_dump_fc") | — | |"
	local k what sk rk
	for k in 2 3; do
		if [ $k = 2 ]; then what="1% of rows scattered (every 100th key)"; sk=$s2 rk=$rz2; else
			what="another 1% in 10 contiguous ranges per table"; sk=$s3 rk=$rz3; fi
		eval "local sa=\$v_store_add$k ca=\$v_cache_add$k ra=\$v_restic_add$k"
		# issue 19: scattered <= 5% of the bytes (stretch, and DESIGN: 2%) and <= 0.5x the time (stretch 0.3x);
		# in 10 ranges <= 2% and <= 0.3x
		local bt=0.05 bl="≤ 0.05 (issue)" tt=0.5 tl="≤ 0.5 (issue)"
		[ $k = 2 ] || { bt=0.02 bl="≤ 0.02 (issue)" tt=0.3 tl="≤ 0.3 (issue)"; }
		echo "| snapshot $k after $what: bytes added to the store | $(mib "$sa") MiB ($(pct "$sa" "$v_store1") of the first; cache +$(mib "$ca") MiB) | | first snapshot $(mib "$v_store1") MiB | $(ratio "$sa" "$v_store1") | $bl | $(verdict "$(ratio "$sa" "$v_store1")" $bt) |"
		[ $k = 3 ] || echo "| same | | | | | ≤ 0.02 (stretch; design) | $(verdict "$(ratio "$sa" "$v_store1")" 0.02) |"
		echo "| same, vs restic's next backup of pg_dump -Fc -Z0 | $(mib "$sa") MiB | | restic added $(mib "$ra") MiB ($(pct "$ra" "$v_restic_z01") of its first) | $(ratio "$sa" "$ra") | ≤ 1.0 (design) | $(verdict "$(ratio "$sa" "$ra")" 1.0) |"
		echo "| snapshot $k, time | $sk s | $(cs "snapshot$k") | first snapshot $s1 s (restic's backup: $rk s, $(cs "restic_z0$k")) | $(ratio "$sk" "$s1") | $tl | $(verdict "$(ratio "$sk" "$s1")" $tt) |"
		[ $k = 3 ] || echo "| same | | | | | ≤ 0.3 (stretch) | $(verdict "$(ratio "$sk" "$s1")" 0.3) |"
	done
	echo "| snapshot after changing one small table only, time | $s4 s | $(cs snapshot_small_change) | first snapshot $s1 s | $(ratio "$s4" "$s1") | ≤ 0.1 | $(verdict "$(ratio "$s4" "$s1")" 0.1) |"
	echo "| same, bytes added to the store | $(mib "$v_store_add_small") MiB | | first snapshot $(mib "$v_store1") MiB | $(ratio "$v_store_add_small" "$v_store1") | — | |"
	echo "| snapshot of an unchanged database, time | $s5 s | $(cs snapshot_unchanged) | $v_unchanged | — | < 1 s, same id, no commit | $(verdict "$(awk -v t="$s5" -v c="$v_unchanged" 'BEGIN {print (t < 1 && c == "same id, no commit") ? 0 : 1}')" 0) |"
	echo "| restore from the local cache, time | $rs s | $(cs restore) | createdb + pg_restore -j2 of the -Fc dump: $pr s ($(cs pg_restore_j2)) | $(ratio "$rs" "$pr") | ≤ 0.8 | $(verdict "$(ratio "$rs" "$pr")" 0.8) |"
	if [ "$ncores" = 2 ]; then
		echo "| same, vs pg_restore -j<cores> | $rs s | | this machine has 2 cores: the row above | $(ratio "$rs" "$pr") | report | |"
	else
		echo "| same, vs pg_restore -j<cores> | $rs s | | createdb + pg_restore -j$ncores: $prn s ($(cs "pg_restore_j$ncores")) | $(ratio "$rs" "$prn") | report | |"
	fi
	local worst
	worst=$(printf '%s\n' "$(rss snapshot1)" "$(rss restore)" "$(rss snapshot2)" "$(rss snapshot3)" \
		$([ "$small" -gt 0 ] && printf '%s\n' "$(rss small_snapshot)" "$(rss small_restore)") | sort -g | tail -n 1)
	echo "| peak RSS, snapshot / restore | $(rss snapshot1) / $(rss restore) MiB | | pg_dump -Fc $(rss pg_dump_fc) MiB; restic pipelines $(rss restic_fc1) / $(rss restic_z01) MiB; pg_restore -j2 $(rss pg_restore_j2) MiB | — | < 100 MiB | $(verdict "$worst" 99.999) |"
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
	for m in $all $([ "$small" -gt 0 ] && echo small_snapshot small_restore); do
		echo "| $m$(disturbed "$m") | $(med "$m") | $(cpu "$m") | $(med "$m" 7) | $(awk -v n="$m" '$1 == n {printf "%s%s%%", sep, $6; sep = ", "}' "$res/results.tsv") |"
	done
	echo
	echo "Restored databases compared (rows and a hash of every row, per table): $check."
	echo "The last incremental snapshot (after steps 2-4) restored into a new database and compared with its source, row by"
	echo "row (the sha256 of each table's rows as COPY text in key order, and the row counts): $v_fidelity."
	[ -z "$d" ] || echo "**Disturbed by other load in every run:$d** (rerun on a quiet machine)."
}
cs() { echo "$(cpu "$1") / $(MED_FMT=%.1f med "$1" 7)"; } # CPU client / server seconds of a measure

if [ "${1:-}" = --summary ]; then # reprint the summary of an earlier run from its raw results
	res=$2
	while read -r k v; do eval "v_$k=\$v"; done <"$res/values.tsv"
	scale=$v_scale small=$v_small repeat=$v_repeat check=$v_check dropcache=$v_dropcache ncores=${v_ncores:-2}
	v_unchanged=${v_unchanged:-not measured} v_fidelity=${v_fidelity:-not measured} v_store_add_small=${v_store_add_small:-0}
	summarize
	exit 0
fi
scale=${SCALE:-${1:-50}}
small=${SMALL_SCALE:-5}
repeat=${REPEAT:-1}
ddbin=${DD_BIN:-$top/git-dnadata}
command -v restic >/dev/null || { echo "error: restic is missing (apt-get install restic)" >&2; exit 1; }
bench_setup pgbench "pg-$(date +%Y%m%d-%H%M%S)-s$scale"
# ---- cluster --------------------------------------------------------------
bench_cluster_start "$work/pg"
export RESTIC_PASSWORD=bench XDG_CACHE_HOME=$work/xdg-cache

dropcache=no
if (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then dropcache=yes; fi
{
	bench_env_header
	echo "postgresql: $(q -d postgres -c 'SHOW server_version' | cut -d' ' -f1); $(pg_dump --version); $(restic version | cut -d' ' -f1-2)"
	echo "settings: $bench_settings"
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
ncores=$(nproc)
val ncores "$ncores"

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
echo "store: $(grep -E '^(chunker|compression) ' "$repo.store/config" | paste -sd ';' | sed 's/;/; /g')$([ -n "${COMPRESSION:-}" ] || echo ' (the default)')" >>"$res/env.txt"
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

# a snapshot-only step: SQL, then the snapshot; for REPEAT > 1 the store,
# state and ref go back to their state before the step, as in incremental
snapshot_step() { # NAME SQL
	local name=$1 i s0
	psql -d bench -c "$2" -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
	rm -rf "$work/before"
	mkdir -p "$work/before"
	cp -al "$repo.store" "$work/before/store"
	cp -al "$repo/.git/dnadata" "$work/before/state"
	cp "$repo/.dnadata/refs/clean" "$work/before/ref"
	s0=$(store_bytes "$repo")
	for i in $(seq "$repeat"); do
		if [ "$i" -gt 1 ]; then
			rm -rf "$repo.store" "$repo/.git/dnadata"
			cp -al "$work/before/store" "$repo.store"
			cp -al "$work/before/state" "$repo/.git/dnadata"
			cp "$work/before/ref" "$repo/.dnadata/refs/clean"
		fi
		cd "$repo"
		measure "$name" "git dnadata snapshot -v --no-commit"
		cd "$work"
	done
	val "store_add_small" $(($(store_bytes "$repo") - s0))
	rm -rf "$work/before"
}
log "step 4: one small table changed (one row of pgbench_tellers)"
snapshot_step snapshot_small_change "UPDATE pgbench_tellers SET tbalance = tbalance + 1 WHERE tid = 1"

# nothing changed: a committing snapshot after the ref was committed must keep the id and make no commit
log "step 5: the database unchanged"
cd "$repo"
git add .dnadata && git commit -q -m "bench: the last snapshot"
head0=$(git rev-parse HEAD)
cp .dnadata/refs/clean "$work/ref-last"
unchanged="same id, no commit"
for i in $(seq "$repeat"); do
	measure snapshot_unchanged "git dnadata snapshot -v"
	cmp -s .dnadata/refs/clean "$work/ref-last" || unchanged="NEW SNAPSHOT ID"
	[ "$(git rev-parse HEAD)" = "$head0" ] || unchanged="${unchanged%, no commit}, COMMITTED"
	git reset -q --hard "$head0"
done
val unchanged "$unchanged"
log "unchanged database: $unchanged"

# the last snapshot (incremental: steps 2-4 on top of the first) restored into a new database, compared with its source
log "step 6: the last snapshot restored into a new database, compared with its source row by row"
cd "$work"
table_copies bench >"$res/copy-source.txt"
cd "$repo"
dropdb --if-exists bench_incr
measure restore_incremental "DNADATA_DATABASE=dbname=bench_incr git dnadata restore -v --force --terminate"
table_copies bench_incr >"$res/copy-restored.txt"
if cmp -s "$res/copy-source.txt" "$res/copy-restored.txt"; then fidelity=same; else
	fidelity=DIFFERENT
	diff "$res/copy-source.txt" "$res/copy-restored.txt" >&2 || true
fi
val fidelity "$fidelity"
log "last incremental snapshot restored vs its source, row by row: $fidelity"
drop_stashes bench_incr
dropdb bench_incr
cd "$work"

# restore: the first snapshot (same content as bench.dump)
for i in $(seq "$repeat"); do
	cd "$repo"
	cp "$work/ref1" .dnadata/refs/clean
	measure restore "git dnadata restore -v --force --terminate"
	drop_stashes bench
	cd "$work"
	dropdb --if-exists restored
	measure pg_restore_j2 "createdb restored && pg_restore -j2 -d restored '$work/bench.dump'"
	if [ "$ncores" != 2 ]; then
		dropdb restored
		measure "pg_restore_j$ncores" "createdb restored && pg_restore -j$ncores -d restored '$work/bench.dump'"
	fi
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
