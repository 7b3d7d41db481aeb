/*
 * util/secret.h: passphrases given through the environment.
 *
 * DNADATA_PASSPHRASE and DNADATA_NEW_PASSPHRASE are taken out of the
 * environment when the program starts (dd_secret_env_take(), first thing in
 * main): their values move to locked, zero-on-free memory, the original
 * bytes are overwritten (so /proc/PID/environ no longer shows them) and the
 * variables are unset, so no child process (pg_dump, psql, post_restore
 * hooks) ever inherits them. Code reads them with dd_secret_env().
 */
#ifndef DD_UTIL_SECRET_H
#define DD_UTIL_SECRET_H

void dd_secret_env_take(void);
/* The value taken from the environment variable `name` (at start or since), or NULL. */
const char *dd_secret_env(const char *name);

#endif
