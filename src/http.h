/* SPDX-License-Identifier: MIT */
/*
 * This file contains the API's view of one HTTP request and its response.
 *
 * nginx hands a request to a worker as FastCGI parameters (CGI/1.1 names)
 * plus a body stream.  http_req_parse() turns those into typed fields:
 * method, path segments and query parameters (strictly percent-decoded: a
 * '%' not followed by two hex digits, or an encoded NUL, is a 400), the
 * headers the API uses, and the body, whose CONTENT_LENGTH is parsed as
 * digits only and checked against the limit before a byte is read.  The
 * request owns every allocation (http_req_free()); nothing survives into
 * the next request.  The response side builds the CGI header block and a
 * JSON body; the worker writes it out.
 */
#ifndef EGW_HTTP_H
#define EGW_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_SEGMENTS 8
#define HTTP_MAX_QUERY 16
#define HTTP_REQUEST_ID_MAX 64
#define HTTP_MAX_URI 4096
/* Stands in for a method longer than any route's: not a token, so it
 * matches none, and the path still decides between 404 and 405. */
#define HTTP_METHOD_TOO_LONG "(too long)"

struct http_param {
	char *name;
	char *value;
};

/* Reads up to @len body bytes into @buf; returns bytes read, 0 at EOF. */
typedef int (*http_read_fn)(void *ctx, char *buf, int len);

/* Looks up a CGI parameter; returns NULL when absent. */
typedef const char *(*http_getenv_fn)(void *ctx, const char *name);

struct http_req {
	char method[16];		/* HTTP_METHOD_TOO_LONG: no route's */
	char *path;			/* raw path as sent, without the query */
	size_t n_segments;		/* decoded path segments */
	char *segments[HTTP_MAX_SEGMENTS];
	bool path_too_deep;		/* more segments than any route: 404 */
	bool query_invalid;		/* the parse failed in the query */
	size_t n_query;			/* decoded query parameters, in order */
	struct http_param query[HTTP_MAX_QUERY];
	char *content_type;		/* NULL when absent */
	char *authorization;		/* NULL when absent */
	bool has_length;		/* CONTENT_LENGTH present and non-empty */
	size_t content_length;
	char *body;			/* NUL-terminated copy, NULL when none */
	size_t body_len;
	char request_id[HTTP_REQUEST_ID_MAX + 1];
	bool request_id_generated;

	/* Why parsing failed, for the error body (static strings). */
	const char *error_message;
	const char *error_field;
};

/* Extra response headers the API sets (values are copied). */
#define HTTP_RESP_MAX_HEADERS 4

struct http_resp {
	int status;
	const char *content_type;	/* default application/json */
	char *body;			/* malloc'd, owned, NUL-terminated */
	size_t body_len;
	size_t body_cap;		/* bytes allocated, for appends */
	size_t n_headers;
	char *headers[HTTP_RESP_MAX_HEADERS];	/* "Name: value" */
};

/**
 * http_req_init() - zero a request before parsing
 * @req: the request
 */
void http_req_init(struct http_req *req);

/**
 * http_req_parse() - fill @req from CGI parameters; the body is not read
 * @req: initialised request
 * @getenv_fn: parameter lookup (FCGX_GetParam in the worker)
 * @env: context for @getenv_fn
 *
 * Always sets the request id (taken from X-Request-Id when it matches
 * [A-Za-z0-9._-]{1,64}, generated otherwise), even on failure.
 *
 * Returns: 0; EGW_E_BADREQUEST for a malformed URI, path or query (with
 * error_message / error_field set; for the query, query_invalid is set
 * too, and the method, headers and path are whole, so the caller can find
 * the route and check the token first); EGW_E_NOMEM.
 */
int http_req_parse(struct http_req *req, http_getenv_fn getenv_fn, void *env);

/**
 * http_req_read_body() - read the body announced by CONTENT_LENGTH
 * @req: a parsed request
 * @max_body: the largest body accepted (EGW_MAX_BODY)
 * @required: whether the route needs a body (411 when no length is given)
 * @read_fn: body reader (FCGX_GetStr in the worker)
 * @rctx: context for @read_fn
 *
 * Checks the Content-Length against @max_body before reading and the
 * Content-Type (application/json, optional parameters) when a body is
 * present.  A body shorter than announced is a 400.
 *
 * Returns: 0; EGW_E_LENGTH, EGW_E_TOOLARGE, EGW_E_MEDIATYPE,
 * EGW_E_BADREQUEST or EGW_E_NOMEM.
 */
int http_req_read_body(struct http_req *req, size_t max_body, bool required,
    http_read_fn read_fn, void *rctx);

/**
 * http_req_free() - release everything @req owns (not @req itself)
 */
void http_req_free(struct http_req *req);

/**
 * http_query_get() - value of query parameter @name
 *
 * Returns: the decoded value (owned by @req), or NULL when absent.
 */
const char *http_query_get(const struct http_req *req, const char *name);

