/*
 * util/fs.h: files written so that a crash never leaves a torn one.
 *
 * Every write goes to a temporary file in the same directory, is fsynced,
 * then renamed over (or, with DD_WRITE_NOREPLACE, linked to) its final name,
 * and the directory is fsynced. Readers therefore see the old file or the
 * new one, never part of either.
 */
#ifndef DD_UTIL_FS_H
#define DD_UTIL_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "util/buf.h"

enum {
	/* Fail with EEXIST semantics (returns 1, not an error) if the target exists. */
	DD_WRITE_NOREPLACE = 1 << 0,
	/* Skip the directory fsync (callers that fsync the directory themselves). */
	DD_WRITE_NO_DIRSYNC = 1 << 1,
	/* Skip the file fsync too (copies that are checked on every read and can be made again). */
	DD_WRITE_NO_FSYNC = 1 << 2,
};

/* Read a whole file into `out` (appending); on failure `out` is left as it was. */
int dd_file_read(struct dd_buf *out, const char *path);

/*
 * Append what `fd` holds to its end to `out` (kept NUL-terminated), stopping
 * early once `out` holds more than `max` bytes (0: no limit; the caller
 * checks out->len). -1 with "cannot read DISPLAY" on error, `out` as it was.
 */
int dd_fd_read(int fd, struct dd_buf *out, size_t max, const char *display);
/*
 * Write `len` bytes atomically to `path` with `mode`. Returns 0, or DD_EXISTS when
 * DD_WRITE_NOREPLACE was given and `path` already existed (left untouched),
 * or -1 on error (with ENOSPC reported as "disk full").
 */
int dd_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, int flags);

/* An atomic file written piecewise: open, write, then commit or abort. */
struct dd_atomic_file {
	int fd;
	char *path;
	char *tmp;
	mode_t mode;
	int flags;
};
int dd_atomic_open(struct dd_atomic_file *af, const char *path, mode_t mode, int flags);
int dd_atomic_write(struct dd_atomic_file *af, const void *data, size_t len);
/* fsync, rename/link into place, fsync the directory; same returns as dd_file_write_atomic. */
int dd_atomic_commit(struct dd_atomic_file *af);
/* Remove the temporary file; safe after commit and on a zeroed struct. */
void dd_atomic_abort(struct dd_atomic_file *af);

/* Write all of `len` bytes to fd, retrying on EINTR and short writes. */
int dd_write_all(int fd, const void *data, size_t len);
int dd_mkdir_p(const char *path, mode_t mode);
/*
 * An exclusive flock() on `path` (created 0600, with its directory), for
 * locks between our own processes: the kernel drops it when the process
 * ends, even by kill -9, so it is never stale. If another process holds it,
 * `busy` (a message, may be NULL) is shown once, with the holder its record
 * names (below), and the call waits. *fd receives the lock; release it with
 * dd_unlock_file(). -1 (error set) if the file cannot be opened or locked;
 * DD_EBUSY instead of waiting once dd_lock_never_wait() was called.
 *
 * While held, the file carries its holder's record, one line:
 * "<pid> <start time> <since> <command>\n" (start time: util/proc.h's, so a
 * reused pid is told apart; since: seconds since the epoch; command: what
 * dd_lock_set_command() set, printable ASCII). dd_unlock_file() empties it
 * first, so a record found by the next holder was left by a process that
 * died holding the lock (kill -9): that one says so in one line (warning:
 * "taking over lock PATH left by pid N (...), which is no longer running").
 * The record only informs: the flock alone decides who holds the lock.
 */
int dd_lock_file(const char *path, const char *busy, int *fd);
/* The same without waiting: DD_EBUSY (error set, naming the holder, *fd = -1) when another process holds it. */
int dd_lock_file_try(const char *path, int *fd);
/* Empty the holder record and release the lock; -1 is ignored. */
void dd_unlock_file(int fd);
/* What this process is called in the records of the locks it takes ("git dnadata snapshot"; default "git dnadata"). */
void dd_lock_set_command(const char *command);
/* The command dd_lock_set_command() set ("git dnadata" before): store locks name it too. */
const char *dd_lock_command(void);
/*
 * From now on dd_lock_file() never waits: DD_EBUSY when the lock is held
 * (what git hooks want: they must not block the git command).
 */
void dd_lock_never_wait(void);
/*
 * The live holder lock file `path` records: "pid 123, git dnadata snapshot,
 * since 08:01:02" (the holder's local time), or NULL when no record names a
 * running process. Caller frees.
 */
char *dd_lock_file_holder(const char *path);

#define DD_LOCK_COMMAND_MAX 200
/* A holder record (above), parsed. */
struct dd_lock_record {
	long pid;
	long long started;
	long long since;
	char command[DD_LOCK_COMMAND_MAX + 1];
};
/*
 * Parse a holder record (`len` bytes, no NUL needed): 0, DD_NOTFOUND (empty:
 * no holder recorded), -1 malformed (no error recorded: a record only
 * informs). Strict: decimal fields, one space between, one final newline.
 */
int dd_lock_record_parse(struct dd_lock_record *r, const char *text, size_t len);
/* Format a record (one line, as parsed above). */
void dd_lock_record_format(struct dd_buf *out, const struct dd_lock_record *r);
int dd_fsync_dir(const char *dir);
int dd_path_exists(const char *path);
int dd_is_dir(const char *path);
/* Remove a directory tree (like rm -rf); missing is not an error. */
int dd_rm_rf(const char *path);
/* Join two path components with exactly one '/'. Caller frees. */
char *dd_path_join(const char *a, const char *b);
/* The directory part of a path (like dirname, without modifying). Caller frees. */
char *dd_path_dirname(const char *path);

#endif
