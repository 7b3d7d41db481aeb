#!/usr/bin/env bash
# t-tamper.sh: a store tampered with by whoever can write it (issue 20,
# docs/FORMAT.md §8): flipped bits and truncation of an object, a pack, an
# index file, a manifest and the store config; two packs or two manifests
# swapped (names exchanged); a manifest or an index file
# replaced by another valid one; a delta whose base was swapped for another
# valid object; an edited ref file. Each is detected by `verify --read-data`
# and by `restore`, named (object id, pack, index file or snapshot), with a
# non-zero exit, and nothing is restored: the working database (and its
# copies) and the media folder stay as they were. A wrong key says so, never
# "damaged". The S3 test does the same to the bucket's copies, read with
# ranged GETs. Cases covered elsewhere (not repeated here): t-store.sh (wrong
# passphrase, no key, a ref naming a missing snapshot for verify),
# t-delta.sh (a missing or damaged delta base), t-s3-repair.sh and
# t-s3-transfer.sh (a pack damaged in the bucket, for verify and fetch),
# t-push.sh (a damaged object in a fetched run; a torn cached copy),
# tests/unit/test-store.c, test-pack.c and test-keys.c (the formats'
# parsers: a forged pack header, a swapped object under a valid header).
# needs: s3
. "$(dirname "$0")/../lib.sh"

export DNADATA_SKIP=1 # no hook switches on checkout here

MEDIA=var/uploads
CACHE=.git/dnadata/cache
TOUCHED=

# make_rows DB ROWS: table t of ROWS rows (~220 bytes each)
make_rows() {
	psql_q "$1" "CREATE TABLE t (id int PRIMARY KEY, doc jsonb, note text);
		INSERT INTO t SELECT i, jsonb_build_object('n', i, 'tag', md5(i::text)),
			md5((i * 7)::text) || ' ' || md5((i * 13)::text) || ' ' || repeat(chr(97 + i % 26), i % 40)
		FROM generate_series(1, $2) i; ANALYZE"
}

# update_rows DB GEN: 1% of the rows, scattered (every 100th key): the next snapshot stores deltas
update_rows() {
	psql_q "$1" "UPDATE t SET doc = jsonb_set(doc, '{n}', to_jsonb(id * $2)),
		note = md5((id * $2)::text) || substr(note, 33) WHERE id % 100 = 0"
}

# tree DIR: every entry with its type, mode, size and content hash
tree() {
	(
		cd "$1"
		find . -mindepth 1 \( -type d -printf '%P %y %m\n' \) -o \( -type f -printf '%P %y %m %s\n' \) | LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
	)
}

# origin [nomedia]: repository A ($T/a) on database $DB (table t) with a media folder (unless
# "nomedia"), in the file store $T/store (no passphrase); snapshot $ID1, then 1% of the rows
# updated, the schema changed and a media file added: snapshot $ID2 (the ref at HEAD; its changed
# chunks are deltas against $ID1's). $PACKS1 / $INDEX1: the store's packs and index files of $ID1.
origin() {
	DB=$(pg_newdb tamper)
	make_rows "$DB" 8000
	new_repo "$T/a"
	expect_ok git dnadata init --database "dbname=$DB" --store "file://$T/store"
	if [ "${1:-}" != nomedia ]; then
		printf 'media = %s\n' "$MEDIA" >>.dnadata/profiles.ini
		git commit -qm media .dnadata/profiles.ini
		mkdir -p "$MEDIA/docs"
		printf 'first file\n' >"$MEDIA/a.txt"
		head -c 300000 /dev/urandom >"$MEDIA/docs/b.bin"
	fi
	expect_ok git dnadata snapshot
	ID1=$OUT
	PACKS1=$(cd "$T/store" && find packs -type f | LC_ALL=C sort)
	INDEX1=$(cd "$T/store" && find index -type f | LC_ALL=C sort)
	update_rows "$DB" 3
	psql_q "$DB" "COMMENT ON TABLE t IS 'second'; CREATE INDEX t_note ON t (note)"
	[ "${1:-}" = nomedia ] || printf 'second file\n' >"$MEDIA/c.txt"
	expect_ok git dnadata snapshot
	ID2=$OUT
	assert_ne "$ID1" "$ID2"
}

