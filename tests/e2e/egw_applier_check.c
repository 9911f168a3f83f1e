/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-applier-check, a test helper for the applier's
 * e2e scenarios (tests/e2e/applier_safety.sh).
 *
 *   egw-applier-check codec < bodies
 *       one JSON body per line through codec_policy_from_json (the API's
 *       parser); prints "rejected <error token> <first path>" or
 *       "accepted" per line.
 *   egw-applier-check fuzz COUNT SEED
 *       COUNT random policies that the codec accepts, rendered with the
 *       store's real profiles and the applier's layout (256 shards), then
 *       checked by libnftables' dry run one by one and all together, then
 *       loaded for real with kernel_create() and read back with
 *       kernel_read_state(): the elements must come back exactly (the
 *       libnftnl encoder and decoder agree with the renderer).  Needs
 *       CAP_NET_ADMIN: run it inside a namespace of the test.  Prints TAP.
 *   egw-applier-check late-answers
 *       answers to a request nobody waits for any more (queued on the
 *       kernel handle's socket, as a timed-out batch or a dump abandoned
 *       half way leave them) must not be taken for the next batch's acks
 *       or the next dump's messages.  Needs CAP_NET_ADMIN (a namespace of
 *       the test).  Prints TAP.
 */
#include "codec.h"
#include "config.h"
#include "err.h"
#include "kernel.h"
#include "log.h"
#include "policy.h"
#include "render.h"
#include "store.h"
#include "store_policy.h"
#include "tap.h"

#include <libmnl/libmnl.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_ATTEMPTS 20000

static uint64_t rng_state;

