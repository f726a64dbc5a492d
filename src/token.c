/*
 * token.c — token authentication: brandbos.authenticate(), which tokens it
 * accepts and the secret they are signed with, and brandbos.sign_token().
 *
 * A token is an HS256 JWT (jwt.c splits and signs; this file decides).  The
 * checks run in this order, and nothing of the payload is read before the
 * signature verified:
 *   framing and base64url (jwt.c), the header a JSON object   -> 22023
 *   "alg" exactly "HS256", no "crit" header parameter         -> 28000
 *   the HMAC-SHA256 signature                                 -> 28000
 *   the payload a JSON object                                 -> 22023
 *   exp (required unless brandbos.jwt_require_exp is off), nbf, both
 *   within brandbos.jwt_leeway; iss and aud when expected      -> 28000
 * JSON is parsed by PostgreSQL's jsonb input only; its errors quote the
 * text, so they are caught and replaced, and every error raised here hides
 * the statement (which holds the token) from the server log.
 *
 * The secret: brandbos.jwt_secret (superuser, session only), else the
 * file named by brandbos.jwt_secret_file, else derived from the root key.
 * The plain setting is refused everywhere PostgreSQL would write it down
 * for others to read: a configuration file (a reload logs every changed
 * value), ALTER SYSTEM, ALTER DATABASE / ROLE ... SET (pg_db_role_setting
 * is readable by every role), a function's SET clause (pg_proc), the
 * server's command line.  SHOW and pg_settings never display it.  In every
 * session that has loaded the library (all of them when preloaded), a
 * utility hook refuses those statements before PostgreSQL does, with the
 * statement (which holds the secret) hidden from the log.
 *
 * The file follows the root key file's rules (secret_file.c).  Its content
 * is kept in sodium_malloc memory and read again at the first use after the
 * setting was (re)applied, which every configuration reload does.
 *
 * authenticate() sets the request context through context.c's writer; every
 * error raised while it runs hides the statement, which holds the token.
 */
#include "brandbos.h"
#include "jwt.h"
#include "secret_file.h"
#include "token.h"

#include <sodium.h>

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#define MAX_TOKEN_BYTES 16384
/* RFC 7518 section 3.2: an HS256 key has at least 256 bits */
#define MIN_SECRET_BYTES 32
#define MAX_SECRET_FILE_BYTES 4096
/* NumericDate claims beyond 9999-12-31 are refused, not rounded */
#define MAX_NUMERIC_DATE INT64CONST(253402300799)

/* settings */
static char *jwt_secret = NULL;
static char *jwt_secret_file = NULL;
static bool jwt_require_exp = true;
static int	jwt_leeway = 0;
static char *jwt_audience = NULL;
static char *jwt_issuer = NULL;

/* the content of brandbos.jwt_secret_file, or NULL with the reason */
static unsigned char *file_secret = NULL;
static size_t file_secret_len = 0;
static bool file_secret_tried = false;
static char file_secret_problem[512];

/* ---------------------------------------------------------------------
 * Safe JSON
 * --------------------------------------------------------------------- */

Jsonb *
brandbos_json_object_or_null(const char *data, size_t len)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *copy = pnstrdup(data, len);
	Jsonb	   *volatile jb = NULL;

	if (strlen(copy) != len)
		return NULL;			/* embedded NUL */
	if (!pg_verifymbstr(copy, len, true))
		return NULL;			/* not valid in the database encoding: never stored */
	PG_TRY();
	{
		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(copy)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION &&
			ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
		{
			/* not about the text (a cancel, out of memory): let it through, statement hidden */
			edata->hide_stmt = true;
			ReThrowError(edata);
		}
		FreeErrorData(edata);
		jb = NULL;
	}
	PG_END_TRY();
	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		return NULL;
	return jb;
}

JsonbValue *
brandbos_jsonb_member(Jsonb *obj, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(&obj->root, JB_FOBJECT, &k);
}

static bool
string_member_is(JsonbValue *v, const char *expected)
{
	return v != NULL && v->type == jbvString &&
		v->val.string.len == strlen(expected) &&
		memcmp(v->val.string.val, expected, v->val.string.len) == 0;
}

/* ---------------------------------------------------------------------
 * Errors (the statement holds the token: never in the log)
 * --------------------------------------------------------------------- */

void
brandbos_token_malformed(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("token is not a valid JWT"),
			 errdetail("%s", detail),
			 errhidestmt(true)));
}

