/*
 * s3/creds.c: credentials, region and endpoint the way AWS's own tools
 * find them (the order is in creds.h).
 *
 * The two files are read with inih (ini_parse_stream) behind a line reader
 * of our own, as config/parse.c does, because Debian's inih cannot read
 * them safely alone: its line buffer is 200 bytes and a longer line is cut
 * silently, the rest parsed as a line of its own, while STS session tokens
 * run to a thousand characters; and it truncates section names at 50
 * bytes. So the reader counts lines (errors are "file:line: ..."), refuses
 * NUL and control bytes, parses section headers itself ("[name]" in the
 * credentials file; "[profile name]" or "[default]" in the config file,
 * as the AWS CLI does), and hands a long "key = value" line to inih as
 * "key=\x01", the handler taking the value from the reader (a \x01 cannot
 * come from the file: control bytes are refused).
 *
 * inih does the rest: "key = value" or "key: value", trimming, " ;"
 * comments, and continuation lines, which is how the AWS CLI's nested
 * sections arrive:
 *
 *   [profile dev]
 *   s3 =
 *     endpoint_url = http://127.0.0.1:7480
 *
 * calls the handler for "s3" with "" and then with "endpoint_url = ...".
 * Not supported (documented in creds.h's terms: ignored): `services`
 * sections, SSO, assumed roles, credential_process, instance metadata.
 *
 * Credential values are wiped when freed; no value, and no malformed line
 * (it may hold one), ever reaches an error message.
 */
#include "s3/creds.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE (1u << 20)
#define LONG_VALUE "\x01"

/* What one profile says, gathered from one file. */
struct profile {
	char *access_key, *secret_key, *session_token;
	char *region, *endpoint, *s3_endpoint;
	int seen;        /* the profile's section is in the file */
	size_t key_line; /* where aws_access_key_id was, for messages */
};

struct ini_file {
	const char *display;
	int is_config;
	const char *want; /* profile name */
	struct profile *prof;
	/* the reader */
	const char *text;
	size_t len, pos, lineno;
	int in_profile;
	const char *long_value;
	size_t long_len;
	/* the first error */
	size_t err_line;
	const char *err_what;
};

