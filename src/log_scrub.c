/*
 * log_scrub.c — keeps plaintext of protected columns out of errors and the
 * server log.
 *
 * PostgreSQL decorates a message with text that can hold the value being
 * written: the CONTEXT of an error during COPY FROM quotes the input line or
 * field, the STATEMENT line (log_min_error_statement) and the error position
 * repeat the statement with its literals, and an internal query or a
 * PL/pgSQL context can repeat them again.  Installed only when brandbos is
 * in shared_preload_libraries, an emit_log_hook removes all of these from
 * every message (any level) raised while the current transaction writes a
 * protected table, before the message reaches the log or the client:
 *   - the statement text is hidden (hide_stmt; also from csvlog/jsonlog);
 *   - the context is replaced by one line saying it was hidden, preceded by
 *     "COPY <table>, line <n>[, column <c>]" when the message comes from a
 *     COPY FROM, so the failing line can still be found;
 *   - the internal query and both error positions are dropped;
 *   - an invalid byte sequence error no longer quotes the offending bytes.
 * The message, detail and hint are kept: the errors PostgreSQL raises about
 * a row (CHECK, NOT NULL, unique and exclusion violations) are raised after
 * the BEFORE trigger has sealed the row, so they show envelopes.
 *
 * "The transaction writes a protected table" is a backend flag, set
 *   - by post_parse_analyze_hook and ExecutorStart_hook when a result
 *     relation is protected (planning and execution errors),
 *   - by ProcessUtility_hook before COPY FROM into a protected table runs
 *     and before EXECUTE of a prepared statement that writes one (line
 *     parsing and parameter errors),
 * and cleared at the end of the transaction: later messages of the same
 * transaction are scrubbed too.  Errors raised while PostgreSQL analyses a
 * statement happen before any of these hooks; they are caught by asking the
 * lock manager whether this transaction holds ROW EXCLUSIVE on a protected
 * table (parse analysis takes it on the target before it looks at a value).
 *
 * A table is protected when one of its triggers runs brandbos.protect_trigger,
 * recognised by the function's OID (looked up once per backend: the C
 * function with symbol brandbos_protect_trigger in the extension's schema).
 * The backend keeps a sorted array of protected relation OIDs, loaded by one
 * scan of pg_trigger in the backend's start-up transaction (so even the
 * first statement of a session is covered) and kept current by relcache
 * invalidation: an invalidated relation is queued and rechecked with an
 * index lookup at the next statement.  The emit hook itself never touches
 * the catalogs (it runs inside error recovery): it reads the array, the
 * queue and the local lock table only, and treats queued relations as
 * protected.  Per statement the cost is a binary search per result
 * relation; no catalog access unless something was invalidated.
 *
 * brandbos.scrub_errors (superuser) chooses: protected (default), all (every
 * message of every statement, for applications that send secrets as
 * literals, where a syntax error is the remaining gap) or off.
 */
#include "brandbos.h"

#include <sodium.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "commands/copy.h"
#include "commands/copyfrom_internal.h"
#include "commands/extension.h"
#include "commands/prepare.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "parser/parsetree.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/syscache.h"

#define PROTECT_TRIGGER_SYMBOL	"brandbos_protect_trigger"
#define PROTECT_TRIGGER_NAME	"protect_trigger"
#define PENDING_MAX				64

typedef enum ScrubMode
{
	SCRUB_OFF,
	SCRUB_PROTECTED,
	SCRUB_ALL
} ScrubMode;

static const struct config_enum_entry scrub_mode_options[] = {
	{"off", SCRUB_OFF, false},
	{"protected", SCRUB_PROTECTED, false},
	{"all", SCRUB_ALL, false},
	{NULL, 0, false}
};

static int	scrub_mode = SCRUB_PROTECTED;

/* set while the current transaction writes (or set out to write) a protected table */
static bool xact_writes_protected = false;

/* "COPY t, line n[, column c]" of the COPY FROM message being reported, or "" */
static char copy_summary[3 * NAMEDATALEN + 64];

/* ---- which relations are protected (see the file header) ------------- */

static MemoryContext scrub_mcxt = NULL;
static Oid	protect_fn = InvalidOid;
static uint32 protect_fn_hash = 0;
static bool protect_fn_known = false;
static bool prot_loaded = false;	/* prot_relids lists every protected relation */
static Oid *prot_relids = NULL;		/* sorted */
static int	prot_n = 0;
static int	prot_cap = 0;
static Oid	pending[PENDING_MAX];	/* invalidated since they were last checked */
static int	pending_n = 0;
static bool startup_load_done = false;

