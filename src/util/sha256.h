/*
 * util/sha256.h: SHA-256 through OpenSSL's libcrypto, which uses the CPU's
 * SHA extensions (or AVX2) where they exist: ~1.1 GB/s on the benchmark
 * machine against 150 MB/s for libsodium's portable C. Packs are named by
 * the SHA-256 of their bytes and S3 requests carry the SHA-256 of their
 * body, so every byte pushed or fetched is hashed once: this is on the
 * throughput path (docs/PERF-FINDINGS.md, S3 section).
 */
#ifndef DD_UTIL_SHA256_H
#define DD_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define DD_SHA256_BYTES 32

struct dd_sha256;

/* One pass over a buffer. */
void dd_sha256(uint8_t out[DD_SHA256_BYTES], const void *data, size_t len);
/* Streaming: new (aborts on out-of-memory), update any number of times, final (frees). */
struct dd_sha256 *dd_sha256_new(void);
void dd_sha256_update(struct dd_sha256 *h, const void *data, size_t len);
void dd_sha256_final(struct dd_sha256 *h, uint8_t out[DD_SHA256_BYTES]);
/* Drop a hash without a result (NULL is fine). */
void dd_sha256_free(struct dd_sha256 *h);

#endif
