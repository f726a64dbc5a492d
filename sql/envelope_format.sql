-- Exact-output checks of the envelope format and of the error texts users see.
-- (The extension is created by pg_regress --load-extension=brandbos.)
\set VERBOSITY default

-- sizes: 47 bytes of overhead; the printable form is "bbx1:" + base64url
SELECT length(brandbos.encrypt(''::bytea)) AS empty_bytea,
       length(brandbos.encrypt('\x00'::bytea)) AS one_byte,
       length(brandbos.encrypt_text('')) AS empty_text,
       length(brandbos.encrypt_text(repeat('x', 200))) AS token_200;

-- format 2: the text prefix stays "bbx1:", the format is the third binary byte
SELECT substring(brandbos.encrypt('abc'::bytea) FROM 1 FOR 3) AS magic_and_format,
       left(brandbos.encrypt_text('abc'), 9) AS text_prefix,
       brandbos.envelope_key_version(brandbos.encrypt_text('abc')) AS key_version,
       brandbos.envelope_format(brandbos.encrypt('abc'::bytea)) AS format,
       brandbos.envelope_format(brandbos.encrypt_text('abc')) AS text_format;

SELECT brandbos.decrypt_text(brandbos.encrypt_text('round trip', 'where'), 'where') AS round_trip;

-- what a user sees for bad input
SELECT brandbos.decrypt_text('bbx1:AAAA');
SELECT brandbos.decrypt_text('just some text');
SELECT brandbos.decrypt_text(brandbos.encrypt_text('x', 'here'), 'there');
SELECT brandbos.decrypt('\xbb7803'::bytea || '\x0000000100000000000000000000000000000000000000000000000000000000000000000000000000000000000000'::bytea);
SELECT brandbos.envelope_key_version('\xbb7802'::bytea || '\x8000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000'::bytea);

CREATE TABLE no_key_table (a text);
SELECT brandbos.protect_column('no_key_table', 'a');
CREATE TABLE regress_tokens (id int PRIMARY KEY, n int, token text);
SELECT brandbos.protect_column('regress_tokens', 'n');
SELECT brandbos.protect_column('regress_tokens', 'token');
INSERT INTO regress_tokens VALUES (1, 1, 'bbx1:definitely-not-valid');
INSERT INTO regress_tokens VALUES (1, 1, 'secret');
-- a format-1 envelope written by a client (anyone could mint one before format 2)
INSERT INTO regress_tokens VALUES (2, 2, 'bbx1:u3gBAAAAAUBBQkNERUZHSElKS0xNTk9QUVJTVFVWV7ZLZB60ghZlr5LozML9EbKjRrnn_HSlNf5O7bIv7N5IZQ');
SELECT id, n, token FROM regress_tokens_decrypted;
SELECT id, n FROM regress_tokens_safe;
SELECT table_name, column_name, key_versions FROM brandbos.protected_columns;
-- a primary key whose binding would not survive pg_dump/pg_restore
CREATE TYPE regress_pair AS (a int, b int);
CREATE TABLE regress_composite (id regress_pair PRIMARY KEY, token text);
INSERT INTO regress_composite VALUES (ROW(1, 2), 'secret');
SELECT brandbos.protect_column('regress_composite', 'token');
SET client_min_messages = warning;
DROP TABLE regress_tokens, no_key_table, regress_composite CASCADE;
DROP TYPE regress_pair;
RESET client_min_messages;
SELECT count(*) AS registry_rows_left FROM brandbos.column_registry;
