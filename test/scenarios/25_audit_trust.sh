#!/usr/bin/env bash
# 25_audit_trust — what verification trusts when the root key is not at hand (issue 11,
# points 8 and 9), checked as the auditor who verifies.
#
# A chain is sealed under root key A and a digest is kept.  A superuser then rebuilds the whole
# chain from block 1 under a key of their own (root key B), dropping a row on the way: the new
# chain is self-consistent and every block carries, and verifies under, the public key stored
# with it.  Verification must not call that intact:
#   - without a root key and without a digest, verify_audit() says the signatures were not
#     checked (a row 'signatures not checked'), never nothing;
#   - with the digest kept outside, verify_audit(NULL, digest) checks against the digest's key
#     and reports every rebuilt block as 'bad signature';
#   - verify_audit_digest(digest) returns false (the chain no longer extends it), not an error;
#     a digest of another database still raises 42704, a malformed one 22023.
# An honest chain checked without a root key against its digest reports nothing.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=audit_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/audit_lib.sh"

C=audit_trust
audit_cluster "$C" "${BB_PORT_25:-55525}" no
CONF=$(bb_datadir "$C")/postgresql.conf
KEY_A=$(bb_keyfile "$C")
KEY_B=$(bb_clusterdir "$C")/root_b.key

use_key() {   # use_key PATH|'': point brandbos.root_key_file at PATH (later lines win) and reload
	echo "brandbos.root_key_file = '$1'" >>"$CONF"
	bb_psql "$C" -At -c 'SELECT pg_reload_conf()' >/dev/null
	sleep 0.5
}
as_auditor() {   # as_auditor SQL: one value, as the login role that verifies
	q "$C" "SET ROLE trust_auditor; $1"
}

bb_psql "$C" -c 'CREATE EXTENSION brandbos'
install_sqlstate_of "$C"
bb_psql "$C" -c 'CREATE ROLE trust_auditor LOGIN' -c 'GRANT brandbos_auditor TO trust_auditor' \
	-c 'GRANT EXECUTE ON FUNCTION public.sqlstate_of(text) TO trust_auditor'
( umask 077 && { head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n'; echo; } >"$KEY_B" )
if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$KEY_B"; fi

# ---- an honest chain under key A, and its digest ---------------------------------------------
for b in 1 2; do
	bb_psql "$C" -At -c "SELECT count(brandbos.log_event('payment', 'invoice', 'b$b-' || i)) FROM generate_series(1, 3) i" >/dev/null
	bb_psql "$C" -At -c "SELECT brandbos.log_event('transfer', 'account', 'secret-$b')" >/dev/null
	q "$C" 'SELECT brandbos.seal_audit()' >/dev/null
done
D=$(as_auditor 'SELECT brandbos.audit_digest()')
is "$(as_auditor 'SELECT count(*) FROM brandbos.verify_audit()')" 0 "with root key A the honest chain verifies"
is "$(as_auditor "SELECT brandbos.verify_audit_digest(\$d\$$D\$d\$::jsonb)")" t "and so does its digest"

use_key ''
is "$(q "$C" 'SELECT brandbos.root_key_loaded()')" f "the root key is gone"
is "$(as_auditor "SELECT string_agg(problem, ',') FROM brandbos.verify_audit()")" "signatures not checked" \
	"without a root key or digest, verify_audit() says the signatures were not checked"
is "$(as_auditor "SELECT count(*) FROM brandbos.verify_audit(NULL, \$d\$$D\$d\$::jsonb)")" 0 \
	"without a root key, the honest chain verifies against the digest's key"

# ---- a superuser rebuilds the chain from block 1 under a key of their own --------------------
use_key "$KEY_B"
bb_psql "$C" <<'SQL'
BEGIN;
UPDATE pg_trigger SET tgenabled = 'D'
 WHERE tgrelid IN ('brandbos.audit_entries'::regclass, 'brandbos.audit_blocks'::regclass);
COMMIT;
SQL
bb_psql "$C" -c "DELETE FROM brandbos.audit_blocks" -c "DELETE FROM brandbos.audit_entries WHERE resource_id = 'secret-1'"
is "$(q "$C" 'SELECT brandbos.seal_audit()')" 1 "the superuser seals a new block 1 under key B"
is "$(as_auditor 'SELECT count(*) FROM brandbos.verify_audit()')" 0 \
	"(with key B loaded the rebuilt chain looks intact: only a trusted key can tell)"

use_key ''
is "$(as_auditor "SELECT string_agg(problem, ',') FROM brandbos.verify_audit()")" "signatures not checked" \
	"without a root key, verify_audit() does not call the rebuilt chain intact"
is "$(as_auditor "SELECT string_agg(DISTINCT problem, ',') FROM brandbos.verify_audit(NULL, \$d\$$D\$d\$::jsonb)")" \
	"bad signature" "against the digest kept outside, every rebuilt block is a bad signature"
is "$(as_auditor "SELECT sqlstate_of(format('SELECT brandbos.verify_audit_digest(%L::jsonb)', \$d\$$D\$d\$))")" 00000 \
	"verify_audit_digest answers for the rebuilt chain (no error)"
is "$(as_auditor "SELECT brandbos.verify_audit_digest(\$d\$$D\$d\$::jsonb)")" f \
	"and the answer is false: the chain no longer extends the digest"
is "$(as_auditor "SELECT sqlstate_of(format('SELECT brandbos.verify_audit_digest(%L::jsonb)', (\$d\$$D\$d\$::jsonb || '{\"database\": \"other\"}')::text))")" 42704 \
	"a digest of another database still raises 42704"
is "$(as_auditor "SELECT sqlstate_of('SELECT brandbos.verify_audit_digest(''{\"format\": 1}'')')")" 22023 \
	"a malformed digest still raises 22023"

use_key "$KEY_A"
is "$(as_auditor "SELECT string_agg(DISTINCT problem, ',') FROM brandbos.verify_audit()")" "bad signature" \
	"with root key A back, the rebuilt chain is a bad signature too"

finish
