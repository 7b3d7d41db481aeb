/*
 * fuzz/fuzz-config.c: profiles.ini / config.ini parsing (config/config.c,
 * inih underneath) and conninfo redaction on arbitrary bytes.
 *
 * The input is parsed as profiles.ini, then the same bytes as config.ini on
 * top. Checked beyond memory safety: errors are one line with "file:line",
 * and a successful parse keeps the invariants (valid unique profile names,
 * default_profile defined, NULL-terminated lists).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_error(const char *file)
{
	const char *e = dd_error_last();

	if (!e || strchr(e, '\n') || strncmp(e, file, strlen(file)) || e[strlen(file)] != ':') {
		fprintf(stderr, "bad error message: %s\n", e ? e : "(none)");
		abort();
	}
}

static void
check_invariants(const struct dd_config *cfg)
{
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		const struct dd_profile *p = &cfg->profiles[i];
		if (!dd_profile_name_valid(p->name))
			abort();
		for (size_t j = 0; j < i; j++)
			if (!strcmp(cfg->profiles[j].name, p->name))
				abort();
		for (char **t = p->exclude_tables; t && *t; t++)
			if (!**t)
				abort();
		(void)dd_config_database(cfg, p);
	}
	if (cfg->default_profile && !dd_config_profile(cfg, cfg->default_profile))
		abort();
	(void)dd_config_profile(cfg, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dd_config *cfg = dd_config_new();
	char *text = malloc(size + 1), *r;

	memcpy(text, data, size);
	text[size] = '\0';
	if (dd_config_parse_text(cfg, text, size, "profiles.ini", 0) < 0) {
		check_error("profiles.ini");
	} else {
		check_invariants(cfg);
		if (dd_config_parse_text(cfg, text, size, "config.ini", 1) < 0)
			check_error("config.ini");
		dd_config_resolve(cfg);
		check_invariants(cfg);
	}
	r = dd_config_redact(text);
	if (strlen(r) > strlen(text) + 3 * (strlen(text) + 1))
		abort();
	free(r);
	dd_config_free(cfg);
	free(text);
	dd_error_clear();
	return 0;
}
