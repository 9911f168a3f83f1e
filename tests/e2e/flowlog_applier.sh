#!/bin/bash
# SPDX-License-Identifier: MIT
# egw-flowlog behind the real egw-applier: the applier renders table inet
# forge_egress in the gateway namespace (flat skeleton, prefixes
# "egw:<v>:m:<reason>", per-mark rate limits and counters), egw-flowlog
# reads the NFLOG group there, and every check looks at egress_log rows.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_netns.sh"
e2e_init flowlog_applier
need_cmd sqlite3
netns_topology
applier_env
RATE=50 BURST=20 FLOOD=10000
export EGW_LOG_RATE=$RATE EGW_LOG_BURST=$BURST EGW_DB_PATH="$EGW_STATE_DIR/egw.db"
start_applier
A=100.64.1.2 B=100.64.1.3 A6=2001:db8:64:1::2

policy put '{"scenario_id":"sa","network_id":"net-a","profile":"external-api","sources":["100.64.1.2/32","2001:db8:64:1::2/128"]}'
policy put '{"scenario_id":"sb","network_id":"net-b","profile":"none","sources":["100.64.1.3/32"]}'
ok "both policies applied" applied
MARK_A=$(db "SELECT id FROM policies WHERE scenario_id = 'sa'")

start_flowlog() {
	ip netns exec "$NS_GW" "$(egw_bin egw-flowlog)" >> "$T/flowlog.log" 2>&1 &
	FLOWLOG_PID=$!
	track_pid "$FLOWLOG_PID"
	wait_for 10 flowlog_reported
}
flowlog_reported() {
	[ "$(db "SELECT pid FROM component_status WHERE component = 'flowlog'")" = "$FLOWLOG_PID" ]
}
info() { db "SELECT json_extract(info, '\$.$1') FROM component_status WHERE component = 'flowlog'"; }
rows_where() { db "SELECT count(*) FROM egress_log WHERE $1"; }
rows_ge() { [ "$(rows_where "$1")" -ge "$2" ]; }
wait_rows() { wait_for 5 rows_ge "$1" "$2"; }
row_is() {
	got=$(db "SELECT count(*) || '|' || group_concat(ifnull(scenario_id,'-') || ',' ||
		ifnull(network_id,'-') || ',' || action || ',' || src_ip || ',' ||
		dst_ip || ',' || ifnull(src_port,'-') || ',' || ifnull(dst_port,'-') || ',' ||
		ifnull(protocol,'-') || ',' || reason) FROM egress_log WHERE $1")
	[ "$got" = "$2" ] || { diag "got '$got', want '$2'"; return 1; }
}
# traffic KIND SRC SPORT DST DPORT [COUNT]: tcp = one connect with a 0.5 s
# timeout (no SYN retransmission), udp = COUNT datagrams.
traffic() {
	in_scen /usr/bin/python3 - "$@" <<'PY'
import socket, sys, time
kind, src, sport, dst, dport = sys.argv[1:6]
count = int(sys.argv[6]) if len(sys.argv) > 6 else 1
af = socket.AF_INET6 if ":" in dst else socket.AF_INET
if kind == "tcp":
	s = socket.socket(af, socket.SOCK_STREAM)
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind((src, int(sport))); s.settimeout(0.5)
	try:
		s.connect((dst, int(dport))); print("connected")
	except OSError:
		print("timeout")
else:
	s = socket.socket(af, socket.SOCK_DGRAM)
	s.bind((src, int(sport)))
	t0 = time.monotonic()
	for i in range(count):
		if time.monotonic() - t0 > 20: break
		s.sendto(b"x", (dst, int(dport)))
PY
}
# Packets the applier's per-mark deny counter holds for MARK.
deny_count() {
	in_gw nft -j list set inet forge_egress cnt_deny | /usr/bin/python3 -c '
import json, sys
mark = int(sys.argv[1])
for o in json.load(sys.stdin)["nftables"]:
	for e in o.get("set", {}).get("elem", []):
		e = e.get("elem", e)
		if isinstance(e, dict) and e.get("val") == mark:
			print(e.get("counter", {}).get("packets", 0)); sys.exit(0)
print(0)' "$1"
}

ok "egw-flowlog starts next to the applier" start_flowlog
# Neighbours first, so no first SYN waits for resolution and is resent.
tcp_ok $A 203.0.113.10 443; tcp_ok $A6 2001:db8:113::10 443; udp_ok $B 198.51.100.20 53
db "DELETE FROM egress_log"

ok "denied TCP connect (IPv4) times out" test "$(traffic tcp $A 40001 203.0.113.10 22)" = timeout
wait_rows "src_port = 40001" 1
ok "denied TCP connect (IPv4): exactly its row" row_is "src_port = 40001" \
	"1|sa,net-a,deny,$A,203.0.113.10,40001,22,tcp,default"
traffic udp $A 40002 203.0.113.10 5353
wait_rows "src_port = 40002" 1
ok "denied UDP datagram (IPv4): exactly its row" row_is "src_port = 40002" \
	"1|sa,net-a,deny,$A,203.0.113.10,40002,5353,udp,default"
