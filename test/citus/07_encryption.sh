#!/usr/bin/env bash
# Transparent column encryption on Citus (SPEC 8): protect_column on a hash-distributed table,
# called on the coordinator, leaves the same column id and the same data keys on every node in
# the same distributed transaction; rows written through the coordinator are sealed on the
# workers (no plaintext in any shard, nor in the workers' data files); <table>_decrypted read
# through the coordinator opens the values on both workers, for decryptors only; a shard whose
# node lacks the registry refuses rows; the other order and other Citus tables are refused
# (0A000); rotate_key, reencrypt and destroy_key act on every node; a shard moved between
# workers keeps decrypting and sealing; a worker that lost the keys refuses rows and gets them
# back from the coordinator's next rotate_key; a node added later refuses rows and does not open
# values until brandbos.citus_resync() on the coordinator; a coordinator holding shards seals and
# counts them too; no server log holds a protected value.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ct_cluster
rnd() { head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
OLD=before-protect-$(rnd)
NEW=after-protect-$(rnd)
NEXT=after-rotate-$(rnd)

# a shard's rows on a node, scanned as text: how many hold the string
plaintext_on() {
	ct_psql "$1" -c "SET citus.override_table_visibility = off" -c "SELECT count(*) FROM (
		SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
		 WHERE c.relkind = 'r' AND s.nspname = 'public' AND c.relname LIKE '$2%') r,
		LATERAL (SELECT * FROM pg_catalog.query_to_xml(format('SELECT * FROM %s', r.t), false, false, '')) x(v)
		WHERE x.v::text LIKE '%$3%'"
}
shard_rows_on() {
	ct_psql "$1" -c "SET citus.override_table_visibility = off" -c "SELECT coalesce(sum((xpath('/row/c/text()',
		query_to_xml(format('SELECT count(*) AS c FROM %s', c.oid::regclass), false, true, '')))[1]::text::int), 0)
		FROM pg_class c WHERE c.relname ~ '^$2_[0-9]+\$'"
}
keys_digest() { ct_sql "$1" "SELECT md5(string_agg(version || ':' || status || ':' || coalesce(encode(wrapped_key, 'hex'), '-'), ',' ORDER BY version)) FROM brandbos.data_keys"; }

# ---- 1. distribute, fill, then protect ---------------------------------------------------
ct_sql coord "CREATE TABLE tokens (tenant_id uuid NOT NULL, id bigint NOT NULL, token text,
	PRIMARY KEY (tenant_id, id))" >/dev/null
ct_sql coord "SELECT create_distributed_table('tokens', 'tenant_id')" >/dev/null
ct_sql coord "INSERT INTO tokens SELECT gen_random_uuid(), g, '$OLD-' || g FROM generate_series(1, 20) g"
assert_eq "protect_column of a hash-distributed table succeeds on the coordinator" 00000 \
	"$(ct_sqlstate coord "SELECT brandbos.protect_column('tokens', 'token')")"
cid=$(ct_sql coord "SELECT column_id FROM brandbos.column_registry WHERE table_oid = 'tokens'::regclass")
check "the coordinator registered the column" test -n "$cid"
for n in w1 w2; do
	assert_eq "$n: the registry holds the same column id for the logical table" "$cid" \
		"$(ct_sql "$n" "SELECT column_id FROM brandbos.column_registry WHERE table_oid = 'tokens'::regclass AND column_name = 'token'")"
	assert_eq "$n: the same data keys (versions, status, wrapped bytes)" "$(keys_digest coord)" "$(keys_digest "$n")"
done
assert_eq "the coordinator holds one active data key" 1 \
	"$(ct_sql coord "SELECT count(*) FROM brandbos.data_keys WHERE status = 'active'")"

ct_sql coord "INSERT INTO tokens SELECT gen_random_uuid(), g, '$NEW-' || g FROM generate_series(21, 40) g"
for n in w1 w2; do
	rows=$(shard_rows_on "$n" tokens)
	check "$n holds shard rows of tokens ($rows)" test "$rows" -gt 0
	assert_eq "$n: rows there before protect_column were sealed" 0 "$(plaintext_on "$n" tokens "$OLD")"
	assert_eq "$n: rows written through the coordinator are sealed" 0 "$(plaintext_on "$n" tokens "$NEW")"
done
assert_eq "the coordinator holds no plaintext either" 0 "$(plaintext_on coord tokens after-)"
assert_eq "read through the coordinator, every stored value is an envelope of the active key" 40 \
	"$(ct_sql coord "SELECT count(*) FROM tokens WHERE brandbos.envelope_key_version(token) = 1")"
