#!/usr/bin/env bash
# 19_upgrade_from_0_1_0 — ALTER EXTENSION brandbos UPDATE from 0.1.0 keeps every pillar intact,
# and 0.2.0's signing key survives a root-key rotation.
#
# The 0.1.0 install script as released is kept in test/upgrade/brandbos--0.1.0.sql; it is
# copied beside the installed extension for this scenario only (and removed at the end).
#   1. CREATE EXTENSION brandbos VERSION '0.1.0' on a preloaded server running today's library,
#      then every pillar is filled: a protected column, an audited table sealed into blocks
#      with a digest kept, a tenant-isolated table with two tenants, a deliberation session.
#   2. ALTER EXTENSION brandbos UPDATE: the version is 0.2.0; values decrypt; verify_audit is
#      clean and the digest taken under 0.1.0 verifies; tenants still see only their rows;
#      session totals add up; new rows of every pillar work.
#   3. The upgraded extension has exactly the objects, definitions and privileges of a fresh
#      0.2.0 install in another database (nothing missing, nothing left over).
#   4. Root-key rotation after the upgrade: the old blocks still verify, new blocks seal and
#      verify under the same public key, the old digest still verifies (under 0.1.0 the
#      signing key changed with the root key and every old block reported "bad signature").
#      A root key switched without rewrap_keys() makes sealing refuse (55000) instead of
#      starting a chain under a second key.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# (shared safely with a run of this scenario beside this one; removed by the last of them)
if ! sc_extension_file "$BB_ROOT/test/upgrade/brandbos--0.1.0.sql"; then
	fail "the released 0.1.0 script is installed for this scenario" "(why: the line above)"
	sc_finish
fi

C=s19_upgrade
sc_cluster "$C" 55519 yes
sc_helpers "$C"
DIR=$(bb_clusterdir "$C")
KEY1=$(bb_keyfile "$C")

# ---- 1. 0.1.0, filled ---------------------------------------------------------------------------
# shellcheck disable=SC2016   # dollar quotes are SQL
bb_psql "$C" >/dev/null <<'SQL'
CREATE EXTENSION brandbos VERSION '0.1.0';
CREATE ROLE s19_reader LOGIN IN ROLE brandbos_decryptor;
CREATE ROLE s19_app LOGIN IN ROLE brandbos_context_admin;
CREATE TABLE creds (id int PRIMARY KEY, owner text NOT NULL, token text);
SELECT brandbos.protect_column('creds', 'token');
INSERT INTO creds SELECT g, 'u' || g, 'refresh-token-' || g FROM generate_series(1, 50) g;
GRANT SELECT ON creds, creds_decrypted TO s19_reader;
CREATE TABLE orders (id int PRIMARY KEY, amount int NOT NULL);
SELECT brandbos.enable_audit('orders');
INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 40) g;
UPDATE orders SET amount = amount + 1 WHERE id <= 10;
DELETE FROM orders WHERE id > 35;
SELECT brandbos.seal_audit();
CREATE TABLE docs (id serial PRIMARY KEY, tenant_id text NOT NULL, title text);
SELECT brandbos.enable_tenant_isolation('docs');
GRANT SELECT, INSERT ON docs TO s19_app;
GRANT USAGE ON SEQUENCE docs_id_seq TO s19_app;
BEGIN; SET LOCAL ROLE s19_app; SELECT brandbos.set_context('alice', 'acme');
INSERT INTO docs (title) VALUES ('acme 1'), ('acme 2'); COMMIT;
BEGIN; SET LOCAL ROLE s19_app; SELECT brandbos.set_context('bob', 'globex');
INSERT INTO docs (title) VALUES ('globex 1'); COMMIT;
SELECT brandbos.seed_personas('[{"code": "cfo", "name": "The CFO", "expertise": "finance", "system_prompt": "Margins."},
                                {"code": "cto", "name": "The CTO", "expertise": "engineering", "system_prompt": "Debt."}]'::jsonb);
BEGIN;
SELECT brandbos.set_context('alice', 'acme');
SELECT brandbos.start_session('Expand to Spain?') AS sid \gset
SELECT brandbos.add_contribution(:'sid', 'cfo', 'thin margins', 'initial_round', 0.0120, 600, 'm');
SELECT brandbos.add_contribution(:'sid', 'cto', 'two sprints', 'initial_round', 0.0080, 400, 'm');
COMMIT;
SELECT brandbos.seal_audit();
SQL
assert_eq "0.1.0 is installed from the released script" "0.1.0" \
	"$(sc_try "$C" "SELECT extversion FROM pg_extension WHERE extname = 'brandbos'")"
