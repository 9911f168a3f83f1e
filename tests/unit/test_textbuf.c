/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of textbuf.c: pieces appended in order, a
 * piece that does not fit left out with every one after it, the text
 * NUL-terminated throughout, decimals with and without padding, and
 * bytes in hex.
 */
#include "tap.h"
#include "textbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *
u64_text(uint64_t v, unsigned min_digits, char *buf, size_t size)
{
	struct textbuf tb;

	textbuf_init(&tb, buf, size);
	return textbuf_put_u64(&tb, v, min_digits) ? buf : "(did not fit)";
}

int
main(void)
{
	char buf[8], big[32], want[32];
	struct textbuf tb;
	static const uint64_t values[] = { 0, 1, 9, 10, 99, 100, 999, 1000,
	    65535, 4294967295u, 4294967296u, UINT64_MAX / 10, UINT64_MAX };
	int bad = 0;

	textbuf_init(&tb, buf, sizeof(buf));
	is_str(buf, "", "empty text");
	ok(textbuf_puts(&tb, "abc") && textbuf_put(&tb, "dexx", 2), "two pieces");
	is_str(buf, "abcde", "in order");
	is_int(tb.len, 5, "length");
	ok(textbuf_puts(&tb, "fg") && tb.len == 7 && !tb.overflowed,
	    "a piece up to the last byte before the NUL fits");
	ok(!textbuf_puts(&tb, "h") && tb.overflowed, "one more does not");
	is_str(buf, "abcdefg", "and is left out, the text terminated");

	textbuf_init(&tb, buf, sizeof(buf));
	ok(!textbuf_puts(&tb, "12345678") && tb.overflowed,
	    "a piece as long as the buffer does not fit (the NUL)");
	ok(!textbuf_puts(&tb, "x") && strcmp(buf, "") == 0,
	    "after a piece left out a short one is left out too");
	ok(!textbuf_put(&tb, "", 0), "even an empty one reports the overflow");

	for (size_t i = 0; i < sizeof(values) / sizeof(*values); i++) {
		snprintf(want, sizeof(want), "%llu", (unsigned long long)values[i]);
		if (strcmp(u64_text(values[i], 0, big, sizeof(big)), want) != 0) {
			tap_diag("%s: got %s", want, big);
			bad++;
		}
		snprintf(want, sizeof(want), "%05llu", (unsigned long long)values[i]);
		if (strcmp(u64_text(values[i], 5, big, sizeof(big)), want) != 0) {
			tap_diag("%s padded: got %s", want, big);
			bad++;
		}
	}
	is_int(bad, 0, "decimals as printf writes them, with and without padding");
	is_str(u64_text(7, 3, big, sizeof(big)), "007", "7 in three digits");
	is_str(u64_text(1234, 3, big, sizeof(big)), "1234",
	    "more digits than asked for are kept");
	is_str(u64_text(7, 99, big, sizeof(big)), "00000000000000000007",
	    "padding stops at 20 digits");
	is_str(u64_text(UINT64_MAX, 0, big, 21), "18446744073709551615",
	    "20 digits fit 21 bytes");
	is_str(u64_text(UINT64_MAX, 0, big, 20), "(did not fit)",
	    "and not 20");
	is_str(big, "", "which leave the text empty");

	{
		unsigned char all[256];
		char hex[513], printed[513];
		size_t at = 0;

		for (size_t i = 0; i < sizeof(all); i++) {
			all[i] = (unsigned char)(255 - i);
			at += (size_t)snprintf(printed + at, sizeof(printed) - at,
			    "%02x", all[i]);
		}
		textbuf_init(&tb, hex, sizeof(hex));
		ok(textbuf_put_hex(&tb, all, sizeof(all)) && tb.len == 512,
		    "256 bytes in hex fill 513 bytes");
		is_str(hex, printed, "every byte value as printf's %%02x writes it");
		textbuf_init(&tb, hex, 7);
		ok(textbuf_puts(&tb, "-") && !textbuf_put_hex(&tb, all, 3) &&
		    tb.overflowed && strcmp(hex, "-") == 0,
		    "3 bytes after one character do not fit 7 bytes, left out");
		textbuf_init(&tb, hex, 7);
		ok(textbuf_put_hex(&tb, "\x01\xab\xff", 3) &&
		    strcmp(hex, "01abff") == 0, "and fit 7 bytes alone");
		textbuf_init(&tb, hex, sizeof(hex));
		ok(!textbuf_put_hex(&tb, all, SIZE_MAX / 2 + 1) && tb.len == 0,
		    "a count whose digits overflow size_t is refused");
	}
	return tap_done();
}
