-- Tenant and owner isolation (SPEC section 4): enable_tenant_isolation,
-- enable_owner_isolation, disable_isolation, rls_report, and cross-tenant access by a
-- non-superuser application role and by the (non-superuser) table owner.
--
-- Superusers bypass RLS, so every access check runs under SET LOCAL ROLE.  Each block that
-- sets a context sits in a savepoint: ROLLBACK TO undoes the context and the role together
-- (a set context locks the role when brandbos is preloaded).
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(132);

-- rows affected by a statement
CREATE FUNCTION t51_rows(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	EXECUTE q;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
-- a static query: plpgsql caches its plan across calls (and here forces a generic one)
CREATE FUNCTION t51_count_docs() RETURNS bigint LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	RETURN (SELECT count(*) FROM docs);
END
$$;
-- number of indexes of tbl whose first key column is col
CREATE FUNCTION t51_leading_indexes(tbl regclass, col name) RETURNS int LANGUAGE sql AS $$
	SELECT count(*)::int FROM pg_index i
	  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
	 WHERE i.indrelid = tbl AND a.attname = col
$$;
-- EXPLAIN ANALYZE of a query, as one text
CREATE FUNCTION t51_explain(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
	res text := '';
BEGIN
	FOR r IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
		res := res || r || E'\n';
	END LOOP;
	RETURN res;
END
$$;
CREATE FUNCTION t51_default(tbl regclass, col name) RETURNS text LANGUAGE sql AS $$
	SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
	  JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
	 WHERE d.adrelid = tbl AND a.attname = col
$$;

CREATE ROLE bb51_owner NOLOGIN;        -- owns docs, not a superuser
CREATE ROLE bb51_app NOLOGIN;          -- the application's backend role
CREATE ROLE bb51_ops NOLOGIN;          -- a backend role for admin requests (brandbos_tenant_admin)
CREATE ROLE bb51_stranger NOLOGIN;     -- neither owner nor context admin
GRANT brandbos_context_admin TO bb51_app, bb51_owner, bb51_ops;
GRANT brandbos_tenant_admin TO bb51_ops;
GRANT CREATE ON SCHEMA public TO bb51_owner;

-- ---------------------------------------------------------------------------------------
-- enable_tenant_isolation on a text column, called by the (non-superuser) owner
-- ---------------------------------------------------------------------------------------
SET LOCAL ROLE bb51_owner;
CREATE TABLE docs (id int PRIMARY KEY, tenant_id text, body text);
INSERT INTO docs VALUES (1, 'tenant-a', 'a1'), (2, 'tenant-a', 'a2'),
                        (3, 'tenant-b', 'b1'), (4, 'tenant-b', 'b2'), (5, 'tenant-b', 'b3'),
                        (6, 'tenant-c', 'c1');
GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO bb51_app, bb51_ops;
SELECT lives_ok($$SELECT brandbos.enable_tenant_isolation('docs')$$, 'the owner enables tenant isolation');
RESET ROLE;

SELECT ok((SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = 'docs'::regclass),
          'RLS is enabled and forced');
SELECT set_eq($$SELECT policyname::text FROM pg_policies WHERE tablename = 'docs'$$,
              ARRAY['brandbos_tenant_select', 'brandbos_tenant_insert', 'brandbos_tenant_update',
                    'brandbos_tenant_delete', 'brandbos_base'],
              'one policy per command plus brandbos_base');
SELECT results_eq($$SELECT (policyname || ':' || cmd) COLLATE "default" FROM pg_policies WHERE tablename = 'docs' ORDER BY 1$$,
                  ARRAY['brandbos_base:ALL', 'brandbos_tenant_delete:DELETE', 'brandbos_tenant_insert:INSERT',
                        'brandbos_tenant_select:SELECT', 'brandbos_tenant_update:UPDATE'],
                  'each policy is for its command');
SELECT ok((SELECT bool_and(permissive = 'RESTRICTIVE' AND roles = '{public}') FROM pg_policies
            WHERE tablename = 'docs' AND policyname LIKE 'brandbos_tenant_%'),
          'the tenant policies are restrictive and apply to every role');
SELECT is((SELECT permissive || ' ' || roles::text FROM pg_policies WHERE tablename = 'docs' AND policyname = 'brandbos_base'),
          'PERMISSIVE {public}', 'brandbos_base is permissive, for every role');
SELECT ok((SELECT bool_and(coalesce(qual, '') || coalesce(with_check, '') ~ 'tenant_id = brandbos\.current_tenant_id\(\)')
             FROM pg_policies WHERE tablename = 'docs' AND policyname LIKE 'brandbos_tenant_%'),
          'the tenant policies compare tenant_id = brandbos.current_tenant_id()');
SELECT is((SELECT qual IS NOT NULL AND with_check IS NOT NULL FROM pg_policies WHERE tablename = 'docs' AND policyname = 'brandbos_tenant_update'),
          true, 'the UPDATE policy has USING and WITH CHECK');
SELECT is((SELECT with_check FROM pg_policies WHERE tablename = 'docs' AND policyname = 'brandbos_tenant_insert'),
          (SELECT qual FROM pg_policies WHERE tablename = 'docs' AND policyname = 'brandbos_tenant_select'),
          'INSERT checks what SELECT filters');
SELECT ok((SELECT qual = 'true' AND with_check = 'true'
             FROM pg_policies WHERE tablename = 'docs' AND policyname = 'brandbos_base'),
          'brandbos_base: USING and WITH CHECK true (the restrictive policies bound it)');
SELECT is((SELECT count(*)::int FROM pg_policies WHERE tablename = 'docs'
            AND (coalesce(qual, '') || coalesce(with_check, '')) ~* '\mselect\M'), 0,
          'no subquery in any policy expression');
SELECT matches(t51_default('docs', 'tenant_id'), 'brandbos\.current_tenant_id\(\)',
               'the tenant column defaults to brandbos.current_tenant_id()');
SELECT is(t51_leading_indexes('docs', 'tenant_id'), 1, 'an index leading with tenant_id was created');

-- idempotent
SET LOCAL ROLE bb51_owner;
SELECT lives_ok($$SELECT brandbos.enable_tenant_isolation('docs')$$, 'enabling again works');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_policies WHERE tablename = 'docs'), 5, 'still five policies');
SELECT is(t51_leading_indexes('docs', 'tenant_id'), 1, 'still one index on tenant_id');

