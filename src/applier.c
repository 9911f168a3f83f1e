/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-applier: the only writer of table inet forge_egress.
 *
 * main() reads the configuration, opens the database and the kernel layer,
 * binds the nudge socket and runs one loop: a nudge or a changed
 * PRAGMA data_version triggers an incremental apply of the scenarios that
 * changed after the applied generation (one libnftnl transaction touching
 * only their elements); every EGW_RECONCILE_INTERVAL seconds, at start and
 * on SIGHUP the whole desired state is compared with the kernel's listing
 * and any drift is repaired in one transaction.  The applier keeps in
 * memory what it believes each scenario has in the kernel, so an
 * incremental change never reads the table.  Stopping the applier never
 * touches the kernel: enforcement continues with the last applied state,
 * and a restart with nothing changed sends no transaction at all.
 *
 * Invariant: an incremental pass runs only while that memory is what the
 * kernel holds (view_trusted; DRY_RUN: what passed the dry run).  A
 * reconcile rebuilds memory as the desired state before its transaction,
 * so a reconcile that fails, and an incremental pass whose failure leaves
 * the kernel unknown or different from memory (a timeout, a refused
 * delete, a refused baseline fallback), leave it untrusted; the next pass
 * is then a reconcile, which reads the kernel.  Otherwise a diff against
 * memory would send nothing and mark policies applied that the kernel
 * never got.  A change refused whose baseline fallback the kernel took
 * leaves memory true: the policy is failed until a reconcile heals it.
 *
 * The allowlists are sharded by mark (RENDER_SHARDS_DEFAULT sets per
 * family and kind), so one change touches sets of ~1/256 of the elements
 * and costs the same at 10,000 scenarios as at 1.  A missing table is
 * built in three steps (kernel_create(): inert sets and chains, all
 * elements in one binary batch, then the hooks); a live table is only
 * ever replaced in one transaction.
 */
#include "applier_proto.h"
#include "audit.h"
#include "config.h"
#include "err.h"
#include "instance.h"
#include "kernel.h"
#include "log.h"
#include "policy.h"
#include "render.h"
#include "store.h"
#include "store_applier.h"
#include "store_policy.h"
#include "timefmt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <json-c/json.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 200
#define COUNTERS_MS 5000
#define HEARTBEAT_MS 5000
#define RENDER_STORE_MS 2000		/* quiet time before storing the text */
#define RENDER_STORE_MAX_MS 30000
#define COALESCE_MS 3
#define CREATE_FAST_MIN_ELEMS 4096	/* kernel_create() from this many elements */
#define RECOVER_MIN_MS 1000		/* first retry of a failed reconcile */

/* What one scenario has in the kernel (as far as we know). */
struct scen {
	char scenario_id[POLICY_SCENARIO_ID_MAX + 1];
	uint32_t mark;
	bool used;
	bool seen;			/* reconcile bookkeeping */
	bool conflicted, lost;		/* recon_source_conflicts() */
	struct render_elems elems;
	uint64_t hash;			/* elems_hash(&elems) */
	uint64_t k_allow_pk, k_allow_by, k_deny_pk, k_deny_by;
	bool have_counters;
};

/* A profile whose stored rules cannot be used, and why. */
struct unusable_profile {
	char name[POLICY_PROFILE_MAX + 1];
	char error[sizeof(((struct store_profile *)0)->error)];
};

struct applier {
	struct config cfg;
	struct render_config rc;
	struct store *st;
	struct kernel *k;
	int sock;
	struct render_profile *profiles;
	size_t n_profiles;
	struct unusable_profile *unusable;	/* their policies fail */
	size_t n_unusable;
	struct render_elems global;
	struct scen *scens;		/* open addressing on scenario_id */
	size_t cap, n_scens;
	bool view_trusted;		/* scens, global: what the kernel holds */
	int64_t recover_at;		/* untrusted: next reconcile (monotonic ms) */
	int64_t recover_backoff_ms;
	int64_t applied_gen;
	int64_t data_version;
	bool rendered_dirty;
	int64_t rendered_dirty_since;
	bool counters_failing;		/* the last read failed (logged once) */
	bool table_fresh;		/* we (re)created the table: counters at 0 */
	uint64_t stored_hash;		/* content hash of the stored text, 0: unknown */
	uint64_t validated_hash;	/* DRY_RUN: content that passed the dry run */
	double last_dur_ms;
	int64_t rendered_first_dirty;
	unsigned long bad_msgs;
	unsigned long applies;
};

static volatile sig_atomic_t got_term, got_hup;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
}

/* ---- scenario table ---- */

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static int
scens_grow(struct applier *a)
{
	size_t cap = a->cap ? a->cap * 2 : 1024;
	struct scen *v = calloc(cap, sizeof(*v)), *old = a->scens;

	if (v == NULL)
		return EGW_E_NOMEM;
	for (size_t i = 0; i < a->cap; i++) {
		if (!old[i].used)
			continue;
		size_t j = hash_str(old[i].scenario_id) & (cap - 1);
		while (v[j].used)
			j = (j + 1) & (cap - 1);
		v[j] = old[i];
	}
	free(old);
	a->scens = v;
	a->cap = cap;
	return 0;
}

static struct scen *
scen_find(struct applier *a, const char *sid, bool create)
{
	size_t j;

	if (a->cap == 0 && (!create || scens_grow(a) != 0))
		return NULL;
	if (create && (a->n_scens + 1) * 2 > a->cap && scens_grow(a) != 0)
		return NULL;
	j = hash_str(sid) & (a->cap - 1);
	while (a->scens[j].used) {
		if (strcmp(a->scens[j].scenario_id, sid) == 0)
			return &a->scens[j];
		j = (j + 1) & (a->cap - 1);
	}
	if (!create)
		return NULL;
	memset(&a->scens[j], 0, sizeof(a->scens[j]));
	a->scens[j].used = true;
	a->n_scens++;
	snprintf(a->scens[j].scenario_id, sizeof(a->scens[j].scenario_id), "%s", sid);
	return &a->scens[j];
}

static int
mark_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

/*
 * A scenario's mark is its policy id: a scenario deleted and created again
 * has a new one, and the kernel counts the new mark from 0, so the old
 * mark's baselines must not be subtracted from it.
 */
static void
scen_set_mark(struct scen *s, uint32_t mark)
{
	if (s->mark == mark)
		return;
	s->mark = mark;
	s->k_allow_pk = s->k_allow_by = s->k_deny_pk = s->k_deny_by = 0;
	s->have_counters = false;
}

/* Remove (backward-shift deletion keeps probe chains intact). */
static void
scen_remove(struct applier *a, struct scen *s)
{
	size_t i = (size_t)(s - a->scens), j = i;

	render_elems_free(&s->elems);
	a->scens[i].used = false;
	a->n_scens--;
	for (;;) {
		j = (j + 1) & (a->cap - 1);
		if (!a->scens[j].used)
			break;
		size_t home = hash_str(a->scens[j].scenario_id) & (a->cap - 1);
		bool move = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
		if (move) {
			a->scens[i] = a->scens[j];
			a->scens[j].used = false;
			memset(&a->scens[j].elems, 0, sizeof(a->scens[j].elems));
			i = j;
		}
	}
}

/* ---- configuration for the renderer ---- */

