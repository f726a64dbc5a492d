#!/usr/bin/env bash
# 15_no_plaintext_in_errors — an error raised while a transaction writes a protected table
# carries neither the COPY input line nor the statement text, to the client or to the
# server log (issue 10 point 9; README "Secrets in errors and the log").
#
# A preloaded cluster logs with log_min_error_statement = error, log_error_verbosity =
# verbose and log_parameter_max_length_on_error = -1 (every STATEMENT, CONTEXT and bind
# parameter that PostgreSQL would write).  An ordinary login role owns two tables of one
# shape: t, whose column tok it protected itself, and u, unprotected (the control).  Each
# case runs on both with a fresh secret and asserts
#   - the SQLSTATE the client got (psql with VERBOSITY verbose, SHOW_CONTEXT always);
#   - on t: the secret is neither in the client's output nor in the server log, nor is
#     what the control shows (the quoted line, the bytes, the parameters);
#   - on u: the same error still shows it, so the scrubbing is targeted.
# Cases: COPY FROM STDIN with a duplicate key, a CHECK failure on another column, a bad
# value in another column, a missing column, invalid UTF-8 inside the secret, a WARNING
# from a column default; INSERT ... VALUES with a duplicate key, a bad literal in another
# column (parse analysis: as the first statement of a session and after another one),
# the same in an UPDATE, 1/0 (planner); PREPARE/EXECUTE with a duplicate key and a bad parameter; the extended
# protocol with bound parameters (pgbench -M extended); dynamic SQL in PL/pgSQL (CONTEXT
# and QUERY); a table protected by another session while this one is connected; the root
# key missing (COPY and INSERT fail with 55000).  Then: the flag lasts until the end of
# the transaction and not longer; brandbos.scrub_errors is superuser-only, "off" turns
# scrubbing off and "all" covers even a syntax error.  Finally a cluster without preload
# shows what is not covered there: the COPY line and the statement reach client and log.
# shellcheck disable=SC2317   # the case_* functions are called through pair / protected_only
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C=s15_preload
N=s15_plain
CLIENT_TIMEOUT=60

# q CLUSTER ROLE [psql args...]: a fresh session, verbose errors with context, never fails
q() {
	local name=$1 role=$2
	shift 2
	bb_run_as_pg timeout "$CLIENT_TIMEOUT" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=0 \
		-h "$(bb_sockdir "$name")" -p "$(bb_port "$name")" -U "$role" -d "${BB_DB:-postgres}" \
		-c '\set VERBOSITY verbose' -c '\set SHOW_CONTEXT always' "$@" 2>&1 || true
}

# qs CLUSTER ROLE < script: a script as ROLE that must succeed
qs() {
	bb_run_as_pg timeout "$CLIENT_TIMEOUT" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
		-h "$(bb_sockdir "$1")" -p "$(bb_port "$1")" -U "$2" -d "${BB_DB:-postgres}" -f -
}

log_size() { stat -c %s "$(bb_logfile "$1")"; }
log_since() { tail -c +"$(($2 + 1))" "$(bb_logfile "$1")"; }

# the first SQLSTATE of an ERROR/WARNING/FATAL in verbose output, or "none"
sqlstate_in() {
	local s
	s=$(grep -aoE '(ERROR|WARNING|FATAL):  [0-9A-Z]{5}:' <<<"$1" | head -n 1 | sed -E 's/.*:  ([0-9A-Z]{5}):$/\1/' || true)
	echo "${s:-none}"
}

new_secret() { echo "SECRET_$(head -c 6 /dev/urandom | od -An -v -tx1 | tr -d ' \n')_$1"; }

