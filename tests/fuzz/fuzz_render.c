/* SPDX-License-Identifier: MIT */
/*
 * This file contains the libFuzzer target of the renderer: no policy the
 * codec accepts can add a statement, chain or table to the kernel ruleset.
 *
 * Input is a policy body.  When codec_policy_from_json() accepts it, the
 * policy is rendered (as an active policy with its profile, or disabled)
 * next to the global elements, and the text is checked three ways:
 *  - the full transaction text is "add table; delete table;", then exactly
 *    the fixed skeleton render_skeleton_text() gives for the configuration
 *    (which no policy influences), then only "add element" commands;
 *  - every element matches the strict grammar of its set (typed marks,
 *    canonical addresses/prefixes/ranges, quoted safe interface names,
 *    "goto deny_<reason>" verdicts only), and its mark is the policy's or 0;
 *  - libnftables accepts the full text and the incremental element text in
 *    dry-run mode (the kernel validates, nothing is committed).
 * The only accepted render failure is the documented element limit.
 *
 * Run it in a network namespace of its own (tests/fuzz/run.sh uses
 * `unshare -rn`): dry-run still needs CAP_NET_ADMIN, and the incremental
 * check needs the skeleton table, which the target creates in that
 * namespace at start-up.
 */
#include "fuzz.h"

#include "codec.h"
#include "err.h"
#include "log.h"
#include "netaddr.h"
#include "policy.h"
#include "render.h"

#include <arpa/inet.h>
#include <nftables/libnftables.h>
#include <sys/socket.h>

/* [0] the flat layout of the golden files, [1] sharded like egw-applier */
static struct render_config cfg[2];
static struct render_profile profiles[4];
static struct policy *pol;
static struct policy_errors *errs;
/* One context per kind of check: libnftables keeps a cache of the table
 * across commands, and a dry-run whole-table swap must not leave its view
 * of the table behind for the incremental check. */
static struct nft_ctx *nft_full, *nft_incr;
static char *skeleton[2];

static void
prefix(const char *text, struct ip_prefix *out)
{
	const char *why;

	FUZZ_CHECK(netaddr_parse_prefix(text, out, &why) == 0);
}

static void
rule(struct render_profile *p, enum ip_proto proto, const char *dest,
    uint16_t lo, uint16_t hi)
{
	struct policy_rule *r = &p->rules[p->n_rules++];

	memset(r, 0, sizeof(*r));
	r->proto = proto;
	if (dest != NULL) {
		prefix(dest, &r->dest);
		r->has_dest = true;
	}
	if (lo != 0) {
		r->n_ports = 1;
		r->ports[0].lo = lo;
		r->ports[0].hi = hi;
	}
}

/* The four built-in profiles as sql/001_init.sql seeds them. */
static void
setup_profiles(void)
{
	static const char *const names[] = {
		"none", "training-updates", "external-api", "custom"
	};
	static const char *const internal[] = {
		"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"
	};

	for (int i = 0; i < 4; i++) {
		struct render_profile *p = &profiles[i];

		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", names[i]);
		for (int k = 0; k < 4; k++)
			rule(p, IP_PROTO_ANY, internal[k], 0, 0);
	}
	rule(&profiles[1], IP_PROTO_TCP, NULL, 80, 80);
	rule(&profiles[1], IP_PROTO_TCP, NULL, 443, 443);
	rule(&profiles[2], IP_PROTO_TCP, NULL, 443, 443);
	profiles[3].uses_policy_entries = true;
}

