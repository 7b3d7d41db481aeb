/*
 * config/internal.h: what the files of config/ share, and nothing else
 * includes.
 *
 *   config.c   the struct: new/free, profile names, lookups
 *   parse.c    one file's text -> struct (the line reader handed to inih,
 *              section headers, "file:line: ..." errors)
 *   keys.c     the table of every key and the inih handler that checks and
 *              stores each "key = value"
 *   resolve.c  profiles.ini + config.ini + environment + flags -> one view
 *   write.c    new files, appended profiles, the active profile, in place
 *   redact.c   what of a setting may be shown (passwords hidden)
 */
#ifndef DD_CONFIG_INTERNAL_H
#define DD_CONFIG_INTERNAL_H

#include "config/config.h"
#include "util/buf.h"

#include <stddef.h>

#define DD_PROFILE_NAME_MAX 64
#define DD_CONFIG_MAX_JOBS 1024
#define DD_CONFIG_MAX_LOCK_WAIT 86400 /* seconds: a day */
#define DD_CONFIG_MAX_TRANSFERS 64
#define DD_CONFIG_MAX_RETRIES 30
#define DD_CONFIG_MAX_SPARES 16
#define DD_CONFIG_MIN_PART_SIZE (5LL << 20) /* S3's smallest part */
#define DD_CONFIG_MAX_PART_SIZE (5LL << 30) /* S3's largest part */
#define DD_CONFIG_DEFAULT_LOCK_WAIT 30
#define DD_CONFIG_MAX_CACHE_BUDGET (1LL << 50) /* 1024 TiB */
#define DD_CONFIG_MAX_STASH_KEEP 1000

/* The public struct plus what only config/ needs. */
struct dd_config_priv {
	struct dd_config pub;
	char *local_active; /* [database] active_profile from config.ini */
};

enum dd_config_section { SEC_NONE, SEC_STORE, SEC_DATABASE, SEC_HOOKS, SEC_PROFILE, SEC_SKIP };

/* A key (or, with key == NULL, a [profile] section) seen in the file being parsed. */
struct dd_config_seen {
	enum dd_config_section sec;
	char *profile;
	const char *key;
	size_t line;
};

/* The state of parsing one file (parse.c), shared with the key handler (keys.c). */
struct dd_config_parse {
	struct dd_config_priv *cfg;
	const char *display;
	int local;
	const char *text;
	size_t len, pos, lineno;
	enum dd_config_section sec;
	char *secname;        /* for messages: [store], [profile "x"] */
	char *profname;       /* current [profile "NAME"], else NULL */
	struct dd_profile *prof;
	struct dd_profile scratch; /* local override of a profile this branch lacks: parsed, dropped */
	struct dd_config_seen *seen;
	size_t nseen;
	size_t err_line;
	struct dd_buf err;
	int warned_password;
};

/*
 * Record the first error of a parse (later ones are dropped); it becomes
 * "file:line: message" when the parse ends. Returns -1.
 */
int dd_config_fail(struct dd_config_parse *p, size_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
struct dd_config_seen *dd_config_find_seen(struct dd_config_parse *p, enum dd_config_section sec, const char *profile,
					   const char *key);
void dd_config_add_seen(struct dd_config_parse *p, enum dd_config_section sec, const char *profile, const char *key,
			size_t line);

/*
 * The inih handler (keys.c): checks `name = value` against the key table
 * and stores it. Returns in inih's convention: nonzero = the line is
 * fine, 0 = it is not (the reason recorded with dd_config_fail()).
 */
int dd_config_handler(void *user, const char *section, const char *name, const char *value);

/* NULL-terminated string lists. */
void dd_config_list_free(char **list);
void dd_config_list_add(char ***list, const char *s, size_t len);
char **dd_config_list_copy(char *const *list);

/* An unset profile (every field NULL / unset); frees what `p` held. */
void dd_config_profile_clear(struct dd_profile *p);
/* The profile called exactly `name`, or NULL (no error recorded). */
struct dd_profile *dd_config_find_profile(const struct dd_config *cfg, const char *name);
/* Record why `name` is not a valid profile name; returns -1. */
int dd_config_name_error(const char *name);

#endif
