/* SPDX-License-Identifier: MIT */
/*
 * This file contains textbuf, text appended into a caller's fixed buffer
 * without a format string: the response head, the access line's numbers
 * and the actor name of every request were three snprintf calls, each
 * parsing its format again, and together a tenth of a policy read's
 * instructions.  A piece that does not fit marks the buffer overflowed
 * and is left out, and so is every piece after it; the text stays
 * NUL-terminated throughout.  Bytes in hex (identifiers, digests) go
 * through here too, so there is one encoder.
 */
#ifndef EGW_TEXTBUF_H
#define EGW_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct textbuf {
	char *buf;
	size_t size;		/* of buf, including the NUL */
	size_t len;		/* characters written before the NUL */
	bool overflowed;	/* a piece did not fit and was left out */
};

/**
 * textbuf_init() - an empty text in @buf of @size bytes (size >= 1)
 */
void textbuf_init(struct textbuf *tb, char *buf, size_t size);

/**
 * textbuf_put() - append @n bytes of @s
 * Returns: false (and nothing appended) when they do not fit, or an
 * earlier piece did not.
 */
bool textbuf_put(struct textbuf *tb, const char *s, size_t n);

/**
 * textbuf_puts() - append the NUL-terminated @s
 * Returns: as textbuf_put().
 */
bool textbuf_puts(struct textbuf *tb, const char *s);

/**
 * textbuf_put_u64() - append @v in decimal, at least @min_digits digits
 * (zero-padded, at most 20; 0 or 1: as many as @v needs)
 * Returns: as textbuf_put().
 */
bool textbuf_put_u64(struct textbuf *tb, uint64_t v, unsigned min_digits);

/**
 * textbuf_put_hex() - append @n bytes as 2n lower-case hex digits
 * Returns: as textbuf_put().
 */
bool textbuf_put_hex(struct textbuf *tb, const void *bytes, size_t n);

#endif
