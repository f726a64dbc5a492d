#!/usr/bin/env bash
# 01_side_by_side_runs — the test harness itself: two runs on one machine never share a port,
# a socket directory or a scratch tree (test/lib/cluster.sh "Ports", test/run.sh).
#
#   1. bb_port_reserve: a port it hands out is locked ($BB_PORT_LOCKDIR/PORT.lock) and in
#      BB_PORT_RANGE; another shell asking for the same port as its hint gets another one;
#      a hint that a foreign process is listening on is skipped; bb_port_release frees the
#      lock; a reservation dies with its owner, even under kill -9; a bad variable name or
#      range is refused
#   2. two TCP clusters (BB_LISTEN=127.0.0.1) with the same name and the same hint in two
#      scratch trees run side by side on different ports, each reachable over TCP on its
#      own port and no other; the hint port is free again once both are destroyed
#   3. two clusters with the same name in two scratch trees too deep for a unix socket path
#      get socket directories of their own under /tmp (mktemp), which go with the cluster
#   4. test/run.sh refuses a second run on a scratch tree that a live run uses (exit 2,
#      "0 passed, 1 failed"), and takes over one whose run has died
#   5. sc_extension_file (a file put into the shared installation, like scenario 19's old
#      install script): a second user of the same file finds it there and leaves it there
#      when it ends first; the last user removes it; another file of the same name is refused
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOP=$BB_WORK/s01
W1=$TOP/w1
W2=$TOP/w2
DEEP=$TOP/a-directory-deep-enough/that-a-unix-socket-path-below-it/would-not-fit
BG=()                      # background processes started here

# shellcheck disable=SC2317   # called from the EXIT trap
_s01_cleanup() {
	local w p
	for p in "${BG[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for w in "$W1" "$W2" "$DEEP/1" "$DEEP/2"; do
		if [[ -d $w/clusters ]]; then
			BB_WORK=$w bb_cluster_destroy s01 >/dev/null 2>&1 || true
		fi
	done
	if [[ -n ${PROBE:-} ]]; then rm -f "$PROBE"; fi
	rm -rf "$TOP"
}
trap 'rc=$?; set +e; trap - ERR; _s01_cleanup; (exit "$rc"); _sc_exit' EXIT
rm -rf "$TOP"
mkdir -p "$TOP"

# lock_free PORT: exit 0 when nobody holds the lock of PORT (checked from a fresh process)
lock_free() { flock -n "$BB_PORT_LOCKDIR/$1.lock" true; }

# another_shell HINT: what a separate shell that sources cluster.sh gets for HINT
another_shell() {
	bash -c '. "$1/test/lib/cluster.sh" && bb_port_reserve p "$2" && echo "$p"' _ "$BB_ROOT" "$1"
}

# ---- 1. bb_port_reserve ---------------------------------------------------------------------
bb_port_reserve P1
IFS=- read -r lo hi <<<"$BB_PORT_RANGE"
assert_eq "a port without hint comes from BB_PORT_RANGE ($BB_PORT_RANGE)" yes \
	"$( (( P1 >= lo && P1 <= hi )) && echo yes || echo no)"
assert_eq "its lock file is held while this shell keeps it" held \
	"$(lock_free "$P1" && echo free || echo held)"
P2=$(another_shell "$P1")
assert_match "another shell asking for $P1 gets another port" '^[0-9]+$' "$P2"
assert_eq "... which is not $P1" yes "$([[ $P2 != "$P1" ]] && echo yes || echo no)"
bb_port_reserve P3 "$P1"
assert_eq "this shell does not hand out $P1 twice either" yes "$([[ $P3 != "$P1" ]] && echo yes || echo no)"

# a foreign listener (not a harness process, no lock) on a port we ask for
bb_port_reserve FOREIGN
bb_port_release "$FOREIGN"
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); print("up", flush=True); time.sleep(60)' \
	"$FOREIGN" >"$TOP/foreign.out" 2>&1 &
BG+=($!)
for ((i = 0; i < 100; i++)); do [[ -s $TOP/foreign.out ]] && break; sleep 0.1; done
assert_eq "a foreign server listens on $FOREIGN" up "$(cat "$TOP/foreign.out")"
P4=$(another_shell "$FOREIGN")
assert_eq "a hint that a foreign server is bound to is skipped" yes \
	"$([[ $P4 =~ ^[0-9]+$ && $P4 != "$FOREIGN" ]] && echo yes || echo no)"
