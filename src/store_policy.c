/* SPDX-License-Identifier: MIT */
/*
 * This file contains the policy store (see store_policy.h).
 *
 * A mutation reads the stored row only after BEGIN IMMEDIATE has taken the
 * write lock, so the revision it compares and increments cannot change
 * underneath it: that is what makes concurrent puts from many processes
 * lose no update.  Child rows (sources, resolvers, destinations) are
 * rewritten whole at every put, position by position; they are small and
 * rewriting them keeps one spelling per value.  Values come back through
 * the netaddr parsers, so a row edited by hand into something unparsable
 * is reported as a database error rather than rendered.
 */
#include "store_policy.h"
#include "audit.h"
#include "codec.h"
#include "err.h"
#include "log.h"
#include "timefmt.h"

#include <errno.h>
#include <json-c/json.h>
#include <json-c/printbuf.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * A prefix as an index key: family byte, then the first (lo) and last (hi)
 * address of the prefix truncated to @len bits, in 16 bytes.  memcmp order
 * of the blobs is address order, which is what SQLite uses for BLOBs.
 */
#define PREFIX_KEY_LEN 17

static void
prefix_key(const struct ip_prefix *pfx, unsigned len, uint8_t lo[PREFIX_KEY_LEN],
    uint8_t hi[PREFIX_KEY_LEN])
{
	unsigned bits = pfx->family == AF_INET ? 32 : 128;

	memset(lo, 0, PREFIX_KEY_LEN);
	memset(hi, 0, PREFIX_KEY_LEN);
	lo[0] = hi[0] = pfx->family == AF_INET ? 4 : 6;
	for (unsigned b = 0; b < bits; b++) {
		uint8_t mask = (uint8_t)(0x80 >> (b % 8));

		if (b < len) {
			if (pfx->addr[b / 8] & mask) {
				lo[1 + b / 8] |= mask;
				hi[1 + b / 8] |= mask;
			}
		} else {
			hi[1 + b / 8] |= mask;
		}
	}
}

#define POLICY_COLUMNS \
	"id, scenario_id, network_id, profile, mode, enabled, dns_servers_set," \
	" revision, generation, created_at, updated_at, completed_at," \
	" apply_status, apply_error, applied_generation"

/* The stored document while it is current (sql/002): NULL when it was
 * never built or was built at another generation than the row's. */
#define CURRENT_DOC \
	"CASE WHEN api_json_generation = generation THEN api_json END"
/* The first columns of every query document_from_row() reads, in its
 * order; a query may add more after them. */
#define DOC_COLUMNS \
	"id, " CURRENT_DOC ", apply_status, apply_error, applied_generation"

static const char sql_by_sid[] =
    "SELECT " POLICY_COLUMNS " FROM policies WHERE scenario_id = ?1";
static const char sql_by_id[] =
    "SELECT " POLICY_COLUMNS " FROM policies WHERE id = ?1";

static int
step_err(int rc)
{
	int err = store_rc_to_err(rc);

	return err == 0 ? EGW_E_DB : err;
}

static char *
json_text(struct json_object *o)
{
	const char *s;
	char *copy = NULL;

	if (o == NULL)
		return NULL;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s != NULL)
		copy = strdup(s);
	json_object_put(o);
	return copy;
}

/* Main row into @p; children are loaded by load_children(). */
static void
policy_from_row(sqlite3_stmt *stmt, struct policy *p)
{
	char text[16];

	policy_init(p);
	p->id = sqlite3_column_int64(stmt, 0);
	store_col_text(stmt, 1, p->scenario_id, sizeof(p->scenario_id));
	store_col_text(stmt, 2, p->network_id, sizeof(p->network_id));
	store_col_text(stmt, 3, p->profile, sizeof(p->profile));
	store_col_text(stmt, 4, text, sizeof(text));
	if (policy_mode_parse(text, &p->mode) != 0)
		p->mode = POLICY_MODE_ENFORCE;
	p->enabled = sqlite3_column_int(stmt, 5) != 0;
	p->dns_servers_set = sqlite3_column_int(stmt, 6) != 0;
	p->revision = sqlite3_column_int64(stmt, 7);
	p->generation = sqlite3_column_int64(stmt, 8);
	store_col_text(stmt, 9, p->created_at, sizeof(p->created_at));
	store_col_text(stmt, 10, p->updated_at, sizeof(p->updated_at));
	store_col_text(stmt, 11, p->completed_at, sizeof(p->completed_at));
	store_col_text(stmt, 12, text, sizeof(text));
	if (policy_apply_status_parse(text, &p->apply_status) != 0)
		p->apply_status = POLICY_APPLY_PENDING;
	store_col_text(stmt, 13, p->apply_error, sizeof(p->apply_error));
	p->applied_generation = sqlite3_column_int64(stmt, 14);
}

static int
bad_row(const struct policy *p, const char *what, const char *text)
{
	log_errorx("policy %lld (%s): stored %s \"%s\" does not parse",
	    (long long)p->id, p->scenario_id, what, text);
	return EGW_E_BADROW;
}

static int
load_children(struct store *st, struct policy *p)
{
	sqlite3_stmt *stmt;
	const char *why;
	char kind[16], value[64], origin[8], proto[8];
	int rc, err = 0;
	int64_t last_rule = -1;

	stmt = store_prepare(st, "SELECT kind, value FROM policy_sources"
	    " WHERE policy_id = ?1 ORDER BY position");
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_int64(stmt, 1, p->id);
	while (err == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		store_col_text(stmt, 0, kind, sizeof(kind));
		store_col_text(stmt, 1, value, sizeof(value));
		if (strcmp(kind, "iface") == 0 &&
		    p->n_interfaces < POLICY_MAX_INTERFACES &&
		    netaddr_valid_ifname(value))
			memcpy(p->interfaces[p->n_interfaces++], value,
			    strlen(value) + 1);	/* valid: < IFNAMSIZ */
		else if (strcmp(kind, "prefix") == 0 &&
		    p->n_sources < POLICY_MAX_SOURCES &&
		    netaddr_parse_prefix(value, &p->sources[p->n_sources], &why) == 0)
			p->n_sources++;
		else
			err = bad_row(p, "source", value);
	}
	sqlite3_reset(stmt);
	if (err != 0 || (rc != SQLITE_DONE && rc != SQLITE_ROW))
		return err != 0 ? err : step_err(rc);

	stmt = store_prepare(st, "SELECT addr FROM policy_dns_servers"
	    " WHERE policy_id = ?1 ORDER BY position");
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_int64(stmt, 1, p->id);
	while (err == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		store_col_text(stmt, 0, value, sizeof(value));
		if (p->n_dns_servers < POLICY_MAX_DNS && netaddr_parse_addr(value,
		    &p->dns_servers[p->n_dns_servers], &why) == 0)
			p->n_dns_servers++;
		else
			err = bad_row(p, "dns server", value);
	}
	sqlite3_reset(stmt);
	if (err != 0 || (rc != SQLITE_DONE && rc != SQLITE_ROW))
		return err != 0 ? err : step_err(rc);

	stmt = store_prepare(st, "SELECT origin, rule_index, proto, dest,"
	    " port_lo, port_hi FROM policy_destinations"
	    " WHERE policy_id = ?1 ORDER BY position");
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_int64(stmt, 1, p->id);
	while (err == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		bool has_dest = sqlite3_column_type(stmt, 3) != SQLITE_NULL;
		bool has_port = sqlite3_column_type(stmt, 4) != SQLITE_NULL;
		struct port_range pr = {
			(uint16_t)sqlite3_column_int(stmt, 4),
			(uint16_t)sqlite3_column_int(stmt, 5)
		};
		struct ip_prefix dest;

		store_col_text(stmt, 0, origin, sizeof(origin));
		store_col_text(stmt, 2, proto, sizeof(proto));
		store_col_text(stmt, 3, value, sizeof(value));
		if (has_dest && netaddr_parse_prefix(value, &dest, &why) != 0) {
			err = bad_row(p, "destination", value);
		} else if (strcmp(origin, "host") == 0 && has_dest &&
		    p->n_hosts < POLICY_MAX_HOSTS) {
			p->hosts[p->n_hosts++] = dest;
		} else if (strcmp(origin, "port") == 0 && has_port &&
		    p->n_ports < POLICY_MAX_PORTS) {
			p->ports[p->n_ports++] = pr;
		} else if (strcmp(origin, "rule") == 0) {
			int64_t idx = sqlite3_column_int64(stmt, 1);
			struct policy_rule *r;

			/* The first rule row starts a rule whatever its index
			 * (a hand-edited -1 must not reach rules[-1]). */
			if (p->n_rules == 0 || idx != last_rule) {
				if (p->n_rules >= POLICY_MAX_RULES) {
					err = bad_row(p, "rule", "too many");
					break;
				}
				r = &p->rules[p->n_rules++];
				memset(r, 0, sizeof(*r));
				if (netaddr_parse_proto(proto, &r->proto) != 0) {
					err = bad_row(p, "rule protocol", proto);
					break;
				}
				r->has_dest = has_dest;
				if (has_dest)
					r->dest = dest;
				last_rule = idx;
			}
			r = &p->rules[p->n_rules - 1];
			if (has_port) {
				if (r->n_ports >= POLICY_RULE_MAX_PORTS) {
					err = bad_row(p, "rule ports", "too many");
					break;
				}
				r->ports[r->n_ports++] = pr;
			}
		} else {
			err = bad_row(p, "destination origin", origin);
		}
	}
	sqlite3_reset(stmt);
	if (err != 0 || (rc != SQLITE_DONE && rc != SQLITE_ROW))
		return err != 0 ? err : step_err(rc);
	return 0;
}

