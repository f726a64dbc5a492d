#!/usr/bin/env bash
# Build Citus from ../shared/vendor (or BB_VENDOR) against the PostgreSQL that PG_CONFIG names,
# staged into BB_CITUS_PREFIX (default /var/cache/brandbos/citus-<version>-pg<major>), and
# install the staged files into that PostgreSQL's tree.  The staged copy is reused while the
# tarball's checksum and the server's version are unchanged, so only the first run compiles
# (about 6 minutes on 2 cores).  Prints nothing on a cache hit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
# BB_VENDOR, else ../shared/vendor beside the checkout, else the workplace's /work/shared/vendor
vendor=${BB_VENDOR:-}
if [[ -z $vendor ]]; then
	vendor=$root/../shared/vendor
	[[ -d $vendor ]] || vendor=/work/shared/vendor
fi
version=13.2.2
tarball=$vendor/citus-$version.tar.gz
[[ -f $tarball ]] || { echo "citus build: $tarball not found (set BB_VENDOR)" >&2; exit 1; }
major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
prefix=${BB_CITUS_PREFIX:-/var/cache/brandbos/citus-$version-pg$major}
stamp="$(sha256sum "$tarball" | cut -c1-64) $("$PG_CONFIG" --version)"

# Citus's build needs compression and GSS headers and libpq beside the server headers
need=()
for p in liblz4-dev libzstd-dev libkrb5-dev libpq-dev; do
	[[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) == "install ok installed" ]] || need+=("$p")
done
if (( ${#need[@]} )); then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
		{ DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 &&
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; } ||
		{ echo "citus build: cannot install ${need[*]}" >&2; exit 1; }
fi

if [[ $(cat "$prefix/.stamp" 2>/dev/null) != "$stamp" ]]; then
	echo "citus build: compiling Citus $version for PostgreSQL $major into $prefix" >&2
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	tar -xzf "$tarball" -C "$work"
	src=$work/citus-$version
	# PostgreSQL 15.20 exports have_createdb_privilege(); Citus 13.2.2 still carries a static
	# copy for older minors, which no longer compiles: drop that copy (the vendor README's fix)
	python3 - "$src/src/include/pg_version_compat.h" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s2 = re.sub(r'static inline bool\s*\nhave_createdb_privilege\(void\)\s*\{.*?\n\}\n', '', s, flags=re.S)
open(p, 'w').write(s2)
PY
	(cd "$src" && ./configure PG_CONFIG="$PG_CONFIG" --without-libcurl >"$work/configure.log" 2>&1) ||
		{ tail -30 "$work/configure.log" >&2; exit 1; }
	(cd "$src" && make -j2 with_llvm=no >"$work/make.log" 2>&1) || { tail -40 "$work/make.log" >&2; exit 1; }
	rm -rf "$prefix.new"
	(cd "$src" && make with_llvm=no install DESTDIR="$prefix.new" >"$work/install.log" 2>&1) ||
		{ tail -30 "$work/install.log" >&2; exit 1; }
	echo "$stamp" >"$prefix.new/.stamp"
	rm -rf "$prefix" && mv "$prefix.new" "$prefix"
fi

# install the staged files into the PostgreSQL that PG_CONFIG names (its own tree, which may
# be a private copy: DESTDIR paths are absolute paths of the tree Citus was built against)
libdir=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)
built_libdir=$(cd "$prefix" && find . -name citus.so -printf '%h\n' | head -1 | sed 's|^\.||')
built_sharedir=$(cd "$prefix" && find . -name citus.control -printf '%h\n' | head -1 | sed 's|^\.||; s|/extension$||')
[[ -n $built_libdir && -n $built_sharedir ]] || { echo "citus build: staged tree in $prefix is incomplete" >&2; exit 1; }
if ! cmp -s "$prefix$built_libdir/citus.so" "$libdir/citus.so"; then
	cp -a "$prefix$built_libdir"/. "$libdir"/
	cp -a "$prefix$built_sharedir/extension"/. "$sharedir/extension"/
fi
