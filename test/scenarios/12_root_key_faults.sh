#!/usr/bin/env bash
# 12_root_key_faults — a wrong, unsafe, missing or failing root key never stops the server
# (SPEC section 1): functions that need the key fail with SQLSTATE 55000, everything else
# keeps working, and no key material reaches the log.
#
# Run twice: with shared_preload_libraries = 'brandbos' (the postmaster reads the key) and
# without (each backend reads it on first use).  In each run, on a protected table:
#   1. another valid key in root_key_file   -> loaded, but data keys do not unwrap: 55000
#   2. the right key, file mode 0640        -> refused: not loaded, 55000
#   3. no root_key_file setting at all      -> not loaded, 55000; the _safe view works
#   4. the right key again                  -> everything reads
#   5. root_key_command = 'cat <key file>'  -> works
#   6. root_key_command that exits 1, and one that prints garbage -> not loaded, 55000
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS=20

run_suite() {
	local mode=$1 C key orig other plain got out err rc
	C=s12_$([[ $mode == yes ]] && echo preload || echo plain)
	local P="[preload=$mode]"
	sc_cluster "$C" 55512 "$mode"
	sc_helpers "$C"
	key=$(bb_keyfile "$C")
	orig=$(bb_clusterdir "$C")/root.key.orig
	other=$(bb_clusterdir "$C")/other.key
	cp -p "$key" "$orig"
	sc_write_key "$other"

	bb_psql "$C" >/dev/null <<SQL
CREATE EXTENSION brandbos;
CREATE TABLE t (id integer PRIMARY KEY, tok text, note text);
SELECT brandbos.protect_column('t', 'tok');
INSERT INTO t SELECT g, 'secret-' || g, 'note ' || g FROM generate_series(1, $ROWS) g;
SQL
	plain=$(sc_try "$C" "SELECT md5(string_agg(tok, ',' ORDER BY id)) FROM t_decrypted")
	assert_eq "$P baseline: root_key_loaded() is true" "t" "$(sc_try "$C" 'SELECT brandbos.root_key_loaded()')"
	assert_eq "$P baseline: protected values decrypt" \
		"$(printf 'secret-%s,' $(seq 1 $ROWS) | sed 's/,$//' | md5sum | cut -d' ' -f1)" "$plain"

	local READ="SELECT md5(string_agg(tok, ',')) FROM t_decrypted"
	local READ_ORD="SELECT md5(string_agg(tok, ',' ORDER BY id)) FROM t_decrypted"
	local INS="INSERT INTO t VALUES (1000, 'new secret', 'n')"

	# ---- 1. a different valid key -------------------------------------------------------
	bb_cluster_stop "$C"
	cp "$other" "$key"
	chmod 600 "$key"
	bb_cluster_start "$C"
	assert_eq "$P wrong key: server is up (select 1)" "1" "$(sc_try "$C" 'SELECT 1')"
	assert_eq "$P wrong key: root_key_loaded() is true (a well-formed key was read)" "t" \
		"$(sc_try "$C" 'SELECT brandbos.root_key_loaded()')"
	got=$(bb_psql "$C" -At -c "SELECT public.sqlstate_of(\$q\$$READ\$q\$)" \
		-c "SELECT public.sqlstate_of(\$q\$$INS\$q\$)" -c "SELECT 1" 2>&1 | tr '\n' ' ' || true)
	assert_eq "$P wrong key: reading _decrypted and INSERT fail with 55000, same session goes on" \
		"55000 55000 1 " "$got"
	got=$(sc_try "$C" "BEGIN; SELECT public.sqlstate_of('SELECT brandbos.rotate_key()'); ROLLBACK;")
	assert_eq "$P wrong key: rotate_key() is refused with 55000" "55000" "$got"
	rc=0
	err=$(bb_psql "$C" -v ON_ERROR_STOP=0 -At -c "$READ" -c "SELECT 1" 2>&1 >/dev/null) || rc=$?
	out=$(bb_psql "$C" -v ON_ERROR_STOP=0 -At -c "$READ" -c "SELECT 1" 2>/dev/null) || true
	if [[ $err == *ERROR* && $out == 1 ]]; then
		pass "$P wrong key: the client gets an ERROR (not a lost connection) and the session continues"
	else
		fail "$P wrong key: the client gets an ERROR (not a lost connection) and the session continues" \
			"stderr: $err" "stdout: $out"
	fi
	assert_eq "$P wrong key: a new session works" "1" "$(sc_try "$C" 'SELECT 1')"
	got=$(sc_try "$C" "SELECT count(*) FROM t")
	assert_eq "$P wrong key: the raw table is readable, no row was added" "$ROWS" "$got"

	# ---- 2. the right key in a group-readable file ----------------------------------------
	bb_cluster_stop "$C"
	cp "$orig" "$key"
	chmod 640 "$key"
	bb_cluster_start "$C"
	assert_eq "$P key file 0640: server is up" "1" "$(sc_try "$C" 'SELECT 1')"
	assert_eq "$P key file 0640: refused, root_key_loaded() is false" "f" \
		"$(sc_try "$C" 'SELECT brandbos.root_key_loaded()')"
	got=$(bb_psql "$C" -At -c "SELECT public.sqlstate_of(\$q\$SELECT brandbos.encrypt_text('x')\$q\$)" \
		-c "SELECT public.sqlstate_of(\$q\$$INS\$q\$)" -c "SELECT public.sqlstate_of(\$q\$$READ\$q\$)" \
		-c "SELECT 1" 2>&1 | tr '\n' ' ' || true)
	assert_eq "$P key file 0640: encrypt_text, INSERT and reading fail with 55000" "55000 55000 55000 1 " "$got"
	out=$(bb_psql "$C" -v ON_ERROR_STOP=0 -c "SELECT brandbos.encrypt_text('x')" 2>&1 || true)
	if [[ $out == *HINT:* ]]; then
		pass "$P key file 0640: the error has a hint"
	else
		fail "$P key file 0640: the error has a hint" "$out"
	fi

	# ---- 3. no root key setting -----------------------------------------------------------
	bb_cluster_stop "$C"
	chmod 600 "$key"
	sc_conf_unset "$C" brandbos.root_key_file
	bb_cluster_start "$C"
	assert_eq "$P no root key: server is up" "1" "$(sc_try "$C" 'SELECT 1')"
	assert_eq "$P no root key: root_key_loaded() is false" "f" "$(sc_try "$C" 'SELECT brandbos.root_key_loaded()')"
	got=$(bb_psql "$C" -At -c "SELECT public.sqlstate_of(\$q\$SELECT brandbos.encrypt_text('x')\$q\$)" \
		-c "SELECT public.sqlstate_of(\$q\$$INS\$q\$)" -c "SELECT public.sqlstate_of(\$q\$$READ\$q\$)" \
		-c "SELECT 1" 2>&1 | tr '\n' ' ' || true)
	assert_eq "$P no root key: encrypt_text, INSERT and reading fail with 55000" "55000 55000 55000 1 " "$got"
	got=$(sc_try "$C" "SELECT count(*), min(note) FROM t_safe")
	assert_eq "$P no root key: the _safe view still works" "$ROWS|note 1" "$got"
	got=$(sc_try "$C" "UPDATE t SET note = 'changed' WHERE id = 1; SELECT note FROM t_safe WHERE id = 1")
	assert_eq "$P no root key: an UPDATE of an unprotected column still works" "changed" "$got"

	# ---- 4. the right key again -----------------------------------------------------------
	bb_cluster_stop "$C"
	sc_conf_set "$C" brandbos.root_key_file "$key"
	bb_cluster_start "$C"
	assert_eq "$P key restored: root_key_loaded() is true" "t" "$(sc_try "$C" 'SELECT brandbos.root_key_loaded()')"
	assert_eq "$P key restored: every value decrypts as before" "$plain" "$(sc_try "$C" "$READ_ORD")"
	got=$(sc_try "$C" "$INS; SELECT tok FROM t_decrypted WHERE id = 1000; DELETE FROM t WHERE id = 1000")
	assert_eq "$P key restored: INSERT works and decrypts" "new secret" "$got"

	# ---- 5. root_key_command --------------------------------------------------------------
	bb_cluster_stop "$C"
	sc_conf_unset "$C" brandbos.root_key_file
	sc_conf_set "$C" brandbos.root_key_command "cat $orig"
	bb_cluster_start "$C"
	assert_eq "$P root_key_command 'cat <file>': root_key_loaded() is true" "t" \
		"$(sc_try "$C" 'SELECT brandbos.root_key_loaded()')"
	assert_eq "$P root_key_command 'cat <file>': every value decrypts" "$plain" "$(sc_try "$C" "$READ_ORD")"
	got=$(sc_try "$C" "$INS; SELECT tok FROM t_decrypted WHERE id = 1000; DELETE FROM t WHERE id = 1000")
	assert_eq "$P root_key_command 'cat <file>': INSERT works and decrypts" "new secret" "$got"

	# ---- 6. failing commands --------------------------------------------------------------
	local cmd
	for cmd in "exit 1" "echo not-a-key"; do
		bb_cluster_stop "$C"
		sc_conf_set "$C" brandbos.root_key_command "$cmd"
		bb_cluster_start "$C"
		assert_eq "$P root_key_command '$cmd': server is up" "1" "$(sc_try "$C" 'SELECT 1')"
		assert_eq "$P root_key_command '$cmd': root_key_loaded() is false" "f" \
			"$(sc_try "$C" 'SELECT brandbos.root_key_loaded()')"
		got=$(bb_psql "$C" -At -c "SELECT public.sqlstate_of(\$q\$SELECT brandbos.encrypt_text('x')\$q\$)" \
			-c "SELECT public.sqlstate_of(\$q\$$INS\$q\$)" -c "SELECT public.sqlstate_of(\$q\$$READ\$q\$)" \
			-c "SELECT 1" 2>&1 | tr '\n' ' ' || true)
		assert_eq "$P root_key_command '$cmd': encrypt_text, INSERT and reading fail with 55000" \
			"55000 55000 55000 1 " "$got"
	done

	# ---- the log --------------------------------------------------------------------------
	bb_cluster_stop "$C"
	local log
	log=$(bb_logfile "$C")
	if grep -aqiE '[0-9a-f]{64}' "$log"; then
		fail "$P the server log contains no 64-hex string" "$(grep -aiE '[0-9a-f]{64}' "$log" | head -n 3)"
	else
		pass "$P the server log contains no 64-hex string"
	fi
	local k hit=
	for k in "$(tr -d ' \n' <"$orig")" "$(tr -d ' \n' <"$other")"; do
		if grep -aqiF -- "$k" "$log" || grep -aqiF -- "${k:0:32}" "$log" || grep -aqiF -- "${k:32:32}" "$log"; then
			hit=yes
		fi
	done
	if [[ -z $hit ]]; then
		pass "$P neither key (nor half of one) is in the server log"
	else
		fail "$P neither key (nor half of one) is in the server log"
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
