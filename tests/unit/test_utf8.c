/* SPDX-License-Identifier: MIT */
/*
 * This file contains the table-driven tests of utf8.c: the strict
 * well-formedness check (RFC 3629) and the cuts on character boundaries.
 */
#include "tap.h"
#include "utf8.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name, *text;
	size_t len;		/* 0: strlen */
	long bad_at;		/* -1: valid */
} texts[] = {
	{ "ASCII", "scenario-1", 0, -1 },
	{ "empty", "", 0, -1 },
	{ "NUL is U+0000", "a\0b", 3, -1 },
	{ "2 bytes, lowest (U+0080)", "\xc2\x80", 0, -1 },
	{ "3 bytes, lowest (U+0800)", "\xe0\xa0\x80", 0, -1 },
	{ "last before surrogates (U+D7FF)", "\xed\x9f\xbf", 0, -1 },
	{ "first after surrogates (U+E000)", "\xee\x80\x80", 0, -1 },
	{ "U+FFFD", "\xef\xbf\xbd", 0, -1 },
	{ "4 bytes, lowest (U+10000)", "\xf0\x90\x80\x80", 0, -1 },
	{ "highest (U+10FFFF)", "\xf4\x8f\xbf\xbf", 0, -1 },
	{ "mixed", "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 0, -1 },
	{ "overlong '/' in 2 bytes", "x\xc0\xaf", 0, 1 },
	{ "overlong in 2 bytes (C1)", "\xc1\xbf", 0, 0 },
	{ "overlong in 3 bytes", "\xe0\x9f\xbf", 0, 0 },
	{ "overlong in 4 bytes", "\xf0\x8f\xbf\xbf", 0, 0 },
	{ "high surrogate", "ab\xed\xa0\x80", 0, 2 },
	{ "low surrogate", "\xed\xbf\xbf", 0, 0 },
	{ "past U+10FFFF", "\xf4\x90\x80\x80", 0, 0 },
	{ "F5 lead", "\xf5\x80\x80\x80", 0, 0 },
	{ "FF", "\xff", 0, 0 },
	{ "lone continuation", "a\x80", 0, 1 },
	{ "cut 2-byte", "a\xc3", 0, 1 },
	{ "cut 3-byte", "\xe2\x82", 0, 0 },
	{ "cut 4-byte", "\xf0\x9f\x98", 0, 0 },
	{ "ASCII in a continuation's place", "\xe2\x41\x80", 0, 0 },
	{ "bad third byte of 4", "\xf0\x9f\x41\x80", 0, 0 },
};

static const struct {
	const char *text;
	size_t max, want;
} prefixes[] = {
	{ "abc", 10, 3 },
	{ "abc", 2, 2 },
	{ "a\xc3\xa9", 3, 3 },
	{ "a\xc3\xa9", 2, 1 },		/* not half of the e-acute */
	{ "a\xc3\xa9z", 3, 3 },
	{ "\xe2\x82\xac\xe2\x82\xac", 4, 3 },
	{ "\xe2\x82\xac\xe2\x82\xac", 5, 3 },
	{ "\xe2\x82\xac\xe2\x82\xac", 6, 6 },
	{ "\xf0\x9f\x98\x80", 3, 0 },
	{ "", 5, 0 },
};

static const struct {
	const char *text, *want;
} trims[] = {
	{ "abc", "abc" },
	{ "", "" },
	{ "a\xc3\xa9", "a\xc3\xa9" },
	{ "a\xc3", "a" },
	{ "a\xe2\x82", "a" },
	{ "a\xe2", "a" },
	{ "a\xf0\x9f\x98", "a" },
	{ "a\xf0\x9f\x98\x80", "a\xf0\x9f\x98\x80" },
	{ "\xe2\x82\xac\xe2\x82", "\xe2\x82\xac" },
	{ "a\x80", "a\x80" },		/* not a cut: left for the validator */
};

int
main(void)
{
	for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
		size_t len = texts[i].len ? texts[i].len : strlen(texts[i].text);
		size_t at = 999;
		bool valid = utf8_valid(texts[i].text, len, &at);

		ok(valid == (texts[i].bad_at < 0), "valid: %s", texts[i].name);
		if (!valid)
			ok((long)at == texts[i].bad_at, "%s: first bad byte %zu",
			    texts[i].name, at);
	}
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++) {
		size_t got = utf8_prefix_len(prefixes[i].text, prefixes[i].max);

		ok(got == prefixes[i].want, "prefix %zu of max %zu: %zu",
		    i, prefixes[i].max, got);
	}
	for (size_t i = 0; i < sizeof(trims) / sizeof(*trims); i++) {
		char buf[16];

		snprintf(buf, sizeof(buf), "%s", trims[i].text);
		utf8_trim_partial(buf);
		ok(strcmp(buf, trims[i].want) == 0, "trim %zu", i);
	}
	return tap_done();
}
