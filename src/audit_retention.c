/*
 * audit_retention.c — the two sanctioned changes to the audit log:
 * redacting a row's payload and pruning the oldest sealed blocks.
 *
 * redact_audit clears details, ip_address and user_agent of one row.  Its
 * leaf hash still commits to the payload hash, so the chain stays intact;
 * verification accepts the cleared payload only when the row has both a
 * record in audit_redactions and an audit_redacted event.
 *
 * prune_audit deletes the rows of whole sealed blocks, oldest first, up to
 * the newest block sealed before a cut.  Each pruned block gets a row in
 * audit_prunes with an Ed25519 signature, by the audit signing key (derived
 * from the root key, so 55000 without one), over the block's hash.
 *
 * Invariants:
 *   - the append-only trigger allows exactly these changes, and only while
 *     brandbos_audit_maintenance (redaction) or brandbos_audit_pruning
 *     (pruning) is set around the one statement that makes them;
 *   - pruned blocks always form a prefix of the chain, and verification
 *     trusts a prune only through its signature, never through the
 *     audit_pruned event (which log_event cannot write: the reserved
 *     namespace of audit_writer.c);
 *   - both run as the extension owner and need brandbos_auditor.
 */
#include "brandbos.h"
#include "audit_store.h"
#include "merkle.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

/* domain of the signature over a pruned block's hash (audit_prunes.signature) */
#define PRUNE_LABEL		"brandbos audit prune v1"

/* the hash that a prune record's signature covers (audit_store.h) */
void
brandbos_audit_prune_message(unsigned char *out, int64 block_id, const unsigned char *block_hash)
{
	crypto_generichash_state st;
	unsigned char be[8];
	int			i;

	for (i = 0; i < 8; i++)
		be[i] = (unsigned char) (((uint64) block_id) >> (56 - 8 * i));
	crypto_generichash_init(&st, NULL, 0, BB_HASH_BYTES);
	crypto_generichash_update(&st, (const unsigned char *) PRUNE_LABEL, sizeof(PRUNE_LABEL) - 1);
	crypto_generichash_update(&st, be, sizeof(be));
	crypto_generichash_update(&st, block_hash, BB_HASH_BYTES);
	crypto_generichash_final(&st, out, BB_HASH_BYTES);
}

