/*
 * cmd/prompt.h: asking the user for a passphrase. Only cmd/ talks to the
 * terminal; the store gets passphrases through the callback it is given
 * (dd_store_passphrase_fn in struct dd_store_opts).
 */
#ifndef DD_CMD_PROMPT_H
#define DD_CMD_PROMPT_H

#include "store/store.h"
#include "util/buf.h"

/*
 * A passphrase: DNADATA_PASSPHRASE (or `envname` when not NULL), else a
 * prompt on the terminal without echo (twice when `confirm`). Returns 0,
 * DD_NOTFOUND when none is available (no terminal, no variable, empty
 * answer), -1 on error. `out` is never reallocated while it holds the
 * passphrase; release it with dd_buf_release_secret().
 */
int dd_prompt_passphrase(struct dd_buf *out, const char *envname, const char *prompt, int confirm);

/* The store's passphrase callback for `init` (arg unused): DNADATA_PASSPHRASE, else the terminal. */
int dd_prompt_store_passphrase(struct dd_buf *out, enum dd_passphrase_purpose purpose, void *arg);

#endif
