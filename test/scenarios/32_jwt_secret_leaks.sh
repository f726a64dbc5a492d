#!/usr/bin/env bash
# 32_jwt_secret_leaks — the JWT secret never reaches the server log or a catalog another
# role can read (SPEC sections 0.1 and 4); brandbos.jwt_secret_file follows the root key
# file's rules.  A non-superuser login role `app` is the reader who must learn nothing.
#
# Preloaded cluster:
#   1. brandbos.jwt_secret in postgresql.conf, then a reload and a restart: the value is
#      refused (a log line says so, without the value), never logged, never used.
#   2. ALTER SYSTEM, ALTER DATABASE / ROLE ... SET and a function's SET clause with the
#      secret are refused (55P02); app finds it in neither pg_db_role_setting, pg_proc nor
#      postgresql.auto.conf.
#   3. brandbos.jwt_secret_file: tokens signed (by pgcrypto) with the file's secret verify
#      for app; after a new secret is written and the configuration reloaded, new tokens
#      verify and old ones are refused, in a new session and in one opened before.
#   4. a file readable by others, too short, missing, or a directory: 55000 with the reason
#      (path, mode), never a byte of the content.
#   5. the server log holds neither secret, nor any token presented, nor malformed claims.
# Cluster without preload:
#   6. the library loaded in the session refuses ALTER DATABASE ... SET the same way, keeping
#      the statement out of the log; a value PostgreSQL stored while the library was not
#      loaded is never used.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C=s32_preload
sc_cluster "$C" 55532 yes
sc_helpers "$C"
DIR=$(bb_clusterdir "$C")
LOG=$(bb_logfile "$C")
rand() { head -c 24 /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }
CONF_SECRET="s32-conf-$(rand)"
SYS_SECRET="s32-system-$(rand)"
DB_SECRET="s32-database-$(rand)"
FILE_SECRET="s32-file-$(rand)"
FILE_SECRET2="s32-file-two-$(rand)"
SHORT_SECRET="s32-short-$(rand | head -c 8)"

app_psql() {
	bb_run_as_pg "$PGBIN/psql" -X -q -h "$(bb_sockdir "$C")" -p "$(bb_port "$C")" -U app -d postgres "$@"
}
# 'ok' when app's authenticate(tok) verifies, else the SQLSTATE (VERBOSITY verbose)
app_auth() {
	local out
	out=$(app_psql -v VERBOSITY=verbose -At -c 'BEGIN' -c "SELECT brandbos.authenticate(tok) ->> 'sub' FROM s32_tokens WHERE k = '$1'" -c 'ROLLBACK' 2>&1 || true)
	if [[ $out =~ ERROR:\ +([0-9A-Z]{5}) ]]; then echo "${BASH_REMATCH[1]}"; else echo "ok:$out"; fi
}
# store a token under name k, signed with secret by pgcrypto (independent of brandbos)
mint() {
	local k=$1 secret=$2 payload=$3
	bb_psql "$C" -v k="$k" -v secret="$secret" -v payload="$payload" >/dev/null <<'SQL'
INSERT INTO s32_tokens
SELECT :'k', s.h || '.' || s.p || '.' ||
       s32_b64url(hmac(convert_to(s.h || '.' || s.p, 'UTF8'), convert_to(:'secret', 'UTF8'), 'sha256'))
  FROM (SELECT s32_b64url(convert_to('{"alg":"HS256","typ":"JWT"}', 'UTF8')) AS h,
               s32_b64url(convert_to(:'payload', 'UTF8')) AS p) s
ON CONFLICT (k) DO UPDATE SET tok = excluded.tok;
SQL
}
reload() {
	if sc_reload "$C"; then pass "pg_reload_conf() ($1)"; else fail "pg_reload_conf() ($1)"; fi
}

# shellcheck disable=SC2016   # dollar quotes are SQL
bb_psql "$C" >/dev/null <<'SQL'
CREATE EXTENSION brandbos;
CREATE EXTENSION pgcrypto;
CREATE ROLE app LOGIN;
CREATE FUNCTION s32_b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT translate(rtrim(replace(encode(b, 'base64'), E'\n', ''), '='), '+/', '-_') $$;
CREATE TABLE s32_tokens (k text PRIMARY KEY, tok text NOT NULL);
GRANT SELECT ON s32_tokens TO app;
SQL
EXP=$(( $(date +%s) + 86400 ))

