/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-admin, the operator's command for the state
 * database: check the configuration, create or migrate the database.
 *
 * It runs with the same environment as the daemons so "egw-admin
 * check-config" shows exactly what they would use.
 *
 * Run as root, it does its database work as the owner of the database's
 * directory (EGW_USER's state directory, normally): SQLite creates the
 * database, its -wal and -shm files as whoever opens it, and a file of
 * root's there would stop the gateway's components from writing.  Root's
 * SQLite would also follow whatever links that user put at those names.
 */
#include "admin_token.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "privdrop.h"
#include "store.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
usage(void)
{
	fprintf(stderr,
	    "usage: egw-admin check-config   print the effective configuration\n"
	    "       egw-admin migrate        create or upgrade the database\n"
	    "       egw-admin schema-version print the database's schema version\n"
	    "       egw-admin token create NAME read|write|read,write\n"
	    "       egw-admin token list | token revoke NAME\n");
}

static int
cmd_check_config(const struct config *cfg)
{
	struct json_object *o = json_object_new_object();
	char buf[NETADDR_PREFIX_STRLEN];
	struct json_object *dns = json_object_new_array();

	json_object_object_add(o, "NATS_URL", json_object_new_string(cfg->nats_url));
	json_object_object_add(o, "NFT_BINARY", json_object_new_string(cfg->nft_binary));
	json_object_object_add(o, "DRY_RUN", json_object_new_boolean(cfg->dry_run));
	json_object_object_add(o, "EGW_STATE_DIR", json_object_new_string(cfg->state_dir));
	json_object_object_add(o, "EGW_DB_PATH", json_object_new_string(cfg->db_path));
	json_object_object_add(o, "EGW_RUN_DIR", json_object_new_string(cfg->run_dir));
	json_object_object_add(o, "EGW_FCGI_SOCKET", json_object_new_string(cfg->fcgi_socket));
	json_object_object_add(o, "EGW_APPLIER_SOCKET",
	    json_object_new_string(cfg->applier_socket));
	json_object_object_add(o, "EGW_HTTP_LISTEN", json_object_new_string(cfg->http_listen));
	json_object_object_add(o, "EGW_WORKERS", json_object_new_int((int)cfg->workers));
	json_object_object_add(o, "EGW_SPARE_WORKERS",
	    json_object_new_int((int)cfg->spare_workers));
	json_object_object_add(o, "EGW_AUTH", json_object_new_string(cfg->auth ? "on" : "off"));
	json_object_object_add(o, "EGW_NFLOG_GROUP", json_object_new_int(cfg->nflog_group));
	for (size_t i = 0; i < cfg->n_dns_servers; i++)
		json_object_array_add(dns, json_object_new_string(
		    netaddr_format_prefix(&cfg->dns_servers[i], buf, false)));
	json_object_object_add(o, "EGW_DNS_SERVERS", dns);
	json_object_object_add(o, "EGW_IFACE_TEMPLATE",
	    json_object_new_string(cfg->iface_template));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return 0;
}

/*
 * As root: become the owner of the database's directory when that is not
 * root (with its primary group), dropping every capability, before SQLite
 * opens anything.  A directory of root's is left to root, as before.
 * Returns 0, or 1 (reported) when the drop fails.
 */
static int
admin_become_db_owner(const struct config *cfg)
{
	char dir[PATH_MAX], *slash;
	struct passwd *pw;
	struct stat sb;
	gid_t gid;

	if (geteuid() != 0)
		return 0;
	snprintf(dir, sizeof(dir), "%s", cfg->db_path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return 0;
	if (slash == dir)
		slash[1] = '\0';	/* the database is in / */
	else
		*slash = '\0';
	/* A missing directory: store_open() reports it as before. */
	if (stat(dir, &sb) != 0 || sb.st_uid == 0)
		return 0;
	pw = getpwuid(sb.st_uid);
	gid = pw != NULL ? pw->pw_gid : sb.st_gid;
	if (privdrop_apply(sb.st_uid, gid, false) != 0) {
		fprintf(stderr, "egw-admin: cannot become uid %u, the owner of %s:"
		    " %s\n", (unsigned)sb.st_uid, dir, strerror(errno));
		return 1;
	}
	return 0;
}

/*
 * A database this user cannot write (a file of root's from an earlier run
 * of egw-admin as root) opens read-only without a word, and the gateway
 * then fails every write: say so at the migration, which the supervisor
 * runs before it starts anything.
 */
static int
admin_check_writable(struct store *st, const char *path)
{
	char sql[96];
	int rc;

	/* A write that changes nothing and is rolled back: BEGIN IMMEDIATE
	 * alone succeeds on a read-only file in WAL mode. */
	snprintf(sql, sizeof(sql), "BEGIN IMMEDIATE; PRAGMA user_version = %d;"
	    " ROLLBACK;", store_schema_version(st));
	rc = store_exec(st, sql);
	/* Busy: someone else is writing it, so it is writable.  (A failed
	 * write leaves the transaction open; store_close() ends it.) */
	if (rc == 0 || rc == EGW_E_BUSY)
		return 0;
	fprintf(stderr, "egw-admin: %s (or its -wal/-shm file) is not writable by"
	    " uid %u: it must belong to the user the gateway runs as (EGW_USER)"
	    "\n", path, (unsigned)geteuid());
	return 1;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct store *st;
	int rc;

	if (argc < 2) {
		usage();
		return 2;
	}
	config_load_env(&cfg, "egw-admin");
	log_init("admin", cfg.log_level);
	if (strcmp(argv[1], "check-config") == 0) {
		char err[CONFIG_ERR_MAX];

		/* What egw-applier and egw-supervisor refuse too. */
		if (config_check_scope(&cfg, err, sizeof(err)) != 0 ||
		    config_check_listen(&cfg, err, sizeof(err)) != 0) {
			fprintf(stderr, "egw-admin: configuration error: %s\n", err);
			return 2;
		}
		return cmd_check_config(&cfg);
	}
	/* Everything below opens the database. */
	if (admin_become_db_owner(&cfg) != 0)
		return 1;
	if (strcmp(argv[1], "token") == 0)
		return admin_token_main(argc - 1, argv + 1, &cfg);
	if (strcmp(argv[1], "migrate") == 0) {
		if ((rc = store_open(cfg.db_path, &st)) != 0) {
			fprintf(stderr, "egw-admin: %s: %s\n", cfg.db_path, err_message(rc));
			return 1;
		}
		if (admin_check_writable(st, cfg.db_path) != 0) {
			store_close(st);
			return 1;
		}
		printf("schema version %d\n", store_schema_version(st));
		store_close(st);
		return 0;
	}
	if (strcmp(argv[1], "schema-version") == 0) {
		if ((rc = store_open_readonly(cfg.db_path, &st)) != 0) {
			fprintf(stderr, "egw-admin: %s: %s\n", cfg.db_path, err_message(rc));
			return 1;
		}
		printf("%d\n", store_schema_version(st));
		store_close(st);
		return 0;
	}
	usage();
	return 2;
}
