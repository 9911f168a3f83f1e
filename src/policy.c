/* SPDX-License-Identifier: MIT */
/*
 * This file contains the policy model's defaults and semantic validation.
 *
 * The codec has already typed every value; what is left is what a type
 * cannot say: identifiers' character sets, list sizes, duplicates and
 * redundant overlaps inside one list (an interval set in the kernel refuses
 * overlapping elements, and a redundant entry is almost always a client
 * mistake), and rules whose protocol has no ports.  Every problem is
 * recorded with its JSON path; nothing stops at the first.  Pure code.
 */
#include "policy.h"
#include "config.h"
#include "err.h"
#include "utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void
policy_init(struct policy *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->profile, sizeof(p->profile), "none");
	p->mode = POLICY_MODE_ENFORCE;
	p->enabled = true;
	p->apply_status = POLICY_APPLY_PENDING;
}

struct policy *
policy_new(void)
{
	struct policy *p = malloc(sizeof(*p));

	if (p != NULL)
		policy_init(p);
	return p;
}

void
policy_free(struct policy *p)
{
	free(p);
}

void
policy_errors_init(struct policy_errors *errs)
{
	errs->count = 0;
	errs->dropped = 0;
	errs->claimed = false;
}

void
policy_errors_add(struct policy_errors *errs, const char *path,
    const char *fmt, ...)
{
	struct policy_error *e;
	va_list ap;

	if (errs == NULL)
		return;
	if (errs->count >= POLICY_ERRORS_MAX) {
		errs->dropped++;
		return;
	}
	e = &errs->items[errs->count++];
	snprintf(e->path, sizeof(e->path), "%s", path);
	va_start(ap, fmt);
	vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
	va_end(ap);
	/* Either may quote a client's text: a cut must not split a character. */
	utf8_trim_partial(e->path);
	utf8_trim_partial(e->reason);
}

static bool
id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
	    c == '-';
}

bool
policy_valid_id(const char *id, size_t max, bool allow_empty)
{
	size_t len = strlen(id);

	if (len == 0)
		return allow_empty;
	if (len > max || !id_char(id[0]) || id[0] == '_' || id[0] == '.' ||
	    id[0] == ':' || id[0] == '-')
		return false;
	for (size_t i = 1; i < len; i++)
		if (!id_char(id[i]))
			return false;
	return true;
}