static int
load_policy(struct store *st, const char *sql, const char *sid, int64_t id,
    struct policy *out)
{
	sqlite3_stmt *stmt = store_prepare(st, sql);
	/* The row and its children are four statements: one snapshot, or a
	 * commit in between pairs one revision's row with another's lists. */
	bool snapshot;
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	snapshot = store_read_begin(st);
	if (sid != NULL)
		sqlite3_bind_text(stmt, 1, sid, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		policy_from_row(stmt, out);
	sqlite3_reset(stmt);
	if (rc == SQLITE_DONE)
		rc = EGW_E_NOTFOUND;
	else if (rc != SQLITE_ROW)
		rc = step_err(rc);
	else if ((rc = load_children(st, out)) == EGW_E_BADROW)
		out->row_unparsable = true;
	store_read_end(st, snapshot);
	return rc;
}

int
store_policy_get(struct store *st, const char *scenario_id, struct policy *out)
{
	return load_policy(st, sql_by_sid, scenario_id, 0, out);
}

int
store_policy_get_by_id(struct store *st, int64_t id, struct policy *out)
{
	return load_policy(st, sql_by_id, NULL, id, out);
}

/*
 * The start of a walk over policies in scenario_id order: checks @limit
 * (0: all), opens one read snapshot for the walk (*@snapshot: pass it to
 * store_read_end()) and prepares @sql with ?1 the cursor (a copy: a
 * callback may rewrite the caller's) and ?2 one more than @limit (to see
 * whether more remain).
 */
static int
walk_begin(struct store *st, const char *sql, const char *after_scenario_id,
    size_t limit, bool *more, bool *snapshot, sqlite3_stmt **out)
{
	*snapshot = false;
	if (more != NULL)
		*more = false;
	if (limit > STORE_POLICY_LIST_MAX)
		return EGW_E_INVALID;
	*snapshot = store_read_begin(st);
	if ((*out = store_prepare(st, sql)) == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(*out, 1, after_scenario_id != NULL ? after_scenario_id
	    : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(*out, 2, limit == 0 ? -1 : (sqlite3_int64)limit + 1);
	return 0;
}

int
store_policy_list(struct store *st, const char *after_scenario_id,
    size_t limit, int (*cb)(const struct policy *p, void *ctx), void *ctx,
    bool *more)
{
	sqlite3_stmt *stmt = NULL;
	struct policy *p = NULL;
	int64_t *ids = NULL, *grown;
	size_t n = 0, cap = 0, take;
	bool snapshot;
	int rc, err;

	/* One snapshot for the id list and every policy loaded from it. */
	if ((err = walk_begin(st, "SELECT id FROM policies WHERE scenario_id > ?1"
	    " ORDER BY scenario_id LIMIT ?2", after_scenario_id, limit, more,
	    &snapshot, &stmt)) != 0)
		goto out;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			grown = realloc(ids, cap * sizeof(*ids));
			if (grown == NULL) {
				err = EGW_E_NOMEM;
				break;
			}
			ids = grown;
		}
		ids[n++] = sqlite3_column_int64(stmt, 0);
	}
	sqlite3_reset(stmt);
	if (err == 0 && rc != SQLITE_DONE)
		err = step_err(rc);
	if (err != 0)
		goto out;
	take = n;
	if (limit != 0 && n > limit) {
		take = limit;
		if (more != NULL)
			*more = true;
	}
	if ((p = policy_new()) == NULL) {
		err = EGW_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < take && err == 0; i++) {
		/* One row edited into nonsense must not hide the others: the
		 * caller sees it with row_unparsable set. */
		err = store_policy_get_by_id(st, ids[i], p);
		if (err == 0 || err == EGW_E_BADROW)
			err = cb(p, ctx);
	}
out:
	store_read_end(st, snapshot);
	policy_free(p);
	free(ids);
	return err;
}

/*
 * A policy's API text from its row: the stored document with the status
 * appended, or, when the document was never built (api_json NULL: a row
 * from before migration 002 or written by hand), the document rebuilt
 * from the columns and child rows by id.  @stmt starts with DOC_COLUMNS
 * and is left active.
 */
static int
document_from_row(struct store *st, sqlite3_stmt *stmt, struct printbuf *pb,
    struct policy **scratch)
{
	const char *doc = (const char *)sqlite3_column_text(stmt, 1);
	char text[16], error[POLICY_ERROR_MAX];
	enum policy_apply_status status;
	const char *s;
	int rc;

	if (doc != NULL) {
		store_col_text(stmt, 2, text, sizeof(text));
		if (policy_apply_status_parse(text, &status) != 0)
			status = POLICY_APPLY_PENDING;
		/* Cut as policy_from_row() cuts it: the same text either way. */
		store_col_text(stmt, 3, error, sizeof(error));
		return codec_policy_append_status(pb, doc,
		    (size_t)sqlite3_column_bytes(stmt, 1), status, error,
		    sqlite3_column_int64(stmt, 4));
	}
	if (*scratch == NULL && (*scratch = policy_new()) == NULL)
		return EGW_E_NOMEM;
	if ((rc = store_policy_get_by_id(st, sqlite3_column_int64(stmt, 0),
	    *scratch)) != 0)
		return rc;
	if ((s = json_text(codec_policy_to_json(*scratch))) == NULL)
		return EGW_E_NOMEM;
	rc = printbuf_memappend(pb, s, (int)strlen(s)) < 0 ? EGW_E_NOMEM : 0;
	free((char *)s);
	return rc;
}

int
store_policy_document(struct store *st, const char *scenario_id,
    struct printbuf *pb)
{
	sqlite3_stmt *stmt = store_prepare(st, "SELECT " DOC_COLUMNS
	    " FROM policies WHERE scenario_id = ?1");
	struct policy *scratch = NULL;
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, scenario_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		rc = document_from_row(st, stmt, pb, &scratch);
	else
		rc = rc == SQLITE_DONE ? EGW_E_NOTFOUND : step_err(rc);
	sqlite3_reset(stmt);
	policy_free(scratch);
	return rc;
}

int
store_policy_documents(struct store *st, const char *after_scenario_id,
    size_t limit, int (*cb)(const char *scenario_id, const char *doc,
    size_t len, void *ctx), void *ctx, bool *more)
{
	sqlite3_stmt *stmt = NULL;
	struct printbuf *pb = NULL;
	struct policy *scratch = NULL;
	char sid[POLICY_SCENARIO_ID_MAX + 1];
	size_t n = 0;
	bool snapshot;
	int rc = SQLITE_DONE, err;

	if ((err = walk_begin(st, "SELECT " DOC_COLUMNS ", scenario_id"
	    " FROM policies WHERE scenario_id > ?1 ORDER BY scenario_id LIMIT ?2",
	    after_scenario_id, limit, more, &snapshot, &stmt)) != 0)
		goto out;
	if ((pb = printbuf_new()) == NULL) {
		err = EGW_E_NOMEM;
		goto out;
	}
	while (err == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (limit != 0 && n == limit) {
			if (more != NULL)
				*more = true;
			break;
		}
		store_col_text(stmt, 5, sid, sizeof(sid));
		printbuf_reset(pb);
		if ((err = document_from_row(st, stmt, pb, &scratch)) == 0)
			err = cb(sid, pb->buf, (size_t)pb->bpos, ctx);
		n++;
	}
	if (err == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = step_err(rc);
	sqlite3_reset(stmt);
out:
	store_read_end(st, snapshot);
	printbuf_free(pb);
	policy_free(scratch);
	return err;
}

int
store_policy_count(struct store *st, size_t *out)
{
	int64_t n = 0;
	int rc = store_scalar(st, "SELECT count(*) FROM policies", &n);

	*out = (size_t)n;
	return rc;
}

/* ---- writes ---- */

static int
exec_stmt(sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);

	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_warnx("sqlite: %s", sqlite3_errstr(rc));
		return step_err(rc);
	}
	return 0;
}

/*
 * A table of a policy's child rows, which write_children() rewrites in
 * place: rows 0..n-1 by INSERT OR REPLACE, then the rows left at any other
 * position deleted one by one by their whole key (all at once when one
 * has no integer position, or there are many).  "DELETE ... WHERE
 * policy_id = ?" matches several rows of a WITHOUT ROWID table that has a
 * foreign key, and SQLite collects their keys in a temporary B-tree before
 * it deletes them (EXPLAIN: OpenEphemeral), which cost a put more than all
 * its child rows' writes together.
 */
struct child_table {
	const char *stray;	/* positions outside 0..?2-1, and whether
				 * each is an integer */
	const char *delete_one;	/* one row by its key */
	const char *delete_all;	/* every row: too many strays */
};

#define CHILD_TABLE(t) { \
	"SELECT position, typeof(position) = 'integer' FROM " t \
	" WHERE policy_id = ?1 AND NOT (typeof(position) = 'integer'" \
	" AND position >= 0 AND position < ?2)", \
	"DELETE FROM " t " WHERE policy_id = ?1 AND position = ?2", \
	"DELETE FROM " t " WHERE policy_id = ?1" }

static const struct child_table child_sources = CHILD_TABLE("policy_sources");
static const struct child_table child_dns_servers =
    CHILD_TABLE("policy_dns_servers");
static const struct child_table child_destinations =
    CHILD_TABLE("policy_destinations");
#undef CHILD_TABLE

/* More stray rows than this (a hand edit, or a list that shrank by more)
 * go in one DELETE. */
#define CHILD_STRAYS_MAX 64