-- ---------------------------------------------------------------------------------------
-- the application role, tenant A
-- ---------------------------------------------------------------------------------------
SAVEPOINT app_a;
SET LOCAL ROLE bb51_app;
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT results_eq($$SELECT id FROM docs ORDER BY id$$, ARRAY[1, 2], 'tenant A sees exactly its rows');
SELECT is((SELECT count(*)::int FROM docs WHERE tenant_id = 'tenant-b'), 0, 'asking for tenant B by name finds nothing');
SELECT is((SELECT count(*)::int FROM docs WHERE tenant_id = 'tenant-b' OR true), 2, 'an always-true filter adds nothing');
SELECT throws_ok($$INSERT INTO docs VALUES (100, 'tenant-b', 'planted')$$, '42501', NULL,
                 'inserting a row of tenant B: 42501');
SELECT throws_ok($$INSERT INTO docs VALUES (101, NULL, 'orphan')$$, '42501', NULL, 'inserting a row without tenant: 42501');
SELECT lives_ok($$INSERT INTO docs (id, body) VALUES (102, 'mine')$$, 'inserting without the tenant column works');
SELECT is((SELECT tenant_id FROM docs WHERE id = 102), 'tenant-a', 'and the row got tenant A by default');
SELECT is(t51_rows($$UPDATE docs SET body = 'hacked' WHERE tenant_id = 'tenant-b'$$), 0::bigint, 'UPDATE of B''s rows: 0 rows');
SELECT is(t51_rows($$UPDATE docs SET body = 'hacked' WHERE id = 3$$), 0::bigint, 'UPDATE of a B row by id: 0 rows');
SELECT is(t51_rows($$DELETE FROM docs WHERE tenant_id = 'tenant-b'$$), 0::bigint, 'DELETE of B''s rows: 0 rows');
SELECT is(t51_rows($$DELETE FROM docs WHERE id IN (3, 4, 5, 6)$$), 0::bigint, 'DELETE of other tenants'' rows by id: 0 rows');
SELECT throws_ok($$UPDATE docs SET tenant_id = 'tenant-b' WHERE id = 1$$, '42501', NULL, 'moving an A row to B: 42501');
SELECT throws_ok($$UPDATE docs SET tenant_id = NULL WHERE id = 1$$, '42501', NULL, 'moving an A row to no tenant: 42501');
SELECT throws_ok($$INSERT INTO docs VALUES (3, 'tenant-a', 'steal') ON CONFLICT (id) DO UPDATE SET body = 'stolen'$$,
                 '42501', NULL, 'an upsert that hits a B row: 42501');
