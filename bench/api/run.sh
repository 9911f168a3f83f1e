#!/bin/bash
# SPDX-License-Identifier: MIT
# This file contains the API benchmark (not a test): wrk through nginx on
# this machine, three things side by side in one run:
#   1. an nginx location returning a fixed JSON body (ceiling of anything
#      behind nginx),
#   2. a bare libfcgi responder in the same prefork shape returning the same
#      body (ceiling of this design; bare_responder.c), hit by plain wrk on
#      one URL and, as bare_fcgi_lua, by the policy read's own request
#      stream (get_policy.lua: wrk's Lua costs CPU on these same 2 CPUs),
#   3. the real egw-api pool: GET /health, GET /v1/policies/{id} with 10,000
#      policies stored, POST /v1/policies upserts over those 10,000 ids.
# It prints req/s, p50/p99 and the ratios.
#
# usage: bench/api/run.sh [BUILD_DIR]   (default: ./build-api, then ./build)
# env:   ROUNDS (default 3: every target runs once per round, in the same
#        order, and the figures are the medians over the rounds, so a slow
#        stretch of this shared VM moves one round, not one target),
#        DURATION (s per target per round, default 10), CONNECTIONS
#        (default 32), THREADS (2),
#        WORKERS (pool and bare responder, default 8, the bare responder's best
#        on 2 CPUs), SPARES (the pool's EGW_SPARE_WORKERS; default: the
#        program's default), EGW_AUTH (on),
#        EGW_LOG_LEVEL (info), TARGETS (names to run, space-separated;
#        default all: nginx_fixed bare_fcgi bare_fcgi_lua pool_health
#        pool_policy_get pool_policy_upsert), BENCH_TMPDIR (where the
#        database and sockets go, default /tmp; /dev/shm takes the disk
#        out: fdatasync on tmpfs returns at once, so an upsert there is
#        not durable, and the figure is the design's ceiling without the
#        disk, not a result), API_LOG (file, the default: the pool's
#        stderr is a file; pipe: a pipe to a reader that writes the file,
#        as journald or a log shipper reads it: every write wakes it)
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-}
[ -n "$build" ] || for d in "$top/build-api" "$top/build"; do
	[ -x "$d/egw-api" ] && { build=$d; break; }
done
[ -x "$build/egw-api" ] || { echo "no egw-api built (give the build directory)" >&2; exit 2; }
for c in wrk nginx sqlite3 curl cc; do
	command -v $c >/dev/null || { echo "$c is not installed" >&2; exit 2; }
done
DURATION=${DURATION:-10} CONNECTIONS=${CONNECTIONS:-32} THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-8}
TARGETS=${TARGETS:-}

T=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/egw-bench-XXXXXX") || exit 2
pids=
. "$here/lib.sh"
cleanup() {
	# shellcheck disable=SC2086
	stop_pids 5 $pids
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM


export EGW_STATE_DIR=$T/state EGW_RUN_DIR=$T/run EGW_WORKERS=$WORKERS
[ -n "${SPARES:-}" ] && export EGW_SPARE_WORKERS=$SPARES
export EGW_AUTH=${EGW_AUTH:-on} EGW_LOG_LEVEL=${EGW_LOG_LEVEL:-info} DRY_RUN=true
export EGW_FCGI_SOCKET=$T/run/api.sock EGW_APPLIER_SOCKET=$T/run/applier.sock
mkdir -p "$EGW_STATE_DIR" "$EGW_RUN_DIR"
DB=$EGW_STATE_DIR/egw.db

[ -n "${BENCH_TMPDIR:-}" ] && echo "# database and sockets in $T (BENCH_TMPDIR; on tmpfs the upserts are not durable)"
echo "# building the bare responder"
cc -O2 -o "$T/bare_responder" "$here/bare_responder.c" -lfcgi || exit 1
"$build/egw-admin" migrate >/dev/null || exit 1
echo "# seeding 10,000 policies"
seed_policies "$DB" 10000 || exit 1
BENCH_TOKEN=
if [ "$EGW_AUTH" != off ]; then
	BENCH_TOKEN=$("$build/egw-admin" token create bench read,write) || exit 1
fi
export BENCH_TOKEN

case ${API_LOG:-file} in
file) "$build/egw-api" 2> "$T/api.log" & ;;
pipe) "$build/egw-api" 2> >(cat > "$T/api.log") & ;;
*) echo "API_LOG is file or pipe" >&2; exit 2 ;;
esac
pids="$pids $!"
"$T/bare_responder" "$T/run/bare.sock" "$WORKERS" &
pids="$pids $!"
API_PORT=$(free_port) FIXED_PORT=$(free_port) BARE_PORT=$(free_port)
sed -e "s|@FIXED_PORT@|$FIXED_PORT|; s|@BARE_PORT@|$BARE_PORT|; s|@BARE_SOCKET@|$T/run/bare.sock|" \
	"$here/fixed.conf.in" > "$T/extra.conf"
