/* SPDX-License-Identifier: MIT */
/*
 * This file contains the renderer: typed policies -> elements -> nft text.
 *
 * Elements of one interval set must not "conflict" in the kernel's sense:
 * the pipapo backend refuses an element whose first or last key lies inside
 * an existing one (EEXIST/ENOTEMPTY), and which of two such elements wins
 * depends on insertion order.  Since an allowlist set only answers "is
 * there any match", overlapping entries of one scenario are merged here:
 * an entry covered by another is dropped, and a partial overlap is split
 * into boxes (address x protocol x port) that no longer conflict.  Marks
 * keep different scenarios' elements apart, so this never crosses policies.
 */
#include "render.h"
#include "err.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_ICMPV6 58
#define RESOLVE_MAX_STEPS 200000

static const char *const set_names[RENDER_SET__COUNT] = {
	[RENDER_SET_MANAGED4] = "managed4",
	[RENDER_SET_MANAGED6] = "managed6",
	[RENDER_SET_MANAGEDIF] = "managedif",
	[RENDER_SET_SRC4] = "src4",
	[RENDER_SET_SRC6] = "src6",
	[RENDER_SET_SRCIF] = "srcif",
	[RENDER_SET_SRCH4] = "srch4",
	[RENDER_SET_SRCH6] = "srch6",
	[RENDER_SET_BOUND] = "bound",
	[RENDER_SET_BOUNDIF] = "boundif",
	[RENDER_SET_AUDIT] = "audit",
	[RENDER_SET_FALLBACK] = "fallback",
	[RENDER_SET_PRE4] = "pre4",
	[RENDER_SET_PRE6] = "pre6",
	[RENDER_SET_ALLOW4] = "allow4",
	[RENDER_SET_ALLOW6] = "allow6",
};

static const char *const reason_names[] = {
	[RENDER_REASON_DEFAULT] = "default",
	[RENDER_REASON_DNS] = "dns",
	[RENDER_REASON_METADATA] = "metadata",
	[RENDER_REASON_LINKLOCAL] = "linklocal",
	[RENDER_REASON_GATEWAY] = "gateway",
	[RENDER_REASON_BASELINE] = "baseline",
	[RENDER_REASON_DISABLED] = "disabled",
	[RENDER_REASON_FAILED] = "failed",
	[RENDER_REASON_SPOOFED] = "spoofed",
	[RENDER_REASON_ALLOWLIST] = "allowlist",
};

const char *
render_set_name(enum render_set set)
{
	return (unsigned)set < RENDER_SET__COUNT ? set_names[set] : "?";
}

const char *
render_reason_name(enum render_reason r)
{
	return (unsigned)r <= RENDER_REASON_ALLOWLIST ? reason_names[r] : "?";
}

/* ---- shards ---- */

unsigned
render_shards(const struct render_config *rc)
{
	unsigned k = rc->shards;

	if (k < 2 || k > RENDER_SHARDS_MAX || (k & (k - 1)) != 0)
		return 1;
	return k;
}

bool
render_set_sharded(enum render_set set)
{
	return set >= RENDER_SET_PRE4 && set <= RENDER_SET_ALLOW6;
}

unsigned
render_elem_shard(const struct render_config *rc, const struct render_elem *e)
{
	if (!render_set_sharded(e->set))
		return 0;
	return e->mark & (render_shards(rc) - 1);
}

void
render_kset_name(const struct render_config *rc, enum render_set set,
    unsigned shard, char *buf, size_t len)
{
	if (render_shards(rc) > 1 && render_set_sharded(set))
		snprintf(buf, len, "%s_%u", render_set_name(set), shard);
	else
		snprintf(buf, len, "%s", render_set_name(set));
}

int
render_kset_parse(const struct render_config *rc, const char *name,
    enum render_set *set, unsigned *shard)
{
	unsigned k = render_shards(rc);

	for (int s = 0; s < RENDER_SET__COUNT; s++) {
		size_t l = strlen(set_names[s]);
		const char *p = name + l;
		unsigned v = 0;

		if (strncmp(name, set_names[s], l) != 0)
			continue;
		if (k == 1 && (s == RENDER_SET_SRCH4 || s == RENDER_SET_SRCH6))
			continue;
		if (k == 1 || !render_set_sharded(s)) {
			if (*p != '\0')
				continue;
			*set = s;
			*shard = 0;
			return 0;
		}
		/* "_<decimal>" without leading zeros, below k */
		if (p[0] != '_' || p[1] < '0' || p[1] > '9' ||
		    (p[1] == '0' && p[2] != '\0'))
			continue;
		for (p++; *p >= '0' && *p <= '9' && v < k; p++)
			v = v * 10 + (unsigned)(*p - '0');
		if (*p != '\0' || v >= k)
			continue;
		*set = s;
		*shard = v;
		return 0;
	}
	return -1;
}

size_t
render_kset_count(const struct render_config *rc)
{
	/* every element set, the 4 allowlists once per shard, the 4 dynamic
	 * counter and rate sets; the flat layout has no host maps */
	size_t k = render_shards(rc);
	size_t n = RENDER_SET__COUNT - 4 + 4 * k + 4;

	return k == 1 ? n - 2 : n;
}

static unsigned
elem_group(const struct render_config *rc, const struct render_elem *e)
{
	unsigned k = render_shards(rc);

	/* the sharded sets are the last four of enum render_set */
	if (!render_set_sharded(e->set))
		return e->set;
	return RENDER_SET_PRE4 + (e->set - RENDER_SET_PRE4) * k +
	    render_elem_shard(rc, e);
}

int
render_elems_order(const struct render_config *rc, const struct render_elem *v,
    size_t n, size_t **out)
{
	size_t groups = RENDER_SET__COUNT * (size_t)render_shards(rc);
	size_t *start = calloc(groups + 1, sizeof(*start));
	size_t *idx = malloc((n ? n : 1) * sizeof(*idx));

	*out = NULL;
	if (start == NULL || idx == NULL) {
		free(start);
		free(idx);
		return EGW_E_NOMEM;
	}
	/* counting sort: stable, O(n + groups) */
	for (size_t i = 0; i < n; i++)
		start[elem_group(rc, &v[i]) + 1]++;
	for (size_t g = 0; g < groups; g++)
		start[g + 1] += start[g];
	for (size_t i = 0; i < n; i++)
		idx[start[elem_group(rc, &v[i])]++] = i;
	free(start);
	*out = idx;
	return 0;
}

/* ---- element lists ---- */

void
render_elems_init(struct render_elems *l)
{
	memset(l, 0, sizeof(*l));
}

void
render_elems_free(struct render_elems *l)
{
	if (l == NULL)
		return;
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int
render_elems_push(struct render_elems *l, const struct render_elem *e)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct render_elem *v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL)
			return EGW_E_NOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *e;
	return 0;
}

static bool
set_is_addr_box(uint8_t set)
{
	return set >= RENDER_SET_PRE4 && set <= RENDER_SET_ALLOW6;
}

static bool
set_is_interval(uint8_t set)
{
	return set_is_addr_box(set) || set == RENDER_SET_SRC4 ||
	    set == RENDER_SET_SRC6 || set == RENDER_SET_MANAGED4 ||
	    set == RENDER_SET_MANAGED6;
}

