/* SPDX-License-Identifier: MIT */
/*
 * This file contains the kernel layer (libnftables + libnftnl/libmnl).
 *
 * Concatenated keys are laid out as the kernel compares them: each field
 * padded to 4 bytes; addresses and ports in network order, protocol and
 * nf_proto as one byte.  The mark is a host-order value, but nft inserts a
 * byteorder (hton) expression for host-order fields of a concatenation, so
 * inside concatenated keys it is big-endian, while a plain "type mark" key
 * and map data stay in host order (found by listing what we wrote).  Interval (pipapo) sets take the first and the
 * last key (NFTA_SET_ELEM_KEY / _KEY_END), both inclusive.  The e2e tests
 * check that the reconciler finds no drift after a libnftnl change, i.e.
 * that this layout reads back exactly as the text path writes it.
 */
#include "kernel.h"
#include "err.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define ELEMS_PER_MSG 128
#define ACK_TIMEOUT_MS 5000

struct kernel {
	struct nft_ctx *nft;
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
};

int
kernel_open(struct kernel **out)
{
	struct kernel *k = calloc(1, sizeof(*k));

	*out = NULL;
	if (k == NULL)
		return EGW_E_NOMEM;
	k->nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (k->nft == NULL || nft_ctx_buffer_output(k->nft) != 0 ||
	    nft_ctx_buffer_error(k->nft) != 0) {
		kernel_close(k);
		return EGW_E_NOMEM;
	}
	k->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (k->nl == NULL || mnl_socket_bind(k->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int saved = errno;

		kernel_close(k);
		errno = saved;
		return EGW_E_IO;
	}
	k->portid = mnl_socket_get_portid(k->nl);
	k->seq = (uint32_t)time(NULL);
	*out = k;
	return 0;
}

void
kernel_close(struct kernel *k)
{
	if (k == NULL)
		return;
	if (k->nl)
		mnl_socket_close(k->nl);
	if (k->nft)
		nft_ctx_free(k->nft);
	free(k);
}

static void
copy_err(char *err, size_t errlen, const char *text)
{
	if (err == NULL || errlen == 0)
		return;
	snprintf(err, errlen, "%s", text ? text : "");
	/* one line for apply_error: join libnftables' multi-line output */
	for (char *p = err; *p; p++)
		if (*p == '\n')
			*p = (p[1] ? ' ' : '\0');
}

int
kernel_run_text(struct kernel *k, const char *text, bool dry_run, char *err,
    size_t errlen)
{
	int rc;

	nft_ctx_output_set_flags(k->nft, 0);
	nft_ctx_set_dry_run(k->nft, dry_run);
	rc = nft_run_cmd_from_buffer(k->nft, text);
	nft_ctx_set_dry_run(k->nft, false);
	if (rc != 0) {
		copy_err(err, errlen, nft_ctx_get_error_buffer(k->nft));
		return EGW_E_NFT;
	}
	(void)nft_ctx_get_output_buffer(k->nft);
	return 0;
}

/* Run a list command with JSON output; returns the parsed document. */
static int
list_json(struct kernel *k, const char *cmd, bool stateless,
    struct json_object **out)
{
	unsigned flags = NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_NUMERIC_ALL;
	const char *buf;

	*out = NULL;
	if (stateless)
		flags |= NFT_CTX_OUTPUT_STATELESS;
	nft_ctx_output_set_flags(k->nft, flags);
	if (nft_run_cmd_from_buffer(k->nft, cmd) != 0) {
		const char *e = nft_ctx_get_error_buffer(k->nft);

		nft_ctx_output_set_flags(k->nft, 0);
		if (e && strstr(e, "No such file or directory"))
			return EGW_E_NOTFOUND;
		log_warnx("%s: %s", cmd, e ? e : "failed");
		return EGW_E_NFT;
	}
	nft_ctx_output_set_flags(k->nft, 0);
	buf = nft_ctx_get_output_buffer(k->nft);
	*out = json_tokener_parse(buf ? buf : "");
	return *out ? 0 : EGW_E_NFT;
}

/* ---- JSON elements -> struct render_elem ---- */

static int
json_u32(struct json_object *v, uint32_t *out)
{
	if (json_object_is_type(v, json_type_int)) {
		int64_t x = json_object_get_int64(v);

		if (x < 0 || x > UINT32_MAX)
			return -1;
		*out = (uint32_t)x;
		return 0;
	}
	if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);
		char *end;
		unsigned long x;

		if (strcmp(s, "ipv4") == 0 || strcmp(s, "tcp") == 0) {
			*out = strcmp(s, "ipv4") == 0 ? NFPROTO_IPV4 : 6;
			return 0;
		}
		if (strcmp(s, "ipv6") == 0) {
			*out = NFPROTO_IPV6;
			return 0;
		}
		if (strcmp(s, "udp") == 0) {
			*out = 17;
			return 0;
		}
		x = strtoul(s, &end, 0);
		if (*s == '\0' || *end != '\0')
			return -1;
		*out = (uint32_t)x;
		return 0;
	}
	return -1;
}

