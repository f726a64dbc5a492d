/*
 * citus_policies.c — brandbos's isolation policies stay restrictive on Citus shards.
 *
 * enable_tenant_isolation makes the tenant and owner policies
 * (brandbos_tenant_<command>, brandbos_owner_<command>) AS RESTRICTIVE beside
 * a permissive brandbos_base that admits every row.  When the table is
 * distributed, Citus re-creates each policy on every shard from its own
 * deparse, which leaves out AS RESTRICTIVE: on a shard the isolation
 * policies would be OR-ed with brandbos_base's true, and every role would
 * see every tenant's rows there.
 *
 * A utility hook (preloaded) on every node of a database with Citus turns a
 * permissive CREATE POLICY with one of those names back into AS RESTRICTIVE.
 * It cannot ask whether the table is a shard: Citus creates a shard's
 * policies before the worker's metadata lists the shard.  The names are
 * brandbos's (policies.c creates them restrictive only), and the rewrite can
 * only narrow what a policy admits: a shard is never more open than its
 * logical table, and a hand-written permissive policy that borrows the
 * reserved names becomes restrictive (the README says so).
 */
#include "brandbos.h"

#include "nodes/parsenodes.h"
#include "tcop/utility.h"

static ProcessUtility_hook_type prev_utility_hook = NULL;

/* the names enable_tenant_isolation gives its restrictive policies (policies.c) */
static bool
is_restrictive_isolation_policy(const char *name)
{
	return name != NULL &&
		(strncmp(name, "brandbos_tenant_", 16) == 0 || strncmp(name, "brandbos_owner_", 15) == 0);
}

static void
citus_policies_utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
							ProcessUtilityContext context, ParamListInfo params,
							QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsA(parsetree, CreatePolicyStmt) &&
		((CreatePolicyStmt *) parsetree)->permissive &&
		is_restrictive_isolation_policy(((CreatePolicyStmt *) parsetree)->policy_name))
	{
		if (brandbos_citus_installed())
		{
			if (readOnlyTree)
			{
				pstmt = copyObject(pstmt);
				readOnlyTree = false;
			}
			((CreatePolicyStmt *) pstmt->utilityStmt)->permissive = false;
		}
	}
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

void
brandbos_citus_policies_init(void)
{
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = citus_policies_utility_hook;
}
