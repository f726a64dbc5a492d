#!/usr/bin/env bash
# Tenant isolation on Citus fails closed: Citus re-creates a table's policies on its shards
# without AS RESTRICTIVE, which would OR brandbos's tenant policies with brandbos_base's
# "true" and show every tenant's rows; brandbos keeps them restrictive on the shards
# (citus_policies.c).  The request context does not reach the workers yet, so through the
# coordinator an application role sees no row of a distributed isolated table, with or
# without a context, and writes none.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ct_cluster
T1=11111111-1111-1111-1111-111111111111
T2=22222222-2222-2222-2222-222222222222

ct_sql coord "CREATE ROLE app LOGIN; GRANT brandbos_context_admin TO app;
	CREATE TABLE docs (tenant_id uuid NOT NULL, id bigint NOT NULL, body text, PRIMARY KEY (tenant_id, id));
	GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO app;
	INSERT INTO docs SELECT '$T1', g, 'one' FROM generate_series(1, 10) g;
	INSERT INTO docs SELECT '$T2', g, 'two' FROM generate_series(1, 7) g;
	SELECT brandbos.enable_tenant_isolation('docs');
	SELECT create_distributed_table('docs', 'tenant_id')" >/dev/null

# on every worker, each shard's brandbos_tenant_* policies are restrictive
for w in w1 w2; do
	read -r shards permissive < <(ct_psql "$w" -F ' ' -c "SET citus.override_table_visibility = off" -c "
		SELECT count(DISTINCT c.oid), count(*) FILTER (WHERE p.polpermissive)
		  FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid
		 WHERE c.relname ~ '^docs_[0-9]+\$' AND p.polname LIKE 'brandbos_tenant_%'")
	check "$w: holds shards of docs with tenant policies ($shards)" test "$shards" -gt 0
	assert_eq "$w: none of its shards' tenant policies is permissive" 0 "$permissive"
done

as_app() { CT_USER=app ct_psql coord -c "BEGIN" -c "SELECT brandbos.set_context('u1', '$T1')" -c "$1" -c "COMMIT" | sed -n '2p'; }
assert_eq "tenant 1 through the coordinator sees none of the 17 rows (the context does not reach the shards)" 0 \
	"$(as_app "SELECT count(*) FROM docs")"
assert_eq "without a context the application role sees no row" 0 \
	"$(CT_USER=app ct_sql coord "SELECT count(*) FROM docs")"
assert_eq "a filtered query for tenant 2's rows finds none" 0 \
	"$(as_app "SELECT count(*) FROM docs WHERE tenant_id = '$T2'")"
out=$(CT_USER=app ct_psql coord -v VERBOSITY=verbose -c "BEGIN" -c "SELECT brandbos.set_context('u1', '$T1')" \
	-c "INSERT INTO docs VALUES ('$T2', 99, 'cross')" 2>&1 || true)
state=$(sed -nE 's/^ERROR: +([0-9A-Z]{5}):.*/\1/p' <<<"$out" | head -1)
assert_eq "an insert into another tenant is refused (42501)" 42501 "$state"
assert_eq "the superuser still sees all 17 rows" 17 "$(ct_sql coord "SELECT count(*) FROM docs")"

# isolation after distribution is refused and changes nothing
ct_sql coord "CREATE TABLE notes (tenant_id uuid NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant_id, id));
	SELECT create_distributed_table('notes', 'tenant_id')" >/dev/null
check "enable_tenant_isolation after create_distributed_table fails" \
	test "$(ct_sqlstate coord "SELECT brandbos.enable_tenant_isolation('notes')")" != 00000
assert_eq "... and leaves no brandbos policy behind" 0 \
	"$(ct_sql coord "SELECT count(*) FROM pg_policy WHERE polrelid = 'notes'::regclass")"
sc_finish