static void
wipe_free(char *s)
{
	if (s) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

static void
profile_free(struct profile *p)
{
	wipe_free(p->access_key);
	wipe_free(p->secret_key);
	wipe_free(p->session_token);
	free(p->region);
	free(p->endpoint);
	free(p->s3_endpoint);
	memset(p, 0, sizeof(*p));
}

static void
fail_at(struct ini_file *f, size_t line, const char *what)
{
	if (!f->err_line || line < f->err_line)
		f->err_line = line, f->err_what = what;
}

/* Does the text of a section header name the profile we want? */
static int
section_matches(const struct ini_file *f, const char *s, size_t l)
{
	size_t wl = strlen(f->want);

	while (l && (*s == ' ' || *s == '\t'))
		s++, l--;
	while (l && (s[l - 1] == ' ' || s[l - 1] == '\t'))
		l--;
	if (f->is_config && l > 8 && !memcmp(s, "profile", 7) && (s[7] == ' ' || s[7] == '\t')) {
		s += 8, l -= 8;
		while (l && (*s == ' ' || *s == '\t'))
			s++, l--;
	} else if (f->is_config && strcmp(f->want, "default")) {
		return 0; /* the config file names every profile but default "profile NAME" */
	}
	return l == wl && !memcmp(s, f->want, wl);
}

/* Hand inih a long "key = value" line as "key=\x01", keeping the value here. */
static char *
pass_long(struct ini_file *f, char *str, int num, const char *s, size_t l)
{
	size_t k = 0;

	while (k < l && s[k] != '=' && s[k] != ':')
		k++;
	if (k == l || k + 4 > (size_t)num || s[0] == ' ' || s[0] == '\t' || s[0] == '[') {
		fail_at(f, f->lineno, "line too long");
		return str;
	}
	f->long_value = s + k + 1, f->long_len = l - k - 1;
	while (f->long_len && (*f->long_value == ' ' || *f->long_value == '\t'))
		f->long_value++, f->long_len--;
	for (size_t i = 1; i < f->long_len; i++) /* inih's " ;" comment */
		if (f->long_value[i] == ';' && (f->long_value[i - 1] == ' ' || f->long_value[i - 1] == '\t')) {
			f->long_len = i;
			break;
		}
	while (f->long_len && (f->long_value[f->long_len - 1] == ' ' || f->long_value[f->long_len - 1] == '\t'))
		f->long_len--;
	memcpy(str, s, k);
	memcpy(str + k, "=" LONG_VALUE "\n", 4);
	return str;
}

/* inih's line source: one physical line per call, so its line numbers are ours. */
static char *
reader(char *str, int num, void *stream)
{
	struct ini_file *f = stream;
	const char *s = f->text + f->pos, *nl;
	size_t l;

	sodium_memzero(str, (size_t)num); /* the last line read may hold a secret */
	f->long_value = NULL;
	if (f->pos >= f->len)
		return NULL;
	nl = memchr(s, '\n', f->len - f->pos);
	l = nl ? (size_t)(nl - s) : f->len - f->pos;
	f->pos += l + (nl ? 1 : 0);
	f->lineno++;
	str[0] = '\n';
	if (f->lineno == 1 && l >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		s += 3, l -= 3;
	if (l && s[l - 1] == '\r')
		l--;
	for (size_t i = 0; i < l; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\t') {
			fail_at(f, f->lineno, "control character or NUL byte (is this a text file?)");
			return str;
		}
	if (l && s[0] == '[') {
		const char *end = memchr(s, ']', l);
		if (!end) {
			fail_at(f, f->lineno, "section header without ']'");
			return str;
		}
		f->in_profile = section_matches(f, s + 1, (size_t)(end - s - 1));
		f->prof->seen |= f->in_profile;
		memcpy(str, "[s]\n", 5); /* a new section for inih: continuation lines stop here */
		return str;
	}
	if (l + 2 > (size_t)num)
		return pass_long(f, str, num, s, l);
	memcpy(str, s, l);
	memcpy(str + l, "\n", 2);
	return str;
}

/* Store a value once; a second one in the same profile is an error. */
static int
set_once(struct ini_file *f, char **slot, const char *v, size_t len)
{
	if (*slot) {
		fail_at(f, f->lineno, "a setting given twice in the profile");
		return 0;
	}
	*slot = dd_strndup(v, len);
	return 1;
}

/* "endpoint_url = URL" inside an "s3 =" block. */
static int
nested_s3(struct ini_file *f, const char *v)
{
	const char *eq = strchr(v, '='), *val;
	size_t kl, vl;

	if (!*v)
		return 1; /* the "s3 =" line itself */
	if (!eq) {
		fail_at(f, f->lineno, "not a 'key = value' line in the s3 section");
		return 0;
	}
	kl = (size_t)(eq - v);
	while (kl && (v[kl - 1] == ' ' || v[kl - 1] == '\t'))
		kl--;
	for (val = eq + 1; *val == ' ' || *val == '\t'; val++)
		;
	vl = strlen(val);
	if (kl == 12 && !strncasecmp(v, "endpoint_url", 12) && vl)
		return set_once(f, &f->prof->s3_endpoint, val, vl);
	return 1;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct ini_file *f = user;
	struct profile *p = f->prof;
	size_t vl;

	if (!f->in_profile)
		return 1;
	if (!strcmp(value, LONG_VALUE)) {
		if (!f->long_value)
			return 0;
		value = f->long_value, vl = f->long_len;
	} else {
		vl = strlen(value);
	}
	if (!strcasecmp(name, "s3"))
		return value == f->long_value ? 1 : nested_s3(f, value);
	if (vl == 0)
		return 1; /* "key =" sets nothing, as with the AWS CLI */
	if (!strcasecmp(name, "aws_access_key_id")) {
		p->key_line = f->lineno;
		return set_once(f, &p->access_key, value, vl);
	}
	if (!strcasecmp(name, "aws_secret_access_key"))
		return set_once(f, &p->secret_key, value, vl);
	if (!strcasecmp(name, "aws_session_token"))
		return set_once(f, &p->session_token, value, vl);
	if (f->is_config && !strcasecmp(name, "region"))
		return set_once(f, &p->region, value, vl);
	if (f->is_config && !strcasecmp(name, "endpoint_url"))
		return set_once(f, &p->endpoint, value, vl);
	return 1;
}

/* Read a whole file without leaving copies of it in freed memory. 1 = no such file. */
static int
read_secret_file(struct dd_buf *out, const char *path, const char *display)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
		return 1;
	if (fd < 0)
		return dd_error_errno("cannot read %s", display);
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return dd_error("cannot read %s: it is a directory", display);
	}
	if (fstat(fd, &st) == 0 && st.st_size > 0 && (size_t)st.st_size <= MAX_FILE)
		dd_buf_grow(out, (size_t)st.st_size + 1);
	rc = dd_fd_read(fd, out, MAX_FILE, display);
	close(fd);
	if (rc == 0 && out->len > MAX_FILE)
		return dd_error("%s is larger than 1 MiB: not an AWS %s file", display,
				strstr(display, "config") ? "config" : "credentials");
	return rc;
}

