# shellcheck shell=bash
# test/citus/lib.sh — a three-node Citus cluster (coordinator + two workers) of throwaway
# PostgreSQL clusters on localhost, for the scenarios in test/citus/.  Source it after
# `set -euo pipefail`; it sources test/scenarios/lib.sh (pass, fail, check, assert_eq,
# sc_finish, ...) itself.  Citus must be installed in $PGBIN's PostgreSQL (test/citus/build.sh).
#
#   ct_cluster [EXTRA_CONF...]   create and start coord, w1, w2: TCP on 127.0.0.1 (free
#                                ports), shared_preload_libraries = 'citus,brandbos', the
#                                same root key and JWT secret file on every node,
#                                citus.enable_unsafe_triggers and
#                                citus.propagate_set_commands = 'local'; each EXTRA_CONF
#                                "key = value" line is added to every node.  Then CREATE
#                                EXTENSION citus, brandbos in $BB_DB on every node and
#                                citus_set_coordinator_host + citus_add_node.
#   ct_psql NODE [psql args...]  psql -X -At -v ON_ERROR_STOP=1 on NODE (coord, w1, w2) as
#                                postgres ($CT_USER if set), database $BB_DB
#   ct_sql NODE SQL              ct_psql NODE -c SQL
#   ct_try NODE SQL              the output and errors of SQL, never fails
#   ct_sqlstate NODE SQL         SQLSTATE of SQL (00000 when it succeeded)
#   ct_all SQL                   ct_sql on every node, in order coord w1 w2
#   ct_nodes                     prints "coord w1 w2"

# shellcheck source-path=SCRIPTDIR source=../scenarios/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scenarios/lib.sh"

CT_NODES=(coord w1 w2)
export BB_DB=${CT_DB:-bbcitus}

ct_nodes() { echo "${CT_NODES[@]}"; }

ct_cluster() {
	local n key secret line
	BB_LISTEN=127.0.0.1
	export BB_LISTEN
	for n in "${CT_NODES[@]}"; do
		SC_CLUSTERS+=("$n")
		bb_cluster_create "$n" auto yes
	done
	key=$(bb_keyfile coord)
	secret="$(bb_clusterdir coord)/jwt.secret"
	sc_write_secret "$secret" "citus-scenario-jwt-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	for n in "${CT_NODES[@]}"; do
		if [[ $n != coord ]]; then
			cp "$key" "$(bb_keyfile "$n")"
			[[ $EUID -ne 0 ]] || chown postgres:postgres "$(bb_keyfile "$n")"
		fi
		sc_conf_set "$n" shared_preload_libraries citus,brandbos
		sc_conf_set "$n" brandbos.jwt_secret_file "$secret"
		sc_conf_set "$n" citus.enable_unsafe_triggers on
		sc_conf_set "$n" citus.propagate_set_commands local
		sc_conf_set "$n" max_connections 100
		sc_conf_set "$n" max_prepared_transactions 50
		sc_conf_set "$n" wal_level logical
		for line in "$@"; do
			sc_conf_set "$n" "${line%% = *}" "${line#* = }"
		done
		bb_cluster_start "$n"
		BB_DB=postgres bb_psql "$n" -c "CREATE DATABASE $BB_DB"
		ct_sql "$n" "CREATE EXTENSION citus; CREATE EXTENSION brandbos;" >/dev/null
	done
	ct_sql coord "SELECT citus_set_coordinator_host('127.0.0.1', $(bb_port coord))" >/dev/null
	for n in w1 w2; do
		ct_sql coord "SELECT citus_add_node('127.0.0.1', $(bb_port "$n"))" >/dev/null
	done
}

ct_psql() {
	local n=$1; shift
	PGCONNECT_TIMEOUT=10 "$PGBIN/psql" -X -At -v ON_ERROR_STOP=1 -q \
		-h 127.0.0.1 -p "$(bb_port "$n")" -U "${CT_USER:-postgres}" -d "$BB_DB" "$@"
}
ct_sql() { ct_psql "$1" -c "$2"; }
ct_try() { ct_psql "$1" -c "$2" 2>&1 || true; }
ct_sqlstate() {
	local out
	out=$(ct_psql "$1" -v VERBOSITY=verbose -c "$2" 2>&1) && { echo 00000; return; }
	sed -nE 's/^(ERROR|FATAL): +([0-9A-Z]{5}):.*/\2/p' <<<"$out" | head -1
}
ct_all() { local n; for n in "${CT_NODES[@]}"; do ct_sql "$n" "$1"; done; }
