-- Tenant isolation under the usual Supabase-style grants (GRANT ALL ON ALL TABLES IN SCHEMA
-- ... TO the application role), which hand every tenant TRIGGER, TRUNCATE and REFERENCES:
--   - a role that does not own a table brandbos isolates, protects or audits (or a partition
--     of one) cannot add a trigger to it (42501): a trigger runs with the rights of whoever
--     writes the table, other tenants, a decryptor, a superuser;
--   - it cannot TRUNCATE an isolated table or any partition of it (42501): row level
--     security does not apply to TRUNCATE;
--   - the audit row of a TRUNCATE counts every row that went, not those the truncating role
--     sees under forced row level security;
--   - rls_report names the grants row level security does not limit and a missing guard;
--   - enabling isolation on a table with permissive policies of its own never widens them;
--   - a foreign table cannot join an isolated table through ALTER FOREIGN TABLE either.
--
-- The attackers are ordinary login roles: bb57_app (a tenant's application role, granted
-- ALL on every table of the schema) and bb57_owner (owns the tables, not a superuser).
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
CREATE EXTENSION file_fdw;
SELECT plan(44);

CREATE ROLE bb57_owner LOGIN;
CREATE ROLE bb57_app LOGIN;
GRANT brandbos_context_admin TO bb57_app, bb57_owner;
GRANT brandbos_auditor TO bb57_owner;     -- reads the audit rows of its own TRUNCATE below
CREATE SCHEMA s57 AUTHORIZATION bb57_owner;
GRANT USAGE ON SCHEMA s57 TO bb57_app;
CREATE SERVER t57_files FOREIGN DATA WRAPPER file_fdw;
GRANT USAGE ON FOREIGN SERVER t57_files TO bb57_owner;

SET LOCAL ROLE bb57_owner;
CREATE TABLE s57.docs (id int PRIMARY KEY, tenant_id text, body text);
INSERT INTO s57.docs VALUES (1, 'tenant-a', 'a'), (2, 'tenant-b', 'b');
SELECT brandbos.enable_tenant_isolation('s57.docs');
CREATE TABLE s57.pdocs (id int, tenant_id text, body text) PARTITION BY LIST (id);
CREATE TABLE s57.pdocs1 PARTITION OF s57.pdocs FOR VALUES IN (1, 2);
INSERT INTO s57.pdocs VALUES (1, 'tenant-a', 'a'), (2, 'tenant-b', 'b');
SELECT brandbos.enable_tenant_isolation('s57.pdocs');
CREATE TABLE s57.pdocs2 PARTITION OF s57.pdocs FOR VALUES IN (3, 4);
CREATE TABLE s57.creds (id int PRIMARY KEY, secret text);
SELECT brandbos.protect_column('s57.creds', 'secret');
CREATE TABLE s57.logged (id int PRIMARY KEY, body text);
SELECT brandbos.enable_audit('s57.logged');
CREATE TABLE s57.plain (id int, body text);
CREATE FUNCTION s57.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TABLE s57.news (id int PRIMARY KEY, tenant_id text, published bool, body text);
INSERT INTO s57.news VALUES (1, 'tenant-a', true, 'public'), (2, 'tenant-a', false, 'embargoed draft');
ALTER TABLE s57.news ENABLE ROW LEVEL SECURITY;
CREATE POLICY published_only ON s57.news FOR SELECT USING (published);
GRANT ALL ON s57.docs, s57.pdocs, s57.pdocs1, s57.pdocs2, s57.creds, s57.logged, s57.plain, s57.news TO bb57_app;
RESET ROLE;

-- ---------------------------------------------------------------------------------------
-- triggers: only the owner adds one to a table brandbos manages
-- ---------------------------------------------------------------------------------------
SAVEPOINT tenant_triggers;
SET LOCAL ROLE bb57_app;
SELECT brandbos.set_context('user-a', 'tenant-a');
CREATE FUNCTION pg_temp.loot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('loot', current_user || ' ' || (SELECT string_agg(body, ',') FROM s57.docs));
	RETURN NEW;
END $$;
SELECT throws_ok($$CREATE TRIGGER zzz AFTER INSERT ON s57.pdocs FOR EACH ROW EXECUTE FUNCTION pg_temp.loot()$$,
                 '42501', NULL, 'a tenant cannot add a trigger to an isolated partitioned table');
SELECT throws_ok($$CREATE TRIGGER zzz AFTER INSERT ON s57.pdocs1 FOR EACH ROW EXECUTE FUNCTION pg_temp.loot()$$,
                 '42501', NULL, '... nor to one of its partitions');