bool
policy_valid_profile_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > POLICY_PROFILE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool
prefix_equal(const struct ip_prefix *a, const struct ip_prefix *b)
{
	return a->family == b->family && a->len == b->len &&
	    memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

/* Duplicates and redundant overlaps in one prefix list. */
/* Does @p include or lie inside 127.0.0.0/8 or ::1? */
static bool
policy_touches_loopback(const struct ip_prefix *p)
{
	static const struct ip_prefix lo4 = { .family = AF_INET, .len = 8,
	    .addr = { 127 } };
	static const struct ip_prefix lo6 = { .family = AF_INET6, .len = 128,
	    .addr = { [15] = 1 } };

	return netaddr_prefix_overlaps(p, &lo4) || netaddr_prefix_overlaps(p, &lo6);
}

/*
 * Why the single address @p can be no packet's endpoint, or NULL: the
 * unspecified address (0.0.0.0, ::) and, as a destination, the limited
 * broadcast address.  A typo for a prefix, most likely; refused rather
 * than kept as a rule that never matches.
 */
static const char *
not_an_endpoint(const struct ip_prefix *p, bool as_destination)
{
	static const uint8_t zero[16], ones[4] = { 255, 255, 255, 255 };
	size_t alen = p->family == AF_INET ? 4 : 16;

	if (p->len != alen * 8)
		return NULL;
	if (memcmp(p->addr, zero, alen) == 0)
		return "the unspecified address is no packet's endpoint";
	if (as_destination && alen == 4 && memcmp(p->addr, ones, 4) == 0)
		return "the limited broadcast address is not forwarded";
	return NULL;
}

static void
check_endpoints(const char *name, const struct ip_prefix *v, size_t n,
    bool as_destination, struct policy_errors *errs)
{
	char path[128];
	const char *why;

	for (size_t i = 0; i < n; i++) {
		if ((why = not_an_endpoint(&v[i], as_destination)) == NULL)
			continue;
		snprintf(path, sizeof(path), "/%s/%zu", name, i);
		policy_errors_add(errs, path, "%s", why);
	}
}

static void
check_prefix_list(const char *name, const struct ip_prefix *v, size_t n,
    struct policy_errors *errs)
{
	char path[128], text[NETADDR_PREFIX_STRLEN];

	for (size_t j = 1; j < n; j++) {
		for (size_t i = 0; i < j; i++) {
			if (!netaddr_prefix_overlaps(&v[i], &v[j]))
				continue;
			snprintf(path, sizeof(path), "/%s/%zu", name, j);
			netaddr_format_prefix(&v[i], text, false);
			if (prefix_equal(&v[i], &v[j]))
				policy_errors_add(errs, path,
				    "duplicate of /%s/%zu", name, i);
			else
				policy_errors_add(errs, path,
				    "overlaps /%s/%zu (%s); give each address once",
				    name, i, text);
			break;
		}
	}
}

static bool
range_overlaps(const struct port_range *a, const struct port_range *b)
{
	return a->lo <= b->hi && b->lo <= a->hi;
}

static void
check_port_list(const char *base, const struct port_range *v, size_t n,
    struct policy_errors *errs)
{
	char path[128];

	for (size_t j = 0; j < n; j++) {
		snprintf(path, sizeof(path), "%s/%zu", base, j);
		if (v[j].lo == 0 || v[j].lo > v[j].hi) {
			policy_errors_add(errs, path,
			    "port range must be 1-65535 with start <= end");
			continue;
		}
		for (size_t i = 0; i < j; i++) {
			if (!range_overlaps(&v[i], &v[j]))
				continue;
			if (v[i].lo == v[j].lo && v[i].hi == v[j].hi)
				policy_errors_add(errs, path, "duplicate of %s/%zu",
				    base, i);
			else
				policy_errors_add(errs, path, "overlaps %s/%zu",
				    base, i);
			break;
		}
	}
}

/* Every port entry of @a is one of @b's. */
static bool
ports_within(const struct policy_rule *a, const struct policy_rule *b)
{
	for (size_t i = 0; i < a->n_ports; i++) {
		bool found = false;

		for (size_t k = 0; k < b->n_ports && !found; k++)
			found = a->ports[i].lo == b->ports[k].lo &&
			    a->ports[i].hi == b->ports[k].hi;
		if (!found)
			return false;
	}
	return true;
}

static bool
rule_equal(const struct policy_rule *a, const struct policy_rule *b)
{
	if (a->proto != b->proto || a->has_dest != b->has_dest ||
	    a->n_ports != b->n_ports)
		return false;
	if (a->has_dest && !prefix_equal(&a->dest, &b->dest))
		return false;
	/* The same ports in another order open the same traffic: equal as
	 * sets, each list inside the other (a list may repeat an entry, which
	 * check_port_list reports on its own). */
	return ports_within(a, b) && ports_within(b, a);
}

static void
check_too_many(const char *name, size_t n, size_t max,
    struct policy_errors *errs)
{
	char path[128];

	if (n > max) {
		snprintf(path, sizeof(path), "/%s", name);
		policy_errors_add(errs, path, "at most %zu entries", max);
	}
}

static size_t
min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static void
check_rules(const struct policy *p, struct policy_errors *errs)
{
	size_t n = min_size(p->n_rules, POLICY_MAX_RULES);
	char path[128];

	for (size_t j = 0; j < n; j++) {
		const struct policy_rule *r = &p->rules[j];

		if (r->n_ports > POLICY_RULE_MAX_PORTS) {
			snprintf(path, sizeof(path), "/custom_rules/%zu/ports", j);
			policy_errors_add(errs, path, "at most %d entries",
			    POLICY_RULE_MAX_PORTS);
			continue;
		}
		if (r->n_ports > 0 && r->proto != IP_PROTO_TCP &&
		    r->proto != IP_PROTO_UDP) {
			snprintf(path, sizeof(path), "/custom_rules/%zu/ports", j);
			policy_errors_add(errs, path,
			    "a \"%s\" rule takes no ports; use proto tcp or udp",
			    netaddr_proto_name(r->proto));
		} else {
			snprintf(path, sizeof(path), "/custom_rules/%zu/ports", j);
			check_port_list(path, r->ports, r->n_ports, errs);
		}
		if (r->has_dest && r->dest.family != AF_INET &&
		    r->dest.family != AF_INET6) {
			snprintf(path, sizeof(path), "/custom_rules/%zu/dest", j);
			policy_errors_add(errs, path, "not an address or prefix");
		} else if (r->has_dest && not_an_endpoint(&r->dest, true)) {
			snprintf(path, sizeof(path), "/custom_rules/%zu/dest", j);
			policy_errors_add(errs, path, "%s",
			    not_an_endpoint(&r->dest, true));
		}
		for (size_t i = 0; i < j; i++) {
			if (rule_equal(&p->rules[i], r)) {
				snprintf(path, sizeof(path), "/custom_rules/%zu", j);
				policy_errors_add(errs, path,
				    "duplicate of /custom_rules/%zu", i);
				break;
			}
		}
	}
}

int
policy_validate(const struct policy *p, struct policy_errors *errs)
{
	size_t before = errs->count + errs->dropped;
	char path[128];

	if (p->scenario_id[0] == '\0')
		policy_errors_add(errs, "/scenario_id", "required");
	else if (!policy_valid_id(p->scenario_id, POLICY_SCENARIO_ID_MAX, false))
		policy_errors_add(errs, "/scenario_id",
		    "must be 1-%d characters of A-Z a-z 0-9 _ . : - starting "
		    "with a letter or digit", POLICY_SCENARIO_ID_MAX);
	if (!policy_valid_id(p->network_id, POLICY_NETWORK_ID_MAX, true))
		policy_errors_add(errs, "/network_id",
		    "must be 0-%d characters of A-Z a-z 0-9 _ . : - starting "
		    "with a letter or digit", POLICY_NETWORK_ID_MAX);
	if (!policy_valid_profile_name(p->profile))
		policy_errors_add(errs, "/profile",
		    "must be a profile name: 1-%d characters of a-z 0-9 _ -",
		    POLICY_PROFILE_MAX);
	if (p->mode != POLICY_MODE_ENFORCE && p->mode != POLICY_MODE_AUDIT)
		policy_errors_add(errs, "/mode", "must be \"enforce\" or \"audit\"");

	check_too_many("sources", p->n_sources, POLICY_MAX_SOURCES, errs);
	check_too_many("interfaces", p->n_interfaces, POLICY_MAX_INTERFACES, errs);
	check_too_many("dns_servers", p->n_dns_servers, POLICY_MAX_DNS, errs);
	check_too_many("allowed_hosts", p->n_hosts, POLICY_MAX_HOSTS, errs);
	check_too_many("allowed_ports", p->n_ports, POLICY_MAX_PORTS, errs);
	check_too_many("custom_rules", p->n_rules, POLICY_MAX_RULES, errs);

	for (size_t i = 0; i < min_size(p->n_sources, POLICY_MAX_SOURCES); i++) {
		snprintf(path, sizeof(path), "/sources/%zu", i);
		if (p->sources[i].len == 0)
			policy_errors_add(errs, path,
			    "a source must not cover every address");
		else if (policy_touches_loopback(&p->sources[i]))
			policy_errors_add(errs, path, "must not include loopback "
			    "addresses (127.0.0.0/8, ::1): the gateway's own "
			    "services would be policed");
	}
	check_prefix_list("sources", p->sources,
	    min_size(p->n_sources, POLICY_MAX_SOURCES), errs);

	for (size_t j = 0; j < min_size(p->n_interfaces, POLICY_MAX_INTERFACES); j++) {
		snprintf(path, sizeof(path), "/interfaces/%zu", j);
		if (!netaddr_valid_ifname(p->interfaces[j])) {
			policy_errors_add(errs, path,
			    "must be 1-15 characters of A-Z a-z 0-9 _ . -");
			continue;
		}
		if (strcmp(p->interfaces[j], "lo") == 0) {
			policy_errors_add(errs, path, "must not be the loopback "
			    "interface: the gateway's own services would be policed");
			continue;
		}
		for (size_t i = 0; i < j; i++) {
			if (strcmp(p->interfaces[i], p->interfaces[j]) == 0) {
				policy_errors_add(errs, path,
				    "duplicate of /interfaces/%zu", i);
				break;
			}
		}
	}

	for (size_t i = 0; i < min_size(p->n_dns_servers, POLICY_MAX_DNS); i++) {
		const struct ip_prefix *d = &p->dns_servers[i];

		if (d->len != (d->family == AF_INET ? 32 : 128)) {
			snprintf(path, sizeof(path), "/dns_servers/%zu", i);
			policy_errors_add(errs, path,
			    "must be a single address, not a prefix");
		}
	}
	check_endpoints("sources", p->sources,
	    min_size(p->n_sources, POLICY_MAX_SOURCES), false, errs);
	check_endpoints("dns_servers", p->dns_servers,
	    min_size(p->n_dns_servers, POLICY_MAX_DNS), true, errs);
	check_endpoints("allowed_hosts", p->hosts,
	    min_size(p->n_hosts, POLICY_MAX_HOSTS), true, errs);
	check_prefix_list("dns_servers", p->dns_servers,
	    min_size(p->n_dns_servers, POLICY_MAX_DNS), errs);
	check_prefix_list("allowed_hosts", p->hosts,
	    min_size(p->n_hosts, POLICY_MAX_HOSTS), errs);
	check_port_list("/allowed_ports", p->ports,
	    min_size(p->n_ports, POLICY_MAX_PORTS), errs);
	check_rules(p, errs);

	return errs->count + errs->dropped == before ? 0 : EGW_E_INVALID;
}

static const char *const mode_names[] = {
	[POLICY_MODE_ENFORCE] = "enforce",
	[POLICY_MODE_AUDIT] = "audit",
};

static const char *const status_names[] = {
	[POLICY_APPLY_PENDING] = "pending",
	[POLICY_APPLY_APPLIED] = "applied",
	[POLICY_APPLY_FAILED] = "failed",
};

const char *
policy_mode_name(enum policy_mode mode)
{
	if ((size_t)mode >= sizeof(mode_names) / sizeof(*mode_names))
		return "enforce";
	return mode_names[mode];
}

const char *
policy_apply_status_name(enum policy_apply_status status)
{
	if ((size_t)status >= sizeof(status_names) / sizeof(*status_names))
		return "pending";
	return status_names[status];
}

int
policy_mode_parse(const char *text, enum policy_mode *out)
{
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(*mode_names); i++) {
		if (strcmp(text, mode_names[i]) == 0) {
			*out = (enum policy_mode)i;
			return 0;
		}
	}
	return EGW_E_INVALID;
}

