#!/usr/bin/env bash
# 18_envelope_format1_keys — format-1 envelopes written before format 2 keep decrypting, a
# client cannot write new ones, and values keyed by every accepted primary-key type decrypt
# after pg_dump/pg_restore into another database (issue 10, points 7 and 12).
#
# A format-1 envelope needs a data key, which SQL never reveals: mint_format1.c unwraps the
# cluster's data key with its root key file and seals exactly as brandbos did before format 2
# (associated data = the column binding, computed here in SQL by the rule brandbos has always
# used).  That such values decrypt through the _decrypted views proves both that format 1 is
# still read and that the binding of each key type is byte-identical to before.
#
#   src   one table per accepted key type (int, bigint, text, uuid, numeric, date,
#         timestamptz, a domain over text, a domain over int, an enum, int[], and a
#         three-column key), format-2 rows written through the trigger, one format-1 row each
#   new   same schema, format-2 rows only
#   dst1  full pg_restore of src, other TimeZone and DateStyle (triggers come after the data)
#   dst   schema-only restore, then a data-only load through the live triggers: the
#         format-1 values are refused without brandbos.accept_format1_envelopes
#   dst3  the same with the setting on (superuser, PGOPTIONS)
#   dst2  pg_restore of new, no setting, other TimeZone and DateStyle
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C=s14_format1_keys
sc_cluster "$C" 55514 no
SOCK=$(bb_sockdir "$C")
PORT=$(bb_port "$C")
DIR=$(bb_clusterdir "$C")
KEYFILE=$(bb_keyfile "$C")
pgtool() { bb_run_as_pg "$@" -h "$SOCK" -p "$PORT" -U postgres; }
in_db() { local db=$1; shift; BB_DB=$db "$@"; }
# SQLSTATE of one statement run as a role (00000 when it succeeds)
as_role_sqlstate() {
	local db=$1 role=$2 sql=$3
	in_db "$db" sc_try "$C" "LOAD 'brandbos'; SET ROLE $role; SELECT public.sqlstate_of(\$q\$$sql\$q\$)"
}

MINT=$DIR/mint_format1
# shellcheck disable=SC2046   # pkg-config output is word-split on purpose
cc -O1 -Wall -o "$MINT" "$BB_ROOT/test/scenarios/mint_format1.c" \
	$(pkg-config --cflags libsodium 2>/dev/null) $(pkg-config --libs libsodium 2>/dev/null || echo -lsodium)

# table|key columns|a new key (SELECT ... AS key columns)|its binding parts, by the old rule
SPECS=(
	"k_int|k|SELECT 7::int AS k|ARRAY[int4send(k)]"
	"k_bigint|k|SELECT (-5000000000)::bigint AS k|ARRAY[int8send(k)]"
	"k_text|k|SELECT 'clé-ünï €'::text AS k|ARRAY[convert_to(k, 'UTF8')]"
	"k_uuid|k|SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS k|ARRAY[uuid_send(k)]"
	"k_numeric|k|SELECT 12.50::numeric AS k|ARRAY[numeric_send(k)]"
	"k_date|k|SELECT '2024-02-29'::date AS k|ARRAY[date_send(k)]"
	"k_tstz|k|SELECT '2024-03-31 02:30:00+02'::timestamptz AS k|ARRAY[timestamptz_send(k)]"
	"k_code|k|SELECT 'code-9'::code AS k|ARRAY[convert_to(k, 'UTF8')]"
	"k_small|k|SELECT 9::small AS k|ARRAY[int4send(k)]"
	"k_mood|k|SELECT 'tense'::mood AS k|ARRAY[convert_to(k::text, 'UTF8')]"
	"k_intarr|k|SELECT ARRAY[3, 1, 2] AS k|ARRAY[array_send(k)]"
	"k_multi|a, t, d|SELECT 2 AS a, 'zwei'::text AS t, '1999-12-31'::date AS d|ARRAY[int4send(a), convert_to(t, 'UTF8'), date_send(d)]"
)

