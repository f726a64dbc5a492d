/*
 * citus_context.c — carries the verified request context from a Citus
 * coordinator to the shard queries of the same transaction on the workers.
 *
 * context.c keeps the context in internal settings that only brandbos's
 * writers may set; Citus never sees those writes, so without this file a
 * worker runs every shard query with no context (policies show nothing).
 *
 * Coordinator side.  When a writer (authenticate, set_context, set_request)
 * has set the context in a database where Citus is installed, it calls
 * brandbos_citus_context_forward().  That makes the transaction a Citus
 * distributed transaction now (so its distributed transaction id is known:
 * initiator node, transaction number, start stamp) and runs, through SPI,
 * exactly one statement:
 *     SET LOCAL brandbos.citus_context = '<sealed context>'
 * Citus (citus.propagate_set_commands = 'local') sends that statement text
 * to every worker connection of the transaction, and replays it on each
 * connection it opens later in the transaction.  The sealed context is
 * base64url of
 *     version | user | tenant | app role | claims | ip | user agent |
 *     role | database | initiator | transaction number | stamp | MAC
 * with HMAC-SHA-256 under a key derived from the root key (the same file on
 * every node).  It is bound to the distributed transaction, to the role
 * Citus connects to the workers as, and to the database.
 *
 * Worker side.  The setting's check hook accepts a value only from a
 * SET LOCAL statement (the utility hook lets nothing else through: no SET
 * without LOCAL, no RESET, no set_config(), no ALTER ROLE ... SET, no
 * configuration file) and only with a valid MAC.  The binding cannot be
 * checked then: Citus sends the SET before it assigns the distributed
 * transaction id.  It is checked when the context is first read, and
 * before a parallel plan starts its workers (which trust their leader):
 * the worker's distributed transaction id, its session role and its
 * database must be the ones sealed, and the stamp not older than
 * brandbos.citus_context_max_age.  Anything else is 42501.  context.c reads
 * the forwarded values only when no context was written on this node.
 * SET LOCAL ends with the transaction, so a pooled worker connection starts
 * the next one with no context; a reset inside the transaction makes the
 * context unreadable (42501), as in context.c.
 *
 * The sealed value is a bearer credential for its own transaction, so it
 * is never shown: SHOW and current_setting() return '', pg_stat_activity
 * shows the statement with the value replaced, the hooks below brandbos's
 * on a worker get the statement text with the value masked, and an
 * emit_log_hook replaces it in every message that reaches the server log
 * (log_statement, citus.log_remote_commands, errors).  What it cannot prevent is documented in the README: a client
 * that can log in to a worker as the same role and watches that worker's
 * activity could replay a value while its transaction still runs.
 */
#include "brandbos.h"
#include "base64url.h"

#include <sodium.h>

#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/catcache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#define CITUS_CONTEXT_SETTING	"brandbos.citus_context"
#define CITUS_CONTEXT_VERSION	1
#define CITUS_CONTEXT_MAC_BYTES	crypto_auth_hmacsha256_BYTES
#define CITUS_CONTEXT_FIELDS	8
#define CITUS_CONTEXT_NULL_LEN	0xFFFFFFFFu
#define HIDDEN_VALUE			"<hidden>"

/* the fields, in sealed order */
enum
{
	F_USER, F_TENANT, F_APP_ROLE, F_CLAIMS, F_IP, F_USER_AGENT, F_ROLE, F_DATABASE
};

/* a parsed, MAC-checked value: the GUC "extra" (one malloc'd block) */
typedef struct SealedContext
{
	const char *field[CITUS_CONTEXT_FIELDS];	/* NULL when absent */
	int32		initiator;
	uint64		transaction_number;
	int64		stamp;
	bool		sealed_here;	/* by this backend (brandbos_citus_context_forward) */
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* the strings */
} SealedContext;

typedef enum BindingState
{
	BINDING_UNCHECKED,
	BINDING_OK
} BindingState;

static char *citus_context_value = NULL;	/* owned by the GUC machinery */
static int	citus_context_max_age = 300;	/* seconds */

static SealedContext *current = NULL;		/* the assigned value's extra */
static BindingState binding = BINDING_UNCHECKED;
static uint64 generation = 0;
static BrandbosForwardedContext forwarded;

/* true while brandbos itself sets the value (the sender, or an accepted SET LOCAL) */
static bool accepting = false;

/* true while brandbos_citus_context_forward sets the value it sealed */
static bool sealing = false;

