/* SPDX-License-Identifier: MIT */
/*
 * This file contains the kernel layer (libnftables + libnftnl/libmnl).
 *
 * Concatenated keys are laid out as the kernel compares them: each field
 * padded to 4 bytes; addresses and ports in network order, protocol and
 * nf_proto as one byte.  The mark is a host-order value, but nft inserts a
 * byteorder (hton) expression for host-order fields of a concatenation
 * that an interval set looks up, so inside those keys it is big-endian,
 * while a plain "type mark" key, the hash set "mark . ifname" and map data
 * stay in host order (found by listing what we wrote, and by
 * "nft --debug=netlink add element").  Interval (pipapo) sets take the
 * first and the last key (NFTA_SET_ELEM_KEY / _KEY_END), both inclusive.
 * The e2e tests check that the reconciler finds no drift after a libnftnl
 * change, i.e. that this layout reads back exactly as the text path
 * writes it.
 */
#include "kernel.h"
#include "err.h"
#include "log.h"
#include "timefmt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define ELEMS_PER_MSG 128
#define ACK_TIMEOUT_MS 5000
#define REQ_BUF_SIZE 8192		/* one dump or get request */
#define DRAIN_MAX_READS 65536		/* a dump of ~10M elements */

struct kernel {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	size_t sndbuf;		/* what sock_buffers() last asked for */
	size_t rcvbuf;		/* and sock_rcvbuf() */
	bool interrupted;	/* a dump saw the ruleset change under it */
};

/*
 * poll() for the socket until @deadline (monotonic ms); a signal (the
 * applier's SIGHUP, say) is not a reason to give up.  Returns poll's
 * result: 1 readable, 0 timed out, -1 error.
 */
static int
wait_readable(struct kernel *k, int64_t deadline)
{
	struct pollfd pfd = { .fd = mnl_socket_get_fd(k->nl), .events = POLLIN };

	for (;;) {
		int64_t left = deadline - timefmt_monotonic_ms();
		int pr = poll(&pfd, 1, left > 0 ? (int)left : 0);

		if (pr >= 0 || errno != EINTR)
			return pr;
	}
}

int
kernel_open(struct kernel **out)
{
	struct kernel *k = calloc(1, sizeof(*k));

	*out = NULL;
	if (k == NULL)
		return EGW_E_NOMEM;
	k->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (k->nl == NULL || mnl_socket_bind(k->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int saved = errno;

		kernel_close(k);
		errno = saved;
		return EGW_E_IO;
	}
	k->portid = mnl_socket_get_portid(k->nl);
	k->seq = (uint32_t)time(NULL);
	{
		/* An error ack echoes the whole refused message (a batch
		 * message of 128 elements is ~10 KB): only its header, so
		 * that the acks of a large refused batch fit the buffer. */
		int on = 1;

		(void)setsockopt(mnl_socket_get_fd(k->nl), SOL_NETLINK,
		    NETLINK_CAP_ACK, &on, sizeof(on));
	}
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
	free(k);
}

int
kernel_socket(const struct kernel *k)
{
	return mnl_socket_get_fd(k->nl);
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
	sigset_t block, old;
	int rc;

	/*
	 * A fresh context each time: a reused one keeps its cache, and a
	 * 1,000-scenario replace then took 460 ms instead of nft -f's 320.
	 */
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);

	if (ctx == NULL || nft_ctx_buffer_output(ctx) != 0 ||
	    nft_ctx_buffer_error(ctx) != 0) {
		if (ctx)
			nft_ctx_free(ctx);
		return EGW_E_NOMEM;
	}
	nft_ctx_set_dry_run(ctx, dry_run);
	/*
	 * libnftables polls for the kernel's answers with select() (a zero
	 * timeout, between reads), which a signal interrupts whatever
	 * SA_RESTART says; it then reports the transaction as failed
	 * ("Interrupted system call"), though the kernel took it, and the
	 * caller would take a SIGHUP for a refusal.  The signals wait until
	 * libnftables is done.
	 */
	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	rc = nft_run_cmd_from_buffer(ctx, text);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		copy_err(err, errlen, nft_ctx_get_error_buffer(ctx));
		nft_ctx_free(ctx);
		return EGW_E_NFT;
	}
	nft_ctx_free(ctx);
	(void)k;
	return 0;
}

/* ---- reading the table back (libnftnl dumps, no text, no JSON) ---- */

/*
 * libnftables' "list table" downloads and converts every element into its
 * expression tree first: 2 s (terse) to 6 s (JSON) at 10,000 scenarios,
 * every reconcile.  Netlink dumps of chains, rules, sets and elements,
 * decoded straight into struct render_elem, take a fraction of that.
 */

/*
 * Whether @nlh answers one of our requests numbered [@first, @last]: the
 * socket lives as long as the applier, so a request given up on (timed
 * out, or a dump left half read after an error) still has answers queued,
 * and taking one of those for the current request's would report a batch
 * the kernel refused as applied, or the other way round.
 */
static bool
answers_ours(const struct kernel *k, const struct nlmsghdr *nlh,
    uint32_t first, uint32_t last)
{
	return nlh->nlmsg_pid == k->portid &&
	    nlh->nlmsg_seq - first <= last - first;
}

/*
 * Read and drop what is left of earlier requests.  A dump's later parts
 * are made only as its earlier ones are read, and while one is unfinished
 * the kernel refuses every new dump on the socket (EBUSY): each read here
 * lets an abandoned dump go on to its end.
 */
