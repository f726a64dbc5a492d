/*
 * associated_data.c — the bytes that bind an envelope to its place.
 *
 * Associated data = "bbad1" || column id (16 bytes) || for each primary-key
 * column, in key order: a 4-byte big-endian length and the value's bytes.
 * (The codec puts the envelope header and the column domain in front of it:
 * envelope.h.)
 *
 * The value bytes must be identical in every session and after pg_dump and
 * pg_restore into another database, so they never depend on OIDs,
 * TimeZone, DateStyle or client_encoding.  Only key types whose bytes meet
 * that can bind protected values; the rule is bindable_method() below, and
 * the README lists the accepted types.  By the type's base type (domains
 * bind as the type they are over):
 *
 *   'i'  int2, int4, int8: big-endian, 2/4/8 bytes (their send form)
 *   'u'  uuid: its 16 bytes
 *   't'  text, varchar: the bytes in the server encoding
 *   'o'  other string types (category S: bpchar, name, citext, ...) and
 *        enums: the text form, in the server encoding (an enum's label)
 *   's'  the binary send form, for built-in types whose send form is fixed
 *        bytes with no OID, no setting and no encoding conversion in it
 *        (bool, bytea, "char", oid, float4/8, numeric, date, time, timetz,
 *        timestamp, timestamptz, interval, inet, cidr, macaddr, macaddr8,
 *        bit, varbit, pg_lsn), ranges and multiranges over those, and
 *        arrays of those (an array's send form holds its element type's
 *        OID, which is fixed for built-in types)
 *
 * Every other type is refused with 0A000: composites (their send form
 * holds column type OIDs), arrays of enums, composites, domains, strings or
 * extension types (element OID, or text converted to client_encoding),
 * json/jsonb/xml/tsvector/tsquery (text converted to client_encoding),
 * money (its dump depends on lc_monetary), reg* (OIDs), tid/xid8 (system
 * values) and extension types other than string types.  These methods are
 * byte-identical to what brandbos did before it refused anything, so every
 * value bound by an accepted type keeps decrypting.
 *
 * An encoder of a refused type still computes those old bytes, so that
 * decrypt_column can read values stored before the refusal (and they can
 * be moved out); binding a new value with it raises 0A000.
 */
#include "brandbos.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/uuid.h"

#include "envelope.h"

/* a built-in scalar type whose send form is stable bytes */
static bool
binary_stable_scalar(Oid base)
{
	switch (base)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case UUIDOID:
		case BOOLOID:
		case BYTEAOID:
		case CHAROID:
		case OIDOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
		case DATEOID:
		case TIMEOID:
		case TIMETZOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case INTERVALOID:
		case INETOID:
		case CIDROID:
		case MACADDROID:
		case MACADDR8OID:
		case BITOID:
		case VARBITOID:
		case PG_LSNOID:
			return true;
		default:
			return false;
	}
}

/*
 * How a key type binds (see the top of this file), or 0 when it cannot;
 * *why then says in a sentence why not.
 */
static char
bindable_method(Oid typid, const char **why)
{
	Oid			base = getBaseType(typid);
	char		typtype = get_typtype(base);
	char		category;
	bool		preferred;
	Oid			elem;

	*why = NULL;
	switch (base)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return 'i';
		case UUIDOID:
			return 'u';
		case TEXTOID:
		case VARCHAROID:
			return 't';
		default:
			break;
	}
	if (binary_stable_scalar(base))
		return 's';

	if (typtype == TYPTYPE_COMPOSITE)
	{
		*why = "A composite value is bound through a form that holds the OIDs of its column types, which change in pg_restore.";
		return 0;
	}
	if (typtype == TYPTYPE_RANGE || typtype == TYPTYPE_MULTIRANGE)
	{
		Oid			range = typtype == TYPTYPE_RANGE ? base : get_multirange_range(base);
		Oid			sub = OidIsValid(range) ? getBaseType(get_range_subtype(range)) : InvalidOid;

		if (OidIsValid(sub) && binary_stable_scalar(sub))
			return 's';
		*why = "A range is bound through its subtype's form, and this subtype has none that survives pg_dump and pg_restore.";
		return 0;
	}
	elem = get_element_type(base);
	if (OidIsValid(elem))
	{
		/* the send form holds the element type's OID: fixed for built-ins only */
		if (elem < FirstGenbkiObjectId && binary_stable_scalar(elem))
			return 's';
		*why = "An array is bound through a form that holds its element type's OID and the elements' own forms; only arrays of built-in numeric, date/time, network, bit, bool, bytea and uuid types qualify.";
		return 0;
	}
	if (typtype == TYPTYPE_ENUM)
		return 'o';				/* the label: survives pg_restore, unlike the OID */
	get_type_category_preferred(base, &category, &preferred);
	if (typtype == TYPTYPE_BASE && category == TYPCATEGORY_STRING)
		return 'o';
	if (base == MONEYOID)
		*why = "A money value's dump depends on lc_monetary, so the value itself may change in pg_restore.";
	else if (base < FirstGenbkiObjectId)
		*why = "Its binary form holds OIDs, converts text to client_encoding or names a physical or system value.";
	else
		*why = "brandbos cannot tell whether a form of a type it does not know survives pg_dump and pg_restore.";
	return 0;
}