mkdir -p "$T/nginx"
"$top/scripts/render-nginx-conf" --standalone "$T/nginx" --listen "127.0.0.1:$API_PORT" \
	--socket "$EGW_FCGI_SOCKET" --access-log off --extra "$T/extra.conf" > "$T/nginx/nginx.conf" || exit 1
nginx -e "$T/nginx/error.log" -c "$T/nginx/nginx.conf" -g 'daemon off;' &
pids="$pids $!"
for i in $(seq 1 100); do
	curl -s -o /dev/null "http://127.0.0.1:$API_PORT/healthz" && [ -S "$T/run/bare.sock" ] && break
	sleep 0.1
done

# to_ms LATENCY: wrk's "850.00us", "2.31ms" or "1.02s" in milliseconds
to_ms() {
	case $1 in
	*us) awk -v v="${1%us}" 'BEGIN { print v / 1000 }' ;;
	*ms) echo "${1%ms}" ;;
	*s) awk -v v="${1%s}" 'BEGIN { print v * 1000 }' ;;
	*) echo 0 ;;
	esac
}

# run NAME URL [LUA]: one wrk run; prints "NAME rps p50 p99 errors" and
# appends "round NAME rps p50_ms p99_ms" to $T/results
run() {
	name=$1 url=$2 lua=${3:-}
	case " $TARGETS " in *" $name "*|"  ") ;; *) return ;; esac
	args=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency)
	[ -n "$lua" ] && args+=(-s "$here/$lua")
	[ -z "$lua" ] && [ -n "$BENCH_TOKEN" ] && args+=(-H "Authorization: Bearer $BENCH_TOKEN")
	wrk "${args[@]}" "$url" > "$T/wrk.$name" 2>&1
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$T/wrk.$name")
	p50=$(awk '$1 == "50%" { print $2 }' "$T/wrk.$name")
	p99=$(awk '$1 == "99%" { print $2 }' "$T/wrk.$name")
	errs=$(awk '/Non-2xx or 3xx responses:/ { print $NF } /Socket errors:/ { print "sock:" $0 }' "$T/wrk.$name" | tr '\n' ' ')
	printf '%-22s %10s %10s %10s  %s\n' "$name" "${rps:-?}" "${p50:-?}" "${p99:-?}" "${errs:-}"
	echo "$round $name ${rps:-0} $(to_ms "${p50:-?}") $(to_ms "${p99:-?}")" >> "$T/results"
}

