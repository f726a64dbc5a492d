/*
 * citus_columns.c — protect_column on a Citus distributed table.
 *
 * A hash-distributed table's rows live in shards on the workers (and
 * perhaps on the coordinator); the protect trigger that Citus copies to the
 * shards fires there, with the shard as tg_relation, and looks the
 * protected columns up in that node's brandbos.column_registry under the
 * logical ("shell") table (table_shape.c, citus_shards.c).  So protect_column
 * on the coordinator must leave, on every node that holds metadata, the
 * same registry row (the same column id, bound into every envelope) and the
 * same data keys (citus_keys.c), in the same distributed transaction as its
 * own: if protect_column rolls back, no node keeps anything.
 *
 * brandbos_citus_protect_check() decides, before protect_column changes
 * anything, whether the table is one it can protect across the cluster:
 * only a hash-distributed table, called on the coordinator, with every node
 * that holds one of its shards carrying synced metadata, and
 * citus.enable_unsafe_triggers on (Citus copies no trigger to shards
 * without it).  Shards, reference tables, Citus-managed local tables and
 * calls on a worker are refused with 0A000.  It also makes Citus run the
 * rest of protect_column over one connection per node
 * (citus.multi_shard_modify_mode = sequential until protect_column
 * returns), so the commands below reach the remote transaction that created
 * the shards' triggers.
 *
 * brandbos_citus_protect_propagate() then sends, through Citus's
 * transactional worker command path (SendCommandToRemoteNodesWithMetadata,
 * as the extension owner, as which protect_column also made the trigger;
 * committed with the coordinator by two-phase commit), the coordinator's data
 * keys and
 *   SELECT brandbos.citus_receive_column(table, column, column_id, true)
 * to every other node with metadata, and seals the rows of the shards the
 * coordinator holds itself.  citus_receive_column, on the receiving node,
 * takes only a superuser or the extension owner (EXECUTE is revoked from
 * PUBLIC too); checks that the table is hash-distributed there too and that
 * each local shard already has the protect trigger; registers the column
 * under the given id (refusing a different id already there); and, when
 * sent by protect_column, seals what the local shards hold, as
 * protect_column does for a local table.
 *
 * The other order — protect_column first, then create_distributed_table()
 * (or create_reference_table(), create_distributed_table_concurrently(),
 * citus_add_local_table_to_metadata()) — is refused with 0A000 when the call
 * is parsed as SELECT fn('table', ...) (post_parse_analyze_hook, preloaded
 * only): the workers would get the trigger without the registry, and Citus's
 * copy of the rows into the shards fails.  So are undistribute_table(),
 * alter_distributed_table() and alter_table_set_access_method() of a
 * protected table: they re-create the table under a new OID, which the
 * registry does not name.  A distributing call the hook cannot see through
 * (the table passed in a variable) still fails closed: the shards' triggers
 * find no registry entry and refuse every row.
 *
 * brandbos.citus_resync() (superuser, coordinator) sends the keys and every
 * distributed table's registry rows again (without sealing): for a node
 * added after protect_column (before shards move to it), or one that lost
 * them.
 *
 * Citus is found at run time: brandbos is never linked against citus.so;
 * the worker command function is looked up with load_external_function.
 */
#include "brandbos.h"
#include "table_shape.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#define PROTECT_TRIGGER_NAME "zz_brandbos_protect"

typedef void (*SendCommandFn) (const char *command);

/* ---------------------------------------------------------------------
 * Facts about the cluster
 * --------------------------------------------------------------------- */

/* one integer (or -1 for no row / NULL) of a catalog query, as the extension owner */
static int64
catalog_int(const char *sql, Oid argtype, Datum arg)
{
	BrandbosInternalState state;
	int64		result = -1;

	brandbos_spi_begin(&state, brandbos_extension_owner());
	(void) brandbos_sql_exec(sql, OidIsValid(argtype) ? 1 : 0, &argtype, &arg, NULL, false,
							 SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			result = DatumGetInt64(d);
	}
	brandbos_spi_end(&state);
	return result;
}

