/* SPDX-License-Identifier: MIT */
/*
 * This file contains digest_sha256_hex(): the one libcrypto call the
 * programs share (API token hashes, the NATS bridge's record of the
 * messages it acted on).
 */
#ifndef EGW_DIGEST_H
#define EGW_DIGEST_H

#include <stddef.h>

#define DIGEST_SHA256_HEX_LEN 64

/**
 * digest_sha256_hex() - lower-case hex SHA-256 of @len bytes
 * @data: the bytes (any, NULs included)
 * @out: DIGEST_SHA256_HEX_LEN + 1 bytes
 *
 * Returns: 0 or EGW_E_INTERNAL (libcrypto failed).
 */
int digest_sha256_hex(const void *data, size_t len,
    char out[DIGEST_SHA256_HEX_LEN + 1]);

#endif
