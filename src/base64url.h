/*
 * base64url.h — unpadded base64url (RFC 4648 section 5), free of PostgreSQL
 * headers.  Table-driven: meant for ciphertexts, signatures and token
 * segments, which are public; decoding is strict (no padding, no other
 * characters, zero trailing bits), so every byte string has one encoding.
 */
#ifndef BRANDBOS_BASE64URL_H
#define BRANDBOS_BASE64URL_H

#include <stddef.h>

/* characters needed to encode n bytes (no terminator) */
extern size_t bb_b64url_encoded_len(size_t n);

/* encode n bytes into out, which must hold bb_b64url_encoded_len(n) + 1 (a NUL is written) */
extern void bb_b64url_encode(char *out, const unsigned char *in, size_t n);

/*
 * Decode len characters into out (capacity cap).  Returns 0 and sets
 * *out_len on success, -1 on any invalid input or if cap is too small.
 */
extern int	bb_b64url_decode(unsigned char *out, size_t cap, size_t *out_len,
							 const char *in, size_t len);

#endif							/* BRANDBOS_BASE64URL_H */
