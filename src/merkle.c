/*
 * merkle.c — leaf, node, root and block hashes of the audit chain.
 *
 * Pure C on libsodium; see merkle.h for the construction.
 */
#include "merkle.h"

#include <string.h>
#include <sodium.h>

void
bb_leaf_hash(unsigned char *out, const unsigned char *data, size_t len)
{
	crypto_generichash_state st;
	unsigned char prefix = 0x00;

	crypto_generichash_init(&st, NULL, 0, BB_HASH_BYTES);
	crypto_generichash_update(&st, &prefix, 1);
	crypto_generichash_update(&st, data, len);
	crypto_generichash_final(&st, out, BB_HASH_BYTES);
}

void
bb_node_hash(unsigned char *out, const unsigned char *left, const unsigned char *right)
{
	unsigned char buf[1 + 2 * BB_HASH_BYTES];

	buf[0] = 0x01;
	memcpy(buf + 1, left, BB_HASH_BYTES);
	memcpy(buf + 1 + BB_HASH_BYTES, right, BB_HASH_BYTES);
	crypto_generichash(out, BB_HASH_BYTES, buf, sizeof(buf), NULL, 0);
}

/*
 * Bottom-up evaluation of the same tree as the recursive definition
 * root(L) = node(root(L[0..k)), root(L[k..n))): pairing neighbours level by
 * level and carrying an odd last element up unchanged yields exactly the
 * left-complete split at the largest power of two.
 */
void
bb_merkle_root(unsigned char *out, const unsigned char *leaves, size_t n,
			   unsigned char *scratch)
{
	size_t		i,
				level_n;

	if (n == 0)
	{
		crypto_generichash(out, BB_HASH_BYTES, NULL, 0, NULL, 0);
		return;
	}
	memcpy(scratch, leaves, n * BB_HASH_BYTES);
	level_n = n;
	while (level_n > 1)
	{
		size_t		next = 0;

		for (i = 0; i + 1 < level_n; i += 2)
			bb_node_hash(scratch + next++ * BB_HASH_BYTES,
						 scratch + i * BB_HASH_BYTES,
						 scratch + (i + 1) * BB_HASH_BYTES);
		if (level_n % 2 == 1)
			memmove(scratch + next++ * BB_HASH_BYTES,
					scratch + (level_n - 1) * BB_HASH_BYTES, BB_HASH_BYTES);
		level_n = next;
	}
	memcpy(out, scratch, BB_HASH_BYTES);
}

static void
put_i64(unsigned char *p, int64_t v)
{
	uint64_t	u = (uint64_t) v;
	int			i;

	for (i = 7; i >= 0; i--)
	{
		p[i] = (unsigned char) u;
		u >>= 8;
	}
}

void
bb_ids_hash(unsigned char *out, const int64_t *ids, size_t n)
{
	crypto_generichash_state st;
	unsigned char b[8];
	size_t		i;

	crypto_generichash_init(&st, NULL, 0, BB_HASH_BYTES);
	crypto_generichash_update(&st, (const unsigned char *) "brandbos ids", 12);
	for (i = 0; i < n; i++)
	{
		put_i64(b, ids[i]);
		crypto_generichash_update(&st, b, 8);
	}
	crypto_generichash_final(&st, out, BB_HASH_BYTES);
}

void
bb_block_hash(unsigned char *out, const bb_block_header *h)
{
	unsigned char buf[16 + 8 + 3 * BB_HASH_BYTES + 4 * 8];
	size_t		off = 0;

	memcpy(buf, "brandbos block 1", 16);
	off = 16;
	put_i64(buf + off, h->block_id);
	off += 8;
	memcpy(buf + off, h->prev_hash, BB_HASH_BYTES);
	off += BB_HASH_BYTES;
	memcpy(buf + off, h->root_hash, BB_HASH_BYTES);
	off += BB_HASH_BYTES;
	put_i64(buf + off, h->first_id);
	off += 8;
	put_i64(buf + off, h->last_id);
	off += 8;
	put_i64(buf + off, h->row_count);
	off += 8;
	memcpy(buf + off, h->missing_hash, BB_HASH_BYTES);
	off += BB_HASH_BYTES;
	put_i64(buf + off, h->sealed_at);
	off += 8;
	crypto_generichash(out, BB_HASH_BYTES, buf, off, NULL, 0);
}
