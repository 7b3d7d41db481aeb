/*
 * tests/unit/test-compression.c: the store's compression setting
 * (docs/FORMAT.md §3.3): the config line round-trips and is authenticated,
 * a config without it (format 1) keeps level 3, hostile values are refused
 * with one line, and stores created with zstd:1, zstd:19 and none write
 * at their level and read back exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>

#include "store-testlib.h"
#include "store/internal.h"
#include "store/keys.h"
#include "store/store.h"
#include "store/store-keys.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/log.h"

#define CHECK(x)                                                                                                       \
	do {                                                                                                           \
		if ((x) < 0)                                                                                           \
			fail_msg("%s: %s", #x, dd_error_last());                                                       \
	} while (0)

static struct dd_keys *
test_keys(void)
{
	uint8_t master[DD_KEY_LEN];

	memset(master, 7, sizeof(master));
	return dd_keys_new(master);
}

static void
one_line_containing(const char *msg, const char *needle)
{
	if (!msg || !strstr(msg, needle) || strchr(msg, '\n'))
		fail_msg("expected one line containing '%s', got '%s'", needle, msg ? msg : "(null)");
}

static void
config_round_trips_with_each_compression(void **state)
{
	const int levels[] = { 1, 2, 3, 19, -1, -7, DD_ZLEVEL_NONE };
	struct dd_keys *k = test_keys();
	struct dd_buf text = DD_BUF_INIT, again = DD_BUF_INIT;
	char want[32];

	(void)state;
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		struct dd_store_config c = { .min = 65536, .avg = 262144, .max = 1048576, .zlevel = levels[i] }, p;
		dd_store_config_format(&text, &c, k);
		dd_compression_format(want, levels[i]);
		char *line = dd_asprintf("\ncompression %s\nmac ", want);
		assert_non_null(strstr(text.ptr, line));
		assert_true(!strncmp(text.ptr, "dnadata-store 2\n", 16));
		free(line);
		CHECK(dd_store_config_parse(&p, text.ptr, text.len));
		CHECK(dd_store_config_check(&p, text.ptr, k, "test"));
		assert_int_equal(p.version, 2);
		assert_int_equal(p.zlevel, levels[i]);
		assert_int_equal(p.min, 65536), assert_int_equal(p.avg, 262144), assert_int_equal(p.max, 1048576);
		dd_store_config_format(&again, &p, k);
		assert_int_equal(again.len, text.len);
		assert_memory_equal(again.ptr, text.ptr, text.len);
	}
	dd_buf_release(&text), dd_buf_release(&again);
	dd_keys_free(k);
}

/* A config as text with its MAC made by `k` (signed: everything before the mac line). */
static void
signed_config(struct dd_buf *out, const struct dd_keys *k, const char *head)
{
	uint8_t mac[32];
	char hex[65];

	dd_buf_clear(out);
	dd_buf_puts(out, head);
	crypto_generichash(mac, 32, (const uint8_t *)out->ptr, out->len, k->config, DD_KEY_LEN);
	dd_hex_encode(hex, mac, 32);
	dd_buf_printf(out, "mac %s\n", hex);
}

static char *
head_with(const struct dd_keys *k, unsigned version, const char *compression_line)
{
	char hex[65];

	dd_hex_encode(hex, k->key_id, 32);
	return dd_asprintf("dnadata-store %u\nkey-id %s\nchunker fastcdc 131072 524288 2097152\n%s", version, hex,
			   compression_line);
}

static void
format_1_config_keeps_level_3(void **state)
{
	struct dd_keys *k = test_keys();
	struct dd_buf text = DD_BUF_INIT;
	struct dd_store_config p;
	char *h = head_with(k, 1, "");

	(void)state;
	signed_config(&text, k, h);
	CHECK(dd_store_config_parse(&p, text.ptr, text.len));
	CHECK(dd_store_config_check(&p, text.ptr, k, "test"));
	assert_int_equal(p.version, 1);
	assert_int_equal(p.zlevel, 3);
	free(h);
	/* format 2 needs the line; format 1 cannot have it */
	h = head_with(k, 2, "");
	signed_config(&text, k, h);
	assert_int_equal(dd_store_config_parse(&p, text.ptr, text.len), -1);
	one_line_containing(dd_error_last(), "store config damaged (compression line)");
	free(h);
	h = head_with(k, 1, "compression zstd:1\n");
	signed_config(&text, k, h);
	assert_int_equal(dd_store_config_parse(&p, text.ptr, text.len), -1);
	free(h);
	h = head_with(k, 3, "compression zstd:1\n");
	signed_config(&text, k, h);
	assert_int_equal(dd_store_config_parse(&p, text.ptr, text.len), -1);
	one_line_containing(dd_error_last(), "upgrade");
	free(h);
	dd_buf_release(&text);
	dd_keys_free(k);
}

