# SPDX-License-Identifier: MIT
# Helpers shared by the egw-natsd scenarios (tests/e2e/nats_*.sh).  Source
# after lib.sh, e2e_init, start_nats and egw_env.

need_cmd sqlite3 python3
PROBE=$(egw_bin tests/e2e/natsprobe)
OUTBOXGEN=$(egw_bin tests/e2e/nats_outboxgen)
NATSD=$(egw_bin egw-natsd)
DB="$EGW_STATE_DIR/egw.db"
export EGW_DB_PATH="$DB"

q() {
	sqlite3 -batch -noheader "$DB" "$1"
}

# q_is SQL EXPECTED: the query's output equals EXPECTED.
q_is() {
	got=$(q "$1" 2>/dev/null)
	[ "$got" = "$2" ] && return 0
	echo "# query: $1" >&2
	echo "#   got: '$got' want: '$2'" >&2
	return 1
}

# Quiet variant for wait_for loops.
q_eq() {
	[ "$(q "$1" 2>/dev/null)" = "$2" ]
}

natsd_info() {
	q "SELECT json_extract(info, '\$.$1') FROM component_status WHERE component = 'natsd'"
}

natsd_info_is() {
	[ "$(natsd_info "$1" 2>/dev/null)" = "$2" ]
}

start_natsd() {
	"$NATSD" >> "$T/natsd.log" 2>&1 &
	NATSD_PID=$!
	track_pid "$NATSD_PID"
	wait_until 10 natsd_running ||
		{ echo "Bail out! egw-natsd did not report running"; exit 99; }
}

natsd_running() {
	kill -0 "$NATSD_PID" 2>/dev/null &&
	    q_eq "SELECT pid || json_extract(info, '\$.running') FROM component_status
		  WHERE component = 'natsd'" "${NATSD_PID}1"
}

stop_natsd() {
	kill -TERM "$NATSD_PID" 2>/dev/null
	wait "$NATSD_PID" 2>/dev/null
}

# hold_write_lock: another connection holds the database's write lock
# (BEGIN IMMEDIATE) from when $T/held appears until $T/release does (at
# most 150 s); sets HOLD_PID.  A test may hold it more than once: the
# marker files of an earlier hold are removed first.
hold_write_lock() {
	rm -f "$T/held" "$T/release"
	cat > "$T/hold.py" <<'PY'
import os, sqlite3, sys, time
db, held, release = sys.argv[1:4]
con = sqlite3.connect(db, isolation_level=None, timeout=10)
con.execute("BEGIN IMMEDIATE")
open(held, "w").close()
deadline = time.monotonic() + 150
while not os.path.exists(release) and time.monotonic() < deadline:
    time.sleep(0.02)
con.execute("COMMIT")
PY
	python3 "$T/hold.py" "$DB" "$T/held" "$T/release" &
	HOLD_PID=$!
	track_pid "$HOLD_PID"
	wait_for 10 test -e "$T/held" ||
		{ echo "Bail out! could not hold the database"; exit 99; }
}

# kill_nats_mid_drain SECONDS DELIVERED [PAUSE]: once more than DELIVERED
# outbox rows are delivered, SIGKILL nats-server (acks lost in flight),
# check that rows were still undelivered, restart it after PAUSE seconds
# (default 1) and wait up to 60 s for the outbox to drain; three TAP
# checks.
kill_nats_mid_drain() {
	ok "burst is being drained" wait_until "$1" bash -c \
		'[ "$(sqlite3 "$0" "SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL")" -gt "$1" ]' \
		"$DB" "$2"
	kill -KILL "$NATS_PID"
	wait "$NATS_PID" 2>/dev/null
	ok "killed in the middle of the drain" bash -c \
		'[ "$(sqlite3 "$0" "SELECT count(*) FROM outbox WHERE delivered_at IS NULL")" -gt 0 ]' "$DB"
	sleep "${3:-1}"
	restart_nats
	ok "burst drained after the restart" wait_until 60 q_eq \
		"SELECT count(*) FROM outbox WHERE delivered_at IS NULL" 0
}

# Restart nats-server on the same port with the same store directory.
restart_nats() {
	nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$T/nats" \
		>> "$T/nats.log" 2>&1 &
	NATS_PID=$!
	track_pid "$NATS_PID"
	wait_until 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT" ||
		{ echo "Bail out! nats-server did not restart"; exit 99; }
}

# consumer_is STREAM CONSUMER FIELD VALUE
consumer_is() {
	got=$("$PROBE" consumer-info "$1" "$2" 2>/dev/null |
	    python3 -c "import sys, json; print(json.load(sys.stdin)['$3'])" 2>/dev/null)
	[ "$got" = "$4" ]
}

stream_last_seq() {
	"$PROBE" stream-info "$1" | python3 -c "import sys, json; print(json.load(sys.stdin)['last_seq'])"
}

# Every message of a stream must carry Nats-Msg-Id == its payload's event_id.
stream_ids_consistent() {
	"$PROBE" stream-dump "$1" | python3 -c '
import sys, json
n = 0
for line in sys.stdin:
    m = json.loads(line)
    d = m["data"]
    if not isinstance(d, dict) or m["msg_id"] != d.get("event_id"):
        print("# mismatch:", line.strip()); sys.exit(1)
    n += 1
sys.exit(0 if n > 0 else 1)'
}

# Run a command with its output discarded (keeps the TAP stream clean).
quiet() {
	"$@" > /dev/null 2>&1
}

now_ts() {
	q "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
}

# wait_until SECONDS CMD...: like wait_for, but bounded by the wall clock
# as well as by a count, however slow CMD is.
wait_until() {
	_deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 ))
	shift
	_i=0
	while [ $_i -lt 2000 ]; do
		"$@" > /dev/null 2>&1 && return 0
		[ $(( $(date +%s%N) / 1000000 )) -ge $_deadline ] && return 1
		sleep 0.05
		_i=$((_i + 1))
	done
	return 1
}

# The Nats-Msg-Id of every audit.egress message in a stream, in stream order.
audit_ids() {
	"$PROBE" stream-dump "$1" | python3 -c '
import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m["subject"] == "audit.egress":
        print(m["msg_id"])'
}

# same_events WANT GOT: the two files of event ids are equal; otherwise a
# diagnostic with their lengths and the first differences.
same_events() {
	cmp -s "$1" "$2" && return 0
	diag "$(wc -l < "$1") events, $(wc -l < "$2") in the stream; first differences:"
	diff "$1" "$2" | head -n 12 | sed 's/^/# /'
	return 1
}

# audit_expectations STREAM MIN: every message that carries
# Nats-Expected-Last-Msg-Id was stored right after the message it named
# (the server's check of the order held), and at least MIN of them did.
audit_expectations() {
	"$PROBE" stream-dump "$1" | python3 -c '
import sys, json
n, prev = 0, None
for l in sys.stdin:
    m = json.loads(l)
    e = m.get("expected_last_msg_id")
    if e is not None:
        if prev is None or prev["msg_id"] != e or prev["seq"] != m["seq"] - 1:
            print("# seq %d named %s, follows %s" % (m["seq"], e, prev)); sys.exit(1)
        n += 1
    prev = m
print("# %d messages named their predecessor" % n)
sys.exit(0 if n >= int(sys.argv[1]) else 1)' "$2"
}
