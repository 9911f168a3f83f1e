/* SPDX-License-Identifier: MIT */
/*
 * This file contains request parsing and response formatting (see http.h).
 *
 * The path is taken from REQUEST_URI, not from nginx's decoded and
 * normalised DOCUMENT_URI, so that this file alone decides what a byte
 * means: each segment is percent-decoded on its own, which keeps an encoded
 * '/' inside a segment from changing the route.
 */
#include "http.h"
#include "err.h"
#include "randpool.h"
#include "textbuf.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void
http_req_init(struct http_req *req)
{
	memset(req, 0, sizeof(*req));
}

void
http_req_free(struct http_req *req)
{
	free(req->path);
	for (size_t i = 0; i < req->n_segments; i++)
		free(req->segments[i]);
	for (size_t i = 0; i < req->n_query; i++) {
		free(req->query[i].name);
		free(req->query[i].value);
	}
	free(req->content_type);
	free(req->authorization);
	free(req->body);
	http_req_init(req);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
http_percent_decode(const char *in, size_t len)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len) {
				free(out);
				return NULL;
			}
			hi = hexval(in[i + 1]);
			lo = hexval(in[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '\0') {
			free(out);
			return NULL;
		} else {
			out[o++] = c;
		}
	}
	out[o] = '\0';
	return out;
}

bool
http_valid_request_id(const char *id)
{
	size_t n = 0;

	if (id == NULL)
		return false;
	for (; id[n] != '\0'; n++) {
		char c = id[n];

		if (n >= HTTP_REQUEST_ID_MAX)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

static void
http_generate_request_id(char out[HTTP_REQUEST_ID_MAX + 1])
{
	unsigned char raw[12];
	struct textbuf tb;

	_Static_assert(2 * sizeof(raw) <= HTTP_REQUEST_ID_MAX, "the id fits");
	if (randpool_bytes(raw, sizeof(raw)) != 0) {
		/* Not a secret: uniqueness is enough, so fall back to time. */
		snprintf(out, HTTP_REQUEST_ID_MAX + 1, "t%lx", (unsigned long)random());
		return;
	}
	textbuf_init(&tb, out, HTTP_REQUEST_ID_MAX + 1);
	textbuf_put_hex(&tb, raw, sizeof(raw));
}

static const char *
http_skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/*
 * A charset parameter must say UTF-8 (JSON text is UTF-8, RFC 8259 8.1):
 * a body declared in another charset is refused for its type (415), not
 * later for its bytes.  Other parameters are left alone.
 */
static bool
http_charset_is_utf8(const char *params)
{
	static const char charset[] = "charset";
	static const char utf[] = "utf";

	while (*params == ';') {
		const char *name = http_skip_space(params + 1), *value;
		size_t vlen;
		bool quoted;

		params = strchr(name, ';');
		if (params == NULL)
			params = name + strlen(name);
		if (strncasecmp(name, charset, sizeof(charset) - 1) != 0)
			continue;
		value = http_skip_space(name + sizeof(charset) - 1);
		if (*value != '=')
			continue;
		value = http_skip_space(value + 1);
		quoted = *value == '"';
		value += quoted;
		/* "utf-8", or the common "utf8" */
		vlen = sizeof(utf) - 1;
		if (strncasecmp(value, utf, vlen) != 0)
			return false;
		value += vlen;
		value += *value == '-';
		if (*value++ != '8')
			return false;
		if (quoted && *value++ != '"')
			return false;
		value = http_skip_space(value);
		if (*value != ';' && *value != '\0')
			return false;
	}
	return true;
}

bool
http_content_type_is_json(const char *ct)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	if (ct == NULL)
		return false;
	ct = http_skip_space(ct);
	if (strncasecmp(ct, want, n) != 0)
		return false;
	ct = http_skip_space(ct + n);
	return *ct == '\0' || (*ct == ';' && http_charset_is_utf8(ct));
}

int
http_parse_content_length(const char *text, size_t *out)
{
	size_t n = 0, len = strlen(text);

	if (len == 0 || len > 18)
		return EGW_E_BADREQUEST;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return EGW_E_BADREQUEST;
		n = n * 10 + (size_t)(text[i] - '0');
	}
	*out = n;
	return 0;
}

static int
http_bad(struct http_req *req, const char *message, const char *field)
{
	req->error_message = message;
	req->error_field = field;
	return EGW_E_BADREQUEST;
}