/*
 * Gather profile `want` from the text of one file into `p`. 0 (p->seen
 * says whether the profile is there), or -1 on a malformed file:
 * "display:line: what", never the line itself.
 */
static int
parse_text(struct profile *p, const char *text, size_t len, const char *display, int is_config, const char *want)
{
	struct ini_file f = { .display = display, .is_config = is_config, .want = want, .prof = p };
	int ret;

	f.text = text, f.len = len;
	ret = ini_parse_stream(reader, &f, handler, &f);
	if (ret < 0)
		return dd_error("cannot parse %s (out of memory)", display);
	if (ret > 0)
		fail_at(&f, (size_t)ret, "not a 'key = value' line, section header or comment");
	if (f.err_line) {
		dd_error("%s:%zu: %s", display, f.err_line, f.err_what);
		dd_hint("fix that line of %s (the values are not shown: they may be secrets)", display);
		return -1;
	}
	return 0;
}

/* parse_text() on the file at `path`; a missing file is an empty profile. 0, -1. */
static int
parse_file(struct profile *p, const char *path, const char *display, int is_config, const char *want)
{
	struct dd_buf text = DD_BUF_INIT;
	int rc = read_secret_file(&text, path, display);

	if (rc == 0)
		rc = parse_text(p, text.ptr ? text.ptr : "", text.len, display, is_config, want);
	dd_buf_release_secret(&text);
	return rc < 0 ? -1 : 0;
}

/* ---- resolving ---- */

