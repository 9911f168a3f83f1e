/* SPDX-License-Identifier: MIT */
/*
 * This file contains the environment parser for struct config.
 *
 * The table below is the single list of settings: name, default, parser and
 * where the value goes.  Derived defaults (database under the state
 * directory, sockets under the run directory) are filled after the table so
 * that overriding EGW_STATE_DIR moves everything that was not set explicitly.
 */
#include "config.h"
#include "err.h"

#include <errno.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

_Static_assert(CONFIG_SOCKET_PATH_MAX + 1 ==
    sizeof(((struct sockaddr_un *)0)->sun_path), "a socket path fits sun_path");
/* The numbers the table's "accepted" texts give. */
_Static_assert(CONFIG_SOCKET_PATH_MAX == 107 && CONFIG_RUN_DIR_MAX == 87,
    "the accepted texts say 107 and 87 bytes");

struct setting;
typedef int (*setting_parse_fn)(const struct setting *s, const char *value,
    struct config *cfg, char *err, size_t errlen);

struct setting {
	const char *name;
	const char *def;	/* NULL: derived after parsing, see below */
	setting_parse_fn parse;
	size_t offset;		/* into struct config */
	size_t size;		/* of the field, for strings */
	unsigned long min, max;	/* for numbers */
	const char *accepted;	/* shown in the error line */
};

static int
fail(char *err, size_t errlen, const struct setting *s, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s (accepted: %s)", s->name, why, s->accepted);
	return EGW_E_CONFIG;
}

static bool
has_control_chars(const char *v)
{
	for (; *v; v++) {
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return true;
	}
	return false;
}

static int
parse_string(const struct setting *s, const char *v, struct config *cfg,
    char *err, size_t errlen)
{
	if (strlen(v) >= s->size)
		return fail(err, errlen, s, "value longer than %zu bytes", s->size - 1);
	if (has_control_chars(v))
		return fail(err, errlen, s, "value contains control characters");
	memcpy((char *)cfg + s->offset, v, strlen(v) + 1);
	return 0;
}

static int
parse_path(const struct setting *s, const char *v, struct config *cfg,
    char *err, size_t errlen)
{
	if (v[0] != '/')
		return fail(err, errlen, s, "\"%s\" is not an absolute path", v);
	return parse_string(s, v, cfg, err, errlen);
}

/*
 * A path a unix socket is bound to, or the run directory sockets are made
 * in: s->max is its longest length.  Checked here, not at the bind, so
 * that a program stops before it creates or migrates anything (libfcgi
 * exits from inside FCGX_OpenSocket; the writer would fail at every
 * restart).
 */
static int
parse_socket_path(const struct setting *s, const char *v, struct config *cfg,
    char *err, size_t errlen)
{
	if (strlen(v) > s->max)
		return fail(err, errlen, s, "%zu bytes is too long (at most %zu:"
		    " a unix socket's path holds %d bytes%s)", strlen(v),
		    (size_t)s->max, CONFIG_SOCKET_PATH_MAX,
		    s->max < CONFIG_SOCKET_PATH_MAX ?
		    ", the socket's name in this directory included" : "");
	return parse_path(s, v, cfg, err, errlen);
}

static int
parse_ulong(const char *v, unsigned long *out)
{
	char *end;

	if (v[0] < '0' || v[0] > '9')
		return -1;
	errno = 0;
	*out = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return 0;
}

int
config_parse_port(const char *v, uint16_t *port)
{
	unsigned long n;

	if (parse_ulong(v, &n) != 0 || n == 0 || n > 65535)
		return EGW_E_INVALID;
	*port = (uint16_t)n;
	return 0;
}

/*
 * What is wrong with one server URL of NATS_URL, or NULL: nats:// or
 * tls://, user info up to an '@' (nats.c's user:password or token), a
 * host (a name or IPv4 address, or an IPv6 address in brackets), and an
 * optional :port of 1-65535 that ends the URL.  egw-natsd would otherwise
 * retry a URL that can never connect forever.
 */
