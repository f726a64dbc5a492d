#!/usr/bin/env bash
# test/package/deb_test.sh — `make test-deb`: the Debian package, built, installed with dpkg
# on this machine, smoke-tested on a real server, and removed again.
#
#   1. the versions agree (brandbos.control, debian/changelog, META.json) and the Makefile's
#      DATA lists every sql/brandbos--*.sql of the tree
#   2. test/package/build_deb.sh builds postgresql-15-brandbos_<version>_<arch>.deb without a
#      compiler warning; its control fields name the version and depend on libsodium23 and
#      postgresql-15
#   3. every brandbos file in the system's PostgreSQL tree (what `make test`'s `make install`
#      put there, and scripts of older versions) is saved; `make uninstall` with the
#      system's pg_config removes them (the rest are removed by name); the package goes in
#      with `dpkg -i`, and `dpkg -L` lists the library, the control file and every script
#      of DATA
#   4. a preloaded throwaway cluster of the system's PostgreSQL runs the smoke test of each
#      pillar (test/package/smoke.sh)
#   5. `dpkg --purge` removes every file again, and the saved files are put back exactly as
#      they were (checked by checksum) — also when a step fails or the run is interrupted
#      (EXIT trap)
#
# Environment:
#   BB_DEB_PG            PostgreSQL major of the package (15)
#   BB_DEB_PORT          port of the throwaway cluster (55640; it listens on a socket only)
#   BB_DEB_OUT           build directory (default $BB_WORK/deb, see build_deb.sh)
# Needs root (or sudo) for dpkg and the system tree.  Output is TAP; the last line is
# "N passed, M failed"; the exit status is non-zero when anything failed.
set -euo pipefail
PGMAJOR=${BB_DEB_PG:-15}
export PGBIN=/usr/lib/postgresql/$PGMAJOR/bin        # the system's server, which the package serves
# shellcheck source-path=SCRIPTDIR source=../scenarios/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scenarios/lib.sh"
# shellcheck source-path=SCRIPTDIR source=smoke.sh
. "$(dirname "${BASH_SOURCE[0]}")/smoke.sh"
cd "$BB_ROOT"

PKG=postgresql-$PGMAJOR-brandbos
SYS_PG_CONFIG=$PGBIN/pg_config
OUT=${BB_DEB_OUT:-$BB_WORK/deb}
export BB_DEB_OUT=$OUT
CLUSTER=deb_pkg
LOG=$OUT/deb_test.log                  # make uninstall, dpkg, tar
SAVED=$OUT/system_before.tar           # the system tree's brandbos files before the test
SUMS=$OUT/system_before.sha256
SUDO=()
if [[ $EUID -ne 0 ]]; then SUDO=(sudo); fi

# ---- putting the system tree back ---------------------------------------------------------
WINDOW=0                 # 1 from the first change of the system tree until it is restored
PKGLIB=$("$SYS_PG_CONFIG" --pkglibdir)
EXTDIR=$("$SYS_PG_CONFIG" --sharedir)/extension

dpkg_do() { "${SUDO[@]}" dpkg "$@" >>"$LOG" 2>&1 </dev/null; }

pkg_status() {
	local s
	s=$(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null || true)
	echo "${s:-not-installed}"
}

# brandbos's files in the system tree, whoever put them there (absolute paths, sorted)
system_files() {
	{
		compgen -G "$PKGLIB/brandbos.so" || true
		compgen -G "$PKGLIB/bitcode/brandbos.index.bc" || true
		if [[ -d $PKGLIB/bitcode/brandbos ]]; then find "$PKGLIB/bitcode/brandbos" -type f; fi
		compgen -G "$EXTDIR/brandbos.control" || true
		compgen -G "$EXTDIR/brandbos--*.sql" || true
	} | sort
}

# make in this checkout against the system's pg_config
# shellcheck disable=SC2317   # also reached from the EXIT trap
system_make() {
	"${SUDO[@]}" make -C "$BB_ROOT" --no-print-directory "$1" PG_CONFIG="$SYS_PG_CONFIG" \
		>>"$LOG" 2>&1 </dev/null
}

