# shellcheck shell=bash
# test/scenarios/lib.sh — small helpers shared by the scenario scripts.
#
# Source it after `set -euo pipefail`; it sources test/lib/cluster.sh itself.
#
#   sc_cluster NAME PORT PRELOAD     create + start a throwaway cluster; it is destroyed
#                                    when the script exits (any number of clusters).  PORT
#                                    is a hint or "auto": the cluster gets a free port (see
#                                    "Ports" in test/lib/cluster.sh); read it with bb_port
#   pass DESC / fail DESC [DIAG...]  print "ok N - DESC" / "not ok N - DESC" (+ "# DIAG")
#   check DESC CMD...                pass when CMD succeeds, fail otherwise
#   assert_eq DESC EXPECTED ACTUAL   string equality, prints both values on failure
#   assert_match DESC REGEX ACTUAL   bash regex match
#   diag TEXT...                     "# TEXT" lines
#   sc_try NAME SQL                  psql -At -c SQL; prints stdout+stderr, never fails
#   sc_helpers NAME [DB]             creates public.sqlstate_of(text) in DB (default $BB_DB)
#   sc_sqlstate NAME SQL             runs SQL (one statement) and prints its SQLSTATE,
#                                    00000 when it succeeded (needs sc_helpers)
#   sc_conf_set NAME KEY VALUE       set KEY in postgresql.conf (replacing earlier lines)
#   sc_conf_unset NAME KEY           remove KEY from postgresql.conf
#   sc_write_key PATH                write a fresh random root key (0600, server's user)
#   sc_write_secret PATH TEXT        write TEXT and a newline to PATH (0600, server's user),
#                                    e.g. for brandbos.jwt_secret_file
#   sc_server_crashed NAME           exit 0 when the server log shows a crashed backend
#   sc_finish                        print the plan, exit 1 if anything failed
#   sc_extension_file SRC            put SRC (e.g. an old release's install script) into the
#                                    extension directory of $PGBIN's PostgreSQL for this
#                                    scenario.  Other runs on the machine may use the same
#                                    file at the same time: it is put there by an atomic
#                                    rename when missing, under a shared flock(2) held until
#                                    the script exits, and removed then by the last user
#                                    (whoever gets the lock exclusively).  Returns non-zero
#                                    (reason on stderr) when another file of that name is
#                                    there.  Never write into the installation otherwise.
#
# PgBouncer (Debian package pgbouncer; $PGBOUNCER, default /usr/sbin/pgbouncer):
#   sc_pgbouncer CLUSTER PORT POOL_SIZE USER...
#                                    start a PgBouncer on 127.0.0.1:$PGB_PORT, a free port
#                                    from bb_port_reserve (PORT is a hint or "auto"; use
#                                    $PGB_PORT, not PORT, afterwards), in front of CLUSTER
#                                    (over its unix socket): pool_mode = transaction, no server
#                                    reset query, databases bbpool (default_pool_size =
#                                    POOL_SIZE) and bbone (pool_size = 1), both the cluster's
#                                    postgres database; the USERs may log in (trust), postgres
#                                    is the admin.  Waits until the first USER can connect;
#                                    returns non-zero (reason on stderr) when it cannot.  Its
#                                    files and pid file are in the cluster's directory; it is
#                                    stopped when the script exits.
#   sc_pgbouncer_stop [CLUSTER]      stop the PgBouncer of CLUSTER (default: the one started),
#                                    waiting until it is gone; call it before sc_cluster to
#                                    stop one that an earlier, killed run left behind
#   pgb_psql DB [psql args...]       psql through it as $PGB_USER (default: the first USER)
#   pgb_admin SQL                    its admin console ('SHOW ...'), -A -F '|'
#
# When the script dies before sc_finish (a set-up step failed under set -e), the exit
# trap reports it as a failed check, shows the end of the server logs and exits non-zero.

# shellcheck source-path=SCRIPTDIR source=../lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
export LC_ALL=C

SC_N=0
SC_FAILED=0
SC_FINISHED=0
SC_CLUSTERS=()

