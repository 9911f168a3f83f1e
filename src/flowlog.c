/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-flowlog's NFLOG binding, receive thread and
 * batching writer (see flowlog.h for the design).
 *
 * Locking: the queue (q, q_head, q_len, q_first_ms, reader_done) is guarded
 * by mu; counters are relaxed atomics; everything else belongs to one
 * thread (the "reader-only" and "writer-only" groups below).  Only the
 * writer touches SQLite; only the reader touches the netlink socket.
 */
#include "flowlog.h"
#include "err.h"
#include "log.h"
#include "pktparse.h"
#include "store.h"
#include "store_component.h"
#include "store_egress.h"
#include "store_flowlog.h"
#include "timefmt.h"

#include <errno.h>
#include <json-c/json.h>
#include <libnetfilter_log/libnetfilter_log.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define FLOWLOG_RECV_BUF (256 * 1024)	/* > the kernel's largest batch */
#define FLOWLOG_NLBUFSIZ 65536		/* kernel-side batch buffer */
#define FLOWLOG_QTHRESH 64		/* kernel flushes after this many */
#define FLOWLOG_FLUSH_CS 1		/* ... or after 1/100 s */
#define FLOWLOG_STAGE_MAX 4096		/* events parsed per recv() */
#define FLOWLOG_IDLE_MS 200		/* writer wake-up when idle */
#define FLOWLOG_POLICY_CHECK_MS 200	/* PRAGMA data_version poll */
#define FLOWLOG_DRAIN_MS 1000		/* max drain time at shutdown */
#define FLOWLOG_WRITE_TRIES 6		/* busy retries before a batch is lost */
#define FLOWLOG_CLOCK_SKEW_MS 3600000	/* kernel timestamp sanity window */

/* One logged packet, parsed; fixed size so the queue never allocates. */
struct flowlog_event {
	int64_t ts_ms;
	uint32_t policy_id;
	uint32_t mark;
	bool id_from_mark;
	uint8_t action;
	bool parsed;
	struct pktparse_packet pkt;
	char reason[PKTPARSE_REASON_MAX + 1];
};

struct flowlog {
	const struct config *cfg;
	struct store *st;
	struct nflog_handle *h;
	struct nflog_g_handle *gh;
	int fd;
	int rcvbuf;
	char started_at[TIMEFMT_LEN];
	volatile sig_atomic_t *stop;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct flowlog_event *q;
	size_t q_head, q_len;
	int64_t q_first_ms;	/* monotonic arrival of the oldest queued event */
	bool reader_done;

	/* reader-only */
	bool have_seq;
	uint32_t next_seq;
	int64_t recv_ms;
	int64_t last_enobufs_log_ms;
	struct flowlog_event *stage;
	size_t n_stage;

	/* writer-only */
	struct store_flowlog_policy *pol;
	size_t n_pol;
	int64_t data_version;		/* at the generation's last read */
	int64_t generation;		/* desired generation of the map */
	int64_t last_policy_check_ms;
	bool miss_checked;		/* this batch has checked on a miss */
	bool stop_lost;			/* stopping, and a batch was lost to the lock */
	struct flowlog_event *batch;
	struct egress_entry *entries;

	/* counters */
	_Atomic uint64_t received, enobufs, seq_lost, queue_dropped, foreign,
	    malformed, written, batches, write_dropped, unknown_policy, pruned,
	    outbox_pruned, outbox_dropped, write_ms;
};

static uint64_t
flowlog_get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void
flowlog_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- policy map (writer) ---- */

static int
flowlog_reload_policies(struct flowlog *fl)
{
	struct store_flowlog_policy *v;
	size_t n, gone = 0;
	int rc;

	/* Deleted policies stay a while: their queued packets, and those
	 * logged until the applier removed their marks, keep the scenario. */
	rc = store_flowlog_policies(fl->st, fl->pol, fl->n_pol,
	    timefmt_monotonic_ms(), &v, &n);
	if (rc != 0) {
		log_warnx("policy map not reloaded: %s", err_message(rc));
		return rc;
	}
	free(fl->pol);
	fl->pol = v;
	fl->n_pol = n;
	for (size_t i = 0; i < n; i++)
		gone += v[i].gone;
	log_debug("policy map reloaded: %zu policies, %zu of them deleted",
	    n, gone);
	return 0;
}

