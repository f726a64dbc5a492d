/*
 * audit_writer.c — the write path of the audit log.
 *
 * Every row is written by brandbos_audit_append in the caller's own
 * transaction: it takes the next id, hashes the row (leaf) and inserts it.
 * Writers share no lock, so they never wait on each other; ordering rows
 * into the hash chain is the sealer's job, after commit (audit_sealer.c).
 *
 * Invariant the sealer relies on: a transaction has its top-level xid and
 * holds ROW EXCLUSIVE on brandbos.audit_entries before it takes an audit
 * id, and keeps both until it ends.  The lock is how the sealer tells the
 * transactions that may still commit an audit row from every other open
 * transaction (audit_sealer.c); it is the lock the INSERT takes anyway
 * (a fast-path lock that conflicts with no other writer's), only taken
 * before nextval instead of after it.
 *
 * Rows are never updated: the block that seals a row is found from the
 * blocks' id ranges (the brandbos.audit_log view).
 *
 * Also here: the C row trigger installed by enable_audit (old row, new row
 * and changed columns as jsonb; protected columns as "[protected]"), the
 * TRUNCATE statement trigger, and the append-only guard of the audit tables.
 */
#include "brandbos.h"
#include "merkle.h"
#include "audit_table_cache.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_inherits.h"
#include "utils/snapmgr.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/xid8.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#define AUDIT_TRIGGER_NAME		"zz_brandbos_audit"
#define AUDIT_TRUNCATE_NAME		"zz_brandbos_audit_truncate"

bool		brandbos_audit_maintenance = false;
bool		brandbos_audit_pruning = false;

/*
 * The OIDs of brandbos.audit_entries and brandbos.audit_log_id_seq, looked
 * up by name once and kept until an invalidation of either relation, of
 * every relation, or of any schema (a rename of the brandbos schema sends
 * no relcache invalidation).  InvalidOid: not known, look it up.
 */
static Oid	cached_entries_relid = InvalidOid;
static Oid	cached_seq_relid = InvalidOid;
static bool writer_namespace_callback_registered = false;

void
brandbos_audit_writer_relcache_changed(Oid relid)
{
	if (!OidIsValid(relid) || relid == cached_entries_relid || relid == cached_seq_relid)
	{
		cached_entries_relid = InvalidOid;
		cached_seq_relid = InvalidOid;
	}
}

/* a schema changed: the cached OIDs may no longer be brandbos's */
static void
writer_namespace_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	brandbos_audit_writer_relcache_changed(InvalidOid);
}

/* brandbos_relid(name), through the cache slot *slot */
static Oid
cached_relid(Oid *slot, const char *name)
{
	if (!writer_namespace_callback_registered)
	{
		CacheRegisterSyscacheCallback(NAMESPACEOID, writer_namespace_changed, (Datum) 0);
		writer_namespace_callback_registered = true;
	}
	if (!OidIsValid(*slot))
		*slot = brandbos_relid(name);
	return *slot;
}

#define ENTRIES_RELID() cached_relid(&cached_entries_relid, "audit_entries")
#define SEQ_RELID() cached_relid(&cached_seq_relid, "audit_log_id_seq")

/*
 * Insert one row into brandbos.audit_entries the way logical replication's
 * apply does: a minimal executor state, constraint checks and index
 * maintenance, without planning a statement for every row.  Rules and
 * policies do not apply on this path; privileges are the extension's own.
 * brandbos puts no INSERT trigger on the table, so one found there was
 * planted (by a superuser past the guard, audit_guard.c) and could make the
 * row vanish or change it: the write is refused (42501), so the change it
 * records fails with it instead of committing unrecorded.
 */
