/*
 * cmd/cmd-pii-check.c: `git dnadata pii-check [<profile>]`, the columns a
 * snapshot of the profile would capture that look personal (by name, type
 * or sampled values: pg/pii.c) and that no mask rule names (workflow/pii.c),
 * each with its reason and a mask line to paste. A linter's exit codes:
 * 0 nothing uncovered, 1 something uncovered (DD_EFOUND: no error line),
 * else as every command.
 *
 * JSON (stable; fields are only ever added):
 *   { "pii_check_version": 1, "profile": str, "database": str,
 *     "tables": int, "columns": int, "sampled_rows": int, "sample_rows": int (per table),
 *     "uncovered": int, "covered": int,
 *     "large_objects": int, "media": str|null (the media folder setting): captured as they are, never masked,
 *     "found": [ { "schema", "table", "column", "type": str, "kind": "email"|"phone"|"name"|"address"|
 *                  "birth"|"ip"|"national_id"|"bank"|"card", "found_by": "name"|"type"|"values"|"contents",
 *                  "reason": str, "sampled", "matched": int|null (found_by values or contents),
 *                  "covered": bool, "rule": str|null (the covering mask value as written),
 *                  "rule_line": int|null, "suggested": str (a mask line; a partition's names its
 *                  top-most partitioned table) } ] }
 * "found" holds covered columns too, with or without --all.
 */
#include "cmd/setup.h"
#include "dnadata.h"
#include "util/json.h"
#include "workflow/pii.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const usage[] = {
	"git dnadata pii-check [<profile>] [--all] [--json] [--sample <rows>]",
	"",
	"Lists the columns a snapshot of the profile (default: the active one) would",
	"capture that look like personal data and that no mask rule of the profile",
	"names: by their name (email, phone, first_name, street, birth_date, ip, ssn,",
	"iban ...), their type (inet, cidr) or a sample of their values (e-mail",
	"addresses, phone numbers, IP addresses, IBANs, card numbers, US SSNs), each with",
	"its reason and a mask line to paste into .dnadata/profiles.ini. Tables left out",
	"by exclude_tables or exclude_data are not looked at. Read only: a short READ",
	"ONLY transaction per table, at most <rows> rows sampled per table (default",
	"1000; 0: names and types only). A rule of any kind covers a column: `keep`",
	"marks it reviewed and not personal. Exit 0 when nothing is uncovered, 1 when",
	"something is.",
	"",
	"Examples:",
	"  git dnadata pii-check",
	"  git dnadata pii-check customer1 --all",
	"  git dnadata pii-check customer1 --json | jq -r '.found[] | select(.covered | not) | .suggested'",
	NULL,
};

static void
put_column(struct dd_buf *o, const struct dd_pg_pii_column *c)
{
	dd_buf_puts(o, "  ");
	dd_buf_put_printable(o, c->schema, strlen(c->schema));
	dd_buf_putc(o, '.');
	dd_buf_put_printable(o, c->table, strlen(c->table));
	dd_buf_putc(o, '.');
	dd_buf_put_printable(o, c->column, strlen(c->column));
	dd_buf_printf(o, ": %s (", dd_pg_pii_kind_text(c->kind));
	dd_buf_put_printable(o, c->reason, strlen(c->reason));
	dd_buf_putc(o, ')');
}

/* The mask line of each uncovered column, once per column named (a partitioned table's covers its partitions). */
static void
put_suggestions(struct dd_buf *o, const struct dd_pii_check *chk)
{
	struct dd_buf seen = DD_BUF_INIT;

	dd_buf_putc(&seen, '\n');
	for (size_t i = 0; i < chk->report.ncols; i++) {
		char *line, *key;
		if (chk->rule[i])
			continue;
		line = dd_workflow_pii_suggest(&chk->report.cols[i]);
		/* the line without its rule (the last word): the partitions' kinds may differ */
		key = dd_asprintf("\n%.*s\n", (int)(strrchr(line, ' ') - line), line);
		if (!strstr(seen.ptr, key)) {
			dd_buf_put_printable(o, line, strlen(line));
			dd_buf_putc(o, '\n');
			dd_buf_puts(&seen, key + 1);
		}
		free(key);
		free(line);
	}
	dd_buf_release(&seen);
}

