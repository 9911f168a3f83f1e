/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-flowlog's engine: the NFLOG group binding, the
 * receive thread and the batching writer.
 *
 * Two threads, one queue.  The receive thread does nothing but recv() on
 * the netlink socket, parse each message (pktparse.h) into a fixed-size
 * event and append it to a bounded in-memory queue, so the socket is
 * drained even while the writer waits for the database lock.  The writer
 * (the caller's thread) takes up to FLOWLOG_BATCH_MAX events, or whatever
 * arrived within FLOWLOG_BATCH_MS of the first one, attributes them to
 * scenarios through a cached policy map (reloaded when PRAGMA data_version
 * and the desired generation say policies changed: every 200 ms, and at
 * once, at most once per batch, when a packet's mark is not in the map)
 * and commits them as one store_egress_insert() transaction with their
 * audit "flow" events.  A deleted policy stays in the map for
 * STORE_FLOWLOG_GRACE_MS (60 s; store_flowlog.h) after the reload that
 * first missed it, so packets logged while it existed, or with its mark
 * until the applier removed it, still name its scenario when written
 * after the delete (ids are never reused).  Not across a restart.
 *
 * No silent loss: the group is bound with per-instance sequence numbers,
 * so a gap counts exactly the messages the kernel could not deliver
 * (socket overrun, reported as ENOBUFS, also counted); a full queue and a
 * batch the database refused are counted too.  Retention deletes the
 * outbox's flow events with the log rows, published or not; those NATS
 * never had are counted apart from the lost messages (their rows were
 * written).  All counters are published
 * every second in the component_status row "flowlog" (info JSON), which
 * the API shows in /v1/stats and /metrics.  Exact packet totals come from
 * the nft counters (the applier reads them); logs are rate-limited samples.
 */
#ifndef EGW_FLOWLOG_H
#define EGW_FLOWLOG_H

#include "config.h"

#include <signal.h>
#include <stdint.h>

#define FLOWLOG_BATCH_MAX 1000		/* events per transaction (EGRESS_INSERT_MAX) */
#define FLOWLOG_BATCH_MS 5		/* max wait after the first event */
#define FLOWLOG_QUEUE_MAX 131072	/* events buffered between threads */
#define FLOWLOG_COPY_RANGE 192		/* payload bytes copied per packet */
#define FLOWLOG_STATUS_MS 1000		/* component_status heartbeat */
#define FLOWLOG_PRUNE_MS 10000		/* retention pass interval */
#define FLOWLOG_PRUNE_BATCH 500		/* rows per retention transaction */

/* Counters since the process started; published in component_status. */
struct flowlog_stats {
	uint64_t received;	/* NFLOG messages with our prefix */
	uint64_t written;	/* rows committed */
	uint64_t lost;		/* kernel + queue + write losses, see below */
	uint64_t batches;	/* transactions committed */
	uint64_t enobufs;	/* recv() overrun notifications */
	uint64_t seq_lost;	/* messages missing from the sequence */
	uint64_t queue_dropped;	/* events dropped on a full queue */
	uint64_t write_dropped;	/* events of batches the database refused */
	uint64_t foreign;	/* messages whose prefix is not ours (ignored) */
	uint64_t malformed;	/* payload not IPv4/IPv6: row without addresses */
	uint64_t unknown_policy; /* policy id not in the policies table
				  * (nor deleted within the grace period) */
	uint64_t pruned;	/* egress_log rows deleted by retention */
	uint64_t outbox_pruned;	/* flow events deleted by retention */
	uint64_t outbox_dropped; /* of them, never published (not in lost) */
	uint64_t write_ms;	/* wall time spent in batch transactions */
	uint64_t queue_depth;	/* events waiting now */
};

struct flowlog;

/**
 * flowlog_open() - open the database and bind the NFLOG group
 * @cfg: configuration (nflog_group, nflog_rcvbuf, db_path, retention);
 *       borrowed for the lifetime of the handle
 * @out: the handle, owned by the caller (flowlog_close)
 *
 * Needs CAP_NET_ADMIN in the network namespace whose rules log.
 *
 * Returns: 0; EGW_E_IO with errno set when NFLOG cannot be opened or the
 * group bound (EBUSY: another process holds the group; EPERM: no
 * CAP_NET_ADMIN); or what store_open returns.
 */
int flowlog_open(const struct config *cfg, struct flowlog **out);

/**
 * flowlog_run() - receive and write until *@stop becomes non-zero
 * @fl: the handle
 * @stop: set by a signal handler; checked at least every 200 ms
 *
 * On stop, whatever is still in the socket and the queue is written before
 * it returns, and the final counters are published.
 *
 * Returns: 0, or EGW_E_IO / EGW_E_NOMEM when the receive thread could not
 * start.
 */
int flowlog_run(struct flowlog *fl, volatile sig_atomic_t *stop);

/**
 * flowlog_stats() - a snapshot of the counters
 * @fl: the handle
 * @out: the counters
 */
void flowlog_stats(struct flowlog *fl, struct flowlog_stats *out);

/**
 * flowlog_close() - unbind the group, close the database; NULL is a no-op
 */
void flowlog_close(struct flowlog *fl);

#endif