_Static_assert(sizeof(HTTP_METHOD_TOO_LONG) <= sizeof(((struct http_req *)0)->method),
    "the stand-in fits the method field");

static bool
http_printable_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

static int
http_parse_path(struct http_req *req, const char *path, size_t len)
{
	size_t i = 0;

	if (len == 0 || path[0] != '/')
		return http_bad(req, "the request path must start with '/'", NULL);
	req->path = strndup(path, len);
	if (req->path == NULL)
		return EGW_E_NOMEM;
	/* "/" alone has no segment; a trailing '/' is not an empty segment. */
	i = 1;
	while (i < len) {
		size_t j = i;
		char *seg;

		while (j < len && path[j] != '/')
			j++;
		if (j == i)
			return http_bad(req, "empty path segment", NULL);
		if (req->n_segments == HTTP_MAX_SEGMENTS) {
			/* No route is this deep: a 404, like any unknown path. */
			req->path_too_deep = true;
			return 0;
		}
		seg = http_percent_decode(path + i, j - i);
		if (seg == NULL)
			return http_bad(req, "bad percent-encoding in the path", NULL);
		req->segments[req->n_segments++] = seg;
		i = j + 1;
	}
	return 0;
}

static int
http_parse_query(struct http_req *req, const char *q)
{
	while (*q != '\0') {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', len);
		size_t nlen = eq ? (size_t)(eq - q) : len;
		struct http_param *p;

		if (len == 0) {
			q += 1;
			continue;
		}
		if (req->n_query == HTTP_MAX_QUERY)
			return http_bad(req, "too many query parameters", NULL);
		p = &req->query[req->n_query];
		p->name = http_percent_decode(q, nlen);
		p->value = eq ? http_percent_decode(eq + 1, len - nlen - 1)
		    : strdup("");
		if (p->name == NULL || p->value == NULL) {
			free(p->name);
			free(p->value);
			p->name = p->value = NULL;
			return http_bad(req, "bad percent-encoding in the query", NULL);
		}
		req->n_query++;
		if (p->name[0] == '\0')
			return http_bad(req, "empty query parameter name", NULL);
		for (size_t i = 0; i + 1 < req->n_query; i++) {
			if (strcmp(req->query[i].name, p->name) == 0)
				return http_bad(req, "query parameter given twice",
				    http_printable_ascii(p->name) ? p->name : NULL);
		}
		q += len;
		if (*q == '&')
			q++;
	}
	return 0;
}

static char *
http_dup_param(http_getenv_fn getenv_fn, void *env, const char *name, int *rc)
{
	const char *v = getenv_fn(env, name);
	char *copy;

	if (v == NULL)
		return NULL;
	copy = strdup(v);
	if (copy == NULL)
		*rc = EGW_E_NOMEM;
	return copy;
}

int
http_req_parse(struct http_req *req, http_getenv_fn getenv_fn, void *env)
{
	const char *method = getenv_fn(env, "REQUEST_METHOD");
	const char *uri = getenv_fn(env, "REQUEST_URI");
	const char *rid = getenv_fn(env, "HTTP_X_REQUEST_ID");
	const char *clen = getenv_fn(env, "CONTENT_LENGTH");
	const char *qmark;
	int rc = 0;

	if (http_valid_request_id(rid)) {
		memcpy(req->request_id, rid, strlen(rid) + 1);
	} else {
		http_generate_request_id(req->request_id);
		req->request_id_generated = true;
	}
	if (method == NULL || method[0] == '\0')
		return http_bad(req, "missing method", NULL);
	if (strlen(method) >= sizeof(req->method))
		method = HTTP_METHOD_TOO_LONG;
	memcpy(req->method, method, strlen(method) + 1);

	req->content_type = http_dup_param(getenv_fn, env, "CONTENT_TYPE", &rc);
	req->authorization = http_dup_param(getenv_fn, env, "HTTP_AUTHORIZATION", &rc);
	if (rc != 0)
		return rc;
	if (clen != NULL && clen[0] != '\0') {
		if (http_parse_content_length(clen, &req->content_length) != 0)
			return http_bad(req, "Content-Length is not a number", NULL);
		req->has_length = true;
	}
	if (uri == NULL || uri[0] == '\0')
		return http_bad(req, "missing request URI", NULL);
	if (strlen(uri) > HTTP_MAX_URI) {
		req->error_message = "the request URI is too long";
		return EGW_E_URITOOLONG;
	}
	qmark = strchr(uri, '?');
	if ((rc = http_parse_path(req, uri, qmark ? (size_t)(qmark - uri)
	    : strlen(uri))) != 0)
		return rc;
	if (qmark != NULL && (rc = http_parse_query(req, qmark + 1)) != 0) {
		/* The path is whole: the caller can still find the route and
		 * check the token before it tells anyone about the query. */
		req->query_invalid = rc == EGW_E_BADREQUEST;
		return rc;
	}
	return 0;
}

