/* SPDX-License-Identifier: MIT */
/*
 * This file contains bearer-token authentication for the API.
 *
 * A token is "egw_" followed by 43 base64url characters (32 random bytes);
 * it is shown once when minted and only its SHA-256 (libcrypto EVP) is
 * stored.  A request presents "Authorization: Bearer <token>"; the worker
 * hashes it and looks the hash up, so the token never sits in the database
 * or a log line.  A change's token is decided by the store, inside the
 * change's transaction (auth_authorize_write()); the worker only turns
 * away tokens that could not pass (auth_write_filter()).  Scopes are
 * read and write; mutations need write, reads need read.  Missing or
 * unknown token: 401; known token without the scope: 403.
 */
#ifndef EGW_AUTH_H
#define EGW_AUTH_H

#include "store.h"
#include "store_token.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_TOKEN_LEN 47		/* "egw_" + 43, excluding the NUL */
#define AUTH_PRESENTED_MAX 256		/* longest Authorization token read */

#define AUTH_SCOPE_READ 1u
#define AUTH_SCOPE_WRITE 2u

/**
 * auth_token_generate() - a new random token
 * @out: AUTH_TOKEN_LEN + 1 bytes
 *
 * Returns: 0, or EGW_E_IO when the kernel gives no randomness.
 */
int auth_token_generate(char out[AUTH_TOKEN_LEN + 1]);

/**
 * auth_token_hash() - hex SHA-256 of @token
 * @token: NUL-terminated
 * @out: STORE_TOKEN_HASH_LEN + 1 bytes
 *
 * Returns: 0 or EGW_E_INTERNAL (libcrypto failed).
 */
int auth_token_hash(const char *token, char out[STORE_TOKEN_HASH_LEN + 1]);

/**
 * auth_scopes_parse() - "read", "write", "read,write" (or "write,read")
 * @text: the scopes
 * @out: AUTH_SCOPE_* bits
 *
 * Returns: 0 or EGW_E_INVALID.
 */
int auth_scopes_parse(const char *text, unsigned *out);

/**
 * auth_scopes_name() - canonical text of scope bits ("read,write")
 *
 * Returns: a static string, "" for none.
 */
const char *auth_scopes_name(unsigned scopes);

/**
 * auth_bearer() - extract the token from an Authorization header value
 * @header: the value (may be NULL)
 * @out: AUTH_PRESENTED_MAX + 1 bytes
 *
 * Returns: 0, or EGW_E_UNAUTHORIZED when the header is absent, not
 * "Bearer <token>" or the token has characters outside base64url/base64.
 */
int auth_bearer(const char *header, char out[AUTH_PRESENTED_MAX + 1]);

/**
 * auth_check() - authenticate a request for a needed scope
 * @st: connection
 * @header: the Authorization header value (may be NULL)
 * @need: AUTH_SCOPE_READ or AUTH_SCOPE_WRITE
 * @name: the token's name on success (STORE_TOKEN_NAME_MAX + 1 bytes)
 *
 * Returns: 0, EGW_E_UNAUTHORIZED, EGW_E_FORBIDDEN, EGW_E_BUSY or EGW_E_DB.
 */
int auth_check(struct store *st, const char *header, unsigned need,
    char name[STORE_TOKEN_NAME_MAX + 1]);

/**
 * auth_presented_hash() - the hash of the token an Authorization header
 * presents, without looking it up
 * @header: the value (may be NULL)
 * @hash: STORE_TOKEN_HASH_LEN + 1 bytes
 *
 * Returns: 0, EGW_E_UNAUTHORIZED (as auth_bearer()) or EGW_E_INTERNAL.
 */
int auth_presented_hash(const char *header,
    char hash[STORE_TOKEN_HASH_LEN + 1]);

/**
 * auth_check_hash() - auth_check() for a token already hashed
 * Returns: as auth_check().
 */
int auth_check_hash(struct store *st, const char *hash, unsigned need,
    char name[STORE_TOKEN_NAME_MAX + 1]);

/**
 * auth_hash_valid() - whether @hash is a token hash as auth_token_hash()
 * writes it: 64 lowercase hex digits
 */
bool auth_hash_valid(const char *hash);

/**
 * auth_write_actor() - the actor of a change asked for with the token
 * whose hash is @hash: the store checks it (auth_authorize_write()) inside
 * the change's transaction and records the name it finds
 * @hash: kept by the caller while the actor is used
 */
struct store_actor auth_write_actor(const char *hash, const char *request_id);

/**
 * auth_authorize_write() - a store_actor check: the token whose hash is
 * @credential (a NUL-terminated hex string) has the write scope
 * @actor: receives "api:<token name>"
 *
 * Run by the store inside the change's transaction, so that the token is
 * valid when the change commits.
 * Returns: as auth_check().
 */
int auth_authorize_write(struct store *st, const void *credential,
    char *actor, size_t size);

/* How long a worker trusts its own earlier finding that a token may write
 * (auth_write_filter()). */
#define AUTH_WRITE_FILTER_MS 10000

/**
 * auth_write_filter() - turn away a change whose token cannot pass the
 * store's check, before its body is read
 * @st: connection (used only when the token is not remembered)
 * @hash: the presented token's hash
 * @now_ms: timefmt_monotonic_ms()
 * @may_read: set when the token passes: whether it has the read scope too
 *
 * A filter, not the decision: so that clients without a token that may
 * write never reach the writer's transactions, it looks the token up, and
 * remembers (per process, for AUTH_WRITE_FILTER_MS) the tokens found with
 * the write scope, which then pass without a read of the database.  A
 * token revoked meanwhile passes here and is refused by the store.  A
 * token's scopes never change (tokens are minted and revoked, not
 * edited), so the remembered @may_read is the token's own.
 * Returns: as auth_check().
 */
int auth_write_filter(struct store *st, const char *hash, int64_t now_ms,
    bool *may_read);

#endif
