#!/usr/bin/env bash
# bench/switch-bench.sh: switching a working database with `git checkout`
# (the hooks), against copying its files and against pg_restore, same run,
# same throwaway cluster. Run by hand; not part of the test suite. Targets:
# issue 16 and DESIGN.md §8.
#
#   SCALES="3 30" REPEAT=3 bench/switch-bench.sh     (needs a built git-dnadata)
#
# SCALES   pgbench scales of the databases measured, smallest first (default
#          "3 30": about 100 MB and 1 GB on disk with bench/pg/dataset.sql)
# REPEAT   runs of each measured switch; the median is reported (default 3)
# NOOP_RUNS  checkouts timed for the no-op hook figure, each way (default 20)
# KEEP=1   keep the work directory (cluster stopped) for inspection
# DD_BIN   the git-dnadata binary to measure (default: ./git-dnadata of this tree)
#
# For each scale: the working database `app` (pgbench + dataset.sql at that
# scale) is snapshotted on branch main (X); branch feature updates 1% of its
# rows and snapshots again (Y); branch main2 points where main does (same ref).
# The hooks are installed by `git dnadata init`. Measured, each as the wall
# time of the whole `git checkout` (hooks included), with nothing else running:
#   cold     git checkout main after the local cache, templates, spares and
#            stashes are gone: X comes from the store (a local folder) | peer:
#            createdb + pg_restore -j2 of a pg_dump -Fc of X
#   stash    back to a branch whose database was stashed when it was left
#            (git checkout feature, then main, then feature again: the last)
#   template to a snapshot with a template but no spare and no stash (spares
#            = 0, stashes dropped) | peer: cp -r of the template's folder
#            (base/<oid>) on the same disk
#   spare    to a snapshot whose warm spare is ready (spares = 2, waited for,
#            stashes dropped)
#   noop     git checkout main2 / main (equal refs) with the hooks against
#            the same checkouts with core.hooksPath pointing at an empty
#            folder: the time the hooks add, median of NOOP_RUNS each way
# After each switch the working database is checked against the snapshot it
# should hold (rows and a hash of every row, per table).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/lib.sh"
export MED_FMT=%.3f

scales=${SCALES:-3 30}
repeat=${REPEAT:-3}
nooprun=${NOOP_RUNS:-20}
ddbin=${DD_BIN:-$top/git-dnadata}
bench_setup switchbench "switch-$(date +%Y%m%d-%H%M%S)"

