#!/bin/bash
# SPDX-License-Identifier: MIT
# Every program refuses a bad environment value with one line naming the
# variable and a non-zero exit, and creates nothing on disk; `-n` accepts a
# good configuration.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init config_errors

progs=""
for p in egw-admin egw-supervisor egw-api egw-applier egw-natsd egw-flowlog; do
	[ -x "$EGW_TOP_BUILDDIR/$p" ] && progs="$progs $p"
done
diag "programs: $progs"

export EGW_STATE_DIR="$T/state" EGW_RUN_DIR="$T/run"
# /aaa... of $1 bytes.  A unix socket's path holds 107 bytes (sun_path
# with its NUL); egw-api-writer.sock under EGW_RUN_DIR takes 20 of them.
long_path() { printf '/%*s' "$(($1 - 1))" '' | tr ' ' a; }
long_sock=$(long_path 150)
long_run=$(long_path 91)
for p in $progs; do
	bin="$EGW_TOP_BUILDDIR/$p"
	arg=-n
	[ "$p" = egw-admin ] && arg=check-config
	for bad in "EGW_WORKERS=0" "DRY_RUN=perhaps" "NATS_URL=http://x" "EGW_DNS_SERVERS=resolver.example" \
	    "EGW_STATE_DIR=relative" "EGW_NFLOG_GROUP=70000" \
	    "EGW_FCGI_SOCKET=$long_sock" "EGW_APPLIER_SOCKET=$long_sock" \
	    "EGW_RUN_DIR=$long_run" "NATS_URL=," "NATS_URL=nats://h:99999"; do
		var=${bad%%=*}
		label=$bad
		[ ${#bad} -gt 60 ] &&
			label="$var=(a path of $((${#bad} - ${#var} - 1)) bytes)"
		out=$(env "$bad" "$bin" $arg 2>&1 >/dev/null)
		rc=$?
		lines=$(printf '%s\n' "$out" | grep -c .)
		ok "$p: $label -> exit 2" test "$rc" -eq 2
		ok "$p: $label -> one line naming $var" \
			bash -c '[ "$1" -eq 1 ] && printf "%s" "$2" | grep -q "$3:"' _ "$lines" "$out" "$var"
	done
	ok "$p: -n accepts the defaults" "$bin" $arg
	ok "$p: nothing created on disk" test ! -e "$T/state" -a ! -e "$T/run"
done

# nginx runs as EGW_USER without capabilities: a port below the network
# namespace's ip_unprivileged_port_start could never be bound.
start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null ||
	echo 1024)
check_listen() {	# check_listen USER PORT: egw-admin check-config
	EGW_USER=$1 EGW_HTTP_LISTEN="127.0.0.1:$2" \
		"$EGW_TOP_BUILDDIR/egw-admin" check-config
}
if [ "$start" -gt 1 ]; then
	low=$((start - 1))
	out=$(check_listen nobody "$low" 2>&1 >/dev/null)
	rc=$?
	ok "check-config: port $low (unprivileged from $start) -> exit 2 ($rc)" \
		test "$rc" -eq 2
	ok "check-config: port $low -> one line naming EGW_HTTP_LISTEN" \
		bash -c '[ "$(printf "%s\n" "$1" | grep -c .)" -eq 1 ] &&
			printf "%s" "$1" | grep -q "EGW_HTTP_LISTEN:"' _ "$out"
	ok "check-config: port $start accepted" check_listen nobody "$start"
	if [ -x "$EGW_TOP_BUILDDIR/egw-supervisor" ]; then
		EGW_USER=nobody EGW_HTTP_LISTEN="127.0.0.1:$low" \
			"$EGW_TOP_BUILDDIR/egw-supervisor" -n > /dev/null 2>&1
		rc=$?
		ok "egw-supervisor -n: port $low -> exit 2 ($rc)" test "$rc" -eq 2
	fi
	if [ "$(id -u)" -eq 0 ]; then
		ok "check-config as root, EGW_USER=root (nginx keeps root): port $low accepted" \
			check_listen root "$low"
	fi
else
	ok "check-config: every port is unprivileged here ($start): port 1 accepted" \
		check_listen nobody 1
fi

# --local-nats takes a port and nothing after it.
if [ -x "$EGW_TOP_BUILDDIR/egw-supervisor" ]; then
	for bad in 4222abc 0 65536 ""; do
		"$EGW_TOP_BUILDDIR/egw-supervisor" --local-nats "$bad" -n > /dev/null 2>&1
		rc=$?
		ok "egw-supervisor --local-nats '$bad' -> usage error, exit 2 ($rc)" test "$rc" -eq 2
	done
	ok "egw-supervisor --local-nats 4222 -n accepted" \
		"$EGW_TOP_BUILDDIR/egw-supervisor" --local-nats 4222 -n
fi

# Started for real, egw-api refuses a socket path it could never bind
# before it creates or migrates the database.
mkdir "$T/state" "$T/run"
EGW_FCGI_SOCKET="$long_sock" "$EGW_TOP_BUILDDIR/egw-api" > "$T/long.log" 2>&1
rc=$?
ok "egw-api: a 150-byte EGW_FCGI_SOCKET -> exit 2 ($rc)" test "$rc" -eq 2
ok "egw-api: and no database created" test ! -e "$T/state/egw.db"
rm -rf "$T/state" "$T/run"
e2e_done