SELECT is(t51_rows($$UPDATE docs SET body = 'a1 edited' WHERE id = 1$$), 1::bigint, 'UPDATE of an own row: 1 row');
SELECT is(t51_rows($$DELETE FROM docs WHERE id = 102$$), 1::bigint, 'DELETE of an own row: 1 row');
SELECT is(t51_count_docs(), 2::bigint, 'a cached generic plan counts tenant A''s rows');
-- switch to tenant B in a savepoint, then back
SAVEPOINT app_b;
SELECT brandbos.set_context('user-b', 'tenant-b');
SELECT results_eq($$SELECT id FROM docs ORDER BY id$$, ARRAY[3, 4, 5], 'after set_context(B): exactly B''s rows');
SELECT is(t51_count_docs(), 3::bigint, 'the same cached generic plan now counts tenant B''s rows');
ROLLBACK TO SAVEPOINT app_b;
SELECT results_eq($$SELECT id FROM docs ORDER BY id$$, ARRAY[1, 2], 'after ROLLBACK TO: A''s rows again');
SELECT is(t51_count_docs(), 2::bigint, 'and the cached plan follows');
-- an admin app role alone does not cross tenants: the database role must be a tenant admin
SAVEPOINT app_admin;
SELECT brandbos.set_context('root', 'tenant-a', 'admin');
SELECT is((SELECT count(*)::int FROM docs), 2, 'app role admin, database role not in brandbos_tenant_admin: own tenant only');
SELECT throws_ok($$INSERT INTO docs VALUES (103, 'tenant-c', 'by admin')$$, '42501', NULL,
                 '... and no write to another tenant');
ROLLBACK TO SAVEPOINT app_admin;
ROLLBACK TO SAVEPOINT app_a;

SELECT results_eq($$SELECT id, tenant_id, body FROM docs ORDER BY id$$,
                  $$VALUES (1, 'tenant-a'::text, 'a1'::text), (2, 'tenant-a', 'a2'), (3, 'tenant-b', 'b1'),
                           (4, 'tenant-b', 'b2'), (5, 'tenant-b', 'b3'), (6, 'tenant-c', 'c1')$$,
                  'after rolling back, the table is untouched (seen by the superuser)');

-- a member of brandbos_tenant_admin with an admin or service_role context stays in its own
-- tenant (it crosses users of owner isolation only); with an ordinary context it is
-- isolated like any role
SAVEPOINT ops;
SET LOCAL ROLE bb51_ops;
SELECT brandbos.set_context('root', 'tenant-a', 'admin');
SELECT is((SELECT count(*)::int FROM docs), 2, 'tenant admin role + app role admin: its own tenant only');
SELECT throws_ok($$INSERT INTO docs VALUES (103, 'tenant-c', 'by admin')$$, '42501', NULL,
                 '... and no write to another tenant''s row');
SELECT brandbos.set_context('svc', 'tenant-ops', 'service_role');
SELECT is((SELECT count(*)::int FROM docs), 0, 'tenant admin role + service_role in a tenant without rows: none');
SELECT brandbos.set_context('user-b', 'tenant-b');
SELECT results_eq($$SELECT id FROM docs ORDER BY id$$, ARRAY[3, 4, 5],
                  'tenant admin role + an ordinary context: that tenant only');
SELECT throws_ok($$INSERT INTO docs VALUES (104, 'tenant-c', 'x')$$, '42501', NULL, '... and no write to another tenant');
ROLLBACK TO SAVEPOINT ops;

