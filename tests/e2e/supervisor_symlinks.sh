#!/bin/bash
# SPDX-License-Identifier: MIT
# egw-supervisor runs as root in directories the service user owns
# (EGW_RUN_DIR, EGW_STATE_DIR).  What that user plants there must never
# make root write, chmod or chown anything else: symlinks at the names root
# writes (supervisor.json and its old temporary name, a pid file, the
# nginx config's old temporary name) are replaced, not followed, and a
# symlink where root expects a directory (state/nats, run/nginx) is
# refused with a clear error.  The plants are made as the service user.
# A directory that exists already is never re-owned or re-moded: root's
# 0755 one as EGW_STATE_DIR (EGW_STATE_DIR=/var/lib by mistake) or one
# anyone may write as EGW_RUN_DIR is refused (exit 2, naming it), one of
# the service user's is used as it is.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init supervisor_symlinks
need_root
need_cmd nginx nats-server curl ip setpriv

. "$EGW_TOP_SRCDIR/tests/e2e/lib_supervisor.sh"
sup_env supsym 1
state=$EGW_STATE_DIR
as_user() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$@"; }
# Its exit status once it exited by itself, else 0 after stopping it.
status_after_exit() {
	if exited; then
		wait "$SUP_PID"
		return $?
	fi
	stop
	return 0
}
owner() { stat -c '%U %a' "$1"; }

# Root's files and a directory the plants point at.
for v in victim victim2 victim3; do
	(umask 077; echo precious > "$T/$v")
done
mkdir -m 700 "$T/victimdir" "$T/victimdir2"

start first --local-nats "$nats_port"
ok "the gateway comes up (creating its directories)" wait_for 30 health_ok
stop
ok "the run and state directories are the service user's" \
	test "$(stat -c %U "$run") $(stat -c %U "$state") $(stat -c %U "$run/nginx")" = "nobody nobody nobody"

# 1. The NATS store directory replaced by a symlink to root's directory.
as_user rm -rf "$state/nats"
as_user ln -s "$T/victimdir" "$state/nats"
start nats_link --local-nats "$nats_port"
ok "state/nats -> root's directory: the supervisor refuses to start" wait_for 20 exited
status_after_exit
rc=$?
ok "and exits non-zero ($rc)" test "$rc" -ne 0
ok "naming the symbolic link" grep -q "nats: a symbolic link" "$T/nats_link.log"
ok "root's directory is still root's, mode 700" test "$(owner "$T/victimdir")" = "root 700"
as_user rm "$state/nats"

# 2. Names root writes in the run directory.
as_user ln -s "$T/victim" "$run/supervisor.json.tmp"
as_user ln -s "$T/victim2" "$run/nginx/nginx.conf.tmp"
as_user ln -s "$T/victim3" "$run/egw-natsd.pid"
as_user ln -s "$T/victim" "$run/supervisor.json"
start planted --local-nats "$nats_port"
ok "with the planted names the gateway comes up" wait_for 30 health_ok
ok "supervisor.json is a file of root's now, not the link" \
	wait_for 10 sh -c "test ! -L '$run/supervisor.json' && test -f '$run/supervisor.json' && test \"\$(stat -c %U '$run/supervisor.json')\" = root"
ok "egw-natsd.pid is a plain file with its pid" \
	wait_for 10 sh -c "test ! -L '$run/egw-natsd.pid' && kill -0 \$(cat '$run/egw-natsd.pid')"
ok "nginx.conf is the service user's own file" \
	test ! -L "$run/nginx/nginx.conf" -a "$(stat -c %U "$run/nginx/nginx.conf")" = nobody
# A child's exit rewrites the status file and the child's pid file.
old=$(cat "$run/egw-natsd.pid")
as_user ln -sf "$T/victim3" "$run/egw-natsd.pid"
kill -KILL "$old"
back() { p=$(cat "$run/egw-natsd.pid" 2>/dev/null); [ -n "$p" ] && [ "$p" != "$old" ]; }
ok "egw-natsd restarted after SIGKILL, its new pid written" wait_for 10 back
sleep 0.5
for v in victim victim2 victim3; do
	ok "$v: unchanged (root's, 600, same contents)" \
		test "$(owner "$T/$v") $(cat "$T/$v")" = "root 600 precious"
done
ok "no temporary file left in the run directory" \
	test -z "$(find "$run" -maxdepth 2 -name '.*.*' -type f)"
stop

# 3. The nginx directory replaced by a symlink to root's directory.
as_user rm -rf "$run/nginx"
as_user ln -s "$T/victimdir2" "$run/nginx"
start nginx_link --local-nats "$nats_port"
ok "run/nginx -> root's directory: the supervisor refuses to start" wait_for 20 exited
status_after_exit
ok "and exits non-zero" test $? -ne 0
ok "naming the symbolic link" grep -q "nginx: a symbolic link" "$T/nginx_link.log"
ok "root's directory is still root's, mode 700, empty" \
	test "$(owner "$T/victimdir2") $(ls -A "$T/victimdir2" | wc -l)" = "root 700 0"
as_user rm "$run/nginx"

# 4. Existing directories named as EGW_STATE_DIR or EGW_RUN_DIR.
mkdir -m 755 "$T/system"
echo precious > "$T/system/file"
EGW_STATE_DIR="$T/system" start system_state --local-nats "$nats_port"
ok "EGW_STATE_DIR is root's 0755 directory: the supervisor refuses it" \
	wait_for 20 exited
status_after_exit
rc=$?
ok "exit status 2, a configuration error ($rc)" test "$rc" -eq 2
ok "naming the setting and the directory" \
	grep -q "EGW_STATE_DIR: $T/system exists and is not fit for nobody" \
	"$T/system_state.log"
ok "the directory is still root's, mode 755" \
	test "$(owner "$T/system")" = "root 755"
ok "nothing was created in it" test "$(ls -A "$T/system")" = file
mkdir -m 777 "$T/open"
chmod 777 "$T/open"
chown nobody "$T/open"
EGW_RUN_DIR="$T/open" start open_run --local-nats "$nats_port"
ok "EGW_RUN_DIR anyone may write: the supervisor refuses it" \
	wait_for 20 exited
status_after_exit
rc=$?
ok "exit status 2 ($rc)" test "$rc" -eq 2
ok "naming it" grep -q "EGW_RUN_DIR: $T/open exists and is not fit" \
	"$T/open_run.log"
ok "its mode is still 777" test "$(owner "$T/open")" = "nobody 777"
chmod 700 "$state"
start own_state --local-nats "$nats_port"
ok "the service user's own 0700 state directory: the gateway comes up" \
	wait_for 30 health_ok
stop
ok "and it is still 0700" test "$(owner "$state")" = "nobody 700"
e2e_done
