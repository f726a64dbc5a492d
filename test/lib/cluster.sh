# shellcheck shell=bash
# test/lib/cluster.sh — throwaway PostgreSQL 15 clusters for brandbos tests, demos and benches.
#
# Source it (it sets no shell options of its own):   . "$BB_ROOT/test/lib/cluster.sh"
#
# Variables
#   BB_ROOT     repository root, derived from this file's location
#   BB_WORK     scratch tree, default $BB_ROOT/tmp_check; clusters live in $BB_WORK/clusters/NAME:
#                 data/ (PGDATA), server.log, root.key (0600), sock/ (unix socket dir), port
#               One BB_WORK serves one run at a time (test/run.sh refuses a second one); runs
#               from different checkouts, or with different BB_WORK, can go side by side.
#   PGBIN       /usr/lib/postgresql/15/bin
#   BB_DB       database bb_psql / bb_conninfo connect to (default postgres)
#   BB_PG_OSUSER  OS user owning the clusters: postgres when run as root, else yourself
#   BB_LISTEN   listen_addresses of clusters created afterwards (default '' = unix socket
#               only; set BB_LISTEN=127.0.0.1 for a test that needs TCP)
#   BB_PORT_RANGE   ports handed out by bb_port_reserve after the hint (default 55400-55999)
#   BB_PORT_LOCKDIR its reservations, machine-wide (default /tmp/brandbos-ports)
#
# Ports: never hard-code one.  Every server a test starts (cluster, PgBouncer, anything that
# listens) takes its port from bb_port_reserve, so that several runs can share a machine (a
# PostgreSQL 15 and an 18 suite, a developer's run beside CI).  bb_cluster_create does it for
# its cluster; its PORT argument is only the first port tried ("auto" = none).  Read the port
# a cluster got with bb_port NAME (or use bb_psql / bb_conninfo), never assume the hint.
#   bb_port_reserve VAR [HINT]   reserve a TCP port and store it in the variable VAR.  The
#                                port is free (no socket of any process on this machine is
#                                bound to it, TIME_WAIT aside) and not reserved by another
#                                shell; HINT is tried first, then BB_PORT_RANGE from a random
#                                point.  The reservation is a flock(2) on
#                                $BB_PORT_LOCKDIR/PORT.lock through a file descriptor of the
#                                calling shell; it lasts until bb_port_release PORT or until
#                                that shell and every process that inherited the descriptor
#                                (the servers it started) have exited, even after a kill -9.
#                                Call it in the shell that uses the port, not inside $(...)
#                                or ( ... ): the subshell's exit would end the reservation.
#   bb_port_release PORT         end this shell's reservation of PORT (no-op if it has none)
# Socket-only clusters do not need a port of their own (their sockets are in a directory of
# their own, and PostgreSQL keys its shared memory on the data directory), but get one
# anyway, so that BB_LISTEN=127.0.0.1 needs nothing else.
#
# Clusters
#   bb_cluster_create  NAME PORT PRELOAD   initdb + root key + config; PRELOAD is yes|no
#                                          (shared_preload_libraries = 'brandbos').  PORT is a
#                                          hint or "auto" (see Ports): the port is reserved
#                                          with bb_port_reserve and written to NAME/port.  Any
#                                          earlier cluster NAME is stopped and removed first.
#   bb_cluster_standby NAME PORT PRIMARY   (PORT: a hint or auto, as above)
#                                          a streaming hot standby of the running cluster
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
#   bb_cluster_destroy NAME                stop (immediate) and delete everything of NAME,
#                                          and release its port
#   bb_cluster_running NAME                exit status 0 when its postmaster is alive
# A new function that makes a cluster (a standby, say) starts with _bb_cluster_dirs NAME HINT:
# it removes an earlier NAME, makes NAME's directory and socket directory, reserves the port
# and writes NAME/port, and leaves the socket directory in _BB_SOCK and the port in _BB_PORT.
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
#          bb_clusterdir NAME.  bb_sockdir is NAME/sock, or, when that path is too long for a
#          unix socket, a directory made by mktemp under /tmp for this cluster of this run
#          (NAME/sock is a symlink to it).
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

