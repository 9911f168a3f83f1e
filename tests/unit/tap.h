/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tiny TAP helper the unit tests share.
 *
 * Each check prints "ok N - what" or "not ok N - what" with the file and
 * line of a failure; tap_done() prints the plan and returns the exit status.
 * automake's tap-driver.sh counts the lines, so every assertion is a test.
 */
#ifndef EGW_TAP_H
#define EGW_TAP_H

#include <stdbool.h>

void tap_ok(bool pass, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void tap_skip(const char *why);
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int tap_done(void);

#define ok(cond, ...) tap_ok((cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(a, b, ...) do { long long _a = (a), _b = (b); \
	tap_ok(_a == _b, __FILE__, __LINE__, __VA_ARGS__); \
	if (_a != _b) tap_diag("  got %lld, want %lld", _a, _b); } while (0)
#define is_str(a, b, ...) do { const char *_a = (a), *_b = (b); \
	bool _eq = _a && _b && strcmp(_a, _b) == 0; \
	tap_ok(_eq, __FILE__, __LINE__, __VA_ARGS__); \
	if (!_eq) tap_diag("  got \"%s\", want \"%s\"", _a ? _a : "(null)", _b ? _b : "(null)"); } while (0)

#endif