static size_t
set_alen(uint8_t set)
{
	switch (set) {
	case RENDER_SET_MANAGED4:
	case RENDER_SET_SRC4:
	case RENDER_SET_PRE4:
	case RENDER_SET_ALLOW4:
		return 4;
	case RENDER_SET_MANAGED6:
	case RENDER_SET_SRC6:
	case RENDER_SET_PRE6:
	case RENDER_SET_ALLOW6:
		return 16;
	default:
		return 0;
	}
}

/* Does the set's key start with the mark (as opposed to mark as data)? */
static bool
set_keyed_by_mark(uint8_t set)
{
	return set_is_addr_box(set) || set == RENDER_SET_AUDIT ||
	    set == RENDER_SET_FALLBACK || set == RENDER_SET_BOUND ||
	    set == RENDER_SET_BOUNDIF;
}

uint32_t
render_elem_owner(const struct render_elem *e)
{
	return e->mark;
}

int
render_elem_cmp(const struct render_elem *a, const struct render_elem *b)
{
	int c;

	if (a->set != b->set)
		return a->set < b->set ? -1 : 1;
	if (set_keyed_by_mark(a->set) && a->mark != b->mark)
		return a->mark < b->mark ? -1 : 1;
	if ((c = memcmp(a->lo, b->lo, 16)) != 0)
		return c;
	if ((c = memcmp(a->hi, b->hi, 16)) != 0)
		return c;
	if (a->proto_lo != b->proto_lo)
		return a->proto_lo < b->proto_lo ? -1 : 1;
	if (a->proto_hi != b->proto_hi)
		return a->proto_hi < b->proto_hi ? -1 : 1;
	if (a->port_lo != b->port_lo)
		return a->port_lo < b->port_lo ? -1 : 1;
	if (a->port_hi != b->port_hi)
		return a->port_hi < b->port_hi ? -1 : 1;
	if (a->mark != b->mark)
		return a->mark < b->mark ? -1 : 1;
	if (a->reason != b->reason)
		return a->reason < b->reason ? -1 : 1;
	return 0;
}

static int
elem_qsort_cmp(const void *a, const void *b)
{
	return render_elem_cmp(a, b);
}

void
render_elems_sort(struct render_elems *l)
{
	size_t w = 0;

	if (l->n == 0)
		return;
	qsort(l->v, l->n, sizeof(l->v[0]), elem_qsort_cmp);
	for (size_t r = 1; r < l->n; r++) {
		if (render_elem_cmp(&l->v[w], &l->v[r]) != 0)
			l->v[++w] = l->v[r];
	}
	l->n = w + 1;
}

/* ---- boxes: address x protocol x port ---- */

static int
addr_cmp(const uint8_t *a, const uint8_t *b, size_t alen)
{
	return memcmp(a, b, alen);
}

/* In-place +1 / -1 on a big-endian number of alen bytes (no wrap check). */
static void
addr_inc(uint8_t *a, size_t alen)
{
	for (size_t i = alen; i-- > 0;)
		if (++a[i] != 0)
			break;
}

static void
addr_dec(uint8_t *a, size_t alen)
{
	for (size_t i = alen; i-- > 0;)
		if (a[i]-- != 0)
			break;
}

static bool
point_in(const uint8_t *addr, uint8_t proto, uint16_t port,
    const struct render_elem *b, size_t alen)
{
	return addr_cmp(addr, b->lo, alen) >= 0 &&
	    addr_cmp(addr, b->hi, alen) <= 0 &&
	    proto >= b->proto_lo && proto <= b->proto_hi &&
	    port >= b->port_lo && port <= b->port_hi;
}

static bool
box_contains(const struct render_elem *outer, const struct render_elem *inner,
    size_t alen)
{
	return point_in(inner->lo, inner->proto_lo, inner->port_lo, outer, alen) &&
	    point_in(inner->hi, inner->proto_hi, inner->port_hi, outer, alen);
}

static bool
box_overlaps(const struct render_elem *a, const struct render_elem *b,
    size_t alen)
{
	return addr_cmp(a->lo, b->hi, alen) <= 0 &&
	    addr_cmp(b->lo, a->hi, alen) <= 0 &&
	    a->proto_lo <= b->proto_hi && b->proto_lo <= a->proto_hi &&
	    a->port_lo <= b->port_hi && b->port_lo <= a->port_hi;
}

bool
render_elems_conflict(const struct render_elem *a, const struct render_elem *b)
{
	size_t alen;

	if (a->set != b->set)
		return false;
	if (set_keyed_by_mark(a->set) && a->mark != b->mark)
		return false;
	if (!set_is_interval(a->set)) {
		/* hash sets and maps: same key with different data */
		if (memcmp(a->lo, b->lo, 16) != 0)
			return false;
		return a->mark != b->mark || a->reason != b->reason;
	}
	alen = set_alen(a->set);
	if (render_elem_cmp(a, b) == 0)
		return false;	/* the very same element: re-adding is fine */
	return point_in(a->lo, a->proto_lo, a->port_lo, b, alen) ||
	    point_in(a->hi, a->proto_hi, a->port_hi, b, alen) ||
	    point_in(b->lo, b->proto_lo, b->port_lo, a, alen) ||
	    point_in(b->hi, b->proto_hi, b->port_hi, a, alen);
}

/* Append a \ b (a and b overlap) as up to 6 disjoint boxes. */
static int
box_subtract(const struct render_elem *a, const struct render_elem *b,
    struct render_elems *out, size_t alen)
{
	struct render_elem cur = *a, piece;
	int rc;

	if (addr_cmp(cur.lo, b->lo, alen) < 0) {
		piece = cur;
		memcpy(piece.hi, b->lo, alen);
		addr_dec(piece.hi, alen);
		if ((rc = render_elems_push(out, &piece)) != 0)
			return rc;
		memcpy(cur.lo, b->lo, alen);
	}
	if (addr_cmp(cur.hi, b->hi, alen) > 0) {
		piece = cur;
		memcpy(piece.lo, b->hi, alen);
		addr_inc(piece.lo, alen);
		if ((rc = render_elems_push(out, &piece)) != 0)
			return rc;
		memcpy(cur.hi, b->hi, alen);
	}
	if (cur.proto_lo < b->proto_lo) {
		piece = cur;
		piece.proto_hi = b->proto_lo - 1;
		if ((rc = render_elems_push(out, &piece)) != 0)
			return rc;
		cur.proto_lo = b->proto_lo;
	}
	if (cur.proto_hi > b->proto_hi) {
		piece = cur;
		piece.proto_lo = b->proto_hi + 1;
		if ((rc = render_elems_push(out, &piece)) != 0)
			return rc;
		cur.proto_hi = b->proto_hi;
	}
	if (cur.port_lo < b->port_lo) {
		piece = cur;
		piece.port_hi = b->port_lo - 1;
		if ((rc = render_elems_push(out, &piece)) != 0)
			return rc;
		cur.port_lo = b->port_lo;
	}
	if (cur.port_hi > b->port_hi) {
		piece = cur;
		piece.port_lo = b->port_hi + 1;
		if ((rc = render_elems_push(out, &piece)) != 0)
			return rc;
	}
	return 0;
}

