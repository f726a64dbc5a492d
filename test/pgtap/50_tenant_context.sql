-- Tenant context (SPEC section 4): the internal settings cannot be written, set_context,
-- authenticate (HS256 JWT, interop with tokens built by pgcrypto), sign_token, the helpers,
-- the PostgREST request.jwt.claims fallback, savepoint semantics, parallel workers, the
-- role lock and the audit wiring.
--
-- pgTAP runs inside one transaction: "outside a transaction block" (25P01) and the leak
-- across COMMIT / ROLLBACK are tested in test/scenarios/30_pooler_context_leak.sh.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
SELECT plan(173);

-- ---------------------------------------------------------------------------------------
-- test helpers (public schema, dropped with the transaction's ROLLBACK)
-- ---------------------------------------------------------------------------------------

-- base64url without padding, as JWTs use it
CREATE FUNCTION t50_b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT translate(rtrim(replace(encode(b, 'base64'), E'\n', ''), '='), '+/', '-_') $$;
CREATE FUNCTION t50_b64url_decode(s text) RETURNS bytea LANGUAGE sql IMMUTABLE AS
$$ SELECT decode(translate(s, '-_', '+/') || repeat('=', (4 - length(s) % 4) % 4), 'base64') $$;

-- an HS256 token built independently of brandbos: header and payload are taken verbatim
CREATE FUNCTION t50_jwt(header text, payload text, secret text) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT s.h || '.' || s.p || '.' ||
          t50_b64url(hmac(convert_to(s.h || '.' || s.p, 'UTF8'), convert_to(secret, 'UTF8'), 'sha256'))
     FROM (SELECT t50_b64url(convert_to(header, 'UTF8')) AS h,
                  t50_b64url(convert_to(payload, 'UTF8')) AS p) s $$;
-- the same with raw (already encoded) segments, for malformed ones
CREATE FUNCTION t50_jwt_raw(h text, p text, secret text) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT h || '.' || p || '.' ||
          t50_b64url(hmac(convert_to(h || '.' || p, 'UTF8'), convert_to(secret, 'UTF8'), 'sha256')) $$;

CREATE FUNCTION t50_now() RETURNS bigint LANGUAGE sql VOLATILE AS
$$ SELECT extract(epoch FROM clock_timestamp())::bigint $$;

-- segment n (1-based) of a token, decoded as JSON
CREATE FUNCTION t50_part(tok text, n int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS
$$ SELECT convert_from(t50_b64url_decode(split_part(tok, '.', n)), 'UTF8')::jsonb $$;

-- SQLSTATE of a statement ('00000' when it succeeds)
CREATE FUNCTION t50_state(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN '00000';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;

-- "SQLSTATE: message / detail / hint" of authenticate(tok); the token is passed as a
-- parameter, so no statement text we build ourselves can contain it
CREATE FUNCTION t50_auth_error(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; m text; d text; h text;
BEGIN
	PERFORM brandbos.authenticate(tok);
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
	                        d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
	RETURN st || ': ' || m || ' / ' || coalesce(d, '') || ' / ' || coalesce(h, '');
END
$$;
-- true when the error text of authenticate(tok) names neither the token, any of its
-- segments, nor the secret
CREATE FUNCTION t50_error_is_clean(tok text, secret text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	e text := t50_auth_error(tok);
	seg text;
BEGIN
	IF e = 'no error' THEN
		RETURN false;
	END IF;
	IF position(tok IN e) > 0 OR position(secret IN e) > 0 THEN
		RETURN false;
	END IF;
	FOREACH seg IN ARRAY string_to_array(tok, '.') LOOP
		IF length(seg) >= 8 AND position(seg IN e) > 0 THEN
			RETURN false;
		END IF;
	END LOOP;
	RETURN true;
END
$$;

-- EXPLAIN ANALYZE of a query, as one text
CREATE FUNCTION t50_explain(q text) RETURNS text LANGUAGE plpgsql AS $$
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

CREATE TABLE t50_par AS SELECT 'tenant-par'::text AS x FROM generate_series(1, 20000);
ANALYZE t50_par;
GRANT SELECT ON t50_par TO PUBLIC;

-- a context switch that fails half-way inside a caught error
CREATE FUNCTION t50_switch_and_fail() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		PERFORM brandbos.set_context('intruder', 'tenant-evil');
		RAISE EXCEPTION 'boom';
	EXCEPTION WHEN OTHERS THEN
		NULL;
	END;
	RETURN coalesce(brandbos.current_tenant_id(), '<null>');
END
$$;

CREATE ROLE bb50_app NOLOGIN;          -- the application's backend role
CREATE ROLE bb50_other NOLOGIN;        -- a role bb50_app may SET ROLE to
CREATE ROLE bb50_nobody NOLOGIN;       -- no brandbos membership at all
GRANT brandbos_context_admin TO bb50_app;
GRANT bb50_other TO bb50_app;

-- Supabase's local development secret: every Supabase CLI project starts with it
\set secret 'super-secret-jwt-token-with-at-least-32-characters-long'
\set uuid_a '6f1c6a8e-6a43-4b7e-9d0b-1f6c3a2b9e01'
\set uuid_t '0b7d4e2c-93f1-4c55-8a86-7b0e5d2c1a9f'

-- ---------------------------------------------------------------------------------------
-- catalogue: labels and privileges
-- ---------------------------------------------------------------------------------------
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'brandbos'
              AND p.proname IN ('current_user_id', 'current_tenant_id', 'current_user_uuid',
                                'current_tenant_uuid', 'current_app_role', 'claims', 'claim',
                                'is_admin', 'is_org_owner', 'has_app_role', 'uid', 'jwt')
              AND p.provolatile = 's' AND p.proparallel = 's'), 12,
          'the 12 helpers are STABLE PARALLEL SAFE');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'brandbos' AND p.proname IN ('authenticate', 'set_context', 'set_request', 'sign_token')
              AND p.provolatile = 'v'), 4, 'authenticate, set_context, set_request, sign_token are VOLATILE');
SELECT ok(has_function_privilege('bb50_nobody', 'brandbos.current_tenant_id()', 'EXECUTE')
      AND has_function_privilege('bb50_nobody', 'brandbos.uid()', 'EXECUTE')
      AND has_function_privilege('bb50_nobody', 'brandbos.is_admin()', 'EXECUTE'),
          'PUBLIC may call the helpers');
SELECT ok(has_function_privilege('bb50_nobody', 'brandbos.authenticate(text)', 'EXECUTE')
      AND has_function_privilege('bb50_nobody', 'brandbos.set_request(inet, text)', 'EXECUTE'),
          'PUBLIC may call authenticate and set_request');
SELECT ok(NOT has_function_privilege('bb50_nobody', 'brandbos.set_context(text, text, text, jsonb)', 'EXECUTE')
      AND NOT has_function_privilege('bb50_nobody', 'brandbos.sign_token(jsonb, interval)', 'EXECUTE'),
          'PUBLIC may not call set_context or sign_token');
SELECT ok(has_function_privilege('bb50_app', 'brandbos.set_context(text, text, text, jsonb)', 'EXECUTE'),
          'brandbos_context_admin members may call set_context');

-- ---------------------------------------------------------------------------------------
-- no context: every helper is NULL (fail closed)
-- ---------------------------------------------------------------------------------------
SELECT is(brandbos.current_user_id(), NULL, 'no context: current_user_id() is NULL');
SELECT is(brandbos.current_tenant_id(), NULL, 'no context: current_tenant_id() is NULL');
SELECT is(brandbos.current_user_uuid(), NULL, 'no context: current_user_uuid() is NULL');
SELECT is(brandbos.current_tenant_uuid(), NULL, 'no context: current_tenant_uuid() is NULL');
SELECT is(brandbos.current_app_role(), NULL, 'no context: current_app_role() is NULL');
SELECT is(brandbos.claims(), NULL, 'no context: claims() is NULL');
SELECT is(brandbos.claim('sub'), NULL, 'no context: claim(''sub'') is NULL');
SELECT is(brandbos.is_admin(), false, 'no context: is_admin() is false');
SELECT ok(brandbos.is_org_owner('org-1') IS NOT TRUE, 'no context: is_org_owner() is not true');
SELECT ok(brandbos.has_app_role('authenticated') IS NOT TRUE, 'no context: has_app_role() is not true');
SELECT is(brandbos.uid(), NULL, 'no context: uid() is NULL');
SELECT is(brandbos.jwt(), NULL, 'no context: jwt() is NULL');

-- ---------------------------------------------------------------------------------------
-- the internal settings cannot be written directly
-- ---------------------------------------------------------------------------------------
SELECT throws_ok($$SET brandbos.request_tenant_id = 'tenant-x'$$, '42501', NULL,
                 'SET brandbos.request_tenant_id: 42501');
SELECT throws_ok($$SET LOCAL brandbos.request_tenant_id = 'tenant-x'$$, '42501', NULL,
                 'SET LOCAL brandbos.request_tenant_id: 42501');
SELECT throws_ok($$SELECT set_config('brandbos.request_tenant_id', 'tenant-x', true)$$, '42501', NULL,
                 'set_config(brandbos.request_tenant_id, ..., true): 42501');
SELECT throws_ok($$SELECT set_config('brandbos.request_tenant_id', 'tenant-x', false)$$, '42501', NULL,
                 'set_config(brandbos.request_tenant_id, ..., false): 42501');
SELECT CASE WHEN current_setting('shared_preload_libraries') ~ 'brandbos'
    THEN throws_ok($$RESET brandbos.request_tenant_id$$, '42501', NULL, 'preloaded: RESET brandbos.request_tenant_id: 42501')
    ELSE lives_ok($$RESET brandbos.request_tenant_id$$, 'without preload RESET only clears (fail closed); see 52_context_placeholder') END;
SELECT throws_ok($$SET brandbos.request_user_id = 'u'$$, '42501', NULL, 'SET brandbos.request_user_id: 42501');
SELECT throws_ok($$SET brandbos.request_app_role = 'admin'$$, '42501', NULL, 'SET brandbos.request_app_role: 42501');
SELECT throws_ok($$SET brandbos.request_claims = '{"role": "admin"}'$$, '42501', NULL, 'SET brandbos.request_claims: 42501');
SELECT throws_ok($$SET brandbos.request_ip = '10.0.0.1'$$, '42501', NULL, 'SET brandbos.request_ip: 42501');
SELECT throws_ok($$SET brandbos.request_user_agent = 'x'$$, '42501', NULL, 'SET brandbos.request_user_agent: 42501');
SELECT throws_ok($$SET brandbos.whatever = 'x'$$, '42602', NULL, 'SET of an unknown brandbos.* setting: 42602 (prefix reserved)');
SELECT ok(t50_state($$CREATE FUNCTION t50_forge() RETURNS text LANGUAGE sql
                      SET brandbos.request_tenant_id = 'tenant-x' AS 'SELECT brandbos.current_tenant_id()'$$) = '42501'
       OR t50_state($$SELECT t50_forge()$$) = '42501',
          'a function''s SET clause cannot write the tenant either (42501 at CREATE or at call)');
SELECT is(brandbos.current_tenant_id(), NULL, 'after all that, still no tenant');

-- ---------------------------------------------------------------------------------------
-- set_context and the helpers
-- ---------------------------------------------------------------------------------------
SAVEPOINT ctx;
SET LOCAL ROLE bb50_app;
SELECT lives_ok($$SELECT brandbos.set_context('user-1', 'tenant-a')$$, 'a context admin calls set_context');
SELECT is(brandbos.current_user_id(), 'user-1', 'current_user_id()');
SELECT is(brandbos.current_tenant_id(), 'tenant-a', 'current_tenant_id()');
SELECT is(brandbos.current_app_role(), 'authenticated', 'app_role defaults to authenticated');
SELECT is(brandbos.current_user_uuid(), NULL, 'a non-uuid user id as uuid: NULL, not an error');
SELECT is(brandbos.current_tenant_uuid(), NULL, 'a non-uuid tenant id as uuid: NULL, not an error');
SELECT is(brandbos.uid(), NULL, 'uid() of a non-uuid user: NULL');
SELECT is(brandbos.is_admin(), false, 'an authenticated context is not admin');
SELECT is(brandbos.has_app_role('authenticated'), true, 'has_app_role(authenticated)');
SELECT is(brandbos.has_app_role('admin'), false, 'not has_app_role(admin)');
SELECT is(jsonb_typeof(brandbos.claims()), 'object', 'claims() is an object (default {})');

-- savepoints: a nested context reverts with ROLLBACK TO, stays with RELEASE
SAVEPOINT inner1;
SELECT brandbos.set_context('user-2', 'tenant-b', 'member', '{"org_roles": {"org-1": "owner", "org-2": "member"}, "plan": "pro"}');
SELECT is(brandbos.current_tenant_id(), 'tenant-b', 'a nested set_context replaces the context');
SELECT is(brandbos.current_app_role(), 'member', 'with its app role');
SELECT ok(brandbos.claims() @> '{"plan": "pro"}', 'claims() holds the given claims');
SELECT is(brandbos.jwt(), brandbos.claims(), 'jwt() = claims()');
SELECT is(brandbos.claim('plan'), 'pro', 'claim(name) is claims->>name');
SELECT is(brandbos.claim('nope'), NULL, 'claim of an absent name: NULL');
SELECT is(brandbos.is_org_owner('org-1'), true, 'is_org_owner(org-1)');
SELECT is(brandbos.is_org_owner('org-2'), false, 'a member is not an owner');
SELECT ok(brandbos.is_org_owner('org-3') IS NOT TRUE, 'an unknown org: not owner');
ROLLBACK TO SAVEPOINT inner1;
SELECT is(brandbos.current_tenant_id(), 'tenant-a', 'ROLLBACK TO SAVEPOINT restores the previous tenant');
SELECT is(brandbos.current_user_id(), 'user-1', '... and user');
SELECT is(brandbos.current_app_role(), 'authenticated', '... and app role');
SELECT is(brandbos.claim('plan'), NULL, '... and claims');
SAVEPOINT inner2;
SELECT brandbos.set_context('user-3', 'tenant-c');
RELEASE SAVEPOINT inner2;
SELECT is(brandbos.current_tenant_id(), 'tenant-c', 'a context set in a released savepoint stays');
SELECT is(t50_switch_and_fail(), 'tenant-c', 'a context set in a failed (caught) subtransaction is undone');
SELECT is(brandbos.current_tenant_id(), 'tenant-c', '... also seen from the next statement');

-- uuid ids
SELECT brandbos.set_context(:'uuid_a', :'uuid_t', 'service_role');
SELECT is(brandbos.current_user_uuid(), :'uuid_a'::uuid, 'current_user_uuid() of a uuid user');
SELECT is(brandbos.uid(), :'uuid_a'::uuid, 'uid() = current_user_uuid()');
SELECT is(brandbos.current_tenant_uuid(), :'uuid_t'::uuid, 'current_tenant_uuid() of a uuid tenant');
SELECT is(brandbos.is_admin(), true, 'service_role is admin');
SELECT brandbos.set_context('root', 'tenant-a', 'admin');
SELECT is(brandbos.is_admin(), true, 'admin is admin');
SELECT is(brandbos.has_app_role('admin'), true, 'has_app_role(admin)');

-- parallel workers see the context (PARALLEL SAFE helpers run there): the leader does not
-- take part, so every row is counted by a worker
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
SELECT brandbos.set_context('par-user', 'tenant-par', 'authenticated', '{"k": "v"}');
SELECT ok(t50_explain($$SELECT count(*) FILTER (WHERE x = brandbos.current_tenant_id()) FROM t50_par$$)
          ~ 'Workers Launched: [1-9]', 'the parallel query really starts workers');
SELECT count(*) FILTER (WHERE x = brandbos.current_tenant_id()) AS par_tenant,
       count(*) FILTER (WHERE brandbos.current_user_id() = 'par-user') AS par_user,
       count(*) FILTER (WHERE brandbos.claim('k') = 'v') AS par_claim,
       count(*) FILTER (WHERE brandbos.is_admin()) AS par_admin FROM t50_par \gset
SELECT is(:par_tenant::bigint, 20000::bigint, 'parallel workers see the tenant');
SELECT is(:par_user::bigint, 20000::bigint, 'parallel workers see the user');
SELECT is(:par_claim::bigint, 20000::bigint, 'parallel workers see the claims');
SELECT is(:par_admin::bigint, 0::bigint, 'parallel workers see the app role');
ROLLBACK TO SAVEPOINT ctx;

SELECT is(brandbos.current_tenant_id(), NULL, 'rolling back to before the first set_context: no context');
SELECT is(current_user::text, 'postgres', 'and the role is back');

-- only brandbos_context_admin may set a context, even with EXECUTE granted
GRANT EXECUTE ON FUNCTION brandbos.set_context(text, text, text, jsonb) TO bb50_nobody;
SAVEPOINT nobody;
SET LOCAL ROLE bb50_nobody;
SELECT throws_ok($$SELECT brandbos.set_context('u', 'tenant-x')$$, '42501', NULL,
                 'set_context by a non-member with EXECUTE granted: 42501 (checked in C)');
SELECT is(brandbos.current_tenant_id(), NULL, 'and no context was set');
SELECT throws_ok($$SELECT brandbos.sign_token('{"sub": "u"}')$$, '42501', NULL, 'sign_token by a non-member: 42501');
SELECT throws_ok($$SET brandbos.jwt_secret = 'mine'$$, '42501', NULL, 'a non-superuser cannot SET brandbos.jwt_secret');
SELECT throws_ok($$SET brandbos.trust_request_jwt_claims = on$$, '42501', NULL,
                 'a non-superuser cannot SET brandbos.trust_request_jwt_claims');
ROLLBACK TO SAVEPOINT nobody;
REVOKE EXECUTE ON FUNCTION brandbos.set_context(text, text, text, jsonb) FROM bb50_nobody;

-- ---------------------------------------------------------------------------------------
-- sign_token and authenticate with the secret derived from the root key
-- ---------------------------------------------------------------------------------------
SAVEPOINT derived;
SELECT brandbos.sign_token('{"sub": "user-d", "tenant_id": "tenant-d"}') AS tok_derived \gset
SELECT is(brandbos.authenticate(:'tok_derived') ->> 'sub', 'user-d',
          'without brandbos.jwt_secret, a token from sign_token verifies (key derived from the root key)');
SELECT is(brandbos.current_tenant_id(), 'tenant-d', 'and authenticate set the tenant');
SET LOCAL brandbos.jwt_secret = :'secret';
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)', :'tok_derived'), '28000', NULL,
                 'with another brandbos.jwt_secret set, the same token fails: 28000');