SELECT throws_ok($$CREATE TRIGGER zzz BEFORE UPDATE ON s57.pdocs2 FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.loot()$$,
                 '42501', NULL, '... nor to a partition created after isolation, even a statement trigger');
SELECT throws_ok($$CREATE TRIGGER zzz AFTER INSERT ON s57.docs FOR EACH ROW EXECUTE FUNCTION pg_temp.loot()$$,
                 '42501', NULL, '... nor to an isolated table');
SELECT throws_ok($$CREATE CONSTRAINT TRIGGER zzz AFTER INSERT ON s57.docs DEFERRABLE FOR EACH ROW EXECUTE FUNCTION pg_temp.loot()$$,
                 '42501', NULL, '... nor a constraint trigger');
SELECT throws_ok($$CREATE TRIGGER zzz AFTER UPDATE ON s57.creds FOR EACH ROW EXECUTE FUNCTION pg_temp.loot()$$,
                 '42501', NULL, 'a non-owner cannot add a trigger to a table with a protected column');
SELECT throws_ok($$CREATE TRIGGER zzz AFTER INSERT ON s57.logged FOR EACH ROW EXECUTE FUNCTION pg_temp.loot()$$,
                 '42501', NULL, '... nor to an audited table');
SELECT throws_ok($$CREATE RULE zzz AS ON INSERT TO s57.docs DO ALSO NOTIFY loot$$,
                 '42501', NULL, 'and a rule needs the owner anyway (PostgreSQL''s own check)');
SELECT lives_ok($$CREATE TRIGGER zzz AFTER INSERT ON s57.plain FOR EACH ROW EXECUTE FUNCTION pg_temp.loot()$$,
                'a table brandbos does not manage keeps PostgreSQL''s TRIGGER privilege');
ROLLBACK TO SAVEPOINT tenant_triggers;

SET LOCAL ROLE bb57_owner;
SELECT lives_ok($$CREATE TRIGGER owner_touch BEFORE UPDATE ON s57.docs FOR EACH ROW EXECUTE FUNCTION s57.touch()$$,
                'the owner adds its own trigger to its isolated table');
RESET ROLE;
SAVEPOINT tenant_replace;
SET LOCAL ROLE bb57_app;
SELECT throws_ok($$CREATE OR REPLACE TRIGGER owner_touch BEFORE UPDATE ON s57.docs FOR EACH ROW EXECUTE FUNCTION s57.touch()$$,
                 '42501', NULL, 'a tenant cannot replace the owner''s trigger either');
ROLLBACK TO SAVEPOINT tenant_replace;
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgname = 'zzz'), 0, 'no tenant trigger is left anywhere');

-- ---------------------------------------------------------------------------------------
-- TRUNCATE: only the owner empties an isolated table
-- ---------------------------------------------------------------------------------------
SELECT is((SELECT count(*)::int FROM pg_trigger t WHERE t.tgname = 'brandbos_truncate_guard' AND t.tgenabled = 'A'
            AND t.tgfoid::regprocedure::text = 'brandbos.isolation_truncate_guard()'
            AND t.tgrelid IN ('s57.docs'::regclass, 's57.pdocs'::regclass, 's57.pdocs1'::regclass, 's57.pdocs2'::regclass)),
          4, 'every isolated relation, a partition created later too, has the truncate guard, enabled always');
SAVEPOINT tenant_truncate;
SET LOCAL ROLE bb57_app;
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT throws_ok('TRUNCATE s57.pdocs', '42501', NULL, 'a tenant cannot TRUNCATE an isolated partitioned table');
SELECT throws_ok('TRUNCATE s57.pdocs1', '42501', NULL, '... nor one of its partitions');
SELECT throws_ok('TRUNCATE s57.docs', '42501', NULL, '... nor an isolated table');
ROLLBACK TO SAVEPOINT tenant_truncate;
SELECT is((SELECT count(*)::int FROM s57.docs) + (SELECT count(*)::int FROM s57.pdocs), 4,
          'every tenant''s rows are still there');
SAVEPOINT owner_truncate;
SET LOCAL ROLE bb57_owner;
SELECT lives_ok('TRUNCATE s57.pdocs', 'the owner still truncates its table');
ROLLBACK TO SAVEPOINT owner_truncate;