static void
nft_must(struct nft_ctx *nft, const char *text, bool dry)
{
	nft_ctx_set_dry_run(nft, dry);
	if (nft_run_cmd_from_buffer(nft, text) != 0) {
		const char *e = nft_ctx_get_error_buffer(nft);

		fprintf(stderr, "libnftables refused (%s):\n%s\n---- text ----\n%s\n",
		    dry ? "dry run" : "apply", e ? e : "", text);
		abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz", (enum log_level)(LOG_LEVEL_ERROR + 1));
	for (int i = 0; i < 2; i++) {
		struct render_config *rc = &cfg[i];

		memset(rc, 0, sizeof(*rc));
		rc->nflog_group = 7;
		rc->log_rate = 10;
		rc->log_burst = 20;
		rc->shards = i == 0 ? 0 : 16;
		prefix("192.0.2.53", &rc->dns[rc->n_dns++]);
		prefix("2001:db8::53", &rc->dns[rc->n_dns++]);
		prefix("100.64.1.1", &rc->gateway[rc->n_gateway++]);
		prefix("198.51.100.1", &rc->gateway[rc->n_gateway++]);
		prefix("100.64.0.0/10", &rc->managed[rc->n_managed++]);
		prefix("2001:db8:64::/48", &rc->managed[rc->n_managed++]);
		snprintf(rc->managed_ifaces[rc->n_managed_ifaces++],
		    NETADDR_IFNAMSIZ, "br-managed");
		skeleton[i] = render_skeleton_text(rc);
		FUZZ_CHECK(skeleton[i] != NULL);
	}
	setup_profiles();
	pol = policy_new();
	errs = calloc(1, sizeof(*errs));
	FUZZ_CHECK(pol && errs);

	nft_full = nft_ctx_new(NFT_CTX_DEFAULT);
	nft_incr = nft_ctx_new(NFT_CTX_DEFAULT);
	FUZZ_CHECK(nft_full != NULL && nft_incr != NULL);
	nft_ctx_buffer_output(nft_full);
	nft_ctx_buffer_error(nft_full);
	nft_ctx_buffer_output(nft_incr);
	nft_ctx_buffer_error(nft_incr);
	/* The table the incremental element commands are checked against:
	 * created for real (sharded layout), in this process's own network
	 * namespace only. */
	{
		char *full = render_full_text(&cfg[1], NULL, 0, true);

		FUZZ_CHECK(full != NULL);
		nft_must(nft_incr, full, false);
		free(full);
	}
	return 0;
}

/* ---- the element grammar ---- */

static bool
is_num(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (len == 0 || len > 10 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > max)
			return false;
	}
	if (out)
		*out = v;
	return true;
}

/* "n" or "lo-hi" with lo < hi <= max */
static bool
is_num_range(const char *s, size_t len, unsigned long max)
{
	const char *dash = memchr(s, '-', len);
	unsigned long lo, hi;

	if (dash == NULL)
		return is_num(s, len, max, NULL);
	return is_num(s, (size_t)(dash - s), max, &lo) &&
	    is_num(dash + 1, len - (size_t)(dash - s) - 1, max, &hi) && lo < hi;
}

/* One canonical address (inet_ntop of its inet_pton is the same text). */
static bool
is_addr(int family, const char *s, size_t len, uint8_t *bin)
{
	char buf[64], back[64];

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(family, buf, bin) != 1)
		return false;
	return inet_ntop(family, bin, back, sizeof(back)) != NULL &&
	    strcmp(back, buf) == 0;
}

/* "addr", "addr/len" (no host bits) or "lo-hi" (lo < hi) */
static bool
is_addr_range(int family, const char *s, size_t len)
{
	size_t alen = family == AF_INET ? 4 : 16;
	const char *slash = memchr(s, '/', len), *dash = memchr(s, '-', len);
	uint8_t a[16] = { 0 }, b[16] = { 0 };
	unsigned long plen;

	if (slash != NULL) {
		size_t n = (size_t)(slash - s);

		if (!is_addr(family, s, n, a) ||
		    !is_num(slash + 1, len - n - 1, alen * 8, &plen) ||
		    plen == alen * 8)
			return false;
		for (size_t bit = plen; bit < alen * 8; bit++)
			if (a[bit / 8] & (0x80 >> (bit % 8)))
				return false;
		return true;
	}
	if (dash != NULL) {
		size_t n = (size_t)(dash - s);

		return is_addr(family, s, n, a) &&
		    is_addr(family, dash + 1, len - n - 1, b) &&
		    memcmp(a, b, alen) < 0;
	}
	return is_addr(family, s, len, a);
}

static bool
is_mark(const char *s, size_t len, uint32_t own)
{
	unsigned long m;

	return is_num(s, len, 0x7fffffffUL, &m) && (m == 0 || m == own);
}

static bool
is_ifname(const char *s, size_t len)
{
	char name[NETADDR_IFNAMSIZ];

	if (len < 3 || s[0] != '"' || s[len - 1] != '"' ||
	    len - 2 >= NETADDR_IFNAMSIZ)
		return false;
	memcpy(name, s + 1, len - 2);
	name[len - 2] = '\0';
	return memchr(name, '"', len - 2) == NULL && netaddr_valid_ifname(name);
}

/* Split @s at every @sep into at most @max fields. */
static size_t
split(const char *s, size_t len, const char *sep, const char **f, size_t *fl,
    size_t max)
{
	size_t n = 0, sl = strlen(sep);
	const char *p = s, *end = s + len;

	while (n < max) {
		const char *hit = NULL;

		for (const char *q = p; q + sl <= end; q++)
			if (memcmp(q, sep, sl) == 0) {
				hit = q;
				break;
			}
		f[n] = p;
		fl[n] = hit ? (size_t)(hit - p) : (size_t)(end - p);
		n++;
		if (hit == NULL)
			return n;
		p = hit + sl;
	}
	return max + 1;		/* too many fields */
}