/* A number or {"range":[lo,hi]}. */
static int
json_num_range(struct json_object *v, uint32_t *lo, uint32_t *hi)
{
	struct json_object *r;

	if (json_object_is_type(v, json_type_object) &&
	    json_object_object_get_ex(v, "range", &r) &&
	    json_object_array_length(r) == 2)
		return json_u32(json_object_array_get_idx(r, 0), lo) ||
		    json_u32(json_object_array_get_idx(r, 1), hi) ? -1 : 0;
	if (json_u32(v, lo) != 0)
		return -1;
	*hi = *lo;
	return 0;
}

/* An address, {"prefix":{addr,len}} or {"range":[a,b]}. */
static int
json_addr_range(struct json_object *v, uint8_t family, uint8_t *lo, uint8_t *hi)
{
	size_t alen = family == AF_INET ? 4 : 16;
	struct json_object *x, *a, *l;

	memset(lo, 0, 16);
	memset(hi, 0, 16);
	if (json_object_is_type(v, json_type_string)) {
		if (inet_pton(family, json_object_get_string(v), lo) != 1)
			return -1;
		memcpy(hi, lo, alen);
		return 0;
	}
	if (!json_object_is_type(v, json_type_object))
		return -1;
	if (json_object_object_get_ex(v, "prefix", &x) &&
	    json_object_object_get_ex(x, "addr", &a) &&
	    json_object_object_get_ex(x, "len", &l)) {
		int len = json_object_get_int(l);

		if (inet_pton(family, json_object_get_string(a), lo) != 1 ||
		    len < 0 || len > (int)alen * 8)
			return -1;
		memcpy(hi, lo, alen);
		for (int bit = len; bit < (int)alen * 8; bit++)
			hi[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
		return 0;
	}
	if (json_object_object_get_ex(v, "range", &x) &&
	    json_object_array_length(x) == 2) {
		if (inet_pton(family, json_object_get_string(
		    json_object_array_get_idx(x, 0)), lo) != 1 ||
		    inet_pton(family, json_object_get_string(
		    json_object_array_get_idx(x, 1)), hi) != 1)
			return -1;
		return 0;
	}
	return -1;
}

static int
set_by_name(const char *name)
{
	for (int s = 0; s < RENDER_SET__COUNT; s++)
		if (strcmp(name, render_set_name(s)) == 0)
			return s;
	return -1;
}

static int
reason_by_chain(const char *chain)
{
	if (strncmp(chain, "deny_", 5) != 0)
		return -1;
	for (int r = 0; r < RENDER_REASON__DENY_COUNT; r++)
		if (strcmp(chain + 5, render_reason_name(r)) == 0)
			return r;
	return -1;
}

static int
parse_elem(int set, struct json_object *item, struct render_elem *e)
{
	struct json_object *key = item, *data = NULL, *c, *w;
	uint32_t a, b, pr_lo, pr_hi, po_lo, po_hi;
	uint8_t family;

	memset(e, 0, sizeof(*e));
	e->set = (uint8_t)set;
	if (json_object_is_type(item, json_type_array)) {
		if (json_object_array_length(item) != 2)
			return -1;
		key = json_object_array_get_idx(item, 0);
		data = json_object_array_get_idx(item, 1);
	}
	/* {"elem": {"val": ..., "counter": ...}} wraps keys with attributes */
	if (json_object_is_type(key, json_type_object) &&
	    json_object_object_get_ex(key, "elem", &w) &&
	    json_object_object_get_ex(w, "val", &c))
		key = c;

	switch (set) {
	case RENDER_SET_MANAGED4:
	case RENDER_SET_MANAGED6:
	case RENDER_SET_SRC4:
	case RENDER_SET_SRC6:
		family = (set == RENDER_SET_MANAGED4 || set == RENDER_SET_SRC4) ?
		    AF_INET : AF_INET6;
		if (!json_object_object_get_ex(key, "concat", &c) ||
		    json_object_array_length(c) != 2 ||
		    json_addr_range(json_object_array_get_idx(c, 1), family,
		    e->lo, e->hi) != 0)
			return -1;
		e->family = family;
		if (data != NULL && json_u32(data, &e->mark) != 0)
			return -1;
		return 0;
	case RENDER_SET_MANAGEDIF:
	case RENDER_SET_SRCIF:
		if (!json_object_is_type(key, json_type_string) ||
		    strlen(json_object_get_string(key)) >= NETADDR_IFNAMSIZ)
			return -1;
		memcpy(e->lo, json_object_get_string(key),
		    strlen(json_object_get_string(key)));
		if (data != NULL && json_u32(data, &e->mark) != 0)
			return -1;
		return 0;
	case RENDER_SET_AUDIT:
		return json_u32(key, &e->mark);
	case RENDER_SET_FALLBACK: {
		struct json_object *g, *t;
		int r;

		if (json_u32(key, &e->mark) != 0 || data == NULL ||
		    !json_object_object_get_ex(data, "goto", &g) ||
		    !json_object_object_get_ex(g, "target", &t) ||
		    (r = reason_by_chain(json_object_get_string(t))) < 0)
			return -1;
		e->reason = (uint8_t)r;
		return 0;
	}
	default:
		family = (set == RENDER_SET_PRE4 || set == RENDER_SET_ALLOW4) ?
		    AF_INET : AF_INET6;
		if (!json_object_object_get_ex(key, "concat", &c) ||
		    json_object_array_length(c) != 4 ||
		    json_u32(json_object_array_get_idx(c, 0), &e->mark) != 0 ||
		    json_addr_range(json_object_array_get_idx(c, 1), family,
		    e->lo, e->hi) != 0 ||
		    json_num_range(json_object_array_get_idx(c, 2), &pr_lo, &pr_hi) ||
		    json_num_range(json_object_array_get_idx(c, 3), &po_lo, &po_hi))
			return -1;
		(void)a;
		(void)b;
		e->family = family;
		e->proto_lo = (uint8_t)pr_lo;
		e->proto_hi = (uint8_t)pr_hi;
		e->port_lo = (uint16_t)po_lo;
		e->port_hi = (uint16_t)po_hi;
		return 0;
	}
}

/* ---- skeleton comparison ---- */

struct tag_list {
	char (*chain)[32];
	char (*tag)[32];
	size_t n, cap;
};

static void
collect_tag(const char *chain, const char *tag, void *ctx)
{
	struct tag_list *l = ctx;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		void *c = realloc(l->chain, cap * sizeof(*l->chain));
		void *t = c ? realloc(l->tag, cap * sizeof(*l->tag)) : NULL;

		if (c)
			l->chain = c;
		if (t == NULL)
			return;
		l->tag = t;
		l->cap = cap;
	}
	snprintf(l->chain[l->n], sizeof(l->chain[0]), "%s", chain);
	snprintf(l->tag[l->n], sizeof(l->tag[0]), "%s", tag);
	l->n++;
}

