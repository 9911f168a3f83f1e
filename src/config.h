/* SPDX-License-Identifier: MIT */
/*
 * This file contains the service configuration, read once from the
 * environment.
 *
 * Every program loads the same struct config at start-up.  Each variable is
 * validated into a typed value; the first bad one stops the program with one
 * line naming the variable and what it accepts, before anything is created
 * on disk.  Defaults follow the seed (NATS_URL, NFT_BINARY, DRY_RUN) and the
 * project's EGW_* settings documented in README.md.
 */
#ifndef EGW_CONFIG_H
#define EGW_CONFIG_H

#include "log.h"
#include "netaddr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_PATH_MAX 256
#define CONFIG_MAX_DNS 8
#define CONFIG_MAX_MANAGED 64
#define CONFIG_ERR_MAX 256
/* The writer's socket, EGW_RUN_DIR/CONFIG_WRITER_SOCKET (writer.h). */
#define CONFIG_WRITER_SOCKET "egw-api-writer.sock"
/* Present from a failed flush of the WAL until a checkpoint (flushmark.h). */
#define CONFIG_WRITER_UNSYNCED "egw-api-writer.unsynced"
/*
 * Unix socket paths fit sun_path (108 bytes) with their NUL: a longer
 * EGW_FCGI_SOCKET or EGW_APPLIER_SOCKET, or an EGW_RUN_DIR too long for
 * CONFIG_WRITER_SOCKET under it, is a configuration error.
 */
#define CONFIG_SOCKET_PATH_MAX 107
/* sizeof counts the NUL, which stands in for the '/'. */
#define CONFIG_RUN_DIR_MAX \
	(CONFIG_SOCKET_PATH_MAX - sizeof(CONFIG_WRITER_SOCKET))

struct config {
	char nats_url[CONFIG_PATH_MAX];		/* NATS_URL */
	char nft_binary[CONFIG_PATH_MAX];	/* NFT_BINARY */
	bool dry_run;				/* DRY_RUN */

	char state_dir[CONFIG_PATH_MAX];	/* EGW_STATE_DIR */
	char db_path[CONFIG_PATH_MAX];		/* EGW_DB_PATH */
	char run_dir[CONFIG_PATH_MAX];		/* EGW_RUN_DIR */
	char fcgi_socket[CONFIG_PATH_MAX];	/* EGW_FCGI_SOCKET */
	char applier_socket[CONFIG_PATH_MAX];	/* EGW_APPLIER_SOCKET */
	char http_listen[CONFIG_PATH_MAX];	/* EGW_HTTP_LISTEN, host:port for nginx */
	unsigned workers;			/* EGW_WORKERS */
	unsigned spare_workers;			/* EGW_SPARE_WORKERS */
	size_t max_body;			/* EGW_MAX_BODY, bytes */
	bool auth;				/* EGW_AUTH on|off */
	enum log_level log_level;		/* EGW_LOG_LEVEL */
	unsigned log_flush_ms;			/* EGW_LOG_FLUSH_MS */
	char user[64];				/* EGW_USER, for privilege drop */

	uint16_t nflog_group;			/* EGW_NFLOG_GROUP */
	unsigned log_rate;			/* EGW_LOG_RATE, log lines/s per scenario */
	unsigned log_burst;			/* EGW_LOG_BURST */
	unsigned nflog_rcvbuf;			/* EGW_NFLOG_RCVBUF, bytes */
	unsigned log_retention_s;		/* EGW_LOG_RETENTION */
	unsigned log_max_rows;			/* EGW_LOG_MAX_ROWS */

	size_t n_dns_servers;			/* EGW_DNS_SERVERS */
	struct ip_prefix dns_servers[CONFIG_MAX_DNS];
	size_t n_managed_sources;		/* EGW_MANAGED_SOURCES */
	struct ip_prefix managed_sources[CONFIG_MAX_MANAGED];
	bool managed_none;			/* EGW_MANAGED_SOURCES=none */
	size_t n_managed_ifaces;		/* EGW_MANAGED_IFACES */
	char managed_ifaces[CONFIG_MAX_MANAGED][NETADDR_IFNAMSIZ];
	char iface_template[64];		/* EGW_IFACE_TEMPLATE */

	unsigned reconcile_interval_s;		/* EGW_RECONCILE_INTERVAL */
	unsigned completed_retention_s;		/* EGW_COMPLETED_RETENTION */
	unsigned outbox_retention_s;		/* EGW_OUTBOX_RETENTION */
	unsigned audit_max_age_s;		/* EGW_AUDIT_MAX_AGE */
	bool create_streams;			/* EGW_CREATE_STREAMS */
	bool output_hook;			/* EGW_OUTPUT_HOOK: police host-originated traffic too */
};

