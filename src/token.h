/*
 * token.h — the tokens brandbos.authenticate() accepts (token.c): their
 * secret, their verification, and the safe JSON parsing both token.c and
 * context.c use for text they do not trust.
 */
#ifndef BRANDBOS_TOKEN_H
#define BRANDBOS_TOKEN_H

#include "postgres.h"
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
extern void brandbos_token_malformed(const char *detail) pg_attribute_noreturn();

/*
 * Parse text that must be a JSON object with PostgreSQL's jsonb input.
 * NULL for anything else — invalid JSON, an embedded NUL, \u0000, text not
 * valid in the database encoding, numbers out of range, nesting too deep —
 * and the parser's error (which quotes the text) is discarded.
 */
extern Jsonb *brandbos_json_object_or_null(const char *data, size_t len);

/* the value of key in a JSON object, NULL when absent */
extern JsonbValue *brandbos_jsonb_member(Jsonb *obj, const char *key);

#endif							/* BRANDBOS_TOKEN_H */