static void
gateway_addresses(struct render_config *rc)
{
	struct ifaddrs *ifa, *i;

	rc->n_gateway = 0;
	if (getifaddrs(&ifa) != 0) {
		log_warn("getifaddrs");
		return;
	}
	for (i = ifa; i && rc->n_gateway < RENDER_MAX_GATEWAY; i = i->ifa_next) {
		struct ip_prefix *p = &rc->gateway[rc->n_gateway];

		if (i->ifa_addr == NULL || (i->ifa_flags & IFF_LOOPBACK))
			continue;
		memset(p, 0, sizeof(*p));
		if (i->ifa_addr->sa_family == AF_INET) {
			p->family = AF_INET;
			p->len = 32;
			memcpy(p->addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			p->family = AF_INET6;
			p->len = 128;
			memcpy(p->addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		rc->n_gateway++;
	}
	freeifaddrs(ifa);
}

static void
render_config_from(const struct config *cfg, struct render_config *rc)
{
	memset(rc, 0, sizeof(*rc));
	rc->nflog_group = cfg->nflog_group;
	rc->log_rate = cfg->log_rate;
	rc->log_burst = cfg->log_burst;
	rc->output_hook = cfg->output_hook;
	rc->shards = RENDER_SHARDS_DEFAULT;
	rc->n_dns = cfg->n_dns_servers < RENDER_MAX_DNS ? cfg->n_dns_servers : RENDER_MAX_DNS;
	memcpy(rc->dns, cfg->dns_servers, rc->n_dns * sizeof(rc->dns[0]));
	rc->n_managed = cfg->n_managed_sources < RENDER_MAX_MANAGED ?
	    cfg->n_managed_sources : RENDER_MAX_MANAGED;
	memcpy(rc->managed, cfg->managed_sources, rc->n_managed * sizeof(rc->managed[0]));
	rc->n_managed_ifaces = cfg->n_managed_ifaces < RENDER_MAX_MANAGED ?
	    cfg->n_managed_ifaces : RENDER_MAX_MANAGED;
	memcpy(rc->managed_ifaces, cfg->managed_ifaces,
	    rc->n_managed_ifaces * sizeof(rc->managed_ifaces[0]));
	gateway_addresses(rc);
}

/* Why @name cannot be used, or NULL (usable, or no such profile). */
static const char *
profile_unusable(const struct applier *a, const char *name)
{
	for (size_t i = 0; i < a->n_unusable; i++)
		if (strcmp(a->unusable[i].name, name) == 0)
			return a->unusable[i].error;
	return NULL;
}

static int
profile_cb(const struct store_profile *pr, void *ctx)
{
	struct applier *a = ctx;
	struct render_profile *v;
	struct render_profile *p;

	if (pr->error[0] != '\0') {
		/* Its policies fail closed; every other profile stays usable. */
		struct unusable_profile *u = realloc(a->unusable,
		    (a->n_unusable + 1) * sizeof(*u));

		if (u == NULL)
			return EGW_E_NOMEM;
		a->unusable = u;
		u += a->n_unusable++;
		snprintf(u->name, sizeof(u->name), "%s", pr->name);
		snprintf(u->error, sizeof(u->error), "%s", pr->error);
		return 0;
	}
	v = realloc(a->profiles, (a->n_profiles + 1) * sizeof(*v));
	if (v == NULL)
		return EGW_E_NOMEM;
	a->profiles = v;
	p = &v[a->n_profiles++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", pr->name);
	p->uses_policy_entries = pr->uses_policy_entries;
	p->n_rules = pr->n_rules < RENDER_PROFILE_MAX_RULES ? pr->n_rules :
	    RENDER_PROFILE_MAX_RULES;
	memcpy(p->rules, pr->rules, p->n_rules * sizeof(p->rules[0]));
	return 0;
}

static int
load_profiles(struct applier *a)
{
	struct render_profile *had = a->profiles;
	size_t n_had = a->n_profiles;
	struct unusable_profile *was = a->unusable;
	size_t n_was = a->n_unusable;
	int rc;

	a->profiles = NULL;
	a->n_profiles = 0;
	a->unusable = NULL;
	a->n_unusable = 0;
	rc = store_profile_list(a->st, profile_cb, a);
	if (rc != 0) {
		/* Half a list would fail the policies on the other half:
		 * keep the last whole one until the next try. */
		free(a->profiles);
		free(a->unusable);
		a->profiles = had;
		a->n_profiles = n_had;
		a->unusable = was;
		a->n_unusable = n_was;
		return rc;
	}
	free(had);
	/* Once per profile that turned unusable, not at every reconcile. */
	for (size_t i = 0; i < a->n_unusable; i++) {
		bool known = false;

		for (size_t j = 0; j < n_was && !known; j++)
			known = strcmp(was[j].name, a->unusable[i].name) == 0 &&
			    strcmp(was[j].error, a->unusable[i].error) == 0;
		if (!known)
			log_warnx("profile %s cannot be used: %s; its policies"
			    " fail", a->unusable[i].name, a->unusable[i].error);
	}
	for (size_t j = 0; j < n_was; j++) {
		if (profile_unusable(a, was[j].name) == NULL)
			log_info("profile %s is no longer unusable (mended or"
			    " removed)", was[j].name);
	}
	free(was);
	return 0;
}

static const struct render_profile *
profile_find(const struct applier *a, const char *name)
{
	for (size_t i = 0; i < a->n_profiles; i++)
		if (strcmp(a->profiles[i].name, name) == 0)
			return &a->profiles[i];
	return NULL;
}

/*
 * A stored address in an IPv6 form of an IPv4 one (netaddr_embeds_ipv4):
 * every input refuses them now, but a row stored before, or written by
 * hand, would be applied and match nothing.  Such a policy fails closed:
 * the baseline, on its sources' IPv4 equivalents (embedded_as_ipv4()), so
 * that its clients' real packets are the ones held to it.  @why may be
 * NULL.
 */
static bool
embedded_ipv4(const struct policy *p, char *why, size_t whylen)
{
	const char *field = NULL;

	for (size_t i = 0; i < p->n_sources && field == NULL; i++)
		if (netaddr_embeds_ipv4(&p->sources[i], NULL))
			field = "sources";
	for (size_t i = 0; i < p->n_dns_servers && field == NULL; i++)
		if (netaddr_embeds_ipv4(&p->dns_servers[i], NULL))
			field = "dns_servers";
	for (size_t i = 0; i < p->n_hosts && field == NULL; i++)
		if (netaddr_embeds_ipv4(&p->hosts[i], NULL))
			field = "allowed_hosts";
	for (size_t i = 0; i < p->n_rules && field == NULL; i++)
		if (p->rules[i].has_dest && netaddr_embeds_ipv4(&p->rules[i].dest, NULL))
			field = "custom_rules";
	if (field == NULL)
		return false;
	if (why != NULL)
		snprintf(why, whylen, "%s holds an IPv6 form of an IPv4 address,"
		    " which matches no IPv4 packet; send the policy again with the"
		    " IPv4 form", field);
	return true;
}

/* A copy of @p whose sources are what the kernel sees; NULL without memory. */
static struct policy *
embedded_as_ipv4(const struct policy *p)
{
	struct policy *q = policy_new();

	if (q == NULL)
		return NULL;
	memcpy(q, p, sizeof(*q));
	for (size_t i = 0; i < q->n_sources; i++) {
		struct ip_prefix v4;

		if (netaddr_embeds_ipv4(&q->sources[i], &v4))
			q->sources[i] = v4;
	}
	return q;
}

/*
 * A policy's desired elements.  Returns true when they express the policy
 * (applied), false when it fell back to the baseline (failed; @why set).
 */
static bool
desired_for(struct applier *a, const struct policy *p, struct render_elems *out,
    char *why, size_t whylen)
{
	const struct render_profile *prof = profile_find(a, p->profile);
	const struct render_profile *base = profile_find(a, "none");
	char iface[NETADDR_IFNAMSIZ] = "";
	enum render_state state = p->enabled ? RENDER_STATE_ACTIVE :
	    RENDER_STATE_DISABLED;
	struct policy *as_ipv4 = NULL;
	const struct policy *use = p;
	char why2[POLICY_ERROR_MAX];
	bool ok = false;

	why[0] = '\0';
	if (p->n_sources == 0 && p->n_interfaces == 0)
		(void)config_iface_for_network(&a->cfg, p->network_id, iface);
	if (p->row_unparsable) {
		/* What did load gets the baseline; the rest of its sources
		 * fall to the managed networks' baseline. */
		snprintf(why, whylen, "a stored row of this policy does not "
		    "parse (edited by hand? see the applier's log)");
		state = RENDER_STATE_FAILED;
	}
	if (state == RENDER_STATE_ACTIVE && prof == NULL) {
		const char *bad = profile_unusable(a, p->profile);

		if (bad != NULL)
			snprintf(why, whylen, "profile \"%s\" cannot be used: %s",
			    p->profile, bad);
		else
			snprintf(why, whylen, "profile \"%s\" does not exist",
			    p->profile);
		state = RENDER_STATE_FAILED;
	}
	if (embedded_ipv4(p, state == RENDER_STATE_ACTIVE ? why : NULL, whylen)) {
		if (state == RENDER_STATE_ACTIVE)
			state = RENDER_STATE_FAILED;
		if ((as_ipv4 = embedded_as_ipv4(p)) != NULL)
			use = as_ipv4;
		else
			log_warnx("policy %s: out of memory; its IPv6-form sources"
			    " stay as stored", p->scenario_id);
	}
	if (render_policy(&a->rc, use, prof, base, state, iface, out, why,
	    whylen) == 0)
		ok = state != RENDER_STATE_FAILED;
	/* the policy as written cannot be expressed: baseline, failed */
	else if (render_policy(&a->rc, use, NULL, base, RENDER_STATE_FAILED,
	    iface, out, why2, sizeof(why2)) != 0)
		log_warnx("policy %s: not even the baseline renders: %s",
		    p->scenario_id, why2);
	policy_free(as_ipv4);
	return ok;
}

/* Does any source element of @l conflict with another scenario's? */
static const struct scen *
source_conflict(struct applier *a, const char *sid, const struct render_elems *l,
    const struct render_elem **which)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct render_elem *e = &l->v[i];

		if (e->set < RENDER_SET_SOURCE_FIRST || e->set > RENDER_SET_SOURCE_LAST)
			continue;
		for (size_t s = 0; s < a->cap; s++) {
			const struct scen *o = &a->scens[s];

			if (!o->used || strcmp(o->scenario_id, sid) == 0)
				continue;
			/* elems are sorted by set: sources come before the rest */
			for (size_t j = 0; j < o->elems.n &&
			    o->elems.v[j].set <= RENDER_SET_SOURCE_LAST; j++)
				if (render_elems_conflict(e, &o->elems.v[j])) {
					*which = e;
					return o;
				}
		}
	}
	return NULL;
}

static void
drop_sources(struct render_elems *l)
{
	size_t w = 0;

	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].set < RENDER_SET_SOURCE_FIRST ||
		    l->v[i].set > RENDER_SET_SOURCE_LAST)
			l->v[w++] = l->v[i];
	l->n = w;
}

/* Elements in @a but not in @b (both sorted) are appended to @out. */
static int
elems_minus(const struct render_elems *x, const struct render_elems *y,
    struct render_elems *out)
{
	size_t i = 0, j = 0;
	int rc;

	while (i < x->n) {
		int c = j < y->n ? render_elem_cmp(&x->v[i], &y->v[j]) : -1;

		if (c < 0) {
			if ((rc = render_elems_push(out, &x->v[i])) != 0)
				return rc;
			i++;
		} else if (c == 0) {
			i++;
			j++;
		} else {
			j++;
		}
	}
	return 0;
}

/*
 * Content hash of the rendered ruleset without rendering it: the skeleton
 * text's hash plus the sum of one hash per element (a multiset hash, so
 * the order of scenarios does not matter).  The stored text starts with
 * "# egw-content <hash>", so a reconcile that finds the same content
 * neither renders nor rewrites several MB of text.
 */
static uint64_t
hash_bytes(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

static uint64_t
elems_hash(const struct render_elems *l)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < l->n; i++) {
		uint64_t h = hash_bytes(1469598103934665603ull, &l->v[i],
		    sizeof(l->v[i]));

		/* finalise (splitmix64) so that sums of similar elements spread */
		h ^= h >> 30;
		h *= 0xbf58476d1ce4e5b9ull;
		h ^= h >> 27;
		h *= 0x94d049bb133111ebull;
		sum += h ^ (h >> 31);
	}
	return sum;
}

