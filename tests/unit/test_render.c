/* SPDX-License-Identifier: MIT */
/*
 * This file contains the tests of render.c: golden files and properties.
 *
 * Golden cases are tests/golden/render_<case>.json (configuration, profiles
 * and typed policies) -> tests/golden/render_<case>.nft (the full text).
 * After an intended change, rewrite the .nft files from the source tree
 * (EGW_GOLDEN_UPDATE=1 EGW_TOP_SRCDIR=. build/tests/unit/test_render) and
 * review the diff.  The property tests draw random policies and check
 * that the elements never conflict in the kernel's sense and match
 * exactly the packets the entries describe.
 */
#include "err.h"
#include "netaddr.h"
#include "policy.h"
#include "render.h"
#include "tap.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int
parse_prefix_list(struct json_object *arr, struct ip_prefix *out, size_t max,
    size_t *n)
{
	*n = 0;
	if (arr == NULL)
		return 0;
	for (size_t i = 0; i < json_object_array_length(arr) && i < max; i++) {
		const char *why;

		if (netaddr_parse_prefix(json_object_get_string(
		    json_object_array_get_idx(arr, i)), &out[i], &why) != 0)
			return -1;
		(*n)++;
	}
	return 0;
}

static int
parse_ports(struct json_object *arr, struct port_range *out, size_t max,
    size_t *n)
{
	*n = 0;
	if (arr == NULL)
		return 0;
	for (size_t i = 0; i < json_object_array_length(arr) && i < max; i++) {
		const char *why;

		if (netaddr_parse_port_range(json_object_get_string(
		    json_object_array_get_idx(arr, i)), &out[i], &why) != 0)
			return -1;
		(*n)++;
	}
	return 0;
}

static int
parse_rule(struct json_object *o, struct policy_rule *r)
{
	struct json_object *v;

	memset(r, 0, sizeof(*r));
	if (!json_object_object_get_ex(o, "proto", &v) ||
	    netaddr_parse_proto(json_object_get_string(v), &r->proto) != 0)
		return -1;
	if (json_object_object_get_ex(o, "dest", &v) && v != NULL) {
		const char *why;

		if (netaddr_parse_prefix(json_object_get_string(v), &r->dest, &why) != 0)
			return -1;
		r->has_dest = true;
	}
	json_object_object_get_ex(o, "ports", &v);
	return parse_ports(v, r->ports, POLICY_RULE_MAX_PORTS, &r->n_ports);
}

static int
parse_rules(struct json_object *arr, struct policy_rule *out, size_t max,
    size_t *n)
{
	*n = 0;
	for (size_t i = 0; arr && i < json_object_array_length(arr) && i < max; i++) {
		if (parse_rule(json_object_array_get_idx(arr, i), &out[i]) != 0)
			return -1;
		(*n)++;
	}
	return 0;
}

static struct json_object *
get(struct json_object *o, const char *k)
{
	struct json_object *v = NULL;

	json_object_object_get_ex(o, k, &v);
	return v;
}

static int
load_config(struct json_object *c, struct render_config *rc)
{
	struct json_object *v;

	memset(rc, 0, sizeof(*rc));
	rc->nflog_group = 7;
	rc->log_rate = 10;
	rc->log_burst = 20;
	if ((v = get(c, "nflog_group")))
		rc->nflog_group = (uint16_t)json_object_get_int(v);
	if ((v = get(c, "output_hook")))
		rc->output_hook = json_object_get_boolean(v);
	if (parse_prefix_list(get(c, "dns"), rc->dns, RENDER_MAX_DNS, &rc->n_dns) ||
	    parse_prefix_list(get(c, "gateway"), rc->gateway, RENDER_MAX_GATEWAY,
	    &rc->n_gateway) ||
	    parse_prefix_list(get(c, "managed"), rc->managed, RENDER_MAX_MANAGED,
	    &rc->n_managed))
		return -1;
	v = get(c, "managed_ifaces");
	for (size_t i = 0; v && i < json_object_array_length(v); i++) {
		snprintf(rc->managed_ifaces[i], NETADDR_IFNAMSIZ, "%s",
		    json_object_get_string(json_object_array_get_idx(v, i)));
		rc->n_managed_ifaces++;
	}
	return 0;
}

