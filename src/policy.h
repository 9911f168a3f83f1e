/* SPDX-License-Identifier: MIT */
/*
 * This file contains the policy model: one scenario's egress allowlist.
 *
 * A struct policy holds only typed values (see netaddr.h); it is what the
 * codec fills from JSON, what the store saves and loads, and what the
 * renderer turns into kernel elements.  Lists have fixed upper bounds so a
 * policy is one allocation and a hostile body cannot make one grow without
 * limit.  This module is pure: no I/O, no database.
 */
#ifndef EGW_POLICY_H
#define EGW_POLICY_H

#include "netaddr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;

#define POLICY_SCENARIO_ID_MAX 64	/* bytes, excluding NUL */
#define POLICY_NETWORK_ID_MAX 128
#define POLICY_PROFILE_MAX 64
#define POLICY_MAX_SOURCES 64
#define POLICY_MAX_INTERFACES 16
#define POLICY_MAX_DNS 8
#define POLICY_MAX_HOSTS 256
#define POLICY_MAX_PORTS 64
#define POLICY_MAX_RULES 256
#define POLICY_RULE_MAX_PORTS 16
#define POLICY_ERROR_MAX 512
#define POLICY_TIME_MAX 32

enum policy_mode {
	POLICY_MODE_ENFORCE = 0,
	POLICY_MODE_AUDIT		/* log would-be denials, drop nothing */
};

enum policy_apply_status {
	POLICY_APPLY_PENDING = 0,
	POLICY_APPLY_APPLIED,
	POLICY_APPLY_FAILED
};

/* One custom_rules entry: protocol, optional destination, optional ports. */
struct policy_rule {
	enum ip_proto proto;
	bool has_dest;			/* false: any destination */
	struct ip_prefix dest;
	size_t n_ports;			/* 0: any port (required for icmp/any) */
	struct port_range ports[POLICY_RULE_MAX_PORTS];
};

struct policy {
	/* Identity and selection */
	int64_t id;			/* store row id = packet mark; 0 if unsaved */
	char scenario_id[POLICY_SCENARIO_ID_MAX + 1];
	char network_id[POLICY_NETWORK_ID_MAX + 1];
	char profile[POLICY_PROFILE_MAX + 1];
	enum policy_mode mode;
	bool enabled;

	/* Which traffic is the scenario's */
	size_t n_sources;
	struct ip_prefix sources[POLICY_MAX_SOURCES];
	size_t n_interfaces;
	char interfaces[POLICY_MAX_INTERFACES][NETADDR_IFNAMSIZ];

	/* Resolvers; when !dns_servers_set the configured EGW_DNS_SERVERS apply */
	bool dns_servers_set;
	size_t n_dns_servers;
	struct ip_prefix dns_servers[POLICY_MAX_DNS];

	/* The policy's own allowlist (used by profiles such as "custom") */
	size_t n_hosts;
	struct ip_prefix hosts[POLICY_MAX_HOSTS];
	size_t n_ports;
	struct port_range ports[POLICY_MAX_PORTS];
	size_t n_rules;
	struct policy_rule rules[POLICY_MAX_RULES];

	/* Stored metadata; ignored on input except revision (see codec.h) */
	int64_t revision;		/* on input: see revision_given */
	/* Input only: the body named a revision.  It must then equal the
	 * stored one, 0 meaning "none stored yet" (create only). */
	bool revision_given;
	int64_t generation;
	int64_t applied_generation;
	char created_at[POLICY_TIME_MAX];
	char updated_at[POLICY_TIME_MAX];
	char completed_at[POLICY_TIME_MAX];	/* "" unless completed */
	enum policy_apply_status apply_status;
	char apply_error[POLICY_ERROR_MAX];
	/* Set by the store: a child row (source, resolver, destination)
	 * does not parse, so the lists hold only what came before it. */
	bool row_unparsable;
};

/* Validation problems, each with the JSON path of the offending value. */
#define POLICY_ERRORS_MAX 32

struct policy_error {
	char path[128];			/* JSON pointer, e.g. "/custom_rules/2/ports/0" */
	char reason[192];
};