ok "allowed HTTPS connect (IPv4)" test "$(traffic tcp $A 40003 203.0.113.10 443)" = connected
wait_rows "src_port = 40003" 1
ok "allowed HTTPS connect (IPv4): exactly one allow row" row_is "src_port = 40003" \
	"1|sa,net-a,allow,$A,203.0.113.10,40003,443,tcp,allowlist"
ok "allowed HTTPS connect (IPv6)" test "$(traffic tcp $A6 40004 2001:db8:113::10 443)" = connected
wait_rows "src_port = 40004" 1
ok "allowed HTTPS connect (IPv6): exactly one allow row" row_is "src_port = 40004" \
	"1|sa,net-a,allow,$A6,2001:db8:113::10,40004,443,tcp,allowlist"
ok "denied TCP connect (IPv6) times out" test "$(traffic tcp $A6 40005 2001:db8:113::10 22)" = timeout
traffic udp $A6 40006 2001:db8:113::10 123
wait_rows "src_port IN (40005, 40006)" 2
ok "denied TCP connect (IPv6): exactly its row" row_is "src_port = 40005" \
	"1|sa,net-a,deny,$A6,2001:db8:113::10,40005,22,tcp,default"
ok "denied UDP datagram (IPv6): exactly its row" row_is "src_port = 40006" \
	"1|sa,net-a,deny,$A6,2001:db8:113::10,40006,123,udp,default"
traffic udp $A 40007 169.254.169.254 80
wait_rows "src_port = 40007" 1
ok "metadata deny carries its reason" row_is "src_port = 40007" \
	"1|sa,net-a,deny,$A,169.254.169.254,40007,80,udp,metadata"
traffic udp 100.64.1.4 40008 203.0.113.10 80
wait_rows "src_port = 40008" 1
ok "managed source without a policy: baseline row, no scenario" row_is "src_port = 40008" \
	"1|-,-,deny,100.64.1.4,203.0.113.10,40008,80,udp,baseline"

# A policy created while egw-flowlog runs and logs: its first packets come
# within milliseconds of its rules, long before the next periodic look at
# the policies, and must still name it (they were stored without a
# scenario when a reload had happened in the second before).
in_scen /usr/bin/python3 - <<'PY' &
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("100.64.1.4", 44000))
for i in range(400):
	s.sendto(b"x", ("203.0.113.10", 7)); time.sleep(0.005)
PY
sender=$!
sleep 0.3
policy put '{"scenario_id":"sd","profile":"none","sources":["100.64.2.0/24"]}'
sleep 0.4
policy put '{"scenario_id":"sc","network_id":"net-c","profile":"none","sources":["100.64.1.4/32"]}'
wait "$sender"
wait_rows "src_ip = '100.64.1.4' AND src_port = 44000 AND reason = 'default'" 1
ok "a policy created while logging: its first rows name it" \
	test "$(rows_where "src_port = 44000 AND reason = 'default' AND ifnull(scenario_id, '') <> 'sc'")" -eq 0
diag "rows of the new policy's packets: $(rows_where "src_port = 44000 AND scenario_id = 'sc'"), baseline rows before it: $(rows_where "src_port = 44000 AND reason = 'baseline'")"

# Flood from A while B keeps sending.
sleep 1
c0=$(deny_count "$MARK_A"); a0=$(rows_where "scenario_id = 'sa' AND dst_port = 9")
t0=$(date +%s.%N)
( for i in $(seq 0 10); do traffic udp $B $((41000 + i)) 203.0.113.10 7; sleep 0.05; done ) &
b_loop=$!
traffic udp $A 42000 203.0.113.10 9 $FLOOD
t1=$(date +%s.%N)
wait "$b_loop"
sleep 0.5
c1=$(deny_count "$MARK_A")
a_rows=$(( $(rows_where "scenario_id = 'sa' AND dst_port = 9") - a0 ))
max_rows=$(/usr/bin/python3 -c "import math; print($RATE + $BURST + math.ceil($RATE * ($t1 - $t0)))")
diag "flood: $FLOOD datagrams, applier deny counter +$((c1 - c0)), $a_rows rows (bound $max_rows)"
ok "the applier's deny counter counts every flood packet" test $((c1 - c0)) -eq $FLOOD
ok "the flood yields at most the rate's rows" test "$a_rows" -le "$max_rows"
ok "the flood yields rows" test "$a_rows" -ge "$BURST"
wait_rows "scenario_id = 'sb' AND src_port BETWEEN 41000 AND 41010" 11
ok "scenario B's logs are unaffected (11 of 11)" \
	test "$(rows_where "scenario_id = 'sb' AND src_port BETWEEN 41000 AND 41010")" -eq 11
sleep 1.2
ok "nothing lost" test "$(info lost)" = 0

# Restart.
kill -TERM "$FLOWLOG_PID"; wait "$FLOWLOG_PID"
ok "clean stop" test $? -eq 0
total=$(db "SELECT count(*) FROM egress_log")
ok "flowlog restarts" start_flowlog
for i in 1 2 3 4 5; do traffic udp $B $((43000 + i)) 203.0.113.10 7; done
wait_rows "src_port BETWEEN 43001 AND 43005" 5
ok "after the restart every delivered packet has its row (5 of 5)" \
	test "$(rows_where "src_port BETWEEN 43001 AND 43005")" -eq 5
ok "no duplicates" test "$(db "SELECT count(*) FROM egress_log")" -eq $((total + 5))
e2e_done