/**
 * http_query_check() - reject parameters not in @allowed
 * @req: the request
 * @allowed: NULL-terminated list of accepted names (may be empty)
 *
 * Returns: 0, or EGW_E_BADREQUEST with error_message/error_field set.
 */
int http_query_check(struct http_req *req, const char *const *allowed);

/**
 * http_query_uint() - parse an optional unsigned query parameter
 * @req: the request
 * @name: parameter name
 * @min: smallest accepted value
 * @max: largest accepted value
 * @def: value when absent
 * @out: result
 *
 * Returns: 0, or EGW_E_BADREQUEST (digits only, within [min, max]).
 */
int http_query_uint(struct http_req *req, const char *name, uint64_t min,
    uint64_t max, uint64_t def, uint64_t *out);

/**
 * http_parse_content_length() - parse a Content-Length value strictly
 * @text: the value (digits only, no sign, no spaces, at most 18 digits)
 * @out: the length
 *
 * Returns: 0 or EGW_E_BADREQUEST.
 */
int http_parse_content_length(const char *text, size_t *out);

/**
 * http_percent_decode() - decode %XX escapes strictly
 * @in: encoded text
 * @len: bytes of @in
 *
 * '+' stays a plus sign, in the query too (RFC 3986; HTML forms' '+' for
 * a space does not apply: no value the API takes has a space, and a
 * time's offset, "+01:00", must arrive as sent).
 *
 * Returns: a malloc'd NUL-terminated string owned by the caller, or NULL
 * when @in has a bad escape, an encoded or raw NUL, or memory ran out.
 */
char *http_percent_decode(const char *in, size_t len);

/**
 * http_valid_request_id() - whether @id is [A-Za-z0-9._-]{1,64}
 */
bool http_valid_request_id(const char *id);

/**
 * http_content_type_is_json() - "application/json" with optional
 * parameters, case-insensitive
 */
bool http_content_type_is_json(const char *ct);

/**
 * http_resp_init() / http_resp_free() - response lifecycle
 */
void http_resp_init(struct http_resp *resp);
void http_resp_free(struct http_resp *resp);

/**
 * http_resp_set_body() - take ownership of a malloc'd body
 * @resp: the response
 * @status: HTTP status
 * @body: malloc'd text (ownership passes to @resp)
 *
 * Returns: 0, or EGW_E_NOMEM when @body is NULL (an allocation failed);
 * the body held before is then dropped too.
 */
int http_resp_set_body(struct http_resp *resp, int status, char *body);

/**
 * http_resp_json() - serialise @obj as the body and release it
 * @resp: the response
 * @status: HTTP status
 * @obj: a json-c object; its reference is consumed (json_object_put)
 *
 * Returns: 0 or EGW_E_NOMEM.
 */
struct json_object;
int http_resp_json(struct http_resp *resp, int status, struct json_object *obj);

/**
 * http_resp_append() - add @len bytes of text to the end of the body
 * @resp: the response; its body may be empty or set by earlier calls
 * @text: the bytes (copied)
 * @len: how many
 *
 * For bodies built piece by piece (a list written policy by policy), so
 * that no document tree of the whole body is ever held.  The body grows
 * geometrically and stays NUL-terminated; it has no size cap of its own.
 *
 * Returns: 0, or EGW_E_NOMEM (the body is left as it was).
 */
int http_resp_append(struct http_resp *resp, const char *text, size_t len);

/**
 * http_resp_append_json() - append @obj serialised as http_resp_json()
 * does, then release it
 * @resp: the response
 * @obj: a json-c value; its reference is consumed (json_object_put)
 *
 * Returns: 0, or EGW_E_NOMEM (also when @obj is NULL).
 */
int http_resp_append_json(struct http_resp *resp, struct json_object *obj);

/**
 * http_resp_add_header() - add "Name: value" (CR/LF in @value are refused)
 *
 * Returns: 0, EGW_E_INVALID or EGW_E_NOMEM (also when the table is full).
 */
int http_resp_add_header(struct http_resp *resp, const char *name,
    const char *value);

/**
 * http_resp_error() - a JSON error body for @err
 * @resp: the response (any earlier body is replaced)
 * @err: an enum egw_err; gives the status and code token
 * @message: NULL for err_message(@err)
 * @field: the offending field, or NULL
 * @request_id: echoed in the body
 *
 * Body: {"error":{"code","message","field","details":[]},"request_id"}.
 *
 * Returns: 0 or EGW_E_NOMEM.
 */
int http_resp_error(struct http_resp *resp, int err, const char *message,
    const char *field, const char *request_id);

/**
 * http_status_text() - reason phrase for a status code
 *
 * Returns: a static string ("OK", "Not Found", ...).
 */
const char *http_status_text(int status);

/**
 * http_resp_head() - the CGI header block for @resp
 * @resp: the response
 * @request_id: echoed as X-Request-Id
 * @buf: output
 * @size: bytes in @buf
 *
 * Returns: bytes written (excluding the NUL), or -1 when @buf is too small.
 */
int http_resp_head(const struct http_resp *resp, const char *request_id,
    char *buf, size_t size);

#endif