static void
drain_unread(struct kernel *k)
{
	static char buf[1 << 16];
	unsigned reads = 0;

	/* ENOBUFS (answers lost to a full buffer) is reported once, before
	 * what is still queued: go on reading; EAGAIN means empty */
	while (reads < DRAIN_MAX_READS &&
	    (recv(mnl_socket_get_fd(k->nl), buf, sizeof(buf), MSG_DONTWAIT) >= 0 ||
	    errno == ENOBUFS || errno == EINTR))
		reads++;
	if (reads)
		log_info("netlink: dropped %u unread answers to earlier requests",
		    reads);
}

/* Send @nlh and run @cb on every answer until the dump (or ack) ends. */
static int
nl_talk(struct kernel *k, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	static char buf[1 << 16];
	uint32_t seq = nlh->nlmsg_seq;
	int64_t deadline;
	ssize_t n;

	drain_unread(k);
	if (mnl_socket_sendto(k->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	deadline = timefmt_monotonic_ms() + ACK_TIMEOUT_MS;
	for (;;) {
		int len;

		if (wait_readable(k, deadline) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if ((n = mnl_socket_recvfrom(k->nl, buf, sizeof(buf))) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		len = (int)n;
		for (struct nlmsghdr *m = (struct nlmsghdr *)buf; mnl_nlmsg_ok(m, len);
		    m = mnl_nlmsg_next(m, &len)) {
			int ret;

			if (!answers_ours(k, m, seq, seq))
				continue;
			ret = mnl_cb_run(m, m->nlmsg_len, seq, k->portid, cb, data);
			/* libmnl: the dump was interrupted by a change (EINTR) */
			if (ret < 0 && errno == EINTR)
				k->interrupted = true;
			if (ret <= MNL_CB_STOP)
				return ret < 0 ? -1 : 0;
		}
	}
}

static struct nlmsghdr *
dump_hdr(struct kernel *k, char *buf, uint16_t type, uint16_t flags)
{
	return nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, flags, k->seq++);
}

struct table_got {
	bool exists;
	uint32_t flags;		/* NFT_TABLE_F_DORMANT: no chain is hooked */
};

static int
table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct table_got *g = data;
	struct nftnl_table *t = nftnl_table_alloc();

	g->exists = true;
	if (t != NULL && nftnl_table_nlmsg_parse(nlh, t) == 0 &&
	    nftnl_table_is_set(t, NFTNL_TABLE_FLAGS))
		g->flags = nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS);
	if (t != NULL)	/* libnftnl's free does not take NULL */
		nftnl_table_free(t);
	return MNL_CB_OK;
}

struct chain_got {
	char (*name)[NFT_CHAIN_MAXNAMELEN];
	bool *ok;		/* base-chain attributes as rendered */
	size_t n, cap;
	bool oom;
};

static int
chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct chain_got *g = data;
	struct nftnl_chain *c = nftnl_chain_alloc();
	const char *name, *table;

	if (c == NULL || nftnl_chain_nlmsg_parse(nlh, c) < 0)
		goto out;
	table = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE);
	name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
	if (table == NULL || name == NULL || strcmp(table, RENDER_TABLE) != 0)
		goto out;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 64;
		void *a = realloc(g->name, cap * sizeof(*g->name));
		void *b = a ? realloc(g->ok, cap * sizeof(*g->ok)) : NULL;

		if (a)
			g->name = a;
		if (b == NULL) {
			g->oom = true;
			goto out;
		}
		g->ok = b;
		g->cap = cap;
	}
	snprintf(g->name[g->n], sizeof(g->name[0]), "%s", name);
	{
		bool hook = nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM);
		uint32_t want_hook = strcmp(name, "forward") == 0 ? NF_INET_FORWARD :
		    strcmp(name, "input") == 0 ? NF_INET_LOCAL_IN :
		    strcmp(name, "output") == 0 ? NF_INET_LOCAL_OUT : UINT32_MAX;

		if (want_hook == UINT32_MAX)
			g->ok[g->n] = !hook;
		else
			g->ok[g->n] = hook &&
			    nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) == want_hook &&
			    nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO) == -10 &&
			    nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) == NF_ACCEPT;
	}
	g->n++;
out:
	if (c != NULL)
		nftnl_chain_free(c);
	return MNL_CB_OK;
}

struct tag_list {
	char (*chain)[NFT_CHAIN_MAXNAMELEN];
	char (*tag)[32];
	size_t n, cap;
	bool oom;
};

static void
tag_push(struct tag_list *l, const char *chain, const char *tag)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		void *c = realloc(l->chain, cap * sizeof(*l->chain));
		void *t = c ? realloc(l->tag, cap * sizeof(*l->tag)) : NULL;

		if (c)
			l->chain = c;
		if (t == NULL) {
			l->oom = true;
			return;
		}
		l->tag = t;
		l->cap = cap;
	}
	snprintf(l->chain[l->n], sizeof(l->chain[0]), "%s", chain);
	snprintf(l->tag[l->n], sizeof(l->tag[0]), "%s", tag);
	l->n++;
}

static void
collect_tag(const char *chain, const char *tag, void *ctx)
{
	tag_push(ctx, chain, tag);
}

