#!/usr/bin/env bash
# test/pg18/run.sh — the `make test-pg18` driver: brandbos built and tested on PostgreSQL 18.
#
# Debian 12 ships only PostgreSQL 15, so this script builds 18 from the upstream release
# tarball into a private prefix outside the repository, adds pgTAP to it, builds brandbos
# against it with -Werror and runs test/run.sh with PGBIN pointing at it.
#
#   1. PostgreSQL 18.6 -> $BB_PG18_PREFIX (configure --without-icu --without-readline
#      --with-openssl; contrib pgcrypto, pg_buffercache and file_fdw, which the tests load).
#      Built only when the prefix has no completed build (the stamp file .brandbos-built);
#      about 10 minutes on 2 cores.
#   2. pgTAP 1.3.4 into that prefix, when missing.
#   3. brandbos: all + install with PG_CONFIG of the prefix and -Werror (the Makefile
#      recompiles every object when PG_CONFIG names another PostgreSQL than the last build).
#   4. test/run.sh with PGBIN=$BB_PG18_PREFIX/bin and PG_CONFIG exported. BB_ONLY defaults
#      to regress,pgtap,unit,scenarios,asan (test/asan/run.sh copies the tree of PG_CONFIG,
#      this one); fuzz does not depend on the server, and `BB_ONLY=lint` runs the static
#      analysis with 18's headers. Every BB_* setting of test/run.sh passes through.
#
# Options:
#   --build-only     steps 1-3 only
# Environment:
#   BB_PG18_PREFIX   install prefix (/var/cache/brandbos/pg-18.6)
#   BB_VENDOR        folder with the release tarballs (/work/shared/vendor)
#   BB_MAKE_JOBS     parallel make jobs for PostgreSQL (number of CPUs)

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PREFIX=${BB_PG18_PREFIX:-/var/cache/brandbos/pg-18.6}
VENDOR=${BB_VENDOR:-/work/shared/vendor}
JOBS=${BB_MAKE_JOBS:-$(nproc 2>/dev/null || echo 2)}
PG_TARBALL=$VENDOR/postgresql-18_18.6.orig.tar.bz2
PGTAP_TARBALL=$VENDOR/pgtap-1.3.4.tar.gz
PG_CONFIG=$PREFIX/bin/pg_config
STAMP=$PREFIX/.brandbos-built
BUILD=$PREFIX.build          # sources and build logs, next to the prefix

BUILD_ONLY=0
for arg in "$@"; do
	case $arg in
	--build-only) BUILD_ONLY=1 ;;
	*) echo "test/pg18/run.sh: unknown argument $arg" >&2; exit 2 ;;
	esac
done

say() { printf '== %s\n' "$*"; }

# run a build command with its output in LOG; on failure show the tail and stop
logged() {
	local log=$1
	shift
	if ! "$@" >>"$log" 2>&1; then
		echo "test/pg18/run.sh: failed: $* (last lines of $log):" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
}

build_postgres() {
	local src log
	for f in "$PG_TARBALL" "$PGTAP_TARBALL"; do
		[[ -r $f ]] || { echo "test/pg18/run.sh: $f not found (set BB_VENDOR)" >&2; exit 1; }
	done
	rm -rf "$BUILD" "$PREFIX"
	mkdir -p "$BUILD"
	log=$BUILD/postgres.log
	say "building PostgreSQL 18.6 into $PREFIX (log: $log; about 10 minutes)"
	tar -xjf "$PG_TARBALL" -C "$BUILD"
	src=$(find "$BUILD" -mindepth 1 -maxdepth 1 -type d -name 'postgresql-*' | head -n 1)
	(
		cd "$src"
		logged "$log" ./configure --prefix="$PREFIX" --without-icu --without-readline \
			--with-openssl
		logged "$log" make -j"$JOBS"
		logged "$log" make install
		for m in pgcrypto pg_buffercache file_fdw; do
			logged "$log" make -C "contrib/$m" -j"$JOBS" install
		done
	)
	touch "$STAMP"
}

build_pgtap() {
	local log=$BUILD/pgtap.log
	mkdir -p "$BUILD"
	say "building pgTAP 1.3.4 into $PREFIX"
	rm -rf "$BUILD"/pgtap-*
	tar -xzf "$PGTAP_TARBALL" -C "$BUILD"
	logged "$log" make -C "$BUILD/pgtap-1.3.4" PG_CONFIG="$PG_CONFIG" install
}

if [[ ! -e $STAMP || ! -x $PG_CONFIG ]]; then
	build_postgres
fi
say "PostgreSQL: $("$PG_CONFIG" --version) in $PREFIX"
if [[ ! -e $("$PG_CONFIG" --sharedir)/extension/pgtap.control ]]; then
	build_pgtap
fi

say "building brandbos against $PG_CONFIG with -Werror"
make -C "$ROOT" --no-print-directory PG_CONFIG="$PG_CONFIG" BRANDBOS_WERROR=1 all install \
	>/dev/null
if [[ $BUILD_ONLY == 1 ]]; then
	exit 0
fi

say "test/run.sh against $PREFIX/bin"
export PGBIN=$PREFIX/bin PG_CONFIG
export BB_ONLY=${BB_ONLY:-regress,pgtap,unit,scenarios,asan}
exec "$ROOT/test/run.sh"