bool
brandbos_citus_is_worker(void)
{
	if (!brandbos_citus_installed())
		return false;
	return catalog_int("SELECT groupid::pg_catalog.int8 FROM pg_catalog.pg_dist_local_group",
					   InvalidOid, (Datum) 0) > 0;
}

/* pg_dist_partition.partmethod of relid ('h' hash, 'n' none/reference, ...), or 0 */
char
brandbos_citus_partmethod(Oid relid)
{
	int64		m;

	if (!brandbos_citus_installed())
		return 0;
	m = catalog_int("SELECT pg_catalog.ascii(partmethod::pg_catalog.text)::pg_catalog.int8 "
					"FROM pg_catalog.pg_dist_partition "
					"WHERE logicalrelid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
					OIDOID, ObjectIdGetDatum(relid));
	return m > 0 ? (char) m : 0;
}

/* the shards of a distributed table whose placements are on this node */
List *
brandbos_citus_local_shards(Oid logical)
{
	BrandbosInternalState state;
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(logical);
	List	   *result = NIL;
	MemoryContext cxt = CurrentMemoryContext;
	uint64		i;

	brandbos_spi_begin(&state, brandbos_extension_owner());
	/* shard_name() leaves a shard of a table in public unqualified; search_path is pinned here */
	(void) brandbos_sql_exec("SELECT pg_catalog.to_regclass(CASE WHEN c.relnamespace OPERATOR(pg_catalog.=) 'public'::pg_catalog.regnamespace "
							 "THEN 'public.' ELSE '' END OPERATOR(pg_catalog.||) pg_catalog.shard_name(s.logicalrelid, s.shardid))::pg_catalog.oid, s.shardid "
							 "FROM pg_catalog.pg_dist_shard s "
							 "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.logicalrelid::pg_catalog.oid "
							 "JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid "
							 "WHERE s.logicalrelid::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
							 "AND p.groupid OPERATOR(pg_catalog.=) (SELECT groupid FROM pg_catalog.pg_dist_local_group) "
							 "ORDER BY s.shardid",
							 1, &argtype, &arg, NULL, false, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		MemoryContext old;

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("shard %s of table \"%s\" is placed on this node but its table does not exist",
							SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2),
							get_rel_name(logical))));
		old = MemoryContextSwitchTo(cxt);
		result = lappend_oid(result, DatumGetObjectId(d));
		MemoryContextSwitchTo(old);
	}
	brandbos_spi_end(&state);
	return result;
}

/*
 * Send a command to every other node with metadata, in the current
 * distributed transaction (committed or rolled back with it, two-phase), as
 * the current user.
 */
void
brandbos_citus_send(const char *command)
{
	static SendCommandFn send = NULL;
	BrandbosInternalState state;

	if (send == NULL)
		send = (SendCommandFn) load_external_function("citus",
													  "SendCommandToRemoteNodesWithMetadata",
													  true, NULL);
	brandbos_internal_begin(&state, brandbos_extension_owner());
	send(command);
	brandbos_internal_end(&state);
}

/* 42501 unless the caller is a superuser or the extension owner (the coordinator's connection) */
void
brandbos_citus_require_internal_caller(const char *what)
{
	if (!superuser() && GetUserId() != brandbos_extension_owner())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to call %s", what),
				 errdetail("Only the Citus coordinator calls it, as the extension owner.")));
}

static bool
has_protect_trigger(Oid relid)
{
	/* Citus names a shard's copy of a trigger <name>_<shardid> */
	return catalog_int("SELECT 1::pg_catalog.int8 FROM pg_catalog.pg_trigger "
					   "WHERE tgrelid OPERATOR(pg_catalog.=) $1 "
					   "AND tgfoid OPERATOR(pg_catalog.=) 'brandbos.protect_trigger()'::pg_catalog.regprocedure "
					   "AND pg_catalog.starts_with(tgname::pg_catalog.text, '" PROTECT_TRIGGER_NAME "') "
					   "AND tgenabled OPERATOR(pg_catalog.=) 'A' LIMIT 1",
					   OIDOID, ObjectIdGetDatum(relid)) == 1;
}