static void
elems_remove(struct render_elems *l, size_t i)
{
	l->v[i] = l->v[--l->n];
}

/*
 * Make the interval elements of @l (all of one mark) conflict-free without
 * changing what they match.  Returns 0, EGW_E_NOMEM, or EGW_E_INVALID when
 * the splitting would not settle (pathological input).
 */
static int
resolve_conflicts(struct render_elems *l)
{
	size_t steps = 0;

again:
	if (++steps > RESOLVE_MAX_STEPS || l->n > RENDER_MAX_POLICY_ELEMS)
		return EGW_E_INVALID;
	for (size_t i = 0; i < l->n; i++) {
		for (size_t j = i + 1; j < l->n; j++) {
			struct render_elem a = l->v[i], b = l->v[j];
			size_t alen = set_alen(a.set);
			int rc;

			if (!set_is_interval(a.set) || !render_elems_conflict(&a, &b))
				continue;
			if (box_contains(&b, &a, alen)) {
				elems_remove(l, i);
				goto again;
			}
			if (box_contains(&a, &b, alen)) {
				elems_remove(l, j);
				goto again;
			}
			if (!box_overlaps(&a, &b, alen))
				continue;	/* cannot happen with a corner inside */
			elems_remove(l, i);
			if ((rc = box_subtract(&a, &b, l, alen)) != 0)
				return rc;
			goto again;
		}
	}
	return 0;
}

/* ---- building a policy's elements ---- */

struct builder {
	const struct render_config *rc;
	uint32_t mark;
	struct render_elems *out;
	int err;
};

static void
prefix_range(const struct ip_prefix *p, uint8_t *lo, uint8_t *hi)
{
	size_t alen = p->family == AF_INET ? 4 : 16;

	memset(lo, 0, 16);
	memset(hi, 0, 16);
	memcpy(lo, p->addr, alen);
	memcpy(hi, p->addr, alen);
	for (size_t bit = p->len; bit < alen * 8; bit++)
		hi[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
}

static const struct ip_prefix *
special_ranges(size_t *n)
{
	static struct ip_prefix sp[3];
	static bool init;

	if (!init) {
		sp[0].family = AF_INET;
		sp[0].len = 16;
		sp[0].addr[0] = 169;
		sp[0].addr[1] = 254;
		sp[1].family = AF_INET6;
		sp[1].len = 10;
		sp[1].addr[0] = 0xfe;
		sp[1].addr[1] = 0x80;
		/* fd00:ec2::254, the IPv6 instance metadata address */
		sp[2].family = AF_INET6;
		sp[2].len = 128;
		sp[2].addr[0] = 0xfd;
		sp[2].addr[2] = 0x0e;
		sp[2].addr[3] = 0xc2;
		sp[2].addr[14] = 0x02;
		sp[2].addr[15] = 0x54;
		init = true;
	}
	*n = 3;
	return sp;
}

/* Inside a special range or a gateway address: named explicitly. */
static bool
range_is_special(const struct render_config *rc, uint8_t family,
    const uint8_t *lo, const uint8_t *hi)
{
	size_t alen = family == AF_INET ? 4 : 16, n;
	const struct ip_prefix *sp = special_ranges(&n);
	uint8_t slo[16], shi[16];

	for (size_t i = 0; i < n + rc->n_gateway; i++) {
		const struct ip_prefix *p = i < n ? &sp[i] : &rc->gateway[i - n];

		if (p->family != family)
			continue;
		prefix_range(p, slo, shi);
		if (memcmp(lo, slo, alen) >= 0 && memcmp(hi, shi, alen) <= 0)
			return true;
	}
	return false;
}

static void
push_box(struct builder *b, uint8_t family, const uint8_t *lo,
    const uint8_t *hi, uint8_t plo, uint8_t phi, uint16_t portlo,
    uint16_t porthi, bool pre)
{
	struct render_elem e;
	bool v4 = family == AF_INET;

	if (b->err)
		return;
	memset(&e, 0, sizeof(e));
	e.set = pre ? (v4 ? RENDER_SET_PRE4 : RENDER_SET_PRE6) :
	    (v4 ? RENDER_SET_ALLOW4 : RENDER_SET_ALLOW6);
	e.family = family;
	e.mark = b->mark;
	memcpy(e.lo, lo, 16);
	memcpy(e.hi, hi, 16);
	e.proto_lo = plo;
	e.proto_hi = phi;
	e.port_lo = portlo;
	e.port_hi = porthi;
	if (b->out->n >= RENDER_MAX_POLICY_ELEMS * 4)
		b->err = EGW_E_INVALID;
	else
		b->err = render_elems_push(b->out, &e);
}

/* The address after (@delta 1) or before (-1) @a, @alen bytes big-endian. */
static void
addr_step(uint8_t *a, size_t alen, int delta)
{
	for (size_t i = alen; i-- > 0;) {
		if (delta > 0 ? a[i]++ != 0xff : a[i]-- != 0x00)
			break;
	}
}

struct addr_span {
	uint8_t lo[16], hi[16];
};

/*
 * A port-53 entry goes to the pre sets, which decide consults before the
 * metadata and link-local denies and which are the only allow path to the
 * gateway itself.  A wide one ("port 53 anywhere") must not open those:
 * the parts of [@lo, @hi] inside a special range or a gateway address go
 * to the allow sets, after the denies; the rest stays in the pre sets.
 */
static void
add_dns_box(struct builder *b, uint8_t family, const uint8_t *lo,
    const uint8_t *hi, uint8_t plo, uint8_t phi)
{
	size_t alen = family == AF_INET ? 4 : 16, n, k = 0;
	const struct ip_prefix *sp = special_ranges(&n);
	struct addr_span cut[3 + RENDER_MAX_GATEWAY], c;
	uint8_t cur[16];

	for (size_t i = 0; i < n + b->rc->n_gateway; i++) {
		const struct ip_prefix *p = i < n ? &sp[i] : &b->rc->gateway[i - n];
		size_t at;

		if (p->family != family)
			continue;
		prefix_range(p, c.lo, c.hi);
		if (memcmp(c.hi, lo, alen) < 0 || memcmp(c.lo, hi, alen) > 0)
			continue;
		if (memcmp(c.lo, lo, alen) < 0)
			memcpy(c.lo, lo, 16);
		if (memcmp(c.hi, hi, alen) > 0)
			memcpy(c.hi, hi, 16);
		for (at = k; at > 0 && memcmp(cut[at - 1].lo, c.lo, alen) > 0; at--)
			cut[at] = cut[at - 1];
		cut[at] = c;
		k++;
	}
	memcpy(cur, lo, 16);
	for (size_t j = 0; j < k; j++) {
		if (memcmp(cut[j].hi, cur, alen) < 0)
			continue;	/* inside a part already cut */
		if (memcmp(cut[j].lo, cur, alen) > 0) {
			uint8_t end[16];

			memcpy(end, cut[j].lo, 16);
			addr_step(end, alen, -1);
			push_box(b, family, cur, end, plo, phi, 53, 53, true);
			memcpy(cur, cut[j].lo, 16);
		}
		push_box(b, family, cur, cut[j].hi, plo, phi, 53, 53, false);
		if (memcmp(cut[j].hi, hi, alen) == 0)
			return;
		memcpy(cur, cut[j].hi, 16);
		addr_step(cur, alen, 1);
	}
	push_box(b, family, cur, hi, plo, phi, 53, 53, true);
}

static void
add_box(struct builder *b, uint8_t family, const uint8_t *lo, const uint8_t *hi,
    uint8_t plo, uint8_t phi, uint16_t portlo, uint16_t porthi, bool pre)
{
	if (!pre && range_is_special(b->rc, family, lo, hi)) {
		pre = true;
	} else if (!pre && portlo == 53 && porthi == 53 && plo == phi &&
	    (plo == PROTO_TCP || plo == PROTO_UDP)) {
		add_dns_box(b, family, lo, hi, plo, phi);
		return;
	}
	push_box(b, family, lo, hi, plo, phi, portlo, porthi, pre);
}

/* One typed entry: protocol, optional destination, port ranges. */
static void
add_entry(struct builder *b, enum ip_proto proto, const struct ip_prefix *dest,
    const struct port_range *ports, size_t n_ports)
{
	static const struct port_range all_ports = { 0, 65535 };
	uint8_t lo[16], hi[16];

	for (int fam = 0; fam < 2; fam++) {
		uint8_t family = fam == 0 ? AF_INET : AF_INET6;
		uint8_t plo, phi;

		if (dest != NULL && dest->family != family)
			continue;
		if (dest != NULL) {
			prefix_range(dest, lo, hi);
		} else {
			memset(lo, 0, 16);
			memset(hi, 0, 16);
			memset(hi, 0xff, family == AF_INET ? 4 : 16);
		}
		switch (proto) {
		case IP_PROTO_TCP:
			plo = phi = PROTO_TCP;
			break;
		case IP_PROTO_UDP:
			plo = phi = PROTO_UDP;
			break;
		case IP_PROTO_ICMP:
			plo = phi = family == AF_INET ? PROTO_ICMP : PROTO_ICMPV6;
			break;
		default:
			plo = 0;
			phi = 255;
			break;
		}
		/* Ports only mean something for TCP and UDP. */
		if (n_ports == 0 || (proto != IP_PROTO_TCP && proto != IP_PROTO_UDP)) {
			add_box(b, family, lo, hi, plo, phi, all_ports.lo,
			    all_ports.hi, false);
			continue;
		}
		for (size_t i = 0; i < n_ports; i++)
			add_box(b, family, lo, hi, plo, phi, ports[i].lo,
			    ports[i].hi, false);
	}
}

static void
add_rules(struct builder *b, const struct policy_rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++)
		add_entry(b, rules[i].proto, rules[i].has_dest ? &rules[i].dest : NULL,
		    rules[i].ports, rules[i].n_ports);
}

