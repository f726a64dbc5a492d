-- Envelopes nobody can mint for a column, format 2's authenticated header,
-- and primary-key types whose binding would not survive dump/restore.
-- The attacker is an ordinary role (PUBLIC privileges plus INSERT/UPDATE on
-- the table it writes); a decryptor tries to read a column value through
-- decrypt() with the column's binding.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(29);

CREATE ROLE bb_env_app NOLOGIN;
CREATE ROLE bb_env_reader NOLOGIN;
GRANT brandbos_decryptor TO bb_env_reader;

CREATE TABLE env_secrets (id int PRIMARY KEY, token text, blob bytea);
SELECT brandbos.protect_column('env_secrets', 'token');
SELECT brandbos.protect_column('env_secrets', 'blob');
GRANT SELECT, INSERT, UPDATE ON env_secrets TO bb_env_app, bb_env_reader;
INSERT INTO env_secrets VALUES (1, 'stored-token', '\x5354');

-- the binding of a row of a column: "bbad1" || column id || length || int4 key
CREATE FUNCTION env_binding(col name, key int) RETURNS bytea LANGUAGE sql STABLE AS $$
    SELECT '\x6262616431'::bytea
           || decode(replace((SELECT column_id::text FROM brandbos.protected_columns
                               WHERE table_name = 'env_secrets'::regclass AND column_name = col), '-', ''), 'hex')
           || '\x00000004'::bytea || int4send(key)
$$;
-- the printable form of a raw envelope, as a client can make it
CREATE FUNCTION env_printable(env bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'bbx1:' || translate(encode(env, 'base64'), E'+/=\n', '-_')
$$;
GRANT EXECUTE ON FUNCTION env_binding(name, int), env_printable(bytea) TO bb_env_app, bb_env_reader;

-- ---- 1. minting: encrypt() with a column binding as associated data ----------------------
SET LOCAL ROLE bb_env_app;
SELECT is(brandbos.envelope_format(brandbos.encrypt('x')), 2, 'encrypt() writes format 2');
SELECT throws_ok($$INSERT INTO env_secrets (id, blob) VALUES (2, brandbos.encrypt('minted', env_binding('blob', 2)))$$,
                 'XX001', NULL, 'a bytea envelope minted with encrypt() and the column binding is rejected (INSERT)');
SELECT throws_ok($$INSERT INTO env_secrets (id, token)
                   VALUES (3, env_printable(brandbos.encrypt('minted', env_binding('token', 3))))$$,
                 'XX001', NULL, 'a text envelope minted the same way is rejected (INSERT)');
SELECT throws_ok($$UPDATE env_secrets SET blob = brandbos.encrypt('minted', env_binding('blob', 1)) WHERE id = 1$$,
                 'XX001', NULL, 'a minted envelope is rejected on UPDATE of a stored row');
SELECT throws_ok($$UPDATE env_secrets SET token = env_printable(brandbos.encrypt('minted', env_binding('token', 1))) WHERE id = 1$$,
                 'XX001', NULL, 'a minted text envelope is rejected on UPDATE of a stored row');
SELECT throws_ok($$INSERT INTO env_secrets (id, blob) VALUES (1, brandbos.encrypt('minted', env_binding('blob', 1)))
                   ON CONFLICT (id) DO UPDATE SET blob = EXCLUDED.blob$$,
                 'XX001', NULL, 'a minted envelope is rejected through INSERT ... ON CONFLICT DO UPDATE');
SELECT throws_ok($$SET brandbos.accept_format1_envelopes = on$$, '42501', NULL,
                 'an ordinary role cannot let format-1 envelopes in');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM env_secrets), 1, 'no minted row was stored');
SELECT results_eq($$SELECT token, blob FROM env_secrets_decrypted WHERE id = 1$$,
                  $$VALUES ('stored-token'::text, '\x5354'::bytea)$$, 'the stored row is untouched');

-- ---- 2. the other way: a column value does not open through decrypt() --------------------
SET LOCAL ROLE bb_env_reader;
SELECT is((SELECT blob FROM env_secrets_decrypted WHERE id = 1), '\x5354'::bytea,
          'the decryptor reads the column through its view');
SELECT throws_ok($$SELECT brandbos.decrypt(blob, env_binding('blob', 1)) FROM env_secrets WHERE id = 1$$,
                 'XX001', NULL, 'decrypt() with the column binding does not open a column value');
SELECT is(brandbos.decrypt(brandbos.encrypt('mine', env_binding('blob', 1)), env_binding('blob', 1)), '\x6d696e65'::bytea,
          'encrypt()/decrypt() with any associated data still round-trip');
RESET ROLE;

-- ---- 3. format 2 authenticates its header ------------------------------------------------
SELECT is((SELECT brandbos.envelope_format(blob) || ',' || brandbos.envelope_format(token) FROM env_secrets WHERE id = 1),
          '2,2', 'stored values are format 2 (bytea and text)');
