/*
 * store/store-keys.h: managing a store's key (what `git dnadata key ...`
 * does). The master key lives in <statedir>/key (0600); key files in the
 * store's keys/ folder hold it wrapped by a passphrase (Argon2id), several
 * at once if wanted. No function here prints or logs key material.
 */
#ifndef DD_STORE_STORE_KEYS_H
#define DD_STORE_STORE_KEYS_H

#include "store/store.h"

/*
 * Read and parse the local key (<statedir>/key) as every command does,
 * without using it (for doctor): 0, DD_NOTFOUND when there is none (no
 * error set), or -1 with the reason (a link, loose mode, unreadable, not a
 * key file).
 */
int dd_store_key_check(const char *statedir);
/* Write the local key to `path` (mode 0600, never overwriting a file). */
int dd_store_key_export(const char *statedir, const char *path);
/*
 * Make the key in `path` (an export) this machine's key for the store of
 * `o` (o->url NULL = the default store; o->statedir the clone's state). Refuses a key that does not belong to the store;
 * a different local key is kept as <statedir>/key.<id>.bak.
 */
int dd_store_key_import_file(const struct dd_store_opts *o, const char *path);
/* Same, unwrapping one of the store's key files with `passphrase`. */
int dd_store_key_import_passphrase(const struct dd_store_opts *o, const char *passphrase);
/* How many key files the store has (>= 0), or -1. */
int dd_store_key_count(const struct dd_store_opts *o);
/*
 * Add a key file wrapped with `new_pass`; then remove the key file(s) that
 * `old_pass` opens (old_pass NULL: remove nothing). Needs the local key.
 * Returns DD_NOTFOUND (error set) if old_pass opens no key file: nothing changed.
 */
int dd_store_key_passwd(const struct dd_store_opts *o, const char *old_pass, const char *new_pass);

/*
 * What `init` does: create or adopt the store at o->url (NULL = default),
 * calling o->passphrase only when a passphrase is needed (none available:
 * a new store gets no key file, with a note; a store of another key is
 * refused with a hint). *created says whether a store was created.
 */
int dd_store_init(const struct dd_store_opts *o, int *created);

#endif
