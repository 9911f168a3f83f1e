#!/bin/bash
# SPDX-License-Identifier: MIT
# egw-flowlog end to end: real packets through a gateway namespace whose
# table inet forge_egress logs to NFLOG; rows checked in SQLite (egress_log
# and the audit.egress outbox).
#
# Topology (all namespaces created here, deleted at exit):
#   cl  (scenario A 100.64.1.2, 2001:db8:1::2; baseline source 100.64.3.2)
#   cl2 (scenario B 100.64.2.2)
#        \ veth /
#         gw  (forward chain: marks by source, logs, counts, drops)
#          | veth
#         srv (203.0.113.10, 2001:db8:f::10; TCP 443 listener)
#
# Until the applier's ruleset exists (src/render.c), gw loads a minimal
# ruleset of the same shape: mark = policies.id, prefix
# "egw:<a|d|w>:<policy_id>:<reason>", rate-limited logs in their own rule
# (dynamic set keyed by mark, so each scenario has its own budget), then a
# named counter and the verdict.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init flowlog_basic
need_root
need_cmd nft ip python3 sqlite3
# The interpreter itself: a version-manager shim costs ~0.5 s per start.
PY=$(python3 -c 'import sys; print(sys.executable)')

GROUP=$(( 100 + $$ % 900 ))
RATE=50
BURST=20
FLOOD=10000

