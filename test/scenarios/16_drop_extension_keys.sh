#!/usr/bin/env bash
# 16_drop_extension_keys — no DROP silently destroys the data keys (issue 10 point 11).
#
# brandbos.data_keys belongs to the extension: DROP EXTENSION brandbos [CASCADE], DROP SCHEMA
# brandbos CASCADE and DROP OWNED BY the extension's owner would take every data key along
# and leave the user's envelopes unreadable.  The event trigger brandbos_drop_guard refuses
# them (2BP01) while a key is not destroyed or a column is protected, unless a superuser sets
# brandbos.allow_drop_with_keys = on.  Each check runs in a database of its own:
#   1. a protected table holding values: DROP EXTENSION, DROP EXTENSION CASCADE, DROP
#      EXTENSION IF EXISTS, DROP SCHEMA CASCADE (with preload the audit guard refuses that
#      one first: 42501), and DROP EXTENSION under session_replication_role = replica are
#      all refused; nothing was dropped and every value still decrypts;
#   2. an ordinary login role cannot set brandbos.allow_drop_with_keys (42501) nor drop;
#   3. a key made only by brandbos.encrypt() (no protected column) is guarded too;
#   4. DROP OWNED BY a superuser that created the extension is refused;
#   5. no keys and no protected column: DROP EXTENSION just works, and DROP EXTENSION of
#      another extension is not affected;
#   6. the explicit opt-in drops (with a WARNING), and after CREATE EXTENSION again the
#      old envelope fails with 42704 naming the missing key version (not XX001 "altered").
# Run with and without shared_preload_libraries.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS=10

# SQLSTATE of one statement run on its own (a DROP cannot run inside sqlstate_of's function)
state_of() {
	local C=$1 db=$2 sql=$3 out
	out=$(BB_DB=$db bb_psql "$C" -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -At -c "$sql" 2>&1) || true
	if [[ $out =~ (ERROR|FATAL):\ +([0-9A-Z]{5}): ]]; then
		echo "${BASH_REMATCH[2]}"
	else
		echo "00000"
	fi
}

q() { local C=$1 db=$2; shift 2; BB_DB=$db bb_psql "$C" -At -c "$*" 2>&1 || true; }

setup_protected() {
	local C=$1 db=$2
	bb_psql "$C" -c "CREATE DATABASE $db" >/dev/null
	BB_DB=$db bb_psql "$C" >/dev/null <<SQL
CREATE EXTENSION brandbos;
CREATE TABLE t (id integer PRIMARY KEY, tok text);
SELECT brandbos.protect_column('t', 'tok');
INSERT INTO t SELECT g, 'secret-' || g FROM generate_series(1, $ROWS) g;
SQL
}

