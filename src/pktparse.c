/* SPDX-License-Identifier: MIT */
/*
 * This file contains the NFLOG prefix parser and the L3/L4 header parser
 * of egw-flowlog.
 *
 * Every read is preceded by a length check against the copied bytes; the
 * IPv4 total length and IPv6 payload length only ever shrink the bound
 * (a copy shorter than the packet is normal, the copy range cuts it).
 */
#include "pktparse.h"
#include "err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define PKTPARSE_MAX_EXTHDRS 16

#ifndef IPPROTO_DCCP
#define IPPROTO_DCCP 33
#endif
#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

int
pktparse_prefix(const char *buf, size_t len, struct pktparse_prefix *out)
{
	struct pktparse_prefix p;
	const char *nul = memchr(buf, '\0', len);
	size_t i, n;
	uint64_t id = 0;

	if (nul != NULL)
		len = (size_t)(nul - buf);
	if (len < 9 || memcmp(buf, "egw:", 4) != 0 || buf[5] != ':')
		return EGW_E_INVALID;
	switch (buf[4]) {
	case 'a':
		p.action = PKTPARSE_ALLOW;
		break;
	case 'd':
		p.action = PKTPARSE_DENY;
		break;
	case 'w':
		p.action = PKTPARSE_WOULD_DENY;
		break;
	default:
		return EGW_E_INVALID;
	}
	p.id_from_mark = false;
	if (len > 7 && buf[6] == 'm' && buf[7] == ':') {
		p.id_from_mark = true;
		i = 7;
		goto reason;
	}
	/* policy id: decimal, no sign, no leading zero, <= INT32_MAX */
	for (i = 6, n = 0; i < len && buf[i] >= '0' && buf[i] <= '9'; i++, n++) {
		if (n == 10)
			return EGW_E_INVALID;
		id = id * 10 + (uint64_t)(buf[i] - '0');
	}
	if (n == 0 || (n > 1 && buf[6] == '0') || id > INT32_MAX)
		return EGW_E_INVALID;
	if (i >= len || buf[i] != ':')
		return EGW_E_INVALID;
reason:
	i++;
	n = len - i;
	if (n < 1 || n > PKTPARSE_REASON_MAX)
		return EGW_E_INVALID;
	for (size_t k = 0; k < n; k++) {
		char c = buf[i + k];

		if (!((c >= 'a' && c <= 'z') || c == '_'))
			return EGW_E_INVALID;
		p.reason[k] = c;
	}
	p.reason[n] = '\0';
	p.policy_id = (uint32_t)id;
	*out = p;
	return 0;
}

static uint16_t
pktparse_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* The transport header at @l4 (@avail bytes copied) of protocol @proto. */
static void
pktparse_l4(const uint8_t *l4, size_t avail, struct pktparse_packet *out)
{
	switch (out->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP:
	case IPPROTO_DCCP:
		/* All five start with source and destination port. */
		if (avail < 4) {
			out->flags |= PKTPARSE_F_TRUNCATED;
			return;
		}
		out->sport = pktparse_be16(l4);
		out->dport = pktparse_be16(l4 + 2);
		out->flags |= PKTPARSE_F_PORTS;
		return;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (avail < 2) {
			out->flags |= PKTPARSE_F_TRUNCATED;
			return;
		}
		out->icmp_type = l4[0];
		out->icmp_code = l4[1];
		out->flags |= PKTPARSE_F_ICMP;
		return;
	default:
		return;
	}
}

static int
pktparse_ipv4(const uint8_t *buf, size_t len, struct pktparse_packet *out)
{
	size_t ihl, tot;
	uint16_t frag;

	if (len < 20)
		return EGW_E_INVALID;
	ihl = (size_t)(buf[0] & 0x0f) * 4;
	tot = pktparse_be16(buf + 2);
	/* 0 is a GRO packet over 64 KiB (BIG TCP, Linux 6.3+): the length is
	 * in the skb only; keep the copy, as for an IPv6 jumbogram. */
	if (ihl < 20 || len < ihl || (tot != 0 && tot < ihl))
		return EGW_E_INVALID;
	if (tot != 0 && tot < len)
		len = tot;	/* trailing bytes (Ethernet padding) are not ours */
	out->family = AF_INET;
	out->proto = buf[9];
	out->flags |= PKTPARSE_F_PROTO;
	memcpy(out->src, buf + 12, 4);
	memcpy(out->dst, buf + 16, 4);
	frag = pktparse_be16(buf + 6);
	if ((frag & 0x1fff) != 0) {
		out->flags |= PKTPARSE_F_FRAGMENT;
		return 0;
	}
	pktparse_l4(buf + ihl, len - ihl, out);
	return 0;
}

