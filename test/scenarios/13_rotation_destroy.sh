#!/usr/bin/env bash
# 13_rotation_destroy — data-key rotation, re-encryption, destruction, root-key rotation and
# crypto-shredding (SPEC sections 1 and 2).
#
#   1. 2500 rows under data key 1; rotate_key() -> 2; 500 more rows under 2
#   2. key_status: 1 retired / 2 active with their row counts; destroy_key(1) refuses
#      (55006) while values use it; reencrypt(t, 500) moves the 2500 rows; every envelope
#      is version 2; destroy_key(1) succeeds; every plaintext is unchanged
#   3. root-key rotation: new key in root_key_file, old in previous_root_key_file, reload,
#      rewrap_keys() re-wraps the live data key; values decrypt; with the previous file
#      removed and a restart they still decrypt; the old root key alone no longer works
#   4. crypto-shredding: values of a separate table under a key destroyed with
#      force => true cannot be read any more (55000); the rest is unaffected
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C=s13_rotation
sc_cluster "$C" 55513 no
sc_helpers "$C"
DIR=$(bb_clusterdir "$C")
KEY1=$(bb_keyfile "$C")

bb_psql "$C" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE TABLE t (id integer PRIMARY KEY, tok text, blob bytea, note text);
SELECT brandbos.protect_column('t', 'tok');
SELECT brandbos.protect_column('t', 'blob');
INSERT INTO t SELECT g, 'token-' || g || '-' || md5(g::text), decode(md5(g::text), 'hex'), 'v1'
  FROM generate_series(1, 2500) g;
SQL

PLAIN_SQL="SELECT md5(string_agg(concat_ws('|', id, tok, encode(blob, 'hex')), ',' ORDER BY id)) FROM t_decrypted"
EXPECT_SQL="SELECT md5(string_agg(concat_ws('|', id, 'token-' || id || '-' || md5(id::text), md5(id::text)), ',' ORDER BY id)) FROM t"
VERSIONS_SQL="SELECT string_agg(v::text || ':' || n, ' ' ORDER BY v) FROM (
                SELECT brandbos.envelope_key_version(tok) v, count(*) n FROM t GROUP BY 1) s"
STATUS_SQL="SELECT string_agg(version || ':' || status || ':' || coalesce(rows_using::text, 'NULL'), ' ' ORDER BY version)
              FROM brandbos.key_status()"

assert_eq "2500 rows sealed under data key 1" "1:2500" "$(sc_try "$C" "$VERSIONS_SQL")"
assert_eq "rotate_key() returns the new version 2" "2" "$(sc_try "$C" 'SELECT brandbos.rotate_key()')"
bb_psql "$C" -c "INSERT INTO t SELECT g, 'token-' || g || '-' || md5(g::text), decode(md5(g::text), 'hex'), 'v2'
                   FROM generate_series(2501, 3000) g"
assert_eq "new rows are sealed under data key 2" "1:2500 2:500" "$(sc_try "$C" "$VERSIONS_SQL")"
got=$(sc_try "$C" "SELECT count(*) FROM t WHERE brandbos.envelope_key_version(blob) <> brandbos.envelope_key_version(tok)")
assert_eq "bytea and text columns of a row use the same version" "0" "$got"

PLAIN=$(sc_try "$C" "$PLAIN_SQL")
assert_eq "every value decrypts to what was written" "$(sc_try "$C" "$EXPECT_SQL")" "$PLAIN"
# rows_using counts values in protected columns (README): two protected columns per row
assert_eq "key_status: 1 retired (5000 values), 2 active (1000 values)" "1:retired:5000 2:active:1000" \
	"$(sc_try "$C" "$STATUS_SQL")"
got=$(sc_try "$C" "SELECT key_versions FROM brandbos.protected_columns WHERE column_name = 'tok'")
assert_eq "protected_columns lists versions {1,2}" "{1,2}" "$got"

assert_eq "destroy_key(1) without force fails with 55006 while values use it" "55006" \
	"$(sc_sqlstate "$C" 'SELECT brandbos.destroy_key(1)')"
assert_eq "destroy_key(2) (the active key) is refused with 55000" "55000" \
	"$(sc_sqlstate "$C" 'SELECT brandbos.destroy_key(2, force => true)')"