/* set once the setting exists */
static bool setting_defined = false;

/* the value was reset inside a running transaction: unreadable until it ends */
static bool tampered = false;

/* ---------------------------------------------------------------------
 * Sealing and opening
 * --------------------------------------------------------------------- */

static void
mac_key(unsigned char *key)
{
	brandbos_derive_secret("brandbos citus context v1", key);
}

static void
put_u32(StringInfo buf, uint32 v)
{
	unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};

	appendBinaryStringInfo(buf, (char *) b, 4);
}

static void
put_u64(StringInfo buf, uint64 v)
{
	put_u32(buf, (uint32) (v >> 32));
	put_u32(buf, (uint32) v);
}

static void
put_field(StringInfo buf, const char *s)
{
	if (s == NULL || s[0] == '\0')
	{
		put_u32(buf, CITUS_CONTEXT_NULL_LEN);
		return;
	}
	put_u32(buf, (uint32) strlen(s));
	appendBinaryStringInfo(buf, s, strlen(s));
}

static bool
get_u32(const unsigned char **p, const unsigned char *end, uint32 *v)
{
	if (end - *p < 4)
		return false;
	*v = ((uint32) (*p)[0] << 24) | ((uint32) (*p)[1] << 16) | ((uint32) (*p)[2] << 8) | (*p)[3];
	*p += 4;
	return true;
}

static bool
get_u64(const unsigned char **p, const unsigned char *end, uint64 *v)
{
	uint32		hi,
				lo;

	if (!get_u32(p, end, &hi) || !get_u32(p, end, &lo))
		return false;
	*v = ((uint64) hi << 32) | lo;
	return true;
}

/* the sealed text of the given values and binding (palloc'd) */
static char *
seal_context(const char *const *field, int32 initiator, uint64 number, int64 stamp)
{
	StringInfoData buf;
	unsigned char key[32];
	unsigned char mac[CITUS_CONTEXT_MAC_BYTES];
	char	   *out;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, CITUS_CONTEXT_VERSION);
	for (i = 0; i < CITUS_CONTEXT_FIELDS; i++)
		put_field(&buf, field[i]);
	put_u32(&buf, (uint32) initiator);
	put_u64(&buf, number);
	put_u64(&buf, (uint64) stamp);

	mac_key(key);
	crypto_auth_hmacsha256(mac, (unsigned char *) buf.data, buf.len, key);
	sodium_memzero(key, sizeof(key));
	appendBinaryStringInfo(&buf, (char *) mac, sizeof(mac));

	out = palloc(bb_b64url_encoded_len(buf.len) + 1);
	bb_b64url_encode(out, (unsigned char *) buf.data, buf.len);
	pfree(buf.data);
	return out;
}

/*
 * Open a sealed text: NULL (and *why set) when it is not one this cluster
 * sealed.  With check_mac false (a parallel worker restoring its leader's
 * accepted value) the MAC is not checked again.  The result is one malloc'd
 * block, as GUC extras must be.
 */
static SealedContext *
open_context(const char *text, bool check_mac, const char **why)
{
	size_t		len = strlen(text);
	size_t		cap = len;			/* decoded is shorter than encoded */
	unsigned char *raw = palloc(cap + 1);
	size_t		raw_len;
	const unsigned char *p,
			   *end;
	uint32		flen[CITUS_CONTEXT_FIELDS];
	const unsigned char *fstart[CITUS_CONTEXT_FIELDS];
	size_t		strings = 0;
	SealedContext *sc;
	char	   *dst;
	uint32		initiator;
	uint64		number,
				stamp;
	int			i;

	if (bb_b64url_decode(raw, cap, &raw_len, text, len) != 0 ||
		raw_len < 1 + CITUS_CONTEXT_MAC_BYTES || raw[0] != CITUS_CONTEXT_VERSION)
	{
		*why = "it is not a sealed brandbos context";
		return NULL;
	}
	end = raw + raw_len - CITUS_CONTEXT_MAC_BYTES;
	if (check_mac)
	{
		unsigned char key[32];
		int			bad;

		if (!brandbos_root_key_available())
		{
			*why = "this node has no brandbos root key";
			return NULL;
		}
		mac_key(key);
		bad = crypto_auth_hmacsha256_verify(end, raw, end - raw, key);
		sodium_memzero(key, sizeof(key));
		if (bad != 0)
		{
			*why = "its seal does not verify under this node's root key";
			return NULL;
		}
	}

	p = raw + 1;
	for (i = 0; i < CITUS_CONTEXT_FIELDS; i++)
	{
		if (!get_u32(&p, end, &flen[i]))
			goto malformed;
		fstart[i] = p;
		if (flen[i] == CITUS_CONTEXT_NULL_LEN)
			continue;
		if ((size_t) (end - p) < flen[i] || memchr(p, '\0', flen[i]) != NULL)
			goto malformed;
		p += flen[i];
		strings += flen[i] + 1;
	}
	if (!get_u32(&p, end, &initiator) || !get_u64(&p, end, &number) ||
		!get_u64(&p, end, &stamp) || p != end)
		goto malformed;

	sc = (SealedContext *) malloc(offsetof(SealedContext, data) + strings);
	if (sc == NULL)
	{
		*why = "out of memory";
		return NULL;
	}
	dst = sc->data;
	for (i = 0; i < CITUS_CONTEXT_FIELDS; i++)
	{
		if (flen[i] == CITUS_CONTEXT_NULL_LEN)
		{
			sc->field[i] = NULL;
			continue;
		}
		memcpy(dst, fstart[i], flen[i]);
		dst[flen[i]] = '\0';
		sc->field[i] = dst;
		dst += flen[i] + 1;
	}
	sc->initiator = (int32) initiator;
	sc->transaction_number = number;
	sc->stamp = (int64) stamp;
	sc->sealed_here = false;
	pfree(raw);
	return sc;

malformed:
	pfree(raw);
	*why = "it is malformed";
	return NULL;
}