pg_noreturn static void token_refused(const char *why);

static void
token_refused(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("token refused: %s", why),
			 errhidestmt(true)));
}

/* ---------------------------------------------------------------------
 * The secret
 * --------------------------------------------------------------------- */

static void
drop_file_secret(void)
{
	if (file_secret != NULL)
	{
		sodium_mprotect_readwrite(file_secret);
		sodium_free(file_secret);	/* wipes before unmapping */
		file_secret = NULL;
	}
	file_secret_len = 0;
}

/* read brandbos.jwt_secret_file; never throws */
static void
load_file_secret(void)
{
	unsigned char *buf;
	size_t		n,
				start = 0;

	drop_file_secret();
	file_secret_tried = true;
	file_secret_problem[0] = '\0';
	buf = sodium_malloc(MAX_SECRET_FILE_BYTES);
	if (buf == NULL)
	{
		snprintf(file_secret_problem, sizeof(file_secret_problem),
				 "could not allocate protected memory for the JWT secret");
		return;
	}
	if (!bb_read_secret_file(jwt_secret_file, "JWT secret file", buf, MAX_SECRET_FILE_BYTES, &n,
							 file_secret_problem, sizeof(file_secret_problem)))
	{
		sodium_free(buf);
		return;
	}
	/* the secret is the text of the file without surrounding white space */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	while (start < n && (buf[start] == ' ' || buf[start] == '\t'))
		start++;
	if (n - start < MIN_SECRET_BYTES)
	{
		sodium_free(buf);
		snprintf(file_secret_problem, sizeof(file_secret_problem),
				 "JWT secret file \"%s\" holds fewer than %d bytes", jwt_secret_file, MIN_SECRET_BYTES);
		return;
	}
	memmove(buf, buf + start, n - start);
	sodium_memzero(buf + (n - start), MAX_SECRET_FILE_BYTES - (n - start));
	sodium_mprotect_readonly(buf);
	file_secret = buf;
	file_secret_len = n - start;
}

unsigned char *
brandbos_token_secret(size_t *len)
{
	unsigned char *secret;

	if (jwt_secret != NULL && jwt_secret[0] != '\0')
	{
		*len = strlen(jwt_secret);
		return (unsigned char *) pstrdup(jwt_secret);
	}
	if (jwt_secret_file != NULL && jwt_secret_file[0] != '\0')
	{
		if (!file_secret_tried)
			load_file_secret();
		if (file_secret == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("brandbos JWT secret is not loaded"),
					 superuser() ? errdetail("%s.", file_secret_problem) :
					 errdetail("The server log names the file and what is wrong with it."),
					 errdetail_log("%s.", file_secret_problem),
					 errhidestmt(true),
					 errhint("Make brandbos.jwt_secret_file a file of at least %d bytes, owned by the server's user and readable by it alone (mode 0600 or 0400), then reload the configuration.",
							 MIN_SECRET_BYTES)));
		secret = palloc(file_secret_len);
		memcpy(secret, file_secret, file_secret_len);
		*len = file_secret_len;
		return secret;
	}
	if (!brandbos_root_key_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no secret to verify tokens with"),
				 errhidestmt(true),
				 errhint("Set brandbos.jwt_secret_file (for Supabase, a file holding the project's JWT secret), or load a root key to derive one.")));
	secret = palloc(32);
	brandbos_derive_secret("brandbos jwt secret v1", secret);
	*len = 32;
	return secret;
}

/* ---------------------------------------------------------------------
 * Verification
 * --------------------------------------------------------------------- */

static int
numeric_cmp_int64(Numeric n, int64 v)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
											 NumericGetDatum(int64_to_numeric(v))));
}

/* a NumericDate claim in seconds; false if absent; refuses other types and out-of-range values */
static bool
claim_seconds(Jsonb *claims, const char *key, double *out)
{
	JsonbValue *v = brandbos_jsonb_member(claims, key);

	if (v == NULL)
		return false;
	if (v->type != jbvNumeric)
		token_refused(psprintf("the \"%s\" claim is not a number", key));
	if (numeric_cmp_int64(v->val.numeric, 0) < 0 ||
		numeric_cmp_int64(v->val.numeric, MAX_NUMERIC_DATE) > 0)
		token_refused(psprintf("the \"%s\" claim is out of range", key));
	*out = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	return true;
}

