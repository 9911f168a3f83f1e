#!/bin/bash
# SPDX-License-Identifier: MIT
# One pool per run directory and per socket (src/instance.h).  A second
# egw-api started with the same settings used to take both sockets over
# silently, and stopping either pool left the other unreachable; one whose
# EGW_FCGI_SOCKET named an ordinary file deleted that file.  Now the second
# start is refused and the first pool goes on serving; a crashed pool's
# stale socket is still taken over.  A master that is pid 1 (a container's
# entry point) used to see every child exit at once ("getppid() == 1").
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_instance
need_cmd stat unshare timeout

export EGW_AUTH=off EGW_SPARE_WORKERS=1
start_api 2
start_nginx
ino() { stat -c %i "$1"; }
serves() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$API/v1/policies")" = 200 ]; }
sock_ino=$(ino "$EGW_FCGI_SOCKET")
writer_ino=$(ino "$EGW_RUN_DIR/egw-api-writer.sock")
master=$(cat "$EGW_RUN_DIR/egw-api.pid")
ok "the first pool serves" serves

# A second pool, same settings: refused, nothing of the first one touched.
timeout 10 "$(egw_bin egw-api)" > "$T/second.log" 2>&1
rc=$?
ok "a second egw-api, same run directory: exits 1 ($rc)" test "$rc" -eq 1
ok "it says why, naming the first one's pid" \
	grep -q "another egw-api runs with EGW_RUN_DIR=$EGW_RUN_DIR (pid $master)" "$T/second.log"
ok "the FastCGI socket is the first pool's" test "$(ino "$EGW_FCGI_SOCKET")" = "$sock_ino"
ok "the writer socket is the first pool's" \
	test "$(ino "$EGW_RUN_DIR/egw-api-writer.sock")" = "$writer_ino"
ok "the pid file still names the first master" test "$(cat "$EGW_RUN_DIR/egw-api.pid")" = "$master"
ok "the first pool still serves" serves

# Another run directory, the same FastCGI socket: the socket answers.
mkdir -p "$T/run2"
EGW_RUN_DIR="$T/run2" timeout 10 "$(egw_bin egw-api)" > "$T/third.log" 2>&1
rc=$?
ok "a second egw-api on the same socket: exits 1 ($rc)" test "$rc" -eq 1
ok "it says the socket is served" grep -q "is served by another process" "$T/third.log"
ok "the socket is still the first pool's" test "$(ino "$EGW_FCGI_SOCKET")" = "$sock_ino"
ok "and it serves" serves
policy_put() {
	curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		--data "{\"scenario_id\":\"$1\"}" "$API/v1/policies"
}
ok "a write is answered 201" test "$(policy_put inst-1)" = 201

# A setting that names an ordinary file: the file is left alone.
echo precious > "$T/state/precious.txt"
EGW_RUN_DIR="$T/run2" EGW_FCGI_SOCKET="$T/state/precious.txt" \
	timeout 10 "$(egw_bin egw-api)" > "$T/fourth.log" 2>&1
rc=$?
ok "EGW_FCGI_SOCKET naming a file: exits 1 ($rc)" test "$rc" -eq 1
ok "it says the path is not a socket" grep -q "exists and is not a socket" "$T/fourth.log"
ok "the file is intact" test "$(cat "$T/state/precious.txt")" = precious

# A crashed master: its children stop on their own (one is held stopped
# here, as a worker still busy with a request would be), and until the
# last has exited no new pool starts; then the next start takes the stale
# socket over.
children=$(awk '{print $2}' "$EGW_RUN_DIR/egw-api.workers"; cat "$EGW_RUN_DIR/egw-api.writer")
held=$(api_worker_pid 0)
kill -STOP "$held"
kill -KILL "$API_PID"
wait "$API_PID" 2>/dev/null
timeout 10 "$(egw_bin egw-api)" > "$T/fifth.log" 2>&1
rc=$?
ok "while a child of the dead master lives: a new start exits 1 ($rc)" test "$rc" -eq 1
ok "it says the previous master is gone and its processes hold the lock" \
	grep -q "the previous egw-api (pid $API_PID) has exited, but processes it started still hold" "$T/fifth.log"
kill -CONT "$held"
ok "the crashed pool's children die with it" wait_for 10 sh -c \
	"for p in $(echo $children); do kill -0 \$p 2>/dev/null && exit 1; done; exit 0"
ok "its socket is left behind" test -S "$EGW_FCGI_SOCKET"
start_api 2	# returns at once: the old socket and worker list are there
ok "a new pool takes the stale socket over" wait_for 10 sh -c \
	"[ \$(grep -c '\"msg\":\"listening on' '$T/api.log') -eq 2 ]"
ok "and serves" wait_for 10 serves
stop_api

# The master as pid 1 of its own pid namespace: its children must run.
: > "$T/pid1.log"
EGW_WORKERS=1 EGW_SPARE_WORKERS=0 unshare --pid --fork --kill-child=SIGTERM \
	"$(egw_bin egw-api)" >> "$T/pid1.log" 2>&1 &
P1=$!
track_pid "$P1"
ok "pid 1 master: a worker and the writer run" wait_for 10 sh -c \
	"[ -f '$EGW_RUN_DIR/egw-api.workers' ] && [ \$(wc -l < '$EGW_RUN_DIR/egw-api.workers') -eq 1 ] && [ -S '$EGW_RUN_DIR/egw-api-writer.sock' ]"
ok "pid 1 master: requests are served" wait_for 10 serves
ok "pid 1 master: a write is answered 201" test "$(policy_put inst-2)" = 201
sleep 1
ok "pid 1 master: no child exited" sh -c "! grep -q 'exited with status' '$T/pid1.log'"
# unshare ignores SIGTERM while it waits; the master gets it directly, as
# from a container runtime.  pid 1 is sent only what it handles.
master=$(cat "/proc/$P1/task/$P1/children")
ok "pid 1 master: found ($master)" test -n "$master"
track_pid "$master"
kill -TERM "$master"
ok "pid 1 master: SIGTERM stops the pool" wait_for 15 sh -c "! kill -0 $P1 2>/dev/null"
e2e_done