# clone_b: clone B ($T/b, cwd) of A on its own database $CDB, joined with A's key file, working
# database and media folder restored to $ID1 (at HEAD~1), then back at HEAD (ref $ID2) without
# restoring; $STATE is what must not change ($T/store.good: the store as written).
clone_b() {
	git clone -q "$T/a" "$T/b"
	cd "$T/b"
	CDB=$(pg_newdb tamperb)
	install -m 600 "$T/a/.git/dnadata/key" "$T/b.key"
	expect_ok git dnadata key import "$T/b.key"
	DNADATA_DATABASE="dbname=$CDB" expect_ok git dnadata init
	printf '[profile "clean"]\ndatabase = dbname=%s\n' "$CDB" >>.git/dnadata/config.ini
	git checkout -q HEAD~1
	expect_ok git dnadata restore
	assert_contains "$ERR" "restored snapshot ${ID1:0:12}"
	git checkout -q main
	STATE=$(state)
	cp -a "$T/store" "$T/store.good"
}

# What a refused restore must leave alone: the working database's rows, its copies (templates,
# stashes; but $NEW_TMPL, a template a restore may keep of a snapshot whose database part was
# whole), the media folder, the ref file and HEAD.
state() {
	"$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$CDB" <<SQL | grep -vx "${NEW_TMPL:-}"
SELECT 'rows ' || count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id)) FROM t;
SELECT 'comment ' || coalesce(obj_description('t'::regclass), '');
SELECT datname FROM pg_database WHERE datname LIKE '$CDB%' ORDER BY 1;
SQL
	[ ! -d "$MEDIA" ] || tree "$MEDIA"
	cat .dnadata/refs/clean
	git rev-parse HEAD
}

# empty_cache: B's cache holds nothing of the store (its private snapshots stay): every read
# (the store config too) goes to the store.
empty_cache() {
	rm -rf "$CACHE"/{packs,index,snapshots,data,used,config,config-url} "$CACHE"/known-objects-*
}

# put_back: the store as it was written (the files writable() was given)
put_back() {
	local f
	for f in $TOUCHED; do
		rm -f "$f"
		cp -p "$T/store.good/${f#"$T/store/"}" "$f"
	done
	TOUCHED=
}

# writable FILE...: each store file writable (they are 0444; the suite may not run as root),
# and put back by put_back
writable() {
	chmod u+w "$@"
	TOUCHED+=" $*"
}

# swap A B: exchange the contents of two files (their names exchanged)
swap() {
	writable "$1" "$2"
	mv "$1" "$T/.swap" && mv "$2" "$1" && mv "$T/.swap" "$2"
}

# refused CASE TEXT...: in B with an empty cache, `verify --read-data` and `restore` each fail
# with exit 1, one error line, every TEXT in their output, nothing named "another key"; the
# restore changed nothing (state); then the store is put back. $VERR / $RERR: their stderr.
refused() {
	both_refuse "$@"
	assert_not_contains "$VERR$RERR" "another key" "$1"
	put_back
}

# both_refuse CASE TEXT...: the checks refused and refused_s3 share (the store is not put back).
both_refuse() {
	local what=$1 t
	shift
	empty_cache
	expect_fail 1 git dnadata verify --read-data
	VERR=$ERR
	empty_cache
	expect_fail 1 git dnadata restore
	RERR=$ERR
	for t in "$@"; do
		assert_contains "$VERR" "$t" "$what: verify does not name it"
		assert_contains "$RERR" "$t" "$what: restore does not name it"
	done
	assert_eq "$STATE" "$(state)" "$what: the refused restore changed something"
	tap_note "$what: $(grep '^error: ' <<<"$RERR" | cut -c1-200)"
}

# The object id a restore's error names ("object data/xx/<64 hex>"), as "data/xx/<hex>".
object_named() {
	grep -o 'data/[0-9a-f][0-9a-f]/[0-9a-f]\{64\}' <<<"$1" | head -n 1
}

# A pack of $ID2 only (not one of $ID1's), and one of $ID1's
pack2() { (cd "$T/store" && find packs -type f | LC_ALL=C sort) | grep -vxF "$PACKS1" | head -n 1; }
pack1() { head -n 1 <<<"$PACKS1"; }
index2() { (cd "$T/store" && find index -type f | LC_ALL=C sort) | grep -vxF "$INDEX1" | head -n 1; }

