#!/bin/bash
# SPDX-License-Identifier: MIT
# A disk that reports a write-back error, through a real nginx and the
# real pool: fdatasync()/fsync() fail with EIO on demand (fault_fsync.c,
# LD_PRELOAD, the only stand-in here).  The write whose flush failed is
# not confirmed (500); while the disk keeps failing no write runs at all
# (Linux reports such an error once and then calls the pages clean, so
# the writer refuses writes until a TRUNCATE checkpoint has put
# everything in the synced database file); reads go on; once the disk is
# healthy the next write runs the checkpoint and succeeds.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_durability
need_cmd cc sqlite3

fault_preload fault_fsync egw-api
API_PRELOAD=$FAULT_PRELOAD
export EGW_TEST_FSYNC_FAULT="$T/disk-fails" EGW_TEST_WRITE_FAULT="$T/disk-full"
export EGW_AUTH=off
start_api 3
start_nginx
# The first writes must find the writer (a direct write has no fdatasync
# of its own to fail in the same way).
wait_for 10 test -S "$EGW_RUN_DIR/egw-api-writer.sock" ||
	{ echo "Bail out! the writer did not start"; exit 99; }

body() { echo "{\"scenario_id\":\"$1\",\"profile\":\"custom\",\"allowed_ports\":[$2]}"; }
api POST /v1/policies "$(body f-1 1001)"
ok "a write on a healthy disk: 201" status_is 201

touch "$EGW_TEST_FSYNC_FAULT"
api POST /v1/policies "$(body f-2 1002)"
ok "the write whose flush failed is not confirmed (500)" error_is 500 internal
ok "the failed flush was logged" grep -q "fdatasync of the WAL; refusing writes" "$T/api.log"
api POST /v1/policies "$(body f-3 1003)"
ok "while the disk fails, a new write is refused (500)" error_is 500 internal
api POST /v1/policies "$(body f-1 1111)"
ok "so is an update" error_is 500 internal
api GET /v1/policies/f-1
ok "reads go on" status_is 200
ok "and show the last confirmed write" jq_is '.allowed_ports[0]' 1001

rm -f "$EGW_TEST_FSYNC_FAULT"
api POST /v1/policies "$(body f-4 1004)"
ok "with the disk healthy again, the next write succeeds (201)" status_is 201
ok "after a checkpoint" grep -q "writer: checkpoint done; writes resume" "$T/api.log"
db="$EGW_STATE_DIR/egw.db"
ok "the refused write ran nothing (no f-3)" \
	test "$(sqlite3 "$db" "SELECT count(*) FROM policies WHERE scenario_id = 'f-3'")" = 0
ok "the refused update ran nothing (f-1 still at revision 1)" \
	test "$(sqlite3 "$db" "SELECT revision FROM policies WHERE scenario_id = 'f-1'")" = 1
ok "no history row for a refused write" \
	test "$(sqlite3 "$db" "SELECT count(*) FROM policy_history WHERE scenario_id = 'f-3' OR (scenario_id = 'f-1' AND revision > 1)")" = 0
api POST /v1/policies "$(body f-1 1112)"
ok "updates work again" status_is 200
ok "integrity_check ok" test "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok

# The failed flush outlives the writer that saw it: Linux reports a
# write-back error once, to the descriptors open at the time, so a writer
# started afterwards (SIGHUP here; a crash or a restart alike) would flush
# without error over the lost pages.  The mark in the run directory makes
# it checkpoint first; so does a worker writing directly.
unsynced="$EGW_RUN_DIR/egw-api-writer.unsynced"
ok "no failed flush is marked after the checkpoint" test ! -e "$unsynced"
touch "$EGW_TEST_FSYNC_FAULT"
api POST /v1/policies "$(body f-6 1006)"
ok "another failed flush: 500" error_is 500 internal
ok "... marked in the run directory" test -e "$unsynced"
rm -f "$EGW_TEST_FSYNC_FAULT"
old_writer=$(cat "$EGW_RUN_DIR/egw-api.writer")
from=$(($(wc -l < "$T/api.log") + 1))
kill -HUP "$API_PID"
new_writer() {
	w=$(cat "$EGW_RUN_DIR/egw-api.writer" 2>/dev/null)
	[ -n "$w" ] && [ "$w" != "$old_writer" ] && test -S "$EGW_RUN_DIR/egw-api-writer.sock"
}
wait_for 20 new_writer
ok "SIGHUP replaced the writer ($old_writer -> $(cat "$EGW_RUN_DIR/egw-api.writer"))" new_writer
wait_for 10 grep -q "a flush of the WAL failed before this writer started" "$T/api.log"
ok "the new writer found the mark" \
	sh -c "tail -n +$from '$T/api.log' | grep -q 'a flush of the WAL failed before this writer started'"