DIGEST_OLD=$(sc_try "$C" "SELECT brandbos.audit_digest()")
BLOCKS_OLD=$(sc_try "$C" "SELECT count(*) FROM brandbos.audit_blocks")
assert_match "0.1.0 sealed the chain into blocks" '^[1-9][0-9]*$' "$BLOCKS_OLD"
assert_eq "0.1.0 has no audit_signing_key table" "" \
	"$(sc_try "$C" "SELECT to_regclass('brandbos.audit_signing_key')")"
# today's library under the 0.1.0 objects, before the update: rewrap_keys() could not keep the
# audit signing key, so it refuses
sc_conf_set "$C" brandbos.previous_root_key_file "$KEY1"
assert_eq "pg_reload_conf()" "t" "$(sc_try "$C" 'SELECT pg_reload_conf()')"
sleep 1
out=$(bb_psql "$C" -v VERBOSITY=verbose -c 'SELECT brandbos.rewrap_keys()' 2>&1 || true)
assert_match "before the update, rewrap_keys() is refused (55000) with the hint to update" \
	'55000.*(.|\n)*ALTER EXTENSION brandbos UPDATE' "$out"
sc_conf_unset "$C" brandbos.previous_root_key_file
assert_eq "pg_reload_conf()" "t" "$(sc_try "$C" 'SELECT pg_reload_conf()')"

# ---- 2. the update -------------------------------------------------------------------------------
out=$(bb_psql "$C" -c 'ALTER EXTENSION brandbos UPDATE' 2>&1) && rc=0 || rc=$?
assert_eq "ALTER EXTENSION brandbos UPDATE succeeds, silently" "0:" "$rc:$out"
assert_eq "the version is 0.2.0" "0.2.0" \
	"$(sc_try "$C" "SELECT extversion FROM pg_extension WHERE extname = 'brandbos'")"
reader() { bb_run_as_pg "$PGBIN/psql" -X -q -At -h "$(bb_sockdir "$C")" -p "$(bb_port "$C")" -U s19_reader -d postgres -c "$1" 2>&1 || true; }
assert_eq "every protected value decrypts (a decryptor)" "50|50" \
	"$(reader "SELECT count(*), count(*) FILTER (WHERE token = 'refresh-token-' || id) FROM creds_decrypted")"
assert_eq "no plaintext in the table" "0" \
	"$(sc_try "$C" "SELECT count(*) FROM creds WHERE token LIKE 'refresh-token-%'")"
assert_eq "verify_audit is clean after the update" "0" "$(sc_try "$C" "SELECT count(*) FROM brandbos.verify_audit()")"
assert_eq "the digest taken under 0.1.0 verifies (verify_audit_digest)" "t" \
	"$(sc_try "$C" "SELECT brandbos.verify_audit_digest('$DIGEST_OLD'::jsonb)")"
assert_eq "and as verify_audit's trusted digest" "0" \
	"$(sc_try "$C" "SELECT count(*) FROM brandbos.verify_audit(NULL, '$DIGEST_OLD'::jsonb)")"
tenant_rows() {
	sc_try "$C" "BEGIN; SET LOCAL ROLE s19_app; SELECT brandbos.set_context('$1', '$2');
		SELECT string_agg(title, ',' ORDER BY title) FROM docs; COMMIT;" | sed -n 2p
}
assert_eq "acme sees its two rows" "acme 1,acme 2" "$(tenant_rows alice acme)"
assert_eq "globex sees its one row" "globex 1" "$(tenant_rows bob globex)"
assert_eq "session totals add up" "2|0.0200|1000" \
	"$(sc_try "$C" "SELECT (SELECT count(*) FROM brandbos.contributions), total_cost, total_tokens FROM brandbos.sessions")"