for n in w1 w2; do
	ct_sql "$n" "CHECKPOINT"
	found=$({ grep -rlF -- "$NEW" "$(bb_datadir "$n")/base" 2>/dev/null || true; } | wc -l)
	assert_eq "$n: no data file holds a value written after protect_column" 0 "$found"
done

# ---- 2. reading through <table>_decrypted ------------------------------------------------
assert_eq "tokens_decrypted through the coordinator opens every row of both workers" 40 \
	"$(ct_sql coord "SELECT count(*) FROM tokens_decrypted WHERE token = '$OLD-' || id OR token = '$NEW-' || id")"
ct_sql coord "CREATE ROLE enc_reader LOGIN; GRANT SELECT ON tokens TO enc_reader;
	CREATE ROLE enc_decryptor LOGIN; GRANT brandbos_decryptor TO enc_decryptor; GRANT SELECT ON tokens TO enc_decryptor" >/dev/null
assert_eq "a role without decrypt rights cannot read tokens_decrypted (42501)" 42501 \
	"$(CT_USER=enc_reader ct_sqlstate coord "SELECT count(*) FROM tokens_decrypted")"
assert_eq "... nor decrypt_column by hand (42501)" 42501 \
	"$(CT_USER=enc_reader ct_sqlstate coord "SELECT brandbos.decrypt_column('$cid'::uuid, token, tenant_id, id) FROM tokens")"
assert_eq "... and reads only envelopes from the table" 0 \
	"$(CT_USER=enc_reader ct_sql coord "SELECT count(*) FROM tokens WHERE token LIKE '%protect-%'")"
assert_eq "a brandbos_decryptor reads the plaintext through the coordinator" 40 \
	"$(CT_USER=enc_decryptor ct_sql coord "SELECT count(*) FROM tokens_decrypted WHERE token LIKE '%protect-%'")"
assert_eq "a single-tenant (router) read decrypts too" "$NEW-21" \
	"$(ct_sql coord "SELECT d.token FROM tokens_decrypted d JOIN (SELECT tenant_id FROM tokens WHERE id = 21) t USING (tenant_id) WHERE d.id = 21")"
ct_sql coord "UPDATE tokens SET token = 'updated-$NEW' WHERE id <= 5" >/dev/null
for n in w1 w2; do
	assert_eq "$n: UPDATE through the coordinator seals the new value" 0 "$(plaintext_on "$n" tokens "updated-$NEW")"
done
assert_eq "... and it reads back" 5 \
	"$(ct_sql coord "SELECT count(*) FROM tokens_decrypted WHERE token = 'updated-$NEW'")"

# ---- 3. one distributed transaction: a rolled-back protect_column leaves nothing ---------
ct_sql coord "CREATE TABLE rb (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id))" >/dev/null
ct_sql coord "SELECT create_distributed_table('rb', 'tenant_id')" >/dev/null
ct_psql coord -c "BEGIN" -c "SELECT brandbos.protect_column('rb', 'token')" -c "ROLLBACK" >/dev/null
for n in coord w1 w2; do
	assert_eq "$n: a rolled-back protect_column left no registry row" 0 \
		"$(ct_sql "$n" "SELECT count(*) FROM brandbos.column_registry WHERE table_oid = 'rb'::regclass")"
done
assert_eq "... nor a trigger on the shards" 0 \
	"$(ct_sql coord "SELECT sum(result::int) FROM run_command_on_shards('rb', \$\$SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass\$\$)")"
assert_eq "rows of rb stay writable and plain (not protected)" 00000 \
	"$(ct_sqlstate coord "INSERT INTO rb VALUES (gen_random_uuid(), 1, 'plain')")"
# ... one that commits, with writes after it in the same transaction block
TX=in-tx-$(rnd)
ct_sql coord "CREATE TABLE tx (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id))" >/dev/null
ct_sql coord "SELECT create_distributed_table('tx', 'tenant_id')" >/dev/null
ct_sql coord "INSERT INTO tx SELECT gen_random_uuid(), g, '$TX-' || g FROM generate_series(1, 20) g"
ct_psql coord -c "BEGIN" -c "SELECT brandbos.protect_column('tx', 'token')" \
	-c "INSERT INTO tx SELECT gen_random_uuid(), g, '$TX-' || g FROM generate_series(21, 40) g" -c "COMMIT" >/dev/null
