/* brandbos 0.2.0 — full install script */

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
							 'brandbos_context_admin', 'brandbos_auditor',
							 'brandbos_tenant_admin']
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

-- 1 or 2; re-encryption moves format-1 values to format 2
CREATE FUNCTION brandbos.envelope_format(envelope bytea) RETURNS integer
	AS 'MODULE_PATHNAME', 'brandbos_envelope_format_bytea'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION brandbos.envelope_format(envelope text) RETURNS integer
	AS 'MODULE_PATHNAME', 'brandbos_envelope_format_text'
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

CREATE FUNCTION brandbos.reencrypt(tbl regclass, batch_size integer DEFAULT 1000) RETURNS bigint
	AS 'MODULE_PATHNAME', 'brandbos_reencrypt'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- reencrypt_table commits per batch and records where it is, so that an
-- interrupted run resumes there (same table, same target key)
CREATE TABLE brandbos.reencrypt_progress (
	table_name		regclass PRIMARY KEY,
	target_version	integer NOT NULL,
	leaf			oid,			-- heap relation being walked; NULL when finished
	next_block		bigint,
	end_block		bigint,			-- the walked relation's size when its walk began
	rows_done		bigint NOT NULL,
	blocks_total	bigint NOT NULL,
	started_at		timestamptz NOT NULL,
	updated_at		timestamptz NOT NULL,
	finished_at		timestamptz
);
COMMENT ON TABLE brandbos.reencrypt_progress IS
	'progress of brandbos.reencrypt_table, one row per table, written per committed batch';
REVOKE ALL ON brandbos.reencrypt_progress FROM PUBLIC;

CREATE PROCEDURE brandbos.reencrypt_table(tbl regclass, batch_size integer DEFAULT 1000)
	AS 'MODULE_PATHNAME', 'brandbos_reencrypt_table'
	LANGUAGE C;

CREATE FUNCTION brandbos.column_key_versions(tbl regclass, col name) RETURNS integer[]
	AS 'MODULE_PATHNAME', 'brandbos_column_key_versions'
	LANGUAGE C STABLE PARALLEL UNSAFE;

-- Keep the registry in step with the tables: a renamed column keeps its id,
-- a dropped table or column leaves the registry (and the last protected
-- column dropped takes the protect trigger with it); a partition attached to
-- a protected table has its rows sealed; inheritance is refused.
CREATE FUNCTION brandbos.registry_ddl() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'brandbos_registry_ddl'
	LANGUAGE C;
CREATE EVENT TRIGGER brandbos_registry_rename ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE')
	EXECUTE FUNCTION brandbos.registry_ddl();

-- (in C: brandbos depends on no procedural language, so no DROP ... CASCADE of
-- one can take the extension and its data keys with it)
CREATE FUNCTION brandbos.registry_drop() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'brandbos_registry_drop'
	LANGUAGE C;
CREATE EVENT TRIGGER brandbos_registry_drop ON sql_drop
	EXECUTE FUNCTION brandbos.registry_drop();
ALTER EVENT TRIGGER brandbos_registry_rename ENABLE ALWAYS;
ALTER EVENT TRIGGER brandbos_registry_drop ENABLE ALWAYS;

-- The guard of protected columns (src/protect_guard.c): no DDL command may
-- leave a protected column unguarded (its trigger disabled, dropped, renamed
-- or preceded, its type changed, its companion views replaced); such a
-- command fails with 42501.  The end trigger's name sorts after
-- brandbos_registry_rename, so it sees the registry after a column rename.
CREATE FUNCTION brandbos.protect_guard_start() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'brandbos_protect_guard_start'
	LANGUAGE C;
CREATE FUNCTION brandbos.protect_guard_end() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'brandbos_protect_guard_end'
	LANGUAGE C;
CREATE EVENT TRIGGER brandbos_zz_protect_guard_start ON ddl_command_start
	EXECUTE FUNCTION brandbos.protect_guard_start();
CREATE EVENT TRIGGER brandbos_zz_protect_guard_end ON ddl_command_end
	EXECUTE FUNCTION brandbos.protect_guard_end();
ALTER EVENT TRIGGER brandbos_zz_protect_guard_start ENABLE ALWAYS;
ALTER EVENT TRIGGER brandbos_zz_protect_guard_end ENABLE ALWAYS;

-- The guard of the audit log (src/audit_guard.c): no DDL command may stop or
-- bend brandbos's audit triggers (known by their function, not their name),
-- nor add or change a trigger, rule, policy or row-security flag of the
-- audit tables (42501, recorded as tamper_attempt); dropping an audited
-- table is recorded as table_dropped.
CREATE FUNCTION brandbos.audit_guard_start() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'brandbos_audit_guard_start'
	LANGUAGE C;
CREATE FUNCTION brandbos.audit_guard_end() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'brandbos_audit_guard_end'
	LANGUAGE C;
