/*
 * audit_row_image.c — what an audit row says about a changed table row.
 *
 * The details of an INSERT, UPDATE or DELETE are a jsonb object: "new" and
 * "old" hold the row images (column name -> value), and an UPDATE lists the
 * "changed" columns.  A value of a protected column is the string
 * "[protected]", never its envelope or plaintext.  The images are built as
 * JsonbValues and packed once, without printing JSON text and parsing it
 * back.
 *
 * Value mapping (the same jsonb that to_jsonb-style text would parse to):
 * boolean -> true/false; integers, numeric and floats -> JSON numbers, except
 * NaN and infinities, which are strings; json and jsonb -> nested as they
 * are; everything else -> the string its output function prints.  Domains
 * map as their base type.
 *
 * The resource id of a row is its primary key as text: the value itself for
 * a one-column key, a compact JSON array for a composite one.
 *
 * Each column's mapping and output function come from the per-table cache
 * (audit_table_cache.c); each tuple is deformed once.
 *
 * Also here: the flat details objects of brandbos's other audit rows
 * (brandbos_details_*), built the same way.
 */
#include "brandbos.h"
#include "audit_table_cache.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"

static const char protected_marker[] = "[protected]";

static void
push_string(JsonbParseState **state, JsonbIteratorToken token, const char *s, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = len;
	(void) pushJsonbValue(state, token, &v);
}

static void
push_key(JsonbParseState **state, const char *key)
{
	push_string(state, WJB_KEY, key, strlen(key));
}

static void
push_numeric(JsonbParseState **state, Numeric n)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = n;
	(void) pushJsonbValue(state, WJB_VALUE, &v);
}

/* a float's output as a JSON number when it is one, else as a string */
static void
push_float_text(JsonbParseState **state, const char *s)
{
	size_t		len = strlen(s);

	if (strspn(s, "0123456789.-+eE") == len && strpbrk(s, "0123456789") != NULL)
		push_numeric(state, DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(s),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1))));
	else
		push_string(state, WJB_VALUE, s, len);
}

/* one column value, mapped as its cached column info says */
static void
push_value(JsonbParseState **state, Datum value, AuditColumnInfo *col)
{
	char	   *s;

	switch (col->kind)
	{
		case AUDIT_VALUE_BOOL:
			{
				JsonbValue	v;

				v.type = jbvBool;
				v.val.boolean = DatumGetBool(value);
				(void) pushJsonbValue(state, WJB_VALUE, &v);
				return;
			}
		case AUDIT_VALUE_INT2:
			push_numeric(state, DatumGetNumeric(DirectFunctionCall1(int2_numeric, value)));
			return;
		case AUDIT_VALUE_INT4:
			push_numeric(state, DatumGetNumeric(DirectFunctionCall1(int4_numeric, value)));
			return;
		case AUDIT_VALUE_INT8:
			push_numeric(state, DatumGetNumeric(DirectFunctionCall1(int8_numeric, value)));
			return;
		case AUDIT_VALUE_OID:
			push_numeric(state, DatumGetNumeric(DirectFunctionCall1(int8_numeric,
																	Int64GetDatum((int64) DatumGetObjectId(value)))));
			return;
		case AUDIT_VALUE_NUMERIC:
			{
				Numeric		n = DatumGetNumeric(value);

				if (!numeric_is_nan(n) && !numeric_is_inf(n))
				{
					push_numeric(state, n);
					return;
				}
				break;			/* "NaN", "Infinity": strings */
			}
		case AUDIT_VALUE_JSONB:
			{
				Jsonb	   *jb = DatumGetJsonbP(value);
				JsonbValue	v;

				v.type = jbvBinary;
				v.val.binary.data = &jb->root;
				v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
				(void) pushJsonbValue(state, WJB_VALUE, &v);
				return;
			}
		case AUDIT_VALUE_TEXT:
			{
				/* what textout, varcharout and bpcharout print: the stored bytes */
				text	   *t = DatumGetTextPP(value);

				push_string(state, WJB_VALUE, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				return;
			}
		default:
			break;
	}

	s = OutputFunctionCall(&col->output, value);
	if (col->kind == AUDIT_VALUE_FLOAT)
		push_float_text(state, s);
	else if (col->kind == AUDIT_VALUE_JSON)
	{
		Jsonb	   *jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
		JsonbValue	v;

		v.type = jbvBinary;
		v.val.binary.data = &jb->root;
		v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
		(void) pushJsonbValue(state, WJB_VALUE, &v);
	}
	else
		push_string(state, WJB_VALUE, s, strlen(s));
}

/* one row image, an object of its live columns (values and nulls deformed) */
static void
push_row(JsonbParseState **state, TupleDesc tupdesc, AuditTableInfo *info,
		 Datum *values, bool *nulls, Bitmapset *protected)
{
	int			a;

	(void) pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	for (a = 0; a < tupdesc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, a);

		if (att->attisdropped)
			continue;
		push_key(state, NameStr(att->attname));
		if (nulls[a])
		{
			JsonbValue	v;

			v.type = jbvNull;
			(void) pushJsonbValue(state, WJB_VALUE, &v);
		}
		else if (bms_is_member(att->attnum, protected))
			push_string(state, WJB_VALUE, protected_marker, sizeof(protected_marker) - 1);
		else
			push_value(state, values[a], &info->columns[a]);
	}
	(void) pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

Jsonb *
brandbos_audit_row_change(Relation rel, HeapTuple oldtup, HeapTuple newtup,
						  Bitmapset *protected)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	AuditTableInfo *info = brandbos_audit_table_info(rel);
	JsonbParseState *state = NULL;
	JsonbValue *result;
	Datum	   *oldvals = NULL,
			   *newvals = NULL;
	bool	   *oldnulls = NULL,
			   *newnulls = NULL;

	if (oldtup != NULL)
	{
		oldvals = palloc(sizeof(Datum) * Max(tupdesc->natts, 1));
		oldnulls = palloc(sizeof(bool) * Max(tupdesc->natts, 1));
		heap_deform_tuple(oldtup, tupdesc, oldvals, oldnulls);
	}
	if (newtup != NULL)
	{
		newvals = palloc(sizeof(Datum) * Max(tupdesc->natts, 1));
		newnulls = palloc(sizeof(bool) * Max(tupdesc->natts, 1));
		heap_deform_tuple(newtup, tupdesc, newvals, newnulls);
	}

	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if (oldtup != NULL)
	{
		push_key(&state, "old");
		push_row(&state, tupdesc, info, oldvals, oldnulls, protected);
	}
	if (newtup != NULL)
	{
		push_key(&state, "new");
		push_row(&state, tupdesc, info, newvals, newnulls, protected);
	}
	if (oldtup != NULL && newtup != NULL)
	{
		int			a;

		push_key(&state, "changed");
		(void) pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
		for (a = 0; a < tupdesc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, a);

			if (att->attisdropped)
				continue;
			if (oldnulls[a] == newnulls[a] &&
				(oldnulls[a] || datumIsEqual(oldvals[a], newvals[a], att->attbyval, att->attlen)))
				continue;
			push_string(&state, WJB_ELEM, NameStr(att->attname), strlen(NameStr(att->attname)));
		}
		(void) pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}