static int
comment_cb(const struct nftnl_udata *attr, void *data)
{
	const char **out = data;

	if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT) {
		const char *v = nftnl_udata_get(attr);
		uint8_t len = nftnl_udata_len(attr);

		if (len > 0 && v[len - 1] == '\0')
			*out = v;
	}
	return 0;
}

static int
rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct tag_list *l = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	const char *table, *chain, *comment = "";
	const void *ud;
	uint32_t udlen;

	if (r == NULL || nftnl_rule_nlmsg_parse(nlh, r) < 0)
		goto out;
	table = nftnl_rule_get_str(r, NFTNL_RULE_TABLE);
	chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
	if (table == NULL || chain == NULL || strcmp(table, RENDER_TABLE) != 0)
		goto out;
	ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &udlen);
	if (ud != NULL)
		nftnl_udata_parse(ud, udlen, comment_cb, &comment);
	tag_push(l, chain, comment);
out:
	if (r != NULL)
		nftnl_rule_free(r);
	return MNL_CB_OK;
}

struct set_got {
	char (*name)[NFT_SET_MAXNAMELEN];
	size_t n, cap;
	bool oom;
};

static int
set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct set_got *g = data;
	struct nftnl_set *s = nftnl_set_alloc();
	const char *table, *name;

	if (s == NULL || nftnl_set_nlmsg_parse(nlh, s) < 0)
		goto out;
	table = nftnl_set_get_str(s, NFTNL_SET_TABLE);
	name = nftnl_set_get_str(s, NFTNL_SET_NAME);
	/* anonymous sets (the shard verdict maps) belong to their rules */
	if (table == NULL || name == NULL || strcmp(table, RENDER_TABLE) != 0 ||
	    (nftnl_set_is_set(s, NFTNL_SET_FLAGS) &&
	    (nftnl_set_get_u32(s, NFTNL_SET_FLAGS) & NFT_SET_ANONYMOUS)))
		goto out;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 64;
		void *a = realloc(g->name, cap * sizeof(*g->name));

		if (a == NULL) {
			g->oom = true;
			goto out;
		}
		g->name = a;
		g->cap = cap;
	}
	snprintf(g->name[g->n++], sizeof(g->name[0]), "%s", name);
out:
	if (s != NULL)
		nftnl_set_free(s);
	return MNL_CB_OK;
}

/* Decode one kernel element of @set (inverse of elem_key()/fill_nftnl_elem()). */
static int
decode_elem(enum render_set set, struct nftnl_set_elem *ne, struct render_elem *e)
{
	const uint8_t *key, *kend;
	uint32_t klen = 0, elen = 0, dlen = 0;
	const void *d;
	size_t alen;

	memset(e, 0, sizeof(*e));
	e->set = (uint8_t)set;
	key = nftnl_set_elem_get(ne, NFTNL_SET_ELEM_KEY, &klen);
	if (key == NULL)
		return -1;
	kend = nftnl_set_elem_get(ne, NFTNL_SET_ELEM_KEY_END, &elen);
	if (kend == NULL) {
		kend = key;
		elen = klen;
	}
	if (elen != klen)
		return -1;
	switch (set) {
	case RENDER_SET_MANAGED4:
	case RENDER_SET_SRC4:
	case RENDER_SET_MANAGED6:
	case RENDER_SET_SRC6:
		alen = (set == RENDER_SET_MANAGED4 || set == RENDER_SET_SRC4) ? 4 : 16;
		if (klen != 4 + alen || key[0] != (alen == 4 ? NFPROTO_IPV4 :
		    NFPROTO_IPV6) || kend[0] != key[0])
			return -1;
		e->family = alen == 4 ? AF_INET : AF_INET6;
		memcpy(e->lo, key + 4, alen);
		memcpy(e->hi, kend + 4, alen);
		if (set == RENDER_SET_SRC4 || set == RENDER_SET_SRC6) {
			d = nftnl_set_elem_get(ne, NFTNL_SET_ELEM_DATA, &dlen);
			if (d == NULL || dlen != 4)
				return -1;
			memcpy(&e->mark, d, 4);
		}
		return 0;
	case RENDER_SET_SRCH4:
	case RENDER_SET_SRCH6:
		alen = set == RENDER_SET_SRCH4 ? 4 : 16;
		if (klen != alen)
			return -1;
		e->family = alen == 4 ? AF_INET : AF_INET6;
		memcpy(e->lo, key, alen);
		memcpy(e->hi, key, alen);
		d = nftnl_set_elem_get(ne, NFTNL_SET_ELEM_DATA, &dlen);
		if (d == NULL || dlen != 4)
			return -1;
		memcpy(&e->mark, d, 4);
		return 0;
	case RENDER_SET_MANAGEDIF:
	case RENDER_SET_SRCIF:
		if (klen != 16 || memchr(key, '\0', 16) == NULL)
			return -1;
		memcpy(e->lo, key, 15);
		if (set == RENDER_SET_SRCIF) {
			d = nftnl_set_elem_get(ne, NFTNL_SET_ELEM_DATA, &dlen);
			if (d == NULL || dlen != 4)
				return -1;
			memcpy(&e->mark, d, 4);
		}
		return 0;
	case RENDER_SET_BOUNDIF:
		if (klen != 4 + 16 || memchr(key + 4, '\0', 16) == NULL)
			return -1;
		memcpy(&e->mark, key, 4);
		memcpy(e->lo, key + 4, 15);
		return 0;
	case RENDER_SET_AUDIT:
	case RENDER_SET_BOUND:
	case RENDER_SET_FALLBACK:
		if (klen != 4)
			return -1;
		memcpy(&e->mark, key, 4);
		if (set == RENDER_SET_FALLBACK) {
			const char *chain;
			bool found = false;

			if (!nftnl_set_elem_is_set(ne, NFTNL_SET_ELEM_VERDICT) ||
			    nftnl_set_elem_get_u32(ne, NFTNL_SET_ELEM_VERDICT) !=
			    (uint32_t)NFT_GOTO ||
			    (chain = nftnl_set_elem_get_str(ne, NFTNL_SET_ELEM_CHAIN)) == NULL ||
			    strncmp(chain, "deny_", 5) != 0)
				return -1;
			for (int r = 0; r < RENDER_REASON__DENY_COUNT; r++)
				if (strcmp(chain + 5, render_reason_name(r)) == 0) {
					e->reason = (uint8_t)r;
					found = true;
				}
			return found ? 0 : -1;
		}
		return 0;
	default: {
		uint32_t be;
		uint16_t plo, phi;

		alen = (set == RENDER_SET_PRE4 || set == RENDER_SET_ALLOW4) ? 4 : 16;
		if (klen != 4 + alen + 4 + 4)
			return -1;
		memcpy(&be, key, 4);
		e->mark = ntohl(be);
		memcpy(&be, kend, 4);
		if (ntohl(be) != e->mark)
			return -1;	/* a range of marks is not ours */
		e->family = alen == 4 ? AF_INET : AF_INET6;
		memcpy(e->lo, key + 4, alen);
		memcpy(e->hi, kend + 4, alen);
		e->proto_lo = key[4 + alen];
		e->proto_hi = kend[4 + alen];
		memcpy(&plo, key + 8 + alen, 2);
		memcpy(&phi, kend + 8 + alen, 2);
		e->port_lo = ntohs(plo);
		e->port_hi = ntohs(phi);
		return 0;
	}
	}
}

