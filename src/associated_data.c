/*
 * associated_data.c — the bytes that bind an envelope to its place.
 *
 * Associated data = "bbad1" || column id (16 bytes) || for each primary-key
 * column, in key order: a 4-byte big-endian length and the value's bytes.
 * The value bytes must be identical in every session and after dump and
 * restore, so they never depend on OIDs, TimeZone, DateStyle or
 * client_encoding: integers and uuids are written big-endian (as their
 * binary send form), string-like and enum types as their text form in the
 * server encoding, and everything else through its binary send function.
 */
#include "brandbos.h"

#include "catalog/pg_type.h"
#include "parser/parse_coerce.h"
#include "utils/lsyscache.h"
#include "utils/uuid.h"

#define AD_LABEL "bbad1"

void
brandbos_key_encoder_init(BrandbosKeyEncoder *enc, Oid typid, MemoryContext mcxt)
{
	Oid			fnoid;
	bool		isvarlena;
	char		category;
	bool		preferred;

	enc->typid = typid;
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			enc->method = 'i';
			return;
		case UUIDOID:
			enc->method = 'u';
			return;
		case TEXTOID:
		case VARCHAROID:
			enc->method = 't';
			return;
		default:
			break;
	}

	get_type_category_preferred(getBaseType(typid), &category, &preferred);
	if (category == TYPCATEGORY_STRING || category == TYPCATEGORY_ENUM)
	{
		getTypeOutputInfo(typid, &fnoid, &isvarlena);
		enc->method = 'o';
	}
	else
	{
		getTypeBinaryOutputInfo(typid, &fnoid, &isvarlena);
		enc->method = 's';
	}
	fmgr_info_cxt(fnoid, &enc->fn, mcxt);
}

void
brandbos_ad_begin(StringInfo buf, const unsigned char *column_id)
{
	appendBinaryStringInfo(buf, AD_LABEL, sizeof(AD_LABEL) - 1);
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
	switch (enc->method)
	{
		case 'i':
			{
				int64		v;
				char		b[8];
				int			n,
							i;

				if (enc->typid == INT2OID)
					v = DatumGetInt16(value), n = 2;
				else if (enc->typid == INT4OID)
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