run_suite() {
	local mode=$1 C got expected out
	C=s16_$([[ $mode == yes ]] && echo preload || echo plain)
	local P="[preload=$mode]"
	sc_cluster "$C" 55515 "$mode"
	bb_psql "$C" >/dev/null <<'SQL'
CREATE ROLE bb15_app LOGIN;
CREATE ROLE bb15_reader LOGIN;
CREATE ROLE bb15_dba LOGIN SUPERUSER;
SQL
	local READ="SELECT md5(string_agg(tok, ',' ORDER BY id)) FROM t_decrypted"
	local WANT
	WANT=$(printf 'secret-%s,' $(seq 1 $ROWS) | sed 's/,$//' | md5sum | cut -d' ' -f1)

	# ---- 1. a protected table holding values ----------------------------------------------
	setup_protected "$C" k1
	assert_eq "$P baseline: values decrypt" "$WANT" "$(q "$C" k1 "$READ")"
	assert_eq "$P DROP EXTENSION brandbos is refused (2BP01)" "2BP01" \
		"$(state_of "$C" k1 'DROP EXTENSION brandbos')"
	assert_eq "$P DROP EXTENSION brandbos CASCADE is refused (2BP01)" "2BP01" \
		"$(state_of "$C" k1 'DROP EXTENSION brandbos CASCADE')"
	assert_eq "$P DROP EXTENSION IF EXISTS pg_buffercache, brandbos CASCADE is refused (2BP01)" "2BP01" \
		"$(state_of "$C" k1 'DROP EXTENSION IF EXISTS pg_buffercache, brandbos CASCADE')"
	expected=2BP01
	if [[ $mode == yes ]]; then expected=42501; fi
	assert_eq "$P DROP SCHEMA brandbos CASCADE is refused ($expected)" "$expected" \
		"$(state_of "$C" k1 'DROP SCHEMA brandbos CASCADE')"
	assert_eq "$P under session_replication_role = replica, DROP EXTENSION CASCADE is refused too" "2BP01" \
		"$(state_of "$C" k1 "SET session_replication_role = replica; DROP EXTENSION brandbos CASCADE")"
	out=$(BB_DB=k1 bb_psql "$C" -v ON_ERROR_STOP=1 -c 'DROP EXTENSION brandbos CASCADE' 2>&1 || true)
	assert_match "$P the refusal says what would be lost" \
		'would destroy the brandbos data keys' "$out"
	assert_match "$P and its hint names the opt-in setting" 'HINT:.*brandbos\.allow_drop_with_keys' "$out"
	assert_eq "$P after the refusals the extension, the trigger and the view are all there" "1|1|1" \
		"$(q "$C" k1 "SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'brandbos'),
		                      (SELECT count(*) FROM pg_trigger WHERE tgname = 'zz_brandbos_protect'),
		                      (SELECT count(*) FROM pg_views WHERE viewname = 't_decrypted')")"
	assert_eq "$P after the refusals every value still decrypts" "$WANT" "$(q "$C" k1 "$READ")"
	# brandbos depends on no procedural language: dropping one with CASCADE cannot take it along
	state_of "$C" k1 "SET client_min_messages = warning; DROP EXTENSION plpgsql CASCADE" >/dev/null
	assert_eq "$P DROP EXTENSION plpgsql CASCADE leaves brandbos and its keys in place" "1|$WANT" \
		"$(q "$C" k1 "SELECT count(*) FROM pg_extension WHERE extname = 'brandbos'")|$(q "$C" k1 "$READ")"
	q "$C" k1 "CREATE EXTENSION IF NOT EXISTS plpgsql" >/dev/null

	# ---- 2. an ordinary login role ---------------------------------------------------------
	got=$(BB_DB=k1 bb_run_as_pg "$PGBIN/psql" -X -At -v VERBOSITY=verbose -h "$(bb_sockdir "$C")" \
		-p "$(bb_port "$C")" -U bb15_app -d k1 -c 'SELECT brandbos.root_key_loaded()' \
		-c 'SET brandbos.allow_drop_with_keys = on' 2>&1 || true)
	assert_match "$P an ordinary role cannot SET brandbos.allow_drop_with_keys (42501)" \
		'ERROR:  42501: permission denied to set parameter "brandbos.allow_drop_with_keys"' "$got"
	got=$(bb_run_as_pg "$PGBIN/psql" -X -At -v VERBOSITY=verbose -h "$(bb_sockdir "$C")" \
		-p "$(bb_port "$C")" -U bb15_app -d k1 -c 'DROP EXTENSION brandbos CASCADE' 2>&1 || true)
	assert_match "$P an ordinary role cannot DROP EXTENSION brandbos (42501)" 'ERROR:  42501:' "$got"
	assert_eq "$P the extension is still there" "1" \
		"$(q "$C" k1 "SELECT count(*) FROM pg_extension WHERE extname = 'brandbos'")"

	# ---- 3. a key made only by encrypt() ---------------------------------------------------
	bb_psql "$C" -c "CREATE DATABASE k3" >/dev/null
	q "$C" k3 "CREATE EXTENSION brandbos; CREATE TABLE mine AS SELECT brandbos.encrypt_text('kept elsewhere') AS env" >/dev/null
	assert_eq "$P a key used only by encrypt() (values outside any protected column): DROP is refused" \
		"2BP01" "$(state_of "$C" k3 'DROP EXTENSION brandbos')"

	# ---- 4. DROP OWNED BY the superuser who created the extension ------------------------------
	bb_psql "$C" -c "CREATE DATABASE k4" >/dev/null
	BB_DB=k4 bb_psql "$C" >/dev/null <<SQL
