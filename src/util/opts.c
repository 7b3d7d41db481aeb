/* util/opts.c: the shared option parser; see opts.h. */
#include "util/opts.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct dd_option common[] = {
	{ DD_OPT_BOOL, 'q', "quiet", NULL, NULL, "only print warnings and errors" },
	{ DD_OPT_BOOL, 'v', "verbose", NULL, NULL, "print more detail" },
	{ DD_OPT_BOOL, 'h', "help", NULL, NULL, "show this help" },
	DD_OPT_END_MARK
};

/*
 * Levenshtein distance of a and b, or any value above `max` once every
 * path is longer than that (the rows' minimum never decreases). The row
 * lives on the stack for names of up to 63 bytes.
 */
static unsigned
distance_within(const char *a, const char *b, unsigned max)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned stack[64], *row = lb < 64 ? stack : dd_calloc(lb + 1, sizeof(*row)), result;

	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0], least;
		row[0] = (unsigned)i;
		least = row[0];
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
			if (best < least)
				least = best;
		}
		if (least > max) {
			row[lb] = least;
			break;
		}
	}
	result = row[lb];
	if (row != stack)
		free(row);
	return result;
}

unsigned
dd_edit_distance(const char *a, const char *b)
{
	return distance_within(a, b, UINT_MAX);
}

const char *
dd_closest(const char *word, const char *const *names)
{
	const char *best = NULL;
	unsigned best_d = UINT_MAX;
	size_t len = strlen(word);
	unsigned limit = len < 4 ? 2 : (unsigned)(len / 2);

	for (; names && *names; names++) {
		size_t nl = strlen(*names);
		/* a prefix is a strong hint ("snap" -> "snapshot") */
		int prefix = len >= 2 && strncmp(*names, word, len) == 0;
		size_t gap = len > nl ? len - nl : nl - len;
		/*
		 * The distance is at least the difference in length: a name that
		 * far off can be neither within the limit nor better than the best
		 * so far. Skipping it keeps a long word (a hostile config key) from
		 * costing its length times every name's.
		 */
		if (!prefix && (gap > limit || gap >= best_d))
			continue;
		/* only a distance under the best so far (and within the limit) can change the answer */
		unsigned d = distance_within(word, *names, prefix ? UINT_MAX : (best_d <= limit ? best_d - 1 : limit));
		if (prefix)
			d = d < 2 ? d : 2;
		if (d < best_d)
			best = *names, best_d = d;
	}
	return best_d <= limit ? best : NULL;
}

static const char *current_cmd = "";

int
dd_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	struct dd_buf b = DD_BUF_INIT;

	va_start(ap, fmt);
	dd_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	dd_error("%s", b.ptr);
	dd_buf_release(&b);
	if (cmd && *cmd)
		dd_hint("see 'git dnadata %s -h' for usage", cmd);
	else
		dd_hint("see 'git dnadata -h' for the list of commands");
	return DD_USAGE_ERROR;
}

static void
print_table(const struct dd_option *opts)
{
	for (; opts && opts->type != DD_OPT_END; opts++) {
		struct dd_buf b = DD_BUF_INIT;
		if (opts->short_name)
			dd_buf_printf(&b, "-%c, ", opts->short_name);
		else
			dd_buf_puts(&b, "    ");
		dd_buf_printf(&b, "--%s", opts->long_name);
		if (opts->type != DD_OPT_BOOL)
			dd_buf_printf(&b, " <%s>", opts->argh ? opts->argh : "value");
		/* an option too long for its column gets its help on the next line (as git's) */
		if (b.len >= 28)
			printf("    %s\n    %-28s %s\n", b.ptr, "", opts->help ? opts->help : "");
		else
			printf("    %-28s %s\n", b.ptr, opts->help ? opts->help : "");
		dd_buf_release(&b);
	}
}

void
dd_print_usage(const char *const *usage, const struct dd_option *opts)
{
	int first = 1;

	for (; usage && *usage; usage++) {
		if (first)
			printf("usage: %s\n", *usage);
		else if (**usage == '\0')
			printf("\n");
		else if (strncmp(*usage, "git dnadata", 11) == 0)
			printf("   or: %s\n", *usage);
		else
			printf("%s\n", *usage);
		first = 0;
	}
	printf("\n");
	print_table(opts);
	print_table(common);
}

static const struct dd_option *
find_long(const struct dd_option *opts, const char *name, size_t len, int *negated)
{
	*negated = 0;
	for (const struct dd_option *o = opts; o && o->type != DD_OPT_END; o++)
		if (strlen(o->long_name) == len && !strncmp(o->long_name, name, len))
			return o;
	if (len > 3 && !strncmp(name, "no-", 3))
		for (const struct dd_option *o = opts; o && o->type != DD_OPT_END; o++)
			if (o->type == DD_OPT_BOOL && strlen(o->long_name) == len - 3 &&
			    !strncmp(o->long_name, name + 3, len - 3)) {
				*negated = 1;
				return o;
			}
	return NULL;
}

static const struct dd_option *
find_short(const struct dd_option *opts, char c)
{
	for (const struct dd_option *o = opts; o && o->type != DD_OPT_END; o++)
		if (o->short_name == c)
			return o;
	return NULL;
}

static int
unknown_long(const struct dd_option *opts, const char *name, size_t len)
{
	const char *names[256];
	size_t n = 0;
	char *word = dd_strndup(name, len);

	for (const struct dd_option *o = opts; o && o->type != DD_OPT_END && n < 250; o++)
		names[n++] = o->long_name;
	for (const struct dd_option *o = common; o->type != DD_OPT_END; o++)
		names[n++] = o->long_name;
	names[n] = NULL;
	const char *near = dd_closest(word, names);
	if (near)
		dd_usage_error(current_cmd, "unknown option '--%s' (did you mean '--%s'?)", word, near);
	else
		dd_usage_error(current_cmd, "unknown option '--%s'", word);
	free(word);
	return DD_USAGE_ERROR;
}

