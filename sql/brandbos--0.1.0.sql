/* brandbos 0.1.0 — full install script */

\echo Use "CREATE EXTENSION brandbos" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Group roles.  They are cluster-wide, so they are created only when missing
-- and are left in place by DROP EXTENSION.
-- ---------------------------------------------------------------------------
DO $roles$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['brandbos_decryptor', 'brandbos_keymaster',
							 'brandbos_context_admin', 'brandbos_auditor']
	LOOP
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END
$roles$;

-- Policies on user tables call the helpers, so every role may look into the
-- schema; each object below is then revoked from PUBLIC and granted one by one.
GRANT USAGE ON SCHEMA brandbos TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Keys (SPEC section 1)
-- ---------------------------------------------------------------------------

-- Data keys, wrapped under the root key.  No row is created at install time:
-- version 1 appears on first use, so pg_dump/pg_restore of these rows never
-- collides with rows the install script made.
CREATE TABLE brandbos.data_keys (
	version			integer PRIMARY KEY CHECK (version > 0),
	status			text NOT NULL CHECK (status IN ('active', 'retired', 'destroyed')),
	wrapped_key		bytea CHECK ((status = 'destroyed') = (wrapped_key IS NULL)),
	root_key_id		text NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	retired_at		timestamptz,
	destroyed_at	timestamptz
);
CREATE UNIQUE INDEX data_keys_one_active ON brandbos.data_keys ((true))
	WHERE status = 'active';
COMMENT ON TABLE brandbos.data_keys IS
	'brandbos data keys, wrapped under the root key; change them only through the key functions';
SELECT pg_catalog.pg_extension_config_dump('brandbos.data_keys', '');

-- Protected columns.  column_id is the stable id bound into every envelope's
-- associated data: it is not an OID, so it survives renames and dump/restore.
CREATE TABLE brandbos.column_registry (
	column_id		uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	table_oid		regclass NOT NULL,
	column_name		name NOT NULL,
	protected_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	UNIQUE (table_oid, column_name)
);
COMMENT ON TABLE brandbos.column_registry IS
	'columns protected by brandbos.protect_column, with their stable ids';
SELECT pg_catalog.pg_extension_config_dump('brandbos.column_registry', '');

REVOKE ALL ON brandbos.data_keys, brandbos.column_registry FROM PUBLIC;

CREATE FUNCTION brandbos.root_key_loaded() RETURNS boolean
	AS 'MODULE_PATHNAME', 'brandbos_root_key_loaded'
	LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE FUNCTION brandbos.key_status()
	RETURNS TABLE (version integer, status text, created_at timestamptz, rows_using bigint)
	AS 'MODULE_PATHNAME', 'brandbos_key_status'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.rotate_key() RETURNS integer
	AS 'MODULE_PATHNAME', 'brandbos_rotate_key'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.retire_key(version integer) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_retire_key'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.destroy_key(version integer, force boolean DEFAULT false) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_destroy_key'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.rewrap_keys() RETURNS integer
	AS 'MODULE_PATHNAME', 'brandbos_rewrap_keys'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- ---------------------------------------------------------------------------
-- Envelopes (SPEC section 2)
-- ---------------------------------------------------------------------------
CREATE FUNCTION brandbos.encrypt(data bytea, associated bytea DEFAULT '') RETURNS bytea
	AS 'MODULE_PATHNAME', 'brandbos_encrypt'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE COST 100;

CREATE FUNCTION brandbos.decrypt(envelope bytea, associated bytea DEFAULT '') RETURNS bytea
	AS 'MODULE_PATHNAME', 'brandbos_decrypt'
	LANGUAGE C STABLE STRICT PARALLEL SAFE COST 100;

CREATE FUNCTION brandbos.encrypt_text(data text, associated text DEFAULT '') RETURNS text
	AS 'MODULE_PATHNAME', 'brandbos_encrypt_text'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE COST 100;

CREATE FUNCTION brandbos.decrypt_text(envelope text, associated text DEFAULT '') RETURNS text
	AS 'MODULE_PATHNAME', 'brandbos_decrypt_text'
	LANGUAGE C STABLE STRICT PARALLEL SAFE COST 100;

CREATE FUNCTION brandbos.envelope_key_version(envelope bytea) RETURNS integer
	AS 'MODULE_PATHNAME', 'brandbos_envelope_key_version_bytea'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION brandbos.envelope_key_version(envelope text) RETURNS integer
	AS 'MODULE_PATHNAME', 'brandbos_envelope_key_version_text'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Opening an envelope costs about a microsecond and a half, some hundred
-- times a simple operator: the COST lets the planner spread large reads
-- over parallel workers (the functions are PARALLEL SAFE).
--
-- Used by the <table>_decrypted views: the envelope of a protected column and
-- the row's primary-key values, in key order.  Requires brandbos_decryptor.
CREATE FUNCTION brandbos.decrypt_column(column_id uuid, envelope text, VARIADIC primary_key "any")
	RETURNS text
	AS 'MODULE_PATHNAME', 'brandbos_decrypt_column'
	LANGUAGE C STABLE PARALLEL SAFE COST 100;

