/* brandbos 0.1.0 -> 0.2.0 — ALTER EXTENSION brandbos UPDATE TO '0.2.0' */

\echo Use "ALTER EXTENSION brandbos UPDATE TO '0.2.0'" to load this file. \quit

-- 0.2.0 keeps the audit signing key across root-key rotations: rewrap_keys()
-- stores the seed that signed the chain, wrapped under the new root key.  The
-- table starts empty, so an upgraded database goes on signing with the seed
-- derived from its root key, exactly as 0.1.0 did.  It also adds the
-- statement trigger that invalidates every backend's unwrapped keys when
-- brandbos.data_keys changes outside the key functions (logical replication).
-- No value, key or block is rewritten.
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

-- Key changes that do not come through brandbos's key functions (a logical
-- replication apply worker writing the publisher's changes) still throw
-- every backend's unwrapped keys away: ENABLE ALWAYS fires it in replica
-- mode too.  A row trigger: the apply worker fires row triggers only.
CREATE FUNCTION brandbos.data_keys_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'brandbos_data_keys_changed'
	LANGUAGE C;
CREATE TRIGGER data_keys_changed AFTER INSERT OR UPDATE OR DELETE ON brandbos.data_keys
	FOR EACH ROW EXECUTE FUNCTION brandbos.data_keys_changed();
ALTER TABLE brandbos.data_keys ENABLE ALWAYS TRIGGER data_keys_changed;
REVOKE ALL ON FUNCTION brandbos.data_keys_changed() FROM PUBLIC;

-- Citus: what protect_column, rotate_key, retire_key, destroy_key and reencrypt on the
-- coordinator send to every other node with metadata, inside the distributed
-- transaction (citus_columns.c, citus_keys.c).  Superuser or extension owner
-- only (checked in C as well); nobody else may call them.
CREATE FUNCTION brandbos.citus_receive_column(tbl regclass, col name, column_id uuid, seal boolean) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_citus_receive_column'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.citus_receive_keys(versions integer[], statuses text[], wrapped bytea[],
											root_key_ids text[], force boolean) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_citus_receive_keys'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.citus_reencrypt_shards(tbl regclass, batch_size integer) RETURNS bigint
	AS 'MODULE_PATHNAME', 'brandbos_citus_reencrypt_shards'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Citus coordinator: send the data keys and the distributed tables' registry rows again to
-- every node with metadata (a node added since protect_column, or one that lost them);
-- superuser or extension owner only
CREATE FUNCTION brandbos.citus_resync() RETURNS integer
	AS 'MODULE_PATHNAME', 'brandbos_citus_resync'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION brandbos.citus_receive_column(regclass, name, uuid, boolean),
	brandbos.citus_receive_keys(integer[], text[], bytea[], text[], boolean),
	brandbos.citus_reencrypt_shards(regclass, integer), brandbos.citus_resync() FROM PUBLIC;
