/*
 * isolation_check.c — which tenant and owner isolation a relation carries,
 * which it must carry, and how its policies depart from it.
 *
 * A relation carries a kind of isolation (tenant, owner) when it has any of
 * the policies brandbos_<kind>_{select,insert,update,delete}; the isolated
 * column is the one those policies compare.  A partition (or inheritance
 * child) must carry its own kinds and every kind of each of its ancestors,
 * so a table reached directly is never more open than through its parent.
 *
 * Isolated as brandbos means, for each kind, all four policies present,
 * RESTRICTIVE (so permissive policies can only widen within them), for
 * PUBLIC, for their command, with exactly the USING / WITH CHECK expression
 * brandbos_isolation_qual_sql() gives, compared as the parsed expression
 * tree PostgreSQL stores.  The owner kind's expression lets a request of a
 * brandbos_tenant_admin member with an admin app role cross users only when
 * the relation is tenant-isolated too (the tenant policies then keep the
 * admin to its own tenant); without tenant isolation it has no such arm.
 * It also means brandbos's truncate guard (owner_only.c) on the relation,
 * and no permissive policy of the table's own for a command that
 * brandbos_base already admits (it would add nothing).  Grants that row
 * level security does not limit (TRUNCATE, TRIGGER, REFERENCES held by
 * non-owners) are reported apart: enabling isolation does not change them.
 *
 * Everything here reads the catalogs and parses brandbos's own expression
 * text; it runs no SQL and evaluates no function a user wrote.
 */
#include "brandbos.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_clause.h"
#include "parser/parse_collate.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

const char *const brandbos_isolation_commands[4] = {"select", "insert", "update", "delete"};
const char brandbos_isolation_command_chars[4] = {'r', 'a', 'w', 'd'};
#define command_chars brandbos_isolation_command_chars

static const char *
kind_name(bool owner)
{
	return owner ? "owner" : "tenant";
}

static char *
kind_column(BrandbosIsolation *iso, bool owner)
{
	return owner ? iso->owner_col : iso->tenant_col;
}

/* the pg_policy row of relid called name, copied, or NULL */
static HeapTuple
policy_tuple(Relation polrel, Oid relid, const char *name)
{
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;
	HeapTuple	copy = NULL;

	ScanKeyInit(&keys[0], Anum_pg_policy_polrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	ScanKeyInit(&keys[1], Anum_pg_policy_polname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(name));
	scan = systable_beginscan(polrel, PolicyPolrelidPolnameIndexId, true, NULL, 2, keys);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
		copy = heap_copytuple(tup);
	systable_endscan(scan);
	return copy;
}

static Node *
policy_expr_of(Relation polrel, HeapTuple tup, AttrNumber attnum)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, attnum, RelationGetDescr(polrel), &isnull);

	return isnull ? NULL : stringToNode(TextDatumGetCString(d));
}

void
brandbos_isolation_own(Oid relid, BrandbosIsolation *iso)
{
	Relation	polrel = table_open(PolicyRelationId, AccessShareLock);
	int			k;

	memset(iso, 0, sizeof(*iso));
	for (k = 0; k < 2; k++)
	{
		bool		found = false;
		int			i;

		for (i = 0; i < 4 && kind_column(iso, k == 1)[0] == '\0'; i++)
		{
			char	   *name = psprintf("brandbos_%s_%s", kind_name(k == 1), brandbos_isolation_commands[i]);
			HeapTuple	tup = policy_tuple(polrel, relid, name);
			List	   *vars;
			char	   *att;

			if (tup == NULL)
				continue;
			found = true;
			vars = pull_var_clause(policy_expr_of(polrel, tup, Anum_pg_policy_polqual), 0);
			if (vars == NIL)
				vars = pull_var_clause(policy_expr_of(polrel, tup, Anum_pg_policy_polwithcheck), 0);
			att = vars ? get_attname(relid, ((Var *) linitial(vars))->varattno, true) : NULL;
			if (att != NULL)
				strlcpy(kind_column(iso, k == 1), att, NAMEDATALEN);
		}
		/* policies of these names that compare no column still mark the kind */
		if (found && kind_column(iso, k == 1)[0] == '\0')
			strlcpy(kind_column(iso, k == 1), "?", NAMEDATALEN);
	}
	table_close(polrel, AccessShareLock);
}

