/* SPDX-License-Identifier: MIT */
/*
 * This file contains the table of schema migrations built from sql/.
 *
 * scripts/embed-sql.sh generates migrations.c from sql/NNN_name.sql in
 * ascending order; store.c applies every entry whose version is above the
 * database's PRAGMA user_version.
 */
#ifndef EGW_MIGRATIONS_H
#define EGW_MIGRATIONS_H

#include <stddef.h>

struct store_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct store_migration store_migrations[];
extern const size_t store_n_migrations;

#endif