static uint64_t
content_hash(struct applier *a)
{
	char *skel = render_skeleton_text(&a->rc);
	uint64_t h = elems_hash(&a->global);

	if (skel != NULL) {
		h += hash_bytes(1469598103934665603ull, skel, strlen(skel));
		free(skel);
	}
	for (size_t s = 0; s < a->cap; s++)
		if (a->scens[s].used)
			h += a->scens[s].hash;
	return h ? h : 1;	/* 0 means "unknown" */
}

static char *
full_text(struct applier *a, uint64_t hash)
{
	struct render_elems all;
	char *t, *out = NULL;

	render_elems_init(&all);
	for (size_t i = 0; i < a->global.n; i++)
		render_elems_push(&all, &a->global.v[i]);
	for (size_t s = 0; s < a->cap; s++)
		for (size_t i = 0; a->scens[s].used && i < a->scens[s].elems.n; i++)
			render_elems_push(&all, &a->scens[s].elems.v[i]);
	render_elems_sort(&all);
	t = render_full_text(&a->rc, all.v, all.n, false);
	render_elems_free(&all);
	if (t != NULL && asprintf(&out, STORE_APPLIER_CONTENT_TAG "%016llx\n%s",
	    (unsigned long long)hash, t) < 0)
		out = NULL;
	free(t);
	return out;
}

/* Store the rendered text if its content changed; returns 0 or an error. */
static int
store_text_if_changed(struct applier *a)
{
	uint64_t h = content_hash(a);
	char *text;
	int rc;

	if (h == a->stored_hash)
		return 0;
	if ((text = full_text(a, h)) == NULL)
		return EGW_E_NOMEM;
	rc = store_applier_record(a->st, a->applied_gen, a->cfg.dry_run,
	    a->last_dur_ms, NULL, text);
	free(text);
	if (rc == 0)
		a->stored_hash = h;
	return rc;
}

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double
ms_since(int64_t t0_us)
{
	return (double)(now_us() - t0_us) / 1000.0;
}

/* ---- incremental apply ---- */

struct change {
	char sid[POLICY_SCENARIO_ID_MAX + 1];
	struct render_elems want;
	bool exists, ok;
	int64_t id;
	char why[POLICY_ERROR_MAX];
	/* reconcile: the stored status, to tell a failure already reported */
	bool stored_failed;
	uint64_t stored_why_hash;
	bool counted;			/* in recon->status_writes */
};

struct changes {
	struct change *v;
	size_t n, cap;
};

static void
collect_changed(const char *sid, void *ctx)
{
	struct changes *c = ctx;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct change *v = realloc(c->v, cap * sizeof(*v));

		if (v == NULL)
			return;
		c->v = v;
		c->cap = cap;
	}
	memset(&c->v[c->n], 0, sizeof(c->v[0]));
	snprintf(c->v[c->n].sid, sizeof(c->v[0].sid), "%s", sid);
	c->n++;
}

/*
 * DRY_RUN: check @n changes' elements with libnftables' dry run.  The
 * kernel has no table to diff against, and the sharded skeleton alone is
 * ~300 KB of text, so the check uses the flat skeleton (shards 0: same
 * element types, one set each) plus the global elements and these.
 */
static int
dry_run_check(struct applier *a, const struct change *ch, size_t n, char *err,
    size_t errlen)
{
	struct render_config flat = a->rc;
	struct render_elems v;
	char *text;
	int rc = 0;

	flat.shards = 0;
	render_elems_init(&v);
	for (size_t i = 0; i < a->global.n && rc == 0; i++)
		rc = render_elems_push(&v, &a->global.v[i]);
	for (size_t i = 0; i < n && rc == 0; i++)
		for (size_t j = 0; j < ch[i].want.n && rc == 0; j++) {
			struct render_elem e = ch[i].want.v[j];

			/* the flat layout has no host maps */
			if (e.set == RENDER_SET_SRCH4)
				e.set = RENDER_SET_SRC4;
			else if (e.set == RENDER_SET_SRCH6)
				e.set = RENDER_SET_SRC6;
			rc = render_elems_push(&v, &e);
		}
	if (rc == 0) {
		render_elems_sort(&v);
		text = render_full_text(&flat, v.v, v.n, false);
		rc = text ? kernel_run_text(a->k, text, true, err, errlen) : EGW_E_NOMEM;
		free(text);
	}
	render_elems_free(&v);
	return rc;
}

/* Send the difference for changes[from..to) as one transaction. */
static int
send_changes(struct applier *a, struct change *ch, size_t n, char *err,
    size_t errlen)
{
	struct render_elems del, add;
	int rc = 0;

	if (a->cfg.dry_run)
		return dry_run_check(a, ch, n, err, errlen);

	render_elems_init(&del);
	render_elems_init(&add);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct scen *s = scen_find(a, ch[i].sid, false);
		struct render_elems empty = { 0 };
		const struct render_elems *have = s ? &s->elems : &empty;

		rc = elems_minus(have, &ch[i].want, &del);
		if (rc == 0)
			rc = elems_minus(&ch[i].want, have, &add);
	}
	if (rc == 0)
		rc = kernel_elems_batch(a->k, &a->rc, del.v, del.n, add.v, add.n,
		    err, errlen);
	render_elems_free(&del);
	render_elems_free(&add);
	return rc;
}

static void
commit_memory(struct applier *a, struct change *c)
{
	struct scen *s = scen_find(a, c->sid, c->exists);

	if (s == NULL) {
		/* out of memory: the kernel has it, memory does not */
		if (c->exists)
			a->view_trusted = false;
		return;
	}
	if (!c->exists) {
		scen_remove(a, s);
		return;
	}
	render_elems_free(&s->elems);
	s->elems = c->want;
	memset(&c->want, 0, sizeof(c->want));
	scen_set_mark(s, (uint32_t)c->id);
	s->hash = elems_hash(&s->elems);
}

/*
 * What a scenario whose elements the kernel refused gets instead: the
 * strict baseline under its own mark, its sources (derived ones included)
 * kept, so they are denied as "failed".  A row that does not parse: the
 * baseline for what loaded.  Nothing is appended when the policy cannot
 * be read.
 */
static void
failed_baseline(struct applier *a, const char *sid, struct render_elems *out)
{
	struct policy *q = policy_new();
	const struct render_profile *base = profile_find(a, "none");
	char w[256], iface[NETADDR_IFNAMSIZ] = "";
	int got = q ? store_policy_get(a->st, sid, q) : EGW_E_NOMEM;

	if (got == 0 || got == EGW_E_BADROW) {
		if (q->n_sources == 0 && q->n_interfaces == 0)
			(void)config_iface_for_network(&a->cfg, q->network_id, iface);
		render_policy(&a->rc, q, NULL, base, RENDER_STATE_FAILED, iface,
		    out, w, sizeof(w));
	}
	policy_free(q);
}

static int
apply_incremental(struct applier *a)
{
	struct changes ch = { 0 };
	struct policy *p = policy_new();
	int64_t desired = 0, t0 = now_us();
	char err[KERNEL_ERR_MAX] = "";
	int rc;

	if (p == NULL)
		return EGW_E_NOMEM;
	/* a diff against a view the kernel may not hold proves nothing */
	if (!a->view_trusted) {
		policy_free(p);
		return EGW_E_CONFLICT;
	}
	if ((rc = store_generation(a->st, &desired, NULL)) != 0 ||
	    desired <= a->applied_gen) {
		policy_free(p);
		return rc;
	}

	if ((rc = store_applier_changed_since(a->st, a->applied_gen,
	    collect_changed, &ch)) != 0)
		goto out;
	for (size_t i = 0; i < ch.n; i++) {
		struct change *c = &ch.v[i];
		const struct render_elem *which;
		const struct scen *other;

		render_elems_init(&c->want);
		rc = store_policy_get(a->st, c->sid, p);
		if (rc == EGW_E_NOTFOUND) {
			c->exists = false;
			c->ok = true;
			rc = 0;
			continue;
		}
		if (rc == EGW_E_BADROW)
			rc = 0;		/* desired_for() fails it closed */
		if (rc != 0)
			goto out;
		c->exists = true;
		c->id = p->id;
		c->ok = desired_for(a, p, &c->want, c->why, sizeof(c->why));
		if ((other = source_conflict(a, c->sid, &c->want, &which)) != NULL) {
			char t[160];

			render_elem_text(which, t, sizeof(t));
			snprintf(c->why, sizeof(c->why), "source %s is already "
			    "scenario %s's", t, other->scenario_id);
			drop_sources(&c->want);
			c->ok = false;
		}
	}
	int64_t t_send = now_us();
	rc = send_changes(a, ch.v, ch.n, err, sizeof(err));
	double kernel_ms = ms_since(t_send);
	if (rc == EGW_E_NFT) {
		/* isolate: each scenario alone; a refused one falls back */
		log_warnx("batch of %zu scenarios refused (%s); applying one by one",
		    ch.n, err);
		for (size_t i = 0; i < ch.n; i++) {
			struct change *c = &ch.v[i];
			char e1[KERNEL_ERR_MAX] = "";
			int rc1 = send_changes(a, c, 1, e1, sizeof(e1));

			if (rc1 == 0) {
				commit_memory(a, c);
				continue;
			}
			/* not a clean refusal (a timeout): it may have landed */
			if (rc1 != EGW_E_NFT)
				a->view_trusted = false;
			snprintf(c->why, sizeof(c->why), "%s", e1);
			c->ok = false;
			render_elems_free(&c->want);
			render_elems_init(&c->want);
			if (c->exists) {
				failed_baseline(a, c->sid, &c->want);
				if (send_changes(a, c, 1, e1, sizeof(e1)) != 0) {
					/*
					 * The kernel keeps its old elements
					 * (for a disable: the more open
					 * allowlist), and so does memory; a
					 * reconcile tries again at once.
					 */
					a->view_trusted = false;
					continue;
				}
			} else {
				/* a refused delete: the kernel keeps the
				 * scenario, so memory must not forget it */
				a->view_trusted = false;
				continue;
			}
			commit_memory(a, c);
		}
		rc = 0;
	} else if (rc == 0) {
		for (size_t i = 0; i < ch.n; i++)
			commit_memory(a, &ch.v[i]);
	} else {
		/* memory is untouched, but a timeout may have landed */
		a->view_trusted = false;
		goto out;
	}

	double dur = ms_since(t0);
	if ((rc = store_begin(a->st)) != 0)
		goto out;
	for (size_t i = 0; i < ch.n; i++) {
		struct change *c = &ch.v[i];

		if (!c->exists)
			continue;
		store_applier_set_status(a->st, c->sid, desired,
		    c->ok ? POLICY_APPLY_APPLIED : POLICY_APPLY_FAILED,
		    c->ok ? NULL : c->why);
		/* Every apply result reaches audit.egress (issue 5), in the
		 * same transaction as the status it reports. */
		audit_apply_event(a->st, c->ok, desired, c->sid, c->ok ? NULL : c->why);
	}
	store_applier_record(a->st, desired, a->cfg.dry_run, dur, NULL, NULL);
	if ((rc = store_commit(a->st)) != 0)
		goto out;
	a->applied_gen = desired;
	a->applies++;
	a->last_dur_ms = dur;
	/* the text is rendered once changes pause (see main loop) */
	a->rendered_dirty = true;
	a->rendered_dirty_since = timefmt_monotonic_ms();
	if (a->rendered_first_dirty == 0)
		a->rendered_first_dirty = a->rendered_dirty_since;
	{
		char g[24], d[32], n[24], km[32], tot[32];

		snprintf(g, sizeof(g), "%lld", (long long)desired);
		snprintf(d, sizeof(d), "%.3f", dur);
		snprintf(km, sizeof(km), "%.3f", kernel_ms);
		snprintf(tot, sizeof(tot), "%.3f", ms_since(t0));
		snprintf(n, sizeof(n), "%zu", ch.n);
		log_kv(LOG_LEVEL_INFO, ((const char *[]){ "generation", g,
		    "dur_ms", d, "kernel_ms", km, "total_ms", tot, "scenarios", n,
		    NULL }),
		    "applied changes");
	}
out:
	for (size_t i = 0; i < ch.n; i++)
		render_elems_free(&ch.v[i].want);
	free(ch.v);
	policy_free(p);
	return rc;
}