CREATE EVENT TRIGGER brandbos_zz_audit_guard_start ON ddl_command_start
	EXECUTE FUNCTION brandbos.audit_guard_start();
CREATE EVENT TRIGGER brandbos_zz_audit_guard_end ON ddl_command_end
	EXECUTE FUNCTION brandbos.audit_guard_end();
ALTER EVENT TRIGGER brandbos_zz_audit_guard_start ENABLE ALWAYS;
ALTER EVENT TRIGGER brandbos_zz_audit_guard_end ENABLE ALWAYS;

-- Tenant and owner isolation reaches every partition (src/isolation_guard.c):
-- a partition created or attached under an isolated table, or a child added
-- by INHERITS, gets the table's isolation before the command ends; a foreign
-- table cannot join an isolated table (42809).
CREATE FUNCTION brandbos.isolation_guard() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'brandbos_isolation_guard'
	LANGUAGE C;
CREATE EVENT TRIGGER brandbos_isolation_guard ON ddl_command_end
	WHEN TAG IN ('CREATE TABLE', 'CREATE FOREIGN TABLE', 'ALTER TABLE', 'ALTER FOREIGN TABLE', 'CREATE SCHEMA')
	EXECUTE FUNCTION brandbos.isolation_guard();
ALTER EVENT TRIGGER brandbos_isolation_guard ENABLE ALWAYS;

-- What only a table's owner may do to a table brandbos isolates, protects or
-- audits (src/owner_only.c): add a trigger (a trigger runs with the rights of
-- whoever writes the table), 42501 for anyone else; and, on every relation of
-- an isolated tree, TRUNCATE (row level security does not apply to it),
-- refused by the BEFORE TRUNCATE trigger enable_*_isolation adds.
CREATE FUNCTION brandbos.trigger_guard() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'brandbos_trigger_guard'
	LANGUAGE C;
CREATE EVENT TRIGGER brandbos_trigger_guard ON ddl_command_end
	WHEN TAG IN ('CREATE TRIGGER', 'CREATE SCHEMA')
	EXECUTE FUNCTION brandbos.trigger_guard();
ALTER EVENT TRIGGER brandbos_trigger_guard ENABLE ALWAYS;
CREATE FUNCTION brandbos.isolation_truncate_guard() RETURNS trigger
	AS 'MODULE_PATHNAME', 'brandbos_isolation_truncate_guard'
	LANGUAGE C;

-- NULL when the protection of a column is intact, else what is wrong
-- (read from the catalogs only).
CREATE FUNCTION brandbos.protection_problem(tbl regclass, col name) RETURNS text
	AS 'MODULE_PATHNAME', 'brandbos_protection_problem_sql'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- Read in C (value_scan.c) as each table's owner without evaluating any of
-- its casts, operators or functions; one broken table shows up in problem
-- instead of failing the view.
CREATE FUNCTION brandbos.protected_column_report()
	RETURNS TABLE (table_name regclass, column_name name, column_id uuid,
				   protected_at timestamptz, key_versions integer[], problem text)
	AS 'MODULE_PATHNAME', 'brandbos_protected_column_report'
	LANGUAGE C STABLE PARALLEL RESTRICTED;

-- No DROP silently destroys the data keys (drop_guard.c): before DROP
-- EXTENSION brandbos, DROP SCHEMA brandbos or DROP OWNED BY its owner runs,
-- refuse it (2BP01) while a key is not destroyed or a column is protected,
-- unless brandbos.allow_drop_with_keys is on.  ENABLE ALWAYS: replica mode
-- does not skip it.
CREATE FUNCTION brandbos.drop_guard() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'brandbos_drop_guard'
	LANGUAGE C;
CREATE EVENT TRIGGER brandbos_drop_guard ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP OWNED')
	EXECUTE FUNCTION brandbos.drop_guard();
ALTER EVENT TRIGGER brandbos_drop_guard ENABLE ALWAYS;

CREATE VIEW brandbos.protected_columns AS
	SELECT * FROM brandbos.protected_column_report();
COMMENT ON VIEW brandbos.protected_columns IS
	'protected columns; key_versions and problem are NULL for tables the caller cannot read';

-- ---------------------------------------------------------------------------
-- Passwords and API keys
-- ---------------------------------------------------------------------------
CREATE FUNCTION brandbos.hash_password(password text) RETURNS text
	AS 'MODULE_PATHNAME', 'brandbos_hash_password'
	LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

