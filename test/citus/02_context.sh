#!/usr/bin/env bash
# The request context set on the coordinator reaches every shard query of its transaction,
# sealed under the root key and bound to the distributed transaction (citus_context.c): each
# tenant sees exactly its rows through the coordinator, the context ends with the transaction
# on the pooled worker connections, it is never shown or logged, and a client connecting to a
# worker cannot set one: not by hand, not with a bad seal, not with a sealed value bound to
# another transaction, role, or an old one.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ct_cluster "log_statement = all" "shared_preload_libraries = citus,pg_stat_statements,brandbos"
T1=11111111-1111-1111-1111-111111111111
T2=22222222-2222-2222-2222-222222222222

ct_sql coord "CREATE EXTENSION pg_stat_statements" >/dev/null  # Citus creates it on the workers
ct_psql coord -c "CREATE ROLE app LOGIN" -c "CREATE ROLE eve LOGIN" -c "GRANT brandbos_context_admin TO app" \
	-c "CREATE TABLE docs (tenant_id uuid NOT NULL, id bigint NOT NULL, body text, PRIMARY KEY (tenant_id, id))" \
	-c "SELECT create_distributed_table('docs', 'tenant_id')" \
	-c "GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO app, eve" \
	-c "INSERT INTO docs SELECT '$T1', g, 'one' FROM generate_series(1, 10) g" \
	-c "INSERT INTO docs SELECT '$T2', g, 'two' FROM generate_series(1, 7) g" \
	-c "ALTER TABLE docs ENABLE ROW LEVEL SECURITY" \
	-c "CREATE POLICY by_tenant ON docs USING (tenant_id = brandbos.current_tenant_uuid())" >/dev/null

# 1. what the shard queries see
as_app() { CT_USER=app ct_psql coord -c "BEGIN" -c "$1" -c "$2" -c "COMMIT" | sed -n '2p'; }
assert_eq "tenant 1 (set_context) sees its 10 rows, read on both workers" 10 \
	"$(as_app "SELECT brandbos.set_context('u1', '$T1')" "SELECT count(*) FROM docs")"
assert_eq "tenant 2 (set_context) sees its 7 rows" 7 \
	"$(as_app "SELECT brandbos.set_context('u2', '$T2')" "SELECT count(*) FROM docs")"
token=$(ct_sql coord "SELECT brandbos.sign_token('{\"sub\": \"u2\", \"tenant_id\": \"$T2\"}')")
assert_eq "authenticate(token) for tenant 2: its 7 rows" 7 \
	"$(as_app "SELECT 1 FROM brandbos.authenticate('$token')" "SELECT count(*) FROM docs")"
assert_eq "the shard queries return the request's user and tenant" "u1|$T1" \
	"$(as_app "SELECT brandbos.set_context('u1', '$T1')" "SELECT string_agg(DISTINCT brandbos.current_user_id() || '|' || brandbos.current_tenant_id(), ',') FROM docs")"
assert_eq "a statement filtered on tenant 2 by tenant 1 finds nothing" 0 \
	"$(as_app "SELECT brandbos.set_context('u1', '$T1')" "SELECT count(*) FROM docs WHERE tenant_id = '$T2'")"

# 2. it ends with the transaction, also on the worker connections Citus keeps open
out=$(CT_USER=app ct_psql coord -c "BEGIN" -c "SELECT brandbos.set_context('u1', '$T1')" \
	-c "SELECT count(*) FROM docs" -c "COMMIT" -c "SELECT count(*) FROM docs" \
	-c "BEGIN" -c "SELECT count(*) FROM docs" -c "COMMIT")
assert_eq "in one session: 10 rows with the context, then 0 and 0 without" "10 0 0" \
	"$(sed -n '2p;3p;4p' <<<"$out" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "a rolled-back context is gone too" "10 0" \
	"$(CT_USER=app ct_psql coord -c "BEGIN" -c "SELECT brandbos.set_context('u1', '$T1')" \
		-c "SELECT count(*) FROM docs" -c "ROLLBACK" -c "SELECT count(*) FROM docs" | sed -n '2p;3p' | tr '\n' ' ' | sed 's/ $//')"

# 3. never shown, never logged
assert_eq "SHOW brandbos.citus_context on the coordinator shows nothing" "" \
	"$(CT_USER=app ct_psql coord -c "BEGIN" -c "SELECT brandbos.set_context('u1', '$T1')" \
		-c "SHOW brandbos.citus_context" -c "COMMIT" | sed -n '2p')"
# citus.log_remote_commands: a message that goes to the server log is hidden there and for the
# client (a NOTICE that goes only to the client is not seen by emit_log_hook: it shows the
# session its own value, bound to its own transaction)
notices=$(ct_psql coord -c "SET log_min_messages = notice" -c "SET citus.log_remote_commands = on" -c "BEGIN" \
	-c "SELECT brandbos.set_context('u1', '$T1')" -c "SELECT count(*) FROM docs" -c "COMMIT" 2>&1)
check "citus.log_remote_commands shows the forwarded SET, value hidden" \
	grep -q "brandbos.citus_context = '<hidden>'" <<<"$notices"
assert_eq "... and never the value" 0 "$(grep -cE "citus_context = '[A-Za-z0-9_-]{16}" <<<"$notices" || true)"
check "coord: the log has the remote command, value hidden" grep -q "issuing .*brandbos.citus_context = '<hidden>'" "$(bb_logfile coord)"
for n in coord w1 w2; do
	assert_eq "$n: no sealed value in the server log (log_statement = all)" 0 \
		"$(grep -cE "citus_context = '[A-Za-z0-9_-]{16}" "$(bb_logfile "$n")" || true)"