/**
 * config_load() - fill @cfg from environment variables
 * @cfg: the configuration to fill (fully overwritten)
 * @getenv_fn: lookup function; getenv in programs, a table in tests
 * @err: on failure, one line "VARIABLE: what is wrong (accepted: ...)"
 * @errlen: size of @err
 *
 * Returns: 0, or EGW_E_CONFIG with @err filled.  Touches nothing on disk.
 */
int config_load(struct config *cfg, const char *(*getenv_fn)(const char *),
    char *err, size_t errlen);

/**
 * config_load_env() - config_load() with the process environment; on a bad
 * value prints the error line to stderr and exits with status 2
 * @cfg: the configuration to fill
 * @prog: program name for the error line
 */
void config_load_env(struct config *cfg, const char *prog);

/**
 * config_parse_port() - a TCP port: 1-65535 in decimal digits, nothing else
 * @v: the text ("4222"; not "4222abc", " 4222", "+4222" or "0")
 * @port: out: the port
 *
 * Returns: 0, or EGW_E_INVALID (@port unchanged).
 */
int config_parse_port(const char *v, uint16_t *port);

/**
 * config_check_scope() - may this configuration enforce?
 * @err: the reason when not
 *
 * An enforcing gateway (DRY_RUN=false) must be told which networks are
 * scenarios' (EGW_MANAGED_SOURCES / EGW_MANAGED_IFACES), or be told
 * explicitly to police only what policies name (EGW_MANAGED_SOURCES=none):
 * otherwise a scenario whose policy does not exist yet, or no longer does,
 * would be forwarded unpoliced instead of denied.
 *
 * Returns: 0, or EGW_E_CONFIG with @err set.
 */
int config_check_scope(const struct config *cfg, char *err, size_t errlen);

/**
 * config_unprivileged_port_start() - the lowest TCP port a process without
 * CAP_NET_BIND_SERVICE may bind in this network namespace
 *
 * Returns: /proc/sys/net/ipv4/ip_unprivileged_port_start, or 1024 (the
 * kernel's default) when it cannot be read.
 */
unsigned config_unprivileged_port_start(void);

/**
 * config_check_listen_port() - can an unprivileged nginx bind
 * EGW_HTTP_LISTEN?
 * @cfg: configuration
 * @port_start: the lowest port it may bind
 *              (config_unprivileged_port_start())
 * @err: the reason when not, one line naming EGW_HTTP_LISTEN
 * @errlen: size of @err
 *
 * Returns: 0, or EGW_E_CONFIG with @err set.
 */
int config_check_listen_port(const struct config *cfg, unsigned port_start,
    char *err, size_t errlen);

/**
 * config_check_listen() - config_check_listen_port() for the nginx that
 * egw-supervisor, started with this process's credentials, would run
 * @cfg: configuration
 * @err: the reason when not
 * @errlen: size of @err
 *
 * Started as root, the supervisor runs nginx as EGW_USER with no
 * capability at all (privdrop.h), so nginx can bind a port below the
 * network namespace's ip_unprivileged_port_start only when EGW_USER is
 * root; started as another user, nginx is that user, and can only with
 * CAP_NET_BIND_SERVICE in the ambient set.  Reads the password database
 * and /proc; creates nothing.
 *
 * Returns: 0, or EGW_E_CONFIG with @err set.
 */
int config_check_listen(const struct config *cfg, char *err, size_t errlen);

/**
 * config_iface_for_network() - derive a scenario's interface name from its
 * network_id with EGW_IFACE_TEMPLATE
 * @cfg: configuration
 * @network_id: the policy's network_id (may be "")
 * @out: NETADDR_IFNAMSIZ bytes
 *
 * The template's "{network_id}" is replaced by the id and "{network_id:N}"
 * by its first N characters (Docker: "br-{network_id:12}").
 *
 * Returns: 0, or EGW_E_INVALID when @network_id is empty or the result is
 * not a valid interface name.
 */
int config_iface_for_network(const struct config *cfg, const char *network_id,
    char *out);

/**
 * config_iface_deriver() - config_iface_for_network() in the shape of a
 * store_iface_deriver (store.h)
 * @network_id: as for config_iface_for_network()
 * @out: NETADDR_IFNAMSIZ bytes
 * @cfg: the struct config
 *
 * Returns: as config_iface_for_network().
 */
int config_iface_deriver(const char *network_id, char *out, const void *cfg);

#endif
