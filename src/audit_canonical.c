/*
 * audit_canonical.c — canonical encodings of audit rows (see the header).
 *
 * Pure C: the writer (audit_writer.c) and the verifier (audit_verify.c)
 * reach it through audit_leaf.c, which turns datums into bb_bytes.
 */
#include "audit_canonical.h"

#include <string.h>
#include <sodium.h>

#define LEAF_LABEL "bbleaf1"
#define PAYLOAD_LABEL "bbpayload1"

/* a writer that counts every byte, and stores them when out is set */
typedef struct canon_writer
{
	unsigned char *out;
	size_t		cap;
	size_t		len;
	int			too_long;
} canon_writer;

static void
put_raw(canon_writer *w, const void *data, size_t n)
{
	if (w->out != NULL)
		memcpy(w->out + w->len, data, n);
	w->len += n;
}

static void
put_length(canon_writer *w, uint32_t n)
{
	unsigned char b[4];

	b[0] = (unsigned char) (n >> 24);
	b[1] = (unsigned char) (n >> 16);
	b[2] = (unsigned char) (n >> 8);
	b[3] = (unsigned char) n;
	put_raw(w, b, 4);
}

static void
put_field(canon_writer *w, bb_bytes f)
{
	if (f.data == NULL)
	{
		put_length(w, BB_CANON_NULL_LENGTH);
		return;
	}
	if (f.len >= BB_CANON_NULL_LENGTH)
	{
		w->too_long = 1;
		return;
	}
	put_length(w, (uint32_t) f.len);
	put_raw(w, f.data, f.len);
}

static void
put_cstring(canon_writer *w, const char *s)
{
	bb_bytes	f = {s, s ? strlen(s) : 0};

	put_field(w, f);
}

static void
put_int64(canon_writer *w, uint64_t v)
{
	unsigned char b[8];
	bb_bytes	f = {(const char *) b, 8};
	int			i;

	for (i = 7; i >= 0; i--)
	{
		b[i] = (unsigned char) (v & 0xFF);
		v >>= 8;
	}
	put_field(w, f);
}

static size_t
finish(const canon_writer *w)
{
	return w->too_long ? (size_t) -1 : w->len;
}

static void
write_leaf(canon_writer *w, const bb_audit_fields *f)
{
	bb_bytes	payload = {(const char *) f->payload_hash, BB_AUDIT_HASH_BYTES};

	put_raw(w, LEAF_LABEL, strlen(LEAF_LABEL));
	put_int64(w, (uint64_t) f->id);
	put_int64(w, (uint64_t) f->occurred_at);
	put_int64(w, f->txid);
	put_cstring(w, f->tenant_id);
	put_cstring(w, f->user_id);
	put_cstring(w, f->db_user);
	put_cstring(w, f->action);
	put_cstring(w, f->resource_type);
	put_cstring(w, f->resource_id);
	put_field(w, payload);
}

static void
write_payload(canon_writer *w, bb_bytes details, bb_bytes ip_address, bb_bytes user_agent)
{
	put_raw(w, PAYLOAD_LABEL, strlen(PAYLOAD_LABEL));
	put_field(w, details);
	put_field(w, ip_address);
	put_field(w, user_agent);
}

/*
 * Each encoder runs twice: a counting pass, then (when out has room for the
 * whole encoding) a writing pass, so a short buffer is never half-filled.
 */
size_t
bb_canon_leaf(unsigned char *out, size_t cap, const bb_audit_fields *f)
{
	canon_writer w = {NULL, 0, 0, 0};
	size_t		need;

	write_leaf(&w, f);
	need = finish(&w);
	if (out != NULL && need != (size_t) -1 && need <= cap)
	{
		canon_writer real = {out, cap, 0, 0};

		write_leaf(&real, f);
	}
	return need;
}

size_t
bb_canon_payload(unsigned char *out, size_t cap, bb_bytes details,
				 bb_bytes ip_address, bb_bytes user_agent)
{
	canon_writer w = {NULL, 0, 0, 0};
	size_t		need;

	write_payload(&w, details, ip_address, user_agent);
	need = finish(&w);
	if (out != NULL && need != (size_t) -1 && need <= cap)
	{
		canon_writer real = {out, cap, 0, 0};

		write_payload(&real, details, ip_address, user_agent);
	}
	return need;
}

void
bb_payload_hash(unsigned char *out, const unsigned char *encoding, size_t len)
{
	crypto_generichash(out, BB_AUDIT_HASH_BYTES, encoding, len, NULL, 0);
}
