#!/usr/bin/env bash
# test/package/build_deb.sh — `make deb`: the Debian package(s) of debian/, built with
# `dpkg-buildpackage -us -uc -b` in a copy of the source tree, so that the checkout gets
# none of the build's files (build-<major>/, debian/postgresql-*/, ...).
#
#   BB_DEB_OUT   where it all goes (default $BB_WORK/deb, i.e. tmp_check/deb): the copy
#                brandbos-<version>/, the .deb, .buildinfo and .changes files dpkg-buildpackage
#                writes beside it, and build.log
#
# Prints the path of each .deb built, one a line.  Exits non-zero (the end of build.log on
# stderr) when the versions disagree (test/package/version.sh check) or the build fails.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${BB_WORK:-$ROOT/tmp_check}
OUT=${BB_DEB_OUT:-$WORK/deb}
export LC_ALL=C

"$ROOT/test/package/version.sh" check
version=$("$ROOT/test/package/version.sh" control)
stage=$OUT/brandbos-$version
log=$OUT/build.log

mkdir -p "$OUT"
# only what an earlier run made here, never the whole directory (it may be a user's)
rm -rf "$OUT"/brandbos-*/
rm -f "$OUT"/*.deb "$OUT"/*.ddeb "$OUT"/*.buildinfo "$OUT"/*.changes "$log"
mkdir -p "$stage"

# The files of the source: in a git checkout, those git tracks or would add (so .gitignore
# keeps build output, clusters and logs out); otherwise the tree less the usual output.
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [[ -f $f ]] && printf '%s\0' "$f"; done |
		tar --null -T - -cf -) | tar -C "$stage" -xf -
else
	tar -C "$ROOT" --exclude=./tmp_check --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
		--exclude=./debian/.debhelper -cf - . | tar -C "$stage" -xf -
fi

if ! (cd "$stage" && dpkg-buildpackage -us -uc -b -j"$(nproc 2>/dev/null || echo 2)") >"$log" 2>&1 </dev/null; then
	tail -n 40 "$log" >&2
	echo "build_deb.sh: dpkg-buildpackage failed; the whole output is in $log" >&2
	exit 1
fi
shopt -s nullglob
debs=("$OUT"/*.deb)
if (( ${#debs[@]} == 0 )); then
	echo "build_deb.sh: dpkg-buildpackage wrote no .deb into $OUT" >&2
	exit 1
fi
printf '%s\n' "${debs[@]}"
