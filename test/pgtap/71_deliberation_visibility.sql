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

-- t71_as(role, user, tenant, app_role, row_security_off, body): the TAP lines of body (a query
-- of one text column), run as role (NULL: stay the superuser) with that context (user NULL:
-- none); everything else body did is undone
CREATE FUNCTION pg_temp.t71_as(r name, u text, t text, a text, rs_off boolean, body text)
	RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	lines text[];
BEGIN
	BEGIN
		IF r IS NOT NULL THEN
			EXECUTE format('SET LOCAL ROLE %I', r);
		END IF;
		IF u IS NOT NULL THEN
			PERFORM brandbos.set_context(u, t, a);
		END IF;
		IF rs_off THEN
			SET LOCAL row_security = off;
		END IF;
		EXECUTE 'SELECT array_agg(x) FROM (' || body || ') b(x)' INTO lines;
		RAISE SQLSTATE 'BB072';
	EXCEPTION WHEN SQLSTATE 'BB072' THEN NULL;
	END;
	RETURN QUERY SELECT unnest(lines);
END
$$;

-- ---------------------------------------------------------------------------------------
-- attackers: every function says 42704 to every one of them, and nothing changes.  (A
-- superuser bypasses RLS in its own queries, but the functions hold a caller with a context
-- to that context.)
-- ---------------------------------------------------------------------------------------
CREATE TEMP TABLE t71_callers (ord int, label text, r name, user_id text, tenant_id text,
                               app_role text, rs_off boolean, may boolean) ON COMMIT DROP;
INSERT INTO t71_callers VALUES
	(1, 'another user of the same tenant', 'bb71_app', 'u2', 't1', 'authenticated', false, false),
	(2, 'a user of another tenant', 'bb71_app', 'u3', 't2', 'authenticated', false, false),
	(3, 'an admin of another tenant', 'bb71_app', 'boss2', 't2', 'admin', false, false),
	(4, 'a login role without a context', 'bb71_login', NULL, NULL, NULL, false, false),
	(5, 'another user with row_security off', 'bb71_app', 'u2', 't1', 'authenticated', true, false),
	(6, 'a superuser with another user''s context', NULL, 'u2', 't1', 'authenticated', false, false),
	(7, 'the owner', 'bb71_app', 'u1', 't1', 'authenticated', false, true),
	(8, 'an admin of the tenant', 'bb71_app', 'boss', 't1', 'admin', false, true);

SELECT pg_temp.t71_as(c.r, c.user_id, c.tenant_id, c.app_role, c.rs_off,
                      format($$SELECT throws_ok(format(call, sid), '42704', NULL, %L || ': ' || fn || ' sees no session')
                                FROM t71_calls ORDER BY ord$$, c.label))
  FROM t71_callers c WHERE NOT c.may ORDER BY c.ord;

SELECT is((SELECT jsonb_agg(to_jsonb(s) ORDER BY s.id) FROM brandbos.sessions s), (SELECT sessions FROM t71_before),
          'after the attacks every session is as it was');
SELECT is((SELECT count(*)::int FROM brandbos.contributions), 0, 'no contribution was added');
SELECT is((SELECT count(*)::int FROM brandbos.votes), 0, 'no vote was cast');
SELECT is((SELECT count(*) FROM brandbos.audit_entries WHERE resource_type = 'session'), (SELECT audit_rows FROM t71_before),
          'no status change was logged');

-- those who may (the owner, an admin of the session's tenant) reach it through every function
SELECT pg_temp.t71_as(c.r, c.user_id, c.tenant_id, c.app_role, c.rs_off,
                      format($$SELECT lives_ok(format(call, sid), %L || ': ' || fn || ' reaches the session')
                                FROM t71_calls ORDER BY ord$$, c.label))
  FROM t71_callers c WHERE c.may ORDER BY c.ord;

-- ---------------------------------------------------------------------------------------
-- one rule: for each context, the functions reach exactly what the policy shows
-- ---------------------------------------------------------------------------------------
CREATE TEMP TABLE t71_contexts (ord int, user_id text, tenant_id text, app_role text, label text) ON COMMIT DROP;
INSERT INTO t71_contexts VALUES
	(0, NULL, NULL, NULL, 'no context'),
	(1, 'u1', 't1', 'authenticated', 'the owner'),
	(2, 'u2', 't1', 'authenticated', 'another user of the tenant'),
	(3, 'boss', 't1', 'admin', 'an admin of the tenant'),
	(4, 'u3', 't2', 'authenticated', 'a user of another tenant'),
	(5, 'boss2', 't2', 'service_role', 'a service role of another tenant'),
	(6, 'u1', 't2', 'authenticated', 'the owner under another tenant'),
	(7, 'boss3', NULL, 'admin', 'an admin without a tenant'),
	(8, 'u4', NULL, 'authenticated', 'a user without a tenant');

SELECT pg_temp.t71_as('bb71_app', c.user_id, c.tenant_id, c.app_role, false,
                      format($$SELECT set_eq('SELECT pg_temp.t71_reached(false)', 'SELECT id FROM brandbos.sessions',
                                             %L || ': session_summary reaches exactly the rows the policy shows')
                               UNION ALL
                               SELECT set_eq('SELECT pg_temp.t71_reached(true)', 'SELECT id FROM brandbos.sessions',
                                             %L || ': set_phase (locking lookup) reaches exactly the rows the policy shows')$$,
                             c.label, c.label))
  FROM t71_contexts c ORDER BY c.ord;

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

-- the plan of q with sequential scans off
CREATE FUNCTION pg_temp.t71_plan(q text) RETURNS text LANGUAGE plpgsql SET enable_seqscan = off AS $$
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
SELECT pg_temp.t71_as('bb71_app', 'u1', 't1', 'authenticated', false,
                      $$SELECT ok(pg_temp.t71_plan('SELECT id FROM brandbos.sessions') ~ 'Index Cond: \(user_id = '
                                  AND pg_temp.t71_plan('SELECT id FROM brandbos.sessions') !~ 'context_sees',
                                  'under RLS the policy is inlined: an index condition on sessions(user_id)')$$);

SELECT * FROM finish();
ROLLBACK;