make_schema() {
	in_db "$1" bb_psql "$C" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE TYPE mood AS ENUM ('calm', 'tense');
CREATE DOMAIN code AS text CHECK (VALUE <> '');
CREATE DOMAIN small AS int CHECK (VALUE > 0);
CREATE TABLE k_int (k int PRIMARY KEY, s text, b bytea, note text);
CREATE TABLE k_bigint (k bigint PRIMARY KEY, s text, b bytea, note text);
CREATE TABLE k_text (k text PRIMARY KEY, s text, b bytea, note text);
CREATE TABLE k_uuid (k uuid PRIMARY KEY, s text, b bytea, note text);
CREATE TABLE k_numeric (k numeric PRIMARY KEY, s text, b bytea, note text);
CREATE TABLE k_date (k date PRIMARY KEY, s text, b bytea, note text);
CREATE TABLE k_tstz (k timestamptz PRIMARY KEY, s text, b bytea, note text);
CREATE TABLE k_code (k code PRIMARY KEY, s text, b bytea, note text);
CREATE TABLE k_small (k small PRIMARY KEY, s text, b bytea, note text);
CREATE TABLE k_mood (k mood PRIMARY KEY, s text, b bytea, note text);
CREATE TABLE k_intarr (k int[] PRIMARY KEY, s text, b bytea, note text);
CREATE TABLE k_multi (a int, t text, d date, s text, b bytea, note text, PRIMARY KEY (a, t, d));
DO $$
DECLARE t text;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 's14_app') THEN
		CREATE ROLE s14_app;
		CREATE ROLE s14_reader;
		GRANT brandbos_decryptor TO s14_reader;
	END IF;
	FOR t IN SELECT c.relname FROM pg_class c WHERE c.relname LIKE 'k\_%' AND c.relkind = 'r'
	           AND c.relnamespace = 'public'::regnamespace LOOP
		PERFORM brandbos.protect_column(t::regclass, 's');
		PERFORM brandbos.protect_column(t::regclass, 'b');
		EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO s14_app, s14_reader', t);
	END LOOP;
END $$;
SQL
	sc_helpers "$C" "$1"
}

# format-2 rows through the trigger, written by the application role in Tokyo time
fill_format2() {
	in_db "$1" bb_psql "$C" >/dev/null <<'SQL'
SET ROLE s14_app;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'German';
INSERT INTO k_int VALUES (1, 's-int-1', '\x01', 'f2'), (-2147483648, 's-int-min', '\x02', 'f2');
INSERT INTO k_bigint VALUES (9223372036854775807, 's-bigint-max', '\x03', 'f2'), (0, 's-bigint-0', '', 'f2');
INSERT INTO k_text VALUES ('alice', 's-text-a', '\x04', 'f2'), ('', 's-text-empty', '\x05', 'f2'),
	('ünïcødé-€', 's-text-u', '\x06', 'f2');
INSERT INTO k_uuid VALUES ('00000000-0000-0000-0000-000000000001', 's-uuid-1', '\x07', 'f2');
INSERT INTO k_numeric VALUES (1.5, 's-num-1.5', '\x08', 'f2'), (-0.000001, 's-num-tiny', '\x09', 'f2'),
	(123456789012345678901234567890.123, 's-num-big', '\x0a', 'f2');
INSERT INTO k_date VALUES ('2000-01-01', 's-date-y2k', '\x0b', 'f2'), ('infinity', 's-date-inf', '\x0c', 'f2');
INSERT INTO k_tstz VALUES ('2024-06-01 12:00:00+09', 's-tstz-noon', '\x0d', 'f2'),
	('1970-01-01 00:00:00 UTC', 's-tstz-epoch', '\x0e', 'f2');
INSERT INTO k_code VALUES ('code-1', 's-code-1', '\x0f', 'f2');
INSERT INTO k_small VALUES (1, 's-small-1', '\x10', 'f2');
INSERT INTO k_mood VALUES ('calm', 's-mood-calm', '\x11', 'f2');
INSERT INTO k_intarr VALUES ('{1,2}', 's-arr-12', '\x12', 'f2'), ('[0:1]={5,6}', 's-arr-lb', '\x13', 'f2');
INSERT INTO k_multi VALUES (1, 'eins', '2024-01-01', 's-multi-1', '\x14', 'f2'), (1, 'eins', '2024-01-02', 's-multi-2', '\x15', 'f2');
SQL
}

# md5 of every table's plaintext (through the views, as a decryptor) or stored values
fingerprint() {
	local db=$1 view=$2 sql="" spec t keys
	for spec in "${SPECS[@]}"; do
		IFS='|' read -r t keys _ _ <<<"$spec"
		sql+="${sql:+ || ' ' || }(SELECT coalesce(md5(string_agg(concat_ws('|', $keys::text, s, encode(b, 'hex'), note), ',' ORDER BY $keys)), '-') FROM $t$view)"
	done
	in_db "$db" sc_try "$C" "SET ROLE s14_reader; SET TimeZone = 'UTC'; SELECT $sql"
}