ROLLBACK TO SAVEPOINT derived;

-- ---------------------------------------------------------------------------------------
-- sign_token with brandbos.jwt_secret, checked with pgcrypto
-- ---------------------------------------------------------------------------------------
SET LOCAL brandbos.jwt_secret = :'secret';
SAVEPOINT nobody2;
SET LOCAL ROLE bb50_nobody;
SELECT throws_ok($$SELECT current_setting('brandbos.jwt_secret')$$, '42501', NULL,
                 'a non-superuser cannot read brandbos.jwt_secret');
ROLLBACK TO SAVEPOINT nobody2;

SELECT brandbos.sign_token(jsonb_build_object('sub', 'user-s', 'tenant_id', 'tenant-s', 'role', 'authenticated', 'x', 1))
    AS tok_s \gset
SELECT is(array_length(string_to_array(:'tok_s', '.'), 1), 3, 'sign_token returns three segments');
SELECT is(t50_part(:'tok_s', 1) ->> 'alg', 'HS256', 'the header says HS256');
SELECT ok(t50_part(:'tok_s', 2) @> '{"sub": "user-s", "tenant_id": "tenant-s", "role": "authenticated", "x": 1}',
          'the payload holds the claims');
SELECT is((t50_part(:'tok_s', 2) ->> 'exp')::bigint - (t50_part(:'tok_s', 2) ->> 'iat')::bigint, 3600::bigint,
          'exp = iat + 1 hour by default');