struct elem_dump {
	const struct render_config *rc;
	enum render_set set;
	unsigned shard;
	struct kernel_state *st;
	const char *name;
	int err;
	/* counters mode */
	bool counters, allowed;
	struct kernel_counter **cv;
	size_t *cn, *ccap;
};

/* Append a zeroed entry; kernel_read_counters() merges by mark at the end. */
static struct kernel_counter *
counter_slot(struct kernel_counter **v, size_t *n, size_t *cap, uint32_t mark)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
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
counter_cmp(const void *a, const void *b)
{
	const struct kernel_counter *x = a, *y = b;

	return x->mark < y->mark ? -1 : x->mark > y->mark;
}

static int
counter_expr_cb(struct nftnl_expr *ex, void *data)
{
	uint64_t *pb = data;
	const char *name = nftnl_expr_get_str(ex, NFTNL_EXPR_NAME);

	if (name != NULL && strcmp(name, "counter") == 0) {
		pb[0] = nftnl_expr_get_u64(ex, NFTNL_EXPR_CTR_PACKETS);
		pb[1] = nftnl_expr_get_u64(ex, NFTNL_EXPR_CTR_BYTES);
		pb[2] = 1;
	}
	return 0;
}

static int
elem_cb(const struct nlmsghdr *nlh, void *data)
{
	struct elem_dump *d = data;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it = NULL;
	struct nftnl_set_elem *ne;

	if (s == NULL || nftnl_set_elems_nlmsg_parse(nlh, s) < 0 ||
	    (it = nftnl_set_elems_iter_create(s)) == NULL) {
		d->err = EGW_E_NOMEM;
		goto out;
	}
	/* iter_next() returns the current element, then advances */
	while ((ne = nftnl_set_elems_iter_next(it)) != NULL) {
		struct render_elem e;

		if (d->counters) {
			uint64_t pb[3] = { 0, 0, 0 };
			uint32_t klen = 0, mark;
			const void *key = nftnl_set_elem_get(ne, NFTNL_SET_ELEM_KEY, &klen);
			struct kernel_counter *c;

			if (key == NULL || klen != 4)
				continue;
			memcpy(&mark, key, 4);
			nftnl_set_elem_expr_foreach(ne, counter_expr_cb, pb);
			if (!pb[2])
				continue;
			if ((c = counter_slot(d->cv, d->cn, d->ccap, mark)) == NULL) {
				d->err = EGW_E_NOMEM;
				break;
			}
			if (d->allowed) {
				c->in_allowed = true;
				c->allowed_packets = pb[0];
				c->allowed_bytes = pb[1];
			} else {
				c->in_denied = true;
				c->denied_packets = pb[0];
				c->denied_bytes = pb[1];
			}
			continue;
		}
		if (decode_elem(d->set, ne, &e) != 0 ||
		    render_elem_shard(d->rc, &e) != d->shard) {
			/*
			 * An element we cannot read, or one in another shard's
			 * set (where no packet looks for it), is drift the
			 * element diff cannot name: the table gets replaced.
			 */
			d->st->skeleton_ok = false;
			snprintf(d->st->skeleton_why, sizeof(d->st->skeleton_why),
			    "unreadable or misplaced element in set %s", d->name);
			continue;
		}
		if (render_elems_push(&d->st->elems, &e) != 0) {
			d->err = EGW_E_NOMEM;
			break;
		}
	}
out:
	nftnl_set_elems_iter_destroy(it);
	if (s != NULL)
		nftnl_set_free(s);
	return d->err ? MNL_CB_ERROR : MNL_CB_OK;
}