/*
 * Reload when another connection committed and the desired generation
 * moved: every policy mutation bumps it, and the bridge's outbox
 * deliveries, which commit all the time, do not.  The generation is read
 * before the load, so the map is never older than fl->generation says.
 */
static void
flowlog_refresh(struct flowlog *fl)
{
	int64_t dv, gen;

	dv = store_data_version(fl->st);
	if (dv == fl->data_version)
		return;
	/* On a failure the memo stays: the next call tries again. */
	if (store_generation(fl->st, &gen, NULL) != 0)
		return;
	if (gen != fl->generation && flowlog_reload_policies(fl) != 0)
		return;
	fl->data_version = dv;
	fl->generation = gen;
}

static void
flowlog_check_policies(struct flowlog *fl, int64_t now)
{
	if (now - fl->last_policy_check_ms < FLOWLOG_POLICY_CHECK_MS)
		return;
	fl->last_policy_check_ms = now;
	flowlog_refresh(fl);
}

static int
flowlog_policy_cmp(const void *key, const void *elem)
{
	uint32_t id = *(const uint32_t *)key;
	const struct store_flowlog_policy *p = elem;

	return id < p->id ? -1 : id > p->id;
}

static const struct store_flowlog_policy *
flowlog_policy(struct flowlog *fl, uint32_t id)
{
	const struct store_flowlog_policy *p;

	p = bsearch(&id, fl->pol, fl->n_pol, sizeof(*fl->pol), flowlog_policy_cmp);
	/*
	 * A policy created since the last check: its first packets arrive
	 * within milliseconds of its rules, well inside the check interval,
	 * and a row written now keeps no scenario for good.  Check at once,
	 * with no time limit: a policy's marks reach the kernel only after
	 * it committed, so one check after the batch was taken sees every
	 * policy the batch's packets can name, and one per batch is enough.
	 * It reloads only when the generation moved, so a mark that has no
	 * policy (a deleted one's stray packets) costs a PRAGMA per batch,
	 * or two statements while other connections commit, but no reload;
	 * a known mark never reaches SQL.
	 */
	if (p == NULL && !fl->miss_checked) {
		fl->miss_checked = true;
		flowlog_refresh(fl);
		p = bsearch(&id, fl->pol, fl->n_pol, sizeof(*fl->pol),
		    flowlog_policy_cmp);
	}
	return p;
}

/* ---- receive thread ---- */

static void flowlog_push_stage(struct flowlog *fl);

static int
flowlog_on_packet(struct nflog_g_handle *gh, struct nfgenmsg *nfmsg,
    struct nflog_data *nfa, void *data)
{
	struct flowlog *fl = data;
	struct flowlog_event *ev;
	struct pktparse_prefix pp;
	struct timeval tv;
	const char *prefix;
	char *payload = NULL;
	uint32_t seq;
	int plen;

	if (nflog_get_seq(nfa, &seq) == 0) {
		uint32_t gap = seq - fl->next_seq;

		/* A gap is what the kernel built but could not deliver. */
		if (fl->have_seq && gap != 0) {
			if (gap < (1u << 30))
				flowlog_add(&fl->seq_lost, gap);
			else
				log_warnx("NFLOG sequence went back (%u -> %u)",
				    fl->next_seq, seq);
		}
		fl->next_seq = seq + 1;
		fl->have_seq = true;
	}
	prefix = nflog_get_prefix(nfa);
	if (prefix == NULL ||
	    pktparse_prefix(prefix, strnlen(prefix, 128), &pp) != 0) {
		flowlog_add(&fl->foreign, 1);
		return 0;
	}
	flowlog_add(&fl->received, 1);
	ev = &fl->stage[fl->n_stage++];
	ev->action = (uint8_t)pp.action;
	ev->policy_id = pp.policy_id;
	ev->id_from_mark = pp.id_from_mark;
	memcpy(ev->reason, pp.reason, sizeof(ev->reason));
	ev->mark = nflog_get_nfmark(nfa);
	ev->ts_ms = fl->recv_ms;
	if (nflog_get_timestamp(nfa, &tv) == 0) {
		int64_t ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;

		if (ms > fl->recv_ms - FLOWLOG_CLOCK_SKEW_MS &&
		    ms < fl->recv_ms + FLOWLOG_CLOCK_SKEW_MS)
			ev->ts_ms = ms;
	}
	plen = nflog_get_payload(nfa, &payload);
	ev->parsed = plen > 0 && pktparse_packet((const uint8_t *)payload,
	    (size_t)plen, &ev->pkt) == 0;
	if (!ev->parsed) {
		memset(&ev->pkt, 0, sizeof(ev->pkt));
		flowlog_add(&fl->malformed, 1);
	}
	if (fl->n_stage == FLOWLOG_STAGE_MAX)
		flowlog_push_stage(fl);
	return 0;
}

