/*
 * tests/unit/test-restore-plan.c: the restore's dependency graph
 * (pg/plan.c): each post-data entry waits for what it needs (its table's
 * rows, the referenced key, both indexes of an attachment), an entry the
 * planner cannot read waits at the barrier after everything it might need,
 * priorities put the COPY of a table with a GIN index first, and locks
 * keep conflicting tasks apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pg/internal.h"
#include "pg/plan.h"

#define ENTRY(name, type) "--\n-- Name: " name "; Type: " type "; Schema: public; Owner: -\n--\n\n"

static const char post[] =
	"SET statement_timeout = 0;\n"
	ENTRY("big big_pkey", "CONSTRAINT") "ALTER TABLE ONLY public.big\n    ADD CONSTRAINT big_pkey PRIMARY KEY (id);\n\n"
	ENTRY("docs docs_pkey", "CONSTRAINT") "ALTER TABLE ONLY public.docs\n    ADD CONSTRAINT docs_pkey PRIMARY KEY (id);\n\n"
	ENTRY("docs_meta", "INDEX") "CREATE INDEX docs_meta ON public.docs USING gin (meta);\n\n"
	"SET default_tablespace = fast;\n\n"
	ENTRY("docs_at", "INDEX") "CREATE INDEX docs_at ON public.docs USING btree (at);\n\n"
	ENTRY("docs_id", "INDEX") "CREATE INDEX docs_id ON public.docs USING btree (id);\n\nALTER TABLE public.docs CLUSTER ON docs_id;\n\n"
	"SET default_tablespace = '';\n\n"
	ENTRY("Odd Odd_pkey", "CONSTRAINT") "ALTER TABLE ONLY public.\"Odd\"\n    ADD CONSTRAINT \"Odd_pkey\" PRIMARY KEY (\"Id\");\n\n"
	ENTRY("ev ev_pkey", "CONSTRAINT") "ALTER TABLE ONLY public.ev\n    ADD CONSTRAINT ev_pkey PRIMARY KEY (id, at);\n\n"
	ENTRY("ev_1 ev_1_pkey", "CONSTRAINT") "ALTER TABLE ONLY public.ev_1\n    ADD CONSTRAINT ev_1_pkey PRIMARY KEY (id, at);\n\n"
	ENTRY("weird", "INDEX") "CREATE INDEX weird ON something odd;\n\n"
	ENTRY("ev_1_pkey", "INDEX ATTACH") "ALTER INDEX public.ev_pkey ATTACH PARTITION public.ev_1_pkey;\n\n"
	ENTRY("docs docs_big_fkey", "FK CONSTRAINT") "ALTER TABLE ONLY public.docs\n    ADD CONSTRAINT docs_big_fkey FOREIGN KEY (big_id, \"x)\") REFERENCES public.big(id, \"x)\");\n\n"
	ENTRY("big big_odd_fkey", "FK CONSTRAINT") "ALTER TABLE ONLY public.big\n    ADD CONSTRAINT big_odd_fkey FOREIGN KEY (o) REFERENCES public.\"Odd\"(\"Id\");\n\n"
	ENTRY("docs docs_ev_fkey", "FK CONSTRAINT") "ALTER TABLE public.docs\n    ADD CONSTRAINT docs_ev_fkey FOREIGN KEY (e, a) REFERENCES public.ev(id, at);\n\n"
	ENTRY("ev_1_st", "STATISTICS") "CREATE STATISTICS public.ev_1_st (dependencies) ON (a + 1), \"from\" FROM public.ev_1;\n\n"
	ENTRY("docs t1", "TRIGGER") "CREATE TRIGGER t1 AFTER INSERT ON public.docs FOR EACH ROW EXECUTE FUNCTION public.f();\n\n";

static const struct dd_plan_stream streams[] = {
	{ "public.big", 1000000, 90000 }, { "public.docs", 800000, 1000 }, { "public.\"Odd\"", 10, 1 },
	{ "public.ev_1", 5000, 50 }, { NULL, 7, 0 },
};
static const struct dd_plan_rel rels[] = {
	{ "public.big", 'r', 0 }, { "public.ev", 'p', 0 }, { "public.mv", 'm', 0 }, { "public.ev_1", 'r', 1 },
};

struct fx {
	struct dd_schema_entry *e;
	size_t ne;
	struct dd_plan p;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	dd_schema_split(&f->e, &f->ne, post, strlen(post));
	dd_plan_build(&f->p, streams, 5, f->e, f->ne, rels, sizeof(rels) / sizeof(rels[0]), 1);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	dd_plan_free(&f->p);
	dd_schema_entries_free(f->e, f->ne);
	free(f);
	return 0;
}

static size_t
task(const struct dd_plan *p, const char *label)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->t[i].label, label))
			return i;
	fail_msg("no task %s", label);
	return 0;
}

/* Does task a wait (directly or through others) for task b? */
static int
waits(const struct dd_plan *p, size_t a, size_t b)
{
	if (a == b)
		return 1;
	for (size_t i = 0; i < p->t[a].ndeps; i++)
		if (waits(p, p->t[a].deps[i], b))
			return 1;
	return 0;
}

