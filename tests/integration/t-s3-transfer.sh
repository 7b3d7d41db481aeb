#!/usr/bin/env bash
# t-s3-transfer.sh: snapshot, push, fetch, pull and restore end to end, the
# real git-dnadata against the real S3 server (Ceph RGW): what a snapshot
# uploads is exactly what the bucket holds; a second clone joins, fetches
# and restores with the server out of reach; a store unreachable at
# snapshot time keeps the snapshot for a later push; an interrupted push or
# fetch (kill -9) resumes with only the rest; the fault proxy's resets,
# SlowDowns, delays and truncations change nothing in the data; a broken
# store setting ends fetch and pull in one clear line.
# needs: s3
. "$(dirname "$0")/../lib.sh"

MARKER=plaintext-marker-3f9a61c2
PREFIX=team/data
PASS="transfer pass"

# origin [ROWS [nopass]]: clone A ($T/a) on a fresh database $DB with a
# table t of ROWS rows (default 20000) carrying the marker, initialised on
# a fresh bucket $B, with a passphrase-protected key file unless "nopass"
# (Argon2id costs a second: clones then join with the key file); $URL is
# the store URL.
origin() {
	s3_env
	B=$(s3_bucket xfer)
	URL="s3://$B/$PREFIX"
	DB=$(pg_newdb s3a)
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT i, '$MARKER ' || md5(i::text) FROM generate_series(1, ${1:-20000}) i"
	new_repo "$T/a"
	if [ "${2:-}" = nopass ]; then
		expect_ok git dnadata init --database "dbname=$DB" --store "$URL"
	else
		DNADATA_PASSPHRASE=$PASS expect_ok git dnadata init --database "dbname=$DB" --store "$URL"
	fi
	assert_contains "$ERR" "created the store $URL"
}

# rows_md5 DB: the row count and a checksum of every row of every table of
# the public schema (names, then rows in order).
rows_md5() {
	local tables tb out=
	tables=$(psql_q "$1" "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
	for tb in $tables; do
		out+="$tb $(psql_q "$1" "SELECT count(*) || ' ' || coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '') FROM $tb x");"
	done
	echo "$out"
}

# clone NAME [keyfile]: a git clone of A in $T/NAME on its own fresh
# database $CDB (a table `keep` a restore replaces), set in its config.ini;
# joined to the store with the passphrase, or with a copy of A's key file;
# cwd is the clone.
clone() {
	git clone -q "$T/a" "$T/$1"
	cd "$T/$1"
	CDB=$(pg_newdb "s3$1")
	psql_q "$CDB" "CREATE TABLE keep (x int); INSERT INTO keep VALUES (42)"
	if [ "${2:-}" = keyfile ]; then
		install -m 600 "$T/a/.git/dnadata/key" "$T/$1.key"
		expect_ok git dnadata key import "$T/$1.key"
		DNADATA_DATABASE="dbname=$CDB" expect_ok git dnadata init
	else
		DNADATA_PASSPHRASE=$PASS DNADATA_DATABASE="dbname=$CDB" expect_ok git dnadata init
		assert_contains "$ERR" "joined the store $URL"
	fi
	printf '[profile "clean"]\ndatabase = dbname=%s\n' "$CDB" >>.git/dnadata/config.ini
}

# bucket_keys [DIR]: the keys of bucket $B under $PREFIX/ (or $PREFIX/DIR/),
# without the prefix, sorted, by one signed request straight to the server
# (awscli takes a second to start; the tests' stores hold under 1000 keys).
bucket_keys() {
	S3_CURL_ENDPOINT= s3_curl GET "/$B?list-type=2&prefix=${PREFIX//\//%2F}%2F${1:+$1%2F}"
	[ "$S3_STATUS" = 200 ] || fail "could not list $B (HTTP $S3_STATUS $S3_CODE, curl exit $S3_RC)"
	case $S3_BODY in *"<IsTruncated>true<"*) fail "the listing of $B is longer than a page" ;; esac
	printf '%s' "$S3_BODY" | grep -o '<Key>[^<]*</Key>' | sed "s|^<Key>$PREFIX/||; s|</Key>\$||" | LC_ALL=C sort || true
}

# bucket_count DIR: how many keys bucket_keys DIR lists (quick enough to poll).
bucket_count() {
	local keys
	keys=$(bucket_keys "$1")
	if [ -z "$keys" ]; then echo 0; else printf '%s\n' "$keys" | wc -l; fi
}