PG_FUNCTION_INFO_V1(brandbos_redact_audit);
/* SQL: brandbos.redact_audit(id bigint, reason text) returns void */
Datum
brandbos_redact_audit(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	int64		id;
	char	   *reason;
	Oid			types[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	BrandbosDetails details;

	brandbos_require_role(BRANDBOS_ROLE_AUDITOR, "redact the brandbos audit log");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("id and reason must not be null")));
	id = PG_GETARG_INT64(0);
	reason = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (reason[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a redaction needs a reason")));

	brandbos_spi_begin(&state, brandbos_extension_owner());
	values[0] = Int64GetDatum(id);
	brandbos_sql_exec("SELECT 1 FROM brandbos.audit_entries WHERE id = $1 FOR SHARE", 1, types, values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("audit row " INT64_FORMAT " does not exist", id)));
	values[1] = CStringGetTextDatum(reason);
	values[2] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	brandbos_sql_exec("INSERT INTO brandbos.audit_redactions (audit_id, reason, redacted_at, redacted_by) "
					  "VALUES ($1, $2, pg_catalog.now(), $3::pg_catalog.name) ON CONFLICT (audit_id) DO NOTHING", 3, types, values, NULL, false, SPI_OK_INSERT);
	brandbos_audit_maintenance = true;
	PG_TRY();
	{
		brandbos_sql_exec("UPDATE brandbos.audit_entries SET details = NULL, ip_address = NULL, user_agent = NULL "
						  "WHERE id = $1", 1, types, values, NULL, false, SPI_OK_UPDATE);
	}
	PG_FINALLY();
	{
		brandbos_audit_maintenance = false;
	}
	PG_END_TRY();
	brandbos_spi_end(&state);

	brandbos_details_begin(&details);
	brandbos_details_text(&details, "reason", reason);
	brandbos_audit_append("audit_redacted", "audit_log", psprintf(INT64_FORMAT, id),
						  brandbos_details_end(&details));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(brandbos_prune_audit);
/* SQL: brandbos.prune_audit(before timestamptz) returns bigint */
Datum
brandbos_prune_audit(PG_FUNCTION_ARGS)
{
	BrandbosInternalState state;
	Oid			types[3] = {TIMESTAMPTZOID, INT8OID, TEXTOID};
	Datum		values[3];
	int64		first_block,
				last_block,
				last_id;
	uint64		deleted = 0;
	bool		isnull;

	brandbos_require_role(BRANDBOS_ROLE_AUDITOR, "prune the brandbos audit log");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("before must not be null")));
	values[0] = PG_GETARG_DATUM(0);

	brandbos_spi_begin(&state, brandbos_extension_owner());
	brandbos_sql_exec("LOCK TABLE brandbos.audit_blocks IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL, NULL, false, SPI_OK_UTILITY);

	/*
	 * Whole blocks not pruned yet, up to the newest one sealed before the
	 * cut: always a prefix of the chain, which is what verify_audit accepts.
	 */
	brandbos_sql_exec("SELECT min(block_id), max(block_id), max(last_id) FROM brandbos.audit_blocks b "
					  "WHERE block_id <= (SELECT max(block_id) FROM brandbos.audit_blocks WHERE sealed_at < $1) "
					  "AND NOT EXISTS (SELECT 1 FROM brandbos.audit_prunes p WHERE p.block_id = b.block_id)", 1, types, values, NULL, false, SPI_OK_SELECT);
	first_block = brandbos_audit_get_int8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		SPITupleTable *targets;
		uint64		n,
					k;
		unsigned char pk[crypto_sign_PUBLICKEYBYTES];
		unsigned char sk[crypto_sign_SECRETKEYBYTES];
		Oid			rtypes[3] = {INT8OID, TEXTOID, BYTEAOID};
		Datum		rvalues[3];
		char	   *who = GetUserNameFromId(GetUserId(), false);
		int64	   *ids;
		bytea	  **sigs;

		last_block = brandbos_audit_get_int8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		last_id = brandbos_audit_get_int8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
		values[1] = Int64GetDatum(last_id);

		/* each record signs the pruned block's hash (55000 without a root key) */
		values[1] = Int64GetDatum(first_block);
		values[2] = Int64GetDatum(last_block);
		types[2] = INT8OID;
		brandbos_sql_exec("SELECT block_id, block_hash FROM brandbos.audit_blocks WHERE block_id BETWEEN $2 AND $3 "
						  "ORDER BY block_id", 3, types, values, NULL, false, SPI_OK_SELECT);
		targets = SPI_tuptable;
		n = SPI_processed;
		ids = palloc(sizeof(int64) * Max(n, 1));
		sigs = palloc(sizeof(bytea *) * Max(n, 1));
		for (k = 0; k < n; k++)
		{
			unsigned char hash[BB_HASH_BYTES];

			ids[k] = brandbos_audit_get_int8(targets->vals[k], targets->tupdesc, 1, &isnull);
			if (!brandbos_audit_get_hash(targets->vals[k], targets->tupdesc, 2, hash, BB_HASH_BYTES))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("audit block " INT64_FORMAT " has a malformed hash", ids[k]),
						 errhint("Run brandbos.verify_audit() before pruning.")));
			sigs[k] = palloc(VARHDRSZ + crypto_sign_BYTES);
			SET_VARSIZE(sigs[k], VARHDRSZ + crypto_sign_BYTES);
			brandbos_audit_prune_message((unsigned char *) VARDATA(sigs[k]), ids[k], hash);	/* signed below */
		}
		SPI_freetuptable(targets);
		brandbos_audit_signing_keypair(pk, sk);
		for (k = 0; k < n; k++)
		{
			unsigned char msg[BB_HASH_BYTES];

			memcpy(msg, VARDATA(sigs[k]), BB_HASH_BYTES);
			crypto_sign_detached((unsigned char *) VARDATA(sigs[k]), NULL, msg, BB_HASH_BYTES, sk);
		}
		sodium_memzero(sk, sizeof(sk));
		for (k = 0; k < n; k++)
		{
			rvalues[0] = Int64GetDatum(ids[k]);
			rvalues[1] = CStringGetTextDatum(who);
			rvalues[2] = PointerGetDatum(sigs[k]);
			brandbos_sql_exec("INSERT INTO brandbos.audit_prunes (block_id, pruned_at, pruned_by, signature) "
							  "VALUES ($1, pg_catalog.now(), $2::pg_catalog.name, $3)", 3, rtypes, rvalues, NULL, false, SPI_OK_INSERT);
		}

		values[1] = Int64GetDatum(last_id);
		brandbos_audit_pruning = true;
		PG_TRY();
		{
			brandbos_sql_exec("DELETE FROM brandbos.audit_entries WHERE id <= $2", 2, types, values, NULL, false, SPI_OK_DELETE);
			deleted = SPI_processed;
		}
		PG_FINALLY();
		{
			brandbos_audit_pruning = false;
		}
		PG_END_TRY();
	}
	brandbos_spi_end(&state);

	if (!isnull)
	{
		BrandbosDetails details;

		brandbos_details_begin(&details);
		brandbos_details_int8(&details, "first_block", first_block);
		brandbos_details_int8(&details, "last_block", last_block);
		brandbos_details_int8(&details, "rows", (int64) deleted);
		brandbos_audit_append("audit_pruned", "audit_log", NULL, brandbos_details_end(&details));
	}
	PG_RETURN_INT64((int64) deleted);
}
