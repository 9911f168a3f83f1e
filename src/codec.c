/* SPDX-License-Identifier: MIT */
/*
 * This file contains the JSON codec for policies and error bodies.
 *
 * Parsing happens in two passes over the same error list: typing (here:
 * JSON types, lengths, address/port syntax, unknown fields) and semantics
 * (policy_validate: duplicates, overlaps, icmp with ports).  A semantic
 * problem at a path the typing pass already reported is not repeated, so a
 * client sees one reason per value.  Everything is collected before the
 * call fails.  Output is canonical so that equal policies serialise to
 * equal text, which the store relies on to detect no-op puts.  Pure code.
 */
#include "codec.h"
#include "err.h"
#include "utf8.h"

#include <json-c/json.h>
#include <json-c/printbuf.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Fields a client may send but which only the server sets. */
static const char *const codec_ignored_keys[] = {
	"id", "mark", "generation", "applied_generation", "created_at",
	"updated_at", "completed_at", "status", "apply_status", "apply_error",
	NULL
};

static const char *
json_type_text(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
		return "a non-integer number";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "unknown";
}

/* JSON pointer escaping of one key (RFC 6901), truncated to fit on a
 * character boundary. */
static void
pointer_key(char *out, size_t size, const char *key)
{
	size_t o = 0;

	for (const char *k = key; *k != '\0' && o + 3 < size; k++) {
		if (*k == '~') {
			out[o++] = '~';
			out[o++] = '0';
		} else if (*k == '/') {
			out[o++] = '~';
			out[o++] = '1';
		} else {
			out[o++] = *k;
		}
	}
	out[o] = '\0';
	utf8_trim_partial(out);
}

/*
 * json-c 0.16 accepts, even with JSON_TOKENER_STRICT, text that RFC 8259
 * refuses: raw control characters inside strings, numbers such as "5.",
 * "1.e3", "-.5", "00" and "-01", and NaN and Infinity.  It keeps the last of
 * two equal keys without a word.  And its depth limit counts the innermost
 * scalar as a level, so whether a document is too deep would depend on
 * what its innermost value is.  Each would let a document mean one thing
 * to us and another to a reviewer or a proxy that reads it, so the parsed
 * text is walked once more, and this walk is what holds the body to RFC
 * 8259 and to CODEC_MAX_DEPTH containers.  The text is known to be what
 * json-c accepts here, which keeps the walk to strings, bare tokens,
 * brackets and commas: every byte of a string is a character or part of a
 * valid escape, and bare tokens are delimited.
 */
struct dup_frame {
	bool is_object;
	size_t index;			/* arrays: current element */
	struct json_object *keys;	/* objects: keys seen, as a set */
	char key[64];			/* objects: current key, for the path */
};

static void
dup_path(const struct dup_frame *stack, size_t depth, char *path, size_t size)
{
	size_t n = 0;

	path[0] = '\0';
	for (size_t f = 0; f + 1 < depth && n < size; f++) {
		int w = stack[f].is_object ?
		    snprintf(path + n, size - n, "/%s", stack[f].key) :
		    snprintf(path + n, size - n, "/%zu", stack[f].index);

		if (w < 0)
			break;
		n += (size_t)w;
	}
}

static struct json_object *
parse_string_token(const char *text, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *v;

	if (tok == NULL)
		return NULL;
	v = json_tokener_parse_ex(tok, text, (int)len);
	json_tokener_free(tok);
	return v;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * What is wrong with the number token @s (@n bytes) by RFC 8259 section 6,
 * -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?, or NULL when
 * nothing is.
 */
static const char *
number_problem(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && s[i] == '-')
		i++;
	for (d = i; i < n && is_digit(s[i]); i++)
		;
	if (i == d)
		return "a digit must come before the decimal point";
	if (i - d > 1 && s[d] == '0')
		return "leading zeros are not allowed";
	if (i < n && s[i] == '.') {
		for (d = ++i; i < n && is_digit(s[i]); i++)
			;
		if (i == d)
			return "a digit must follow the decimal point";
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < n && is_digit(s[i]); i++)
			;
		if (i == d)
			return "the exponent needs digits";
	}
	return i == n ? NULL : "not a number";
}

/* A bare token (true, false, null or a number) at @at; 0 or
 * EGW_E_BADREQUEST with the problem recorded. */
static int
check_bare_token(const char *s, size_t n, size_t at, struct policy_errors *errs)
{
	const char *why;

	if ((n == 4 && memcmp(s, "true", 4) == 0) ||
	    (n == 5 && memcmp(s, "false", 5) == 0) ||
	    (n == 4 && memcmp(s, "null", 4) == 0))
		return 0;
	if ((n == 3 && memcmp(s, "NaN", 3) == 0) ||
	    (n == 8 && memcmp(s, "Infinity", 8) == 0) ||
	    (n == 9 && memcmp(s, "-Infinity", 9) == 0)) {
		policy_errors_add(errs, "", "malformed JSON at byte %zu: NaN and"
		    " Infinity are not JSON numbers", at);
		return EGW_E_BADREQUEST;
	}
	if ((why = number_problem(s, n)) == NULL)
		return 0;
	policy_errors_add(errs, "", "malformed JSON at byte %zu: %.*s%s is not"
	    " a JSON number (%s)", at, (int)(n < 24 ? n : 24), s,
	    n > 24 ? "..." : "", why);
	return EGW_E_BADREQUEST;
}

/* A raw control character in the string that starts at @i; its offset, or
 * 0 when there is none.  *end gets the offset of the closing quote. */
