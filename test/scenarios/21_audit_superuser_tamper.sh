#!/usr/bin/env bash
# 21_audit_superuser_tamper — a superuser who gets past the append-only guard by editing the
# catalog (UPDATE pg_trigger SET tgenabled = 'D', which no utility hook sees) and then edits
# rows and blocks.  verify_audit() must name every change, each in its own block:
#
#   block  tamper                                                      expected problem
#   B[2]   UPDATE a row's details                                      changed row (that id)
#   B[3]   DELETE a row                                                deleted row (that id)
#   B[4]   INSERT a forged row with a rolled-back id of the range      inserted row (that id)
#   B[5]   UPDATE the block's root_hash                                changed block
#   B[6]   UPDATE a row's action and recompute its leaf_hash           changed row (Merkle root;
#          consistently (the row itself then checks out)                 no row-level report)
#   B[7]   flip a bit of the block's signature                         bad signature
#   B[8]   UPDATE a row, recompute its leaf, the block's Merkle root   bad signature (only)
#          and block_hash consistently
#   B[9]   untouched, follows B[8]                                     broken chain
#   B[11]  untouched, follows the DELETEd block B[10]                  removed block
#   B[1]   untouched                                                   nothing
#
# The library is preloaded (so the utility hook is active: the ALTER TABLE route is refused
# and recorded); the background sealer is slowed to once an hour so that it stays out of the
# way and the block layout is deterministic.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=audit_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/audit_lib.sh"

C=audit_tamper
audit_cluster "$C" 55521 yes "brandbos.audit_seal_interval = 1h"
bb_psql "$C" -c 'CREATE EXTENSION brandbos'
install_sqlstate_of "$C"

# ---- the front door is shut ----------------------------------------------------------------
is "$(q "$C" "SELECT sqlstate_of('ALTER TABLE brandbos.audit_entries DISABLE TRIGGER append_only')")" 42501 \
	"ALTER TABLE ... DISABLE TRIGGER on the log is refused (42501)"
recorded=no
for ((i = 0; i < 50; i++)); do
	if [[ $(q "$C" "SELECT count(*) FROM brandbos.audit_entries WHERE action = 'tamper_attempt'") -ge 1 ]]; then
		recorded=yes
		break
	fi
	sleep 0.2
done
is "$recorded" yes "the refused attempt is recorded in the audit log"

# ---- eleven blocks of four rows each; B[4] also gets a rolled-back id in its middle -------
declare -a B
for k in $(seq 1 11); do
	if (( k == 4 )); then
		bb_psql "$C" -At >/dev/null <<SQL
SELECT brandbos.log_event('ev', 'blk', '$k-1', '{"k": $k}');
SELECT brandbos.log_event('ev', 'blk', '$k-2', '{"k": $k}');
BEGIN;
SELECT brandbos.log_event('ev', 'blk', '$k-rolled-back', '{"k": $k}');
ROLLBACK;
SELECT brandbos.log_event('ev', 'blk', '$k-3', '{"k": $k}');
SELECT brandbos.log_event('ev', 'blk', '$k-4', '{"k": $k}');
SQL
	else
		q "$C" "SELECT count(brandbos.log_event('ev', 'blk', '$k-' || i, jsonb_build_object('k', $k)))
		        FROM generate_series(1, 4) i" >/dev/null
	fi
	B[k]=$(q "$C" "SELECT brandbos.seal_audit()")
done
is "$(q "$C" "SELECT count(*) FROM brandbos.audit_blocks")" 11 "eleven blocks sealed"
is "$(q "$C" "SELECT count(*) FROM brandbos.verify_audit()")" 0 "the untouched log verifies"
is "$(q "$C" "SELECT sqlstate_of('UPDATE brandbos.audit_entries SET action = ''x''')")" 42501 \
	"UPDATE of the log is refused while the guard is enabled (42501)"
is "$(q "$C" "SELECT sqlstate_of('DELETE FROM brandbos.audit_blocks')")" 42501 \
	"DELETE of blocks is refused while the guard is enabled (42501)"
is "$(q "$C" "SELECT sqlstate_of('SET session_replication_role = replica; DELETE FROM brandbos.audit_entries')")" 42501 \
	"... also under session_replication_role = replica (42501)"
is "$(q "$C" "SELECT cardinality(missing_ids) FROM brandbos.audit_blocks WHERE block_id = ${B[4]}")" 1 \
	"block B[4] records its rolled-back id"