/* Delete @t's rows of policy @id at positions other than 0..@n-1. */
static int
trim_children(struct store *st, const struct child_table *t, int64_t id,
    size_t n)
{
	int64_t stray[CHILD_STRAYS_MAX];
	size_t n_stray = 0;
	sqlite3_stmt *stmt;
	bool all = false;
	int rc;

	if ((stmt = store_prepare(st, t->stray)) == NULL)
		return EGW_E_DB;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, (int64_t)n);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		/* A position edited in as text or a fraction (the column's
		 * INTEGER affinity keeps "x" and 1.5 as they are) has no
		 * integer key to delete it by. */
		if (n_stray == CHILD_STRAYS_MAX ||
		    sqlite3_column_int(stmt, 1) == 0) {
			all = true;
			break;
		}
		stray[n_stray++] = sqlite3_column_int64(stmt, 0);
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_warnx("sqlite: %s", sqlite3_errstr(rc));
		return step_err(rc);
	}
	if (all) {
		if ((stmt = store_prepare(st, t->delete_all)) == NULL)
			return EGW_E_DB;
		sqlite3_bind_int64(stmt, 1, id);
		return exec_stmt(stmt);
	}
	for (size_t i = 0; i < n_stray; i++) {
		if ((stmt = store_prepare(st, t->delete_one)) == NULL)
			return EGW_E_DB;
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_int64(stmt, 2, stray[i]);
		if ((rc = exec_stmt(stmt)) != 0)
			return rc;
	}
	return 0;
}

/* The number of policy_destinations rows @p has. */
static size_t
destination_rows(const struct policy *p)
{
	size_t n = p->n_hosts + p->n_ports;

	for (size_t i = 0; i < p->n_rules; i++)
		n += p->rules[i].n_ports == 0 ? 1 : p->rules[i].n_ports;
	return n;
}

static int
write_children(struct store *st, const struct policy *p)
{
	char text[NETADDR_PREFIX_STRLEN];
	sqlite3_stmt *stmt;
	int64_t pos = 0;
	int rc;

	if ((rc = trim_children(st, &child_sources, p->id,
	    p->n_sources + p->n_interfaces)) != 0 ||
	    (rc = trim_children(st, &child_dns_servers, p->id,
	    p->n_dns_servers)) != 0 ||
	    (rc = trim_children(st, &child_destinations, p->id,
	    destination_rows(p))) != 0)
		return rc;
	for (size_t i = 0; i < p->n_sources + p->n_interfaces; i++) {
		bool iface = i >= p->n_sources;

		uint8_t lo[PREFIX_KEY_LEN], hi[PREFIX_KEY_LEN];

		stmt = store_prepare(st, "INSERT OR REPLACE INTO policy_sources"
		    " (policy_id, position, kind, value, lo, hi)"
		    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
		if (stmt == NULL)
			return EGW_E_DB;
		sqlite3_bind_int64(stmt, 1, p->id);
		sqlite3_bind_int64(stmt, 2, (int64_t)i);
		sqlite3_bind_text(stmt, 3, iface ? "iface" : "prefix", -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(stmt, 4, iface ? p->interfaces[i - p->n_sources]
		    : netaddr_format_prefix(&p->sources[i], text, false), -1,
		    SQLITE_TRANSIENT);
		if (!iface) {
			prefix_key(&p->sources[i], p->sources[i].len, lo, hi);
			sqlite3_bind_blob(stmt, 5, lo, sizeof(lo), SQLITE_TRANSIENT);
			sqlite3_bind_blob(stmt, 6, hi, sizeof(hi), SQLITE_TRANSIENT);
		}
		if ((rc = exec_stmt(stmt)) != 0)
			return rc;
	}
	for (size_t i = 0; i < p->n_dns_servers; i++) {
		stmt = store_prepare(st, "INSERT OR REPLACE INTO policy_dns_servers"
		    " (policy_id, position, addr) VALUES (?1, ?2, ?3)");
		if (stmt == NULL)
			return EGW_E_DB;
		sqlite3_bind_int64(stmt, 1, p->id);
		sqlite3_bind_int64(stmt, 2, (int64_t)i);
		sqlite3_bind_text(stmt, 3, netaddr_format_prefix(&p->dns_servers[i],
		    text, false), -1, SQLITE_TRANSIENT);
		if ((rc = exec_stmt(stmt)) != 0)
			return rc;
	}
#define DEST_SQL "INSERT OR REPLACE INTO policy_destinations (policy_id," \
	" position, origin, rule_index, proto, dest, port_lo, port_hi)" \
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
	for (size_t i = 0; i < p->n_hosts; i++) {
		if ((stmt = store_prepare(st, DEST_SQL)) == NULL)
			return EGW_E_DB;
		sqlite3_bind_int64(stmt, 1, p->id);
		sqlite3_bind_int64(stmt, 2, pos++);
		sqlite3_bind_text(stmt, 3, "host", -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 5, "any", -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 6, netaddr_format_prefix(&p->hosts[i], text,
		    false), -1, SQLITE_TRANSIENT);
		if ((rc = exec_stmt(stmt)) != 0)
			return rc;
	}
	for (size_t i = 0; i < p->n_ports; i++) {
		if ((stmt = store_prepare(st, DEST_SQL)) == NULL)
			return EGW_E_DB;
		sqlite3_bind_int64(stmt, 1, p->id);
		sqlite3_bind_int64(stmt, 2, pos++);
		sqlite3_bind_text(stmt, 3, "port", -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 5, "any", -1, SQLITE_STATIC);
		sqlite3_bind_int(stmt, 7, p->ports[i].lo);
		sqlite3_bind_int(stmt, 8, p->ports[i].hi);
		if ((rc = exec_stmt(stmt)) != 0)
			return rc;
	}
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];
		size_t rows = r->n_ports == 0 ? 1 : r->n_ports;

		for (size_t j = 0; j < rows; j++) {
			if ((stmt = store_prepare(st, DEST_SQL)) == NULL)
				return EGW_E_DB;
			sqlite3_bind_int64(stmt, 1, p->id);
			sqlite3_bind_int64(stmt, 2, pos++);
			sqlite3_bind_text(stmt, 3, "rule", -1, SQLITE_STATIC);
			sqlite3_bind_int64(stmt, 4, (int64_t)i);
			sqlite3_bind_text(stmt, 5, netaddr_proto_name(r->proto), -1,
			    SQLITE_STATIC);
			if (r->has_dest)
				sqlite3_bind_text(stmt, 6, netaddr_format_prefix(
				    &r->dest, text, false), -1, SQLITE_TRANSIENT);
			if (r->n_ports > 0) {
				sqlite3_bind_int(stmt, 7, r->ports[j].lo);
				sqlite3_bind_int(stmt, 8, r->ports[j].hi);
			}
			if ((rc = exec_stmt(stmt)) != 0)
				return rc;
		}
	}
#undef DEST_SQL
	return 0;
}

/* @doc (a stored document) with @p's status: the API's text of @p. */
static char *
document_text(const char *doc, const struct policy *p)
{
	struct printbuf *pb = printbuf_new();
	char *text = NULL;

	if (pb != NULL && codec_policy_append_status(pb, doc, strlen(doc),
	    p->apply_status, p->apply_error, p->applied_generation) == 0)
		text = strdup(pb->buf);
	printbuf_free(pb);
	return text;
}

/* @before_json / @after_json: the API's text of the policy, or NULL. */
static int
history_insert(struct store *st, const char *op, const char *scenario_id,
    const struct store_actor *actor, int64_t revision, int64_t generation,
    const char *before_json, const char *after_json)
{
	char now[TIMEFMT_LEN];
	sqlite3_stmt *stmt = store_prepare(st, "INSERT INTO policy_history (ts,"
	    " scenario_id, operation, actor, request_id, revision, generation,"
	    " before_json, after_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, timefmt_now(now), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, scenario_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 3, op, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, actor != NULL && actor->actor != NULL
	    ? actor->actor : "unknown", -1, SQLITE_TRANSIENT);
	if (actor != NULL && actor->request_id != NULL)
		sqlite3_bind_text(stmt, 5, actor->request_id, -1, SQLITE_TRANSIENT);
	if (revision > 0)
		sqlite3_bind_int64(stmt, 6, revision);
	sqlite3_bind_int64(stmt, 7, generation);
	if (before_json != NULL)
		sqlite3_bind_text(stmt, 8, before_json, -1, SQLITE_STATIC);
	if (after_json != NULL)
		sqlite3_bind_text(stmt, 9, after_json, -1, SQLITE_STATIC);
	return exec_stmt(stmt);
}

/* @after_doc: NULL, or @after's stored document (spares building it). */
static int
add_history(struct store *st, const char *op, const char *scenario_id,
    const struct store_actor *actor, int64_t revision, int64_t generation,
    const struct policy *before, const struct policy *after,
    const char *after_doc)
{
	char *bj = NULL, *aj = NULL;
	int rc = EGW_E_NOMEM;

	if (before != NULL && (bj = json_text(codec_policy_to_json(before))) == NULL)
		goto out;
	if (after != NULL && (aj = after_doc != NULL ? document_text(after_doc,
	    after) : json_text(codec_policy_to_json(after))) == NULL)
		goto out;
	rc = history_insert(st, op, scenario_id, actor, revision, generation,
	    bj, aj);
out:
	free(bj);
	free(aj);
	return rc;
}

/* Runs @fn in BEGIN IMMEDIATE ... COMMIT, retrying the whole of it while
 * the database stays busy.  @fn returns 0 to commit, 1 for "nothing to
 * write" (rolled back, reported as 0), or an error (rolled back). */
static int
with_txn(struct store *st, int (*fn)(struct store *, void *), void *arg)
{
	/* Inside a batch the batch holds the queue, and its end gives it
	 * back: this transaction must not release it early. */
	bool queued = !store_in_batch(st) && store_queue_enter(st);
	int rc = EGW_E_BUSY;

	for (int attempt = 0; attempt < STORE_TXN_ATTEMPTS; attempt++) {
		if (attempt > 0)
			usleep((useconds_t)(5000 * attempt +
			    ((timefmt_monotonic_ms() ^ getpid()) % 10) * 1000));
		if (!store_in_batch(st) && !store_attempt_in_time(st)) {
			log_warnx("a change's client stops waiting before another"
			    " attempt could end; not run");
			rc = EGW_E_UNAVAILABLE;
			break;
		}
		if ((rc = store_begin(st)) != 0) {
			if (rc == EGW_E_BUSY)
				continue;
			break;
		}
		rc = fn(st, arg);
		if (rc == 0) {
			rc = store_commit(st);
		} else {
			store_rollback(st);
			if (rc == 1)
				rc = 0;
		}
		if (rc != EGW_E_BUSY)
			break;
		log_warnx("transaction busy (attempt %d of %d)", attempt + 1,
		    STORE_TXN_ATTEMPTS);
	}
	store_queue_leave(st, queued);
	return rc;
}

