-- A context value written before the library is loaded in a session (a
-- placeholder setting) must not survive the library's load.  On the
-- preloaded cluster the write itself is refused; on the other one it is
-- discarded when CREATE EXTENSION loads the library.
SET client_min_messages = error;
DO $$
BEGIN
    PERFORM set_config('brandbos.request_user_id', 'forged-user', false);
    PERFORM set_config('brandbos.request_tenant_id', 'forged-tenant', false);
EXCEPTION WHEN OTHERS THEN
    NULL;   -- refused outright: preloaded
END $$;
RESET client_min_messages;
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SET LOCAL client_min_messages = warning;
SELECT plan(5);
SELECT is(brandbos.current_user_id(), NULL, 'a user id set before the library loaded is discarded');
SELECT is(brandbos.current_tenant_id(), NULL, 'a tenant id set before the library loaded is discarded');
-- RESET can only clear the context (fail closed), never set one; when
-- preloaded it is refused outright
SELECT brandbos.set_context('u1', 't1');
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
    THEN throws_ok($$RESET brandbos.request_tenant_id$$, '42501', NULL, 'preloaded: RESET of the context is refused')
    ELSE lives_ok($$RESET brandbos.request_tenant_id$$, 'without preload RESET is possible...') END;
SELECT is(brandbos.current_tenant_id(),
          CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos' THEN 't1' END,
          '...and can only clear the tenant: the helpers fail closed');
SELECT is(brandbos.current_user_id(), 'u1', 'the user is untouched');
SELECT * FROM finish();
ROLLBACK;
