/* SPDX-License-Identifier: MIT */
/*
 * This file contains the API pool's writer process and its client (see
 * writer.h for why it exists).
 *
 * Messages are C structures, a policy in them packed to the list entries
 * in use: the writer and the workers are the same executable, forked from
 * one master, and the socket is private to its user (mode 0600, and the
 * peer's uid is checked).  Every string is still forced to end inside its
 * field before use, and a message of the wrong size or magic closes the
 * connection.  The magic names the layout: a pool of another build
 * sharing EGW_RUN_DIR for a moment is refused before anything runs.
 */
#include "writer.h"
#include "applier_client.h"
#include "auth.h"
#include "config.h"
#include "err.h"
#include "flushmark.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "pool.h"
#include "store.h"
#include "store_policy.h"
#include "timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sqlite3.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* "EGWZ": packed policies, revision_given, token_hash; a new layout gets a
 * new magic. */
#define WRITER_MAGIC 0x5a574745u
#define WRITER_BATCH_MAX 64
/* The pool's 256 workers at most (config.c), plus room for replacements
 * that connect before the writer has seen their predecessors hang up. */
#define WRITER_MAX_CLIENTS 272
/* How long a worker waits for its answer.  The writer starts no
 * operation with less than WRITER_EXEC_MARGIN_MS of that left (one
 * operation retries a busy database for at most STORE_TXN_ATTEMPTS busy
 * timeouts, 25 s), so nothing runs after its worker gave up.  nginx's
 * fastcgi_read_timeout (nginx/egw-api.conf.in) exceeds this plus ?wait='s
 * longest: nginx must not give up on a worker still serving a change. */
#define WRITER_REPLY_TIMEOUT_S 60
#define WRITER_EXEC_MARGIN_MS 30000
/* A reply's rc (never an EGW_E_* code): the writer took the request off
 * the socket but will not run it (it is stopping, or has no room); the
 * worker writes directly, as when no writer is there. */
#define WRITER_RC_NOT_RUN 1
/* A stopping writer starts batches for this long after the stop signal.
 * The master kills what is left POOL_GRACE_MS (10 s) after it sent the
 * signal: the rest is for the last batch's flush, and for the workers
 * told "not run" to write directly before the kill. */
#define WRITER_STOP_MS 8000
_Static_assert(WRITER_STOP_MS + 2000 <= POOL_GRACE_MS, "room before the kill");

enum writer_op {
	WRITER_OP_PUT = 1,
	WRITER_OP_DELETE,
	WRITER_OP_ENABLE,
	WRITER_OP_DISABLE
};

struct writer_req {
	uint32_t magic;
	uint32_t op;
	int64_t deadline_ms;		/* CLOCK_MONOTONIC: the worker gives up */
	char actor[STORE_ACTOR_MAX];
	/* Set instead of actor when the client's token is checked in the
	 * change's transaction (auth_authorize_write): its hex SHA-256. */
	char token_hash[STORE_TOKEN_HASH_LEN + 1];
	char request_id[HTTP_REQUEST_ID_MAX + 1];
	char scenario_id[POLICY_SCENARIO_ID_MAX + 1];
	struct policy p;		/* WRITER_OP_PUT only; cut off otherwise */
};

struct writer_rep {
	uint32_t magic;
	int32_t rc;
	int64_t generation;
	uint8_t created;
	struct policy p;		/* PUT, ENABLE, DISABLE */
	struct policy_errors errs;	/* only sent with EGW_E_INVALID */
};

#define WRITER_REQ_HEAD offsetof(struct writer_req, p)
#define WRITER_REP_HEAD offsetof(struct writer_rep, p)
#define WRITER_REP_POLICY offsetof(struct writer_rep, errs)

/*
 * On the wire a policy leaves out the unused ends of its two large arrays:
 * of its 32 KiB, hosts take 4.6 and rules 24, and most policies use a few
 * entries of each.  Packed and unpacked in place, in the struct that holds
 * it; the four parts are [start, hosts), the hosts in use, [n_ports,
 * rules), the rules in use and [revision, end).
 */
#define WIRE_HOSTS offsetof(struct policy, hosts)
#define WIRE_MID offsetof(struct policy, n_ports)
#define WIRE_RULES offsetof(struct policy, rules)
#define WIRE_TAIL offsetof(struct policy, revision)
#define WIRE_MID_LEN (WIRE_RULES - WIRE_MID)
#define WIRE_TAIL_LEN (sizeof(struct policy) - WIRE_TAIL)

/* The four parts must cover every field: nothing may sit between an array
 * and the part after it (it would be zeroed as the array's unused end),
 * and the counts must lie where unpacking reads them. */
_Static_assert(offsetof(struct policy, n_hosts) + sizeof(size_t) <= WIRE_HOSTS,
    "n_hosts precedes hosts");
_Static_assert(WIRE_MID == WIRE_HOSTS + sizeof(((struct policy *)0)->hosts),
    "n_ports follows hosts");
_Static_assert(offsetof(struct policy, n_rules) >= WIRE_MID &&
    offsetof(struct policy, n_rules) + sizeof(size_t) <= WIRE_RULES,
    "n_rules lies in the middle part");
_Static_assert(sizeof(((struct policy *)0)->n_hosts) == sizeof(size_t) &&
    sizeof(((struct policy *)0)->n_rules) == sizeof(size_t), "counts are size_t");
_Static_assert(WIRE_TAIL == WIRE_RULES + sizeof(((struct policy *)0)->rules),
    "revision follows rules");

