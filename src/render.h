/* SPDX-License-Identifier: MIT */
/*
 * This file contains the renderer: desired state -> kernel elements -> nft text.
 *
 * The kernel layout is flat (docs/KERNEL_LAYOUT.md): a fixed skeleton of
 * chains and sets that never depends on the number of scenarios, plus one
 * list of set/map elements per scenario, keyed by the scenario's packet mark
 * (policies.id).  render_policy() turns one typed policy into its elements;
 * render_global() gives the elements of "mark 0" (managed sources without a
 * policy, the strict baseline).  The same element structs feed the nft text
 * (render_*_text, for libnftables, dry-run and GET /v1/ruleset) and the
 * libnftnl element batches (kernel.c), so both paths agree by construction.
 *
 * This module is pure: no I/O.  It only ever sees typed values (struct
 * policy, struct ip_prefix, validated interface names), and it checks the
 * interface-name charset again before quoting one, so no client text can
 * reach nft syntax.
 */
#ifndef EGW_RENDER_H
#define EGW_RENDER_H

#include "netaddr.h"
#include "policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RENDER_FAMILY "inet"
#define RENDER_TABLE "forge_egress"
#define RENDER_MAX_GATEWAY 64		/* gateway addresses we protect */
#define RENDER_MAX_MANAGED 64
#define RENDER_MAX_DNS 8
#define RENDER_PROFILE_MAX_RULES 256
#define RENDER_MAX_POLICY_ELEMS 4096	/* beyond this a policy fails */
#define RENDER_SKELETON_VERSION 3	/* bump when the skeleton changes */
#define RENDER_SHARDS_DEFAULT 256	/* allowlist shards egw-applier uses */
#define RENDER_SHARDS_MAX 1024

/* The element-holding sets and maps of the skeleton. */
enum render_set {
	RENDER_SET_MANAGED4 = 0,	/* nf_proto . ipv4_addr (interval) */
	RENDER_SET_MANAGED6,		/* nf_proto . ipv6_addr (interval) */
	RENDER_SET_MANAGEDIF,		/* ifname */
	RENDER_SET_SRC4,		/* nf_proto . ipv4_addr : mark (interval) */
	RENDER_SET_SRC6,		/* nf_proto . ipv6_addr : mark (interval) */
	RENDER_SET_SRCIF,		/* ifname : mark */
	RENDER_SET_SRCH4,		/* ipv4_addr : mark (hash; sharded layout) */
	RENDER_SET_SRCH6,		/* ipv6_addr : mark (hash; sharded layout) */
	RENDER_SET_BOUND,		/* mark: sources bound to ifaces */
	RENDER_SET_BOUNDIF,		/* mark . ifname: where from */
	RENDER_SET_AUDIT,		/* mark */
	RENDER_SET_FALLBACK,		/* mark : verdict (goto deny_<reason>) */
	RENDER_SET_PRE4,		/* mark . ipv4_addr . inet_proto . inet_service */
	RENDER_SET_PRE6,
	RENDER_SET_ALLOW4,
	RENDER_SET_ALLOW6,
	RENDER_SET__COUNT
};

/* The source maps (SRC4 .. SRCH6) sort before every other keyed set. */
#define RENDER_SET_SOURCE_FIRST RENDER_SET_SRC4
#define RENDER_SET_SOURCE_LAST RENDER_SET_SRCH6

/* Why a packet was decided; the <reason> of the NFLOG prefix. */
enum render_reason {
	RENDER_REASON_DEFAULT = 0,	/* not in the allowlist */
	RENDER_REASON_DNS,		/* port 53 to a non-resolver */
	RENDER_REASON_METADATA,		/* cloud metadata address */
	RENDER_REASON_LINKLOCAL,	/* 169.254.0.0/16, fe80::/10 */
	RENDER_REASON_GATEWAY,		/* the gateway's own addresses */
	RENDER_REASON_BASELINE,		/* managed source without a policy */
	RENDER_REASON_DISABLED,		/* policy disabled: baseline */
	RENDER_REASON_FAILED,		/* policy failed to apply: baseline */
	RENDER_REASON_SPOOFED,		/* bound source, another iface */
	RENDER_REASON__DENY_COUNT,
	RENDER_REASON_ALLOWLIST = RENDER_REASON__DENY_COUNT	/* allowed */
};

/*
 * One set or map element.  Address sets use lo/hi as an inclusive range
 * (IPv4 in the first 4 bytes, the rest zero); interface sets keep the
 * NUL-padded name in lo.  Unused fields are zero so elements compare with
 * render_elem_cmp().
 */
struct render_elem {
	uint8_t set;		/* enum render_set */
	uint8_t family;		/* AF_INET / AF_INET6 for address sets, else 0 */
	uint8_t proto_lo, proto_hi;
	uint8_t reason;		/* FALLBACK: enum render_reason of the verdict */
	uint8_t pad[3];
	uint32_t mark;		/* key mark, or the data mark of SRC* maps */
	uint16_t port_lo, port_hi;
	uint8_t lo[16];
	uint8_t hi[16];
};

