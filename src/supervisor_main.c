/* SPDX-License-Identifier: MIT */
/*
 * This file contains egw-supervisor, the one command that runs the whole
 * gateway: an optional local nats-server, egw-applier, egw-api, egw-natsd,
 * egw-flowlog and nginx.
 *
 * Children are started in dependency order and stopped in reverse.  A child
 * that exits is restarted with exponential backoff; one that crashes too
 * often in a short window is given up on (logged at error level and shown
 * as "failed" by `egw-supervisor status`) while the rest keeps running,
 * because the kernel ruleset stays in force without the applier and the API
 * keeps answering without the NATS bridge.  One of our components that
 * exits with status 2 refused its configuration and would refuse it again:
 * that stops the whole gateway (exit status 2), rather than leave, say, an
 * API accepting policies that no applier will ever enforce.
 *
 * SIGTERM/SIGINT stop everything, in reverse start order, and remove pid
 * files and sockets.  nginx goes first and gracefully (SIGQUIT, not its
 * fast SIGTERM): it finishes the requests it is still reading or waiting
 * on, which egw-api, stopped only once nginx has gone, still serves.  A
 * stop asked for during the start-up (the migration, the nginx
 * configuration) is kept, and honoured before any child starts, also as
 * pid 1.  SIGHUP goes only to the children that reload something (nginx its
 * configuration, egw-api its workers, egw-applier a full reconcile);
 * nats-server started without a configuration file could only log an
 * error.  When started as root every child runs as EGW_USER, and only the
 * applier and the flow-log reader keep CAP_NET_ADMIN (privdrop.c); what
 * root itself writes in EGW_USER's directories goes through safefile.h.
 */
#include "config.h"
#include "err.h"
#include "instance.h"
#include "log.h"
#include "privdrop.h"
#include "safefile.h"
#include "timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUP_MAX_ARGS 12
#define SUP_STOP_TIMEOUT_MS 10000
#define SUP_BACKOFF_MIN_MS 250
#define SUP_BACKOFF_MAX_MS 30000
#define SUP_STABLE_MS 10000	/* running this long resets the backoff */
#define SUP_CRASH_WINDOW_MS 60000
#define SUP_CRASH_LIMIT 8	/* exits within the window before giving up */

enum child_state {
	CHILD_STOPPED,
	CHILD_RUNNING,
	CHILD_BACKOFF,
	CHILD_FAILED
};

static const char *const child_state_names[] = {
	"stopped", "running", "backoff", "failed"
};

struct child {
	const char *name;
	char path[PATH_MAX];
	char *argv[SUP_MAX_ARGS];
	bool keep_net_admin;
	bool on_hup;			/* forward SIGHUP: it reloads */
	bool ours;			/* egw-*: exit status 2 = config refused */
	int stop_signal;		/* SIGTERM; nginx's graceful SIGQUIT */
	bool enabled;
	pid_t pid;
	enum child_state state;
	unsigned restarts;
	unsigned backoff_ms;
	int64_t started_ms;		/* monotonic, for the backoff */
	int64_t started_wall_ms;	/* for supervisor.json's "since" */
	int64_t restart_at_ms;
	int64_t exits[SUP_CRASH_LIMIT];	/* ring of recent exit times */
	unsigned n_exits;
	int last_status;
};

struct supervisor {
	struct config cfg;
	pid_t self;			/* our pid, for the children's check */
	bool drop_privs;
	uid_t uid;
	gid_t gid;
	char bindir[PATH_MAX];
	char nats_store[PATH_MAX];
	char nginx_conf[PATH_MAX];
	char local_nats_port[8];
	int run_fd;			/* EGW_RUN_DIR (safefile_ensure_dir) */
	bool local_nats;
	struct child children[6];
	size_t n_children;
	bool stopping;
	const struct child *refused;	/* exited 2: stop everything */
};

static void __attribute__((noreturn))
fatal_io(const char *what)
{
	log_error("%s", what);
	exit(1);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: egw-supervisor [-n] [--local-nats PORT] [run]\n"
	    "       egw-supervisor status\n"
	    "  -n                check the configuration and exit\n"
	    "  --local-nats PORT start nats-server -js on 127.0.0.1:PORT and use it\n");
}

