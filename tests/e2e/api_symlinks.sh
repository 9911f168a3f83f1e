#!/bin/bash
# SPDX-License-Identifier: MIT
# egw-api started by hand as root in a run directory the service user
# owns (egw-supervisor hands EGW_RUN_DIR to that user): what the user
# plants there must never make root write or chmod anything else.
# Symlinks at the names the pool writes through a temporary file
# (egw-api.pid, egw-api.workers, egw-api.writer, whose temporary name
# used to be "<name>.tmp") are replaced, never written through; the
# FastCGI socket is born with its mode, never chmod'ed by name
# (fault_chmod.c swaps in a symlink where such a chmod would follow it, as
# the user could between the bind and the chmod).  The plants are made as
# the service user (nobody).
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_symlinks
need_root
need_cmd setpriv

as_user() {
	setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$@"
}
owner() { stat -c '%U %a' "$1"; }
# intact NAME: root's file $T/victim.NAME still root 600, "precious"
intact() {
	[ "$(owner "$T/victim.$1")" = "root 600" ] &&
		[ "$(cat "$T/victim.$1")" = precious ]
}
# plain NAME: run/NAME is a regular file of root's, not a link
plain() {
	[ ! -L "$EGW_RUN_DIR/$1" ] && [ -f "$EGW_RUN_DIR/$1" ] &&
		[ "$(stat -c %U "$EGW_RUN_DIR/$1")" = root ]
}

api_env
export EGW_WORKERS=2
chmod 755 "$T"			# nobody reaches its run directory
chown nobody: "$EGW_RUN_DIR"
for v in pid workers writer sock; do
	(umask 077; echo precious > "$T/victim.$v")
done
for f in pid workers writer; do
	as_user ln -s "$T/victim.$f" "$EGW_RUN_DIR/egw-api.$f.tmp"
done
ok "the service user planted the links" \
	test "$(stat -c %U "$EGW_RUN_DIR/egw-api.pid.tmp")" = nobody

fault_preload fault_chmod egw-api
EGW_TEST_CHMOD_PATH=$EGW_FCGI_SOCKET EGW_TEST_CHMOD_TARGET=$T/victim.sock \
	LD_PRELOAD="$FAULT_PRELOAD" "$(egw_bin egw-api)" >> "$T/api.log" 2>&1 &
API_PID=$!
track_pid "$API_PID"
wait_for 10 api_workers_ready $((EGW_WORKERS + EGW_SPARE_WORKERS)) ||
	{ echo "Bail out! egw-api workers did not start"; exit 99; }
wait_for 5 test -s "$EGW_RUN_DIR/egw-api.writer"

names_master() { [ "$(cat "$EGW_RUN_DIR/egw-api.pid")" = "$API_PID" ]; }
ok "egw-api.pid is root's plain file naming the master" \
	eval "plain egw-api.pid && names_master"
ok "egw-api.workers is root's plain file" plain egw-api.workers
ok "egw-api.writer is root's plain file" plain egw-api.writer
for f in pid workers writer; do
	ok "root's file behind egw-api.$f.tmp is untouched" intact "$f"
done
ok "the FastCGI socket is a socket (not the swapped-in link), mode 660" \
	bash -c "[ ! -L '$EGW_FCGI_SOCKET' ] && [ -S '$EGW_FCGI_SOCKET' ] &&
		[ \"\$(stat -c %a '$EGW_FCGI_SOCKET')\" = 660 ]"
ok "root's file the link pointed at keeps its mode (no chmod by name)" \
	intact sock

kill -TERM "$API_PID"
wait_for 15 bash -c "! kill -0 $API_PID 2>/dev/null"
ok "egw-api stopped" bash -c "! kill -0 $API_PID 2>/dev/null"
ok "its bookkeeping files are gone" test ! -e "$EGW_RUN_DIR/egw-api.pid" \
	-a ! -e "$EGW_RUN_DIR/egw-api.workers" -a ! -e "$EGW_RUN_DIR/egw-api.writer"
ok "no temporary file left behind" \
	bash -c "! ls -A '$EGW_RUN_DIR' | grep -q '^\.egw-api'"
ok "root's files are still untouched" \
	eval "intact pid && intact workers && intact writer && intact sock"
e2e_done