egw_env
export EGW_DB_PATH="$T/state/egw.db" EGW_NFLOG_GROUP=$GROUP
DB=$EGW_DB_PATH
"$(egw_bin egw-admin)" migrate > "$T/admin.log" 2>&1 || { echo "Bail out! migrate"; exit 99; }
sqlite3 "$DB" "INSERT INTO policies (id, scenario_id, network_id, profile, generation,
	created_at, updated_at) VALUES
	(1, 'scen-a', 'net-a', 'external-api', 1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'),
	(2, 'scen-b', 'net-b', 'none', 1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');" ||
	{ echo "Bail out! policies"; exit 99; }

# ---- namespaces ----
CL=$(make_netns cl)
CL2=$(make_netns cl2)
GW=$(make_netns gw)
SRV=$(make_netns srv)
link() {	# link NS_A IF_A NS_B IF_B
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3" || exit 99
	ip -n "$1" link set "$2" up
	ip -n "$3" link set "$4" up
}
link "$CL" c0 "$GW" g1
link "$CL2" c0 "$GW" g2
link "$SRV" s0 "$GW" g3
for ns in "$CL" "$CL2" "$SRV" "$GW"; do
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
done
ip -n "$CL" addr add 100.64.1.2/24 dev c0
ip -n "$CL" addr add 100.64.3.2/24 dev c0
ip -n "$CL" -6 addr add 2001:db8:1::2/64 dev c0 nodad
ip -n "$CL" route add default via 100.64.1.1
ip -n "$CL" -6 route add default via 2001:db8:1::1
ip -n "$CL2" addr add 100.64.2.2/24 dev c0
ip -n "$CL2" route add default via 100.64.2.1
ip -n "$GW" addr add 100.64.1.1/24 dev g1
ip -n "$GW" route add 100.64.3.0/24 dev g1
ip -n "$GW" -6 addr add 2001:db8:1::1/64 dev g1 nodad
ip -n "$GW" addr add 100.64.2.1/24 dev g2
ip -n "$GW" addr add 203.0.113.1/24 dev g3
ip -n "$GW" -6 addr add 2001:db8:f::1/64 dev g3 nodad
ip netns exec "$GW" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip -n "$SRV" addr add 203.0.113.10/24 dev s0
ip -n "$SRV" -6 addr add 2001:db8:f::10/64 dev s0 nodad
ip -n "$SRV" route add 100.64.0.0/10 via 203.0.113.1
ip -n "$SRV" -6 route add default via 2001:db8:f::1

# ---- ruleset (only inside $GW) ----
ip netns exec "$GW" nft -f - <<EOF || { echo "Bail out! ruleset"; exit 99; }
table inet forge_egress {
	counter deny_1 { }
	counter deny_2 { }
	counter deny_0 { }
	set logrl_d { type mark; flags dynamic,timeout; timeout 1m; size 65536; }
	set logrl_a { type mark; flags dynamic,timeout; timeout 1m; size 65536; }
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		ct state established,related accept
		iifname "g3" accept
		ip saddr 100.64.1.0/24 meta mark set 1
		ip6 saddr 2001:db8:1::/64 meta mark set 1
		ip saddr 100.64.2.0/24 meta mark set 2
		ip saddr 100.64.3.0/24 meta mark set 0
		meta mark 1 tcp dport 443 ct state new update @logrl_a { meta mark limit rate $RATE/second burst $BURST packets } log prefix "egw:a:1:allowlist" group $GROUP
		meta mark 1 tcp dport 443 accept
		meta mark 1 update @logrl_d { meta mark limit rate $RATE/second burst $BURST packets } log prefix "egw:d:1:default" group $GROUP
		meta mark 1 counter name deny_1 drop
		meta mark 2 udp dport 5 log prefix "egw:d:2:nolimit" group $GROUP
		meta mark 2 udp dport 5 counter name deny_2 drop
		meta mark 2 udp dport 6 log prefix "not-ours" group $GROUP
		meta mark 2 udp dport 8 log prefix "egw:d:0:disabled" group $GROUP
		meta mark 2 udp dport 8 counter name deny_2 drop
		meta mark 2 update @logrl_d { meta mark limit rate $RATE/second burst $BURST packets } log prefix "egw:d:m:default" group $GROUP
		meta mark 2 counter name deny_2 drop
		log prefix "egw:d:0:baseline" group $GROUP
		counter name deny_0 drop
	}
}
EOF

# A TCP listener on 443 (both families) in srv.
ip netns exec "$SRV" "$PY" -c '
import socket, select
s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s4.bind(("203.0.113.10", 443)); s4.listen(64)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s6.bind(("2001:db8:f::10", 443)); s6.listen(64)
while True:
	r, _, _ = select.select([s4, s6], [], [], 60)
	if not r: break
	for s in r:
		c, _ = s.accept(); c.close()
' > "$T/listener.log" 2>&1 &
track_pid $!

# traffic NS KIND FAMILY SRC SPORT DST DPORT [COUNT]: bounded sender.
# KIND tcp: one connect with a 0.5 s timeout (below the first SYN
# retransmission), prints "connected" or "timeout"; udp: COUNT datagrams;
# icmp: one echo request.
traffic() {
	ip netns exec "$1" "$PY" - "$@" <<'PY'
import socket, sys, time
_, ns, kind, fam, src, sport, dst, dport = sys.argv[:8]
count = int(sys.argv[8]) if len(sys.argv) > 8 else 1
af = socket.AF_INET6 if fam == "6" else socket.AF_INET
if kind == "tcp":
	s = socket.socket(af, socket.SOCK_STREAM)
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind((src, int(sport))); s.settimeout(0.5)
	try:
		s.connect((dst, int(dport))); print("connected")
	except OSError:
		print("timeout")
	s.close()
elif kind == "udp":
	s = socket.socket(af, socket.SOCK_DGRAM)
	s.bind((src, int(sport)))
	t0 = time.monotonic()
	for i in range(count):
		if time.monotonic() - t0 > 20: break
		s.sendto(b"x", (dst, int(dport)))
elif kind == "icmp":
	s = socket.socket(af, socket.SOCK_RAW, socket.IPPROTO_ICMP)
	s.bind((src, 0))
	s.sendto(bytes([8, 0, 0xf7, 0xfe, 0, 1, 0, 0]), (dst, 0))
PY
}

q() { sqlite3 -batch -noheader "$DB" "$1"; }
rows_where() { q "SELECT count(*) FROM egress_log WHERE $1"; }
row_is() {	# row_is WHERE EXPECTED: the one row's fields as text
	got=$(q "SELECT count(*) || '|' || group_concat(ifnull(scenario_id,'-') || ',' ||
		ifnull(network_id,'-') || ',' || action || ',' || src_ip || ',' ||
		dst_ip || ',' || ifnull(src_port,'-') || ',' || ifnull(dst_port,'-') || ',' ||
		ifnull(protocol,'-') || ',' || reason) FROM egress_log WHERE $1")
	[ "$got" = "$2" ] || { diag "got '$got', want '$2'"; return 1; }
}
rows_ge() { [ "$(rows_where "$1")" -ge "$2" ]; }
rows_eq() { [ "$(rows_where "$1")" -eq "$2" ]; }
# wait_for re-runs its command, so every predicate is a function that
# queries when called (a $(...) argument would be evaluated only once).
wait_rows() { wait_for 5 rows_ge "$1" "$2"; }
counter() {
	ip netns exec "$GW" nft -j list counter inet forge_egress "$1" |
		"$PY" -c 'import json,sys; d=json.load(sys.stdin)["nftables"]; print([o["counter"]["packets"] for o in d if "counter" in o][0])'
}
info() { q "SELECT json_extract(info, '\$.$1') FROM component_status WHERE component = 'flowlog'"; }

start_flowlog() {
	ip netns exec "$GW" "$(egw_bin egw-flowlog)" >> "$T/flowlog.log" 2>&1 &
	FLOWLOG_PID=$!
	track_pid "$FLOWLOG_PID"
	wait_for 10 flowlog_reported
}
flowlog_reported() {
	[ "$(q "SELECT pid FROM component_status WHERE component = 'flowlog'")" = "$FLOWLOG_PID" ]
}

# Resolve neighbours first (traffic to the gateway itself and from it is
# not forwarded, so not logged): a first SYN delayed by neighbour discovery
# could be retransmitted and logged twice.
warm() {
	"$PY" - "$@" <<'PY'
import socket, sys
for a in sys.argv[1:]:
	s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET)
	s.settimeout(2)
	try: s.connect((a, 1))
	except OSError: pass
	s.close()
PY
}
ip netns exec "$CL" bash -c "$(declare -f warm); PY=$PY warm 100.64.1.1 2001:db8:1::1"
ip netns exec "$CL2" bash -c "$(declare -f warm); PY=$PY warm 100.64.2.1"
ip netns exec "$GW" bash -c "$(declare -f warm); PY=$PY warm 203.0.113.10 2001:db8:f::10 100.64.1.2 100.64.2.2 2001:db8:1::2"
ip netns exec "$SRV" bash -c "$(declare -f warm); PY=$PY warm 203.0.113.1 2001:db8:f::1"

