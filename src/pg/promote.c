/*
 * pg/promote.c: does a data.sql load into a schema? (promote-schema, issue
 * 18). Plain SQL texts run over libpq (sqlload.c's dd_pg_run_sql) into a
 * database made for it (a scratch database, pg/load.c): the schema's
 * pre-data part with function bodies unchecked, as pg_dump's preamble has
 * it, the rows, then its post-data part (constraints, indexes, triggers).
 * The first failing statement stops it, and the error is the server's
 * message with the statement's place.
 */
#include "pg/pg.h"
#include "pg/internal.h"
#include "util/buf.h"
#include "util/err.h"

#include <libpq-fe.h>

int
dd_pg_load_sql(const char *conninfo, const char *db, const struct dd_buf *schema, const struct dd_buf *data)
{
	PGconn *c = NULL;
	int rc = -1;

	if (dd_pg_connect(&c, conninfo, db) < 0)
		return -1;
	dd_pg_cancel_register(c);
	/* schema.sql's layout: pre-data, the rows, post-data (sqlload.c) */
	if (dd_pg_run_sql_files(c, schema, data, "the schema", "the data") < 0)
		goto out;
	rc = 0;
out:
	dd_pg_cancel_unregister(c);
	PQfinish(c);
	return rc;
}
