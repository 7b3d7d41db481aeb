/*
 * config/config.h: one resolved view of git-dnadata's settings.
 *
 * Sources, later ones winning: .dnadata/profiles.ini (tracked) <
 * .git/dnadata/config.ini (local, never tracked) < environment
 * (DNADATA_STORE, DNADATA_DATABASE, DNADATA_PROFILE) < command-line flags
 * (applied by the command with the dd_config_override_* setters).
 * DATABASE_URL is deliberately not read. Files are parsed with inih; a
 * syntax error or an unknown key is an error "file:line: what is wrong".
 * Every key is documented in profiles.ini.example. (How config/ is split
 * into files: config/internal.h.)
 */
#ifndef DD_CONFIG_CONFIG_H
#define DD_CONFIG_CONFIG_H

#include <stddef.h>

struct dd_repo;

#define DD_CONFIG_DEFAULT_CACHE_BUDGET (10LL << 30) /* 10 GiB */
#define DD_CONFIG_DEFAULT_STASH_KEEP 5

/*
 * Masking rules (issue 21): "mask = [schema.]table.column RULE" in a
 * profile's section of profiles.ini (config/mask.c parses them; pg/mask.c
 * turns them into the dump's select lists). keep: reviewed, not personal
 * (only pii-check reads it).
 */
enum dd_mask_kind {
	DD_MASK_KEEP,
	DD_MASK_NULL,
	DD_MASK_REDACT,
	DD_MASK_HASH,
	DD_MASK_FAKE_EMAIL,
	DD_MASK_FAKE_NAME,
	DD_MASK_FAKE_PHONE,
	DD_MASK_SQL,
};

struct dd_mask_rule {
	char *schema;          /* NULL: any schema (the table's name must be unique then) */
	char *table, *column;  /* as the server names them: unquoted names folded to lower case */
	enum dd_mask_kind kind;
	char *expr;            /* DD_MASK_SQL: an SQL expression over the row's columns */
	char *text;            /* the value as written: messages and the rules' hash */
	size_t line;           /* its line in profiles.ini */
};

/* "subset = [schema.]table N%" or "subset = [schema.]table where COND" (issue 21). */
struct dd_subset {
	char *schema;          /* NULL: any schema */
	char *table;
	int percent;           /* 1..100, or 0 with `where` */
	char *where;           /* an SQL condition on the start table's rows, or NULL */
	char *text;            /* the value as written */
	size_t line;
};

enum dd_masked { DD_MASKED_OPTIONAL, DD_MASKED_REQUIRED };
enum dd_subset_others { DD_SUBSET_WHOLE, DD_SUBSET_EMPTY };

/* Parse one value (pure; *why static text on -1). */
int dd_mask_rule_parse(const char *value, struct dd_mask_rule *r, const char **why);
void dd_mask_rule_clear(struct dd_mask_rule *r);
const char *dd_mask_kind_name(enum dd_mask_kind kind);
int dd_subset_parse(const char *value, struct dd_subset *sb, const char **why);
void dd_subset_clear(struct dd_subset *sb);

struct dd_profile {
	char *name;
	char *database;        /* conninfo or URL; NULL means the [database] default */
	char *media;           /* media folder, relative to the work tree (or absolute); NULL = none */
	char *media_owner;     /* media_owner: "user[:group]" the restored media files get; NULL = leave */
	char **exclude_tables; /* patterns: schema.table, '*' allowed; NULL-terminated */
	char **exclude_data;   /* tables kept schema-only; NULL-terminated */
	int terminate_connections; /* -1 = unset (use global), 0 or 1 */
	int lock_wait_timeout;     /* seconds; 0 = unset (use [database]); see dd_config_lock_wait_timeout() */
	int schema_dump;           /* schema_dump: -1 = unset (yes), 0 = no automatic schema dump after a restore, 1 */
	char **post_restore;       /* post_restore commands, run before [hooks]' ones, in order; NULL-terminated */
	int is_inline;             /* inline: data kept in git as .dnadata/inline/<name>/ (issue 18); 0 or 1 */
	/* issue 21, profiles.ini only: masking and subsetting on capture */
	struct dd_mask_rule *masks; /* mask keys, in file order; one per column */
	size_t nmasks;
	int masked;                 /* enum dd_masked: required = snapshot refuses while pii-check finds columns */
	struct dd_subset *subset;   /* subset key, or NULL: every row */
	int subset_others;          /* enum dd_subset_others: tables the subset does not reach */
};

