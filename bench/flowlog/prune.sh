#!/bin/sh
# SPDX-License-Identifier: MIT
# What the partial index outbox_flow (sql/005_outbox_flow_index.sql) buys
# egw-flowlog's retention step, and what it costs each logged row.
#
#   bench/flowlog/prune.sh [BUILDDIR]      (default ./build; make check first)
#
# Fills ROWS (default 1,000,000) log rows with their flow events, then on a
# copy without the index and one with it: turns the oldest AHEAD (default
# 100,000) flow events into undelivered policy events (NATS down through a
# busy day), times 50 steps with nothing due and 50 steps that each delete
# 500 log rows and 500 flow events beyond the cap, then times writing
# 50,000 more rows (3 runs).  Needs sqlite3 and ~2 GB in $TMPDIR.
set -eu
B=${1:-build}
ROWS=${ROWS:-1000000}
AHEAD=${AHEAD:-100000}
P="$B/bench/flowlog/egw-bench-prune"
D=$(mktemp -d "${TMPDIR:-/tmp}/egw-bench-prune.XXXXXX")
trap 'rm -rf "$D"' EXIT
"$P" fill "$D/base.db" "$ROWS"
sqlite3 "$D/base.db" "DROP INDEX outbox_flow; VACUUM;" > /dev/null
cp "$D/base.db" "$D/with.db"
t0=$(date +%s.%N)
sqlite3 "$D/with.db" "CREATE INDEX outbox_flow ON outbox(id) WHERE type = 'flow'"
t1=$(date +%s.%N)
echo "index build at $ROWS outbox rows: $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s;" \
	"file $(stat -c %s "$D/base.db") -> $(stat -c %s "$D/with.db") bytes"
for v in base with; do
	[ $v = base ] && echo "== without outbox_flow" || echo "== with outbox_flow"
	cp "$D/$v.db" "$D/run.db"
	for r in 1 2 3; do
		cp "$D/$v.db" "$D/w.db"; rm -f "$D/w.db-wal" "$D/w.db-shm"
		"$P" write "$D/w.db" 50000
	done
	sqlite3 "$D/run.db" "UPDATE outbox SET type = 'policy.updated'
		WHERE id <= (SELECT min(id) FROM outbox) + $AHEAD - 1" > /dev/null
	echo "$AHEAD policy events ahead; nothing due:"
	"$P" prune "$D/run.db" 604800 "$ROWS" 50
	echo "500 log rows and 500 flow events due per step:"
	"$P" prune "$D/run.db" 604800 $((ROWS - AHEAD - 50000)) 50
done
