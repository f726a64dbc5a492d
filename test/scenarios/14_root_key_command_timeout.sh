#!/usr/bin/env bash
# 14_root_key_command_timeout — a hanging brandbos.root_key_command never blocks the server
# (SPEC section 1, issue 10 point 10): after brandbos.root_key_command_timeout the command and
# its whole process group are killed, the server starts without a key, and the functions that
# need one fail with 55000 and a hint naming the timeout.  A command that prints a valid key
# after a short delay still works.
#
# Run twice: with shared_preload_libraries = 'brandbos' (the postmaster runs the command
# before it accepts connections) and without (each backend runs it on first use; there a
# query cancel, here statement_timeout, also kills it).  In each run:
#   1. root_key_command = 'sleep 600.<pid>; echo never', timeout 1s: the start returns in
#      bounded time, root_key_loaded() is false, a protected INSERT fails with 55000 and a
#      hint naming brandbos.root_key_command_timeout, the log says why (no key material),
#      and no sleep of ours is left alive, nor a zombie child of the postmaster;
#   2. (preload) a reload changing the timeout makes backends retry, bounded again;
#      (plain) a 60 s timeout and statement_timeout = 1s: the cancel kills the command;
#   3. root_key_command = 'sleep 0.5; cat <key file>', timeout 5s: everything works.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS=5
# a duration no other process uses: it names our sleeps in /proc
MARK="600.$$"

# PIDs of live (non-zombie) processes running "sleep $MARK"
our_sleeps() {
	local p cmd
	for p in /proc/[0-9]*; do
		{ cmd=$(tr '\0' ' ' <"$p/cmdline"); } 2>/dev/null || continue
		if [[ $cmd == "sleep $MARK " ]] && _bb_alive "${p#/proc/}"; then echo "${p#/proc/}"; fi
	done
}

# leftovers (only when the code under test failed): end exactly the processes this test started
_sc14_cleanup() {
	local p
	for p in $(our_sleeps); do kill -KILL "$p" 2>/dev/null || true; done
}
trap '_sc14_cleanup; _sc_exit' EXIT

no_sleeps_left() {
	local i left
	for ((i = 0; i < 50; i++)); do
		left=$(our_sleeps)
		if [[ -z $left ]]; then return 0; fi
		sleep 0.1
	done
	echo "$left"
	return 1
}

