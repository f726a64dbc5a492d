#!/usr/bin/env bash
# Install whatever brandbos needs to build and test that is missing (Debian/Ubuntu).
# Idempotent and silent when everything is there; otherwise one apt-get update, one
# apt-get install, and one line saying what was installed.  Used by make test/demo/bench;
# `deps.sh deb` (make deb, make test-deb) installs only the packaging list below.
set -euo pipefail

PACKAGES=(
	gcc make libc6-dev pkg-config            # compiler toolchain
	postgresql-15 postgresql-client-15       # server and psql
	postgresql-server-dev-15                 # PGXS headers (pulls in clang-14 for bitcode)
	libsodium-dev
	postgresql-15-pgtap
	libtap-parser-sourcehandler-pgtap-perl   # pg_prove
	postgresql-common                        # pg_virtualenv, pg_wrapper
	procps                                   # ps, pgrep for the scenario scripts
	binutils                                 # strings, for the on-disk plaintext scans
	python3-minimal                          # hash recomputation in the audit tamper scenarios
	clang-14 libclang-rt-14-dev              # libFuzzer + ASan/UBSan runtimes (make fuzz, test-asan)
	clang-tidy-14 cppcheck                   # make lint
	pgbouncer                                # the transaction-pooling scenarios
	python3-psycopg                          # psycopg 3: the PostgREST-shaped client (scenario 33)
	bison flex libssl-dev zlib1g-dev         # PostgreSQL 18 built from source (make test-pg18)
)

# make deb / make test-deb (test/package/): debian/control's Build-Depends, dpkg-buildpackage,
# and the server and python3 the package test uses.  `deps.sh deb` installs only these.
DEB_PACKAGES=(
	debhelper dpkg-dev postgresql-server-dev-all libsodium-dev pkg-config gcc make
	postgresql-15 postgresql-client-15 postgresql-common python3-minimal
)
case ${1:-all} in
	all) PACKAGES+=("${DEB_PACKAGES[@]}") ;;
	deb) PACKAGES=("${DEB_PACKAGES[@]}") ;;
	*) echo "usage: $0 [all|deb]" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $status == "install ok installed" ]] || missing+=("$p")
done
(( ${#missing[@]} )) || exit 0

if ! command -v apt-get >/dev/null; then
	echo "deps.sh: missing ${missing[*]}, and apt-get is not available; install them by hand" >&2
	exit 1
fi

SUDO=()
if [[ $EUID -ne 0 ]]; then
	if command -v sudo >/dev/null; then
		SUDO=(sudo)
	else
		echo "deps.sh: missing ${missing[*]}; run as root (or install sudo) to install them" >&2
		exit 1
	fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
		"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "${missing[@]}"; } >"$log" 2>&1 </dev/null; then
	tail -n 40 "$log" >&2
	echo "deps.sh: installing ${missing[*]} failed" >&2
	exit 1
fi
echo "deps.sh: installed ${missing[*]}"