/*
 * A change made for *@slot, which points into @arg so that @fn records the
 * actor in force.  An actor with a check (an API token not checked yet)
 * passes it first, inside the change's transaction, and @fn records the
 * actor the check names; every retry of a busy transaction checks again.
 */
struct as_actor {
	const struct store_actor **slot;
	int (*fn)(struct store *, void *);
	void *arg;
};

static int
as_actor_txn(struct store *st, void *arg)
{
	struct as_actor *t = arg;
	const struct store_actor *given = *t->slot;
	struct store_actor checked;
	char name[STORE_ACTOR_MAX];
	int rc;

	if (given == NULL || given->authorize == NULL)
		return t->fn(st, t->arg);
	name[0] = '\0';
	rc = given->authorize(st, given->credential, name, sizeof(name));
	if (rc != 0) {
		/* Mostly a token revoked since the worker last checked it:
		 * worth a line for whoever looks into the revocation. */
		log_warnx("a change was refused inside its transaction: %s",
		    err_message(rc > 0 ? EGW_E_INTERNAL : rc));
		/* never with_txn's 1, "nothing to write" */
		return rc > 0 ? EGW_E_INTERNAL : rc;
	}
	if (name[0] == '\0')
		return EGW_E_INTERNAL;
	checked = *given;
	checked.actor = name;
	checked.authorize = NULL;
	checked.credential = NULL;
	*t->slot = &checked;
	rc = t->fn(st, t->arg);
	*t->slot = given;
	return rc;
}

static int
with_txn_as(struct store *st, const struct store_actor **slot,
    int (*fn)(struct store *, void *), void *arg)
{
	struct as_actor t = { slot, fn, arg };

	return with_txn(st, as_actor_txn, &t);
}

int
store_policy_batch_begin(struct store *st, bool *queued)
{
	int rc;

	*queued = store_queue_enter(st);
	if ((rc = store_batch_begin(st)) != 0) {
		store_queue_leave(st, *queued);
		*queued = false;
	}
	return rc;
}

int
store_policy_batch_end(struct store *st, bool queued, bool commit)
{
	int rc = store_batch_end(st, commit);

	store_queue_leave(st, queued);
	return rc;
}

struct put_args {
	struct policy *p;
	const struct store_actor *actor;
	bool *created;
	struct policy_errors *errs;
	const char *input;		/* canonical input JSON of p */
	int64_t revision;		/* the client's, if p->revision_given */
	struct policy *old;		/* scratch */
};

/* The completed policies whose claims a put takes over (check_claims). */
#define CLAIM_RELEASE_MAX 16
struct claim_release {
	size_t n;
	int64_t ids[CLAIM_RELEASE_MAX];
};

/*
 * First other scenario holding a row that matches @stmt's bindings.  A
 * completed one goes to @rel (when there is room) instead of counting.
 */
static int
claim_owner(sqlite3_stmt *stmt, char *value, size_t vsize, char *owner,
    size_t osize, struct claim_release *rel)
{
	int rc = sqlite3_step(stmt);
	int64_t id = 0;
	bool completed = false;

	if (rc == SQLITE_ROW) {
		store_col_text(stmt, 0, value, vsize);
		store_col_text(stmt, 1, owner, osize);
		id = sqlite3_column_int64(stmt, 2);
		completed = sqlite3_column_int(stmt, 3) != 0;
	}
	sqlite3_reset(stmt);
	if (rc == SQLITE_ROW && completed && rel != NULL &&
	    rel->n < CLAIM_RELEASE_MAX) {
		size_t i;

		for (i = 0; i < rel->n && rel->ids[i] != id; i++)
			;
		if (i == rel->n)
			rel->ids[rel->n++] = id;
		return 0;
	}
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : step_err(rc);
}

/*
 * The other scenario claiming interface @name, by naming it (@named) or,
 * then *by_network, by deriving it from its network_id.  The second query
 * is prepared only when it is asked: most puts name no interface.
 */
