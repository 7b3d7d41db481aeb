/*
 * tests/unit/store-fx.h: the fixture of the unit tests that need a real
 * store: a temporary folder holding a file:// store, created and opened
 * (fast key derivation), removed after each test. Include after cmocka.h
 * and store-testlib.h (make_tmpdir).
 */
#ifndef DD_TEST_STORE_FX_H
#define DD_TEST_STORE_FX_H

#include "store/keys.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fs.h"

struct fx {
	char *tmp, *sd, *url;
	struct dd_store *st;
};

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char *root;
	int created;

	f->tmp = make_tmpdir();
	f->sd = dd_path_join(f->tmp, "state");
	root = dd_path_join(f->tmp, "store");
	f->url = dd_asprintf("file://%s", root);
	free(root);
	dd_keyfile_set_fast_for_tests(1);
	if (dd_store_setup(f->url, f->sd, NULL, &created) < 0 || dd_store_open(&f->st, f->url, f->sd, 0) < 0) {
		fprintf(stderr, "setup: %s\n", dd_error_last());
		return -1;
	}
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	dd_store_free(f->st);
	dd_rm_rf(f->tmp);
	free(f->tmp), free(f->sd), free(f->url), free(f);
	return 0;
}

#define CHECK(x)                                                                                                       \
	do {                                                                                                           \
		if ((x) < 0)                                                                                           \
			fail_msg("%s: %s", #x, dd_error_last());                                                       \
	} while (0)

#endif