static void
every_prerequisite_comes_first(void **state)
{
	struct fx *f = *state;
	for (size_t i = 0; i < f->p.n; i++)
		for (size_t d = 0; d < f->p.t[i].ndeps; d++)
			assert_true(f->p.t[i].deps[d] < i);
}

static void
keys_wait_for_their_tables_rows_only(void **state)
{
	struct dd_plan *p = &((struct fx *)*state)->p;
	size_t gin = task(p, "INDEX \"public\".\"docs_meta\" ON \"public\".\"docs\"");
	assert_true(waits(p, gin, task(p, "COPY \"public\".\"docs\"")));
	assert_false(waits(p, gin, task(p, "COPY \"public\".\"big\"")));
	size_t odd = task(p, "CONSTRAINT \"public\".\"Odd_pkey\" ON \"public\".\"Odd\"");
	assert_true(waits(p, odd, task(p, "COPY \"public\".\"Odd\"")));
	/* a partitioned parent has no rows of its own: after all of them */
	size_t ev = task(p, "CONSTRAINT \"public\".\"ev_pkey\" ON \"public\".\"ev\"");
	assert_true(waits(p, ev, task(p, "COPY \"public\".\"big\"")));
}

static void
an_entry_it_cannot_read_waits_for_everything_before_it(void **state)
{
	struct dd_plan *p = &((struct fx *)*state)->p;
	size_t weird = task(p, "INDEX (unmapped)");
	for (size_t i = 0; i < p->n; i++)
		if (p->t[i].kind == DD_PLAN_COPY || p->t[i].kind == DD_PLAN_LO)
			assert_true(waits(p, weird, i));
	/* and since a key is unmapped, every FK waits for every key */
	assert_true(waits(p, task(p, "FK CONSTRAINT \"public\".\"big_odd_fkey\" ON \"public\".\"big\" REFERENCES \"public\".\"Odd\""),
			  weird));
}

static void
fks_wait_for_both_tables_and_the_referenced_key(void **state)
{
	struct dd_plan *p = &((struct fx *)*state)->p;
	size_t fk = task(p, "FK CONSTRAINT \"public\".\"docs_big_fkey\" ON \"public\".\"docs\" REFERENCES \"public\".\"big\"");
	assert_true(waits(p, fk, task(p, "COPY \"public\".\"docs\"")));
	assert_true(waits(p, fk, task(p, "CONSTRAINT \"public\".\"big_pkey\" ON \"public\".\"big\"")));
	size_t att = task(p, "INDEX ATTACH \"public\".\"ev_1_pkey\" TO \"public\".\"ev_pkey\"");
	assert_true(waits(p, att, task(p, "CONSTRAINT \"public\".\"ev_1_pkey\" ON \"public\".\"ev_1\"")));
	assert_true(waits(p, att, task(p, "CONSTRAINT \"public\".\"ev_pkey\" ON \"public\".\"ev\"")));
	/* a partitioned referenced table: after every attachment */
	assert_true(waits(p, task(p, "FK CONSTRAINT \"public\".\"docs_ev_fkey\" ON \"public\".\"docs\" REFERENCES \"public\".\"ev\""),
			  att));
}

