/*
 * config/write.c: writing settings files, always atomically (util/fs.h)
 * and never by re-serialising: a new profile is appended as text, the
 * active profile is one line edited in place, so the user's comments and
 * layout survive. Whatever is written is parsed back first; a value that
 * would not read back unchanged is refused before anything is touched.
 */
#include "config/config.h"
#include "config/internal.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/json.h"
#include "util/fs.h"

#include <ctype.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/*
 * Can `value` be written as "key = value" and read back unchanged? It must
 * be one line of text, without surrounding blanks or a comment start, and
 * short enough for inih's line buffer.
 */
static int
check_writable(const char *key, const char *value)
{
	size_t len = strlen(value);
	char *shown = dd_config_redact(value); /* a database URL may carry a password */
	int rc = -1;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c < 0x20 || c == 0x7f) {
			dd_error("the %s '%.40s' contains a control character or line break", key, shown);
			goto out;
		}
		if ((c == ';' || c == '#') && i && (value[i - 1] == ' ' || value[i - 1] == '\t')) {
			dd_error("the %s '%.40s' contains ' %c', which starts a comment in profiles.ini", key, shown, c);
			goto out;
		}
	}
	if (len && (isspace((unsigned char)value[0]) || isspace((unsigned char)value[len - 1]))) {
		dd_error("the %s '%.40s' starts or ends with a space", key, shown);
		goto out;
	}
	if (len && (value[0] == ';' || value[0] == '#')) {
		dd_error("the %s '%.40s' starts with '%c', which starts a comment in profiles.ini", key, shown,
			 value[0]);
		goto out;
	}
	rc = 0;
out:
	free(shown);
	if (rc < 0)
		return rc;
	if (!dd_utf8_valid(value, len))
		return dd_error("the %s is not valid UTF-8", key);
	if (strlen(key) + 3 + len + 2 > INI_MAX_LINE)
		return dd_error("the %s is too long for profiles.ini (at most %d characters)", key,
				(int)(INI_MAX_LINE - strlen(key) - 5));
	return 0;
}

static mode_t
file_mode(const char *path, mode_t dflt)
{
	struct stat st;

	return stat(path, &st) == 0 ? (st.st_mode & 07777) : dflt;
}

/* "url = VALUE", or (value == NULL) the commented-out example "# url = EXAMPLE". */
static void
put_url(struct dd_buf *t, const char *value, const char *example)
{
	if (value)
		dd_buf_printf(t, "url = %s\n", value);
	else
		dd_buf_printf(t, "# url = %s\n", example);
}

int
dd_config_write_initial(const char *path, const char *store_url, const char *database, const char *profile)
{
	struct dd_buf t = DD_BUF_INIT;
	struct dd_config *check = NULL;
	char *dir = NULL;
	int rc = -1;

	if (!dd_profile_name_valid(profile))
		return dd_config_name_error(profile);
	if (store_url && *store_url && strncmp(store_url, "file://", 7) && strncmp(store_url, "s3://", 5)) {
		char *r = dd_config_redact(store_url);
		dd_error("store url '%.60s' must start with file:// or s3://", r);
		free(r);
		return -1;
	}
	if ((store_url && check_writable("store url", store_url) < 0) ||
	    (database && check_writable("database", database) < 0))
		return -1;
	if (dd_path_exists(path))
		return DD_EXISTS;

	dd_buf_puts(&t,
		    "# git-dnadata settings, shared by everyone who works on this repository.\n"
		    "# Every key is explained in git-dnadata's profiles.ini.example and docs/FORMAT.md.\n"
		    "# Per-clone overrides go in .git/dnadata/config.ini (never committed); the\n"
		    "# environment (DNADATA_STORE, DNADATA_DATABASE, DNADATA_PROFILE) overrides both.\n"
		    "\n"
		    "[store]\n"
		    "# Where snapshots are uploaded: file:///shared/folder or s3://bucket/prefix.\n");
	put_url(&t, store_url && *store_url ? store_url : NULL, "s3://my-bucket/dnadata");
	dd_buf_puts(&t,
		    "\n"
		    "[database]\n"
		    "# The working database your application uses: a libpq conninfo string or URL.\n"
		    "# Unset or empty: libpq's defaults (PGHOST, PGDATABASE, service files ...).\n"
		    "# Keep passwords out of this file (use ~/.pgpass or PGPASSWORD).\n");
	put_url(&t, database, "postgresql://localhost/myapp");
	dd_buf_printf(&t,
		      "# The profile a clone uses until 'git dnadata use NAME' picks another.\n"
		      "default_profile = %s\n"
		      "\n"
		      "[profile \"%s\"]\n"
		      "# database = ...          (default: [database] url)\n"
		      "# media = uploads         (a folder captured with the data)\n",
		      profile, profile);

	/* What we write must read back. */
	check = dd_config_new();
	if (dd_config_parse_text(check, t.ptr, t.len, path, 0) < 0) {
		dd_error_wrap("BUG: generated profiles.ini does not parse");
		goto out;
	}
	dir = dd_path_dirname(path);
	if (dd_mkdir_p(dir, 0777) < 0)
		goto out;
	rc = dd_file_write_atomic(path, t.ptr, t.len, 0644, DD_WRITE_NOREPLACE); /* DD_EXISTS: created meanwhile */
out:
	dd_config_free(check);
	free(dir);
	dd_buf_release(&t);
	return rc;
}