/* Move the staged events into the queue under one lock. */
static void
flowlog_push_stage(struct flowlog *fl)
{
	size_t n = fl->n_stage, room;

	if (n == 0)
		return;
	pthread_mutex_lock(&fl->mu);
	room = FLOWLOG_QUEUE_MAX - fl->q_len;
	if (n > room) {
		flowlog_add(&fl->queue_dropped, n - room);
		n = room;
	}
	if (fl->q_len == 0 && n > 0)
		fl->q_first_ms = timefmt_monotonic_ms();
	for (size_t i = 0; i < n; i++) {
		size_t slot = (fl->q_head + fl->q_len) % FLOWLOG_QUEUE_MAX;

		fl->q[slot] = fl->stage[i];
		fl->q_len++;
	}
	pthread_cond_signal(&fl->cv);
	pthread_mutex_unlock(&fl->mu);
	fl->n_stage = 0;
}

static void *
flowlog_reader(void *arg)
{
	struct flowlog *fl = arg;
	char *buf = malloc(FLOWLOG_RECV_BUF);
	int64_t drain_until = 0;

	while (buf != NULL) {
		ssize_t n;

		if (*fl->stop && drain_until == 0) {
			drain_until = timefmt_monotonic_ms() + FLOWLOG_DRAIN_MS;
			/*
			 * Unbind first: the kernel flushes what it holds for
			 * the group into the socket and sends no more, so the
			 * drain below ends with everything received, instead
			 * of closing a socket the kernel still writes to.
			 * (The acknowledgement's wait may hand log messages
			 * to the callback: staged, pushed below.)
			 */
			if (nflog_unbind_group(fl->gh) == 0)
				fl->gh = NULL;
			else
				log_warn("NFLOG group not unbound before the drain");
			flowlog_push_stage(fl);
		}
		if (drain_until != 0 && timefmt_monotonic_ms() > drain_until)
			break;
		n = recv(fl->fd, buf, FLOWLOG_RECV_BUF, 0);
		if (n < 0) {
			int64_t now;

			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR) {
				/* Quiet for SO_RCVTIMEO: the kernel has flushed
				 * everything it held (its timeout is 10 ms). */
				if (drain_until != 0)
					break;
				continue;
			}
			if (errno != ENOBUFS) {
				log_warn("NFLOG recv");
				usleep(100000);
				continue;
			}
			flowlog_add(&fl->enobufs, 1);
			now = timefmt_monotonic_ms();
			if (now - fl->last_enobufs_log_ms >= 1000) {
				fl->last_enobufs_log_ms = now;
				log_warnx("NFLOG socket overrun: log messages lost"
				    " (%llu overruns so far; raise EGW_NFLOG_RCVBUF"
				    " or lower EGW_LOG_RATE)",
				    (unsigned long long)flowlog_get(&fl->enobufs));
			}
			continue;
		}
		fl->recv_ms = timefmt_now_ms();
		nflog_handle_packet(fl->h, buf, (int)n);
		flowlog_push_stage(fl);
	}
	if (buf == NULL)
		log_errorx("out of memory for the receive buffer");
	free(buf);
	pthread_mutex_lock(&fl->mu);
	fl->reader_done = true;
	pthread_cond_signal(&fl->cv);
	pthread_mutex_unlock(&fl->mu);
	return NULL;
}

/* ---- writer ---- */

