#!/usr/bin/env bash
# Attacks on the request context forwarded to the workers (citus_context.c).  Every check
# states the SAFE outcome: it fails when the attack works ("HOLE if ..." names what a working
# attack shows).  Attackers: `app`, the login role all tenants share, with SQL injection inside
# one tenant's request transaction on the coordinator (after authenticate) and able to connect
# to a worker; `owner1`, a table owner planting objects in schemas of its own.  Tenant 2
# (7 rows) is the victim; tenant 1 (10 rows) is the attacker's own.
#
# Holes this scenario found in review, each fixed since (citus_context.c, citus_ledger.c):
#   1. Citus sends "BEGIN;SET LOCAL brandbos.citus_context = '...';SELECT
#      assign_distributed_transaction_id(...)" as one text and calls the function unqualified:
#      a function of that name in a schema named like the login role ran in every victim's
#      worker connection and read the value with current_query().  Now the value is masked in
#      the text once accepted, and no context is accepted while such a function exists.
#   2. assign_distributed_transaction_id() is open to anyone, so a captured value was accepted
#      again after its transaction ended.  Now every node keeps a ledger of the distributed
#      transactions that ended there, and the coordinator takes only values it sealed itself.
#   3. parallel CREATE INDEX on a worker: its workers restored the value with no check.  Now a
#      parallel worker uses it only when its leader checked it.
#   4. set_request() pushed down to a worker dropped the forwarded context (now refused there),
#      and citus.propagate_set_commands = none left in a pooled session sent no context (now
#      the coordinator sets it to 'local' for the transaction).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ct_cluster
T1=11111111-1111-1111-1111-111111111111
T2=22222222-2222-2222-2222-222222222222

# app is NOT brandbos_context_admin here: tenants come in with tokens only
ct_psql coord -c "CREATE ROLE app LOGIN" -c "CREATE ROLE owner1 LOGIN" \
	-c "CREATE TABLE docs (tenant_id uuid NOT NULL, id bigint NOT NULL, body text, PRIMARY KEY (tenant_id, id))" \
	-c "SELECT create_distributed_table('docs', 'tenant_id')" \
	-c "GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO app, owner1" \
	-c "INSERT INTO docs SELECT '$T1', g, 'one' FROM generate_series(1, 10) g" \
	-c "INSERT INTO docs SELECT '$T2', g, 'two' FROM generate_series(1, 7) g" \
	-c "ALTER TABLE docs ENABLE ROW LEVEL SECURITY" \
	-c "CREATE POLICY by_tenant ON docs USING (tenant_id = brandbos.current_tenant_uuid())" \
	-c "CREATE TABLE orders (tenant_id uuid NOT NULL, id bigint NOT NULL, note text, PRIMARY KEY (tenant_id, id))" \
	-c "SELECT brandbos.enable_audit('orders')" \
	-c "SELECT create_distributed_table('orders', 'tenant_id')" \
	-c "GRANT SELECT, INSERT ON orders TO app" \
	-c "CREATE TABLE notes (tenant_id uuid NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant_id, id))" \
	-c "SELECT create_distributed_table('notes', 'tenant_id')" \
	-c "INSERT INTO notes SELECT '$T1', g FROM generate_series(1, 3) g" \
	-c "INSERT INTO notes SELECT '$T2', g FROM generate_series(1, 4) g" \
	-c "GRANT SELECT ON notes TO app" \
	-c "ALTER TABLE notes ENABLE ROW LEVEL SECURITY" \
	-c "CREATE POLICY not_guest ON notes USING (tenant_id = brandbos.current_tenant_uuid() OR NOT brandbos.has_app_role('guest'))" >/dev/null
# (notes' policy is written the way context.c warns about: a cleared app role widens it)
for n in coord w1 w2; do
	ct_sql "$n" "SET citus.enable_ddl_propagation = off; GRANT CREATE ON DATABASE $BB_DB TO owner1" >/dev/null
