#!/usr/bin/env bash
# 26_audit_seal_not_stalled — an open transaction of an ordinary login role does not stop
# the sealing of everybody else's audit rows; a transaction that took an audit id holds back
# its own id and the ids after it, and only until it ends.
#
# A preloaded cluster seals every 200 ms.  The login role mallory, who writes no audit row,
# holds open in turn: a transaction with an xid (BEGIN; SELECT txid_current()), a REPEATABLE
# READ snapshot, and a prepared transaction with an xid.  Meanwhile the role app logs events
# and makes audited inserts; those rows must be sealed within 4 s (20 intervals) each time,
# and verify_audit() must stay clean after mallory's transaction ends.
# Then app itself holds a transaction that took an audit id (by log_event, by an audited
# INSERT, and prepared); rows logged after it must stay unsealed while it is open (sealing
# them would record its id as rolled back although it may still commit), rows from before it
# stay sealed, and everything is sealed, with a clean verification, once it commits or rolls
# back (a rolled-back id is then one of its block's missing_ids).  The prepared writer
# survives a server restart and still holds sealing back afterwards.
# Last, with the worker slowed to once an hour, an auditor's seal_audit() (the only sealer
# without preload) seals while mallory's transaction is open, and seals its own uncommitted
# row with it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=audit_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/audit_lib.sh"

C=audit_not_stalled
audit_cluster "$C" 55526 yes "brandbos.audit_seal_interval = 200ms" "max_prepared_transactions = 4"
DIR=$(bb_clusterdir "$C")
SOCK=$(bb_sockdir "$C")
PORT=$(bb_port "$C")

bb_psql "$C" -At >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE ROLE mallory LOGIN;
CREATE ROLE app LOGIN;
CREATE TABLE t (id bigserial PRIMARY KEY, v int);
SELECT brandbos.enable_audit('t');
GRANT SELECT, INSERT ON t TO app, mallory;
GRANT USAGE ON SEQUENCE t_id_seq TO app, mallory;
CREATE TABLE plain (v int);   -- not audited
GRANT SELECT, INSERT ON plain TO mallory;
SQL

# ---- background psql sessions (a FIFO each) -------------------------------------------------
# bg_open NAME ROLE      a psql of ROLE reading statements from a FIFO
# bg_run NAME SQL        send SQL and wait until it ran; BG_OUT = its output (errors as
#                        "ERROR:  <SQLSTATE>"); returns 1 after 30 s
# bg_close NAME
declare -A BG_FD BG_PID BG_SEQ BG_POS
BG_OUT=
bg_open() {
	local name=$1 role=$2 fifo="$DIR/bg_$1.in" fd
	rm -f "$fifo"
	mkfifo -m 0600 "$fifo"
	: >"$DIR/bg_$name.out"
	chmod 0666 "$DIR/bg_$name.out"
	bb_run_as_pg "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=0 -v VERBOSITY=sqlstate \
		-h "$SOCK" -p "$PORT" -U "$role" -d "$BB_DB" <"$fifo" >"$DIR/bg_$name.out" 2>&1 &
	BG_PID[$name]=$!
	BG_PIDS+=("$!")
	exec {fd}>"$fifo"
	BG_FD[$name]=$fd
	BG_SEQ[$name]=0
	BG_POS[$name]=0
}
bg_run() {
	local name=$1 i seq
	printf '%s\n' "$2" >&"${BG_FD[$name]}"
	seq=$((BG_SEQ[$name] + 1))
	BG_SEQ[$name]=$seq
	printf '\\echo __bg_mark_%s\n' "$seq" >&"${BG_FD[$name]}"
	for ((i = 0; i < 600; i++)); do
		if grep -qx "__bg_mark_$seq" "$DIR/bg_$name.out"; then
			BG_OUT=$(awk -v from="${BG_POS[$name]}" -v mark="__bg_mark_$seq" \
				'NR > from && $0 != mark && $0 !~ /^__bg_mark_/ { print } $0 == mark { exit }' "$DIR/bg_$name.out")
			BG_POS[$name]=$(grep -nx "__bg_mark_$seq" "$DIR/bg_$name.out" | cut -d: -f1)
			return 0
		fi
		sleep 0.05
	done
	BG_OUT="(timed out after 30 s)"
	return 1
}
bg_close() {
	local name=$1 fd=${BG_FD[$1]}
	printf '\\q\n' >&"$fd" || true
	exec {fd}>&-
	wait "${BG_PID[$name]}" || true
}

