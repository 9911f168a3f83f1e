#!/bin/bash
# SPDX-License-Identifier: MIT
# This file builds and runs bench/api/micro.c against a scratch database.
# usage: bench/api/micro.sh [BUILD_DIR]   (default ./build)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-$top/build}
[ -f "$build/libegw.a" ] || { echo "no libegw.a in $build (build first)" >&2; exit 2; }
T=$(mktemp -d /tmp/egw-micro-XXXXXX)
trap 'rm -rf "$T"' EXIT
${CC:-cc} -O2 -std=gnu17 -I"$top/src" -I"$build" -o "$T/micro" "$here/micro.c" \
	"$build/libegw.a" $(pkg-config --libs json-c sqlite3 libcrypto)
"$T/micro" "$T/micro.db"