# row ids: the second row of a block
row_of() { q "$C" "SELECT first_id + 1 FROM brandbos.audit_blocks WHERE block_id = $1"; }
r2=$(row_of "${B[2]}")
r3=$(row_of "${B[3]}")
r6=$(row_of "${B[6]}")
r8=$(row_of "${B[8]}")
m4=$(q "$C" "SELECT missing_ids[1] FROM brandbos.audit_blocks WHERE block_id = ${B[4]}")

# our outside recomputation matches what the server stored (else the consistent forgeries
# below would prove nothing)
NOPY="python3 is not installed (it recomputes the hashes)"
if [[ $HAVE_PY == yes ]]; then
	is "$(audit_hash leaf "$(q "$C" "$AUDIT_ROW_JSON WHERE id = $r6")")" \
		"$(q "$C" "SELECT encode(leaf_hash, 'hex') FROM brandbos.audit_entries WHERE id = $r6")" \
		"an outside recomputation of a leaf hash matches the stored one"
	is "$(audit_hash block "$(q "$C" "$AUDIT_BLOCK_JSON WHERE block_id = ${B[8]}")")" \
		"$(q "$C" "SELECT encode(root_hash, 'hex') || ' ' || encode(block_hash, 'hex') FROM brandbos.audit_blocks WHERE block_id = ${B[8]}")" \
		"an outside recomputation of a block's Merkle root and hash matches the stored ones"
	is "$(audit_hash block "$(q "$C" "$AUDIT_BLOCK_JSON WHERE block_id = ${B[4]}")")" \
		"$(q "$C" "SELECT encode(root_hash, 'hex') || ' ' || encode(block_hash, 'hex') FROM brandbos.audit_blocks WHERE block_id = ${B[4]}")" \
		"... also for a block with a missing id"
else
	skip "an outside recomputation of hashes matches the stored ones" "$NOPY"
fi

# ---- the back door: the catalog --------------------------------------------------------------
bb_psql "$C" <<'SQL'
BEGIN;
UPDATE pg_trigger SET tgenabled = 'D'
 WHERE tgrelid IN ('brandbos.audit_entries'::regclass, 'brandbos.audit_blocks'::regclass);
-- a pg_class update so that every backend rebuilds the relations' trigger lists
UPDATE pg_class SET relhastriggers = true
 WHERE oid IN ('brandbos.audit_entries'::regclass, 'brandbos.audit_blocks'::regclass);
COMMIT;
SQL
is "$(q "$C" "SELECT string_agg(DISTINCT tgenabled::text, ',') FROM pg_trigger
              WHERE tgrelid IN ('brandbos.audit_entries'::regclass, 'brandbos.audit_blocks'::regclass)")" D \
	"a superuser disabled the guard triggers through pg_trigger"

bb_psql "$C" -c "UPDATE brandbos.audit_entries SET details = '{\"k\": 999, \"forged\": true}' WHERE id = $r2"
bb_psql "$C" -c "DELETE FROM brandbos.audit_entries WHERE id = $r3"
# a forged row in B[4]'s rolled-back id, with the hashes of a neighbour
bb_psql "$C" -c "INSERT INTO brandbos.audit_entries
	SELECT $m4, occurred_at, txid, tenant_id, user_id, db_user, 'ev', 'blk', '4-forged', details,
	       ip_address, user_agent, payload_hash, leaf_hash
	  FROM brandbos.audit_entries WHERE id = $m4 - 1"
bb_psql "$C" -c "UPDATE brandbos.audit_blocks SET root_hash = sha256(root_hash) WHERE block_id = ${B[5]}"
if [[ $HAVE_PY == yes ]]; then
	# B[6]: a changed row whose leaf hash is recomputed consistently
	leaf6=$(audit_hash leaf "$(q "$C" "SELECT (j::jsonb || '{\"action\": \"ev-forged\"}')::text
	                                   FROM ($AUDIT_ROW_JSON WHERE id = $r6) s(j)")")
	bb_psql "$C" -c "UPDATE brandbos.audit_entries SET action = 'ev-forged', leaf_hash = '\\x$leaf6' WHERE id = $r6"
fi
bb_psql "$C" -c "UPDATE brandbos.audit_blocks SET signature = set_byte(signature, 10, get_byte(signature, 10) # 1)
	WHERE block_id = ${B[7]}"