SELECT brandbos.rotate_key();
-- flip every bit of the 31 header bytes of the stored bytea envelope: none opens
CREATE FUNCTION env_header_flips_that_open(env bytea, key int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    opened int := 0;
    colid uuid := (SELECT column_id FROM brandbos.protected_columns
                    WHERE table_name = 'env_secrets'::regclass AND column_name = 'blob');
BEGIN
    FOR i IN 0..30 LOOP
        FOR b IN 0..7 LOOP
            BEGIN
                PERFORM brandbos.decrypt_column(colid, set_byte(env, i, get_byte(env, i) # (1 << b)), key);
                opened := opened + 1;
            EXCEPTION WHEN data_corrupted OR invalid_binary_representation OR undefined_object THEN
                NULL;
            END;
        END LOOP;
    END LOOP;
    RETURN opened;
END $$;
GRANT EXECUTE ON FUNCTION env_header_flips_that_open(bytea, int) TO bb_env_reader;
SET LOCAL ROLE bb_env_reader;
SELECT is((SELECT env_header_flips_that_open(blob, id) FROM env_secrets WHERE id = 1), 0,
          'a flip of any of the 248 header bits of a stored envelope fails to decrypt');
SELECT throws_ok($$SELECT brandbos.decrypt_column(c.column_id, set_byte(e.blob, 6, 2), e.id)
                     FROM env_secrets e, brandbos.protected_columns c
                    WHERE e.id = 1 AND c.table_name = 'env_secrets'::regclass AND c.column_name = 'blob'$$,
                 'XX001', NULL, 'naming the other existing key version (2) fails with XX001');
SELECT throws_ok($$SELECT brandbos.decrypt_column(c.column_id, set_byte(e.blob, 2, 1), e.id)
                     FROM env_secrets e, brandbos.protected_columns c
                    WHERE e.id = 1 AND c.table_name = 'env_secrets'::regclass AND c.column_name = 'blob'$$,
                 'XX001', NULL, 'relabelling a format-2 envelope as format 1 fails with XX001');
RESET ROLE;
SET LOCAL ROLE bb_env_app;
SELECT throws_ok($$UPDATE env_secrets SET blob = set_byte(blob, 2, 1) WHERE id = 1$$, 'XX001', NULL,
                 'the trigger refuses a relabelled envelope');
RESET ROLE;

-- ---- 4. envelope_key_version and envelope_format on odd headers --------------------------
SELECT throws_ok($$SELECT brandbos.envelope_key_version(overlay(brandbos.encrypt('x') PLACING '\x80000000' FROM 4 FOR 4))$$,
                 '22P03', NULL, 'key version 2^31: malformed (22P03), not a negative number');
SELECT throws_ok($$SELECT brandbos.envelope_key_version(env_printable(overlay(brandbos.encrypt('x') PLACING '\xffffffff' FROM 4 FOR 4)))$$,
                 '22P03', NULL, 'key version 2^32-1 in the printable form: 22P03');
SELECT is(brandbos.envelope_key_version(overlay(brandbos.encrypt('x') PLACING '\x7fffffff' FROM 4 FOR 4)), 2147483647,
          'key version 2^31-1 reads as itself');
SELECT is(brandbos.envelope_format(overlay(brandbos.encrypt('x') PLACING '\x01' FROM 3 FOR 1)), 1,
          'envelope_format reads format 1');
SELECT throws_ok($$SELECT brandbos.envelope_format('bbx1:AAAA')$$, '22P03', NULL, 'envelope_format of garbage: 22P03');

-- ---- 5. primary-key types that cannot bind stably -----------------------------------------
CREATE TYPE env_pair AS (a int, b int);
CREATE TYPE env_mood AS ENUM ('calm', 'tense');
CREATE DOMAIN env_code AS text CHECK (VALUE <> '');
CREATE TABLE env_by_pair (id env_pair PRIMARY KEY, token text);
CREATE TABLE env_by_moods (id env_mood[] PRIMARY KEY, token text);
CREATE TABLE env_by_jsonb (id jsonb PRIMARY KEY, token text);
CREATE TABLE env_by_mood (id env_mood PRIMARY KEY, token text);
CREATE TABLE env_by_code (id env_code, n int[], token text, PRIMARY KEY (id, n));
GRANT CREATE ON SCHEMA public TO bb_env_app;	-- protect_column makes the views as the owner
ALTER TABLE env_by_pair OWNER TO bb_env_app;
ALTER TABLE env_by_moods OWNER TO bb_env_app;
ALTER TABLE env_by_jsonb OWNER TO bb_env_app;
ALTER TABLE env_by_mood OWNER TO bb_env_app;
ALTER TABLE env_by_code OWNER TO bb_env_app;
INSERT INTO env_by_pair VALUES (ROW(1, 2), 'pair-secret');
INSERT INTO env_by_moods VALUES (ARRAY['calm']::env_mood[], 'moods-secret');
INSERT INTO env_by_jsonb VALUES ('{"k": 1}', 'jsonb-secret');
SET LOCAL ROLE bb_env_app;
SELECT throws_ok($$SELECT brandbos.protect_column('env_by_pair', 'token')$$, '0A000', NULL,
                 'a composite primary key is refused (0A000)');
SELECT throws_ok($$SELECT brandbos.protect_column('env_by_moods', 'token')$$, '0A000', NULL,
                 'an array-of-enum primary key is refused (0A000)');
SELECT throws_ok($$SELECT brandbos.protect_column('env_by_jsonb', 'token')$$, '0A000', NULL,
                 'a jsonb primary key is refused (its send form follows client_encoding)');
SELECT is((SELECT token FROM env_by_pair), 'pair-secret', 'the refused table keeps its value (the call rolled back)');
SELECT lives_ok($$SELECT brandbos.protect_column('env_by_mood', 'token');
                  INSERT INTO env_by_mood VALUES ('tense', 'mood-secret')$$,
                'an enum primary key is accepted (bound by its label)');
SELECT lives_ok($$SELECT brandbos.protect_column('env_by_code', 'token');
                  INSERT INTO env_by_code VALUES ('c1', ARRAY[1, 2], 'code-secret')$$,
                'a domain over text with an int[] in a two-column key is accepted');
RESET ROLE;
SELECT results_eq($$SELECT (SELECT token FROM env_by_mood_decrypted), (SELECT token FROM env_by_code_decrypted)$$,
                  $$VALUES ('mood-secret'::text, 'code-secret'::text)$$, 'and both decrypt');

SELECT * FROM finish();
ROLLBACK;