/* Packs @p into @out, which may be @p itself; returns the packed length. */
static size_t
writer_policy_pack(const struct policy *p, struct policy *out)
{
	const unsigned char *from = (const unsigned char *)p;
	unsigned char *b = (unsigned char *)out;
	size_t hosts = p->n_hosts * sizeof(p->hosts[0]);
	size_t rules = p->n_rules * sizeof(p->rules[0]);
	size_t at = WIRE_HOSTS + hosts;

	if (out != p)
		memcpy(b, from, at);
	memmove(b + at, from + WIRE_MID, WIRE_MID_LEN);
	at += WIRE_MID_LEN;
	memmove(b + at, from + WIRE_RULES, rules);
	at += rules;
	memmove(b + at, from + WIRE_TAIL, WIRE_TAIL_LEN);
	return at + WIRE_TAIL_LEN;
}

/*
 * Restores the policy packed into the first @len bytes of @p; the unused
 * array ends come back zeroed.  Returns false, leaving @p undefined, when
 * the counts exceed the arrays or @len is not the length they imply.
 */
static bool
writer_policy_unpack(struct policy *p, size_t len)
{
	unsigned char *b = (unsigned char *)p;
	size_t n_rules, hosts, rules, at_mid, at_rules, at_tail;

	if (len < WIRE_HOSTS || p->n_hosts > POLICY_MAX_HOSTS)
		return false;
	hosts = p->n_hosts * sizeof(p->hosts[0]);
	at_mid = WIRE_HOSTS + hosts;
	if (len < at_mid + WIRE_MID_LEN)
		return false;
	memcpy(&n_rules, b + at_mid + offsetof(struct policy, n_rules) - WIRE_MID,
	    sizeof(n_rules));
	if (n_rules > POLICY_MAX_RULES)
		return false;
	rules = n_rules * sizeof(p->rules[0]);
	at_rules = at_mid + WIRE_MID_LEN;
	at_tail = at_rules + rules;
	if (len != at_tail + WIRE_TAIL_LEN)
		return false;
	/* From the end: each part moves up, past what is still to be read. */
	memmove(b + WIRE_TAIL, b + at_tail, WIRE_TAIL_LEN);
	memmove(b + WIRE_RULES, b + at_rules, rules);
	memmove(b + WIRE_MID, b + at_mid, WIRE_MID_LEN);
	memset(b + WIRE_HOSTS + hosts, 0, WIRE_MID - WIRE_HOSTS - hosts);
	memset(b + WIRE_RULES + rules, 0, WIRE_TAIL - WIRE_RULES - rules);
	return true;
}

static volatile sig_atomic_t writer_stop;
/* CLOCK_MONOTONIC ms of the first stop signal, set by the handler
 * (clock_gettime is async-signal-safe, the atomic lock-free). */
static _Atomic int_least64_t writer_stop_ms;
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
    "the handler's atomic is lock-free");

int
writer_socket_path(const struct config *cfg, char *out, size_t size)
{
	struct sockaddr_un sun;
	int n = snprintf(out, size, "%s/" CONFIG_WRITER_SOCKET, cfg->run_dir);

	if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(sun.sun_path))
		return EGW_E_CONFIG;
	return 0;
}

static int
writer_address(const struct config *cfg, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	return writer_socket_path(cfg, sun->sun_path, sizeof(sun->sun_path));
}

static int
writer_listen(const struct config *cfg, int *out)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd, rc;

	*out = -1;
	if (writer_address(cfg, &sun) != 0) {
		log_errorx("the writer socket path under %s is too long", cfg->run_dir);
		return EGW_E_IO;
	}
	if (unlink(sun.sun_path) != 0 && errno != ENOENT) {
		log_warn("cannot remove stale socket %s", sun.sun_path);
		return EGW_E_IO;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("writer socket");
		return EGW_E_IO;
	}
	/* Created 0600 from the start: no window where another user could
	 * connect and submit writes without a token. */
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc != 0 || listen(fd, WRITER_MAX_CLIENTS) != 0) {
		log_warn("cannot listen on %s", sun.sun_path);
		close(fd);
		return EGW_E_IO;
	}
	*out = fd;
	return 0;
}

/* ---- the writer process ---- */

/*
 * Durability is pipelined.  The writer's connection commits with
 * synchronous=NORMAL (the WAL is written, not flushed), hands the batch to
 * the sync thread and goes on with the next batch; the sync thread flushes
 * the WAL with fdatasync() and only then answers the batch's workers.  No
 * worker hears "done" before its write is on disk, exactly as with
 * synchronous=FULL, but the disk flush of one batch overlaps the work of
 * the next.  Other connections may read a committed batch a moment before
 * it is on disk: the applier may apply it (after a power loss it rebuilds
 * the kernel from what is on disk) and the NATS bridge may publish its
 * outbox events; a power loss in that moment leaves events on NATS for
 * changes that the database no longer has, whose clients were never told
 * they succeeded.  When the WAL cannot be opened for flushing, the
 * connection stays FULL and the sync thread only answers.
 *
 * A failed fdatasync() is remembered: Linux reports a write-back error
 * once and then calls the pages clean, so a later flush would "succeed"
 * over frames that never reached the disk.  Until a full checkpoint has
 * copied everything into the database file and emptied the WAL
 * (wal_checkpoint(TRUNCATE), which syncs), nothing new is run.
 */
enum writer_client_state {
	WRITER_CLIENT_FREE = 0,
	WRITER_CLIENT_IDLE,		/* connected, no request in hand */
	WRITER_CLIENT_PENDING,		/* answer owed by the sync thread */
	WRITER_CLIENT_DEAD		/* answer could not be sent: close */
};

struct writer_pending {
	struct writer_req req;
	size_t rep_len;
	struct writer_rep rep;
};

struct writer_client {
	int fd;
	enum writer_client_state state;	/* under writer.lock */
	struct writer_pending *pd;
};

struct writer {
	const struct config *cfg;
	struct store *st;
	struct metrics *metrics;
	int listen_fd;
	int wal_fd;			/* -1: commits are FULL already */
	int wake_fd;			/* eventfd: the sync thread answered */
	struct writer_client clients[WRITER_MAX_CLIENTS];
	size_t batch[WRITER_BATCH_MAX];	/* client indices */
	size_t scan_from;		/* writer_collect() starts here */

