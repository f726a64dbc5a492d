/*
 * deliberation_personas.c — the persona catalogue (SPEC 5).
 *
 * Personas are shared by every user and tenant: everyone reads them (the
 * table's policy), only brandbos_context_admin writes them, through these
 * two functions (42501 for anyone else).  A persona's code is its identity;
 * writing a code again replaces its name, expertise and prompt.
 */
#include "deliberation.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(brandbos_upsert_persona);
/* SQL: brandbos.upsert_persona(code text, name text, expertise text, system_prompt text) returns int */
Datum
brandbos_upsert_persona(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	char	   *code;
	char	   *name;
	bool		isnull;
	int32		id;

	brandbos_require_role(BRANDBOS_ROLE_CONTEXT_ADMIN, "manage personas");
	code = delib_required_text(fcinfo, 0, "code");
	name = delib_required_text(fcinfo, 1, "name");
	values[0] = CStringGetTextDatum(code);
	values[1] = CStringGetTextDatum(name);
	values[2] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	values[3] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[2] = PG_ARGISNULL(2) ? 'n' : ' ';
	nulls[3] = PG_ARGISNULL(3) ? 'n' : ' ';

	brandbos_spi_begin(&state, brandbos_extension_owner());
	brandbos_sql_exec("INSERT INTO brandbos.personas (code, name, expertise, system_prompt) "
					  "VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, "
					  "expertise = EXCLUDED.expertise, system_prompt = EXCLUDED.system_prompt RETURNING id", 4, types, values, nulls, false, BRANDBOS_SQL_ANY);
	id = DatumGetInt32(delib_datum(0, 1, &isnull));
	brandbos_spi_end(&state);
	PG_RETURN_INT32(id);
}

PG_FUNCTION_INFO_V1(brandbos_seed_personas);
/* SQL: brandbos.seed_personas(personas jsonb) returns int */
Datum
brandbos_seed_personas(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	Oid			type = JSONBOID;
	Datum		arg;
	bool		isnull;
	bool		valid;
	int			count;

	brandbos_require_role(BRANDBOS_ROLE_CONTEXT_ADMIN, "manage personas");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("personas must not be null")));
	arg = PG_GETARG_DATUM(0);

	brandbos_spi_begin(&state, brandbos_extension_owner());
	brandbos_sql_exec("SELECT CASE WHEN jsonb_typeof($1) <> 'array' THEN false ELSE NOT EXISTS ("
					  " SELECT 1 FROM jsonb_array_elements($1) e(p)"
					  " WHERE jsonb_typeof(p) <> 'object'"
					  "    OR jsonb_typeof(p -> 'code') IS DISTINCT FROM 'string' OR p ->> 'code' = ''"
					  "    OR jsonb_typeof(p -> 'name') IS DISTINCT FROM 'string'"
					  "    OR coalesce(jsonb_typeof(p -> 'expertise'), 'null') NOT IN ('string', 'null')"
					  "    OR coalesce(jsonb_typeof(p -> 'system_prompt'), 'null') NOT IN ('string', 'null')) END", 1, &type, &arg, NULL, true, BRANDBOS_SQL_ANY);
	valid = DatumGetBool(delib_datum(0, 1, &isnull));
	if (!valid)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("personas must be a JSON array of persona objects"),
				 errdetail("Each element needs string members \"code\" (not empty) and \"name\"; \"expertise\" and \"system_prompt\" are strings or absent.")));
	/* the last object of a code wins */
	brandbos_sql_exec("INSERT INTO brandbos.personas (code, name, expertise, system_prompt) "
					  "SELECT DISTINCT ON (p ->> 'code') p ->> 'code', p ->> 'name', p ->> 'expertise', p ->> 'system_prompt' "
					  "  FROM jsonb_array_elements($1) WITH ORDINALITY e(p, n) ORDER BY p ->> 'code', n DESC "
					  "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, "
					  "expertise = EXCLUDED.expertise, system_prompt = EXCLUDED.system_prompt", 1, &type, &arg, NULL, false, BRANDBOS_SQL_ANY);
	count = (int) SPI_processed;
	brandbos_spi_end(&state);
	PG_RETURN_INT32(count);
}