# ---- checks ----
check_config() { "$(egw_bin egw-flowlog)" -n > "$T/check.out" 2>&1 &&
	grep -q "configuration ok (NFLOG group $GROUP," "$T/check.out"; }
ok "egw-flowlog -n accepts the configuration" check_config
ok "egw-flowlog -n rejects a bad group" \
	bash -c "! EGW_NFLOG_GROUP=70000 '$(egw_bin egw-flowlog)' -n 2>/dev/null"
ok "egw-flowlog binds group $GROUP and reports in component_status" start_flowlog
ok "a second reader cannot take the group" \
	bash -c "! timeout 5 ip netns exec '$GW' '$(egw_bin egw-flowlog)' 2>>'$T/flowlog2.log'"

ok "denied TCP connect (IPv4) times out" \
	test "$(traffic "$CL" tcp 4 100.64.1.2 40001 203.0.113.10 22)" = timeout
wait_rows "src_port = 40001" 1
ok "denied TCP connect (IPv4): exactly its row" row_is "src_port = 40001" \
	"1|scen-a,net-a,deny,100.64.1.2,203.0.113.10,40001,22,tcp,default"

traffic "$CL" udp 4 100.64.1.2 40002 203.0.113.10 5353
wait_rows "src_port = 40002" 1
ok "denied UDP datagram (IPv4): exactly its row" row_is "src_port = 40002" \
	"1|scen-a,net-a,deny,100.64.1.2,203.0.113.10,40002,5353,udp,default"

ok "allowed TCP connect to 443 (IPv4) succeeds" \
	test "$(traffic "$CL" tcp 4 100.64.1.2 40003 203.0.113.10 443)" = connected