static size_t
string_control_char(const char *body, size_t len, size_t i, size_t *end)
{
	size_t j = i + 1, bad = 0;

	/* Bytes of multi-byte UTF-8 characters are all 0x80 and above, so
	 * none is taken for a control character.  What follows a backslash
	 * is one of "\/bfnrtu (json-c checked): skipped with it, so that \"
	 * does not end the string. */
	while (j < len && body[j] != '"') {
		if (bad == 0 && (unsigned char)body[j] < 0x20)
			bad = j;
		j += body[j] == '\\' ? 2 : 1;
	}
	*end = j;
	return bad;
}

static int
check_text(const char *body, size_t len, struct policy_errors *errs)
{
	struct dup_frame stack[CODEC_MAX_DEPTH];
	char plain[64];		/* a key as long as any field's name, and more */
	size_t depth = 0;
	int rc = 0;

	for (size_t i = 0; i < len && rc == 0; i++) {
		char c = body[i];

		if (c == '"') {
			size_t j, k, bad = string_control_char(body, len, i, &j);

			if (bad != 0) {
				policy_errors_add(errs, "", "malformed JSON at"
				    " byte %zu: a raw control character"
				    " (0x%02x) in a string; escape it (\\n,"
				    " \\t, \\u00XX)", bad,
				    (unsigned)(unsigned char)body[bad]);
				rc = EGW_E_BADREQUEST;
				break;
			}
			for (k = j + 1; k < len && strchr(" \t\r\n", body[k]); k++)
				;
			if (depth > 0 && stack[depth - 1].is_object && k < len &&
			    body[k] == ':') {
				struct dup_frame *top = &stack[depth - 1];
				struct json_object *name = NULL;
				const char *key = plain;
				size_t raw_len = j - i - 1;
				char path[128];

				/* A key without a backslash is its own text
				 * (control characters were refused above, and
				 * the body's UTF-8 is checked whole): only an
				 * escaped one needs json-c's decoding. */
				if (raw_len < sizeof(plain) &&
				    memchr(body + i + 1, '\\', raw_len) == NULL) {
					memcpy(plain, body + i + 1, raw_len);
					plain[raw_len] = '\0';
				} else {
					name = parse_string_token(body + i, j - i + 1);
					key = name ? json_object_get_string(name) : "";
				}
				if (name != NULL && (size_t)json_object_get_string_len(name) !=
				    strlen(key)) {
					/* json-c keeps keys as C strings: "a\u0000b"
					 * would be read as the known field "a". */
					dup_path(stack, depth, path, sizeof(path));
					policy_errors_add(errs, path,
					    "a key contains \\u0000 (NUL): no field has such a name");
					rc = EGW_E_BADREQUEST;
				} else if (json_object_object_get_ex(top->keys, key, NULL)) {
					dup_path(stack, depth, path, sizeof(path));
					policy_errors_add(errs, path,
					    "duplicate key \"%.*s\": each key may appear once",
					    (int)utf8_prefix_len(key, 60), key);
					rc = EGW_E_BADREQUEST;
				} else {
					json_object_object_add(top->keys, key, NULL);
					pointer_key(top->key, sizeof(top->key), key);
				}
				json_object_put(name);
			}
			i = j;
		} else if (c == '{' || c == '[') {
			/* The tokener allows one level more than this, for
			 * the scalar inside the innermost container. */
			if (depth == CODEC_MAX_DEPTH) {
				policy_errors_add(errs, "", "the JSON is"
				    " nested deeper than %d levels (objects and"
				    " arrays)", CODEC_MAX_DEPTH);
				rc = EGW_E_BADREQUEST;
				break;
			}
			stack[depth].is_object = c == '{';
			stack[depth].index = 0;
			stack[depth].key[0] = '\0';
			stack[depth].keys = c == '{' ? json_object_new_object() : NULL;
			depth++;
		} else if (c == '\'') {
			/* json-c takes 'single-quoted' strings even when
			 * strict; JSON has none (RFC 8259) */
			policy_errors_add(errs, "", "malformed JSON at byte %zu: "
			    "strings take double quotes", i);
			rc = EGW_E_BADREQUEST;
			break;
		} else if ((c == '}' || c == ']') && depth > 0) {
			json_object_put(stack[--depth].keys);
		} else if (c == ',' && depth > 0 && !stack[depth - 1].is_object) {
			stack[depth - 1].index++;
		} else if (c == '-' || is_digit(c) || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z')) {
			size_t j = i;

			while (j < len && (is_digit(body[j]) ||
			    (body[j] >= 'a' && body[j] <= 'z') ||
			    (body[j] >= 'A' && body[j] <= 'Z') ||
			    body[j] == '-' || body[j] == '+' || body[j] == '.'))
				j++;
			rc = check_bare_token(body + i, j - i, i, errs);
			i = j - 1;
		}
	}
	while (depth > 0)
		json_object_put(stack[--depth].keys);
	return rc;
}

/*
 * check_text() has refused NaN and Infinity, so a double that is not finite
 * here is a number beyond a double's range, such as 1e400: valid JSON that
 * json-c reads as an infinity.  No field takes one, and an infinity in an
 * ignored field would be stored as text we cannot print back.
 */
static bool
has_non_finite_number(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_double:
		return !isfinite(json_object_get_double(v));
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			if (has_non_finite_number(json_object_array_get_idx(v, i)))
				return true;
		}
		return false;
	case json_type_object: {
		json_object_object_foreach(v, key, val) {
			(void)key;
			if (has_non_finite_number(val))
				return true;
		}
		return false;
	}
	default:
		return false;
	}
}

