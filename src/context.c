/*
 * context.c — the per-transaction request context and its helpers.
 *
 * The context (user, tenant, app role, claims, ip, user agent) lives in
 * internal settings brandbos.request_*, always set with SET LOCAL semantics:
 * it ends with the transaction, a rolled-back subtransaction restores the
 * previous one, and parallel workers receive it with the leader's settings.
 * Their check hook refuses every write (SET, set_config, RESET, ALTER ROLE
 * ... SET) unless one of the three writers is running:
 *   - brandbos.authenticate(token) (token.c, through brandbos_context_write);
 *   - brandbos.set_context(...): only for brandbos_context_admin;
 *   - brandbos.set_request(ip, user_agent): request metadata only.
 * authenticate and set_context refuse to run outside a transaction block,
 * where the context would vanish at once.  A reset of a part of the context
 * (which bypasses the check hook) makes the rest untrusted: every helper
 * then raises 42501 until the transaction ends or a new context is written.
 *
 * Assign hooks keep C copies of the values, so the helpers used in policies
 * cost one function call and no lookup.  With
 * brandbos.trust_request_jwt_claims on, the helpers fall back to
 * PostgREST's request.jwt.claims when no brandbos context is set, and then
 * return what Supabase's auth.uid(), auth.jwt() and auth.role() return.
 *
 * Setting a context engages the role lock (role_lock.c): until the
 * (sub)transaction that set it ends, no statement can change the session's
 * role, so an injected statement cannot climb back to the pooled
 * connection's own role.  When preloaded, a utility hook refuses RESET and
 * SET ... TO DEFAULT of the internal settings outright.
 */
#include "brandbos.h"
#include "token.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

/* brandbos.set_request keeps at most this many bytes of a user agent, whole characters */
#define USER_AGENT_MAX_BYTES 1024

/* ---------------------------------------------------------------------
 * Settings
 * --------------------------------------------------------------------- */

static char *tenant_claim = NULL;
static bool trust_request_jwt_claims = false;

/* raw values of the internal settings (owned by the GUC machinery) */
static char *raw_user_id = NULL;
static char *raw_tenant_id = NULL;
static char *raw_app_role = NULL;
static char *raw_claims = NULL;
static char *raw_ip = NULL;
static char *raw_user_agent = NULL;

/* true only while a brandbos writer sets the internal settings */
static bool context_writing = false;

/* set once the settings exist: from then on a default can only come from RESET */
static bool context_settings_defined = false;

/*
 * Set when a part of the context changed in a running transaction without a
 * brandbos writer: a reset (set_config(name, NULL), SET ... TO DEFAULT,
 * RESET ALL) takes the default without the check hook.  A context with a
 * part cleared could widen a policy written as NOT has_app_role(...) or
 * hide the actor from the audit log, so from then on every helper and the
 * audit writer refuse to read it (42501), until the transaction ends or a
 * writer sets a whole new context.  Restores while a (sub)transaction
 * aborts or ends are not changes: the transaction is not in progress then.
 */
static bool context_tampered = false;

static void
note_change(const char *oldval, const char *newval)
{
	if (!context_settings_defined || context_writing || InitializingParallelWorker ||
		!IsTransactionState())
		return;
	if (oldval == NULL || oldval[0] == '\0')
		return;					/* nothing was there to clear */
	if (newval != NULL && strcmp(oldval, newval) == 0)
		return;
	context_tampered = true;
}

/* ---------------------------------------------------------------------
 * The values the helpers return
 * --------------------------------------------------------------------- */

typedef struct IdValue
{
	text	   *as_text;		/* NULL when unset */
	bool		is_uuid;
	pg_uuid_t	uuid;
} IdValue;

typedef struct ContextValues
{
	IdValue		user;
	IdValue		tenant;
	text	   *app_role;
	char	   *claims_json;	/* NULL when unset */
	Jsonb	   *claims;			/* parsed on first use */
} ContextValues;

/* the brandbos context, the one read from request.jwt.claims, the one a Citus coordinator sent */
static ContextValues ctx;
static ContextValues postgrest;
static char *postgrest_seen = NULL;
static ContextValues forwarded;
static uint64 forwarded_seen = 0;	/* generation of the forwarded values copied into it */
static const BrandbosForwardedContext *forwarded_source = NULL;

