#!/usr/bin/env bash
# scripts/demo.sh: the whole git-dnadata story in about ten seconds, on a
# throwaway PostgreSQL cluster and a local-folder store, all in a temporary
# directory that is removed on exit (Ctrl-C included).
#
#   scripts/demo.sh            (after `make`; scripts/dev.sh demo builds first)
#
# Story: a git repository for an app whose database is "shop"; set up
# git-dnadata, take a snapshot of the sample data, break the data, restore
# it, switch branches (the hooks swap the data, local edits kept), and
# look at the result. As root, the server runs as user "nobody".
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$top/git-dnadata" ] || { echo "error: build first (make, or scripts/dev.sh demo)" >&2; exit 1; }
export PATH="$top:$PATH"
# No warm spares in a demo this short: the background job that clones them
# would outlive the throwaway cluster.
export DNADATA_SPARES=0
. "$top/tests/pg.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/dnadata-demo.XXXXXX")
cleanup() {
	pg_cluster_stop "$work/pg" || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold= norm=
if [ -t 1 ]; then
	bold=$(tput bold 2>/dev/null || true)
	norm=$(tput sgr0 2>/dev/null || true)
fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$norm"; }
run() {
	printf '%s$ %s%s\n' "$bold" "$*" "$norm"
	"$@"
}
sql() { "$DD_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d shop "$@"; }

say "Starting a throwaway PostgreSQL cluster in $work/pg"
pg_cluster_start "$work/pg"
export PGHOST PGPORT PGUSER
echo "server on port $PGPORT (unix socket in $PGHOST)"

say "A git repository for our app, and its database 'shop' with sample data"
git init -q -b main "$work/app"
cd "$work/app"
git config user.name "Demo User"
git config user.email "demo@example.invalid"
echo "# shop" >README.md && git add README.md && git commit -q -m "the app"
"$DD_PG_BINDIR/createdb" shop
sql <<'SQL'
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, city text);
CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(8,2) NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers, product_id int REFERENCES products,
                     qty int NOT NULL, at timestamptz NOT NULL DEFAULT now());
INSERT INTO customers VALUES (1, 'Ada', 'London'), (2, 'Grace', 'Arlington'), (3, 'Linus', 'Helsinki');
INSERT INTO products VALUES (1, 'keyboard', 49.90), (2, 'monitor', 189.00), (3, 'coffee', 7.50);
INSERT INTO orders (customer_id, product_id, qty, at) VALUES
  (1, 3, 4, '2024-03-01 09:00+00'), (2, 2, 1, '2024-03-02 14:30+00'), (3, 1, 2, '2024-03-03 08:15+00');
SQL
sql -c "SELECT c.name, p.name AS product, o.qty FROM orders o JOIN customers c ON c.id = o.customer_id JOIN products p ON p.id = o.product_id ORDER BY o.id"

say "Set up git-dnadata: profiles.ini, a store in a local folder, an encryption key (committed as 'dnadata: init')"
run git dnadata init --store "file://$work/store" --database "dbname=shop"
run git dnadata new-profile demo
run git dnadata use demo

say "Snapshot the database: schema via pg_dump, rows via parallel COPY, encrypted into the store"
run git dnadata snapshot -m "demo data: 3 customers, 3 orders"
echo
echo "The ref file, committed next to the code:"
cat .dnadata/refs/demo
echo
run git log --oneline

say "Now break the data, as a developer would"
sql -c "DELETE FROM orders WHERE qty > 1; UPDATE products SET price = 0; DROP TABLE customers CASCADE"
sql -c "SELECT count(*) AS orders_left, (SELECT sum(price) FROM products) AS total_price FROM orders"

say "Restore: builds a fresh copy from the snapshot, then swaps it in (the broken one is kept aside)"
# The database was snapshotted from here and edited since: restore sees the
# change, rebuilds it from the snapshot, and keeps the edited one as a stash.
run git dnadata restore

say "The data is back"
sql -c "SELECT c.name, p.name AS product, p.price, o.qty FROM orders o JOIN customers c ON c.id = o.customer_id JOIN products p ON p.id = o.product_id ORDER BY o.id"

say "What git-dnadata knows about this clone"
run git dnadata status

say "Restoring again changes nothing: the database already holds the snapshot, unchanged"
run git dnadata restore

say "A branch with other data: the git hooks switch the database on checkout"
run git checkout -b feature
sql -c "INSERT INTO products VALUES (4, 'desk', 320.00)"
run git dnadata snapshot -m "feature data: a desk"
run git checkout main
sql -c "SELECT count(*) AS products FROM products"

say "A local edit on main, then feature and back: the edit survives (main's database was stashed, not dropped)"
sql -c "UPDATE customers SET city = 'Paris' WHERE id = 1"
run git checkout feature
sql -c "SELECT count(*) AS products FROM products"
run git checkout main
sql -c "SELECT name, city FROM customers WHERE id = 1"
run git dnadata stash list

say "Everything is encrypted at rest: the store holds no readable trace of the data"
if grep -r -q -a "Grace" "$work/store" "$work/app/.git/dnadata/cache"; then
	echo "found plaintext in the store?!" >&2
	exit 1
fi
echo "grep -r Grace $work/store: nothing found ($(find "$work/store" -type f | wc -l) encrypted files)"

say "Done: the cluster and every file are removed now"