# ---- 1. the plain setting in postgresql.conf: refused, never logged ---------------------------
mint conf "$CONF_SECRET" "{\"sub\":\"u-conf\",\"exp\":$EXP}"
sc_conf_set "$C" brandbos.jwt_secret "$CONF_SECRET"
reload "brandbos.jwt_secret in postgresql.conf"
assert_match "the reload says brandbos.jwt_secret is refused in a configuration file" \
	'brandbos.jwt_secret can only be set in a session' "$(cat "$LOG")"
assert_eq "a token signed with the postgresql.conf secret is refused (28000)" 28000 "$(app_auth conf)"
bb_cluster_restart "$C"
assert_eq "after a restart too" 28000 "$(app_auth conf)"
assert_eq "the server is up with the refused line in postgresql.conf" "t" \
	"$(sc_try "$C" "SELECT current_setting('brandbos.jwt_secret') = ''")"
sc_conf_unset "$C" brandbos.jwt_secret
reload "brandbos.jwt_secret removed"

# ---- 2. ALTER SYSTEM / DATABASE / ROLE, function SET clauses: refused ---------------------------
out=$(sc_try "$C" "ALTER SYSTEM SET brandbos.jwt_secret = '$SYS_SECRET'")
assert_match "ALTER SYSTEM SET brandbos.jwt_secret is refused" 'ERROR' "$out"
assert_eq "ALTER DATABASE postgres SET brandbos.jwt_secret: 55P02" 55P02 \
	"$(sc_sqlstate "$C" "ALTER DATABASE postgres SET brandbos.jwt_secret = '$DB_SECRET'")"
assert_eq "ALTER ROLE app SET brandbos.jwt_secret: 55P02" 55P02 \
	"$(sc_sqlstate "$C" "ALTER ROLE app SET brandbos.jwt_secret = '$DB_SECRET'")"
assert_eq "ALTER ROLE app IN DATABASE postgres SET brandbos.jwt_secret: 55P02" 55P02 \
	"$(sc_sqlstate "$C" "ALTER ROLE app IN DATABASE postgres SET brandbos.jwt_secret = '$DB_SECRET'")"
assert_eq "ALTER ROLE ALL SET brandbos.jwt_secret: 55P02" 55P02 \
	"$(sc_sqlstate "$C" "ALTER ROLE ALL SET brandbos.jwt_secret = '$DB_SECRET'")"
assert_eq "CREATE FUNCTION ... SET brandbos.jwt_secret: 55P02" 55P02 \
	"$(sc_sqlstate "$C" "CREATE FUNCTION s32_f() RETURNS int LANGUAGE sql SET brandbos.jwt_secret = '$DB_SECRET' AS 'SELECT 1'")"
assert_eq "ALTER DATABASE postgres SET brandbos.jwt_secret_file: 55P02" 55P02 \
	"$(sc_sqlstate "$C" "ALTER DATABASE postgres SET brandbos.jwt_secret_file = '/tmp/x'")"
assert_eq "app (a login role) finds no secret in pg_db_role_setting" 0 \
	"$(app_psql -At -c "SELECT count(*) FROM pg_db_role_setting WHERE array_to_string(setconfig, ' ') ~ 's32-|jwt_secret'")"
assert_eq "app finds no secret in pg_proc" 0 \
	"$(app_psql -At -c "SELECT count(*) FROM pg_proc WHERE array_to_string(proconfig, ' ') ~ 's32-|jwt_secret'")"
if grep -qF -- "$SYS_SECRET" "$(bb_datadir "$C")/postgresql.auto.conf" 2>/dev/null; then
	fail "postgresql.auto.conf holds no secret"
else
	pass "postgresql.auto.conf holds no secret"
fi

# ---- 3. brandbos.jwt_secret_file ---------------------------------------------------------------
sc_write_secret "$DIR/jwt.secret" "$FILE_SECRET"
sc_conf_set "$C" brandbos.jwt_secret_file "$DIR/jwt.secret"
reload "brandbos.jwt_secret_file set"
mint file1 "$FILE_SECRET" "{\"sub\":\"u-file1\",\"exp\":$EXP}"
assert_eq "a token signed with the file's secret verifies for app" "ok:u-file1" "$(app_auth file1)"
assert_eq "app cannot read brandbos.jwt_secret_file" 42501 \
	"$(app_psql -v VERBOSITY=verbose -At -c "SELECT current_setting('brandbos.jwt_secret_file')" 2>&1 | grep -oE '[0-9]{5}' | head -n 1)"

# a session opened before the rotation, still open after it
coproc OLD { app_psql -v VERBOSITY=verbose -At 2>&1; }
echo "SELECT 'ready';" >&"${OLD[1]}"
read -r -t 30 line <&"${OLD[0]}" || true
assert_eq "a long-lived session of app is open" ready "$line"