SELECT ok(abs((t50_part(:'tok_s', 2) ->> 'iat')::bigint - t50_now()) < 300, 'iat is now');
SELECT is(split_part(:'tok_s', '.', 3),
          t50_b64url(hmac(convert_to(split_part(:'tok_s', '.', 1) || '.' || split_part(:'tok_s', '.', 2), 'UTF8'),
                          convert_to(:'secret', 'UTF8'), 'sha256')),
          'the signature is HMAC-SHA256 of header.payload under brandbos.jwt_secret (pgcrypto agrees)');
SELECT is((SELECT (p ->> 'exp')::bigint - (p ->> 'iat')::bigint
             FROM (SELECT t50_part(brandbos.sign_token('{"sub": "u"}', '10 minutes'), 2) AS p) s), 600::bigint,
          'ttl sets exp');
SELECT is(t50_part(brandbos.sign_token('{"sub": "u", "exp": 4102444800}'), 2) ->> 'exp', '4102444800',
          'an exp in the claims is kept');
SELECT is(brandbos.sign_token(NULL), NULL, 'sign_token(NULL) is NULL (STRICT)');
SELECT throws_ok($$SELECT brandbos.sign_token('[1, 2]')$$, NULL, NULL, 'sign_token of a non-object: an error');

SAVEPOINT signed;
SELECT is(brandbos.authenticate(:'tok_s'), t50_part(:'tok_s', 2), 'authenticate returns the token''s claims');
SELECT is(brandbos.current_user_id(), 'user-s', 'authenticate sets the user from sub');
SELECT is(brandbos.current_tenant_id(), 'tenant-s', 'and the tenant from tenant_id');
SELECT is(brandbos.claims(), t50_part(:'tok_s', 2), 'claims() are the token''s claims');
SELECT is(brandbos.claim('x'), '1', 'claim(x)');
ROLLBACK TO SAVEPOINT signed;
SELECT throws_ok($$SELECT brandbos.sign_token('{"sub": "u", "tenant_id": "t"}', '-1 minute')$$, '22023', NULL,
                 'sign_token with a ttl <= 0: 22023');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        brandbos.sign_token('{"sub": "u", "exp": 1000000000}')), '28000', NULL,
                 'a token with an exp in 2001: 28000');

