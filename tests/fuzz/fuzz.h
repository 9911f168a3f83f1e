/* SPDX-License-Identifier: MIT */
/*
 * This file contains the helpers shared by the libFuzzer targets.
 *
 * A target aborts (and libFuzzer saves the input as a crash) when a
 * property fails, not only when a sanitizer fires: FUZZ_CHECK() prints the
 * failed condition first so the crash log says which promise broke.
 */
#ifndef EGW_FUZZ_H
#define EGW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n",	\
		    #cond, __FILE__, __LINE__);				\
		abort();						\
	}								\
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A NUL-terminated copy of the input (the parsers take C strings). */
static inline char *
fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