wait_rows "src_port = 40003" 1
ok "allowed TCP connect (IPv4): exactly one allow row" row_is "src_port = 40003" \
	"1|scen-a,net-a,allow,100.64.1.2,203.0.113.10,40003,443,tcp,allowlist"

ok "allowed TCP connect to 443 (IPv6) succeeds" \
	test "$(traffic "$CL" tcp 6 2001:db8:1::2 40004 2001:db8:f::10 443)" = connected
wait_rows "src_port = 40004" 1
ok "allowed TCP connect (IPv6): exactly one allow row" row_is "src_port = 40004" \
	"1|scen-a,net-a,allow,2001:db8:1::2,2001:db8:f::10,40004,443,tcp,allowlist"

ok "denied TCP connect (IPv6) times out" \
	test "$(traffic "$CL" tcp 6 2001:db8:1::2 40005 2001:db8:f::10 22)" = timeout
traffic "$CL" udp 6 2001:db8:1::2 40006 2001:db8:f::10 53
wait_rows "src_port IN (40005, 40006)" 2
ok "denied TCP connect (IPv6): exactly its row" row_is "src_port = 40005" \
	"1|scen-a,net-a,deny,2001:db8:1::2,2001:db8:f::10,40005,22,tcp,default"
ok "denied UDP datagram (IPv6): exactly its row" row_is "src_port = 40006" \
	"1|scen-a,net-a,deny,2001:db8:1::2,2001:db8:f::10,40006,53,udp,default"

traffic "$CL" icmp 4 100.64.1.2 0 203.0.113.10 0
wait_rows "protocol = 'icmp'" 1
ok "denied ICMP echo: a row without ports" row_is "protocol = 'icmp'" \
	"1|scen-a,net-a,deny,100.64.1.2,203.0.113.10,-,-,icmp,default"

traffic "$CL" udp 4 100.64.3.2 40007 203.0.113.10 123
wait_rows "src_port = 40007" 1
ok "baseline (policy id 0, no mark): row without a scenario" row_is "src_port = 40007" \
	"1|-,-,deny,100.64.3.2,203.0.113.10,40007,123,udp,baseline"

traffic "$CL2" udp 4 100.64.2.2 40008 203.0.113.10 8
wait_rows "src_port = 40008" 1
ok "prefix policy id 0 with a mark: attributed by the mark" row_is "src_port = 40008" \
	"1|scen-b,net-b,deny,100.64.2.2,203.0.113.10,40008,8,udp,disabled"

traffic "$CL2" udp 4 100.64.2.2 40009 203.0.113.10 6
wait_rows "src_port = 40009" 1
ok "a foreign prefix on the group is ignored (only our rule's row)" row_is "src_port = 40009" \
	"1|scen-b,net-b,deny,100.64.2.2,203.0.113.10,40009,6,udp,default"
foreign_counted() { [ "$(info foreign)" -ge 1 ]; }
ok "the foreign message is counted" wait_for 3 foreign_counted

before=$(q "SELECT count(*) FROM egress_log")
ok "every row has its audit.egress flow event in the outbox" \
	test "$(q "SELECT count(*) FROM outbox WHERE type = 'flow'")" -eq "$before"
ok "flow payload carries the earlier service's fields" test "$(q "SELECT
	json_extract(payload, '\$.scenario_id') || ',' || json_extract(payload, '\$.action') || ',' ||
	json_extract(payload, '\$.src_ip') || ',' || json_extract(payload, '\$.dst_ip') || ',' ||
	json_extract(payload, '\$.dst_port') || ',' || json_extract(payload, '\$.protocol') || ',' ||
	json_extract(payload, '\$.reason') || ',' || json_extract(payload, '\$.network_id') || ',' ||
	json_extract(payload, '\$.type') || ',' || (json_extract(payload, '\$.event_id') IS NOT NULL) || ',' ||
	(json_extract(payload, '\$.timestamp') IS NOT NULL)
	FROM outbox WHERE type = 'flow' AND json_extract(payload, '\$.src_port') = 40002")" = \
	"scen-a,deny,100.64.1.2,203.0.113.10,5353,udp,default,net-a,flow,1,1"

