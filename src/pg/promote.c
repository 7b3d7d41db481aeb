/*
 * pg/promote.c: does a data.sql load into a schema? (promote-schema, issue
 * 18). Plain SQL texts run over libpq (sqlload.c's dd_pg_run_sql) into a
 * database made for it (a scratch database, pg/load.c): the schema with
 * function bodies unchecked, as pg_dump's preamble has it, then the rows.
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
	if (dd_pg_exec(c, "SET check_function_bodies = false; SET client_min_messages = warning") < 0)
		goto out;
	/* the schema's preamble sets search_path to '': the data runs under the default, as it always did */
	if (dd_pg_run_sql(c, schema->ptr ? schema->ptr : "", schema->len, "the schema") < 0 ||
	    dd_pg_exec(c, "RESET search_path") < 0 ||
	    dd_pg_run_sql(c, data->ptr ? data->ptr : "", data->len, "the data") < 0)
		goto out;
	if (PQtransactionStatus(c) != PQTRANS_IDLE) {
		dd_error("the data leaves a transaction open (no COMMIT at its end?)");
		goto out;
	}
	rc = 0;
out:
	dd_pg_cancel_unregister(c);
	PQfinish(c);
	return rc;
}
