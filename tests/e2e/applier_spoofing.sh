#!/bin/bash
# SPDX-License-Identifier: MIT
# Sources bound to interfaces, with real traffic.  A policy that names
# both its sources and its interfaces owns those sources only where they
# come in: a workload on another scenario's interface that sends with the
# first scenario's source address is dropped (reason "spoofed"), in audit
# mode too, over IPv4 and IPv6, while the owner's own traffic and the
# other scenario's traffic go on as their policies say.  A policy that
# names sources only is bound by the gateway's routing table instead (a
# strict reverse-path check in the ruleset): its sources count only on the
# interface the gateway routes them to; naming the interfaces overrides
# that where routing is asymmetric on purpose.
#
# The gateway namespace's reverse-path filter is off, so the ruleset is
# what stops the packets; a counter where they enter the gateway shows
# that a packet said to be stopped got there.  Whether a packet got out is
# counted where it arrives: a counter in the "out" namespace (this test's
# own), since the replies to a spoofed source go to its real owner.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_netns.sh"
e2e_init applier_spoofing
need_cmd sqlite3
netns_topology

# A second scenario network: scen2 --- s1 | g2 (gateway), 100.64.2.0/24.
NS_SCEN2=$(make_netns scen2)
ip link add s1 netns "$NS_SCEN2" type veth peer name g2 netns "$NS_GW" || exit 99
ip -n "$NS_SCEN2" addr add 100.64.2.2/24 dev s1
ip -n "$NS_SCEN2" addr add 2001:db8:64:2::2/64 dev s1 nodad
# the first scenario's addresses, on the wrong network
ip -n "$NS_SCEN2" addr add 100.64.1.2/32 dev s1
ip -n "$NS_SCEN2" addr add 2001:db8:64:1::2/128 dev s1 nodad
ip -n "$NS_SCEN2" link set s1 up
ip -n "$NS_SCEN2" route add default via 100.64.2.1
ip -n "$NS_SCEN2" -6 route add default via 2001:db8:64:2::1
ip -n "$NS_GW" addr add 100.64.2.1/24 dev g2
ip -n "$NS_GW" addr add 2001:db8:64:2::1/64 dev g2 nodad
ip -n "$NS_GW" link set g2 up
for k in all default g0 g2; do
	ip netns exec "$NS_GW" sysctl -qw "net.ipv4.conf.$k.rp_filter=0"