/* ---- full reconcile ---- */

struct recon {
	struct applier *a;
	struct changes results;	/* sid, id, ok, why per policy (want unused) */
	int64_t desired;
	size_t status_writes;
};

static int
recon_policy(const struct policy *p, void *ctx)
{
	struct recon *r = ctx;
	struct applier *a = r->a;
	struct scen *s = scen_find(a, p->scenario_id, true);
	struct change *c;
	char why[POLICY_ERROR_MAX];
	bool ok;

	if (s == NULL)
		return EGW_E_NOMEM;
	render_elems_free(&s->elems);
	render_elems_init(&s->elems);
	ok = desired_for(a, p, &s->elems, why, sizeof(why));
	scen_set_mark(s, (uint32_t)p->id);
	s->seen = true;
	collect_changed(p->scenario_id, &r->results);
	if (r->results.n == 0)
		return EGW_E_NOMEM;
	c = &r->results.v[r->results.n - 1];
	c->exists = true;
	c->id = p->id;
	c->ok = ok;
	c->stored_failed = p->apply_status == POLICY_APPLY_FAILED;
	c->stored_why_hash = hash_str(p->apply_error);
	snprintf(c->why, sizeof(c->why), "%s", ok ? "" : why);
	/* only rows whose status would change are written */
	if (p->applied_generation != r->desired ||
	    p->apply_status != (ok ? POLICY_APPLY_APPLIED : POLICY_APPLY_FAILED) ||
	    strcmp(p->apply_error, c->why) != 0)
		c->ok = ok, c->why[sizeof(c->why) - 1] = '\0', r->status_writes++,
		    c->counted = true;
	else
		c->exists = false;	/* nothing to write */
	return 0;
}

/* A source element and its scenario, for the conflict sweep. */
struct src_ref {
	const struct render_elem *e;
	struct scen *s;
};

static int
src_ref_cmp(const void *x, const void *y)
{
	const struct render_elem *a = ((const struct src_ref *)x)->e;
	const struct render_elem *b = ((const struct src_ref *)y)->e;
	int c;

	if (a->set != b->set)
		return a->set < b->set ? -1 : 1;
	if ((c = memcmp(a->lo, b->lo, 16)) != 0)
		return c;
	return -memcmp(a->hi, b->hi, 16);	/* the wider one first */
}

static int
scen_mark_cmp(const void *x, const void *y)
{
	const struct scen *a = *(struct scen *const *)x, *b = *(struct scen *const *)y;

	return a->mark < b->mark ? -1 : a->mark > b->mark;
}

/*
 * Sources claimed twice: the higher mark (newer policy) loses them.
 * Checking every pair of scenarios is quadratic (minutes at 10,000), so
 * one sorted sweep over all source elements first finds the scenarios
 * involved in any overlap (source prefixes nest or are disjoint, and an
 * interface name conflicts only with itself); only those few are then
 * compared pairwise, oldest first, so a loser's sources stop counting.
 */
static void
recon_source_conflicts(struct recon *r)
{
	struct applier *a = r->a;
	struct src_ref *v = NULL, *open = NULL;
	struct scen **inv = NULL;
	size_t n = 0, cap = 0, n_open = 0, n_inv = 0;

	for (size_t s = 0; s < a->cap; s++) {
		struct scen *x = &a->scens[s];

		x->conflicted = false;
		for (size_t i = 0; x->used && i < x->elems.n &&
		    x->elems.v[i].set <= RENDER_SET_SOURCE_LAST; i++) {
			if (x->elems.v[i].set < RENDER_SET_SOURCE_FIRST)
				continue;
			if (n == cap) {
				size_t c = cap ? cap * 2 : 1024;
				struct src_ref *nv = realloc(v, c * sizeof(*nv));

				if (nv == NULL)
					goto out;
				v = nv;
				cap = c;
			}
			v[n].e = &x->elems.v[i];
			v[n++].s = x;
		}
	}
	if (n == 0)
		goto out;
	qsort(v, n, sizeof(*v), src_ref_cmp);
	if ((open = malloc(n * sizeof(*open))) == NULL)
		goto out;
	/* a stack of the elements that enclose the current one */
	for (size_t i = 0; i < n; i++) {
		while (n_open > 0 && (open[n_open - 1].e->set != v[i].e->set ||
		    !render_elems_conflict(open[n_open - 1].e, v[i].e)))
			n_open--;
		for (size_t j = 0; j < n_open; j++)
			if (open[j].s != v[i].s) {
				open[j].s->conflicted = true;
				v[i].s->conflicted = true;
			}
		open[n_open++] = v[i];
	}
	for (size_t s = 0; s < a->cap; s++)
		if (a->scens[s].used && a->scens[s].conflicted)
			n_inv++;
	if (n_inv == 0 || (inv = malloc(n_inv * sizeof(*inv))) == NULL)
		goto out;
	n_inv = 0;
	for (size_t s = 0; s < a->cap; s++)
		if (a->scens[s].used && a->scens[s].conflicted)
			inv[n_inv++] = &a->scens[s];
	qsort(inv, n_inv, sizeof(*inv), scen_mark_cmp);
	for (size_t i = 0; i < n_inv; i++) {
		struct scen *x = inv[i], *o = NULL;
		const struct render_elem *which = NULL;

		for (size_t j = 0; j < i && o == NULL; j++) {
			if (inv[j]->lost)
				continue;
			for (size_t p = 0; p < x->elems.n && o == NULL &&
			    x->elems.v[p].set <= RENDER_SET_SOURCE_LAST; p++)
				for (size_t q = 0; q < inv[j]->elems.n &&
				    inv[j]->elems.v[q].set <= RENDER_SET_SOURCE_LAST; q++)
					if (x->elems.v[p].set >= RENDER_SET_SOURCE_FIRST &&
					    render_elems_conflict(&x->elems.v[p],
					    &inv[j]->elems.v[q])) {
						o = inv[j];
						which = &x->elems.v[p];
						break;
					}
		}
		if (o == NULL)
			continue;
		x->lost = true;
		char t[160];
		render_elem_text(which, t, sizeof(t));
		for (size_t k = 0; k < r->results.n; k++) {
			struct change *c = &r->results.v[k];

			if (strcmp(c->sid, x->scenario_id) == 0) {
				snprintf(c->why, sizeof(c->why), "source %s is already "
				    "scenario %s's", t, o->scenario_id);
				c->ok = false;
				c->exists = true;
			}
		}
	}
	/* drop only after the comparisons: which points into the lists */
	for (size_t i = 0; i < n_inv; i++)
		if (inv[i]->lost) {
			drop_sources(&inv[i]->elems);
			inv[i]->lost = false;
		}
out:
	free(v);
	free(open);
	free(inv);
}

/*
 * ---- a reconcile the kernel refused: isolate what it will not take ----
 *
 * The kernel refuses a transaction as a whole.  Retried as one, a
 * scenario whose elements it refuses every time would fail every
 * reconcile after it, and with no table yet (a cold start) leave the
 * managed networks unpoliced.  So the table is put up with the global
 * elements (every managed network denied), then the scenarios go in by
 * halves, a refused half split again, and a single refused scenario gets
 * the failed baseline, or, refused that too, none of its elements (its
 * sources then fall to the managed networks' baseline).
 */
struct isolate {
	struct applier *a;
	struct recon *r;
	struct render_elems kv;		/* what the kernel holds (sorted) */
	size_t batches, refused;
	size_t changed;			/* elements the kernel took */
	int fatal;			/* not a clean refusal: stop */
	char err[KERNEL_ERR_MAX];
};

/* The kernel's elements whose owner is one of @marks (sorted) go to @out. */
static int
kernel_owned(const struct isolate *iso, const uint32_t *marks, size_t n,
    struct render_elems *out)
{
	for (size_t i = 0; i < iso->kv.n; i++) {
		uint32_t m = render_elem_owner(&iso->kv.v[i]);
		int rc;

		if (bsearch(&m, marks, n, sizeof(*marks), mark_cmp) != NULL &&
		    (rc = render_elems_push(out, &iso->kv.v[i])) != 0)
			return rc;
	}
	return 0;
}

