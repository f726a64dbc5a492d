#!/usr/bin/env bash
# 11_dump_restore — pg_dump / pg_restore keep protected data readable and never
# double-encrypt it (SPEC sections 0 and 2: pg_extension_config_dump, stable column ids,
# envelope pass-through in the trigger).
#
# Database src: two protected tables (text and bytea protected columns, one table with a
# composite primary key), NULL and '' values, two data-key versions in use.  Then:
#   dst   pg_dump -Fc + createdb + pg_restore
#   plain pg_dump -Fp --inserts, loaded with psql (triggers are created after the data)
#   pre   pg_restore --schema-only first (trigger present, empty registry), then a
#         pg_dump --data-only --inserts of src loaded with psql: the trigger fires on
#         every INSERT and must pass the envelopes through unchanged
#   fresh CREATE EXTENSION + table + protect_column made by hand (new column id, no data
#         keys), then a data-only dump of the table: the foreign envelopes do not
#         authenticate there and must be rejected, never stored as plaintext
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C=s11_dump_restore
sc_cluster "$C" 55511 no
SOCK=$(bb_sockdir "$C")
PORT=$(bb_port "$C")
DIR=$(bb_clusterdir "$C")
pgtool() { bb_run_as_pg "$@" -h "$SOCK" -p "$PORT" -U postgres; }
in_db() { local db=$1; shift; BB_DB=$db "$@"; }

bb_psql "$C" -c 'CREATE DATABASE src'
in_db src bb_psql "$C" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE TABLE creds (
	id				bigint PRIMARY KEY,
	user_id			text NOT NULL,
	refresh_token	text,
	api_blob		bytea
);
CREATE TABLE tenant_secrets (
	tenant_id	integer,
	name		text,
	secret		bytea,
	memo		text,
	PRIMARY KEY (tenant_id, name)
);
SELECT brandbos.protect_column('creds', 'refresh_token');
SELECT brandbos.protect_column('creds', 'api_blob');
SELECT brandbos.protect_column('tenant_secrets', 'secret');
SELECT brandbos.protect_column('tenant_secrets', 'memo');

-- key version 1
INSERT INTO creds VALUES
	(1, 'alice', 'rt-alice-1', '\x00ff10'),
	(2, 'bob', NULL, NULL),
	(3, 'carol', '', ''),
	(4, 'dave', 'rt-dave-ünïcødé-€', convert_to('blob dave', 'UTF8'));
INSERT INTO creds SELECT g, 'user' || g, 'rt-' || md5(g::text), decode(md5(g::text), 'hex')
  FROM generate_series(10, 59) g;
INSERT INTO tenant_secrets VALUES
	(1, 'stripe', convert_to('sk_live_1', 'UTF8'), 'memo one'),
	(1, 'ga4', '', ''),
	(2, 'stripe', NULL, NULL),
	(2, 'ga4', convert_to('ga4 secret', 'UTF8'), 'memo two');

SELECT brandbos.rotate_key();

-- key version 2
INSERT INTO creds VALUES
	(5, 'erin', 'rt-erin-v2', '\xdeadbeef'),
	(6, 'frank', '', NULL);
INSERT INTO creds SELECT g, 'user' || g, 'rt2-' || md5(g::text), decode(md5(g::text), 'hex')
  FROM generate_series(100, 129) g;
UPDATE creds SET refresh_token = 'rt-alice-2' WHERE id = 1;
INSERT INTO tenant_secrets VALUES
	(3, 'stripe', convert_to('sk_live_3', 'UTF8'), 'memo three');
SQL

