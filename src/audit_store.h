/*
 * audit_store.h — reading brandbos's audit tables through SPI, and the
 * message a prune record signs; shared by audit_verify.c (which defines
 * the readers) and audit_retention.c (which defines the prune message).
 *
 * The readers never raise for a malformed stored value: verification
 * reports such values as problems, so they answer false or NULL instead.
 */
#ifndef BRANDBOS_AUDIT_STORE_H
#define BRANDBOS_AUDIT_STORE_H

#include "brandbos.h"

/* run internal SQL inside an SPI connection; elog unless SPI returns expect */
extern void brandbos_audit_sql(const char *sql, int nargs, Oid *types, Datum *values,
							   int expect);

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
