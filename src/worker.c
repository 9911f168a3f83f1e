/* SPDX-License-Identifier: MIT */
/*
 * This file contains the worker's accept loop and request pipeline (see
 * worker.h).
 *
 * Signals: the stop signals only set worker_stop; the loop looks at it
 * before each accept, so a request being served always finishes, and on
 * SIGTERM or SIGINT so do the ones already queued in the backlog
 * (worker_drain_backlog()).  They
 * are never blocked (that took two system calls per request) and are
 * installed with SA_RESTART, so a read or write to nginx is resumed, not
 * failed, when one arrives half-way (the writer's socket has timeouts, so
 * its calls do fail with EINTR, and writer.c retries them).  What must
 * end is the wait in accept(): the listening socket carries a receive
 * timeout (SO_RCVTIMEO), and Linux never restarts an accept() on such a
 * socket after a handler ran (signal(7)), so it fails with EINTR and
 * FCGI_FAIL_ACCEPT_ON_INTR hands that back.  That socket is AF_UNIX
 * (config.c): a TCP listener would hand its timeout down to every
 * accepted connection, and reads from nginx would then fail on a signal
 * too, where a unix socket's accepted end starts without one.  The
 * timeout also bounds the one window left, a signal between the check and
 * the accept: the worker sees the flag at the latest WORKER_ACCEPT_WAKE_S
 * later.  The handlers are installed before FCGX_Init so libfcgi keeps
 * them (it only replaces SIG_DFL/SIG_IGN), and they do not call
 * FCGX_ShutdownPending(): libfcgi would then fail every later read and
 * write of the request in hand.
 */
#include "worker.h"
#include "auth.h"
#include "config.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "route.h"
#include "spare.h"
#include "store.h"
#include "textbuf.h"
#include "timefmt.h"
#include "writer.h"

#include <errno.h>
#include <fcgiapp.h>
#include <poll.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>


#define WORKER_ACCEPT_WAKE_S 1
/*
 * A stopping worker accepts from its backlog for this long after the
 * stop signal, counted from the signal (the request in hand may take a
 * while first): the last request it accepts may wait 5 s for the
 * database (store.h STORE_BUSY_TIMEOUT_MS) and must still end before the
 * master's SIGKILL at 10 s (pool.c POOL_GRACE_MS).
 */
#define WORKER_DRAIN_MS 4000

static volatile sig_atomic_t worker_stop;
/* CLOCK_MONOTONIC ns of the first SIGTERM or SIGINT, 0 if none came (then
 * the backlog is not drained); written by the handler (clock_gettime is
 * async-signal-safe, the atomic lock-free). */
static _Atomic int_least64_t worker_stop_ns;
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
    "the handler's atomic is lock-free");

bool
worker_stopping(void)
{
	return worker_stop != 0;
}

bool
worker_pool_stopping(void)
{
	return atomic_load(&worker_stop_ns) != 0;
}

