-- Tenant and owner isolation under a hostile tenant and a careless or hostile table owner
-- (SPEC section 4): every partition of an isolated table is isolated (present ones,
-- created later, attached later, sub-partitions); isolation policies are restrictive, so
-- tenant plus owner isolation means both and no permissive policy widens them; the admin
-- stays in its own tenant; the tenant predicate stays an index condition (SPEC 7);
-- rls_report has a row per partition and flags what is open.
--
-- The attackers are ordinary login roles: bb54_app (the application role, granted every
-- table of the schema, as tenants usually are) and bb54_owner (owns the tables, not a
-- superuser).  Each block that sets a context sits in a savepoint.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
CREATE EXTENSION file_fdw;
SELECT plan(83);

-- rows affected by a statement
CREATE FUNCTION t54_rows(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	EXECUTE q;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
-- what the calling role can do to tenant B's rows of a table: 'seen N, updated N, deleted N'
-- (the changes are rolled back, so each table is tried on its own)
CREATE FUNCTION t54_reach_b(tbl regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	res text;
BEGIN
	BEGIN
		EXECUTE format('SELECT count(*) FROM %s WHERE tenant_id = %L', tbl, 'tenant-b') INTO res;
		res := format('seen %s, updated %s, deleted %s', res,
		              t54_rows(format('UPDATE %s SET body = %L WHERE tenant_id = %L', tbl, 'hacked', 'tenant-b')),
		              t54_rows(format('DELETE FROM %s WHERE tenant_id = %L', tbl, 'tenant-b')));
		RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = res;
	EXCEPTION WHEN raise_exception THEN
		RETURN SQLERRM;
	END;
END
$$;
CREATE FUNCTION t54_explain(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
	res text := '';
BEGIN
	FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		res := res || r || E'\n';
	END LOOP;
	RETURN res;
END
$$;

CREATE ROLE bb54_owner LOGIN;          -- owns the tables, not a superuser
CREATE ROLE bb54_app LOGIN;            -- the application role
CREATE ROLE bb54_ops LOGIN;            -- a backend role for admin requests
GRANT brandbos_context_admin TO bb54_app, bb54_ops, bb54_owner;
GRANT brandbos_tenant_admin TO bb54_ops;
CREATE SCHEMA s54 AUTHORIZATION bb54_owner;
CREATE SCHEMA s54x AUTHORIZATION bb54_owner;
GRANT USAGE ON SCHEMA s54, s54x TO bb54_app, bb54_ops;
ALTER DEFAULT PRIVILEGES FOR ROLE bb54_owner IN SCHEMA s54, s54x
	GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO bb54_app, bb54_ops;
CREATE SERVER t54_files FOREIGN DATA WRAPPER file_fdw;
GRANT USAGE ON FOREIGN SERVER t54_files TO bb54_owner;

-- ---------------------------------------------------------------------------------------
-- a partitioned table with a sub-partitioned partition, isolated by its owner
-- ---------------------------------------------------------------------------------------
SET LOCAL ROLE bb54_owner;
CREATE TABLE s54.events (id int, tenant_id text, body text) PARTITION BY RANGE (id);
CREATE TABLE s54.events_1 PARTITION OF s54.events FOR VALUES FROM (0) TO (100);
CREATE TABLE s54.events_2 PARTITION OF s54.events FOR VALUES FROM (100) TO (200) PARTITION BY LIST (tenant_id);
CREATE TABLE s54.events_2a PARTITION OF s54.events_2 FOR VALUES IN ('tenant-a');
CREATE TABLE s54.events_2b PARTITION OF s54.events_2 FOR VALUES IN ('tenant-b');
INSERT INTO s54.events VALUES (1, 'tenant-a', 'a'), (2, 'tenant-b', 'b'), (101, 'tenant-a', 'a'), (102, 'tenant-b', 'b');
SELECT lives_ok($$SELECT brandbos.enable_tenant_isolation('s54.events')$$, 'the owner isolates the partitioned table');
-- later: a partition, a sub-partition, an attached table, a partition created by a tenant grant
CREATE TABLE s54.events_3 PARTITION OF s54.events FOR VALUES FROM (200) TO (300);
CREATE TABLE s54.events_2c PARTITION OF s54.events_2 FOR VALUES IN ('tenant-c', 'tenant-b2');
CREATE TABLE s54.events_4 (id int, tenant_id text, body text);
INSERT INTO s54.events_4 VALUES (301, 'tenant-a', 'a'), (302, 'tenant-b', 'b');
-- a look-alike planted before attaching: brandbos's name, an expression that admits all
CREATE POLICY brandbos_tenant_select ON s54.events_4 AS RESTRICTIVE FOR SELECT USING (true);
CREATE POLICY brandbos_tenant_update ON s54.events_4 FOR UPDATE USING (true);
SELECT lives_ok($$ALTER TABLE s54.events ATTACH PARTITION s54.events_4 FOR VALUES FROM (300) TO (400)$$,
                'the owner attaches a table as a partition');
CREATE TABLE s54.events_5 (id int, tenant_id text, body text) PARTITION BY RANGE (id);
CREATE TABLE s54.events_5a PARTITION OF s54.events_5 FOR VALUES FROM (400) TO (500);
SELECT lives_ok($$ALTER TABLE s54.events ATTACH PARTITION s54.events_5 FOR VALUES FROM (400) TO (500)$$,
                'the owner attaches a partitioned table with its own partition');
CREATE TABLE s54x.events_x PARTITION OF s54.events FOR VALUES FROM (600) TO (700);
RESET ROLE;
-- rows of both tenants in the later partitions (the superuser bypasses RLS)
INSERT INTO s54.events VALUES (201, 'tenant-a', 'a'), (202, 'tenant-b', 'b'), (401, 'tenant-a', 'a'), (402, 'tenant-b', 'b');
INSERT INTO s54.events_2c VALUES (151, 'tenant-c', 'c');
INSERT INTO s54.events VALUES (601, 'tenant-a', 'a'), (602, 'tenant-b', 'b');
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA s54, s54x TO bb54_app, bb54_ops;

SELECT is((SELECT count(*)::int FROM pg_class c WHERE c.oid IN (SELECT relid FROM pg_partition_tree('s54.events'))
            AND c.relrowsecurity AND c.relforcerowsecurity), 11,
          'all eleven relations of the tree have row level security enabled and forced');
SELECT is((SELECT count(*)::int FROM pg_policies WHERE schemaname IN ('s54', 's54x') AND tablename LIKE 'events%'
            AND policyname LIKE 'brandbos_tenant_%' AND permissive = 'RESTRICTIVE' AND roles = '{public}'), 44,
          'each of them has the four tenant policies, restrictive and for every role');
SELECT is((SELECT count(*)::int FROM pg_policies WHERE schemaname IN ('s54', 's54x') AND tablename LIKE 'events%'
            AND policyname = 'brandbos_base' AND permissive = 'PERMISSIVE' AND qual = 'true'), 11,
          'and the permissive brandbos_base');

SAVEPOINT tenant_a;
SET LOCAL ROLE bb54_app;
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT results_eq($$SELECT id FROM s54.events ORDER BY id$$, ARRAY[1, 101, 201, 301, 401, 601],
                  'through the parent, tenant A sees its rows only');
SELECT is(t54_reach_b('s54.events_1'), 'seen 0, updated 0, deleted 0', 'a present partition: no reach into tenant B');
SELECT is(t54_reach_b('s54.events_2'), 'seen 0, updated 0, deleted 0', 'a present sub-partitioned partition: none');
SELECT is(t54_reach_b('s54.events_2b'), 'seen 0, updated 0, deleted 0', 'a present sub-partition: none');
SELECT is(t54_reach_b('s54.events_3'), 'seen 0, updated 0, deleted 0', 'a partition created later: none');
SELECT is(t54_reach_b('s54.events_4'), 'seen 0, updated 0, deleted 0', 'a table attached later: none');
SELECT is(t54_reach_b('s54.events_5'), 'seen 0, updated 0, deleted 0', 'a partitioned table attached later: none');
SELECT is(t54_reach_b('s54.events_5a'), 'seen 0, updated 0, deleted 0', '... and its own partition: none');
SELECT is(t54_reach_b('s54x.events_x'), 'seen 0, updated 0, deleted 0', 'a later partition in another schema: none');
SELECT is((SELECT count(*)::int FROM s54.events_2c), 0, 'a sub-partition created later shows tenant C nothing');
SELECT is(t54_rows($$UPDATE s54.events_2c SET body = 'x'$$), 0::bigint, '... and updates none of its rows');
SELECT results_eq($$SELECT id FROM s54.events_4 ORDER BY id$$, ARRAY[301], 'the attached table: own rows only');
SELECT throws_ok($$INSERT INTO s54.events_3 VALUES (203, 'tenant-b', 'planted')$$, '42501', NULL,
                 'planting a tenant B row straight into a later partition: 42501');
SELECT throws_ok($$INSERT INTO s54.events_4 VALUES (303, 'tenant-b', 'planted')$$, '42501', NULL,
                 '... into an attached one: 42501');
SELECT throws_ok($$UPDATE s54.events_1 SET tenant_id = 'tenant-b' WHERE id = 1$$, '42501', NULL,
                 'moving an own row to tenant B inside a partition: 42501');
SELECT lives_ok($$INSERT INTO s54.events_4 (id, body) VALUES (304, 'mine')$$, 'an own row into the attached table');
SELECT is((SELECT tenant_id FROM s54.events_4 WHERE id = 304), 'tenant-a', '... gets tenant A from the default');
ROLLBACK TO SAVEPOINT tenant_a;
SELECT is((SELECT count(*)::int FROM s54.events WHERE tenant_id = 'tenant-b' AND body = 'b'), 6,
          'tenant B''s rows are all there, untouched');

-- no context: nothing, through any partition
SAVEPOINT none;
SET LOCAL ROLE bb54_app;
SELECT is((SELECT count(*)::int FROM s54.events_3) + (SELECT count(*)::int FROM s54.events_5a), 0,
          'without a context the later partitions show nothing');
ROLLBACK TO SAVEPOINT none;

-- inheritance children, and a partition created inside CREATE SCHEMA (by a superuser,
-- rolled back: the partition is the superuser's)
SET LOCAL ROLE bb54_owner;
CREATE TABLE s54.docs (id int, tenant_id text, body text);
SELECT brandbos.enable_tenant_isolation('s54.docs');
CREATE TABLE s54.docs_child (extra int) INHERITS (s54.docs);
CREATE TABLE s54.docs_adopted (id int, tenant_id text, body text);
ALTER TABLE s54.docs_adopted INHERIT s54.docs;
RESET ROLE;
INSERT INTO s54.docs_child VALUES (1, 'tenant-b', 'b', 0);
INSERT INTO s54.docs_adopted VALUES (2, 'tenant-b', 'b');
SAVEPOINT schema_elt;
CREATE SCHEMA s54y CREATE TABLE events_y PARTITION OF s54.events FOR VALUES FROM (700) TO (800);
SELECT is((SELECT count(*)::int FROM pg_policies WHERE schemaname = 's54y' AND tablename = 'events_y'
            AND policyname LIKE 'brandbos_tenant_%' AND permissive = 'RESTRICTIVE'), 4,
          'a partition created inside CREATE SCHEMA is isolated');
ROLLBACK TO SAVEPOINT schema_elt;
SAVEPOINT inherit_a;
SET LOCAL ROLE bb54_app;
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT is(t54_reach_b('s54.docs_child'), 'seen 0, updated 0, deleted 0', 'a child created with INHERITS: no reach');
SELECT is(t54_reach_b('s54.docs_adopted'), 'seen 0, updated 0, deleted 0', 'a table adopted with INHERIT: no reach');
ROLLBACK TO SAVEPOINT inherit_a;

-- a foreign table cannot carry row level security, so it cannot join (not even for a superuser)
CREATE FOREIGN TABLE s54.events_f (id int, tenant_id text, body text) SERVER t54_files OPTIONS (filename '/dev/null');
SELECT throws_ok($$ALTER TABLE s54.events ATTACH PARTITION s54.events_f FOR VALUES FROM (900) TO (1000)$$, '42809', NULL,
                 'attaching a foreign table to an isolated table: 42809');
SELECT throws_ok($$CREATE FOREIGN TABLE s54.events_g PARTITION OF s54.events FOR VALUES FROM (1000) TO (1100)
                   SERVER t54_files OPTIONS (filename '/dev/null')$$, '42809', NULL,
                 'a foreign partition of an isolated table: 42809');

-- the guard's event trigger: the owner cannot touch it; with preload, nor can a superuser
SET LOCAL ROLE bb54_owner;
SELECT throws_ok('ALTER EVENT TRIGGER brandbos_isolation_guard DISABLE', '42501', NULL,
                 'the table owner cannot disable the isolation guard');
RESET ROLE;
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
       THEN throws_ok('ALTER EVENT TRIGGER brandbos_isolation_guard DISABLE', '42501', NULL,
                      'with preload, a superuser cannot disable the isolation guard')
       ELSE lives_ok('ALTER EVENT TRIGGER brandbos_isolation_guard DISABLE; ALTER EVENT TRIGGER brandbos_isolation_guard ENABLE ALWAYS',
                     'without preload, a superuser can disable the isolation guard (README)') END;

-- ---------------------------------------------------------------------------------------
-- restrictive: a hostile permissive policy by the owner does not widen
-- ---------------------------------------------------------------------------------------
SET LOCAL ROLE bb54_owner;
CREATE POLICY open_all ON s54.events USING (true) WITH CHECK (true);
CREATE POLICY open_part ON s54.events_1 USING (true) WITH CHECK (true);
CREATE POLICY open_later ON s54.events_4 FOR ALL TO PUBLIC USING (tenant_id = 'tenant-b');
RESET ROLE;
SAVEPOINT hostile;
SET LOCAL ROLE bb54_app;
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT results_eq($$SELECT id FROM s54.events ORDER BY id$$, ARRAY[1, 101, 201, 301, 401, 601],
                  'a USING (true) policy on the parent adds no row');
SELECT is(t54_reach_b('s54.events_1'), 'seen 0, updated 0, deleted 0', 'nor one on a partition');
SELECT is(t54_reach_b('s54.events_4'), 'seen 0, updated 0, deleted 0', 'nor a policy naming tenant B');
SELECT throws_ok($$INSERT INTO s54.events VALUES (5, 'tenant-b', 'planted')$$, '42501', NULL,
                 'a WITH CHECK (true) policy lets no tenant B row in: 42501');
ROLLBACK TO SAVEPOINT hostile;

-- ---------------------------------------------------------------------------------------
-- tenant plus owner isolation: a row must pass both (the private note)
-- ---------------------------------------------------------------------------------------
SET LOCAL ROLE bb54_owner;
CREATE TABLE s54.notes (id int PRIMARY KEY, tenant_id text, user_id text, body text);
INSERT INTO s54.notes VALUES (1, 'tenant-a', 'alice', 'alice private'), (2, 'tenant-a', 'bob', 'bob private'),
                             (3, 'tenant-b', 'carol', 'carol private'), (4, 'tenant-b', 'alice', 'alice in B');
SELECT brandbos.enable_tenant_isolation('s54.notes');
SELECT brandbos.enable_owner_isolation('s54.notes');
-- the other order, on a second table
CREATE TABLE s54.notes2 (id int PRIMARY KEY, tenant_id text, user_id text, body text);
INSERT INTO s54.notes2 VALUES (1, 'tenant-a', 'alice', 'alice private'), (2, 'tenant-a', 'bob', 'bob private'),
                              (3, 'tenant-b', 'carol', 'carol private'), (4, 'tenant-b', 'alice', 'alice in B');
SELECT brandbos.enable_owner_isolation('s54.notes2');
SELECT brandbos.enable_tenant_isolation('s54.notes2');
CREATE POLICY open_notes ON s54.notes USING (true);
RESET ROLE;
SAVEPOINT alice;
SET LOCAL ROLE bb54_app;
SELECT brandbos.set_context('alice', 'tenant-a');
SELECT results_eq($$SELECT id FROM s54.notes ORDER BY id$$, ARRAY[1],
                  'alice in tenant A sees her own note only, not bob''s, not her tenant B one');
SELECT results_eq($$SELECT id FROM s54.notes2 ORDER BY id$$, ARRAY[1], 'the same when owner isolation came first');
SELECT is(t54_rows($$UPDATE s54.notes SET body = 'read' WHERE id = 2$$), 0::bigint, 'bob''s note cannot be updated');
SELECT is(t54_rows($$DELETE FROM s54.notes WHERE id = 2$$), 0::bigint, '... nor deleted');
SELECT throws_ok($$INSERT INTO s54.notes VALUES (5, 'tenant-a', 'bob', 'forged')$$, '42501', NULL,
                 'a note in her tenant for bob: 42501');
SELECT throws_ok($$INSERT INTO s54.notes VALUES (6, 'tenant-b', 'alice', 'elsewhere')$$, '42501', NULL,
                 'a note of her own in tenant B: 42501');
-- an admin app role on an ordinary database role is nobody special
SELECT brandbos.set_context('alice', 'tenant-a', 'admin');
SELECT results_eq($$SELECT id FROM s54.notes ORDER BY id$$, ARRAY[1],
                  'app role admin without brandbos_tenant_admin: still her own note only');
ROLLBACK TO SAVEPOINT alice;

-- ---------------------------------------------------------------------------------------
-- the admin: crosses users, never tenants
-- ---------------------------------------------------------------------------------------
SET LOCAL ROLE bb54_owner;
CREATE TABLE s54.profiles (id int PRIMARY KEY, user_id text, body text);
INSERT INTO s54.profiles VALUES (1, 'ops', 'own'), (2, 'alice', 'hers');
SELECT brandbos.enable_owner_isolation('s54.profiles');
RESET ROLE;
SAVEPOINT admin;
SET LOCAL ROLE bb54_ops;
SELECT brandbos.set_context('ops', 'tenant-a', 'admin');
SELECT results_eq($$SELECT id FROM s54.events ORDER BY id$$, ARRAY[1, 101, 201, 301, 401, 601],
                  'a tenant admin with app role admin sees its own tenant only');
SELECT is(t54_reach_b('s54.events_3'), 'seen 0, updated 0, deleted 0', '... also through a partition');
SELECT throws_ok($$INSERT INTO s54.events VALUES (6, 'tenant-b', 'by admin')$$, '42501', NULL,
                 '... and writes no row of another tenant: 42501');
SELECT results_eq($$SELECT id FROM s54.notes ORDER BY id$$, ARRAY[1, 2],
                  'on a tenant- and owner-isolated table it sees every user''s rows of its tenant');
SELECT lives_ok($$INSERT INTO s54.notes VALUES (7, 'tenant-a', 'bob', 'for bob')$$,
                '... and may write one for another user of its tenant');
SELECT throws_ok($$INSERT INTO s54.notes VALUES (8, 'tenant-b', 'carol', 'for carol')$$, '42501', NULL,
                 '... not for another tenant: 42501');
SELECT results_eq($$SELECT id FROM s54.profiles ORDER BY id$$, ARRAY[1],
                  'on an owner-only table (no tenant to keep it in) it sees only its own rows');
SELECT brandbos.set_context('svc', 'tenant-b', 'service_role');
SELECT results_eq($$SELECT id FROM s54.notes ORDER BY id$$, ARRAY[3, 4], 'service_role in tenant B: tenant B''s notes');
SELECT is((SELECT count(*)::int FROM s54.events WHERE tenant_id <> 'tenant-b'), 0, '... and no event of another tenant');
ROLLBACK TO SAVEPOINT admin;

-- ---------------------------------------------------------------------------------------
-- the tenant predicate stays an index condition (SPEC 7)
-- ---------------------------------------------------------------------------------------
CREATE TABLE s54.big (id int, tenant_id text, user_id text, body text);
INSERT INTO s54.big SELECT g, 'tenant-' || (g % 200), 'user-' || (g % 7), 'x' FROM generate_series(1, 40000) g;
CREATE TABLE s54.ubig (id int, tenant_id uuid);
INSERT INTO s54.ubig SELECT g, ('00000000-0000-4000-8000-' || lpad((g % 200)::text, 12, '0'))::uuid
  FROM generate_series(1, 40000) g;
ALTER TABLE s54.big OWNER TO bb54_owner;
ALTER TABLE s54.ubig OWNER TO bb54_owner;
SET LOCAL ROLE bb54_owner;
SELECT brandbos.enable_tenant_isolation('s54.big');
SELECT brandbos.enable_owner_isolation('s54.big');
SELECT brandbos.enable_tenant_isolation('s54.ubig');
RESET ROLE;
ANALYZE s54.big;
ANALYZE s54.ubig;
GRANT SELECT ON s54.big, s54.ubig TO bb54_app, bb54_ops;
SAVEPOINT plans;
SET LOCAL ROLE bb54_app;
SELECT brandbos.set_context('user-3', 'tenant-3');
SELECT matches(t54_explain('SELECT count(*) FROM s54.big'),
               'Index Cond: \(tenant_id = brandbos\.current_tenant_id\(\)\)',
               'tenant plus owner isolation: the tenant predicate is the index condition');
SELECT matches(t54_explain('SELECT id FROM s54.big WHERE id = 3'),
               'Index Cond: \(tenant_id = brandbos\.current_tenant_id\(\)\)',
               '... also with a filter of the query''s own');
SELECT is((SELECT count(*)::int FROM s54.big), 29, 'and it counts user-3''s rows of tenant-3');
SELECT brandbos.set_context('user-3', '00000000-0000-4000-8000-000000000003');
SELECT matches(t54_explain('SELECT count(*) FROM s54.ubig'),
               'Index Cond: \(tenant_id = brandbos\.current_tenant_uuid\(\)\)',
               'a uuid tenant column: current_tenant_uuid() is the index condition');
ROLLBACK TO SAVEPOINT plans;
SAVEPOINT plans_admin;
SET LOCAL ROLE bb54_ops;
SELECT brandbos.set_context('ops', 'tenant-3', 'admin');
SELECT matches(t54_explain('SELECT count(*) FROM s54.big'),
               'Index Cond: \(tenant_id = brandbos\.current_tenant_id\(\)\)',
               'for a tenant admin too');
SELECT is((SELECT count(*)::int FROM s54.big), 200, 'which counts every user''s rows of its tenant');
ROLLBACK TO SAVEPOINT plans_admin;

-- ---------------------------------------------------------------------------------------
-- DETACH: the detached table keeps its isolation
-- ---------------------------------------------------------------------------------------
SET LOCAL ROLE bb54_owner;
ALTER TABLE s54.events DETACH PARTITION s54.events_4;
RESET ROLE;
SAVEPOINT detached;
SET LOCAL ROLE bb54_app;
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT results_eq($$SELECT id FROM s54.events_4 ORDER BY id$$, ARRAY[301], 'a detached partition keeps its isolation');
ROLLBACK TO SAVEPOINT detached;
SET LOCAL ROLE bb54_owner;
ALTER TABLE s54.events ATTACH PARTITION s54.events_4 FOR VALUES FROM (300) TO (400);
RESET ROLE;

-- ---------------------------------------------------------------------------------------
-- rls_report: a row per partition, and what is open
-- ---------------------------------------------------------------------------------------
CREATE TEMP TABLE t54_report AS SELECT * FROM brandbos.rls_report(ARRAY['s54']::name[]);
SELECT set_eq($$SELECT table_name::text FROM t54_report WHERE table_name::text ~ '^s54x?\.events'$$,
              ARRAY['s54.events', 's54.events_1', 's54.events_2', 's54.events_2a', 's54.events_2b', 's54.events_2c',
                    's54.events_3', 's54.events_4', 's54.events_5', 's54.events_5a', 's54x.events_x'],
              'a row for the table and every partition, also one in a schema not asked for');
-- (a permissive policy added after brandbos_base only earns the note that it adds nothing)
CREATE FUNCTION t54_widening(problems text[]) RETURNS int LANGUAGE sql AS
	$$SELECT count(*)::int FROM unnest(problems) p WHERE p NOT LIKE 'brandbos''s base policy admits every row%'$$;
SELECT is((SELECT count(*)::int FROM t54_report WHERE table_name::text ~ '^s54x?\.(events|notes)'
            AND t54_widening(problems) > 0), 0,
          'isolated tables and partitions: no problem, hostile permissive policies included');
SELECT ok((SELECT problems @> ARRAY['brandbos''s base policy admits every row for select, so the table''s own permissive policies for it add nothing (enable isolation again to keep them)']
             FROM t54_report WHERE table_name = 's54.events'::regclass),
          '... which only add nothing to brandbos_base, and the report says so');

-- a tenant app role cannot see what the owner can break; the owner breaks partitions
SET LOCAL ROLE bb54_owner;
ALTER TABLE s54.events_1 DISABLE ROW LEVEL SECURITY;
DROP POLICY brandbos_tenant_delete ON s54.events_3;
ALTER POLICY brandbos_tenant_select ON s54.events_2a USING (true);
DROP POLICY brandbos_tenant_select ON s54.events_5a;
DROP POLICY brandbos_tenant_insert ON s54.events_5a;
DROP POLICY brandbos_tenant_update ON s54.events_5a;
DROP POLICY brandbos_tenant_delete ON s54.events_5a;
ALTER POLICY brandbos_tenant_update ON s54.events_2b TO bb54_ops;
ALTER POLICY brandbos_tenant_select ON s54.events_2c USING (true);
ALTER POLICY brandbos_tenant_insert ON s54.events_2c WITH CHECK (true);
ALTER POLICY brandbos_tenant_update ON s54.events_2c USING (true) WITH CHECK (true);
ALTER POLICY brandbos_tenant_delete ON s54.events_2c USING (true);
-- the older, permissive shape of the isolation, on a table of its own
CREATE TABLE s54.legacy (id int, tenant_id text);
ALTER TABLE s54.legacy ENABLE ROW LEVEL SECURITY;
ALTER TABLE s54.legacy FORCE ROW LEVEL SECURITY;
CREATE POLICY brandbos_tenant_select ON s54.legacy FOR SELECT USING (tenant_id OPERATOR(pg_catalog.=) brandbos.current_tenant_id());
CREATE POLICY brandbos_tenant_insert ON s54.legacy FOR INSERT WITH CHECK (tenant_id OPERATOR(pg_catalog.=) brandbos.current_tenant_id());
CREATE POLICY brandbos_tenant_update ON s54.legacy FOR UPDATE USING (tenant_id OPERATOR(pg_catalog.=) brandbos.current_tenant_id())
	WITH CHECK (tenant_id OPERATOR(pg_catalog.=) brandbos.current_tenant_id());
CREATE POLICY brandbos_tenant_delete ON s54.legacy FOR DELETE USING (tenant_id OPERATOR(pg_catalog.=) brandbos.current_tenant_id());
CREATE POLICY brandbos_admin ON s54.legacy FOR ALL TO brandbos_tenant_admin USING (brandbos.is_admin()) WITH CHECK (brandbos.is_admin());
CREATE POLICY everyone ON s54.legacy FOR SELECT USING (true);
RESET ROLE;
INSERT INTO s54.legacy VALUES (1, 'tenant-a'), (2, 'tenant-b');
GRANT SELECT ON s54.legacy TO bb54_app;
DROP TABLE t54_report;
CREATE TEMP TABLE t54_report AS SELECT * FROM brandbos.rls_report(ARRAY['s54']::name[]);
SELECT ok((SELECT problems @> ARRAY['rls not enabled'] FROM t54_report WHERE table_name = 's54.events_1'::regclass),
          'a partition with row level security off: "rls not enabled"');
SELECT ok((SELECT problems @> ARRAY['tenant isolation: policy brandbos_tenant_delete is missing']
             FROM t54_report WHERE table_name = 's54.events_3'::regclass),
          'a partition missing one policy: named');
SELECT ok((SELECT problems @> ARRAY['tenant isolation: policy brandbos_tenant_select is not the one brandbos creates']
             FROM t54_report WHERE table_name = 's54.events_2a'::regclass),
          'a policy whose expression was altered: flagged');
SELECT ok((SELECT problems @> ARRAY['tenant isolation: policy brandbos_tenant_update does not apply to every role']
             FROM t54_report WHERE table_name = 's54.events_2b'::regclass),
          'a policy narrowed to some roles: flagged');
SELECT ok((SELECT problems @> ARRAY['tenant isolation: policy brandbos_tenant_select is not the one brandbos creates',
                                    'tenant isolation: policy brandbos_tenant_delete is not the one brandbos creates']
             FROM t54_report WHERE table_name = 's54.events_2c'::regclass),
          'a partition whose four policies compare no column any more: each flagged');
SELECT ok((SELECT problems @> ARRAY['no tenant isolation, which the table it belongs to has']
             FROM t54_report WHERE table_name = 's54.events_5a'::regclass),
          'a partition without the tenant isolation of its table: flagged');
SELECT ok((SELECT problems @> ARRAY['tenant isolation: policy brandbos_tenant_select is permissive, so any permissive policy widens it',
                                    'policy brandbos_admin is permissive and lets admins cross tenants']
             FROM t54_report WHERE table_name = 's54.legacy'::regclass),
          'the permissive shape: every isolation policy and the admin policy flagged');
SELECT is((SELECT t54_widening(problems) FROM t54_report WHERE table_name = 's54.events'::regclass), 0,
          'the intact parent has no problem');

-- the permissive shape really leaks, and enabling again converts it
SAVEPOINT legacy;
SET LOCAL ROLE bb54_app;
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT is((SELECT count(*)::int FROM s54.legacy), 2, 'before conversion, the permissive policy "everyone" widens it');
ROLLBACK TO SAVEPOINT legacy;
SET LOCAL ROLE bb54_owner;
SELECT lives_ok($$SELECT brandbos.enable_tenant_isolation('s54.legacy')$$, 'enabling again converts it');
SELECT lives_ok($$SELECT brandbos.enable_tenant_isolation('s54.events')$$, 'and repairs the whole tree');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_policies WHERE schemaname = 's54' AND tablename = 'legacy' AND policyname = 'brandbos_admin'), 0,
          'the permissive brandbos_admin is gone');
SELECT is((SELECT count(*)::int FROM pg_policies WHERE schemaname = 's54' AND tablename = 'legacy'
            AND policyname LIKE 'brandbos_tenant_%' AND permissive = 'RESTRICTIVE'), 4, 'the four policies are restrictive');
SAVEPOINT legacy2;
SET LOCAL ROLE bb54_app;
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT results_eq($$SELECT id FROM s54.legacy$$, ARRAY[1], 'after conversion: own tenant only');
ROLLBACK TO SAVEPOINT legacy2;
SELECT is((SELECT count(*)::int FROM brandbos.rls_report(ARRAY['s54']::name[])
            WHERE table_name::text ~ '^s54x?\.(events|notes|legacy|big|ubig|profiles)'
              AND cardinality(problems) > 0 AND table_name <> 's54.notes'::regclass), 0,
          'after enabling again, nothing is flagged');
SELECT is((SELECT problems FROM brandbos.rls_report(ARRAY['s54']::name[]) WHERE table_name = 's54.notes'::regclass),
          ARRAY['brandbos''s base policy admits every row for select, so the table''s own permissive policies for it add nothing (enable isolation again to keep them)',
                'brandbos''s base policy admits every row for insert, so the table''s own permissive policies for it add nothing (enable isolation again to keep them)',
                'brandbos''s base policy admits every row for update, so the table''s own permissive policies for it add nothing (enable isolation again to keep them)',
                'brandbos''s base policy admits every row for delete, so the table''s own permissive policies for it add nothing (enable isolation again to keep them)'],
          'a table not enabled again keeps the note on its later permissive policy');

-- a tenant role reading the report sees the same rows
SAVEPOINT app_report;
SET LOCAL ROLE bb54_app;
SELECT is((SELECT count(*)::int FROM brandbos.rls_report(ARRAY['s54']::name[]) WHERE table_name::text ~ '^s54x?\.events'), 11,
          'the report reads the catalogs only: the same rows for a tenant role');
ROLLBACK TO SAVEPOINT app_report;

-- ---------------------------------------------------------------------------------------
-- disable_isolation covers the tree
-- ---------------------------------------------------------------------------------------
SET LOCAL ROLE bb54_owner;
SELECT lives_ok($$SELECT brandbos.disable_isolation('s54.events')$$, 'the owner disables isolation of the tree');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_policies WHERE schemaname IN ('s54', 's54x') AND tablename LIKE 'events%'
            AND policyname LIKE 'brandbos\_%'), 0, 'no brandbos policy is left on any partition');
SELECT is((SELECT count(*)::int FROM pg_class WHERE oid IN (SELECT relid FROM pg_partition_tree('s54.events'))
            AND relrowsecurity), 0, 'and row level security is off throughout');
SET LOCAL ROLE bb54_owner;
CREATE TABLE s54.events_6 PARTITION OF s54.events FOR VALUES FROM (500) TO (600);
RESET ROLE;
SELECT is((SELECT relrowsecurity FROM pg_class WHERE oid = 's54.events_6'::regclass), false,
          'a partition of a table no longer isolated is left alone');

SELECT * FROM finish();
ROLLBACK;