void
brandbos_require_bindable_key_type(Oid typid, const char *colname)
{
	const char *why;

	if (bindable_method(typid, &why) != 0)
		return;
	if (colname != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("primary-key column \"%s\" of type %s cannot bind protected values",
						colname, format_type_be(typid)),
				 errdetail("%s", why),
				 errhint("Use a primary key of a built-in integer, text, uuid, numeric or date/time type, an enum, or a domain over one.")));
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("primary-key type %s cannot bind protected values", format_type_be(typid)),
			 errdetail("%s", why),
			 errhint("Use a primary key of a built-in integer, text, uuid, numeric or date/time type, an enum, or a domain over one.")));
}

void
brandbos_key_encoder_init(BrandbosKeyEncoder *enc, Oid typid, MemoryContext mcxt)
{
	const char *why;
	Oid			fnoid;
	bool		isvarlena;

	enc->typid = typid;
	enc->base = getBaseType(typid);
	enc->method = bindable_method(typid, &why);
	enc->refuse = (enc->method == 0);
	switch (enc->method)
	{
		case 'i':
		case 'u':
		case 't':
			return;
		case 'o':
			getTypeOutputInfo(enc->base, &fnoid, &isvarlena);
			break;
		default:
			/* 's', and the old form of a refused type (for reading only) */
			enc->method = 's';
			getTypeBinaryOutputInfo(enc->base, &fnoid, &isvarlena);
			break;
	}
	fmgr_info_cxt(fnoid, &enc->fn, mcxt);
}

void
brandbos_ad_begin(StringInfo buf, const unsigned char *column_id)
{
	appendBinaryStringInfo(buf, BB_ENV_COLUMN_LABEL, BB_ENV_COLUMN_LABEL_LEN);
	appendBinaryStringInfo(buf, (const char *) column_id, BRANDBOS_COLUMN_ID_BYTES);
}

static void
append_u32(StringInfo buf, uint32 v)
{
	char		b[4];

	b[0] = (char) (v >> 24);
	b[1] = (char) (v >> 16);
	b[2] = (char) (v >> 8);
	b[3] = (char) v;
	appendBinaryStringInfo(buf, b, 4);
}

static void
append_counted(StringInfo buf, const char *data, size_t len)
{
	append_u32(buf, (uint32) len);
	appendBinaryStringInfo(buf, data, len);
}

void
brandbos_ad_append(StringInfo buf, BrandbosKeyEncoder *enc, Datum value)
{
	if (unlikely(enc->refuse))
		brandbos_require_bindable_key_type(enc->typid, NULL);
	switch (enc->method)
	{
		case 'i':
			{
				int64		v;
				char		b[8];
				int			n,
							i;

				if (enc->base == INT2OID)
					v = DatumGetInt16(value), n = 2;
				else if (enc->base == INT4OID)
					v = DatumGetInt32(value), n = 4;
				else
					v = DatumGetInt64(value), n = 8;
				for (i = 0; i < n; i++)
					b[i] = (char) ((uint64) v >> (8 * (n - 1 - i)));
				append_counted(buf, b, n);
				break;
			}
		case 'u':
			append_counted(buf, (const char *) DatumGetUUIDP(value)->data, UUID_LEN);
			break;
		case 't':
			{
				text	   *t = DatumGetTextPP(value);

				append_counted(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				break;
			}
		case 'o':
			{
				char	   *s = OutputFunctionCall(&enc->fn, value);

				append_counted(buf, s, strlen(s));
				pfree(s);
				break;
			}
		default:
			{
				bytea	   *b = SendFunctionCall(&enc->fn, value);

				append_counted(buf, VARDATA(b), VARSIZE(b) - VARHDRSZ);
				pfree(b);
				break;
			}
	}
}