done
for w in w1 w2; do
	assert_eq "$w: pg_stat_statements (loaded before brandbos) holds no sealed value" "0 1" \
		"$(ct_sql "$w" "SELECT count(*) FILTER (WHERE query ~ 'citus_context = ''[A-Za-z0-9_-]{16}') || ' ' ||
			sign(count(*) FILTER (WHERE query ~ 'citus_context = ''[*]{16}')) FROM pg_stat_statements")"
done
check "w1: the log shows the statement, value hidden" grep -q "brandbos.citus_context = '<hidden>'" "$(bb_logfile w1)"

# 4. a client connecting to a worker cannot set a context
assert_eq "worker: SET LOCAL of a made-up value is refused (42501)" 42501 \
	"$(CT_USER=app ct_sqlstate w1 "BEGIN; SET LOCAL brandbos.citus_context = 'AQAAAA'; COMMIT")"
assert_eq "worker: set_config() is refused (42501)" 42501 \
	"$(CT_USER=app ct_sqlstate w1 "BEGIN; SELECT set_config('brandbos.citus_context', 'AQAAAA', true); COMMIT")"
assert_eq "worker: SET without LOCAL is refused (42501)" 42501 \
	"$(CT_USER=app ct_sqlstate w1 "SET brandbos.citus_context = 'AQAAAA'")"
assert_eq "worker: ALTER ROLE ... SET is refused" 42501 \
	"$(ct_sqlstate w1 "ALTER ROLE app SET brandbos.citus_context = 'AQAAAA'")"
assert_eq "coordinator: RESET of the forwarded context is refused (42501)" 42501 \
	"$(CT_USER=app ct_sqlstate coord "BEGIN; SELECT brandbos.set_context('u1', '$T1'); RESET brandbos.citus_context; COMMIT")"

# Sealed values made with the root key (which only the servers hold) model a value copied from
# a live transaction: the binding must refuse it anywhere else.
seal() { # initiator number stamp_microseconds_since_2000 role [mac-ok]
	python3 - "$(bb_keyfile coord)" "$@" <<'EOF'
import base64, hashlib, hmac, struct, sys
key = bytes.fromhex(open(sys.argv[1]).read().strip())
initiator, number, stamp, role = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
k = hashlib.blake2b(b"brandbos citus context v1", digest_size=32, key=key).digest()
fields = ["forged-user", "22222222-2222-2222-2222-222222222222", "authenticated", "{}", None, None, role, "bbcitus"]
body = bytes([1])
for f in fields:
    body += struct.pack(">I", 0xFFFFFFFF) if f is None else struct.pack(">I", len(f)) + f.encode()
body += struct.pack(">IQQ", initiator & 0xFFFFFFFF, number, stamp)
mac = hmac.new(k, body, hashlib.sha256).digest()
if len(sys.argv) > 6:
    mac = bytes([mac[0] ^ 1]) + mac[1:]
print(base64.urlsafe_b64encode(body + mac).decode().rstrip("="))
EOF
}
now_us=$(ct_sql w1 "SELECT (extract(epoch FROM date_trunc('second', now()) - timestamptz '2000-01-01 00:00:00+00') * 1000000)::bigint")
assign() { echo "SELECT assign_distributed_transaction_id($1, $2, timestamptz '2000-01-01 00:00:00+00' + ($3 || ' microseconds')::interval)"; }
read_ctx="SELECT brandbos.current_user_id() || ' ' || brandbos.current_tenant_id()"
good=$(seal 77 424242 "$now_us" app)
assert_eq "control: a value sealed for this very transaction, role and database is accepted" "forged-user $T2" \
	"$(CT_USER=app ct_psql w1 -c "BEGIN" -c "SET LOCAL brandbos.citus_context = '$good'" \
		-c "$(assign 77 424242 "$now_us")" -c "$read_ctx" -c "COMMIT" | sed -n '2p')"
assert_eq "a value with a bad seal is refused at SET (42501)" 42501 \
	"$(CT_USER=app ct_sqlstate w1 "BEGIN; SET LOCAL brandbos.citus_context = '$(seal 77 424242 "$now_us" app bad)'; COMMIT")"
assert_eq "a sealed value outside a distributed transaction is refused (42501)" 42501 \
	"$(CT_USER=app ct_sqlstate w1 "BEGIN; SET LOCAL brandbos.citus_context = '$good'; $read_ctx; COMMIT")"
assert_eq "... in another distributed transaction (42501)" 42501 \
	"$(CT_USER=app ct_sqlstate w1 "BEGIN; SET LOCAL brandbos.citus_context = '$good'; $(assign 77 424243 "$now_us"); $read_ctx; COMMIT")"
assert_eq "... by another role (42501)" 42501 \
	"$(CT_USER=eve ct_sqlstate w1 "BEGIN; SET LOCAL brandbos.citus_context = '$good'; $(assign 77 424242 "$now_us"); $read_ctx; COMMIT")"
old_us=$((now_us - 7200 * 1000000))
assert_eq "... for a distributed transaction older than citus_context_max_age (42501)" 42501 \
	"$(CT_USER=app ct_sqlstate w1 "BEGIN; SET LOCAL brandbos.citus_context = '$(seal 77 424244 "$old_us" app)'; $(assign 77 424244 "$old_us"); $read_ctx; COMMIT")"
assert_eq "... and a reset of an accepted one makes the context unreadable (42501)" 42501 \
	"$(CT_USER=app ct_sqlstate w1 "BEGIN; SET LOCAL brandbos.citus_context = '$good'; $(assign 77 424242 "$now_us");
		SELECT set_config('brandbos.citus_context', NULL, true); $read_ctx; COMMIT")"
sc_finish