static int
path_join(char *out, size_t size, const char *a, const char *b)
{
	int n = snprintf(out, size, "%s/%s", a, b);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int
self_dir(char *out, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return -1;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	if (strlen(exe) >= size)
		return -1;
	memcpy(out, exe, strlen(exe) + 1);
	return 0;
}

/* A bare name is looked up in PATH (nginx and nats-server live in
 * /usr/sbin on Debian). */
static void
resolve_binary(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH");
	char dirs[4096];
	char *save = NULL;

	snprintf(out, size, "%s", name);
	if (strchr(name, '/') != NULL)
		return;
	snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/bin:/sbin:/bin",
	    path ? path : "");
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char candidate[PATH_MAX];

		if (path_join(candidate, sizeof(candidate), d, name) == 0 &&
		    access(candidate, X_OK) == 0) {
			snprintf(out, size, "%s", candidate);
			return;
		}
	}
}

static struct child *
add_child(struct supervisor *sup, const char *name, const char *path,
    bool keep_net_admin)
{
	struct child *c = &sup->children[sup->n_children++];

	memset(c, 0, sizeof(*c));
	c->name = name;
	resolve_binary(path, c->path, sizeof(c->path));
	c->keep_net_admin = keep_net_admin;
	c->enabled = true;
	c->argv[0] = (char *)name;
	c->backoff_ms = SUP_BACKOFF_MIN_MS;
	c->stop_signal = SIGTERM;
	return c;
}

/*
 * The run directory is the service user's: whatever it holds under a name
 * may be that user's symlink to a file of root's.  Files we write there
 * are new files renamed into place (safefile.h), never opened by name.
 */
static void
write_pidfile(const struct supervisor *sup, const char *name, pid_t pid)
{
	char file[64], text[24];
	int n;

	snprintf(file, sizeof(file), "%s.pid", name);
	n = snprintf(text, sizeof(text), "%ld\n", (long)pid);
	if (safefile_replace(sup->run_fd, file, text, (size_t)n, 0644) != 0)
		log_warn("cannot write %s/%s", sup->cfg.run_dir, file);
}

static void
remove_run_file(const struct supervisor *sup, const char *file)
{
	/* unlink never follows a symlink: at worst it removes the link. */
	unlinkat(sup->run_fd, file, 0);
}

static void
write_status(const struct supervisor *sup)
{
	struct json_object *o = json_object_new_object();
	struct json_object *arr = json_object_new_array();
	char ts[TIMEFMT_LEN], *buf;
	const char *text;
	size_t len;

	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(o, "stopping", json_object_new_boolean(sup->stopping));
	json_object_object_add(o, "updated_at", json_object_new_string(timefmt_now(ts)));
	for (size_t i = 0; i < sup->n_children; i++) {
		const struct child *c = &sup->children[i];
		struct json_object *e = json_object_new_object();

		if (!c->enabled)
			continue;
		json_object_object_add(e, "name", json_object_new_string(c->name));
		json_object_object_add(e, "state",
		    json_object_new_string(child_state_names[c->state]));
		json_object_object_add(e, "pid", c->state == CHILD_RUNNING ?
		    json_object_new_int((int)c->pid) : NULL);
		json_object_object_add(e, "restarts", json_object_new_int((int)c->restarts));
		json_object_object_add(e, "since", c->started_wall_ms ?
		    json_object_new_string(timefmt_from_ms(c->started_wall_ms, ts)) :
		    NULL);
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "children", arr);
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(text);
	if ((buf = malloc(len + 1)) != NULL) {
		memcpy(buf, text, len);
		buf[len] = '\n';
	}
	if (buf == NULL || safefile_replace(sup->run_fd, "supervisor.json", buf,
	    len + 1, 0644) != 0)
		log_warn("cannot write %s/supervisor.json", sup->cfg.run_dir);
	free(buf);
	json_object_put(o);
}

