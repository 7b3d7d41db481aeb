/*
 * tests/unit/asan-no-quarantine.h: included once by a test program whose
 * memory test measures peak memory. Under AddressSanitizer, freed memory
 * waits in a quarantine (256 MB) and would count as peak memory, so such a
 * program runs without one (ASan still checks every access).
 */
#ifndef DD_TEST_ASAN_NO_QUARANTINE_H
#define DD_TEST_ASAN_NO_QUARANTINE_H

#if defined(__SANITIZE_ADDRESS__)
#define DD_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DD_TEST_ASAN 1
#endif
#endif
#ifdef DD_TEST_ASAN
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "quarantine_size_mb=0";
}
#endif

#endif
