#!/usr/bin/env bash
# Attacks on transparent column encryption of Citus distributed tables (citus_columns.c,
# citus_keys.c, SPEC 8).  Every check states the SAFE outcome: it fails when the attack works
# ("HOLE if ..." names what a working attack shows).  Attackers: `owner1`, an ordinary login
# role that owns schema o1 and the distributed table o1.acct whose column token is protected
# (it may plant triggers, functions, tables in its schema, and connect to a worker directly);
# `app`, the login role of the tenants, with SQL injection inside a request.  The secrets are
# written by `app`; owner1 must never see them (pgtap 22: "no trigger the owner could plant
# saw the plaintext").
#
# Holes found in review, fixed since (protect_guard.c: no other BEFORE trigger may take a name
# starting with zz_brandbos_protect; shard_guard.c: a write into a shard whose protection
# changed is refused with 42501):
#   1. The guard (protect_guard.c) checks trigger order on the distributed table only, against
#      the name "zz_brandbos_protect".  Citus copies every trigger to the shards as
#      <name>_<shardid>, so a BEFORE trigger named "zz_brandbos_protect_0", "zz_brandbos_protect0",
#      "zz_brandbos_protectA" or "zz_brandbos_protect " (allowed on the table: it sorts after)
#      becomes "zz_brandbos_protect_0_102008", which sorts BEFORE "zz_brandbos_protect_102008"
#      on the shard: it sees (and here copies into another column) the plaintext.
#   2. No check at all on the shards themselves: the table owner, connected to a worker (or via
#      run_command_on_shards() from the coordinator), may DISABLE / ENABLE REPLICA / DROP the
#      shard's protect trigger, add an earlier BEFORE trigger or a rule, or change the column's
#      type; the worker's guard only looks at the registry's (shell) tables.  Writes routed to
#      that shard are then stored plain, or copied out by the owner's trigger or rule.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ct_cluster
rnd() { head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# rows of the shards of a table (schema $2, name prefix $3) on node $1 holding text $4
plaintext_on() {
	ct_psql "$1" -c "SET citus.override_table_visibility = off" -c "SELECT count(*) FROM (
		SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
		 WHERE c.relkind = 'r' AND s.nspname = '$2' AND c.relname LIKE '$3%') r,
		LATERAL (SELECT * FROM pg_catalog.query_to_xml(format('SELECT * FROM %s', r.t), false, false, '')) x(v)
		WHERE x.v::text LIKE '%$4%'"
}
plaintext_all() {	# the sum over every node
	local n s=0 c
	for n in coord w1 w2; do c=$(plaintext_on "$n" "$1" "$2" "$3"); s=$((s + c)); done
	echo "$s"
}
# a shard of o1.acct placed on node $1 (qualified name)
shard_on() {
	ct_sql coord "SELECT 'o1.' || quote_ident('acct_' || s.shardid) FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
		JOIN pg_dist_node n ON n.groupid = p.groupid WHERE s.logicalrelid = 'o1.acct'::regclass AND n.nodeport = $(bb_port "$1")
		ORDER BY s.shardid LIMIT 1"
}
keys_digest() { ct_sql "$1" "SELECT md5(string_agg(version || ':' || status || ':' || coalesce(encode(wrapped_key, 'hex'), '-'), ',' ORDER BY version)) FROM brandbos.data_keys"; }
app_write() {	# app writes n rows of secret $1 starting at id $2
	CT_USER=app ct_sqlstate coord "INSERT INTO o1.acct SELECT gen_random_uuid(), g, '$1-' || g, 'note' FROM generate_series($2, $2 + 19) g"
}

ct_psql coord -c "CREATE ROLE owner1 LOGIN" -c "CREATE ROLE app LOGIN" >/dev/null
for n in coord w1 w2; do
	ct_sql "$n" "SET citus.enable_ddl_propagation = off; GRANT CREATE ON DATABASE $BB_DB TO owner1" >/dev/null
done
CT_USER=owner1 ct_psql coord -c "CREATE SCHEMA o1" \
	-c "CREATE TABLE o1.acct (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, note text, PRIMARY KEY (tenant_id, id))" \
	-c "SELECT create_distributed_table('o1.acct', 'tenant_id')" \
	-c "SELECT brandbos.protect_column('o1.acct', 'token')" \
	-c "GRANT USAGE ON SCHEMA o1 TO app" -c "GRANT SELECT, INSERT, UPDATE ON o1.acct TO app" \
	-c "CREATE TABLE o1.leak (v text)" -c "GRANT INSERT ON o1.leak TO PUBLIC" >/dev/null
