#!/usr/bin/env bash
# t-pii-check.sh: `git dnadata pii-check` and `masked = required` (issue 21)
# on a real server: columns that look personal by name (email), by type
# (inet) and by sampled values (a `contact` column holding e-mail
# addresses, on a table small enough to read its first rows and on one
# large enough to be sampled by TABLESAMPLE; text and jsonb documents
# holding them); a mask rule of any kind,
# `keep` included, covers a column, and one on a partitioned or parent table
# covers its partitions and children (one suggested line for them); large
# objects and the media folder are said to be captured as they are; exit 0 / 1 like a linter; --json;
# what exclude_tables and exclude_data leave out is not looked at; a
# locked table is waited for at most lock_wait_timeout, and a table already
# read is not kept locked (one short transaction per table); a
# snapshot of a `masked = required` profile refuses while a column is
# uncovered (ref file and HEAD unchanged), store and inline profiles alike.
. "$(dirname "$0")/../lib.sh"

json_get() {
	printf '%s' "$OUT" | python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps($1))"
}

# A repository (profile clean, committed) on a fresh database with users: an email column, a contact column
# of e-mail addresses, a notes column where one value in 40 is one (under the 10% bar), a last_ip inet.
setup_repo() {
	repo_with_db pii
	psql_q "$DB" "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, contact varchar(100), notes text,
			last_ip inet, plan text, email_verified boolean);
		INSERT INTO users SELECT i, 'user' || i || '@example.com', 'c' || i || '@mail.example.org',
			CASE WHEN i % 40 = 0 THEN 'x' || i || '@example.net' ELSE 'likes tea' END,
			('10.0.0.' || i % 250)::inet, 'basic', true FROM generate_series(1, 200) i;
		CREATE TABLE products (id int PRIMARY KEY, name text, price numeric);
		INSERT INTO products VALUES (1, 'tea', 3)"
}

# The uncovered list: the indented lines after the first two.
uncovered() {
	printf '%s\n' "$OUT" | awk 'NR > 2 && !/^  / { exit } NR > 2 { print }'
}

test_pii_check_names_columns_by_name_type_and_values_and_exits_1() {
	setup_repo
	run git dnadata pii-check
	assert_eq 1 "$RC" "exit code with uncovered columns"
	assert_eq "" "$ERR" "no error line: the list is the answer"
	assert_eq "  public.users.email: e-mail address (its name)
  public.users.contact: e-mail address (100% of 200 sampled values look like e-mail addresses)
  public.users.last_ip: IP address (its type, inet)" "$(uncovered)"
	assert_contains "$OUT" "3 columns look personal and no mask rule names them"
	assert_contains "$OUT" $'mask = public.users.email fake_email\nmask = public.users.contact fake_email\nmask = public.users.last_ip null'
	assert_not_contains "$OUT" "notes" "5% of its values: under the bar"
	assert_not_contains "$OUT" "products" "a product's name is no person's"
	# the same on the profile named, and with names and types only: contact is no longer found
	run git dnadata pii-check clean --sample 0
	assert_eq 1 "$RC"
	assert_not_contains "$OUT" "contact"
	assert_contains "$OUT" "public.users.email"
	expect_fail 2 git dnadata pii-check --sample many
	expect_fail 1 git dnadata pii-check nosuchprofile
}

