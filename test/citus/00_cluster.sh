#!/usr/bin/env bash
# The harness itself: three nodes, Citus and brandbos on each, a distributed table routed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ct_cluster

assert_eq "two workers are active" 2 "$(ct_sql coord "SELECT count(*) FROM citus_get_active_worker_nodes()")"
for n in coord w1 w2; do
	assert_eq "$n: citus and brandbos are installed" "brandbos citus" \
		"$(ct_sql "$n" "SELECT string_agg(extname, ' ' ORDER BY extname) FROM pg_extension WHERE extname IN ('citus','brandbos')")"
	assert_eq "$n: root key loaded" t "$(ct_sql "$n" "SELECT brandbos.root_key_loaded()")"
done
ct_sql coord "CREATE TABLE t (tenant_id uuid, v int); SELECT create_distributed_table('t', 'tenant_id')" >/dev/null
ct_sql coord "INSERT INTO t SELECT gen_random_uuid(), g FROM generate_series(1, 100) g"
assert_eq "rows spread over both workers" 2 \
	"$(ct_sql coord "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 't'::regclass AND shard_size >= 0")"
assert_eq "100 rows through the coordinator" 100 "$(ct_sql coord "SELECT count(*) FROM t")"
sc_finish