/* Large objects and the media folder: captured as they are, masked profile or not, and not looked at. */
static void
put_as_they_are(struct dd_buf *o, const struct dd_pii_check *chk)
{
	size_t lo = chk->report.large_objects;

	if (lo)
		dd_buf_printf(o, "%zu large object%s", lo, lo == 1 ? "" : "s");
	if (lo && chk->media)
		dd_buf_puts(o, " and the media folder are captured as they are: masking rules do not apply to them\n");
	else if (chk->media)
		dd_buf_puts(o, "the media folder is captured as it is: masking rules do not apply to it\n");
	else if (lo)
		dd_buf_printf(o, " %s captured as %s: masking rules do not apply to %s\n", lo == 1 ? "is" : "are",
			      lo == 1 ? "it is" : "they are", lo == 1 ? "it" : "them");
}

static void
print_text(const struct dd_profile *p, const struct dd_pii_check *chk, int all)
{
	const struct dd_pg_pii_report *r = &chk->report;
	struct dd_buf o = DD_BUF_INIT;
	size_t covered = r->ncols - chk->uncovered;

	dd_buf_printf(&o, "profile %s, database ", p->name);
	dd_buf_put_printable(&o, r->database, strlen(r->database));
	dd_buf_printf(&o, ": %zu tables, %zu columns, %zu rows sampled\n", r->tables, r->columns, r->sampled_rows);
	if (!chk->uncovered)
		dd_buf_printf(&o, "no uncovered column: %s\n",
			      r->ncols ? "a mask rule names every column that looks personal" : "nothing looks personal");
	else
		dd_buf_printf(&o, "%zu column%s look%s personal and no mask rule names %s:\n", chk->uncovered,
			      chk->uncovered == 1 ? "" : "s", chk->uncovered == 1 ? "s" : "",
			      chk->uncovered == 1 ? "it" : "them");
	for (size_t i = 0; i < r->ncols; i++)
		if (!chk->rule[i]) {
			put_column(&o, &r->cols[i]);
			dd_buf_putc(&o, '\n');
		}
	if (all && covered) {
		dd_buf_printf(&o, "covered by a mask rule (%zu):\n", covered);
		for (size_t i = 0; i < r->ncols; i++)
			if (chk->rule[i]) {
				put_column(&o, &r->cols[i]);
				dd_buf_puts(&o, ": mask = ");
				dd_buf_put_printable(&o, chk->rule[i]->text, strlen(chk->rule[i]->text));
				dd_buf_printf(&o, " (line %zu)\n", chk->rule[i]->line);
			}
	} else if (covered) {
		dd_buf_printf(&o, "(%zu more covered by mask rules: --all lists them)\n", covered);
	}
	put_as_they_are(&o, chk);
	if (chk->uncovered) {
		dd_buf_printf(&o, "\nMask lines for [profile \"%s\"] in .dnadata/profiles.ini (review each rule; `keep` marks "
			      "a column reviewed and not personal):\n", p->name);
		put_suggestions(&o, chk);
	}
	fwrite(o.ptr, 1, o.len, stdout);
	dd_buf_release(&o);
}

static const char *
sign_name(enum dd_pg_pii_sign s)
{
	return s == DD_PG_PII_BY_NAME ? "name" : s == DD_PG_PII_BY_TYPE ? "type" : s == DD_PG_PII_BY_VALUES ? "values"
													: "contents";
}

