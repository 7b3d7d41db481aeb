/*
 * s3/creds.h: finding S3 credentials, region and endpoint the way AWS's own
 * tools do, so a developer's existing setup just works:
 *
 *   credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN),
 *                else the profile AWS_PROFILE (or "default") of
 *                AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials), then of
 *                AWS_CONFIG_FILE (~/.aws/config, sections "[profile NAME]"
 *                and "[default]");
 *   region:      the store's `region` key, else AWS_REGION, AWS_DEFAULT_REGION,
 *                the profile's `region` (config file only, as with the AWS
 *                CLI), else "us-east-1";
 *   endpoint:    the store's `endpoint` key, else AWS_ENDPOINT_URL_S3,
 *                AWS_ENDPOINT_URL, the profile's `endpoint_url` (or its
 *                `s3 =` sub-section's endpoint_url), else AWS's own.
 *
 * Half a key pair (an id without its secret, in the environment or a
 * profile) is an error, not a fall-through. Not read: `services` sections,
 * SSO, assumed roles, credential_process, instance metadata.
 *
 * The files are parsed with inih and treated as hostile input: a malformed
 * file is an error naming the file and line, never its contents. No
 * credential value ever reaches an error message or log line.
 */
#ifndef DD_S3_CREDS_H
#define DD_S3_CREDS_H

#include <stddef.h>

struct dd_s3_creds {
	char *access_key;
	char *secret_key;    /* wiped when freed */
	char *session_token; /* NULL when none; wiped when freed */
	char *region;        /* never NULL after a successful resolve */
	char *endpoint;      /* NULL: AWS's endpoint for the region */
	char *source;        /* where the credentials came from, for messages: "environment", "profile dev in ~/.aws/credentials" */
};

/* What the store's config says; NULL fields are not set there. */
struct dd_s3_creds_opts {
	const char *region;
	const char *endpoint;
};

/*
 * Resolve from the environment and the AWS files. Returns 0; DD_NOTFOUND
 * when no credentials are found anywhere (error and hint set: which
 * variables or files to set); -1 on a malformed file or a profile named by
 * AWS_PROFILE that does not exist.
 */
int dd_s3_creds_resolve(struct dd_s3_creds *out, const struct dd_s3_creds_opts *o);
/*
 * The same, on the two files' texts instead of reading them (NULL: no such
 * file; the displays name them in messages): what the fuzz harness drives,
 * with no file written or read per input.
 */
int dd_s3_creds_resolve_text(struct dd_s3_creds *out, const struct dd_s3_creds_opts *o, const char *cred_text,
			     size_t cred_len, const char *cred_display, const char *cfg_text, size_t cfg_len,
			     const char *cfg_display);
void dd_s3_creds_free(struct dd_s3_creds *c);

#endif
