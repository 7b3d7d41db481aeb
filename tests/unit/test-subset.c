/*
 * tests/unit/test-subset.c: the part of the subset's plan that needs no
 * server (pg/subset.c, issue 21): which tables the subset reaches, keeps
 * whole but filters, or empties; which keys each table's WHERE follows;
 * the start table's checks. tests/integration/t-subset.sh
 * runs the SQL on a real server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pg/pg.h"
#include "pg/subset.h"
#include "util/err.h"

enum { USERS = 1, ORDERS, ITEMS, PRODUCTS, REVIEWS, VOTES, SETTINGS, EMPLOYEES, EVENTS, EVENTS_A, EVENTS_B, LOGS };

static const struct dd_pg_subset_table tables[] = {
	{ USERS, "public.users", "public", "users", 'r', "id", 0, 1 },
	{ ORDERS, "public.orders", "public", "orders", 'r', "id", 0, 1 },
	{ ITEMS, "public.items", "public", "items", 'r', "order_id, line", 0, 1 },
	{ PRODUCTS, "public.products", "public", "products", 'r', "id", 0, 1 },
	{ REVIEWS, "public.reviews", "public", "reviews", 'r', "id", 0, 1 },
	{ VOTES, "public.votes", "public", "votes", 'r', NULL, 0, 1 },
	{ SETTINGS, "public.settings", "public", "settings", 'r', "k", 0, 1 },
	{ EMPLOYEES, "public.employees", "public", "employees", 'r', "id", 0, 1 },
	{ EVENTS, "public.events", "public", "events", 'p', "id, at", 0, 1 },
	{ EVENTS_A, "public.events_a", "public", "events_a", 'r', "id, at", EVENTS, 1 },
	{ EVENTS_B, "public.events_b", "public", "events_b", 'r', "id, at", EVENTS, 1 },
	{ LOGS, "audit.logs", "audit", "logs", 'r', NULL, 0, 0 }, /* exclude_data */
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

#define FK(c, p, cc, pc) { c, p, "fk", "c." cc, "p." pc, "c." cc " IS NOT NULL" }
static const struct dd_pg_subset_fk fks[] = {
	FK(ORDERS, USERS, "user_id", "id"),
	FK(ITEMS, ORDERS, "order_id", "id"),
	FK(ITEMS, PRODUCTS, "sku", "sku"),
	FK(REVIEWS, PRODUCTS, "product_id", "id"),
	FK(VOTES, REVIEWS, "review_id", "id"),
	FK(EMPLOYEES, EMPLOYEES, "manager_id", "id"),
	FK(EMPLOYEES, USERS, "user_id", "id"),
	FK(EVENTS, USERS, "user_id", "id"),
	FK(LOGS, USERS, "user_id", "id"),
};
#define NFKS (sizeof(fks) / sizeof(fks[0]))

static struct dd_pg_subset
subset(const char *table, int percent, const char *where, int empty)
{
	struct dd_pg_subset sb = { NULL, table, percent, where, empty, "the key", ".dnadata/profiles.ini", 12 };
	return sb;
}

static struct dd_pg_subset_plan *
plan(const struct dd_pg_subset *sb)
{
	struct dd_pg_subset_plan *p = NULL;
	if (dd_pg_subset_plan_graph(&p, sb, tables, NTABLES, fks, NFKS) < 0)
		fail_msg("plan: %s", dd_error_last());
	return p;
}

static void
users_ten_percent_reaches_down_and_up_and_filters_the_rest(void **state)
{
	struct dd_pg_subset sb = subset("users", 10, NULL, 0);
	struct dd_pg_subset_plan *p = plan(&sb);
	unsigned reached[] = { USERS, ORDERS, ITEMS, PRODUCTS, EMPLOYEES, EVENTS_A, EVENTS_B };
	unsigned filtered[] = { REVIEWS, VOTES };
	char *w;

	(void)state;
	for (size_t i = 0; i < sizeof(reached) / sizeof(reached[0]); i++) {
		w = dd_pg_subset_where(p, reached[i]);
		assert_non_null(w);
		assert_non_null(strstr(w, " WHERE ctid = ANY (ARRAY(WITH RECURSIVE dn(node, leaf, tid) AS ("));
		free(w);
	}
	for (size_t i = 0; i < sizeof(filtered) / sizeof(filtered[0]); i++) {
		w = dd_pg_subset_where(p, filtered[i]);
		assert_non_null(w);
		assert_non_null(strstr(w, " WHERE ctid NOT IN (WITH RECURSIVE dn"));
		assert_non_null(strstr(w, "dr(node, leaf, tid) AS ("));
		free(w);
	}
	assert_null(dd_pg_subset_where(p, SETTINGS)); /* not reached, nothing to filter: whole */
	w = dd_pg_subset_where(p, USERS);
	assert_non_null(strstr(w, "FROM ONLY public.users WHERE ('x' || left(md5(ROW(id)::text), 8))::bit(32)::int8 < "
				  "429496729"));
	free(w);
	/* a partition's rows are named by the partitioned table's node and the leaf's oid */
	w = dd_pg_subset_where(p, EVENTS_A);
	assert_non_null(strstr(w, "JOIN public.events c ON (c.user_id) = (p.id)"));
	assert_non_null(strstr(w, "SELECT tid FROM up WHERE leaf = '10'::oid"));
	free(w);
	dd_pg_subset_plan_free(p);
}

