/* SPDX-License-Identifier: MIT */
/*
 * This file contains the table-driven tests of pktparse.c: NFLOG prefixes
 * and hand-built IPv4/IPv6 packets, including truncated and malformed ones.
 *
 * Packets are written as hex (spaces ignored) so every byte is visible.
 * Each valid packet is also parsed at every shorter length: the parser must
 * never claim ports it could not have read, and must agree with the full
 * parse whenever it does.
 */
#include "err.h"
#include "pktparse.h"
#include "tap.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const struct {
	const char *in;
	int action;		/* -1: must be rejected */
	unsigned id;
	const char *reason;
} prefixes[] = {
	{ "egw:d:42:default", PKTPARSE_DENY, 42, "default" },
	{ "egw:a:7:allowlist", PKTPARSE_ALLOW, 7, "allowlist" },
	{ "egw:w:13:metadata", PKTPARSE_WOULD_DENY, 13, "metadata" },
	{ "egw:d:0:baseline", PKTPARSE_DENY, 0, "baseline" },
	{ "egw:d:2147483647:x", PKTPARSE_DENY, 2147483647u, "x" },
	{ "egw:d:1:abcdefghijklmnopqrstuvwx", PKTPARSE_DENY, 1, "abcdefghijklmnopqrstuvwx" },
	{ "egw:d:1:link_local", PKTPARSE_DENY, 1, "link_local" },
	{ "egw:d:m:default", PKTPARSE_DENY, 0, "default" },	/* id = mark */
	{ "egw:a:m:allowlist", PKTPARSE_ALLOW, 0, "allowlist" },
	{ "egw:w:m:metadata", PKTPARSE_WOULD_DENY, 0, "metadata" },
	{ "egw:d:m:", -1, 0, NULL },
	{ "egw:d:m", -1, 0, NULL },
	{ "egw:d:mm:x", -1, 0, NULL },
	{ "egw:d:m1:x", -1, 0, NULL },
	{ "egw:d:1m:x", -1, 0, NULL },
	{ "egw:d:1:abcdefghijklmnopqrstuvwxy", -1, 0, NULL },	/* 25 chars */
	{ "egw:d:2147483648:x", -1, 0, NULL },
	{ "egw:d:99999999999:x", -1, 0, NULL },
	{ "egw:d:042:x", -1, 0, NULL },
	{ "egw:d:00:x", -1, 0, NULL },
	{ "egw:d:-1:x", -1, 0, NULL },
	{ "egw:d:+1:x", -1, 0, NULL },
	{ "egw:d::x", -1, 0, NULL },
	{ "egw:d:1:", -1, 0, NULL },
	{ "egw:d:1", -1, 0, NULL },
	{ "egw:d:1:Default", -1, 0, NULL },
	{ "egw:d:1:a b", -1, 0, NULL },
	{ "egw:d:1:default ", -1, 0, NULL },
	{ "egw:d:1:dns:x", -1, 0, NULL },
	{ "egw:x:1:default", -1, 0, NULL },
	{ "egw:dd:1:default", -1, 0, NULL },
	{ "EGW:d:1:default", -1, 0, NULL },
	{ "egw-d-1-default", -1, 0, NULL },
	{ " egw:d:1:default", -1, 0, NULL },
	{ "IN=eth0 OUT=eth1", -1, 0, NULL },
	{ "", -1, 0, NULL },
};

#define F_ANY 0xff

