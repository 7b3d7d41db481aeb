#!/usr/bin/env bash
# t-subset.sh: subsetting on capture (issue 21) on a real server. A shop
# (users, addresses, orders, order_items, products, categories, shipments
# with a two-column key, a partitioned events table, a self-referencing
# employees table) plus tables the subset does not reach (reviews and their
# votes, which reference products; settings). The restore creates the
# foreign keys after loading the rows, so a subset that breaks one fails
# it; the tests also look for orphans with an anti-join per key.
. "$(dirname "$0")/../lib.sh"

# The start rows of "users 10%": md5 of the key's row text, its first 32 bits below 10% of 2^32.
START="('x' || left(md5(ROW(id)::text), 8))::bit(32)::int8 < 429496729"

setup_shop() {
	repo_with_db subset
	psql_q "$DB" "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
		CREATE TABLE addresses (id int PRIMARY KEY, user_id int NOT NULL REFERENCES users, city text);
		CREATE TABLE categories (id int PRIMARY KEY, name text);
		CREATE TABLE products (id int PRIMARY KEY, sku text NOT NULL UNIQUE, category_id int REFERENCES categories);
		CREATE TABLE orders (id int PRIMARY KEY, user_id int NOT NULL REFERENCES users,
			ship_to int REFERENCES addresses);
		CREATE TABLE order_items (order_id int REFERENCES orders, line int, sku text REFERENCES products (sku),
			PRIMARY KEY (order_id, line));
		CREATE TABLE shipments (order_id int, line int, carrier text,
			FOREIGN KEY (order_id, line) REFERENCES order_items);
		CREATE TABLE employees (id int PRIMARY KEY, manager_id int REFERENCES employees, user_id int REFERENCES users);
		CREATE TABLE events (id int, user_id int REFERENCES users, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
		CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
		CREATE TABLE reviews (id int PRIMARY KEY, sku text REFERENCES products (sku), stars int);
		CREATE TABLE review_votes (id int PRIMARY KEY, review_id int NOT NULL REFERENCES reviews);
		CREATE TABLE settings (k text PRIMARY KEY, v text);
		CREATE TABLE \"we\"\"ird tab\" (\"user Id\" int REFERENCES users, n int);
		INSERT INTO users SELECT i, 'user' || i || '@example.com' FROM generate_series(1, 2000) i;
		INSERT INTO addresses SELECT i, 1 + (i * 7) % 2000, 'city' || i % 40 FROM generate_series(1, 2000) i;
		INSERT INTO categories SELECT i, 'cat' || i FROM generate_series(1, 10) i;
		INSERT INTO products SELECT i, 'sku-' || i, CASE WHEN i % 5 > 0 THEN 1 + i % 10 END FROM generate_series(1, 600) i;
		INSERT INTO orders SELECT i, 1 + (i * 13) % 2000, CASE WHEN i % 3 > 0 THEN 1 + (i * 5) % 2000 END
			FROM generate_series(1, 5000) i;
		INSERT INTO order_items SELECT o, l, 'sku-' || (1 + (o * 31 + l * 17) % 600)
			FROM generate_series(1, 5000) o, generate_series(1, 3) l;
		INSERT INTO shipments SELECT o, CASE WHEN o % 4 > 0 THEN 1 + o % 3 END, 'c' || o % 5 FROM generate_series(1, 5000) o;
		INSERT INTO employees SELECT i, CASE WHEN i > 1 THEN i / 2 END, CASE WHEN i % 3 = 0 THEN i * 9 END
			FROM generate_series(1, 200) i;
		INSERT INTO events SELECT i, 1 + (i * 11) % 2000, date '2024-06-01' + (i % 400) FROM generate_series(1, 4000) i;
		INSERT INTO reviews SELECT i, 'sku-' || (1 + (i * 7) % 600), i % 5 FROM generate_series(1, 900) i;
		INSERT INTO review_votes SELECT i, 1 + (i * 3) % 900 FROM generate_series(1, 1800) i;
		INSERT INTO settings SELECT 'k' || i, 'v' FROM generate_series(1, 5) i;
		INSERT INTO \"we\"\"ird tab\" SELECT 1 + (i * 17) % 2000, i FROM generate_series(1, 3000) i"
}

# subset_key TEXT...: the profile's subset keys, appended to its section (the last one in profiles.ini).
subset_key() {
	printf '%s\n' "$@" >>.dnadata/profiles.ini
	git commit -qm "subset keys" .dnadata/profiles.ini
}

# orphans DB: one line per foreign key with the rows of DB that reference a missing row (none expected).
orphans() {
	psql_q "$1" "SELECT 'addresses', count(*) FROM addresses c WHERE NOT EXISTS (SELECT 1 FROM users p WHERE p.id = c.user_id)
		UNION ALL SELECT 'products', count(*) FROM products c WHERE c.category_id IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM categories p WHERE p.id = c.category_id)
		UNION ALL SELECT 'orders.user', count(*) FROM orders c WHERE NOT EXISTS (SELECT 1 FROM users p WHERE p.id = c.user_id)
		UNION ALL SELECT 'orders.ship_to', count(*) FROM orders c WHERE c.ship_to IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM addresses p WHERE p.id = c.ship_to)
		UNION ALL SELECT 'order_items.order', count(*) FROM order_items c
			WHERE NOT EXISTS (SELECT 1 FROM orders p WHERE p.id = c.order_id)
		UNION ALL SELECT 'order_items.sku', count(*) FROM order_items c WHERE c.sku IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM products p WHERE p.sku = c.sku)
		UNION ALL SELECT 'shipments', count(*) FROM shipments c WHERE c.order_id IS NOT NULL AND c.line IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM order_items p WHERE (p.order_id, p.line) = (c.order_id, c.line))
		UNION ALL SELECT 'employees.manager', count(*) FROM employees c WHERE c.manager_id IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM employees p WHERE p.id = c.manager_id)
		UNION ALL SELECT 'employees.user', count(*) FROM employees c WHERE c.user_id IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM users p WHERE p.id = c.user_id)
		UNION ALL SELECT 'events', count(*) FROM events c WHERE c.user_id IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM users p WHERE p.id = c.user_id)
		UNION ALL SELECT 'reviews', count(*) FROM reviews c WHERE c.sku IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM products p WHERE p.sku = c.sku)
		UNION ALL SELECT 'review_votes', count(*) FROM review_votes c
			WHERE NOT EXISTS (SELECT 1 FROM reviews p WHERE p.id = c.review_id)" | grep -v '|0$' || true
}