static const char *
jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v))
		return "";
	return json_object_get_string(v);
}

static void
skeleton_diff(const struct render_config *rc, struct json_object *arr,
    struct kernel_state *st)
{
	struct tag_list want = { 0 };
	size_t n = json_object_array_length(arr), ri = 0, sets_seen = 0;
	size_t n_chains_want = 0, n_chains_got = 0;
	char last[32] = "";

	render_rule_tags(rc, collect_tag, &want);
	for (size_t i = 0; i < want.n; i++)
		if (i == 0 || strcmp(want.chain[i], want.chain[i - 1]) != 0)
			n_chains_want++;
	st->skeleton_ok = true;
	for (size_t i = 0; i < n && st->skeleton_ok; i++) {
		struct json_object *o = json_object_array_get_idx(arr, i), *x;

		if (json_object_object_get_ex(o, "chain", &x)) {
			const char *name = jstr(x, "name");
			bool base = strcmp(name, "forward") == 0 ||
			    strcmp(name, "input") == 0 || strcmp(name, "output") == 0;

			n_chains_got++;
			if (base && (strcmp(jstr(x, "hook"), name) != 0 ||
			    strcmp(jstr(x, "policy"), "accept") != 0 ||
			    strcmp(jstr(x, "prio"), "-10") != 0))
				snprintf(st->skeleton_why, sizeof(st->skeleton_why),
				    "base chain %s has a changed hook, priority or policy",
				    name);
		} else if (json_object_object_get_ex(o, "set", &x) ||
		    json_object_object_get_ex(o, "map", &x)) {
			sets_seen++;
		} else if (json_object_object_get_ex(o, "rule", &x)) {
			const char *chain = jstr(x, "chain"), *tag = jstr(x, "comment");

			if (ri >= want.n || strcmp(want.chain[ri], chain) != 0 ||
			    strcmp(want.tag[ri], tag) != 0) {
				snprintf(st->skeleton_why, sizeof(st->skeleton_why),
				    "chain %s: rule %s is not the expected %s",
				    chain, tag[0] ? tag : "(untagged)",
				    ri < want.n ? want.tag[ri] : "(none)");
			}
			snprintf(last, sizeof(last), "%s", chain);
			ri++;
		}
		if (st->skeleton_why[0])
			st->skeleton_ok = false;
	}
	if (st->skeleton_ok && ri != want.n)
		snprintf(st->skeleton_why, sizeof(st->skeleton_why),
		    "%zu rules instead of %zu (after chain %s)", ri, want.n, last);
	else if (st->skeleton_ok && n_chains_got != n_chains_want)
		snprintf(st->skeleton_why, sizeof(st->skeleton_why),
		    "%zu chains instead of %zu", n_chains_got, n_chains_want);
	else if (st->skeleton_ok && sets_seen != 16)
		snprintf(st->skeleton_why, sizeof(st->skeleton_why),
		    "%zu sets instead of 16", sets_seen);
	if (st->skeleton_why[0])
		st->skeleton_ok = false;
	free(want.chain);
	free(want.tag);
}

