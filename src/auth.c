/* SPDX-License-Identifier: MIT */
/*
 * This file contains token minting, hashing and checking (see auth.h).
 */
#include "auth.h"
#include "digest.h"
#include "err.h"

#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

int
auth_token_generate(char out[AUTH_TOKEN_LEN + 1])
{
	static const char b64url[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[33];	/* 32 random bytes, padded to a multiple of 3 */
	size_t o = 4;

	if (getrandom(raw, 32, 0) != 32)
		return EGW_E_IO;
	raw[32] = 0;
	memcpy(out, "egw_", 4);
	for (size_t i = 0; i < 33; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];

		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
		out[o++] = b64url[v & 63];
	}
	/* 44 characters encode 33 bytes; the last one carries only padding. */
	out[AUTH_TOKEN_LEN] = '\0';
	return 0;
}

int
auth_token_hash(const char *token, char out[STORE_TOKEN_HASH_LEN + 1])
{
	_Static_assert(STORE_TOKEN_HASH_LEN == DIGEST_SHA256_HEX_LEN,
	    "a token hash is a hex SHA-256");
	return digest_sha256_hex(token, strlen(token), out);
}

int
auth_scopes_parse(const char *text, unsigned *out)
{
	if (strcmp(text, "read") == 0)
		*out = AUTH_SCOPE_READ;
	else if (strcmp(text, "write") == 0)
		*out = AUTH_SCOPE_WRITE;
	else if (strcmp(text, "read,write") == 0 || strcmp(text, "write,read") == 0)
		*out = AUTH_SCOPE_READ | AUTH_SCOPE_WRITE;
	else
		return EGW_E_INVALID;
	return 0;
}

const char *
auth_scopes_name(unsigned scopes)
{
	switch (scopes & (AUTH_SCOPE_READ | AUTH_SCOPE_WRITE)) {
	case AUTH_SCOPE_READ: return "read";
	case AUTH_SCOPE_WRITE: return "write";
	case AUTH_SCOPE_READ | AUTH_SCOPE_WRITE: return "read,write";
	}
	return "";
}

