/*
 * git/ref.h: ref files, .dnadata/refs/<profile> (format in docs/FORMAT.md).
 *
 *   dnadata-ref 1
 *   snapshot <64 lowercase hex>
 *   <key> <value>          (informational: created, tables, rows, bytes ...)
 *
 * The parser is strict and treats its input as hostile: unknown version,
 * malformed or duplicate line, bad id: an error "path:line: what is wrong".
 * Only the snapshot id decides equality.
 */
#ifndef DD_GIT_REF_H
#define DD_GIT_REF_H

#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

#define DD_REF_VERSION 1
#define DD_ID_HEX_LEN 64

struct dd_ref_info {
	char *key;
	char *value;
};

struct dd_ref {
	char snapshot[DD_ID_HEX_LEN + 1];
	struct dd_ref_info *info;
	size_t ninfo;
};

/* The ref file of `profile`, relative to the work tree: ".dnadata/refs/<profile>". Caller frees. */
char *dd_ref_path(const char *profile);
/* A ref at `snapshot_hex` with no info lines; NULL (error set) if the id is malformed. */
struct dd_ref *dd_ref_new(const char *snapshot_hex);
/* Parse `len` bytes; `path` names the file in errors. */
int dd_ref_parse(struct dd_ref **out, const char *text, size_t len, const char *path);
/*
 * Returns 0, DD_NOTFOUND if the file does not exist (*out = NULL), -1 on
 * error; a symbolic link, directory or FIFO is an error (not a regular file).
 */
int dd_ref_read(struct dd_ref **out, const char *path);
/* Same, naming the file `display` in errors (e.g. ".dnadata/refs/clean"). */
int dd_ref_read_named(struct dd_ref **out, const char *path, const char *display);
/* Set (or replace) an informational line; key: [a-z0-9_-]+, value: one line. */
void dd_ref_set_info(struct dd_ref *ref, const char *key, const char *value);
const char *dd_ref_get_info(const struct dd_ref *ref, const char *key);
/*
 * An inline profile's ref (info "inline yes", issue 18): its snapshot is
 * the content hash of files kept in git, never in the store, so push,
 * fetch and verify leave it out.
 */
int dd_ref_is_inline(const struct dd_ref *ref);
/* Is key[0..len) a valid info key ([a-z0-9_-]{1,64}, not "snapshot")? */
int dd_ref_key_valid(const char *key, size_t len);
void dd_ref_format(struct dd_buf *out, const struct dd_ref *ref);
/* Write atomically (temp + fsync + rename). */
int dd_ref_write(const char *path, const struct dd_ref *ref);
void dd_ref_free(struct dd_ref *ref);

/*
 * The snapshot ids named by the ref files in `refs_dir` (.dnadata/refs),
 * each once, in profile-name order; `profiles` (NULL = all) limits it to
 * those profiles, and a listed profile without a ref file is an error. A
 * ref file that does not parse is an error. Caller frees with
 * dd_ref_ids_free().
 */
int dd_ref_snapshot_ids(char ***ids, size_t *n, const char *refs_dir, const char *const *profiles,
			size_t nprofiles);
void dd_ref_ids_free(char **ids, size_t n);
/* Add `id` to the list unless it is there already. */
void dd_ref_ids_add(char ***ids, size_t *n, const char *id);

#endif
