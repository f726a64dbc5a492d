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
-- RESET cannot set a context, and a context it cleared a part of is refused
-- by every helper (fail closed); when preloaded the RESET itself is refused
SELECT brandbos.set_context('u1', 't1');
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
    THEN throws_ok($$RESET brandbos.request_tenant_id$$, '42501', NULL, 'preloaded: RESET of the context is refused')
    ELSE lives_ok($$RESET brandbos.request_tenant_id$$, 'without preload RESET is possible...') END;
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
    THEN is(brandbos.current_tenant_id(), 't1', 'preloaded: the tenant is untouched')
    ELSE throws_ok($$SELECT brandbos.current_tenant_id()$$, '42501', NULL,
                   '...but then the helpers refuse the context that is left') END;
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
    THEN is(brandbos.current_user_id(), 'u1', 'preloaded: the user is untouched')
    ELSE throws_ok($$SELECT brandbos.current_user_id()$$, '42501', NULL,
                   '...the user''s helper too, though the user was not reset') END;
SELECT * FROM finish();
ROLLBACK;