-- unfiltered writes by tenant A, then a look as tenants B and C: untouched
-- (a context cannot be dropped while keeping the changes, and RESET ROLE is locked, so the
-- same role looks with the other tenants' contexts)
SAVEPOINT app_a2;
SET LOCAL ROLE bb51_ops;
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT is(t51_rows($$UPDATE docs SET body = 'x'$$), 2::bigint, 'an unfiltered UPDATE by tenant A touches 2 rows');
SELECT is(t51_rows($$DELETE FROM docs$$), 2::bigint, 'an unfiltered DELETE by tenant A removes 2 rows');
SELECT brandbos.set_context('user-b', 'tenant-b');
SELECT results_eq($$SELECT id, body FROM docs ORDER BY id$$,
                  $$VALUES (3, 'b1'::text), (4, 'b2'), (5, 'b3')$$,
                  'the rows of B are untouched');
SELECT brandbos.set_context('user-c', 'tenant-c');
SELECT results_eq($$SELECT id, body FROM docs ORDER BY id$$, $$VALUES (6, 'c1'::text)$$,
                  'the rows of C are untouched');
ROLLBACK TO SAVEPOINT app_a2;

-- no context: nothing at all (fail closed)
SAVEPOINT app_none;
SET LOCAL ROLE bb51_app;
SELECT is((SELECT count(*)::int FROM docs), 0, 'no context: the application role sees no row');
SELECT throws_ok($$INSERT INTO docs VALUES (110, 'tenant-a', 'x')$$, '42501', NULL, 'no context: INSERT is refused');
SELECT throws_ok($$INSERT INTO docs (id, body) VALUES (111, 'x')$$, '42501', NULL,
                 'no context: INSERT with the default (NULL) tenant is refused');
SELECT is(t51_rows($$UPDATE docs SET body = 'x'$$), 0::bigint, 'no context: UPDATE changes nothing');
SELECT is(t51_rows($$DELETE FROM docs$$), 0::bigint, 'no context: DELETE removes nothing');
SELECT is(t51_count_docs(), 0::bigint, 'no context: the cached plan counts nothing');
ROLLBACK TO SAVEPOINT app_none;

-- a context rolled back with its savepoint leaves nothing behind (the pooler case in one
-- transaction; the real COMMIT/ROLLBACK case is test/scenarios/30_pooler_context_leak.sh)
SAVEPOINT leak;
SET LOCAL ROLE bb51_app;
SAVEPOINT request_1;
SELECT brandbos.set_context('user-b', 'tenant-b');
SELECT is((SELECT count(*)::int FROM docs), 3, 'request 1 (tenant B) sees 3 rows');
ROLLBACK TO SAVEPOINT request_1;
SELECT is((SELECT count(*)::int FROM docs), 0, 'request 2 without context sees nothing');
SELECT is(brandbos.current_tenant_id(), NULL, 'and its helpers are NULL');
ROLLBACK TO SAVEPOINT leak;

-- a parallel plan (workers only: the leader does not scan) must count the same rows as a
-- serial one; workers evaluate the policy with the leader's context
CREATE TABLE par_docs (id int, tenant_id text);
INSERT INTO par_docs SELECT g, 'tenant-' || (g % 4) FROM generate_series(1, 40000) g;
SELECT brandbos.enable_tenant_isolation('par_docs');
ANALYZE par_docs;
GRANT SELECT ON par_docs TO bb51_app;
SAVEPOINT parallel;
SET LOCAL ROLE bb51_app;
SELECT brandbos.set_context('user-p', 'tenant-1');
SET LOCAL enable_indexscan = off;
SET LOCAL enable_indexonlyscan = off;
SET LOCAL enable_bitmapscan = off;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
SELECT ok(t51_explain('SELECT count(*) FROM par_docs') ~ 'Workers Launched: [1-9]', 'the count below runs in parallel workers');
SELECT count(*) AS par_count FROM par_docs \gset
SELECT is(:par_count::int, 10000, 'a parallel scan under the policy counts the tenant''s 10000 rows');
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT is((SELECT count(*)::int FROM par_docs), 10000, 'the serial scan agrees');
ROLLBACK TO SAVEPOINT parallel;

-- the owner is subject to the policies too (FORCE), here through authenticate()
SET LOCAL brandbos.jwt_secret = 'a-jwt-secret-for-the-policy-tests-0123456789';
SELECT brandbos.sign_token('{"sub": "owner-user", "tenant_id": "tenant-b"}') AS tok_b \gset
SAVEPOINT owner;
SET LOCAL ROLE bb51_owner;
SELECT is((SELECT count(*)::int FROM docs), 0, 'the table owner without a context sees no row (FORCE)');
SELECT brandbos.authenticate(:'tok_b');
SELECT results_eq($$SELECT id FROM docs ORDER BY id$$, ARRAY[3, 4, 5], 'the owner with a tenant B token sees B''s rows');
SELECT throws_ok($$INSERT INTO docs VALUES (120, 'tenant-a', 'x')$$, '42501', NULL, 'the owner cannot plant a row for A');
ROLLBACK TO SAVEPOINT owner;

-- a role without any grant on the table is stopped by privileges first
SAVEPOINT stranger;
SET LOCAL ROLE bb51_stranger;
SELECT throws_ok($$SELECT count(*) FROM docs$$, '42501', NULL, 'a role without SELECT: 42501');
ROLLBACK TO SAVEPOINT stranger;

-- ---------------------------------------------------------------------------------------
-- an index leading with the tenant column is not duplicated; a later column does not count
-- ---------------------------------------------------------------------------------------
CREATE TABLE has_idx (id int, tenant_id text, PRIMARY KEY (tenant_id, id));
CREATE TABLE second_col (id int, tenant_id text, PRIMARY KEY (id, tenant_id));
SELECT brandbos.enable_tenant_isolation('has_idx');
SELECT brandbos.enable_tenant_isolation('second_col');
SELECT is((SELECT count(*)::int FROM pg_index WHERE indrelid = 'has_idx'::regclass), 1,
          'an existing index leading with tenant_id: no new index');
SELECT is(t51_leading_indexes('second_col', 'tenant_id'), 1,
          'tenant_id only second in an index: an index leading with it is created');

-- ---------------------------------------------------------------------------------------
-- uuid tenant column
-- ---------------------------------------------------------------------------------------
\set ua '11111111-1111-4111-8111-111111111111'
\set ub '22222222-2222-4222-8222-222222222222'
CREATE TABLE udocs (id int PRIMARY KEY, tenant_id uuid, body text);
INSERT INTO udocs VALUES (1, :'ua', 'a'), (2, :'ub', 'b'), (3, :'ub', 'b');
GRANT SELECT, INSERT, UPDATE, DELETE ON udocs TO bb51_app;
SELECT lives_ok($$SELECT brandbos.enable_tenant_isolation('udocs')$$, 'tenant isolation on a uuid column');
SELECT ok((SELECT bool_and(coalesce(qual, '') || coalesce(with_check, '') ~ 'tenant_id = brandbos\.current_tenant_uuid\(\)')
             FROM pg_policies WHERE tablename = 'udocs' AND policyname LIKE 'brandbos_tenant_%'),
          'a uuid column is compared with brandbos.current_tenant_uuid()');
SELECT matches(t51_default('udocs', 'tenant_id'), 'brandbos\.current_tenant_uuid\(\)',
               'a uuid column defaults to brandbos.current_tenant_uuid()');
SAVEPOINT uuid_a;
SET LOCAL ROLE bb51_app;
SELECT brandbos.set_context('user-a', :'ua');
SELECT results_eq($$SELECT id FROM udocs ORDER BY id$$, ARRAY[1], 'uuid tenant A sees its row');
SELECT lives_ok($$INSERT INTO udocs (id, body) VALUES (4, 'new')$$, 'insert without tenant');
SELECT is((SELECT tenant_id FROM udocs WHERE id = 4), :'ua'::uuid, 'gets uuid tenant A');
SELECT throws_ok(format('INSERT INTO udocs VALUES (5, %L, %L)', :'ub', 'x'), '42501', NULL, 'a row of uuid tenant B: 42501');
SELECT brandbos.set_context('user-x', 'not-a-uuid');
SELECT is((SELECT count(*)::int FROM udocs), 0, 'a non-uuid tenant id sees nothing in a uuid table (no error)');
ROLLBACK TO SAVEPOINT uuid_a;

-- ---------------------------------------------------------------------------------------
-- identifiers that need quoting (and would inject SQL if spliced raw)
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA "Tenant Data";
CREATE TABLE "Tenant Data"."Rows-2024" (id int PRIMARY KEY, "t) OR (true" text, note text);
INSERT INTO "Tenant Data"."Rows-2024" VALUES (1, 'tenant-a', 'x'), (2, 'tenant-b', 'y');
GRANT USAGE ON SCHEMA "Tenant Data" TO bb51_app;
GRANT SELECT, INSERT ON "Tenant Data"."Rows-2024" TO bb51_app;
SELECT lives_ok($$SELECT brandbos.enable_tenant_isolation('"Tenant Data"."Rows-2024"', 't) OR (true')$$,
                'quoted schema, table and column names');
SELECT is((SELECT count(*)::int FROM pg_policies WHERE schemaname = 'Tenant Data' AND tablename = 'Rows-2024'), 5,
          'the policies live beside the table');
SAVEPOINT quoted;
SET LOCAL ROLE bb51_app;
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT results_eq($$SELECT id FROM "Tenant Data"."Rows-2024" ORDER BY id$$, ARRAY[1],
                  'a column named "t) OR (true" still isolates');
ROLLBACK TO SAVEPOINT quoted;

-- ---------------------------------------------------------------------------------------
-- enable_owner_isolation
-- ---------------------------------------------------------------------------------------
CREATE TABLE notes (id int PRIMARY KEY, user_id text, body text);
INSERT INTO notes VALUES (1, 'alice', 'a'), (2, 'alice', 'a2'), (3, 'bob', 'b');
GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO bb51_app, bb51_ops;
SELECT lives_ok($$SELECT brandbos.enable_owner_isolation('notes')$$, 'enable_owner_isolation');
SELECT set_eq($$SELECT policyname::text FROM pg_policies WHERE tablename = 'notes'$$,
              ARRAY['brandbos_owner_select', 'brandbos_owner_insert', 'brandbos_owner_update',
                    'brandbos_owner_delete', 'brandbos_base'],
              'owner policies plus brandbos_base');
SELECT ok((SELECT bool_and(coalesce(qual, '') || coalesce(with_check, '') ~ 'user_id = brandbos\.current_user_id\(\)')
             FROM pg_policies WHERE tablename = 'notes' AND policyname LIKE 'brandbos_owner_%'),
          'the owner policies compare user_id = brandbos.current_user_id()');
SELECT is((SELECT count(*)::int FROM pg_policies WHERE tablename = 'notes'
            AND (coalesce(qual, '') || coalesce(with_check, '')) ~* '\mselect\M'), 0,
          'no subquery in the owner policies');
SELECT ok((SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = 'notes'::regclass),
          'owner isolation: RLS enabled and forced');
SELECT matches(t51_default('notes', 'user_id'), 'brandbos\.current_user_id\(\)',
               'user_id defaults to brandbos.current_user_id()');
SELECT is(t51_leading_indexes('notes', 'user_id'), 1, 'an index leading with user_id');
SELECT lives_ok($$SELECT brandbos.enable_owner_isolation('notes')$$, 'enable_owner_isolation again');
SELECT is((SELECT count(*)::int FROM pg_policies WHERE tablename = 'notes'), 5, 'idempotent: five policies');
SELECT is(t51_leading_indexes('notes', 'user_id'), 1, 'idempotent: one index');
SAVEPOINT alice;
SET LOCAL ROLE bb51_app;
SELECT brandbos.set_context('alice', 'tenant-a');
SELECT results_eq($$SELECT id FROM notes ORDER BY id$$, ARRAY[1, 2], 'alice sees her notes only');
SELECT throws_ok($$INSERT INTO notes VALUES (10, 'bob', 'forged')$$, '42501', NULL, 'a note for bob: 42501');
SELECT lives_ok($$INSERT INTO notes (id, body) VALUES (11, 'mine')$$, 'a note without user_id');
SELECT is((SELECT user_id FROM notes WHERE id = 11), 'alice', 'belongs to alice');
SELECT is(t51_rows($$UPDATE notes SET body = 'x' WHERE user_id = 'bob'$$), 0::bigint, 'UPDATE of bob''s notes: 0 rows');
SELECT throws_ok($$UPDATE notes SET user_id = 'bob' WHERE id = 1$$, '42501', NULL, 'giving a note to bob: 42501');
SELECT is(t51_rows($$DELETE FROM notes WHERE user_id = 'bob'$$), 0::bigint, 'DELETE of bob''s notes: 0 rows');
SELECT brandbos.set_context('alice', 'tenant-a', 'service_role');
SELECT is((SELECT count(*)::int FROM notes), 3, 'service_role without brandbos_tenant_admin: still alice''s 3 notes only (of 4)');
ROLLBACK TO SAVEPOINT alice;
SAVEPOINT ops_notes;
SET LOCAL ROLE bb51_ops;
SELECT brandbos.set_context('ops', 'tenant-ops', 'service_role');
SELECT is((SELECT count(*)::int FROM notes), 0,
          'tenant admin role + service_role (user ops, no notes) on an owner-only table: no tenant to keep it in, so no crossing');
ROLLBACK TO SAVEPOINT ops_notes;

-- uuid owners: Supabase's auth.uid() shape
CREATE TABLE profiles (id int PRIMARY KEY, user_id uuid NOT NULL, name text);
INSERT INTO profiles VALUES (1, :'ua', 'ann'), (2, :'ub', 'ben');
GRANT SELECT ON profiles TO bb51_app;
SELECT lives_ok($$SELECT brandbos.enable_owner_isolation('profiles')$$, 'owner isolation on a uuid column');
SELECT ok((SELECT bool_and(coalesce(qual, '') || coalesce(with_check, '') ~ 'user_id = brandbos\.current_user_uuid\(\)')
             FROM pg_policies WHERE tablename = 'profiles' AND policyname LIKE 'brandbos_owner_%'),
          'a uuid owner column is compared with brandbos.current_user_uuid()');
SAVEPOINT ann;
SET LOCAL ROLE bb51_app;
SELECT brandbos.set_context(:'ua', 'tenant-a');
SELECT results_eq($$SELECT name FROM profiles$$, ARRAY['ann'], 'ann sees her profile only');
ROLLBACK TO SAVEPOINT ann;

-- ---------------------------------------------------------------------------------------
-- disable_isolation
-- ---------------------------------------------------------------------------------------
SAVEPOINT stranger2;
SET LOCAL ROLE bb51_app;
SELECT throws_ok($$SELECT brandbos.disable_isolation('docs')$$, '42501', NULL, 'a non-owner cannot disable isolation: 42501');
SELECT throws_ok($$SELECT brandbos.enable_tenant_isolation('docs')$$, '42501', NULL, 'a non-owner cannot enable isolation: 42501');
ROLLBACK TO SAVEPOINT stranger2;
SET LOCAL ROLE bb51_owner;
SELECT lives_ok($$SELECT brandbos.disable_isolation('docs')$$, 'the owner disables isolation');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_policies WHERE tablename = 'docs'), 0, 'the brandbos policies are gone');
SELECT ok((SELECT NOT relrowsecurity AND NOT relforcerowsecurity FROM pg_class WHERE oid = 'docs'::regclass),
          'RLS disabled and not forced');
