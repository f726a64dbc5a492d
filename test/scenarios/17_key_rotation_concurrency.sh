#!/usr/bin/env bash
# 17_key_rotation_concurrency — no interleaving of writers, rotate_key, reencrypt and
# destroy_key loses a value; reencrypt always terminates; reencrypt_table commits per batch,
# resumes and reports progress; FORCE ROW LEVEL SECURITY does not hide rows from it (issue
# #10 points 5 and 6).
#
# Everything runs as ordinary login roles: `writer` owns and writes the tables, `km` is a
# member of brandbos_keymaster, `dec` of brandbos_decryptor (and of brandbos_context_admin,
# to read a tenant-isolated table).  The superuser only sets up and inspects (pg_locks,
# envelope versions).  Each case has its own database, hence its own data keys.
#
#   a. a writer's open transaction holds rows sealed under key 1 while the keymaster runs
#      rotate_key(); reencrypt(t); destroy_key(1): destroy_key waits on the writer (a lock
#      on (data_keys, 1) in pg_locks, wait_event_type Lock), then refuses with 55006; after
#      a second reencrypt it succeeds and every row decrypts.  The same with the writer in
#      REPEATABLE READ, its snapshot taken before the rotation: its rows use the new key, or
#      destroy_key waits for it.  And a writer that puts back a saved envelope of the old key
#      (DELETE + INSERT of the row it read earlier, as a restore does) in an open
#      transaction: destroy_key must not shred the key under it.
#   b. a 50-row table, rotate_key() in a loop from another session for 5 s: reencrypt and
#      CALL reencrypt_table return within seconds while the rotations still go on; on the
#      fresh table CALL reencrypt_table(b, 1) rewrites each row once (one walk over the
#      blocks the table had when it began, not after the rows it appends itself); the table
#      stays small; every row decrypts.
#   c. 15 s of pgbench, 2 writer clients (READ COMMITTED and REPEATABLE READ transactions
#      inserting and updating the protected column) while a keymaster loop runs
#      rotate_key(); reencrypt(c); destroy_key(previous) and counts 55006 refusals; at the
#      end no value is under a destroyed key and every row decrypts to what was written;
#      after one more reencrypt every refused key can be destroyed.
#   d. CALL reencrypt_table on 100k rows, batch 1000, cancelled part-way by another session
#      that watched rows_done grow: progress shows rows_done > 0 (exactly the rows now on
#      the new key) and no finished_at; called again it says it resumes, finishes with
#      rows_done = 100000, and every value is under the active key.
#   e. a table under enable_tenant_isolation (FORCE RLS), no context set: reencrypt moves
#      every row, key_versions shows only the active key, destroy_key(old) succeeds; the
#      same with CALL reencrypt_table.
#   f. a long-lived session whose key cache is full (it decrypted values under 64 keys) then
#      seals: it must still hear of the rotation and destruction that other sessions commit
#      afterwards, and seal its next row under the new key, never under the destroyed one
#      (the cache once forgot which relation to listen to when it evicted its keys).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C=s16_rotation_conc
sc_cluster "$C" 55516 no
DIR=$(bb_clusterdir "$C")
SOCK=$(bb_sockdir "$C")
PORT=$(bb_port "$C")