/* the direct parents of relid (partitioned table or inheritance parents) */
static List *
parents_of(Oid relid)
{
	Relation	inh = table_open(InheritsRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *parents = NIL;

	ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(inh, InheritsRelidSeqnoIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
		parents = lappend_oid(parents, ((Form_pg_inherits) GETSTRUCT(tup))->inhparent);
	systable_endscan(scan);
	table_close(inh, AccessShareLock);
	return parents;
}

List *
brandbos_isolation_ancestors(Oid relid)
{
	List	   *result = NIL;
	List	   *todo = parents_of(relid);

	while (todo != NIL)
	{
		Oid			rel = linitial_oid(todo);

		todo = list_delete_first(todo);
		if (list_member_oid(result, rel))
			continue;
		result = lappend_oid(result, rel);
		todo = list_concat(todo, parents_of(rel));
	}
	return result;
}

void
brandbos_isolation_expected(Oid relid, BrandbosIsolation *iso)
{
	ListCell   *lc;

	brandbos_isolation_own(relid, iso);
	/* nearest first: a nearer ancestor's column is the one kept */
	foreach(lc, brandbos_isolation_ancestors(relid))
	{
		BrandbosIsolation up;

		brandbos_isolation_own(lfirst_oid(lc), &up);
		/* "?": the relation's own policies of the kind compare no column */
		if ((iso->tenant_col[0] == '\0' || strcmp(iso->tenant_col, "?") == 0) && up.tenant_col[0] != '\0')
			strlcpy(iso->tenant_col, up.tenant_col, NAMEDATALEN);
		if ((iso->owner_col[0] == '\0' || strcmp(iso->owner_col, "?") == 0) && up.owner_col[0] != '\0')
			strlcpy(iso->owner_col, up.owner_col, NAMEDATALEN);
	}
}

const char *
brandbos_isolation_helper(Oid relid, const char *col, bool owner)
{
	AttrNumber	attnum = get_attnum(relid, col);
	Oid			typid;

	if (attnum == InvalidAttrNumber || attnum < 0)
		return NULL;
	typid = getBaseType(get_atttype(relid, attnum));
	if (typid == TEXTOID || typid == VARCHAROID)
		return owner ? "brandbos.current_user_id()" : "brandbos.current_tenant_id()";
	if (typid == UUIDOID)
		return owner ? "brandbos.current_user_uuid()" : "brandbos.current_tenant_uuid()";
	return NULL;
}

char *
brandbos_isolation_qual_sql(Oid relid, bool owner, const BrandbosIsolation *iso)
{
	const char *col = owner ? iso->owner_col : iso->tenant_col;
	const char *helper = brandbos_isolation_helper(relid, col, owner);
	char	   *cmp;

	if (helper == NULL)
		return NULL;
	cmp = psprintf("(%s OPERATOR(pg_catalog.=) %s)", quote_identifier(col), helper);
	if (owner && iso->tenant_col[0] != '\0')
		return psprintf("(%s OR (brandbos.is_admin() AND "
						"pg_catalog.pg_has_role('brandbos_tenant_admin'::pg_catalog.name, "
						"'USAGE'::pg_catalog.text)))", cmp);
	return cmp;
}

/* brandbos's expression text as CREATE POLICY would store it for rel */
static Node *
parsed_policy_expr(Relation rel, const char *sql)
{
	List	   *raw = raw_parser(psprintf("SELECT %s", sql), RAW_PARSE_DEFAULT);
	SelectStmt *select = (SelectStmt *) ((RawStmt *) linitial(raw))->stmt;
	ResTarget  *target = linitial(select->targetList);
	ParseState *pstate = make_parsestate(NULL);
	ParseNamespaceItem *nsitem;
	Node	   *expr;

	nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL, false, false);
	addNSItemToQuery(pstate, nsitem, false, true, true);
	expr = transformWhereClause(pstate, target->val, EXPR_KIND_POLICY, "POLICY");
	assign_expr_collations(pstate, expr);
	free_parsestate(pstate);
	return expr;
}

static bool
for_public_only(Relation polrel, HeapTuple tup)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, Anum_pg_policy_polroles, RelationGetDescr(polrel), &isnull);
	ArrayType  *roles;

	if (isnull)
		return false;
	roles = DatumGetArrayTypeP(d);
	return ARR_NDIM(roles) == 1 && ARR_DIMS(roles)[0] == 1 &&
		((Oid *) ARR_DATA_PTR(roles))[0] == InvalidOid;
}