kill -KILL "${BG[0]}"; wait "${BG[0]}" 2>/dev/null || true; BG=()

bb_port_release "$P3"
bb_port_reserve P5
bb_port_release "$P5"
assert_eq "bb_port_release frees the lock" free "$(lock_free "$P5" && echo free || echo held)"

# a reservation whose owner is killed with SIGKILL
bash -c '. "$1/test/lib/cluster.sh" && bb_port_reserve p && echo "$p" && exec sleep 60' _ "$BB_ROOT" \
	>"$TOP/owner.out" &
OWNER=$!
BG+=("$OWNER")
for ((i = 0; i < 100; i++)); do [[ -s $TOP/owner.out ]] && break; sleep 0.1; done
P6=$(cat "$TOP/owner.out")
assert_eq "a port reserved by another process ($P6) is locked while it lives" held \
	"$(lock_free "$P6" && echo free || echo held)"
kill -KILL "$OWNER"; wait "$OWNER" 2>/dev/null || true; BG=()
assert_eq "after kill -9 of its owner, its port is free again" free "$(lock_free "$P6" && echo free || echo held)"

out=$(bb_port_reserve 'x;y' 2>&1 || echo "rc=$?")
assert_match "a bad variable name is refused" "bad variable name.*rc=1" "$out"
out=$(BB_PORT_RANGE=80-90 bb_port_reserve x 2>&1 || echo "rc=$?")
assert_match "a range below 1024 is refused" "BB_PORT_RANGE must be.*rc=1" "$out"

# ---- 2. two TCP clusters, same name, same hint, two scratch trees, two processes ----------------
HINT=""
bb_port_reserve HINT
bb_port_release "$HINT"   # free, and a port that both will ask for first
BB_LISTEN=127.0.0.1 BB_WORK=$W1 bb_cluster_create s01 "$HINT" no
BB_WORK=$W1 bb_cluster_start s01
# the second "run": another process, which exits once its server is up
BB_LISTEN=127.0.0.1 BB_WORK=$W2 bash -c '. "$1/test/lib/cluster.sh" &&
	bb_cluster_create s01 "$2" no && bb_cluster_start s01' _ "$BB_ROOT" "$HINT"
Q1=$(BB_WORK=$W1 bb_port s01)
Q2=$(BB_WORK=$W2 bb_port s01)
assert_eq "the first cluster got the hint $HINT" "$HINT" "$Q1"
assert_eq "the second cluster, same name and hint in another tree, got another port" yes \
	"$([[ $Q2 =~ ^[0-9]+$ && $Q2 != "$Q1" ]] && echo yes || echo no)"
tcp_datadir() {
	bb_run_as_pg "$PGBIN/psql" -X -At -h 127.0.0.1 -p "$1" -U postgres -d postgres \
		-c 'SHOW data_directory' 2>&1 || true
}
assert_eq "both run at once, each answers over TCP on its own port with its own data directory" \
	"$W1/clusters/s01/data|$W2/clusters/s01/data" "$(tcp_datadir "$Q1")|$(tcp_datadir "$Q2")"
BB_WORK=$W1 bb_cluster_destroy s01
BB_WORK=$W2 bb_cluster_destroy s01
assert_eq "once both are destroyed, their ports are free again" "free free" \
	"$(lock_free "$Q1" && echo free || echo held) $(lock_free "$Q2" && echo free || echo held)"

# ---- 3. deep scratch trees: private socket directories under /tmp ----------------------------
BB_WORK=$DEEP/1 bb_cluster_create s01 auto no
BB_WORK=$DEEP/1 bb_cluster_start s01
BB_WORK=$DEEP/2 bb_cluster_create s01 auto no
BB_WORK=$DEEP/2 bb_cluster_start s01
S1=$(BB_WORK=$DEEP/1 bb_sockdir s01)
S2=$(BB_WORK=$DEEP/2 bb_sockdir s01)
assert_match "a deep tree's socket directory is a private one under /tmp" '^/tmp/bb_sock\.[A-Za-z0-9]{8}$' "$S1"
assert_eq "the same cluster name in another deep tree gets another one" yes \
	"$([[ $S2 == /tmp/bb_sock.* && $S2 != "$S1" ]] && echo yes || echo no)"