static void
json_column(struct dd_json *j, const struct dd_pg_pii_column *c, const struct dd_mask_rule *rule)
{
	char *line = dd_workflow_pii_suggest(c);

	dd_json_object_begin(j, NULL);
	dd_json_str(j, "schema", c->schema);
	dd_json_str(j, "table", c->table);
	dd_json_str(j, "column", c->column);
	dd_json_str(j, "type", c->type);
	dd_json_str(j, "kind", dd_pg_pii_kind_name(c->kind));
	dd_json_str(j, "found_by", sign_name(c->sign));
	dd_json_str(j, "reason", c->reason);
	if (c->sign == DD_PG_PII_BY_VALUES || c->sign == DD_PG_PII_BY_CONTENTS) {
		dd_json_int(j, "sampled", c->sampled);
		dd_json_int(j, "matched", c->matched);
	} else {
		dd_json_null(j, "sampled");
		dd_json_null(j, "matched");
	}
	dd_json_bool(j, "covered", rule != NULL);
	dd_json_str(j, "rule", rule ? rule->text : NULL);
	if (rule)
		dd_json_int(j, "rule_line", (int64_t)rule->line);
	else
		dd_json_null(j, "rule_line");
	dd_json_str(j, "suggested", line);
	dd_json_object_end(j);
	free(line);
}

/* The JSON shape is at the top of this file. */
static void
print_json(const struct dd_profile *p, const struct dd_pii_check *chk, int sample)
{
	const struct dd_pg_pii_report *r = &chk->report;
	struct dd_buf o = DD_BUF_INIT;
	struct dd_json j;

	dd_json_init(&j, &o);
	dd_json_object_begin(&j, NULL);
	dd_json_int(&j, "pii_check_version", 1);
	dd_json_str(&j, "profile", p->name);
	dd_json_str(&j, "database", r->database);
	dd_json_int(&j, "tables", (int64_t)r->tables);
	dd_json_int(&j, "columns", (int64_t)r->columns);
	dd_json_int(&j, "sampled_rows", (int64_t)r->sampled_rows);
	dd_json_int(&j, "sample_rows", sample);
	dd_json_int(&j, "uncovered", (int64_t)chk->uncovered);
	dd_json_int(&j, "covered", (int64_t)(r->ncols - chk->uncovered));
	dd_json_int(&j, "large_objects", (int64_t)r->large_objects);
	dd_json_str(&j, "media", chk->media);
	dd_json_array_begin(&j, "found");
	for (size_t i = 0; i < r->ncols; i++)
		json_column(&j, &r->cols[i], chk->rule[i]);
	dd_json_array_end(&j);
	dd_json_object_end(&j);
	dd_buf_putc(&o, '\n');
	fwrite(o.ptr, 1, o.len, stdout);
	dd_buf_release(&o);
}

static int
cmd_pii_check(int argc, char **argv)
{
	int all = 0, json = 0, sample = DD_PG_PII_SAMPLE_ROWS, rc;
	const struct dd_option opts[] = {
		{ DD_OPT_BOOL, 0, "all", &all, NULL, "also list the columns a mask rule covers, with the rule" },
		{ DD_OPT_BOOL, 0, "json", &json, NULL, "print one JSON object on stdout" },
		{ DD_OPT_INT, 0, "sample", &sample, "rows", "rows sampled per table (default 1000; 0: names and types only)" },
		DD_OPT_END_MARK,
	};
	struct dd_cmd_setup s;
	struct dd_pii_check chk;

	if ((rc = dd_cmd_setup(&s, argc, argv, opts, usage, DD_CMD_PROFILE_OPTIONAL)) != 0)
		return rc;
	rc = -1;
	if (sample > 1000000) {
		rc = dd_usage_error("pii-check", "--sample %d: at most 1000000 rows per table", sample);
		goto out;
	}
	if (dd_workflow_pii_check(s.cfg, s.profile, NULL, sample, &chk) < 0) {
		dd_error_wrap("checking profile %s", s.profile->name);
		goto out;
	}
	if (json)
		print_json(s.profile, &chk, sample);
	else
		print_text(s.profile, &chk, all);
	rc = fflush(stdout) == 0 ? 0 : dd_error_errno("cannot write to stdout");
	if (rc == 0 && chk.uncovered)
		rc = DD_EFOUND;
	dd_workflow_pii_release(&chk);
out:
	dd_cmd_setup_free(&s);
	return rc;
}

const struct dd_command dd_cmd_pii_check = { "pii-check", "columns that look personal and that no mask rule covers",
					     cmd_pii_check };
