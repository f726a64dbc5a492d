-- A request context cannot be partly cleared.  set_config(name, NULL, ...) and
-- SET ... TO DEFAULT take a setting's default without its check hook; a context with a
-- part cleared would widen a policy written as NOT has_app_role('viewer'), attribute audit
-- rows to nobody, or let brandbos.trust_request_jwt_claims supply another tenant.  After
-- such a reset every helper and the audit writer refuse the context (42501) until the
-- transaction ends or authenticate()/set_context() writes a whole new one.  Restores that
-- are not changes (a rolled-back savepoint, the end of the transaction) do not count, nor
-- does clearing a context that was never set.  Runs unchanged on both clusters (with
-- preload, the SET ... TO DEFAULT statement is refused outright).
--
-- The attacker is bb58_web, an ordinary login role's request role that is subject to RLS;
-- bb58_admin (a context admin) sets the context as an application would.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SET LOCAL client_min_messages = warning;
SELECT plan(18);

CREATE ROLE bb58_web;
CREATE ROLE bb58_admin;
GRANT brandbos_context_admin TO bb58_admin;
GRANT bb58_web TO bb58_admin;

CREATE TABLE bb58_docs (id int PRIMARY KEY, tenant_id text NOT NULL, owner text, body text);
INSERT INTO bb58_docs VALUES (1, 'A', 'alice', 'a-doc'), (2, 'B', 'bob', 'b-doc');
SELECT brandbos.enable_tenant_isolation('bb58_docs');
SELECT brandbos.enable_audit('bb58_docs');
-- viewers may read but not change
CREATE POLICY no_viewers ON bb58_docs AS RESTRICTIVE FOR UPDATE
    USING (NOT brandbos.has_app_role('viewer'));
GRANT SELECT, INSERT, UPDATE, DELETE ON bb58_docs TO bb58_web;

CREATE FUNCTION bb58_state(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN '00000';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END $$;
GRANT EXECUTE ON FUNCTION bb58_state(text) TO PUBLIC;

SELECT current_setting('shared_preload_libraries') ~ 'brandbos' AS preloaded \gset
SAVEPOINT part1;
SET LOCAL ROLE bb58_admin;

-- clearing a context that was never set changes nothing
SELECT is(bb58_state($$SELECT set_config('brandbos.request_user_id', NULL, true)$$) || ' ' ||
          coalesce(brandbos.current_user_id(), 'none'), '00000 none',
          'clearing a context never set is no reset: the helpers still answer (NULL)');

-- a reset through set_config(name, NULL)
SELECT brandbos.set_context('alice', 'A', 'viewer');
SELECT is(bb58_state($$UPDATE bb58_docs SET body = 'viewer wrote' WHERE id = 1$$) ||
          (SELECT body FROM bb58_docs WHERE id = 1),
          '00000a-doc', 'a viewer updates nothing (the restrictive policy holds)');
SELECT lives_ok($$SELECT set_config('brandbos.request_app_role', NULL, true)$$,
                'set_config(app role, NULL) itself is not refused...');
SELECT throws_ok($$SELECT brandbos.has_app_role('viewer')$$, '42501', NULL,
                 '...but has_app_role then refuses the context that is left');
SELECT throws_ok($$UPDATE bb58_docs SET body = 'viewer wrote' WHERE id = 1$$, '42501', NULL,
                 'the viewer''s UPDATE fails instead of passing the NOT has_app_role policy');
SELECT throws_ok($$SELECT count(*) FROM bb58_docs$$, '42501', NULL,
                 'reading the isolated table fails too (the tenant helper refuses)');
SELECT throws_ok($$SELECT brandbos.log_event('logout', 'session')$$, '42501', NULL,
                 'log_event refuses to write an audit row without a trustworthy actor');
SELECT throws_ok($$SELECT brandbos.current_user_id()$$, '42501', NULL,
                 'so does current_user_id, though the user was not the part reset');

-- a new context written by brandbos is trusted again
SELECT brandbos.set_context('alice', 'A', 'editor');
SELECT is(brandbos.current_user_id() || '/' || brandbos.current_tenant_id(), 'alice/A',
          'after set_context the helpers answer again');
SELECT is((SELECT count(*)::int FROM bb58_docs), 1, 'and alice sees her tenant''s row');

-- SET ... TO DEFAULT: refused when preloaded, else the context is refused afterwards
SELECT is(bb58_state($$SET LOCAL brandbos.request_user_id TO DEFAULT$$) || ' ' ||
          bb58_state($$SELECT brandbos.current_user_id()$$),
          CASE WHEN :'preloaded'::boolean THEN '42501 00000' ELSE '00000 42501' END,
          'SET ... TO DEFAULT: refused outright (preload), or the helpers refuse what is left');
ROLLBACK TO SAVEPOINT part1;    -- ends the context and its role lock

-- with request.jwt.claims trusted, a cleared user does not hand over to forged claims
SAVEPOINT part2;
SET LOCAL brandbos.trust_request_jwt_claims = on;
SET LOCAL ROLE bb58_admin;
SELECT brandbos.set_context('alice', 'A', 'editor');
DO $$ BEGIN
	PERFORM set_config('brandbos.request_user_id', NULL, true);
	PERFORM set_config('request.jwt.claims', '{"sub": "bob", "tenant_id": "B", "role": "service_role"}', true);
END $$;
SELECT throws_ok($$SELECT brandbos.current_tenant_id()$$, '42501', NULL,
                 'trusted claims do not stand in for a context that was partly reset');
SELECT throws_ok($$SELECT count(*) FROM bb58_docs WHERE tenant_id = 'B'$$, '42501', NULL,
                 'and tenant B''s rows stay out of reach');
ROLLBACK TO SAVEPOINT part2;

-- what is not a change: a rolled-back savepoint
SAVEPOINT part3;
SET LOCAL ROLE bb58_admin;
SELECT brandbos.set_context('alice', 'A', 'editor');
SAVEPOINT inner_request;
SELECT brandbos.set_context('bob', 'B', 'editor');
ROLLBACK TO SAVEPOINT inner_request;
SELECT is(brandbos.current_user_id() || '/' || brandbos.current_tenant_id(), 'alice/A',
          'a rolled-back savepoint restores the outer context without tripping the guard');
SELECT is((SELECT count(*)::int FROM bb58_docs), 1, 'and policies read it as before');
RELEASE SAVEPOINT inner_request;
ROLLBACK TO SAVEPOINT part3;

-- a superuser is no exception
SELECT brandbos.set_context('dave', 'A');
SELECT is(bb58_state($q$DO $d$ BEGIN PERFORM set_config('brandbos.request_user_id', NULL, true); END $d$$q$),
          '00000', 'a superuser''s reset of the context...');
SELECT throws_ok($$SELECT brandbos.current_user_id()$$, '42501', NULL,
                 '...is a reset like any other');
SELECT brandbos.set_context('carol', 'A');
SELECT is(brandbos.current_user_id(), 'carol', 'a fresh context after it is trusted');

SELECT * FROM finish();
ROLLBACK;