int
auth_bearer(const char *header, char out[AUTH_PRESENTED_MAX + 1])
{
	size_t n;

	if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
		return EGW_E_UNAUTHORIZED;
	header += 7;
	while (*header == ' ')
		header++;
	n = strspn(header, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-._~+/");
	while (header[n] == '=')
		n++;
	if (n == 0 || n > AUTH_PRESENTED_MAX)
		return EGW_E_UNAUTHORIZED;
	/* Trailing spaces are tolerated; anything else is not a token68. */
	if (header[n + strspn(header + n, " ")] != '\0')
		return EGW_E_UNAUTHORIZED;
	memcpy(out, header, n);
	out[n] = '\0';
	return 0;
}

/*
 * The hashes of the last few tokens this thread was presented.  A client
 * sends the same token with every request, and hashing it was a tenth of
 * a policy read's instructions.  Only what SHA-256 gives is kept, never a
 * decision: whether the token is known and what it may do is looked up
 * each time.  The presented token is compared in constant time, so how
 * long a comparison takes tells nothing of a kept token's characters.
 */
#define AUTH_HASH_MEMO_SLOTS 4

static _Thread_local struct auth_hash_memo {
	size_t len;			/* 0: unused */
	char token[AUTH_PRESENTED_MAX];
	char hash[STORE_TOKEN_HASH_LEN + 1];
} auth_hash_memo[AUTH_HASH_MEMO_SLOTS];
static _Thread_local unsigned auth_hash_memo_next;

static int
auth_presented_token_hash(const char *token, size_t len,
    char hash[STORE_TOKEN_HASH_LEN + 1])
{
	struct auth_hash_memo *m;
	int rc;

	for (unsigned i = 0; i < AUTH_HASH_MEMO_SLOTS; i++) {
		m = &auth_hash_memo[i];
		if (m->len == len && CRYPTO_memcmp(m->token, token, len) == 0) {
			memcpy(hash, m->hash, sizeof(m->hash));
			return 0;
		}
	}
	if ((rc = digest_sha256_hex(token, len, hash)) != 0)
		return rc;
	m = &auth_hash_memo[auth_hash_memo_next++ % AUTH_HASH_MEMO_SLOTS];
	/* A shorter token must not leave the end of the one it replaces. */
	explicit_bzero(m->token, sizeof(m->token));
	memcpy(m->token, token, len);
	memcpy(m->hash, hash, sizeof(m->hash));
	m->len = len;
	return 0;
}

int
auth_presented_hash(const char *header, char hash[STORE_TOKEN_HASH_LEN + 1])
{
	char token[AUTH_PRESENTED_MAX + 1];
	int rc;

	if ((rc = auth_bearer(header, token)) != 0)
		return rc;
	rc = auth_presented_token_hash(token, strlen(token), hash);
	explicit_bzero(token, sizeof(token));
	return rc;
}

/* As auth_check_hash(), and the token's scopes when it passes. */
static int
auth_check_scopes(struct store *st, const char *hash, unsigned need,
    char name[STORE_TOKEN_NAME_MAX + 1], unsigned *scopes)
{
	struct store_token t;
	int rc;

	if ((rc = store_token_lookup(st, hash, &t)) != 0)
		return rc == EGW_E_NOTFOUND ? EGW_E_UNAUTHORIZED : rc;
	if (auth_scopes_parse(t.scopes, scopes) != 0)
		return EGW_E_FORBIDDEN;
	if ((*scopes & need) != need)
		return EGW_E_FORBIDDEN;
	memcpy(name, t.name, sizeof(t.name));
	return 0;
}

int
auth_check_hash(struct store *st, const char *hash, unsigned need,
    char name[STORE_TOKEN_NAME_MAX + 1])
{
	unsigned scopes;

	return auth_check_scopes(st, hash, need, name, &scopes);
}

int
auth_check(struct store *st, const char *header, unsigned need,
    char name[STORE_TOKEN_NAME_MAX + 1])
{
	char hash[STORE_TOKEN_HASH_LEN + 1];
	int rc;

	if ((rc = auth_presented_hash(header, hash)) != 0)
		return rc;
	return auth_check_hash(st, hash, need, name);
}

int
auth_authorize_write(struct store *st, const void *credential, char *actor,
    size_t size)
{
	char name[STORE_TOKEN_NAME_MAX + 1];
	int rc, n;

	if (credential == NULL)
		return EGW_E_UNAUTHORIZED;
	if ((rc = auth_check_hash(st, credential, AUTH_SCOPE_WRITE, name)) != 0)
		return rc;
	n = snprintf(actor, size, "api:%s", name);
	return n < 0 || (size_t)n >= size ? EGW_E_INTERNAL : 0;
}

bool
auth_hash_valid(const char *hash)
{
	size_t n = strspn(hash, "0123456789abcdef");

	return n == STORE_TOKEN_HASH_LEN && hash[n] == '\0';
}

struct store_actor
auth_write_actor(const char *hash, const char *request_id)
{
	struct store_actor a = { .request_id = request_id,
	    .authorize = auth_authorize_write, .credential = hash };

	return a;
}

/*
 * Tokens this process found with the write scope, and when.  Only tokens
 * that passed are kept: a client trying tokens cannot fill it, and an
 * unknown or read-only token is looked up every time.
 */
#define AUTH_WRITE_FILTER_SLOTS 8

static struct {
	bool used;
	bool may_read;
	int64_t checked_ms;
	char hash[STORE_TOKEN_HASH_LEN + 1];
} auth_writers[AUTH_WRITE_FILTER_SLOTS];
static unsigned auth_writers_next;

int
auth_write_filter(struct store *st, const char *hash, int64_t now_ms,
    bool *may_read)
{
	char name[STORE_TOKEN_NAME_MAX + 1];
	unsigned i, free_slot = AUTH_WRITE_FILTER_SLOTS, scopes;
	int rc;

	for (i = 0; i < AUTH_WRITE_FILTER_SLOTS; i++) {
		if (!auth_writers[i].used)
			free_slot = free_slot < i ? free_slot : i;
		else if (strcmp(auth_writers[i].hash, hash) == 0)
			break;
	}
	/* A clock behind the finding is not trusted either. */
	if (i < AUTH_WRITE_FILTER_SLOTS &&
	    now_ms >= auth_writers[i].checked_ms &&
	    now_ms - auth_writers[i].checked_ms < AUTH_WRITE_FILTER_MS) {
		*may_read = auth_writers[i].may_read;
		return 0;
	}
	rc = auth_check_scopes(st, hash, AUTH_SCOPE_WRITE, name, &scopes);
	if (rc != 0) {
		if (i < AUTH_WRITE_FILTER_SLOTS)
			auth_writers[i].used = false;
		return rc;
	}
	*may_read = (scopes & AUTH_SCOPE_READ) != 0;
	if (!auth_hash_valid(hash))
		return 0;		/* found, but not one to keep */
	if (i == AUTH_WRITE_FILTER_SLOTS)
		i = free_slot < AUTH_WRITE_FILTER_SLOTS ? free_slot :
		    auth_writers_next++ % AUTH_WRITE_FILTER_SLOTS;
	auth_writers[i].used = true;
	auth_writers[i].may_read = *may_read;
	auth_writers[i].checked_ms = now_ms;
	memcpy(auth_writers[i].hash, hash, STORE_TOKEN_HASH_LEN + 1);
	return 0;
}