static const char *
url_problem(const char *u)
{
	const char *host, *end;

	if (strncmp(u, "nats://", 7) == 0)
		host = u + 7;
	else if (strncmp(u, "tls://", 6) == 0)
		host = u + 6;
	else
		return "is not a nats:// or tls:// URL";
	if (strpbrk(u, " \t\"'\\") != NULL || has_control_chars(u))
		return "contains spaces or quotes";
	if (strrchr(host, '@') != NULL)
		host = strrchr(host, '@') + 1;
	if (host[0] == '[') {
		char addr[NETADDR_PREFIX_STRLEN];
		struct ip_prefix p;
		const char *why;

		end = strchr(host, ']');
		if (end == NULL || (size_t)(end - host - 1) >= sizeof(addr))
			return "has no valid IPv6 address in brackets";
		memcpy(addr, host + 1, (size_t)(end - host - 1));
		addr[end - host - 1] = '\0';
		if (netaddr_parse_addr(addr, &p, &why) != 0 ||
		    p.family != AF_INET6)
			return "has no valid IPv6 address in brackets";
		end++;
	} else {
		end = host + strspn(host, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");
		if (end == host)
			return "has no host";
	}
	if (*end == ':') {
		uint16_t port;

		if (config_parse_port(end + 1, &port) != 0)
			return "has no valid port (1-65535) at its end";
	} else if (*end != '\0') {
		return "has something other than a :port after its host";
	}
	return NULL;
}

static int
parse_url(const struct setting *s, const char *v, struct config *cfg,
    char *err, size_t errlen)
{
	char copy[CONFIG_PATH_MAX];
	char *u, *comma;

	if (v[0] == '\0')
		return fail(err, errlen, s, "empty value");
	if (strlen(v) >= sizeof(copy))
		return fail(err, errlen, s, "value too long");
	memcpy(copy, v, strlen(v) + 1);
	/* Not strtok_r: it would skip empty items, and "," would be a list
	 * of no URL at all. */
	for (u = copy; u != NULL; u = comma != NULL ? comma + 1 : NULL) {
		const char *why;

		if ((comma = strchr(u, ',')) != NULL)
			*comma = '\0';
		if (*u == '\0')
			return fail(err, errlen, s, "an empty URL in the list");
		if ((why = url_problem(u)) != NULL)
			return fail(err, errlen, s, "\"%s\" %s", u, why);
	}
	return parse_string(s, v, cfg, err, errlen);
}

static int
parse_bool_value(const char *v, bool *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int
parse_bool(const struct setting *s, const char *v, struct config *cfg,
    char *err, size_t errlen)
{
	if (parse_bool_value(v, (bool *)((char *)cfg + s->offset)) != 0)
		return fail(err, errlen, s, "\"%s\" is not a boolean", v);
	return 0;
}

static int
store_number(const struct setting *s, unsigned long n, struct config *cfg)
{
	void *field = (char *)cfg + s->offset;

	switch (s->size) {
	case sizeof(uint16_t):
		*(uint16_t *)field = (uint16_t)n;
		return 0;
	case sizeof(unsigned):
		*(unsigned *)field = (unsigned)n;
		return 0;
	case sizeof(size_t):
		*(size_t *)field = (size_t)n;
		return 0;
	}
	return EGW_E_INTERNAL;
}

static int
parse_uint(const struct setting *s, const char *v, struct config *cfg,
    char *err, size_t errlen)
{
	unsigned long n;

	if (parse_ulong(v, &n) != 0)
		return fail(err, errlen, s, "\"%s\" is not a whole number", v);
	if (n < s->min || n > s->max)
		return fail(err, errlen, s, "%lu is out of range", n);
	return store_number(s, n, cfg);
}

/* Durations: a whole number of seconds, or with a unit s, m, h or d. */
static int
parse_duration(const struct setting *s, const char *v, struct config *cfg,
    char *err, size_t errlen)
{
	char digits[24];
	unsigned long n, mult = 1;
	size_t len = strlen(v);

	if (len == 0 || len >= sizeof(digits))
		return fail(err, errlen, s, "\"%s\" is not a duration", v);
	memcpy(digits, v, len + 1);
	switch (digits[len - 1]) {
	case 's': mult = 1; digits[len - 1] = '\0'; break;
	case 'm': mult = 60; digits[len - 1] = '\0'; break;
	case 'h': mult = 3600; digits[len - 1] = '\0'; break;
	case 'd': mult = 86400; digits[len - 1] = '\0'; break;
	}
	if (parse_ulong(digits, &n) != 0)
		return fail(err, errlen, s, "\"%s\" is not a duration", v);
	if (n > s->max / mult || n * mult < s->min)
		return fail(err, errlen, s, "\"%s\" is out of range", v);
	return store_number(s, n * mult, cfg);
}

static int
parse_level(const struct setting *s, const char *v, struct config *cfg,
    char *err, size_t errlen)
{
	if (log_level_parse(v, &cfg->log_level) != 0)
		return fail(err, errlen, s, "\"%s\" is not a log level", v);
	return 0;
}

static int
parse_auth(const struct setting *s, const char *v, struct config *cfg,
    char *err, size_t errlen)
{
	if (parse_bool_value(v, &cfg->auth) != 0)
		return fail(err, errlen, s, "\"%s\" is not on or off", v);
	return 0;
}

static int
parse_user(const struct setting *s, const char *v, struct config *cfg,
    char *err, size_t errlen)
{
	if (v[0] == '\0' || v[0] == '-' || strspn(v,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(v))
		return fail(err, errlen, s, "\"%s\" is not a user name", v);
	return parse_string(s, v, cfg, err, errlen);
}

/* host:port for nginx's listen directive: "8089", "127.0.0.1:8089", "[::1]:8089". */
static int
parse_listen(const struct setting *s, const char *v, struct config *cfg,
    char *err, size_t errlen)
{
	const char *colon = strrchr(v, ':');
	const char *port = colon ? colon + 1 : v;
	unsigned long n;

	if (parse_ulong(port, &n) != 0 || n == 0 || n > 65535)
		return fail(err, errlen, s, "\"%s\" has no valid port", v);
	if (colon != NULL) {
		char host[NETADDR_PREFIX_STRLEN + 2];
		size_t hlen = (size_t)(colon - v);
		struct ip_prefix p;
		const char *why;

		if (hlen == 0 || hlen >= sizeof(host))
			return fail(err, errlen, s, "\"%s\" has no valid address", v);
		memcpy(host, v, hlen);
		host[hlen] = '\0';
		if (host[0] == '[' && host[hlen - 1] == ']') {
			host[hlen - 1] = '\0';
			if (netaddr_parse_addr(host + 1, &p, &why) != 0 || p.family != AF_INET6)
				return fail(err, errlen, s, "\"%s\" has no valid address", v);
		} else if (strcmp(host, "*") != 0 &&
		    (netaddr_parse_addr(host, &p, &why) != 0 || p.family != AF_INET)) {
			return fail(err, errlen, s, "\"%s\" has no valid address", v);
		}
	}
	return parse_string(s, v, cfg, err, errlen);
}

/* Comma-separated list; each item is handed to parse_item. */
static int
parse_list(const struct setting *s, const char *v, char *err, size_t errlen,
    size_t max, size_t *count,
    int (*parse_item)(const char *item, size_t index, void *ctx, const char **why),
    void *ctx)
{
	char copy[4096];
	char *save = NULL;

	*count = 0;
	if (strlen(v) >= sizeof(copy))
		return fail(err, errlen, s, "value too long");
	memcpy(copy, v, strlen(v) + 1);
	for (char *item = strtok_r(copy, ",", &save); item;
	    item = strtok_r(NULL, ",", &save)) {
		const char *why = "invalid";

		while (*item == ' ')
			item++;
		for (char *e = item + strlen(item); e > item && e[-1] == ' '; e--)
			e[-1] = '\0';
		if (*item == '\0')
			continue;
		if (*count >= max)
			return fail(err, errlen, s, "more than %zu items", max);
		if (parse_item(item, *count, ctx, &why) != 0)
			return fail(err, errlen, s, "\"%s\": %s", item, why);
		(*count)++;
	}
	return 0;
}

/* The IPv6 forms of IPv4 addresses match no IPv4 packet (netaddr.h). */
static int
item_not_embedded(const struct ip_prefix *p, const char **why)
{
	if (!netaddr_embeds_ipv4(p, NULL))
		return 0;
	*why = "an IPv6 form of an IPv4 address matches no IPv4 packet; write it as IPv4";
	return EGW_E_INVALID;
}

static int
item_addr(const char *item, size_t index, void *ctx, const char **why)
{
	struct ip_prefix *p = (struct ip_prefix *)ctx + index;
	int rc = netaddr_parse_addr(item, p, why);

	return rc != 0 ? rc : item_not_embedded(p, why);
}

static int
item_prefix(const char *item, size_t index, void *ctx, const char **why)
{
	struct ip_prefix *p = (struct ip_prefix *)ctx + index;
	int rc = netaddr_parse_prefix(item, p, why);

	return rc != 0 ? rc : item_not_embedded(p, why);
}

static int
item_iface(const char *item, size_t index, void *ctx, const char **why)
{
	char (*names)[NETADDR_IFNAMSIZ] = ctx;

	if (!netaddr_valid_ifname(item)) {
		*why = "not an interface name (1-15 of A-Z a-z 0-9 _ . -)";
		return EGW_E_INVALID;
	}
	memcpy(names[index], item, strlen(item) + 1);
	return 0;
}

static int
parse_dns(const struct setting *s, const char *v, struct config *cfg,
    char *err, size_t errlen)
{
	return parse_list(s, v, err, errlen, CONFIG_MAX_DNS, &cfg->n_dns_servers,
	    item_addr, cfg->dns_servers);
}

static int
parse_managed_sources(const struct setting *s, const char *v,
    struct config *cfg, char *err, size_t errlen)
{
	/* An explicit "police only what policies name" (config_check_scope). */
	cfg->managed_none = strcmp(v, "none") == 0;
	if (cfg->managed_none) {
		cfg->n_managed_sources = 0;
		return 0;
	}
	return parse_list(s, v, err, errlen, CONFIG_MAX_MANAGED,
	    &cfg->n_managed_sources, item_prefix, cfg->managed_sources);
}

static int
parse_managed_ifaces(const struct setting *s, const char *v,
    struct config *cfg, char *err, size_t errlen)
{
	return parse_list(s, v, err, errlen, CONFIG_MAX_MANAGED,
	    &cfg->n_managed_ifaces, item_iface, cfg->managed_ifaces);
}

static int
parse_template(const struct setting *s, const char *v, struct config *cfg,
    char *err, size_t errlen)
{
	struct config probe = *cfg;
	char name[NETADDR_IFNAMSIZ];

	if (parse_string(s, v, &probe, err, errlen) != 0)
		return EGW_E_CONFIG;
	if (strstr(v, "{network_id") == NULL)
		return fail(err, errlen, s, "template has no {network_id} placeholder");
	/* A 12-character id must give a valid name, as Docker's ids do. */
	if (config_iface_for_network(&probe, "0123456789ab", name) != 0)
		return fail(err, errlen, s, "template does not yield a valid interface name");
	memcpy(cfg->iface_template, v, strlen(v) + 1);
	return 0;
}

#define STR(field) offsetof(struct config, field), sizeof(((struct config *)0)->field)
#define NUM(field) offsetof(struct config, field), sizeof(((struct config *)0)->field)

static const struct setting settings[] = {
	{ "NATS_URL", "nats://forge_nats:4222", parse_url, STR(nats_url), 0, 0,
	  "nats://host[:port] or tls://host[:port], comma-separated" },
	{ "NFT_BINARY", "/usr/sbin/nft", parse_path, STR(nft_binary), 0, 0, "an absolute path" },
	{ "DRY_RUN", "true", parse_bool, NUM(dry_run), 0, 0, "true or false" },
	{ "EGW_STATE_DIR", "/var/lib/forge-egress-gateway", parse_path, STR(state_dir), 0, 0,
	  "an absolute path" },
	{ "EGW_DB_PATH", NULL, parse_path, STR(db_path), 0, 0, "an absolute path" },
	{ "EGW_RUN_DIR", "/run/forge-egress-gateway", parse_socket_path,
	  STR(run_dir), 0, CONFIG_RUN_DIR_MAX,
	  "an absolute path of at most 87 bytes: sockets are made in it" },
	{ "EGW_FCGI_SOCKET", NULL, parse_socket_path, STR(fcgi_socket), 0,
	  CONFIG_SOCKET_PATH_MAX, "an absolute path of at most 107 bytes" },
	{ "EGW_APPLIER_SOCKET", NULL, parse_socket_path, STR(applier_socket), 0,
	  CONFIG_SOCKET_PATH_MAX, "an absolute path of at most 107 bytes" },
	{ "EGW_HTTP_LISTEN", "0.0.0.0:8089", parse_listen, STR(http_listen), 0, 0,
	  "PORT, IPV4:PORT, [IPV6]:PORT or *:PORT" },
	{ "EGW_WORKERS", "8", parse_uint, NUM(workers), 1, 256,
	  "1-256, and at most 256 with EGW_SPARE_WORKERS" },
	{ "EGW_SPARE_WORKERS", "8", parse_uint, NUM(spare_workers), 0, 255, "0-255" },
	{ "EGW_MAX_BODY", "262144", parse_uint, NUM(max_body), 1024, 16777216,
	  "1024-16777216 bytes" },
	{ "EGW_AUTH", "on", parse_auth, NUM(auth), 0, 0, "on or off" },
	{ "EGW_LOG_LEVEL", "info", parse_level, NUM(log_level), 0, 0,
	  "debug, info, warn or error" },
	{ "EGW_LOG_FLUSH_MS", "1000", parse_uint, NUM(log_flush_ms), 0, 10000,
	  "0 (each line at once) or 100-10000 milliseconds" },
	{ "EGW_USER", "egw", parse_user, STR(user), 0, 0, "a user name" },
	{ "EGW_NFLOG_GROUP", "7", parse_uint, NUM(nflog_group), 1, 65535, "1-65535" },
	{ "EGW_LOG_RATE", "10", parse_uint, NUM(log_rate), 1, 1000000,
	  "1-1000000 log lines per second per scenario" },
	{ "EGW_LOG_BURST", "20", parse_uint, NUM(log_burst), 1, 1000000, "1-1000000" },
	{ "EGW_NFLOG_RCVBUF", "4194304", parse_uint, NUM(nflog_rcvbuf), 65536, 268435456,
	  "65536-268435456 bytes" },
	{ "EGW_LOG_RETENTION", "7d", parse_duration, NUM(log_retention_s), 60, 31536000,
	  "60s-365d (s, m, h, d suffixes)" },
	{ "EGW_LOG_MAX_ROWS", "1000000", parse_uint, NUM(log_max_rows), 1000, 1000000000,
	  "1000-1000000000" },
	{ "EGW_DNS_SERVERS", "", parse_dns, 0, 0, 0, 0,
	  "comma-separated IPv4/IPv6 addresses, at most 8" },
	{ "EGW_MANAGED_SOURCES", "", parse_managed_sources, 0, 0, 0, 0,
	  "comma-separated IPv4/IPv6 prefixes, at most 64, or none" },
	{ "EGW_MANAGED_IFACES", "", parse_managed_ifaces, 0, 0, 0, 0,
	  "comma-separated interface names, at most 64" },
	{ "EGW_IFACE_TEMPLATE", "br-{network_id:12}", parse_template, STR(iface_template), 0, 0,
	  "text with {network_id} or {network_id:N}, giving at most 15 characters" },
	{ "EGW_RECONCILE_INTERVAL", "30", parse_duration, NUM(reconcile_interval_s), 1, 86400,
	  "1s-1d" },
	{ "EGW_COMPLETED_RETENTION", "1d", parse_duration, NUM(completed_retention_s), 0,
	  31536000, "0s-365d" },
	{ "EGW_OUTBOX_RETENTION", "1d", parse_duration, NUM(outbox_retention_s), 60,
	  31536000, "60s-365d" },
	{ "EGW_AUDIT_MAX_AGE", "30d", parse_duration, NUM(audit_max_age_s), 3600,
	  315360000, "1h-3650d (s, m, h, d suffixes)" },
	{ "EGW_CREATE_STREAMS", "true", parse_bool, NUM(create_streams), 0, 0, "true or false" },
	{ "EGW_OUTPUT_HOOK", "false", parse_bool, NUM(output_hook), 0, 0, "true or false" },
};

/* The entry of a setting that exists (a name from the table above). */
static const struct setting *
setting_named(const char *name)
{
	for (size_t i = 0; i < sizeof(settings) / sizeof(*settings); i++)
		if (strcmp(settings[i].name, name) == 0)
			return &settings[i];
	abort();	/* a name missing from the table is this file's bug */
}

static int
derive(char *dst, size_t size, const char *dir, const char *file)
{
	int n = snprintf(dst, size, "%s/%s", dir, file);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
config_load(struct config *cfg, const char *(*getenv_fn)(const char *),
    char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < sizeof(settings) / sizeof(*settings); i++) {
		const struct setting *s = &settings[i];
		const char *v = getenv_fn(s->name);

		if (v == NULL)
			v = s->def;
		if (v == NULL)
			continue;
		if (s->parse(s, v, cfg, err, errlen) != 0)
			return EGW_E_CONFIG;
	}
	/* The writer serves 256 workers (WRITER_MAX_CLIENTS has room for
	 * replacements on top). */
	if (cfg->workers + cfg->spare_workers > 256)
		return fail(err, errlen, setting_named("EGW_WORKERS"), "%u workers"
		    " and %u spares are more than 256", cfg->workers,
		    cfg->spare_workers);
	/* An idle worker wakes this often to write what it holds: a
	 * shorter period would be waking for nothing. */
	if (cfg->log_flush_ms > 0 && cfg->log_flush_ms < 100)
		return fail(err, errlen, setting_named("EGW_LOG_FLUSH_MS"),
		    "%u ms is too short", cfg->log_flush_ms);
	if (cfg->db_path[0] == '\0' &&
	    derive(cfg->db_path, sizeof(cfg->db_path), cfg->state_dir, "egw.db") != 0)
		return fail(err, errlen, setting_named("EGW_STATE_DIR"), "path too long");
	/* The sockets derived from EGW_RUN_DIR fit sun_path: their names are
	 * shorter than CONFIG_WRITER_SOCKET, which parse_socket_path made
	 * room for. */
	if (cfg->fcgi_socket[0] == '\0' &&
	    derive(cfg->fcgi_socket, sizeof(cfg->fcgi_socket), cfg->run_dir, "api.sock") != 0)
		return fail(err, errlen, setting_named("EGW_RUN_DIR"), "path too long");
	if (cfg->applier_socket[0] == '\0' &&
	    derive(cfg->applier_socket, sizeof(cfg->applier_socket), cfg->run_dir,
	    "applier.sock") != 0)
		return fail(err, errlen, setting_named("EGW_RUN_DIR"), "path too long");
	return 0;
}

static const char *
process_getenv(const char *name)
{
	return getenv(name);
}

void
config_load_env(struct config *cfg, const char *prog)
{
	char err[CONFIG_ERR_MAX];

	if (config_load(cfg, process_getenv, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: configuration error: %s\n", prog, err);
		exit(2);
	}
}

int
config_check_scope(const struct config *cfg, char *err, size_t errlen)
{
	if (cfg->dry_run || cfg->managed_none || cfg->n_managed_sources > 0 ||
	    cfg->n_managed_ifaces > 0)
		return 0;
	snprintf(err, errlen, "DRY_RUN=false needs EGW_MANAGED_SOURCES and/or "
	    "EGW_MANAGED_IFACES naming the scenario networks (a scenario "
	    "without an enabled policy is denied only there); "
	    "EGW_MANAGED_SOURCES=none polices only the sources policies name");
	return EGW_E_CONFIG;
}

unsigned
config_unprivileged_port_start(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "re");
	unsigned long n = 1024;
	char line[32];

	if (f == NULL)
		return 1024;
	if (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (parse_ulong(line, &n) != 0 || n > 65536)
			n = 1024;
	}
	fclose(f);
	return (unsigned)n;
}

int
config_check_listen_port(const struct config *cfg, unsigned port_start,
    char *err, size_t errlen)
{
	const char *colon = strrchr(cfg->http_listen, ':');
	unsigned long port;

	/* parse_listen() took only a valid port. */
	if (parse_ulong(colon ? colon + 1 : cfg->http_listen, &port) != 0 ||
	    port >= port_start)
		return 0;
	snprintf(err, errlen, "EGW_HTTP_LISTEN: nginx runs without privileges"
	    " and cannot bind port %lu, which is below %u"
	    " (net.ipv4.ip_unprivileged_port_start) (accepted: a port of %u"
	    " or above)", port, port_start, port_start);
	return EGW_E_CONFIG;
}

int
config_check_listen(const struct config *cfg, char *err, size_t errlen)
{
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(cfg->user);

		/* No drop: nginx stays root.  An unknown user is refused by
		 * the supervisor itself. */
		if (pw != NULL && pw->pw_uid == 0)
			return 0;
	} else if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET,
	    CAP_NET_BIND_SERVICE, 0, 0) == 1) {
		return 0;
	}
	return config_check_listen_port(cfg, config_unprivileged_port_start(),
	    err, errlen);
}

