-- bench/pg/dataset.sql: the "realistic" half of the benchmark database
-- (run by bench/pg-bench.sh next to `pgbench -i -s SCALE`; psql variable
-- :scale). Application-like tables of poorly compressible content, about the
-- size of the pgbench tables at the same scale (scale 50: ~1.3 GB on disk):
--
--   customers    scale x  2 000 rows  email (unique btree on text), name, jsonb profile
--   documents    scale x  6 000 rows  title, body of 40-120 words drawn (Zipf-like) from a
--                                     random 4096-word vocabulary, tags text[], jsonb meta,
--                                     timestamps, score; btree on title, on created_at, on
--                                     (customer_id, updated_at), GIN on meta
--   events       scale x 20 000 rows  timestamp, kind, inet, jsonb payload with random ids;
--                                     btree on (at), (kind, at), (customer_id)
--   attachments  scale x  2 000 rows  name, mime, sha256 hex (text, btree), 256 B-4 KiB of
--                                     random bytea (TOASTed, incompressible)
--
-- plus foreign keys documents/events -> customers, attachments -> documents.
-- Everything is generated server-side with generate_series. random() is
-- seeded so sizes and most content repeat between runs (gen_random_bytes
-- is not seedable; it only feeds incompressible bytes).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
SELECT setseed(0.4242) \g /dev/null

-- word k of a 4096-word vocabulary of random letter strings (2-9 letters);
-- drawn with random() ^ 2 or ^ 3 for a Zipf-like skew of word frequencies
CREATE FUNCTION pg_temp.w(k int) RETURNS text LANGUAGE sql IMMUTABLE
	RETURN translate(substr(md5('w' || (k % 4096)), 1, 2 + k % 8), '0123456789', 'etaoinsrhl');

CREATE TABLE customers (
	id bigint PRIMARY KEY,
	email text NOT NULL,
	name text NOT NULL,
	created_at timestamptz NOT NULL,
	profile jsonb NOT NULL
);
INSERT INTO customers
SELECT i,
	pg_temp.w((random() * 4095)::int) || '.' || substr(md5(random()::text), 1, 8) || '@' || pg_temp.w((random() * 4095)::int) || '.example',
	initcap(pg_temp.w((random() * 4095)::int)) || ' ' || initcap(pg_temp.w((random() * 4095)::int)),
	timestamptz '2018-01-01' + random() * interval '2000 days',
	jsonb_build_object('plan', (ARRAY['free', 'team', 'business', 'enterprise'])[1 + (random() * 3)::int],
		'seats', (random() * 500)::int, 'country', upper(substr(md5(random()::text), 1, 2)),
		'api_key', encode(gen_random_bytes(24), 'hex'), 'newsletter', random() < 0.3)
FROM generate_series(1, :scale * 2000) i;
CREATE UNIQUE INDEX customers_email ON customers (email);

CREATE TABLE documents (
	id bigint PRIMARY KEY,
	customer_id bigint NOT NULL,
	title text NOT NULL,
	body text NOT NULL,
	tags text[] NOT NULL,
	meta jsonb NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz,
	score float8
);
INSERT INTO documents
SELECT i, 1 + (random() * (:scale * 2000 - 1))::bigint,
	initcap(pg_temp.w((4095 * random() ^ 2)::int)) || ' ' || pg_temp.w((4095 * random() ^ 2)::int) || ' ' || pg_temp.w((4095 * random())::int),
	(SELECT string_agg(translate(substr(md5('w' || r.k), 1, 2 + r.k % 8), '0123456789', 'etaoinsrhl'), ' ') -- pg_temp.w(k), inlined by hand: 2x faster
	 FROM generate_series(1, 40 + (i::bigint * 7919) % 81) g, LATERAL (SELECT (4095 * random() ^ 3)::int + 0 * g::int AS k) r),
	ARRAY[pg_temp.w((random() * 63)::int), pg_temp.w((random() * 255)::int)],
	jsonb_build_object('version', 1 + (random() * 20)::int, 'lang', (ARRAY['en', 'de', 'fr', 'nl', 'es'])[1 + (random() * 4)::int],
		'words', 40 + (i::bigint * 7919) % 81, 'checksum', md5(random()::text),
		'refs', jsonb_build_array(1 + (random() * (:scale * 6000 - 1))::int, 1 + (random() * (:scale * 6000 - 1))::int),
		'flags', jsonb_build_object('draft', random() < 0.2, 'pinned', random() < 0.05)),
	timestamptz '2019-01-01' + random() * interval '1800 days',
	CASE WHEN random() < 0.7 THEN timestamptz '2023-06-01' + random() * interval '500 days' END,
	random() * 100
