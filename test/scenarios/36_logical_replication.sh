#!/usr/bin/env bash
# 36_logical_replication — a protected table under logical replication (README "Replicas and
# standbys", "Logical replication").  Publisher and subscribers are preloaded.
#
# What brandbos promises: envelopes travel as they are.  The subscriber's protect trigger is
# ENABLE ALWAYS, so it fires on the initial copy and on every applied row; it keeps an
# envelope that authenticates for that row and column with the subscriber's keys and refuses
# anything else, so nothing is sealed twice and nothing is stored in plaintext.  It
# authenticates when the subscriber has the same root key, the publisher's column id
# (column_registry, from a dump) and the publisher's data keys (brandbos.data_keys, published
# with the tables).  Otherwise the apply fails closed and is retried: XX001 (another column
# id or data key), 42704 (a data key that has not arrived), 55000 (another root key).
#
#   1. a subscriber that protected the column itself (own keys): XX001, nothing stored
#   2. the procedure, tables published before brandbos.data_keys: 42704, nothing stored;
#      once data_keys is added to the publication the copy is retried and succeeds
#   3. the copy and streamed INSERT/UPDATE/DELETE (a primary-key change included): plaintext
#      on the subscriber, envelopes byte-identical to the publisher's, none double-sealed;
#      the subscriber's audit triggers record the applied rows in its own chain
#   4. rotate_key, reencrypt and destroy_key on the publisher reach the subscriber through
#      brandbos.data_keys, in commit order with the values
#   5. the same procedure on a subscriber with another root key: 55000, nothing stored
#   6. a forced destroy_key on the publisher shreds the values for new subscriber sessions
# The subscribers' server logs never hold a plaintext.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

P=s36_pub
S=s36_sub
F=s36_foreign
SC_CLUSTERS+=("$P" "$S" "$F")
bb_cluster_create "$P" 56337 yes
sc_conf_set "$P" wal_level logical
bb_cluster_start "$P"
bb_cluster_create "$S" 56338 yes
cp "$(bb_keyfile "$P")" "$(bb_keyfile "$S")"	# same root key (the file stays 0600)
bb_cluster_create "$F" 56339 yes				# its own root key
for c in "$S" "$F"; do
	sc_conf_set "$c" log_error_verbosity verbose		# the SQLSTATE in each ERROR line
	sc_conf_set "$c" wal_retrieve_retry_interval 300ms	# a failed apply is retried sooner
	bb_cluster_start "$c"
done
sc_helpers "$P"

bb_psql "$P" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE TABLE t (id int PRIMARY KEY, tok text, note text);
SELECT brandbos.protect_column('t', 'tok');
SELECT brandbos.enable_audit('t');
INSERT INTO t SELECT g, 'secret-' || g, 'n' FROM generate_series(1, 20) g;
CREATE TABLE expected (id int PRIMARY KEY, tok text);	-- not published: what t must decrypt to
INSERT INTO expected SELECT g, 'secret-' || g FROM generate_series(1, 20) g;
CREATE PUBLICATION bb_pub FOR TABLE t;
SQL
PUB_CONN=$(bb_conninfo "$P")
ENV_SQL="SELECT coalesce(md5(string_agg(id || ':' || tok, ',' ORDER BY id)), 'empty') FROM t"
PLAIN_SQL="SELECT coalesce(md5(string_agg(id || ':' || tok, ',' ORDER BY id)), 'empty') FROM t_decrypted"
EXPECT_SQL="SELECT md5(string_agg(id || ':' || tok, ',' ORDER BY id)) FROM expected"

# shellcheck disable=SC2317   # wait_log and wait_same are called through check
# wait until a line matching REGEX is in the server log of NAME
wait_log() {
	local name=$1 re=$2 i
	for ((i = 0; i < 150; i++)); do
		if grep -qE "$re" "$(bb_logfile "$name")"; then return 0; fi
		sleep 0.2
	done
	echo "# no line matching '$re' in the log of $name" >&2
	return 1
}
# shellcheck disable=SC2317   # (as above)
# wait until the subscriber (NAME, database DB) holds the publisher's envelopes
wait_same() {
	local name=$1 db=$2 want i
	want=$(bb_psql_value "$P" "$ENV_SQL")
	for ((i = 0; i < 150; i++)); do
		if [[ $(BB_DB=$db bb_psql_value "$name" "$ENV_SQL") == "$want" ]]; then return 0; fi
		sleep 0.2
	done
	echo "# $name/$db does not hold the publisher's envelopes" >&2
	return 1
}
# the schema (CREATE EXTENSION, tables, brandbos's triggers and views) and the column ids
setup_subscriber() {
	local name=$1 db=$2 dir
	dir=$(bb_clusterdir "$name")
	bb_run_as_pg "$PGBIN/pg_dump" -h "$(bb_sockdir "$P")" -p "$(bb_port "$P")" -U postgres \
		--schema-only --no-publications --no-subscriptions -f "$dir/schema.sql" postgres
	bb_run_as_pg "$PGBIN/pg_dump" -h "$(bb_sockdir "$P")" -p "$(bb_port "$P")" -U postgres \
		--data-only --table=brandbos.column_registry -f "$dir/registry.sql" postgres
	BB_DB=$db bb_psql "$name" -f "$dir/schema.sql" >/dev/null
	BB_DB=$db bb_psql "$name" -f "$dir/registry.sql" >/dev/null
}