static int
load_profile(struct json_object *o, struct render_profile *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", json_object_get_string(get(o, "name")));
	p->uses_policy_entries = json_object_get_boolean(get(o, "uses_policy_entries"));
	return parse_rules(get(o, "rules"), p->rules, RENDER_PROFILE_MAX_RULES,
	    &p->n_rules);
}

static int
load_policy(struct json_object *o, struct policy *p)
{
	struct json_object *v;

	memset(p, 0, sizeof(*p));
	p->enabled = true;
	p->id = json_object_get_int64(get(o, "id"));
	snprintf(p->scenario_id, sizeof(p->scenario_id), "s%lld", (long long)p->id);
	snprintf(p->profile, sizeof(p->profile), "%s", json_object_get_string(get(o, "profile")));
	if ((v = get(o, "mode")) && strcmp(json_object_get_string(v), "audit") == 0)
		p->mode = POLICY_MODE_AUDIT;
	if (parse_prefix_list(get(o, "sources"), p->sources, POLICY_MAX_SOURCES,
	    &p->n_sources))
		return -1;
	v = get(o, "interfaces");
	for (size_t i = 0; v && i < json_object_array_length(v); i++) {
		snprintf(p->interfaces[i], NETADDR_IFNAMSIZ, "%s",
		    json_object_get_string(json_object_array_get_idx(v, i)));
		p->n_interfaces++;
	}
	if ((v = get(o, "dns_servers"))) {
		p->dns_servers_set = true;
		if (parse_prefix_list(v, p->dns_servers, POLICY_MAX_DNS,
		    &p->n_dns_servers))
			return -1;
	}
	if (parse_prefix_list(get(o, "hosts"), p->hosts, POLICY_MAX_HOSTS, &p->n_hosts) ||
	    parse_ports(get(o, "ports"), p->ports, POLICY_MAX_PORTS, &p->n_ports) ||
	    parse_rules(get(o, "rules"), p->rules, POLICY_MAX_RULES, &p->n_rules))
		return -1;
	return 0;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long len;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)len + 1);
	if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[len] = '\0';
	fclose(f);
	return buf;
}

/* Render one golden case; returns malloc'd text or NULL. */
static char *
render_case(const char *json_path)
{
	char *in = slurp(json_path), *text = NULL;
	struct json_object *root, *v;
	struct render_config rc;
	struct render_profile *profs = NULL, *baseline = NULL;
	struct render_elems elems;
	struct policy *p = policy_new();
	size_t n_profs = 0;

	render_elems_init(&elems);
	root = in ? json_tokener_parse(in) : NULL;
	if (root == NULL || p == NULL || load_config(get(root, "config"), &rc) != 0)
		goto out;
	v = get(root, "profiles");
	n_profs = v ? json_object_array_length(v) : 0;
	profs = calloc(n_profs + 1, sizeof(*profs));
	for (size_t i = 0; i < n_profs; i++) {
		if (load_profile(json_object_array_get_idx(v, i), &profs[i]) != 0)
			goto out;
		if (strcmp(profs[i].name, "none") == 0)
			baseline = &profs[i];
	}
	if (render_global(&rc, baseline, &elems) != 0)
		goto out;
	v = get(root, "policies");
	for (size_t i = 0; v && i < json_object_array_length(v); i++) {
		struct json_object *o = json_object_array_get_idx(v, i), *sv;
		const struct render_profile *prof = NULL;
		enum render_state st = RENDER_STATE_ACTIVE;
		const char *derived = NULL;
		char why[256] = "";

		if (load_policy(o, p) != 0)
			goto out;
		for (size_t j = 0; j < n_profs; j++)
			if (strcmp(profs[j].name, p->profile) == 0)
				prof = &profs[j];
		if ((sv = get(o, "state"))) {
			if (strcmp(json_object_get_string(sv), "disabled") == 0)
				st = RENDER_STATE_DISABLED;
			else if (strcmp(json_object_get_string(sv), "failed") == 0)
				st = RENDER_STATE_FAILED;
		}
		if ((sv = get(o, "derived_iface")))
			derived = json_object_get_string(sv);
		if (render_policy(&rc, p, prof, baseline, st, derived, &elems, why,
		    sizeof(why)) != 0) {
			tap_diag("policy %lld: %s", (long long)p->id, why);
			goto out;
		}
	}
	render_elems_sort(&elems);
	text = render_full_text(&rc, elems.v, elems.n, false);
out:
	render_elems_free(&elems);
	json_object_put(root);
	free(profs);
	free(in);
	policy_free(p);
	return text;
}