-- ---------------------------------------------------------------------------------------
-- tokens made elsewhere (pgcrypto): Supabase shape and claim mapping
-- ---------------------------------------------------------------------------------------
\set hdr '{"alg":"HS256","typ":"JWT"}'
SELECT format('{"aud":"authenticated","exp":%s,"iat":%s,"sub":"%s","email":"a@example.com","phone":"","role":"authenticated","tenant_id":"%s","aal":"aal1","session_id":"b1f0e7a2-0c55-4a53-9d2f-5b1c0e8a7d33","is_anonymous":false}',
              t50_now() + 3600, t50_now() - 10, :'uuid_a', :'uuid_t') AS supa_payload \gset
SELECT t50_jwt(:'hdr', :'supa_payload', :'secret') AS supa_tok \gset

SAVEPOINT supa;
SET LOCAL ROLE bb50_nobody;
SELECT is(brandbos.authenticate(:'supa_tok'), :'supa_payload'::jsonb,
          'a Supabase-style token made by pgcrypto verifies, for any role');
SELECT is(brandbos.uid(), :'uuid_a'::uuid, 'uid() is its sub');
SELECT is(brandbos.current_user_id(), :'uuid_a', 'current_user_id() is its sub');
SELECT is(brandbos.current_tenant_uuid(), :'uuid_t'::uuid, 'current_tenant_uuid() is its tenant_id');
SELECT is(brandbos.current_app_role(), 'authenticated', 'current_app_role() is its role');
SELECT is(brandbos.claim('email'), 'a@example.com', 'claim(email)');
SELECT is(brandbos.is_admin(), false, 'authenticated is not admin');
-- the context of a token replaces the previous one
SELECT brandbos.authenticate(t50_jwt(:'hdr', format('{"sub":"user-2","tenant_id":"tenant-2","exp":%s}', t50_now() + 60), :'secret'));
SELECT is(brandbos.current_tenant_id(), 'tenant-2', 'a second authenticate replaces the context');
SELECT is(brandbos.current_app_role(), 'authenticated', 'no role claim: app role authenticated');
ROLLBACK TO SAVEPOINT supa;