done
tok1=$(ct_sql coord "SELECT brandbos.sign_token('{\"sub\": \"u1\", \"tenant_id\": \"$T1\"}')")
tok2=$(ct_sql coord "SELECT brandbos.sign_token('{\"sub\": \"u2\", \"tenant_id\": \"$T2\"}')")
tok1g=$(ct_sql coord "SELECT brandbos.sign_token('{\"sub\": \"u1\", \"tenant_id\": \"$T1\", \"role\": \"guest\"}')")
auth1="SELECT 1 FROM brandbos.authenticate('$tok1')"
auth2="SELECT 1 FROM brandbos.authenticate('$tok2')"
start_w1=$(ct_sql w1 "SELECT pg_postmaster_start_time()")
start_coord=$(ct_sql coord "SELECT pg_postmaster_start_time()")

# the SQLSTATE of a statement, or its (last) output line when it succeeded
state_or_value() { # NODE SQL...
	local n=$1 out; shift
	local args=() s
	for s in "$@"; do args+=(-c "$s"); done
	if out=$(CT_USER=${CT_USER:-app} ct_psql "$n" -v VERBOSITY=verbose "${args[@]}" 2>&1); then
		tail -1 <<<"$out"
	else
		sed -nE 's/^(ERROR|FATAL): +([0-9A-Z]{5}):.*/\2/p' <<<"$out" | head -1
	fi
}
sealed_re="citus_context = '[A-Za-z0-9_-]{20,}"

# control: the attacker's own request works
assert_eq "control: tenant 1 sees its 10 rows through the coordinator" 10 \
	"$(CT_USER=app ct_psql coord -c BEGIN -c "$auth1" -c "SELECT count(*) FROM docs" -c COMMIT | sed -n 2p)"

# ---------------------------------------------------------------------------------------------
# 1. Malformed values (no seal): refused with 42501, no backend crashes
# ---------------------------------------------------------------------------------------------
big=$(head -c 3000000 /dev/zero | tr '\0' 'A')
for v in "A" "AQ" "AQAA" "====" "AQ==" "!!!!" "AQAAAA%%" "$(printf 'A%.0s' $(seq 1 43))" "$(printf 'AQ%.0s' $(seq 1 500))"; do
	assert_eq "fuzz: unsealed value '${v:0:12}' (${#v} chars) is refused on w1 (42501)" 42501 \
		"$(CT_USER=app ct_sqlstate w1 "BEGIN; SET LOCAL brandbos.citus_context = '$v'; COMMIT")"
done
assert_eq "fuzz: a 3 MB value is refused on w1 (42501)" 42501 \
	"$(printf "BEGIN;\nSET LOCAL brandbos.citus_context = '%s';\n" "$big" | CT_USER=app ct_psql w1 -v VERBOSITY=verbose -f - 2>&1 |
		sed -nE 's/^(psql:[^ ]* )?ERROR: +([0-9A-Z]{5}):.*/\2/p' | head -1)"

