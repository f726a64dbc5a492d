/*
 * owner_only.c — what only a table's owner may do to a table brandbos
 * isolates, protects or audits: add a trigger to it, and (isolated tables)
 * truncate it.
 *
 * PostgreSQL lets a role holding the TRIGGER privilege add triggers to a
 * table it does not own, and one holding TRUNCATE empty it; the usual
 * `GRANT ALL ON ALL TABLES IN SCHEMA` hands both to every application role.
 * A trigger runs as whoever writes the table, so a tenant's trigger would
 * read other tenants' rows (and, when a decryptor or a superuser writes,
 * plaintext or anything else) with their rights; row level security does
 * not apply to TRUNCATE, so a tenant's TRUNCATE removes every tenant's rows.
 *
 * 1. The trigger guard: an event trigger on ddl_command_end (ENABLE ALWAYS,
 *    created by the install script, so it works without
 *    shared_preload_libraries and for every role) for CREATE TRIGGER (also
 *    CREATE CONSTRAINT TRIGGER, CREATE OR REPLACE TRIGGER, and CREATE
 *    TRIGGER inside CREATE SCHEMA).  For every trigger the command made, on
 *    a relation that is — or lies below (partition, inheritance child) — a
 *    table brandbos isolates, protects or audits, the current user must have
 *    the privileges of the relation's owner (has_privs_of_role); otherwise
 *    the command fails with 42501 and rolls back.  Rules need no guard:
 *    PostgreSQL lets only the owner create one.
 *
 * 2. The truncate guard: brandbos.isolation_truncate_guard(), a C BEFORE
 *    TRUNCATE statement trigger (enabled always) that policies.c puts on
 *    every relation of an isolated tree (isolation_guard.c for partitions
 *    that join later) and disable_isolation removes.  TRUNCATE fires it for
 *    every relation it empties, partitions included; it refuses (42501)
 *    unless the current user has the privileges of that relation's owner.
 *
 * Invariants: nothing here runs SQL that a user wrote or evaluates a user's
 * function; the owner (and a superuser) keeps PostgreSQL's rights.
 */
#include "brandbos.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

/* brandbos's audit trigger function, or InvalidOid */
static Oid
audit_trigger_function(void)
{
	Oid			nsp = get_namespace_oid(BRANDBOS_SCHEMA, true);
	oidvector  *noargs = buildoidvector(NULL, 0);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid, CStringGetDatum("audit_trigger"),
						   PointerGetDatum(noargs), ObjectIdGetDatum(nsp));
}

/* does relid carry a trigger calling fnoid? */
static bool
has_trigger_of(Oid relid, Oid fnoid)
{
	Relation	trigrel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (!OidIsValid(fnoid))
		return false;
	trigrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(trigrel, TriggerRelidNameIndexId, true, NULL, 1, &key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
		found = ((Form_pg_trigger) GETSTRUCT(tup))->tgfoid == fnoid;
	systable_endscan(scan);
	table_close(trigrel, AccessShareLock);
	return found;
}

/* does brandbos isolate, protect or audit relid itself? */
static bool
managed_itself(Oid relid, Oid audit_fn)
{
	BrandbosIsolation iso;

	brandbos_isolation_own(relid, &iso);
	if (iso.tenant_col[0] != '\0' || iso.owner_col[0] != '\0')
		return true;
	if (has_trigger_of(relid, audit_fn))
		return true;
	return OidIsValid(brandbos_relid("column_registry")) && brandbos_table_is_protected(relid);
}

bool
brandbos_table_is_managed(Oid relid)
{
	Oid			audit_fn = audit_trigger_function();
	ListCell   *lc;

	if (managed_itself(relid, audit_fn))
		return true;
	foreach(lc, brandbos_isolation_ancestors(relid))
		if (managed_itself(lfirst_oid(lc), audit_fn))
			return true;
	return false;
}

/* the relation a trigger is on, or InvalidOid when it is gone */
static Oid
trigger_relation(Oid trigoid)
{
	Relation	trigrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			relid = InvalidOid;

	ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(trigoid));
	scan = systable_beginscan(trigrel, TriggerOidIndexId, true, NULL, 1, &key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
		relid = ((Form_pg_trigger) GETSTRUCT(tup))->tgrelid;
	systable_endscan(scan);
	table_close(trigrel, AccessShareLock);
	return relid;
}

PG_FUNCTION_INFO_V1(brandbos_trigger_guard);
/* SQL: brandbos.trigger_guard() returns event_trigger */
Datum
brandbos_trigger_guard(PG_FUNCTION_ARGS)
{
	Oid			roleid;
	ListCell   *lc;

	if (!brandbos_ddl_guard_applies(fcinfo, "brandbos.trigger_guard()"))
		PG_RETURN_VOID();
	roleid = GetUserId();
	foreach(lc, brandbos_ddl_command_objects(TriggerRelationId))
	{
		Oid			relid = trigger_relation(lfirst_oid(lc));
		Oid			owner;

		if (!OidIsValid(relid))
			continue;
		owner = brandbos_relation_owner(relid);
		if (!OidIsValid(owner) || has_privs_of_role(roleid, owner))
			continue;
		if (!brandbos_table_is_managed(relid))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create a trigger on table \"%s\"", get_rel_name(relid)),
				 errdetail("brandbos isolates, protects or audits the table, and a trigger runs with the rights of whoever writes it; only the table's owner may add one."),
				 errhint("Revoke TRIGGER on the table from roles that do not own it.")));
	}
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_isolation_truncate_guard);
/* SQL: brandbos.isolation_truncate_guard() returns trigger */
Datum
brandbos_isolation_truncate_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) ||
		!TRIGGER_FIRED_BEFORE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("brandbos.isolation_truncate_guard() must be a BEFORE TRUNCATE trigger")));
	rel = td->tg_relation;
	if (!has_privs_of_role(GetUserId(), rel->rd_rel->relowner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to truncate isolated table \"%s\"", RelationGetRelationName(rel)),
				 errdetail("Row level security does not apply to TRUNCATE, which would remove every tenant's rows; only the table's owner may truncate it."),
				 errhint("Delete the tenant's own rows with DELETE.")));
	return PointerGetDatum(NULL);
}