static bool
elem_ok(const char *set, const char *s, size_t len, uint32_t own)
{
	const char *f[5], *kv[3];
	size_t fl[5], kvl[3], n, nk;
	int fam = strchr(set, '6') ? AF_INET6 : AF_INET;

	/* key " : " data (maps) */
	nk = split(s, len, " : ", kv, kvl, 2);
	if (strcmp(set, "managedif") == 0)
		return nk == 1 && is_ifname(s, len);
	if (strcmp(set, "srcif") == 0)
		return nk == 2 && is_ifname(kv[0], kvl[0]) &&
		    is_mark(kv[1], kvl[1], own);
	if (strcmp(set, "audit") == 0 || strcmp(set, "bound") == 0)
		return nk == 1 && is_mark(s, len, own);
	if (strcmp(set, "boundif") == 0) {
		/* the policy's own mark . a quoted, safe interface name */
		n = split(s, len, " . ", f, fl, 2);
		return nk == 1 && n == 2 && is_mark(f[0], fl[0], own) &&
		    is_ifname(f[1], fl[1]);
	}
	if (strcmp(set, "srch4") == 0 || strcmp(set, "srch6") == 0) {
		uint8_t bin[16];

		/* host sources: one whole address -> mark (hash map) */
		return nk == 2 && is_addr(fam, kv[0], kvl[0], bin) &&
		    is_mark(kv[1], kvl[1], own);
	}
	if (strcmp(set, "fallback") == 0) {
		static const char *const ok[] = {
			"goto deny_default", "goto deny_dns", "goto deny_metadata",
			"goto deny_linklocal", "goto deny_gateway",
			"goto deny_baseline", "goto deny_disabled",
			"goto deny_failed", NULL
		};

		if (nk != 2 || !is_mark(kv[0], kvl[0], own))
			return false;
		for (size_t i = 0; ok[i]; i++)
			if (strlen(ok[i]) == kvl[1] && memcmp(ok[i], kv[1], kvl[1]) == 0)
				return true;
		return false;
	}
	if (strcmp(set, "managed4") == 0 || strcmp(set, "managed6") == 0 ||
	    strcmp(set, "src4") == 0 || strcmp(set, "src6") == 0) {
		bool map = set[0] == 's';

		if (nk != (map ? 2u : 1u) || (map && !is_mark(kv[1], kvl[1], own)))
			return false;
		n = split(kv[0], kvl[0], " . ", f, fl, 2);
		return n == 2 && fl[0] == 4 &&
		    memcmp(f[0], fam == AF_INET ? "ipv4" : "ipv6", 4) == 0 &&
		    is_addr_range(fam, f[1], fl[1]);
	}
	if (strncmp(set, "pre", 3) == 0 || strncmp(set, "allow", 5) == 0) {
		n = split(s, len, " . ", f, fl, 4);
		return nk == 1 && n == 4 && is_mark(f[0], fl[0], own) &&
		    is_addr_range(fam, f[1], fl[1]) &&
		    is_num_range(f[2], fl[2], 255) &&
		    is_num_range(f[3], fl[3], 65535);
	}
	return false;
}

/*
 * Check "add element inet forge_egress <set> { e,\n\te, ... }\n"*; returns
 * the number of elements.  With @shards > 1 the allowlist sets are named
 * "<set>_<shard>" and each element must sit in shard (mark & (shards - 1)).
 */
static size_t
check_element_cmds(const char *text, uint32_t own, unsigned shards)
{
	static const char head[] = "add element " RENDER_FAMILY " " RENDER_TABLE " ";
	static const char *const sets[] = {
		"managed4", "managed6", "managedif", "src4", "src6", "srcif",
		"srch4", "srch6", "bound", "boundif", "audit", "fallback", "pre4", "pre6",
		"allow4", "allow6", NULL
	};
	const char *p = text;
	size_t count = 0;

	while (*p != '\0') {
		const char *set = NULL, *end, *brace;
		char name[32];
		long shard = -1;
		size_t i, nl;

		if (strncmp(p, head, sizeof(head) - 1) != 0) {
			fprintf(stderr, "not an element command: %.200s\n", p);
			abort();
		}
		p += sizeof(head) - 1;
		brace = strstr(p, " { ");
		FUZZ_CHECK(brace != NULL && (nl = (size_t)(brace - p)) < sizeof(name));
		memcpy(name, p, nl);
		name[nl] = '\0';
		for (i = 0; sets[i]; i++) {
			size_t l = strlen(sets[i]);
			bool sharded = strncmp(sets[i], "pre", 3) == 0 ||
			    strncmp(sets[i], "allow", 5) == 0;
			unsigned long k;

			if (strncmp(name, sets[i], l) != 0)
				continue;
			if (name[l] == '\0' && (!sharded || shards <= 1)) {
				set = sets[i];
				break;
			}
			if (sharded && shards > 1 && name[l] == '_' &&
			    is_num(name + l + 1, strlen(name + l + 1), shards - 1, &k)) {
				set = sets[i];
				shard = (long)k;
				break;
			}
		}
		if (set == NULL) {
			fprintf(stderr, "unknown set '%s'\n", name);
			abort();
		}
		p = brace + 3;
		end = strstr(p, " }\n");
		FUZZ_CHECK(end != NULL);
		for (;;) {
			const char *sep = strstr(p, ",\n\t");
			const char *e = sep != NULL && sep < end ? sep : end;

			if (!elem_ok(set, p, (size_t)(e - p), own)) {
				fprintf(stderr, "element of %s breaks the grammar: "
				    "'%.*s'\n", name, (int)(e - p), p);
				abort();
			}
			if (shard >= 0) {
				unsigned long m;
				const char *dot = memchr(p, ' ', (size_t)(e - p));

				FUZZ_CHECK(dot != NULL &&
				    is_num(p, (size_t)(dot - p), 0x7fffffffUL, &m));
				FUZZ_CHECK((long)(m & (shards - 1)) == shard);
			}
			count++;
			if (e == end)
				break;
			p = e + 3;
		}
		p = end + 3;
	}
	return count;
}