int
dd_config_write_local_initial(const char *path)
{
	static const char text[] =
		"# git-dnadata settings for this clone only (never committed).\n"
		"# Same keys as .dnadata/profiles.ini; a key set here replaces the shared value.\n"
		"# 'git dnadata use NAME' records the active profile here.\n";
	char *dir = dd_path_dirname(path);
	int rc;

	rc = dd_mkdir_p(dir, 0700);
	free(dir);
	if (rc < 0)
		return DD_ERROR;
	return dd_file_write_atomic(path, text, sizeof(text) - 1, 0600, DD_WRITE_NOREPLACE);
}

static int
write_setting(struct dd_buf *t, const char *key, const char *value)
{
	if (check_writable(key, value) < 0)
		return -1;
	dd_buf_printf(t, "%s = %s\n", key, value);
	return 0;
}

/* Refuse `name` if it is invalid or taken, also ignoring case (it names a ref file). */
static int
check_new_name(const struct dd_config *cfg, const char *name)
{
	if (!dd_profile_name_valid(name))
		return dd_config_name_error(name);
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		if (!strcmp(cfg->profiles[i].name, name))
			return dd_error("profile '%s' already exists in %s", name, cfg->profiles_display);
		if (!strcasecmp(cfg->profiles[i].name, name))
			return dd_error("profile '%s' would clash with '%s' on case-insensitive file systems", name,
					cfg->profiles[i].name);
	}
	return 0;
}

/* Append the section for `name` to `text`: the settings of `src` (may be NULL), `media` (may be NULL) replacing its media. */
static int
append_section(struct dd_buf *text, const char *name, const struct dd_profile *src, const char *media, int is_inline)
{
	if (text->len && text->ptr[text->len - 1] != '\n')
		dd_buf_putc(text, '\n');
	if (text->len)
		dd_buf_putc(text, '\n');
	dd_buf_printf(text, "[profile \"%s\"]\n", name);
	if (src && src->database && write_setting(text, "database", src->database) < 0)
		return -1;
	if ((media || (src && src->media)) && write_setting(text, "media", media ? media : src->media) < 0)
		return -1;
	if (src && src->media_owner && write_setting(text, "media_owner", src->media_owner) < 0)
		return -1;
	for (size_t i = 0; src && src->exclude_tables && src->exclude_tables[i]; i++)
		if (write_setting(text, "exclude_tables", src->exclude_tables[i]) < 0)
			return -1;
	for (size_t i = 0; src && src->exclude_data && src->exclude_data[i]; i++)
		if (write_setting(text, "exclude_data", src->exclude_data[i]) < 0)
			return -1;
	if (src && src->terminate_connections >= 0)
		dd_buf_printf(text, "terminate_connections = %s\n", src->terminate_connections ? "true" : "false");
	if (src && src->lock_wait_timeout > 0)
		dd_buf_printf(text, "lock_wait_timeout = %d\n", src->lock_wait_timeout);
	if (src && src->schema_dump >= 0)
		dd_buf_printf(text, "schema_dump = %s\n", src->schema_dump ? "true" : "false");
	for (size_t i = 0; src && src->post_restore && src->post_restore[i]; i++)
		if (write_setting(text, "post_restore", src->post_restore[i]) < 0)
			return -1;
	if (is_inline || (src && src->is_inline))
		dd_buf_puts(text, "inline = yes\n");
	/* a profile made from a masked one is masked the same way: nothing it hid leaks through the copy */
	for (size_t i = 0; src && i < src->nmasks; i++)
		if (write_setting(text, "mask", src->masks[i].text) < 0)
			return -1;
	if (src && src->masked == DD_MASKED_REQUIRED)
		dd_buf_puts(text, "masked = required\n");
	if (src && src->subset && write_setting(text, "subset", src->subset->text) < 0)
		return -1;
	if (src && src->subset_others == DD_SUBSET_EMPTY)
		dd_buf_puts(text, "subset_others = empty\n");
	return 0;
}

