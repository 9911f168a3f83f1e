/* SPDX-License-Identifier: MIT */
/*
 * This file contains the one timestamp format the project stores and
 * publishes: UTC RFC 3339 with milliseconds, "2026-11-28T23:59:01.123Z".
 * Its fixed width makes text comparison equal time comparison in SQL.
 */
#ifndef EGW_TIMEFMT_H
#define EGW_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#define TIMEFMT_LEN 25	/* including the NUL */

/**
 * timefmt_now() - the current time
 * @buf: at least TIMEFMT_LEN bytes
 *
 * Returns: @buf.
 */
char *timefmt_now(char *buf);

/**
 * timefmt_from_ms() - format milliseconds since the epoch
 *
 * Returns: @buf.
 */
char *timefmt_from_ms(int64_t ms, char *buf);

/**
 * timefmt_parse() - parse RFC 3339 ("...Z" or "+hh:mm", optional fraction)
 * @text: the timestamp
 * @ms: milliseconds since the epoch
 *
 * Returns: 0, or EGW_E_INVALID for anything else, for a date not in the
 * calendar, a leap second, and an instant before 1970 or from year 10000
 * on (offset applied).
 */
int timefmt_parse(const char *text, int64_t *ms);

/**
 * timefmt_now_ms() - wall clock in milliseconds since the epoch
 */
int64_t timefmt_now_ms(void);

/**
 * timefmt_monotonic_ms() - monotonic clock in milliseconds, for timeouts
 */
int64_t timefmt_monotonic_ms(void);

#endif