static int
iface_claim_owner(struct store *st, sqlite3_stmt *named, const char *name,
    const char *scenario_id, char *value, size_t vsize, char *owner,
    size_t osize, struct claim_release *rel, bool *by_network)
{
	sqlite3_stmt *derives;
	int rc;

	*by_network = false;
	sqlite3_bind_text(named, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(named, 2, scenario_id, -1, SQLITE_TRANSIENT);
	if ((rc = claim_owner(named, value, vsize, owner, osize, rel)) != 0)
		return rc;
	derives = store_prepare(st, "SELECT p.derived_iface, p.scenario_id,"
	    " p.id, p.completed_at IS NOT NULL AND p.enabled = 0"
	    " FROM policies p WHERE p.derived_iface = ?1"
	    " AND p.scenario_id <> ?2 LIMIT 1");
	if (derives == NULL)
		return EGW_E_DB;
	*by_network = true;
	sqlite3_bind_text(derives, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(derives, 2, scenario_id, -1, SQLITE_TRANSIENT);
	return claim_owner(derives, value, vsize, owner, osize, rel);
}

/*
 * Sources and interfaces must not be claimed by two scenarios: the kernel
 * maps each to one packet mark.  Prefixes nest or are disjoint, so another
 * scenario's prefix overlaps ours exactly when it starts inside ours (one
 * index range scan) or is one of our at most 128 ancestors (point lookups
 * on the index), which keeps a write's cost independent of how many
 * policies exist.  With @rel, a claim of a completed scenario (disabled,
 * kept until EGW_COMPLETED_RETENTION) is not a conflict but noted there:
 * its network may be given to the next scenario at once.
 */
static int
check_claims(struct store *st, const struct policy *p, const char *derived,
    struct policy_errors *errs, struct claim_release *rel)
{
	char value[64], owner[POLICY_SCENARIO_ID_MAX + 1], path[64];
	sqlite3_stmt *inside, *ancestor, *iface;
	int rc, found = 0;

#define CLAIM_OWNER_COLUMNS "SELECT s.value, p.scenario_id, p.id," \
	" p.completed_at IS NOT NULL AND p.enabled = 0" \
	" FROM policy_sources s JOIN policies p ON p.id = s.policy_id"
	inside = store_prepare(st, CLAIM_OWNER_COLUMNS
	    " WHERE s.kind = 'prefix' AND s.lo BETWEEN ?1 AND ?2"
	    " AND p.scenario_id <> ?3 LIMIT 1");
	ancestor = store_prepare(st, CLAIM_OWNER_COLUMNS
	    " WHERE s.kind = 'prefix' AND s.lo = ?1 AND s.hi = ?2"
	    " AND p.scenario_id <> ?3 LIMIT 1");
	iface = store_prepare(st, CLAIM_OWNER_COLUMNS
	    " WHERE s.kind = 'iface' AND s.value = ?1"
	    " AND p.scenario_id <> ?2 LIMIT 1");
#undef CLAIM_OWNER_COLUMNS
	if (inside == NULL || ancestor == NULL || iface == NULL)
		return EGW_E_DB;
	for (size_t i = 0; i < p->n_sources; i++) {
		const struct ip_prefix *src = &p->sources[i];
		uint8_t lo[PREFIX_KEY_LEN], hi[PREFIX_KEY_LEN];

		prefix_key(src, src->len, lo, hi);
		sqlite3_bind_blob(inside, 1, lo, sizeof(lo), SQLITE_TRANSIENT);
		sqlite3_bind_blob(inside, 2, hi, sizeof(hi), SQLITE_TRANSIENT);
		sqlite3_bind_text(inside, 3, p->scenario_id, -1, SQLITE_TRANSIENT);
		rc = claim_owner(inside, value, sizeof(value), owner, sizeof(owner),
		    rel);
		for (unsigned len = 0; rc == 0 && len < src->len; len++) {
			prefix_key(src, len, lo, hi);
			sqlite3_bind_blob(ancestor, 1, lo, sizeof(lo), SQLITE_TRANSIENT);
			sqlite3_bind_blob(ancestor, 2, hi, sizeof(hi), SQLITE_TRANSIENT);
			sqlite3_bind_text(ancestor, 3, p->scenario_id, -1,
			    SQLITE_TRANSIENT);
			rc = claim_owner(ancestor, value, sizeof(value), owner,
			    sizeof(owner), rel);
		}
		if (rc < 0)
			return rc;
		if (rc > 0) {
			snprintf(path, sizeof(path), "/sources/%zu", i);
			policy_errors_add(errs, path,
			    "overlaps %s, a source of scenario %s", value, owner);
			found++;
		}
	}
	for (size_t i = 0; i < p->n_interfaces; i++) {
		bool by_network;

		if ((rc = iface_claim_owner(st, iface, p->interfaces[i],
		    p->scenario_id, value, sizeof(value), owner, sizeof(owner),
		    rel, &by_network)) < 0)
			return rc;
		if (rc > 0) {
			snprintf(path, sizeof(path), "/interfaces/%zu", i);
			policy_errors_add(errs, path, by_network ?
			    "interface %s is the one scenario %s is enforced "
			    "on (derived from its network_id by "
			    "EGW_IFACE_TEMPLATE)" :
			    "interface %s already belongs to scenario %s",
			    value, owner);
			found++;
		}
	}
	/* The interface p derives is claimed like a named one. */
	if (derived != NULL && derived[0] != '\0') {
		bool by_network;

		if ((rc = iface_claim_owner(st, iface, derived,
		    p->scenario_id, value, sizeof(value), owner, sizeof(owner),
		    rel, &by_network)) < 0)
			return rc;
		if (rc > 0) {
			/* Short enough for a policy_error's reason with the
			 * longest interface and scenario names. */
			policy_errors_add(errs, "/network_id", by_network ?
			    "derives interface %s (EGW_IFACE_TEMPLATE), as "
			    "does scenario %s; give sources, interfaces or "
			    "another network_id" :
			    "derives interface %s (EGW_IFACE_TEMPLATE), which "
			    "belongs to scenario %s", value, owner);
			found++;
		}
	}
	if (found > 0)
		errs->claimed = true;
	return found > 0 ? EGW_E_INVALID : 0;
}

/*
 * A profile such as "training-updates" renders only its own rules.  Hosts,
 * ports or rules sent with it would be stored and shown back, yet never
 * opened: a firewall that silently does less than it was told.
 */
static int
refuse_unused_entries(const struct policy *p, struct policy_errors *errs)
{
	static const char hint[] = "profile \"%s\" does not use the policy's own"
	    " entries, so these would never be opened; use a profile that takes"
	    " them (such as \"custom\") or send none";
	int rc = 0;

	if (p->n_hosts > 0) {
		policy_errors_add(errs, "/allowed_hosts", hint, p->profile);
		rc = EGW_E_INVALID;
	}
	if (p->n_ports > 0) {
		policy_errors_add(errs, "/allowed_ports", hint, p->profile);
		rc = EGW_E_INVALID;
	}
	if (p->n_rules > 0) {
		policy_errors_add(errs, "/custom_rules", hint, p->profile);
		rc = EGW_E_INVALID;
	}
	return rc;
}

/* Builds and stores @p's document (see sql/002); @input is
 * codec_policy_input_string(p).  *@doc_out, when given, gets the text. */
static int
save_document(struct store *st, const struct policy *p, const char *input,
    char **doc_out)
{
	sqlite3_stmt *stmt;
	char *doc = codec_policy_document(p, input);
	int rc;

	if (doc == NULL)
		return EGW_E_NOMEM;
	stmt = store_prepare(st, "UPDATE policies SET api_json = ?2,"
	    " api_json_generation = generation WHERE id = ?1");
	if (stmt == NULL) {
		free(doc);
		return EGW_E_DB;
	}
	sqlite3_bind_int64(stmt, 1, p->id);
	sqlite3_bind_text(stmt, 2, doc, -1, SQLITE_STATIC);
	rc = exec_stmt(stmt);
	if (rc == 0 && doc_out != NULL)
		*doc_out = doc;
	else
		free(doc);
	return rc;
}

/* Rows per fill transaction: the write lock is let go in between. */
#define FILL_CHUNK 500

/* fill_txn() may run more than once per chunk (a busy retry): it only
 * reports the chunk, and the caller counts it once committed. */
struct fill_args {
	int64_t after_id;	/* rows up to this id are done */
	int64_t last_id;	/* the chunk's last row */
	size_t filled, skipped;	/* the chunk's */
	bool more;
};

static int
fill_txn(struct store *st, void *arg)
{
	struct fill_args *a = arg;
	struct policy *p = NULL;
	sqlite3_stmt *stmt;
	int64_t ids[FILL_CHUNK];
	size_t n = 0, filled = 0, skipped = 0;
	char *input;
	int rc, err = 0;

	stmt = store_prepare(st, "SELECT id FROM policies WHERE id > ?1 AND"
	    " (api_json IS NULL OR api_json_generation IS NOT generation)"
	    " ORDER BY id LIMIT ?2");
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_int64(stmt, 1, a->after_id);
	sqlite3_bind_int(stmt, 2, FILL_CHUNK);
	while (n < FILL_CHUNK && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return step_err(rc);
	if (n == 0)
		return 1;
	if ((p = policy_new()) == NULL)
		return EGW_E_NOMEM;
	for (size_t i = 0; err == 0 && i < n; i++) {
		/* A row that does not load (logged by bad_row) keeps being
		 * served from its columns; it must not stop the others. */
		if ((err = store_policy_get_by_id(st, ids[i], p)) == EGW_E_BADROW) {
			skipped++;
			err = 0;
			continue;
		}
		if (err != 0)
			break;
		if ((input = codec_policy_input_string(p)) == NULL) {
			err = EGW_E_NOMEM;
			break;
		}
		err = save_document(st, p, input, NULL);
		free(input);
		filled++;
	}
	policy_free(p);
	if (err != 0)
		return err;
	a->filled = filled;
	a->skipped = skipped;
	a->last_id = ids[n - 1];
	a->more = n == FILL_CHUNK;
	return filled > 0 ? 0 : 1;
}

int
store_policy_fill_documents(struct store *st, size_t *filled)
{
	struct fill_args a = { 0 };
	size_t total = 0, skipped = 0;
	int rc;

	do {
		a.more = false;
		a.filled = a.skipped = 0;
		if ((rc = with_txn(st, fill_txn, &a)) == 0) {
			total += a.filled;
			skipped += a.skipped;
			a.after_id = a.last_id;
		}
	} while (rc == 0 && a.more);
	if (skipped > 0)
		log_warnx("%zu policies do not load; their documents were not"
		    " built", skipped);
	if (filled != NULL)
		*filled = total;
	return rc;
}

static int
set_derived_iface(struct store *st, int64_t id, const char *name)
{
	sqlite3_stmt *stmt = store_prepare(st, "UPDATE policies SET"
	    " derived_iface = ?2 WHERE id = ?1");

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_int64(stmt, 1, id);
	if (name != NULL)
		sqlite3_bind_text(stmt, 2, name, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(stmt, 2);
	return exec_stmt(stmt);
}

/* Every policy's derived_iface as this connection's deriver makes it;
 * @arg is a size_t, the rows changed. */
static int
derived_fill_txn(struct store *st, void *arg)
{
	size_t *changed = arg;
	sqlite3_stmt *sel = store_prepare(st, "SELECT p.id, p.network_id,"
	    " p.derived_iface, EXISTS (SELECT 1 FROM policy_sources s"
	    " WHERE s.policy_id = p.id) FROM policies p");
	struct {
		int64_t id;
		char name[NETADDR_IFNAMSIZ];
	} *todo = NULL, *grown;
	size_t n = 0, cap = 0;
	int rc, err = 0;

	*changed = 0;
	if (sel == NULL)
		return EGW_E_DB;
	/* Collected first: the updates then do not move under the scan. */
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		char network[POLICY_NETWORK_ID_MAX + 1], want[NETADDR_IFNAMSIZ];
		const unsigned char *had = sqlite3_column_text(sel, 2);
		bool derives;

		store_col_text(sel, 1, network, sizeof(network));
		derives = sqlite3_column_int(sel, 3) == 0 &&
		    store_derive_iface(st, network, want);
		if (derives ? had != NULL &&
		    strcmp((const char *)had, want) == 0 : had == NULL)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			grown = realloc(todo, cap * sizeof(*todo));
			if (grown == NULL) {
				err = EGW_E_NOMEM;
				break;
			}
			todo = grown;
		}
		todo[n].id = sqlite3_column_int64(sel, 0);
		snprintf(todo[n].name, sizeof(todo[n].name), "%s",
		    derives ? want : "");
		n++;
	}
	sqlite3_reset(sel);
	rc = err != 0 ? err : rc == SQLITE_DONE ? 0 : step_err(rc);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = set_derived_iface(st, todo[i].id,
		    todo[i].name[0] != '\0' ? todo[i].name : NULL);
	free(todo);
	if (rc == 0)
		*changed = n;
	/* Nothing to change: no empty commit at every start. */
	return rc == 0 && n == 0 ? 1 : rc;
}

/*
 * Claims made before this check existed, or under another template, can
 * collide; they stay (refusing a stored policy is not the start's to do)
 * and the applier fails one of each pair, as before.  Say so once.
 */
static void
derived_conflicts_log(struct store *st)
{
	sqlite3_stmt *stmt = store_prepare(st, "SELECT p.derived_iface,"
	    " p.scenario_id, q.scenario_id, 'derives it too' FROM policies p"
	    " JOIN policies q ON q.derived_iface = p.derived_iface"
	    " AND q.id > p.id UNION ALL SELECT p.derived_iface, p.scenario_id,"
	    " q.scenario_id, 'names it' FROM policies p JOIN policy_sources s"
	    " ON s.kind = 'iface' AND s.value = p.derived_iface"
	    " JOIN policies q ON q.id = s.policy_id WHERE q.id <> p.id"
	    " LIMIT 20");
	char name[NETADDR_IFNAMSIZ], a[POLICY_SCENARIO_ID_MAX + 1];
	char b[POLICY_SCENARIO_ID_MAX + 1], how[16];
	bool opened;

	if (stmt == NULL)
		return;
	opened = store_read_begin(st);
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		store_col_text(stmt, 0, name, sizeof(name));
		store_col_text(stmt, 1, a, sizeof(a));
		store_col_text(stmt, 2, b, sizeof(b));
		store_col_text(stmt, 3, how, sizeof(how));
		log_warnx("interface %s: scenario %s derives it from its "
		    "network_id and scenario %s %s; the applier enforces one "
		    "of them and fails the other until one changes", name, a,
		    b, how);
	}
	sqlite3_reset(stmt);
	store_read_end(st, opened);
}

int
store_policy_fill_derived_ifaces(struct store *st, size_t *changed)
{
	size_t n = 0;
	int rc = with_txn(st, derived_fill_txn, &n);

	if (rc == 0)
		derived_conflicts_log(st);
	if (changed != NULL)
		*changed = rc == 0 ? n : 0;
	return rc;
}

/* The row a put replaces. */
struct stored_row {
	bool exists;
	bool same_input;		/* the put would store what is there */
	int64_t id, revision, applied_generation;
	char created_at[POLICY_TIME_MAX], completed_at[POLICY_TIME_MAX];
	char derived_iface[NETADDR_IFNAMSIZ];	/* "" for NULL */
	char *api_text;			/* its API text: history's before_json */
};

/* Reads the row of @sid, if any, into @out (free out->api_text); @input
 * is the put's codec_policy_input_string(), *@scratch space for a row
 * without a stored document (allocated then, when NULL). */
static int
stored_row_load(struct store *st, const char *sid, const char *input,
    struct policy **scratch, struct stored_row *out)
{
	sqlite3_stmt *stmt = store_prepare(st, "SELECT " DOC_COLUMNS ","
	    " revision, created_at, completed_at, derived_iface FROM policies"
	    " WHERE scenario_id = ?1");
	struct printbuf *pb = NULL;
	char *old_input;
	bool had_doc;
	int rc;

	memset(out, 0, sizeof(*out));
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, sid, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(stmt);
		return rc == SQLITE_DONE ? 0 : step_err(rc);
	}
	out->exists = true;
	out->id = sqlite3_column_int64(stmt, 0);
	out->applied_generation = sqlite3_column_int64(stmt, 4);
	out->revision = sqlite3_column_int64(stmt, 5);
	store_col_text(stmt, 6, out->created_at, sizeof(out->created_at));
	store_col_text(stmt, 7, out->completed_at, sizeof(out->completed_at));
	store_col_text(stmt, 8, out->derived_iface, sizeof(out->derived_iface));
	had_doc = sqlite3_column_type(stmt, 1) != SQLITE_NULL;
	if (had_doc)
		out->same_input = codec_document_has_input(
		    (const char *)sqlite3_column_text(stmt, 1),
		    (size_t)sqlite3_column_bytes(stmt, 1), input);
	if ((pb = printbuf_new()) == NULL)
		rc = EGW_E_NOMEM;
	else
		rc = document_from_row(st, stmt, pb, scratch);
	/* Child rows edited into nonsense and no document: the put
	 * replaces them all; the history has no "before" for it. */
	if (rc == EGW_E_BADROW && !had_doc) {
		sqlite3_reset(stmt);
		printbuf_free(pb);
		out->same_input = false;
		return 0;
	}
	/* Without a stored document the rows were loaded into @scratch. */
	if (rc == 0 && !had_doc) {
		if ((old_input = codec_policy_input_string(*scratch)) == NULL)
			rc = EGW_E_NOMEM;
		else
			out->same_input = strcmp(old_input, input) == 0;
		free(old_input);
	}
	if (rc == 0 && (out->api_text = strdup(pb->buf)) == NULL)
		rc = EGW_E_NOMEM;
	sqlite3_reset(stmt);
	printbuf_free(pb);
	return rc;
}