# zombie children of the postmaster that are a shell or a sleep (a reaped command leaves none)
zombie_children() {
	local pm p stat comm
	pm=$(head -n 1 "$(bb_datadir "$1")/postmaster.pid")
	for p in $(_bb_children "$pm"); do
		stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		comm=${stat#*(}; comm=${comm%%)*}
		stat=${stat##*) }
		if [[ ${stat:0:1} == Z && ( $comm == sh || $comm == dash || $comm == sleep ) ]]; then echo "$p"; fi
	done
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

run_suite() {
	local mode=$1 C key plain got out t0 el left rc
	C=s14_$([[ $mode == yes ]] && echo preload || echo plain)
	local P="[preload=$mode]"
	sc_cluster "$C" 55514 "$mode"
	sc_helpers "$C"
	key=$(bb_keyfile "$C")

	bb_psql "$C" >/dev/null <<SQL
CREATE EXTENSION brandbos;
CREATE TABLE t (id integer PRIMARY KEY, tok text);
SELECT brandbos.protect_column('t', 'tok');
INSERT INTO t SELECT g, 'secret-' || g FROM generate_series(1, $ROWS) g;
SQL
	local READ="SELECT string_agg(tok, ',' ORDER BY id) FROM t_decrypted"
	local INS="INSERT INTO t VALUES (1000, 'new secret')"
	plain=$(sc_try "$C" "$READ")
	assert_eq "$P baseline: values decrypt" "$(printf 'secret-%s,' $(seq 1 $ROWS) | sed 's/,$//')" "$plain"

	# ---- 1. a command that hangs ---------------------------------------------------------
	bb_cluster_stop "$C"
	sc_conf_unset "$C" brandbos.root_key_file
	sc_conf_set "$C" brandbos.root_key_command "sleep $MARK; echo never"
	sc_conf_set "$C" brandbos.root_key_command_timeout "1s"
	t0=$(now_ms); rc=0
	bb_run_as_pg "$PGBIN/pg_ctl" -D "$(bb_datadir "$C")" -l "$(bb_logfile "$C")" -w -t 60 -s start \
		>/dev/null 2>&1 || rc=$?
	el=$(( $(now_ms) - t0 ))
	assert_eq "$P hanging command: pg_ctl start succeeds" "0" "$rc"
	if (( el < 15000 )); then
		pass "$P hanging command: pg_ctl start returns within bounds (${el} ms, timeout 1 s)"
	else
		fail "$P hanging command: pg_ctl start returns within bounds" "took ${el} ms"
	fi
	t0=$(now_ms)
	assert_eq "$P hanging command: root_key_loaded() is false" "f" \
		"$(sc_try "$C" 'SELECT brandbos.root_key_loaded()')"
	el=$(( $(now_ms) - t0 ))
	if (( el < 10000 )); then
		pass "$P hanging command: root_key_loaded() answers within bounds (${el} ms)"
	else
		fail "$P hanging command: root_key_loaded() answers within bounds" "took ${el} ms"
	fi
	assert_eq "$P hanging command: a protected INSERT fails with 55000" "55000" "$(sc_sqlstate "$C" "$INS")"
	out=$(bb_psql "$C" -v ON_ERROR_STOP=0 -c "$INS" 2>&1 || true)
	assert_match "$P hanging command: the error's hint names brandbos.root_key_command_timeout" \
		'HINT:[^'$'\n'']*brandbos\.root_key_command_timeout' "$out"
	assert_match "$P hanging command: the detail says the command was killed at the deadline" \
		'DETAIL:[^'$'\n'']*did not finish within 1000 ms' "$out"
	assert_eq "$P hanging command: reading _decrypted fails with 55000" "55000" "$(sc_sqlstate "$C" "$READ")"
	assert_eq "$P hanging command: no row was added" "$ROWS" "$(sc_try "$C" 'SELECT count(*) FROM t')"
	if [[ $mode == yes ]]; then
		if grep -aq 'brandbos root key is not loaded: brandbos.root_key_command did not finish within 1000 ms' \
			"$(bb_logfile "$C")"; then
			pass "$P hanging command: the server log says the command timed out"
		else
			fail "$P hanging command: the server log says the command timed out" \
				"$(grep -a brandbos "$(bb_logfile "$C")" | tail -n 5)"
		fi
	fi
	if left=$(no_sleeps_left); then
		pass "$P hanging command: no sleep of the command is left running"
	else
		fail "$P hanging command: no sleep of the command is left running" "alive: $left"
	fi
	got=$(zombie_children "$C")
	assert_eq "$P hanging command: no zombie shell or sleep under the postmaster" "" "$got"

	# ---- 2. reload (preload) or cancel (plain) --------------------------------------------
	if [[ $mode == yes ]]; then
		sc_conf_set "$C" brandbos.root_key_command_timeout "2s"
		sc_try "$C" 'SELECT pg_reload_conf()' >/dev/null
		sleep 1
		t0=$(now_ms)
		out=$(bb_psql "$C" -v ON_ERROR_STOP=0 -c "$INS" 2>&1 || true)
		el=$(( $(now_ms) - t0 ))
		assert_match "$P after a reload: the backend retries the command and gives up at the new deadline" \
			'did not finish within 2000 ms' "$out"
		if (( el >= 1500 && el < 12000 )); then
			pass "$P after a reload: the retry is bounded by the new timeout (${el} ms)"
		else
			fail "$P after a reload: the retry is bounded by the new timeout" "took ${el} ms"
		fi
	else
		sc_conf_set "$C" brandbos.root_key_command_timeout "60s"
		sc_try "$C" 'SELECT pg_reload_conf()' >/dev/null
		t0=$(now_ms)
		got=$(bb_psql "$C" -v ON_ERROR_STOP=0 -At -v VERBOSITY=verbose -c "SET statement_timeout = '1s'" \
			-c "SELECT brandbos.root_key_loaded()" 2>&1 || true)
		el=$(( $(now_ms) - t0 ))
		assert_match "$P 60 s timeout, statement_timeout 1s: the call is cancelled (57014)" \
			'ERROR:  57014: canceling statement due to statement timeout' "$got"
		if (( el < 10000 )); then
			pass "$P the cancel stops the wait at once (${el} ms)"
		else
			fail "$P the cancel stops the wait at once" "took ${el} ms"
		fi
	fi
	if left=$(no_sleeps_left); then
		pass "$P no sleep of the command is left running"
	else
		fail "$P no sleep of the command is left running" "alive: $left"
	fi

	# ---- 3. a slow but working command ---------------------------------------------------
	bb_cluster_stop "$C"
	sc_conf_set "$C" brandbos.root_key_command "sleep 0.5; cat $key"
	sc_conf_set "$C" brandbos.root_key_command_timeout "5s"
	bb_cluster_start "$C"
	assert_eq "$P a key printed after 0.5 s: root_key_loaded() is true" "t" \
		"$(sc_try "$C" 'SELECT brandbos.root_key_loaded()')"
	assert_eq "$P a key printed after 0.5 s: every value decrypts" "$plain" "$(sc_try "$C" "$READ")"
	got=$(sc_try "$C" "$INS; SELECT tok FROM t_decrypted WHERE id = 1000")
	assert_eq "$P a key printed after 0.5 s: INSERT works and decrypts" "new secret" "$got"

	# ---- the log --------------------------------------------------------------------------
	bb_cluster_stop "$C"
	local log
	log=$(bb_logfile "$C")
	if grep -aqiE '[0-9a-f]{64}' "$log" || grep -aqiF -- "$(tr -d ' \n' <"$key" | cut -c1-32)" "$log"; then
		fail "$P the server log holds no key material" "$(grep -aiE '[0-9a-f]{32}' "$log" | head -n 3)"
	else
		pass "$P the server log holds no key material"
	fi
	if sc_server_crashed "$C"; then
		fail "$P no backend crashed" "$(grep -aE 'terminated by signal|PANIC' "$log" | head -n 5)"
	else
		pass "$P no backend crashed"
	fi
	bb_cluster_destroy "$C"
}

run_suite yes
run_suite no
sc_finish
