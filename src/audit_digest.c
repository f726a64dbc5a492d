/*
 * audit_digest.c — the rules for the values of an audit digest (see
 * audit_digest.h).  The JSON itself is PostgreSQL's to parse; this file
 * only decides whether the members it was handed are what audit_digest()
 * writes, and decodes them.  Members are checked in a fixed order, so the
 * first rule broken is the one reported.
 */
#include "audit_digest.h"

#include <string.h>

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* a string of exactly 2 * n hexadecimal characters, decoded into out */
static int
decode_hex(const bb_json_member *m, unsigned char *out, size_t n)
{
	size_t		i;

	if (m->kind != BB_JSON_STRING || m->len != 2 * n)
		return 0;
	for (i = 0; i < n; i++)
	{
		int			hi = hex_value(m->text[2 * i]);
		int			lo = hex_value(m->text[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return 0;
		out[i] = (unsigned char) (hi << 4 | lo);
	}
	return 1;
}

/* a number of decimal digits only, 1 .. INT64_MAX */
static int
read_block_id(const bb_json_member *m, int64_t *out)
{
	uint64_t	v = 0;
	size_t		i;

	if (m->kind != BB_JSON_NUMBER || m->len == 0 || m->len > 19)
		return 0;
	for (i = 0; i < m->len; i++)
	{
		char		c = m->text[i];

		if (c < '0' || c > '9')
			return 0;			/* sign, fraction or exponent */
		v = v * 10 + (uint64_t) (c - '0');
	}
	if (v < 1 || v > (uint64_t) INT64_MAX)
		return 0;
	*out = (int64_t) v;
	return 1;
}

bb_digest_status
bb_digest_check(const bb_digest_members *in, bb_digest *out)
{
	memset(out, 0, sizeof(*out));
	if (in->format.kind != BB_JSON_STRING ||
		in->format.len != strlen(BB_DIGEST_FORMAT) ||
		memcmp(in->format.text, BB_DIGEST_FORMAT, in->format.len) != 0)
		return BB_DIGEST_BAD_FORMAT;
	if (!decode_hex(&in->chain_id, out->chain_id, sizeof(out->chain_id)))
		return BB_DIGEST_BAD_CHAIN_ID;
	if (!read_block_id(&in->block_id, &out->block_id))
		return BB_DIGEST_BAD_BLOCK_ID;
	if (!decode_hex(&in->block_hash, out->block_hash, sizeof(out->block_hash)))
		return BB_DIGEST_BAD_BLOCK_HASH;
	if (in->signature.kind != BB_JSON_ABSENT)
	{
		if (!decode_hex(&in->signature, out->signature, sizeof(out->signature)))
			return BB_DIGEST_BAD_SIGNATURE;
		out->has_signature = 1;
	}
	if (in->public_key.kind != BB_JSON_ABSENT)
	{
		if (!decode_hex(&in->public_key, out->public_key, sizeof(out->public_key)))
			return BB_DIGEST_BAD_PUBLIC_KEY;
		out->has_public_key = 1;
	}
	return BB_DIGEST_OK;
}

const char *
bb_digest_status_text(bb_digest_status status)
{
	switch (status)
	{
		case BB_DIGEST_OK:
			return "The digest is well formed.";
		case BB_DIGEST_TOO_DEEP:
			return "The digest nests deeper than 32 levels.";
		case BB_DIGEST_NOT_OBJECT:
			return "The digest is not a JSON object.";
		case BB_DIGEST_BAD_FORMAT:
			return "\"format\" is missing or not \"" BB_DIGEST_FORMAT "\".";
		case BB_DIGEST_BAD_CHAIN_ID:
			return "\"chain_id\" must be 64 hexadecimal characters.";
		case BB_DIGEST_BAD_BLOCK_ID:
			return "\"block_id\" must be a positive integer.";
		case BB_DIGEST_BAD_BLOCK_HASH:
			return "\"block_hash\" must be 64 hexadecimal characters.";
		case BB_DIGEST_BAD_SIGNATURE:
			return "\"signature\" must be 128 hexadecimal characters.";
		case BB_DIGEST_BAD_PUBLIC_KEY:
			return "\"public_key\" must be 64 hexadecimal characters.";
	}
	return "The digest is malformed.";
}
