# shellcheck shell=bash
# test/scenarios/audit_lib.sh — helpers shared by the audit scenarios 20..23.
# Sourced, not run (not executable, so test/run.sh skips it).
#
#   audit_cluster NAME PORT yes|no [conf line...]
#                           create + configure + start a cluster; on EXIT the
#                           background jobs in BG_PIDS are stopped and the
#                           cluster is destroyed (its server log is printed
#                           when a check failed)
#   q NAME SQL              one value (bb_psql_value), database $BB_DB
#   pass DESC / fail DESC [DETAIL...]   print "ok N - DESC" / "not ok N - DESC"
#   skip DESC REASON        print "ok N - DESC # SKIP REASON"
#   check DESC CMD...       pass when CMD exits 0
#   is GOT WANT DESC        pass when GOT = WANT (strings)
#   cmp_ge GOT MIN DESC     pass when GOT >= MIN (integers)
#   seal_until_sealed NAME [TIMEOUT]   call seal_audit() until no row of
#                           brandbos.audit_log lacks a block; non-zero on timeout
#   install_sqlstate_of NAME           create public.sqlstate_of(text)
#   wait_ready NAME [TIMEOUT]          until the server accepts a query
#   finish                  print the summary; exit 1 when a check failed

# shellcheck source-path=SCRIPTDIR source=../lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
export LC_ALL=C

T_N=0
T_FAILED=0
BG_PIDS=()
AUDIT_CLUSTER=

pass() {
	T_N=$((T_N + 1))
	echo "ok $T_N - $1"
}

fail() {
	T_N=$((T_N + 1))
	T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_N - $1"
	shift
	local line
	for line in "$@"; do
		printf '#   %s\n' "$line"
	done
}

skip() {   # skip DESC REASON
	T_N=$((T_N + 1))
	echo "ok $T_N - $1 # SKIP $2"
}

check() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc" "command failed: $*"; fi
}

is() {
	if [[ $1 == "$2" ]]; then
		pass "$3"
	else
		fail "$3" "got:      '$1'" "expected: '$2'"
	fi
}

cmp_ge() {
	if [[ $1 =~ ^-?[0-9]+$ ]] && (( $1 >= $2 )); then
		pass "$3"
	else
		fail "$3" "got:      '$1'" "expected: >= $2"
	fi
}

q() {
	bb_psql_value "$1" "$2"
}

_audit_cleanup() {
	local rc=$? p
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [[ -n $AUDIT_CLUSTER ]]; then
		if (( rc != 0 || T_FAILED > 0 )); then
			echo "# ---- last 60 lines of the server log of $AUDIT_CLUSTER ----"
			tail -n 60 "$(bb_logfile "$AUDIT_CLUSTER")" 2>/dev/null | sed 's/^/#   /' || true
		fi
		bb_cluster_destroy "$AUDIT_CLUSTER" >/dev/null 2>&1 || true
	fi
	exit "$rc"
}

audit_cluster() {
	local name=$1 port=$2 preload=$3 line
	shift 3
	AUDIT_CLUSTER=$name
	trap _audit_cleanup EXIT
	bb_cluster_create "$name" "$port" "$preload"
	for line in "$@"; do
		echo "$line" >>"$(bb_datadir "$name")/postgresql.conf"
	done
	bb_cluster_start "$name"
}

wait_ready() {
	local name=$1 timeout=${2:-60} i
	for ((i = 0; i < timeout * 5; i++)); do
		if bb_psql_value "$name" 'SELECT 1' >/dev/null 2>&1; then return 0; fi
		sleep 0.2
	done
	echo "# server $name did not accept a query within ${timeout}s" >&2
	return 1
}

seal_until_sealed() {
	local name=$1 timeout=${2:-30} start=$SECONDS left
	while :; do
		bb_psql_value "$name" 'SELECT brandbos.seal_audit()' >/dev/null
		left=$(bb_psql_value "$name" 'SELECT count(*) FROM brandbos.audit_log WHERE block_id IS NULL')
		if [[ $left == 0 ]]; then return 0; fi
		if (( SECONDS - start > timeout )); then
			echo "# still $left unsealed rows after ${timeout}s" >&2
			return 1
		fi
		sleep 0.2
	done
}

install_sqlstate_of() {
	# shellcheck disable=SC2016   # $$ quoting is for SQL
	bb_psql "$1" -c 'CREATE OR REPLACE FUNCTION public.sqlstate_of(q text) RETURNS text
		LANGUAGE plpgsql AS $$ BEGIN EXECUTE q; RETURN $s$00000$s$;
		EXCEPTION WHEN others THEN RETURN sqlstate; END $$'
}