# The store's keys as they must be: the config, the key files the bucket
# holds, and every pack, index file and manifest this clone's cache wrote.
expected_keys() {
	{ cached_store_names; echo config; bucket_keys keys; } | LC_ALL=C sort
}

# store_setting KEY VALUE: set [store] KEY in this clone's config.ini
# (replacing an earlier value).
store_setting() {
	local f=.git/dnadata/config.ini
	sed -i "/^$1 = /d" "$f"
	grep -q '^\[store\]$' "$f" || printf '[store]\n' >>"$f"
	sed -i "/^\[store\]$/a $1 = $2" "$f"
}

# The numbers of the last summary line in $ERR ("push: sent 3 files (...)
# in 1.0 s; 2 already there (...); 1 snapshot, 9 requests", or "push:
# nothing to transfer (1 snapshot; 5 files already there; 0 requests)").
summary() { printf '%s\n' "$ERR" | grep -E '^(push|fetch): ' | tail -n 1; }
moved() { summary | sed -n 's/^[a-z]*: \(sent\|received\) \([0-9][0-9]*\) files\{0,1\} .*/\2/p'; }
already() { summary | sed -n 's/.* \([0-9][0-9]*\) \(files\{0,1\} \)\{0,1\}already there.*/\1/p'; }
requests() { summary | sed -n 's/.* \([0-9][0-9]*\) requests\{0,1\})\{0,1\}$/\1/p'; }

# The store files the cache of this clone holds (packs, index files and
# manifests it wrote), by their store names.
cached_store_names() {
	local d
	for d in packs index snapshots; do
		[ ! -d ".git/dnadata/cache/$d" ] || (cd .git/dnadata/cache && find "$d" -type f ! -name '.*')
	done
}