diag() {
	local line
	for line in "$@"; do
		while IFS= read -r l; do printf '# %s\n' "$l"; done <<<"$line"
	done
}

pass() { SC_N=$((SC_N + 1)); printf 'ok %d - %s\n' "$SC_N" "$1"; }

fail() {
	SC_N=$((SC_N + 1)); SC_FAILED=$((SC_FAILED + 1))
	printf 'not ok %d - %s\n' "$SC_N" "$1"
	shift
	if (( $# > 0 )); then diag "$@"; fi
}

check() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc" "command failed: $*"; fi
}

assert_eq() {
	if [[ $2 == "$3" ]]; then
		pass "$1"
	else
		fail "$1" "expected: $2" "  actual: $3"
	fi
}

assert_match() {
	if [[ $3 =~ $2 ]]; then
		pass "$1"
	else
		fail "$1" "expected to match: $2" "                  actual: $3"
	fi
}

sc_try() {
	local name=$1 sql=$2
	bb_psql "$name" -At -c "$sql" 2>&1 || true
}

sc_helpers() {
	local name=$1 db=${2:-${BB_DB:-postgres}}
	# shellcheck disable=SC2016   # dollar quotes are SQL
	BB_DB=$db bb_psql "$name" -c '
		CREATE OR REPLACE FUNCTION public.sqlstate_of(q text) RETURNS text
		LANGUAGE plpgsql AS $f$
		BEGIN
			EXECUTE q;
			RETURN $$00000$$;
		EXCEPTION WHEN OTHERS THEN
			RETURN SQLSTATE;
		END
		$f$;'
}

# SQL is passed as a dollar-quoted literal; it must not contain $q$.
sc_sqlstate() {
	local name=$1 sql=$2
	sc_try "$name" "SELECT public.sqlstate_of(\$q\$$sql\$q\$)"
}

_sc_conf() { echo "$(bb_datadir "$1")/postgresql.conf"; }

sc_conf_unset() {
	local conf
	conf=$(_sc_conf "$1")
	sed -i -E "/^[[:space:]]*${2//./\\.}[[:space:]]*=/d" "$conf"
	if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$conf"; fi
}

sc_conf_set() {
	sc_conf_unset "$1" "$2"
	printf "%s = '%s'\n" "$2" "$3" >>"$(_sc_conf "$1")"
}

# pg_reload_conf() and wait until the postmaster has read the configuration again: a session
# started after this returns sees the new settings (the postmaster signals the running backends
# after it has reloaded, so they see them from their next statement).  Prints nothing; fails
# when the reload is not seen within 30 s.
sc_reload() {
	local name=$1 before after i
	before=$(bb_psql_value "$name" "SELECT pg_conf_load_time()")
	bb_psql_value "$name" "SELECT pg_reload_conf()" >/dev/null
	for ((i = 0; i < 300; i++)); do
		after=$(bb_psql_value "$name" "SELECT pg_conf_load_time() > '$before'::timestamptz")
		if [[ $after == t ]]; then return 0; fi
		sleep 0.1
	done
	echo "lib.sh: $name did not reload its configuration within 30 s" >&2
	return 1
}

# One long-lived psql session on cluster NAME (database DB, default $BB_DB), for what an
# already-open session sees: sc_session_open NAME [DB]; sc_session SQL (called directly, not
# in $(...), so its counter survives; what the SQL printed, errors included, is left in
# SC_SESSION_RESULT); sc_session_close.  One such session at a time.
sc_session_open() {
	local name=$1 db=${2:-${BB_DB:-postgres}} fifo
	fifo=$(bb_clusterdir "$name")/session.fifo
	SC_SESSION_OUT=$(bb_clusterdir "$name")/session.out
	rm -f "$fifo"
	mkfifo "$fifo"
	: >"$SC_SESSION_OUT"
	BB_DB=$db bb_psql "$name" -At -v ON_ERROR_STOP=0 -v VERBOSITY=verbose <"$fifo" >"$SC_SESSION_OUT" 2>&1 &
	SC_SESSION_PID=$!
	exec 7>"$fifo"
	SC_SESSION_N=0
}
sc_session() {
	local i before
	SC_SESSION_N=$((SC_SESSION_N + 1))
	before=$(wc -l <"$SC_SESSION_OUT")
	printf '%s;\nSELECT %s;\n' "$1" "'end-$SC_SESSION_N'" >&7
	for ((i = 0; i < 100; i++)); do
		if grep -qx "end-$SC_SESSION_N" "$SC_SESSION_OUT"; then break; fi
		sleep 0.1
	done
	SC_SESSION_RESULT=$(tail -n +"$((before + 1))" "$SC_SESSION_OUT" | grep -vx "end-$SC_SESSION_N" || true)
}
sc_session_close() {
	exec 7>&-
	wait "$SC_SESSION_PID" || true
}

sc_write_key() {
	local path=$1
	rm -f "$path"
	( umask 077 && { head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n'; echo; } >"$path" )
	if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$path"; fi
	chmod 600 "$path"
}

sc_write_secret() {
	local path=$1
	rm -f "$path"
	( umask 077 && printf '%s\n' "$2" >"$path" )
	if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$path"; fi
	chmod 600 "$path"
}

sc_server_crashed() {
	grep -qE 'was terminated by signal|server process .* terminated|terminating any other active server processes|PANIC' \
		"$(bb_logfile "$1")"
}

sc_cluster() {
	local name=$1 port=$2 preload=$3
	SC_CLUSTERS+=("$name")
	bb_cluster_create "$name" "$port" "$preload"
	bb_cluster_start "$name"
}

SC_EXT_FILES=()    # "fd path" of the files sc_extension_file put in place

sc_extension_file() {
	local src=${1:?file} dest lock fd tmp
	dest="$("$PGBIN/pg_config" --sharedir)/extension/$(basename "$src")" || return 1
	_bb_lockdir || return 1
	lock=$BB_PORT_LOCKDIR/extfile.$(printf '%s' "$dest" | cksum | cut -d' ' -f1).lock
	[[ -e $lock ]] || : >>"$lock" 2>/dev/null || true
	exec {fd}<"$lock" || return 1
	if ! flock -s -w 120 "$fd"; then
		exec {fd}<&-
		echo "lib.sh: could not lock $lock" >&2
		return 1
	fi
	SC_EXT_FILES+=("$fd $dest")
	if [[ -e $dest ]]; then
		cmp -s "$src" "$dest" && return 0
		echo "lib.sh: $dest is there and differs from $src" >&2
		return 1
	fi
	tmp=$dest.tmp.$$
	if ! { cp "$src" "$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$dest"; }; then
		rm -f "$tmp"
		return 1
	fi
}

# at exit: drop the shared locks; remove each file unless another run still holds its lock
_sc_extension_files_remove() {
	local e fd dest lock x
	for e in "${SC_EXT_FILES[@]}"; do
		fd=${e%% *}; dest=${e#* }
		lock=$BB_PORT_LOCKDIR/extfile.$(printf '%s' "$dest" | cksum | cut -d' ' -f1).lock
		exec {fd}<&-
		exec {x}<"$lock" || continue
		if flock -n -x "$x"; then rm -f "$dest"; fi
		exec {x}<&-
	done
	SC_EXT_FILES=()
}

sc_finish() {
	SC_FINISHED=1
	printf '1..%d\n' "$SC_N"
	if (( SC_FAILED > 0 )); then
		printf '# %d of %d checks failed\n' "$SC_FAILED" "$SC_N"
		exit 1
	fi
	printf '# all %d checks passed\n' "$SC_N"
	exit 0
}

# ---- PgBouncer ------------------------------------------------------------------------------
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
PGB_PORT=""
PGB_PIDFILE=""
PGB_USER=""

# shellcheck disable=SC2120   # CLUSTER is optional
sc_pgbouncer_stop() {
	local pidfile=$PGB_PIDFILE pid i
	if [[ -n ${1:-} ]]; then pidfile="$(bb_clusterdir "$1")/pgbouncer.pid"; fi
	[[ -n $pidfile && -r $pidfile ]] || return 0
	pid=$(cat "$pidfile" 2>/dev/null) || return 0
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == pgbouncer ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		_bb_alive "$pid" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

pgb_psql() {
	local db=$1
	shift
	bb_run_as_pg "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PGB_PORT" -U "$PGB_USER" -d "$db" "$@"
}

pgb_admin() {
	bb_run_as_pg "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PGB_PORT" -U postgres -d pgbouncer -A -F '|' -c "$1"
}

sc_pgbouncer() {
	local c=$1 port=$2 pool=$3 dir u i up=""
	shift 3
	if [[ ! -x $PGBOUNCER ]]; then
		echo "lib.sh: PgBouncer is not installed ($PGBOUNCER): run test/deps.sh" >&2
		return 1
	fi
	dir=$(bb_clusterdir "$c")
	bb_port_reserve PGB_PORT "$port" || return 1
	port=$PGB_PORT
	PGB_PIDFILE=$dir/pgbouncer.pid
	PGB_USER=$1
	# auth_file lists who may connect (auth_type = trust); PgBouncer reaches the server over
	# its unix socket.  No server_reset_query: in transaction mode PgBouncer would not run it
	# anyway, and brandbos must not need it.
	for u in "$@" postgres; do printf '"%s" ""\n' "$u"; done | sort -u >"$dir/userlist.txt"
	cat >"$dir/pgbouncer.ini" <<-INI
		[databases]
		bbpool = host=$(bb_sockdir "$c") port=$(bb_port "$c") dbname=postgres
		bbone = host=$(bb_sockdir "$c") port=$(bb_port "$c") dbname=postgres pool_size=1

		[pgbouncer]
		listen_addr = 127.0.0.1
		listen_port = $port
		unix_socket_dir =
		auth_type = trust
		auth_file = $dir/userlist.txt
		admin_users = postgres
		pool_mode = transaction
		default_pool_size = $pool
		min_pool_size = 0
		reserve_pool_size = 0
		max_client_conn = 200
		server_reset_query =
		server_reset_query_always = 0
		ignore_startup_parameters = extra_float_digits
		logfile = $dir/pgbouncer.log
		pidfile = $PGB_PIDFILE
	INI
	chmod 0644 "$dir/userlist.txt" "$dir/pgbouncer.ini"
	if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$dir/userlist.txt" "$dir/pgbouncer.ini"; fi
	if ! bb_run_as_pg "$PGBOUNCER" -d "$dir/pgbouncer.ini" >"$dir/pgbouncer.start" 2>&1; then
		cat "$dir/pgbouncer.start" >&2
		tail -n 20 "$dir/pgbouncer.log" >&2 2>/dev/null || true
		return 1
	fi
	for ((i = 0; i < 100; i++)); do
		up=$(pgb_psql bbpool -At -c 'SELECT 1' 2>/dev/null || true)
		if [[ $up == 1 ]]; then return 0; fi
		sleep 0.1
	done
	echo "lib.sh: PgBouncer on 127.0.0.1:$port does not accept connections" >&2
	tail -n 20 "$dir/pgbouncer.log" >&2 2>/dev/null || true
	return 1
}

_sc_exit() {
	local rc=$? c
	set +e
	# shellcheck disable=SC2119   # the one this script started
	sc_pgbouncer_stop
	if (( ! SC_FINISHED )); then
		SC_N=$((SC_N + 1))
		printf 'not ok %d - scenario aborted before its end (exit status %d, line %s)\n' \
			"$SC_N" "$rc" "${SC_LINE:-?}"
		for c in "${SC_CLUSTERS[@]}"; do
			if [[ -r $(bb_logfile "$c") ]]; then
				echo "# ---- last lines of the server log of $c ----"
				tail -n 25 "$(bb_logfile "$c")" | sed 's/^/# /'
			fi
		done
		(( rc != 0 )) || rc=1
	fi
	if [[ ${BB_KEEP:-0} != 1 ]]; then
		for c in "${SC_CLUSTERS[@]}"; do
			bb_cluster_destroy "$c" >/dev/null 2>&1 || true
		done
	fi
	_sc_extension_files_remove
	exit "$rc"
}
trap _sc_exit EXIT
trap 'SC_LINE=$LINENO' ERR