echo "# wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s x $ROUNDS rounds, $WORKERS workers (spares: ${EGW_SPARE_WORKERS:-default}), auth $EGW_AUTH, log level $EGW_LOG_LEVEL, log to a ${API_LOG:-file}, $(nproc) CPUs"
wrk -t1 -c4 -d1s "http://127.0.0.1:$API_PORT/health" >/dev/null 2>&1
: > "$T/results"
for round in $(seq 1 "$ROUNDS"); do
	echo "# round $round"
	printf '%-22s %10s %10s %10s\n' target req/s p50 p99
	run nginx_fixed "http://127.0.0.1:$FIXED_PORT/"
	run bare_fcgi "http://127.0.0.1:$BARE_PORT/health"
	run bare_fcgi_lua "http://127.0.0.1:$BARE_PORT/" get_policy.lua
	run pool_health "http://127.0.0.1:$API_PORT/health"
	run pool_policy_get "http://127.0.0.1:$API_PORT/" get_policy.lua
	run pool_policy_upsert "http://127.0.0.1:$API_PORT/" upsert.lua
done

# median VALUES...: the median (mean of the middle two for an even count)
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# field TARGET COLUMN: that column of every round of TARGET
field() { awk -v t="$1" -v c="$2" '$2 == t { print $c }' "$T/results"; }
# round_ratios A B: A's req/s over B's in each round both ran, in percent
round_ratios() {
	awk -v a="$1" -v b="$2" '$2 == a { x[$1] = $3 } $2 == b { y[$1] = $3 }
	    $1 > n { n = $1 }
	    END { for (r = 1; r <= n; r++) if (x[r] > 0 && y[r] > 0) printf "%.1f\n", 100 * x[r] / y[r] }' "$T/results"
}
echo "# medians over $ROUNDS rounds (req/s; p50 and p99 in ms)"
printf '%-22s %10s %10s %10s   %s\n' target req/s p50 p99 "per round req/s"
for t in nginx_fixed bare_fcgi bare_fcgi_lua pool_health pool_policy_get pool_policy_upsert; do
	[ -n "$(field $t 3)" ] || { eval "RPS_$t=0"; continue; }
	rps=$(median $(field $t 3))
	printf '%-22s %10.0f %10.2f %10.2f   %s\n' "$t" "$rps" "$(median $(field $t 4))" "$(median $(field $t 5))" "$(field $t 3 | tr '\n' ' ')"
	eval "RPS_$t=$rps"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.1f%%", 100 * a / b; else print "-" }'; }
# per_round A B: "(r1 r2 r3 %)" when A and B ran in the same rounds
per_round() { v=$(round_ratios "$1" "$2" | tr '\n' ' '); [ -n "$v" ] && echo "(per round: ${v}%)"; }
echo "# ratios of the medians"
echo "bare_fcgi / nginx_fixed          $(ratio "$RPS_bare_fcgi" "$RPS_nginx_fixed")"
echo "pool_health / bare_fcgi          $(ratio "$RPS_pool_health" "$RPS_bare_fcgi")   $(per_round pool_health bare_fcgi)"
echo "pool_policy_get / bare_fcgi      $(ratio "$RPS_pool_policy_get" "$RPS_bare_fcgi")   (target >= 85%) $(per_round pool_policy_get bare_fcgi)"
echo "pool_policy_get / bare_fcgi_lua  $(ratio "$RPS_pool_policy_get" "$RPS_bare_fcgi_lua")   (the same request stream, for reference) $(per_round pool_policy_get bare_fcgi_lua)"
echo "pool_policy_upsert / bare_fcgi   $(ratio "$RPS_pool_policy_upsert" "$RPS_bare_fcgi")   (target >= 25%) $(per_round pool_policy_upsert bare_fcgi)"
echo "# seed's earlier Python service, measured by the issue: ~670 read, ~510 write"
echo "pool_policy_get / 670            $(awk -v a="$RPS_pool_policy_get" 'BEGIN { printf "%.1fx", a / 670 }')"
echo "pool_policy_upsert / 510         $(awk -v a="$RPS_pool_policy_upsert" 'BEGIN { printf "%.1fx", a / 510 }')"
policies=$(sqlite3 "$DB" 'SELECT count(*) FROM policies')
fails=$(grep -c '"status":"5' "$T/api.log")
echo "# policies after the run: $policies; 5xx answers in the pool's log: $fails"
