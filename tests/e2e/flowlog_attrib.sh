#!/bin/bash
# SPDX-License-Identifier: MIT
# egw-flowlog's policy map against policies that come and go while packets
# are logged: a new scenario's first packets name it however soon after
# the last reload it was created, a packet logged while its policy existed
# keeps the scenario when it is written after the delete, and a mark with
# no policy does not reload the map batch after batch.
#
# Topology (all namespaces created here, deleted at exit):
#   cl (100.64.1.2, 100.64.5.2 .. 100.64.30.2, 100.64.99.2)
#    | veth
#   gw (forward chain: mark = a map of the source, log "egw:d:m:default",
#    | veth  drop; the map is static, so a mark outlives its policy row, as
#   srv      it does until the applier has removed the policy's elements)
#
# Policies are written straight into SQLite, each change bumping
# desired_generation as the API's writes do; no applier runs.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init flowlog_attrib
need_root
need_cmd nft ip python3 sqlite3
PY=$(python3 -c 'import sys; print(sys.executable)')

GROUP=$(( 100 + $$ % 900 ))
egw_env
# The map's reloads are logged at debug level; the last part counts them.
export EGW_DB_PATH="$T/state/egw.db" EGW_NFLOG_GROUP=$GROUP EGW_LOG_LEVEL=debug
DB=$EGW_DB_PATH
"$(egw_bin egw-admin)" migrate > "$T/admin.log" 2>&1 ||
	{ echo "Bail out! migrate"; exit 99; }
q() { sqlite3 -batch -noheader -cmd '.timeout 5000' "$DB" "$1"; }
# policy_sql ID: create policy ID (scenario scen-ID) and bump the generation
policy_sql() {
	echo "BEGIN IMMEDIATE;
	INSERT INTO policies (id, scenario_id, network_id, profile, generation,
		created_at, updated_at)
	VALUES ($1, 'scen-$1', 'net-$1', 'none', 1, 'x', 'x');
	UPDATE applier_state SET desired_generation = desired_generation + 1;
	COMMIT;"
}
delete_sql() {
	echo "BEGIN IMMEDIATE; DELETE FROM policies WHERE id = $1;
	UPDATE applier_state SET desired_generation = desired_generation + 1;
	COMMIT;"
}
q "$(policy_sql 1)$(policy_sql 2)" || { echo "Bail out! policies"; exit 99; }

CL=$(make_netns cl)
GW=$(make_netns gw)
SRV=$(make_netns srv)
ip link add c0 netns "$CL" type veth peer name g1 netns "$GW" || exit 99
ip link add s0 netns "$SRV" type veth peer name g3 netns "$GW" || exit 99
for l in "$CL c0" "$GW g1" "$GW g3" "$SRV s0"; do
	set -- $l
	ip -n "$1" link set "$2" up
done
HOSTS="1 2 $(seq 5 30) 99"
MAPELEMS=
for i in $HOSTS; do
	ip -n "$CL" addr add "100.64.$i.2/16" dev c0
	MAPELEMS="$MAPELEMS${MAPELEMS:+, }100.64.$i.2 : $i"
done
ip -n "$CL" route add default via 100.64.0.1
ip -n "$GW" addr add 100.64.0.1/16 dev g1
ip -n "$GW" addr add 203.0.113.1/24 dev g3
ip netns exec "$GW" sysctl -qw net.ipv4.ip_forward=1
ip -n "$SRV" addr add 203.0.113.10/24 dev s0
ip netns exec "$GW" nft -f - <<EOF || { echo "Bail out! ruleset"; exit 99; }
table inet forge_egress {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		meta mark set ip saddr map { $MAPELEMS }
		ip saddr 100.64.0.0/16 log prefix "egw:d:m:default" group $GROUP
		ip saddr 100.64.0.0/16 drop
	}
}
EOF
# Resolve the gateway's neighbour entry first: a datagram held back by
# ARP would reach NFLOG late and blur the timings below.
ip netns exec "$CL" ping -c1 -W1 100.64.0.1 > /dev/null 2>&1

# send HOST SPORT: one UDP datagram from 100.64.HOST.2 (logged and dropped)
send() {
	ip netns exec "$CL" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("100.64.%s.2" % sys.argv[1], int(sys.argv[2])))
s.sendto(b"x", ("203.0.113.10", 53))' "$1" "$2"
}
rows_where() { q "SELECT count(*) FROM egress_log WHERE $1"; }
rows_ge() { [ "$(rows_where "$1")" -ge "$2" ]; }
wait_rows() { wait_for 5 rows_ge "$1" "$2"; }
scenario_of() {
	q "SELECT ifnull(scenario_id, 'NULL') FROM egress_log WHERE $1"
}
reloads() { grep -c '"msg":"policy map' "$T/flowlog.log"; }

ip netns exec "$GW" "$(egw_bin egw-flowlog)" >> "$T/flowlog.log" 2>&1 &
FLOWLOG_PID=$!
track_pid "$FLOWLOG_PID"
flowlog_reported() {
	[ "$(q "SELECT pid FROM component_status
		WHERE component = 'flowlog'")" = "$FLOWLOG_PID" ]
}
wait_for 10 flowlog_reported ||
	{ echo "Bail out! egw-flowlog did not start"; exit 99; }