/* seal (if seal) what the local shards of a table hold; each must carry the protect trigger */
static void
seal_local_shards(Oid logical, bool seal)
{
	List	   *shards = brandbos_citus_local_shards(logical);
	ListCell   *lc;

	foreach(lc, shards)
	{
		Oid			shard = lfirst_oid(lc);

		if (!has_protect_trigger(shard))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("shard \"%s\" of table \"%s\" has no protect trigger enabled always",
							get_rel_name(shard), get_rel_name(logical)),
					 errdetail("Its rows would be stored unsealed."),
					 errhint("Call brandbos.protect_column() on the Citus coordinator, with citus.enable_unsafe_triggers on, before this transaction writes the table.")));
		CacheInvalidateRelcacheByRelid(shard);
	}
	CommandCounterIncrement();
	if (seal)
		foreach(lc, shards)
			brandbos_seal_existing_values(lfirst_oid(lc));
}

/* ---------------------------------------------------------------------
 * protect_column on the coordinator
 * --------------------------------------------------------------------- */

int
brandbos_citus_protect_check(Oid relid, const char *what)
{
	char		method;
	int64		unsynced;
	const char *unsafe;
	int			nest;

	if (!brandbos_citus_installed())
		return -1;
	if (brandbos_is_citus_shard(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s does not protect a Citus shard", what),
				 errdetail("\"%s\" is a shard of table \"%s\".", get_rel_name(relid),
						   get_rel_name(brandbos_logical_relid(relid))),
				 errhint("Call it for the distributed table, on the coordinator.")));
	method = brandbos_citus_partmethod(relid);
	if (method == 0)
		return -1;				/* a table Citus does not manage */
	if (method != 'h')
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s supports hash-distributed Citus tables only", what),
				 errdetail("Table \"%s\" is a Citus %s table.", get_rel_name(relid),
						   method == 'n' ? "reference or local" : "append- or range-distributed"),
				 errhint("Protect columns of local tables, or of tables distributed with create_distributed_table(); see test/citus/README-enc.md.")));
	if (brandbos_citus_is_worker())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s on a distributed table must be called on the Citus coordinator", what),
				 errdetail("This node is a Citus worker.")));
	unsafe = GetConfigOption("citus.enable_unsafe_triggers", true, false);
	if (unsafe == NULL || strcmp(unsafe, "on") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s on a distributed table needs citus.enable_unsafe_triggers = on", what),
				 errdetail("Without it Citus does not create the protect trigger on the shards."),
				 errhint("Set citus.enable_unsafe_triggers = on on every node.")));
	unsynced = catalog_int("SELECT pg_catalog.count(*)::pg_catalog.int8 FROM pg_catalog.pg_dist_shard s "
						   "JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid "
						   "JOIN pg_catalog.pg_dist_node n ON n.groupid OPERATOR(pg_catalog.=) p.groupid "
						   "WHERE s.logicalrelid::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
						   "AND p.groupid OPERATOR(pg_catalog.<>) 0 "
						   "AND NOT (n.hasmetadata AND n.metadatasynced AND n.isactive)",
						   OIDOID, ObjectIdGetDatum(relid));
	if (unsynced != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a node holding shards of table \"%s\" has no synced Citus metadata", get_rel_name(relid)),
				 errdetail("Its shards could not find the column registry or the data keys."),
				 errhint("Run start_metadata_sync_to_node() for it (or wait for the sync), then call %s again.", what)));

	/*
	 * A parallel query of this transaction may have spread the table's
	 * shards over several connections per node: the commands below could
	 * not reach the one that holds each shard's new trigger.
	 */
	{
		typedef bool (*ParallelExecutedFn) (void);
		ParallelExecutedFn parallel_executed = (ParallelExecutedFn)
			load_external_function("citus", "ParallelQueryExecutedInTransaction", false, NULL);

		if (parallel_executed != NULL && parallel_executed())
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("%s on a distributed table must come before any parallel query of its transaction", what),
					 errdetail("This transaction already ran a multi-shard query over several connections per node."),
					 errhint("Call it at the start of the transaction, or in a transaction of its own.")));
	}

	/* one connection per node, so the workers' commands see the shards' new triggers */
	nest = NewGUCNestLevel();
	(void) set_config_option("citus.multi_shard_modify_mode", "sequential",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

void
brandbos_citus_protect_done(int nest)
{
	if (nest >= 0)
		AtEOXact_GUC(true, nest);
}

/*
 * The registry row of one column (with the coordinator's id) to every other
 * node with metadata; with seal, each seals what its shards hold.
 */
static void
send_column(Oid relid, const char *colname, bool seal)
{
	BrandbosInternalState state;
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2];
	char	   *column_id = NULL;
	MemoryContext caller_cxt = CurrentMemoryContext;

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(colname);
	brandbos_spi_begin(&state, brandbos_extension_owner());
	(void) brandbos_sql_exec("SELECT column_id::pg_catalog.text FROM brandbos.column_registry "
							 "WHERE table_oid::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
							 "AND column_name OPERATOR(pg_catalog.=) $2::pg_catalog.name",
							 2, types, values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 1)
		column_id = MemoryContextStrdup(caller_cxt,
										SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	brandbos_spi_end(&state);
	if (column_id == NULL)
		elog(ERROR, "column \"%s\" was not registered", colname);
	brandbos_citus_send(psprintf("SELECT brandbos.citus_receive_column(%s::pg_catalog.regclass, %s::pg_catalog.name, %s::pg_catalog.uuid, %s)",
								 quote_literal_cstr(quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
																			   get_rel_name(relid))),
								 quote_literal_cstr(colname), quote_literal_cstr(column_id),
								 seal ? "true" : "false"));
}

