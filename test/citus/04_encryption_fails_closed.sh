#!/usr/bin/env bash
# What encryption on Citus still refuses fails closed (07 proves what works): distributing a
# protected table is refused with 0A000 in either shape of table, protect_column refuses
# reference tables, shards and calls on a worker with 0A000, and no plaintext of a protected
# column reaches any node, whatever order the calls come in.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ct_cluster
SECRET=refresh-token-citus-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

# 1. protected first, then distributed: refused, the table stays local
ct_sql coord "CREATE TABLE tokens_a (tenant_id uuid NOT NULL, id bigint NOT NULL, token text,
	PRIMARY KEY (tenant_id, id)); SELECT brandbos.protect_column('tokens_a', 'token')" >/dev/null
ct_sql coord "INSERT INTO tokens_a VALUES (gen_random_uuid(), 1, '$SECRET-a')"
assert_eq "distributing a protected table is refused (0A000)" 0A000 \
	"$(ct_sqlstate coord "SELECT create_distributed_table('tokens_a', 'tenant_id')")"
assert_eq "... and leaves it a local table" 0 \
	"$(ct_sql coord "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'tokens_a'::regclass")"
assert_eq "... whose value still decrypts on the coordinator" "$SECRET-a" \
	"$(ct_sql coord "SELECT token FROM tokens_a_decrypted WHERE id = 1")"
# the table named through a variable: the parse-time check cannot see it, the shards' triggers refuse
state=$(ct_sqlstate coord "DO \$\$DECLARE t regclass := 'tokens_a'; BEGIN PERFORM create_distributed_table(t, 'tenant_id'); END\$\$")
diag "create_distributed_table through a variable: $state"
check "... also when the table is passed in a variable" test "$state" != 00000
assert_eq "... which leaves it local too" 0 \
	"$(ct_sql coord "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'tokens_a'::regclass")"

# 2. distributed first: reference tables and shards are refused
ct_sql coord "CREATE TABLE tokens_b (tenant_id uuid NOT NULL, id bigint NOT NULL, token text,
	PRIMARY KEY (tenant_id, id)); SELECT create_distributed_table('tokens_b', 'tenant_id')" >/dev/null
ct_sql coord "CREATE TABLE tokens_r (id bigint PRIMARY KEY, token text); SELECT create_reference_table('tokens_r')" >/dev/null
assert_eq "protect_column of a reference table is refused (0A000)" 0A000 \
	"$(ct_sqlstate coord "SELECT brandbos.protect_column('tokens_r', 'token')")"
assert_eq "... and registers nothing" 0 \
	"$(ct_sql coord "SELECT count(*) FROM brandbos.column_registry WHERE table_oid = 'tokens_r'::regclass")"
shard=$(ct_psql w1 -c "SET citus.override_table_visibility = off" -c "SELECT 'public.' || min(relname) FROM pg_class WHERE relname ~ '^tokens_b_[0-9]+\$'")
assert_eq "protect_column of a shard on a worker is refused (0A000)" 0A000 \
	"$(ct_sqlstate w1 "SET citus.override_table_visibility = off; SELECT brandbos.protect_column('$shard', 'token')")"
assert_eq "protect_column of the distributed table on a worker is refused (0A000)" 0A000 \
	"$(ct_sqlstate w1 "SELECT brandbos.protect_column('tokens_b', 'token')")"
assert_eq "... and registers nothing there" 0 \
	"$(ct_sql w1 "SELECT count(*) FROM brandbos.column_registry")"
ct_sql coord "INSERT INTO tokens_b VALUES (gen_random_uuid(), 1, 'not-a-secret')"

# no plaintext on any node, in any table (shards included)
for n in coord w1 w2; do
	found=$(ct_psql "$n" -c "SET citus.override_table_visibility = off" -c "SELECT count(*) FROM (
		SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
		 WHERE c.relkind = 'r' AND s.nspname = 'public' AND c.relname LIKE 'tokens%') r,
		LATERAL (SELECT * FROM pg_catalog.query_to_xml(format('SELECT * FROM %s', r.t), false, false, '')) x(v)
		WHERE x.v::text LIKE '%$SECRET%'")
	assert_eq "$n: no table holds the plaintext" 0 "$found"
done
sc_finish
