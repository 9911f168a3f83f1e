#!/bin/bash
# SPDX-License-Identifier: MIT
# The writer serves only its own user (SO_PEERCRED; src/writer.h).  Its
# socket is 0600 in a 0750 directory, but root passes both: with the pool
# running as nobody, a connection from root must be refused at accept,
# before any message is read, and the writer go on serving its workers.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_peercred
need_cmd setpriv python3

export EGW_AUTH=off EGW_SPARE_WORKERS=0 EGW_WORKERS=1
api_env
chown -R nobody:nogroup "$T/state" "$T/run"
chmod 755 "$T"	# nobody must reach its directories under $T
# What a crashed run as root leaves in the run directory (as under the
# systemd units, no supervisor clears it): its lock file, readable, with
# its pid, and a socket nobody serves that only root could connect to.
printf '999999\n' > "$EGW_RUN_DIR/egw-api.lock"
chmod 644 "$EGW_RUN_DIR/egw-api.lock"
python3 -c "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$EGW_FCGI_SOCKET"
chmod 660 "$EGW_FCGI_SOCKET"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all "$@"; }
# setpriv execs: $! is egw-api's own pid (not so through the function).
setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
	"$(egw_bin egw-api)" >> "$T/api.log" 2>&1 &
API_PID=$!
track_pid "$API_PID"
WSOCK="$EGW_RUN_DIR/egw-api-writer.sock"
ok "the pool runs as nobody, its writer socket appears" wait_for 10 test -S "$WSOCK"
ok "past root's stale socket: it listens on its own" \
	wait_for 10 sh -c "[ \"\$(stat -c %U '$EGW_FCGI_SOCKET')\" = nobody ]"
as_nobody timeout 10 "$(egw_bin egw-api)" > "$T/second.log" 2>&1
ok "a second start as nobody: refused" test $? -eq 1
ok "... naming the running pool's pid (from the kernel's lock table, not the file)" \
	grep -q "another egw-api runs with EGW_RUN_DIR=$EGW_RUN_DIR (pid $API_PID)" "$T/second.log"
ok "the socket is nobody's, mode 0600" test "$(stat -c '%U %a' "$WSOCK")" = "nobody 600"

# As root: connect (root passes the file mode) and send nothing.  The
# writer closes a refused connection at once; one it accepted would wait
# for a request.
cat > "$T/peer.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(3)
s.connect(sys.argv[1])
try:
    data = s.recv(4096)
except socket.timeout:
    print("kept open")
    sys.exit(0)
except OSError as e:
    print("error", e.errno)
    sys.exit(0)
print("closed" if data == b"" else "answered %d bytes" % len(data))
PY
out=$(python3 "$T/peer.py" "$WSOCK" 2>&1)
ok "a connection from root is closed before any request ($out)" test "$out" = closed
ok "the writer logs the refusal with the peer's uid" \
	wait_for 5 grep -q "writer: refused a connection from uid 0" "$T/api.log"
ok "the writer is still running" kill -0 "$(cat "$EGW_RUN_DIR/egw-api.writer")"
# Its own worker (nobody, like the writer) still goes through it.
start_nginx
api POST /v1/policies '{"scenario_id":"peer-1"}'
ok "a write from the pool's own worker: 201" status_is 201
api GET /metrics
ok "... committed by the writer, not directly" sh -c \
	"grep -q '^egw_api_write_batched_ops_total 1$' '$T/body' && grep -q '^egw_api_write_direct_total 0$' '$T/body'"
kill -TERM "$API_PID"
wait "$API_PID" 2>/dev/null
ok "the pool stops cleanly" test $? -eq 0
e2e_done