void
brandbos_citus_protect_propagate(Oid relid, const char *colname)
{

	/* keys first: the receiving node seals the shards' rows under the active one */
	brandbos_citus_propagate_keys(false);
	send_column(relid, colname, true);
	/* shards the coordinator holds itself */
	seal_local_shards(relid, true);
}

typedef struct ResyncColumn
{
	Oid			relid;
	char	   *column;
} ResyncColumn;

PG_FUNCTION_INFO_V1(brandbos_citus_resync);
/*
 * SQL: brandbos.citus_resync() returns integer
 *
 * On the coordinator: send the data keys and the registry row of every
 * protected column of a distributed table again to every other node with
 * metadata (a node added since, or one that lost them); returns the number
 * of columns sent.  Superuser or extension owner only (like citus_add_node).
 * Nothing is sealed: a shard of a protected table only
 * ever holds rows that passed the trigger, or copies of them (a shard move),
 * and a node without the registry refuses rows.  Keymaster only; what is
 * sent is the coordinator's own state, so a node can only be brought back to
 * agree with it.
 */
Datum
brandbos_citus_resync(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	List	   *columns = NIL;	/* of ResyncColumn */
	ListCell   *lc;
	uint64		i;
	int32		sent = 0;
	MemoryContext caller_cxt = CurrentMemoryContext;

	if (!superuser() && GetUserId() != brandbos_extension_owner())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to call brandbos.citus_resync()"),
				 errdetail("Only a superuser or the extension owner may send brandbos's state to the Citus nodes.")));
	if (!brandbos_citus_installed())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("Citus is not installed in this database")));
	brandbos_citus_refuse_on_worker("brandbos.citus_resync()");

	brandbos_spi_begin(&state, brandbos_extension_owner());
	(void) brandbos_sql_exec("SELECT r.table_oid::pg_catalog.oid, r.column_name::pg_catalog.text "
							 "FROM brandbos.column_registry r "
							 "JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid::pg_catalog.oid OPERATOR(pg_catalog.=) r.table_oid::pg_catalog.oid "
							 "WHERE p.partmethod OPERATOR(pg_catalog.=) 'h' ORDER BY 1, 2",
							 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		char	   *column = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		MemoryContext old = MemoryContextSwitchTo(caller_cxt);
		ResyncColumn *rc = palloc(sizeof(ResyncColumn));

		rc->relid = relid;
		rc->column = pstrdup(column);
		columns = lappend(columns, rc);
		MemoryContextSwitchTo(old);
	}
	brandbos_spi_end(&state);

	brandbos_citus_propagate_keys(false);
	foreach(lc, columns)
	{
		ResyncColumn *rc = lfirst(lc);

		send_column(rc->relid, rc->column, false);
		sent++;
	}
	PG_RETURN_INT32(sent);
}