/* ---------------------------------------------------------------------
 * Citus's distributed transaction
 * --------------------------------------------------------------------- */

typedef struct DistributedId
{
	int32		initiator;
	uint64		number;			/* 0: none assigned */
	int64		stamp;
	int32		local_group;	/* this node's Citus group */
} DistributedId;

/* this backend's distributed transaction id, through Citus's SQL interface */
static DistributedId
current_distributed_id(void)
{
	DistributedId id = {0, 0, 0, -1};
	bool		isnull;
	Datum		group;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT t.initiator_node_identifier, t.transaction_number, t.transaction_stamp,"
					" (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g)"
					" FROM pg_catalog.get_current_transaction_id() t", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read the Citus distributed transaction id");
	group = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);
	if (!isnull)
		id.local_group = DatumGetInt32(group);
	id.initiator = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (!isnull)
		id.number = (uint64) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (!isnull && id.number != 0)
		id.stamp = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (isnull)
		id.number = 0;
	SPI_finish();
	return id;
}

/* make this transaction a Citus distributed transaction, so it has an id now */
static void
start_distributed_transaction(void)
{
	static void (*use_coordinated_transaction) (void) = NULL;

	if (use_coordinated_transaction == NULL)
		use_coordinated_transaction = (void (*) (void))
			load_external_function("$libdir/citus", "UseCoordinatedTransaction", true, NULL);
	use_coordinated_transaction();
}

/* ---------------------------------------------------------------------
 * Coordinator: sending the context
 * --------------------------------------------------------------------- */

