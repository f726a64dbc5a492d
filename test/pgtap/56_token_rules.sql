-- Which tokens brandbos.authenticate() accepts (SPEC section 4, README "Tokens"): only
-- alg HS256 (other algorithms are 28000, not a framing error), no "crit" header, exp
-- required (brandbos.jwt_require_exp), brandbos.jwt_leeway, expected aud / iss, and
-- malformed claims refused with brandbos's own error, never PostgreSQL's jsonb or
-- numeric errors (which quote the claims).  Every token is presented by an ordinary
-- login role; settings are a superuser's, changed between the attempts.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
SELECT plan(60);

CREATE FUNCTION t56_b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT translate(rtrim(replace(encode(b, 'base64'), E'\n', ''), '='), '+/', '-_') $$;
-- a token over header and payload texts, HMAC with the given hash (sha256, sha384, sha512)
CREATE FUNCTION t56_jwt(header text, payload text, secret text, hash text DEFAULT 'sha256')
RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT s.h || '.' || s.p || '.' ||
          t56_b64url(hmac(convert_to(s.h || '.' || s.p, 'UTF8'), convert_to(secret, 'UTF8'), hash))
     FROM (SELECT t56_b64url(convert_to(header, 'UTF8')) AS h,
                  t56_b64url(convert_to(payload, 'UTF8')) AS p) s $$;
CREATE FUNCTION t56_now() RETURNS bigint LANGUAGE sql VOLATILE AS
$$ SELECT extract(epoch FROM clock_timestamp())::bigint $$;

-- 'ok' when authenticate(tok) verifies, else its SQLSTATE; the context it set is undone
-- (the inner block is rolled back), so the caller can change settings afterwards
CREATE FUNCTION t56_try(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
BEGIN
	BEGIN
		PERFORM brandbos.authenticate(tok);
		RAISE EXCEPTION 'verified' USING ERRCODE = 'BB000';
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
		RETURN CASE WHEN st = 'BB000' THEN 'ok' ELSE st END;
	END;
END
$$;
-- every text of the error authenticate(tok) raises: message, detail, hint, context
CREATE FUNCTION t56_error_text(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	m text; d text; h text; c text;
BEGIN
	PERFORM brandbos.authenticate(tok);
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
	                        h = PG_EXCEPTION_HINT, c = PG_EXCEPTION_CONTEXT;
	RETURN concat_ws(' / ', m, d, h, c);
END
$$;

CREATE ROLE bb56_user LOGIN;   -- an application's login role, no brandbos membership

\set secret 'super-secret-jwt-token-with-at-least-32-characters-long'
\set hdr '{"alg":"HS256","typ":"JWT"}'
SET LOCAL brandbos.jwt_secret = :'secret';
SELECT t56_now() + 3600 AS later, t56_now() AS now \gset

SET LOCAL ROLE bb56_user;
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s}', :later), :'secret')), 'ok',
          'an HS256 token with exp verifies for a login role');

-- ---- algorithms: only HS256; the others are refused for their algorithm -----------------
SELECT is(t56_try(t56_jwt('{"alg":"HS384","typ":"JWT"}', format('{"sub":"u","exp":%s}', :later), :'secret', 'sha384')),
          '28000', 'HS384 (valid HMAC-SHA384, 48-byte signature): 28000');
SELECT is(t56_try(t56_jwt('{"alg":"HS512","typ":"JWT"}', format('{"sub":"u","exp":%s}', :later), :'secret', 'sha512')),
          '28000', 'HS512 (valid HMAC-SHA512, 64-byte signature): 28000');
SELECT is(t56_try(t56_b64url(convert_to('{"alg":"RS256","typ":"JWT"}', 'UTF8')) || '.' ||
                  t56_b64url(convert_to(format('{"sub":"u","exp":%s}', :later), 'UTF8')) || '.' ||
                  t56_b64url(gen_random_bytes(256))),
          '28000', 'RS256 with a 256-byte signature: 28000');
