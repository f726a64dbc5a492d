#!/usr/bin/env bash
# Encryption on Citus is not supported yet; this proves that it fails closed: protect_column
# refuses a distributed table with 0A000, distributing a protected table fails, and no
# plaintext of a protected column reaches any node, whatever order the calls come in.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ct_cluster
SECRET=refresh-token-citus-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

# 1. protected first, then distributed
ct_sql coord "CREATE TABLE tokens_a (tenant_id uuid NOT NULL, id bigint NOT NULL, token text,
	PRIMARY KEY (tenant_id, id)); SELECT brandbos.protect_column('tokens_a', 'token')" >/dev/null
ct_sql coord "INSERT INTO tokens_a VALUES (gen_random_uuid(), 1, '$SECRET-a')"
state=$(ct_sqlstate coord "SELECT create_distributed_table('tokens_a', 'tenant_id')")
diag "create_distributed_table of a protected table with rows: $state: $(ct_try coord "SELECT create_distributed_table('tokens_a', 'tenant_id')" | grep -m1 ERROR)"
check "distributing a protected table fails" test "$state" != 00000
assert_eq "... and leaves it a local table" 0 \
	"$(ct_sql coord "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'tokens_a'::regclass")"
assert_eq "... whose value still decrypts on the coordinator" "$SECRET-a" \
	"$(ct_sql coord "SELECT token FROM tokens_a_decrypted WHERE id = 1")"

# 2. distributed first, then protected
ct_sql coord "CREATE TABLE tokens_b (tenant_id uuid NOT NULL, id bigint NOT NULL, token text,
	PRIMARY KEY (tenant_id, id)); SELECT create_distributed_table('tokens_b', 'tenant_id')" >/dev/null
assert_eq "protect_column of a distributed table is refused (0A000)" 0A000 \
	"$(ct_sqlstate coord "SELECT brandbos.protect_column('tokens_b', 'token')")"
assert_eq "... and registers nothing" 0 \
	"$(ct_sql coord "SELECT count(*) FROM brandbos.column_registry WHERE table_oid = 'tokens_b'::regclass")"
ct_sql coord "CREATE TABLE tokens_r (id bigint PRIMARY KEY, token text); SELECT create_reference_table('tokens_r')" >/dev/null
assert_eq "protect_column of a reference table is refused (0A000)" 0A000 \
	"$(ct_sqlstate coord "SELECT brandbos.protect_column('tokens_r', 'token')")"
shard=$(ct_psql w1 -c "SET citus.override_table_visibility = off" -c "SELECT 'public.' || min(relname) FROM pg_class WHERE relname ~ '^tokens_b_[0-9]+\$'")
assert_eq "protect_column of a shard on a worker is refused (0A000)" 0A000 \
	"$(ct_sqlstate w1 "SET citus.override_table_visibility = off; SELECT brandbos.protect_column('$shard', 'token')")"
ct_sql coord "INSERT INTO tokens_b VALUES (gen_random_uuid(), 1, 'not-a-secret')"

# no plaintext on any node, in any table (shards included)
for n in coord w1 w2; do
	found=$(ct_sql "$n" "SELECT count(*) FROM (
		SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
		 WHERE c.relkind = 'r' AND s.nspname = 'public' AND c.relname LIKE 'tokens%') r,
		LATERAL (SELECT * FROM pg_catalog.query_to_xml(format('SELECT * FROM %s', r.t), false, false, '')) x(v)
		WHERE x.v::text LIKE '%$SECRET%'")
	assert_eq "$n: no table holds the plaintext" 0 "$found"
done
sc_finish
