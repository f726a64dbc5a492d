/*
 * deliberation_gdpr.c — a user's export and erasure (SPEC 5).
 *
 * Invariants:
 *   - Only the data subject (the context's user) or a role with the
 *     privileges of brandbos_context_admin acts on a user's data (42501).
 *   - The export lists everything held about the user: the users row,
 *     their sessions with contributions and votes, the audit rows that name
 *     them or one of their sessions.
 *   - The erasure removes the sessions (with their rows) and the users row,
 *     redacts the payloads of exactly the audit rows the export lists, keeps
 *     their hashes (the log still verifies), records each redaction and logs
 *     the erasure itself.
 */
#include "deliberation.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

/*
 * The data subject may export or erase their own data; so may members of
 * brandbos_context_admin (the application's backend, which could act as
 * any user through set_context anyway) and superusers.  Anyone else: 42501.
 */
static char *
gdpr_subject(FunctionCallInfo fcinfo, const char *action)
{
	char	   *user_id = delib_required_text(fcinfo, 0, "user_id");
	const char *ctx_user,
			   *ctx_tenant,
			   *ip,
			   *agent;

	brandbos_context_actor(&ctx_user, &ctx_tenant, &ip, &agent);
	if ((ctx_user == NULL || strcmp(ctx_user, user_id) != 0) &&
		!brandbos_has_role(BRANDBOS_ROLE_CONTEXT_ADMIN))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s the data of another user", action),
				 errdetail("Only the user of the request context, or a role with the privileges of \"%s\", may do this.",
						   BRANDBOS_ROLE_CONTEXT_ADMIN)));
	return user_id;
}

PG_FUNCTION_INFO_V1(brandbos_gdpr_export);
/*
 * SQL: brandbos.gdpr_export(user_id text) returns jsonb
 *
 * Everything held about a user: the users row, their sessions with their
 * contributions and votes, and the audit rows naming them as actor or
 * concerning one of their sessions.
 */
