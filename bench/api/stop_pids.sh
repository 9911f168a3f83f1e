# SPDX-License-Identifier: MIT
# This file holds stop_pids, sourced by the API benchmark scripts.

# stop_pids SECONDS PID...: SIGTERM each process we started, wait up to
# SECONDS for each to end, then SIGKILL what is left.  By PID only.
stop_pids() {
	limit=$(($1 * 10))
	shift
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	for p in "$@"; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt $limit ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$p" 2>/dev/null
	done
}
