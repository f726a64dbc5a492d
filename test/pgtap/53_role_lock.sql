-- The role lock (SPEC sections 0.1 and 4): while a request context is set, no path changes
-- the session's role or session authorization — statements, set_config() in every form
-- (direct, through a name expression, PL/pgSQL with plans cached before the context,
-- dynamic EXECUTE, a view, SQL function bodies, DO blocks, the reset form with a NULL
-- value), and the SET clauses of functions and procedures (made before or during the
-- context).  Each refusal is 42501 and leaves current_user, session_user and the visible
-- rows as they were.  What must keep working: SECURITY DEFINER functions, other SET clauses
-- and settings, brandbos's own functions, and role changes once the context has ended.
--
-- The attacker is an ordinary login role: the session becomes bb53_app (a pooled
-- connection's login role, BYPASSRLS, member of the "service" role bb53_service), the
-- request runs as bb53_web (member of brandbos_context_admin, subject to RLS) and sets its
-- context.  Climbing to bb53_service or back to bb53_app shows every tenant's rows.
-- The lock holds with and without shared_preload_libraries: this file runs unchanged on
-- both clusters.
--
-- The first part ends transactions (COMMIT, ROLLBACK), so it runs before pgTAP's own
-- transaction and keeps its outcomes in psql variables; the assertions come later.
CREATE EXTENSION IF NOT EXISTS pgtap;

-- ---------------------------------------------------------------------------------------
-- part 1 (outside the test transaction): the lock ends with the transaction
-- ---------------------------------------------------------------------------------------
-- set_context without the extension's SQL objects, which the test transaction creates and
-- rolls back (C functions in pg_temp are the superuser's; they vanish with the session)
CREATE FUNCTION pg_temp.t53_set_context(text, text, text, jsonb) RETURNS void
    LANGUAGE c AS '$libdir/brandbos', 'brandbos_set_context';
CREATE FUNCTION pg_temp.t53_outcome(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok as ' || current_user;
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;

BEGIN;
DO $$ BEGIN PERFORM pg_temp.t53_set_context('user-commit', 'tenant-commit', 'authenticated', '{}'); END $$;
SELECT pg_temp.t53_outcome('SET ROLE pg_monitor') AS commit_locked \gset
COMMIT;
SELECT pg_temp.t53_outcome('SET ROLE pg_monitor') AS after_commit \gset
RESET ROLE;

BEGIN;
DO $$ BEGIN PERFORM pg_temp.t53_set_context('user-rollback', 'tenant-rollback', 'authenticated', '{}'); END $$;
SELECT pg_temp.t53_outcome('SET ROLE pg_monitor') AS rollback_locked \gset
ROLLBACK;
SELECT pg_temp.t53_outcome('SET ROLE pg_monitor') AS after_rollback \gset
RESET ROLE;

-- ---------------------------------------------------------------------------------------
-- part 2: the test transaction
-- ---------------------------------------------------------------------------------------
BEGIN;
CREATE EXTENSION brandbos;
SELECT plan(106);

SELECT is(:'commit_locked'::text, '42501', 'with a context set (superuser session): SET ROLE is refused');
SELECT is(:'after_commit'::text, 'ok as pg_monitor', 'after COMMIT the lock is gone: SET ROLE works again');
SELECT is(:'rollback_locked'::text, '42501', 'a second transaction with a context: SET ROLE is refused');
SELECT is(:'after_rollback'::text, 'ok as pg_monitor', 'after ROLLBACK the lock is gone: SET ROLE works again');

CREATE ROLE bb53_app LOGIN BYPASSRLS;      -- the pooled connection's login role
CREATE ROLE bb53_web NOLOGIN;              -- the request's role: sets the context, under RLS
CREATE ROLE bb53_service NOLOGIN BYPASSRLS; -- like Supabase's service_role: every tenant
CREATE ROLE bb53_owner NOLOGIN;            -- owns SECURITY DEFINER functions
GRANT brandbos_context_admin TO bb53_web;
GRANT bb53_web, bb53_service TO bb53_app;

CREATE TABLE t53_notes (tenant_id text NOT NULL, body text);
INSERT INTO t53_notes VALUES ('tenant-a', 'a1'), ('tenant-a', 'a2'),
                             ('tenant-b', 'b1'), ('tenant-b', 'b2'), ('tenant-b', 'b3');
SELECT brandbos.enable_tenant_isolation('t53_notes');
GRANT SELECT ON t53_notes TO bb53_web, bb53_service, bb53_app, bb53_owner;

-- who runs, for which session, seeing how many rows
CREATE FUNCTION t53_who() RETURNS text LANGUAGE sql VOLATILE AS
$$ SELECT current_user || '/' || session_user || '/' || (SELECT count(*) FROM public.t53_notes) $$;

-- made before any context: SET clauses that climb, as a function and as a procedure
CREATE FUNCTION t53_climb_early() RETURNS text LANGUAGE plpgsql SET role = 'bb53_service' AS
$$ BEGIN RETURN t53_who(); END $$;
CREATE FUNCTION t53_climb_login() RETURNS text LANGUAGE sql SET role = 'bb53_app' AS
$$ SELECT t53_who() $$;
CREATE FUNCTION t53_climb_session() RETURNS text LANGUAGE sql SET session_authorization = 'postgres' AS
$$ SELECT t53_who() $$;
CREATE FUNCTION t53_climb_definer() RETURNS text LANGUAGE sql SECURITY DEFINER SET role = 'bb53_service' AS
$$ SELECT t53_who() $$;
ALTER FUNCTION t53_climb_definer() OWNER TO bb53_owner;
CREATE PROCEDURE t53_climb_proc(INOUT who text DEFAULT NULL) LANGUAGE plpgsql SET role = 'bb53_service' AS
$$ BEGIN who := t53_who(); END $$;
-- set_config behind a view, a SQL body, a BEGIN ATOMIC body, PL/pgSQL and EXECUTE
CREATE VIEW t53_climb_view AS SELECT set_config('role', 'bb53_service', true) AS r;
CREATE VIEW t53_reset_view AS SELECT set_config('role', NULL, true) AS r;
GRANT SELECT ON t53_climb_view, t53_reset_view TO PUBLIC;
CREATE FUNCTION t53_sql_body() RETURNS text LANGUAGE sql AS
$$ SELECT set_config('role', 'bb53_service', true); SELECT t53_who() $$;
CREATE FUNCTION t53_atomic_body() RETURNS text LANGUAGE sql
BEGIN ATOMIC SELECT set_config('role', NULL, true); END;
CREATE FUNCTION t53_plpgsql_set(r text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN PERFORM set_config('role', r, true); RETURN t53_who(); END $$;
CREATE FUNCTION t53_plpgsql_reset(n text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN PERFORM set_config(n, NULL, true); RETURN t53_who(); END $$;
CREATE FUNCTION t53_dynamic(q text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN EXECUTE q; RETURN t53_who(); END $$;
-- a context set inside a function whose SET clause changes the role, restored on return
CREATE FUNCTION t53_context_inside() RETURNS text LANGUAGE plpgsql SET role = 'bb53_web' AS
$$ BEGIN PERFORM brandbos.set_context('user-inside', 'tenant-a'); RETURN t53_who(); END $$;
-- legitimate: SECURITY DEFINER without a role clause, with another SET clause, and a
-- SET clause of another setting
CREATE FUNCTION t53_definer() RETURNS text LANGUAGE sql SECURITY DEFINER AS
$$ SELECT current_user || '/' || session_user || '/' || (SELECT count(*) FROM public.t53_notes) $$;
ALTER FUNCTION t53_definer() OWNER TO bb53_owner;
CREATE FUNCTION t53_definer_path() RETURNS text LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$ SELECT current_user::text $$;
ALTER FUNCTION t53_definer_path() OWNER TO bb53_owner;
CREATE FUNCTION t53_work_mem() RETURNS text LANGUAGE sql SET work_mem = '8MB' AS
$$ SELECT current_setting('work_mem') || '/' || current_user $$;
CREATE FUNCTION t53_context_in_function() RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, public AS
$$ BEGIN PERFORM brandbos.set_context('user-fn', 'tenant-a'); RETURN current_user; END $$;
CREATE FUNCTION t53_name_expr(n text) RETURNS text LANGUAGE sql AS
$$ SELECT set_config(n, 'r-7', true) $$;
-- parallel workers run functions and their SET clauses too
CREATE FUNCTION t53_parallel_climb() RETURNS text LANGUAGE sql PARALLEL SAFE SET role = 'bb53_service' AS
$$ SELECT current_user || '/' || (SELECT count(*) FROM public.t53_notes) $$;
CREATE FUNCTION t53_lock_seen() RETURNS text LANGUAGE sql PARALLEL SAFE AS
$$ SELECT current_setting('brandbos.request_role_lock', true) $$;
CREATE FUNCTION t53_explain(q text) RETURNS text LANGUAGE plpgsql AS $$
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

-- ---------------------------------------------------------------------------------------
-- without a context every climb works (so the assertions below test something)
-- ---------------------------------------------------------------------------------------
SET LOCAL SESSION AUTHORIZATION bb53_app;
SET LOCAL ROLE bb53_web;
SELECT is(t53_who(), 'bb53_web/bb53_app/0', 'no context: bb53_web sees no row (fail closed)');
SELECT is(current_setting('brandbos.request_role_lock', true), 'off', 'no context: brandbos.request_role_lock is off');
SAVEPOINT free;
SELECT is(t53_climb_early(), 'bb53_service/bb53_app/5', 'no context: a SET role clause climbs to bb53_service');
SELECT is(t53_plpgsql_set('bb53_web'), 'bb53_web/bb53_app/0', 'no context: PL/pgSQL set_config(role) runs (its plan is now cached)');
SELECT is(t53_plpgsql_reset('role'), 'bb53_app/bb53_app/5', 'no context: PL/pgSQL set_config(name, NULL) resets to the login role (plan cached)');
ROLLBACK TO SAVEPOINT free;
SELECT is(t53_who(), 'bb53_web/bb53_app/0', 'back to bb53_web');
-- a statement prepared, and a cursor opened, before the context
PREPARE t53_prepared(text) AS SELECT set_config('role', $1, true);
EXECUTE t53_prepared('bb53_web') \gset

-- ---------------------------------------------------------------------------------------
-- with a context
-- ---------------------------------------------------------------------------------------
SAVEPOINT locked;
DECLARE t53_cursor CURSOR FOR SELECT set_config('role', NULL, true);
SELECT brandbos.set_context('user-a', 'tenant-a');
SELECT is(t53_who(), 'bb53_web/bb53_app/2', 'context set: bb53_web sees tenant-a''s 2 rows');

-- function SET clauses
SELECT throws_ok($$SELECT t53_climb_early()$$, '42501', NULL,
                 'a function made before the context with SET role = service: refused at call');
SELECT throws_ok($$SELECT t53_climb_login()$$, '42501', NULL,
                 'a function with SET role = the login role: refused at call');
SELECT throws_ok($$SELECT t53_climb_session()$$, '42501', NULL,
                 'a function with SET session_authorization: refused at call');
SELECT throws_ok($$SELECT t53_climb_definer()$$, '42501', NULL,
                 'a SECURITY DEFINER function''s own SET role clause: refused');
SELECT throws_ok($$CALL t53_climb_proc()$$, '42501', NULL,
                 'a procedure with SET role: refused at CALL');
SELECT throws_ok($$CREATE FUNCTION pg_temp.climb() RETURNS text LANGUAGE sql SET role = 'bb53_service'
                   AS 'SELECT public.t53_who()'$$, '42501', NULL,
                 'CREATE FUNCTION pg_temp.climb() SET role (TEMP is PUBLIC''s): refused, its body check would run as that role');
SET LOCAL check_function_bodies = off;
SELECT lives_ok($$CREATE FUNCTION pg_temp.climb() RETURNS text LANGUAGE sql SET role = 'bb53_service'
                  AS 'SELECT public.t53_who()'$$,
                'with check_function_bodies off, creating pg_temp.climb() changes no role and works');
SELECT throws_ok($$SELECT pg_temp.climb()$$, '42501', NULL, 'calling pg_temp.climb() (SET role = service): refused');
SELECT lives_ok($$CREATE FUNCTION pg_temp.climb_back() RETURNS text LANGUAGE sql AS 'SELECT public.t53_who()'$$,
                'a plain pg_temp function can be created');
SELECT lives_ok($$ALTER FUNCTION pg_temp.climb_back() SET role = 'bb53_app'$$,
                'ALTER FUNCTION ... SET role only validates: it works');
SELECT throws_ok($$SELECT pg_temp.climb_back()$$, '42501', NULL, 'calling it (SET role = the login role): refused');
SELECT is(t53_who(), 'bb53_web/bb53_app/2', 'after the SET clauses: role, session user and rows unchanged');

-- statements
SELECT throws_ok($$SET ROLE bb53_service$$, '42501', NULL, 'SET ROLE: refused');
SELECT throws_ok($$SET LOCAL ROLE bb53_service$$, '42501', NULL, 'SET LOCAL ROLE: refused');
SELECT throws_ok($$SET ROLE NONE$$, '42501', NULL, 'SET ROLE NONE: refused');
SELECT throws_ok($$RESET ROLE$$, '42501', NULL, 'RESET ROLE: refused');
SELECT throws_ok($$SET role TO DEFAULT$$, '42501', NULL, 'SET role TO DEFAULT: refused');
SELECT throws_ok($$SET SESSION AUTHORIZATION postgres$$, '42501', NULL, 'SET SESSION AUTHORIZATION: refused');
SELECT throws_ok($$SET LOCAL SESSION AUTHORIZATION postgres$$, '42501', NULL, 'SET LOCAL SESSION AUTHORIZATION: refused');
SELECT throws_ok($$SET SESSION AUTHORIZATION DEFAULT$$, '42501', NULL, 'SET SESSION AUTHORIZATION DEFAULT: refused');
SELECT throws_ok($$RESET SESSION AUTHORIZATION$$, '42501', NULL, 'RESET SESSION AUTHORIZATION: refused');
SELECT throws_ok($$RESET ALL$$, '42501', NULL, 'RESET ALL: refused');
SELECT is(t53_who(), 'bb53_web/bb53_app/2', 'after the statements: role, session user and rows unchanged');

-- set_config
SELECT throws_ok($$SELECT set_config('role', 'bb53_service', true)$$, '42501', NULL, 'set_config(role, service, true): refused');
SELECT throws_ok($$SELECT set_config('role', 'bb53_service', false)$$, '42501', NULL, 'set_config(role, service, false): refused');
SELECT throws_ok($$SELECT set_config('ROLE', 'bb53_app', true)$$, '42501', NULL, 'set_config(ROLE, login role): refused');
SELECT throws_ok($$SELECT set_config('session_authorization', 'postgres', false)$$, '42501', NULL,
                 'set_config(session_authorization, postgres): refused');
SELECT throws_ok($$SELECT set_config(n, 'bb53_service', true) FROM (VALUES ('role')) v(n)$$, '42501', NULL,
                 'set_config through a name from a row: refused');
SELECT throws_ok($$SELECT set_config('ro' || 'le', 'bb53_service', true)$$, '42501', NULL,
                 'set_config through a name expression: refused');
SELECT throws_ok($$SELECT set_config('role', NULL, true)$$, '42501', NULL,
                 'set_config(role, NULL) (a reset to the login role): refused');
SELECT throws_ok($$SELECT set_config('session_authorization', NULL, false)$$, '42501', NULL,
                 'set_config(session_authorization, NULL) (a reset to the authenticated user): refused');
SELECT throws_ok($$SELECT set_config('role', NULL, true), (SELECT count(*) FROM t53_notes)$$, '42501', NULL,
                 'set_config(role, NULL) with a read in the same statement: refused');
SELECT is(t53_who(), 'bb53_web/bb53_app/2', 'after set_config: role, session user and rows unchanged');

-- set_config behind plans: PL/pgSQL (cached before the context), EXECUTE, views, SQL bodies, DO
SELECT throws_ok($$SELECT t53_plpgsql_set('bb53_service')$$, '42501', NULL,
                 'PL/pgSQL set_config(role, r) with its plan cached before the context: refused');
SELECT throws_ok($$SELECT t53_plpgsql_reset('role')$$, '42501', NULL,
                 'PL/pgSQL set_config(n, NULL) with its plan cached before the context: refused');
SELECT throws_ok($$SELECT t53_dynamic('SET ROLE bb53_service')$$, '42501', NULL, 'EXECUTE ''SET ROLE'': refused');
SELECT throws_ok($$SELECT t53_dynamic('RESET ROLE')$$, '42501', NULL, 'EXECUTE ''RESET ROLE'': refused');
SELECT throws_ok($$SELECT t53_dynamic($q$SELECT set_config('role', 'bb53_service', true)$q$)$$, '42501', NULL,
                 'EXECUTE of set_config(role): refused');
SELECT throws_ok($$SELECT t53_dynamic($q$SELECT set_config('role', NULL, true)$q$)$$, '42501', NULL,
                 'EXECUTE of set_config(role, NULL): refused');
SELECT throws_ok($$SELECT * FROM t53_climb_view$$, '42501', NULL, 'a view over set_config(role, service): refused');
SELECT throws_ok($$SELECT * FROM t53_reset_view$$, '42501', NULL, 'a view over set_config(role, NULL): refused');
SELECT throws_ok($$SELECT t53_sql_body()$$, '42501', NULL, 'a SQL function body calling set_config(role): refused');
SELECT throws_ok($$SELECT t53_atomic_body()$$, '42501', NULL,
                 'a BEGIN ATOMIC body (parsed at CREATE) calling set_config(role, NULL): refused');
SELECT throws_ok($t$DO $d$ BEGIN PERFORM set_config('role', 'bb53_service', true); END $d$$t$, '42501', NULL,
                 'DO: set_config(role): refused');
SELECT throws_ok($t$DO $d$ DECLARE n text := 'role'; BEGIN PERFORM set_config(n, NULL, true); END $d$$t$, '42501', NULL,
                 'DO: set_config(variable, NULL): refused');
SELECT throws_ok($t$DO $d$ BEGIN SET ROLE bb53_service; END $d$$t$, '42501', NULL, 'DO: SET ROLE: refused');
SELECT throws_ok($t$DO $d$ BEGIN RESET ROLE; END $d$$t$, '42501', NULL, 'DO: RESET ROLE: refused');
SELECT throws_ok($t$DO $d$ BEGIN EXECUTE 'SET SESSION AUTHORIZATION postgres'; END $d$$t$, '42501', NULL,
                 'DO: EXECUTE SET SESSION AUTHORIZATION: refused');
SELECT throws_ok($$EXECUTE t53_prepared('bb53_service')$$, '42501', NULL,
                 'EXECUTE of a statement prepared before the context (set_config(role, $1)): refused');
SELECT throws_ok($$FETCH t53_cursor$$, '42501', NULL,
                 'FETCH from a cursor opened before the context (set_config(role, NULL)): refused');
SELECT is(t53_who(), 'bb53_web/bb53_app/2', 'after the plans: role, session user and rows unchanged');

-- parallel workers: the lock reaches them with the leader's settings
DO $$ BEGIN EXECUTE format('SET LOCAL %I = on', CASE WHEN current_setting('server_version_num')::int >= 160000
                                      THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END); END $$;
SELECT ok(t53_explain('SELECT t53_lock_seen()') ~ 'Workers Launched: 1', 'forced parallel mode: the function runs in a worker');
SELECT is(t53_lock_seen(), 'on', 'the worker sees brandbos.request_role_lock on');
SELECT throws_ok($$SELECT t53_parallel_climb()$$, '42501', NULL,
                 'a PARALLEL SAFE function with SET role, run in a parallel worker: refused');
SELECT throws_ok($$SELECT t53_parallel_climb() FROM t53_notes$$, '42501', NULL,
                 'the same over a table scan: refused');
DO $$ BEGIN EXECUTE format('SET LOCAL %I = off', CASE WHEN current_setting('server_version_num')::int >= 160000
                                      THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END); END $$;
-- the setting that carries the lock cannot be cleared
SELECT throws_ok($$SET LOCAL brandbos.request_role_lock = off$$, '42501', NULL, 'SET brandbos.request_role_lock: refused');
SELECT throws_ok($$RESET brandbos.request_role_lock$$, '42501', NULL, 'RESET brandbos.request_role_lock: refused');
SELECT throws_ok($$SELECT set_config('brandbos.request_role_lock', NULL, true)$$, '42501', NULL,
                 'set_config(brandbos.request_role_lock, NULL): refused');
SELECT throws_ok($$SELECT set_config('brandbos.request_role_lock', 'off', true)$$, '42501', NULL,
                 'set_config(brandbos.request_role_lock, off): refused');
SELECT is(current_setting('brandbos.request_role_lock', true), 'on', 'brandbos.request_role_lock stays on');
SELECT is(current_setting('role'), 'bb53_web', 'the role setting reads bb53_web');
SELECT is(current_setting('session_authorization'), 'bb53_app', 'the session_authorization setting reads bb53_app');

-- what the refusals say
SELECT throws_ok($$SET ROLE bb53_service$$, '42501',
                 'SET ROLE is not allowed while a brandbos request context is set',
                 'a refused statement names itself');
SELECT throws_ok($$SELECT set_config('role', 'bb53_service', true)$$, '42501',
                 'setting "role" is not allowed while a brandbos request context is set',
                 'a refused assignment names the setting');
SELECT throws_ok($$SELECT set_config('role', NULL, true)$$, '42501',
                 'the role of the session changed while a brandbos request context is set',
                 'a refused reset says the role changed');

-- what keeps working while the lock holds
SELECT is(t53_definer(), 'bb53_owner/bb53_app/2',
          'a SECURITY DEFINER function without a role clause runs as its owner (session user unchanged)');
SELECT is(t53_definer_path(), 'bb53_owner', 'a SECURITY DEFINER function with SET search_path runs');
SELECT is(t53_work_mem(), '8MB/bb53_web', 'a function with a SET clause of another setting runs');
SELECT is(t53_name_expr('app.request_id'), 'r-7', 'set_config of another setting through a name expression works');
SELECT lives_ok($$SET LOCAL statement_timeout = '1min'$$, 'SET LOCAL of another setting works');
SELECT is(brandbos.current_tenant_id(), 'tenant-a', 'brandbos helpers work');
SELECT lives_ok($$SELECT brandbos.set_request('203.0.113.9', 'role-lock test')$$, 'set_request works');
SELECT ok(brandbos.log_event('t53', 'role lock') IS NOT NULL,
          'log_event (internal SQL as the extension owner) works');
SELECT lives_ok($$SELECT brandbos.set_context('user-a2', 'tenant-a')$$, 'a new context in the same transaction works');
SELECT is(brandbos.current_user_id(), 'user-a2', 'the new context is in effect');
SELECT is(t53_who(), 'bb53_web/bb53_app/2', 'after all that: role, session user and rows unchanged');

-- savepoints: a rolled-back one ends the lock, a released one hands it to its parent
ROLLBACK TO SAVEPOINT locked;
SELECT is(brandbos.current_user_id(), NULL, 'ROLLBACK TO the savepoint before the context: no context');
SELECT is(current_setting('brandbos.request_role_lock', true), 'off', 'and brandbos.request_role_lock is off again');
SELECT lives_ok($$SET LOCAL ROLE bb53_service$$, 'the lock is gone with it: SET ROLE works');
SELECT is(t53_who(), 'bb53_service/bb53_app/5', 'and takes effect');
SET LOCAL ROLE bb53_web;

SAVEPOINT nested;
SAVEPOINT deeper;
SELECT brandbos.set_context('user-deep', 'tenant-a');
RELEASE SAVEPOINT deeper;
SELECT throws_ok($$RESET ROLE$$, '42501', NULL, 'a context set in a released savepoint locks its parent');
ROLLBACK TO SAVEPOINT nested;
SELECT lives_ok($$SET LOCAL ROLE bb53_service$$, 'rolling back the parent ends the lock');
SET LOCAL ROLE bb53_web;

-- a context set inside a function with another SET clause: the lock outlives the call
SAVEPOINT in_function;
SELECT is(t53_context_in_function(), 'bb53_web', 'set_context inside a function with SET search_path works');
SELECT is(current_setting('brandbos.request_role_lock', true), 'on', 'after the call the lock setting is on');
SELECT throws_ok($$SET ROLE bb53_service$$, '42501', NULL, 'and SET ROLE is refused');
ROLLBACK TO SAVEPOINT in_function;

-- a context set inside a function whose SET clause changed the role: on return the role
-- goes back, so the call fails instead of leaving a context with another role
RESET ROLE;
SELECT is(t53_who(), 'bb53_app/bb53_app/5', 'as the login role, no context');
SELECT throws_ok($$SELECT t53_context_inside()$$, '42501', NULL,
                 'set_context inside a function with SET role, role restored on return: refused');
SELECT is(brandbos.current_user_id(), NULL, 'and no context is left');
SELECT is(t53_who(), 'bb53_app/bb53_app/5', 'role, session user and rows as before the call');

-- the login role itself sets the context (it inherits brandbos_context_admin via bb53_web)
SAVEPOINT session_lock;
SELECT brandbos.set_context('user-s', 'tenant-a');
SELECT is(t53_who(), 'bb53_app/bb53_app/5', 'the login role itself (BYPASSRLS) with a context set');
SELECT throws_ok($$SET ROLE bb53_service$$, '42501', NULL, 'the login role: SET ROLE refused');
SELECT throws_ok($$SELECT set_config('session_authorization', 'bb53_web', false)$$, '42501', NULL,
                 'the login role: set_config(session_authorization, a member role) refused');
SELECT throws_ok($$SELECT t53_climb_session()$$, '42501', NULL, 'the login role: SET session_authorization clause refused');
SELECT is(session_user::text, 'bb53_app', 'the session user is unchanged');
ROLLBACK TO SAVEPOINT session_lock;

-- the role lock's privileges: nothing new is callable
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'brandbos' AND p.proname LIKE '%role_lock%'), 0,
          'the role lock adds no SQL function');

SELECT * FROM finish();
ROLLBACK;