bb_psql "$C" -c 'CREATE DATABASE src' -c 'CREATE DATABASE new'
make_schema src
make_schema new
fill_format2 src
fill_format2 new
# the binding of a row by the rule brandbos has always used: "bbad1" || column id || for
# each key part a 4-byte length and the bytes (test helper, dropped before the dump)
in_db src bb_psql "$C" >/dev/null <<'SQL'
CREATE FUNCTION public.old_binding(tbl regclass, col name, parts bytea[]) RETURNS bytea LANGUAGE sql AS $$
	SELECT '\x6262616431'::bytea || decode(replace(r.column_id::text, '-', ''), 'hex')
	       || (SELECT string_agg(int4send(length(p)) || p, ''::bytea ORDER BY i)
	             FROM unnest(parts) WITH ORDINALITY u(p, i))
	  FROM brandbos.column_registry r WHERE r.table_oid = tbl AND r.column_name = col
$$;
CREATE FUNCTION public.printable(h text) RETURNS text LANGUAGE sql AS $$
	SELECT 'bbx1:' || translate(encode(decode(h, 'hex'), 'base64'), E'+/=\n', '-_')
$$;
SQL

WRAPPED=$(in_db src sc_try "$C" "SELECT encode(wrapped_key, 'hex') FROM brandbos.data_keys WHERE version = 1")
hex_of() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

# ---- format-1 values, minted as brandbos wrote them before format 2 -------------------------
refused=0
for spec in "${SPECS[@]}"; do
	IFS='|' read -r t keys sel parts <<<"$spec"
	ad_s=$(in_db src sc_try "$C" "SELECT encode(old_binding('$t', 's', $parts), 'hex') FROM ($sel) r")
	ad_b=$(in_db src sc_try "$C" "SELECT encode(old_binding('$t', 'b', $parts), 'hex') FROM ($sel) r")
	env_s=$("$MINT" "$KEYFILE" "$WRAPPED" 1 "$ad_s" "$(hex_of "f1-$t-s")")
	env_b=$("$MINT" "$KEYFILE" "$WRAPPED" 1 "$ad_b" "$(hex_of "f1-$t-b")")
	insert="INSERT INTO $t ($keys, s, b, note) SELECT $keys, printable('$env_s'), decode('$env_b', 'hex'), 'f1' FROM ($sel) r"
	# a client (the application role) cannot write them
	got=$(as_role_sqlstate src s14_app "$insert")
	[[ $got == XX001 ]] || { refused=1; diag "$t: a client's format-1 envelope gave $got, not XX001"; }
	got=$(as_role_sqlstate src s14_app "INSERT INTO $t ($keys, b, note) SELECT $keys, decode('$env_b', 'hex'), 'f1' FROM ($sel) r")
	[[ $got == XX001 ]] || { refused=1; diag "$t: a client's bytea format-1 envelope gave $got, not XX001"; }
	# as stored before the upgrade (a superuser lets them in, as for the restore of an old dump)
	in_db src sc_try "$C" "SET brandbos.accept_format1_envelopes = on; $insert" >/dev/null
done
assert_eq "an application role writing a format-1 envelope that authenticates for its row gets XX001 (every table, text and bytea)" \
	"0" "$refused"
got=$(as_role_sqlstate src s14_app "SET brandbos.accept_format1_envelopes = on")
assert_eq "an application role cannot turn brandbos.accept_format1_envelopes on (42501)" "42501" "$got"

sql=""
for spec in "${SPECS[@]}"; do
	IFS='|' read -r t _ _ _ <<<"$spec"
	sql+="${sql:+ + }(SELECT count(*) FROM $t WHERE note = 'f1' AND brandbos.envelope_format(s) = 1 AND brandbos.envelope_format(b) = 1)"
done
assert_eq "src: one stored format-1 row (text and bytea) in each of the ${#SPECS[@]} tables" "${#SPECS[@]}" \
	"$(in_db src sc_try "$C" "SELECT $sql")"
sql=""
for spec in "${SPECS[@]}"; do
	IFS='|' read -r t _ _ _ <<<"$spec"
	sql+="${sql:+ || ',' || }(SELECT s || '/' || convert_from(b, 'UTF8') FROM ${t}_decrypted WHERE note = 'f1')"
done
expected=""
for spec in "${SPECS[@]}"; do
	IFS='|' read -r t _ _ _ <<<"$spec"
	expected+="${expected:+,}f1-$t-s/f1-$t-b"
done
assert_eq "src: every format-1 value decrypts through its view (format 1 read, binding of every key type unchanged)" \
	"$expected" "$(in_db src sc_try "$C" "SET ROLE s14_reader; SELECT $sql")"