FROM generate_series(1, :scale * 6000) i;
CREATE INDEX documents_title ON documents (title);
CREATE INDEX documents_created_at ON documents (created_at);
CREATE INDEX documents_customer_updated ON documents (customer_id, updated_at);
CREATE INDEX documents_meta ON documents USING gin (meta);

CREATE TABLE events (
	id bigint PRIMARY KEY,
	customer_id bigint NOT NULL,
	at timestamptz NOT NULL,
	kind text NOT NULL,
	ip inet,
	payload jsonb NOT NULL
);
INSERT INTO events
SELECT i, 1 + (random() * (:scale * 2000 - 1))::bigint,
	timestamptz '2024-01-01' + i * interval '1 second' * (30.0 / :scale) + random() * interval '10 minutes',
	(ARRAY['login', 'logout', 'view', 'edit', 'share', 'export', 'api_call', 'payment'])[1 + (random() * 7)::int],
	('10.' || (random() * 255)::int || '.' || (random() * 255)::int || '.' || (random() * 255)::int)::inet,
	jsonb_build_object('request_id', gen_random_uuid(), 'duration_ms', (random() * 2000)::int,
		'path', '/' || pg_temp.w((4095 * random() ^ 2)::int) || '/' || (random() * 100000)::int,
		'agent', (ARRAY['Mozilla/5.0 (X11; Linux x86_64)', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1)', 'curl/8.4.0', 'python-requests/2.31'])[1 + (random() * 3)::int],
		'ok', random() < 0.97)
FROM generate_series(1, :scale * 20000) i;
CREATE INDEX events_at ON events (at);
CREATE INDEX events_kind_at ON events (kind, at);
CREATE INDEX events_customer ON events (customer_id);

CREATE TABLE attachments (
	id bigint PRIMARY KEY,
	document_id bigint NOT NULL,
	name text NOT NULL,
	mime text NOT NULL,
	sha256 text NOT NULL,
	content bytea NOT NULL,
	created_at timestamptz NOT NULL
);
INSERT INTO attachments
SELECT i, d, name, mime, encode(sha256(content), 'hex'), content, created_at
FROM (
	SELECT i, 1 + (random() * (:scale * 6000 - 1))::bigint AS d,
		pg_temp.w((4095 * random())::int) || '-' || i || (ARRAY['.pdf', '.png', '.jpg', '.zip'])[1 + i % 4] AS name,
		(ARRAY['application/pdf', 'image/png', 'image/jpeg', 'application/zip'])[1 + i % 4] AS mime,
		(SELECT substr(string_agg(gen_random_bytes(1024), ''::bytea), 1, (256 + (i * 104729::bigint) % 3841)::int)
		 FROM generate_series(0, ((256 + (i::bigint * 104729) % 3841) - 1) / 1024)) AS content,
		timestamptz '2020-01-01' + random() * interval '1500 days' AS created_at
	FROM generate_series(1, :scale * 2000) i
) s;
CREATE INDEX attachments_sha256 ON attachments (sha256);
CREATE INDEX attachments_document ON attachments (document_id);

ALTER TABLE documents ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE events ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE attachments ADD FOREIGN KEY (document_id) REFERENCES documents (id);