# A unix socket path must fit in 107 bytes.  When $BB_WORK is deep, bb_cluster_create puts
# the socket in a fresh directory under /tmp (mktemp: unique for each cluster of each run,
# whatever the checkout) and makes .../NAME/sock a symlink to it.
bb_sockdir() {
	local dir
	dir="$(bb_clusterdir "$1")/sock"
	if [[ -L $dir ]]; then
		readlink "$dir"
	else
		echo "$dir"
	fi
}
_bb_sockdir_too_long() { (( ${#1} > 80 )); }

# ---- ports ----------------------------------------------------------------------------------

BB_PORT_RANGE=${BB_PORT_RANGE:-55400-55999}
BB_PORT_LOCKDIR=${BB_PORT_LOCKDIR:-/tmp/brandbos-ports}
if ! declare -p _BB_PORT_FD >/dev/null 2>&1; then
	declare -gA _BB_PORT_FD=()   # port -> file descriptor holding its lock, in this shell
fi

# $BB_PORT_LOCKDIR exists and can be written (made mode 1777, like /tmp, for every user's runs).
_bb_lockdir() {
	if [[ ! -d $BB_PORT_LOCKDIR ]]; then
		mkdir -p "$BB_PORT_LOCKDIR" 2>/dev/null && chmod 1777 "$BB_PORT_LOCKDIR" 2>/dev/null
	fi
	[[ -d $BB_PORT_LOCKDIR && -w $BB_PORT_LOCKDIR ]] || { _bb_die "cannot write $BB_PORT_LOCKDIR"; return 1; }
}

# Exit status 0 when a TCP socket (v4 or v6, any address, any state but TIME_WAIT) is bound
# to port $1 on this machine.
_bb_port_in_use() {
	local hex f files=()
	printf -v hex '%04X' "$1"
	for f in /proc/net/tcp /proc/net/tcp6; do
		if [[ -r $f ]]; then files+=("$f"); fi
	done
	if (( ${#files[@]} == 0 )); then
		# no procfs: a listener on the loopback address is all that can be seen
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
		return
	fi
	awk -v p=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == p && $4 != "06" { found = 1; exit }
		END { exit !found }' "${files[@]}"
}

# _bb_port_try PORT: take the lock of PORT for this shell; sets _BB_PORT_FD[PORT].
_bb_port_try() {
	local port=$1 lock=$BB_PORT_LOCKDIR/$1.lock fd
	[[ -z ${_BB_PORT_FD[$port]:-} ]] || return 1       # this shell has it already
	_bb_port_in_use "$port" && return 1
	[[ -e $lock ]] || : >>"$lock" 2>/dev/null || true
	exec {fd}<"$lock" || return 1
	if ! flock -n "$fd"; then
		exec {fd}<&-
		return 1
	fi
	# a server that is not ours may have bound it since the first look
	if _bb_port_in_use "$port"; then
		exec {fd}<&-
		return 1
	fi
	_BB_PORT_FD[$port]=$fd
}

bb_port_reserve() {
	local _bb_var=${1:?variable name} _bb_hint=${2:-} _bb_lo _bb_hi _bb_n _bb_start _bb_i _bb_p
	[[ $_bb_var =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { _bb_die "bb_port_reserve: bad variable name '$_bb_var'"; return 1; }
	if [[ ! $BB_PORT_RANGE =~ ^([0-9]+)-([0-9]+)$ ]] || (( BASH_REMATCH[1] < 1024 || BASH_REMATCH[2] > 65535 \
			|| BASH_REMATCH[1] > BASH_REMATCH[2] )); then
		_bb_die "BB_PORT_RANGE must be LOW-HIGH within 1024-65535, got '$BB_PORT_RANGE'"
		return 1
	fi
	_bb_lo=${BASH_REMATCH[1]}; _bb_hi=${BASH_REMATCH[2]}
	_bb_lockdir || return 1
	if [[ $_bb_hint =~ ^[0-9]+$ ]] && (( _bb_hint >= 1024 && _bb_hint <= 65535 )) && _bb_port_try "$_bb_hint"; then
		printf -v "$_bb_var" '%s' "$_bb_hint"
		return 0
	fi
	_bb_n=$((_bb_hi - _bb_lo + 1))
	_bb_start=$(( (RANDOM * 32768 + RANDOM) % _bb_n ))
	for ((_bb_i = 0; _bb_i < _bb_n; _bb_i++)); do
		_bb_p=$((_bb_lo + (_bb_start + _bb_i) % _bb_n))
		if _bb_port_try "$_bb_p"; then
			printf -v "$_bb_var" '%s' "$_bb_p"
			return 0
		fi
	done
	_bb_die "no free port in BB_PORT_RANGE=$BB_PORT_RANGE (all bound or reserved by other runs)"
}

bb_port_release() {
	local port=${1:?port} fd
	fd=${_BB_PORT_FD[$port]:-}
	[[ -n $fd ]] || return 0
	exec {fd}<&-
	unset "_BB_PORT_FD[$port]"
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

# _bb_cluster_dirs NAME HINT: the part of making a cluster that every maker shares (a
# standby's maker too): removes an earlier NAME, makes its directory and socket directory,
# reserves its port (HINT: a number or auto) and writes NAME/port.  Sets _BB_SOCK, _BB_PORT.
_bb_cluster_dirs() {
	local name=$1 hint=$2 dir
	[[ $hint =~ ^([0-9]+|auto)$ ]] || { _bb_die "port must be a number (a hint) or auto, got '$hint'"; return 1; }
	bb_cluster_destroy "$name" || return 1
	_bb_prepare_work || return 1
	bb_port_reserve _BB_PORT "$hint" || return 1
	dir=$(bb_clusterdir "$name")
	mkdir -p "$dir" || return 1
	if _bb_sockdir_too_long "$dir/sock"; then
		_BB_SOCK=$(mktemp -d /tmp/bb_sock.XXXXXXXX) || return 1
		ln -s "$_BB_SOCK" "$dir/sock" || return 1
	else
		_BB_SOCK=$dir/sock
		mkdir "$_BB_SOCK" || return 1
	fi
	echo "$_BB_PORT" >"$dir/port"
	chmod 0755 "$dir" "$_BB_SOCK"
}

bb_cluster_create() {
	local name=${1:?cluster name} hint=${2:?port hint or auto} preload=${3:?PRELOAD yes|no}
	local dir data sock key port
	case $preload in yes|no) ;; *) _bb_die "PRELOAD must be yes or no, got '$preload'"; return 1 ;; esac
	[[ -x $PGBIN/initdb ]] || { _bb_die "$PGBIN/initdb not found (run test/deps.sh)"; return 1; }

	_bb_cluster_dirs "$name" "$hint" || return 1
	port=$_BB_PORT
	sock=$_BB_SOCK
	dir=$(bb_clusterdir "$name")
	data=$(bb_datadir "$name")
	key=$(bb_keyfile "$name")

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
	local name=${1:?cluster name} hint=${2:?port hint or auto} primary=${3:?primary cluster}
	local dir data sock key pport port
	pport=$(bb_port "$primary") || return 1
	bb_cluster_running "$primary" || { _bb_die "primary '$primary' is not running"; return 1; }
	_bb_cluster_dirs "$name" "$hint" || return 1
	port=$_BB_PORT
	sock=$_BB_SOCK
	dir=$(bb_clusterdir "$name")
	data=$(bb_datadir "$name")
	key=$(bb_keyfile "$name")
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
	local name=${1:?cluster name} dir sock port=""
	dir=$(bb_clusterdir "$name")
	sock=$(bb_sockdir "$name")
	if [[ -d $dir ]]; then
		if bb_cluster_running "$name"; then
			bb_cluster_stop "$name" immediate || bb_cluster_kill9 "$name" || return 1
		fi
		port=$(cat "$dir/port" 2>/dev/null) || port=""
		rm -rf "$dir" || return 1
	fi
	if [[ $sock != "$dir/sock" && -d $sock ]]; then
		rm -rf "$sock"
	fi
	if [[ -n $port ]]; then bb_port_release "$port"; fi
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