/* ---------------------------------------------------------------------
 * On the receiving node
 * --------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(brandbos_citus_receive_column);
/*
 * SQL: brandbos.citus_receive_column(tbl regclass, col name, column_id uuid,
 * seal boolean) returns void — sent by protect_column (seal) and
 * citus_resync on the coordinator; see above.
 */
Datum
brandbos_citus_receive_column(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *colname;
	char	   *column_id;
	Relation	rel;
	AttrNumber	attnum = InvalidAttrNumber;
	AttrNumber *key_attnums;
	BrandbosInternalState state;
	Oid			types[3] = {UUIDOID, OIDOID, TEXTOID};
	Datum		values[3];
	char	   *stored = NULL;
	int			a;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arguments must not be null")));
	relid = PG_GETARG_OID(0);
	colname = NameStr(*PG_GETARG_NAME(1));
	column_id = DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(2)));

	brandbos_citus_require_internal_caller("brandbos.citus_receive_column()");
	if (!brandbos_citus_is_worker())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("brandbos.citus_receive_column() runs on Citus workers only"),
				 errdetail("brandbos.protect_column() on the coordinator calls it.")));
	(void) brandbos_require_owned_table(relid);
	if (brandbos_citus_partmethod(relid) != 'h')
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" is not a hash-distributed Citus table on this node",
						get_rel_name(relid))));

	rel = table_open(relid, ShareRowExclusiveLock);
	for (a = 0; a < RelationGetDescr(rel)->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), a);

		if (!att->attisdropped && strcmp(NameStr(att->attname), colname) == 0)
		{
			if (att->atttypid != TEXTOID && att->atttypid != BYTEAOID)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("column \"%s\" of table \"%s\" is of type %s",
								colname, RelationGetRelationName(rel), format_type_be(att->atttypid))));
			attnum = att->attnum;
		}
	}
	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist", colname,
						RelationGetRelationName(rel))));
	(void) brandbos_require_bindable_primary_key(rel, attnum, true, &key_attnums);
	table_close(rel, NoLock);

	/* the same id as on the coordinator, or nothing */
	values[0] = PG_GETARG_DATUM(2);
	values[1] = ObjectIdGetDatum(relid);
	values[2] = CStringGetTextDatum(colname);
	brandbos_spi_begin(&state, brandbos_extension_owner());
	(void) brandbos_sql_exec("INSERT INTO brandbos.column_registry (column_id, table_oid, column_name) "
							 "VALUES ($1, $2::pg_catalog.oid::pg_catalog.regclass, $3::pg_catalog.name) "
							 "ON CONFLICT DO NOTHING",
							 3, types, values, NULL, false, SPI_OK_INSERT);
	(void) brandbos_sql_exec("SELECT column_id::pg_catalog.text FROM brandbos.column_registry "
							 "WHERE table_oid::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
							 "AND column_name OPERATOR(pg_catalog.=) $2::pg_catalog.name",
							 2, types + 1, values + 1, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 1)
		stored = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	brandbos_spi_end(&state);
	if (stored == NULL || strcmp(stored, column_id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("column \"%s\" of table \"%s\" cannot be registered on this node under the coordinator's id",
						colname, get_rel_name(relid)),
				 errdetail(stored == NULL ? "Its column id is already used here for another column."
						   : "This node registered the column under another id."),
				 errhint("Compare brandbos.column_registry on the coordinator and this worker.")));
	CacheInvalidateRelcacheByRelid(relid);
	CommandCounterIncrement();
	/* protect_column: seal what the shards held; also when registered here before, as it does locally */
	seal_local_shards(relid, PG_GETARG_BOOL(3));
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * Distributing a table that is already protected
 * --------------------------------------------------------------------- */

