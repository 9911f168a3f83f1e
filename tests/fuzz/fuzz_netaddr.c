/* SPDX-License-Identifier: MIT */
/*
 * This file contains the libFuzzer target of the typed network value
 * parsers (netaddr.h): addresses, prefixes, port ranges, protocols,
 * interface names, plus the interface name derived from a network_id.
 *
 * Properties checked besides memory safety:
 *  - an accepted prefix has a valid family and length, no host bits, and
 *    its canonical text parses back to the identical value; an accepted
 *    IPv4 text is already canonical (one spelling per value), except that
 *    "/32" may be written out;
 *  - a single address is a full-length prefix;
 *  - an accepted port range has 1 <= lo <= hi, and "lo" / "lo-hi" parses
 *    back to it;
 *  - a protocol name maps to itself; an interface name is 1..15 of
 *    [A-Za-z0-9_.-] and never "." or "..";
 *  - contains/overlaps are consistent with each other.
 */
#include "fuzz.h"

#include "config.h"
#include "err.h"
#include "netaddr.h"

#include <sys/socket.h>

static struct config cfg;
static struct ip_prefix prev;
static bool have_prev;

static const char *
cfg_env(const char *name)
{
	(void)name;
	return NULL;	/* every setting at its default */
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	FUZZ_CHECK(config_load(&cfg, cfg_env, err, sizeof(err)) == 0);
	return 0;
}

static void
check_prefix(const char *s)
{
	struct ip_prefix p, q;
	char buf[NETADDR_PREFIX_STRLEN];
	const char *why = NULL;
	unsigned max;

	if (netaddr_parse_prefix(s, &p, &why) != 0) {
		FUZZ_CHECK(why != NULL && why[0] != '\0');
		return;
	}
	FUZZ_CHECK(p.family == AF_INET || p.family == AF_INET6);
	max = p.family == AF_INET ? 32 : 128;
	FUZZ_CHECK(p.len <= max);
	for (unsigned bit = p.len; bit < max; bit++)
		FUZZ_CHECK(!(p.addr[bit / 8] & (0x80 >> (bit % 8))));
	if (p.family == AF_INET)
		for (int i = 4; i < 16; i++)
			FUZZ_CHECK(p.addr[i] == 0);
	netaddr_format_prefix(&p, buf, false);
	FUZZ_CHECK(netaddr_parse_prefix(buf, &q, &why) == 0);
	FUZZ_CHECK(memcmp(&p, &q, sizeof(p)) == 0);
	if (p.family == AF_INET && strchr(s, ':') == NULL) {
		size_t l = strlen(s);

		if (!(l > 3 && strcmp(s + l - 3, "/32") == 0))
			FUZZ_CHECK(strcmp(buf, s) == 0);
	}
	netaddr_format_prefix(&p, buf, true);
	FUZZ_CHECK(netaddr_parse_prefix(buf, &q, &why) == 0);
	FUZZ_CHECK(memcmp(&p, &q, sizeof(p)) == 0);
	FUZZ_CHECK(netaddr_prefix_contains(&p, &p));
	if (have_prev) {
		bool c1 = netaddr_prefix_contains(&p, &prev);
		bool c2 = netaddr_prefix_contains(&prev, &p);

		FUZZ_CHECK(netaddr_prefix_overlaps(&p, &prev) == (c1 || c2));
		if (c1 && c2)
			FUZZ_CHECK(memcmp(&p, &prev, sizeof(p)) == 0);
	}
	prev = p;
	have_prev = true;
	if (strchr(s, '/') == NULL) {
		FUZZ_CHECK(netaddr_parse_addr(s, &q, &why) == 0);
		FUZZ_CHECK(q.len == max);
	}
}

static void
check_ports(const char *s)
{
	struct port_range r, q;
	const char *why = NULL;
	char buf[16];

	if (netaddr_parse_port_range(s, &r, &why) != 0) {
		FUZZ_CHECK(why != NULL);
		return;
	}
	FUZZ_CHECK(r.lo >= 1 && r.lo <= r.hi);
	if (r.lo == r.hi)
		snprintf(buf, sizeof(buf), "%u", r.lo);
	else
		snprintf(buf, sizeof(buf), "%u-%u", r.lo, r.hi);
	FUZZ_CHECK(netaddr_parse_port_range(buf, &q, &why) == 0);
	FUZZ_CHECK(q.lo == r.lo && q.hi == r.hi);
	FUZZ_CHECK(strcmp(buf, s) == 0 ||
	    (r.lo == r.hi && strchr(s, '-') != NULL));
}

static void
check_names(const char *s)
{
	enum ip_proto proto;
	char ifname[NETADDR_IFNAMSIZ];

	if (netaddr_parse_proto(s, &proto) == 0)
		FUZZ_CHECK(strcmp(netaddr_proto_name(proto), s) == 0);
	if (netaddr_valid_ifname(s)) {
		size_t l = strlen(s);

		FUZZ_CHECK(l >= 1 && l <= 15);
		FUZZ_CHECK(strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789_.-") == l);
		FUZZ_CHECK(strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
	}
	memset(ifname, 0, sizeof(ifname));
	if (config_iface_for_network(&cfg, s, ifname) == 0) {
		FUZZ_CHECK(memchr(ifname, '\0', sizeof(ifname)) != NULL);
		FUZZ_CHECK(netaddr_valid_ifname(ifname));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);

	/* As the codec hands them over: C strings without NUL. */
	check_prefix(s);
	check_ports(s);
	check_names(s);
	free(s);
	return 0;
}