# ---- flood: scenario A floods, scenario B keeps logging ----
sleep 1	# let A's token bucket refill to the burst
a_before=$(rows_where "scenario_id = 'scen-a' AND dst_port = 9")
c_before=$(counter deny_1)
t0=$(date +%s.%N)
traffic "$CL2" udp 4 100.64.2.2 41000 203.0.113.10 7 1 &
b_pid=$!
( for i in 1 2 3 4 5 6 7 8 9 10; do
	traffic "$CL2" udp 4 100.64.2.2 $((41000 + i)) 203.0.113.10 7
	sleep 0.1
  done ) &
b_loop=$!
traffic "$CL" udp 4 100.64.1.2 42000 203.0.113.10 9 $FLOOD
t1=$(date +%s.%N)
wait "$b_loop" "$b_pid"
sleep 0.5
c_after=$(counter deny_1)
a_rows=$(( $(rows_where "scenario_id = 'scen-a' AND dst_port = 9") - a_before ))
elapsed=$("$PY" -c "print(round($t1 - $t0, 3))")
# At most a full bucket (nft limit: up to rate + burst tokens) plus what
# the rate refills during the flood.
max_rows=$("$PY" -c "import math; print($RATE + $BURST + math.ceil($RATE * ($t1 - $t0)))")
diag "flood: $FLOOD datagrams in ${elapsed}s, deny counter +$((c_after - c_before)), $a_rows rows (bound $max_rows)"
ok "the deny counter counts every flood packet" test $((c_after - c_before)) -eq $FLOOD
ok "the flood yields at most the rate's rows" test "$a_rows" -le "$max_rows"
ok "the flood yields rows (the log works under load)" test "$a_rows" -ge "$BURST"
wait_rows "scenario_id = 'scen-b' AND src_port BETWEEN 41000 AND 41010" 11
ok "scenario B's logs are unaffected by A's flood (11 of 11)" \
	test "$(rows_where "scenario_id = 'scen-b' AND src_port BETWEEN 41000 AND 41010")" -eq 11
sleep 1.2	# one heartbeat
ok "nothing lost (component_status lost = 0)" test "$(info lost)" = 0
ok "written = received in component_status" test "$(info written)" = "$(info received)"

# ---- restart ----
total=$(q "SELECT count(*) FROM egress_log")
kill -TERM "$FLOWLOG_PID"
wait "$FLOWLOG_PID"
ok "flowlog stops cleanly on SIGTERM" test $? -eq 0
ok "everything received before the stop was written" \
	test "$(info written)" = "$(info received)"
ok "its last report says it stopped (running false)" test "$(info running)" = 0
traffic "$CL2" udp 4 100.64.2.2 43000 203.0.113.10 7	# nobody bound: not logged
sleep 0.2
ok "flowlog restarts" start_flowlog
running_is() { [ "$(info running)" = "$1" ]; }
ok "and reports running again" wait_for 5 running_is 1
for i in 1 2 3 4 5; do
	traffic "$CL2" udp 4 100.64.2.2 $((43000 + i)) 203.0.113.10 7
done
wait_rows "src_port BETWEEN 43001 AND 43005" 5
ok "after the restart every delivered packet has its row (5 of 5)" \
	test "$(rows_where "src_port BETWEEN 43001 AND 43005")" -eq 5
ok "no duplicates after the restart" \
	test "$(q "SELECT count(*) FROM egress_log")" -eq $((total + 5))