static int delete_one(struct store *st, const struct policy *p,
    const char *op, const char *type, const struct store_actor *actor,
    int64_t gen);

/*
 * A completed scenario keeps its sources and interfaces (denied) until
 * EGW_COMPLETED_RETENTION; a new scenario given the same network would be
 * refused until then.  Its claims are released by expiring it now, in the
 * put's transaction (history "expire", event "policy.expired").  Claims of
 * live scenarios are left for check_claims() to report.
 */
static int
release_completed_claims(struct store *st, const struct policy *p,
    const char *derived, const struct store_actor *actor, int64_t gen)
{
	struct policy *q = NULL;
	int rc = 0;

	/* Each round expires at least one: bounded by the policies there are. */
	for (;;) {
		struct claim_release rel = { 0 };
		struct policy_errors ignored;

		policy_errors_init(&ignored);
		if ((rc = check_claims(st, p, derived, &ignored, &rel)) < 0 &&
		    rc != EGW_E_INVALID)
			break;
		rc = 0;
		if (rel.n == 0)
			break;
		if (q == NULL && (q = policy_new()) == NULL) {
			rc = EGW_E_NOMEM;
			break;
		}
		for (size_t i = 0; rc == 0 && i < rel.n; i++) {
			rc = store_policy_get_by_id(st, rel.ids[i], q);
			if (rc != 0 && rc != EGW_E_BADROW)
				break;
			log_info("scenario %s takes over the network of completed "
			    "scenario %s, which expires now", p->scenario_id,
			    q->scenario_id);
			rc = delete_one(st, q, "expire", "policy.expired", actor, gen);
		}
		if (rc != 0)
			break;
	}
	policy_free(q);
	return rc;
}

/* The part of a put that writes; @was is the row it replaces, if any. */
/* The revision a create of @sid starts at: above every one it ever had. */
static int
create_revision(struct store *st, const char *sid, int64_t *out)
{
	sqlite3_stmt *stmt = store_prepare(st, "SELECT 1 + coalesce(max(revision),"
	    " 0) FROM policy_history WHERE scenario_id = ?1");
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, sid, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	return rc == SQLITE_ROW ? 0 : step_err(rc);
}