SAVEPOINT mapping;
SELECT brandbos.authenticate(t50_jwt(:'hdr', format('{"sub":"svc","role":"service_role","exp":%s}', t50_now() + 60), :'secret'));
SELECT is(brandbos.is_admin(), true, 'role service_role: is_admin()');
SELECT is(brandbos.current_tenant_id(), NULL, 'no tenant claim: tenant NULL');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)', t50_jwt(:'hdr', '{"sub":"no-exp","tenant_id":"tenant-n"}', :'secret')),
                 '28000', NULL, 'a token without exp is refused (brandbos.jwt_require_exp on by default)');
SET LOCAL brandbos.jwt_require_exp = off;
SELECT brandbos.authenticate(t50_jwt(:'hdr', '{"sub":"no-exp","tenant_id":"tenant-n"}', :'secret'));
SELECT is(brandbos.current_tenant_id(), 'tenant-n', 'with brandbos.jwt_require_exp off, a token without exp verifies');
SELECT brandbos.authenticate(t50_jwt(:'hdr', '{"sub":"num","tenant_id":42}', :'secret'));
SELECT is(brandbos.current_tenant_id(), '42', 'a numeric tenant claim becomes text');
SELECT brandbos.authenticate(t50_jwt(:'hdr', format('{"sub":"nbf","tenant_id":"t-nbf","nbf":%s}', t50_now() - 60), :'secret'));
SELECT is(brandbos.current_tenant_id(), 't-nbf', 'an nbf in the past verifies');
SET LOCAL brandbos.tenant_claim = 'org_id';
SELECT brandbos.authenticate(t50_jwt(:'hdr', '{"sub":"u","tenant_id":"ignored","org_id":"org-7"}', :'secret'));
SELECT is(brandbos.current_tenant_id(), 'org-7', 'brandbos.tenant_claim names the tenant claim');
SET LOCAL brandbos.tenant_claim = 'tenant_id';
ROLLBACK TO SAVEPOINT mapping;
SELECT is(current_setting('brandbos.jwt_require_exp'), 'on', 'brandbos.jwt_require_exp is on again');

