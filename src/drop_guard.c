/*
 * drop_guard.c — no DROP silently destroys brandbos's data keys.
 *
 * brandbos.data_keys and brandbos.column_registry are members of the
 * extension, so DROP EXTENSION brandbos (with or without CASCADE), DROP
 * SCHEMA brandbos CASCADE and DROP OWNED BY the extension's owner take them
 * along, and every value sealed under those keys is unreadable by anyone
 * from then on.  The event trigger brandbos_drop_guard (ddl_command_start,
 * so it runs before anything is dropped; ENABLE ALWAYS, so
 * session_replication_role = replica does not skip it) refuses such a
 * statement with 2BP01 while brandbos.data_keys holds a key that is not
 * destroyed or brandbos.column_registry holds a protected column.  Values
 * sealed with brandbos.encrypt() can live in any table, so every key that
 * still decrypts counts, not only those the registry can count values for.
 *
 * The DBA says "yes, shred them" with brandbos.allow_drop_with_keys = on
 * (superuser-only); the drop then goes ahead with a WARNING saying how many
 * keys are lost.  The guard is an event trigger, not a hook, so it works
 * without shared_preload_libraries.  What it cannot stop: a superuser who
 * disables or drops the event trigger first, or edits the catalogs.
 */
#include "brandbos.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

static bool allow_drop_with_keys = false;

void
brandbos_drop_guard_init(void)
{
	DefineCustomBoolVariable("brandbos.allow_drop_with_keys",
							 "Lets DROP EXTENSION brandbos (and DROP SCHEMA brandbos CASCADE, DROP OWNED) destroy the data keys.",
							 "Every value sealed under a destroyed key can never be decrypted again.",
							 &allow_drop_with_keys,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
}

static bool
names_brandbos(List *objects)
{
	ListCell   *lc;

	foreach(lc, objects)
		if (strcmp(strVal(lfirst(lc)), BRANDBOS_SCHEMA) == 0)
			return true;
	return false;
}

static Oid
schema_owner(void)
{
	Oid			nsp = get_namespace_oid(BRANDBOS_SCHEMA, true);
	HeapTuple	tup;
	Oid			owner = InvalidOid;

	if (!OidIsValid(nsp))
		return InvalidOid;
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (HeapTupleIsValid(tup))
	{
		owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
		ReleaseSysCache(tup);
	}
	return owner;
}

/* does DROP OWNED BY these roles drop the extension (its owner) or the schema? */
static bool
drops_owner_of_brandbos(List *roles)
{
	Oid			ext_owner = brandbos_extension_owner();
	Oid			nsp_owner = schema_owner();
	ListCell   *lc;

	foreach(lc, roles)
	{
		Oid			role = get_rolespec_oid(lfirst(lc), true);

		if (OidIsValid(role) && (role == ext_owner || role == nsp_owner))
			return true;
	}
	return false;
}

/* the statement's name for messages, or NULL when it does not drop brandbos */
static const char *
guarded_statement(Node *parsetree)
{
	if (IsA(parsetree, DropStmt))
	{
		DropStmt   *stmt = (DropStmt *) parsetree;

		if (stmt->removeType == OBJECT_EXTENSION && names_brandbos(stmt->objects))
			return "DROP EXTENSION brandbos";
		if (stmt->removeType == OBJECT_SCHEMA && names_brandbos(stmt->objects))
			return "DROP SCHEMA brandbos";
	}
	else if (IsA(parsetree, DropOwnedStmt))
	{
		if (drops_owner_of_brandbos(((DropOwnedStmt *) parsetree)->roles))
			return "DROP OWNED BY the owner of brandbos";
	}
	return NULL;
}

PG_FUNCTION_INFO_V1(brandbos_drop_guard);
/*
 * SQL: brandbos.drop_guard() returns event_trigger
 *
 * On ddl_command_start for DROP EXTENSION, DROP SCHEMA and DROP OWNED.
 */
Datum
brandbos_drop_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	const char *what;
	BrandbosInternalState state;
	int64		live_keys;
	int64		columns;
	bool		isnull;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.drop_guard() must be called as an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;

	/* nothing to guard when the tables are not there (a broken install) */
	if (!OidIsValid(brandbos_relid("data_keys")) || !OidIsValid(brandbos_relid("column_registry")))
		PG_RETURN_VOID();
	what = guarded_statement(trigdata->parsetree);
	if (what == NULL)
		PG_RETURN_VOID();

	/*
	 * Event triggers fire before PostgreSQL checks ownership: leave a caller
	 * who could not drop brandbos anyway to that check (42501), and tell them
	 * nothing about the keys.
	 */
	if (!has_privs_of_role(GetUserId(), brandbos_extension_owner()) &&
		!has_privs_of_role(GetUserId(), schema_owner()))
		PG_RETURN_VOID();

	brandbos_spi_begin(&state, brandbos_extension_owner());
	if (SPI_execute("SELECT (SELECT pg_catalog.count(*) FROM brandbos.data_keys "
					"         WHERE status OPERATOR(pg_catalog.<>) 'destroyed'), "
					"       (SELECT pg_catalog.count(*) FROM brandbos.column_registry)",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not count brandbos data keys");
	live_keys = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	columns = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	brandbos_spi_end(&state);

	if (live_keys == 0 && columns == 0)
		PG_RETURN_VOID();

	if (!allow_drop_with_keys)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("%s would destroy the brandbos data keys", what),
				 errdetail("Data keys not destroyed: " INT64_FORMAT "; protected columns: " INT64_FORMAT ". Every value sealed under those keys, in any table, could never be decrypted again.",
						   live_keys, columns),
				 errhint("Unprotect the columns and decrypt what you need to keep first. To shred every sealed value on purpose, SET brandbos.allow_drop_with_keys = on (superuser) and repeat the command.")));

	ereport(WARNING,
			(errmsg("%s destroys the brandbos data keys", what),
			 errdetail("Data keys not destroyed: " INT64_FORMAT "; protected columns: " INT64_FORMAT ". brandbos.allow_drop_with_keys is on: values sealed under those keys can never be decrypted again.",
					   live_keys, columns)));
	PG_RETURN_VOID();
}