static void
flowlog_deadline(struct timespec *ts, int64_t mono_ms)
{
	ts->tv_sec = mono_ms / 1000;
	ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

/* Wait for a batch: up to FLOWLOG_BATCH_MAX events, or what arrived within
 * FLOWLOG_BATCH_MS of the oldest one.  Returns how many were taken into
 * fl->batch; *done when the reader has stopped and nothing is left. */
static size_t
flowlog_take(struct flowlog *fl, bool *done)
{
	struct timespec ts;
	size_t n;

	pthread_mutex_lock(&fl->mu);
	flowlog_deadline(&ts, timefmt_monotonic_ms() + FLOWLOG_IDLE_MS);
	while (fl->q_len == 0 && !fl->reader_done) {
		if (pthread_cond_timedwait(&fl->cv, &fl->mu, &ts) == ETIMEDOUT)
			break;
	}
	while (fl->q_len > 0 && fl->q_len < FLOWLOG_BATCH_MAX &&
	    !fl->reader_done &&
	    timefmt_monotonic_ms() < fl->q_first_ms + FLOWLOG_BATCH_MS) {
		flowlog_deadline(&ts, fl->q_first_ms + FLOWLOG_BATCH_MS);
		pthread_cond_timedwait(&fl->cv, &fl->mu, &ts);
	}
	n = fl->q_len < FLOWLOG_BATCH_MAX ? fl->q_len : FLOWLOG_BATCH_MAX;
	for (size_t i = 0; i < n; i++) {
		fl->batch[i] = fl->q[fl->q_head];
		fl->q_head = (fl->q_head + 1) % FLOWLOG_QUEUE_MAX;
	}
	fl->q_len -= n;
	/* What is left has waited already: the next take needs no window. */
	if (fl->q_len > 0)
		fl->q_first_ms = timefmt_monotonic_ms() - FLOWLOG_BATCH_MS;
	*done = fl->reader_done && fl->q_len == 0;
	pthread_mutex_unlock(&fl->mu);
	return n;
}

static void
flowlog_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
flowlog_entry(struct flowlog *fl, const struct flowlog_event *ev,
    struct egress_entry *e)
{
	const struct store_flowlog_policy *p = NULL;
	uint32_t id = ev->id_from_mark || ev->policy_id == 0 ? ev->mark
	    : ev->policy_id;
	char proto[4];

	memset(e, 0, sizeof(*e));
	timefmt_from_ms(ev->ts_ms, e->ts);
	/* The prefix names the deciding policy, or "m" the mark (the flat
	 * skeleton's shared rules); a prefix id 0 also falls back to the mark,
	 * which is 0 for a managed source without a policy (baseline) and
	 * for a spoofed packet from an interface that is no scenario's. */
	if (id != 0 && id <= INT32_MAX) {
		p = flowlog_policy(fl, id);
		if (p == NULL)
			flowlog_add(&fl->unknown_policy, 1);
	}
	if (p != NULL) {
		flowlog_copy(e->scenario_id, sizeof(e->scenario_id), p->scenario_id);
		flowlog_copy(e->network_id, sizeof(e->network_id), p->network_id);
	}
	flowlog_copy(e->action, sizeof(e->action),
	    pktparse_action_name((enum pktparse_action)ev->action));
	flowlog_copy(e->reason, sizeof(e->reason), ev->reason);
	if (!ev->parsed)
		return;
	pktparse_format_addr(ev->pkt.family, ev->pkt.src, e->src_ip);
	pktparse_format_addr(ev->pkt.family, ev->pkt.dst, e->dst_ip);
	if (ev->pkt.flags & PKTPARSE_F_PROTO)
		flowlog_copy(e->protocol, sizeof(e->protocol),
		    pktparse_proto_name(ev->pkt.proto, proto));
	if (ev->pkt.flags & PKTPARSE_F_PORTS) {
		e->has_ports = true;
		e->src_port = ev->pkt.sport;
		e->dst_port = ev->pkt.dport;
	}
}

static void
flowlog_write(struct flowlog *fl, size_t n)
{
	int64_t t0 = timefmt_monotonic_ms();
	int rc = 0;

	flowlog_check_policies(fl, t0);
	fl->miss_checked = false;
	for (size_t i = 0; i < n; i++)
		flowlog_entry(fl, &fl->batch[i], &fl->entries[i]);
	/* Stopping after a batch was lost to the lock: one attempt each for
	 * the rest of the queue, so a long one cannot outlast the grace. */
	for (int attempt = 0; attempt < (fl->stop_lost ? 1 : FLOWLOG_WRITE_TRIES);
	    attempt++) {
		/* store_egress_insert already waits out the busy timeout. */
		rc = store_egress_insert(fl->st, fl->entries, n, true);
		if (rc != EGW_E_BUSY)
			break;
		log_warnx("database busy, %zu log rows waiting (attempt %d)",
		    n, attempt + 1);
	}
	if (rc == EGW_E_BUSY && *fl->stop)
		fl->stop_lost = true;
	flowlog_add(&fl->write_ms, (uint64_t)(timefmt_monotonic_ms() - t0));
	if (rc == 0) {
		flowlog_add(&fl->written, n);
		flowlog_add(&fl->batches, 1);
		return;
	}
	flowlog_add(&fl->write_dropped, n);
	log_errorx("%zu log rows lost: %s", n, err_message(rc));
}

void
flowlog_stats(struct flowlog *fl, struct flowlog_stats *s)
{
	uint64_t kernel;

	memset(s, 0, sizeof(*s));
	s->received = flowlog_get(&fl->received);
	s->written = flowlog_get(&fl->written);
	s->batches = flowlog_get(&fl->batches);
	s->enobufs = flowlog_get(&fl->enobufs);
	s->seq_lost = flowlog_get(&fl->seq_lost);
	s->queue_dropped = flowlog_get(&fl->queue_dropped);
	s->write_dropped = flowlog_get(&fl->write_dropped);
	s->foreign = flowlog_get(&fl->foreign);
	s->malformed = flowlog_get(&fl->malformed);
	s->unknown_policy = flowlog_get(&fl->unknown_policy);
	s->pruned = flowlog_get(&fl->pruned);
	s->outbox_pruned = flowlog_get(&fl->outbox_pruned);
	s->outbox_dropped = flowlog_get(&fl->outbox_dropped);
	s->write_ms = flowlog_get(&fl->write_ms);
	/* The sequence gap is exact; an overrun without one (a kernel that
	 * ignores the SEQ flag) still counts as at least one message.  Flow
	 * events pruned unpublished are not in it: lost counts messages
	 * without a row, and theirs were written (received = written +
	 * lost). */
	kernel = s->seq_lost > s->enobufs ? s->seq_lost : s->enobufs;
	s->lost = kernel + s->queue_dropped + s->write_dropped;
	pthread_mutex_lock(&fl->mu);
	s->queue_depth = fl->q_len;
	pthread_mutex_unlock(&fl->mu);
}

/* @running false: the last report, on the way out. */
static void
flowlog_publish(struct flowlog *fl, bool running)
{
	struct flowlog_stats s;
	struct json_object *o = json_object_new_object();
	int rc;

	if (o == NULL)
		return;
	flowlog_stats(fl, &s);
#define FLOWLOG_J(name) json_object_object_add(o, #name, \
	json_object_new_int64((int64_t)s.name))
	FLOWLOG_J(received);
	FLOWLOG_J(written);
	FLOWLOG_J(lost);
	FLOWLOG_J(batches);
	FLOWLOG_J(enobufs);
	FLOWLOG_J(seq_lost);
	FLOWLOG_J(queue_dropped);
	FLOWLOG_J(write_dropped);
	FLOWLOG_J(foreign);
	FLOWLOG_J(malformed);
	FLOWLOG_J(unknown_policy);
	FLOWLOG_J(pruned);
	FLOWLOG_J(outbox_pruned);
	FLOWLOG_J(outbox_dropped);
	FLOWLOG_J(queue_depth);
	FLOWLOG_J(write_ms);
#undef FLOWLOG_J
	json_object_object_add(o, "queue_max", json_object_new_int(FLOWLOG_QUEUE_MAX));
	json_object_object_add(o, "group", json_object_new_int(fl->cfg->nflog_group));
	json_object_object_add(o, "rcvbuf", json_object_new_int(fl->rcvbuf));
	json_object_object_add(o, "started_at", json_object_new_string(fl->started_at));
	json_object_object_add(o, "running", json_object_new_boolean(running));
	rc = store_component_heartbeat(fl->st, "flowlog", o);
	if (rc != 0)
		log_warnx("status not written: %s", err_message(rc));
	json_object_put(o);
}

