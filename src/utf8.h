/* SPDX-License-Identifier: MIT */
/*
 * This file contains the UTF-8 rules for text that crosses the API.
 *
 * JSON text is UTF-8 (RFC 8259), and json-c's own check lets overlong
 * forms, UTF-16 surrogates and code points above U+10FFFF through, which
 * would then be stored and echoed in error messages that no strict client
 * can decode.  Request bodies are checked here first, strictly (RFC 3629).
 * Text we cut to fit a buffer (error messages quoting a client's key) is
 * cut on a character boundary, so a valid input never yields an invalid
 * output.
 */
#ifndef EGW_UTF8_H
#define EGW_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/**
 * utf8_valid() - whether @len bytes at @s are well-formed UTF-8
 * @bad_at: when not NULL and the text is not valid, the offset of the
 *          first byte of the first ill-formed sequence
 *
 * NUL bytes count as valid here (U+0000); callers that refuse them check
 * separately.
 */
bool utf8_valid(const char *s, size_t len, size_t *bad_at);

/**
 * utf8_prefix_len() - the longest prefix of @s, at most @max bytes, that
 * ends on a character boundary
 * @s: valid UTF-8, NUL-terminated
 */
size_t utf8_prefix_len(const char *s, size_t max);

/**
 * utf8_trim_partial() - cut an incomplete character off the end of @s
 * (left there by a byte-counting truncation such as snprintf's)
 */
void utf8_trim_partial(char *s);

#endif
