/* SPDX-License-Identifier: MIT */
/*
 * This file contains the unit tests' database helpers (see testdb.h).
 */
#include "testdb.h"
#include "store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

int64_t
testdb_int(struct store *st, const char *sql)
{
	sqlite3_stmt *stmt;
	int64_t v = -1;

	if (sqlite3_prepare_v2(store_db(st), sql, -1, &stmt, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

char *
testdb_text(struct store *st, const char *sql)
{
	sqlite3_stmt *stmt;
	char *v = NULL;

	if (sqlite3_prepare_v2(store_db(st), sql, -1, &stmt, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
		v = strdup((const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	return v;
}