int
kernel_read_state(struct kernel *k, const struct render_config *rc,
    struct kernel_state *st)
{
	struct json_object *doc, *arr;
	int rc2;

	memset(st, 0, sizeof(*st));
	render_elems_init(&st->elems);
	rc2 = list_json(k, "list table " RENDER_FAMILY " " RENDER_TABLE, true, &doc);
	if (rc2 == EGW_E_NOTFOUND)
		return 0;
	if (rc2 != 0)
		return rc2;
	st->exists = true;
	if (!json_object_object_get_ex(doc, "nftables", &arr)) {
		json_object_put(doc);
		return EGW_E_NFT;
	}
	skeleton_diff(rc, arr, st);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *o = json_object_array_get_idx(arr, i), *x, *el;
		int set;

		if (!json_object_object_get_ex(o, "set", &x) &&
		    !json_object_object_get_ex(o, "map", &x))
			continue;
		if ((set = set_by_name(jstr(x, "name"))) < 0)
			continue;
		if (!json_object_object_get_ex(x, "elem", &el))
			continue;
		for (size_t j = 0; j < json_object_array_length(el); j++) {
			struct render_elem e;

			if (parse_elem(set, json_object_array_get_idx(el, j), &e) != 0) {
				/* an element we cannot read is drift: mark it */
				st->skeleton_ok = false;
				snprintf(st->skeleton_why, sizeof(st->skeleton_why),
				    "unreadable element in set %s", render_set_name(set));
				continue;
			}
			if (render_elems_push(&st->elems, &e) != 0) {
				json_object_put(doc);
				return EGW_E_NOMEM;
			}
		}
	}
	json_object_put(doc);
	render_elems_sort(&st->elems);
	return 0;
}