# Values sealed with the root key (only the servers hold it) but malformed inside: the parser
# after the seal must refuse them too (defence in depth).
mkval() { # mode initiator number stamp_us role tenant
	python3 - "$(bb_keyfile coord)" "$@" <<'EOF'
import base64, hashlib, hmac, struct, sys
key = bytes.fromhex(open(sys.argv[1]).read().strip())
mode, initiator, number, stamp, role, tenant = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
k = hashlib.blake2b(b"brandbos citus context v1", digest_size=32, key=key).digest()
fields = ["forged-user", tenant, "authenticated", "{}", None, None, role, "bbcitus"]
body = bytes([2 if mode == "version2" else 1])
for i, f in enumerate(fields):
    if i == 0 and mode == "hugelen":
        body += struct.pack(">I", 0xFFFFFFFE) + f.encode()
    elif i == 0 and mode == "biglen":
        body += struct.pack(">I", 0x7FFFFFFF) + f.encode()
    elif i == 0 and mode == "nul":
        body += struct.pack(">I", len(f) + 2) + f.encode() + b"\x00x"
    elif f is None:
        body += struct.pack(">I", 0xFFFFFFFF)
    else:
        body += struct.pack(">I", len(f)) + f.encode()
ids = struct.pack(">IQQ", initiator & 0xFFFFFFFF, number, stamp)
if mode == "trunc":
    body = body[:20]
elif mode == "noids":
    pass
elif mode == "trailing":
    body += ids + b"\x00\x01"
else:
    body += ids
mac = hmac.new(k, body, hashlib.sha256).digest()
print(base64.urlsafe_b64encode(body + mac).decode().rstrip("="))
EOF
}
now_us=$(ct_sql w1 "SELECT (extract(epoch FROM date_trunc('second', now()) - timestamptz '2000-01-01 00:00:00+00') * 1000000)::bigint")
for mode in hugelen biglen nul trunc noids trailing version2; do
	assert_eq "fuzz: a sealed value malformed inside ($mode) is refused on w1 (42501)" 42501 \
		"$(CT_USER=app ct_sqlstate w1 "BEGIN; SET LOCAL brandbos.citus_context = '$(mkval "$mode" 77 4242 "$now_us" app "$T2")'; COMMIT")"
done
assert_eq "fuzz: w1 did not restart (no backend crashed)" "$start_w1" "$(ct_sql w1 "SELECT pg_postmaster_start_time()")"

# ---------------------------------------------------------------------------------------------
# 2. Capturing a live value: owner1 plants Citus's unqualified assign_distributed_transaction_id
#    in a schema named like the shared login role ("$user" in its default search_path).  Citus
#    sends "BEGIN;SET LOCAL brandbos.citus_context = '...';SELECT assign_distributed_transaction_id(...)"
#    as one query string, so the planted function runs while current_query() still holds it.
# ---------------------------------------------------------------------------------------------
for n in w1 w2; do
	CT_USER=owner1 ct_psql "$n" -c "SET citus.enable_ddl_propagation = off" \
		-c "CREATE SCHEMA app" -c "GRANT USAGE ON SCHEMA app TO app" \
		-c "CREATE TABLE app.loot (q text)" -c "GRANT INSERT ON app.loot TO app" \
		-c "CREATE FUNCTION app.assign_distributed_transaction_id(a integer, b integer, c text) RETURNS void
			LANGUAGE plpgsql AS \$f\$ BEGIN
				INSERT INTO app.loot VALUES (current_query());
				RAISE LOG 'owner1 saw %', translate(current_query(), '.', '#');
				PERFORM pg_catalog.assign_distributed_transaction_id(a, b, c::timestamptz);
			END \$f\$" \
		-c "CREATE FUNCTION app.assign_distributed_transaction_id(a integer, b bigint, c text) RETURNS void
			LANGUAGE plpgsql AS \$f\$ BEGIN
				INSERT INTO app.loot VALUES (current_query());
				RAISE LOG 'owner1 saw %', translate(current_query(), '.', '#');
				PERFORM pg_catalog.assign_distributed_transaction_id(a, b, c::timestamptz);
			END \$f\$" >/dev/null
done
# the victim: tenant 2's request, in a fresh session (new worker connections).  While a
# function shadows Citus's unqualified call, the workers refuse the context: the request
# fails closed (and the loot table's rows roll back with it; the planted RAISE LOG stays).
assert_eq "tenant 2's request is refused (42501) while a function shadows assign_distributed_transaction_id" 42501 \
	"$(state_or_value coord BEGIN "$auth2" "SELECT count(*) FROM docs")"