CREATE FUNCTION brandbos.verify_password(password text, hash text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'brandbos_verify_password'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;

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
-- Immutable audit log (SPEC section 3)
-- ---------------------------------------------------------------------------
CREATE SEQUENCE brandbos.audit_log_id_seq;
SELECT pg_catalog.pg_extension_config_dump('brandbos.audit_log_id_seq', '');

-- brandbos.audit_entries holds the rows; each is hashed (leaf_hash) by the
-- transaction that writes it and never updated afterwards (only a GDPR
-- redaction may clear its payload columns).  The sealer later gathers
-- committed rows into signed blocks of consecutive ids; brandbos.audit_log
-- shows every row with the block that seals it.
CREATE TABLE brandbos.audit_entries (
	id				bigint PRIMARY KEY,
	occurred_at		timestamptz NOT NULL,
	txid			xid8 NOT NULL,
	tenant_id		text,
	user_id			text,
	db_user			name NOT NULL,
	action			text NOT NULL,
	resource_type	text NOT NULL,
	resource_id		text,
	details			jsonb,
	ip_address		inet,
	user_agent		text,
	payload_hash	bytea NOT NULL,
	leaf_hash		bytea NOT NULL
);
COMMENT ON TABLE brandbos.audit_entries IS
	'append-only audit rows, hashed when written; read them through brandbos.audit_log';
SELECT pg_catalog.pg_extension_config_dump('brandbos.audit_entries', '');

-- Blocks cover consecutive id ranges [first_id, last_id]; missing_ids lists
-- the ids of the range that no committed row holds (rolled-back writers).
CREATE TABLE brandbos.audit_blocks (
	block_id	bigint PRIMARY KEY,
	prev_hash	bytea NOT NULL,
	root_hash	bytea NOT NULL,
	first_id	bigint NOT NULL,
	last_id		bigint NOT NULL,
	row_count	bigint NOT NULL,
	missing_ids	bigint[] NOT NULL,
	sealed_at	timestamptz NOT NULL,
	block_hash	bytea NOT NULL,
	signature	bytea NOT NULL,
	public_key	bytea NOT NULL
);
CREATE UNIQUE INDEX audit_blocks_last_id ON brandbos.audit_blocks (last_id);
COMMENT ON TABLE brandbos.audit_blocks IS
	'sealed audit blocks: Merkle root of their rows, chained by hash and signed with Ed25519';
SELECT pg_catalog.pg_extension_config_dump('brandbos.audit_blocks', '');

CREATE VIEW brandbos.audit_log AS
	SELECT e.id, e.occurred_at, e.txid, e.tenant_id, e.user_id, e.db_user, e.action,
		   e.resource_type, e.resource_id, e.details, e.ip_address, e.user_agent,
		   e.leaf_hash, b.block_id
	  FROM brandbos.audit_entries e
	  LEFT JOIN LATERAL (SELECT bl.block_id FROM brandbos.audit_blocks bl
						  WHERE bl.last_id OPERATOR(pg_catalog.>=) e.id
						  ORDER BY bl.last_id LIMIT 1) b ON true;
COMMENT ON VIEW brandbos.audit_log IS
	'the audit log: every row with the block that seals it (NULL until sealed)';

-- Redactions (GDPR) and prunes, each itself logged in the audit log.
CREATE TABLE brandbos.audit_redactions (
	audit_id	bigint PRIMARY KEY,
	reason		text NOT NULL,
	redacted_at	timestamptz NOT NULL,
	redacted_by	name NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('brandbos.audit_redactions', '');

-- A prune record's signature (Ed25519, the audit signing key) covers the
-- pruned block's hash: verify_audit trusts nothing else about pruning.
CREATE TABLE brandbos.audit_prunes (
	block_id	bigint PRIMARY KEY,
	pruned_at	timestamptz NOT NULL,
	pruned_by	name NOT NULL,
	signature	bytea
);
SELECT pg_catalog.pg_extension_config_dump('brandbos.audit_prunes', '');

-- The audit signing seed, once a root-key rotation has happened: wrapped
-- under the root key, so blocks signed before and after the rotation verify
-- under one key.  Empty until the first rewrap_keys(); until then the seed
-- is derived from the root key.  At most one row; written only by
-- rewrap_keys() (audit_signing_key.c).
CREATE TABLE brandbos.audit_signing_key (
	only_row		boolean PRIMARY KEY DEFAULT true CHECK (only_row),
	root_key_id		text NOT NULL,
	wrapped_seed	bytea NOT NULL,
	wrapped_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE brandbos.audit_signing_key IS
	'the audit signing seed wrapped under the root key (after the first root-key rotation)';
SELECT pg_catalog.pg_extension_config_dump('brandbos.audit_signing_key', '');

-- The sealer's horizon: ids up to horizon_id are final once every
-- transaction whose xid is in waiting_for has ended.
CREATE TABLE brandbos.audit_seal_state (
	singleton	boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	horizon_id	bigint NOT NULL,
	waiting_for	bigint[] NOT NULL
);

CREATE FUNCTION brandbos.audit_append_only() RETURNS trigger
	AS 'MODULE_PATHNAME', 'brandbos_audit_append_only'
	LANGUAGE C;

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON brandbos.audit_entries
	FOR EACH ROW EXECUTE FUNCTION brandbos.audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON brandbos.audit_entries
	FOR EACH STATEMENT EXECUTE FUNCTION brandbos.audit_append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON brandbos.audit_blocks
	FOR EACH ROW EXECUTE FUNCTION brandbos.audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON brandbos.audit_blocks
	FOR EACH STATEMENT EXECUTE FUNCTION brandbos.audit_append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON brandbos.audit_redactions
	FOR EACH ROW EXECUTE FUNCTION brandbos.audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON brandbos.audit_redactions
	FOR EACH STATEMENT EXECUTE FUNCTION brandbos.audit_append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON brandbos.audit_prunes
	FOR EACH ROW EXECUTE FUNCTION brandbos.audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON brandbos.audit_prunes
	FOR EACH STATEMENT EXECUTE FUNCTION brandbos.audit_append_only();
-- fire even under session_replication_role = replica
ALTER TABLE brandbos.audit_entries ENABLE ALWAYS TRIGGER append_only;
ALTER TABLE brandbos.audit_entries ENABLE ALWAYS TRIGGER append_only_truncate;
ALTER TABLE brandbos.audit_blocks ENABLE ALWAYS TRIGGER append_only;
ALTER TABLE brandbos.audit_blocks ENABLE ALWAYS TRIGGER append_only_truncate;
ALTER TABLE brandbos.audit_redactions ENABLE ALWAYS TRIGGER append_only;
ALTER TABLE brandbos.audit_redactions ENABLE ALWAYS TRIGGER append_only_truncate;
ALTER TABLE brandbos.audit_prunes ENABLE ALWAYS TRIGGER append_only;
ALTER TABLE brandbos.audit_prunes ENABLE ALWAYS TRIGGER append_only_truncate;

CREATE FUNCTION brandbos.log_event(action text, resource_type text, resource_id text DEFAULT NULL,
								   details jsonb DEFAULT NULL) RETURNS bigint
	AS 'MODULE_PATHNAME', 'brandbos_log_event'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.audit_trigger() RETURNS trigger
	AS 'MODULE_PATHNAME', 'brandbos_audit_trigger'
	LANGUAGE C;

CREATE FUNCTION brandbos.enable_audit(tbl regclass) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_enable_audit'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.disable_audit(tbl regclass) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_disable_audit'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.seal_audit() RETURNS bigint
	AS 'MODULE_PATHNAME', 'brandbos_seal_audit'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.verify_audit(from_block bigint DEFAULT NULL, digest jsonb DEFAULT NULL)
	RETURNS TABLE (block_id bigint, audit_id bigint, problem text, detail text)
	AS 'MODULE_PATHNAME', 'brandbos_verify_audit'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.audit_digest() RETURNS jsonb
	AS 'MODULE_PATHNAME', 'brandbos_audit_digest'
	LANGUAGE C STABLE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.verify_audit_digest(digest jsonb) RETURNS boolean
	AS 'MODULE_PATHNAME', 'brandbos_verify_audit_digest'
	LANGUAGE C STABLE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.redact_audit(id bigint, reason text) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_redact_audit'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.prune_audit(before timestamptz) RETURNS bigint
	AS 'MODULE_PATHNAME', 'brandbos_prune_audit'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;


-- ---------------------------------------------------------------------------
-- Tenant context and Row Level Security helpers (SPEC section 4)
-- ---------------------------------------------------------------------------
CREATE FUNCTION brandbos.authenticate(token text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'brandbos_authenticate'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.set_context(user_id text, tenant_id text,
									 app_role text DEFAULT 'authenticated',
									 claims jsonb DEFAULT '{}') RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_set_context'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.set_request(ip inet, user_agent text) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_set_request'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.sign_token(claims jsonb, ttl interval DEFAULT '1 hour') RETURNS text
	AS 'MODULE_PATHNAME', 'brandbos_sign_token'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE FUNCTION brandbos.current_user_id() RETURNS text
	AS 'MODULE_PATHNAME', 'brandbos_current_user_id' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION brandbos.current_tenant_id() RETURNS text
	AS 'MODULE_PATHNAME', 'brandbos_current_tenant_id' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION brandbos.current_user_uuid() RETURNS uuid
	AS 'MODULE_PATHNAME', 'brandbos_current_user_uuid' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION brandbos.current_tenant_uuid() RETURNS uuid
	AS 'MODULE_PATHNAME', 'brandbos_current_tenant_uuid' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION brandbos.current_app_role() RETURNS text
	AS 'MODULE_PATHNAME', 'brandbos_current_app_role' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION brandbos.claims() RETURNS jsonb
	AS 'MODULE_PATHNAME', 'brandbos_claims' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION brandbos.claim(name text) RETURNS text
	AS 'MODULE_PATHNAME', 'brandbos_claim' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION brandbos.is_admin() RETURNS boolean
	AS 'MODULE_PATHNAME', 'brandbos_is_admin' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION brandbos.is_org_owner(org text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'brandbos_is_org_owner' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION brandbos.has_app_role(role text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'brandbos_has_app_role' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION brandbos.uid() RETURNS uuid
	AS 'MODULE_PATHNAME', 'brandbos_current_user_uuid' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION brandbos.jwt() RETURNS jsonb
	AS 'MODULE_PATHNAME', 'brandbos_claims' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION brandbos.role() RETURNS text
	AS 'MODULE_PATHNAME', 'brandbos_current_app_role' LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION brandbos.enable_tenant_isolation(tbl regclass, tenant_column name DEFAULT 'tenant_id')
	RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_enable_tenant_isolation'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.enable_owner_isolation(tbl regclass, owner_column name DEFAULT 'user_id')
	RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_enable_owner_isolation'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.disable_isolation(tbl regclass) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_disable_isolation'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION brandbos.rls_report(schemas name[] DEFAULT ARRAY['public']::name[])
	RETURNS TABLE (table_name regclass, rls_enabled boolean, rls_forced boolean,
				   policies integer, problems text[])
	AS 'MODULE_PATHNAME', 'brandbos_rls_report'
	LANGUAGE C STABLE PARALLEL SAFE;

-- ---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC unless granted here, on purpose.
-- ---------------------------------------------------------------------------
REVOKE ALL ON ALL ROUTINES IN SCHEMA brandbos FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA brandbos FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA brandbos FROM PUBLIC;

-- anyone may ask whether the server holds a root key
GRANT EXECUTE ON FUNCTION brandbos.root_key_loaded() TO PUBLIC;

-- sealing needs no privilege (like dropping a letter into a box); reading does
GRANT EXECUTE ON FUNCTION brandbos.encrypt(bytea, bytea),
						  brandbos.encrypt_text(text, text),
						  brandbos.envelope_key_version(bytea),
						  brandbos.envelope_key_version(text),
						  brandbos.envelope_format(bytea),
						  brandbos.envelope_format(text) TO PUBLIC;
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
GRANT EXECUTE ON PROCEDURE brandbos.reencrypt_table(regclass, integer) TO brandbos_keymaster;
GRANT SELECT ON brandbos.reencrypt_progress TO brandbos_keymaster;

-- protecting a column is checked against table ownership inside the function
GRANT EXECUTE ON FUNCTION brandbos.protect_column(regclass, name),
						  brandbos.unprotect_column(regclass, name),
						  brandbos.column_key_versions(regclass, name),
						  brandbos.protected_column_report(),

						  brandbos.protection_problem(regclass, name) TO PUBLIC;
GRANT SELECT ON brandbos.protected_columns TO PUBLIC;

-- the trigger runs as whoever writes the protected table
GRANT EXECUTE ON FUNCTION brandbos.protect_trigger() TO PUBLIC;

GRANT EXECUTE ON FUNCTION brandbos.hash_password(text),
						  brandbos.verify_password(text, text),
						  brandbos.password_needs_rehash(text),
						  brandbos.generate_api_key(text),
						  brandbos.verify_api_key(text, bytea) TO PUBLIC;

-- audit: anyone may write events (they are attributed to the caller and can
-- never be changed); auditors read and verify; redaction and pruning are the
-- extension owner's (superusers) or an auditor's decision
GRANT EXECUTE ON FUNCTION brandbos.log_event(text, text, text, jsonb),
						  brandbos.audit_trigger(),
						  brandbos.audit_append_only() TO PUBLIC;
GRANT EXECUTE ON FUNCTION brandbos.enable_audit(regclass),
						  brandbos.disable_audit(regclass) TO PUBLIC;
GRANT EXECUTE ON FUNCTION brandbos.seal_audit(),
						  brandbos.verify_audit(bigint, jsonb),
						  brandbos.audit_digest(),
						  brandbos.verify_audit_digest(jsonb),
						  brandbos.redact_audit(bigint, text),
						  brandbos.prune_audit(timestamptz) TO brandbos_auditor;
GRANT SELECT ON brandbos.audit_log, brandbos.audit_entries, brandbos.audit_blocks,
				brandbos.audit_redactions, brandbos.audit_prunes TO brandbos_auditor;

-- tenant context: helpers run inside policies as the querying role, so every
-- role may call them; authenticate verifies a signature, set_request only
-- describes the request; set_context trusts its caller, so only
-- brandbos_context_admin (checked again in C)
GRANT EXECUTE ON FUNCTION brandbos.authenticate(text),
						  brandbos.set_request(inet, text),
						  brandbos.current_user_id(), brandbos.current_tenant_id(),
						  brandbos.current_user_uuid(), brandbos.current_tenant_uuid(),
						  brandbos.current_app_role(), brandbos.claims(), brandbos.claim(text),
						  brandbos.is_admin(), brandbos.is_org_owner(text), brandbos.has_app_role(text),
						  brandbos.uid(), brandbos.jwt(), brandbos.role() TO PUBLIC;
GRANT EXECUTE ON FUNCTION brandbos.set_context(text, text, text, jsonb),
						  brandbos.sign_token(jsonb, interval) TO brandbos_context_admin;
-- policies are the table owner's business (checked in C)
GRANT EXECUTE ON FUNCTION brandbos.enable_tenant_isolation(regclass, name),
						  brandbos.enable_owner_isolation(regclass, name),
						  brandbos.disable_isolation(regclass),
						  brandbos.rls_report(name[]) TO PUBLIC;
-- the owner creating the truncate guard needs EXECUTE on it; it only refuses
GRANT EXECUTE ON FUNCTION brandbos.isolation_truncate_guard() TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Persona and deliberation-session bookkeeping (SPEC section 5)
-- ---------------------------------------------------------------------------
-- The Board-of-One data model.  C triggers (src/deliberation_*.c) keep it
-- consistent however a row is written, by the functions below or by plain
-- DML: the session status machine, owner and tenant ids copied onto child
-- rows, totals kept exact under a row lock on the session, the budget.
--
-- Restoring a dump: the triggers would count restored contributions into
-- totals that the restored sessions already hold (and refuse rows of ended
-- sessions), so restore these tables with session_replication_role = replica.
CREATE TABLE brandbos.users (
	id					text PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid()::text,
	tenant_id			text,
	email				text NOT NULL UNIQUE,
	auth_provider		text,
	subscription_tier	text NOT NULL DEFAULT 'free',
	gdpr_consent_at		timestamptz,
	created_at			timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at			timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE brandbos.users IS 'users of the deliberation product (ids from the identity provider)';
SELECT pg_catalog.pg_extension_config_dump('brandbos.users', '');

CREATE TABLE brandbos.personas (
	id				serial PRIMARY KEY,
	code			text NOT NULL UNIQUE CHECK (code <> ''),
	name			text NOT NULL,
	expertise		text,
	system_prompt	text,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE brandbos.personas IS 'AI personas; write them with upsert_persona or seed_personas';
SELECT pg_catalog.pg_extension_config_dump('brandbos.personas', '');
SELECT pg_catalog.pg_extension_config_dump('brandbos.personas_id_seq', '');

CREATE TABLE brandbos.sessions (
	id					text PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid()::text,
	user_id				text NOT NULL DEFAULT brandbos.current_user_id(),
	tenant_id			text DEFAULT brandbos.current_tenant_id(),
	problem_statement	text NOT NULL,
	problem_context		jsonb,
	status				text NOT NULL DEFAULT 'active'
		CHECK (status IN ('active', 'paused', 'completed', 'failed', 'killed')),
	phase				text NOT NULL DEFAULT 'problem_decomposition'
		CHECK (phase IN ('problem_decomposition', 'initial_round', 'deliberation',
						 'moderator_intervention', 'voting', 'synthesis')),
	total_cost			numeric(10,4) NOT NULL DEFAULT 0,
	total_tokens		bigint NOT NULL DEFAULT 0,
	round_number		integer NOT NULL DEFAULT 1,
	max_rounds			integer NOT NULL DEFAULT 10 CHECK (max_rounds > 0),
	budget				numeric(10,4) CHECK (budget >= 0),
	created_at			timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at			timestamptz NOT NULL DEFAULT pg_catalog.now(),
	completed_at		timestamptz,
	killed_at			timestamptz,
	killed_by			text,
	kill_reason			text
);
COMMENT ON TABLE brandbos.sessions IS
	'deliberation sessions; kill_reason holds why a session failed or was killed';
CREATE INDEX sessions_user_id ON brandbos.sessions (user_id);
CREATE INDEX sessions_tenant_status ON brandbos.sessions (tenant_id, status);
SELECT pg_catalog.pg_extension_config_dump('brandbos.sessions', '');

CREATE TABLE brandbos.contributions (
	id				bigserial PRIMARY KEY,
	session_id		text NOT NULL REFERENCES brandbos.sessions ON DELETE CASCADE,
	user_id			text,
	tenant_id		text,
	persona_code	text NOT NULL REFERENCES brandbos.personas (code),
	content			text NOT NULL,
	round_number	integer NOT NULL,
	phase			text NOT NULL
		CHECK (phase IN ('problem_decomposition', 'initial_round', 'deliberation',
						 'moderator_intervention', 'voting', 'synthesis')),
	cost			numeric(10,4) NOT NULL CHECK (cost >= 0),
	tokens			integer NOT NULL CHECK (tokens >= 0),
	model			text,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX contributions_session_id ON brandbos.contributions (session_id);
CREATE INDEX contributions_user_id ON brandbos.contributions (user_id);
SELECT pg_catalog.pg_extension_config_dump('brandbos.contributions', '');
SELECT pg_catalog.pg_extension_config_dump('brandbos.contributions_id_seq', '');

CREATE TABLE brandbos.votes (
	id				bigserial PRIMARY KEY,
	session_id		text NOT NULL REFERENCES brandbos.sessions ON DELETE CASCADE,
	user_id			text,
	tenant_id		text,
	persona_code	text NOT NULL REFERENCES brandbos.personas (code),
	vote_choice		text NOT NULL,
	reasoning		text,
	confidence		numeric CHECK (confidence BETWEEN 0 AND 1),
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	UNIQUE (session_id, persona_code)
);
CREATE INDEX votes_session_id ON brandbos.votes (session_id);
CREATE INDEX votes_user_id ON brandbos.votes (user_id);
SELECT pg_catalog.pg_extension_config_dump('brandbos.votes', '');
SELECT pg_catalog.pg_extension_config_dump('brandbos.votes_id_seq', '');

-- triggers
CREATE FUNCTION brandbos.session_guard() RETURNS trigger
	AS 'MODULE_PATHNAME', 'brandbos_session_guard' LANGUAGE C;
CREATE FUNCTION brandbos.contribution_guard() RETURNS trigger
	AS 'MODULE_PATHNAME', 'brandbos_contribution_guard' LANGUAGE C;
CREATE FUNCTION brandbos.contribution_totals() RETURNS trigger
	AS 'MODULE_PATHNAME', 'brandbos_contribution_totals' LANGUAGE C;
CREATE FUNCTION brandbos.vote_guard() RETURNS trigger
	AS 'MODULE_PATHNAME', 'brandbos_vote_guard' LANGUAGE C;

CREATE TRIGGER session_guard BEFORE UPDATE ON brandbos.sessions
	FOR EACH ROW EXECUTE FUNCTION brandbos.session_guard();
CREATE TRIGGER contribution_guard BEFORE INSERT OR UPDATE ON brandbos.contributions
	FOR EACH ROW EXECUTE FUNCTION brandbos.contribution_guard();
CREATE TRIGGER contribution_totals AFTER INSERT OR UPDATE OR DELETE ON brandbos.contributions
	FOR EACH ROW EXECUTE FUNCTION brandbos.contribution_totals();
CREATE TRIGGER vote_guard BEFORE INSERT OR UPDATE ON brandbos.votes
	FOR EACH ROW EXECUTE FUNCTION brandbos.vote_guard();

-- functions (C; internal statements run as the extension owner, and every
-- function finds its session through context_sees, the policies' rule)
CREATE FUNCTION brandbos.upsert_persona(code text, name text, expertise text, system_prompt text)
	RETURNS integer
	AS 'MODULE_PATHNAME', 'brandbos_upsert_persona' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION brandbos.seed_personas(personas jsonb) RETURNS integer
	AS 'MODULE_PATHNAME', 'brandbos_seed_personas' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION brandbos.start_session(problem_statement text, problem_context jsonb DEFAULT NULL,
									   max_rounds integer DEFAULT 10, budget numeric DEFAULT NULL)
	RETURNS text
	AS 'MODULE_PATHNAME', 'brandbos_start_session' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION brandbos.add_contribution(session_id text, persona_code text, content text,
										  phase text, cost numeric, tokens integer, model text)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'brandbos_add_contribution' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION brandbos.next_round(session_id text) RETURNS integer
	AS 'MODULE_PATHNAME', 'brandbos_next_round' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION brandbos.set_phase(session_id text, phase text) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_set_phase' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION brandbos.cast_vote(session_id text, persona_code text, vote_choice text,
								   reasoning text, confidence numeric DEFAULT NULL) RETURNS bigint
	AS 'MODULE_PATHNAME', 'brandbos_cast_vote' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION brandbos.pause_session(session_id text) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_pause_session' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION brandbos.resume_session(session_id text) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_resume_session' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION brandbos.complete_session(session_id text) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_complete_session' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION brandbos.fail_session(session_id text, reason text) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_fail_session' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION brandbos.kill_session(session_id text, reason text) RETURNS void
	AS 'MODULE_PATHNAME', 'brandbos_kill_session' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION brandbos.session_summary(session_id text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'brandbos_session_summary' LANGUAGE C STABLE PARALLEL UNSAFE;
-- GDPR: the data subject (context user) or brandbos_context_admin, checked in C
CREATE FUNCTION brandbos.gdpr_export(user_id text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'brandbos_gdpr_export' LANGUAGE C STABLE PARALLEL UNSAFE;
CREATE FUNCTION brandbos.gdpr_erase(user_id text) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'brandbos_gdpr_erase' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Row Level Security: personas are readable by everyone; the other four
-- tables show a row to its user and to an admin of its tenant.  That rule is
-- written once, in context_sees: each table's one policy calls it, and so
-- does the C functions' lookup of a session (they run as the extension
-- owner, whom the policies exempt, so they apply the rule themselves).  A
-- SQL-standard body is bound when it is created (no search_path applies when
-- it runs) and the planner inlines it, so the indexes on user_id and
-- tenant_id serve the policies.  Not FORCEd: the table owner is the
-- extension owner.
CREATE FUNCTION brandbos.context_sees(user_id text, tenant_id text) RETURNS boolean
	LANGUAGE sql STABLE PARALLEL SAFE
	RETURN user_id OPERATOR(pg_catalog.=) brandbos.current_user_id()
		OR (tenant_id OPERATOR(pg_catalog.=) brandbos.current_tenant_id() AND brandbos.is_admin());
ALTER TABLE brandbos.personas ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable_by_all ON brandbos.personas FOR SELECT USING (true);
ALTER TABLE brandbos.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY context_rows ON brandbos.users
	USING (brandbos.context_sees(id, tenant_id)) WITH CHECK (brandbos.context_sees(id, tenant_id));
ALTER TABLE brandbos.sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY context_rows ON brandbos.sessions
	USING (brandbos.context_sees(user_id, tenant_id)) WITH CHECK (brandbos.context_sees(user_id, tenant_id));
ALTER TABLE brandbos.contributions ENABLE ROW LEVEL SECURITY;
CREATE POLICY context_rows ON brandbos.contributions
	USING (brandbos.context_sees(user_id, tenant_id)) WITH CHECK (brandbos.context_sees(user_id, tenant_id));
ALTER TABLE brandbos.votes ENABLE ROW LEVEL SECURITY;
CREATE POLICY context_rows ON brandbos.votes
	USING (brandbos.context_sees(user_id, tenant_id)) WITH CHECK (brandbos.context_sees(user_id, tenant_id));

-- Privileges.  Functions created after the REVOKE above start executable by
-- PUBLIC, so they are revoked here first.  The session functions act only
-- within the caller's request context (a session of another user looks
-- unknown), so PUBLIC may call them; personas are shared by every user, so
-- only the application's backend role (brandbos_context_admin) writes them.
-- Rows are read directly under RLS (SELECT to PUBLIC; the policies run as the
-- reader, so context_sees is PUBLIC too) and written only through the
-- functions: PUBLIC holds no INSERT, UPDATE or DELETE.
REVOKE ALL ON FUNCTION brandbos.session_guard(), brandbos.contribution_guard(),
					   brandbos.contribution_totals(), brandbos.vote_guard(),
					   brandbos.upsert_persona(text, text, text, text),
					   brandbos.seed_personas(jsonb),
					   brandbos.start_session(text, jsonb, integer, numeric),
					   brandbos.add_contribution(text, text, text, text, numeric, integer, text),
					   brandbos.next_round(text), brandbos.set_phase(text, text),
					   brandbos.cast_vote(text, text, text, text, numeric),
					   brandbos.pause_session(text), brandbos.resume_session(text),
					   brandbos.complete_session(text), brandbos.fail_session(text, text),
					   brandbos.kill_session(text, text), brandbos.session_summary(text),
					   brandbos.gdpr_export(text), brandbos.gdpr_erase(text),
					   brandbos.context_sees(text, text)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION brandbos.start_session(text, jsonb, integer, numeric),
						  brandbos.add_contribution(text, text, text, text, numeric, integer, text),
						  brandbos.next_round(text), brandbos.set_phase(text, text),
						  brandbos.cast_vote(text, text, text, text, numeric),
						  brandbos.pause_session(text), brandbos.resume_session(text),
						  brandbos.complete_session(text), brandbos.fail_session(text, text),
						  brandbos.kill_session(text, text), brandbos.session_summary(text),
						  brandbos.gdpr_export(text), brandbos.gdpr_erase(text),
						  brandbos.context_sees(text, text)
	TO PUBLIC;
GRANT EXECUTE ON FUNCTION brandbos.upsert_persona(text, text, text, text),
						  brandbos.seed_personas(jsonb) TO brandbos_context_admin;
GRANT SELECT ON brandbos.personas, brandbos.users, brandbos.sessions,
				brandbos.contributions, brandbos.votes TO PUBLIC;

-- Say plainly what is missing without shared_preload_libraries.
DO $preload$
BEGIN
	IF pg_catalog.current_setting('shared_preload_libraries') !~ '(^|[ ,])"?brandbos"?($|[ ,])' THEN
		RAISE NOTICE 'brandbos is not in shared_preload_libraries: column encryption, passwords, API keys and the audit log work, but the audit log is sealed only when brandbos.seal_audit() is called and a superuser can switch the DDL guards off (ALTER EVENT TRIGGER)'
			USING HINT = 'Add brandbos to shared_preload_libraries and restart to get the background sealer and the guard.';
	END IF;
END
$preload$;