int
codec_parse_body(const char *body, size_t len, struct json_object **out,
    struct policy_errors *errs)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end, bad_at = 0;

	*out = NULL;
	if (body == NULL || len == 0) {
		policy_errors_add(errs, "", "the body is empty; send a JSON object");
		return EGW_E_BADREQUEST;
	}
	if (memchr(body, '\0', len) != NULL) {
		policy_errors_add(errs, "", "the body contains a NUL byte");
		return EGW_E_BADREQUEST;
	}
	if (!utf8_valid(body, len, &bad_at)) {
		policy_errors_add(errs, "",
		    "the body is not valid UTF-8 at byte %zu (JSON text is UTF-8)", bad_at);
		return EGW_E_BADREQUEST;
	}
	if (len > (size_t)INT32_MAX) {
		policy_errors_add(errs, "", "the body is too large");
		return EGW_E_BADREQUEST;
	}
	/* json-c counts the scalar inside the innermost container as a level
	 * of its own; check_text() holds the containers to CODEC_MAX_DEPTH. */
	tok = json_tokener_new_ex(CODEC_MAX_DEPTH + 1);
	if (tok == NULL)
		return EGW_E_NOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* A number or literal at the very end ("5", "null") is whole
		 * only once json-c sees what follows it: the whitespace the
		 * client left out.  A container still open stays incomplete. */
		obj = json_tokener_parse_ex(tok, " ", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	json_tokener_free(tok);
	if (jerr == json_tokener_continue) {
		json_object_put(obj);
		policy_errors_add(errs, "", "the JSON document is incomplete");
		return EGW_E_BADREQUEST;
	}
	if (jerr != json_tokener_success) {
		json_object_put(obj);
		if (jerr == json_tokener_error_depth)
			policy_errors_add(errs, "", "the JSON is nested"
			    " deeper than %d levels (objects and arrays)",
			    CODEC_MAX_DEPTH);
		else
			policy_errors_add(errs, "", "malformed JSON at byte %zu: %s",
			    end, json_tokener_error_desc(jerr));
		return EGW_E_BADREQUEST;
	}
	for (size_t i = end; i < len; i++) {
		if (body[i] != ' ' && body[i] != '\t' && body[i] != '\n' &&
		    body[i] != '\r') {
			json_object_put(obj);
			policy_errors_add(errs, "",
			    "unexpected data after the JSON value at byte %zu", i);
			return EGW_E_BADREQUEST;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		policy_errors_add(errs, "", "the body must be a JSON object, not %s",
		    json_type_text(obj));
		json_object_put(obj);
		return EGW_E_BADREQUEST;
	}
	if (check_text(body, len, errs) != 0) {
		json_object_put(obj);
		return EGW_E_BADREQUEST;
	}
	if (has_non_finite_number(obj)) {
		json_object_put(obj);
		policy_errors_add(errs, "", "a number is out of range: JSON"
		    " numbers here must fit a double (about 1.8e308)");
		return EGW_E_BADREQUEST;
	}
	*out = obj;
	return 0;
}

int
codec_check_no_fields(const char *body, size_t len, struct policy_errors *errs)
{
	struct json_object *obj;
	char key[64], path[sizeof(errs->items[0].path)];
	int rc = codec_parse_body(body, len, &obj, errs);

	if (rc != 0)
		return rc;
	json_object_object_foreach(obj, k, v) {
		(void)v;
		pointer_key(key, sizeof(key), k);
		snprintf(path, sizeof(path), "/%s", key);
		policy_errors_add(errs, path, "unknown field: this request takes"
		    " no fields (send no body, or {})");
		rc = EGW_E_INVALID;
	}
	json_object_put(obj);
	return rc;
}

/*
 * A string value copied into out[size]; false (and an error recorded) when
 * it is not a string, holds a NUL or is longer than max bytes.
 */
static bool
get_string(struct json_object *v, const char *path, size_t max, char *out,
    size_t size, struct policy_errors *errs)
{
	const char *s;
	size_t len;

	if (!json_object_is_type(v, json_type_string)) {
		policy_errors_add(errs, path, "must be a string, not %s",
		    json_type_text(v));
		return false;
	}
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (strlen(s) != len) {
		policy_errors_add(errs, path, "must not contain a NUL character");
		return false;
	}
	if (len > max || len >= size) {
		policy_errors_add(errs, path, "longer than %zu bytes", max);
		return false;
	}
	memcpy(out, s, len + 1);
	return true;
}

/* Whether [s, end) is not empty and made only of bytes in @set. */
static bool
span_of(const char *s, const char *end, const char *set)
{
	if (s == end)
		return false;
	for (; s < end; s++)
		if (strchr(set, *s) == NULL)
			return false;
	return true;
}

/*
 * Why @s looks like something a client pasted in place of an address: text
 * with whitespace, a URL, an address or a hostname with a port, a hostname.
 * NULL when it looks like none of these and the address parser's reason is
 * the better one.  *port_hint is set when the reason should go on to say
 * where the port belongs.  Checked before parsing because a colon would
 * send "localhost:8080", "10.0.0.1:443" or "http://10.0.0.1" to the IPv6
 * parser, whose complaint misleads.  A text with a single colon is never
 * an IPv6 address ("::" has two), so it is read as "something:port" when
 * what follows the colon is digits; "cafe:443" stays with the IPv6 parser,
 * as it may be a mistyped address.
 */
static const char *
address_form_problem(const char *s, bool single_addr, bool *port_hint)
{
	static const char ws[] = " \t\r\n\v\f";
	const char *colon = strchr(s, ':'), *dot = strchr(s, '.');
	const char *end = s + strlen(s);

	*port_hint = false;
	if (s < end && (strchr(ws, s[0]) != NULL || strchr(ws, end[-1]) != NULL))
		return "surrounding whitespace: send the text alone";
	if (strpbrk(s, ws) != NULL)
		return "contains whitespace";
	*port_hint = true;
	if (strstr(s, "://") != NULL)
		return "a URL: give the address alone (hostnames are not"
		    " supported yet)";
	if (s[0] == '[' && strstr(s, "]:") != NULL)
		return "an address with a port: give the address alone,"
		    " without brackets";
	if (colon != NULL && strchr(colon + 1, ':') == NULL &&
	    span_of(colon + 1, end, "0123456789")) {
		if (span_of(s, colon, "0123456789./"))
			return "an address with a port: give the address alone";
		if ((dot != NULL && dot < colon) ||
		    !span_of(s, colon, "0123456789abcdefABCDEF"))
			return single_addr ? "a hostname with a port: hostnames"
			    " are not supported yet; give an address" : "a"
			    " hostname with a port: hostnames are not supported"
			    " yet; give an address or prefix";
	}
	*port_hint = false;
	if (s[0] == '[')
		return "an IPv6 address is written without brackets";
	if (colon == NULL && strpbrk(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != NULL)
		return single_addr ? "hostnames are not supported yet; give an"
		    " address" : "hostnames are not supported yet; give an"
		    " address or prefix";
	return NULL;
}

/* One address or prefix; single_addr refuses "/len". */
static bool
get_prefix(struct json_object *v, const char *path, bool single_addr,
    struct ip_prefix *out, struct policy_errors *errs)
{
	char text[NETADDR_PREFIX_STRLEN + 16];
	const char *why = NULL;
	struct ip_prefix v4;
	bool port_hint;

	if (!json_object_is_type(v, json_type_string)) {
		policy_errors_add(errs, path,
		    "must be a string holding an address%s, not %s",
		    single_addr ? "" : " or prefix", json_type_text(v));
		return false;
	}
	if (!get_string(v, path, sizeof(text) - 1, text, sizeof(text), NULL)) {
		policy_errors_add(errs, path, "not an IPv4 or IPv6 address%s",
		    single_addr ? "" : " or prefix");
		return false;
	}
	why = address_form_problem(text, single_addr, &port_hint);
	if (why != NULL) {
		policy_errors_add(errs, path, "%s%s", why, !port_hint ? ""
		    : single_addr ? " (resolvers are reached on port 53)"
		    : "; a port goes in allowed_ports or a custom_rules"
		    " entry's ports");
		return false;
	}
	if (single_addr && strchr(text, '/') != NULL) {
		policy_errors_add(errs, path,
		    "must be a single address, not a prefix");
		return false;
	}
	if ((single_addr ? netaddr_parse_addr(text, out, &why)
	    : netaddr_parse_prefix(text, out, &why)) != 0) {
		policy_errors_add(errs, path, "%s", why);
		return false;
	}
	if (netaddr_embeds_ipv4(out, &v4)) {
		/* Accepted by nft, shown as applied, and matching nothing. */
		char text4[NETADDR_PREFIX_STRLEN];

		policy_errors_add(errs, path, "an IPv6 form of an IPv4 %s never"
		    " matches IPv4 traffic; write %s", out->len == 128 ? "address"
		    : "prefix", netaddr_format_prefix(&v4, text4, false));
		return false;
	}
	return true;
}

/* One port list entry: an integer, or "443" / "8000-8100". */
static bool
get_port(struct json_object *v, const char *path, struct port_range *out,
    struct policy_errors *errs)
{
	const char *why = NULL;
	char text[16];
	int64_t n;

	switch (json_object_get_type(v)) {
	case json_type_int:
		n = json_object_get_int64(v);
		if (n < 1 || n > 65535) {
			policy_errors_add(errs, path, "port must be 1-65535");
			return false;
		}
		out->lo = out->hi = (uint16_t)n;
		return true;
	case json_type_string:
		if (!get_string(v, path, sizeof(text) - 1, text, sizeof(text),
		    NULL) || netaddr_parse_port_range(text, out, &why) != 0) {
			policy_errors_add(errs, path, "%s", why ? why
			    : "port range must be \"lo-hi\" with integers 1-65535");
			return false;
		}
		return true;
	case json_type_double:
		policy_errors_add(errs, path,
		    "must be an integer 1-65535 or a \"lo-hi\" string, not a "
		    "non-integer number");
		return false;
	default:
		policy_errors_add(errs, path,
		    "must be an integer 1-65535 or a \"lo-hi\" string, not %s",
		    json_type_text(v));
		return false;
	}
}

/* An array value (null counts as absent); false when the type is wrong. */
static bool
get_array(struct json_object *v, const char *path, size_t max, size_t *n,
    struct policy_errors *errs)
{
	*n = 0;
	if (v == NULL)
		return true;
	if (!json_object_is_type(v, json_type_array)) {
		policy_errors_add(errs, path, "must be an array, not %s",
		    json_type_text(v));
		return false;
	}
	*n = json_object_array_length(v);
	if (*n > max) {
		policy_errors_add(errs, path, "at most %zu entries (got %zu)", max,
		    *n);
		return false;
	}
	return true;
}

static size_t
get_prefix_list(struct json_object *v, const char *name, bool single_addr,
    size_t max, struct ip_prefix *out, struct policy_errors *errs)
{
	char path[128];
	size_t n, k = 0;

	snprintf(path, sizeof(path), "/%s", name);
	if (!get_array(v, path, max, &n, errs))
		return 0;
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/%s/%zu", name, i);
		if (get_prefix(json_object_array_get_idx(v, i), path, single_addr,
		    &out[k], errs))
			k++;
	}
	return k;
}

static size_t
get_port_list(struct json_object *v, const char *base, size_t max,
    struct port_range *out, struct policy_errors *errs)
{
	char path[128];
	size_t n, k = 0;

	if (!get_array(v, base, max, &n, errs))
		return 0;
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%zu", base, i);
		if (get_port(json_object_array_get_idx(v, i), path, &out[k], errs))
			k++;
	}
	return k;
}