static uint32_t
rnd(uint32_t n)
{
	/* xorshift64*: reproducible from the seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ull) >> 33) % n;
}

static int
codec_mode(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		struct policy *p = policy_new();
		struct policy_errors errs;
		int rc;

		if (line[n - 1] == '\n')
			line[--n] = '\0';
		policy_errors_init(&errs);
		rc = codec_policy_from_json(line, (size_t)n, p, &errs);
		if (rc == 0)
			printf("accepted\n");
		else
			printf("rejected %s %s\n", err_token(rc),
			    errs.count ? errs.items[0].path : "-");
		policy_free(p);
	}
	free(line);
	return 0;
}

/* ---- random policy bodies ---- */

struct sb {
	char buf[16384];
	size_t len;
};

static void
add(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
add(struct sb *b, const char *fmt, ...)
{
	va_list ap;

	if (b->len >= sizeof(b->buf))
		return;
	va_start(ap, fmt);
	b->len += (size_t)vsnprintf(b->buf + b->len, sizeof(b->buf) - b->len, fmt, ap);
	va_end(ap);
}

static void
rand_v4(struct sb *b, bool special)
{
	unsigned len = 8 + rnd(25);

	if (special && rnd(4) == 0) {
		add(b, "\"169.254.%u.%u/%u\"", rnd(256), rnd(256), 16 + rnd(17));
		return;
	}
	/* a random network, host bits cleared by the mask */
	uint32_t a = (uint32_t)rnd(1u << 16) << 16 | rnd(1u << 16);
	a &= len == 0 ? 0 : ~0u << (32 - len);
	if ((a >> 24) == 0 || (a >> 24) >= 224)
		a = (a & 0x00ffffffu) | 0xcb000000u;	/* 203.x: unicast */
	add(b, "\"%u.%u.%u.%u/%u\"", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
	    a & 255, len);
}

static void
rand_v6(struct sb *b, bool special)
{
	if (special && rnd(4) == 0) {
		add(b, "\"fe80::%x/%u\"", rnd(65536), 64 + rnd(65));
		return;
	}
	add(b, "\"2001:db8:%x:%x::/%u\"", rnd(65536), rnd(65536) & 0xff00, 32 + rnd(25));
}

static void
rand_addr(struct sb *b, bool special)
{
	if (rnd(3) == 0)
		rand_v6(b, special);
	else
		rand_v4(b, special);
}

static void
rand_port(struct sb *b)
{
	unsigned lo = 1 + rnd(65535);

	if (rnd(3) == 0) {
		unsigned hi = lo + rnd(65536 - lo);

		add(b, "\"%u-%u\"", lo, hi);
	} else {
		add(b, "%u", lo);
	}
}

static void
rand_body(struct sb *b, long i)
{
	static const char *const profiles[] = { "none", "training-updates",
	    "external-api", "custom", "custom", "custom" };
	static const char *const protos[] = { "tcp", "udp", "icmp", "any" };
	unsigned n;

	b->len = 0;
	add(b, "{\"scenario_id\":\"fuzz-%ld\",\"profile\":\"%s\"", i,
	    profiles[rnd(6)]);
	if (rnd(4) == 0)
		add(b, ",\"mode\":\"audit\"");
	if (rnd(5) == 0)
		add(b, ",\"enabled\":false");
	/* sources: a /32 of the managed range, sometimes a v6 one or an iface */
	add(b, ",\"sources\":[\"100.%u.%u.%u/32\"", 64 + rnd(64), rnd(256), rnd(256));
	if (rnd(2))
		add(b, ",\"2001:db8:64:%x::%x/128\"", rnd(65536), 1 + rnd(65535));
	add(b, "]");
	if (rnd(3) == 0)
		add(b, ",\"interfaces\":[\"fz%ld%c\"]", i, 'a' + rnd(26));
	if (rnd(4) == 0)
		add(b, ",\"dns_servers\":[\"192.0.2.%u\"]", 1 + rnd(254));
	n = rnd(5);
	add(b, ",\"allowed_hosts\":[");
	for (unsigned k = 0; k < n; k++) {
		add(b, k ? "," : "");
		rand_addr(b, true);
	}
	add(b, "]");
	n = rnd(4);
	add(b, ",\"allowed_ports\":[");
	for (unsigned k = 0; k < n; k++) {
		add(b, k ? "," : "");
		rand_port(b);
	}
	add(b, "]");
	n = rnd(5);
	add(b, ",\"custom_rules\":[");
	for (unsigned k = 0; k < n; k++) {
		const char *pr = protos[rnd(4)];

		add(b, "%s{\"proto\":\"%s\"", k ? "," : "", pr);
		if (rnd(3)) {
			add(b, ",\"dest\":");
			rand_addr(b, true);
		}
		if ((strcmp(pr, "tcp") == 0 || strcmp(pr, "udp") == 0) && rnd(2)) {
			add(b, ",\"ports\":[");
			rand_port(b);
			add(b, "]");
		}
		add(b, "}");
	}
	add(b, "]}");
}

/* The netlink handle and the layout every mode uses; exits when denied. */
static struct kernel *
open_kernel(struct render_config *rc)
{
	struct kernel *k;

	if (kernel_open(&k) != 0) {
		printf("Bail out! no netfilter netlink (CAP_NET_ADMIN?)\n");
		exit(99);
	}
	memset(rc, 0, sizeof(*rc));
	rc->nflog_group = 7;
	rc->log_rate = 10;
	rc->log_burst = 20;
	return k;
}

/* ---- fuzz ---- */

struct profiles {
	struct render_profile v[16];
	size_t n;
};

static int
profile_cb(const struct store_profile *pr, void *ctx)
{
	struct profiles *ps = ctx;
	struct render_profile *p;

	if (ps->n == 16)
		return 0;
	p = &ps->v[ps->n++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", pr->name);
	p->uses_policy_entries = pr->uses_policy_entries;
	p->n_rules = pr->n_rules < RENDER_PROFILE_MAX_RULES ? pr->n_rules :
	    RENDER_PROFILE_MAX_RULES;
	memcpy(p->rules, pr->rules, p->n_rules * sizeof(p->rules[0]));
	return 0;
}

static const struct render_profile *
profile_find(const struct profiles *ps, const char *name)
{
	for (size_t i = 0; i < ps->n; i++)
		if (strcmp(ps->v[i].name, name) == 0)
			return &ps->v[i];
	return NULL;
}

static int
fuzz_mode(long count, uint64_t seed)
{
	static struct profiles ps;
	struct render_config rc;
	struct render_elems global, all, one;
	struct config cfg;
	struct store *st;
	struct kernel *k;
	struct sb body;
	long accepted = 0, rejected = 0, dry_ok = 0, attempts = 0, rend_fail = 0;
	char err[KERNEL_ERR_MAX], why[POLICY_ERROR_MAX];
	const char *perr;

	rng_state = seed ? seed : 88172645463325252ull;
	config_load_env(&cfg, "egw-applier-check");
	log_init("test", LOG_LEVEL_WARN);
	if (store_open(cfg.db_path, &st) != 0 || store_profile_list(st, profile_cb, &ps) != 0) {
		printf("Bail out! cannot read the profiles from %s\n", cfg.db_path);
		return 99;
	}
	k = open_kernel(&rc);
	rc.shards = RENDER_SHARDS_DEFAULT;
	rc.n_dns = 1;
	netaddr_parse_prefix("198.51.100.20", &rc.dns[0], &perr);
	rc.n_managed = 1;
	netaddr_parse_prefix("100.64.0.0/10", &rc.managed[0], &perr);
	render_elems_init(&global);
	render_elems_init(&all);
	if (render_global(&rc, profile_find(&ps, "none"), &global) != 0) {
		printf("Bail out! global elements do not render\n");
		return 99;
	}
	for (size_t i = 0; i < global.n; i++)
		render_elems_push(&all, &global.v[i]);

	while (accepted < count && attempts++ < MAX_ATTEMPTS) {
		struct policy *p = policy_new();
		struct policy_errors errs;
		const struct render_profile *prof;
		char *text;
		int r;

		rand_body(&body, accepted + 1);
		policy_errors_init(&errs);
		if (codec_policy_from_json(body.buf, body.len, p, &errs) != 0) {
			rejected++;	/* e.g. overlapping entries: draw again */
			policy_free(p);
			continue;
		}
		accepted++;
		p->id = accepted;
		prof = profile_find(&ps, p->profile);
		render_elems_init(&one);
		r = render_policy(&rc, p, prof, profile_find(&ps, "none"),
		    p->enabled ? RENDER_STATE_ACTIVE : RENDER_STATE_DISABLED,
		    NULL, &one, why, sizeof(why));
		if (r != 0) {
			rend_fail++;
			printf("# policy %ld does not render: %s: %s\n",
			    accepted, why, body.buf);
			render_elems_free(&one);
			policy_free(p);
			continue;
		}
		for (size_t i = 0; i < one.n; i++)
			render_elems_push(&all, &one.v[i]);
		for (size_t i = 0; i < global.n; i++)
			render_elems_push(&one, &global.v[i]);
		render_elems_sort(&one);
		text = render_full_text(&rc, one.v, one.n, false);
		if (text != NULL && kernel_run_text(k, text, true, err, sizeof(err)) == 0)
			dry_ok++;
		else
			printf("# policy %ld refused by the dry run: %s\n# %s\n",
			    accepted, text ? err : "no text", body.buf);
		free(text);
		render_elems_free(&one);
		policy_free(p);
	}
	printf("# %ld accepted by the codec, %ld rejected and drawn again\n",
	    accepted, rejected);
	ok(accepted == count, "%ld random policies accepted by the codec", count);
	ok(rend_fail == 0, "every one renders (%ld failed)", rend_fail);
	ok(dry_ok == count, "every one passes libnftables' dry run alone (%ld/%ld)",
	    dry_ok, count);

	render_elems_sort(&all);
	{
		char *text = render_full_text(&rc, all.v, all.n, false);

		ok(text != NULL && kernel_run_text(k, text, true, err, sizeof(err)) == 0,
		    "all %ld together pass the dry run (%zu elements)", count, all.n);
		free(text);
	}
	/* for real: the cold-start path, then read back */
	{
		struct kernel_state ks;
		size_t same = 0;

		int r = kernel_create(k, &rc, all.v, all.n, err, sizeof(err));

		ok(r == 0, "kernel_create loads them (%s)", r ? err : "ok");
		r = kernel_read_state(k, &rc, &ks);
		ok(r == 0 && ks.exists && ks.skeleton_ok,
		    "the table reads back with its skeleton intact (%s)",
		    r ? err_message(r) : ks.skeleton_why[0] ? ks.skeleton_why : "ok");
		for (size_t i = 0; i < ks.elems.n && i < all.n; i++)
			if (render_elem_cmp(&ks.elems.v[i], &all.v[i]) == 0)
				same++;
		ok(ks.elems.n == all.n && same == all.n,
		    "libnftnl read-back equals the rendered elements (%zu of %zu, %zu read)",
		    same, all.n, ks.elems.n);
		render_elems_free(&ks.elems);
	}
	render_elems_free(&all);
	render_elems_free(&global);
	kernel_close(k);
	store_close(st);
	return tap_done();
}

/* ---- late answers ---- */

/*
 * Queue the kernel's answers to a GETTABLE on @k's socket and leave them
 * unread: @table NULL asks for a dump of every table (several messages),
 * otherwise for that one table with an ack (its error when it is absent).
 */
static int
queue_unread_answer(struct kernel *k, const char *table, uint32_t seq)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct sockaddr_nl kernel_addr = { .nl_family = AF_NETLINK };

	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET,
	    table ? NLM_F_ACK : NLM_F_DUMP, seq);
	if (table) {
		struct nftnl_table *t = nftnl_table_alloc();

		if (t == NULL)
			return -1;
		nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
		nftnl_table_nlmsg_build_payload(nlh, t);
		nftnl_table_free(t);
	}
	return sendto(kernel_socket(k), nlh, nlh->nlmsg_len, 0,
	    (struct sockaddr *)&kernel_addr, sizeof(kernel_addr)) ==
	    (ssize_t)nlh->nlmsg_len ? 0 : -1;
}

static struct render_elem
audit_elem(uint32_t mark)
{
	struct render_elem e;

	memset(&e, 0, sizeof(e));
	e.set = RENDER_SET_AUDIT;
	e.mark = mark;
	return e;
}

static bool
state_has_audit(const struct kernel_state *ks, uint32_t mark)
{
	for (size_t i = 0; i < ks->elems.n; i++)
		if (ks->elems.v[i].set == RENDER_SET_AUDIT &&
		    ks->elems.v[i].mark == mark)
			return true;
	return false;
}

static int
late_answers_mode(void)
{
	struct render_config rc;
	struct render_elem five = audit_elem(5), six = audit_elem(6),
	    absent = audit_elem(77);
	struct kernel_state ks;
	struct kernel_counter *kc = NULL;
	struct kernel *k;
	char err[KERNEL_ERR_MAX];
	size_t nkc = 0;
	int r;

	log_init("test", LOG_LEVEL_WARN);
	k = open_kernel(&rc);
	r = kernel_create(k, &rc, &five, 1, err, sizeof(err));
	ok(r == 0, "the table is created (%s)", r ? err : "ok");

	/* an ack of success waits in the socket; the batch itself is refused */
	ok(queue_unread_answer(k, RENDER_TABLE, 11) == 0, "an answer is queued unread");
	r = kernel_elems_batch(k, &rc, &absent, 1, NULL, 0, err, sizeof(err));
	ok(r == EGW_E_NFT, "a batch the kernel refuses is reported refused, "
	    "not acked by the earlier answer (%s)", err_token(r));

	/* an error waits; the batch itself is applied */
	ok(queue_unread_answer(k, "no_such_table", 12) == 0,
	    "an error answer is queued unread");
	r = kernel_elems_batch(k, &rc, NULL, 0, &six, 1, err, sizeof(err));
	ok(r == 0, "a batch the kernel applies is reported applied, "
	    "not failed by the earlier error (%s)", r ? err : "ok");

	/* a whole dump waits; the next read gets its own answers */
	ok(queue_unread_answer(k, NULL, 13) == 0, "a dump is queued unread");
	r = kernel_read_state(k, &rc, &ks);
	ok(r == 0 && ks.exists && ks.skeleton_ok,
	    "the table reads back after it (%s)", err_token(r));
	ok(r == 0 && state_has_audit(&ks, 5) && state_has_audit(&ks, 6) &&
	    !state_has_audit(&ks, 77), "with exactly the elements applied");
	if (r == 0)
		render_elems_free(&ks.elems);
	ok(queue_unread_answer(k, NULL, 14) == 0, "another dump is queued unread");
	r = kernel_read_counters(k, &kc, &nkc);
	ok(r == 0, "the counters read after it (%s)", err_token(r));
	free(kc);
	kernel_close(k);
	return tap_done();
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "codec") == 0)
		return codec_mode();
	if (argc == 2 && strcmp(argv[1], "late-answers") == 0)
		return late_answers_mode();
	if (argc == 4 && strcmp(argv[1], "fuzz") == 0)
		return fuzz_mode(strtol(argv[2], NULL, 10),
		    strtoull(argv[3], NULL, 10));
	fprintf(stderr, "usage: egw-applier-check codec | fuzz COUNT SEED | "
	    "late-answers\n");
	return 2;
}
