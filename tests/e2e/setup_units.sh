#!/bin/bash
# SPDX-License-Identifier: MIT
# scripts/setup's package step, with apt-get, dpkg-query, systemctl and
# make replaced by stubs and /usr/sbin (where policy-rc.d goes) and
# /run/systemd by empty tmpfs mounts in a private mount namespace: nothing
# on the host is installed, enabled or disabled.
#   - the policy-rc.d it puts in place for the install is gone afterwards,
#     also when apt-get fails (set -e), and an operator's own is kept;
#   - the system nginx and nats-server units it installed are disabled
#     (and stopped when systemd runs), other packages leave systemctl alone.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init setup_units
need_root
need_cmd unshare mount

stub=$T/stub
mkdir -p "$stub" "$T/build"
: > "$T/build/Makefile"
echo "--enable-werror " > "$T/build/.egw-configure-flags"
cat > "$stub/dpkg-query" <<'SH'
#!/bin/sh
# dpkg-query -W -f=... PKG: installed unless listed in STUB_MISSING.
for last; do :; done
case " $STUB_MISSING " in *" $last "*) exit 1 ;; esac
printf 'install ok installed'
SH
cat > "$stub/apt-get" <<'SH'
#!/bin/sh
echo "apt-get $*" >> "$STUB_LOG"
case $* in *install*)
	[ -x /usr/sbin/policy-rc.d ] && echo "policy-rc.d in place at install" >> "$STUB_LOG"
	[ "${STUB_APT_FAIL:-0}" = 1 ] && exit 100 ;;
esac
exit 0
SH
cat > "$stub/systemctl" <<'SH'
#!/bin/sh
echo "systemctl $*" >> "$STUB_LOG"
exit 0
SH
printf '#!/bin/sh\nexit 0\n' > "$stub/make"
cp "$stub/make" "$stub/autoreconf"
chmod 755 "$stub"/*

# run_setup NAME SYSTEMD(yes|no) OPERATOR_POLICY(yes|no) [VAR=VALUE...]
# Leaves $T/NAME.log (the stubs' calls), $T/NAME.rc, $T/NAME.policy (what
# /usr/sbin/policy-rc.d held afterwards, "absent" if nothing).
run_setup() {
	name=$1 systemd=$2 operator=$3
	shift 3
	: > "$T/$name.log"
	env STUB_LOG="$T/$name.log" PATH="$stub:$PATH" EGW_BUILD_DIR="$T/build" "$@" \
	unshare -m --propagation private bash -c '
		mount -t tmpfs tmpfs /usr/sbin || exit 99
		mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd || exit 99
		[ "$1" = yes ] && mkdir /run/systemd/system
		[ "$2" = yes ] && printf "#!/bin/sh\nexit 0 # mine\n" > /usr/sbin/policy-rc.d &&
			chmod 755 /usr/sbin/policy-rc.d
		bash "$EGW_TOP_SRCDIR/scripts/setup" 2>> "$STUB_LOG"
		echo $? > "$3.rc"
		cat /usr/sbin/policy-rc.d 2>/dev/null > "$3.policy" || echo absent > "$3.policy"
	' _ "$systemd" "$operator" "$T/$name"
}
calls() { grep -c "^systemctl disable" "$T/$1.log"; }

run_setup fail yes no STUB_MISSING="nginx-light nats-server" STUB_APT_FAIL=1
ok "apt-get install fails: setup fails" test "$(cat "$T/fail.rc")" -ne 0
ok "the policy was in place during the install" grep -q "policy-rc.d in place at install" "$T/fail.log"
ok "no policy-rc.d left behind" test "$(cat "$T/fail.policy")" = absent

run_setup booted yes no STUB_MISSING="nginx-light nats-server jq"
ok "install succeeds: setup succeeds" test "$(cat "$T/booted.rc")" -eq 0
ok "the policy was in place during the install" grep -q "policy-rc.d in place at install" "$T/booted.log"
ok "no policy-rc.d left behind" test "$(cat "$T/booted.policy")" = absent
ok "systemd running: nginx disabled and stopped" grep -qx "systemctl disable --now nginx.service" "$T/booted.log"
ok "systemd running: nats-server disabled and stopped" grep -qx "systemctl disable --now nats-server.service" "$T/booted.log"
ok "nothing else disabled" test "$(calls booted)" -eq 2

run_setup offline no no STUB_MISSING="nginx-light"
ok "no running systemd: nginx disabled (unit files only)" grep -qx "systemctl disable nginx.service" "$T/offline.log"
ok "and only nginx" test "$(calls offline)" -eq 1

run_setup other yes no STUB_MISSING="jq"
ok "other packages: systemctl not asked to disable anything" test "$(calls other)" -eq 0

run_setup mine_fail yes yes STUB_MISSING="nats-server" STUB_APT_FAIL=1
ok "an operator's policy-rc.d is kept when apt-get fails" grep -q "exit 0 # mine" "$T/mine_fail.policy"
run_setup mine yes yes STUB_MISSING="nats-server"
ok "and when it succeeds" grep -q "exit 0 # mine" "$T/mine.policy"
e2e_done
