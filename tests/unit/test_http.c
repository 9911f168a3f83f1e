/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of http.c: strict percent-decoding, query
 * and path parsing, Content-Length and Content-Type rules, request ids,
 * body reading limits and the response header block.
 */
#include "err.h"
#include "http.h"
#include "log.h"
#include "tap.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fake CGI environment: NULL-terminated name/value pairs. */
static const char *
env_get(void *ctx, const char *name)
{
	const char *const *kv = ctx;

	for (; kv[0] != NULL; kv += 2) {
		if (strcmp(kv[0], name) == 0)
			return kv[1];
	}
	return NULL;
}

struct body_src {
	const char *data;
	size_t len, off;
};

static int
body_read(void *ctx, char *buf, int len)
{
	struct body_src *b = ctx;
	size_t n = b->len - b->off;

	if (n > (size_t)len)
		n = (size_t)len;
	/* Hand out at most 3 bytes per call to exercise the read loop. */
	if (n > 3)
		n = 3;
	memcpy(buf, b->data + b->off, n);
	b->off += n;
	return (int)n;
}

static void
test_decode(void)
{
	static const struct {
		const char *in;
		const char *want;	/* NULL: must be refused */
	} cases[] = {
		{ "abc", "abc" },
		{ "a%20b", "a b" },
		{ "a+b", "a+b" },
		{ "00+01:00", "00+01:00" },
		{ "%2B", "+" },
		{ "%41%62", "Ab" },
		{ "%2F", "/" },
		{ "%", NULL },
		{ "%4", NULL },
		{ "%zz", NULL },
		{ "%4g", NULL },
		{ "%00", NULL },
		{ "ab%", NULL },
		{ "", "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = http_percent_decode(cases[i].in, strlen(cases[i].in));

		if (cases[i].want == NULL)
			ok(got == NULL, "decode \"%s\" refused", cases[i].in);
		else
			is_str(got, cases[i].want, "decode \"%s\"", cases[i].in);
		free(got);
	}
	{
		char *got = http_percent_decode("a\0b", 3);

		ok(got == NULL, "raw NUL refused");
		free(got);
	}
}

static void
test_content_length(void)
{
	size_t n = 0;

	is_int(http_parse_content_length("0", &n), 0, "length 0");
	is_int(http_parse_content_length("262144", &n), 0, "length 262144");
	is_int((long long)n, 262144, "length value");
	is_int(http_parse_content_length("", &n), EGW_E_BADREQUEST, "empty length refused");
	is_int(http_parse_content_length("-1", &n), EGW_E_BADREQUEST, "negative refused");
	is_int(http_parse_content_length("+1", &n), EGW_E_BADREQUEST, "plus sign refused");
	is_int(http_parse_content_length(" 1", &n), EGW_E_BADREQUEST, "space refused");
	is_int(http_parse_content_length("1e3", &n), EGW_E_BADREQUEST, "exponent refused");
	is_int(http_parse_content_length("0x10", &n), EGW_E_BADREQUEST, "hex refused");
	is_int(http_parse_content_length("9999999999999999999999", &n), EGW_E_BADREQUEST,
	    "overlong refused");
}

static void
test_misc(void)
{
	char sixty_five[66];

	ok(http_valid_request_id("abc-123_X.y"), "request id charset");
	ok(!http_valid_request_id(""), "empty request id refused");
	ok(!http_valid_request_id("a b"), "space in request id refused");
	ok(!http_valid_request_id("a\nb"), "newline in request id refused");
	ok(!http_valid_request_id("a\"b"), "quote in request id refused");
	memset(sixty_five, 'a', 65);
	sixty_five[65] = '\0';
	ok(!http_valid_request_id(sixty_five), "65-character request id refused");
	sixty_five[64] = '\0';
	ok(http_valid_request_id(sixty_five), "64-character request id accepted");

	ok(http_content_type_is_json("application/json"), "json type");
	ok(http_content_type_is_json("Application/JSON; charset=utf-8"), "json type, params");
	ok(http_content_type_is_json("application/json;charset=\"UTF-8\""),
	    "charset UTF-8, quoted");
	ok(http_content_type_is_json("application/json; foo=bar; charset = utf-8 ;x=1"),
	    "charset UTF-8 among other parameters");
	ok(http_content_type_is_json("application/json; foo=bar"),
	    "another parameter alone");
	ok(!http_content_type_is_json("application/json; charset=iso-8859-1"),
	    "another charset refused");
	ok(!http_content_type_is_json("application/json; charset=utf-16"),
	    "utf-16 refused");
	ok(!http_content_type_is_json("application/json; charset=utf-8x"),
	    "a charset that only starts with utf-8 refused");
	ok(http_content_type_is_json("application/json; charset=UTF8"),
	    "utf8 without the hyphen (a common spelling) accepted");
	ok(!http_content_type_is_json("application/json; charset=utf-7"),
	    "utf-7 refused");
	ok(!http_content_type_is_json("application/json; charset=utf--8"),
	    "utf--8 refused");
	ok(!http_content_type_is_json("application/json; charset=\"utf-8"),
	    "an unclosed quote refused");
	ok(!http_content_type_is_json("application/json; foo=1; CHARSET=latin1"),
	    "a charset after another parameter, any case, is looked at");
	ok(!http_content_type_is_json("application/jsonx"), "jsonx refused");
	ok(!http_content_type_is_json("text/plain"), "text refused");
	ok(!http_content_type_is_json(NULL), "missing type refused");
	is_str(http_status_text(422), "Unprocessable Entity", "reason phrase");
}

static void
test_parse(void)
{
	struct http_req req;
	uint64_t v;

	{
		const char *env[] = { "REQUEST_METHOD", "GET", "REQUEST_URI",
		    "/v1/policies/sc%2D1?limit=5&cursor=a+b", "HTTP_X_REQUEST_ID", "rid-1",
		    NULL };

		http_req_init(&req);
		is_int(http_req_parse(&req, env_get, env), 0, "parse a GET");
		is_str(req.method, "GET", "method");
		is_int((long long)req.n_segments, 3, "three segments");
		is_str(req.segments[2], "sc-1", "segment decoded");
		is_str(http_query_get(&req, "cursor"), "a+b", "query decoded, '+' kept");
		is_str(req.request_id, "rid-1", "request id taken");
		ok(!req.request_id_generated, "request id not generated");
		is_int(http_query_uint(&req, "limit", 1, 10, 3, &v), 0, "limit parsed");
		is_int((long long)v, 5, "limit value");
		is_int(http_query_uint(&req, "limit", 6, 10, 3, &v), EGW_E_BADREQUEST,
		    "limit below min refused");
		is_int(http_query_uint(&req, "other", 1, 10, 3, &v), 0, "absent uint");
		is_int((long long)v, 3, "absent uint default");
		{
			const char *allowed[] = { "limit", NULL };

			is_int(http_query_check(&req, allowed), EGW_E_BADREQUEST,
			    "unknown parameter refused");
			is_str(req.error_field, "cursor", "unknown parameter named");
		}
		http_req_free(&req);
	}
	{
		static const struct {
			const char *value;
			long long want;		/* -1: refused */
			const char *message;
		} cases[] = {
			{ "9223372036854775807", INT64_MAX, NULL },	/* 19 digits */
			{ "0009223372036854775807", INT64_MAX, NULL },
			{ "9223372036854775808", -1, "out of range" },
			{ "18446744073709551615", -1, "out of range" },
			{ "99999999999999999999", -1, "out of range" },
			{ "1", 1, NULL },
			{ "0", -1, "out of range" },
			{ "", -1, "not a whole number" },
			{ "1e3", -1, "not a whole number" },
			{ "-1", -1, "not a whole number" },
			{ " 1", -1, "not a whole number" },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
			char uri[96];
			const char *env[] = { "REQUEST_METHOD", "GET", "REQUEST_URI",
			    uri, NULL };
			int rc;

			snprintf(uri, sizeof(uri), "/v1/logs?cursor=%s", cases[i].value);
			for (char *c = uri; *c != '\0'; c++)
				if (*c == ' ')
					*c = '+';	/* a literal plus: not a digit */
			http_req_init(&req);
			if (http_req_parse(&req, env_get, env) != 0) {
				ok(false, "cursor=%s: parses", cases[i].value);
				http_req_free(&req);
				continue;
			}
			rc = http_query_uint(&req, "cursor", 1, INT64_MAX, 0, &v);
			if (cases[i].want < 0)
				ok(rc == EGW_E_BADREQUEST && req.error_message != NULL &&
				    strcmp(req.error_message, cases[i].message) == 0,
				    "cursor=%s refused: %s", cases[i].value,
				    req.error_message ? req.error_message : "(none)");
			else
				ok(rc == 0 && v == (uint64_t)cases[i].want,
				    "cursor=%s accepted", cases[i].value);
			http_req_free(&req);
		}
	}
	{
		const char *env[] = { "REQUEST_METHOD", "GET", "REQUEST_URI", "/health",
		    "HTTP_X_REQUEST_ID", "bad id\r\nX: y", NULL };

		http_req_init(&req);
		is_int(http_req_parse(&req, env_get, env), 0, "parse with bad request id");
		ok(req.request_id_generated, "bad request id replaced");
		ok(http_valid_request_id(req.request_id), "generated id is sane");
		http_req_free(&req);
	}
	{
		static const char *const bad_uris[] = {
			"/v1/policies/%zz", "/v1/policies/a%00b", "/v1//policies",
			"/x?a=%", "/x?a=1&a=2", "/x?=1", "relative",
		};

		for (size_t i = 0; i < sizeof(bad_uris) / sizeof(bad_uris[0]); i++) {
			const char *env[] = { "REQUEST_METHOD", "GET", "REQUEST_URI",
			    bad_uris[i], NULL };

			http_req_init(&req);
			is_int(http_req_parse(&req, env_get, env), EGW_E_BADREQUEST,
			    "uri \"%s\" refused", bad_uris[i]);
			ok(req.request_id[0] != '\0', "request id set on failure");
			http_req_free(&req);
		}
	}
	{
		/* Deeper than any route, a method longer than any: parsed,
		 * so that routing answers 404 or 405 as for any other. */
		const char *env[] = { "REQUEST_METHOD", "PROPFINDXXXXXXXXX",
		    "REQUEST_URI", "/a/b/c/d/e/f/g/h/i/j?%FF%C0=1&ok=1", NULL };
		const char *allowed[] = { "ok", NULL };

		http_req_init(&req);
		is_int(http_req_parse(&req, env_get, env), 0,
		    "a deep path and a long method parse");
		ok(req.path_too_deep, "deep path marked");
		is_str(req.method, HTTP_METHOD_TOO_LONG, "long method replaced");
		is_int(http_query_check(&req, allowed), EGW_E_BADREQUEST,
		    "non-ASCII parameter name refused");
		ok(req.error_field == NULL, "a non-ASCII name is not echoed");
		http_req_free(&req);
	}
	{
		const char *env[] = { "REQUEST_METHOD", "POST", "REQUEST_URI", "/x",
		    "CONTENT_LENGTH", "12abc", NULL };

		http_req_init(&req);
		is_int(http_req_parse(&req, env_get, env), EGW_E_BADREQUEST,
		    "non-numeric Content-Length refused");
		http_req_free(&req);
	}
}

static int
body_case(const char *ctype, const char *clen, const char *data, size_t dlen,
    bool required, size_t max, struct http_req *req)
{
	const char *env[] = { "REQUEST_METHOD", "POST", "REQUEST_URI", "/v1/policies",
	    "CONTENT_TYPE", ctype, "CONTENT_LENGTH", clen, NULL };
	struct body_src src = { data, dlen, 0 };

	/* A NULL value ends the list early, dropping later entries. */
	if (ctype == NULL) {
		env[4] = "CONTENT_LENGTH";
		env[5] = clen;
		env[6] = NULL;
	}
	http_req_init(req);
	if (http_req_parse(req, env_get, env) != 0)
		return -100;
	return http_req_read_body(req, max, required, body_read, &src);
}

static void
test_body(void)
{
	struct http_req req;

	is_int(body_case("application/json", "11", "{\"a\":12345}", 11, true, 1024, &req),
	    0, "body read");
	is_int((long long)req.body_len, 11, "body length");
	is_str(req.body, "{\"a\":12345}", "body bytes");
	http_req_free(&req);

	is_int(body_case("application/json", NULL, "", 0, true, 1024, &req),
	    EGW_E_LENGTH, "missing length: 411");
	http_req_free(&req);
	is_int(body_case("application/json", NULL, "", 0, false, 1024, &req),
	    0, "missing length fine when no body needed");
	http_req_free(&req);
	is_int(body_case("application/json", "2000", "", 0, true, 1024, &req),
	    EGW_E_TOOLARGE, "oversized: 413 before reading");
	http_req_free(&req);
	is_int(body_case("text/plain", "2", "{}", 2, true, 1024, &req),
	    EGW_E_MEDIATYPE, "text/plain: 415");
	http_req_free(&req);
	is_int(body_case(NULL, "2", "{}", 2, true, 1024, &req),
	    EGW_E_MEDIATYPE, "no content type: 415");
	http_req_free(&req);
	is_int(body_case("application/json", "10", "{}", 2, true, 1024, &req),
	    EGW_E_BADREQUEST, "short body: 400");
	http_req_free(&req);
	is_int(body_case("application/json", "0", "", 0, true, 1024, &req),
	    EGW_E_BADREQUEST, "empty required body: 400");
	is_str(req.error_field ? req.error_field : "(null)", "",
	    "... about the body as a whole (field \"\")");
	http_req_free(&req);
	is_int(body_case("text/plain", "0", "", 0, true, 1024, &req),
	    EGW_E_MEDIATYPE, "empty required body sent as text/plain: 415");
	http_req_free(&req);
	is_int(body_case("text/plain", "0", "", 0, false, 1024, &req), 0,
	    "empty body where none is needed: any content type");
	http_req_free(&req);
}

static void
test_resp(void)
{
	struct http_resp resp;
	struct json_object *o, *e, *v;
	char head[512];
	int n;

	http_resp_init(&resp);
	is_int(http_resp_error(&resp, EGW_E_NOTFOUND, NULL, "scenario_id", "rid"), 0,
	    "error body built");
	is_int(resp.status, 404, "error status");
	o = json_tokener_parse(resp.body);
	ok(o != NULL && json_object_object_get_ex(o, "error", &e), "error object");
	ok(json_object_object_get_ex(e, "code", &v) &&
	    strcmp(json_object_get_string(v), "not_found") == 0, "error code");
	ok(json_object_object_get_ex(e, "field", &v) &&
	    strcmp(json_object_get_string(v), "scenario_id") == 0, "error field");
	ok(json_object_object_get_ex(o, "request_id", &v) &&
	    strcmp(json_object_get_string(v), "rid") == 0, "error request id");
	json_object_put(o);
	is_int(http_resp_add_header(&resp, "Allow", "GET, POST"), 0, "header added");
	is_int(http_resp_add_header(&resp, "X", "a\r\nInjected: 1"), EGW_E_INVALID,
	    "CR/LF in header refused");
	n = http_resp_head(&resp, "rid", head, sizeof(head));
	ok(n > 0, "head formatted");
	ok(strncmp(head, "Status: 404 Not Found\r\n", 23) == 0, "status line");
	ok(strstr(head, "X-Request-Id: rid\r\n") != NULL, "request id header");
	ok(strstr(head, "Allow: GET, POST\r\n") != NULL, "extra header");
	ok(n >= 4 && strcmp(head + n - 4, "\r\n\r\n") == 0, "head ends with blank line");
	is_int(http_resp_head(&resp, "rid", head, 20), -1, "small buffer refused");
	{
		/* The whole head, byte for byte; a buffer of exactly its
		 * length and the NUL takes it, one byte less does not. */
		char want[512];
		int wn = snprintf(want, sizeof(want), "Status: 404 Not Found\r\n"
		    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
		    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
		    "X-Request-Id: rid\r\nAllow: GET, POST\r\n\r\n", resp.body_len);

		n = http_resp_head(&resp, "rid", head, sizeof(head));
		is_str(head, want, "the whole head");
		is_int(n, wn, "its length");
		is_int(http_resp_head(&resp, "rid", head, (size_t)wn + 1), wn,
		    "a buffer of its length and the NUL is enough");
		is_int(http_resp_head(&resp, "rid", head, (size_t)wn), -1,
		    "one byte less is not");
		resp.status = 200;
		resp.body_len = 0;
		n = http_resp_head(&resp, "r2", head, sizeof(head));
		ok(n > 0 && strncmp(head, "Status: 200 OK\r\n", 16) == 0 &&
		    strstr(head, "\r\nContent-Length: 0\r\n") != NULL,
		    "status 200 and a length of 0");
	}
	http_resp_free(&resp);
}

/* A body built piece by piece: the unpaged policy list. */
static void
test_resp_append(void)
{
	struct http_resp resp;
	struct json_object *o, *v;
	char piece[1000];
	size_t want = 0;
	bool same = true;

	http_resp_init(&resp);
	is_int(http_resp_append(&resp, "[", 1), 0, "append to an empty body");
	is_int(http_resp_append_json(&resp, json_object_new_string("a/\"b")), 0,
	    "append a json-c value");
	is_int(http_resp_append(&resp, "]", 1), 0, "append the end");
	is_str(resp.body, "[\"a/\\\"b\"]", "same flags as http_resp_json "
	    "(no slash escape)");
	is_int((int)resp.body_len, 9, "length counts what was appended");
	is_int(http_resp_append_json(&resp, NULL), EGW_E_NOMEM,
	    "NULL value refused");
	is_int((int)resp.body_len, 9, "a refused append leaves the body");
	http_resp_free(&resp);

	/* Well past the first allocation: every byte where it belongs. */
	memset(piece, 'x', sizeof(piece));
	for (int i = 0; i < 5000 && same; i++) {
		piece[0] = (char)('a' + i % 26);
		same = http_resp_append(&resp, piece, sizeof(piece)) == 0 &&
		    resp.body[want] == piece[0] && resp.body[want + 999] == 'x';
		want += sizeof(piece);
	}
	ok(same && resp.body_len == want && resp.body[want] == '\0',
	    "5,000 appends: %zu bytes, NUL-terminated", resp.body_len);
	ok(resp.body[4999 * 1000] == 'a' + 4999 % 26, "the last piece is last");
	/* A later error body replaces the appended text. */
	is_int(http_resp_error(&resp, EGW_E_DB, NULL, NULL, "rid"), 0,
	    "error after appends");
	o = json_tokener_parse(resp.body);
	ok(o != NULL && json_object_object_get_ex(o, "error", &v) &&
	    strlen(resp.body) == resp.body_len, "the error body is whole");
	json_object_put(o);
	is_int(http_resp_append(&resp, "x", 1), 0, "append after set_body");
	ok(resp.body_len == strlen(resp.body) &&
	    resp.body[resp.body_len - 1] == 'x', "appended after the set body");
	http_resp_free(&resp);
}

int
main(void)
{
	log_init("test", LOG_LEVEL_ERROR);
	test_decode();
	test_content_length();
	test_misc();
	test_parse();
	test_body();
	test_resp();
	test_resp_append();
	return tap_done();
}