ran=$(( $(grep -c "owner1 saw" "$(bb_logfile w1)" || true) + $(grep -c "owner1 saw" "$(bb_logfile w2)" || true) ))
check "precondition: the planted function ran in the victim's worker connections ($ran calls)" test "$ran" -gt 0
loot=$( (grep -h "owner1 saw" "$(bb_logfile w1)" "$(bb_logfile w2)" | tr '#' '.'; ct_sql w1 "SELECT q FROM app.loot"; ct_sql w2 "SELECT q FROM app.loot") | grep -E "$sealed_re" | head -1 || true)
assert_eq "HOLE if 1: code run by the victim's worker connection (current_query()) sees no sealed value" 0 \
	"$( [[ -n $loot ]] && echo 1 || echo 0)"
V=$(sed -nE "s/.*citus_context = '([A-Za-z0-9_-]+)'.*/\1/p" <<<"$loot")
ID=$(sed -nE "s/.*assign_distributed_transaction_id\(([0-9]+), ([0-9]+), '([^']+)'\).*/\1, \2, '\3'/p" <<<"$loot")
if [[ -n $V ]]; then
	for n in w1 w2; do
		assert_eq "HOLE if >0: $n's server log has no copy of the victim's sealed value" 0 \
			"$(grep -cF "$V" "$(bb_logfile "$n")" || true)"
	done
	# replay after the victim's transaction ended, from the coordinator, with no context
	assert_eq "HOLE if 7: app replays tenant 2's captured value on the coordinator after tenant 2's COMMIT (SAFE: 42501)" 42501 \
		"$(state_or_value coord "BEGIN" "SELECT pg_catalog.assign_distributed_transaction_id($ID)" \
			"SET LOCAL brandbos.citus_context = '$V'" "SELECT count(*) FROM docs")"
	assert_eq "HOLE if 7: ... or on a worker directly (SAFE: 42501)" 42501 \
		"$(state_or_value w1 "BEGIN" "SET LOCAL brandbos.citus_context = '$V'" \
			"SELECT pg_catalog.assign_distributed_transaction_id($ID)" "SELECT count(*) FROM docs")"
else
	diag "no sealed value captured (the check above): nothing to replay from it"
fi
for n in w1 w2; do
	ct_sql "$n" "SET citus.enable_ddl_propagation = off; DROP SCHEMA app CASCADE" >/dev/null
done

# ---------------------------------------------------------------------------------------------
# 3. A session's own value (shown to it by a citus.log_remote_commands NOTICE) after its
#    transaction: the README says it is usable only until the transaction ends.
# ---------------------------------------------------------------------------------------------
notices=$(CT_USER=app ct_psql coord -c "SET citus.log_remote_commands = on" -c BEGIN -c "$auth1" \
	-c "SELECT count(*) FROM docs" -c COMMIT 2>&1)
own=$(grep -E "$sealed_re" <<<"$notices" | head -1 || true)
OV=$(sed -nE "s/.*citus_context = '([A-Za-z0-9_-]+)'.*/\1/p" <<<"$own")
OID=$(grep -oE "assign_distributed_transaction_id\([0-9]+, [0-9]+, '[^']+'\)" <<<"$notices" | head -1 |
	sed -nE "s/assign_distributed_transaction_id\(([0-9]+), ([0-9]+), '([^']+)'\)/\1, \2, '\3'/p")
if [[ -n $OV && -n $OID ]]; then
	assert_eq "HOLE if 10: tenant 1's value from a committed transaction gives nothing in a later one (SAFE: 42501)" 42501 \
		"$(state_or_value coord "BEGIN" "SELECT pg_catalog.assign_distributed_transaction_id($OID)" \
			"SET LOCAL brandbos.citus_context = '$OV'" "SELECT count(*) FROM docs")"
	for n in w1 w2; do
		assert_eq "... nor on worker $n, where that transaction ended (SAFE: 42501)" 42501 \
			"$(state_or_value "$n" "BEGIN" "SET LOCAL brandbos.citus_context = '$OV'" \
				"SELECT pg_catalog.assign_distributed_transaction_id($OID)" "SELECT brandbos.current_tenant_id()")"
	done
else
	fail "the replay checks need the session's own value from a client NOTICE, and none was seen" "rewrite them with another source of a real value"
fi

