/* SPDX-License-Identifier: MIT */
/*
 * This file contains the single mapping from error codes to text and HTTP.
 *
 * Keeping the table here, indexed by -code, means a new code cannot be added
 * without giving it a token, a message and a status: the static assert below
 * fails the build otherwise.
 */
#include "err.h"

#include <stddef.h>

struct err_desc {
	const char *token;
	const char *message;
	int http_status;
};

static const struct err_desc err_table[] = {
	[0] = { "ok", "success", 200 },
	[-EGW_E_INTERNAL] = { "internal", "internal error", 500 },
	[-EGW_E_NOMEM] = { "internal", "out of memory", 500 },
	[-EGW_E_INVALID] = { "invalid_policy", "the request failed validation", 422 },
	[-EGW_E_BADREQUEST] = { "bad_request", "the request is malformed", 400 },
	[-EGW_E_NOTFOUND] = { "not_found", "no such resource", 404 },
	[-EGW_E_CONFLICT] = { "conflict", "the resource changed since it was read", 409 },
	[-EGW_E_BUSY] = { "busy", "the database is busy; retry", 503 },
	[-EGW_E_DB] = { "internal", "database error", 500 },
	[-EGW_E_IO] = { "internal", "input/output error", 500 },
	[-EGW_E_UNAVAILABLE] = { "unavailable", "a dependency is unavailable", 503 },
	[-EGW_E_UNAUTHORIZED] = { "unauthorized", "a valid bearer token is required", 401 },
	[-EGW_E_FORBIDDEN] = { "forbidden", "the token lacks the required scope", 403 },
	[-EGW_E_TOOLARGE] = { "payload_too_large", "the request body is too large", 413 },
	[-EGW_E_MEDIATYPE] = { "unsupported_media_type", "the body must be application/json", 415 },
	[-EGW_E_METHOD] = { "method_not_allowed", "method not allowed on this resource", 405 },
	[-EGW_E_LENGTH] = { "length_required", "Content-Length is required", 411 },
	[-EGW_E_NFT] = { "apply_failed", "the ruleset was refused", 500 },
	[-EGW_E_CONFIG] = { "bad_config", "invalid configuration", 500 },
	[-EGW_E_SCHEMA] = { "internal", "database schema is newer than this program", 500 },
	[-EGW_E_TIMEOUT] = { "timeout", "the operation timed out", 504 },
	/* nginx answers 414 uri_too_long past its header buffer; the
	 * worker's shorter limit answers the same. */
	[-EGW_E_URITOOLONG] = { "uri_too_long", "the request URI is too long", 414 },
	[-EGW_E_BADROW] = { "internal", "a stored row does not parse", 500 },
};

_Static_assert(sizeof(err_table) / sizeof(err_table[0]) == (size_t)-EGW_E__LAST,
    "every enum egw_err needs an err_table entry");

static const struct err_desc *
err_lookup(int err)
{
	if (err > 0 || err <= EGW_E__LAST || err_table[-err].token == NULL)
		return &err_table[-EGW_E_INTERNAL];
	return &err_table[-err];
}

const char *
err_token(int err)
{
	return err_lookup(err)->token;
}

const char *
err_message(int err)
{
	return err_lookup(err)->message;
}

int
err_http_status(int err)
{
	return err_lookup(err)->http_status;
}
