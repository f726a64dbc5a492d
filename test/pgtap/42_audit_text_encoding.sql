-- Every text brandbos stores is valid in the database encoding (issue 11 point 5): one
-- invalid byte sequence in brandbos.audit_entries makes pg_restore refuse the whole table.
-- Run as an ordinary login role: set_request cuts a long user agent at a character
-- boundary, a signed token whose payload is not valid UTF-8 is refused before any of its
-- claims reaches the context or the log, and decrypt_text never returns bytes that are not
-- text.  test/scenarios/27_audit_restore_forms.sh restores a dump of such a log.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
SELECT plan(12);

CREATE ROLE bb42_app LOGIN;
GRANT brandbos_context_admin, brandbos_decryptor TO bb42_app;

CREATE FUNCTION t42_b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT translate(rtrim(replace(encode(b, 'base64'), E'\n', ''), '='), '+/', '-_') $$;
-- an HS256 token over a raw payload (bytes, possibly not UTF-8)
CREATE FUNCTION t42_jwt(payload bytea, secret text) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT s.h || '.' || s.p || '.' ||
          t42_b64url(hmac(convert_to(s.h || '.' || s.p, 'UTF8'), convert_to(secret, 'UTF8'), 'sha256'))
     FROM (SELECT t42_b64url(convert_to('{"alg":"HS256","typ":"JWT"}', 'UTF8')) AS h,
                  t42_b64url(payload) AS p) s $$;
GRANT EXECUTE ON FUNCTION t42_jwt(bytea, text), t42_b64url(bytea) TO bb42_app;

SELECT is(getdatabaseencoding(), 'UTF8', 'the test database is UTF8');

-- ---- set_request: 1100 bytes of 3-byte characters ---------------------------------------
SET LOCAL ROLE bb42_app;
SELECT brandbos.set_request('192.0.2.7', repeat('€', 366) || 'ab');
SELECT is(octet_length(current_setting('brandbos.request_user_agent')), 1023,
          'set_request keeps 1023 of 1100 bytes: the 1024-byte cut falls inside a character and moves back to its start');
SELECT brandbos.log_event('login', 'user', 'u-42') AS ua_event \gset
RESET ROLE;
SELECT is((SELECT octet_length(user_agent) FROM brandbos.audit_entries WHERE id = :ua_event), 1023,
          'the stored user agent is 1023 bytes (341 whole characters)');
SELECT is((SELECT user_agent FROM brandbos.audit_entries WHERE id = :ua_event), repeat('€', 341),
          'the stored user agent is the first 341 characters');
SELECT lives_ok($$SELECT convert_from(convert_to(user_agent, 'UTF8'), 'UTF8') FROM brandbos.audit_entries
                   WHERE action = 'login' AND resource_id = 'u-42'$$,
                'the stored user agent is valid UTF-8 (convert_from validates it)');
SELECT is((SELECT convert_from(convert_to(user_agent, 'UTF8'), 'UTF8') = user_agent
             FROM brandbos.audit_entries WHERE id = :ua_event), true,
          'and round-trips through convert_to / convert_from unchanged');
SET LOCAL ROLE bb42_app;
SELECT brandbos.set_request(NULL, repeat('a', 1023) || 'é');
SELECT is(octet_length(current_setting('brandbos.request_user_agent')), 1023,
          'a 2-byte character straddling byte 1024 is dropped whole');
SELECT brandbos.set_request(NULL, repeat('a', 1022) || 'é');
SELECT is(current_setting('brandbos.request_user_agent'), repeat('a', 1022) || 'é',
          'a user agent of exactly 1024 bytes is kept whole');
RESET ROLE;

-- ---- a signed token whose payload is not valid UTF-8 -------------------------------------
SET LOCAL brandbos.jwt_secret = 't42-secret-with-enough-length-000';
SET LOCAL ROLE bb42_app;
SELECT throws_ok(format('SELECT brandbos.authenticate(%L)',
                        t42_jwt(convert_to('{"sub": "u', 'UTF8') || '\xff'::bytea || convert_to('", "tenant_id": "t"}', 'UTF8'),
                                't42-secret-with-enough-length-000')),
                 '22023', 'token is not a valid JWT',
                 'a signed token with invalid UTF-8 in its payload is refused (22023)');
SELECT is(brandbos.current_user_id(), NULL, 'and no user id reached the context');
SELECT lives_ok(format('SELECT brandbos.authenticate(%L)',
                       t42_jwt(convert_to('{"sub": "ü-user", "tenant_id": "t", "exp": 4102444800}', 'UTF8'), 't42-secret-with-enough-length-000')),
                'a token with valid multibyte claims is accepted');

-- ---- decrypt_text of a bytea envelope relabelled as text ---------------------------------
SELECT throws_ok(format('SELECT brandbos.decrypt_text(%L)', 'bbx1:' || t42_b64url(brandbos.encrypt('\xc3ff28'::bytea))),
                 '22021', 'decrypted value is not valid text in the database encoding',
                 'decrypt_text refuses plaintext that is not valid text (22021)');

SELECT * FROM finish();
ROLLBACK;