SET ROLE bb15_dba;
CREATE EXTENSION brandbos;
CREATE TABLE t (id integer PRIMARY KEY, tok text);
SELECT brandbos.protect_column('t', 'tok');
INSERT INTO t VALUES (1, 'secret-1');
SQL
	assert_eq "$P DROP OWNED BY the extension's owner is refused (2BP01)" "2BP01" \
		"$(state_of "$C" k4 'DROP OWNED BY bb15_dba CASCADE')"
	assert_eq "$P DROP OWNED BY another role is not affected" "00000" \
		"$(state_of "$C" k4 'DROP OWNED BY bb15_app')"
	assert_eq "$P the extension and its table survive" "1|1" \
		"$(q "$C" k4 "SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'brandbos'), (SELECT count(*) FROM t)")"
	assert_eq "$P with the opt-in, DROP OWNED goes ahead" "00000" \
		"$(state_of "$C" k4 'SET brandbos.allow_drop_with_keys = on; DROP OWNED BY bb15_dba CASCADE')"
	assert_eq "$P and the extension is gone" "0" \
		"$(q "$C" k4 "SELECT count(*) FROM pg_extension WHERE extname = 'brandbos'")"

	# ---- 5. nothing to lose -----------------------------------------------------------------
	bb_psql "$C" -c "CREATE DATABASE k5" >/dev/null
	q "$C" k5 "CREATE EXTENSION brandbos; CREATE EXTENSION pg_buffercache" >/dev/null
	assert_eq "$P DROP EXTENSION of another extension is not affected" "00000" \
		"$(state_of "$C" k5 'DROP EXTENSION pg_buffercache')"
	assert_eq "$P no keys, no protected column: DROP EXTENSION brandbos succeeds" "00000" \
		"$(state_of "$C" k5 'DROP EXTENSION brandbos')"
	q "$C" k5 "CREATE EXTENSION brandbos" >/dev/null
	assert_eq "$P ... and so does DROP SCHEMA brandbos CASCADE (42501 with preload: the audit guard)" \
		"$([[ $mode == yes ]] && echo 42501 || echo 00000)" "$(state_of "$C" k5 'DROP SCHEMA brandbos CASCADE')"

	# ---- 6. the explicit opt-in, and the missing key afterwards ----------------------------------
	out=$(BB_DB=k1 bb_psql "$C" -v ON_ERROR_STOP=1 \
		-c 'SET brandbos.allow_drop_with_keys = on' -c 'DROP EXTENSION brandbos CASCADE' 2>&1) && got=ok || got=failed
	assert_eq "$P with brandbos.allow_drop_with_keys = on, DROP EXTENSION CASCADE succeeds" "ok" "$got"
	assert_match "$P ... with a WARNING that the keys are destroyed" \
		'WARNING:  DROP EXTENSION brandbos destroys the brandbos data keys' "$out"
	assert_eq "$P the user's table is still there, with its envelopes" "$ROWS|$ROWS" \
		"$(q "$C" k1 "SELECT count(*), count(*) FILTER (WHERE tok LIKE 'bbx1:%') FROM t")"
	q "$C" k1 "CREATE EXTENSION brandbos; GRANT brandbos_decryptor TO bb15_reader; GRANT SELECT ON t TO bb15_reader" >/dev/null
	got=$(bb_run_as_pg "$PGBIN/psql" -X -At -v VERBOSITY=verbose -h "$(bb_sockdir "$C")" \
		-p "$(bb_port "$C")" -U bb15_reader -d k1 \
		-c "SELECT brandbos.decrypt_text(tok) FROM t WHERE id = 1" 2>&1 || true)
	assert_match "$P decrypting an envelope whose key is gone fails with 42704 naming the key version" \
		'ERROR:  42704: data key version 1 does not exist' "$got"
	assert_match "$P ... and says why" 'DETAIL:.*dropped and created again' "$got"
	if [[ $got == *XX001* || $got == *altered* ]]; then
		fail "$P ... not as an altered envelope (XX001)" "$got"
	else
		pass "$P ... not as an altered envelope (XX001)"
	fi

	if sc_server_crashed "$C"; then
		fail "$P no backend crashed" "$(grep -aE 'terminated by signal|PANIC' "$(bb_logfile "$C")" | head -n 5)"
	else
		pass "$P no backend crashed"
	fi
	bb_cluster_destroy "$C"
}

run_suite no
run_suite yes
sc_finish
