/*
 * workflow/pii.h: a profile's columns that look personal against its mask
 * rules (issue 21): `git dnadata pii-check`, and the refusal of a
 * `masked = required` profile's snapshot while one is uncovered.
 */
#ifndef DD_WORKFLOW_PII_H
#define DD_WORKFLOW_PII_H

#include "pg/pg.h"

#include <stddef.h>

struct dd_config;
struct dd_profile;
struct dd_mask_rule;

struct dd_pii_check {
	struct dd_pg_pii_report report;
	const struct dd_mask_rule **rule; /* per report.cols[i]: the rule that covers it (borrowed), or NULL */
	size_t uncovered;
	const char *media;                /* the profile's media folder setting (borrowed), or NULL */
};

/*
 * Look for personal columns in what a snapshot of `p` would capture (its
 * database, or database `source_db` on the same server when not NULL;
 * its exclude lists) with `sample_rows` rows sampled per table, and
 * match each against p's mask rules. A rule covers a column when it names
 * its table, or an ancestor of it (partitions, inheritance), and column
 * (and its schema, when it names one), whatever its rule: `keep` says
 * "reviewed: not personal". 0 (release `out`) or -1.
 */
int dd_workflow_pii_check(const struct dd_config *cfg, const struct dd_profile *p, const char *source_db,
			  int sample_rows, struct dd_pii_check *out);
void dd_workflow_pii_release(struct dd_pii_check *c);

/*
 * The mask line to paste for column `c`: "mask = public.users.email
 * fake_email" (a partition's names its top-most partitioned table), the
 * rule a first guess from its kind (and whether it may be null), names
 * double-quoted where profiles.ini needs it. Caller frees.
 */
char *dd_workflow_pii_suggest(const struct dd_pg_pii_column *c);

/*
 * `masked = required`: 0 when every column of `p` that looks personal is
 * covered, else -1 naming the first uncovered one (nothing is captured).
 */
int dd_workflow_pii_required(const struct dd_config *cfg, const struct dd_profile *p, const char *source_db);

#endif