/*
 * Small retention transactions until @budget rows of either table went or
 * nothing more is due; returns true when more may be due.  The caller
 * passes what it wrote since the last pass plus one transaction, and calls
 * again as soon as it has written FLOWLOG_PRUNE_BATCH rows: one transaction
 * per written batch of up to FLOWLOG_BATCH_MAX rows let the log outgrow its
 * cap without bound once batches averaged more than FLOWLOG_PRUNE_BATCH
 * rows, and a pass only every FLOWLOG_PRUNE_MS let it overshoot by that
 * long's rows.  Each written row adds one flow event, so both tables need
 * the same budget.
 */
static bool
flowlog_prune(struct flowlog *fl, size_t budget)
{
	struct store_flowlog_pruned p;
	size_t log_total = 0, flow_total = 0;
	bool more;

	do {
		int rc = store_flowlog_prune_step(fl->st, fl->cfg->log_retention_s,
		    fl->cfg->log_max_rows, FLOWLOG_PRUNE_BATCH, &p);

		if (rc != 0) {
			log_warnx("retention: %s", err_message(rc));
			return false;
		}
		flowlog_add(&fl->pruned, p.log_rows);
		flowlog_add(&fl->outbox_pruned, p.flow_events);
		flowlog_add(&fl->outbox_dropped, p.flow_undelivered);
		log_total += p.log_rows;
		flow_total += p.flow_events;
		more = p.log_rows == FLOWLOG_PRUNE_BATCH ||
		    p.flow_events == FLOWLOG_PRUNE_BATCH;
	} while (more && log_total < budget && flow_total < budget);
	return more;
}