/* which commands (r, a, w, d) a permissive policy covers */
static void
policy_covers(char polcmd, bool covers[4])
{
	int			i;

	for (i = 0; i < 4; i++)
		covers[i] = polcmd == '*' || polcmd == command_chars[i];
}

/*
 * brandbos_base (or brandbos_base_<command>) admits every row, so a
 * permissive policy of the table's own for the same command adds nothing:
 * enabling isolation again gives that command back to the table's policy.
 */
static List *
base_policy_problems(Relation polrel, Oid relid)
{
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		base[4] = {false, false, false, false};
	bool		own[4] = {false, false, false, false};
	List	   *problems = NIL;
	int			i;

	ScanKeyInit(&key, Anum_pg_policy_polrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(polrel, PolicyPolrelidPolnameIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_policy pol = (Form_pg_policy) GETSTRUCT(tup);
		const char *name = NameStr(pol->polname);
		bool		covers[4];
		bool		is_base = strcmp(name, "brandbos_base") == 0;

		if (!pol->polpermissive)
			continue;
		for (i = 0; i < 4; i++)
			if (strcmp(name, psprintf("brandbos_base_%s", brandbos_isolation_commands[i])) == 0)
				is_base = true;
		if (!is_base && strncmp(name, "brandbos_", 9) == 0)
			continue;
		policy_covers(pol->polcmd, covers);
		for (i = 0; i < 4; i++)
			if (covers[i])
			{
				if (is_base)
					base[i] = true;
				else
					own[i] = true;
			}
	}
	systable_endscan(scan);
	for (i = 0; i < 4; i++)
		if (base[i] && own[i])
			problems = lappend(problems, psprintf("brandbos's base policy admits every row for %s, so the table's own permissive policies for it add nothing (enable isolation again to keep them)",
												  brandbos_isolation_commands[i]));
	return problems;
}

/* brandbos's BEFORE TRUNCATE statement trigger, enabled always, on the relation */
static bool
has_truncate_guard(Oid relid)
{
	List	   *names = lappend(list_make1(makeString(BRANDBOS_SCHEMA)),
									makeString("isolation_truncate_guard"));
	Oid			fnoid = LookupFuncName(names, 0, NULL, true);
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
	{
		Form_pg_trigger trig = (Form_pg_trigger) GETSTRUCT(tup);
		bool		isnull;

		(void) heap_getattr(tup, Anum_pg_trigger_tgqual, RelationGetDescr(trigrel), &isnull);
		found = trig->tgfoid == fnoid && trig->tgtype == (TRIGGER_TYPE_BEFORE | TRIGGER_TYPE_TRUNCATE) &&
			trig->tgenabled == TRIGGER_FIRES_ALWAYS && trig->tgnargs == 0 && isnull;
	}
	systable_endscan(scan);
	table_close(trigrel, AccessShareLock);
	return found;
}

char *
brandbos_isolation_grant_problem(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;
	bool		isnull;
	Datum		d;
	Acl		   *acl;
	AclItem    *items;
	StringInfoData buf;
	int			i;

	if (!HeapTupleIsValid(tup))
		return NULL;
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relacl, &isnull);
	if (isnull)
	{
		ReleaseSysCache(tup);
		return NULL;
	}
	acl = DatumGetAclPCopy(d);
	ReleaseSysCache(tup);
	items = ACL_DAT(acl);
	initStringInfo(&buf);
	for (i = 0; i < ACL_NUM(acl); i++)
	{
		AclMode		privs = ACLITEM_GET_PRIVS(items[i]);
		Oid			grantee = items[i].ai_grantee;
		char	   *name;

		if ((privs & (ACL_TRUNCATE | ACL_TRIGGER | ACL_REFERENCES)) == 0)
			continue;
		if (grantee != ACL_ID_PUBLIC && has_privs_of_role(grantee, owner))
			continue;
		name = grantee == ACL_ID_PUBLIC ? "PUBLIC" : GetUserNameFromId(grantee, true);
		appendStringInfo(&buf, "%s%s holds", buf.len > 0 ? "; " : "", name ? name : "an unknown role");
		if (privs & ACL_TRUNCATE)
			appendStringInfoString(&buf, " TRUNCATE");
		if (privs & ACL_TRIGGER)
			appendStringInfoString(&buf, " TRIGGER");
		if (privs & ACL_REFERENCES)
			appendStringInfoString(&buf, " REFERENCES");
	}
	if (buf.len == 0)
		return NULL;
	return psprintf("grants that row level security does not limit, to roles that do not own the table: %s "
					"(brandbos refuses their TRUNCATE and CREATE TRIGGER; a foreign key through REFERENCES sees every tenant's keys: revoke them)",
					buf.data);
}

