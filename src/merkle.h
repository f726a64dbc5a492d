/*
 * merkle.h — hashing for the audit chain, free of PostgreSQL headers.
 *
 * Leaves and inner nodes are BLAKE2b-256 with distinct one-byte prefixes
 * (0x00 leaf, 0x01 node), so a leaf can never be passed off as a node.  The
 * tree over n leaves splits at the largest power of two below n, so the
 * root of any list is defined without padding and an odd leaf is not
 * duplicated (duplication would let two lists share a root).
 *
 * A block hash binds a block's header: its id, the previous block's hash,
 * the Merkle root, the id range, the row count, the ids of the range that
 * hold no row, and the sealing time.  The
 * chain of block hashes is what Ed25519 signs.
 */
#ifndef BRANDBOS_MERKLE_H
#define BRANDBOS_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define BB_HASH_BYTES 32

/* hash of one leaf's canonical bytes */
extern void bb_leaf_hash(unsigned char *out, const unsigned char *data, size_t len);

/* hash of an inner node */
extern void bb_node_hash(unsigned char *out, const unsigned char *left,
						 const unsigned char *right);

/*
 * Merkle root of n leaf hashes (n * BB_HASH_BYTES bytes).  The root of no
 * leaves is the hash of the empty string.  scratch must hold n hashes.
 */
extern void bb_merkle_root(unsigned char *out, const unsigned char *leaves,
						   size_t n, unsigned char *scratch);

typedef struct bb_block_header
{
	int64_t		block_id;
	unsigned char prev_hash[BB_HASH_BYTES];
	unsigned char root_hash[BB_HASH_BYTES];
	int64_t		first_id;
	int64_t		last_id;
	int64_t		row_count;
	unsigned char missing_hash[BB_HASH_BYTES];	/* hash of the missing ids */
	int64_t		sealed_at;		/* microseconds since 2000-01-01 UTC */
} bb_block_header;

/* hash of a list of ids (big-endian 8 bytes each) */
extern void bb_ids_hash(unsigned char *out, const int64_t *ids, size_t n);

/* hash that chains and is signed */
extern void bb_block_hash(unsigned char *out, const bb_block_header *h);

#endif							/* BRANDBOS_MERKLE_H */