int
flowlog_run(struct flowlog *fl, volatile sig_atomic_t *stop)
{
	pthread_t reader;
	int64_t next_status = 0, next_prune;
	size_t unpruned = 0;	/* rows written since the last retention pass */
	bool done = false;
	int rc;

	fl->stop = stop;
	if ((rc = pthread_create(&reader, NULL, flowlog_reader, fl)) != 0) {
		errno = rc;
		log_error("cannot start the receive thread");
		return EGW_E_IO;
	}
	log_info("receiving NFLOG group %u", fl->cfg->nflog_group);
	next_prune = timefmt_monotonic_ms() + 1000;
	while (!done) {
		size_t n = flowlog_take(fl, &done);
		int64_t now;

		if (n > 0) {
			flowlog_write(fl, n);
			unpruned += n;
		}
		now = timefmt_monotonic_ms();
		/* While stopping only the last report goes out: each waits
		 * for the lock another process may hold. */
		if (now >= next_status && !*stop) {
			flowlog_publish(fl, true);
			next_status = now + FLOWLOG_STATUS_MS;
		}
		if (!*stop && (now >= next_prune ||
		    unpruned >= FLOWLOG_PRUNE_BATCH)) {
			bool more = flowlog_prune(fl, unpruned + FLOWLOG_PRUNE_BATCH);

			unpruned = 0;
			next_prune = more ? now : now + FLOWLOG_PRUNE_MS;
		}
	}
	pthread_join(reader, NULL);
	flowlog_publish(fl, false);
	{
		struct flowlog_stats s;

		flowlog_stats(fl, &s);
		log_info("stopped: %llu received, %llu written, %llu lost",
		    (unsigned long long)s.received, (unsigned long long)s.written,
		    (unsigned long long)s.lost);
	}
	return 0;
}

/* ---- set-up ---- */

