/*
 * fuzz_digest.c — libFuzzer target for the audit digest rules
 * (src/audit_digest.c), which judge member values handed in by users.  The
 * input is cut at NUL bytes into up to six member values, each led by a
 * byte choosing its JSON kind.  Every input must be refused or accepted
 * without a crash, an out-of-bounds read or UB; what is accepted must obey
 * the documented rules and be accepted again when written back the way
 * audit_digest() writes it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_digest.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
hex(char *out, const unsigned char *bin, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t		i;

	for (i = 0; i < n; i++)
	{
		out[2 * i] = digits[bin[i] >> 4];
		out[2 * i + 1] = digits[bin[i] & 15];
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bb_json_member fields[6];
	bb_digest_members in,
				again;
	bb_digest	d,
				d2;
	char		chain[64],
				hash[64],
				id[24];
	size_t		pos = 0;
	int			f;
	char	   *copy = malloc(size ? size : 1);

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	/* the fields point into a private copy the exact size of the input */
	for (f = 0; f < 6; f++)
	{
		size_t		end;

		fields[f].kind = BB_JSON_ABSENT;
		fields[f].text = NULL;
		fields[f].len = 0;
		if (pos >= size)
			continue;
		fields[f].kind = (bb_json_kind) (copy[pos] & 3);
		pos++;
		for (end = pos; end < size && copy[end] != '\0'; end++)
			;
		if (fields[f].kind == BB_JSON_STRING || fields[f].kind == BB_JSON_NUMBER)
		{
			fields[f].text = copy + pos;
			fields[f].len = end - pos;
		}
		pos = end + 1;
	}
	in.format = fields[0];
	in.chain_id = fields[1];
	in.block_id = fields[2];
	in.block_hash = fields[3];
	in.signature = fields[4];
	in.public_key = fields[5];

	if (bb_digest_status_text(bb_digest_check(&in, &d)) == NULL)
		abort();
	if (bb_digest_check(&in, &d) == BB_DIGEST_OK)
	{
		int			n;

		if (d.block_id < 1 || in.format.len != strlen(BB_DIGEST_FORMAT))
			abort();
		hex(chain, d.chain_id, 32);
		hex(hash, d.block_hash, 32);
		n = 0;
		{
			int64_t		v = d.block_id;
			char		rev[24];
			int			r = 0;

			while (v > 0)
			{
				rev[r++] = (char) ('0' + v % 10);
				v /= 10;
			}
			while (r > 0)
				id[n++] = rev[--r];
		}
		again.format.kind = BB_JSON_STRING;
		again.format.text = BB_DIGEST_FORMAT;
		again.format.len = strlen(BB_DIGEST_FORMAT);
		again.chain_id.kind = BB_JSON_STRING;
		again.chain_id.text = chain;
		again.chain_id.len = 64;
		again.block_id.kind = BB_JSON_NUMBER;
		again.block_id.text = id;
		again.block_id.len = (size_t) n;
		again.block_hash.kind = BB_JSON_STRING;
		again.block_hash.text = hash;
		again.block_hash.len = 64;
		again.signature.kind = BB_JSON_ABSENT;
		again.public_key.kind = BB_JSON_ABSENT;
		if (bb_digest_check(&again, &d2) != BB_DIGEST_OK || d2.block_id != d.block_id ||
			memcmp(d2.chain_id, d.chain_id, 32) != 0 || memcmp(d2.block_hash, d.block_hash, 32) != 0)
			abort();
	}
	free(copy);
	return 0;
}