struct policy_errors {
	size_t count;			/* problems recorded in items */
	size_t dropped;			/* problems beyond POLICY_ERRORS_MAX */
	bool claimed;			/* one is another live scenario's claim
					 * on a source or an interface */
	struct policy_error items[POLICY_ERRORS_MAX];
};

/**
 * policy_new() - allocate a zeroed policy with defaults (enforce, enabled)
 *
 * Returns: the policy, owned by the caller (free with policy_free), or NULL
 * when out of memory.
 */
struct policy *policy_new(void);

/**
 * policy_free() - release a policy; NULL is a no-op
 */
void policy_free(struct policy *p);

/**
 * policy_init() - reset a policy to the defaults policy_new() gives
 * @p: the policy (every field is overwritten)
 *
 * Defaults: everything zero/empty, profile "none", mode enforce, enabled,
 * dns_servers_set false, apply status pending.
 */
void policy_init(struct policy *p);

/**
 * policy_errors_init() - empty an error list
 */
void policy_errors_init(struct policy_errors *errs);

/**
 * policy_valid_profile_name() - check a profile name: 1..64 of [a-z0-9_-]
 *
 * Returns: true when acceptable (same rule as the profiles table's CHECK).
 */
bool policy_valid_profile_name(const char *name);

/**
 * policy_errors_add() - record one problem (printf-style reason)
 * @errs: the list
 * @path: JSON pointer of the offending value
 *
 * Counts into errs->dropped once the list is full.
 */
void policy_errors_add(struct policy_errors *errs, const char *path,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/**
 * policy_valid_id() - check a scenario_id or network_id
 * @id: the text
 * @max: maximum length in bytes
 * @allow_empty: whether "" is acceptable (network_id)
 *
 * Accepts 1..max of [A-Za-z0-9_.:-], starting with a letter or digit.
 *
 * Returns: true when acceptable.
 */
bool policy_valid_id(const char *id, size_t max, bool allow_empty);

/**
 * policy_validate() - semantic checks on a parsed policy
 * @p: the policy (fields already typed by the codec)
 * @errs: problems are appended here
 *
 * Checks what typing alone cannot: ids (scenario_id required), profile
 * name syntax, list sizes, duplicate or overlapping entries within one list
 * (sources, interfaces, dns_servers, allowed_hosts, allowed_ports,
 * custom_rules), icmp/any rules that carry ports, address families of
 * dns_servers (single addresses only).  Whether the profile exists and
 * whether another scenario already claims a source is the store's job.
 *
 * Returns: 0 when no problem was found, EGW_E_INVALID otherwise.
 */
int policy_validate(const struct policy *p, struct policy_errors *errs);

/**
 * policy_validate_for_gateway() - what this gateway's configuration asks of
 * a policy
 * @cfg: configuration (EGW_MANAGED_SOURCES, EGW_IFACE_TEMPLATE)
 * @p: the policy
 * @errs: problems are appended here ("/sources/N", "/network_id")
 *
 * When EGW_MANAGED_SOURCES names the scenario networks, every source must
 * lie inside one of them: a policy cannot claim the management network or
 * the uplink.  A policy that names no sources and no interfaces is
 * enforced on the interface derived from its network_id
 * (EGW_IFACE_TEMPLATE): that name must be one.  A policy without
 * network_id, sources and interfaces is accepted: it selects no traffic,
 * and the applier reports it "failed" with the reason.
 *
 * Returns: 0, or EGW_E_INVALID.
 */
int policy_validate_for_gateway(const struct config *cfg,
    const struct policy *p, struct policy_errors *errs);

/**
 * policy_mode_name() / policy_apply_status_name() - lower-case names
 *
 * Returns: static strings ("enforce", "audit"; "pending", "applied", "failed").
 */
const char *policy_mode_name(enum policy_mode mode);
const char *policy_apply_status_name(enum policy_apply_status status);

/**
 * policy_mode_parse() / policy_apply_status_parse() - inverse of the above
 *
 * Returns: 0 or EGW_E_INVALID.
 */
int policy_mode_parse(const char *text, enum policy_mode *out);
int policy_apply_status_parse(const char *text, enum policy_apply_status *out);

#endif
