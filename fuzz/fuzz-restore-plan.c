/*
 * fuzz/fuzz-restore-plan.c: the restore's planner (pg/plan.c) on a hostile
 * post-data script (it comes from the store). Beyond "no crash": every
 * task's prerequisites come before it, and the dependents' lists match.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg/internal.h"
#include "pg/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct dd_plan_stream streams[] = { { "public.a", 100, 3 }, { "public.\"B\"", 10, 1 }, { NULL, 1, 0 } };
	static const struct dd_plan_rel rels[] = { { "public.a", 'r', 1 }, { "public.p", 'p', 0 }, { "public.m", 'm', 0 } };
	char *text = malloc(size + 1);
	struct dd_schema_entry *e = NULL;
	struct dd_plan p;
	size_t ne = 0, nusers = 0;

	memcpy(text, data, size);
	text[size] = '\0';
	dd_schema_split(&e, &ne, text, strlen(text));
	dd_plan_build(&p, streams, 3, e, ne, rels, 3, 1);
	for (size_t i = 0; i < p.n; i++) {
		for (size_t d = 0; d < p.t[i].ndeps; d++)
			if (p.t[i].deps[d] >= i)
				abort();
		for (size_t r = 0; r < p.t[i].nrel; r++)
			if (p.t[i].rel[r] >= p.nrels)
				abort();
		nusers += p.t[i].ndeps;
	}
	if (p.user_at[p.n] != nusers)
		abort();
	dd_plan_free(&p);
	dd_schema_entries_free(e, ne);
	free(text);
	return 0;
}