int
http_req_read_body(struct http_req *req, size_t max_body, bool required,
    http_read_fn read_fn, void *rctx)
{
	size_t got = 0;

	if (!req->has_length) {
		if (required) {
			req->error_message = "a JSON body with a Content-Length is required";
			return EGW_E_LENGTH;
		}
		return 0;
	}
	if (req->content_length > max_body) {
		req->error_message = "the request body exceeds the size limit";
		return EGW_E_TOOLARGE;
	}
	if (req->content_length == 0 && !required)
		return 0;
	/* Before the emptiness: an empty text/plain body is a 415 as any
	 * text/plain body is. */
	if (!http_content_type_is_json(req->content_type)) {
		req->error_message = "the body must be sent as Content-Type: application/json, in UTF-8";
		return EGW_E_MEDIATYPE;
	}
	if (req->content_length == 0)
		return http_bad(req, "the request body is empty; send a JSON object", "");
	req->body = malloc(req->content_length + 1);
	if (req->body == NULL)
		return EGW_E_NOMEM;
	while (got < req->content_length) {
		int n = read_fn(rctx, req->body + got,
		    (int)(req->content_length - got));

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	req->body[got] = '\0';
	req->body_len = got;
	if (got != req->content_length)
		return http_bad(req, "the request body is shorter than its Content-Length", NULL);
	return 0;
}

const char *
http_query_get(const struct http_req *req, const char *name)
{
	for (size_t i = 0; i < req->n_query; i++) {
		if (strcmp(req->query[i].name, name) == 0)
			return req->query[i].value;
	}
	return NULL;
}

int
http_query_check(struct http_req *req, const char *const *allowed)
{
	for (size_t i = 0; i < req->n_query; i++) {
		bool found = false;

		for (size_t j = 0; allowed[j] != NULL; j++) {
			if (strcmp(req->query[i].name, allowed[j]) == 0) {
				found = true;
				break;
			}
		}
		/* The name goes back in the error's "field" only when it is
		 * printable ASCII: JSON text must be UTF-8, and json-c copies
		 * any other byte through as it is. */
		if (!found)
			return http_bad(req, "unknown query parameter",
			    http_printable_ascii(req->query[i].name) ?
			    req->query[i].name : NULL);
	}
	return 0;
}

int
http_query_uint(struct http_req *req, const char *name, uint64_t min,
    uint64_t max, uint64_t def, uint64_t *out)
{
	const char *v = http_query_get(req, name);
	uint64_t n = 0;
	size_t len;

	if (v == NULL) {
		*out = def;
		return 0;
	}
	len = strlen(v);
	if (len == 0 || strspn(v, "0123456789") != len)
		return http_bad(req, "not a whole number", name);
	while (len > 1 && *v == '0') {
		v++;
		len--;
	}
	/* 19 digits fit in uint64_t (below 1.8e19); more are out of range. */
	if (len > 19)
		return http_bad(req, "out of range", name);
	for (size_t i = 0; i < len; i++)
		n = n * 10 + (uint64_t)(v[i] - '0');
	if (n < min || n > max)
		return http_bad(req, "out of range", name);
	*out = n;
	return 0;
}

void
http_resp_init(struct http_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	resp->status = 200;
}

void
http_resp_free(struct http_resp *resp)
{
	free(resp->body);
	for (size_t i = 0; i < resp->n_headers; i++)
		free(resp->headers[i]);
	http_resp_init(resp);
}

int
http_resp_set_body(struct http_resp *resp, int status, char *body)
{
	if (body == NULL) {
		/* What a handler left half written (an unpaged list cut short)
		 * must not go out under the error's status. */
		free(resp->body);
		resp->body = NULL;
		resp->body_len = resp->body_cap = 0;
		return EGW_E_NOMEM;
	}
	free(resp->body);
	resp->status = status;
	resp->body = body;
	resp->body_len = strlen(body);
	resp->body_cap = resp->body_len + 1;
	return 0;
}

/* One place for the flags, so appended pieces match whole bodies. */
#define HTTP_JSON_FLAGS \
	(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

int
http_resp_json(struct http_resp *resp, int status, struct json_object *obj)
{
	const char *text;
	char *copy;

	if (obj == NULL)
		return EGW_E_NOMEM;
	text = json_object_to_json_string_ext(obj, HTTP_JSON_FLAGS);
	copy = text ? strdup(text) : NULL;
	json_object_put(obj);
	return http_resp_set_body(resp, status, copy);
}

int
http_resp_append(struct http_resp *resp, const char *text, size_t len)
{
	size_t need, cap;
	char *grown;

	if (len > SIZE_MAX - 1 - resp->body_len)
		return EGW_E_NOMEM;
	need = resp->body_len + len + 1;
	if (need > resp->body_cap) {
		/* Doubling: a body of n bytes costs O(n) copying in all. */
		cap = resp->body_cap < 4096 ? 4096 : resp->body_cap;
		while (cap < need)
			cap = cap > SIZE_MAX / 2 ? need : cap * 2;
		if ((grown = realloc(resp->body, cap)) == NULL)
			return EGW_E_NOMEM;
		resp->body = grown;
		resp->body_cap = cap;
	}
	memcpy(resp->body + resp->body_len, text, len);
	resp->body_len += len;
	resp->body[resp->body_len] = '\0';
	return 0;
}

int
http_resp_append_json(struct http_resp *resp, struct json_object *obj)
{
	const char *text;
	size_t len = 0;
	int rc = EGW_E_NOMEM;

	if (obj == NULL)
		return EGW_E_NOMEM;
	text = json_object_to_json_string_length(obj, HTTP_JSON_FLAGS, &len);
	if (text != NULL)
		rc = http_resp_append(resp, text, len);
	json_object_put(obj);
	return rc;
}

int
http_resp_add_header(struct http_resp *resp, const char *name,
    const char *value)
{
	char *h;

	if (strpbrk(value, "\r\n") != NULL || strpbrk(name, "\r\n: ") != NULL)
		return EGW_E_INVALID;
	if (resp->n_headers == HTTP_RESP_MAX_HEADERS)
		return EGW_E_NOMEM;
	if (asprintf(&h, "%s: %s", name, value) < 0)
		return EGW_E_NOMEM;
	resp->headers[resp->n_headers++] = h;
	return 0;
}

int
http_resp_error(struct http_resp *resp, int err, const char *message,
    const char *field, const char *request_id)
{
	struct json_object *o = json_object_new_object();
	struct json_object *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_string(err_token(err)));
	json_object_object_add(e, "message",
	    json_object_new_string(message ? message : err_message(err)));
	json_object_object_add(e, "field", field ? json_object_new_string(field) : NULL);
	json_object_object_add(e, "details", json_object_new_array());
	json_object_object_add(o, "error", e);
	json_object_object_add(o, "request_id",
	    request_id ? json_object_new_string(request_id) : NULL);
	return http_resp_json(resp, err_http_status(err), o);
}

const char *
http_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "Unknown";
}