CREATE FUNCTION brandbos.decrypt_column(column_id uuid, envelope bytea, VARIADIC primary_key "any")
	RETURNS bytea
	AS 'MODULE_PATHNAME', 'brandbos_decrypt_column'
	LANGUAGE C STABLE PARALLEL SAFE COST 100;

-- ---------------------------------------------------------------------------
-- Transparent column encryption
-- ---------------------------------------------------------------------------
CREATE FUNCTION brandbos.protect_trigger() RETURNS trigger
	AS 'MODULE_PATHNAME', 'brandbos_protect_trigger'
	LANGUAGE C;

CREATE FUNCTION brandbos.protect_column(tbl regclass, col name) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_protect_column'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.unprotect_column(tbl regclass, col name) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_unprotect_column'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.reencrypt(tbl regclass, batch_size integer DEFAULT 1000) RETURNS bigint
	AS 'MODULE_PATHNAME', 'brandbos_reencrypt'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.column_key_versions(tbl regclass, col name) RETURNS integer[]
	AS 'MODULE_PATHNAME', 'brandbos_column_key_versions'
	LANGUAGE C STABLE PARALLEL UNSAFE;

-- Keep the registry in step with the tables: a renamed column keeps its id,
-- a dropped table or column leaves the registry.
CREATE FUNCTION brandbos.registry_ddl() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'brandbos_registry_ddl'
	LANGUAGE C;
CREATE EVENT TRIGGER brandbos_registry_rename ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE')
	EXECUTE FUNCTION brandbos.registry_ddl();

CREATE FUNCTION brandbos.registry_drop() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $fn$
BEGIN
	DELETE FROM brandbos.column_registry r
	 USING pg_catalog.pg_event_trigger_dropped_objects() d
	 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
	   AND r.table_oid::pg_catalog.oid = d.objid
	   AND (d.objsubid = 0 OR r.column_name = d.address_names[3]);
END
$fn$;
CREATE EVENT TRIGGER brandbos_registry_drop ON sql_drop
	EXECUTE FUNCTION brandbos.registry_drop();

CREATE VIEW brandbos.protected_columns AS
	SELECT r.table_oid AS table_name,
		   r.column_name,
		   r.column_id,
		   r.protected_at,
		   brandbos.column_key_versions(r.table_oid, r.column_name) AS key_versions
	  FROM brandbos.column_registry r;
COMMENT ON VIEW brandbos.protected_columns IS
	'protected columns; key_versions is NULL for tables the caller cannot read';

-- ---------------------------------------------------------------------------
-- Passwords and API keys
-- ---------------------------------------------------------------------------
CREATE FUNCTION brandbos.hash_password(password text) RETURNS text
	AS 'MODULE_PATHNAME', 'brandbos_hash_password'
	LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

CREATE FUNCTION brandbos.verify_password(password text, hash text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'brandbos_verify_password'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION brandbos.password_needs_rehash(hash text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'brandbos_password_needs_rehash'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION brandbos.generate_api_key(prefix text DEFAULT 'bb')
	RETURNS TABLE (api_key text, key_prefix text, key_hash bytea)
	AS 'MODULE_PATHNAME', 'brandbos_generate_api_key'
	LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

CREATE FUNCTION brandbos.verify_api_key(api_key text, key_hash bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'brandbos_verify_api_key'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- ---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC unless granted here, on purpose.
-- ---------------------------------------------------------------------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA brandbos FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA brandbos FROM PUBLIC;

-- anyone may ask whether the server holds a root key
GRANT EXECUTE ON FUNCTION brandbos.root_key_loaded() TO PUBLIC;

-- sealing needs no privilege (like dropping a letter into a box); reading does
GRANT EXECUTE ON FUNCTION brandbos.encrypt(bytea, bytea),
						  brandbos.encrypt_text(text, text),
						  brandbos.envelope_key_version(bytea),
						  brandbos.envelope_key_version(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION brandbos.decrypt(bytea, bytea),
						  brandbos.decrypt_text(text, text),
						  brandbos.decrypt_column(uuid, text, VARIADIC "any"),
						  brandbos.decrypt_column(uuid, bytea, VARIADIC "any")
	TO brandbos_decryptor;

-- key management
GRANT EXECUTE ON FUNCTION brandbos.key_status(),
						  brandbos.rotate_key(),
						  brandbos.retire_key(integer),
						  brandbos.destroy_key(integer, boolean),
						  brandbos.rewrap_keys(),
						  brandbos.reencrypt(regclass, integer)
	TO brandbos_keymaster;

-- protecting a column is checked against table ownership inside the function
GRANT EXECUTE ON FUNCTION brandbos.protect_column(regclass, name),
						  brandbos.unprotect_column(regclass, name),
						  brandbos.column_key_versions(regclass, name) TO PUBLIC;
GRANT SELECT ON brandbos.protected_columns TO PUBLIC;

-- the trigger runs as whoever writes the protected table
GRANT EXECUTE ON FUNCTION brandbos.protect_trigger() TO PUBLIC;

GRANT EXECUTE ON FUNCTION brandbos.hash_password(text),
						  brandbos.verify_password(text, text),
						  brandbos.password_needs_rehash(text),
						  brandbos.generate_api_key(text),
						  brandbos.verify_api_key(text, bytea) TO PUBLIC;
