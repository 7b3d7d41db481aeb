#!/usr/bin/env bash
# t-mask.sh: masking on capture (issue 21) on a real server. Masked
# values are computed by the server inside the snapshot: the unmasked
# e-mails and names appear nowhere in the store (decrypted through
# `export --sql`) nor in the restored database; a hashed key still joins
# row for row; a unique masked column stays unique; a bad rule fails the
# snapshot naming its line and commits nothing; the key is in no query
# text the server shows. The incremental paths: t-mask-incremental.sh.
. "$(dirname "$0")/../lib.sh"

. "$(dirname "$0")/../mask-shop.sh"

test_masked_values_reach_neither_the_store_nor_the_restore() {
	setup_shop
	# every int2 value, and int4/int8 ones of both signs: hash permutes each type's range
	psql_q "$DB" "CREATE TABLE nums (a int2 PRIMARY KEY, b int4 UNIQUE, c int8 UNIQUE);
		INSERT INTO nums SELECT i, i * 65535, i * 4294967311 FROM generate_series(-32768, 32767) i" >/dev/null
	add_rules
	printf 'mask = nums.a hash\nmask = nums.b hash\nmask = nums.c hash\n' >>.dnadata/profiles.ini
	git commit -q -am "hash the numbers"
	local joins_before
	joins_before=$(psql_q "$DB" "SELECT count(*), count(DISTINCT o.user_id), sum(o.total)
		FROM orders o JOIN users u ON u.id = o.user_id JOIN addresses a ON a.user_id = u.id")
	expect_ok git dnadata snapshot
	assert_contains "$(cat .dnadata/refs/clean)" "masked "
	assert_contains "$(cat .dnadata/refs/clean)" "(12 rules)"
	expect_ok git dnadata log --oneline -n 1
	assert_contains "$OUT" "masked "
	assert_contains "$OUT" "(12 rules)"
	expect_ok git dnadata status
	assert_contains "$OUT" ", masked "
	expect_ok git dnadata status --json
	assert_contains "$OUT" '"masked":"'
	# deterministic: the same data and rules give the same snapshot id
	local id
	id=$(sed -n 's/^snapshot //p' .dnadata/refs/clean)
	expect_ok git dnadata snapshot --full --no-commit
	assert_eq "$id" "$(sed -n 's/^snapshot //p' .dnadata/refs/clean)" "masking is deterministic"
	# the store's streams, decrypted
	expect_ok git dnadata export clean --sql "$T/out"
	local data
	data=$(cat "$T/out/data.sql")
	assert_not_contains "$data" "realmail" "an unmasked e-mail in the store"
	assert_not_contains "$data" "Realname" "an unmasked name in the store"
	assert_not_contains "$data" "Secret Street" "an unmasked street in the store"
	assert_not_contains "$data" "+44 7700" "an unmasked phone number in the store"
	assert_contains "$data" "@example.com"
	assert_contains "$data" "REDACTED"
	# the restored database
	expect_ok git dnadata restore --force --terminate
	local all
	all=$("$DD_PG_BINDIR/pg_dump" --data-only "$DB")
	assert_not_contains "$all" "realmail" "an unmasked e-mail restored"
	assert_not_contains "$all" "Realname" "an unmasked name restored"
	assert_eq "300|300" "$(psql_q "$DB" "SELECT count(*), count(DISTINCT email) FROM users")" "unique stays unique"
	assert_eq "0" "$(psql_q "$DB" "SELECT count(*) FROM users WHERE id BETWEEN 1 AND 300 AND id IN (1, 2, 3)")" \
		"ids are hashed (a chance of 3 in 2^32 that one is its own image)"
	assert_eq "$joins_before" "$(psql_q "$DB" "SELECT count(*), count(DISTINCT o.user_id), sum(o.total)
		FROM orders o JOIN users u ON u.id = o.user_id JOIN addresses a ON a.user_id = u.id")" \
		"joins on the hashed key match row for row"
	assert_eq "200" "$(psql_q "$DB" "SELECT count(*) FROM orders WHERE user_id IS NULL")" "NULL stays NULL"
	assert_eq "65536|65536|65536|65536|t|t" "$(psql_q "$DB" "SELECT count(*), count(DISTINCT a), count(DISTINCT b),
		count(DISTINCT c), min(b) < 0 AND max(b) > 0, count(*) FILTER (WHERE b = a * 65535) < 10 FROM nums")" \
		"a permutation of each integer type (restored under its unique indexes)"
	assert_eq "1" "$(psql_q "$DB" "SELECT count(DISTINCT born) FROM users WHERE born < '1981-01-01'")" "sql: applied"
	assert_eq "42" "$(psql_q "$DB" "SELECT count(*) FROM users WHERE vip")" "keep changes nothing"
	assert_eq "100|0" "$(psql_q "$DB" "SELECT count(*), count(*) FILTER (WHERE email NOT LIKE 'user-%@example.com')
		FROM visits")" "a rule on a partitioned table masks its partitions"
	assert_eq "0" "$(psql_q "$DB" "SELECT count(*) FROM users WHERE phone !~ '^\\+1 555 01[0-9]{2} [0-9]{4}\$'")"
}

# bad_rule RULE WANT: the snapshot fails naming the rule's line, and nothing is committed.
bad_rule() {
	local ref head line
	ref=$(cat .dnadata/refs/clean)
	head=$(git rev-parse HEAD)
	printf 'mask = %s\n' "$1" >>.dnadata/profiles.ini
	line=$(wc -l <.dnadata/profiles.ini)
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "profiles.ini:$line: mask = $1: $2"
	assert_eq "$ref" "$(cat .dnadata/refs/clean)" "the ref file is unchanged ($1)"
	assert_eq "$head" "$(git rev-parse HEAD)" "nothing committed ($1)"
	git checkout -q .dnadata/profiles.ini
}

test_a_bad_rule_fails_the_snapshot_and_commits_nothing() {
	local line
	setup_shop
	expect_ok git dnadata snapshot
	bad_rule "users.emial fake_email" "table public.users has no column emial"
	bad_rule "nosuch.email hash" "no table nosuch in the database"
	bad_rule "users.name sql:no_such_function(name)" "the expression fails on public.users"
	bad_rule "users.name sql:name)::text, (email" "the expression must be one value"
	bad_rule "users.email null" "the column is NOT NULL"
	bad_rule "users.email redact" "the masked values break unique index public.users_email_key"
	bad_rule "users.email sql:'x' || id" "the masked values break CHECK constraint users_email_check"
	bad_rule "users.email sql:NULL" "the masked values break NOT NULL on column email"
	bad_rule "orders.user_id sql:user_id + 1000" "the masked values break foreign key orders_user_id_fkey"
	bad_rule "users.born hash" "rule hash does not apply to column born of type date (use sql:<expression>)"
	bad_rule "visits.k hash" "column k is in the partition key of public.visits: masked rows would leave"
	# an expression that fails on a row: the server's message, which quotes the value, is left out
	local head
	head=$(git rev-parse HEAD)
	printf 'mask = users.born sql:name::date\n' >>.dnadata/profiles.ini
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "dumping public.users: a masked column's expression failed on a row of public.users"
	assert_not_contains "$ERR" "Realname"
	assert_eq "$head" "$(git rev-parse HEAD)" "nothing committed (a failing expression)"
	git checkout -q .dnadata/profiles.ini
	printf 'mask = users.email sql:email::date\n' >>.dnadata/profiles.ini
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "checking unique index public.users_email_key of table public.users over the masked values: a masked column's expression failed on a row (SQLSTATE 22"
	assert_not_contains "$ERR" "realmail"
	git checkout -q .dnadata/profiles.ini
	# a rule on a table whose rows are not captured: a warning, and the snapshot goes on
	printf 'exclude_data = addresses\nmask = addresses.street fake_name\n' >>.dnadata/profiles.ini
	line=$(wc -l <.dnadata/profiles.ini)
	expect_ok git dnadata snapshot --no-commit
	assert_contains "$ERR" "warning: profiles.ini:$line: mask = addresses.street fake_name: table public.addresses's rows are not captured"
	git checkout -q .dnadata/profiles.ini
}

# refuses WANT RULE...: with these rules the snapshot fails saying WANT, and nothing is committed.
refuses() {
	local want=$1 head
	shift
	head=$(git rev-parse HEAD)
	printf 'mask = %s\n' "$@" >>.dnadata/profiles.ini
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "$want"
	assert_eq "$head" "$(git rev-parse HEAD)" "nothing committed ($*)"
	git checkout -q .dnadata/profiles.ini
}

test_a_hashed_key_is_checked_when_its_reference_has_another_type() {
	repo_with_db mask
	# hashed the same, but a varchar(40) keeps 40 of the 64 characters, and an int4 is permuted on 16-bit halves
	psql_q "$DB" "CREATE TABLE acct (email text PRIMARY KEY, n int8 UNIQUE);
		CREATE TABLE refs (id int PRIMARY KEY, email varchar(40) REFERENCES acct, n int4 REFERENCES acct (n));
		INSERT INTO acct SELECT 'a' || i || '@x.test', i FROM generate_series(1, 50) i;
		INSERT INTO refs SELECT i, 'a' || i || '@x.test', i FROM generate_series(1, 50) i" >/dev/null
	refuses "the masked values break foreign key refs_email_fkey of table public.refs" "acct.email hash" \
		"refs.email hash"
	refuses "the masked values break foreign key refs_n_fkey of table public.refs" "acct.n hash" "refs.n hash"
}

test_masked_values_are_checked_against_expression_partial_exclusion_and_generated_columns() {
	repo_with_db mask
	psql_q "$DB" "CREATE TABLE tags (id int PRIMARY KEY, code text, grp int, note text);
		CREATE UNIQUE INDEX tags_head ON tags (left(code, 2));
		CREATE UNIQUE INDEX tags_grp ON tags (grp) WHERE note < '8';
		INSERT INTO tags SELECT i, chr(97 + i / 26) || chr(97 + i % 26) || '-' || i, 1, 'z' || i
			FROM generate_series(0, 199) i;
		CREATE TABLE ex (id int PRIMARY KEY, code text, EXCLUDE USING hash (code WITH =));
		INSERT INTO ex VALUES (1, 'a'), (2, 'b');
		CREATE TABLE g (id int PRIMARY KEY, email text, dom text GENERATED ALWAYS AS (split_part(email, '@', 2))
			STORED CHECK (dom <> ''), CHECK (email LIKE '%@%' AND dom <> 'realmail.test'));
		INSERT INTO g VALUES (1, 'a@b.test'), (2, 'c@d.test')" >/dev/null
	# hash is injective, but not through left(), nor in which rows a predicate keeps
	refuses "the masked values break unique index public.tags_head of table public.tags" "tags.code hash"
	refuses "the masked values break unique index public.tags_grp of table public.tags" "tags.note hash"
	refuses "column code is in exclusion constraint public.ex_code_excl of table public.ex" "ex.code hash"
	# a generated column is computed again from the masked values, as the restore will
	refuses "the masked values break CHECK constraint g_dom_check of table public.g" "g.email sql:'nobody@'"
	printf 'mask = g.email fake_email\n' >>.dnadata/profiles.ini
	expect_ok git dnadata snapshot --no-commit
}

# A server message, DETAIL or notice may quote the row an expression or the subset condition failed on: only the
# SQLSTATE and what may be at fault reach the output (a RAISE in a function, a cast in the subset condition).
test_no_unmasked_value_reaches_an_error_or_a_notice() {
	local line head
	setup_shop
	psql_q "$DB" "CREATE FUNCTION chk(t text) RETURNS text LANGUAGE plpgsql AS \$\$BEGIN RAISE NOTICE 'seen %', t;
		IF t = 'Realname7' THEN RAISE EXCEPTION 'bad value %', t USING DETAIL = t; END IF; RETURN 'x'; END\$\$" >/dev/null
	head=$(git rev-parse HEAD)
	printf 'mask = users.name sql:chk(name)\n' >>.dnadata/profiles.ini
	line=$(wc -l <.dnadata/profiles.ini)
	expect_fail 1 git dnadata -v snapshot
	assert_contains "$ERR" "dumping public.users: a masked column's expression failed on a row of public.users (rules at profiles.ini line $line) (SQLSTATE P0001"
	assert_contains "$ERR" "hint: run SELECT <expression> FROM public.users by hand in psql"
	assert_contains "$ERR" "debug: server: a notice was left out"
	assert_not_contains "$ERR" "Realname" "an unmasked value in an error or a notice"
	git checkout -q .dnadata/profiles.ini
	printf 'mask = users.name fake_name\nsubset = users where name::int > 0\n' >>.dnadata/profiles.ini
	line=$(wc -l <.dnadata/profiles.ini)
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "the subset condition (profiles.ini:$line) failed while reading public."
	assert_contains "$ERR" "(SQLSTATE 22P02; the server's message is left out"
	assert_not_contains "$ERR" "Realname" "an unmasked value in an error of the subset condition"
	assert_eq "$head" "$(git rev-parse HEAD)" "nothing committed"
	git checkout -q .dnadata/profiles.ini
}

# A lattice of 30 diamonds of multiple inheritance (l0 <- a1, b1 <- l1 <- ... <- l30) has 2^30 paths from
# l30 up to l0: snapshot, masking, exclude_data and pii-check follow each table once (they walked every
# path, and a snapshot ran for minutes, deaf to SIGTERM), and a rule or exclusion on an ancestor still
# reaches l30 through the lattice
test_multiple_inheritance_costs_its_edges_not_its_paths() {
	setup_shop
	local sql="CREATE TABLE l0 (id int PRIMARY KEY, email text);" i
	for i in $(seq 30); do
		sql+="CREATE TABLE a$i () INHERITS (l$((i - 1))); CREATE TABLE b$i () INHERITS (l$((i - 1)));"
		sql+="CREATE TABLE l$i () INHERITS (a$i, b$i);"
	done
	psql_q "$DB" "$sql INSERT INTO l30 VALUES (1, 'deep@realmail.test')" >/dev/null 2>&1
	assert_eq 1 "$(psql_q "$DB" "SELECT count(*) FROM l0")"
	printf 'mask = l0.email fake_email\n' >>.dnadata/profiles.ini
	git commit -q -am "mask the lattice's root"
	expect_ok timeout -s KILL 60 git dnadata snapshot
	expect_ok timeout -s KILL 60 git dnadata restore --force --terminate
	assert_eq 1 "$(psql_q "$DB" "SELECT count(*) FROM l30")"
	assert_eq 0 "$(psql_q "$DB" "SELECT count(*) FROM l30 WHERE email LIKE '%realmail%'")" "l30's e-mail masked by l0's rule"
	run timeout -s KILL 60 git dnadata pii-check --json
	[ "$RC" = 1 ] || fail "pii-check: exit $RC (1: the shop's columns are unmasked)"$'\n'"$ERR"
	assert_contains "$OUT" '"table":"users"'
	local l30
	l30=$(printf '%s\n' "$OUT" | grep -o '{"schema":"public","table":"l30",[^}]*}')
	assert_contains "$l30" '"covered":true,"rule":"l0.email fake_email"' "l30's e-mail covered by l0's rule"
	printf 'exclude_data = public.a15\n' >>.dnadata/profiles.ini
	git commit -q -am "no rows below a15"
	expect_ok timeout -s KILL 60 git dnadata snapshot
	expect_ok timeout -s KILL 60 git dnadata restore --force --terminate
	assert_eq 0 "$(psql_q "$DB" "SELECT count(*) FROM l30")" "a15's exclude_data reaches l30 through the lattice"
	assert_eq 1 "$(psql_q "$DB" "SELECT count(*) FROM pg_class WHERE relname = 'l30'")"
}

test_an_inline_profile_refuses_masking_rules() {
	setup_shop
	expect_ok git dnadata new-profile seed --inline
	printf 'mask = users.email fake_email\n' >>.dnadata/profiles.ini
	git commit -q -am "mask the inline profile"
	local head
	head=$(git rev-parse HEAD)
	expect_fail 1 git dnadata snapshot seed
	assert_contains "$ERR" "profile seed has masking rules, which this version cannot apply yet to an inline profile"
	assert_eq "$head" "$(git rev-parse HEAD)" "nothing committed"
	assert_no_file .dnadata/inline/seed/data.sql
}

# key_parts: the hex strings that must never show: the master key, the mask subkey, its padded keys.
key_parts() {
	python3 - "$(sed -n 's/^key //p' .git/dnadata/key)" <<'PY'
import hashlib, sys
master = bytes.fromhex(sys.argv[1])
sub = hashlib.blake2b(b"", digest_size=32, key=master, salt=(1).to_bytes(8, "little") + bytes(8),
                      person=b"ddmask01" + bytes(8)).digest()
print(master.hex())
print(sub.hex())
for c in (0x36, 0x5c):
    print(bytes(b ^ c for b in sub + bytes(32)).hex())
PY
}

test_the_key_is_in_no_query_text_while_a_snapshot_runs() {
	setup_shop
	psql_q "$DB" "INSERT INTO users SELECT i, 'bulk' || i || '@realmail.test', 'n', 'p', NULL, false
		FROM generate_series(1000, 30000) i; ANALYZE users" >/dev/null
	add_rules
	git dnadata snapshot --no-commit >"$T/snap.out" 2>"$T/snap.err" &
	local pid=$! seen=0
	: >"$T/queries"
	while kill -0 "$pid" 2>/dev/null; do
		PSQL -At -d postgres -c "SELECT query FROM pg_stat_activity WHERE datname = '$DB'" >>"$T/queries" || true
	done
	wait "$pid" || fail "the snapshot failed: $(cat "$T/snap.err")"
	grep -q "dnadata.mask_" "$T/queries" && seen=1
	[ "$seen" = 1 ] || fail "no masked COPY was sampled: the test proved nothing"
	tap_note "sampled $(grep -c "dnadata.mask_" "$T/queries") masked query texts"
	while read -r part; do
		! grep -qi "$part" "$T/queries" || fail "a key is in pg_stat_activity's query text"
		! grep -rqi "$part" "$T/snap.out" "$T/snap.err" .dnadata || fail "a key is in the output or the repository"
	done < <(key_parts)
}

test_the_key_is_in_no_server_log_even_when_it_logs_parameters() {
	local log=$DD_TMP/pg/log/server.log role=dd_nosu_$$
	setup_shop
	add_rules
	psql_q "$DB" "ALTER DATABASE $DB SET log_min_duration_statement = 0" >/dev/null
	expect_ok git dnadata snapshot --no-commit
	# transaction-local: behind a transaction pooler the server connection goes back without the key
	grep -q "set_config('dnadata.mask_i', \$1, true)" "$log" || fail "no transaction-local set_config in the log"
	! grep -q "set_config('dnadata.mask_i', \$1, false)" "$log" || fail "a session-wide set_config in the log"
	while read -r part; do
		! grep -qi "$part" "$log" || fail "a key is in the server log"
	done < <(key_parts)
	# a user who may not leave the parameters out of the log: refused, naming the setting
	psql_q "$DB" "CREATE ROLE $role LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO $role" >/dev/null
	local user=$PGUSER
	export PGUSER=$role
	expect_fail 1 git dnadata snapshot --no-commit
	export PGUSER=$user
	psql_q "$DB" "DROP OWNED BY $role; DROP ROLE $role" >/dev/null
	assert_contains "$ERR" "the server would write the masking key into its log (log_min_duration_statement logs"
	assert_contains "$ERR" "ALTER ROLE <role> SET log_parameter_max_length = 0"
	while read -r part; do
		! grep -qi "$part" "$log" || fail "a key is in the server log"
	done < <(key_parts)
}

test_the_database_a_masked_snapshot_came_from_is_not_recorded_as_holding_it() {
	setup_shop
	add_rules
	expect_ok git dnadata snapshot
	# it still holds the real values: a restore (no --force) builds the masked snapshot
	expect_ok git dnadata restore --terminate
	assert_not_contains "$(psql_q "$DB" "SELECT string_agg(email, ',') FROM users")" "realmail" \
		"the working database holds the masked snapshot"
}

run_tests
