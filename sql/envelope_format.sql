-- Exact-output checks of the envelope format and of the error texts users see.
-- (The extension is created by pg_regress --load-extension=brandbos.)
\set VERBOSITY default

-- sizes: 47 bytes of overhead; the printable form is "bbx1:" + base64url
SELECT length(brandbos.encrypt(''::bytea)) AS empty_bytea,
       length(brandbos.encrypt('\x00'::bytea)) AS one_byte,
       length(brandbos.encrypt_text('')) AS empty_text,
       length(brandbos.encrypt_text(repeat('x', 200))) AS token_200;

SELECT substring(brandbos.encrypt('abc'::bytea) FROM 1 FOR 3) AS magic_and_format,
       left(brandbos.encrypt_text('abc'), 5) AS text_prefix,
       brandbos.envelope_key_version(brandbos.encrypt_text('abc')) AS key_version;

SELECT brandbos.decrypt_text(brandbos.encrypt_text('round trip', 'where'), 'where') AS round_trip;

-- what a user sees for bad input
SELECT brandbos.decrypt_text('bbx1:AAAA');
SELECT brandbos.decrypt_text('just some text');
SELECT brandbos.decrypt_text(brandbos.encrypt_text('x', 'here'), 'there');
SELECT brandbos.decrypt('\xbb7802'::bytea || '\x0000000100000000000000000000000000000000000000000000000000000000000000000000000000000000000000'::bytea);

CREATE TABLE no_key_table (a text);
SELECT brandbos.protect_column('no_key_table', 'a');
CREATE TABLE regress_tokens (id int PRIMARY KEY, n int, token text);
SELECT brandbos.protect_column('regress_tokens', 'n');
SELECT brandbos.protect_column('regress_tokens', 'token');
INSERT INTO regress_tokens VALUES (1, 1, 'bbx1:definitely-not-valid');
INSERT INTO regress_tokens VALUES (1, 1, 'secret');
SELECT id, n, token FROM regress_tokens_decrypted;
SELECT id, n FROM regress_tokens_safe;
SELECT table_name, column_name, key_versions FROM brandbos.protected_columns;
SET client_min_messages = warning;
DROP TABLE regress_tokens, no_key_table CASCADE;
RESET client_min_messages;
SELECT count(*) AS registry_rows_left FROM brandbos.column_registry;
