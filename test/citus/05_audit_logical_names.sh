#!/usr/bin/env bash
# Audit entries written on a worker, by the audit trigger Citus copies to a shard, name the
# logical table (not the shard), carry the request's actor and address (forwarded with the
# transaction, citus_context.c), TRUNCATE included; a table that merely looks like a shard keeps
# its name.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ct_cluster

ct_sql coord "CREATE TABLE orders (tenant_id uuid NOT NULL, id bigint NOT NULL, note text,
	PRIMARY KEY (tenant_id, id));
	SELECT brandbos.enable_audit('orders');
	SELECT create_distributed_table('orders', 'tenant_id')" >/dev/null
ct_sql coord "INSERT INTO orders SELECT gen_random_uuid(), g, 'n' || g FROM generate_series(1, 20) g"

total=0
for w in w1 w2; do
	n=$(ct_sql "$w" "SELECT count(*) FROM brandbos.audit_entries WHERE action = 'insert'")
	names=$(ct_sql "$w" "SELECT string_agg(DISTINCT resource_type, ',') FROM brandbos.audit_entries WHERE action = 'insert'")
	if (( n > 0 )); then
		assert_eq "$w: its $n insert entries name the logical table" "public.orders" "$names"
	else
		fail "$w: no insert entry was written on this worker" "shards: $(ct_sql coord "SELECT string_agg(nodeport::text, ',') FROM citus_shards")"
	fi
	total=$((total + n))
done
assert_eq "one entry per inserted row across the workers" 20 "$total"

# TRUNCATE through the coordinator reaches every shard; each worker records it, under the
# logical table's name, with the rows its shards held
ct_sql coord "TRUNCATE orders"
truncated=0
for w in w1 w2; do
	names=$(ct_sql "$w" "SELECT coalesce(string_agg(DISTINCT resource_type, ','), '-') FROM brandbos.audit_entries WHERE action = 'truncate'")
	assert_eq "$w: its TRUNCATE entries name the logical table" "public.orders" "$names"
	truncated=$((truncated + $(ct_sql "$w" "SELECT coalesce(sum((details->>'row_count')::bigint), 0) FROM brandbos.audit_entries WHERE action = 'truncate'")))
done
assert_eq "the TRUNCATE entries of the workers count every row removed" 20 "$truncated"

# the request's actor and client address reach the entries written on the workers
T1=11111111-1111-1111-1111-111111111111
ct_sql coord "CREATE ROLE app LOGIN; GRANT brandbos_context_admin TO app; GRANT SELECT, INSERT ON orders TO app" >/dev/null
CT_USER=app ct_psql coord -c "BEGIN" -c "SELECT brandbos.set_context('u-audit', '$T1')" \
	-c "SELECT brandbos.set_request('203.0.113.7', 'agent/1.0')" \
	-c "INSERT INTO orders SELECT '$T1', g, 'by app' FROM generate_series(101, 105) g" -c "COMMIT" >/dev/null
actors=""
for w in w1 w2; do
	actors+=$(ct_sql "$w" "SELECT string_agg(DISTINCT concat_ws('|', user_id, tenant_id, db_user, host(ip_address), user_agent), ',')
		FROM brandbos.audit_entries WHERE action = 'insert' AND resource_id LIKE '%10_%' AND db_user = 'app'")
done
assert_eq "the 5 rows' entries on the worker carry the request's user, tenant, role, address, agent" \
	"u-audit|$T1|app|203.0.113.7|agent/1.0" "$actors"
assert_eq "... one entry per row" 5 \
	"$(( $(ct_sql w1 "SELECT count(*) FROM brandbos.audit_entries WHERE db_user = 'app'") + $(ct_sql w2 "SELECT count(*) FROM brandbos.audit_entries WHERE db_user = 'app'") ))"

# a local table whose name ends like a shard's, with a shard id that exists, is not renamed
shardid=$(ct_sql coord "SELECT min(shardid) FROM pg_dist_shard WHERE logicalrelid = 'orders'::regclass")
ct_sql w1 "SET citus.enable_ddl_propagation = off; CREATE SCHEMA other; CREATE TABLE other.orders_$shardid (id int PRIMARY KEY);
	SELECT brandbos.enable_audit('other.orders_$shardid');
	INSERT INTO other.orders_$shardid VALUES (1)" >/dev/null
assert_eq "a look-alike table in another schema keeps its own name" "other.orders_$shardid" \
	"$(ct_sql w1 "SELECT resource_type FROM brandbos.audit_entries ORDER BY id DESC LIMIT 1")"
ct_sql coord "CREATE TABLE plain_$shardid (id int PRIMARY KEY); SELECT brandbos.enable_audit('plain_$shardid');
	INSERT INTO plain_$shardid VALUES (1)" >/dev/null
assert_eq "a local table on the coordinator named like a shard keeps its name" "public.plain_$shardid" \
	"$(ct_sql coord "SELECT resource_type FROM brandbos.audit_entries ORDER BY id DESC LIMIT 1")"
# an attacker's own table beside the logical one, named like its shard, keeps its name
ct_sql coord "CREATE ROLE mallory LOGIN; GRANT CREATE ON SCHEMA public TO mallory" >/dev/null
CT_USER=mallory ct_sql coord "SET citus.enable_ddl_propagation = off; CREATE TABLE public.orders_$shardid (id int PRIMARY KEY)" >/dev/null
ct_sql coord "SELECT brandbos.enable_audit('public.orders_$shardid'); INSERT INTO public.orders_$shardid VALUES (1)" >/dev/null
assert_eq "mallory's public.orders_<shardid> on the coordinator is not taken for a shard of orders" \
	"public.orders_$shardid" "$(ct_sql coord "SELECT resource_type FROM brandbos.audit_entries ORDER BY id DESC LIMIT 1")"
sc_finish