static int
put_write(struct store *st, struct put_args *a, const struct stored_row *was)
{
	struct policy *p = a->p;
	char now[TIMEFMT_LEN], *doc = NULL, *after = NULL;
	char derived[NETADDR_IFNAMSIZ];
	sqlite3_stmt *stmt;
	bool uses, derives, claim_new;
	int64_t gen;
	int rc;

	derives = p->n_sources == 0 && p->n_interfaces == 0 &&
	    store_derive_iface(st, p->network_id, derived);
	/* A claim the row holds already was checked when it was made (and
	 * every writer checks against it since): an update that keeps it
	 * costs no lookups. */
	claim_new = derives && strcmp(derived, was->derived_iface) != 0;
	rc = store_profile_get(st, p->profile, &uses);
	if (rc == EGW_E_NOTFOUND) {
		policy_errors_add(a->errs, "/profile", "unknown profile \"%s\"",
		    p->profile);
		return EGW_E_INVALID;
	}
	if (rc != 0)
		return rc;
	if (!uses && (rc = refuse_unused_entries(p, a->errs)) != 0)
		return rc;
	if ((rc = store_bump_generation(st, &gen)) != 0 ||
	    (rc = release_completed_claims(st, p, claim_new ? derived : NULL,
	    a->actor, gen)) != 0 ||
	    (rc = check_claims(st, p, claim_new ? derived : NULL, a->errs,
	    NULL)) != 0)
		return rc;
	timefmt_now(now);
	p->generation = gen;
	p->applied_generation = was->applied_generation;
	snprintf(p->updated_at, sizeof(p->updated_at), "%s", now);
	p->apply_status = POLICY_APPLY_PENDING;
	p->apply_error[0] = '\0';
	if (was->exists) {
		/* Everything the document holds is known before the write:
		 * the row and its document go in one statement. */
		p->id = was->id;
		p->revision = was->revision + 1;
		memcpy(p->created_at, was->created_at, sizeof(p->created_at));
		/* As the statement below: enabling clears completed_at. */
		snprintf(p->completed_at, sizeof(p->completed_at), "%s",
		    p->enabled ? "" : was->completed_at);
		if ((doc = codec_policy_document(p, a->input)) == NULL)
			return EGW_E_NOMEM;
		stmt = store_prepare(st, "UPDATE policies SET network_id = ?2,"
		    " profile = ?3, mode = ?4, enabled = ?5, dns_servers_set = ?6,"
		    " revision = ?9, generation = ?7, updated_at = ?8,"
		    " completed_at = CASE WHEN ?5 THEN NULL ELSE completed_at END,"
		    " apply_status = 'pending', apply_error = NULL, api_json = ?10,"
		    " api_json_generation = ?7 WHERE id = ?1");
		if (stmt == NULL) {
			free(doc);
			return EGW_E_DB;
		}
		sqlite3_bind_int64(stmt, 1, p->id);
		sqlite3_bind_int64(stmt, 9, p->revision);
		sqlite3_bind_text(stmt, 10, doc, -1, SQLITE_STATIC);
	} else {
		/* A scenario created again after a delete continues above
		 * every revision it ever had: restarting at 1 would let a
		 * read-modify-write of the deleted policy (revision 1, 2, ...)
		 * pass the revision check and overwrite the new one.  The
		 * highest, not the newest: older versions restarted at 1.  It
		 * reads the scenario's whole history (~27 ms at 50,000 rows of
		 * one scenario), on a create only; an index on revision would
		 * cost every change a page.  No RETURNING: SQLite builds a
		 * temporary table for the row it returns; what it would return
		 * is known here or from the connection. */
		if ((rc = create_revision(st, p->scenario_id, &p->revision)) != 0)
			return rc;
		stmt = store_prepare(st, "INSERT INTO policies (scenario_id,"
		    " network_id, profile, mode, enabled, dns_servers_set, revision,"
		    " generation, created_at, updated_at, derived_iface) VALUES"
		    " (?1, ?2, ?3, ?4, ?5, ?6, ?9, ?7, ?8, ?8, ?11)");
		if (stmt == NULL)
			return EGW_E_DB;
		sqlite3_bind_text(stmt, 1, p->scenario_id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(stmt, 9, p->revision);
	}
	sqlite3_bind_text(stmt, 2, p->network_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 3, p->profile, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 4, policy_mode_name(p->mode), -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 5, p->enabled);
	sqlite3_bind_int(stmt, 6, p->dns_servers_set);
	sqlite3_bind_int64(stmt, 7, gen);
	sqlite3_bind_text(stmt, 8, now, -1, SQLITE_TRANSIENT);
	if (!was->exists) {
		if (derives)
			sqlite3_bind_text(stmt, 11, derived, -1,
			    SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(stmt, 11);
	}
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		free(doc);
		return step_err(rc);
	}
	if (!was->exists) {
		p->id = sqlite3_last_insert_rowid(store_db(st));
		snprintf(p->created_at, sizeof(p->created_at), "%s", now);
		p->completed_at[0] = '\0';
	}
	if (p->id <= 0 || p->id >= INT32_MAX) {
		log_errorx("policy id %lld outside the packet mark range",
		    (long long)p->id);
		free(doc);
		return EGW_E_DB;
	}
	/* Apart from the row's statement: rewriting an indexed column with
	 * the value it has costs its index a page per update. */
	if (was->exists &&
	    strcmp(derives ? derived : "", was->derived_iface) != 0 &&
	    (rc = set_derived_iface(st, p->id,
	    derives ? derived : NULL)) != 0) {
		free(doc);
		return rc;
	}
	if ((rc = write_children(st, p)) != 0 || (doc == NULL &&
	    (rc = save_document(st, p, a->input, &doc)) != 0)) {
		free(doc);
		return rc;
	}
	/* The history row and the event carry the same text of the policy. */
	if ((after = document_text(doc, p)) == NULL)
		rc = EGW_E_NOMEM;
	else
		rc = history_insert(st, was->exists ? "update" : "create",
		    p->scenario_id, a->actor, p->revision, gen, was->api_text,
		    after);
	if (rc == 0)
		rc = audit_policy_event_text(st, was->exists ? "policy.updated"
		    : "policy.created", p, after, a->actor, gen, NULL);
	free(doc);
	free(after);
	if (rc != 0)
		return rc;
	*a->created = !was->exists;
	return 0;
}

static int
put_txn(struct store *st, void *arg)
{
	struct put_args *a = arg;
	struct policy *p = a->p;
	struct stored_row was;
	int rc;

	if ((rc = stored_row_load(st, p->scenario_id, a->input, &a->old,
	    &was)) != 0)
		return rc;
	/* a->revision, not p->revision: a busy retry runs this again after
	 * put_write() set p->revision to the one it was writing. */
	if (was.exists && p->revision_given && a->revision != was.revision) {
		rc = EGW_E_CONFLICT;
	} else if (!was.exists && p->revision_given && a->revision != 0) {
		rc = EGW_E_CONFLICT;
	} else if (was.same_input && a->old == NULL &&
	    (a->old = policy_new()) == NULL) {
		rc = EGW_E_NOMEM;
	} else if (was.same_input &&
	    (rc = store_policy_get(st, p->scenario_id, a->old)) != EGW_E_BADROW) {
		/* Same policy: report the stored state, write nothing. */
		if (rc == 0) {
			*p = *a->old;
			*a->created = false;
			rc = 1;
		}
	} else {
		/* (rows that do not parse behind the same document: rewritten) */
		rc = put_write(st, a, &was);
	}
	free(was.api_text);
	return rc;
}

int
store_policy_put(struct store *st, struct policy *p,
    const struct store_actor *actor, bool *created,
    struct policy_errors *errs)
{
	struct policy_errors local;
	struct put_args a;
	bool created_local = false;
	int rc;

	if (errs == NULL) {
		errs = &local;
		policy_errors_init(errs);
	}
	if (created == NULL)
		created = &created_local;
	*created = false;
	if (policy_validate(p, errs) != 0)
		return EGW_E_INVALID;
	memset(&a, 0, sizeof(a));
	a.p = p;
	a.actor = actor;
	a.created = created;
	a.errs = errs;
	a.input = codec_policy_input_string(p);
	a.revision = p->revision;
	/* a.old: only when the put finds its row unchanged, or without a
	 * stored document (a 32 KiB allocation per put otherwise). */
	if (a.input == NULL) {
		rc = EGW_E_NOMEM;
		goto out;
	}
	rc = with_txn_as(st, &a.actor, put_txn, &a);
out:
	free((char *)a.input);
	policy_free(a.old);
	return rc;
}

struct simple_args {
	const char *scenario_id;
	const struct store_actor *actor;
	bool enabled;
	int64_t generation;
	struct policy *p;
	struct policy *out;
};

static int
delete_one(struct store *st, const struct policy *p, const char *op,
    const char *type, const struct store_actor *actor, int64_t gen)
{
	sqlite3_stmt *stmt = store_prepare(st, "DELETE FROM policies WHERE id = ?1");
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_int64(stmt, 1, p->id);
	if ((rc = exec_stmt(stmt)) != 0)
		return rc;
	if ((rc = add_history(st, op, p->scenario_id, actor, p->revision, gen, p,
	    NULL, NULL)) != 0)
		return rc;
	return audit_policy_event(st, type, p, actor, gen, NULL);
}

static int
delete_txn(struct store *st, void *arg)
{
	struct simple_args *a = arg;
	int rc;

	/* A policy whose rows do not parse can still be deleted. */
	if ((rc = store_policy_get(st, a->scenario_id, a->p)) != 0 &&
	    rc != EGW_E_BADROW)
		return rc;
	if ((rc = store_bump_generation(st, &a->generation)) != 0)
		return rc;
	return delete_one(st, a->p, "delete", "policy.deleted", a->actor,
	    a->generation);
}

static int
run_simple(struct store *st, int (*fn)(struct store *, void *),
    struct simple_args *a)
{
	int rc;

	if ((a->p = policy_new()) == NULL)
		return EGW_E_NOMEM;
	rc = with_txn_as(st, &a->actor, fn, a);
	if (rc == 0 && a->out != NULL)
		*a->out = *a->p;
	policy_free(a->p);
	return rc;
}

int
store_policy_delete(struct store *st, const char *scenario_id,
    const struct store_actor *actor, int64_t *generation)
{
	struct simple_args a = { .scenario_id = scenario_id, .actor = actor };
	int rc = run_simple(st, delete_txn, &a);

	if (rc == 0 && generation != NULL)
		*generation = a.generation;
	return rc;
}

/* Updates enabled/completed_at, bumps revision and generation, reloads. */
static int
state_change(struct store *st, struct simple_args *a, bool enabled,
    bool complete, const char *op, const char *type)
{
	struct policy *before;
	char now[TIMEFMT_LEN], *input, *doc = NULL;
	sqlite3_stmt *stmt;
	int64_t gen;
	int rc;

	if ((before = policy_new()) == NULL)
		return EGW_E_NOMEM;
	*before = *a->p;
	if ((rc = store_bump_generation(st, &gen)) != 0)
		goto out;
	stmt = store_prepare(st, "UPDATE policies SET enabled = ?2,"
	    " revision = revision + 1, generation = ?3, updated_at = ?4,"
	    " completed_at = CASE WHEN ?5 THEN ?4 WHEN ?2 THEN NULL"
	    " ELSE completed_at END,"
	    " apply_status = 'pending', apply_error = NULL WHERE id = ?1");
	if (stmt == NULL) {
		rc = EGW_E_DB;
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, a->p->id);
	sqlite3_bind_int(stmt, 2, enabled);
	sqlite3_bind_int64(stmt, 3, gen);
	sqlite3_bind_text(stmt, 4, timefmt_now(now), -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(stmt, 5, complete);
	if ((rc = exec_stmt(stmt)) != 0)
		goto out;
	rc = store_policy_get_by_id(st, a->p->id, a->p);
	if (rc == EGW_E_BADROW) {
		/* No document from half the rows: it stays missing, and a
		 * read says the rows do not parse. */
		rc = 0;
	} else if (rc != 0) {
		goto out;
	} else if ((input = codec_policy_input_string(a->p)) == NULL) {
		rc = EGW_E_NOMEM;
		goto out;
	} else {
		rc = save_document(st, a->p, input, &doc);
		free(input);
	}
	if (rc != 0 || (rc = add_history(st, op, a->p->scenario_id, a->actor,
	    a->p->revision, gen, before, a->p, doc)) != 0)
		goto out;
	rc = audit_policy_event(st, type, a->p, a->actor, gen, NULL);
	a->generation = gen;
out:
	free(doc);
	policy_free(before);
	return rc;
}

static int
enable_txn(struct store *st, void *arg)
{
	struct simple_args *a = arg;
	int rc;

	if ((rc = store_policy_get(st, a->scenario_id, a->p)) != 0 &&
	    rc != EGW_E_BADROW)
		return rc;
	if (a->p->enabled == a->enabled)
		return 1;
	return state_change(st, a, a->enabled, false,
	    a->enabled ? "enable" : "disable",
	    a->enabled ? "policy.enabled" : "policy.disabled");
}

int
store_policy_set_enabled(struct store *st, const char *scenario_id,
    bool enabled, const struct store_actor *actor, struct policy *out)
{
	struct simple_args a = {
		.scenario_id = scenario_id, .actor = actor, .enabled = enabled,
		.out = out
	};

	return run_simple(st, enable_txn, &a);
}

static int
complete_txn(struct store *st, void *arg)
{
	struct simple_args *a = arg;
	int rc;

	/* Completing closes: rows that do not parse must not stop it. */
	if ((rc = store_policy_get(st, a->scenario_id, a->p)) != 0 &&
	    rc != EGW_E_BADROW)
		return rc;
	if (!a->p->enabled && a->p->completed_at[0] != '\0')
		return 1;
	return state_change(st, a, false, true, "complete", "policy.completed");
}

int
store_policy_complete(struct store *st, const char *scenario_id,
    const struct store_actor *actor)
{
	struct simple_args a = { .scenario_id = scenario_id, .actor = actor };

	return run_simple(st, complete_txn, &a);
}

struct expire_args {
	const char *cutoff;
	size_t deleted;
};

static int
expire_txn(struct store *st, void *arg)
{
	static const struct store_actor expirer = { .actor = "expiry" };
	struct expire_args *a = arg;
	struct policy *p = NULL;
	sqlite3_stmt *stmt;
	int64_t *ids = NULL, *grown, gen;
	size_t n = 0, cap = 0;
	int rc, err = 0;

	a->deleted = 0;
	stmt = store_prepare(st, "SELECT id FROM policies WHERE enabled = 0"
	    " AND completed_at IS NOT NULL AND completed_at < ?1 ORDER BY id");
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, a->cutoff, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if ((grown = realloc(ids, cap * sizeof(*ids))) == NULL) {
				err = EGW_E_NOMEM;
				break;
			}
			ids = grown;
		}
		ids[n++] = sqlite3_column_int64(stmt, 0);
	}
	sqlite3_reset(stmt);
	if (err == 0 && rc != SQLITE_DONE)
		err = step_err(rc);
	if (err == 0 && n == 0)
		err = 1;
	if (err == 0 && (p = policy_new()) == NULL)
		err = EGW_E_NOMEM;
	if (err == 0)
		err = store_bump_generation(st, &gen);
	for (size_t i = 0; err == 0 && i < n; i++) {
		err = store_policy_get_by_id(st, ids[i], p);
		if (err == 0 || err == EGW_E_BADROW)
			err = delete_one(st, p, "expire", "policy.expired",
			    &expirer, gen);
	}
	if (err == 0)
		a->deleted = n;
	policy_free(p);
	free(ids);
	return err;
}