for n in w1 w2; do
	assert_eq "$n: protect_column in a transaction block sealed the rows before it and after it" 0 "$(plaintext_on "$n" tx "$TX")"
done
# ... and after a multi-shard write of the same transaction: refused, nothing kept
ct_sql coord "CREATE TABLE tx2 (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id))" >/dev/null
ct_sql coord "SELECT create_distributed_table('tx2', 'tenant_id')" >/dev/null
out=$(ct_psql coord -v VERBOSITY=verbose -c "BEGIN" -c "INSERT INTO tx2 SELECT gen_random_uuid(), g, '$TX-' || g FROM generate_series(1, 20) g" \
	-c "SELECT brandbos.protect_column('tx2', 'token')" -c "COMMIT" 2>&1 || true)
assert_eq "protect_column after a parallel write in its transaction is refused (0A000)" 0A000 \
	"$(sed -nE 's/^ERROR: +([0-9A-Z]{5}):.*/\1/p' <<<"$out" | head -1)"
for n in coord w1 w2; do
	assert_eq "$n: ... no registry row for tx2" 0 \
		"$(ct_sql "$n" "SELECT count(*) FROM brandbos.column_registry WHERE table_oid = 'tx2'::regclass")"
done
assert_eq "... and the transaction's rows are gone with it" 0 "$(ct_sql coord "SELECT count(*) FROM tx2")"
assert_eq "... which read back" 40 "$(ct_sql coord "SELECT count(*) FROM tx_decrypted WHERE token = '$TX-' || id")"

# a worker that refuses (its registry already names the column under another id) rolls back
# the whole protect_column: the coordinator and the other worker keep nothing either
ct_sql coord "CREATE TABLE clash (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id))" >/dev/null
ct_sql coord "SELECT create_distributed_table('clash', 'tenant_id')" >/dev/null
ct_sql coord "INSERT INTO clash VALUES (gen_random_uuid(), 1, 'clash-plain')"
ct_sql w2 "INSERT INTO brandbos.column_registry (table_oid, column_name) VALUES ('clash', 'token')"
assert_eq "protect_column fails when a worker holds another id for the column (55000)" 55000 \
	"$(ct_sqlstate coord "SELECT brandbos.protect_column('clash', 'token')")"
for n in coord w1; do
	assert_eq "$n: ... and keeps no registry row" 0 \
		"$(ct_sql "$n" "SELECT count(*) FROM brandbos.column_registry WHERE table_oid = 'clash'::regclass")"
done
assert_eq "... no shard got the trigger" 0 \
	"$(ct_sql coord "SELECT sum(result::int) FROM run_command_on_shards('clash', \$\$SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass\$\$)")"
assert_eq "... and the row was not rewritten" clash-plain "$(ct_sql coord "SELECT token FROM clash")"

# audited and protected: the audit entries the shards' triggers write on the workers hide the value
ct_sql coord "CREATE TABLE aud (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id));
	SELECT brandbos.enable_audit('aud')" >/dev/null
ct_sql coord "SELECT create_distributed_table('aud', 'tenant_id')" >/dev/null
ct_sql coord "SELECT brandbos.protect_column('aud', 'token')" >/dev/null
AUD=audited-$(rnd)
ct_sql coord "INSERT INTO aud SELECT gen_random_uuid(), g, '$AUD' FROM generate_series(1, 20) g"
ct_sql coord "UPDATE aud SET token = '$AUD-2' WHERE id <= 10" >/dev/null
entries=0
for n in w1 w2; do
	e=$(ct_sql "$n" "SELECT count(*) FROM brandbos.audit_entries WHERE resource_type = 'public.aud'")
	entries=$((entries + e))
	assert_eq "$n: no audit entry holds the protected value" 0 \
		"$(ct_sql "$n" "SELECT count(*) FROM brandbos.audit_entries x WHERE x::text LIKE '%$AUD%'")"
	assert_eq "$n: the entries show the column as [protected]" 0 \
		"$(ct_sql "$n" "SELECT count(*) FROM brandbos.audit_entries WHERE resource_type = 'public.aud' AND action IN ('insert', 'update') AND details::text NOT LIKE '%\"token\": \"[protected]\"%'")"
done
assert_eq "... the workers wrote one entry per insert and per update" 30 "$entries"