# psql as ROLE in DB; stdout and stderr both go to the caller
rq() {
	local role=$1 db=$2
	shift 2
	bb_run_as_pg "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U "$role" -d "$db" "$@"
}
# one value as ROLE in DB (errors are printed, never fatal)
rv() { rq "$1" "$2" -c "$3" 2>&1 || true; }
# the SQLSTATE of one statement as ROLE in DB (00000 when it succeeds)
rstate() { rv "$1" "$2" "SELECT public.sqlstate_of(\$q\$$3\$q\$)"; }
su() { rv postgres "$1" "$2"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# ---- background psql sessions (a FIFO per session) ----------------------------------------
# bg_open NAME ROLE DB     a psql of ROLE in DB reading statements from a FIFO
# bg_send NAME SQL         send SQL (it runs as soon as psql gets to it)
# bg_wait NAME [SECONDS]   wait until everything sent so far has run; BG_OUT = its output
#                          (errors as "ERROR:  <SQLSTATE>"); returns 1 on timeout
# bg_start NAME SQL        bg_send, for a statement expected to block
# bg_done NAME             exit 0 when the session printed something since the last
#                          bg_wait (does not wait)
# bg_close NAME
declare -A BG_FD BG_PID BG_SEQ BG_POS
BG_OUT=
bg_open() {
	local name=$1 role=$2 db=$3 fifo="$DIR/bg_$1.in" fd
	rm -f "$fifo"
	mkfifo -m 0600 "$fifo"
	: >"$DIR/bg_$name.out"
	bb_run_as_pg "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=0 -v VERBOSITY=sqlstate \
		-h "$SOCK" -p "$PORT" -U "$role" -d "$db" <"$fifo" >"$DIR/bg_$name.out" 2>&1 &
	BG_PID[$name]=$!
	exec {fd}>"$fifo"
	BG_FD[$name]=$fd
	BG_SEQ[$name]=0
	BG_POS[$name]=0
}
bg_send() { printf '%s\n' "$2" >&"${BG_FD[$1]}"; }
bg_done() { (( $(wc -l <"$DIR/bg_$1.out") > BG_POS[$1] )); }
bg_wait() {
	local name=$1 timeout=${2:-30} i seq
	seq=$((BG_SEQ[$name] + 1))
	BG_SEQ[$name]=$seq
	bg_send "$name" "\\echo __bg_mark_${name}_$seq"
	for ((i = 0; i < timeout * 20; i++)); do
		if grep -qx "__bg_mark_${name}_$seq" "$DIR/bg_$name.out"; then
			BG_OUT=$(awk -v from="${BG_POS[$name]}" -v mark="__bg_mark_${name}_$seq" \
				'NR > from && $0 != mark && $0 !~ /^__bg_mark_/ { print } $0 == mark { exit }' "$DIR/bg_$name.out")
			BG_POS[$name]=$(grep -nx "__bg_mark_${name}_$seq" "$DIR/bg_$name.out" | cut -d: -f1)
			return 0
		fi
		sleep 0.05
	done
	BG_OUT="(timed out after ${timeout} s)"
	return 1
}
# send SQL that may block: bg_done tells whether it has returned, bg_wait collects it
bg_start() { bg_send "$1" "$2"; }
bg_close() {
	local name=$1 fd=${BG_FD[$1]}
	bg_send "$name" '\q' || true
	exec {fd}>&-
	wait "${BG_PID[$name]}" || true
}

# ---- roles and one database per case --------------------------------------------------------
bb_psql "$C" >/dev/null <<'SQL'
CREATE ROLE writer LOGIN;
CREATE ROLE km LOGIN;
CREATE ROLE dec LOGIN;
SQL
for db in ca cb cc cd ce cf; do
	bb_psql "$C" -c "CREATE DATABASE $db" >/dev/null
	BB_DB=$db bb_psql "$C" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
GRANT CREATE ON SCHEMA public TO writer;
SQL
	sc_helpers "$C" "$db"
done
# (the group roles exist once the extension was created)
bb_psql "$C" >/dev/null <<'SQL'
GRANT brandbos_keymaster TO km;
GRANT brandbos_decryptor, brandbos_context_admin TO dec;
SQL

# a protected table owned by writer, readable (as ciphertext) by dec
make_table() {
	local db=$1 tbl=$2 extra=${3:-}
	rq writer "$db" >/dev/null <<SQL
CREATE TABLE $tbl (id bigint PRIMARY KEY, secret text, note text$extra);
SELECT brandbos.protect_column('$tbl', 'secret');
GRANT SELECT ON $tbl TO dec;
SQL
}
# "<rows>|<rows whose plaintext is <prefix><id>...>" as the decryptor (an error if any
# value does not decrypt)
decrypt_check() {
	local db=$1 tbl=$2 pattern=$3
	rv dec "$db" "SELECT count(*) || '|' || count(*) FILTER (WHERE secret LIKE $pattern) FROM ${tbl}_decrypted"
}
versions() { su "$1" "SELECT key_versions FROM brandbos.protected_columns WHERE table_name = '$2'::regclass"; }
active_key() { su "$1" "SELECT version FROM brandbos.data_keys WHERE status = 'active'"; }
# the keymaster's destroy_key call waiting for the lock of (data_keys, VERSION)?
destroy_waiting() {
	su "$1" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	          WHERE NOT l.granted AND l.locktype = 'object'
	            AND l.classid = 'brandbos.data_keys'::regclass AND l.objid = $2
	            AND a.usename = 'km' AND a.wait_event_type = 'Lock'
	            AND a.query LIKE '%destroy_key%'"
}
# wait up to 5 s for that; prints 1 or 0
wait_for_destroy_waiting() {
	local i
	for ((i = 0; i < 50; i++)); do
		if [[ $(destroy_waiting "$1" "$2") == 1 ]]; then echo 1; return 0; fi
		sleep 0.1
	done
	echo 0
}

# =================================================================================================
# a. destroy_key waits for a writer that sealed under the key
# =================================================================================================
diag "a. a writer's open transaction and rotate_key / reencrypt / destroy_key"
make_table ca t
rq writer ca -c "INSERT INTO t SELECT g, 'a-' || g, 'committed' FROM generate_series(1, 20) g"
assert_eq "a1: 20 committed rows under key 1" "{1}" "$(versions ca t)"

bg_open w writer ca
bg_open k km ca
bg_send k "SELECT public.sqlstate_of('SELECT 1') AS warm \\g /dev/null"
bg_send w "BEGIN;"
bg_send w "INSERT INTO t SELECT g, 'a-' || g, 'open writer' FROM generate_series(101, 200) g;"
bg_send w "SELECT DISTINCT brandbos.envelope_key_version(secret) FROM t WHERE id > 100;"
bg_wait w 20 || true
assert_eq "a1: the writer's open transaction sealed 100 rows under key 1" "1" "$BG_OUT"

assert_eq "a1: keymaster rotate_key() -> 2" "2" "$(rv km ca 'SELECT brandbos.rotate_key()')"
assert_eq "a1: reencrypt(t) moves the 20 committed rows" "20" "$(rv km ca "SELECT brandbos.reencrypt('t')")"
bg_start k "SELECT public.sqlstate_of('SELECT brandbos.destroy_key(1)');"
assert_eq "a1: destroy_key(1) waits for the writer (not-granted lock on (data_keys, 1), wait_event_type Lock)" \
	1 "$(wait_for_destroy_waiting ca 1)"
sleep 0.5
if bg_done k; then
	fail "a1: destroy_key(1) is still waiting 0.5 s later" "it returned: $(tail -n 3 "$DIR/bg_k.out")"
else
	pass "a1: destroy_key(1) is still waiting 0.5 s later"
fi
bg_send w "COMMIT;"
bg_wait w 20 || true
bg_wait k 20 || true
assert_eq "a1: once the writer commits, destroy_key(1) refuses with 55006 (its rows use key 1)" "55006" "$BG_OUT"
assert_eq "a1: key 1 is not destroyed" "retired" "$(su ca "SELECT status FROM brandbos.data_keys WHERE version = 1")"
assert_eq "a1: reencrypt(t) again moves the writer's 100 rows" "100" "$(rv km ca "SELECT brandbos.reencrypt('t')")"
assert_eq "a1: destroy_key(1) now succeeds" "00000" "$(rstate km ca 'SELECT brandbos.destroy_key(1)')"
assert_eq "a1: all 120 rows decrypt (decryptor, t_decrypted)" "120|120" "$(decrypt_check ca t "'a-' || id")"

# -- a2: the writer in REPEATABLE READ, snapshot taken before the rotation ----------------------
# the writer's session has used key 2 before (a committed insert), so it has it cached
bg_send w "INSERT INTO t VALUES (300, 'a-300', 'rr warm-up');"
bg_send w "BEGIN ISOLATION LEVEL REPEATABLE READ;"
bg_send w "SELECT count(*) FROM t;"
bg_wait w 20 || true
assert_eq "a2: a REPEATABLE READ writer takes its snapshot (121 rows) before the rotation" "121" "$BG_OUT"
assert_eq "a2: keymaster rotate_key() -> 3" "3" "$(rv km ca 'SELECT brandbos.rotate_key()')"
bg_send w "INSERT INTO t SELECT g, 'a-' || g, 'rr writer' FROM generate_series(401, 500) g;"
bg_send w "SELECT string_agg(DISTINCT brandbos.envelope_key_version(secret)::text, ',') FROM t WHERE id > 400;"
bg_wait w 20 || true
rr_version=$BG_OUT
diag "a2: the REPEATABLE READ writer sealed its rows under key $rr_version"
assert_eq "a2: reencrypt(t) moves the 121 committed rows" "121" "$(rv km ca "SELECT brandbos.reencrypt('t')")"
bg_start k "SELECT public.sqlstate_of('SELECT brandbos.destroy_key(2)');"
if [[ $rr_version == 3 ]]; then
	pass "a2: the writer's later inserts use the new key 3"
	bg_wait k 20 || true
	assert_eq "a2: destroy_key(2) succeeds at once (nothing of the writer is under 2)" "00000" "$BG_OUT"
	bg_send w "COMMIT;"
	bg_wait w 20 || true
elif [[ $rr_version == 2 ]]; then
	pass "a2: the writer's later inserts use key 2 (destroy_key must wait)"
	assert_eq "a2: destroy_key(2) waits for the REPEATABLE READ writer" 1 "$(wait_for_destroy_waiting ca 2)"
	bg_send w "COMMIT;"
	bg_wait w 20 || true
	bg_wait k 20 || true
	assert_eq "a2: then destroy_key(2) refuses with 55006" "55006" "$BG_OUT"
	assert_eq "a2: reencrypt(t) moves the writer's 100 rows" "100" "$(rv km ca "SELECT brandbos.reencrypt('t')")"
	assert_eq "a2: destroy_key(2) now succeeds" "00000" "$(rstate km ca 'SELECT brandbos.destroy_key(2)')"
else
	fail "a2: the writer's later inserts use key 3, or key 2" "versions: $rr_version"
	bg_send w "COMMIT;"
	bg_wait w 20 || true
	bg_wait k 20 || true
fi
assert_eq "a2: no value is under a destroyed key" "0" \
	"$(su ca "SELECT count(*) FROM t WHERE brandbos.envelope_key_version(secret)
	            IN (SELECT version FROM brandbos.data_keys WHERE status = 'destroyed')")"
assert_eq "a2: all 221 rows decrypt (decryptor, t_decrypted)" "221|221" "$(decrypt_check ca t "'a-' || id")"

# -- a3: a saved envelope of the old key put back in an open transaction ----------------------
# The writer read row 300's envelope (key 3) earlier; after rotate + reencrypt it deletes the
# row and inserts the saved envelope again (the trigger passes through an envelope that
# authenticates for its row: restore, COPY, INSERT ... SELECT of a saved row).
saved=$(rv writer ca "SELECT secret FROM t WHERE id = 300")
assert_eq "a3: the saved envelope of row 300 is under key 3" "3" \
	"$(rv writer ca "SELECT brandbos.envelope_key_version('$saved'::text)")"
assert_eq "a3: keymaster rotate_key() -> 4" "4" "$(rv km ca 'SELECT brandbos.rotate_key()')"
assert_eq "a3: reencrypt(t) moves the 221 rows" "221" "$(rv km ca "SELECT brandbos.reencrypt('t')")"
bg_send w "BEGIN;"
bg_send w "DELETE FROM t WHERE id = 300;"
bg_send w "INSERT INTO t VALUES (300, '$saved', 'restored');"
bg_send w "SELECT brandbos.envelope_key_version(secret) FROM t WHERE id = 300;"
bg_wait w 20 || true
assert_eq "a3: the open transaction put back row 300 under key 3" "3" "$BG_OUT"
bg_start k "SELECT public.sqlstate_of('SELECT brandbos.destroy_key(3)');"
a3_waited=$(wait_for_destroy_waiting ca 3)
bg_send w "COMMIT;"
bg_wait w 20 || true
bg_wait k 20 || true
a3_destroy=$BG_OUT
diag "a3: destroy_key(3) waited: $a3_waited; returned $a3_destroy"
assert_eq "a3: destroy_key(3) does not shred the key of the restored row (55006, or it waited and refused)" \
	"55006" "$a3_destroy"
assert_eq "a3: row 300 still decrypts" "a-300" "$(rv dec ca "SELECT secret FROM t_decrypted WHERE id = 300")"

# -- a4: the same, from a backend that sealed under that key in an earlier transaction -------
# (its own bookkeeping of "already locked" must not outlive the transaction that took the lock)
bg_send w "INSERT INTO t VALUES (310, 'a-310', 'sealed first');"
bg_send w "SELECT brandbos.envelope_key_version(secret) FROM t WHERE id = 310;"
bg_wait w 20 || true
a4_key=$BG_OUT
saved4=$(rv writer ca "SELECT secret FROM t WHERE id = 310")
bg_send w "DELETE FROM t WHERE id = 310;"
bg_send w "BEGIN;"
bg_send w "INSERT INTO t VALUES (310, '$saved4', 'put back');"
bg_send w "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'object' AND objid = $a4_key AND granted;"
bg_wait w 20 || true
assert_eq "a4: the writer holds the lock of key $a4_key for the envelope it put back" "1" "$BG_OUT"
rv km ca 'SELECT brandbos.rotate_key()' >/dev/null
rv km ca "SELECT brandbos.reencrypt('t')" >/dev/null
bg_start k "SELECT public.sqlstate_of('SELECT brandbos.destroy_key($a4_key)');"
a4_waited=$(wait_for_destroy_waiting ca "$a4_key")
bg_send w "COMMIT;"
bg_wait w 20 || true
bg_wait k 20 || true
diag "a4: destroy_key($a4_key) waited: $a4_waited; returned $BG_OUT"
assert_eq "a4: destroy_key($a4_key) refuses after the writer commits (55006)" "55006" "$BG_OUT"
assert_eq "a4: row 310 still decrypts" "a-310" "$(rv dec ca "SELECT secret FROM t_decrypted WHERE id = 310")"
bg_close w
bg_close k

# =================================================================================================
# b. reencrypt terminates while rotate_key runs in a loop
# =================================================================================================
diag "b. reencrypt and reencrypt_table while another session rotates keys for 5 s"
make_table cb b
# values of 1000 characters: about 5 rows a block, so small batches make several batches
rq writer cb -c "INSERT INTO b SELECT g, 'b-' || g || '-' || repeat('x', 1000), 'n' FROM generate_series(1, 50) g"
assert_eq "b: 50 rows under key 1" "{1}" "$(versions cb b)"
# shellcheck disable=SC2016   # dollar quotes are SQL
(rq km cb -c 'DO $$
DECLARE stop timestamptz := clock_timestamp() + interval '"'5 s'"';
BEGIN
	WHILE clock_timestamp() < stop LOOP
		PERFORM brandbos.rotate_key();
		COMMIT;
		PERFORM pg_sleep(0.005);
	END LOOP;
END $$' >"$DIR/b_rotate.out" 2>&1 || echo "rotation loop failed" >>"$DIR/b_rotate.out") &
rot_pid=$!
for ((i = 0; i < 100; i++)); do
	if (( $(su cb "SELECT count(*) FROM brandbos.data_keys") >= 4 )); then break; fi
	sleep 0.05
done
v_before=$(su cb "SELECT max(version) FROM brandbos.data_keys")
# one call as the keymaster, bounded by statement_timeout: sets B_SECS and B_OUT
b_call() {
	local t0 t1
	t0=$(now)
	B_OUT=$(PGOPTIONS="-c statement_timeout=8s" rv km cb "$1" | tr '\n' ' ')
	t1=$(now)
	B_SECS=$(elapsed "$t0" "$t1")
}
b_rows_done() {
	rv km cb "SELECT rows_done FROM brandbos.reencrypt_progress WHERE table_name = 'b'::regclass
	           AND finished_at IS NOT NULL"
}
# The table is fresh and its blocks are full: every rewritten row lands after the blocks the
# walk started with.  A walk bounded by those blocks rewrites each row once, however often
# the key changes.  (Later calls find free space left behind, so they may rewrite a row
# twice when the key changes meanwhile; they are only timed.)
b_call "CALL brandbos.reencrypt_table('b', 1)"
if lt "$B_SECS" 3 && [[ $B_OUT != *ERROR* ]]; then
	pass "b: CALL reencrypt_table(b, 1) returns within 3 s while keys rotate ($B_SECS s)"
else
	fail "b: CALL reencrypt_table(b, 1) returns within 3 s while keys rotate" "$B_SECS s: $B_OUT"
fi
diag "b: it said: ${B_OUT:0:200}"
assert_eq "b: it rewrote each of the 50 rows once (rows_done; one walk over the blocks it started with)" \
	50 "$(b_rows_done)"
for call in "SELECT brandbos.reencrypt('b', 1)" "SELECT brandbos.reencrypt('b', 10)" \
		"SELECT brandbos.reencrypt('b')" "CALL brandbos.reencrypt_table('b', 10)"; do
	b_call "$call"
	case $call in
		CALL*) ok=$([[ $B_OUT != *ERROR* ]] && echo 1 || echo 0); B_OUT="$B_OUT(rows_done $(b_rows_done))" ;;
		*) ok=$([[ $B_OUT =~ ^[0-9]+\ $ ]] && echo 1 || echo 0) ;;
	esac
	if (( ok )) && lt "$B_SECS" 3; then
		pass "b: ${call#* } returns within 3 s while keys rotate ($B_SECS s, ${B_OUT:0:60})"
	else
		fail "b: ${call#* } returns within 3 s while keys rotate" "$B_SECS s: $B_OUT"
	fi