/* Apply one option; `arg` is its value (NULL for booleans). */
static int
apply(const struct dd_option *o, const char *arg, int negated)
{
	switch (o->type) {
	case DD_OPT_BOOL:
		if (o->value)
			*(int *)o->value = !negated;
		return 0;
	case DD_OPT_STRING:
		*(const char **)o->value = arg;
		return 0;
	case DD_OPT_INT: {
		char *end;
		errno = 0;
		long v = strtol(arg, &end, 10);
		if (errno || *end || end == arg || v < 0 || v > INT_MAX)
			return dd_usage_error(current_cmd, "option '--%s' expects a non-negative number, not '%s'",
					      o->long_name, arg);
		*(int *)o->value = (int)v;
		return 0;
	}
	case DD_OPT_END:
		break;
	}
	return 0;
}

/* Handle the common options; returns 1 if handled, DD_OPTS_HELP for -h. */
static int
common_option(const struct dd_option *o, const char *const *usage, const struct dd_option *opts)
{
	if (o < common || o >= common + sizeof(common) / sizeof(common[0]))
		return 0;
	switch (o->short_name) {
	case 'q':
		dd_log_set_verbosity(DD_QUIET);
		return 1;
	case 'v':
		dd_log_set_verbosity(DD_VERBOSE);
		return 1;
	default:
		dd_print_usage(usage, opts);
		return DD_OPTS_HELP;
	}
}

static void
list_opts(const struct dd_option *opts)
{
	for (; opts && opts->type != DD_OPT_END; opts++)
		printf("--%s%s\n", opts->long_name, opts->type == DD_OPT_BOOL ? "" : "=");
}

/*
 * The sub-command a usage line names: the word after "git dnadata CMD" when
 * it is a plain lowercase word ("git dnadata key export <file>" -> "export");
 * NULL otherwise. *len is its length.
 */
static const char *
subcmd_of(const char *cmd, const char *line, size_t *len)
{
	size_t clen = strlen(cmd);
	const char *w, *e;

	if (strncmp(line, "git dnadata ", 12) || strncmp(line + 12, cmd, clen) || line[12 + clen] != ' ')
		return NULL;
	w = line + 13 + clen;
	for (e = w; (*e >= 'a' && *e <= 'z') || (e > w && *e == '-'); e++)
		;
	if (e == w || (*e && *e != ' '))
		return NULL;
	*len = (size_t)(e - w);
	return w;
}

/* Print each sub-command the usage lines name, once. */
static void
list_subcmds(const char *cmd, const char *const *usage)
{
	for (const char *const *u = usage; u && *u; u++) {
		size_t len, plen;
		const char *w = subcmd_of(cmd, *u, &len), *p;
		int seen = 0;
		if (!w)
			continue;
		for (const char *const *v = usage; v < u && !seen; v++)
			seen = (p = subcmd_of(cmd, *v, &plen)) && plen == len && !strncmp(p, w, len);
		if (!seen)
			printf("%.*s\n", (int)len, w);
	}
}

int
dd_parse_options(int argc, char **argv, const struct dd_option *opts, const char *const *usage)
{
	int npos = 0, only_args = 0;

	current_cmd = argc > 0 ? argv[0] : "";
	/* the bash completion's questions (hidden; see opts.h) */
	if (argc == 2 && !strcmp(argv[1], "--list-opts")) {
		list_opts(opts);
		list_opts(common);
		return DD_OPTS_HELP;
	}
	if (argc == 2 && !strcmp(argv[1], "--list-subcmds")) {
		list_subcmds(current_cmd, usage);
		return DD_OPTS_HELP;
	}
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		const struct dd_option *o;
		int negated = 0, rc;

		if (only_args || a[0] != '-' || a[1] == '\0') {
			argv[npos++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_args = 1;
			continue;
		}
		if (a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			o = find_long(opts, name, len, &negated);
			if (!o)
				o = find_long(common, name, len, &negated);
			if (!o)
				return unknown_long(opts, name, len);
			if ((rc = common_option(o, usage, opts)) != 0) {
				if (rc < 0)
					return rc;
				continue;
			}
			const char *arg = NULL;
			if (o->type != DD_OPT_BOOL) {
				if (eq)
					arg = eq + 1;
				else if (i + 1 < argc)
					arg = argv[++i];
				else
					return dd_usage_error(current_cmd, "option '--%s' needs a value", o->long_name);
			} else if (eq) {
				return dd_usage_error(current_cmd, "option '--%s' takes no value", o->long_name);
			}
			if ((rc = apply(o, arg, negated)) < 0)
				return rc;
			continue;
		}
		/* a cluster of short options: -qv, -mMSG, -m MSG */
		for (char *s = a + 1; *s; s++) {
			o = find_short(opts, *s);
			if (!o)
				o = find_short(common, *s);
			if (!o)
				return dd_usage_error(current_cmd, "unknown option '-%c'", *s);
			if ((rc = common_option(o, usage, opts)) != 0) {
				if (rc < 0)
					return rc;
				continue;
			}
			if (o->type == DD_OPT_BOOL) {
				apply(o, NULL, 0);
				continue;
			}
			const char *arg;
			if (s[1])
				arg = s + 1;
			else if (i + 1 < argc)
				arg = argv[++i];
			else
				return dd_usage_error(current_cmd, "option '-%c' needs a value", *s);
			if ((rc = apply(o, arg, 0)) < 0)
				return rc;
			break;
		}
	}
	argv[npos] = NULL;
	return npos;
}
