# SPDX-License-Identifier: MIT
# Three-namespace topology for the applier's packet tests.  Source after
# lib.sh and call netns_topology once:
#
#   scen (scenario host)        gw (gateway, forwarding, egw-applier)        out
#   100.64.1.2/.3/.4 ------ 100.64.1.1  [s0|g0]   [g1|o0]  203.0.113.1 ----- 203.0.113.10
#   2001:db8:64:1::2/3                                       198.51.100.1 ---- 198.51.100.20 (resolver)
#                                                            10.9.0.1 -------- 10.9.0.10 (internal)
#                                                            169.254.169.254 (metadata, via o0)
#                                                            2001:db8:113::1 - 2001:db8:113::10
#
# "out" runs one python3 listener process: TCP on 22 80 443 8080 53 and UDP
# echo on 53 123 5353 at every address; a TCP client reads "ok".
# Helpers: in_scen CMD, in_gw CMD, tcp_ok SRC DST PORT, udp_ok SRC DST PORT.

NS_SCEN= NS_GW= NS_OUT=

netns_topology() {
	need_root
	need_cmd ip nft /usr/bin/python3
	NS_SCEN=$(make_netns scen)
	NS_GW=$(make_netns gw)
	NS_OUT=$(make_netns out)
	ip link add s0 netns "$NS_SCEN" type veth peer name g0 netns "$NS_GW" || exit 99
	ip link add g1 netns "$NS_GW" type veth peer name o0 netns "$NS_OUT" || exit 99
	ip -n "$NS_SCEN" addr add 100.64.1.2/24 dev s0
	ip -n "$NS_SCEN" addr add 100.64.1.3/24 dev s0
	ip -n "$NS_SCEN" addr add 100.64.1.4/24 dev s0
	ip -n "$NS_SCEN" addr add 2001:db8:64:1::2/64 dev s0 nodad
	ip -n "$NS_SCEN" addr add 2001:db8:64:1::3/64 dev s0 nodad
	ip -n "$NS_SCEN" link set s0 up
	ip -n "$NS_SCEN" route add default via 100.64.1.1
	ip -n "$NS_SCEN" -6 route add default via 2001:db8:64:1::1
	ip -n "$NS_GW" addr add 100.64.1.1/24 dev g0
	ip -n "$NS_GW" addr add 2001:db8:64:1::1/64 dev g0 nodad
	ip -n "$NS_GW" addr add 203.0.113.1/24 dev g1
	ip -n "$NS_GW" addr add 198.51.100.1/24 dev g1
	ip -n "$NS_GW" addr add 10.9.0.1/24 dev g1
	ip -n "$NS_GW" addr add 2001:db8:113::1/64 dev g1 nodad
	ip -n "$NS_GW" link set g0 up
	ip -n "$NS_GW" link set g1 up
	ip -n "$NS_GW" route add 169.254.169.254/32 dev g1
	ip netns exec "$NS_GW" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$NS_GW" sysctl -qw net.ipv6.conf.all.forwarding=1
	for a in 203.0.113.10/24 198.51.100.20/24 10.9.0.10/24 169.254.169.254/16; do
		ip -n "$NS_OUT" addr add "$a" dev o0
	done
	ip -n "$NS_OUT" addr add 2001:db8:113::10/64 dev o0 nodad
	ip -n "$NS_OUT" link set o0 up
	ip -n "$NS_OUT" route add default via 203.0.113.1
	ip -n "$NS_OUT" -6 route add default via 2001:db8:113::1
	cat > "$T/listen.py" <<'PY'
import selectors, socket, sys
sel = selectors.DefaultSelector()
for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    for port in (22, 80, 443, 8080, 53):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port)); s.listen(512); s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, "tcp")
    for port in (53, 123, 5353):
        u = socket.socket(fam, socket.SOCK_DGRAM)
        if fam == socket.AF_INET6:
            u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        u.bind((host, port)); u.setblocking(False)
        sel.register(u, selectors.EVENT_READ, "udp")
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        try:
            if key.data == "tcp":
                c, _ = s.accept(); c.sendall(b"ok\n"); c.close()
            else:
                d, a = s.recvfrom(2048); s.sendto(b"ok " + d, a)
        except OSError:
            pass