# ---------------------------------------------------------------------------------------------
# 4. Parallel workers trust their leader: a value bound to nothing, on a worker, in parallel
#    plans (sealed here with the root key: models any value ever captured)
# ---------------------------------------------------------------------------------------------
old_us=$((now_us - 7200 * 1000000))
stale=$(mkval ok 99 31337 "$old_us" nobody "$T2")  # other transaction, 2 h old, another role
# the worker that holds tenant 2's shard, and the shard's name
read -r t2shard t2port <<<"$(ct_sql coord "SELECT shard_name, nodeport FROM citus_shards
	WHERE shardid = get_shard_id_for_distribution_column('docs', '$T2')" | tr '|' ' ')"
pw=w1; [[ $t2port == "$(bb_port w2)" ]] && pw=w2
CT_USER=owner1 ct_psql "$pw" -c "SET citus.enable_ddl_propagation = off" -c "CREATE SCHEMA o1" \
	-c "GRANT USAGE ON SCHEMA o1 TO app" \
	-c "CREATE TABLE o1.big (id int)" -c "INSERT INTO o1.big SELECT g FROM generate_series(1, 20000) g" \
	-c "ALTER TABLE o1.big SET (parallel_workers = 2)" \
	-c "CREATE FUNCTION o1.leak(int) RETURNS int IMMUTABLE PARALLEL SAFE LANGUAGE plpgsql AS
		\$f\$ DECLARE n bigint; BEGIN
			-- a btree build's leader always takes part: read the context in the workers only
			IF (SELECT backend_type FROM pg_catalog.pg_stat_activity WHERE pid = pg_catalog.pg_backend_pid()) = 'parallel worker' THEN
				EXECUTE 'SELECT count(*) FROM public.$t2shard' INTO n;
				RAISE EXCEPTION 'leaked tenant=% rows=%', coalesce(brandbos.current_tenant_id(), '-'), n;
			END IF;
			RETURN 0;
		END \$f\$" \
	-c "CREATE FUNCTION o1.tenant() RETURNS text STABLE PARALLEL SAFE LANGUAGE sql AS
		\$f\$ SELECT coalesce(brandbos.current_tenant_id(), '-') \$f\$" >/dev/null
assert_eq "control: without a context owner1 reads 0 rows of tenant 2's shard on $pw" 0 \
	"$(CT_USER=owner1 ct_sql "$pw" "SELECT count(*) FROM public.$t2shard")"
par="SET LOCAL max_parallel_maintenance_workers = 2; SET LOCAL parallel_leader_participation = off;
	SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL maintenance_work_mem = '64MB'"
out=$(CT_USER=owner1 ct_psql "$pw" -v VERBOSITY=verbose -c "BEGIN" -c "SET LOCAL brandbos.citus_context = '$stale'" \
	-c "$par" -c "CREATE INDEX ON o1.big ((o1.leak(id)))" 2>&1 || true)
printf '#   CREATE INDEX said: %s\n' "$(grep -m1 -A3 -E '^ERROR' <<<"$out" | tr '\n' ' ')"
assert_eq "HOLE if P0001 'leaked tenant=$T2 rows=7': parallel CREATE INDEX on a worker with a value bound to no transaction, role or time (SAFE: 42501)" 42501 \
	"$(sed -nE 's/^ERROR: +([0-9A-Z]{5}):.*/\1/p' <<<"$out" | head -1)"
fpm="SET LOCAL force_parallel_mode = on; SET LOCAL parallel_leader_participation = off;
	SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0"
assert_eq "force_parallel_mode + parallel_leader_participation = off on a worker, value bound to nothing (SAFE: 42501)" 42501 \
	"$(state_or_value "$pw" "BEGIN" "SET LOCAL brandbos.citus_context = '$stale'" "$fpm" "SELECT o1.tenant()")"