/* In the forked child: drop privileges, reset signals, exec. */
static void
exec_child(const struct supervisor *sup, const struct child *c)
{
	sigset_t none;

	/* Handlers first (main() installed ones that do nothing, for pid
	 * 1): a stop signal before the exec must still end the child. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	/* Ignored, which survives exec: a SIGHUP forwarded while a child
	 * is still starting, before it installs its own handler, would
	 * otherwise kill it.  Every program that acts on it sets a handler. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Own process group, so the whole child (nginx's or the pool's
	 * workers) can be cleaned up if its leader dies. */
	setpgid(0, 0);
	signal(SIGPIPE, SIG_DFL);
	if (sup->drop_privs && privdrop_apply(sup->uid, sup->gid, c->keep_net_admin) != 0) {
		log_error("%s: dropping privileges failed", c->name);
		_exit(126);
	}
	/*
	 * A child of ours must not outlive us if we are killed with -9.  Set
	 * after dropping privileges: a change of uid or gid clears it.  If
	 * we died before it was set, our pid is no longer the parent.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0 ||
	    getppid() != sup->self)
		_exit(126);
	execv(c->path, c->argv);
	log_error("%s: cannot execute %s", c->name, c->path);
	_exit(127);
}

static int
start_child(struct supervisor *sup, struct child *c)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_error("%s: fork", c->name);
		return EGW_E_IO;
	}
	if (pid == 0)
		exec_child(sup, c);
	setpgid(pid, pid);	/* also here: no race with the first kill */
	c->pid = pid;
	c->state = CHILD_RUNNING;
	c->started_ms = timefmt_monotonic_ms();
	c->started_wall_ms = timefmt_now_ms();
	write_pidfile(sup, c->name, pid);
	log_info("started %s (pid %ld)", c->name, (long)pid);
	return 0;
}

/* The next start after the current backoff, which doubles for the one
 * after (up to SUP_BACKOFF_MAX_MS). */
static void
schedule_restart(struct child *c, int64_t now)
{
	c->state = CHILD_BACKOFF;
	c->restart_at_ms = now + c->backoff_ms;
	c->backoff_ms = c->backoff_ms * 2 > SUP_BACKOFF_MAX_MS ?
	    SUP_BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void
on_child_exit(struct supervisor *sup, struct child *c, int status)
{
	int64_t now = timefmt_monotonic_ms();
	unsigned recent = 0;
	char desc[64];

	if (WIFEXITED(status))
		snprintf(desc, sizeof(desc), "exit status %d", WEXITSTATUS(status));
	else
		snprintf(desc, sizeof(desc), "signal %d", WTERMSIG(status));
	/* Workers orphaned by a leader that was killed (nginx's, the pool's)
	 * would keep the listening socket; the group is ours alone. */
	kill(-c->pid, SIGKILL);
	c->pid = 0;
	c->last_status = status;
	{
		char file[64];

		snprintf(file, sizeof(file), "%s.pid", c->name);
		remove_run_file(sup, file);
	}
	if (sup->stopping) {
		c->state = CHILD_STOPPED;
		log_info("%s stopped (%s)", c->name, desc);
		return;
	}
	/* Our programs exit 2 only for a configuration they refuse (a bad
	 * value, an enforcing applier without a scope): the same environment
	 * would be refused again at every restart.  Not nginx's or
	 * nats-server's status (a Go program exits 2 when it panics). */
	if (c->ours && WIFEXITED(status) && WEXITSTATUS(status) == 2) {
		c->state = CHILD_FAILED;
		log_errorx("%s refused its configuration (exit status 2; its"
		    " reason is logged above): not restarting it; stopping the"
		    " gateway", c->name);
		if (sup->refused == NULL)
			sup->refused = c;
		return;
	}
	if (now - c->started_ms >= SUP_STABLE_MS)
		c->backoff_ms = SUP_BACKOFF_MIN_MS;
	c->exits[c->n_exits++ % SUP_CRASH_LIMIT] = now;
	for (unsigned i = 0; i < SUP_CRASH_LIMIT && i < c->n_exits; i++) {
		if (now - c->exits[i] <= SUP_CRASH_WINDOW_MS)
			recent++;
	}
	if (recent >= SUP_CRASH_LIMIT) {
		c->state = CHILD_FAILED;
		log_errorx("%s exited (%s) %u times within %d s: giving up on it; "
		    "fix the cause and restart the gateway", c->name, desc, recent,
		    SUP_CRASH_WINDOW_MS / 1000);
		return;
	}
	log_warnx("%s exited (%s); restarting in %u ms", c->name, desc, c->backoff_ms);
	schedule_restart(c, now);
}

static void
reap(struct supervisor *sup)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < sup->n_children; i++) {
			struct child *c = &sup->children[i];

			if (c->pid == pid) {
				on_child_exit(sup, c, status);
				break;
			}
		}
	}
}

static bool
any_running(const struct supervisor *sup)
{
	for (size_t i = 0; i < sup->n_children; i++) {
		if (sup->children[i].pid > 0)
			return true;
	}
	return false;
}

/*
 * Reverse start order, one child at a time, each given up to 10 s: nginx
 * (last started) drains while everything behind it, egw-api above all,
 * still runs.
 */
