#!/usr/bin/env bash
# 34_isolation_partition_race — a partition that joins an isolated table while isolation is
# being enabled, from another session, is isolated all the same (SPEC section 4).
#
# The table owner (not a superuser) runs two sessions:
#   1. session A enables tenant isolation and holds its transaction open; session B creates
#      one partition and attaches another meanwhile (both wait for A): after both commit,
#      each new partition has forced row level security and the four restrictive policies;
#   2. session B attaches a partition and holds its transaction open; session A enables
#      tenant isolation meanwhile (it waits for B): after both commit, the attached
#      partition is isolated too;
#   3. as the tenant application role (GRANT on every table of the schema), tenant A sees
#      no row of tenant B through any of these partitions.
# Run with shared_preload_libraries.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C=s34_isolation_race
sc_cluster "$C" "${BB_PORT_S34:-55534}" yes
DIR=$(bb_clusterdir "$C")

bb_psql "$C" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE ROLE owner32 LOGIN;
CREATE ROLE app32 LOGIN;
GRANT brandbos_context_admin TO app32;
CREATE SCHEMA s32 AUTHORIZATION owner32;
GRANT USAGE ON SCHEMA s32 TO app32;
SET ROLE owner32;
CREATE TABLE s32.one (id int, tenant_id text, body text) PARTITION BY RANGE (id);
CREATE TABLE s32.one_1 PARTITION OF s32.one FOR VALUES FROM (0) TO (100);
CREATE TABLE s32.one_att (id int, tenant_id text, body text);
CREATE TABLE s32.two (id int, tenant_id text, body text) PARTITION BY RANGE (id);
CREATE TABLE s32.two_1 PARTITION OF s32.two FOR VALUES FROM (0) TO (100);
CREATE TABLE s32.two_att (id int, tenant_id text, body text);
INSERT INTO s32.one_att VALUES (201, 'tenant-a', 'a'), (202, 'tenant-b', 'b');
INSERT INTO s32.two_att VALUES (201, 'tenant-a', 'a'), (202, 'tenant-b', 'b');
SQL

# a session of the table owner (not a superuser): SQL on stdin
owner_psql() { { echo 'SET ROLE owner32;'; cat; } | bb_psql "$C" -v ON_ERROR_STOP=1 -At -f -; }

isolated() {
	bb_psql "$C" -At -c "SELECT c.relrowsecurity AND c.relforcerowsecurity
	  AND (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND NOT p.polpermissive
	        AND p.polname::text LIKE 'brandbos_tenant_%') = 4
	  FROM pg_class c WHERE c.oid = '$1'::regclass"
}

# ---- 1. isolation first, partitions join while it is open ----------------------------------
diag "1. session A enables isolation and waits; session B adds partitions meanwhile"
owner_psql >"$DIR/a1.out" 2>&1 <<<"BEGIN; SELECT brandbos.enable_tenant_isolation('s32.one'); SELECT pg_sleep(3); COMMIT;" &
a=$!
sleep 1
owner_psql >"$DIR/b1.out" 2>&1 <<<"CREATE TABLE s32.one_2 PARTITION OF s32.one FOR VALUES FROM (100) TO (200);" &
b=$!
owner_psql >"$DIR/c1.out" 2>&1 <<<"ALTER TABLE s32.one ATTACH PARTITION s32.one_att FOR VALUES FROM (200) TO (300);" &
c=$!
rc=0; wait "$a" || rc=$?
assert_eq "session A committed the isolation" 0 "$rc"
rc=0; wait "$b" || rc=$?
assert_eq "session B created its partition after A" 0 "$rc"
rc=0; wait "$c" || rc=$?
assert_eq "session B attached its table after A" 0 "$rc"
assert_eq "the partition created meanwhile is isolated" t "$(isolated s32.one_2)"
assert_eq "the table attached meanwhile is isolated" t "$(isolated s32.one_att)"

# ---- 2. a partition joins first and is open while isolation is enabled ----------------------
diag "2. session B attaches a partition and waits; session A enables isolation meanwhile"
owner_psql >"$DIR/b2.out" 2>&1 \
	<<<"BEGIN; ALTER TABLE s32.two ATTACH PARTITION s32.two_att FOR VALUES FROM (200) TO (300); SELECT pg_sleep(3); COMMIT;" &
b=$!
sleep 1
rc=0; owner_psql >"$DIR/a2.out" 2>&1 <<<"SELECT brandbos.enable_tenant_isolation('s32.two');" || rc=$?
assert_eq "session A's isolation waited for B and committed" 0 "$rc"
rc=0; wait "$b" || rc=$?
assert_eq "session B attached its table" 0 "$rc"
assert_eq "the table attached before isolation committed is isolated" t "$(isolated s32.two_att)"

# ---- 3. the tenant's view --------------------------------------------------------------------
bb_psql "$C" -c "GRANT SELECT, UPDATE, DELETE ON ALL TABLES IN SCHEMA s32 TO app32" >/dev/null
bb_psql "$C" -c "INSERT INTO s32.one VALUES (101, 'tenant-a', 'a'), (102, 'tenant-b', 'b')" >/dev/null
got=$(bb_psql "$C" -q -At -f - 2>&1 <<'SQL'
SET ROLE app32;
BEGIN;
SELECT brandbos.set_context('user-a', 'tenant-a') \g /dev/null
SELECT (SELECT count(*) FROM s32.one_2 WHERE tenant_id = 'tenant-b') || ',' ||
         (SELECT count(*) FROM s32.one_att WHERE tenant_id = 'tenant-b') || ',' ||
         (SELECT count(*) FROM s32.two_att WHERE tenant_id = 'tenant-b') || ',' ||
         (SELECT count(*) FROM s32.two_att);
COMMIT;
SQL
)
assert_eq "tenant A sees no tenant B row through the racing partitions (and its own row)" "0,0,0,1" "$got"

sc_finish
