-- Supabase parity (SPEC section 4, README "Supabase parity"): with
-- brandbos.trust_request_jwt_claims = on and no brandbos context, brandbos.uid(),
-- brandbos.jwt(), brandbos.current_app_role() and brandbos.role() return what Supabase's
-- auth.uid(), auth.jwt() and auth.role() return for a user token, the anon key, the
-- service-role key and a request without a token.  Supabase's three functions are
-- written out below from their definitions in supabase/auth (they read the legacy
-- request.jwt.claim.* settings first, then request.jwt.claims).  The claims are set
-- the way PostgREST sets them, by an ordinary login role, with set_config(..., true).
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(37);

CREATE SCHEMA t55_auth;
CREATE FUNCTION t55_auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
	SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
	                (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid $$;
CREATE FUNCTION t55_auth.role() RETURNS text LANGUAGE sql STABLE AS $$
	SELECT coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
	                (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text $$;
CREATE FUNCTION t55_auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''),
	                nullif(current_setting('request.jwt.claims', true), ''))::jsonb $$;
GRANT USAGE ON SCHEMA t55_auth TO PUBLIC;

-- one row of the README's table: brandbos's four helpers against Supabase's three
CREATE FUNCTION t55_row(label text, want_uid uuid, want_jwt jsonb, want_role text)
RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
	RETURN NEXT is(brandbos.uid(), t55_auth.uid(), label || ': uid() = auth.uid()');
	RETURN NEXT is(brandbos.jwt(), t55_auth.jwt(), label || ': jwt() = auth.jwt()');
	RETURN NEXT is(brandbos.current_app_role(), t55_auth.role(), label || ': current_app_role() = auth.role()');
	RETURN NEXT is(brandbos.role(), t55_auth.role(), label || ': role() = auth.role()');
	RETURN NEXT ok(brandbos.uid() IS NOT DISTINCT FROM want_uid
	               AND brandbos.jwt() IS NOT DISTINCT FROM want_jwt
	               AND brandbos.role() IS NOT DISTINCT FROM want_role,
	               label || ': the values of the README table');
END
$$;

CREATE ROLE bb55_authenticator LOGIN;              -- PostgREST's login role
CREATE ROLE bb55_app LOGIN;                        -- a backend with a brandbos context
GRANT brandbos_context_admin TO bb55_app;

\set uuid_a '6f1c6a8e-6a43-4b7e-9d0b-1f6c3a2b9e01'
\set user_claims '{"aud":"authenticated","exp":4102444800,"iat":1700000000,"sub":"6f1c6a8e-6a43-4b7e-9d0b-1f6c3a2b9e01","email":"a@example.com","phone":"","role":"authenticated","aal":"aal1","session_id":"b1f0e7a2-0c55-4a53-9d2f-5b1c0e8a7d33","is_anonymous":false}'
\set anon_claims '{"iss":"supabase-demo","role":"anon","exp":1983812996}'
\set service_claims '{"iss":"supabase-demo","role":"service_role","exp":1983812996}'

SELECT ok((SELECT provolatile = 's' AND proparallel = 's' AND has_function_privilege('bb55_authenticator', oid, 'EXECUTE')
             FROM pg_proc WHERE oid = 'brandbos.role()'::regprocedure),
          'brandbos.role() is STABLE PARALLEL SAFE and executable by a login role');

SET LOCAL brandbos.trust_request_jwt_claims = on;
SET LOCAL ROLE bb55_authenticator;

-- ---- no token: request.jwt.claims never set, then set to '' -------------------------------
SELECT is(current_setting('request.jwt.claims', true), NULL, 'request.jwt.claims is not set yet');
SELECT t55_row('no token (unset)', NULL, NULL, NULL);
SAVEPOINT r;
SELECT set_config('request.jwt.claims', '', true);
SELECT t55_row('no token ('''')', NULL, NULL, NULL);
ROLLBACK TO SAVEPOINT r;

-- ---- a user's access token --------------------------------------------------------------------
SAVEPOINT r;
SELECT set_config('request.jwt.claims', :'user_claims', true);
SELECT t55_row('user token', :'uuid_a'::uuid, :'user_claims'::jsonb, 'authenticated');
ROLLBACK TO SAVEPOINT r;

-- ---- the anon key ---------------------------------------------------------------------------
SAVEPOINT r;
SELECT set_config('request.jwt.claims', :'anon_claims', true);
SELECT t55_row('anon key', NULL, :'anon_claims'::jsonb, 'anon');
SELECT is(brandbos.current_user_id(), NULL, 'anon key: no user');
SELECT is(brandbos.current_tenant_id(), NULL, 'anon key: no tenant');
SELECT is(brandbos.is_admin(), false, 'anon key: not admin');
ROLLBACK TO SAVEPOINT r;

-- ---- the service-role key --------------------------------------------------------------------
SAVEPOINT r;
SELECT set_config('request.jwt.claims', :'service_claims', true);
SELECT t55_row('service-role key', NULL, :'service_claims'::jsonb, 'service_role');
SELECT is(brandbos.current_tenant_id(), NULL, 'service-role key: no tenant (the admin policy sees no tenant)');
ROLLBACK TO SAVEPOINT r;

-- ---- claims that are no JSON object: fail closed, no error in a policy -----------------------
SAVEPOINT r;
SELECT set_config('request.jwt.claims', '{"sub":"u\u0000"}', true);
SELECT is(brandbos.jwt(), NULL, 'claims jsonb refuses (\u0000): jwt() is NULL, not an error');
SELECT set_config('request.jwt.claims', '{"role":"anon"', true);
SELECT is(brandbos.role(), NULL, 'claims that are not JSON: role() is NULL, not an error');
ROLLBACK TO SAVEPOINT r;
RESET ROLE;

-- ---- a brandbos context takes precedence over request.jwt.claims -----------------------------
SAVEPOINT r;
SET LOCAL ROLE bb55_app;
SELECT set_config('request.jwt.claims', :'anon_claims', true);
SELECT brandbos.set_context(:'uuid_a', 'tenant-1', 'member', '{"plan": "pro"}');
SELECT is(brandbos.uid(), :'uuid_a'::uuid, 'a brandbos context wins: uid()');
SELECT is(brandbos.jwt(), '{"plan": "pro"}'::jsonb, 'a brandbos context wins: jwt()');
SELECT is(brandbos.role(), 'member', 'a brandbos context wins: role()');
ROLLBACK TO SAVEPOINT r;

-- ---- trust off (the default): request.jwt.claims is ignored ----------------------------------
SET LOCAL brandbos.trust_request_jwt_claims = off;
SET LOCAL ROLE bb55_authenticator;
SELECT set_config('request.jwt.claims', :'service_claims', true);
SELECT ok(brandbos.uid() IS NULL AND brandbos.jwt() IS NULL AND brandbos.role() IS NULL
          AND brandbos.is_admin() = false, 'trust off: the service-role claims are ignored');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