static void
add_dns(struct builder *b, const struct ip_prefix *dns, size_t n)
{
	uint8_t lo[16], hi[16];

	for (size_t i = 0; i < n; i++) {
		prefix_range(&dns[i], lo, hi);
		add_box(b, dns[i].family, lo, hi, PROTO_UDP, PROTO_UDP, 53, 53, true);
		add_box(b, dns[i].family, lo, hi, PROTO_TCP, PROTO_TCP, 53, 53, true);
	}
}

/*
 * The policy's own entries (profiles with uses_policy_entries):
 * hosts only -> anything to those hosts; ports only -> those TCP/UDP ports
 * anywhere; both -> those ports on those hosts; custom_rules as given.
 */
static void
add_policy_entries(struct builder *b, const struct policy *p)
{
	if (p->n_hosts > 0 && p->n_ports == 0) {
		for (size_t i = 0; i < p->n_hosts; i++)
			add_entry(b, IP_PROTO_ANY, &p->hosts[i], NULL, 0);
	} else if (p->n_hosts == 0 && p->n_ports > 0) {
		add_entry(b, IP_PROTO_TCP, NULL, p->ports, p->n_ports);
		add_entry(b, IP_PROTO_UDP, NULL, p->ports, p->n_ports);
	} else if (p->n_hosts > 0 && p->n_ports > 0) {
		for (size_t i = 0; i < p->n_hosts; i++) {
			add_entry(b, IP_PROTO_TCP, &p->hosts[i], p->ports, p->n_ports);
			add_entry(b, IP_PROTO_UDP, &p->hosts[i], p->ports, p->n_ports);
		}
	}
	add_rules(b, p->rules, p->n_rules);
}

static void
set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static int
push_source_prefix(struct render_elems *out, const struct ip_prefix *p,
    uint32_t mark, uint8_t set4, uint8_t set6)
{
	struct render_elem e;

	memset(&e, 0, sizeof(e));
	e.set = p->family == AF_INET ? set4 : set6;
	if (e.set == RENDER_SET_SRCH4 && p->len != 32)
		e.set = RENDER_SET_SRC4;
	if (e.set == RENDER_SET_SRCH6 && p->len != 128)
		e.set = RENDER_SET_SRC6;
	e.family = p->family;
	e.mark = mark;
	prefix_range(p, e.lo, e.hi);
	return render_elems_push(out, &e);
}

static int
push_iface(struct render_elems *out, const char *name, uint32_t mark,
    uint8_t set)
{
	struct render_elem e;

	if (!netaddr_valid_ifname(name))
		return EGW_E_INVALID;
	memset(&e, 0, sizeof(e));
	e.set = set;
	e.mark = mark;
	memcpy(e.lo, name, strlen(name));
	return render_elems_push(out, &e);
}

static int
push_mark_elem(struct render_elems *out, uint8_t set, uint32_t mark,
    uint8_t reason)
{
	struct render_elem e;

	memset(&e, 0, sizeof(e));
	e.set = set;
	e.mark = mark;
	e.reason = reason;
	return render_elems_push(out, &e);
}

/* Merge @tmp into @out after making it conflict-free. */
static int
finish(struct render_elems *tmp, struct render_elems *out)
{
	int rc;

	render_elems_sort(tmp);
	if ((rc = resolve_conflicts(tmp)) != 0)
		return rc;
	render_elems_sort(tmp);
	for (size_t i = 0; i < tmp->n; i++)
		if ((rc = render_elems_push(out, &tmp->v[i])) != 0)
			return rc;
	return 0;
}

int
render_policy(const struct render_config *rc, const struct policy *p,
    const struct render_profile *prof, const struct render_profile *baseline,
    enum render_state state, const char *derived_iface,
    struct render_elems *out, char *why, size_t whylen)
{
	struct render_elems tmp;
	struct builder b;
	int err = 0;

	if (p->id <= 0 || p->id > INT32_MAX) {
		set_why(why, whylen, "policy id %lld cannot be a packet mark",
		    (long long)p->id);
		return EGW_E_INVALID;
	}
	render_elems_init(&tmp);
	b.rc = rc;
	b.mark = (uint32_t)p->id;
	b.out = &tmp;
	b.err = 0;

