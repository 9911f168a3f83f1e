/* SPDX-License-Identifier: MIT */
/*
 * This file contains database helpers shared by the unit tests.
 */
#ifndef EGW_TESTDB_H
#define EGW_TESTDB_H

#include <stdint.h>

struct store;

/**
 * testdb_int() - the first column of the first row of @sql
 * @st: an open store
 * @sql: a query returning one integer
 *
 * Returns: the value; -1 when there is no row, -2 when @sql does not prepare.
 */
int64_t testdb_int(struct store *st, const char *sql);

/**
 * testdb_text() - the first column of the first row of @sql, as text
 * Returns: a copy the caller frees, or NULL (no row, NULL, no prepare).
 */
char *testdb_text(struct store *st, const char *sql);

#endif
