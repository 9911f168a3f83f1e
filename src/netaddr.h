/* SPDX-License-Identifier: MIT */
/*
 * This file contains the typed network values every input is parsed into.
 *
 * Nothing a client sends reaches the nft renderer as text: addresses,
 * prefixes, port ranges, protocols and interface names are parsed here into
 * these structs and formatted back from them.  The parsers are strict (no
 * leading zeros in IPv4 octets, host bits of a prefix must be zero, names
 * from a fixed character set) so that one value has exactly one spelling.
 */
#ifndef EGW_NETADDR_H
#define EGW_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest "ffff:...:ffff/128" plus NUL. */
#define NETADDR_PREFIX_STRLEN 48
#define NETADDR_IFNAMSIZ 16	/* IFNAMSIZ, including the NUL */

struct ip_prefix {
	uint8_t family;		/* AF_INET or AF_INET6 */
	uint8_t len;		/* 0..32 or 0..128 */
	uint8_t addr[16];	/* network byte order; IPv4 uses the first 4 */
};

struct port_range {
	uint16_t lo;		/* 1..65535 */
	uint16_t hi;		/* lo..65535 */
};

enum ip_proto {
	IP_PROTO_ANY = 0,
	IP_PROTO_TCP,
	IP_PROTO_UDP,
	IP_PROTO_ICMP		/* ICMP for IPv4 destinations, ICMPv6 for IPv6 */
};

/**
 * netaddr_parse_prefix() - parse an address or CIDR prefix
 * @text: "192.0.2.1", "192.0.2.0/24", "2001:db8::/32"; a bare address
 *        becomes a /32 or /128
 * @out: the parsed prefix
 * @why: on failure, a static reason suitable for a client
 *
 * Returns: 0, or EGW_E_INVALID when the text is not a canonical address or
 * prefix, or has host bits set beyond the prefix length.
 */
int netaddr_parse_prefix(const char *text, struct ip_prefix *out, const char **why);

/**
 * netaddr_parse_addr() - parse a single address (no "/len")
 * @text: the address
 * @out: a full-length prefix
 * @why: on failure, a static reason
 *
 * Returns: 0 or EGW_E_INVALID.
 */
int netaddr_parse_addr(const char *text, struct ip_prefix *out, const char **why);

/**
 * netaddr_embeds_ipv4() - whether an IPv6 prefix lies inside the forms
 * that carry an IPv4 address: IPv4-mapped ::ffff:0:0/96, IPv4-translated
 * ::ffff:0:0:0/96 (RFC 2765) and the deprecated IPv4-compatible ::/96
 * (RFC 4291 2.5.5; :: and ::1 excepted)
 * @p: the prefix
 * @v4: when not NULL and the answer is true, the IPv4 prefix it stands for
 *
 * The kernel sees IPv4 packets as IPv4: a rule on such a form is accepted
 * by nft and matches nothing, so every input refuses them.
 */
bool netaddr_embeds_ipv4(const struct ip_prefix *p, struct ip_prefix *v4);

/**
 * netaddr_format_prefix() - canonical text of a prefix
 * @p: the prefix
 * @buf: at least NETADDR_PREFIX_STRLEN bytes
 * @full: when false, a host prefix (/32, /128) is written without "/len"
 *
 * Returns: @buf.
 */
char *netaddr_format_prefix(const struct ip_prefix *p, char *buf, bool full);

/**
 * netaddr_prefix_contains() - whether @outer covers all of @inner
 *
 * Returns: true when both have the same family and @inner lies inside @outer.
 */
bool netaddr_prefix_contains(const struct ip_prefix *outer, const struct ip_prefix *inner);

/**
 * netaddr_prefix_overlaps() - whether two prefixes share any address
 */
bool netaddr_prefix_overlaps(const struct ip_prefix *a, const struct ip_prefix *b);

/**
 * netaddr_parse_port_range() - parse "443" or "8000-8100"
 * @text: the text (digits and at most one '-')
 * @out: the range
 * @why: on failure, a static reason
 *
 * Returns: 0 or EGW_E_INVALID.
 */
int netaddr_parse_port_range(const char *text, struct port_range *out, const char **why);

/**
 * netaddr_parse_proto() - parse "tcp", "udp", "icmp" or "any"
 *
 * Returns: 0 or EGW_E_INVALID.
 */
int netaddr_parse_proto(const char *text, enum ip_proto *out);

/**
 * netaddr_proto_name() - the lower-case name of a protocol
 *
 * Returns: a static string.
 */
const char *netaddr_proto_name(enum ip_proto proto);

/**
 * netaddr_valid_ifname() - check an interface name
 * @name: NUL-terminated
 *
 * Linux accepts nearly any byte; we accept 1..15 of [A-Za-z0-9_.-] (the
 * names udev, Docker and veth pairs produce) so a name is always safe to
 * quote.
 *
 * Returns: true when acceptable.
 */
bool netaddr_valid_ifname(const char *name);

#endif
