/* SPDX-License-Identifier: MIT */
/*
 * This file contains digest_sha256_hex() (see digest.h).
 */
#include "digest.h"
#include "err.h"
#include "textbuf.h"

#include <openssl/evp.h>
#include <pthread.h>

/* Fetched once: EVP_sha256() makes OpenSSL 3 look the provider's
 * implementation up again on every digest, which cost twice the hashing
 * itself, and every authenticated request hashes its token. */
static pthread_once_t digest_sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *digest_sha256;

static void
digest_sha256_fetch(void)
{
	digest_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int
digest_sha256_hex(const void *data, size_t len,
    char out[DIGEST_SHA256_HEX_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	struct textbuf tb;
	unsigned int n = 0;

	pthread_once(&digest_sha256_once, digest_sha256_fetch);
	/* Should the fetch have failed, the slow way still works. */
	if (EVP_Digest(data, len, md, &n, digest_sha256 != NULL ? digest_sha256
	    : EVP_sha256(), NULL) != 1 || n != 32)
		return EGW_E_INTERNAL;
	textbuf_init(&tb, out, DIGEST_SHA256_HEX_LEN + 1);
	return textbuf_put_hex(&tb, md, 32) ? 0 : EGW_E_INTERNAL;
}