assert_eq "both servers answer on their sockets" "1|1" \
	"$(BB_WORK=$DEEP/1 bb_psql_value s01 'SELECT 1')|$(BB_WORK=$DEEP/2 bb_psql_value s01 'SELECT 1')"
BB_WORK=$DEEP/1 bb_cluster_destroy s01
BB_WORK=$DEEP/2 bb_cluster_destroy s01
assert_eq "the socket directories go with their clusters" "gone gone" \
	"$([[ -e $S1 ]] && echo left || echo gone) $([[ -e $S2 ]] && echo left || echo gone)"

# ---- 4. test/run.sh: one run per scratch tree ------------------------------------------------
RW=$TOP/run
mkdir -p "$RW"
bash -c 'exec -a "fake test/run.sh" sleep 60' &
LIVE=$!
BG+=("$LIVE")
echo "$LIVE" >"$RW/.run.pid"
rc=0
out=$(BB_WORK=$RW BB_ONLY=scenarios BB_SCENARIO_ONLY=no_such_scenario "$BB_ROOT/test/run.sh" 2>&1) || rc=$?
assert_eq "a second run on a scratch tree that a live run uses stops: exit 2" 2 "$rc"
assert_match "... saying why, with the summary line last" \
	"another test run \\(pid $LIVE\\) is using $RW.*"$'\n''0 passed, 1 failed$' "$out"
assert_eq "... and leaves the live run's pid file alone" "$LIVE" "$(cat "$RW/.run.pid")"
kill -KILL "$LIVE"; wait "$LIVE" 2>/dev/null || true; BG=()
rc=0
out=$(BB_WORK=$RW BB_ONLY=scenarios BB_SCENARIO_ONLY=no_such_scenario "$BB_ROOT/test/run.sh" 2>&1) || rc=$?
assert_eq "a run whose predecessor died takes the tree over (runs, finds no test: exit 1)" \
	"1|no test ran" "$rc|$(tail -n 2 <<<"$out" | head -n 1)"
assert_eq "... and removes its pid file at the end" gone "$([[ -e $RW/.run.pid ]] && echo left || echo gone)"

# ---- 5. sc_extension_file: a file in the shared installation, two users ------------------------
PROBE_SRC=$TOP/brandbos_s01_probe.$$.txt   # one name per run: runs beside this one have their own
echo "probe $$" >"$PROBE_SRC"
PROBE=$("$PGBIN/pg_config" --sharedir)/extension/${PROBE_SRC##*/}
# user SRC GO OUT: puts SRC in place, says "in", ends (normally) once GO exists
user() {
	bash -c 'set -euo pipefail; . "$1/test/scenarios/lib.sh"; sc_extension_file "$2"; echo in
		while [[ ! -e $3 ]]; do sleep 0.1; done; SC_FINISHED=1' _ "$BB_ROOT" "$1" "$2" >"$3" 2>&1
}
wait_in() { for ((i = 0; i < 100; i++)); do grep -q '^in$' "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
user "$PROBE_SRC" "$TOP/go1" "$TOP/user1.out" &
U1=$!
BG+=("$U1")
wait_in "$TOP/user1.out" || true
assert_eq "the first user put the file in place" "in|probe $$" "$(head -n 1 "$TOP/user1.out")|$(cat "$PROBE" 2>&1)"
user "$PROBE_SRC" "$TOP/go2" "$TOP/user2.out" &
U2=$!
BG+=("$U2")
wait_in "$TOP/user2.out" || true
touch "$TOP/go2"
wait "$U2" || true
assert_eq "a second user found it and, ending first, left it for the first" "in|there" \
	"$(head -n 1 "$TOP/user2.out")|$([[ -e $PROBE ]] && echo there || echo gone)"
mkdir -p "$TOP/other"
echo "another $$" >"$TOP/other/${PROBE_SRC##*/}"
touch "$TOP/go3"
user "$TOP/other/${PROBE_SRC##*/}" "$TOP/go3" "$TOP/user3.out" || true
assert_match "another file of the same name is refused" "differs from" "$(cat "$TOP/user3.out")"
touch "$TOP/go1"
wait "$U1" || true
BG=()
assert_eq "the last user removed it" gone "$([[ -e $PROBE ]] && echo there || echo gone)"
rm -f "$PROBE" "$BB_PORT_LOCKDIR/extfile.$(printf '%s' "$PROBE" | cksum | cut -d' ' -f1).lock"

sc_finish