List *
brandbos_isolation_problems(Oid relid, const BrandbosIsolation *iso)
{
	BrandbosIsolation own;
	BrandbosIsolation want = *iso;
	Relation	rel;
	Relation	polrel;
	List	   *problems = NIL;
	HeapTuple	tup;
	int			k;

	if (iso->tenant_col[0] == '\0' && iso->owner_col[0] == '\0')
		return NIL;
	if (get_rel_relkind(relid) == RELKIND_FOREIGN_TABLE)
		return list_make1(pstrdup("foreign table in an isolated table's partitions: row level security does not apply to it"));
	brandbos_isolation_own(relid, &own);
	rel = table_open(relid, AccessShareLock);
	polrel = table_open(PolicyRelationId, AccessShareLock);
	for (k = 0; k < 2; k++)
	{
		bool		owner = (k == 1);
		const char *kind = kind_name(owner);
		char	   *sql;
		Node	   *expected;
		int			i;

		if (kind_column(&want, owner)[0] == '\0')
			continue;
		if (kind_column(&own, owner)[0] == '\0')
		{
			problems = lappend(problems, psprintf("no %s isolation, which the table it belongs to has", kind));
			continue;
		}
		if (strcmp(kind_column(&want, owner), "?") == 0)
		{
			problems = lappend(problems, psprintf("%s isolation: its policies compare no column, they are not the ones brandbos creates",
												  kind));
			continue;
		}
		sql = brandbos_isolation_qual_sql(relid, owner, &want);
		if (sql == NULL)
		{
			problems = lappend(problems, psprintf("%s isolation: column %s is missing or not text, varchar or uuid",
												  kind, kind_column(&want, owner)));
			continue;
		}
		expected = parsed_policy_expr(rel, sql);
		for (i = 0; i < 4; i++)
		{
			char	   *name = psprintf("brandbos_%s_%s", kind, brandbos_isolation_commands[i]);
			Form_pg_policy pol;
			Node	   *qual;
			Node	   *check;
			bool		want_qual = command_chars[i] != 'a';
			bool		want_check = command_chars[i] == 'a' || command_chars[i] == 'w';

			tup = policy_tuple(polrel, relid, name);
			if (tup == NULL)
			{
				problems = lappend(problems, psprintf("%s isolation: policy %s is missing", kind, name));
				continue;
			}
			pol = (Form_pg_policy) GETSTRUCT(tup);
			qual = policy_expr_of(polrel, tup, Anum_pg_policy_polqual);
			check = policy_expr_of(polrel, tup, Anum_pg_policy_polwithcheck);
			if (pol->polpermissive)
				problems = lappend(problems, psprintf("%s isolation: policy %s is permissive, so any permissive policy widens it",
													  kind, name));
			else if (!for_public_only(polrel, tup))
				problems = lappend(problems, psprintf("%s isolation: policy %s does not apply to every role", kind, name));
			else if (pol->polcmd != command_chars[i] ||
					 (want_qual ? !equal(qual, expected) : qual != NULL) ||
					 (want_check ? !equal(check, expected) : check != NULL))
				problems = lappend(problems, psprintf("%s isolation: policy %s is not the one brandbos creates", kind, name));
		}
	}
	tup = policy_tuple(polrel, relid, "brandbos_admin");
	if (tup != NULL && ((Form_pg_policy) GETSTRUCT(tup))->polpermissive)
		problems = lappend(problems, pstrdup("policy brandbos_admin is permissive and lets admins cross tenants"));
	problems = list_concat(problems, base_policy_problems(polrel, relid));
	if (!has_truncate_guard(relid))
		problems = lappend(problems, psprintf("trigger %s is missing or not a BEFORE TRUNCATE statement trigger enabled always: a role that may truncate the table removes every tenant's rows",
											  BRANDBOS_TRUNCATE_GUARD_NAME));
	table_close(polrel, AccessShareLock);
	table_close(rel, AccessShareLock);
	return problems;
}