/* aud is a string or an array of strings (RFC 7519 section 4.1.3) */
static bool
audience_matches(Jsonb *claims, const char *expected)
{
	JsonbValue *aud = brandbos_jsonb_member(claims, "aud");
	JsonbValue	elem;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	bool		found = false;

	if (aud == NULL)
		return false;
	if (aud->type == jbvString)
		return string_member_is(aud, expected);
	if (aud->type != jbvBinary || !JsonContainerIsArray(aud->val.binary.data))
		return false;
	it = JsonbIteratorInit(aud->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		if (tok == WJB_ELEM && string_member_is(&elem, expected))
			found = true;
	}
	return found;
}

Jsonb *
brandbos_token_verify(const char *token, size_t len)
{
	unsigned char *buf;
	bb_jwt		jwt;
	bb_jwt_status status;
	Jsonb	   *header,
			   *claims;
	unsigned char *secret;
	size_t		secret_len;
	double		now,
				t;

	if (len == 0 || len > MAX_TOKEN_BYTES)
		brandbos_token_malformed("The token is empty or longer than 16 kB.");

	/* framing and header first; nothing of the payload is read until signed */
	buf = palloc(len);
	status = bb_jwt_parse(token, len, buf, &jwt);
	if (status != BB_JWT_OK)
		brandbos_token_malformed(bb_jwt_status_text(status));
	header = brandbos_json_object_or_null((char *) jwt.header, jwt.header_len);
	if (header == NULL)
		brandbos_token_malformed("The token header is not a JSON object.");
	if (!string_member_is(brandbos_jsonb_member(header, "alg"), "HS256"))
		token_refused("the algorithm is not HS256");
	/* RFC 7515 section 4.1.11: an extension the recipient must understand; none is */
	if (brandbos_jsonb_member(header, "crit") != NULL)
		token_refused("the header has a \"crit\" parameter");

	secret = brandbos_token_secret(&secret_len);
	status = bb_jwt_verify_hs256(token, &jwt, secret, secret_len);
	sodium_memzero(secret, secret_len);
	if (status != BB_JWT_OK)
		token_refused("the signature does not match");

	claims = brandbos_json_object_or_null((char *) jwt.payload, jwt.payload_len);
	if (claims == NULL)
		brandbos_token_malformed("The token payload is not a JSON object PostgreSQL's jsonb accepts.");

	now = (double) GetCurrentTimestamp() / USECS_PER_SEC +
		(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
	if (claim_seconds(claims, "exp", &t))
	{
		if (!(now < t + jwt_leeway))
			token_refused("it has expired");
	}
	else if (jwt_require_exp)
		token_refused("it has no \"exp\" claim");
	if (claim_seconds(claims, "nbf", &t) && now + jwt_leeway < t)
		token_refused("it is not valid yet");
	if (jwt_issuer != NULL && jwt_issuer[0] != '\0' &&
		!string_member_is(brandbos_jsonb_member(claims, "iss"), jwt_issuer))
		token_refused("the \"iss\" claim is not brandbos.jwt_issuer");
	if (jwt_audience != NULL && jwt_audience[0] != '\0' &&
		!audience_matches(claims, jwt_audience))
		token_refused("the \"aud\" claim does not name brandbos.jwt_audience");
	return claims;
}

/* ---------------------------------------------------------------------
 * Settings
 * --------------------------------------------------------------------- */

/*
 * brandbos.jwt_secret: only where no other role and no log can see it — a
 * superuser's SET (or a connection option).  Every other source writes the
 * value down: a configuration file (logged on reload), ALTER SYSTEM,
 * ALTER DATABASE / ROLE ... SET and a function's SET clause (validated as
 * PGC_S_TEST, stored in catalogs PUBLIC reads), the command line.
 */
static bool
check_jwt_secret(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (source != PGC_S_SESSION && source != PGC_S_CLIENT && source != PGC_S_OVERRIDE)
	{
		GUC_check_errcode(ERRCODE_CANT_CHANGE_RUNTIME_PARAM);
		GUC_check_errmsg("brandbos.jwt_secret can only be set in a session");
		GUC_check_errdetail("A value in a configuration file, ALTER SYSTEM, ALTER DATABASE or ROLE ... SET, or a function's SET clause would reach the server log or a catalog other roles can read.");
		GUC_check_errhint("Put the secret in a file and name it in brandbos.jwt_secret_file.");
		return false;
	}
	if (strlen(*newval) < MIN_SECRET_BYTES)
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("brandbos.jwt_secret must be at least %d bytes long", MIN_SECRET_BYTES);
		return false;
	}
	return true;
}