if [[ $HAVE_PY == yes ]]; then
	# B[8]: a changed row, its leaf, the Merkle root and the block hash all recomputed
	leaf8=$(audit_hash leaf "$(q "$C" "SELECT (j::jsonb || '{\"resource_id\": \"8-forged\"}')::text
	                                   FROM ($AUDIT_ROW_JSON WHERE id = $r8) s(j)")")
	bb_psql "$C" -c "UPDATE brandbos.audit_entries SET resource_id = '8-forged', leaf_hash = '\\x$leaf8' WHERE id = $r8"
	read -r root8 hash8 < <(audit_hash block "$(q "$C" "$AUDIT_BLOCK_JSON WHERE block_id = ${B[8]}")")
	bb_psql "$C" -c "UPDATE brandbos.audit_blocks SET root_hash = '\\x$root8', block_hash = '\\x$hash8' WHERE block_id = ${B[8]}"
fi
bb_psql "$C" -c "DELETE FROM brandbos.audit_blocks WHERE block_id = ${B[10]}"

# ---- what verify_audit() says ----------------------------------------------------------------
V=$(q "$C" "SELECT block_id || '|' || coalesce(audit_id::text, '') || '|' || problem FROM brandbos.verify_audit()
            ORDER BY block_id, audit_id NULLS FIRST, problem")
echo "# verify_audit() after the tampering:"
q "$C" "SELECT block_id || ' ' || coalesce(audit_id::text, '-') || ' ' || problem || ': ' || detail
        FROM brandbos.verify_audit()" | sed 's/^/#   /'

has() {   # has DESC LINE: verify_audit() reported LINE (block|audit_id|problem)
	if grep -qxF "$2" <<<"$V"; then pass "$1"; else fail "$1" "missing: $2"; fi
}
has_none() {   # has_none DESC REGEX: no line matches
	local hits
	hits=$(grep -E "$2" <<<"$V" || true)
	if [[ -z $hits ]]; then pass "$1"; else fail "$1" "unexpected: $hits"; fi
}

has "a changed payload is reported: 'changed row' for its id" "${B[2]}|$r2|changed row"
has "a deleted row is reported: 'deleted row' for its id" "${B[3]}|$r3|deleted row"
has "a forged row in a rolled-back id is reported: 'inserted row' for its id" "${B[4]}|$m4|inserted row"
has "a changed root_hash is reported: 'changed block'" "${B[5]}||changed block"
if [[ $HAVE_PY == yes ]]; then
	has "a consistently re-hashed row is still caught by the Merkle root: 'changed row'" "${B[6]}||changed row"
	has_none "... and the row itself checks out (the forgery was consistent)" "^${B[6]}\|$r6\|"
fi
has "a forged signature is reported: 'bad signature'" "${B[7]}||bad signature"
if [[ $HAVE_PY == yes ]]; then
	has "a block re-hashed consistently (leaf, root, block hash) fails its signature: 'bad signature'" \
		"${B[8]}||bad signature"
	has_none "... and nothing else of that block is reported" "^${B[8]}\|.*\|(changed|deleted|inserted)"
	has "the block after the re-hashed one no longer chains: 'broken chain'" "${B[9]}||broken chain"
	tampered="${B[2]} ${B[3]} ${B[4]} ${B[5]} ${B[6]} ${B[7]} ${B[8]} ${B[9]} ${B[11]}"
else
	skip "consistent forgeries of a row (B[6]) and of a whole block (B[8], B[9])" "$NOPY"
	tampered="${B[2]} ${B[3]} ${B[4]} ${B[5]} ${B[7]} ${B[11]}"
fi
has "a deleted block is reported: 'removed block'" "${B[11]}||removed block"
has_none "an untouched block reports nothing" "^${B[1]}\|"
is "$(cut -d'|' -f1 <<<"$V" | sort -n -u | paste -sd' ' -)" "$tampered" \
	"problems are reported for exactly the tampered blocks and their successors"

# the payload of B[2]'s row is hashed separately from the leaf (for redaction); repairing the
# payload but not the rest must not hide the other tampering
bb_psql "$C" -c "UPDATE brandbos.audit_entries SET details = '{\"k\": 2}' WHERE id = $r2"
is "$(q "$C" "SELECT count(*) FROM brandbos.verify_audit() WHERE block_id = ${B[2]}")" 0 \
	"restoring the original payload makes block B[2] verify again (the check is exact)"
is "$(q "$C" "SELECT count(*) > 0 FROM brandbos.verify_audit() WHERE block_id = ${B[3]}")" t \
	"... while the other tampering is still reported"

finish
