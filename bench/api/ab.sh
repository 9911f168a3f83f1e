#!/bin/bash
# SPDX-License-Identifier: MIT
# This file contains the API A/B benchmark (not a test): two builds of
# egw-api (say, before and after a change), one target, run alternately
# ROUNDS times with run.sh (ROUNDS=1 each), so both see the same minutes
# of this shared VM.  Besides req/s it samples the CPU time of every
# egw-api and nginx thread during the middle of each run and prints it per
# request, which drifts less than throughput.
#
# usage: bench/api/ab.sh OLD_BUILD_DIR NEW_BUILD_DIR [TARGET] [ROUNDS]
#        (TARGET default pool_policy_upsert, ROUNDS default 4; DURATION,
#        WORKERS, CONNECTIONS as for run.sh; DURATION default 8)
set -u
here=$(cd "$(dirname "$0")" && pwd)
old=${1:?old build dir} new=${2:?new build dir}
target=${3:-pool_policy_upsert} rounds=${4:-4}
export DURATION=${DURATION:-8}
command -v python3 >/dev/null || { echo "python3 is not installed" >&2; exit 2; }
T=$(mktemp -d /tmp/egw-ab-XXXXXX)
trap 'rm -rf "$T"' EXIT

# sample DELAY WINDOW: once wrk runs, wait DELAY s, then print the CPU
# percentage of egw-api and nginx threads over WINDOW s
sample() {
	python3 - "$1" "$2" <<'PY'
import os, sys, time
def snap():
    d = {}
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            for t in os.listdir(f'/proc/{p}/task'):
                s = open(f'/proc/{p}/task/{t}/stat').read()
                comm = s[s.index('(') + 1:s.rindex(')')]
                f = s[s.rindex(')') + 2:].split()
                d[(p, t, comm)] = int(f[11]) + int(f[12])
        except OSError:
            pass
    return d
def measured_wrk_running():
    # run.sh's measured runs pass --latency; its 1 s warm-up does not.
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                args = open(f'/proc/{p}/cmdline', 'rb').read().split(b'\0')
            except OSError:
                continue
            if args and os.path.basename(args[0]) == b'wrk' and b'--latency' in args:
                return True
    return False
for _ in range(900):
    if measured_wrk_running():
        break
    time.sleep(0.1)
time.sleep(float(sys.argv[1]))
a = snap(); t0 = time.time(); time.sleep(float(sys.argv[2])); b = snap()
el = time.time() - t0; hz = os.sysconf('SC_CLK_TCK')
cpu = {'egw-api': 0, 'nginx': 0}
for k, v in b.items():
    if k[2] in cpu:
        cpu[k[2]] += v - a.get(k, v)
print(100.0 * cpu['egw-api'] / hz / el, 100.0 * cpu['nginx'] / hz / el)
PY
}

for r in $(seq 1 "$rounds"); do
	for side in old new; do
		dir=$old
		[ "$side" = new ] && dir=$new
		# the middle half of the run
		sample "$(awk -v d="$DURATION" 'BEGIN { print d / 4 }')" \
		    "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')" > "$T/cpu" &
		spid=$!
		line=$(ROUNDS=1 TARGETS="$target" "$here/run.sh" "$dir" 2>&1 |
			awk -v t="$target" '$1 == t && $2 ~ /^[0-9.]+$/ { print $2, $3, $4; exit }')
		wait "$spid"
		read -r rps p50 p99 <<< "${line:-0 - -}"
		read -r api ngx < "$T/cpu"
		awk -v s="$side" -v r="$rps" -v a="$api" -v n="$ngx" -v p50="$p50" -v p99="$p99" 'BEGIN {
			if (r > 0) printf "%s req/s %.0f p50 %s p99 %s egw-api_us/req %.1f nginx_us/req %.1f\n",
			    s, r, p50, p99, a * 1e4 / r, n * 1e4 / r
			else printf "%s failed run (not counted)\n", s }'
	done
done | tee "$T/runs"
echo "# $target, means over the rounds that ran"
awk '$2 == "req/s" { n[$1]++; r[$1] += $3; c[$1] += $9 }
     END { for (s in n) printf "%s: %.0f req/s, egw-api %.1f us/request (%d runs)\n", s, r[s] / n[s], c[s] / n[s], n[s] }' "$T/runs" | sort