struct dd_config {
	char *store_url;       /* [store] url; NULL = file:// default under .git/dnadata */
	/* [store] settings of a remote (S3) store; unset = NULL / -1 / 0 (the store layer's defaults) */
	char *store_endpoint;  /* endpoint: http(s)://host[:port] */
	char *store_region;    /* region */
	int store_path_style;  /* path_style: -1 = automatic (IP addresses and localhost), 0, 1 */
	int store_transfers;   /* transfers: parallel requests (1..64); 0 = default (8) */
	long long store_part_size; /* part_size: bytes (5 MiB..5 GiB); 0 = default */
	int store_retries;     /* retries: 0..30; -1 = default */
	char *database;        /* [database] url (conninfo or URL) */
	char *default_profile; /* [database] default_profile (see profiles.ini.example) */
	char *active_profile;  /* resolved: DNADATA_PROFILE > config.ini > profiles.ini default */
	int jobs;              /* parallel workers; 0 = one per core */
	int terminate_connections;
	int lock_wait_timeout; /* [database] lock_wait_timeout: seconds (1..86400, default 30) */
	long long cache_budget; /* [database] cache_budget: bytes for cached objects, templates and spares
				 * (gc; default DD_CONFIG_DEFAULT_CACHE_BUDGET) */
	int stash_keep;        /* [database] stash_keep: unedited stashes kept per working database (default 5) */
	struct dd_profile *profiles;
	size_t nprofiles;
	/* where each setting came from, for error messages */
	char *profiles_path;   /* absolute path of .dnadata/profiles.ini */
	char *local_path;      /* absolute path of .git/dnadata/config.ini */
	/* (additions) */
	char *database_override;   /* DNADATA_DATABASE or a flag: wins over profile and [database] */
	char **post_restore;       /* [hooks] post_restore commands, in order; NULL-terminated */
	const char *active_source; /* where active_profile came from: "DNADATA_PROFILE", the
				    * config.ini path, "default_profile", "only profile"; NULL if none */
	const char *store_source;  /* where store_url came from: "DNADATA_STORE", a file path, NULL */
	char *profiles_display;    /* profiles_path as shown in messages (".dnadata/profiles.ini") */
	char *local_display;       /* local_path as shown in messages */
	int spares;                /* [database] spares: warm spare databases kept ready (0..16); -1 = unset
				    * (dd_config_spares() gives the default) */
	/* linked worktrees (git worktree add): see dd_config_worktree_check() */
	int linked_worktree;       /* this work tree is a linked worktree */
	char *worktree_database;   /* [database] worktree_database of its own config file: its database name */
	char *worktree_path;       /* that file: <worktree's git dir>/dnadata/config.ini (NULL: main worktree) */
};

/* Load and resolve the configuration of `repo` (profiles.ini must exist). */
int dd_config_load(struct dd_config **out, const struct dd_repo *repo);
void dd_config_free(struct dd_config *cfg);

/*
 * What most commands start with: the repository around the current
 * directory and its resolved configuration. On failure both outputs are
 * NULL (nothing to free).
 */
int dd_config_open(struct dd_repo **repo, struct dd_config **cfg);

/*
 * A linked worktree manages no database of its own until it is given one
 * (`git dnadata use <profile> --worktree-database <name>`, which sets
 * [database] worktree_database in its own config file, read after
 * config.ini: every profile's database then has that name, on the same
 * server) or DNADATA_DATABASE is set: until then restore and use refuse
 * there, so a checkout in one worktree never swaps another's database.
 * 0 when this work tree manages a database, -1 with the error and hint.
 */
int dd_config_worktree_check(const struct dd_config *cfg);
/* Write `name` as this linked worktree's database (its own config file, created 0600). */
int dd_config_set_worktree_database(struct dd_config *cfg, const char *name);

/*
 * The profile called `name`, or (name == NULL) the active profile. On
 * failure returns NULL with an error naming the closest existing profile.
 */
const struct dd_profile *dd_config_profile(const struct dd_config *cfg, const char *name);

/* The conninfo/URL to use for `p`: DNADATA_DATABASE > profile > [database]; never NULL ("" = libpq defaults). */
const char *dd_config_database(const struct dd_config *cfg, const struct dd_profile *p);

/*
 * How long `p`'s snapshot may wait for a table lock before it fails, in
 * whole seconds (> 0): the profile's lock_wait_timeout > [database]
 * lock_wait_timeout (config.ini over profiles.ini for each) > 30. Like
 * pg_dump --lock-wait-timeout; `p` may be NULL.
 */