static void
hostile_compression_values_are_refused(void **state)
{
	/* each correctly signed: the parser refuses them before any key is involved */
	const char *bad[] = { "zstd:0", "zstd:23", "zstd:-131073", "zstd:01", "zstd:+1", "zstd:", "zstd:-", "zstd:-0",
			      "zstd:1 ", " zstd:1", "zstd:1x", "zstd:9999999999999", "lz4", "ZSTD:1", "none ", "",
			      "zstd:\x1b[31m", "zstd;1" };
	struct dd_keys *k = test_keys();
	struct dd_buf text = DD_BUF_INIT;
	struct dd_store_config p;
	int level;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *line = dd_asprintf("compression %s\n", bad[i]), *h = head_with(k, 2, line);
		signed_config(&text, k, h);
		if (dd_store_config_parse(&p, text.ptr, text.len) != -1)
			fail_msg("config accepted compression '%s'", bad[i]);
		one_line_containing(dd_error_last(), "store config damaged (compression line)");
		assert_null(strchr(dd_error_last(), '\x1b'));
		free(line), free(h);
		assert_int_equal(dd_compression_parse(&level, bad[i], "--compression"), -1);
		one_line_containing(dd_error_last(), "--compression: not a compression setting");
	}
	/* what the option accepts is narrower than what a config may hold (readers need no level) */
	const char *cli_bad[] = { "zstd:20", "zstd:22", "zstd:-8" };
	for (size_t i = 0; i < sizeof(cli_bad) / sizeof(cli_bad[0]); i++) {
		assert_int_equal(dd_compression_parse(&level, cli_bad[i], "--compression"), -1);
		one_line_containing(dd_error_last(), "from -7 to 19");
		char *line = dd_asprintf("compression %s\n", cli_bad[i]), *h = head_with(k, 2, line);
		signed_config(&text, k, h);
		CHECK(dd_store_config_parse(&p, text.ptr, text.len));
		free(line), free(h);
	}
	CHECK(dd_compression_parse(&level, "none", "--compression"));
	assert_int_equal(level, DD_ZLEVEL_NONE);
	CHECK(dd_compression_parse(&level, "zstd:-7", "--compression"));
	assert_int_equal(level, -7);
	CHECK(dd_compression_parse(&level, "zstd:19", "--compression"));
	assert_int_equal(level, 19);
	dd_buf_release(&text);
	dd_keys_free(k);
}

/* Text that compresses, and compresses better at higher levels: words from a small random vocabulary. */
static void
make_text(struct dd_buf *out, size_t len)
{
	static const char *vocab[] = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
				       "india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa" };
	uint64_t x = 42;

	dd_buf_clear(out);
	while (out->len < len) {
		x = x * 6364136223846793005u + 1442695040888963407u;
		dd_buf_printf(out, "%u\t%s %s\t%u\n", (unsigned)(x >> 40) % 100000, vocab[(x >> 33) & 15],
			      vocab[(x >> 20) & 15], (unsigned)(x >> 8) & 1023);
	}
	out->len = len;
}

static uint64_t
pack_bytes(const char *root)
{
	char *packs = dd_path_join(root, "packs"), *cmd = dd_asprintf("find '%s' -type f -printf '%%s\\n'", packs);
	FILE *p = popen(cmd, "r");
	unsigned long long n, sum = 0;

	assert_non_null(p);
	while (fscanf(p, "%llu", &n) == 1)
		sum += n;
	pclose(p);
	free(packs), free(cmd);
	return sum;
}