-- ---------------------------------------------------------------------------------------
-- refused tokens
-- ---------------------------------------------------------------------------------------
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        t50_jwt(:'hdr', format('{"sub":"u","tenant_id":"t","exp":%s}', t50_now() - 1), :'secret')),
                 '28000', NULL, 'expired a second ago: 28000 (no leeway)');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        t50_jwt(:'hdr', format('{"sub":"u","tenant_id":"t","nbf":%s}', t50_now() + 120), :'secret')),
                 '28000', NULL, 'nbf in the future: 28000');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        t50_jwt(:'hdr', '{"sub":"u","tenant_id":"t","exp":"tomorrow"}', :'secret')),
                 NULL, NULL, 'a non-numeric exp is refused');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        t50_jwt(:'hdr', '{"sub":"u","tenant_id":"t"}', 'another-secret-of-at-least-32-characters!!')),
                 '28000', NULL, 'signed with another secret: 28000');
-- a valid token whose payload was swapped for another tenant's
SELECT t50_jwt(:'hdr', '{"sub":"u","tenant_id":"tenant-a"}', :'secret') AS tok_a \gset
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        split_part(:'tok_a', '.', 1) || '.' || t50_b64url(convert_to('{"sub":"u","tenant_id":"tenant-b"}', 'UTF8'))
                        || '.' || split_part(:'tok_a', '.', 3)),
                 '28000', NULL, 'a payload changed after signing: 28000');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        split_part(:'tok_a', '.', 1) || '.' || split_part(:'tok_a', '.', 2) || '.'),
                 '28000', NULL, 'an empty signature: 28000');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        split_part(:'tok_a', '.', 1) || '.' || split_part(:'tok_a', '.', 2) || '.' || left(split_part(:'tok_a', '.', 3), 40)),
                 '28000', NULL, 'a truncated signature (30 of 32 bytes): 28000');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        t50_b64url(convert_to('{"alg":"none","typ":"JWT"}', 'UTF8')) || '.'
                        || t50_b64url(convert_to('{"sub":"u","tenant_id":"t"}', 'UTF8')) || '.'),
                 '28000', NULL, 'alg none without a signature: 28000');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        t50_jwt('{"alg":"none","typ":"JWT"}', '{"sub":"u","tenant_id":"t"}', :'secret')),
                 '28000', NULL, 'alg none with a valid HMAC: 28000');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        t50_jwt('{"alg":"RS256","typ":"JWT"}', '{"sub":"u","tenant_id":"t"}', :'secret')),
                 '28000', NULL, 'alg RS256 (key confusion) with an HMAC: 28000');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        t50_jwt('{"typ":"JWT"}', '{"sub":"u","tenant_id":"t"}', :'secret')),
                 '28000', NULL, 'no alg: 28000');