done
rotations_during=$(( $(su cb "SELECT max(version) FROM brandbos.data_keys") - v_before ))
still_rotating=0
if kill -0 "$rot_pid" 2>/dev/null; then still_rotating=1; fi
assert_eq "b: the rotations were still going on when the calls had returned" 1 "$still_rotating"
if (( rotations_during >= 5 )); then
	pass "b: at least 5 rotations happened during the calls ($rotations_during)"
else
	fail "b: at least 5 rotations happened during the calls" "rotations: $rotations_during"
fi
wait "$rot_pid" || true
assert_eq "b: the rotation loop ran without error" "" "$(cat "$DIR/b_rotate.out")"
assert_eq "b: after the loop, reencrypt(b) moves the 50 rows to the last key" "50" \
	"$(PGOPTIONS="-c statement_timeout=8s" rv km cb "SELECT brandbos.reencrypt('b')")"
assert_eq "b: every value is under the active key" "{$(active_key cb)}" "$(versions cb b)"
size=$(su cb "SELECT pg_total_relation_size('b')")
# 7 calls each rewriting the 50 rows of about 1.4 kB once: about 0.6 MB (the walk that
# looped forever grew it to 20 MB)
if [[ $size =~ ^[0-9]+$ ]] && (( size < 1536 * 1024 )); then
	pass "b: the 50-row table stays small ($size bytes < 1.5 MB)"