# purge the package if it is there, then put the saved files back
restore_system() {
	bb_cluster_stop "$CLUSTER" immediate >/dev/null 2>&1 || true
	if [[ $(pkg_status) != not-installed ]]; then dpkg_do --purge "$PKG" || true; fi
	if [[ -s $SAVED ]]; then
		"${SUDO[@]}" tar -C / -xpf "$SAVED" >>"$LOG" 2>&1 ||
			echo "# deb_test.sh: could not put $SAVED back (see $LOG)" >&2
	fi
	WINDOW=0
}

# shellcheck disable=SC2317   # the EXIT trap
_deb_exit() {
	local rc=$?
	set +e
	exec 1>&8 2>&9       # the trap may fire inside a call whose output is redirected
	if (( WINDOW )); then
		echo "# restoring the system's PostgreSQL tree after an early exit"
		restore_system
	fi
	if (( ! SC_FINISHED )); then
		local last
		last=$(tail -n 20 "$(bb_logfile "$CLUSTER")" 2>/dev/null || true)
		if [[ -n $last ]]; then
			fail "deb_test.sh ran to its end (it stopped with exit status $rc)" "$last"
		else
			fail "deb_test.sh ran to its end (it stopped with exit status $rc)"
		fi
		SC_FINISHED=1
		printf '1..%d\n' "$SC_N"
		echo "$((SC_N - SC_FAILED)) passed, $SC_FAILED failed"
		(( rc != 0 )) || rc=1
	fi
	(exit "$rc")
	_sc_exit             # lib.sh's: removes the cluster, exits with rc
}
exec 8>&1 9>&2           # the real stdout and stderr, for the EXIT trap
trap _deb_exit EXIT
trap 'exit 130' INT TERM

finish() {
	SC_FINISHED=1
	printf '1..%d\n' "$SC_N"
	echo "$((SC_N - SC_FAILED)) passed, $SC_FAILED failed"
	if (( SC_FAILED > 0 )); then exit 1; fi
	exit 0
}

# ---- 1. versions and scripts --------------------------------------------------------------
mkdir -p "$OUT"
: >"$LOG"
VERSION=$(test/package/version.sh control)
check "debian/changelog and META.json carry brandbos.control's version $VERSION" \
	test/package/version.sh check

# shellcheck disable=SC2016   # $(...) is for make
DATA=$(make -s --no-print-directory -f Makefile -f - bb-print-data PG_CONFIG="$SYS_PG_CONFIG" \
	<<<'bb-print-data: ; @echo "$(DATA)"')
read -r -a DATA <<<"$DATA"
mapfile -t TREE < <(cd "$BB_ROOT" && ls sql/brandbos--*.sql)
assert_eq "the Makefile's DATA lists every sql/brandbos--*.sql of the tree" \
	"$(printf '%s\n' "${TREE[@]}" | sort)" "$(printf '%s\n' "${DATA[@]}" | sort)"

# ---- 2. the build ---------------------------------------------------------------------------
ARCH=$(dpkg --print-architecture)
DEB=$OUT/${PKG}_${VERSION}_$ARCH.deb
if test/package/build_deb.sh >"$OUT/built.txt" 2>"$OUT/build.err"; then
	pass "dpkg-buildpackage -us -uc -b succeeds (make deb)"
else
	fail "dpkg-buildpackage -us -uc -b succeeds (make deb)" "$(tail -n 20 "$OUT/build.err")"
	finish
fi
if grep -qxF "$DEB" "$OUT/built.txt"; then
	pass "it produced $(basename "$DEB")"
else
	fail "it produced $(basename "$DEB")" "built: $(tr '\n' ' ' <"$OUT/built.txt")"
	finish
fi
assert_eq "the build log has no compiler warning" "0" \
	"$(grep -cE '\.(c|h):[0-9]+(:[0-9]+)?: warning: ' "$OUT/build.log" || true)"