# ---- fingerprints of a database -------------------------------------------------------------
# plaintext (through the _decrypted views), stored envelopes (raw tables), key metadata
plain_fp() {
	in_db "$1" sc_try "$C" "SELECT md5(string_agg(concat_ws('|', id, user_id, coalesce(refresh_token, '<null>'),
	                                       coalesce(encode(api_blob, 'hex'), '<null>')), ',' ORDER BY id))
	                          FROM creds_decrypted"
	in_db "$1" sc_try "$C" "SELECT md5(string_agg(concat_ws('|', tenant_id, name, coalesce(encode(secret, 'hex'), '<null>'),
	                                       coalesce(memo, '<null>')), ',' ORDER BY tenant_id, name))
	                          FROM tenant_secrets_decrypted"
}
raw_fp() {
	in_db "$1" sc_try "$C" "SELECT md5(string_agg(concat_ws('|', id, coalesce(refresh_token, '<null>'),
	                                       coalesce(encode(api_blob, 'hex'), '<null>')), ',' ORDER BY id))
	                          FROM creds"
	in_db "$1" sc_try "$C" "SELECT md5(string_agg(concat_ws('|', tenant_id, name, coalesce(encode(secret, 'hex'), '<null>'),
	                                       coalesce(memo, '<null>')), ',' ORDER BY tenant_id, name))
	                          FROM tenant_secrets"
}
keys_fp() {
	in_db "$1" sc_try "$C" "SELECT string_agg(version || ':' || status || ':' || coalesce(rows_using::text, '?'), ' '
	                                   ORDER BY version) FROM brandbos.key_status()"
	in_db "$1" sc_try "$C" "SELECT count(*) || ' ' || md5(string_agg(version || status || encode(wrapped_key, 'hex'), ','
	                                   ORDER BY version)) FROM brandbos.data_keys"
	in_db "$1" sc_try "$C" "SELECT string_agg(table_oid::text || '.' || column_name || '=' || column_id, ' '
	                                   ORDER BY table_oid::text, column_name) FROM brandbos.column_registry"
}