# ---- helpers --------------------------------------------------------------------------------
as_app() { bb_run_as_pg "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U app -d "$BB_DB" -c "$1"; }
# app's traffic: two events and two audited inserts, each its own transaction; prints the
# highest audit id they took
app_traffic() {
	local tag=$1
	as_app "SELECT brandbos.log_event('ping', 'scenario26', '$tag-1')" >/dev/null
	as_app "INSERT INTO t (v) VALUES (1)" >/dev/null
	as_app "INSERT INTO t (v) VALUES (2)" >/dev/null
	as_app "SELECT brandbos.log_event('ping', 'scenario26', '$tag-2')"
}
is_sealed() { q "$C" "SELECT block_id IS NOT NULL FROM brandbos.audit_log WHERE id = $1"; }
# sealed_within ID SECONDS: yes when row ID has a block within SECONDS (polled)
sealed_within() {
	local id=$1 limit=$2 start i
	start=$(date +%s%N)
	for ((i = 0; ; i++)); do
		if [[ $(is_sealed "$id") == t ]]; then echo yes; return; fi
		if (( ($(date +%s%N) - start) / 1000000 > limit * 1000 )); then echo no; return; fi
		sleep 0.1
	done
}
unsealed_upto() { q "$C" "SELECT count(*) FROM brandbos.audit_log WHERE id <= $1 AND block_id IS NULL"; }
verify_clean() {
	is "$(q "$C" "SELECT block_id || ' ' || coalesce(audit_id::text, '-') || ' ' || problem
	              FROM brandbos.verify_audit() LIMIT 10")" "" "$1: verify_audit() is clean"
}
all_accounted() {   # every id handed out is a sealed row or a recorded missing id
	is "$(q "$C" "SELECT count(*) FROM generate_series(1, (SELECT last_value FROM brandbos.audit_log_id_seq)) g(id)
	              WHERE NOT EXISTS (SELECT 1 FROM brandbos.audit_log l WHERE l.id = g.id AND l.block_id IS NOT NULL)
	                AND NOT EXISTS (SELECT 1 FROM brandbos.audit_blocks b WHERE g.id = ANY (b.missing_ids))")" 0 \
		"$1: every id handed out is a sealed row or a recorded rolled-back id"
}

is "$(sealed_within "$(app_traffic warmup)" 10)" yes "warm-up: the background sealer seals app's rows"

# ---- 1. unrelated open transactions of an ordinary login role --------------------------------
# hold_case TAG OPEN_SQL END_SQL
hold_case() {
	local tag=$1 open=$2 end=$3 last
	bg_open m mallory
	bg_run m "$open"
	is "$(q "$C" "SELECT (SELECT count(*) FROM pg_stat_activity WHERE usename = 'mallory'
	                        AND state = 'idle in transaction' AND backend_xid IS NOT NULL)
	                   + (SELECT count(*) FROM pg_prepared_xacts WHERE owner = 'mallory')")" 1 \
		"$tag: mallory holds a transaction with an xid open"
	last=$(app_traffic "$tag")
	is "$(sealed_within "$last" 4)" yes "$tag: app's later events and audited inserts are sealed within 4 s"
	is "$(unsealed_upto "$last")" 0 "$tag: no row up to app's last one is left unsealed"
	verify_clean "$tag (transaction open)"
	bg_run m "$end"
	is "$(printf '%s' "$BG_OUT" | grep -c ERROR || true)" 0 "$tag: mallory's transaction ends without error"
	bg_close m
	last=$(app_traffic "$tag-after")
	is "$(sealed_within "$last" 4)" yes "$tag: rows after it ended are sealed too"
	verify_clean "$tag (transaction ended)"
}

hold_case "open xid" "BEGIN; SELECT txid_current() > 0;" "COMMIT;"
hold_case "open write to a table not audited" "BEGIN; INSERT INTO plain VALUES (1);" "ROLLBACK;"
hold_case "repeatable read snapshot" \
	"BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) >= 0 FROM t; SELECT txid_current() > 0;" "COMMIT;"
# INSERT into audit_entries is refused, but its parse takes the writer's lock first: a
# refused attempt inside a savepoint must not leave that lock (and a stall) behind
hold_case "refused insert into audit_entries" \
	"BEGIN; SELECT txid_current() > 0; SAVEPOINT s; INSERT INTO brandbos.audit_entries (id) VALUES (0); ROLLBACK TO s;" \
	"COMMIT;"
max_prep=$(q "$C" "SHOW max_prepared_transactions")
if (( max_prep > 0 )); then
	hold_case "prepared transaction" \
		"BEGIN; SELECT txid_current() > 0; PREPARE TRANSACTION 'mallory_1';" "COMMIT PREPARED 'mallory_1';"
else
	skip "prepared transaction" "max_prepared_transactions = 0"
fi

# ---- 2. a transaction that took an audit id and stays open -----------------------------------
held_back() {   # held_back TAG HELD_ID LAST_ID
	is "$(q "$C" "SELECT count(*) FROM brandbos.audit_log WHERE id > $2 AND id <= $3 AND block_id IS NOT NULL")" 0 \
		"$1: no row after the open writer's id is sealed while it is open"
	is "$(q "$C" "SELECT count(*) FROM brandbos.audit_blocks WHERE last_id >= $2")" 0 \
		"$1: no block covers the open writer's id"
}
# writer_case TAG OPEN_SQL(takes one audit id) END_SQL committed|rolled_back [restart]
writer_case() {
	local tag=$1 open=$2 end=$3 outcome=$4 restart=${5:-} before held last after_end
	before=$(app_traffic "$tag-before")
	is "$(sealed_within "$before" 4)" yes "$tag: the rows before the writer are sealed"
	bg_open w app
	bg_run w "$open"
	# nobody else takes ids now: the writer's id is the sequence's last value
	held=$(q "$C" "SELECT last_value FROM brandbos.audit_log_id_seq")
	if (( held <= before )) || printf '%s' "$BG_OUT" | grep -q ERROR; then
		fail "$tag: the writer took an audit id" "output: $BG_OUT"
		bg_close w
		return
	fi
	pass "$tag: the writer took audit id $held"
	last=$(app_traffic "$tag-during")
	sleep 1.5   # 7 seal intervals
	held_back "$tag" "$held" "$last"
	if [[ -n $restart ]]; then
		bg_close w
		bb_cluster_restart "$C" >/dev/null
		wait_ready "$C"
		sleep 1.5
		bg_open w app
		held_back "$tag, after a restart" "$held" "$last"
	fi
	is "$(unsealed_upto "$before")" 0 "$tag: the rows before the writer stay sealed"
	verify_clean "$tag (writer open)"
	bg_run w "$end"
	is "$(printf '%s' "$BG_OUT" | grep -c ERROR || true)" 0 "$tag: the writer ends without error"
	bg_close w
	is "$(sealed_within "$last" 4)" yes "$tag: once it ended, the rows after it are sealed within 4 s"
	after_end=$(app_traffic "$tag-after")
	is "$(sealed_within "$after_end" 4)" yes "$tag: and so are new rows"
	if [[ $outcome == committed ]]; then
		is "$(is_sealed "$held")" t "$tag: the writer's committed row is sealed"
	else
		is "$(q "$C" "SELECT count(*) FROM brandbos.audit_blocks WHERE $held = ANY (missing_ids)")" 1 \
			"$tag: the writer's rolled-back id is recorded as missing"
		is "$(q "$C" "SELECT count(*) FROM brandbos.audit_entries WHERE id = $held")" 0 \
			"$tag: and no row holds it"
	fi
	verify_clean "$tag (writer ended)"
	all_accounted "$tag"
}

writer_case "open log_event, committed" \
	"BEGIN; SELECT brandbos.log_event('held', 'scenario26', 'w1');" "COMMIT;" committed
writer_case "open log_event, rolled back" \
	"BEGIN; SELECT brandbos.log_event('held', 'scenario26', 'w2');" "ROLLBACK;" rolled_back
writer_case "open audited insert, committed" \
	"BEGIN; INSERT INTO t (v) VALUES (42);" "COMMIT;" committed
writer_case "open log_event inside a released savepoint, committed" \
	"BEGIN; SAVEPOINT a; SELECT brandbos.log_event('held', 'scenario26', 'w4'); RELEASE a;" "COMMIT;" committed
if (( max_prep > 0 )); then
	writer_case "prepared writer across a restart, committed" \
		"BEGIN; SELECT brandbos.log_event('held', 'scenario26', 'w5'); PREPARE TRANSACTION 'app_1';" \
		"COMMIT PREPARED 'app_1';" committed restart
else
	skip "prepared writer" "max_prepared_transactions = 0"
fi

# a writer whose savepoint with the audit id rolled back holds nothing back
bg_open w app
bg_run w "BEGIN; SELECT txid_current() > 0; SAVEPOINT a; SELECT brandbos.log_event('held', 'scenario26', 'w6'); ROLLBACK TO a;"
last=$(app_traffic "savepoint-rolled-back")
is "$(sealed_within "$last" 4)" yes \
	"an audit id taken in a rolled-back savepoint does not hold back the rows after it"
bg_run w "COMMIT;"
bg_close w
verify_clean "rolled-back savepoint"
all_accounted "before the manual sealer"

# ---- 3. seal_audit() called by an auditor (the path without preload) -------------------------
bb_psql "$C" >/dev/null <<'SQL'
CREATE ROLE aud LOGIN IN ROLE brandbos_auditor;
ALTER SYSTEM SET brandbos.audit_seal_interval = '1h';
SELECT pg_reload_conf();
SQL
sleep 1   # the worker takes the new interval after one more round
as_aud() { bb_run_as_pg "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U aud -d "$BB_DB" -c "$1"; }
bg_open m mallory
bg_run m "BEGIN; SELECT txid_current() > 0;"
last=$(app_traffic manual)
is "$(is_sealed "$last")" f "manual: the worker (now every hour) left app's rows unsealed"
is "$(as_aud "SELECT brandbos.seal_audit() IS NOT NULL")" t \
	"manual: the auditor's seal_audit() seals while mallory's transaction is open"
is "$(unsealed_upto "$last")" 0 "manual: every row up to app's last one is sealed"
# the auditor's own open writes: sealed with it, in its own transaction
is "$(as_aud "BEGIN; SELECT brandbos.log_event('own', 'scenario26') IS NOT NULL;
              SELECT brandbos.seal_audit() IS NOT NULL; COMMIT;" | tr '\n' ' ')" "t t " \
	"manual: an auditor's own uncommitted row does not hold back its seal_audit()"
is "$(unsealed_upto "$(q "$C" "SELECT last_value FROM brandbos.audit_log_id_seq")")" 0 \
	"manual: its own row is sealed with it"
bg_run m "ROLLBACK;"
bg_close m
verify_clean "manual"
all_accounted "end"
is "$(q "$C" "SELECT count(*) FROM pg_prepared_xacts")" 0 "no prepared transaction is left"

finish