else
	fail "b: the 50-row table stays small (< 1.5 MB)" "pg_total_relation_size: $size"
fi
assert_eq "b: all 50 rows decrypt (decryptor, b_decrypted)" "50|50" "$(decrypt_check cb b "'b-' || id || '-' || repeat('x', 1000)")"

# =================================================================================================
# c. randomised interleaving: 2 writers, a keymaster loop, 15 s
# =================================================================================================
diag "c. 15 s of pgbench writers against a rotate / reencrypt / destroy loop"
make_table cc c
rq writer cc >/dev/null <<'SQL'
CREATE SEQUENCE c_id_seq START 1001;
INSERT INTO c SELECT g, 'sec-' || g || '-0', 'seed' FROM generate_series(1, 200) g;
SQL
cat >"$DIR/c_rc.sql" <<'SQL'
\set r random(1, 1000000)
\set k random(1, 200)
BEGIN;
INSERT INTO c SELECT n, 'sec-' || n || '-' || :r, 'rc' FROM nextval('c_id_seq') n;
SELECT pg_sleep(0.01);
UPDATE c SET secret = 'sec-' || id || '-' || :r, note = 'rc upd' WHERE id = :k;
COMMIT;
SQL
cat >"$DIR/c_rr.sql" <<'SQL'
\set r random(1, 1000000)
\set k random(1, 200)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM c WHERE id = :k;
SELECT pg_sleep(0.01);
INSERT INTO c SELECT n, 'sec-' || n || '-' || :r, 'rr' FROM nextval('c_id_seq') n;
UPDATE c SET secret = 'sec-' || id || '-' || :r, note = 'rr upd' WHERE id = :k;
COMMIT;
SQL
chmod 0644 "$DIR/c_rc.sql" "$DIR/c_rr.sql"
: >"$DIR/c_km.out"
(PGHOST=$SOCK PGPORT=$PORT PGUSER=writer bb_run_as_pg "$PGBIN/pgbench" -n -c 2 -j 2 -T 15 \
	--max-tries=50 -f "$DIR/c_rc.sql@1" -f "$DIR/c_rr.sql@1" cc >"$DIR/c_pgbench.out" 2>&1;
	echo "rc=$?" >>"$DIR/c_pgbench.out") &