void
brandbos_citus_context_forward(const char *user_id, const char *tenant_id,
							   const char *app_role, const char *claims,
							   const char *ip, const char *user_agent)
{
	const char *field[CITUS_CONTEXT_FIELDS];
	DistributedId id;
	char	   *sealed;
	char	   *stmt;
	const char *propagate;

	if (!setting_defined || !IsTransactionBlock() || !brandbos_citus_installed())
		return;

	start_distributed_transaction();
	id = current_distributed_id();
	if (!brandbos_citus_ledger_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("brandbos must be in shared_preload_libraries to forward the request context to Citus workers")));
	if (id.number == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("Citus gave this transaction no distributed transaction id")));

	field[F_USER] = user_id;
	field[F_TENANT] = tenant_id;
	field[F_APP_ROLE] = app_role;
	field[F_CLAIMS] = claims;
	field[F_IP] = ip;
	field[F_USER_AGENT] = user_agent;
	field[F_ROLE] = GetUserNameFromId(GetUserId(), false);
	field[F_DATABASE] = get_database_name(MyDatabaseId);
	sealed = seal_context(field, id.initiator, id.number, id.stamp);

	/* exactly this one statement: Citus forwards the statement text as it is */
	stmt = psprintf("SET LOCAL " CITUS_CONTEXT_SETTING " = '%s'", sealed);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * Citus forwards it only with propagate_set_commands = 'local' (a user
	 * setting): without, the workers would run the request with no actor.
	 */
	propagate = GetConfigOption("citus.propagate_set_commands", true, false);
	if (propagate == NULL || strcmp(propagate, "local") != 0)
	{
		if (SPI_execute("SET LOCAL citus.propagate_set_commands = 'local'", false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not set citus.propagate_set_commands");
	}
	accepting = true;
	sealing = true;
	PG_TRY();
	{
		if (SPI_execute(stmt, false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not forward the brandbos request context to Citus");
	}
	PG_FINALLY();
	{
		accepting = false;
		sealing = false;
	}
	PG_END_TRY();
	SPI_finish();
	/* when this transaction ends, its id has ended here: no copy of the value is taken again */
	brandbos_citus_ledger_hold(id.initiator, id.number, id.stamp, true);
	pfree(stmt);
	pfree(sealed);
}

/* ---------------------------------------------------------------------
 * Worker: the setting and its binding
 * --------------------------------------------------------------------- */

static bool
check_citus_context(char **newval, void **extra, GucSource source)
{
	SealedContext *sc;
	const char *why = NULL;

	if (*newval == NULL || (*newval)[0] == '\0')
	{
		if (source == PGC_S_DEFAULT && !setting_defined)
			return true;
	}
	else if (accepting || InitializingParallelWorker)
	{
		sc = open_context(*newval, !InitializingParallelWorker, &why);
		if (sc != NULL)
		{
			sc->sealed_here = sealing;
			*extra = sc;
			return true;
		}
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("the brandbos request context sent to this node was refused");
		GUC_check_errdetail("It was refused because %s.", why);
		return false;
	}
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("brandbos.citus_context can only be set by brandbos, with SET LOCAL");
	GUC_check_errhint("Set the request context on the coordinator with brandbos.authenticate() or brandbos.set_context(); it reaches the workers with the transaction.");
	return false;
}

static void
assign_citus_context(const char *newval, void *extra)
{
	/* a reset while the transaction runs (no check hook) hides the context: refuse to read */
	if (setting_defined && !accepting && !InitializingParallelWorker && IsTransactionState() &&
		current != NULL && extra == NULL)
		tampered = true;
	current = (SealedContext *) extra;
	binding = BINDING_UNCHECKED;
	generation++;
}

static const char *
show_citus_context(void)
{
	return "";
}

static void
refuse_binding(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("the brandbos request context on this node does not belong to this transaction"),
			 errdetail("%s", why),
			 errhint("Set the request context on the coordinator; do not connect to the workers.")));
}

/*
 * Citus sends assign_distributed_transaction_id() without a schema, in the
 * same statement text as the forwarded value: a function of that name in a
 * schema of the role's search_path would run in every worker connection,
 * inside the request, with its context.  Refuse the context while one
 * exists outside pg_catalog.
 */
static bool
citus_call_shadowed(void)
{
	CatCList   *list = SearchSysCacheList1(PROCNAMEARGSNSP,
										   CStringGetDatum("assign_distributed_transaction_id"));
	bool		shadowed = false;
	int			i;

	for (i = 0; i < list->n_members; i++)
	{
		Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(&list->members[i]->tuple);

		if (proc->pronamespace != PG_CATALOG_NAMESPACE)
			shadowed = true;
	}
	ReleaseSysCacheList(list);
	return shadowed;
}

/*
 * Check that the assigned value was sealed for this transaction, role and
 * database, that the transaction has not ended here, and hold it (so that
 * it has ended here once this transaction ends).
 */
static void
check_binding(void)
{
	DistributedId id;
	TimestampTz now = GetCurrentTimestamp();

	if (current == NULL || binding == BINDING_OK)
		return;
	if (IsParallelWorker())
	{
		/* the leader checked it (and holds it), or the workers do not use it */
		if (!brandbos_citus_ledger_leader_holds(current->initiator, current->transaction_number,
												current->stamp))
			refuse_binding("The leader of this parallel worker did not check it.");
		binding = BINDING_OK;
		return;
	}
	if (!brandbos_citus_ledger_available())
		refuse_binding("brandbos is not in shared_preload_libraries on this node.");
	if (citus_call_shadowed())
		refuse_binding("A function named assign_distributed_transaction_id exists outside pg_catalog; Citus calls that name unqualified.");
	id = current_distributed_id();
	if (id.number == 0 || id.initiator != current->initiator ||
		id.number != current->transaction_number || id.stamp != current->stamp)
		refuse_binding("It was sealed for another distributed transaction.");
	if (id.initiator == id.local_group && !current->sealed_here)
		refuse_binding("It was sealed on this node, by another session.");
	if (strcmp(current->field[F_ROLE] ? current->field[F_ROLE] : "",
			   GetUserNameFromId(GetSessionUserId(), false)) != 0)
		refuse_binding("It was sealed for another role.");
	if (strcmp(current->field[F_DATABASE] ? current->field[F_DATABASE] : "",
			   get_database_name(MyDatabaseId)) != 0)
		refuse_binding("It was sealed for another database.");
	if (TimestampDifferenceExceeds(current->stamp, now, citus_context_max_age * 1000) ||
		TimestampDifferenceExceeds(now, current->stamp, 300 * 1000))
		refuse_binding("Its distributed transaction started outside brandbos.citus_context_max_age.");
	if (brandbos_citus_ledger_ended(current->initiator, current->transaction_number, current->stamp))
		refuse_binding("Its distributed transaction has ended.");
	brandbos_citus_ledger_hold(current->initiator, current->transaction_number, current->stamp, true);
	binding = BINDING_OK;
}

bool
brandbos_citus_context_forwarded(void)
{
	return current != NULL && !current->sealed_here;
}

const BrandbosForwardedContext *
brandbos_citus_context_current(void)
{
	if (tampered)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the brandbos request context was changed outside brandbos"),
				 errdetail("The context forwarded to this node was reset in this transaction.")));
	if (current == NULL)
		return NULL;
	check_binding();
	forwarded.user_id = current->field[F_USER];
	forwarded.tenant_id = current->field[F_TENANT];
	forwarded.app_role = current->field[F_APP_ROLE];
	forwarded.claims = current->field[F_CLAIMS];
	forwarded.ip = current->field[F_IP];
	forwarded.user_agent = current->field[F_USER_AGENT];
	forwarded.generation = generation;
	return &forwarded;
}