static void
stop_all(struct supervisor *sup, int sfd)
{
	sup->stopping = true;
	for (size_t i = sup->n_children; i-- > 0;) {
		struct child *c = &sup->children[i];
		int64_t deadline;

		if (c->pid <= 0) {
			if (c->state == CHILD_BACKOFF)
				c->state = CHILD_STOPPED;
			continue;
		}
		kill(c->pid, c->stop_signal);
		deadline = timefmt_monotonic_ms() + SUP_STOP_TIMEOUT_MS;
		while (c->pid > 0 && timefmt_monotonic_ms() < deadline) {
			struct pollfd pfd = { .fd = sfd, .events = POLLIN };
			struct signalfd_siginfo si;

			if (poll(&pfd, 1, 100) > 0 && read(sfd, &si, sizeof(si)) < 0)
				(void)0;
			reap(sup);
		}
		if (c->pid > 0) {
			/* What waitpid() says; should it fail, what
			 * the SIGKILL did ("killed by signal 9"). */
			int status = SIGKILL;

			log_warnx("%s did not stop within %d s; killing it", c->name,
			    SUP_STOP_TIMEOUT_MS / 1000);
			/* its group: nginx's or the pool's workers too */
			kill(-c->pid, SIGKILL);
			while (waitpid(c->pid, &status, 0) < 0 &&
			    errno == EINTR)
				;
			/* As for any exit: its pid file goes too. */
			on_child_exit(sup, c, status);
		}
	}
	while (any_running(sup))
		reap(sup);
}

/*
 * mkdir -p, then hand the leaf to the service user if we created it.  The
 * state and run directories are that user's, so a name under them (nginx/,
 * nats/) may be its symlink to any directory, which a chown by name would
 * hand over: safefile_ensure_dir() refuses it and changes the directory it
 * opened.  One that existed is the operator's (or a mistake such as
 * EGW_STATE_DIR=/var/lib): used as it is, or refused as a configuration
 * error (exit status 2), never re-owned.  @setting names the variable.
 * Returns the directory's descriptor (close-on-exec), or -1 (logged).
 */
static int
ensure_dir(const struct supervisor *sup, const char *setting, const char *dir,
    mode_t mode)
{
	int fd = safefile_ensure_dir(dir, mode, sup->drop_privs, sup->uid, sup->gid);
	struct passwd *pw;
	struct stat sb;
	char owner[64], user[64];

	if (fd >= 0)
		return fd;
	if (errno == ELOOP) {
		log_errorx("%s: a symbolic link in a directory another user may "
		    "write is on the way; refusing to follow it (remove it; "
		    "make a link there only in a directory only root may "
		    "write)", dir);
		return -1;
	}
	if (errno != EEXIST) {
		log_error("cannot create %s", dir);
		return -1;
	}
	if (stat(dir, &sb) != 0)
		memset(&sb, 0, sizeof(sb));
	if ((pw = getpwuid(sb.st_uid)) != NULL)
		snprintf(owner, sizeof(owner), "%s", pw->pw_name);
	else
		snprintf(owner, sizeof(owner), "uid %ld", (long)sb.st_uid);
	if (sup->drop_privs || (pw = getpwuid(sup->uid)) == NULL)
		snprintf(user, sizeof(user), "%s", sup->drop_privs ?
		    sup->cfg.user : "this user");
	else
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	log_errorx("%s: %s exists and is not fit for %s as it is (owner %s, "
	    "mode %04o; it must be root's or %s's, writable by %s and by no "
	    "one else but its group): the supervisor changes only a directory "
	    "it creates. "
	    "Name one that does not exist yet (it is created), or, if this "
	    "one is meant for the gateway alone, run \"chown %s: %s && chmod "
	    "0750 %s\"", setting, dir, user, owner,
	    (unsigned)(sb.st_mode & 07777), user, user, user, dir, dir);
	exit(2);
}

/*
 * What a run of a component by hand as another user (root) may have left
 * in the run directory, which the service user could not open or replace:
 * its lock files become the service user's, and a socket nobody answers
 * on goes (as root we can connect to any socket to tell).
 */