/* The extension headers the walk below steps over. */
static bool
pktparse_ipv6_ext(uint8_t nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING ||
	    nh == IPPROTO_DSTOPTS || nh == IPPROTO_AH || nh == IPPROTO_FRAGMENT;
}

static int
pktparse_ipv6(const uint8_t *buf, size_t len, struct pktparse_packet *out)
{
	size_t off = 40, plen;
	uint8_t nh;

	if (len < 40)
		return EGW_E_INVALID;
	plen = pktparse_be16(buf + 4);
	/* 0 is a jumbogram (hop-by-hop option) or nothing; keep the copy. */
	if (plen != 0 && plen + 40 < len)
		len = plen + 40;
	out->family = AF_INET6;
	memcpy(out->src, buf + 8, 16);
	memcpy(out->dst, buf + 24, 16);
	nh = buf[6];
	/* One pass per extension header, and one more for what follows the
	 * last one allowed. */
	for (int i = 0; i <= PKTPARSE_MAX_EXTHDRS; i++) {
		size_t hlen;

		if (i == PKTPARSE_MAX_EXTHDRS && pktparse_ipv6_ext(nh))
			goto truncated;
		switch (nh) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (len - off < 2)
				goto truncated;
			hlen = ((size_t)buf[off + 1] + 1) * 8;
			break;
		case IPPROTO_AH:
			if (len - off < 2)
				goto truncated;
			hlen = ((size_t)buf[off + 1] + 2) * 4;
			break;
		case IPPROTO_FRAGMENT:
			if (len - off < 8)
				goto truncated;
			hlen = 8;
			if ((pktparse_be16(buf + off + 2) & 0xfff8) != 0) {
				out->proto = buf[off];
				out->flags |= PKTPARSE_F_PROTO |
				    PKTPARSE_F_FRAGMENT;
				return 0;
			}
			break;
		default:
			/* Transport, ESP, no-next-header or unknown. */
			out->proto = nh;
			out->flags |= PKTPARSE_F_PROTO;
			pktparse_l4(buf + off, len - off, out);
			return 0;
		}
		if (len - off < hlen)
			goto truncated;
		nh = buf[off];
		off += hlen;
	}
	/* More extension headers than any sane packet carries. */
truncated:
	out->flags |= PKTPARSE_F_TRUNCATED;
	return 0;
}

int
pktparse_packet(const uint8_t *buf, size_t len, struct pktparse_packet *out)
{
	memset(out, 0, sizeof(*out));
	if (buf == NULL || len < 1)
		return EGW_E_INVALID;
	switch (buf[0] >> 4) {
	case 4:
		return pktparse_ipv4(buf, len, out);
	case 6:
		return pktparse_ipv6(buf, len, out);
	default:
		return EGW_E_INVALID;
	}
}

const char *
pktparse_action_name(enum pktparse_action action)
{
	switch (action) {
	case PKTPARSE_ALLOW:
		return "allow";
	case PKTPARSE_DENY:
		return "deny";
	case PKTPARSE_WOULD_DENY:
		return "would_deny";
	}
	return "deny";
}

const char *
pktparse_proto_name(uint8_t proto, char *buf)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	case IPPROTO_UDPLITE:
		return "udplite";
	case IPPROTO_SCTP:
		return "sctp";
	case IPPROTO_DCCP:
		return "dccp";
	case IPPROTO_GRE:
		return "gre";
	case IPPROTO_ESP:
		return "esp";
	case IPPROTO_AH:
		return "ah";
	default:
		snprintf(buf, 4, "%u", proto);
		return buf;
	}
}

char *
pktparse_format_addr(uint8_t family, const uint8_t *addr, char *buf)
{
	if ((family != AF_INET && family != AF_INET6) ||
	    inet_ntop(family, addr, buf, PKTPARSE_ADDRSTRLEN) == NULL)
		buf[0] = '\0';
	return buf;
}
