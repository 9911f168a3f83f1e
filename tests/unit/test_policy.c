/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of policy.c on structs built directly (not
 * through the codec), as the NATS bridge and the store hand them over:
 * defaults, identifier rules, limits, duplicates and the name tables.
 */
#include "config.h"
#include "err.h"
#include "netaddr.h"
#include "policy.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static struct ip_prefix
pfx(const char *text)
{
	struct ip_prefix p;
	const char *why;

	if (netaddr_parse_prefix(text, &p, &why) != 0)
		tap_diag("test prefix %s: %s", text, why);
	return p;
}

static bool
has_path(const struct policy_errors *e, const char *path)
{
	for (size_t i = 0; i < e->count; i++)
		if (strcmp(e->items[i].path, path) == 0)
			return true;
	return false;
}

static const char *
no_env(const char *name)
{
	(void)name;
	return NULL;
}

static int
validate(const struct policy *p, struct policy_errors *e)
{
	policy_errors_init(e);
	return policy_validate(p, e);
}

int
main(void)
{
	struct policy *p = policy_new();
	struct policy_errors *e = malloc(sizeof(*e));
	enum policy_mode m;
	enum policy_apply_status s;

	ok(p != NULL, "policy_new");
	is_str(p->profile, "none", "default profile none");
	ok(p->enabled, "enabled by default");
	is_int(p->mode, POLICY_MODE_ENFORCE, "enforce by default");
	ok(!p->dns_servers_set, "dns not set by default");
	policy_free(NULL);
	ok(true, "policy_free(NULL) is a no-op");

	/* Identifiers. */
	ok(policy_valid_id("a", 64, false), "id: single letter");
	ok(policy_valid_id("7-x.y:z_w", 64, false), "id: all allowed characters");
	ok(!policy_valid_id("", 64, false), "id: empty refused");
	ok(policy_valid_id("", 64, true), "id: empty allowed when asked");
	ok(!policy_valid_id("_a", 64, false), "id: leading underscore refused");
	ok(!policy_valid_id("a/b", 64, false), "id: slash refused");
	ok(!policy_valid_id("a\"b", 64, false), "id: quote refused");
	ok(!policy_valid_id("abcde", 4, false), "id: over max refused");
	ok(policy_valid_profile_name("training-updates"), "profile: builtin name");
	ok(!policy_valid_profile_name("Custom"), "profile: upper case refused");
	ok(!policy_valid_profile_name(""), "profile: empty refused");

	/* A clean policy. */
	snprintf(p->scenario_id, sizeof(p->scenario_id), "scn-1");
	p->n_sources = 2;
	p->sources[0] = pfx("100.64.1.0/24");
	p->sources[1] = pfx("100.64.2.0/24");
	p->n_hosts = 1;
	p->hosts[0] = pfx("192.0.2.0/24");
	p->n_ports = 2;
	p->ports[0] = (struct port_range){ 80, 80 };
	p->ports[1] = (struct port_range){ 443, 443 };
	p->n_rules = 1;
	p->rules[0].proto = IP_PROTO_TCP;
	p->rules[0].has_dest = true;
	p->rules[0].dest = pfx("198.51.100.0/24");
	p->rules[0].n_ports = 1;
	p->rules[0].ports[0] = (struct port_range){ 22, 22 };
	is_int(validate(p, e), 0, "clean policy validates");
	is_int((int)e->count, 0, "no problems");

	/* No endpoint that no packet has: unspecified, limited broadcast. */
	{
		static const struct {
			const char *list, *addr;
		} bad[] = {
			{ "sources", "0.0.0.0" }, { "sources", "::" },
			{ "allowed_hosts", "0.0.0.0" }, { "allowed_hosts", "::" },
			{ "allowed_hosts", "255.255.255.255" },
			{ "dns_servers", "0.0.0.0" }, { "dns_servers", "255.255.255.255" },
			{ "custom_rules", "0.0.0.0" }, { "custom_rules", "255.255.255.255" },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
			struct policy *q = policy_new();
			char at[64];

			memcpy(q, p, sizeof(*q));
			if (strcmp(bad[i].list, "sources") == 0)
				q->sources[0] = pfx(bad[i].addr);
			else if (strcmp(bad[i].list, "allowed_hosts") == 0)
				q->hosts[0] = pfx(bad[i].addr);
			else if (strcmp(bad[i].list, "dns_servers") == 0) {
				q->n_dns_servers = 1;
				q->dns_servers[0] = pfx(bad[i].addr);
			} else
				q->rules[0].dest = pfx(bad[i].addr);
			snprintf(at, sizeof(at), strcmp(bad[i].list, "custom_rules") == 0
			    ? "/%s/0/dest" : "/%s/0", bad[i].list);
			is_int(validate(q, e), EGW_E_INVALID, "%s %s refused",
			    bad[i].list, bad[i].addr);
			ok(has_path(e, at), "... at %s", at);
			policy_free(q);
		}
		{
			struct policy *q = policy_new();

			memcpy(q, p, sizeof(*q));
			q->hosts[0] = pfx("0.0.0.0/0");
			q->sources[0] = pfx("100.64.0.0/32");
			is_int(validate(q, e), 0, "0.0.0.0/0 as a host and a "
			    "network's first address as a source are fine");
			policy_free(q);
		}
	}

	/* Nothing of the gateway's own: loopback sources, the lo interface. */
	{
		static const char *const loopy[] = {
			"127.0.0.1", "127.0.0.0/8", "127.5.0.0/16", "0.0.0.0/1",
			"96.0.0.0/3", "::1", "::/8",
		};

		for (size_t i = 0; i < sizeof(loopy) / sizeof(*loopy); i++) {
			p->sources[1] = pfx(loopy[i]);
			is_int(validate(p, e), EGW_E_INVALID, "source %s refused",
			    loopy[i]);
			ok(has_path(e, "/sources/1"), "... at /sources/1");
		}
		p->sources[1] = pfx("128.0.0.0/1");
		is_int(validate(p, e), 0, "128.0.0.0/1 holds no loopback address");
		p->sources[1] = pfx("100.64.2.0/24");
		p->n_interfaces = 1;
		snprintf(p->interfaces[0], sizeof(p->interfaces[0]), "lo");
		is_int(validate(p, e), EGW_E_INVALID, "interface lo refused");
		ok(has_path(e, "/interfaces/0"), "... at /interfaces/0");
		snprintf(p->interfaces[0], sizeof(p->interfaces[0]), "lo0");
		is_int(validate(p, e), 0, "interface lo0 is just a name");
		p->n_interfaces = 0;
	}

	/* With EGW_MANAGED_SOURCES, sources lie inside the scenario networks. */
	{
		struct config cfg;
		char err[CONFIG_ERR_MAX];

		is_int(config_load(&cfg, no_env, err, sizeof(err)), 0, "defaults load");
		policy_errors_init(e);
		is_int(policy_validate_for_gateway(&cfg, p, e), 0,
		    "no managed sources: any source");
		cfg.n_managed_sources = 2;
		cfg.managed_sources[0] = pfx("100.64.0.0/16");
		cfg.managed_sources[1] = pfx("2001:db8:64::/48");
		policy_errors_init(e);
		is_int(policy_validate_for_gateway(&cfg, p, e), 0,
		    "sources inside the managed networks");
		p->sources[1] = pfx("10.0.0.0/24");
		policy_errors_init(e);
		is_int(policy_validate_for_gateway(&cfg, p, e), EGW_E_INVALID,
		    "a source outside them refused");
		ok(has_path(e, "/sources/1") && !has_path(e, "/sources/0"),
		    "... only that one, at /sources/1");
		p->sources[1] = pfx("100.0.0.0/8");
		policy_errors_init(e);
		is_int(policy_validate_for_gateway(&cfg, p, e), EGW_E_INVALID,
		    "a source wider than them refused");
		p->sources[1] = pfx("100.64.2.0/24");

		/* With EGW_MANAGED_IFACES, interfaces are among them:
		 * explicit ones and the one derived from network_id. */
		p->n_interfaces = 2;
		snprintf(p->interfaces[0], sizeof(p->interfaces[0]), "eth0");
		snprintf(p->interfaces[1], sizeof(p->interfaces[1]), "veth-lab1");
		policy_errors_init(e);
		is_int(policy_validate_for_gateway(&cfg, p, e), 0,
		    "no managed interfaces: any interface");
		cfg.n_managed_ifaces = 2;
		snprintf(cfg.managed_ifaces[0], sizeof(cfg.managed_ifaces[0]), "veth-lab1");
		snprintf(cfg.managed_ifaces[1], sizeof(cfg.managed_ifaces[1]), "br-lab2");
		policy_errors_init(e);
		is_int(policy_validate_for_gateway(&cfg, p, e), EGW_E_INVALID,
		    "an interface outside EGW_MANAGED_IFACES refused (the uplink)");
		ok(has_path(e, "/interfaces/0") && !has_path(e, "/interfaces/1"),
		    "... only that one, at /interfaces/0");
		snprintf(p->interfaces[0], sizeof(p->interfaces[0]), "br-lab2");
		policy_errors_init(e);
		is_int(policy_validate_for_gateway(&cfg, p, e), 0,
		    "managed interfaces accepted");
		{
			struct policy *d = policy_new();

			snprintf(d->scenario_id, sizeof(d->scenario_id), "derived");
			snprintf(d->network_id, sizeof(d->network_id), "lab9");
			policy_errors_init(e);
			is_int(policy_validate_for_gateway(&cfg, d, e), EGW_E_INVALID,
			    "a derived interface (br-lab9) outside them refused");
			ok(has_path(e, "/network_id"), "... at /network_id");
			snprintf(d->network_id, sizeof(d->network_id), "lab2");
			policy_errors_init(e);
			is_int(policy_validate_for_gateway(&cfg, d, e), 0,
			    "a derived interface among them (br-lab2) accepted");
			policy_free(d);
		}
		p->n_interfaces = 0;
	}

	/* Limits on directly built structs. */
	p->n_hosts = POLICY_MAX_HOSTS + 1;
	is_int(validate(p, e), EGW_E_INVALID, "hosts over the limit");
	ok(has_path(e, "/allowed_hosts"), "hosts limit path");
	p->n_hosts = 1;
	p->rules[0].n_ports = POLICY_RULE_MAX_PORTS + 1;
	is_int(validate(p, e), EGW_E_INVALID, "rule ports over the limit");
	ok(has_path(e, "/custom_rules/0/ports"), "rule ports limit path");
	p->rules[0].n_ports = 1;

	/* Port ranges that a codec would never produce. */
	p->ports[1] = (struct port_range){ 0, 10 };
	is_int(validate(p, e), EGW_E_INVALID, "port 0 refused");
	ok(has_path(e, "/allowed_ports/1"), "port 0 path");
	p->ports[1] = (struct port_range){ 90, 85 };
	is_int(validate(p, e), EGW_E_INVALID, "reversed range refused");
	p->ports[1] = (struct port_range){ 443, 443 };

	/* Rules. */
	p->rules[0].proto = IP_PROTO_ICMP;
	is_int(validate(p, e), EGW_E_INVALID, "icmp with ports refused");
	ok(has_path(e, "/custom_rules/0/ports"), "icmp ports path");
	p->rules[0].n_ports = 0;
	is_int(validate(p, e), 0, "icmp without ports fine");
	p->n_rules = 2;
	p->rules[1] = p->rules[0];
	is_int(validate(p, e), EGW_E_INVALID, "identical rules refused");
	ok(has_path(e, "/custom_rules/1"), "duplicate rule path");
	p->rules[1].has_dest = false;
	is_int(validate(p, e), 0, "same proto, other destination fine");
	p->rules[0].dest.family = 0;
	is_int(validate(p, e), EGW_E_INVALID, "rule dest without family refused");
	p->rules[0].dest = pfx("198.51.100.0/24");

	/* Sources, interfaces, resolvers. */
	p->sources[1] = pfx("100.64.1.128/25");
	is_int(validate(p, e), EGW_E_INVALID, "overlapping sources refused");
	ok(has_path(e, "/sources/1"), "source overlap path");
	p->sources[1] = pfx("100.64.2.0/24");
	p->n_interfaces = 2;
	snprintf(p->interfaces[0], NETADDR_IFNAMSIZ, "br-x");
	snprintf(p->interfaces[1], NETADDR_IFNAMSIZ, "br x");
	is_int(validate(p, e), EGW_E_INVALID, "bad interface name refused");
	ok(has_path(e, "/interfaces/1"), "interface path");
	p->n_interfaces = 1;
	p->dns_servers_set = true;
	p->n_dns_servers = 1;
	p->dns_servers[0] = pfx("100.64.1.0/24");
	is_int(validate(p, e), EGW_E_INVALID, "resolver prefix refused");
	p->dns_servers[0] = pfx("100.64.1.1");
	is_int(validate(p, e), 0, "resolver address fine");

	/* Everything wrong at once: all reported. */
	p->scenario_id[0] = '\0';
	snprintf(p->network_id, sizeof(p->network_id), "bad id");
	snprintf(p->profile, sizeof(p->profile), "BAD");
	p->mode = (enum policy_mode)7;
	is_int(validate(p, e), EGW_E_INVALID, "several problems");
	ok(has_path(e, "/scenario_id") && has_path(e, "/network_id") &&
	    has_path(e, "/profile") && has_path(e, "/mode"),
	    "each problem has its path");

	/* The error list bounds itself. */
	policy_errors_init(e);
	for (int i = 0; i < POLICY_ERRORS_MAX + 4; i++)
		policy_errors_add(e, "/x", "problem %d", i);
	is_int((int)e->count, POLICY_ERRORS_MAX, "error list is bounded");
	is_int((int)e->dropped, 4, "overflow is counted");
	is_str(e->items[1].reason, "problem 1", "reasons are formatted");

	/* Name tables. */
	is_str(policy_mode_name(POLICY_MODE_AUDIT), "audit", "mode name");
	is_int(policy_mode_parse("enforce", &m), 0, "mode parse");
	is_int(m, POLICY_MODE_ENFORCE, "mode parsed value");
	is_int(policy_mode_parse("Audit", &m), EGW_E_INVALID, "mode parse is exact");
	is_str(policy_apply_status_name(POLICY_APPLY_APPLIED), "applied",
	    "status name");
	is_int(policy_apply_status_parse("failed", &s), 0, "status parse");
	is_int(s, POLICY_APPLY_FAILED, "status parsed value");
	is_int(policy_apply_status_parse("done", &s), EGW_E_INVALID,
	    "status parse refuses unknown");

	policy_free(p);
	free(e);
	return tap_done();
}