static bool
get_rule(struct json_object *v, size_t idx, struct policy_rule *r,
    struct policy_errors *errs)
{
	char path[128], base[40], key[64], proto[16];
	size_t before = errs->count + errs->dropped;
	bool have_proto = false;

	snprintf(base, sizeof(base), "/custom_rules/%zu", idx);
	memset(r, 0, sizeof(*r));
	if (json_object_is_type(v, json_type_string)) {
		policy_errors_add(errs, base,
		    "raw rule text is not accepted; give an object such as "
		    "{\"proto\":\"tcp\",\"dest\":\"192.0.2.0/24\","
		    "\"ports\":[443,\"8000-8100\"]}");
		return false;
	}
	if (!json_object_is_type(v, json_type_object)) {
		policy_errors_add(errs, base,
		    "must be an object {\"proto\",\"dest\",\"ports\"}, not %s",
		    json_type_text(v));
		return false;
	}
	json_object_object_foreach(v, k, val) {
		if (strcmp(k, "proto") == 0) {
			snprintf(path, sizeof(path), "%s/proto", base);
			have_proto = true;
			if (!json_object_is_type(val, json_type_string) ||
			    !get_string(val, path, sizeof(proto) - 1, proto,
			    sizeof(proto), NULL) ||
			    netaddr_parse_proto(proto, &r->proto) != 0)
				policy_errors_add(errs, path,
				    "must be \"tcp\", \"udp\", \"icmp\" or \"any\"");
		} else if (strcmp(k, "dest") == 0) {
			snprintf(path, sizeof(path), "%s/dest", base);
			if (val != NULL && get_prefix(val, path, false, &r->dest,
			    errs))
				r->has_dest = true;
		} else if (strcmp(k, "ports") == 0) {
			snprintf(path, sizeof(path), "%s/ports", base);
			r->n_ports = get_port_list(val, path,
			    POLICY_RULE_MAX_PORTS, r->ports, errs);
		} else {
			pointer_key(key, sizeof(key), k);
			snprintf(path, sizeof(path), "%s/%s", base, key);
			policy_errors_add(errs, path,
			    "unknown field (allowed: proto, dest, ports)");
		}
	}
	if (!have_proto) {
		snprintf(path, sizeof(path), "%s/proto", base);
		policy_errors_add(errs, path,
		    "required: \"tcp\", \"udp\", \"icmp\" or \"any\"");
	}
	return errs->count + errs->dropped == before;
}

