/*
 * audit_store.h — reading brandbos's audit tables through SPI, the trusted
 * signing key, digests and the message a prune record signs; shared by
 * audit_verify.c (which defines the readers), audit_digest_sql.c (digests)
 * and audit_retention.c (which defines the prune message).
 *
 * The readers never raise for a malformed stored value: verification
 * reports such values as problems, so they answer false or NULL instead.
 */
#ifndef BRANDBOS_AUDIT_STORE_H
#define BRANDBOS_AUDIT_STORE_H

#include "brandbos.h"
#include "audit_digest.h"
#include "merkle.h"

#include <sodium.h>

#include "utils/jsonb.h"

/* a block row as read from brandbos.audit_blocks */
typedef struct BlockRow
{
	bb_block_header h;
	unsigned char stored_hash[BB_HASH_BYTES];
	unsigned char signature[crypto_sign_BYTES];
	unsigned char public_key[crypto_sign_PUBLICKEYBYTES];
	int64	   *missing;
	int			nmissing;
	bool		well_formed;	/* every column present and of its size */
} BlockRow;

/* the columns brandbos_audit_read_block expects, in this order */
#define BLOCK_COLUMNS "block_id, prev_hash, root_hash, first_id, last_id, row_count, missing_ids, " \
	"sealed_at, block_hash, signature, public_key"

extern void brandbos_audit_read_block(HeapTuple tup, TupleDesc desc, BlockRow *b);

/* the key blocks must be signed with, derived from the root key; false without one */
extern bool brandbos_audit_trusted_public_key(unsigned char *pk);

/* a caller's digest (untrusted) checked and decoded; 22023 when malformed */
extern void brandbos_audit_parse_digest(Jsonb *digest, bb_digest *parsed);
pg_noreturn extern void brandbos_audit_malformed_digest(const char *what);


/* copy a bytea column of len bytes into out; false when NULL or of another size */
extern bool brandbos_audit_get_hash(HeapTuple tup, TupleDesc desc, int col,
									unsigned char *out, size_t len);

/* a bigint column, 0 (and *isnull) for NULL */
extern int64 brandbos_audit_get_int8(HeapTuple tup, TupleDesc desc, int col, bool *isnull);

/*
 * The 32-byte hash that an audit_prunes row's Ed25519 signature covers: a
 * domain label, the block id and the pruned block's hash.
 */
extern void brandbos_audit_prune_message(unsigned char *out, int64 block_id,
										 const unsigned char *block_hash);

#endif							/* BRANDBOS_AUDIT_STORE_H */
