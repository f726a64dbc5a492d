#!/usr/bin/env bash
# Tenant isolation on Citus: enable_tenant_isolation before or after create_distributed_table,
# and on reference tables; through the coordinator each tenant sees and writes exactly its
# rows, with no context nothing; the shards' policies stay restrictive (citus_policies.c); a
# query filtered on the tenant column is routed to one shard.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ct_cluster
T1=11111111-1111-1111-1111-111111111111
T2=22222222-2222-2222-2222-222222222222

ct_psql coord -c "CREATE ROLE app LOGIN" -c "GRANT brandbos_context_admin TO app" \
	-c "CREATE TABLE docs (tenant_id uuid NOT NULL, id bigint NOT NULL, body text, PRIMARY KEY (tenant_id, id))" \
	-c "INSERT INTO docs SELECT '$T1', g, 'one' FROM generate_series(1, 10) g" \
	-c "INSERT INTO docs SELECT '$T2', g, 'two' FROM generate_series(1, 7) g" \
	-c "SELECT brandbos.enable_tenant_isolation('docs')" \
	-c "SELECT create_distributed_table('docs', 'tenant_id')" \
	-c "CREATE TABLE notes (tenant_id uuid NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant_id, id))" \
	-c "SELECT create_distributed_table('notes', 'tenant_id')" \
	-c "INSERT INTO notes SELECT CASE WHEN g % 3 = 0 THEN '$T2'::uuid ELSE '$T1'::uuid END, g FROM generate_series(1, 30) g" \
	-c "CREATE TABLE plans (tenant_id uuid NOT NULL, id bigint PRIMARY KEY, name text)" \
	-c "SELECT create_reference_table('plans')" \
	-c "INSERT INTO plans VALUES ('$T1', 1, 'gold'), ('$T2', 2, 'free'), ('$T2', 3, 'trial')" \
	-c "CREATE TABLE labels (tenant_id uuid NOT NULL, id bigint PRIMARY KEY)" \
	-c "INSERT INTO labels VALUES ('$T1', 1), ('$T2', 2)" \
	-c "SELECT brandbos.enable_tenant_isolation('labels')" \
	-c "SELECT create_reference_table('labels')" \
	-c "GRANT SELECT, INSERT, UPDATE, DELETE ON docs, notes, plans, labels TO app" >/dev/null
assert_eq "enable_tenant_isolation after create_distributed_table succeeds" 00000 \
	"$(ct_sqlstate coord "SELECT brandbos.enable_tenant_isolation('notes')")"
assert_eq "... and on a reference table" 00000 \
	"$(ct_sqlstate coord "SELECT brandbos.enable_tenant_isolation('plans')")"
assert_eq "the distribution column gets no default; a reference table's tenant column does" "notes: plans:brandbos.current_tenant_uuid()" \
	"$(ct_sql coord "SELECT string_agg(c.relname || ':' || coalesce(pg_get_expr(d.adbin, d.adrelid), ''), ' ' ORDER BY c.relname)
		FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
		LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum WHERE c.relname IN ('notes', 'plans')")"