	pthread_mutex_t lock;
	pthread_cond_t more;
	size_t n_queued;
	size_t queued[WRITER_MAX_CLIENTS];
	bool sync_stop;
	bool sync_failed;		/* sticky until a TRUNCATE checkpoint */
};

static void
writer_on_signal(int sig)
{
	/* timefmt_monotonic_ms() is clock_gettime(): async-signal-safe. */
	int_least64_t none = 0, now = timefmt_monotonic_ms();

	(void)sig;
	writer_stop = 1;
	atomic_compare_exchange_strong(&writer_stop_ms, &none, now);
	/* Lock waits, batches and reruns alike end before the master's
	 * kill, POOL_GRACE_MS after it sent this signal. */
	store_stop_deadline(now + POOL_GRACE_MS - 500);
}

/*
 * Before closing a connection the writer will not serve: take off a
 * request already sent and say "not run", so that its worker writes
 * directly.  Closing over an unread message would make the worker's recv
 * fail with ECONNRESET, which it must read as "outcome unknown" (503).
 */
static void
writer_not_run(int fd)
{
	struct writer_rep rep;
	char head[WRITER_REQ_HEAD];
	ssize_t n;

	/* From here the worker's send fails (EPIPE: not queued, so it
	 * writes directly); what it queued before can still be read. */
	shutdown(fd, SHUT_RD);
	do	/* MSG_TRUNC: the record is taken whole, its head copied */
		n = recv(fd, head, sizeof(head), MSG_DONTWAIT | MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return;
	memset(&rep, 0, WRITER_REP_HEAD);
	rep.magic = WRITER_MAGIC;
	rep.rc = WRITER_RC_NOT_RUN;
	while (send(fd, &rep, WRITER_REP_HEAD, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
	    errno == EINTR)
		;
}

static void
writer_accept(struct writer *w)
{
	for (;;) {
		struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		socklen_t len = sizeof(cred);
		int fd = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct writer_client *c = NULL;

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
		    cred.uid != geteuid()) {
			log_warnx("writer: refused a connection from uid %ld",
			    (long)cred.uid);
			close(fd);
			continue;
		}
		pthread_mutex_lock(&w->lock);
		for (size_t i = 0; i < WRITER_MAX_CLIENTS && c == NULL; i++) {
			if (w->clients[i].state == WRITER_CLIENT_FREE)
				c = &w->clients[i];
		}
		if (c != NULL && c->pd == NULL)
			c->pd = malloc(sizeof(*c->pd));
		if (c == NULL || c->pd == NULL) {
			pthread_mutex_unlock(&w->lock);
			log_warnx("writer: no room for another worker; it writes directly");
			writer_not_run(fd);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->state = WRITER_CLIENT_IDLE;
		pthread_mutex_unlock(&w->lock);
	}
}

static void
writer_close_client(struct writer_client *c)
{
	close(c->fd);
	c->fd = -1;
	c->state = WRITER_CLIENT_FREE;
}

static void
writer_terminate(char *s, size_t size)
{
	s[size - 1] = '\0';
}

/* A request as received: the right size for its operation, our magic. */
static bool
writer_req_valid(struct writer_req *r, ssize_t len)
{
	/* MSG_TRUNC: len is the whole message's, so an oversized one fails */
	if (len < (ssize_t)WRITER_REQ_HEAD || len > (ssize_t)sizeof(*r) ||
	    r->magic != WRITER_MAGIC)
		return false;
	switch (r->op) {
	case WRITER_OP_PUT:
		if (!writer_policy_unpack(&r->p, (size_t)len - WRITER_REQ_HEAD))
			return false;
		break;
	case WRITER_OP_DELETE:
	case WRITER_OP_ENABLE:
	case WRITER_OP_DISABLE:
		if (len != (ssize_t)WRITER_REQ_HEAD)
			return false;
		break;
	default:
		return false;
	}
	writer_terminate(r->actor, sizeof(r->actor));
	writer_terminate(r->token_hash, sizeof(r->token_hash));
	if (r->token_hash[0] != '\0' && !auth_hash_valid(r->token_hash))
		return false;
	writer_terminate(r->request_id, sizeof(r->request_id));
	writer_terminate(r->scenario_id, sizeof(r->scenario_id));
	if (r->op != WRITER_OP_PUT)
		return policy_valid_id(r->scenario_id, POLICY_SCENARIO_ID_MAX, false);
	/* store_policy_put() validates the rest (counts, values). */
	writer_terminate(r->p.scenario_id, sizeof(r->p.scenario_id));
	writer_terminate(r->p.network_id, sizeof(r->p.network_id));
	writer_terminate(r->p.profile, sizeof(r->p.profile));
	for (size_t i = 0; i < POLICY_MAX_INTERFACES; i++)
		writer_terminate(r->p.interfaces[i], sizeof(r->p.interfaces[i]));
	writer_terminate(r->p.created_at, sizeof(r->p.created_at));
	writer_terminate(r->p.updated_at, sizeof(r->p.updated_at));
	writer_terminate(r->p.completed_at, sizeof(r->p.completed_at));
	writer_terminate(r->p.apply_error, sizeof(r->p.apply_error));
	return true;
}

/* Start @pd's answer: result @rc, nothing after the head yet. */
static void
writer_answer(struct writer_pending *pd, int rc)
{
	memset(&pd->rep, 0, WRITER_REP_HEAD);
	pd->rep.magic = WRITER_MAGIC;
	pd->rep.rc = rc;
	pd->rep_len = WRITER_REP_HEAD;
}

/*
 * Run one operation (on a savepoint when inside a batch).  Its lines
 * carry its request's id, as its worker's do; a batch's BEGIN and COMMIT
 * lines name no request, "a batch of N failed" lists them all, and after a
 * failed batch each operation runs again alone under its own id.
 */
static void
writer_exec(struct store *st, struct writer_pending *pd)
{
	struct writer_req *q = &pd->req;
	struct writer_rep *r = &pd->rep;
	const char *rid = q->request_id[0] ? q->request_id : NULL;
	struct store_actor actor = q->token_hash[0] != '\0' ?
	    auth_write_actor(q->token_hash, rid) :
	    (struct store_actor){ .actor = q->actor[0] ? q->actor : NULL,
	    .request_id = rid };
	bool created = false;
	int rc;

	/* Added on our side: a peer's deadline near INT64_MIN cannot overflow. */
	if (timefmt_monotonic_ms() + WRITER_EXEC_MARGIN_MS > q->deadline_ms) {
		/* Its worker may be gone or about to give up: never run it. */
		writer_answer(pd, EGW_E_UNAVAILABLE);
		return;
	}
	log_set_request_id(actor.request_id);
	writer_answer(pd, 0);
	/* Alone (a failed batch's rerun), the operation waits for the queue
	 * and the lock itself: it gives up rather than end after its worker
	 * (or after the master's kill: store_stop_deadline()). */
	store_set_deadline(st, q->deadline_ms);
	switch (q->op) {
	case WRITER_OP_PUT:
		r->p = q->p;
		policy_errors_init(&r->errs);
		rc = store_policy_put(st, &r->p, &actor, &created, &r->errs);
		r->generation = r->p.generation;
		pd->rep_len = rc == EGW_E_INVALID ? sizeof(*r) : WRITER_REP_POLICY;
		break;
	case WRITER_OP_DELETE:
		rc = store_policy_delete(st, q->scenario_id, &actor, &r->generation);
		break;
	default:
		policy_init(&r->p);
		rc = store_policy_set_enabled(st, q->scenario_id,
		    q->op == WRITER_OP_ENABLE, &actor, &r->p);
		r->generation = r->p.generation;
		pd->rep_len = WRITER_REP_POLICY;
		break;
	}
	store_set_deadline(st, 0);
	r->rc = rc;
	r->created = created;
	log_set_request_id(NULL);
}

/* The ids of the first @n batched requests, comma-separated, into @out. */
static void
writer_batch_ids(const struct writer *w, size_t n, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && len + 1 < size; i++) {
		const char *id = w->clients[w->batch[i]].pd->req.request_id;
		int k;

		if (id[0] == '\0')
			continue;
		k = snprintf(out + len, size - len, "%s%s", len > 0 ? "," : "",
		    id);
		if (k < 0)
			break;
		len += (size_t)k;
	}
}

/*
 * One transaction for the whole batch.  When it cannot be had, or a
 * statement error ends it, or the commit fails, nothing of it was kept:
 * every operation runs again on its own, exactly as without a writer.
 */
static void
writer_batch(struct writer *w, size_t n)
{
	bool done = false, queued;
	size_t i = 0;

	if (n > 1 && store_policy_batch_begin(w->st, &queued) == 0) {
		for (i = 0; i < n; i++) {
			writer_exec(w->st, w->clients[w->batch[i]].pd);
			if (!store_batch_alive(w->st))
				break;
		}
		if (i == n)
			done = store_policy_batch_end(w->st, queued, true) == 0;
		else
			store_policy_batch_end(w->st, queued, false);
		if (!done) {
			/* No single request's line: name them all, so that
			 * their clients' reports lead here. */
			char ids[WRITER_BATCH_MAX * (HTTP_REQUEST_ID_MAX + 1)];

			writer_batch_ids(w, n, ids, sizeof(ids));
			log_kv(LOG_LEVEL_WARN, ((const char *[]){ "request_ids",
			    ids[0] != '\0' ? ids : NULL, NULL }),
			    "writer: a batch of %zu failed; running each alone",
			    n);
		}
	}
	if (!done) {
		for (i = 0; i < n; i++)
			writer_exec(w->st, w->clients[w->batch[i]].pd);
	}
	metrics_writer_batch(w->metrics, n);
}

/*
 * After a failed flush: true once a TRUNCATE checkpoint has put every
 * commit into the (synced) database file and emptied the WAL.
 */
static bool
writer_durable(struct writer *w)
{
	bool failed;

	pthread_mutex_lock(&w->lock);
	failed = w->sync_failed;
	pthread_mutex_unlock(&w->lock);
	if (!failed)
		return true;
	if (!flushmark_checkpoint(w->cfg, w->st))
		return false;
	pthread_mutex_lock(&w->lock);
	w->sync_failed = false;
	pthread_mutex_unlock(&w->lock);
	log_info("writer: checkpoint done; writes resume");
	return true;
}

/* The disk is not trusted: answer without running anything. */
static void
writer_refuse(struct writer *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		writer_answer(w->clients[w->batch[i]].pd, EGW_E_IO);
}

/* Hand a committed batch to the sync thread. */
static void
writer_hand_over(struct writer *w, size_t n)
{
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < n; i++) {
		w->clients[w->batch[i]].state = WRITER_CLIENT_PENDING;
		w->queued[w->n_queued++] = w->batch[i];
	}
	pthread_cond_signal(&w->more);
	pthread_mutex_unlock(&w->lock);
}

