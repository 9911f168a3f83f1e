/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of config.c: defaults, derived paths and
 * every bad value producing one line that names the variable.
 */
#include "config.h"
#include "err.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

/* "/aaa...": an absolute path of @len bytes in @buf (at least @len + 1). */
static const char *
long_path(char *buf, size_t len)
{
	buf[0] = '/';
	memset(buf + 1, 'a', len - 1);
	buf[len] = '\0';
	return buf;
}

static const char *const *test_env;

static const char *
fake_getenv(const char *name)
{
	for (const char *const *e = test_env; e && *e; e += 2) {
		if (strcmp(e[0], name) == 0)
			return e[1];
	}
	return NULL;
}

static int
load(struct config *cfg, char *err, const char *const *env)
{
	test_env = env;
	return config_load(cfg, fake_getenv, err, CONFIG_ERR_MAX);
}

static const struct {
	const char *name, *value;
} bad[] = {
	{ "NATS_URL", "http://x:4222" }, { "NATS_URL", "nats://a b" },
	{ "NATS_URL", "" }, { "NATS_URL", "," }, { "NATS_URL", "nats://" },
	{ "NATS_URL", "nats://:4222" }, { "NATS_URL", "nats://h:99999" },
	{ "NATS_URL", "nats://h:0" }, { "NATS_URL", "nats://h:" },
	{ "NATS_URL", "nats://h:4222x" }, { "NATS_URL", "nats://h:4222/x" },
	{ "NATS_URL", "nats://u@" }, { "NATS_URL", "tls://[::1" },
	{ "NATS_URL", "nats://a:1,,nats://b:2" }, { "NATS_URL", "nats://a:1," },
	{ "NFT_BINARY", "nft" }, { "DRY_RUN", "maybe" }, { "DRY_RUN", "" },
	{ "EGW_STATE_DIR", "relative/dir" }, { "EGW_DB_PATH", "db.sqlite" },
	{ "EGW_RUN_DIR", "/run/x\ny" }, { "EGW_FCGI_SOCKET", "sock" },
	{ "EGW_APPLIER_SOCKET", "" }, { "EGW_HTTP_LISTEN", "8089x" },
	{ "EGW_HTTP_LISTEN", "0" }, { "EGW_HTTP_LISTEN", "70000" },
	{ "EGW_HTTP_LISTEN", "localhost:8089" }, { "EGW_HTTP_LISTEN", "[::1:8089" },
	{ "EGW_WORKERS", "0" }, { "EGW_WORKERS", "257" }, { "EGW_WORKERS", "-1" },
	{ "EGW_WORKERS", "4 " }, { "EGW_WORKERS", "four" }, { "EGW_WORKERS", "" },
	{ "EGW_SPARE_WORKERS", "256" }, { "EGW_SPARE_WORKERS", "-1" },
	{ "EGW_WORKERS", "250" },	/* + the default 8 spares: over 256 */
	{ "EGW_MAX_BODY", "10" }, { "EGW_AUTH", "sometimes" },
	{ "EGW_LOG_LEVEL", "verbose" }, { "EGW_USER", "-root" }, { "EGW_USER", "a b" },
	{ "EGW_LOG_FLUSH_MS", "1" }, { "EGW_LOG_FLUSH_MS", "99" },
	{ "EGW_LOG_FLUSH_MS", "10001" }, { "EGW_LOG_FLUSH_MS", "1s" },
	{ "EGW_NFLOG_GROUP", "0" }, { "EGW_NFLOG_GROUP", "65536" },
	{ "EGW_LOG_RATE", "0" }, { "EGW_LOG_BURST", "x" },
	{ "EGW_NFLOG_RCVBUF", "1" }, { "EGW_LOG_RETENTION", "1w" },
	{ "EGW_LOG_RETENTION", "10s" }, { "EGW_LOG_RETENTION", "d" },
	{ "EGW_LOG_MAX_ROWS", "5" },
	{ "EGW_DNS_SERVERS", "dns.example" }, { "EGW_DNS_SERVERS", "192.0.2.0/24" },
	{ "EGW_DNS_SERVERS", "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5,6.6.6.6,7.7.7.7,8.8.8.8,9.9.9.9" },
	{ "EGW_MANAGED_SOURCES", "100.64.0.1/10" }, { "EGW_MANAGED_IFACES", "eth0,bad name" },
	{ "EGW_MANAGED_SOURCES", "::ffff:100.64.0.0/106" }, { "EGW_DNS_SERVERS", "::ffff:192.0.2.53" },
	{ "EGW_DNS_SERVERS", "::192.0.2.53" },
	{ "EGW_IFACE_TEMPLATE", "br-fixed" }, { "EGW_IFACE_TEMPLATE", "bridge-{network_id}" },
	{ "EGW_IFACE_TEMPLATE", "br-{network_id:0}" }, { "EGW_IFACE_TEMPLATE", "b\"{network_id:4}" },
	{ "EGW_RECONCILE_INTERVAL", "0" }, { "EGW_RECONCILE_INTERVAL", "2d" },
	{ "EGW_COMPLETED_RETENTION", "-5" }, { "EGW_OUTBOX_RETENTION", "1s" },
	{ "EGW_CREATE_STREAMS", "2" },
};