/* ---- counters ---- */

static struct kernel_counter *
counter_slot(struct kernel_counter **v, size_t *n, size_t *cap, uint32_t mark)
{
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].mark == mark)
			return &(*v)[i];
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct kernel_counter *nv = realloc(*v, c * sizeof(*nv));

		if (nv == NULL)
			return NULL;
		*v = nv;
		*cap = c;
	}
	memset(&(*v)[*n], 0, sizeof((*v)[0]));
	(*v)[*n].mark = mark;
	return &(*v)[(*n)++];
}

static int
read_counter_set(struct kernel *k, const char *set, bool allowed,
    struct kernel_counter **v, size_t *n, size_t *cap)
{
	char cmd[128];
	struct json_object *doc, *arr;
	int rc;

	snprintf(cmd, sizeof(cmd), "list set %s %s %s", RENDER_FAMILY,
	    RENDER_TABLE, set);
	if ((rc = list_json(k, cmd, false, &doc)) != 0)
		return rc;
	json_object_object_get_ex(doc, "nftables", &arr);
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		struct json_object *o = json_object_array_get_idx(arr, i), *s, *el;

		if (!json_object_object_get_ex(o, "set", &s) ||
		    !json_object_object_get_ex(s, "elem", &el))
			continue;
		for (size_t j = 0; j < json_object_array_length(el); j++) {
			struct json_object *e = json_object_array_get_idx(el, j);
			struct json_object *w, *val, *cnt, *pk, *by;
			struct kernel_counter *c;
			uint32_t mark;

			if (!json_object_object_get_ex(e, "elem", &w) ||
			    !json_object_object_get_ex(w, "val", &val) ||
			    !json_object_object_get_ex(w, "counter", &cnt) ||
			    !json_object_object_get_ex(cnt, "packets", &pk) ||
			    !json_object_object_get_ex(cnt, "bytes", &by) ||
			    json_u32(val, &mark) != 0)
				continue;
			if ((c = counter_slot(v, n, cap, mark)) == NULL) {
				json_object_put(doc);
				return EGW_E_NOMEM;
			}
			if (allowed) {
				c->allowed_packets = (uint64_t)json_object_get_int64(pk);
				c->allowed_bytes = (uint64_t)json_object_get_int64(by);
			} else {
				c->denied_packets = (uint64_t)json_object_get_int64(pk);
				c->denied_bytes = (uint64_t)json_object_get_int64(by);
			}
		}
	}
	json_object_put(doc);
	return 0;
}

int
kernel_read_counters(struct kernel *k, struct kernel_counter **out, size_t *n)
{
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = read_counter_set(k, "cnt_allow", true, out, n, &cap)) != 0 ||
	    (rc = read_counter_set(k, "cnt_deny", false, out, n, &cap)) != 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

/* ---- libnftnl element batches ---- */

static size_t
put_u32_host(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
	return 4;
}

static size_t
put_byte4(uint8_t *p, uint8_t v)
{
	memset(p, 0, 4);
	p[0] = v;
	return 4;
}

static size_t
put_port4(uint8_t *p, uint16_t v)
{
	uint16_t be = htons(v);

	memset(p, 0, 4);
	memcpy(p, &be, 2);
	return 4;
}