static void
prepare_run_dir(const struct supervisor *sup)
{
	static const char *const locks[] = { "egw-api.lock", "egw-applier.lock",
	    "egw-natsd.lock", "egw-flowlog.lock" };
	char path[PATH_MAX];

	for (size_t i = 0; sup->drop_privs && i < sizeof(locks) / sizeof(locks[0]); i++) {
		struct stat sb;
		int fd;

		if (path_join(path, sizeof(path), sup->cfg.run_dir, locks[i]) != 0)
			continue;
		/* The directory is the service user's: only a plain file
		 * with no other link is ours to hand over (a hard link
		 * could name any file). */
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			if (errno != ENOENT)
				log_warn("cannot open %s", path);
			continue;
		}
		if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1)
			log_warnx("%s is not a plain file with one link; left as"
			    " it is", path);
		else if (fchown(fd, sup->uid, sup->gid) != 0)
			log_warn("cannot hand %s to %s", path, sup->cfg.user);
		close(fd);
	}
	instance_remove_stale_socket(sup->cfg.fcgi_socket, SOCK_STREAM);
	instance_remove_stale_socket(sup->cfg.applier_socket, SOCK_DGRAM);
}

static const char *
nginx_renderer(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("EGW_NGINX_RENDER");

	if (env != NULL)
		return env;
	snprintf(path, sizeof(path), "%s/scripts/render-nginx-conf", EGW_PKGDATADIR);
	return path;
}

/*
 * nginx's config comes from scripts/render-nginx-conf (installed as
 * $pkgdatadir/scripts/render-nginx-conf), run as the service user so that the
 * files it names are the user's; its output goes to @out_path.
 */
static int
render_nginx_conf(struct supervisor *sup, const char *nginx_dir, int dir_fd,
    const char *out_path)
{
	struct child r;
	char tmp[NAME_MAX + 1];
	int status, fd;
	pid_t pid;

	memset(&r, 0, sizeof(r));
	r.name = "render-nginx-conf";
	snprintf(r.path, sizeof(r.path), "%s", nginx_renderer());
	r.argv[0] = "render-nginx-conf";
	r.argv[1] = "--standalone";
	r.argv[2] = (char *)nginx_dir;
	/* No access log: in the run directory (a tmpfs) it would grow
	 * without rotation; egw-api logs every request itself. */
	r.argv[3] = "--access-log";
	r.argv[4] = "off";
	/* A new file of ours (O_EXCL): the fchown below can only hand over
	 * what we just created, never a file a planted name points at. */
	if ((fd = safefile_create_tmp(dir_fd, "nginx.conf", 0640, tmp,
	    sizeof(tmp))) < 0) {
		log_error("cannot create a file in %s", nginx_dir);
		return -1;
	}
	if (sup->drop_privs && fchown(fd, sup->uid, sup->gid) != 0)
		log_warn("chown %s/%s", nginx_dir, tmp);
	if ((pid = fork()) < 0) {
		close(fd);
		unlinkat(dir_fd, tmp, 0);
		return -1;
	}
	if (pid == 0) {
		dup2(fd, STDOUT_FILENO);
		exec_child(sup, &r);
	}
	close(fd);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			unlinkat(dir_fd, tmp, 0);
			return -1;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    renameat(dir_fd, tmp, dir_fd, "nginx.conf") != 0) {
		log_errorx("rendering the nginx configuration %s with %s failed",
		    out_path, r.path);
		unlinkat(dir_fd, tmp, 0);
		return -1;
	}
	return 0;
}

/* Database creation and migration, as the service user, before anything. */
static int
migrate(struct supervisor *sup)
{
	struct child admin;
	int status;
	pid_t pid;

	memset(&admin, 0, sizeof(admin));
	admin.name = "egw-admin";
	if (path_join(admin.path, sizeof(admin.path), sup->bindir, "egw-admin") != 0)
		return -1;
	admin.argv[0] = "egw-admin";
	admin.argv[1] = "migrate";
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0)
		exec_child(sup, &admin);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int