static post_parse_analyze_hook_type prev_analyze_hook = NULL;

/* Citus functions that hand a table to Citus, or re-create it under a new OID */
typedef struct CitusTableFunction
{
	const char *name;
	bool		recreates;		/* re-creates the table (else: distributes it) */
} CitusTableFunction;

static const CitusTableFunction citus_table_functions[] = {
	{"create_distributed_table", false},
	{"create_distributed_table_concurrently", false},
	{"create_reference_table", false},
	{"citus_add_local_table_to_metadata", false},
	{"undistribute_table", true},
	{"alter_distributed_table", true},
	{"alter_table_set_access_method", true},
	{NULL, false}
};

static void
refuse_citus_table_function(const CitusTableFunction *f, Oid relid)
{
	if (!f->recreates)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" has protected columns and cannot be given to Citus with %s()",
						get_rel_name(relid), f->name),
				 errdetail("The workers would get the protect trigger without the column registry and the data keys."),
				 errhint("Distribute the table first, then call brandbos.protect_column(): call brandbos.unprotect_column(), then %s(), then brandbos.protect_column() again.",
						 f->name)));
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s() is not supported for table \"%s\", which has protected columns",
					f->name, get_rel_name(relid)),
			 errdetail("It re-creates the table; the protected values are bound to the column ids registered for this one and would no longer be managed."),
			 errhint("See test/citus/README-enc.md for what brandbos supports on Citus.")));
}

static bool
refuse_distributing_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, refuse_distributing_walker, context, 0);
	if (IsA(node, FuncExpr))
	{
		FuncExpr   *fe = (FuncExpr *) node;

		if (fe->funcid >= FirstNormalObjectId && fe->args != NIL &&
			IsA(linitial(fe->args), Const) &&
			get_func_namespace(fe->funcid) == PG_CATALOG_NAMESPACE)
		{
			Const	   *c = linitial_node(Const, fe->args);
			char	   *name = get_func_name(fe->funcid);
			int			i;

			for (i = 0; name != NULL && citus_table_functions[i].name != NULL; i++)
				if (strcmp(name, citus_table_functions[i].name) == 0 && !c->constisnull &&
					(c->consttype == REGCLASSOID || c->consttype == OIDOID) &&
					brandbos_table_is_protected(DatumGetObjectId(c->constvalue)))
					refuse_citus_table_function(&citus_table_functions[i],
												DatumGetObjectId(c->constvalue));
		}
	}
	return expression_tree_walker(node, refuse_distributing_walker, context);
}

static void
citus_columns_analyze_hook(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_analyze_hook)
		prev_analyze_hook(pstate, query, jstate);
	/* SELECT create_distributed_table('t', ...): a SELECT without FROM */
	if (query->commandType == CMD_SELECT && query->rtable == NIL)
		(void) refuse_distributing_walker((Node *) query, NULL);
}

void
brandbos_citus_columns_init(void)
{
	prev_analyze_hook = post_parse_analyze_hook;
	post_parse_analyze_hook = citus_columns_analyze_hook;
}