static bool
key_in(const char *key, const char *const *list)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(key, *list) == 0)
			return true;
	return false;
}

/*
 * Whether the typing pass already reported a problem in the same top-level
 * field as @path.  Entries that failed typing are left out of the typed
 * lists, so a semantic index there would not match the client's index; the
 * client fixes the typed problem first and then sees the rest.
 */
static bool
field_reported(const struct policy_errors *errs, size_t upto, const char *path)
{
	const char *end = strchr(path + 1, '/');
	size_t len = end != NULL ? (size_t)(end - path) : strlen(path);

	for (size_t i = 0; i < upto; i++) {
		const char *q = errs->items[i].path;

		if (strncmp(q, path, len) == 0 && (q[len] == '\0' || q[len] == '/'))
			return true;
	}
	return false;
}

static void
parse_field(const char *k, struct json_object *v, struct policy *out,
    const char *const *extra_keys, struct policy_errors *errs)
{
	char path[128], key[96], text[16];
	size_t n;

	if (strcmp(k, "scenario_id") == 0) {
		if (v == NULL)
			policy_errors_add(errs, "/scenario_id",
			    "required: a string, not null");
		else
			get_string(v, "/scenario_id", POLICY_SCENARIO_ID_MAX,
			    out->scenario_id, sizeof(out->scenario_id), errs);
	} else if (strcmp(k, "network_id") == 0) {
		if (v != NULL)
			get_string(v, "/network_id", POLICY_NETWORK_ID_MAX,
			    out->network_id, sizeof(out->network_id), errs);
	} else if (strcmp(k, "profile") == 0) {
		if (v != NULL)
			get_string(v, "/profile", POLICY_PROFILE_MAX,
			    out->profile, sizeof(out->profile), errs);
	} else if (strcmp(k, "mode") == 0) {
		if (v == NULL)
			return;
		if (!json_object_is_type(v, json_type_string) ||
		    !get_string(v, "/mode", sizeof(text) - 1, text, sizeof(text),
		    NULL) || policy_mode_parse(text, &out->mode) != 0)
			policy_errors_add(errs, "/mode",
			    "must be \"enforce\" or \"audit\"");
	} else if (strcmp(k, "enabled") == 0) {
		if (v == NULL)
			return;
		if (!json_object_is_type(v, json_type_boolean))
			policy_errors_add(errs, "/enabled",
			    "must be true or false, not %s", json_type_text(v));
		else
			out->enabled = json_object_get_boolean(v);
	} else if (strcmp(k, "revision") == 0) {
		if (v == NULL)
			return;
		if (!json_object_is_type(v, json_type_int))
			policy_errors_add(errs, "/revision",
			    "must be an integer, not %s", json_type_text(v));
		else if (json_object_get_int64(v) < 0)
			policy_errors_add(errs, "/revision", "must be >= 0");
		/* json-c clamps a larger integer to INT64_MAX, which no
		 * stored revision reaches: out of range, not a mismatch. */
		else if (json_object_get_int64(v) == INT64_MAX)
			policy_errors_add(errs, "/revision", "out of range");
		else {
			out->revision = json_object_get_int64(v);
			out->revision_given = true;
		}
	} else if (strcmp(k, "sources") == 0) {
		out->n_sources = get_prefix_list(v, "sources", false,
		    POLICY_MAX_SOURCES, out->sources, errs);
	} else if (strcmp(k, "dns_servers") == 0) {
		out->dns_servers_set = v != NULL;
		out->n_dns_servers = get_prefix_list(v, "dns_servers", true,
		    POLICY_MAX_DNS, out->dns_servers, errs);
	} else if (strcmp(k, "allowed_hosts") == 0) {
		out->n_hosts = get_prefix_list(v, "allowed_hosts", false,
		    POLICY_MAX_HOSTS, out->hosts, errs);
	} else if (strcmp(k, "allowed_ports") == 0) {
		out->n_ports = get_port_list(v, "/allowed_ports",
		    POLICY_MAX_PORTS, out->ports, errs);
	} else if (strcmp(k, "interfaces") == 0) {
		if (!get_array(v, "/interfaces", POLICY_MAX_INTERFACES, &n, errs))
			return;
		out->n_interfaces = 0;
		for (size_t i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "/interfaces/%zu", i);
			if (get_string(json_object_array_get_idx(v, i), path,
			    NETADDR_IFNAMSIZ - 1, out->interfaces[out->n_interfaces],
			    NETADDR_IFNAMSIZ, errs))
				out->n_interfaces++;
		}
	} else if (strcmp(k, "custom_rules") == 0) {
		if (!get_array(v, "/custom_rules", POLICY_MAX_RULES, &n, errs))
			return;
		out->n_rules = 0;
		for (size_t i = 0; i < n; i++)
			if (get_rule(json_object_array_get_idx(v, i), i,
			    &out->rules[out->n_rules], errs))
				out->n_rules++;
	} else if (!key_in(k, codec_ignored_keys) && !key_in(k, extra_keys)) {
		pointer_key(key, sizeof(key), k);
		snprintf(path, sizeof(path), "/%s", key);
		policy_errors_add(errs, path, "unknown field");
	}
}

