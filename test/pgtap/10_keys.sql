-- Keys: root key state, data key versions and statuses, privileges.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(39);

SELECT ok(brandbos.root_key_loaded(), 'the test cluster has a root key');
SELECT is((SELECT count(*)::int FROM brandbos.key_status()), 0,
          'no data key exists before first use (dump/restore cannot collide)');

-- first use creates version 1
CREATE TEMP TABLE v1 AS SELECT brandbos.encrypt_text('first secret') AS env;
SELECT results_eq('SELECT version, status FROM brandbos.key_status()',
                  $$VALUES (1, 'active'::text)$$, 'first use creates active version 1');
SELECT is(brandbos.envelope_key_version((SELECT env FROM v1)), 1, 'envelope records version 1');
SELECT is((SELECT length(wrapped_key) FROM brandbos.data_keys WHERE version = 1), 72,
          'data key is stored wrapped (nonce + key + tag)');
SELECT is((SELECT root_key_id FROM brandbos.data_keys WHERE version = 1) ~ '^[0-9a-f]{16}$', true,
          'the wrapping root key is identified by a fingerprint');

-- rotation
SELECT is(brandbos.rotate_key(), 2, 'rotate_key returns the new version');
SELECT results_eq('SELECT version, status FROM brandbos.key_status() ORDER BY version',
                  $$VALUES (1, 'retired'::text), (2, 'active'::text)$$, 'old key retired, new key active');
SELECT is(brandbos.envelope_key_version(brandbos.encrypt_text('x')), 2, 'new values use the active key');
SELECT is(brandbos.decrypt_text((SELECT env FROM v1)), 'first secret', 'retired key still decrypts');

-- retire
SELECT lives_ok('SELECT brandbos.retire_key(1)', 'retiring a retired key is harmless');
SELECT lives_ok('SELECT brandbos.retire_key(2)', 'retiring the active key rotates');
SELECT results_eq('SELECT version, status FROM brandbos.key_status() ORDER BY version',
                  $$VALUES (1, 'retired'::text), (2, 'retired'::text), (3, 'active'::text)$$,
                  'after retiring the active key, version 3 is active');
SELECT throws_ok('SELECT brandbos.retire_key(99)', '42704', NULL, 'unknown version: 42704');
SELECT throws_ok('SELECT brandbos.retire_key(NULL)', '22004', NULL, 'NULL version: 22004');

-- destroy
CREATE TABLE kt (id int PRIMARY KEY, secret text);
SELECT brandbos.protect_column('kt', 'secret');
INSERT INTO kt VALUES (1, 'sealed under three');
SELECT throws_ok('SELECT brandbos.destroy_key(3)', '55000', NULL, 'the active key cannot be destroyed');
SELECT brandbos.rotate_key();
SELECT is((SELECT rows_using FROM brandbos.key_status() WHERE version = 3), 1::bigint,
          'rows_using counts values in protected columns');
SELECT throws_ok('SELECT brandbos.destroy_key(3)', '55006', NULL,
                 'destroy refuses while protected values use the key');
SELECT lives_ok('SELECT brandbos.destroy_key(1)', 'a key no protected column uses can be destroyed');
SELECT is((SELECT status FROM brandbos.key_status() WHERE version = 1), 'destroyed', 'status is destroyed');
SELECT is((SELECT wrapped_key FROM brandbos.data_keys WHERE version = 1), NULL,
          'the wrapped key material is gone');
SELECT throws_ok($$SELECT brandbos.decrypt_text((SELECT env FROM v1))$$, '55000', NULL,
                 'values under a destroyed key cannot be decrypted');
SELECT lives_ok('SELECT brandbos.destroy_key(1)', 'destroying twice is harmless');
SELECT throws_ok('SELECT brandbos.retire_key(1)', '55000', NULL, 'a destroyed key cannot be retired');
SELECT lives_ok('SELECT brandbos.destroy_key(3, force => true)', 'force destroys a key in use (crypto-shredding)');
SELECT throws_ok('SELECT secret FROM kt_decrypted', '55000', NULL, 'shredded values no longer decrypt');
SELECT is((SELECT count(*)::int FROM kt), 1, 'the shredded row is still there');
SELECT throws_ok('SELECT brandbos.destroy_key(NULL)', '22004', NULL, 'NULL version: 22004');
SELECT throws_ok('SELECT brandbos.destroy_key(42)', '42704', NULL, 'unknown version: 42704');

-- root-key rotation needs the previous key file
SELECT throws_ok('SELECT brandbos.rewrap_keys()', '55000', NULL,
                 'rewrap_keys without brandbos.previous_root_key_file: 55000');

-- privileges: checked in C, not only by EXECUTE grants
CREATE ROLE bb_keys_nobody NOLOGIN;
GRANT EXECUTE ON FUNCTION brandbos.rotate_key(), brandbos.key_status(),
                          brandbos.destroy_key(int, boolean) TO bb_keys_nobody;
SET LOCAL ROLE bb_keys_nobody;
SELECT throws_ok('SELECT brandbos.rotate_key()', '42501', NULL, 'rotate_key needs brandbos_keymaster');
SELECT throws_ok('SELECT * FROM brandbos.key_status()', '42501', NULL, 'key_status needs brandbos_keymaster');
SELECT throws_ok('SELECT brandbos.destroy_key(2)', '42501', NULL, 'destroy_key needs brandbos_keymaster');
SELECT throws_ok('SELECT * FROM brandbos.data_keys', '42501', NULL, 'the wrapped keys are not readable');
SELECT ok(brandbos.root_key_loaded(), 'anyone may ask whether a root key is loaded');
SELECT throws_ok($$SET LOCAL brandbos.allow_drop_with_keys = on$$, '42501', NULL,
                 'an ordinary role cannot allow DROP EXTENSION to destroy the keys');
SELECT throws_ok($$SET LOCAL brandbos.root_key_command_timeout = '1h'$$, '55P02', NULL,
                 'an ordinary role cannot change root_key_command_timeout');
RESET ROLE;
SELECT is(current_setting('brandbos.root_key_command_timeout'), '10s', 'root_key_command_timeout defaults to 10 s');
SELECT throws_ok($$SET LOCAL brandbos.root_key_command_timeout = '1h'$$, '55P02', NULL,
                 'root_key_command_timeout is set in the configuration file only, even by a superuser');

SELECT * FROM finish();
ROLLBACK;
