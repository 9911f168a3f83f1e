/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of timefmt.c: formatting (the text reused
 * within one second must be what formatting from scratch gives, across
 * millisecond, second, day and year boundaries, and the times outside the
 * reused range, before 1970 and from year 10000 on, keep their old form)
 * and parsing (RFC 3339 to the millisecond; impossible dates, leap
 * seconds and instants outside 1970-9999 refused).
 */
#include "tap.h"
#include "timefmt.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Independent of timefmt.c: gmtime_r and snprintf every time. */
static void
reference(int64_t ms, char *out, size_t size)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (int)(ms % 1000));
}

/*
 * Parsing: what RFC 3339 allows is read to the millisecond; what names no
 * instant or one outside 1970-9999 is refused, never rolled over.
 */
static void
test_parse(void)
{
	static const struct {
		const char *text;
		int64_t ms;		/* -1: refused */
	} cases[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "1970-01-01T00:00:00.5Z", 500 },
		{ "1970-01-01t00:00:00.123456789z", 123 },
		/* RFC 3339 sets no limit on the fraction: read to the ms. */
		{ "1970-01-01T00:00:00.1239999999999Z", 123 },
		{ "2026-11-29T21:00:00+01:00", INT64_C(1795982400000) },
		{ "2026-11-29T19:00:00-01:00", INT64_C(1795982400000) },
		{ "2024-02-29T00:00:00Z", INT64_C(1709164800000) },
		{ "2000-02-29T00:00:00Z", INT64_C(951782400000) },
		{ "9999-12-31T23:59:59.999Z", INT64_C(253402300799999) },
		{ "1969-12-31T23:30:00-01:00", INT64_C(1800000) },
		{ "2026-02-29T00:00:00Z", -1 },		/* not a leap year */
		{ "1900-02-29T00:00:00Z", -1 },		/* nor is 1900 */
		{ "2026-02-31T00:00:00Z", -1 },
		{ "2026-04-31T00:00:00Z", -1 },
		{ "2026-00-10T00:00:00Z", -1 },
		{ "2026-13-10T00:00:00Z", -1 },
		{ "2026-01-00T00:00:00Z", -1 },
		{ "2026-01-01T24:00:00Z", -1 },
		{ "2026-01-01T00:60:00Z", -1 },
		{ "2026-01-01T00:00:60Z", -1 },		/* leap second */
		{ "2016-12-31T23:59:60Z", -1 },
		{ "1970-01-01T00:00:00.5+01:00", -1 },	/* before 1970 */
		{ "1969-12-31T23:59:59.999Z", -1 },
		{ "9999-12-31T23:59:59.999-01:00", -1 },	/* year 10000 */
		{ "2026-01-01T00:00:00", -1 },		/* no offset */
		{ "2026-01-01T00:00:00 01:00", -1 },
		{ "2026-01-01T00:00:00.Z", -1 },
		{ "2026-01-01T00:00:00.12a3Z", -1 },
		{ "2026-01-01T00:00:00+1:00", -1 },
		{ "2026-01-01T00:00:00+24:00", -1 },
		{ "2026-01-01T00:00:00Zjunk", -1 },
		{ "2026-1-01T00:00:00Z", -1 },
		{ "", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = -2;
		int rc = timefmt_parse(cases[i].text, &ms);

		if (cases[i].ms < 0)
			ok(rc != 0 && ms == -2, "refused: \"%s\"", cases[i].text);
		else
			ok(rc == 0 && ms == cases[i].ms, "\"%s\" is %lld (got %lld)",
			    cases[i].text, (long long)cases[i].ms, (long long)ms);
	}
}

int
main(void)
{
	/* 2026-12-31T23:59:58.990Z: steps cross seconds, a day and a year. */
	const int64_t start = INT64_C(1798761598990);
	char got[TIMEFMT_LEN], want[64];
	int bad = 0;

	for (int64_t ms = start; ms < start + 3000; ms += 7) {
		timefmt_from_ms(ms, got);
		reference(ms, want, sizeof(want));
		if (strcmp(got, want) != 0 && bad++ < 3)
			tap_diag("%lld: got %s, want %s", (long long)ms, got, want);
	}
	is_int(bad, 0, "429 stamps across a year boundary match gmtime_r + snprintf");

	/* Going back to an earlier second must not reuse the later text. */
	timefmt_from_ms(start + 2000, got);
	timefmt_from_ms(start, got);
	is_str(got, "2026-12-31T23:59:58.990Z", "an earlier second after a later one");
	timefmt_from_ms(0, got);
	is_str(got, "1970-01-01T00:00:00.000Z", "the epoch");
	timefmt_from_ms(999, got);
	is_str(got, "1970-01-01T00:00:00.999Z", "the last millisecond of a second");
	timefmt_from_ms(INT64_C(253402300799999), got);
	is_str(got, "9999-12-31T23:59:59.999Z", "the last millisecond of year 9999");
	test_parse();
	return tap_done();
}