int
codec_policy_from_object(struct json_object *obj,
    const char *const *extra_keys, struct policy *out,
    struct policy_errors *errs)
{
	struct policy_errors *sem;
	size_t typed;

	policy_init(out);
	policy_errors_init(errs);
	if (!json_object_is_type(obj, json_type_object)) {
		policy_errors_add(errs, "", "must be a JSON object");
		return EGW_E_BADREQUEST;
	}
	{
		json_object_object_foreach(obj, k, v)
			parse_field(k, v, out, extra_keys, errs);
	}
	typed = errs->count;
	sem = malloc(sizeof(*sem));
	if (sem == NULL)
		return EGW_E_NOMEM;
	policy_errors_init(sem);
	policy_validate(out, sem);
	for (size_t i = 0; i < sem->count; i++) {
		if (field_reported(errs, typed, sem->items[i].path))
			continue;
		policy_errors_add(errs, sem->items[i].path, "%s",
		    sem->items[i].reason);
	}
	errs->dropped += sem->dropped;
	free(sem);
	return errs->count + errs->dropped == 0 ? 0 : EGW_E_INVALID;
}

int
codec_policy_from_json(const char *body, size_t len, struct policy *out,
    struct policy_errors *errs)
{
	struct json_object *obj;
	int rc;

	policy_init(out);
	policy_errors_init(errs);
	if ((rc = codec_parse_body(body, len, &obj, errs)) != 0)
		return rc;
	rc = codec_policy_from_object(obj, NULL, out, errs);
	json_object_put(obj);
	return rc;
}

struct json_object *
codec_prefix_to_json(const struct ip_prefix *p)
{
	char buf[NETADDR_PREFIX_STRLEN];

	return json_object_new_string(netaddr_format_prefix(p, buf, false));
}

struct json_object *
codec_ms_to_json(double ms)
{
	char buf[40];

	/* A NaN or infinity is no duration; beyond 1e15 ms (31,000 years)
	 * %.3f would not fit, and the digits json-c prints are real ones. */
	if (!isfinite(ms))
		ms = 0;
	if (fabs(ms) >= 1e15)
		return json_object_new_double(ms);
	snprintf(buf, sizeof(buf), "%.3f", ms);
	return json_object_new_double_s(ms, buf);
}

struct json_object *
codec_port_range_to_json(const struct port_range *r)
{
	char buf[16];

	if (r->lo == r->hi)
		return json_object_new_int(r->lo);
	snprintf(buf, sizeof(buf), "%u-%u", (unsigned)r->lo, (unsigned)r->hi);
	return json_object_new_string(buf);
}

/* Appends; a NULL value means out of memory, reported through *oom. */
static void
arr_add(struct json_object *arr, struct json_object *v, bool *oom)
{
	if (v == NULL || json_object_array_add(arr, v) != 0) {
		json_object_put(v);
		*oom = true;
	}
}

/* @key is a string literal, added once per object: json-c may skip the
 * copy of the key and the search for an existing one. */
static void
obj_add(struct json_object *obj, const char *key, struct json_object *v,
    bool allow_null, bool *oom)
{
	if ((v == NULL && !allow_null) ||
	    json_object_object_add_ex(obj, key, v, JSON_C_OBJECT_ADD_KEY_IS_NEW |
	    JSON_C_OBJECT_KEY_IS_CONSTANT) != 0) {
		json_object_put(v);
		*oom = true;
	}
}