/* SHOW, current_setting() and pg_settings never display the secret */
static const char *
show_jwt_secret(void)
{
	return (jwt_secret != NULL && jwt_secret[0] != '\0') ? "(set, hidden)" : "";
}

/* any (re)application of the file setting, e.g. by a reload: read again on next use */
static void
assign_jwt_secret_file(const char *newval, void *extra)
{
	file_secret_tried = false;
}

static ProcessUtility_hook_type prev_utility_hook = NULL;

static bool
sets_plain_secret(VariableSetStmt *stmt)
{
	return stmt != NULL && stmt->kind == VAR_SET_VALUE && stmt->name != NULL &&
		pg_strcasecmp(stmt->name, "brandbos.jwt_secret") == 0;
}

/* CREATE / ALTER FUNCTION options: is one of them SET brandbos.jwt_secret? */
static bool
options_set_plain_secret(List *options)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "set") == 0 && d->arg != NULL && IsA(d->arg, VariableSetStmt) &&
			sets_plain_secret((VariableSetStmt *) d->arg))
			return true;
	}
	return false;
}

static void
token_utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params,
				   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *n = pstmt->utilityStmt;
	bool		refuse = false;

	if (IsA(n, AlterSystemStmt))
		refuse = sets_plain_secret(((AlterSystemStmt *) n)->setstmt);
	else if (IsA(n, AlterDatabaseSetStmt))
		refuse = sets_plain_secret(((AlterDatabaseSetStmt *) n)->setstmt);
	else if (IsA(n, AlterRoleSetStmt))
		refuse = sets_plain_secret(((AlterRoleSetStmt *) n)->setstmt);
	else if (IsA(n, CreateFunctionStmt))
		refuse = options_set_plain_secret(((CreateFunctionStmt *) n)->options);
	else if (IsA(n, AlterFunctionStmt))
		refuse = options_set_plain_secret(((AlterFunctionStmt *) n)->actions);
	if (refuse)
		ereport(ERROR,
				(errcode(ERRCODE_CANT_CHANGE_RUNTIME_PARAM),
				 errmsg("brandbos.jwt_secret can only be set in a session"),
				 errdetail("ALTER SYSTEM, ALTER DATABASE or ROLE ... SET and a function's SET clause store the value where the server log or other roles can read it."),
				 errhint("Put the secret in a file and name it in brandbos.jwt_secret_file."),
				 errhidestmt(true)));
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