SRC_PLAIN=$(plain_fp src)
SRC_RAW=$(raw_fp src)
SRC_KEYS=$(keys_fp src)
got=$(in_db src sc_try "$C" "SELECT string_agg(DISTINCT brandbos.envelope_key_version(refresh_token)::text, ',')
                               FROM creds WHERE refresh_token IS NOT NULL")
assert_eq "src: two data-key versions are in use" "1,2" "$got"
got=$(in_db src sc_try "$C" "SELECT refresh_token IS NULL, api_blob IS NULL FROM creds WHERE id = 2")
assert_eq "src: NULL stays NULL" "t|t" "$got"
got=$(in_db src sc_try "$C" "SELECT refresh_token LIKE 'bbx1:%', length(api_blob) > 0 FROM creds WHERE id = 3")
assert_eq "src: '' is sealed too" "t|t" "$got"
got=$(in_db src sc_try "$C" "SELECT refresh_token = '', api_blob = '' FROM creds_decrypted WHERE id = 3")
assert_eq "src: '' decrypts to ''" "t|t" "$got"

# ---- pg_dump -Fc | pg_restore ---------------------------------------------------------------
pgtool pg_dump -Fc -f "$DIR/src.dump" src
pgtool createdb dst
rc=0
out=$(pgtool pg_restore -d dst "$DIR/src.dump" 2>&1) || rc=$?
assert_eq "pg_restore exits 0" "0" "$rc"
if [[ -z $out ]]; then
	pass "pg_restore printed no error or warning"
else
	fail "pg_restore printed no error or warning" "$out"
fi

assert_eq "dst: every plaintext equals src (decrypted views)" "$SRC_PLAIN" "$(plain_fp dst)"
assert_eq "dst: stored envelopes are byte-identical to src (no double encryption)" "$SRC_RAW" "$(raw_fp dst)"
assert_eq "dst: key_status, data_keys and column ids equal src" "$SRC_KEYS" "$(keys_fp dst)"
GUARDED="SELECT count(*) FILTER (WHERE brandbos.protection_problem(table_oid, column_name) IS NULL) || '/' || count(*) FROM brandbos.column_registry"
assert_eq "dst: every protected column is guarded after the restore (trigger ALWAYS, views of the extension owner)" \
	"4/4" "$(in_db dst bb_psql_value "$C" "$GUARDED")"
got=$(in_db dst sc_try "$C" "SELECT count(*) FROM creds_decrypted WHERE refresh_token LIKE 'bbx1:%'")
assert_eq "dst: no value decrypts to another envelope" "0" "$got"

got=$(in_db dst sc_try "$C" "INSERT INTO creds VALUES (1000, 'new', 'rt-new-in-dst', '\x0102');
                             INSERT INTO tenant_secrets VALUES (9, 'x', '\x99', 'memo nine');
                             SELECT c.refresh_token || ' ' || encode(c.api_blob, 'hex') || ' ' || t.memo
                               FROM creds_decrypted c, tenant_secrets_decrypted t
                              WHERE c.id = 1000 AND t.tenant_id = 9")
assert_eq "dst: a new row is sealed and decrypts" "rt-new-in-dst 0102 memo nine" "$got"
got=$(in_db dst sc_try "$C" "SELECT brandbos.envelope_key_version(refresh_token) FROM creds WHERE id = 1000")
assert_eq "dst: the new row uses the active key version 2" "2" "$got"
got=$(in_db dst sc_try "$C" "UPDATE creds SET user_id = 'alice2' WHERE id = 1;
                             SELECT refresh_token FROM creds_decrypted WHERE id = 1")
assert_eq "dst: an UPDATE of another column leaves the secret readable" "rt-alice-2" "$got"

# ---- plain SQL dump with INSERTs ------------------------------------------------------------
pgtool pg_dump -Fp --inserts -f "$DIR/src.sql" src
pgtool createdb plain
rc=0
out=$(in_db plain bb_psql "$C" -f "$DIR/src.sql" 2>&1) || rc=$?
assert_eq "plain: psql -f of pg_dump -Fp --inserts exits 0" "0" "$rc"
if [[ -z $(grep -E 'ERROR|WARNING' <<<"$out" || true) ]]; then
	pass "plain: the load printed no error or warning"
else
	fail "plain: the load printed no error or warning" "$out"
fi
assert_eq "plain: every plaintext equals src" "$SRC_PLAIN" "$(plain_fp plain)"
assert_eq "plain: stored envelopes are byte-identical to src" "$SRC_RAW" "$(raw_fp plain)"
assert_eq "plain: key_status, data_keys and column ids equal src" "$SRC_KEYS" "$(keys_fp plain)"
assert_eq "plain: every protected column is guarded after the load" "4/4" "$(in_db plain bb_psql_value "$C" "$GUARDED")"

# ---- schema first, then a data-only INSERT dump through the live trigger --------------------
pgtool pg_dump --data-only --inserts -f "$DIR/src_data.sql" src
pgtool createdb pre
rc=0
out=$(pgtool pg_restore --schema-only -d pre "$DIR/src.dump" 2>&1) || rc=$?
assert_eq "pre: pg_restore --schema-only exits 0 without output" "0:" "$rc:$out"
got=$(in_db pre sc_try "$C" "SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('creds'::regclass, 'tenant_secrets'::regclass)
                                                         AND NOT tgisinternal AND tgenabled <> 'D'")
if [[ $got =~ ^[1-9][0-9]*$ ]]; then
	pass "pre: the protect triggers exist and are enabled before the data is loaded ($got)"
else
	fail "pre: the protect triggers exist and are enabled before the data is loaded" "$got"
fi
if grep -qiE 'DISABLE TRIGGER|session_replication_role' "$DIR/src_data.sql"; then
	fail "pre: the data-only dump does not switch triggers off" \
		"$(grep -iE 'DISABLE TRIGGER|session_replication_role' "$DIR/src_data.sql")"
else
	pass "pre: the data-only dump does not switch triggers off"
fi
rc=0
out=$(in_db pre bb_psql "$C" -f "$DIR/src_data.sql" 2>&1) || rc=$?
assert_eq "pre: the data-only load through the trigger exits 0" "0" "$rc"
if [[ -z $(grep -E 'ERROR|WARNING' <<<"$out" || true) ]]; then
	pass "pre: the load printed no error or warning"
else
	fail "pre: the load printed no error or warning" "$out"
fi
assert_eq "pre: the trigger passed every envelope through unchanged" "$SRC_RAW" "$(raw_fp pre)"
assert_eq "pre: every plaintext equals src" "$SRC_PLAIN" "$(plain_fp pre)"
assert_eq "pre: key_status, data_keys and column ids equal src" "$SRC_KEYS" "$(keys_fp pre)"

# ---- a database with its own keys and column ids rejects foreign envelopes ------------------
pgtool pg_dump --data-only --inserts -t creds -f "$DIR/creds_data.sql" src
pgtool createdb fresh
in_db fresh bb_psql "$C" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE TABLE creds (
	id				bigint PRIMARY KEY,
	user_id			text NOT NULL,
	refresh_token	text,
	api_blob		bytea
);
SELECT brandbos.protect_column('creds', 'refresh_token');
SELECT brandbos.protect_column('creds', 'api_blob');
SQL
sc_helpers "$C" fresh
rc=0
out=$(in_db fresh bb_psql "$C" -f "$DIR/creds_data.sql" 2>&1) || rc=$?
if (( rc != 0 )) && [[ $out == *ERROR* ]]; then
	pass "fresh: loading envelopes sealed in another database fails"
else
	fail "fresh: loading envelopes sealed in another database fails" "exit $rc" "$out"
fi
got=$(in_db fresh sc_try "$C" "SELECT count(*) FROM creds WHERE refresh_token IS NOT NULL OR api_blob IS NOT NULL")
assert_eq "fresh: no foreign envelope was stored" "0" "$got"
# src's version-2 envelopes name a data key this database does not have
env=$(in_db src sc_try "$C" "SELECT refresh_token FROM creds WHERE id = 5")
got=$(in_db fresh sc_sqlstate "$C" "INSERT INTO creds VALUES (5, 'erin', '$env')")
assert_eq "fresh: a text envelope of a data key version not here is rejected (42704)" "42704" "$got"
env=$(in_db src sc_try "$C" "SELECT encode(api_blob, 'hex') FROM creds WHERE id = 5")
got=$(in_db fresh sc_sqlstate "$C" "INSERT INTO creds VALUES (5, 'erin', NULL, '\\x$env')")
assert_eq "fresh: a bytea envelope of a data key version not here is rejected (42704)" "42704" "$got"
got=$(in_db fresh sc_try "$C" "INSERT INTO creds VALUES (7, 'gina', 'rt-gina', '\x07');
                               SELECT refresh_token || ' ' || encode(api_blob, 'hex') FROM creds_decrypted WHERE id = 7")
assert_eq "fresh: its own rows still work" "rt-gina 07" "$got"
got=$(in_db fresh sc_try "$C" "SELECT string_agg(version::text, ',') FROM brandbos.key_status()")
assert_eq "fresh: has its own data key version 1 now" "1" "$got"
# src's version-1 envelopes name version 1, which exists here but is another key
env=$(in_db src sc_try "$C" "SELECT refresh_token FROM creds WHERE id = 10")
got=$(in_db fresh sc_sqlstate "$C" "INSERT INTO creds VALUES (10, 'user10', '$env')")
assert_eq "fresh: a text envelope that does not authenticate is rejected with XX001" "XX001" "$got"
env=$(in_db src sc_try "$C" "SELECT encode(api_blob, 'hex') FROM creds WHERE id = 10")
got=$(in_db fresh sc_sqlstate "$C" "INSERT INTO creds VALUES (10, 'user10', NULL, '\\x$env')")
assert_eq "fresh: a bytea envelope that does not authenticate is rejected with XX001" "XX001" "$got"
got=$(in_db fresh sc_try "$C" "SELECT count(*) FROM creds WHERE id IN (5, 10)")
assert_eq "fresh: none of the rejected rows was stored" "0" "$got"

check "server did not crash" bash -c "! grep -qE 'terminated by signal|PANIC' '$(bb_logfile "$C")'"
sc_finish