SELECT is(t51_default('docs', 'tenant_id'), NULL, 'the default is dropped');
SELECT throws_ok($$SELECT brandbos.disable_isolation('docs')$$, '42704', NULL, 'nothing left to disable: 42704');
CREATE POLICY own_policy ON notes FOR SELECT USING (body <> 'hidden');
SELECT lives_ok($$SELECT brandbos.disable_isolation('notes')$$, 'disable owner isolation');
SELECT set_eq($$SELECT policyname::text FROM pg_policies WHERE tablename = 'notes'$$, ARRAY['own_policy'],
              'only the brandbos_* policies are removed; the user''s own policy stays');
SELECT is(t51_default('notes', 'user_id'), NULL, 'the user_id default is dropped');
CREATE TABLE plain_table (id int, tenant_id text);
SELECT throws_ok($$SELECT brandbos.disable_isolation('plain_table')$$, '42704', NULL, 'a table never isolated: 42704');

-- ---------------------------------------------------------------------------------------
-- bad input
-- ---------------------------------------------------------------------------------------
CREATE TABLE int_tenant (id int, tenant_id int, user_id int);
CREATE VIEW docs_view AS SELECT * FROM docs;
SELECT throws_ok($$SELECT brandbos.enable_tenant_isolation('no_such_table')$$, '42P01', NULL, 'unknown table: 42P01');
SELECT throws_ok($$SELECT brandbos.enable_tenant_isolation('plain_table', 'no_such_column')$$, '42703', NULL,
                 'unknown column: 42703');