# case_* TABLE SECRET: run one failing action and print what the client saw
case_copy_dup()     { printf '1\t%s\t5\tn\n' "$2" | q "$C" app -c "COPY $1 FROM STDIN"; }
case_copy_check()   { printf '2\t%s\t-5\tn\n' "$2" | q "$C" app -c "COPY $1 FROM STDIN"; }
case_copy_badval()  { printf '3\t%s\tabc\tn\n' "$2" | q "$C" app -c "COPY $1 FROM STDIN"; }
case_copy_missing() { printf '3\t%s\t5\n' "$2" | q "$C" app -c "COPY $1 FROM STDIN"; }
case_copy_utf8()    { printf '3\t%s\xc3\x28x\t5\tn\n' "$2" | q "$C" app -c "COPY $1 FROM STDIN"; }
case_copy_warning() { printf '9\t%s\t5\n' "$2" | q "$C" app -c "COPY $1 (id, tok, n) FROM STDIN"; }
case_insert_dup()   { q "$C" app -c "INSERT INTO $1 VALUES (1, '$2', 3, 'n')"; }
case_insert_parse() { q "$C" app -c "INSERT INTO $1 VALUES (4, '$2', 'abc', 'n')"; }
case_insert_parse2() { q "$C" app -c "SELECT 1" -c "INSERT INTO $1 VALUES (4, '$2', 'abc', 'n')"; }
case_update_parse() { q "$C" app -c "UPDATE $1 SET tok = '$2', n = 'abc' WHERE id = 1"; }
case_insert_plan()  { q "$C" app -c "INSERT INTO $1 VALUES (4, '$2', 1/0, 'n')"; }
case_execute_dup() {
	q "$C" app -c "PREPARE p AS INSERT INTO $1 VALUES (\$1, \$2, \$3, 'n')" -c "EXECUTE p(1, '$2', 3)"
}
case_execute_param() {
	q "$C" app -c "PREPARE p AS INSERT INTO $1 VALUES (\$1, \$2, \$3, 'n')" -c "EXECUTE p(4, '$2', 'abc')"
}
case_extended() {
	local f
	f=$(bb_clusterdir "$C")/ext_$1.sql
	echo "INSERT INTO $1 VALUES (1, :tok, 3, 'n');" >"$f"
	chmod 644 "$f"
	bb_run_as_pg timeout "$CLIENT_TIMEOUT" "$PGBIN/pgbench" -n -M extended -t 1 -f "$f" -D tok="$2" \
		-h "$(bb_sockdir "$C")" -p "$(bb_port "$C")" -U app "${BB_DB:-postgres}" 2>&1 || true
}
case_plpgsql_dup()   { q "$C" app -c "SELECT ins_dyn('$1', '$2', '3')"; }
case_plpgsql_parse() { q "$C" app -c "SELECT ins_dyn('$1', '$2', 'abc')"; }
case_copy_new()     { printf '30\t%s\t5\tn\n' "$2" | q "$C" app -c "COPY $1 FROM STDIN"; }
case_insert_new()   { q "$C" app -c "INSERT INTO $1 VALUES (31, '$2', 3, 'n')"; }