void
brandbos_token_init(void)
{
	DefineCustomStringVariable("brandbos.jwt_secret",
							   "Secret of HS256 tokens accepted by brandbos.authenticate(), for this session.",
							   "Only a superuser's SET; refused in configuration files and database or role settings.  Use brandbos.jwt_secret_file.",
							   &jwt_secret, "", PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   check_jwt_secret, NULL, show_jwt_secret);
	DefineCustomStringVariable("brandbos.jwt_secret_file",
							   "File holding the secret of HS256 tokens accepted by brandbos.authenticate().",
							   "Empty: derived from the root key.  For Supabase, a file holding the project's JWT secret; readable only by the server's user.",
							   &jwt_secret_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, assign_jwt_secret_file, NULL);
	DefineCustomBoolVariable("brandbos.jwt_require_exp",
							 "Refuse tokens without an \"exp\" claim.",
							 NULL, &jwt_require_exp, true, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("brandbos.jwt_leeway",
							"Clock skew allowed when checking \"exp\" and \"nbf\".",
							NULL, &jwt_leeway, 0, 0, 300, PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("brandbos.jwt_audience",
							   "Audience a token's \"aud\" claim must name; empty: not checked.",
							   "Supabase user tokens carry \"authenticated\".",
							   &jwt_audience, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("brandbos.jwt_issuer",
							   "Issuer a token's \"iss\" claim must equal; empty: not checked.",
							   NULL, &jwt_issuer, "", PGC_SUSET, 0, NULL, NULL, NULL);

	/* in every session that loads the library: the statements never reach the log */
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = token_utility_hook;
	if (!process_shared_preload_libraries_in_progress)
		return;

	/* preloaded: read the file once in the postmaster (children inherit it) and say so */
	if (jwt_secret_file != NULL && jwt_secret_file[0] != '\0')
	{
		load_file_secret();
		if (file_secret == NULL)
			ereport(WARNING,
					(errmsg("brandbos JWT secret is not loaded: %s", file_secret_problem),
					 errdetail("brandbos.authenticate() and brandbos.sign_token() will fail until it is fixed.")));
	}
}

/* a string or number member as a C string; NULL if absent or another type */
char *
brandbos_jsonb_member_text(Jsonb *obj, const char *key)
{
	JsonbValue *v = brandbos_jsonb_member(obj, key);

	if (v == NULL)
		return NULL;
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	return NULL;
}

/* ---------------------------------------------------------------------
 * authenticate() and sign_token()
 * --------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(brandbos_authenticate);
static Datum authenticate_token(FunctionCallInfo fcinfo);

/*
 * SQL: brandbos.authenticate(token text) returns jsonb
 *
 * The statement holds the token, so no error raised on the way (a refused
 * token, no transaction block, no secret, out of memory) may log it.
 */
Datum
brandbos_authenticate(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		result = (Datum) 0;

	PG_TRY();
	{
		result = authenticate_token(fcinfo);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		edata->hide_stmt = true;
		ReThrowError(edata);
	}
	PG_END_TRY();
	return result;
}

static Datum
authenticate_token(FunctionCallInfo fcinfo)
{
	text	   *token_text;
	Jsonb	   *claims;
	char	   *sub,
			   *tenant,
			   *role;
	JsonbValue *sub_value;

	brandbos_require_transaction_block("brandbos.authenticate()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("token must not be null")));
	token_text = PG_GETARG_TEXT_PP(0);
	claims = brandbos_token_verify(VARDATA_ANY(token_text), VARSIZE_ANY_EXHDR(token_text));

	sub_value = brandbos_jsonb_member(claims, "sub");
	if (sub_value == NULL || sub_value->type != jbvString || sub_value->val.string.len == 0)
		brandbos_token_malformed("The token has no \"sub\" claim (a non-empty string).");
	sub = pnstrdup(sub_value->val.string.val, sub_value->val.string.len);
	tenant = brandbos_jsonb_member_text(claims, brandbos_tenant_claim_name());
	role = brandbos_jsonb_member_text(claims, "role");

	brandbos_context_write(sub, tenant, role ? role : "authenticated",
						   JsonbToCString(NULL, &claims->root, VARSIZE(claims)));
	PG_RETURN_JSONB_P(claims);
}

PG_FUNCTION_INFO_V1(brandbos_sign_token);
/* SQL: brandbos.sign_token(claims jsonb, ttl interval default '1 hour') returns text */
Datum
brandbos_sign_token(PG_FUNCTION_ARGS)
{
	BrandbosDetails iat_exp;
	Jsonb	   *claims = PG_GETARG_JSONB_P(0);
	Interval   *ttl = PG_GETARG_INTERVAL_P(1);
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	Jsonb	   *times;
	char	   *claims_text;
	int64		now_s,
				ttl_s;
	unsigned char *secret;
	size_t		secret_len;
	char	   *out;

	brandbos_require_role(BRANDBOS_ROLE_CONTEXT_ADMIN, "sign brandbos tokens");
	if (!JB_ROOT_IS_OBJECT(claims) || JB_ROOT_IS_SCALAR(claims))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("claims must be a JSON object")));
	ttl_s = (int64) (ttl->time / USECS_PER_SEC) + (int64) ttl->day * SECS_PER_DAY +
		(int64) ttl->month * 30 * SECS_PER_DAY;
	if (ttl_s <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must be positive")));
	now_s = GetCurrentTimestamp() / USECS_PER_SEC +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;

	/* iat and exp, unless the claims bring their own */
	brandbos_details_begin(&iat_exp);
	brandbos_details_int8(&iat_exp, "iat", now_s);
	brandbos_details_int8(&iat_exp, "exp", now_s + ttl_s);
	times = brandbos_details_end(&iat_exp);
	claims = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(times),
												JsonbPGetDatum(claims)));
	claims_text = JsonbToCString(NULL, &claims->root, VARSIZE(claims));

	secret = brandbos_token_secret(&secret_len);
	out = palloc(bb_jwt_signed_len(sizeof(header) - 1, strlen(claims_text)) + 1);
	bb_jwt_sign_hs256(out, header, sizeof(header) - 1, claims_text, strlen(claims_text),
					  secret, secret_len);
	sodium_memzero(secret, secret_len);
	PG_RETURN_TEXT_P(cstring_to_text(out));
}
