/* SPDX-License-Identifier: MIT */
/*
 * This file contains the prefork master (see pool.h).
 *
 * The master is single-threaded and handles its signals synchronously:
 * SIGCHLD, SIGTERM, SIGINT and SIGHUP stay blocked and are collected with
 * sigtimedwait(), whose timeout doubles as the respawn timer.  No work
 * happens in a signal handler, so there is nothing async-signal-unsafe to
 * get wrong.
 *
 * The run directory may belong to a less privileged user than the master
 * (egw-supervisor hands it to EGW_USER; an operator may start egw-api as
 * root there by hand), who can put a symlink under any name at any
 * moment.  So the bookkeeping files are written through safefile.h
 * (a fresh O_EXCL|O_NOFOLLOW file renamed over the name, relative to the
 * directory's descriptor) and the socket is created with its mode rather
 * than chmod'ed by name afterwards.
 */
#include "pool.h"
#include "config.h"
#include "err.h"
#include "instance.h"
#include "log.h"
#include "metrics.h"
#include "route.h"
#include "safefile.h"
#include "spare.h"
#include "timefmt.h"
#include "worker.h"
#include "writer.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define POOL_BACKOFF_MIN_MS 100
#define POOL_BACKOFF_MAX_MS 10000
#define POOL_FAST_DEATH_MS 2000	/* a worker dying sooner is "failing" */

struct pool_slot {
	pid_t pid;		/* 0: not running */
	int64_t started_ms;
	int64_t respawn_at_ms;	/* when pid == 0: earliest restart */
	unsigned fast_deaths;	/* consecutive early deaths, for backoff */
	bool replacement;	/* the next start replaces a dead worker */
};

struct pool {
	const struct config *cfg;
	int listen_fd;
	struct metrics *metrics;
	struct spare *spare;	/* NULL without spare workers */
	unsigned n;		/* workers and spares; slots[n] is the writer */
	struct pool_slot *slots;
	bool stopping;
	pid_t master;		/* getpid() of the master, for its children */
	int run_fd;		/* EGW_RUN_DIR, for the bookkeeping files */
};

/* The bookkeeping files, in EGW_RUN_DIR (pool.h). */
#define POOL_PID_FILE "egw-api.pid"
#define POOL_WORKERS_FILE "egw-api.workers"
#define POOL_WRITER_FILE "egw-api.writer"

/* Every child: the workers, then the writer. */
#define POOL_CHILDREN(p) ((p)->n + 1)

static void
pool_write_file(const struct pool *p, const char *name, const char *text)
{
	if (safefile_replace(p->run_fd, name, text, strlen(text), 0644) != 0)
		log_warn("cannot write %s/%s", p->cfg->run_dir, name);
}

/* Rewrite egw-api.workers: one "slot pid" line per live worker. */
static void
pool_write_workers(const struct pool *p)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return;
	for (unsigned i = 0; i < p->n; i++) {
		if (p->slots[i].pid > 0)
			fprintf(f, "%u %ld\n", i, (long)p->slots[i].pid);
	}
	fclose(f);
	pool_write_file(p, POOL_WORKERS_FILE, text ? text : "");
	free(text);
	if (p->slots[p->n].pid > 0) {
		char pid[32];

		snprintf(pid, sizeof(pid), "%ld\n", (long)p->slots[p->n].pid);
		pool_write_file(p, POOL_WRITER_FILE, pid);
	} else {
		unlinkat(p->run_fd, POOL_WRITER_FILE, 0);
	}
}

/* "writer" or "worker slot N", for log lines. */
static const char *
pool_child_name(const struct pool *p, unsigned i, char *buf, size_t size)
{
	if (i == p->n)
		return "writer";
	snprintf(buf, size, "worker slot %u", i);
	return buf;
}

/*
 * Never runs: the master's signals stay blocked and sigtimedwait() takes
 * them.  It exists because pid 1 of a pid namespace (a container's entry
 * point) is sent only the signals it has a handler for; with SIG_DFL a
 * SIGTERM from outside would be dropped and the pool never stop.
 */
static void
pool_on_signal(int sig)
{
	(void)sig;
}

static const int pool_signals[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP };

static void
pool_signal_set(sigset_t *set)
{
	size_t n = sizeof(pool_signals) / sizeof(pool_signals[0]);

	sigemptyset(set);
	for (size_t i = 0; i < n; i++)
		sigaddset(set, pool_signals[i]);
}

static void
pool_set_handlers(void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(pool_signals) / sizeof(pool_signals[0]); i++)
		sigaction(pool_signals[i], &sa, NULL);
}

void
pool_hold_signals(sigset_t *oldmask)
{
	sigset_t set;

	pool_signal_set(&set);
	sigprocmask(SIG_BLOCK, &set, oldmask);
	pool_set_handlers(pool_on_signal);
}

