#!/bin/bash
# SPDX-License-Identifier: MIT
# How egw-supervisor (and egw-api) stop, in a network namespace this test
# creates (free ports, so it may run beside the other supervisor
# scenarios):
#   - A request nginx is still reading when the supervisor is sent SIGTERM
#     is served: nginx is stopped gracefully (SIGQUIT) and egw-api keeps
#     running until nginx has gone.
#   - A component that does not stop (egw-natsd, SIGSTOPped) is killed
#     after the 10 s stop timeout and its pid file removed like the others'.
#   - SIGTERM during the start-up of a supervisor that is pid 1 of a pid
#     namespace (a container's entry point; its nginx configuration is
#     rendered slowly): it is not lost, the supervisor exits 0 starting
#     nothing.  The same for egw-api as pid 1 while its database is locked.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init supervisor_stop
need_root
need_cmd nginx nats-server curl ip python3

. "$EGW_TOP_SRCDIR/tests/e2e/lib_supervisor.sh"
sup_env supstop 1
export EGW_LOG_LEVEL=info
# rc: the supervisor's exit status once it has gone by itself (within
# SECONDS), else "running" after stopping it.  Not in $(...): only this
# shell can wait for it.
wait_exit() {	# wait_exit SECONDS
	if wait_for "$1" exited; then
		wait "$SUP_PID"
		rc=$?
	else
		stop
		rc=running
	fi
}

# ---- a slow client across the stop ----
# The headers and 10 bytes of the body now, the rest 3 s later; the
# supervisor is sent SIGTERM 1 s in (the client says when it has sent the
# first part: on a busy machine its start may take that long).  Prints the
# reply's status line (empty when the connection was closed without one).
cat > "$T/slow.py" <<'PY'
import socket, sys, time
body = (b'{"scenario_id": "scn-slow", "network_id": "net-slow", '
        b'"profile": "training-updates", "custom_rules": [], '
        b'"allowed_hosts": [], "allowed_ports": [], "enabled": true}')
