/*
 * util/conflict.h: recognising the lines git writes into a file it could
 * not merge, so tracked files (profiles.ini, ref files) that still hold
 * them are refused with "resolve the merge conflict" rather than a
 * puzzling syntax error.
 */
#ifndef DD_UTIL_CONFLICT_H
#define DD_UTIL_CONFLICT_H

#include <stddef.h>
#include <string.h>

/* Is the line s[0..len) a merge conflict marker (<<<<<<<, =======, >>>>>>>, ||||||| alone or before a space)? */
static inline int
dd_is_conflict_marker(const char *s, size_t len)
{
	static const char *const marks[] = { "<<<<<<<", "=======", ">>>>>>>", "|||||||" };

	for (size_t i = 0; i < 4; i++)
		if (len >= 7 && !memcmp(s, marks[i], 7) && (len == 7 || s[7] == ' '))
			return 1;
	return 0;
}

#endif