/* Add `name` to the struct as append_section() wrote it. */
static void
add_to_config(struct dd_config *cfg, const char *name, const struct dd_profile *src, const char *media,
	      int is_inline)
{
	struct dd_profile *np;

	cfg->profiles = dd_realloc(cfg->profiles, (cfg->nprofiles + 1) * sizeof(*cfg->profiles));
	np = &cfg->profiles[cfg->nprofiles++];
	memset(np, 0, sizeof(*np));
	np->name = dd_strdup(name);
	np->terminate_connections = src ? src->terminate_connections : -1;
	np->lock_wait_timeout = src ? src->lock_wait_timeout : 0;
	np->schema_dump = src ? src->schema_dump : -1;
	np->database = src && src->database ? dd_strdup(src->database) : NULL;
	np->media = media ? dd_strdup(media) : src && src->media ? dd_strdup(src->media) : NULL;
	np->media_owner = src && src->media_owner ? dd_strdup(src->media_owner) : NULL;
	np->exclude_tables = src ? dd_config_list_copy(src->exclude_tables) : NULL;
	np->exclude_data = src ? dd_config_list_copy(src->exclude_data) : NULL;
	np->post_restore = src ? dd_config_list_copy(src->post_restore) : NULL;
	np->is_inline = is_inline || (src && src->is_inline);
	np->masked = src ? src->masked : DD_MASKED_OPTIONAL;
	np->subset_others = src ? src->subset_others : DD_SUBSET_WHOLE;
	for (size_t i = 0; src && i < src->nmasks; i++) {
		struct dd_mask_rule r;
		const char *why;
		if (dd_mask_rule_parse(src->masks[i].text, &r, &why) == 0) {
			r.line = src->masks[i].line;
			np->masks = dd_realloc(np->masks, (np->nmasks + 1) * sizeof(*np->masks));
			np->masks[np->nmasks++] = r;
		}
	}
	if (src && src->subset) {
		struct dd_subset sb;
		const char *why;
		if (dd_subset_parse(src->subset->text, &sb, &why) == 0) {
			sb.line = src->subset->line;
			np->subset = dd_malloc(sizeof(*np->subset));
			*np->subset = sb;
		}
	}
}

int
dd_config_add_profile(struct dd_config *cfg, const char *name, const char *from, const char *media)
{
	return dd_config_add_profile_inline(cfg, name, from, media, 0);
}

int
dd_config_add_profile_inline(struct dd_config *cfg, const char *name, const char *from, const char *media,
			     int is_inline)
{
	struct dd_buf text = DD_BUF_INIT;
	struct dd_config *shared = NULL, *check = NULL;
	const struct dd_profile *src = NULL;
	int rc = -1;

	if (check_new_name(cfg, name) < 0)
		return -1;
	if (media && check_writable("media folder", media) < 0)
		return -1;
	if (dd_file_read(&text, cfg->profiles_path) < 0)
		goto out;
	/* Copy what profiles.ini says, not this clone's overrides. */
	shared = dd_config_new();
	if (dd_config_parse_text(shared, dd_buf_cstr(&text), text.len, cfg->profiles_display, 0) < 0)
		goto out;
	if (from && !(src = dd_config_profile(shared, from)))
		goto out;
	if (append_section(&text, name, src, media, is_inline) < 0)
		goto out;

	check = dd_config_new();
	if (dd_config_parse_text(check, text.ptr, text.len, cfg->profiles_display, 0) < 0 ||
	    !dd_config_find_profile(check, name)) {
		dd_error_wrap("BUG: profiles.ini would not parse after adding '%s'", name);
		goto out;
	}
	if (dd_file_write_atomic(cfg->profiles_path, text.ptr, text.len, file_mode(cfg->profiles_path, 0644), 0) < 0)
		goto out;
	add_to_config(cfg, name, src, media, is_inline);
	rc = 0;
out:
	dd_config_free(check);
	dd_config_free(shared);
	dd_buf_release(&text);
	return rc;
}