static int
pool_spawn(struct pool *p, unsigned i, const sigset_t *oldmask)
{
	pid_t pid = fork();

	if (pid < 0) {
		char name[32];

		log_warn("fork failed for %s", pool_child_name(p, i, name, sizeof(name)));
		p->slots[i].respawn_at_ms = timefmt_monotonic_ms() + POOL_BACKOFF_MAX_MS;
		return EGW_E_IO;
	}
	if (pid == 0) {
		int status;

		/* The children set their own handlers; until then a stop
		 * signal does what it always did. */
		pool_set_handlers(SIG_DFL);
		sigprocmask(SIG_SETMASK, oldmask, NULL);
		/* A child must not outlive its pool: it dies with the master,
		 * and leaves at once if the master died before the prctl.
		 * Compared with the master's pid, not with 1: the master may
		 * itself be pid 1 (a container's entry point), and an orphan
		 * may go to a subreaper. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != p->master)
			_exit(1);
		close(p->run_fd);
		/* A request frees most of what it allocated (SQLite drops its
		 * page cache whenever another process committed); glibc would
		 * hand the top of the heap back with brk() each time and fault
		 * it in again for the next, every shrink a TLB shoot-down on
		 * the other core (measured: a fifth of the writer's CPU).  Keep
		 * the heap instead. */
		mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
		mallopt(M_TOP_PAD, 4 * 1024 * 1024);
		if (i == p->n) {
			close(p->listen_fd);
			status = writer_run(p->cfg, p->metrics);
		} else {
			status = worker_run(p->cfg, p->listen_fd, i, p->metrics,
			    p->spare);
		}
		_exit(status);
	}
	if (i < p->n)
		metrics_worker_spawned(p->metrics, p->slots[i].replacement);
	p->slots[i].pid = pid;
	p->slots[i].started_ms = timefmt_monotonic_ms();
	p->slots[i].replacement = false;
	{
		char buf[32];

		log_debug("%s started as pid %ld", pool_child_name(p, i, buf,
		    sizeof(buf)), (long)pid);
	}
	return 0;
}

/* Account for a dead child; schedule its replacement. */
static void
pool_reap(struct pool *p)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (unsigned i = 0; i < POOL_CHILDREN(p); i++) {
			struct pool_slot *s = &p->slots[i];
			int64_t now = timefmt_monotonic_ms(), delay = 0;
			bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;

			if (s->pid != pid)
				continue;
			s->pid = 0;
			s->replacement = true;
			if (i < p->n)
				spare_slot_gone(p->spare, i);
			if (p->stopping)
				break;
			if (!clean) {
				char buf[32];
				const char *name = pool_child_name(p, i, buf, sizeof(buf));

				if (WIFSIGNALED(status))
					log_warnx("%s (pid %ld) killed by signal %d",
					    name, (long)pid, WTERMSIG(status));
				else
					log_warnx("%s (pid %ld) exited with status %d",
					    name, (long)pid, WEXITSTATUS(status));
				if (now - s->started_ms < POOL_FAST_DEATH_MS) {
					if (s->fast_deaths < 16)
						s->fast_deaths++;
				} else {
					s->fast_deaths = 0;
				}
				if (s->fast_deaths > 0) {
					delay = POOL_BACKOFF_MIN_MS << (s->fast_deaths - 1);
					if (delay > POOL_BACKOFF_MAX_MS)
						delay = POOL_BACKOFF_MAX_MS;
				}
			}
			s->respawn_at_ms = now + delay;
			break;
		}
	}
}

static unsigned
pool_live(const struct pool *p)
{
	unsigned n = 0;

	for (unsigned i = 0; i < POOL_CHILDREN(p); i++)
		n += p->slots[i].pid > 0;
	return n;
}

static void
pool_signal_all(const struct pool *p, int sig)
{
	for (unsigned i = 0; i < POOL_CHILDREN(p); i++) {
		if (p->slots[i].pid > 0)
			kill(p->slots[i].pid, sig);
	}
}

static int
pool_open_socket(struct pool *p)
{
	const char *path = p->cfg->fcgi_socket;
	mode_t old;
	int rc;

	if ((rc = instance_claim_socket(path, SOCK_STREAM)) != 0)
		return rc;
	/* Mode 0660 from the bind on (nginx's workers connect as another
	 * user of the same group): a chmod by name afterwards would follow
	 * whatever link the run directory's owner put there meanwhile, and
	 * a socket has no descriptor fchmod could change the file through.
	 * The master is single-threaded, so the umask is its alone. */
	old = umask(0117);
	p->listen_fd = FCGX_OpenSocket(path, 1024);
	umask(old);
	if (p->listen_fd < 0) {
		log_warn("cannot listen on %s", path);
		return EGW_E_IO;
	}
	return 0;
}