SELECT throws_ok($$SELECT brandbos.enable_owner_isolation('plain_table')$$, '42703', NULL,
                 'owner isolation without a user_id column: 42703');
SELECT throws_ok($$SELECT brandbos.enable_tenant_isolation('int_tenant')$$, '42804', NULL, 'an int tenant column: 42804');
SELECT throws_ok($$SELECT brandbos.enable_owner_isolation('int_tenant')$$, '42804', NULL, 'an int owner column: 42804');
SELECT throws_ok($$SELECT brandbos.enable_tenant_isolation(NULL)$$, '22004', NULL, 'NULL table: 22004');
SELECT throws_ok($$SELECT brandbos.enable_tenant_isolation('plain_table', NULL)$$, '22004', NULL, 'NULL column: 22004');
SELECT throws_ok($$SELECT brandbos.enable_owner_isolation(NULL)$$, '22004', NULL, 'owner isolation, NULL table: 22004');
SELECT throws_ok($$SELECT brandbos.disable_isolation(NULL)$$, '22004', NULL, 'disable_isolation(NULL): 22004');
SELECT throws_ok($$SELECT brandbos.enable_tenant_isolation('docs_view')$$, '42809', NULL, 'a view: 42809');
SELECT is((SELECT relrowsecurity FROM pg_class WHERE oid = 'int_tenant'::regclass), false,
          'a refused call changed nothing');