head = (b"POST /v1/policies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body))
reply = b""
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
    s.sendall(head + body[:10])
    open(sys.argv[2], "w").close()
    time.sleep(3)
    s.sendall(body[10:])
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
except OSError as e:
    sys.stderr.write("slow client: %s\n" % e)
sys.stdout.write(reply.split(b"\r\n", 1)[0].decode(errors="replace") + "\n")
PY
start slow --local-nats "$nats_port"
ok "the gateway comes up" wait_for 30 health_ok
ip netns exec "$ns" timeout 20 python3 "$T/slow.py" "$http_port" \
	"$T/slow.sent" > "$T/slow.out" 2> "$T/client.log" &
client=$!
track_pid "$client"
ok "the client sent the headers and the first bytes" wait_for 10 test -e "$T/slow.sent"
sleep 1
t0=$(date +%s)
kill -TERM "$SUP_PID"
wait "$client"
status_line=$(head -n1 "$T/slow.out")
ok "a request still being read at SIGTERM is served (${status_line:-no reply})" \
	test "$(echo "$status_line" | cut -d' ' -f1-2)" = "HTTP/1.1 201"
wait_exit 30
took=$(( $(date +%s) - t0 ))
ok "the supervisor then stops, exit status 0 ($rc)" test "$rc" = 0
ok "within the 10 s nginx is given ($took s)" test "$took" -le 12
ok "no process left in the namespace" test -z "$(ip netns pids "$ns")"

# ---- a component that does not stop ----
start stuck --local-nats "$nats_port"
ok "the gateway comes up again" wait_for 30 health_ok
natsd=$(cat "$run/egw-natsd.pid" 2>/dev/null)
ok "egw-natsd has a pid file" test -n "$natsd"
kill -STOP "$natsd"
kill -TERM "$SUP_PID"
# 10 s for egw-natsd, a few for the others.
wait_exit 30
ok "the supervisor stops, exit status 0 ($rc)" test "$rc" = 0
ok "it killed egw-natsd after the timeout" \
	grep -q "egw-natsd did not stop within 10 s; killing it" "$T/stuck.log"
ok "egw-natsd's pid file is removed ($(ls "$run"/*.pid 2>/dev/null))" \
	test ! -e "$run/egw-natsd.pid"
ok "no pid file or status file left" \
	test -z "$(ls "$run"/*.pid "$run/supervisor.json" 2>/dev/null)"
ok "no process left in the namespace" test -z "$(ip netns pids "$ns")"

# ---- SIGTERM during the start-up of pid 1 ----
# start_pid1 LOGNAME PROGRAM [ARGS...]: PROGRAM as pid 1 of a new pid
# namespace; $UNSHARE_PID is unshare (which exits with its status),
# $INNER_PID the program itself as seen from here.
start_pid1() {
	log=$1
	shift
	ip netns exec "$ns" unshare -p -f --mount-proc "$@" \
		> "$T/$log.log" 2>&1 &
	UNSHARE_PID=$!
	track_pid "$UNSHARE_PID"
	INNER_PID=
	wait_for 5 sh -c "pgrep -P $UNSHARE_PID > '$T/inner'"
	INNER_PID=$(head -n1 "$T/inner")
	[ -n "$INNER_PID" ] && track_pid "$INNER_PID"
}
gone() { ! kill -0 "$UNSHARE_PID" 2>/dev/null; }
is_pid1() {	# $INNER_PID is 1 in its own pid namespace
	[ -n "$INNER_PID" ] && [ "$(awk '$1 == "NSpid:" { print $NF }' \
		"/proc/$INNER_PID/status" 2>/dev/null)" = 1 ]
}
# rc: unshare's exit status (its program's) once it has gone (within
# SECONDS), else "running".
wait_pid1() {
	if wait_for "$1" gone; then
		wait "$UNSHARE_PID"
		rc=$?
	else
		rc=running
	fi
}
# After the checks: a program that kept running is stopped.
stop_pid1() {
	gone && return
	kill -TERM "$INNER_PID"
	wait_for 30 gone
}

# The renderer is a real setting (EGW_NGINX_RENDER): one that takes 3 s
# and says when it has begun, in a directory the service user may write.
mkdir -m 1777 "$T/marks"
cat > "$T/slow-render" <<SH
#!/bin/sh
: > "$T/marks/render.started"
sleep 3
exec "$EGW_NGINX_RENDER" "\$@"
SH
chmod 755 "$T/slow-render"
EGW_NGINX_RENDER="$T/slow-render" \
	start_pid1 pid1 "$sup" --local-nats "$nats_port" run
ok "the supervisor runs as pid 1 of its own pid namespace" is_pid1
ok "its start-up renders the nginx configuration" \
	wait_for 20 test -e "$T/marks/render.started"
kill -TERM "$INNER_PID"
wait_pid1 15
ok "SIGTERM during its start-up: it exits by itself, status 0 ($rc)" \
	test "$rc" = 0
ok "saying why" grep -q "during start-up: not starting the gateway" "$T/pid1.log"
ok "having started no component" sh -c "! grep -q '\"started ' '$T/pid1.log'"
ok "no process left in the namespace" test -z "$(ip netns pids "$ns")"
ok "no pid file or status file left" \
	test -z "$(ls "$run"/*.pid "$run/supervisor.json" 2>/dev/null)"
stop_pid1

# egw-api as pid 1: its start-up waits for a database another process
# holds locked for 3 s, SIGTERM 1 s in.
mkdir -p "$T/api/state" "$T/api/run"
EGW_STATE_DIR="$T/api/state" EGW_RUN_DIR="$T/api/run" \
	"$EGW_TOP_BUILDDIR/egw-admin" migrate > "$T/api-migrate.log" 2>&1
cat > "$T/lockdb.py" <<'PY'
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA locking_mode = EXCLUSIVE")
con.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(3)
PY
python3 "$T/lockdb.py" "$T/api/state/egw.db" "$T/marks/locked" &
track_pid $!
ok "the database is locked" wait_for 10 test -e "$T/marks/locked"
EGW_STATE_DIR="$T/api/state" EGW_RUN_DIR="$T/api/run" \
	start_pid1 api "$EGW_TOP_BUILDDIR/egw-api"
sleep 1
ok "egw-api runs as pid 1 of its own pid namespace" is_pid1
kill -TERM "$INNER_PID"
wait_pid1 15
ok "SIGTERM during egw-api's start-up: it exits by itself, status 0 ($rc)" \
	test "$rc" = 0
ok "saying why" grep -q "during start-up: not starting the pool" "$T/api.log"
ok "having started no worker" sh -c "! grep -q 'listening on' '$T/api.log'"
ok "no process left in the namespace" test -z "$(ip netns pids "$ns")"
stop_pid1
e2e_done