static void
each_table_follows_only_the_keys_that_lead_to_it(void **state)
{
	struct dd_pg_subset sb = subset("users", 10, NULL, 0);
	struct dd_pg_subset_plan *p = plan(&sb);
	char *w;

	(void)state;
	/* items: down from users through orders; nothing references items, so nothing goes up to them */
	w = dd_pg_subset_where(p, ITEMS);
	assert_non_null(strstr(w, "public.orders"));
	assert_null(strstr(w, "public.employees"));
	assert_null(strstr(w, "public.events"));
	assert_null(strstr(w, "public.products"));
	free(w);
	/* products: only up from the items (reviews are not reached: they bring nothing) */
	w = dd_pg_subset_where(p, PRODUCTS);
	assert_non_null(strstr(w, "JOIN ONLY public.products p ON (c.sku) = (p.sku)"));
	assert_null(strstr(w, "public.reviews"));
	assert_null(strstr(w, "public.employees"));
	free(w);
	/* users: every key leads to them; a table whose rows are not dumped is no part of it */
	w = dd_pg_subset_where(p, USERS);
	assert_non_null(strstr(w, "public.employees"));
	assert_non_null(strstr(w, "public.events"));
	assert_null(strstr(w, "audit.logs"));
	free(w);
	dd_pg_subset_plan_free(p);
}

static void
others_empty_keeps_no_row_of_tables_it_does_not_reach(void **state)
{
	struct dd_pg_subset sb = subset("orders", 0, "id < 10 -- a comment", 1);
	struct dd_pg_subset_plan *p = plan(&sb);
	char *w;

	(void)state;
	w = dd_pg_subset_where(p, SETTINGS);
	assert_string_equal(w, " WHERE false");
	free(w);
	w = dd_pg_subset_where(p, REVIEWS);
	assert_string_equal(w, " WHERE false");
	free(w);
	/* employees reference users, which orders only reach up: not reached */
	w = dd_pg_subset_where(p, EMPLOYEES);
	assert_string_equal(w, " WHERE false");
	free(w);
	/* the condition on lines of its own: a comment in it cannot eat the closing parenthesis */
	w = dd_pg_subset_where(p, ORDERS);
	assert_non_null(strstr(w, "FROM ONLY public.orders WHERE (\nid < 10 -- a comment\n)"));
	free(w);
	dd_pg_subset_plan_free(p);
}

static void
bad_start_tables_are_refused_naming_the_line(void **state)
{
	struct dd_pg_subset_plan *p = NULL;
	struct dd_pg_subset sb;
	struct dd_pg_subset_fk on_partition[NFKS + 1];

	(void)state;
	sb = subset("nosuch", 10, NULL, 0);
	assert_int_equal(dd_pg_subset_plan_graph(&p, &sb, tables, NTABLES, fks, NFKS), -1);
	assert_string_equal(dd_error_last(), ".dnadata/profiles.ini:12: subset = the key: no table nosuch in the database");
	sb = subset("votes", 10, NULL, 0);
	assert_int_equal(dd_pg_subset_plan_graph(&p, &sb, tables, NTABLES, fks, NFKS), -1);
	assert_non_null(strstr(dd_error_last(), "table public.votes has no primary key, which a percentage needs"));
	sb = subset("votes", 0, "true", 0); /* a condition needs no key */
	assert_int_equal(dd_pg_subset_plan_graph(&p, &sb, tables, NTABLES, fks, NFKS), 0);
	dd_pg_subset_plan_free(p);
	sb = subset("logs", 0, "true", 0);
	assert_int_equal(dd_pg_subset_plan_graph(&p, &sb, tables, NTABLES, fks, NFKS), -1);
	assert_non_null(strstr(dd_error_last(), "table audit.logs is left out by exclude_tables or exclude_data"));
	/* a key declared on a partition itself, beside its partitioned table's */
	memcpy(on_partition, fks, sizeof(fks));
	on_partition[NFKS] = (struct dd_pg_subset_fk)FK(EVENTS_A, PRODUCTS, "id", "id");
	sb = subset("users", 10, NULL, 0);
	assert_int_equal(dd_pg_subset_plan_graph(&p, &sb, tables, NTABLES, on_partition, NFKS + 1), -1);
	assert_non_null(strstr(dd_error_last(), "tables public.events and public.events_a (a partition of it)"));
	assert_null(p);
}

static void
a_name_in_two_schemas_needs_its_schema(void **state)
{
	struct dd_pg_subset_table two[] = {
		{ 1, "a.t", "a", "t", 'r', "id", 0, 1 },
		{ 2, "b.t", "b", "t", 'r', "id", 0, 1 },
	};
	struct dd_pg_subset sb = subset("t", 5, NULL, 0);
	struct dd_pg_subset_plan *p = NULL;
	char *w;

	(void)state;
	assert_int_equal(dd_pg_subset_plan_graph(&p, &sb, two, 2, NULL, 0), -1);
	assert_non_null(strstr(dd_error_last(), "2 dumped tables are named t: name its schema"));
	sb.schema = "b";
	assert_int_equal(dd_pg_subset_plan_graph(&p, &sb, two, 2, NULL, 0), 0);
	w = dd_pg_subset_where(p, 2);
	assert_non_null(strstr(w, "FROM ONLY b.t WHERE"));
	free(w);
	assert_null(dd_pg_subset_where(p, 1)); /* no key between them: the other is kept whole */
	dd_pg_subset_plan_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(users_ten_percent_reaches_down_and_up_and_filters_the_rest),
		cmocka_unit_test(each_table_follows_only_the_keys_that_lead_to_it),
		cmocka_unit_test(others_empty_keeps_no_row_of_tables_it_does_not_reach),
		cmocka_unit_test(bad_start_tables_are_refused_naming_the_line),
		cmocka_unit_test(a_name_in_two_schemas_needs_its_schema),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