api POST /v1/policies "$(body f-7 1007)"
ok "its first write succeeds (201)" status_is 201
ok "after its own checkpoint" \
	sh -c "tail -n +$from '$T/api.log' | grep -q 'writer: checkpoint done; writes resume'"
ok "which removed the mark" test ! -e "$unsynced"

# Without a writer (a directory where its socket belongs, as in
# api_pool.sh): a worker's direct write runs the checkpoint itself.
touch "$EGW_TEST_FSYNC_FAULT"
api POST /v1/policies "$(body f-8 1008)"
ok "a failed flush once more: 500, marked" sh -c "[ \$(cat '$T/status') = 500 ] && test -e '$unsynced'"
rm -f "$EGW_TEST_FSYNC_FAULT"
writer=$(cat "$EGW_RUN_DIR/egw-api.writer")
rm -f "$EGW_RUN_DIR/egw-api-writer.sock"
mkdir "$EGW_RUN_DIR/egw-api-writer.sock"
kill -KILL "$writer"
wait_for 10 grep -q "cannot remove stale socket $EGW_RUN_DIR/egw-api-writer.sock" "$T/api.log"
ok "no writer can start" grep -q "cannot remove stale socket $EGW_RUN_DIR/egw-api-writer.sock" "$T/api.log"
from=$(($(wc -l < "$T/api.log") + 1))
api POST /v1/policies "$(body f-9 1009)"
ok "a direct write succeeds (201)" status_is 201
ok "after the worker's checkpoint" \
	sh -c "tail -n +$from '$T/api.log' | grep -q 'checkpoint done after a failed flush; writes resume'"
ok "which removed the mark" test ! -e "$unsynced"
rmdir "$EGW_RUN_DIR/egw-api-writer.sock"
wait_for 20 test -S "$EGW_RUN_DIR/egw-api-writer.sock"
ok "with the path free again, a writer starts" test -S "$EGW_RUN_DIR/egw-api-writer.sock"
ok "integrity_check ok after the restarts" test "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok

# A writer syncs the WAL's directory entry when it starts (under NORMAL,
# SQLite's own first sync of a new WAL, which includes it, comes only with
# the first checkpoint); when it cannot, it lets every commit flush itself.
touch "$EGW_TEST_FSYNC_FAULT"
old_writer=$(cat "$EGW_RUN_DIR/egw-api.writer")
kill -HUP "$API_PID"
wait_for 20 new_writer
wait_for 10 grep -q "writer: fsync of $EGW_STATE_DIR; every commit flushes itself" "$T/api.log"
ok "a new writer syncs the directory of the WAL first" \
	grep -q "writer: fsync of $EGW_STATE_DIR; every commit flushes itself" "$T/api.log"
rm -f "$EGW_TEST_FSYNC_FAULT"
api POST /v1/policies "$(body f-10 1010)"
ok "that writer's commits flush themselves (201)" status_is 201

# A full file system (pwrite fails with ENOSPC): /readyz says the database
# is not writable (its probe takes the write lock, which a full disk still
# grants, and commits a row, which it does not), writes are refused with
# nothing written, reads go on; with room again, both recover.
db_check() { api GET /readyz; jq -e ".checks.database.ok == $1" "$T/body" > /dev/null; }
ok "readyz: the database is writable" wait_for 10 db_check true
touch "$EGW_TEST_WRITE_FAULT"
# Each worker commits its probe at most every 5 s (API_WRITE_PROBE_MS).
sleep 5.2
api GET /readyz
ok "disk full: readyz 503 (the applier is not running either)" status_is 503
ok "... because of the database, with the reason" \
	jqe '.checks.database.ok == false and (.checks.database.reason | length > 0)'
ok "... which is the full disk (SQLite's message in the log)" \
	grep -q "database or disk is full" "$T/api.log"
api POST /v1/policies "$(body f-5 1005)"
ok "disk full: a write is refused ($(cat "$T/status"))" sh -c "[ \$(cat '$T/status') -ge 500 ]"
ok "disk full: the refused write left no row" \
	test "$(sqlite3 "$db" "SELECT count(*) FROM policies WHERE scenario_id = 'f-5'")" = 0
api GET /v1/policies/f-1
ok "disk full: reads go on" status_is 200
rm -f "$EGW_TEST_WRITE_FAULT"
ok "room again: readyz says the database is writable" wait_for 10 db_check true
api POST /v1/policies "$(body f-5 1005)"
ok "room again: the write succeeds (201)" status_is 201
ok "one history row for f-5: the write that succeeded" \
	test "$(sqlite3 "$db" "SELECT count(*) FROM policy_history WHERE scenario_id = 'f-5'")" = 1
ok "integrity_check ok after the full disk" test "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok
e2e_done
