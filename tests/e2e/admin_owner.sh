#!/bin/bash
# SPDX-License-Identifier: MIT
# egw-admin run as root works on the database as the owner of its
# directory (the service user's state directory): the database and its
# -wal/-shm files are that user's, never root's (which the gateway's
# components could not write), and a link that user put at one of those
# names is never followed with root's rights.  In a directory of root's
# it stays root, as before.  A database the gateway's user cannot write
# is reported by `egw-admin migrate` (which the supervisor runs first)
# instead of opening read-only without a word.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init admin_owner
need_root
need_cmd setpriv sqlite3

admin="$EGW_TOP_BUILDDIR/egw-admin"
chmod 755 "$T"
as_user() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$@"; }
root_files() { find "$1" -user root | grep -v "^$1\$"; }
quiet() { "$@" > /dev/null 2>&1; }
export EGW_USER=nobody EGW_LOG_LEVEL=warn

# The state directory as the supervisor or systemd leave it.
mkdir -m 750 "$T/state"
chown nobody:"$(id -g nobody)" "$T/state"
export EGW_STATE_DIR="$T/state"

ok "egw-admin migrate as root" quiet "$admin" migrate
ok "egw.db is the service user's" test "$(stat -c %U "$T/state/egw.db")" = nobody
ok "no file of root's in the state directory" test -z "$(root_files "$T/state")"
token=$("$admin" token create ops read,write)
ok "egw-admin token create as root" test -n "$token"
ok "egw-admin token list as root shows it" sh -c "'$admin' token list | grep -q '^ops '"
ok "egw-admin schema-version as root" test "$("$admin" schema-version)" -ge 1
ok "still no file of root's in the state directory" test -z "$(root_files "$T/state")"
ok "the service user can write the database" \
	quiet as_user sqlite3 "$T/state/egw.db" "PRAGMA busy_timeout=2000; UPDATE api_tokens SET name = name;"

# Links the service user planted at the names SQLite opens next to the
# database: root's file must not be written through them.
(umask 077; echo precious > "$T/victim")
for suffix in -wal -shm -journal; do
	as_user ln -sf "$T/victim" "$T/state/egw.db$suffix"
done
"$admin" token create planted read > /dev/null 2>&1
"$admin" token list > /dev/null 2>&1
ok "root's file is untouched through the planted links" \
	test "$(stat -c '%U %a %s' "$T/victim") $(cat "$T/victim")" = "root 600 9 precious"
rm -f "$T/state/egw.db-wal" "$T/state/egw.db-shm" "$T/state/egw.db-journal"

# A database of root's in the service user's directory (what an earlier
# egw-admin left): migrate says so, as the service user and as root.
rm -f "$T/state/egw.db"*
mkdir -m 700 "$T/rootdb"
EGW_STATE_DIR="$T/rootdb" "$admin" migrate > /dev/null
cp "$T/rootdb/egw.db" "$T/state/egw.db"
chmod 644 "$T/state/egw.db"
out=$(as_user env EGW_STATE_DIR="$T/state" "$admin" migrate 2>&1)
rc=$?
ok "migrate as the service user on root's database: exit 1 ($rc)" test "$rc" -eq 1
ok "saying it is not writable" sh -c "printf '%s' '$out' | grep -q 'is not writable by'"
out=$("$admin" migrate 2>&1)
ok "migrate as root on it: exit 1 too" test $? -eq 1
rm -f "$T/state/egw.db"*

# A directory of root's: root's database, as before.
ok "egw-admin migrate as root in root's directory" quiet env EGW_STATE_DIR="$T/rootdb" "$admin" migrate
ok "there the database is root's" test "$(stat -c %U "$T/rootdb/egw.db")" = root
e2e_done