got=$(in_db src sc_try "$C" "SET ROLE s14_reader; SELECT count(*) FROM k_int_decrypted WHERE note = 'f2' AND s LIKE 's-int-%'")
assert_eq "src: format-2 values written through the trigger decrypt" "2" "$got"
got=$(in_db src sc_try "$C" "SELECT count(*) FROM k_text WHERE note = 'f2' AND brandbos.envelope_format(s) = 2 AND brandbos.envelope_format(b) = 2")
assert_eq "src: new seals are format 2" "3" "$got"

# stored format-1 values survive an UPDATE of another column byte for byte
before=$(in_db src sc_try "$C" "SELECT md5(s || encode(b, 'hex')) FROM k_uuid WHERE note = 'f1'")
got=$(as_role_sqlstate src s14_app "UPDATE k_uuid SET note = 'f1' WHERE note = 'f1'")
assert_eq "src: the application role updates another column of a format-1 row" "00000" "$got"
assert_eq "src: the stored format-1 envelopes are kept byte-identical" "$before" \
	"$(in_db src sc_try "$C" "SELECT md5(s || encode(b, 'hex')) FROM k_uuid WHERE note = 'f1'")"
# a primary-key change re-seals: the old value opens (format 1), the new one is format 2
got=$(as_role_sqlstate src s14_app "UPDATE k_small SET k = 10 WHERE note = 'f1'")
assert_eq "src: changing the key of a format-1 row re-seals it" "00000" "$got"
got=$(in_db src sc_try "$C" "SET ROLE s14_reader; SELECT brandbos.envelope_format(t.s) || ' ' || d.s
                               FROM k_small t JOIN k_small_decrypted d USING (k) WHERE t.k = 10")
assert_eq "src: ... into format 2, and it decrypts" "2 f1-k_small-s" "$got"
got=$(as_role_sqlstate src s14_app "UPDATE k_small SET k = 9 WHERE k = 10")
assert_eq "src: (and back to key 9)" "00000" "$got"

# the column domain and the user domain: decrypt() never opens a format-1 column value
ad=$(in_db src sc_try "$C" "SELECT encode(old_binding('k_int', 'b', ARRAY[int4send(7)]), 'hex')")
got=$(as_role_sqlstate src s14_reader "SELECT brandbos.decrypt(b, '\\x$ad'::bytea) FROM k_int WHERE k = 7")
assert_eq "src: decrypt() with the column binding does not open a stored format-1 value (XX001)" "XX001" "$got"
env=$("$MINT" "$KEYFILE" "$WRAPPED" 1 "$(hex_of 'user ad')" "$(hex_of 'old user secret')")
got=$(in_db src sc_try "$C" "SET ROLE s14_reader; SELECT convert_from(brandbos.decrypt('\\x$env'::bytea, 'user ad'), 'UTF8')")
assert_eq "src: a format-1 envelope of encrypt() (user associated data) still decrypts" "old user secret" "$got"

# a key type refused now (composite): a value bound the old way still reads, to be moved out
in_db src bb_psql "$C" -q -c "CREATE TYPE pair AS (a int, b int)"
colid=a1b2c3d4-0000-4000-8000-00000000abcd
ad=$(in_db src sc_try "$C" "SELECT encode('\\x6262616431'::bytea || decode(replace('$colid', '-', ''), 'hex')
                                   || int4send(length(record_send(ROW(1, 2)::pair))) || record_send(ROW(1, 2)::pair), 'hex')")
env=$("$MINT" "$KEYFILE" "$WRAPPED" 1 "$ad" "$(hex_of 'legacy composite')")
got=$(in_db src sc_try "$C" "SET ROLE s14_reader;
                             SELECT convert_from(brandbos.decrypt_column('$colid', '\\x$env'::bytea, ROW(1, 2)::pair), 'UTF8')")
assert_eq "src: a value stored under a now-refused key type (composite) still reads through decrypt_column" \
	"legacy composite" "$got"
in_db src bb_psql "$C" -q -c "CREATE TABLE k_pair (k pair PRIMARY KEY, s text)"
got=$(in_db src sc_sqlstate "$C" "SELECT brandbos.protect_column('k_pair', 's'); INSERT INTO k_pair VALUES (ROW(1, 2), 'x')")
assert_eq "src: ... but nothing new is sealed under it (0A000)" "0A000" "$got"
in_db src bb_psql "$C" -q -c "DROP TABLE k_pair CASCADE" -c "DROP TYPE pair"

in_db src bb_psql "$C" -q -c 'DROP FUNCTION public.old_binding(regclass, name, bytea[]), public.printable(text)'
SRC_PLAIN=$(fingerprint src _decrypted)
SRC_RAW=$(fingerprint src "")
NEW_PLAIN=$(fingerprint new _decrypted)
NEW_RAW=$(fingerprint new "")
if [[ $SRC_PLAIN == *-* || $SRC_PLAIN == *ERROR* ]]; then
	fail "src: fingerprints computed" "$SRC_PLAIN"
fi

# ---- dump and restore into other databases, other TimeZone and DateStyle --------------------
PGOPTIONS="-c TimeZone=Pacific/Chatham -c DateStyle=SQL,DMY" pgtool pg_dump -Fc -f "$DIR/src.dump" src
PGOPTIONS="-c TimeZone=Pacific/Chatham -c DateStyle=SQL,DMY" pgtool pg_dump -Fc -f "$DIR/new.dump" new

# a full restore creates the triggers after the data: format-1 values come back as they were
pgtool createdb dst1
rc=0
out=$(PGOPTIONS="-c TimeZone=America/St_Johns -c DateStyle=Postgres,MDY" pgtool pg_restore -d dst1 "$DIR/src.dump" 2>&1) || rc=$?
assert_eq "dst1: a full pg_restore of src (format-1 values included) exits 0 without output" "0:" "$rc:$out"
assert_eq "dst1: every value of every key type decrypts as in src" "$SRC_PLAIN" "$(fingerprint dst1 _decrypted)"
assert_eq "dst1: the stored envelopes are byte-identical to src" "$SRC_RAW" "$(fingerprint dst1 "")"
got=$(in_db dst1 sc_try "$C" "SELECT count(*) FROM k_multi WHERE brandbos.envelope_format(s) = 1")
assert_eq "dst1: format-1 values stay format 1 until re-encryption" "1" "$got"

# a data-only load into live protected tables goes through the trigger
pgtool createdb dst
pgtool pg_restore --schema-only -d dst "$DIR/src.dump"
rc=0
out=$(pgtool pg_restore --data-only -d dst "$DIR/src.dump" 2>&1) || rc=$?
if (( rc != 0 )) && [[ $out == *"format-1 envelopes"* ]]; then
	pass "dst: a data-only load of format-1 values into protected tables fails, saying why"
else
	fail "dst: a data-only load of format-1 values into protected tables fails, saying why" "exit $rc" "$out"
fi
pgtool createdb dst3
pgtool pg_restore --schema-only -d dst3 "$DIR/src.dump"
rc=0
out=$(PGOPTIONS="-c brandbos.accept_format1_envelopes=on -c TimeZone=America/St_Johns" \
	pgtool pg_restore --data-only -d dst3 "$DIR/src.dump" 2>&1) || rc=$?
assert_eq "dst3: the same load with brandbos.accept_format1_envelopes = on (superuser) exits 0 without output" "0:" "$rc:$out"
assert_eq "dst3: every value decrypts as in src" "$SRC_PLAIN" "$(fingerprint dst3 _decrypted)"
assert_eq "dst3: the trigger passed every envelope through byte-identical" "$SRC_RAW" "$(fingerprint dst3 "")"

pgtool createdb dst2
rc=0
out=$(PGOPTIONS="-c TimeZone=America/St_Johns -c DateStyle=Postgres,MDY" pgtool pg_restore -d dst2 "$DIR/new.dump" 2>&1) || rc=$?
assert_eq "dst2: pg_restore of format-2 values needs no setting and exits 0 without output" "0:" "$rc:$out"
assert_eq "dst2: every value of every key type decrypts as in new" "$NEW_PLAIN" "$(fingerprint dst2 _decrypted)"
assert_eq "dst2: the stored envelopes are byte-identical to new" "$NEW_RAW" "$(fingerprint dst2 "")"
got=$(in_db dst2 sc_try "$C" "SET ROLE s14_app; SET TimeZone = 'Europe/Paris';
                              INSERT INTO k_tstz VALUES ('2025-01-01 00:00:00+01', 'after-restore', '\\xff', 'f2');
                              SET ROLE s14_reader; SET TimeZone = 'UTC';
                              SELECT s FROM k_tstz_decrypted WHERE k = '2024-12-31 23:00:00+00'")
assert_eq "dst2: a row written in another TimeZone after the restore decrypts" "after-restore" "$got"

check "server did not crash" bash -c "! grep -qE 'terminated by signal|PANIC' '$(bb_logfile "$C")'"
sc_finish