static int
dump_elems(struct kernel *k, const char *set_name, struct elem_dump *d)
{
	char buf[REQ_BUF_SIZE] = { 0 };	/* padding is sent too */
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;

	if (s == NULL)
		return EGW_E_NOMEM;
	nlh = dump_hdr(k, buf, NFT_MSG_GETSETELEM, NLM_F_DUMP);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, RENDER_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, set_name);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	d->name = set_name;
	if (nl_talk(k, nlh, elem_cb, d) != 0)
		return d->err ? d->err : errno == ENOENT ? EGW_E_NOTFOUND : EGW_E_NFT;
	return d->err;
}

static int
table_read(struct kernel *k, struct table_got *got)
{
	char buf[REQ_BUF_SIZE] = { 0 };	/* padding is sent too */
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	memset(got, 0, sizeof(*got));
	if (t == NULL)
		return EGW_E_NOMEM;
	nlh = dump_hdr(k, buf, NFT_MSG_GETTABLE, NLM_F_ACK);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, RENDER_TABLE);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	if (nl_talk(k, nlh, table_cb, got) != 0) {
		if (errno == ENOENT) {
			got->exists = false;
			return 0;
		}
		return EGW_E_NFT;
	}
	return 0;
}

static void
why(struct kernel_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
why(struct kernel_state *st, const char *fmt, ...)
{
	va_list ap;

	if (!st->skeleton_ok)
		return;		/* keep the first difference */
	st->skeleton_ok = false;
	va_start(ap, fmt);
	vsnprintf(st->skeleton_why, sizeof(st->skeleton_why), fmt, ap);
	va_end(ap);
}

static int
read_state_once(struct kernel *k, const struct render_config *rc,
    struct kernel_state *st)
{
	char buf[REQ_BUF_SIZE] = { 0 };	/* padding is sent too */
	struct chain_got chains = { 0 };
	struct tag_list want = { 0 }, got = { 0 };
	struct set_got sets = { 0 };
	struct nlmsghdr *nlh;
	size_t want_chains = 0;
	int rc2 = 0;

	memset(st, 0, sizeof(*st));
	render_elems_init(&st->elems);
	{
		struct table_got table;

		if ((rc2 = table_read(k, &table)) != 0 || !table.exists)
			return rc2;
		st->exists = true;
		st->skeleton_ok = true;
		/* "nft add table ... { flags dormant; }" unhooks every chain:
		 * enforcement off with every rule still in place. */
		if (table.flags & NFT_TABLE_F_DORMANT)
			why(st, "the table is dormant (flags 0x%x): no chain is "
			    "hooked", table.flags);
	}

	/* chains: names in creation order, hooks, priorities, policies */
	nlh = dump_hdr(k, buf, NFT_MSG_GETCHAIN, NLM_F_DUMP);
	if (nl_talk(k, nlh, chain_cb, &chains) != 0 || chains.oom) {
		rc2 = chains.oom ? EGW_E_NOMEM : EGW_E_NFT;
		goto out;
	}
	/* rules: their "egw:<hash>" comments, chain by chain */
	{
		struct nftnl_rule *r = nftnl_rule_alloc();

		if (r == NULL) {
			rc2 = EGW_E_NOMEM;
			goto out;
		}
		nlh = dump_hdr(k, buf, NFT_MSG_GETRULE, NLM_F_DUMP);
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, RENDER_TABLE);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nftnl_rule_free(r);
	}
	if (nl_talk(k, nlh, rule_cb, &got) != 0 || got.oom) {
		rc2 = got.oom ? EGW_E_NOMEM : EGW_E_NFT;
		goto out;
	}
	/* sets */
	{
		struct nftnl_set *s = nftnl_set_alloc();

		if (s == NULL) {
			rc2 = EGW_E_NOMEM;
			goto out;
		}
		nlh = dump_hdr(k, buf, NFT_MSG_GETSET, NLM_F_DUMP);
		nftnl_set_set_str(s, NFTNL_SET_TABLE, RENDER_TABLE);
		nftnl_set_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
	}
	if (nl_talk(k, nlh, set_cb, &sets) != 0 || sets.oom) {
		rc2 = sets.oom ? EGW_E_NOMEM : EGW_E_NFT;
		goto out;
	}

	render_rule_tags(rc, collect_tag, &want);
	if (want.oom) {
		rc2 = EGW_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < want.n; i++) {
		if (i > 0 && strcmp(want.chain[i], want.chain[i - 1]) == 0)
			continue;
		/* every rendered chain has rules: chains in rule order */
		if (want_chains < chains.n &&
		    strcmp(chains.name[want_chains], want.chain[i]) != 0)
			why(st, "chain %s where %s was expected",
			    chains.name[want_chains], want.chain[i]);
		else if (want_chains < chains.n && !chains.ok[want_chains])
			why(st, "chain %s has a changed hook, priority or policy",
			    want.chain[i]);
		want_chains++;
	}
	if (chains.n != want_chains)
		why(st, "%zu chains instead of %zu", chains.n, want_chains);
	for (size_t i = 0; i < want.n || i < got.n; i++) {
		if (i >= want.n || i >= got.n) {
			why(st, "%zu rules instead of %zu", got.n, want.n);
			break;
		}
		if (strcmp(want.chain[i], got.chain[i]) != 0 ||
		    strcmp(want.tag[i], got.tag[i]) != 0) {
			why(st, "chain %s: rule %s is not the expected %s",
			    got.chain[i], got.tag[i][0] ? got.tag[i] : "(untagged)",
			    want.tag[i]);
			break;
		}
	}
	if (sets.n != render_kset_count(rc))
		why(st, "%zu sets instead of %zu", sets.n, render_kset_count(rc));

	/* elements of every element set we know */
	for (size_t i = 0; i < sets.n; i++) {
		struct elem_dump d = { .rc = rc, .st = st };

		if (render_kset_parse(rc, sets.name[i], &d.set, &d.shard) != 0) {
			if (strncmp(sets.name[i], "cnt_", 4) != 0 &&
			    strncmp(sets.name[i], "rl_", 3) != 0)
				why(st, "unknown set %s", sets.name[i]);
			continue;
		}
		if ((rc2 = dump_elems(k, sets.name[i], &d)) != 0)
			goto out;
	}
	render_elems_sort(&st->elems);
out:
	free(chains.name);
	free(chains.ok);
	free(want.chain);
	free(want.tag);
	free(got.chain);
	free(got.tag);
	free(sets.name);
	if (rc2 != 0)
		render_elems_free(&st->elems);
	return rc2;
}