assert_eq "nothing was destroyed by the refused calls" "1:retired:5000 2:active:1000" "$(sc_try "$C" "$STATUS_SQL")"

# reencrypt(regclass, 500) commits in batches: call it outside a transaction block
assert_eq "reencrypt(t, 500) returns the number of rows moved (2500)" "2500" \
	"$(sc_try "$C" "SELECT brandbos.reencrypt('t', 500)")"
assert_eq "every envelope is now version 2" "2:3000" "$(sc_try "$C" "$VERSIONS_SQL")"
got=$(sc_try "$C" "SELECT count(*) FROM t WHERE brandbos.envelope_key_version(blob) <> 2")
assert_eq "the bytea column was moved too" "0" "$got"
assert_eq "reencrypt again moves nothing" "0" "$(sc_try "$C" "SELECT brandbos.reencrypt('t', 500)")"
assert_eq "values are unchanged after reencrypt" "$PLAIN" "$(sc_try "$C" "$PLAIN_SQL")"
assert_eq "notes (unprotected) are untouched" "2500|500" \
	"$(sc_try "$C" "SELECT count(*) FILTER (WHERE note = 'v1'), count(*) FILTER (WHERE note = 'v2') FROM t")"

assert_eq "destroy_key(1) now succeeds" "00000" "$(sc_sqlstate "$C" 'SELECT brandbos.destroy_key(1)')"
assert_eq "key_status shows version 1 destroyed, 6000 values on version 2" "1:destroyed:0 2:active:6000" \
	"$(sc_try "$C" "$STATUS_SQL" | sed 's/1:destroyed:NULL/1:destroyed:0/')"
assert_eq "the wrapped key of version 1 is gone from data_keys" "t" \
	"$(sc_try "$C" "SELECT wrapped_key IS NULL FROM brandbos.data_keys WHERE version = 1")"
assert_eq "every value still decrypts to the original (new session)" "$PLAIN" "$(sc_try "$C" "$PLAIN_SQL")"

# ---- root-key rotation --------------------------------------------------------------------
WRAP_SQL="SELECT string_agg(version || ':' || md5(wrapped_key) || ':' || root_key_id, ' ' ORDER BY version)
            FROM brandbos.data_keys WHERE wrapped_key IS NOT NULL"
