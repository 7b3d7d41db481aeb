#!/usr/bin/env bash
# t-pg-fidelity.sh: snapshot + restore keeps everything pg_dump keeps:
# pg_dump of the restored database equals pg_dump of the source, schema and
# data, for a database holding every kind of object.
. "$(dirname "$0")/../lib.sh"

setup_repo() {
	repo_with_db fid
}

zoo_sql() {
	cat <<'SQL'
CREATE EXTENSION pgcrypto;
CREATE EXTENSION hstore;
CREATE SCHEMA app;
COMMENT ON SCHEMA app IS 'the application';
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE app.point3 AS (x float8, y float8, z float8);
CREATE DOMAIN app.email AS text CHECK (VALUE ~ '@');
CREATE SEQUENCE app.ticket_seq START 100 INCREMENT 7;
CREATE TABLE app.users (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	email app.email NOT NULL UNIQUE,
	mood app.mood DEFAULT 'ok',
	pos app.point3,
	attrs hstore,
	secret bytea DEFAULT gen_random_bytes(4),
	score numeric(12,4),
	ratio float8,
	born date,
	seen timestamptz,
	note text,
	doubled int GENERATED ALWAYS AS (length(note) * 2) STORED
);
COMMENT ON TABLE app.users IS 'people';
COMMENT ON COLUMN app.users.email IS 'login';
CREATE TABLE app.orders (
	id serial PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES app.users(id) ON DELETE CASCADE,
	ticket int DEFAULT nextval('app.ticket_seq'),
	total numeric(10,2) CHECK (total >= 0),
	items jsonb,
	created timestamptz DEFAULT now()
);
CREATE INDEX orders_items_gin ON app.orders USING gin (items);
CREATE INDEX orders_user_created ON app.orders (user_id, created DESC);
CREATE TABLE app.events (
	id int, at date NOT NULL, what text, PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE app.events_2023 PARTITION OF app.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE app.events_2024 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX events_what ON app.events (what);
CREATE TABLE app.plain_log (line text, at timestamp);  -- no primary key
CREATE TABLE app.parent_t (id int PRIMARY KEY, v text);
CREATE TABLE app.child_t (extra int) INHERITS (app.parent_t);
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.seen := now(); RETURN NEW; END $$;
CREATE TRIGGER users_touch BEFORE UPDATE ON app.users FOR EACH ROW EXECUTE FUNCTION app.touch();
CREATE FUNCTION app.add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b';
CREATE PROCEDURE app.bump(n int) LANGUAGE plpgsql AS $$
BEGIN UPDATE app.orders SET total = total + n; END $$;
CREATE VIEW app.big_orders AS SELECT * FROM app.orders WHERE total > 100;
CREATE MATERIALIZED VIEW app.order_stats AS SELECT user_id, count(*) AS n, sum(total) AS total FROM app.orders GROUP BY user_id;
CREATE UNIQUE INDEX order_stats_user ON app.order_stats (user_id);
CREATE MATERIALIZED VIEW app.never_filled AS SELECT 1 AS one WITH NO DATA;
CREATE RULE no_delete_log AS ON DELETE TO app.plain_log DO INSTEAD NOTHING;
ALTER TABLE app.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_orders ON app.orders USING (user_id > 0);
CREATE STATISTICS app.orders_stats (dependencies) ON user_id, ticket FROM app.orders;
CREATE UNLOGGED TABLE app.cache (k text PRIMARY KEY, v text);
CREATE TABLE "Odd Schema Name" (id int PRIMARY KEY, "Mixed Case" text);

INSERT INTO app.users (email, mood, pos, attrs, secret, score, ratio, born, seen, note)
SELECT 'u' || i || '@example.com', (ARRAY['sad','ok','happy'])[1 + i % 3]::app.mood,
       ROW(i, i / 3.0, -i)::app.point3, hstore('k' || i, 'v' || i), decode(md5(i::text), 'hex'),
       i * 1.2345, 1.0 / (i + 3), date '2000-01-01' + i, timestamptz '2024-01-01 12:00:00+02' + i * interval '1 hour',
       CASE WHEN i % 5 = 0 THEN NULL ELSE E'tab\there, newline\nthere, back\\slash ' || i END
FROM generate_series(1, 500) i;
INSERT INTO app.orders (user_id, total, items)
SELECT 1 + i % 500, (i % 1000) / 3.0, jsonb_build_object('sku', i, 'tags', jsonb_build_array('a', i))
FROM generate_series(1, 3000) i;
INSERT INTO app.events SELECT i, date '2023-01-01' + (i % 700), 'ev' || i FROM generate_series(1, 1000) i;
INSERT INTO app.plain_log SELECT 'line ' || (i % 7), timestamp '2024-02-29 23:59:59.999999' - i * interval '1 min' FROM generate_series(1, 200) i;
INSERT INTO app.plain_log VALUES ('line 1', NULL), ('line 1', NULL);
INSERT INTO app.parent_t VALUES (1, 'parent');
INSERT INTO app.child_t VALUES (2, 'child', 42);
INSERT INTO app.cache VALUES ('a', 'b');
INSERT INTO "Odd Schema Name" VALUES (1, 'Ünïcödé ✓');
REFRESH MATERIALIZED VIEW app.order_stats;
SELECT setval('app.ticket_seq', 5000);
SELECT nextval('app.orders_id_seq');
SELECT lo_from_bytea(424242, decode(repeat('deadbeef', 300000), 'hex'));
SELECT lo_from_bytea(424243, '');
COMMENT ON LARGE OBJECT 424242 IS 'a blob';
SQL
}

test_restored_database_dumps_exactly_like_the_source() {
	setup_repo
	zoo_sql | "$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null
	dump_sorted "$DB" >"$T/source.sql"
	expect_ok git dnadata snapshot
	assert_contains "$ERR" "table app.plain_log has no primary key"
	# change everything, then restore over it
	psql_q "$DB" "DELETE FROM app.orders WHERE id % 2 = 0; DROP TABLE app.cache; SELECT lo_unlink(424242)" >/dev/null
	expect_ok git dnadata restore --force
	dump_sorted "$DB" >"$T/restored.sql"
	diff -u "$T/source.sql" "$T/restored.sql" >"$T/diff" || fail "dumps differ:"$'\n'"$(head -40 "$T/diff")"
	# the dump is not trivially small: data and blobs are in it
	assert_contains "$(cat "$T/restored.sql")" "COPY app.users"
	assert_contains "$(cat "$T/restored.sql")" "lo_open('424242'"
	assert_contains "$(cat "$T/restored.sql")" "REFRESH MATERIALIZED VIEW app.order_stats"
	assert_eq 5000 "$(psql_q "$DB" "SELECT last_value FROM app.ticket_seq")"
}

test_snapshot_of_restored_database_has_the_same_id() {
	setup_repo
	zoo_sql | "$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null
	expect_ok git dnadata snapshot
	local id=$OUT
	expect_ok git dnadata restore --force
	expect_ok git dnadata snapshot
	assert_eq "$id" "$OUT" "snapshot id after a round trip"
	assert_contains "$ERR" "nothing changed"
}

run_tests