# list DB SQL: the query's single column as one comma-separated line (values quoted as literals).
list() {
	psql_q "$1" "SELECT coalesce(string_agg(quote_literal(x), ',' ORDER BY x), 'NULL') FROM ($2) q(x)"
}

# keep_source: a copy of $DB as it is now ($SRC), to compare with what the subset restores.
keep_source() {
	pg_wait_no_sessions "$DB"
	SRC=${DB}_src
	"$DD_PG_BINDIR/createdb" -T "$DB" "$SRC"
}

test_percent_subset_restores_with_keys_valid_and_the_same_id_twice() {
	setup_shop
	subset_key 'subset = users 10%'
	pg_wait_no_sessions "$DB"
	expect_ok git dnadata -v snapshot
	local id=$OUT
	assert_contains "$ERR" "incremental: every table read: a subset is taken"
	tap_note "$(grep 'subset:' <<<"$ERR")"
	# the same data gives the same rows, so the same snapshot id (a full read, not the unchanged shortcut)
	expect_ok git dnadata snapshot --no-commit --full
	assert_eq "$id" "$OUT" "two snapshots of the same data"
	keep_source
	local start orders items employees events
	start=$(list "$SRC" "SELECT id FROM users WHERE $START")
	orders=$(list "$SRC" "SELECT id FROM orders WHERE user_id IN ($start)")
	items=$(psql_q "$SRC" "SELECT count(*) FROM order_items WHERE order_id IN ($orders)")
	events=$(psql_q "$SRC" "SELECT count(*) FROM events WHERE user_id IN ($start)")
	# down through the self-reference: the employees of start users and everyone under them
	employees=$(psql_q "$SRC" "WITH RECURSIVE d AS (SELECT id FROM employees WHERE user_id IN ($start)
		UNION SELECT e.id FROM employees e JOIN d ON e.manager_id = d.id) SELECT string_agg(id::text, ',' ORDER BY id) FROM d")
	[ -n "$employees" ] || fail "the data must give start users employees"
	expect_ok git dnadata restore --force --terminate
	assert_eq "" "$(orphans "$DB")" "no row references a missing row"
	# the start rows are exactly the users whose key hashes below 10%, with their rows down the keys
	assert_eq "$start" "$(list "$DB" "SELECT id FROM users WHERE $START")" "start rows"
	assert_eq "$orders" "$(list "$DB" "SELECT id FROM orders WHERE user_id IN ($start)")" "their orders"
	assert_eq "$items" "$(psql_q "$DB" "SELECT count(*) FROM order_items WHERE order_id IN ($orders)")" "their items"
	assert_eq "$events" "$(psql_q "$DB" "SELECT count(*) FROM events WHERE user_id IN ($start)")" "their events"
	assert_eq "$employees" "$(psql_q "$DB" "SELECT string_agg(id::text, ',' ORDER BY id) FROM employees
		WHERE id IN ($employees)")" "their employees and those under them"
	# a subset: fewer users than the source; products only because kept rows reference them (up)
	local n
	n=$(psql_q "$DB" "SELECT count(*) FROM users")
	[ "$n" -lt 1000 ] && [ "$n" -gt 0 ] || fail "users in the subset: $n of 2000"
	assert_eq 0 "$(psql_q "$DB" "SELECT count(*) FROM products p WHERE NOT EXISTS
		(SELECT 1 FROM order_items i WHERE i.sku = p.sku)")" "no product that no kept row references"
	# tables it does not reach: whole, less the rows that reference a product it left out (and their votes)
	local skus reviews
	skus=$(list "$DB" "SELECT sku FROM products")
	reviews=$(list "$SRC" "SELECT id FROM reviews WHERE sku IN ($skus)")
	assert_eq "$reviews" "$(list "$DB" "SELECT id FROM reviews")" "the reviews of kept products"
	assert_eq "$(psql_q "$SRC" "SELECT count(*) FROM review_votes WHERE review_id IN ($reviews)")" \
		"$(psql_q "$DB" "SELECT count(*) FROM review_votes")" "their votes"
	assert_eq 5 "$(psql_q "$DB" "SELECT count(*) FROM settings")" "settings kept whole"
	"$DD_PG_BINDIR/dropdb" "$SRC"
}