sc_write_secret "$DIR/jwt.secret" "$FILE_SECRET2"
reload "the file holds a new secret"
mint file2 "$FILE_SECRET2" "{\"sub\":\"u-file2\",\"exp\":$EXP}"
assert_eq "after the reload, a token of the new secret verifies (new session)" "ok:u-file2" "$(app_auth file2)"
assert_eq "and one of the old secret is refused" 28000 "$(app_auth file1)"
printf '%s\n' "BEGIN;" "SELECT brandbos.authenticate(tok) ->> 'sub' FROM s32_tokens WHERE k = 'file2';" \
	"ROLLBACK;" "BEGIN;" "SELECT brandbos.authenticate(tok) ->> 'sub' FROM s32_tokens WHERE k = 'file1';" \
	"ROLLBACK;" "SELECT 'done';" >&"${OLD[1]}"
old_out=""
while read -r -t 30 line <&"${OLD[0]}"; do
	old_out+="$line"$'\n'
	[[ $line == "done" ]] && break
done
assert_match "the session opened before the reload verifies the new secret's token" $'u-file2\n' "$old_out"
assert_match "and refuses the old secret's token (28000)" 'ERROR: +28000' "$old_out"
echo '\q' >&"${OLD[1]}"
wait "${OLD_PID:-}" 2>/dev/null || true   # bash unsets OLD_PID once the coprocess has exited

# ---- 4. the root key file's rules -------------------------------------------------------------
chmod 644 "$DIR/jwt.secret"
reload "the file is 0644"
out=$(app_psql -v VERBOSITY=verbose -At -c 'BEGIN' -c "SELECT brandbos.authenticate(tok) FROM s32_tokens WHERE k = 'file2'" 2>&1 || true)
assert_match "a file readable by others: 55000" 'ERROR: +55000' "$out"
if [[ $out == *"$DIR"* ]]; then fail "app (not a superuser) is not told the file's path" "$out"; else pass "app (not a superuser) is not told the file's path"; fi
assert_match "the server log names the reason: its mode" 'mode 0644' "$(cat "$LOG")"
out=$(sc_try "$C" "BEGIN; SELECT brandbos.authenticate(tok) FROM s32_tokens WHERE k = 'file2';")
assert_match "a superuser is told the reason" 'mode 0644' "$out"
if [[ $out == *"$FILE_SECRET2"* ]]; then fail "the error holds no byte of the file"; else pass "the error holds no byte of the file"; fi
chmod 640 "$DIR/jwt.secret"
reload "the file is 0640"
assert_eq "a file readable by its group: 55000" 55000 "$(app_auth file2)"
chmod 600 "$DIR/jwt.secret"
reload "the file is 0600 again"
assert_eq "back at 0600 it verifies again" "ok:u-file2" "$(app_auth file2)"
sc_write_secret "$DIR/short.secret" "$SHORT_SECRET"
sc_conf_set "$C" brandbos.jwt_secret_file "$DIR/short.secret"
reload "a secret shorter than 32 bytes"
out=$(app_psql -v VERBOSITY=verbose -At -c 'BEGIN' -c "SELECT brandbos.authenticate(tok) FROM s32_tokens WHERE k = 'file2'" 2>&1 || true)
assert_match "a secret shorter than 32 bytes: 55000" 'ERROR: +55000' "$out"
assert_match "the server log says it is shorter than 32 bytes" 'fewer than 32 bytes' "$(cat "$LOG")"
if [[ $out == *"$SHORT_SECRET"* ]]; then fail "the error does not quote the short secret"; else pass "the error does not quote the short secret"; fi
sc_conf_set "$C" brandbos.jwt_secret_file "$DIR/missing.secret"
reload "a missing file"
assert_eq "a missing file: 55000" 55000 "$(app_auth file2)"
# every request fails now: its token, in the statement text, must not reach the log
FILE2_TOKEN=$(sc_try "$C" "SELECT tok FROM s32_tokens WHERE k = 'file2'")
out=$(app_psql -v VERBOSITY=verbose -At -c 'BEGIN' -c "SELECT brandbos.authenticate('$FILE2_TOKEN')" 2>&1 || true)
assert_match "a missing file, the token written into the statement: 55000" 'ERROR: +55000' "$out"
sc_conf_set "$C" brandbos.jwt_secret_file "$DIR"
reload "a directory"
assert_eq "a directory: 55000" 55000 "$(app_auth file2)"
sc_conf_set "$C" brandbos.jwt_secret_file "$DIR/jwt.secret"
bb_cluster_restart "$C"
assert_eq "preloaded, after a restart the file's secret verifies" "ok:u-file2" "$(app_auth file2)"

