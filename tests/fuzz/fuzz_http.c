/* SPDX-License-Identifier: MIT */
/*
 * This file contains the libFuzzer target of the API's request parsing:
 * CGI parameters (method, REQUEST_URI with path and query, request id,
 * Content-Length, Content-Type, Authorization) and the body reader.
 *
 * Input: up to six '\n'-separated lines giving REQUEST_METHOD,
 * REQUEST_URI, HTTP_X_REQUEST_ID, CONTENT_LENGTH, CONTENT_TYPE and
 * HTTP_AUTHORIZATION (a missing line is an absent parameter), then the
 * body bytes.  Properties checked besides memory safety:
 *  - parsing gives 0 or EGW_E_BADREQUEST, and the request id is always a
 *    valid [A-Za-z0-9._-]{1,64} (it is echoed in a response header);
 *  - decoded path segments are non-empty, and percent-encoding them again
 *    and re-parsing gives the same segments (an encoded '/' never moves a
 *    segment boundary); query names are non-empty and unique;
 *  - the body reader returns its documented codes, never reads more than
 *    Content-Length, and a complete body is byte-identical to what was sent;
 *  - the bearer-token extractor only yields base64/base64url text;
 *  - a JSON error body quoting hostile text is valid JSON, and the CGI
 *    header block holds exactly the lines we put there (no CR/LF injection).
 */
#include "fuzz.h"

#include "auth.h"
#include "err.h"
#include "http.h"

#include <json-c/json.h>

struct env {
	const char *v[6];
};

static const char *const names[6] = {
	"REQUEST_METHOD", "REQUEST_URI", "HTTP_X_REQUEST_ID", "CONTENT_LENGTH",
	"CONTENT_TYPE", "HTTP_AUTHORIZATION"
};

static const char *
env_get(void *ctx, const char *name)
{
	struct env *e = ctx;

	for (int i = 0; i < 6; i++)
		if (strcmp(names[i], name) == 0)
			return e->v[i];
	return NULL;
}

struct reader {
	const char *p;
	size_t left;
	size_t total;
};

static int
body_read(void *ctx, char *buf, int len)
{
	struct reader *r = ctx;
	size_t n = r->left < (size_t)len ? r->left : (size_t)len;

	FUZZ_CHECK(len > 0);
	/* Short reads, as a socket gives them. */
	if (n > 7)
		n = n / 2 + 1;
	memcpy(buf, r->p, n);
	r->p += n;
	r->left -= n;
	r->total += n;
	return (int)n;
}

static const char *
env_uri_get(void *ctx, const char *name)
{
	if (strcmp(name, "REQUEST_URI") == 0)
		return ctx;
	if (strcmp(name, "REQUEST_METHOD") == 0)
		return "GET";
	return NULL;
}

/* Encode every byte outside [A-Za-z0-9] and re-parse: same segments. */
static void
check_reencode(const struct http_req *req)
{
	static const char hex[] = "0123456789ABCDEF";
	struct http_req again;
	char *uri, *o;
	size_t cap = 2;

	for (size_t i = 0; i < req->n_segments; i++)
		cap += 1 + 3 * strlen(req->segments[i]);
	if (cap > HTTP_MAX_URI)
		return;
	uri = malloc(cap + 1);
	FUZZ_CHECK(uri != NULL);
	o = uri;
	if (req->n_segments == 0)
		*o++ = '/';
	for (size_t i = 0; i < req->n_segments; i++) {
		*o++ = '/';
		for (const unsigned char *s = (const unsigned char *)req->segments[i]; *s; s++) {
			if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			    (*s >= '0' && *s <= '9')) {
				*o++ = (char)*s;
			} else {
				*o++ = '%';
				*o++ = hex[*s >> 4];
				*o++ = hex[*s & 15];
			}
		}
	}
	*o = '\0';
	http_req_init(&again);
	FUZZ_CHECK(http_req_parse(&again, env_uri_get, uri) == 0);
	FUZZ_CHECK(again.n_segments == req->n_segments);
	for (size_t i = 0; i < req->n_segments; i++)
		FUZZ_CHECK(strcmp(again.segments[i], req->segments[i]) == 0);
	http_req_free(&again);
	free(uri);
}