int
policy_apply_status_parse(const char *text, enum policy_apply_status *out)
{
	for (size_t i = 0; i < sizeof(status_names) / sizeof(*status_names); i++) {
		if (strcmp(text, status_names[i]) == 0) {
			*out = (enum policy_apply_status)i;
			return 0;
		}
	}
	return EGW_E_INVALID;
}

/* Whether @name may be claimed: any, unless EGW_MANAGED_IFACES names them. */
static bool
managed_iface(const struct config *cfg, const char *name)
{
	if (cfg->n_managed_ifaces == 0)
		return true;
	for (size_t m = 0; m < cfg->n_managed_ifaces; m++)
		if (strcmp(cfg->managed_ifaces[m], name) == 0)
			return true;
	return false;
}

int
policy_validate_for_gateway(const struct config *cfg, const struct policy *p,
    struct policy_errors *errs)
{
	char iface[NETADDR_IFNAMSIZ], path[48];
	int rc = 0;

	/* The scenario networks are named: a policy claims only inside them
	 * (not the management network, not the uplink's addresses). */
	for (size_t i = 0; cfg->n_managed_sources > 0 && i < p->n_sources; i++) {
		size_t m;

		for (m = 0; m < cfg->n_managed_sources &&
		    !netaddr_prefix_contains(&cfg->managed_sources[m],
		    &p->sources[i]); m++)
			;
		if (m < cfg->n_managed_sources)
			continue;
		snprintf(path, sizeof(path), "/sources/%zu", i);
		policy_errors_add(errs, path, "outside the scenario networks "
		    "this gateway polices (EGW_MANAGED_SOURCES)");
		rc = EGW_E_INVALID;
	}
	/* Likewise the interfaces: a claim on the uplink would police (and
	 * attribute to the scenario) whatever else comes in there. */
	for (size_t i = 0; i < p->n_interfaces; i++) {
		if (managed_iface(cfg, p->interfaces[i]))
			continue;
		snprintf(path, sizeof(path), "/interfaces/%zu", i);
		policy_errors_add(errs, path, "not one of the scenario interfaces "
		    "this gateway polices (EGW_MANAGED_IFACES)");
		rc = EGW_E_INVALID;
	}
	if (p->n_sources > 0 || p->n_interfaces > 0 || p->network_id[0] == '\0')
		return rc;
	if (config_iface_for_network(cfg, p->network_id, iface) != 0) {
		policy_errors_add(errs, "/network_id", "the interface name derived "
		    "from it with EGW_IFACE_TEMPLATE (%s) is not a valid interface "
		    "name; give sources or interfaces instead", cfg->iface_template);
		return EGW_E_INVALID;
	}
	if (!managed_iface(cfg, iface)) {
		policy_errors_add(errs, "/network_id", "the interface derived from "
		    "it with EGW_IFACE_TEMPLATE (%s) is not one of the scenario "
		    "interfaces this gateway polices (EGW_MANAGED_IFACES)", iface);
		return EGW_E_INVALID;
	}
	return rc;
}