SELECT is(t56_try(t56_b64url(convert_to('{"alg":"none"}', 'UTF8')) || '.' ||
                  t56_b64url(convert_to(format('{"sub":"u","exp":%s}', :later), 'UTF8')) || '.'),
          '28000', 'alg none, empty signature: 28000');
SELECT is(t56_try(t56_jwt('{"alg":"hs256"}', format('{"sub":"u","exp":%s}', :later), :'secret')),
          '28000', 'alg spelled hs256: 28000');
SELECT is(t56_try(t56_jwt('{"alg":["HS256"]}', format('{"sub":"u","exp":%s}', :later), :'secret')),
          '28000', 'alg not a string: 28000');
SELECT ok(t56_error_text(t56_jwt('{"alg":"HS512"}', format('{"sub":"u","exp":%s}', :later), :'secret', 'sha512'))
          LIKE '%algorithm is not HS256%', 'the refusal says the algorithm is not HS256');

-- ---- crit (RFC 7515 section 4.1.11) ---------------------------------------------------------
SELECT is(t56_try(t56_jwt('{"alg":"HS256","crit":["exp"]}', format('{"sub":"u","exp":%s}', :later), :'secret')),
          '28000', 'a header with crit: 28000');
SELECT is(t56_try(t56_jwt('{"alg":"HS256","crit":[]}', format('{"sub":"u","exp":%s}', :later), :'secret')),
          '28000', 'a header with an empty crit: 28000');

-- ---- exp required -------------------------------------------------------------------------
SELECT is(t56_try(t56_jwt(:'hdr', '{"sub":"u"}', :'secret')), '28000', 'no exp: 28000 (jwt_require_exp on by default)');
RESET ROLE;
SELECT is(current_setting('brandbos.jwt_require_exp'), 'on', 'brandbos.jwt_require_exp defaults to on');
SELECT is(current_setting('brandbos.jwt_leeway'), '0', 'brandbos.jwt_leeway defaults to 0');
SET LOCAL brandbos.jwt_require_exp = off;
SET LOCAL ROLE bb56_user;
SELECT is(t56_try(t56_jwt(:'hdr', '{"sub":"u"}', :'secret')), 'ok', 'jwt_require_exp off: no exp verifies');
SELECT throws_ok($$SET brandbos.jwt_require_exp = off$$, '42501', NULL, 'a login role cannot turn jwt_require_exp off');
SELECT throws_ok($$SET brandbos.jwt_leeway = 300$$, '42501', NULL, 'a login role cannot set jwt_leeway');
SELECT throws_ok($$SET brandbos.jwt_audience = ''$$, '42501', NULL, 'a login role cannot set jwt_audience');
SELECT throws_ok($$SET brandbos.jwt_issuer = ''$$, '42501', NULL, 'a login role cannot set jwt_issuer');
RESET ROLE;
SET LOCAL brandbos.jwt_require_exp = on;

-- ---- leeway ---------------------------------------------------------------------------------
SET LOCAL ROLE bb56_user;
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s}', :now - 10), :'secret')), '28000',
          'expired 10 s ago, leeway 0: 28000');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"nbf":%s}', :later, :now + 10), :'secret')), '28000',
          'nbf 10 s ahead, leeway 0: 28000');
RESET ROLE;
SET LOCAL brandbos.jwt_leeway = 30;
SET LOCAL ROLE bb56_user;
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s}', :now - 10), :'secret')), 'ok',
          'expired 10 s ago, leeway 30 s: verifies');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"nbf":%s}', :later, :now + 10), :'secret')), 'ok',
          'nbf 10 s ahead, leeway 30 s: verifies');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s}', :now - 120), :'secret')), '28000',
          'expired 2 min ago, leeway 30 s: 28000');