static emit_log_hook_type prev_emit_log_hook = NULL;
static post_parse_analyze_hook_type prev_analyze_hook = NULL;
static ExecutorStart_hook_type prev_executor_start = NULL;
static ProcessUtility_hook_type prev_utility_hook = NULL;

static int
scrub_oid_cmp(const void *a, const void *b)
{
	Oid			x = *(const Oid *) a;
	Oid			y = *(const Oid *) b;

	return (x > y) - (x < y);
}

static bool
in_prot_relids(Oid relid)
{
	return prot_n > 0 &&
		bsearch(&relid, prot_relids, prot_n, sizeof(Oid), scrub_oid_cmp) != NULL;
}

static bool
in_pending(Oid relid)
{
	int			i;

	for (i = 0; i < pending_n; i++)
		if (pending[i] == relid)
			return true;
	return false;
}

/* protected, or invalidated and not rechecked yet (then assume it is) */
static bool
maybe_protected(Oid relid)
{
	return OidIsValid(relid) && (in_prot_relids(relid) || in_pending(relid));
}

static void
prot_grow(void)
{
	int			newcap = prot_cap > 0 ? prot_cap * 2 : 16;

	prot_relids = prot_relids
		? repalloc(prot_relids, newcap * sizeof(Oid))
		: MemoryContextAlloc(scrub_mcxt, newcap * sizeof(Oid));
	prot_cap = newcap;
}

static void
prot_add(Oid relid)
{
	if (in_prot_relids(relid))
		return;
	if (prot_n == prot_cap)
		prot_grow();
	prot_relids[prot_n++] = relid;
	qsort(prot_relids, prot_n, sizeof(Oid), scrub_oid_cmp);
}

static void
prot_remove(Oid relid)
{
	Oid		   *hit;

	if (prot_n == 0)
		return;
	hit = bsearch(&relid, prot_relids, prot_n, sizeof(Oid), scrub_oid_cmp);
	if (hit == NULL)
		return;
	memmove(hit, hit + 1, (prot_relids + prot_n - (hit + 1)) * sizeof(Oid));
	prot_n--;
}

/* a relation changed: queue it for a recheck, or reload everything */
void
brandbos_log_scrub_relcache_changed(Oid relid)
{
	if (!OidIsValid(relid) || pending_n == PENDING_MAX)
	{
		prot_loaded = false;
		return;
	}
	if (!in_pending(relid))
		pending[pending_n++] = relid;
}

/*
 * Our function was dropped or replaced: look it up and reload.  Where there
 * was none, one may have appeared: look it up again (no table uses it yet,
 * a trigger on one will queue that table).
 */
static void
scrub_proc_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	if (!OidIsValid(protect_fn))
		protect_fn_known = false;
	else if (hashvalue == 0 || hashvalue == protect_fn_hash)
	{
		protect_fn_known = false;
		prot_loaded = false;
	}
}

/* OID of brandbos.protect_trigger in this database, by identity, or InvalidOid */
static Oid
lookup_protect_fn(void)
{
	Oid			extoid = get_extension_oid("brandbos", true);
	Oid			nsp = InvalidOid;
	Oid			fn;
	Relation	extrel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	bool		ours = false;

	if (!OidIsValid(extoid))
		return InvalidOid;
	extrel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(extrel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(extrel, AccessShareLock);
	if (!OidIsValid(nsp))
		return InvalidOid;

	fn = GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid,
						 CStringGetDatum(PROTECT_TRIGGER_NAME),
						 PointerGetDatum(buildoidvector(NULL, 0)),
						 ObjectIdGetDatum(nsp));
	if (!OidIsValid(fn))
		return InvalidOid;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		src = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);

		ours = ((Form_pg_proc) GETSTRUCT(tup))->prolang == ClanguageId && !isnull &&
			strcmp(TextDatumGetCString(src), PROTECT_TRIGGER_SYMBOL) == 0;
		ReleaseSysCache(tup);
	}
	return ours ? fn : InvalidOid;
}