static const struct {
	const char *name;
	const char *hex;
	int rc;
	int family;
	const char *src, *dst;
	int proto;		/* -1: PKTPARSE_F_PROTO must be clear */
	int sport, dport;	/* -1: PKTPARSE_F_PORTS must be clear */
	int icmp_type;		/* -1: PKTPARSE_F_ICMP must be clear */
	int flags;		/* expected FRAGMENT|TRUNCATED bits */
} packets[] = {
	{ "ipv4 tcp syn",
	  "45000028 0001 4000 4006 0000 64400102 cb00710a"
	  "9c40 01bb 00000000 00000000 5002 7210 0000 0000",
	  0, AF_INET, "100.64.1.2", "203.0.113.10", IPPROTO_TCP, 40000, 443, -1, 0 },
	{ "ipv4 udp",
	  "4500001c 0002 0000 4011 0000 64400102 c6336407"
	  "14e9 0035 0008 0000",
	  0, AF_INET, "100.64.1.2", "198.51.100.7", IPPROTO_UDP, 5353, 53, -1, 0 },
	{ "ipv4 icmp echo",
	  "4500001c 0003 0000 4001 0000 64400102 c0000201"
	  "0800 f7ff 0000 0000",
	  0, AF_INET, "100.64.1.2", "192.0.2.1", IPPROTO_ICMP, -1, -1, 8, 0 },
	{ "ipv4 with options (ihl 6)",
	  "4600002c 0004 0000 4006 0000 0a000001 0a000002 01010100"
	  "0050 1f90 00000000 00000000 5002 7210 0000 0000",
	  0, AF_INET, "10.0.0.1", "10.0.0.2", IPPROTO_TCP, 80, 8080, -1, 0 },
	{ "ipv4 header only (copy cut)",
	  "45000028 0001 4000 4006 0000 64400102 cb00710a",
	  0, AF_INET, "100.64.1.2", "203.0.113.10", IPPROTO_TCP, -1, -1, -1,
	  PKTPARSE_F_TRUNCATED },
	{ "ipv4 two bytes of tcp",
	  "45000028 0001 4000 4006 0000 64400102 cb00710a 9c40",
	  0, AF_INET, "100.64.1.2", "203.0.113.10", IPPROTO_TCP, -1, -1, -1,
	  PKTPARSE_F_TRUNCATED },
	{ "ipv4 non-first fragment",
	  "45000028 0005 00b9 4011 0000 64400102 cb00710a"
	  "9c40 01bb 0000 0000 0000 0000 0000 0000 0000 0000",
	  0, AF_INET, "100.64.1.2", "203.0.113.10", IPPROTO_UDP, -1, -1, -1,
	  PKTPARSE_F_FRAGMENT },
	{ "ipv4 first fragment (MF, offset 0)",
	  "45000028 0005 2000 4011 0000 64400102 cb00710a"
	  "9c40 01bb 0000 0000 0000 0000 0000 0000 0000 0000",
	  0, AF_INET, "100.64.1.2", "203.0.113.10", IPPROTO_UDP, 40000, 443, -1, 0 },
	{ "ipv4 total length ends inside udp ports",
	  "45000016 0006 0000 4011 0000 64400102 cb00710a 9c40 01bb 0000",
	  0, AF_INET, "100.64.1.2", "203.0.113.10", IPPROTO_UDP, -1, -1, -1,
	  PKTPARSE_F_TRUNCATED },
	{ "ipv4 gre (no ports)",
	  "45000018 0007 0000 402f 0000 64400102 cb00710a 0000 0800",
	  0, AF_INET, "100.64.1.2", "203.0.113.10", IPPROTO_GRE, -1, -1, -1, 0 },
	{ "ipv4 total length 0 (BIG TCP GRO): the copied length",
	  "45000000 0001 4000 4006 0000 64400102 cb00710a"
	  "9c40 01bb 00000000 00000000 5002 7210 0000 0000",
	  0, AF_INET, "100.64.1.2", "203.0.113.10", IPPROTO_TCP, 40000, 443,
	  -1, 0 },
	{ "ipv4 total length 0, header only copied",
	  "45000000 0001 4000 4006 0000 64400102 cb00710a",
	  0, AF_INET, "100.64.1.2", "203.0.113.10", IPPROTO_TCP, -1, -1, -1,
	  PKTPARSE_F_TRUNCATED },
	{ "ipv4 19 bytes", "45000028 0001 4000 4006 0000 64400102 cb0071",
	  EGW_E_INVALID, 0, NULL, NULL, -1, -1, -1, -1, 0 },
	{ "ipv4 ihl 4", "44000028 0001 4000 4006 0000 64400102 cb00710a 9c40 01bb",
	  EGW_E_INVALID, 0, NULL, NULL, -1, -1, -1, -1, 0 },
	{ "ipv4 ihl beyond copy",
	  "4f000028 0001 4000 4006 0000 64400102 cb00710a 9c40 01bb",
	  EGW_E_INVALID, 0, NULL, NULL, -1, -1, -1, -1, 0 },
	{ "ipv4 total length below ihl",
	  "45000010 0001 4000 4006 0000 64400102 cb00710a 9c40 01bb",
	  EGW_E_INVALID, 0, NULL, NULL, -1, -1, -1, -1, 0 },
	{ "ipv6 tcp",
	  "60000000 0014 0640 20010db8000000000000000000000001"
	  "20010db8000000000000000000000002"
	  "c350 01bb 00000000 00000000 5002 7210 0000 0000",
	  0, AF_INET6, "2001:db8::1", "2001:db8::2", IPPROTO_TCP, 50000, 443, -1, 0 },
	{ "ipv6 udp after hop-by-hop and destination options",
	  "60000000 0018 0040 fd000000000000000000000000000001"
	  "20010db8000000000000000000000053"
	  "3c00 0104 00000000"		/* hop-by-hop: next dstopts, PadN */
	  "1100 0104 00000000"		/* dstopts: next udp */
	  "d431 0035 0008 0000",
	  0, AF_INET6, "fd00::1", "2001:db8::53", IPPROTO_UDP, 54321, 53, -1, 0 },
	{ "ipv6 icmpv6 echo request",
	  "60000000 0008 3a40 20010db8000000000000000000000001"
	  "20010db8000000000000000000000002 8000 0000 0000 0001",
	  0, AF_INET6, "2001:db8::1", "2001:db8::2", IPPROTO_ICMPV6, -1, -1, 128, 0 },
	{ "ipv6 first fragment",
	  "60000000 0018 2c40 20010db8000000000000000000000001"
	  "20010db8000000000000000000000002"
	  "1100 0001 12345678"		/* fragment: next udp, offset 0, M */
	  "d431 1f90 0010 0000 0000 0000 0000 0000",
	  0, AF_INET6, "2001:db8::1", "2001:db8::2", IPPROTO_UDP, 54321, 8080, -1, 0 },
	{ "ipv6 non-first fragment",
	  "60000000 0018 2c40 20010db8000000000000000000000001"
	  "20010db8000000000000000000000002"
	  "1100 00b8 12345678"		/* offset 23*8 */
	  "d431 1f90 0010 0000 0000 0000 0000 0000",
	  0, AF_INET6, "2001:db8::1", "2001:db8::2", IPPROTO_UDP, -1, -1, -1,
	  PKTPARSE_F_FRAGMENT },
	{ "ipv6 ah then tcp",
	  "60000000 002c 3340 20010db8000000000000000000000001"
	  "20010db8000000000000000000000002"
	  "0604 0000 00000001 00000001 00000000 00000000 00000000"
	  "c350 0016 00000000 00000000 5002 7210 0000 0000",
	  0, AF_INET6, "2001:db8::1", "2001:db8::2", IPPROTO_TCP, 50000, 22, -1, 0 },
	{ "ipv6 esp (no ports)",
	  "60000000 0008 3240 20010db8000000000000000000000001"
	  "20010db8000000000000000000000002 00000001 00000001",
	  0, AF_INET6, "2001:db8::1", "2001:db8::2", IPPROTO_ESP, -1, -1, -1, 0 },
	{ "ipv6 routing header longer than copy",
	  "60000000 0020 2b40 20010db8000000000000000000000001"
	  "20010db8000000000000000000000002 0603 0000 00000000 0000",
	  0, AF_INET6, "2001:db8::1", "2001:db8::2", -1, -1, -1, -1,
	  PKTPARSE_F_TRUNCATED },
	{ "ipv6 fragment header cut",
	  "60000000 0008 2c40 20010db8000000000000000000000001"
	  "20010db8000000000000000000000002 1100 0000",
	  0, AF_INET6, "2001:db8::1", "2001:db8::2", -1, -1, -1, -1,
	  PKTPARSE_F_TRUNCATED },
	{ "ipv6 payload length ends inside udp ports",
	  "60000000 0002 1140 20010db8000000000000000000000001"
	  "20010db8000000000000000000000002 d431 0035 0008 0000",
	  0, AF_INET6, "2001:db8::1", "2001:db8::2", IPPROTO_UDP, -1, -1, -1,
	  PKTPARSE_F_TRUNCATED },
	{ "ipv6 seventeen hop-by-hop headers",
	  "60000000 0088 0040 20010db8000000000000000000000001"
	  "20010db8000000000000000000000002"
	  "0000 0104 00000000 0000 0104 00000000 0000 0104 00000000"
	  "0000 0104 00000000 0000 0104 00000000 0000 0104 00000000"
	  "0000 0104 00000000 0000 0104 00000000 0000 0104 00000000"
	  "0000 0104 00000000 0000 0104 00000000 0000 0104 00000000"
	  "0000 0104 00000000 0000 0104 00000000 0000 0104 00000000"
	  "0000 0104 00000000 1100 0104 00000000",
	  0, AF_INET6, "2001:db8::1", "2001:db8::2", -1, -1, -1, -1,
	  PKTPARSE_F_TRUNCATED },
	{ "ipv6 sixteen destination-options headers (the most walked), then udp",
	  "60000000 0088 3c40 20010db8000000000000000000000001"
	  "20010db8000000000000000000000002"
	  "3c00 0104 00000000 3c00 0104 00000000 3c00 0104 00000000"
	  "3c00 0104 00000000 3c00 0104 00000000 3c00 0104 00000000"
	  "3c00 0104 00000000 3c00 0104 00000000 3c00 0104 00000000"
	  "3c00 0104 00000000 3c00 0104 00000000 3c00 0104 00000000"
	  "3c00 0104 00000000 3c00 0104 00000000 3c00 0104 00000000"
	  "1100 0104 00000000"
	  "15b3 115c 0008 0000",
	  0, AF_INET6, "2001:db8::1", "2001:db8::2", IPPROTO_UDP, 5555, 4444, -1, 0 },
	{ "ipv6 39 bytes",
	  "60000000 0014 0640 20010db8000000000000000000000001"
	  "20010db80000000000000000000000",
	  EGW_E_INVALID, 0, NULL, NULL, -1, -1, -1, -1, 0 },
	{ "version 5", "55000028 0001 4000 4006 0000 64400102 cb00710a 9c40 01bb",
	  EGW_E_INVALID, 0, NULL, NULL, -1, -1, -1, -1, 0 },
	{ "version 0 (ethernet header?)", "0000 5e00 5301 0000 5e00 5302 0800 4500",
	  EGW_E_INVALID, 0, NULL, NULL, -1, -1, -1, -1, 0 },
	{ "empty", "", EGW_E_INVALID, 0, NULL, NULL, -1, -1, -1, -1, 0 },
};