test_where_condition_and_others_empty() {
	setup_shop
	subset_key 'subset = public.users where id <= 20 -- the first users' 'subset_others = empty'
	expect_ok git dnadata snapshot
	expect_ok git dnadata restore --force --terminate
	assert_eq "" "$(orphans "$DB")" "no row references a missing row"
	assert_eq "1..20" "$(psql_q "$DB" "SELECT min(id) || '..' || max(id) FROM users WHERE id <= 20")" "start rows"
	assert_eq 20 "$(psql_q "$DB" "SELECT count(*) FROM users WHERE id <= 20")"
	assert_eq "0 0 0" "$(psql_q "$DB" "SELECT (SELECT count(*) FROM settings) || ' ' || (SELECT count(*) FROM reviews)
		|| ' ' || (SELECT count(*) FROM review_votes)")" "tables it does not reach are empty"
	[ "$(psql_q "$DB" "SELECT count(*) FROM orders")" -gt 0 ] || fail "the orders of the first users are kept"
}

test_bad_subset_fails_naming_the_line_and_commits_nothing() {
	setup_shop
	psql_q "$DB" "CREATE TABLE nokey (x int)"
	expect_ok git dnadata snapshot
	local head ref line
	head=$(git rev-parse HEAD)
	ref=$(cat .dnadata/refs/clean)
	line=$(($(wc -l <.dnadata/profiles.ini) + 1))
	for key in 'subset = nosuch 10%' 'subset = users where nosuch > 1' 'subset = users where true; DROP TABLE users' \
		'subset = users where true) UNION (SELECT 1' 'subset = nokey 10%'; do
		printf '%s\n' "$key" >>.dnadata/profiles.ini
		expect_fail 1 git dnadata snapshot
		assert_contains "$ERR" ".dnadata/profiles.ini:$line: ${key}"
		assert_contains "$ERR" "hint: nothing was captured; fix the subset key"
		tap_note "$(grep '^error:' <<<"$ERR")"
		sed -i '$d' .dnadata/profiles.ini
		assert_eq "$head" "$(git rev-parse HEAD)" "no commit ($key)"
		assert_eq "$ref" "$(cat .dnadata/refs/clean)" "ref unchanged ($key)"
	done
	assert_eq 2000 "$(psql_q "$DB" "SELECT count(*) FROM users")" "the condition ran nothing"
	# a condition is fine on a table without a key
	printf '%s\n' 'subset = nokey where x > 0' >>.dnadata/profiles.ini
	expect_ok git dnadata snapshot --no-commit
	# a key declared on a partition itself, beside its partitioned table's: refused, not half followed
	sed -i '$d' .dnadata/profiles.ini
	printf '%s\n' 'subset = users 10%' >>.dnadata/profiles.ini
	psql_q "$DB" "CREATE TABLE rooms (id int PRIMARY KEY); INSERT INTO rooms VALUES (1);
		ALTER TABLE events_2024 ADD FOREIGN KEY (id) REFERENCES rooms NOT VALID"
	expect_fail 1 git dnadata snapshot --no-commit
	assert_contains "$ERR" "subset = users 10%: tables public.events and public.events_2024 (a partition of it)"
}