bench_cluster_start "$work/pg"
pgdata=$work/pg/data
dropcache=no
if (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then dropcache=yes; fi
{
	bench_env_header
	echo "postgresql: $(q -d postgres -c 'SHOW server_version' | cut -d' ' -f1); $(pg_dump --version)"
	echo "settings: $bench_settings"
	echo "drop_caches before each measurement: $dropcache"
	df -h "$work" | tail -n 1 | awk '{print "disk: " $1 " " $2 " total, " $4 " free, mounted on " $6}'
	echo "scales: $scales, repeat: $repeat, no-op checkouts: $nooprun each way"
} >"$res/env.txt"
cat "$res/env.txt" >&2

# The database's own files, for the cp -r peer.
db_dir() { echo "$pgdata/base/$(q -d postgres -c "SELECT oid FROM pg_database WHERE datname = '$1'")"; }
ours() { q -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE 'app\\_\\_dnadata\\_%' ORDER BY 1"; }
# every copy of ours of kind KIND (stash, spare, tmpl)
copies() { ours | grep "__dnadata_$1_" || true; }
drop_copies() { # KIND...: through the product, so its records stay true
	local k d
	for k in "$@"; do
		for d in $(copies "$k"); do
			if [ "$k" = stash ]; then git dnadata stash drop "$d" >/dev/null; else dropdb "$d"; fi
		done
	done
	git dnadata status >/dev/null 2>&1 || true # forgets records of copies that are gone
}
# Wait (bounded) until the background job has a spare of the snapshot the
# ref of branch BRANCH names, and no CREATE DATABASE runs.
wait_spare() {
	local i
	for i in $(seq 600); do
		if [ -n "$(copies spare)" ] &&
			[ "$(q -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'CREATE DATABASE%' AND state = 'active'")" = 0 ] &&
			! pgrep -f "^$work/bin/git-dnadata spare" >/dev/null; then
			return 0
		fi
		sleep 0.5
	done
	echo "error: no warm spare after 300 s" >&2
	exit 1
}
wait_jobs() { # the background job of the last switch (ours: other checkouts' are not waited for) has finished
	local i
	for i in $(seq 600); do
		pgrep -f "^$work/bin/git-dnadata spare" >/dev/null || return 0
		sleep 0.5
	done
}
# measure with the command's own wall time from EPOCHREALTIME inside the
# timed shell, so the figure has microseconds: the command writes it to
# $work/fine, and it replaces the %e field of the results line.
measure_fine() { # NAME CMD
	local name=$1 cmd=$2
	measure "$name" "s=\$EPOCHREALTIME; $cmd; e=\$EPOCHREALTIME; echo \"\$s \$e\" >'$work/fine'"
	local secs
	secs=$(awk '{printf "%.4f", $2 - $1}' "$work/fine")
	sed -i '$ s/^\([^ ]*\) [^ ]*/\1 '"$secs"'/' "$res/results.tsv"
	log "$name: $secs s (checkout alone)"
}
check_holds() { # SNAPSHOT-HASH-FILE: the working database holds it
	table_hashes app >"$work/now.txt"
	cmp -s "$work/now.txt" "$1" || { diff "$1" "$work/now.txt" >&2 || true; echo "error: database app does not hold the expected snapshot" >&2; exit 1; }
}
setcfg() { git config -f .git/dnadata/config.ini "$1" "$2" 2>/dev/null || printf '[database]\n%s = %s\n' "${1#*.}" "$2" >>.git/dnadata/config.ini; }

for scale in $scales; do
	cd "$work"
	dropdb --if-exists app
	for d in $(ours); do dropdb "$d"; done
	gen_db app "$scale"
	val "db_bytes_$scale" "$(q -d postgres -c "SELECT pg_database_size('app')")"
	new_repo "$work/repo-$scale" app
	git dnadata snapshot -q >/dev/null          # X on main, committed
	table_hashes app >"$work/X.txt"
	pg_dump -Fc -f "$work/X.dump" app
	git branch main2
	git checkout -q -b feature
	update_rows app "@key % 100 = 0" >/dev/null
	git dnadata snapshot -q >/dev/null          # Y on feature
	table_hashes app >"$work/Y.txt"

	for i in $(seq "$repeat"); do
		# cold: nothing of X on this machine but the store
		git checkout -q feature
		check_holds "$work/Y.txt"
		wait_jobs
		drop_copies spare tmpl stash
		rm -rf .git/dnadata/cache
		measure_fine "cold_$scale" "git checkout -q main"
		check_holds "$work/X.txt"
		dropdb --if-exists restored
		measure_fine "pg_restore_j2_$scale" "createdb restored && pg_restore -j2 -d restored '$work/X.dump'"
		dropdb restored

		# stash: feature (its stash of Y), main, feature again
		wait_jobs
		git checkout -q feature
		check_holds "$work/Y.txt"
		wait_jobs
		git checkout -q main
		check_holds "$work/X.txt"
		wait_jobs
		measure_fine "stash_$scale" "git checkout -q feature"
		check_holds "$work/Y.txt"

		# template: spares off, no stash of X, its template only
		wait_jobs
		setcfg database.spares 0
		drop_copies spare stash
		[ -n "$(copies tmpl)" ] || { echo "error: no template database after a restore" >&2; exit 1; }
		measure_fine "template_$scale" "git checkout -q main"
		check_holds "$work/X.txt"
		t=$(copies tmpl | head -n 1)
		rm -rf "$work/cp"
		measure_fine "cp_r_$scale" "cp -r '$(db_dir "$t")' '$work/cp'"
		rm -rf "$work/cp"

		# spare: spares on, back to feature (leaves X: its spare is made), stashes gone
		setcfg database.spares 2
		git checkout -q feature
		check_holds "$work/Y.txt"
		wait_spare
		drop_copies stash
		measure_fine "spare_$scale" "git checkout -q main"
		check_holds "$work/X.txt"
	done

	# no-op: main2 and main name the same snapshot
	wait_jobs
	mkdir -p "$work/nohooks"
	for i in $(seq "$nooprun"); do
		measure_fine "noop_hooks_$scale" "git checkout -q main2 && git checkout -q main"
		measure_fine "noop_plain_$scale" "git -c core.hooksPath='$work/nohooks' checkout -q main2 && git -c core.hooksPath='$work/nohooks' checkout -q main"
	done
	check_holds "$work/X.txt"
	cd "$work"
done
val scales "$scales"
val repeat "$repeat"

ms() { awk -v s="$1" 'BEGIN {printf "%.0f", s * 1000}'; }
{
	echo "$(sed -n 's/^host: //p' "$res/env.txt"); $(sed -n 's/^postgresql: //p' "$res/env.txt")."
	echo "$(sed -n 's/^git-dnadata: //p' "$res/env.txt"). Cluster: $bench_settings; drop_caches: $dropcache."
	echo "Each figure: the wall time of the whole \`git checkout\` (hooks included), median of $repeat run(s)"
	echo "(no-op: of $nooprun pairs of checkouts, per checkout)."
	echo
	echo "| measure | $(for s in $scales; do printf '%s MiB | ' "$(mib "$(eval echo "\$v_db_bytes_$s")")"; done)target | |"
	echo "|---|$(for s in $scales; do printf -- '---:|'; done)---|---|"
	row() { # LABEL NAME TARGET_MS: a time in ms per scale, and whether each is under the target
		local ok=met s line
		line="| $1 |"
		for s in $scales; do
			line="$line $(ms "$(med "$2_$s")") ms |"
			awk -v v="$(med "$2_$s")" -v t="$3" 'BEGIN {exit !(v * 1000 < t)}' || ok="**not met**"
		done
		echo "$line < $3 ms | $ok |"
	}
	row "switch to a cached snapshot, warm spare ready" spare 300
	row "switch back to a stashed branch database" stash 300
	line="| switch by template clone / \`cp -r\` of its files |" ok=met
	for s in $scales; do
		r=$(ratio "$(med "template_$s")" "$(med "cp_r_$s")")
		line="$line $(ms "$(med "template_$s")") / $(ms "$(med "cp_r_$s")") ms = $r× |"
		awk -v r="$r" 'BEGIN {exit !(r <= 1.2)}' || ok="**not met**"
	done
	echo "$line ≤ 1.2× | $ok |"
	line="| no-op checkout, added by the hooks |" ok=met
	for s in $scales; do
		a=$(awk -v h="$(med "noop_hooks_$s")" -v p="$(med "noop_plain_$s")" 'BEGIN {printf "%.1f", (h - p) * 1000 / 2}')
		line="$line $a ms ($(ms "$(med "noop_plain_$s")") ms per pair without) |"
		awk -v a="$a" 'BEGIN {exit !(a < 30)}' || ok="**not met**"
	done
	echo "$line < 30 ms | $ok |"
	line="| switch to a snapshot not on this machine / createdb + pg_restore -j2 |"
	for s in $scales; do
		line="$line $(ms "$(med "cold_$s")") / $(ms "$(med "pg_restore_j2_$s")") ms = $(ratio "$(med "cold_$s")" "$(med "pg_restore_j2_$s")")× |"
	done
	echo "$line (reported) | |"
	echo
	echo "Each switch was checked: the working database held the expected snapshot (rows and a hash of every row)."
} >"$res/summary.md"
cat "$res/summary.md"
echo "raw results: $res" >&2