/*
 * Memory for the helpers' values.  Nothing is freed while a transaction
 * runs, so a value returned earlier in a statement stays valid; it is reset
 * at transaction end (the settings revert right after).
 */
static MemoryContext context_memory = NULL;

/* parse a uuid in its canonical or 32-digit form; no errors */
static bool
parse_uuid(const char *s, pg_uuid_t *out)
{
	int			i = 0,
				digits = 0;
	size_t		len = strlen(s);

	if (len != 36 && len != 32)
		return false;
	for (; *s; s++)
	{
		int			v;

		if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23))
		{
			if (*s != '-')
				return false;
			i++;
			continue;
		}
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			v = *s - 'A' + 10;
		else
			return false;
		if (digits % 2 == 0)
			out->data[digits / 2] = (unsigned char) (v << 4);
		else
			out->data[digits / 2] |= (unsigned char) v;
		digits++;
		i++;
	}
	return digits == 32;
}

static void
set_id(IdValue *id, const char *value)
{
	if (value == NULL || value[0] == '\0')
	{
		id->as_text = NULL;
		id->is_uuid = false;
		return;
	}
	id->as_text = (text *) MemoryContextAlloc(context_memory, VARHDRSZ + strlen(value));
	SET_VARSIZE(id->as_text, VARHDRSZ + strlen(value));
	memcpy(VARDATA(id->as_text), value, strlen(value));
	id->is_uuid = parse_uuid(value, &id->uuid);
}

static text *
copy_text(const char *value)
{
	text	   *t;

	if (value == NULL || value[0] == '\0')
		return NULL;
	t = (text *) MemoryContextAlloc(context_memory, VARHDRSZ + strlen(value));
	SET_VARSIZE(t, VARHDRSZ + strlen(value));
	memcpy(VARDATA(t), value, strlen(value));
	return t;
}

/* ---------------------------------------------------------------------
 * Hooks of the internal settings
 * --------------------------------------------------------------------- */

/*
 * Allowed: brandbos's own writers, a parallel worker restoring its leader's
 * settings, and the boot value while the setting is being defined.  Refused
 * is everything else, including a value SET before the library was loaded
 * (a placeholder, re-applied when the setting is defined) and RESET.
 */
static bool
check_context_setting(char **newval, void **extra, GucSource source)
{
	if (context_writing || InitializingParallelWorker)
		return true;
	if (source == PGC_S_DEFAULT && !context_settings_defined)
		return true;
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("the brandbos request context can only be set by brandbos.authenticate(), brandbos.set_context() or brandbos.set_request()");
	return false;
}

static void
assign_user_id(const char *newval, void *extra)
{
	note_change(raw_user_id, newval);
	set_id(&ctx.user, newval);
}

static void
assign_tenant_id(const char *newval, void *extra)
{
	note_change(raw_tenant_id, newval);
	set_id(&ctx.tenant, newval);
}

static void
assign_app_role(const char *newval, void *extra)
{
	note_change(raw_app_role, newval);
	ctx.app_role = copy_text(newval);
}

static void
assign_claims(const char *newval, void *extra)
{
	note_change(raw_claims, newval);
	ctx.claims_json = (newval && newval[0]) ? MemoryContextStrdup(context_memory, newval) : NULL;
	ctx.claims = NULL;
}

static void
context_xact_callback(XactEvent event, void *arg)
{
	/*
	 * A parallel worker restores the leader's settings inside a short
	 * transaction of its own; what it restored must outlive that commit.
	 */
	if (InitializingParallelWorker)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		/* the settings revert right after this; their assign hooks refill */
		memset(&ctx, 0, sizeof(ctx));
		memset(&postgrest, 0, sizeof(postgrest));
		postgrest_seen = NULL;
		memset(&forwarded, 0, sizeof(forwarded));
		forwarded_seen = 0;
		forwarded_source = NULL;
		context_tampered = false;
		MemoryContextReset(context_memory);
	}
}

/* is a brandbos context set in this transaction? */
static bool
context_is_set(void)
{
	return ctx.user.as_text != NULL;
}

/* ---------------------------------------------------------------------
 * Writing the context
 * --------------------------------------------------------------------- */