static void
insert_entry(Datum *values, bool *nulls)
{
	Oid			relid = ENTRIES_RELID();
	Relation	rel;
	EState	   *estate;
	RangeTblEntry *rte;
	ResultRelInfo *rri;
	TupleTableSlot *slot;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"brandbos\" is not installed in this database")));
	rel = table_open(relid, RowExclusiveLock);
	if (rel->trigdesc != NULL &&
		(rel->trigdesc->trig_insert_before_row || rel->trigdesc->trig_insert_after_row ||
		 rel->trigdesc->trig_insert_instead_row || rel->trigdesc->trig_insert_before_statement ||
		 rel->trigdesc->trig_insert_after_statement || rel->trigdesc->trig_insert_new_table))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the audit log refuses to record while %s.audit_entries has an INSERT trigger",
						BRANDBOS_SCHEMA),
				 errdetail("brandbos creates no INSERT trigger there; one that exists could hide or alter audit rows."),
				 errhint("A superuser must drop the trigger; until then every audited change fails.")));
	estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = RELKIND_RELATION;
	rte->rellockmode = RowExclusiveLock;
	brandbos_init_one_range_table(estate, rte);
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	estate->es_output_cid = GetCurrentCommandId(true);
	ExecOpenIndices(rri, false);

	slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel), &TTSOpsVirtual);
	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * RelationGetDescr(rel)->natts);
	memcpy(slot->tts_isnull, nulls, sizeof(bool) * RelationGetDescr(rel)->natts);
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationInsert(rri, estate, slot);

	ExecCloseIndices(rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
}

/* the client address of this session, or NULL (Unix socket, background) */
static inet *
client_address(void)
{
	LOCAL_FCINFO(fcinfo, 0);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	result = inet_client_addr(fcinfo);
	if (fcinfo->isnull)
		return NULL;
	return DatumGetInetPP(result);
}

/*
 * Every text the log stores must be valid in the database encoding: one
 * invalid byte sequence in a row makes pg_restore refuse the whole table.
 * The callers' inputs were validated on their way in; this is the last check
 * before the row is written (the value itself is never quoted).
 */
static void
require_valid_text(const char *field, const char *value, size_t len)
{
	if (value && !pg_verifymbstr(value, len, true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("audit %s is not valid in the database encoding", field),
				 errdetail("An audit row stores only text that is valid in encoding \"%s\", so that a dump of the log restores.",
						   GetDatabaseEncodingName())));
}

#define REQUIRE_VALID_CSTRING(field, s) require_valid_text(field, s, (s) ? strlen(s) : 0)

/* every key and string of the details (jsonb_in does not check the encoding) */
static void
require_valid_details(Jsonb *details)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (details == NULL)
		return;
	it = JsonbIteratorInit(&details->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
		if ((tok == WJB_KEY || tok == WJB_VALUE || tok == WJB_ELEM) && v.type == jbvString)
			require_valid_text("details", v.val.string.val, v.val.string.len);
}