static void
the_rest_and_analyze_come_after_what_they_need(void **state)
{
	struct dd_plan *p = &((struct fx *)*state)->p;
	size_t rest = task(p, "POST-DATA REST (2 entries in order)");
	assert_non_null(strstr(p->t[rest].sql, "CREATE TRIGGER t1"));
	for (size_t i = 0; i < rest; i++)
		if (p->t[i].kind != DD_PLAN_BARRIER)
			assert_true(waits(p, rest, i));
	size_t an = task(p, "ANALYZE \"public\".\"big\"");
	assert_true(waits(p, an, task(p, "CONSTRAINT \"public\".\"big_pkey\" ON \"public\".\"big\"")));
	assert_false(waits(p, an, rest));
	assert_true(waits(p, task(p, "ANALYZE MATERIALIZED VIEWS"), rest));
	/* ANALYZE and an FK lock the table against each other: the FK, on the way to the rest, goes first */
	assert_true(waits(p, an, task(p, "FK CONSTRAINT \"public\".\"docs_big_fkey\" ON \"public\".\"docs\" REFERENCES \"public\".\"big\"")));
}

static void
a_tables_indexes_wait_for_its_constraints(void **state)
{
	struct dd_plan *p = &((struct fx *)*state)->p;
	size_t id = task(p, "INDEX \"public\".\"docs_id\" ON \"public\".\"docs\"");
	/* docs_id carries CLUSTER ON: exclusive, so before the shared GIN build too */
	assert_true(waits(p, task(p, "INDEX \"public\".\"docs_meta\" ON \"public\".\"docs\""), id));
	assert_false(waits(p, id, task(p, "INDEX \"public\".\"docs_meta\" ON \"public\".\"docs\"")));
	assert_true(waits(p, task(p, "INDEX \"public\".\"docs_meta\" ON \"public\".\"docs\""),
			  task(p, "CONSTRAINT \"public\".\"docs_pkey\" ON \"public\".\"docs\"")));
}

static void
a_tables_plain_indexes_build_side_by_side(void **state)
{
	struct dd_plan *p = &((struct fx *)*state)->p;
	size_t gin = task(p, "INDEX \"public\".\"docs_meta\" ON \"public\".\"docs\"");
	size_t at = task(p, "INDEX \"public\".\"docs_at\" ON \"public\".\"docs\"");
	/* both take SHARE: neither waits for the other, both for the exclusive ones */
	assert_false(waits(p, gin, at));
	assert_false(waits(p, at, gin));
	assert_true(waits(p, at, task(p, "CONSTRAINT \"public\".\"docs_pkey\" ON \"public\".\"docs\"")));
	assert_true(waits(p, at, task(p, "INDEX \"public\".\"docs_id\" ON \"public\".\"docs\"")));
}

static void
an_inheritance_parent_is_analyzed_after_all_rows(void **state)
{
	struct dd_plan *p = &((struct fx *)*state)->p;
	/* ev_1 (given children here) waits for every COPY, not only its own and its keys' */
	size_t an = task(p, "ANALYZE \"public\".\"ev_1\"");
	assert_true(waits(p, an, task(p, "COPY \"public\".\"big\"")));
	assert_true(waits(p, an, task(p, "COPY \"public\".\"docs\"")));
}

static void
each_entry_runs_under_the_tablespace_it_was_dumped_under(void **state)
{
	struct dd_plan *p = &((struct fx *)*state)->p;
	const char *set = "SET default_tablespace = fast;\nSET default_table_access_method = heap;\n";
	/* docs_id follows docs_at, which changed the tablespace: it has no SET of its own */
	const char *id = p->t[task(p, "INDEX \"public\".\"docs_id\" ON \"public\".\"docs\"")].sql;
	assert_memory_equal(id, set, strlen(set));
	assert_non_null(strstr(id, "CREATE INDEX docs_id"));
	/* docs_meta came before the change, the rest after it was undone */
	const char *meta = p->t[task(p, "INDEX \"public\".\"docs_meta\" ON \"public\".\"docs\"")].sql;
	assert_memory_equal(meta, "SET default_tablespace = '';\n", 29);
	assert_memory_equal(p->t[task(p, "POST-DATA REST (2 entries in order)")].sql, "SET default_tablespace = '';\n", 29);
}

static void
a_table_with_extended_statistics_is_analyzed_after_they_are_created(void **state)
{
	struct dd_plan *p = &((struct fx *)*state)->p;
	size_t rest = task(p, "POST-DATA REST (2 entries in order)");
	assert_non_null(strstr(p->t[rest].sql, "CREATE STATISTICS public.ev_1_st"));
	assert_true(waits(p, task(p, "ANALYZE \"public\".\"ev_1\""), rest));
	assert_false(waits(p, task(p, "ANALYZE \"public\".\"big\""), rest));
}