RESET ROLE;
SET LOCAL brandbos.jwt_leeway = 0;
SELECT throws_ok($$SET LOCAL brandbos.jwt_leeway = 301$$, '22023', NULL, 'jwt_leeway is at most 300 s');

-- ---- expected audience -----------------------------------------------------------------------
SET LOCAL brandbos.jwt_audience = 'authenticated';
SET LOCAL ROLE bb56_user;
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"aud":"authenticated"}', :later), :'secret')), 'ok',
          'jwt_audience: aud string equal verifies');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"aud":["other","authenticated"]}', :later), :'secret')), 'ok',
          'jwt_audience: aud array naming it verifies');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"aud":"anon"}', :later), :'secret')), '28000',
          'jwt_audience: another aud: 28000');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"aud":["other"]}', :later), :'secret')), '28000',
          'jwt_audience: an array without it: 28000');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s}', :later), :'secret')), '28000',
          'jwt_audience: no aud: 28000');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"aud":{"authenticated":true}}', :later), :'secret')), '28000',
          'jwt_audience: aud an object: 28000');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"aud":"Authenticated"}', :later), :'secret')), '28000',
          'jwt_audience: compared exactly (case matters)');
RESET ROLE;
SET LOCAL brandbos.jwt_audience = '';

-- ---- expected issuer ----------------------------------------------------------------------
SET LOCAL brandbos.jwt_issuer = 'https://project.supabase.co/auth/v1';
SET LOCAL ROLE bb56_user;
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"iss":"https://project.supabase.co/auth/v1"}', :later), :'secret')),
          'ok', 'jwt_issuer: iss equal verifies');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"iss":"https://evil.example/auth/v1"}', :later), :'secret')),
          '28000', 'jwt_issuer: another iss: 28000');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s}', :later), :'secret')), '28000', 'jwt_issuer: no iss: 28000');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"iss":["https://project.supabase.co/auth/v1"]}', :later), :'secret')),
          '28000', 'jwt_issuer: iss not a string: 28000');
RESET ROLE;
SET LOCAL brandbos.jwt_issuer = '';

-- ---- malformed claims: brandbos's own refusal, never a jsonb or numeric error ---------------
SET LOCAL ROLE bb56_user;
SELECT is(t56_try(t56_jwt(:'hdr', '{"sub":"u","exp":1e400}', :'secret')), '28000', 'exp 1e400: 28000 (not 22003)');
SELECT is(t56_try(t56_jwt(:'hdr', '{"sub":"u","exp":"tomorrow"}', :'secret')), '28000', 'exp a string: 28000');
SELECT is(t56_try(t56_jwt(:'hdr', '{"sub":"u","exp":null}', :'secret')), '28000', 'exp null: 28000');
SELECT is(t56_try(t56_jwt(:'hdr', '{"sub":"u","exp":-5}', :'secret')), '28000', 'exp negative: 28000');
SELECT is(t56_try(t56_jwt(:'hdr', '{"sub":"u","exp":1e20}', :'secret')), '28000', 'exp after the year 9999: 28000');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"nbf":1e400}', :later), :'secret')), '28000', 'nbf 1e400: 28000');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"x":1e200000}', :later), :'secret')), '22023',
          'a number beyond numeric''s range: 22023 (payload is no JSON object jsonb accepts; not 22003)');
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u\u0000x","exp":%s}', :later), :'secret')), '22023',
          'a \u0000 in a claim: 22023 (not 22P05)');
SELECT is(t56_try(t56_jwt('{"alg":"HS256","kid":"a\u0000"}', format('{"sub":"u","exp":%s}', :later), :'secret')), '22023',
          'a \u0000 in the header: 22023');
SELECT ok(t56_error_text(t56_jwt(:'hdr', format('{"sub":"tenant-secretive\u0000","exp":%s}', :later), :'secret'))
          !~ 'secretive|\\u0000|JSON data', 'the \u0000 refusal quotes no claim and no JSON');