/* What the kernel took: @del out of the view, @add into it. */
static int
kv_apply(struct isolate *iso, const struct render_elems *del,
    const struct render_elems *add)
{
	struct render_elems rest;
	int rc;

	render_elems_init(&rest);
	if ((rc = elems_minus(&iso->kv, del, &rest)) == 0)
		for (size_t i = 0; i < add->n && rc == 0; i++)
			rc = render_elems_push(&rest, &add->v[i]);
	if (rc != 0) {
		render_elems_free(&rest);
		return rc;
	}
	render_elems_sort(&rest);
	render_elems_free(&iso->kv);
	iso->kv = rest;
	return 0;
}

/* One transaction of @del and @add; what the kernel took enters the view. */
static int
isolate_batch(struct isolate *iso, const struct render_elems *del,
    const struct render_elems *add)
{
	int rc;

	iso->batches++;
	rc = kernel_elems_batch(iso->a->k, &iso->a->rc, del->v, del->n, add->v,
	    add->n, iso->err, sizeof(iso->err));
	if (rc != 0)
		return rc;
	iso->changed += del->n + add->n;
	return kv_apply(iso, del, add);
}

/*
 * One transaction taking the owners @marks from what the kernel holds to
 * @want (sorted).  Returns 0, EGW_E_NFT (refused, nothing changed), or
 * another error (then iso->fatal is set).
 */
static int
isolate_send(struct isolate *iso, const uint32_t *marks, size_t n,
    const struct render_elems *want)
{
	struct render_elems have, del, add;
	int rc;

	render_elems_init(&have);
	render_elems_init(&del);
	render_elems_init(&add);
	if ((rc = kernel_owned(iso, marks, n, &have)) == 0 &&
	    (rc = elems_minus(&have, want, &del)) == 0 &&
	    (rc = elems_minus(want, &have, &add)) == 0 &&
	    del.n + add.n > 0) {
		rc = isolate_batch(iso, &del, &add);
	}
	if (rc != 0 && rc != EGW_E_NFT)
		iso->fatal = rc;
	render_elems_free(&have);
	render_elems_free(&del);
	render_elems_free(&add);
	return rc;
}

static struct change *
recon_result(struct recon *r, const char *sid)
{
	for (size_t i = 0; i < r->results.n; i++)
		if (strcmp(r->results.v[i].sid, sid) == 0)
			return &r->results.v[i];
	return NULL;
}

/* Memory becomes what the kernel was given (or kept) for @s. */
static void
isolate_settle(struct isolate *iso, struct scen *s, struct render_elems *got,
    const char *why)
{
	struct change *c = recon_result(iso->r, s->scenario_id);

	render_elems_free(&s->elems);
	s->elems = *got;
	render_elems_init(got);
	s->hash = elems_hash(&s->elems);
	iso->refused++;
	if (c != NULL) {
		c->ok = false;
		if (c->why[0] == '\0')
			snprintf(c->why, sizeof(c->why), "%s", why);
		/* refused again as before: no new status, no new event */
		c->exists = !(c->stored_failed && c->stored_why_hash == hash_str(c->why));
		if (c->exists && !c->counted)
			iso->r->status_writes++;
		else if (!c->exists && c->counted)
			iso->r->status_writes--;
		c->counted = c->exists;
	}
	log_warnx("scenario %s: the kernel refused its elements (%s); %s",
	    s->scenario_id, why, s->elems.n ? "failed closed (baseline)" :
	    "removed from the table (its sources fall to the managed networks)");
}

/* A single scenario the kernel refused. */
static void
isolate_one(struct isolate *iso, struct scen *s)
{
	struct render_elems alt;
	char why[KERNEL_ERR_MAX];
	int rc;

	snprintf(why, sizeof(why), "%s", iso->err);
	render_elems_init(&alt);
	failed_baseline(iso->a, s->scenario_id, &alt);
	render_elems_sort(&alt);
	if (alt.n > 0 && (rc = isolate_send(iso, &s->mark, 1, &alt)) != EGW_E_NFT) {
		if (rc == 0)
			isolate_settle(iso, s, &alt, why);
		render_elems_free(&alt);
		return;
	}
	render_elems_free(&alt);
	render_elems_init(&alt);
	if ((rc = isolate_send(iso, &s->mark, 1, &alt)) == 0) {
		isolate_settle(iso, s, &alt, why);
		return;
	}
	if (rc == EGW_E_NFT) {
		/* not even its removal: memory holds what the kernel kept */
		(void)kernel_owned(iso, &s->mark, 1, &alt);
		isolate_settle(iso, s, &alt, why);
	}
	render_elems_free(&alt);
}

/* Scenarios @v[0..n) (sorted by mark) as one transaction, halved on refusal. */
static void
isolate_group(struct isolate *iso, struct scen **v, size_t n)
{
	struct render_elems want;
	uint32_t *marks;
	int rc = EGW_E_NOMEM;

	if (n == 0 || iso->fatal)
		return;
	render_elems_init(&want);
	if ((marks = malloc(n * sizeof(*marks))) != NULL) {
		rc = 0;
		for (size_t i = 0; i < n && rc == 0; i++) {
			marks[i] = v[i]->mark;
			for (size_t j = 0; j < v[i]->elems.n && rc == 0; j++)
				rc = render_elems_push(&want, &v[i]->elems.v[j]);
		}
	}
	if (rc == 0) {
		render_elems_sort(&want);
		rc = isolate_send(iso, marks, n, &want);
	} else {
		iso->fatal = rc;
	}
	free(marks);
	render_elems_free(&want);
	if (rc != EGW_E_NFT)
		return;
	if (n == 1) {
		isolate_one(iso, v[0]);
		return;
	}
	isolate_group(iso, v, n / 2);
	isolate_group(iso, v + n / 2, n - n / 2);
}

/* Every element memory holds, the global ones and each scenario's, sorted. */
static int
memory_elems(const struct applier *a, struct render_elems *out)
{
	int rc = 0;

	for (size_t i = 0; i < a->global.n && rc == 0; i++)
		rc = render_elems_push(out, &a->global.v[i]);
	for (size_t s = 0; s < a->cap && rc == 0; s++)
		for (size_t i = 0; a->scens[s].used && i < a->scens[s].elems.n &&
		    rc == 0; i++)
			rc = render_elems_push(out, &a->scens[s].elems.v[i]);
	if (rc == 0)
		render_elems_sort(out);
	return rc;
}

/*
 * Delete what the kernel holds and memory does not want, one transaction;
 * on success the kernel view drops them.  Returns 0, EGW_E_NFT (refused)
 * or another error (iso->fatal set).
 */
static int
isolate_unwanted(struct isolate *iso)
{
	struct render_elems all, del, rest;
	int rc;

	render_elems_init(&all);
	render_elems_init(&del);
	render_elems_init(&rest);
	if ((rc = memory_elems(iso->a, &all)) == 0)
		rc = elems_minus(&iso->kv, &all, &del);
	if (rc == 0 && del.n > 0) {
		rc = isolate_batch(iso, &del, &rest);
	}
	if (rc != 0 && rc != EGW_E_NFT)
		iso->fatal = rc;
	render_elems_free(&all);
	render_elems_free(&del);
	render_elems_free(&rest);
	return rc;
}

static int
scen_ptr_mark_cmp(const void *x, const void *y)
{
	const struct scen *a = *(struct scen *const *)x, *b = *(struct scen *const *)y;

	return a->mark < b->mark ? -1 : a->mark > b->mark;
}

/*
 * Whether what memory now holds (the kernel's table after an isolated
 * reconcile) differs from @ks, the table before it: the refused scenario's
 * elements go out and back in on the way, which is no drift.
 */
static bool
memory_differs(struct applier *a, const struct kernel_state *ks)
{
	struct render_elems now;
	bool differs = true;

	render_elems_init(&now);
	if (memory_elems(a, &now) == 0) {
		differs = now.n != ks->elems.n;
		for (size_t i = 0; !differs && i < now.n; i++)
			differs = render_elem_cmp(&now.v[i], &ks->elems.v[i]) != 0;
	}
	render_elems_free(&now);
	return differs;
}

/*
 * After the kernel refused reconcile's transaction.  @ks: the table as
 * read before it.  Returns 0 when every scenario is in the kernel as
 * memory now says (the refused ones failed), else an error in @err.
 */