test_a_mask_rule_of_any_kind_covers_a_column() {
	setup_repo
	cat >>.dnadata/profiles.ini <<'INI'
mask = users.email keep
mask = public.users.contact fake_email
mask = other.users.last_ip null
INI
	run git dnadata pii-check --all
	assert_eq 1 "$RC" "a rule of another schema covers nothing"
	assert_eq "  public.users.last_ip: IP address (its type, inet)" "$(uncovered)"
	assert_contains "$OUT" "covered by a mask rule (2):
  public.users.email: e-mail address (its name): mask = users.email keep (line"
	assert_contains "$OUT" "  public.users.contact: e-mail address (100% of 200 sampled values look like e-mail addresses): mask = public.users.contact fake_email (line"
	echo "mask = public.users.last_ip keep" >>.dnadata/profiles.ini
	expect_ok git dnadata pii-check
	assert_contains "$OUT" "no uncovered column: a mask rule names every column that looks personal"
	assert_contains "$OUT" "(3 more covered by mask rules: --all lists them)"
	assert_not_contains "$OUT" "mask = "
}

test_json_lists_what_was_found_and_what_covers_it() {
	setup_repo
	echo "mask = users.email keep" >>.dnadata/profiles.ini
	run git dnadata pii-check --json
	assert_eq 1 "$RC"
	assert_eq "" "$ERR"
	assert_eq '[1, "clean", 2, 1, 2]' \
		"$(json_get '[d["pii_check_version"], d["profile"], d["uncovered"], d["covered"], d["tables"]]')"
	assert_eq '[["users", "email", "email", "name", true, "users.email keep", null], ["users", "contact", "email", "values", false, null, 200], ["users", "last_ip", "ip", "type", false, null, null]]' \
		"$(json_get '[[c["table"], c["column"], c["kind"], c["found_by"], c["covered"], c["rule"], c["sampled"]] for c in d["found"]]')"
	assert_eq '"mask = public.users.contact fake_email"' "$(json_get 'd["found"][1]["suggested"]')"
}

# value_column NAME VALUE...: a text column NAME of table shapes holding the VALUEs in turn (shapes has 24 rows).
value_column() {
	local name=$1 list
	shift
	list=$(printf "'%s'," "$@")
	psql_q "$DB" "ALTER TABLE shapes ADD COLUMN $name text;
		UPDATE shapes SET $name = (ARRAY[${list%,}])[id % $# + 1]"
}

test_a_rule_on_a_parent_covers_its_partitions_and_children() {
	setup_repo
	psql_q "$DB" "CREATE TABLE visits (id int, k int, email text) PARTITION BY RANGE (k);
		CREATE TABLE visits_1 PARTITION OF visits FOR VALUES FROM (0) TO (10);
		CREATE TABLE visits_2 PARTITION OF visits FOR VALUES FROM (10) TO (20) PARTITION BY RANGE (k);
		CREATE TABLE visits_2a PARTITION OF visits_2 FOR VALUES FROM (10) TO (15);
		CREATE TABLE staff (id int, phone text); CREATE TABLE temps (agency text) INHERITS (staff)"
	echo "mask = users.email keep" >>.dnadata/profiles.ini
	echo "mask = users.last_ip keep" >>.dnadata/profiles.ini
	run git dnadata pii-check --sample 0
	assert_eq "  public.staff.phone: phone number (its name)
  public.temps.phone: phone number (its name)
  public.visits_1.email: e-mail address (its name)
  public.visits_2a.email: e-mail address (its name)" "$(uncovered)"
	# one line for the partitioned table covers every partition, at any depth
	assert_contains "$OUT" $'mask = public.staff.phone fake_phone\nmask = public.temps.phone fake_phone\nmask = public.visits.email fake_email'
	assert_not_contains "$OUT" "mask = public.visits_"
	printf 'mask = visits.email fake_email\nmask = visits_1.email keep\nmask = staff.phone fake_phone\n' \
		>>.dnadata/profiles.ini
	run git dnadata pii-check --sample 0 --json
	assert_eq 0 "$RC" "$OUT"
	assert_eq '[["staff", "staff.phone fake_phone"], ["temps", "staff.phone fake_phone"], ["visits_1", "visits_1.email keep"], ["visits_2a", "visits.email fake_email"]]' \
		"$(json_get '[[c["table"], c["rule"]] for c in d["found"] if c["table"] not in ("users",)]')"
}

test_large_objects_and_the_media_folder_are_said_to_be_captured_as_they_are() {
	setup_repo
	run git dnadata pii-check --sample 0
	assert_not_contains "$OUT" "captured as"
	psql_q "$DB" "SELECT lo_from_bytea(0, convert_to('ann@example.com', 'UTF8'))" >/dev/null
	run git dnadata pii-check --sample 0
	assert_contains "$OUT" $'  public.users.last_ip: IP address (its type, inet)\n1 large object is captured as it is: masking rules do not apply to it\n'
	echo "media = uploads" >>.dnadata/profiles.ini
	run git dnadata pii-check --sample 0
	assert_contains "$OUT" "1 large object and the media folder are captured as they are: masking rules do not apply to them"
	run git dnadata pii-check --sample 0 --json
	assert_eq '[1, "uploads"]' "$(json_get '[d["large_objects"], d["media"]]')"
}

test_value_shapes_and_what_only_looks_like_one() {
	setup_repo
	psql_q "$DB" "CREATE TABLE shapes (id int PRIMARY KEY); INSERT INTO shapes SELECT generate_series(1, 24)"
	value_column c1 '+44 20 7946 0958' '(212) 555-0199' '030 12345678' '+4915112345678' '06 12 34 56 78' \
		'+1-202-555-0143'
	value_column c2 192.168.1.20 10.0.0.1 2001:db8::1 fe80::1ff:fe23:4567:890a 2001:0db8:0000:0000:0000:ff00:0042:8329
	value_column c3 DE89370400440532013000 'GB82 WEST 1234 5698 7654 32' FR1420041010050500013M02606 NL91ABNA0417164300
	value_column c4 '4539 1488 0343 6467' 4111111111111111 5500-0000-0000-0004 378282246310005
	value_column c5 123-45-6789 078-05-1120 219-09-9999
	# not what they look like: dates, times, numbers, versions, references, ids, failed check digits
	value_column n1 2024-01-31 31.01.2024 12:30:00 '2024-01-31 12:30' 1/2/2024
	value_column n2 12345678 1234.5678 -42 1e10 3.14159 0.5
	value_column n3 1.2.3 v2.0.1 ORD-2024-000123 INV/2024/55 a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11
	value_column n4 DE00370400440532013000 GB00WEST12345698765432 '4539 1488 0343 6468' 4111111111111112
	run git dnadata pii-check --json
	assert_eq 1 "$RC"
	assert_eq '[["c1", "phone", "100% of 24 sampled values look like phone numbers"], ["c2", "ip", "100% of 24 sampled values look like IP addresses"], ["c3", "bank", "100% of 24 sampled values look like IBANs with valid check digits"], ["c4", "card", "100% of 24 sampled values look like card numbers that pass the Luhn check"], ["c5", "national_id", "100% of 24 sampled values look like US social security numbers"]]' \
		"$(json_get '[[c["column"], c["kind"], c["reason"]] for c in d["found"] if c["table"] == "shapes"]')"
}

test_text_and_documents_holding_e_mail_addresses_are_found() {
	setup_repo
	psql_q "$DB" "CREATE TABLE tickets (id int PRIMARY KEY, body text, meta jsonb NOT NULL, title text, huge text);
		INSERT INTO tickets SELECT i, CASE WHEN i % 4 = 0 THEN 'Please reply to ann' || i || '@corp.example.org soon'
			ELSE 'printer is broken' END, jsonb_build_object('reporter', jsonb_build_object('mail', 'r' || i || '@x.example')),
			'ticket @' || i, (SELECT string_agg(md5(i::text || g::text), '') FROM generate_series(1, 400) g)
			|| ' z' || i || '@example.com' FROM generate_series(1, 80) i"
	run git dnadata pii-check --json
	assert_eq 1 "$RC"
	assert_eq '[["body", "email", "contents", 80, 20, "25% of 80 sampled values contain e-mail addresses", "mask = public.tickets.body null"], ["meta", "email", "contents", 80, 80, "100% of 80 sampled values contain e-mail addresses", "mask = public.tickets.meta redact"]]' \
		"$(json_get '[[c["column"], c["kind"], c["found_by"], c["sampled"], c["matched"], c["reason"], c["suggested"]] for c in d["found"] if c["table"] == "tickets"]')"
	# huge: 12 KiB of text that does not compress, beyond what is searched; title: an @ but no address
}

test_what_a_snapshot_leaves_out_is_not_looked_at() {
	setup_repo
	psql_q "$DB" "CREATE SCHEMA audit; CREATE TABLE audit.logins (id int PRIMARY KEY, email text);
		CREATE TABLE sessions (id int PRIMARY KEY, ip inet);
		CREATE TABLE events (id int, k int, phone text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
		CREATE TABLE events_1 PARTITION OF events FOR VALUES IN (1);
		CREATE TABLE leads (id int PRIMARY KEY, phone text)"
	run git dnadata pii-check --sample 0
	assert_contains "$OUT" "public.events_1.phone"
	assert_contains "$OUT" "audit.logins.email"
	cat >>.dnadata/profiles.ini <<'INI'
exclude_tables = audit.*, events
exclude_data = sessions, public.users
INI
	run git dnadata pii-check
	assert_eq 1 "$RC"
	assert_eq "  public.leads.phone: phone number (its name)" "$(uncovered)"
	echo "exclude_data = leads" >>.dnadata/profiles.ini
	expect_ok git dnadata pii-check
	assert_contains "$OUT" "nothing looks personal"
}

test_a_large_table_is_sampled_not_read() {
	setup_repo
	# vacuumed, and autovacuum kept off it: its visit reads every page, which would count as ours (seen in CI)
	psql_q "$DB" "CREATE TABLE signups (id int PRIMARY KEY, contact text, note text) WITH (autovacuum_enabled = off);
		INSERT INTO signups SELECT i, 'p' || i || '@example.com', repeat('x', 200) FROM generate_series(1, 30000) i"
	psql_q "$DB" "VACUUM ANALYZE signups"
	echo "mask = users.email keep" >>.dnadata/profiles.ini
	local before after pages
	pg_wait_no_sessions "$DB"
	before=$(psql_q "$DB" "SELECT heap_blks_read + heap_blks_hit FROM pg_statio_user_tables WHERE relname = 'signups'")
	run git dnadata -v pii-check --json --sample 300
	assert_eq 1 "$RC"
	# the sample: at most 300 rows, from pages TABLESAMPLE picked
	local n
	n=$(json_get '[c["sampled"] for c in d["found"] if c["table"] == "signups"][0]')
	[ "$n" -gt 0 ] && [ "$n" -le 300 ] || fail "signups.contact sampled $n values, expected 1..300"
	assert_eq '"values"' "$(json_get '[c["found_by"] for c in d["found"] if c["table"] == "signups"][0]')"
	assert_contains "$ERR" "pii-check: public.signups: 3 columns, $n rows sampled from "
	assert_contains "$ERR" "% of its pages (TABLESAMPLE)"
	assert_contains "$ERR" "pii-check: public.users: 7 columns, 200 rows sampled (its first rows)"
	# what the server read of it: a small part of its pages (its session's counters, once it has ended)
	pg_wait_no_sessions "$DB"
	after=$(psql_q "$DB" "SELECT heap_blks_read + heap_blks_hit FROM pg_statio_user_tables WHERE relname = 'signups'")
	pages=$(psql_q "$DB" "SELECT relpages FROM pg_class WHERE relname = 'signups'")
	tap_note "signups: $n rows sampled, $((after - before)) of its $pages pages read"
	[ $((after - before)) -gt 0 ] && [ $(((after - before) * 4)) -lt "$pages" ] ||
		fail "pii-check read $((after - before)) of the $pages pages of signups"
}

test_names_from_the_server_reach_the_terminal_escaped() {
	setup_repo
	psql_q "$DB" "CREATE TABLE \"t$(printf '\033')[2J\" (id int PRIMARY KEY, \"email$(printf '\033')]0;x$(printf '\007')\" text)"
	run git dnadata pii-check --sample 0
	assert_eq 1 "$RC"
	assert_contains "$OUT" 'public.t\x1b[2J.email\x1b]0;x\x07: e-mail address (its name)'
	if printf '%s' "$OUT" | LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]'; then
		fail "raw control characters reached the terminal"
	fi
}

test_a_table_locked_by_another_session_bounds_the_wait() {
	setup_repo
	echo "lock_wait_timeout = 1" >>.dnadata/profiles.ini
	hold_lock "$DB" users
	expect_fail 1 git dnadata pii-check
	release_lock
	assert_contains "$ERR" "error: checking profile clean: looking for personal data in database $DB: table public.users is locked by another session: gave up after 1 s"
	assert_contains "$ERR" "hint: another session holds or waits for an exclusive lock on it"
	run git dnadata pii-check
	assert_eq 1 "$RC" "once the lock is gone"
}

# stopped_after TEXT: let the process start_stopped_at stopped go on until it has written TEXT on stderr and
# stopped itself again.
stopped_after() {
	kill -CONT "$STOPPED_PID"
	for _ in $(seq "$DD_WAIT_POLLS"); do
		grep -qF "$1" "$T/stopped.err" && [ "$(cut -d' ' -f3 "/proc/$STOPPED_PID/stat" 2>/dev/null)" = T ] &&
			return 0
		kill -0 "$STOPPED_PID" 2>/dev/null || fail "it ended: $(cat "$T/stopped.err")"
		sleep 0.05
	done
	fail "it never stopped after $1"
}

test_a_table_already_read_is_not_kept_locked() {
	setup_repo
	# products, then users: stopped while users is read, products is free for a migration at once
	start_stopped_at pii-sampled git-dnadata -v pii-check
	stopped_after "pii-check: public.products: "
	run psql_q "$DB" "SET lock_timeout = '1s'; BEGIN; LOCK TABLE products IN ACCESS EXCLUSIVE MODE; COMMIT"
	assert_eq 0 "$RC" "a lock on the table read before: $ERR"
	kill -CONT "$STOPPED_PID"
	wait "$STOPPED_PID" || true
	assert_contains "$(cat "$T/stopped.out")" "3 columns look personal"
	# a table dropped after the catalog was read is skipped, with a -v line
	start_stopped_at pii-sampled git-dnadata -v pii-check
	psql_q "$DB" "DROP TABLE users"
	finish_stopped
	assert_contains "$(cat "$T/stopped.err")" "pii-check: public.users: dropped since the catalog was read, skipped"
}

test_masked_required_refuses_a_snapshot_while_a_column_is_uncovered() {
	setup_repo
	echo "masked = required" >>.dnadata/profiles.ini
	git commit -qam "masked = required"
	local head ref
	head=$(git rev-parse HEAD)
	ref=$(cat .dnadata/refs/clean 2>/dev/null || true)
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "error: profile clean has masked = required, but column public.users.email looks personal (e-mail address: its name) and no mask rule names it (and 2 more such columns)"
	assert_contains "$ERR" "hint: nothing was captured; run \`git dnadata pii-check clean\`"
	assert_eq "$head" "$(git rev-parse HEAD)" "nothing committed"
	assert_eq "$ref" "$(cat .dnadata/refs/clean 2>/dev/null || true)" "the ref file is unchanged"
	assert_eq "" "$(git status --porcelain .dnadata/refs)"
	printf 'mask = users.email keep\nmask = users.contact keep\nmask = users.last_ip keep\n' >>.dnadata/profiles.ini
	git commit -qam "every personal column reviewed"
	expect_ok git dnadata snapshot
	assert_contains "$(cat .dnadata/refs/clean)" "snapshot $OUT"
	assert_ne "$head" "$(git rev-parse HEAD)"
	# a new column nobody reviewed: refused again
	psql_q "$DB" "ALTER TABLE products ADD COLUMN supplier_phone text"
	head=$(git rev-parse HEAD)
	ref=$(cat .dnadata/refs/clean)
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "column public.products.supplier_phone looks personal (phone number: its name)"
	assert_eq "$head" "$(git rev-parse HEAD)"
	# a dump's data is checked too (in the scratch database it is loaded into), not the working database's
	"$DD_PG_BINDIR/pg_dump" -Fc -f "$T/db.dump" -d "$DB"
	psql_q "$DB" "ALTER TABLE products DROP COLUMN supplier_phone"
	expect_fail 1 git dnadata snapshot --from-dump "$T/db.dump"
	assert_contains "$ERR" "column public.products.supplier_phone looks personal (phone number: its name)"
	assert_eq "$head" "$(git rev-parse HEAD)"
	assert_eq "$ref" "$(cat .dnadata/refs/clean)"
	assert_eq "" "$(databases_like "${DB}__dnadata_load_")" "the scratch database is dropped"
	expect_ok git dnadata snapshot
}

test_masked_required_holds_for_an_inline_profile() {
	setup_repo
	expect_ok git dnadata new-profile seed --inline
	echo "masked = required" >>.dnadata/profiles.ini
	git commit -qam "seed: masked = required"
	local head
	head=$(git rev-parse HEAD)
	expect_fail 1 git dnadata snapshot seed
	assert_contains "$ERR" "profile seed has masked = required, but column public.users.email"
	assert_eq "$head" "$(git rev-parse HEAD)"
	assert_no_file .dnadata/inline/seed/data.sql
	printf 'mask = users.email keep\nmask = users.contact keep\nmask = users.last_ip keep\n' >>.dnadata/profiles.ini
	git commit -qam "reviewed"
	expect_ok git dnadata snapshot seed
	assert_file .dnadata/inline/seed/data.sql
}

run_tests