/* ---- counters ---- */

static int
read_counters_once(struct kernel *k, struct kernel_counter **out, size_t *n)
{
	size_t cap = 0;
	int rc = 0;

	*out = NULL;
	*n = 0;
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		struct elem_dump d = { .counters = true, .allowed = pass == 0,
		    .cv = out, .cn = n, .ccap = &cap };

		rc = dump_elems(k, pass == 0 ? "cnt_allow" : "cnt_deny", &d);
	}
	if (rc != 0) {
		free(*out);
		*out = NULL;
		*n = 0;
		return rc;
	}
	/* one entry per mark: the allowed and denied halves side by side */
	if (*n > 1) {
		size_t w = 0;

		qsort(*out, *n, sizeof(**out), counter_cmp);
		for (size_t r = 1; r < *n; r++) {
			struct kernel_counter *x = &(*out)[w], *y = &(*out)[r];

			if (y->mark != x->mark) {
				(*out)[++w] = *y;
				continue;
			}
			x->in_allowed |= y->in_allowed;
			x->in_denied |= y->in_denied;
			x->allowed_packets += y->allowed_packets;
			x->allowed_bytes += y->allowed_bytes;
			x->denied_packets += y->denied_packets;
			x->denied_bytes += y->denied_bytes;
		}
		*n = w + 1;
	}
	return 0;
}

/*
 * A dump the ruleset changed under (another program's transaction, even
 * on another table) is flagged by the kernel and refused by libmnl; it is
 * read again from the start, a few times.
 */
#define DUMP_ATTEMPTS 3

int
kernel_read_state(struct kernel *k, const struct render_config *rc,
    struct kernel_state *st)
{
	int rc2 = 0;

	for (int attempt = 0; attempt < DUMP_ATTEMPTS; attempt++) {
		k->interrupted = false;
		if ((rc2 = read_state_once(k, rc, st)) == 0 || !k->interrupted)
			break;
		log_info("the ruleset changed under a read of the table; "
		    "reading it again");
	}
	if (rc2 != 0 && k->interrupted)
		log_warnx("the ruleset changed under each of %d reads of the "
		    "table in a row", DUMP_ATTEMPTS);
	return rc2;
}