/* does one of relid's triggers run our function? (pg_trigger index lookup) */
static bool
has_protect_trigger(Relation trigrel, Oid relid)
{
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	bool		found = false;

	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(trigrel, TriggerRelidNameIndexId, true, NULL, 1, &key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
		found = ((Form_pg_trigger) GETSTRUCT(tup))->tgfoid == protect_fn;
	systable_endscan(scan);
	return found;
}

/*
 * Replace the array by one scan of pg_trigger.  The old array stays in place
 * until the new one is complete, so an error (a cancel, say) leaves the old
 * one and a reload due.  Relations queued before the scan are covered by it;
 * those queued while it runs stay queued.
 */
static void
load_all(Relation trigrel)
{
	int			queued_before = pending_n;
	int			cap = Max(prot_cap, 16);
	int			n = 0;
	int			i,
				m;
	Oid		   *list = MemoryContextAlloc(scrub_mcxt, cap * sizeof(Oid));

	prot_loaded = true;			/* an invalidation during the scan clears it again */
	PG_TRY();
	{
		SysScanDesc scan;
		HeapTuple	tup;

		scan = systable_beginscan(trigrel, InvalidOid, false, NULL, 0, NULL);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			Form_pg_trigger trig = (Form_pg_trigger) GETSTRUCT(tup);

			if (trig->tgfoid != protect_fn)
				continue;
			if (n == cap)
			{
				cap *= 2;
				list = repalloc(list, cap * sizeof(Oid));
			}
			list[n++] = trig->tgrelid;
		}
		systable_endscan(scan);
	}
	PG_CATCH();
	{
		prot_loaded = false;
		pfree(list);
		PG_RE_THROW();
	}
	PG_END_TRY();

	qsort(list, n, sizeof(Oid), scrub_oid_cmp);
	for (i = 0, m = 0; i < n; i++)
		if (m == 0 || list[m - 1] != list[i])
			list[m++] = list[i];
	if (prot_relids)
		pfree(prot_relids);
	prot_relids = list;
	prot_n = m;
	prot_cap = cap;
	if (queued_before > 0)
	{
		memmove(pending, pending + queued_before, (pending_n - queued_before) * sizeof(Oid));
		pending_n -= queued_before;
	}
}

/*
 * Bring the array up to date.  Called where catalog access is allowed: the
 * start-up transaction and the beginning of each statement.  Nothing to do
 * (two tests) unless something was invalidated.
 */
static void
refresh_protected(void)
{
	Relation	trigrel;

	if (prot_loaded && pending_n == 0)
		return;
	if (!IsTransactionState() || !OidIsValid(MyDatabaseId))
		return;

	if (!protect_fn_known)
	{
		Oid			old_fn = protect_fn;

		protect_fn = lookup_protect_fn();
		if (protect_fn != old_fn)
			prot_loaded = false;	/* tables may already use the new one */
		protect_fn_hash = OidIsValid(protect_fn)
			? GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(protect_fn)) : 0;
		protect_fn_known = true;
	}
	if (!OidIsValid(protect_fn))
	{
		prot_n = 0;
		pending_n = 0;
		prot_loaded = true;
		return;
	}

	/* (opening it may deliver invalidations: decide what to do afterwards) */
	trigrel = table_open(TriggerRelationId, AccessShareLock);
	if (!prot_loaded)
		load_all(trigrel);
	else
	{
		/* a relation stays queued (and so counts as protected) until checked */
		while (pending_n > 0)
		{
			Oid			relid = pending[0];

			if (has_protect_trigger(trigrel, relid))
				prot_add(relid);
			else
				prot_remove(relid);
			if (pending_n > 0 && pending[0] == relid)
			{
				memmove(pending, pending + 1, (pending_n - 1) * sizeof(Oid));
				pending_n--;
			}
		}
	}
	table_close(trigrel, AccessShareLock);
}

/* does this transaction hold ROW EXCLUSIVE on a (maybe) protected table? */
static bool
holds_write_lock_on_protected(void)
{
	LOCKTAG		tag;
	int			i;

	if (MyProc == NULL || !OidIsValid(MyDatabaseId))
		return false;
	for (i = 0; i < prot_n + pending_n; i++)
	{
		Oid			relid = i < prot_n ? prot_relids[i] : pending[i - prot_n];

		SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
#if PG_VERSION_NUM >= 170000
		if (LockHeldByMe(&tag, RowExclusiveLock, false))
#else
		if (LockHeldByMe(&tag, RowExclusiveLock))
#endif
			return true;
	}
	return false;
}