int dd_config_lock_wait_timeout(const struct dd_config *cfg, const struct dd_profile *p);

/*
 * How many warm spare databases to keep ready after a switch:
 * DNADATA_SPARES (0..16) > [database] spares > 2; 0 = none.
 */
#define DD_CONFIG_DEFAULT_SPARES 2
int dd_config_spares(const struct dd_config *cfg);

/* Check a profile name: letters, digits, '-', '_' (1..64 chars), starting with a letter or digit. */
int dd_profile_name_valid(const char *name);
/* The same check, recording why a name is invalid (returns 0 or -1). */
int dd_profile_name_check(const char *name);

/* ---- (additions) parsing pieces, for tests and fuzzers ---- */

/* An empty configuration (no profiles, nothing set). */
struct dd_config *dd_config_new(void);
/* dd_config_parse_text's `local`: which file the text is */
#define DD_CONFIG_FILE_SHARED 0   /* .dnadata/profiles.ini */
#define DD_CONFIG_FILE_LOCAL 1    /* .git/dnadata/config.ini */
#define DD_CONFIG_FILE_WORKTREE 2 /* a linked worktree's <its git dir>/dnadata/config.ini */
/*
 * Parse one file's text into `cfg`: `local` = DD_CONFIG_FILE_SHARED (0)
 * for profiles.ini, DD_CONFIG_FILE_LOCAL (1) for config.ini (which
 * overrides, may set active_profile, and ignores sections for profiles it
 * does not know), DD_CONFIG_FILE_WORKTREE (2) for a linked worktree's own
 * config file (as config.ini, and the only file worktree_database may be
 * set in). `display` names the file in errors ("display:line: what is
 * wrong").
 */
int dd_config_parse_text(struct dd_config *cfg, const char *text, size_t len, const char *display, int local);
/* Apply the environment (DNADATA_STORE, DNADATA_DATABASE, DNADATA_PROFILE) and resolve the active profile. */
void dd_config_resolve(struct dd_config *cfg);
/* Load explicit files (`local_path` may be missing); what dd_config_load() does once paths are known. */
int dd_config_load_files(struct dd_config **out, const char *profiles_path, const char *profiles_display,
			 const char *local_path, const char *local_display);

/* Command-line overrides (win over everything else). */
void dd_config_override_store(struct dd_config *cfg, const char *url);
void dd_config_override_database(struct dd_config *cfg, const char *conninfo);

/* ---- (additions) writing, always atomically and keeping the user's comments ---- */

/*
 * Create `path` (profiles.ini) for a new repository with one profile.
 * `store_url` / `database` may be NULL (a commented example is written).
 * Returns DD_OK, DD_EXISTS without touching anything if the file exists,
 * or DD_ERROR.
 */
int dd_config_write_initial(const char *path, const char *store_url, const char *database,
			    const char *profile);
/* Create the local config.ini (mode 0600) with a comment header: DD_OK, DD_EXISTS (left alone) or DD_ERROR. */
int dd_config_write_local_initial(const char *path);
/*
 * Append a [profile "name"] section to profiles.ini (the text is appended,
 * so comments and layout stay as they were). Settings are copied from the
 * profile `from` as profiles.ini defines it (local overrides are not
 * copied); `media` (may be NULL) replaces the copied media folder. Fails if
 * the name is invalid or taken (also ignoring case), or `from` does not
 * exist. Updates `cfg`.
 */
int dd_config_add_profile(struct dd_config *cfg, const char *name, const char *from, const char *media);
/* The same; `is_inline` adds "inline = yes" (issue 18; a copied profile's inline setting is kept otherwise). */
int dd_config_add_profile_inline(struct dd_config *cfg, const char *name, const char *from, const char *media,
				 int is_inline);
/* Record `name` as this clone's active profile in config.ini (created if needed). Updates `cfg`. */
int dd_config_set_active(struct dd_config *cfg, const char *name);

/*
 * A setting made safe to show: a conninfo string or URL with every password
 * (as libpq reads it: password, sslpassword, user:PASSWORD@) replaced by
 * "***", the rest as written; a store URL with user:***@; a string libpq
 * cannot parse shown only if it cannot hold a password, else "***". Never
 * fails, never changes the current error. Caller frees.
 */
char *dd_config_redact(const char *conninfo);

#endif