static int
reconcile_isolated(struct applier *a, struct recon *r,
    const struct kernel_state *ks, size_t *changed, char *err, size_t errlen)
{
	struct isolate iso = { .a = a, .r = r };
	struct scen **live = NULL;
	uint32_t *marks = NULL, zero = 0;
	size_t n_live = 0, n_orphans = 0;
	struct render_elems none, global;
	int rc = 0;

	render_elems_init(&iso.kv);
	render_elems_init(&none);
	render_elems_init(&global);
	if (!ks->exists || !ks->skeleton_ok) {
		/* the skeleton and the global elements alone, one transaction */
		char *text = render_full_text(&a->rc, a->global.v, a->global.n,
		    ks->exists);

		rc = text ? kernel_run_text(a->k, text, false, iso.err,
		    sizeof(iso.err)) : EGW_E_NOMEM;
		free(text);
		if (rc != 0)
			goto out;
		a->table_fresh = true;
		iso.changed++;		/* the table itself: drift when it existed */
		for (size_t i = 0; i < a->global.n && rc == 0; i++)
			rc = render_elems_push(&iso.kv, &a->global.v[i]);
		render_elems_sort(&iso.kv);
	} else {
		for (size_t i = 0; i < ks->elems.n && rc == 0; i++)
			rc = render_elems_push(&iso.kv, &ks->elems.v[i]);
	}
	if (rc != 0 ||
	    (live = malloc((a->cap ? a->cap : 1) * sizeof(*live))) == NULL ||
	    (marks = malloc((iso.kv.n + 1) * sizeof(*marks))) == NULL) {
		rc = EGW_E_NOMEM;
		goto out;
	}
	for (size_t s = 0; s < a->cap; s++)
		if (a->scens[s].used)
			live[n_live++] = &a->scens[s];
	qsort(live, n_live, sizeof(*live), scen_ptr_mark_cmp);

	/* the global elements, then what scenarios no longer here left */
	for (size_t i = 0; i < a->global.n && rc == 0; i++)
		rc = render_elems_push(&global, &a->global.v[i]);
	render_elems_sort(&global);
	if (rc != 0 || (rc = isolate_send(&iso, &zero, 1, &global)) != 0)
		goto out;
	/*
	 * Then, in one transaction, everything memory does not want: a
	 * source moving from one scenario to another must leave the first
	 * before the second (maybe in an earlier half) can take it.
	 */
	if ((rc = isolate_unwanted(&iso)) == EGW_E_NFT) {
		/* refused: at least the scenarios no longer here, by mark */
		for (size_t i = 0; i < iso.kv.n; i++) {
			uint32_t m = render_elem_owner(&iso.kv.v[i]);
			struct scen key = { .mark = m }, *kp = &key;

			if (m != 0 && (n_orphans == 0 || marks[n_orphans - 1] != m) &&
			    bsearch(&kp, live, n_live, sizeof(*live),
			    scen_ptr_mark_cmp) == NULL)
				marks[n_orphans++] = m;
		}
		qsort(marks, n_orphans, sizeof(*marks), mark_cmp);
		rc = n_orphans > 0 ? isolate_send(&iso, marks, n_orphans, &none) : 0;
	}
	if (rc != 0)
		goto out;
	isolate_group(&iso, live, n_live);
	rc = iso.fatal;
	if (rc == 0 && ks->exists && ks->skeleton_ok)
		iso.changed = memory_differs(a, ks);
out:
	*changed = iso.changed;
	if (rc != 0)
		snprintf(err, errlen, "%s", iso.err[0] ? iso.err : err_message(rc));
	else
		log_warnx("reconcile isolated: %zu transactions, %zu "
		    "scenario(s) failed closed", iso.batches, iso.refused);
	free(live);
	free(marks);
	render_elems_free(&iso.kv);
	render_elems_free(&global);
	return rc;
}


static int
reconcile(struct applier *a, const char *trigger)
{
	struct recon r = { .a = a };
	struct kernel_state ks = { 0 };
	struct render_elems want, del, add;
	int64_t t0 = now_us();
	char err[KERNEL_ERR_MAX] = "", drift[512] = "";
	const char *path = "none";
	char *text = NULL;
	bool read_failed = false;
	int rc;

	render_elems_init(&want);
	render_elems_init(&del);
	render_elems_init(&add);
	render_config_from(&a->cfg, &a->rc);
	if ((rc = load_profiles(a)) != 0 ||
	    (rc = store_generation(a->st, &r.desired, NULL)) != 0)
		return rc;
	/*
	 * From here memory is rebuilt as the desired state, before the
	 * kernel has it: trusted again only once the kernel accepted it.
	 */
	a->view_trusted = false;
	render_elems_free(&a->global);
	render_elems_init(&a->global);
	if ((rc = render_global(&a->rc, profile_find(a, "none"), &a->global)) != 0) {
		log_errorx("managed sources do not render (%s)", err_message(rc));
		return rc;
	}
	for (size_t s = 0; s < a->cap; s++)
		a->scens[s].seen = false;
	if ((rc = store_policy_list(a->st, NULL, 0, recon_policy, &r, NULL)) != 0)
		goto out;
	for (size_t s = 0; s < a->cap; s++)
		if (a->scens[s].used && !a->scens[s].seen) {
			scen_remove(a, &a->scens[s]);
			s--;	/* backward shift may have moved one here */
		}
	recon_source_conflicts(&r);
	double db_ms = ms_since(t0);

	/* a partial list would delete live elements: all or nothing */
	for (size_t i = 0; i < a->global.n && rc == 0; i++)
		rc = render_elems_push(&want, &a->global.v[i]);
	for (size_t s = 0; s < a->cap && rc == 0; s++) {
		if (!a->scens[s].used)
			continue;
		a->scens[s].hash = elems_hash(&a->scens[s].elems);
		for (size_t i = 0; i < a->scens[s].elems.n && rc == 0; i++)
			rc = render_elems_push(&want, &a->scens[s].elems.v[i]);
	}
	if (rc != 0)
		goto out;
	render_elems_sort(&want);

	if (a->cfg.dry_run) {
		uint64_t h = content_hash(a);

		/* the same content was validated already: nothing to check */
		if (h != a->validated_hash) {
			path = "dry-run";
			text = render_full_text(&a->rc, want.v, want.n, true);
			rc = text ? kernel_run_text(a->k, text, true, err,
			    sizeof(err)) : EGW_E_NOMEM;
			if (rc == 0)
				a->validated_hash = h;
		}
	} else if ((rc = kernel_read_state(a->k, &a->rc, &ks)) != 0) {
		read_failed = true;
		/* EPERM without CAP_NET_ADMIN, say: it failed like a refused
		 * transaction, so it is logged and recorded the same way */
		int e = errno;

		snprintf(err, sizeof(err), "cannot read the table: %s",
		    e != 0 ? strerror(e) : err_message(rc));
	} else {
		if (!ks.exists && want.n >= CREATE_FAST_MIN_ELEMS) {
			/*
			 * Nothing to keep atomic with: the fast cold start.
			 * (Below a few thousand elements one text transaction
			 * is as fast: the three steps cost more than they save.)
			 */
			rc = kernel_create(a->k, &a->rc, want.v, want.n, err,
			    sizeof(err));
			if (rc != 0)
				log_warnx("cold start failed (%s); one transaction "
				    "instead", err);
		}
		if (!ks.exists && want.n >= CREATE_FAST_MIN_ELEMS && rc == 0) {
			a->table_fresh = true;
			path = "create";
		} else if (!ks.exists || !ks.skeleton_ok) {
			path = ks.exists ? "replace" : "create-text";
			if (ks.exists)
				snprintf(drift, sizeof(drift), "skeleton: %s",
				    ks.skeleton_why);
			text = render_full_text(&a->rc, want.v, want.n, ks.exists);
			rc = text ? kernel_run_text(a->k, text, false, err, sizeof(err)) :
			    EGW_E_NOMEM;
			if (rc == 0)
				a->table_fresh = true;
		} else {
			if ((rc = elems_minus(&ks.elems, &want, &del)) != 0 ||
			    (rc = elems_minus(&want, &ks.elems, &add)) != 0)
				snprintf(err, sizeof(err), "out of memory");
			else if (del.n || add.n) {
				path = "elements";
				snprintf(drift, sizeof(drift), "%zu unexpected and %zu "
				    "missing elements", del.n, add.n);
				rc = kernel_elems_batch(a->k, &a->rc, del.v, del.n,
				    add.v, add.n, err, sizeof(err));
			}
		}
	}
	/* Only a write the kernel refused: after a failed read nothing is
	 * known about the table to isolate against. */
	if (rc == EGW_E_NFT && !a->cfg.dry_run && !read_failed) {
		log_warnx("reconcile (%s): the kernel refused it (%s); isolating",
		    trigger, err);
		size_t changed = 0;

		rc = reconcile_isolated(a, &r, &ks, &changed, err, sizeof(err));
		path = "isolated";
		/* the same refusal as last time, nothing else: no drift */
		if (changed == 0)
			drift[0] = '\0';
	}
	double dur = ms_since(t0), kern_ms = dur - db_ms;
	if (rc != 0) {
		log_errorx("reconcile (%s) failed: %s", trigger, err);
		if (store_begin(a->st) == 0) {
			store_applier_record(a->st, a->applied_gen, a->cfg.dry_run,
			    dur, err[0] ? err : err_message(rc), NULL);
			audit_apply_event(a->st, false, r.desired, NULL, err);
			store_commit(a->st);
		}
		goto out;
	}
	a->view_trusted = true;
	if ((rc = store_begin(a->st)) != 0)
		goto out;
	/*
	 * Statuses: one statement marks every policy up to this generation
	 * applied, then the failed ones are written one by one.  (A call per
	 * scenario costs a table scan each in store_policy_set_apply_result:
	 * 10 s at 10,000 policies.)
	 */
	if (r.status_writes > 0)
		store_policy_set_apply_result(a->st, NULL, r.desired,
		    POLICY_APPLY_APPLIED, NULL);
	for (size_t i = 0; i < r.results.n; i++) {
		struct change *c = &r.results.v[i];

		/* an unchanged failure is rewritten after the bulk statement */
		if (c->ok || (!c->exists && r.status_writes == 0))
			continue;
		store_applier_set_status(a->st, c->sid, r.desired,
		    POLICY_APPLY_FAILED, c->why);
		if (c->exists)
			audit_apply_event(a->st, false, r.desired, c->sid, c->why);
	}
	if (drift[0] && ks.exists)
		audit_drift_event(a->st, r.desired, drift);
	/* One summary event when a reconcile moved the generation (start-up
	 * after downtime, a coalesced burst); per-scenario failures above. */
	if (r.desired != a->applied_gen)
		audit_apply_event(a->st, true, r.desired, NULL, NULL);
	a->applied_gen = r.desired;
	a->last_dur_ms = dur;
	store_applier_record(a->st, r.desired, a->cfg.dry_run, dur, NULL, NULL);
	/* the multi-MB text only when its content changed */
	if (store_text_if_changed(a) != 0)
		log_warnx("cannot store the rendered ruleset");
	if ((rc = store_commit(a->st)) != 0) {
		a->stored_hash = 0;
		goto out;
	}
	a->rendered_dirty = false;
	a->rendered_dirty_since = 0;
	a->rendered_first_dirty = 0;
	{
		char g[24], d[32], n[24], tot[32], dbm[32], km[32];

		snprintf(g, sizeof(g), "%lld", (long long)r.desired);
		snprintf(d, sizeof(d), "%.3f", dur);
		snprintf(dbm, sizeof(dbm), "%.3f", db_ms);
		snprintf(km, sizeof(km), "%.3f", kern_ms);
		snprintf(tot, sizeof(tot), "%.3f", ms_since(t0));
		snprintf(n, sizeof(n), "%zu", want.n);
		log_kv(drift[0] ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
		    ((const char *[]){ "generation", g, "dur_ms", d, "total_ms", tot,
		    "db_ms", dbm, "kernel_ms", km, "elements", n, "trigger", trigger, "path", path,
		    "drift", drift[0] ? drift : NULL, NULL }),
		    "reconciled%s", a->cfg.dry_run ? " (dry run)" : "");
	}
out:
	free(text);
	free(r.results.v);
	render_elems_free(&ks.elems);
	render_elems_free(&want);
	render_elems_free(&del);
	render_elems_free(&add);
	return rc;
}