int64
brandbos_audit_append(const char *action, const char *resource_type,
					  const char *resource_id, Jsonb *details)
{
	BrandbosAuditRow row;
	FullTransactionId fxid;
	Oid			seqid,
				entries;
	inet	   *ip;
	text	   *user_agent = NULL;
	const char *ctx_user,
			   *ctx_tenant,
			   *ctx_ip,
			   *ctx_agent;
	unsigned char leaf[BB_HASH_BYTES];
	Datum		values[14];
	bool		nulls[14];
	bytea	   *payload_datum,
			   *leaf_datum;
	int			i;

	/* on a standby no xid can be assigned: refuse with 25006, not XX000 */
	PreventCommandDuringRecovery("a brandbos audit write");
	/* the xid first, then the id: see the file header */
	fxid = GetTopFullTransactionId();
	seqid = SEQ_RELID();
	if (!OidIsValid(seqid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"brandbos\" is not installed in this database")));
	/* then the writer's lock (held to the end of the transaction): see the file header */
	entries = ENTRIES_RELID();
	if (OidIsValid(entries))
		LockRelationOid(entries, RowExclusiveLock);

	memset(&row, 0, sizeof(row));
	row.id = nextval_internal(seqid, false);
	brandbos_xid_ring_note(row.id);	/* audit_xid_ring.c */
	row.occurred_at = GetCurrentTimestamp();
	row.txid = U64FromFullTransactionId(fxid);
	brandbos_context_actor(&ctx_user, &ctx_tenant, &ctx_ip, &ctx_agent);
	row.tenant_id = ctx_tenant;
	row.user_id = ctx_user;
	row.db_user = GetUserNameFromId(GetUserId(), false);
	row.action = action;
	row.resource_type = resource_type;
	row.resource_id = resource_id;
	REQUIRE_VALID_CSTRING("action", action);
	REQUIRE_VALID_CSTRING("resource type", resource_type);
	REQUIRE_VALID_CSTRING("resource id", resource_id);
	REQUIRE_VALID_CSTRING("tenant id", ctx_tenant);
	REQUIRE_VALID_CSTRING("user id", ctx_user);
	REQUIRE_VALID_CSTRING("user agent", ctx_agent);
	require_valid_details(details);
	ip = ctx_ip ? DatumGetInetPP(DirectFunctionCall1(inet_in, CStringGetDatum(ctx_ip))) : client_address();
	if (ctx_agent)
		user_agent = cstring_to_text(ctx_agent);
	brandbos_audit_payload_hash(details, ip, user_agent, row.payload_hash);
	brandbos_audit_leaf_hash(&row, leaf);

	payload_datum = palloc(VARHDRSZ + BB_HASH_BYTES);
	SET_VARSIZE(payload_datum, VARHDRSZ + BB_HASH_BYTES);
	memcpy(VARDATA(payload_datum), row.payload_hash, BB_HASH_BYTES);
	leaf_datum = palloc(VARHDRSZ + BB_HASH_BYTES);
	SET_VARSIZE(leaf_datum, VARHDRSZ + BB_HASH_BYTES);
	memcpy(VARDATA(leaf_datum), leaf, BB_HASH_BYTES);

	for (i = 0; i < 14; i++)
		nulls[i] = false;
	values[0] = Int64GetDatum(row.id);
	values[1] = TimestampTzGetDatum(row.occurred_at);
	values[2] = FullTransactionIdGetDatum(fxid);
	if (row.tenant_id)
		values[3] = CStringGetTextDatum(row.tenant_id);
	else
		nulls[3] = true;
	if (row.user_id)
		values[4] = CStringGetTextDatum(row.user_id);
	else
		nulls[4] = true;
	values[5] = DirectFunctionCall1(namein, CStringGetDatum(row.db_user));
	values[6] = CStringGetTextDatum(action);
	values[7] = CStringGetTextDatum(resource_type);
	if (resource_id)
		values[8] = CStringGetTextDatum(resource_id);
	else
		nulls[8] = true;
	if (details)
		values[9] = JsonbPGetDatum(details);
	else
		nulls[9] = true;
	if (ip)
		values[10] = InetPGetDatum(ip);
	else
		nulls[10] = true;
	if (user_agent)
		values[11] = PointerGetDatum(user_agent);
	else
		nulls[11] = true;
	values[12] = PointerGetDatum(payload_datum);
	values[13] = PointerGetDatum(leaf_datum);

	insert_entry(values, nulls);
	return row.id;
}

/*
 * The reserved namespace: actions that brandbos writes itself, which
 * log_event refuses (42939) so that no caller can forge them.  Exact names
 * (compared without case and surrounding blanks) and prefixes; whoever adds
 * an action to brandbos_audit_append's callers adds it here.
 */
static const char *const reserved_actions[] = {
	"insert", "update", "delete", "truncate",	/* the row and TRUNCATE triggers */
	"tamper_attempt", "table_dropped",	/* the guards */
	"session_started", "session_status", "gdpr_erased",	/* deliberation.c */
	NULL
};
static const char *const reserved_prefixes[] = {
	"audit_",					/* audit_enabled, audit_disabled, audit_redacted, audit_pruned, ... */
	"brandbos",
	"tamper",
	NULL
};

bool
brandbos_audit_action_reserved(const char *action)
{
	const char *start = action;
	size_t		len;
	const char *const *p;

	while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
		start++;
	len = strlen(start);
	while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t' ||
					   start[len - 1] == '\n' || start[len - 1] == '\r'))
		len--;
	for (p = reserved_actions; *p; p++)
		if (len == strlen(*p) && pg_strncasecmp(start, *p, len) == 0)
			return true;
	for (p = reserved_prefixes; *p; p++)
		if (len >= strlen(*p) && pg_strncasecmp(start, *p, strlen(*p)) == 0)
			return true;
	return false;
}

PG_FUNCTION_INFO_V1(brandbos_log_event);
/*
 * SQL: brandbos.log_event(action text, resource_type text,
 *                         resource_id text default null, details jsonb default null) returns bigint
 */
