/* SPDX-License-Identifier: MIT */
/*
 * This file contains timestamp formatting and parsing (see timefmt.h).
 */
#include "timefmt.h"
#include "err.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int64_t
timefmt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
timefmt_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define TIMEFMT_YEAR_10000_MS INT64_C(253402300800000)

/* gmtime_r + snprintf, every time. */
static char *
timefmt_format(int64_t ms, char *buf)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char wide[96];	/* what the compiler can prove fits any int */

	gmtime_r(&secs, &tm);
	snprintf(wide, sizeof(wide), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (int)(ms % 1000));
	memcpy(buf, wide, TIMEFMT_LEN - 1);
	buf[TIMEFMT_LEN - 1] = '\0';
	return buf;
}

char *
timefmt_from_ms(int64_t ms, char *buf)
{
	/* Per thread, the text of the last second formatted: a process
	 * stamps many log lines and rows within one second, and gmtime_r
	 * plus snprintf cost more than the rest of a log line's fields.
	 * Years 1970-9999 have the fixed form, milliseconds at 20-22. */
	static _Thread_local int64_t cached_secs = -1;
	static _Thread_local char cached[TIMEFMT_LEN];
	int milli;

	if (ms < 0 || ms >= TIMEFMT_YEAR_10000_MS)
		return timefmt_format(ms, buf);
	if (ms / 1000 != cached_secs) {
		cached_secs = ms / 1000;
		timefmt_format(cached_secs * 1000, cached);
	}
	milli = (int)(ms % 1000);
	memcpy(buf, cached, TIMEFMT_LEN);
	buf[20] = (char)('0' + milli / 100);
	buf[21] = (char)('0' + milli / 10 % 10);
	buf[22] = (char)('0' + milli % 10);
	return buf;
}

char *
timefmt_now(char *buf)
{
	return timefmt_from_ms(timefmt_now_ms(), buf);
}

static int
digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int
days_in_month(int y, int mo)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return mo == 2 && leap ? 29 : days[mo - 1];
}

/*
 * Strict: a date that is not in the calendar (February 31st) is refused
 * rather than rolled over by timegm(), and so is a leap second (second 60,
 * which RFC 3339 allows): the stored times have none, and reading it as
 * the next second would move a bound.  The instant, offset applied, must
 * lie in the years 1970 to 9999 that the stored text can hold.  A
 * fraction may have any number of digits (RFC 3339); it is read to the
 * millisecond, the precision of the stored times.
 */
int
timefmt_parse(const char *text, int64_t *ms)
{
	int y, mo, d, h, mi, s, frac = 0, off = 0;
	const char *p = text + 19;
	int64_t t;
	struct tm tm;

	if (strlen(text) < 20 || text[4] != '-' || text[7] != '-' ||
	    (text[10] != 'T' && text[10] != 't') || text[13] != ':' ||
	    text[16] != ':' ||
	    digits(text, 4, &y) || digits(text + 5, 2, &mo) ||
	    digits(text + 8, 2, &d) || digits(text + 11, 2, &h) ||
	    digits(text + 14, 2, &mi) || digits(text + 17, 2, &s))
		return EGW_E_INVALID;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
	    mi > 59 || s > 59)
		return EGW_E_INVALID;
	if (*p == '.') {
		int n = 0, scale = 1;

		for (p++; *p >= '0' && *p <= '9'; p++, n++) {
			if (n < 3) {
				frac = frac * 10 + (*p - '0');
				scale *= 10;
			}
		}
		if (n == 0)
			return EGW_E_INVALID;
		frac = frac * (1000 / scale);
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		int oh, om;

		if (digits(p + 1, 2, &oh) || digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return EGW_E_INVALID;
		off = (oh * 60 + om) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return EGW_E_INVALID;
	}
	if (*p != '\0')
		return EGW_E_INVALID;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	t = ((int64_t)timegm(&tm) - (int64_t)off * 60) * 1000 + frac;
	if (t < 0 || t >= TIMEFMT_YEAR_10000_MS)
		return EGW_E_INVALID;
	*ms = t;
	return 0;
}