static size_t
unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = 0;
	int hi = -1;

	for (; *hex; hex++) {
		int v;

		if (*hex == ' ')
			continue;
		v = *hex <= '9' ? *hex - '0' : (*hex | 0x20) - 'a' + 10;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == max)
			abort();
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0)
		abort();	/* odd digit count: a typo in the table */
	return n;
}

static void
test_prefixes(void)
{
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++) {
		struct pktparse_prefix p;
		int rc = pktparse_prefix(prefixes[i].in, strlen(prefixes[i].in), &p);

		if (prefixes[i].action < 0) {
			is_int(rc, EGW_E_INVALID, "prefix \"%s\" rejected", prefixes[i].in);
			continue;
		}
		ok(rc == 0 && (int)p.action == prefixes[i].action &&
		    p.policy_id == prefixes[i].id &&
		    p.id_from_mark == (strncmp(prefixes[i].in + 6, "m:", 2) == 0) &&
		    strcmp(p.reason, prefixes[i].reason) == 0,
		    "prefix \"%s\" parsed", prefixes[i].in);
	}
	{
		/* A NUL ends the prefix; bytes after it are ignored. */
		static const char buf[] = "egw:d:5:dns\0garbage";
		struct pktparse_prefix p;

		ok(pktparse_prefix(buf, sizeof(buf), &p) == 0 &&
		    strcmp(p.reason, "dns") == 0 && p.policy_id == 5,
		    "prefix ends at an embedded NUL");
		/* Length bounds the read even without a NUL. */
		ok(pktparse_prefix("egw:d:5:dnsXX", 11, &p) == 0 &&
		    strcmp(p.reason, "dns") == 0, "prefix bounded by length");
	}
}

