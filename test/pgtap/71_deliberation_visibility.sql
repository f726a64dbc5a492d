-- Who reaches a deliberation session (SPEC sections 0.1 and 5).  One rule decides it: the
-- sessions' row level security policy, brandbos.context_sees(user_id, tenant_id), which the
-- C functions also use when they look a session up.  Every function that finds a session is
-- called by attackers (another user of the same tenant, a user and an admin of another
-- tenant, a login role without a context, a caller with row_security off, a superuser with
-- somebody else's context): each sees "unknown session" (42704) and changes nothing.  The
-- owner and an admin of the session's tenant reach it through every function.  For a set of
-- contexts, the sessions the functions reach (plain and locking lookups) are exactly the
-- rows a SELECT under RLS returns.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(105);

CREATE ROLE bb71_app NOLOGIN;          -- the application's backend: sets request contexts
GRANT brandbos_context_admin TO bb71_app;
CREATE ROLE bb71_login LOGIN;          -- an ordinary login role that never has a context

SELECT brandbos.upsert_persona('cfo', 'Cal', 'money', NULL);

-- the victim u1 of tenant t1 has one session per function (so that every call can succeed
-- for those who may make it); other users have one session each
INSERT INTO brandbos.sessions (id, user_id, tenant_id, problem_statement) VALUES
	('v-active', 'u1', 't1', 'victim'), ('v-pause', 'u1', 't1', 'victim'),
	('v-paused', 'u1', 't1', 'victim'), ('v-complete', 'u1', 't1', 'victim'),
	('v-fail', 'u1', 't1', 'victim'), ('v-kill', 'u1', 't1', 'victim'),
	('u2-s', 'u2', 't1', 'same tenant'), ('u3-s', 'u3', 't2', 'other tenant'),
	('u4-s', 'u4', NULL, 'no tenant');
UPDATE brandbos.sessions SET status = 'paused' WHERE id = 'v-paused';

-- every function that finds a session, with the victim's session it is aimed at
CREATE TEMP TABLE t71_calls (ord int, fn text, sid text, call text) ON COMMIT DROP;
INSERT INTO t71_calls VALUES
	(1, 'add_contribution', 'v-active', $$SELECT brandbos.add_contribution(%L, 'cfo', 'x', 'deliberation', 0.1, 1, 'm')$$),
	(2, 'next_round', 'v-active', $$SELECT brandbos.next_round(%L)$$),
	(3, 'set_phase', 'v-active', $$SELECT brandbos.set_phase(%L, 'voting')$$),
	(4, 'cast_vote', 'v-active', $$SELECT brandbos.cast_vote(%L, 'cfo', 'yes', 'r', 0.5)$$),
	(5, 'session_summary', 'v-active', $$SELECT brandbos.session_summary(%L)$$),
	(6, 'pause_session', 'v-pause', $$SELECT brandbos.pause_session(%L)$$),
	(7, 'resume_session', 'v-paused', $$SELECT brandbos.resume_session(%L)$$),
	(8, 'complete_session', 'v-complete', $$SELECT brandbos.complete_session(%L)$$),
	(9, 'fail_session', 'v-fail', $$SELECT brandbos.fail_session(%L, 'x')$$),
	(10, 'kill_session', 'v-kill', $$SELECT brandbos.kill_session(%L, 'x')$$);
CREATE TEMP TABLE t71_all ON COMMIT DROP AS SELECT id FROM brandbos.sessions;
CREATE TEMP TABLE t71_before ON COMMIT DROP AS
	SELECT (SELECT jsonb_agg(to_jsonb(s) ORDER BY s.id) FROM brandbos.sessions s) AS sessions,
	       (SELECT count(*) FROM brandbos.audit_entries WHERE resource_type = 'session') AS audit_rows;
GRANT SELECT ON t71_calls, t71_all TO PUBLIC;

-- the sessions the functions reach for the current caller: through the plain lookup
-- (session_summary) or the locking one (set_phase); every call is undone
CREATE FUNCTION pg_temp.t71_reached(locking boolean) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	sid text;
BEGIN
	FOR sid IN SELECT id FROM t71_all ORDER BY id LOOP
		BEGIN
			IF locking THEN
				PERFORM brandbos.set_phase(sid, 'voting');
			ELSE
				PERFORM brandbos.session_summary(sid);
			END IF;
			RAISE SQLSTATE 'BB071';
		EXCEPTION
			WHEN undefined_object THEN NULL;
			WHEN SQLSTATE 'BB071' OR object_not_in_prerequisite_state THEN RETURN NEXT sid;
		END;
	END LOOP;
END
$$;

-- ---------------------------------------------------------------------------------------
-- attackers: every function says 42704 for every one of them
-- ---------------------------------------------------------------------------------------
SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT brandbos.set_context('u2', 't1');
SELECT throws_ok(format(call, sid), '42704', NULL, 'another user of the same tenant: ' || fn || ' sees no session')
  FROM t71_calls ORDER BY ord;
ROLLBACK TO SAVEPOINT a;

SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT brandbos.set_context('u3', 't2');
SELECT throws_ok(format(call, sid), '42704', NULL, 'a user of another tenant: ' || fn || ' sees no session')
  FROM t71_calls ORDER BY ord;
ROLLBACK TO SAVEPOINT a;

SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT brandbos.set_context('boss2', 't2', 'admin');
SELECT throws_ok(format(call, sid), '42704', NULL, 'an admin of another tenant: ' || fn || ' sees no session')
  FROM t71_calls ORDER BY ord;
ROLLBACK TO SAVEPOINT a;

SAVEPOINT a;
SET LOCAL ROLE bb71_login;
SELECT throws_ok(format(call, sid), '42704', NULL, 'a login role without a context: ' || fn || ' sees no session')
  FROM t71_calls ORDER BY ord;
ROLLBACK TO SAVEPOINT a;

SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT brandbos.set_context('u2', 't1');
SET LOCAL row_security = off;
SELECT throws_ok(format(call, sid), '42704', NULL, 'another user with row_security off: ' || fn || ' sees no session')
  FROM t71_calls ORDER BY ord;
ROLLBACK TO SAVEPOINT a;

-- a superuser bypasses RLS in its own queries, but the functions hold a caller with a
-- context to that context
SAVEPOINT a;
SELECT brandbos.set_context('u2', 't1');
SELECT throws_ok(format(call, sid), '42704', NULL, 'a superuser with another user''s context: ' || fn || ' sees no session')
  FROM t71_calls ORDER BY ord;
ROLLBACK TO SAVEPOINT a;

SELECT is((SELECT jsonb_agg(to_jsonb(s) ORDER BY s.id) FROM brandbos.sessions s), (SELECT sessions FROM t71_before),
          'after the attacks every session is as it was');
SELECT is((SELECT count(*)::int FROM brandbos.contributions), 0, 'no contribution was added');
SELECT is((SELECT count(*)::int FROM brandbos.votes), 0, 'no vote was cast');
SELECT is((SELECT count(*) FROM brandbos.audit_entries WHERE resource_type = 'session'), (SELECT audit_rows FROM t71_before),
          'no status change was logged');

-- ---------------------------------------------------------------------------------------
-- those who may: the owner, an admin of the session's tenant
-- ---------------------------------------------------------------------------------------
SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT brandbos.set_context('u1', 't1');
SELECT lives_ok(format(call, sid), 'the owner: ' || fn || ' reaches the session') FROM t71_calls ORDER BY ord;
ROLLBACK TO SAVEPOINT a;

SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT brandbos.set_context('boss', 't1', 'admin');
SELECT lives_ok(format(call, sid), 'an admin of the tenant: ' || fn || ' reaches the session') FROM t71_calls ORDER BY ord;
ROLLBACK TO SAVEPOINT a;

-- ---------------------------------------------------------------------------------------
-- one rule: the functions reach exactly what the policy shows
-- ---------------------------------------------------------------------------------------
CREATE TEMP TABLE t71_contexts (ord int, user_id text, tenant_id text, app_role text, label text) ON COMMIT DROP;
INSERT INTO t71_contexts VALUES
	(1, 'u1', 't1', 'authenticated', 'the owner'),
	(2, 'u2', 't1', 'authenticated', 'another user of the tenant'),
	(3, 'boss', 't1', 'admin', 'an admin of the tenant'),
	(4, 'u3', 't2', 'authenticated', 'a user of another tenant'),
	(5, 'boss2', 't2', 'service_role', 'a service role of another tenant'),
	(6, 'u1', 't2', 'authenticated', 'the owner under another tenant'),
	(7, 'boss3', NULL, 'admin', 'an admin without a tenant'),
	(8, 'u4', NULL, 'authenticated', 'a user without a tenant');
GRANT SELECT ON t71_contexts TO PUBLIC;

-- t71_agree(n): the two lookups against a SELECT under RLS, for context n (0: none)
CREATE FUNCTION pg_temp.t71_agree(n int) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	c record;
	label text := 'no context';
BEGIN
	SELECT * INTO c FROM t71_contexts WHERE ord = n;
	IF FOUND THEN
		PERFORM brandbos.set_context(c.user_id, c.tenant_id, c.app_role);
		label := c.label;
	END IF;
	RETURN NEXT set_eq('SELECT pg_temp.t71_reached(false)', 'SELECT id FROM brandbos.sessions',
	                   label || ': session_summary reaches exactly the rows the policy shows');
	RETURN NEXT set_eq('SELECT pg_temp.t71_reached(true)', 'SELECT id FROM brandbos.sessions',
	                   label || ': set_phase (locking lookup) reaches exactly the rows the policy shows');
END
$$;

SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT pg_temp.t71_agree(0);
ROLLBACK TO SAVEPOINT a;
SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT pg_temp.t71_agree(1);
ROLLBACK TO SAVEPOINT a;
SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT pg_temp.t71_agree(2);
ROLLBACK TO SAVEPOINT a;
SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT pg_temp.t71_agree(3);
ROLLBACK TO SAVEPOINT a;
SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT pg_temp.t71_agree(4);
ROLLBACK TO SAVEPOINT a;
SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT pg_temp.t71_agree(5);
ROLLBACK TO SAVEPOINT a;
SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT pg_temp.t71_agree(6);
ROLLBACK TO SAVEPOINT a;
SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT pg_temp.t71_agree(7);
ROLLBACK TO SAVEPOINT a;
SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT pg_temp.t71_agree(8);
ROLLBACK TO SAVEPOINT a;

-- ---------------------------------------------------------------------------------------
-- the rule is written once: every policy of the four tables calls context_sees, which the
-- planner inlines (the indexes on user_id and tenant_id stay usable)
-- ---------------------------------------------------------------------------------------
SELECT is((SELECT array_agg(tablename || ':' || (qual ~ 'context_sees' AND with_check ~ 'context_sees')
                      ORDER BY tablename)::text
             FROM pg_policies WHERE schemaname = 'brandbos'
              AND tablename IN ('users', 'sessions', 'contributions', 'votes')),
          '{contributions:true,sessions:true,users:true,votes:true}',
          'users, sessions, contributions and votes have one policy each, and it is context_sees');
SELECT ok((SELECT p.prosqlbody IS NOT NULL AND NOT p.prosecdef AND p.proconfig IS NULL AND p.provolatile = 's'
             FROM pg_proc p WHERE p.oid = 'brandbos.context_sees(text, text)'::regprocedure),
          'context_sees is an invoker''s STABLE SQL-standard function, bound at creation and inlinable');

CREATE FUNCTION pg_temp.t71_plan(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
	plan text := '';
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		plan := plan || line || E'\n';
	END LOOP;
	RETURN plan;
END
$$;
SAVEPOINT a;
SET LOCAL ROLE bb71_app;
SELECT brandbos.set_context('u1', 't1');
SET LOCAL enable_seqscan = off;
SELECT ok(pg_temp.t71_plan('SELECT id FROM brandbos.sessions') ~ 'Index Cond: \(user_id = '
          AND pg_temp.t71_plan('SELECT id FROM brandbos.sessions') !~ 'context_sees',
          'under RLS the policy is inlined: an index condition on sessions(user_id)');
ROLLBACK TO SAVEPOINT a;

SELECT * FROM finish();
ROLLBACK;
