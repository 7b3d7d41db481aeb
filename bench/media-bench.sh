#!/usr/bin/env bash
# bench/media-bench.sh: a profile's media folder (issue 17) against restic,
# same run, same tree: capture (`git dnadata snapshot`, the database a
# one-row table) against `restic backup`, restore of the whole folder
# (`git dnadata restore` into an emptied folder) against `restic restore`,
# peak memory of each (/usr/bin/time), and a second capture after 1% of the
# files changed: its time against the first and the bytes it wrote (ours:
# the local cache's growth; restic: its repository's).
#
#   bench/media-bench.sh [FILES] [BYTES]     (default 10000 files, 1 GB)
#
# The tree: FILES files in folders of 100, sizes spread around BYTES/FILES
# (a tenth of the files 10x larger), content half text, half random (poorly
# compressible, like uploaded images next to text). Issue 17's targets:
# capture and restore <= 1.0x restic's time, peak memory < 100 MiB, the
# second capture writes < 2% of the first's bytes.
# Environment: DD_BIN (default ./git-dnadata), RUNS (default 1),
# DROPCACHE=yes (drop the page cache before each measurement; needs root),
# QUIET_WAIT (seconds to wait for idle CPUs before each, default 900).
# Results: bench/results/media-<date>/ (results.tsv, log.txt, summary.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
files=${1:-10000}
total=${2:-1000000000}
runs=${RUNS:-1}
dropcache=${DROPCACHE:-no}
ddbin=${DD_BIN:-$top/git-dnadata}
. "$top/bench/lib.sh"

if ! command -v restic >/dev/null; then
	echo "error: restic is missing: install it (apt-get install restic, or https://restic.net) and run again" >&2
	exit 1
fi
bench_setup media "media-$(date -u +%Y%m%dT%H%M%SZ)"
bench_env_header >"$res/env.txt"
echo "restic: $(restic version | head -n 1)" >>"$res/env.txt"
echo "tree: $files files, $total bytes" >>"$res/env.txt"
bench_cluster_start "$work/pg"
export RESTIC_PASSWORD=bench

# gen_tree DIR: the tree, written by one Python process (fast: no process per file)
gen_tree() {
	python3 - "$1" "$files" "$total" <<'PY'
import os, sys, random
root, n, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(17)
unit = total / (n * 1.9)  # 90% of size u, 10% of size 10u
text = b"".join(b"line %d of an uploaded document, lorem ipsum dolor sit amet\n" % i for i in range(20000))
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    size = int(unit * (10 if i % 10 == 0 else 1) * (0.5 + rnd.random()))
    half = size // 2
    off = rnd.randrange(0, len(text) - half - 1) if half < len(text) else 0
    with open(os.path.join(d, "f%05d.dat" % i), "wb") as f:
        f.write(text[off:off + half])
        f.write(os.urandom(size - half))
PY
}

# change_one_percent DIR: rewrite 1% of the files, drawn at random (large and small alike), same size, new random half
change_one_percent() {
	python3 - "$1" <<'PY'
import os, sys, random
root = sys.argv[1]
paths = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs)
for p in random.Random(1).sample(paths, max(1, len(paths) // 100)):
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(size - size // 2))
PY
}

tree=$work/tree
t0=$SECONDS
gen_tree "$tree"
log "generated $files files, $(mib "$(bytes "$tree")") MiB in $((SECONDS - t0)) s"
createdb bench_media
psql -d bench_media -c "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"

for run in $(seq "$runs"); do
	new_repo "$work/repo" bench_media
	printf 'media = %s\n' "$tree" >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	rm -rf "$work/restic" "$work/restic-out"
	restic init -q --repo "$work/restic" >/dev/null

	c0=$(cache_bytes "$work/repo")
	measure ours_capture "git dnadata snapshot --dump-only"
	c1=$(cache_bytes "$work/repo")
	measure restic_backup "restic backup -q --repo '$work/restic' '$tree'"
	r1=$(bytes "$work/restic")

	change_one_percent "$tree"
	measure ours_capture_1pct "git dnadata snapshot --dump-only"
	c2=$(cache_bytes "$work/repo")
	measure restic_backup_1pct "restic backup -q --repo '$work/restic' '$tree'"
	r2=$(bytes "$work/restic")
	echo "$run $((c1 - c0)) $((c2 - c1)) $r1 $((r2 - r1))" >>"$res/written.tsv"

	# the whole folder restored: ours into the emptied folder, restic into an empty one
	tree_sum=$(cd "$tree" && find . -type f -print0 | sort -z | xargs -0 cat | sha256sum)
	find "$tree" -mindepth 1 -delete
	measure ours_restore "git dnadata restore"
	[ "$(cd "$tree" && find . -type f -print0 | sort -z | xargs -0 cat | sha256sum)" = "$tree_sum" ] ||
		{ echo "error: the restored folder differs from the captured one" >&2; exit 1; }
	measure restic_restore "restic restore -q --repo '$work/restic' latest --target '$work/restic-out'"
	rm -rf "$work/restic-out"
	drop_stashes bench_media
	cd "$work"
done

written() { awk -v f="$1" '{print $f}' "$res/written.tsv" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
{
	echo "## media-bench: $files files, $(mib "$total") MiB ($(date -u +%F), $(nproc) cores)"
	echo
	echo "| step | git-dnadata | restic | ratio (ours/restic) | target |"
	echo "|---|---:|---:|---:|---|"
	echo "| capture | $(med ours_capture) s, $(rss ours_capture) MiB, CPU $(cpu ours_capture) s$(disturbed ours_capture) | $(med restic_backup) s, $(rss restic_backup) MiB, CPU $(cpu restic_backup) s | $(ratio "$(med ours_capture)" "$(med restic_backup)") | <= 1.0: $(verdict "$(ratio "$(med ours_capture)" "$(med restic_backup)")" 1.0) |"
	echo "| restore | $(med ours_restore) s, $(rss ours_restore) MiB, CPU $(cpu ours_restore) s$(disturbed ours_restore) | $(med restic_restore) s, $(rss restic_restore) MiB, CPU $(cpu restic_restore) s | $(ratio "$(med ours_restore)" "$(med restic_restore)") | <= 1.0: $(verdict "$(ratio "$(med ours_restore)" "$(med restic_restore)")" 1.0) |"
	echo "| 2nd capture, 1% changed | $(med ours_capture_1pct) s ($(pct "$(med ours_capture_1pct)" "$(med ours_capture)") of the first), wrote $(mib "$(written 3)") MiB ($(pct "$(written 3)" "$(written 2)")) | $(med restic_backup_1pct) s, wrote $(mib "$(written 5)") MiB ($(pct "$(written 5)" "$(written 4)")) | | < 2% of the bytes |"
	echo
	echo "Peak memory targets < 100 MiB: capture $(rss ours_capture) MiB, restore $(rss ours_restore) MiB."
	echo "CPU is user + sys of the client (median); on a busy machine it is steadier than the wall time."
	echo "Ours include the database's part (a one-row table): the dump on capture; on restore the switch of the"
	echo "database with the folder (a template clone or build, a few hundred ms), which restic does not do."
} | tee "$res/summary.md"