# on every worker, each shard's brandbos_tenant_* policies are restrictive
for w in w1 w2; do
	read -r shards permissive < <(ct_psql "$w" -F ' ' -c "SET citus.override_table_visibility = off" -c "
		SELECT count(DISTINCT c.oid), count(*) FILTER (WHERE p.polpermissive)
		  FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid
		 WHERE c.relname ~ '^(docs|notes|plans|labels)_[0-9]+\$' AND p.polname LIKE 'brandbos_tenant_%'")
	check "$w: holds isolated shards ($shards)" test "$shards" -gt 0
	assert_eq "$w: none of their tenant policies is permissive" 0 "$permissive"
done

# as_app TENANT SQL...: run SQL as app through the coordinator, in one transaction with TENANT's context
as_app() {
	local t=$1 args=() q; shift
	for q in "$@"; do args+=(-c "$q"); done
	CT_USER=app ct_psql coord -c "BEGIN" -c "SELECT brandbos.set_context('u-$t', '$t')" "${args[@]}" -c "COMMIT" | sed '1d'
}
counts="SELECT (SELECT count(*) FROM docs) || ' ' || (SELECT count(*) FROM notes) || ' ' || (SELECT count(*) FROM plans) || ' ' || (SELECT count(*) FROM labels)"
assert_eq "tenant 1 sees exactly its rows of docs, notes, plans, labels" "10 20 1 1" "$(as_app $T1 "$counts")"
assert_eq "tenant 2 sees exactly its rows" "7 10 2 1" "$(as_app $T2 "$counts")"
assert_eq "without a context the application role sees no row" "0 0 0 0" "$(CT_USER=app ct_sql coord "$counts")"
assert_eq "tenant 1 filtering on tenant 2 finds nothing" 0 \
	"$(as_app $T1 "SELECT count(*) FROM docs WHERE tenant_id = '$T2'")"

# writes
as_app $T1 "INSERT INTO docs (id, body) VALUES (100, 'by default')" "INSERT INTO notes VALUES ('$T1', 100)" \
	"INSERT INTO plans (id, name) VALUES (10, 'added')" >/dev/null
assert_eq "tenant 1 writes its own rows (docs by the column's default)" "11 21 2 1" "$(as_app $T1 "$counts")"
assert_eq "... and they are tenant 1's" 3 \
	"$(ct_sql coord "SELECT (SELECT count(*) FROM docs WHERE id = 100 AND tenant_id = '$T1') + (SELECT count(*) FROM notes WHERE id = 100 AND tenant_id = '$T1') + (SELECT count(*) FROM plans WHERE id = 10 AND tenant_id = '$T1')")"
for stmt in "INSERT INTO docs VALUES ('$T2', 101, 'cross')" "INSERT INTO notes VALUES ('$T2', 101)" \
	"INSERT INTO plans VALUES ('$T2', 11, 'cross')"; do
	out=$(CT_USER=app ct_psql coord -v VERBOSITY=verbose -c "BEGIN" -c "SELECT brandbos.set_context('u1', '$T1')" -c "$stmt" 2>&1 || true)
	assert_eq "a row of tenant 2 written by tenant 1 is refused (42501): ${stmt%% VALUES*}" 42501 \
		"$(sed -nE 's/^ERROR: +([0-9A-Z]{5}):.*/\1/p' <<<"$out" | head -1)"
done
assert_eq "tenant 1's UPDATE and DELETE of tenant 2's rows touch nothing" "0 0" \
	"$(as_app $T1 "WITH u AS (UPDATE docs SET body = 'x' WHERE tenant_id = '$T2' RETURNING 1) SELECT count(*) FROM u" \
		"WITH d AS (DELETE FROM notes WHERE tenant_id = '$T2' RETURNING 1) SELECT count(*) FROM d" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "the superuser sees every row: 18 docs, 31 notes, 4 plans, 2 labels" "18 31 4 2" "$(ct_sql coord "$counts")"

# routing: a filter on the tenant column prunes to one shard; without it every shard is read
tasks() { as_app $T1 "EXPLAIN $1" | sed -nE 's/.*Task Count: ([0-9]+).*/\1/p' | head -1; }
assert_eq "WHERE tenant_id = <tenant> runs one task" 1 "$(tasks "SELECT count(*) FROM docs WHERE tenant_id = '$T1'")"
assert_eq "without the filter every shard is a task" \
	"$(ct_sql coord "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'docs'::regclass")" \
	"$(tasks "SELECT count(*) FROM docs")"

# a client connecting to a worker directly sees nothing of the shards
assert_eq "worker w1, as app, no context: no row of docs" 0 "$(CT_USER=app ct_sql w1 "SELECT count(*) FROM docs")"
sc_finish
