/*
 * util/conninfo.h: libpq connection strings with their secrets hidden.
 *
 * libpq's own parser (PQconninfoParse) decides what a string means, in
 * both forms libpq accepts ("keyword=value ..." and postgresql:// or
 * postgres:// URIs), and which keywords are secret: those it marks with
 * dispchar '*' (password and sslpassword today). Every function here is
 * safe to call on a string that holds a password: neither the result nor
 * a recorded error ever contains a secret value.
 */
#ifndef DD_UTIL_CONNINFO_H
#define DD_UTIL_CONNINFO_H

struct dd_buf;
struct pg_conn;

/* What a secret value is replaced with. */
#define DD_CONNINFO_MASK "***"

/*
 * A copy of `conninfo` for display: the value of every secret keyword
 * (also in a URI's user:password@ and query) replaced by "***", the rest
 * exactly as written. NULL with an error when libpq cannot parse it (the
 * error never quotes the string). Caller frees.
 */
char *dd_conninfo_redact(const char *conninfo);

/*
 * A connection string that connects like `conninfo` but carries no
 * secret: every non-empty, non-secret keyword as keyword='value' ("" when
 * none). For handing to other programs, which find the password the way
 * libpq does (PGPASSWORD, ~/.pgpass). NULL with an error when libpq
 * cannot parse it. Caller frees.
 */
char *dd_conninfo_strip_secrets(const char *conninfo);

/*
 * The same for a live connection (libpq's PQconninfo: what it actually
 * used, defaults and PG* variables included), for child programs such as
 * pg_dump: every secret keyword left out, and the value of "password" (the
 * one a child takes from PGPASSWORD) in *password, or NULL. Caller frees
 * both (wipe the password).
 */
char *dd_conninfo_of_connection(struct pg_conn *c, char **password);

/*
 * A connection string that connects like `conninfo` but to database
 * `dbname` on the same server: every keyword it sets, secrets included
 * (for libpq in this process only: never show it, never hand it to a
 * child), with dbname replaced. NULL with an error when libpq cannot parse
 * it. Caller frees (wipe it).
 */
char *dd_conninfo_with_dbname(const char *conninfo, const char *dbname);

/*
 * A postgresql:// URL for `conninfo` without any secret, for programs
 * that read DATABASE_URL: host, port, user and dbname are the resolved
 * values given (NULL or "" = left out), every other non-secret keyword
 * `conninfo` sets goes in the query; all percent-encoded. A host that is
 * a socket directory or a list goes in the query as host=... (libpq reads
 * both forms). *password (may be NULL) gets the password `conninfo` sets,
 * or NULL: hand it to the child as PGPASSWORD. NULL with an error when
 * libpq cannot parse `conninfo`. Caller frees both (wipe the password).
 */
char *dd_conninfo_url(const char *conninfo, const char *host, const char *port, const char *user,
		      const char *dbname, char **password);

/* 1 if `conninfo` sets a secret keyword, 0 if not, -1 (error recorded) if libpq cannot parse it. */
int dd_conninfo_has_secret(const char *conninfo);

/* Append " keyword='value'" (no blank when `b` is empty), quoted as libpq parses it back. */
void dd_conninfo_put_pair(struct dd_buf *b, const char *keyword, const char *value);

#endif