# ---- 1. a subscriber with keys of its own ----------------------------------------------------
bb_psql "$F" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE TABLE t (id int PRIMARY KEY, tok text, note text);
SELECT brandbos.protect_column('t', 'tok');
SQL
bb_psql "$F" -c "CREATE SUBSCRIPTION bb_own CONNECTION '$PUB_CONN' PUBLICATION bb_pub" 2>/dev/null
check "own keys: the copy is refused with XX001 (not sealed for this row)" \
	wait_log "$F" 'ERROR:  XX001: envelope in column "tok" of table "t" was not sealed for this row'
assert_eq "own keys: nothing was stored" "0" "$(sc_try "$F" 'SELECT count(*) FROM t')"
bb_psql "$F" -c "DROP SUBSCRIPTION bb_own" >/dev/null 2>&1

# ---- 2. the procedure, with the keys published too late ---------------------------------------
setup_subscriber "$S" postgres
assert_eq "subscriber: the column id is the publisher's" \
	"$(bb_psql_value "$P" 'SELECT column_id FROM brandbos.column_registry')" \
	"$(sc_try "$S" 'SELECT column_id FROM brandbos.column_registry')"
assert_eq "subscriber: no data key yet" "0" "$(sc_try "$S" 'SELECT count(*) FROM brandbos.data_keys')"
bb_psql "$S" -c "CREATE SUBSCRIPTION bb_sub CONNECTION '$PUB_CONN' PUBLICATION bb_pub" 2>/dev/null
check "without the data keys: the copy is refused with 42704" \
	wait_log "$S" 'ERROR:  42704: data key version 1 does not exist'
assert_eq "without the data keys: nothing was stored" "0" "$(sc_try "$S" 'SELECT count(*) FROM t')"

bb_psql "$P" -c 'ALTER PUBLICATION bb_pub ADD TABLE brandbos.data_keys' >/dev/null
bb_psql "$S" -c 'ALTER SUBSCRIPTION bb_sub REFRESH PUBLICATION' >/dev/null
check "with brandbos.data_keys published, the copy is retried and arrives" wait_same "$S" postgres

# ---- 3. what arrived ------------------------------------------------------------------------
EXPECT=$(bb_psql_value "$P" "$EXPECT_SQL")
assert_eq "subscriber: the data key is the publisher's wrapped key" \
	"$(bb_psql_value "$P" "SELECT md5(string_agg(version || status || wrapped_key::text, ','))  FROM brandbos.data_keys")" \
	"$(sc_try "$S" "SELECT md5(string_agg(version || status || wrapped_key::text, ',')) FROM brandbos.data_keys")"
assert_eq "subscriber: t_decrypted gives the plaintext of the 20 copied rows" "$EXPECT" "$(sc_try "$S" "$PLAIN_SQL")"
assert_eq "subscriber: no plaintext stored" "0" "$(sc_try "$S" "SELECT count(*) FROM t WHERE tok LIKE 'secret-%'")"
assert_eq "subscriber: every value is one envelope (decrypt_text of a value is not an envelope)" "0" \
	"$(sc_try "$S" "SELECT count(*) FROM t_decrypted WHERE tok LIKE 'bbx%'")"
assert_eq "subscriber: its audit triggers (ENABLE ALWAYS) recorded the 20 copied rows" "20" \
	"$(sc_try "$S" "SELECT count(*) FROM brandbos.audit_log WHERE action = 'insert' AND resource_type = 'public.t'")"

bb_psql "$P" >/dev/null <<'SQL'
INSERT INTO t SELECT g, 'secret-' || g, 'new' FROM generate_series(21, 25) g;
INSERT INTO expected SELECT g, 'secret-' || g FROM generate_series(21, 25) g;
UPDATE t SET tok = 'changed-2' WHERE id = 2;          UPDATE expected SET tok = 'changed-2' WHERE id = 2;
UPDATE t SET note = 'only the note' WHERE id = 3;
UPDATE t SET id = 103 WHERE id = 4;                   UPDATE expected SET id = 103 WHERE id = 4;
DELETE FROM t WHERE id = 5;                           DELETE FROM expected WHERE id = 5;
SQL
check "streamed INSERT/UPDATE/DELETE arrive" wait_same "$S" postgres
EXPECT=$(bb_psql_value "$P" "$EXPECT_SQL")
assert_eq "subscriber: the streamed rows decrypt (a changed value, a new primary key)" "$EXPECT" \
	"$(sc_try "$S" "$PLAIN_SQL")"
assert_eq "subscriber: the row whose note changed kept its envelope and note" "secret-3|only the note" \
	"$(sc_try "$S" "SELECT tok || '|' || note FROM t_decrypted WHERE id = 3")"
assert_eq "subscriber: still no plaintext stored" "0" "$(sc_try "$S" "SELECT count(*) FROM t WHERE tok NOT LIKE 'bbx%'")"

