/* SPDX-License-Identifier: MIT */
/*
 * This file contains the pure parsers of egw-flowlog: the NFLOG prefix the
 * applier's log rules carry, and the logged packet's L3/L4 headers.
 *
 * Both take untrusted bytes (a prefix may come from any rule that logs to
 * the group; a payload is whatever the kernel copied, possibly cut short by
 * the copy range) and never read outside [buf, buf + len).  They allocate
 * nothing and keep no state, so they are unit tested with hand-built packets
 * and can be fuzzed directly (pktparse_packet(buf, len, &out) accepts any
 * byte string).
 *
 * Prefix contract (docs/KERNEL_LAYOUT.md; written by render.c):
 *   "egw:<a|d|w>:m:<reason>": one log rule serves every scenario in the flat
 *   layout, so the policy id is the packet mark ("m"; mark 0 = no scenario:
 *   baseline, or spoofed from an interface that is no scenario's); reason
 *   [a-z_]{1,24}.  A decimal id in place of "m" (without
 *   leading zeros, at most 2^31-1; "0" = take the mark) is accepted too.
 */
#ifndef EGW_PKTPARSE_H
#define EGW_PKTPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PKTPARSE_REASON_MAX 24
/* Longest textual IPv6 address plus NUL (INET6_ADDRSTRLEN). */
#define PKTPARSE_ADDRSTRLEN 46

enum pktparse_action {
	PKTPARSE_ALLOW = 0,	/* 'a': a new connection was allowed */
	PKTPARSE_DENY,		/* 'd': dropped */
	PKTPARSE_WOULD_DENY	/* 'w': audit mode, would be dropped, let through */
};

struct pktparse_prefix {
	enum pktparse_action action;
	uint32_t policy_id;			/* policies.id, 0 = baseline */
	bool id_from_mark;			/* "m": policies.id = the mark */
	char reason[PKTPARSE_REASON_MAX + 1];	/* [a-z_]{1,24} */
};

/* Bits of struct pktparse_packet.flags. */
#define PKTPARSE_F_PORTS	0x01	/* sport/dport are valid */
#define PKTPARSE_F_ICMP		0x02	/* icmp_type/icmp_code are valid */
#define PKTPARSE_F_PROTO	0x04	/* proto is the transport protocol */
#define PKTPARSE_F_FRAGMENT	0x08	/* a non-first fragment: no L4 header */
#define PKTPARSE_F_TRUNCATED	0x10	/* the copy ended before the L4 fields */

struct pktparse_packet {
	uint8_t family;		/* AF_INET or AF_INET6 */
	uint8_t proto;		/* IPPROTO_* after IPv6 extension headers */
	uint8_t flags;		/* PKTPARSE_F_* */
	uint8_t icmp_type;
	uint8_t icmp_code;
	uint16_t sport;		/* host byte order */
	uint16_t dport;
	uint8_t src[16];	/* network byte order; IPv4 uses the first 4 */
	uint8_t dst[16];
};

/**
 * pktparse_prefix() - parse an NFLOG prefix against the contract
 * @buf: the prefix bytes (need not be NUL-terminated)
 * @len: their number; a NUL inside ends the prefix
 * @out: the parsed fields (untouched on failure)
 *
 * Returns: 0, or EGW_E_INVALID when the text is not exactly
 * "egw:<a|d|w>:<id|m>:<reason>" (a rule of someone else's logging to our
 * group, or a renderer bug).
 */
int pktparse_prefix(const char *buf, size_t len, struct pktparse_prefix *out);

/**
 * pktparse_packet() - parse the addresses, transport protocol and ports of
 * a packet that starts at its IPv4 or IPv6 header
 * @buf: the payload NFLOG copied (may be cut short by the copy range)
 * @len: its length
 * @out: the result; zeroed first
 *
 * IPv4 options are skipped by IHL; IPv6 hop-by-hop, routing, destination
 * options, fragment and AH headers are walked (at most 16).  The header's
 * length field bounds @len, except when it is 0 (an IPv4 BIG TCP GRO
 * packet, an IPv6 jumbogram): then @len stands.  TCP, UDP,
 * UDP-Lite, SCTP and DCCP give ports; ICMP and ICMPv6 give type and code.
 * When the L3 header is intact but the L4 fields are missing, the result is
 * still 0 and the flags say what is missing.
 *
 * Returns: 0 when the addresses are valid, EGW_E_INVALID when the L3
 * header itself is truncated or malformed (unknown version, IHL < 5, ...).
 */
int pktparse_packet(const uint8_t *buf, size_t len, struct pktparse_packet *out);

/**
 * pktparse_action_name() - "allow", "deny" or "would_deny" (the egress_log
 * and audit vocabulary)
 *
 * Returns: a static string.
 */
const char *pktparse_action_name(enum pktparse_action action);

/**
 * pktparse_proto_name() - the protocol's name as egress_log stores it
 * @proto: an IPPROTO_* number
 * @buf: at least 4 bytes, used for protocols without a name
 *
 * "tcp", "udp", "icmp", "icmpv6", "udplite", "sctp", "dccp", "gre", "esp",
 * "ah", else the decimal number (the protocol as it was on the wire; the
 * policy vocabulary's "icmp" covers both ICMP and ICMPv6).
 *
 * Returns: a static string or @buf.
 */
const char *pktparse_proto_name(uint8_t proto, char *buf);

/**
 * pktparse_format_addr() - text form of an address
 * @family: AF_INET or AF_INET6
 * @addr: 4 or 16 bytes, network order
 * @buf: at least PKTPARSE_ADDRSTRLEN bytes
 *
 * Returns: @buf (inet_ntop's canonical form; "" for an unknown family).
 */
char *pktparse_format_addr(uint8_t family, const uint8_t *addr, char *buf);

#endif