static void
write_setting(const char *name, const char *value)
{
	(void) set_config_option(name, value ? value : "", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
}

/*
 * Is the Citus library loaded in this backend?  Citus loads only from
 * shared_preload_libraries and defines its settings when it does, so
 * without citus.propagate_set_commands (or with only a placeholder of it,
 * left by a SET before any load) no Citus transaction can exist here and
 * there is nothing to forward.  This saves the pg_extension lookup behind
 * brandbos_citus_installed() on every request of a server without Citus.
 */
static bool
citus_loaded(void)
{
	static const char probe[] = "citus.propagate_set_commands";

	return GetConfigOption(probe, true, false) != NULL &&
		(GetConfigOptionFlags(probe, true) & GUC_CUSTOM_PLACEHOLDER) == 0;
}

/* on a Citus coordinator, send the whole context with the transaction to the workers */
static void
forward_to_citus(void)
{
	if (!citus_loaded())
		return;
	brandbos_citus_context_forward(raw_user_id, raw_tenant_id, raw_app_role, raw_claims,
								   raw_ip, raw_user_agent);
}

bool
brandbos_context_written(void)
{
	return context_is_set();
}

/* set the whole context at once (NULLs clear their part) */
void
brandbos_context_write(const char *user_id, const char *tenant_id, const char *app_role,
			  const char *claims_json)
{
	brandbos_role_lock_engage();
	context_writing = true;
	PG_TRY();
	{
		write_setting("brandbos.request_user_id", user_id);
		write_setting("brandbos.request_tenant_id", tenant_id);
		write_setting("brandbos.request_app_role", app_role);
		write_setting("brandbos.request_claims", claims_json);
	}
	PG_FINALLY();
	{
		context_writing = false;
	}
	PG_END_TRY();
	context_tampered = false;	/* a whole new context */
	forward_to_citus();
}

void
brandbos_require_transaction_block(const char *function)
{
	if (!IsTransactionBlock())
		ereport(ERROR,
				(errcode(ERRCODE_NO_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s must be called inside a transaction block", function),
				 errdetail("The request context lasts until the end of the transaction; outside a block it would end at once."),
				 errhint("Run BEGIN first, then COMMIT or ROLLBACK at the end of the request.")));
}

PG_FUNCTION_INFO_V1(brandbos_set_context);
/*
 * SQL: brandbos.set_context(user_id text, tenant_id text,
 *                           app_role text default 'authenticated', claims jsonb default '{}')
 */
Datum
brandbos_set_context(PG_FUNCTION_ARGS)
{
	char	   *user_id;
	Jsonb	   *claims;

	brandbos_require_role(BRANDBOS_ROLE_CONTEXT_ADMIN, "set a brandbos request context");
	brandbos_require_transaction_block("brandbos.set_context()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("user_id must not be null")));
	user_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (user_id[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user_id must not be empty")));
	claims = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	if (claims != NULL && !JB_ROOT_IS_OBJECT(claims))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("claims must be a JSON object")));
	brandbos_context_write(user_id,
				  PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
				  PG_ARGISNULL(2) ? "authenticated" : text_to_cstring(PG_GETARG_TEXT_PP(2)),
				  claims ? JsonbToCString(NULL, &claims->root, VARSIZE(claims)) : "{}");
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_set_request);
/* SQL: brandbos.set_request(ip inet, user_agent text) returns void */
Datum
brandbos_set_request(PG_FUNCTION_ARGS)
{
	char	   *ip = NULL;
	char	   *ua = NULL;

	brandbos_require_transaction_block("brandbos.set_request()");
	if (brandbos_citus_context_forwarded())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("brandbos.set_request() cannot change a request context forwarded from the coordinator"),
				 errhint("Call it on the coordinator; it travels with the transaction.")));
	if (!PG_ARGISNULL(0))
		ip = DatumGetCString(DirectFunctionCall1(inet_out, PG_GETARG_DATUM(0)));
	if (!PG_ARGISNULL(1))
		ua = text_to_cstring(PG_GETARG_TEXT_PP(1));
	/* a header, not a document: at most 1024 bytes, cut at a character boundary */
	if (ua && strlen(ua) > USER_AGENT_MAX_BYTES)
		ua[pg_mbcliplen(ua, strlen(ua), USER_AGENT_MAX_BYTES)] = '\0';
	context_writing = true;
	PG_TRY();
	{
		write_setting("brandbos.request_ip", ip);
		write_setting("brandbos.request_user_agent", ua);
	}
	PG_FINALLY();
	{
		context_writing = false;
	}
	PG_END_TRY();
	forward_to_citus();
	PG_RETURN_VOID();
}

/* the claim that names the tenant (brandbos.tenant_claim) */
const char *
brandbos_tenant_claim_name(void)
{
	return tenant_claim && tenant_claim[0] ? tenant_claim : "tenant_id";
}

/* ---------------------------------------------------------------------
 * PostgREST's request.jwt.claims (when trusted)
 * --------------------------------------------------------------------- */

static ContextValues *
effective_context(void)
{
	const char *raw;

	if (context_tampered)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the brandbos request context was changed outside brandbos"),
				 errdetail("A part of it was reset in this transaction; what is left cannot be trusted."),
				 errhint("Only brandbos.authenticate() and brandbos.set_context() set the context; it ends with the transaction.")));

	if (context_is_set())
		return &ctx;
	if (!brandbos_context_written())
	{
		const BrandbosForwardedContext *f = brandbos_citus_context_current();

		forwarded_source = f;
		if (f != NULL)
		{
			if (forwarded_seen != f->generation)
			{
				MemoryContext old = MemoryContextSwitchTo(context_memory);

				memset(&forwarded, 0, sizeof(forwarded));
				set_id(&forwarded.user, f->user_id);
				set_id(&forwarded.tenant, f->tenant_id);
				forwarded.app_role = copy_text(f->app_role);
				forwarded.claims_json = f->claims ? pstrdup(f->claims) : NULL;
				forwarded_seen = f->generation;
				MemoryContextSwitchTo(old);
			}
			if (forwarded.user.as_text != NULL)
				return &forwarded;
		}
	}
	if (!trust_request_jwt_claims)
		return &ctx;
	raw = GetConfigOption("request.jwt.claims", true, false);
	if (raw == NULL || raw[0] == '\0')
		return &ctx;
	if (postgrest_seen == NULL || strcmp(postgrest_seen, raw) != 0)
	{
		Jsonb	   *claims = brandbos_json_object_or_null(raw, strlen(raw));
		MemoryContext old = MemoryContextSwitchTo(context_memory);

		memset(&postgrest, 0, sizeof(postgrest));
		postgrest_seen = pstrdup(raw);
		if (claims != NULL)
		{
			/* as Supabase's auth.uid(), auth.role(), auth.jwt(): each claim, or NULL */
			set_id(&postgrest.user, brandbos_jsonb_member_text(claims, "sub"));
			set_id(&postgrest.tenant, brandbos_jsonb_member_text(claims, brandbos_tenant_claim_name()));
			postgrest.app_role = copy_text(brandbos_jsonb_member_text(claims, "role"));
			postgrest.claims_json = pstrdup(raw);
			postgrest.claims = DatumGetJsonbP(datumCopy(JsonbPGetDatum(claims), false, -1));
		}
		MemoryContextSwitchTo(old);
	}
	/* claims that are no JSON object are no claims: every helper is NULL */
	return postgrest.claims_json != NULL ? &postgrest : &ctx;
}