assert_eq "... the same after set_request() on the worker (SAFE: 42501 or no tenant)" "-" \
	"$(state_or_value "$pw" "BEGIN" "SET LOCAL brandbos.citus_context = '$stale'" "SELECT brandbos.set_request('192.0.2.1', 'x')" \
		"$fpm" "SELECT o1.tenant()" | sed 's/^42501$/-/')"
assert_eq "coordinator: force_parallel_mode propagated to the workers keeps tenant 1 at its 10 rows" 10 \
	"$(state_or_value coord "BEGIN" "$auth1" "$fpm" "SELECT count(*) FROM docs")"

# ---------------------------------------------------------------------------------------------
# 5. Changing the context on the workers from inside the request (pushed-down calls)
# ---------------------------------------------------------------------------------------------
r=$(state_or_value coord "BEGIN" "$auth1" \
	"SELECT count(set_config('brandbos.citus_context', NULL, true)) FROM docs WHERE tenant_id = '$T1'" \
	"SELECT count(*) FROM docs")
assert_eq "set_config(.., NULL) pushed down to a worker, then a read: 42501 or tenant 1's 10 rows (SAFE)" ok \
	"$( [[ $r == 42501 || $r == 10 ]] && echo ok || echo "$r")"
r=$(state_or_value coord "BEGIN" "$auth1" "RESET ALL" "SELECT count(*) FROM docs")
assert_eq "RESET ALL (Citus propagates it): 42501 or tenant 1's 10 rows (SAFE)" ok \
	"$( [[ $r == 42501 || $r == 10 ]] && echo ok || echo "$r")"
r=$(state_or_value coord "BEGIN" "$auth1" "SAVEPOINT s" "SELECT count(*) FROM docs" "ROLLBACK TO SAVEPOINT s" \
	"SET LOCAL citus.force_max_query_parallelization = on" "SELECT count(*) FROM docs")
assert_eq "ROLLBACK TO SAVEPOINT then new worker connections: 42501 or tenant 1's 10 rows (SAFE)" ok \
	"$( [[ $r == 42501 || $r == 10 ]] && echo ok || echo "$r")"
# a guest of tenant 1: notes admits its own 3 rows (the NOT has_app_role('guest') branch is off)
assert_eq "control: tenant 1's guest sees its 3 notes" 3 \
	"$(state_or_value coord "BEGIN" "SELECT 1 FROM brandbos.authenticate('$tok1g')" "SELECT count(*) FROM notes")"
r=$(state_or_value coord "BEGIN" "SELECT 1 FROM brandbos.authenticate('$tok1g')" \
	"SET LOCAL citus.max_adaptive_executor_pool_size = 1" \
	"SELECT count(brandbos.set_request('192.0.2.9', 'pushed')) FROM notes" "SELECT count(*) FROM notes")
printf '#   guest after pushed-down set_request: %s\n' "$r"
assert_eq "HOLE if 7: set_request() pushed down to the workers does not drop the guest's app role there (SAFE: 3 or 42501)" ok \
	"$( [[ $r == 42501 || $r == 3 ]] && echo ok || echo "$r")"
CT_USER=app ct_psql coord -c BEGIN -c "$auth1" -c "SET LOCAL citus.max_adaptive_executor_pool_size = 1" \
	-c "SELECT count(brandbos.set_request('192.0.2.9', 'pushed')) FROM orders" \
	-c "INSERT INTO orders VALUES ('$T1', 901, 'after pushed set_request')" -c COMMIT >/dev/null 2>&1 || true
actor=$( (ct_sql w1 "SELECT coalesce(user_id, '-') || '|' || coalesce(tenant_id::text, '-') FROM brandbos.audit_entries WHERE action = 'insert' AND resource_id LIKE '%901%'";
	ct_sql w2 "SELECT coalesce(user_id, '-') || '|' || coalesce(tenant_id::text, '-') FROM brandbos.audit_entries WHERE action = 'insert' AND resource_id LIKE '%901%'") | head -1)
