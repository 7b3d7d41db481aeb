/*
 * store/store-lock.h: store-level locks, restic's protocol (issue 20;
 * docs/DESIGN-NOTES.md "The store's gc", FORMAT.md §3.6).
 *
 * A lock is a file `locks/<64 hex random id>`: a sealed object of type
 * DD_OBJ_LOCK (encrypted and authenticated with the object key, its
 * associated data binding the id) whose plaintext is the record below.
 * Taking one = put our own file, THEN list locks/ and read the others:
 * since both sides put before they list, two takers never both miss each
 * other, and no conditional write is needed. Writers (anything that lists
 * index/ to reuse the store's objects, then writes a manifest) hold a
 * shared lock; `gc --store` an exclusive one. A holder rewrites its lock
 * (a new file, then the old one removed) every DD_STORE_LOCK_REFRESH
 * seconds from a thread; a lock whose store time (S3 LastModified, a
 * folder's mtime) is more than DD_STORE_LOCK_STALE seconds behind the
 * store's clock (dd_store_now) is stale: ignored, and removed by gc. A lock
 * of this host, boot and pid namespace whose process is gone is stale at
 * once.
 */
#ifndef DD_STORE_STORE_LOCK_H
#define DD_STORE_STORE_LOCK_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct dd_store;

#define DD_STORE_LOCK_STALE (30 * 60)  /* seconds without a refresh: stale */
#define DD_STORE_LOCK_REFRESH (5 * 60) /* seconds between refreshes */
#define DD_STORE_LOCK_WAIT 60          /* seconds a writer waits for an exclusive lock to go */
#define DD_STORE_LOCK_MAX 4096         /* largest record accepted */
#define DD_STORE_LOCK_HOST_MAX 255
#define DD_STORE_LOCK_COMMAND_MAX 200

enum dd_store_lock_kind { DD_STORE_LOCK_SHARED = 1, DD_STORE_LOCK_EXCLUSIVE = 2 };

#define DD_STORE_LOCK_BOOT_LEN 36 /* a boot id: 8-4-4-4-12 lowercase hex */

/*
 * The plaintext of a lock file, seven lines, each "<key> <value>\n" in this
 * order (FORMAT.md §3.6):
 *   dnadata-lock 1
 *   kind shared|exclusive
 *   host <printable ASCII without spaces, 1-255>
 *   pid <decimal, 1-2^31>  started <decimal start time, 0 unknown>
 *   boot <the kernel's boot id, 0 unknown>  pidns <decimal pid namespace inode, 0 unknown>
 *   command <printable ASCII, 1-200: "git dnadata gc", never arguments>
 *   created <decimal seconds since the epoch, the holder's clock>
 * The pid is judged (a gone process: stale at once) only when host, boot id
 * and pid namespace are all known and ours: two containers sharing a host
 * name but not their pids never take each other's live lock for dead.
 */
struct dd_store_lockrec {
	int kind;
	char host[DD_STORE_LOCK_HOST_MAX + 1];
	long pid;
	long long started;
	char boot[DD_STORE_LOCK_BOOT_LEN + 1]; /* "" unknown (written "0") */
	long long pidns;                       /* 0 unknown */
	char command[DD_STORE_LOCK_COMMAND_MAX + 1];
	long long created;
};

/* Parse a record (`len` bytes, no NUL needed). 0, or -1 (malformed; nothing left in *r, no error set). */
int dd_store_lockrec_parse(struct dd_store_lockrec *r, const char *text, size_t len);
/* Format a record as parsed above (appended to out). */
void dd_store_lockrec_format(struct dd_buf *out, const struct dd_store_lockrec *r);

/*
 * A writer's shared lock (counted: the first call takes it, the matching
 * dd_store_unlock_shared() of the last one removes it). While a fresh
 * exclusive lock (gc) is there, waits up to DD_STORE_LOCK_WAIT seconds,
 * saying once who holds it, then fails with a hint. When the store's index
 * files were listed before the lock was taken, the next
 * dd_store_index_refresh() lists them again. No-op offline or on an
 * unreachable store. 1 (counted: call dd_store_unlock_shared() once), 0
 * (no lock taken, nothing counted: do not unlock), -1.
 */
int dd_store_lock_shared(struct dd_store *st);
void dd_store_unlock_shared(struct dd_store *st);
/*
 * gc's exclusive lock: refused at once (-1, naming the holder) while any
 * other fresh lock is there; stale ones (a warning line each) are removed.
 * Released by dd_store_unlock_all().
 */
int dd_store_lock_exclusive(struct dd_store *st);
/*
 * Whether this process still holds its lock, checked in the store (our
 * file still there) before a step that relies on it: a writer before its
 * manifest, gc before each removal batch. -1 with "interrupted" once a
 * signal is ending the process, or with "the store lock was lost ..." and
 * a hint when another process removed our file as stale; 0 otherwise (no
 * lock held, or the store cannot tell now). 0, -1.
 */
int dd_store_lock_check(struct dd_store *st);
/*
 * Remove this process's lock, whatever its count (dd_store_free calls it).
 * While a lock is held, SIGINT/SIGTERM remove it too (store-lock.c).
 */
void dd_store_unlock_all(struct dd_store *st);
/*
 * For `gc --dry-run`, which takes no lock: the fresh locks of others,
 * described one per line into *out ("" when none). 0, -1.
 */
int dd_store_locks_held(struct dd_store *st, struct dd_buf *out);
/*
 * The store's clock, seconds: S3's Date of the last answer (plus the time
 * since; a HEAD first when none came yet), a folder store's mtime of a
 * probe file written there. Falls back to this machine's clock (returning
 * 1, with a warning line once per process) when the backend cannot tell (a
 * server without Date, a folder we may not write into: a dry run on a
 * read-only store). 0, 1, -1, DD_EUNREACHABLE.
 */
int dd_store_now(struct dd_store *st, int64_t *now);

#endif