# shellcheck disable=SC2016
bb_psql "$C" >/dev/null <<'SQL'
INSERT INTO creds VALUES (51, 'u51', 'refresh-token-51');
INSERT INTO orders VALUES (100, 1000);
BEGIN; SET LOCAL ROLE s19_app; SELECT brandbos.set_context('bob', 'globex');
INSERT INTO docs (title) VALUES ('globex 2'); COMMIT;
BEGIN;
SELECT brandbos.set_context('alice', 'acme');
SELECT brandbos.add_contribution((SELECT id FROM brandbos.sessions), 'cfo', 'again', 'initial_round', 0.0010, 50, 'm');
COMMIT;
SELECT brandbos.seal_audit();
SQL
assert_eq "after the update: a new protected value decrypts" "refresh-token-51" \
	"$(reader "SELECT token FROM creds_decrypted WHERE id = 51")"
assert_eq "after the update: new audit rows seal and verify" "0|0" \
	"$(sc_try "$C" "SELECT (SELECT count(*) FROM brandbos.audit_entries WHERE id > (SELECT max(last_id) FROM brandbos.audit_blocks)), (SELECT count(*) FROM brandbos.verify_audit())")"
assert_eq "after the update: globex sees its two rows" "globex 1,globex 2" "$(tenant_rows bob globex)"
assert_eq "after the update: the session adds the new contribution" "3|0.0210|1050" \
	"$(sc_try "$C" "SELECT (SELECT count(*) FROM brandbos.contributions), total_cost, total_tokens FROM brandbos.sessions")"

