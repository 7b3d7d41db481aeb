# tests/mask-shop.sh: the shop database and rules of t-mask*.sh (sourced after lib.sh).

PSQL() { "$DD_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

# users, addresses, orders: personal columns, unique and CHECK constraints, foreign keys on users.id.
setup_shop() {
	repo_with_db mask
	psql_q "$DB" "
	CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL UNIQUE, name text, phone varchar(20),
			    born date, vip boolean NOT NULL DEFAULT false, CHECK (email LIKE '%@%'));
	CREATE TABLE addresses (id int PRIMARY KEY, user_id int NOT NULL REFERENCES users, street text,
				city text NOT NULL);
	CREATE TABLE orders (id bigint PRIMARY KEY, user_id int REFERENCES users, total numeric NOT NULL);
	INSERT INTO users SELECT i, 'person' || i || '@realmail.test', 'Realname' || i, '+44 7700 9' || i,
		'1980-01-01'::date + i, i % 7 = 0 FROM generate_series(1, 300) i;
	INSERT INTO addresses SELECT i, 1 + i % 300, i || ' Secret Street', 'Town' || (i % 5)
		FROM generate_series(1, 400) i;
	INSERT INTO orders SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE 1 + (i * 7) % 300 END, i * 1.5
		FROM generate_series(1, 2000) i;
	CREATE TABLE visits (id int, k int, email text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
	CREATE TABLE visits_1 PARTITION OF visits FOR VALUES FROM (0) TO (10);
	CREATE TABLE visits_2 PARTITION OF visits FOR VALUES FROM (10) TO (20);
	INSERT INTO visits SELECT i, i % 20, 'visitor' || i || '@realmail.test' FROM generate_series(1, 100) i" >/dev/null
	psql_q "$DB" "VACUUM ANALYZE" >/dev/null
	git commit -q -am "shop" --allow-empty
}

# The shop's usual rules.
add_rules() {
	cat >>.dnadata/profiles.ini <<'INI'
mask = users.email fake_email
mask = users.name fake_name
mask = public.users.phone fake_phone
mask = users.id hash
mask = addresses.user_id hash
mask = orders.user_id hash
mask = addresses.street redact
mask = users.born sql:date_trunc('year', born)::date
mask = users.vip keep
mask = visits.email fake_email
INI
	git commit -q -am "mask the shop"
}