-- ---------------------------------------------------------------------------------------
-- the audit row of a TRUNCATE counts every row, whatever the truncating role sees
-- ---------------------------------------------------------------------------------------
SET LOCAL ROLE bb57_owner;
CREATE TABLE s57.aud (id int PRIMARY KEY, tenant_id text, body text);
INSERT INTO s57.aud VALUES (1, 'tenant-a', 'a'), (2, 'tenant-b', 'b');
SELECT brandbos.enable_tenant_isolation('s57.aud');
SELECT brandbos.enable_audit('s57.aud');
CREATE TABLE s57.paud (id int PRIMARY KEY, tenant_id text, body text) PARTITION BY LIST (id);
CREATE TABLE s57.paud1 PARTITION OF s57.paud FOR VALUES IN (1, 2);
CREATE TABLE s57.paud2 PARTITION OF s57.paud FOR VALUES IN (3);
INSERT INTO s57.paud VALUES (1, 'tenant-a', 'a'), (2, 'tenant-b', 'b'), (3, 'tenant-b', 'b');
SELECT brandbos.enable_tenant_isolation('s57.paud');
SELECT brandbos.enable_audit('s57.paud');
RESET ROLE;
SAVEPOINT audit_count;
SET LOCAL ROLE bb57_owner;
SELECT brandbos.set_context('owner-user', 'tenant-a');
SELECT is((SELECT count(*)::int FROM s57.aud), 1, 'under forced row level security the owner sees one row of two');
TRUNCATE s57.aud;
TRUNCATE s57.paud;
SELECT is((SELECT details FROM brandbos.audit_log WHERE action = 'truncate' AND resource_type = 's57.aud'),
          '{"row_count": 2}'::jsonb, 'the audit row counts both rows the TRUNCATE removed');
SELECT is((SELECT details FROM brandbos.audit_log WHERE action = 'truncate' AND resource_type = 's57.paud'),
          '{"row_count": 3}'::jsonb, '... and every leaf partition of a partitioned table');
ROLLBACK TO SAVEPOINT audit_count;

-- ---------------------------------------------------------------------------------------
-- rls_report: grants row level security does not limit, a missing guard
-- ---------------------------------------------------------------------------------------
SET LOCAL ROLE bb57_owner;
SELECT ok((SELECT bool_or(p LIKE '%: bb57\_app holds TRUNCATE TRIGGER REFERENCES (%') FROM brandbos.rls_report(ARRAY['s57']) r,
                  unnest(r.problems) p WHERE r.table_name = 's57.docs'::regclass),
          'rls_report names the tenant''s TRUNCATE, TRIGGER and REFERENCES on an isolated table');
SELECT ok((SELECT bool_or(p LIKE '%: bb57\_app holds TRUNCATE TRIGGER REFERENCES (%') FROM brandbos.rls_report(ARRAY['s57']) r,
                  unnest(r.problems) p WHERE r.table_name = 's57.pdocs1'::regclass),
          '... and on a partition');
REVOKE TRUNCATE, TRIGGER, REFERENCES ON s57.docs FROM bb57_app;
SELECT is((SELECT problems FROM brandbos.rls_report(ARRAY['s57']) WHERE table_name = 's57.docs'::regclass),
          '{}'::text[], 'revoked, the isolated table has no problem left');
GRANT REFERENCES ON s57.docs TO PUBLIC;
SELECT ok((SELECT bool_or(p LIKE '%: PUBLIC holds REFERENCES (%') FROM brandbos.rls_report(ARRAY['s57']) r,
                  unnest(r.problems) p WHERE r.table_name = 's57.docs'::regclass),
          'REFERENCES granted to PUBLIC is named too');
REVOKE REFERENCES ON s57.docs FROM PUBLIC;
DROP TRIGGER IF EXISTS brandbos_truncate_guard ON s57.docs;
SELECT ok((SELECT bool_or(p LIKE 'trigger brandbos\_truncate\_guard is missing%') FROM brandbos.rls_report(ARRAY['s57']) r,
                  unnest(r.problems) p WHERE r.table_name = 's57.docs'::regclass),
          'rls_report flags an isolated table whose owner dropped the truncate guard');
SELECT brandbos.enable_tenant_isolation('s57.docs');
SELECT is((SELECT problems FROM brandbos.rls_report(ARRAY['s57']) WHERE table_name = 's57.docs'::regclass),
          '{}'::text[], 'enabling isolation again puts it back');
RESET ROLE;