-- ---------------------------------------------------------------------------------------
-- rls_report
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA rpt;
CREATE TABLE rpt.isolated (id int, tenant_id text);
SELECT brandbos.enable_tenant_isolation('rpt.isolated');
CREATE TABLE rpt.bare (id int);
CREATE TABLE rpt.not_forced (id int);
ALTER TABLE rpt.not_forced ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON rpt.not_forced USING (true);
CREATE TABLE rpt.no_policies (id int);
ALTER TABLE rpt.no_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE rpt.no_policies FORCE ROW LEVEL SECURITY;
CREATE VIEW rpt.definer_view AS SELECT * FROM rpt.isolated;
CREATE VIEW rpt.invoker_view WITH (security_invoker = true) AS SELECT * FROM rpt.isolated;
CREATE TEMP TABLE t51_report AS SELECT * FROM brandbos.rls_report(ARRAY['rpt']::name[]);

SELECT results_eq($$SELECT rls_enabled, rls_forced, policies, coalesce(cardinality(problems), 0)
                      FROM t51_report WHERE table_name = 'rpt.isolated'::regclass$$,
                  $$VALUES (true, true, 5, 0)$$, 'an isolated table: enabled, forced, 5 policies, no problem');
SELECT results_eq($$SELECT rls_enabled, rls_forced, policies FROM t51_report WHERE table_name = 'rpt.bare'::regclass$$,
                  $$VALUES (false, false, 0)$$, 'a bare table: not enabled, not forced, 0 policies');
