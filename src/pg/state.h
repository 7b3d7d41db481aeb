/*
 * pg/state.h: the parts of <statedir>/pg/ bookkeeping that only src/pg/
 * uses (the public reader is in pg.h; layout in state.c).
 */
#ifndef DD_PG_STATE_H
#define DD_PG_STATE_H

#include <stddef.h>

struct dd_pg_target;

/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ". Caller frees. */
char *dd_pg_now_iso(void);
/* <statedir>/pg/<key of target>. Caller frees. */
char *dd_pg_state_dir(const char *statedir, const struct dd_pg_target *t);
int dd_pg_state_set_target(const char *statedir, const struct dd_pg_target *t, const char *snapshot,
			   const char *profile, const char *how, const char *fingerprint);
int dd_pg_state_add_stash(const char *statedir, const struct dd_pg_target *t, const char *stash,
			  const char *snapshot, const char *profile);
/* Record that this process is building database `name`. */
int dd_pg_state_pending_add(const char *statedir, const struct dd_pg_target *t, const char *name);
void dd_pg_state_pending_remove(const char *statedir, const struct dd_pg_target *t, long pid);
/* Databases recorded as being built by processes that no longer exist. */
int dd_pg_state_pending_stale(const char *statedir, const struct dd_pg_target *t, char ***names, long **pids,
			      size_t *n);

#endif
