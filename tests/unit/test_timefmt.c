/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of timefmt.c's formatting: the text reused
 * within one second must be what formatting from scratch gives, across
 * millisecond, second, day and year boundaries, and the times outside the
 * reused range (before 1970, from year 10000 on) keep their old form.
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
	return tap_done();
}
