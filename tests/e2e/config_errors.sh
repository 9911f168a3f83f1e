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
for p in $progs; do
	bin="$EGW_TOP_BUILDDIR/$p"
	arg=-n
	[ "$p" = egw-admin ] && arg=check-config
	for bad in "EGW_WORKERS=0" "DRY_RUN=perhaps" "NATS_URL=http://x" "EGW_DNS_SERVERS=resolver.example" \
	    "EGW_STATE_DIR=relative" "EGW_NFLOG_GROUP=70000"; do
		var=${bad%%=*}
		out=$(env "$bad" "$bin" $arg 2>&1 >/dev/null)
		rc=$?
		lines=$(printf '%s\n' "$out" | grep -c .)
		ok "$p: $bad -> exit 2" test "$rc" -eq 2
		ok "$p: $bad -> one line naming $var" \
			bash -c '[ "$1" -eq 1 ] && printf "%s" "$2" | grep -q "$3:"' _ "$lines" "$out" "$var"
	done
	ok "$p: -n accepts the defaults" "$bin" $arg
	ok "$p: nothing created on disk" test ! -e "$T/state" -a ! -e "$T/run"
done
e2e_done