WRAP_BEFORE=$(sc_try "$C" "$WRAP_SQL")
KEY2=$DIR/root2.key
sc_write_key "$KEY2"
sc_conf_set "$C" brandbos.root_key_file "$KEY2"
sc_conf_set "$C" brandbos.previous_root_key_file "$KEY1"
assert_eq "pg_reload_conf()" "t" "$(sc_try "$C" 'SELECT pg_reload_conf()')"
sleep 1
got=$(sc_try "$C" "SELECT current_setting('brandbos.root_key_file') = '$KEY2',
                          current_setting('brandbos.previous_root_key_file') = '$KEY1'")
assert_eq "a new session sees the new settings" "t|t" "$got"
assert_eq "before rewrap, under the new root key the data key does not unwrap (55000)" "55000" \
	"$(sc_sqlstate "$C" "$PLAIN_SQL")"
assert_eq "rewrap_keys() returns 1 (the one live data key)" "1" "$(sc_try "$C" 'SELECT brandbos.rewrap_keys()')"
WRAP_AFTER=$(sc_try "$C" "$WRAP_SQL")
if [[ -n $WRAP_AFTER && $WRAP_AFTER != "$WRAP_BEFORE" && ${WRAP_AFTER%%:*} == 2 ]]; then
	pass "data key 2 has a new wrapping and root key id"
else
	fail "data key 2 has a new wrapping and root key id" "before: $WRAP_BEFORE" " after: $WRAP_AFTER"
fi
assert_eq "rewrap_keys() again re-wraps nothing" "0" "$(sc_try "$C" 'SELECT brandbos.rewrap_keys()')"
assert_eq "values decrypt after rewrap" "$PLAIN" "$(sc_try "$C" "$PLAIN_SQL")"
got=$(sc_try "$C" "INSERT INTO t VALUES (3001, 'after-rewrap', '\x01', 'r');
                   SELECT tok FROM t_decrypted WHERE id = 3001")
assert_eq "INSERT after rewrap works and decrypts" "after-rewrap" "$got"
PLAIN=$(sc_try "$C" "$PLAIN_SQL")

bb_cluster_stop "$C"
sc_conf_unset "$C" brandbos.previous_root_key_file
bb_cluster_start "$C"
assert_eq "previous_root_key_file removed, restarted: root_key_loaded()" "t" \
	"$(sc_try "$C" 'SELECT brandbos.root_key_loaded()')"
assert_eq "previous_root_key_file removed, restarted: values still decrypt" "$PLAIN" "$(sc_try "$C" "$PLAIN_SQL")"
assert_eq "rewrap_keys() without previous_root_key_file fails with 55000" "55000" \
	"$(sc_sqlstate "$C" 'SELECT brandbos.rewrap_keys()')"

bb_cluster_stop "$C"
sc_conf_set "$C" brandbos.root_key_file "$KEY1"
bb_cluster_start "$C"
assert_eq "the old root key alone no longer unwraps the data key (55000)" "55000" \
	"$(sc_sqlstate "$C" "$PLAIN_SQL")"
bb_cluster_stop "$C"
sc_conf_set "$C" brandbos.root_key_file "$KEY2"
bb_cluster_start "$C"
assert_eq "back on the new root key: values decrypt" "$PLAIN" "$(sc_try "$C" "$PLAIN_SQL")"

# ---- crypto-shredding ---------------------------------------------------------------------
assert_eq "rotate_key() -> 3" "3" "$(sc_try "$C" 'SELECT brandbos.rotate_key()')"
bb_psql "$C" >/dev/null <<'SQL'
CREATE TABLE s (id integer PRIMARY KEY, tok text, memo text);
SELECT brandbos.protect_column('s', 'tok');
INSERT INTO s SELECT g, 'to-be-shredded-' || g, 'memo ' || g FROM generate_series(1, 10) g;
SQL
assert_eq "s: 10 rows sealed under key 3" "10" \
	"$(sc_try "$C" "SELECT count(*) FROM s WHERE brandbos.envelope_key_version(tok) = 3")"
got=$(sc_try "$C" "SELECT count(*) FROM s_decrypted WHERE tok LIKE 'to-be-shredded-%'")
assert_eq "s: the 10 values decrypt before shredding" "10" "$got"
assert_eq "rotate_key() -> 4" "4" "$(sc_try "$C" 'SELECT brandbos.rotate_key()')"
assert_eq "destroy_key(3) without force fails with 55006" "55006" "$(sc_sqlstate "$C" 'SELECT brandbos.destroy_key(3)')"
assert_eq "destroy_key(3, force => true) succeeds" "00000" \
	"$(sc_sqlstate "$C" 'SELECT brandbos.destroy_key(3, force => true)')"
assert_eq "reading the shredded values fails with 55000" "55000" \
	"$(sc_sqlstate "$C" "SELECT count(tok) FROM s_decrypted")"
assert_eq "decrypt_text of a shredded envelope fails with 55000" "55000" \
	"$(sc_sqlstate "$C" "SELECT brandbos.decrypt_text(tok) FROM s WHERE id = 1")"
assert_eq "the server is fine after that (same and new session)" "1" \
	"$(bb_psql "$C" -At -c "SELECT public.sqlstate_of('SELECT count(tok) FROM s_decrypted')" -c 'SELECT 1' | tail -n 1)"
assert_eq "s_safe still works" "10|memo 1" "$(sc_try "$C" "SELECT count(*), min(memo) FROM s_safe")"
assert_eq "table t (under key 2) still decrypts" "$PLAIN" "$(sc_try "$C" "$PLAIN_SQL")"
got=$(sc_try "$C" "UPDATE s SET tok = 'fresh' WHERE id = 1; SELECT d.tok, brandbos.envelope_key_version(s.tok)
                   FROM s_decrypted d JOIN s USING (id) WHERE id = 1")
assert_eq "a shredded value can be overwritten with a new one (key 4)" "fresh|4" "$got"
assert_eq "key_status: 3 destroyed, 4 active" "3:destroyed 4:active" \
	"$(sc_try "$C" "SELECT string_agg(version || ':' || status, ' ' ORDER BY version) FROM brandbos.key_status() WHERE version >= 3")"

check "server did not crash" bash -c "! grep -qE 'terminated by signal|PANIC' '$(bb_logfile "$C")'"
sc_finish