/* ---- marking the transaction ------------------------------------------ */

static bool
query_writes_protected(Query *query)
{
	ListCell   *lc;

	if (query->resultRelation > 0 &&
		maybe_protected(rt_fetch(query->resultRelation, query->rtable)->relid))
		return true;
	if (query->hasModifyingCTE)
		foreach(lc, query->cteList)
		{
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

			if (IsA(cte->ctequery, Query) && query_writes_protected((Query *) cte->ctequery))
				return true;
		}
	return false;
}

static void
scrub_analyze_hook(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_analyze_hook)
		prev_analyze_hook(pstate, query, jstate);
	if (scrub_mode != SCRUB_PROTECTED)
		return;
	refresh_protected();
	if (!xact_writes_protected &&
		(query->resultRelation > 0 || query->hasModifyingCTE) &&
		query_writes_protected(query))
		xact_writes_protected = true;
}

static void
scrub_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (scrub_mode == SCRUB_PROTECTED && !xact_writes_protected &&
		queryDesc->plannedstmt->resultRelations != NIL)
	{
		ListCell   *lc;

		refresh_protected();
		foreach(lc, queryDesc->plannedstmt->resultRelations)
		{
			RangeTblEntry *rte = rt_fetch(lfirst_int(lc), queryDesc->plannedstmt->rtable);

			if (maybe_protected(rte->relid))
			{
				xact_writes_protected = true;
				break;
			}
		}
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/* does a prepared statement write a protected table? */
static bool
prepared_writes_protected(const char *name)
{
	PreparedStatement *ps = FetchPreparedStatement(name, false);
	CachedPlanSource *psrc;
	bool		writes;
	ListCell   *lc;

	if (ps == NULL)
		return false;
	psrc = ps->plansource;
	writes = psrc->commandTag != CMDTAG_SELECT;
	if (!writes)
		foreach(lc, psrc->query_list)
			if (lfirst_node(Query, lc)->hasModifyingCTE)
				writes = true;
	if (!writes)
		return false;
	foreach(lc, psrc->relationOids)
		if (maybe_protected(lfirst_oid(lc)))
			return true;
	return false;
}

/*
 * Below CopyFrom's own error context callback: notes which line and column
 * of which table the message is about, for the rewritten context.
 */
static void
copy_summary_callback(void *arg)
{
	ErrorContextCallback *e;

	copy_summary[0] = '\0';
	for (e = error_context_stack; e != NULL; e = e->previous)
	{
		if (e->callback == CopyFromErrorCallback && e->arg != NULL)
		{
			CopyFromState cstate = (CopyFromState) e->arg;

			if (cstate->cur_relname == NULL)
				break;
			if (cstate->cur_attname)
				snprintf(copy_summary, sizeof(copy_summary), "COPY %s, line " UINT64_FORMAT ", column %s",
						 cstate->cur_relname, cstate->cur_lineno, cstate->cur_attname);
			else
				snprintf(copy_summary, sizeof(copy_summary), "COPY %s, line " UINT64_FORMAT,
						 cstate->cur_relname, cstate->cur_lineno);
			break;
		}
	}
}

static void
scrub_utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params,
				   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		copy_summary_on = false;
	ErrorContextCallback errcallback;

	if (scrub_mode != SCRUB_OFF && IsA(parsetree, CopyStmt) &&
		((CopyStmt *) parsetree)->is_from && ((CopyStmt *) parsetree)->relation != NULL)
	{
		/* before DoCopy: errors parsing the first line are covered too */
		if (scrub_mode == SCRUB_PROTECTED)
		{
			refresh_protected();
			if (maybe_protected(RangeVarGetRelid(((CopyStmt *) parsetree)->relation, NoLock, true)))
				xact_writes_protected = true;
		}
		copy_summary_on = scrub_mode == SCRUB_ALL || xact_writes_protected;
	}
	else if (scrub_mode == SCRUB_PROTECTED && !xact_writes_protected && IsA(parsetree, ExecuteStmt))
	{
		refresh_protected();
		if (prepared_writes_protected(((ExecuteStmt *) parsetree)->name))
			xact_writes_protected = true;
	}

	if (copy_summary_on)
	{
		errcallback.callback = copy_summary_callback;
		errcallback.arg = NULL;
		errcallback.previous = error_context_stack;
		error_context_stack = &errcallback;
	}

	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);

	/* (on an error, the error handling resets error_context_stack) */
	if (copy_summary_on)
	{
		error_context_stack = errcallback.previous;
		copy_summary[0] = '\0';
	}
}