bench_pid=$!
sleep 0.5
stop=$((SECONDS + 15))
while (( SECONDS < stop )); do
	rq km cc >>"$DIR/c_km.out" 2>&1 <<'SQL' || echo "keymaster psql failed" >>"$DIR/c_km.out"
SELECT brandbos.rotate_key() AS v \gset
SELECT 'reencrypt ' || public.sqlstate_of($$SELECT brandbos.reencrypt('c')$$);
SELECT 'destroy ' || public.sqlstate_of('SELECT brandbos.destroy_key(' || (:v - 1) || ')');
SQL
done
wait "$bench_pid" || true
bench_rc=$(sed -n 's/^rc=//p' "$DIR/c_pgbench.out")
diag "pgbench: $(grep -E '^(number of transactions actually processed|number of failed|number of transactions retried|tps)' \
	"$DIR/c_pgbench.out" | tr '\n' ' ')"
assert_eq "c: pgbench (2 writers, 15 s) exits 0" 0 "$bench_rc"
if [[ $bench_rc != 0 ]]; then diag "$(tail -n 15 "$DIR/c_pgbench.out")"; fi
assert_eq "c: pgbench reports 0 failed transactions" 0 \
	"$(awk '/^number of failed transactions:/ { print $5 }' "$DIR/c_pgbench.out")"