static bool
check_packet(size_t i, const struct pktparse_packet *p)
{
	char a[PKTPARSE_ADDRSTRLEN], b[PKTPARSE_ADDRSTRLEN];
	bool good = true;

	good &= p->family == packets[i].family;
	good &= strcmp(pktparse_format_addr(p->family, p->src, a), packets[i].src) == 0;
	good &= strcmp(pktparse_format_addr(p->family, p->dst, b), packets[i].dst) == 0;
	if (packets[i].proto < 0)
		good &= !(p->flags & PKTPARSE_F_PROTO);
	else
		good &= (p->flags & PKTPARSE_F_PROTO) && p->proto == packets[i].proto;
	if (packets[i].sport < 0)
		good &= !(p->flags & PKTPARSE_F_PORTS);
	else
		good &= (p->flags & PKTPARSE_F_PORTS) &&
		    p->sport == packets[i].sport && p->dport == packets[i].dport;
	if (packets[i].icmp_type < 0)
		good &= !(p->flags & PKTPARSE_F_ICMP);
	else
		good &= (p->flags & PKTPARSE_F_ICMP) &&
		    p->icmp_type == packets[i].icmp_type;
	good &= (p->flags & (PKTPARSE_F_FRAGMENT | PKTPARSE_F_TRUNCATED)) ==
	    packets[i].flags;
	if (!good)
		tap_diag("  got family %u src %s dst %s proto %u flags %#x ports %u>%u icmp %u",
		    p->family, a, b, p->proto, p->flags, p->sport, p->dport,
		    p->icmp_type);
	return good;
}