test_damaged_truncated_or_swapped_packs_index_files_and_manifests_are_named_and_nothing_is_restored() {
	origin
	clone_b
	local p1 p2 size obj
	p1=$(pack1) p2=$(pack2)
	[ -n "$p1" ] && [ -n "$p2" ] || fail "expected a pack of each snapshot: [$p1] [$p2]"
	# a flipped bit inside the first object of a pack $ID2 needs
	writable "$T/store/$p2"
	flip_byte "$T/store/$p2" 100
	refused "flipped bit in an object" "$p2"
	obj=$(object_named "$RERR")
	[ -n "$obj" ] || fail "restore names no object: $RERR"
	assert_contains "$VERR" "object $obj" "verify names the object restore names"
	assert_contains "$VERR" "SHA-256 does not match its name"
	# truncated to half: plain verify sees the size, verify --read-data and restore name the pack
	size=$(stat -c %s "$T/store/$p2")
	writable "$T/store/$p2"
	truncate -s $((size / 2)) "$T/store/$p2"
	empty_cache
	expect_fail 1 git dnadata verify
	assert_contains "$ERR" "(its pack $p2 is truncated to $((size / 2)) bytes)"
	refused "truncated pack" "$p2"
	# two packs swapped (names exchanged)
	swap "$T/store/$p1" "$T/store/$p2"
	refused "two packs swapped" "packs/" "damaged"
	assert_contains "$VERR" "its pack $p1 is"
	assert_contains "$VERR" "its pack $p2 is"
	local m1=snapshots/$ID1 m2=snapshots/$ID2 i1 i2
	i1=$(head -n 1 <<<"$INDEX1") i2=$(index2)
	[ -n "$i1" ] && [ -n "$i2" ] || fail "expected an index file of each snapshot: [$i1] [$i2]"
	# the manifest: a flipped bit, truncated, replaced by another snapshot's, the two swapped
	size=$(stat -c %s "$T/store/$m2")
	writable "$T/store/$m2"
	flip_byte "$T/store/$m2" $((size / 2))
	refused "flipped bit in a manifest" "$ID2" "damaged"
	writable "$T/store/$m2"
	truncate -s $((size - 1)) "$T/store/$m2"
	refused "truncated manifest" "$ID2" "damaged"
	writable "$T/store/$m2"
	cp "$T/store/$m1" "$T/store/$m2"
	refused "manifest replaced by another snapshot's" "$ID2" "authentication failed"
	swap "$T/store/$m1" "$T/store/$m2"
	refused "two manifests swapped" "$ID2" "authentication failed"
	# an index file of $ID2: a flipped bit, truncated, replaced by $ID1's (swapping two is the
	# same: each is then another's bytes under its name); its packs' objects then count as
	# absent: the index file is named, and the object restore wants
	size=$(stat -c %s "$T/store/$i2")
	writable "$T/store/$i2"
	flip_byte "$T/store/$i2" $((size / 2))
	refused "flipped bit in an index file" "index file $i2"
	writable "$T/store/$i2"
	truncate -s $((size / 2)) "$T/store/$i2"
	refused "truncated index file" "index file $i2"
	writable "$T/store/$i2"
	cp "$T/store/$i1" "$T/store/$i2"
	refused "index file replaced by another's" "index file $i2" "authentication failed"
	# a flipped bit in a pack's encrypted header (the last bytes): verify names the pack; restore
	# reads objects by the index files, each authenticated, so the data it restores is exact
	size=$(stat -c %s "$T/store/$p1")
	writable "$T/store/$p1"
	flip_byte "$T/store/$p1" $((size - 20))
	empty_cache
	expect_fail 1 git dnadata verify --read-data
	assert_contains "$ERR" "its pack $p1 is damaged"
	empty_cache
	expect_ok git dnadata restore
	assert_contains "$ERR" "restored snapshot ${ID2:0:12}"
	assert_eq "$(psql_q "$DB" "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM t")" \
		"$(psql_q "$CDB" "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM t")" "restored exactly"
}