/* Build the key (first or last) of @e; returns its length or 0. */
static size_t
elem_key(const struct render_elem *e, bool last, uint8_t *key)
{
	const uint8_t *addr = last ? e->hi : e->lo;
	size_t n = 0;

	switch (e->set) {
	case RENDER_SET_MANAGED4:
	case RENDER_SET_SRC4:
		n += put_byte4(key + n, NFPROTO_IPV4);
		memcpy(key + n, addr, 4);
		return n + 4;
	case RENDER_SET_MANAGED6:
	case RENDER_SET_SRC6:
		n += put_byte4(key + n, NFPROTO_IPV6);
		memcpy(key + n, addr, 16);
		return n + 16;
	case RENDER_SET_MANAGEDIF:
	case RENDER_SET_SRCIF:
		memset(key, 0, 16);
		memcpy(key, e->lo, 15);
		return 16;
	case RENDER_SET_AUDIT:
	case RENDER_SET_FALLBACK:
		return put_u32_host(key, e->mark);
	case RENDER_SET_PRE4:
	case RENDER_SET_ALLOW4:
	case RENDER_SET_PRE6:
	case RENDER_SET_ALLOW6: {
		size_t alen = e->family == AF_INET ? 4 : 16;

		/* nft byte-swaps host-order fields inside concatenations */
		uint32_t be = htonl(e->mark);
		memcpy(key + n, &be, 4);
		n += 4;
		memcpy(key + n, addr, alen);
		n += alen;
		n += put_byte4(key + n, last ? e->proto_hi : e->proto_lo);
		n += put_port4(key + n, last ? e->port_hi : e->port_lo);
		return n;
	}
	default:
		return 0;
	}
}

static bool
set_interval(uint8_t set)
{
	return set == RENDER_SET_MANAGED4 || set == RENDER_SET_MANAGED6 ||
	    set == RENDER_SET_SRC4 || set == RENDER_SET_SRC6 ||
	    (set >= RENDER_SET_PRE4 && set <= RENDER_SET_ALLOW6);
}

static int
fill_nftnl_elem(struct nftnl_set_elem *ne, const struct render_elem *e,
    bool with_data)
{
	uint8_t key[64];
	size_t len;
	char chain[32];

	if ((len = elem_key(e, false, key)) == 0)
		return EGW_E_INVALID;
	nftnl_set_elem_set(ne, NFTNL_SET_ELEM_KEY, key, (uint32_t)len);
	if (set_interval(e->set)) {
		len = elem_key(e, true, key);
		nftnl_set_elem_set(ne, NFTNL_SET_ELEM_KEY_END, key, (uint32_t)len);
	}
	if (!with_data)
		return 0;
	switch (e->set) {
	case RENDER_SET_SRC4:
	case RENDER_SET_SRC6:
	case RENDER_SET_SRCIF:
		nftnl_set_elem_set(ne, NFTNL_SET_ELEM_DATA, &e->mark, 4);
		break;
	case RENDER_SET_FALLBACK:
		if (e->reason >= RENDER_REASON__DENY_COUNT)
			return EGW_E_INVALID;
		snprintf(chain, sizeof(chain), "deny_%s",
		    render_reason_name(e->reason));
		nftnl_set_elem_set_u32(ne, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_GOTO);
		nftnl_set_elem_set_str(ne, NFTNL_SET_ELEM_CHAIN, chain);
		break;
	default:
		break;
	}
	return 0;
}

struct batch {
	char *buf;
	size_t cap;
	struct mnl_nlmsg_batch *b;
	unsigned msgs;		/* messages expecting an ack */
};

static int
batch_add_msgs(struct kernel *k, struct batch *bt, uint16_t type,
    const struct render_elem *v, size_t n)
{
	for (int set = 0; set < RENDER_SET__COUNT; set++) {
		size_t i = 0;

		while (i < n) {
			struct nftnl_set *s = NULL;
			size_t in_msg = 0;

			for (; i < n && in_msg < ELEMS_PER_MSG; i++) {
				struct nftnl_set_elem *ne;

				if (v[i].set != set)
					continue;
				if (s == NULL) {
					s = nftnl_set_alloc();
					if (s == NULL)
						return EGW_E_NOMEM;
					nftnl_set_set_str(s, NFTNL_SET_TABLE, RENDER_TABLE);
					nftnl_set_set_str(s, NFTNL_SET_NAME,
					    render_set_name(set));
				}
				ne = nftnl_set_elem_alloc();
				if (ne == NULL) {
					nftnl_set_free(s);
					return EGW_E_NOMEM;
				}
				if (fill_nftnl_elem(ne, &v[i], type == NFT_MSG_NEWSETELEM) != 0) {
					nftnl_set_elem_free(ne);
					nftnl_set_free(s);
					return EGW_E_INVALID;
				}
				nftnl_set_elem_add(s, ne);
				in_msg++;
			}
			if (s == NULL)
				break;
			struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(
			    mnl_nlmsg_batch_current(bt->b), type, NFPROTO_INET,
			    (type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0) | NLM_F_ACK,
			    k->seq++);
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			nftnl_set_free(s);
			bt->msgs++;
			if (!mnl_nlmsg_batch_next(bt->b))
				return EGW_E_NOMEM;	/* sized generously below */
		}
	}
	return 0;
}

