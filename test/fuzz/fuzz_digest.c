/*
 * fuzz_digest.c — libFuzzer target for the audit digest reader
 * (src/audit_digest.c), which reads JSON handed in by users.  Every input
 * must be refused or read without a crash, leak or UB; what is read must
 * satisfy the documented rules and survive a round trip through the JSON
 * that audit_digest() writes.
 */
#include <stdint.h>
#include <stdio.h>
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
	out[2 * n] = '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bb_digest	d,
				again;
	bb_digest_status st = bb_digest_parse((const char *) data, size, &d);
	char		chain[65],
				hash[65],
				json[512];
	int			n;

	if (bb_digest_status_text(st) == NULL)
		abort();
	if (st != BB_DIGEST_OK)
		return 0;
	if (d.block_id < 1)
		abort();
	hex(chain, d.chain_id, 32);
	hex(hash, d.block_hash, 32);
	n = snprintf(json, sizeof(json),
				 "{\"format\": \"%s\", \"chain_id\": \"%s\", \"block_id\": %lld, \"block_hash\": \"%s\"}",
				 BB_DIGEST_FORMAT, chain, (long long) d.block_id, hash);
	if (n < 0 || (size_t) n >= sizeof(json))
		abort();
	if (bb_digest_parse(json, (size_t) n, &again) != BB_DIGEST_OK ||
		again.block_id != d.block_id ||
		memcmp(again.chain_id, d.chain_id, 32) != 0 ||
		memcmp(again.block_hash, d.block_hash, 32) != 0)
		abort();
	return 0;
}