n_destroyed=$(grep -c '^destroy 00000$' "$DIR/c_km.out" || true)
n_refused=$(grep -c '^destroy 55006$' "$DIR/c_km.out" || true)
n_rounds=$(grep -c '^reencrypt ' "$DIR/c_km.out" || true)
other=$(grep -vE '^(destroy (00000|55006)|reencrypt 00000)$' "$DIR/c_km.out" | sort | uniq -c || true)
diag "keymaster rounds: $n_rounds; destroy_key successes: $n_destroyed, refusals (55006): $n_refused"
assert_eq "c: the keymaster loop saw no other outcome than reencrypt ok, destroy ok or 55006" "" "$other"
if (( n_rounds >= 5 && n_destroyed >= 1 )); then
	pass "c: at least 5 rounds ran and some keys were destroyed"
else
	fail "c: at least 5 rounds ran and some keys were destroyed" "rounds $n_rounds, destroyed $n_destroyed"
fi
lost=$(su cc "SELECT count(*) FROM c WHERE brandbos.envelope_key_version(secret)
               IN (SELECT version FROM brandbos.data_keys WHERE status = 'destroyed')")
assert_eq "c: no value is sealed under a destroyed key" "0" "$lost"
n_rows=$(su cc "SELECT count(*) FROM c")
diag "c: $n_rows rows at the end"
assert_eq "c: count(*) of c = rows decrypting to what was written (decryptor, c_decrypted)" \
	"$n_rows|$n_rows" "$(decrypt_check cc c "'sec-' || id || '-%'")"
assert_eq "c: no NULL plaintext for a non-NULL value" "0" \
	"$(rv dec cc "SELECT count(*) FROM c JOIN c_decrypted d USING (id) WHERE c.secret IS NOT NULL AND d.secret IS NULL")"
# the refusals were right: with the writers gone, one reencrypt frees every retired key
assert_eq "c: after the writers stopped, reencrypt(c) moves the rows left on retired keys" "ok" \
	"$(rv km cc "SELECT CASE WHEN brandbos.reencrypt('c') >= 0 THEN 'ok' END")"
retired=$(rv km cc "SELECT count(*) FROM brandbos.key_status() WHERE status = 'retired'")
assert_eq "c: then destroy_key succeeds for each of the $retired retired keys" "$retired|$retired" \
	"$(rv km cc "SELECT count(*) FILTER (WHERE public.sqlstate_of(format('SELECT brandbos.destroy_key(%s)', version)) = '00000')
	              || '|' || count(*) FROM brandbos.key_status() WHERE status = 'retired'")"
assert_eq "c: and every row still decrypts to what was written" \
	"$n_rows|$n_rows" "$(decrypt_check cc c "'sec-' || id || '-%'")"

# =================================================================================================
# d. reencrypt_table: interrupted, resumed, progress as it goes
# =================================================================================================
diag "d. CALL reencrypt_table on 100k rows, cancelled part-way and resumed"
make_table cd d
rq writer cd -c "INSERT INTO d SELECT g, 'd-' || g, 'n' FROM generate_series(1, 100000) g"
assert_eq "d: keymaster rotate_key() -> 2" "2" "$(rv km cd 'SELECT brandbos.rotate_key()')"
(rq km cd -c "SET application_name = 'bb_reencrypt_1'" -c "CALL brandbos.reencrypt_table('d', 1000)" \
	>"$DIR/d_call1.out" 2>&1 || true) &
call_pid=$!
# the watcher (keymaster too: it may cancel its own sessions) samples rows_done, and
# cancels the call once 30000 rows are done
# shellcheck disable=SC2016   # dollar quotes are SQL
watch=$(rv km cd 'DO $$
DECLARE
	seen bigint[] := $a${}$a$;
	r bigint;
	stop timestamptz := clock_timestamp() + interval $a$20 s$a$;
BEGIN
	WHILE clock_timestamp() < stop LOOP
		SELECT rows_done INTO r FROM brandbos.reencrypt_progress
		 WHERE table_name = $a$d$a$::regclass AND finished_at IS NULL;
		IF r IS NOT NULL AND r > coalesce(seen[cardinality(seen)], 0) THEN
			seen := seen || r;
		END IF;
		PERFORM pg_stat_clear_snapshot();
		IF r >= 30000 THEN
			PERFORM pg_cancel_backend(pid) FROM pg_stat_activity
			 WHERE application_name = $a$bb_reencrypt_1$a$ AND pid <> pg_backend_pid();
			EXIT;
		END IF;
		EXIT WHEN clock_timestamp() > stop - interval $a$18 s$a$ AND NOT EXISTS (
			SELECT FROM pg_stat_activity WHERE application_name = $a$bb_reencrypt_1$a$);
		PERFORM pg_sleep(0.01);
	END LOOP;
	RAISE NOTICE $a$seen %$a$, seen;
END $$')
wait "$call_pid" || true
diag "d: the watcher saw rows_done = $(sed -n 's/.*seen //p' <<<"$watch")" \
	"d: the first call said: $(tr '\n' ' ' <"$DIR/d_call1.out")"
n_seen=$(sed -n 's/.*seen {\(.*\)}.*/\1/p' <<<"$watch" | tr ',' '\n' | grep -c . || true)
if (( n_seen >= 2 )); then
	pass "d: another session saw rows_done grow while the call ran ($n_seen values)"
else
	fail "d: another session saw rows_done grow while the call ran" "watcher: $watch"
fi
assert_match "d: the first call was cancelled (57014)" "canceling statement due to user request" \
	"$(cat "$DIR/d_call1.out")"
prog=$(rv km cd "SELECT rows_done || '|' || (finished_at IS NULL) || '|' || target_version
                  FROM brandbos.reencrypt_progress WHERE table_name = 'd'::regclass")
done1=${prog%%|*}
diag "d: progress after the cancel: $prog"
if [[ $done1 =~ ^[0-9]+$ ]] && (( done1 > 0 && done1 < 100000 )); then
	pass "d: reencrypt_progress shows 0 < rows_done ($done1) < 100000"
else
	fail "d: reencrypt_progress shows 0 < rows_done < 100000" "progress: $prog"
fi
assert_eq "d: finished_at is NULL, target_version 2" "true|2" "${prog#*|}"
assert_eq "d: exactly rows_done rows are on key 2 (committed batches)" "$done1" \
	"$(su cd "SELECT count(*) FROM d WHERE brandbos.envelope_key_version(secret) = 2")"
out2=$(rq km cd -c "CALL brandbos.reencrypt_table('d', 1000)" 2>&1 || true)
assert_match "d: the second call says it resumes" "NOTICE: +resuming the re-encryption of \"d\" after $done1 rows" "$out2"
assert_eq "d: progress: finished, rows_done = 100000 (the rows that needed moving)" "100000|false" \
	"$(rv km cd "SELECT rows_done || '|' || (finished_at IS NULL) FROM brandbos.reencrypt_progress
	              WHERE table_name = 'd'::regclass")"
assert_eq "d: every value is under the active key 2" "{2}" "$(versions cd d)"
assert_eq "d: destroy_key(1) succeeds" "00000" "$(rstate km cd 'SELECT brandbos.destroy_key(1)')"
assert_eq "d: all 100000 rows decrypt (decryptor, d_decrypted)" "100000|100000" "$(decrypt_check cd d "'d-' || id")"

# =================================================================================================
# e. reencrypt under FORCE ROW LEVEL SECURITY
# =================================================================================================
diag "e. reencrypt of a table under enable_tenant_isolation, no context set"
make_table ce e ", tenant_id text NOT NULL"
rq writer ce >/dev/null <<'SQL'
INSERT INTO e SELECT g, 'e-' || g, 'n', CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END
  FROM generate_series(1, 40) g;
SELECT brandbos.enable_tenant_isolation('e', 'tenant_id');
SQL
assert_eq "e: the table forces row level security" "true|true" \
	"$(su ce "SELECT relrowsecurity || '|' || relforcerowsecurity FROM pg_class WHERE oid = 'e'::regclass")"
assert_eq "e: without a context its owner sees no row" "0" "$(rv writer ce "SELECT count(*) FROM e")"
assert_eq "e: keymaster rotate_key() -> 2" "2" "$(rv km ce 'SELECT brandbos.rotate_key()')"
assert_eq "e: reencrypt(e) moves all 40 rows" "40" "$(rv km ce "SELECT brandbos.reencrypt('e')")"
assert_eq "e: key_versions shows only the active key 2" "{2}" "$(versions ce e)"
assert_eq "e: destroy_key(1) succeeds" "00000" "$(rstate km ce 'SELECT brandbos.destroy_key(1)')"
tenant_read() {
	rq dec ce -c "BEGIN" -c "SELECT brandbos.set_context('$1', '$2')" \
		-c "SELECT count(*) FILTER (WHERE secret = 'e-' || id) FROM e_decrypted" -c "COMMIT" 2>&1 | tail -n 1 || true
}
assert_eq "e: in each tenant's context the decryptor reads its 20 rows" "20|20" \
	"$(tenant_read u1 acme)|$(tenant_read u2 globex)"
assert_eq "e: keymaster rotate_key() -> 3" "3" "$(rv km ce 'SELECT brandbos.rotate_key()')"
assert_eq "e: CALL reencrypt_table(e, 7) under forced RLS succeeds" "" \
	"$(rq km ce -c "CALL brandbos.reencrypt_table('e', 7)" 2>&1 || true)"
assert_eq "e: reencrypt_progress: rows_done = 40, finished" "40|false" \
	"$(rv km ce "SELECT rows_done || '|' || (finished_at IS NULL) FROM brandbos.reencrypt_progress
	              WHERE table_name = 'e'::regclass")"
assert_eq "e: key_versions shows only the active key 3" "{3}" "$(versions ce e)"
assert_eq "e: destroy_key(2) succeeds" "00000" "$(rstate km ce 'SELECT brandbos.destroy_key(2)')"

# =================================================================================================
# f. a full key cache still hears of rotations and destructions
# =================================================================================================
diag "f. a session that decrypted values under 64 keys, then seals across a rotate + destroy"
make_table cf f
rq writer cf -c "GRANT INSERT ON f TO km, dec" >/dev/null
# 64 rows, each under its own key (1..64); key 65 is active
# shellcheck disable=SC2016   # dollar quotes are SQL
rq km cf -c 'DO $$
BEGIN
	FOR i IN 1..64 LOOP
		INSERT INTO f VALUES (i, $a$f-$a$ || i, $a$n$a$);
		PERFORM brandbos.rotate_key();
		COMMIT;
	END LOOP;
END $$' >/dev/null
assert_eq "f: 64 rows under 64 keys, key 65 active" "64|65" \
	"$(su cf "SELECT count(DISTINCT brandbos.envelope_key_version(secret)) || '|' ||
	           (SELECT version FROM brandbos.data_keys WHERE status = 'active') FROM f")"
bg_open fw dec cf
bg_send fw "SELECT count(*) FILTER (WHERE secret = 'f-' || id) FROM f_decrypted;"
bg_send fw "INSERT INTO f VALUES (100, 'f-100', 'fw');"
bg_send fw "SELECT brandbos.envelope_key_version(secret) FROM f WHERE id = 100;"
bg_wait fw 20 || true
assert_eq "f: the session decrypts the 64 rows (64 keys cached), then seals row 100 under key 65" \
	"64 65" "$(tr '\n' ' ' <<<"$BG_OUT" | sed 's/ $//')"
assert_eq "f: keymaster rotate_key() -> 66" "66" "$(rv km cf 'SELECT brandbos.rotate_key()')"
assert_eq "f: reencrypt(f) moves the 65 rows" "65" "$(rv km cf "SELECT brandbos.reencrypt('f')")"
assert_eq "f: destroy_key(65) succeeds" "00000" "$(rstate km cf 'SELECT brandbos.destroy_key(65)')"
bg_send fw "INSERT INTO f VALUES (101, 'f-101', 'fw');"
bg_send fw "SELECT brandbos.envelope_key_version(secret) FROM f WHERE id = 101;"
bg_wait fw 20 || true
assert_eq "f: the same session seals its next row under the new key 66, not the destroyed 65" "66" "$BG_OUT"
bg_close fw
assert_eq "f: no value is sealed under a destroyed key" "0" \
	"$(su cf "SELECT count(*) FROM f WHERE brandbos.envelope_key_version(secret)
	           IN (SELECT version FROM brandbos.data_keys WHERE status = 'destroyed')")"
assert_eq "f: all 66 rows decrypt (decryptor, f_decrypted)" "66|66" "$(decrypt_check cf f "'f-' || id")"

check "server did not crash" bash -c "! grep -qE 'terminated by signal|PANIC' '$(bb_logfile "$C")'"
sc_finish
