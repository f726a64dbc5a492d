/*
 * audit_leaf.c — the leaf and payload hashes of an audit row, from datums.
 *
 * The encodings themselves are pure C in audit_canonical.c; this file only
 * turns the stored values into the bytes they are hashed as: text is the
 * stored server-encoded bytes, jsonb and inet are their canonical text
 * output (independent of every session setting), timestamps are
 * microseconds since 2000-01-01 UTC.  Nothing depends on OIDs, TimeZone,
 * DateStyle or client_encoding.
 */
#include "brandbos.h"
#include "merkle.h"

#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/jsonb.h"

static bb_bytes
cstring_bytes(const char *s)
{
	bb_bytes	b = {s, s ? strlen(s) : 0};

	return b;
}

void
brandbos_audit_payload_hash(Jsonb *details, inet *ip, text *user_agent,
							unsigned char *out)
{
	bb_bytes	d = {NULL, 0},
				a = {NULL, 0},
				u = {NULL, 0};
	unsigned char *buf;
	size_t		need;

	if (details)
		d = cstring_bytes(JsonbToCString(NULL, &details->root, VARSIZE(details)));
	if (ip)
		a = cstring_bytes(DatumGetCString(DirectFunctionCall1(inet_out, InetPGetDatum(ip))));
	if (user_agent)
	{
		u.data = VARDATA_ANY(user_agent);
		u.len = VARSIZE_ANY_EXHDR(user_agent);
	}
	need = bb_canon_payload(NULL, 0, d, a, u);
	if (need == (size_t) -1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("an audit payload is too long to hash")));
	buf = palloc(need);
	bb_canon_payload(buf, need, d, a, u);
	bb_payload_hash(out, buf, need);
	pfree(buf);
}

void
brandbos_audit_leaf_hash(const BrandbosAuditRow *row, unsigned char *out)
{
	unsigned char *buf;
	size_t		need = bb_canon_leaf(NULL, 0, row);

	if (need == (size_t) -1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("an audit field is too long to hash")));
	buf = palloc(need);
	bb_canon_leaf(buf, need, row);
	bb_leaf_hash(out, buf, need);
	pfree(buf);
}