/* One AWS file: the path from its variable, else under $HOME; NULL when neither is set. */
static char *
file_path(const char *var, const char *home_rel, char **display)
{
	const char *v = getenv(var), *home = getenv("HOME");

	if (v && *v) {
		*display = dd_strdup(v);
		return dd_strdup(v);
	}
	if (!home || !*home)
		return *display = NULL;
	*display = dd_asprintf("~/%s", home_rel);
	return dd_asprintf("%s/%s", home, home_rel);
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* Credentials from the environment: 1 found, 0 none, -1 half a pair. */
static int
from_env(struct dd_s3_creds *out)
{
	const char *id = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");

	if (!id && !secret)
		return 0;
	if (!id || !secret) {
		dd_error("%s is set but %s is not", id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			 id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		dd_hint("set both, or unset both to use ~/.aws/credentials");
		return -1;
	}
	out->access_key = dd_strdup(id);
	out->secret_key = dd_strdup(secret);
	out->session_token = env("AWS_SESSION_TOKEN") ? dd_strdup(env("AWS_SESSION_TOKEN")) : NULL;
	out->source = dd_strdup("environment");
	return 1;
}

/* Credentials from a profile: 1 taken, 0 none there, -1 half a pair. */
static int
from_profile(struct dd_s3_creds *out, struct profile *p, const char *profile, const char *display)
{
	if (!p->access_key && !p->secret_key)
		return 0;
	if (!p->access_key || !p->secret_key) {
		dd_error("profile %s in %s has %s but no %s", profile, display,
			 p->access_key ? "aws_access_key_id" : "aws_secret_access_key",
			 p->access_key ? "aws_secret_access_key" : "aws_access_key_id");
		return -1;
	}
	out->access_key = p->access_key, p->access_key = NULL;
	out->secret_key = p->secret_key, p->secret_key = NULL;
	out->session_token = p->session_token, p->session_token = NULL;
	out->source = dd_asprintf("profile %s in %s", profile, display);
	return 1;
}

static void
pick_region_endpoint(struct dd_s3_creds *out, const struct dd_s3_creds_opts *o, const struct profile *cfg)
{
	const char *region = o && o->region && *o->region ? o->region : NULL;
	const char *endpoint = o && o->endpoint && *o->endpoint ? o->endpoint : NULL;

	if (!region)
		region = env("AWS_REGION");
	if (!region)
		region = env("AWS_DEFAULT_REGION");
	if (!region)
		region = cfg->region;
	out->region = dd_strdup(region ? region : "us-east-1");

	if (!endpoint)
		endpoint = env("AWS_ENDPOINT_URL_S3");
	if (!endpoint)
		endpoint = env("AWS_ENDPOINT_URL");
	if (!endpoint)
		endpoint = cfg->s3_endpoint; /* service-specific first, as the AWS CLI does */
	if (!endpoint)
		endpoint = cfg->endpoint;
	out->endpoint = endpoint ? dd_strdup(endpoint) : NULL;
}

static int
not_found(const char *profile, const char *cred_display, const char *cfg_display)
{
	dd_error("no S3 credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set and profile %s has "
		 "no aws_access_key_id in %s or %s",
		 profile, cred_display ? cred_display : "~/.aws/credentials (HOME is not set)",
		 cfg_display ? cfg_display : "~/.aws/config");
	dd_hint("export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add them to [%s] in ~/.aws/credentials "
		"(AWS_PROFILE picks another profile, AWS_SHARED_CREDENTIALS_FILE another file)",
		profile);
	return DD_NOTFOUND;
}

/* Credentials from the environment, else the credentials file, else the config file. */
static int
find_credentials(struct dd_s3_creds *out, struct profile *cred, struct profile *cfg, const char *profile,
		 const char *cred_display, const char *cfg_display)
{
	int rc = from_env(out);

	if (rc == 0)
		rc = from_profile(out, cred, profile, cred_display);
	if (rc == 0)
		rc = from_profile(out, cfg, profile, cfg_display);
	if (rc < 0)
		return -1;
	if (getenv("AWS_PROFILE") && *getenv("AWS_PROFILE") && !cred->seen && !cfg->seen) {
		dd_error("AWS profile %s (from AWS_PROFILE) is in neither %s nor %s", profile,
			 cred_display ? cred_display : "~/.aws/credentials", cfg_display ? cfg_display : "~/.aws/config");
		dd_hint("check AWS_PROFILE, or add [%s] to %s", profile,
			cred_display ? cred_display : "~/.aws/credentials");
		return -1;
	}
	return rc == 0 ? not_found(profile, cred_display, cfg_display) : 0;
}

/* What both entry points share once the profiles are gathered. */
static int
resolve_parsed(struct dd_s3_creds *out, const struct dd_s3_creds_opts *o, const char *profile, struct profile *cred,
	       struct profile *cfg, const char *cred_display, const char *cfg_display)
{
	int rc = find_credentials(out, cred, cfg, profile, cred_display, cfg_display);

	if (rc == 0)
		pick_region_endpoint(out, o, cfg);
	else
		dd_s3_creds_free(out);
	profile_free(cred);
	profile_free(cfg);
	return rc;
}

int
dd_s3_creds_resolve(struct dd_s3_creds *out, const struct dd_s3_creds_opts *o)
{
	struct profile cred = { 0 }, cfg = { 0 };
	const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
	char *cred_display = NULL, *cfg_display = NULL;
	char *cred_path = file_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", &cred_display);
	char *cfg_path = file_path("AWS_CONFIG_FILE", ".aws/config", &cfg_display);
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((cred_path && parse_file(&cred, cred_path, cred_display, 0, profile) < 0) ||
	    (cfg_path && parse_file(&cfg, cfg_path, cfg_display, 1, profile) < 0)) {
		profile_free(&cred);
		profile_free(&cfg);
	} else {
		rc = resolve_parsed(out, o, profile, &cred, &cfg, cred_display, cfg_display);
	}
	free(cred_path);
	free(cred_display);
	free(cfg_path);
	free(cfg_display);
	return rc;
}

int
dd_s3_creds_resolve_text(struct dd_s3_creds *out, const struct dd_s3_creds_opts *o, const char *cred_text,
			 size_t cred_len, const char *cred_display, const char *cfg_text, size_t cfg_len,
			 const char *cfg_display)
{
	struct profile cred = { 0 }, cfg = { 0 };
	const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";

	memset(out, 0, sizeof(*out));
	if ((cred_text && parse_text(&cred, cred_text, cred_len, cred_display, 0, profile) < 0) ||
	    (cfg_text && parse_text(&cfg, cfg_text, cfg_len, cfg_display, 1, profile) < 0)) {
		profile_free(&cred);
		profile_free(&cfg);
		return -1;
	}
	return resolve_parsed(out, o, profile, &cred, &cfg, cred_display, cfg_display);
}

void
dd_s3_creds_free(struct dd_s3_creds *c)
{
	wipe_free(c->access_key);
	wipe_free(c->secret_key);
	wipe_free(c->session_token);
	free(c->region);
	free(c->endpoint);
	free(c->source);
	memset(c, 0, sizeof(*c));
}