int
main(void)
{
	struct config cfg;
	char err[CONFIG_ERR_MAX], name[NETADDR_IFNAMSIZ];

	is_int(load(&cfg, err, NULL), 0, "defaults load");
	is_str(cfg.nats_url, "nats://forge_nats:4222", "NATS_URL default is the seed's");
	is_str(cfg.nft_binary, "/usr/sbin/nft", "NFT_BINARY default is the seed's");
	ok(cfg.dry_run, "DRY_RUN defaults to true");
	is_str(cfg.db_path, "/var/lib/forge-egress-gateway/egw.db", "db under the state dir");
	is_str(cfg.fcgi_socket, "/run/forge-egress-gateway/api.sock", "fcgi socket under run dir");
	is_int(cfg.workers, 8, "8 workers by default");
	ok(cfg.auth, "auth on by default");
	is_int(cfg.nflog_group, 7, "nflog group 7");
	is_int(cfg.log_retention_s, 7 * 86400, "log retention 7 days");
	is_int(cfg.n_dns_servers, 0, "no resolvers by default");
	is_int(cfg.audit_max_age_s, 30 * 86400, "AUDIT stream kept 30 days by default");
	is_int(cfg.log_flush_ms, 1000, "API workers hold info lines up to 1 s by default");
	{
		static const struct { const char *text; unsigned ms; } flush[] = {
			{ "0", 0 }, { "100", 100 }, { "10000", 10000 } };

		for (size_t i = 0; i < 3; i++) {
			const char *env[] = { "EGW_LOG_FLUSH_MS", flush[i].text, NULL };

			ok(load(&cfg, err, env) == 0 && cfg.log_flush_ms == flush[i].ms,
			    "EGW_LOG_FLUSH_MS=%s is taken", flush[i].text);
		}
	}

	{
		const char *env[] = {
			"EGW_STATE_DIR", "/tmp/egw-state", "DRY_RUN", "False",
			"EGW_WORKERS", "16", "EGW_DNS_SERVERS", "192.0.2.53, 2001:db8::53",
			"EGW_MANAGED_SOURCES", "100.64.0.0/10", "EGW_MANAGED_IFACES", "veth-a,br-x",
			"EGW_LOG_RETENTION", "12h", "EGW_AUTH", "off",
			"EGW_HTTP_LISTEN", "[::1]:18089", "NATS_URL", "nats://127.0.0.1:4222,nats://127.0.0.1:4223",
			NULL,
		};

		is_int(load(&cfg, err, env), 0, "overrides load");
		is_str(cfg.db_path, "/tmp/egw-state/egw.db", "db follows EGW_STATE_DIR");
		ok(!cfg.dry_run, "DRY_RUN=False parsed");
		is_int(cfg.workers, 16, "EGW_WORKERS=16");
		is_int(cfg.n_dns_servers, 2, "two resolvers");
		is_int(cfg.n_managed_sources, 1, "one managed source");
		is_int(cfg.n_managed_ifaces, 2, "two managed interfaces");
		is_str(cfg.managed_ifaces[1], "br-x", "second managed interface");
		is_int(cfg.log_retention_s, 12 * 3600, "12h retention");
		ok(!cfg.auth, "auth off");
	}

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		const char *env[] = { bad[i].name, bad[i].value, NULL };
		int rc = load(&cfg, err, env);

		ok(rc == EGW_E_CONFIG && strncmp(err, bad[i].name, strlen(bad[i].name)) == 0 &&
		    err[strlen(bad[i].name)] == ':' && strchr(err, '\n') == NULL,
		    "%s=\"%s\" rejected with one line naming it", bad[i].name, bad[i].value);
		if (rc != EGW_E_CONFIG)
			tap_diag("  accepted");
		else if (strncmp(err, bad[i].name, strlen(bad[i].name)) != 0)
			tap_diag("  error: %s", err);
	}

	/* Good NATS_URL forms: the port is optional, user info is nats.c's. */
	{
		static const char *const urls[] = {
			"nats://h", "tls://h.example:4443", "nats://[::1]:4222",
			"nats://u:pw@h:1", "tls://token@[2001:db8::1]",
			"nats://a:65535,tls://b",
		};

		for (size_t i = 0; i < sizeof(urls) / sizeof(*urls); i++) {
			const char *env[] = { "NATS_URL", urls[i], NULL };
			int rc = load(&cfg, err, env);

			ok(rc == 0, "NATS_URL=\"%s\" accepted", urls[i]);
			if (rc != 0)
				tap_diag("  %s", err);
		}
	}

	{
		static const char *const bad_ports[] = {
			"", "0", "65536", "99999", "4222abc", " 4222", "+4222",
			"-1", "4222 ", "0x10",
		};
		size_t n = sizeof(bad_ports) / sizeof(*bad_ports);
		uint16_t port = 7;

		for (size_t i = 0; i < n; i++)
			ok(config_parse_port(bad_ports[i], &port) ==
			    EGW_E_INVALID && port == 7, "port \"%s\" refused",
			    bad_ports[i]);
		ok(config_parse_port("1", &port) == 0 && port == 1, "port 1");
		ok(config_parse_port("65535", &port) == 0 && port == 65535,
		    "port 65535");
	}

	/* nginx without privileges binds only from the namespace's
	 * ip_unprivileged_port_start. */
	{
		static const struct {
			const char *listen;
			unsigned start;
			int want;
		} ports[] = {
			{ "127.0.0.1:80", 1024, EGW_E_CONFIG },
			{ "1023", 1024, EGW_E_CONFIG },
			{ "[::1]:443", 1024, EGW_E_CONFIG },
			{ "*:1024", 1024, 0 }, { "8089", 1024, 0 },
			{ "127.0.0.1:80", 80, 0 }, { "79", 80, EGW_E_CONFIG },
			{ "1", 0, 0 },
		};
		unsigned long want_start = 1024;
		FILE *f;

		for (size_t i = 0; i < sizeof(ports) / sizeof(*ports); i++) {
			const char *env[] = { "EGW_HTTP_LISTEN", ports[i].listen,
			    NULL };

			load(&cfg, err, env);
			err[0] = '\0';
			ok(config_check_listen_port(&cfg, ports[i].start, err,
			    CONFIG_ERR_MAX) == ports[i].want &&
			    (ports[i].want == 0 ||
			    strncmp(err, "EGW_HTTP_LISTEN:", 16) == 0),
			    "%s with unprivileged ports from %u: %s",
			    ports[i].listen, ports[i].start,
			    ports[i].want ? "refused" : "accepted");
			if (err[0] != '\0')
				tap_diag("  %s", err);
		}
		f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "r");
		if (f != NULL) {
			if (fscanf(f, "%lu", &want_start) != 1)
				want_start = 1024;
			fclose(f);
		}
		is_int(config_unprivileged_port_start(), want_start,
		    "the namespace's ip_unprivileged_port_start, read");
	}

	/* Enforcing needs the scenario networks named, or "none" said. */
	{
		static const char *const scopes[][5] = {
			{ "DRY_RUN", "true", NULL },
			{ "DRY_RUN", "false", NULL },
			{ "DRY_RUN", "false", "EGW_MANAGED_SOURCES", "100.64.0.0/10", NULL },
			{ "DRY_RUN", "false", "EGW_MANAGED_IFACES", "br-x", NULL },
			{ "DRY_RUN", "false", "EGW_MANAGED_SOURCES", "none", NULL },
		};
		static const int want[] = { 0, EGW_E_CONFIG, 0, 0, 0 };

		for (size_t i = 0; i < sizeof(scopes) / sizeof(*scopes); i++) {
			is_int(load(&cfg, err, scopes[i]), 0, "scope case %zu loads", i);
			is_int(config_check_scope(&cfg, err, CONFIG_ERR_MAX), want[i],
			    "scope case %zu: %s", i, want[i] ? "refused" : "accepted");
		}
		ok(cfg.managed_none && cfg.n_managed_sources == 0,
		    "EGW_MANAGED_SOURCES=none: no sources, said explicitly");
		load(&cfg, err, scopes[1]);
		config_check_scope(&cfg, err, CONFIG_ERR_MAX);
		ok(strstr(err, "EGW_MANAGED_SOURCES") != NULL &&
		    strstr(err, "none") != NULL, "the refusal names the settings");
	}

	/* A unix socket's path has 108 bytes with its NUL (sun_path); the
	 * writer's socket is EGW_RUN_DIR/egw-api-writer.sock, 20 more. */
	{
		static const struct {
			const char *name;
			size_t len;
			int want;
		} lens[] = {
			{ "EGW_FCGI_SOCKET", 107, 0 },
			{ "EGW_FCGI_SOCKET", 108, EGW_E_CONFIG },
			{ "EGW_FCGI_SOCKET", 150, EGW_E_CONFIG },
			{ "EGW_APPLIER_SOCKET", 107, 0 },
			{ "EGW_APPLIER_SOCKET", 108, EGW_E_CONFIG },
			{ "EGW_RUN_DIR", 87, 0 },
			{ "EGW_RUN_DIR", 88, EGW_E_CONFIG },
			{ "EGW_RUN_DIR", 91, EGW_E_CONFIG },
		};
		char path[CONFIG_PATH_MAX];

		for (size_t i = 0; i < sizeof(lens) / sizeof(*lens); i++) {
			const char *env[] = { lens[i].name,
			    long_path(path, lens[i].len), NULL };
			int rc = load(&cfg, err, env);

			ok(rc == lens[i].want && (rc == 0 || strncmp(err,
			    lens[i].name, strlen(lens[i].name)) == 0),
			    "%s of %zu bytes %s", lens[i].name, lens[i].len,
			    lens[i].want ? "refused, naming it" : "accepted");
			if (rc != 0)
				tap_diag("  %s", err);
		}
		/* Explicit sockets elsewhere: the writer's is still made under
		 * the run directory. */
		{
			const char *env[] = { "EGW_RUN_DIR", long_path(path, 88),
			    "EGW_FCGI_SOCKET", "/run/a.sock",
			    "EGW_APPLIER_SOCKET", "/run/b.sock", NULL };

			ok(load(&cfg, err, env) == EGW_E_CONFIG &&
			    strncmp(err, "EGW_RUN_DIR:", 12) == 0,
			    "EGW_RUN_DIR of 88 bytes refused, both sockets set");
		}
	}

	load(&cfg, err, NULL);
	ok(config_iface_for_network(&cfg, "0123456789abcdef0123", name) == 0 &&
	    strcmp(name, "br-0123456789ab") == 0, "docker bridge name derived");
	ok(config_iface_for_network(&cfg, "", name) == EGW_E_INVALID, "empty network_id");
	{
		const char *env[] = { "EGW_IFACE_TEMPLATE", "sc-{network_id}", NULL };

		load(&cfg, err, env);
		ok(config_iface_for_network(&cfg, "lab1", name) == 0 &&
		    strcmp(name, "sc-lab1") == 0, "custom template");
		ok(config_iface_for_network(&cfg, "a-very-long-network", name) == EGW_E_INVALID,
		    "template result over 15 characters refused");
		ok(config_iface_for_network(&cfg, "x;y", name) == EGW_E_INVALID,
		    "template result with bad characters refused");
	}
	return tap_done();
}
