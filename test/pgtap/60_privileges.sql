-- Privilege audit: what PUBLIC and each group role may do is exactly what
-- the README documents, and every SECURITY DEFINER function pins search_path.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(12);

SELECT results_eq(
    $$SELECT (p.proname::text || '(' || pg_get_function_identity_arguments(p.oid) || ')') COLLATE "default"
        FROM pg_proc p WHERE p.pronamespace = 'brandbos'::regnamespace
         AND has_function_privilege('public', p.oid, 'EXECUTE') ORDER BY 1$$,
    $$VALUES ('add_contribution(session_id text, persona_code text, content text, phase text, cost numeric, tokens integer, model text)'),
             ('audit_append_only()'), ('audit_trigger()'), ('authenticate(token text)'),
             ('cast_vote(session_id text, persona_code text, vote_choice text, reasoning text, confidence numeric)'),
             ('claim(name text)'), ('claims()'), ('column_key_versions(tbl regclass, col name)'),
             ('complete_session(session_id text)'), ('context_sees(user_id text, tenant_id text)'),
             ('current_app_role()'), ('current_tenant_id()'), ('current_tenant_uuid()'),
             ('current_user_id()'), ('current_user_uuid()'), ('disable_audit(tbl regclass)'),
             ('disable_isolation(tbl regclass)'), ('enable_audit(tbl regclass)'),
             ('enable_owner_isolation(tbl regclass, owner_column name)'),
             ('enable_tenant_isolation(tbl regclass, tenant_column name)'),
             ('encrypt(data bytea, associated bytea)'), ('encrypt_text(data text, associated text)'),
             ('envelope_format(envelope bytea)'), ('envelope_format(envelope text)'),
             ('envelope_key_version(envelope bytea)'), ('envelope_key_version(envelope text)'),
             ('fail_session(session_id text, reason text)'),
             ('gdpr_erase(user_id text)'), ('gdpr_export(user_id text)'),
             ('generate_api_key(prefix text)'), ('has_app_role(role text)'), ('hash_password(password text)'),
             ('is_admin()'), ('is_org_owner(org text)'), ('isolation_truncate_guard()'), ('jwt()'), ('kill_session(session_id text, reason text)'),
             ('log_event(action text, resource_type text, resource_id text, details jsonb)'),
             ('next_round(session_id text)'),
             ('password_needs_rehash(hash text)'), ('pause_session(session_id text)'),
             ('protect_column(tbl regclass, col name)'),
             ('protect_trigger()'), ('protected_column_report()'), ('protection_problem(tbl regclass, col name)'),
             ('resume_session(session_id text)'),
             ('rls_report(schemas name[])'), ('role()'), ('root_key_loaded()'),
             ('session_summary(session_id text)'), ('set_phase(session_id text, phase text)'),
             ('set_request(ip inet, user_agent text)'),
             ('start_session(problem_statement text, problem_context jsonb, max_rounds integer, budget numeric)'),
             ('uid()'), ('unprotect_column(tbl regclass, col name)'),
             ('verify_api_key(api_key text, key_hash bytea)'), ('verify_password(password text, hash text)')$$,
    'exactly the documented functions are executable by PUBLIC');

SELECT is((SELECT count(*)::int FROM pg_proc p WHERE p.pronamespace = 'brandbos'::regnamespace AND p.prosecdef
            AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)), 0,
          'every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp');

SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c WHERE c.relnamespace = 'brandbos'::regnamespace
            AND c.relkind IN ('r', 'S') AND has_table_privilege('public', c.oid, 'SELECT')),
          ARRAY['contributions', 'personas', 'sessions', 'users', 'votes'],
          'PUBLIC reads only the deliberation tables (under RLS), no other table or sequence');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
            WHERE c.relnamespace = 'brandbos'::regnamespace AND c.relkind = 'v'
              AND has_table_privilege('public', c.oid, 'SELECT')),
          ARRAY['protected_columns'], 'PUBLIC reads only the protected_columns view');