test_incremental_after_a_change_equals_a_full_read() {
	setup_shop
	subset_key 'subset = users 10%'
	pg_wait_no_sessions "$DB"
	expect_ok git dnadata snapshot
	local first=$OUT
	# change rows the subset keeps and rows that change which rows it keeps
	psql_q "$DB" "UPDATE orders SET user_id = (SELECT min(id) FROM users WHERE $START) WHERE id <= 50;
		UPDATE addresses SET city = 'moved' WHERE user_id IN (SELECT id FROM users WHERE $START);
		DELETE FROM shipments WHERE order_id = 7; DELETE FROM order_items WHERE order_id = 7; INSERT INTO settings VALUES ('k9', 'new')"
	pg_wait_no_sessions "$DB"
	expect_ok git dnadata -v snapshot --no-commit
	local incr=$OUT
	assert_contains "$ERR" "incremental: every table read: a subset is taken"
	assert_not_contains "$ERR" "reused from snapshot"
	assert_ne "$first" "$incr"
	expect_ok git dnadata snapshot --no-commit --full
	assert_eq "$OUT" "$incr" "incremental id == --full id"
	expect_ok git dnadata restore --force --terminate
	assert_eq "" "$(orphans "$DB")" "no row references a missing row"
	assert_eq 50 "$(psql_q "$DB" "SELECT count(*) FROM orders WHERE id <= 50")" "the moved orders are kept"
}

test_the_database_a_subset_came_from_is_not_recorded_as_holding_it() {
	setup_shop
	psql_q "$DB" "VACUUM ANALYZE" # no autovacuum ANALYZE later: the database stays unchanged
	pg_wait_no_sessions "$DB"
	expect_ok git dnadata snapshot
	local whole=$OUT
	# the subset is part of what the unchanged-database shortcut compares: not the whole snapshot again
	subset_key 'subset = users where id <= 20'
	pg_wait_no_sessions "$DB"
	expect_ok git dnadata -v snapshot --no-commit
	local sub=$OUT
	assert_ne "$whole" "$sub" "a subset of unchanged data"
	assert_not_contains "$ERR" "unchanged since snapshot"
	pg_wait_no_sessions "$DB"
	expect_ok git dnadata -v snapshot --no-commit
	assert_eq "$sub" "$OUT" "the same subset again"
	assert_contains "$ERR" "incremental: every table read: a subset is taken"
	# the database holds more than the subset: a restore (no --force) builds it
	expect_ok git dnadata restore --terminate
	assert_eq 20 "$(psql_q "$DB" "SELECT count(*) FROM users WHERE id <= 20")" "the subset's start rows"
	[ "$(psql_q "$DB" "SELECT count(*) FROM users")" -lt 2000 ] || fail "the working database holds the subset"
}