int
store_policy_expire_completed(struct store *st, unsigned retention_s,
    size_t *deleted)
{
	char cutoff[TIMEFMT_LEN];
	struct expire_args a = { .cutoff = cutoff };
	int rc;

	timefmt_from_ms(timefmt_now_ms() - (int64_t)retention_s * 1000, cutoff);
	rc = with_txn(st, expire_txn, &a);
	if (deleted != NULL)
		*deleted = rc == 0 ? a.deleted : 0;
	return rc;
}

int
store_policy_set_apply_result(struct store *st, const char *scenario_id,
    int64_t generation, enum policy_apply_status status, const char *error)
{
	/* Two statements: "(?4 IS NULL OR scenario_id = ?4)" would keep
	 * SQLite from using the scenario_id index (a scan per call). */
	sqlite3_stmt *stmt = scenario_id != NULL ?
	    store_prepare(st, "UPDATE policies SET"
	    " apply_status = ?1, apply_error = substr(?2, 1, ?5),"
	    " applied_generation = ?3"
	    " WHERE scenario_id = ?4 AND generation <= ?3") :
	    store_prepare(st, "UPDATE policies SET"
	    " apply_status = ?1, apply_error = substr(?2, 1, ?5),"
	    " applied_generation = ?3 WHERE generation <= ?3");

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, policy_apply_status_name(status), -1,
	    SQLITE_STATIC);
	if (error != NULL && error[0] != '\0')
		sqlite3_bind_text(stmt, 2, error, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 3, generation);
	if (scenario_id != NULL)
		sqlite3_bind_text(stmt, 4, scenario_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(stmt, 5, POLICY_ERROR_MAX - 1);
	return exec_stmt(stmt);
}

int
store_policy_history(struct store *st, const char *scenario_id,
    int64_t before_id, size_t limit,
    int (*cb)(const struct store_history_entry *h, void *ctx), void *ctx,
    int64_t *next_cursor)
{
	struct store_history_entry h;
	sqlite3_stmt *stmt;
	size_t seen = 0;
	int rc, err = 0;

	if (next_cursor != NULL)
		*next_cursor = 0;
	if (limit == 0 || limit > STORE_POLICY_LIST_MAX)
		return EGW_E_INVALID;
	stmt = store_prepare(st, "SELECT id, ts, scenario_id, operation, actor,"
	    " request_id, revision, generation, before_json, after_json"
	    " FROM policy_history WHERE (?1 IS NULL OR scenario_id = ?1)"
	    " AND (?2 = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3");
	if (stmt == NULL)
		return EGW_E_DB;
	if (scenario_id != NULL)
		sqlite3_bind_text(stmt, 1, scenario_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 2, before_id);
	sqlite3_bind_int64(stmt, 3, (sqlite3_int64)limit + 1);
	while (err == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (seen == limit) {
			if (next_cursor != NULL)
				*next_cursor = h.id;
			break;
		}
		h.id = sqlite3_column_int64(stmt, 0);
		h.ts = (const char *)sqlite3_column_text(stmt, 1);
		h.scenario_id = (const char *)sqlite3_column_text(stmt, 2);
		h.operation = (const char *)sqlite3_column_text(stmt, 3);
		h.actor = (const char *)sqlite3_column_text(stmt, 4);
		h.request_id = (const char *)sqlite3_column_text(stmt, 5);
		h.revision = sqlite3_column_int64(stmt, 6);
		h.generation = sqlite3_column_int64(stmt, 7);
		h.before_json = (const char *)sqlite3_column_text(stmt, 8);
		h.after_json = (const char *)sqlite3_column_text(stmt, 9);
		seen++;
		err = cb(&h, ctx);
	}
	if (err == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = step_err(rc);
	sqlite3_reset(stmt);
	return err;
}

/* ---- profiles ---- */

int
store_profile_get(struct store *st, const char *name, bool *uses_policy_entries)
{
	sqlite3_stmt *stmt = store_prepare(st,
	    "SELECT uses_policy_entries FROM profiles WHERE name = ?1");
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && uses_policy_entries != NULL)
		*uses_policy_entries = sqlite3_column_int(stmt, 0) != 0;
	sqlite3_reset(stmt);
	if (rc == SQLITE_DONE)
		return EGW_E_NOTFOUND;
	return rc == SQLITE_ROW ? 0 : step_err(rc);
}

static int
load_profile_rules(struct store *st, struct store_profile *pr)
{
	sqlite3_stmt *stmt = store_prepare(st, "SELECT proto, dest, port_lo,"
	    " port_hi FROM profile_rules WHERE profile = ?1 ORDER BY position");
	char proto[8], dest[64];
	const char *why;
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	pr->n_rules = 0;
	pr->error[0] = '\0';
	sqlite3_bind_text(stmt, 1, pr->name, -1, SQLITE_TRANSIENT);
	while (pr->error[0] == '\0' && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct policy_rule *r = &pr->rules[pr->n_rules];
		size_t pos = pr->n_rules + 1;

		if (pr->n_rules >= POLICY_MAX_RULES) {
			snprintf(pr->error, sizeof(pr->error), "more than %d rules",
			    POLICY_MAX_RULES);
			break;
		}
		memset(r, 0, sizeof(*r));
		store_col_text(stmt, 0, proto, sizeof(proto));
		if (netaddr_parse_proto(proto, &r->proto) != 0)
			snprintf(pr->error, sizeof(pr->error), "rule %zu: protocol"
			    " is not tcp, udp, icmp or any", pos);
		if (sqlite3_column_type(stmt, 1) != SQLITE_NULL) {
			store_col_text(stmt, 1, dest, sizeof(dest));
			if (netaddr_parse_prefix(dest, &r->dest, &why) != 0 &&
			    pr->error[0] == '\0')
				snprintf(pr->error, sizeof(pr->error), "rule %zu:"
				    " dest is not an address or prefix (%s)", pos, why);
			r->has_dest = true;
		}
		if (sqlite3_column_type(stmt, 2) != SQLITE_NULL) {
			r->n_ports = 1;
			r->ports[0].lo = (uint16_t)sqlite3_column_int(stmt, 2);
			r->ports[0].hi = (uint16_t)sqlite3_column_int(stmt, 3);
		}
		pr->n_rules++;
	}
	sqlite3_reset(stmt);
	if (pr->error[0] != '\0') {
		pr->n_rules = 0;
		return 0;
	}
	return rc == SQLITE_DONE ? 0 : step_err(rc);
}

static const char sql_profile_one[] = "SELECT name, description,"
    " uses_policy_entries, builtin FROM profiles WHERE name = ?1";

static void
profile_from_row(sqlite3_stmt *stmt, struct store_profile *pr)
{
	store_col_text(stmt, 0, pr->name, sizeof(pr->name));
	store_col_text(stmt, 1, pr->description, sizeof(pr->description));
	pr->uses_policy_entries = sqlite3_column_int(stmt, 2) != 0;
	pr->builtin = sqlite3_column_int(stmt, 3) != 0;
	pr->n_rules = 0;
}

int
store_profile_load(struct store *st, const char *name,
    struct store_profile *out)
{
	sqlite3_stmt *stmt = store_prepare(st, sql_profile_one);
	int rc;

	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		profile_from_row(stmt, out);
	sqlite3_reset(stmt);
	if (rc == SQLITE_DONE)
		return EGW_E_NOTFOUND;
	if (rc != SQLITE_ROW)
		return step_err(rc);
	return load_profile_rules(st, out);
}

int
store_profile_list(struct store *st,
    int (*cb)(const struct store_profile *pr, void *ctx), void *ctx)
{
	sqlite3_stmt *stmt;
	struct store_profile *pr;
	char (*names)[POLICY_PROFILE_MAX + 1] = NULL, (*grown)[POLICY_PROFILE_MAX + 1];
	size_t n = 0, cap = 0;
	int rc, err = 0;

	stmt = store_prepare(st, "SELECT name FROM profiles ORDER BY name");
	if (stmt == NULL)
		return EGW_E_DB;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if ((grown = realloc(names, cap * sizeof(*names))) == NULL) {
				err = EGW_E_NOMEM;
				break;
			}
			names = grown;
		}
		store_col_text(stmt, 0, names[n++], sizeof(*names));
	}
	sqlite3_reset(stmt);
	if (err == 0 && rc != SQLITE_DONE)
		err = step_err(rc);
	if (err == 0 && (pr = malloc(sizeof(*pr))) == NULL)
		err = EGW_E_NOMEM;
	if (err != 0) {
		free(names);
		return err;
	}
	for (size_t i = 0; i < n && err == 0; i++) {
		if ((err = store_profile_load(st, names[i], pr)) == 0)
			err = cb(pr, ctx);
		else if (err == EGW_E_NOTFOUND)
			err = 0;	/* deleted meanwhile */
	}
	free(pr);
	free(names);
	return err;
}

int
store_track_profile(struct store *st, const char *track,
    char out[POLICY_PROFILE_MAX + 1])
{
	sqlite3_stmt *stmt = store_prepare(st, "SELECT profile FROM track_profiles"
	    " WHERE track IN (?1, '*') ORDER BY track = '*' LIMIT 1");
	int rc;

	snprintf(out, POLICY_PROFILE_MAX + 1, "none");
	if (stmt == NULL)
		return EGW_E_DB;
	sqlite3_bind_text(stmt, 1, track != NULL ? track : "*", -1,
	    SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		store_col_text(stmt, 0, out, POLICY_PROFILE_MAX + 1);
	sqlite3_reset(stmt);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : step_err(rc);
}