finish() {
	echo "1..$T_N"
	if (( T_FAILED > 0 )); then
		echo "# $T_FAILED of $T_N checks failed"
		exit 1
	fi
	echo "# all $T_N checks passed"
	exit 0
}

# ---- recomputing audit hashes outside the server ----------------------------------------
# audit_hash leaf|block JSON — plays a superuser who forges rows and blocks *consistently*
# (and lets a scenario check that the encodings of src/audit_leaf.c and src/merkle.c are
# what the server stores).  BLAKE2b-256 = libsodium's crypto_generichash without a key.
#   leaf  {"id", "occ" (µs since 2000-01-01 UTC), "txid", "tenant", "user", "db_user",
#          "action", "resource_type", "resource_id", "payload_hash" (hex)}  -> leaf hex
#   block {"block_id", "prev_hash" (hex), "leaves" ([hex], id order), "first_id", "last_id",
#          "row_count", "missing" ([ids]), "sealed_at" (µs since 2000)}  -> "root_hex hash_hex"
# SQL that builds these objects: AUDIT_ROW_JSON and AUDIT_BLOCK_JSON (append a WHERE clause).
# Needs python3 (HAVE_PY=yes); scenarios skip the checks that need it otherwise.
# shellcheck disable=SC2034   # used by the scenarios that source this file
AUDIT_ROW_JSON="SELECT json_build_object('id', id,
	'occ', (extract(epoch FROM occurred_at) * 1000000)::bigint - 946684800000000,
	'txid', txid::text, 'tenant', tenant_id, 'user', user_id, 'db_user', db_user,
	'action', action, 'resource_type', resource_type, 'resource_id', resource_id,
	'payload_hash', encode(payload_hash, 'hex')) FROM brandbos.audit_entries"
# shellcheck disable=SC2034
AUDIT_BLOCK_JSON="SELECT json_build_object('block_id', block_id, 'prev_hash', encode(prev_hash, 'hex'),
	'leaves', (SELECT coalesce(json_agg(encode(e.leaf_hash, 'hex') ORDER BY e.id), '[]')
	             FROM brandbos.audit_entries e WHERE e.id BETWEEN b.first_id AND b.last_id),
	'first_id', first_id, 'last_id', last_id, 'row_count', row_count, 'missing', missing_ids,
	'sealed_at', (extract(epoch FROM sealed_at) * 1000000)::bigint - 946684800000000)
	FROM brandbos.audit_blocks b"

# python3 computes the hashes; scenarios skip what needs it when it is missing
# (AUDIT_HAVE_PY=no forces that, to test the scripts' fallback)
# shellcheck disable=SC2034   # used by the scenarios that source this file
HAVE_PY=${AUDIT_HAVE_PY:-}
if [[ -z $HAVE_PY ]]; then
	HAVE_PY=no
	if command -v python3 >/dev/null 2>&1; then HAVE_PY=yes; fi
fi

audit_hash() {
	python3 -c '
import hashlib, json, struct, sys

def h(data):
    return hashlib.blake2b(data, digest_size=32).digest()

def field(v):
    return struct.pack(">I", 0xFFFFFFFF) if v is None else struct.pack(">I", len(v)) + v

def text(v):
    return field(None if v is None else v.encode("utf-8"))

def int64(v):
    return field(struct.pack(">q", int(v)))

def leaf(r):
    d = b"bbleaf1" + int64(r["id"]) + int64(r["occ"]) + int64(r["txid"])
    for k in ("tenant", "user", "db_user", "action", "resource_type", "resource_id"):
        d += text(r[k])
    d += field(bytes.fromhex(r["payload_hash"]))
    return h(b"\x00" + d)

def root(leaves):
    if not leaves:
        return h(b"")
    level = list(leaves)
    while len(level) > 1:
        nxt = [h(b"\x01" + level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]

def block(b):
    r = root([bytes.fromhex(x) for x in b["leaves"]])
    missing = h(b"brandbos ids" + b"".join(struct.pack(">q", int(i)) for i in b["missing"]))
    d = b"brandbos block 1" + struct.pack(">q", int(b["block_id"])) + bytes.fromhex(b["prev_hash"]) + r
    d += struct.pack(">qqq", int(b["first_id"]), int(b["last_id"]), int(b["row_count"]))
    d += missing + struct.pack(">q", int(b["sealed_at"]))
    return r.hex() + " " + h(d).hex()

doc = json.loads(sys.argv[2])
print(leaf(doc).hex() if sys.argv[1] == "leaf" else block(doc))
' "$@"
}
