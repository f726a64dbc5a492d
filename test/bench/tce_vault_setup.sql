-- Bench set-up of the Supabase Vault peer (supabase_vault 0.3.1 on pgsodium): each token is
-- one secret, written with vault.create_secret(token) and read back through
-- vault.decrypted_secrets; bench_vault_read names its columns like the other read relations
-- (the secrets' ids are uuids, so Vault has no point-read-by-id row).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS supabase_vault CASCADE;

CREATE VIEW bench_vault_read AS
	SELECT id, decrypted_secret AS refresh_token FROM vault.decrypted_secrets;

DO $check$
DECLARE
	tok constant text := left(repeat(md5('bench'), 7), 200);
	sid uuid;
	dec text;
BEGIN
	sid := vault.create_secret(tok);
	SELECT refresh_token INTO dec FROM bench_vault_read WHERE id = sid;
	IF dec IS DISTINCT FROM tok OR (SELECT secret FROM vault.secrets WHERE id = sid) = tok THEN
		RAISE EXCEPTION 'bench sanity: Vault did not seal/unseal the token';
	END IF;
END
$check$;
TRUNCATE vault.secrets;
