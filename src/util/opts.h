/*
 * util/opts.h: the one option parser every command uses (git's
 * parse-options, reduced).
 *
 * A command declares a table of struct dd_option ending with DD_OPT_END.
 * dd_parse_options() accepts "--name", "--name=value", "--name value",
 * "-x", "-x value", "--" and leaves the positional arguments at the front of
 * argv. It always understands -h/--help (prints the usage and the option
 * table to stdout), -q/--quiet and -v/--verbose (process-wide verbosity).
 * An unknown option is a usage error naming the closest valid option.
 *
 * Two hidden arguments, alone after the command's name, answer the bash
 * completion (contrib/completion/git-dnadata.bash) from the tables
 * themselves, so it cannot go stale: "--list-opts" prints the long options,
 * one a line ("--name", or "--name=" when it takes a value), and
 * "--list-subcmds" the sub-commands the usage lines name ("key export
 * <file>" -> "export"); both then return DD_OPTS_HELP, like -h.
 */
#ifndef DD_UTIL_OPTS_H
#define DD_UTIL_OPTS_H

enum dd_opt_type {
	DD_OPT_END = 0,
	DD_OPT_BOOL,   /* int *: set to 1 ("--no-NAME" sets 0) */
	DD_OPT_STRING, /* const char **: points into argv */
	DD_OPT_INT,    /* int *: decimal, >= 0 */
};

struct dd_option {
	enum dd_opt_type type;
	char short_name;        /* 0 for none */
	const char *long_name;  /* without the dashes */
	void *value;
	const char *argh;       /* argument placeholder for help, e.g. "URL" */
	const char *help;
};

#define DD_OPT_END_MARK { DD_OPT_END, 0, NULL, NULL, NULL, NULL }

/* Returned when -h was given and help was printed: the command returns 0. */
#define DD_OPTS_HELP DD_EHELP

/*
 * Parse argv[1..argc) (argv[0] is the command name). Returns the number of
 * positional arguments, now in argv[0..n); DD_OPTS_HELP after printing help;
 * or DD_USAGE_ERROR after recording the error and a hint.
 */
int dd_parse_options(int argc, char **argv, const struct dd_option *opts,
		     const char *const *usage);

/* Print usage lines and the option table (to stdout). */
void dd_print_usage(const char *const *usage, const struct dd_option *opts);

/* Record a usage error ("fmt" + hint to see -h for the command); returns DD_USAGE_ERROR. */
int dd_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Levenshtein distance, and the closest of `names` (NULL-terminated) within a sane distance, or NULL. */
unsigned dd_edit_distance(const char *a, const char *b);
const char *dd_closest(const char *word, const char *const *names);

#endif