-- ---------------------------------------------------------------------------------------
-- enabling isolation never widens a table's own permissive policies
-- ---------------------------------------------------------------------------------------
SAVEPOINT news_before;
SET LOCAL ROLE bb57_app;
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT results_eq('SELECT id FROM s57.news ORDER BY id', ARRAY[1], 'before isolation a tenant sees published rows only');
ROLLBACK TO SAVEPOINT news_before;
SET LOCAL ROLE bb57_owner;
SELECT lives_ok($$SELECT brandbos.enable_tenant_isolation('s57.news')$$, 'the owner isolates the table with its own policy');
RESET ROLE;
SAVEPOINT news_after;
SET LOCAL ROLE bb57_app;
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT results_eq('SELECT id FROM s57.news ORDER BY id', ARRAY[1], 'after isolation the draft stays hidden');
SELECT is((SELECT count(*)::int FROM s57.news WHERE NOT published), 0, '... however it is asked for');
SELECT lives_ok($$INSERT INTO s57.news VALUES (3, 'tenant-a', false, 'new draft')$$,
                'commands the table''s policies do not cover still work for the tenant');
SELECT throws_ok($$INSERT INTO s57.news VALUES (4, 'tenant-b', true, 'planted')$$, '42501', NULL,
                 '... within its tenant');
ROLLBACK TO SAVEPOINT news_after;
SELECT is((SELECT array_agg(policyname::text ORDER BY policyname) FROM pg_policies
            WHERE schemaname = 's57' AND tablename = 'news' AND permissive = 'PERMISSIVE'),
          ARRAY['brandbos_base_delete', 'brandbos_base_insert', 'brandbos_base_update', 'published_only'],
          'brandbos_base admits only the commands no policy of the table covers');
REVOKE TRUNCATE, TRIGGER, REFERENCES ON s57.news FROM bb57_app;
SELECT is((SELECT problems FROM brandbos.rls_report(ARRAY['s57']) WHERE table_name = 's57.news'::regclass),
          '{}'::text[], 'rls_report sees nothing wrong with it');
SET LOCAL ROLE bb57_owner;
CREATE POLICY own_rows ON s57.docs FOR SELECT USING (body <> 'hidden');
SELECT ok((SELECT bool_or(p LIKE '%base policy admits every row for select%') FROM brandbos.rls_report(ARRAY['s57']) r,
                  unnest(r.problems) p WHERE r.table_name = 's57.docs'::regclass),
          'rls_report flags a permissive policy that brandbos_base makes pointless');
SELECT brandbos.enable_tenant_isolation('s57.docs');
SELECT is((SELECT problems FROM brandbos.rls_report(ARRAY['s57']) WHERE table_name = 's57.docs'::regclass),
          '{}'::text[], 'enabling isolation again hands SELECT back to the table''s policy');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 's57' AND tablename = 'docs'
                       AND policyname IN ('brandbos_base', 'brandbos_base_select')),
          '... and no base policy admits SELECT any more');
RESET ROLE;

-- ---------------------------------------------------------------------------------------
-- ALTER FOREIGN TABLE ... INHERIT cannot put a foreign table under an isolated table
-- ---------------------------------------------------------------------------------------
-- (file_fdw's filename option needs a superuser; the owner gets the table)
CREATE FOREIGN TABLE s57.ft (id int NOT NULL, tenant_id text, body text)
	SERVER t57_files OPTIONS (filename '/dev/null');
ALTER FOREIGN TABLE s57.ft OWNER TO bb57_owner;
SET LOCAL ROLE bb57_owner;
SELECT throws_ok('ALTER FOREIGN TABLE s57.ft INHERIT s57.docs', '42809', NULL,
                 'ALTER FOREIGN TABLE ... INHERIT an isolated table is refused');
SELECT throws_ok('ALTER TABLE s57.ft INHERIT s57.docs', '42809', NULL, '... as ALTER TABLE ... INHERIT is');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_inherits WHERE inhrelid = 's57.ft'::regclass), 0,
          'the foreign table is under no isolated table');

-- ---------------------------------------------------------------------------------------
-- disable_isolation takes the truncate guard with it
-- ---------------------------------------------------------------------------------------
SET LOCAL ROLE bb57_owner;
SELECT lives_ok($$SELECT brandbos.disable_isolation('s57.pdocs')$$, 'the owner disables isolation of the tree');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgfoid::regprocedure::text = 'brandbos.isolation_truncate_guard()'
            AND tgrelid IN (SELECT relid FROM pg_partition_tree('s57.pdocs'))), 0,
          'no truncate guard is left on the tree');
SAVEPOINT tenant_after_disable;
SET LOCAL ROLE bb57_app;
SELECT lives_ok($$CREATE TRIGGER zzz AFTER INSERT ON s57.pdocs1 FOR EACH ROW EXECUTE FUNCTION s57.touch()$$,
                'a table no longer isolated is back to PostgreSQL''s TRIGGER privilege');
ROLLBACK TO SAVEPOINT tenant_after_disable;

SELECT * FROM finish();
ROLLBACK;