	/* Which traffic is the scenario's: kept in every state (fail closed). */
	for (size_t i = 0; i < p->n_sources && !err; i++)
		err = push_source_prefix(&tmp, &p->sources[i], b.mark,
		    render_shards(rc) > 1 ? RENDER_SET_SRCH4 : RENDER_SET_SRC4,
		    render_shards(rc) > 1 ? RENDER_SET_SRCH6 : RENDER_SET_SRC6);
	for (size_t i = 0; i < p->n_interfaces && !err; i++)
		err = push_iface(&tmp, p->interfaces[i], b.mark, RENDER_SET_SRCIF);
	/* Sources and interfaces named together: the sources count only
	 * where they can come from (bound_chain()). */
	if (p->n_sources > 0 && p->n_interfaces > 0) {
		if (!err)
			err = push_mark_elem(&tmp, RENDER_SET_BOUND, b.mark, 0);
		for (size_t i = 0; i < p->n_interfaces && !err; i++)
			err = push_iface(&tmp, p->interfaces[i], b.mark,
			    RENDER_SET_BOUNDIF);
	}
	if (!err && p->n_sources == 0 && p->n_interfaces == 0) {
		if (derived_iface == NULL || derived_iface[0] == '\0') {
			set_why(why, whylen, "policy names no source prefix or "
			    "interface and no interface derives from network_id");
			err = EGW_E_INVALID;
		} else {
			err = push_iface(&tmp, derived_iface, b.mark, RENDER_SET_SRCIF);
		}
	}
	if (err) {
		if (err == EGW_E_INVALID && why && why[0] == '\0')
			set_why(why, whylen, "unsafe interface name");
		goto out;
	}

	if (p->dns_servers_set)
		add_dns(&b, p->dns_servers, p->n_dns_servers);
	else
		add_dns(&b, rc->dns, rc->n_dns);

	if (state == RENDER_STATE_ACTIVE && prof != NULL) {
		add_rules(&b, prof->rules, prof->n_rules);
		if (prof->uses_policy_entries)
			add_policy_entries(&b, p);
		if (p->mode == POLICY_MODE_AUDIT && !b.err)
			b.err = push_mark_elem(&tmp, RENDER_SET_AUDIT, b.mark, 0);
	} else {
		if (baseline != NULL)
			add_rules(&b, baseline->rules, baseline->n_rules);
		if (!b.err)
			b.err = push_mark_elem(&tmp, RENDER_SET_FALLBACK, b.mark,
			    state == RENDER_STATE_FAILED ? RENDER_REASON_FAILED :
			    RENDER_REASON_DISABLED);
	}
	err = b.err;
	if (err == 0)
		err = finish(&tmp, out);
	if (err == EGW_E_INVALID)
		set_why(why, whylen, "policy expands to more than %d kernel "
		    "elements", RENDER_MAX_POLICY_ELEMS);
out:
	render_elems_free(&tmp);
	return err;
}

int
render_global(const struct render_config *rc,
    const struct render_profile *baseline, struct render_elems *out)
{
	struct render_elems tmp;
	struct builder b;
	int err = 0;

	render_elems_init(&tmp);
	for (size_t i = 0; i < rc->n_managed && !err; i++)
		err = push_source_prefix(&tmp, &rc->managed[i], 0,
		    RENDER_SET_MANAGED4, RENDER_SET_MANAGED6);
	for (size_t i = 0; i < rc->n_managed_ifaces && !err; i++)
		err = push_iface(&tmp, rc->managed_ifaces[i], 0,
		    RENDER_SET_MANAGEDIF);
	b.rc = rc;
	b.mark = 0;
	b.out = &tmp;
	b.err = err;
	add_dns(&b, rc->dns, rc->n_dns);
	if (baseline != NULL)
		add_rules(&b, baseline->rules, baseline->n_rules);
	if (!b.err)
		b.err = push_mark_elem(&tmp, RENDER_SET_FALLBACK, 0,
		    RENDER_REASON_BASELINE);
	err = b.err;
	if (err == 0)
		err = finish(&tmp, out);
	render_elems_free(&tmp);
	return err;
}

/* ---- text ---- */

struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void
sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *s = realloc(b->s, cap);
		if (s == NULL) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

static char *
sb_finish(struct sbuf *b)
{
	if (b->oom) {
		free(b->s);
		return NULL;
	}
	if (b->s == NULL)
		return strdup("");
	return b->s;
}

/* Address range as "a", "a/len" or "lo-hi". */
static void
format_range(uint8_t family, const uint8_t *lo, const uint8_t *hi, char *buf,
    size_t len)
{
	size_t alen = family == AF_INET ? 4 : 16;
	char a[INET6_ADDRSTRLEN], z[INET6_ADDRSTRLEN];
	int plen = -1;

	/* A prefix: a common head, then zeros in lo and ones in hi. */
	int head = 0;
	while (head < (int)alen * 8 &&
	    ((lo[head / 8] ^ hi[head / 8]) & (0x80 >> (head % 8))) == 0)
		head++;
	plen = head;
	for (int bit = head; bit < (int)alen * 8; bit++) {
		int lb = (lo[bit / 8] >> (7 - bit % 8)) & 1;
		int hb = (hi[bit / 8] >> (7 - bit % 8)) & 1;

		if (lb != 0 || hb != 1) {
			plen = -1;
			break;
		}
	}
	inet_ntop(family, lo, a, sizeof(a));
	if (plen == (int)alen * 8)
		snprintf(buf, len, "%s", a);
	else if (plen >= 0)
		snprintf(buf, len, "%s/%d", a, plen);
	else {
		inet_ntop(family, hi, z, sizeof(z));
		snprintf(buf, len, "%s-%s", a, z);
	}
}

static void
format_num_range(unsigned lo, unsigned hi, char *buf, size_t len)
{
	if (lo == hi)
		snprintf(buf, len, "%u", lo);
	else
		snprintf(buf, len, "%u-%u", lo, hi);
}