/* ---------------------------------------------------------------------
 * Flat details objects: {"key": "text" | number | null, ...}
 * --------------------------------------------------------------------- */

void
brandbos_details_begin(BrandbosDetails *d)
{
	d->state = NULL;
	(void) pushJsonbValue(&d->state, WJB_BEGIN_OBJECT, NULL);
}

void
brandbos_details_text(BrandbosDetails *d, const char *key, const char *value)
{
	push_key(&d->state, key);
	if (value == NULL)
	{
		JsonbValue	v;

		v.type = jbvNull;
		(void) pushJsonbValue(&d->state, WJB_VALUE, &v);
	}
	else
		push_string(&d->state, WJB_VALUE, value, strlen(value));
}

void
brandbos_details_int8(BrandbosDetails *d, const char *key, int64 value)
{
	push_key(&d->state, key);
	push_numeric(&d->state, DatumGetNumeric(DirectFunctionCall1(int8_numeric, Int64GetDatum(value))));
}

Jsonb *
brandbos_details_end(BrandbosDetails *d)
{
	return JsonbValueToJsonb(pushJsonbValue(&d->state, WJB_END_OBJECT, NULL));
}

Jsonb *
brandbos_audit_count_details(const char *key, int64 count)
{
	BrandbosDetails d;

	brandbos_details_begin(&d);
	brandbos_details_int8(&d, key, count);
	return brandbos_details_end(&d);
}

/* one key value as compact JSON text, for a composite key's array */
static void
append_key_json(StringInfo buf, Datum value, AuditColumnInfo *col)
{
	char	   *s = OutputFunctionCall(&col->output, value);

	switch (col->kind)
	{
		case AUDIT_VALUE_BOOL:
			appendStringInfoString(buf, strcmp(s, "t") == 0 ? "true" : "false");
			break;
		case AUDIT_VALUE_INT2:
		case AUDIT_VALUE_INT4:
		case AUDIT_VALUE_INT8:
		case AUDIT_VALUE_OID:
			appendStringInfoString(buf, s);
			break;
		case AUDIT_VALUE_FLOAT:
		case AUDIT_VALUE_NUMERIC:
			if (strspn(s, "0123456789.-+eE") == strlen(s) && strpbrk(s, "0123456789"))
				appendStringInfoString(buf, s);
			else
				escape_json(buf, s);
			break;
		case AUDIT_VALUE_JSON:
		case AUDIT_VALUE_JSONB:
			appendStringInfoString(buf, s);
			break;
		default:
			escape_json(buf, s);
			break;
	}
	pfree(s);
}

char *
brandbos_audit_row_key(Relation rel, HeapTuple tuple, int nkeys, AttrNumber *keys)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	AuditTableInfo *info = brandbos_audit_table_info(rel);
	StringInfoData buf;
	int			k;

	if (nkeys == 1)
	{
		bool		isnull;
		Datum		v = heap_getattr(tuple, keys[0], tupdesc, &isnull);

		if (isnull)
			return NULL;
		return OutputFunctionCall(&info->columns[keys[0] - 1].output, v);
	}
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (k = 0; k < nkeys; k++)
	{
		bool		isnull;
		Datum		v = heap_getattr(tuple, keys[k], tupdesc, &isnull);

		if (k > 0)
			appendStringInfoChar(&buf, ',');
		if (isnull)
			appendStringInfoString(&buf, "null");
		else
			append_key_json(&buf, v, &info->columns[keys[k] - 1]);
	}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}
