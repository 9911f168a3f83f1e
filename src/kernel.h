/* SPDX-License-Identifier: MIT */
/*
 * This file contains the kernel layer: libnftables for whole-table work,
 * libnftnl batches for element updates and libnftnl dumps to read back.
 *
 * Only table inet forge_egress is ever named.  Text goes through
 * libnftables (one buffer = one netlink batch = one kernel transaction);
 * incremental element changes are built with libnftnl and sent as one
 * batch, which does not make the front end download the table first, so
 * the cost of a change does not grow with the number of scenarios loaded
 * (docs/KERNEL_LAYOUT.md has the measurements).
 */
#ifndef EGW_KERNEL_H
#define EGW_KERNEL_H

#include "render.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KERNEL_ERR_MAX 1024

struct kernel;

/* What the reconciler learns from the table listing. */
struct kernel_state {
	bool exists;
	bool skeleton_ok;		/* chains, hooks, rule tags and sets as rendered */
	char skeleton_why[256];		/* first difference when !skeleton_ok */
	struct render_elems elems;	/* every element of the element sets, sorted */
};

/* Per-mark totals of the dynamic counter sets. */
struct kernel_counter {
	uint32_t mark;
	bool in_allowed, in_denied;	/* which counter set holds the mark */
	uint64_t allowed_packets, allowed_bytes;
	uint64_t denied_packets, denied_bytes;
};

/**
 * kernel_open() - a netfilter netlink socket (libnftables contexts are
 * made per kernel_run_text() call: a reused one slows down with its cache)
 * @out: the handle, owned by the caller (kernel_close)
 *
 * Returns: 0, EGW_E_NOMEM, or EGW_E_IO (errno set) when netlink is not
 * available (no CAP_NET_ADMIN).
 */
int kernel_open(struct kernel **out);

/**
 * kernel_close() - release; NULL is a no-op
 */
void kernel_close(struct kernel *k);

/**
 * kernel_socket() - the netlink socket's descriptor, borrowed
 *
 * For tests that queue an answer nobody waits for (a request given up
 * on): every read of this module must pass over it.
 */
int kernel_socket(const struct kernel *k);

/**
 * kernel_run_text() - run an nft script as one transaction
 * @k: handle
 * @text: nft commands (rendered, never client text)
 * @dry_run: validate in the kernel and abort (nft --check)
 * @err: libnftables' error buffer on failure (may be NULL)
 * @errlen: size of @err
 *
 * Returns: 0 or EGW_E_NFT.
 */
int kernel_run_text(struct kernel *k, const char *text, bool dry_run,
    char *err, size_t errlen);

/**
 * kernel_read_state() - read the table back and compare its skeleton
 *
 * Netlink dumps through libnftnl (chains, rules with their comments, sets,
 * then each element set), decoded into struct render_elem; no text, no
 * JSON (libnftables' listing took 2-6 s at 10,000 scenarios).  Elements
 * that cannot be decoded or sit in another shard's set make skeleton_ok
 * false, so the caller replaces the table.
 * @k: handle
 * @rc: configuration the skeleton was rendered from
 * @st: filled; free st->elems with render_elems_free()
 *
 * Returns: 0 (also when the table does not exist: st->exists is false),
 * EGW_E_NFT or EGW_E_NOMEM.
 */
int kernel_read_state(struct kernel *k, const struct render_config *rc,
    struct kernel_state *st);

/**
 * kernel_read_counters() - per-mark allowed/denied totals
 * @k: handle
 * @out: malloc'd array owned by the caller (free())
 * @n: its length
 *
 * Returns: 0, EGW_E_NOTFOUND when the table is absent, EGW_E_NFT, EGW_E_NOMEM.
 */
int kernel_read_counters(struct kernel *k, struct kernel_counter **out, size_t *n);

/**
 * kernel_counters_drop() - remove marks from the counter sets
 * @k: handle
 * @v: counters as kernel_read_counters() gave them (in_allowed/in_denied
 *     say which set holds each mark)
 * @n: count
 * @err: kernel error text on failure
 * @errlen: size of @err
 *
 * The counter sets are filled by packets and never forget a mark on their
 * own: without this, every scenario ever counted stays until the table is
 * replaced, each read dumps them all, and once the sets are full new
 * scenarios are no longer counted.  One transaction.
 *
 * Returns: 0, EGW_E_NFT (the kernel refused; nothing changed), EGW_E_IO,
 * EGW_E_TIMEOUT or EGW_E_NOMEM.
 */
int kernel_counters_drop(struct kernel *k, const struct kernel_counter *v,
    size_t n, char *err, size_t errlen);

/**
 * kernel_elems_batch() - delete and add elements in one transaction (libnftnl)
 * @k: handle
 * @rc: configuration (which shard set each element lives in)
 * @del: elements to delete (must exist, or the whole batch fails)
 * @n_del: count
 * @add: elements to add
 * @n_add: count
 * @err: kernel error text on failure
 * @errlen: size of @err
 *
 * Returns: 0, EGW_E_NFT (the kernel refused; nothing changed), EGW_E_IO,
 * EGW_E_TIMEOUT, or EGW_E_NOMEM.
 */
int kernel_elems_batch(struct kernel *k, const struct render_config *rc,
    const struct render_elem *del, size_t n_del, const struct render_elem *add,
    size_t n_add, char *err, size_t errlen);

/**
 * kernel_create() - build the table when it does not exist, fast
 * @k: handle
 * @rc: configuration
 * @elems: every element
 * @n: count
 * @err: error text on failure
 * @errlen: size of @err
 *
 * Three transactions: the sets and regular chains (libnftables), all
 * elements (one libnftnl batch, no text parser), then the base chains.
 * The table has no hook until the last one commits, so packets see
 * either no table (as before the call) or the complete one.  On failure
 * the half-built table is deleted again.  Only for a table that does not
 * exist: replacing a live table must stay one transaction
 * (kernel_run_text() of render_full_text()).
 *
 * Returns: 0, EGW_E_NFT, EGW_E_IO, EGW_E_TIMEOUT or EGW_E_NOMEM.
 */
int kernel_create(struct kernel *k, const struct render_config *rc,
    const struct render_elem *elems, size_t n, char *err, size_t errlen);

#endif