printf '#   actor after pushed-down set_request: %s\n' "${actor:-<no entry>}"
assert_eq "HOLE if '-|-': a write after a pushed-down set_request() (here: another worker connection) keeps its actor in the worker's audit entry (SAFE: u1|T1 or no write)" \
	ok "$( [[ -z $actor || $actor == "u1|$T1" ]] && echo ok || echo "$actor")"

# a pooled coordinator session left with citus.propagate_set_commands = none by an earlier request
CT_USER=app ct_psql coord -c "SET citus.propagate_set_commands = none" -c BEGIN -c "$auth1" \
	-c "INSERT INTO orders VALUES ('$T1', 902, 'propagation off')" -c COMMIT >/dev/null 2>&1 || true
actor=$( (ct_sql w1 "SELECT coalesce(user_id, '-') || '|' || coalesce(tenant_id::text, '-') FROM brandbos.audit_entries WHERE action = 'insert' AND resource_id LIKE '%902%'";
	ct_sql w2 "SELECT coalesce(user_id, '-') || '|' || coalesce(tenant_id::text, '-') FROM brandbos.audit_entries WHERE action = 'insert' AND resource_id LIKE '%902%'") | head -1)
assert_eq "HOLE if '-|-': with citus.propagate_set_commands = none left in the session, the worker's audit entry keeps the actor (SAFE: u1|T1 or no write)" \
	ok "$( [[ -z $actor || $actor == "u1|$T1" ]] && echo ok || echo "$actor")"

# ---------------------------------------------------------------------------------------------
# 6. Other ways across the transaction boundary
# ---------------------------------------------------------------------------------------------
good=$(mkval ok 77 424242 "$now_us" app "$T2")
assign_sql="SELECT pg_catalog.assign_distributed_transaction_id(77, 424242, timestamptz '2000-01-01 00:00:00+00' + ($now_us || ' microseconds')::interval)"
CT_USER=app ct_psql w1 -c "BEGIN" -c "SET LOCAL brandbos.citus_context = '$good'" -c "$assign_sql" \
	-c "PREPARE TRANSACTION 'bb08'" >/dev/null 2>&1 || true
assert_eq "a prepared transaction's context is gone in the next one on the connection (SAFE: 0)" 0 \
	"$(CT_USER=app ct_psql w1 -c "BEGIN" -c "SELECT count(*) FROM docs" -c "COMMIT" | sed -n 1p)"
ct_sql w1 "COMMIT PREPARED 'bb08'" >/dev/null 2>&1 || true
assert_eq "the prepared transaction's value is refused in a later one: its transaction ended here (42501)" 42501 \
	"$(state_or_value w1 "BEGIN" "SET LOCAL brandbos.citus_context = '$good'" "$assign_sql" "SELECT brandbos.current_tenant_id()")"
good=$(mkval ok 77 424243 "$now_us" app "$T2")
assign_sql="SELECT pg_catalog.assign_distributed_transaction_id(77, 424243, timestamptz '2000-01-01 00:00:00+00' + ($now_us || ' microseconds')::interval)"
out=$(CT_USER=app ct_psql w1 -c "BEGIN" -c "SET LOCAL brandbos.citus_context = '$good'" -c "$assign_sql" \
	-c "DECLARE c CURSOR WITH HOLD FOR SELECT brandbos.current_tenant_id() FROM docs" -c "COMMIT" \
	-c "FETCH ALL FROM c" -c "SELECT count(*) FROM docs" -c "CLOSE c" 2>&1 || true)
r=$(grep -E '^[0-9]+$' <<<"$out" | tail -1 || true)
assert_eq "WITH HOLD cursor: after COMMIT the connection sees 0 rows, or the cursor was refused (SAFE)" ok \
	"$( [[ $r == 0 || -z $r ]] && echo ok || echo "$r")"
assert_eq "COPY FROM with tenant 2's row as tenant 1 is refused (SAFE: not 00000)" refused \
	"$(CT_USER=app ct_psql coord -c BEGIN -c "$auth1" -c "COPY docs FROM STDIN" -c COMMIT <<<"$T2	99	copied" >/dev/null 2>&1 && echo inserted || echo refused)"