Datum
brandbos_log_event(PG_FUNCTION_ARGS)
{
	char	   *action;
	char	   *resource_type;

	PreventCommandDuringRecovery("brandbos.log_event()");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("action and resource_type must not be null")));
	action = text_to_cstring(PG_GETARG_TEXT_PP(0));
	resource_type = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (action[0] == '\0' || resource_type[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("action and resource_type must not be empty")));
	if (brandbos_audit_action_reserved(action))
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("audit action \"%s\" is reserved for brandbos", action),
				 errdetail("brandbos writes this action itself; log_event cannot write it."),
				 errhint("Choose another action name (see the reserved actions in the README).")));
	PG_RETURN_INT64(brandbos_audit_append(action, resource_type,
										  PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
										  PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3)));
}

/*
 * The audited table's name.  For a Citus shard (a trigger copied to the
 * shards fires there) the logical table's: an entry names what the
 * application wrote to, whichever node holds the row.
 */
static char *
qualified_name(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			logical;
	AuditTableInfo *info = brandbos_audit_table_info(rel);

	if (info->qualified_name != NULL)
		return info->qualified_name;
	logical = brandbos_logical_relid(relid);

	if (logical != relid)
		return quote_qualified_identifier(get_namespace_name(get_rel_namespace(logical)),
										  get_rel_name(logical));
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

/*
 * The rows of one heap relation that snapshot sees, counted a page at a
 * time: heapgetpage decides each tuple's visibility exactly as a sequential
 * scan does (it is the scan's own page step), and its count of visible
 * tuples is taken without forming a slot for each of them.  Other table
 * access methods, and PostgreSQL 17 on (whose page step is not exported in
 * this form), and a scan without page mode (a snapshot that is not MVCC)
 * are counted tuple by tuple through the same scan.
 */
static int64
count_visible_rows(Relation rel, Snapshot snapshot)
{
	TableScanDesc scan;
	TupleTableSlot *slot;
	int64		count = 0;

	/* a bulk-read strategy, no synchronized start: every page once, from the first */
	scan = table_beginscan_strat(rel, snapshot, 0, NULL, true, false);
#if PG_VERSION_NUM < 170000
	/* page mode (visibility decided a page at a time) is on for an MVCC snapshot only */
	if (rel->rd_tableam == GetHeapamTableAmRoutine() && (scan->rs_flags & SO_ALLOW_PAGEMODE))
	{
		HeapScanDesc hscan = (HeapScanDesc) scan;
		BlockNumber blkno;

		for (blkno = 0; blkno < hscan->rs_nblocks; blkno++)
		{
			heapgetpage(scan, blkno);	/* checks for interrupts */
			count += hscan->rs_ntuples;
		}
		table_endscan(scan);
		return count;
	}
#endif
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		count++;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return count;
}

/*
 * Every row TRUNCATE is about to remove from rel, whoever may see it: a
 * scan of the heap with the statement's snapshot, no row level security and
 * no user code.  A partitioned table has no rows of its own (TRUNCATE fires
 * only its trigger): its leaf partitions are counted.  An inheritance
 * parent counts its own rows; its children are counted by their own audit
 * triggers.  Foreign partitions are not counted (reading them runs their
 * wrapper).
 *
 * No catalog number can replace the scan: pg_class.reltuples is an estimate
 * and the cumulative statistics are neither transactional nor exact, while
 * the count must be the rows this snapshot sees (and the table's
 * ACCESS EXCLUSIVE lock is already held, so the scan only has to be cheap).
 */
static int64
rows_truncated(Relation rel)
{
	Snapshot	snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
	List	   *leaves;
	ListCell   *lc;
	int64		count = 0;

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		leaves = find_all_inheritors(RelationGetRelid(rel), AccessShareLock, NULL);
	else
		leaves = list_make1_oid(RelationGetRelid(rel));
	foreach(lc, leaves)
	{
		Relation	leaf;
		char		relkind = get_rel_relkind(lfirst_oid(lc));

		if (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW)
			continue;
		leaf = table_open(lfirst_oid(lc), AccessShareLock);
		count += count_visible_rows(leaf, snapshot);
		table_close(leaf, AccessShareLock);
	}
	return count;
}

PG_FUNCTION_INFO_V1(brandbos_audit_trigger);
/* SQL: brandbos.audit_trigger() returns trigger */
Datum
brandbos_audit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	Jsonb	   *details;
	const char *action;
	char	   *resource_id = NULL;
	int			nkeys;
	AttrNumber *keys;
	Bitmapset  *protected;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.audit_trigger() must be called as a trigger")));
	/* a data-only dump load: the rows' history arrives with brandbos.audit_entries */
	if (brandbos_restore_mode_active())
		return PointerGetDatum(NULL);
	rel = td->tg_relation;

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		brandbos_audit_append("truncate", qualified_name(rel), NULL,
							  brandbos_audit_count_details("row_count", rows_truncated(rel)));
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.audit_trigger() must be an AFTER row trigger or a TRUNCATE trigger")));

	brandbos_table_shape(rel, &nkeys, &keys, &protected);

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		action = "insert";
		details = brandbos_audit_row_change(rel, NULL, td->tg_trigtuple, protected);
		resource_id = brandbos_audit_row_key(rel, td->tg_trigtuple, nkeys, keys);
	}
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		action = "delete";
		details = brandbos_audit_row_change(rel, td->tg_trigtuple, NULL, protected);
		resource_id = brandbos_audit_row_key(rel, td->tg_trigtuple, nkeys, keys);
	}
	else
	{
		action = "update";
		details = brandbos_audit_row_change(rel, td->tg_trigtuple, td->tg_newtuple, protected);
		resource_id = brandbos_audit_row_key(rel, td->tg_newtuple, nkeys, keys);
	}

	brandbos_audit_append(action, qualified_name(rel), resource_id, details);
	return PointerGetDatum(NULL);
}