static void
check_response(const char *text)
{
	struct http_resp resp;
	struct json_object *o;
	char head[2048];
	int n, lines = 0;

	http_resp_init(&resp);
	FUZZ_CHECK(http_resp_error(&resp, EGW_E_BADREQUEST, text, text, "rid") == 0);
	o = json_tokener_parse(resp.body);
	FUZZ_CHECK(o != NULL);
	json_object_put(o);
	if (http_resp_add_header(&resp, "X-Fuzz", text) == 0)
		FUZZ_CHECK(strpbrk(text, "\r\n") == NULL);
	n = http_resp_head(&resp, "rid", head, sizeof(head));
	if (n > 0) {
		for (int i = 0; i + 1 < n; i++)
			if (head[i] == '\r' && head[i + 1] == '\n')
				lines++;
		/* 6 fixed lines + the header we added (if accepted) + blank */
		FUZZ_CHECK(lines == 7 + (int)resp.n_headers);
		FUZZ_CHECK(strlen(head) == (size_t)n);
	}
	http_resp_free(&resp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const allowed[] = { "limit", "cursor", "scenario_id", NULL };
	char *buf = fuzz_strndup(data, size);
	char *p = buf, *end = buf + size;
	char tok[AUTH_PRESENTED_MAX + 1];
	struct env e = { { NULL } };
	struct http_req req;
	struct reader r;
	uint64_t limit;
	int rc, i;

	/* Lines up to the sixth '\n'; the rest is the body.  A line that
	 * holds a NUL simply ends early, as a C string would. */
	for (i = 0; i < 6 && p < end; i++) {
		char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL)
			break;
		*nl = '\0';
		e.v[i] = p;
		p = nl + 1;
	}
	http_req_init(&req);
	rc = http_req_parse(&req, env_get, &e);
	FUZZ_CHECK(rc == 0 || rc == EGW_E_BADREQUEST || rc == EGW_E_URITOOLONG);
	FUZZ_CHECK(http_valid_request_id(req.request_id));
	if (e.v[2] != NULL && http_valid_request_id(e.v[2]))
		FUZZ_CHECK(strcmp(req.request_id, e.v[2]) == 0);
	if (rc != 0) {
		FUZZ_CHECK(req.error_message != NULL);
		goto out;
	}
	FUZZ_CHECK(req.path != NULL && req.path[0] == '/');
	FUZZ_CHECK(req.n_segments <= HTTP_MAX_SEGMENTS && req.n_query <= HTTP_MAX_QUERY);
	for (size_t k = 0; k < req.n_segments; k++)
		FUZZ_CHECK(req.segments[k][0] != '\0');
	for (size_t k = 0; k < req.n_query; k++) {
		FUZZ_CHECK(req.query[k].name[0] != '\0');
		for (size_t j = 0; j < k; j++)
			FUZZ_CHECK(strcmp(req.query[j].name, req.query[k].name) != 0);
	}
	check_reencode(&req);

	rc = http_query_check(&req, allowed);
	FUZZ_CHECK(rc == 0 || rc == EGW_E_BADREQUEST);
	rc = http_query_uint(&req, "limit", 1, 1000, 100, &limit);
	FUZZ_CHECK(rc == 0 || rc == EGW_E_BADREQUEST);
	if (rc == 0)
		FUZZ_CHECK(limit >= 1 && limit <= 1000);

	r.p = p;
	r.left = (size_t)(end - p);
	r.total = 0;
	rc = http_req_read_body(&req, 4096, size % 2 == 0, body_read, &r);
	FUZZ_CHECK(rc == 0 || rc == EGW_E_LENGTH || rc == EGW_E_TOOLARGE ||
	    rc == EGW_E_MEDIATYPE || rc == EGW_E_BADREQUEST);
	FUZZ_CHECK(r.total <= req.content_length || !req.has_length);
	if (rc == 0 && req.body != NULL) {
		FUZZ_CHECK(req.body_len == req.content_length);
		FUZZ_CHECK(memcmp(req.body, p, req.body_len) == 0);
		FUZZ_CHECK(req.body_len <= 4096);
	}
out:
	if (auth_bearer(e.v[5], tok) == 0) {
		FUZZ_CHECK(tok[0] != '\0');
		FUZZ_CHECK(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-._~+/=") == strlen(tok));
	}
	check_response(e.v[1] != NULL ? e.v[1] : "");
	http_req_free(&req);
	free(buf);
	return 0;
}