# ---- 5. the server log: no secret, no token, no claims ------------------------------------------
mint nul "$FILE_SECRET2" '{"sub":"u-nul-s32marker\u0000","exp":1}'
mint big "$FILE_SECRET2" '{"sub":"u-big-s32marker","exp":1e400}'
mint deep "$FILE_SECRET2" "{\"sub\":\"u-deep-s32marker\",\"exp\":1,\"x\":$(printf '[%.0s' $(seq 3000))$(printf ']%.0s' $(seq 3000))}"
for k in nul big deep; do
	st=$(app_psql -v VERBOSITY=verbose -At -c 'BEGIN' \
		-c "SELECT brandbos.authenticate(tok) FROM s32_tokens WHERE k = '$k'" 2>&1 || true)
	assert_match "malformed claims ($k): refused with 22023 or 28000" 'ERROR: +(22023|28000)' "$st"
done
# the same tokens as literals in the statement text (what log_min_error_statement logs),
# inside a transaction block and outside one (25P01, for valid tokens too)
while IFS= read -r tok; do
	sc_try "$C" "BEGIN; SELECT brandbos.authenticate('$tok');" >/dev/null
	out=$(app_psql -v VERBOSITY=verbose -At -c "SELECT brandbos.authenticate('$tok')" 2>&1 || true)
	[[ $out == *25P01* ]] || diag "outside a block: ${out:0:80}"
done < <(sc_try "$C" "SELECT tok FROM s32_tokens")
leaks=0
for s in "$CONF_SECRET" "$SYS_SECRET" "$DB_SECRET" "$FILE_SECRET" "$FILE_SECRET2" "$SHORT_SECRET" s32marker; do
	if grep -qF -- "$s" "$LOG"; then leaks=$((leaks + 1)); diag "in the log: ${s:0:12}..."; fi
done
while IFS= read -r tok; do
	for seg in ${tok//./ }; do
		if (( ${#seg} >= 8 )) && grep -qF -- "$seg" "$LOG"; then leaks=$((leaks + 1)); fi
	done
done < <(sc_try "$C" "SELECT tok FROM s32_tokens")
assert_eq "the server log holds no secret, no token segment and no claim" 0 "$leaks"
assert_match "the server log does show the refusals happened" 'token refused|token is not a valid JWT' "$(cat "$LOG")"

# ---- 6. without preload ------------------------------------------------------------------------
P=s32_plain
sc_cluster "$P" 55535 no
PLAIN_SECRET="s32-plain-$(rand)"
bb_psql "$P" -c 'CREATE EXTENSION brandbos' -c 'CREATE ROLE app LOGIN' >/dev/null
out=$(bb_psql "$P" -v VERBOSITY=verbose -At -c "SELECT brandbos.current_user_id()" \
	-c "ALTER DATABASE postgres SET brandbos.jwt_secret = '$PLAIN_SECRET'" 2>&1 || true)
assert_match "no preload, library loaded: ALTER DATABASE ... SET brandbos.jwt_secret: 55P02" 'ERROR: +55P02' "$out"
# a session that never loaded brandbos: PostgreSQL stores the value without asking
bb_psql "$P" -c "ALTER DATABASE postgres SET brandbos.jwt_secret = '$PLAIN_SECRET'" >/dev/null 2>&1 || true
out=$(bb_psql "$P" -v VERBOSITY=verbose -At -c 'BEGIN' \
	-c "SELECT brandbos.sign_token('{\"sub\": \"u\"}') IS NOT NULL" \
	-c "SELECT current_setting('brandbos.jwt_secret') = ''" 2>&1 || true)
assert_match "a stored database-level value is refused when brandbos loads (a warning)" 'WARNING: +55P02' "$out"
assert_match "and never used: the secret stays empty" $'\nt\n?$' "$out"
bb_psql "$P" -c "ALTER DATABASE postgres RESET brandbos.jwt_secret" >/dev/null 2>&1 || true
if grep -qF -- "$PLAIN_SECRET" "$(bb_logfile "$P")"; then
	fail "no preload: the refused statements did not put the secret in the server log"
else
	pass "no preload: the refused statements did not put the secret in the server log"
fi

for c in "$C" "$P"; do
	if sc_server_crashed "$c"; then
		fail "no backend crashed ($c)" "$(grep -E 'terminated by signal|PANIC' "$(bb_logfile "$c")" | head -n 5)"
	else
		pass "no backend crashed ($c)"
	fi
done

sc_finish