-- malformed tokens
SELECT throws_ok($$SELECT brandbos.authenticate('')$$, '22023', NULL, 'empty token: 22023');
SELECT throws_ok($$SELECT brandbos.authenticate('abc')$$, '22023', NULL, 'one segment: 22023');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)', split_part(:'tok_a', '.', 1) || '.' || split_part(:'tok_a', '.', 2)),
                 '22023', NULL, 'two segments: 22023');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)', :'tok_a' || '.abc'), '22023', NULL, 'four segments: 22023');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        t50_jwt_raw(t50_b64url(convert_to(:'hdr', 'UTF8')), 'eyJzdWIi*OiJ1In0', :'secret')),
                 '22023', NULL, 'a payload that is not base64url (signed anyway): 22023');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)', t50_jwt('not json', '{"sub":"u"}', :'secret')),
                 '22023', NULL, 'a header that is not JSON: 22023');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)', t50_jwt('["HS256"]', '{"sub":"u"}', :'secret')),
                 '22023', NULL, 'a header that is not an object: 22023');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)', t50_jwt(:'hdr', '{"sub":"u"', :'secret')),
                 '22023', NULL, 'a payload that is not JSON: 22023');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)', t50_jwt(:'hdr', '"sub"', :'secret')),
                 '22023', NULL, 'a payload that is not an object: 22023');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)', t50_jwt(:'hdr', '{"tenant_id":"t","exp":4102444800}', :'secret')),
                 '22023', NULL, 'no sub: 22023');
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)', t50_jwt(:'hdr', '{"sub":123,"tenant_id":"t","exp":4102444800}', :'secret')),
                 '22023', NULL, 'sub not a string: 22023');
SELECT ok(t50_state('SELECT brandbos.authenticate(NULL)') IN ('22004', '22023'), 'a NULL token: an error (22004 or 22023)');
SELECT is(brandbos.current_tenant_id(), NULL, 'no refused token left a context behind');

-- no token, segment or secret in any error text
SELECT ok(t50_error_is_clean(t50_jwt(:'hdr', '{"sub":"u","tenant_id":"t"}', 'another-secret-of-at-least-32-characters!!'), :'secret'),
          'bad signature: the error names neither token nor secret');
SELECT ok(t50_error_is_clean(t50_jwt(:'hdr', format('{"sub":"u","tenant_id":"t","exp":%s}', t50_now() - 100), :'secret'), :'secret'),
          'expired: the error names neither token nor secret');
SELECT ok(t50_error_is_clean(t50_jwt('{"alg":"none"}', '{"sub":"u","tenant_id":"t"}', :'secret'), :'secret'),
          'alg none: the error names neither token nor secret');
SELECT ok(t50_error_is_clean(t50_jwt(:'hdr', '{"sub":123,"tenant_id":"tenant-secretive","exp":4102444800}', :'secret'), :'secret'),
          'bad sub: the error names neither token nor secret');
SELECT ok(t50_error_is_clean(t50_jwt(:'hdr', '{"sub":"u","tenant_id":"t"', :'secret'), :'secret'),
          'bad JSON: the error names neither token nor secret');
SELECT ok(t50_auth_error(t50_jwt(:'hdr', format('{"sub":"u","exp":%s}', t50_now() - 100), :'secret')) LIKE '28000: %',
          'the error helper sees the expected SQLSTATE');

-- ---------------------------------------------------------------------------------------
-- PostgREST's request.jwt.claims, only when trusted
-- ---------------------------------------------------------------------------------------
SAVEPOINT postgrest;
SELECT set_config('request.jwt.claims',
                  format('{"sub":"%s","role":"authenticated","tenant_id":"t1","email":"p@example.com"}', :'uuid_a'), true);