Datum
brandbos_gdpr_export(PG_FUNCTION_ARGS)
{
	char	   *user_id = gdpr_subject(fcinfo, "export");
	BrandbosInternalState state;
	Oid			type = TEXTOID;
	Datum		arg = CStringGetTextDatum(user_id);
	Datum		result;
	bool		isnull;

	brandbos_spi_begin(&state, brandbos_extension_owner());
	brandbos_sql_exec("SELECT jsonb_build_object("
					  " 'user_id', $1::text, 'exported_at', now(),"
					  " 'user', (SELECT to_jsonb(u) FROM brandbos.users u WHERE u.id = $1),"
					  " 'sessions', coalesce((SELECT jsonb_agg(to_jsonb(s) || jsonb_build_object("
					  "     'contributions', coalesce((SELECT jsonb_agg(to_jsonb(c) ORDER BY c.id) FROM brandbos.contributions c"
					  "                                 WHERE c.session_id = s.id), '[]'),"
					  "     'votes', coalesce((SELECT jsonb_agg(to_jsonb(v) ORDER BY v.id) FROM brandbos.votes v"
					  "                         WHERE v.session_id = s.id), '[]')) ORDER BY s.created_at, s.id)"
					  "   FROM brandbos.sessions s WHERE s.user_id = $1), '[]'),"
					  " 'audit', coalesce((SELECT jsonb_agg(jsonb_build_object('id', e.id, 'occurred_at', e.occurred_at,"
					  "     'action', e.action, 'resource_type', e.resource_type, 'resource_id', e.resource_id,"
					  "     'details', e.details, 'ip_address', e.ip_address, 'user_agent', e.user_agent) ORDER BY e.id)"
					  "   FROM brandbos.audit_entries e WHERE e.user_id = $1 OR (e.resource_type = 'session' AND"
					  "     e.resource_id IN (SELECT s.id FROM brandbos.sessions s WHERE s.user_id = $1))), '[]'))", 1, &type, &arg, NULL, true, BRANDBOS_SQL_ANY);
	result = SPI_datumTransfer(delib_datum(0, 1, &isnull), false, -1);
	brandbos_spi_end(&state);
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(brandbos_gdpr_erase);
/*
 * SQL: brandbos.gdpr_erase(user_id text) returns jsonb
 *
 * Deletes the user's sessions (their contributions and votes go with them)
 * and users row, redacts the payload of the audit rows that gdpr_export
 * would list (as redact_audit does: hashes kept, so verification passes),
 * and logs the erasure.  Returns what was removed.
 */
Datum
brandbos_gdpr_erase(PG_FUNCTION_ARGS)
{
	char	   *user_id = gdpr_subject(fcinfo, "erase");
	BrandbosInternalState state;
	Oid			types[3] = {TEXTOID, INT8OID, TEXTOID};
	Datum		values[3];
	bool		isnull;
	int64		contributions,
				votes,
				sessions,
				users;
	int64	   *ids;
	uint64		nids,
				i;
	BrandbosDetails details;
	Jsonb	   *result;
	const char *who = GetUserNameFromId(GetUserId(), false);

	values[0] = CStringGetTextDatum(user_id);
	brandbos_spi_begin(&state, brandbos_extension_owner());

	/* audit rows to redact, found before the sessions go */
	brandbos_sql_exec("SELECT e.id FROM brandbos.audit_entries e "
					  "WHERE (e.user_id = $1 OR (e.resource_type = 'session' AND e.resource_id IN "
					  "       (SELECT s.id FROM brandbos.sessions s WHERE s.user_id = $1))) "
					  "  AND (e.details IS NOT NULL OR e.ip_address IS NOT NULL OR e.user_agent IS NOT NULL) "
					  "ORDER BY e.id FOR SHARE", 1, types, values, NULL, false, BRANDBOS_SQL_ANY);
	nids = SPI_processed;
	ids = palloc(sizeof(int64) * (nids + 1));
	for (i = 0; i < nids; i++)
		ids[i] = DatumGetInt64(delib_datum(i, 1, &isnull));

	brandbos_sql_exec("SELECT (SELECT count(*) FROM brandbos.contributions c JOIN brandbos.sessions s ON s.id = c.session_id"
					  "         WHERE s.user_id = $1),"
					  "       (SELECT count(*) FROM brandbos.votes v JOIN brandbos.sessions s ON s.id = v.session_id"
					  "         WHERE s.user_id = $1)", 1, types, values, NULL, true, BRANDBOS_SQL_ANY);
	contributions = DatumGetInt64(delib_datum(0, 1, &isnull));
	votes = DatumGetInt64(delib_datum(0, 2, &isnull));
	brandbos_sql_exec("DELETE FROM brandbos.sessions WHERE user_id = $1", 1, types, values, NULL, false, BRANDBOS_SQL_ANY);
	sessions = (int64) SPI_processed;
	brandbos_sql_exec("DELETE FROM brandbos.users WHERE id = $1", 1, types, values, NULL, false, BRANDBOS_SQL_ANY);
	users = (int64) SPI_processed;

	values[2] = CStringGetTextDatum(who);
	for (i = 0; i < nids; i++)
	{
		values[1] = Int64GetDatum(ids[i]);
		brandbos_sql_exec("INSERT INTO brandbos.audit_redactions (audit_id, reason, redacted_at, redacted_by) "
						  "VALUES ($2, 'gdpr erasure', now(), $3::name) ON CONFLICT (audit_id) DO NOTHING", 3, types, values, NULL, false, BRANDBOS_SQL_ANY);
		brandbos_audit_maintenance = true;
		PG_TRY();
		{
			brandbos_sql_exec("UPDATE brandbos.audit_entries SET details = NULL, ip_address = NULL, user_agent = NULL "
							  "WHERE id = $2", 3, types, values, NULL, false, BRANDBOS_SQL_ANY);
		}
		PG_FINALLY();
		{
			brandbos_audit_maintenance = false;
		}
		PG_END_TRY();
		{
			BrandbosDetails why;

			brandbos_details_begin(&why);
			brandbos_details_text(&why, "reason", "gdpr erasure");
			brandbos_audit_append("audit_redacted", "audit_log", psprintf(INT64_FORMAT, ids[i]),
								  brandbos_details_end(&why));
		}
	}
	brandbos_spi_end(&state);

	brandbos_details_begin(&details);
	brandbos_details_int8(&details, "sessions", sessions);
	brandbos_details_int8(&details, "contributions", contributions);
	brandbos_details_int8(&details, "votes", votes);
	brandbos_details_int8(&details, "users", users);
	brandbos_details_int8(&details, "audit_rows_redacted", (int64) nids);
	result = brandbos_details_end(&details);
	brandbos_audit_append("gdpr_erased", "user", user_id, result);
	PG_RETURN_JSONB_P(result);
}