static void
a_statistics_entry_it_cannot_read_makes_every_analyze_wait(void **state)
{
	(void)state;
	static const char odd[] = "SET statement_timeout = 0;\n"
		ENTRY("st", "STATISTICS") "CREATE STATISTICS public.st ON a, b;\n\n";
	struct dd_schema_entry *e;
	size_t ne;
	struct dd_plan p;
	dd_schema_split(&e, &ne, odd, strlen(odd));
	dd_plan_build(&p, streams, 5, e, ne, rels, sizeof(rels) / sizeof(rels[0]), 0);
	size_t rest = task(&p, "POST-DATA REST (1 entries in order)");
	assert_true(waits(&p, task(&p, "ANALYZE \"public\".\"big\""), rest));
	assert_true(waits(&p, task(&p, "ANALYZE \"public\".\"ev\""), rest));
	dd_plan_free(&p);
	dd_schema_entries_free(e, ne);
}

static void
a_table_with_a_gin_index_loads_first(void **state)
{
	struct dd_plan *p = &((struct fx *)*state)->p;
	/* docs is smaller than big, but its GIN build makes its chain longer */
	assert_true(p->t[task(p, "COPY \"public\".\"docs\"")].prio > p->t[task(p, "COPY \"public\".\"big\"")].prio);
	assert_true(dd_plan_am_factor("gin") > dd_plan_am_factor("btree"));
}

static void
an_index_entry_with_a_second_statement_locks_the_table(void **state)
{
	struct dd_plan *p = &((struct fx *)*state)->p;
	const struct dd_plan_task *gin = &p->t[task(p, "INDEX \"public\".\"docs_meta\" ON \"public\".\"docs\"")];
	const struct dd_plan_task *cl = &p->t[task(p, "INDEX \"public\".\"docs_id\" ON \"public\".\"docs\"")];
	assert_int_equal(gin->nrel, 1);
	assert_int_equal(gin->mode[0], DD_LOCK_SHARE);
	assert_int_equal(cl->nrel, 1);
	assert_int_equal(cl->mode[0], DD_LOCK_EXCL);
}

static void
locks_conflict_as_the_server_says(void **state)
{
	(void)state;
	assert_false(dd_plan_lock_conflict(DD_LOCK_SHARE, DD_LOCK_SHARE));
	assert_false(dd_plan_lock_conflict(DD_LOCK_ROWS, DD_LOCK_ANALYZE));
	assert_true(dd_plan_lock_conflict(DD_LOCK_SHARE, DD_LOCK_ANALYZE));
	assert_true(dd_plan_lock_conflict(DD_LOCK_ANALYZE, DD_LOCK_ANALYZE));
	assert_true(dd_plan_lock_conflict(DD_LOCK_ROWS, DD_LOCK_SHARE));
	assert_true(dd_plan_lock_conflict(DD_LOCK_EXCL, DD_LOCK_ROWS));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(every_prerequisite_comes_first, setup, teardown),
		cmocka_unit_test_setup_teardown(keys_wait_for_their_tables_rows_only, setup, teardown),
		cmocka_unit_test_setup_teardown(an_entry_it_cannot_read_waits_for_everything_before_it, setup, teardown),
		cmocka_unit_test_setup_teardown(fks_wait_for_both_tables_and_the_referenced_key, setup, teardown),
		cmocka_unit_test_setup_teardown(the_rest_and_analyze_come_after_what_they_need, setup, teardown),
		cmocka_unit_test_setup_teardown(a_table_with_a_gin_index_loads_first, setup, teardown),
		cmocka_unit_test_setup_teardown(a_tables_indexes_wait_for_its_constraints, setup, teardown),
		cmocka_unit_test_setup_teardown(an_index_entry_with_a_second_statement_locks_the_table, setup, teardown),
		cmocka_unit_test_setup_teardown(a_tables_plain_indexes_build_side_by_side, setup, teardown),
		cmocka_unit_test_setup_teardown(an_inheritance_parent_is_analyzed_after_all_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(each_entry_runs_under_the_tablespace_it_was_dumped_under, setup, teardown),
		cmocka_unit_test_setup_teardown(a_table_with_extended_statistics_is_analyzed_after_they_are_created, setup,
						teardown),
		cmocka_unit_test(a_statistics_entry_it_cannot_read_makes_every_analyze_wait),
		cmocka_unit_test(locks_conflict_as_the_server_says),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