SELECT is(brandbos.current_user_id(), NULL, 'trust off (default): request.jwt.claims is ignored (user)');
SELECT is(brandbos.current_tenant_id(), NULL, 'trust off: request.jwt.claims is ignored (tenant)');
SET LOCAL brandbos.trust_request_jwt_claims = on;
SELECT is(brandbos.current_user_id(), :'uuid_a', 'trust on: user from request.jwt.claims sub');
SELECT is(brandbos.uid(), :'uuid_a'::uuid, 'trust on: uid()');
SELECT is(brandbos.current_tenant_id(), 't1', 'trust on: tenant from request.jwt.claims');
SELECT is(brandbos.current_app_role(), 'authenticated', 'trust on: app role from request.jwt.claims');
SELECT is(brandbos.claim('email'), 'p@example.com', 'trust on: claim()');
SELECT brandbos.set_context('ctx-user', 'ctx-tenant');
SELECT is(brandbos.current_tenant_id(), 'ctx-tenant', 'a brandbos context wins over request.jwt.claims');
SET LOCAL brandbos.trust_request_jwt_claims = off;
ROLLBACK TO SAVEPOINT postgrest;
SELECT is(brandbos.current_tenant_id(), NULL, 'after the savepoint: nothing again');

-- ---------------------------------------------------------------------------------------
-- the role lock (preloaded or not; every path in 53_role_lock)
-- ---------------------------------------------------------------------------------------
-- without a context, role changes work
SAVEPOINT roles_free;
SET LOCAL ROLE bb50_app;
SELECT lives_ok($$SET ROLE bb50_other$$, 'no context: SET ROLE works');
SELECT is(current_user::text, 'bb50_other', 'no context: SET ROLE took effect');
SELECT lives_ok($$RESET ROLE$$, 'no context: RESET ROLE works');
SELECT lives_ok($$SELECT set_config('role', 'bb50_other', true)$$, 'no context: set_config(role) works');
SELECT lives_ok($$SET SESSION AUTHORIZATION bb50_other$$, 'no context: SET SESSION AUTHORIZATION works');
SELECT is(session_user::text, 'bb50_other', 'no context: SET SESSION AUTHORIZATION took effect');
SELECT lives_ok($$RESET SESSION AUTHORIZATION$$, 'no context: RESET SESSION AUTHORIZATION works');
ROLLBACK TO SAVEPOINT roles_free;

SAVEPOINT roles_locked;
SET LOCAL ROLE bb50_app;
SELECT brandbos.set_context('user-lock', 'tenant-lock');
SELECT throws_ok($$SET ROLE bb50_other$$, '42501', NULL, 'context set: SET ROLE is refused');
SELECT throws_ok($$SET LOCAL ROLE bb50_other$$, '42501', NULL, 'context set: SET LOCAL ROLE is refused');
SELECT throws_ok($$RESET ROLE$$, '42501', NULL, 'context set: RESET ROLE (back to the superuser) is refused');
SELECT throws_ok($$SET ROLE NONE$$, '42501', NULL, 'context set: SET ROLE NONE is refused');
SELECT throws_ok($$SET SESSION AUTHORIZATION postgres$$, '42501', NULL,
                 'context set: SET SESSION AUTHORIZATION is refused');
SELECT throws_ok($$RESET SESSION AUTHORIZATION$$, '42501', NULL,
                 'context set: RESET SESSION AUTHORIZATION is refused');
SELECT throws_ok($$SELECT set_config('role', 'bb50_other', true)$$, '42501', NULL,
                 'context set: set_config(role) is refused');
SELECT throws_ok($$SELECT set_config('role', 'none', false)$$, '42501', NULL,
                 'context set: set_config(role, none) is refused');
SELECT ok(t50_state('RESET brandbos.request_user_id') <> '00000' OR t50_state('RESET ROLE') = '42501',
            'context set: RESET of a context setting does not lift the role lock');
SELECT is(current_user::text, 'bb50_app', 'the role is unchanged');
SELECT is(session_user::text, 'postgres', 'the session user is unchanged');
ROLLBACK TO SAVEPOINT roles_locked;

-- ---------------------------------------------------------------------------------------
-- audit wiring
-- ---------------------------------------------------------------------------------------
SAVEPOINT audit;
SELECT brandbos.set_context('user-audit', 'tenant-audit');
SELECT brandbos.set_request('203.0.113.7', 'Mozilla/5.0 (brandbos test)');
SELECT brandbos.log_event('ctx_test', 'context') AS audit_id \gset
SELECT results_eq(format('SELECT tenant_id, user_id, host(ip_address), user_agent FROM brandbos.audit_log WHERE id = %s', :audit_id),
                  $$VALUES ('tenant-audit'::text, 'user-audit'::text, '203.0.113.7'::text, 'Mozilla/5.0 (brandbos test)'::text)$$,
                  'log_event rows carry the context''s tenant and user and set_request''s ip and user agent');
ROLLBACK TO SAVEPOINT audit;
SELECT brandbos.log_event('ctx_test', 'no context') AS audit_id2 \gset
SELECT results_eq(format('SELECT tenant_id, user_id, ip_address::text, user_agent FROM brandbos.audit_log WHERE id = %s', :audit_id2),
                  $$VALUES (NULL::text, NULL::text, NULL::text, NULL::text)$$,
                  'without a context (rolled back), the row has no tenant, user, ip or user agent');

SELECT * FROM finish();
ROLLBACK;
