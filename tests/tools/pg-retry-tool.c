/*
 * tests/tools/pg-retry-tool.c: runs one script through the restore's
 * deadlock retry (dd_pg_exec_retrying), for t-pg-restore-retry.sh.
 *
 *   pg-retry-tool CONNINFO SQL    run SQL, then SELECT 1 on the same session; exit 0 when both succeed
 *
 * Errors print as the program does; exit 1.
 */
#include "pg/internal.h"
#include "util/err.h"

#include <stdio.h>

int
main(int argc, char **argv)
{
	PGconn *c = NULL;
	int rc = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: pg-retry-tool CONNINFO SQL\n");
		return 2;
	}
	if (dd_pg_connect(&c, argv[1], NULL) == 0 && dd_pg_exec_retrying(c, argv[2]) == 0 && dd_pg_exec(c, "SELECT 1") == 0)
		rc = 0;
	else
		fprintf(stderr, "error: %s\n", dd_error_last() ? dd_error_last() : "failed");
	PQfinish(c);
	return rc;
}