static int
flowlog_bind(struct flowlog *fl)
{
	const struct config *cfg = fl->cfg;
	struct timeval tv = { .tv_sec = 0, .tv_usec = FLOWLOG_IDLE_MS * 1000 };
	int size = (int)cfg->nflog_rcvbuf;
	uint32_t nlbufsiz = FLOWLOG_NLBUFSIZ;
	socklen_t sl = sizeof(fl->rcvbuf);

	fl->h = nflog_open();
	if (fl->h == NULL) {
		log_error("nflog_open (needs CAP_NET_ADMIN)");
		return EGW_E_IO;
	}
	/* Legacy per-family binding: a no-op on kernels since 3.17. */
	nflog_unbind_pf(fl->h, AF_INET);
	nflog_bind_pf(fl->h, AF_INET);
	nflog_unbind_pf(fl->h, AF_INET6);
	nflog_bind_pf(fl->h, AF_INET6);
	fl->gh = nflog_bind_group(fl->h, cfg->nflog_group);
	if (fl->gh == NULL) {
		log_error("cannot bind NFLOG group %u%s", cfg->nflog_group,
		    errno == EBUSY ? " (another process holds it)" : "");
		return EGW_E_IO;
	}
	/* Keep the kernel's batch well inside the socket buffer. */
	if (nlbufsiz > cfg->nflog_rcvbuf / 4)
		nlbufsiz = cfg->nflog_rcvbuf / 4;
	if (nflog_set_mode(fl->gh, NFULNL_COPY_PACKET, FLOWLOG_COPY_RANGE) < 0 ||
	    nflog_set_flags(fl->gh, NFULNL_CFG_F_SEQ) < 0 ||
	    nflog_set_nlbufsiz(fl->gh, nlbufsiz) < 0 ||
	    nflog_set_qthresh(fl->gh, FLOWLOG_QTHRESH) < 0 ||
	    nflog_set_timeout(fl->gh, FLOWLOG_FLUSH_CS) < 0) {
		log_error("cannot configure NFLOG group %u", cfg->nflog_group);
		return EGW_E_IO;
	}
	/* The instance is ours and new, so the kernel numbers its messages
	 * from 0: a gap before the first one delivered is a loss too. */
	fl->have_seq = true;
	fl->next_seq = 0;
	nflog_callback_register(fl->gh, flowlog_on_packet, fl);
	fl->fd = nflog_fd(fl->h);
	/* nflog_set_nlbufsiz() resized the socket; the setting wins.  FORCE
	 * passes net.core.rmem_max (CAP_NET_ADMIN). */
	if (setsockopt(fl->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0 &&
	    setsockopt(fl->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) < 0)
		log_warn("cannot set the receive buffer to %d bytes", size);
	if (getsockopt(fl->fd, SOL_SOCKET, SO_RCVBUF, &fl->rcvbuf, &sl) < 0)
		fl->rcvbuf = 0;
	if (setsockopt(fl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		log_error("SO_RCVTIMEO");
		return EGW_E_IO;
	}
	log_info("bound NFLOG group %u (receive buffer %d bytes)",
	    cfg->nflog_group, fl->rcvbuf);
	return 0;
}

int
flowlog_open(const struct config *cfg, struct flowlog **out)
{
	struct flowlog *fl;
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	fl = calloc(1, sizeof(*fl));
	if (fl == NULL)
		return EGW_E_NOMEM;
	fl->cfg = cfg;
	fl->fd = -1;
	timefmt_now(fl->started_at);
	pthread_mutex_init(&fl->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fl->cv, &ca);
	pthread_condattr_destroy(&ca);
	fl->q = calloc(FLOWLOG_QUEUE_MAX, sizeof(*fl->q));
	fl->stage = calloc(FLOWLOG_STAGE_MAX, sizeof(*fl->stage));
	fl->batch = calloc(FLOWLOG_BATCH_MAX, sizeof(*fl->batch));
	fl->entries = calloc(FLOWLOG_BATCH_MAX, sizeof(*fl->entries));
	if (fl->q == NULL || fl->stage == NULL || fl->batch == NULL ||
	    fl->entries == NULL) {
		rc = EGW_E_NOMEM;
		goto fail;
	}
	if ((rc = store_open(cfg->db_path, &fl->st)) != 0)
		goto fail;
	if ((rc = store_flowlog_tune(fl->st)) != 0)
		goto fail;
	fl->data_version = store_data_version(fl->st);
	if (store_generation(fl->st, &fl->generation, NULL) != 0)
		fl->generation = -1;
	if ((rc = flowlog_reload_policies(fl)) != 0)
		goto fail;
	if ((rc = flowlog_bind(fl)) != 0)
		goto fail;
	*out = fl;
	return 0;
fail:
	flowlog_close(fl);
	return rc;
}

void
flowlog_close(struct flowlog *fl)
{
	if (fl == NULL)
		return;
	if (fl->gh != NULL)
		nflog_unbind_group(fl->gh);
	if (fl->h != NULL)
		nflog_close(fl->h);
	store_close(fl->st);
	free(fl->pol);
	free(fl->q);
	free(fl->stage);
	free(fl->batch);
	free(fl->entries);
	pthread_cond_destroy(&fl->cv);
	pthread_mutex_destroy(&fl->mu);
	free(fl);
}
