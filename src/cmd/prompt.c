/*
 * cmd/prompt.c: passphrases from the environment or the terminal, for the
 * commands that need one (init, key). The terminal is opened as /dev/tty,
 * with echo off while the passphrase is typed; the buffer holding it is
 * sized once, so no copy is left behind by a reallocation.
 */
#include "cmd/prompt.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* 0 read (possibly empty), DD_NOTFOUND no terminal, -1 error. */
static int
tty_read(struct dd_buf *out, const char *prompt)
{
	struct termios old, quiet;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY), rc = -1, echo_off = 0;
	char c;

	if (fd < 0)
		return DD_NOTFOUND;
	if (tcgetattr(fd, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		echo_off = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
	}
	if (dd_write_all(fd, prompt, strlen(prompt)) < 0) {
		dd_error_errno("cannot write to the terminal");
		goto out;
	}
	dd_buf_clear(out);
	dd_buf_grow(out, 4097); /* never reallocated (and so copied) while it holds the passphrase */
	for (;;) {
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || c == '\n')
			break;
		dd_buf_putc(out, c);
		if (out->len > 4096) {
			dd_error("passphrase too long");
			goto out;
		}
	}
	rc = 0;
out:
	if (echo_off)
		tcsetattr(fd, TCSAFLUSH, &old);
	/* the newline the user typed was not echoed: a terminal that cannot take it is broken (keep the first error) */
	if (dd_write_all(fd, "\n", 1) < 0 && rc == 0)
		rc = dd_error_errno("cannot write to the terminal");
	close(fd);
	return rc;
}

int
dd_prompt_passphrase(struct dd_buf *out, const char *envname, const char *prompt, int confirm)
{
	const char *env = dd_secret_env(envname ? envname : "DNADATA_PASSPHRASE");
	struct dd_buf again = DD_BUF_INIT;
	int rc;

	dd_buf_clear(out);
	if (env && *env) {
		dd_buf_puts(out, env);
		return 0;
	}
	if (!isatty(STDIN_FILENO) && !isatty(STDERR_FILENO))
		return DD_NOTFOUND;
	rc = tty_read(out, prompt);
	if (rc != 0) {
		dd_buf_release_secret(out);
		return rc;
	}
	if (!out->len) {
		dd_buf_release_secret(out);
		return DD_NOTFOUND; /* Enter alone: none given */
	}
	if (confirm) {
		rc = tty_read(&again, "Repeat the passphrase: ");
		if (rc == 0 && (again.len != out->len || memcmp(again.ptr, out->ptr, out->len)))
			rc = dd_error("the two passphrases differ");
		dd_buf_release_secret(&again);
		if (rc)
			dd_buf_release_secret(out);
	}
	return rc;
}

int
dd_prompt_store_passphrase(struct dd_buf *out, enum dd_passphrase_purpose purpose, void *arg)
{
	(void)arg;
	if (purpose == DD_PASSPHRASE_NEW)
		return dd_prompt_passphrase(out, NULL, "Passphrase to protect the new store key (Enter for none): ", 1);
	return dd_prompt_passphrase(out, NULL, "Passphrase of the store key: ", 0);
}