SELECT ok((SELECT problems @> ARRAY['rls not enabled', 'no policies'] FROM t51_report WHERE table_name = 'rpt.bare'::regclass),
          'a bare table: "rls not enabled" and "no policies"');
SELECT ok((SELECT problems @> ARRAY['rls not forced'] AND NOT problems @> ARRAY['rls not enabled']
                  AND NOT problems @> ARRAY['no policies']
             FROM t51_report WHERE table_name = 'rpt.not_forced'::regclass),
          'enabled with a policy, not forced: "rls not forced" only');
SELECT is((SELECT problems FROM t51_report WHERE table_name = 'rpt.no_policies'::regclass), ARRAY['no policies'],
          'enabled and forced without policies: "no policies"');
SELECT ok((SELECT problems @> ARRAY['view without security_invoker'] FROM t51_report WHERE table_name = 'rpt.definer_view'::regclass),
          'a view without security_invoker is flagged');
SELECT is((SELECT count(*)::int FROM t51_report WHERE table_name = 'rpt.invoker_view'::regclass
            AND problems @> ARRAY['view without security_invoker']), 0,
          'a security_invoker view is not flagged');
SELECT ok((SELECT bool_and(p IN ('rls not enabled', 'rls not forced', 'no policies', 'view without security_invoker'))
             FROM t51_report, unnest(problems) p), 'every problem is one of the four documented ones');
SELECT is((SELECT count(*)::int FROM brandbos.rls_report() WHERE table_name::text LIKE 'rpt.%'), 0,
          'the default schema list is public only');
SELECT ok((SELECT count(*) > 0 FROM brandbos.rls_report() WHERE table_name = 'plain_table'::regclass),
          'public tables are reported by default');

SELECT * FROM finish();
ROLLBACK;