# ---- 1. policies created back to back ----
# Ten rounds of two scenarios started 30 ms apart, each sending its first
# packet 5 ms after its policy committed: the second one's miss comes
# within 100 ms of the reload the first one's caused.
ip netns exec "$CL" "$PY" - "$DB" <<'PY'
import socket, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
def create(i):
	db.execute("BEGIN IMMEDIATE")
	db.execute("INSERT INTO policies (id, scenario_id, network_id, profile,"
		" generation, created_at, updated_at)"
		" VALUES (?, ?, ?, 'none', 1, 'x', 'x')",
		(i, "scen-%d" % i, "net-%d" % i))
	db.execute("UPDATE applier_state"
		" SET desired_generation = desired_generation + 1")
	db.execute("COMMIT")
def send(i):
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind(("100.64.%d.2" % i, 50000 + i))
	s.sendto(b"x", ("203.0.113.10", 53))
	s.close()
for r in range(10):
	a, b = 5 + 2 * r, 6 + 2 * r
	create(a); time.sleep(0.005); send(a)
	time.sleep(0.03)
	create(b); time.sleep(0.005); send(b)
	time.sleep(0.4)
PY
FIRST="src_port BETWEEN 50005 AND 50024"
wait_rows "$FIRST" 20
ok "the 20 first packets were logged" test "$(rows_where "$FIRST")" -eq 20
nulls=$(rows_where "$FIRST AND scenario_id IS NULL")
ok "each names its new scenario ($nulls of 20 without one)" test "$nulls" -eq 0
ok "... and the right one" test "$(rows_where "$FIRST AND
	scenario_id = 'scen-' || (src_port - 50000) AND
	network_id = 'net-' || (src_port - 50000)")" -eq 20
late=$(rows_where "$FIRST AND src_port % 2 = 0 AND scenario_id IS NULL")
d="including the second of each pair, 35 ms after the first"
ok "$d ($late of 10 without)" test "$late" -eq 0

# ---- 2. a policy deleted while its packets wait or still carry its mark ----
# Queued: the writer is stopped while the packet is logged and the policy
# deleted; when it resumes, its periodic check reloads the map first.
kill -STOP "$FLOWLOG_PID"
send 1 51001
sleep 0.2
q "$(delete_sql 1)"
kill -CONT "$FLOWLOG_PID"
wait_rows "src_port = 51001" 1
got=$(scenario_of "src_port = 51001")
ok "a packet logged before its policy's delete keeps the scenario ($got)" \
	test "$got" = scen-1
# Logged after the delete, with the mark the applier has not yet removed:
# the map has certainly been reloaded without policy 2 first (a periodic
# check every 200 ms, and the miss's own reload).
q "$(delete_sql 2)"
sleep 0.5
send 2 51002
wait_rows "src_port = 51002" 1
got=$(scenario_of "src_port = 51002")
ok "a packet logged with a deleted policy's mark keeps the scenario ($got)" \
	test "$got" = scen-2

# ---- 3. a mark with no policy, while other connections commit ----
# Another process commits every 20 ms (as egw-natsd's deliveries do) but
# moves no generation; mark 99 has no policy.  Its packets must not reload
# the map at all: the generation says nothing could have added it.
"$PY" - "$DB" "$T/commits" <<'PY' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
db.execute("CREATE TABLE IF NOT EXISTS e2e_busy (n INTEGER)")
open(sys.argv[2], "w").close()
while os.path.exists(sys.argv[2]):
	db.execute("INSERT INTO e2e_busy VALUES (1)")
	time.sleep(0.02)
PY
COMMITTER=$!
track_pid "$COMMITTER"
wait_for 5 test -e "$T/commits"
sleep 0.5	# past any reload the deletes above still cause
before=$(reloads)
for i in $(seq 1 20); do
	send 99 $((52000 + i))
	sleep 0.06
done
wait_rows "src_port BETWEEN 52001 AND 52020" 20
stray=$(( $(reloads) - before ))
diag "20 packets of mark 99 over 1.2 s: $stray reloads of the map"
ok "20 packets of a mark without a policy: no reload ($stray)" \
	test "$stray" -eq 0
ok "... and no scenario" test "$(rows_where "src_port BETWEEN 52001 AND 52020
	AND scenario_id IS NOT NULL")" -eq 0
# Once a policy takes that id, the generation moves and the next miss
# reloads at once.
q "$(policy_sql 99)"
send 99 52100
wait_rows "src_port = 52100" 1
got=$(scenario_of "src_port = 52100")
ok "a new policy for a mark that missed before names its next packet ($got)" \
	test "$got" = scen-99
rm -f "$T/commits"
wait "$COMMITTER"

kill -TERM "$FLOWLOG_PID"
wait "$FLOWLOG_PID"
ok "egw-flowlog stops cleanly" test $? -eq 0
e2e_done