SELECT ok(t56_error_text(t56_jwt(:'hdr', '{"sub":"tenant-secretive","exp":1e400}', :'secret'))
          !~ 'secretive|1e400|0000000', 'the exp refusal quotes no claim and no number');
RESET ROLE;
-- nesting deeper than the stack allows: the parser's 54001 is caught too
SET LOCAL max_stack_depth = '200kB';
SET LOCAL ROLE bb56_user;
SELECT is(t56_try(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"x":%s%s}', :later, repeat('[', 5000), repeat(']', 5000)), :'secret')),
          '22023', 'claims nested 5000 deep beyond max_stack_depth: 22023 (not 54001)');
SELECT ok(t56_error_text(t56_jwt(:'hdr', format('{"sub":"u","exp":%s,"x":%s%s}', :later, repeat('[', 5000), repeat(']', 5000)), :'secret'))
          !~ 'stack|\[\[', 'the nesting refusal quotes no JSON and no stack error');
RESET ROLE;
RESET max_stack_depth;
SELECT is(brandbos.current_user_id(), NULL, 'no refused token left a context behind');

-- ---- the secret: never stored where other roles read it, never displayed --------------------
\set dbsecret 'a-secret-a-dba-would-put-in-alter-database-0123'
SELECT throws_ok(format('ALTER DATABASE %I SET brandbos.jwt_secret = %L', current_database(), :'dbsecret'),
                 '55P02', NULL, 'ALTER DATABASE ... SET brandbos.jwt_secret: 55P02');
SELECT throws_ok(format('ALTER ROLE bb56_user SET brandbos.jwt_secret = %L', :'dbsecret'),
                 '55P02', NULL, 'ALTER ROLE ... SET brandbos.jwt_secret: 55P02');
SELECT throws_ok(format('ALTER ROLE bb56_user IN DATABASE %I SET brandbos.jwt_secret = %L', current_database(), :'dbsecret'),
                 '55P02', NULL, 'ALTER ROLE ... IN DATABASE ... SET brandbos.jwt_secret: 55P02');
SELECT throws_ok(format('ALTER ROLE ALL SET brandbos.jwt_secret = %L', :'dbsecret'),
                 '55P02', NULL, 'ALTER ROLE ALL SET brandbos.jwt_secret: 55P02');
SELECT throws_ok(format('CREATE FUNCTION t56_secret_fn() RETURNS int LANGUAGE sql SET brandbos.jwt_secret = %L AS ''SELECT 1''', :'dbsecret'),
                 '55P02', NULL, 'a function''s SET brandbos.jwt_secret clause: 55P02');
SELECT throws_ok(format('ALTER DATABASE %I SET brandbos.jwt_secret_file = ''/tmp/x''', current_database()),
                 '55P02', NULL, 'ALTER DATABASE ... SET brandbos.jwt_secret_file: 55P02');
SELECT is((SELECT count(*)::int FROM pg_db_role_setting WHERE array_to_string(setconfig, ' ') LIKE '%jwt_secret%'), 0,
          'pg_db_role_setting holds no brandbos.jwt_secret');
SELECT throws_ok($$SET LOCAL brandbos.jwt_secret = 'shorter-than-32-bytes'$$, '22023', NULL,
                 'a brandbos.jwt_secret shorter than 32 bytes: 22023');
SELECT is(current_setting('brandbos.jwt_secret'), '(set, hidden)', 'SHOW never displays the secret, even to a superuser');
CREATE ROLE bb56_monitor LOGIN IN ROLE pg_read_all_settings;
SET LOCAL ROLE bb56_monitor;
SELECT is(current_setting('brandbos.jwt_secret'), '(set, hidden)', 'nor to pg_read_all_settings');
SELECT is((SELECT count(*)::int FROM pg_settings WHERE setting LIKE '%' || :'secret' || '%'), 0, 'nor does pg_settings');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