/* A growable element list, owned by whoever initialised it. */
struct render_elems {
	struct render_elem *v;
	size_t n, cap;
};

/* A profile as stored in profiles / profile_rules. */
struct render_profile {
	char name[POLICY_PROFILE_MAX + 1];
	bool uses_policy_entries;	/* add the policy's hosts/ports/rules */
	size_t n_rules;
	struct policy_rule rules[RENDER_PROFILE_MAX_RULES];
};

/* Everything besides policies that shapes the ruleset. */
struct render_config {
	uint16_t nflog_group;
	unsigned log_rate;		/* log lines per second per scenario */
	unsigned log_burst;
	bool output_hook;		/* also classify host-originated traffic */
	/*
	 * Allowlist shards: pre4/pre6/allow4/allow6 exist once per shard
	 * ("allow4_17"), an element living in shard (mark & (shards - 1)),
	 * reached through a verdict map on the mark.  A change then touches
	 * a set of about 1/shards of the elements (docs/KERNEL_LAYOUT.md).
	 * 0 or 1: one set each, no shard chains (the flat layout of the
	 * golden files); otherwise a power of two <= RENDER_SHARDS_MAX.
	 * The sharded layout also puts host sources (/32, /128) into the
	 * hash maps srch4/srch6: an O(1) lookup per new connection instead
	 * of the interval map's scan of every scenario's source.
	 */
	unsigned shards;
	size_t n_dns;			/* default resolvers (EGW_DNS_SERVERS) */
	struct ip_prefix dns[RENDER_MAX_DNS];
	size_t n_gateway;		/* the gateway's own addresses (host prefixes) */
	struct ip_prefix gateway[RENDER_MAX_GATEWAY];
	size_t n_managed;		/* EGW_MANAGED_SOURCES */
	struct ip_prefix managed[RENDER_MAX_MANAGED];
	size_t n_managed_ifaces;	/* EGW_MANAGED_IFACES */
	char managed_ifaces[RENDER_MAX_MANAGED][NETADDR_IFNAMSIZ];
};

/* What a policy's kernel elements should express. */
enum render_state {
	RENDER_STATE_ACTIVE = 0,	/* enabled: its profile and entries */
	RENDER_STATE_DISABLED,		/* baseline, deny reason "disabled" */
	RENDER_STATE_FAILED		/* baseline, deny reason "failed" */
};

/**
 * render_elems_init() / render_elems_free() - an empty list / release it
 */
void render_elems_init(struct render_elems *l);
void render_elems_free(struct render_elems *l);

/**
 * render_elems_push() - append a copy of @e
 *
 * Returns: 0 or EGW_E_NOMEM.
 */
int render_elems_push(struct render_elems *l, const struct render_elem *e);

/**
 * render_elems_sort() - sort with render_elem_cmp() and drop exact duplicates
 */
void render_elems_sort(struct render_elems *l);

/**
 * render_elem_cmp() - total order on elements (set, then key, then data)
 *
 * Returns: <0, 0 or >0 like memcmp.
 */
int render_elem_cmp(const struct render_elem *a, const struct render_elem *b);

/**
 * render_elem_owner() - the mark an element belongs to (0: global)
 */
uint32_t render_elem_owner(const struct render_elem *e);

/**
 * render_elems_conflict() - whether the kernel would refuse @a next to @b
 *
 * Interval sets (pipapo) refuse an element whose first or last key lies
 * inside an existing element; plain sets and maps refuse the same key with
 * different data.  Elements of different sets never conflict.
 *
 * Returns: true on a conflict.
 */
bool render_elems_conflict(const struct render_elem *a, const struct render_elem *b);

/**
 * render_policy() - a policy's elements
 * @rc: configuration (resolvers, gateway addresses)
 * @p: the typed policy; p->id is the mark and must be 1..2^31-1
 * @prof: the policy's profile (ignored unless @state is ACTIVE)
 * @baseline: the "none" profile, or NULL (then baseline = DNS only)
 * @state: what to express
 * @derived_iface: the interface used when the policy names neither sources
 *                 nor interfaces (from EGW_IFACE_TEMPLATE), or NULL
 * @out: elements are appended here (sorted, without conflicts)
 * @why: on failure, a one-line reason for apply_error
 * @whylen: size of @why
 *
 * Returns: 0; EGW_E_INVALID when the policy cannot be expressed (bad mark,
 * no source at all, unsafe interface name, too many elements); EGW_E_NOMEM.
 * On failure nothing is appended.
 */
int render_policy(const struct render_config *rc, const struct policy *p,
    const struct render_profile *prof, const struct render_profile *baseline,
    enum render_state state, const char *derived_iface,
    struct render_elems *out, char *why, size_t whylen);

/**
 * render_global() - elements of mark 0: managed sources and their baseline
 * @rc: configuration
 * @baseline: the "none" profile, or NULL
 * @out: elements are appended here
 *
 * Returns: 0, EGW_E_INVALID (unsafe managed interface name), EGW_E_NOMEM.
 */