# ---- 4. fail closed ----------------------------------------------------------------------
# a worker that lacks the registry row: its shards refuse rows instead of storing them plain
ct_sql coord "CREATE TABLE lost (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id))" >/dev/null
ct_sql coord "SELECT create_distributed_table('lost', 'tenant_id')" >/dev/null
ct_sql coord "SELECT brandbos.protect_column('lost', 'token')" >/dev/null
ct_sql w1 "DELETE FROM brandbos.column_registry WHERE table_oid = 'lost'::regclass"
LOST=lost-$(rnd)
state=$(ct_sqlstate coord "INSERT INTO lost SELECT gen_random_uuid(), g, '$LOST' FROM generate_series(1, 40) g")
diag "insert reaching a shard without registry: $state"
check "a shard without a registry entry refuses the rows" test "$state" != 00000
assert_eq "... and nothing was stored" 0 "$(ct_sql coord "SELECT count(*) FROM lost")"
assert_eq "... no plaintext on w1" 0 "$(plaintext_on w1 lost "$LOST")"
assert_eq "... a trigger call on the shard itself raises 55000" 55000 \
	"$(ct_sqlstate w1 "SET citus.override_table_visibility = off; INSERT INTO $(ct_psql w1 -c "SET citus.override_table_visibility = off" -c "SELECT min(relname) FROM pg_class WHERE relname ~ '^lost_[0-9]+\$'") VALUES (gen_random_uuid(), 1, '$LOST')")"
assert_eq "... still no plaintext on w1" 0 "$(plaintext_on w1 lost "$LOST")"

shard=$(ct_psql w1 -c "SET citus.override_table_visibility = off" -c "SELECT 'public.' || min(relname) FROM pg_class WHERE relname ~ '^tokens_[0-9]+\$'")
assert_eq "protect_column of a shard on a worker is refused (0A000)" 0A000 \
	"$(ct_sqlstate w1 "SET citus.override_table_visibility = off; SELECT brandbos.protect_column('$shard', 'token')")"
assert_eq "protect_column of the distributed table on a worker is refused (0A000)" 0A000 \
	"$(ct_sqlstate w1 "SELECT brandbos.protect_column('rb', 'token')")"
assert_eq "unprotect_column of a distributed table is refused (0A000)" 0A000 \
	"$(ct_sqlstate coord "SELECT brandbos.unprotect_column('tokens', 'token')")"
assert_eq "... and the column stays protected on the workers" 1 \
	"$(ct_sql w2 "SELECT count(*) FROM brandbos.column_registry WHERE table_oid = 'tokens'::regclass")"
ct_sql coord "CREATE ROLE enc_owner LOGIN" >/dev/null
assert_eq "citus_receive_column is not for other roles on a worker (42501)" 42501 \
	"$(CT_USER=enc_owner ct_sqlstate w1 "SELECT brandbos.citus_receive_column('rb', 'token', gen_random_uuid(), true)")"
assert_eq "citus_receive_keys is not for other roles on a worker (42501)" 42501 \
	"$(CT_USER=enc_owner ct_sqlstate w1 "SELECT brandbos.citus_receive_keys('{1}', '{destroyed}', '{NULL}', '{x}', true)")"
assert_eq "a worker does not make data keys of its own: rotate_key there is refused (0A000)" 0A000 \
	"$(ct_sqlstate w1 "SELECT brandbos.rotate_key()")"

# the other order: protected first, then distributed
ct_sql coord "CREATE TABLE early (tenant_id uuid NOT NULL, id bigint NOT NULL, token text,
	PRIMARY KEY (tenant_id, id))" >/dev/null
ct_sql coord "SELECT brandbos.protect_column('early', 'token')" >/dev/null 2>&1
assert_eq "create_distributed_table of a protected (empty) table is refused (0A000)" 0A000 \
	"$(ct_sqlstate coord "SELECT create_distributed_table('early', 'tenant_id')")"
ct_sql coord "INSERT INTO early VALUES (gen_random_uuid(), 1, '$OLD-early')"
assert_eq "... and with rows (0A000)" 0A000 \
	"$(ct_sqlstate coord "SELECT create_distributed_table('early', 'tenant_id')")"
assert_eq "... the message names the right order" 1 \
	"$(ct_try coord "SELECT create_distributed_table('early', 'tenant_id')" | grep -c 'Distribute the table first')"
assert_eq "... create_reference_table too (0A000)" 0A000 \
	"$(ct_sqlstate coord "SELECT create_reference_table('early')")"
assert_eq "... the table stays local and decrypts" "$OLD-early" \
	"$(ct_sql coord "SELECT token FROM early_decrypted WHERE id = 1 AND NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'early'::regclass)")"