static void
citus_context_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		tampered = false;
}

/* ---------------------------------------------------------------------
 * Keeping the value out of sight
 * --------------------------------------------------------------------- */

/* s with every quoted value after "brandbos.citus_context" replaced; NULL when none */
static char *
hide_values(const char *s)
{
	StringInfoData buf;
	const char *p = s;
	const char *hit;
	bool		changed = false;

	if (s == NULL || strstr(s, CITUS_CONTEXT_SETTING) == NULL)
		return NULL;
	initStringInfo(&buf);
	while ((hit = strstr(p, CITUS_CONTEXT_SETTING)) != NULL)
	{
		const char *open = strchr(hit, '\'');
		const char *close = open ? strchr(open + 1, '\'') : NULL;

		if (open == NULL)
			break;
		if (close == NULL)
			close = open + strlen(open);	/* cut short: hide the rest */
		appendBinaryStringInfo(&buf, p, open + 1 - p);
		appendStringInfoString(&buf, HIDDEN_VALUE);
		p = close;
		changed = true;
		if (*p == '\0')
			break;
	}
	appendStringInfoString(&buf, p);
	if (!changed)
	{
		pfree(buf.data);
		return NULL;
	}
	return buf.data;
}

/*
 * A copy of s with every quoted value after "brandbos.citus_context" masked
 * with '*', keeping its length (statement locations into the text stay
 * right); NULL when there is none.
 */
static char *
mask_values(const char *s)
{
	char	   *copy;
	char	   *p;
	char	   *hit;
	bool		changed = false;

	if (s == NULL || strstr(s, CITUS_CONTEXT_SETTING) == NULL)
		return NULL;
	copy = pstrdup(s);
	p = copy;
	while ((hit = strstr(p, CITUS_CONTEXT_SETTING)) != NULL)
	{
		char	   *open = strchr(hit, '\'');
		char	   *q;

		if (open == NULL)
			break;
		for (q = open + 1; *q && *q != '\''; q++)
			*q = '*';
		changed = true;
		if (*q == '\0')
			break;
		p = q + 1;
	}
	if (!changed)
	{
		pfree(copy);
		return NULL;
	}
	return copy;
}

static void
hide_in(char **field)
{
	char	   *hidden = hide_values(*field);

	if (hidden != NULL)
		*field = hidden;
}

static emit_log_hook_type prev_emit_log_hook = NULL;