test_snapshot_uploads_exactly_its_files_and_a_second_push_sends_nothing() {
	origin
	expect_ok git dnadata snapshot
	local id=$OUT keys want
	[ ${#id} = 64 ] || fail "snapshot printed no id: [$OUT]"
	assert_not_contains "$ERR" "warning:"
	expect_ok git dnadata push
	assert_contains "$ERR" "push: nothing to transfer (1 snapshot;"
	[ "$(requests)" -le 1 ] || fail "a push with nothing to send made $(requests) requests: $ERR"
	keys=$(s3_ls "$B")
	assert_eq "" "$(printf '%s\n' "$keys" | grep -v "^$PREFIX/" || true)" "keys outside the store's prefix"
	assert_eq 1 "$(printf '%s\n' "$keys" | grep -c "^$PREFIX/keys/")" "one passphrase key file"
	want=$({ cached_store_names; echo config; printf '%s\n' "$keys" | grep "^$PREFIX/keys/" | sed "s|^$PREFIX/||"; } | LC_ALL=C sort)
	assert_eq "$want" "$(printf '%s\n' "$keys" | sed "s|^$PREFIX/||")" "the bucket differs from what the snapshot wrote"
	assert_eq "$want" "$(bucket_keys)" "the tests' own listing differs from awscli's"
	assert_contains "$want" "snapshots/$id"
	printf '%s\n' "$want" | grep -q '^packs/' || fail "no pack in the bucket: $want"
	printf '%s\n' "$want" | grep -q '^index/' || fail "no index file in the bucket: $want"
	# no plaintext: the marker is in every row
	s3_aws s3 cp --recursive "s3://$B/" "$T/bucket" >/dev/null
	assert_eq "$(printf '%s\n' "$keys" | wc -l)" "$(find "$T/bucket" -type f | wc -l)"
	if grep -rqa "$MARKER" "$T/bucket"; then fail "plaintext in the bucket"; fi
}

test_joined_clone_fetches_then_restores_with_the_server_out_of_reach_and_pull_does_both() {
	origin
	expect_ok git dnadata snapshot
	local id=$OUT sum
	sum=$(rows_md5 "$DB")
	clone b
	expect_ok git dnadata fetch
	assert_contains "$ERR" "fetch: received "
	[ "$(moved)" -ge 2 ] || fail "fetch received too little: $ERR"
	assert_file ".git/dnadata/cache/snapshots/$id"
	# the server out of reach: the cache holds everything the restore needs
	local dead
	dead=$(s3_dead_endpoint)
	store_setting endpoint "$dead"
	store_setting retries 0
	expect_fail 1 timeout 30 git dnadata fetch
	assert_contains "$ERR" "cannot reach the S3 store at $dead"
	expect_ok timeout 60 git dnadata restore
	assert_contains "$ERR" "restored snapshot ${id:0:12} into database $CDB"
	assert_eq "$sum" "$(rows_md5 "$CDB")" "clone b's database differs from a's"
	expect_ok git dnadata verify --offline --read-data
	# pull: fetch and restore in one go
	clone c keyfile
	assert_eq "" "$(cached_store_names)" "clone c's cache starts empty"
	expect_ok git dnadata pull
	assert_contains "$ERR" "fetch: received "
	assert_contains "$ERR" "restored snapshot ${id:0:12} into database $CDB"
	assert_eq "$sum" "$(rows_md5 "$CDB")" "clone c's database differs from a's"
}

# snapshot_kept_for_later: in clone A (cwd), with the store's endpoint dead
# in config.ini, the table changed, `snapshot` succeeds with exactly one
# warning (run `git dnadata push` later), commits the ref, and the bucket
# does not change; $ID2 is the new snapshot, $SUM2 its rows.
snapshot_kept_for_later() {
	local dead keys head
	keys=$(bucket_keys)
	head=$(git rev-parse HEAD)
	dead=$(s3_dead_endpoint)
	store_setting endpoint "$dead"
	psql_q "$DB" "UPDATE t SET v = 'offline edit ' || id WHERE id <= 100; INSERT INTO t VALUES (0, 'new row')"
	SUM2=$(rows_md5 "$DB")
	expect_ok timeout 60 git dnadata snapshot
	ID2=$OUT
	[ ${#ID2} = 64 ] || fail "snapshot printed no id: [$OUT]"
	assert_eq 1 "$(grep -c '^warning: ' "$T/.err")" "one warning line: $ERR"
	assert_contains "$(grep '^warning: ' "$T/.err")" "run \`git dnadata push\` when it is back"
	assert_eq "" "$(grep '^error: ' "$T/.err" || true)" "no error line"
	assert_eq "$ID2" "$(sed -n 's/^snapshot //p' .dnadata/refs/clean)" "the ref names the new snapshot"
	assert_ne "$head" "$(git rev-parse HEAD)" "the ref was not committed"
	assert_eq "" "$(git status --porcelain)" "the ref was not committed"
	assert_eq "$keys" "$(bucket_keys)" "the bucket changed while out of reach"
	# the endpoint back: push sends what the snapshot kept
	sed -i '/^endpoint = /d' .git/dnadata/config.ini
}

# restored_in_clone_b: a joined clone B restores $ID2 exactly ($SUM2).
restored_in_clone_b() {
	clone b keyfile
	expect_ok git dnadata restore
	assert_contains "$ERR" "restored snapshot ${ID2:0:12} into database $CDB"
	assert_eq "$SUM2" "$(rows_md5 "$CDB")" "clone b's database differs from a's"
}

test_snapshot_with_the_store_out_of_reach_is_kept_and_pushed_later() {
	origin
	expect_ok git dnadata snapshot
	local id1=$OUT before
	before=$(bucket_keys)
	snapshot_kept_for_later
	assert_ne "$id1" "$ID2"
	expect_ok git dnadata push
	assert_contains "$ERR" "push: sent "
	local after new
	after=$(bucket_keys)
	new=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after"))
	# what the push sent: the new packs, their index file and the manifest, as the cache holds them
	assert_eq "$(comm -13 <(printf '%s\n' "$before") <(cached_store_names | LC_ALL=C sort))" "$new" "the push sent other files"
	assert_contains "$new" "snapshots/$ID2"
	printf '%s\n' "$new" | grep -q '^packs/' || fail "the push sent no pack: $new"
	printf '%s\n' "$new" | grep -q '^index/' || fail "the push sent no index file: $new"
	assert_eq "$(printf '%s\n' "$new" | wc -l)" "$(moved)" "the summary counts what was sent"
	restored_in_clone_b
}

test_first_snapshot_right_after_init_with_the_store_out_of_reach_is_kept_and_pushed_later() {
	origin
	snapshot_kept_for_later
	assert_eq "$(printf '%s\n' config "$(bucket_keys keys)")" "$(bucket_keys)" "the bucket holds more than the store's config and key"
	expect_ok git dnadata push
	assert_contains "$ERR" "push: sent "
	assert_eq "$(expected_keys)" "$(bucket_keys)" "the bucket differs from what the snapshot wrote"
	restored_in_clone_b
}

# The packs in this clone's cache (a fresh clone's fetch brings whole packs), temporary files left out.
cached_packs() {
	if [ -d .git/dnadata/cache/packs ]; then find .git/dnadata/cache/packs -type f ! -name '.*' | wc -l; else echo 0; fi
}

# big_origin: origin() plus a table `big` of 40 MiB of random bytes (about
# 40 MiB of packs once compressed: hex text of random bytes halves), and a
# snapshot kept in the cache ($ID, $SUM); $NPACKS packs, $NINDEX index files.
big_origin() {
	origin 2000 nopass
	psql_q "$DB" "CREATE EXTENSION pgcrypto; CREATE TABLE big (id int PRIMARY KEY, b bytea);
		INSERT INTO big SELECT i, gen_random_bytes(1024) FROM generate_series(1, 40960) i;
		DROP EXTENSION pgcrypto"
	SUM=$(rows_md5 "$DB")
	expect_ok git dnadata snapshot --dump-only
	ID=$OUT
	NPACKS=$(cached_store_names | grep -c '^packs/')
	NINDEX=$(cached_store_names | grep -c '^index/')
	[ "$NPACKS" -ge 3 ] || fail "expected at least 3 packs, the snapshot wrote $NPACKS"
}

test_interrupted_push_and_fetch_resume_with_only_the_rest() {
	big_origin
	# one transfer at a time, each request held 0.5 s by the proxy: packs
	# land one by one, at least a second apart
	store_setting transfers 1
	s3_proxy_start 1.0 11 delay 0.5
	# git-dnadata itself, not `git dnadata`: git runs its subcommand as a child
	# process, and a kill -9 of git would leave that child uploading on
	git-dnadata push >push1.out 2>&1 </dev/null &
	local pid=$! i landed=0 rc
	for i in $(seq 1 3000); do
		landed=$(bucket_count packs)
		[ "$landed" -ge 1 ] && break
		kill -0 $pid 2>/dev/null || fail "the push ended before a pack reached the bucket: $(cat push1.out)"
		sleep 0.01
	done
	[ "$landed" -ge 1 ] || fail "no pack reached the bucket within 30 s: $(cat push1.out)"
	kill -0 $pid 2>/dev/null || fail "the push ended before it could be killed: $(cat push1.out)"
	kill -9 $pid
	wait $pid && rc=0 || rc=$?
	assert_eq 137 "$rc" "the push was not killed"
	s3_proxy_stop >/dev/null
	landed=$(bucket_count packs)
	tap_note "push killed with $landed of $NPACKS packs in the bucket"
	[ "$landed" -ge 1 ] && [ "$landed" -lt "$NPACKS" ] || fail "$landed of $NPACKS packs in the bucket after the kill"
	assert_eq 0 "$(bucket_count index)" "an index file before its packs"
	assert_eq 0 "$(bucket_count snapshots)" "a manifest before its packs"
	sed -i '/^transfers = /d' .git/dnadata/config.ini
	expect_ok git dnadata push
	assert_contains "$ERR" "push: sent "
	assert_eq "$landed" "$(already)" "the rerun found exactly the packs sent before the kill"
	assert_eq $((NPACKS - landed + NINDEX + 1)) "$(moved)" "the rerun sent the rest: packs, index files, manifest"
	# one listing of packs/ instead of a HEAD per pack: the puts, plus the config read, the manifest check, the
	# listing; and the store lock's 6 (issue 20): put ours, list locks/, read the killed push's (stale: its pid is
	# gone), list index/ under the lock, check ours is still there before the manifest, delete ours
	assert_eq $((NPACKS - landed + NINDEX + 1 + 3 + 6)) "$(requests)" "the rerun's requests: $ERR"
	# the killed push's store lock stays (stale: its pid is gone) until a gc removes it; the rerun's is gone
	assert_eq 1 "$(bucket_keys locks | wc -l)" "the lock files left: $(bucket_keys locks)"
	assert_eq "$(expected_keys)" "$(bucket_keys | grep -v '^locks/')" "the bucket differs from what the snapshot wrote"
	expect_ok git dnadata push
	assert_contains "$ERR" "push: nothing to transfer"
	interrupted_fetch_resumes
}

# interrupted_fetch_resumes: in a joined clone B of big_origin()'s (pushed)
# snapshot, a fetch killed once a whole pack reached the cache, rerun, keeps
# the packs it has and downloads only the rest, starting over a pack that
# was cut off mid-download (its temp file, left by kill -9, holds a prefix
# or garbage: here garbage, for sure); the restore is exact and verify
# --read-data passes.
interrupted_fetch_resumes() {
	clone b keyfile
	store_setting transfers 1
	s3_proxy_start 1.0 12 delay 0.3
	git-dnadata fetch >fetch1.out 2>&1 </dev/null & # (not `git dnadata`: see above)
	local pid=$! i got=0 rc kept missing tmp
	for i in $(seq 1 3000); do
		got=$(cached_packs)
		[ "$got" -ge 1 ] && break
		kill -0 $pid 2>/dev/null || fail "the fetch ended before a pack reached the cache: $(cat fetch1.out)"
		sleep 0.01
	done
	[ "$got" -ge 1 ] || fail "no pack reached the cache within 30 s: $(cat fetch1.out)"
	kill -0 $pid 2>/dev/null || fail "the fetch ended before it could be killed: $(cat fetch1.out)"
	kill -9 $pid
	wait $pid && rc=0 || rc=$?
	assert_eq 137 "$rc" "the fetch was not killed"
	s3_proxy_stop >/dev/null
	got=$(cached_packs)
	[ "$got" -lt "$NPACKS" ] || fail "the fetch was not interrupted: $got of $NPACKS packs cached"
	kept=$(cd .git/dnadata/cache && find packs -type f ! -name '.*' -printf '%i %P\n' | LC_ALL=C sort)
	# a pack cut off mid-download: garbage in its temp file
	missing=$(comm -23 <(cd "$T/a/.git/dnadata/cache" && find packs -type f ! -name '.*' | LC_ALL=C sort) \
		<(cd .git/dnadata/cache && find packs -type f ! -name '.*' | LC_ALL=C sort) | head -n 1)
	tmp=.git/dnadata/cache/$(dirname "$missing")/.$(basename "$missing").fetch
	mkdir -p "$(dirname "$tmp")"
	head -c 300000 /dev/urandom >"$tmp"
	sed -i '/^transfers = /d' .git/dnadata/config.ini
	expect_ok git dnadata fetch
	assert_contains "$ERR" "fetch: received "
	tap_note "fetch killed with $got of $NPACKS packs in the cache"
	[ "$(already)" -ge 1 ] || fail "the rerun found none of the objects fetched before the kill: $ERR"
	[ "$(moved)" -ge 1 ] || fail "the fetch was not interrupted: $ERR"
	assert_eq "" "$(comm -23 <(printf '%s\n' "$kept") <(cd .git/dnadata/cache && find packs -type f ! -name '.*' -printf '%i %P\n' | LC_ALL=C sort))" "a pack cached before the kill was fetched again"
	assert_eq "$NPACKS" "$(cached_packs)" "the rerun did not bring every pack"
	assert_eq 0 "$(find .git/dnadata/cache/packs -name '.*' | wc -l)" "a temp file was left in the cache"
	cmp -s "$T/a/.git/dnadata/cache/$missing" ".git/dnadata/cache/$missing" || fail "$missing differs from clone a's"
	expect_ok git dnadata fetch
	assert_contains "$ERR" "fetch: nothing to transfer"
	store_setting endpoint "$(s3_dead_endpoint)"
	expect_ok git dnadata restore
	assert_contains "$ERR" "restored snapshot ${ID:0:12} into database $CDB"
	assert_eq "$SUM" "$(rows_md5 "$CDB")" "clone b's database differs from a's"
	sed -i '/^endpoint = /d' .git/dnadata/config.ini
	expect_ok git dnadata verify --read-data
}

# A fresh clone fetches whole packs, each checked against its name: a pack
# whose bytes were altered in the bucket is not cached (no temp file is
# left either); the objects needed from it are read one by one, which names
# the damaged one, and the other packs arrive whole.
test_fetch_of_a_pack_damaged_in_the_bucket_is_refused_and_not_cached() {
	big_origin
	expect_ok git dnadata push
	local pack
	pack=$(bucket_keys packs | head -n 1)
	# same key, one byte changed inside the pack's first object (the server takes it: the PUT's own hash matches)
	s3_aws s3 cp "s3://$B/$PREFIX/$pack" "$T/pack" >/dev/null
	flip_byte "$T/pack" 100
	s3_aws s3 cp "$T/pack" "s3://$B/$PREFIX/$pack" >/dev/null
	clone b keyfile
	expect_fail 1 git dnadata fetch
	assert_contains "$ERR" "warning: $pack in the store $URL is damaged (its bytes do not hash to its name): not cached"
	assert_contains "$ERR" "$pack of the store $URL"
	assert_eq 1 "$(grep -c '^error: ' <<<"$ERR")" "one error line: $ERR"
	assert_no_file ".git/dnadata/cache/$pack"
	assert_eq 0 "$(find .git/dnadata/cache/packs -name '.*' | wc -l)" "a temp file was left in the cache"
	assert_eq $((NPACKS - 1)) "$(cached_packs)" "the other packs were not fetched whole"
}

# The fault proxy at 10% (docs/RELIABILITY.md): a snapshot of 16 MiB of
# random bytes (whole-pack GETs, bodies cut mid-way) and 20
# more snapshots each adding a small table, so the ref's snapshot needs 21
# packs and index files: push, fetch and pull make some 150 requests, about
# 15 of them failed and a few delayed (every kind of fault, with this seed).
# The counts are shown as TAP notes.
test_push_fetch_and_pull_through_a_faulty_proxy_are_exact() {
	origin 2000
	psql_q "$DB" "CREATE EXTENSION pgcrypto; CREATE TABLE noise (id int PRIMARY KEY, b bytea);
		INSERT INTO noise SELECT i, gen_random_bytes(1024) FROM generate_series(1, 16384) i;
		DROP EXTENSION pgcrypto"
	local sum id i
	expect_ok git dnadata snapshot --dump-only
	for i in $(seq 1 20); do
		psql_q "$DB" "CREATE TABLE s$i (id int PRIMARY KEY, v text);
			INSERT INTO s$i SELECT g, md5(g::text || '$i') FROM generate_series(1, 300) g"
		expect_ok git dnadata snapshot --dump-only
	done
	id=$OUT
	sum=$(rows_md5 "$DB")
	# every request from here on through the proxy: one in ten gets a fault
	# (reset before or after the server saw it, reset or cut mid-response,
	# 503 SlowDown, a delay, a body cut short behind a whole Content-Length)
	s3_proxy_start 0.1 20261129
	expect_ok timeout 120 git dnadata push
	assert_contains "$ERR" "push: sent "
	clone b
	expect_ok timeout 120 git dnadata fetch
	assert_contains "$ERR" "fetch: received "
	store_setting endpoint "$(s3_dead_endpoint)"
	expect_ok git dnadata restore
	assert_contains "$ERR" "restored snapshot ${id:0:12} into database $CDB"
	assert_eq "$sum" "$(rows_md5 "$CDB")" "clone b's database differs from a's"
	clone c keyfile
	expect_ok timeout 120 git dnadata pull
	assert_contains "$ERR" "fetch: received "
	assert_contains "$ERR" "restored snapshot ${id:0:12} into database $CDB"
	assert_eq "$sum" "$(rows_md5 "$CDB")" "clone c's database differs from a's"
	s3_proxy_stop >/dev/null
	tap_note "fault proxy: $(tr '\n' ' ' <"$DD_S3_PROXY_STATS")"
	local k faults=0
	for k in reset_before reset_after reset_mid slowdown truncate; do
		faults=$((faults + $(s3_proxy_stat $k)))
	done
	tap_note "10% fault rate: $(s3_proxy_stat requests) requests, $((faults + $(s3_proxy_stat delay))) faults injected ($faults failures, $(s3_proxy_stat delay) delays)"
	[ "$(s3_proxy_stat requests)" -ge 120 ] || fail "only $(s3_proxy_stat requests) requests went through the proxy"
	[ "$faults" -ge 8 ] || fail "the proxy injected only $faults failures: $(cat "$DD_S3_PROXY_STATS")"
	# nothing extra in the bucket (a PUT retried after it took effect is not stored twice): the
	# ref's snapshot and every pack and index file (each holds a table it needs)
	cd "$T/a"
	assert_eq "$({ expected_keys | grep -v '^snapshots/'; echo "snapshots/$id"; } | LC_ALL=C sort)" "$(bucket_keys)" \
		"the bucket differs from what the snapshots wrote"
	expect_ok git dnadata verify --read-data
}

# fetch_and_pull_are_refused TEXT [VAR=VALUE...]: (@B@ in TEXT: the bucket)
# in a clone of an origin with one snapshot, with the environment changed as
# given, `fetch` and `pull` each fail within seconds with one error line
# containing TEXT and no credential, and change nothing: first in a fresh
# clone (its cache empty), then once it has fetched (its cache knows the
# store's config and asks nothing of the store until the listing) and git
# brought it a newer snapshot.
fetch_and_pull_are_refused() {
	local text=$1
	shift
	origin 2000 nopass
	expect_ok git dnadata snapshot
	text=${text//@B@/$B}
	clone b keyfile
	assert_eq 42 "$(psql_q "$CDB" "SELECT x FROM keep")"
	refused "$text" "$@"
	expect_ok git dnadata fetch
	cd "$T/a"
	psql_q "$DB" "UPDATE t SET v = 'changed' WHERE id = 1"
	expect_ok git dnadata snapshot
	cd "$T/b"
	git pull -q --ff-only
	refused "$text" "$@"
}

# refused TEXT [VAR=VALUE...]: fetch and pull fail as said above.
refused() {
	local text=$1 cmd ref head cache db
	shift
	ref=$(cat .dnadata/refs/clean)
	head=$(git rev-parse HEAD)
	cache=$(cache_files)
	db=$(rows_md5 "$CDB")
	for cmd in fetch pull; do
		env "$@" timeout 15 git dnadata $cmd >"$T/.out" 2>"$T/.err" </dev/null && RC=0 || RC=$?
		ERR=$(cat "$T/.err")
		assert_ne 0 "$RC" "$cmd should fail"
		assert_ne 124 "$RC" "$cmd did not end within 15 s"
		assert_eq 1 "$(grep -c '^error: ' "$T/.err")" "$cmd: one error line: $ERR"
		assert_contains "$(grep '^error: ' "$T/.err")" "$text" "$cmd"
		assert_eq "" "$(grep -v '^\(error\|hint\): ' "$T/.err" || true)" "$cmd: only the error and its hint"
		no_credentials_in "$ERR$(cat "$T/.out")" "$@"
		assert_eq "$cache" "$(cache_files)" "$cmd changed the cache"
		assert_eq "$ref" "$(cat .dnadata/refs/clean)" "$cmd changed the ref file"
		assert_eq "$head" "$(git rev-parse HEAD)" "$cmd made a commit"
		assert_eq "$db" "$(rows_md5 "$CDB")" "$cmd changed the database"
	done
}

# Every file of this clone's cache.
cache_files() {
	find .git/dnadata -path '*/cache/*' -type f | LC_ALL=C sort
}

test_fetch_and_pull_with_a_wrong_secret_fail_in_one_line_naming_the_variable() {
	fetch_and_pull_are_refused "S3 rejected the signature for bucket @B@ (SignatureDoesNotMatch): check AWS_SECRET_ACCESS_KEY" \
		AWS_SECRET_ACCESS_KEY="${DD_S3_SECRET_KEY%????}Wxyz"
}

test_fetch_and_pull_with_an_unknown_access_key_fail_in_one_line_naming_the_variable() {
	fetch_and_pull_are_refused "does not know the access key (InvalidAccessKeyId): check AWS_ACCESS_KEY_ID" \
		AWS_ACCESS_KEY_ID=AKIADDUNKNOWNKEY0000
}

test_fetch_and_pull_from_a_missing_bucket_fail_in_one_line_naming_it() {
	fetch_and_pull_are_refused "bucket no-such-bucket-$$ does not exist (NoSuchBucket) at $DD_S3_ENDPOINT: create it or fix the store URL" \
		DNADATA_STORE="s3://no-such-bucket-$$/$PREFIX"
}

test_fetch_and_pull_with_the_server_down_fail_in_one_line_quickly() {
	local dead
	dead=$(s3_dead_endpoint)
	fetch_and_pull_are_refused "cannot reach the S3 store at $dead (connection refused)" AWS_ENDPOINT_URL="$dead"
}

run_tests