int
render_elem_text(const struct render_elem *e, char *buf, size_t len)
{
	char a[100], pr[16], po[16];
	char name[NETADDR_IFNAMSIZ];

	buf[0] = '\0';
	switch (e->set) {
	case RENDER_SET_MANAGED4:
	case RENDER_SET_MANAGED6:
		format_range(e->family, e->lo, e->hi, a, sizeof(a));
		snprintf(buf, len, "%s . %s",
		    e->family == AF_INET ? "ipv4" : "ipv6", a);
		return 0;
	case RENDER_SET_SRC4:
	case RENDER_SET_SRC6:
		format_range(e->family, e->lo, e->hi, a, sizeof(a));
		snprintf(buf, len, "%s . %s : %u",
		    e->family == AF_INET ? "ipv4" : "ipv6", a, e->mark);
		return 0;
	case RENDER_SET_SRCH4:
	case RENDER_SET_SRCH6:
		format_range(e->family, e->lo, e->hi, a, sizeof(a));
		snprintf(buf, len, "%s : %u", a, e->mark);
		return 0;
	case RENDER_SET_MANAGEDIF:
	case RENDER_SET_SRCIF:
	case RENDER_SET_BOUNDIF:
		memcpy(name, e->lo, NETADDR_IFNAMSIZ - 1);
		name[NETADDR_IFNAMSIZ - 1] = '\0';
		if (!netaddr_valid_ifname(name))
			return EGW_E_INVALID;
		if (e->set == RENDER_SET_SRCIF)
			snprintf(buf, len, "\"%s\" : %u", name, e->mark);
		else if (e->set == RENDER_SET_BOUNDIF)
			snprintf(buf, len, "%u . \"%s\"", e->mark, name);
		else
			snprintf(buf, len, "\"%s\"", name);
		return 0;
	case RENDER_SET_AUDIT:
	case RENDER_SET_BOUND:
		snprintf(buf, len, "%u", e->mark);
		return 0;
	case RENDER_SET_FALLBACK:
		if (e->reason >= RENDER_REASON__DENY_COUNT)
			return EGW_E_INVALID;
		snprintf(buf, len, "%u : goto deny_%s", e->mark,
		    reason_names[e->reason]);
		return 0;
	case RENDER_SET_PRE4:
	case RENDER_SET_PRE6:
	case RENDER_SET_ALLOW4:
	case RENDER_SET_ALLOW6:
		format_range(e->family, e->lo, e->hi, a, sizeof(a));
		format_num_range(e->proto_lo, e->proto_hi, pr, sizeof(pr));
		format_num_range(e->port_lo, e->port_hi, po, sizeof(po));
		snprintf(buf, len, "%u . %s . %s . %s", e->mark, a, pr, po);
		return 0;
	default:
		return EGW_E_INVALID;
	}
}

static int
elems_cmds(struct sbuf *sb, const struct render_config *rc, const char *verb,
    const struct render_elem *elems, size_t n)
{
	char t[200], name[32], cur[32] = "";
	size_t *order, in_cmd = 0;

	if (render_elems_order(rc, elems, n, &order) != 0)
		return EGW_E_NOMEM;
	for (size_t k = 0; k < n; k++) {
		const struct render_elem *e = &elems[order[k]];

		if (render_elem_text(e, t, sizeof(t)) != 0) {
			free(order);
			return EGW_E_INVALID;
		}
		render_kset_name(rc, e->set, render_elem_shard(rc, e), name,
		    sizeof(name));
		if (in_cmd > 0 && (strcmp(name, cur) != 0 || in_cmd == 512)) {
			sb_add(sb, " }\n");
			in_cmd = 0;
		}
		if (in_cmd == 0)
			sb_add(sb, "%s element %s %s %s { ", verb, RENDER_FAMILY,
			    RENDER_TABLE, name);
		else
			sb_add(sb, ",\n\t");
		sb_add(sb, "%s", t);
		snprintf(cur, sizeof(cur), "%s", name);
		in_cmd++;
	}
	if (in_cmd > 0)
		sb_add(sb, " }\n");
	free(order);
	return 0;
}

char *
render_elems_cmd_text(const struct render_config *rc, const char *verb,
    const struct render_elem *elems, size_t n)
{
	struct sbuf sb = { 0 };

	if (elems_cmds(&sb, rc, verb, elems, n) != 0) {
		free(sb.s);
		return NULL;
	}
	return sb_finish(&sb);
}

/* ---- skeleton ---- */

struct skel_cb {
	void (*chain)(const char *name, const char *head, void *ctx);
	void (*rule)(const char *chain, const char *text, const char *tag, void *ctx);
	void *ctx;
	size_t n_rules;
	unsigned idx;
	bool oom;
	const struct render_config *rc;
};

static uint32_t
fnv1a(uint32_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	return h;
}