assert_eq "... tenant 2 still has its 7 rows" 7 \
	"$(CT_USER=app ct_psql coord -c BEGIN -c "$auth2" -c "SELECT count(*) FROM docs" -c COMMIT | sed -n 2p)"
assert_eq "COPY docs TO STDOUT as tenant 1 gives its 10 rows only" 10 \
	"$(CT_USER=app ct_psql coord -c BEGIN -c "$auth1" -c "COPY (SELECT * FROM docs) TO STDOUT" -c COMMIT | grep -c "$T1" || true)"
ct_sql coord "CREATE SCHEMA o1c AUTHORIZATION owner1" >/dev/null
CT_USER=owner1 ct_sql coord "CREATE FUNCTION o1c.peek() RETURNS bigint SECURITY DEFINER SET search_path = pg_catalog
	LANGUAGE sql AS \$f\$ SELECT count(*) FROM public.docs \$f\$; GRANT EXECUTE ON FUNCTION o1c.peek() TO app" >/dev/null
r=$(state_or_value coord "BEGIN" "$auth1" "SELECT o1c.peek()")
assert_eq "a SECURITY DEFINER function of owner1 called in tenant 1's request: 42501 or <= 10 rows, never tenant 2's (SAFE)" ok \
	"$( [[ $r == 42501 || $r == 10 || $r == 0 ]] && echo ok || echo "$r")"

# ---------------------------------------------------------------------------------------------
# 7. Nothing shows the value: views and logs
# ---------------------------------------------------------------------------------------------
CT_USER=app ct_psql coord -c BEGIN -c "$auth2" -c "SELECT count(*) FROM docs" -c "SELECT pg_sleep(4)" -c COMMIT >/dev/null &
victim=$!
sleep 2
assert_eq "w1 pg_stat_activity (as app) shows no sealed value of the running request" 0 \
	"$(CT_USER=app ct_sql w1 "SELECT count(*) FROM pg_stat_activity WHERE query ~ 'citus_context = ''[A-Za-z0-9_-]{20}'")"
assert_eq "coordinator citus_stat_activity (as app) shows no sealed value" 0 \
	"$(CT_USER=app ct_sql coord "SELECT count(*) FROM citus_stat_activity WHERE query ~ 'citus_context = ''[A-Za-z0-9_-]{20}'" 2>/dev/null || echo 0)"
assert_eq "w1: current_setting() in another backend's view shows nothing (pg_settings hides it)" 0 \
	"$(CT_USER=app ct_sql w1 "SELECT count(*) FROM pg_settings WHERE name = 'brandbos.citus_context' AND setting <> ''")"
wait "$victim" || true
assert_eq "a function SET ... FROM CURRENT captures nothing" "" \
	"$(CT_USER=app ct_psql coord -c BEGIN -c "$auth1" \
		-c "CREATE FUNCTION pg_temp.f() RETURNS text LANGUAGE sql SET brandbos.citus_context FROM CURRENT AS 'SELECT 1::text'" \
		-c "SELECT coalesce(array_to_string(proconfig, ','), '') FROM pg_proc WHERE proname = 'f' AND pronamespace = pg_my_temp_schema()" \
		-c COMMIT 2>&1 | grep -E "citus_context=[A-Za-z0-9_-]{20}" || true)"
for n in coord w1 w2; do
	assert_eq "$n: no sealed value anywhere in the server log" 0 \
		"$(grep -v "owner1 saw" "$(bb_logfile "$n")" | grep -cE "citus_context = '[A-Za-z0-9_-]{20}" || true)"
done
assert_eq "w1 did not restart" "$start_w1" "$(ct_sql w1 "SELECT pg_postmaster_start_time()")"
assert_eq "coordinator did not restart" "$start_coord" "$(ct_sql coord "SELECT pg_postmaster_start_time()")"
sc_finish