# ---- 4. keys change on the publisher ---------------------------------------------------------
bb_psql "$P" >/dev/null <<'SQL'
SELECT brandbos.rotate_key();
INSERT INTO t VALUES (26, 'secret-26', 'under key 2');
INSERT INTO expected VALUES (26, 'secret-26');
SQL
check "rotation: the row sealed under the new key arrives" wait_same "$S" postgres
assert_eq "rotation: the subscriber's data keys are 1 retired, 2 active" "1:retired 2:active" \
	"$(sc_try "$S" "SELECT string_agg(version || ':' || status, ' ' ORDER BY version) FROM brandbos.data_keys")"
assert_eq "rotation: the new row decrypts on the subscriber (key 2)" "secret-26|2" \
	"$(sc_try "$S" "SELECT d.tok || '|' || brandbos.envelope_key_version(t.tok) FROM t_decrypted d JOIN t USING (id) WHERE id = 26")"
assert_eq "reencrypt on the publisher moves the 24 rows under key 1" "24" "$(bb_psql_value "$P" "SELECT brandbos.reencrypt('t')")"
assert_eq "destroy_key(1) on the publisher (no value uses it)" "00000" \
	"$(sc_sqlstate "$P" 'SELECT brandbos.destroy_key(1)')"
bb_psql "$P" -c "UPDATE t SET note = 'last' WHERE id = 1" >/dev/null	# a marker after the destruction
check "reencrypt and destroy_key arrive" wait_same "$S" postgres
assert_eq "subscriber: every value is under key 2" "2:25" \
	"$(sc_try "$S" "SELECT string_agg(v || ':' || n, ' ') FROM (SELECT brandbos.envelope_key_version(tok) v, count(*) n FROM t GROUP BY 1) s")"
assert_eq "subscriber: key 1 is destroyed there too (no wrapped key left)" "destroyed|true" \
	"$(sc_try "$S" "SELECT status || '|' || (wrapped_key IS NULL) FROM brandbos.data_keys WHERE version = 1")"
EXPECT=$(bb_psql_value "$P" "$EXPECT_SQL")
assert_eq "subscriber: everything still decrypts" "$EXPECT" "$(sc_try "$S" "$PLAIN_SQL")"

# ---- 5. the procedure with another root key ---------------------------------------------------
bb_psql "$F" -c 'CREATE DATABASE proc' >/dev/null
setup_subscriber "$F" proc
BB_DB=proc bb_psql "$F" -c "CREATE SUBSCRIPTION bb_wrong_root CONNECTION '$PUB_CONN' PUBLICATION bb_pub" 2>/dev/null
check "another root key: the copy is refused with 55000" wait_log "$F" 'ERROR:  55000: '
assert_eq "another root key: nothing was stored" "0" "$(BB_DB=proc sc_try "$F" 'SELECT count(*) FROM t')"
got=$(grep -E 'ERROR:  55000' "$(bb_logfile "$F")" | head -n 1)
assert_match "another root key: the error names the data key, not a value" 'data key|root key' "$got"

# ---- crypto-shredding reaches the subscriber ---------------------------------------------------
# a subscriber session that has data key 2 unwrapped before the shred
sc_session_open "$S" postgres
sc_session 'SELECT count(*) FROM t_decrypted WHERE tok IS NOT NULL'
assert_eq "shredding: an open subscriber session reads the values (key 2 unwrapped)" "25" "$SC_SESSION_RESULT"
bb_psql "$P" >/dev/null <<'SQL'
SELECT brandbos.rotate_key();
SELECT brandbos.destroy_key(2, force => true);
UPDATE t SET note = 'after the shred' WHERE id = 1;
SQL
check "shredding: the forced destroy_key(2) arrives" wait_same "$S" postgres
# applying the data_keys change fires brandbos's ENABLE ALWAYS row trigger, whose
# invalidation reaches every subscriber backend at the apply's commit
sc_session 'SELECT count(*) FROM t_decrypted WHERE tok IS NOT NULL'
assert_match "shredding: the session opened before can no longer read them (55000)" \
	'^ERROR: +55000: data key version 2 has been destroyed' "$SC_SESSION_RESULT"
sc_session_close
assert_eq "shredding: key 2 is destroyed on the subscriber" "1:destroyed 2:destroyed 3:active" \
	"$(sc_try "$S" "SELECT string_agg(version || ':' || status, ' ' ORDER BY version) FROM brandbos.data_keys")"
assert_eq "shredding: a new subscriber session cannot read the values (55000)" "55000" \
	"$(sc_sqlstate "$S" 'SELECT count(tok) FROM t_decrypted')"

# ---- the logs --------------------------------------------------------------------------------
for c in "$S" "$F"; do
	assert_eq "$c: its server log holds no plaintext" "0" "$(grep -c -E 'secret-[0-9]|changed-2' "$(bb_logfile "$c")" || true)"
done
check "no server crashed" bash -c "! grep -qE 'terminated by signal|PANIC' '$(bb_logfile "$P")' '$(bb_logfile "$S")' '$(bb_logfile "$F")'"
sc_finish