/* ---------------------------------------------------------------------
 * enable_audit / disable_audit
 * --------------------------------------------------------------------- */

/*
 * Names of the table's own triggers (not partitions' clones) that call
 * brandbos.audit_trigger(): brandbos's audit triggers are known by their
 * function, not by their name (audit_guard.c).
 */
static List *
audit_trigger_names(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	List	   *names = NIL;
	uint64		i;

	values[0] = ObjectIdGetDatum(relid);
	if (SPI_execute_with_args("SELECT tgname::text FROM pg_catalog.pg_trigger WHERE tgrelid = $1 "
							  "AND tgfoid = 'brandbos.audit_trigger()'::pg_catalog.regprocedure "
							  "AND tgparentid = 0 ORDER BY tgname",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_trigger");
	for (i = 0; i < SPI_processed; i++)
		names = lappend(names, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	return names;
}

/* checks shared by enable and disable; returns the table's quoted name */
static char *
audit_target(FunctionCallInfo fcinfo, Oid *relid_out)
{
	Oid			relid;
	Relation	rel;
	char	   *name;
	int			nkeys;
	AttrNumber *keys;
	Bitmapset  *protected;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table must not be null")));
	relid = PG_GETARG_OID(0);
	(void) brandbos_require_owned_table(relid);
	if (get_rel_namespace(relid) == get_namespace_oid(BRANDBOS_SCHEMA, true))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("tables of the brandbos schema cannot be audited this way")));

	rel = table_open(relid, ShareRowExclusiveLock);
	name = qualified_name(rel);
	brandbos_table_shape(rel, &nkeys, &keys, &protected);	/* requires a primary key */
	table_close(rel, NoLock);
	*relid_out = relid;
	return name;
}

PG_FUNCTION_INFO_V1(brandbos_enable_audit);
/* SQL: brandbos.enable_audit(tbl regclass) returns void */
Datum
brandbos_enable_audit(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	Oid			relid;
	char	   *name;

	/*
	 * On a standby: PostgreSQL's read-only error (25006) before any lock,
	 * xid or DDL, which recovery would refuse with other SQLSTATEs.
	 */
	PreventCommandDuringRecovery("brandbos.enable_audit()");
	name = audit_target(fcinfo, &relid);
	brandbos_spi_begin(&state, GetUserId());
	if (audit_trigger_names(relid) != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("auditing is already enabled for table %s", name)));
	/* the guard (audit_guard.c) would take ENABLE ALWAYS for a change of the new triggers */
	brandbos_guard_bypass = true;
	PG_TRY();
	{
		brandbos_sql_run(psprintf("CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s "
								  "FOR EACH ROW EXECUTE FUNCTION brandbos.audit_trigger()",
								  quote_identifier(AUDIT_TRIGGER_NAME), name));
		brandbos_sql_run(psprintf("CREATE TRIGGER %s BEFORE TRUNCATE ON %s "
								  "FOR EACH STATEMENT EXECUTE FUNCTION brandbos.audit_trigger()",
								  quote_identifier(AUDIT_TRUNCATE_NAME), name));
		/* session_replication_role = replica must not silence the audit */
		brandbos_sql_run(psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s", name,
								  quote_identifier(AUDIT_TRIGGER_NAME)));
		brandbos_sql_run(psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s", name,
								  quote_identifier(AUDIT_TRUNCATE_NAME)));
	}
	PG_FINALLY();
	{
		brandbos_guard_bypass = false;
	}
	PG_END_TRY();
	brandbos_spi_end(&state);

	brandbos_audit_append("audit_enabled", "table", name, NULL);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_disable_audit);
