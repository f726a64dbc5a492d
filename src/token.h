/*
 * token.h — the tokens brandbos.authenticate() accepts (token.c): their
 * secret, their verification, authenticate() and sign_token() themselves,
 * and the safe JSON parsing both token.c and context.c use for text they do
 * not trust; plus what context.c offers authenticate() to write a context.
 */
#ifndef BRANDBOS_TOKEN_H
#define BRANDBOS_TOKEN_H

#include "postgres.h"
#include "pg_compat.h"
#include "utils/jsonb.h"

extern void brandbos_token_init(void);

/*
 * The HS256 secret as a palloc'd copy (the caller wipes it with
 * sodium_memzero): brandbos.jwt_secret, else the file named by
 * brandbos.jwt_secret_file, else derived from the root key.  Raises 55000
 * when there is none.
 */
extern unsigned char *brandbos_token_secret(size_t *len);

/*
 * Verify a token (framing, HS256 signature, header and claim rules) and
 * return its claims object.  Raises 22023 for what is not a readable JWT
 * and 28000 for a refused one; no error names a byte of the token.
 */
extern Jsonb *brandbos_token_verify(const char *token, size_t len);

/* raise 22023 "token is not a valid JWT" with detail, statement hidden */
pg_noreturn extern void brandbos_token_malformed(const char *detail);

/*
 * Parse text that must be a JSON object with PostgreSQL's jsonb input.
 * NULL for anything else — invalid JSON, an embedded NUL, \u0000, text not
 * valid in the database encoding, numbers out of range, nesting too deep —
 * and the parser's error (which quotes the text) is discarded.
 */
extern Jsonb *brandbos_json_object_or_null(const char *data, size_t len);

/* the value of key in a JSON object, NULL when absent */
extern JsonbValue *brandbos_jsonb_member(Jsonb *obj, const char *key);

/* a string or number member as a C string; NULL if absent or of another type */
extern char *brandbos_jsonb_member_text(Jsonb *obj, const char *key);

/* ---- context.c, for authenticate(): writing the request context ---- */

/* set the whole context at once (NULLs clear their part); engages the role lock */
extern void brandbos_context_write(const char *user_id, const char *tenant_id,
								   const char *app_role, const char *claims_json);

/* 25P01 unless inside a transaction block ("function" names the caller) */
extern void brandbos_require_transaction_block(const char *function);

/* the claim that names the tenant (brandbos.tenant_claim) */
extern const char *brandbos_tenant_claim_name(void);

#endif							/* BRANDBOS_TOKEN_H */
