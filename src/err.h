/* SPDX-License-Identifier: MIT */
/*
 * This file contains the project's error codes.
 *
 * Internal APIs return 0 or a negative enum egw_err.  err.c is the only
 * place that turns a code into a message, an HTTP status and the stable
 * machine-readable token clients see in {"error":{"code":...}}; tokens are a
 * contract and never change once released.
 */
#ifndef EGW_ERR_H
#define EGW_ERR_H

enum egw_err {
	EGW_OK = 0,
	EGW_E_INTERNAL = -1,	/* a bug or an unexpected library failure */
	EGW_E_NOMEM = -2,
	EGW_E_INVALID = -3,	/* input failed validation (422) */
	EGW_E_BADREQUEST = -4,	/* malformed request: bad JSON, bad query (400) */
	EGW_E_NOTFOUND = -5,
	EGW_E_CONFLICT = -6,	/* revision or generation mismatch (409) */
	EGW_E_BUSY = -7,	/* database stayed locked past the timeout */
	EGW_E_DB = -8,		/* SQLite failed for another reason */
	EGW_E_IO = -9,		/* a system call failed; see errno */
	EGW_E_UNAVAILABLE = -10, /* a dependency is down (503) */
	EGW_E_UNAUTHORIZED = -11,
	EGW_E_FORBIDDEN = -12,
	EGW_E_TOOLARGE = -13,
	EGW_E_MEDIATYPE = -14,
	EGW_E_METHOD = -15,
	EGW_E_LENGTH = -16,	/* Content-Length missing (411) */
	EGW_E_NFT = -17,	/* libnftables or the kernel refused a ruleset */
	EGW_E_CONFIG = -18,	/* a setting has a bad value */
	EGW_E_SCHEMA = -19,	/* database schema newer than this program */
	EGW_E_TIMEOUT = -20,
	EGW_E_URITOOLONG = -21,	/* request URI over HTTP_MAX_URI (414) */
	EGW_E_BADROW = -22,	/* a stored row does not parse (edited by hand) */
	EGW_E__LAST = -23
};

/**
 * err_token() - stable machine-readable token for an error code
 * @err: an enum egw_err value (0 or negative)
 *
 * Returns: a static string such as "not_found"; "internal" for unknown codes.
 */
const char *err_token(int err);

/**
 * err_message() - one-line human description of an error code
 * @err: an enum egw_err value
 *
 * Returns: a static string.
 */
const char *err_message(int err);

/**
 * err_http_status() - HTTP status a client sees for an error code
 * @err: an enum egw_err value
 *
 * Returns: 200 for EGW_OK, otherwise a 4xx/5xx status.
 */
int err_http_status(int err);

#endif