int
kernel_read_counters(struct kernel *k, struct kernel_counter **out, size_t *n)
{
	int rc = 0;

	for (int attempt = 0; attempt < DUMP_ATTEMPTS; attempt++) {
		k->interrupted = false;
		if ((rc = read_counters_once(k, out, n)) == 0 || !k->interrupted)
			break;
		log_info("the ruleset changed under a read of the counters; "
		    "reading them again");
	}
	if (rc != 0 && k->interrupted)
		log_warnx("the ruleset changed under each of %d reads of the "
		    "counters in a row", DUMP_ATTEMPTS);
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
	case RENDER_SET_SRCH4:
		memcpy(key, addr, 4);
		return 4;
	case RENDER_SET_SRCH6:
		memcpy(key, addr, 16);
		return 16;
	case RENDER_SET_MANAGEDIF:
	case RENDER_SET_SRCIF:
		memset(key, 0, 16);
		memcpy(key, e->lo, 15);
		return 16;
	case RENDER_SET_AUDIT:
	case RENDER_SET_BOUND:
	case RENDER_SET_FALLBACK:
		return put_u32_host(key, e->mark);
	case RENDER_SET_BOUNDIF:
		/* a hash set: the mark stays in host order (see the top) */
		put_u32_host(key, e->mark);
		memset(key + 4, 0, 16);
		memcpy(key + 4, e->lo, 15);
		return 4 + 16;
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
	case RENDER_SET_SRCH4:
	case RENDER_SET_SRCH6:
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
batch_add_msgs(struct kernel *k, const struct render_config *rc,
    struct batch *bt, uint16_t type, const struct render_elem *v, size_t n)
{
	size_t *order, i = 0;
	int rc2 = 0;

	if (n == 0)
		return 0;
	if (render_elems_order(rc, v, n, &order) != 0)
		return EGW_E_NOMEM;
	/* one message per kernel set and per ELEMS_PER_MSG elements */
	while (i < n && rc2 == 0) {
		const struct render_elem *first = &v[order[i]];
		unsigned shard = render_elem_shard(rc, first);
		struct nftnl_set *s = nftnl_set_alloc();
		char name[32];
		size_t in_msg = 0;

		if (s == NULL) {
			rc2 = EGW_E_NOMEM;
			break;
		}
		render_kset_name(rc, first->set, shard, name, sizeof(name));
		nftnl_set_set_str(s, NFTNL_SET_TABLE, RENDER_TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, name);
		for (; i < n && in_msg < ELEMS_PER_MSG; i++, in_msg++) {
			const struct render_elem *e = &v[order[i]];
			struct nftnl_set_elem *ne;

			if (e->set != first->set || render_elem_shard(rc, e) != shard)
				break;
			if ((ne = nftnl_set_elem_alloc()) == NULL) {
				rc2 = EGW_E_NOMEM;
				break;
			}
			if (fill_nftnl_elem(ne, e, type == NFT_MSG_NEWSETELEM) != 0) {
				nftnl_set_elem_free(ne);
				rc2 = EGW_E_INVALID;
				break;
			}
			nftnl_set_elem_add(s, ne);
		}
		if (rc2 == 0) {
			struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(
			    mnl_nlmsg_batch_current(bt->b), type, NFPROTO_INET,
			    (type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0) | NLM_F_ACK,
			    k->seq++);

			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			bt->msgs++;
			if (!mnl_nlmsg_batch_next(bt->b))
				rc2 = EGW_E_NOMEM;	/* sized generously below */
		}
		nftnl_set_free(s);
	}
	free(order);
	return rc2;
}

static void
sock_buffers(struct kernel *k, size_t need)
{
	int fd = mnl_socket_get_fd(k->nl), v;

	if (need <= k->sndbuf)
		return;
	v = need > INT32_MAX / 2 ? INT32_MAX / 2 : (int)need;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	k->sndbuf = need;
}

/*
 * Every message of a batch is acked and we only read after sending it, so
 * the receive buffer must hold all acks (an skb each) or some are lost to
 * ENOBUFS and the batch looks unanswered.
 */
static void
sock_rcvbuf(struct kernel *k, unsigned msgs)
{
	int fd = mnl_socket_get_fd(k->nl), v;
	size_t need = (size_t)msgs * 2048 + 256 * 1024;

	if (need <= k->rcvbuf)
		return;
	v = need > INT32_MAX / 2 ? INT32_MAX / 2 : (int)need;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	k->rcvbuf = need;
}

/*
 * Read acks until every message of the batch numbered [@first, @last] has
 * one; returns 0 or the first error.
 */
static int
batch_collect(struct kernel *k, uint32_t first, uint32_t last,
    unsigned expected, char *err, size_t errlen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE * 4];
	unsigned acks = 0;
	int first_err = 0;
	int64_t deadline = timefmt_monotonic_ms() + ACK_TIMEOUT_MS;
	struct pollfd pfd = { .fd = mnl_socket_get_fd(k->nl), .events = POLLIN };

	while (acks < expected) {
		int pr = wait_readable(k, deadline), len;
		ssize_t got;

		if (pr == 0) {
			copy_err(err, errlen, "timed out waiting for the kernel");
			return EGW_E_TIMEOUT;
		}
		if (pr < 0 || (got = mnl_socket_recvfrom(k->nl, buf, sizeof(buf))) < 0) {
			if (pr > 0 && errno == EINTR)
				continue;
			/* ENOBUFS: acks were lost; the outcome is unknown */
			if (err && errlen)
				snprintf(err, errlen, "reading the kernel's answer: "
				    "%s", strerror(errno));
			return EGW_E_IO;
		}
		len = (int)got;
		for (struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
		    mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_type != NLMSG_ERROR ||
			    !answers_ours(k, nlh, first, last))
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

/*
 * End the batch begun at sequence number @first, send it as one
 * transaction and wait for every ack.
 */
static int
batch_send(struct kernel *k, struct batch *bt, uint32_t first, char *err,
    size_t errlen)
{
	nftnl_batch_end(mnl_nlmsg_batch_current(bt->b), k->seq++);
	mnl_nlmsg_batch_next(bt->b);
	/*
	 * The whole batch is one sendmsg (one transaction); netlink refuses
	 * a message larger than the socket's send buffer, so grow it the
	 * way nft does (SO_SNDBUFFORCE needs CAP_NET_ADMIN, which we have).
	 */
	sock_buffers(k, mnl_nlmsg_batch_size(bt->b));
	sock_rcvbuf(k, bt->msgs);
	drain_unread(k);
	if (mnl_socket_sendto(k->nl, mnl_nlmsg_batch_head(bt->b),
	    mnl_nlmsg_batch_size(bt->b)) < 0) {
		copy_err(err, errlen, strerror(errno));
		return EGW_E_IO;
	}
	return batch_collect(k, first, k->seq - 1, bt->msgs, err, errlen);
}

int
kernel_elems_batch(struct kernel *k, const struct render_config *rcfg,
    const struct render_elem *del, size_t n_del, const struct render_elem *add,
    size_t n_add, char *err, size_t errlen)
{
	struct batch bt = { 0 };
	size_t total = n_del + n_add;
	uint32_t first;
	int rc;

	if (total == 0)
		return 0;
	/* ~120 bytes per element plus headers; one page of slack per message */
	bt.cap = total * 160 + (total / ELEMS_PER_MSG + 2 * render_kset_count(rcfg) +
	    4) * (size_t)MNL_SOCKET_BUFFER_SIZE;
	bt.buf = calloc(2, bt.cap);	/* attribute padding is sent as is */
	if (bt.buf == NULL)
		return EGW_E_NOMEM;
	bt.b = mnl_nlmsg_batch_start(bt.buf, bt.cap);
	first = k->seq;
	nftnl_batch_begin(mnl_nlmsg_batch_current(bt.b), k->seq++);
	mnl_nlmsg_batch_next(bt.b);
	if ((rc = batch_add_msgs(k, rcfg, &bt, NFT_MSG_DELSETELEM, del, n_del)) != 0 ||
	    (rc = batch_add_msgs(k, rcfg, &bt, NFT_MSG_NEWSETELEM, add, n_add)) != 0)
		goto out;
	rc = batch_send(k, &bt, first, err, errlen);
out:
	mnl_nlmsg_batch_stop(bt.b);
	free(bt.buf);
	return rc;
}

/* DELSETELEM messages for the marks of @v that @allowed's set holds. */
static int
batch_add_counter_drops(struct kernel *k, struct batch *bt, bool allowed,
    const struct kernel_counter *v, size_t n)
{
	size_t i = 0;

	while (i < n) {
		struct nftnl_set *s = nftnl_set_alloc();
		struct nlmsghdr *nlh;
		size_t in_msg = 0;

		if (s == NULL)
			return EGW_E_NOMEM;
		nftnl_set_set_str(s, NFTNL_SET_TABLE, RENDER_TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, allowed ? "cnt_allow" : "cnt_deny");
		for (; i < n && in_msg < ELEMS_PER_MSG; i++) {
			struct nftnl_set_elem *ne;

			if (!(allowed ? v[i].in_allowed : v[i].in_denied))
				continue;
			if ((ne = nftnl_set_elem_alloc()) == NULL) {
				nftnl_set_free(s);
				return EGW_E_NOMEM;
			}
			nftnl_set_elem_set(ne, NFTNL_SET_ELEM_KEY, &v[i].mark, 4);
			nftnl_set_elem_add(s, ne);
			in_msg++;
		}
		if (in_msg > 0) {
			nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(bt->b),
			    NFT_MSG_DELSETELEM, NFPROTO_INET, NLM_F_ACK, k->seq++);
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			bt->msgs++;
			if (!mnl_nlmsg_batch_next(bt->b)) {
				nftnl_set_free(s);
				return EGW_E_NOMEM;
			}
		}
		nftnl_set_free(s);
	}
	return 0;
}

int
kernel_counters_drop(struct kernel *k, const struct kernel_counter *v,
    size_t n, char *err, size_t errlen)
{
	struct batch bt = { 0 };
	uint32_t first;
	int rc;

	if (n == 0)
		return 0;
	/* ~40 bytes per element; a page of slack per message */
	bt.cap = n * 128 + (2 * n / ELEMS_PER_MSG + 4) * (size_t)MNL_SOCKET_BUFFER_SIZE;
	if ((bt.buf = calloc(2, bt.cap)) == NULL)
		return EGW_E_NOMEM;
	bt.b = mnl_nlmsg_batch_start(bt.buf, bt.cap);
	first = k->seq;
	nftnl_batch_begin(mnl_nlmsg_batch_current(bt.b), k->seq++);
	mnl_nlmsg_batch_next(bt.b);
	if ((rc = batch_add_counter_drops(k, &bt, true, v, n)) != 0 ||
	    (rc = batch_add_counter_drops(k, &bt, false, v, n)) != 0)
		goto out;
	if (bt.msgs == 0)
		goto out;
	rc = batch_send(k, &bt, first, err, errlen);
out:
	mnl_nlmsg_batch_stop(bt.b);
	free(bt.buf);
	return rc;
}

int
kernel_create(struct kernel *k, const struct render_config *rc,
    const struct render_elem *elems, size_t n, char *err, size_t errlen)
{
	char *inner = render_skeleton_part(rc, RENDER_PART_INNER);
	char *hooks = render_skeleton_part(rc, RENDER_PART_HOOKS);
	char e2[KERNEL_ERR_MAX];
	int rc2;

	if (inner == NULL || hooks == NULL) {
		rc2 = EGW_E_NOMEM;
		goto out;
	}
	/* 1: sets and regular chains; no hook yet, so no packet sees them */
	if ((rc2 = kernel_run_text(k, inner, false, err, errlen)) != 0)
		goto out;
	/* 2: every element, binary, without a parser in between */
	rc2 = kernel_elems_batch(k, rc, NULL, 0, elems, n, err, errlen);
	/* 3: the base chains: from here on the table decides, complete */
	if (rc2 == 0)
		rc2 = kernel_run_text(k, hooks, false, err, errlen);
	if (rc2 != 0 && kernel_run_text(k, "delete table " RENDER_FAMILY " "
	    RENDER_TABLE, false, e2, sizeof(e2)) != 0)
		log_warnx("cannot remove the half-built table: %s", e2);
out:
	free(inner);
	free(hooks);
	return rc2;
}
