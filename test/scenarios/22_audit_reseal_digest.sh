#!/usr/bin/env bash
# 22_audit_reseal_digest — digests kept outside the database catch a rewrite of the newest
# blocks that verify_audit() alone cannot see.
#
# A superuser disables the guard through pg_trigger, deletes the newest two blocks, deletes
# and (consistently, with a recomputed leaf hash) alters rows under them, and seals again:
# the new chain is internally consistent, but it no longer extends the digests taken of the
# deleted blocks, so verify_audit_digest() returns false for them, while a digest of an
# older, untouched block still verifies.  Also: a digest of another database raises 42704,
# malformed digests 22023.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=audit_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/audit_lib.sh"

C=audit_digest
audit_cluster "$C" 55522 no
bb_psql "$C" -c 'CREATE EXTENSION brandbos'
install_sqlstate_of "$C"

batch() {   # batch TAG: five committed events and one rolled back, then seal; prints the block id
	bb_psql "$C" -At >/dev/null <<SQL
SELECT count(brandbos.log_event('ev', 'batch', '$1-' || i, jsonb_build_object('batch', '$1', 'i', i)))
  FROM generate_series(1, 3) i;
BEGIN;
SELECT brandbos.log_event('ev', 'batch', '$1-rolled-back');
ROLLBACK;
SELECT count(brandbos.log_event('ev', 'batch', '$1-' || i, jsonb_build_object('batch', '$1', 'i', i)))
  FROM generate_series(4, 5) i;
SQL
	q "$C" "SELECT brandbos.seal_audit()"
}
digest_ok() {   # digest_ok DIGEST [DB]: t/f
	BB_DB=${2:-postgres} q "$C" "SELECT brandbos.verify_audit_digest(\$d\$$1\$d\$::jsonb)"
}

is "$(batch a) $(batch b) $(batch c)" "1 2 3" "blocks 1 to 3 sealed"
D3=$(q "$C" "SELECT brandbos.audit_digest()")
is "$(q "$C" "SELECT (\$d\$$D3\$d\$::jsonb)->>'block_id'")" 3 "the digest names block 3"
is "$(digest_ok "$D3")" t "the digest of block 3 verifies"
is "$(batch d)" 4 "block 4 sealed"
D4=$(q "$C" "SELECT brandbos.audit_digest()")
is "$(batch e)" 5 "block 5 sealed"
D5=$(q "$C" "SELECT brandbos.audit_digest()")    # the latest digest before the tampering
is "$(digest_ok "$D3") $(digest_ok "$D4") $(digest_ok "$D5")" "t t t" \
	"the digests of blocks 3, 4 and 5 verify as the chain grows"
is "$(q "$C" "SELECT count(*) FROM brandbos.verify_audit()")" 0 "verify_audit() is clean"
is "$(digest_ok "$(q "$C" "SELECT (\$d\$$D5\$d\$::jsonb || jsonb_build_object('block_hash', \$d\$$D4\$d\$::jsonb->>'block_hash'))::text")")" f \
	"a digest naming block 5 with block 4's hash does not verify"

# ---- the rewrite -----------------------------------------------------------------------------
old5=$(q "$C" "SELECT encode(block_hash, 'hex') FROM brandbos.audit_blocks WHERE block_id = 5")
bb_psql "$C" <<'SQL'
BEGIN;
UPDATE pg_trigger SET tgenabled = 'D'
 WHERE tgrelid IN ('brandbos.audit_entries'::regclass, 'brandbos.audit_blocks'::regclass);
UPDATE pg_class SET relhastriggers = true
 WHERE oid IN ('brandbos.audit_entries'::regclass, 'brandbos.audit_blocks'::regclass);
COMMIT;
SQL
bb_psql "$C" -c "DELETE FROM brandbos.audit_blocks WHERE block_id IN (4, 5)"
is "$(q "$C" "SELECT max(block_id) FROM brandbos.audit_blocks")" 3 "a superuser deleted blocks 4 and 5"
is "$(digest_ok "$D5") $(digest_ok "$D4")" "f f" \
	"the digests of the deleted blocks no longer verify"
