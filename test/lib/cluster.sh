# shellcheck shell=bash
# test/lib/cluster.sh — throwaway PostgreSQL 15 clusters for brandbos tests, demos and benches.
#
# Source it (it sets no shell options of its own):   . "$BB_ROOT/test/lib/cluster.sh"
#
# Variables
#   BB_ROOT     repository root, derived from this file's location
#   BB_WORK     scratch tree, default $BB_ROOT/tmp_check; clusters live in $BB_WORK/clusters/NAME:
#                 data/ (PGDATA), server.log, root.key (0600), sock/ (unix socket dir), port
#   PGBIN       /usr/lib/postgresql/15/bin
#   BB_DB       database bb_psql / bb_conninfo connect to (default postgres)
#   BB_PG_OSUSER  OS user owning the clusters: postgres when run as root, else yourself
#   BB_LISTEN   listen_addresses of clusters created afterwards (default '' = unix socket
#               only; set BB_LISTEN=127.0.0.1 for a test that needs TCP).  Socket-only
#               clusters never clash on a port (each has its own socket dir); TCP ones do.
#
# Clusters
#   bb_cluster_create  NAME PORT PRELOAD   initdb + root key + config; PRELOAD is yes|no
#                                          (shared_preload_libraries = 'brandbos').  Any
#                                          earlier cluster NAME is stopped and removed first.
#   bb_cluster_standby NAME PORT PRIMARY   a streaming hot standby of the running cluster
#                                          PRIMARY: pg_basebackup -R -X stream over its unix
#                                          socket, PRIMARY's postgresql.conf (so the same
#                                          brandbos settings) with NAME's port, socket dir and
#                                          root key file, which is a 0600 copy of PRIMARY's
#                                          root key.  Not started; earlier NAME is removed.
#   bb_cluster_start   NAME                pg_ctl -w start (server log: bb_logfile NAME)
#   bb_cluster_stop    NAME [MODE]         pg_ctl stop, MODE smart|fast|immediate (default
#                                          fast); does nothing when it is not running
#   bb_cluster_restart NAME                fast stop, then start
#   bb_cluster_kill9   NAME                crash: SIGKILL the postmaster and its children,
#                                          wait until they are gone; data dir kept for restart
#   bb_cluster_destroy NAME                stop (immediate) and delete everything of NAME
#   bb_cluster_running NAME                exit status 0 when its postmaster is alive
#
# Clients
#   bb_psql        NAME [psql args...]     psql -X -v ON_ERROR_STOP=1 -q as user postgres
#   bb_psql_value  NAME SQL                prints one value (psql -At -c SQL)
#   bb_conninfo    NAME                    "host=<sock> port=<port> dbname=$BB_DB user=postgres"
#   bb_run_as_pg   CMD [args...]           runs CMD as the postgres OS user when root (as the
#                                          current user otherwise) with $PGBIN first in PATH;
#                                          the rest of the environment (PGHOST, PGPORT, ...)
#                                          is kept.  If postgres cannot enter the current
#                                          directory, CMD runs in / (use absolute paths).
#
# Getters: bb_datadir NAME, bb_logfile NAME, bb_keyfile NAME, bb_port NAME, bb_sockdir NAME,
#          bb_clusterdir NAME
#
# Every function returns non-zero on failure and prints the reason on stderr, so scripts
# running under `set -euo pipefail` stop at the first broken step.  (Keep it that way when
# editing: no `cond && cmd` as the last command of a loop or function.)