static void
test_golden(void)
{
	const char *src = getenv("EGW_TOP_SRCDIR");
	char dir[512];
	DIR *d;
	struct dirent *de;
	int cases = 0;

	snprintf(dir, sizeof(dir), "%s/tests/golden", src ? src : "..");
	d = opendir(dir);
	ok(d != NULL, "golden directory %s exists", dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char in[1024], exp_path[1024];
		size_t l = strlen(de->d_name);
		char *got, *want;

		if (strncmp(de->d_name, "render_", 7) != 0 || l < 6 ||
		    strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		snprintf(in, sizeof(in), "%s/%s", dir, de->d_name);
		snprintf(exp_path, sizeof(exp_path), "%s/%.*s.nft", dir,
		    (int)(l - 5), de->d_name);
		got = render_case(in);
		ok(got != NULL, "%s renders", de->d_name);
		if (got == NULL)
			continue;
		cases++;
		if (getenv("EGW_GOLDEN_UPDATE")) {
			FILE *f = fopen(exp_path, "w");

			if (f) {
				fputs(got, f);
				fclose(f);
			}
		}
		want = slurp(exp_path);
		ok(want != NULL && strcmp(got, want) == 0, "%s matches %s",
		    de->d_name, exp_path);
		if (want && strcmp(got, want) != 0)
			tap_diag("diff -u %s <(EGW_GOLDEN_UPDATE=1 ...)", exp_path);
		free(got);
		free(want);
	}
	closedir(d);
	ok(cases >= 5, "at least five golden cases ran (%d)", cases);
}

/* ---- properties of random policies ---- */

static uint64_t rng = 88172645463325252ull;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

/* Small address space so that random entries overlap often. */
static void
random_prefix(struct ip_prefix *p, bool v6)
{
	memset(p, 0, sizeof(*p));
	p->family = v6 ? AF_INET6 : AF_INET;
	if (v6) {
		p->addr[0] = 0x20;
		p->addr[1] = 0x01;
		p->addr[2] = 0x0d;
		p->addr[3] = 0xb8;
		p->addr[15] = (uint8_t)rnd(256);
		p->len = (uint8_t)(120 + rnd(9));
	} else {
		p->addr[0] = 198;
		p->addr[1] = 51;
		p->addr[2] = 100;
		p->addr[3] = (uint8_t)rnd(256);
		p->len = (uint8_t)(24 + rnd(9));
	}
	/* clear host bits */
	size_t alen = v6 ? 16 : 4;
	for (size_t bit = p->len; bit < alen * 8; bit++)
		p->addr[bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
}

static void
random_ports(struct port_range *r)
{
	r->lo = (uint16_t)(1 + rnd(40));
	r->hi = (uint16_t)(r->lo + rnd(3) * rnd(10));
}

static void
random_policy(struct policy *p, int64_t id)
{
	memset(p, 0, sizeof(*p));
	p->id = id;
	p->enabled = true;
	p->n_sources = 1;
	p->sources[0].family = AF_INET;
	p->sources[0].len = 24;
	p->sources[0].addr[0] = 100;
	p->sources[0].addr[1] = 64;
	p->sources[0].addr[2] = (uint8_t)id;
	p->n_hosts = rnd(4);
	for (size_t i = 0; i < p->n_hosts; i++)
		random_prefix(&p->hosts[i], rnd(2));
	p->n_ports = rnd(3);
	for (size_t i = 0; i < p->n_ports; i++)
		random_ports(&p->ports[i]);
	p->n_rules = rnd(6);
	for (size_t i = 0; i < p->n_rules; i++) {
		struct policy_rule *r = &p->rules[i];

		r->proto = (enum ip_proto)rnd(4);
		r->has_dest = rnd(3) != 0;
		if (r->has_dest)
			random_prefix(&r->dest, rnd(2));
		if (r->proto == IP_PROTO_TCP || r->proto == IP_PROTO_UDP) {
			r->n_ports = rnd(3);
			for (size_t j = 0; j < r->n_ports; j++)
				random_ports(&r->ports[j]);
		}
	}
}

/* Reference semantics: does the policy's allowlist admit this packet? */
static bool
entry_admits(enum ip_proto proto, const struct ip_prefix *dest,
    const struct port_range *ports, size_t n_ports, uint8_t fam,
    const uint8_t *addr, uint8_t l4, uint16_t port)
{
	if (dest) {
		struct ip_prefix pt;

		memset(&pt, 0, sizeof(pt));
		pt.family = fam;
		pt.len = fam == AF_INET ? 32 : 128;
		memcpy(pt.addr, addr, fam == AF_INET ? 4 : 16);
		if (!netaddr_prefix_contains(dest, &pt))
			return false;
	}
	switch (proto) {
	case IP_PROTO_TCP:
		if (l4 != 6)
			return false;
		break;
	case IP_PROTO_UDP:
		if (l4 != 17)
			return false;
		break;
	case IP_PROTO_ICMP:
		return l4 == (fam == AF_INET ? 1 : 58);
	case IP_PROTO_ANY:
		return true;
	}
	if (n_ports == 0)
		return true;
	for (size_t i = 0; i < n_ports; i++)
		if (port >= ports[i].lo && port <= ports[i].hi)
			return true;
	return false;
}

static bool
policy_admits(const struct policy *p, uint8_t fam, const uint8_t *addr,
    uint8_t l4, uint16_t port)
{
	if (p->n_hosts > 0 && p->n_ports == 0) {
		for (size_t i = 0; i < p->n_hosts; i++)
			if (entry_admits(IP_PROTO_ANY, &p->hosts[i], NULL, 0, fam, addr, l4, port))
				return true;
	} else if (p->n_hosts == 0 && p->n_ports > 0) {
		if (entry_admits(IP_PROTO_TCP, NULL, p->ports, p->n_ports, fam, addr, l4, port) ||
		    entry_admits(IP_PROTO_UDP, NULL, p->ports, p->n_ports, fam, addr, l4, port))
			return true;
	} else if (p->n_hosts > 0) {
		for (size_t i = 0; i < p->n_hosts; i++)
			if (entry_admits(IP_PROTO_TCP, &p->hosts[i], p->ports, p->n_ports, fam, addr, l4, port) ||
			    entry_admits(IP_PROTO_UDP, &p->hosts[i], p->ports, p->n_ports, fam, addr, l4, port))
				return true;
	}
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (entry_admits(r->proto, r->has_dest ? &r->dest : NULL, r->ports,
		    r->n_ports, fam, addr, l4, port))
			return true;
	}
	return false;
}

static bool
elems_admit(const struct render_elems *l, uint32_t mark, uint8_t fam,
    const uint8_t *addr, uint8_t l4, uint16_t port)
{
	uint8_t a[16] = { 0 };
	size_t alen = fam == AF_INET ? 4 : 16;

	memcpy(a, addr, alen);
	for (size_t i = 0; i < l->n; i++) {
		const struct render_elem *e = &l->v[i];
		bool v4set = e->set == RENDER_SET_PRE4 || e->set == RENDER_SET_ALLOW4;
		bool v6set = e->set == RENDER_SET_PRE6 || e->set == RENDER_SET_ALLOW6;

		if (e->mark != mark || (fam == AF_INET ? !v4set : !v6set))
			continue;
		if (memcmp(a, e->lo, alen) >= 0 && memcmp(a, e->hi, alen) <= 0 &&
		    l4 >= e->proto_lo && l4 <= e->proto_hi &&
		    port >= e->port_lo && port <= e->port_hi)
			return true;
	}
	return false;
}

static void
test_random_policies(void)
{
	struct render_config rc;
	struct render_profile custom;
	struct policy *p = policy_new();
	int conflicts = 0, mismatches = 0, failures = 0, policies = 300;
	size_t total = 0;

	memset(&rc, 0, sizeof(rc));
	rc.log_rate = 10;
	rc.log_burst = 20;
	memset(&custom, 0, sizeof(custom));
	snprintf(custom.name, sizeof(custom.name), "custom");
	custom.uses_policy_entries = true;

	for (int k = 0; k < policies; k++) {
		struct render_elems l;
		char why[256] = "";

		render_elems_init(&l);
		random_policy(p, 1 + k);
		if (render_policy(&rc, p, &custom, NULL, RENDER_STATE_ACTIVE, NULL,
		    &l, why, sizeof(why)) != 0) {
			failures++;
			tap_diag("random policy %d: %s", k, why);
			render_elems_free(&l);
			continue;
		}
		total += l.n;
		for (size_t i = 0; i < l.n; i++)
			for (size_t j = i + 1; j < l.n; j++)
				if (render_elems_conflict(&l.v[i], &l.v[j]))
					conflicts++;
		for (int s = 0; s < 400; s++) {
			uint8_t addr[16] = { 0 };
			bool v6 = rnd(2);
			uint8_t l4 = (uint8_t)(rnd(4) == 0 ? rnd(256) :
			    (uint8_t[]){ 6, 17, 1, 58 }[rnd(4)]);
			uint16_t port = (uint16_t)rnd(60);

			if (v6) {
				addr[0] = 0x20; addr[1] = 0x01; addr[2] = 0x0d;
				addr[3] = 0xb8; addr[15] = (uint8_t)rnd(256);
			} else {
				addr[0] = 198; addr[1] = 51; addr[2] = 100;
				addr[3] = (uint8_t)rnd(256);
			}
			if (policy_admits(p, v6 ? AF_INET6 : AF_INET, addr, l4, port) !=
			    elems_admit(&l, (uint32_t)p->id, v6 ? AF_INET6 : AF_INET,
			    addr, l4, port))
				mismatches++;
		}
		render_elems_free(&l);
	}
	is_int(failures, 0, "%d random policies render", policies);
	is_int(conflicts, 0, "no two elements of a policy conflict (%zu elements)", total);
	is_int(mismatches, 0, "elements admit exactly what the entries describe");
	policy_free(p);
}

/* Does an element of @set (mark 5) hold @addr, @l4 port 53? */
static bool
set_holds(const struct render_elems *l, enum render_set set, uint8_t fam,
    const char *addr, uint8_t l4)
{
	uint8_t a[16] = { 0 };
	size_t alen = fam == AF_INET ? 4 : 16;

	inet_pton(fam, addr, a);
	for (size_t i = 0; i < l->n; i++) {
		const struct render_elem *e = &l->v[i];

		if (e->set == set && e->mark == 5 &&
		    memcmp(a, e->lo, alen) >= 0 && memcmp(a, e->hi, alen) <= 0 &&
		    l4 >= e->proto_lo && l4 <= e->proto_hi &&
		    e->port_lo <= 53 && e->port_hi >= 53)
			return true;
	}
	return false;
}

/*
 * "Port 53 anywhere" goes to the pre sets (ahead of the DNS deny), which
 * decide consults before the metadata and link-local denies and which
 * are the only allow path to the gateway itself: the parts of such an
 * entry inside those go to the allow sets, after the denies.  An entry
 * naming such an address itself stays in the pre sets.
 */
static void
test_dns_anywhere(void)
{
	static const struct {
		const char *addr;
		uint8_t fam;
		bool pre;
	} want[] = {
		{ "8.8.8.8", AF_INET, true },
		{ "0.0.0.0", AF_INET, true },
		{ "255.255.255.255", AF_INET, true },
		{ "169.253.255.255", AF_INET, true },
		{ "169.254.0.0", AF_INET, false },
		{ "169.254.169.254", AF_INET, false },
		{ "169.254.255.255", AF_INET, false },
		{ "169.255.0.0", AF_INET, true },
		{ "100.64.1.1", AF_INET, false },	/* the gateway */
		{ "100.64.1.0", AF_INET, true },
		{ "100.64.1.2", AF_INET, true },
		{ "2001:db8::53", AF_INET6, true },
		{ "fe80::1", AF_INET6, false },
		{ "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AF_INET6, false },
		{ "fec0::", AF_INET6, true },
		{ "fd00:ec2::254", AF_INET6, false },
		{ "fd00:ec2::253", AF_INET6, true },
		{ "fd00:ec2::255", AF_INET6, true },
	};
	struct render_config rc;
	struct render_profile custom;
	struct policy *p = policy_new();
	struct render_elems l;
	char why[256] = "";
	int wrong = 0;

	memset(&rc, 0, sizeof(rc));
	rc.n_gateway = 1;
	rc.gateway[0].family = AF_INET;
	rc.gateway[0].len = 32;
	inet_pton(AF_INET, "100.64.1.1", rc.gateway[0].addr);
	memset(&custom, 0, sizeof(custom));
	snprintf(custom.name, sizeof(custom.name), "custom");
	custom.uses_policy_entries = true;
	p->id = 5;
	p->n_sources = 1;
	p->sources[0].family = AF_INET;
	p->sources[0].len = 24;
	inet_pton(AF_INET, "100.64.5.0", p->sources[0].addr);
	p->n_ports = 1;
	p->ports[0].lo = p->ports[0].hi = 53;
	render_elems_init(&l);
	is_int(render_policy(&rc, p, &custom, NULL, RENDER_STATE_ACTIVE, NULL, &l,
	    why, sizeof(why)), 0, "port 53 anywhere renders");
	for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
		bool v4 = want[i].fam == AF_INET;

		for (uint8_t l4 = 6; l4 <= 17; l4 += 11) {
			bool pre = set_holds(&l, v4 ? RENDER_SET_PRE4 : RENDER_SET_PRE6,
			    want[i].fam, want[i].addr, l4);
			bool allow = set_holds(&l, v4 ? RENDER_SET_ALLOW4 :
			    RENDER_SET_ALLOW6, want[i].fam, want[i].addr, l4);

			if (pre != want[i].pre || allow == want[i].pre) {
				wrong++;
				tap_diag("%s proto %u: pre %d allow %d", want[i].addr,
				    l4, pre, allow);
			}
		}
	}
	is_int(wrong, 0, "port 53 anywhere: metadata, link-local and the gateway "
	    "only in the allow sets, everything else in the pre sets");
	render_elems_free(&l);

	/* Named explicitly: a resolver on a link-local address. */
	render_elems_init(&l);
	p->n_hosts = 1;
	p->hosts[0].family = AF_INET;
	p->hosts[0].len = 32;
	inet_pton(AF_INET, "169.254.169.253", p->hosts[0].addr);
	is_int(render_policy(&rc, p, &custom, NULL, RENDER_STATE_ACTIVE, NULL, &l,
	    why, sizeof(why)), 0, "port 53 of a named link-local host renders");
	ok(set_holds(&l, RENDER_SET_PRE4, AF_INET, "169.254.169.253", 17),
	    "named explicitly: stays in the pre sets");
	render_elems_free(&l);
	policy_free(p);
}

static void
test_texts(void)
{
	struct render_elem e;
	char buf[200];

	memset(&e, 0, sizeof(e));
	e.set = RENDER_SET_SRCIF;
	e.mark = 9;
	memcpy(e.lo, "br-0123456789ab", 15);
	is_int(render_elem_text(&e, buf, sizeof(buf)), 0, "interface element renders");
	is_str(buf, "\"br-0123456789ab\" : 9", "interface element is quoted");
	memcpy(e.lo, "br\"; flush", 10);
	is_int(render_elem_text(&e, buf, sizeof(buf)), EGW_E_INVALID,
	    "an interface name with nft syntax is refused");
	is_str(buf, "", "and nothing is written");

	memset(&e, 0, sizeof(e));
	e.set = RENDER_SET_ALLOW4;
	e.family = AF_INET;
	e.mark = 3;
	inet_pton(AF_INET, "198.51.100.0", e.lo);
	inet_pton(AF_INET, "198.51.100.127", e.hi);
	e.proto_lo = e.proto_hi = 6;
	e.port_lo = 8000;
	e.port_hi = 8100;
	render_elem_text(&e, buf, sizeof(buf));
	is_str(buf, "3 . 198.51.100.0/25 . 6 . 8000-8100", "prefix element");
	inet_pton(AF_INET, "198.51.100.5", e.lo);
	render_elem_text(&e, buf, sizeof(buf));
	is_str(buf, "3 . 198.51.100.5-198.51.100.127 . 6 . 8000-8100", "range element");

	struct policy *p = policy_new();
	struct render_config rc;
	struct render_elems l;
	char why[256] = "";

	memset(&rc, 0, sizeof(rc));
	render_elems_init(&l);
	p->id = 4;
	is_int(render_policy(&rc, p, NULL, NULL, RENDER_STATE_ACTIVE, NULL, &l,
	    why, sizeof(why)), EGW_E_INVALID, "a policy with no source fails");
	ok(strstr(why, "no source") != NULL, "with a reason (%s)", why);
	is_int(render_policy(&rc, p, NULL, NULL, RENDER_STATE_ACTIVE, "br\";drop",
	    &l, why, sizeof(why)), EGW_E_INVALID, "an unsafe derived interface fails");
	p->id = 0;
	is_int(render_policy(&rc, p, NULL, NULL, RENDER_STATE_ACTIVE, "eth0", &l,
	    why, sizeof(why)), EGW_E_INVALID, "mark 0 is refused for a policy");
	is_int((long long)l.n, 0, "failures append nothing");
	render_elems_free(&l);
	policy_free(p);
}

/* How many elements of @set with @mark does @l hold? */
static int
count_marked(const struct render_elems *l, enum render_set set, uint32_t mark)
{
	int n = 0;

	for (size_t i = 0; i < l->n; i++)
		n += l->v[i].set == set && l->v[i].mark == mark;
	return n;
}

/*
 * Sources bind to interfaces only when a policy names both, in every
 * state (the binding is part of "which traffic is the scenario's"), and
 * only the hooks with an input interface check it.
 */
static void
test_bound_sources(void)
{
	static const enum render_state states[] = {
		RENDER_STATE_ACTIVE, RENDER_STATE_DISABLED, RENDER_STATE_FAILED,
	};
	struct render_config rc;
	struct render_profile none;
	struct render_elems l;
	struct render_elem e;
	char why[256] = "", buf[200];
	char *text;

	memset(&rc, 0, sizeof(rc));
	memset(&none, 0, sizeof(none));
	snprintf(none.name, sizeof(none.name), "none");
	for (int shape = 0; shape < 4; shape++) {
		struct policy *p = policy_new();
		const char *derived = shape == 3 ? "br-derived" : NULL;
		bool both = shape == 2;

		p->id = 7;
		if (shape == 0 || shape == 2) {
			p->n_sources = 1;
			p->sources[0].family = AF_INET;
			p->sources[0].len = 24;
			inet_pton(AF_INET, "100.64.7.0", p->sources[0].addr);
		}
		if (shape == 1 || shape == 2) {
			p->n_interfaces = 2;
			snprintf(p->interfaces[0], sizeof(p->interfaces[0]), "br-a");
			snprintf(p->interfaces[1], sizeof(p->interfaces[1]), "br-b");
		}
		for (size_t s = 0; s < sizeof(states) / sizeof(*states); s++) {
			render_elems_init(&l);
			is_int(render_policy(&rc, p, &none, &none, states[s], derived,
			    &l, why, sizeof(why)), 0, "shape %d state %zu renders",
			    shape, s);
			is_int(count_marked(&l, RENDER_SET_BOUND, 7), both ? 1 : 0,
			    "shape %d state %zu: bound %s", shape, s,
			    both ? "once" : "not at all");
			is_int(count_marked(&l, RENDER_SET_BOUNDIF, 7), both ? 2 : 0,
			    "shape %d state %zu: one boundif per named interface",
			    shape, s);
			render_elems_free(&l);
		}
		policy_free(p);
	}

	memset(&e, 0, sizeof(e));
	e.set = RENDER_SET_BOUNDIF;
	e.mark = 7;
	memcpy(e.lo, "br-a", 4);
	is_int(render_elem_text(&e, buf, sizeof(buf)), 0, "boundif element renders");
	is_str(buf, "7 . \"br-a\"", "boundif element: mark . quoted name");
	memcpy(e.lo, "br\"; flush", 10);
	is_int(render_elem_text(&e, buf, sizeof(buf)), EGW_E_INVALID,
	    "a boundif name with nft syntax is refused");

	rc.output_hook = true;
	text = render_skeleton_text(&rc);
	ok(text != NULL, "skeleton renders");
	if (text != NULL) {
		ok(strstr(text, "chain deny_spoofed {") != NULL,
		    "a deny chain for spoofed sources");
		ok(strstr(text, "audit_spoofed") == NULL,
		    "audit mode does not let spoofed sources through");
		ok(strstr(text, "ip saddr map @src4 goto bound_forward") != NULL &&
		    strstr(text, "ip saddr map @src4 goto bound_input") != NULL,
		    "forward and input send source matches to the interface check");
		ok(strstr(text, "iifname map @srcif goto decide ") != NULL,
		    "interface matches skip it");
		{
			/* the output chain alone: up to its closing brace */
			char *out = strstr(text, "chain output {");
			char *end = out ? strstr(out, "\n\t}") : NULL;

			if (end != NULL)
				*end = '\0';
			ok(out != NULL && end != NULL &&
			    strstr(out, "@src4 goto decide ") != NULL &&
			    strstr(out, "bound_") == NULL,
			    "the output hook (no input interface) does not check");
		}
		free(text);
	}
}

/* The applier calls a table with another number of sets drift. */
static void
test_kset_count(void)
{
	static const unsigned shards[] = { 0, 1, 2, 4, 256 };

	for (size_t i = 0; i < sizeof(shards) / sizeof(*shards); i++) {
		struct render_config rc;
		char *text;
		size_t n = 0;

		memset(&rc, 0, sizeof(rc));
		rc.shards = shards[i];
		text = render_skeleton_text(&rc);
		for (const char *p = text; p && (p = strstr(p, "\n\t")) != NULL; p++)
			n += strncmp(p + 2, "set ", 4) == 0 || strncmp(p + 2, "map ", 4) == 0;
		is_int((long long)n, (long long)render_kset_count(&rc),
		    "shards %u: render_kset_count() is what the skeleton declares",
		    shards[i]);
		free(text);
	}
}

int
main(void)
{
	test_texts();
	test_kset_count();
	test_bound_sources();
	test_dns_anywhere();
	test_random_policies();
	test_golden();
	return tap_done();
}