# ---- overrun: counted, never silent ----
# A stopped reader with the smallest receive buffer cannot keep up with an
# unlimited log rule; every message the kernel built is either a row or
# counted as lost (sequence gap), and the overrun is reported.
kill -TERM "$FLOWLOG_PID"; wait "$FLOWLOG_PID"
EGW_NFLOG_RCVBUF=65536 start_flowlog
kill -STOP "$FLOWLOG_PID"
traffic "$CL2" udp 4 100.64.2.2 44000 203.0.113.10 5 3000
kill -CONT "$FLOWLOG_PID"
sleep 0.5
traffic "$CL2" udp 4 100.64.2.2 44001 203.0.113.10 5	# reveals a gap at the end
wait_rows "src_port = 44001" 1
sleep 1.2	# one heartbeat
r5=$(rows_where "dst_port = 5"); l5=$(info seq_lost); e5=$(info enobufs)
diag "overrun: $r5 rows + $l5 lost (sequence) = $((r5 + l5)) of 3001 logged; $e5 ENOBUFS"
ok "the overrun is reported (ENOBUFS counted)" test "$e5" -ge 1
ok "the overrun is counted as lost" test "$(info lost)" -ge "$l5" -a "$l5" -ge 1
ok "rows + lost = every message the kernel logged (3001)" test $((r5 + l5)) -eq 3001

# ---- retention ----
# The flow events in the outbox (no egw-natsd here: none delivered) go by
# the same age, from the oldest by id; a policy event never does, however
# old.
kill -TERM "$FLOWLOG_PID"; wait "$FLOWLOG_PID"
total=$(q "SELECT count(*) FROM egress_log WHERE ifnull(src_port, 0) NOT BETWEEN 43001 AND 43005")
q "UPDATE egress_log SET ts = '2020-01-01T00:00:00.000Z' WHERE src_port BETWEEN 43001 AND 43005"
flows=$(q "SELECT count(*) FROM outbox WHERE type = 'flow'")
q "UPDATE outbox SET created_at = '2020-01-01T00:00:00.000Z' WHERE id IN
	(SELECT id FROM outbox WHERE type = 'flow' ORDER BY id LIMIT 5)"
q "INSERT INTO outbox (event_id, type, scenario_id, payload, created_at) VALUES
	('e2e-policy-event', 'policy.updated', 'scen-a', '{}', '2020-01-01T00:00:00.000Z')"
EGW_LOG_RETENTION=1d start_flowlog
ok "retention prunes rows older than EGW_LOG_RETENTION" \
	wait_for 5 rows_eq "src_port BETWEEN 43001 AND 43005" 0
ok "retention keeps recent rows" test "$(q "SELECT count(*) FROM egress_log")" -eq "$total"
old_flows() { [ "$(q "SELECT count(*) FROM outbox WHERE type = 'flow'
	AND created_at < '2021'")" -eq "$1" ]; }
ok "retention prunes flow events older than EGW_LOG_RETENTION (5 of 5)" \
	wait_for 5 old_flows 0
ok "retention keeps recent flow events" \
	test "$(q "SELECT count(*) FROM outbox WHERE type = 'flow'")" -eq $((flows - 5))
ok "an old policy event in the outbox is kept" \
	test "$(q "SELECT count(*) FROM outbox WHERE event_id = 'e2e-policy-event'")" -eq 1
dropped_is() { [ "$(info outbox_dropped),$(info outbox_pruned)" = "$1" ]; }
ok "the 5 undelivered flow events pruned are counted (outbox_dropped)" \
	wait_for 3 dropped_is 5,5

# ---- the row cap holds under load ----
# Port 5 logs without a limit: batches of up to 1,000 rows, each of which
# must be matched by as much pruning (one 500-row transaction per batch let
# the log grow by half of every batch while the load lasted).
kill -TERM "$FLOWLOG_PID"; wait "$FLOWLOG_PID"
CAP=1000
# 1,000 more flow events (as a stopped egw-natsd leaves them), so that
# more than the cap are there before it starts.
q "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
	INSERT INTO outbox (event_id, type, payload, created_at)
	SELECT 'e2e-flow-' || i, 'flow', '{}', strftime('%Y-%m-%dT%H:%M:%fZ') FROM n"
flows0=$(q "SELECT count(*) FROM outbox WHERE type = 'flow'")
EGW_LOG_MAX_ROWS=$CAP start_flowlog
ok "the cap prunes the log down to EGW_LOG_MAX_ROWS" \
	wait_for 10 sh -c "[ \$(sqlite3 '$DB' 'SELECT count(*) FROM egress_log') -le $CAP ]"
