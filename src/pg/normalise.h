/*
 * pg/normalise.c: a pg_dump plain-format schema script made stable and
 * readable for review (issue 18): schema-dump's file, an inline profile's
 * schema.sql, promote-schema and diff's schema part all go through it, so
 * two dumps of the same schema are byte-identical and one added column is
 * one changed line.
 *
 * Dropped: pg_dump's version and timestamp comments, `\restrict` /
 * `\unrestrict` lines (their key is random per run), the session preamble
 * (SET statement_timeout ..., SELECT pg_catalog.set_config('search_path'...),
 * and the blank-line runs they leave. Kept: every statement, in an order
 * that depends on the objects alone (not on OIDs or creation order).
 * Added: a constant preamble of the settings a load needs (all of
 * pg_dump's but client_encoding and transaction_timeout), so `psql -f`
 * loads the text alone; none for an empty text. Rewritten: the element
 * lists of CREATE TABLE and CREATE TYPE ... AS ( / AS ENUM ( with the comma
 * first ("    id integer" / "  , name text"), when every line is one whole
 * element, so one added, dropped or changed element but the first is one
 * line in a diff. docs/DESIGN-NOTES.md "The normalised schema" has the rules.
 *
 * Pure (no I/O, no PostgreSQL): unit-tested and fuzzed. `in` is hostile
 * (it may come from a manifest): any bytes, any length.
 * Returns 0 with `out` holding the normalised text, -1 on error (set).
 */
#ifndef DD_PG_NORMALISE_H
#define DD_PG_NORMALISE_H

#include "util/buf.h"

#include <stddef.h>

int dd_schema_normalise(const char *in, size_t len, struct dd_buf *out);
/*
 * The same with the constant preamble only if `with_preamble`: the second
 * part of a text whose first part has it (an inline profile's schema.sql
 * holds pre-data, a marker line, then post-data: pg/sqlout.c).
 */
int dd_schema_normalise_part(const char *in, size_t len, int with_preamble, struct dd_buf *out);

#endif