static void
test_packets(void)
{
	uint8_t buf[512];

	for (size_t i = 0; i < sizeof(packets) / sizeof(*packets); i++) {
		struct pktparse_packet p, q;
		size_t len = unhex(packets[i].hex, buf, sizeof(buf));
		int rc = pktparse_packet(buf, len, &p);
		bool consistent = true;

		if (packets[i].rc != 0) {
			is_int(rc, packets[i].rc, "%s: rejected", packets[i].name);
			continue;
		}
		ok(rc == 0 && check_packet(i, &p), "%s", packets[i].name);

		/* Every shorter copy: never more than the full parse knows. */
		for (size_t cut = 0; cut < len; cut++) {
			uint8_t *copy = malloc(cut ? cut : 1);

			memcpy(copy, buf, cut);
			rc = pktparse_packet(copy, cut, &q);
			free(copy);	/* exact-size copy: ASan sees any overread */
			if (rc != 0)
				continue;
			if (memcmp(q.src, p.src, 16) != 0 || memcmp(q.dst, p.dst, 16) != 0)
				consistent = false;
			if ((q.flags & PKTPARSE_F_PORTS) && (!(p.flags & PKTPARSE_F_PORTS) ||
			    q.sport != p.sport || q.dport != p.dport))
				consistent = false;
			if ((q.flags & PKTPARSE_F_PROTO) && (p.flags & PKTPARSE_F_PROTO) &&
			    q.proto != p.proto)
				consistent = false;
		}
		ok(consistent, "%s: every truncation is consistent", packets[i].name);
	}
}

static void
test_random(void)
{
	uint8_t buf[256];
	unsigned seed = 12345;
	size_t parsed = 0;
	bool sane = true;

	/* Random bytes with a valid version nibble: must not crash; ports
	 * only ever come with a known protocol. */
	for (int i = 0; i < 20000; i++) {
		struct pktparse_packet p;
		size_t len = (size_t)(rand_r(&seed) % (int)sizeof(buf));

		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)rand_r(&seed);
		if (len > 0)
			buf[0] = (uint8_t)((i & 1 ? 0x40 : 0x60) | (buf[0] & 0x0f));
		/* an exact-size copy, so ASan sees a read past len */
		uint8_t *copy = malloc(len ? len : 1);

		memcpy(copy, buf, len);
		if (pktparse_packet(copy, len, &p) == 0) {
			parsed++;
			if ((p.flags & PKTPARSE_F_PORTS) && !(p.flags & PKTPARSE_F_PROTO))
				sane = false;
		}
		free(copy);
	}
	ok(sane && parsed > 0, "random packets: %zu of 20000 parsed without fault", parsed);
}

static void
test_names(void)
{
	char buf[4];

	is_str(pktparse_proto_name(IPPROTO_TCP, buf), "tcp", "tcp name");
	is_str(pktparse_proto_name(IPPROTO_ICMP, buf), "icmp", "icmp name");
	is_str(pktparse_proto_name(IPPROTO_ICMPV6, buf), "icmpv6", "icmpv6 name");
	is_str(pktparse_proto_name(253, buf), "253", "unnamed protocol is its number");
	is_str(pktparse_action_name(PKTPARSE_WOULD_DENY), "would_deny", "would_deny name");
}

int
main(void)
{
	test_prefixes();
	test_packets();
	test_random();
	test_names();
	return tap_done();
}