static Jsonb *
context_claims(ContextValues *c)
{
	if (c->claims_json == NULL)
		return NULL;
	if (c->claims == NULL)
	{
		Jsonb	   *parsed = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(c->claims_json)));

		c->claims = (Jsonb *) MemoryContextAlloc(context_memory, VARSIZE(parsed));
		memcpy(c->claims, parsed, VARSIZE(parsed));
	}
	return c->claims;
}

/* ---------------------------------------------------------------------
 * Helpers (STABLE PARALLEL SAFE; NULL when unset)
 * --------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(brandbos_current_user_id);
/* SQL: brandbos.current_user_id() returns text */
Datum
brandbos_current_user_id(PG_FUNCTION_ARGS)
{
	ContextValues *c = effective_context();

	if (c->user.as_text == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(c->user.as_text);
}

PG_FUNCTION_INFO_V1(brandbos_current_tenant_id);
/* SQL: brandbos.current_tenant_id() returns text */
Datum
brandbos_current_tenant_id(PG_FUNCTION_ARGS)
{
	ContextValues *c = effective_context();

	if (c->tenant.as_text == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(c->tenant.as_text);
}

PG_FUNCTION_INFO_V1(brandbos_current_user_uuid);
/* SQL: brandbos.current_user_uuid() returns uuid (also brandbos.uid()) */
Datum
brandbos_current_user_uuid(PG_FUNCTION_ARGS)
{
	ContextValues *c = effective_context();

	if (c->user.as_text == NULL || !c->user.is_uuid)
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(&c->user.uuid);
}

PG_FUNCTION_INFO_V1(brandbos_current_tenant_uuid);
/* SQL: brandbos.current_tenant_uuid() returns uuid */
Datum
brandbos_current_tenant_uuid(PG_FUNCTION_ARGS)
{
	ContextValues *c = effective_context();

	if (c->tenant.as_text == NULL || !c->tenant.is_uuid)
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(&c->tenant.uuid);
}

PG_FUNCTION_INFO_V1(brandbos_current_app_role);
/* SQL: brandbos.current_app_role() returns text */
Datum
brandbos_current_app_role(PG_FUNCTION_ARGS)
{
	ContextValues *c = effective_context();

	if (c->app_role == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(c->app_role);
}

PG_FUNCTION_INFO_V1(brandbos_claims);
/* SQL: brandbos.claims() returns jsonb (also brandbos.jwt()) */
Datum
brandbos_claims(PG_FUNCTION_ARGS)
{
	Jsonb	   *claims = context_claims(effective_context());

	if (claims == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(claims);
}

PG_FUNCTION_INFO_V1(brandbos_claim);
/* SQL: brandbos.claim(name text) returns text */
Datum
brandbos_claim(PG_FUNCTION_ARGS)
{
	Jsonb	   *claims = context_claims(effective_context());
	char	   *name;
	JsonbValue *v;

	if (claims == NULL || PG_ARGISNULL(0))
		PG_RETURN_NULL();
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	v = brandbos_jsonb_member(claims, name);
	if (v == NULL || v->type == jbvNull)
		PG_RETURN_NULL();
	if (v->type == jbvString)
		PG_RETURN_TEXT_P(cstring_to_text_with_len(v->val.string.val, v->val.string.len));
	if (v->type == jbvNumeric)
		PG_RETURN_TEXT_P(cstring_to_text(DatumGetCString(DirectFunctionCall1(numeric_out,
																			 NumericGetDatum(v->val.numeric)))));
	if (v->type == jbvBool)
		PG_RETURN_TEXT_P(cstring_to_text(v->val.boolean ? "true" : "false"));
	/* arrays and objects: their JSON text */
	PG_RETURN_TEXT_P(cstring_to_text(JsonbToCString(NULL, v->val.binary.data, v->val.binary.len)));
}

static bool
app_role_is(ContextValues *c, const char *role)
{
	return c->app_role != NULL &&
		VARSIZE_ANY_EXHDR(c->app_role) == strlen(role) &&
		memcmp(VARDATA_ANY(c->app_role), role, strlen(role)) == 0;
}

PG_FUNCTION_INFO_V1(brandbos_is_admin);
/* SQL: brandbos.is_admin() returns boolean — app role 'admin' or 'service_role' */
Datum
brandbos_is_admin(PG_FUNCTION_ARGS)
{
	ContextValues *c = effective_context();

	PG_RETURN_BOOL(app_role_is(c, "admin") || app_role_is(c, "service_role"));
}

PG_FUNCTION_INFO_V1(brandbos_has_app_role);
/* SQL: brandbos.has_app_role(role text) returns boolean */
Datum
brandbos_has_app_role(PG_FUNCTION_ARGS)
{
	ContextValues *c = effective_context();

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(app_role_is(c, text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

PG_FUNCTION_INFO_V1(brandbos_is_org_owner);
/* SQL: brandbos.is_org_owner(org text) returns boolean — claims.org_roles[org] = 'owner' */
Datum
brandbos_is_org_owner(PG_FUNCTION_ARGS)
{
	Jsonb	   *claims = context_claims(effective_context());
	JsonbValue *roles;
	JsonbValue	k;
	JsonbValue *v;
	char	   *org;

	if (claims == NULL || PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	roles = brandbos_jsonb_member(claims, "org_roles");
	if (roles == NULL || roles->type != jbvBinary || !JsonContainerIsObject(roles->val.binary.data))
		PG_RETURN_BOOL(false);
	org = text_to_cstring(PG_GETARG_TEXT_PP(0));
	k.type = jbvString;
	k.val.string.val = org;
	k.val.string.len = strlen(org);
	v = findJsonbValueFromContainer(roles->val.binary.data, JB_FOBJECT, &k);
	PG_RETURN_BOOL(v != NULL && v->type == jbvString && v->val.string.len == 5 &&
				   memcmp(v->val.string.val, "owner", 5) == 0);
}

/* ---------------------------------------------------------------------
 * For the audit log
 * --------------------------------------------------------------------- */

void
brandbos_context_actor(const char **user_id, const char **tenant_id,
					   const char **ip, const char **user_agent)
{
	ContextValues *c = effective_context();

	*user_id = c->user.as_text ? text_to_cstring(c->user.as_text) : NULL;
	*tenant_id = c->tenant.as_text ? text_to_cstring(c->tenant.as_text) : NULL;
	*ip = (raw_ip && raw_ip[0]) ? raw_ip : NULL;
	*user_agent = (raw_user_agent && raw_user_agent[0]) ? raw_user_agent : NULL;
	if (c == &forwarded && forwarded_source != NULL)
	{
		*ip = forwarded_source->ip;
		*user_agent = forwarded_source->user_agent;
	}
}

/* ---------------------------------------------------------------------
 * RESET of the internal settings (preloaded only)
 * --------------------------------------------------------------------- */

static ProcessUtility_hook_type prev_utility_hook = NULL;

/* RESET and SET ... TO DEFAULT take the default without the check hook: refuse them here */
static void
context_utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					 ProcessUtilityContext context, ParamListInfo params,
					 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsA(parsetree, VariableSetStmt) &&
		(((VariableSetStmt *) parsetree)->kind == VAR_RESET ||
		 ((VariableSetStmt *) parsetree)->kind == VAR_SET_DEFAULT) &&
		((VariableSetStmt *) parsetree)->name != NULL &&
		strncmp(((VariableSetStmt *) parsetree)->name, "brandbos.request_", 17) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the brandbos request context cannot be reset"),
				 errhint("It ends with the transaction.")));
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/* ---------------------------------------------------------------------
 * Settings and hooks
 * --------------------------------------------------------------------- */

static void
define_context_setting(const char *name, const char *description, char **var,
					   GucStringAssignHook assign)
{
	DefineCustomStringVariable(name, description,
							   "Set only by brandbos.authenticate(), brandbos.set_context() and brandbos.set_request(), for the current transaction.",
							   var, "", PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_NO_RESET_ALL,
							   check_context_setting, assign, NULL);
}

void
brandbos_context_init(void)
{
	context_memory = AllocSetContextCreate(TopMemoryContext, "brandbos request context",
										   ALLOCSET_SMALL_SIZES);

	DefineCustomStringVariable("brandbos.tenant_claim",
							   "Token claim that names the tenant.",
							   NULL, &tenant_claim, "tenant_id", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("brandbos.trust_request_jwt_claims",
							 "Fall back to PostgREST's request.jwt.claims when no brandbos context is set.",
							 "Only for databases reached exclusively through PostgREST, which verifies the token itself.",
							 &trust_request_jwt_claims, false, PGC_SUSET, 0, NULL, NULL, NULL);

	define_context_setting("brandbos.request_user_id", "User of the current request.", &raw_user_id, assign_user_id);
	define_context_setting("brandbos.request_tenant_id", "Tenant of the current request.", &raw_tenant_id, assign_tenant_id);
	define_context_setting("brandbos.request_app_role", "Application role of the current request.", &raw_app_role, assign_app_role);
	define_context_setting("brandbos.request_claims", "Claims of the current request.", &raw_claims, assign_claims);
	define_context_setting("brandbos.request_ip", "Client address of the current request.", &raw_ip, NULL);
	define_context_setting("brandbos.request_user_agent", "User agent of the current request.", &raw_user_agent, NULL);
	context_settings_defined = true;

	RegisterXactCallback(context_xact_callback, NULL);

	if (process_shared_preload_libraries_in_progress)
	{
		prev_utility_hook = ProcessUtility_hook;
		ProcessUtility_hook = context_utility_hook;
	}
}