static void
worker_on_signal(int sig)
{
	worker_stop = 1;
	/* Only a stop of the pool drains the backlog (worker_drain_backlog()). */
	if (sig == SIGTERM || sig == SIGINT) {
		struct timespec ts;
		int_least64_t none = 0;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		atomic_compare_exchange_strong(&worker_stop_ns, &none,
		    (int_least64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
		/* A direct write's lock waits end before the master's kill. */
		store_stop_deadline((int64_t)ts.tv_sec * 1000 +
		    ts.tv_nsec / 1000000 + POOL_GRACE_MS - 500);
	}
}

static int64_t
worker_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *
worker_getenv(void *env, const char *name)
{
	return FCGX_GetParam(name, (FCGX_ParamArray)env);
}

static int
worker_read(void *stream, char *buf, int len)
{
	return FCGX_GetStr(buf, len, (FCGX_Stream *)stream);
}

/* Turn a failed step into an error body, keeping the request's messages. */
static void
worker_error(struct http_resp *resp, const struct http_req *req, int err)
{
	const char *msg = NULL, *field = NULL;

	if (err == EGW_E_BADREQUEST || err == EGW_E_LENGTH ||
	    err == EGW_E_TOOLARGE || err == EGW_E_MEDIATYPE) {
		msg = req->error_message;
		field = req->error_field;
	}
	if (http_resp_error(resp, err, msg, field, req->request_id) != 0)
		resp->status = 500;
	if (err == EGW_E_UNAUTHORIZED)
		http_resp_add_header(resp, "WWW-Authenticate", "Bearer realm=\"egw-api\"");
	if (err == EGW_E_BUSY || err == EGW_E_UNAVAILABLE)
		http_resp_add_header(resp, "Retry-After", "1");
}

/*
 * Everything between "parameters arrived" and "response ready".  Returns
 * the matched route's index (or n_routes when none matched).
 */
static size_t
worker_handle(struct api_ctx *ctx, FCGX_Request *fr, struct http_req *req,
    struct http_resp *resp)
{
	const struct route *r = NULL;
	char allow[64], token_name[STORE_TOKEN_NAME_MAX + 1], actor[80];
	char token_hash[STORE_TOKEN_HASH_LEN + 1];
	struct textbuf tb;
	size_t n_routes;
	bool snapshot = false;
	int rc, query_rc = 0;

	route_table(&n_routes);
	rc = http_req_parse(req, worker_getenv, fr->envp);
	ctx->request_id = req->request_id;
	log_set_request_id(req->request_id);
	if (rc != 0 && !req->query_invalid) {
		worker_error(resp, req, rc);
		return n_routes;
	}
	/* A malformed query is told only to a client that may call the
	 * route: without a token that may, the answer is 401/403 whatever
	 * the query (API.md, Authentication). */
	query_rc = rc;
	rc = route_find(req, ctx, &r, allow, sizeof(allow));
	if (rc != 0) {
		worker_error(resp, req, rc);
		if (rc == EGW_E_METHOD)
			http_resp_add_header(resp, "Allow", allow);
		return n_routes;
	}
	if (r->scope == ROUTE_SCOPE_READ)
		snapshot = store_read_begin(ctx->st);
	if (r->scope == ROUTE_SCOPE_WRITE && ctx->cfg->auth) {
		/*
		 * A change's token is decided by the store inside the
		 * change's transaction (a token revoked before it commits
		 * cannot make it).  The filter turns away, before the body
		 * is read, what could not pass, with a read of the database
		 * only for a token it has not seen pass lately; any answer
		 * the checked change did not give waits for the check below.
		 */
		bool may_read = false;

		rc = auth_presented_hash(req->authorization, token_hash);
		if (rc == 0)
			rc = auth_write_filter(ctx->st, token_hash,
			    timefmt_monotonic_ms(), &may_read);
		if (rc != 0) {
			worker_error(resp, req, rc);
			return route_index(r);
		}
		ctx->token_hash = token_hash;
		ctx->receipt_only = !may_read;
	} else if (r->scope != ROUTE_SCOPE_OPEN && ctx->cfg->auth) {
		rc = auth_check(ctx->st, req->authorization, AUTH_SCOPE_READ,
		    token_name);
		if (rc != 0) {
			store_read_end(ctx->st, snapshot);
			worker_error(resp, req, rc);
			return route_index(r);
		}
		textbuf_init(&tb, actor, sizeof(actor));
		textbuf_puts(&tb, "api:");
		textbuf_puts(&tb, token_name);
	} else {
		memcpy(actor, "api:anonymous", sizeof("api:anonymous"));
	}
	/* A change with its token unchecked is recorded as the check finds. */
	ctx->actor = ctx->token_hash != NULL ? NULL : actor;
	rc = query_rc;
	if (rc == 0)
		rc = http_req_read_body(req, ctx->cfg->max_body, r->body,
		    worker_read, fr->in);
	if (rc == 0)
		rc = r->handler(ctx, req, resp);
	store_read_end(ctx->st, snapshot);
	if (ctx->token_hash != NULL && !ctx->authorized) {
		/* Whatever the handler made of the request (an error about
		 * its body, a 404, ...), a client without a token that may
		 * write learns only that. */
		int arc = auth_check_hash(ctx->st, ctx->token_hash,
		    AUTH_SCOPE_WRITE, token_name);

		if (arc != 0) {
			http_resp_free(resp);
			http_resp_init(resp);
			rc = arc;
		}
	}
	ctx->token_hash = NULL;
	ctx->receipt_only = false;
	if (rc != 0) {
		if (rc != EGW_E_BADREQUEST && err_http_status(rc) >= 500)
			log_warnx("%s %s: %s", req->method, r->pattern, err_message(rc));
		worker_error(resp, req, rc);
	}
	/* Handlers only see ctx->actor during the call. */
	ctx->actor = NULL;
	return route_index(r);
}

static void
worker_send(FCGX_Request *fr, const struct http_resp *resp, const char *request_id)
{
	char head[1024];
	int n = http_resp_head(resp, request_id, head, sizeof(head));

	if (n < 0) {
		static const char fallback[] = "Status: 500 Internal Server Error\r\n"
		    "Content-Type: application/json\r\n\r\n"
		    "{\"error\":{\"code\":\"internal\",\"message\":\"response header too large\","
		    "\"field\":null,\"details\":[]},\"request_id\":null}";
		FCGX_PutStr(fallback, (int)sizeof(fallback) - 1, fr->out);
		return;
	}
	FCGX_PutStr(head, n, fr->out);
	/* FCGX_PutStr takes an int length and bodies are size_t (an
	 * unpaged policy list has no fixed bound): pieces, never a cast
	 * that wraps. */
	for (size_t off = 0, len; off < resp->body_len; off += len) {
		len = resp->body_len - off;
		if (len > INT_MAX)
			len = INT_MAX;
		if (FCGX_PutStr(resp->body + off, (int)len, fr->out) < 0)
			break;
	}
	if (FCGX_GetError(fr->out) != 0)
		log_warnx("writing the response failed (client gone?)");
}

/*
 * libfcgi closes a connection by half-closing it and then reading until
 * nginx closes its end: a guard against resetting a peer whose request was
 * not read to the end.  Once stdin has reached its end nginx sends nothing
 * more, and the guard only holds the worker until nginx gets to run (three
 * system calls and often a sleep per request).  A detached request is
 * closed with a plain close().  A request whose body was left unread keeps
 * the guard.
 */
static void
worker_close_quickly(FCGX_Request *fr)
{
	if (FCGX_GetChar(fr->in) == EOF && FCGX_HasSeenEOF(fr->in) == EOF)
		FCGX_Detach(fr);
}

static void
worker_log_request(const struct http_req *req, const char *route, int status,
    uint64_t usec)
{
	char st[8], dur[24];
	struct textbuf tb;

	textbuf_init(&tb, st, sizeof(st));
	textbuf_put_u64(&tb, status > 0 ? (uint64_t)status : 0, 0);
	textbuf_init(&tb, dur, sizeof(dur));
	textbuf_put_u64(&tb, usec / 1000, 0);
	textbuf_puts(&tb, ".");
	textbuf_put_u64(&tb, usec % 1000, 3);
	log_kv(status >= 500 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
	    ((const char *[]){ "method", req->method[0] ? req->method : NULL,
	    "path", req->path, "route", route, "status", st, "dur_ms", dur, NULL }),
	    "request");
}

static void
worker_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = worker_on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;	/* accept() is interrupted anyway (above) */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
}

/* What serving a request needs besides the request. */
struct worker_loop {
	const struct config *cfg;
	struct store *st;
	struct metrics *metrics;
	unsigned slot;
	const struct route *routes;
	size_t n_routes;
};

/* Serve the request @fr has accepted, then log and account for it. */
static void
worker_serve(const struct worker_loop *w, FCGX_Request *fr)
{
	int64_t t0 = worker_now_ns();
	struct api_ctx ctx;
	struct http_req req;
	struct http_resp resp;
	uint64_t usec;
	size_t ri;

	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = w->cfg;
	ctx.st = w->st;
	ctx.worker_index = (int)w->slot;
	ctx.metrics = w->metrics;
	http_req_init(&req);
	http_resp_init(&resp);

	ri = worker_handle(&ctx, fr, &req, &resp);
	worker_send(fr, &resp, req.request_id);
	worker_close_quickly(fr);
	FCGX_Finish_r(fr);
	usec = (uint64_t)(worker_now_ns() - t0) / 1000;
	metrics_observe(w->metrics, w->slot, ri, resp.status, usec);
	worker_log_request(&req, ri < w->n_routes ? w->routes[ri].name :
	    "unmatched", resp.status, usec);
	/* A transaction must never leak into the next request. */
	store_rollback(w->st);
	log_set_request_id(NULL);
	http_req_free(&req);
	http_resp_free(&resp);
}

/*
 * Stopping: the master removed the socket's path before it signalled us,
 * so nothing new can connect, but connections nginx made before that wait
 * in the backlog with their requests written.  They are served before the
 * worker leaves: closing the last listener would reset them, and nginx
 * would answer 503 for requests it had already handed over.  poll() says
 * whether one is queued without blocking and without touching the
 * listening socket's flags, which every worker and the master share.  A
 * sibling may take the connection between the poll and the accept; the
 * accept then ends at its timeout (WORKER_ACCEPT_WAKE_S) and so does the
 * drain.  Only a stop of the pool drains (SIGTERM, SIGINT): on SIGHUP the
 * path stays and the replacements take the queue.
 */
static void
worker_drain_backlog(const struct worker_loop *w, FCGX_Request *fr,
    int listen_fd)
{
	int64_t stop_ns = (int64_t)atomic_load(&worker_stop_ns);
	int64_t until = stop_ns + (int64_t)WORKER_DRAIN_MS * 1000000;

	if (stop_ns == 0)
		return;
	while (worker_now_ns() <= until) {
		struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
		int rc;

		if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
			return;
		if ((rc = FCGX_Accept_r(fr)) == -EINTR)
			continue;
		if (rc < 0)
			return;
		worker_serve(w, fr);
	}
}

int
worker_run(const struct config *cfg, int listen_fd, unsigned slot,
    struct metrics *metrics, struct spare *spare)
{
	struct store *st = NULL;
	FCGX_Request fr;
	struct timeval wake = { WORKER_ACCEPT_WAKE_S, 0 };
	unsigned flush_ms = cfg->log_flush_ms;
	sigset_t stopset;
	struct worker_loop w = { cfg, NULL, metrics, slot, NULL, 0 };
	int rc, exit_code = 0;

	worker_install_signals();
	sigemptyset(&stopset);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGINT);
	sigaddset(&stopset, SIGHUP);
	sigaddset(&stopset, SIGUSR1);
	sigprocmask(SIG_UNBLOCK, &stopset, NULL);

	writer_client_init(metrics);
	if ((rc = store_open(cfg->db_path, &st)) != 0) {
		log_errorx("worker %u: cannot open %s: %s", slot, cfg->db_path,
		    err_message(rc));
		return 1;
	}
	/* Its direct writes (no writer) claim as the writer's do. */
	store_set_iface_deriver(st, config_iface_deriver, cfg);
	/* Its access lines are written together, ~14 to a write.  A line
	 * waits at most EGW_LOG_FLUSH_MS (besides the request in hand): a
	 * line coming after half of it writes them all, and an idle worker
	 * writes them when its accept wakes, at the latest half of it
	 * after the last line came. */
	log_hold(flush_ms / 2);
	if (flush_ms > 0 && flush_ms / 2 < WORKER_ACCEPT_WAKE_S * 1000) {
		wake.tv_sec = (time_t)(flush_ms / 2 / 1000);
		wake.tv_usec = (suseconds_t)(flush_ms / 2 % 1000) * 1000;
	}
	/* The socket is shared by every worker: setting it again is harmless. */
	if (setsockopt(listen_fd, SOL_SOCKET, SO_RCVTIMEO, &wake,
	    sizeof(wake)) != 0) {
		log_warn("worker %u: cannot set the accept timeout", slot);
		store_close(st);
		return 1;
	}
	if (FCGX_Init() != 0 || FCGX_InitRequest(&fr, listen_fd,
	    FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_errorx("worker %u: libfcgi initialisation failed", slot);
		store_close(st);
		return 1;
	}
	w.st = st;
	w.routes = route_table(&w.n_routes);
	spare_attach(spare, slot);
	log_debug("worker %u ready", slot);

	while (!worker_stop) {
		spare_park_if_surplus(worker_stopping);
		if (worker_stop)
			break;
		if ((rc = FCGX_Accept_r(&fr)) < 0) {
			log_flush();
			/* The timeout, or a signal: look at worker_stop. */
			if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR)
				continue;
			/* Non-zero exit: the master's fast-death backoff then
			 * paces the replacements of a lasting failure. */
			log_errorx("worker %u: accept: %s", slot, strerror(-rc));
			exit_code = 1;
			break;
		}
		worker_serve(&w, &fr);
	}
	if (exit_code == 0)
		worker_drain_backlog(&w, &fr, listen_fd);
	FCGX_Free(&fr, 0);
	store_close(st);
	log_debug("worker %u stopping", slot);
	log_flush();
	return exit_code;
}
