#!/bin/bash
# SPDX-License-Identifier: MIT
# The writer (writer.h) stopping under a request it never read: the worker
# must hear "not run" and write directly, not answer 503 "outcome
# unknown".  One worker and no spares, so the test knows which connection
# carries the request; SIGSTOP holds the writer at the right moment.
#
# 1. A worker's first write connects to the writer and waits in its
#    accept backlog; the writer is told to stop.  It takes the backlog
#    before closing its socket and serves the request.
# 2. A connected worker sends a write to a stopping writer held by SIGSTOP
#    past its deadline (8 s after the signal): past it the writer starts
#    no batch (the master's SIGKILL comes at 10 s), answers "not run"
#    before it closes, and the worker writes directly.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_writer_stop
need_cmd sqlite3 ss

export EGW_AUTH=off EGW_SPARE_WORKERS=0
start_api 1
start_nginx
wait_for 10 test -S "$EGW_RUN_DIR/egw-api-writer.sock" ||
	{ echo "Bail out! the writer did not start"; exit 99; }
DB=$EGW_STATE_DIR/egw.db
writer_pid() { cat "$EGW_RUN_DIR/egw-api.writer" 2>/dev/null; }
body() { echo "{\"scenario_id\":\"$1\",\"profile\":\"custom\",\"allowed_ports\":[$2]}"; }
post_bg() {
	curl -s -o "$T/$1.body" -w '%{http_code}' --max-time 40 -X POST \
		-H 'Content-Type: application/json' --data-binary "$(body "$1" "$2")" \
		"$API/v1/policies" > "$T/$1.status" &
	BG=$!
}
history_rows() { sqlite3 "$DB" "SELECT count(*) FROM policy_history WHERE scenario_id = '$1'"; }
# written TAG WHAT: the write TAG was answered 201, written once, and no
# worker has had to say "outcome unknown"
written() {
	ok "$2: $(cat "$T/$1.status")" test "$(cat "$T/$1.status")" = 201
	ok "$1 written once" test "$(history_rows "$1")" = 1
	ok "no 'outcome unknown' so far" bash -c "! grep -q 'outcome is unknown' '$T/api.log'"
}
# next_writer OLD_PID: wait for the master's replacement and its socket
next_writer() {
	wait_for 15 bash -c "[ -n \"\$(cat '$EGW_RUN_DIR/egw-api.writer' 2>/dev/null)\" ] && [ \"\$(cat '$EGW_RUN_DIR/egw-api.writer')\" != '$1' ]"
	wait_for 10 test -S "$EGW_RUN_DIR/egw-api-writer.sock"
}

# ---- 1. a request in the accept backlog ----
w1=$(writer_pid)
kill -STOP "$w1"
post_bg ws-1 1001
# The worker's connect() lands in the backlog of the stopped writer.
# (A listening socket's Recv-Q is the number of connections waiting.)
ok "the worker's connection waits in the stopped writer's backlog" \
	wait_for 10 bash -c "[ \"\$(ss -xlH | awk -v p='$EGW_RUN_DIR/egw-api-writer.sock' '\$5 == p { print \$3 }')\" = 1 ]"
sleep 0.3
kill -TERM "$w1"
kill -CONT "$w1"
wait "$BG"
written ws-1 "a write waiting in the stopping writer's backlog is served"
next_writer "$w1"
w2=$(writer_pid)
ok "the master started a new writer ($w1 -> $w2)" test -n "$w2" -a "$w2" != "$w1"

# ---- 2. a request on a connection, after the writer's last look ----
api POST /v1/policies "$(body ws-2 1002)"
ok "a write through the new writer" status_is 201
ok "the worker is now connected to it" \
	bash -c "ss -xH state all | grep -F '$EGW_RUN_DIR/egw-api-writer.sock' | grep -qv LISTEN"
direct0=$(curl -s "$API/metrics" | awk '/^egw_api_write_direct_total/ { print $2 }')
t_term=$(date +%s%N)
kill -TERM "$w2"
# The writer now serves its connected worker until the worker leaves or
# 8 s after the signal (WRITER_STOP_MS); once it has seen the signal (its
# path is gone), hold it, send, and let it go after its deadline.
ok "the writer saw its signal (its path is gone)" wait_for 5 test ! -e "$EGW_RUN_DIR/egw-api-writer.sock"
kill -STOP "$w2"
post_bg ws-3 1003
# Well past the deadline (the handler ran a little after the kill), and
# nothing kills the writer in this test.
while [ $(( ($(date +%s%N) - t_term) / 1000000 )) -lt 9500 ]; do sleep 0.1; done
kill -CONT "$w2"
wait "$BG"
written ws-3 "a write the exiting writer never read is written directly"
direct1=$(curl -s "$API/metrics" | awk '/^egw_api_write_direct_total/ { print $2 }')
ok "by the worker itself (direct writes ${direct0:-?} -> ${direct1:-?})" \
	test -n "$direct1" -a "${direct1:-0}" -gt "${direct0:-0}"
next_writer "$w2"
api POST /v1/policies "$(body ws-1 1011)"
ok "writes go on through the next writer" status_is 200
ok "integrity_check ok" test "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok
diag "$(grep policies_put "$T/api.log" | grep -o "dur_ms\":\"[0-9.]*" | tr "\n" " ")"
e2e_done