setup_children(struct supervisor *sup)
{
	const char *nginx = getenv("EGW_NGINX");
	const char *nats = getenv("EGW_NATS_SERVER");
	static const struct {
		const char *name;
		bool net_admin;
		bool on_hup;
	} own[] = {
		{ "egw-applier", true, true },	/* reconciles */
		{ "egw-api", false, true },	/* replaces its workers */
		{ "egw-natsd", false, false },	/* nothing to reload */
		{ "egw-flowlog", true, false },	/* nothing to reload */
	};
	char path[PATH_MAX], nginx_dir[PATH_MAX];
	struct child *c;
	int dir_fd, rc;

	if (sup->local_nats) {
		c = add_child(sup, "nats-server", nats ? nats : "nats-server", false);
		c->argv[1] = "-js";
		c->argv[2] = "-a";
		c->argv[3] = "127.0.0.1";
		c->argv[4] = "-p";
		c->argv[5] = sup->local_nats_port;
		c->argv[6] = "-sd";
		c->argv[7] = sup->nats_store;
	}
	for (size_t i = 0; i < sizeof(own) / sizeof(*own); i++) {
		if (path_join(path, sizeof(path), sup->bindir, own[i].name) != 0)
			return -1;
		if (access(path, X_OK) != 0) {
			log_errorx("%s not found next to egw-supervisor (%s)", own[i].name, path);
			return -1;
		}
		c = add_child(sup, own[i].name, path, own[i].net_admin);
		c->on_hup = own[i].on_hup;
		c->ours = true;
	}
	if (path_join(nginx_dir, sizeof(nginx_dir), sup->cfg.run_dir, "nginx") != 0 ||
	    path_join(sup->nginx_conf, sizeof(sup->nginx_conf), nginx_dir,
	    "nginx.conf") != 0 || (dir_fd = ensure_dir(sup, "EGW_RUN_DIR/nginx",
	    nginx_dir, 0750)) < 0)
		return -1;
	rc = render_nginx_conf(sup, nginx_dir, dir_fd, sup->nginx_conf);
	close(dir_fd);
	if (rc != 0)
		return -1;
	c = add_child(sup, "nginx", nginx ? nginx : "nginx", false);
	c->on_hup = true;	/* re-reads its configuration */
	/* SIGTERM would make nginx close every connection at once, a
	 * request it is still reading or forwarding included. */
	c->stop_signal = SIGQUIT;
	c->argv[1] = "-c";
	c->argv[2] = sup->nginx_conf;
	c->argv[3] = "-e";
	c->argv[4] = "stderr";
	c->argv[5] = "-g";
	c->argv[6] = "daemon off;";
	return 0;
}

/*
 * Exit status: 0 every child running, 1 running but not every child is
 * (or no status yet), 3 not running, 4 cannot tell (LSB's init-script
 * codes).  Whether the supervisor runs is its lock's say, not
 * supervisor.json's: that file survives a supervisor killed with -9 (and
 * the service user can write anything there).
 */
static int
cmd_status(const struct config *cfg)
{
	char path[PATH_MAX];
	struct json_object *o, *children, *jpid;
	bool all_running = true;
	long holder;
	int held;

	if (path_join(path, sizeof(path), cfg->run_dir, "supervisor.json") != 0)
		return 2;
	held = instance_held(cfg->run_dir, "egw-supervisor", &holder);
	if (held < 0) {
		fprintf(stderr, "egw-supervisor: cannot tell whether it runs: %s/"
		    "egw-supervisor.lock: %s\n", cfg->run_dir, strerror(errno));
		return 4;
	}
	if (held == 0) {
		fprintf(stderr, "egw-supervisor: not running (nobody holds %s/"
		    "egw-supervisor.lock)%s\n", cfg->run_dir,
		    access(path, F_OK) == 0 ? "; supervisor.json is left over"
		    " from one that did not stop cleanly" : "");
		return 3;
	}
	o = json_object_from_file(path);
	if (o == NULL) {
		fprintf(stderr, "egw-supervisor: running (pid %ld), no status in %s"
		    " yet\n", holder, path);
		return 1;
	}
	/* Written by the previous supervisor, which died before this one
	 * wrote its own: its children's states are not ours. */
	if (holder > 0 && json_object_object_get_ex(o, "pid", &jpid) &&
	    json_object_get_int64(jpid) != holder) {
		fprintf(stderr, "egw-supervisor: running (pid %ld), but %s is"
		    " another process's (pid %lld)\n", holder, path,
		    (long long)json_object_get_int64(jpid));
		json_object_put(o);
		return 1;
	}
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	if (json_object_object_get_ex(o, "children", &children)) {
		for (size_t i = 0; i < json_object_array_length(children); i++) {
			struct json_object *st;

			if (json_object_object_get_ex(json_object_array_get_idx(children, i),
			    "state", &st) && strcmp(json_object_get_string(st), "running") != 0)
				all_running = false;
		}
	}
	json_object_put(o);
	return all_running ? 0 : 1;
}