int
config_iface_for_network(const struct config *cfg, const char *network_id,
    char *out)
{
	char buf[128];
	size_t n = 0;
	const char *t = cfg->iface_template;

	if (network_id[0] == '\0')
		return EGW_E_INVALID;
	while (*t && n < sizeof(buf) - 1) {
		if (strncmp(t, "{network_id", 11) == 0) {
			const char *close = strchr(t, '}');
			size_t take = strlen(network_id);

			if (close == NULL)
				return EGW_E_INVALID;
			if (t[11] == ':') {
				unsigned long lim;
				char num[8];
				size_t nl = (size_t)(close - (t + 12));

				if (nl == 0 || nl >= sizeof(num))
					return EGW_E_INVALID;
				memcpy(num, t + 12, nl);
				num[nl] = '\0';
				if (parse_ulong(num, &lim) != 0 || lim == 0)
					return EGW_E_INVALID;
				if (take > lim)
					take = lim;
			} else if (t[11] != '}') {
				return EGW_E_INVALID;
			}
			if (n + take >= sizeof(buf))
				return EGW_E_INVALID;
			memcpy(buf + n, network_id, take);
			n += take;
			t = close + 1;
		} else {
			buf[n++] = *t++;
		}
	}
	buf[n] = '\0';
	if (!netaddr_valid_ifname(buf))
		return EGW_E_INVALID;
	memcpy(out, buf, n + 1);
	return 0;
}

int
config_iface_deriver(const char *network_id, char *out, const void *cfg)
{
	return config_iface_for_network(cfg, network_id, out);
}