static void
skel_rule(struct skel_cb *cb, const char *chain, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
skel_rule(struct skel_cb *cb, const char *chain, const char *fmt, ...)
{
	char tag[32], idx[16];
	uint32_t h = 2166136261u;
	struct sbuf text = { 0 };
	va_list ap;
	int n;

	/* the shard verdict maps make long rules: size the text first */
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (text.s = malloc((size_t)n + 1)) == NULL) {
		cb->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(text.s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	snprintf(idx, sizeof(idx), "%u:%d", cb->idx++, RENDER_SKELETON_VERSION);
	h = fnv1a(fnv1a(fnv1a(h, chain), idx), text.s);
	snprintf(tag, sizeof(tag), "egw:%08x", h);
	cb->n_rules++;
	if (cb->rule)
		cb->rule(chain, text.s, tag, cb->ctx);
	free(text.s);
}

static void
skel_chain(struct skel_cb *cb, const char *name, const char *head)
{
	if (cb->chain)
		cb->chain(name, head, cb->ctx);
}

/*
 * @by_source is where a packet goes that its source address classified:
 * the chain that checks a bound policy's interfaces (bound_chain()), or
 * @target itself where there is no input interface to check.
 */
static void
classify_rules(struct skel_cb *cb, const char *chain, const char *target,
    const char *by_source, bool with_iface)
{
	/*
	 * Replies are not the scenario's egress.  Its own packets of an
	 * established connection are decided again like a new one's: a
	 * policy disabled, completed, deleted or narrowed must cut the
	 * connections it allowed, not only refuse the next ones.
	 */
	skel_rule(cb, chain, "ct state established,related ct direction reply accept");
	if (render_shards(cb->rc) > 1) {
		skel_rule(cb, chain, "meta mark set ip saddr map @srch4 "
		    "goto %s", by_source);
		skel_rule(cb, chain, "meta mark set ip6 saddr map @srch6 "
		    "goto %s", by_source);
	}
	skel_rule(cb, chain, "meta mark set meta nfproto . ip saddr map @src4 "
	    "goto %s", by_source);
	skel_rule(cb, chain, "meta mark set meta nfproto . ip6 saddr map @src6 "
	    "goto %s", by_source);
	if (with_iface)
		skel_rule(cb, chain, "meta mark set iifname map @srcif goto %s", target);
	skel_rule(cb, chain, "meta nfproto . ip saddr @managed4 meta mark set 0 goto %s", target);
	skel_rule(cb, chain, "meta nfproto . ip6 saddr @managed6 meta mark set 0 goto %s", target);
	if (with_iface)
		skel_rule(cb, chain, "iifname @managedif meta mark set 0 goto %s", target);
}

/*
 * A policy that names both sources and interfaces binds the two: a packet
 * from one of its sources that came in on an interface it does not name
 * is spoofed (or misrouted), and is not that scenario's to be let out by
 * its allowlist, nor by audit mode.  Only source matches come here: a
 * packet its interface classified is on a named interface already.
 * Loopback is the gateway talking to itself (Linux sends from the address
 * it talks to, which may lie inside a bound prefix), never a workload.
 *
 * A policy that names sources only has no interface of its own to check,
 * so the gateway's routing table stands in for one (a strict reverse-path
 * check, as rp_filter=1 would make, but only for these packets and
 * whatever the host's sysctls say): a source counts only on the interface
 * the gateway would send its replies out of.  Without it a workload on
 * another segment could borrow the scenario's allowlist by forging one of
 * its addresses.  The lookup leaves the mark out (the mark is ours here,
 * not the packet's routing mark).  Where routing is asymmetric on
 * purpose, naming the interfaces binds by them instead.
 */
static void
bound_chain(struct skel_cb *cb, const char *chain, const char *target)
{
	skel_chain(cb, chain, NULL);
	skel_rule(cb, chain, "meta mark @bound iifname != \"lo\" meta mark . "
	    "iifname != @boundif goto spoofed");
	skel_rule(cb, chain, "meta mark != @bound iifname != \"lo\" "
	    "fib saddr . iif oif missing goto spoofed");
	skel_rule(cb, chain, "goto %s", target);
}

/*
 * A spoofed packet is not the traffic of the scenario whose address it
 * used: it is counted and logged as the sender's, the scenario whose
 * interface it came in on (its figures, its log budget, and the flow
 * log's answer to "who"), or under mark 0 when that interface is no
 * scenario's.
 */
static void
spoofed_chain(struct skel_cb *cb)
{
	skel_chain(cb, "spoofed", NULL);
	skel_rule(cb, "spoofed", "meta mark set iifname map @srcif "
	    "goto deny_spoofed");
	skel_rule(cb, "spoofed", "meta mark set 0 goto deny_spoofed");
}

/* "meta mark & 0xff vmap { 0 : jump <prefix>0, ... }" for @k shards */
static char *
shard_vmap(unsigned k, const char *prefix)
{
	struct sbuf sb = { 0 };

	sb_add(&sb, "meta mark & 0x%x vmap { ", k - 1);
	for (unsigned i = 0; i < k; i++)
		sb_add(&sb, "%s%u : jump %s%u", i ? ", " : "", i, prefix, i);
	sb_add(&sb, " }");
	return sb_finish(&sb);
}

static void
skeleton_walk(const struct render_config *rc, struct skel_cb *cb)
{
	char lim[96], c[32];
	unsigned k = render_shards(rc);
	char *vpre = NULL, *vallow = NULL;

	snprintf(lim, sizeof(lim), "limit rate %u/second burst %u packets",
	    rc->log_rate, rc->log_burst);

	/* Allowed connections are counted and logged once, at their start. */
	skel_chain(cb, "allow", NULL);
	skel_rule(cb, "allow", "ct state established,related accept");
	skel_rule(cb, "allow", "update @cnt_allow { meta mark counter }");
	skel_rule(cb, "allow", "update @rl_allow { meta mark %s } log prefix "
	    "\"egw:a:m:allowlist\" group %u", lim, rc->nflog_group);
	skel_rule(cb, "allow", "accept");

	for (int r = 0; r < RENDER_REASON__DENY_COUNT; r++) {
		/*
		 * Audit mode lets through what the policy would deny, so that
		 * a workload's needs can be learnt; the gateway's own
		 * protections are not the policy's to learn: cloud metadata
		 * (credentials), link-local and the gateway host stay denied,
		 * and so does a bound source on another interface (whoever
		 * sent it is not the workload being learnt).
		 */
		bool audited = r != RENDER_REASON_METADATA &&
		    r != RENDER_REASON_LINKLOCAL &&
		    r != RENDER_REASON_GATEWAY && r != RENDER_REASON_SPOOFED;
		char audit[32];

		snprintf(c, sizeof(c), "deny_%s", reason_names[r]);
		snprintf(audit, sizeof(audit), "audit_%s", reason_names[r]);
		skel_chain(cb, c, NULL);
		skel_rule(cb, c, "update @cnt_deny { meta mark counter }");
		if (audited)
			skel_rule(cb, c, "meta mark @audit goto %s", audit);
		skel_rule(cb, c, "update @rl_deny { meta mark %s } log prefix "
		    "\"egw:d:m:%s\" group %u", lim, reason_names[r], rc->nflog_group);
		skel_rule(cb, c, "drop");
		if (!audited)
			continue;
		skel_chain(cb, audit, NULL);
		skel_rule(cb, audit, "update @rl_deny { meta mark %s } log prefix "
		    "\"egw:w:m:%s\" group %u", lim, reason_names[r], rc->nflog_group);
		skel_rule(cb, audit, "accept");
	}

	if (k > 1) {
		/*
		 * One pair of chains per shard; a chain without a verdict
		 * returns to decide/decide_local, which was reached by jump.
		 */
		for (unsigned i = 0; i < k; i++) {
			snprintf(c, sizeof(c), "shard_pre_%u", i);
			skel_chain(cb, c, NULL);
			skel_rule(cb, c, "meta mark . ip daddr . meta l4proto . th dport @pre4_%u goto allow", i);
			skel_rule(cb, c, "meta mark . ip6 daddr . meta l4proto . th dport @pre6_%u goto allow", i);
			snprintf(c, sizeof(c), "shard_allow_%u", i);
			skel_chain(cb, c, NULL);
			skel_rule(cb, c, "meta mark . ip daddr . meta l4proto . th dport @allow4_%u goto allow", i);
			skel_rule(cb, c, "meta mark . ip6 daddr . meta l4proto . th dport @allow6_%u goto allow", i);
		}
		vpre = shard_vmap(k, "shard_pre_");
		vallow = shard_vmap(k, "shard_allow_");
		if (vpre == NULL || vallow == NULL)
			cb->oom = true;
	}

	skel_chain(cb, "decide", NULL);
	if (vpre) {
		skel_rule(cb, "decide", "%s", vpre);
	} else {
		skel_rule(cb, "decide", "meta mark . ip daddr . meta l4proto . th dport @pre4 goto allow");
		skel_rule(cb, "decide", "meta mark . ip6 daddr . meta l4proto . th dport @pre6 goto allow");
	}
	/* The protections before the DNS rule: port 53 of the metadata
	 * server (it answers there) is a metadata deny, which audit mode
	 * does not let through, not a DNS one. */
	skel_rule(cb, "decide", "ip daddr 169.254.169.254 goto deny_metadata");
	skel_rule(cb, "decide", "ip6 daddr fd00:ec2::254 goto deny_metadata");
	skel_rule(cb, "decide", "ip daddr 169.254.0.0/16 goto deny_linklocal");
	skel_rule(cb, "decide", "ip6 daddr fe80::/10 goto deny_linklocal");
	skel_rule(cb, "decide", "meta l4proto { tcp, udp } th dport 53 goto deny_dns");
	if (vallow) {
		skel_rule(cb, "decide", "%s", vallow);
	} else {
		skel_rule(cb, "decide", "meta mark . ip daddr . meta l4proto . th dport @allow4 goto allow");
		skel_rule(cb, "decide", "meta mark . ip6 daddr . meta l4proto . th dport @allow6 goto allow");
	}
	skel_rule(cb, "decide", "meta mark vmap @fallback");
	skel_rule(cb, "decide", "goto deny_default");

	/* Packets to the gateway itself: only what a policy names. */
	skel_chain(cb, "decide_local", NULL);
	skel_rule(cb, "decide_local", "icmpv6 type { nd-router-solicit, "
	    "nd-neighbor-solicit, nd-neighbor-advert } accept");
	if (vpre) {
		skel_rule(cb, "decide_local", "%s", vpre);
	} else {
		skel_rule(cb, "decide_local", "meta mark . ip daddr . meta l4proto . th dport @pre4 goto allow");
		skel_rule(cb, "decide_local", "meta mark . ip6 daddr . meta l4proto . th dport @pre6 goto allow");
	}
	skel_rule(cb, "decide_local", "goto deny_gateway");
	free(vpre);
	free(vallow);

	spoofed_chain(cb);
	bound_chain(cb, "bound_forward", "decide");
	bound_chain(cb, "bound_input", "decide_local");

	skel_chain(cb, "forward", "type filter hook forward priority filter - 10; policy accept;");
	classify_rules(cb, "forward", "decide", "bound_forward", true);
	skel_chain(cb, "input", "type filter hook input priority filter - 10; policy accept;");
	classify_rules(cb, "input", "decide_local", "bound_input", true);
	if (rc->output_hook) {
		skel_chain(cb, "output", "type filter hook output priority filter - 10; policy accept;");
		classify_rules(cb, "output", "decide", "decide", false);
	}
}

struct skel_text {
	struct sbuf *sb;
	bool open;
	enum render_part part;
	bool skipping;		/* the current chain is not in this part */
};

static void
text_chain(const char *name, const char *head, void *ctx)
{
	struct skel_text *t = ctx;

	if (t->open)
		sb_add(t->sb, "\t}\n");
	t->open = false;
	t->skipping = (t->part == RENDER_PART_INNER && head != NULL) ||
	    (t->part == RENDER_PART_HOOKS && head == NULL);
	if (t->skipping)
		return;
	sb_add(t->sb, "\tchain %s {\n", name);
	if (head)
		sb_add(t->sb, "\t\t%s\n", head);
	t->open = true;
}

static void
text_rule(const char *chain, const char *text, const char *tag, void *ctx)
{
	struct skel_text *t = ctx;

	(void)chain;
	if (!t->skipping)
		sb_add(t->sb, "\t\t%s comment \"%s\"\n", text, tag);
}

static void
skeleton_sets(struct sbuf *sb, const struct render_config *rc)
{
	static const char *const decl[] = {
		"set managed4 { type nf_proto . ipv4_addr; flags interval; }",
		"set managed6 { type nf_proto . ipv6_addr; flags interval; }",
		"set managedif { type ifname; }",
		"map src4 { type nf_proto . ipv4_addr : mark; flags interval; }",
		"map src6 { type nf_proto . ipv6_addr : mark; flags interval; }",
		"map srcif { type ifname : mark; }",
		"map srch4 { type ipv4_addr : mark; }",
		"map srch6 { type ipv6_addr : mark; }",
		"set audit { type mark; }",
		"map fallback { type mark : verdict; }",
		"set pre4 { type mark . ipv4_addr . inet_proto . inet_service; flags interval; }",
		"set pre6 { type mark . ipv6_addr . inet_proto . inet_service; flags interval; }",
		"set allow4 { type mark . ipv4_addr . inet_proto . inet_service; flags interval; }",
		"set allow6 { type mark . ipv6_addr . inet_proto . inet_service; flags interval; }",
		"set cnt_allow { type mark; size 1048576; flags dynamic; counter; }",
		"set cnt_deny { type mark; size 1048576; flags dynamic; counter; }",
		"set rl_allow { type mark; size 1048576; flags dynamic,timeout; timeout 1m; }",
		"set rl_deny { type mark; size 1048576; flags dynamic,timeout; timeout 1m; }",
		"set bound { type mark; }",
		"set boundif { type mark . ifname; }",
	};
	unsigned k = render_shards(rc);

	for (size_t i = 0; i < sizeof(decl) / sizeof(decl[0]); i++) {
		/* one declaration per line; nft wants newlines inside blocks */
		const char *d = decl[i];
		const char *brace = strchr(d, '{');
		/* decl 10..13 are the sharded allowlists: grouped by shard */
		bool sharded = i >= 10 && i <= 13 && k > 1;

		if (k == 1 && (i == 6 || i == 7))
			continue;	/* no host maps in the flat layout */
		if (sharded && i != 10)
			continue;
		for (unsigned sh = 0; sh < (sharded ? k : 1); sh++) {
			for (size_t j = i; j < (sharded ? 14 : i + 1); j++) {
				d = decl[j];
				brace = strchr(d, '{');
				if (sharded)
					sb_add(sb, "\t%.*s_%u {\n", (int)(brace - d - 1),
					    d, sh);
				else
					sb_add(sb, "\t%.*s{\n", (int)(brace - d), d);
				for (const char *p = brace + 1; *p;) {
					const char *semi = strchr(p, ';');
					while (*p == ' ')
						p++;
					if (semi == NULL || *p == '}')
						break;
					sb_add(sb, "\t\t%.*s\n", (int)(semi - p), p);
					p = semi + 1;
				}
				sb_add(sb, "\t}\n");
			}
		}
	}
}

char *
render_skeleton_part(const struct render_config *rc, enum render_part part)
{
	struct sbuf sb = { 0 };
	struct skel_text t = { &sb, false, part, false };
	struct skel_cb cb = { text_chain, text_rule, &t, 0, 0, false, rc };

	sb_add(&sb, "table %s %s {\n", RENDER_FAMILY, RENDER_TABLE);
	if (part != RENDER_PART_HOOKS) {
		sb_add(&sb, "\tcomment \"forge-egress-gateway: written by egw-applier only\"\n");
		skeleton_sets(&sb, rc);
	}
	skeleton_walk(rc, &cb);
	if (t.open)
		sb_add(&sb, "\t}\n");
	sb_add(&sb, "}\n");
	if (cb.oom)
		sb.oom = true;
	return sb_finish(&sb);
}

char *
render_skeleton_text(const struct render_config *rc)
{
	return render_skeleton_part(rc, RENDER_PART_ALL);
}

struct tag_ctx {
	void (*fn)(const char *chain, const char *tag, void *ctx);
	void *ctx;
};

static void
tag_rule(const char *chain, const char *text, const char *tag, void *ctx)
{
	struct tag_ctx *t = ctx;

	(void)text;
	if (t->fn)
		t->fn(chain, tag, t->ctx);
}

size_t
render_rule_tags(const struct render_config *rc,
    void (*fn)(const char *chain, const char *tag, void *ctx), void *ctx)
{
	struct tag_ctx t = { fn, ctx };
	struct skel_cb cb = { NULL, tag_rule, &t, 0, 0, false, rc };

	skeleton_walk(rc, &cb);
	return cb.n_rules;
}

char *
render_full_text(const struct render_config *rc,
    const struct render_elem *elems, size_t n, bool replace)
{
	struct sbuf sb = { 0 };
	char *skel = render_skeleton_text(rc);

	if (skel == NULL)
		return NULL;
	if (replace)
		sb_add(&sb, "add table %s %s\ndelete table %s %s\n", RENDER_FAMILY,
		    RENDER_TABLE, RENDER_FAMILY, RENDER_TABLE);
	sb_add(&sb, "%s", skel);
	free(skel);
	if (elems_cmds(&sb, rc, "add", elems, n) != 0) {
		free(sb.s);
		return NULL;
	}
	return sb_finish(&sb);
}