/* ---- counters, heartbeat, rendered text ---- */

static const struct kernel_counter *
counter_find(const struct kernel_counter *kc, size_t n, uint32_t mark)
{
	size_t lo = 0, hi = n;

	/* kernel_read_counters() returns them sorted by mark */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (kc[mid].mark == mark)
			return &kc[mid];
		if (kc[mid].mark < mark)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static uint64_t
delta(uint64_t now, uint64_t base)
{
	/* below the baseline: a table we did not see recreated; count from 0 */
	return now >= base ? now - base : now;
}

/*
 * The marks of @kc that no scenario holds any more (policy deleted or
 * expired; a scenario created again gets a new mark), into @stale (n
 * entries).  Mark 0 (the managed networks without a policy) is never
 * stale.  Returns how many.
 */
static size_t
stale_counters(const struct applier *a, const struct kernel_counter *kc,
    size_t n, struct kernel_counter *stale)
{
	uint32_t *live = malloc((a->cap ? a->cap : 1) * sizeof(*live));
	size_t n_live = 0, n_stale = 0;

	if (live == NULL)
		return 0;
	for (size_t s = 0; s < a->cap; s++)
		if (a->scens[s].used)
			live[n_live++] = a->scens[s].mark;
	qsort(live, n_live, sizeof(*live), mark_cmp);
	for (size_t i = 0; i < n; i++)
		if (kc[i].mark != 0 &&
		    bsearch(&kc[i].mark, live, n_live, sizeof(*live), mark_cmp) == NULL)
			stale[n_stale++] = kc[i];
	free(live);
	return n_stale;
}

static void
counters_of(const struct kernel_counter *c, uint64_t k[STORE_COUNTERS])
{
	k[0] = c->allowed_packets;
	k[1] = c->allowed_bytes;
	k[2] = c->denied_packets;
	k[3] = c->denied_bytes;
}

/* A row of policy_counters that holds kernel values: the baseline of
 * whatever its mark counts from here on. */
struct stored_base {
	uint32_t mark;
	char sid[POLICY_SCENARIO_ID_MAX + 1];
	uint64_t k[STORE_COUNTERS];
};

struct stored_bases {
	struct stored_base *v;
	size_t n, cap;
	bool oom;
};

static void
stored_base_cb(const char *sid, uint32_t mark, const uint64_t k[STORE_COUNTERS],
    void *ctx)
{
	struct stored_bases *b = ctx;
	struct stored_base *e;

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct stored_base *v = realloc(b->v, cap * sizeof(*v));

		if (v == NULL) {
			b->oom = true;
			return;
		}
		b->v = v;
		b->cap = cap;
	}
	e = &b->v[b->n++];
	e->mark = mark;
	snprintf(e->sid, sizeof(e->sid), "%s", sid);
	memcpy(e->k, k, sizeof(e->k));
}

static int
stored_base_cmp(const void *x, const void *y)
{
	return mark_cmp(&((const struct stored_base *)x)->mark,
	    &((const struct stored_base *)y)->mark);
}

static const struct stored_base *
stored_base_find(const struct stored_bases *b, uint32_t mark)
{
	struct stored_base key = { .mark = mark };

	return b->n ? bsearch(&key, b->v, b->n, sizeof(*b->v), stored_base_cmp)
	    : NULL;
}

/* Add d = k - base (per counter) to @sid's row, with k as its baseline. */
static int
add_counts(struct applier *a, const char *sid, uint32_t mark,
    const uint64_t k[STORE_COUNTERS], const uint64_t base[STORE_COUNTERS])
{
	uint64_t d[STORE_COUNTERS];

	for (int j = 0; j < STORE_COUNTERS; j++)
		d[j] = base ? delta(k[j], base[j]) : k[j];
	if (!(d[0] || d[1] || d[2] || d[3]))
		return 0;
	return store_applier_counters_add(a->st, sid, d, mark, k);
}

/*
 * Add what the kernel counted since the last read to policy_counters,
 * together with the kernel's values as the next baseline.  Baselines:
 * when this process created or replaced the table, the kernel counts from
 * 0, so everything it holds is new (a->table_fresh) and the stored kernel
 * values are forgotten.  Otherwise a scenario's baseline is what memory
 * read last; for one memory has not read yet (the first read of a run
 * over a table that persisted, a scenario added since), the kernel values
 * stored for its mark: what the kernel counted after that, even up to a
 * SIGKILL, is added now and nothing twice.  Memory takes the new
 * baselines only once they are committed: a failed write is counted again
 * at the next read, not lost.
 *
 * A mark no scenario holds any more (policy deleted or expired; a
 * scenario created again gets a new mark) gets its last counts added to
 * the row that stored that mark, first (the row then goes on under the
 * new mark, if any), and after the commit it is removed from the kernel's
 * counter sets: packets fill those sets and nothing else empties them;
 * left there, every scenario ever counted would be dumped at every read,
 * and once the sets were full (1,048,576 marks) new scenarios would go
 * uncounted.  Only while memory is what the kernel holds: a mark memory
 * has not caught up with yet must keep its counts.
 */
static void
read_counters(struct applier *a)
{
	struct kernel_counter *kc = NULL, *stale = NULL;
	struct stored_bases bases = { 0 };
	bool forget = a->table_fresh, need_bases = false;
	size_t n = 0, n_stale = 0;
	char err[KERNEL_ERR_MAX];
	int rc;

	if (a->cfg.dry_run)
		return;
	if ((rc = kernel_read_counters(a->k, &kc, &n)) != 0) {
		int e = errno;

		/* once per spell of failures: a missing table says so already;
		 * a failed read is no refusal, the system call says what */
		if (!a->counters_failing && rc != EGW_E_NOTFOUND)
			log_warnx("cannot read the kernel's counters: %s",
			    rc == EGW_E_NFT && e != 0 ? strerror(e) :
			    err_message(rc));
		a->counters_failing = true;
		return;
	}
	a->counters_failing = false;
	if (a->view_trusted && n > 0 && (stale = malloc(n * sizeof(*stale))) != NULL)
		n_stale = stale_counters(a, kc, n, stale);
	for (size_t s = 0; s < a->cap && !need_bases; s++)
		need_bases = a->scens[s].used && !a->scens[s].have_counters;
	if ((!forget && need_bases) || n_stale > 0) {
		if ((rc = store_applier_counters_baselines(a->st, stored_base_cb,
		    &bases)) != 0 || (rc = bases.oom ? EGW_E_NOMEM : 0) != 0)
			goto out;
		if (bases.n > 0)	/* qsort takes no NULL, even for 0 */
			qsort(bases.v, bases.n, sizeof(*bases.v), stored_base_cmp);
	}
	if ((rc = store_begin(a->st)) != 0)
		goto out;
	/* before the fresh table's forgetting: it clears the marks rows
	 * are found by; a fresh table counted everything from 0 */
	for (size_t i = 0; i < n_stale; i++) {
		const struct stored_base *b = stored_base_find(&bases, stale[i].mark);
		uint64_t k[STORE_COUNTERS];

		counters_of(&stale[i], k);
		if (b != NULL && (rc = add_counts(a, b->sid, stale[i].mark, k,
		    forget ? NULL : b->k)) != 0)
			goto rollback;
	}
	if (forget && (rc = store_applier_counters_forget_kernel(a->st)) != 0)
		goto rollback;
	for (size_t s = 0; s < a->cap; s++) {
		struct scen *x = &a->scens[s];
		const struct kernel_counter *c;
		const struct stored_base *b;
		uint64_t k[STORE_COUNTERS], mem[STORE_COUNTERS];
		const uint64_t *base = mem;

		if (!x->used || (c = counter_find(kc, n, x->mark)) == NULL)
			continue;
		counters_of(c, k);
		mem[0] = x->k_allow_pk;
		mem[1] = x->k_allow_by;
		mem[2] = x->k_deny_pk;
		mem[3] = x->k_deny_by;
		if (forget)
			base = NULL;	/* a fresh table counts from 0 */
		else if (!x->have_counters)
			base = (b = stored_base_find(&bases, x->mark)) != NULL &&
			    strcmp(b->sid, x->scenario_id) == 0 ? b->k : NULL;
		if ((rc = add_counts(a, x->scenario_id, x->mark, k, base)) != 0)
			goto rollback;
	}
	if ((rc = store_commit(a->st)) != 0)
		goto out;
	for (size_t s = 0; s < a->cap; s++) {
		struct scen *x = &a->scens[s];
		const struct kernel_counter *c;

		if (!x->used)
			continue;
		if ((c = counter_find(kc, n, x->mark)) == NULL) {
			if (forget)
				x->k_allow_pk = x->k_allow_by = x->k_deny_pk =
				    x->k_deny_by = 0;
			continue;
		}
		x->k_allow_pk = c->allowed_packets;
		x->k_allow_by = c->allowed_bytes;
		x->k_deny_pk = c->denied_packets;
		x->k_deny_by = c->denied_bytes;
		x->have_counters = true;
	}
	a->table_fresh = false;
	if (n_stale > 0) {
		if ((rc = kernel_counters_drop(a->k, stale, n_stale, err,
		    sizeof(err))) != 0)
			log_warnx("cannot drop the counters of %zu removed scenarios "
			    "(next read tries again): %s", n_stale, err);
		else
			log_info("dropped the counters of %zu removed scenarios",
			    n_stale);
		rc = 0;
	}
	goto out;
rollback:
	store_rollback(a->st);
out:
	if (rc != 0)
		log_warnx("counters not stored (next read tries again): %s",
		    err_message(rc));
	free(bases.v);
	free(stale);
	free(kc);
}

