-- Bench set-up of the pgsodium peers (needs tce_setup.sql first; pgsodium preloaded with a
-- getkey script, see run.sh).  Both use one pgsodium server-derived key, created here.
--   bench_pgs_tce  pgsodium Transparent Column Encryption: SECURITY LABEL FOR pgsodium ...
--                  'ENCRYPT WITH KEY ID <uuid>' on refresh_token; pgsodium generates the
--                  trigger and the view decrypted_bench_pgs_tce (column decrypted_refresh_token);
--                  bench_pgs_tce_read renames that column to refresh_token for the read scripts
--   bench_pgs_det  a PL/pgSQL BEFORE trigger calling pgsodium.crypto_aead_det_encrypt(message,
--                  additional, key_uuid) with the same key, base64 text; read back through
--                  the view bench_pgs_det_read (crypto_aead_det_decrypt)
SET client_min_messages = warning;	-- pgsodium narrates every view and trigger it (re)makes
CREATE EXTENSION IF NOT EXISTS pgsodium;

CREATE TABLE bench_pgs_tce (LIKE bench_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench_pgs_det (LIKE bench_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE SEQUENCE bench_pgs_tce_id_seq OWNED BY bench_pgs_tce.id;
CREATE SEQUENCE bench_pgs_det_id_seq OWNED BY bench_pgs_det.id;
ALTER TABLE bench_pgs_tce ALTER COLUMN id SET DEFAULT nextval('bench_pgs_tce_id_seq');
ALTER TABLE bench_pgs_det ALTER COLUMN id SET DEFAULT nextval('bench_pgs_det_id_seq');

DO $setup$
DECLARE
	key uuid;
BEGIN
	SELECT id INTO key FROM pgsodium.create_key(name => 'bench_key');
	EXECUTE format('SECURITY LABEL FOR pgsodium ON COLUMN bench_pgs_tce.refresh_token IS %L',
				   'ENCRYPT WITH KEY ID ' || key);
	EXECUTE format($f$
		CREATE FUNCTION bench_pgs_det_seal() RETURNS trigger
		LANGUAGE plpgsql AS $body$
		BEGIN
			IF NEW.refresh_token IS NOT NULL THEN
				NEW.refresh_token := encode(pgsodium.crypto_aead_det_encrypt(
					convert_to(NEW.refresh_token, 'utf8'), convert_to('', 'utf8'), %1$L::uuid), 'base64');
			END IF;
			RETURN NEW;
		END
		$body$;
		CREATE VIEW bench_pgs_det_read AS
			SELECT id, user_id,
				   convert_from(pgsodium.crypto_aead_det_decrypt(decode(refresh_token, 'base64'),
					   convert_to('', 'utf8'), %1$L::uuid), 'utf8') AS refresh_token
			  FROM bench_pgs_det;
		$f$, key);
END
$setup$;
CREATE TRIGGER bench_pgs_det_seal BEFORE INSERT OR UPDATE ON bench_pgs_det
	FOR EACH ROW EXECUTE FUNCTION bench_pgs_det_seal();

CREATE VIEW bench_pgs_tce_read AS
	SELECT id, user_id, decrypted_refresh_token AS refresh_token FROM decrypted_bench_pgs_tce;

-- Sanity: both seal the stored value and read the token back.
DO $check$
DECLARE
	tok constant text := left(repeat(md5('bench'), 7), 200);
	raw text;
	dec text;
BEGIN
	INSERT INTO bench_pgs_tce (user_id, refresh_token) VALUES (0, tok) RETURNING refresh_token INTO raw;
	SELECT refresh_token INTO dec FROM bench_pgs_tce_read WHERE user_id = 0;
	IF raw = tok OR dec IS DISTINCT FROM tok THEN
		RAISE EXCEPTION 'bench sanity: pgsodium TCE did not seal/unseal the token';
	END IF;
	INSERT INTO bench_pgs_det (user_id, refresh_token) VALUES (0, tok) RETURNING refresh_token INTO raw;
	SELECT refresh_token INTO dec FROM bench_pgs_det_read WHERE user_id = 0;
	IF raw = tok OR dec IS DISTINCT FROM tok THEN
		RAISE EXCEPTION 'bench sanity: the pgsodium deterministic trigger did not seal/unseal the token';
	END IF;
END
$check$;
TRUNCATE bench_pgs_tce, bench_pgs_det RESTART IDENTITY;
