/*
 * jwt.c — splitting, decoding and HS256 signing of JSON Web Tokens.
 *
 * Pure C on libsodium (see jwt.h).  A token is three unpadded base64url
 * segments separated by dots; anything else is refused before a byte of it
 * is interpreted.
 */
#include "jwt.h"
#include "base64url.h"

#include <string.h>
#include <sodium.h>

const char *
bb_jwt_status_text(bb_jwt_status status)
{
	switch (status)
	{
		case BB_JWT_OK:
			return "ok";
		case BB_JWT_NOT_THREE_SEGMENTS:
			return "A JWT has three base64url segments separated by dots.";
		case BB_JWT_BAD_BASE64:
			return "A segment of the token is not unpadded base64url.";
		case BB_JWT_BAD_SIGNATURE:
			return "The HS256 signature does not match.";
	}
	return "unknown token status";
}

bb_jwt_status
bb_jwt_parse(const char *token, size_t len, unsigned char *buf, bb_jwt *out)
{
	const char *dot1 = memchr(token, '.', len);
	const char *dot2;
	const char *end = token + len;
	size_t		sig_len;

	if (dot1 == NULL)
		return BB_JWT_NOT_THREE_SEGMENTS;
	dot2 = memchr(dot1 + 1, '.', end - (dot1 + 1));
	if (dot2 == NULL || memchr(dot2 + 1, '.', end - (dot2 + 1)) != NULL)
		return BB_JWT_NOT_THREE_SEGMENTS;
	/* an empty signature is framing-valid ("alg": "none"); it never verifies */
	if (dot1 == token || dot2 == dot1 + 1)
		return BB_JWT_NOT_THREE_SEGMENTS;

	out->header = buf;
	if (bb_b64url_decode(out->header, len, &out->header_len, token, dot1 - token) != 0)
		return BB_JWT_BAD_BASE64;
	out->payload = buf + out->header_len;
	if (bb_b64url_decode(out->payload, len - out->header_len, &out->payload_len,
						 dot1 + 1, dot2 - (dot1 + 1)) != 0)
		return BB_JWT_BAD_BASE64;
	/* decoded segments are shorter than their text: all three fit in len bytes */
	out->signature = out->payload + out->payload_len;
	if (bb_b64url_decode(out->signature, len - out->header_len - out->payload_len, &sig_len,
						 dot2 + 1, end - (dot2 + 1)) != 0)
	{
		out->signature_len = 0;
		return BB_JWT_BAD_BASE64;
	}
	out->signature_len = sig_len;
	out->signing_input_len = dot2 - token;
	return BB_JWT_OK;
}

static void
hmac(unsigned char *mac, const char *data, size_t len,
	 const unsigned char *secret, size_t secret_len)
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, secret, secret_len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *) data, len);
	crypto_auth_hmacsha256_final(&st, mac);
}

bb_jwt_status
bb_jwt_verify_hs256(const char *token, const bb_jwt *jwt,
					const unsigned char *secret, size_t secret_len)
{
	unsigned char mac[BB_JWT_SIG_BYTES];
	int			ok;

	if (jwt->signature_len != BB_JWT_SIG_BYTES)
		return BB_JWT_BAD_SIGNATURE;
	hmac(mac, token, jwt->signing_input_len, secret, secret_len);
	ok = crypto_verify_32(mac, jwt->signature) == 0;
	sodium_memzero(mac, sizeof(mac));
	return ok ? BB_JWT_OK : BB_JWT_BAD_SIGNATURE;
}

size_t
bb_jwt_signed_len(size_t header_len, size_t payload_len)
{
	return bb_b64url_encoded_len(header_len) + 1 + bb_b64url_encoded_len(payload_len) + 1 +
		bb_b64url_encoded_len(BB_JWT_SIG_BYTES);
}

void
bb_jwt_sign_hs256(char *out, const char *header, size_t header_len,
				  const char *payload, size_t payload_len,
				  const unsigned char *secret, size_t secret_len)
{
	unsigned char mac[BB_JWT_SIG_BYTES];
	size_t		off;

	bb_b64url_encode(out, (const unsigned char *) header, header_len);
	off = bb_b64url_encoded_len(header_len);
	out[off++] = '.';
	bb_b64url_encode(out + off, (const unsigned char *) payload, payload_len);
	off += bb_b64url_encoded_len(payload_len);
	hmac(mac, out, off, secret, secret_len);
	out[off++] = '.';
	bb_b64url_encode(out + off, mac, sizeof(mac));
	sodium_memzero(mac, sizeof(mac));
}