# An edited ref file: another snapshot id (one the store does not hold), or a malformed one. The
# store config: each line's damage is named as damage, never as another key; truncated; and verify
# finds it even when this clone's cache holds a good copy (which every other command uses). A
# wrong key is named as such.
test_edited_refs_a_damaged_store_config_and_a_wrong_key_are_named_and_nothing_is_restored() {
	origin
	clone_b
	local ref line off
	ref=$(cat .dnadata/refs/clean)
	# (the edit is committed: restore reads the ref at HEAD)
	sed -i "s/^snapshot .*/snapshot $(printf '5a%.0s' $(seq 32))/" .dnadata/refs/clean
	git commit -qam "edited ref"
	STATE=$(state)
	refused "ref naming an unknown snapshot" "snapshot 5a5a5a5a5a5a" "is missing"
	sed -i "s/^snapshot .*/snapshot ${ID2:0:63}g/" .dnadata/refs/clean
	git commit -qam "edited ref"
	STATE=$(state)
	refused "malformed ref" "refs/clean:2: malformed snapshot id"
	printf '%s\n' "$ref" >.dnadata/refs/clean
	git commit -qam "ref back"
	STATE=$(state)
	for line in key-id chunker mac; do
		off=$(grep -b "^$line " "$T/store/config" | cut -d: -f1)
		writable "$T/store/config"
		if [ $line = key-id ]; then
			# another valid key id (a flipped bit may make a character that is not hex)
			sed -i '2s/^key-id 0/key-id X/; 2s/^key-id [1-9a-f]/key-id 0/; 2s/^key-id X/key-id 1/' "$T/store/config"
		else
			flip_byte "$T/store/config" $((off + ${#line} + 5))
		fi
		refused "changed $line line in the config" "store config" "damaged"
	done
	writable "$T/store/config"
	truncate -s 100 "$T/store/config"
	refused "truncated config" "store config" "damaged"
	# this clone's cache holds the config: verify still checks the store's own
	expect_ok git dnadata verify
	writable "$T/store/config"
	flip_byte "$T/store/config" 120
	expect_fail 1 git dnadata verify
	assert_contains "$ERR" "store config"
	assert_contains "$ERR" "damaged"
	put_back
	# a wrong key (another store's): said so, never "damaged" or "corrupt"
	mkdir "$T/other" && (cd "$T/other" && git init -q && git dnadata init --store "file://$T/other-store" >/dev/null 2>&1) ||
		fail "cannot make another store"
	install -m 600 "$T/other/.git/dnadata/key" .git/dnadata/key
	for cmd in "verify --read-data" restore status fetch; do
		run git dnadata $cmd
		if [ "$cmd" != status ]; then # (status reads no store)
			assert_eq 1 "$RC" "$cmd with a wrong key"
			assert_contains "$OUT$ERR" "belongs to another key" "$cmd"
		fi
		assert_not_contains "$OUT$ERR" "damaged" "$cmd"
		assert_not_contains "$OUT$ERR" "corrupt" "$cmd"
		assert_not_contains "$OUT$ERR" "tampered" "$cmd"
	done
	assert_eq "$STATE" "$(state)" "a wrong key changed something"
	# the right key back: all is well
	install -m 600 "$T/b.key" .git/dnadata/key
	expect_ok git dnadata verify --read-data
	expect_ok git dnadata restore
	assert_contains "$ERR" "restored snapshot ${ID2:0:12}"
}

# A delta object whose base was swapped for another valid object (the loose copies of two bases in
# the cache exchanged, with the store no longer holding the bases): named, nothing restored.
test_delta_with_its_base_swapped_for_another_object_is_named_and_nothing_is_restored() {
	origin nomedia
	clone_b
	local bases b1 b2 p
	# B's cache holds $ID1's objects (its restore read them) and, fetched, $ID2's: the bases now
	# live only there
	expect_ok git dnadata fetch
	for p in $PACKS1; do rm -f "$T/store/$p"; done
	run git dnadata verify
	bases=$(grep -o 'missing object data/[0-9a-f/]* (the delta base of' <<<"$ERR" | cut -d' ' -f3 | LC_ALL=C sort -u)
	[ "$(wc -l <<<"$bases")" -ge 2 ] || fail "expected two delta bases or more: $ERR"
	b1=$(sed -n 1p <<<"$bases") b2=$(sed -n 2p <<<"$bases")
	assert_file "$CACHE/$b1"
	assert_file "$CACHE/$b2"
	swap "$CACHE/$b1" "$CACHE/$b2"
	# (verify first: a restore removes a damaged cached copy before it asks the store for another)
	expect_fail 1 git dnadata verify --offline --read-data
	assert_contains "$ERR" "damaged object $b1 (the delta base of object "
	assert_contains "$ERR" "authentication failed"
	expect_fail 1 git dnadata restore
	assert_contains "$ERR" "its delta base "
	assert_contains "$ERR" "authentication failed"
	tap_note "delta base swapped: restore: $(grep '^error: ' <<<"$ERR" | cut -c1-200)"
	assert_eq "$STATE" "$(state)" "the refused restore changed something"
}

# The media folder's objects damaged (a pack only the media file added by $ID2 fills): the
# database is built aside, the folder is refused before it is touched, nothing is swapped.
test_damaged_media_object_restores_nothing() {
	origin
	clone_b
	cd "$T/a"
	head -c 2000000 /dev/urandom >"$MEDIA/docs/big.bin"
	expect_ok git dnadata snapshot
	local id3=$OUT p3 size off
	p3=$(cd "$T/store" && find packs -type f -newer "$T/store/snapshots/$ID2" | head -n 1)
	[ -n "$p3" ] || fail "the third snapshot wrote no pack"
	rm -rf "$T/store.good" && cp -a "$T/store" "$T/store.good"
	cd "$T/b"
	git pull -q --ff-only
	STATE=$(state)
	# the database part of the snapshot is whole: a refused restore may keep the template it built
	NEW_TMPL="${CDB}__dnadata_tmpl_${id3:0:12}"
	size=$(stat -c %s "$T/store/$p3")
	writable "$T/store/$p3"
	for off in $(seq 100 100000 $((size - 1000))); do flip_byte "$T/store/$p3" "$off"; done
	refused "damaged media objects" "$p3"
	tap_note "media: restored nothing of ${id3:0:12}"
}

# S3: the bucket's copies tampered with (ranged GETs read them): a pack's object, a manifest
# replaced by another valid one, an index file replaced by another's.
test_tampered_bucket_copies_are_named_and_nothing_is_restored() {
	s3_env
	local b url
	b=$(s3_bucket tamper)
	url="s3://$b/st"
	DB=$(pg_newdb tampers3)
	make_rows "$DB" 8000
	new_repo "$T/a"
	expect_ok git dnadata init --database "dbname=$DB" --store "$url"
	expect_ok git dnadata snapshot
	ID1=$OUT
	local keys1
	keys1=$(s3_ls "$b" st/ | sed 's|^st/||')
	update_rows "$DB" 5
	expect_ok git dnadata snapshot
	ID2=$OUT
	local pk2 ix1 ix2
	pk2=$(s3_ls "$b" st/packs/ | sed 's|^st/||' | grep -vxF "$keys1" | head -n 1)
	ix1=$(grep '^index/' <<<"$keys1" | head -n 1)
	ix2=$(s3_ls "$b" st/index/ | sed 's|^st/||' | grep -vxF "$keys1" | head -n 1)
	[ -n "$pk2" ] && [ -n "$ix1" ] && [ -n "$ix2" ] || fail "expected a pack and an index file of each snapshot"
	git clone -q "$T/a" "$T/b"
	cd "$T/b"
	CDB=$(pg_newdb tampers3b)
	psql_q "$CDB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (42)"
	install -m 600 "$T/a/.git/dnadata/key" "$T/b.key"
	expect_ok git dnadata key import "$T/b.key"
	DNADATA_DATABASE="dbname=$CDB" expect_ok git dnadata init
	printf '[profile "clean"]\ndatabase = dbname=%s\n' "$CDB" >>.git/dnadata/config.ini
	STATE=$(state)
	# get KEY FILE / put FILE KEY: one object of the bucket, straight to the server
	get() { S3_CURL_ENDPOINT= s3_curl GET "/$b/st/$1" && [ "$S3_STATUS" = 200 ] && cp "$T/.s3body" "$2" || fail "GET $1: $S3_STATUS"; }
	put() { S3_CURL_ENDPOINT= s3_curl PUT "/$b/st/$2" --body "$1" && [ "$S3_STATUS" = 200 ] || fail "PUT $2: $S3_STATUS $S3_CODE"; }
	# s3case CASE KEY TEXT...: refused as in the folder store; then KEY's good copy goes back
	s3case() {
		local what=$1 key=$2
		shift 2
		refused_s3 "$what" "$@"
		put "$T/good" "$key"
	}
	refused_s3() {
		local what=$1
		shift
		both_refuse "S3 $what" "$@"
	}
	get "$pk2" "$T/good"
	cp "$T/good" "$T/bad"
	flip_byte "$T/bad" 100
	put "$T/bad" "$pk2"
	s3case "flipped bit in an object of a pack" "$pk2" "$pk2"
	get "snapshots/$ID2" "$T/good"
	get "snapshots/$ID1" "$T/bad"
	put "$T/bad" "snapshots/$ID2"
	s3case "manifest replaced by another snapshot's" "snapshots/$ID2" "$ID2" "authentication failed"
	get "$ix2" "$T/good"
	get "$ix1" "$T/bad"
	put "$T/bad" "$ix2"
	s3case "index file replaced by another's" "$ix2" "index file $ix2" "authentication failed"
	empty_cache
	expect_ok git dnadata verify --read-data
	expect_ok git dnadata restore
	assert_contains "$ERR" "restored snapshot ${ID2:0:12}"
}

run_tests