/*
 * Never runs: the signals stay blocked and are read from a signalfd.  It
 * exists because pid 1 of a pid namespace (a container's entry point) is
 * sent only the signals it has a handler for; with SIG_DFL a SIGTERM from
 * outside would be dropped and the gateway never stop.  exec() resets it
 * in the children.
 */
static void
on_signal_never(int sig)
{
	(void)sig;
}

/* Stop every child and remove what we leave in the run directory. */
static void
shutdown_gateway(struct supervisor *sup, int sfd)
{
	stop_all(sup, sfd);
	remove_run_file(sup, "supervisor.json");
	remove_run_file(sup, "supervisor.pid");
	/* What a child crashed out of; never a socket that answers (another
	 * gateway's) or a file. */
	instance_remove_stale_socket(sup->cfg.fcgi_socket, SOCK_STREAM);
	instance_remove_stale_socket(sup->cfg.applier_socket, SOCK_DGRAM);
	close(sfd);
	if (sup->refused != NULL)
		log_errorx("all components stopped: %s refused the configuration",
		    sup->refused->name);
	else
		log_info("all components stopped");
}

static const int sup_signals[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP };
#define SUP_N_SIGNALS (sizeof(sup_signals) / sizeof(sup_signals[0]))

static void
signal_set(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < SUP_N_SIGNALS; i++)
		sigaddset(set, sup_signals[i]);
}

/*
 * First thing in main(), before the start-up work (the migration, the
 * nginx configuration), which takes seconds on a slow disk: a stop asked
 * for meanwhile must not be lost.  As pid 1 with no handler it would be
 * dropped; blocked with one it stays pending until run() reads it.
 */
static void
hold_signals(void)
{
	struct sigaction sa;
	sigset_t mask;

	signal_set(&mask);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal_never;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < SUP_N_SIGNALS; i++)
		sigaction(sup_signals[i], &sa, NULL);
}

/* A SIGTERM or SIGINT that came during the start-up, still pending. */
static int
stop_pending(void)
{
	sigset_t pending;

	if (sigpending(&pending) != 0)
		return 0;
	if (sigismember(&pending, SIGTERM))
		return SIGTERM;
	return sigismember(&pending, SIGINT) ? SIGINT : 0;
}

static int
run(struct supervisor *sup)
{
	sigset_t mask;
	int sfd, sig;
	bool dirty = true;

	/* Nothing runs yet and nothing is ours to remove: the caller's
	 * stop wins over starting everything only to stop it again. */
	if ((sig = stop_pending()) != 0) {
		log_info("signal %d during start-up: not starting the gateway",
		    sig);
		return 0;
	}
	signal_set(&mask);
	if ((sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0)
		fatal_io("signalfd");

	for (size_t i = 0; i < sup->n_children; i++) {
		struct child *c = &sup->children[i];

		/* A fork that fails (no memory, a process limit) is retried
		 * like a crash, not given up at the first try. */
		if (start_child(sup, c) != 0)
			schedule_restart(c, timefmt_monotonic_ms());
	}
	write_pidfile(sup, "supervisor", getpid());

	for (;;) {
		struct pollfd pfd = { .fd = sfd, .events = POLLIN };
		struct signalfd_siginfo si;
		int64_t now = timefmt_monotonic_ms(), wait_ms = 1000;

		if (dirty) {
			write_status(sup);
			dirty = false;
		}
		for (size_t i = 0; i < sup->n_children; i++) {
			struct child *c = &sup->children[i];

			if (c->state != CHILD_BACKOFF)
				continue;
			if (c->restart_at_ms <= now) {
				c->restarts++;
				if (start_child(sup, c) != 0)
					schedule_restart(c, now);
				dirty = true;
			} else if (c->restart_at_ms - now < wait_ms) {
				wait_ms = c->restart_at_ms - now;
			}
		}
		if (dirty)
			continue;
		if (poll(&pfd, 1, (int)wait_ms) <= 0)
			continue;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap(sup);
			dirty = true;
			if (sup->refused != NULL) {
				shutdown_gateway(sup, sfd);
				return 2;
			}
			break;
		case SIGHUP:
			log_info("SIGHUP: nginx reloads its configuration, egw-api "
			    "replaces its workers, egw-applier reconciles; the "
			    "other components have nothing to reload");
			for (size_t i = 0; i < sup->n_children; i++) {
				if (sup->children[i].pid > 0 && sup->children[i].on_hup)
					kill(sup->children[i].pid, SIGHUP);
			}
			break;
		case SIGTERM:
		case SIGINT:
			log_info("signal %u: stopping the gateway", si.ssi_signo);
			shutdown_gateway(sup, sfd);
			return 0;
		}
	}
}

