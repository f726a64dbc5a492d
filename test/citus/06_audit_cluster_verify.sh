#!/usr/bin/env bash
# Audit on Citus: every node keeps and seals its own chain; the cluster digest is the set of
# every node's audit_digest(), and verifying the cluster is verify_audit() on every node (from
# the coordinator, with run_command_on_all_nodes).  A superuser who tampers with a worker's
# log, with its guard triggers disabled through the catalog, is caught on that worker.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ct_cluster

ct_sql coord "CREATE TABLE orders (tenant_id uuid NOT NULL, id bigint NOT NULL, note text,
	PRIMARY KEY (tenant_id, id));
	SELECT brandbos.enable_audit('orders');
	SELECT create_distributed_table('orders', 'tenant_id')" >/dev/null
ct_sql coord "INSERT INTO orders SELECT gen_random_uuid(), g, 'n' || g FROM generate_series(1, 40) g"
ct_sql coord "UPDATE orders SET note = note || '!' WHERE id <= 10"

# seal on every node, then the cluster digest: one digest per node
ct_sql coord "SELECT count(*) FROM run_command_on_all_nodes('SELECT brandbos.seal_audit()') WHERE success" >/dev/null
sealed=$(ct_sql coord "SELECT count(*) FROM run_command_on_all_nodes(
	\$\$SELECT count(*) FROM brandbos.audit_entries e WHERE NOT EXISTS (SELECT 1 FROM brandbos.audit_blocks b
	  WHERE e.id BETWEEN b.first_id AND b.last_id)\$\$) WHERE success AND result = '0'")
assert_eq "seal_audit() on every node leaves no entry unsealed on any of the 3 nodes" 3 "$sealed"
for n in coord w1 w2; do
	ct_sql "$n" "SELECT brandbos.audit_digest()" >"$BB_WORK/digest.$n"
done
assert_eq "each node signs its digest with the same public key (one root key)" 1 \
	"$(cat "$BB_WORK"/digest.* | python3 -c 'import sys, json; print(len({json.loads(l)["public_key"] for l in sys.stdin}))')"

cluster_verify() {
	ct_sql coord "SELECT string_agg(n.nodeport::text || ':' || r.result, ' ' ORDER BY n.nodeport)
	  FROM run_command_on_all_nodes('SELECT count(*) FROM brandbos.verify_audit()') r
	  JOIN pg_dist_node n USING (nodeid)"
}
expect_clean=$(for n in coord w1 w2; do echo -n "$(bb_port "$n"):0 "; done | tr ' ' '\n' | sort -t: -k1n | paste -sd' ')
assert_eq "verify_audit() finds no problem on any node" "$expect_clean" "$(cluster_verify)"
for n in coord w1 w2; do
	assert_eq "$n: its saved digest verifies" 0 \
		"$(ct_sql "$n" "SELECT count(*) FROM brandbos.verify_audit(NULL, '$(cat "$BB_WORK/digest.$n")'::jsonb)")"
done

# ---- a superuser tampers with w2's log through the catalog ---------------------------------
ct_psql w2 <<'SQL'
BEGIN;
UPDATE pg_trigger SET tgenabled = 'D'
 WHERE tgrelid IN ('brandbos.audit_entries'::regclass, 'brandbos.audit_blocks'::regclass);
UPDATE pg_class SET relhastriggers = true
 WHERE oid IN ('brandbos.audit_entries'::regclass, 'brandbos.audit_blocks'::regclass);
COMMIT;
SQL
victim=$(ct_sql w2 "SELECT min(id) FROM brandbos.audit_entries WHERE action = 'update'")
ct_sql w2 "UPDATE brandbos.audit_entries SET details = '{\"forged\": true}' WHERE id = $victim" >/dev/null
ct_sql w2 "DELETE FROM brandbos.audit_entries WHERE id = (SELECT max(id) FROM brandbos.audit_entries)" >/dev/null

result=$(cluster_verify)
w2port=$(bb_port w2)
assert_match "the cluster check reports problems on w2" "(^| )$w2port:[1-9]" "$result"
for n in coord w1; do
	assert_match "... and none on $n" "(^| )$(bb_port "$n"):0( |$)" "$result"
done
assert_match "w2's verify_audit() names the changed entry" "^$victim\$" \
	"$(ct_sql w2 "SELECT audit_id FROM brandbos.verify_audit() WHERE audit_id = $victim LIMIT 1")"
assert_eq "w2's saved digest no longer verifies against its log" t \
	"$(ct_sql w2 "SELECT count(*) > 0 FROM brandbos.verify_audit(NULL, '$(cat "$BB_WORK/digest.w2")'::jsonb)")"
sc_finish