is "$(digest_ok "$D3")" t "the digest of block 3 (untouched) still verifies"
# rows under the deleted blocks: two of block 5 deleted, one of block 4 altered with a
# consistently recomputed leaf hash (needs python3; without it the row is only deleted)
bb_psql "$C" -c "DELETE FROM brandbos.audit_entries WHERE resource_id IN ('e-2', 'e-4')"
r=$(q "$C" "SELECT id FROM brandbos.audit_entries WHERE resource_id = 'd-3'")
if [[ $HAVE_PY == yes ]]; then
	leaf=$(audit_hash leaf "$(q "$C" "SELECT (j::jsonb || '{\"action\": \"ev-rewritten\"}')::text
	                                  FROM ($AUDIT_ROW_JSON WHERE id = $r) s(j)")")
	bb_psql "$C" -c "UPDATE brandbos.audit_entries SET action = 'ev-rewritten', leaf_hash = '\\x$leaf' WHERE id = $r"
else
	echo "# python3 is not installed: row $r is deleted rather than rewritten"
	bb_psql "$C" -c "DELETE FROM brandbos.audit_entries WHERE id = $r"
fi

# ---- sealed again ----------------------------------------------------------------------------
is "$(q "$C" "SELECT brandbos.seal_audit()")" 4 "seal_audit() seals the rewritten rows as a new block 4"
is "$(batch f) $(batch g)" "5 6" "and the chain grows again: blocks 5 and 6"
is "$(q "$C" "SELECT encode(block_hash, 'hex') <> '$old5' FROM brandbos.audit_blocks WHERE block_id = 5")" t \
	"block 5 exists again, with another hash"
n=$(q "$C" "SELECT count(*) FROM brandbos.verify_audit()")
echo "# note: verify_audit() reports $n problem(s) for the rewritten chain (it is self-consistent: only digests kept outside can tell)"
is "$(digest_ok "$D5")" f "the latest digest taken before the rewrite (block 5) returns false"
is "$(digest_ok "$D4")" f "the digest of the deleted block 4 returns false"
is "$(digest_ok "$D3")" t "the digest of block 3, which the rewrite kept, still verifies"
D6=$(q "$C" "SELECT brandbos.audit_digest()")
is "$(digest_ok "$D6")" t "a fresh digest of the rewritten chain verifies (the rewrite is only visible against older digests)"
is "$(q "$C" "SELECT (\$d\$$D6\$d\$::jsonb)->>'chain_id' = (\$d\$$D3\$d\$::jsonb)->>'chain_id'")" t \
	"the chain id is unchanged (block 1 was kept)"

# ---- digests of another database, and malformed ones -------------------------------------
bb_psql "$C" -c 'CREATE DATABASE other' -c 'CREATE DATABASE empty'
BB_DB=other bb_psql "$C" -At -c 'CREATE EXTENSION brandbos' \
	-c "SELECT brandbos.log_event('elsewhere', 'other-db')" -c 'SELECT brandbos.seal_audit()' >/dev/null
BB_DB=empty bb_psql "$C" -c 'CREATE EXTENSION brandbos'
BB_DB=empty install_sqlstate_of "$C"
DO=$(BB_DB=other q "$C" "SELECT brandbos.audit_digest()")
is "$(digest_ok "$DO" other)" t "the other database's digest verifies there"
is "$(q "$C" "SELECT sqlstate_of(format('SELECT brandbos.verify_audit_digest(%L::jsonb)', \$d\$$DO\$d\$))")" 42704 \
	"a digest of another database raises 42704 here"
is "$(BB_DB=empty q "$C" "SELECT sqlstate_of(format('SELECT brandbos.verify_audit_digest(%L::jsonb)', \$d\$$D3\$d\$))")" 42704 \
	"a digest passed to a database without any block raises 42704"
is "$(q "$C" "SELECT sqlstate_of('SELECT brandbos.verify_audit_digest(''{}'')')")" 22023 \
	"a malformed digest '{}' raises 22023"
is "$(q "$C" "SELECT sqlstate_of(format('SELECT brandbos.verify_audit_digest(%L::jsonb)', \$d\$$D3\$d\$::jsonb - 'block_id'))")" 22023 \
	"a digest without block_id raises 22023"
is "$(q "$C" "SELECT sqlstate_of('SELECT brandbos.verify_audit_digest(NULL)')")" 22004 \
	"a NULL digest raises 22004"
is "$(BB_DB=empty q "$C" "SELECT sqlstate_of('SELECT brandbos.audit_digest()')")" 55000 \
	"audit_digest() without any block raises 55000"

finish