/*
 * One nudge for a whole flushed group, before its answers go out: the
 * applier starts while the workers reply, and a group of n changes costs
 * one datagram instead of n.  Best effort: the applier also polls.
 */
static void
writer_nudge(struct writer *w, const size_t *take, size_t n)
{
	int64_t generation = 0;

	for (size_t i = 0; i < n; i++) {
		const struct writer_rep *r = &w->clients[take[i]].pd->rep;

		if (r->rc == 0 && r->generation > generation)
			generation = r->generation;
	}
	if (generation > 0 &&
	    applier_client_nudge_generation(w->cfg->applier_socket, generation) != 0)
		log_debug("applier nudge not delivered");
}

static void *
writer_sync_main(void *arg)
{
	struct writer *w = arg;
	size_t take[WRITER_MAX_CLIENTS];

	for (;;) {
		size_t n;
		bool flushed = true;
		uint64_t one = 1;

		pthread_mutex_lock(&w->lock);
		while (w->n_queued == 0 && !w->sync_stop)
			pthread_cond_wait(&w->more, &w->lock);
		n = w->n_queued;
		memcpy(take, w->queued, n * sizeof(*take));
		w->n_queued = 0;
		pthread_mutex_unlock(&w->lock);
		if (n == 0)
			break;
		/* One flush for everything committed so far. */
		if (w->wal_fd >= 0) {
			int rc;

			while ((rc = fdatasync(w->wal_fd)) != 0 && errno == EINTR)
				;
			pthread_mutex_lock(&w->lock);
			if (rc != 0) {
				log_warn("writer: fdatasync of the WAL; refusing writes"
				    " until a checkpoint succeeds");
				w->sync_failed = true;
				flushmark_set(w->cfg);
			}
			flushed = !w->sync_failed;
			pthread_mutex_unlock(&w->lock);
		}
		if (flushed)
			writer_nudge(w, take, n);
		for (size_t i = 0; i < n; i++) {
			struct writer_client *c = &w->clients[take[i]];
			struct writer_pending *pd = c->pd;
			ssize_t sent;

			if (!flushed && pd->rep.rc == 0) {
				/* Committed but maybe not durable: say so. */
				pd->rep.rc = EGW_E_IO;
				pd->rep_len = WRITER_REP_HEAD;
			}
			if (pd->rep_len == WRITER_REP_POLICY)
				pd->rep_len = WRITER_REP_HEAD +
				    writer_policy_pack(&pd->rep.p, &pd->rep.p);
			/* The worker waits for this answer and nothing else, so
			 * the socket has room; a full one means it is gone. */
			do
				sent = send(c->fd, &pd->rep, pd->rep_len,
				    MSG_NOSIGNAL | MSG_DONTWAIT);
			while (sent < 0 && errno == EINTR);
			pthread_mutex_lock(&w->lock);
			c->state = sent == (ssize_t)pd->rep_len ?
			    WRITER_CLIENT_IDLE : WRITER_CLIENT_DEAD;
			pthread_mutex_unlock(&w->lock);
		}
		if (write(w->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warn("writer: eventfd");
	}
	return NULL;
}

/*
 * Build the poll set: the listening socket, the sync thread's wake-ups and
 * every connected worker with no answer owed; close the dead.  Returns the
 * number of entries; map[i] is the client of pfd[i + 2].  *busy counts the
 * clients still owed an answer.
 */
static size_t
writer_poll_set(struct writer *w, struct pollfd *pfd, size_t *map,
    size_t *connected, size_t *busy)
{
	size_t n = 2;

	pfd[0].fd = w->listen_fd;
	pfd[0].events = POLLIN;
	pfd[0].revents = 0;
	pfd[1].fd = w->wake_fd;
	pfd[1].events = POLLIN;
	pfd[1].revents = 0;
	*connected = *busy = 0;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < WRITER_MAX_CLIENTS; i++) {
		struct writer_client *c = &w->clients[i];

		if (c->state == WRITER_CLIENT_DEAD)
			writer_close_client(c);
		if (c->state == WRITER_CLIENT_FREE)
			continue;
		(*connected)++;
		if (c->state == WRITER_CLIENT_PENDING) {
			(*busy)++;
			continue;
		}
		pfd[n].fd = c->fd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		map[n - 2] = i;
		n++;
	}
	pthread_mutex_unlock(&w->lock);
	return n;
}

/*
 * Take at most one request from every idle worker that sent one.  The scan
 * starts after the last client taken: with more senders than a batch
 * holds, a fixed start would always serve the lowest slots first.
 */
static size_t
writer_collect(struct writer *w, const struct pollfd *pfd, size_t n_pfd,
    const size_t *map)
{
	size_t n = 0, first = 2;

	while (first < n_pfd && map[first - 2] < w->scan_from)
		first++;
	for (size_t k = 0; k + 2 < n_pfd && n < WRITER_BATCH_MAX; k++) {
		size_t i = 2 + (first - 2 + k) % (n_pfd - 2);
		struct writer_client *c = &w->clients[map[i - 2]];
		ssize_t len;

		if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		do
			len = recv(c->fd, &c->pd->req, sizeof(c->pd->req),
			    MSG_DONTWAIT | MSG_TRUNC);
		while (len < 0 && errno == EINTR);
		if (len < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (len <= 0 || !writer_req_valid(&c->pd->req, len)) {
			if (len > 0)
				log_warnx("writer: malformed message (%zd bytes); closing"
				    " that connection", len);
			pthread_mutex_lock(&w->lock);
			writer_close_client(c);
			pthread_mutex_unlock(&w->lock);
			continue;
		}
		w->batch[n++] = map[i - 2];
		w->scan_from = map[i - 2] + 1;
	}
	return n;
}

static void
writer_install_signals(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = writer_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/*
 * The directory entry of a WAL the connection may just have created:
 * SQLite syncs it at the WAL's first sync, which under NORMAL is the first
 * checkpoint's, after writes were confirmed.
 */
static bool
writer_sync_dir_of(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd, rc;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 :
		    (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		log_warn("writer: cannot open %s to sync it; every commit"
		    " flushes itself", dir);
		return false;
	}
	while ((rc = fsync(fd)) != 0 && errno == EINTR)
		;
	if (rc != 0)
		log_warn("writer: fsync of %s; every commit flushes itself", dir);
	close(fd);
	return rc == 0;
}

/* The WAL, opened for fdatasync(), and the connection switched to NORMAL;
 * -1 (and FULL kept) when that cannot be done safely. */
static int
writer_open_wal(struct store *st)
{
	char path[4096];
	int fd;

	if (store_sibling_path(st, "-wal", path, sizeof(path)) != 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		log_warn("writer: cannot open %s; every commit flushes itself", path);
		return -1;
	}
	if (!writer_sync_dir_of(path) ||
	    store_exec(st, "PRAGMA synchronous = NORMAL") != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int
writer_run(const struct config *cfg, struct metrics *metrics)
{
	struct pollfd pfd[WRITER_MAX_CLIENTS + 2];
	size_t map[WRITER_MAX_CLIENTS];
	struct writer *w;
	pthread_t sync_thread;
	sigset_t all, old;
	int64_t stop_deadline = 0;
	int listen_fd = -1, rc, status = 1;

	writer_install_signals();
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return 1;
	w->cfg = cfg;
	w->metrics = metrics;
	w->listen_fd = -1;
	w->wal_fd = -1;
	w->wake_fd = -1;
	for (size_t i = 0; i < WRITER_MAX_CLIENTS; i++)
		w->clients[i].fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->more, NULL);
	if ((w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		log_warn("writer: eventfd");
		goto out;
	}
	if ((rc = store_open(cfg->db_path, &w->st)) != 0) {
		log_errorx("writer: cannot open %s: %s", cfg->db_path, err_message(rc));
		goto out;
	}
	w->wal_fd = writer_open_wal(w->st);
	if (flushmark_present(cfg)) {
		log_warnx("writer: a flush of the WAL failed before this writer"
		    " started; refusing writes until a checkpoint succeeds");
		w->sync_failed = true;
	}
	{
		size_t filled = 0;

		/* Before the first request: reads of these rows meanwhile
		 * rebuild their documents, correct but slower. */
		if ((rc = store_policy_fill_documents(w->st, &filled)) != 0)
			log_warnx("writer: policy documents not built: %s",
			    err_message(rc));
		else if (filled > 0)
			log_info("writer: built %zu policy documents", filled);
	}
	/* Its puts record and check derived claims; the master brought every
	 * row's up to date before it forked. */
	store_set_iface_deriver(w->st, config_iface_deriver, cfg);
	/* The sync thread takes no signals: the main thread's poll() must. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&sync_thread, NULL, writer_sync_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_errorx("writer: cannot start the sync thread: %s", strerror(rc));
		goto out;
	}
	/* Last: a worker that can connect is served from the first request. */
	if (writer_listen(cfg, &listen_fd) != 0 ||
	    fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK) != 0) {
		pthread_mutex_lock(&w->lock);
		w->sync_stop = true;
		pthread_cond_signal(&w->more);
		pthread_mutex_unlock(&w->lock);
		pthread_join(sync_thread, NULL);
		goto out;
	}
	w->listen_fd = listen_fd;
	log_debug("writer ready (pipelined flush: %s)", w->wal_fd >= 0 ? "yes" : "no");
	for (;;) {
		size_t n, n_pfd, connected, busy;
		int timeout = 1000;

		n_pfd = writer_poll_set(w, pfd, map, &connected, &busy);
		if (writer_stop) {
			/* The workers stop first and close their connections;
			 * a worker still finishing a request may need us. */
			if (stop_deadline == 0) {
				char path[CONFIG_PATH_MAX + 32];

				/* From the signal, which the master sent when
				 * its own POOL_GRACE_MS began. */
				stop_deadline = (int64_t)atomic_load(&writer_stop_ms);
				if (stop_deadline == 0)
					stop_deadline = timefmt_monotonic_ms();
				stop_deadline += WRITER_STOP_MS;
				/* Refuse new connections at once (the workers
				 * then write directly) rather than queue them
				 * for an accept that will not come.  Once the
				 * path is gone none can join the backlog, and
				 * those in it are taken and served: closing
				 * the socket over them would reset requests
				 * they may have sent already. */
				if (writer_socket_path(cfg, path, sizeof(path)) == 0)
					unlink(path);
				writer_accept(w);
				close(listen_fd);
				listen_fd = w->listen_fd = -1;
				pfd[0].fd = -1;	/* poll() ignores it */
				continue;	/* poll the new clients too */
			}
			if ((connected == 0 || timefmt_monotonic_ms() >= stop_deadline) &&
			    busy == 0)
				break;
			timeout = 100;
		}
		if (poll(pfd, n_pfd, timeout) < 0) {
			if (errno == EINTR)
				continue;
			log_warn("writer: poll");
			break;
		}
		/* Past its stop deadline the writer starts no batch: the
		 * master's SIGKILL may be near, and a batch cut by it leaves
		 * its workers "outcome unknown".  What was sent is answered
		 * "not run" on the way out. */
		if (stop_deadline != 0 && timefmt_monotonic_ms() >= stop_deadline)
			break;
		if (pfd[1].revents & POLLIN) {
			uint64_t v;

			while (read(w->wake_fd, &v, sizeof(v)) > 0)
				;
		}
		n = writer_collect(w, pfd, n_pfd, map);
		if (n > 0) {
			if (writer_durable(w))
				writer_batch(w, n);
			else
				writer_refuse(w, n);
			writer_hand_over(w, n);
		}
		if (pfd[0].fd >= 0 && (pfd[0].revents & POLLIN))
			writer_accept(w);
	}
	pthread_mutex_lock(&w->lock);
	w->sync_stop = true;
	pthread_cond_signal(&w->more);
	pthread_mutex_unlock(&w->lock);
	pthread_join(sync_thread, NULL);
	status = 0;
out:
	if (listen_fd >= 0) {
		char path[CONFIG_PATH_MAX + 32];

		close(listen_fd);
		/* Connections are refused from now on, not queued. */
		if (writer_socket_path(cfg, path, sizeof(path)) == 0)
			unlink(path);
	}
	for (size_t i = 0; i < WRITER_MAX_CLIENTS; i++) {
		if (w->clients[i].fd >= 0) {
			/* Idle here (the sync thread has answered every
			 * batch): a request sent meanwhile was never run. */
			writer_not_run(w->clients[i].fd);
			close(w->clients[i].fd);
		}
		free(w->clients[i].pd);
	}
	if (w->wal_fd >= 0)
		close(w->wal_fd);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	store_close(w->st);
	pthread_cond_destroy(&w->more);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return status;
}

/* ---- the worker's side ---- */

static int writer_conn = -1;	/* this worker's connection, kept */
static struct metrics *writer_client_metrics;	/* counts direct writes */

void
writer_client_init(struct metrics *metrics)
{
	writer_client_metrics = metrics;
}

static void
writer_disconnect(void)
{
	if (writer_conn >= 0)
		close(writer_conn);
	writer_conn = -1;
}

static bool
writer_connect(const struct config *cfg)
{
	struct timeval tv = { WRITER_REPLY_TIMEOUT_S, 0 };
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(cred);
	struct sockaddr_un sun;
	int fd;

	if (writer_conn >= 0)
		return true;
	if (writer_address(cfg, &sun) != 0)
		return false;
	/* Non-blocking connect: a full backlog means a stuck writer, and
	 * the worker writes directly instead of waiting in it. */
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
		close(fd);
		return false;
	}
	/* Policies go only to a writer of our own user (as the writer
	 * accepts only workers of it). */
	if (cred.uid != geteuid()) {
		log_warnx("the writer's socket belongs to uid %ld; writing directly",
		    (long)cred.uid);
		close(fd);
		return false;
	}
	writer_conn = fd;
	return true;
}

/* The reply's strings end inside their arrays, whatever the peer sent:
 * they go into JSON and log lines. */
static void
writer_reply_terminate(struct writer_rep *r, size_t len)
{
	if (len > WRITER_REP_HEAD) {
		struct policy *p = &r->p;

		writer_terminate(p->scenario_id, sizeof(p->scenario_id));
		writer_terminate(p->network_id, sizeof(p->network_id));
		writer_terminate(p->profile, sizeof(p->profile));
		for (size_t i = 0; i < POLICY_MAX_INTERFACES; i++)
			writer_terminate(p->interfaces[i], sizeof(p->interfaces[i]));
		writer_terminate(p->created_at, sizeof(p->created_at));
		writer_terminate(p->updated_at, sizeof(p->updated_at));
		writer_terminate(p->completed_at, sizeof(p->completed_at));
		writer_terminate(p->apply_error, sizeof(p->apply_error));
	}
	if (len == sizeof(*r)) {
		if (r->errs.count > POLICY_ERRORS_MAX)
			r->errs.count = POLICY_ERRORS_MAX;
		for (size_t i = 0; i < r->errs.count; i++) {
			writer_terminate(r->errs.items[i].path,
			    sizeof(r->errs.items[i].path));
			writer_terminate(r->errs.items[i].reason,
			    sizeof(r->errs.items[i].reason));
		}
	}
}

/*
 * Send @q and wait for the reply.  Returns 0 with a reply, 1 when the
 * request never reached a writer (the caller writes directly), or
 * EGW_E_UNAVAILABLE when it was sent and no valid reply came back.
 */
static int
writer_call(const struct config *cfg, const struct writer_req *q, size_t qlen,
    struct writer_rep *r)
{
	ssize_t n;

	for (int attempt = 0;; attempt++) {
		if (!writer_connect(cfg))
			return 1;
		do
			n = send(writer_conn, q, qlen, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n == (ssize_t)qlen)
			break;
		/* Not queued: a connection to a writer that has since been
		 * replaced.  Reconnect once; after that, write directly. */
		writer_disconnect();
		if (attempt > 0)
			return 1;
	}
	do
		n = recv(writer_conn, r, sizeof(*r), MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < (ssize_t)WRITER_REP_HEAD || r->magic != WRITER_MAGIC ||
	    (n != (ssize_t)WRITER_REP_HEAD && n != (ssize_t)sizeof(*r) &&
	    !writer_policy_unpack(&r->p, (size_t)n - WRITER_REP_HEAD))) {
		log_warnx("no answer from the writer (%s); the request's outcome"
		    " is unknown", n < 0 ? strerror(errno) : "connection closed");
		writer_disconnect();
		return EGW_E_UNAVAILABLE;
	}
	if (r->rc == WRITER_RC_NOT_RUN && n == (ssize_t)WRITER_REP_HEAD) {
		writer_disconnect();
		return 1;
	}
	if ((r->rc == EGW_E_INVALID && n != (ssize_t)sizeof(*r)) ||
	    (r->rc == 0 && q->op != WRITER_OP_DELETE &&
	    n == (ssize_t)WRITER_REP_HEAD)) {
		/* An error list or a changed policy owed and not sent. */
		log_warnx("a malformed answer from the writer; the request's"
		    " outcome is unknown");
		writer_disconnect();
		return EGW_E_UNAVAILABLE;
	}
	writer_reply_terminate(r, (size_t)n);
	return 0;
}

/* When a change's worker stops waiting for it, through the writer or not. */
static int64_t
writer_request_deadline(void)
{
	return timefmt_monotonic_ms() + WRITER_REPLY_TIMEOUT_S * 1000;
}

/*
 * Build the request, due by @deadline_ms, and exchange it with the
 * writer.  Returns 0 with *out the reply (the caller frees it), 1 when no
 * writer could be reached or the policy's lists are over their limits
 * (the caller writes directly, by the same deadline), or an error.
 */
static int
writer_exchange(const struct config *cfg, uint32_t op,
    const struct store_actor *actor, const char *sid, const struct policy *p,
    int64_t deadline_ms, struct writer_rep **out)
{
	struct writer_req *q;
	struct writer_rep *r;
	size_t qlen;
	int rc;

	*out = NULL;
	/* Packing trusts the counts; store_policy_put() refuses these with
	 * the same 422 as always. */
	if (p != NULL && (p->n_hosts > POLICY_MAX_HOSTS ||
	    p->n_rules > POLICY_MAX_RULES))
		return 1;
	q = malloc(sizeof(*q));
	r = malloc(sizeof(*r));
	if (q == NULL || r == NULL) {
		free(q);
		free(r);
		return EGW_E_NOMEM;
	}
	memset(q, 0, WRITER_REQ_HEAD);
	q->magic = WRITER_MAGIC;
	q->op = op;
	q->deadline_ms = deadline_ms;
	if (actor != NULL && actor->authorize != NULL) {
		/* The one check a request can carry across: the token's. */
		if (actor->authorize != auth_authorize_write ||
		    actor->credential == NULL ||
		    !auth_hash_valid(actor->credential)) {
			free(q);
			free(r);
			return EGW_E_INTERNAL;
		}
		memcpy(q->token_hash, actor->credential, sizeof(q->token_hash));
	} else if (actor != NULL && actor->actor != NULL) {
		snprintf(q->actor, sizeof(q->actor), "%s", actor->actor);
	}
	if (actor != NULL && actor->request_id != NULL)
		snprintf(q->request_id, sizeof(q->request_id), "%s", actor->request_id);
	snprintf(q->scenario_id, sizeof(q->scenario_id), "%s", sid);
	qlen = WRITER_REQ_HEAD;
	if (p != NULL)
		qlen += writer_policy_pack(p, &q->p);
	rc = writer_call(cfg, q, qlen, r);
	free(q);
	if (rc == 0)
		*out = r;
	else
		free(r);
	return rc;
}

/*
 * Before a change written without the writer.  It is given up by the
 * deadline its request to the writer had (nginx answers 504 past
 * fastcgi_read_timeout, and a change must not commit after its client
 * was told its outcome is unknown; time spent on the writer counts).
 * After a failed flush, the writer's checkpoint runs first, on the
 * worker's connection; EGW_E_IO (500, nothing run) while it cannot.
 * writer_direct_end() follows a 0.
 */
static int
writer_direct_begin(const struct config *cfg, struct store *st,
    int64_t deadline_ms)
{
	int rc;

	store_set_deadline(st, deadline_ms);
	if ((rc = flushmark_settle(cfg, st)) != 0)
		store_set_deadline(st, 0);
	return rc;
}

/* After it: a change written (@rc 0) is counted, and its worker tells the
 * applier. */
static void
writer_direct_end(const struct config *cfg, struct store *st, int rc,
    int64_t generation)
{
	store_set_deadline(st, 0);
	if (rc != 0)
		return;
	metrics_write_direct(writer_client_metrics);
	if (applier_client_nudge_generation(cfg->applier_socket, generation) != 0)
		log_debug("applier nudge not delivered");
}

int
writer_put(const struct config *cfg, struct store *st, struct policy *p,
    const struct store_actor *actor, bool *created, struct policy_errors *errs)
{
	int64_t deadline = writer_request_deadline();
	struct writer_rep *r;
	int rc = writer_exchange(cfg, WRITER_OP_PUT, actor, p->scenario_id, p,
	    deadline, &r);

	if (rc == 1) {	/* no writer: queue with every other writer */
		if ((rc = writer_direct_begin(cfg, st, deadline)) != 0)
			return rc;
		rc = store_policy_put(st, p, actor, created, errs);
		writer_direct_end(cfg, st, rc, p->generation);
		return rc;
	}
	if (rc != 0)
		return rc;
	rc = r->rc;
	if (rc == 0)
		*p = r->p;
	if (created != NULL)
		*created = r->created != 0;
	if (rc == EGW_E_INVALID && errs != NULL)
		*errs = r->errs;
	free(r);
	return rc;
}

int
writer_delete(const struct config *cfg, struct store *st,
    const char *scenario_id, const struct store_actor *actor,
    int64_t *generation)
{
	int64_t deadline = writer_request_deadline();
	struct writer_rep *r;
	int rc = writer_exchange(cfg, WRITER_OP_DELETE, actor, scenario_id, NULL,
	    deadline, &r);

	if (rc == 1) {	/* no writer: queue with every other writer */
		int64_t gen = 0;

		if ((rc = writer_direct_begin(cfg, st, deadline)) != 0)
			return rc;
		rc = store_policy_delete(st, scenario_id, actor, &gen);
		writer_direct_end(cfg, st, rc, gen);
		if (generation != NULL)
			*generation = gen;
		return rc;
	}
	if (rc != 0)
		return rc;
	rc = r->rc;
	if (rc == 0 && generation != NULL)
		*generation = r->generation;
	free(r);
	return rc;
}

int
writer_set_enabled(const struct config *cfg, struct store *st,
    const char *scenario_id, bool enabled, const struct store_actor *actor,
    struct policy *out)
{
	int64_t deadline = writer_request_deadline();
	struct writer_rep *r;
	int rc = writer_exchange(cfg, enabled ? WRITER_OP_ENABLE : WRITER_OP_DISABLE,
	    actor, scenario_id, NULL, deadline, &r);

	if (rc == 1) {	/* no writer: queue with every other writer */
		struct policy *p = out != NULL ? out : policy_new();

		if (p == NULL)
			return EGW_E_NOMEM;
		if ((rc = writer_direct_begin(cfg, st, deadline)) != 0) {
			if (p != out)
				policy_free(p);
			return rc;
		}
		rc = store_policy_set_enabled(st, scenario_id, enabled, actor, p);
		writer_direct_end(cfg, st, rc, p->generation);
		if (p != out)
			policy_free(p);
		return rc;
	}
	if (rc != 0)
		return rc;
	rc = r->rc;
	if (rc == 0 && out != NULL)
		*out = r->p;
	free(r);
	return rc;
}
