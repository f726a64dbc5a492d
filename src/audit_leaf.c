/*
 * audit_leaf.c — the canonical bytes of an audit row and their hashes.
 *
 * A row's leaf hash commits to every column except block_id (which the
 * sealer stamps later) and leaf_hash itself.  The payload columns that a
 * GDPR redaction may clear — details, ip_address, user_agent — enter the
 * leaf only through payload_hash, so clearing them keeps the leaf, the
 * Merkle root and the chain intact while verification can still check an
 * unredacted payload against its hash.
 *
 * Encoding: a label, then each field as a 4-byte big-endian length and its
 * bytes (length 0xFFFFFFFF for NULL).  Integers are 8 bytes big-endian;
 * occurred_at is microseconds since 2000-01-01 UTC; text is the stored
 * server-encoded bytes; jsonb and inet are their canonical text output,
 * which depends on no session setting.  Nothing depends on OIDs, TimeZone,
 * DateStyle or client_encoding.
 */
#include "brandbos.h"
#include "merkle.h"

#include <sodium.h>

#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/jsonb.h"

#define NULL_FIELD 0xFFFFFFFFu

static void
put_length(StringInfo buf, uint32 len)
{
	char		b[4];

	b[0] = (char) (len >> 24);
	b[1] = (char) (len >> 16);
	b[2] = (char) (len >> 8);
	b[3] = (char) len;
	appendBinaryStringInfo(buf, b, 4);
}

static void
put_field(StringInfo buf, const char *data, size_t len)
{
	if (data == NULL)
	{
		put_length(buf, NULL_FIELD);
		return;
	}
	put_length(buf, (uint32) len);
	appendBinaryStringInfo(buf, data, len);
}

static void
put_cstring(StringInfo buf, const char *s)
{
	put_field(buf, s, s ? strlen(s) : 0);
}

static void
put_int64(StringInfo buf, int64 v)
{
	char		b[8];
	int			i;

	for (i = 7; i >= 0; i--)
	{
		b[i] = (char) (v & 0xFF);
		v = (int64) ((uint64) v >> 8);
	}
	put_field(buf, b, 8);
}

void
brandbos_audit_payload_hash(Jsonb *details, inet *ip, text *user_agent,
							unsigned char *out)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "bbpayload1");
	if (details)
		put_cstring(&buf, JsonbToCString(NULL, &details->root, VARSIZE(details)));
	else
		put_field(&buf, NULL, 0);
	if (ip)
		put_cstring(&buf, DatumGetCString(DirectFunctionCall1(inet_out, InetPGetDatum(ip))));
	else
		put_field(&buf, NULL, 0);
	if (user_agent)
		put_field(&buf, VARDATA_ANY(user_agent), VARSIZE_ANY_EXHDR(user_agent));
	else
		put_field(&buf, NULL, 0);
	crypto_generichash(out, BB_HASH_BYTES, (unsigned char *) buf.data, buf.len, NULL, 0);
	pfree(buf.data);
}

void
brandbos_audit_leaf_hash(const BrandbosAuditRow *row, unsigned char *out)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "bbleaf1");
	put_int64(&buf, row->id);
	put_int64(&buf, row->occurred_at);
	put_int64(&buf, (int64) row->txid);
	put_cstring(&buf, row->tenant_id);
	put_cstring(&buf, row->user_id);
	put_cstring(&buf, row->db_user);
	put_cstring(&buf, row->action);
	put_cstring(&buf, row->resource_type);
	put_cstring(&buf, row->resource_id);
	put_field(&buf, (const char *) row->payload_hash, BB_HASH_BYTES);
	bb_leaf_hash(out, (unsigned char *) buf.data, buf.len);
	pfree(buf.data);
}