/* Is the trimmed line s[0..len) the header of section `name`? */
static int
is_section(const char *s, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len >= n + 2 && s[0] == '[' && !strncmp(s + 1, name, n) && s[n + 1] == ']';
}

/*
 * `old` (config.ini's text) with "active_profile = NAME" in [database]:
 * the existing line replaced in place, or the line added at the end of
 * [database], or a [database] section added at the end.
 */
static void
with_active_line(struct dd_buf *t, const struct dd_buf *old, const char *name)
{
	int in_db = 0, done = 0;
	size_t pos = 0;

	while (pos < old->len) {
		const char *line = old->ptr + pos, *nl = memchr(line, '\n', old->len - pos);
		size_t l = nl ? (size_t)(nl - line) + 1 : old->len - pos, tl;
		const char *s = line;

		pos += l;
		tl = l;
		while (tl && isspace((unsigned char)s[tl - 1]))
			tl--;
		while (tl && (*s == ' ' || *s == '\t'))
			s++, tl--;
		if (!done && tl && *s == '[') {
			if (in_db) {
				/* leaving [database] without an active_profile line: add it at its end */
				dd_buf_printf(t, "active_profile = %s\n", name);
				done = 1;
			}
			in_db = is_section(s, tl, "database");
			dd_buf_put(t, line, l);
			continue;
		}
		if (!done && in_db && tl > 14 && !strncmp(s, "active_profile", 14) &&
		    (s[14] == '=' || s[14] == ' ' || s[14] == '\t')) {
			dd_buf_put(t, line, (size_t)(s - line));
			dd_buf_printf(t, "active_profile = %s\n", name);
			done = 1;
			continue;
		}
		dd_buf_put(t, line, l);
		if (!nl)
			dd_buf_putc(t, '\n');
	}
	if (!done) {
		if (!in_db)
			dd_buf_printf(t, "%s[database]\n", t->len ? "\n" : "");
		dd_buf_printf(t, "active_profile = %s\n", name);
	}
}

int
dd_config_set_active(struct dd_config *cfg, const char *name)
{
	struct dd_config_priv *pv = (struct dd_config_priv *)cfg;
	struct dd_buf old = DD_BUF_INIT, t = DD_BUF_INIT;
	struct dd_config *check = NULL;
	char *dir = NULL;
	int rc = -1;

	if (!dd_profile_name_valid(name))
		return dd_config_name_error(name);
	dir = dd_path_dirname(cfg->local_path);
	if (dd_mkdir_p(dir, 0700) < 0)
		goto out;
	if (dd_path_exists(cfg->local_path) && dd_file_read(&old, cfg->local_path) < 0)
		goto out;
	with_active_line(&t, &old, name);

	check = dd_config_new();
	if (dd_config_parse_text(check, t.ptr, t.len, cfg->local_display, 1) < 0) {
		dd_error_wrap("cannot record the active profile");
		goto out;
	}
	if (dd_file_write_atomic(cfg->local_path, t.ptr, t.len, file_mode(cfg->local_path, 0600), 0) < 0)
		goto out;
	free(pv->local_active);
	pv->local_active = dd_strdup(name);
	dd_config_resolve(cfg);
	rc = 0;
out:
	dd_config_free(check);
	dd_buf_release(&old);
	dd_buf_release(&t);
	free(dir);
	return rc;
}

int
dd_config_set_worktree_database(struct dd_config *cfg, const char *name)
{
	char *dir = NULL, *text = NULL;
	int rc = -1;

	if (!cfg->linked_worktree || !cfg->worktree_path)
		return dd_error("--worktree-database is for a linked worktree (git worktree add); this is the main one");
	if (!*name || strlen(name) > 63 || strpbrk(name, "\n\r'\\\"") )
		return dd_error("'%s' is not a usable database name (1 to 63 characters, no quotes or newlines)", name);
	dir = dd_path_dirname(cfg->worktree_path);
	if (dd_mkdir_p(dir, 0700) < 0)
		goto out;
	text = dd_asprintf("# This linked worktree's own git-dnadata settings, read after .git/dnadata/config.ini\n"
			   "# (written by `git dnadata use <profile> --worktree-database <name>`).\n"
			   "[database]\nworktree_database = %s\n", name);
	if (dd_file_write_atomic(cfg->worktree_path, text, strlen(text), 0600, 0) < 0)
		goto out;
	rc = 0;
out:
	free(text);
	free(dir);
	return rc;
}
