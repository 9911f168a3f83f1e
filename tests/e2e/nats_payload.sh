#!/bin/bash
# SPDX-License-Identifier: MIT
# An audit event larger than the NATS server's max_payload (a server
# configured with a small one, a policy with many entries): the server
# would refuse it every time, and audit events go out strictly in order,
# so it must not hold back the ones behind it.  It is published as a
# stand-in that names it (same event id, type and scenario, its size,
# "truncated": true), in its place in the order; the outbox row keeps the
# whole payload.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init nats_payload
need_cmd nats-server
egw_env
NATS_PORT=$(free_port)
mkdir -p "$T/nats"
cat > "$T/nats.conf" <<CONF
listen: 127.0.0.1:$NATS_PORT
max_payload: 4096
jetstream { store_dir: "$T/nats" }
CONF
nats-server -c "$T/nats.conf" > "$T/nats.log" 2>&1 &
NATS_PID=$!
track_pid "$NATS_PID"
export NATS_URL="nats://127.0.0.1:$NATS_PORT"
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT" ||
	{ echo "Bail out! nats-server did not start"; exit 99; }
. "$EGW_TOP_SRCDIR/tests/e2e/nats_lib.sh"
POLICY=$(egw_bin tests/e2e/egw-policy)

start_natsd
ok "audit events go out through JetStream" wait_until 10 natsd_info_is audit_mode jetstream

hosts=$(python3 -c 'print(",".join("\"203.0.113.%d\"" % i for i in range(1, 255)))')
quiet "$POLICY" put '{"scenario_id":"small-1","profile":"none"}' &&
quiet "$POLICY" put "{\"scenario_id\":\"big\",\"profile\":\"custom\",\"allowed_hosts\":[$hosts]}" &&
quiet "$POLICY" put '{"scenario_id":"small-2","profile":"none"}' ||
	{ echo "Bail out! cannot store the policies"; exit 99; }
big_len=$(q "SELECT length(payload) FROM outbox WHERE scenario_id = 'big'")
diag "the big policy's event: $big_len bytes; max_payload 4096"
ok "the big event is larger than the server's max_payload" [ "${big_len:-0}" -gt 4096 ]

ok "every audit event is delivered, the big one too" wait_until 20 q_eq \
	"SELECT count(*) FROM outbox WHERE delivered_at IS NULL" 0
"$PROBE" stream-dump AUDIT > "$T/audit.jsonl" 2> "$T/dump.log"
ok "the stream holds them in outbox order, one message each" python3 - "$T/audit.jsonl" "$DB" <<'PY'
import json, sqlite3, sys
msgs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = sqlite3.connect(sys.argv[2]).execute(
    "SELECT event_id FROM outbox ORDER BY id").fetchall()
got = [m["msg_id"] for m in msgs]
want = [r[0] for r in rows]
if got != want:
    print("# stream", got, "\n# outbox", want)
    sys.exit(1)
PY
ok "the big one is a stand-in that names it" python3 - "$T/audit.jsonl" "$DB" "$big_len" <<'PY'
import json, sqlite3, sys
msgs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
eid, typ = sqlite3.connect(sys.argv[2]).execute(
    "SELECT event_id, type FROM outbox WHERE scenario_id = 'big'").fetchone()
m = [m for m in msgs if m["msg_id"] == eid][0]["data"]
ok = (m.get("truncated") is True and m.get("event_id") == eid and
      m.get("type") == typ and m.get("scenario_id") == "big" and
      m.get("payload_bytes") == int(sys.argv[3]) and m.get("max_payload") == 4096)
if not ok:
    print("# stand-in:", m)
sys.exit(0 if ok else 1)
PY
ok "the small ones are whole" python3 - "$T/audit.jsonl" <<'PY'
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
small = [m["data"] for m in msgs if m["data"].get("scenario_id", "").startswith("small-")]
sys.exit(0 if len(small) == 2 and all("truncated" not in d for d in small) else 1)
PY
ok "the outbox row keeps the whole event" q_is \
	"SELECT length(payload) FROM outbox WHERE scenario_id = 'big'" "$big_len"
ok "the stand-in is logged with the event id" grep -q \
	"$(q "SELECT event_id FROM outbox WHERE scenario_id = 'big'").*max_payload" "$T/natsd.log"
stop_natsd
e2e_done
