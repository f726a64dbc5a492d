#!/usr/bin/env bash
# test/lint.sh — static analysis of src/*.c as TAP: cppcheck, then clang-tidy with the
# checks of .clang-tidy (the analyzer and bugprone).  Any finding fails.  `make lint`
# runs it; `make test` runs it as its lint step.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
INC=$("$PG_CONFIG" --includedir-server) || exit 1
mapfile -t FILES < <(ls src/*.c)
failed=0

log=$(mktemp)
trap 'rm -f "$log"' EXIT

if ! command -v cppcheck >/dev/null; then
	echo "not ok 1 - cppcheck is installed (run test/deps.sh)"
	failed=1
elif cppcheck --quiet --error-exitcode=1 --enable=warning,portability --std=c99 \
		--suppress=missingIncludeSystem -I src -I "$INC" -D__GNUC__ "${FILES[@]}" >"$log" 2>&1; then
	echo "ok 1 - cppcheck: 0 findings in ${#FILES[@]} files"
else
	echo "not ok 1 - cppcheck: $(grep -c ': \(warning\|error\|portability\)' "$log") findings"
	sed 's/^/# /' "$log" | head -n 40
	failed=1
fi

TIDY=$(command -v clang-tidy-14 || command -v clang-tidy || true)
if [[ -z $TIDY ]]; then
	echo "not ok 2 - clang-tidy is installed (run test/deps.sh)"
	failed=1
else
	: >"$log"
	for f in "${FILES[@]}"; do
		"$TIDY" --quiet "$f" -- -std=gnu99 -I src -I "$INC" -I /usr/include/postgresql/internal \
			-D_GNU_SOURCE $(pkg-config --cflags libsodium 2>/dev/null) >>"$log" 2>&1 || true
	done
	n=$(grep -cE '(warning|error): ' "$log" || true)
	if (( n == 0 )); then
		echo "ok 2 - clang-tidy (analyzer + bugprone, see .clang-tidy): 0 warnings in ${#FILES[@]} files"
	else
		echo "not ok 2 - clang-tidy: $n warnings"
		grep -E -A3 '(warning|error): ' "$log" | head -n 60 | sed 's/^/# /'
		failed=1
	fi
fi
echo "1..2"
exit "$failed"
