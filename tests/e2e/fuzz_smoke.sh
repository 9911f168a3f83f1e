#!/bin/bash
# SPDX-License-Identifier: MIT
# A short run of every libFuzzer target (tests/fuzz/run.sh) so that a
# parser regression surfaces in `make check`: builds the targets with clang
# (ASan + UBSan) in $EGW_TOP_BUILDDIR/fuzz-build, runs each for
# FUZZ_SMOKE_SECONDS (default 20) from its committed seed corpus, and
# reports the executions.  A target passes when it ran without a crash or a
# property failure and actually executed inputs.  `make fuzz` runs the same
# targets longer (FUZZ_SECONDS, default 60).
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init fuzz_smoke
need_cmd clang unshare timeout pkg-config

secs=${FUZZ_SMOKE_SECONDS:-20}
run=$EGW_TOP_SRCDIR/tests/fuzz/run.sh
export FUZZ_BUILD="$EGW_TOP_BUILDDIR/fuzz-build"

built() { FUZZ_BUILD_ONLY=1 timeout 900 "$run" > "$T/build.log" 2>&1; }
if ! ok "fuzz targets build with clang -fsanitize=fuzzer,address,undefined" built; then
	sed 's/^/# /' "$T/build.log" | tail -n 30
	e2e_done
fi

# pktparse must accept every NFLOG prefix the applier renders (contracts.md).
contract() {
	FUZZ_PKTPARSE_CONTRACT=1 "$FUZZ_BUILD/fuzz_pktparse" -runs=0 > "$T/contract.log" 2>&1
}
ok "pktparse accepts every prefix the applier renders (egw:<v>:m:<reason>)" contract ||
	grep -m 5 refused "$T/contract.log" | sed 's/^/# /'

# fuzz_nats_event keeps its database in a directory of its own under
# /dev/shm (or /tmp) and must remove it, every file in it, at exit.
nats_dirs() { ls -d /dev/shm/egw-fuzz-nats-* /tmp/egw-fuzz-nats-* 2>/dev/null | sort; }
total=0
for t in codec nats_event render pktparse http netaddr; do
	[ "$t" = nats_event ] && dirs_before=$(nats_dirs)
	FUZZ_SECONDS=$secs "$run" "$t" > "$T/$t.out" 2> "$T/$t.err"
	rc=$?
	if [ "$t" = nats_event ]; then
		left=$(comm -13 <(echo "$dirs_before") <(nats_dirs) | tr '\n' ' ')
		ok "fuzz_nats_event removed its database directory (left: ${left:-none})" test -z "$left"
	fi
	line=$(grep "^fuzz $t:" "$T/$t.out")
	execs=$(echo "$line" | sed -n 's/^fuzz [a-z_]*: \([0-9]*\) executions.*/\1/p')
	execs=${execs:-0}
	total=$((total + execs))
	diag "$line"
	ok "fuzz_$t: no crash or broken property in $secs s" test "$rc" -eq 0 ||
		sed 's/^/# /' "$T/$t.err" | grep -v '^#     #' | tail -n 25
	ok "fuzz_$t: executed inputs ($execs)" test "$execs" -ge 100
done
diag "fuzz smoke: $total executions in total, crash inputs (if any) under $FUZZ_BUILD/artifacts"
e2e_done