assert_eq "undistribute_table() of a protected table is refused (0A000)" 0A000 \
	"$(ct_sqlstate coord "SELECT undistribute_table('tokens')")"
assert_eq "alter_distributed_table() of a protected table is refused (0A000)" 0A000 \
	"$(ct_sqlstate coord "SELECT alter_distributed_table('tokens', shard_count := 8)")"
assert_eq "... which stays distributed, with its column id" "1|$cid" \
	"$(ct_sql coord "SELECT (SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'tokens'::regclass), (SELECT column_id FROM brandbos.column_registry WHERE table_oid = 'tokens'::regclass)")"
ct_sql coord "CREATE TABLE refs (id bigint PRIMARY KEY, token text); SELECT create_reference_table('refs')" >/dev/null
assert_eq "protect_column of a reference table is refused (0A000)" 0A000 \
	"$(ct_sqlstate coord "SELECT brandbos.protect_column('refs', 'token')")"

# ---- 5. rotation and destruction act on the whole cluster --------------------------------
v2=$(ct_sql coord "SELECT brandbos.rotate_key()")
assert_eq "rotate_key on the coordinator makes version 2 active" 2 "$v2"
for n in w1 w2; do
	assert_eq "$n: the same keys after rotate_key" "$(keys_digest coord)" "$(keys_digest "$n")"
done
ct_sql coord "INSERT INTO tokens SELECT gen_random_uuid(), g, '$NEXT-' || g FROM generate_series(41, 50) g"
assert_eq "rows written after the rotation are sealed under version 2 on the workers" 10 \
	"$(ct_sql coord "SELECT count(*) FROM tokens WHERE brandbos.envelope_key_version(token) = 2")"
assert_eq "destroy_key(1) while the workers' shards still use it is refused (55006)" 55006 \
	"$(ct_sqlstate coord "SELECT brandbos.destroy_key(1)")"
for n in coord w1 w2; do
	assert_eq "$n: version 1 is still retired" retired \
		"$(ct_sql "$n" "SELECT status FROM brandbos.data_keys WHERE version = 1")"
done
assert_eq "reencrypt_table() of a distributed table is refused (0A000)" 0A000 \
	"$(ct_sqlstate coord "CALL brandbos.reencrypt_table('tokens')")"
assert_eq "reencrypt() on a worker is refused (0A000)" 0A000 \
	"$(ct_sqlstate w1 "SELECT brandbos.reencrypt('tokens')")"
assert_eq "reencrypt() on the coordinator" 00000 "$(ct_sqlstate coord "SELECT brandbos.reencrypt('tokens')")"
assert_eq "... moved every value on both workers to version 2" "50|0" \
	"$(ct_sql coord "SELECT count(*) FILTER (WHERE brandbos.envelope_key_version(token) = 2), count(*) FILTER (WHERE brandbos.envelope_key_version(token) = 1) FROM tokens")"
assert_eq "... and they still read" 50 \
	"$(ct_sql coord "SELECT count(*) FROM tokens_decrypted WHERE token LIKE '%protect-%' OR token LIKE '%rotate-%'")"
assert_eq "destroy_key(1) is still refused while the local table early and the distributed tables aud and tx use it (55006)" 55006 \
	"$(ct_sqlstate coord "SELECT brandbos.destroy_key(1)")"
assert_eq "reencrypt() of the local table moves its row" 1 "$(ct_sql coord "SELECT brandbos.reencrypt('early')")"
ct_sql coord "SELECT brandbos.reencrypt('aud'), brandbos.reencrypt('tx')" >/dev/null 2>&1
assert_eq "destroy_key(1) succeeds once no node uses it" 00000 "$(ct_sqlstate coord "SELECT brandbos.destroy_key(1)")"
for n in coord w1 w2; do
	assert_eq "$n: version 1 is destroyed, its key bytes gone" "destroyed|t" \
		"$(ct_sql "$n" "SELECT status, wrapped_key IS NULL FROM brandbos.data_keys WHERE version = 1")"
done
assert_eq "... every value still reads" 50 "$(ct_sql coord "SELECT count(*) FROM tokens_decrypted WHERE token IS NOT NULL")"

# forced destruction shreds on every node
assert_eq "rotate_key again makes version 3 active" 3 "$(ct_sql coord "SELECT brandbos.rotate_key()")"
ct_sql coord "INSERT INTO tokens SELECT gen_random_uuid(), g, '$NEXT-' || g FROM generate_series(51, 60) g"
assert_eq "destroy_key(2, force) on the coordinator" 00000 \
	"$(ct_sqlstate coord "SELECT brandbos.destroy_key(2, true)")"