/* SQL: brandbos.disable_audit(tbl regclass) returns void */
Datum
brandbos_disable_audit(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	Oid			relid;
	char	   *name;
	List	   *triggers;
	ListCell   *lc;

	PreventCommandDuringRecovery("brandbos.disable_audit()");	/* as in enable_audit */
	name = audit_target(fcinfo, &relid);
	brandbos_spi_begin(&state, GetUserId());
	triggers = audit_trigger_names(relid);
	if (triggers == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("auditing is not enabled for table %s", name)));
	brandbos_guard_bypass = true;
	PG_TRY();
	{
		foreach(lc, triggers)
			brandbos_sql_run(psprintf("DROP TRIGGER %s ON %s", quote_identifier(lfirst(lc)), name));
	}
	PG_FINALLY();
	{
		brandbos_guard_bypass = false;
	}
	PG_END_TRY();
	brandbos_spi_end(&state);

	brandbos_audit_append("audit_disabled", "table", name, NULL);
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * The append-only guard
 * --------------------------------------------------------------------- */

/* true when new differs from old only in the columns allowed to change */
static bool
only_columns_changed(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc,
					 const char *const *allowed, bool allowed_must_become_null)
{
	int			a;

	for (a = 0; a < tupdesc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, a);
		bool		oldnull,
					newnull;
		Datum		o,
					n;
		const char *const *p;
		bool		is_allowed = false;

		if (att->attisdropped)
			continue;
		for (p = allowed; *p; p++)
			if (strcmp(NameStr(att->attname), *p) == 0)
				is_allowed = true;
		o = heap_getattr(oldtup, att->attnum, tupdesc, &oldnull);
		n = heap_getattr(newtup, att->attnum, tupdesc, &newnull);
		if (oldnull == newnull &&
			(oldnull || datumIsEqual(o, n, att->attbyval, att->attlen)))
			continue;
		if (!is_allowed)
			return false;
		if (allowed_must_become_null && !newnull)
			return false;
	}
	return true;
}

PG_FUNCTION_INFO_V1(brandbos_audit_append_only);
/* SQL: brandbos.audit_append_only() returns trigger */
Datum
brandbos_audit_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.audit_append_only() must be called as a trigger")));
	rel = td->tg_relation;

	/*
	 * The only changes ever allowed: redact_audit clearing a row's payload
	 * and prune_audit deleting the rows of whole sealed blocks, while they
	 * set flags that no SQL can reach.
	 */
	if (brandbos_audit_maintenance && TRIGGER_FIRED_BY_UPDATE(td->tg_event) &&
		strcmp(RelationGetRelationName(rel), "audit_entries") == 0)
	{
		static const char *const redact[] = {"details", "ip_address", "user_agent", NULL};

		if (only_columns_changed(td->tg_trigtuple, td->tg_newtuple,
								 RelationGetDescr(rel), redact, true))
			return PointerGetDatum(td->tg_newtuple);
	}

	if (brandbos_audit_pruning && TRIGGER_FIRED_BY_DELETE(td->tg_event) &&
		TRIGGER_FIRED_FOR_ROW(td->tg_event) &&
		strcmp(RelationGetRelationName(rel), "audit_entries") == 0)
		return PointerGetDatum(td->tg_trigtuple);

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s.%s is append-only", BRANDBOS_SCHEMA, RelationGetRelationName(rel)),
			 errdetail("Rows of the audit log and its blocks can be added, never changed or removed."),
			 errhint("Use brandbos.redact_audit() to clear a payload and brandbos.prune_audit() to drop old sealed blocks.")));
	return PointerGetDatum(NULL);
}