flows_le() { [ "$(q "SELECT count(*) FROM outbox WHERE type = 'flow'")" -le "$1" ]; }
ok "the cap prunes the flow events down to EGW_LOG_MAX_ROWS ($flows0 before)" \
	wait_for 10 flows_le $CAP
: > "$T/counts"; : > "$T/flow_counts"
( end=$(( $(date +%s) + 8 ))
  while [ "$(date +%s)" -lt "$end" ] && [ ! -e "$T/sent" ]; do
	q "SELECT count(*) FROM egress_log" >> "$T/counts"
	q "SELECT count(*) FROM outbox WHERE type = 'flow'" >> "$T/flow_counts"
	sleep 0.05
  done ) &
poll=$!
traffic "$CL2" udp 4 100.64.2.2 45000 203.0.113.10 5 30000
sleep 1.5
touch "$T/sent"; wait "$poll"
q "SELECT count(*) FROM egress_log" >> "$T/counts"
q "SELECT count(*) FROM outbox WHERE type = 'flow'" >> "$T/flow_counts"
peak=$(sort -n "$T/counts" | tail -1)
flow_peak=$(sort -n "$T/flow_counts" | tail -1)
diag "row cap $CAP under 30,000 unlimited log packets: peak $peak rows, $flow_peak flow events, written $(info written), lost $(info lost), $(wc -l < "$T/counts") samples"
ok "under load the log stays within the cap plus two batches ($peak rows)" test "$peak" -le $((CAP + 2000))
ok "and ends within the cap plus one batch" test "$(q "SELECT count(*) FROM egress_log")" -le $((CAP + 1000))

ok "under load the flow events stay within the cap plus two batches ($flow_peak)" \
	test "$flow_peak" -le $((CAP + 2000))
ok "and end within the cap plus one batch" flows_le $((CAP + 1000))
ok "the old policy event beyond the cap is kept" \
	test "$(q "SELECT count(*) FROM outbox WHERE event_id = 'e2e-policy-event'")" -eq 1
# Its last report, as it stops, has every deletion: none of them was ever
# published, so dropped = pruned = what was there + written - what is left.
kill -TERM "$FLOWLOG_PID"; wait "$FLOWLOG_PID"
flows1=$(q "SELECT count(*) FROM outbox WHERE type = 'flow'")
diag "flow events: $flows0 before + $(info written) written - $flows1 left; outbox_pruned $(info outbox_pruned), outbox_dropped $(info outbox_dropped)"
ok "every undelivered flow event pruned is counted (outbox_dropped)" \
	test "$(info outbox_dropped),$(info outbox_pruned)" = \
	"$((flows0 + $(info written) - flows1)),$((flows0 + $(info written) - flows1))"

# ---- a stop while another process holds the database's write lock ----
# The supervisor kills 10 s after SIGTERM: the last batch's lock waits end
# before that, and its rows are counted as lost instead of cut off unseen,
# however many wait in the queue.
start_flowlog
"$PY" -c "
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
c.execute('BEGIN IMMEDIATE')
open(sys.argv[2], 'w').close()
time.sleep(25)" "$DB" "$T/locked" &
LOCK_PID=$!
track_pid "$LOCK_PID"
# (it waits its turn: the reader may still be pruning the load above)
wait_for 30 test -e "$T/locked" || { echo "Bail out! lock holder"; exit 99; }
traffic "$CL2" udp 4 100.64.2.2 46000 203.0.113.10 5 5000
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$FLOWLOG_PID"
wait "$FLOWLOG_PID"
stop_rc=$?
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
diag "stop with the database locked: exit $stop_rc after $stop_ms ms"
ok "a stop with the database locked ends before the supervisor's kill ($stop_ms ms)" test "$stop_ms" -lt 10000
ok "... exits 0" test "$stop_rc" -eq 0
ok "... and says how many rows it could not write" grep -q "log rows lost" "$T/flowlog.log"
kill -TERM "$LOCK_PID" 2>/dev/null; wait "$LOCK_PID" 2>/dev/null

e2e_done