# pair DESC STATE NEEDLE FUNC: FUNC on t and u.  NEEDLE is an extended regex of what the
# control shows (@S@ stands for the secret); on t neither it nor the secret may appear.
pair() {
	local desc=$1 state=$2 needle=$3 fn=$4 tbl secret off out log got re
	for tbl in t u; do
		secret=$(new_secret "$fn")
		re=${needle//@S@/$secret}
		off=$(log_size "$C")
		out=$("$fn" "$tbl" "$secret")
		log=$(log_since "$C" "$off")
		got=$(sqlstate_in "$out")
		if [[ $got == none ]]; then got=$(sqlstate_in "$log"); fi
		assert_eq "$desc [$tbl]: SQLSTATE" "$state" "$got"
		if [[ $tbl == t ]]; then
			if grep -aqF -- "$secret" <<<"$out"$'\n'"$log"; then
				fail "$desc [t, protected]: the secret is in neither the client's error nor the log" \
					"client:" "$out" "log:" "$log"
			else
				pass "$desc [t, protected]: the secret is in neither the client's error nor the log"
			fi
			if grep -aqE -- "$re" <<<"$out"$'\n'"$log"; then
				fail "$desc [t, protected]: what the control shows is hidden (/$needle/)" "$out" "$log"
			else
				pass "$desc [t, protected]: what the control shows is hidden (/$needle/)"
			fi
		else
			if grep -aqE -- "$re" <<<"$out"$'\n'"$log"; then
				pass "$desc [u, control]: the unprotected table still shows it (/$needle/)"
			else
				fail "$desc [u, control]: the unprotected table still shows it (/$needle/)" "$out" "$log"
			fi
		fi
	done
}

# only [t]: FUNC must fail with STATE and leave the secret nowhere
protected_only() {
	local desc=$1 state=$2 fn=$3 secret off out log
	secret=$(new_secret "$fn")
	off=$(log_size "$C")
	out=$("$fn" t "$secret")
	log=$(log_since "$C" "$off")
	assert_eq "$desc: SQLSTATE" "$state" "$(sqlstate_in "$out")"
	if grep -aqF -- "$secret" <<<"$out"$'\n'"$log"; then
		fail "$desc: the secret is in neither the client's error nor the log" "client:" "$out" "log:" "$log"
	else
		pass "$desc: the secret is in neither the client's error nor the log"
	fi
}

setup_tables() {
	local name=$1
	bb_psql "$name" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE ROLE app LOGIN;
GRANT CREATE ON SCHEMA public TO app;
SQL
	qs "$name" app >/dev/null <<'SQL'
CREATE FUNCTION warn_default() RETURNS text LANGUAGE plpgsql
	AS $$ BEGIN RAISE WARNING 'default used'; RETURN 'd'; END $$;
CREATE FUNCTION ins_dyn(tbl text, s text, n text) RETURNS void LANGUAGE plpgsql
	AS $$ BEGIN EXECUTE format('INSERT INTO %I VALUES (1, %L, %L, ''n'')', tbl, s, n); END $$;
CREATE FUNCTION noisy(n int) RETURNS boolean LANGUAGE plpgsql
	AS $$ BEGIN IF n = 77 THEN RAISE NOTICE 'checking'; END IF; RETURN true; END $$;
CREATE TABLE t (
	id		int PRIMARY KEY,
	tok		text UNIQUE,
	n		int CHECK (n > 0) CHECK (noisy(n)),
	note	text NOT NULL DEFAULT warn_default()
);
CREATE TABLE u (LIKE t INCLUDING ALL);
CREATE TABLE v (LIKE t INCLUDING ALL);
-- a row trigger makes COPY into u insert row by row, as into t (a table without one is
-- buffered, and an error while flushing the buffer cannot quote its line)
CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER u_noop BEFORE INSERT OR UPDATE ON u FOR EACH ROW EXECUTE FUNCTION noop();
SELECT brandbos.protect_column('t', 'tok');
INSERT INTO t VALUES (1, 'first', 1, 'n');
INSERT INTO u VALUES (1, 'first', 1, 'n');
INSERT INTO v VALUES (1, 'first', 1, 'n');
SQL
	assert_eq "[$name] app owns t, tok is protected (the stored value is an envelope)" "t|t" \
		"$(sc_try "$name" "SELECT pg_get_userbyid(relowner) = 'app', (SELECT tok LIKE 'bbx1:%' FROM t) FROM pg_class WHERE oid = 't'::regclass")"
}

# ---- preloaded cluster --------------------------------------------------------------------
sc_cluster "$C" 55515 yes
bb_cluster_stop "$C"
sc_conf_set "$C" log_min_error_statement error
sc_conf_set "$C" log_error_verbosity verbose
sc_conf_set "$C" log_parameter_max_length_on_error -1
bb_cluster_start "$C"
setup_tables "$C"

pair "COPY FROM STDIN, duplicate key" 23505 '@S@' case_copy_dup
pair "COPY FROM STDIN, CHECK on another column" 23514 '@S@' case_copy_check
pair "COPY FROM STDIN, bad value in another column" 22P02 'column n: "abc"' case_copy_badval
pair "COPY FROM STDIN, a column missing from the line" 22P04 '@S@' case_copy_missing
pair "COPY FROM STDIN, invalid UTF-8 inside the secret" 22021 '0xc3 0x28' case_copy_utf8
pair "COPY FROM STDIN, a WARNING from a column default" 01000 '@S@' case_copy_warning
pair "INSERT ... VALUES, duplicate key" 23505 '@S@' case_insert_dup
pair "INSERT ... VALUES, bad literal in another column, first statement of a session" 22P02 '@S@' case_insert_parse
pair "INSERT ... VALUES, bad literal in another column, after another statement" 22P02 '@S@' case_insert_parse2
pair "UPDATE ... SET, bad literal in another column (parse analysis)" 22P02 '@S@' case_update_parse
pair "INSERT ... VALUES with 1/0 (raised while planning)" 22012 '@S@' case_insert_plan
pair "PREPARE/EXECUTE, duplicate key" 23505 '@S@' case_execute_dup
pair "PREPARE/EXECUTE, bad parameter" 22P02 '@S@' case_execute_param
pair "extended protocol, bound parameter, duplicate key (log_parameter_max_length_on_error)" 23505 '@S@' case_extended
pair "PL/pgSQL dynamic INSERT, duplicate key (CONTEXT has the SQL)" 23505 '@S@' case_plpgsql_dup
pair "PL/pgSQL dynamic INSERT, bad value (QUERY has the SQL)" 22P02 '@S@' case_plpgsql_parse

# COPY keeps the line number and column for the DBA
out=$(printf '3\tx\tabc\tn\n' | q "$C" app -c "COPY t FROM STDIN")
assert_match "COPY on t: the context still names the table, line and column" \
	'CONTEXT:  COPY t, line 1, column n' "$out"
assert_match "COPY on t: the context says why the rest is hidden" \
	'brandbos: context hidden because the transaction writes a protected table' "$out"

# a table protected by another session after this one loaded its list
secret=$(new_secret other_session)
off=$(log_size "$C")
conn="-h $(bb_sockdir "$C") -p $(bb_port "$C")"
out=$(q "$C" app -c "SELECT 1" \
	-c "\\! $PGBIN/psql -X -q $conn -U app -d ${BB_DB:-postgres} -c \"SELECT brandbos.protect_column('v', 'tok')\" >/dev/null" \
	-c "INSERT INTO v VALUES (4, '$secret', 'abc', 'n')")
log=$(log_since "$C" "$off")
assert_eq "table protected by another session meanwhile: SQLSTATE" 22P02 "$(sqlstate_in "$out")"
if grep -aqF -- "$secret" <<<"$out"$'\n'"$log"; then
	fail "table protected by another session meanwhile: the secret is hidden" "$out" "$log"
else
	pass "table protected by another session meanwhile: the secret is hidden"
fi
assert_eq "table protected by another session meanwhile: v is protected now" "t" \
	"$(sc_try "$C" "SELECT tok LIKE 'bbx1:%' FROM v WHERE id = 1")"

# a unique index on a protected column compares envelopes (a random nonce each): the same
# secret twice never conflicts, so "Key (tok)=(...)" cannot quote plaintext; on u it does
secret=$(new_secret unique_tok)
off=$(log_size "$C")
out=$(q "$C" app -c "INSERT INTO t VALUES (40, '$secret', 1, 'n')" -c "INSERT INTO t VALUES (41, '$secret', 1, 'n')")
log=$(log_since "$C" "$off")
assert_eq "unique index on the protected column: the same secret twice is no conflict" "none|2" \
	"$(sqlstate_in "$out")|$(sc_try "$C" "SELECT count(*) FROM t WHERE id IN (40, 41)")"
if grep -aqF -- "$secret" <<<"$out"$'\n'"$log"; then
	fail "unique index on the protected column: the secret appears nowhere" "$out" "$log"
else
	pass "unique index on the protected column: the secret appears nowhere"
fi
out=$(q "$C" app -c "INSERT INTO u VALUES (40, '$secret', 1, 'n')" -c "INSERT INTO u VALUES (41, '$secret', 1, 'n')")
assert_match "unique index on u (control): the detail quotes the value" "Key \\(tok\\)=\\($secret\\)" "$out"

# not covered, as documented: a NOTICE below log_min_messages is not logged, so the hook
# never sees it, and the client gets its context unchanged
secret=$(new_secret notice)
off=$(log_size "$C")
out=$(printf '50\t%s\t77\tn\n' "$secret" | q "$C" app -c "COPY t FROM STDIN")
log=$(log_since "$C" "$off")
if grep -aqF -- "$secret" <<<"$log"; then
	fail "NOTICE during COPY into t: not in the server log" "$log"
else
	pass "NOTICE during COPY into t: not in the server log"
fi
assert_match "NOTICE during COPY into t: the client sees its unscrubbed context (documented gap)" \
	"NOTICE:  00000: checking" "$out"
if grep -aqF -- "$secret" <<<"$out"; then
	pass "NOTICE during COPY into t: the client's copy of the notice quotes the line (documented gap)"
else
	fail "NOTICE during COPY into t: the client's copy of the notice quotes the line (documented gap)" "$out"
fi

# the flag lasts until the end of the transaction (documented over-scrubbing), not longer
secret=$(new_secret same_xact)
off=$(log_size "$C")
out=$(q "$C" app -c "BEGIN" -c "INSERT INTO t VALUES (20, 'fine', 1, 'n')" \
	-c "INSERT INTO u VALUES (1, '$secret', 3, 'n')" -c "ROLLBACK" \
	-c "INSERT INTO u VALUES (1, '${secret}_next', 3, 'n')")
log=$(log_since "$C" "$off")
if grep -aqF -- "STATEMENT:  INSERT INTO u VALUES (1, '$secret'," <<<"$log"; then
	fail "an error on u after writing t in the same transaction is scrubbed too" "$log"
else
	pass "an error on u after writing t in the same transaction is scrubbed too"
fi
assert_match "the next transaction's error on u shows its statement again" \
	"STATEMENT:  INSERT INTO u VALUES \\(1, '${secret}_next'" "$log"

# ---- the root key missing: the protect trigger itself fails --------------------------------
bb_cluster_stop "$C"
sc_conf_unset "$C" brandbos.root_key_file
bb_cluster_start "$C"
assert_eq "no root key: root_key_loaded() is false" "f" "$(sc_try "$C" 'SELECT brandbos.root_key_loaded()')"
protected_only "no root key: COPY FROM STDIN into t" 55000 case_copy_new
protected_only "no root key: INSERT ... VALUES into t" 55000 case_insert_new
bb_cluster_stop "$C"
sc_conf_set "$C" brandbos.root_key_file "$(bb_keyfile "$C")"
bb_cluster_start "$C"
assert_eq "root key restored: root_key_loaded() is true" "t" "$(sc_try "$C" 'SELECT brandbos.root_key_loaded()')"

# ---- the setting ----------------------------------------------------------------------------
out=$(q "$C" app -c "SET brandbos.scrub_errors = off")
assert_eq "brandbos.scrub_errors: an ordinary role cannot SET it" 42501 "$(sqlstate_in "$out")"
assert_eq "brandbos.scrub_errors: default is protected" "protected" "$(sc_try "$C" 'SHOW brandbos.scrub_errors')"

bb_psql "$C" -c "ALTER SYSTEM SET brandbos.scrub_errors = off" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
secret=$(new_secret scrub_off)
off=$(log_size "$C")
out=$(case_copy_dup t "$secret")
log=$(log_since "$C" "$off")
if grep -aqF -- "$secret" <<<"$out" && grep -aqF -- "$secret" <<<"$log"; then
	pass "brandbos.scrub_errors = off: the COPY line of t is shown again (the switch works)"
else
	fail "brandbos.scrub_errors = off: the COPY line of t is shown again (the switch works)" "$out" "$log"
fi

bb_psql "$C" -c "ALTER SYSTEM SET brandbos.scrub_errors = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
secret=$(new_secret scrub_all)
off=$(log_size "$C")
out=$(q "$C" app -c "INSERT INTO u VALUES (1, '$secret'" -c "SELECT 1")
out+=$'\n'$(case_copy_dup u "${secret}_copy")
log=$(log_since "$C" "$off")
assert_eq "brandbos.scrub_errors = all: a syntax error is still 42601" 42601 "$(sqlstate_in "$out")"
if grep -aqF -- "$secret" <<<"$out"$'\n'"$log"; then
	fail "brandbos.scrub_errors = all: no statement or COPY line of u either, even for a syntax error" "$out" "$log"
else
	pass "brandbos.scrub_errors = all: no statement or COPY line of u either, even for a syntax error"
fi
bb_psql "$C" -c "ALTER SYSTEM RESET brandbos.scrub_errors" -c "SELECT pg_reload_conf()" >/dev/null

if sc_server_crashed "$C"; then
	fail "preloaded: no backend crashed" "$(grep -aE 'terminated by signal|PANIC' "$(bb_logfile "$C")" | head -n 5)"
else
	pass "preloaded: no backend crashed"
fi
bb_cluster_destroy "$C"

# ---- without preload: what is not covered (README) ------------------------------------------
C=$N
sc_cluster "$C" 55516 no
bb_cluster_stop "$C"
sc_conf_set "$C" log_min_error_statement error
sc_conf_set "$C" log_error_verbosity verbose
bb_cluster_start "$C"
setup_tables "$C"
secret=$(new_secret plain_copy)
off=$(log_size "$C")
out=$(case_copy_dup t "$secret")
log=$(log_since "$C" "$off")
assert_eq "without preload: COPY duplicate key on t still fails with 23505" 23505 "$(sqlstate_in "$out")"
if grep -aqF -- "$secret" <<<"$out" && grep -aqF -- "$secret" <<<"$log"; then
	pass "without preload (not covered, as documented): the COPY line reaches client and log"
else
	fail "without preload (not covered, as documented): the COPY line reaches client and log" "$out" "$log"
fi
secret=$(new_secret plain_insert)
off=$(log_size "$C")
out=$(case_insert_dup t "$secret")
log=$(log_since "$C" "$off")
assert_match "without preload (not covered, as documented): the STATEMENT line holds the literal" \
	"STATEMENT:  INSERT INTO t VALUES \\(1, '$secret'" "$log"
bb_cluster_destroy "$C"

sc_finish
