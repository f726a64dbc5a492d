#!/usr/bin/env bash
# 10_no_plaintext_on_disk — plaintext of protected columns never reaches a data file, the
# WAL or the server log (SPEC section 2, "Trigger semantics").
#
# A table with a protected text column and a protected bytea column gets a secret marker
# through every write path (single-row INSERT, INSERT ... SELECT of 1000 rows, COPY FROM
# STDIN, UPDATE, INSERT ... ON CONFLICT DO UPDATE SET token = EXCLUDED.token); an
# unprotected column gets a different control marker.  After CHECKPOINT the data
# directory and the WAL are scanned as raw bytes: the control marker must be found (the
# scan works), the secret marker must not.  The decrypted view must still return it.
# Statements that fail on the protected table (NOT NULL, CHECK, unique) must not put the
# plaintext into the log: the failing statements build the marker from pieces so that
# PostgreSQL's own statement logging cannot contain it; "Failing row contains (...)"
# is printed after the BEFORE trigger ran and so must show only envelopes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C=s10_no_plaintext
sc_cluster "$C" 55510 no
sc_helpers "$C"

HEX=$(head -c 8 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
SECRET=MARKER_$HEX
HEXC=$(head -c 8 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
CONTROL=CONTROL_$HEXC
# the secret as PostgreSQL prints a bytea in hex output format (without the \x)
SECRET_BYTEA_HEX=$(printf '%s' "$SECRET" | od -An -v -tx1 | tr -d ' \n')
diag "secret marker $SECRET, control marker $CONTROL"

bb_psql "$C" >/dev/null <<SQL
CREATE EXTENSION brandbos;
CREATE TABLE secrets (
	id		integer PRIMARY KEY,
	label	text NOT NULL,
	token	text,
	blob	bytea,
	note	text CHECK (note IS DISTINCT FROM 'forbidden')
);
SELECT brandbos.protect_column('secrets', 'token');
SELECT brandbos.protect_column('secrets', 'blob');

-- single-row INSERTs
INSERT INTO secrets VALUES (1, '${CONTROL}_1', '${SECRET}_single1', convert_to('${SECRET}_bin1', 'UTF8'));
INSERT INTO secrets VALUES (2, '${CONTROL}_2', '${SECRET}_single2', convert_to('${SECRET}_bin2', 'UTF8'));
-- INSERT ... SELECT of 1000 rows
INSERT INTO secrets
	SELECT g, '${CONTROL}_' || g, '${SECRET}_bulk' || g, convert_to('${SECRET}_bulkbin' || g, 'UTF8')
	  FROM generate_series(100, 1099) g;
-- an UPDATE that sets new marked values
UPDATE secrets SET token = '${SECRET}_updated', blob = convert_to('${SECRET}_updbin', 'UTF8')
 WHERE id = 2;
-- INSERT ... ON CONFLICT DO UPDATE SET token = EXCLUDED.token (one conflicting, one new)
INSERT INTO secrets VALUES (1, '${CONTROL}_1', '${SECRET}_upsert1', NULL)
	ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;
INSERT INTO secrets VALUES (3, '${CONTROL}_3', '${SECRET}_upsert3', convert_to('${SECRET}_upsbin3', 'UTF8'))
	ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;
SQL

# COPY FROM STDIN (text format; bytea in hex input format)
{
	echo 'COPY secrets (id, label, token, blob) FROM STDIN;'
	for i in 2001 2002 2003; do
		printf '%s\t%s\t%s\t\\\\x%s\n' "$i" "${CONTROL}_$i" "${SECRET}_copy$i" \
			"$(printf '%s' "${SECRET}_copybin$i" | od -An -v -tx1 | tr -d ' \n')"
	done
	echo '\.'
} | bb_psql "$C"

# ---- read back ------------------------------------------------------------------------------

# every row carries the secret in token; blob carries it except for row 1's upsert (NULL)
# ... but row 1 kept its blob: ON CONFLICT only set token.
got=$(sc_try "$C" "SELECT count(*) FILTER (WHERE token LIKE '${SECRET}%'),
                          count(*) FILTER (WHERE convert_from(blob, 'UTF8') LIKE '${SECRET}%'),
                          count(*)
                     FROM secrets_decrypted")
assert_eq "decrypted view returns every marked value (text and bytea)" "1006|1006|1006" "$got"

got=$(sc_try "$C" "SELECT string_agg(id || '=' || token || '/' || convert_from(blob, 'UTF8'), ' ' ORDER BY id)
                     FROM secrets_decrypted WHERE id IN (1, 2, 3, 2002)")
assert_eq "each write path stored the value it was given" \
	"1=${SECRET}_upsert1/${SECRET}_bin1 2=${SECRET}_updated/${SECRET}_updbin 3=${SECRET}_upsert3/${SECRET}_upsbin3 2002=${SECRET}_copy2002/${SECRET}_copybin2002" \
	"$got"

got=$(sc_try "$C" "SELECT count(*) FILTER (WHERE token LIKE 'bbx1:%'),
                          count(*) FILTER (WHERE position(convert_to('MARKER_', 'UTF8') IN blob) = 0),
                          count(*) FILTER (WHERE token LIKE '%MARKER%')
                     FROM secrets")
assert_eq "raw table holds only envelopes (bbx1: text, no marker in bytea)" "1006|1006|0" "$got"

# ---- failing statements on the protected table ----------------------------------------------
# The marker is assembled at run time from pieces: the statement text never contains it.
SPLIT="concat('MARK', 'ER_', '$HEX', '_failed')"
SPLITB="convert_to(concat('MARK', 'ER_', '$HEX', '_failedbin'), 'UTF8')"
got=$(sc_sqlstate "$C" "INSERT INTO secrets (id, label, token, blob) VALUES (5001, NULL, $SPLIT, $SPLITB)")
assert_eq "NOT NULL violation in the same row as a secret fails with 23502" "23502" "$got"
got=$(sc_sqlstate "$C" "INSERT INTO secrets (id, label, token, blob, note) VALUES (5002, 'x', $SPLIT, $SPLITB, 'forbidden')")
assert_eq "CHECK violation in the same row as a secret fails with 23514" "23514" "$got"
got=$(sc_sqlstate "$C" "INSERT INTO secrets (id, label, token, blob) VALUES (1, 'x', $SPLIT, $SPLITB)")
assert_eq "unique violation in the same row as a secret fails with 23505" "23505" "$got"
# The same, without the helper: an error a client sees and the server logs as is.
out=$(bb_psql "$C" -c "INSERT INTO secrets (id, label, token, blob) VALUES (5003, NULL, $SPLIT, $SPLITB)" 2>&1 || true)
if [[ $out == *MARKER_* ]]; then
	fail "error message and detail sent to the client show no plaintext" "$out"
else
	pass "error message and detail sent to the client show no plaintext"
fi
if [[ $out == *"Failing row contains"*bbx1:* ]]; then
	pass "the client's 'Failing row contains' detail shows the envelope instead"
else
	fail "the client's 'Failing row contains' detail shows the envelope instead" "$out"
fi

# ---- CHECKPOINT, then scan ------------------------------------------------------------------
bb_psql "$C" -c 'CHECKPOINT'
DATA=$(bb_datadir "$C")
LOG=$(bb_logfile "$C")

# files (relative to the data directory) of AREA containing STRING, as raw bytes
files_with() {
	local string=$2 areas
	read -r -a areas <<<"$1"
	(cd "$DATA" && grep -rlaF --binary-files=text -- "$string" "${areas[@]}" 2>/dev/null) || true
}

hits=$(files_with "base global" "$CONTROL")
if [[ -n $hits ]]; then
	pass "control marker (unprotected column) is found in base/ or global/ (the scan works)"
else
	fail "control marker (unprotected column) is found in base/ or global/ (the scan works)"
fi
hits=$(files_with pg_wal "$CONTROL")
if [[ -n $hits ]]; then
	pass "control marker is found in pg_wal/ (the scan works)"
else
	fail "control marker is found in pg_wal/ (the scan works)"
fi

hits=$(files_with "base global" "$SECRET")
if [[ -z $hits ]]; then
	pass "secret marker is in no file under base/ or global/"
else
	fail "secret marker is in no file under base/ or global/" "found in: $hits"
fi
hits=$(files_with pg_wal "$SECRET")
if [[ -z $hits ]]; then
	pass "secret marker is in no WAL segment under pg_wal/"
else
	fail "secret marker is in no WAL segment under pg_wal/" "found in: $hits"
fi
hits=$(files_with . "$HEX")
if [[ -z $hits ]]; then
	pass "the marker's random part is in no file anywhere in the data directory"
else
	fail "the marker's random part is in no file anywhere in the data directory" "found in: $hits"
fi
# count of matching lines in the WAL, as an extra sanity check of grep -a -c
n=$(cat "$DATA"/pg_wal/0* | grep -a -c -F -- "$CONTROL" || true)
if (( n > 0 )); then
	pass "grep -a -c counts the control marker in the WAL ($n lines)"
else
	fail "grep -a -c counts the control marker in the WAL ($n lines)"
fi

# ---- the server log -------------------------------------------------------------------------
if grep -qF -- "Failing row contains" "$LOG" && grep -F -- "Failing row contains" "$LOG" | grep -qF 'bbx1:'; then
	pass "server log has the 'Failing row contains' detail, showing envelopes"
else
	fail "server log has the 'Failing row contains' detail, showing envelopes" "$(grep -F 'Failing row' "$LOG" || true)"
fi
# (the failing statements are logged with their text, which holds the marker's pieces
# but never the assembled marker)
if grep -aqF -- "$SECRET" "$LOG"; then
	fail "secret marker is not in the server log" "$(grep -aF -- "$SECRET" "$LOG" | head -n 5)"
else
	pass "secret marker is not in the server log"
fi
if grep -aqiF -- "$SECRET_BYTEA_HEX" "$LOG"; then
	fail "secret marker in bytea hex form is not in the server log"
else
	pass "secret marker in bytea hex form is not in the server log"
fi

check "server did not crash" bash -c "! grep -qE 'terminated by signal|PANIC' '$LOG'"
sc_finish