cid=$(ct_sql coord "SELECT column_id FROM brandbos.column_registry WHERE table_oid = 'o1.acct'::regclass")
check "owner1 protected its distributed table (column id $cid)" test -n "$cid"
S0=base-$(rnd)
assert_eq "app writes rows through the coordinator" 00000 "$(app_write "$S0" 1)"
assert_eq "... sealed on every node" 0 "$(plaintext_all o1 acct "$S0")"
W1SHARD=$(shard_on w1)
W1SID=${W1SHARD##*_}
check "w1 holds a shard of o1.acct ($W1SHARD)" test -n "$W1SID"

# ---- 1. a BEFORE trigger whose name sorts before the protect trigger on the SHARDS -------
# On the coordinator the guard compares names with "zz_brandbos_protect"; Citus names the
# shards' copies <name>_<shardid>, so "zz_brandbos_protect_0" (after on the table) becomes
# "zz_brandbos_protect_0_1020xx", which sorts BEFORE "zz_brandbos_protect_1020xx".
CT_USER=owner1 ct_sql coord "CREATE FUNCTION o1.copy_token() RETURNS trigger LANGUAGE plpgsql AS
	\$\$BEGIN NEW.note := 'copied:' || coalesce(NEW.token, ''); RETURN NEW; END\$\$" >/dev/null
for tname in '"zz_brandbos_protect_0"' '"zz_brandbos_protect0"' '"zz_brandbos_protectA"' '"zz_brandbos_protect"" "'; do
	st=$(CT_USER=owner1 ct_sqlstate coord "CREATE TRIGGER $tname BEFORE INSERT OR UPDATE ON o1.acct
		FOR EACH ROW EXECUTE FUNCTION o1.copy_token()")
	diag "CREATE TRIGGER $tname on the distributed table: $st"
	S1=trig-$(rnd)
	app_write "$S1" 1000 >/dev/null
	assert_eq "HOLE if trigger $tname (sorts before zz_brandbos_protect_<shardid> on the shards) copies app's plaintext into another column" 0 \
		"$(plaintext_all o1 acct "$S1")"
	ct_psql coord -c "DELETE FROM o1.acct WHERE id >= 1000" -c "DROP TRIGGER IF EXISTS $tname ON o1.acct" >/dev/null 2>&1 || true
done
# the same on the coordinator's table itself (the guard's own check) stays refused
assert_eq "a BEFORE trigger sorting before zz_brandbos_protect on the table is refused (42501)" 42501 \
	"$(CT_USER=owner1 ct_sqlstate coord "CREATE TRIGGER aa_copy BEFORE INSERT ON o1.acct FOR EACH ROW EXECUTE FUNCTION o1.copy_token()")"

# the protect trigger of the distributed table itself, on the coordinator and on a worker's shell table
for n in coord w1; do
	for ddl in "ALTER TABLE o1.acct DISABLE TRIGGER zz_brandbos_protect" "ALTER TABLE o1.acct ENABLE REPLICA TRIGGER zz_brandbos_protect" \
		"DROP TRIGGER zz_brandbos_protect ON o1.acct"; do
		assert_eq "$n: owner1's \"$ddl\" is refused (42501)" 42501 \
			"$(CT_USER=owner1 ct_sqlstate "$n" "SET citus.enable_ddl_propagation = off; $ddl")"
	done
done
assert_eq "... through Citus's propagation from the coordinator too (42501)" 42501 \
	"$(CT_USER=owner1 ct_sqlstate coord "ALTER TABLE o1.acct DISABLE TRIGGER ALL")"
assert_eq "... every shard still has its protect trigger enabled always" 0 \
	"$(ct_sql coord "SELECT count(*) FROM run_command_on_shards('o1.acct', \$\$SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND tgfoid = 'brandbos.protect_trigger()'::regprocedure AND tgenabled = 'A'\$\$) WHERE result <> '1'")"

# ---- 2. DDL on a shard, directly on a worker, as the table owner ----------------------------
w1sql() { CT_USER=owner1 ct_sqlstate w1 "SET citus.override_table_visibility = off; $1"; }
# a tenant whose rows land in W1SHARD
VT1=$(ct_sql coord "SELECT u FROM (SELECT gen_random_uuid() u FROM generate_series(1, 5000)) s WHERE get_shard_id_for_distribution_column('o1.acct', u) = $W1SID LIMIT 1")
app_write_w1() {	# app writes 10 rows of tenant VT1 (shard W1SHARD on w1), secret $1, ids from $2
	CT_USER=app ct_sqlstate coord "INSERT INTO o1.acct SELECT '$VT1', g, '$1-' || g, 'note' FROM generate_series($2, $2 + 8) g;
		INSERT INTO o1.acct VALUES ('$VT1', $2 + 9, '$1-single', 'note')"
}
restore_w1() {	# as postgres on w1: the shard as protect_column left it
	ct_psql w1 -c "SET citus.override_table_visibility = off" -c "DO \$\$DECLARE t record; BEGIN
		FOR t IN SELECT tgname FROM pg_trigger WHERE tgrelid = '$W1SHARD'::regclass AND tgfoid = 'brandbos.protect_trigger()'::regprocedure LOOP
			EXECUTE format('ALTER TRIGGER %I ON $W1SHARD RENAME TO zz_brandbos_protect_$W1SID', t.tgname); END LOOP;
		FOR t IN SELECT tgname FROM pg_trigger WHERE tgrelid = '$W1SHARD'::regclass AND tgfoid <> 'brandbos.protect_trigger()'::regprocedure AND NOT tgisinternal LOOP
			EXECUTE format('DROP TRIGGER %I ON $W1SHARD', t.tgname); END LOOP;
		IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = '$W1SHARD'::regclass AND tgfoid = 'brandbos.protect_trigger()'::regprocedure) THEN
			CREATE TRIGGER zz_brandbos_protect_$W1SID BEFORE INSERT OR UPDATE ON $W1SHARD FOR EACH ROW EXECUTE FUNCTION brandbos.protect_trigger();
		END IF; END\$\$" \
		-c "ALTER TABLE $W1SHARD ENABLE ALWAYS TRIGGER zz_brandbos_protect_$W1SID" \
		-c "DROP RULE IF EXISTS leak ON $W1SHARD" -c "ALTER TABLE $W1SHARD ALTER COLUMN token TYPE text" \
		-c "DELETE FROM $W1SHARD WHERE id >= 3000" >/dev/null
}
CT_USER=owner1 ct_psql w1 -c "SET citus.enable_ddl_propagation = off" -c "CREATE TABLE o1.wleak (v text)" >/dev/null
ddls=("CREATE TRIGGER aa_copy BEFORE INSERT OR UPDATE ON $W1SHARD FOR EACH ROW EXECUTE FUNCTION o1.copy_token()"
	"ALTER TABLE $W1SHARD DISABLE TRIGGER zz_brandbos_protect_$W1SID"
	"ALTER TABLE $W1SHARD DISABLE TRIGGER ALL"
	"ALTER TABLE $W1SHARD ENABLE REPLICA TRIGGER zz_brandbos_protect_$W1SID"
	"ALTER TRIGGER zz_brandbos_protect_$W1SID ON $W1SHARD RENAME TO zzz_gone"
	"ALTER TRIGGER zz_brandbos_protect_$W1SID ON $W1SHARD RENAME TO a_first"
	"CREATE RULE leak AS ON INSERT TO $W1SHARD DO ALSO INSERT INTO o1.wleak VALUES (NEW.token)"
	"ALTER TABLE $W1SHARD ALTER COLUMN token TYPE varchar"
	"DROP TRIGGER zz_brandbos_protect_$W1SID ON $W1SHARD")
i=0
for ddl in "${ddls[@]}"; do
	i=$((i + 1))
	ddl_st=$(w1sql "$ddl")
	S2=shard-ddl$i-$(rnd)
	st=$(app_write_w1 "$S2" $((3000 + i * 10)))
	diag "owner1's DDL: $ddl_st; app write into the shard after it: $st"
	if [[ $ddl_st == 00000 ]]; then
		check "w1 refuses app's writes into the shard after owner1's \"$ddl\" (got $st)" test "$st" != 00000
	else
		pass "owner1's \"$ddl\" on w1: $ddl_st"
	fi
	[[ $st == 00000 ]] || diag "... $(CT_USER=app ct_try coord "INSERT INTO o1.acct VALUES ('$VT1', 3999, 'probe', 'n')" | head -2)"
	assert_eq "HOLE if after owner1's \"$ddl\" on w1 app's values reach a heap on w1 in plaintext" 0 \
		"$(( $(plaintext_on w1 o1 acct "$S2") + $(ct_sql w1 "SELECT count(*) FROM o1.wleak WHERE v LIKE '%$S2%'") ))"
	restore_w1
done
# the shard renamed or moved to another schema on the worker: no longer taken for a shard of
# o1.acct, so its rows must be refused (no registry), never stored plain
ct_psql w1 -c "SET citus.enable_ddl_propagation = off" -c "CREATE SCHEMA o1x; ALTER SCHEMA o1x OWNER TO owner1" >/dev/null
for mv in "RENAME TO acct_x" "SET SCHEMA o1x"; do
	st=$(w1sql "ALTER TABLE $W1SHARD $mv")
	diag "owner1: ALTER TABLE $W1SHARD $mv on w1: $st"
	moved=$(ct_psql w1 -c "SET citus.override_table_visibility = off" -c "SELECT coalesce(to_regclass('o1.acct_x'), to_regclass('o1x.acct_$W1SID'))::text")
	S2=shard-mv-$(rnd)
	if [[ -n $moved ]]; then
		st=$(CT_USER=owner1 ct_sqlstate w1 "SET citus.override_table_visibility = off; INSERT INTO $moved VALUES ('$VT1', 3900, '$S2', 'n')")
		diag "a write into the moved shard $moved: $st"
	fi
	assert_eq "HOLE if the shard, after \"$mv\", stores a value plain" 0 \
		"$(ct_psql w1 -c "SET citus.override_table_visibility = off" -c "SELECT count(*) FROM pg_class c, LATERAL query_to_xml(format('SELECT * FROM %s', c.oid::regclass), false, false, '') x
			WHERE c.oid IN (coalesce(to_regclass('o1.acct_x'), 0), coalesce(to_regclass('o1x.acct_$W1SID'), 0)) AND x::text LIKE '%$S2%'")"
	[[ -z $moved ]] || ct_psql w1 -c "SET citus.override_table_visibility = off" -c "DELETE FROM $moved WHERE id = 3900" \
		-c "ALTER TABLE $moved $( [[ $mv == RENAME* ]] && echo "RENAME TO acct_$W1SID" || echo "SET SCHEMA o1")" >/dev/null
done

# the same without connecting to a worker: run_command_on_shards from the coordinator
st=$(CT_USER=owner1 ct_sqlstate coord "SELECT count(*) FROM run_command_on_shards('o1.acct', 'ALTER TABLE %s DISABLE TRIGGER ALL') WHERE success")
diag "owner1: run_command_on_shards(... DISABLE TRIGGER ALL) on the coordinator: $st"
S2=shard-ddl-rcos-$(rnd)
app_write_w1 "$S2" 3500 >/dev/null
assert_eq "HOLE if owner1's run_command_on_shards('o1.acct', 'ALTER TABLE %s DISABLE TRIGGER ALL') on the coordinator lets app's values reach w1 in plaintext" 0 \
	"$(plaintext_on w1 o1 acct "$S2")"
restore_w1
for n in w1 w2; do
	ct_psql "$n" -c "SET citus.override_table_visibility = off" -c "DO \$\$DECLARE t record; BEGIN
		FOR t IN SELECT tgrelid::regclass AS r, tgname FROM pg_trigger WHERE tgfoid = 'brandbos.protect_trigger()'::regprocedure AND tgenabled <> 'A' LOOP
			EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', t.r, t.tgname); END LOOP; END\$\$" >/dev/null
done
assert_eq "every protect trigger on the workers is enabled always again" 0 \
	"$(( $(ct_psql w1 -c "SET citus.override_table_visibility = off" -c "SELECT count(*) FROM pg_trigger WHERE tgfoid = 'brandbos.protect_trigger()'::regprocedure AND tgenabled <> 'A'") + $(ct_psql w2 -c "SET citus.override_table_visibility = off" -c "SELECT count(*) FROM pg_trigger WHERE tgfoid = 'brandbos.protect_trigger()'::regprocedure AND tgenabled <> 'A'") ))"
assert_eq "... the shard's protect trigger is back as protect_column made it" "zz_brandbos_protect_$W1SID|A" \
	"$(ct_psql w1 -c "SET citus.override_table_visibility = off" -c "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = '$W1SHARD'::regclass AND tgfoid = 'brandbos.protect_trigger()'::regprocedure")"
assert_eq "session_replication_role = replica is refused for owner1 on a worker (42501)" 42501 \
	"$(CT_USER=owner1 ct_sqlstate w1 "SET session_replication_role = replica")"

# ---- 3. the internal functions: only the coordinator's connection --------------------------
for who in owner1 app; do
	for n in w1 coord; do
		assert_eq "$who on $n: citus_receive_column is refused (42501)" 42501 \
			"$(CT_USER=$who ct_sqlstate "$n" "SELECT brandbos.citus_receive_column('o1.acct', 'note', gen_random_uuid(), false)")"
		assert_eq "$who on $n: citus_receive_keys is refused (42501)" 42501 \
			"$(CT_USER=$who ct_sqlstate "$n" "SELECT brandbos.citus_receive_keys('{1}', '{destroyed}', '{NULL}', '{x}', true)")"
		assert_eq "$who on $n: citus_reencrypt_shards is refused (42501)" 42501 \
			"$(CT_USER=$who ct_sqlstate "$n" "SELECT brandbos.citus_reencrypt_shards('o1.acct', 1)")"
	done
	assert_eq "$who: citus_resync is refused (42501)" 42501 \
		"$(CT_USER=$who ct_sqlstate coord "SELECT brandbos.citus_resync()")"
done
CT_USER=owner1 ct_psql w1 -c "SET citus.enable_ddl_propagation = off" -c "CREATE FUNCTION o1.recv(c uuid) RETURNS void LANGUAGE sql SECURITY DEFINER
	AS \$\$SELECT brandbos.citus_receive_column('o1.acct', 'note', c, false)\$\$" >/dev/null 2>&1 || true
assert_eq "... nor through a SECURITY DEFINER function of owner1 on the worker (42501)" 42501 \
	"$(CT_USER=owner1 ct_sqlstate w1 "SELECT o1.recv(gen_random_uuid())")"
assert_eq "HOLE if owner1 got a registry row for o1.acct.note on w1" 0 \
	"$(ct_sql w1 "SELECT count(*) FROM brandbos.column_registry WHERE table_oid = 'o1.acct'::regclass AND column_name = 'note'")"
assert_eq "owner1 cannot write the worker's registry (42501)" 42501 \
	"$(CT_USER=owner1 ct_sqlstate w1 "INSERT INTO brandbos.column_registry (table_oid, column_name) VALUES ('o1.acct', 'note')")"
assert_eq "... nor the worker's data keys (42501)" 42501 \
	"$(CT_USER=owner1 ct_sqlstate w1 "DELETE FROM brandbos.data_keys")"
# an object planted where the receiving SQL could resolve it: a public-ish function named like
# the ones the coordinator sends, in owner1's schema first on its search_path
CT_USER=owner1 ct_sql coord "ALTER ROLE owner1 SET search_path = o1, public, brandbos" >/dev/null 2>&1 || true
for n in coord w1 w2; do
	CT_USER=owner1 ct_psql "$n" -c "SET citus.enable_ddl_propagation = off" \
		-c "CREATE FUNCTION o1.citus_receive_column(regclass, name, uuid, boolean) RETURNS void LANGUAGE sql AS \$\$INSERT INTO o1.leak VALUES ('planted-ran')\$\$" \
		-c "CREATE FUNCTION o1.shard_name(regclass, bigint) RETURNS text LANGUAGE sql AS \$\$SELECT 'o1.leak'::text\$\$" \
		-c "CREATE FUNCTION o1.to_regclass(text) RETURNS regclass LANGUAGE sql AS \$\$SELECT 'o1.leak'::regclass\$\$" >/dev/null 2>&1 || true
done

# ---- 4. registry redirection: rename, look-alike, another schema --------------------------
CT_USER=owner1 ct_psql coord -c "CREATE TABLE o1.ren (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, note text, PRIMARY KEY (tenant_id, id))" \
	-c "SELECT create_distributed_table('o1.ren', 'tenant_id')" -c "SELECT brandbos.protect_column('o1.ren', 'token')" \
	-c "GRANT SELECT, INSERT ON o1.ren TO app" >/dev/null
R0=ren-before-$(rnd)
CT_USER=app ct_sql coord "INSERT INTO o1.ren SELECT gen_random_uuid(), g, '$R0-' || g FROM generate_series(1, 40) g"
assert_eq "o1.ren: sealed before any rename" 0 "$(plaintext_all o1 ren "$R0")"
st=$(CT_USER=owner1 ct_sqlstate coord "ALTER TABLE o1.ren RENAME COLUMN token TO tok")
diag "owner1 renames the protected column token to tok: $st"
col=$(ct_sql coord "SELECT attname FROM pg_attribute WHERE attrelid = 'o1.ren'::regclass AND attname IN ('token', 'tok')")
for n in coord w1 w2; do
	assert_eq "$n: the registry names the column as it is now ($col)" "$col" \
		"$(ct_sql "$n" "SELECT column_name FROM brandbos.column_registry WHERE table_oid = 'o1.ren'::regclass")"
done
R1=ren-after-$(rnd)
CT_USER=app ct_sql coord "INSERT INTO o1.ren (tenant_id, id, $col) SELECT gen_random_uuid(), g, '$R1-' || g FROM generate_series(100, 139) g" >/dev/null
assert_eq "HOLE if, after renaming the protected column, app's values are stored plain on a node" 0 \
	"$(plaintext_all o1 ren "$R1")"
st=$(CT_USER=owner1 ct_sqlstate coord "ALTER TABLE o1.ren ADD COLUMN token text")
diag "owner1 adds a new column named token: $st"
R2=ren-added-$(rnd)
CT_USER=app ct_sql coord "INSERT INTO o1.ren (tenant_id, id, $col) SELECT gen_random_uuid(), g, '$R2-' || g FROM generate_series(200, 239) g" >/dev/null
assert_eq "HOLE if, after renaming it and adding a column under its old name, app's values are stored plain on a node" 0 \
	"$(plaintext_all o1 ren "$R2")"
assert_eq "... and every value reads back through the coordinator" 120 \
	"$(ct_sql coord "SELECT count(*) FROM o1.ren_decrypted d WHERE to_jsonb(d)::text LIKE '%\"ren-%'" 2>&1)"
st=$(CT_USER=owner1 ct_sqlstate coord "ALTER TABLE o1.acct RENAME TO acct2")
diag "rename table: $st: $(CT_USER=owner1 ct_try coord "ALTER TABLE o1.acct RENAME TO acct2" | head -3)"
tbl=$(ct_sql coord "SELECT relname FROM pg_class WHERE relnamespace = 'o1'::regnamespace AND relname IN ('acct', 'acct2') AND relkind = 'r'")
S5=renamed-$(rnd)
CT_USER=app ct_sql coord "INSERT INTO o1.$tbl SELECT gen_random_uuid(), g, '$S5-' || g, 'n' FROM generate_series(5000, 5019) g" >/dev/null 2>&1 || true
assert_eq "HOLE if, after renaming the table, app's values are stored plain on a node" 0 "$(plaintext_all o1 acct "$S5")"
assert_eq "... and they read back through the coordinator" 20 \
	"$(ct_sql coord "SELECT count(*) FROM o1.${tbl}_decrypted WHERE token = '$S5-' || id")"
[[ $tbl == acct ]] || CT_USER=owner1 ct_sql coord "ALTER TABLE o1.acct2 RENAME TO acct" >/dev/null
# a look-alike of the victim's shard in owner1's schema on w1: not taken for the shard
ct_psql coord -c "CREATE SCHEMA v" -c "CREATE TABLE v.secrets (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id))" \
	-c "SELECT create_distributed_table('v.secrets', 'tenant_id')" -c "SELECT brandbos.protect_column('v.secrets', 'token')" >/dev/null
vcid=$(ct_sql coord "SELECT column_id FROM brandbos.column_registry WHERE table_oid = 'v.secrets'::regclass")
VS=victim-$(rnd)
ct_sql coord "INSERT INTO v.secrets SELECT gen_random_uuid(), g, '$VS-' || g FROM generate_series(1, 40) g"
vsid=$(ct_sql coord "SELECT s.shardid FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n ON n.groupid = p.groupid
	WHERE s.logicalrelid = 'v.secrets'::regclass AND n.nodeport = $(bb_port w1) ORDER BY 1 LIMIT 1")
# owner1 copies the envelopes (from a backup, say) into a look-alike in its own schema
env=$(ct_sql coord "SELECT tenant_id || '|' || id || '|' || token FROM v.secrets ORDER BY id LIMIT 1")
IFS='|' read -r vt vid venv <<<"$env"
CT_USER=owner1 ct_psql w1 -c "SET citus.enable_ddl_propagation = off" \
	-c "CREATE TABLE o1.secrets_$vsid (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id))" \
	-c "CREATE TRIGGER zz_brandbos_protect BEFORE INSERT OR UPDATE ON o1.secrets_$vsid FOR EACH ROW EXECUTE FUNCTION brandbos.protect_trigger()" >/dev/null 2>&1 || true
st=$(CT_USER=owner1 ct_sqlstate w1 "INSERT INTO o1.secrets_$vsid VALUES ('$vt', $vid, '$venv')")
diag "look-alike insert on w1: $st"
assert_eq "HOLE if owner1 decrypts the victim's envelope on w1 (decrypt_column refused, 42501)" 42501 \
	"$(CT_USER=owner1 ct_sqlstate w1 "SELECT brandbos.decrypt_column('$vcid'::uuid, '$venv', '$vt'::uuid, $vid::bigint)")"
assert_eq "HOLE if owner1 decrypts the victim's envelope on w1 under its own column id" 1 \
	"$(st=$(CT_USER=owner1 ct_sqlstate w1 "SELECT brandbos.decrypt_column('$cid'::uuid, '$venv', '$vt'::uuid, $vid::bigint)"); [[ $st != 00000 ]] && echo 1 || echo "$st")"
assert_eq "HOLE if the victim's envelope copied into owner1's distributed table is accepted (XX001)" XX001 \
	"$(CT_USER=app ct_sqlstate coord "INSERT INTO o1.acct VALUES ('$vt', $vid, '$venv', 'n')")"
assert_eq "... and no plaintext of the victim is on any node" 0 "$(plaintext_all v secrets "$VS")"
assert_eq "the planted functions never ran (o1.leak is empty on every node)" 0 \
	"$(s=0; for n in coord w1 w2; do c=$(ct_sql "$n" "SELECT count(*) FROM o1.leak" 2>/dev/null || echo 0); s=$((s + c)); done; echo $s)"

assert_eq "owner1 (no decryptor) cannot open its own table's values on a worker (42501)" 42501 \
	"$(CT_USER=owner1 ct_sqlstate w1 "SELECT brandbos.decrypt_column('$cid'::uuid, token, tenant_id, id) FROM o1.acct LIMIT 1")"
assert_eq "... nor through the _decrypted view on a worker (42501)" 42501 \
	"$(CT_USER=owner1 ct_sqlstate w1 "SELECT count(token) FROM o1.acct_decrypted")"

# ---- 5. names with quotes, dots, unicode: protect_column on a distributed table ------------
ct_psql coord -c "CREATE TABLE victim_canary (x int)" \
	-c "CREATE SCHEMA \"we\"\"ird.sch'ema\"" \
	-c "CREATE TABLE \"we\"\"ird.sch'ema\".\"ta'b.le\"\"x'); DROP TABLE victim_canary; --\" (tenant_id uuid NOT NULL, id bigint NOT NULL, \"to\"\"k'en.ç\" text, PRIMARY KEY (tenant_id, id))" \
	-c "SELECT create_distributed_table('\"we\"\"ird.sch''ema\".\"ta''b.le\"\"x''); DROP TABLE victim_canary; --\"', 'tenant_id')" >/dev/null
WT="\"we\"\"ird.sch'ema\".\"ta'b.le\"\"x'); DROP TABLE victim_canary; --\""
WTL=${WT//\'/\'\'}
ct_sql coord "INSERT INTO $WT SELECT gen_random_uuid(), g, 'odd-before-' || g FROM generate_series(1, 20) g"
assert_eq "protect_column of a table and column with quotes, dots and unicode in their names" 00000 \
	"$(ct_sqlstate coord "SELECT brandbos.protect_column('$WTL', 'to\"k''en.ç')")"
assert_eq "... injected nothing (victim_canary still exists on the coordinator)" 1 \
	"$(ct_sql coord "SELECT count(*) FROM pg_class WHERE relname = 'victim_canary'")"
wcid=$(ct_sql coord "SELECT column_id FROM brandbos.column_registry WHERE table_oid = '$WTL'::regclass")
for n in w1 w2; do
	assert_eq "$n: the same column id and name for the odd table" "$wcid|to\"k'en.ç" \
		"$(ct_sql "$n" "SELECT column_id || '|' || column_name FROM brandbos.column_registry WHERE table_oid = '$WTL'::regclass")"
done
ct_sql coord "INSERT INTO $WT SELECT gen_random_uuid(), g, 'odd-after-' || g FROM generate_series(21, 40) g"
assert_eq "... rows before and after are sealed on every node" 0 "$(plaintext_all "we\"ird.sch''ema" "ta''b.le" odd-)"
assert_eq "... and read back" 40 \
	"$(ct_sql coord "SELECT count(*) FROM \"we\"\"ird.sch'ema\".\"ta'b.le\"\"x'); DROP TABLE victim_canary; --_decrypted\" WHERE \"to\"\"k'en.ç\" LIKE 'odd-%'")"
assert_eq "reencrypt of the odd table works on every node" 00000 \
	"$(ct_sqlstate coord "SELECT brandbos.rotate_key(); SELECT brandbos.reencrypt('$WTL')")"
assert_eq "... every value now under the active key" 0 \
	"$(ct_sql coord "SELECT count(*) FROM $WT WHERE brandbos.envelope_key_version(\"to\"\"k'en.ç\") <> (SELECT version FROM brandbos.data_keys WHERE status = 'active')")"
# the longest table name that protect_column takes (its _decrypted view must fit in 63 bytes)
LONG=t$(printf 'x%.0s' {1..52})
CT_USER=owner1 ct_psql coord -c "CREATE TABLE o1.${LONG}xxxxxxxx (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id))" \
	-c "SELECT create_distributed_table('o1.${LONG}xxxxxxxx', 'tenant_id')" >/dev/null
st=$(CT_USER=owner1 ct_sqlstate coord "SELECT brandbos.protect_column('o1.${LONG}xxxxxxxx', 'token')")
assert_eq "protect_column of a 61-character table name is refused: its view name would not fit (42622)" 42622 "$st"
CT_USER=owner1 ct_psql coord -c "CREATE TABLE o1.$LONG (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id))" \
	-c "SELECT create_distributed_table('o1.$LONG', 'tenant_id')" >/dev/null
assert_eq "protect_column of a 53-character distributed table name" 00000 \
	"$(CT_USER=owner1 ct_sqlstate coord "SELECT brandbos.protect_column('o1.$LONG', 'token')")"
SL=long-$(rnd)
assert_eq "... takes rows" 00000 "$(ct_sqlstate coord "INSERT INTO o1.$LONG SELECT gen_random_uuid(), g, '$SL-' || g FROM generate_series(1, 20) g")"
assert_eq "HOLE if a table with a long name stores values plain on a node" 0 "$(plaintext_all o1 "${LONG:0:20}" "$SL")"
assert_eq "... they read back" 20 "$(ct_sql coord "SELECT count(*) FROM o1.${LONG}_decrypted WHERE token = '$SL-' || id")"

# create_distributed_table and protect_column in one transaction (a deploy script): done or
# refused cleanly, never a deadlock
st=$(CT_USER=owner1 ct_sqlstate coord "CREATE TABLE o1.onetx (tenant_id uuid NOT NULL, id bigint NOT NULL, token text, PRIMARY KEY (tenant_id, id));
	SELECT create_distributed_table('o1.onetx', 'tenant_id'); SELECT brandbos.protect_column('o1.onetx', 'token')")
diag "create_distributed_table + protect_column in one transaction: $st"
check "create_distributed_table and protect_column in one transaction do not deadlock (got $st)" test "$st" != 40P01

# ---- 6. key state: every node agrees after each key operation -------------------------------
ct_sql coord "GRANT brandbos_keymaster TO app" >/dev/null
assert_eq "rotate_key as a keymaster" 00000 "$(CT_USER=app ct_sqlstate coord "SELECT brandbos.rotate_key()")"
for n in w1 w2; do assert_eq "$n: the coordinator's keys after rotate_key" "$(keys_digest coord)" "$(keys_digest "$n")"; done
old=$(ct_sql coord "SELECT min(version) FROM brandbos.data_keys WHERE status = 'retired'")
# owner1 holds a row lock on one of its shards on w1 (an open transaction), to race destroy_key
assert_eq "destroy_key of a version the workers' shards still use is refused (55006)" 55006 \
	"$(CT_USER=app ct_sqlstate coord "SELECT brandbos.destroy_key($old)")"
for n in coord w1 w2; do
	assert_eq "$n: ... nothing changed" "$(keys_digest coord)" "$(keys_digest "$n")"
done
assert_eq "retire_key of a retired version changes nothing anywhere" 00000 \
	"$(CT_USER=app ct_sqlstate coord "SELECT brandbos.retire_key($old)")"
for n in w1 w2; do assert_eq "$n: the same keys" "$(keys_digest coord)" "$(keys_digest "$n")"; done
# a rotation rolled back on the coordinator leaves no key on a worker
ct_psql coord -c "BEGIN" -c "SELECT brandbos.rotate_key()" -c "ROLLBACK" >/dev/null
for n in w1 w2; do assert_eq "$n: a rolled-back rotate_key left nothing" "$(keys_digest coord)" "$(keys_digest "$n")"; done
# a worker whose registry names the odd table under another id makes rotate/reencrypt refuse, never diverge
assert_eq "reencrypt of o1.acct by its owner (not a keymaster) is refused (42501)" 42501 \
	"$(CT_USER=owner1 ct_sqlstate coord "SELECT brandbos.reencrypt('o1.acct')")"

# ---- 7. no log holds a secret ------------------------------------------------------------
for n in coord w1 w2; do
	found=$({ grep -cF -e "$S0" -e "$R0" -e "$R1" -e "$R2" -e "$S5" -e "$VS" -e "$SL" -e shard-ddl -e trig- "$(bb_logfile "$n")" || true; } | head -1)
	[[ $found == 0 ]] || diag "$n log: $(grep -F -e "$S0" -e "$R0" -e "$R1" -e "$R2" -e "$S5" -e "$VS" -e "$SL" -e shard-ddl -e trig- "$(bb_logfile "$n")" | head -3 | cut -c1-300)"
	assert_eq "$n: the server log holds none of the secrets" 0 "$found"
done
assert_eq "every node still runs (no backend crashed)" "1|1|1" \
	"$(ct_sql coord "SELECT 1")|$(ct_sql w1 "SELECT 1")|$(ct_sql w2 "SELECT 1")"
sc_finish