SELECT is((SELECT count(*)::int FROM pg_class c WHERE c.relnamespace = 'brandbos'::regnamespace
            AND c.relkind IN ('r', 'v', 'S')
            AND (has_table_privilege('brandbos_auditor', c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE'))), 0,
          'auditors write nothing directly');
SELECT ok(has_table_privilege('brandbos_auditor', 'brandbos.audit_log', 'SELECT'), 'auditors read the audit log');
SELECT ok(NOT has_table_privilege('brandbos_keymaster', 'brandbos.data_keys', 'SELECT'),
          'not even keymasters read the wrapped keys directly');
SELECT ok(has_function_privilege('brandbos_decryptor', 'brandbos.decrypt_text(text, text)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'brandbos.decrypt_text(text, text)', 'EXECUTE'),
          'decrypt is granted to decryptors only');
SELECT ok(has_function_privilege('brandbos_context_admin', 'brandbos.set_context(text, text, text, jsonb)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'brandbos.set_context(text, text, text, jsonb)', 'EXECUTE'),
          'set_context is granted to context admins only');

-- The whole access list: every function, table, view and sequence of the schema with each
-- privilege held by anyone but its owner, compared to the README's Roles table.
CREATE TEMP VIEW bb_acl AS
WITH objs AS (
  SELECT 'function' AS kind, p.oid::regprocedure::text AS name, p.proacl AS acl, p.proowner AS owner,
         'f'::"char" AS objtype
    FROM pg_proc p WHERE p.pronamespace = 'brandbos'::regnamespace
  UNION ALL
  SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'S' THEN 'sequence' ELSE 'table' END,
         c.oid::regclass::text, c.relacl, c.relowner, CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char"
    FROM pg_class c WHERE c.relnamespace = 'brandbos'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'S')
)
SELECT o.kind, o.name, CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee,
       a.privilege_type
  FROM objs o, aclexplode(coalesce(o.acl, acldefault(o.objtype, o.owner))) a
 WHERE a.grantee <> o.owner;

SELECT results_eq(
    $$SELECT grantee || ' ' || privilege_type || ' ' || name COLLATE "default" FROM bb_acl
       WHERE grantee <> 'PUBLIC' ORDER BY 1$$,
    $$VALUES ('brandbos_auditor EXECUTE brandbos.audit_digest()'),
             ('brandbos_auditor EXECUTE brandbos.prune_audit(timestamp with time zone)'),
             ('brandbos_auditor EXECUTE brandbos.redact_audit(bigint,text)'),
             ('brandbos_auditor EXECUTE brandbos.seal_audit()'),
             ('brandbos_auditor EXECUTE brandbos.verify_audit(bigint,jsonb)'),
             ('brandbos_auditor EXECUTE brandbos.verify_audit_digest(jsonb)'),
             ('brandbos_auditor SELECT brandbos.audit_blocks'),
             ('brandbos_auditor SELECT brandbos.audit_entries'),
             ('brandbos_auditor SELECT brandbos.audit_log'),
             ('brandbos_auditor SELECT brandbos.audit_prunes'),
             ('brandbos_auditor SELECT brandbos.audit_redactions'),
             ('brandbos_context_admin EXECUTE brandbos.seed_personas(jsonb)'),
             ('brandbos_context_admin EXECUTE brandbos.set_context(text,text,text,jsonb)'),
             ('brandbos_context_admin EXECUTE brandbos.sign_token(jsonb,interval)'),
             ('brandbos_context_admin EXECUTE brandbos.upsert_persona(text,text,text,text)'),
             ('brandbos_decryptor EXECUTE brandbos.decrypt(bytea,bytea)'),
             ('brandbos_decryptor EXECUTE brandbos.decrypt_column(uuid,bytea,"any")'),
             ('brandbos_decryptor EXECUTE brandbos.decrypt_column(uuid,text,"any")'),
             ('brandbos_decryptor EXECUTE brandbos.decrypt_text(text,text)'),
             ('brandbos_keymaster EXECUTE brandbos.destroy_key(integer,boolean)'),
             ('brandbos_keymaster EXECUTE brandbos.key_status()'),
             ('brandbos_keymaster EXECUTE brandbos.reencrypt(regclass,integer)'),
             ('brandbos_keymaster EXECUTE brandbos.reencrypt_table(regclass,integer)'),
             ('brandbos_keymaster EXECUTE brandbos.retire_key(integer)'),
             ('brandbos_keymaster EXECUTE brandbos.rewrap_keys()'),
             ('brandbos_keymaster EXECUTE brandbos.rotate_key()'),
             ('brandbos_keymaster SELECT brandbos.reencrypt_progress')$$,
    'every privilege held by a group role is one the README documents, and no other role holds any');
SELECT is((SELECT array_agg(DISTINCT kind || ':' || privilege_type ORDER BY kind || ':' || privilege_type)
             FROM bb_acl WHERE grantee = 'PUBLIC'),
          ARRAY['function:EXECUTE', 'table:SELECT', 'view:SELECT'],
          'PUBLIC holds nothing but EXECUTE on the listed functions and SELECT on the listed relations');
SELECT is((SELECT count(*)::int FROM bb_acl WHERE kind = 'sequence'), 0,
          'no sequence of the extension is usable by anyone but its owner');

SELECT * FROM finish();
ROLLBACK;