/* Read acks until every message has one; returns 0 or the first error. */
static int
batch_collect(struct kernel *k, unsigned expected, char *err, size_t errlen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE * 4];
	unsigned acks = 0;
	int first_err = 0;
	struct pollfd pfd = { .fd = mnl_socket_get_fd(k->nl), .events = POLLIN };

	while (acks < expected) {
		int pr = poll(&pfd, 1, ACK_TIMEOUT_MS);
		ssize_t got;

		if (pr == 0) {
			copy_err(err, errlen, "timed out waiting for the kernel");
			return EGW_E_TIMEOUT;
		}
		if (pr < 0)
			return EGW_E_IO;
		got = mnl_socket_recvfrom(k->nl, buf, sizeof(buf));
		if (got < 0)
			return EGW_E_IO;
		for (struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
		    mnl_nlmsg_ok(nlh, (int)got); nlh = mnl_nlmsg_next(nlh, (int *)&got)) {
			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

			acks++;
			if (e->error != 0 && first_err == 0) {
				first_err = -e->error;
				if (err && errlen)
					snprintf(err, errlen, "kernel refused the element "
					    "batch: %s", strerror(first_err));
			}
		}
		/* after an error the kernel aborts; acks for the rest may not come */
		if (first_err != 0) {
			struct pollfd q = pfd;

			while (poll(&q, 1, 50) > 0 &&
			    mnl_socket_recvfrom(k->nl, buf, sizeof(buf)) > 0)
				;
			break;
		}
	}
	return first_err ? EGW_E_NFT : 0;
}

int
kernel_elems_batch(struct kernel *k, const struct render_elem *del,
    size_t n_del, const struct render_elem *add, size_t n_add, char *err,
    size_t errlen)
{
	struct batch bt = { 0 };
	size_t total = n_del + n_add;
	int rc;

	if (total == 0)
		return 0;
	/* ~120 bytes per element plus headers; one page of slack per message */
	bt.cap = total * 160 + (total / ELEMS_PER_MSG + 2 * RENDER_SET__COUNT + 4) *
	    (size_t)MNL_SOCKET_BUFFER_SIZE;
	bt.buf = malloc(bt.cap * 2);
	if (bt.buf == NULL)
		return EGW_E_NOMEM;
	bt.b = mnl_nlmsg_batch_start(bt.buf, bt.cap);
	nftnl_batch_begin(mnl_nlmsg_batch_current(bt.b), k->seq++);
	mnl_nlmsg_batch_next(bt.b);
	if ((rc = batch_add_msgs(k, &bt, NFT_MSG_DELSETELEM, del, n_del)) != 0 ||
	    (rc = batch_add_msgs(k, &bt, NFT_MSG_NEWSETELEM, add, n_add)) != 0)
		goto out;
	nftnl_batch_end(mnl_nlmsg_batch_current(bt.b), k->seq++);
	mnl_nlmsg_batch_next(bt.b);
	if (mnl_socket_sendto(k->nl, mnl_nlmsg_batch_head(bt.b),
	    mnl_nlmsg_batch_size(bt.b)) < 0) {
		rc = EGW_E_IO;
		copy_err(err, errlen, strerror(errno));
		goto out;
	}
	rc = batch_collect(k, bt.msgs, err, errlen);
out:
	mnl_nlmsg_batch_stop(bt.b);
	free(bt.buf);
	return rc;
}