/* Create a store with `compression`, write `data` as one stream, read it back; the store's pack bytes. */
static uint64_t
write_and_read_back(const char *tmp, const char *name, const char *compression, const struct dd_buf *data)
{
	char *root = dd_path_join(tmp, name), *url = dd_asprintf("file://%s", root);
	char *sd = dd_asprintf("%s.state", root);
	char *cfgpath = dd_path_join(root, "config"), *line = dd_asprintf("\ncompression %s\n", compression);
	struct dd_store_opts o = { .url = url, .statedir = sd, .path_style = -1, .retries = -1,
				   .compression = compression };
	struct dd_store *st = NULL;
	struct dd_snapshot_writer *sw;
	struct dd_stream_writer *w;
	struct dd_stream_reader *r;
	struct dd_snapshot *s;
	struct dd_buf cfg = DD_BUF_INIT, back = DD_BUF_INIT;
	char id[DD_ID_HEX_SIZE];
	const void *piece;
	size_t plen;
	int created, rr;
	uint64_t bytes;

	CHECK(dd_store_init(&o, &created));
	assert_int_equal(created, 1);
	CHECK(dd_file_read(&cfg, cfgpath));
	assert_non_null(strstr(cfg.ptr, line));
	CHECK(dd_store_open(&st, url, sd, 0));
	CHECK(dd_snapshot_begin(&sw, st));
	CHECK(dd_stream_begin(&w, sw, "data"));
	CHECK(dd_stream_write(w, data->ptr, data->len));
	CHECK(dd_stream_end(w));
	CHECK(dd_snapshot_commit(sw, id));
	dd_store_free(st);
	/* a fresh open (and its own cache) reads it back */
	CHECK(dd_store_open(&st, url, sd, 0));
	CHECK(dd_snapshot_load(&s, st, id));
	CHECK(dd_stream_open(&r, st, dd_snapshot_find(s, "data")));
	while ((rr = dd_stream_next(r, &piece, &plen)) == 1)
		dd_buf_put(&back, piece, plen);
	CHECK(rr);
	dd_stream_close(r);
	assert_int_equal(back.len, data->len);
	assert_memory_equal(back.ptr, data->ptr, data->len);
	dd_snapshot_free(s);
	dd_store_free(st);
	bytes = pack_bytes(root);
	dd_buf_release(&cfg), dd_buf_release(&back);
	free(root), free(url), free(sd), free(cfgpath), free(line);
	return bytes;
}

static void
stores_write_at_their_level_and_read_back(void **state)
{
	char *tmp = make_tmpdir();
	struct dd_buf data = DD_BUF_INIT;
	uint64_t none, fast, small;

	(void)state;
	make_text(&data, 3u << 20);
	none = write_and_read_back(tmp, "none", "none", &data);
	fast = write_and_read_back(tmp, "z1", "zstd:1", &data);
	small = write_and_read_back(tmp, "z19", "zstd:19", &data);
	/* none: every chunk raw (plus headers); zstd: compressed, and level 19 smaller than level 1 */
	if (!(none >= data.len && fast < data.len / 2 && small < fast))
		fail_msg("pack bytes for %zu bytes of text: none %llu, zstd:1 %llu, zstd:19 %llu", data.len,
			 (unsigned long long)none, (unsigned long long)fast, (unsigned long long)small);
	dd_buf_release(&data);
	dd_rm_rf(tmp);
	free(tmp);
}

static void
existing_store_keeps_its_compression(void **state)
{
	char *tmp = make_tmpdir(), *root = dd_path_join(tmp, "s"), *url = dd_asprintf("file://%s", root);
	char *sd = dd_path_join(tmp, "state"), *cfgpath = dd_path_join(root, "config");
	struct dd_store_opts o = { .url = url, .statedir = sd, .path_style = -1, .retries = -1, .compression = "none" };
	struct dd_buf before = DD_BUF_INIT, after = DD_BUF_INIT;
	int created;

	(void)state;
	CHECK(dd_store_init(&o, &created));
	CHECK(dd_file_read(&before, cfgpath));
	o.compression = "zstd:5";
	CHECK(dd_store_init(&o, &created));
	assert_int_equal(created, 0);
	CHECK(dd_file_read(&after, cfgpath));
	assert_int_equal(after.len, before.len);
	assert_memory_equal(after.ptr, before.ptr, before.len);
	/* a bad value is refused before anything is created */
	o.compression = "zstd:99";
	free(root), root = dd_path_join(tmp, "t");
	free(url), url = dd_asprintf("file://%s", root);
	o.url = url;
	assert_int_equal(dd_store_init(&o, &created), -1);
	one_line_containing(dd_error_last(), "--compression");
	assert_false(dd_path_exists(root));
	dd_buf_release(&before), dd_buf_release(&after);
	dd_rm_rf(tmp);
	free(tmp), free(root), free(url), free(sd), free(cfgpath);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_round_trips_with_each_compression),
		cmocka_unit_test(format_1_config_keeps_level_3),
		cmocka_unit_test(hostile_compression_values_are_refused),
		cmocka_unit_test(stores_write_at_their_level_and_read_back),
		cmocka_unit_test(existing_store_keeps_its_compression),
	};
	if (sodium_init() < 0)
		return 1;
	dd_log_set_verbosity(DD_QUIET);
	dd_keyfile_set_fast_for_tests(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
