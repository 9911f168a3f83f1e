/* SPDX-License-Identifier: MIT */
/*
 * This file contains strict parsers and formatters for addresses, prefixes,
 * ports, protocols and interface names.
 *
 * inet_pton does the address work; around it we refuse anything that has a
 * second spelling (leading zeros, a "+" or space in a length, host bits set)
 * so that the value stored and rendered is the value the client meant.
 */
#include "netaddr.h"
#include "err.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int
parse_decimal(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

int
netaddr_parse_addr(const char *text, struct ip_prefix *out, const char **why)
{
	char buf[NETADDR_PREFIX_STRLEN];
	size_t len = strlen(text);

	memset(out, 0, sizeof(*out));
	if (len == 0 || len >= sizeof(buf)) {
		*why = "not an IPv4 or IPv6 address";
		return EGW_E_INVALID;
	}
	memcpy(buf, text, len + 1);
	if (strchr(buf, ':') != NULL) {
		if (inet_pton(AF_INET6, buf, out->addr) != 1) {
			*why = "not a valid IPv6 address";
			return EGW_E_INVALID;
		}
		out->family = AF_INET6;
		out->len = 128;
		return 0;
	}
	/* inet_pton(AF_INET) already refuses leading zeros ("010.0.0.1") in
	 * glibc, but says nothing about hostnames; reject those clearly. */
	for (size_t i = 0; i < len; i++) {
		if ((buf[i] < '0' || buf[i] > '9') && buf[i] != '.') {
			*why = "not an IP address (hostnames are not supported; use an address or prefix)";
			return EGW_E_INVALID;
		}
	}
	if (inet_pton(AF_INET, buf, out->addr) != 1) {
		*why = "not a valid IPv4 address";
		return EGW_E_INVALID;
	}
	out->family = AF_INET;
	out->len = 32;
	return 0;
}

int
netaddr_parse_prefix(const char *text, struct ip_prefix *out, const char **why)
{
	char addr[NETADDR_PREFIX_STRLEN];
	const char *slash = strchr(text, '/');
	unsigned long plen;
	size_t alen;
	int rc;

	if (slash == NULL)
		return netaddr_parse_addr(text, out, why);
	alen = (size_t)(slash - text);
	if (alen == 0 || alen >= sizeof(addr)) {
		*why = "not a valid prefix";
		return EGW_E_INVALID;
	}
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if ((rc = netaddr_parse_addr(addr, out, why)) != 0)
		return rc;
	if (parse_decimal(slash + 1, strlen(slash + 1), out->len, &plen) != 0) {
		*why = out->family == AF_INET ? "prefix length must be 0-32"
		    : "prefix length must be 0-128";
		return EGW_E_INVALID;
	}
	out->len = (uint8_t)plen;
	for (unsigned bit = out->len; bit < (out->family == AF_INET ? 32u : 128u); bit++) {
		if (out->addr[bit / 8] & (0x80 >> (bit % 8))) {
			*why = "address has bits set beyond the prefix length";
			return EGW_E_INVALID;
		}
	}
	return 0;
}

char *
netaddr_format_prefix(const struct ip_prefix *p, char *buf, bool full)
{
	unsigned max = p->family == AF_INET ? 32 : 128;
	size_t n;

	if (inet_ntop(p->family, p->addr, buf, NETADDR_PREFIX_STRLEN) == NULL) {
		buf[0] = '\0';
		return buf;
	}
	if (full || p->len != max) {
		n = strlen(buf);
		snprintf(buf + n, NETADDR_PREFIX_STRLEN - n, "/%u", p->len);
	}
	return buf;
}

static bool
prefix_bits_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool
netaddr_prefix_contains(const struct ip_prefix *outer, const struct ip_prefix *inner)
{
	if (outer->family != inner->family || outer->len > inner->len)
		return false;
	return prefix_bits_equal(outer->addr, inner->addr, outer->len);
}

bool
netaddr_prefix_overlaps(const struct ip_prefix *a, const struct ip_prefix *b)
{
	return netaddr_prefix_contains(a, b) || netaddr_prefix_contains(b, a);
}

int
netaddr_parse_port_range(const char *text, struct port_range *out, const char **why)
{
	const char *dash = strchr(text, '-');
	unsigned long lo, hi;

	if (dash == NULL) {
		if (parse_decimal(text, strlen(text), 65535, &lo) != 0 || lo == 0) {
			*why = "port must be an integer 1-65535";
			return EGW_E_INVALID;
		}
		hi = lo;
	} else if (parse_decimal(text, (size_t)(dash - text), 65535, &lo) != 0 ||
	    parse_decimal(dash + 1, strlen(dash + 1), 65535, &hi) != 0 ||
	    lo == 0) {
		*why = "port range must be \"lo-hi\" with integers 1-65535";
		return EGW_E_INVALID;
	} else if (lo > hi) {
		*why = "port range start is above its end";
		return EGW_E_INVALID;
	}
	out->lo = (uint16_t)lo;
	out->hi = (uint16_t)hi;
	return 0;
}

static const char *const proto_names[] = {
	[IP_PROTO_ANY] = "any",
	[IP_PROTO_TCP] = "tcp",
	[IP_PROTO_UDP] = "udp",
	[IP_PROTO_ICMP] = "icmp",
};

int
netaddr_parse_proto(const char *text, enum ip_proto *out)
{
	for (size_t i = 0; i < sizeof(proto_names) / sizeof(*proto_names); i++) {
		if (strcmp(text, proto_names[i]) == 0) {
			*out = (enum ip_proto)i;
			return 0;
		}
	}
	return EGW_E_INVALID;
}

const char *
netaddr_proto_name(enum ip_proto proto)
{
	if ((size_t)proto >= sizeof(proto_names) / sizeof(*proto_names))
		return "any";
	return proto_names[proto];
}

bool
netaddr_valid_ifname(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= NETADDR_IFNAMSIZ || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

bool
netaddr_embeds_ipv4(const struct ip_prefix *p, struct ip_prefix *v4)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	/* IPv4-translated (RFC 2765): ::ffff:0:a.b.c.d */
	static const uint8_t translated[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0 };
	static const uint8_t zero[12] = { 0 };
	bool embeds;

	if (p->family != AF_INET6 || p->len < 96)
		return false;
	if (memcmp(p->addr, mapped, sizeof(mapped)) == 0 ||
	    memcmp(p->addr, translated, sizeof(translated)) == 0)
		embeds = true;
	else if (memcmp(p->addr, zero, sizeof(zero)) == 0)
		/* ::/128 and ::1/128 are the unspecified and loopback
		 * addresses, not IPv4-compatible ones. */
		embeds = !(p->len == 128 && p->addr[12] == 0 && p->addr[13] == 0 &&
		    p->addr[14] == 0 && p->addr[15] <= 1);
	else
		embeds = false;
	if (embeds && v4 != NULL) {
		memset(v4, 0, sizeof(*v4));
		v4->family = AF_INET;
		v4->len = (uint8_t)(p->len - 96);
		memcpy(v4->addr, p->addr + 12, 4);
	}
	return embeds;
}