PY
	ip netns exec "$NS_OUT" /usr/bin/python3 -u "$T/listen.py" > "$T/listen.log" 2>&1 &
	track_pid $!
	wait_for 10 grep -q ready "$T/listen.log" ||
		{ echo "Bail out! listener did not start"; exit 99; }
	# IPv6 end to end (neighbours on both links resolved) before a test
	# counts on it: on a fast VM a first IPv6 probe, 1 s to connect, once
	# found the fresh links not ready yet (applier_spoofing.sh).  ICMPv6,
	# before any table is loaded: no probe counter sees it.
	wait_for 10 ip netns exec "$NS_SCEN" ping -6 -c 1 -W 1 \
	    -I 2001:db8:64:1::2 2001:db8:113::10 ||
		{ echo "Bail out! no IPv6 path through the gateway"; exit 99; }
	cat > "$T/probe.py" <<'PY'
import socket, sys
proto, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
try:
    if proto == "tcp":
        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(1.0)
        s.bind((src, 0)); s.connect((dst, port)); ok = s.recv(16).startswith(b"ok")
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(1.0)
        s.bind((src, 0)); s.sendto(b"ping", (dst, port)); ok = s.recv(64).startswith(b"ok")
except OSError:
    ok = False
sys.exit(0 if ok else 1)
PY
}

in_scen() { ip netns exec "$NS_SCEN" "$@"; }
in_gw() { ip netns exec "$NS_GW" "$@"; }

tcp_ok() { in_scen /usr/bin/python3 "$T/probe.py" tcp "$1" "$2" "$3"; }
udp_ok() { in_scen /usr/bin/python3 "$T/probe.py" udp "$1" "$2" "$3"; }
tcp_refused() { ! tcp_ok "$@"; }
udp_refused() { ! udp_ok "$@"; }

# Environment and start/stop of egw-applier inside the gateway namespace.
applier_env() {
	egw_env
	export DRY_RUN=false EGW_NFLOG_GROUP=7 EGW_RECONCILE_INTERVAL="${EGW_RECONCILE_INTERVAL:-2}"
	export EGW_DNS_SERVERS="${EGW_DNS_SERVERS:-198.51.100.20}"
	export EGW_MANAGED_SOURCES="${EGW_MANAGED_SOURCES:-100.64.0.0/10,2001:db8:64::/48}"
}

# start_reconciles: lines in applier.log that end a start-up reconcile,
# applied or failed
start_reconciles() {
	local n
	n=$(grep -c -e '"trigger":"start"' -e 'reconcile (start) failed' "$T/applier.log" 2>/dev/null)
	echo "${n:-0}"
}
start_reconciled_since() { [ "$(start_reconciles)" -gt "$1" ]; }

# Returns once the applier has finished its start-up reconcile: the
# socket exists before it (nudges sent meanwhile queue), so the socket
# alone does not mean the table is in the kernel yet, and a test that
# checks a refusal right away would pass through a gateway without
# rules (seen under the ASan build).
start_applier() {
	local before
	before=$(start_reconciles)
	# ip netns exec (and env) exec the program, so $! is the applier's own
	# PID; $APPLIER_PRELOAD, when set, is its LD_PRELOAD (fault injection)
	ip netns exec "$NS_GW" env ${APPLIER_PRELOAD:+LD_PRELOAD="$APPLIER_PRELOAD"} \
		"$(egw_bin egw-applier)" >> "$T/applier.log" 2>&1 &
	APPLIER_PID=$!
	track_pid "$APPLIER_PID"
	wait_for 10 test -S "$EGW_RUN_DIR/applier.sock" ||
		{ echo "Bail out! applier did not start"; exit 99; }
	wait_for 20 start_reconciled_since "$before" ||
		{ echo "Bail out! applier did not finish its start-up reconcile"; exit 99; }
}

stop_applier() {
	kill -TERM "$APPLIER_PID" 2>/dev/null
	wait "$APPLIER_PID" 2>/dev/null
}

policy() { "$(egw_bin tests/e2e/egw-policy)" "$@" >/dev/null; }

# Wait until the applier has applied the database's desired generation.
gen_applied() {
	[ "$(db 'SELECT desired_generation = applied_generation FROM applier_state')" = 1 ]
}
applied() { wait_for 10 gen_applied; }

db() { sqlite3 -cmd '.timeout 5000' "$EGW_STATE_DIR/egw.db" "$@"; }
# db_is SQL VALUE: the query's single value equals VALUE
db_is() { [ "$(db "$1")" = "$2" ]; }
# db_ge SQL N: the query's single value is a number >= N
db_ge() { v=$(db "$1"); [ -n "$v" ] && [ "$v" -ge "$2" ]; }
