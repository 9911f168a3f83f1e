#!/bin/bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each one.
#
#   tests/fuzz/run.sh [TARGET...]        (default: every target)
#
# Environment:
#   EGW_TOP_SRCDIR / EGW_TOP_BUILDDIR  set by make; default: this checkout
#                                      and its "build" directory
#   FUZZ_BUILD      where the instrumented build lives
#                   (default $EGW_TOP_BUILDDIR/fuzz-build; reused, so a
#                   second run only recompiles what changed)
#   FUZZ_SECONDS    run time per target (default 60)
#   FUZZ_BUILD_ONLY=1  build, do not run
#
# The library code is compiled by configure + make in FUZZ_BUILD with
# CC=clang and -fsanitize=fuzzer-no-link,address,undefined, so the targets
# always fuzz the same sources and flags as the product.  Each target runs
# on a private copy of its committed seed corpus (tests/fuzz/corpus/<t>);
# the committed seeds are never written.  The renderer target needs a
# network namespace of its own for libnftables' dry run: it runs under
# `unshare -rn` and never touches the caller's ruleset.
#
# Prints one line per target:
#   fuzz <target>: <N> executions, <C> crashes, <S> s[, corpus <K> inputs]
# and exits 1 when a target crashed (the input is kept in
# FUZZ_BUILD/artifacts/<target>/), 2 when the build failed.
set -u

src=${EGW_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
top_build=${EGW_TOP_BUILDDIR:-$src/build}
B=${FUZZ_BUILD:-$top_build/fuzz-build}
secs=${FUZZ_SECONDS:-60}
ALL="codec nats_event render pktparse http netaddr"
targets=${*:-$ALL}

SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
CFLAGS_FUZZ="-g -O1 -fno-omit-frame-pointer $SAN"

build() {
	mkdir -p "$B" || return 1
	if [ ! -f "$B/Makefile" ]; then
		(cd "$B" && "$src/configure" -q CC=clang CFLAGS="$CFLAGS_FUZZ" \
			> configure.out 2>&1) || { cat "$B/configure.out" >&2; return 1; }
	fi
	(cd "$B" && make -s -j2 libegw.a libegw_applier.a > make.out 2>&1) ||
		{ tail -n 40 "$B/make.out" >&2; return 1; }
	pc() { pkg-config "$@" json-c sqlite3 libcrypto; }
	inc="-I$src/src -I$B/src -I$src/tests/fuzz -D_GNU_SOURCE -std=gnu17"
	core="$B/libegw.a $(pc --libs)"
	link="clang $CFLAGS_FUZZ -fsanitize=fuzzer $inc $(pc --cflags)"
	for t in $targets; do
		out="$B/fuzz_$t"
		srcs="$src/tests/fuzz/fuzz_$t.c"
		libs="$core"
		case $t in
		nats_event)
			srcs="$srcs $src/src/nats_bridge.c"
			libs="$core $(pkg-config --cflags --libs libnats) -lpthread" ;;
		render)
			libs="$B/libegw_applier.a $core $(pkg-config --libs libnftables libnftnl libmnl)" ;;
		pktparse)
			srcs="$srcs $src/src/pktparse.c" ;;
		esac
		# Relink when a source or a library is newer than the binary.
		stale=0
		[ -x "$out" ] || stale=1
		for f in $srcs "$src/tests/fuzz/fuzz.h" "$B/libegw.a" "$B/libegw_applier.a"; do
			[ "$f" -nt "$out" ] && stale=1
		done
		[ $stale = 1 ] || continue
		# shellcheck disable=SC2086
		$link -o "$out" $srcs $libs > "$B/link_$t.out" 2>&1 ||
			{ cat "$B/link_$t.out" >&2; return 1; }
	done
}

if ! build; then
	echo "fuzz: build failed" >&2
	exit 2
fi
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

status=0
for t in $targets; do
	work="$B/run/$t"
	art="$B/artifacts/$t"
	rm -rf "$work"
	mkdir -p "$work/corpus" "$art"
	seeds="$src/tests/fuzz/corpus/$t"
	wrap=""
	[ "$t" = render ] && wrap="unshare -rn"
	maxlen=65536
	[ "$t" = pktparse ] && maxlen=4096
	start=$(date +%s)
	# -max_total_time bounds the run; timeout(1) bounds a hung target.
	# shellcheck disable=SC2086
	timeout --kill-after=10 $((secs + 60)) $wrap "$B/fuzz_$t" \
		-max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
		-max_len=$maxlen -print_final_stats=1 \
		-artifact_prefix="$art/" "$work/corpus" "$seeds" \
		> "$work/log" 2>&1
	rc=$?
	end=$(date +%s)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n1)
	crashes=0
	if [ $rc -ne 0 ]; then
		crashes=1
		status=1
		echo "---- fuzz_$t failed (exit $rc); last lines of its log:" >&2
		grep -v '^#[0-9]' "$work/log" | tail -n 40 >&2
		ls "$art" >&2
	fi
	echo "fuzz $t: ${execs:-0} executions, $crashes crashes, $((end - start)) s, corpus $(ls "$work/corpus" | wc -l) new inputs"
done
exit $status