for n in coord w1 w2; do
	assert_eq "$n: version 2 is destroyed, its key bytes gone" "destroyed|t" \
		"$(ct_sql "$n" "SELECT status, wrapped_key IS NULL FROM brandbos.data_keys WHERE version = 2")"
	assert_eq "$n: the same keys after destroy_key" "$(keys_digest coord)" "$(keys_digest "$n")"
done
assert_eq "values under the destroyed key are unreadable through the coordinator (55000)" 55000 \
	"$(ct_sqlstate coord "SELECT token FROM tokens_decrypted WHERE id = 30")"
assert_eq "values under version 3 still read" 10 \
	"$(ct_sql coord "SELECT count(*) FROM tokens_decrypted WHERE id > 50 AND token = '$NEXT-' || id")"
ct_sql coord "SELECT brandbos.retire_key(3)" >/dev/null 2>&1
for n in coord w1 w2; do
	assert_eq "$n: retire_key(3) on the coordinator retired it and made version 4 active here" "3:retired,4:active" \
		"$(ct_sql "$n" "SELECT string_agg(version || ':' || status, ',' ORDER BY version) FROM brandbos.data_keys WHERE version >= 3")"
done

# ---- 6. a shard moved to the other worker keeps its envelopes and its protection ---------
ct_sql coord "CREATE TABLE mv (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id))" >/dev/null
ct_sql coord "SELECT create_distributed_table('mv', 'tenant_id')" >/dev/null
ct_sql coord "SELECT brandbos.protect_column('mv', 'token')" >/dev/null
MV=moved-$(rnd)
ct_sql coord "INSERT INTO mv SELECT gen_random_uuid(), g, '$MV-' || g FROM generate_series(1, 64) g"
sid=$(ct_sql coord "SELECT get_shard_id_for_distribution_column('mv', m.tenant_id) FROM mv m
	JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('mv', m.tenant_id)
	JOIN pg_dist_node n ON n.groupid = p.groupid WHERE n.nodeport = $(bb_port w1)
	GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
moved=$(ct_sql coord "SELECT count(*) FROM mv WHERE get_shard_id_for_distribution_column('mv', tenant_id) = $sid")
check "a shard of mv on w1 holds rows ($sid: $moved)" test "$moved" -gt 0
assert_eq "citus_move_shard_placement from w1 to w2" 00000 \
	"$(ct_sqlstate coord "SELECT citus_move_shard_placement($sid, '127.0.0.1', $(bb_port w1), '127.0.0.1', $(bb_port w2))")"
assert_eq "... the shard is on w2 now" "$(bb_port w2)" \
	"$(ct_sql coord "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE p.shardid = $sid")"
assert_eq "... every value still decrypts through the coordinator" 64 \
	"$(ct_sql coord "SELECT count(*) FROM mv_decrypted WHERE token = '$MV-' || id")"
ct_sql coord "INSERT INTO mv SELECT gen_random_uuid(), g, '$MV-' || g FROM generate_series(65, 2000) g"
assert_eq "... rows written afterwards land in the moved shard too" 1 \
	"$(ct_sql coord "SELECT (count(*) > $moved)::int FROM mv WHERE get_shard_id_for_distribution_column('mv', tenant_id) = $sid")"
assert_eq "... sealed: no plaintext on w2" 0 "$(plaintext_on w2 mv "$MV")"
assert_eq "... nor on w1" 0 "$(plaintext_on w1 mv "$MV")"
assert_eq "... and they read back" 2000 "$(ct_sql coord "SELECT count(*) FROM mv_decrypted WHERE token = '$MV-' || id")"

# ---- 7. a worker without the keys refuses rows; the coordinator's next rotation resends them --
ct_sql w2 "DELETE FROM brandbos.data_keys"
NOKEY=no-key-$(rnd)
state=$(ct_sqlstate coord "INSERT INTO tokens SELECT gen_random_uuid(), g, '$NOKEY' FROM generate_series(100, 140) g")
diag "insert reaching a worker without keys: $state"
check "rows reaching a worker without data keys are refused" test "$state" != 00000
assert_eq "... w2 made no key of its own" 0 "$(ct_sql w2 "SELECT count(*) FROM brandbos.data_keys")"
assert_eq "... and holds no plaintext" 0 "$(plaintext_on w2 tokens "$NOKEY")"
assert_eq "rotate_key on the coordinator" 5 "$(ct_sql coord "SELECT brandbos.rotate_key()")"
assert_eq "... gives w2 the coordinator's keys again" "$(keys_digest coord)" "$(keys_digest w2)"
ct_sql coord "INSERT INTO tokens SELECT gen_random_uuid(), g, '$NOKEY-' || g FROM generate_series(100, 140) g"
assert_eq "... and rows are sealed there again" 0 "$(plaintext_on w2 tokens "$NOKEY")"
assert_eq "... and read back through the coordinator" 41 \
	"$(ct_sql coord "SELECT count(*) FROM tokens_decrypted WHERE id >= 100 AND token = '$NOKEY-' || id")"

# ---- 8. a node added after protect_column: fail closed until citus_resync() --------------
add_node() {	# a fourth node set up like ct_cluster's, added to the cluster
	local n=$1 kv
	SC_CLUSTERS+=("$n")
	bb_cluster_create "$n" auto yes
	cp "$(bb_keyfile coord)" "$(bb_keyfile "$n")"
	[[ $EUID -ne 0 ]] || chown postgres:postgres "$(bb_keyfile "$n")"
	for kv in "shared_preload_libraries=citus,brandbos" "brandbos.jwt_secret_file=$(bb_clusterdir coord)/jwt.secret" \
		"citus.enable_unsafe_triggers=on" "citus.propagate_set_commands=local" "max_connections=100" \
		"max_prepared_transactions=50" "wal_level=logical"; do
		sc_conf_set "$n" "${kv%%=*}" "${kv#*=}"
	done
	bb_cluster_start "$n"
	BB_DB=postgres bb_psql "$n" -c "CREATE DATABASE $BB_DB"
	ct_sql "$n" "CREATE EXTENSION citus; CREATE EXTENSION brandbos;" >/dev/null
	ct_sql coord "SELECT citus_add_node('127.0.0.1', $(bb_port "$n"))" >/dev/null
}
add_node w3
assert_eq "w3 joined with no registry row" 0 "$(ct_sql w3 "SELECT count(*) FROM brandbos.column_registry")"
sid3=$(ct_sql coord "WITH c AS MATERIALIZED (SELECT get_shard_id_for_distribution_column('mv', tenant_id) AS shardid,
	count(*) AS n FROM mv GROUP BY 1) SELECT c.shardid FROM c JOIN pg_dist_placement p USING (shardid)
	JOIN pg_dist_node d ON d.groupid = p.groupid WHERE d.nodeport = $(bb_port w1) ORDER BY c.n DESC, 1 LIMIT 1")
check "a shard of mv on w1 holds rows ($sid3)" test -n "$sid3"
ct_sql coord "SELECT replicate_reference_tables()" >/dev/null
out=$(ct_try coord "SET statement_timeout = '120s'; SELECT citus_move_shard_placement($sid3, '127.0.0.1', $(bb_port w1), '127.0.0.1', $(bb_port w3), shard_transfer_mode := 'block_writes')")
assert_eq "a shard of mv moves to w3 (block_writes)" "0|$(bb_port w3)" \
	"$({ grep -c ERROR <<<"$out" || true; })|$(ct_sql coord "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE p.shardid = $sid3")"
assert_eq "... w3 holds no plaintext of it" 0 "$(plaintext_on w3 mv "$MV")"
check "... its values do not open on w3 without the keys" test \
	"$(ct_sqlstate coord "SELECT count(token) FROM mv_decrypted")" != 00000
W3=on-w3-$(rnd)
state=$(ct_sqlstate coord "INSERT INTO mv SELECT gen_random_uuid(), g, '$W3-' || g FROM generate_series(10001, 12000) g")
check "... rows reaching w3 are refused ($state)" test "$state" != 00000
assert_eq "... and none was stored" 0 "$(ct_sql coord "SELECT count(*) FROM mv WHERE id > 10000")"
assert_eq "citus_resync() on a worker is refused (0A000)" 0A000 "$(ct_sqlstate w1 "SELECT brandbos.citus_resync()")"
ct_sql coord "GRANT brandbos_keymaster TO enc_reader" >/dev/null
assert_eq "citus_resync() is for a superuser, not even a keymaster (42501)" 42501 \
	"$(CT_USER=enc_reader ct_sqlstate coord "SELECT brandbos.citus_resync()")"
check "citus_resync() on the coordinator sends the distributed tables' columns" test \
	"$(ct_sql coord "SELECT brandbos.citus_resync()")" -ge 3
assert_eq "... w3 now has the coordinator's keys" "$(keys_digest coord)" "$(keys_digest w3)"
assert_eq "... and mv's column id" "$(ct_sql coord "SELECT column_id FROM brandbos.column_registry WHERE table_oid = 'mv'::regclass")" \
	"$(ct_sql w3 "SELECT column_id FROM brandbos.column_registry WHERE table_oid = 'mv'::regclass")"
assert_eq "... the moved values open again" 2000 "$(ct_sql coord "SELECT count(*) FROM mv_decrypted WHERE token = '$MV-' || id")"
ct_sql coord "INSERT INTO mv SELECT gen_random_uuid(), g, '$W3-' || g FROM generate_series(10001, 12000) g"
assert_eq "... new rows are sealed on w3" 0 "$(plaintext_on w3 mv "$W3")"
assert_eq "... and read back" 2000 "$(ct_sql coord "SELECT count(*) FROM mv_decrypted WHERE id > 10000 AND token = '$W3-' || id")"
assert_eq "the lost registry row of w1 came back too, with the coordinator's id" \
	"$(ct_sql coord "SELECT column_id FROM brandbos.column_registry WHERE table_oid = 'lost'::regclass")" \
	"$(ct_sql w1 "SELECT column_id FROM brandbos.column_registry WHERE table_oid = 'lost'::regclass")"
assert_eq "... so table lost takes rows again" 00000 \
	"$(ct_sqlstate coord "INSERT INTO lost SELECT gen_random_uuid(), g, '$LOST' FROM generate_series(1, 40) g")"
assert_eq "... sealed on w1" 0 "$(plaintext_on w1 lost "$LOST")"

# ---- 9. a coordinator that holds shards too (shouldhaveshards) ---------------------------
ct_sql coord "SELECT citus_set_node_property('127.0.0.1', $(bb_port coord), 'shouldhaveshards', true)" >/dev/null
ct_sql coord "CREATE TABLE cs (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id))" >/dev/null
ct_sql coord "SELECT create_distributed_table('cs', 'tenant_id', colocate_with => 'none')" >/dev/null
CS=coord-shard-$(rnd)
ct_sql coord "INSERT INTO cs SELECT gen_random_uuid(), g, '$CS-' || g FROM generate_series(1, 300) g"
local_rows=$(shard_rows_on coord cs)
check "the coordinator holds rows of cs in its own shards ($local_rows)" test "$local_rows" -gt 0
assert_eq "protect_column of cs (autocommit) seals the coordinator's shards too" "00000|0" \
	"$(ct_sqlstate coord "SELECT brandbos.protect_column('cs', 'token')")|$(plaintext_on coord cs "$CS")"
ct_sql coord "INSERT INTO cs SELECT gen_random_uuid(), g, '$CS-' || g FROM generate_series(301, 600) g"
for n in coord w1 w2; do
	assert_eq "$n: no plaintext of cs" 0 "$(plaintext_on "$n" cs "$CS")"
done
assert_eq "... and every row reads back" 600 "$(ct_sql coord "SELECT count(*) FROM cs_decrypted WHERE token = '$CS-' || id")"
active=$(ct_sql coord "SELECT version FROM brandbos.data_keys WHERE status = 'active'")
ct_sql coord "SELECT brandbos.rotate_key()" >/dev/null
assert_eq "destroy_key of the previous version is refused by the coordinator's own count of its shards" 1 \
	"$(ct_try coord "SELECT brandbos.destroy_key($active)" | grep -cE '^ERROR: .*still seals [0-9]+ values$')"
assert_eq "reencrypt() returns the rows rewritten in the coordinator's shards" "$(shard_rows_on coord cs)" \
	"$(ct_sql coord "SELECT brandbos.reencrypt('cs')" 2>/dev/null)"
assert_eq "... and moved every row of cs on every node" "0|600" \
	"$(ct_sql coord "SELECT count(*) FILTER (WHERE brandbos.envelope_key_version(token) = $active), count(*) FROM cs")"
assert_eq "... which still reads" 600 "$(ct_sql coord "SELECT count(*) FROM cs_decrypted WHERE token = '$CS-' || id")"

# ---- 10. no server log holds a value written to a protected table (errors included) -------
for n in coord w1 w2 w3; do
	found=$({ grep -cF -e "$NEW" -e "$LOST" -e "$NOKEY" -e "$MV" -e "$NEXT" -e "$W3" -e "$AUD" -e "$CS" "$(bb_logfile "$n")" || true; } | head -1)
	assert_eq "$n: the server log holds none of the protected values" 0 "$found"
done
sc_finish
