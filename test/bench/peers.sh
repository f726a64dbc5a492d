#!/usr/bin/env bash
# Build the peers brandbos is benchmarked against (SPEC 7, issue 16) and install them into the
# PostgreSQL that PG_CONFIG names:
#   pgsodium 3.1.9, Supabase Vault 0.3.1, supa_audit 0.3.1   from ../shared/vendor (BB_VENDOR)
#   pgaudit                                                  from Debian (postgresql-15-pgaudit)
#   pgcrypto                                                 ships with PostgreSQL (checked only)
# Each vendor peer is built once, staged into BB_PEERS_PREFIX (default
# /var/cache/brandbos/peers-pg<major>/<name>) with a stamp of its tarball's checksum and the
# server version, and copied into the tree from there afterwards.  pgaudit's Debian files live in
# the system tree; for a private tree (PG_CONFIG not the system one) they are copied into it.
# A peer that cannot be built is left out and listed on stdout as "missing NAME: reason";
# available peers are listed as "ok NAME".  Never fails because of a peer.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
vendor=${BB_VENDOR:-}
if [[ -z $vendor ]]; then
	vendor=$root/../shared/vendor
	[[ -d $vendor ]] || vendor=/work/shared/vendor
fi
major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
cache=${BB_PEERS_PREFIX:-/var/cache/brandbos/peers-pg$major}
libdir=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)
mkdir -p "$cache" 2>/dev/null || cache=$(mktemp -d)

# put_lib FILE DIR: install a shared library into DIR only when it differs, through a rename:
# copying over the file in place would change the pages of a running server that has it
# mapped (a bench cluster crashes with SIGSEGV when peers.sh runs beside it)
put_lib() {
	local dst=$2/${1##*/}
	cmp -s "$1" "$dst" && return 0
	cp -a "$1" "$dst.peers-tmp" && mv -f "$dst.peers-tmp" "$dst"
}

# stage_vendor NAME TARBALL-BASENAME: build one PGXS peer into $cache/NAME (cached), then copy
stage_vendor() {
	local name=$1 base=$2 tarball=$vendor/$2.tar.gz stamp work src
	if [[ ! -f $tarball ]]; then
		echo "missing $name: $tarball not found"
		return 1
	fi
	stamp="$(sha256sum "$tarball" | cut -c1-64) $("$PG_CONFIG" --version)"
	if [[ $(cat "$cache/$name/.stamp" 2>/dev/null) != "$stamp" ]]; then
		work=$(mktemp -d)
		tar -xzf "$tarball" -C "$work" || { echo "missing $name: cannot unpack $tarball"; rm -rf "$work"; return 1; }
		src=$work/$base
		rm -rf "$cache/$name.new"
		if ! (cd "$src" && make PG_CONFIG="$PG_CONFIG" with_llvm=no >"$work/make.log" 2>&1 &&
				make PG_CONFIG="$PG_CONFIG" with_llvm=no install DESTDIR="$cache/$name.new" >>"$work/make.log" 2>&1); then
			echo "missing $name: build failed: $(tail -3 "$work/make.log" | tr '\n' ' ')"
			rm -rf "$work" "$cache/$name.new"
			return 1
		fi
		echo "$stamp" >"$cache/$name.new/.stamp"
		rm -rf "${cache:?}/$name" && mv "$cache/$name.new" "$cache/$name"
		rm -rf "$work"
	fi
	# DESTDIR paths are the absolute paths of the tree built against: copy them into it
	local d
	d=$(find "$cache/$name" -type d -path '*/extension' | head -1)
	[[ -n $d ]] || { echo "missing $name: staged tree has no extension directory"; return 1; }
	cp -a "$d"/. "$sharedir/extension"/
	while IFS= read -r so; do put_lib "$so" "$libdir"; done < <(find "$cache/$name" -name '*.so')
	echo "ok $name"
}

stage_vendor pgsodium pgsodium-3.1.9
if [[ -f $sharedir/extension/pgsodium.control ]]; then
	stage_vendor supabase_vault supabase_vault-0.3.1
else
	echo "missing supabase_vault: needs pgsodium"
fi
stage_vendor supa_audit supa_audit-0.3.1

# pgaudit from Debian: install the package when it is missing (root or sudo), then, for a
# private tree, copy its files over from the system tree
pkg=postgresql-$major-pgaudit
if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true) != "install ok installed" ]]; then
	SUDO=(); [[ $EUID -ne 0 ]] && command -v sudo >/dev/null && SUDO=(sudo)
	DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends "$pkg" >/dev/null 2>&1 ||
		{ DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get update -q >/dev/null 2>&1 &&
		  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends "$pkg" >/dev/null 2>&1; } || true
fi
syslib=/usr/lib/postgresql/$major/lib
sysext=/usr/share/postgresql/$major/extension
if [[ -f $libdir/pgaudit.so ]]; then
	echo "ok pgaudit"
elif [[ -f $syslib/pgaudit.so ]]; then
	put_lib "$syslib/pgaudit.so" "$libdir" && cp -a "$sysext"/pgaudit* "$sharedir/extension"/ && echo "ok pgaudit"
else
	echo "missing pgaudit: $pkg is not installed and could not be installed"
fi

if [[ -f $sharedir/extension/pgcrypto.control ]]; then echo "ok pgcrypto"; else echo "missing pgcrypto: not in $sharedir"; fi
exit 0