static void
scrub_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			/* the start-up transaction of a session: load before its first statement */
			if (!startup_load_done && MyBackendType == B_BACKEND)
			{
				startup_load_done = true;
				refresh_protected();
			}
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			xact_writes_protected = false;
			copy_summary[0] = '\0';
			break;
		default:
			break;
	}
}

/* an error caught by a savepoint or an exception block was not reported */
static void
scrub_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		copy_summary[0] = '\0';
}

/* ---- the emit hook ------------------------------------------------------ */

/* overwrite a string of the message that may hold plaintext, and free it */
static void
wipe_free(char *s)
{
	if (s == NULL)
		return;
	sodium_memzero(s, strlen(s));
	pfree(s);
}

static void
scrub_message(ErrorData *edata)
{
	/* the message's strings live in its assoc_context and are freed with it */
	MemoryContext old = MemoryContextSwitchTo(edata->assoc_context);

	edata->hide_stmt = true;
	if (edata->context != NULL)
	{
		const char *note = scrub_mode == SCRUB_ALL
			? "brandbos: context hidden (brandbos.scrub_errors = all)"
			: "brandbos: context hidden because the transaction writes a protected table";

		wipe_free(edata->context);
		edata->context = copy_summary[0] != '\0'
			? psprintf("%s\n%s", copy_summary, note)
			: pstrdup(note);
	}
	wipe_free(edata->internalquery);
	edata->internalquery = NULL;
	edata->internalpos = 0;
	edata->cursorpos = 0;
	/* these quote the bytes of the input that do not convert */
	if (edata->sqlerrcode == ERRCODE_CHARACTER_NOT_IN_REPERTOIRE)
	{
		wipe_free(edata->message);
		edata->message = psprintf("invalid byte sequence for encoding \"%s\" (bytes hidden by brandbos)",
								  GetDatabaseEncodingName());
	}
	else if (edata->sqlerrcode == ERRCODE_UNTRANSLATABLE_CHARACTER)
	{
		wipe_free(edata->message);
		edata->message = pstrdup("character with no equivalent in the other encoding (bytes hidden by brandbos)");
	}
	copy_summary[0] = '\0';
	MemoryContextSwitchTo(old);
}

/* is this message raised while the transaction writes (or may write) a protected table? */
static bool
writing_protected(ErrorData *edata)
{
	if (xact_writes_protected)
		return true;
	/*
	 * The array is due for a reload (after an invalidation reset or a full
	 * queue): until this statement's analysis reloads it, a table may have
	 * become protected unseen, so an error raised before then is scrubbed.
	 */
	if (!prot_loaded && startup_load_done && MyBackendType == B_BACKEND &&
		edata->elevel >= ERROR)
		return true;
	return holds_write_lock_on_protected();
}

static void
scrub_emit_log_hook(ErrorData *edata)
{
	if (scrub_mode == SCRUB_ALL ||
		(scrub_mode == SCRUB_PROTECTED && writing_protected(edata)))
		scrub_message(edata);
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/* ---- set-up ------------------------------------------------------------- */

void
brandbos_log_scrub_init(void)
{
	DefineCustomEnumVariable("brandbos.scrub_errors",
							 "Which messages lose their statement text, context and internal query.",
							 "protected: messages of a transaction that writes a protected table; "
							 "all: every message; off: none.",
							 &scrub_mode, SCRUB_PROTECTED, scrub_mode_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	scrub_mcxt = AllocSetContextCreate(TopMemoryContext, "brandbos log scrub",
									   ALLOCSET_SMALL_SIZES);
	CacheRegisterSyscacheCallback(PROCOID, scrub_proc_callback, (Datum) 0);
	RegisterXactCallback(scrub_xact_callback, NULL);
	RegisterSubXactCallback(scrub_subxact_callback, NULL);

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = scrub_emit_log_hook;
	prev_analyze_hook = post_parse_analyze_hook;
	post_parse_analyze_hook = scrub_analyze_hook;
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = scrub_executor_start;
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = scrub_utility_hook;
}
