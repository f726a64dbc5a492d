/*
 * roles.c — who may call what: membership in brandbos's group roles and
 * ownership of a user's table.
 *
 * Checks are made in C against the current user (GetUserId), so they hold
 * whatever EXECUTE grants a DBA adds; a group role that does not exist
 * (the extension is being created or dropped) is held by superusers only.
 */
#include "brandbos.h"

#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

bool
brandbos_has_role(const char *rolename)
{
	Oid			roleid = get_role_oid(rolename, true);

	if (!OidIsValid(roleid))
		return superuser();
	return has_privs_of_role(GetUserId(), roleid);
}

void
brandbos_require_role(const char *rolename, const char *action)
{
	if (!brandbos_has_role(rolename))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", action),
				 errdetail("Only roles with the privileges of \"%s\" may do this.",
						   rolename),
				 errhint("GRANT %s TO the role that needs it.", rolename)));
}

char *
brandbos_require_owned_table(Oid relid)
{
	char		relkind;

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", get_rel_name(relid)),
				 errdetail("Only ordinary and partitioned tables are supported.")));
#if PG_VERSION_NUM >= 160000
	if (!object_ownercheck(RelationRelationId, relid, GetUserId()))
#else
	if (!pg_class_ownercheck(relid, GetUserId()))
#endif
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* a relation's owner; InvalidOid when there is no such relation */
Oid
brandbos_relation_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}
