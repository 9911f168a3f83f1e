/* SPDX-License-Identifier: MIT */
/*
 * This file contains textbuf (see textbuf.h).
 */
#include "textbuf.h"

#include <string.h>

void
textbuf_init(struct textbuf *tb, char *buf, size_t size)
{
	tb->buf = buf;
	tb->size = size;
	tb->len = 0;
	tb->overflowed = false;
	buf[0] = '\0';
}

bool
textbuf_put(struct textbuf *tb, const char *s, size_t n)
{
	/* After one piece is left out, so are the rest: a text with a hole
	 * in it would read as whole. */
	if (tb->overflowed || n >= tb->size - tb->len) {
		tb->overflowed = true;
		return false;
	}
	memcpy(tb->buf + tb->len, s, n);
	tb->len += n;
	tb->buf[tb->len] = '\0';
	return true;
}

bool
textbuf_puts(struct textbuf *tb, const char *s)
{
	return textbuf_put(tb, s, strlen(s));
}

bool
textbuf_put_u64(struct textbuf *tb, uint64_t v, unsigned min_digits)
{
	char digits[20];	/* UINT64_MAX has 20 */
	size_t n = 0;

	if (min_digits > sizeof(digits))
		min_digits = sizeof(digits);
	do {
		digits[sizeof(digits) - ++n] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n < min_digits)
		digits[sizeof(digits) - ++n] = '0';
	return textbuf_put(tb, digits + sizeof(digits) - n, n);
}

bool
textbuf_put_hex(struct textbuf *tb, const void *bytes, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = bytes;
	char *out;

	/* Room for 2n digits before the NUL; n itself may be anything. */
	if (tb->overflowed || n > (tb->size - tb->len - 1) / 2) {
		tb->overflowed = true;
		return false;
	}
	out = tb->buf + tb->len;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	tb->len += 2 * n;
	tb->buf[tb->len] = '\0';
	return true;
}