# ---- 3. the same extension as a fresh 0.2.0 install -----------------------------------------------
bb_psql "$C" -c 'CREATE DATABASE s19_fresh' >/dev/null
BB_DB=s19_fresh bb_psql "$C" -c 'CREATE EXTENSION brandbos' >/dev/null
# every member object with what defines it: functions (language, symbol, body, volatility,
# security, settings, ACL), relations (kind, columns, ACL, RLS, triggers, constraints, indexes,
# policies, view text), event triggers, and the rest by name
MEMBERS_SQL=$(cat <<'SQL'
WITH m AS (
  SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
   WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'brandbos')
SELECT pg_describe_object(m.classid, m.objid, 0) || ' ' || coalesce(
  (SELECT concat_ws(' | ', p.prolang::regproc, p.probin, p.prosrc, p.provolatile, p.prosecdef,
          p.proparallel, p.proconfig::text, p.proacl::text, pg_get_function_result(p.oid),
          pg_get_function_arguments(p.oid))
     FROM pg_proc p WHERE m.classid = 'pg_proc'::regclass AND p.oid = m.objid),
  (SELECT concat_ws(' | ', c.relkind, c.relacl::text, c.relrowsecurity, c.relforcerowsecurity,
          (SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull,
                             ',' ORDER BY a.attnum)
             FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
          (SELECT string_agg(t.tgname || ':' || t.tgenabled::text || ':' || t.tgfoid::regproc, ',' ORDER BY t.tgname)
             FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
          (SELECT string_agg(k.conname || ':' || pg_get_constraintdef(k.oid), ',' ORDER BY k.conname)
             FROM pg_constraint k WHERE k.conrelid = c.oid),
          (SELECT string_agg(y.polname || ':' || y.polcmd::text || ':' || y.polpermissive || ':' ||
                             coalesce(pg_get_expr(y.polqual, y.polrelid), '') || ':' ||
                             coalesce(pg_get_expr(y.polwithcheck, y.polrelid), ''), ',' ORDER BY y.polname)
             FROM pg_policy y WHERE y.polrelid = c.oid),
          (SELECT string_agg(pg_get_indexdef(i.indexrelid), ',' ORDER BY 1)
             FROM pg_index i WHERE i.indrelid = c.oid),
          CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END)
     FROM pg_class c WHERE m.classid = 'pg_class'::regclass AND c.oid = m.objid),
  (SELECT concat_ws(' | ', t.evtevent, t.evtenabled, t.evtfoid::regproc, t.evttags::text)
     FROM pg_event_trigger t WHERE m.classid = 'pg_event_trigger'::regclass AND t.oid = m.objid),
  '') AS member
  FROM m ORDER BY 1;
SQL
)
upgraded=$(bb_psql "$C" -At -c "$MEMBERS_SQL")
fresh=$(BB_DB=s19_fresh bb_psql "$C" -At -c "$MEMBERS_SQL")
if [[ $upgraded == "$fresh" ]]; then
	pass "the upgraded extension has the fresh install's $(wc -l <<<"$fresh") member objects, definitions and privileges"
else
	fail "the upgraded extension differs from a fresh 0.2.0 install" \
		"$(diff <(echo "$upgraded") <(echo "$fresh") | head -n 20)"
fi
config_sql="SELECT string_agg(c::regclass::text, ',' ORDER BY c::regclass::text) FROM pg_extension, unnest(extconfig) c WHERE extname = 'brandbos'"
assert_eq "pg_dump dumps the same configuration tables' rows" \
	"$(BB_DB=s19_fresh sc_try "$C" "$config_sql")" "$(sc_try "$C" "$config_sql")"

# ---- 4. a root-key rotation after the update --------------------------------------------------------
KEY2="$DIR/root2.key"
sc_write_key "$KEY2"
PK_OLD=$(sc_try "$C" "SELECT encode(public_key, 'hex') FROM brandbos.audit_blocks ORDER BY block_id DESC LIMIT 1")
# first the mistake: the new key loaded, no rewrap_keys()
sc_conf_set "$C" brandbos.root_key_file "$KEY2"
bb_cluster_restart "$C"
bb_psql "$C" -c 'INSERT INTO orders VALUES (101, 1)' >/dev/null
assert_eq "a new root key without rewrap_keys(): seal_audit refuses (55000)" "55000" \
	"$(sc_sqlstate "$C" 'SELECT brandbos.seal_audit()')"
assert_eq "and no block was signed under another key" "$PK_OLD" \
	"$(sc_try "$C" "SELECT string_agg(DISTINCT encode(public_key, 'hex'), ',') FROM brandbos.audit_blocks")"
# then the procedure of the README
sc_conf_set "$C" brandbos.previous_root_key_file "$KEY1"
bb_cluster_restart "$C"
assert_eq "rewrap_keys() re-wraps the data key" "1" "$(sc_try "$C" 'SELECT brandbos.rewrap_keys()')"
assert_eq "and stores the audit signing seed (one row)" "1" \
	"$(sc_try "$C" "SELECT count(*) FROM brandbos.audit_signing_key")"
assert_eq "the seed is wrapped under the root key the data keys are now under" "t" \
	"$(sc_try "$C" "SELECT (SELECT root_key_id FROM brandbos.audit_signing_key) = (SELECT root_key_id FROM brandbos.data_keys WHERE status = 'active')")"
assert_eq "rewrap_keys() again re-wraps nothing" "0" "$(sc_try "$C" 'SELECT brandbos.rewrap_keys()')"
assert_eq "and leaves the stored seed as it was" "1" \
	"$(sc_try "$C" "SELECT count(*) FROM brandbos.audit_signing_key WHERE wrapped_at < pg_catalog.now()")"
sc_conf_unset "$C" brandbos.previous_root_key_file
bb_cluster_restart "$C"
assert_eq "after the rotation, every old block verifies" "0" "$(sc_try "$C" "SELECT count(*) FROM brandbos.verify_audit()")"
bb_psql "$C" -c 'INSERT INTO orders VALUES (102, 2)' -c 'SELECT brandbos.seal_audit()' >/dev/null
assert_eq "new blocks seal after the rotation" "0" \
	"$(sc_try "$C" "SELECT (SELECT count(*) FROM brandbos.audit_entries WHERE id > (SELECT max(last_id) FROM brandbos.audit_blocks))")"
assert_eq "one public key signs the whole chain, before and after the rotation" "$PK_OLD" \
	"$(sc_try "$C" "SELECT string_agg(DISTINCT encode(public_key, 'hex'), ',') FROM brandbos.audit_blocks")"
assert_eq "verify_audit is clean over both sides of the rotation" "0" \
	"$(sc_try "$C" "SELECT count(*) FROM brandbos.verify_audit()")"
assert_eq "the digest taken under 0.1.0 still verifies" "t" \
	"$(sc_try "$C" "SELECT brandbos.verify_audit_digest('$DIGEST_OLD'::jsonb)")"
assert_eq "values still decrypt under the new root key" "refresh-token-51" \
	"$(reader "SELECT token FROM creds_decrypted WHERE id = 51")"
# the seed is never readable by an ordinary role and never in the log
assert_match "an ordinary role cannot read brandbos.audit_signing_key" 'permission denied' \
	"$(reader "SELECT wrapped_seed FROM brandbos.audit_signing_key")"

if sc_server_crashed "$C"; then fail "no backend crashed"; else pass "no backend crashed"; fi
sc_finish