int
main(int argc, char **argv)
{
	static struct supervisor sup;
	bool check_only = false;
	const char *cmd = "run";

	hold_signals();
	sup.self = getpid();

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0) {
			check_only = true;
		} else if (strcmp(argv[i], "--local-nats") == 0 && i + 1 < argc) {
			uint16_t port;

			/* "4222abc" is a typo, not port 4222. */
			if (config_parse_port(argv[++i], &port) != 0) {
				usage();
				return 2;
			}
			snprintf(sup.local_nats_port,
			    sizeof(sup.local_nats_port), "%u", (unsigned)port);
			sup.local_nats = true;
		} else if (strcmp(argv[i], "run") == 0 || strcmp(argv[i], "status") == 0) {
			cmd = argv[i];

		} else {
			usage();
			return 2;
		}
	}
	config_load_env(&sup.cfg, "egw-supervisor");
	log_init("supervisor", sup.cfg.log_level);
	/* The applier's own check, before anything is created: otherwise it
	 * alone refuses to start, after the API already takes policies. */
	if (strcmp(cmd, "status") != 0) {
		char err[CONFIG_ERR_MAX];

		/* nginx, run unprivileged, would fail to bind over and over
		 * and be given up: refuse the port now. */
		if (config_check_scope(&sup.cfg, err, sizeof(err)) != 0 ||
		    config_check_listen(&sup.cfg, err, sizeof(err)) != 0) {
			fprintf(stderr, "egw-supervisor: configuration error: %s\n", err);
			return 2;
		}
	}
	if (check_only) {
		printf("configuration OK\n");
		return 0;
	}
	if (strcmp(cmd, "status") == 0)
		return cmd_status(&sup.cfg);

	if (self_dir(sup.bindir, sizeof(sup.bindir)) != 0)
		fatal_io("cannot find my own directory");
	/* Not root: the directories are for the user we run as. */
	sup.uid = geteuid();
	sup.gid = getegid();
	if (geteuid() == 0) {
		if (privdrop_lookup(sup.cfg.user, &sup.uid, &sup.gid) != 0) {
			log_errorx("EGW_USER %s does not exist; create it with "
			    "\"useradd --system --no-create-home %s\"", sup.cfg.user, sup.cfg.user);
			return 1;
		}
		sup.drop_privs = sup.uid != 0;
		if (!sup.drop_privs)
			log_warnx("EGW_USER %s is root: every component (the API "
			    "workers, the NATS bridge) runs as root with all "
			    "capabilities; set EGW_USER to an unprivileged user",
			    sup.cfg.user);
	}
	{
		int state_fd = ensure_dir(&sup, "EGW_STATE_DIR",
		    sup.cfg.state_dir, 0750);

		if (state_fd < 0 || (sup.run_fd = ensure_dir(&sup,
		    "EGW_RUN_DIR", sup.cfg.run_dir, 0750)) < 0)
			fatal_io("cannot create the state or run directory");
		close(state_fd);
	}
	/* A second supervisor would start a second set of everything. */
	if (instance_lock(sup.cfg.run_dir, "egw-supervisor") != 0)
		return 1;
	prepare_run_dir(&sup);
	if (sup.local_nats) {
		char url[64];
		int fd = -1;

		if (path_join(sup.nats_store, sizeof(sup.nats_store), sup.cfg.state_dir,
		    "nats") != 0 || (fd = ensure_dir(&sup, "EGW_STATE_DIR/nats",
		    sup.nats_store, 0750)) < 0)
			fatal_io("cannot create the NATS store directory");
		close(fd);
		snprintf(url, sizeof(url), "nats://127.0.0.1:%s", sup.local_nats_port);
		setenv("NATS_URL", url, 1);
		snprintf(sup.cfg.nats_url, sizeof(sup.cfg.nats_url), "%s", url);
	}
	if (migrate(&sup) != 0) {
		log_errorx("creating or migrating %s failed", sup.cfg.db_path);
		return 1;
	}
	if (setup_children(&sup) != 0)
		return 1;
	log_info("starting the gateway: http %s, dry_run %s, nats %s", sup.cfg.http_listen,
	    sup.cfg.dry_run ? "true" : "false", sup.cfg.nats_url);
	return run(&sup);
}