static const struct render_profile *
profile_for(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(profiles[i].name, name) == 0)
			return &profiles[i];
	/* Operators may add profiles; an unknown one renders like custom. */
	return &profiles[3];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t marks[] = { 1, 7, 65535, 2147483647 };
	static const char swap[] = "add table " RENDER_FAMILY " " RENDER_TABLE
	    "\ndelete table " RENDER_FAMILY " " RENDER_TABLE "\n";
	const struct render_config *rc;
	struct render_elems all, mine;
	char why[256] = "";
	char *full, *incr;
	enum render_state state;
	size_t sl;
	int c, err;

	if (size > 1 << 16)
		return 0;
	policy_init(pol);
	policy_errors_init(errs);
	if (codec_policy_from_json((const char *)data, size, pol, errs) != 0)
		return 0;
	pol->id = marks[size % 4];
	c = (int)((size / 4) % 2);
	rc = &cfg[c];
	state = pol->enabled ? RENDER_STATE_ACTIVE : RENDER_STATE_DISABLED;

	render_elems_init(&all);
	render_elems_init(&mine);
	FUZZ_CHECK(render_global(rc, &profiles[0], &all) == 0);
	err = render_policy(rc, pol, profile_for(pol->profile), &profiles[0],
	    state, pol->network_id[0] ? "br-fuzznet" : NULL, &mine, why,
	    sizeof(why));
	if (err != 0) {
		/* Documented failures: the element limit, and a policy that
		 * names no source (no interface derives from network_id). */
		if (strstr(why, "kernel elements") == NULL &&
		    strstr(why, "no source") == NULL)
			fprintf(stderr, "render_policy failed: %d %s\n", err, why);
		FUZZ_CHECK(err == EGW_E_INVALID);
		FUZZ_CHECK(strstr(why, "kernel elements") != NULL ||
		    (pol->n_sources == 0 && pol->n_interfaces == 0 &&
		    pol->network_id[0] == '\0'));
		FUZZ_CHECK(mine.n == 0);
		goto out;
	}
	for (size_t i = 0; i < mine.n; i++) {
		FUZZ_CHECK(render_elem_owner(&mine.v[i]) == (uint32_t)pol->id);
		FUZZ_CHECK(render_elems_push(&all, &mine.v[i]) == 0);
	}

	/* The whole-table transaction. */
	full = render_full_text(rc, all.v, all.n, true);
	FUZZ_CHECK(full != NULL);
	sl = strlen(skeleton[c]);
	FUZZ_CHECK(strncmp(full, swap, sizeof(swap) - 1) == 0);
	FUZZ_CHECK(strncmp(full + sizeof(swap) - 1, skeleton[c], sl) == 0);
	FUZZ_CHECK(check_element_cmds(full + sizeof(swap) - 1 + sl,
	    (uint32_t)pol->id, render_shards(rc)) == all.n);
	nft_must(nft_full, full, true);
	free(full);

	/* The incremental path: this policy's elements alone, added to the
	 * existing (sharded) table, as a change would. */
	incr = render_elems_cmd_text(&cfg[1], "add", mine.v, mine.n);
	FUZZ_CHECK(incr != NULL);
	FUZZ_CHECK(check_element_cmds(incr, (uint32_t)pol->id,
	    render_shards(&cfg[1])) == mine.n);
	if (mine.n > 0)
		nft_must(nft_incr, incr, true);
	free(incr);
out:
	render_elems_free(&all);
	render_elems_free(&mine);
	return 0;
}