int
http_resp_head(const struct http_resp *resp, const char *request_id,
    char *buf, size_t size)
{
	struct textbuf tb;

	textbuf_init(&tb, buf, size);
	textbuf_puts(&tb, "Status: ");
	/* Every status this program sets has three digits. */
	textbuf_put_u64(&tb, resp->status > 0 ? (uint64_t)resp->status : 0, 3);
	textbuf_puts(&tb, " ");
	textbuf_puts(&tb, http_status_text(resp->status));
	textbuf_puts(&tb, "\r\nContent-Type: ");
	textbuf_puts(&tb, resp->content_type ? resp->content_type
	    : "application/json");
	textbuf_puts(&tb, "\r\nContent-Length: ");
	textbuf_put_u64(&tb, resp->body_len, 0);
	textbuf_puts(&tb, "\r\nCache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\nX-Request-Id: ");
	textbuf_puts(&tb, request_id);
	textbuf_puts(&tb, "\r\n");
	for (size_t i = 0; i < resp->n_headers; i++) {
		textbuf_puts(&tb, resp->headers[i]);
		textbuf_puts(&tb, "\r\n");
	}
	textbuf_puts(&tb, "\r\n");
	return tb.overflowed || tb.len > INT_MAX ? -1 : (int)tb.len;
}