BB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BB_WORK=${BB_WORK:-$BB_ROOT/tmp_check}
if [[ $BB_WORK != /* ]]; then BB_WORK=$PWD/$BB_WORK; fi
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
BB_DB=${BB_DB:-postgres}
export BB_ROOT BB_WORK PGBIN

# The OS user that runs the servers: postgres when we are root, ourselves otherwise.
if [[ $EUID -eq 0 ]]; then
	BB_PG_OSUSER=postgres
else
	BB_PG_OSUSER=$(id -un)
fi
export BB_PG_OSUSER

_bb_die() { echo "cluster.sh: $*" >&2; return 1; }

# ---- getters ------------------------------------------------------------------------------

bb_clusterdir() { echo "$BB_WORK/clusters/${1:?cluster name}"; }
bb_datadir()    { echo "$(bb_clusterdir "$1")/data"; }
bb_logfile()    { echo "$(bb_clusterdir "$1")/server.log"; }
bb_keyfile()    { echo "$(bb_clusterdir "$1")/root.key"; }

bb_port() {
	local f
	f="$(bb_clusterdir "$1")/port"
	[[ -r $f ]] || { _bb_die "no cluster '$1' (missing $f)"; return 1; }
	cat "$f"
}

# A unix socket path must fit in 107 bytes.  When $BB_WORK is deep, the socket goes to a
# short directory under /tmp instead and .../NAME/sock is a symlink to it.
bb_sockdir() {
	local dir
	dir="$(bb_clusterdir "$1")/sock"
	if (( ${#dir} > 80 )); then
		echo "/tmp/bb_sock.$(printf '%s' "$dir" | cksum | cut -d' ' -f1)"
	else
		echo "$dir"
	fi
}

# ---- running things as the server's OS user --------------------------------------------------

bb_run_as_pg() {
	if [[ $EUID -ne 0 ]]; then
		PATH="$PGBIN:$PATH" "$@"
		return
	fi
	# runuser keeps the environment (PGHOST, PGPORT, LANG, ...) but not the working
	# directory's accessibility: fall back to / when postgres cannot enter it.
	if [[ ${_BB_CWD_OK_FOR:-} != "$PWD" ]]; then
		if runuser -u postgres -- test -x "$PWD" 2>/dev/null; then
			_BB_CWD_OK_FOR=$PWD
		else
			(cd / && runuser -u postgres -- env PATH="$PGBIN:$PATH" "$@")
			return
		fi
	fi
	runuser -u postgres -- env PATH="$PGBIN:$PATH" "$@"
}

# Make BB_WORK exist and be reachable by postgres: o+x on every ancestor that lacks it.
_bb_prepare_work() {
	mkdir -p "$BB_WORK/clusters" || return 1
	[[ $EUID -eq 0 ]] || return 0
	local d
	d=$(cd "$BB_WORK" && pwd -P) || return 1
	while [[ -n $d && $d != / ]]; do
		if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
			chmod o+x "$d" || return 1
		fi
		d=$(dirname "$d")
	done
}

# ---- cluster life cycle ---------------------------------------------------------------------

bb_cluster_running() {
	local pidfile pid
	pidfile="$(bb_datadir "$1")/postmaster.pid"
	[[ -r $pidfile ]] || return 1
	pid=$(head -n 1 "$pidfile" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	_bb_alive "$pid"
}

# Alive = exists and is not a zombie (PID 1 of a container may never reap it).
_bb_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

bb_cluster_create() {
	local name=${1:?cluster name} port=${2:?port} preload=${3:?PRELOAD yes|no}
	local dir data sock key
	case $preload in yes|no) ;; *) _bb_die "PRELOAD must be yes or no, got '$preload'"; return 1 ;; esac
	[[ $port =~ ^[0-9]+$ ]] || { _bb_die "port must be a number, got '$port'"; return 1; }
	[[ -x $PGBIN/initdb ]] || { _bb_die "$PGBIN/initdb not found (run test/deps.sh)"; return 1; }

	bb_cluster_destroy "$name" || return 1
	_bb_prepare_work || return 1

	dir=$(bb_clusterdir "$name")
	data=$(bb_datadir "$name")
	sock=$(bb_sockdir "$name")
	key=$(bb_keyfile "$name")
	mkdir -p "$dir" "$sock" || return 1
	[[ $sock == "$dir/sock" ]] || ln -sfn "$sock" "$dir/sock"
	echo "$port" >"$dir/port"
	chmod 0755 "$dir" "$sock"

	# Root key: 32 random bytes as 64 hex characters and a newline, readable only by the server.
	( umask 077 && { head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n'; echo; } >"$key" ) || return 1
	if [[ $EUID -eq 0 ]]; then
		chown -R postgres:postgres "$dir" "$sock" || return 1
	fi

	# --no-sync only skips initdb's final flush; the running server keeps fsync = on.
	if ! bb_run_as_pg "$PGBIN/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 \
			--locale=C --no-sync >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		_bb_die "initdb for cluster '$name' failed"
		return 1
	fi

	{
		echo
		echo "# ---- added by test/lib/cluster.sh ----"
		echo "port = $port"
		echo "listen_addresses = '${BB_LISTEN:-}'"
		echo "unix_socket_directories = '$sock'"
		echo "max_connections = 50"
		echo "logging_collector = off"
		echo "brandbos.root_key_file = '$key'"
		if [[ $preload == yes ]]; then
			echo "shared_preload_libraries = 'brandbos'"
		fi
	} >>"$data/postgresql.conf" || return 1
}

bb_cluster_standby() {
	local name=${1:?cluster name} port=${2:?port} primary=${3:?primary cluster}
	local dir data sock key pport
	[[ $port =~ ^[0-9]+$ ]] || { _bb_die "port must be a number, got '$port'"; return 1; }
	pport=$(bb_port "$primary") || return 1
	bb_cluster_running "$primary" || { _bb_die "primary '$primary' is not running"; return 1; }
	bb_cluster_destroy "$name" || return 1
	_bb_prepare_work || return 1

	dir=$(bb_clusterdir "$name")
	data=$(bb_datadir "$name")
	sock=$(bb_sockdir "$name")
	key=$(bb_keyfile "$name")
	mkdir -p "$dir" "$sock" || return 1
	[[ $sock == "$dir/sock" ]] || ln -sfn "$sock" "$dir/sock"
	echo "$port" >"$dir/port"
	chmod 0755 "$dir" "$sock"
	# the same root key: a standby without it reads no protected value
	( umask 077 && cat "$(bb_keyfile "$primary")" >"$key" ) || return 1
	chmod 0600 "$key"
	if [[ $EUID -eq 0 ]]; then
		chown -R postgres:postgres "$dir" "$sock" || return 1
	fi

	# -R writes primary_conninfo and standby.signal; -X stream brings the WAL it needs
	if ! bb_run_as_pg "$PGBIN/pg_basebackup" -D "$data" -R -X stream --checkpoint=fast \
			-h "$(bb_sockdir "$primary")" -p "$pport" -U postgres >"$dir/basebackup.log" 2>&1; then
		cat "$dir/basebackup.log" >&2
		_bb_die "pg_basebackup of '$primary' for standby '$name' failed"
		return 1
	fi
	# later lines win: the primary's configuration, with this node's own port, socket and key
	{
		echo
		echo "# ---- standby $name, added by test/lib/cluster.sh ----"
		echo "port = $port"
		echo "unix_socket_directories = '$sock'"
		echo "brandbos.root_key_file = '$key'"
	} >>"$data/postgresql.conf" || return 1
}

bb_cluster_start() {
	local name=${1:?cluster name} data log
	data=$(bb_datadir "$name")
	log=$(bb_logfile "$name")
	[[ -d $data ]] || { _bb_die "no cluster '$name' (missing $data)"; return 1; }
	local err rc=0
	# (after bb_cluster_kill9, pg_ctl warns that the stale postmaster.pid "might" be a
	# running server; that warning is expected and dropped)
	err=$(bb_run_as_pg "$PGBIN/pg_ctl" -D "$data" -l "$log" -w -t 120 -s start 2>&1 >/dev/null) || rc=$?
	err=$(grep -v 'another server might be running' <<<"$err" || true)
	if [[ -n $err ]]; then echo "$err" >&2; fi
	if (( rc != 0 )); then
		echo "---- last lines of $log ----" >&2
		tail -n 30 "$log" >&2 || true
		_bb_die "cluster '$name' did not start"
		return 1
	fi
}

bb_cluster_stop() {
	local name=${1:?cluster name} mode=${2:-fast}
	bb_cluster_running "$name" || return 0
	bb_run_as_pg "$PGBIN/pg_ctl" -D "$(bb_datadir "$name")" -m "$mode" -w -t 120 -s stop >/dev/null \
		|| { _bb_die "cluster '$name' did not stop"; return 1; }
}

bb_cluster_restart() {
	bb_cluster_stop "${1:?cluster name}" fast && bb_cluster_start "$1"
}

# Children of PID, from /proc (no procps needed).
_bb_children() {
	local p stat
	for p in /proc/[0-9]*; do
		stat=$(cat "$p/stat" 2>/dev/null) || continue
		stat=${stat##*) }          # fields after "(comm) ": state ppid ...
		stat=${stat#* }
		if [[ ${stat%% *} == "$1" ]]; then echo "${p#/proc/}"; fi
	done
}

bb_cluster_kill9() {
	local name=${1:?cluster name} data pid kids k i alive
	data=$(bb_datadir "$name")
	bb_cluster_running "$name" || { _bb_die "cluster '$name' is not running"; return 1; }
	pid=$(head -n 1 "$data/postmaster.pid")
	# Freeze the postmaster so it cannot fork or reap, kill its children, then kill it:
	# nothing of the old server survives to hold shared memory when it is restarted.
	kill -STOP "$pid" 2>/dev/null || true
	kids=$(_bb_children "$pid")
	for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 600; i++)); do
		alive=0
		for k in $pid $kids; do
			if _bb_alive "$k"; then alive=1; fi
		done
		if (( ! alive )); then break; fi
		sleep 0.1
	done
	if _bb_alive "$pid"; then
		_bb_die "postmaster $pid of cluster '$name' survived SIGKILL"
		return 1
	fi
	# A dead postmaster may linger as a zombie until PID 1 reaps it; while it does, its PID
	# in the lock files makes the next start believe it still runs.  Give PID 1 a moment,
	# then treat the lock files as stale (crash recovery still runs: pg_control says so).
	for ((i = 0; i < 50; i++)); do
		if [[ ! -d /proc/$pid ]]; then return 0; fi
		sleep 0.1
	done
	rm -f "$data/postmaster.pid" "$(bb_sockdir "$name")"/.s.PGSQL.*
}

bb_cluster_destroy() {
	local name=${1:?cluster name} dir sock
	dir=$(bb_clusterdir "$name")
	sock=$(bb_sockdir "$name")
	if [[ -d $dir ]]; then
		if bb_cluster_running "$name"; then
			bb_cluster_stop "$name" immediate || bb_cluster_kill9 "$name" || return 1
		fi
		rm -rf "$dir" || return 1
	fi
	if [[ $sock != "$dir/sock" && -d $sock ]]; then
		rm -rf "$sock"
	fi
	return 0
}

# ---- clients --------------------------------------------------------------------------------

bb_conninfo() {
	local port
	port=$(bb_port "${1:?cluster name}") || return 1
	echo "host=$(bb_sockdir "$1") port=$port dbname=${BB_DB:-postgres} user=postgres"
}

bb_psql() {
	local name=${1:?cluster name} port
	shift
	port=$(bb_port "$name") || return 1
	bb_run_as_pg "$PGBIN/psql" -X -v ON_ERROR_STOP=1 -q -h "$(bb_sockdir "$name")" -p "$port" \
		-U postgres -d "${BB_DB:-postgres}" "$@"
}

bb_psql_value() {
	local name=${1:?cluster name} sql=${2:?SQL}
	bb_psql "$name" -At -c "$sql"
}