int render_global(const struct render_config *rc,
    const struct render_profile *baseline, struct render_elems *out);

/**
 * render_set_name() - the logical name of a set ("allow4", ...)
 *
 * For sharded sets the kernel name adds the shard: see render_kset_name().
 */
const char *render_set_name(enum render_set set);

/**
 * render_shards() - the effective shard count of @rc (1 when unsharded)
 */
unsigned render_shards(const struct render_config *rc);

/**
 * render_set_sharded() - whether @set exists once per shard
 */
bool render_set_sharded(enum render_set set);

/**
 * render_elem_shard() - the shard an element lives in (0 if unsharded)
 */
unsigned render_elem_shard(const struct render_config *rc,
    const struct render_elem *e);

/**
 * render_kset_name() - the kernel name of (@set, @shard)
 * @buf: output, at least 32 bytes ("allow4_1023")
 */
void render_kset_name(const struct render_config *rc, enum render_set set,
    unsigned shard, char *buf, size_t len);

/**
 * render_kset_parse() - inverse of render_kset_name()
 *
 * Returns: 0 and fills @set and @shard, or -1 for a name that is not one
 * of the element sets of @rc's layout.
 */
int render_kset_parse(const struct render_config *rc, const char *name,
    enum render_set *set, unsigned *shard);

/**
 * render_kset_count() - how many named sets and maps the skeleton declares
 */
size_t render_kset_count(const struct render_config *rc);

/**
 * render_elems_order() - element indexes grouped by kernel set
 * @rc: configuration (shard count)
 * @v: elements
 * @n: count
 * @out: malloc'd array of @n indexes, owned by the caller (free())
 *
 * The groups come in set order, then shard order; within a group the
 * elements keep their order in @v.
 *
 * Returns: 0 or EGW_E_NOMEM.
 */
int render_elems_order(const struct render_config *rc,
    const struct render_elem *v, size_t n, size_t **out);

/**
 * render_reason_name() - the NFLOG prefix reason ("default", ...)
 */
const char *render_reason_name(enum render_reason r);

/**
 * render_skeleton_text() - the table definition without elements
 * @rc: configuration (log group, rates, output hook)
 *
 * Every rule carries a comment "egw:<hash>" (render_rule_tags()) so the
 * reconciler can tell a hand-edited skeleton from ours.
 *
 * Returns: malloc'd "table inet forge_egress { ... }\n" text owned by the
 * caller, or NULL when out of memory.
 */
char *render_skeleton_text(const struct render_config *rc);

/* Which part of the skeleton render_skeleton_part() writes. */
enum render_part {
	RENDER_PART_ALL = 0,	/* = render_skeleton_text() */
	RENDER_PART_INNER,	/* sets and the regular chains: no hook, inert */
	RENDER_PART_HOOKS	/* the base chains only (forward, input, output) */
};

/**
 * render_skeleton_part() - the skeleton, or the part of it before/with hooks
 * @rc: configuration
 * @part: which part
 *
 * INNER then HOOKS, each in its own transaction, builds the same table as
 * ALL: the table only starts to see packets when the base chains arrive,
 * so the elements can be loaded in between (egw-applier's cold start).
 *
 * Returns: malloc'd text owned by the caller, or NULL.
 */
char *render_skeleton_part(const struct render_config *rc, enum render_part part);

/**
 * render_rule_tags() - the expected rule comments, chain by chain
 * @rc: configuration
 * @fn: called once per rule in order with the chain name and the comment
 * @ctx: passed to @fn
 *
 * Returns: the number of rules.
 */
size_t render_rule_tags(const struct render_config *rc,
    void (*fn)(const char *chain, const char *tag, void *ctx), void *ctx);

/**
 * render_elem_text() - one element in nft syntax, without braces
 * @e: the element
 * @buf: output
 * @len: size of @buf (160 is always enough)
 *
 * Returns: 0, or EGW_E_INVALID for an element that cannot be written
 * safely (bad interface name); @buf is then "".
 */
int render_elem_text(const struct render_elem *e, char *buf, size_t len);

/**
 * render_elems_cmd_text() - "add element" or "delete element" commands
 * @rc: configuration (shard count: which kernel set each element is in)
 * @verb: "add" or "delete"
 * @elems: elements (any order; grouped by set, 512 per command)
 * @n: count
 *
 * Returns: malloc'd text owned by the caller ("" when @n is 0), or NULL
 * when out of memory or an element is unsafe.
 */
char *render_elems_cmd_text(const struct render_config *rc, const char *verb,
    const struct render_elem *elems, size_t n);

/**
 * render_full_text() - one transaction text that (re)creates the table
 * @rc: configuration
 * @elems: every element (global and all policies)
 * @n: count
 * @replace: prefix "add table; delete table;" so an existing table is
 *           swapped atomically (never a moment without the table)
 *
 * Returns: malloc'd text owned by the caller, or NULL.
 */
char *render_full_text(const struct render_config *rc,
    const struct render_elem *elems, size_t n, bool replace);

#endif
