#!/usr/bin/env bash
# 23_audit_crash_recovery — the audit log across crashes while writers run.
#
# Two pgbench clients insert into an audited table and call log_event in one transaction.
#   round 1  kill -9 of one pgbench backend (the postmaster then resets every backend)
#   round 2  kill -9 of the postmaster and all its children, then a restart
#   round 3  kill -9 of the postmaster after seal_audit() built a block, before its commit
#   round 4  kill -9 of the postmaster while seal_audit() waits for an open writer (its saved
#            horizon names that writer's xid)
# After each crash: every committed insert has exactly its audit rows (both are in the same
# transaction), nothing committed before the crash is lost, seal_audit() seals everything
# left, verify_audit() is clean, and digests taken before the crash still verify.
#
# Sealing happens only while no writer runs (the concurrent case is scenario 20), so what is
# tested here is recovery: sequence values lost in the crash, transactions the crash aborted
# and the sealer's saved state must all end up as ordinary missing ids.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=audit_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/audit_lib.sh"

C=audit_crash
audit_cluster "$C" 55523 no
DIR=$(bb_clusterdir "$C")
LOG=$(bb_logfile "$C")

bb_psql "$C" -At >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE TABLE t (id bigserial PRIMARY KEY, v int);
SELECT brandbos.enable_audit('t');
SELECT count(brandbos.log_event('setup', 'crash-test', i::text)) FROM generate_series(1, 10) i;
SELECT brandbos.seal_audit();
SQL

cat >"$DIR/write.sql" <<'SQL'
\set v random(1, 1000000)
BEGIN;
INSERT INTO t (v) VALUES (:v);
SELECT brandbos.log_event('tick', 'pgbench', :v::text);
COMMIT;
SQL
chmod 0644 "$DIR/write.sql"

PGBENCH_PID=
start_pgbench() {   # start_pgbench ROUND SECONDS: two writers in the background
	PGHOST=$(bb_sockdir "$C") PGPORT=$(bb_port "$C") PGUSER=postgres \
		bb_run_as_pg timeout 90 "$PGBIN/pgbench" -n -c 2 -j 2 -T "$2" -f "$DIR/write.sql" postgres \
		>"$DIR/pgbench.$1.out" 2>&1 &
	PGBENCH_PID=$!
	BG_PIDS+=("$PGBENCH_PID")
}
PGBENCH_RC=
wait_pgbench() {   # sets PGBENCH_RC
	PGBENCH_RC=0
	wait "$PGBENCH_PID" || PGBENCH_RC=$?
}
wait_writing() {   # until at least N rows are in t (writers are running)
	local i
	for ((i = 0; i < 150; i++)); do
		if (( $(q "$C" "SELECT count(*) FROM t") >= $1 )); then return 0; fi
		sleep 0.1
	done
	echo "# fewer than $1 rows in t after 15 s" >&2
	return 1
}

# after a crash: the counts, sealing, verification and old digests
after_crash() {   # after_crash ROUND ROWS_BEFORE BLOCKS_BEFORE DIGEST_BEFORE
	local r=$1 rows_before=$2 blocks_before=$3 digest=$4 rows
	check "round $r: the server accepts queries again" wait_ready "$C" 60
	rows=$(q "$C" "SELECT count(*) FROM t")
	cmp_ge "$rows" "$rows_before" "round $r: no row committed before the crash is lost ($rows >= $rows_before)"
	is "$(q "$C" "SELECT count(*) FROM brandbos.audit_log WHERE action = 'insert' AND resource_type = 'public.t'")" "$rows" \
		"round $r: one insert entry per row of t"
	is "$(q "$C" "SELECT count(*) FROM t FULL JOIN (SELECT resource_id FROM brandbos.audit_log
	              WHERE action = 'insert' AND resource_type = 'public.t') a ON a.resource_id = t.id::text
	              WHERE a.resource_id IS NULL OR t.id IS NULL")" 0 \
		"round $r: the insert entries name exactly the ids of t"
	is "$(q "$C" "SELECT count(*) FROM brandbos.audit_log WHERE action = 'tick'")" "$rows" \
		"round $r: one log_event row per committed transaction"
	cmp_ge "$(q "$C" "SELECT count(*) FROM brandbos.audit_blocks")" "$blocks_before" \
		"round $r: every block sealed before the crash is still there"
	is "$(q "$C" "SELECT brandbos.verify_audit_digest(\$d\$$digest\$d\$::jsonb)")" t \
		"round $r: the digest taken before the crash verifies"
	check "round $r: seal_audit() seals every row left unsealed by the crash" seal_until_sealed "$C" 30
	is "$(q "$C" "SELECT count(*) FROM brandbos.audit_entries e WHERE NOT EXISTS
	              (SELECT 1 FROM brandbos.audit_blocks b WHERE e.id BETWEEN b.first_id AND b.last_id)")" 0 \
		"round $r: every row lies in a block's range"
	is "$(q "$C" "SELECT block_id || ' ' || coalesce(audit_id::text, '-') || ' ' || problem
	              FROM brandbos.verify_audit() LIMIT 10")" "" "round $r: verify_audit() is clean"
	is "$(q "$C" "SELECT brandbos.verify_audit_digest(brandbos.audit_digest())")" t \
		"round $r: a new digest verifies"
}