done
# The gateway's link-layer address is known in advance: a neighbour
# solicitation from a forged IPv6 source would be answered towards the
# real owner (or dropped as spoofed itself), and the spoofed packet would
# then never leave scen2, which would make any check of it pass.
g2_mac=$(ip -n "$NS_GW" -o link show g2 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
ip -n "$NS_SCEN2" -6 neigh replace 2001:db8:64:2::1 lladdr "$g2_mac" dev s1 nud permanent || exit 99

# Counters of what arrives in "out" from the first scenario's addresses.
ip netns exec "$NS_OUT" nft -f - <<'NFT' || exit 99
table inet probe {
	counter a4tcp { }
	counter a4udp { }
	counter a6tcp { }
	counter a4int { }
	counter a7tcp { }
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr 100.64.1.2 tcp dport 443 tcp flags syn counter name a4tcp
		ip saddr 100.64.1.2 udp dport 123 counter name a4udp
		ip6 saddr 2001:db8:64:1::2 tcp dport 443 tcp flags syn counter name a6tcp
		ip saddr 100.64.1.2 ip daddr 10.9.0.10 tcp dport 80 tcp flags syn counter name a4int
		ip saddr 100.64.7.5 tcp dport 443 tcp flags syn counter name a7tcp
	}
}
NFT
arrived() { ip netns exec "$NS_OUT" nft list counter inet probe "$1" | awk '/packets/ { print $2 }'; }
# The same packets counted where they enter the gateway (before any
# table of the product's): a packet that "did not get out" reached the
# gateway, so the ruleset stopped it, not the sender or the veth.
ip netns exec "$NS_GW" nft -f - <<'NFT' || exit 99
table inet probe {
	counter g4tcp { }
	counter g4udp { }
	counter g6tcp { }
	counter g4int { }
	counter g7tcp { }
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		ip saddr 100.64.1.2 ip daddr 203.0.113.10 tcp dport 443 tcp flags syn counter name g4tcp
		ip saddr 100.64.1.2 ip daddr 203.0.113.10 udp dport 123 counter name g4udp
		ip6 saddr 2001:db8:64:1::2 tcp dport 443 tcp flags syn counter name g6tcp
		ip saddr 100.64.1.2 ip daddr 10.9.0.10 tcp dport 80 tcp flags syn counter name g4int
		ip saddr 100.64.7.5 tcp dport 443 tcp flags syn counter name g7tcp
	}
}
NFT
entered() { ip netns exec "$NS_GW" nft list counter inet probe "$1" | awk '/packets/ { print $2 }'; }
# spoof PROTO SRC DST PORT: send from scen2 with the first scenario's source;
# the answer goes to the real owner, so the probe itself always fails
spoof() { ip netns exec "$NS_SCEN2" /usr/bin/python3 "$T/probe.py" "$@"; true; }
in_scen2() { ip netns exec "$NS_SCEN2" /usr/bin/python3 "$T/probe.py" "$@"; }
# got_out COUNTER CMD...: CMD made COUNTER grow
got_out() {
	local c=$1 before
	shift
	before=$(arrived "$c")
	"$@"
	sleep 0.2
	[ "$(arrived "$c")" -gt "$before" ]
}
# stopped COUNTER CMD...: what CMD sent entered the gateway (its "g"
# counter grew) and did not get out (COUNTER did not)
stopped() {
	local c=$1 g=g${1#a} before
	before=$(entered "$g")
	! got_out "$@" && [ "$(entered "$g")" -gt "$before" ]
}

applier_env
export EGW_DB_PATH="$EGW_STATE_DIR/egw.db"
start_applier
A=100.64.1.2 A6=2001:db8:64:1::2
# egw-flowlog records every decision: who a spoofed packet is logged as
ip netns exec "$NS_GW" "$(egw_bin egw-flowlog)" >> "$T/flowlog.log" 2>&1 &
FLOWLOG_PID=$!
track_pid "$FLOWLOG_PID"
flowlog_reported() {
	[ "$(db "SELECT pid FROM component_status WHERE component = 'flowlog'")" = "$FLOWLOG_PID" ]
}
wait_for 10 flowlog_reported || { echo "Bail out! egw-flowlog did not start"; exit 99; }
# logged WHERE: an egress_log row matching it appears within 5 s
logged() { wait_for 5 sh -c "[ \"\$(sqlite3 '$EGW_STATE_DIR/egw.db' \"SELECT count(*) FROM egress_log WHERE $1\")\" -ge 1 ]"; }

bound='{"scenario_id":"sa","profile":"custom","sources":["100.64.1.2/32","2001:db8:64:1::2/128"],"interfaces":["g0"],"allowed_hosts":["203.0.113.10","2001:db8:113::10"]}'
policy put "$bound"
policy put '{"scenario_id":"sb","profile":"custom","interfaces":["g2"],"allowed_hosts":["203.0.113.10"],"allowed_ports":[80]}'
ok "both policies applied" applied
ok "the bound policy is in the kernel's bound sets" sh -c \
	"ip netns exec $NS_GW nft list set inet forge_egress boundif | grep -q '\"g0\"'"

ok "the owner's own traffic gets out (tcp 443)" got_out a4tcp tcp_ok $A 203.0.113.10 443
ok "the owner's own traffic gets out (udp 123)" got_out a4udp udp_ok $A 203.0.113.10 123
ok "the owner's own traffic gets out (IPv6 tcp 443)" got_out a6tcp tcp_ok $A6 2001:db8:113::10 443
ok "a spoofed source on another interface is dropped (tcp 443)" stopped a4tcp spoof tcp $A 203.0.113.10 443
ok "... (udp 123)" stopped a4udp spoof udp $A 203.0.113.10 123
ok "... (IPv6 tcp 443)" stopped a6tcp spoof tcp $A6 2001:db8:113::10 443
# cnt_deny "0x0000002a counter packets 3 bytes 180" -> packets of mark M
denied_of() {
	in_gw nft list set inet forge_egress cnt_deny | tr '{},' '\n\n\n' |
		awk -v m="$(printf '0x%08x' "$1")" '$1 == m { print $4 }'
}
SA=$(db "SELECT id FROM policies WHERE scenario_id = 'sa'")
SB=$(db "SELECT id FROM policies WHERE scenario_id = 'sb'")
denied_ge() { v=$(denied_of "$1"); [ -n "$v" ] && [ "$v" -ge "$2" ]; }
ok "... counted as the sender's deny (the scenario whose interface it came in on)" denied_ge "$SB" 3
ok "... and logged as the sender's, reason spoofed" logged \
	"scenario_id = 'sb' AND action = 'deny' AND reason = 'spoofed' AND src_ip = '$A'"
ok "... never as the impersonated scenario's" test \
	"$(db "SELECT count(*) FROM egress_log WHERE scenario_id = 'sa' AND reason = 'spoofed'")" = 0
ok "... the impersonated scenario's deny counter is untouched" test -z "$(denied_of "$SA")"
ok "the other scenario's own traffic goes by its policy (80 allowed)" in_scen2 tcp 100.64.2.2 203.0.113.10 80
ok "... (443 refused)" sh -c "! ip netns exec $NS_SCEN2 /usr/bin/python3 $T/probe.py tcp 100.64.2.2 203.0.113.10 443"

# From an interface that is no scenario's: counted under mark 0.
policy delete sb
ok "the sender's policy deleted" applied
zero_before=$(denied_of 0)
ok "from an interface of no scenario: dropped" stopped a4tcp spoof tcp $A 203.0.113.10 443
ok "... counted under mark 0" denied_ge 0 $((${zero_before:-0} + 1))
ok "... and logged with no scenario, reason spoofed" logged \
	"scenario_id IS NULL AND action = 'deny' AND reason = 'spoofed' AND src_ip = '$A'"
ok "... still not as the impersonated one's" test -z "$(denied_of "$SA")"
policy put '{"scenario_id":"sb","profile":"custom","interfaces":["g2"],"allowed_hosts":["203.0.113.10"],"allowed_ports":[80]}'
ok "the sender's policy back" applied

# Audit mode lets the policy's own denials through, not spoofed packets.
policy put "${bound%\}}"',"mode":"audit"}'
ok "audit mode applied" applied
ok "audit mode: the owner's traffic beyond the allowlist gets through (8080 elsewhere)" tcp_ok $A 198.51.100.20 8080
ok "audit mode: a spoofed source is still dropped" stopped a4tcp spoof tcp $A 203.0.113.10 443

# Disabled (baseline) and still bound: the baseline lets internal
# destinations through, so 10.9.0.10 shows which decision was taken.
policy disable sa
ok "disable applied" applied
ok "disabled: the owner reaches the baseline's internal network" got_out a4int tcp_ok $A 10.9.0.10 80
ok "disabled: a spoofed source does not" stopped a4int spoof tcp $A 10.9.0.10 80
policy enable sa
ok "enable applied" applied

# No drift: what libnftnl wrote reads back as what was rendered.
mark=$(wc -l < "$T/applier.log")
sleep 5	# two full reconciles (EGW_RECONCILE_INTERVAL=2)
ok "full reconciles ran" sh -c "tail -n +$((mark + 1)) '$T/applier.log' | grep -q '\"msg\":\"reconciled'"
ok "... and found no drift" sh -c "! tail -n +$((mark + 1)) '$T/applier.log' | grep -q '\"drift\"'"

# Sources only: no interface of its own, so the gateway's routing table
# binds them (a strict reverse-path check in the ruleset, with the
# namespace's rp_filter off): the gateway routes 100.64.1.2 to g0, so the
# same address coming in on g2 is spoofed, while the owner on g0 gets out.
unbound='{"scenario_id":"sa","profile":"custom","sources":["100.64.1.2/32","2001:db8:64:1::2/128"],"allowed_hosts":["203.0.113.10","2001:db8:113::10"]}'
policy put "$unbound"
ok "sources-only policy applied" applied
ok "its bound elements are gone" sh -c \
	"ip netns exec $NS_GW nft list set inet forge_egress boundif > '$T/boundif' &&
	 ! grep -q '\"g0\"' '$T/boundif'"
ok "sources only: the owner's own traffic gets out (tcp 443)" got_out a4tcp tcp_ok $A 203.0.113.10 443
ok "... (udp 123)" got_out a4udp udp_ok $A 203.0.113.10 123
ok "... (IPv6 tcp 443)" got_out a6tcp tcp_ok $A6 2001:db8:113::10 443
SB=$(db "SELECT id FROM policies WHERE scenario_id = 'sb'")	# put again above
sb_denied=$(denied_of "$SB") sa_denied=$(denied_of "$SA")
last_log=$(db "SELECT coalesce(max(id), 0) FROM egress_log")
ok "sources only: a spoofed source on another interface is dropped (tcp 443)" stopped a4tcp spoof tcp $A 203.0.113.10 443
ok "... (udp 123)" stopped a4udp spoof udp $A 203.0.113.10 123
ok "... (IPv6 tcp 443)" stopped a6tcp spoof tcp $A6 2001:db8:113::10 443
ok "... counted as the sender's deny" denied_ge "$SB" $((${sb_denied:-0} + 3))
ok "... and logged as the sender's, reason spoofed" logged \
	"id > $last_log AND scenario_id = 'sb' AND action = 'deny' AND reason = 'spoofed' AND src_ip = '$A'"
ok "... the IPv6 one too" logged \
	"id > $last_log AND scenario_id = 'sb' AND action = 'deny' AND reason = 'spoofed' AND src_ip = '$A6'"
ok "... the impersonated scenario's deny counter is untouched" test "$(denied_of "$SA")" = "$sa_denied"
ok "... and nothing of it logged as the impersonated scenario's" test \
	"$(db "SELECT count(*) FROM egress_log WHERE id > $last_log AND scenario_id = 'sa'")" = 0
policy put "${unbound%\}}"',"mode":"audit"}'
ok "sources only, audit mode applied" applied
ok "sources only, audit mode: a spoofed source is still dropped" stopped a4tcp spoof tcp $A 203.0.113.10 443
ok "sources only, audit mode: the owner gets out" got_out a4tcp tcp_ok $A 203.0.113.10 443

# Asymmetric routing on purpose: the gateway routes 100.64.7.0/24 to g2,
# while the scenario's workload sends from 100.64.7.5 on g0.  By sources
# alone the reverse-path check drops it; naming g0 binds by the interface
# instead of the routing table, and it gets out.
ip -n "$NS_GW" route add 100.64.7.0/24 dev g2
ip -n "$NS_SCEN" addr add 100.64.7.5/32 dev s0
# the answer goes to g2, so the probe itself always fails: count arrivals
from_scen() { in_scen /usr/bin/python3 "$T/probe.py" "$@"; true; }
policy put '{"scenario_id":"sc","profile":"custom","sources":["100.64.7.0/24"],"allowed_hosts":["203.0.113.10"]}'
ok "asymmetric: sources-only policy applied" applied
last_log=$(db "SELECT coalesce(max(id), 0) FROM egress_log")
ok "asymmetric, sources only: dropped by the reverse-path check" stopped a7tcp from_scen tcp 100.64.7.5 203.0.113.10 443
ok "... logged with reason spoofed, as no scenario's (g0 names none)" logged \
	"id > $last_log AND scenario_id IS NULL AND reason = 'spoofed' AND src_ip = '100.64.7.5'"
policy put '{"scenario_id":"sc","profile":"custom","sources":["100.64.7.0/24"],"interfaces":["g0"],"allowed_hosts":["203.0.113.10"]}'
ok "asymmetric: the same with its interface named applied" applied
ok "asymmetric, interface named: gets out" got_out a7tcp from_scen tcp 100.64.7.5 203.0.113.10 443
policy delete sc
ok "asymmetric: policy deleted" applied
ip -n "$NS_GW" route del 100.64.7.0/24 dev g2

# Bound again: the elements come back.
policy put "$bound"
ok "bound again" applied
ok "bound again: the spoofed packet is dropped" stopped a4tcp spoof tcp $A 203.0.113.10 443
ok "bound again: the owner gets out" got_out a4tcp tcp_ok $A 203.0.113.10 443

# A bound prefix (the interval map src4, not the host map) that holds the
# gateway's own address, with the gateway as the resolver: the gateway's
# own traffic to itself (loopback, sent from that address) is not spoofed,
# a workload elsewhere sending to the gateway (the input hook) with the
# prefix's addresses is.
cat > "$T/dns.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("100.64.1.1", 53))
print("ready", flush=True)
while True:
    d, a = s.recvfrom(512)
    print(a[0], d.decode(errors="replace"), flush=True)
    s.sendto(b"ok " + d, a)
PY
ip netns exec "$NS_GW" /usr/bin/python3 -u "$T/dns.py" > "$T/dns.log" 2>&1 &
track_pid $!
wait_for 10 grep -q ready "$T/dns.log" || { echo "Bail out! gateway DNS stand-in did not start"; exit 99; }
# send NS SRC TEXT: one datagram from SRC to the gateway's port 53
send() {
	ip netns exec "$1" /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0)); s.sendto(sys.argv[2].encode(), ("100.64.1.1", 53))' "$2" "$3"
}
heard() { sleep 0.3; grep -q " $1\$" "$T/dns.log"; }
policy put '{"scenario_id":"sa","profile":"custom","sources":["100.64.1.0/24"],"interfaces":["g0"],"dns_servers":["100.64.1.1"],"allowed_hosts":["203.0.113.10"]}'
ok "bound prefix policy applied" applied
ok "bound prefix: the owner gets out" got_out a4tcp tcp_ok $A 203.0.113.10 443
ok "bound prefix: a spoofed source is dropped" stopped a4tcp spoof tcp $A 203.0.113.10 443
send "$NS_SCEN" $A owner-1
ok "bound prefix: the owner reaches the gateway's resolver" heard owner-1
send "$NS_SCEN2" $A spoof-1
ok "bound prefix: a spoofed source to the gateway itself is dropped" sh -c "sleep 0.3; ! grep -q ' spoof-1\$' '$T/dns.log'"
send "$NS_GW" 100.64.1.1 self-1
ok "the gateway's own traffic to itself (loopback, from a bound address) is not spoofed" heard self-1
# The same prefix named without interfaces: the reverse-path check guards
# the gateway itself too (the input hook, bound_input).
policy put '{"scenario_id":"sa","profile":"custom","sources":["100.64.1.0/24"],"dns_servers":["100.64.1.1"],"allowed_hosts":["203.0.113.10"]}'
ok "sources-only prefix policy applied" applied
send "$NS_SCEN" $A owner-2
ok "sources-only prefix: the owner reaches the gateway's resolver" heard owner-2
last_log=$(db "SELECT coalesce(max(id), 0) FROM egress_log")
send "$NS_SCEN2" $A spoof-2
ok "sources-only prefix: a spoofed source to the gateway itself is dropped" sh -c "sleep 0.3; ! grep -q ' spoof-2\$' '$T/dns.log'"
ok "... logged with reason spoofed" logged \
	"id > $last_log AND reason = 'spoofed' AND src_ip = '$A' AND dst_port = 53"
send "$NS_GW" 100.64.1.1 self-2
ok "sources-only prefix: the gateway's own traffic to itself is not spoofed" heard self-2

kill -TERM "$FLOWLOG_PID" 2>/dev/null
wait "$FLOWLOG_PID" 2>/dev/null
stop_applier
e2e_done
