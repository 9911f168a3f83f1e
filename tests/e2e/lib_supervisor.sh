# SPDX-License-Identifier: MIT
# Set-up shared by the supervisor scenarios that run a whole gateway in a
# namespace of their own (supervisor_control.sh, supervisor_symlinks.sh,
# supervisor_stop.sh):
# source after lib.sh and e2e_init.
#
# sup_env NAME WORKERS: a namespace ($ns), free ports ($http_port,
# $nats_port), state and run directories under $T reachable by the service
# user (nobody), and the environment of a dry-run gateway with WORKERS
# workers; $sup is the supervisor, $run the run directory.
sup_env() {
	ns=$(make_netns "$1")
	chmod 755 "$T"
	http_port=$(free_port)
	nats_port=$(free_port)
	export EGW_STATE_DIR="$T/state" EGW_RUN_DIR="$T/run"
	export EGW_HTTP_LISTEN=127.0.0.1:$http_port EGW_WORKERS=$2 \
		EGW_SPARE_WORKERS=0 EGW_AUTH=off
	export EGW_USER=nobody EGW_NGINX_RENDER="$EGW_TOP_SRCDIR/scripts/render-nginx-conf"
	export DRY_RUN=true
	unset NATS_URL
	sup="$EGW_TOP_BUILDDIR/egw-supervisor"
	run=$EGW_RUN_DIR
}

# health_ok: the gateway's GET /health answers 200 inside the namespace
health_ok() {
	[ "$(ip netns exec "$ns" curl -s -o /dev/null -m 2 -w '%{http_code}' \
		"http://127.0.0.1:$http_port/health")" = 200 ]
}

# start LOGNAME [ARGS...]: the supervisor (with ARGS before "run") in the
# namespace, its output in $T/LOGNAME.log; sets $SUP_PID
start() {
	log=$1
	shift
	ip netns exec "$ns" "$sup" "$@" run > "$T/$log.log" 2>&1 &
	SUP_PID=$!
	track_pid "$SUP_PID"
}

# exited: the supervisor ($SUP_PID) is gone
exited() { ! kill -0 "$SUP_PID" 2>/dev/null; }

# stop: SIGTERM to the supervisor ($SUP_PID), and wait until it has gone
stop() {
	kill -TERM "$SUP_PID" 2>/dev/null
	wait_for 30 sh -c "! kill -0 $SUP_PID 2>/dev/null"
	wait "$SUP_PID" 2>/dev/null
}