# ---- round 1: kill -9 of one backend -------------------------------------------------------
D=$(q "$C" "SELECT brandbos.audit_digest()")
blocks=$(q "$C" "SELECT count(*) FROM brandbos.audit_blocks")
start_pgbench 1 20
wait_writing 200
sleep 2
victim=$(q "$C" "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench'
                 AND backend_type = 'client backend' ORDER BY pid LIMIT 1")
rows=$(q "$C" "SELECT count(*) FROM t")
kill -9 "$victim"
wait_pgbench
echo "# round 1: killed backend $victim; pgbench exited $PGBENCH_RC"
is "$(grep -c "(PID $victim) was terminated by signal 9" "$LOG" || true)" 1 \
	"round 1: the postmaster saw backend $victim die of SIGKILL"
after_crash 1 "$rows" "$blocks" "$D"
cmp_ge "$(grep -c 'all server processes terminated; reinitializing' "$LOG" || true)" 1 \
	"round 1: the postmaster reset all backends (crash recovery)"

# ---- round 2: kill -9 of the postmaster ------------------------------------------------------
D=$(q "$C" "SELECT brandbos.audit_digest()")
blocks=$(q "$C" "SELECT count(*) FROM brandbos.audit_blocks")
start_pgbench 2 20
wait_writing "$(( $(q "$C" "SELECT count(*) FROM t") + 200 ))"
sleep 2
rows=$(q "$C" "SELECT count(*) FROM t")
bb_cluster_kill9 "$C"
wait_pgbench
echo "# round 2: killed the postmaster; pgbench exited $PGBENCH_RC"
recoveries=$(grep -c 'database system was interrupted\|not properly shut down' "$LOG" || true)
bb_cluster_start "$C"
cmp_ge "$(grep -c 'database system was interrupted\|not properly shut down' "$LOG" || true)" $((recoveries + 1)) \
	"round 2: the restarted server ran crash recovery"
after_crash 2 "$rows" "$blocks" "$D"

# a session in the background that holds a transaction open: background_session TAG SQL...
# (each SQL runs in the same session; the last one should be SELECT pg_sleep(60))
background_session() {
	local tag=$1 args=() a
	shift
	for a in "$@"; do args+=(-c "$a"); done
	(bb_psql "$C" -At "${args[@]}" >"$DIR/session.$tag.out" 2>&1 || true) &
	BG_PIDS+=("$!")
}
sleeping_pid() {   # the pid of the backend in pg_sleep(60), waiting up to 15 s for it
	local i pid
	for ((i = 0; i < 150; i++)); do
		pid=$(q "$C" "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(60)'")
		if [[ -n $pid ]]; then echo "$pid"; return 0; fi
		sleep 0.1
	done
	echo "# no session reached pg_sleep(60) within 15 s" >&2
	return 1
}

# ---- round 3: kill -9 of the postmaster after seal_audit() sealed, before it committed ----
D=$(q "$C" "SELECT brandbos.audit_digest()")
blocks=$(q "$C" "SELECT count(*) FROM brandbos.audit_blocks")
start_pgbench 3 4
wait_pgbench
is "$PGBENCH_RC" 0 "round 3: pgbench wrote for 4 s without a crash"
echo "# round 3: $(q "$C" "SELECT count(*) FROM brandbos.audit_log WHERE block_id IS NULL") unsealed rows"
rows=$(q "$C" "SELECT count(*) FROM t")
background_session 3 'BEGIN' 'SELECT brandbos.seal_audit()' 'SELECT pg_sleep(60)'
sleeping_pid >/dev/null
is "$(q "$C" "SELECT count(*) FROM brandbos.audit_blocks")" "$blocks" \
	"round 3: the sealing transaction is open, its block not yet visible"
bb_cluster_kill9 "$C"
bb_cluster_start "$C"
check "round 3: the server accepts queries again" wait_ready "$C" 60
is "$(q "$C" "SELECT count(*) FROM brandbos.audit_blocks")" "$blocks" \
	"round 3: the block of the uncommitted seal is gone after the crash"
after_crash 3 "$rows" "$blocks" "$D"
is "$(q "$C" "SELECT count(*) FROM t")" "$rows" "round 3: nothing was lost or added (no writer ran)"

# ---- round 4: kill -9 of the postmaster while the sealer waits for an open writer -----------
D=$(q "$C" "SELECT brandbos.audit_digest()")
blocks=$(q "$C" "SELECT count(*) FROM brandbos.audit_blocks")
rows=$(q "$C" "SELECT count(*) FROM t")
background_session 4 'BEGIN' 'INSERT INTO t (v) VALUES (-4)' \
	"SELECT brandbos.log_event('held', 'crash-test')" 'SELECT pg_sleep(60)'
writer=$(sleeping_pid)
writer_xid=$(q "$C" "SELECT backend_xid FROM pg_stat_activity WHERE pid = $writer")
# a later transaction commits, so that snapshots list the writer as running
after_id=$(q "$C" "SELECT brandbos.log_event('after', 'crash-test')")
is "$(q "$C" "SELECT brandbos.seal_audit()")" "" \
	"round 4: seal_audit() seals nothing while an earlier writer is still open"
is "$(q "$C" "SELECT $writer_xid = ANY (waiting_for) FROM brandbos.audit_seal_state")" t \
	"round 4: the sealer saved the open writer's xid as pending"
bb_cluster_kill9 "$C"
bb_cluster_start "$C"
check "round 4: the server accepts queries again" wait_ready "$C" 60
block=$(q "$C" "SELECT brandbos.seal_audit()")
cmp_ge "${block:-0}" 1 "round 4: after the crash seal_audit() seals the rows the open writer held back"
is "$(q "$C" "SELECT block_id = $block FROM brandbos.audit_log WHERE id = $after_id")" t \
	"round 4: ... including the row committed after the writer started"
cmp_ge "$(q "$C" "SELECT cardinality(missing_ids) FROM brandbos.audit_blocks WHERE block_id = $block")" 2 \
	"round 4: the crashed writer's two ids are recorded as missing"
is "$(q "$C" "SELECT count(*) FROM t WHERE v = -4")" 0 "round 4: the crashed writer's row is gone"
after_crash 4 "$rows" "$blocks" "$D"

finish