assert_eq "control: package, version, architecture" "$PKG $VERSION $ARCH" \
	"$(dpkg-deb -f "$DEB" Package Version Architecture | awk -F': ' '{printf "%s%s", (NR > 1 ? " " : ""), $2}')"
DEPENDS=$(dpkg-deb -f "$DEB" Depends)
assert_match "Depends names libsodium23 (from shlibs)" '(^|, )libsodium23( |,|$)' "$DEPENDS"
assert_match "Depends names postgresql-$PGMAJOR (from pg_buildext's substvars)" \
	"(^|, )postgresql-$PGMAJOR( |,|$)" "$DEPENDS"

# ---- 3. out with make uninstall, in with dpkg -------------------------------------------------
FILES=("$PKGLIB/brandbos.so" "$EXTDIR/brandbos.control")
for f in "${DATA[@]}"; do FILES+=("$EXTDIR/$(basename "$f")"); done

if [[ $(pkg_status) != not-installed ]]; then
	fail "$PKG is not installed before the test" \
		"it is ($(pkg_status)): remove it first (dpkg --purge $PKG); a run that was killed" \
		"before it could clean up left the files it had saved in $SAVED (tar -C / -xpf it)"
	finish
fi
mapfile -t BEFORE < <(system_files)
rm -f "$SAVED" "$SUMS"
if (( ${#BEFORE[@]} )); then
	tar -C / -cpf "$SAVED" "${BEFORE[@]#/}" && sha256sum "${BEFORE[@]}" >"$SUMS"
fi
diag "saved ${#BEFORE[@]} brandbos files of the system tree in $SAVED"
WINDOW=1
check "make uninstall (system pg_config)" system_make uninstall
mapfile -t LEFT < <(system_files)
if (( ${#LEFT[@]} )); then
	diag "not removed by make uninstall (not in this DATA), removed by name: ${LEFT[*]}"
	"${SUDO[@]}" rm -f "${LEFT[@]}"
fi
assert_eq "no brandbos file is left in the system tree before dpkg -i" "" "$(system_files | tr '\n' ' ')"

check "dpkg -i $(basename "$DEB")" dpkg_do -i "$DEB"
assert_eq "dpkg records $PKG as installed" "installed" "$(pkg_status)"
LISTED=$(dpkg -L "$PKG" 2>/dev/null || true)
for f in "${FILES[@]}"; do
	if grep -qxF "$f" <<<"$LISTED" && [[ -f $f ]]; then
		pass "dpkg -L lists $f"
	else
		fail "dpkg -L lists $f"
	fi
done
assert_eq "dpkg -S: the server's brandbos.so belongs to $PKG" "$PKG" \
	"$(dpkg -S "$PKGLIB/brandbos.so" 2>/dev/null | cut -d: -f1)"

# ---- 4. the smoke test ------------------------------------------------------------------------
sc_cluster "$CLUSTER" "${BB_DEB_PORT:-55640}" yes
smoke_pillars "$CLUSTER"
bb_cluster_stop "$CLUSTER"

# ---- 5. out with dpkg, back with make install -------------------------------------------------
check "dpkg --purge $PKG" dpkg_do --purge "$PKG"
assert_eq "dpkg records $PKG as not installed" "not-installed" "$(pkg_status)"
left=()
for f in "${FILES[@]}"; do if [[ -e $f ]]; then left+=("$f"); fi; done
assert_eq "the purge left no brandbos file" "" "${left[*]}"
restore_system
if (( ${#BEFORE[@]} )); then
	if sha256sum --quiet -c "$SUMS" >>"$LOG" 2>&1 &&
			[[ $(system_files) == "$(printf '%s\n' "${BEFORE[@]}")" ]]; then
		pass "the ${#BEFORE[@]} saved files are back, unchanged, and no other"
	else
		fail "the ${#BEFORE[@]} saved files are back, unchanged, and no other" "see $LOG"
	fi
fi
WINDOW=0
finish
