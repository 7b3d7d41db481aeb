#!/usr/bin/env bash
# bench/pg-bench.sh: snapshot and restore against their peers, same run,
# same throwaway cluster (run by hand; not part of the test suite).
#
#   bench/pg-bench.sh [SCALE]        (default 50; needs a built git-dnadata)
#
# Data: a pgbench database at SCALE (pgbench_accounts: SCALE x 100k rows)
# PLUS a table of poorly compressible, realistic content of similar size
# ("docs": random text, jsonb documents, bytea, timestamps, four secondary
# indexes). Measured, each under /usr/bin/time -v (wall time, peak RSS):
#   1. git dnadata snapshot (cold, local file:// store + local cache)
#   2. pg_dump -Fc > file
#   3. pg_dump -Fc | restic backup --stdin (fresh local repository)
#   4. after updating 1% of the rows of both tables in ten contiguous ranges:
#      second snapshot (time, bytes added to the store) and restic's second
#      backup (time, bytes added to its repository)
#   5. the same with 1% of rows scattered uniformly (every 100th row): the
#      worst case for any chunk-level dedupe
#   6. git dnadata restore --force vs pg_restore -j2 of the -Fc dump
# Prints a Markdown table to paste into docs/BENCHMARKS.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
scale=${1:-50}
[ -x "$top/git-dnadata" ] || { echo "error: build git-dnadata first" >&2; exit 1; }
export PATH="$top:$PATH"
. "$top/tests/pg.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/dd-pgbench.XXXXXX")
cleanup() {
	pg_cluster_stop "$work/pg" || true
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_cluster_start "$work/pg"
export PGHOST PGPORT PGUSER
psql() { "$DD_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
log() { echo "# $*" >&2; }

measure() { # name command...: wall seconds and peak RSS (KiB) into $work/<name>.m
	local name=$1
	shift
	sync
	/usr/bin/time -v -o "$work/$name.time" bash -c "$*" >"$work/$name.out" 2>"$work/$name.err" ||
		{ cat "$work/$name.err" >&2; echo "error: $name failed" >&2; exit 1; }
	local secs rss
	secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/$name.time")
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$name.time")
	echo "$secs $rss" >"$work/$name.m"
	log "$name: ${secs}s, peak RSS $((rss / 1024)) MiB"
}
secs() { cut -d' ' -f1 "$work/$1.m"; }
rss_mib() { echo $(($(cut -d' ' -f2 "$work/$1.m") / 1024)); }
du_b() { du -sb "$1" | cut -f1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }

log "generating: pgbench scale $scale + docs"
"$DD_PG_BINDIR/createdb" bench
"$DD_PG_BINDIR/pgbench" -q -i -s "$scale" bench >/dev/null 2>&1
ndocs=$((scale * 22000))
psql -d bench <<SQL
CREATE EXTENSION pgcrypto;
CREATE TABLE docs (id bigint PRIMARY KEY, title text NOT NULL, body text, meta jsonb, blob bytea,
	created timestamptz NOT NULL, updated timestamptz, author int, score float8);
INSERT INTO docs
SELECT i, 'doc ' || encode(gen_random_bytes(12), 'base64'),
	encode(gen_random_bytes(300), 'base64'),
	jsonb_build_object('k', (random() * 1000)::int, 'tags', jsonb_build_array(md5(i::text), (random() * 100)::int),
	                   'note', encode(gen_random_bytes(30), 'base64'), 'ok', random() > 0.5),
	gen_random_bytes(120),
	timestamptz '2020-01-01' + random() * interval '1500 days',
	timestamptz '2024-01-01' + random() * interval '300 days',
	(random() * 10000)::int, random()
FROM generate_series(1, $ndocs) i;
CREATE INDEX docs_created ON docs (created);
CREATE INDEX docs_author_updated ON docs (author, updated);
CREATE INDEX docs_k ON docs ((meta ->> 'k'));
CREATE INDEX docs_title ON docs (title);
VACUUM ANALYZE;
SQL
dbsize=$(psql -d bench -Atc "SELECT pg_database_size('bench')")
accounts=$(psql -d bench -Atc "SELECT pg_total_relation_size('pgbench_accounts')")
docs=$(psql -d bench -Atc "SELECT pg_total_relation_size('docs')")
log "database $(mib "$dbsize") MiB (accounts $(mib "$accounts") MiB, docs $(mib "$docs") MiB)"

git init -q -b main "$work/repo"
cd "$work/repo"
git config user.name bench && git config user.email bench@example.invalid
git dnadata init --store "file://$work/store" --database "dbname=bench" >/dev/null 2>&1
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$work/restic
restic init -q >/dev/null

measure snap1 "git dnadata snapshot --no-commit >/dev/null"
store1=$(du_b "$work/store")
measure pgdump "pg_dump -Fc -f '$work/bench.dump' bench"
dumpsize=$(du_b "$work/bench.dump")
measure restic1 "pg_dump -Fc bench | restic backup -q --stdin --stdin-filename bench.dump"
restic1=$(du_b "$work/restic")

# 1% of rows in ten contiguous ranges of each table
psql -d bench <<SQL
UPDATE pgbench_accounts SET abalance = abalance + 1
	WHERE (aid % ($scale * 10000)) < ($scale * 100) AND aid <= $scale * 100000;
UPDATE docs SET score = score + 1, updated = updated + interval '1 day'
	WHERE (id % ($ndocs / 10)) < ($ndocs / 1000);
SQL
measure snap2 "git dnadata snapshot --no-commit >/dev/null"
store2=$(du_b "$work/store")
measure restic2 "pg_dump -Fc bench | restic backup -q --stdin --stdin-filename bench.dump"
restic2=$(du_b "$work/restic")

# 1% scattered uniformly: every 100th row
psql -d bench <<SQL
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 0;
UPDATE docs SET score = score + 1 WHERE id % 100 = 0;
SQL
measure snap3 "git dnadata snapshot --no-commit >/dev/null"
store3=$(du_b "$work/store")

# restore: ours (the last snapshot) vs pg_restore -j2 of the first -Fc dump
measure restore "git dnadata restore --force --terminate >/dev/null"
"$DD_PG_BINDIR/createdb" restored
measure pgrestore "pg_restore -j2 -d restored '$work/bench.dump'"

add2=$((store2 - store1))
add3=$((store3 - store2))
radd2=$((restic2 - restic1))
cat <<EOF

Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM; PostgreSQL $(psql -d bench -Atc "SHOW server_version" | cut -d' ' -f1); restic $(restic version | cut -d' ' -f2).
Database: $(mib "$dbsize") MiB on disk (pgbench scale $scale: $(mib "$accounts") MiB; docs, $ndocs rows: $(mib "$docs") MiB).

| measure | git-dnadata | peer | ratio | target |
|---|---|---|---|---|
| cold snapshot, time | $(secs snap1) s | pg_dump -Fc: $(secs pgdump) s | $(ratio "$(secs snap1)" "$(secs pgdump)") | ≤ 1.0 |
| cold snapshot, time | $(secs snap1) s | pg_dump -Fc \| restic backup --stdin: $(secs restic1) s | $(ratio "$(secs snap1)" "$(secs restic1)") | ≤ 0.5 |
| cold snapshot, bytes stored | $(mib "$store1") MiB | -Fc dump $(mib "$dumpsize") MiB / restic repo $(mib "$restic1") MiB | $(ratio "$store1" "$dumpsize") | — |
| 2nd snapshot, 1% of rows in 10 ranges: bytes added | $(mib "$add2") MiB | first snapshot $(mib "$store1") MiB | $(ratio "$add2" "$store1") | ≤ 0.05 |
| same, vs restic's 2nd backup of a new -Fc dump | $(mib "$add2") MiB | restic added $(mib "$radd2") MiB | $(ratio "$add2" "$radd2") | ≤ 1.0 |
| 2nd snapshot, time | $(secs snap2) s | first snapshot $(secs snap1) s | $(ratio "$(secs snap2)" "$(secs snap1)") | ≤ 0.3 |
| 3rd snapshot, 1% of rows scattered (every 100th): bytes added | $(mib "$add3") MiB | first snapshot $(mib "$store1") MiB | $(ratio "$add3" "$store1") | (worst case) |
| 3rd snapshot, time | $(secs snap3) s | first snapshot $(secs snap1) s | $(ratio "$(secs snap3)" "$(secs snap1)") | — |
| restore, time | $(secs restore) s | pg_restore -j2: $(secs pgrestore) s | $(ratio "$(secs restore)" "$(secs pgrestore)") | ≤ 0.8 |
| peak RSS, snapshot / restore | $(rss_mib snap1) / $(rss_mib restore) MiB | pg_dump $(rss_mib pgdump) MiB, pg_restore $(rss_mib pgrestore) MiB | — | < 100 MiB |
EOF