/* @running false: the last report, on a clean stop, so that readiness
 * does not wait for the heartbeat to grow stale. */
static void
heartbeat(struct applier *a, bool running)
{
	char info[256];

	snprintf(info, sizeof(info), "{\"applied_generation\":%lld,"
	    "\"dry_run\":%s,\"applies\":%lu,\"bad_messages\":%lu,"
	    "\"running\":%s}",
	    (long long)a->applied_gen, a->cfg.dry_run ? "true" : "false",
	    a->applies, a->bad_msgs, running ? "true" : "false");
	if (store_begin(a->st) == 0) {
		store_applier_heartbeat(a->st, info);
		store_commit(a->st);
	}
}

static void
store_rendered(struct applier *a)
{
	if (store_begin(a->st) == 0) {
		if (store_text_if_changed(a) == 0)
			store_commit(a->st);
		else
			store_rollback(a->st);
	}
	a->rendered_dirty = false;
	a->rendered_dirty_since = 0;
	a->rendered_first_dirty = 0;
}

/* ---- nudge socket ---- */

static int
open_socket(const char *path)
{
	struct sockaddr_un sun;
	mode_t old_mask;
	int fd, rc;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_errorx("EGW_APPLIER_SOCKET too long: %s", path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (instance_claim_socket(path, SOCK_DGRAM) != 0) {
		close(fd);
		return -1;
	}
	/* The mode comes with the bind: a chmod by name after it would
	 * follow whatever the run directory's owner (the service user, when
	 * root runs this by hand) put at that name meanwhile.  Start-up is
	 * single-threaded, so the umask is this thread's alone. */
	old_mask = umask(0117);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_mask);
	if (rc != 0) {
		log_error("bind %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

/* Drain the socket; true when at least one valid nudge arrived. */
static bool
drain_socket(struct applier *a)
{
	struct applier_msg m;
	bool nudged = false;
	ssize_t n;

	while ((n = recv(a->sock, &m, sizeof(m), MSG_DONTWAIT | MSG_TRUNC)) >= 0) {
		if (n != (ssize_t)sizeof(m) || m.magic != APPLIER_MSG_MAGIC ||
		    m.version != APPLIER_MSG_VERSION || m.type != APPLIER_MSG_NUDGE) {
			a->bad_msgs++;
			continue;
		}
		nudged = true;
	}
	return nudged;
}

/*
 * After a reconcile: while the view stays untrusted (the kernel refused,
 * or the database failed), retry after RECOVER_MIN_MS, doubling up to the
 * reconcile interval, so a transient failure heals within a second or
 * two, and a kernel that keeps refusing (no CAP_NET_ADMIN) costs one
 * reconcile per interval rather than one per database commit (another
 * process's commit is "work" as well).
 */
static void
schedule_recover(struct applier *a, int64_t now)
{
	int64_t cap = (int64_t)a->cfg.reconcile_interval_s * 1000;

	if (a->view_trusted) {
		a->recover_backoff_ms = 0;
		return;
	}
	if (a->recover_backoff_ms == 0)
		a->recover_backoff_ms = RECOVER_MIN_MS;
	else if ((a->recover_backoff_ms *= 2) > cap)
		a->recover_backoff_ms = cap > RECOVER_MIN_MS ? cap : RECOVER_MIN_MS;
	a->recover_at = now + a->recover_backoff_ms;
}

static void
usage(void)
{
	fprintf(stderr, "usage: egw-applier [-n] [-1]\n"
	    "  -n  check the configuration and exit\n"
	    "  -1  reconcile once and exit\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct applier a;
	bool check_only = false, once = false;
	int64_t next_reconcile, next_counters, next_heartbeat;
	int ch, rc;

	while ((ch = getopt(argc, argv, "n1")) != -1) {
		switch (ch) {
		case 'n':
			check_only = true;
			break;
		case '1':
			once = true;
			break;
		default:
			usage();
		}
	}
	memset(&a, 0, sizeof(a));
	a.sock = -1;
	config_load_env(&a.cfg, "egw-applier");
	{
		char err[CONFIG_ERR_MAX];

		if (config_check_scope(&a.cfg, err, sizeof(err)) != 0) {
			fprintf(stderr, "egw-applier: configuration error: %s\n", err);
			return 2;
		}
	}
	log_init("applier", a.cfg.log_level);
	render_config_from(&a.cfg, &a.rc);
	if (check_only) {
		char *t = render_skeleton_text(&a.rc);

		if (t == NULL)
			return 1;
		free(t);
		printf("egw-applier: configuration OK (dry_run=%s, db=%s, socket=%s)\n",
		    a.cfg.dry_run ? "true" : "false", a.cfg.db_path,
		    a.cfg.applier_socket);
		return 0;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Two appliers would fight over one table (a one-shot run too);
	 * the table is the namespace's, whatever the run directory.  A dry
	 * run writes no table (and tests run several side by side). */
	if (instance_lock(a.cfg.run_dir, "egw-applier") != 0 ||
	    (!a.cfg.dry_run && instance_lock_netns("egw-applier") != 0))
		return 1;
	if ((rc = store_open(a.cfg.db_path, &a.st)) != 0) {
		log_errorx("cannot open %s: %s", a.cfg.db_path, err_message(rc));
		return 1;
	}
	/*
	 * The applier's own rows (statuses, applied generation, counters)
	 * can be recomputed from the kernel and the policies at any start,
	 * so its commits need not wait for an fsync each (WAL: NORMAL is
	 * consistent, only the last commits may roll back on power loss).
	 */
	if (store_exec(a.st, "PRAGMA synchronous = NORMAL") != 0)
		log_warnx("cannot relax synchronous; commits stay FULL");
	if ((rc = kernel_open(&a.k)) != 0) {
		log_error("netfilter netlink unavailable (CAP_NET_ADMIN?)");
		store_close(a.st);
		return 1;
	}
	if (!once && (a.sock = open_socket(a.cfg.applier_socket)) < 0) {
		kernel_close(a.k);
		store_close(a.st);
		return 1;
	}
	log_info("started (dry_run=%s)", a.cfg.dry_run ? "true" : "false");

	if (store_applier_rendered_hash(a.st, &a.stored_hash) != 0)
		a.stored_hash = 0;
	rc = reconcile(&a, "start");
	/*
	 * Counter baseline now, not at the first periodic read 5 s later:
	 * a persisted table's values are the baseline, a new table's count
	 * from 0 (read_counters()).
	 */
	read_counters(&a);
	if (once)
		goto done;
	schedule_recover(&a, timefmt_monotonic_ms());
	a.data_version = store_data_version(a.st);
	next_reconcile = timefmt_monotonic_ms() + (int64_t)a.cfg.reconcile_interval_s * 1000;
	next_counters = timefmt_monotonic_ms() + COUNTERS_MS;
	next_heartbeat = 0;
	while (!got_term) {
		struct pollfd pfd = { .fd = a.sock, .events = POLLIN };
		int64_t now, dv;
		bool work;

		poll(&pfd, 1, POLL_MS);
		work = drain_socket(&a);
		dv = store_data_version(a.st);
		if (dv != a.data_version) {
			a.data_version = dv;
			work = true;
		}
		if (work) {
			/* let a burst of commits land, then take them all at once */
			usleep(COALESCE_MS * 1000);
			drain_socket(&a);
			/*
			 * An untrusted view waits for the recover reconcile
			 * below: that one reads the kernel, and takes this
			 * change with everything else.
			 */
			if (a.view_trusted && (apply_incremental(&a) != 0 ||
			    !a.view_trusted)) {
				log_warnx("incremental apply failed; reconciling");
				a.view_trusted = false;
				a.recover_at = 0;	/* at once */
			}
			a.data_version = store_data_version(a.st);
		}
		now = timefmt_monotonic_ms();
		if (got_hup || now >= next_reconcile) {
			bool hup = got_hup;

			/* cleared first: a SIGHUP during this reconcile asks
			 * for another one */
			got_hup = 0;
			reconcile(&a, hup ? "sighup" : "interval");
			a.data_version = store_data_version(a.st);
			next_reconcile = now + (int64_t)a.cfg.reconcile_interval_s * 1000;
			schedule_recover(&a, now);
		} else if (!a.view_trusted && now >= a.recover_at) {
			reconcile(&a, "recover");
			a.data_version = store_data_version(a.st);
			schedule_recover(&a, now);
		}
		if (now >= next_counters) {
			read_counters(&a);
			next_counters = now + COUNTERS_MS;
		}
		/*
		 * Rendering 10,000 scenarios' text takes tens of ms: do it when
		 * changes pause, so it never delays the next change, but at
		 * least every RENDER_STORE_MAX_MS under a steady stream.
		 */
		if (a.rendered_dirty &&
		    (now - a.rendered_dirty_since >= RENDER_STORE_MS ||
		    now - a.rendered_first_dirty >= RENDER_STORE_MAX_MS))
			store_rendered(&a);
		if (now >= next_heartbeat) {
			heartbeat(&a, true);
			next_heartbeat = now + HEARTBEAT_MS;
		}
	}
	read_counters(&a);
	if (a.rendered_dirty)
		store_rendered(&a);
	heartbeat(&a, false);
	log_info("stopping; the kernel keeps enforcing generation %lld",
	    (long long)a.applied_gen);
done:
	if (a.sock >= 0) {
		close(a.sock);
		unlink(a.cfg.applier_socket);
	}
	for (size_t s = 0; s < a.cap; s++)
		render_elems_free(&a.scens[s].elems);
	free(a.scens);
	free(a.profiles);
	free(a.unusable);
	render_elems_free(&a.global);
	kernel_close(a.k);
	store_close(a.st);
	return rc == 0 ? 0 : 1;
}