test_a_cycle_a_partitioned_start_table_and_an_inline_profile() {
	repo_with_db subcyc
	# teams and players reference each other (a captain is a player of a team); games are partitioned
	psql_q "$DB" "CREATE TABLE teams (id int PRIMARY KEY, captain_id int);
		CREATE TABLE players (id int PRIMARY KEY, team_id int REFERENCES teams);
		ALTER TABLE teams ADD FOREIGN KEY (captain_id) REFERENCES players;
		CREATE TABLE games (id int, player_id int REFERENCES players, at date, PRIMARY KEY (id, at))
			PARTITION BY RANGE (at);
		CREATE TABLE games_a PARTITION OF games FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
		CREATE TABLE games_b PARTITION OF games FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
		INSERT INTO teams SELECT i, NULL FROM generate_series(1, 50) i;
		INSERT INTO players SELECT i, 1 + (i * 3) % 50 FROM generate_series(1, 500) i;
		UPDATE teams SET captain_id = 1 + (id * 37) % 500;
		INSERT INTO games SELECT i, 1 + (i * 7) % 500, date '2024-03-01' + i % 600 FROM generate_series(1, 3000) i"
	expect_ok git dnadata new-profile small --inline
	subset_key 'subset = games 5%'
	expect_ok git dnadata snapshot small
	local data
	data=$(sha256sum <.dnadata/inline/small/data.sql)
	expect_ok git dnadata snapshot small --no-commit
	assert_eq "$data" "$(sha256sum <.dnadata/inline/small/data.sql)" "the same subset twice"
	local games
	games=$(psql_q "$DB" "SELECT count(*) || ' ' || md5(string_agg(id || '/' || at, ',' ORDER BY id, at)) FROM games
		WHERE ('x' || left(md5(ROW(id, at)::text), 8))::bit(32)::int8 < 214748364")
	expect_ok git dnadata use small
	assert_eq "$games" "$(psql_q "$DB" "SELECT count(*) || ' ' || md5(string_agg(id || '/' || at, ',' ORDER BY id, at))
		FROM games")" "the games whose key hashes below 5%"
	[ "$(psql_q "$DB" "SELECT count(*) FROM games_a")" -gt 0 ] && [ "$(psql_q "$DB" "SELECT count(*) FROM games_b")" -gt 0 ] ||
		fail "games in both partitions"
	assert_eq "0 0 0" "$(psql_q "$DB" "SELECT (SELECT count(*) FROM games g WHERE NOT EXISTS
			(SELECT 1 FROM players p WHERE p.id = g.player_id)) || ' ' ||
		(SELECT count(*) FROM players p WHERE NOT EXISTS (SELECT 1 FROM teams t WHERE t.id = p.team_id)) || ' ' ||
		(SELECT count(*) FROM teams t WHERE NOT EXISTS (SELECT 1 FROM players p WHERE p.id = t.captain_id))")" \
		"no orphan around the cycle"
	[ "$(psql_q "$DB" "SELECT count(*) FROM players")" -lt 500 ] || fail "players are a subset"
}

test_writers_during_the_snapshot_change_nothing_it_holds() {
	setup_shop
	subset_key 'subset = users 10%'
	pg_wait_no_sessions "$DB"
	expect_ok git dnadata snapshot --no-commit --full
	local before=$OUT
	# stopped once the subset is planned, in its exported snapshot: writers change what it reads
	start_stopped_at subset-planned git-dnadata snapshot --no-commit --full
	psql_q "$DB" "DELETE FROM shipments WHERE order_id IN (SELECT id FROM orders WHERE user_id IN
			(SELECT id FROM users WHERE $START));
		DELETE FROM order_items WHERE order_id IN (SELECT id FROM orders WHERE user_id IN
			(SELECT id FROM users WHERE $START));
		DELETE FROM orders WHERE user_id IN (SELECT id FROM users WHERE $START);
		INSERT INTO orders SELECT 100000 + id, id, NULL FROM users WHERE $START;
		UPDATE employees SET manager_id = NULL WHERE id % 2 = 0;
		INSERT INTO users VALUES (5000, 'late@example.com')"
	finish_stopped
	assert_eq "$before" "$(cat "$T/stopped.out")" "the subset of the data as it was when the snapshot began"
	pg_wait_no_sessions "$DB"
	expect_ok git dnadata snapshot --no-commit --full
	assert_ne "$before" "$OUT" "the writes change the subset taken after them"
}

test_a_masked_subset() {
	setup_shop
	subset_key 'subset = users 10%' 'mask = users.email fake_email' 'mask = addresses.city redact'
	expect_ok git dnadata snapshot
	expect_ok git dnadata restore --force --terminate
	assert_eq "" "$(orphans "$DB")" "no row references a missing row"
	local n
	n=$(psql_q "$DB" "SELECT count(*) FROM users")
	[ "$n" -lt 1000 ] && [ "$n" -gt 0 ] || fail "users in the subset: $n of 2000"
	assert_eq 0 "$(psql_q "$DB" "SELECT count(*) FROM users WHERE email ~ '^user[0-9]+@'")" "no real e-mail"
	assert_eq "REDACTED" "$(psql_q "$DB" "SELECT string_agg(DISTINCT city, ',') FROM addresses")" "cities redacted"
}

run_tests