static struct json_object *
prefix_array(const struct ip_prefix *v, size_t n, bool *oom)
{
	struct json_object *arr = json_object_new_array_ext((int)n);

	if (arr == NULL) {
		*oom = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		arr_add(arr, codec_prefix_to_json(&v[i]), oom);
	return arr;
}

static struct json_object *
port_array(const struct port_range *v, size_t n, bool *oom)
{
	struct json_object *arr = json_object_new_array_ext((int)n);

	if (arr == NULL) {
		*oom = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		arr_add(arr, codec_port_range_to_json(&v[i]), oom);
	return arr;
}

static size_t
clamp(size_t n, size_t max)
{
	return n < max ? n : max;
}

static void
add_input_fields(struct json_object *o, const struct policy *p, bool *oom)
{
	struct json_object *arr, *rule;

	obj_add(o, "scenario_id", json_object_new_string(p->scenario_id), false, oom);
	obj_add(o, "network_id", json_object_new_string(p->network_id), false, oom);
	obj_add(o, "profile", json_object_new_string(p->profile), false, oom);
	obj_add(o, "mode", json_object_new_string(policy_mode_name(p->mode)),
	    false, oom);
	obj_add(o, "enabled", json_object_new_boolean(p->enabled), false, oom);
	obj_add(o, "sources", prefix_array(p->sources,
	    clamp(p->n_sources, POLICY_MAX_SOURCES), oom), false, oom);
	arr = json_object_new_array();
	for (size_t i = 0; arr != NULL &&
	    i < clamp(p->n_interfaces, POLICY_MAX_INTERFACES); i++)
		arr_add(arr, json_object_new_string(p->interfaces[i]), oom);
	obj_add(o, "interfaces", arr, false, oom);
	obj_add(o, "dns_servers", p->dns_servers_set
	    ? prefix_array(p->dns_servers, clamp(p->n_dns_servers,
	    POLICY_MAX_DNS), oom) : NULL, true, oom);
	obj_add(o, "allowed_hosts", prefix_array(p->hosts,
	    clamp(p->n_hosts, POLICY_MAX_HOSTS), oom), false, oom);
	obj_add(o, "allowed_ports", port_array(p->ports,
	    clamp(p->n_ports, POLICY_MAX_PORTS), oom), false, oom);
	arr = json_object_new_array();
	for (size_t i = 0; arr != NULL &&
	    i < clamp(p->n_rules, POLICY_MAX_RULES); i++) {
		const struct policy_rule *r = &p->rules[i];

		rule = json_object_new_object();
		if (rule == NULL) {
			*oom = true;
			break;
		}
		obj_add(rule, "proto", json_object_new_string(
		    netaddr_proto_name(r->proto)), false, oom);
		obj_add(rule, "dest", r->has_dest ? codec_prefix_to_json(&r->dest)
		    : NULL, !r->has_dest, oom);
		obj_add(rule, "ports", port_array(r->ports,
		    clamp(r->n_ports, POLICY_RULE_MAX_PORTS), oom), false, oom);
		arr_add(arr, rule, oom);
	}
	obj_add(o, "custom_rules", arr, false, oom);
}

struct json_object *
codec_policy_input_to_json(const struct policy *p)
{
	struct json_object *o = json_object_new_object();
	bool oom = false;

	if (o == NULL)
		return NULL;
	add_input_fields(o, p, &oom);
	if (oom) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

char *
codec_policy_input_string(const struct policy *p)
{
	struct json_object *o = codec_policy_input_to_json(p);
	const char *s;
	char *copy = NULL;

	if (o == NULL)
		return NULL;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s != NULL)
		copy = strdup(s);
	json_object_put(o);
	return copy;
}

static struct json_object *
string_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? json_object_new_string(s) : NULL;
}

/* "status": the applier's verdict on the policy's generation. */
static struct json_object *
status_to_json(const struct policy *p, bool *oom)
{
	struct json_object *status = json_object_new_object();

	if (status == NULL)
		return NULL;
	obj_add(status, "apply", json_object_new_string(
	    policy_apply_status_name(p->apply_status)), false, oom);
	obj_add(status, "error", string_or_null(p->apply_error), true, oom);
	obj_add(status, "applied_generation",
	    json_object_new_int64(p->applied_generation), false, oom);
	return status;
}

struct json_object *
codec_policy_to_json(const struct policy *p)
{
	struct json_object *o = json_object_new_object();
	bool oom = false;

	if (o == NULL)
		return NULL;
	add_input_fields(o, p, &oom);
	obj_add(o, "mark", json_object_new_int64(p->id), false, &oom);
	obj_add(o, "revision", json_object_new_int64(p->revision), false, &oom);
	obj_add(o, "generation", json_object_new_int64(p->generation), false, &oom);
	obj_add(o, "created_at", string_or_null(p->created_at), true, &oom);
	obj_add(o, "updated_at", string_or_null(p->updated_at), true, &oom);
	obj_add(o, "completed_at", string_or_null(p->completed_at), true, &oom);
	obj_add(o, "status", status_to_json(p, &oom), false, &oom);
	if (oom) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

struct json_object *
codec_policy_receipt_to_json(const struct policy *p)
{
	struct json_object *o = json_object_new_object();
	bool oom = false;

	if (o == NULL)
		return NULL;
	obj_add(o, "scenario_id", json_object_new_string(p->scenario_id),
	    false, &oom);
	obj_add(o, "revision", json_object_new_int64(p->revision), false, &oom);
	obj_add(o, "generation", json_object_new_int64(p->generation), false,
	    &oom);
	obj_add(o, "updated_at", string_or_null(p->updated_at), true, &oom);
	obj_add(o, "status", status_to_json(p, &oom), false, &oom);
	if (oom) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* json-c escapes '"', '\\' and control characters in a string (and '/'
 * not with NOSLASHESCAPE); text with none of them is its own JSON form. */
static bool
json_plain(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
			return false;
	return true;
}

/* @s as a JSON string, or null when NULL or empty (string_or_null()). */
static int
append_string_or_null(struct printbuf *pb, const char *s)
{
	struct json_object *o;
	const char *text;
	size_t len = 0;
	int rc = EGW_E_NOMEM;

	if (s == NULL || s[0] == '\0')
		return printbuf_strappend(pb, "null") < 0 ? EGW_E_NOMEM : 0;
	if (json_plain(s)) {
		if (printbuf_strappend(pb, "\"") < 0 ||
		    printbuf_memappend(pb, s, (int)strlen(s)) < 0 ||
		    printbuf_strappend(pb, "\"") < 0)
			return EGW_E_NOMEM;
		return 0;
	}
	if ((o = json_object_new_string(s)) == NULL)
		return EGW_E_NOMEM;
	text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (text != NULL && len <= INT_MAX &&
	    printbuf_memappend(pb, text, (int)len) >= 0)
		rc = 0;
	json_object_put(o);
	return rc;
}

char *
codec_policy_document(const struct policy *p, const char *input)
{
	size_t len = input != NULL ? strlen(input) : 0;
	struct printbuf *pb;
	char num[160];
	char *out = NULL;
	int rc;

	if (len < 2 || input[0] != '{' || input[len - 1] != '}' ||
	    len - 1 > INT_MAX || (pb = printbuf_new()) == NULL)
		return NULL;
	/* An input object always has members, so a comma follows them. */
	rc = snprintf(num, sizeof(num), ",\"mark\":%lld,\"revision\":%lld,"
	    "\"generation\":%lld,\"created_at\":", (long long)p->id,
	    (long long)p->revision, (long long)p->generation);
	if (rc < 0 || (size_t)rc >= sizeof(num)) {
		printbuf_free(pb);
		return NULL;
	}
	rc = printbuf_memappend(pb, input, (int)(len - 1)) < 0 ||
	    printbuf_memappend(pb, num, (int)strlen(num)) < 0 ? EGW_E_NOMEM : 0;
	if (rc == 0)
		rc = append_string_or_null(pb, p->created_at);
	if (rc == 0 && printbuf_strappend(pb, ",\"updated_at\":") < 0)
		rc = EGW_E_NOMEM;
	if (rc == 0)
		rc = append_string_or_null(pb, p->updated_at);
	if (rc == 0 && printbuf_strappend(pb, ",\"completed_at\":") < 0)
		rc = EGW_E_NOMEM;
	if (rc == 0)
		rc = append_string_or_null(pb, p->completed_at);
	if (rc == 0 && printbuf_strappend(pb, "}") < 0)
		rc = EGW_E_NOMEM;
	if (rc == 0)
		out = strdup(pb->buf);
	printbuf_free(pb);
	return out;
}

bool
codec_document_has_input(const char *doc, size_t len, const char *input)
{
	static const char mark[] = ",\"mark\":";
	size_t n = strlen(input);

	/* The shared prefix is whole top-level members of both texts, so a
	 * document that goes on with "mark", the first member that is not
	 * an input field, holds no other input member. */
	return n >= 2 && input[n - 1] == '}' && len >= n - 1 + sizeof(mark) - 1 &&
	    memcmp(doc, input, n - 1) == 0 &&
	    memcmp(doc + n - 1, mark, sizeof(mark) - 1) == 0;
}

int
codec_policy_append_status(struct printbuf *pb, const char *doc, size_t len,
    enum policy_apply_status status, const char *error,
    int64_t applied_generation)
{
	char tail[64];
	int rc;

	if (len < 2 || doc[0] != '{' || doc[len - 1] != '}' || len - 1 > INT_MAX)
		return EGW_E_DB;
	if (printbuf_memappend(pb, doc, (int)(len - 1)) < 0 ||
	    printbuf_strappend(pb, ",\"status\":{\"apply\":\"") < 0 ||
	    printbuf_memappend(pb, policy_apply_status_name(status),
	    (int)strlen(policy_apply_status_name(status))) < 0 ||
	    printbuf_strappend(pb, "\",\"error\":") < 0)
		return EGW_E_NOMEM;
	if ((rc = append_string_or_null(pb, error)) != 0)
		return rc;
	snprintf(tail, sizeof(tail), ",\"applied_generation\":%lld}}",
	    (long long)applied_generation);
	return printbuf_memappend(pb, tail, (int)strlen(tail)) < 0
	    ? EGW_E_NOMEM : 0;
}

char *
codec_error_body(int err, const char *message,
    const struct policy_errors *errs, const char *request_id)
{
	struct json_object *doc = json_object_new_object(), *e, *details, *d;
	bool oom = false;
	const char *s;
	char *out = NULL;

	if (doc == NULL)
		return NULL;
	e = json_object_new_object();
	details = json_object_new_array();
	if (e == NULL || details == NULL) {
		json_object_put(e);
		json_object_put(details);
		json_object_put(doc);
		return NULL;
	}
	obj_add(e, "code", json_object_new_string(err_token(err)), false, &oom);
	obj_add(e, "message", json_object_new_string(message != NULL ? message
	    : err_message(err)), false, &oom);
	obj_add(e, "field", errs != NULL && errs->count > 0
	    ? json_object_new_string(errs->items[0].path) : NULL,
	    errs == NULL || errs->count == 0, &oom);
	for (size_t i = 0; errs != NULL && i < errs->count &&
	    i < POLICY_ERRORS_MAX; i++) {
		d = json_object_new_object();
		if (d == NULL) {
			oom = true;
			break;
		}
		obj_add(d, "path", json_object_new_string(errs->items[i].path),
		    false, &oom);
		obj_add(d, "reason", json_object_new_string(errs->items[i].reason),
		    false, &oom);
		arr_add(details, d, &oom);
	}
	obj_add(e, "details", details, false, &oom);
	if (errs != NULL && errs->dropped > 0)
		obj_add(e, "details_dropped",
		    json_object_new_int64((int64_t)errs->dropped), false, &oom);
	obj_add(doc, "error", e, false, &oom);
	obj_add(doc, "request_id", string_or_null(request_id), true, &oom);
	if (!oom) {
		s = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
		    JSON_C_TO_STRING_NOSLASHESCAPE);
		if (s != NULL)
			out = strdup(s);
	}
	json_object_put(doc);
	return out;
}
