/*
 * jwt.h — framing and HS256 signatures of JSON Web Tokens, free of
 * PostgreSQL headers.  Claims are JSON and are interpreted by the caller
 * (context.c); this part only splits, decodes and signs.
 */
#ifndef BRANDBOS_JWT_H
#define BRANDBOS_JWT_H

#include <stddef.h>

#define BB_JWT_SIG_BYTES 32

typedef enum bb_jwt_status
{
	BB_JWT_OK = 0,
	BB_JWT_NOT_THREE_SEGMENTS,	/* not header.payload.signature */
	BB_JWT_BAD_BASE64,			/* a segment is not unpadded base64url */
	BB_JWT_BAD_SIGNATURE		/* not 32 bytes, or HMAC-SHA256 does not match */
} bb_jwt_status;

/*
 * A split token: its three segments decoded.  The signature may have any
 * length here (an HS512 or RS256 token frames like any other, so the caller
 * can refuse it for its algorithm); only 32 bytes can verify.
 */
typedef struct bb_jwt
{
	unsigned char *header;		/* decoded, not NUL-terminated */
	size_t		header_len;
	unsigned char *payload;
	size_t		payload_len;
	unsigned char *signature;
	size_t		signature_len;
	size_t		signing_input_len;	/* length of "header.payload" in the token */
} bb_jwt;

/*
 * Split and decode a token.  The three decoded segments are written into
 * buf, which must hold len bytes.  Does not check the signature.
 */
extern bb_jwt_status bb_jwt_parse(const char *token, size_t len, unsigned char *buf,
								  bb_jwt *out);

/* check the HS256 signature in constant time */
extern bb_jwt_status bb_jwt_verify_hs256(const char *token, const bb_jwt *jwt,
										 const unsigned char *secret, size_t secret_len);

/*
 * Sign header and payload JSON texts: out must hold
 * bb_jwt_signed_len(header_len, payload_len) + 1 bytes (a NUL is written).
 */
extern size_t bb_jwt_signed_len(size_t header_len, size_t payload_len);
extern void bb_jwt_sign_hs256(char *out, const char *header, size_t header_len,
							  const char *payload, size_t payload_len,
							  const unsigned char *secret, size_t secret_len);

extern const char *bb_jwt_status_text(bb_jwt_status status);

#endif							/* BRANDBOS_JWT_H */
