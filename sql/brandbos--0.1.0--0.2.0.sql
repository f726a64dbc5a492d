/* brandbos 0.1.0 -> 0.2.0 — ALTER EXTENSION brandbos UPDATE TO '0.2.0' */

\echo Use "ALTER EXTENSION brandbos UPDATE TO '0.2.0'" to load this file. \quit

-- 0.2.0 keeps the audit signing key across root-key rotations: rewrap_keys()
-- stores the seed that signed the chain, wrapped under the new root key.  The
-- table starts empty, so an upgraded database goes on signing with the seed
-- derived from its root key, exactly as 0.1.0 did; nothing else changes and
-- no value, key or block is rewritten.
CREATE TABLE brandbos.audit_signing_key (
	only_row		boolean PRIMARY KEY DEFAULT true CHECK (only_row),
	root_key_id		text NOT NULL,
	wrapped_seed	bytea NOT NULL,
	wrapped_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE brandbos.audit_signing_key IS
	'the audit signing seed wrapped under the root key (after the first root-key rotation)';
SELECT pg_catalog.pg_extension_config_dump('brandbos.audit_signing_key', '');
REVOKE ALL ON brandbos.audit_signing_key FROM PUBLIC;
