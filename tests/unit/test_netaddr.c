/* SPDX-License-Identifier: MIT */
/*
 * This file contains the table-driven tests of netaddr.c's parsers.
 */
#include "err.h"
#include "netaddr.h"
#include "tap.h"

#include <string.h>
#include <sys/socket.h>

static const struct {
	const char *in;
	const char *canonical;	/* NULL: must be rejected */
} prefixes[] = {
	{ "192.0.2.1", "192.0.2.1" },
	{ "192.0.2.0/24", "192.0.2.0/24" },
	{ "0.0.0.0/0", "0.0.0.0/0" },
	{ "2001:db8::/32", "2001:db8::/32" },
	{ "2001:DB8::1", "2001:db8::1" },
	{ "::/0", "::/0" },
	{ "192.0.2.1/24", NULL },		/* host bits set */
	{ "192.0.2.0/33", NULL },
	{ "192.0.2.0/024", NULL },		/* leading zero in length */
	{ "192.0.2.0/", NULL },
	{ "/24", NULL },
	{ "010.0.0.1", NULL },			/* octal-looking octet */
	{ "192.0.2", NULL },
	{ "192.0.2.256", NULL },
	{ "example.com", NULL },
	{ "192.0.2.1; drop", NULL },
	{ "192.0.2.1 ", NULL },
	{ "", NULL },
	{ "2001:db8::/129", NULL },
	{ "2001:db8::1/64", NULL },
	{ "fe80::1%eth0", NULL },
	{ "1.2.3.4/+8", NULL },
};

static const struct {
	const char *in;
	int lo, hi;		/* lo 0: must be rejected */
} ports[] = {
	{ "443", 443, 443 }, { "1", 1, 1 }, { "65535", 65535, 65535 },
	{ "8000-8100", 8000, 8100 }, { "0", 0, 0 }, { "65536", 0, 0 },
	{ "-1", 0, 0 }, { "80-", 0, 0 }, { "100-99", 0, 0 }, { "0443", 0, 0 },
	{ "4 43", 0, 0 }, { "", 0, 0 }, { "1-2-3", 0, 0 }, { "99999999999", 0, 0 },
};

int
main(void)
{
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++) {
		struct ip_prefix p;
		const char *why = NULL;
		char buf[NETADDR_PREFIX_STRLEN];
		int rc = netaddr_parse_prefix(prefixes[i].in, &p, &why);

		if (prefixes[i].canonical == NULL) {
			ok(rc == EGW_E_INVALID && why != NULL, "prefix \"%s\" rejected", prefixes[i].in);
		} else {
			ok(rc == 0, "prefix \"%s\" accepted", prefixes[i].in);
			is_str(netaddr_format_prefix(&p, buf, false), prefixes[i].canonical,
			    "prefix \"%s\" canonical form", prefixes[i].in);
		}
	}
	for (size_t i = 0; i < sizeof(ports) / sizeof(*ports); i++) {
		struct port_range r;
		const char *why;
		int rc = netaddr_parse_port_range(ports[i].in, &r, &why);

		if (ports[i].lo == 0)
			ok(rc == EGW_E_INVALID, "port \"%s\" rejected", ports[i].in);
		else
			ok(rc == 0 && r.lo == ports[i].lo && r.hi == ports[i].hi,
			    "port \"%s\" parsed", ports[i].in);
	}

	{
		struct ip_prefix a, b;
		const char *why;

		netaddr_parse_prefix("10.0.0.0/8", &a, &why);
		netaddr_parse_prefix("10.1.2.0/24", &b, &why);
		ok(netaddr_prefix_contains(&a, &b), "10/8 contains 10.1.2/24");
		ok(!netaddr_prefix_contains(&b, &a), "10.1.2/24 does not contain 10/8");
		ok(netaddr_prefix_overlaps(&a, &b) && netaddr_prefix_overlaps(&b, &a),
		    "overlap is symmetric");
		netaddr_parse_prefix("2001:db8::/32", &b, &why);
		ok(!netaddr_prefix_overlaps(&a, &b), "families never overlap");
		ok(netaddr_parse_addr("192.0.2.0/24", &a, &why) != 0, "parse_addr refuses a prefix");
	}

	{
		enum ip_proto pr;

		ok(netaddr_parse_proto("tcp", &pr) == 0 && pr == IP_PROTO_TCP, "proto tcp");
		ok(netaddr_parse_proto("icmp", &pr) == 0 && pr == IP_PROTO_ICMP, "proto icmp");
		ok(netaddr_parse_proto("any", &pr) == 0 && pr == IP_PROTO_ANY, "proto any");
		ok(netaddr_parse_proto("TCP", &pr) != 0, "proto is case-sensitive");
		ok(netaddr_parse_proto("sctp", &pr) != 0, "proto sctp rejected");
		is_str(netaddr_proto_name(IP_PROTO_UDP), "udp", "proto name udp");
	}

	{
		static const struct {
			const char *in, *v4;	/* v4 NULL: not an IPv4 form */
		} forms[] = {
			{ "::ffff:10.9.0.1", "10.9.0.1" },
			{ "::ffff:10.8.0.0/120", "10.8.0.0/24" },
			{ "::ffff:0:0/96", "0.0.0.0/0" },
			{ "::10.0.0.1", "10.0.0.1" },
			{ "::/96", "0.0.0.0/0" },
			{ "::", NULL },
			{ "::1", NULL },
			{ "::2", "0.0.0.2" },
			{ "::/0", NULL },
			{ "::/95", NULL },
			{ "2001:db8::10.0.0.1", NULL },
			{ "64:ff9b::10.0.0.1", NULL },	/* NAT64: translated, not embedded */
			{ "::ffff:0:10.0.0.1", "10.0.0.1" },	/* IPv4-translated */
			{ "::ffff:0:0:0/96", "0.0.0.0/0" },
			{ "::fffe:0:10.0.0.1", NULL },
			{ "10.0.0.1", NULL },
		};

		for (size_t i = 0; i < sizeof(forms) / sizeof(*forms); i++) {
			struct ip_prefix p, v4;
			const char *why;
			char buf[NETADDR_PREFIX_STRLEN];
			bool embeds;

			if (netaddr_parse_prefix(forms[i].in, &p, &why) != 0) {
				ok(false, "embeds: %s parses", forms[i].in);
				continue;
			}
			embeds = netaddr_embeds_ipv4(&p, &v4);
			if (forms[i].v4 == NULL)
				ok(!embeds, "%s carries no IPv4 address", forms[i].in);
			else
				ok(embeds && strcmp(netaddr_format_prefix(&v4, buf, false),
				    forms[i].v4) == 0, "%s is IPv4 %s", forms[i].in,
				    forms[i].v4);
		}
	}

	ok(netaddr_valid_ifname("br-0123456789ab"), "docker bridge name valid");
	ok(netaddr_valid_ifname("veth0.100"), "vlan-style name valid");
	ok(!netaddr_valid_ifname("0123456789abcdef"), "16-byte name rejected");
	ok(!netaddr_valid_ifname(""), "empty name rejected");
	ok(!netaddr_valid_ifname("eth0\""), "quote rejected");
	ok(!netaddr_valid_ifname("eth*"), "wildcard rejected");
	ok(!netaddr_valid_ifname(".."), "dot-dot rejected");
	ok(!netaddr_valid_ifname("a b"), "space rejected");
	return tap_done();
}