static void
citus_context_emit_log(ErrorData *edata)
{
	hide_in(&edata->message);
	hide_in(&edata->detail);
	hide_in(&edata->detail_log);
	hide_in(&edata->context);
	hide_in(&edata->internalquery);
	if (debug_query_string != NULL && strstr(debug_query_string, CITUS_CONTEXT_SETTING) != NULL)
	{
		edata->hide_stmt = true;
		edata->cursorpos = 0;
	}
	if (edata->internalquery == NULL)
		edata->internalpos = 0;
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

static ProcessUtility_hook_type prev_utility_hook = NULL;

static void
call_next_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				  ProcessUtilityContext context, ParamListInfo params,
				  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/* SET LOCAL brandbos.citus_context = '...' is the only way in; RESET and SET without LOCAL are refused */
static void
citus_context_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	VariableSetStmt *set = (VariableSetStmt *) pstmt->utilityStmt;
	bool		was_accepting = accepting;

	if (!IsA(set, VariableSetStmt) || set->name == NULL ||
		pg_strcasecmp(set->name, CITUS_CONTEXT_SETTING) != 0)
	{
		call_next_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		return;
	}
	if (set->kind != VAR_SET_VALUE || !set->is_local)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("brandbos.citus_context can only be set with SET LOCAL"),
				 errhint("It is set by brandbos on the coordinator and ends with the transaction.")));
	/*
	 * A value that arrived as a statement (on a worker) goes on down the
	 * chain in a masked copy of the text: the setting is taken from the
	 * parse tree, and what records statement texts (pg_stat_statements,
	 * loaded after Citus and before brandbos) keeps no sealed value.  Our
	 * own SET on the coordinator keeps its text: Citus forwards that text.
	 */
	if (!was_accepting)
	{
		char	   *masked = mask_values(queryString);

		if (masked != NULL)
		{
			/*
			 * A statement from a client (a worker's Citus connection): the
			 * whole text is parsed already, so mask the value in the text
			 * itself too.  The statements after it in the same text (Citus's
			 * assign_distributed_transaction_id()) and current_query() then
			 * never see it.
			 */
			if (context == PROCESS_UTILITY_TOPLEVEL && debug_query_string != NULL &&
				strlen(debug_query_string) == strlen(masked) && queryString == debug_query_string)
				memcpy(unconstify(char *, debug_query_string), masked, strlen(masked));
			queryString = masked;
		}
	}
	accepting = true;
	PG_TRY();
	{
		call_next_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		accepting = was_accepting;
	}
	PG_END_TRY();

	/* received: whether it is read or not, its transaction has ended here when this one ends */
	if (!was_accepting && current != NULL && brandbos_citus_ledger_available())
		brandbos_citus_ledger_hold(current->initiator, current->transaction_number, current->stamp, false);

	/* a worker received it as a statement of its own: show it without the value */
	if (!was_accepting && context == PROCESS_UTILITY_TOPLEVEL && debug_query_string != NULL)
		pgstat_report_activity(STATE_RUNNING, debug_query_string);
}

static ExecutorStart_hook_type prev_executor_start = NULL;

/*
 * Before a parallel plan starts its workers, check the binding in the
 * leader: the workers trust the value they restore from it.  Other
 * statements check it when they first read the context (not here: Citus
 * runs assign_distributed_transaction_id() right after the SET).
 */
static void
citus_context_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (current != NULL && binding == BINDING_UNCHECKED && !IsParallelWorker() &&
		queryDesc->plannedstmt->parallelModeNeeded && !brandbos_context_written())
		check_binding();
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

void
brandbos_citus_context_init(void)
{
	DefineCustomStringVariable(CITUS_CONTEXT_SETTING,
							   "The request context forwarded from a Citus coordinator (internal).",
							   "Set only by brandbos, with SET LOCAL; never shown.",
							   &citus_context_value, "", PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_NO_RESET_ALL,
							   check_citus_context, assign_citus_context, show_citus_context);
	DefineCustomIntVariable("brandbos.citus_context_max_age",
							"Oldest distributed transaction a forwarded request context is accepted for.",
							NULL, &citus_context_max_age, 300, 1, 24 * 3600,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	setting_defined = true;
	RegisterXactCallback(citus_context_xact_callback, NULL);

	if (process_shared_preload_libraries_in_progress)
	{
		prev_utility_hook = ProcessUtility_hook;
		ProcessUtility_hook = citus_context_utility;
		prev_executor_start = ExecutorStart_hook;
		ExecutorStart_hook = citus_context_executor_start;
		prev_emit_log_hook = emit_log_hook;
		emit_log_hook = citus_context_emit_log;
	}
}
