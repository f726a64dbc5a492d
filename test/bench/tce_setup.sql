-- Bench set-up for SPEC section 7, transparent column encryption rows.
--
-- Four tables of one shape, (id bigserial primary key, user_id int, refresh_token text):
--   bench_plain  no protection (the baseline)
--   bench_tce    brandbos.protect_column(..., 'refresh_token')
--   bench_pgp    peer: PL/pgSQL BEFORE trigger, pgcrypto pgp_sym_encrypt, read back
--                through the view bench_pgp_read (pgp_sym_decrypt)
--   bench_cbc    peer: PL/pgSQL BEFORE trigger, pgcrypto encrypt_iv AES-CBC, base64 text,
--                read back through the view bench_cbc_decrypted
-- The pgsodium and Vault peers are set up by tce_pgsodium_setup.sql / tce_vault_setup.sql
-- when those extensions are available.
-- Autovacuum is off on all four so that it never runs in the middle of a timed run;
-- run.sh vacuums explicitly where it matters.  Runs in a fresh database.

CREATE EXTENSION IF NOT EXISTS brandbos;
CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- superusers pass the decryptor check anyway; this keeps the bench honest if that changes
GRANT brandbos_decryptor TO CURRENT_USER;

CREATE TABLE bench_plain (
	id				bigserial PRIMARY KEY,
	user_id			integer,
	refresh_token	text
) WITH (autovacuum_enabled = false);

CREATE TABLE bench_tce  (LIKE bench_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench_pgp  (LIKE bench_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench_cbc  (LIKE bench_plain INCLUDING ALL) WITH (autovacuum_enabled = false);

-- LIKE ... INCLUDING ALL copies the default nextval('bench_plain_id_seq'); give each
-- table its own sequence so that the tables stay independent.
CREATE SEQUENCE bench_tce_id_seq OWNED BY bench_tce.id;
CREATE SEQUENCE bench_pgp_id_seq OWNED BY bench_pgp.id;
CREATE SEQUENCE bench_cbc_id_seq OWNED BY bench_cbc.id;
ALTER TABLE bench_tce ALTER COLUMN id SET DEFAULT nextval('bench_tce_id_seq');
ALTER TABLE bench_pgp ALTER COLUMN id SET DEFAULT nextval('bench_pgp_id_seq');
ALTER TABLE bench_cbc ALTER COLUMN id SET DEFAULT nextval('bench_cbc_id_seq');

-- brandbos: C trigger plus bench_tce_decrypted / bench_tce_safe views
DO $$ BEGIN PERFORM brandbos.protect_column('bench_tce', 'refresh_token'); END $$;

-- Peer: pgcrypto PGP symmetric encryption from a PL/pgSQL trigger
CREATE FUNCTION bench_pgp_seal() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.refresh_token IS NOT NULL THEN
		NEW.refresh_token := pgp_sym_encrypt(NEW.refresh_token, 'some pass')::text;
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER bench_pgp_seal BEFORE INSERT OR UPDATE ON bench_pgp
	FOR EACH ROW EXECUTE FUNCTION bench_pgp_seal();

CREATE VIEW bench_pgp_read AS
	SELECT id, user_id, pgp_sym_decrypt(refresh_token::bytea, 'some pass') AS refresh_token
	  FROM bench_pgp;

-- Peer: pgcrypto AES-256-CBC with a fixed key and IV (unauthenticated), the shape
-- applications write by hand; stored as base64 so the column stays text.
CREATE FUNCTION bench_cbc_seal() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.refresh_token IS NOT NULL THEN
		NEW.refresh_token := encode(encrypt_iv(convert_to(NEW.refresh_token, 'UTF8'),
			'\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'::bytea,
			'\x0f0e0d0c0b0a09080706050403020100'::bytea,
			'aes-cbc'), 'base64');
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER bench_cbc_seal BEFORE INSERT OR UPDATE ON bench_cbc
	FOR EACH ROW EXECUTE FUNCTION bench_cbc_seal();

CREATE VIEW bench_cbc_decrypted AS
	SELECT id, user_id,
		   convert_from(decrypt_iv(decode(refresh_token, 'base64'),
			   '\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'::bytea,
			   '\x0f0e0d0c0b0a09080706050403020100'::bytea,
			   'aes-cbc'), 'UTF8') AS refresh_token
	  FROM bench_cbc;

-- Sanity: each sealing path really changes the stored value and brandbos reads it back.
DO $check$
DECLARE
	tok constant text := left(repeat(md5('bench'), 7), 200);
	raw text;
	dec text;
BEGIN
	INSERT INTO bench_tce (user_id, refresh_token) VALUES (0, tok) RETURNING refresh_token INTO raw;
	SELECT refresh_token INTO dec FROM bench_tce_decrypted WHERE user_id = 0;
	IF raw = tok OR dec IS DISTINCT FROM tok THEN
		RAISE EXCEPTION 'bench sanity: brandbos did not seal/unseal the token';
	END IF;
	INSERT INTO bench_cbc (user_id, refresh_token) VALUES (0, tok);
	SELECT refresh_token INTO dec FROM bench_cbc_decrypted WHERE user_id = 0;
	IF dec IS DISTINCT FROM tok THEN
		RAISE EXCEPTION 'bench sanity: the AES-CBC baseline does not round-trip';
	END IF;
	INSERT INTO bench_pgp (user_id, refresh_token) VALUES (0, tok) RETURNING refresh_token INTO raw;
	SELECT refresh_token INTO dec FROM bench_pgp_read WHERE user_id = 0;
	IF raw = tok OR dec IS DISTINCT FROM tok THEN
		RAISE EXCEPTION 'bench sanity: the pgp baseline does not round-trip';
	END IF;
END
$check$;
TRUNCATE bench_plain, bench_tce, bench_pgp, bench_cbc RESTART IDENTITY;