static void
pool_stop(struct pool *p)
{
	int64_t deadline = timefmt_monotonic_ms() + POOL_GRACE_MS;
	int64_t next_term = 0;
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	sigset_t waitset;

	p->stopping = true;
	/* Nothing new can connect once the path is gone; accepted requests
	 * finish, and the workers serve what waits in the backlog before
	 * they leave (worker.c), so no request nginx handed over is reset. */
	unlink(p->cfg->fcgi_socket);
	sigemptyset(&waitset);
	sigaddset(&waitset, SIGCHLD);
	log_info("stopping %u workers and the writer", p->n);
	while (pool_live(p) > 0 && timefmt_monotonic_ms() < deadline) {
		/* Repeat the signal: one that lands between a worker's check
		 * of its flag and its accept is only seen at the accept's
		 * timeout (worker.c); the next one ends the accept at once. */
		if (timefmt_monotonic_ms() >= next_term) {
			pool_signal_all(p, SIGTERM);
			spare_wake_all(p->spare);
			next_term = timefmt_monotonic_ms() + 1000;
		}
		sigtimedwait(&waitset, NULL, &ts);
		pool_reap(p);
	}
	if (pool_live(p) > 0) {
		log_warnx("%u workers still busy after %d ms; killing them",
		    pool_live(p), POOL_GRACE_MS);
		pool_signal_all(p, SIGKILL);
		/* Each by its pid: SIGKILL cannot be refused, so each wait ends. */
		for (unsigned i = 0; i < POOL_CHILDREN(p); i++) {
			if (p->slots[i].pid > 0)
				while (waitpid(p->slots[i].pid, NULL, 0) < 0 &&
				    errno == EINTR)
					;
			p->slots[i].pid = 0;
		}
	}
}

int
pool_run(const struct config *cfg, const sigset_t *child_mask)
{
	struct pool p;
	sigset_t set, pending;
	size_t n_routes;
	char text[32];
	int rc = 0;

	/* Asked to stop while main() was still starting: leave before the
	 * lock, the socket or any worker, as if stopped at once. */
	if (sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) ||
	    sigismember(&pending, SIGINT))) {
		log_info("stopped during start-up: not starting the pool");
		return 0;
	}
	memset(&p, 0, sizeof(p));
	p.cfg = cfg;
	p.master = getpid();
	/* Before anything in the run directory is touched: those files are
	 * another pool's while it holds the lock. */
	if (instance_lock(cfg->run_dir, "egw-api") != 0)
		return 1;
	p.n = cfg->workers + cfg->spare_workers;
	p.listen_fd = -1;
	/* The directory itself is the operator's choice (EGW_RUN_DIR); only
	 * the names in it are another user's.  O_PATH: the *at() calls need
	 * search and write permission only, not read. */
	p.run_fd = open(cfg->run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (p.run_fd < 0) {
		log_error("cannot open %s", cfg->run_dir);
		return 1;
	}
	p.slots = calloc(POOL_CHILDREN(&p), sizeof(*p.slots));
	route_table(&n_routes);
	if (p.slots == NULL || metrics_create(p.n, n_routes, &p.metrics) != 0 ||
	    (cfg->spare_workers > 0 &&
	    spare_create(cfg->workers, p.n, &p.spare) != 0)) {
		log_errorx("cannot allocate the pool");
		metrics_destroy(p.metrics);
		free(p.slots);
		close(p.run_fd);
		return 1;
	}

	pool_signal_set(&set);
	if (pool_open_socket(&p) != 0) {
		rc = 1;
		goto out;
	}
	snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	pool_write_file(&p, POOL_PID_FILE, text);
	log_info("listening on %s with %u workers and %u spares",
	    cfg->fcgi_socket, cfg->workers, cfg->spare_workers);

	for (unsigned i = 0; i < POOL_CHILDREN(&p); i++)
		pool_spawn(&p, i, child_mask);
	pool_write_workers(&p);

	for (;;) {
		int64_t now = timefmt_monotonic_ms(), wait_ms = 1000;
		struct timespec ts;
		bool changed = false;
		int sig;

		for (unsigned i = 0; i < POOL_CHILDREN(&p); i++) {
			struct pool_slot *s = &p.slots[i];

			if (s->pid != 0)
				continue;
			if (s->respawn_at_ms <= now) {
				pool_spawn(&p, i, child_mask);
				changed = true;
			} else if (s->respawn_at_ms - now < wait_ms) {
				wait_ms = s->respawn_at_ms - now;
			}
		}
		if (changed)
			pool_write_workers(&p);
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = (wait_ms % 1000) * 1000000;
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP) {
			log_info("SIGHUP: replacing the workers");
			pool_signal_all(&p, SIGHUP);
			spare_wake_all(p.spare);
		}
		if (sig == SIGCHLD || sig == SIGHUP || sig < 0) {
			unsigned before = pool_live(&p);

			pool_reap(&p);
			if (pool_live(&p) != before)
				pool_write_workers(&p);
		}
	}
	pool_stop(&p);
	pool_write_workers(&p);
	log_info("stopped");
out:
	if (p.listen_fd >= 0)
		close(p.listen_fd);
	{
		char path[CONFIG_PATH_MAX + 32];

		if (writer_socket_path(cfg, path, sizeof(path)) == 0)
			unlink(path);
	}
	unlinkat(p.run_fd, POOL_PID_FILE, 0);
	unlinkat(p.run_fd, POOL_WORKERS_FILE, 0);
	unlinkat(p.run_fd, POOL_WRITER_FILE, 0);
	close(p.run_fd);
	metrics_destroy(p.metrics);
	spare_destroy(p.spare);
	free(p.slots);
	return rc;
}
